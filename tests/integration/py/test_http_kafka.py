"""HTTP and Kafka on the same data: records produced over HTTP read by a Kafka
consumer (confluent_kafka) with the same key, value and headers, and the
other way; long polls woken by a Kafka producer or timing out empty; only
committed transactional data over HTTP; produce over HTTP survives kill -9."""
import base64
import threading
import time

import pytest
from confluent_kafka import TopicPartition

import ckhelp
from cairn_broker import unique_topic
from httphelp import get, post, produce, read


def new_topic(broker, partitions=1):
    name = unique_topic("hx")
    st, _, b = post(broker, "/topics", {"name": name, "partitions": partitions})
    assert st == 201, b
    return name


def consume_all(broker, topic, n, partitions=1, timeout=30):
    c = ckhelp.consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
    c.close()
    assert len(out) == n, "got %d of %d records" % (len(out), n)
    return out


def test_http_records_read_by_a_kafka_consumer(broker):
    name = new_topic(broker, 3)
    recs = [{"key": "user-%d" % i, "value": {"n": i}, "headers": [["trace", "t%d" % i],
                                                                ["bin", {"b64": "AP8="}]]}
            for i in range(30)]
    recs.append({"key_b64": base64.b64encode(b"\x00\x01").decode(),
                 "value_b64": base64.b64encode(b"\xff\xfe\x00raw").decode()})
    offs = produce(broker, name, recs)
    msgs = consume_all(broker, name, len(recs), 3)
    by_pos = {(m.partition(), m.offset()): m for m in msgs}
    for r, o in zip(recs[:30], offs):
        m = by_pos[(o["partition"], o["offset"])]
        assert m.key() == r["key"].encode()
        assert m.value() == b'{"n":%d}' % r["value"]["n"]
        assert m.headers() == [("trace", r["headers"][0][1].encode()), ("bin", b"\x00\xff")]
    last = by_pos[(offs[-1]["partition"], offs[-1]["offset"])]
    assert last.key() == b"\x00\x01" and last.value() == b"\xff\xfe\x00raw"
    assert last.headers() is None or last.headers() == []


def test_kafka_records_read_over_http(broker):
    name = new_topic(broker, 2)
    p = ckhelp.producer(broker.bootstrap, compression_type="lz4", linger_ms=5)
    for i in range(20):
        p.produce(name, key=b"k%d" % i, value=("v%d" % i).encode(), partition=i % 2,
                  headers=[("h", b"x%d" % i), ("empty", None)], timestamp=1600000000000 + i)
    p.produce(name, key=None, value=b"\x00\x01\x02\xff", partition=0)
    ckhelp.flush(p)
    got = read(broker, name, 0)["records"] + read(broker, name, 1)["records"]
    assert len(got) == 21
    text = sorted((r for r in got if "value" in r), key=lambda r: r["timestamp"])
    assert len(text) == 20
    for i, r in enumerate(text):
        assert r["key"] == "k%d" % i and r["value"] == "v%d" % i
        assert r["partition"] == i % 2
        assert r["timestamp"] == 1600000000000 + i
        assert r["headers"] == [["h", "x%d" % i], ["empty", None]]
    binary = [r for r in got if "value_b64" in r][0]
    assert base64.b64decode(binary["value_b64"]) == b"\x00\x01\x02\xff"
    assert binary["key"] is None


def test_long_poll_returns_when_a_kafka_producer_writes(broker):
    name = new_topic(broker)
    result = {}

    def poll():
        t0 = time.time()
        result["body"] = read(broker, name, 0, offset=0, timeout_ms=20000)
        result["elapsed"] = time.time() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.8)
    assert t.is_alive(), "the read answered before any data existed"
    p = ckhelp.producer(broker.bootstrap)
    p.produce(name, key=b"wake", value=b"up", partition=0)
    ckhelp.flush(p)
    t.join(15)
    assert not t.is_alive()
    recs = result["body"]["records"]
    assert [(r["key"], r["value"]) for r in recs] == [("wake", "up")]
    assert 0.7 < result["elapsed"] < 10


def test_long_poll_at_the_end_times_out_empty(broker):
    name = new_topic(broker)
    produce(broker, name, [{"value": "a"}, {"value": "b"}])
    t0 = time.time()
    body = read(broker, name, 0, offset=2, timeout_ms=600)
    elapsed = time.time() - t0
    assert body["records"] == [] and body["next_offset"] == 2
    assert 0.55 <= elapsed < 5
    # data in a different partition does not wake it early
    name2 = new_topic(broker, 2)
    result = {}

    def poll():
        t1 = time.time()
        result["body"] = read(broker, name2, 1, offset=0, timeout_ms=1500)
        result["elapsed"] = time.time() - t1

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.2)
    produce(broker, name2, [{"value": "other", "partition": 0}])
    th.join(10)
    assert result["body"]["records"] == [] and result["elapsed"] >= 1.4


def test_long_poll_answers_404_when_its_topic_is_deleted(broker):
    name = new_topic(broker)
    result = {}

    def poll():
        result["resp"] = get(broker, "/topics/%s/partitions/0/records?timeout_ms=20000" % name)

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.3)
    admin = ckhelp.admin(broker.bootstrap)
    assert admin.delete_topics([name], request_timeout=10)[name].result(10) is None
    # any append wakes parked reads; they find their topic gone
    other = new_topic(broker)
    produce(broker, other, [{"value": "x"}])
    th.join(10)
    st, _, body = result["resp"]
    assert st == 404 and body["error_code"] == "unknown_topic"


def test_only_committed_transactional_records_are_read(broker):
    name = new_topic(broker)
    p = ckhelp.producer(broker.bootstrap, transactional_id="http-txn-" + name)
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(name, value=b"aborted-1", partition=0)
    p.produce(name, value=b"aborted-2", partition=0)
    p.flush(30)
    # open transaction: nothing of it is visible yet (last stable offset)
    body = read(broker, name, 0)
    assert body["records"] == [] and body["last_stable_offset"] == 0
    assert body["high_watermark"] == 2
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(name, value=b"committed", partition=0)
    p.commit_transaction(30)
    produce(broker, name, [{"value": "plain"}])
    body = read(broker, name, 0)
    assert [r["value"] for r in body["records"]] == ["committed", "plain"]
    assert body["next_offset"] == body["high_watermark"]


@pytest.mark.cairn_timeout(120)
def test_http_produce_survives_kill_9(broker_factory):
    b = broker_factory()
    name = new_topic(b, 2)
    acked = []
    for i in range(30):
        offs = produce(b, name, [{"key": "k%d" % i, "value": "durable-%d" % i}])
        acked.append((offs[0]["partition"], offs[0]["offset"], "durable-%d" % i))
    b.kill9()
    b.start()
    stored = {}
    for part in (0, 1):
        for r in read(b, name, part)["records"]:
            stored[(part, r["offset"])] = r["value"]
    for part, off, value in acked:
        assert stored.get((part, off)) == value
    assert len(stored) == 30
