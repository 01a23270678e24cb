"""Partitions and configs of a topic in a cluster (issue 12, cluster plan
step 5): CreatePartitions, AlterConfigs and IncrementalAlterConfigs go
through the metadata group like topic creation (forwarded to the
controller by any node, validated there, applied on every node), so every
node agrees on a topic's partition count and configs. Checked with
confluent-kafka's AdminClient (CreatePartitions, AlterConfigs,
DescribeConfigs) and raw IncrementalAlterConfigs v0 requests (kwire)
against three real processes:
- CreatePartitions sent to a node that is not the controller grows the
  topic on every node; the new partitions get leaders and take acks=all
  records that read back; a count that is no increase is refused with
  INVALID_PARTITIONS; validate_only changes nothing;
- IncrementalAlterConfigs sent to any node sets a config that every node
  then describes; AlterConfigs replaces the whole set (unlisted keys go
  back to their defaults); an unknown key is refused with INVALID_CONFIG
  and changes nothing;
- a restarted node replays the metadata log to the same partitions and
  configs.
"""
import os
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions

import kwire
from cairn_broker import unique_topic
from test_cluster_basic import Cluster, create_everywhere, metadata, produce, read_all, wait_leaders

N = 3
RES_TOPIC = 2


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def non_controller(c):
    md = metadata(c.bootstrap(), None)
    return next(b for i, b in enumerate(c.nodes, 1) if i != md.controller_id)


def wait_parts(c, topic, n, timeout=20):
    deadline = time.time() + timeout
    for b in c.nodes:
        if not b.alive():
            continue
        while True:
            t = metadata(b.bootstrap, topic).topics.get(topic)
            if t is not None and len(t.partitions) == n:
                break
            assert time.time() < deadline, "%s: %s has %s partitions, want %d" % (
                b.bootstrap, topic, len(t.partitions) if t else None, n)
            time.sleep(0.1)


def describe(bootstrap, topic):
    """DescribeConfigs v0 sent to that node itself (an AdminClient may ask
    any broker): {key: value}."""
    body = kwire.i32(1) + kwire.i8(RES_TOPIC) + kwire.string(topic) + kwire.i32(-1)
    with kwire.Conn(bootstrap) as c:
        r = kwire.Reader(c.request(32, 0, body))
    r.i32()  # throttle
    assert r.i32() == 1
    err = r.i16()
    assert err == 0, (err, r.string())
    r.string()
    r.i8()
    r.string()
    out = {}
    for _ in range(r.i32()):
        k, v = r.string(), r.string()
        r.i8(), r.i8(), r.i8()  # read_only, is_default, sensitive
        out[k] = v
    return out


def wait_config(c, topic, key, value, timeout=20):
    deadline = time.time() + timeout
    for b in c.nodes:
        while describe(b.bootstrap, topic)[key] != value:
            assert time.time() < deadline, "%s: %s=%s, want %s" % (
                b.bootstrap, key, describe(b.bootstrap, topic)[key], value)
            time.sleep(0.1)


def incremental_alter(bootstrap, topic, ops, validate_only=False):
    """IncrementalAlterConfigs v0: ops = [(key, op, value)]; returns (error, message)."""
    body = kwire.i32(1) + kwire.i8(RES_TOPIC) + kwire.string(topic) + kwire.i32(len(ops))
    for k, op, v in ops:
        body += kwire.string(k) + kwire.i8(op) + kwire.string(v)
    body += kwire.i8(1 if validate_only else 0)
    with kwire.Conn(bootstrap, timeout=30) as conn:
        r = kwire.Reader(conn.request(44, 0, body))
    r.i32()  # throttle
    assert r.i32() == 1
    err = r.i16()
    msg = r.string()
    return err, msg


def test_create_partitions_through_the_controller(cluster):
    topic = unique_topic("cp")
    create_everywhere(cluster, topic, 2)
    wait_leaders(cluster, topic, 2)
    node = non_controller(cluster)
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    a.create_partitions([NewPartitions(topic, 5)], validate_only=True)[topic].result(30)
    time.sleep(0.5)
    assert len(metadata(cluster.bootstrap(), topic).topics[topic].partitions) == 2
    a.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    wait_parts(cluster, topic, 5)
    wait_leaders(cluster, topic, 5)
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions(topic, 4)])[topic].result(30)
    assert e.value.args[0].name() == "INVALID_PARTITIONS"
    values = [b"p%03d" % i for i in range(50)]
    acked, errors = produce(cluster.bootstrap(), topic, values)
    assert not errors
    assert {p for p, _, _ in acked} >= {2, 3, 4}, "the new partitions take records"
    got = read_all(cluster.bootstrap(), topic, 5, len(values))
    assert sorted(got) == sorted(values)
    # a restarted node replays to the same count
    cluster.nodes[2].kill9()
    cluster.nodes[2].start()
    wait_parts(cluster, topic, 5)


