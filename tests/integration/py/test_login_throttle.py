"""Failed logins are delayed on every front end, from one count per
address (issue 13, brute force): a wrong Kafka SASL password, then a wrong
AMQP password, then a wrong HTTP Basic password and a made-up bearer token
from the same address each wait longer (100 ms, doubling). Each refusal is
logged, the broker stays up, and the right passwords still work at once."""
import struct
import subprocess
import time

import pika
import pika.exceptions
import requests

import kwire
from cairn_broker import Broker, BrokerError, free_port


def test_failed_logins_share_one_growing_delay(tmp_path):
    port, sp = free_port(), free_port()
    b = Broker(tmp_path / "data", tmp_path / "broker.log", {
        "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sp),
        "http.authentication": "basic"}, port=port)
    r = subprocess.run([b.bin, "user", "add", "alice", "--password", "alice-pw", "--data-dir",
                        b.data_dir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    b.start()
    try:
        times = []
        # Kafka: SASL PLAIN with a wrong password
        with kwire.Conn("127.0.0.1:%d" % sp, timeout=20) as c:
            assert c.request(17, 1, kwire.string("PLAIN"))[:2] == b"\0\0"
            tok = b"\0alice\0guess"
            t0 = time.time()
            body = c.request(36, 1, struct.pack(">i", len(tok)) + tok)
            times.append(time.time() - t0)
            assert kwire.Reader(body).i16() == 58  # SASL_AUTHENTICATION_FAILED
        # AMQP: PLAIN with a wrong password
        t0 = time.time()
        try:
            pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.amqp_port, credentials=pika.PlainCredentials("alice", "guess"),
                connection_attempts=1, socket_timeout=10))
            raise AssertionError("login accepted")
        except pika.exceptions.ProbableAuthenticationError:
            times.append(time.time() - t0)
        # HTTP: Basic with a wrong password, then a made-up bearer token
        base = "http://127.0.0.1:%d/topics" % b.http_port
        t0 = time.time()
        assert requests.get(base, auth=("alice", "guess"), timeout=20).status_code == 401
        times.append(time.time() - t0)
        t0 = time.time()
        r = requests.get(base, headers={"Authorization": "Bearer cairn_" + "0" * 16 + "_" +
                                        "1" * 64}, timeout=20)
        times.append(time.time() - t0)
        assert r.status_code == 401
        # 100, 200, 400, 800 ms (at least): one count for the address
        for got, least in zip(times, (0.1, 0.2, 0.4, 0.8)):
            assert got >= least * 0.95, times
        log = b.log_text(400000)
        for line in ("SASL PLAIN authentication failed for user 'alice'",
                     "Login was refused using authentication mechanism PLAIN (user 'alice')",
                     "login refused for user 'alice'", "bearer token refused"):
            assert line in log, line
        # the right credentials still work
        assert requests.get(base, auth=("alice", "alice-pw"), timeout=10).status_code == 200
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", b.amqp_port, credentials=pika.PlainCredentials("alice", "alice-pw"),
            connection_attempts=1, socket_timeout=10))
        conn.close()
        assert b.alive()
    finally:
        b.stop(check=True)
        b.cleanup()


def test_first_delay_is_configurable(tmp_path):
    """connection.failed.authentication.delay.ms, as Kafka names it."""
    b = Broker(tmp_path / "data", tmp_path / "broker.log", {
        "http.authentication": "basic", "connection.failed.authentication.delay.ms": "400"})
    r = subprocess.run([b.bin, "user", "add", "alice", "--password", "alice-pw", "--data-dir",
                        b.data_dir], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    b.start()
    try:
        base = "http://127.0.0.1:%d/topics" % b.http_port
        t0 = time.time()
        assert requests.get(base, auth=("alice", "guess"), timeout=20).status_code == 401
        assert time.time() - t0 >= 0.38
    finally:
        b.stop(check=True)
        b.cleanup()
    bad = Broker(tmp_path / "d2", tmp_path / "b2.log",
                 {"connection.failed.authentication.delay.ms": "6000"})
    try:
        bad.start(timeout=20)
        raise AssertionError("a delay above 5000 ms was accepted")
    except BrokerError as e:
        assert "connection.failed.authentication.delay.ms" in str(e)
    bad.cleanup()
