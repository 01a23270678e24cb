#!/usr/bin/python3
"""Reproduction of a bug found by the transactional nemesis, fixed on
2026-12-04 (docs/testing.md "Nemesis"): a leader that lost leadership
answers the acks=all produce requests parked on it NOT_LEADER_OR_FOLLOWER
(broker_partition.c rg_changed), although their batches are in its Raft log
and may still commit under the next leader. librdkafka takes
NOT_LEADER_OR_FOLLOWER as "message not persisted"; when the transaction is
aborted before the retry, it rewinds the partition's sequence numbers, the
next transaction's first batch reuses the sequence of the batch that did
commit, and the broker answers it as a duplicate with the old offset: an
acknowledged record that is not in the log, and a committed transaction that
is only partly visible.

This script shows the broker half without a client library: 3 nodes, one
partition; every frame *to* the leader is dropped (one-way, netproxy.py), so
the followers append its entries but their answers never arrive; the leader
steps down, a follower takes over with the entry and commits it. The
produce request parked on the old leader is answered NOT_LEADER_OR_FOLLOWER
(6), yet the record is in the log afterwards. Exit 1 while that is so (the
answer should say "maybe persisted", as REQUEST_TIMED_OUT does), 0 otherwise.

With --client, the whole chain with a confluent-kafka transactional
producer on a partition whose leader is not the transaction coordinator: t1
commits; t2 produces one record while frames to the partition's leader are
dropped and aborts REPRO_ABORT_AFTER seconds later (default 1.8: after the
NOT_LEADER answer at ~1.1 s, before a new leader takes the retry); heal; t3
produces one record and commits. t3's record is acknowledged at t2's offset
and is not in the log (exit 1).

    /usr/bin/python3 tests/nemesis/repro_notleader.py --bin build/cairn
    /usr/bin/python3 tests/nemesis/repro_notleader.py --bin build/cairn --client
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration", "py"))

import kwire  # noqa: E402
from cluster import Cluster  # noqa: E402
from nemesis import leaders, raw_fetch_all, wait_writable  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from txn import txn_coordinator  # noqa: E402


def client_chain(cl, topic, parts):
    """The whole chain with a confluent-kafka transactional producer: a record
    of an aborted transaction hears NOT_LEADER, the next transaction's record
    is acknowledged at its offset and is not in the log. 1 if reproduced."""
    tid = "repro-tid"
    acks = {}

    def cb(err, m):
        acks[m.value()] = (err.name() if err else None, m.partition(), m.offset())
    p = Producer({"bootstrap.servers": cl.all_bootstrap(), "transactional.id": tid,
                  "acks": "all", "linger.ms": 0, "log_level": 0, "request.timeout.ms": 20000,
                  "message.timeout.ms": 30000, "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    coord = txn_coordinator(cl, tid)
    deadline = time.time() + 30
    while True:
        ls = leaders(cl, topic, parts)
        q = next((x for x in range(parts) if ls.get(x) not in (None, coord)), None)
        if q is not None or time.time() > deadline:
            break
        time.sleep(1)
    assert q is not None, "every partition led by the coordinator %s: %s" % (coord, ls)
    lead = ls[q]
    print("transaction coordinator node %s; partition %d led by node %d" % (coord, q, lead))
    p.begin_transaction()
    p.produce(topic, value=b"t1-committed", partition=q, on_delivery=cb)
    p.commit_transaction(30)
    time.sleep(1)   # the coordinator completes t1 (markers) before t2's abort
    p.begin_transaction()
    for y in cl.ids():
        if y != lead:
            cl.proxy.cut(y, lead, oneway=True)
    p.produce(topic, value=b"t2-aborted", partition=q, on_delivery=cb)
    wait = float(os.environ.get("REPRO_ABORT_AFTER", "1.8"))
    t0 = time.time()
    while time.time() - t0 < wait:   # NOT_LEADER comes after ~1.1 s; the retry waits for a new leader
        p.poll(0.05)
    print("frames to node %d dropped; t2's record sent %.1fs ago; abort_transaction" % (lead, wait))
    p.abort_transaction(60)
    cl.proxy.heal()
    p.begin_transaction()
    p.produce(topic, value=b"t3-committed", partition=q, on_delivery=cb)
    p.commit_transaction(60)
    p.flush(10)
    print("delivery reports: %s" % acks)
    node, hw, batches = raw_fetch_all(cl, topic, q, timeout=30)
    log = [(r["offset"], r["value"]) for b in batches for r in (b[3]["records"] or [])
           if not b[3]["attributes"] & 0x20]
    print("partition %d data records: %s" % (q, log))
    vals = [v for _, v in log]
    ok3 = acks.get(b"t3-committed", (None,))[0] is None
    if ok3 and b"t3-committed" not in vals:
        print("REPRODUCED: t3's record was acknowledged at offset %d and committed, but the log "
              "holds %r there" % (acks[b"t3-committed"][2], dict(log).get(acks[b"t3-committed"][2])))
        return 1
    print("not reproduced")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "cairn"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--client", action="store_true",
                    help="the whole chain with a confluent-kafka transactional producer")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cairn-repro-notleader-")
    cl = Cluster(3, work, args.bin, seed=1)
    topic = "repro"
    rc = 2
    try:
        cl.start()
        a = AdminClient({"bootstrap.servers": cl.all_bootstrap(), "log_level": 0})
        deadline = time.time() + 30
        while True:
            try:
                a.create_topics([NewTopic(topic, num_partitions=3 if args.client else 1,
                                          replication_factor=3)])[topic].result(10)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        dt, err = wait_writable(cl, topic, 3 if args.client else 1, 30)
        assert not err, err
        if args.client:
            rc = client_chain(cl, topic, 3)
            return rc
        lead = leaders(cl, topic, 1)[0]
        print("leader of %s-0: node %d" % (topic, lead))
        for y in cl.ids():
            if y != lead:
                cl.proxy.cut(y, lead, oneway=True)   # frames to the leader dropped
        print("frames to node %d dropped; producing one record acks=all to it" % lead)
        batch = kwire.build_record_batch([(b"k", b"maybe-persisted", [], None)])
        body = (kwire.string(None) + kwire.i16(-1) + kwire.i32(30000) + kwire.i32(1)
                + kwire.string(topic) + kwire.i32(1) + kwire.i32(0) + kwire.nbytes(batch))
        t0 = time.time()
        with kwire.Conn(cl.node(lead).bootstrap, timeout=40) as c:
            res = kwire.parse_produce_v3(c.request(0, 3, body))[(topic, 0)]
        print("produce answered error %d base offset %d after %.1fs" % (res[0], res[1], time.time() - t0))
        cl.proxy.heal()
        node, hw, batches = raw_fetch_all(cl, topic, 0, timeout=30)
        values = [r["value"] for b in batches for r in (b[3]["records"] or [])]
        present = b"maybe-persisted" in values
        print("after heal: high watermark %d (read from node %d), record %s"
              % (hw, node, "PRESENT" if present else "absent"))
        if res[0] == 6 and present:
            print("REPRODUCED: NOT_LEADER_OR_FOLLOWER (librdkafka: MsgNotPersisted) answered for a "
                  "record that committed")
            rc = 1
        else:
            print("not reproduced (error %d, record %s)" % (res[0], "present" if present else "absent"))
            rc = 0
    finally:
        cl.stop()
        if args.keep or rc == 2:
            print("kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
