"""kafka-python 2.0.2 (Debian python3-kafka) against a real Cairn broker.

kafka-python infers the broker version from ApiVersions v0 and then uses
fixed request versions (Produce v7, Fetch v4, ListOffsets v1, Metadata v1).
No consumer groups: KafkaConsumer(group_id=None) + assign().
"""
import logging
import time

import pytest
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka import codec as kcodec

import ckhelp

logging.getLogger("kafka").setLevel(logging.CRITICAL)

COMMON = dict(api_version_auto_timeout_ms=10000, request_timeout_ms=15000,
              reconnect_backoff_max_ms=1000)


def kp_producer(broker, **kw):
    return KafkaProducer(bootstrap_servers=broker.bootstrap, **COMMON, **kw)


def kp_consumer(broker, **kw):
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                         enable_auto_commit=False, **COMMON, **kw)


def kp_admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, **COMMON)


def read_partition(broker, topic, partition, want, timeout=30, **kw):
    c = kp_consumer(broker, **kw)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.time() + timeout
        while len(out) < want and time.time() < deadline:
            for recs in c.poll(timeout_ms=500, max_records=5000).values():
                out.extend(recs)
        assert len(out) == want, "read %d of %d records" % (len(out), want)
        return out
    finally:
        c.close()


def test_inferred_version_is_modern(broker):
    # Produce v7/zstd/headers need an inferred broker version >= (2,1,0)
    p = kp_producer(broker)
    try:
        assert p.config["api_version"] >= (2, 1, 0), p.config["api_version"]
    finally:
        p.close(5)


def kp_kv(i):
    """Key/value for record i: some null keys, some null values (never both:
    kafka-python refuses a record with neither)."""
    key = None if i % 10 == 0 and i % 17 != 0 else b"k%d" % i
    value = None if i % 17 == 0 else (b"v%05d" % i) * 5
    return key, value


CODECS = [
    pytest.param(None, id="none"),
    pytest.param("gzip", id="gzip"),
    pytest.param("snappy", id="snappy", marks=pytest.mark.skipif(
        not kcodec.has_snappy(), reason="python3-snappy missing")),
    pytest.param("lz4", id="lz4", marks=pytest.mark.skipif(
        not kcodec.has_lz4(), reason="python3-lz4 missing")),
    pytest.param("zstd", id="zstd", marks=pytest.mark.skipif(
        not kcodec.has_zstd(), reason="python3-zstandard missing")),
]


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip(broker, topic, codec):
    ckhelp.create_topic(broker.bootstrap, topic, 1)
    n = 1000
    t0 = 1_600_000_000_000
    p = kp_producer(broker, acks="all", compression_type=codec, linger_ms=20)
    futs = []
    for i in range(n):
        key, value = kp_kv(i)
        futs.append(p.send(topic, key=key, value=value, partition=0, timestamp_ms=t0 + i,
                           headers=[("n", b"%d" % i), ("fixed", b"h")]))
    p.flush(30)
    offsets = [f.get(timeout=30).offset for f in futs]
    p.close(5)
    assert offsets == list(range(n))

    recs = read_partition(broker, topic, 0, n)
    for i, r in enumerate(recs):
        assert r.offset == i
        assert (r.key, r.value) == kp_kv(i), i
        assert r.timestamp == t0 + i and r.timestamp_type == 0
        assert list(r.headers) == [("n", b"%d" % i), ("fixed", b"h")]
    want_codec = kwire_codec(codec)
    assert ckhelp.stored_codecs(broker.bootstrap, topic) == {want_codec}


def kwire_codec(codec):
    return {None: 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]


def test_offsets_api(broker, topic):
    ckhelp.create_topic(broker.bootstrap, topic, 2)
    t0 = 1_700_000_000_000
    p = kp_producer(broker, acks=1)
    for i in range(6):
        p.send(topic, value=b"%d" % i, partition=0, timestamp_ms=t0 + 1000 * i).get(timeout=15)
    p.close(5)
    c = kp_consumer(broker)
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: 6, tp1: 0}
        res = c.offsets_for_times({tp0: t0 + 2500})
        assert res[tp0].offset == 3 and res[tp0].timestamp == t0 + 3000, res
        res = c.offsets_for_times({tp0: t0})
        assert res[tp0].offset == 0 and res[tp0].timestamp == t0
        # no record at or after: kafka-python reports None
        assert c.offsets_for_times({tp0: t0 + 10_000_000})[tp0] is None
        assert c.offsets_for_times({tp1: t0})[tp1] is None
        # seek and position
        c.assign([tp0])
        c.seek(tp0, 4)
        got = []
        deadline = time.time() + 15
        while len(got) < 2 and time.time() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
        assert [(r.offset, r.value) for r in got] == [(4, b"4"), (5, b"5")]
        assert c.position(tp0) == 6
    finally:
        c.close()


def test_admin(broker, topic):
    a = kp_admin(broker)
    try:
        resp = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                         topic_configs={"retention.ms": "3600000"})],
                               timeout_ms=10000)
        assert [(e[0], e[1]) for e in resp.topic_errors] == [(topic, 0)], resp
        ckhelp.wait_topic(broker.bootstrap, topic, 3)
        assert topic in a.list_topics()

        # duplicate -> TOPIC_ALREADY_EXISTS (36); kafka-python 2.0.2 raises it
        with pytest.raises(kafka.errors.TopicAlreadyExistsError):
            a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

        # describe configs (all, then filtered)
        out = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        resources = [r for resp in out for r in resp.resources]
        assert len(resources) == 1
        err, _msg, _rtype, name, entries = resources[0][:5]
        assert err == 0 and name == topic
        cfg = {e[0]: e[1] for e in entries}
        assert cfg.get("retention.ms") == "3600000", cfg
        out = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"retention.ms": None})])
        entries = [r for resp in out for r in resp.resources][0][4]
        assert [(e[0], e[1]) for e in entries] == [("retention.ms", "3600000")]

        # create_partitions 3 -> 5
        resp = a.create_partitions({topic: NewPartitions(5)})
        assert [(e[0], e[1]) for e in resp.topic_errors] == [(topic, 0)], resp
        ckhelp.wait_topic(broker.bootstrap, topic, 5)

        # delete -> gone
        resp = a.delete_topics([topic], timeout_ms=10000)
        assert [(e[0], e[1]) for e in resp.topic_error_codes] == [(topic, 0)], resp
        deadline = time.time() + 10
        while topic in a.list_topics() and time.time() < deadline:
            time.sleep(0.1)
        assert topic not in a.list_topics()
        # deleting again -> UNKNOWN_TOPIC_OR_PARTITION (3), raised by kafka-python
        with pytest.raises(kafka.errors.UnknownTopicOrPartitionError):
            a.delete_topics([topic], timeout_ms=10000)
    finally:
        a.close()


def test_acks_zero_and_autocreate(broker, topic):
    p = kp_producer(broker, acks=0, linger_ms=5)
    for i in range(200):
        p.send(topic, value=b"%d" % i)
    p.flush(30)
    p.close(5)
    t = ckhelp.wait_topic(broker.bootstrap, topic)
    assert len(t.partitions) == 1
    deadline = time.time() + 15
    while ckhelp.watermarks(broker.bootstrap, topic, 0)[1] < 200 and time.time() < deadline:
        time.sleep(0.1)
    recs = read_partition(broker, topic, 0, 200)
    assert [r.value for r in recs] == [b"%d" % i for i in range(200)]
