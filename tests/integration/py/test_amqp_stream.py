"""Stream queues: Kafka and AMQP on the same data (issue 10, docs/amqp-plan.md
"Kafka and AMQP on the same data"; mapping table in ARCHITECTURE.md).

A queue declared with x-queue-type stream is the Kafka topic of its name:
confluent_kafka producers write records that pika consumes (x-stream-offset
first/last/next/numeric/timestamp), and pika publishes that confluent_kafka
consumers read, with the property <-> header mapping checked both ways."""
import datetime
import decimal
import time

import pika
import pika.exceptions
import pytest
from confluent_kafka import TopicPartition

import ckhelp

from test_amqp_queues import connect, settle  # noqa: E402  (the shared pika fixtures)

BASE_TS = 1_700_000_000_000  # ms, a whole second


def declare_stream(ch, name):
    return ch.queue_declare(name, durable=True, arguments={'x-queue-type': 'stream'})


def stream_read(ch, q, n, offset=None, prefetch=100, timeout=5):
    """Consume n deliveries (acking each) from stream q; returns (method, props, body)."""
    ch.basic_qos(prefetch_count=prefetch)
    args = {} if offset is None else {'x-stream-offset': offset}
    got = []
    deadline = time.time() + timeout
    for m, p, b in ch.consume(q, arguments=args, inactivity_timeout=0.2):
        if m is not None:
            got.append((m, p, b))
            ch.basic_ack(m.delivery_tag)
        if len(got) >= n or time.time() > deadline:
            break
    ch.cancel()
    return got


def kafka_write(broker, topic, recs):
    """recs: (key, value, headers, ts_ms); each flushed alone (one batch each)."""
    p = ckhelp.producer(broker.bootstrap)
    for k, v, h, ts in recs:
        p.produce(topic, value=v, key=k, headers=h, timestamp=ts)
        ckhelp.flush(p)


def test_kafka_records_consumed_as_stream(broker):
    t = 'kstream1'
    ckhelp.create_topic(broker.bootstrap, t)
    recs = [(b'key%d' % i, b'value%d' % i,
             [('app', b'a%d' % i), ('amqp.content-type', b'text/plain'),
              ('amqp.message-id', b'id%d' % i), ('amqp.delivery-mode', b'1'),
              ('amqp.priority', b'7'), ('amqp.app-id', b'kafka-app'), ('nullh', None)],
             BASE_TS + i * 10_000) for i in range(4)]
    recs.append((b'plain', b'no amqp headers', [], BASE_TS + 40_000))
    kafka_write(broker, t, recs)

    conn = connect(broker)
    ch = conn.channel()
    ok = declare_stream(ch, t)
    assert ok.method.queue == t
    got = stream_read(ch, t, 5, 'first')
    assert [b for _, _, b in got] == [r[1] for r in recs]
    for i, (m, p, b) in enumerate(got[:4]):
        assert m.routing_key == 'key%d' % i and m.exchange == ''
        assert p.content_type == 'text/plain' and p.message_id == 'id%d' % i
        assert p.delivery_mode == 1 and p.priority == 7 and p.app_id == 'kafka-app'
        assert p.timestamp == (BASE_TS + i * 10_000) // 1000
        assert p.headers['app'] == 'a%d' % i
        assert p.headers['x-stream-offset'] == i
        assert 'nullh' in p.headers and p.headers['nullh'] is None
        assert not any(k.startswith('amqp.') for k in p.headers)
        assert 'x-stream-partition' not in p.headers  # one partition
    m, p, b = got[4]
    assert m.routing_key == 'plain' and p.delivery_mode == 2
    assert p.timestamp == (BASE_TS + 40_000) // 1000 and p.content_type is None
    assert p.headers == {'x-stream-offset': 4}

    # numeric offset, timestamp (AMQP 'T', seconds), last
    assert [p.headers['x-stream-offset'] for _, p, _ in stream_read(ch, t, 3, 2)] == [2, 3, 4]
    when = datetime.datetime.utcfromtimestamp((BASE_TS + 25_000) / 1000)
    assert [b for _, _, b in stream_read(ch, t, 2, when)] == [b'value3', b'no amqp headers']
    assert [b for _, _, b in stream_read(ch, t, 1, 'last')] == [b'no amqp headers']
    assert stream_read(ch, t, 1, 'next', timeout=1) == []
    # an offset past the end starts at the end; an interval covers everything
    assert stream_read(ch, t, 1, 1000, timeout=1) == []
    assert len(stream_read(ch, t, 5, '100000D')) == 5
    conn.close()


