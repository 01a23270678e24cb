"""A node joins a running cluster (issue 12, cluster plan step 8;
src/cluster/cluster_members.c).

Three real nodes; a fourth starts with cluster.join=true and only node 1
as its seed. Checked with confluent-kafka and raw requests:
- the controller registers it: every node's Metadata lists four brokers,
  the fourth with its Kafka address, and the joiner lists the cluster's
  topics with their replicas (it applied the metadata log from entry 1,
  never having bootstrapped it);
- the logs every node keeps take it in: its copy of __cluster_meta-0
  holds what the others hold, and FindCoordinator from it names the
  coordinator the others name;
- a topic created with replication factor 4 is placed on all four nodes
  and is written and read through the new one;
- a partition moved onto the new node (AlterPartitionReassignments) is
  served by it as leader with every acknowledged record;
- the new node and a first member restart from their files (the joiner
  without --join: its cluster.members says it is a member) and the
  cluster goes on with four members.
"""
import os
import time

from cairn_broker import Broker, BrokerError, free_port, unique_topic
from test_cluster_basic import Cluster, metadata, produce, read_all
from test_cluster_groups import coordinator
from test_cluster_move import alter, wait_moved
from test_cluster_placement import create, wait_agreed


def brokers(b):
    return {k: (v.host, v.port) for k, v in metadata(b.bootstrap, None).brokers.items()}


def wait_members(c, want, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = {i: sorted(brokers(b)) for i, b in enumerate(c.nodes, 1) if b.alive()}
            if all(v == want for v in last.values()):
                return
        except Exception as e:  # noqa: BLE001 (a node still starting)
            last = str(e)
        time.sleep(0.3)
    raise AssertionError("members not %s everywhere within %ss: %s" % (want, timeout, last))


def add_joiner(tmp_path, c, seed=1):
    cport = free_port()
    sport = int(c.node(seed).settings["cluster.listeners"].split(":")[1])
    seeds = "%d@127.0.0.1:%d,4@127.0.0.1:%d" % (seed, sport, cport)
    st = {"node.id": 4, "cluster.listeners": "127.0.0.1:%d" % cport, "cluster.peers": seeds,
          "cluster.join": "true"}
    b = Broker(tmp_path / "d4", tmp_path / "n4.log", settings=st)
    c.nodes.append(b)
    return b


def meta_end(b):
    """Bytes of node b's copy of the metadata log."""
    d = os.path.join(str(b.data_dir), "__cluster_meta-0")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


def wait_meta_equal(c, timeout=30):
    deadline = time.time() + timeout
    sizes = None
    while time.time() < deadline:
        sizes = [meta_end(b) for b in c.nodes]
        if len(set(sizes)) == 1 and sizes[0] > 0:
            return
        time.sleep(0.3)
    raise AssertionError("metadata logs differ: %s" % sizes)


def test_a_node_joins(tmp_path):
    c = Cluster(tmp_path).start()
    try:
        topic = unique_topic("join")
        create(c, topic, 3, 3)
        wait_agreed(c, topic, 3, 3)
        before = [b"a%04d" % i for i in range(200)]
        acked, errors = produce(c.bootstrap(), topic, before)
        assert not errors and len(acked) == len(before)

        j = add_joiner(tmp_path, c)
        j.start()
        wait_members(c, [1, 2, 3, 4])
        for b in c.nodes:
            assert brokers(b)[4] == ("127.0.0.1", j.port)
        # The joiner applied the metadata log: it knows the topic and its
        # replicas as the others do.
        wait_agreed(c, topic, 3, 3)
        wait_meta_equal(c)
        with open(os.path.join(str(j.data_dir), "cluster.members")) as f:
            text = f.read()
        assert "joined" in text.split() and text.count("member ") == 4, text
        # Its coordinator lookups agree with the others'.
        assert coordinator(c, unique_topic("g")) in (1, 2, 3, 4)

        # A topic on every node, new one included.
        t4 = unique_topic("rf4")
        create(c, t4, 2, 4)
        a = wait_agreed(c, t4, 2, 4)
        assert all(sorted(v[1]) == [1, 2, 3, 4] for v in a.values()), a
        vals = [b"b%04d" % i for i in range(100)]
        acked, errors = produce(j.bootstrap, t4, vals)
        assert not errors and len(acked) == len(vals)
        assert sorted(set(read_all(j.bootstrap, t4, 2, len(vals)))) == sorted(vals)

        # A partition moved onto the new node, which then leads it.
        err, res = alter(c.node(2), {topic: {0: [4, 2, 3]}})
        assert err == 0 and res[(topic, 0)][0] == 0, (err, res)
        wait_moved(c, topic, 3, 3, 0, [4, 2, 3])
        deadline = time.time() + 30
        while time.time() < deadline:
            p0 = metadata(c.bootstrap(), topic).topics[topic].partitions[0]
            if p0.leader == 4:
                break
            time.sleep(0.3)
        more = [b"c%04d" % i for i in range(100)]
        acked, errors = produce(c.bootstrap(), topic, more)
        assert not errors and len(acked) == len(more)
        got = read_all(j.bootstrap, topic, 3, len(before) + len(more))
        assert sorted(got) == sorted(before + more)

        # Restarts: the new node without --join, then a first member.
        j.stop()
        j.settings.pop("cluster.join")
        j.start()
        c.node(1).stop()
        c.node(1).start()
        wait_members(c, [1, 2, 3, 4])
        wait_agreed(c, t4, 2, 4)
        final = [b"d%04d" % i for i in range(50)]
        acked, errors = produce(c.bootstrap(), t4, final)
        assert not errors and len(acked) == len(final)
        got = read_all(c.node(3).bootstrap, t4, 2, len(vals) + len(final))
        assert sorted(set(got)) == sorted(vals + final)
    finally:
        c.stop()


def test_join_needs_a_seed(tmp_path):
    """cluster.join with cluster.peers naming only this node is refused at
    start with a clear line."""
    cport = free_port()
    st = {"node.id": 7, "cluster.listeners": "127.0.0.1:%d" % cport,
          "cluster.peers": "7@127.0.0.1:%d" % cport, "cluster.join": "true"}
    b = Broker(tmp_path / "d", tmp_path / "n.log", settings=st)
    try:
        b.start(timeout=10)
        b.stop()
        raise AssertionError("a joining node without a seed started")
    except BrokerError:
        pass
    assert "at least one node of the cluster" in b.log_text()
