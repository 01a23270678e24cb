"""Users, tokens and ACLs in a three-node cluster (issue 13): they live in
the cluster's metadata log, so a user or an ACL made through any node
works on every node, survives a node's restart, and goes away everywhere
when deleted. Driven with `cairn` (HTTP on loopback without logins on two
nodes, Basic and bearer tokens on the third) and confluent-kafka over
SASL_PLAINTEXT with SCRAM-SHA-512 and the authorizer on."""
import os
import subprocess
import time

import requests
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import ckhelp
from cairn_broker import Broker, free_port, unique_topic

PW = {"admin": "admin-pw", "alice": "alice-pw"}


def make_cluster(tmp_path):
    cports = [free_port() for _ in range(3)]
    peers = ",".join("%d@127.0.0.1:%d" % (i + 1, cports[i]) for i in range(3))
    nodes = []
    for i in range(3):
        pp, sp = free_port(), free_port()
        # SASL on the second listener: Metadata must send SASL clients to the
        # other nodes' SASL listeners, not to their first ones
        st = {"node.id": i + 1, "cluster.listeners": "127.0.0.1:%d" % cports[i],
              "cluster.peers": peers,
              "listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (pp, sp),
              "authorizer.enabled": "true", "super.users": "User:admin"}
        if i == 2:
            st["http.authentication"] = "basic"
        b = Broker(tmp_path / ("d%d" % (i + 1)), tmp_path / ("n%d.log" % (i + 1)),
                   settings=st, port=pp)
        b.sasl = "127.0.0.1:%d" % sp
        b.sasl_port = sp
        nodes.append(b)
    return nodes


def cli(b, *args, check=True, env=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([b.bin, *args, "--http", "127.0.0.1:%d" % b.http_port],
                       capture_output=True, text=True, env=e, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def sasl(user, bootstrap, **extra):
    c = {"bootstrap.servers": bootstrap, "security.protocol": "sasl_plaintext",
         "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user,
         "sasl.password": PW[user]}
    c.update(extra)
    return ckhelp._quiet(c)


def produce_one(user, bootstrap, topic):
    p = Producer(sasl(user, bootstrap, **{"message.timeout.ms": 15000, "acks": "all"}))
    out = []
    p.produce(topic, value=b"x", on_delivery=lambda err, m: out.append(err))
    p.flush(25)
    return out[0] if out else "undelivered"


def eventually(fn, timeout=15):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_users_tokens_and_acls_are_the_clusters(tmp_path):
    nodes = make_cluster(tmp_path)
    for b in nodes:
        b.start()
    try:
        n1, n2, n3 = nodes
        # a user made through node 1 is there for node 1 at once (the write
        # waits until this node applied it) and soon on the others
        cli(n1, "user", "add", "admin", "--password", PW["admin"])
        cli(n2, "user", "add", "alice", "--password", PW["alice"])
        assert "alice" in cli(n2, "user", "list").stdout
        admin_env = {"CAIRN_USER": "admin", "CAIRN_PASSWORD": PW["admin"]}
        eventually(lambda: _assert_in("alice", cli(n3, "user", "list", env=admin_env,
                                                   check=False).stdout))
        # Kafka: the admin (a super user) creates a topic through node 1 ...
        bootstrap = ",".join(b.sasl for b in nodes)
        t = unique_topic("csec")
        a = AdminClient(sasl("admin", n1.sasl))
        a.create_topics([NewTopic(t, 1, 3)])[t].result(30)
        # Metadata through node 1's SASL listener names every node's SASL
        # listener (each node published its listeners in the metadata log)
        want = {b.sasl_port for b in nodes}
        eventually(lambda: _assert_eq(want, {br.port for br in
                                             a.list_topics(timeout=10).brokers.values()}))
        t3 = unique_topic("csec3")
        a.create_topics([NewTopic(t3, 3, 3)])[t3].result(30)
        # ... alice may not write to it yet, anywhere
        e = produce_one("alice", n3.sasl, t)
        assert e is not None and not isinstance(e, str), e
        assert e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # an ACL made with the CLI through node 2 lets her, from every node
        cli(n2, "acl", "add", "--allow", "User:alice", "--operation", "Write", "--topic", t)
        for b in nodes:
            eventually(lambda b=b: _assert_in("User:alice", cli(
                b, "acl", "list", env=admin_env, check=False).stdout))
        assert produce_one("alice", bootstrap, t) is None
        # a client that knows only node 1's SASL listener reaches every
        # partition's leader (three partitions: not all led by node 1)
        cli(n1, "acl", "add", "--allow", "User:alice", "--operation", "Write", "--topic", t3)
        eventually(lambda: _assert_in("User:alice", cli(n3, "acl", "list", env=admin_env,
                                                        check=False).stdout))
        p = Producer(sasl("alice", n1.sasl, **{"message.timeout.ms": 20000, "acks": "all"}))
        errs = []
        for part in range(3):
            p.produce(t3, value=b"y", partition=part, on_delivery=lambda err, m: errs.append(err))
        p.flush(30)
        assert errs == [None, None, None], errs
        # node 2 restarts: its users and ACLs come back from the metadata log
        # (once it has heard how far the log is committed)
        n2.stop(check=True)
        n2.start()
        eventually(lambda: _assert_in("alice", cli(n2, "user", "list").stdout))
        eventually(lambda: _assert_in("User:alice", cli(n2, "acl", "list").stdout))
        assert produce_one("alice", n2.sasl, t) is None
        # bearer tokens: made on node 3 (Basic login as admin) for alice;
        # the token is alice (she may not Describe the cluster)
        url = "http://127.0.0.1:%d" % n3.http_port
        r = requests.post(url + "/tokens", json={"user": "alice"},
                          auth=("admin", PW["admin"]), timeout=30)
        assert r.status_code == 201, r.text
        tok = r.json()["token"]
        r = requests.get(url + "/broker", headers={"Authorization": "Bearer " + tok}, timeout=10)
        assert r.status_code == 403 and "User:alice may not Describe" in r.text
        # deleting the ACL through node 1 stops alice's writes everywhere
        cli(n1, "acl", "delete", "--principal", "User:alice", "--topic", t)
        eventually(lambda: _assert_auth_failed(produce_one("alice", n3.sasl, t)),
                   timeout=30)
        # deleting alice through node 1 takes her token on node 3 too
        cli(n1, "user", "delete", "alice")
        eventually(lambda: _assert_eq(401, requests.get(
            url + "/topics", headers={"Authorization": "Bearer " + tok},
            timeout=10).status_code))
        for b in nodes:
            assert b.alive()
    finally:
        for b in nodes:
            if b.alive():
                b.stop()
        for b in nodes:
            b.cleanup()


def _assert_in(x, text):
    assert x in text, text


def _assert_eq(want, got):
    assert want == got, got


def _assert_auth_failed(e):
    assert e is not None and not isinstance(e, str), e
    assert e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, e
