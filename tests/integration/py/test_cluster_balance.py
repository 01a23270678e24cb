"""Preferred leaders and leader balance in a cluster (issue 12;
src/broker/broker_balance.c; Kafka's auto.leader.rebalance.enable).

Three real nodes, leader.imbalance.check.interval.seconds=1. Checked with
confluent-kafka's Metadata:
- every partition lists its replicas in assignment order: the first one
  (the preferred leader) rotates over the nodes from one partition to the
  next, the same on every node;
- leaders settle on the preferred ones whatever the elections chose, so a
  topic's partitions are led by every node in turn;
- after kill -9 of a node its partitions move to the others; once it is
  back and in sync, they move back to it, and every acknowledged record is
  still read exactly once;
- with auto.leader.rebalance.enable=false nothing moves back.
"""
import time

import pytest

from cairn_broker import unique_topic
from test_cluster_basic import Cluster, create_everywhere, metadata, produce, read_all, wait_leaders

PARTS = 6
FAST = {"leader.imbalance.check.interval.seconds": 1}


def preferred(c, topic):
    md = metadata(c.bootstrap(), topic)
    return {p.id: p.replicas[0] for p in md.topics[topic].partitions.values()}


def wait_balanced(c, topic, parts, timeout=30):
    """Partition -> leader once every partition is led by its preferred leader."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        md = metadata(c.bootstrap(), topic)
        t = md.topics.get(topic)
        if t is not None and len(t.partitions) == parts:
            last = {p.id: (p.leader, p.replicas[0]) for p in t.partitions.values()}
            if all(l == r for l, r in last.values()):
                return {k: v[0] for k, v in last.items()}
        time.sleep(0.2)
    raise AssertionError("leaders not on the preferred replicas within %ss: %s" % (timeout, last))


@pytest.fixture
def fast(tmp_path):
    c = Cluster(tmp_path, settings=FAST).start()
    yield c
    c.stop()


def test_replicas_in_assignment_order(fast):
    topic = unique_topic("bal")
    create_everywhere(fast, topic, PARTS)
    wait_leaders(fast, topic, PARTS)
    views = []
    for b in fast.nodes:
        md = metadata(b.bootstrap, topic)
        views.append({p.id: list(p.replicas) for p in md.topics[topic].partitions.values()})
    assert views[0] == views[1] == views[2], "one assignment order on every node"
    firsts = [views[0][i][0] for i in range(PARTS)]
    for i in range(PARTS):
        assert sorted(views[0][i]) == [1, 2, 3]
        assert firsts[i] != firsts[(i + 1) % PARTS], "the preferred leader rotates: %s" % firsts
    assert sorted(firsts.count(n) for n in (1, 2, 3)) == [2, 2, 2]


def test_leaders_go_back_to_preferred_after_restart(fast):
    topic = unique_topic("bal")
    create_everywhere(fast, topic, PARTS)
    leaders = wait_balanced(fast, topic, PARTS)
    assert sorted(leaders.values()) == [1, 1, 2, 2, 3, 3]
    acked, errors = produce(fast.bootstrap(), topic, [b"b%03d" % i for i in range(60)])
    assert not errors
    victim = leaders[0]
    fast.node(victim).kill9()
    moved = wait_leaders(fast, topic, PARTS, exclude=(victim,))
    assert victim not in moved.values()
    more, errors = produce(fast.bootstrap(), topic, [b"c%03d" % i for i in range(60)])
    assert not errors
    acked += more
    fast.node(victim).start()
    back = wait_balanced(fast, topic, PARTS, timeout=40)
    assert sorted(back.values()) == [1, 1, 2, 2, 3, 3]
    assert [p for p, l in back.items() if l == victim] == \
        [p for p, l in leaders.items() if l == victim]
    got = read_all(fast.bootstrap(), topic, PARTS, len(acked))
    assert sorted(got) == sorted(v for _, _, v in acked), "every acknowledged record once"


def test_no_rebalance_when_disabled(tmp_path):
    c = Cluster(tmp_path, settings=dict(FAST, **{"auto.leader.rebalance.enable": "false"})).start()
    try:
        topic = unique_topic("bal")
        create_everywhere(c, topic, PARTS)
        leaders = wait_leaders(c, topic, PARTS)
        victim = next(iter(set(leaders.values())))
        c.node(victim).kill9()
        wait_leaders(c, topic, PARTS, exclude=(victim,))
        c.node(victim).start()
        time.sleep(4)  # four checks' time: nothing goes back
        now = wait_leaders(c, topic, PARTS)
        assert victim not in now.values(), now
    finally:
        c.stop()


def test_controlled_shutdown_hands_leadership_over(fast):
    """SIGTERM of a node that leads partitions: before it exits it hands
    every one of them to an in-sync replica (controlled.shutdown.enable), so
    by the time it is gone the others lead everything, with no election to
    wait for; a producer going on meanwhile loses nothing."""
    import threading
    from confluent_kafka import Producer
    topic = unique_topic("cs")
    create_everywhere(fast, topic, PARTS)
    leaders = wait_balanced(fast, topic, PARTS)
    victim = leaders[0]
    acked, errors = [], []
    stop = threading.Event()

    def run():
        p = Producer({"bootstrap.servers": fast.bootstrap(), "acks": "all",
                      "enable.idempotence": True, "linger.ms": 1, "message.timeout.ms": 30000})
        i = 0
        while not stop.is_set():
            v = b"s%05d" % i
            p.produce(topic, value=v, on_delivery=lambda err, m: (errors if err else acked).append(
                err if err else m.value()))
            i += 1
            p.poll(0.002)
        p.flush(30)

    t = threading.Thread(target=run)
    t.start()
    try:
        time.sleep(1)
        node = fast.node(victim)
        node.stop()  # SIGTERM; requires a clean exit
        now = wait_leaders(fast, topic, PARTS, exclude=(victim,), timeout=5)
        time.sleep(1)
    finally:
        stop.set()
        t.join(60)
    log = node.log_text(200000)
    assert "controlled shutdown: handing" in log, log[-3000:]
    assert "controlled shutdown: other nodes lead every partition now" in log, log[-3000:]
    assert victim not in now.values()
    assert not errors, errors[:5]
    got = read_all(fast.bootstrap(), topic, PARTS, len(set(acked)))
    assert set(got) >= set(acked), "every acknowledged record is there"
