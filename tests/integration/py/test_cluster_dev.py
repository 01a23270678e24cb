"""`cairn dev-cluster` (issue 12): one command starts a 3-node cluster on
this machine; clients see three brokers, a replicated topic works, and
SIGINT stops every node cleanly (exit 0, no node left running)."""
import os
import random
import signal
import socket
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cairn_broker import cairn_bin, unique_topic


def port_free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_base(n):
    for _ in range(200):
        base = random.randrange(20000, 40000)
        if all(port_free(base + i) and port_free(base + 100 + i) for i in range(n)):
            return base
    raise AssertionError("no free port range")


def test_dev_cluster_serves_and_stops(tmp_path):
    base = pick_base(3)
    log = open(tmp_path / "dev.log", "wb")
    proc = subprocess.Popen([cairn_bin(), "dev-cluster", "--nodes", "3", "--base-port", str(base),
                             "--data-dir", str(tmp_path / "c")], stdout=log, stderr=log,
                            start_new_session=True)
    boot = ",".join("127.0.0.1:%d" % (base + i) for i in range(3))
    try:
        a = AdminClient({"bootstrap.servers": boot})
        deadline = time.time() + 20
        while True:
            try:
                md = a.list_topics(timeout=2)
                if sorted(md.brokers) == [1, 2, 3]:
                    break
            except Exception:
                pass
            assert time.time() < deadline, open(tmp_path / "dev.log").read()[-3000:]
            time.sleep(0.2)
        topic = unique_topic("dev")
        a.create_topics([NewTopic(topic, 1, 3)])[topic].result(30)
        p = Producer({"bootstrap.servers": boot, "acks": "all"})
        for i in range(50):
            p.produce(topic, b"v%d" % i)
        assert p.flush(30) == 0
        c = Consumer({"bootstrap.servers": boot, "group.id": unique_topic("g")})
        c.assign([TopicPartition(topic, 0, 0)])
        got = set()
        deadline = time.time() + 20
        while len(got) < 50 and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.add(m.value())
        c.close()
        assert len(got) == 50
        for i in range(3):
            assert os.path.isdir(tmp_path / "c" / ("node-%d" % (i + 1)))
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
        log.close()
    assert rc == 0, open(tmp_path / "dev.log").read()[-3000:]
    text = open(tmp_path / "dev.log").read()
    assert text.count("stopped") == 3, text[-3000:]
