"""DeleteRecords (API key 21) over the raw wire, then what real clients see.

Neither Debian's confluent-kafka (1.7.0, no AdminClient.delete_records) nor
kafka-python 2.0.2 can send DeleteRecords, so the requests are hand-encoded
(v0 classic, v2 flexible); librdkafka then checks the low watermark
(ListOffsets earliest) and that consuming from the beginning starts there.
"""
import pytest

import ckhelp
import kwire
from kwire import Conn, i32, i64, string, uvarint

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
POLICY_VIOLATION = 44


def delete_records_v0(bootstrap, topics, timeout_ms=10000):
    """topics: {name: [(partition, offset)]} -> {(name, partition): (low_watermark, error)}"""
    body = i32(len(topics))
    for name, parts in topics.items():
        body += string(name) + i32(len(parts))
        for p, off in parts:
            body += i32(p) + i64(off)
    body += i32(timeout_ms)
    with Conn(bootstrap) as c:
        r = kwire.Reader(c.request(21, 0, body))
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            p, low, err = r.i32(), r.i64(), r.i16()
            out[(name, p)] = (low, err)
    assert r.remaining() == 0
    return out


def delete_records_v2(bootstrap, topics, timeout_ms=10000):
    """The flexible version: compact arrays and strings, tag buffers."""
    body = uvarint(len(topics) + 1)
    for name, parts in topics.items():
        body += kwire.compact_string(name) + uvarint(len(parts) + 1)
        for p, off in parts:
            body += i32(p) + i64(off) + b"\x00"
        body += b"\x00"
    body += i32(timeout_ms) + b"\x00"
    with Conn(bootstrap) as c:
        resp = c.request(21, 2, body, flexible_header=True)
    r = kwire.Reader(resp)
    assert r.uvarint() == 0  # response header v1: empty tag buffer
    r.i32()  # throttle
    out = {}
    for _ in range(r.uvarint() - 1):
        name = r.take(r.uvarint() - 1).decode()
        for _ in range(r.uvarint() - 1):
            p, low, err = r.i32(), r.i64(), r.i16()
            assert r.uvarint() == 0
            out[(name, p)] = (low, err)
        assert r.uvarint() == 0
    assert r.uvarint() == 0
    assert r.remaining() == 0
    return out


def produce_batches(bootstrap, topic, partition, n):
    """n single-record batches -> offsets 0..n-1."""
    with Conn(bootstrap) as c:
        for i in range(n):
            err, base, _ = kwire.produce_v3(
                c, topic, partition, kwire.build_record_batch([(b"k", b"v%d" % i)]))
            assert err == 0 and base == i, (err, base)


def consumed_offsets(bootstrap, topic, partition):
    got = ckhelp.consume_all(bootstrap, topic, partitions=(partition,))
    return [m.offset() for m in got[partition]]


def test_advertised(broker):
    err, apis = kwire.api_versions(broker.bootstrap)
    assert err == 0
    assert apis[21] == (0, 2)


def test_delete_records_v0(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, partitions=2)
    produce_batches(broker.bootstrap, topic, 0, 10)
    produce_batches(broker.bootstrap, topic, 1, 5)

    res = delete_records_v0(broker.bootstrap, {topic: [(0, 4), (1, -1), (2, 0)],
                                               "no-such-topic": [(0, 0)]})
    assert res[(topic, 0)] == (4, 0)
    assert res[(topic, 1)] == (5, 0)          # -1: up to the high watermark
    assert res[(topic, 2)] == (-1, UNKNOWN_TOPIC_OR_PARTITION)
    assert res[("no-such-topic", 0)] == (-1, UNKNOWN_TOPIC_OR_PARTITION)

    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (4, 10)
    assert ckhelp.watermarks(broker.bootstrap, topic, 1) == (5, 5)
    assert consumed_offsets(broker.bootstrap, topic, 0) == list(range(4, 10))
    with Conn(broker.bootstrap) as c:
        assert kwire.fetch_v4(c, topic, 0, offset=3)["error"] == OFFSET_OUT_OF_RANGE
        assert kwire.fetch_v4(c, topic, 0, offset=4)["error"] == 0

    # Out of range: above the high watermark, or negative other than -1.
    res = delete_records_v0(broker.bootstrap, {topic: [(0, 11), (1, -2)]})
    assert res[(topic, 0)] == (-1, OFFSET_OUT_OF_RANGE)
    assert res[(topic, 1)] == (-1, OFFSET_OUT_OF_RANGE)
    # At or below the start: nothing moves, the current low watermark.
    res = delete_records_v0(broker.bootstrap, {topic: [(0, 2)]})
    assert res[(topic, 0)] == (4, 0)
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (4, 10)

    # Appends go on after the deletion.
    with Conn(broker.bootstrap) as c:
        err, base, _ = kwire.produce_v3(c, topic, 1, kwire.build_record_batch([(b"k", b"x")]))
    assert (err, base) == (0, 5)
    assert consumed_offsets(broker.bootstrap, topic, 1) == [5]


def test_delete_records_v2_flexible(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic)
    produce_batches(broker.bootstrap, topic, 0, 6)
    res = delete_records_v2(broker.bootstrap, {topic: [(0, 3)], "no-such-topic": [(0, 0)]})
    assert res == {(topic, 0): (3, 0), ("no-such-topic", 0): (-1, UNKNOWN_TOPIC_OR_PARTITION)}
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (3, 6)


def test_compacted_topic_refused(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    produce_batches(broker.bootstrap, topic, 0, 3)
    res = delete_records_v0(broker.bootstrap, {topic: [(0, 2)]})
    assert res[(topic, 0)] == (-1, POLICY_VIOLATION)
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (0, 3)


def test_survives_restart(broker_factory, topic):
    b = broker_factory()
    ckhelp.create_topic(b.bootstrap, topic)
    produce_batches(b.bootstrap, topic, 0, 8)
    assert delete_records_v0(b.bootstrap, {topic: [(0, 5)]})[(topic, 0)] == (5, 0)
    b.kill9()  # a crash after the answer keeps the new start (log-start file)
    b.start()
    ckhelp.wait_topic(b.bootstrap, topic)
    assert ckhelp.watermarks(b.bootstrap, topic, 0) == (5, 8)
    assert consumed_offsets(b.bootstrap, topic, 0) == [5, 6, 7]
    b.stop()
