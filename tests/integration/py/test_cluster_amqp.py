"""AMQP 0-9-1 in a cluster (issue 12, cluster plan step 7; src/amqp/ah_cluster.c).

Three real nodes, driven with pika:
- exactly one node serves AMQP (the leader of __amqp_meta-0, named by the
  server property cluster_node); the others relay every connection to it
  (a client given any one node's address works), and before they know it
  they refuse connection.open with 320 CONNECTION_FORCED;
- durable exchanges, queues and bindings declared there, and persistent
  messages published with confirms, survive kill -9 of that node: another
  node takes over, and every confirmed message that was not acked is
  delivered again, the ones delivered before the kill with redelivered
  set, the acked ones not at all;
- the killed node restarts, catches up, and after the second AMQP node is
  killed too the cluster still has every confirmed, unacked message;
- queue.delete removes the queue's log from every node.
"""
import os
import re
import time

import pika
import pytest

from test_cluster_basic import Cluster


def try_open(b):
    """A BlockingConnection to node b, or the server's close reason."""
    try:
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=b.amqp_port, heartbeat=0, blocked_connection_timeout=30,
            connection_attempts=1, socket_timeout=5)), None
    except pika.exceptions.AMQPConnectionError as e:
        # pika wraps a close during the handshake (ProbableAccessDeniedError):
        # the broker's reply code and text are in the message.
        m = re.search(r"\((\d+)\) '([^']*)'", str(e))
        return None, (int(m.group(1)), m.group(2)) if m else (0, repr(e))


def serving(conn):
    """The node id the connection's server properties name (cluster_node)."""
    v = conn._impl.server_properties["cluster_node"]
    return int(v.decode() if isinstance(v, bytes) else v)


