"""Hostile and malformed input over raw sockets: the broker must reject it
cleanly (close the connection or answer with an error) and keep serving."""
import os
import socket
import struct

import pytest

import ckhelp
import kwire
from ckhelp import Deliveries, producer
from kwire import Conn, i16, i32, string

REQUEST_MAX = 1_000_000


@pytest.fixture(scope="module")
def broker_settings():
    return {"socket.request.max.bytes": str(REQUEST_MAX)}


def assert_serving(broker):
    """The process is alive and a fresh connection gets ApiVersions v0 with error 0."""
    assert broker.alive(), "broker process died (exit code %s)" % broker.proc.returncode
    err, apis = kwire.api_versions(broker.bootstrap)
    assert err == 0
    assert 18 in apis


def test_api_versions_v0_hand_encoded(broker):
    with Conn(broker.bootstrap) as c:
        # size | api_key 18 | version 0 | correlation id | client id
        msg = i16(18) + i16(0) + i32(424242) + string("raw-client")
        c.send_raw(i32(len(msg)) + msg)
        resp = c.recv_frame()
    assert struct.unpack(">i", resp[:4])[0] == 424242
    err, apis = kwire.parse_api_versions_v0(resp[4:])
    assert err == 0
    for key, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, (key, lo, hi)
    # ranges the Debian/npm clients rely on (CLIENTS.md sections 2.2, 3.1, 5)
    need = {0: (3, 7),    # Produce: MsgVer2 needs 3, zstd needs 7
            1: (4, 10),   # Fetch: MsgVer2 needs 4, zstd needs 10
            2: (1, 1),    # ListOffsets v1: offsets_for_times
            3: (0, 1),    # Metadata: kafka-python probes v0, uses v1
            18: (0, 2)}   # ApiVersions
    for key, (a, z) in need.items():
        assert key in apis, "api %d not advertised" % key
        lo, hi = apis[key]
        assert lo <= a and hi >= z, "api %d range %d..%d must include %d..%d" % (key, lo, hi, a, z)
    for key in (19, 20, 32, 33, 37):  # admin APIs in the contract
        assert key in apis, "admin api %d not advertised" % key


def test_api_versions_v0_pipelined_with_metadata_v0(broker):
    """kafka-python's probe: ApiVersions v0 and Metadata v0 sent back to back."""
    with Conn(broker.bootstrap) as c:
        a = i16(18) + i16(0) + i32(1) + string("kp")
        m = i16(3) + i16(0) + i32(2) + string("kp") + i32(0)
        c.send_raw(i32(len(a)) + a + i32(len(m)) + m)
        r1 = c.recv_frame()
        r2 = c.recv_frame()
    assert struct.unpack(">i", r1[:4])[0] == 1
    assert struct.unpack(">i", r2[:4])[0] == 2
    r = kwire.Reader(r2[4:])
    n_brokers = r.i32()
    assert n_brokers == 1
    assert r.i32() == 1  # node id
    assert r.string() == "127.0.0.1" and r.i32() == broker.port


def test_api_versions_unsupported_version(broker):
    with Conn(broker.bootstrap) as c:
        body = kwire.compact_string("cairn-it") + kwire.compact_string("1.0") + b"\x00"
        resp = c.request(18, 99, body, flexible_header=True)
    r = kwire.Reader(resp)
    assert r.i16() == 35  # UNSUPPORTED_VERSION
    n = r.i32()  # v0-format body: plain int32 array length
    assert 1 <= n <= 200
    apis = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    assert 18 in apis, apis
    assert apis[18][0] == 0 and apis[18][1] >= 2
    assert_serving(broker)


def test_oversized_frame_closes_connection(broker):
    with Conn(broker.bootstrap) as c:
        c.send_raw(i32(REQUEST_MAX + 1) + i16(18) + i16(0) + i32(7) + string("big") + b"\0" * 1000)
        assert c.is_closed(5), "connection not closed after a %d-byte size prefix" % (REQUEST_MAX + 1)
    with Conn(broker.bootstrap) as c:
        c.send_raw(i32(0x7FFFFFF0))
        assert c.is_closed(5)
    assert_serving(broker)


