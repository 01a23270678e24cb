"""ACLs (issue 13, step 4): an admin (super user) manages ACLs with
kafka-python's admin client (CreateAcls, DescribeAcls, DeleteAcls); users
authenticated with SCRAM then get exactly what the ACLs allow, with the
errors Kafka clients see (TOPIC_, GROUP_, CLUSTER_ and
TRANSACTIONAL_ID_AUTHORIZATION_FAILED); topics they may not describe stay
out of Metadata; DENY wins; prefixed patterns; a revoked ACL takes effect
on an open connection; ACLs survive a restart."""
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, KafkaAdminClient, NewTopic,
                         ResourcePattern, ResourcePatternFilter, ResourceType)

import ckhelp
import kwire
from cairn_broker import Broker, free_port, unique_topic

PW = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


def make_broker(tmp_path, extra=None):
    port, sasl = free_port(), free_port()
    settings = {"listeners": "PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d" % (port, sasl),
                "authorizer.enabled": "true", "super.users": "User:admin"}
    settings.update(extra or {})
    b = Broker(tmp_path / "data", tmp_path / "broker.log", settings, port=port)
    b.sasl = "127.0.0.1:%d" % sasl
    for user, pw in PW.items():  # offline, before the first start
        r = subprocess.run([b.bin, "user", "add", user, "--password", pw, "--data-dir", b.data_dir],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    return b


@pytest.fixture(scope="module")
def ab(tmp_path_factory):
    b = make_broker(tmp_path_factory.mktemp("acl"))
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def admin(b, user="admin"):
    return KafkaAdminClient(bootstrap_servers=b.sasl, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                            sasl_plain_password=PW[user], request_timeout_ms=10000)


def conf(user):
    return {"security.protocol": "sasl_plaintext", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": PW[user]}


def produce_one(b, user, topic, timeout=15):
    """The delivery error of one record (None when it was written)."""
    p = Producer(ckhelp._quiet(dict(conf(user), **{"bootstrap.servers": b.sasl,
                                                   "message.timeout.ms": timeout * 1000})))
    out = []
    p.produce(topic, value=b"x", on_delivery=lambda err, m: out.append(err))
    p.flush(timeout + 5)
    return out[0] if out else "undelivered"


def allow(user, op, rtype, name, pattern=ACLResourcePatternType.LITERAL,
          perm=ACLPermissionType.ALLOW):
    return ACL(principal="User:" + user, host="*", operation=op, permission_type=perm,
               resource_pattern=ResourcePattern(rtype, name, pattern))


def create(b, acls):
    res = admin(b).create_acls(acls)
    assert not res["failed"], res["failed"]


def test_admin_manages_acls_and_users_get_what_they_allow(ab):
    a = admin(ab)
    orders, secret = unique_topic("orders"), unique_topic("secret")
    a.create_topics([NewTopic(orders, 1, 1), NewTopic(secret, 1, 1)])
    prefix = orders[:10]
    create(ab, [allow("alice", ACLOperation.WRITE, ResourceType.TOPIC, prefix,
                      ACLResourcePatternType.PREFIXED),
                allow("alice", ACLOperation.READ, ResourceType.TOPIC, prefix,
                      ACLResourcePatternType.PREFIXED),
                allow("alice", ACLOperation.READ, ResourceType.GROUP, "billing")])
    acls, err = a.describe_acls(ACLFilter(principal="User:alice", host=None,
                                          operation=ACLOperation.ANY,
                                          permission_type=ACLPermissionType.ANY,
                                          resource_pattern=ResourcePatternFilter(
                                              ResourceType.ANY, None,
                                              ACLResourcePatternType.ANY)))
    assert len(acls) == 3
    # alice writes her topic, not the secret one
    assert produce_one(ab, "alice", orders) is None
    e = produce_one(ab, "alice", secret)
    assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Metadata shows alice her topics only, bob (no ACLs) none
    md = ckhelp.AdminClient(ckhelp._quiet(dict(conf("alice"), **{"bootstrap.servers": ab.sasl})))
    names = set(md.list_topics(timeout=10).topics)
    assert orders in names and secret not in names
    md = ckhelp.AdminClient(ckhelp._quiet(dict(conf("bob"), **{"bootstrap.servers": ab.sasl})))
    assert not set(md.list_topics(timeout=10).topics) & {orders, secret}
    # alice reads in group billing, not in another group
    c = ckhelp.consumer(ab.sasl, **dict(conf("alice"), **{"group.id": "billing",
                                                         "enable.partition.eof": False}))
    c.subscribe([orders])
    m = None
    deadline = time.time() + 20
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            break
    c.close()
    assert m is not None and not m.error() and m.value() == b"x"
    c = ckhelp.consumer(ab.sasl, **dict(conf("alice"), **{"group.id": "other"}))
    c.subscribe([orders])
    err = None
    deadline = time.time() + 20
    while err is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
    c.close()
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    # alice may not create topics or ACLs
    from kafka.errors import TopicAuthorizationFailedError
    with pytest.raises(TopicAuthorizationFailedError):
        admin(ab, "alice").create_topics([NewTopic(unique_topic("own"), 1, 1)])
    res = admin(ab, "alice").create_acls([allow("alice", ACLOperation.ALL, ResourceType.CLUSTER,
                                                "kafka-cluster")])
    assert res["failed"] and "ClusterAuthorizationFailed" in str(res["failed"][0][1])


def test_deny_wins_and_revocation_on_open_connections(ab):
    t = unique_topic("deny")
    admin(ab).create_topics([NewTopic(t, 1, 1)])
    create(ab, [allow("bob", ACLOperation.ALL, ResourceType.TOPIC, t)])
    p = Producer(ckhelp._quiet(dict(conf("bob"), **{"bootstrap.servers": ab.sasl,
                                                   "message.timeout.ms": 10000})))
    out = []
    p.produce(t, value=b"1", on_delivery=lambda e, m: out.append(e))
    p.flush(15)
    assert out == [None]
    # a DENY beside the ALLOW: the same open connection is refused now
    create(ab, [allow("bob", ACLOperation.WRITE, ResourceType.TOPIC, t,
                      perm=ACLPermissionType.DENY)])
    p.produce(t, value=b"2", on_delivery=lambda e, m: out.append(e))
    p.flush(15)
    assert out[1] is not None and out[1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # deleting every ACL of bob on the topic: refused (no ACL that allows)
    res = admin(ab).delete_acls([ACLFilter(principal="User:bob", host=None,
                                           operation=ACLOperation.ANY,
                                           permission_type=ACLPermissionType.ANY,
                                           resource_pattern=ResourcePatternFilter(
                                               ResourceType.TOPIC, t,
                                               ACLResourcePatternType.LITERAL))])
    assert len(res[0][1]) == 2  # the two matching ACLs were deleted
    e = produce_one(ab, "bob", t)
    assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_transactional_id_needs_write(ab):
    t = unique_topic("txn")
    admin(ab).create_topics([NewTopic(t, 1, 1)])
    create(ab, [allow("alice", ACLOperation.WRITE, ResourceType.TOPIC, t)])
    p = Producer(ckhelp._quiet(dict(conf("alice"), **{"bootstrap.servers": ab.sasl,
                                                     "transactional.id": "tx-" + t})))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(15)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    create(ab, [allow("alice", ACLOperation.WRITE, ResourceType.TRANSACTIONAL_ID, "tx-" + t)])
    p = Producer(ckhelp._quiet(dict(conf("alice"), **{"bootstrap.servers": ab.sasl,
                                                     "transactional.id": "tx-" + t})))
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(t, value=b"in a transaction")
    p.commit_transaction(15)


def test_anonymous_and_cluster_apis(ab):
    # the plaintext listener's principal is User:ANONYMOUS: nothing is allowed
    md = ckhelp.AdminClient(ckhelp._quiet({"bootstrap.servers": ab.bootstrap}))
    assert md.list_topics(timeout=10).topics == {}
    with kwire.Conn(ab.bootstrap) as c:
        # DescribeAcls v1 without DESCRIBE on the cluster
        body = (kwire.i8(1) + kwire.string(None) + kwire.i8(1) + kwire.string(None)
                + kwire.string(None) + kwire.i8(1) + kwire.i8(1))
        r = kwire.Reader(c.request(29, 1, body))
        r.i32()
        assert r.i16() == 31  # CLUSTER_AUTHORIZATION_FAILED


def test_acls_survive_restart_and_no_acl_rule(tmp_path):
    b = make_broker(tmp_path, {"allow.everyone.if.no.acl.found": "true"})
    b.start()
    try:
        t, closed = unique_topic("open"), unique_topic("closed")
        admin(b).create_topics([NewTopic(t, 1, 1), NewTopic(closed, 1, 1)])
        create(b, [allow("admin", ACLOperation.READ, ResourceType.TOPIC, closed)])
        b.restart()
        # a topic without any ACL is open to everyone (bob), the other is not
        assert produce_one(b, "bob", t) is None
        e = produce_one(b, "bob", closed)
        assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        acls, _ = admin(b).describe_acls(ACLFilter(
            principal=None, host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
        assert [a.resource_pattern.resource_name for a in acls] == [closed]
    finally:
        b.stop(check=True)
        b.cleanup()


def test_security_disabled_without_authorizer(broker):
    with kwire.Conn(broker.bootstrap) as c:
        body = (kwire.i8(1) + kwire.string(None) + kwire.i8(1) + kwire.string(None)
                + kwire.string(None) + kwire.i8(1) + kwire.i8(1))
        r = kwire.Reader(c.request(29, 1, body))
        r.i32()
        assert r.i16() == 54  # SECURITY_DISABLED


def test_cairn_acl_cli(ab):
    http = ["--http", "127.0.0.1:%d" % ab.http_port]
    run = lambda *a: subprocess.run([ab.bin, "acl", *a, *http], capture_output=True, text=True,
                                    timeout=30)
    t = unique_topic("cli")
    admin(ab).create_topics([NewTopic(t, 1, 1)])
    r = run("add", "--allow", "User:bob", "--operation", "Write", "--operation", "Describe",
            "--topic", t[:6], "--prefixed")
    assert r.returncode == 0, r.stderr
    assert "Prefixed" in r.stdout and "Write" in r.stdout
    assert produce_one(ab, "bob", t) is None
    out = run("list", "--principal", "User:bob", "--topic", t[:6], "--prefixed").stdout
    assert out.count("User:bob") == 2
    r = run("delete", "--principal", "User:bob", "--topic", t[:6], "--prefixed",
            "--operation", "Write")
    assert r.returncode == 0 and "Write" in r.stdout
    e = produce_one(ab, "bob", t)
    assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    r = run("add", "--allow", "bob", "--operation", "Read", "--topic", "x")
    assert r.returncode != 0 and "User:alice" in r.stderr
    r = run("add", "--allow", "User:bob", "--operation", "Fly", "--topic", "x")
    assert r.returncode != 0 and "unknown operation" in r.stderr


def test_http_basic_auth_and_acls(tmp_path):
    b = make_broker(tmp_path, {"http.authentication": "basic"})
    b.start()
    try:
        base = "http://127.0.0.1:%d" % b.http_port

        def curl(path, user=None, method="GET", data=None):
            argv = ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "-X", method,
                    base + path]
            if user:
                argv += ["-u", "%s:%s" % user]
            if data:
                argv += ["-H", "Content-Type: application/json", "-d", data]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return int(r.stdout), r.stderr

        assert curl("/healthz")[0] == 200  # open to all
        st, body = curl("/topics")
        assert st == 401 and "unauthorized" in body
        r = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", base + "/topics"],
                           capture_output=True, text=True, timeout=30)
        assert 'WWW-Authenticate: Basic realm="cairn"' in r.stdout
        assert curl("/topics", ("alice", "wrong"))[0] == 401
        st, body = curl("/broker", ("alice", PW["alice"]))
        assert st == 403 and "User:alice may not Describe the cluster" in body
        assert curl("/topics", ("admin", PW["admin"]))[0] == 200
        # the CLI logs in from the environment
        env = dict(os.environ, CAIRN_USER="admin", CAIRN_PASSWORD=PW["admin"])
        t = unique_topic("http")
        for cmd in (["topic", "create", t], ["acl", "add", "--allow", "User:alice", "--operation",
                                             "Write", "--topic", t]):
            r = subprocess.run([b.bin, *cmd, "--http", "127.0.0.1:%d" % b.http_port],
                               capture_output=True, text=True, env=env, timeout=30)
            assert r.returncode == 0, r.stderr
        r = subprocess.run([b.bin, "topic", "list", "--http", "127.0.0.1:%d" % b.http_port],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "401" in r.stderr
        st, body = curl("/topics/%s/records" % t, ("alice", PW["alice"]), "POST",
                        '{"records": [{"value": "v"}]}')
        assert st == 200, body
        st, body = curl("/topics/%s/partitions/0/records" % t, ("alice", PW["alice"]))
        assert st == 403 and "may not Read" in body
        # listings show what she may describe (Write implies Describe), as Metadata does
        st, body = curl("/topics", ("alice", PW["alice"]))
        assert st == 200 and [x["name"] for x in json.loads(body)["topics"]] == [t], body
        st, body = curl("/topics", ("admin", PW["admin"]))
        assert st == 200 and t in [x["name"] for x in json.loads(body)["topics"]], body
    finally:
        b.stop(check=True)
        b.cleanup()
