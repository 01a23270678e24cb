"""A replicated cluster of real cairn processes (issue 12, cluster plan steps 4-5).

Three nodes on loopback, each started with node.id, cluster.listeners and
cluster.peers. Topics are created and deleted once, through the controller
(the metadata group's leader), and appear on every node with one topic id.
Checked with confluent-kafka (librdkafka):
- Metadata from any node lists the three brokers, the controller, a leader
  per partition, replicas [1, 2, 3], one cluster id and one topic id;
- CreateTopics sent to a node that is not the controller is forwarded to
  it (KIP-590 style) and the topic appears everywhere; a name taken twice
  gives TOPIC_ALREADY_EXISTS; DeleteTopics
  removes the topic from every node; producing to an unknown topic does not
  create it (auto-creation is off in a cluster);
- acks=all idempotent produce is acknowledged and every acknowledged record
  is read back;
- kill -9 of a partition's leader: a new leader takes over with a higher
  epoch, producing goes on, and every record acknowledged before and after
  the kill is read back exactly once;
- the killed node restarts from its files and catches up: after the
  current leader is killed too, the two remaining nodes (one of them the
  restarted one) still serve every acknowledged record;
- a produce sent to a follower directly is refused with
  NOT_LEADER_OR_FOLLOWER (kafka-python, pinned to that broker).
"""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cairn_broker import Broker, free_port, unique_topic

N = 3


class Cluster:
    def __init__(self, tmp_path, n=N, settings=None):
        cports = [free_port() for _ in range(n)]
        peers = ",".join("%d@127.0.0.1:%d" % (i + 1, cports[i]) for i in range(n))
        self.nodes = []
        for i in range(n):
            st = {"node.id": i + 1, "cluster.listeners": "127.0.0.1:%d" % cports[i],
                  "cluster.peers": peers}
            st.update(settings or {})
            b = Broker(tmp_path / ("d%d" % (i + 1)), tmp_path / ("n%d.log" % (i + 1)),
                       settings=st)
            self.nodes.append(b)

    def start(self):
        for b in self.nodes:
            b.start()
        return self

    def bootstrap(self, alive_only=True):
        return ",".join(b.bootstrap for b in self.nodes if not alive_only or b.alive())

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def stop(self):
        for b in self.nodes:
            if b.alive():
                b.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def create_everywhere(c, topic, parts):
    """Create once (the admin client finds the controller) and wait until
    every node has applied it."""
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    fs = a.create_topics([NewTopic(topic, num_partitions=parts, replication_factor=N)])
    fs[topic].result(30)
    deadline = time.time() + 20
    for b in c.nodes:
        while topic not in metadata(b.bootstrap, topic).topics or \
                metadata(b.bootstrap, topic).topics[topic].error is not None:
            assert time.time() < deadline, "topic %s not on node %s" % (topic, b.bootstrap)
            time.sleep(0.1)


def metadata(bootstrap, topic):
    a = AdminClient({"bootstrap.servers": bootstrap})
    return a.list_topics(topic, timeout=10)


