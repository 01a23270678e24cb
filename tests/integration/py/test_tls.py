"""TLS on Kafka listeners (issue 13, step 1): kcat, confluent-kafka and
kafka-python over SSL:// listeners beside a PLAINTEXT one, mutual TLS with
ssl.client.auth, the wrong-protocol and bad-certificate cases with the
errors each side sees, the secure-by-default start check, and certificate
reload on SIGHUP. Certificates are made by the test (tlshelp)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import KafkaException

import ckhelp
from cairn_broker import Broker, BrokerError, free_port, unique_topic
from ckhelp import flush
from tlshelp import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA(d / "ca")
    other = CA(d / "other", name="Untrusted CA")
    p = {"dir": str(d), "ca": ca.pem, "other_ca": other.pem}
    p["server"] = ca.issue("server", "localhost", server=True)
    p["server2"] = ca.issue("server2", "cairn-reloaded", server=True)
    p["server_expired"] = ca.issue("server_expired", "localhost", server=True, expired=True)
    p["alice"] = ca.issue("alice", "alice")
    p["expired"] = ca.issue("expired", "alice", expired=True)
    p["mallory"] = other.issue("mallory", "mallory")
    p["node"] = ca.issue("node", "cairn-node", node=True)
    p["rogue_node"] = other.issue("rogue_node", "cairn-node", node=True)
    return p


def tls_broker(tmp_path, pki, extra=None, server="server"):
    """A broker with PLAINTEXT on .port and SSL on .ssl_port."""
    port, sport = free_port(), free_port()
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d" % (port, sport),
        "ssl.certificate.location": pki[server][0],
        "ssl.key.location": pki[server][1],
    }
    settings.update(extra or {})
    b = Broker(tmp_path / "data", tmp_path / "broker.log", settings, port=port)
    b.ssl_port = sport
    b.ssl_bootstrap = "127.0.0.1:%d" % sport
    return b


@pytest.fixture(scope="module")
def sb(pki, tmp_path_factory):
    b = tls_broker(tmp_path_factory.mktemp("tls"), pki)
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def ssl_conf(pki, cert=None, ca=None):
    c = {"security.protocol": "ssl", "ssl.ca.location": ca or pki["ca"]}
    if cert:
        c["ssl.certificate.location"], c["ssl.key.location"] = pki[cert]
    return c


def kcat(bootstrap, *args, stdin=None, check=True, timeout=30):
    argv = ["kcat", "-b", bootstrap, "-X", "log_level=3", *args]
    r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstderr: %s" % (argv, r.returncode, r.stderr[-3000:]))
    return r


def wait_log(b, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in b.log_text(200000):
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the broker log:\n%s" % (text, b.log_text(3000)))


def metadata_fails(bootstrap, conf, timeout=4):
    """A client that cannot talk to the broker: list_topics raises."""
    a = ckhelp.AdminClient(ckhelp._quiet(dict({"bootstrap.servers": bootstrap}, **conf)))
    with pytest.raises(KafkaException):
        a.list_topics(timeout=timeout)


# ---------------------------------------------------------------- SSL listener

@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_over_ssl(sb, pki):
    t = unique_topic("tls")
    tls = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + pki["ca"]]
    kcat(sb.ssl_bootstrap, *tls, "-P", "-t", t, stdin=b"one\ntwo\nthree\n")
    out = kcat(sb.ssl_bootstrap, *tls, "-C", "-t", t, "-o", "beginning", "-e").stdout
    assert out.split() == [b"one", b"two", b"three"]
    # Metadata through the SSL listener advertises the SSL listener, through
    # the plaintext one the plaintext one: each client stays on its protocol.
    meta = kcat(sb.ssl_bootstrap, *tls, "-L").stdout.decode()
    assert "broker 1 at 127.0.0.1:%d" % sb.ssl_port in meta
    meta = kcat(sb.bootstrap, "-L").stdout.decode()
    assert "broker 1 at 127.0.0.1:%d" % sb.port in meta
    # The same topic over the plaintext listener: one core, two listeners.
    out = kcat(sb.bootstrap, "-C", "-t", t, "-o", "beginning", "-e").stdout
    assert out.split() == [b"one", b"two", b"three"]


def test_confluent_large_fetches_over_ssl(sb, pki):
    """Fetches read from the log files (sendfile on plaintext) are read and
    encrypted record by record on TLS: many MBs, every byte checked."""
    t = unique_topic("tlsbig")
    p = ckhelp.producer(sb.ssl_bootstrap, **{k.replace(".", "_"): v
                                             for k, v in ssl_conf(pki).items()})
    n = 3000
    vals = [(b"%06d:" % i) + os.urandom(1000 + (i * 37) % 20000) for i in range(n)]
    for i, v in enumerate(vals):
        p.produce(t, key=b"%d" % i, value=v)
        if i % 500 == 0:
            p.poll(0)
    flush(p)
    c = ckhelp.consumer(sb.ssl_bootstrap, **dict(ssl_conf(pki), **{
        "fetch.max.bytes": 4 * 1024 * 1024, "max.partition.fetch.bytes": 2 * 1024 * 1024}))
    c.assign([ckhelp.TopicPartition(t, 0, ckhelp.OFFSET_BEGINNING)])
    got = []
    deadline = time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        got.append(m.value())
    c.close()
    assert len(got) == n
    assert got == vals


def test_kafka_python_over_ssl(sb, pki):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = unique_topic("tlskp")
    p = KafkaProducer(bootstrap_servers=sb.ssl_bootstrap, security_protocol="SSL",
                      ssl_cafile=pki["ca"], ssl_check_hostname=True)
    for i in range(20):
        p.send(t, b"v%d" % i).get(timeout=30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=sb.ssl_bootstrap, security_protocol="SSL",
                      ssl_cafile=pki["ca"], consumer_timeout_ms=5000,
                      auto_offset_reset="earliest")
    c.assign([TopicPartition(t, 0)])
    got = [m.value for m in c]
    c.close()
    assert got == [b"v%d" % i for i in range(20)]


# ---------------------------------------------------------------- wrong protocol

def test_plaintext_client_on_ssl_listener(sb):
    metadata_fails(sb.ssl_bootstrap, {})
    wait_log(sb, "the client does not speak TLS")
    assert sb.alive()


def test_ssl_client_on_plaintext_listener(sb, pki):
    metadata_fails(sb.bootstrap, ssl_conf(pki))
    wait_log(sb, "a TLS handshake on plaintext kafka listener")
    assert sb.alive()


def test_client_rejects_expired_server_certificate(pki, tmp_path):
    b = tls_broker(tmp_path, pki, server="server_expired")
    b.start()
    try:
        metadata_fails(b.ssl_bootstrap, ssl_conf(pki))
        # the python client says why
        ctx = ssl.create_default_context(cafile=pki["ca"])
        with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as s:
            with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
                ctx.wrap_socket(s, server_hostname="localhost")
        assert b.alive()
    finally:
        b.stop(check=True)
        b.cleanup()


def test_client_rejects_untrusted_server(sb, pki):
    metadata_fails(sb.ssl_bootstrap, ssl_conf(pki, ca=pki["other_ca"]))


def test_garbage_and_silence_on_ssl_listener(pki, tmp_path):
    """Random bytes, a half handshake, and a silent client: each closed with
    a log line, the broker serves on."""
    b = tls_broker(tmp_path, pki, {"request.read.timeout.ms": "1500"})
    b.start()
    try:
        for junk in (os.urandom(300), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40,
                     b"\x16\x03\x03\x00\x05hello"):
            with socket.create_connection(("127.0.0.1", b.ssl_port), timeout=5) as s:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                while s.recv(4096):
                    pass
        silent = socket.create_connection(("127.0.0.1", b.ssl_port), timeout=10)
        wait_log(b, "TLS handshake not finished after", timeout=10)
        assert silent.recv(10) == b""
        silent.close()
        r = kcat(b.ssl_bootstrap, "-X", "security.protocol=ssl", "-X",
                 "ssl.ca.location=" + pki["ca"], "-L")
        assert b"broker 1" in r.stdout
    finally:
        b.stop(check=True)
        b.cleanup()


# ---------------------------------------------------------------- mutual TLS

@pytest.fixture(scope="module")
def mtls(pki, tmp_path_factory):
    b = tls_broker(tmp_path_factory.mktemp("mtls"), pki, {
        "ssl.client.auth": "required", "ssl.ca.location": pki["ca"]})
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def test_mtls_trusted_client(mtls, pki):
    t = unique_topic("mtls")
    conf = ssl_conf(pki, cert="alice")
    p = ckhelp.producer(mtls.ssl_bootstrap, **{k.replace(".", "_"): v for k, v in conf.items()})
    p.produce(t, value=b"from alice")
    flush(p)
    c = ckhelp.consumer(mtls.ssl_bootstrap, **conf)
    c.assign([ckhelp.TopicPartition(t, 0, ckhelp.OFFSET_BEGINNING)])
    m = None
    deadline = time.time() + 20
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            break
    c.close()
    assert m is not None and m.value() == b"from alice"


@pytest.mark.parametrize("case,log", [
    ("none", "peer did not return a certificate"),
    ("mallory", "unable to get local issuer certificate"),
    ("expired", "certificate has expired"),
])
def test_mtls_refused(mtls, pki, case, log):
    conf = ssl_conf(pki, cert=None if case == "none" else case)
    metadata_fails(mtls.ssl_bootstrap, conf)
    wait_log(mtls, log)
    assert mtls.alive()


def test_kcat_over_mtls(mtls, pki):
    t = unique_topic("kmtls")
    args = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + pki["ca"],
            "-X", "ssl.certificate.location=" + pki["alice"][0],
            "-X", "ssl.key.location=" + pki["alice"][1]]
    kcat(mtls.ssl_bootstrap, *args, "-P", "-t", t, stdin=b"one\ntwo\n")
    r = kcat(mtls.ssl_bootstrap, *args, "-C", "-t", t, "-o", "beginning", "-e", "-q")
    assert r.stdout.split() == [b"one", b"two"]
    # without the client certificate kcat cannot get in
    r = kcat(mtls.ssl_bootstrap, "-X", "security.protocol=ssl", "-X",
             "ssl.ca.location=" + pki["ca"], "-X", "socket.timeout.ms=3000", "-m", "4", "-L",
             check=False, timeout=30)
    assert r.returncode != 0


def test_mtls_plaintext_listener_unaffected(mtls):
    r = kcat(mtls.bootstrap, "-L")
    assert b"broker 1" in r.stdout


# ---------------------------------------------------------------- start checks

def start_fails(tmp_path, settings, want):
    b = Broker(tmp_path / "d", tmp_path / "b.log", settings)
    with pytest.raises(BrokerError) as e:
        b.start(timeout=20)
    b.cleanup()
    assert want in str(e.value), str(e.value)[-2000:]


def test_insecure_listener_refused(tmp_path):
    p = free_port()
    start_fails(tmp_path, {"listeners": "PLAINTEXT://0.0.0.0:%d" % p},
                "would be open to other machines without TLS or authentication")
    start_fails(tmp_path, {"listeners": "PLAINTEXT://:%d" % p}, "allow.insecure.listeners=true")
    start_fails(tmp_path, {"amqp.listeners": "0.0.0.0:%d" % p}, "AMQP listener 0.0.0.0")


def test_insecure_listener_allowed_when_asked(tmp_path):
    p = free_port()
    b = Broker(tmp_path / "d", tmp_path / "b.log",
               {"listeners": "PLAINTEXT://0.0.0.0:%d" % p, "allow.insecure.listeners": "true"},
               port=p)
    b.start()
    try:
        assert b"broker 1" in kcat("127.0.0.1:%d" % p, "-L").stdout
    finally:
        b.stop(check=True)
        b.cleanup()


def test_ssl_on_every_interface_is_allowed(tmp_path, pki):
    p, sp = free_port(), free_port()
    b = Broker(tmp_path / "d", tmp_path / "b.log", {
        "listeners": "PLAINTEXT://127.0.0.1:%d,SSL://0.0.0.0:%d" % (p, sp),
        "ssl.certificate.location": pki["server"][0], "ssl.key.location": pki["server"][1]},
        port=p)
    b.start()
    try:
        r = kcat("127.0.0.1:%d" % sp, "-X", "security.protocol=ssl", "-X",
                 "ssl.ca.location=" + pki["ca"], "-L")
        assert b"broker 1 at 127.0.0.1:%d" % sp in r.stdout
    finally:
        b.stop(check=True)
        b.cleanup()


@pytest.mark.parametrize("settings,want", [
    ({"listeners": "SSL://127.0.0.1:%(p)d"}, "needs ssl.certificate.location"),
    ({"listeners": "SSL://127.0.0.1:%(p)d", "ssl.certificate.location": "/nonexistent.pem",
      "ssl.key.location": "/nonexistent.key"}, "cannot load certificate /nonexistent.pem"),
    ({"listeners": "SSL://127.0.0.1:%(p)d", "ssl.certificate.location": "%(cert)s",
      "ssl.key.location": "%(otherkey)s"}, "does not match the certificate"),
    ({"listeners": "INTERNAL://127.0.0.1:%(p)d"}, "INTERNAL is not in listener.security"),
    ({"listeners": "SASL_SSL://127.0.0.1:%(p)d"}, "SASL_SSL listener SASL_SSL needs ssl.certificate"),
    ({"ssl.client.auth": "required"}, "needs ssl.ca.location"),
])
def test_bad_tls_settings_refused(tmp_path, pki, settings, want):
    v = {"p": free_port(), "cert": pki["server"][0], "otherkey": pki["alice"][1]}
    start_fails(tmp_path, {k: s % v for k, s in settings.items()}, want)


def test_named_listeners_through_the_map(tmp_path, pki):
    p, sp = free_port(), free_port()
    b = Broker(tmp_path / "d", tmp_path / "b.log", {
        "listeners": "CLIENT://127.0.0.1:%d,SECURE://127.0.0.1:%d" % (p, sp),
        "listener.security.protocol.map": "CLIENT:PLAINTEXT,SECURE:SSL",
        "ssl.certificate.location": pki["server"][0], "ssl.key.location": pki["server"][1]},
        port=p)
    b.start()
    try:
        assert b"broker 1" in kcat("127.0.0.1:%d" % p, "-L").stdout
        r = kcat("127.0.0.1:%d" % sp, "-X", "security.protocol=ssl", "-X",
                 "ssl.ca.location=" + pki["ca"], "-L")
        assert b"broker 1 at 127.0.0.1:%d" % sp in r.stdout
    finally:
        b.stop(check=True)
        b.cleanup()


# ---------------------------------------------------------------- reload

def peer_cn(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            subj = dict(x[0] for x in t.getpeercert()["subject"])
            return subj["commonName"]


def test_sighup_reloads_certificates(pki, tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(pki["server"][0], cert)
    shutil.copy(pki["server"][1], key)
    b = tls_broker(tmp_path, pki, {"ssl.certificate.location": cert, "ssl.key.location": key})
    b.start()
    try:
        t = unique_topic("reload")
        conf = ssl_conf(pki)
        p = ckhelp.producer(b.ssl_bootstrap, **{k.replace(".", "_"): v for k, v in conf.items()})
        p.produce(t, value=b"before")
        flush(p)
        assert peer_cn(b.ssl_port, pki["ca"]) == "localhost"
        # A broken file: the reload is refused, the old certificate stays.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        b.proc.send_signal(signal.SIGHUP)
        wait_log(b, "certificates not reloaded")
        assert peer_cn(b.ssl_port, pki["ca"]) == "localhost"
        shutil.copy(pki["server2"][0], cert)
        shutil.copy(pki["server2"][1], key)
        b.proc.send_signal(signal.SIGHUP)
        wait_log(b, "certificates reloaded for 1 listener")
        assert peer_cn(b.ssl_port, pki["ca"]) == "cairn-reloaded"
        # The producer's connection, opened before, still works.
        p.produce(t, value=b"after")
        flush(p)
        r = kcat(b.ssl_bootstrap, "-X", "security.protocol=ssl", "-X",
                 "ssl.ca.location=" + pki["ca"], "-X", "ssl.endpoint.identification.algorithm=none",
                 "-C", "-t", t, "-o", "beginning", "-e")
        assert r.stdout.split() == [b"before", b"after"]
        assert b.alive()
    finally:
        b.stop(check=True)
        b.cleanup()


# ---------------------------------------------------------------- AMQP and HTTP

@pytest.fixture(scope="module")
def fe(pki, tmp_path_factory):
    """A broker with amqps:// and https:// listeners beside plaintext ones."""
    d = tmp_path_factory.mktemp("fe")
    ap, hp = free_port(), free_port()
    b = Broker(d / "data", d / "broker.log", {
        "amqp.listeners": "127.0.0.1:%d,amqps://127.0.0.1:%d" % (ap, free_port()),
        "http.listeners": "http://127.0.0.1:%d,https://127.0.0.1:%d" % (hp, free_port()),
        "ssl.certificate.location": pki["server"][0], "ssl.key.location": pki["server"][1]},
        amqp_port=ap, http_port=hp)
    b.amqps_port = int(b.settings["amqp.listeners"].rsplit(":", 1)[1])
    b.https_port = int(b.settings["http.listeners"].rsplit(":", 1)[1])
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def test_pika_over_amqps(fe, pki):
    import pika
    ctx = ssl.create_default_context(cafile=pki["ca"])
    params = pika.ConnectionParameters("127.0.0.1", fe.amqps_port,
                                       ssl_options=pika.SSLOptions(ctx, "localhost"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    q = unique_topic("tlsq")
    ch.queue_declare(q, durable=True)
    bodies = [os.urandom(50 + i * 300) for i in range(60)]  # up to ~18 KB: several records
    for body in bodies:
        ch.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2))
    got = []
    for _ in bodies:
        m, _, body = ch.basic_get(q, auto_ack=True)
        assert m is not None
        got.append(body)
    assert got == bodies
    conn.close()
    # the plaintext AMQP listener serves the same queues
    c2 = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", fe.amqp_port))
    c2.channel().queue_declare(q, durable=True, passive=True)
    c2.close()
    # a plaintext AMQP client on the TLS port is refused with a log line
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", fe.amqps_port, connection_attempts=1, socket_timeout=3,
            blocked_connection_timeout=3))
    wait_log(fe, "the client does not speak TLS")


