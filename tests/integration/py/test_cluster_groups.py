"""Consumer groups in a replicated cluster (issue 12, cluster plan step 7).

__consumer_offsets-0 is a Raft group over every node; its leader is the
group coordinator for every group, and the only node that answers group
requests (the others answer NOT_COORDINATOR; FindCoordinator on any node
names the leader). Committed offsets are Raft entries: an OffsetCommit is
answered once a majority holds it, so they survive the coordinator's death.
Checked with real clients against three real processes:
- FindCoordinator sent to each node names one node, the same everywhere;
  group requests sent to another node answer NOT_COORDINATOR;
- two confluent-kafka consumers of one group, bootstrapped from different
  nodes, split the partitions, read everything once and commit; a later
  consumer of the group starts from the committed offsets;
- kill -9 of the coordinator: another node takes over with the committed
  offsets intact, a consumer of the group resumes exactly where the group
  committed, commits again at the new coordinator, and the killed node
  restarts and rejoins as a follower.
"""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from cairn_broker import unique_topic
from test_cluster_basic import Cluster, create_everywhere, produce, wait_leaders

N = 3


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def kclient(node):
    from kafka.client_async import KafkaClient
    return KafkaClient(bootstrap_servers=node.bootstrap, api_version=(2, 5, 0))


def raw(node, node_id, req, timeout=10):
    cl = kclient(node)
    try:
        deadline = time.time() + timeout
        while not cl.ready(node_id) and time.time() < deadline:
            cl.poll(timeout_ms=100)
        assert cl.ready(node_id), "cannot reach node %d" % node_id
        fut = cl.send(node_id, req)
        while not fut.is_done:
            cl.poll(timeout_ms=100)
        if fut.exception:
            raise fut.exception
        return fut.value
    finally:
        cl.close()


def find_coordinator(node, node_id, group):
    from kafka.protocol.commit import GroupCoordinatorRequest
    # v0: kafka-python's v1 response schema lacks throttle_time_ms.
    r = raw(node, node_id, GroupCoordinatorRequest[0](group))
    return r.error_code, r.coordinator_id


