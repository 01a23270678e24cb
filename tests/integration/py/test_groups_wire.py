"""Group protocol edge cases with hand-encoded requests (no client sends these).

Non-flexible encodings only: FindCoordinator v0, JoinGroup v1/v4, SyncGroup v0,
Heartbeat v0, LeaveGroup v0, OffsetCommit v2, OffsetFetch v1 (see
../shared/protocol/kafka/messages/*.json and NOTES.md section 9).
"""
import os
import time

import pytest

import kwire
from kwire import Conn, Reader, i16, i32, i64, nbytes, string
from ckhelp import create_topic

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79

MAX_METADATA = 4096  # offset.metadata.max.bytes default


@pytest.fixture(scope="module")
def broker_settings():
    return {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}


def gname():
    return "wire-%s" % os.urandom(6).hex()


def subscription(topics):
    """ConsumerProtocolSubscription v0 (opaque to the broker)."""
    b = i16(0) + i32(len(topics))
    for t in topics:
        b += string(t)
    return b + nbytes(b"")


def assignment(topic, parts):
    return i16(0) + i32(1) + string(topic) + i32(len(parts)) + b"".join(i32(p) for p in parts) \
        + nbytes(b"")


# ---------------------------------------------------------------- encoders / decoders

def find_coordinator_v0(c, group):
    r = Reader(c.request(10, 0, string(group)))
    return dict(error=r.i16(), node_id=r.i32(), host=r.string(), port=r.i32())


def join_body(version, group, member_id, protocols, session_ms=10000, rebalance_ms=10000,
              instance_id=None):
    b = string(group) + i32(session_ms)
    if version >= 1:
        b += i32(rebalance_ms)
    b += string(member_id)
    if version >= 5:
        b += string(instance_id)
    b += string("consumer") + i32(len(protocols))
    for name, meta in protocols:
        b += string(name) + nbytes(meta)
    return b


def parse_join(version, body):
    r = Reader(body)
    if version >= 2:
        r.i32()
    d = dict(error=r.i16(), generation=r.i32(), protocol=r.string(), leader=r.string(),
             member_id=r.string(), members=[])
    for _ in range(r.i32()):
        mid = r.string()
        if version >= 5:
            r.string()
        d["members"].append((mid, r.nbytes()))
    return d


def join(c, version, group, member_id, topic, **kw):
    return parse_join(version, c.request(11, version, join_body(
        version, group, member_id, [("range", subscription([topic]))], **kw)))


def send_join(c, version, group, member_id, topic, **kw):
    """Send a JoinGroup without waiting (the coordinator may park it)."""
    body = join_body(version, group, member_id, [("range", subscription([topic]))], **kw)
    c.corr += 1
    hdr = i16(11) + i16(version) + i32(c.corr) + string("cairn-it")
    c.send_raw(i32(len(hdr) + len(body)) + hdr + body)
    return c.corr


def recv_join(c, version, corr):
    resp = c.recv_frame()
    assert Reader(resp).i32() == corr
    return parse_join(version, resp[4:])


def sync_body(group, gen, member_id, assignments):
    b = string(group) + i32(gen) + string(member_id) + i32(len(assignments))
    for mid, a in assignments:
        b += string(mid) + nbytes(a)
    return b


def sync_v0(c, group, gen, member_id, assignments=()):
    r = Reader(c.request(14, 0, sync_body(group, gen, member_id, list(assignments))))
    return r.i16(), r.nbytes()


def heartbeat_v0(c, group, gen, member_id):
    return Reader(c.request(12, 0, string(group) + i32(gen) + string(member_id))).i16()


def leave_v0(c, group, member_id):
    return Reader(c.request(13, 0, string(group) + string(member_id))).i16()


def offset_commit_v2(c, group, gen, member_id, offsets):
    """offsets: {topic: [(partition, offset, metadata)]} -> {(topic, partition): error}"""
    b = string(group) + i32(gen) + string(member_id) + i64(-1) + i32(len(offsets))
    for t, parts in offsets.items():
        b += string(t) + i32(len(parts))
        for p, off, meta in parts:
            b += i32(p) + i64(off) + string(meta)
    r = Reader(c.request(8, 2, b))
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return out


def offset_fetch_v1(c, group, topic, parts):
    b = string(group) + i32(1) + string(topic) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    r = Reader(c.request(9, 1, b))
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = (r.i64(), r.string(), r.i16())
    return out


def new_stable_group(c, group, topic):
    """One member, joined and synced -> (member_id, generation)."""
    fc = find_coordinator_v0(c, group)
    assert fc["error"] == NONE and fc["node_id"] == 1, fc
    j = join(c, 1, group, "", topic)
    assert j["error"] == NONE, j
    assert j["member_id"] and j["leader"] == j["member_id"], j
    assert j["generation"] >= 1 and j["protocol"] == "range", j
    assert [m[0] for m in j["members"]] == [j["member_id"]]
    assert j["members"][0][1] == subscription([topic]), "member metadata not passed through"
    a = assignment(topic, [0, 1])
    err, got = sync_v0(c, group, j["generation"], j["member_id"], [(j["member_id"], a)])
    assert err == NONE and got == a, (err, got)
    return j["member_id"], j["generation"]


