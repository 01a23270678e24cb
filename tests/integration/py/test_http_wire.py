"""HTTP front end on the wire: keep-alive, pipelining in order, chunked
bodies, 100-continue, Connection: close, HTTP/1.0, and malformed input
(400, 413, 431, 501 as JSON errors, then the connection closes; never a
crash, the broker keeps serving)."""
import http.client
import json
import threading
import time

import pytest

from cairn_broker import unique_topic
from httphelp import get, post, raw_connect, read_response, wait_closed


@pytest.fixture(scope="module")
def broker_settings():
    return {"http.max.header.bytes": "4096", "http.max.body.bytes": "100000"}


def accepted(broker):
    b = get(broker, "/broker")[2]
    return [x for x in b["listeners"] if x["protocol"] == "http"][0]["connections_accepted"]


def new_topic(broker, partitions=1):
    name = unique_topic("hw")
    st, _, b = post(broker, "/topics", {"name": name, "partitions": partitions})
    assert st == 201, b
    return name


def test_keep_alive_serves_many_requests_on_one_connection(broker):
    name = new_topic(broker)
    before = accepted(broker)
    conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    for i in range(20):
        conn.request("POST", "/topics/%s/records" % name,
                     body=json.dumps({"records": [{"value": "r%d" % i}]}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["offsets"][0]["offset"] == i
        assert r.getheader("Connection") is None  # stays open
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
    sock = conn.sock
    conn.request("GET", "/topics/%s/partitions/0/records" % name)
    r = conn.getresponse()
    assert len(json.loads(r.read())["records"]) == 20
    assert conn.sock is sock  # never reconnected
    conn.close()
    # our 41 requests used one connection (the /broker calls one each)
    assert accepted(broker) - before == 2


def test_pipelined_requests_are_answered_in_order(broker):
    name = new_topic(broker)
    body = json.dumps({"records": [{"value": "p"}]}).encode()
    reqs = b""
    for i in range(5):
        reqs += (b"POST /topics/%s/records HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                 % (name.encode(), len(body))) + body
        reqs += b"GET /nope-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
    reqs += b"GET /topics/%s/partitions/0/records HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode()
    s = raw_connect(broker)
    s.sendall(reqs)  # all at once: the broker sees them in one read
    buf = b""
    for i in range(5):
        st, _, b, buf = read_response(s, buf)
        assert st == 200, b
        assert json.loads(b)["offsets"][0]["offset"] == i
        st, _, b, buf = read_response(s, buf)
        assert st == 404 and json.loads(b)["error_code"] == "not_found"
    st, _, b, buf = read_response(s, buf)
    assert [r["offset"] for r in json.loads(b)["records"]] == [0, 1, 2, 3, 4]
    assert buf == b""
    s.close()


def test_pipelined_long_poll_holds_back_later_answers(broker):
    """A parked read is answered before the request pipelined after it, even
    though the later one is ready first."""
    name = new_topic(broker)
    s = raw_connect(broker)
    t0 = time.time()
    s.sendall(b"GET /topics/%s/partitions/0/records?offset=0&timeout_ms=700 HTTP/1.1\r\n"
              b"Host: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
    st, _, b, buf = read_response(s)
    assert st == 200 and json.loads(b)["records"] == []
    assert time.time() - t0 >= 0.65
    st, _, b, buf = read_response(s, buf)
    assert st == 200 and json.loads(b) == {"status": "ok"}
    s.close()


def test_chunked_request_body(broker):
    name = new_topic(broker)
    body = json.dumps({"records": [{"value": "chunk-%d" % i} for i in range(30)]}).encode()
    chunks = b""
    for i in range(0, len(body), 37):
        part = body[i:i + 37]
        chunks += b"%x\r\n%s\r\n" % (len(part), part)
    chunks += b"0\r\n\r\n"
    s = raw_connect(broker)
    s.sendall(b"POST /topics/%s/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              % name.encode())
    for i in range(0, len(chunks), 50):  # in pieces, as a slow client would
        s.sendall(chunks[i:i + 50])
        time.sleep(0.001)
    st, _, b, _ = read_response(s)
    assert st == 200, b
    assert [o["offset"] for o in json.loads(b)["offsets"]] == list(range(30))
    # a chunked body over the limit: 413, closed
    s.sendall(b"POST /topics/%s/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              % name.encode())
    big = b"x" * 60000
    s.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n" % (len(big), big, len(big), big))
    st, h, b, _ = read_response(s)
    assert st == 413 and json.loads(b)["error_code"] == "body_too_large"
    assert h["connection"] == "close"
    assert wait_closed(s)
    s.close()


def test_expect_100_continue(broker):
    name = new_topic(broker)
    body = json.dumps({"records": [{"value": "after continue"}]}).encode()
    s = raw_connect(broker)
    s.sendall(b"POST /topics/%s/records HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % (name.encode(), len(body)))
    st, _, b, buf = read_response(s)
    assert st == 100
    s.sendall(body)
    st, _, b, _ = read_response(s, buf)
    assert st == 200 and json.loads(b)["offsets"][0]["offset"] == 0
    s.sendall(b"POST /topics/x/records HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n"
              b"Content-Length: 2\r\n\r\n{}")
    st, _, b, _ = read_response(s)
    assert st == 417 and json.loads(b)["error_code"] == "expectation_failed"
    s.close()


def test_connection_close_and_http_1_0(broker):
    s = raw_connect(broker)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, h, b, _ = read_response(s)
    assert st == 200 and h["connection"] == "close"
    assert wait_closed(s)
    s.close()
    s = raw_connect(broker)
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    st, h, b, _ = read_response(s)
    assert st == 200 and json.loads(b) == {"status": "ok"}
    assert h["connection"] == "close"
    assert wait_closed(s)
    s.close()
    # HTTP/1.0 with keep-alive asked for: said back, and the connection stays
    s = raw_connect(broker)
    for _ in range(3):
        s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        st, h, b, _ = read_response(s)
        assert st == 200 and h["connection"] == "keep-alive"
    s.close()


# closes: a framing error (the byte stream is out of step) ends the connection;
# a well-framed request with a bad target does not.
@pytest.mark.parametrize("raw,status,code,closes", [
    (b"GARBAGE\r\n\r\n", 501, "method_not_implemented", True),
    (b"GET /healthz XTTP/1.1\r\n\r\n", 400, "bad_request", True),
    (b"\x00\x01\x02\xff\r\n\r\n", 501, "method_not_implemented", True),
    (b"GET /healthz HTTP/1.x\r\n\r\n", 400, "bad_request", True),
    (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_request", True),
    (b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
     "bad_request", True),
    (b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, "bad_request", True),
    (b"POST /topics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "body_too_large",
     True),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431,
     "header_too_large", True),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 431, "header_too_large", True),
    (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(70)) +
     b"\r\n", 431, "header_too_large", True),
    (b"GET http://example.com/healthz HTTP/1.1\r\n\r\n", 400, "bad_request", False),
    (b"GET /to%zzpics HTTP/1.1\r\n\r\n", 400, "bad_request", False),
    (b"GET /to%00pics HTTP/1.1\r\n\r\n", 400, "bad_request", False),
])
def test_malformed_requests_get_a_json_error(broker, raw, status, code, closes):
    s = raw_connect(broker)
    s.sendall(raw)
    st, h, b, _ = read_response(s)
    assert st == status, b
    body = json.loads(b)
    assert body["error_code"] == code and body["message"]
    if closes:
        assert h["connection"] == "close"
        assert wait_closed(s)
    else:
        assert "connection" not in h
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert read_response(s)[0] == 200
    s.close()
    assert get(broker, "/healthz")[0] == 200


def test_unknown_method_501_is_logged(broker):
    s = raw_connect(broker)
    s.sendall(b"BREW /healthz HTTP/1.1\r\n\r\n")
    st, h, b, _ = read_response(s)
    assert st == 501 and json.loads(b)["error_code"] == "method_not_implemented"
    assert wait_closed(s)
    s.close()
    assert "501 method_not_implemented" in broker.log_text(200000)


def test_slow_request_is_cut_by_the_request_timeout(broker_factory):
    b = broker_factory({"request.read.timeout.ms": "1000"})
    s = raw_connect(b)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
    t0 = time.time()
    assert wait_closed(s, timeout=5)
    assert 0.9 <= time.time() - t0 < 4.5
    s.close()
    assert "request incomplete after" in b.log_text()


def test_many_connections_in_parallel(broker):
    name = new_topic(broker, 4)
    errors = []

    def worker(n):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=20)
            for i in range(10):
                conn.request("POST", "/topics/%s/records" % name,
                             body=json.dumps({"records": [{"key": "w%d" % n, "value": str(i)}]}))
                r = conn.getresponse()
                if r.status != 200:
                    errors.append(r.read())
                r.read()
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    d = get(broker, "/topics/" + name)[2]
    assert sum(p["log_end_offset"] for p in d["partitions"]) == 160


def test_connection_limit_applies_to_http(broker_factory):
    b = broker_factory({"max.connections": "3"})
    socks = [raw_connect(b) for _ in range(3)]
    for s in socks:
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert read_response(s)[0] == 200
    extra = raw_connect(b)
    assert wait_closed(extra)  # closed at accept
    extra.close()
    assert "max.connections" in b.log_text()
    socks[0].close()
    time.sleep(0.2)
    s = raw_connect(b)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert read_response(s)[0] == 200
    for x in socks[1:] + [s]:
        x.close()


def test_shutdown_answers_parked_reads(broker_factory):
    """SIGTERM with a long poll parked: it is answered (empty) and the broker
    exits cleanly (stop() checks exit status 0, so sanitizer reports fail)."""
    b = broker_factory()
    name = new_topic(b)
    s = raw_connect(b, timeout=20)
    s.sendall(b"GET /topics/%s/partitions/0/records?timeout_ms=60000 HTTP/1.1\r\n\r\n"
              % name.encode())
    time.sleep(0.3)
    t0 = time.time()
    b.stop()
    st, _, body, _ = read_response(s)
    assert st == 200 and json.loads(body)["records"] == []
    assert time.time() - t0 < 10
    s.close()


def test_shutdown_with_produces_in_flight_keeps_what_it_answered(broker_factory):
    """Produces pipelined right before SIGTERM: every one answered 200 is
    stored after the restart, and the broker exits cleanly."""
    b = broker_factory()
    name = new_topic(b, 8)
    body = json.dumps({"records": [{"key": "k%d" % i, "value": "v%d" % i}
                                   for i in range(100)]}).encode()
    req = (b"POST /topics/%s/records HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
           % (name.encode(), len(body))) + body
    s = raw_connect(b, timeout=20)
    s.sendall(req * 10)
    b.stop()
    answered = []
    buf = b""
    try:
        while True:
            st, _, rb, buf = read_response(s, buf)
            assert st == 200, rb
            answered.append(json.loads(rb)["offsets"])
    except (EOFError, ConnectionResetError):
        pass
    s.close()
    b.start()
    stored = {}
    for p in range(8):
        for r in get(b, "/topics/%s/partitions/%d/records" % (name, p))[2]["records"]:
            stored[(p, r["offset"])] = r["value"]
    for offs in answered:
        for i, o in enumerate(offs):
            assert stored.get((o["partition"], o["offset"])) == "v%d" % i


def test_tiny_chunks_are_bounded(broker):
    """A chunked body of 1-byte chunks cannot make the broker keep more piece
    records than HCONN_MAX_BODY_PIECES: 413 and a close."""
    name = new_topic(broker)
    s = raw_connect(broker, timeout=30)
    s.sendall(b"POST /topics/%s/records HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              % name.encode())
    payload = b"1\r\n \r\n" * 70000  # whitespace is valid JSON padding
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, h, b, _ = read_response(s)
    assert st == 413 and json.loads(b)["error_code"] == "body_too_large"
    assert b"65536 chunks" in b
    s.close()
    assert get(broker, "/healthz")[0] == 200


def test_error_log_lines_are_rate_limited(broker_factory):
    b = broker_factory()
    s = raw_connect(b, timeout=20)
    s.sendall(b"".join(b"GET /flood-%d HTTP/1.1\r\n\r\n" % i for i in range(300)))
    buf = b""
    for _ in range(300):
        st, _, _, buf = read_response(s, buf)
        assert st == 404
    time.sleep(1.1)
    s.sendall(b"GET /flood-last HTTP/1.1\r\n\r\n")
    assert read_response(s, buf)[0] == 404
    s.close()
    log = b.log_text(1000000)
    lines = [ln for ln in log.splitlines() if "404 not_found GET /flood-" in ln]
    assert 100 <= len(lines) <= 101, len(lines)
    assert "http: 200 more error line(s) suppressed (at most 100 a second)" in log