def test_frame_at_limit_is_not_rejected_for_size(broker):
    # a request just under the limit must not be refused for its size alone:
    # a Metadata v1 request padded with many topic names that are invalid
    # (too long, and with '/'), so nothing gets auto-created
    names = [("pad/%04d/" % i) + "x" * 290 for i in range(3000)]
    body = i32(len(names)) + b"".join(string(n) for n in names)
    hdr = i16(3) + i16(1) + i32(5) + string("c")
    assert len(hdr + body) < REQUEST_MAX
    with Conn(broker.bootstrap, timeout=30) as c:
        c.send_raw(i32(len(hdr + body)) + hdr + body)
        resp = c.recv_frame()
    assert struct.unpack(">i", resp[:4])[0] == 5
    assert_serving(broker)


@pytest.mark.parametrize("frame,must_close", [
    pytest.param(i32(-1), True, id="negative-size"),
    pytest.param(i32(0), True, id="zero-size"),
    pytest.param(i32(3) + b"\x00\x12\x00", True, id="shorter-than-header"),
    pytest.param(i32(8) + i16(18) + i16(0) + i32(1), True, id="header-without-client-id"),
    pytest.param(i32(12) + i16(18) + i16(0) + i32(1) + i16(200) + b"ab", True,
                 id="client-id-overruns"),
    # random bytes could by chance form a parseable request: only "no crash"
    pytest.param(i32(64) + os.urandom(64), False, id="random-bytes"),
])
def test_garbage_frame_closes_then_serves(broker, frame, must_close):
    with Conn(broker.bootstrap) as c:
        c.send_raw(frame)
        closed = c.is_closed(5)
    if must_close:
        assert closed, "connection left open after a garbage frame"
    assert_serving(broker)


def test_truncated_body_closes_or_errors(broker):
    # Metadata v1 claiming 1000000 topics but carrying none
    with Conn(broker.bootstrap) as c:
        msg = i16(3) + i16(1) + i32(77) + string("c") + i32(1_000_000)
        c.send_raw(i32(len(msg)) + msg)
        try:
            resp = c.recv_frame()
            assert struct.unpack(">i", resp[:4])[0] == 77  # an error response is acceptable
        except kwire.Closed:
            pass
        except socket.timeout:
            pytest.fail("broker neither answered nor closed the connection")
    assert_serving(broker)


def test_unknown_api_key(broker):
    with Conn(broker.bootstrap) as c:
        msg = i16(999) + i16(0) + i32(55) + string("c")
        c.send_raw(i32(len(msg)) + msg)
        try:
            resp = c.recv_frame()
            assert struct.unpack(">i", resp[:4])[0] == 55
        except kwire.Closed:
            pass  # Kafka's behaviour: close
        except socket.timeout:
            pytest.fail("broker neither answered nor closed the connection")
    # unsupported version of a known API (Metadata v999) is treated the same way
    with Conn(broker.bootstrap) as c:
        msg = i16(3) + i16(999) + i32(56) + string("c")
        c.send_raw(i32(len(msg)) + msg)
        try:
            resp = c.recv_frame()
            assert struct.unpack(">i", resp[:4])[0] == 56
        except kwire.Closed:
            pass
        except socket.timeout:
            pytest.fail("broker neither answered nor closed the connection")
    assert_serving(broker)


