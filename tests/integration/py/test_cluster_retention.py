"""Retention on replicated topics: Raft snapshots (issue 12; src/repl/rg_snap.c,
src/log/log_raft_snap.c, docs/cluster-plan.md section 3 "Snapshots").

Three real nodes, log.retention.check.interval.ms=300, a topic with small
segments and retention.bytes. Checked with confluent-kafka:
- retention moves the log start forward on every replica, over committed
  records only: ListOffsets earliest rises on the leader, a consumer from
  earliest reads exactly the acknowledged records from there to the end,
  and after kill -9 of the leader the new leader serves the same tail;
- a replica that was down while the others' logs moved past its end gets
  the leader's snapshot (InstallSnapshot) when it comes back: its log
  restarts at the leader's start, it catches up, and once leadership moves
  back to it (it is the preferred leader) it serves every acknowledged
  record from the start on; a restart of the whole cluster keeps it all;
- DeleteRecords (raw wire v0) goes through the group: a follower answers
  NOT_LEADER_OR_FOLLOWER, the leader OFFSET_OUT_OF_RANGE past the high
  watermark and the new low watermark otherwise; every replica's
  log-start file then holds it, the earliest offset and a read from the
  beginning start there, the segments wholly below it are deleted on every
  node, and it holds across kill -9 of the leader, -1 (the high
  watermark) on the new leader, and a restart of every node;
- the replicated __consumer_offsets log compacts: after enough commits its
  leader copies the live offsets and moves the start through the group,
  every replica's start moves and its old segments go, and after kill -9
  of that coordinator the new one serves the last committed offsets.
"""
import os
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cairn_broker import unique_topic
from test_cluster_basic import N, Cluster, metadata, produce, wait_leaders

SETTINGS = {"log.retention.check.interval.ms": 300, "leader.imbalance.check.interval.seconds": 1}
TOPIC_CFG = {"segment.bytes": "16384", "retention.bytes": "49152"}


@pytest.fixture
def cl(tmp_path):
    c = Cluster(tmp_path, settings=SETTINGS).start()
    yield c
    c.stop()


def create(c, topic, config=None):
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    fs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=N,
                                   config=config or TOPIC_CFG)])
    fs[topic].result(30)
    deadline = time.time() + 20
    for b in c.nodes:
        while True:
            t = metadata(b.bootstrap, topic).topics.get(topic)
            if t is not None and t.error is None:
                break
            assert time.time() < deadline, "topic %s not on node %s" % (topic, b.bootstrap)
            time.sleep(0.1)


def watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g")})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def wait_watermarks(c, topic, want, timeout=20):
    """Watermarks from the current leader once they are want (clients may
    ask a former leader while Metadata catches up: retried)."""
    deadline = time.time() + timeout
    wm = None
    while time.time() < deadline:
        try:
            wm = watermarks(c.bootstrap(), topic)
        except Exception as e:  # noqa: BLE001 - NOT_LEADER while leadership moves
            wm = e
        if wm == want:
            return
        time.sleep(0.3)
    raise AssertionError("watermarks %s, want %s" % (wm, want))


def wait_start_above(c, topic, offset, timeout=30):
    deadline = time.time() + timeout
    lo = hi = None
    while time.time() < deadline:
        try:
            lo, hi = watermarks(c.bootstrap(), topic)
        except Exception:  # noqa: BLE001 - a leader change in between
            lo = None
        if lo is not None and lo > offset:
            return lo, hi
        time.sleep(0.3)
    raise AssertionError("log start not above %d within %ss (last %s..%s)" % (offset, timeout, lo, hi))


