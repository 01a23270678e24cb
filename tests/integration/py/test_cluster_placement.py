"""Placement of partitions on fewer nodes than the cluster's (issue 12,
cluster plan section 7): CreateTopics with a replication factor below the
node count puts each partition's replicas on that many nodes (rendezvous
hashing, the same answer on every node), and only those nodes hold its
files and its Raft group. Nodes without a replica still answer Metadata
truthfully: they learn each partition's leader from its replicas'
leadership reports. Checked with confluent-kafka (librdkafka) and raw
requests against real processes:
- 3 nodes, replication factor 2 and 1: every node's Metadata lists the same
  replicas per partition, the leader among them, the same on every node;
  a partition's directory exists on its replicas only; idempotent acks=all
  records produced through any node read back once each;
- a produce sent to a node without a replica is refused with
  NOT_LEADER_OR_FOLLOWER; an HTTP read or stream of that partition there
  answers 421 not_leader naming the leader;
- a replication factor above the node count is refused with
  INVALID_REPLICATION_FACTOR, and nothing is created;
- a restarted node keeps the placement (its topic file) and the others'
  Metadata still agrees;
- 5 nodes, replication factor 3: kill -9 of a partition's leader; the new
  leader is one of its replicas, the two nodes without a replica report it
  within seconds, and producing goes on with every acknowledged record
  read back once.
"""
import os
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

import httphelp
import kwire
from cairn_broker import unique_topic
from test_cluster_basic import Cluster, metadata, produce, read_all

NOT_LEADER_OR_FOLLOWER = 6


def create(c, topic, parts, rf):
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    a.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=rf)])[topic].result(30)


def views(c, topic):
    """node id -> {partition: (leader, sorted replicas, replicas in order)}
    as each live node's own Metadata gives it."""
    out = {}
    for i, b in enumerate(c.nodes, 1):
        if not b.alive():
            continue
        t = metadata(b.bootstrap, topic).topics.get(topic)
        if t is None or t.error is not None:
            out[i] = None
            continue
        out[i] = {p.id: (p.leader, tuple(sorted(p.replicas)), tuple(p.replicas))
                  for p in t.partitions.values()}
    return out