def test_next_waits_for_records_produced_later(broker):
    t = 'kstream_next'
    ckhelp.create_topic(broker.bootstrap, t)
    kafka_write(broker, t, [(b'old', b'old', [], BASE_TS)])
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    ch.basic_qos(prefetch_count=10)
    got = []
    ch.basic_consume(t, lambda c, m, p, b: (got.append((m, p, b)), c.basic_ack(m.delivery_tag)),
                     arguments={'x-stream-offset': 'next'})
    conn.process_data_events(time_limit=0.3)
    assert got == []
    kafka_write(broker, t, [(b'k1', b'new1', [('h', b'x')], BASE_TS + 1000)])
    deadline = time.time() + 5
    while len(got) < 1 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    # AMQP publishes to the same stream reach the waiting consumer too
    ch2 = conn.channel()
    ch2.basic_publish('', t, b'new2', pika.BasicProperties(headers={'via': 'amqp'}))
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert [b for _, _, b in got] == [b'new1', b'new2']
    assert got[0][1].headers == {'h': 'x', 'x-stream-offset': 1}
    assert got[1][1].headers == {'via': 'amqp', 'x-stream-offset': 2}
    conn.close()


def test_amqp_publish_read_by_kafka(broker):
    t = 'astream_pub'
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)  # creates the topic
    ckhelp.wait_topic(broker.bootstrap, t, 1)
    ch.exchange_declare('sx', 'direct', durable=True)
    ch.queue_bind(t, 'sx', 'rk1')
    ch.confirm_delivery()
    props = pika.BasicProperties(
        content_type='application/json', content_encoding='gzip', delivery_mode=2, priority=5,
        correlation_id='corr', reply_to='replies', expiration='60000', message_id='mid',
        timestamp=BASE_TS // 1000, type='evt', user_id='guest', app_id='app',
        headers={'s': 'str', 'i': 42, 'neg': -7, 'b': True,
                 'dec': decimal.Decimal('-1.25'), 'big': 2 ** 40, 'v': None, 'nested': {'a': 1}})
    ch.basic_publish('sx', 'rk1', b'{"x":1}', props, mandatory=True)
    ch.basic_publish('', t, b'via default', pika.BasicProperties(delivery_mode=1))
    conn.close()

    out = ckhelp.consume_all(broker.bootstrap, t, expect={0: 2})[0]
    m0, m1 = out
    assert m0.key() == b'rk1' and m0.value() == b'{"x":1}'
    assert m0.timestamp()[1] == BASE_TS
    h = dict(m0.headers())
    assert len(h) == len(m0.headers())
    assert h == {
        'amqp.content-type': b'application/json', 'amqp.content-encoding': b'gzip',
        'amqp.delivery-mode': b'2', 'amqp.priority': b'5', 'amqp.correlation-id': b'corr',
        'amqp.reply-to': b'replies', 'amqp.expiration': b'60000', 'amqp.message-id': b'mid',
        'amqp.type': b'evt', 'amqp.user-id': b'guest', 'amqp.app-id': b'app',
        's': b'str', 'i': b'42', 'neg': b'-7', 'b': b'true', 'dec': b'-1.25',
        'big': str(2 ** 40).encode(), 'v': None}
    assert m1.key() == b'astream_pub' and m1.value() == b'via default'
    assert dict(m1.headers()) == {'amqp.delivery-mode': b'1'}
    assert abs(m1.timestamp()[1] - time.time() * 1000) < 60_000  # publish time

    # and back over AMQP: properties restored, headers as strings
    conn = connect(broker)
    ch = conn.channel()
    (m, p, b), (m2, p2, b2) = stream_read(ch, t, 2, 'first')
    assert m.routing_key == 'rk1' and b == b'{"x":1}'
    for k in ('content_type', 'content_encoding', 'delivery_mode', 'priority', 'correlation_id',
              'reply_to', 'expiration', 'message_id', 'timestamp', 'type', 'user_id', 'app_id'):
        assert getattr(p, k) == getattr(props, k), k
    assert p.headers == {'s': 'str', 'i': '42', 'neg': '-7', 'b': 'true',
                         'dec': '-1.25', 'big': str(2 ** 40), 'v': None, 'x-stream-offset': 0}
    assert p2.delivery_mode == 1 and b2 == b'via default'
    conn.close()


