"""AMQP 0-9-1 exchanges, queues, publish and consume (issue 10, step 3)
against a real broker, with pika (Debian python3-pika) and amqp-tools.

Durable exchanges, queues and bindings persist in __amqp_meta; persistent
messages in durable queues survive a restart and kill -9 once confirmed, and
acked ones do not come back after a clean restart."""
import shutil
import subprocess
import threading
import time

import pika
import pika.exceptions
import pytest


def params(broker, **kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", 5)
    kw.setdefault("blocked_connection_timeout", None)
    return pika.ConnectionParameters(broker.host, broker.amqp_port, **kw)


def connect(broker, **kw):
    return pika.BlockingConnection(params(broker, **kw))


def settle(conn, got, n, timeout=10, quiet=0.3):
    """Process events until len(got) == n, then `quiet` seconds more so an
    excess delivery shows; asserts exactly n. (pika's process_data_events
    returns as soon as one delivery is dispatched, whatever its time_limit.)"""
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    end = time.time() + quiet
    while time.time() < end:
        conn.process_data_events(time_limit=0.1)
    assert len(got) == n


def drain(ch, queue, n, timeout=5, ack=True):
    """basic_consume until n messages arrived; returns (method, props, body) tuples."""
    got = []
    deadline = time.time() + timeout
    for m, p, b in ch.consume(queue, inactivity_timeout=0.2):
        if m is not None:
            got.append((m, p, b))
            if ack:
                ch.basic_ack(m.delivery_tag)
        if len(got) >= n or time.time() > deadline:
            break
    ch.cancel()
    return got


def test_issue_program_and_consumer(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare(exchange='events', exchange_type='fanout')
    ch.queue_declare(queue='hello', durable=True)
    ch.basic_publish(exchange='', routing_key='hello', body='Hello World!',
                     properties=pika.BasicProperties(delivery_mode=2))
    conn.close()

    conn = connect(broker)
    ch = conn.channel()
    got = []

    def cb(c, m, p, b):
        got.append((m, p, b))
        c.basic_ack(m.delivery_tag)
        c.stop_consuming()

    ch.basic_consume(queue='hello', on_message_callback=cb)
    ch.start_consuming()
    m, p, b = got[0]
    assert b == b'Hello World!' and p.delivery_mode == 2 and not m.redelivered
    assert m.routing_key == 'hello' and m.exchange == ''
    assert ch.queue_declare(queue='hello', durable=True).method.message_count == 0
    conn.close()


def test_basic_get_and_counts(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('getq')
    for i in range(3):
        ch.basic_publish('', 'getq', b'm%d' % i,
                         pika.BasicProperties(content_type='text/plain', headers={'k': 'v'}))
    ok = ch.queue_declare('getq', passive=True)
    assert ok.method.message_count == 3
    m, p, b = ch.basic_get('getq')
    assert b == b'm0' and m.message_count == 2 and p.content_type == 'text/plain'
    assert p.headers == {'k': 'v'}
    ch.basic_ack(m.delivery_tag)
    m, p, b = ch.basic_get('getq', auto_ack=True)
    assert b == b'm1'
    m, p, b = ch.basic_get('getq')
    assert b == b'm2'
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, p, b = ch.basic_get('getq')
    assert b == b'm2' and m.redelivered
    ch.basic_ack(m.delivery_tag)
    assert ch.basic_get('getq') == (None, None, None)
    assert ch.queue_purge('getq').method.message_count == 0
    conn.close()


def test_large_message_spans_frames(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('big')
    body = bytes(range(256)) * 2000  # 512000 bytes, several body frames each way
    ch.basic_publish('', 'big', body)
    m, p, b = ch.basic_get('big', auto_ack=True)
    assert b == body
    conn.close()


def test_work_queue_prefetch_fair(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('work')
    n = 30
    for i in range(n):
        ch.basic_publish('', 'work', b'%d' % i)
    results = {}
    lock = threading.Lock()

    def worker(name):
        c = connect(broker)
        wch = c.channel()
        wch.basic_qos(prefetch_count=1)
        mine = []
        deadline = time.time() + 10
        for m, p, b in wch.consume('work', inactivity_timeout=0.5):
            if m is None:
                with lock:
                    if sum(len(v) for v in results.values()) + len(mine) >= n or \
                            time.time() > deadline:
                        break
                continue
            time.sleep(0.01)
            mine.append(int(b))
            wch.basic_ack(m.delivery_tag)
        with lock:
            results[name] = mine
        wch.cancel()
        c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    allm = sorted(x for v in results.values() for x in v)
    assert allm == list(range(n))
    # fair dispatch with prefetch 1: everyone got work
    assert all(len(v) >= 3 for v in results.values()), results
    conn.close()


def test_global_qos_shared_by_the_channels_consumers(broker):
    """basic.qos global=true bounds the channel's consumers together; the
    per-consumer limit (global=false) still applies on top (RabbitMQ)."""
    conn = connect(broker)
    ch = conn.channel()
    for q in ('gq1', 'gq2'):
        ch.queue_declare(q)
        for i in range(5):
            ch.basic_publish('', q, b'%s-%d' % (q.encode(), i))
    ch.basic_qos(prefetch_count=3, global_qos=True)
    ch.basic_qos(prefetch_count=2)            # per consumer, for the next consumers
    got = []
    ch.basic_consume('gq1', lambda c, m, p, b: got.append(m))
    ch.basic_consume('gq2', lambda c, m, p, b: got.append(m))
    settle(conn, got, 3)                       # the channel's limit, not 2 + 2
    per_q = {}
    for m in got:
        per_q[m.routing_key] = per_q.get(m.routing_key, 0) + 1
    assert max(per_q.values()) <= 2            # and each consumer's own
    ch.basic_ack(got[0].delivery_tag)         # one credit back: exactly one more
    settle(conn, got, 4)
    ch.basic_qos(prefetch_count=0, global_qos=True)   # lifted: the per-consumer limits remain
    settle(conn, got, 4 + 1)                   # 2 unacked on each consumer (one was acked)
    ch.basic_ack(0, multiple=True)
    deadline = time.time() + 5
    while len(got) < 10 and time.time() < deadline:
        conn.process_data_events(time_limit=0.2)
        ch.basic_ack(0, multiple=True)
    assert sorted(m.routing_key for m in got) == ['gq1'] * 5 + ['gq2'] * 5
    conn.close()


def test_fanout_to_two_exclusive_server_named(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('logs', 'fanout')
    q1 = ch.queue_declare('', exclusive=True).method.queue
    q2 = ch.queue_declare('', exclusive=True).method.queue
    assert q1.startswith('amq.gen-') and q2.startswith('amq.gen-') and q1 != q2
    ch.queue_bind(q1, 'logs')
    ch.queue_bind(q2, 'logs')
    ch.basic_publish('logs', 'ignored', b'x')
    assert ch.basic_get(q1, auto_ack=True)[2] == b'x'
    assert ch.basic_get(q2, auto_ack=True)[2] == b'x'
    # another connection cannot use them
    c2 = connect(broker)
    ch2 = c2.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch2.queue_declare(q1, passive=True)
    assert ei.value.reply_code == 405
    conn.close()
    # gone with their connection
    ch2 = c2.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch2.queue_declare(q1, passive=True)
    assert ei.value.reply_code == 404
    c2.close()


def test_direct_and_topic_routing(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('direct_logs', 'direct')
    for q, keys in (('d_err', ['error']), ('d_all', ['info', 'warning', 'error'])):
        ch.queue_declare(q)
        for k in keys:
            ch.queue_bind(q, 'direct_logs', k)
    for k in ('info', 'error', 'debug'):
        ch.basic_publish('direct_logs', k, k.encode())
    assert [b for _, _, b in drain(ch, 'd_err', 1)] == [b'error']
    assert [b for _, _, b in drain(ch, 'd_all', 2)] == [b'info', b'error']

    ch.exchange_declare('topic_logs', 'topic')
    table = {'t_orange': ['*.orange.*'], 't_rabbit': ['*.*.rabbit', 'lazy.#']}
    for q, keys in table.items():
        ch.queue_declare(q)
        for k in keys:
            ch.queue_bind(q, 'topic_logs', k)
    keys = ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox',
            'lazy.brown.fox', 'lazy.pink.rabbit', 'quick.brown.fox', 'orange',
            'quick.orange.male.rabbit', 'lazy.orange.male.rabbit']
    for k in keys:
        ch.basic_publish('topic_logs', k, k.encode())
    got_o = [b.decode() for _, _, b in drain(ch, 't_orange', 3)]
    got_r = [b.decode() for _, _, b in drain(ch, 't_rabbit', 4)]
    assert got_o == ['quick.orange.rabbit', 'lazy.orange.elephant', 'quick.orange.fox']
    rest = [b.decode() for _, _, b in drain(ch, 't_rabbit', 1)]
    # lazy.pink.rabbit matches both bindings of t_rabbit but arrives once
    assert got_r + rest == ['quick.orange.rabbit', 'lazy.orange.elephant', 'lazy.brown.fox',
                            'lazy.pink.rabbit', 'lazy.orange.male.rabbit']
    ch.queue_unbind('t_orange', 'topic_logs', '*.orange.*')
    ch.basic_publish('topic_logs', 'a.orange.b', b'z')
    assert ch.basic_get('t_orange') == (None, None, None)
    conn.close()


def test_headers_exchange(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare('hx', 'headers')
    ch.queue_declare('h_all')
    ch.queue_declare('h_any')
    ch.queue_bind('h_all', 'hx', arguments={'x-match': 'all', 'format': 'pdf', 'type': 'report'})
    ch.queue_bind('h_any', 'hx', arguments={'x-match': 'any', 'format': 'pdf', 'type': 'log'})
    ch.basic_publish('hx', '', b'1', pika.BasicProperties(headers={'format': 'pdf', 'type': 'report'}))
    ch.basic_publish('hx', '', b'2', pika.BasicProperties(headers={'format': 'zip', 'type': 'log'}))
    ch.basic_publish('hx', '', b'3', pika.BasicProperties(headers={'format': 'zip'}))
    assert [b for _, _, b in drain(ch, 'h_all', 1)] == [b'1']
    assert [b for _, _, b in drain(ch, 'h_any', 2)] == [b'1', b'2']
    conn.close()


def test_mandatory_return(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError) as ei:
        ch.basic_publish('', 'nowhere', b'lost', mandatory=True)
    ret = ei.value.messages[0]
    assert ret.method.reply_code == 312 and ret.body == b'lost'
    # not mandatory: silently dropped, still acked
    ch.basic_publish('', 'nowhere', b'lost')
    conn.close()


def test_errors_close_the_channel_only(broker):
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('missing-q', passive=True)
    assert ei.value.reply_code == 404
    ch = conn.channel()
    ch.queue_declare('props-q', durable=False)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('props-q', durable=True)
    assert ei.value.reply_code == 406
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('amq.mine', 'direct')
    assert ei.value.reply_code == 403
    ch = conn.channel()
    ch.exchange_declare('amq.topic', 'topic', passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('nope-x', 'direct', passive=True)
    assert ei.value.reply_code == 404
    ch = conn.channel()
    ch.exchange_declare('x1', 'direct')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.exchange_declare('x1', 'fanout')
    assert ei.value.reply_code == 406
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_ack(99)
        ch.queue_declare('after-ack')  # forces a round trip
    assert ei.value.reply_code == 406
    ch = conn.channel()
    ch.queue_declare('del-q')
    ch.basic_publish('', 'del-q', b'x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_delete('del-q', if_empty=True)
    assert ei.value.reply_code == 406
    ch = conn.channel()
    assert ch.queue_delete('del-q').method.message_count == 1
    ch.exchange_declare('internal-x', 'fanout', internal=True)
    ch.basic_publish('internal-x', '', b'no')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('after-internal')
    assert ei.value.reply_code == 403
    ch = conn.channel()
    ch.basic_publish('no-such-x', '', b'no')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('after-missing-x')
    assert ei.value.reply_code == 404
    ch = conn.channel()
    ch.queue_declare('ok-after-errors')
    conn.close()


def test_nack_requeue_redelivered(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('nackq')
    ch.basic_publish('', 'nackq', b'a')
    ch.basic_publish('', 'nackq', b'b')
    got = drain(ch, 'nackq', 2, ack=False)
    assert [b for _, _, b in got] == [b'a', b'b']
    ch.basic_nack(got[1][0].delivery_tag, multiple=True, requeue=True)
    again = drain(ch, 'nackq', 2)
    assert [b for _, _, b in again] == [b'a', b'b']
    assert all(m.redelivered for m, _, _ in again)
    # nack without requeue drops
    ch.basic_publish('', 'nackq', b'c')
    m, _, _ = ch.basic_get('nackq')
    ch.basic_nack(m.delivery_tag, requeue=False)
    assert ch.basic_get('nackq') == (None, None, None)
    conn.close()


def test_unacked_redelivered_after_connection_closes(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('redeliver')
    for i in range(3):
        ch.basic_publish('', 'redeliver', b'%d' % i)
    c2 = connect(broker)
    ch2 = c2.channel()
    got = drain(ch2, 'redeliver', 3, ack=False)
    assert len(got) == 3
    ch2.basic_ack(got[0][0].delivery_tag)
    c2.close()
    again = drain(ch, 'redeliver', 2)
    assert [b for _, _, b in again] == [b'1', b'2']
    assert all(m.redelivered for m, _, _ in again)
    conn.close()


def test_recover_and_cancel_auto_delete(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('recq')
    ch.basic_publish('', 'recq', b'r')
    m, _, _ = ch.basic_get('recq')
    ch.basic_recover(requeue=True)
    m, _, b = ch.basic_get('recq')
    assert b == b'r' and m.redelivered
    ch.basic_ack(m.delivery_tag)
    q = ch.queue_declare('', auto_delete=True).method.queue
    tag = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 404
    conn.close()


def test_confirms_1000_persistent(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.queue_declare('confirmed', durable=True)
    ch.confirm_delivery()
    for i in range(1000):
        ch.basic_publish('', 'confirmed', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    assert ch.queue_declare('confirmed', durable=True, passive=True).method.message_count == 1000
    assert ch.queue_purge('confirmed').method.message_count == 1000
    conn.close()


def test_amqp_tools_publish_consume(broker):
    for name in ('amqp-declare-queue', 'amqp-publish', 'amqp-consume'):
        if not shutil.which(name):
            pytest.skip('%s not installed (Debian amqp-tools)' % name)
    url = 'amqp://guest:guest@%s:%d' % (broker.host, broker.amqp_port)
    p = subprocess.run(['amqp-declare-queue', '--url', url, '-q', 'tools-q'],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0 and p.stdout.strip() == 'tools-q', p.stderr
    p = subprocess.run(['amqp-publish', '--url', url, '-r', 'tools-q', '-b', 'from amqp-tools'],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(['amqp-consume', '--url', url, '-q', 'tools-q', '-c', '1', 'cat'],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0 and p.stdout == 'from amqp-tools', (p.stdout, p.stderr)


def test_durable_metadata_survives_restart(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.exchange_declare('dx', 'topic', durable=True)
    ch.exchange_declare('tx_gone', 'direct', durable=False)
    ch.queue_declare('dq', durable=True)
    ch.queue_declare('tq', durable=False)
    ch.queue_declare('dq_deleted', durable=True)
    ch.queue_bind('dq', 'dx', 'a.#')
    ch.queue_bind('dq', 'amq.fanout')
    ch.queue_bind('dq_deleted', 'dx', 'x')
    ch.queue_delete('dq_deleted')
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    ch.exchange_declare('dx', 'topic', durable=True, passive=True)
    ch.queue_declare('dq', durable=True, passive=True)
    for name, fn in (('tx_gone', lambda c: c.exchange_declare('tx_gone', 'direct', passive=True)),
                     ('tq', lambda c: c.queue_declare('tq', passive=True)),
                     ('dq_deleted', lambda c: c.queue_declare('dq_deleted', passive=True))):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            fn(ch)
        assert ei.value.reply_code == 404, name
        ch = conn.channel()
    # redeclare with other properties: 406 (the durable flag came back)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('dq', durable=False)
    assert ei.value.reply_code == 406
    ch = conn.channel()
    # the bindings came back
    ch.basic_publish('dx', 'a.b.c', b'via topic')
    ch.basic_publish('amq.fanout', '', b'via fanout')
    ch.basic_publish('dx', 'b', b'nowhere')
    assert [m for _, _, m in drain(ch, 'dq', 2)] == [b'via topic', b'via fanout']
    conn.close()
    # 6 built-in exchanges + dx, and dq
    assert "7 exchanges, 1 queues from __amqp_meta" in b.log_text()


def test_persistent_messages_survive_restart_acked_do_not_return(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('pq', durable=True)
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish('', 'pq', b'p%d' % i, pika.BasicProperties(delivery_mode=2,
                                                                   content_type='text/plain'))
    ch.basic_publish('', 'pq', b'transient')
    got = drain(ch, 'pq', 4)  # p0..p3 acked
    assert [x for _, _, x in got] == [b'p0', b'p1', b'p2', b'p3']
    m, _, body = ch.basic_get('pq')  # p4 delivered, not acked
    assert body == b'p4'
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    got = drain(ch, 'pq', 6)
    assert [x for _, _, x in got] == [b'p%d' % i for i in range(4, 10)]
    assert all(p.content_type == 'text/plain' and p.delivery_mode == 2 for _, p, _ in got)
    assert ch.basic_get('pq') == (None, None, None)  # the transient one is gone
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    assert ch.queue_declare('pq', durable=True, passive=True).method.message_count == 0
    conn.close()


def test_confirmed_messages_survive_kill9(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.exchange_declare('dfan', 'fanout', durable=True)
    for q in ('k1', 'k2'):
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, 'dfan')
    ch.confirm_delivery()
    for i in range(200):
        ch.basic_publish('dfan', '', b'%d' % i, pika.BasicProperties(delivery_mode=2))
    b.kill9()
    b.start()
    conn = connect(b)
    ch = conn.channel()
    for q in ('k1', 'k2'):
        got = drain(ch, q, 200, timeout=10)
        assert [int(x) for _, _, x in got] == list(range(200)), q
    conn.close()


def test_queue_delete_drops_its_partition(broker_factory):
    import os
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('short-lived', durable=True)
    ch.basic_publish('', 'short-lived', b'x', pika.BasicProperties(delivery_mode=2))
    parts = [d for d in os.listdir(b.data_dir) if d.startswith('__amqp_q-')]
    assert len(parts) == 1
    assert ch.queue_delete('short-lived').method.message_count == 1
    assert [d for d in os.listdir(b.data_dir) if d.startswith('__amqp_q-')] == []
    conn.close()
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare('short-lived', passive=True)
    assert ei.value.reply_code == 404
    conn.close()