def coordinator(cluster, group, alive=None, timeout=30):
    """The node every live node names as the group's coordinator."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        answers = set()
        for i, b in enumerate(cluster.nodes, 1):
            if not b.alive() or (alive and i not in alive):
                continue
            err, cid = find_coordinator(b, i, group)
            answers.add((err, cid))
        last = answers
        if len(answers) == 1:
            err, cid = answers.pop()
            if err == 0 and cid > 0 and cluster.node(cid).alive():
                return cid
        time.sleep(0.3)
    raise AssertionError("no single coordinator within %ss: %s" % (timeout, last))


def consumer(bootstrap, group, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


def drain(consumers, want, timeout=60):
    """Poll the consumers in turn until want distinct values were seen."""
    seen = []
    per = [set() for _ in consumers]
    deadline = time.time() + timeout
    while time.time() < deadline and len(set(seen)) < want:
        for k, c in enumerate(consumers):
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            seen.append(m.value())
            per[k].add(m.partition())
    return seen, per


def test_one_coordinator_and_others_refuse(cluster):
    from kafka.protocol.group import HeartbeatRequest
    group = unique_topic("g")
    cid = coordinator(cluster, group)
    other = next(i for i in (1, 2, 3) if i != cid)
    r = raw(cluster.node(other), other, HeartbeatRequest[1](group, 1, "m"))
    assert r.error_code == 16, r  # NOT_COORDINATOR
    r = raw(cluster.node(cid), cid, HeartbeatRequest[1](group, 1, "m"))
    assert r.error_code == 25, r  # UNKNOWN_MEMBER_ID: it is the coordinator


def test_group_across_nodes_splits_and_commits(cluster):
    topic = unique_topic("cg")
    parts = 4
    create_everywhere(cluster, topic, parts)
    wait_leaders(cluster, topic, parts)
    values = [("v%04d" % i).encode() for i in range(400)]
    acked, errors = produce(cluster.bootstrap(), topic, values)
    assert not errors and len(acked) == len(values)
    group = unique_topic("grp")
    # Each consumer knows one node only: both must find the one coordinator.
    c1 = consumer(cluster.node(1).bootstrap, group)
    c2 = consumer(cluster.node(2).bootstrap, group)
    c1.subscribe([topic])
    c2.subscribe([topic])
    try:
        # Wait for an assignment that spans both members.
        deadline = time.time() + 60
        while time.time() < deadline:
            c1.poll(0.2)
            c2.poll(0.2)
            a1, a2 = c1.assignment(), c2.assignment()
            if a1 and a2 and len(a1) + len(a2) == parts:
                break
        a1 = {tp.partition for tp in c1.assignment()}
        a2 = {tp.partition for tp in c2.assignment()}
        assert a1 and a2 and not (a1 & a2) and a1 | a2 == set(range(parts)), (a1, a2)
        # Records polled while waiting may be lost from the count: reset to 0.
        for c in (c1, c2):
            for tp in c.assignment():
                c.seek(TopicPartition(topic, tp.partition, 0))
        seen, per = drain([c1, c2], len(values))
        assert set(seen) == set(values)
        assert per[0] <= a1 and per[1] <= a2
        for c in (c1, c2):
            c.commit(asynchronous=False)
    finally:
        c1.close()
        c2.close()
    # A new member of the group, through the third node, starts at the
    # committed offsets: nothing old, only what comes next.
    more = [("w%04d" % i).encode() for i in range(40)]
    acked, errors = produce(cluster.bootstrap(), topic, more)
    assert not errors
    c3 = consumer(cluster.node(3).bootstrap, group)
    c3.subscribe([topic])
    try:
        seen, _ = drain([c3], len(more), timeout=60)
        assert set(seen) == set(more), "restarted at the wrong offsets: %s" % sorted(seen)[:5]
        assert len(seen) == len(more)
    finally:
        c3.close()


def test_coordinator_failover_keeps_committed_offsets(cluster):
    topic = unique_topic("cgf")
    parts = 2
    create_everywhere(cluster, topic, parts)
    wait_leaders(cluster, topic, parts)
    values = [("x%04d" % i).encode() for i in range(200)]
    acked, errors = produce(cluster.bootstrap(), topic, values)
    assert not errors and len(acked) == len(values)
    group = unique_topic("grpf")
    # Commit explicit positions (the middle of each partition).
    ends = {}
    for p, off, _ in acked:
        ends[p] = max(ends.get(p, -1), off + 1)
    commit_at = {p: ends[p] // 2 for p in ends}
    c = consumer(cluster.bootstrap(), group)
    try:
        offs = [TopicPartition(topic, p, o) for p, o in commit_at.items()]
        deadline = time.time() + 30
        while True:
            try:
                res = c.commit(offsets=offs, asynchronous=False)
                assert all(tp.error is None for tp in res), res
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        got = {tp.partition: tp.offset for tp in
               c.committed([TopicPartition(topic, p) for p in commit_at], timeout=10)}
        assert got == commit_at
    finally:
        c.close()

    old = coordinator(cluster, group)
    cluster.node(old).kill9()
    alive = [i for i in (1, 2, 3) if i != old]
    new = coordinator(cluster, group, alive=alive)
    assert new != old

    # The new coordinator has the offsets: a consumer of the group resumes there.
    boot = ",".join(cluster.node(i).bootstrap for i in alive)
    c = consumer(boot, group)
    c.subscribe([topic])
    try:
        want = sum(ends[p] - commit_at[p] for p in ends)
        first = {}
        seen, _ = [], None
        deadline = time.time() + 60
        while time.time() < deadline and len(seen) < want:
            m = c.poll(0.3)
            if m is None or m.error():
                continue
            first.setdefault(m.partition(), m.offset())
            seen.append((m.partition(), m.offset()))
        assert first == commit_at, "resumed at %s, committed %s" % (first, commit_at)
        assert len(seen) == want and len(set(seen)) == want
        c.commit(asynchronous=False)
        got = {tp.partition: tp.offset for tp in
               c.committed([TopicPartition(topic, p) for p in ends], timeout=10)}
        assert got == ends
    finally:
        c.close()

    # The killed node comes back as a follower of the offsets log.
    cluster.node(old).start()
    assert coordinator(cluster, group) in (1, 2, 3)
    err, cid = find_coordinator(cluster.node(old), old, group)
    assert err == 0 and cid == coordinator(cluster, group)
