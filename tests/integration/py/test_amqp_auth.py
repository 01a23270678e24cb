"""AMQP logins and ACLs (issue 13, step 5): pika with PLAIN against the same
users Kafka's SASL checks, over amqps:// too; EXTERNAL with a TLS client
certificate; guest/guest only while no user named guest exists and only
from loopback; with the authorizer on, exchanges and queues governed by the
same ACLs (403 ACCESS_REFUSED)."""
import os
import ssl
import subprocess

import pika
import pika.exceptions
import pytest

from cairn_broker import Broker, free_port, unique_topic
from tlshelp import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("pki"))
    return {"ca": ca.pem, "server": ca.issue("server", "localhost", server=True),
            "alice": ca.issue("alice", "alice")}


def make(tmp_path, pki, extra=None, users=()):
    ap, sp = free_port(), free_port()
    settings = {"amqp.listeners": "127.0.0.1:%d,amqps://127.0.0.1:%d" % (ap, sp),
                "ssl.certificate.location": pki["server"][0],
                "ssl.key.location": pki["server"][1],
                "ssl.ca.location": pki["ca"], "ssl.client.auth": "requested"}
    settings.update(extra or {})
    b = Broker(tmp_path / "data", tmp_path / "broker.log", settings, amqp_port=ap)
    b.amqps_port = sp
    for name, pw in users:
        r = subprocess.run([b.bin, "user", "add", name, "--password", pw, "--data-dir", b.data_dir],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    return b


def params(b, user, pw, tls=None, pki=None, cert=None):
    if not tls:
        return pika.ConnectionParameters("127.0.0.1", b.amqp_port,
                                         credentials=pika.PlainCredentials(user, pw),
                                         connection_attempts=1, socket_timeout=5)
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if cert:
        ctx.load_cert_chain(*pki[cert])
    creds = pika.credentials.ExternalCredentials() if user is None else pika.PlainCredentials(user, pw)
    return pika.ConnectionParameters("127.0.0.1", b.amqps_port, credentials=creds,
                                     ssl_options=pika.SSLOptions(ctx, "localhost"),
                                     connection_attempts=1, socket_timeout=5)


def roundtrip(conn):
    ch = conn.channel()
    q = unique_topic("aq")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"hello")
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"hello"
    conn.close()


def test_users_plain_external_and_guest(pki, tmp_path):
    b = make(tmp_path, pki, users=[("alice", "alice-pw")])
    b.start()
    try:
        roundtrip(pika.BlockingConnection(params(b, "alice", "alice-pw")))
        roundtrip(pika.BlockingConnection(params(b, "alice", "alice-pw", tls=True, pki=pki)))
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(params(b, "alice", "wrong"))
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(params(b, "mallory", "x"))
        # EXTERNAL: the client certificate's subject is the user
        roundtrip(pika.BlockingConnection(params(b, None, None, tls=True, pki=pki, cert="alice")))
        # guest/guest from loopback while no user named guest exists
        roundtrip(pika.BlockingConnection(params(b, "guest", "guest")))
        assert "login refused" in b.log_text(200000) or "Login was refused" in b.log_text(200000)
        # once a user named guest exists, its own password counts
        r = subprocess.run([b.bin, "user", "add", "guest", "--password", "not-guest", "--http",
                            "127.0.0.1:%d" % b.http_port], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(params(b, "guest", "guest"))
        roundtrip(pika.BlockingConnection(params(b, "guest", "not-guest")))
    finally:
        b.stop(check=True)
        b.cleanup()


def test_amqp_acls(pki, tmp_path):
    b = make(tmp_path, pki, {"authorizer.enabled": "true"},
             users=[("alice", "alice-pw"), ("bob", "bob-pw")])
    b.start()
    try:
        http = ["--http", "127.0.0.1:%d" % b.http_port]
        acl = lambda *a: subprocess.run([b.bin, "acl", "add", *a, *http], capture_output=True,
                                        text=True, timeout=30)
        for args in (["--operation", "Create", "--operation", "Read", "--operation", "Write",
                      "--group", "work"],
                     ["--operation", "Write", "--topic", "amq.default"]):
            r = acl("--allow", "User:alice", *args)
            assert r.returncode == 0, r.stderr
        conn = pika.BlockingConnection(params(b, "alice", "alice-pw"))
        ch = conn.channel()
        ch.queue_declare("work")
        ch.basic_publish("", "work", b"job")
        _, _, body = ch.basic_get("work", auto_ack=True)
        assert body == b"job"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_declare("other")
        assert e.value.reply_code == 403 and "refused for User:alice" in e.value.reply_text
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_delete("work")  # DELETE not granted
        assert e.value.reply_code == 403
        conn.close()
        # bob has nothing: publishing to the default exchange is refused
        conn = pika.BlockingConnection(params(b, "bob", "bob-pw"))
        ch = conn.channel()
        ch.basic_publish("", "work", b"sneaky")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.basic_get("work")
        assert e.value.reply_code == 403
        conn.close()
        assert b.alive()
    finally:
        b.stop(check=True)
        b.cleanup()
