"""AMQP 0-9-1 with kombu on py-amqp (Debian python3-kombu, python3-amqp), the
client Celery uses: kombu declares the exchanges and queues itself, publishes
persistent messages, consumes with acks through drain_events, SimpleQueue, and
a fanout exchange feeding two queues. Every message must arrive exactly once
with its body, headers and content type."""
import socket
import uuid

import pytest

kombu = pytest.importorskip("kombu")
from kombu import Connection, Consumer, Exchange, Producer, Queue  # noqa: E402


def url(broker):
    return "amqp://guest:guest@%s:%d//" % (broker.host, broker.amqp_port)


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def raw_body(m):
    """py-amqp hands over a bodyless message (header frame with body size 0,
    no body frame: what RabbitMQ sends too) as the str '', and decodes bodies
    whose content_encoding names a codec (utf-8) to str."""
    b = m.body
    if isinstance(b, str):
        return b.encode(m.content_encoding if m.content_encoding not in (None, "binary") else "utf-8")
    return b


def drain(conn, consumer_queues, n, timeout=5.0, accept=None):
    """Consume from queues with acks until n messages or timeout; then wait a
    little longer to catch duplicates. Returns a list of (queue, message)."""
    got = []

    def make_cb(qname):
        def cb(body, message):
            got.append((qname, message))
            message.ack()
        return cb

    consumers = [Consumer(conn, queues=[q], callbacks=[make_cb(q.name)], accept=accept)
                 for q in consumer_queues]
    for c in consumers:
        c.consume()
    try:
        idle = 0
        while True:
            try:
                conn.drain_events(timeout=timeout if len(got) < n else 0.5)
                idle = 0
            except socket.timeout:
                idle += 1
                if len(got) >= n or idle >= 1:
                    break
    finally:
        for c in consumers:
            c.cancel()
    return got


def test_connection_and_server_properties(broker):
    with Connection(url(broker), connect_timeout=5) as conn:
        conn.connect()
        assert conn.connected
        props = conn.connection.server_properties
        assert props.get("product")
        caps = props.get("capabilities", {})
        assert caps.get("publisher_confirms") is True
        assert conn.transport.driver_name == "py-amqp"


def test_direct_exchange_persistent_with_acks(broker):
    ex = Exchange(uniq("kx"), type="direct", durable=True)
    q = Queue(uniq("kq"), exchange=ex, routing_key="jobs", durable=True)
    n = 50
    with Connection(url(broker), connect_timeout=5) as conn:
        producer = Producer(conn.channel(), exchange=ex)
        for i in range(n):
            producer.publish({"i": i, "pad": "x" * i}, routing_key="jobs", serializer="json",
                             delivery_mode=2, headers={"seq": i, "kind": "job"},
                             declare=[q], retry=False)
        got = drain(conn, [q], n, accept=["json"])
    assert len(got) == n, "got %d of %d messages" % (len(got), n)
    seqs = []
    for _, m in got:
        assert m.content_type == "application/json"
        assert m.headers["kind"] == "job"
        body = m.decode()
        assert body["i"] == m.headers["seq"]
        assert body["pad"] == "x" * body["i"]
        assert m.properties.get("delivery_mode") == 2
        assert m.delivery_info["exchange"] == ex.name
        assert m.delivery_info["routing_key"] == "jobs"
        assert m.delivery_info["redelivered"] is False
        seqs.append(body["i"])
    assert seqs == list(range(n)), "each message once, in order"
    # all acked: the queue is empty (passive declare reports the count)
    with Connection(url(broker), connect_timeout=5) as conn:
        ch = conn.channel()
        _, count, _ = ch.queue_declare(q.name, passive=True)
        assert count == 0


def test_raw_bytes_and_content_type(broker):
    q = Queue(uniq("kraw"), durable=True)  # default exchange, routing key = queue name
    payloads = [b"", b"\x00\x01\xff binary", "h\u00e9llo".encode("utf-8"), b"y" * 300000]
    with Connection(url(broker), connect_timeout=5) as conn:
        producer = Producer(conn.channel())
        for i, p in enumerate(payloads):
            producer.publish(p, routing_key=q.name, content_type="application/x-test",
                             content_encoding="binary", delivery_mode=2,
                             headers={"n": i, "name": "p%d" % i}, declare=[q], retry=False)
        got = drain(conn, [q], len(payloads), accept=["application/x-test"])
    assert [raw_body(m) for _, m in got] == payloads
    for i, (_, m) in enumerate(got):
        assert m.content_type == "application/x-test"
        assert m.headers == {"n": i, "name": "p%d" % i}


def test_simple_queue_round_trip(broker):
    name = uniq("ksimple")
    with Connection(url(broker), connect_timeout=5) as conn:
        sq = conn.SimpleQueue(name)
        for i in range(10):
            sq.put({"n": i}, headers={"h": "v%d" % i}, serializer="json")
        seen = []
        for _ in range(10):
            m = sq.get(block=True, timeout=5)
            assert m.content_type == "application/json"
            assert m.headers["h"] == "v%d" % m.payload["n"]
            seen.append(m.payload["n"])
            m.ack()
        assert seen == list(range(10))
        with pytest.raises(sq.Empty):
            sq.get(block=True, timeout=0.5)
        assert sq.qsize() == 0
        sq.close()
    # and the non-blocking path (basic.get)
    with Connection(url(broker), connect_timeout=5) as conn:
        sq = conn.SimpleQueue(name)
        sq.put(b"raw", content_type="text/plain", content_encoding="utf-8")
        m = sq.get(block=True, timeout=5)
        assert raw_body(m) == b"raw" and m.content_type == "text/plain"
        m.ack()
        with pytest.raises(sq.Empty):
            sq.get_nowait()
        sq.close()


def test_fanout_to_two_queues(broker):
    ex = Exchange(uniq("kfan"), type="fanout", durable=False)
    qa = Queue(uniq("kfa"), exchange=ex, durable=False)
    qb = Queue(uniq("kfb"), exchange=ex, durable=False)
    n = 20
    with Connection(url(broker), connect_timeout=5) as conn:
        producer = Producer(conn.channel(), exchange=ex)
        for q in (qa, qb):
            q(conn.default_channel).declare()
        for i in range(n):
            producer.publish({"i": i}, routing_key="ignored", serializer="json",
                             headers={"i": i}, retry=False)
        got = drain(conn, [qa, qb], 2 * n, accept=["json"])
    by_queue = {qa.name: [], qb.name: []}
    for qname, m in got:
        assert m.content_type == "application/json"
        assert m.headers["i"] == m.decode()["i"]
        by_queue[qname].append(m.decode()["i"])
    assert by_queue[qa.name] == list(range(n))
    assert by_queue[qb.name] == list(range(n))


def test_unacked_redelivered_after_close(broker):
    q = Queue(uniq("kredeliver"), durable=True)
    with Connection(url(broker), connect_timeout=5) as conn:
        Producer(conn.channel()).publish(b"again", routing_key=q.name, declare=[q],
                                         content_type="text/plain", delivery_mode=2, retry=False)
        got = []
        c = Consumer(conn, queues=[q], callbacks=[lambda b, m: got.append(m)],
                     accept=["text/plain"])
        c.consume()
        conn.drain_events(timeout=5)
        assert len(got) == 1 and got[0].delivery_info["redelivered"] is False
        # no ack: closing the connection returns the message to the queue
    with Connection(url(broker), connect_timeout=5) as conn:
        got = drain(conn, [q], 1, accept=["text/plain"])
    assert len(got) == 1
    m = got[0][1]
    assert raw_body(m) == b"again" and m.delivery_info["redelivered"] is True
