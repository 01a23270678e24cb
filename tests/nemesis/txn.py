"""The nemesis harness's transactional workload and checker (`nemesis.py --txn`).

Workload: `producers` confluent-kafka transactional producers, one
transactional.id each, run transactions of 2-6 records over several
partitions (acks=all), back to back. Most are committed, about one in five
is aborted on purpose (some after flushing its records, so aborted data
reaches the log; `unflushed_aborts` sets the share that aborts at once,
with batches possibly in flight). Every transaction's outcome is what the
client was told:

* committed: commit_transaction returned (possibly after retrying a
  retriable commit error, which librdkafka resumes);
* aborted: abort_transaction returned (on purpose, or after an error
  before or during the commit that required an abort);
* never: commit_transaction was never called and the abort did not return
  (a fatal error, or an abort that failed): it cannot have committed;
* unknown: commit_transaction was called and neither it nor an abort
  returned (a timeout, a fatal error in the commit).

After a fatal error (fenced, ...) or an outcome the producer cannot resolve
the producer is left alone (a zombie: it keeps its threads and connections
until the end of the run) and a new one with the same transactional.id calls
init_transactions, which fences the old epoch and completes whatever the
coordinator held for it. Every record value is `s<seed>-t<w>.<gen>-<seq>`
(w: the transactional id, gen: the producer object, seq: one counter per
transactional id), so the raw-log checks of nemesis.check (lost acks,
duplicates, order per producer session, CRC, gaps) also hold here; control
batches (transaction markers) are skipped there.

Checker (check_txn), after heal, on what a read_committed consumer reads
from offset 0 to the end of every partition:

* a committed transaction is visible completely: every record, once, in its
  partition;
* no record of an aborted or never-committed transaction is visible (the
  fenced producers' transactions are among these);
* an unknown transaction is all or nothing across its partitions;
* per transactional id and partition, visible records are in send order;
* nothing visible that the workload did not write (probes aside);
* every record the read_committed consumer was served during the faults is
  still visible at the end (no dirty read of data later aborted);
* every partition's last stable offset reaches its high watermark, and the
  read_committed consumer reaches it (no transaction left hanging).
"""
import collections
import logging
import os
import random
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import kwire

QUIET = {"log_level": 0}
OUTCOMES = ("committed", "aborted", "never", "unknown")


def now():
    return time.monotonic()


def txn_coordinator(cl, tid, timeout=2.0):
    """The node most live nodes name as tid's transaction coordinator
    (FindCoordinator v1, key type 1), or None."""
    votes = collections.Counter()
    for nd in cl.nodes.values():
        if not nd.alive() or nd.paused:
            continue
        try:
            with kwire.Conn(nd.bootstrap, timeout=timeout) as c:
                r = kwire.Reader(c.request(10, 1, kwire.string(tid) + kwire.i8(1)))
            r.i32()  # throttle
            err = r.i16()
            r.string()
            node = r.i32()
        except Exception:  # noqa: BLE001 (down, partitioned, slow)
            continue
        if err == 0 and node > 0:
            votes[node] += 1
    return votes.most_common(1)[0][0] if votes else None


def stable_offsets(cl, topic, parts, timeout):
    """partition -> (high watermark, last stable offset) as the leader
    reports them; waits up to `timeout` for every LSO to reach its HW."""
    deadline = now() + timeout
    out = {}
    while True:
        for part in range(parts):
            for nd in cl.nodes.values():
                if not nd.alive() or nd.paused:
                    continue
                try:
                    with kwire.Conn(nd.bootstrap, timeout=5) as c:
                        res = kwire.fetch_v4(c, topic, part, 1 << 62, max_bytes=1, max_wait_ms=0)
                except Exception:  # noqa: BLE001
                    continue
                if res["error"] in (0, 1):   # 1: OFFSET_OUT_OF_RANGE still carries hw/lso
                    out[part] = (res["high_watermark"], res["lso"])
                    break
        if len(out) == parts and all(hw == lso for hw, lso in out.values()):
            return out
        if now() > deadline:
            return out
        time.sleep(0.5)


