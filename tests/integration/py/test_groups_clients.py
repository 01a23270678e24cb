"""Consumer groups through kafka-python 2.0.2 and kcat 1.7.1 (-G), and the group
admin APIs (ListGroups, DescribeGroups, OffsetFetch, DeleteGroups) through
confluent_kafka's legacy list_groups and kafka-python's KafkaAdminClient.
"""
import json
import logging
import os
import shutil
import subprocess
import threading
import time

import pytest
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition as KTP
from kafka.structs import OffsetAndMetadata
from confluent_kafka import TopicPartition

import ckhelp
from ckhelp import Deliveries, create_topic, flush, producer

logging.getLogger("kafka").setLevel(logging.CRITICAL)

COMMON = dict(api_version_auto_timeout_ms=10000, request_timeout_ms=15000,
              reconnect_backoff_max_ms=1000)


@pytest.fixture(scope="module")
def broker_settings():
    return {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}


def gname(prefix="g"):
    return "%s-%s" % (prefix, os.urandom(6).hex())


def produce_n(bootstrap, topic, nparts, start, count):
    d = Deliveries()
    p = producer(bootstrap, acks="all")
    for i in range(start, start + count):
        p.produce(topic, value=b"%d" % i, partition=i % nparts, on_delivery=d.cb(i))
    flush(p)
    assert not d.failed


def kp_group_consumer(broker, group, **kw):
    c = dict(COMMON, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
             session_timeout_ms=6000, heartbeat_interval_ms=500, max_poll_interval_ms=10000)
    c.update(kw)
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, **c)


def kp_admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, **COMMON)


def kp_poll_values(c, want, timeout=30):
    out = []
    deadline = time.time() + timeout
    while len(out) < want and time.time() < deadline:
        for recs in c.poll(timeout_ms=300).values():
            out.extend(recs)
    return out


def cf_committed(broker, group, topic, parts):
    c = ckhelp.consumer(broker.bootstrap, **{"group.id": group})
    try:
        return {tp.partition: tp.offset for tp in
                c.committed([TopicPartition(topic, p) for p in parts], timeout=10)}
    finally:
        c.close()


# ---------------------------------------------------------------- kafka-python

@pytest.mark.cairn_timeout(90)
def test_kafka_python_group_roundtrip(broker, topic):
    create_topic(broker.bootstrap, topic, 3)
    produce_n(broker.bootstrap, topic, 3, 0, 30)
    g = gname("kp")
    c = kp_group_consumer(broker, g)
    try:
        c.subscribe([topic])
        recs = kp_poll_values(c, 30)
        assert sorted(int(r.value) for r in recs) == list(range(30))
        assert c.assignment() == {KTP(topic, p) for p in range(3)}
        # commit what was processed, partly: partition 0 fully, 1 up to 4, 2 nothing
        c.commit({KTP(topic, 0): OffsetAndMetadata(10, "kp-meta"),
                  KTP(topic, 1): OffsetAndMetadata(4, None)})
        assert c.committed(KTP(topic, 0)) == 10
        assert c.committed(KTP(topic, 1)) == 4
        assert c.committed(KTP(topic, 2)) is None
    finally:
        c.close()  # LeaveGroup v1
    assert cf_committed(broker, g, topic, [0, 1]) == {0: 10, 1: 4}

    # a new member of the group resumes at the commits (earliest for partition 2)
    c = kp_group_consumer(broker, g)
    try:
        c.subscribe([topic])
        recs = kp_poll_values(c, 6 + 10)
        got = sorted((r.partition, r.offset) for r in recs)
        assert got == [(1, o) for o in range(4, 10)] + [(2, o) for o in range(10)], got
        c.commit()  # commit the positions
        assert {p: c.committed(KTP(topic, p)) for p in range(3)} == {0: 10, 1: 10, 2: 10}
    finally:
        c.close()


@pytest.mark.cairn_timeout(90)
def test_kafka_python_two_members_split_partitions(broker, topic):
    # One thread per consumer: kafka-python blocks inside poll() while it
    # (re)joins, so polling two members from one thread would deadlock the
    # rebalance until the rebalance timeout.
    create_topic(broker.bootstrap, topic, 4)
    produce_n(broker.bootstrap, topic, 4, 0, 40)
    g = gname("kp2")
    stop = threading.Event()
    lock = threading.Lock()
    got = {}           # (partition, offset) -> [member names]
    owned = {}         # member name -> assignment after its last poll
    errors = []

    def run(name):
        try:
            c = kp_group_consumer(broker, g)
            try:
                c.subscribe([topic])
                while not stop.is_set():
                    recs = c.poll(timeout_ms=200)
                    with lock:
                        for rs in recs.values():
                            for r in rs:
                                got.setdefault((r.partition, r.offset), []).append((name, int(r.value)))
                        owned[name] = {tp.partition for tp in c.assignment()}
                    if recs:
                        c.commit()
            finally:
                c.close()
        except Exception as e:  # surfaced below
            errors.append((name, e))

    ths = [threading.Thread(target=run, args=(n,), daemon=True) for n in ("a", "b")]
    for t in ths:
        t.start()

    def stable():
        with lock:
            oa, ob = owned.get("a"), owned.get("b")
            return bool(oa and ob and not (oa & ob) and oa | ob == {0, 1, 2, 3}) and len(got) == 40

    try:
        deadline = time.time() + 40
        while not stable() and time.time() < deadline and not errors:
            time.sleep(0.1)
        assert not errors, errors
        assert stable(), (owned, len(got))
        time.sleep(1.0)
        assert stable(), "assignment changed after settling: %s" % owned
        with lock:
            oa, ob = set(owned["a"]), set(owned["b"])
        # once stable, new records go to the member that owns their partition
        produce_n(broker.bootstrap, topic, 4, 40, 8)
        deadline = time.time() + 20
        while time.time() < deadline:
            with lock:
                late = {k: v for k, v in got.items() if v[0][1] >= 40}
            if len(late) == 8:
                break
            time.sleep(0.1)
        assert len(late) == 8, late
        for (p, o), readers in late.items():
            assert [x[0] for x in readers] == ["a" if p in oa else "b"], (p, o, readers, oa, ob)
    finally:
        stop.set()
        for t in ths:
            t.join(20)
    assert not errors, errors


