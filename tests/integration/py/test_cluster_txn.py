"""Transactions in a replicated cluster (issue 12, cluster plan step 7).

The transaction coordinator is the leader of the replicated
__transaction_state-0 (src/txn/txn.c, txn_open_replicated). A
transaction's markers must be written by each partition's leader; the
coordinator hands markers for partitions another node leads to that leader
over the cluster connection (src/cluster/cluster_call.c), and completes the
transaction once every marker is committed there. Checked with
confluent-kafka against three real processes (leaders balanced, so each
node leads two of six partitions):
- a committed and an aborted transaction over partitions led by different
  nodes: a read_committed consumer sees exactly the committed records (the
  last stable offset of every partition moves past both transactions, so
  every marker landed), a read_uncommitted one sees both;
- kill -9 of the coordinator in the middle of a transaction: the same
  producer commits it at the next coordinator;
- a new producer with the same transactional.id fences the old one across
  that failover;
- sendOffsetsToTransaction commits the group's offsets with the output;
- a marker whose partition leader is paused (SIGSTOP) goes to the leader
  elected in its place.
"""
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cairn_broker import unique_topic
from test_cluster_balance import FAST, wait_balanced
from test_cluster_basic import Cluster, create_everywhere

PARTS = 6


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, settings=FAST).start()  # leaders on their preferred nodes
    yield c
    c.stop()


def read(bootstrap, topic, isolation, want, timeout=30, parts=PARTS):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(seen) < want:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen.append(m.value())
    # a little longer: nothing more may arrive
    end = time.time() + 2
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            seen.append(m.value())
    c.close()
    return seen


def test_transaction_over_partitions_led_by_other_nodes(cluster):
    topic = unique_topic("ctx")
    create_everywhere(cluster, topic, PARTS)
    leaders = wait_balanced(cluster, topic, PARTS)
    assert len(set(leaders.values())) == 3, "each node leads some: %s" % leaders

    p = Producer({"bootstrap.servers": cluster.bootstrap(), "transactional.id": unique_topic("t"),
                  "acks": "all", "linger.ms": 2, "transaction.timeout.ms": 30000})
    p.init_transactions(30)
    p.begin_transaction()
    committed = [b"c%03d" % i for i in range(60)]
    for i, v in enumerate(committed):
        p.produce(topic, value=v, partition=i % PARTS)
    p.commit_transaction(60)

    p.begin_transaction()
    aborted = [b"a%03d" % i for i in range(30)]
    for i, v in enumerate(aborted):
        p.produce(topic, value=v, partition=i % PARTS)
    p.flush(30)
    p.abort_transaction(60)

    p.begin_transaction()
    last = [b"z%03d" % i for i in range(PARTS)]
    for i, v in enumerate(last):
        p.produce(topic, value=v, partition=i)
    p.commit_transaction(60)

    got = read(cluster.bootstrap(), topic, "read_committed", len(committed) + len(last))
    assert sorted(got) == sorted(committed + last)
    raw = read(cluster.bootstrap(), topic, "read_uncommitted",
               len(committed) + len(aborted) + len(last))
    assert sorted(raw) == sorted(committed + aborted + last)


# The transaction coordinator on the replicated __transaction_state ----------------------

def txn_coordinator(cluster, tid, timeout=30):
    """The node every live node names as tid's transaction coordinator
    (FindCoordinator v1, key type 1)."""
    import kwire
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        answers = set()
        for b in cluster.nodes:
            if not b.alive():
                continue
            try:
                with kwire.Conn(b.bootstrap) as c:
                    r = kwire.Reader(c.request(10, 1, kwire.string(tid) + kwire.i8(1)))
            except OSError:
                continue
            r.i32()  # throttle
            err = r.i16()
            r.string()
            answers.add((err, r.i32()))
        last = answers
        if len(answers) == 1:
            err, node = answers.pop()
            if err == 0 and node > 0 and cluster.node(node).alive():
                return node
        time.sleep(0.3)
    raise AssertionError("no single transaction coordinator within %ss: %s" % (timeout, last))


def producer(cluster, tid):
    return Producer({"bootstrap.servers": cluster.bootstrap(), "transactional.id": tid,
                     "acks": "all", "linger.ms": 2, "transaction.timeout.ms": 60000,
                     "message.timeout.ms": 60000})