def read_committed_all(bootstrap, topic, parts, ends, timeout=60.0):
    """A read_committed consumer from offset 0 of every partition until its
    end-of-partition event at or past `ends[part]` (the high watermark):
    partition -> [(offset, value)] and partition -> the offset it stopped at."""
    c = Consumer(dict(QUIET, **{
        "bootstrap.servers": bootstrap, "group.id": "nem-rc-%d" % id(ends),
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "enable.partition.eof": True,
        "fetch.wait.max.ms": 100}))
    c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
    got = {p: [] for p in range(parts)}
    eof = {}
    deadline = now() + timeout
    try:
        while now() < deadline and not all(eof.get(p, -1) >= ends[p] for p in range(parts)):
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof[m.partition()] = m.offset()
                continue
            got[m.partition()].append((m.offset(), m.value()))
            eof.pop(m.partition(), None)
    finally:
        c.close()
    return got, eof


class Txn:
    __slots__ = ("key", "w", "gen", "records", "outcome", "planned", "fenced", "error",
                 "t0", "t1")

    def __init__(self, key, w, gen, planned, t0):
        self.key = key            # (w, index)
        self.w = w
        self.gen = gen
        self.records = []         # [(value, partition)] handed to produce()
        self.outcome = None
        self.planned = planned    # "commit" or "abort"
        self.fenced = False       # its producer was given up (fatal/unresolved)
        self.error = None
        self.t0 = t0
        self.t1 = None


