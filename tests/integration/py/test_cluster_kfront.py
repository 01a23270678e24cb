"""The Kafka front end of a replicated cluster (cluster plan step 6), with
three real cairn processes and raw wire requests (kwire.py):
- a leader whose followers are both stopped (SIGSTOP) parks an acks=all
  produce until the request's timeout_ms (REQUEST_TIMED_OUT), then, once
  it has heard from no majority for half the election timeout, answers
  acks=all and acks=1 at once with NOT_ENOUGH_REPLICAS; after SIGCONT
  produce works again;
- OffsetForLeaderEpoch answers the end of each epoch on the leader, before
  and after a leader change (kill -9), with Kafka's undefined answer above
  the latest epoch; Fetch v9, ListOffsets v4 and OffsetForLeaderEpoch fence
  an older current_leader_epoch (FENCED_LEADER_EPOCH) and a newer one
  (UNKNOWN_LEADER_EPOCH);
- Metadata from the leader: replicas = the group, leader_epoch = the term,
  the ISR shrinks when a follower stops answering and grows back, a killed
  node is an offline replica;
- a single node answers OffsetForLeaderEpoch for its one epoch (0).
"""
import os
import signal
import struct
import time

from cairn_broker import Broker, free_port, unique_topic
from kwire import (Conn, build_record_batch, crc32c, fetch_v9, list_offsets_v4, metadata_v7,
                   offset_for_leader_epoch_v3, parse_produce_v3, produce_v3_body)
from test_cluster_basic import Cluster, create_everywhere

NONE, REQUEST_TIMED_OUT, NOT_LEADER, NOT_ENOUGH_REPLICAS = 0, 7, 6, 19
FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 74, 75


def produce_raw(bootstrap, topic, value, acks=-1, timeout_ms=10000):
    batch = build_record_batch([(b"k", value, [], None)])
    with Conn(bootstrap, timeout=30) as c:
        body = produce_v3_body(topic, 0, batch, acks=acks, timeout_ms=timeout_ms)
        err, base, _ = parse_produce_v3(c.request(0, 3, body))[(topic, 0)]
    return err, base


