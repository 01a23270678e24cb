"""AMQP 0-9-1 connection layer (issue 10, step 2) against a real broker.

pika (Debian python3-pika) for the handshake, channels, heartbeats, server
properties and refusals; raw sockets for hostile input, each of which must
get the right connection.close reply code (or, for a wrong protocol header,
our own header back) and a log line, while the broker keeps serving."""
import socket
import struct
import time

import pika
import pika.exceptions
import pytest

HEADER = b"AMQP\x00\x00\x09\x01"


def params(broker, **kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", 5)
    kw.setdefault("blocked_connection_timeout", None)
    return pika.ConnectionParameters(broker.host, broker.amqp_port, **kw)


# ---------------------------------------------------------------- raw wire

def frame(ftype, channel, payload, end=0xCE):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


def shortstr(s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


def longstr(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(s)) + s


def table(entries):
    b = b""
    for k, v in entries:
        if isinstance(v, bool):
            b += shortstr(k) + b"t" + bytes([1 if v else 0])
        elif isinstance(v, dict):
            b += shortstr(k) + b"F" + table(list(v.items()))
        else:
            b += shortstr(k) + b"S" + longstr(v)
    return struct.pack(">I", len(b)) + b


class Raw:
    """A raw AMQP client: reads whole frames."""

    def __init__(self, broker, timeout=5):
        self.s = socket.create_connection((broker.host, broker.amqp_port), timeout=timeout)
        self.buf = b""

    def send(self, b):
        self.s.sendall(b)

    def read_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed with %d of %d bytes" % (len(self.buf), n))
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        t, ch, size = struct.unpack(">BHI", self.read_exact(7))
        payload = self.read_exact(size)
        end = self.read_exact(1)
        assert end == b"\xce"
        return t, ch, payload

    def read_method(self):
        """The next method frame (heartbeats skipped): (channel, class, method, args)."""
        while True:
            t, ch, p = self.read_frame()
            if t == 8:
                continue
            assert t == 1, "frame type %d" % t
            c, m = struct.unpack(">HH", p[:4])
            return ch, c, m, p[4:]

    def closed(self, timeout=3):
        """True once the broker closes the socket (after any bytes)."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def handshake(self, open_conn=True):
        self.send(HEADER)
        ch, c, m, _ = self.read_method()
        assert (ch, c, m) == (0, 10, 10)
        caps = {"authentication_failure_close": True}
        self.send(method(0, 10, 11, table([("capabilities", caps)]) + shortstr("PLAIN")
                         + longstr(b"\0guest\0guest") + shortstr("en_US")))
        ch, c, m, args = self.read_method()
        assert (ch, c, m) == (0, 10, 30)
        channel_max, frame_max, hb = struct.unpack(">HIH", args)
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        if open_conn:
            self.send(method(0, 10, 40, shortstr("/") + shortstr("") + b"\0"))
            assert self.read_method()[:3] == (0, 10, 41)
        return channel_max, frame_max, hb

    def expect_close(self, code):
        """The next method must be connection.close with this reply code;
        answer close-ok; the broker then closes the socket."""
        ch, c, m, args = self.read_method()
        assert (ch, c, m) == (0, 10, 50), "want connection.close, got %d/%d" % (c, m)
        got = struct.unpack(">H", args[:2])[0]
        text = args[3:3 + args[2]].decode()
        assert got == code, "reply %d (%s), want %d" % (got, text, code)
        try:
            self.send(method(0, 10, 51))
        except OSError:
            pass
        assert self.closed(), "socket not closed after connection.close"
        return text

    def close(self):
        self.s.close()


def still_serves(broker):
    conn = pika.BlockingConnection(params(broker))
    ch = conn.channel()
    assert ch.is_open
    conn.close()


# ---------------------------------------------------------------- pika

def test_connect_default_credentials_open_close(broker):
    conn = pika.BlockingConnection(params(broker))
    assert conn.is_open
    ch = conn.channel()
    assert ch.is_open
    ch.close()
    assert ch.is_closed
    conn.close()
    assert conn.is_closed


def test_several_channels(broker):
    conn = pika.BlockingConnection(params(broker))
    chans = [conn.channel() for _ in range(20)]
    nums = {c.channel_number for c in chans}
    assert len(nums) == 20
    for c in chans[::2]:
        c.close()
    more = [conn.channel() for _ in range(5)]  # numbers are reused
    assert all(c.is_open for c in chans[1::2] + more)
    conn.close()


def test_server_properties_and_capabilities(broker):
    conn = pika.BlockingConnection(params(broker))
    props = conn._impl.server_properties
    assert props["product"] == "Cairn"
    for k in ("version", "platform", "copyright", "information"):
        assert props[k], k
    caps = props["capabilities"]
    for k in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
              "consumer_cancel_notify", "connection.blocked", "authentication_failure_close",
              "per_consumer_qos", "direct_reply_to"):
        assert caps.get(k) is True, k
    conn.close()


def test_tune_values(broker):
    conn = pika.BlockingConnection(params(broker, heartbeat=0))
    assert conn._impl.params.channel_max == 2047
    assert conn._impl.params.frame_max == 131072
    conn.close()


def test_heartbeat_negotiated_and_kept(broker):
    """heartbeat=2: the broker sends heartbeats on an idle connection and does
    not drop a client that sends its own."""
    conn = pika.BlockingConnection(params(broker, heartbeat=2))
    assert conn._impl.params.heartbeat == 2
    before = conn._impl.bytes_received
    conn.sleep(5.5)  # pika's I/O loop runs; its heartbeats go out
    assert conn.is_open
    assert conn._impl.bytes_received > before  # at least the broker's heartbeats
    ch = conn.channel()
    assert ch.is_open
    conn.close()


def test_silent_client_dropped_after_two_intervals(broker):
    r = Raw(broker, timeout=10)
    r.send(HEADER)
    assert r.read_method()[:3] == (0, 10, 10)
    r.send(method(0, 10, 11, table([]) + shortstr("PLAIN") + longstr(b"\0guest\0guest")
                  + shortstr("en_US")))
    assert r.read_method()[:3] == (0, 10, 30)
    r.send(method(0, 10, 31, struct.pack(">HIH", 2047, 131072, 1)))
    r.send(method(0, 10, 40, shortstr("/") + shortstr("") + b"\0"))
    assert r.read_method()[:3] == (0, 10, 41)
    t0 = time.time()
    beats = 0
    r.s.settimeout(6)
    try:
        while True:
            t, ch, _ = r.read_frame()
            if t == 8:
                beats += 1
    except EOFError:
        pass
    took = time.time() - t0
    assert beats >= 1
    assert 1.5 <= took <= 4.5, took
    assert "missed heartbeats" in broker.log_text()


def test_bad_credentials_refused(broker):
    with pytest.raises((pika.exceptions.ProbableAuthenticationError,
                        pika.exceptions.AuthenticationError)):
        pika.BlockingConnection(params(broker, credentials=pika.PlainCredentials("guest", "nope")))
    with pytest.raises((pika.exceptions.ProbableAuthenticationError,
                        pika.exceptions.AuthenticationError)):
        pika.BlockingConnection(params(broker, credentials=pika.PlainCredentials("bob", "guest")))
    assert "Login was refused" in broker.log_text()
    still_serves(broker)


def test_bad_credentials_without_auth_failure_close_just_closes(broker):
    r = Raw(broker)
    r.send(HEADER)
    r.read_method()
    r.send(method(0, 10, 11, table([]) + shortstr("PLAIN") + longstr(b"\0guest\0bad")
                  + shortstr("en_US")))
    assert r.closed()
    assert r.buf == b""
    assert "login refused" in broker.log_text()


def test_amqplain_login(broker):
    r = Raw(broker)
    r.send(HEADER)
    r.read_method()
    resp = table([("LOGIN", "guest"), ("PASSWORD", "guest")])[4:]
    r.send(method(0, 10, 11, table([]) + shortstr("AMQPLAIN") + longstr(resp)
                  + shortstr("en_US")))
    assert r.read_method()[:3] == (0, 10, 30)
    r.close()


def test_bad_vhost_refused(broker):
    with pytest.raises(pika.exceptions.AMQPConnectionError) as ei:
        pika.BlockingConnection(params(broker, virtual_host="elsewhere"))
    assert "530" in repr(ei.value) or "NOT_ALLOWED" in repr(ei.value) or \
        isinstance(ei.value, pika.exceptions.ConnectionClosedByBroker)
    assert "vhost 'elsewhere' not found" in broker.log_text()
    still_serves(broker)


def test_later_step_method_gets_540(broker):
    # access.request (30/10: shortstr realm, bits): not served
    r = Raw(broker)
    r.handshake()
    r.send(method(1, 20, 10, shortstr("")))
    assert r.read_method()[:3] == (1, 20, 11)
    r.send(method(1, 30, 10, shortstr("/data") + b"\x00"))
    r.expect_close(540)
    assert "access.request is not implemented yet" in broker.log_text()
    still_serves(broker)


def test_client_channel_flow_and_close(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(1, 20, 10, shortstr("")))
    assert r.read_method()[:3] == (1, 20, 11)
    r.send(method(1, 20, 20, b"\x00"))  # flow active=false
    ch, c, m, args = r.read_method()
    assert (ch, c, m, args) == (1, 20, 21, b"\x00")
    r.send(method(1, 20, 40, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0)))
    assert r.read_method()[:3] == (1, 20, 41)
    # the channel number is free again
    r.send(method(1, 20, 10, shortstr("")))
    assert r.read_method()[:3] == (1, 20, 11)
    r.send(method(0, 10, 50, struct.pack(">H", 200) + shortstr("done") + struct.pack(">HH", 0, 0)))
    assert r.read_method()[:3] == (0, 10, 51)
    assert r.closed()


# ---------------------------------------------------------------- hostile input

def test_wrong_protocol_header(broker):
    for bad in (b"AMQP\x00\x00\x09\x00", b"AMQP\x01\x01\x00\x0a", b"GET / HTTP/1.1\r\n\r\n"):
        r = Raw(broker)
        r.send(bad)
        assert r.read_exact(8) == HEADER
        assert r.closed()
        r.close()
    assert "wrong protocol header" in broker.log_text()
    still_serves(broker)


def test_frame_before_header(broker):
    r = Raw(broker)
    r.send(method(0, 10, 11, b""))
    assert r.read_exact(8) == HEADER
    assert r.closed()
    still_serves(broker)


def test_oversized_frame_before_tune(broker):
    r = Raw(broker)
    r.send(HEADER)
    r.read_method()
    r.send(struct.pack(">BHI", 1, 0, 5000) + b"\0" * 100)  # above 4096 before tune-ok
    r.expect_close(501)
    assert "above frame_max 4096" in broker.log_text()
    still_serves(broker)


def test_oversized_frame_after_tune(broker):
    r = Raw(broker)
    r.handshake()
    r.send(frame(1, 1, b"\0" * 131072))  # 131080 bytes > 131072
    r.expect_close(501)
    still_serves(broker)


def test_bad_frame_end(broker):
    r = Raw(broker)
    r.handshake()
    r.send(frame(1, 1, struct.pack(">HH", 20, 10) + shortstr(""), end=0x00))
    text = r.expect_close(501)
    assert "FRAME_ERROR" in text
    assert "end octet 0x00" in broker.log_text()
    still_serves(broker)


def test_unknown_class_and_method(broker):
    for cls, meth in ((99, 10), (20, 99)):
        r = Raw(broker)
        r.handshake()
        r.send(method(1, cls, meth))
        r.expect_close(503)
    assert "unknown method 99/10" in broker.log_text()
    still_serves(broker)


def test_channel_method_on_channel_0(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(0, 20, 10, shortstr("")))
    r.expect_close(504)
    assert "channel.open on channel 0" in broker.log_text()
    still_serves(broker)


def test_method_on_unopened_channel(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(3, 20, 20, b"\x01"))
    r.expect_close(504)
    still_serves(broker)


def test_channel_opened_twice(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(1, 20, 10, shortstr("")))
    r.read_method()
    r.send(method(1, 20, 10, shortstr("")))
    r.expect_close(504)


def test_content_frame_without_method(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(1, 20, 10, shortstr("")))
    r.read_method()
    r.send(frame(3, 1, b"body"))
    r.expect_close(505)


def test_malformed_method_args(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(1, 20, 10, b"\x09ab"))  # shortstr runs past the frame
    r.expect_close(502)
    still_serves(broker)


def test_out_of_order_handshake(broker):
    r = Raw(broker)
    r.send(HEADER)
    r.read_method()
    r.send(method(0, 10, 40, shortstr("/") + shortstr("") + b"\0"))  # open before start-ok
    r.expect_close(503)


def test_server_method_from_client(broker):
    r = Raw(broker)
    r.handshake()
    r.send(method(0, 10, 30, struct.pack(">HIH", 1, 4096, 0)))  # connection.tune
    r.expect_close(503)


def test_bad_tune_ok(broker):
    r = Raw(broker)
    r.send(HEADER)
    r.read_method()
    r.send(method(0, 10, 11, table([]) + shortstr("PLAIN") + longstr(b"\0guest\0guest")
                  + shortstr("en_US")))
    r.read_method()
    r.send(method(0, 10, 31, struct.pack(">HIH", 2047, 1000000, 0)))
    r.expect_close(530)


def test_garbage(broker):
    r = Raw(broker)
    r.handshake()
    r.send(b"\x07\x00\x00\x00\x00\x00\x00\xce")  # frame type 7
    r.expect_close(501)
    r = Raw(broker)
    r.handshake()
    r.send(bytes(range(256)) * 4)
    # 0x00 type, channel 0x0102, size 0x03040506: far above frame_max
    r.expect_close(501)
    still_serves(broker)


def test_close_ok_timeout(broker):
    """A client that never answers our connection.close is dropped."""
    r = Raw(broker)
    r.handshake()
    r.send(method(0, 20, 10, shortstr("")))
    ch, c, m, args = r.read_method()
    assert (c, m) == (10, 50)
    t0 = time.time()
    assert r.closed(timeout=5)
    assert time.time() - t0 < 3
    assert "no close-ok" in broker.log_text()


def test_kafka_still_serves_beside_amqp(broker):
    s = socket.create_connection((broker.host, broker.port), timeout=5)
    # ApiVersions v0
    req = struct.pack(">hhi", 18, 0, 7) + struct.pack(">h", -1)
    s.sendall(struct.pack(">i", len(req)) + req)
    size = struct.unpack(">i", s.recv(4))[0]
    assert size > 0
    s.close()


def test_clean_exit_with_open_connections(broker_factory):
    b = broker_factory()
    conn = pika.BlockingConnection(params(b))
    conn.channel()
    r = Raw(b)
    r.handshake()
    b.stop(check=True)
    # the open raw connection heard 320 CONNECTION_FORCED
    ch, c, m, args = r.read_method()
    assert (c, m) == (10, 50)
    assert struct.unpack(">H", args[:2])[0] == 320


def test_amqp_off(broker_factory):
    """amqp.listeners=off (after the helper's --amqp-listen): no AMQP listener."""
    import cairn_broker
    b = broker_factory({"amqp.listeners": "off"}, start=False)
    old = cairn_broker.AMQP_READY_MARK
    cairn_broker.AMQP_READY_MARK = "kafka listening on"
    try:
        b.start()
    finally:
        cairn_broker.AMQP_READY_MARK = old
    assert "amqp listening" not in b.log_text()
    with pytest.raises(OSError):
        socket.create_connection((b.host, b.amqp_port), timeout=2)
    b.stop(check=True)


def test_explicit_address_that_cannot_bind_fails_startup(broker, broker_factory):
    """An address the user configured must bind (here: the module broker's
    AMQP port, in use)."""
    import cairn_broker
    b = broker_factory({"amqp.listeners": "127.0.0.1:%d" % broker.amqp_port}, start=False)
    with pytest.raises(cairn_broker.BrokerError):
        b.start()
    assert not b.alive()
    assert b.proc.returncode == 1


# ---------------------------------------------------------------- amqp-tools (librabbitmq)

def amqp_tool(name, url, *args):
    import shutil
    import subprocess
    if not shutil.which(name):
        pytest.skip("%s not installed (Debian amqp-tools)" % name)
    return subprocess.run([name, "--url", url] + list(args), capture_output=True, text=True,
                          timeout=20)


def test_amqp_tools_connect_and_refusals(broker):
    base = "amqp://guest:guest@%s:%d" % (broker.host, broker.amqp_port)
    p = amqp_tool("amqp-declare-queue", base, "-q", "q1")
    assert p.returncode == 0 and p.stdout.strip() == "q1", (p.stdout, p.stderr)
    p = amqp_tool("amqp-declare-queue", "amqp://guest:bad@%s:%d" % (broker.host, broker.amqp_port),
                  "-q", "q1")
    assert p.returncode != 0 and "403" in p.stderr and "ACCESS_REFUSED" in p.stderr, p.stderr
    p = amqp_tool("amqp-declare-queue", base + "/other", "-q", "q1")
    assert p.returncode != 0 and "530" in p.stderr, p.stderr
    still_serves(broker)


# ---------------------------------------------------------------- no IPv6

def _netns_without_ipv6():
    import subprocess
    probe = "ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1"
    try:
        ok = subprocess.run(["unshare", "-rn", "sh", "-c", probe], capture_output=True,
                            timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip("cannot make a network namespace without IPv6 (unshare -rn)")
    return "ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 && exec \"$@\""


def test_default_ipv6_address_is_optional_but_explicit_one_is_not(tmp_path):
    """Without IPv6 the default [::1]:5672 is skipped with a warning (a fresh
    network namespace: 5672 is free there); an explicit [::1] fails start-up."""
    import signal
    import subprocess
    from cairn_broker import cairn_bin
    script = _netns_without_ipv6()
    log = tmp_path / "ns.log"
    base = ["unshare", "-rn", "sh", "-c", script, "sh", cairn_bin(), "--listen",
            "127.0.0.1:9092", "--data-dir", str(tmp_path / "data")]
    with open(log, "wb") as f:
        p = subprocess.Popen(base, stdout=f, stderr=f)
    try:
        deadline = time.time() + 10
        while "amqp listening on 127.0.0.1:5672" not in log.read_text():
            assert p.poll() is None, log.read_text()
            assert time.time() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        assert "cannot listen on ::1:5672" in text and "going on without it" in text
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0, log.read_text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = subprocess.run(base + ["--amqp-listen", "[::1]:5672"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1, r.stderr
    assert "listen on ::1:5672 failed" in r.stderr
