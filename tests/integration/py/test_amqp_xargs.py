"""AMQP 0-9-1 queue arguments (issue 10, RabbitMQ's x-* queue arguments)
against a real broker with pika (and kombu): dead-letter exchanges with the
x-death header, message TTL (per queue and per message), x-expires, length
limits with each x-overflow mode, priority queues, single active consumer,
argument validation (406) and a durable priority + TTL queue across
restarts."""
import datetime
import time

import pika
import pika.exceptions
import pytest

from test_amqp_queues import connect  # noqa: E402  (the shared pika fixtures)


def get_all(ch, queue, ack=True):
    """basic_get until empty: [(method, props, body)]."""
    out = []
    while True:
        m, p, b = ch.basic_get(queue)
        if m is None:
            return out
        out.append((m, p, b))
        if ack:
            ch.basic_ack(m.delivery_tag)


def bodies(msgs):
    return [b for _, _, b in msgs]


def wait_count(ch, queue, n, timeout=5):
    deadline = time.time() + timeout
    while True:
        c = ch.queue_declare(queue, passive=True).method.message_count
        if c == n or time.time() > deadline:
            return c
        time.sleep(0.05)


def pump(conn, cond, timeout=5):
    """Process events until cond() holds or timeout; returns cond()."""
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        conn.process_data_events(time_limit=0.05)
    return cond()


def closed_with(broker, code, fn):
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        fn(ch)
    assert ei.value.reply_code == code, ei.value
    conn.close()
    return ei.value


