"""The nemesis's AMQP workload (nemesis.py --amqp; docs/testing.md "Nemesis").

One node of the cluster serves AMQP at a time (src/amqp/ah_cluster.c); the
others relay connections to it (ah_relay.c), or refuse connection.open with
320 while they do not know it. Every client here tries the nodes in a
shuffled order until one accepts, as a RabbitMQ client given a list of
addresses does, and starts over on any error; so both direct and relayed
connections carry the load.

Producers publish unique values ("p<i>-<n>") as persistent messages to one
durable queue, with publisher confirms (pika's BlockingChannel: basic_publish
returns once the broker confirmed, raises on a nack or when the connection
goes). Consumers consume with manual acks (prefetch 20) and ack each
delivery at once. After the last heal the producers stop and the consumers
drain the queue until it stays empty.

The checker (check) fails the run on:
  * a confirmed message never delivered (lost),
  * a delivered value that was never published (phantom),
  * the queue missing after the faults (its declaration lost).
Allowed and reported: a value delivered more than once (at-least-once: an
ack lost with its connection brings the message back), and a repeat
delivery without the redelivered flag (the flag's mark is released before
its record commits, ARCHITECTURE.md "AMQP in a cluster"), unconfirmed
messages delivered, and publishes that failed (unavailability).
"""
import collections
import logging
import random
import re
import threading
import time

import pika

QUEUE = "nem-q"
# pika logs every refused connection and lost socket at ERROR: the harness
# counts them itself.
logging.getLogger("pika").setLevel(logging.CRITICAL)


def _params(port):
    return pika.ConnectionParameters(host="127.0.0.1", port=port, heartbeat=2,
                                     blocked_connection_timeout=10, socket_timeout=2,
                                     stack_timeout=5, connection_attempts=1)


def serving_node(cl, timeout=2.0):
    """The node that serves AMQP as the live nodes tell it (one that accepts
    a connection, or the one a refusal names), or None."""
    named = None
    for nd in cl.nodes.values():
        if not nd.alive() or nd.paused:
            continue
        try:
            conn = pika.BlockingConnection(_params(nd.aport))
        except pika.exceptions.AMQPConnectionError as e:
            m = re.search(r"node (\d+) of the cluster does", str(e))
            if m:
                named = int(m.group(1))
            continue
        except Exception:  # noqa: BLE001 (socket errors of a dying node)
            continue
        try:
            v = conn._impl.server_properties.get("cluster_node")
            served = int(v.decode() if isinstance(v, bytes) else v) if v else nd.id
        except Exception:  # noqa: BLE001
            served = nd.id
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
        return served   # the node that serves (a relay passes its properties on)
    return named