def test_open_transaction_survives_coordinator_kill(cluster):
    """The coordinator's state is replicated: kill -9 of the coordinator in
    the middle of a transaction, and the same producer commits it at the
    next coordinator; a read_committed consumer sees it exactly once."""
    topic = unique_topic("ctk")
    create_everywhere(cluster, topic, PARTS)
    tid = unique_topic("t")
    p = producer(cluster, tid)
    p.init_transactions(30)
    coord = txn_coordinator(cluster, tid)
    p.begin_transaction()
    values = [b"k%03d" % i for i in range(60)]
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % PARTS)
    assert p.flush(30) == 0
    cluster.node(coord).kill9()
    p.commit_transaction(90)
    assert txn_coordinator(cluster, tid) != coord
    p.begin_transaction()
    for i in range(PARTS):
        p.produce(topic, value=b"x%d" % i, partition=i)
    p.flush(30)
    p.abort_transaction(60)
    got = read(cluster.bootstrap(), topic, "read_committed", len(values))
    assert sorted(got) == sorted(values), "exactly the committed transaction, once"
    cluster.node(coord).start()
    assert txn_coordinator(cluster, tid) > 0


def test_zombie_fenced_across_coordinator_failover(cluster):
    """A new producer with the same transactional.id, served by the next
    coordinator, fences the old one: its open transaction is aborted and it
    cannot commit."""
    from confluent_kafka import KafkaException
    topic = unique_topic("czf")
    create_everywhere(cluster, topic, PARTS)
    tid = unique_topic("t")
    old = producer(cluster, tid)
    old.init_transactions(30)
    coord = txn_coordinator(cluster, tid)
    old.begin_transaction()
    for i in range(30):
        old.produce(topic, value=b"z%03d" % i, partition=i % PARTS)
    assert old.flush(30) == 0
    cluster.node(coord).kill9()
    new = producer(cluster, tid)
    new.init_transactions(90)  # aborts the old producer's transaction
    new.begin_transaction()
    fresh = [b"n%03d" % i for i in range(30)]
    for i, v in enumerate(fresh):
        new.produce(topic, value=v, partition=i % PARTS)
    new.commit_transaction(60)
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(30)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort(), e.value
    got = read(cluster.bootstrap(), topic, "read_committed", len(fresh))
    assert sorted(got) == sorted(fresh), "none of the fenced producer's records"


def test_send_offsets_to_transaction_in_a_cluster(cluster):
    """Consume-transform-produce: the input offsets commit with the output
    transaction (the coordinator writes them to the group's offsets), so
    the group's next consumer starts after them."""
    src, dst = unique_topic("cin"), unique_topic("cout")
    create_everywhere(cluster, src, 2)
    create_everywhere(cluster, dst, 2)
    group = unique_topic("g")
    inputs = [b"i%03d" % i for i in range(40)]
    pr = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all"})
    for i, v in enumerate(inputs):
        pr.produce(src, value=v, partition=i % 2)
    assert pr.flush(30) == 0
    c = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    c.subscribe([src])
    p = producer(cluster, unique_topic("t"))
    p.init_transactions(30)
    seen = []
    deadline = time.time() + 60
    while len(seen) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append(m)
    assert len(seen) >= 20
    p.begin_transaction()
    for m in seen:
        p.produce(dst, value=m.value().upper(), partition=m.partition())
    ends = {}
    for m in seen:
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
    p.send_offsets_to_transaction([TopicPartition(src, q, o) for q, o in ends.items()],
                                  c.consumer_group_metadata(), 30)
    p.commit_transaction(60)
    c.close()
    c2 = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": group})
    committed = c2.committed([TopicPartition(src, q) for q in ends], 30)
    c2.close()
    assert {t.partition: t.offset for t in committed} == ends
    out = read(cluster.bootstrap(), dst, "read_committed", len(seen), parts=2)
    assert sorted(out) == sorted(m.value().upper() for m in seen)


def test_marker_goes_to_the_next_leader_of_a_paused_one(cluster):
    """A marker sent to a partition's leader that then stops answering
    (SIGSTOP: its connection stays open) is sent again to the leader elected
    in its place, so the transaction completes without waiting for the
    request's 15 s deadline."""
    import os
    import signal
    topic = unique_topic("cmp")
    create_everywhere(cluster, topic, PARTS)
    leaders = wait_balanced(cluster, topic, PARTS)
    tid = unique_topic("t")
    p = producer(cluster, tid)
    p.init_transactions(30)
    coord = txn_coordinator(cluster, tid)
    paused = next(n for n in (1, 2, 3) if n != coord)
    assert paused in leaders.values()
    p.begin_transaction()
    values = [b"m%03d" % i for i in range(60)]
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % PARTS)
    assert p.flush(30) == 0
    proc = cluster.node(paused).proc
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        p.commit_transaction(60)
        others = ",".join(b.bootstrap for i, b in enumerate(cluster.nodes, 1) if i != paused)
        got = read(others, topic, "read_committed", len(values), timeout=12)
        took = time.time() - t0
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert sorted(got) == sorted(values), "committed records not all visible after %.1fs" % took