def wait_agreed(c, topic, parts, rf, exclude=(), timeout=30):
    """Once every live node shows every partition with rf replicas and the
    same live leader among them: {partition: (leader, replicas in order)}."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        v = views(c, topic)
        last = v
        ok = all(x is not None and len(x) == parts for x in v.values())
        if ok:
            first = next(iter(v.values()))
            for p in range(parts):
                leader, reps, _ = first[p]
                ok = ok and len(reps) == rf and leader in reps and leader not in exclude
                ok = ok and all(x[p][:2] == (leader, reps) for x in v.values())
        if ok:
            return {p: (first[p][0], first[p][2]) for p in range(parts)}
        time.sleep(0.2)
    raise AssertionError("nodes do not agree on %s within %ss: %s" % (topic, timeout, last))


def produce_raw(bootstrap, topic, partition):
    """Produce v3, acks=-1, one record, to that node itself: the error code."""
    rec = kwire.build_record_batch([(b"k", b"v")])
    body = (kwire.string(None) + kwire.i16(-1) + kwire.i32(10000) + kwire.i32(1) +
            kwire.string(topic) + kwire.i32(1) + kwire.i32(partition) +
            kwire.nbytes(bytes(rec)))
    with kwire.Conn(bootstrap) as conn:
        r = kwire.Reader(conn.request(0, 3, body))
    assert r.i32() == 1
    assert r.string() == topic
    assert r.i32() == 1
    assert r.i32() == partition
    return r.i16()


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path, n=3).start()
    yield c
    c.stop()


def test_fewer_replicas_than_nodes(cluster3):
    c = cluster3
    t2, t1 = unique_topic("rf2"), unique_topic("rf1")
    create(c, t2, 6, 2)
    create(c, t1, 3, 1)
    a2 = wait_agreed(c, t2, 6, 2)
    a1 = wait_agreed(c, t1, 3, 1)
    # Placement spreads: with 6 partitions of 2 replicas every node holds some.
    held = {n for _, reps in a2.values() for n in reps}
    assert held == {1, 2, 3}, a2
    for topic, a in ((t2, a2), (t1, a1)):
        for p, (_, reps) in a.items():
            for n in (1, 2, 3):
                d = os.path.join(str(c.node(n).data_dir), "%s-%d" % (topic, p))
                assert os.path.isdir(d) == (n in reps), (topic, p, n, reps)
    for topic, parts in ((t2, 6), (t1, 3)):
        values = [b"%s-%d" % (topic.encode(), i) for i in range(300)]
        acked, errors = produce(c.bootstrap(), topic, values)
        assert not errors, errors[:3]
        assert len(acked) == 300
        seen = read_all(c.bootstrap(), topic, parts, 300)
        assert sorted(seen) == sorted(values), "lost or duplicated records"
    # A node without a replica refuses a produce; the leader takes it.
    p, (leader, reps) = next((p, x) for p, x in a2.items())
    other = next(n for n in (1, 2, 3) if n not in reps)
    assert produce_raw(c.node(other).bootstrap, t2, p) == NOT_LEADER_OR_FOLLOWER
    assert produce_raw(c.node(leader).bootstrap, t2, p) == 0
    # Over HTTP, that node sends readers to the leader (421), the leader serves.
    path = "/topics/%s/partitions/%d/records?offset=0" % (t2, p)
    st, _, body = httphelp.get(c.node(other), path)
    assert st == 421 and body["error_code"] == "not_leader" and body["leader"] == leader, body
    st, _, body = httphelp.get(c.node(leader), path)
    assert st == 200 and len(body["records"]) > 0, body
    st, _, body = httphelp.get(c.node(other), "/topics/%s/stream?partition=%d" % (t2, p))
    assert st == 421 and body["partition"] == p, body


def test_replication_factor_above_node_count(cluster3):
    c = cluster3
    topic = unique_topic("rf4")
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=4)])[topic].result(30)
    assert e.value.args[0].name() == "INVALID_REPLICATION_FACTOR", e.value
    for b in c.nodes:
        assert topic not in metadata(b.bootstrap, None).topics


def test_placement_survives_restart(cluster3):
    c = cluster3
    topic = unique_topic("rfr")
    create(c, topic, 4, 2)
    before = wait_agreed(c, topic, 4, 2)
    acked, errors = produce(c.bootstrap(), topic, [b"a%d" % i for i in range(100)])
    assert not errors and len(acked) == 100
    c.node(2).stop()
    c.node(2).start()
    after = wait_agreed(c, topic, 4, 2)
    assert {p: reps for p, (_, reps) in after.items()} == \
        {p: reps for p, (_, reps) in before.items()}
    seen = read_all(c.bootstrap(), topic, 4, 100)
    assert sorted(seen) == sorted(b"a%d" % i for i in range(100))


@pytest.fixture
def cluster5(tmp_path):
    c = Cluster(tmp_path, n=5).start()
    yield c
    c.stop()


def test_three_replicas_of_five_fail_over(cluster5):
    c = cluster5
    topic = unique_topic("rf3")
    create(c, topic, 2, 3)
    a = wait_agreed(c, topic, 2, 3)
    acked, errors = produce(c.bootstrap(), topic, [b"b%d" % i for i in range(100)])
    assert not errors and len(acked) == 100
    leader, reps = a[0]
    c.node(leader).kill9()
    b = wait_agreed(c, topic, 2, 3, exclude=(leader,), timeout=30)
    assert b[0][0] in reps and b[0][0] != leader
    acked2, errors2 = produce(c.bootstrap(), topic, [b"c%d" % i for i in range(100)])
    assert not errors2 and len(acked2) == 100
    want = [b"b%d" % i for i in range(100)] + [b"c%d" % i for i in range(100)]
    seen = read_all(c.bootstrap(), topic, 2, 200)
    assert sorted(seen) == sorted(want), "lost or duplicated records"
