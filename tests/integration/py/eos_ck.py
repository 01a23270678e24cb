#!/usr/bin/python3
"""Exactly-once helpers on confluent_kafka (librdkafka 2.0.2), importable and
usable as a command line tool (js/test_kafkajs_eos.mjs runs it with Debian's
/usr/bin/python3 to check kafkajs against librdkafka):

    eos_ck.py read BOOTSTRAP TOPIC [--partitions N] [--isolation read_committed|read_uncommitted]
        -> one JSON object on stdout: {"high": {p: hw}, "lso": {p: lso},
           "records": {p: [[offset, key, value], ...]}}   (key/value as text, may be null)
    eos_ck.py txn-write BOOTSTRAP TOPIC --txn-id ID --plan PLAN [--partitions N]
        PLAN = comma-separated STEP:PREFIX:COUNT, STEP = commit|abort|plain
        ("plain" = a non-transactional idempotent producer). Record i of a step
        has value PREFIX-i, key PREFIX, and goes to partition i % N.
        -> {"ok": true, "steps": [...]} on stdout; exit 1 with {"ok": false, "err": ...} otherwise
"""
import argparse
import json
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

BASE = {"log_level": 3, "socket.timeout.ms": 10000, "reconnect.backoff.max.ms": 1000}


def txn_producer(bootstrap, txn_id, **conf):
    c = dict(BASE)
    c.update({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    c.update(conf)
    return Producer(c)


def idem_producer(bootstrap, **conf):
    c = dict(BASE)
    c.update({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    c.update(conf)
    return Producer(c)


def _text(b):
    return None if b is None else b.decode("utf-8", "replace")


def read_all(bootstrap, topic, partitions=(0,), isolation="read_committed", timeout=60):
    """Read every partition from the start up to its end for this isolation level.

    The end is the high watermark (read_uncommitted) or the last stable offset
    (read_committed: librdkafka's ListOffsets carries the isolation level).
    Returns (ends {p: offset}, {p: [(offset, key, value)]}); key/value as text.
    """
    conf = dict(BASE)
    conf.update({"bootstrap.servers": bootstrap, "group.id": "cairn-it-eos-reader",
                 "enable.auto.commit": False, "enable.auto.offset.store": False,
                 "auto.offset.reset": "earliest", "enable.partition.eof": True,
                 "isolation.level": isolation})
    c = Consumer(conf)
    try:
        ends = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = hi
        out = {p: [] for p in partitions}
        todo = {p for p in partitions if ends[p] > 0}
        if not todo:
            return ends, out
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.time() + timeout
        while todo:
            if time.time() > deadline:
                raise AssertionError("read %s (%s) timed out; got %s of %s" % (
                    topic, isolation, {p: len(v) for p, v in out.items()}, ends))
            for m in c.consume(num_messages=5000, timeout=0.5):
                e = m.error()
                if e is not None:
                    if e.code() == KafkaError._PARTITION_EOF:
                        # EOF at or past the end we measured: control records and
                        # aborted data at the end produce no message
                        if m.offset() >= ends[m.partition()]:
                            todo.discard(m.partition())
                        continue
                    if m.topic() == topic or e.fatal():
                        raise AssertionError("consumer error: %s" % e)
                    continue
                out[m.partition()].append((m.offset(), _text(m.key()), _text(m.value())))
                if m.offset() + 1 >= ends[m.partition()]:
                    todo.discard(m.partition())
        return ends, out
    finally:
        c.close()


def end_offsets(bootstrap, topic, partitions=(0,), isolation="read_committed"):
    """{p: end}: LSO for read_committed, high watermark for read_uncommitted."""
    conf = dict(BASE)
    conf.update({"bootstrap.servers": bootstrap, "group.id": "cairn-it-eos-reader",
                 "isolation.level": isolation})
    c = Consumer(conf)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
    finally:
        c.close()


def parse_plan(plan):
    steps = []
    for s in plan.split(","):
        kind, prefix, n = s.split(":")
        assert kind in ("commit", "abort", "plain"), kind
        steps.append((kind, prefix, int(n)))
    return steps


def txn_write(bootstrap, topic, txn_id, steps, partitions=1, timeout=30):
    """Run the plan: one transaction per commit/abort step (one producer)."""
    p = None
    for kind, prefix, n in steps:
        recs = [(i % partitions, prefix.encode(), b"%s-%d" % (prefix.encode(), i)) for i in range(n)]
        if kind == "plain":
            ip = idem_producer(bootstrap)
            errs = []
            for part, k, v in recs:
                ip.produce(topic, key=k, value=v, partition=part,
                           on_delivery=lambda err, msg: err and errs.append(err))
            left = ip.flush(timeout)
            assert left == 0 and not errs, "plain produce: %d left, errors %s" % (left, errs[:3])
            continue
        if p is None:
            p = txn_producer(bootstrap, txn_id)
            p.init_transactions(timeout)
        p.begin_transaction()
        for part, k, v in recs:
            p.produce(topic, key=k, value=v, partition=part)
        if kind == "commit":
            p.commit_transaction(timeout)
        else:
            p.flush(timeout)  # make sure the data is in the log before the abort
            p.abort_transaction(timeout)
    if p is not None:
        p.flush(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["read", "txn-write"])
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--isolation", default="read_committed")
    ap.add_argument("--txn-id")
    ap.add_argument("--plan")
    a = ap.parse_args()
    parts = tuple(range(a.partitions))
    try:
        if a.cmd == "read":
            ends, recs = read_all(a.bootstrap, a.topic, parts, a.isolation)
            hw = end_offsets(a.bootstrap, a.topic, parts, "read_uncommitted")
            lso = end_offsets(a.bootstrap, a.topic, parts, "read_committed")
            print(json.dumps({"ok": True, "high": hw, "lso": lso,
                              "records": {p: [list(r) for r in v] for p, v in recs.items()}}))
        else:
            steps = parse_plan(a.plan)
            txn_write(a.bootstrap, a.topic, a.txn_id, steps, a.partitions)
            print(json.dumps({"ok": True, "steps": steps}))
    except (KafkaException, AssertionError) as e:
        print(json.dumps({"ok": False, "err": str(e)}))
        sys.exit(1)


if __name__ == "__main__":
    main()
