"""Durability across restarts: kill -9 mid-produce, and clean SIGTERM restarts."""
import threading
import time

import pytest
from confluent_kafka.admin import ConfigResource

import ckhelp
from ckhelp import Deliveries, consume_all, create_topic, flush, producer


@pytest.mark.cairn_timeout(300)
def test_kill9_during_acks_all_produce(broker_factory, topic):
    b = broker_factory()
    create_topic(b.bootstrap, topic, 1)
    n = 6000
    kill_after = 2000

    ok = {}        # record number -> offset from a successful delivery report
    failed = {}    # record number -> error
    lock = threading.Lock()
    killed = threading.Event()
    restarted = threading.Event()
    killer_error = []

    def cb(err, msg):
        i = int(msg.value())
        with lock:
            if err is None:
                ok[i] = msg.offset()
            else:
                failed[i] = err

    def killer():
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                with lock:
                    if len(ok) >= kill_after:
                        break
                time.sleep(0.005)
            b.kill9()
            killed.set()
            time.sleep(0.5)
            b.start()
            restarted.set()
        except BaseException as e:  # surfaced by the main thread
            killer_error.append(e)
            killed.set()

    # No retries: without an idempotent producer a retried batch could be
    # appended twice, which would make "exactly once" unprovable. Failed
    # deliveries may or may not be in the log; successful ones must be.
    p = producer(b.bootstrap, acks="all", linger_ms=2,
                 **{"message.send.max.retries": 0, "batch.num.messages": 50,
                    "message.timeout.ms": 60000, "reconnect.backoff.ms": 50})
    th = threading.Thread(target=killer, daemon=True)
    th.start()
    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=0, on_delivery=cb)
        if i % 50 == 49:
            p.poll(0)
            time.sleep(0.005)  # spread production over the kill
        if i == n // 2:
            # make sure the second half is produced after the restart too
            # (keep serving delivery callbacks: the killer waits on them)
            deadline = time.time() + 60
            while not killed.is_set() and time.time() < deadline:
                p.poll(0.05)
            assert killed.is_set(), "kill never happened (%d delivered)" % len(ok)
    assert restarted.wait(60) or killer_error, "restart never happened"
    th.join(30)
    if killer_error:
        raise killer_error[0]
    p.flush(90)
    assert len(ok) + len(failed) == n, "missing delivery reports: %d ok + %d failed of %d" % (
        len(ok), len(failed), n)
    assert len(ok) >= kill_after, len(ok)
    assert any(i > n // 2 for i in ok), "nothing delivered after the restart"

    msgs = consume_all(b.bootstrap, topic, timeout=60)[0]
    offsets = [m.offset() for m in msgs]
    assert offsets == list(range(len(msgs))), "log offsets are not contiguous from 0"
    values = [int(m.value()) for m in msgs]
    at = dict(zip(offsets, values))
    assert len(set(values)) == len(values), "a record appears more than once in the log"
    for i, off in ok.items():
        assert at.get(off) == i, "record %d acked at offset %d but log has %r there" % (
            i, off, at.get(off))
    acked_in_log_order = [v for v in values if v in ok]
    assert acked_in_log_order == sorted(ok), "acked records out of order in the log"
    assert ckhelp.watermarks(b.bootstrap, topic, 0)[1] == len(msgs)

    # still writable after recovery, offsets continue
    d = Deliveries()
    p2 = producer(b.bootstrap, acks="all")
    p2.produce(topic, value=b"after", partition=0, on_delivery=d.cb())
    flush(p2)
    assert d.ok[0][3] == len(msgs)
    b.stop()


@pytest.mark.cairn_timeout(240)
def test_sigterm_restart_keeps_everything(broker_factory, topic_name):
    b = broker_factory({"log.segment.bytes": "65536"})  # several segments per partition
    t = topic_name("restart")
    create_topic(b.bootstrap, t, 3, config={"retention.ms": "86400000"})
    n = 3000
    d = Deliveries()
    p = producer(b.bootstrap, acks="all", linger_ms=5, **{"compression.type": "gzip"})
    for i in range(n):
        p.produce(t, key=b"k%d" % i, value=(b"%d-" % i) * 20, partition=i % 3,
                  headers=[("i", b"%d" % i)], timestamp=1_600_000_000_000 + i, on_delivery=d.cb(i))
        if i % 500 == 0:
            p.poll(0)
    flush(p)
    assert not d.failed
    before = {q: ckhelp.watermarks(b.bootstrap, t, q) for q in range(3)}
    assert sum(hi for lo, hi in before.values()) == n

    for rnd in range(2):
        b.stop()          # SIGTERM -> must exit 0
        b.start()         # same port, same data dir
        assert {q: ckhelp.watermarks(b.bootstrap, t, q) for q in range(3)} == before, rnd

    md = ckhelp.wait_topic(b.bootstrap, t, 3)
    assert len(md.partitions) == 3
    a = ckhelp.admin(b.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, t)
    assert a.describe_configs([res])[res].result(20)["retention.ms"].value == "86400000"

    out = consume_all(b.bootstrap, t, (0, 1, 2), expect={q: before[q][1] for q in range(3)})
    for q in range(3):
        want = list(range(q, n, 3))
        assert [int(m.value().split(b"-")[0]) for m in out[q]] == want
        assert [m.offset() for m in out[q]] == list(range(len(want)))
        for m in out[q]:
            i = int(m.key()[1:])
            assert m.headers() == [("i", b"%d" % i)]
            assert m.timestamp()[1] == 1_600_000_000_000 + i

    # appends continue at the old log end
    d2 = Deliveries()
    p2 = producer(b.bootstrap, acks="all")
    for q in range(3):
        p2.produce(t, value=b"post", partition=q, on_delivery=d2.cb(q))
    flush(p2)
    assert sorted((x[2], x[3]) for x in d2.ok) == [(q, before[q][1]) for q in range(3)]
    b.stop()


@pytest.mark.cairn_timeout(120)
def test_kill9_idle_keeps_acked_data_and_topics(broker_factory, topic_name):
    b = broker_factory()
    t1, t2 = topic_name("k9a"), topic_name("k9b")
    create_topic(b.bootstrap, t1, 2)
    create_topic(b.bootstrap, t2, 1)
    d = Deliveries()
    p = producer(b.bootstrap, acks="all")
    for i in range(100):
        p.produce(t1, value=b"%d" % i, partition=i % 2, on_delivery=d.cb())
    flush(p)
    a = ckhelp.admin(b.bootstrap)
    a.delete_topics([t2], operation_timeout=10)[t2].result(20)
    b.kill9()
    b.start()
    ckhelp.wait_topic(b.bootstrap, t1, 2)
    topics = ckhelp.admin(b.bootstrap).list_topics(timeout=10).topics
    assert t2 not in topics, "deleted topic came back after kill -9"
    out = consume_all(b.bootstrap, t1, (0, 1), expect={0: 50, 1: 50})
    assert [int(m.value()) for m in out[0]] == list(range(0, 100, 2))
    assert [int(m.value()) for m in out[1]] == list(range(1, 100, 2))
    b.stop()
