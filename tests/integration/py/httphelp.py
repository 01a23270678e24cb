"""HTTP helpers for the HTTP front-end tests: JSON requests through Python's
http.client (one new connection per call unless one is given) and raw socket
exchanges for pipelining and malformed input."""
import http.client
import json
import socket
import time


def request(broker, method, path, body=None, headers=None, conn=None, timeout=30):
    """(status, headers dict (lower-case names), parsed JSON or text)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        h.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        if own:
            conn.close()
    ctype = hdrs.get("content-type", "")
    if ctype.startswith("application/json"):
        return r.status, hdrs, json.loads(raw)
    return r.status, hdrs, raw.decode("utf-8", "replace")


def get(broker, path, **kw):
    return request(broker, "GET", path, **kw)


def post(broker, path, body, **kw):
    return request(broker, "POST", path, body=body, **kw)


def delete(broker, path, **kw):
    return request(broker, "DELETE", path, **kw)


def assert_error(resp, status, code):
    st, hdrs, body = resp
    assert st == status, (st, body)
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def produce(broker, topic, records, **kw):
    st, _, body = post(broker, "/topics/%s/records" % topic, {"records": records}, **kw)
    assert st == 200, body
    return body["offsets"]


def read(broker, topic, partition=0, **params):
    q = "&".join("%s=%s" % kv for kv in params.items())
    st, _, body = get(broker, "/topics/%s/partitions/%d/records%s" % (topic, partition,
                                                                    "?" + q if q else ""))
    assert st == 200, body
    return body


def raw_connect(broker, timeout=10):
    s = socket.create_connection(("127.0.0.1", broker.http_port), timeout=timeout)
    return s


def read_response(sock, buf=b""):
    """Read one HTTP/1.1 response (Content-Length bodies) from sock.
    Returns (status, headers dict, body bytes, rest of the buffer)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed before a whole response: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside a body")
        rest += chunk
    return status, hdrs, rest[:n], rest[n:]


def wait_closed(sock, timeout=5):
    """True once the peer has closed (recv returns b''), skipping any bytes."""
    sock.settimeout(timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False
