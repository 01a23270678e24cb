"""Moving a partition's replicas to other nodes (issue 12, cluster plan
step 8; KIP-455 AlterPartitionReassignments and ListPartitionReassignments;
src/broker/broker_move.c, src/cluster/cluster_move.c).

Three real nodes, replication factor 2, so each partition has a node
without a replica. Checked with raw requests and confluent-kafka:
- a move that takes the partition off its leader, sent to a node that is
  not the controller while an idempotent acks=all producer writes: the new
  node joins (standby, caught up, voter), the leader hands over and leaves,
  every node's Metadata then lists the target in its order, the node left
  out deleted its directory, the new one holds the partition, and every
  acknowledged record is read back once, from the new node as leader;
- a move to a node that is down stays listed (adding and removing replicas
  shown; Metadata lists the target, then the replica leaving) and can be
  cancelled: the partition keeps its replicas, and the
  node, once back, holds nothing of it;
- the HTTP admin API (PUT/DELETE /topics/{t}/partitions/{p}/replicas,
  "moving_to" in GET /topics/{t}) and `cairn topic move` / `describe`;
- bad requests: a replica count other than the replication factor, an
  unknown node, a node twice, an unknown partition, a cancel with no move
  running, each with its Kafka error code and nothing recorded.
"""
import os
import threading
import time

import pytest
from confluent_kafka import Producer

import httphelp
import kwire
from cairn_broker import unique_topic
from test_cluster_basic import Cluster, metadata, read_all
from test_cli import cli, ok, table
from test_cluster_placement import create, wait_agreed

FAST = {"leader.imbalance.check.interval.seconds": 1}
INVALID_REPLICA_ASSIGNMENT = 39
UNKNOWN_TOPIC_OR_PARTITION = 3
NO_REASSIGNMENT_IN_PROGRESS = 85


def alter(node, moves, timeout_ms=30000):
    return kwire.alter_partition_reassignments(node.bootstrap, moves, timeout_ms)


def listing(node, topics=None):
    return kwire.list_partition_reassignments(node.bootstrap, topics)


def controller(c):
    return metadata(c.bootstrap(), None).controller_id


