#!/usr/bin/python3
"""Jepsen-style nemesis harness for a Cairn cluster (cluster plan step 9).

For each seed: start N real `cairn` nodes (cluster.py) whose node-to-node
connections all go through per-pair proxies (netproxy.py), create a topic
with replication factor N, run idempotent acks=all producers and a consumer
that commits offsets while a seeded schedule of faults (faults.py) hits the
cluster, then heal everything, read every partition back from the leader,
force a leader change, read again, and check:

* every acknowledged write is present, exactly once, at the acknowledged
  partition and offset (no lost acks);
* no value appears twice in the log (no duplicates), one value per offset;
* each partition's batches pass CRC-32C and run from 0 to the high watermark
  without gap or overlap;
* each producer session's values of a partition are in send order;
* every record the consumer read during the run is still there, same value
  at the same offset (what was served never changes);
* the log reads back byte for byte the same after a leader change;
* the group's committed offsets never went backwards: the final committed
  offset of each partition is at least the last commit acknowledged to the
  consumer (and at most the high watermark).

With --txn the producers are transactional instead (txn.py: transactions
over several partitions, most committed, some aborted, each outcome as the
client saw it), the consumer reads read_committed, the fault kinds include
kill/pause/isolation of the transaction coordinator, and after the checks
above (control batches aside) a read_committed consumer reads every
partition to its end: committed transactions whole and once, aborted and
fenced ones never, unknown outcomes all or nothing, no dirty read, and every
last stable offset at its high watermark. --txn-ctp N adds N
consume-transform-produce workers (one consumer group, offsets committed in
the transaction): every record below the group's committed offset processed
by exactly one transaction that took effect, no read of aborted data (G1a),
no cycle of write-read dependencies (G1c; txn.check_ctp).

Violations print the seed, the schedule, the command that replays it and
the tail of every node's log (the whole logs stay in the run directory), and
the program exits 1. Availability (acks ok / failed / timed out per fault
window) is reported for every run.

    /usr/bin/python3 tests/nemesis/nemesis.py --seeds 1-3 --nodes 3 --duration 20
    /usr/bin/python3 tests/nemesis/nemesis.py --txn --seeds 1-3 --duration 20
"""
import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration", "py"))

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa
from confluent_kafka.admin import AdminClient, NewTopic  # noqa

import kwire  # noqa
from cluster import Cluster  # noqa
import faults  # noqa
import txn as txnmod  # noqa
import amqpwl  # noqa

QUIET = {"log_level": 0}
TIMEOUT_CODES = {KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
                 KafkaError._TIMED_OUT}


# --retention: segments of 1 KiB, 3 KiB kept per partition, checked every
# 0.5 s, so snapshots happen all through the fault phase.
RETENTION_TOPIC = {"segment.bytes": "1024", "retention.bytes": "3072"}
RETENTION_SETTINGS = {"log.retention.check.interval.ms": 500}


def now():
    return time.monotonic()


# ---------------------------------------------------------------- cluster queries

def node_metadata(bootstrap, topic, timeout=2.0):
    a = AdminClient(dict(QUIET, **{"bootstrap.servers": bootstrap}))
    return a.list_topics(topic, timeout=timeout)


def leaders(cl, topic, parts, timeout=2.0):
    """Partition -> leader as most live nodes report it (None if unknown)."""
    votes = collections.defaultdict(collections.Counter)
    for nd in cl.nodes.values():
        if not nd.alive() or nd.paused:
            continue
        try:
            md = node_metadata(nd.bootstrap, topic, timeout)
        except Exception:
            continue
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            continue
        for p in t.partitions.values():
            if p.leader > 0:
                votes[p.id][p.leader] += 1
    return {p: (votes[p].most_common(1)[0][0] if votes[p] else None) for p in range(parts)}


def raw_fetch_all(cl, topic, part, timeout=30.0, from_start=False):
    """Every batch of a partition from whichever node answers as leader:
    (node, high watermark, [(base, last, raw bytes, parsed)]). from_start:
    from the log start (ListOffsets earliest: retention moved it) instead
    of offset 0; a read that falls below a start that moved meanwhile
    starts again."""
    deadline = now() + timeout
    last_err = None
    while now() < deadline:
        for nd in cl.nodes.values():
            if not nd.alive() or nd.paused:
                continue
            try:
                with kwire.Conn(nd.bootstrap, timeout=5) as c:
                    out, offset = [], 0
                    if from_start:
                        lo = kwire.list_offsets_v4(c, topic, part, -2)
                        if lo is None or lo[0] != 0:
                            raise RuntimeError("earliest offset from node %d: %s" % (nd.id, lo))
                        offset = lo[1]
                    hw = None
                    while True:
                        res = kwire.fetch_v4(c, topic, part, offset)
                        if res["error"] != 0:
                            raise RuntimeError("fetch error %d from node %d" % (res["error"], nd.id))
                        hw = res["high_watermark"]
                        data = res["records"]
                        p = 0
                        got = 0
                        while p + 12 <= len(data):
                            base, blen = kwire.struct.unpack(">qi", data[p:p + 12])
                            end = p + 12 + blen
                            if end > len(data):
                                break
                            raw = bytes(data[p:end])
                            parsed = kwire.parse_record_batches(raw)[0]
                            last = base + parsed["last_offset_delta"]
                            if last >= offset:
                                out.append((base, last, raw, parsed))
                                offset = last + 1
                                got += 1
                            p = end
                        if offset >= hw:
                            return nd.id, hw, out
                        if got == 0:
                            raise RuntimeError("node %d: no progress at %d of %d" % (nd.id, offset, hw))
            except Exception as e:  # noqa: BLE001 (not the leader, down, ...)
                last_err = e
        time.sleep(0.3)
    raise RuntimeError("could not read %s/%d: %s" % (topic, part, last_err))


# ---------------------------------------------------------------- workload