def test_partitions_by_key_like_kafka(broker):
    t = 'kstream_parts'
    ckhelp.create_topic(broker.bootstrap, t, partitions=3)
    keys = [b'key-%d' % i for i in range(12)]
    p = ckhelp.producer(broker.bootstrap, partitioner='murmur2_random')
    for k in keys:
        p.produce(t, value=b'kafka', key=k)
    ckhelp.flush(p)
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    ch.confirm_delivery()
    for k in keys:
        ch.basic_publish('', t, b'amqp', pika.BasicProperties(), mandatory=True)
        ch.basic_publish('amq.direct', 'nobody', b'x')  # unrouted: not in the topic
    ch.queue_bind(t, 'amq.direct', 'k')
    for k in keys:
        ch.basic_publish('amq.direct', 'k', b'amqp-keyed', pika.BasicProperties())
    conn.close()
    # the key's partition is Kafka's default (murmur2) choice
    p = ckhelp.producer(broker.bootstrap, partitioner='murmur2_random')
    where = {}
    for k in keys:
        p.produce(t, value=b'probe', key=k,
                  on_delivery=lambda e, m: where.setdefault(m.key(), m.partition()))
    ckhelp.flush(p)
    out = ckhelp.consume_all(broker.bootstrap, t, partitions=(0, 1, 2))
    total = sum(len(v) for v in out.values())
    assert total == 12 + 12 + 12 + 12
    for part, msgs in out.items():
        for m in msgs:
            if m.key() is not None and m.key() in where:
                assert where[m.key()] == part, (m.key(), part)
    keyed = [m for v in out.values() for m in v if m.value() == b'amqp-keyed']
    assert len(keyed) == 12 and all(m.key() == b'k' for m in keyed)
    assert len({m.partition() for m in keyed}) == 1  # one key, one partition
    unkeyed = [m for v in out.values() for m in v if m.value() == b'amqp']
    assert all(m.key() == t.encode() for m in unkeyed)

    # a stream consumer of the 3-partition topic gets every record once, in order per partition
    conn = connect(broker)
    ch = conn.channel()
    got = stream_read(ch, t, 48, 'first', prefetch=7)
    assert len(got) == 48
    seen = {}
    for m, pr, b in got:
        part, off = pr.headers['x-stream-partition'], pr.headers['x-stream-offset']
        assert off > seen.get(part, -1)
        seen[part] = off
    assert {(pr.headers['x-stream-partition'], pr.headers['x-stream-offset'])
            for _, pr, _ in got} == {(pt, m.offset()) for pt, v in out.items() for m in v}
    conn.close()