def amqp_node(c, exclude=(), timeout=30):
    """(index of the node that serves AMQP, a connection to it: direct or
    relayed); refusals on the way must be 320."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        for i, b in enumerate(c.nodes):
            if i in exclude or not b.alive():
                continue
            conn, why = try_open(b)
            if conn:
                j = serving(conn) - 1
                if j in exclude:
                    conn.close()
                    continue
                return j, conn
            last = why
            assert why[0] in (320, 0), why
        time.sleep(0.2)
    raise AssertionError("no node serves AMQP within %ss (last refusal %s)" % (timeout, last))


def publish_confirmed(ch, queue, bodies):
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)


def drain(ch, queue, limit=10000):
    """Every ready message: (body, redelivered), acked."""
    out = []
    while len(out) < limit:
        m, props, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            break
        out.append((body, m.redelivered))
    return out


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def test_one_node_serves_and_the_others_relay(cluster):
    i, conn = amqp_node(cluster)
    ch = conn.channel()
    ch.queue_declare("q.r", durable=True)
    conn.close()
    # Every other node passes its clients to node i: they see node i's
    # properties and its queues, and what they publish is there.
    for j, b in enumerate(cluster.nodes):
        deadline = time.time() + 10
        while True:
            c2, why = try_open(b)
            if c2:
                break
            assert why[0] == 320, why
            assert time.time() < deadline, "node %d neither relays nor serves: %s" % (j + 1, why)
            time.sleep(0.2)
        assert serving(c2) == i + 1, (j + 1, serving(c2))
        ch2 = c2.channel()
        ch2.confirm_delivery()
        ch2.basic_publish("", "q.r", b"via-%d" % (j + 1), pika.BasicProperties(delivery_mode=2),
                          mandatory=True)
        c2.close()
        if j != i:
            assert "relayed to node %d" % (i + 1) in b.log_text(100000)
    conn, _ = try_open(cluster.nodes[i])
    got = sorted(b for b, _ in drain(conn.channel(), "q.r"))
    assert got == sorted(b"via-%d" % (j + 1) for j in range(len(cluster.nodes))), got
    conn.close()
    # A large message through a relay, both ways (the relay's backpressure).
    j = (i + 1) % len(cluster.nodes)
    c3, _ = try_open(cluster.nodes[j])
    ch3 = c3.channel()
    ch3.confirm_delivery()
    big = os.urandom(3 << 20)
    ch3.basic_publish("", "q.r", big, pika.BasicProperties(delivery_mode=2), mandatory=True)
    m, _, body = ch3.basic_get("q.r", auto_ack=True)
    assert body == big
    c3.close()


def test_confirmed_messages_survive_the_amqp_node(cluster):
    i, conn = amqp_node(cluster)
    ch = conn.channel()
    ch.exchange_declare("ex.c", "direct", durable=True)
    ch.queue_declare("q.c", durable=True)
    ch.queue_bind("q.c", "ex.c", routing_key="k")
    publish_confirmed(ch, "q.c", [b"m%03d" % n for n in range(100)])
    # 10 acked (gone for good), 5 delivered and left unacked (redelivered later).
    for n in range(10):
        m, _, body = ch.basic_get("q.c", auto_ack=False)
        assert body == b"m%03d" % n
        ch.basic_ack(m.delivery_tag)
    unacked = []
    for n in range(10, 15):
        m, _, body = ch.basic_get("q.c", auto_ack=False)
        assert body == b"m%03d" % n
        unacked.append(body)
    # The acks reach __amqp_meta within a loop pass; its commit follows.
    time.sleep(1.0)
    cluster.nodes[i].kill9()

    j, conn2 = amqp_node(cluster, exclude=(i,), timeout=40)
    assert j != i
    ch2 = conn2.channel()
    # The objects came along: a publish through the exchange is routed.
    ch2.confirm_delivery()
    ch2.basic_publish("ex.c", "k", b"after", pika.BasicProperties(delivery_mode=2),
                      mandatory=True)
    got = drain(ch2, "q.c")
    bodies = [b for b, _ in got]
    assert bodies == [b"m%03d" % n for n in range(10, 100)] + [b"after"], bodies[:20]
    for body, red in got:
        if body in unacked:
            assert red, "%r was delivered before the kill: redelivered expected" % body
    # Put some back for the next round.
    for n in range(20):
        ch2.basic_publish("", "q.c", b"n%03d" % n, pika.BasicProperties(delivery_mode=2),
                          mandatory=True)
    time.sleep(0.5)
    conn2.close()

    # The first node comes back and catches up; then the second AMQP node dies.
    cluster.nodes[i].start()
    time.sleep(3)
    cluster.nodes[j].kill9()
    k, conn3 = amqp_node(cluster, exclude=(j,), timeout=40)
    ch3 = conn3.channel()
    got = [b for b, _ in drain(ch3, "q.c")]
    assert got == [b"n%03d" % n for n in range(20)], got
    conn3.close()


def test_queue_delete_removes_its_log_everywhere(cluster):
    i, conn = amqp_node(cluster)
    ch = conn.channel()
    ch.queue_declare("q.del", durable=True)
    publish_confirmed(ch, "q.del", [b"x"] * 5)
    time.sleep(1)

    def logs():
        out = []
        for b in cluster.nodes:
            out.append(sorted(d for d in os.listdir(b.data_dir) if d.startswith("__amqp_q-")))
        return out

    before = logs()
    assert all(len(l) == 1 and l == before[0] for l in before), before
    ch.queue_delete("q.del")
    deadline = time.time() + 10
    while any(logs()):
        assert time.time() < deadline, logs()
        time.sleep(0.2)
    # A queue of the same name starts empty.
    ch.queue_declare("q.del", durable=True)
    m, _, _ = ch.basic_get("q.del", auto_ack=True)
    assert m is None
    conn.close()


def test_queue_declared_while_a_node_is_down(cluster):
    """A node that was down when a queue was declared opens the queue's log
    from its copy of __amqp_meta when it comes back and catches up: after
    that, the serving node can die and the two others (the late one among
    them, needed for a majority) still serve every confirmed message."""
    i, conn = amqp_node(cluster)
    conn.close()
    late = (i + 1) % len(cluster.nodes)
    cluster.nodes[late].kill9()
    i, conn = amqp_node(cluster, exclude=(late,))
    ch = conn.channel()
    ch.queue_declare("q.late", durable=True)
    publish_confirmed(ch, "q.late", [b"l%02d" % n for n in range(50)])
    conn.close()
    cluster.nodes[late].start()
    # The late node opens the queue's log once it sees its record committed,
    # then catches up; give it time, then take the serving node away.
    deadline = time.time() + 20
    log_dir = None
    while time.time() < deadline and not log_dir:
        log_dir = [d for d in os.listdir(cluster.nodes[late].data_dir)
                   if d.startswith("__amqp_q-")]
        time.sleep(0.2)
    assert log_dir, "the late node never opened the queue's log"
    time.sleep(2)
    cluster.nodes[i].kill9()
    j, conn2 = amqp_node(cluster, exclude=(i,), timeout=40)
    got = [b for b, _ in drain(conn2.channel(), "q.late")]
    assert got == [b"l%02d" % n for n in range(50)], got
    conn2.close()