class AmqpWorkload:
    def __init__(self, cl, seed, nprod, rate, log, nconsumers=2):
        self.cl = cl
        self.rng = random.Random(seed)
        self.nprod = nprod
        self.rate = rate
        self.nconsumers = nconsumers
        self.log = log
        self.lock = threading.Lock()
        self.sent = {}            # value -> send time
        self.acked = {}           # value -> confirm time
        self.failed = {}          # value -> (time, error name)
        self.deliveries = []      # (value, redelivered, time, consumer)
        self.errors = collections.Counter()
        self.connects = collections.Counter()   # node id -> connections opened
        self.stop_prod = threading.Event()
        self.stop_cons = threading.Event()
        self.threads = []
        self.missing_queue = []   # NOT_FOUND answers about the queue
        self.t0 = time.monotonic()

    # -------------------------------------------------------------- clients
    def connect(self, stop, deadline=None):
        """A connection to the node that serves, trying every live node in
        turn; None when stop is set (or the deadline passes) first."""
        ids = list(self.cl.ids())
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            self.rng.shuffle(ids)
            for i in ids:
                nd = self.cl.node(i)
                if not nd.alive():
                    continue
                try:
                    conn = pika.BlockingConnection(_params(nd.aport))
                except Exception as e:  # noqa: BLE001 (refused, down, paused)
                    if "320" not in str(e):
                        with self.lock:
                            self.errors["connect: " + type(e).__name__] += 1
                    continue
                with self.lock:
                    self.connects[i] += 1
                return conn
            time.sleep(0.2)
        return None

    def _error(self, where, e):
        name = type(e).__name__
        if "NOT_FOUND" in str(e) or "404" in str(e):
            with self.lock:
                self.missing_queue.append("%s: %s" % (where, e))
        with self.lock:
            self.errors["%s: %s" % (where, name)] += 1

    @staticmethod
    def _close(conn):
        if conn is None:
            return
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass

    def declare(self, timeout=30.0):
        stop = threading.Event()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            conn = self.connect(stop, deadline)
            if conn is None:
                break
            try:
                conn.channel().queue_declare(QUEUE, durable=True)
                self._close(conn)
                return
            except Exception as e:  # noqa: BLE001 (the serving node moved)
                self._close(conn)
                last = e
                time.sleep(0.3)
        raise RuntimeError("queue %s not declared within %.0fs: %r" % (QUEUE, timeout, last))

    def _producer(self, i):
        n = 0
        conn = ch = None
        gap = 1.0 / self.rate
        while not self.stop_prod.is_set():
            if ch is None:
                self._close(conn)
                conn = self.connect(self.stop_prod)
                if conn is None:
                    break
                try:
                    ch = conn.channel()
                    ch.confirm_delivery()
                except Exception as e:  # noqa: BLE001
                    self._error("producer channel", e)
                    ch = None
                    continue
            v = "p%d-%d" % (i, n)
            n += 1
            t = time.monotonic()
            with self.lock:
                self.sent[v] = t
            try:
                ch.basic_publish("", QUEUE, v.encode(), pika.BasicProperties(delivery_mode=2),
                                 mandatory=True)
                with self.lock:
                    self.acked[v] = time.monotonic()
            except (pika.exceptions.NackError, pika.exceptions.UnroutableError) as e:
                with self.lock:
                    self.failed[v] = (t, type(e).__name__)
                self._error("publish", e)
                if isinstance(e, pika.exceptions.UnroutableError):
                    with self.lock:
                        self.missing_queue.append("publish of %s: unroutable" % v)
            except Exception as e:  # noqa: BLE001 (connection gone: indeterminate)
                with self.lock:
                    self.failed[v] = (t, type(e).__name__)
                self._error("publish", e)
                ch = None
            time.sleep(gap)
        self._close(conn)

    def _consumer(self, k):
        conn = None
        while not self.stop_cons.is_set():
            self._close(conn)
            conn = self.connect(self.stop_cons)
            if conn is None:
                break
            try:
                ch = conn.channel()
                ch.basic_qos(prefetch_count=20)

                def on_msg(c, m, props, body, k=k):
                    with self.lock:
                        self.deliveries.append((body.decode(), bool(m.redelivered), time.monotonic(), k))
                    c.basic_ack(m.delivery_tag)
                ch.basic_consume(QUEUE, on_msg, auto_ack=False)
                while not self.stop_cons.is_set():
                    conn.process_data_events(time_limit=0.2)
            except Exception as e:  # noqa: BLE001 (the serving node moved, or died)
                self._error("consume", e)
                time.sleep(0.1)
        self._close(conn)

    # -------------------------------------------------------------- control
    def start(self):
        self.declare()
        for i in range(self.nprod):
            t = threading.Thread(target=self._producer, args=(i,), name="amqp-prod-%d" % i,
                                 daemon=True)
            t.start()
            self.threads.append(t)
        for k in range(self.nconsumers):
            t = threading.Thread(target=self._consumer, args=(k,), name="amqp-cons-%d" % k,
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def n_delivered(self):
        with self.lock:
            return len(self.deliveries)

    def stop(self, timeout, quiet_s=5.0, drain_timeout=90.0):
        """Producers stop; consumers go on until nothing was delivered for
        quiet_s and every confirmed value was delivered (or drain_timeout);
        returns the threads that did not stop."""
        self.stop_prod.set()
        for t in self.threads:
            if t.name.startswith("amqp-prod"):
                t.join(timeout)
        deadline = time.monotonic() + drain_timeout
        last_n, last_t = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.n_delivered()
            if n != last_n:
                last_n, last_t = n, time.monotonic()
            with self.lock:
                seen = {d[0] for d in self.deliveries}
                missing = [v for v in self.acked if v not in seen]
            if not missing and time.monotonic() - last_t >= quiet_s:
                break
            time.sleep(0.2)
        self.stop_cons.set()
        for t in self.threads:
            t.join(timeout)
        return [t for t in self.threads if t.is_alive()]

    def final_depth(self, timeout=30.0):
        """The queue's message count at the serving node (a passive
        declare): None when it cannot be had; raises on NOT_FOUND."""
        stop = threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conn = self.connect(stop, deadline)
            if conn is None:
                return None
            try:
                r = conn.channel().queue_declare(QUEUE, durable=True, passive=True)
                self._close(conn)
                return r.method.message_count
            except pika.exceptions.ChannelClosedByBroker as e:
                self._close(conn)
                if e.reply_code == 404:
                    raise
            except Exception:  # noqa: BLE001
                self._close(conn)
            time.sleep(0.3)
        return None


def check(aw, violations, anomalies):
    """Counts for the result; violations and allowed anomalies appended."""
    with aw.lock:
        sent, acked, failed = dict(aw.sent), dict(aw.acked), dict(aw.failed)
        deliveries = list(aw.deliveries)
        missing_queue = list(aw.missing_queue)
    per = collections.defaultdict(list)
    for v, red, t, k in deliveries:
        per[v].append((t, red, k))
    lost = sorted(v for v in acked if v not in per)
    phantom = sorted(v for v in per if v not in sent)
    if lost:
        violations.append("%d confirmed message(s) never delivered (lost): %s"
                          % (len(lost), lost[:10]))
    if phantom:
        violations.append("%d delivered value(s) never published: %s"
                          % (len(phantom), phantom[:10]))
    if missing_queue:
        violations.append("the queue went missing: %s" % missing_queue[:5])
    dups = {v: ds for v, ds in per.items() if len(ds) > 1}
    unflagged = sum(1 for ds in dups.values() for d in sorted(ds)[1:] if not d[1])
    if dups:
        anomalies.append("%d value(s) delivered more than once (%d extra deliveries, %d of "
                         "them without redelivered)"
                         % (len(dups), sum(len(ds) - 1 for ds in dups.values()), unflagged))
    unconfirmed_delivered = sum(1 for v in per if v in failed)
    return {"sent": len(sent), "confirmed": len(acked), "failed": len(failed),
            "delivered_values": len(per), "deliveries": len(deliveries), "lost": len(lost),
            "phantom": len(phantom), "duplicated": len(dups), "unflagged_repeats": unflagged,
            "unconfirmed_delivered": unconfirmed_delivered,
            "errors": dict(aw.errors), "connects": dict(aw.connects)}