def test_prefetch_bounds_unacked(broker):
    t = 'kstream_prefetch'
    ckhelp.create_topic(broker.bootstrap, t)
    p = ckhelp.producer(broker.bootstrap)
    for i in range(20):
        p.produce(t, value=b'%d' % i)
    ckhelp.flush(p)
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    ch.basic_qos(prefetch_count=3)
    got = []
    ch.basic_consume(t, lambda c, m, p_, b: got.append(m), arguments={'x-stream-offset': 'first'})
    settle(conn, got, 3)
    ch.basic_ack(got[1].delivery_tag)
    settle(conn, got, 4)
    ch.basic_nack(got[0].delivery_tag, requeue=True)  # credit back, never redelivered
    settle(conn, got, 5)
    assert not any(m.redelivered for m in got)
    ch.basic_ack(0, multiple=True)
    settle(conn, got, 8)
    conn.close()
    # a closed channel's unacked deliveries are not requeued: a stream is a log
    conn = connect(broker)
    assert len(stream_read(conn.channel(), t, 20, 'first')) == 20
    conn.close()


def test_read_committed_only(broker):
    t = 'kstream_txn'
    ckhelp.create_topic(broker.bootstrap, t)
    p = ckhelp.producer(broker.bootstrap, **{'transactional.id': 'stream-tx'})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(t, value=b'c1')
    p.produce(t, value=b'c2')
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(t, value=b'aborted')
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(t, value=b'c3')
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(t, value=b'open')
    p.flush(30)  # written, transaction still open: above the last stable offset
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    got = stream_read(ch, t, 5, 'first', timeout=2)
    assert [b for _, _, b in got] == [b'c1', b'c2', b'c3']
    p.commit_transaction(30)
    got = stream_read(ch, t, 1, got[-1][1].headers['x-stream-offset'] + 1, timeout=5)
    assert [b for _, _, b in got] == [b'open']
    conn.close()


def test_stream_survives_restart(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    declare_stream(ch, 'durable_stream')
    ch.exchange_declare('dsx', 'fanout', durable=True)
    ch.queue_bind('durable_stream', 'dsx')
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish('dsx', 'r%d' % i, b'm%d' % i, pika.BasicProperties(delivery_mode=2))
    assert len(stream_read(ch, 'durable_stream', 3, 'first')) == 3
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    ok = ch.queue_declare('durable_stream', passive=True)
    assert ok.method.queue == 'durable_stream'
    ch.basic_publish('dsx', 'r3', b'm3')  # the binding came back too
    got = stream_read(ch, 'durable_stream', 4, 'first')
    assert [(m.routing_key, bd) for m, _, bd in got] == [('r%d' % i, b'm%d' % i) for i in range(4)]
    # still a stream: declaring it classic now is inequivalent
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('durable_stream', durable=True)
    assert e.value.reply_code == 406
    conn.close()
    assert ckhelp.watermarks(b.bootstrap, 'durable_stream', 0) == (0, 4)


@pytest.mark.parametrize('kw,code', [
    ({'durable': False}, 406),
    ({'durable': True, 'exclusive': True}, 406),
    ({'durable': True, 'auto_delete': True}, 406),
])
def test_bad_declares(broker, kw, code):
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('bad_stream', arguments={'x-queue-type': 'stream'}, **kw)
    assert e.value.reply_code == code
    assert conn.is_open
    ch = conn.channel()
    ch.queue_declare('classic_q', durable=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        declare_stream(ch, 'classic_q')
    assert e.value.reply_code == 406
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        declare_stream(ch, 'not a topic name!')
    assert e.value.reply_code == 406
    conn.close()


def test_consume_rules(broker):
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, 'rules_stream')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_consume('rules_stream', lambda *a: None)  # no basic.qos
        conn.process_data_events(time_limit=0.5)
    assert e.value.reply_code == 406
    ch = conn.channel()
    ch.basic_qos(prefetch_count=5)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_consume('rules_stream', lambda *a: None, arguments={'x-stream-offset': 'bogus'})
    assert e.value.reply_code == 406
    ch = conn.channel()
    ch.basic_qos(prefetch_count=5)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        ch.basic_consume('rules_stream', lambda *a: None, auto_ack=True)
    assert e.value.reply_code == 540
    conn = connect(broker)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        conn.channel().basic_get('rules_stream')
    assert e.value.reply_code == 540
    # queue.delete forgets the queue; the topic stays Kafka's
    conn = connect(broker)
    conn.channel().queue_delete('rules_stream')
    conn.close()
    ckhelp.wait_topic(broker.bootstrap, 'rules_stream', 1)


def test_last_is_the_last_batch(broker):
    t = 'kstream_last'
    ckhelp.create_topic(broker.bootstrap, t)
    p = ckhelp.producer(broker.bootstrap, linger_ms=50)
    p.produce(t, value=b'a')
    ckhelp.flush(p)
    for v in (b'b', b'c', b'd'):
        p.produce(t, value=v)
    ckhelp.flush(p)  # one batch of three records
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    assert [b for _, _, b in stream_read(ch, t, 3, 'last')] == [b'b', b'c', b'd']
    conn.close()


def test_topic_deleted_and_recreated_under_a_consumer(broker):
    t = 'kstream_recreate'
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish('', t, b'old%d' % i)
    cch = conn.channel()
    cch.basic_qos(prefetch_count=10)
    got = []
    cch.basic_consume(t, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)),
                      arguments={'x-stream-offset': 'first'})
    deadline = time.time() + 5
    while len(got) < 3 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert got == [b'old0', b'old1', b'old2']
    adm = ckhelp.admin(broker.bootstrap)
    adm.delete_topics([t])[t].result(10)
    conn.process_data_events(time_limit=0.3)
    # the next publish creates the topic again; the consumer reads it from its start
    ch.basic_publish('', t, b'new0')
    deadline = time.time() + 5
    while len(got) < 4 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert got[3:] == [b'new0']
    conn.close()
    assert ckhelp.watermarks(broker.bootstrap, t, 0) == (0, 1)


