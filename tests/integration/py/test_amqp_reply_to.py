"""Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to pseudo-queue, issue 10's
direct_reply_to capability) against a real broker, with pika: an RPC round
trip without a reply queue, and the refusals RabbitMQ gives."""
import time

import pika
import pika.exceptions
import pytest

from test_amqp_queues import connect  # noqa: E402  (the shared pika fixtures)

REPLY = 'amq.rabbitmq.reply-to'


def test_rpc_round_trip(broker):
    server = connect(broker)
    sch = server.channel()
    sch.queue_declare('rpc')
    client = connect(broker)
    cch = client.channel()
    replies = []
    cch.basic_consume(REPLY, lambda c, m, p, b: replies.append((m, p, b)), auto_ack=True)
    for i in range(3):
        cch.basic_publish('', 'rpc', b'req-%d' % i,
                          pika.BasicProperties(reply_to=REPLY, correlation_id=str(i),
                                               headers={'k': 'v'}))
    # the responder sees a rewritten reply_to naming the requester's channel
    names = set()
    for i in range(3):
        m, p, b = None, None, None
        for _ in range(200):
            m, p, b = sch.basic_get('rpc', auto_ack=True)
            if m:
                break
            server.process_data_events(time_limit=0.05)
        assert b == b'req-%d' % i
        assert p.reply_to.startswith(REPLY + '.') and p.reply_to != REPLY
        assert p.correlation_id == str(i) and p.headers == {'k': 'v'}
        names.add(p.reply_to)
        sch.basic_publish('', p.reply_to, b'resp-' + b,
                          pika.BasicProperties(correlation_id=p.correlation_id))
    assert len(names) == 1
    (reply_name,) = names
    deadline = time.time() + 10
    while len(replies) < 3 and time.time() < deadline:
        client.process_data_events(time_limit=0.1)
    assert [b for _, _, b in replies] == [b'resp-req-0', b'resp-req-1', b'resp-req-2']
    assert [p.correlation_id for _, p, _ in replies] == ['0', '1', '2']
    assert all(m.routing_key == reply_name and m.exchange == '' for m, _, _ in replies)
    # once the requester cancels, a reply to its name is unroutable: mandatory returns it
    name = replies[0][0].routing_key
    cch.basic_cancel(replies[0][0].consumer_tag)
    returned = []
    sch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, b)))
    sch.basic_publish('', name, b'late', mandatory=True)
    deadline = time.time() + 10
    while not returned and time.time() < deadline:
        server.process_data_events(time_limit=0.1)
    assert returned == [(312, b'late')]
    client.close()
    server.close()


def test_reply_consumer_must_be_no_ack(broker):
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_consume(REPLY, lambda *a: None, auto_ack=False)
    assert e.value.reply_code == 406
    conn.close()


def test_reply_to_without_reply_consumer_is_406(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('rpc2')
    ch.basic_publish('', 'rpc2', b'x', pika.BasicProperties(reply_to=REPLY))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare('rpc2', passive=True)
    assert e.value.reply_code == 406
    assert conn.is_open
    conn.close()


def test_reply_to_a_closed_channel_is_dropped(broker):
    conn = connect(broker)
    ch = conn.channel()
    got = []
    ch.basic_consume(REPLY, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.queue_declare('rpc3')
    ch.basic_publish('', 'rpc3', b'q', pika.BasicProperties(reply_to=REPLY))
    m, p, b = None, None, None
    for _ in range(200):
        m, p, b = ch.basic_get('rpc3', auto_ack=True)
        if m:
            break
        conn.process_data_events(time_limit=0.05)
    name = p.reply_to
    ch.close()
    ch2 = conn.channel()
    ch2.basic_publish('', name, b'nobody')        # dropped, not an error
    ch2.basic_publish('', name + '.junk', b'bad')  # malformed name: dropped too
    ch2.queue_declare('rpc3', passive=True)       # the channel is still fine
    conn.close()