class Workload:
    def __init__(self, cl, topic, parts, seed, nprod, rate, msg_timeout_ms, group=True):
        self.cl = cl
        self.topic = topic
        self.parts = parts
        self.seed = seed
        self.nprod = nprod
        self.rate = rate
        self.msg_timeout_ms = msg_timeout_ms
        self.group_id = "nem-g-%d-%d" % (seed, os.getpid())
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}        # value -> (t_send, partition)
        self.acked = {}       # value -> (partition, offset, t_send, t_ack)
        self.failed = {}      # value -> (t_send, error name, retriable/timeout?)
        self.fatal = []       # (t, producer, error)
        self.reads = {}       # (partition, offset) -> value
        self.read_conflicts = []
        self.commits = []     # (t, partition, offset) acknowledged commits
        self.commit_errors = collections.Counter()
        self.threads = []
        self.isolation = "read_committed"   # librdkafka's default; --txn relies on it
        self.stop_deadline = float("inf")
        self.t0 = now()

    def start(self):
        for w in range(self.nprod):
            t = threading.Thread(target=self._producer, args=(w,), daemon=True)
            t.start()
            self.threads.append(t)
        if self.group_id:
            t = threading.Thread(target=self._consumer, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self, timeout):
        self.stop_ev.set()
        deadline = now() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - now()))
        return [t for t in self.threads if t.is_alive()]

    def _debug(self):
        """NEMESIS_CLIENT_DEBUG=eos,msg,protocol: librdkafka debug logs of the
        producers into clients.log in the run directory."""
        d = os.environ.get("NEMESIS_CLIENT_DEBUG")
        if not d:
            return {}
        with self.lock:
            return self._debug_locked(d)

    def _debug_locked(self, d):
        if getattr(self, "_logger", None) is None:
            import logging
            lg = logging.getLogger("nem-%d" % id(self))
            lg.setLevel(logging.DEBUG)
            lg.propagate = False
            h = logging.FileHandler(os.path.join(self.cl.workdir, "clients.log"))
            h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            lg.addHandler(h)
            self._logger = lg
        return {"debug": d, "log_level": 7, "logger": self._logger}

    def _new_producer(self, on_err):
        return Producer(dict(QUIET, **self._debug(), **{
            "error_cb": on_err,
            "bootstrap.servers": self.cl.all_bootstrap(), "acks": "all",
            "enable.idempotence": True, "linger.ms": 5, "compression.type": "none",
            "message.timeout.ms": self.msg_timeout_ms, "request.timeout.ms": 3000,
            "metadata.max.age.ms": 2000, "topic.metadata.refresh.interval.ms": 1000,
            "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 3000,
        }))

    def _producer(self, w):
        gen = 0
        seq = 0
        fatal = []

        def on_err(err):
            if err.fatal():
                fatal.append(err)

        def cb(err, m):
            v = m.value()
            t = now()
            with self.lock:
                ts = self.sent[v][0]
                if err is None:
                    self.acked[v] = (m.partition(), m.offset(), ts, t)
                else:
                    code = err.code()
                    self.failed[v] = (ts, err.name(), code in TIMEOUT_CODES)

        def make():
            return self._new_producer(on_err)
        p = make()
        period = 1.0 / self.rate
        next_t = now()
        while not self.stop_ev.is_set():
            if fatal:
                self.fatal.append((now(), "w%d.%d" % (w, gen), str(fatal[0])))
                fatal.clear()
                try:
                    p.flush(1)
                except Exception:
                    pass
                gen += 1
                p = make()
            v = ("s%d-w%d.%d-%08d" % (self.seed, w, gen, seq)).encode()
            part = seq % self.parts
            with self.lock:
                self.sent[v] = (now(), part)
            try:
                p.produce(self.topic, value=v, key=v, partition=part, on_delivery=cb)
                seq += 1
            except BufferError:
                with self.lock:
                    del self.sent[v]
            except KafkaException as e:
                with self.lock:
                    del self.sent[v]
                if e.args[0].fatal():
                    fatal.append(e.args[0])
            p.poll(0)
            next_t += period
            d = next_t - now()
            if d > 0:
                time.sleep(d)
            else:
                next_t = now()
        left = p.flush(self.msg_timeout_ms / 1000.0 + 10)
        self.left_unresolved = getattr(self, "left_unresolved", 0) + left

    def _consumer(self):
        c = Consumer(dict(QUIET, **{
            "bootstrap.servers": self.cl.all_bootstrap(), "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "metadata.max.age.ms": 2000,
            "topic.metadata.refresh.interval.ms": 1000, "socket.timeout.ms": 5000,
            # librdkafka's default backoff grows to 10 s between reconnects:
            # after kill-all the consumer then sat idle past the workload's
            # end (reads lagged the acks in about half the runs of seed 3)
            "reconnect.backoff.max.ms": 1000,
            "isolation.level": self.isolation,
        }))
        c.assign([TopicPartition(self.topic, p, 0) for p in range(self.parts)])
        pos = {}
        last_commit = now()
        while not self.stop_ev.is_set():
            m = c.poll(0.2)
            if m is not None and not m.error():
                k = (m.partition(), m.offset())
                with self.lock:
                    old = self.reads.get(k)
                    if old is not None and old != m.value():
                        self.read_conflicts.append((k, old, m.value()))
                    self.reads[k] = m.value()
                pos[m.partition()] = m.offset() + 1
            if now() - last_commit >= 0.5 and pos:
                last_commit = now()
                offs = [TopicPartition(self.topic, p, o) for p, o in sorted(pos.items())]
                try:
                    res = c.commit(offsets=offs, asynchronous=False)
                    t = now()
                    with self.lock:
                        for tp in res:
                            if tp.error is None:
                                self.commits.append((t, tp.partition, tp.offset))
                            else:
                                self.commit_errors[tp.error.name()] += 1
                except KafkaException as e:
                    self.commit_errors[e.args[0].name()] += 1
        try:
            c.close()
        except Exception:
            pass


# ---------------------------------------------------------------- checker

def same_session_hint(v, there):
    """When an acknowledged value is missing and its offset holds an earlier
    value of the same producer session, the broker answered its batch as a
    duplicate of that one: the client reused a sequence number (docs/testing.md,
    "Nemesis", known issue: sequence reuse after an aborted transaction)."""
    if not there:
        return ""
    try:
        a, b = v.decode().rsplit("-", 1), there.decode().rsplit("-", 1)
    except Exception:  # noqa: BLE001
        return ""
    if a[0] != b[0]:
        return ""
    return (" (that offset holds %s, an earlier record of the same producer session: the batch "
            "was answered as a duplicate of it, a reused sequence number)" % there.decode())