def wait_leaders(c, topic, parts, exclude=(), min_epoch=None, timeout=20):
    """Partition -> leader id once every partition has a live leader."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        md = metadata(c.bootstrap(), topic)
        t = md.topics.get(topic)
        if t is not None and len(t.partitions) == parts:
            leaders = {p.id: p.leader for p in t.partitions.values()}
            last = leaders
            if all(l > 0 and l not in exclude for l in leaders.values()):
                return leaders
        time.sleep(0.2)
    raise AssertionError("no leaders for %s within %ss (last %s)" % (topic, timeout, last))


def produce(bootstrap, topic, values, timeout=60):
    acked, errors = [], []

    def cb(err, m):
        (errors if err else acked).append(err if err else (m.partition(), m.offset(), m.value()))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 45000, "linger.ms": 2})
    for v in values:
        p.produce(topic, key=v, value=v, on_delivery=cb)
        p.poll(0)
        time.sleep(0.001)
    assert p.flush(timeout) == 0, "producer did not drain"
    return acked, errors


def read_all(bootstrap, topic, parts, want, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(set(seen)) < want:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen.append(m.value())
    c.close()
    return seen


def test_metadata_shows_the_cluster(cluster):
    topic = unique_topic("rmd")
    create_everywhere(cluster, topic, 2)
    leaders = wait_leaders(cluster, topic, 2)
    ids, controllers = set(), set()
    for b in cluster.nodes:
        md = metadata(b.bootstrap, topic)
        assert sorted(md.brokers) == [1, 2, 3]
        ids.add(md.cluster_id)
        controllers.add(md.controller_id)
        for p in md.topics[topic].partitions.values():
            assert sorted(p.replicas) == [1, 2, 3]
            assert p.leader == leaders[p.id]
    assert len(ids) == 1, "every node reports one cluster id"
    assert len(controllers) == 1 and controllers.pop() in (1, 2, 3)
    # One topic id everywhere (DescribeTopics is not served: the log lines
    # and the .conf files are the evidence): every node's .conf has it.
    confs = set()
    for b in cluster.nodes:
        with open("%s/.topics/%s.conf" % (b.data_dir, topic)) as f:
            confs.add([l for l in f.read().split("\n") if l.startswith("topic.id=")][0])
    assert len(confs) == 1, confs


def raw_request(bootstrap_node, node_id, req, api_version=(2, 5, 0)):
    from kafka.client_async import KafkaClient
    cl = KafkaClient(bootstrap_servers=bootstrap_node.bootstrap, api_version=api_version)
    try:
        deadline = time.time() + 10
        while not cl.ready(node_id) and time.time() < deadline:
            cl.poll(timeout_ms=100)
        assert cl.ready(node_id)
        fut = cl.send(node_id, req)
        while not fut.is_done:
            cl.poll(timeout_ms=100)
        return fut.value
    finally:
        cl.close()


def test_topics_through_the_controller(cluster):
    from kafka.protocol.admin import CreateTopicsRequest
    topic = unique_topic("rctl")
    create_everywhere(cluster, topic, 1)
    md = metadata(cluster.bootstrap(), topic)
    ctl = md.controller_id
    other = next(i for i in (1, 2, 3) if i != ctl)
    # To a node that is not the controller: forwarded, created everywhere.
    fwd = unique_topic("fwd")
    req = CreateTopicsRequest[3](create_topic_requests=[(fwd, 2, 3, [], [])],
                                 timeout=10000, validate_only=False)
    resp = raw_request(cluster.node(other), other, req)
    assert resp.topic_errors[0][1] == 0, resp
    deadline = time.time() + 20
    for b in cluster.nodes:
        while fwd not in metadata(b.bootstrap, fwd).topics or \
                metadata(b.bootstrap, fwd).topics[fwd].error is not None:
            assert time.time() < deadline, "forwarded topic not on %s" % b.bootstrap
            time.sleep(0.1)
    # validate_only through a non-controller: valid, nothing created.
    v = unique_topic("vo")
    req = CreateTopicsRequest[3](create_topic_requests=[(v, 1, 3, [], [])],
                                 timeout=10000, validate_only=True)
    resp = raw_request(cluster.node(other), other, req)
    assert resp.topic_errors[0][1] == 0, resp
    # A replication factor above the node count is refused by the controller,
    # through the forward.
    req = CreateTopicsRequest[3](create_topic_requests=[(unique_topic("rf4"), 1, 4, [], [])],
                                 timeout=10000, validate_only=False)
    resp = raw_request(cluster.node(other), other, req)
    assert resp.topic_errors[0][1] == 38, resp  # INVALID_REPLICATION_FACTOR
    time.sleep(0.5)
    assert v not in metadata(cluster.bootstrap(), v).topics or \
        metadata(cluster.bootstrap(), v).topics[v].error is not None
    # The same name again: TOPIC_ALREADY_EXISTS.
    a = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    fs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=N)])
    with pytest.raises(Exception) as ei:
        fs[topic].result(20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    # Delete once: gone from every node.
    fs = a.delete_topics([topic])
    fs[topic].result(30)
    deadline = time.time() + 20
    for b in cluster.nodes:
        while topic in metadata(b.bootstrap, topic).topics and \
                metadata(b.bootstrap, topic).topics[topic].error is None:
            assert time.time() < deadline, "topic still on %s" % b.bootstrap
            time.sleep(0.1)
    # No auto-creation in a cluster.
    ghost = unique_topic("ghost")
    p = Producer({"bootstrap.servers": cluster.bootstrap(), "message.timeout.ms": 3000})
    p.produce(ghost, b"x")
    p.flush(10)
    for b in cluster.nodes:
        md = metadata(b.bootstrap, ghost)
        assert ghost not in md.topics or md.topics[ghost].error is not None


def test_replicated_produce_survives_leader_kill_and_restart(cluster):
    topic = unique_topic("rep")
    parts = 2
    create_everywhere(cluster, topic, parts)
    leaders = wait_leaders(cluster, topic, parts)
    first = [("a%04d" % i).encode() for i in range(300)]
    acked, errors = produce(cluster.bootstrap(), topic, first)
    assert not errors and len(acked) == len(first)

    # Kill the leader of partition 0; the others elect a new one.
    victim = leaders[0]
    cluster.node(victim).kill9()
    new = wait_leaders(cluster, topic, parts, exclude=(victim,))
    assert new[0] != victim
    second = [("b%04d" % i).encode() for i in range(300)]
    acked2, errors2 = produce(cluster.bootstrap(), topic, second)
    assert not errors2, errors2[:3]
    assert len(acked2) == len(second)
    every = set(first) | set(second)
    seen = read_all(cluster.bootstrap(), topic, parts, len(every))
    assert set(seen) == every, "lost %d acknowledged records" % len(every - set(seen))
    assert len(seen) == len(set(seen)), "a record was read twice"

    # The killed node restarts from its files and catches up; then the
    # current leader of partition 0 dies too and the two others (one of them
    # the restarted node) still hold everything.
    cluster.node(victim).start()
    third = [("c%04d" % i).encode() for i in range(100)]
    acked3, errors3 = produce(cluster.bootstrap(), topic, third)
    assert not errors3 and len(acked3) == len(third)
    time.sleep(2)  # heartbeats bring the restarted node's log up to date
    second_victim = wait_leaders(cluster, topic, parts)[0]
    assert second_victim != victim
    cluster.node(second_victim).kill9()
    wait_leaders(cluster, topic, parts, exclude=(second_victim,))
    every |= set(third)
    seen = read_all(cluster.bootstrap(), topic, parts, len(every))
    assert set(seen) == every, "lost %d records after the second kill" % len(every - set(seen))
    assert len(seen) == len(set(seen))


def test_follower_refuses_produce(cluster):
    from kafka.errors import NotLeaderForPartitionError  # kafka-python
    topic = unique_topic("rfol")
    create_everywhere(cluster, topic, 1)
    leader = wait_leaders(cluster, topic, 1)[0]
    follower = next(b for i, b in enumerate(cluster.nodes, 1) if i != leader)
    # A client that only knows the follower is sent to the leader by
    # Metadata; pinned to the follower's socket with a raw request, the
    # produce is refused.
    from kafka.client_async import KafkaClient
    from kafka.protocol.produce import ProduceRequest
    from kafka.record.memory_records import MemoryRecordsBuilder
    cl = KafkaClient(bootstrap_servers=follower.bootstrap, api_version=(2, 5, 0))
    try:
        node_id = [i for i, b in enumerate(cluster.nodes, 1) if b is follower][0]
        deadline = time.time() + 10
        while not cl.ready(node_id) and time.time() < deadline:
            cl.poll(timeout_ms=100)
        assert cl.ready(node_id)
        b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
        b.append(timestamp=None, key=b"k", value=b"v", headers=[])
        b.close()
        req = ProduceRequest[7](transactional_id=None, required_acks=-1, timeout=5000,
                                topics=[(topic, [(0, b.buffer())])])
        fut = cl.send(node_id, req)
        while not fut.is_done:
            cl.poll(timeout_ms=100)
        resp = fut.value
        err = resp.topics[0][1][0][1]
        assert err == NotLeaderForPartitionError.errno
    finally:
        cl.close()
