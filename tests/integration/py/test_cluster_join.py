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
  cluster goes on with four members;
- every node reports one cluster id, the joiner included.
And a node leaves (ARCHITECTURE.md "Leaving"), four nodes, through the
HTTP admin API of another node, while an idempotent producer writes one
of its partitions: DELETE /cluster/nodes/2 moves each partition's replica
off node 2 to another member, then removes it: every node lists three
members (also `cairn cluster nodes`), no partition lists node 2, every
acknowledged record is read back once; with node 2 and then another node stopped, the
remaining two still commit to the logs every node keeps (a topic is
created and written), which needs node 2 out of their groups by the time
it is listed as removed; a restarted member still lists three. Refusals: an unknown node
(404), a node holding the only replica of a partition, a removal that
would leave fewer members than a topic's replicas (400). Then node 2
comes back with an empty data directory and joins again under its old id
(it replays records naming it before it is a member again), hands out
producer ids from a fresh slice (not one its first life handed out), and
takes a partition moved back to it.
"""
import os
import shutil
import time

from confluent_kafka.admin import AdminClient, NewTopic

import httphelp
import kwire
from cairn_broker import Broker, BrokerError, free_port, unique_topic
from test_cluster_basic import Cluster, metadata, produce, read_all
from test_cli import cli, ok, table
from test_cluster_groups import coordinator
from test_cluster_move import Writer, alter, wait_moved
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
        ids = {metadata(b.bootstrap, None).cluster_id for b in c.nodes}
        assert len(ids) == 1, ids
    finally:
        c.stop()


def init_pid(b, timeout=30):
    """InitProducerId v0 (idempotent, no transactional id) at node b:
    (error, producer id), retried while it answers a retriable error."""
    deadline = time.time() + timeout
    while True:
        with kwire.Conn(b.bootstrap) as conn:
            r = kwire.Reader(conn.request(22, 0, kwire.i16(-1) + kwire.i32(60000)))
        r.i32()
        err, pid = r.i16(), r.i64()
        if err == 0 or time.time() > deadline:
            return err, pid
        time.sleep(0.2)


def http_members(b):
    st, _, body = httphelp.get(b, "/cluster/nodes")
    assert st == 200, body
    return body


def wait_http_members(c, want, timeout=90):
    """Every live member lists want (a removed node is not asked: it is not
    told of its removal)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = {i: sorted(n["id"] for n in http_members(b)["nodes"])
                for i, b in enumerate(c.nodes, 1) if b.alive() and i in want}
        if all(v == want for v in last.values()):
            return
        time.sleep(0.3)
    raise AssertionError("members not %s within %ss: %s" % (want, timeout, last))