def test_configs_through_the_controller(cluster):
    topic = unique_topic("cfg")
    create_everywhere(cluster, topic, 1)
    node = non_controller(cluster)
    err, msg = incremental_alter(node.bootstrap, topic, [("retention.ms", 0, "123456")])
    assert err == 0, msg
    wait_config(cluster, topic, "retention.ms", "123456")
    err, msg = incremental_alter(node.bootstrap, topic, [("segment.ms", 0, "3600000")],
                                 validate_only=True)
    assert err == 0, msg
    err, msg = incremental_alter(node.bootstrap, topic, [("no.such.config", 0, "1")])
    assert err == 40, (err, msg)  # INVALID_CONFIG
    err, msg = incremental_alter(node.bootstrap, topic, [("retention.ms", 0, "-7")])
    assert err == 40, (err, msg)
    for b in cluster.nodes:
        d = describe(b.bootstrap, topic)
        assert d["retention.ms"] == "123456"
        assert d["segment.ms"] != "3600000", "validate_only changed nothing"
    # AlterConfigs replaces the set: retention.ms back to its default
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"max.message.bytes": "65536"})
    a.alter_configs([res])[res].result(30)
    wait_config(cluster, topic, "max.message.bytes", "65536")
    for b in cluster.nodes:
        assert describe(b.bootstrap, topic)["retention.ms"] == "604800000"
    # a restarted node replays to the same configs (a follower applies what
    # the leader's commits tell it: it may show an older state for a moment)
    cluster.nodes[0].kill9()
    cluster.nodes[0].start()
    deadline = time.time() + 20
    while True:  # it applies the log again as the leader's commits reach it
        d = describe(cluster.nodes[0].bootstrap, topic)
        if d["max.message.bytes"] == "65536" and d["retention.ms"] == "604800000":
            break
        assert time.time() < deadline, d
        time.sleep(0.1)


def test_replica_assignments(cluster):
    """Explicit assignments are taken as given: the replicas of each
    partition, in that order (the first the preferred leader), on every
    node's Metadata; a subset of the nodes holds the data. An uneven, a
    repeated or an unknown node is refused with INVALID_REPLICA_ASSIGNMENT.
    CreatePartitions takes an assignment of the new partitions the same
    way (each as long as the topic's replication factor)."""
    from confluent_kafka.admin import NewTopic
    a = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    good = unique_topic("ra")
    a.create_topics([NewTopic(good, 2, replica_assignment=[[1, 2, 3], [3, 1, 2]])])[good].result(30)
    wait_parts(cluster, good, 2)
    sub = unique_topic("ra")
    with pytest.raises(KafkaException) as e:
        a.create_topics([NewTopic(sub, 3, replica_assignment=[[1, 2], [2, 3], [3]])])[sub].result(30)
    assert e.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT", "uneven lists"
    a.create_topics([NewTopic(sub, 3, replica_assignment=[[1, 2], [2, 3], [3, 1]])])[sub].result(30)
    wait_parts(cluster, sub, 3)
    for b in cluster.nodes:
        parts = metadata(b.bootstrap, good).topics[good].partitions
        assert [parts[0].replicas, parts[1].replicas] == [[1, 2, 3], [3, 1, 2]], b.bootstrap
        parts = metadata(b.bootstrap, sub).topics[sub].partitions
        assert [parts[i].replicas for i in range(3)] == [[1, 2], [2, 3], [3, 1]], b.bootstrap
    for i, reps in enumerate([[1, 2], [2, 3], [3, 1]]):
        for n in (1, 2, 3):
            d = os.path.join(str(cluster.node(n).data_dir), "%s-%d" % (sub, i))
            assert os.path.isdir(d) == (n in reps), (i, n)
    for bad, why in (([[1, 1], [2, 3]], "lists twice"), ([[9], [1]], "no broker")):
        name = unique_topic("ra")
        with pytest.raises(KafkaException) as e:
            a.create_topics([NewTopic(name, 2, replica_assignment=bad)])[name].result(30)
        assert e.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT", bad
        assert why in e.value.args[0].str(), e.value.args[0].str()
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions(good, 3, replica_assignment=[[1, 1, 2]])])[good].result(30)
    assert e.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT"
    a.create_partitions([NewPartitions(good, 3, replica_assignment=[[2, 3, 1]])])[good].result(30)
    wait_parts(cluster, good, 3)
    for bad, why in (([[1, 2, 3], [2, 3]], "replication factor is 2"),
                     ([[1, 2]], "1 assignment(s) given for 2"), ([[1, 9], [2, 3]], "no broker"),
                     ([[1, 1], [2, 3]], "lists twice")):
        with pytest.raises(KafkaException) as e:
            a.create_partitions([NewPartitions(sub, 5, replica_assignment=bad)])[sub].result(30)
        assert e.value.args[0].name() == "INVALID_REPLICA_ASSIGNMENT", bad
        assert why in e.value.args[0].str(), e.value.args[0].str()
    a.create_partitions([NewPartitions(sub, 5, replica_assignment=[[2, 1], [3, 2]])])[sub].result(30)
    wait_parts(cluster, sub, 5)
    for b in cluster.nodes:
        parts = metadata(b.bootstrap, sub).topics[sub].partitions
        assert [parts[i].replicas for i in (3, 4)] == [[2, 1], [3, 2]], b.bootstrap
    for i, reps in ((3, [2, 1]), (4, [3, 2])):
        for n in (1, 2, 3):
            d = os.path.join(str(cluster.node(n).data_dir), "%s-%d" % (sub, i))
            assert os.path.isdir(d) == (n in reps), (i, n)