def test_curl_and_sse_over_https(fe, pki):
    r = subprocess.run(["curl", "-sS", "--cacert", pki["ca"], "--max-time", "10",
                        "https://localhost:%d/healthz" % fe.https_port],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert '"ok"' in r.stdout
    t = unique_topic("tlsh")
    recs = [{"key": "k%d" % i, "value": "x" * (i * 100)} for i in range(40)]
    import http.client
    import json
    ctx = ssl.create_default_context(cafile=pki["ca"])
    c = http.client.HTTPSConnection("localhost", fe.https_port, context=ctx, timeout=20)
    c.request("POST", "/topics", body=json.dumps({"name": t, "partitions": 1}),
              headers={"Content-Type": "application/json"})
    assert c.getresponse().read() and True
    c.request("POST", "/topics/%s/records" % t, body=json.dumps({"records": recs}),
              headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200, resp.read()
    resp.read()
    # a Server-Sent Events stream over TLS (net's streaming slots through TLS)
    c.request("GET", "/topics/%s/stream?from=earliest" % t)
    resp = c.getresponse()
    assert resp.status == 200
    values = []
    while len(values) < len(recs):
        line = resp.fp.readline().decode()
        assert line, "stream ended"
        if line.startswith("data:"):
            values.append(json.loads(line[5:])["value"])
    assert values == [r["value"] for r in recs]
    c.close()
    # plain HTTP to the TLS port: refused (curl sees the connection close)
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/healthz" % fe.https_port],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    wait_log(fe, "the client does not speak TLS")


def test_amqp_http_insecure_refused(tmp_path):
    start_fails(tmp_path, {"http.listeners": "0.0.0.0:%d" % free_port()}, "use https://")
    start_fails(tmp_path, {"amqp.listeners": "amqps://127.0.0.1:%d" % free_port()},
                "amqps://127.0.0.1")
    start_fails(tmp_path, {"http.listeners": "ftp://127.0.0.1:%d" % free_port()},
                "is not [http://|https://]HOST:PORT")


# ---------------------------------------------------------------- cluster

def cluster_tls(pki, cert="node"):
    return {"security.inter.broker.protocol": "SSL", "ssl.certificate.location": pki[cert][0],
            "ssl.key.location": pki[cert][1], "ssl.ca.location": pki["ca"]}


@pytest.mark.cairn_timeout(240)
def test_cluster_over_mutual_tls(pki, tmp_path):
    from test_cluster_basic import Cluster, create_everywhere, read_all
    from test_cluster_basic import produce as cl_produce
    c = Cluster(tmp_path, settings=cluster_tls(pki))
    c.start()
    try:
        t = unique_topic("ctls")
        create_everywhere(c, t, 2)
        vals = [b"v%03d" % i for i in range(200)]
        acked, errors = cl_produce(c.bootstrap(), t, vals)
        assert not errors and len(acked) == len(vals)
        # every node holds the data: read from each one alone
        for b in c.nodes:
            assert sorted(set(read_all(b.bootstrap, t, 2, len(vals)))) == vals
        for b in c.nodes:
            assert "TLS handshake" not in b.log_text(400000)
    finally:
        c.stop()


@pytest.mark.cairn_timeout(240)
def test_cluster_node_with_untrusted_certificate_cannot_join(pki, tmp_path):
    from test_cluster_basic import Cluster, create_everywhere
    from test_cluster_basic import produce as cl_produce
    c = Cluster(tmp_path, settings=cluster_tls(pki))
    rogue = c.nodes[2]
    rogue.settings.update(cluster_tls(pki, cert="rogue_node"))
    c.start()
    try:
        # the two trusted nodes are a majority of every group: topics and acks=all
        # writes work
        a = ckhelp.AdminClient({"bootstrap.servers": c.nodes[0].bootstrap})
        t = unique_topic("crogue")
        fs = a.create_topics([ckhelp.NewTopic(t, num_partitions=1, replication_factor=3)])
        fs[t].result(30)
        acked, errors = cl_produce(c.nodes[0].bootstrap + "," + c.nodes[1].bootstrap, t,
                                   [b"a", b"b", b"c"])
        assert not errors and len(acked) == 3
        # the trusted nodes refused it, and it never learnt of the topic
        wait_log(c.nodes[0], "unable to get local issuer certificate", timeout=20)
        md = ckhelp.AdminClient({"bootstrap.servers": rogue.bootstrap}).list_topics(timeout=10)
        assert t not in md.topics or md.topics[t].error is not None
    finally:
        c.stop()


@pytest.mark.cairn_timeout(240)
def test_cluster_amqp_relay_over_tls(pki, tmp_path):
    """Nodes with amqps:// listeners only and TLS between them: a client of
    any node reaches the serving node, the followers relaying over TLS."""
    import pika
    import re
    from test_cluster_amqp import serving
    from test_cluster_basic import Cluster
    c = Cluster(tmp_path, settings=cluster_tls(pki))
    for b in c.nodes:
        b.amqps_port = free_port()
        b.settings["amqp.listeners"] = "amqps://127.0.0.1:%d" % b.amqps_port
    c.start()
    ctx = ssl.create_default_context(cafile=pki["ca"])

    def open_tls(b):
        try:
            return pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.amqps_port, ssl_options=pika.SSLOptions(ctx, "localhost"),
                heartbeat=0, connection_attempts=1, socket_timeout=5)), None
        except pika.exceptions.AMQPConnectionError as e:
            m = re.search(r"\((\d+)\) '([^']*)'", str(e))
            return None, (int(m.group(1)), m.group(2)) if m else (0, repr(e))

    try:
        via = []
        for j, b in enumerate(c.nodes):
            deadline = time.time() + 30
            while True:
                conn, why = open_tls(b)
                if conn:
                    break
                assert why[0] == 320, why  # not serving yet, or not knowing who does
                assert time.time() < deadline, "node %d neither relays nor serves: %s" % (
                    j + 1, why)
                time.sleep(0.2)
            via.append(serving(conn))
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare("q.tls", durable=True)
            ch.basic_publish("", "q.tls", b"via-%d" % (j + 1),
                             pika.BasicProperties(delivery_mode=2), mandatory=True)
            conn.close()
        assert len(set(via)) == 1, via  # one serving node, reached from all three
        served = via[0]
        for j, b in enumerate(c.nodes):
            if j + 1 != served:
                assert "relayed to node %d" % served in b.log_text(200000)
        conn, _ = open_tls(c.nodes[served - 1])
        ch = conn.channel()
        got = []
        while True:
            m, _, body = ch.basic_get("q.tls", auto_ack=True)
            if m is None:
                break
            got.append(body)
        conn.close()
        assert sorted(got) == sorted(b"via-%d" % (j + 1) for j in range(3)), got
    finally:
        c.stop()


def test_cluster_ssl_needs_ca(tmp_path, pki):
    start_fails(tmp_path, {"cluster.listeners": "127.0.0.1:%d" % free_port(),
                           "cluster.peers": "1@127.0.0.1:1", "security.inter.broker.protocol": "SSL",
                           "ssl.certificate.location": pki["node"][0],
                           "ssl.key.location": pki["node"][1]}, "needs ssl.certificate.location, "
                "ssl.key.location and ssl.ca.location")
    start_fails(tmp_path, {"cluster.listeners": "0.0.0.0:%d" % free_port(),
                           "cluster.peers": "1@127.0.0.1:1"},
                "set security.inter.broker.protocol=SSL")
