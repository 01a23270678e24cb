"""Transactions in a replicated cluster (issue 12, cluster plan step 7).

A transaction's markers must be written by each partition's leader; the
transaction coordinator (still one per node: the node a client's
FindCoordinator reached) hands markers for partitions another node leads to
that leader over the cluster connection (src/cluster/cluster_call.c), and
completes the transaction once every marker is committed there. Checked
with confluent-kafka against three real processes: a committed and an
aborted transaction over partitions led by different nodes; a
read_committed consumer sees exactly the committed records (the last stable
offset of every partition moves past both transactions, so every marker
landed), a read_uncommitted one sees both.
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


def read(bootstrap, topic, isolation, want, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTS)])
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
