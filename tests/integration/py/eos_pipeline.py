#!/usr/bin/python3
"""Read-process-write pipeline with confluent_kafka transactions, run as a
subprocess by test_eos.py (which kills it and the broker with SIGKILL).

    eos_pipeline.py BOOTSTRAP IN OUT GROUP TXN_ID [--batch N] [--abort-rate F]
                    [--seed S] [--delay-ms N] [--session-ms N]

Consumes IN (group GROUP, subscribe, isolation.level=read_committed), and per
batch of up to --batch records runs one transaction: produce to OUT, for every
input, a record with the same key and value "VALUE|out", then
send_offsets_to_transaction(next offsets) and commit. With probability
--abort-rate it aborts instead (after producing and sending the offsets), and
rewinds the consumer to the batch start, so the batch is done again later.

Any error it cannot handle (fatal error, abort failure, seek failure) ends the
process with a non-zero code: the test restarts it, like an orchestrator would.
Progress goes to stdout as JSON lines, flushed at once:

    {"ev": "start", "pid": ...}
    {"ev": "ready"}                               init_transactions() done
    {"ev": "commit", "n": K, "next": {p: off}}    after a successful commit
    {"ev": "abort", "n": K, "why": "random"|error text}
    {"ev": "error", "err": ...}
    {"ev": "exit", "code": C, "why": ...}
SIGTERM: finish the current transaction, close and exit 0.
"""
import argparse
import json
import os
import random
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

stop = False


def out(**kw):
    kw.setdefault("t", time.time())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def die(code, why):
    out(ev="exit", code=code, why=str(why))
    os._exit(code)  # no clean close: like a crash, the broker must cope


def kerr(e):
    return e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("inp")
    ap.add_argument("outp")
    ap.add_argument("group")
    ap.add_argument("txn_id")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--abort-rate", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--session-ms", type=int, default=3000)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    def on_signal(signum, frame):
        global stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out(ev="start", pid=os.getpid())

    common = {"bootstrap.servers": a.bootstrap, "log_level": 2,
              "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
              "socket.timeout.ms": 10000}
    c = Consumer(dict(common, **{
        "group.id": a.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": a.session_ms,
        "heartbeat.interval.ms": max(100, a.session_ms // 6),
        "max.poll.interval.ms": 60000,
    }))
    p = Producer(dict(common, **{
        "transactional.id": a.txn_id,
        "transaction.timeout.ms": 15000,
        "linger.ms": 1,
    }))
    try:
        p.init_transactions(30)
    except KafkaException as e:
        die(3, "init_transactions: %s" % e)
    out(ev="ready")
    c.subscribe([a.inp])
    n = 0
    while not stop:
        msgs = c.consume(num_messages=a.batch, timeout=0.2)
        batch = []
        for m in msgs:
            e = m.error()
            if e is not None:
                if e.code() != KafkaError._PARTITION_EOF:
                    out(ev="error", err=str(e))
                    if e.fatal():
                        die(4, e)
                continue
            batch.append(m)
        if not batch:
            continue
        start = {}   # partition -> first offset of this batch (rewind target)
        nxt = {}     # partition -> offset after the last record of this batch
        for m in batch:
            start.setdefault(m.partition(), m.offset())
            nxt[m.partition()] = m.offset() + 1
        n += 1
        abort_why = None
        try:
            p.begin_transaction()
            for m in batch:
                p.produce(a.outp, key=m.key(), value=m.value() + b"|out")
            if a.delay_ms:
                time.sleep(a.delay_ms / 1000.0 * rnd.random())
            p.send_offsets_to_transaction(
                [TopicPartition(a.inp, q, o) for q, o in sorted(nxt.items())],
                c.consumer_group_metadata(), 30)
            if rnd.random() < a.abort_rate:
                abort_why = "random"
            else:
                # commit_transaction flushes; retriable errors may be retried
                for attempt in range(5):
                    try:
                        p.commit_transaction(30)
                        break
                    except KafkaException as e:
                        err = kerr(e)
                        if err is not None and err.retriable() and attempt < 4:
                            out(ev="error", err="commit retriable: %s" % e)
                            time.sleep(0.5)
                            continue
                        raise
        except KafkaException as e:
            err = kerr(e)
            if err is not None and err.fatal():
                die(5, "fatal: %s" % e)
            if err is not None and not err.txn_requires_abort() and not err.retriable():
                die(6, "unexpected: %s" % e)
            abort_why = str(e)
        if abort_why is None:
            out(ev="commit", n=n, next={str(q): o for q, o in nxt.items()},
                count=len(batch))
            continue
        try:
            p.abort_transaction(30)
        except KafkaException as e:
            die(7, "abort_transaction: %s" % e)
        out(ev="abort", n=n, why=abort_why, count=len(batch))
        try:
            for q, o in start.items():
                c.seek(TopicPartition(a.inp, q, o))
        except KafkaException as e:
            die(8, "seek: %s" % e)
    c.close()
    p.flush(10)
    out(ev="exit", code=0, why="sigterm")


if __name__ == "__main__":
    main()