def test_dlx_on_reject_and_nack(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('dlx1', 'direct')
    ch.queue_declare('dead1')
    ch.queue_bind('dead1', 'dlx1', 'dead')
    ch.queue_declare('work1', arguments={'x-dead-letter-exchange': 'dlx1',
                                         'x-dead-letter-routing-key': 'dead'})
    for i in range(4):
        ch.basic_publish('', 'work1', b'm%d' % i,
                         pika.BasicProperties(headers={'a': i}, content_type='text/plain',
                                              delivery_mode=2))
    m0, _, _ = ch.basic_get('work1')
    ch.basic_reject(m0.delivery_tag, requeue=False)
    m1, _, _ = ch.basic_get('work1')
    ch.basic_nack(m1.delivery_tag, requeue=False)
    ch.basic_get('work1')
    m3, _, _ = ch.basic_get('work1')
    ch.basic_nack(m3.delivery_tag, multiple=True, requeue=False)  # m2 and m3, in order
    got = get_all(ch, 'dead1')
    assert bodies(got) == [b'm0', b'm1', b'm2', b'm3']
    for i, (m, p, _) in enumerate(got):
        assert m.exchange == 'dlx1' and m.routing_key == 'dead'
        assert p.content_type == 'text/plain' and p.delivery_mode == 2
        h = p.headers
        assert h['a'] == i
        xd = h['x-death']
        assert len(xd) == 1
        d = xd[0]
        assert d['count'] == 1 and d['reason'] == 'rejected' and d['queue'] == 'work1'
        assert d['exchange'] == '' and d['routing-keys'] == ['work1']
        assert isinstance(d['time'], datetime.datetime)
        assert h['x-first-death-reason'] == 'rejected'
        assert h['x-first-death-queue'] == 'work1'
        assert h['x-first-death-exchange'] == ''
    assert ch.queue_declare('work1', passive=True).method.message_count == 0
    # requeue=True does not dead-letter
    ch.basic_publish('', 'work1', b'again')
    m, _, _ = ch.basic_get('work1')
    ch.basic_reject(m.delivery_tag, requeue=True)
    assert ch.queue_declare('dead1', passive=True).method.message_count == 0
    m, _, b = ch.basic_get('work1')
    assert b == b'again' and m.redelivered
    ch.basic_ack(m.delivery_tag)
    conn.close()


def test_dlx_on_ttl_x_death(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('ttl-dead')
    # the default exchange as DLX, a routing key naming the dead queue
    ch.queue_declare('ttlq', arguments={'x-message-ttl': 200, 'x-dead-letter-exchange': '',
                                        'x-dead-letter-routing-key': 'ttl-dead'})
    ch.basic_publish('', 'ttlq', b'slow', pika.BasicProperties(expiration='60000',
                                                               content_type='x/y',
                                                               headers={'keep': 'me'}))
    # no consumer: the timer expires it at the head
    assert wait_count(ch, 'ttl-dead', 1) == 1
    assert ch.queue_declare('ttlq', passive=True).method.message_count == 0
    m, p, b = ch.basic_get('ttl-dead', auto_ack=True)
    assert b == b'slow' and m.exchange == '' and m.routing_key == 'ttl-dead'
    assert p.expiration is None and p.content_type == 'x/y'
    h = p.headers
    assert h['keep'] == 'me'
    d = h['x-death'][0]
    assert d['reason'] == 'expired' and d['queue'] == 'ttlq' and d['count'] == 1
    assert d['exchange'] == '' and d['routing-keys'] == ['ttlq']
    assert d['original-expiration'] == '60000'
    now = datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc).replace(tzinfo=None)
    assert abs((d['time'].replace(tzinfo=None) - now).total_seconds()) < 60
    assert h['x-first-death-reason'] == 'expired' and h['x-first-death-queue'] == 'ttlq'
    # A second death in another queue: x-death grows, most recent first,
    # x-first-death-* stay.
    ch.queue_declare('ttl2-dead')
    ch.queue_declare('ttl2', arguments={'x-dead-letter-exchange': '',
                                        'x-dead-letter-routing-key': 'ttl2-dead'})
    ch.basic_publish('', 'ttl2', b, pika.BasicProperties(headers=h))
    m, _, _ = ch.basic_get('ttl2')
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, b = ch.basic_get('ttl2-dead', auto_ack=True)
    xd = p.headers['x-death']
    assert [(d['queue'], d['reason']) for d in xd] == [('ttl2', 'rejected'), ('ttlq', 'expired')]
    assert p.headers['x-first-death-reason'] == 'expired'
    assert p.headers['x-last-death-reason'] == 'rejected'
    conn.close()


def test_ttl_cycle_is_dropped(broker):
    """A queue dead-lettering expired messages to itself: dropped after one lap."""
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('loopq', arguments={'x-message-ttl': 50, 'x-dead-letter-exchange': ''})
    ch.basic_publish('', 'loopq', b'round')
    time.sleep(0.6)
    assert ch.queue_declare('loopq', passive=True).method.message_count == 0
    conn.close()


def test_per_message_expiration(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('expq')
    ch.basic_publish('', 'expq', b'short', pika.BasicProperties(expiration='100'))
    ch.basic_publish('', 'expq', b'long')
    ch.basic_publish('', 'expq', b'short2', pika.BasicProperties(expiration='100'))
    time.sleep(0.4)
    # 'short' expired at the head (timer); 'short2' behind 'long' goes when it reaches the head
    m, p, b = ch.basic_get('expq', auto_ack=True)
    assert b == b'long' and p.expiration is None
    assert ch.basic_get('expq') == (None, None, None)
    assert ch.queue_declare('expq', passive=True).method.message_count == 0
    # a consumer gets an unexpired message with its expiration property
    ch.basic_publish('', 'expq', b'fresh', pika.BasicProperties(expiration='60000'))
    m, p, b = ch.basic_get('expq', auto_ack=True)
    assert b == b'fresh' and p.expiration == '60000'
    conn.close()
    # a bad expiration: 406
    closed_with(broker, 406, lambda c: (c.basic_publish('', 'expq', b'x',
                                                        pika.BasicProperties(expiration='abc')),
                                        c.basic_get('expq')))


def test_x_expires_deletes_unused_queue(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('expiring', arguments={'x-expires': 700})
    ch.basic_publish('', 'expiring', b'x')
    for _ in range(4):  # redeclares keep it alive (and the message in it)
        time.sleep(0.25)
        ok = ch.queue_declare('expiring', arguments={'x-expires': 700})
        assert ok.method.message_count == 1
    time.sleep(1.5)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('expiring', passive=True)
    assert ei.value.reply_code == 404
    ch = conn.channel()
    # a consumer keeps it; after the cancel it goes
    ch.queue_declare('expiring2', arguments={'x-expires': 300})
    tag = ch.basic_consume('expiring2', lambda *a: None)
    conn.process_data_events(time_limit=0.8)
    ch.queue_declare('expiring2', passive=True)
    ch.basic_cancel(tag)
    time.sleep(0.8)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('expiring2', passive=True)
    assert ei.value.reply_code == 404
    conn.close()
    assert "x-expires" in broker.log_text()


def test_priority_ordering(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('prioq', arguments={'x-max-priority': 10})
    for body, prio in ((b'p1', 1), (b'p5a', 5), (b'p10', 10), (b'none', None), (b'p5b', 5),
                       (b'p0', 0), (b'p200', 200)):
        ch.basic_publish('', 'prioq', body, pika.BasicProperties(priority=prio))
    # the first one, requeued, goes back to its place within its priority
    m, _, b = ch.basic_get('prioq')
    assert b == b'p10'
    m2, _, b2 = ch.basic_get('prioq')
    assert b2 == b'p200'  # capped at 10: FIFO after p10
    ch.basic_reject(m.delivery_tag, requeue=True)
    ch.basic_reject(m2.delivery_tag, requeue=True)
    got = get_all(ch, 'prioq')
    assert bodies(got) == [b'p10', b'p200', b'p5a', b'p5b', b'p1', b'none', b'p0']
    assert got[0][0].redelivered and not got[2][0].redelivered
    assert got[1][1].priority == 200  # the property itself is unchanged
    # a queue without x-max-priority ignores priorities
    ch.queue_declare('fifoq')
    for body, prio in ((b'a', 1), (b'b', 9)):
        ch.basic_publish('', 'fifoq', body, pika.BasicProperties(priority=prio))
    assert bodies(get_all(ch, 'fifoq')) == [b'a', b'b']
    conn.close()


def test_overflow_drop_head_dead_letters(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('dh-dead')
    ch.queue_declare('dh', arguments={'x-max-length': 2, 'x-dead-letter-exchange': '',
                                      'x-dead-letter-routing-key': 'dh-dead'})
    for i in range(5):
        ch.basic_publish('', 'dh', b'%d' % i)
    assert bodies(get_all(ch, 'dh')) == [b'3', b'4']
    got = get_all(ch, 'dh-dead')
    assert bodies(got) == [b'0', b'1', b'2']
    assert all(p.headers['x-death'][0]['reason'] == 'maxlen' for _, p, _ in got)
    conn.close()


def test_overflow_reject_publish_nacked_with_confirms(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('rp', arguments={'x-max-length': 2, 'x-overflow': 'reject-publish'})
    ch.confirm_delivery()
    ch.basic_publish('', 'rp', b'a')
    ch.basic_publish('', 'rp', b'b')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rp', b'c')
    assert ch.queue_declare('rp', passive=True).method.message_count == 2
    # without confirms the publish is dropped silently
    ch2 = conn.channel()
    ch2.basic_publish('', 'rp', b'd')
    assert bodies(get_all(ch2, 'rp')) == [b'a', b'b']
    ch.basic_publish('', 'rp', b'e')  # room again: acked
    assert bodies(get_all(ch2, 'rp')) == [b'e']
    conn.close()


def test_overflow_reject_publish_dlx(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('rpd-dead')
    ch.queue_declare('rpd', arguments={'x-max-length': 1, 'x-overflow': 'reject-publish-dlx',
                                       'x-dead-letter-exchange': '',
                                       'x-dead-letter-routing-key': 'rpd-dead'})
    ch.confirm_delivery()
    ch.basic_publish('', 'rpd', b'kept')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'rpd', b'refused')
    assert bodies(get_all(ch, 'rpd')) == [b'kept']
    got = get_all(ch, 'rpd-dead')
    assert bodies(got) == [b'refused']
    d = got[0][1].headers['x-death'][0]
    assert d['reason'] == 'maxlen' and d['queue'] == 'rpd'
    conn.close()


def test_max_length_bytes(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('mlb', arguments={'x-max-length-bytes': 10})
    for b in (b'aaaa', b'bbbb', b'cccc'):
        ch.basic_publish('', 'mlb', b)
    assert bodies(get_all(ch, 'mlb')) == [b'bbbb', b'cccc']
    ch.queue_declare('mlb-rp', arguments={'x-max-length-bytes': 5,
                                          'x-overflow': 'reject-publish'})
    ch.confirm_delivery()
    ch.basic_publish('', 'mlb-rp', b'12345')
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish('', 'mlb-rp', b'6')
    assert bodies(get_all(ch, 'mlb-rp')) == [b'12345']
    conn.close()


def test_single_active_consumer_failover(broker):
    conn = connect(broker)
    ch1 = conn.channel()
    ch2 = conn.channel()
    ch1.queue_declare('sac', arguments={'x-single-active-consumer': True})
    got = {1: [], 2: []}

    def cb(n, ack):
        def f(c, m, p, b):
            got[n].append(b)
            if ack:
                c.basic_ack(m.delivery_tag)
        return f

    ch1.basic_qos(prefetch_count=2)
    t1 = ch1.basic_consume('sac', cb(1, False))  # keeps 2 unacked
    ch2.basic_consume('sac', cb(2, True))
    for i in range(4):
        ch1.basic_publish('', 'sac', b'%d' % i)
    assert pump(conn, lambda: len(got[1]) == 2)
    conn.process_data_events(time_limit=0.3)
    # the active consumer is full (prefetch 2): the other one still gets nothing
    assert got[1] == [b'0', b'1'] and got[2] == []
    ch1.basic_cancel(t1)
    ch1.close()  # its unacked come back; the second consumer is the active one now
    assert pump(conn, lambda: len(got[2]) == 4)
    assert sorted(got[2]) == [b'0', b'1', b'2', b'3']
    ch3 = conn.channel()
    ch3.basic_publish('', 'sac', b'4')
    assert pump(conn, lambda: len(got[2]) == 5)
    assert got[2][-1] == b'4'
    conn.close()


def test_inequivalent_args_406(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('eqv', arguments={'x-message-ttl': 1000, 'x-max-length': 5,
                                       'unrelated': 'ignored'})
    ch.queue_declare('eqv', arguments={'x-message-ttl': 1000, 'x-max-length': 5})  # same
    conn.close()
    e = closed_with(broker, 406, lambda c: c.queue_declare('eqv',
                                                           arguments={'x-message-ttl': 2000,
                                                                      'x-max-length': 5}))
    assert 'inequivalent arg' in e.reply_text and 'x-message-ttl' in e.reply_text
    closed_with(broker, 406, lambda c: c.queue_declare('eqv', arguments={'x-message-ttl': 1000}))
    closed_with(broker, 406, lambda c: c.queue_declare('eqv', arguments={
        'x-message-ttl': 1000, 'x-max-length': 5, 'x-queue-type': 'quorum'}))
    # the queue survived the refused redeclares
    conn = connect(broker)
    conn.channel().queue_declare('eqv', passive=True)
    conn.close()


@pytest.mark.parametrize("args", [
    {'x-message-ttl': 'abc'},
    {'x-message-ttl': -1},
    {'x-expires': 0},
    {'x-max-length': __import__('decimal').Decimal('1.5')},
    {'x-max-length-bytes': -5},
    {'x-max-priority': 256},
    {'x-overflow': 'drop-tail'},
    {'x-dead-letter-exchange': 5},
    {'x-dead-letter-routing-key': 'k'},
    {'x-single-active-consumer': 'yes'},
    {'x-queue-type': 'lake'},
])
def test_bad_arg_406(broker, args):
    e = closed_with(broker, 406, lambda c: c.queue_declare('badargs', arguments=args))
    assert 'PRECONDITION_FAILED' in e.reply_text


def test_queue_types(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('qq', durable=True, arguments={'x-queue-type': 'quorum'})
    ch.queue_declare('cq', arguments={'x-queue-type': 'classic', 'x-queue-mode': 'lazy',
                                      'x-unknown-thing': 1})
    ch.basic_publish('', 'qq', b'q')
    assert bodies(get_all(ch, 'qq')) == [b'q']
    conn.close()
    closed_with(broker, 406, lambda c: c.queue_declare('qq2', arguments={'x-queue-type': 'quorum'}))
    closed_with(broker, 406, lambda c: c.queue_declare('qq3', durable=True, exclusive=True,
                                                       arguments={'x-queue-type': 'quorum'}))
    # a stream queue refuses classic-only arguments (406) and stream retention (540)
    closed_with(broker, 406, lambda c: c.queue_declare('sq', durable=True, arguments={
        'x-queue-type': 'stream', 'x-message-ttl': 1000}))
    conn = connect(broker)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as ei:
        conn.channel().queue_declare('sq', durable=True, arguments={
            'x-queue-type': 'stream', 'x-max-age': '1D'})
    assert ei.value.reply_code == 540


def test_durable_priority_and_ttl_survive_restart(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('ddead', durable=True)
    ch.queue_declare('dprio', durable=True, arguments={
        'x-max-priority': 5, 'x-message-ttl': 5000, 'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'ddead'})
    ch.confirm_delivery()
    t0 = time.time()
    # e5 is at the head (priority 5, before p5): it expires there
    for body, prio, exp in ((b'p1', 1, None), (b'p3', 3, None), (b'e5', 5, '300'),
                            (b'p5', 5, None)):
        ch.basic_publish('', 'dprio', body, pika.BasicProperties(delivery_mode=2, priority=prio,
                                                                 expiration=exp))
    # e5 expires at the head (timer) and is dead-lettered
    assert wait_count(ch, 'ddead', 1) == 1
    conn.close()
    time.sleep(max(0, t0 + 2.5 - time.time()))
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    assert ch.queue_declare('dprio', durable=True, passive=True).method.message_count == 3
    m, _, body = ch.basic_get('dprio')
    assert body == b'p5'
    ch.basic_ack(m.delivery_tag)
    m, _, body = ch.basic_get('dprio')
    assert body == b'p3'
    ch.basic_ack(m.delivery_tag)
    # p1 expires 5 s after its publish (>= 2.5 s before the restart), not 5 s
    # after the restart
    assert wait_count(ch, 'ddead', 2, timeout=t0 + 10 - time.time()) == 2
    assert time.time() - t0 < 7
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    assert ch.queue_declare('dprio', durable=True, passive=True).method.message_count == 0
    got = get_all(ch, 'ddead')
    assert bodies(got) == [b'e5', b'p1']
    assert [p.headers['x-death'][0]['reason'] for _, p, _ in got] == ['expired', 'expired']
    assert got[0][1].headers['x-death'][0]['original-expiration'] == '300'
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    assert ch.queue_declare('ddead', durable=True, passive=True).method.message_count == 0
    # the arguments came back too: a redeclare without them is inequivalent
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('dprio', durable=True)
    assert ei.value.reply_code == 406
    conn.close()


def test_kombu_priority_and_dlx(broker):
    kombu = pytest.importorskip("kombu")
    from kombu import Connection, Exchange, Queue
    url = "amqp://guest:guest@%s:%d//" % (broker.host, broker.amqp_port)
    with Connection(url) as conn:
        dead = Queue('kdead', Exchange('kdlx', 'fanout'), routing_key='')
        work = Queue('kwork', Exchange('kex', 'direct'), routing_key='kwork',
                     queue_arguments={'x-max-priority': 9, 'x-dead-letter-exchange': 'kdlx'})
        dead(conn.channel()).declare()
        work(conn.channel()).declare()
        prod = conn.Producer()
        for i, prio in enumerate((1, 9, 5)):
            prod.publish({'n': i}, exchange='kex', routing_key='kwork', priority=prio,
                         serializer='json')
        sq = conn.SimpleQueue(work)
        order = []
        for _ in range(3):
            m = sq.get(timeout=2)
            order.append(m.payload['n'])
            if m.payload['n'] == 2:
                m.reject()  # dead-lettered
            else:
                m.ack()
        assert order == [1, 2, 0]
        dsq = conn.SimpleQueue(dead)
        m = dsq.get(timeout=2)
        assert m.payload == {'n': 2}
        assert m.headers['x-death'][0]['reason'] == 'rejected'
        assert m.headers['x-death'][0]['queue'] == 'kwork'
        m.ack()
        sq.close()
        dsq.close()


def test_reject_cycle_counts_and_edge_cases(broker):
    conn = connect(broker)
    ch = conn.channel()
    # a queue dead-lettering rejected messages to itself: x-death's entry
    # for (queue, rejected) is bumped, not repeated
    ch.queue_declare('selfq', arguments={'x-dead-letter-exchange': ''})
    ch.basic_publish('', 'selfq', b'boomerang')
    for _ in range(3):
        m, _, _ = ch.basic_get('selfq')
        ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, b = ch.basic_get('selfq', auto_ack=True)
    assert b == b'boomerang' and not m.redelivered
    xd = p.headers['x-death']
    assert len(xd) == 1 and xd[0]['count'] == 3 and xd[0]['reason'] == 'rejected'
    # a missing dead-letter exchange: the expired message is dropped
    ch.queue_declare('nodlx', arguments={'x-message-ttl': 50, 'x-dead-letter-exchange': 'nope'})
    ch.basic_publish('', 'nodlx', b'x')
    assert wait_count(ch, 'nodlx', 0) == 0
    # x-expires deletes a queue whose message is still unacked on a channel;
    # settling it afterwards (reject, DLX) is harmless
    ch.queue_declare('gone-dead')
    ch.queue_declare('gone', arguments={'x-expires': 200, 'x-dead-letter-exchange': '',
                                        'x-dead-letter-routing-key': 'gone-dead'})
    ch.basic_publish('', 'gone', b'held')
    m, _, _ = ch.basic_get('gone')
    time.sleep(0.6)
    ch.basic_reject(m.delivery_tag, requeue=False)
    assert ch.queue_declare('gone-dead', passive=True).method.message_count == 0
    # an exclusive TTL queue goes with its connection while its timer is armed
    c2 = connect(broker)
    x = c2.channel()
    x.queue_declare('excl-ttl', exclusive=True, arguments={'x-message-ttl': 300,
                                                           'x-expires': 400})
    x.basic_publish('', 'excl-ttl', b'x')
    c2.close()
    time.sleep(0.6)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('excl-ttl', passive=True)
    assert ei.value.reply_code == 404
    conn.close()
    conn = connect(broker)
    conn.channel().queue_declare('selfq', arguments={'x-dead-letter-exchange': ''})
    conn.close()


def test_consumer_priorities(broker):
    """x-priority on basic.consume (RabbitMQ): the highest-priority consumer
    with credit gets the messages; a lower one only when the higher ones are
    full; equal priorities share round-robin."""
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('cprio')
    ch.basic_qos(prefetch_count=2)
    got = {'hi': [], 'lo': [], 'lo2': []}
    ch.basic_consume('cprio', lambda c, m, p, b: got['lo'].append(m.delivery_tag))
    ch.basic_consume('cprio', lambda c, m, p, b: got['hi'].append(m.delivery_tag),
                     arguments={'x-priority': 10})
    ch.basic_consume('cprio', lambda c, m, p, b: got['lo2'].append(m.delivery_tag))
    for i in range(6):
        ch.basic_publish('', 'cprio', b'%d' % i)
    pump(conn, lambda: sum(len(v) for v in got.values()) == 6)
    assert len(got['hi']) == 2                 # full first (prefetch 2) ...
    assert len(got['lo']) == 2 and len(got['lo2']) == 2   # ... then the rest, round-robin
    ch.basic_ack(0, multiple=True)
    for i in range(2):
        ch.basic_publish('', 'cprio', b'again')
    pump(conn, lambda: len(got['hi']) == 4)
    assert len(got['lo']) == 2 and len(got['lo2']) == 2   # freed credit: the high one again
    closed_with(broker, 406, lambda c: c.basic_consume('cprio', lambda *a: None,
                                                       arguments={'x-priority': 'high'}))
    conn.close()