# ---------------------------------------------------------------- tests

@pytest.mark.cairn_timeout(60)
def test_offset_commit_errors_per_partition(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    g = gname()
    with Conn(broker.bootstrap) as c:
        mid, gen = new_stable_group(c, g, topic)
        assert heartbeat_v0(c, g, gen, mid) == NONE

        res = offset_commit_v2(c, g, gen, mid, {
            topic: [(0, 5, "ok"), (1, 7, "x" * (MAX_METADATA + 1)), (99, 1, None)],
            "no-such-topic-" + g: [(0, 1, None)],
        })
        assert res == {(topic, 0): NONE, (topic, 1): OFFSET_METADATA_TOO_LARGE,
                       (topic, 99): UNKNOWN_TOPIC_OR_PARTITION,
                       ("no-such-topic-" + g, 0): UNKNOWN_TOPIC_OR_PARTITION}, res
        f = offset_fetch_v1(c, g, topic, [0, 1])
        assert f[(topic, 0)] == (5, "ok", NONE), f
        assert f[(topic, 1)][0] == -1 and f[(topic, 1)][2] == NONE, f   # rejected: not stored

        # metadata of exactly the limit is fine
        res = offset_commit_v2(c, g, gen, mid, {topic: [(1, 8, "m" * MAX_METADATA)]})
        assert res == {(topic, 1): NONE}
        assert offset_fetch_v1(c, g, topic, [1])[(topic, 1)] == (8, "m" * MAX_METADATA, NONE)

        # unknown member / wrong generation: every partition gets the error
        res = offset_commit_v2(c, g, gen, "bogus-member", {topic: [(0, 9, None), (1, 9, None)]})
        assert res == {(topic, 0): UNKNOWN_MEMBER_ID, (topic, 1): UNKNOWN_MEMBER_ID}, res
        res = offset_commit_v2(c, g, gen + 1, mid, {topic: [(0, 9, None)]})
        assert res == {(topic, 0): ILLEGAL_GENERATION}, res
        # a "simple" commit (generation -1, no member) while the group has members
        res = offset_commit_v2(c, g, -1, "", {topic: [(0, 9, None)]})
        assert res == {(topic, 0): UNKNOWN_MEMBER_ID}, res
        assert offset_fetch_v1(c, g, topic, [0])[(topic, 0)][0] == 5, "rejected commit stored"

        assert heartbeat_v0(c, g, gen, "bogus-member") == UNKNOWN_MEMBER_ID
        assert heartbeat_v0(c, g, gen + 1, mid) == ILLEGAL_GENERATION
        assert sync_v0(c, g, gen + 1, mid)[0] == ILLEGAL_GENERATION

        assert leave_v0(c, g, mid) == NONE
        assert heartbeat_v0(c, g, gen, mid) == UNKNOWN_MEMBER_ID
        # now empty: a simple commit is accepted, and the old offsets are kept
        res = offset_commit_v2(c, g, -1, "", {topic: [(0, 11, "simple")]})
        assert res == {(topic, 0): NONE}, res
        f = offset_fetch_v1(c, g, topic, [0, 1])
        assert f[(topic, 0)] == (11, "simple", NONE) and f[(topic, 1)][0] == 8, f
    assert broker.alive()
    err, apis = kwire.api_versions(broker.bootstrap)
    assert err == 0 and 11 in apis


@pytest.mark.cairn_timeout(60)
def test_stale_generation_after_rebalance(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    g = gname()
    with Conn(broker.bootstrap) as a, Conn(broker.bootstrap) as b:
        mid_a, gen1 = new_stable_group(a, g, topic)
        assert offset_commit_v2(a, g, gen1, mid_a, {topic: [(0, 3, None)]}) == {(topic, 0): NONE}

        corr_b = send_join(b, 1, g, "", topic)          # parked until A rejoins
        # A learns about the rebalance from its heartbeat (retry: B's join may not
        # have been processed yet)
        hb = NONE
        for _ in range(50):
            hb = heartbeat_v0(a, g, gen1, mid_a)
            if hb == REBALANCE_IN_PROGRESS:
                break
            time.sleep(0.05)
        assert hb == REBALANCE_IN_PROGRESS, hb
        ja = join(a, 1, g, mid_a, topic)
        jb = recv_join(b, 1, corr_b)
        assert ja["error"] == NONE and jb["error"] == NONE, (ja, jb)
        gen2 = ja["generation"]
        assert gen2 > gen1 and jb["generation"] == gen2
        assert ja["leader"] == jb["leader"] == mid_a, "old leader should stay leader"
        assert sorted(m[0] for m in ja["members"]) == sorted([mid_a, jb["member_id"]])
        assert jb["members"] == [], "followers get no member list"

        # follower's SyncGroup is parked until the leader's arrives
        sb = sync_body(g, gen2, jb["member_id"], [])
        b.corr += 1
        hdr = i16(14) + i16(0) + i32(b.corr) + string("cairn-it")
        b.send_raw(i32(len(hdr) + len(sb)) + hdr + sb)
        corr_sb = b.corr
        asg_a, asg_b = assignment(topic, [0]), assignment(topic, [1])
        err, got = sync_v0(a, g, gen2, mid_a, [(mid_a, asg_a), (jb["member_id"], asg_b)])
        assert (err, got) == (NONE, asg_a)
        resp = b.recv_frame()
        r = Reader(resp)
        assert r.i32() == corr_sb
        assert (r.i16(), r.nbytes()) == (NONE, asg_b)

        # the old generation is now stale
        res = offset_commit_v2(a, g, gen1, mid_a, {topic: [(0, 4, None)]})
        assert res == {(topic, 0): ILLEGAL_GENERATION}, res
        assert heartbeat_v0(a, g, gen1, mid_a) == ILLEGAL_GENERATION
        res = offset_commit_v2(b, g, gen2, jb["member_id"], {topic: [(1, 6, None)]})
        assert res == {(topic, 1): NONE}, res
        f = offset_fetch_v1(a, g, topic, [0, 1])
        assert f[(topic, 0)][0] == 3 and f[(topic, 1)][0] == 6, f
        assert leave_v0(b, g, jb["member_id"]) == NONE
        assert leave_v0(a, g, mid_a) == NONE
    assert broker.alive()


@pytest.mark.cairn_timeout(60)
def test_join_member_id_required_and_session_timeout_bounds(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    g = gname()
    with Conn(broker.bootstrap) as c:
        # KIP-394: v4 without an instance id must first fetch a member id
        j = join(c, 4, g, "", topic)
        assert j["error"] == MEMBER_ID_REQUIRED and j["member_id"], j
        mid = j["member_id"]
        j2 = join(c, 4, g, mid, topic)
        assert j2["error"] == NONE and j2["member_id"] == mid and j2["leader"] == mid, j2
        assert sync_v0(c, g, j2["generation"], mid, [(mid, assignment(topic, [0]))])[0] == NONE
        # an unknown (non-empty) member id is refused
        assert join(c, 4, g, "never-issued", topic)["error"] == UNKNOWN_MEMBER_ID
        # session timeout outside [group.min.session.timeout.ms, max]
        j3 = join(c, 1, gname(), "", topic, session_ms=500)
        assert j3["error"] == INVALID_SESSION_TIMEOUT, j3
        j4 = join(c, 1, gname(), "", topic, session_ms=1800001)
        assert j4["error"] == INVALID_SESSION_TIMEOUT, j4
        assert leave_v0(c, g, mid) == NONE
    assert broker.alive()


GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86


def offset_delete_v0(c, group, offsets):
    """offsets: {topic: [partition]} -> (top-level error, {(topic, partition): error})"""
    b = string(group) + i32(len(offsets))
    for t, parts in offsets.items():
        b += string(t) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    r = Reader(c.request(47, 0, b))
    err = r.i16()
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return err, out


@pytest.mark.cairn_timeout(60)
def test_offset_delete(broker, topic_name):
    subscribed, other = topic_name("od-sub"), topic_name("od-other")
    create_topic(broker.bootstrap, subscribed, 1)
    create_topic(broker.bootstrap, other, 1)
    g = gname()
    with Conn(broker.bootstrap) as c:
        mid, gen = new_stable_group(c, g, subscribed)   # subscription lists only `subscribed`
        res = offset_commit_v2(c, g, gen, mid, {subscribed: [(0, 4, None)], other: [(0, 6, None)]})
        assert res == {(subscribed, 0): NONE, (other, 0): NONE}, res
        # active consumer group: offsets of a subscribed topic cannot be deleted
        err, parts = offset_delete_v0(c, g, {subscribed: [0], other: [0]})
        assert err == NONE, err
        assert parts == {(subscribed, 0): GROUP_SUBSCRIBED_TO_TOPIC, (other, 0): NONE}, parts
        assert offset_fetch_v1(c, g, subscribed, [0])[(subscribed, 0)][0] == 4
        assert offset_fetch_v1(c, g, other, [0])[(other, 0)][0] == -1
        # once empty, they can
        assert leave_v0(c, g, mid) == NONE
        err, parts = offset_delete_v0(c, g, {subscribed: [0]})
        assert (err, parts) == (NONE, {(subscribed, 0): NONE}), (err, parts)
        assert offset_fetch_v1(c, g, subscribed, [0])[(subscribed, 0)][0] == -1
        # unknown group
        err, _ = offset_delete_v0(c, gname(), {subscribed: [0]})
        assert err == GROUP_ID_NOT_FOUND, err
    assert broker.alive()
