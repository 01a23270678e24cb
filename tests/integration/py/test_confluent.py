"""confluent_kafka 1.7.0 (librdkafka 2.0.2) against a real Cairn broker."""
import os
import time

import pytest
from confluent_kafka import (OFFSET_END, TIMESTAMP_CREATE_TIME, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

import ckhelp
from ckhelp import Deliveries, consume_all, create_topic, flush, producer

BROKER_MAX_MESSAGE_BYTES = 2000000


@pytest.fixture(scope="module")
def broker_settings():
    return {"message.max.bytes": str(BROKER_MAX_MESSAGE_BYTES)}


def test_roundtrip_keys_values_headers_timestamps(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    base_ts = 1_600_000_000_000
    recs = [
        (b"k0", b"v0", [("h1", b"a"), ("h2", b"b")]),
        (None, b"null-key", None),
        (b"tombstone", None, None),
        (None, None, [("only-header", b"x")]),
        (b"", b"", [("empty", b"")]),
        (b"bin\x00\xff", bytes(range(256)), [("dup", b"1"), ("dup", b"2"), ("nullval", None)]),
        ("unicode-ключ".encode(), "значение ✓".encode(), None),
    ]
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all")
    for i, (k, v, h) in enumerate(recs):
        kw = {"headers": h} if h else {}
        p.produce(topic, value=v, key=k, partition=0, timestamp=base_ts + i * 10,
                  on_delivery=d.cb(i), **kw)
    flush(p)
    assert not d.failed, d.failed
    assert sorted((t[0], t[3]) for t in d.ok) == [(i, i) for i in range(len(recs))], d.ok

    msgs = consume_all(broker.bootstrap, topic, expect={0: len(recs)})[0]
    assert [m.offset() for m in msgs] == list(range(len(recs)))
    for i, (m, (k, v, h)) in enumerate(zip(msgs, recs)):
        assert m.key() == k, i
        assert m.value() == v, i
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, base_ts + i * 10), i
        got_h = m.headers() or []
        assert [(hk, hv) for hk, hv in got_h] == (h or []), i


def test_large_record_1mib(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    big = os.urandom(1 << 20)  # incompressible, 1 MiB
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all", **{"message.max.bytes": 3000000})
    p.produce(topic, value=big, key=b"big", partition=0, on_delivery=d.cb("big"))
    p.produce(topic, value=b"after", partition=0, on_delivery=d.cb("after"))
    flush(p)
    assert not d.failed, d.failed
    msgs = consume_all(broker.bootstrap, topic, expect={0: 2}, **{
        "fetch.max.bytes": 3000000, "max.partition.fetch.bytes": 3000000,
        "receive.message.max.bytes": 4000000})[0]
    assert len(msgs) == 2
    assert msgs[0].key() == b"big" and msgs[0].value() == big
    assert msgs[1].value() == b"after" and msgs[1].offset() == 1


def test_record_over_broker_limit_rejected(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all", **{"message.max.bytes": 5000000,
                                                  "message.send.max.retries": 0})
    p.produce(topic, value=os.urandom(BROKER_MAX_MESSAGE_BYTES + 500000), partition=0,
              on_delivery=d.cb("huge"))
    flush(p)
    assert not d.ok, "record larger than message.max.bytes was accepted"
    assert len(d.failed) == 1
    assert d.failed[0][1].code() == KafkaError.MSG_SIZE_TOO_LARGE, d.failed
    # nothing appended, broker still serves
    assert ckhelp.watermarks(broker.bootstrap, topic, 0) == (0, 0)
    p.produce(topic, value=b"small", partition=0, on_delivery=d.cb("small"))
    flush(p)
    assert d.ok and d.ok[0][3] == 0


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_roundtrip(broker, topic, codec):
    create_topic(broker.bootstrap, topic, 1)
    n = 3000
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all", linger_ms=20, **{"compression.type": codec})
    for i in range(n):
        p.produce(topic, key=b"key-%d" % (i % 7), value=(b"value-%06d-" % i) + b"x" * (i % 200),
                  partition=0, headers=[("i", str(i).encode())], on_delivery=d.cb(i))
        if i % 500 == 0:
            p.poll(0)
    flush(p)
    assert not d.failed, d.failed[:3]
    assert {t[0]: t[3] for t in d.ok} == {i: i for i in range(n)}
    msgs = consume_all(broker.bootstrap, topic, expect={0: n})[0]
    assert len(msgs) == n
    for i, m in enumerate(msgs):
        assert m.offset() == i
        assert m.key() == b"key-%d" % (i % 7)
        assert m.value() == (b"value-%06d-" % i) + b"x" * (i % 200)
        assert m.headers() == [("i", str(i).encode())]
    ckhelp.check_codec_kept(broker.bootstrap, topic, codec)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, topic, acks):
    create_topic(broker.bootstrap, topic, 1)
    n = 500
    d = Deliveries()
    p = producer(broker.bootstrap, acks=acks, linger_ms=5)
    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=0, on_delivery=d.cb(i))
    flush(p)
    assert not d.failed, d.failed[:3]
    assert len(d.ok) == n
    if acks != "0":  # acks=0 gives no offsets back
        assert sorted((t[0], t[3]) for t in d.ok) == [(i, i) for i in range(n)]
    # acks=0 has no response to wait for: poll the watermark until it settles
    deadline = time.time() + 15
    while ckhelp.watermarks(broker.bootstrap, topic, 0)[1] < n and time.time() < deadline:
        time.sleep(0.1)
    msgs = consume_all(broker.bootstrap, topic, expect={0: n})[0]
    assert [m.value() for m in msgs] == [b"%d" % i for i in range(n)]


