"""DeleteRecords (API key 21): over the raw wire, and from librdkafka.

Neither Debian's confluent-kafka (1.7.0, no AdminClient.delete_records) nor
kafka-python 2.0.2 can send DeleteRecords, so most requests are
hand-encoded (v0 classic, v2 flexible), and one test calls librdkafka's own
rd_kafka_DeleteRecords (2.0.2, the library confluent-kafka loads) through
ctypes. librdkafka then checks the low watermark (ListOffsets earliest) and
that consuming from the beginning starts there.
"""
import ctypes
import ctypes.util

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


# ---------------------------------------------------------------- librdkafka

class _TP(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", ctypes.c_void_p),
                ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]


class _TPList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int),
                ("elems", ctypes.POINTER(_TP))]


def _rdkafka():
    lib = ctypes.CDLL(ctypes.util.find_library("rdkafka") or "librdkafka.so.1")
    vp = ctypes.c_void_p
    for name, res, args in [
            ("rd_kafka_conf_new", vp, []),
            ("rd_kafka_conf_set", ctypes.c_int,
             [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
            ("rd_kafka_new", vp, [ctypes.c_int, vp, ctypes.c_char_p, ctypes.c_size_t]),
            ("rd_kafka_destroy", None, [vp]),
            ("rd_kafka_queue_new", vp, [vp]),
            ("rd_kafka_queue_destroy", None, [vp]),
            ("rd_kafka_queue_poll", vp, [vp, ctypes.c_int]),
            ("rd_kafka_topic_partition_list_new", ctypes.POINTER(_TPList), [ctypes.c_int]),
            ("rd_kafka_topic_partition_list_add", ctypes.POINTER(_TP),
             [ctypes.POINTER(_TPList), ctypes.c_char_p, ctypes.c_int32]),
            ("rd_kafka_topic_partition_list_destroy", None, [ctypes.POINTER(_TPList)]),
            ("rd_kafka_DeleteRecords_new", vp, [ctypes.POINTER(_TPList)]),
            ("rd_kafka_DeleteRecords_destroy", None, [vp]),
            ("rd_kafka_DeleteRecords", None, [vp, ctypes.POINTER(vp), ctypes.c_size_t, vp, vp]),
            ("rd_kafka_event_error", ctypes.c_int, [vp]),
            ("rd_kafka_event_error_string", ctypes.c_char_p, [vp]),
            ("rd_kafka_event_DeleteRecords_result", vp, [vp]),
            ("rd_kafka_DeleteRecords_result_offsets", ctypes.POINTER(_TPList), [vp]),
            ("rd_kafka_event_destroy", None, [vp])]:
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


def rdkafka_delete_records(bootstrap, before, timeout=30):
    """rd_kafka_DeleteRecords (librdkafka, as confluent-kafka >= 1.9 calls it).

    before: {(topic, partition): offset} -> {(topic, partition): (offset, err)}
    """
    lib = _rdkafka()
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    for k, v in (("bootstrap.servers", bootstrap), ("log_level", "3")):
        assert lib.rd_kafka_conf_set(conf, k.encode(), v.encode(), errstr, 512) == 0, errstr.value
    rk = lib.rd_kafka_new(0, conf, errstr, 512)  # RD_KAFKA_PRODUCER; owns conf
    assert rk, errstr.value
    q = lib.rd_kafka_queue_new(rk)
    tpl = lib.rd_kafka_topic_partition_list_new(len(before))
    try:
        for (t, p), off in before.items():
            lib.rd_kafka_topic_partition_list_add(tpl, t.encode(), p).contents.offset = off
        dr = ctypes.c_void_p(lib.rd_kafka_DeleteRecords_new(tpl))
        lib.rd_kafka_DeleteRecords(rk, ctypes.byref(dr), 1, None, q)
        lib.rd_kafka_DeleteRecords_destroy(dr)
        ev = lib.rd_kafka_queue_poll(q, timeout * 1000)
        assert ev, "no DeleteRecords result within %ds" % timeout
        try:
            assert lib.rd_kafka_event_error(ev) == 0, lib.rd_kafka_event_error_string(ev)
            res = lib.rd_kafka_event_DeleteRecords_result(ev)
            assert res
            out_list = lib.rd_kafka_DeleteRecords_result_offsets(res).contents
            return {(out_list.elems[i].topic.decode(), out_list.elems[i].partition):
                    (out_list.elems[i].offset, out_list.elems[i].err)
                    for i in range(out_list.cnt)}
        finally:
            lib.rd_kafka_event_destroy(ev)
    finally:
        lib.rd_kafka_topic_partition_list_destroy(tpl)
        lib.rd_kafka_queue_destroy(q)
        lib.rd_kafka_destroy(rk)


def test_librdkafka_delete_records(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, partitions=2)
    produce_batches(broker.bootstrap, topic, 0, 7)
    produce_batches(broker.bootstrap, topic, 1, 3)
    res = rdkafka_delete_records(broker.bootstrap, {(topic, 0): 5, (topic, 1): -1})
    assert res == {(topic, 0): (5, 0), (topic, 1): (3, 0)}
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (5, 7)
    assert consumed_offsets(broker.bootstrap, topic, 0) == [5, 6]
    res = rdkafka_delete_records(broker.bootstrap, {(topic, 0): 8})
    assert res[(topic, 0)][1] == OFFSET_OUT_OF_RANGE
