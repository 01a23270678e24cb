"""The AMQP objects over HTTP (issue 11: "Admin: ... AMQP exchanges/queues"):
GET /amqp/exchanges, /amqp/queues and /amqp/bindings list what pika
declared on the same broker, through the server's objects hook (the HTTP
front end does not include the AMQP one):
- a durable topic exchange with an alternate exchange, a fanout exchange
  bound to it (exchange-to-exchange), a durable queue bound with a routing
  key, and the built-in exchanges;
- the queue's ready count and bytes, unacknowledged deliveries and
  consumers follow what pika does (publish, basic.get without ack, a
  consumer);
- a deleted queue and its bindings disappear; an unknown listing is 404
  not_found with a JSON body, and only GET is allowed (405).
"""
import time

import pika
import pytest

from cairn_broker import unique_topic
from httphelp import get, request


def by_name(items, name, key="name"):
    found = [x for x in items if x[key] == name]
    assert len(found) == 1, (name, items)
    return found[0]


@pytest.fixture
def amqp(broker):
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        broker.host, broker.amqp_port, connection_attempts=1, socket_timeout=5))
    yield conn
    if conn.is_open:
        conn.close()


def test_objects_pika_declared_are_listed(broker, amqp):
    x, fx, ae, q = (unique_topic("hx"), unique_topic("hfx"), unique_topic("hae"),
                    unique_topic("hq"))
    ch = amqp.channel()
    ch.exchange_declare(ae, "fanout", durable=True)
    ch.exchange_declare(x, "topic", durable=True, arguments={"alternate-exchange": ae})
    ch.exchange_declare(fx, "fanout", auto_delete=False)
    ch.queue_declare(q, durable=True)
    ch.queue_bind(q, x, routing_key="orders.*")
    ch.exchange_bind(destination=fx, source=x, routing_key="#")

    st, _, body = get(broker, "/amqp/exchanges")
    assert st == 200, body
    ex = body["exchanges"]
    e = by_name(ex, x)
    assert (e["type"], e["durable"], e["auto_delete"], e["internal"], e["builtin"],
            e["alternate_exchange"], e["bindings"], e["vhost"]) == \
        ("topic", True, False, False, False, ae, 2, "/"), e
    assert by_name(ex, fx)["type"] == "fanout"
    assert by_name(ex, "")["builtin"] is True            # the default exchange
    assert by_name(ex, "amq.topic")["type"] == "topic"

    st, _, body = get(broker, "/amqp/bindings")
    assert st == 200, body
    mine = [b for b in body["bindings"] if b["source"] == x]
    assert sorted((b["destination"], b["destination_type"], b["routing_key"]) for b in mine) == \
        sorted([(q, "queue", "orders.*"), (fx, "exchange", "#")]), mine

    def queue():
        st, _, body = get(broker, "/amqp/queues")
        assert st == 200, body
        return by_name(body["queues"], q)

    qq = queue()
    assert (qq["type"], qq["durable"], qq["exclusive"], qq["auto_delete"],
            qq["messages_ready"], qq["messages_unacked"], qq["consumers"]) == \
        ("classic", True, False, False, 0, 0, 0), qq
    for i in range(4):
        ch.basic_publish(x, "orders.new", b"%d" % i * 10)
    amqp.process_data_events(time_limit=0.2)
    qq = queue()
    assert (qq["messages_ready"], qq["messages_ready_bytes"]) == (4, 40), qq
    m, _, _ = ch.basic_get(q, auto_ack=False)
    ch2 = amqp.channel()
    ch2.basic_qos(prefetch_count=1)
    got = []
    ch2.basic_consume(q, lambda c, mm, p, b: got.append(mm.delivery_tag))
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        amqp.process_data_events(time_limit=0.1)
    qq = queue()
    assert (qq["messages_ready"], qq["messages_unacked"], qq["consumers"]) == (2, 2, 1), qq

    ch2.close()
    ch.basic_ack(m.delivery_tag)
    ch.queue_delete(q)
    st, _, body = get(broker, "/amqp/queues")
    assert all(b["name"] != q for b in body["queues"])
    st, _, body = get(broker, "/amqp/bindings")
    assert all(b["destination"] != q for b in body["bindings"])


def test_bad_listing_and_method(broker):
    st, _, body = get(broker, "/amqp/channels")
    assert st == 404 and body["error_code"] == "not_found", body
    st, hdrs, body = request(broker, "POST", "/amqp/queues", body={})
    assert st == 405 and "GET" in hdrs.get("allow", ""), (st, body)
