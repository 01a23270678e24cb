"""cluster.voters.max: the logs every node keeps vote on the members of
lowest id only (issue 12: "one metadata group over the first nodes, 3 or 5
voters"); the other members hold copies that do not vote.

Four real nodes with cluster.voters.max=3: once the logs' leaders have
walked their configurations (node 4 a standby), nodes 3 and 4 are killed and
the metadata log still commits: a topic is created through the survivors
(2 of 3 voters). With all four voting, two of four would be no majority.
Then node 4 alone comes back and node 2 dies: 1 and 4 are 1 voter of 3, and
a creation must fail; node 3 back makes it work again.
"""
import re
import time

from confluent_kafka.admin import AdminClient, NewTopic

from test_cluster_basic import Cluster
from cairn_broker import unique_topic


def create(c, topic, timeout=10):
    a = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 3000})
    try:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=2)],
                        request_timeout=timeout)[topic].result(timeout + 5)
        return None
    except Exception as e:  # noqa: BLE001
        return e


def standby_everywhere(c, node, logs):
    """Every log of every node reported `node` a standby by its leader."""
    text = "".join(b.log_text(400000) for b in c.nodes)
    return all(re.search(r"%s-0: move: node %d (joins as a standby|stops voting)" % (l, node),
                         text)
               for l in logs)


def test_voters_are_capped(tmp_path):
    c = Cluster(tmp_path, n=4, settings={"cluster.voters.max": 3}).start()
    try:
        logs = ["__cluster_meta", "__consumer_offsets", "__transaction_state"]
        deadline = time.time() + 30
        while not standby_everywhere(c, 4, logs):
            assert time.time() < deadline, "node 4 never became a standby"
            time.sleep(0.2)
        assert create(c, unique_topic("v")) is None
        c.node(3).kill9()
        c.node(4).kill9()
        err = None
        deadline = time.time() + 30
        while True:
            err = create(c, unique_topic("v2"))
            if err is None:
                break
            assert time.time() < deadline, "no topic created by 2 of 3 voters: %s" % err
            time.sleep(0.5)
        c.node(4).start()
        c.node(2).kill9()
        err = create(c, unique_topic("v3"), timeout=5)
        assert err is not None, "a creation committed with 1 voter of 3 (and a standby)"
        c.node(3).start()
        deadline = time.time() + 30
        while create(c, unique_topic("v4")) is not None:
            assert time.time() < deadline, "no creation after node 3 came back"
            time.sleep(0.5)
    finally:
        c.stop()