def epoch_bump_resend(copies):
    """Whether the copies of a value (partition, offset, producer id, epoch)
    are one producer's resends under ever newer epochs: the client sent the
    value again after bumping its epoch (librdkafka does so for messages it
    holds "possibly persisted" when another partition's OUT_OF_ORDER_SEQUENCE
    or its own message timeouts make it bump: librdkafka issue 4953). No
    broker can deduplicate across epochs (KIP-98); Kafka keeps both too."""
    if len({(c[0], c[2]) for c in copies}) != 1 or copies[0][2] < 0:
        return False
    epochs = [c[3] for c in sorted(copies, key=lambda c: c[1])]
    return all(b > a for a, b in zip(epochs, epochs[1:]))


def check(wl, reads, reread, committed, violations, starts=None, anomalies=None):
    """reads / reread: partition -> (node, hw, batches). Appends violations,
    and the allowed anomalies (a value the client resent under a newer
    producer epoch: epoch_bump_resend) to anomalies when given (else they
    count as violations). starts (retention runs): partition -> log start of
    the read; what was below it is gone by design and not looked for."""
    starts = starts or {}
    topic_values = {}          # value -> [(partition, offset)]
    copies = {}                # value -> [(partition, offset, producer id, epoch)]
    at = {}                    # (partition, offset) -> value
    order = collections.defaultdict(list)   # (session, partition) -> [seq in log order]
    for part, (node, hw, batches) in sorted(reads.items()):
        expect = starts.get(part, 0)
        for base, last, raw, b in batches:
            if not b["crc_ok"]:
                violations.append("p%d: batch at %d fails CRC-32C (read from node %d)"
                                  % (part, base, node))
            if base != expect:
                violations.append("p%d: batch at %d, expected %d (%s)"
                                  % (part, base, expect, "gap" if base > expect else "overlap"))
            expect = last + 1
            if b["records"] is None:
                violations.append("p%d: compressed batch at %d" % (part, base))
                continue
            if b["attributes"] & 0x20:   # a control batch: a transaction marker
                if len(b["records"]) != 1 or last != base:
                    violations.append("p%d: control batch at %d holds %d records"
                                      % (part, base, len(b["records"])))
                for r in b["records"]:
                    at[(part, r["offset"])] = None
                continue
            offs = [r["offset"] for r in b["records"]]
            if offs != list(range(base, last + 1)):
                violations.append("p%d: batch at %d has record offsets %s..." % (part, base, offs[:5]))
            for r in b["records"]:
                v = r["value"]
                at[(part, r["offset"])] = v
                if v == b"probe":   # wait_writable's probes: not workload values
                    continue
                topic_values.setdefault(v, []).append((part, r["offset"]))
                copies.setdefault(v, []).append((part, r["offset"], b.get("producer_id", -1),
                                                 b.get("producer_epoch", -1)))
                try:
                    s = v.decode()
                    sess, seq = s.rsplit("-", 1)
                    order[(sess, part)].append((int(seq), r["offset"]))
                except Exception:
                    violations.append("p%d@%d: value not written by the harness: %r"
                                      % (part, r["offset"], v[:40]))
        if expect != hw:
            violations.append("p%d: batches end at %d, high watermark %d" % (part, expect, hw))
    resent = set()             # (partition, offset) of the later copies of resent values
    for v, where in topic_values.items():
        if len(where) > 1:
            if anomalies is not None and epoch_bump_resend(copies[v]):
                resent.update(sorted(where)[1:])
                anomalies.append("resent under a new producer epoch: %s at %s (epochs %s)" % (
                    v.decode("utf-8", "replace"), where, [c[3] for c in copies[v]]))
                continue
            violations.append("duplicate: %s at %s" % (v.decode("utf-8", "replace"), where))
    for (sess, part), entries in order.items():
        seqs = [q for q, off in entries if (part, off) not in resent]
        for a, b in zip(seqs, seqs[1:]):
            if b <= a:
                violations.append("reordered: %s p%d: seq %d after %d" % (sess, part, b, a))
                break
    lost = 0
    aged = 0
    for v, (part, off, ts, ta) in wl.acked.items():
        where = topic_values.get(v)
        if off < starts.get(part, 0):
            aged += 1
            if where:
                violations.append("p%d: %s acknowledged at %d, below the log start %d, still read"
                                  % (part, v.decode(), off, starts[part]))
            continue
        if not where:
            lost += 1
            if lost <= 20:
                violations.append("lost ack: %s acknowledged at p%d@%d, not in the log%s"
                                  % (v.decode(), part, off, same_session_hint(v, at.get((part, off)))))
        elif (part, off) not in where:
            violations.append("moved: %s acknowledged at p%d@%d, found at %s"
                              % (v.decode(), part, off, where))
    if lost > 20:
        violations.append("lost ack: %d acknowledged values in all" % lost)
    changed = 0
    for (part, off), v in wl.reads.items():
        if v == b"probe" or off < starts.get(part, 0):
            continue
        if at.get((part, off)) != v:
            changed += 1
            if changed <= 20:
                violations.append("served then changed: p%d@%d was read as %s, now %r"
                                  % (part, off, v.decode(), at.get((part, off))))
    for k, old, new in wl.read_conflicts:
        violations.append("two values at p%d@%d read by the consumer: %r, %r" % (k[0], k[1], old, new))
    if reread is not None:
        for part in reads:
            a = reads[part]
            b = reread.get(part)
            if b is None:
                continue
            if a[1] != b[1]:
                violations.append("p%d: high watermark %d from node %d, %d from node %d after a "
                                  "leader change" % (part, a[1], a[0], b[1], b[0]))
            # Replicas trim on their own: compare from the later start.
            lo = max(a[2][0][0] if a[2] else a[1], b[2][0][0] if b[2] else b[1])
            ra = b"".join(x[2] for x in a[2] if x[0] >= lo)
            rb = b"".join(x[2] for x in b[2] if x[0] >= lo)
            if ra != rb:
                n = min(len(ra), len(rb))
                i = next((k for k in range(n) if ra[k] != rb[k]), n)
                violations.append("p%d: log bytes differ between leaders %d and %d at byte %d "
                                  "(%d vs %d bytes)" % (part, a[0], b[0], i, len(ra), len(rb)))
    last = {}
    for t, part, off in wl.commits:
        if part in last and off < last[part]:
            violations.append("p%d: commit of %d acknowledged after one of %d" % (part, off, last[part]))
        last[part] = max(off, last.get(part, -1))
    if committed is not None:
        for part, off in last.items():
            got = committed.get(part)
            hw = reads[part][1] if part in reads else None
            if got is None or got < off:
                violations.append("p%d: committed offset %s after heal, below the acknowledged "
                                  "commit %d (went backwards)" % (part, got, off))
            elif hw is not None and got > hw:
                violations.append("p%d: committed offset %d past the high watermark %d"
                                  % (part, got, hw))
    if starts:
        wl.aged_out = aged
    return len(topic_values)