def wait_moved(c, topic, parts, rf, part, want, timeout=60):
    """Once every node lists partition part's replicas as want (in order)
    and no node lists a move of it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            a = wait_agreed(c, topic, parts, rf, timeout=5)
            last = a
            running = [b for b in c.nodes if b.alive() and (topic, part) in listing(b)]
            if tuple(a[part][1]) == tuple(want) and not running:
                return a
        except AssertionError as e:
            last = str(e)
        time.sleep(0.3)
    raise AssertionError("partition %s-%d not on %s within %ss: %s" % (topic, part, want,
                                                                    timeout, last))


class Writer(threading.Thread):
    """An idempotent acks=all producer writing one partition until stopped."""

    def __init__(self, bootstrap, topic, part):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.part = bootstrap, topic, part
        self.acked, self.errors, self.sent = [], [], 0
        self.stop_at = None

    def run(self):
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                      "enable.idempotence": True, "message.timeout.ms": 60000,
                      "linger.ms": 2})

        def cb(err, m):
            (self.errors if err else self.acked).append(err if err else m.value())

        while self.stop_at is None:
            v = b"w%06d" % self.sent
            p.produce(self.topic, partition=self.part, value=v, on_delivery=cb)
            self.sent += 1
            p.poll(0)
            time.sleep(0.005)
        assert p.flush(90) == 0

    def stop(self):
        self.stop_at = time.time()
        self.join(120)


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path, n=3, settings=FAST).start()
    yield c
    c.stop()


def pdir(c, n, topic, p):
    return os.path.join(str(c.node(n).data_dir), "%s-%d" % (topic, p))


def test_move_off_the_leader_under_load(cluster3):
    c = cluster3
    topic = unique_topic("mv")
    create(c, topic, 1, 2)
    a = wait_agreed(c, topic, 1, 2)
    reps = a[0][1]
    new = next(n for n in (1, 2, 3) if n not in reps)
    w = Writer(c.bootstrap(), topic, 0)
    w.start()
    # Leader balance puts the lead on the preferred replica: move off it.
    deadline = time.time() + 30
    while wait_agreed(c, topic, 1, 2)[0][0] != reps[0]:
        assert time.time() < deadline, "no preferred leader"
        time.sleep(0.3)
    time.sleep(1)
    leader = wait_agreed(c, topic, 1, 2)[0][0]
    other = next(n for n in reps if n != leader)
    # The new node first: it becomes the preferred leader.
    via = next(n for n in (1, 2, 3) if n != controller(c))
    err, res = alter(c.node(via), {topic: {0: [new, other]}})
    assert err == 0 and res == {(topic, 0): (0, None)}, res
    wait_moved(c, topic, 1, 2, 0, [new, other])
    time.sleep(1)
    w.stop()
    assert not w.errors, w.errors[:3]
    assert len(w.acked) > 100
    assert not os.path.exists(pdir(c, leader, topic, 0)), "the node left out kept its replica"
    assert os.path.isdir(pdir(c, new, topic, 0))
    # Leader balance hands the partition to its preferred leader, the new node.
    deadline = time.time() + 30
    while time.time() < deadline:
        p = metadata(c.bootstrap(), topic).topics[topic].partitions[0]
        if p.leader == new:
            break
        time.sleep(0.3)
    assert p.leader == new, "the new node did not take the lead: %s" % p.leader
    seen = read_all(c.bootstrap(), topic, 1, len(w.acked), timeout=60)
    assert len(seen) == len(set(seen)), "duplicates"
    missing = set(w.acked) - set(seen)
    assert not missing, "acknowledged and lost: %d, e.g. %s" % (len(missing), sorted(missing)[:3])
    # A restart of every node keeps the new assignment.
    for n in (1, 2, 3):
        c.node(n).stop()
    for n in (1, 2, 3):
        c.node(n).start()
    wait_moved(c, topic, 1, 2, 0, [new, other])
    assert not os.path.exists(pdir(c, leader, topic, 0))
    seen2 = read_all(c.bootstrap(), topic, 1, len(set(seen)), timeout=60)
    assert set(w.acked) <= set(seen2)


def test_move_to_a_down_node_lists_and_cancels(cluster3):
    c = cluster3
    topic = unique_topic("mvc")
    create(c, topic, 1, 2)
    a = wait_agreed(c, topic, 1, 2)
    leader, reps = a[0]
    down = next(n for n in (1, 2, 3) if n not in reps)
    c.node(down).stop()
    alive = next(n for n in reps)
    target = [down, reps[0]]
    err, res = alter(c.node(alive), {topic: {0: target}})
    assert err == 0 and res[(topic, 0)] == (0, None), res
    time.sleep(2)
    for n in reps:
        got = listing(c.node(n))
        assert got.get((topic, 0)) is not None, got
        replicas, adding, removing = got[(topic, 0)]
        assert adding == [down], got
        assert removing == [reps[1]], got
        assert replicas == target + [reps[1]], got
        assert listing(c.node(n), {topic: [0]}) == {(topic, 0): got[(topic, 0)]}
        assert listing(c.node(n), {topic: [3]}) == {}
        md = metadata(c.node(n).bootstrap, topic).topics[topic].partitions[0]
        assert list(md.replicas) == target + [reps[1]], md.replicas
    # Producing still works while the move waits.
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": True})
    for i in range(50):
        p.produce(topic, partition=0, value=b"c%d" % i)
    assert p.flush(30) == 0
    err, res = alter(c.node(alive), {topic: {0: None}})
    assert err == 0 and res[(topic, 0)] == (0, None), res
    wait_moved(c, topic, 1, 2, 0, list(reps))
    c.node(down).start()
    wait_moved(c, topic, 1, 2, 0, list(reps))
    time.sleep(2)
    assert not os.path.exists(pdir(c, down, topic, 0)), "the cancelled target kept a replica"
    seen = read_all(c.bootstrap(), topic, 1, 50)
    assert sorted(seen) == sorted(b"c%d" % i for i in range(50))


def test_target_restarted_mid_move(cluster3):
    """The target node of a move restarts after it recorded the target
    (its topic file lists it, its empty replica exists) and before the
    group took it in: it opens its replica again and the move ends (the
    nemesis's leave-rejoin-kill found a restarted target that did not: the
    move waited forever). The group cannot take it in while one of its two
    replicas is down (no quorum for the change), which holds the move there."""
    c = cluster3
    topic = unique_topic("mvr")
    create(c, topic, 1, 2)
    a = wait_agreed(c, topic, 1, 2)
    leader, reps = a[0]
    target_node = next(n for n in (1, 2, 3) if n not in reps)
    vals = [b"r%03d" % i for i in range(50)]
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": True})
    for v in vals:
        p.produce(topic, partition=0, value=v)
    assert p.flush(30) == 0
    held = reps[1]
    c.node(held).stop()
    err, res = alter(c.node(target_node), {topic: {0: [target_node, reps[0]]}})
    assert err == 0 and res[(topic, 0)] == (0, None), res
    deadline = time.time() + 20
    while not os.path.exists(pdir(c, target_node, topic, 0)):
        assert time.time() < deadline, "the target opened no replica"
        time.sleep(0.1)
    time.sleep(0.5)
    c.node(target_node).kill9()
    c.node(target_node).start()
    c.node(held).start()
    wait_moved(c, topic, 1, 2, 0, [target_node, reps[0]])
    seen = read_all(c.node(target_node).bootstrap, topic, 1, len(vals))
    assert sorted(seen) == sorted(vals)


def test_bad_reassignments(cluster3):
    c = cluster3
    topic = unique_topic("mvb")
    create(c, topic, 1, 2)
    a = wait_agreed(c, topic, 1, 2)
    reps = list(a[0][1])
    node = c.node(1)
    for ids in ([1], [1, 2, 3], [1, 9], [2, 2]):
        err, res = alter(node, {topic: {0: ids}})
        e, m = res[(topic, 0)]
        assert err == 0 and e == INVALID_REPLICA_ASSIGNMENT and m, (ids, res)
    err, res = alter(node, {topic: {5: [1, 2]}, "no-such-topic": {0: [1, 2]}})
    assert res[(topic, 5)][0] == UNKNOWN_TOPIC_OR_PARTITION, res
    assert res[("no-such-topic", 0)][0] == UNKNOWN_TOPIC_OR_PARTITION, res
    err, res = alter(node, {topic: {0: None}})
    assert res[(topic, 0)][0] == NO_REASSIGNMENT_IN_PROGRESS, res
    assert listing(node) == {}
    assert tuple(wait_agreed(c, topic, 1, 2)[0][1]) == tuple(reps)


def test_moves_over_http(cluster3):
    """PUT /topics/{t}/partitions/{p}/replicas moves, DELETE cancels; GET
    /topics/{t} shows replicas, leader and the target while a move runs."""
    c = cluster3
    topic = unique_topic("mvh")
    create(c, topic, 1, 2)
    reps = list(wait_agreed(c, topic, 1, 2)[0][1])
    other = next(n for n in (1, 2, 3) if n not in reps)
    node = c.node(reps[0])
    path = "/topics/%s/partitions/0/replicas" % topic
    st, _, body = httphelp.get(node, "/topics/%s" % topic)
    assert st == 200 and body["partitions"][0]["replicas"] == reps, body
    assert "moving_to" not in body["partitions"][0]
    httphelp.assert_error(httphelp.request(node, "PUT", path, body={"replicas": [1]}), 400,
                          "invalid_replica_assignment")
    httphelp.assert_error(httphelp.request(node, "PUT", path, body={"replicas": "x"}), 400,
                          "invalid_request")
    httphelp.assert_error(httphelp.request(node, "PUT", "/topics/%s/partitions/7/replicas" % topic,
                                           body={"replicas": [1, 2]}), 404, "unknown_partition")
    httphelp.assert_error(httphelp.delete(node, path), 409, "no_move_in_progress")
    # A move to a node that is down waits: listed, then cancelled.
    c.node(other).stop()
    st, _, body = httphelp.request(node, "PUT", path, body={"replicas": [other, reps[0]]})
    assert st == 202 and body["moving_to"] == [other, reps[0]], body
    # Answered once the controller applied it; this node applies it as the
    # commit reaches it.
    deadline = time.time() + 10
    while True:
        st, _, body = httphelp.get(node, "/topics/%s" % topic)
        if "moving_to" in body["partitions"][0] or time.time() > deadline:
            break
        time.sleep(0.1)
    assert body["partitions"][0]["moving_to"] == [other, reps[0]], body
    st, _, body = httphelp.delete(node, path)
    assert st == 202 and body["cancelled"] is True, body
    wait_moved(c, topic, 1, 2, 0, reps)
    c.node(other).start()
    # A move that completes, through the command line (the same endpoint).
    target = "%d,%d" % (other, reps[0])
    out = ok(cli(node, "topic", "move", topic, "0", target))
    assert "moving %s-0 to replicas %s" % (topic, target) in out, out
    wait_moved(c, topic, 1, 2, 0, [other, reps[0]])
    rows = table(ok(cli(node, "topic", "describe", topic)).split("\n\n")[-1])
    assert rows[0][-2:] == ["LEADER", "REPLICAS"], rows
    assert rows[1][-1] == target, rows
    r = cli(node, "topic", "move", topic, "0", "--cancel")
    assert r.returncode != 0 and b"no_move_in_progress" in r.stderr + r.stdout, r
    r = cli(node, "topic", "move", topic, "0", "1,x")
    assert r.returncode != 0 and b"node ids" in r.stderr, r
    st, _, body = httphelp.get(c.node(other), "/topics/%s" % topic)
    assert body["partitions"][0]["replicas"] == [other, reps[0]], body
    assert "moving_to" not in body["partitions"][0]