@pytest.mark.cairn_timeout(420)
def test_100k_records_three_partitions(broker, topic):
    create_topic(broker.bootstrap, topic, 3)
    n = 100_000
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all", linger_ms=20,
                 **{"batch.num.messages": 10000, "queue.buffering.max.messages": 200000,
                    "message.timeout.ms": 120000})
    failed = []

    def cb(err, msg):
        if err is not None:
            failed.append(err)
        else:
            d.ok.append(msg.offset())

    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=i % 3, on_delivery=cb)
        if i % 5000 == 0:
            p.poll(0)
    flush(p, 180)
    assert not failed, failed[:3]
    assert len(d.ok) == n
    per = {q: len(range(q, n, 3)) for q in range(3)}
    out = consume_all(broker.bootstrap, topic, (0, 1, 2), timeout=180, expect=per)
    total = 0
    for q in range(3):
        msgs = out[q]
        assert len(msgs) == per[q], (q, len(msgs))
        offs = [m.offset() for m in msgs]
        assert offs == list(range(per[q])), "partition %d offsets not contiguous" % q
        vals = [int(m.value()) for m in msgs]
        assert all(a < b for a, b in zip(vals, vals[1:])), "partition %d out of order" % q
        assert vals == list(range(q, n, 3)), "partition %d lost or reordered records" % q
        total += len(msgs)
    assert total == n


