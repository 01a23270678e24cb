#!/usr/bin/python3
"""Consumer-group figures for Cairn, measured with confluent-kafka (librdkafka).

  /usr/bin/python3 bench/groups.py [--bin build/cairn] [--delay-ms 0]

1. Rebalance: 3 consumers (one thread each) subscribe to a 6-partition topic
   that already holds records; reports, per member, the time from subscribe()
   to its first record, and the worst of the three. Run with the broker's
   group.initial.rebalance.delay.ms (default here 0; Kafka's default is 3000,
   which adds that much to every first join).
2. Offset commits: one group member commits explicit offsets synchronously
   (each answered after the offsets log is fsynced) in a loop, then the same
   count asynchronously (pipelined, so group commit batches the fsyncs);
   reports commits/s.
Starts its own broker on a free port with a temporary data directory.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_broker(binary, delay_ms):
    d = tempfile.mkdtemp(prefix="cairn-groups-")
    port = free_port()
    log = open(os.path.join(d, "broker.log"), "w")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port, "--amqp-listen", "off", "--http-listen", "off", "--data-dir",
                             os.path.join(d, "data"), "--set",
                             "group.initial.rebalance.delay.ms=%d" % delay_ms],
                            stderr=log, stdout=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, d, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("broker did not start; see %s/broker.log" % d)


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                  replication_factor=1)])[topic].result(10)


def rebalance(bootstrap):
    topic = "bench-rebalance"
    create(bootstrap, topic, 6)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(600):
        p.produce(topic, value=b"%d" % i, partition=i % 6)
    p.flush(10)
    firsts = [None] * 3
    start = threading.Barrier(3)

    def member(i):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-rebalance",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "session.timeout.ms": 10000, "log_level": 3})
        start.wait()
        t0 = time.monotonic()
        c.subscribe([topic])
        deadline = t0 + 60
        while time.monotonic() < deadline:
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                firsts[i] = time.monotonic() - t0
                break
        # keep polling so the group stays stable until everyone has a record
        while time.monotonic() < deadline and any(f is None for f in firsts):
            c.poll(0.05)
        c.close()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return firsts


def commits(bootstrap, n):
    topic = "bench-commits"
    create(bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-commits",
                  "enable.auto.commit": False, "log_level": 3})
    c.assign([TopicPartition(topic, 0, 0)])
    t0 = time.monotonic()
    for i in range(n):
        c.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=False)
    sync_s = time.monotonic() - t0
    t0 = time.monotonic()
    for i in range(n):
        c.commit(offsets=[TopicPartition(topic, 0, n + i)], asynchronous=True)
    # a final synchronous commit returns after every earlier one was answered
    c.commit(offsets=[TopicPartition(topic, 0, 2 * n)], asynchronous=False)
    async_s = time.monotonic() - t0
    got = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    c.close()
    assert got == 2 * n, got
    return n / sync_s, (n + 1) / async_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/cairn")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--commits", type=int, default=2000)
    a = ap.parse_args()
    proc, d, bootstrap = start_broker(a.bin, a.delay_ms)
    try:
        firsts = rebalance(bootstrap)
        print("rebalance of 3 members (group.initial.rebalance.delay.ms=%d): subscribe -> "
              "first record per member: %s s; worst %.3f s" %
              (a.delay_ms, ", ".join("%.3f" % f if f else "none" for f in firsts),
               max(f or float("inf") for f in firsts)))
        s, asy = commits(bootstrap, a.commits)
        print("offset commits, one member, %d each: synchronous %.0f commits/s, "
              "asynchronous %.0f commits/s" % (a.commits, s, asy))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