def committed_offsets(cl, topic, parts, group, timeout=30.0):
    deadline = now() + timeout
    err = None
    while now() < deadline:
        c = Consumer(dict(QUIET, **{"bootstrap.servers": cl.all_bootstrap(), "group.id": group,
                                    "enable.auto.commit": False}))
        try:
            res = c.committed([TopicPartition(topic, p) for p in range(parts)], timeout=10)
            if all(tp.error is None for tp in res):
                return {tp.partition: tp.offset for tp in res if tp.offset >= 0}
            err = [tp.error for tp in res if tp.error]
        except KafkaException as e:
            err = e
        finally:
            c.close()
        time.sleep(0.5)
    raise RuntimeError("OffsetFetch failed: %s" % err)


# ---------------------------------------------------------------- one run

def wait_writable(cl, topic, parts, timeout):
    """Every partition takes an acks=all write (probe values, not checked)."""
    p = Producer(dict(QUIET, **{"bootstrap.servers": cl.all_bootstrap(), "acks": "all",
                                "enable.idempotence": True, "message.timeout.ms": int(timeout * 1000),
                                "metadata.max.age.ms": 1000, "topic.metadata.refresh.interval.ms": 500}))
    res = {}
    t0 = now()
    for part in range(parts):
        p.produce(topic, value=b"probe", partition=part,
                  on_delivery=lambda err, m, part=part: res.__setitem__(part, err))
    p.flush(timeout + 5)
    bad = {k: str(v) for k, v in res.items() if v is not None}
    if len(res) < parts or bad:
        return None, bad or "no answer"
    return now() - t0, None


def finish_amqp(aw, cl, log, violations, result, windows, t0, nfaults):
    """The AMQP mode's end: drain, check, availability per window."""
    stuck = aw.stop(10.0)
    if stuck:
        violations.append("%d AMQP client thread(s) did not stop: %s"
                          % (len(stuck), [t.name for t in stuck]))
    try:
        depth = aw.final_depth()
    except Exception as e:  # noqa: BLE001 (404: the queue is gone)
        violations.append("the queue is gone after the faults: %s" % e)
        depth = None
    log("amqp: served by node %s at the end; queue depth %s" % (amqpwl.serving_node(cl), depth))
    if depth:
        violations.append("%d message(s) left in the queue after the drain" % depth)
    anomalies = []
    res = amqpwl.check(aw, violations, anomalies)
    for x in anomalies:
        log("allowed anomaly (client): " + x)
    log("amqp workload: %d sent, %d confirmed, %d failed, %d values delivered (%d deliveries); "
        "errors %s; connections per node %s" % (res["sent"], res["confirmed"], res["failed"],
                                                res["delivered_values"], res["deliveries"],
                                                res["errors"], res["connects"]))
    avail = []
    for ws, we, label in windows:
        ok = fail = 0
        lat = 0.0
        for v, ts in aw.sent.items():
            if not (ws <= ts - t0 < we):
                continue
            if v in aw.acked:
                ok += 1
                lat = max(lat, aw.acked[v] - ts)
            elif v in aw.failed:
                fail += 1
        avail.append({"window": label, "from": round(ws, 1), "to": round(we, 1), "ok": ok,
                      "failed": fail, "timed_out": 0, "max_ack_s": round(lat, 2)})
    if cl.dead():
        violations.append("node(s) %s exited by themselves" % cl.dead())
    result.update(amqp=res, sent=res["sent"], acked=res["confirmed"], failed=res["failed"],
                  availability=avail, faults=nfaults, proxy=dict(cl.proxy.stats))