def read_from_start(bootstrap, topic, end, timeout=30):
    """(first offset, [(offset, value)...]) read from earliest up to end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and (not got or got[-1][0] < end - 1):
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append((m.offset(), m.value()))
    c.close()
    return got


def check_tail(got, acked, start, end):
    """got holds exactly the acknowledged records at offsets start..end-1."""
    want = {off: v for _, off, v in acked if start <= off < end}
    offs = [o for o, _ in got]
    assert offs == sorted(set(offs)), "no duplicate or out-of-order offsets"
    assert offs and offs[0] == start, "the read starts at the log start %d: %s" % (start, offs[:3])
    have = {o: v for o, v in got if o < end}
    assert have == want, "records from the log start on are exactly the acknowledged ones"


def settled_leader(c, topic, timeout=30):
    """The leader once it is the preferred replica (leader balance moves it
    there within a check interval, and it stays while nothing fails)."""
    deadline = time.time() + timeout
    while True:
        p = metadata(c.bootstrap(), topic).topics[topic].partitions[0]
        if p.leader == p.replicas[0]:
            return p.leader
        assert time.time() < deadline, "leader never on the preferred replica"
        time.sleep(0.2)


def values(prefix, n):
    return [b"%s-%05d-" % (prefix, i) + b"x" * 200 for i in range(n)]


def test_retention_moves_the_start_on_every_replica(cl):
    topic = unique_topic("ret")
    create(cl, topic)
    wait_leaders(cl, topic, 1)
    acked, errors = produce(cl.bootstrap(), topic, values(b"a", 1500))
    assert not errors and len(acked) == 1500
    end = max(off for _, off, _ in acked) + 1
    lo, hi = wait_start_above(cl, topic, 0)
    assert hi == end
    got = read_from_start(cl.bootstrap(), topic, end)
    check_tail(got, acked, got[0][0] if got else -1, end)
    assert got[0][0] >= lo
    # Every replica trimmed on its own: kill the leader, the new one serves
    # a tail of its own (its start may differ), all acknowledged.
    leader = wait_leaders(cl, topic, 1)[0]
    cl.node(leader).kill9()
    wait_leaders(cl, topic, 1, exclude=(leader,))
    lo2, hi2 = wait_start_above(cl, topic, 0)
    assert hi2 == end
    got = read_from_start(cl.bootstrap(), topic, end)
    check_tail(got, acked, got[0][0], end)
    # Files: segments below the start are gone on the live nodes.
    for b in cl.nodes:
        if b.alive():
            pdir = os.path.join(str(b.data_dir), topic + "-0")
            logs = sorted(f for f in os.listdir(pdir) if f.endswith(".log"))
            assert int(logs[0][:-4]) > 0, "the first segment was deleted on node %s" % b.bootstrap


def test_lagging_replica_gets_a_snapshot(cl):
    topic = unique_topic("snap")
    create(cl, topic)
    acked, errors = produce(cl.bootstrap(), topic, values(b"a", 100))
    assert not errors
    # The preferred leader leads once balanced: it is the victim, so that
    # leadership comes back to it once it has caught up.
    victim = settled_leader(cl, topic)
    cl.node(victim).kill9()
    victim_end = max(off for _, off, _ in acked) + 1
    wait_leaders(cl, topic, 1, exclude=(victim,))
    more, errors = produce(cl.bootstrap(), topic, values(b"b", 2000))
    assert not errors and len(more) == 2000
    acked += more
    end = max(off for _, off, _ in acked) + 1
    start, _ = wait_start_above(cl, topic, victim_end + 100)
    cl.node(victim).restart()
    # Leadership comes back to the victim once it has caught up, which it
    # can only do through the snapshot (its log ends below every other
    # replica's start).
    deadline = time.time() + 60
    while True:
        p = metadata(cl.bootstrap(), topic).topics[topic].partitions[0]
        if p.leader == victim:
            break
        assert time.time() < deadline, "leadership did not come back to node %d" % victim
        time.sleep(0.3)
    assert "installed a snapshot" in cl.node(victim).log_text(200000)
    got = read_from_start(cl.node(victim).bootstrap, topic, end)
    assert got, "nothing read from the restarted node"
    assert got[0][0] >= start - 1 or got[0][0] > victim_end
    check_tail(got, acked, got[0][0], end)
    # A whole-cluster restart starts every group from its snapshot.
    for b in cl.nodes:
        b.kill9()
    for b in cl.nodes:
        b.restart()
    wait_leaders(cl, topic, 1)
    last, errors = produce(cl.bootstrap(), topic, values(b"c", 50))
    assert not errors
    acked += last
    end = max(off for _, off, _ in acked) + 1
    got = read_from_start(cl.bootstrap(), topic, end)
    check_tail(got, acked, got[0][0], end)


def produce_small_batches(bootstrap, topic, vals):
    """acks=all, at most 20 records a batch (about 4 KiB: several batches
    per 16 KiB segment)."""
    from confluent_kafka import Producer
    acked, errors = [], []

    def cb(err, m):
        (errors if err else acked).append(err if err else (m.partition(), m.offset(), m.value()))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "batch.num.messages": 20, "linger.ms": 1})
    for v in vals:
        p.produce(topic, value=v, on_delivery=cb)
        p.poll(0)
    assert p.flush(60) == 0
    return acked, errors


def log_start_file(b, topic):
    import struct
    path = os.path.join(str(b.data_dir), topic + "-0", "log-start-offset")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return struct.unpack(">q", f.read(8))[0]


def test_delete_records_through_the_group(cl):
    from test_delete_records import delete_records_v0
    NOT_LEADER, OUT_OF_RANGE = 6, 1
    topic = unique_topic("del")
    create(cl, topic, {"segment.bytes": "16384"})
    leader = settled_leader(cl, topic)
    acked, errors = produce_small_batches(cl.bootstrap(), topic, values(b"d", 400))
    assert not errors
    end = max(off for _, off, _ in acked) + 1
    follower = next(n for n in (1, 2, 3) if n != leader)
    res = delete_records_v0(cl.node(follower).bootstrap, {topic: [(0, 150)]})
    assert res[(topic, 0)][1] == NOT_LEADER
    res = delete_records_v0(cl.node(leader).bootstrap, {topic: [(0, end + 1)]})
    assert res[(topic, 0)][1] == OUT_OF_RANGE
    res = delete_records_v0(cl.node(leader).bootstrap, {topic: [(0, 150)]})
    assert res[(topic, 0)] == (150, 0)
    # Every replica applies the committed entry: its log-start file says so.
    deadline = time.time() + 20
    while any(log_start_file(b, topic) != 150 for b in cl.nodes):
        assert time.time() < deadline, [log_start_file(b, topic) for b in cl.nodes]
        time.sleep(0.2)
    wait_watermarks(cl, topic, (150, end))
    check_tail(read_from_start(cl.bootstrap(), topic, end), acked, 150, end)
    # The segments wholly below it (the next one starts at or below 150) go
    # at the next retention pass, on every node; the one holding 150 stays.
    deadline = time.time() + 20
    for b in cl.nodes:
        pdir = os.path.join(str(b.data_dir), topic + "-0")
        while True:
            bases = sorted(int(f[:-4]) for f in os.listdir(pdir) if f.endswith(".log"))
            below = [x for x, nxt in zip(bases, bases[1:]) if nxt <= 150]
            if not below:
                break
            assert time.time() < deadline, "segments %s still on %s" % (below, b.bootstrap)
            time.sleep(0.2)
        assert 0 < bases[0] <= 150, "segment 0 deleted on %s: %s" % (b.bootstrap, bases)
    # At or below the start: nothing changes; -1 is the high watermark.
    res = delete_records_v0(cl.node(leader).bootstrap, {topic: [(0, 100)]})
    assert res[(topic, 0)] == (150, 0)
    # A new leader keeps it, and so does a restart of every node.
    cl.node(leader).kill9()
    wait_leaders(cl, topic, 1, exclude=(leader,))
    wait_watermarks(cl, topic, (150, end))
    new = wait_leaders(cl, topic, 1, exclude=(leader,))[0]
    res = delete_records_v0(cl.node(new).bootstrap, {topic: [(0, -1)]})
    assert res[(topic, 0)] == (end, 0)
    more, errors = produce(cl.bootstrap(), topic, values(b"e", 20))
    assert not errors
    acked += more
    end2 = max(off for _, off, _ in acked) + 1
    cl.node(leader).restart()
    for b in cl.nodes:
        b.kill9()
    for b in cl.nodes:
        b.restart()
    wait_leaders(cl, topic, 1)
    wait_watermarks(cl, topic, (end, end2))
    check_tail(read_from_start(cl.bootstrap(), topic, end2), acked, end, end2)


def test_offsets_log_compacts_through_the_group(tmp_path):
    """The replicated __consumer_offsets log: its leader compacts it (a copy
    of the live offsets, then the log start through the group), every
    replica moves its start and deletes the segments below it, and a new
    coordinator replays from the copy: committed offsets are the last ones."""
    from confluent_kafka import Consumer
    c = Cluster(tmp_path, settings=dict(SETTINGS, **{"offsets.topic.segment.bytes": 65536})).start()
    try:
        topic = unique_topic("off")
        a = AdminClient({"bootstrap.servers": c.bootstrap()})
        a.create_topics([NewTopic(topic, num_partitions=8, replication_factor=N)])[topic].result(30)
        wait_leaders(c, topic, 8)
        group = unique_topic("g")
        cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": group,
                         "enable.auto.commit": False})
        last = None
        deadline = time.time() + 90
        n = 0
        while True:
            n += 1
            last = [TopicPartition(topic, p, n * 10 + p) for p in range(8)]
            cons.commit(offsets=last, asynchronous=False)
            if n % 100 == 0 and any("__consumer_offsets: compacted" in b.log_text(400000)
                                    for b in c.nodes):
                break
            assert time.time() < deadline, "no compaction after %d commits" % n
        cons.close()
        want = {tp.partition: tp.offset for tp in last}
        # Every replica's log start moved, and the segments below it go.
        deadline = time.time() + 30
        for b in c.nodes:
            pdir = os.path.join(str(b.data_dir), "__consumer_offsets-0")
            while True:
                start = log_start_file(b, "__consumer_offsets")
                bases = sorted(int(f[:-4]) for f in os.listdir(pdir) if f.endswith(".log"))
                if start and bases[0] > 0:
                    break
                assert time.time() < deadline, "node %s: start %s, segments %s" % (
                    b.bootstrap, start, bases)
                time.sleep(0.3)

        def committed():
            k = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": group,
                          "enable.auto.commit": False})
            try:
                res = k.committed([TopicPartition(topic, p) for p in range(8)], timeout=10)
                return {tp.partition: tp.offset for tp in res}
            finally:
                k.close()
        assert committed() == want
        # A new coordinator replays from its log start: the same offsets.
        coord = next(b for b in c.nodes if "__consumer_offsets: compacted" in b.log_text(400000))
        coord.kill9()
        deadline = time.time() + 30
        while True:
            try:
                got = committed()
            except Exception as e:  # noqa: BLE001 - coordinator moving
                got = e
            if got == want:
                break
            assert time.time() < deadline, got
            time.sleep(0.5)
    finally:
        c.stop()
