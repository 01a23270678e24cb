"""Hostile and careless clients: connection limit, slow (incomplete) requests,
idle connections, and the memory an idle connection costs."""
import os
import resource
import socket
import time

import pytest

import kwire


@pytest.fixture(scope="module")
def broker_settings():
    return {"max.connections": "50", "request.read.timeout.ms": "1000",
            "connections.max.idle.ms": "1500"}


def _closed_by_peer(s, timeout):
    """True if the peer closes s within timeout seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def _api_versions_ok(bootstrap):
    err, apis = kwire.api_versions(bootstrap)
    return err == 0 and 18 in apis


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _connect(bootstrap):
    host, port = bootstrap.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_connection_limit(broker):
    socks = [_connect(broker.bootstrap) for _ in range(50)]
    try:
        time.sleep(0.3)
        extra = _connect(broker.bootstrap)
        assert _closed_by_peer(extra, 5), "connection over max.connections was not closed"
        extra.close()
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert _api_versions_ok(broker.bootstrap)


def test_slow_request_closed(broker):
    s = _connect(broker.bootstrap)
    s.sendall(b"\x00\x00\x00\x40" + b"\x00\x12\x00\x00")  # 64-byte frame, 4 bytes sent
    assert _closed_by_peer(s, 6), "an incomplete request was kept open"
    s.close()
    assert "request incomplete after" in broker.log_text()
    assert _api_versions_ok(broker.bootstrap)


def test_idle_connection_closed_but_busy_one_kept(broker):
    idle = _connect(broker.bootstrap)
    assert _closed_by_peer(idle, 6), "an idle connection was kept open"
    idle.close()
    # A connection that keeps sending requests is not idle: 8 requests 0.4 s
    # apart span more than connections.max.idle.ms.
    with kwire.Conn(broker.bootstrap) as busy:
        for _ in range(8):
            err, _apis = kwire.parse_api_versions_v0(busy.request(18, 0, b""))
            assert err == 0
            time.sleep(0.4)


@pytest.fixture
def many_conn_broker(broker_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 10500
    if hard < want:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    return broker_factory({"max.connections": "20000", "connections.max.idle.ms": "0",
                           "request.read.timeout.ms": "0"})


def test_ten_thousand_idle_connections(many_conn_broker):
    b = many_conn_broker
    n = 10000
    before = _rss_kb(b.proc.pid)
    socks = []
    try:
        for _ in range(n):
            socks.append(_connect(b.bootstrap))
        # Each one has said hello, so the broker has accepted and read from it.
        time.sleep(1.0)
        assert _api_versions_ok(b.bootstrap)
        after = _rss_kb(b.proc.pid)
        per_conn = (after - before) * 1024 / n
        print("10000 idle connections: broker RSS %d kB -> %d kB, %.0f bytes each"
              % (before, after, per_conn))
        assert per_conn < 4096, "an idle connection costs %.0f bytes of broker memory" % per_conn
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert _api_versions_ok(b.bootstrap)