def test_invalid_topic_name_via_client(broker, topic_name):
    for bad in ["bad/topic", "has space", "x" * 300, ".."]:
        d = Deliveries()
        p = producer(broker.bootstrap, acks="all", **{"message.timeout.ms": 5000})
        try:
            p.produce(bad, value=b"x", on_delivery=d.cb())
        except Exception:
            continue  # refused client-side: fine, nothing reached the broker
        p.flush(15)
        assert not d.ok, "produce to invalid topic %r succeeded" % bad
        assert len(d.failed) == 1
        assert bad not in ckhelp.admin(broker.bootstrap).list_topics(timeout=10).topics
    assert_serving(broker)
    # admin path: CreateTopics with an illegal name -> error 17
    from confluent_kafka.admin import NewTopic
    from confluent_kafka import KafkaError, KafkaException
    a = ckhelp.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic("bad/name", 1, 1)])
    with pytest.raises(KafkaException) as ei:
        fs["bad/name"].result(20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    # raw produce to an illegal name -> per-partition error, no crash
    with Conn(broker.bootstrap) as c:
        batch = kwire.build_record_batch([(None, b"v", None, None)])
        err, _, _ = kwire.produce_v3(c, "bad/raw", 0, batch)
    assert err in (3, 17), err  # UNKNOWN_TOPIC_OR_PARTITION or INVALID_TOPIC_EXCEPTION
    assert_serving(broker)


def test_corrupt_crc_rejected_nothing_appended(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, 1)
    good = kwire.build_record_batch([
        (b"k1", b"v1", [("h", b"1")], 1_600_000_000_000),
        (None, b"v2", None, 1_600_000_000_001),
        (b"k3", None, None, 1_600_000_000_002)])
    with Conn(broker.bootstrap) as c:
        err, base, _ = kwire.produce_v3(c, topic, 0, good)
        assert (err, base) == (0, 0)

        bad = bytearray(good)
        pos = bytes(good).index(b"k1")
        bad[pos] = ord("j")  # same structure, different key: only the CRC is wrong
        err, _, _ = kwire.produce_v3(c, topic, 0, bytes(bad))
        assert err == 2, "corrupted CRC gave error %d, want 2 CORRUPT_MESSAGE" % err

        bad_crc = bytearray(good)
        bad_crc[17:21] = struct.pack(">I", (struct.unpack(">I", good[17:21])[0] ^ 1))
        err, _, _ = kwire.produce_v3(c, topic, 0, bytes(bad_crc))
        assert err == 2, err

        # batchLength claiming more bytes than present
        bad_len = bytearray(good)
        bad_len[8:12] = i32(len(good) + 100 - 12)
        err, _, _ = kwire.produce_v3(c, topic, 0, bytes(bad_len))
        assert err in (2, 87), err  # CORRUPT_MESSAGE or INVALID_RECORD

        res = kwire.fetch_v4(c, topic, 0)
        assert res["error"] == 0
        assert res["high_watermark"] == 3, "corrupt batch was appended"
        batches = kwire.parse_record_batches(res["records"])
        assert all(b["crc_ok"] for b in batches)
        recs = [r for b in batches for r in b["records"]]
        assert [(r["offset"], r["key"], r["value"], r["headers"], r["timestamp"]) for r in recs] == [
            (0, b"k1", b"v1", [("h", b"1")], 1_600_000_000_000),
            (1, None, b"v2", [], 1_600_000_000_001),
            (2, b"k3", None, [], 1_600_000_000_002)]

        # the next good batch lands right after
        err, base, _ = kwire.produce_v3(c, topic, 0, good)
        assert (err, base) == (0, 3)
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (0, 6)
    assert_serving(broker)


def test_produce_unknown_partition(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, 1)
    with Conn(broker.bootstrap) as c:
        err, _, _ = kwire.produce_v3(c, topic, 7, kwire.build_record_batch([(None, b"v", None, None)]))
    assert err == 3, err  # UNKNOWN_TOPIC_OR_PARTITION
    assert_serving(broker)


def test_many_connections_dropped_midrequest(broker):
    # half-sent requests on many sockets, then abrupt close
    socks = []
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
        msg = i16(18) + i16(0) + i32(i) + string("half")
        s.sendall(i32(len(msg)) + msg[: i % len(msg)])
        socks.append(s)
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    assert_serving(broker)
