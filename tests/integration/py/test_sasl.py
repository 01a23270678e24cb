"""SASL on Kafka listeners (issue 13, step 3): users made with `cairn user`
and with AlterUserScramCredentials, then kcat, confluent-kafka and
kafka-python logging in with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over
SASL_SSL and SASL_PLAINTEXT; the errors clients see for a wrong password,
an unknown user, an unknown mechanism and no credentials; the growing delay
of failed logins; KIP-368 session expiry and re-authentication; SaslHandshake
v0 raw tokens; users surviving a restart."""
import hashlib
import hmac
import os
import shutil
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaException

import ckhelp
import kwire
from cairn_broker import Broker, BrokerError, free_port, unique_topic
from ckhelp import flush
from tlshelp import CA

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("pki"))
    return {"ca": ca.pem, "server": ca.issue("server", "localhost", server=True)}


def sasl_broker(tmp_path, pki, extra=None):
    port, sslp, plainp = free_port(), free_port(), free_port()
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d"
                     % (port, sslp, plainp),
        "ssl.certificate.location": pki["server"][0], "ssl.key.location": pki["server"][1],
    }
    settings.update(extra or {})
    b = Broker(tmp_path / "data", tmp_path / "broker.log", settings, port=port)
    b.sasl_ssl = "127.0.0.1:%d" % sslp
    b.sasl_plain = "127.0.0.1:%d" % plainp
    return b


def cli(b, *args, check=True):
    r = subprocess.run([b.bin, *args, "--http", "127.0.0.1:%d" % b.http_port],
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def sb(pki, tmp_path_factory):
    b = sasl_broker(tmp_path_factory.mktemp("sasl"), pki)
    b.start()
    cli(b, "user", "add", "alice", "--password", "alice-secret")
    cli(b, "user", "add", "bob", "--password", "bob-secret", "--mechanism", "SCRAM-SHA-256",
        "--iterations", "8192")
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def kcat(bootstrap, *args, stdin=None, check=True):
    argv = ["kcat", "-b", bootstrap, "-X", "log_level=3", *args]
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (argv, r.returncode, r.stderr[-2000:]))
    return r


def login_fails(bootstrap, args):
    """A producer with these credentials: kcat gives up at the first
    authentication failure (failed logins from this address are answered
    later and later, up to 5 s, so the socket timeout is above that)."""
    r = kcat(bootstrap, *args, "-X", "socket.timeout.ms=20000", "-P", "-t", "nothing",
             stdin=b"x\n", check=False)
    assert r.returncode != 0
    return r