class TxnWorkload:
    """Transactional producers plus the usual committing consumer (in
    read_committed). Shares the attributes nemesis.check reads: acked,
    failed, sent, reads, read_conflicts, commits."""

    def __init__(self, base, nprod, records=(2, 6), abort_share=0.2, op_timeout=15.0,
                 txn_timeout_ms=20000, pause=0.01, unflushed_aborts=0.5):
        self.base = base          # a nemesis.Workload: consumer, locks, shared records
        self.nprod = nprod
        self.records = records
        self.abort_share = abort_share
        self.op_timeout = op_timeout
        self.txn_timeout_ms = txn_timeout_ms
        self.pause = pause
        self.unflushed_aborts = unflushed_aborts   # share of planned aborts without a flush
        self.txns = {}            # key -> Txn
        self.inits = collections.Counter()   # producer objects made / init errors
        self.errors = collections.Counter()  # error names seen
        self.zombies = []
        self.events = []          # (t, w, gen, txn index, phase, error text)
        self.tids = ["nem-tx-%d-%d-%d" % (base.seed, w, id(self) & 0xffff) for w in range(nprod)]
        base.isolation = "read_committed"
        # NEMESIS_CLIENT_DEBUG=eos,protocol: librdkafka debug logs of the
        # transactional producers into clients.log in the run directory.
        self.debug = os.environ.get("NEMESIS_CLIENT_DEBUG")
        self.logger = None
        if self.debug:
            self.logger = logging.getLogger("nem-txn-%d" % id(self))
            self.logger.setLevel(logging.DEBUG)
            self.logger.propagate = False
            h = logging.FileHandler(os.path.join(base.cl.workdir, "clients.log"))
            h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self.logger.addHandler(h)

    def start(self):
        for w in range(self.nprod):
            t = threading.Thread(target=self._producer, args=(w,), daemon=True)
            t.start()
            self.base.threads.append(t)
        self.base.nprod = 0       # the base starts only its consumer
        self.base.start()

    def _make(self, w):
        b = self.base
        extra = {}
        if self.debug:
            extra = {"debug": self.debug, "log_level": 7, "logger": self.logger}
        return Producer(dict(QUIET, **extra, **{
            "bootstrap.servers": b.cl.all_bootstrap(), "transactional.id": self.tids[w],
            "acks": "all", "enable.idempotence": True, "linger.ms": 2,
            "compression.type": "none", "transaction.timeout.ms": self.txn_timeout_ms,
            "message.timeout.ms": b.msg_timeout_ms, "request.timeout.ms": 3000,
            "metadata.max.age.ms": 2000, "topic.metadata.refresh.interval.ms": 1000,
            "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 3000,
        }))

    def _note(self, err, w=-1, gen=-1, index=-1, phase=""):
        self.errors[err.name()] += 1
        self.events.append((round(now() - self.base.t0, 2), w, gen, index, phase,
                            "%s%s: %s" % (err.name(), " (fatal)" if err.fatal() else "", err.str())))

    def _producer(self, w):
        b = self.base
        rng = random.Random(b.seed * 1000 + w)
        gen = -1
        seq = 0
        index = 0
        p = None
        lock = b.lock

        def cb(err, m):
            v = m.value()
            t = now()
            with lock:
                ts = b.sent[v][0]
                if err is None:
                    b.acked[v] = (m.partition(), m.offset(), ts, t)
                else:
                    b.failed[v] = (ts, err.name(), err.code() in TIMEOUT_CODES)

        def give_up(txn):
            nonlocal p
            if txn is not None:
                txn.fenced = True
            if p is not None:
                self.zombies.append(p)
            p = None

        # The last transaction of the run must end before stop: when stop is
        # set a producer ends what it holds, and one that cannot resolve it
        # is replaced until a new one's init_transactions has fenced it.
        pending = False   # the last given-up producer's transaction is not resolved
        while True:
            stopping = b.stop_ev.is_set()
            if stopping and not pending:
                break
            if p is None:
                if stopping and now() > b.stop_deadline:
                    break
                gen += 1
                p = self._make(w)
                self.inits["made"] += 1
                try:
                    p.init_transactions(self.op_timeout)
                    pending = False
                except KafkaException as e:
                    self._note(e.args[0], w, gen, -1, "init")
                    self.inits["init_errors"] += 1
                    give_up(None)
                    time.sleep(0.3)
                    continue
                if stopping:
                    break
            n = rng.randint(*self.records)
            planned = "abort" if rng.random() < self.abort_share else "commit"
            txn = Txn((w, index), w, gen, planned, now() - b.t0)
            index += 1
            with lock:
                self.txns[txn.key] = txn
            phase = "begin"
            try:
                p.begin_transaction()
                phase = "produce"
                parts = rng.sample(range(b.parts), min(b.parts, max(2, min(n, b.parts))))
                for i in range(n):
                    part = parts[i % len(parts)]
                    v = ("s%d-t%d.%d-%08d" % (b.seed, w, gen, seq)).encode()
                    seq += 1
                    with lock:
                        b.sent[v] = (now(), part)
                    p.produce(b.topic, value=v, key=v, partition=part, on_delivery=cb)
                    txn.records.append((v, part))
                p.poll(0)
                if planned == "abort":
                    if rng.random() >= self.unflushed_aborts:
                        p.flush(self.op_timeout)   # aborted data reaches the log
                    phase = "abort"
                    p.abort_transaction(self.op_timeout)
                    txn.outcome = "aborted"
                else:
                    phase = "commit"
                    p.commit_transaction(self.op_timeout)
                    txn.outcome = "committed"
            except KafkaException as e:
                err = e.args[0]
                self._note(err, w, gen, txn.key[1], phase)
                txn.error = "%s in %s" % (err.name(), phase)
                committing = phase == "commit"
                txn.outcome = "unknown" if committing else "never"
                if err.fatal():
                    give_up(txn)
                    pending = True
                elif committing and err.retriable() and not err.txn_requires_abort():
                    # librdkafka resumes the same commit.
                    for _ in range(2):
                        try:
                            p.commit_transaction(self.op_timeout)
                            txn.outcome = "committed"
                            break
                        except KafkaException as e2:
                            self._note(e2.args[0], w, gen, txn.key[1], phase + "-retry")
                            if not e2.args[0].retriable() or e2.args[0].txn_requires_abort():
                                break
                    if txn.outcome != "committed":
                        give_up(txn)
                        pending = True
                else:
                    try:
                        p.abort_transaction(self.op_timeout)
                        txn.outcome = "aborted"
                    except KafkaException as e2:
                        self._note(e2.args[0], w, gen, txn.key[1], phase + "-then-abort")
                        give_up(txn)
                        pending = True
            except BufferError:
                txn.outcome = "never"
                txn.error = "BufferError"
                try:
                    p.abort_transaction(self.op_timeout)
                    txn.outcome = "aborted"
                except KafkaException as e2:
                    self._note(e2.args[0], w, gen, txn.key[1], phase + "-then-abort")
                    give_up(txn)
                    pending = True
            txn.t1 = now() - b.t0
            if self.pause:
                time.sleep(self.pause)
        if p is not None:
            p.flush(5)

    def stop(self, timeout):
        self.base.stop_deadline = now() + timeout
        return self.base.stop(timeout + 5)

    def counts(self):
        c = collections.Counter(t.outcome for t in self.txns.values())
        c["fenced"] = sum(1 for t in self.txns.values() if t.fenced)
        return c


TIMEOUT_CODES = {KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT}


# ---------------------------------------------------------------- checker