def test_confirmed_stream_publishes_survive_kill9(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    declare_stream(ch, 'kill_stream')
    ch.confirm_delivery()
    for i in range(100):
        ch.basic_publish('', 'kill_stream', b'%d' % i)  # transient too: a stream keeps all
    b.kill9()
    b.start()
    assert ckhelp.watermarks(b.bootstrap, 'kill_stream', 0)[1] >= 100
    conn = connect(b)
    got = stream_read(conn.channel(), 'kill_stream', 100, 'first', timeout=10)
    assert [int(x) for _, _, x in got] == list(range(100))
    conn.close()


def test_numeric_offset_and_timestamp_above_the_data_wait(broker):
    t = 'kstream_ahead'
    ckhelp.create_topic(broker.bootstrap, t)
    kafka_write(broker, t, [(None, b'r0', [], BASE_TS), (None, b'r1', [], BASE_TS + 1000)])
    conn = connect(broker)
    ch = conn.channel()
    declare_stream(ch, t)
    ch.basic_qos(prefetch_count=10)
    got = []
    ch.basic_consume(t, lambda c, m, p, b: (got.append(b), c.basic_ack(m.delivery_tag)),
                     arguments={'x-stream-offset': 1})
    later = datetime.datetime.utcfromtimestamp(time.time() + 3600)  # an hour ahead
    ch.basic_consume(t, lambda c, m, p, b: (got.append(b'T' + b), c.basic_ack(m.delivery_tag)),
                     arguments={'x-stream-offset': later})
    deadline = time.time() + 3
    while len(got) < 1 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert got == [b'r1']
    kafka_write(broker, t, [(None, b'r2', [], int(time.time() * 1000))])
    deadline = time.time() + 5
    while len(got) < 3 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    # "next" for the timestamp consumer (nothing that new); both see r2
    assert sorted(got) == [b'Tr2', b'r1', b'r2']
    conn.close()
