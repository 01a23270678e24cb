#!/usr/bin/python3
"""One confluent_kafka group member, run as a subprocess by test_groups_confluent.py.

    group_member.py BOOTSTRAP GROUP TOPIC [--strategy S] [--instance-id ID]
                    [--session-ms N] [--process-ms N] [--name NAME]

Subscribes to TOPIC in GROUP, and for every record: "processes" it (sleeps
--process-ms), reports it, then commits offset+1 synchronously (commit after
processing = at-least-once). Reports everything on stdout, one JSON object per
line, flushed at once (so a kill -9 loses nothing already reported):

    {"ev": "start", "name": ..., "pid": ...}
    {"ev": "assign", "parts": [...], "owned": [...], "t": ...}   rebalance callback
    {"ev": "revoke", "parts": [...], "owned": [...], "t": ...}
    {"ev": "lost",   "parts": [...], "owned": [...], "t": ...}
    {"ev": "rec", "p": P, "o": OFFSET, "v": "VALUE", "t": ...}   after processing
    {"ev": "commit_err", "p": P, "o": OFFSET, "err": "..."}       commit failed
    {"ev": "error", "err": "..."}                                 consumer error
    {"ev": "closed"}                                              after close()

"owned" is the member's assignment after the callback (eager: replaced on
assign, emptied on revoke; cooperative: incremental). SIGTERM/SIGINT: close()
cleanly (LeaveGroup for dynamic members) and exit 0.
"""
import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

stop = False


def out(**kw):
    kw.setdefault("t", time.time())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("group")
    ap.add_argument("topic")
    ap.add_argument("--strategy", default="range,roundrobin")
    ap.add_argument("--instance-id", default=None)
    ap.add_argument("--session-ms", type=int, default=3000)
    ap.add_argument("--process-ms", type=float, default=0)
    ap.add_argument("--name", default="member")
    a = ap.parse_args()

    def on_signal(signum, frame):
        global stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": a.name,
        "partition.assignment.strategy": a.strategy,
        "session.timeout.ms": a.session_ms,
        "heartbeat.interval.ms": max(100, a.session_ms // 6),
        "max.poll.interval.ms": max(10000, a.session_ms * 2),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 2000,
        "log_level": 3,
    }
    if a.instance_id:
        conf["group.instance.id"] = a.instance_id
    cooperative = "cooperative" in a.strategy
    owned = set()

    def parts(ps):
        return sorted(p.partition for p in ps)

    def on_assign(c, ps):
        if cooperative:
            owned.update(parts(ps))
        else:
            owned.clear()
            owned.update(parts(ps))
        out(ev="assign", parts=parts(ps), owned=sorted(owned))

    def on_revoke(c, ps):
        if cooperative:
            owned.difference_update(parts(ps))
        else:
            owned.clear()
        out(ev="revoke", parts=parts(ps), owned=sorted(owned))

    def on_lost(c, ps):
        owned.difference_update(parts(ps))
        out(ev="lost", parts=parts(ps), owned=sorted(owned))

    c = Consumer(conf)
    out(ev="start", name=a.name, pid=__import__("os").getpid())
    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    try:
        while not stop:
            m = c.poll(0.2)
            if m is None:
                continue
            e = m.error()
            if e is not None:
                if e.code() != KafkaError._PARTITION_EOF:
                    out(ev="error", err=str(e))
                continue
            if a.process_ms:
                time.sleep(a.process_ms / 1000.0)
            v = m.value()
            out(ev="rec", p=m.partition(), o=m.offset(),
                v=None if v is None else v.decode("utf-8", "replace"))
            try:
                c.commit(message=m, asynchronous=False)
            except KafkaException as ex:
                out(ev="commit_err", p=m.partition(), o=m.offset(), err=str(ex))
    finally:
        c.close()
        out(ev="closed")


if __name__ == "__main__":
    main()