def check_txn(txns, rc, served, stable, eof, violations, limit=20):
    """txns: key -> Txn (records, outcome); rc: partition -> [(offset, value)]
    read under read_committed from 0 to the end; served: (partition, offset)
    -> value read under read_committed during the run; stable: partition ->
    (hw, lso); eof: partition -> where the read_committed consumer ended.
    Appends violations; returns counts (outcomes, unknown resolved each way)."""
    where = {}                 # value -> (txn, partition)
    for t in txns.values():
        for v, part in t.records:
            where[v] = (t, part)
    seen = collections.defaultdict(list)      # value -> [(partition, offset)]
    n_bad = collections.Counter()

    def add(kind, text):
        n_bad[kind] += 1
        if n_bad[kind] <= limit:
            violations.append(text)

    for part, recs in sorted(rc.items()):
        last_off = -1
        last_seq = {}
        for off, v in recs:
            if off <= last_off:
                add("rc-order", "read_committed p%d: offset %d after %d" % (part, off, last_off))
            last_off = off
            if v == b"probe":
                continue
            seen[v].append((part, off))
            info = where.get(v)
            if info is None:
                add("unknown-value", "read_committed p%d@%d: %r was not written by the workload"
                    % (part, off, v[:40]))
                continue
            t, vpart = info
            if vpart != part:
                add("moved", "read_committed p%d@%d: %s was sent to p%d" % (part, off, v.decode(), vpart))
            seq = int(v.decode().rsplit("-", 1)[1])
            prev = last_seq.get(t.w)
            if prev is not None and seq <= prev[0]:
                add("order", "order: transactional id %d p%d: seq %d at offset %d after seq %d at "
                    "offset %d" % (t.w, part, seq, off, prev[0], prev[1]))
            last_seq[t.w] = (seq, off)
    for v, at in seen.items():
        if len(at) > 1:
            add("dup", "read_committed: %s visible %d times, at %s" % (v.decode(), len(at), at))
    res = collections.Counter()
    for t in sorted(txns.values(), key=lambda x: x.key):
        res[t.outcome] += 1
        if not t.records:
            continue
        vis = [v for v, _ in t.records if v in seen]
        desc = "transaction %d.%d (producer gen %d, %d records over p%s, planned %s%s%s)" % (
            t.w, t.key[1], t.gen, len(t.records), sorted({q for _, q in t.records}), t.planned,
            ", its producer given up" if t.fenced else "", (", " + t.error) if t.error else "")
        if t.outcome == "committed":
            if len(vis) != len(t.records):
                miss = [v.decode() for v, _ in t.records if v not in seen]
                add("lost-commit", "lost commit: %s committed, %d of its records not visible "
                    "under read_committed: %s" % (desc, len(miss), miss[:6]))
        elif t.outcome in ("aborted", "never"):
            if vis:
                add("visible-abort", "%s: %s %s, yet %d record(s) visible: %s"
                    % ("visible abort" if t.outcome == "aborted" else "visible uncommitted", desc,
                       "aborted" if t.outcome == "aborted" else "never committed", len(vis),
                       [(v.decode(), seen[v][0]) for v in vis[:6]]))
        elif t.outcome == "unknown":
            if vis and len(vis) != len(t.records):
                miss = [v.decode() for v, _ in t.records if v not in seen]
                add("atomicity", "atomicity: %s with an unknown outcome is partly visible: %d of "
                    "%d records, missing %s" % (desc, len(vis), len(t.records), miss[:6]))
            res["unknown_visible" if vis else "unknown_invisible"] += 1
        else:
            add("open", "%s has no outcome (its producer thread did not end it)" % desc)
    for (part, off), v in served.items():
        if v == b"probe":
            continue
        if (part, off) not in seen.get(v, []):
            info = where.get(v)
            add("dirty-read", "dirty read: p%d@%d %s was served under read_committed during the "
                "run but is not visible at the end%s" % (part, off, v.decode("utf-8", "replace"),
                                                        (" (its transaction: %s)" % info[0].outcome)
                                                        if info else ""))
    for part in sorted(set(stable) | set(eof)):
        hw, lso = stable.get(part, (None, None))
        if hw is None or lso != hw:
            add("hanging", "hanging transaction: p%d last stable offset %s, high watermark %s"
                % (part, lso, hw))
        e = eof.get(part)
        if hw is not None and (e is None or e < hw):
            add("hanging", "p%d: the read_committed consumer ended at %s, high watermark %s"
                % (part, e, hw))
    for kind, n in n_bad.items():
        if n > limit:
            violations.append("%s: %d violations in all" % (kind, n))
    res["visible_values"] = len(seen)
    return res
