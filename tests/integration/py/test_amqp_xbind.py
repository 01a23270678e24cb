"""AMQP 0-9-1 exchange-to-exchange bindings (exchange.bind / exchange.unbind)
and alternate exchanges (issue 10) against a real broker, with pika and
kombu: routing follows exchange bindings recursively (each queue gets a
message once per publish however many paths lead to it, cycles end), the
source's type decides the match, unbind and exchange deletion remove
bindings, durable ones survive a restart, an auto-delete source goes with
its last binding, and an alternate exchange takes what its exchange cannot
route, before mandatory is considered."""
import socket
import time
import uuid

import pika
import pika.exceptions
import pytest

from test_amqp_queues import connect  # noqa: E402  (the shared pika fixtures)


def bodies(ch, q):
    out = []
    while True:
        m, _, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append(b)


def test_chain_and_source_type_decides(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('c1', 'direct')
    ch.exchange_declare('c2', 'fanout')
    ch.exchange_declare('c3', 'topic')
    ch.queue_declare('cq2')
    ch.queue_declare('cq3')
    ch.exchange_bind(destination='c2', source='c1', routing_key='go')
    ch.exchange_bind(destination='c3', source='c2', routing_key='ignored by fanout')
    ch.queue_bind('cq2', 'c2')
    ch.queue_bind('cq3', 'c3', 'a.*')
    ch.basic_publish('c1', 'go', b'direct key matches, topic does not')
    ch.basic_publish('c1', 'stop', b'direct key does not match')
    ch.basic_publish('c2', 'a.b', b'fanout then topic')
    assert bodies(ch, 'cq2') == [b'direct key matches, topic does not', b'fanout then topic']
    assert bodies(ch, 'cq3') == [b'fanout then topic']
    # the routing key stays the message's own all the way
    ch.exchange_bind(destination='c3', source='c1', routing_key='a.x')
    ch.basic_publish('c1', 'a.x', b'k')
    m, _, b = ch.basic_get('cq3', auto_ack=True)
    assert b == b'k' and m.routing_key == 'a.x' and m.exchange == 'c1'
    assert bodies(ch, 'cq2') == []
    conn.close()


def test_fanout_to_topic(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('ft-f', 'fanout')
    ch.exchange_declare('ft-t', 'topic')
    ch.queue_declare('ft-q')
    ch.queue_bind('ft-q', 'ft-t', 'logs.#')
    ch.exchange_bind('ft-t', 'ft-f')
    for k in ('logs.app.error', 'metrics.cpu', 'logs'):
        ch.basic_publish('ft-f', k, k.encode())
    assert bodies(ch, 'ft-q') == [b'logs.app.error', b'logs']
    conn.close()


def test_cycle_and_diamond_deliver_once(broker):
    conn = connect(broker)
    ch = conn.channel()
    for x in ('cy-a', 'cy-b', 'cy-c'):
        ch.exchange_declare(x, 'fanout')
    ch.queue_declare('cy-q')
    # a -> b -> c -> a, and a -> c directly; the queue is bound to all three
    ch.exchange_bind('cy-b', 'cy-a')
    ch.exchange_bind('cy-c', 'cy-b')
    ch.exchange_bind('cy-a', 'cy-c')
    ch.exchange_bind('cy-c', 'cy-a')
    ch.exchange_bind('cy-a', 'cy-a')  # a self-loop
    for x in ('cy-a', 'cy-b', 'cy-c'):
        ch.queue_bind('cy-q', x)
    ch.basic_publish('cy-a', '', b'once')
    ch.basic_publish('cy-c', '', b'once more')
    assert bodies(ch, 'cy-q') == [b'once', b'once more']
    # binding twice is one binding
    ch.exchange_bind('cy-b', 'cy-a')
    ch.basic_publish('cy-a', '', b'still once')
    assert bodies(ch, 'cy-q') == [b'still once']
    conn.close()


def test_unbind(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('ub-s', 'direct')
    ch.exchange_declare('ub-d', 'fanout')
    ch.queue_declare('ub-q')
    ch.queue_bind('ub-q', 'ub-d')
    ch.exchange_bind('ub-d', 'ub-s', 'k')
    ch.basic_publish('ub-s', 'k', b'before')
    ch.exchange_unbind('ub-d', 'ub-s', 'other-key')  # not bound that way: still unbind-ok
    ch.basic_publish('ub-s', 'k', b'still')
    ch.exchange_unbind('ub-d', 'ub-s', 'k')
    ch.basic_publish('ub-s', 'k', b'after')
    assert bodies(ch, 'ub-q') == [b'before', b'still']
    conn.close()


def test_errors(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('er-x', 'fanout')
    cases = [
        (lambda c: c.exchange_bind('er-x', 'er-missing'), 404),
        (lambda c: c.exchange_bind('er-missing', 'er-x'), 404),
        (lambda c: c.exchange_unbind('er-x', 'er-missing'), 404),
        (lambda c: c.exchange_bind('er-x', ''), 403),
        (lambda c: c.exchange_bind('', 'er-x'), 403),
    ]
    for fn, code in cases:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            fn(ch)
        assert ei.value.reply_code == code
        ch = conn.channel()
    # built-in amq.* exchanges may be either end (as RabbitMQ)
    ch.queue_declare('er-q')
    ch.queue_bind('er-q', 'er-x')
    ch.exchange_bind('er-x', 'amq.topic', 'amq.#')
    ch.exchange_bind('amq.fanout', 'er-x')
    ch.basic_publish('amq.topic', 'amq.hello', b'from amq.topic')
    assert bodies(ch, 'er-q') == [b'from amq.topic']
    ch.exchange_unbind('er-x', 'amq.topic', 'amq.#')
    ch.exchange_unbind('amq.fanout', 'er-x')
    # if-unused counts exchange bindings of the source
    ch.exchange_declare('er-y', 'fanout')
    ch.exchange_bind('er-x', 'er-y')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_delete('er-y', if_unused=True)
    assert ei.value.reply_code == 406
    assert conn.is_open
    conn.close()


def test_deleting_an_exchange_removes_its_bindings(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('dl-s', 'fanout')
    ch.exchange_declare('dl-d', 'fanout')
    ch.queue_declare('dl-q')
    ch.queue_bind('dl-q', 'dl-d')
    ch.exchange_bind('dl-d', 'dl-s')
    ch.basic_publish('dl-s', '', b'1')
    # the destination goes: a new one of the same name is not bound
    ch.exchange_delete('dl-d')
    ch.exchange_declare('dl-d', 'fanout')
    ch.queue_bind('dl-q', 'dl-d')
    ch.basic_publish('dl-s', '', b'2')
    # the source goes: the destination no longer hears from a new source
    ch.exchange_bind('dl-d', 'dl-s')
    ch.basic_publish('dl-s', '', b'3')
    ch.exchange_delete('dl-s')
    ch.exchange_declare('dl-s', 'fanout')
    ch.basic_publish('dl-s', '', b'4')
    assert bodies(ch, 'dl-q') == [b'1', b'3']
    conn.close()


def test_auto_delete_source_goes_with_its_last_binding(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('ad-s', 'fanout', auto_delete=True)
    ch.exchange_declare('ad-d', 'fanout')
    ch.exchange_declare('ad-d2', 'fanout')
    ch.exchange_bind('ad-d', 'ad-s')
    ch.exchange_bind('ad-d2', 'ad-s')
    ch.exchange_unbind('ad-d', 'ad-s')
    ch.exchange_declare('ad-s', 'fanout', auto_delete=True, passive=True)  # one binding left
    ch.exchange_delete('ad-d2')  # its last binding goes with its destination
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('ad-s', 'fanout', passive=True)
    assert ei.value.reply_code == 404
    conn.close()


def test_auto_delete_cascade_and_queue_bindings(broker):
    conn = connect(broker)
    ch = conn.channel()
    # s1 -> s2 -> d, both sources auto-delete: deleting d takes s2, then s1
    ch.exchange_declare('adc-s1', 'fanout', auto_delete=True)
    ch.exchange_declare('adc-s2', 'fanout', auto_delete=True)
    ch.exchange_declare('adc-d', 'fanout')
    ch.exchange_bind('adc-s2', 'adc-s1')
    ch.exchange_bind('adc-d', 'adc-s2')
    ch.exchange_delete('adc-d')
    for x in ('adc-s1', 'adc-s2'):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.exchange_declare(x, 'fanout', passive=True)
        assert ei.value.reply_code == 404, x
        ch = conn.channel()
    # an auto-delete exchange with a queue binding and an exchange binding
    # stays while either is left
    ch.exchange_declare('adc-x', 'fanout', auto_delete=True)
    ch.exchange_declare('adc-y', 'fanout')
    ch.queue_declare('adc-q')
    ch.queue_bind('adc-q', 'adc-x')
    ch.exchange_bind('adc-y', 'adc-x')
    ch.queue_delete('adc-q')
    ch.exchange_declare('adc-x', 'fanout', auto_delete=True, passive=True)
    ch.exchange_unbind('adc-y', 'adc-x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('adc-x', 'fanout', passive=True)
    assert ei.value.reply_code == 404
    conn.close()


def test_alternate_exchange_catches_unroutable(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('ae-alt', 'fanout')
    ch.queue_declare('ae-unrouted')
    ch.queue_bind('ae-unrouted', 'ae-alt')
    ch.exchange_declare('ae-main', 'direct', arguments={'alternate-exchange': 'ae-alt'})
    ch.queue_declare('ae-routed')
    ch.queue_bind('ae-routed', 'ae-main', 'known')
    ch.basic_publish('ae-main', 'known', b'routed')
    ch.basic_publish('ae-main', 'unknown', b'unrouted')
    assert bodies(ch, 'ae-routed') == [b'routed']
    assert bodies(ch, 'ae-unrouted') == [b'unrouted']
    # redeclare: same alternate exchange is fine, another is 406
    ch.exchange_declare('ae-main', 'direct', arguments={'alternate-exchange': 'ae-alt'})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('ae-main', 'direct', arguments={'alternate-exchange': 'other'})
    assert ei.value.reply_code == 406
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('ae-bad', 'direct', arguments={'alternate-exchange': 42})
    assert ei.value.reply_code == 406
    ch = conn.channel()
    # alternate exchanges chain, and a cycle of them ends
    ch.exchange_declare('ae-c1', 'direct', arguments={'alternate-exchange': 'ae-c2'})
    ch.exchange_declare('ae-c2', 'direct', arguments={'alternate-exchange': 'ae-c1'})
    ch.basic_publish('ae-c1', 'x', b'lost in a cycle')
    ch.exchange_declare('ae-c3', 'direct', arguments={'alternate-exchange': 'ae-main'})
    ch.basic_publish('ae-c3', 'nope', b'two hops')
    assert bodies(ch, 'ae-unrouted') == [b'two hops']
    conn.close()


def test_mandatory_with_alternate_exchange_is_not_returned(broker):
    conn = connect(broker)
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, b)))
    ch.exchange_declare('mae-alt', 'fanout')
    ch.queue_declare('mae-q')
    ch.queue_bind('mae-q', 'mae-alt')
    ch.exchange_declare('mae-x', 'direct', arguments={'alternate-exchange': 'mae-alt'})
    ch.exchange_declare('mae-y', 'direct', arguments={'alternate-exchange': 'mae-missing'})
    ch.confirm_delivery()  # publishes wait for their confirm: returns come first
    ch.basic_publish('mae-x', 'unroutable', b'caught', mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish('mae-y', 'unroutable', b'returned', mandatory=True)
    assert bodies(ch, 'mae-q') == [b'caught']
    conn.close()


def test_durable_exchange_binding_survives_restart(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.exchange_declare('rs-s', 'topic', durable=True)
    ch.exchange_declare('rs-d', 'fanout', durable=True)
    ch.exchange_declare('rs-alt', 'fanout', durable=True)
    ch.exchange_declare('rs-main', 'direct', durable=True,
                        arguments={'alternate-exchange': 'rs-alt'})
    ch.exchange_declare('rs-transient', 'fanout', durable=False)
    ch.exchange_declare('rs-gone', 'fanout', durable=True)
    ch.queue_declare('rs-q', durable=True)
    ch.queue_declare('rs-alt-q', durable=True)
    ch.queue_bind('rs-q', 'rs-d')
    ch.queue_bind('rs-alt-q', 'rs-alt')
    ch.exchange_bind('rs-d', 'rs-s', 'a.#')
    ch.exchange_bind('rs-d', 'amq.direct', 'via-builtin')
    ch.exchange_bind('rs-d', 'rs-transient')  # not durable: not kept
    ch.exchange_bind('rs-d', 'rs-gone')
    ch.exchange_bind('rs-gone', 'rs-s', 'b.#')
    ch.exchange_delete('rs-gone')
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    ch.basic_publish('rs-s', 'a.b', b'e2e')
    ch.basic_publish('rs-s', 'b.c', b'via deleted')
    ch.basic_publish('amq.direct', 'via-builtin', b'builtin')
    ch.basic_publish('rs-main', 'nobody', b'alternate')
    assert bodies(ch, 'rs-q') == [b'e2e', b'builtin']
    assert bodies(ch, 'rs-alt-q') == [b'alternate']
    ch.exchange_declare('rs-main', 'direct', durable=True,
                        arguments={'alternate-exchange': 'rs-alt'}, passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('rs-main', 'direct', durable=True)  # the argument came back
    assert ei.value.reply_code == 406
    conn.close()
    # twice: the records replay the same after a second start
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    ch.basic_publish('rs-s', 'a.z', b'again')
    assert bodies(ch, 'rs-q') == [b'again']
    conn.close()
    b.stop()  # a clean exit (under ASan: no leaks)


def test_kombu_exchange_bind(broker):
    kombu = pytest.importorskip("kombu")
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    tag = uuid.uuid4().hex[:8]
    url = "amqp://guest:guest@%s:%d//" % (broker.host, broker.amqp_port)
    with Connection(url) as c:
        src = Exchange('kb-src-' + tag, 'topic', channel=c.default_channel)
        dst = Exchange('kb-dst-' + tag, 'fanout', channel=c.default_channel)
        src.declare()
        dst.declare()
        dst.bind_to(src, routing_key='orders.*')
        q = Queue('kb-q-' + tag, exchange=dst, channel=c.default_channel)
        q.declare()
        p = Producer(c, exchange=src)
        p.publish({'n': 1}, routing_key='orders.new', serializer='json')
        p.publish({'n': 2}, routing_key='users.new', serializer='json')
        got = []
        with Consumer(c, queues=[q], callbacks=[lambda body, m: (got.append(body), m.ack())]):
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    c.drain_events(timeout=0.5)
                except socket.timeout:
                    if got:
                        break
        assert got == [{'n': 1}]
        dst.unbind_from(src, routing_key='orders.*')
        p.publish({'n': 3}, routing_key='orders.new', serializer='json')
        time.sleep(0.2)
        assert q.get() is None


def test_exchange_bindings_survive_metadata_compaction(broker_factory):
    """Enough bind/unbind churn to compact __amqp_meta: the live exchange
    bindings are rewritten by the compaction and still replay."""
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.exchange_declare('cp-s', 'direct', durable=True)
    ch.exchange_declare('cp-d', 'fanout', durable=True,
                        arguments={'alternate-exchange': 'cp-alt'})
    ch.exchange_declare('cp-alt', 'fanout', durable=True)
    ch.queue_declare('cp-q', durable=True)
    ch.queue_bind('cp-q', 'cp-d')
    ch.exchange_bind('cp-d', 'cp-s', 'keep')
    churn = 'c' * 200
    for i in range(2500):
        ch.exchange_bind('cp-d', 'cp-s', churn)
        ch.exchange_unbind('cp-d', 'cp-s', churn)
    conn.close()
    assert '__amqp_meta: compacted' in b.log_text(1000000)
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    ch.basic_publish('cp-s', 'keep', b'kept')
    ch.basic_publish('cp-s', churn, b'churned')
    assert bodies(ch, 'cp-q') == [b'kept']
    ch.exchange_declare('cp-d', 'fanout', durable=True, passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('cp-d', 'fanout', durable=True)  # its AE came back
    assert ei.value.reply_code == 406
    conn.close()
    b.stop()