def test_offsets_for_times_and_watermarks(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    t0 = 1_700_000_000_000
    p = producer(broker.bootstrap, acks="all")
    d = Deliveries()
    for i in range(10):
        p.produce(topic, value=b"%d" % i, partition=0, timestamp=t0 + i * 1000, on_delivery=d.cb(i))
        flush(p)  # one batch per record so timestamps index per batch too
    assert not d.failed
    c = ckhelp.consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
        cases = {t0 - 5000: 0, t0: 0, t0 + 1: 1, t0 + 2500: 3, t0 + 9000: 9, t0 + 9001: OFFSET_END}
        for ts, want in cases.items():
            res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert res[0].error is None, res[0].error
            assert res[0].offset == want, "offsets_for_times(%d) = %d, want %d" % (
                ts, res[0].offset, want)
    finally:
        c.close()


def test_produce_autocreates_topic(broker, topic):
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all")
    p.produce(topic, value=b"hello", on_delivery=d.cb())
    flush(p)
    assert not d.failed, d.failed
    t = ckhelp.wait_topic(broker.bootstrap, topic)
    assert len(t.partitions) == 1  # num.partitions default
    assert [m.value() for m in consume_all(broker.bootstrap, topic)[0]] == [b"hello"]


def test_num_partitions_and_autocreate_disabled(broker_factory, topic_name):
    b = broker_factory({"num.partitions": "5"})
    t = topic_name("auto5")
    d = Deliveries()
    p = producer(b.bootstrap, acks="all")
    p.produce(t, value=b"x", on_delivery=d.cb())
    flush(p)
    assert len(ckhelp.wait_topic(b.bootstrap, t).partitions) == 5
    b.stop()

    b2 = broker_factory({"auto.create.topics.enable": "false"})
    t2 = topic_name("noauto")
    d2 = Deliveries()
    p2 = producer(b2.bootstrap, acks="all", **{"message.timeout.ms": 5000})
    p2.produce(t2, value=b"x", on_delivery=d2.cb())
    p2.flush(15)
    assert not d2.ok and len(d2.failed) == 1, (d2.ok, d2.failed)
    assert t2 not in ckhelp.admin(b2.bootstrap).list_topics(timeout=10).topics
    b2.stop()


def test_metadata_lists_single_node(broker):
    md = ckhelp.admin(broker.bootstrap).list_topics(timeout=10)
    assert list(md.brokers) == [1]
    b = md.brokers[1]
    assert (b.host, b.port) == ("127.0.0.1", broker.port)
    assert md.controller_id == 1


def test_admin_topic_lifecycle(broker, topic):
    a = ckhelp.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1,
                                   config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
                         request_timeout=15)
    fs[topic].result(20)
    t = ckhelp.wait_topic(broker.bootstrap, topic, 4)
    assert sorted(t.partitions) == [0, 1, 2, 3]

    # already exists
    fs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as ei:
        fs[topic].result(20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    # describe_configs shows the configs given at creation
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(20)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["cleanup.policy"].value == "delete"
    assert "segment.bytes" in cfg or "max.message.bytes" in cfg, sorted(cfg)

    # alter_configs (non-incremental: the full set of overrides)
    res2 = ConfigResource(ConfigResource.Type.TOPIC, topic,
                          set_config={"retention.ms": "7200000", "cleanup.policy": "delete"})
    a.alter_configs([res2])[res2].result(20)
    cfg = a.describe_configs([res])[res].result(20)
    assert cfg["retention.ms"].value == "7200000"

    # create_partitions 4 -> 6, then produce to the new partition
    fs = a.create_partitions([NewPartitions(topic, 6)], request_timeout=15)
    fs[topic].result(20)
    ckhelp.wait_topic(broker.bootstrap, topic, 6)
    d = Deliveries()
    p = producer(broker.bootstrap, acks="all", **{"topic.metadata.refresh.interval.ms": 1000})
    p.produce(topic, value=b"p5", partition=5, on_delivery=d.cb())
    flush(p)
    assert not d.failed and d.ok[0][2:] == (5, 0), (d.ok, d.failed)
    # shrinking is an error
    fs = a.create_partitions([NewPartitions(topic, 2)])
    with pytest.raises(KafkaException):
        fs[topic].result(20)

    # delete_topics: gone from metadata
    a.delete_topics([topic], operation_timeout=10)[topic].result(20)
    deadline = time.time() + 10
    while topic in a.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.1)
    assert topic not in a.list_topics(timeout=10).topics

    # deleting again: unknown topic
    with pytest.raises(KafkaException) as ei:
        a.delete_topics([topic])[topic].result(20)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_admin_validate_only_and_bad_requests(broker, topic_name):
    a = ckhelp.admin(broker.bootstrap)
    t = topic_name("validate")
    fs = a.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)], validate_only=True)
    fs[t].result(20)
    time.sleep(0.5)
    assert t not in a.list_topics(timeout=10).topics, "validate_only created the topic"

    # single node: replication factor 3 is impossible
    t2 = topic_name("rf3")
    fs = a.create_topics([NewTopic(t2, num_partitions=1, replication_factor=3)])
    with pytest.raises(KafkaException) as ei:
        fs[t2].result(20)
    assert ei.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert t2 not in a.list_topics(timeout=10).topics


def test_describe_broker_config(broker):
    a = ckhelp.admin(broker.bootstrap)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    cfg = a.describe_configs([res])[res].result(20)
    assert cfg["message.max.bytes"].value == str(BROKER_MAX_MESSAGE_BYTES)
