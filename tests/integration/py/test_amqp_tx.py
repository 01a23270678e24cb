"""AMQP 0-9-1 transactions (tx.select / tx.commit / tx.rollback, issue 10)
against a real broker with pika: publishes and acks in a transaction take
effect only at tx.commit, tx.rollback drops the publishes and leaves the
acked deliveries unacked (not requeued, as RabbitMQ), tx and confirm mode
exclude each other (406), commit/rollback without select is 406, mandatory
publishes come back at commit, a transaction's size is bounded (506), and a
persistent publish to a durable queue survives kill -9 once commit-ok came."""
import time

import pika
import pika.exceptions
import pytest

from test_amqp_queues import connect  # noqa: E402  (the shared pika fixtures)


def ready(ch, q, durable=False):
    return ch.queue_declare(q, durable=durable, passive=True).method.message_count


def bodies(ch, q):
    out = []
    while True:
        m, _, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append(b)


def test_commit_makes_publishes_visible(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txq')
    ch = conn.channel()
    ch.tx_select()
    ch.tx_select()  # a second select is a no-op
    for i in range(3):
        ch.basic_publish('', 'txq', b'm%d' % i)
    assert ready(obs, 'txq') == 0  # nothing before the commit
    ch.tx_commit()
    assert ready(obs, 'txq') == 3
    # the channel stays transactional: the next batch waits for its commit too
    ch.basic_publish('', 'txq', b'm3')
    assert ready(obs, 'txq') == 3
    ch.tx_commit()
    assert bodies(obs, 'txq') == [b'm0', b'm1', b'm2', b'm3']
    conn.close()


def test_rollback_discards_publishes(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txrb')
    ch = conn.channel()
    ch.tx_select()
    ch.basic_publish('', 'txrb', b'dropped-1')
    ch.basic_publish('', 'txrb', b'dropped-2')
    ch.tx_rollback()
    assert ready(obs, 'txrb') == 0
    ch.tx_commit()  # an empty transaction
    assert ready(obs, 'txrb') == 0
    ch.basic_publish('', 'txrb', b'kept')
    ch.tx_commit()
    assert bodies(obs, 'txrb') == [b'kept']
    conn.close()


def test_close_before_commit_drops_publishes(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txclose')
    ch = conn.channel()
    ch.tx_select()
    ch.basic_publish('', 'txclose', b'never')
    ch.close()
    assert ready(obs, 'txclose') == 0
    conn.close()


def test_acks_applied_only_at_commit(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txack')
    for i in range(4):
        obs.basic_publish('', 'txack', b'a%d' % i)
    ch = conn.channel()
    ch.tx_select()
    tags = []
    for i in range(4):
        m, _, b = ch.basic_get('txack')
        assert b == b'a%d' % i
        tags.append(m.delivery_tag)
    ch.basic_ack(tags[0])
    ch.basic_ack(tags[2], multiple=True)  # tags 1 and 2
    # not applied yet: closing the channel now would requeue all four
    ch.tx_rollback()
    # rollback: the deliveries are unacked again (not requeued) and may be acked again
    assert ready(obs, 'txack') == 0
    ch.basic_ack(tags[0])
    ch.basic_reject(tags[1], requeue=True)
    ch.basic_nack(tags[2], requeue=False)
    ch.tx_commit()
    # a0 acked, a1 requeued (redelivered), a2 dropped, a3 still unacked
    m, _, b = obs.basic_get('txack', auto_ack=True)
    assert b == b'a1' and m.redelivered
    assert ready(obs, 'txack') == 0
    ch.close()  # a3 comes back
    m, _, b = obs.basic_get('txack', auto_ack=True)
    assert b == b'a3' and m.redelivered
    assert ready(obs, 'txack') == 0
    conn.close()


def test_uncommitted_acks_requeue_when_the_channel_closes(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txack2')
    for i in range(2):
        obs.basic_publish('', 'txack2', b'b%d' % i)
    ch = conn.channel()
    ch.tx_select()
    got = []
    for m, _, b in ch.consume('txack2', inactivity_timeout=1):
        got.append(b)
        ch.basic_ack(m.delivery_tag)
        if len(got) == 2:
            break
    ch.cancel()
    ch.close()  # the acks were never committed
    assert sorted(bodies(obs, 'txack2')) == [b'b0', b'b1']
    conn.close()


def test_double_ack_in_a_transaction_is_406(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txdbl')
    obs.basic_publish('', 'txdbl', b'x')
    ch = conn.channel()
    ch.tx_select()
    m, _, _ = ch.basic_get('txdbl')
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.tx_commit()
    assert ei.value.reply_code == 406
    # the channel closed before the commit: the message is back
    assert bodies(obs, 'txdbl') == [b'x']
    conn.close()


def test_tx_and_confirm_exclude_each_other(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.tx_select()
    assert ei.value.reply_code == 406
    assert 'confirm to tx' in ei.value.reply_text
    ch = conn.channel()
    ch.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.confirm_delivery()
    assert ei.value.reply_code == 406
    assert 'tx to confirm' in ei.value.reply_text
    assert conn.is_open  # soft errors: the connection stays
    conn.close()


def test_commit_or_rollback_without_select_is_406(broker):
    conn = connect(broker)
    for op in ('tx_commit', 'tx_rollback'):
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            getattr(ch, op)()
        assert ei.value.reply_code == 406, op
        assert 'not transactional' in ei.value.reply_text
    assert conn.is_open
    conn.close()
    assert 'channel is not transactional' in broker.log_text()


def test_publish_to_missing_exchange_in_tx_is_404_at_once(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.tx_select()
    ch.basic_publish('no-such-exchange', 'k', b'x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.tx_commit()
    assert ei.value.reply_code == 404
    conn.close()


def test_mandatory_returned_on_commit(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txmand')
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, m.routing_key, b)))
    ch.tx_select()
    ch.basic_publish('', 'nowhere', b'lost', mandatory=True)
    ch.basic_publish('', 'txmand', b'routed', mandatory=True)
    conn.process_data_events(time_limit=0.3)
    assert returned == []  # nothing happens before the commit
    ch.tx_commit()
    deadline = time.time() + 5
    while not returned and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert returned == [(312, 'nowhere', b'lost')]
    assert bodies(obs, 'txmand') == [b'routed']
    conn.close()


def test_transaction_size_is_bounded(broker):
    conn = connect(broker)
    obs = conn.channel()
    obs.queue_declare('txbig')
    ch = conn.channel()
    ch.tx_select()
    body = b'z' * (16 << 20)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        for _ in range(5):  # the limit is 64 MiB: the 4th publish passes it
            ch.basic_publish('', 'txbig', body)
        ch.tx_commit()
    assert ei.value.reply_code == 506
    assert ready(obs, 'txbig') == 0  # the transaction was dropped
    conn.close()
    assert 'transaction too large' in broker.log_text(100000)


def test_committed_durable_publish_survives_kill9(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('txdur', durable=True)
    ch.tx_select()
    for i in range(50):
        ch.basic_publish('', 'txdur', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    ch.tx_commit()  # commit-ok: the 50 persistent messages are synced
    ch.basic_publish('', 'txdur', b'uncommitted', pika.BasicProperties(delivery_mode=2))
    b.kill9()
    b.start()
    conn = connect(b)
    ch = conn.channel()
    assert bodies(ch, 'txdur') == [b'%d' % i for i in range(50)]
    conn.close()
    b.stop()  # a clean exit (under ASan: no leaks)


def test_committed_acks_persist(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('txdack', durable=True)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish('', 'txdack', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    ch.close()
    ch = conn.channel()
    ch.tx_select()
    m, _, body = ch.basic_get('txdack')
    assert body == b'0'
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    assert bodies(ch, 'txdack') == [b'1', b'2']
    conn.close()
    b.stop()


def test_connection_gone_while_commit_waits(broker_factory):
    """A commit whose sync is still pending when the client disconnects: the
    messages were routed at commit, the orphaned commit is freed later."""
    import struct
    from test_amqp_conn import Raw, method, shortstr, frame

    b = broker_factory()
    conn = connect(b)
    conn.channel().queue_declare('txorphan', durable=True)
    conn.close()
    for round_ in range(5):
        r = Raw(b)
        r.handshake()
        r.send(method(1, 20, 10, shortstr("")))
        assert r.read_method()[:3] == (1, 20, 11)
        r.send(method(1, 90, 10))
        assert r.read_method()[:3] == (1, 90, 11)
        out = b""
        for i in range(20):
            body = b"r%d-%d" % (round_, i)
            out += method(1, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr("txorphan")
                          + b"\x00")
            # content header: class 60, weight 0, body size, flags (delivery-mode), mode 2
            out += frame(2, 1, struct.pack(">HHQH", 60, 0, len(body), 0x1000) + b"\x02")
            out += frame(3, 1, body)
        out += method(1, 90, 20)
        r.send(out)
        r.close()  # gone before (or as) commit-ok comes
    time.sleep(0.5)
    conn = connect(b)
    ch = conn.channel()
    got = bodies(ch, 'txorphan')
    # each round's commit was either processed whole or not at all
    rounds = {}
    for x in got:
        rd, i = x.decode()[1:].split('-')
        rounds.setdefault(int(rd), []).append(int(i))
    assert all(v == list(range(20)) for v in rounds.values()), rounds
    conn.close()
    b.stop()