def test_a_node_leaves(tmp_path):
    c = Cluster(tmp_path, n=4).start()
    try:
        topic = unique_topic("leave")
        create(c, topic, 6, 3)
        a = wait_agreed(c, topic, 6, 3)
        assert any(2 in v[1] for v in a.values()), a
        vals = [b"v%04d" % i for i in range(300)]
        acked, errors = produce(c.bootstrap(), topic, vals)
        assert not errors and len(acked) == len(vals)
        err, old_pid = init_pid(c.node(2))
        assert err == 0, err

        httphelp.assert_error(httphelp.delete(c.node(1), "/cluster/nodes/9"), 404,
                              "unknown_node")
        rows = table(ok(cli(c.node(1), "cluster", "nodes")))
        assert rows[0] == ["ID", "KAFKA", "CONNECTED", "STATE", "CONTROLLER"], rows
        assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"], rows
        assert all(r[2:4] == ["yes", "member"] for r in rows[1:]), rows
        assert sum(1 for r in rows[1:] if r[-1] == "*") == 1, rows
        bad = cli(c.node(1), "cluster", "remove-node", "9")
        assert bad.returncode == 1 and b"not a member" in bad.stderr, bad
        # A partition whose only replica is on the node cannot move off it.
        one = unique_topic("one")
        admin = AdminClient({"bootstrap.servers": c.bootstrap()})
        admin.create_topics([NewTopic(one, 1, replica_assignment=[[2]])])[one].result(30)
        body = httphelp.assert_error(httphelp.delete(c.node(1), "/cluster/nodes/2"), 400,
                                     "invalid_request")
        assert "replication factor 1" in body["message"], body
        admin.delete_topics([one])[one].result(30)
        # Under load: an idempotent producer writes a partition node 2
        # holds a replica of, all through its removal.
        busy = next(p for p, v in sorted(a.items()) if 2 in v[1])
        w = Writer(c.bootstrap(), topic, busy)
        w.start()
        st, _, body = httphelp.delete(c.node(3), "/cluster/nodes/2")
        assert st == 202 and body == {"node": 2, "state": "leaving"}, (st, body)
        wait_http_members(c, [1, 3, 4])
        time.sleep(1)
        w.stop()
        assert not w.errors and w.acked, (w.errors[:3], len(w.acked))
        rows = table(ok(cli(c.node(4), "cluster", "nodes")))
        assert [r[0] for r in rows[1:]] == ["1", "3", "4"], rows
        a = wait_agreed(c, topic, 6, 3)
        assert all(2 not in v[1] for v in a.values()), a
        got = read_all(c.node(4).bootstrap, topic, 6, len(vals) + len(w.acked))
        assert sorted(v for v in got if v.startswith(b"v")) == sorted(vals)
        written = [v for v in got if v.startswith(b"w")]
        assert sorted(written) == sorted(w.acked), (len(written), len(w.acked))

        # Node 2 out of the logs every node keeps: two of the three left
        # commit without it.
        c.node(2).stop()
        c.node(3).stop()
        t2 = unique_topic("after")
        # A new admin client: the first one may still take node 2 or 3 for
        # the controller (librdkafka waits on a stopped controller).
        admin2 = AdminClient({"bootstrap.servers": c.bootstrap()})
        admin2.create_topics([NewTopic(t2, 1, replica_assignment=[[1, 4]])])[t2].result(30)
        more = [b"w%04d" % i for i in range(50)]
        acked, errors = produce(c.bootstrap(), t2, more)
        assert not errors and len(acked) == len(more)
        c.node(3).start()
        c.node(1).stop()
        c.node(1).start()
        wait_http_members(c, [1, 3, 4])
        # Three members hold RF 3 topics: none may leave now.
        httphelp.assert_error(httphelp.delete(c.node(1), "/cluster/nodes/4"), 400,
                              "invalid_request")

        # Node 2 comes back empty under the same id and joins again: it
        # replays records that name it (the topic's first assignment) while
        # not a member yet, and takes a partition moved back to it.
        shutil.rmtree(str(c.node(2).data_dir))
        os.makedirs(str(c.node(2).data_dir))
        c.node(2).settings["cluster.join"] = "true"
        c.node(2).start()
        wait_http_members(c, [1, 2, 3, 4])
        # Its producer ids come from a fresh slice: none its first life
        # handed out (a reused id meets that producer's state on the
        # partitions: its batches were answered as duplicates).
        err, new_pid = init_pid(c.node(2))
        assert err == 0 and new_pid >> 40 == 2 and new_pid >= (2 << 40) + (1 << 30) > old_pid, \
            (err, new_pid, old_pid)
        a = wait_agreed(c, topic, 6, 3)
        reps = [x for x in a[0][1] if x != 2][:2]
        err, res = alter(c.node(1), {topic: {0: [2] + reps}})
        assert err == 0 and res[(topic, 0)][0] == 0, (err, res)
        wait_moved(c, topic, 6, 3, 0, [2] + reps)
        got = read_all(c.node(2).bootstrap, topic, 6, len(vals) + len(w.acked))
        assert sorted(v for v in got if v.startswith(b"v")) == sorted(vals)
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
