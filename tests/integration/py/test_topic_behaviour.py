"""Topic-level behaviour through real clients: LogAppendTime, retention by
time and by size (enforced by the broker's own timer), max.message.bytes as
a topic config, and Fetch long polling (a waiting consumer is woken by a
produce instead of waiting out fetch.wait.max.ms)."""
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, KafkaError

import ckhelp
from ckhelp import Deliveries, consume_all, create_topic, flush, producer, watermarks


@pytest.fixture(scope="module")
def broker_settings():
    # Retention runs every 100 ms here so the test does not wait minutes.
    return {"log.retention.check.interval.ms": "100"}


def test_log_append_time(broker, topic):
    create_topic(broker.bootstrap, topic, 1, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    p = producer(broker.bootstrap, acks="all")
    d = Deliveries()
    for i in range(5):
        p.produce(topic, value=b"v%d" % i, timestamp=1000 + i, partition=0, on_delivery=d.cb(i))
    flush(p)
    after = int(time.time() * 1000)
    assert not d.failed
    msgs = consume_all(broker.bootstrap, topic, expect={0: 5})[0]
    assert len(msgs) == 5
    for m in msgs:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)


def test_create_time_kept(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker.bootstrap, acks="all")
    p.produce(topic, value=b"x", timestamp=123456789, partition=0)
    flush(p)
    m = consume_all(broker.bootstrap, topic, expect={0: 1})[0][0]
    assert m.timestamp() == (TIMESTAMP_CREATE_TIME, 123456789)


def _wait_low_watermark(bootstrap, topic, want, timeout=20):
    deadline = time.time() + timeout
    lo = None
    while time.time() < deadline:
        lo, _hi = watermarks(bootstrap, topic, 0)
        if lo >= want:
            return lo
        time.sleep(0.1)
    return lo


def test_retention_by_time(broker, topic):
    # Old records (by their timestamp) in a segment that rolls quickly expire.
    create_topic(broker.bootstrap, topic, 1,
                 config={"retention.ms": "1000", "segment.ms": "200"})
    p = producer(broker.bootstrap, acks="all")
    now = int(time.time() * 1000)
    for i in range(10):
        p.produce(topic, value=b"old-%d" % i, timestamp=now, partition=0)
    flush(p)
    assert watermarks(broker.bootstrap, topic, 0) == (0, 10)
    lo = _wait_low_watermark(broker.bootstrap, topic, 10)
    assert lo == 10, "records past retention.ms were not deleted (low watermark %s)" % lo
    # The partition keeps working at the same offsets.
    d = Deliveries()
    p.produce(topic, value=b"new", partition=0, on_delivery=d.cb())
    flush(p)
    assert d.ok[0][3] == 10
    msgs = consume_all(broker.bootstrap, topic, expect={0: 11})[0]
    assert [m.value() for m in msgs] == [b"new"]


def test_retention_by_size(broker, topic):
    # 1 KiB segments, keep at most ~4 KiB: the oldest segments go, whole.
    create_topic(broker.bootstrap, topic, 1,
                 config={"segment.bytes": "1024", "retention.bytes": "4096"})
    p = producer(broker.bootstrap, acks="all", linger_ms=0, batch_num_messages=1)
    n = 60
    for i in range(n):
        p.produce(topic, value=b"%04d" % i + b"y" * 200, partition=0)
        p.poll(0)
    flush(p)
    lo = _wait_low_watermark(broker.bootstrap, topic, 1)
    assert lo > 0, "retention.bytes deleted nothing"
    _, hi = watermarks(broker.bootstrap, topic, 0)
    assert hi == n
    msgs = consume_all(broker.bootstrap, topic, expect={0: n})[0]
    # What is left is the newest suffix, complete and in order.
    assert msgs, "retention deleted the active data"
    assert msgs[0].offset() >= lo
    assert [m.offset() for m in msgs] == list(range(msgs[0].offset(), n))
    assert msgs[-1].value().startswith(b"%04d" % (n - 1))


def test_topic_max_message_bytes(broker, topic):
    create_topic(broker.bootstrap, topic, 1, config={"max.message.bytes": "2000"})
    p = producer(broker.bootstrap, acks="all")
    d = Deliveries()
    # Separate requests: the limit applies to a whole batch, so a small record
    # batched together with the big one would be refused with it.
    p.produce(topic, value=b"z" * 5000, partition=0, on_delivery=d.cb("big"))
    flush(p)
    p.produce(topic, value=b"small", partition=0, on_delivery=d.cb("small"))
    flush(p)
    failed = dict(d.failed)
    assert "big" in failed and failed["big"].code() == KafkaError.MSG_SIZE_TOO_LARGE, d.failed
    assert [t[0] for t in d.ok] == ["small"]
    assert watermarks(broker.bootstrap, topic, 0) == (0, 1)


def test_long_poll_woken_by_produce(broker, topic):
    """A consumer parked in a long poll (fetch.wait.max.ms far above the test's
    own deadline) still receives a record produced while it waits."""
    create_topic(broker.bootstrap, topic, 1)
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    c = ckhelp.consumer(broker.bootstrap, **{"fetch.wait.max.ms": 30000,
                                             "enable.partition.eof": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        assert c.poll(1.0) is None  # parked: nothing to read yet
        p = producer(broker.bootstrap, acks="1")
        p.produce(topic, value=b"wake", partition=0)
        flush(p)
        got = None
        deadline = time.time() + 10
        while got is None and time.time() < deadline:
            got = c.poll(0.5)
        assert got is not None and got.error() is None, got
        assert got.value() == b"wake"
    finally:
        c.close()