def sasl_args(mech, user, pw, ssl_ca=None):
    a = ["-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + user,
         "-X", "sasl.password=" + pw]
    if ssl_ca:
        return ["-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + ssl_ca] + a
    return ["-X", "security.protocol=sasl_plaintext"] + a


def wait_log(b, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in b.log_text(400000):
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the broker log:\n%s" % (text, b.log_text(3000)))


# ---------------------------------------------------------------- clients

def test_cli_lists_users(sb):
    out = cli(sb, "user", "list").stdout
    assert "alice" in out and "SCRAM-SHA-512 (4096)" in out
    assert "bob" in out and "SCRAM-SHA-256 (8192)" in out
    assert "secret" not in out


@pytest.mark.parametrize("mech", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_kcat_sasl_ssl(sb, pki, mech):
    t = unique_topic("sasl")
    a = sasl_args(mech, "alice", "alice-secret", pki["ca"])
    kcat(sb.sasl_ssl, *a, "-P", "-t", t, stdin=b"one\ntwo\n")
    out = kcat(sb.sasl_ssl, *a, "-C", "-t", t, "-o", "beginning", "-e").stdout
    assert out.split() == [b"one", b"two"]
    # Metadata sends the client back to the SASL_SSL listener
    assert b"broker 1 at %s" % sb.sasl_ssl.encode() in kcat(sb.sasl_ssl, *a, "-L").stdout


def test_confluent_group_over_sasl_plaintext(sb):
    t = unique_topic("saslg")
    conf = {"security.protocol": "sasl_plaintext", "sasl.mechanisms": "SCRAM-SHA-256",
            "sasl.username": "bob", "sasl.password": "bob-secret"}
    p = ckhelp.producer(sb.sasl_plain, **{k.replace(".", "_"): v for k, v in conf.items()})
    for i in range(50):
        p.produce(t, value=b"m%d" % i)
    flush(p)
    c = ckhelp.consumer(sb.sasl_plain, **dict(conf, **{"group.id": unique_topic("g"),
                                                     "enable.partition.eof": False}))
    c.subscribe([t])
    got, last = [], None
    deadline = time.time() + 30
    while len(got) < 50 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
            last = m
    c.commit(message=last, asynchronous=False)  # the group coordinator over SASL too
    c.close()
    assert got == [b"m%d" % i for i in range(50)]


@pytest.mark.parametrize("mech", ["SCRAM-SHA-512", "PLAIN"])
def test_kafka_python(sb, pki, mech):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = unique_topic("saslkp")
    kw = dict(bootstrap_servers=sb.sasl_ssl, security_protocol="SASL_SSL", ssl_cafile=pki["ca"],
              sasl_mechanism=mech, sasl_plain_username="alice",
              sasl_plain_password="alice-secret")
    p = KafkaProducer(**kw)
    for i in range(10):
        p.send(t, b"k%d" % i).get(timeout=30)
    p.close()
    c = KafkaConsumer(consumer_timeout_ms=5000, auto_offset_reset="earliest", **kw)
    c.assign([TopicPartition(t, 0)])
    got = [m.value for m in c]
    c.close()
    assert got == [b"k%d" % i for i in range(10)]


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("user,pw,mechs", [("alice", "wrong", ("SCRAM-SHA-256", "PLAIN")),
                                            ("mallory", "x", ("SCRAM-SHA-512",)),
                                            ("bob", "alice-secret", ("PLAIN",))])
def test_bad_credentials(sb, user, pw, mechs):
    for mech in mechs:
        # failed logins from this address are answered later and later (up
        # to 5 s): wait longer than that for the answer
        r = login_fails(sb.sasl_plain, sasl_args(mech, user, pw))
        assert r.returncode != 0
        assert b"Authentication failed" in r.stderr, r.stderr[-1000:]
    wait_log(sb, "authentication failed for user '%s'" % user)
    assert sb.alive()


def test_no_credentials_on_sasl_listener(sb):
    r = kcat(sb.sasl_plain, "-L", "-m", "5", check=False)
    assert r.returncode != 0
    wait_log(sb, "not authenticated: SASL comes first on this listener")
    # a plaintext listener beside it needs nothing
    assert b"broker 1" in kcat(sb.bootstrap, "-L").stdout


def handshake(c, mech, version=1):
    body = c.request(17, version, kwire.string(mech))
    r = kwire.Reader(body)
    err = r.i16()
    mechs = [r.string() for _ in range(r.i32())]
    return err, mechs


def authenticate(c, token, version=1):
    body = c.request(36, version, struct.pack(">i", len(token)) + token)
    r = kwire.Reader(body)
    err, msg, data = r.i16(), r.string(), r.nbytes()
    life = r.i64() if version >= 1 else None
    return err, msg, data, life


def test_unknown_mechanism_and_order(sb):
    with kwire.Conn(sb.sasl_plain) as c:
        err, mechs = handshake(c, "GSSAPI")
        assert err == 33  # UNSUPPORTED_SASL_MECHANISM
        assert set(mechs) == {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}
        assert c.is_closed()
    with kwire.Conn(sb.sasl_plain) as c:  # SaslAuthenticate before SaslHandshake
        c.send_raw(b"")
        with pytest.raises(kwire.Closed):
            authenticate(c, b"\0alice\0alice-secret")
    with kwire.Conn(sb.bootstrap) as c:  # SaslHandshake on a plaintext listener
        err, mechs = handshake(c, "PLAIN")
        assert err == 34 and mechs == []  # ILLEGAL_SASL_STATE


def test_failed_logins_are_delayed_more_and_more(pki, tmp_path):
    b = sasl_broker(tmp_path, pki)  # its own count of failures
    b.start()
    try:
        failed_logins(b)
    finally:
        b.stop(check=True)
        b.cleanup()


def failed_logins(sb):
    times = []
    for _ in range(4):
        with kwire.Conn(sb.sasl_plain, timeout=20) as c:
            assert handshake(c, "PLAIN")[0] == 0
            t0 = time.time()
            err, msg, _, _ = authenticate(c, b"\0mallory\0guess")
            times.append(time.time() - t0)
            assert err == 58 and "invalid credentials" in msg
            assert c.is_closed()
    # 100 ms, then doubling per failure from the address (up to 5 s)
    assert times[-1] > times[0] and times[-1] >= 0.7, times
    assert sb.alive()


def test_handshake_v0_raw_tokens(sb):
    with kwire.Conn(sb.sasl_plain) as c:
        assert handshake(c, "PLAIN", version=0)[0] == 0
        tok = b"\0alice\0alice-secret"
        c.send_raw(struct.pack(">i", len(tok)) + tok)
        assert c.recv_frame() == b""  # PLAIN's empty server token
        assert kwire.parse_api_versions_v0(c.request(18, 0, b""))  # requests from now on
    with kwire.Conn(sb.sasl_plain) as c:
        assert handshake(c, "PLAIN", version=0)[0] == 0
        tok = b"\0alice\0nope"
        c.send_raw(struct.pack(">i", len(tok)) + tok)
        assert c.is_closed(timeout=10)


# ---------------------------------------------------------------- KIP-368

def test_session_expiry_and_reauthentication(pki, tmp_path):
    b = sasl_broker(tmp_path, pki, {"connections.max.reauth.ms": "1500"})
    b.start()
    try:
        cli(b, "user", "add", "carol", "--password", "pw-carol")
        tok = b"\0carol\0pw-carol"
        with kwire.Conn(b.sasl_plain) as c:
            assert handshake(c, "PLAIN")[0] == 0
            err, _, _, life = authenticate(c, tok)
            assert err == 0 and life == 1500
            c.request(18, 0, b"")
            time.sleep(0.9)
            # re-authenticate before the end: the session goes on
            assert handshake(c, "PLAIN")[0] == 0
            err, _, _, life = authenticate(c, tok)
            assert err == 0 and life == 1500
            time.sleep(0.9)
            c.request(3, 1, kwire.i32(-1))  # Metadata, past the first session's end
            time.sleep(1.0)
            with pytest.raises(kwire.Closed):
                c.request(3, 1, kwire.i32(-1))
        wait_log(b, "SASL session expired")
        # re-authentication as someone else is refused
        cli(b, "user", "add", "dave", "--password", "pw-dave")
        with kwire.Conn(b.sasl_plain) as c:
            assert handshake(c, "PLAIN")[0] == 0
            assert authenticate(c, tok)[0] == 0
            assert handshake(c, "PLAIN")[0] == 0
            err, msg, _, _ = authenticate(c, b"\0dave\0pw-dave")
            assert err == 58
    finally:
        b.stop(check=True)
        b.cleanup()


# ---------------------------------------------------------------- KIP-554

def cbytes(b):
    return kwire.uvarint(len(b) + 1) + b


def alter(c, deletions=(), upsertions=()):
    body = kwire.uvarint(len(deletions) + 1)
    for name, mech in deletions:
        body += kwire.compact_string(name) + kwire.i8(mech) + b"\0"
    body += kwire.uvarint(len(upsertions) + 1)
    for name, mech, iters, salt, salted in upsertions:
        body += (kwire.compact_string(name) + kwire.i8(mech) + kwire.i32(iters) + cbytes(salt)
                 + cbytes(salted) + b"\0")
    body += b"\0"
    r = kwire.Reader(c.request(51, 0, body, flexible_header=True)[1:])
    r.i32()
    out = {}
    for _ in range(r.uvarint() - 1):
        user = r.take(r.uvarint() - 1).decode()
        err = r.i16()
        n = r.uvarint()
        msg = r.take(n - 1).decode() if n else None
        r.uvarint()
        out[user] = (err, msg)
    return out


def describe(c, users=None):
    if users is None:
        body = b"\0\0"
    else:
        body = kwire.uvarint(len(users) + 1)
        for u in users:
            body += kwire.compact_string(u) + b"\0"
        body += b"\0"
    r = kwire.Reader(c.request(50, 0, body, flexible_header=True)[1:])
    r.i32()
    assert r.i16() == 0
    n = r.uvarint()
    if n:
        r.take(n - 1)
    out = {}
    for _ in range(r.uvarint() - 1):
        user = r.take(r.uvarint() - 1).decode()
        err = r.i16()
        n = r.uvarint()
        if n:
            r.take(n - 1)
        creds = []
        for _ in range(r.uvarint() - 1):
            creds.append((r.i8(), r.i32()))
            r.uvarint()
        r.uvarint()
        out[user] = (err, creds)
    return out


def test_alter_and_describe_user_scram_credentials(sb, pki):
    salt = os.urandom(24)
    salted = hashlib.pbkdf2_hmac("sha512", b"erin-pw", salt, 4096, 64)
    with kwire.Conn(sb.bootstrap) as c:
        res = alter(c, upsertions=[("erin", 2, 4096, salt, salted),
                                   ("weak", 1, 100, salt, salted[:32]),
                                   ("twice", 1, 4096, salt, salted[:32])],
                    deletions=[("twice", 1), ("ghost", 2)])
        assert res["erin"] == (0, None)
        assert res["weak"][0] == 93  # UNACCEPTABLE_CREDENTIAL
        assert res["twice"][0] == 92  # DUPLICATE_RESOURCE
        assert res["ghost"][0] == 91  # RESOURCE_NOT_FOUND
        d = describe(c, ["erin", "alice", "nobody"])
        assert d["erin"] == (0, [(2, 4096)])
        assert d["alice"] == (0, [(1, 4096), (2, 4096)])
        assert d["nobody"][0] == 91
        assert set(describe(c)) >= {"alice", "bob", "erin"}
    # the client-salted credential logs in
    a = sasl_args("SCRAM-SHA-512", "erin", "erin-pw", pki["ca"])
    assert b"broker 1" in kcat(sb.sasl_ssl, *a, "-L").stdout
    with kwire.Conn(sb.bootstrap) as c:
        assert alter(c, deletions=[("erin", 2)])["erin"] == (0, None)
    r = login_fails(sb.sasl_ssl, a)
    assert b"Authentication failed" in r.stderr


# ---------------------------------------------------------------- persistence, config

def test_users_survive_restart(pki, tmp_path):
    b = sasl_broker(tmp_path, pki)
    b.start()
    try:
        cli(b, "user", "add", "frank", "--password", "pw-frank", "--mechanism", "SCRAM-SHA-512")
        cli(b, "user", "add", "gone", "--password", "x")
        cli(b, "user", "delete", "gone")
        b.kill9()
        b.start()
        out = cli(b, "user", "list").stdout
        assert "frank" in out and "gone" not in out
        assert b"broker 1" in kcat(b.sasl_plain, *sasl_args("SCRAM-SHA-512", "frank", "pw-frank"),
                                   "-L").stdout
        r = cli(b, "user", "delete", "nobody", check=False)
        assert r.returncode != 0 and "does not exist" in r.stderr
    finally:
        b.stop(check=True)
        b.cleanup()


def start_fails(tmp_path, settings, want):
    b = Broker(tmp_path / "d", tmp_path / "b.log", settings)
    with pytest.raises(BrokerError) as e:
        b.start(timeout=20)
    b.cleanup()
    assert want in str(e.value), str(e.value)[-2000:]


def test_sasl_settings_refused(tmp_path):
    p = free_port()
    start_fails(tmp_path, {"listeners": "SASL_PLAINTEXT://0.0.0.0:%d" % p},
                "would take PLAIN passwords in clear text")
    start_fails(tmp_path, {"sasl.enabled.mechanisms": "GSSAPI"}, "'GSSAPI' is not one of")


def test_offline_users_and_the_data_directory_lock(pki, tmp_path):
    """`cairn user --data-dir` writes the users of a stopped broker; while a
    broker has the directory open it is refused, as is a second broker."""
    b = sasl_broker(tmp_path, pki)
    run = lambda *a: subprocess.run([b.bin, "user", *a, "--data-dir", b.data_dir],
                                    capture_output=True, text=True, timeout=30)
    r = run("add", "olga", "--password", "pw-olga", "--mechanism", "SCRAM-SHA-512")
    assert r.returncode == 0, r.stderr
    assert run("add", "temp", "--password", "t").returncode == 0
    assert run("delete", "temp").returncode == 0
    r = run("list")
    assert "olga" in r.stdout and "SCRAM-SHA-512 (4096)" in r.stdout and "temp" not in r.stdout
    b.start()
    try:
        assert b"broker 1" in kcat(b.sasl_plain, *sasl_args("SCRAM-SHA-512", "olga", "pw-olga"),
                                   "-L").stdout
        r = run("add", "late", "--password", "x")
        assert r.returncode != 0 and "in use" in r.stderr
        second = Broker(tmp_path / "data", tmp_path / "second.log", {})
        second.data_dir = b.data_dir
        with pytest.raises(BrokerError) as e:
            second.start(timeout=20)
        second.cleanup()
        assert "is in use by another process (pid %d)" % b.proc.pid in str(e.value)
    finally:
        b.stop(check=True)
        b.cleanup()
