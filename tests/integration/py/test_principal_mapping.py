"""ssl.principal.mapping.rules (issue 13): a client certificate's subject
becomes the principal its ACLs name, the same way on every front end:
confluent-kafka over mutual TLS, pika with EXTERNAL over amqps://, curl
with a client certificate over https://. A certificate no rule applies to
names no principal: its Kafka connection is refused, its AMQP login fails,
its HTTP requests get 401, each with a log line. Certificates are made by
the test (tlshelp)."""
import os
import ssl
import subprocess
import time

import pika
import pika.exceptions
import pytest
from confluent_kafka import KafkaError, Producer

import ckhelp
from cairn_broker import Broker, BrokerError, free_port, unique_topic
from tlshelp import CA

RULES = ("RULE:^CN=([^,]+),O=Cairn tests$/$1/L,\n"
         "RULE:^CN=(.*?),O=Partners$/partner-$1/")
ADMIN_PW = "admin-secret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("pki"))
    return {"ca": ca.pem, "server": ca.issue("server", "localhost", server=True),
            "alice": ca.issue("alice", "Alice"),                     # -> alice
            "bob": ca.issue("bob", "bob", org="Partners"),           # -> partner-bob
            "carol": ca.issue("carol", "carol", org="Elsewhere")}    # no rule applies


@pytest.fixture(scope="module")
def mb(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("pmap")
    port, sport, ap, hp, hsp = (free_port() for _ in range(5))
    b = Broker(d / "data", d / "broker.log", {
        "listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, sport),
        "amqp.listeners": "amqps://127.0.0.1:%d" % ap,
        "http.listeners": "http://127.0.0.1:%d,https://127.0.0.1:%d" % (hp, hsp),
        "ssl.certificate.location": pki["server"][0], "ssl.key.location": pki["server"][1],
        "ssl.ca.location": pki["ca"], "ssl.client.auth": "requested",
        "ssl.principal.mapping.rules": RULES,
        "authorizer.enabled": "true", "super.users": "User:admin",
        "http.authentication": "basic"}, port=port, amqp_port=ap, http_port=hp)
    b.ssl_bootstrap = "127.0.0.1:%d" % sport
    b.https_port = hsp
    r = subprocess.run([b.bin, "user", "add", "admin", "--password", ADMIN_PW, "--data-dir",
                        b.data_dir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def wait_log(b, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in b.log_text(400000):
            return
        time.sleep(0.1)
    raise AssertionError("not in the broker log: %r" % text)


def cli(b, *args):
    env = dict(os.environ, CAIRN_USER="admin", CAIRN_PASSWORD=ADMIN_PW)
    r = subprocess.run([b.bin, *args, "--http", "127.0.0.1:%d" % b.http_port],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def produce_one(b, pki, cert, topic, timeout_ms=8000):
    """The delivery error of one record over mutual TLS (None: written)."""
    p = Producer(ckhelp._quiet({
        "bootstrap.servers": b.ssl_bootstrap, "security.protocol": "ssl",
        "ssl.ca.location": pki["ca"], "ssl.certificate.location": pki[cert][0],
        "ssl.key.location": pki[cert][1], "message.timeout.ms": timeout_ms}))
    out = []
    p.produce(topic, value=b"x", on_delivery=lambda err, m: out.append(err))
    p.flush(15)
    return out[0] if out else "undelivered"


def test_kafka_mtls_principal_is_mapped(mb, pki):
    t = unique_topic("pmap")
    cli(mb, "topic", "create", t)
    cli(mb, "acl", "add", "--allow", "User:alice", "--operation", "Write", "--topic", t)
    assert produce_one(mb, pki, "alice", t) is None
    e = produce_one(mb, pki, "bob", t)
    assert e is not None and not isinstance(e, str) and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    cli(mb, "acl", "add", "--allow", "User:partner-bob", "--operation", "Write", "--topic", t)
    assert produce_one(mb, pki, "bob", t) is None
    # no rule applies to carol's subject: the connection is refused
    assert produce_one(mb, pki, "carol", t, timeout_ms=2000) is not None
    wait_log(mb, "the client certificate 'CN=carol,O=Elsewhere' names no principal")
    assert mb.alive()


def amqp_params(b, pki, cert):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.load_cert_chain(*pki[cert])
    return pika.ConnectionParameters("127.0.0.1", b.amqp_port,
                                     credentials=pika.credentials.ExternalCredentials(),
                                     ssl_options=pika.SSLOptions(ctx, "localhost"),
                                     connection_attempts=1, socket_timeout=5)


def test_amqp_external_principal_is_mapped(mb, pki):
    q = unique_topic("pmapq")
    cli(mb, "acl", "add", "--allow", "User:alice", "--operation", "Create", "--operation", "Read",
        "--operation", "Write", "--group", q)
    cli(mb, "acl", "add", "--allow", "User:alice", "--operation", "Write", "--topic",
        "amq.default")
    conn = pika.BlockingConnection(amqp_params(mb, pki, "alice"))
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"job")
    _, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"job"
    conn.close()
    conn = pika.BlockingConnection(amqp_params(mb, pki, "bob"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        conn.channel().basic_get(q)
    assert e.value.reply_code == 403 and "User:partner-bob" in e.value.reply_text
    conn.close()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(amqp_params(mb, pki, "carol"))
    assert mb.alive()


def curl(b, pki, path, cert=None, user=None):
    argv = ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "--cacert", pki["ca"],
            "https://localhost:%d%s" % (b.https_port, path)]
    if cert:
        argv += ["--cert", pki[cert][0], "--key", pki[cert][1]]
    if user:
        argv += ["-u", "%s:%s" % user]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return int(r.stdout), r.stderr


def test_https_client_certificate_principal_is_mapped(mb, pki):
    cli(mb, "acl", "add", "--allow", "User:alice", "--operation", "Describe", "--cluster")
    assert curl(mb, pki, "/broker", "alice")[0] == 200
    st, body = curl(mb, pki, "/broker", "bob")
    assert st == 403 and "User:partner-bob may not Describe the cluster" in body
    assert curl(mb, pki, "/topics", "carol")[0] == 401
    assert curl(mb, pki, "/topics")[0] == 401
    # Basic over https: the password's user, not the certificate's
    assert curl(mb, pki, "/topics", user=("admin", ADMIN_PW))[0] == 200
    st, body = curl(mb, pki, "/topics", "alice", user=("admin", "wrong"))
    assert st == 401
    wait_log(mb, "'CN=carol,O=Elsewhere' names no principal (ssl.principal.mapping.rules)")


def test_bad_rules_stop_the_start(tmp_path):
    b = Broker(tmp_path / "d", tmp_path / "b.log",
               {"ssl.principal.mapping.rules": "RULE:^CN=(.*$/$1/"})
    with pytest.raises(BrokerError) as e:
        b.start(timeout=20)
    b.cleanup()
    assert "ssl.principal.mapping.rules: invalid rule" in str(e.value), str(e.value)[-2000:]
