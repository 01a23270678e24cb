"""AMQP 0-9-1: redelivered=true after a restart (issue 10; ah_redeliver.c).

A durable queue keeps a delivered mark in its ack-state record: a persistent
message that was handed to a client before a restart (basic.deliver or
basic.get-ok, not acked) comes back with redelivered=True, after kill -9 too;
one that was never delivered comes back with redelivered=False. Also: an ack
state that runs past the end of the queue's partition (a power loss cut the
partition but not __amqp_meta) is cut back, so new messages at the reused
offsets are not taken as acked."""
import glob
import os
import struct
import time

import pika

from test_amqp_queues import connect, drain

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def publish_confirmed(ch, queue, bodies):
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish('', queue, body, PERSISTENT)


def consume_one(conn, ch, queue, prefetch=1):
    """Start a consumer with manual acks; wait for its first delivery (the
    client has the bytes, so the broker sent them); return its body."""
    ch.basic_qos(prefetch_count=prefetch)
    got = []
    ch.basic_consume(queue, lambda c, m, p, b: got.append(b), auto_ack=False)
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert len(got) == 1
    return got[0]


def flags_after_restart(b, queue, n):
    conn = connect(b)
    ch = conn.channel()
    got = drain(ch, queue, n, timeout=10)
    conn.close()
    return [(body, m.redelivered) for m, _, body in got]


def test_delivered_before_kill9_come_back_redelivered(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('rq', durable=True)
    publish_confirmed(ch, 'rq', [b'm0', b'm1', b'm2', b'm3'])
    m, _, body = ch.basic_get('rq')                    # delivered by basic.get, no ack
    assert body == b'm0' and not m.redelivered
    ch2 = conn.channel()
    assert consume_one(conn, ch2, 'rq') == b'm1'       # delivered to a consumer, no ack
    # m2 and m3 were never delivered
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'rq', 4) == [(b'm0', True), (b'm1', True), (b'm2', False),
                                               (b'm3', False)]


def test_marks_survive_a_clean_restart_and_grow(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('rq2', durable=True)
    publish_confirmed(ch, 'rq2', [b'a', b'b', b'c'])
    assert ch.basic_get('rq2')[2] == b'a'
    conn.close()          # a is requeued (redelivered in memory), then a clean stop
    b.restart()
    conn = connect(b)
    ch = conn.channel()
    publish_confirmed(ch, 'rq2', [b'd'])
    m, _, body = ch.basic_get('rq2')
    assert (body, m.redelivered) == (b'a', True)
    m, _, body = ch.basic_get('rq2')
    assert (body, m.redelivered) == (b'b', False)
    ch.basic_ack(m.delivery_tag)                       # b is acked: gone for good
    ch.queue_declare('rq2', durable=True, passive=True)  # the broker has read the ack
    time.sleep(0.1)                                    # and ended that loop pass
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'rq2', 3) == [(b'a', True), (b'c', False), (b'd', False)]


def test_no_ack_delivery_does_not_return_after_kill9(broker_factory):
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('rq3', durable=True)
    publish_confirmed(ch, 'rq3', [b'x', b'y'])
    m, _, body = ch.basic_get('rq3', auto_ack=True)   # settled with the mark, one record
    assert body == b'x'
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'rq3', 2) == [(b'y', False)]


def batch_ends(path):
    """Byte offsets where each record batch of a segment file ends."""
    ends = []
    with open(path, 'rb') as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        _, blen = struct.unpack('>qi', data[pos:pos + 12])
        if blen <= 0:
            break
        pos += 12 + blen
        ends.append(pos)
    return ends


def test_ack_state_past_a_cut_partition_is_cut_back(broker_factory):
    """A power loss may keep __amqp_meta's ack record but cut the queue
    partition's unsynced tail. Here the cut is made by hand: of five
    messages 0, 1, 2 and 4 are acked (floor 3, settled {4}), then the
    partition is cut back to offsets 0..2 (not below the floor: the
    log-start file already says 3). New confirmed messages reuse offsets
    3..5; the one at 4 must not count as acked at the next start."""
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('cut', durable=True)
    publish_confirmed(ch, 'cut', [b'old%d' % i for i in range(5)])
    tags = []
    for i in range(5):
        m, _, body = ch.basic_get('cut')
        assert body == b'old%d' % i
        tags.append(m.delivery_tag)
    for i in (0, 1, 2, 4):
        ch.basic_ack(tags[i])
    conn.close()
    b.stop()
    parts = glob.glob(os.path.join(b.data_dir, '__amqp_q-*'))
    assert len(parts) == 1
    segs = sorted(glob.glob(os.path.join(parts[0], '*.log')))
    assert len(segs) == 1
    ends = batch_ends(segs[0])
    assert len(ends) == 5
    os.truncate(segs[0], ends[2])                      # keep offsets 0..2
    b.start()
    assert "ack state cut back" in b.log_text()
    conn = connect(b)
    ch = conn.channel()
    publish_confirmed(ch, 'cut', [b'new%d' % i for i in range(3)])
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'cut', 3) == [(b'new0', False), (b'new1', False),
                                                (b'new2', False)]
