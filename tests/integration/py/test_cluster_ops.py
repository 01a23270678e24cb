"""Operating a cluster over HTTP (issue 12 with issue 11's operations
endpoints): /metrics and /readyz of each node tell the cluster's state.
Three real processes, read with urllib:
- /metrics: cairn_cluster_nodes, cairn_cluster_node_up per node, one
  controller named by every node, per replicated partition its leader (the
  same on every node, and Kafka's Metadata agrees), leader epoch, replicas,
  in-sync replicas on the leader; every partition led by exactly one node
  (cairn_cluster_leader_partitions sums to the partition count), none
  under-replicated or leaderless;
- kill -9 of one node: the leaders report under-replicated partitions and
  the dead node down; /readyz stays 200 (a majority is reachable);
- kill -9 of a second node: the last one's /readyz answers 503 with the
  cluster check failed and a message naming it.
"""
import json
import re
import time
import urllib.error
import urllib.request

import pytest

from cairn_broker import unique_topic
from test_cluster_basic import Cluster, create_everywhere, wait_leaders

PARTS = 3


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def metrics(node):
    with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def part_values(ms, family, topic):
    pat = re.compile(r'^%s\{topic="%s",partition="(\d+)"\}$' % (family, re.escape(topic)))
    return {int(m.group(1)): v for k, v in ms.items() for m in [pat.match(k)] if m}


def readyz(node):
    try:
        with urllib.request.urlopen(node.http_url + "/readyz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_metric(node, pred, what, timeout=20):
    deadline = time.time() + timeout
    while True:
        ms = metrics(node)
        if pred(ms):
            return ms
        assert time.time() < deadline, "%s: %s not reached" % (node.bootstrap, what)
        time.sleep(0.2)


def test_metrics_and_readiness_of_a_cluster(cluster):
    topic = unique_topic("ops")
    create_everywhere(cluster, topic, PARTS)
    leaders = wait_leaders(cluster, topic, PARTS)
    views = [wait_metric(b, lambda ms: part_values(ms, "cairn_partition_leader", topic) == leaders,
                         "Metadata's leaders") for b in cluster.nodes]
    controllers = {ms["cairn_cluster_controller"] for ms in views}
    assert len(controllers) == 1 and controllers.pop() in (1, 2, 3)
    for ms in views:
        assert ms["cairn_cluster_nodes"] == 3
        assert all(ms['cairn_cluster_node_up{node="%d"}' % n] == 1 for n in (1, 2, 3))
        assert set(part_values(ms, "cairn_partition_replicas", topic).values()) == {3}
        assert ms["cairn_cluster_leaderless_partitions"] == 0
        assert all(v >= 1 for v in part_values(ms, "cairn_partition_leader_epoch", topic).values())
    # each partition's in-sync count is reported by its leader alone
    for n, ms in enumerate(views, 1):
        isr = part_values(ms, "cairn_partition_in_sync_replicas", topic)
        assert set(isr) == {p for p, l in leaders.items() if l == n}
    wait = [wait_metric(b, lambda ms: ms["cairn_cluster_under_replicated_partitions"] == 0,
                        "no under-replicated partition") for b in cluster.nodes]
    assert all(set(part_values(ms, "cairn_partition_in_sync_replicas", topic).values()) <= {3}
               for ms in wait)
    for b in cluster.nodes:
        code, body = readyz(b)
        assert code == 200 and body["checks"]["cluster"]["ok"], body

    # one node down: its partitions move, the leaders see one replica missing
    victim = leaders[0]
    cluster.node(victim).kill9()
    live = [b for i, b in enumerate(cluster.nodes, 1) if i != victim]
    moved = wait_leaders(cluster, topic, PARTS, exclude=(victim,))
    for b in live:
        wait_metric(b, lambda ms: ms['cairn_cluster_node_up{node="%d"}' % victim] == 0,
                    "node %d down" % victim)
        deadline = time.time() + 20  # the victim may have been the controller
        while True:
            code, body = readyz(b)
            if code == 200:
                break
            assert time.time() < deadline, body
            time.sleep(0.2)
    under = sum(wait_metric(b, lambda ms: ms["cairn_cluster_under_replicated_partitions"] ==
                            sum(1 for l in moved.values() if cluster.node(l) is b),
                            "under-replicated partitions")["cairn_cluster_under_replicated_partitions"]
                for b in live)
    assert under >= PARTS  # every user partition (internal ones are not counted)

    # two nodes down: the last one is not ready
    cluster.node(moved[0]).kill9()
    last = next(b for b in cluster.nodes if b.alive())
    deadline = time.time() + 20
    while True:
        code, body = readyz(last)
        if code == 503:
            break
        assert time.time() < deadline, body
        time.sleep(0.2)
    assert not body["checks"]["cluster"]["ok"]
    assert "1 of 3 nodes reachable" in body["checks"]["cluster"]["detail"]
    assert "cluster" in body["message"]


def http(node, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(node.http_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_topics_through_the_controller(cluster):
    """POST /topics and DELETE /topics/{t} on any node act on every node
    (through the metadata group), not on the node asked alone."""
    from test_cluster_basic import metadata
    topic = unique_topic("ht")
    code, body = http(cluster.nodes[1], "POST", "/topics",
                      {"name": topic, "partitions": 2, "configs": {"retention.ms": 3600000}})
    assert code == 201 and body["name"] == topic and body["partitions"] == 2, body
    leaders = wait_leaders(cluster, topic, 2)
    assert set(leaders.values()) <= {1, 2, 3}
    for b in cluster.nodes:
        deadline = time.time() + 20
        while True:
            code, d = http(b, "GET", "/topics/" + topic)
            if code == 200:
                break
            assert time.time() < deadline, d
            time.sleep(0.1)
        assert len(d["partitions"]) == 2 and d["configs"]["retention.ms"]["value"] == "3600000"
    code, body = http(cluster.nodes[2], "POST", "/topics", {"name": topic})
    assert code == 409 and body["error_code"] == "topic_exists", body
    code, body = http(cluster.nodes[0], "DELETE", "/topics/" + topic)
    assert code == 200 and body["deleted"] == topic, body
    deadline = time.time() + 20
    for b in cluster.nodes:
        while topic in metadata(b.bootstrap, topic).topics and \
                metadata(b.bootstrap, topic).topics[topic].error is None:
            assert time.time() < deadline, "topic still on %s" % b.bootstrap
            time.sleep(0.1)