def leader_md(c, topic, exclude=(), timeout=30):
    """(leader id, its Metadata of partition 0) once a live node reports a leader
    that itself claims the lead with the same epoch."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for b in c.nodes:
            if not b.alive():
                continue
            try:
                with Conn(b.bootstrap, timeout=5) as conn:
                    pm = metadata_v7(conn, [topic])["partitions"].get((topic, 0))
                if pm is None or pm["leader"] <= 0 or pm["leader"] in exclude:
                    continue
                ln = c.node(pm["leader"])
                if not ln.alive():
                    continue
                with Conn(ln.bootstrap, timeout=5) as conn:
                    lm = metadata_v7(conn, [topic])["partitions"][(topic, 0)]
                if lm["leader"] == pm["leader"] and lm["error"] == NONE:
                    return pm["leader"], lm
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError("no leader for %s" % topic)


def produce_until_ok(c, topic, value, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        lid, _ = leader_md(c, topic)
        err, base = produce_raw(c.node(lid).bootstrap, topic, value)
        if err == NONE:
            return lid, base
        last = err
        time.sleep(0.2)
    raise AssertionError("produce never succeeded (last error %s)" % last)


def test_no_quorum_times_out_then_fails_fast(tmp_path):
    # A longer election timeout: the leader steps down (libraft's check of
    # its quorum) only after it, and the contact window is half of it.
    c = Cluster(tmp_path, settings={"cluster.election.timeout.ms": 3000}).start()
    try:
        topic = unique_topic("nq")
        create_everywhere(c, topic, 1)
        lid, base = produce_until_ok(c, topic, b"first")
        leader = c.node(lid)
        followers = [b for b in c.nodes if b is not leader]
        stopped_at = time.time()
        for f in followers:
            os.kill(f.proc.pid, signal.SIGSTOP)
        try:
            # Contact is still recent: parked, never committed, timed out.
            t0 = time.time()
            err, _ = produce_raw(leader.bootstrap, topic, b"parked", timeout_ms=500)
            took = time.time() - t0
            assert err == REQUEST_TIMED_OUT, err
            assert 0.4 <= took < 1.4, took
            # Past half the election timeout without a majority: fail fast.
            time.sleep(max(0.0, stopped_at + 1.9 - time.time()))
            for acks in (-1, 1):
                t0 = time.time()
                err, off = produce_raw(leader.bootstrap, topic, b"nq", acks=acks)
                assert err == NOT_ENOUGH_REPLICAS, (acks, err)
                assert off == -1
                assert time.time() - t0 < 0.5
        finally:
            for f in followers:
                os.kill(f.proc.pid, signal.SIGCONT)
        _, base2 = produce_until_ok(c, topic, b"after")
        assert base2 > base
    finally:
        c.stop()


def test_leader_epochs_and_fencing_across_a_leader_change(tmp_path):
    c = Cluster(tmp_path).start()
    try:
        topic = unique_topic("ep")
        create_everywhere(c, topic, 1)
        lid, _ = produce_until_ok(c, topic, b"v0")
        for i in range(1, 3):
            err, _ = produce_raw(c.node(lid).bootstrap, topic, b"v%d" % i)
            assert err == NONE
        l1, md1 = leader_md(c, topic)
        assert l1 == lid
        e1 = md1["epoch"]
        assert e1 >= 1
        assert sorted(md1["replicas"]) == [1, 2, 3]
        b1 = c.node(l1).bootstrap
        with Conn(b1) as conn:
            err, hw1, ep = list_offsets_v4(conn, topic, 0, -1, current_leader_epoch=e1)
            assert (err, ep) == (NONE, e1) and hw1 == 3
            # The current epoch ends at the log end; above it: undefined.
            assert offset_for_leader_epoch_v3(conn, topic, 0, e1, e1) == (NONE, e1, 3)
            assert offset_for_leader_epoch_v3(conn, topic, 0, e1 + 5) == (NONE, -1, -1)
            # Fencing (KIP-320) in the three APIs that carry current_leader_epoch.
            for cur, want in ((e1 - 1, FENCED_LEADER_EPOCH), (e1 + 1, UNKNOWN_LEADER_EPOCH)):
                assert offset_for_leader_epoch_v3(conn, topic, 0, e1, cur)[0] == want
                assert fetch_v9(conn, topic, 0, 0, current_leader_epoch=cur)["error"] == want
                assert list_offsets_v4(conn, topic, 0, -1, current_leader_epoch=cur)[0] == want
            f = fetch_v9(conn, topic, 0, 0, current_leader_epoch=e1)
            assert f["error"] == NONE and f["high_watermark"] == 3 and f["records"]
        c.node(l1).kill9()
        l2, _ = produce_until_ok(c, topic, b"v3")
        assert l2 != l1
        err, _ = produce_raw(c.node(l2).bootstrap, topic, b"v4")
        assert err == NONE
        _, md2 = leader_md(c, topic)
        e2 = md2["epoch"]
        assert e2 > e1
        assert l1 in md2["offline"] and l1 not in md2["isr"] and l2 in md2["isr"]
        b2 = c.node(l2).bootstrap
        with Conn(b2) as conn:
            # Epoch e1 ended where the new leader began: after the 3 records.
            assert offset_for_leader_epoch_v3(conn, topic, 0, e1, e2) == (NONE, e1, 3)
            for between in range(e1 + 1, e2):
                assert offset_for_leader_epoch_v3(conn, topic, 0, between) == (NONE, e1, 3)
            assert offset_for_leader_epoch_v3(conn, topic, 0, e2, e2) == (NONE, e2, 5)
            # A client still on the old leader's epoch is fenced here.
            assert fetch_v9(conn, topic, 0, 0, current_leader_epoch=e1)["error"] == \
                FENCED_LEADER_EPOCH
            assert fetch_v9(conn, topic, 0, 3, current_leader_epoch=e2)["error"] == NONE
        # The old leader comes back: in the ISR again once caught up.
        c.node(l1).start()
        deadline = time.time() + 20
        while True:
            _, md = leader_md(c, topic)
            if sorted(md["isr"]) == [1, 2, 3] and not md["offline"]:
                break
            assert time.time() < deadline, md
            time.sleep(0.2)
    finally:
        c.stop()


def test_isr_shrinks_and_grows_with_a_stopped_follower(tmp_path):
    c = Cluster(tmp_path).start()
    try:
        topic = unique_topic("isr")
        create_everywhere(c, topic, 1)
        lid, _ = produce_until_ok(c, topic, b"x")
        leader = c.node(lid)

        def isr():
            with Conn(leader.bootstrap) as conn:
                md = metadata_v7(conn, [topic])
            pm = md["partitions"][(topic, 0)]
            assert pm["leader"] == lid, pm
            return sorted(pm["isr"])

        def wait_isr(want, timeout=10):
            deadline = time.time() + timeout
            while isr() != want:
                assert time.time() < deadline, (isr(), want)
                time.sleep(0.1)

        wait_isr([1, 2, 3])
        f = next(b for b in c.nodes if b is not leader)
        fid = c.nodes.index(f) + 1
        os.kill(f.proc.pid, signal.SIGSTOP)
        try:
            wait_isr(sorted({1, 2, 3} - {fid}))
            # One follower left: a majority, produce still commits.
            assert produce_raw(leader.bootstrap, topic, b"y")[0] == NONE
        finally:
            os.kill(f.proc.pid, signal.SIGCONT)
        assert produce_raw(leader.bootstrap, topic, b"z")[0] == NONE
        wait_isr([1, 2, 3])
    finally:
        c.stop()


def test_single_node_answers_its_one_epoch(tmp_path):
    b = Broker(tmp_path / "d", tmp_path / "n.log")
    b.start()
    try:
        topic = unique_topic("one")
        with Conn(b.bootstrap) as conn:
            metadata_v7(conn, [topic], auto_create=True)
        assert produce_raw(b.bootstrap, topic, b"a")[0] == NONE
        assert produce_raw(b.bootstrap, topic, b"b")[0] == NONE
        with Conn(b.bootstrap) as conn:
            pm = metadata_v7(conn, [topic])["partitions"][(topic, 0)]
            assert pm["epoch"] == 0 and pm["isr"] == [1] and pm["replicas"] == [1]
            assert offset_for_leader_epoch_v3(conn, topic, 0, 0, 0) == (NONE, 0, 2)
            assert offset_for_leader_epoch_v3(conn, topic, 0, 1) == (NONE, -1, -1)
            assert offset_for_leader_epoch_v3(conn, topic, 0, 0, 1)[0] == UNKNOWN_LEADER_EPOCH
            assert fetch_v9(conn, topic, 0, 0, current_leader_epoch=0)["error"] == NONE
            assert fetch_v9(conn, topic, 0, 0, current_leader_epoch=1)["error"] == \
                UNKNOWN_LEADER_EPOCH
    finally:
        b.stop()


def producer_batch(value, pid, epoch, seq):
    """A one-record batch of idempotent producer pid (epoch, base sequence),
    its CRC made again."""
    raw = bytearray(build_record_batch([(b"k", value, [], None)]))
    raw[43:51] = struct.pack(">q", pid)
    raw[51:53] = struct.pack(">h", epoch)
    raw[53:57] = struct.pack(">i", seq)
    raw[17:21] = struct.pack(">I", crc32c(bytes(raw[21:])))
    return bytes(raw)


def produce_batch(bootstrap, topic, batch):
    with Conn(bootstrap, timeout=30) as c:
        body = produce_v3_body(topic, 0, batch, acks=-1, timeout_ms=10000)
        err, base, _ = parse_produce_v3(c.request(0, 3, body))[(topic, 0)]
    return err, base


def test_followers_keep_producer_state_across_a_stop(tmp_path):
    """Followers keep the producer state of what committed, and the
    snapshot a clean stop writes covers exactly that: the leader is killed
    right after acknowledging a batch (its followers may not have heard
    that it committed), the followers stop cleanly and start again, and a
    retry of that batch to the one elected is answered as a duplicate
    (same offset), not written twice."""
    c = Cluster(tmp_path).start()
    try:
        topic = unique_topic("pst")
        create_everywhere(c, topic, 1)
        pid = 424242
        lid, base0 = produce_until_ok(c, topic, b"warm")
        err, b1 = produce_batch(c.node(lid).bootstrap, topic, producer_batch(b"a", pid, 0, 0))
        assert err == NONE, err
        b2_batch = producer_batch(b"b", pid, 0, 1)
        err, b2 = produce_batch(c.node(lid).bootstrap, topic, b2_batch)
        assert err == NONE and b2 == b1 + 1, (err, b1, b2)
        c.node(lid).kill9()
        others = [n for n in (1, 2, 3) if n != lid]
        for n in others:
            c.node(n).stop()
        for n in others:
            c.node(n).start()
        deadline = time.time() + 30
        while True:
            nl, _ = leader_md(c, topic, exclude=(lid,))
            err, again = produce_batch(c.node(nl).bootstrap, topic, b2_batch)
            if err == NONE or time.time() > deadline:
                break
            time.sleep(0.2)
        assert (err, again) == (NONE, b2), "the retry was written again at %s" % again
        with Conn(c.node(nl).bootstrap) as conn:
            hw = fetch_v9(conn, topic, 0, 0)["high_watermark"]
        assert hw == b2 + 1, hw
    finally:
        c.stop()
