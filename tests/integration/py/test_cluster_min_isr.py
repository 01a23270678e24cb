"""min.insync.replicas in a cluster (issue 12: "behave as Kafka users expect;
min ISR = majority here").

Three real nodes, a topic with replication factor 3. Checked over the raw
wire (produce v3 to the partition's leader, so the error code is the
broker's own, not a client's retry outcome) and with confluent-kafka's
DescribeConfigs:
- the topic config is accepted, stored and described (min.insync.replicas
  3 on one topic, the broker default 1 on another);
- with every replica in sync both topics take acks=all writes;
- with one node killed the ISR shrinks to 2: acks=all on the topic asking
  for 3 is refused with NOT_ENOUGH_REPLICAS and nothing is written, while
  acks=1 there and acks=all on the default topic still succeed (the Raft
  majority commits them);
- HTTP produce and publish (always acknowledged once durable) follow the
  same rule: 503 not_enough_replicas, nothing written;
- once the node is back and in sync, acks=all works again.
"""
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import httphelp
import kwire
from cairn_broker import unique_topic
from test_cluster_basic import N, Cluster, metadata

NOT_ENOUGH_REPLICAS = 19


@pytest.fixture
def cl(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def create(c, topic, config):
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=N,
                              config=config)])[topic].result(30)
    deadline = time.time() + 20
    for b in c.nodes:
        while True:
            t = metadata(b.bootstrap, topic).topics.get(topic)
            if t is not None and t.error is None and t.partitions[0].leader > 0:
                break
            assert time.time() < deadline, "topic %s not on %s" % (topic, b.bootstrap)
            time.sleep(0.1)


def state(c, topic):
    p = metadata(c.bootstrap(), topic).topics[topic].partitions[0]
    if p.leader > 0 and c.node(p.leader).alive():
        # The leader's own view: only it knows who is caught up.
        p = metadata(c.node(p.leader).bootstrap, topic).topics[topic].partitions[0]
    return p.leader, sorted(p.isrs)


def wait_isr(c, topic, size, timeout=30):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        try:
            st = state(c, topic)
        except Exception as e:  # noqa: BLE001 - a node going away meanwhile
            st = e
        if not isinstance(st, Exception) and st[0] > 0 and len(st[1]) == size:
            return st[0]
        time.sleep(0.2)
    raise AssertionError("ISR of %s never %d: %s" % (topic, size, st))


def produce(c, topic, leader, acks, value=b"v"):
    batch = kwire.build_record_batch([(b"k", value, [], None)])
    with kwire.Conn(c.node(leader).bootstrap) as conn:
        err, base, _ = kwire.produce_v3(conn, topic, 0, batch, acks=acks)
    return err, base


def test_min_insync_replicas(cl):
    strict, default = unique_topic("isr3"), unique_topic("isr1")
    create(cl, strict, {"min.insync.replicas": "3"})
    create(cl, default, {})
    a = AdminClient({"bootstrap.servers": cl.bootstrap()})
    res = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, strict),
                              ConfigResource(ConfigResource.Type.TOPIC, default)])
    got = {r.name: f.result()["min.insync.replicas"].value for r, f in res.items()}
    assert got == {strict: "3", default: "1"}
    leader = wait_isr(cl, strict, 3)
    assert produce(cl, strict, leader, -1) == (0, 0)
    dleader = wait_isr(cl, default, 3)
    assert produce(cl, default, dleader, -1) == (0, 0)
    # One replica down (not the leader of the strict topic).
    victim = next(n for n in (1, 2, 3) if n != leader)
    cl.node(victim).kill9()
    leader = wait_isr(cl, strict, 2)
    err, _ = produce(cl, strict, leader, -1)
    assert err == NOT_ENOUGH_REPLICAS
    # HTTP produce and publish wait for durability as acks=all does: the
    # same rule, 503 not_enough_replicas, nothing written.
    st, _, body = httphelp.post(cl.node(leader), "/topics/%s/records" % strict,
                                {"records": [{"value": "h"}]})
    assert st == 503 and body["error_code"] == "not_enough_replicas", (st, body)
    st, _, body = httphelp.post(cl.node(leader), "/event/publish",
                                {"event_type": strict, "data": {"x": 1}})
    assert st == 503 and body["error_code"] == "not_enough_replicas", (st, body)
    err, base = produce(cl, strict, leader, 1)
    assert err == 0 and base == 1, "acks=1 goes on: nothing was written by the refusals"
    dleader = wait_isr(cl, default, 2)
    assert produce(cl, default, dleader, -1) == (0, 1), "a majority commits it"
    # Back and in sync: acks=all again.
    cl.node(victim).restart()
    leader = wait_isr(cl, strict, 3, timeout=40)
    assert produce(cl, strict, leader, -1) == (0, 2)
