"""AMQP 0-9-1: redelivered=true after a restart (issue 10; ah_redeliver.c).

A durable queue keeps a delivered mark in its ack-state record: a persistent
message that was handed to a client before a restart (basic.deliver or
basic.get-ok, not acked) comes back with redelivered=True, after kill -9 too;
one that was never delivered comes back with redelivered=False. Also: an ack
state that runs past the end of the queue's partition (a power loss cut the
partition but not __amqp_meta) is cut back, so new messages at the reused
offsets are not taken as acked. With the fault-injection build (simulated
power loss, skipped when build-fault/cairn is not built): acks and marks are
fsynced within log.flush.interval.ms."""
import glob
import os
import signal
import struct
import time

import pika
import pytest

from cairn_broker import _REPO

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


@pytest.mark.parametrize("keep", [3, 2])
def test_ack_state_past_a_cut_partition_is_cut_back(broker_factory, keep):
    """A power loss may keep __amqp_meta's ack record but cut the queue
    partition's unsynced tail. Here the cut is made by hand: of five
    messages 0, 1, 2 and 4 are acked (floor 3, settled {4}; the partition's
    log-start file says 3), then the partition is cut back to its first
    `keep` offsets. New confirmed messages reuse the offsets from there and
    must all survive the next crash: none may count as acked (ack state cut
    back) or as deleted (keep 2: the log-start file is cut back too)."""
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
    os.truncate(segs[0], ends[keep - 1])
    b.start()
    assert "ack state cut back" in b.log_text()
    conn = connect(b)
    ch = conn.channel()
    publish_confirmed(ch, 'cut', [b'new%d' % i for i in range(3)])
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'cut', 3) == [(b'new0', False), (b'new1', False),
                                                (b'new2', False)]


def fault_bin():
    b = os.environ.get("CAIRN_FAULT_BIN") or os.path.join(_REPO, "build-fault", "cairn")
    if not os.access(b, os.X_OK):
        pytest.skip("no fault-injection build (make BUILD=build-fault FAULT=1 build-fault/cairn)")
    return os.path.abspath(b)


def test_acks_and_marks_fsynced_within_flush_interval(broker_factory):
    """The broker's flush timer syncs internal partitions too (__amqp_meta):
    after a power loss (the fault build's SIGUSR1, mode 1: every file cut to
    what was fsynced) acks older than the interval stay, and so do the marks."""
    b = broker_factory({"log.flush.interval.ms": 100}, start=False)
    b.bin = fault_bin()
    b.start()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('fq', durable=True)
    publish_confirmed(ch, 'fq', [b'f%d' % i for i in range(6)])
    tags = []
    for i in range(6):
        m, _, body = ch.basic_get('fq')
        assert body == b'f%d' % i
        tags.append(m.delivery_tag)
    ch.basic_ack(tags[3], multiple=True)               # f0..f3 acked, f4 and f5 not
    ch.queue_declare('fq', durable=True, passive=True)
    time.sleep(0.6)                                    # several flush intervals
    b.proc.send_signal(signal.SIGUSR1)
    assert b.proc.wait(20) == 137
    b.start()
    assert flags_after_restart(b, 'fq', 2) == [(b'f4', True), (b'f5', True)]


def test_confirmed_messages_keep_their_queue_after_power_loss(broker_factory):
    """A confirm waits for the queue's declare record in __amqp_meta too:
    a power loss right after the confirms (long before the flush timer)
    keeps the queue and its messages."""
    b = broker_factory({"log.flush.interval.ms": 60000}, start=False)
    b.bin = fault_bin()
    b.start()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('pq2', durable=True)
    publish_confirmed(ch, 'pq2', [b'c0', b'c1', b'c2'])
    b.proc.send_signal(signal.SIGUSR1)
    assert b.proc.wait(20) == 137
    b.start()
    assert flags_after_restart(b, 'pq2', 3) == [(b'c0', False), (b'c1', False), (b'c2', False)]


def test_delivered_mark_survives_metadata_compaction(broker_factory):
    """The compaction of __amqp_meta rewrites each queue's ack state: it must
    keep the delivered mark (it once wrote the version-1 record without it,
    so a compaction made delivered messages come back redelivered=False)."""
    b = broker_factory()
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare('cmq', durable=True)
    publish_confirmed(ch, 'cmq', [b'c0', b'c1', b'c2'])
    m, _, body = ch.basic_get('cmq')                   # delivered, not acked
    assert body == b'c0' and not m.redelivered
    ch2 = conn.channel()
    ch2.exchange_declare('cmx', 'direct', durable=True)
    churn = 'k' * 200
    for _ in range(2500):                              # metadata churn: a compaction
        ch2.queue_bind('cmq', 'cmx', churn)
        ch2.queue_unbind('cmq', 'cmx', churn)
    assert '__amqp_meta: compacted' in b.log_text(1000000)
    b.kill9()
    b.start()
    assert flags_after_restart(b, 'cmq', 3) == [(b'c0', True), (b'c1', False), (b'c2', False)]
    b.stop()