def run_seed(args, seed, binary):
    t_start = now()
    wall0 = time.time()
    run_dir = os.path.join(args.dir, "seed-%d" % seed)
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    lines = []

    def log(s):
        line = "[seed %d %6.2f] %s" % (seed, now() - t_start, s)
        lines.append(line)
        if args.verbose:
            print(line, flush=True)

    sched = faults.schedule(seed, args.nodes, args.duration, args.kinds, warmup=2.0,
                            fault_s=(args.fault_min, args.fault_max),
                            heal_s=(args.heal_min, args.heal_max))
    log("schedule: " + "; ".join("%.1f-%.1f %s" % (a, b, faults.describe(p))
                                 for a, b, _, p in sched))
    cl = Cluster(args.nodes, run_dir, binary, seed=seed,
                 settings=RETENTION_SETTINGS if args.retention else None, amqp=args.amqp)
    violations = []
    result = {"seed": seed, "nodes": args.nodes, "dir": run_dir}
    topic = "nem-%d" % seed
    try:
        cl.start()
        log("nodes up: " + ", ".join("%d kafka %s" % (i, cl.node(i).bootstrap) for i in cl.ids()))
        a = AdminClient(dict(QUIET, **{"bootstrap.servers": cl.all_bootstrap()}))
        deadline = now() + 30
        while True:
            try:
                a.create_topics([NewTopic(topic, num_partitions=args.partitions,
                                          replication_factor=args.rf or args.nodes,
                                          config=RETENTION_TOPIC if args.retention else {})]
                                )[topic].result(10)
                break
            except Exception as e:  # noqa: BLE001 (no controller yet)
                if "already exists" in str(e).lower() or now() > deadline:
                    if now() > deadline:
                        raise
                    break
                time.sleep(0.5)
        dt, err = wait_writable(cl, topic, args.partitions, 30)
        if err:
            raise RuntimeError("topic never writable: %s" % err)
        log("topic %s (%d partitions, RF %d) writable after %.1fs"
            % (topic, args.partitions, args.rf or args.nodes, dt))

        if args.amqp:
            wl = amqpwl.AmqpWorkload(cl, seed, args.producers, args.rate, log)
        else:
            wl = Workload(cl, topic, args.partitions, seed, args.producers, args.rate,
                          args.msg_timeout_ms, group=True)
        tw = None
        if args.txn:
            tw = txnmod.TxnWorkload(wl, args.producers, txn_timeout_ms=args.txn_timeout_ms,
                                   op_timeout=args.txn_op_timeout,
                                   unflushed_aborts=args.txn_unflushed_aborts,
                                   ctp=args.txn_ctp)
        leader_cache = {}

        def leader_of(idx):
            if args.amqp:   # the node that serves AMQP (and leads its queue's log)
                return amqpwl.serving_node(cl)
            ls = leaders(cl, topic, args.partitions)
            leader_cache.update(ls)
            return ls.get(idx % args.partitions)

        def coordinator():
            return txnmod.txn_coordinator(cl, tw.tids[0] if tw else "nem-probe")
        rf = args.rf or args.nodes

        def mover(idx, order):
            part = idx % args.partitions
            target = order[:rf]
            for nd in cl.nodes.values():
                if not nd.alive() or nd.paused:
                    continue
                try:
                    err, res = kwire.alter_partition_reassignments(nd.bootstrap,
                                                                   {topic: {part: target}})
                except Exception as e:  # noqa: BLE001 (down, partitioned, slow)
                    log("  move of partition %d to %s via node %d: %s" % (part, target, nd.id, e))
                    continue
                log("  move partition %d to %s (via node %d): error %s" %
                    (part, target, nd.id, res.get((topic, part), (err,))[0]))
                return
        def http_call(nd, method, path):
            conn = http.client.HTTPConnection("127.0.0.1", nd.hport, timeout=5)
            try:
                conn.request(method, path)
                r = conn.getresponse()
                return r.status, json.loads(r.read() or b"null")
            finally:
                conn.close()

        def member_lists(exclude):
            """node -> the member ids it lists, for live nodes but exclude."""
            out = {}
            for nd in cl.nodes.values():
                if nd.id == exclude or not nd.alive() or nd.paused:
                    continue
                try:
                    st, body = http_call(nd, "GET", "/cluster/nodes")
                    if st == 200:
                        out[nd.id] = sorted(x["id"] for x in body["nodes"])
                except Exception:  # noqa: BLE001 (down, starting)
                    pass
            return out

        def rejoiner(k, victim):
            """MEMBER_KINDS: node k leaves, is wiped and joins again."""
            deadline = now() + 90
            started = False
            while not started and now() < deadline:
                for nd in cl.nodes.values():
                    if nd.id == k or not nd.alive() or nd.paused:
                        continue
                    try:
                        st, body = http_call(nd, "DELETE", "/cluster/nodes/%d" % k)
                    except Exception as e:  # noqa: BLE001
                        log("  removal of node %d via node %d: %s" % (k, nd.id, e))
                        continue
                    log("  removal of node %d via node %d: %s %s" % (k, nd.id, st, body))
                    if st != 202 and st != 503:
                        # Refused with a reason (a removal still running
                        # elsewhere leaves too few members): nothing to do.
                        log("  removal of node %d refused: nothing done" % k)
                        return
                    started = st == 202
                    break
                if not started:
                    time.sleep(0.5)
            if victim is not None:
                time.sleep(0.5)
                log("  kill -9 node %d during the leave (restarted in 2 s)" % victim)
                cl.node(victim).kill9()
                killed_at = now()
            while now() < deadline:
                if victim is not None and not cl.node(victim).alive() and now() - killed_at > 2:
                    cl.node(victim).start()
                lists = member_lists(k)
                if started and lists and all(k not in v for v in lists.values()):
                    break
                time.sleep(0.3)
            else:
                violations.append("membership: node %d not removed within 90 s (members: %s)"
                                  % (k, member_lists(k)))
                return
            if victim is not None and not cl.node(victim).alive():
                cl.node(victim).start()
            log("  node %d removed after %.1fs; wiped, joining again" % (k, 90 - (deadline - now())))
            nd = cl.node(k)
            nd.stop()
            shutil.rmtree(nd.data_dir, ignore_errors=True)
            os.makedirs(nd.data_dir, exist_ok=True)
            nd.join = True
            nd.start()
            deadline = now() + 90
            while now() < deadline:
                lists = member_lists(None)
                if lists and len(lists) == len(cl.ids()) and \
                        all(v == cl.ids() for v in lists.values()):
                    log("  node %d a member again after %.1fs" % (k, 90 - (deadline - now())))
                    return
                time.sleep(0.3)
            violations.append("membership: node %d not a member again within 90 s (members: "
                              "%s)" % (k, member_lists(None)))

        nem = faults.Nemesis(cl, leader_of, log, coordinator, mover, rejoiner)
        windows = [(0.0, 2.0, "warmup")]
        t0 = now()
        wl.t0 = t0
        (tw or wl).start()
        for start, fend, hend, p in sched:
            while now() - t0 < start:
                time.sleep(0.05)
            log("fault: %s" % faults.describe(p))
            fs = now() - t0
            nem.apply(p, time.time() + (fend - start), now())
            while now() - t0 < fend:
                nem.tick(now())
                time.sleep(0.05)
            crashed = cl.dead()
            if crashed:
                violations.append("node(s) %s exited by themselves during %s"
                                  % (crashed, faults.describe(p)))
            nem.heal()
            fe = now() - t0
            windows.append((fs, fe, faults.describe(p)))
            log("healed (%.1fs after the fault began)" % (fe - fs))
            windows.append((fe, hend, "heal"))
        end_t = sched[-1][2] if sched else args.duration
        while now() - t0 < end_t:
            time.sleep(0.05)
        cl.heal_all()
        # Producers keep going for a while after the last heal: availability
        # comes back (or not) here.
        tail0 = now() - t0
        time.sleep(args.tail)
        windows.append((tail0, now() - t0, "after heal"))
        if args.amqp:
            finish_amqp(wl, cl, log, violations, result, windows, t0, len(sched))
            raise StopIteration
        if tw:
            stuck = tw.stop(3 * args.txn_op_timeout + 10)
        else:
            stuck = wl.stop(args.msg_timeout_ms / 1000.0 + 20)
        # librdkafka 2.0.2 can block send_offsets_to_transaction past its
        # timeout: when its FindCoordinator for the group has heard
        # COORDINATOR_NOT_AVAILABLE for all its retries (an election of
        # __consumer_offsets-0 in progress), the request waits for a
        # broker connection to change state, which in a healed cluster may
        # not come before the end (librdkafka issue 5456). No request of
        # the transaction is left at the broker then. Such a thread is
        # reported, not counted as a violation; any other stuck thread is.
        stalls = []
        frames = sys._current_frames()
        for t in stuck:
            f = frames.get(t.ident)
            where = traceback.extract_stack(f)[-1] if f else None
            log("stuck client thread %s:\n%s" % (t.name, "".join(traceback.format_stack(f))
                                                  if f else "(no frame)"))
            if where and where.name == "_ctp" and "send_offsets_to_transaction" in where.line:
                stalls.append(t)
                tw.stalled(t)
        result["client_stalls"] = len(stalls)
        if len(stuck) > len(stalls):
            violations.append("%d client thread(s) did not stop" % (len(stuck) - len(stalls)))
        if tw:
            tc = tw.counts()
            log("transactions: %d committed, %d aborted, %d never committed, %d unknown, %d "
                "open; %d given up with their producer; %d producers made (%d after an "
                "abort that followed an error), %d init errors; errors %s"
                % (tc["committed"], tc["aborted"], tc["never"], tc["unknown"], tc[None],
                   tc["fenced"], tw.inits["made"], tw.renewals, tw.inits["init_errors"],
                   dict(tw.errors)))
            for ev in tw.events[:40]:
                log("  client error at %.2fs: transactional id %d gen %d txn %d in %s: %s" % ev)
            if len(tw.events) > 40:
                log("  ... %d client errors in all" % len(tw.events))
        log("workload stopped: %d sent, %d acked, %d failed (%d timed out), %d fatal producer "
            "errors, %d reads, %d commits" % (len(wl.sent), len(wl.acked), len(wl.failed),
                                              sum(1 for x in wl.failed.values() if x[2]),
                                              len(wl.fatal), len(wl.reads), len(wl.commits)))
        # Final reads: heal, everything up, every partition writable.
        dt, err = wait_writable(cl, topic, args.partitions, args.recover_timeout)
        if err:
            violations.append("cluster not writable %.0fs after the final heal: %s"
                              % (args.recover_timeout, err))
            raise StopIteration
        log("writable %.1fs after the final heal" % dt)
        reads = {}
        for part in range(args.partitions):
            reads[part] = raw_fetch_all(cl, topic, part, from_start=args.retention)
        log("read back: " + ", ".join("p%d from node %d hw %d" % (p, r[0], r[1])
                                      for p, r in sorted(reads.items())))
        # Leader change: kill the node that served partition 0, read again
        # from the new leaders, then bring it back.
        reread = None
        victim = reads[0][0]
        cl.node(victim).kill9()
        log("leader change: kill -9 node %d" % victim)
        try:
            reread = {}
            for part in range(args.partitions):
                reread[part] = raw_fetch_all(cl, topic, part, timeout=args.recover_timeout,
                                             from_start=args.retention)
            log("read again: " + ", ".join("p%d from node %d hw %d" % (p, r[0], r[1])
                                           for p, r in sorted(reread.items())))
        except RuntimeError as e:
            violations.append("no new leader after killing node %d: %s" % (victim, e))
            reread = None
        cl.node(victim).start()
        committed = None
        try:
            committed = committed_offsets(cl, topic, args.partitions, wl.group_id)
        except RuntimeError as e:
            violations.append(str(e))
        starts = None
        if args.retention:
            starts = {p: (r[2][0][0] if r[2] else r[1]) for p, r in reads.items()}
            log("log starts after retention: " + ", ".join("p%d %d" % kv for kv in sorted(starts.items())))
        anomalies = []
        nvals = check(wl, reads, reread, committed, violations, starts, anomalies)
        result.update(values_in_log=nvals, epoch_resends=len(anomalies))
        for x in anomalies[:20]:
            log("allowed anomaly (client): " + x)
        if args.retention:
            result.update(log_starts=starts, aged_out=getattr(wl, "aged_out", 0))
            if not any(starts.values()):
                violations.append("retention run: no partition's log start moved (nothing "
                                  "was tested)")
        if tw:
            stable = txnmod.stable_offsets(cl, topic, args.partitions,
                                           args.txn_timeout_ms / 1000.0 + 20)
            log("last stable offsets: " + ", ".join("p%d hw %d lso %d" % (p, h, s_)
                                                     for p, (h, s_) in sorted(stable.items())))
            ends = {p: stable.get(p, (0, 0))[0] for p in range(args.partitions)}
            rc, eof = txnmod.read_committed_all(cl.all_bootstrap(), topic, args.partitions, ends)
            log("read_committed: " + ", ".join("p%d %d records, end %s" % (p, len(rc[p]), eof.get(p))
                                                for p in range(args.partitions)))
            served = dict(wl.reads)
            for k, val in tw.ctp_reads.items():
                if served.setdefault(k, val) != val:
                    violations.append("p%d@%d served as %r to one consumer, %r to another"
                                      % (k[0], k[1], served[k], val))
            tres = txnmod.check_txn(tw.txns, rc, served, stable, eof, violations)
            if tw.ctp:
                try:
                    ctp_committed = committed_offsets(cl, topic, args.partitions, tw.ctp_group)
                except RuntimeError as e:
                    violations.append("consume-transform-produce group: %s" % e)
                    ctp_committed = None
                cres = txnmod.check_ctp(tw.txns, rc, ctp_committed, violations)
                log("consume-transform-produce: %s; group committed %s; rewinds %s"
                    % (dict(cres), ctp_committed, dict(tw.ctp_rewinds)))
                result.update(ctp={k: cres.get(k, 0) for k in
                                   ("ctp_effective", "ctp_reads", "ctp_covered", "ctp_edges")})
            result.update(txn={k: tres.get(k, 0) for k in
                               ("committed", "aborted", "never", "unknown", "unknown_visible",
                                "unknown_invisible", "visible_values")},
                          txn_fenced=tw.counts()["fenced"], txn_errors=dict(tw.errors),
                          txn_producers=tw.inits["made"])
        if cl.dead():
            violations.append("node(s) %s exited by themselves" % cl.dead())
        # Availability per window.
        avail = []
        for ws, we, label in windows:
            ok = fail = tmo = 0
            lat = 0.0
            for v, (ts, part) in wl.sent.items():
                t = ts - t0
                if not (ws <= t < we):
                    continue
                if v in wl.acked:
                    ok += 1
                    lat = max(lat, wl.acked[v][3] - ts)
                elif v in wl.failed:
                    if wl.failed[v][2]:
                        tmo += 1
                    else:
                        fail += 1
            avail.append({"window": label, "from": round(ws, 1), "to": round(we, 1),
                          "ok": ok, "failed": fail, "timed_out": tmo,
                          "max_ack_s": round(lat, 2)})
        errs = collections.Counter(x[1] for x in wl.failed.values())
        result.update(sent=len(wl.sent), acked=len(wl.acked), failed=len(wl.failed),
                      timed_out=sum(1 for x in wl.failed.values() if x[2]),
                      errors=dict(errs), fatal=[x[1:] for x in wl.fatal],
                      reads=len(wl.reads), commits=len(wl.commits),
                      commit_errors=dict(wl.commit_errors), availability=avail,
                      faults=len(sched), proxy=dict(cl.proxy.stats))
    except StopIteration:
        pass
    except Exception as e:  # noqa: BLE001
        violations.append("harness error: %s\n%s" % (e, traceback.format_exc()))
    finally:
        st = cl.stop()
        bad = {i: s for i, s in st.items() if s not in (0, None, -signal.SIGKILL)}
        if bad:
            violations.append("unclean exit at the end (SIGTERM): %s" % bad)
        for x, s in cl.unclean:
            violations.append("node %d exited with %s after SIGTERM in a rolling restart" % (x, s))
    result.update(violations=violations, schedule=[(a, b, c, p) for a, b, c, p in sched],
                  runtime=round(now() - t_start, 1), started=wall0)
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(run_dir, "harness.log"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return result, lines, cl


def parse_seeds(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("CAIRN_BIN", os.path.join(REPO, "build", "cairn")))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rf", type=int, default=0,
                    help="replication factor of the topic (default: the node count); below "
                         "it, placement puts each partition on rf nodes and the others learn "
                         "its leader from leadership reports")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=50, help="messages/s per producer")
    ap.add_argument("--duration", type=float, default=20, help="fault phase, seconds")
    ap.add_argument("--fault-min", type=float, default=2.0)
    ap.add_argument("--fault-max", type=float, default=6.0)
    ap.add_argument("--heal-min", type=float, default=1.0)
    ap.add_argument("--heal-max", type=float, default=4.0)
    ap.add_argument("--tail", type=float, default=4.0, help="load after the final heal, s")
    ap.add_argument("--msg-timeout-ms", type=int, default=10000)
    ap.add_argument("--recover-timeout", type=float, default=45.0)
    ap.add_argument("--kinds", default=None, help="comma list of fault kinds (default: all)")
    ap.add_argument("--txn", action="store_true",
                    help="transactional workload and checker (txn.py); kinds from TXN_KINDS")
    ap.add_argument("--txn-timeout-ms", type=int, default=20000)
    ap.add_argument("--txn-op-timeout", type=float, default=15.0)
    ap.add_argument("--txn-unflushed-aborts", type=float, default=0.5,
                    help="share of planned aborts made without flushing first (0: none)")
    ap.add_argument("--txn-ctp", type=int, default=0,
                    help="with --txn: consume-transform-produce workers (G1c, exactly-once "
                         "processing; txn.check_ctp)")
    ap.add_argument("--retention", action="store_true",
                    help="small segments and retention.bytes: Raft snapshots move every "
                         "replica's log start during the faults (InstallSnapshot to nodes "
                         "that come back behind); the checker skips what is below the start")
    ap.add_argument("--amqp", action="store_true",
                    help="the AMQP workload (amqpwl.py): confirmed publishes to a durable "
                         "queue, consumers with acks, nothing confirmed may be lost")
    ap.add_argument("--time-limit", type=float, default=0, help="stop starting seeds after this")
    ap.add_argument("--dir", default=None, help="run directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep run directories of passing seeds")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.retention and args.txn:
        ap.error("--retention and --txn are not combined (the read_committed check reads from 0)")
    if args.kinds:
        args.kinds = args.kinds.split(",")
        for k in args.kinds:
            if k not in faults.ALL_KINDS:
                ap.error("unknown fault kind %s (known: %s)" % (k, ", ".join(faults.ALL_KINDS)))
    elif args.txn:
        args.kinds = faults.TXN_KINDS
    if not os.access(args.bin, os.X_OK):
        ap.error("no cairn binary at %s (make build/cairn, or --bin)" % args.bin)
    made_dir = args.dir is None
    args.dir = args.dir or tempfile.mkdtemp(prefix="cairn-nemesis-")
    os.makedirs(args.dir, exist_ok=True)
    seeds = parse_seeds(args.seeds)
    T0 = now()
    totals = collections.Counter()
    failed = []
    print("nemesis: %d node(s), seeds %s, %.0fs of faults each, run dir %s"
          % (args.nodes, args.seeds, args.duration, args.dir), flush=True)
    for seed in seeds:
        if args.time_limit and now() - T0 > args.time_limit:
            print("time limit reached before seed %d" % seed)
            break
        res, lines, cl = run_seed(args, seed, args.bin)
        totals["seeds"] += 1
        for k in ("sent", "acked", "failed", "timed_out", "reads", "commits", "faults",
                  "values_in_log", "epoch_resends"):
            totals[k] += res.get(k, 0) or 0
        v = res["violations"]
        totals["violations"] += len(v)
        avail = " ".join("%s:%d/%d/%d/%.1fs" % (w["window"].split(" ")[0], w["ok"], w["failed"],
                                                w["timed_out"], w["max_ack_s"])
                         for w in res.get("availability", []))
        print("seed %d: %d faults, %s sent, %s acked, %s failed (%s timed out), %s read by the "
              "consumer, %s commits, %s values checked, %d violations, %.1fs"
              % (seed, res.get("faults", 0), res.get("sent"), res.get("acked"), res.get("failed"),
                 res.get("timed_out"), res.get("reads"), res.get("commits"),
                 res.get("values_in_log"), len(v), res["runtime"]), flush=True)
        print("  availability (window:ok/failed/timed-out/slowest ack): %s" % avail, flush=True)
        if res.get("epoch_resends"):
            print("  allowed anomalies: %d value(s) resent by the client under a new producer "
                  "epoch (librdkafka issue 4953; harness.log lists them)" % res["epoch_resends"],
                  flush=True)
        if res.get("client_stalls"):
            totals["client_stalls"] += res["client_stalls"]
            print("  client stalls: %d consume-transform-produce worker(s) still inside "
                  "send_offsets_to_transaction at the end (librdkafka issue 5456; harness.log "
                  "has their stacks)" % res["client_stalls"], flush=True)
        if res.get("errors"):
            print("  producer errors: %s; fatal: %s; commit errors: %s"
                  % (res["errors"], res.get("fatal"), res.get("commit_errors")), flush=True)
        am = res.get("amqp")
        if am:
            for k in ("confirmed", "delivered_values", "deliveries", "lost", "duplicated",
                      "unflagged_repeats"):
                totals["amqp_" + k] += am.get(k, 0)
            print("  amqp: %d published, %d confirmed, %d failed; %d values delivered in %d "
                  "deliveries, %d lost, %d phantom, %d delivered more than once (%d repeats "
                  "without redelivered), %d unconfirmed ones delivered; connections per node %s"
                  % (am["sent"], am["confirmed"], am["failed"], am["delivered_values"],
                     am["deliveries"], am["lost"], am["phantom"], am["duplicated"],
                     am["unflagged_repeats"], am["unconfirmed_delivered"], am["connects"]),
                  flush=True)
        tx = res.get("txn")
        if tx:
            for k in ("committed", "aborted", "never", "unknown", "unknown_visible",
                      "unknown_invisible"):
                totals["txn_" + k] += tx.get(k, 0)
            totals["txn_fenced"] += res.get("txn_fenced", 0)
            print("  transactions: %d committed, %d aborted, %d never committed, %d unknown "
                  "(%d visible, %d not), %d given up with their producer (%d producers); "
                  "%d values visible under read_committed; client errors %s"
                  % (tx["committed"], tx["aborted"], tx["never"], tx["unknown"],
                     tx["unknown_visible"], tx["unknown_invisible"], res.get("txn_fenced", 0),
                     res.get("txn_producers", 0), tx["visible_values"], res.get("txn_errors")),
                  flush=True)
        ctp = res.get("ctp")
        if ctp:
            for k, n in ctp.items():
                totals[k] += n
            print("  consume-transform-produce: %d transactions took effect, %d records read by "
                  "them, %d below the group's offsets each processed once, %d write-read edges "
                  "checked for cycles" % (ctp["ctp_effective"], ctp["ctp_reads"],
                                          ctp["ctp_covered"], ctp["ctp_edges"]), flush=True)
        if v:
            failed.append(seed)
            print("\n".join(lines))
            print("VIOLATIONS (seed %d):" % seed)
            for x in v[:60]:
                print("  - " + x)
            for i in cl.ids():
                print("----- tail of node %d log (%s)" % (i, cl.node(i).log_path))
                print(cl.node(i).log_tail(3000))
            kinds = ""
            if args.kinds and args.kinds != (faults.TXN_KINDS if args.txn else faults.KINDS):
                kinds = " --kinds " + ",".join(args.kinds)
            print("replay: /usr/bin/python3 tests/nemesis/nemesis.py --seeds %d --nodes %d "
                  "--duration %g --partitions %d --producers %d --rate %g --fault-min %g "
                  "--fault-max %g --heal-min %g --heal-max %g%s%s -v"
                  % (seed, args.nodes, args.duration, args.partitions, args.producers, args.rate,
                     args.fault_min, args.fault_max, args.heal_min, args.heal_max,
                     (" --txn --txn-op-timeout %g --txn-unflushed-aborts %g --txn-ctp %d"
                      % (args.txn_op_timeout, args.txn_unflushed_aborts, args.txn_ctp))
                     if args.txn else "",
                     kinds))
            print("kept: %s" % res["dir"], flush=True)
        elif not args.keep:
            shutil.rmtree(res["dir"], ignore_errors=True)
    print("nemesis: %d seeds, %d faults, %d sent, %d acked, %d failed (%d timed out), %d "
          "values checked, %d consumer reads, %d commits, %d violations%s, %.0fs"
          % (totals["seeds"], totals["faults"], totals["sent"], totals["acked"], totals["failed"],
             totals["timed_out"], totals["values_in_log"], totals["reads"], totals["commits"],
             totals["violations"], (" (seeds %s)" % failed) if failed else "", now() - T0),
          flush=True)
    if totals["client_stalls"]:
        print("nemesis: %d client stall(s) in send_offsets_to_transaction (librdkafka issue "
              "5456, client-side)" % totals["client_stalls"], flush=True)
    if totals["epoch_resends"]:
        print("nemesis: %d value(s) resent by the client under a new producer epoch (allowed, "
              "client-side)" % totals["epoch_resends"], flush=True)
    if totals["txn_committed"] or totals["txn_aborted"] or totals["txn_unknown"]:
        print("nemesis: transactions %d committed, %d aborted, %d never committed, %d unknown "
              "(%d visible, %d not), %d given up with their producer"
              % (totals["txn_committed"], totals["txn_aborted"], totals["txn_never"],
                 totals["txn_unknown"], totals["txn_unknown_visible"],
                 totals["txn_unknown_invisible"], totals["txn_fenced"]), flush=True)
    if totals["ctp_effective"]:
        print("nemesis: consume-transform-produce %d transactions took effect, %d records "
              "checked processed once, %d write-read edges without a cycle"
              % (totals["ctp_effective"], totals["ctp_covered"], totals["ctp_edges"]),
              flush=True)
    if totals["amqp_confirmed"]:
        print("nemesis: amqp %d confirmed, %d values delivered in %d deliveries, %d lost, %d "
              "delivered more than once (%d repeats without redelivered)"
              % (totals["amqp_confirmed"], totals["amqp_delivered_values"],
                 totals["amqp_deliveries"], totals["amqp_lost"], totals["amqp_duplicated"],
                 totals["amqp_unflagged_repeats"]), flush=True)
    if made_dir and not failed and not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