# ---------------------------------------------------------------- kcat -G

KCAT = shutil.which("kcat")


def kcat_group(broker, group, topic, *args, timeout=40):
    argv = ["kcat", "-b", broker.bootstrap, "-X", "log_level=3", "-X", "auto.offset.reset=earliest",
            "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", "-J", *args,
            "-G", group, topic]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    assert r.returncode == 0, "kcat %s exited %d: %s" % (argv, r.returncode, r.stderr[-3000:])
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.startswith("{")]


@pytest.mark.skipif(KCAT is None, reason="kcat not installed")
@pytest.mark.cairn_timeout(90)
def test_kcat_balanced_consumer_commits_on_exit(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    produce_n(broker.bootstrap, topic, 1, 0, 20)
    g = gname("kcat")
    # -c 8: exit after 8 records; auto commit (the default) commits on close
    first = kcat_group(broker, g, topic, "-c", "8")
    assert [m["offset"] for m in first] == list(range(8))
    assert [m["payload"] for m in first] == [str(i) for i in range(8)]
    assert cf_committed(broker, g, topic, [0]) == {0: 8}
    # -e in balanced mode: exit once every assigned partition reached its end
    rest = kcat_group(broker, g, topic, "-e")
    assert [m["offset"] for m in rest] == list(range(8, 20))
    assert cf_committed(broker, g, topic, [0]) == {0: 20}


# ---------------------------------------------------------------- admin

def _wait_stable_member(broker, group, topic, timeout=30):
    c = ckhelp.consumer(broker.bootstrap, **{"group.id": group, "session.timeout.ms": 6000,
                                             "heartbeat.interval.ms": 500,
                                             "client.id": "cairn-it-admin-member"})
    c.subscribe([topic])
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline and (n < 3 or not c.assignment()):
        m = c.poll(0.3)
        if m is not None and m.error() is None:
            n += 1
            c.commit(message=m, asynchronous=False)
    assert c.assignment(), "member never got an assignment"
    return c


@pytest.mark.cairn_timeout(90)
def test_admin_list_describe_offsets_delete(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    produce_n(broker.bootstrap, topic, 2, 0, 10)
    g = gname("adm")
    member = _wait_stable_member(broker, g, topic)
    closed = False
    adm = kp_admin(broker)
    try:
        # confluent_kafka legacy list_groups: ListGroups v0 + DescribeGroups v0
        a = ckhelp.admin(broker.bootstrap)
        groups = {x.id: x for x in a.list_groups(timeout=10)}
        assert g in groups, sorted(groups)
        one = a.list_groups(g, timeout=10)
        assert len(one) == 1
        gm = one[0]
        assert gm.error is None and gm.state == "Stable", (gm.error, gm.state)
        assert gm.protocol_type == "consumer" and gm.protocol in ("range", "roundrobin")
        assert len(gm.members) == 1
        assert gm.members[0].client_id == "cairn-it-admin-member"
        assert gm.members[0].metadata and gm.members[0].assignment, "opaque bytes missing"

        # kafka-python admin
        assert (g, "consumer") in adm.list_consumer_groups()
        d = adm.describe_consumer_groups([g])[0]
        assert d.group == g and d.state == "Stable" and d.protocol_type == "consumer", d
        assert len(d.members) == 1
        assignment = d.members[0].member_assignment
        assert sorted(p for t, ps in assignment.assignment for p in ps) == [0, 1]
        offs = adm.list_consumer_group_offsets(g)
        assert {tp.partition for tp in offs if tp.topic == topic} <= {0, 1} and offs

        # non-empty group cannot be deleted
        res = dict(adm.delete_consumer_groups([g]))
        assert res[g] is kafka.errors.NonEmptyGroupError, res
        assert adm.list_consumer_group_offsets(g) == offs

        member.close()
        closed = True
        d = adm.describe_consumer_groups([g])[0]
        assert d.state == "Empty" and d.members == [], d
        res = dict(adm.delete_consumer_groups([g]))
        assert res[g] is kafka.errors.NoError, res
        assert adm.list_consumer_group_offsets(g) == {}
        assert g not in {x[0] for x in adm.list_consumer_groups()}
        assert cf_committed(broker, g, topic, [0, 1]) == {0: -1001, 1: -1001}
        # deleting it again: it is gone
        res = dict(adm.delete_consumer_groups([g]))
        assert res[g] is kafka.errors.GroupIdNotFoundError, res
    finally:
        if not closed:
            member.close()
        adm.close()
    assert broker.alive()
