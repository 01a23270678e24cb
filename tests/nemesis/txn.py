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
import os
import random
import threading
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

import kwire

QUIET = {"log_level": 0}
GIVE_UP, RENEW = "give up", "renew"   # TxnWorkload._settle's verdicts
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
                 "t0", "t1", "reads")

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
        self.reads = None         # consume-transform-produce: [(partition, offset, value)]


class TxnWorkload:
    """Transactional producers plus the usual committing consumer (in
    read_committed). Shares the attributes nemesis.check reads: acked,
    failed, sent, reads, read_conflicts, commits."""

    def __init__(self, base, nprod, records=(2, 6), abort_share=0.2, op_timeout=15.0,
                 txn_timeout_ms=20000, pause=0.01, unflushed_aborts=0.5, ctp=0):
        self.base = base          # a nemesis.Workload: consumer, locks, shared records
        self.nprod = nprod
        self.ctp = ctp            # consume-transform-produce workers (ids nprod..)
        self.ctp_group = "nem-ctp-%d-%d" % (base.seed, id(self) & 0xffff)
        self.ctp_reads = {}       # (partition, offset) -> value read by a CTP consumer
        self.ctp_rewinds = collections.Counter()
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
        self.tids = ["nem-tx-%d-%d-%d" % (base.seed, w, id(self) & 0xffff)
                     for w in range(nprod + ctp)]
        base.isolation = "read_committed"
        # NEMESIS_CLIENT_DEBUG=eos,msg,broker: librdkafka debug logs of the
        # transactional producers on stderr (not through a Python logger:
        # that sees them only at the next poll, so a client stuck inside a
        # call would seem to log nothing).
        self.debug = os.environ.get("NEMESIS_CLIENT_DEBUG")
        self.renewals = 0         # producers made again after an abort (_settle: RENEW)
        self.current = {}         # CTP worker -> its transaction in progress

    def start(self):
        for w in range(self.nprod):
            t = threading.Thread(target=self._producer, args=(w,), daemon=True)
            t.start()
            self.base.threads.append(t)
        for w in range(self.nprod, self.nprod + self.ctp):
            t = threading.Thread(target=self._ctp, args=(w,), name="ctp-%d" % w, daemon=True)
            t.start()
            self.base.threads.append(t)
        self.base.nprod = 0       # the base starts only its consumer
        self.base.start()

    def _make(self, w):
        b = self.base
        extra = {}
        if self.debug:
            extra = {"debug": self.debug, "log_level": 7}
        return Producer(dict(QUIET, **extra, **{
            "bootstrap.servers": b.cl.all_bootstrap(), "transactional.id": self.tids[w],
            "acks": "all", "enable.idempotence": True, "linger.ms": 2,
            "compression.type": "none", "transaction.timeout.ms": self.txn_timeout_ms,
            "message.timeout.ms": b.msg_timeout_ms, "request.timeout.ms": 3000,
            "metadata.max.age.ms": 2000, "topic.metadata.refresh.interval.ms": 1000,
            "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 3000,
        }))

    def _init_producer(self, w, gen):
        """A new producer of transactional id w that has called
        init_transactions (fencing the one before), or None after a failed
        call (that producer left alone as a zombie; a short pause)."""
        p = self._make(w)
        self.inits["made"] += 1
        try:
            p.init_transactions(self.op_timeout)
            return p
        except KafkaException as e:
            self._note(e.args[0], w, gen, -1, "init")
            self.inits["init_errors"] += 1
            self.zombies.append(p)
            time.sleep(0.3)
            return None

    def _note(self, err, w=-1, gen=-1, index=-1, phase=""):
        self.errors[err.name()] += 1
        self.events.append((round(now() - self.base.t0, 2), w, gen, index, phase,
                            "%s%s: %s" % (err.name(), " (fatal)" if err.fatal() else "", err.str())))

    def _delivered(self, err, m):
        b = self.base
        v = m.value()
        t = now()
        with b.lock:
            ts = b.sent[v][0]
            if err is None:
                b.acked[v] = (m.partition(), m.offset(), ts, t)
            else:
                b.failed[v] = (ts, err.name(), err.code() in TIMEOUT_CODES)

    def _settle(self, p, txn, phase, err):
        """txn failed in phase with err (None: BufferError): settle its
        outcome as far as the client can. Returns GIVE_UP (a fatal error,
        or an outcome it cannot resolve: the transaction counts as given
        up with its producer), RENEW (aborted, but the producer must not
        go on: see below) or None (go on with it).

        RENEW works around librdkafka 2.0.2: abort_transaction purges the
        records still queued, a retry "possibly persisted" by a request
        that timed out or lost its connection among them, and rewinds the
        partition's sequence by their count as if none had reached the
        log. When one had, the next transaction's first batch reuses its
        sequence number and the leader answers it, rightly, as a duplicate
        (the offset of the aborted record): acknowledged, not in the log.
        A new producer's init_transactions bumps the epoch and starts the
        sequences again, so nothing is reused (docs/testing.md, "Nemesis",
        consume-transform-produce)."""
        w, gen, i = txn.w, txn.gen, txn.key[1]
        if err is None:
            txn.outcome = "never"
            txn.error = "BufferError"
        else:
            self._note(err, w, gen, i, phase)
            txn.error = "%s in %s" % (err.name(), phase)
            committing = phase == "commit"
            txn.outcome = "unknown" if committing else "never"
            if err.fatal():
                return GIVE_UP
            if committing and err.retriable() and not err.txn_requires_abort():
                # librdkafka resumes the same commit.
                for _ in range(2):
                    try:
                        p.commit_transaction(self.op_timeout)
                        txn.outcome = "committed"
                        return None
                    except KafkaException as e2:
                        self._note(e2.args[0], w, gen, i, phase + "-retry")
                        if not e2.args[0].retriable() or e2.args[0].txn_requires_abort():
                            break
                return GIVE_UP
        try:
            p.abort_transaction(self.op_timeout)
            txn.outcome = "aborted"
            self.renewals += 1
            return RENEW
        except KafkaException as e2:
            self._note(e2.args[0], w, gen, i, phase + "-then-abort")
            return GIVE_UP

    def _producer(self, w):
        b = self.base
        rng = random.Random(b.seed * 1000 + w)
        gen = -1
        seq = 0
        index = 0
        p = None
        lock = b.lock

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
                p = self._init_producer(w, gen)
                if p is None:
                    continue
                pending = False
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
                    p.produce(b.topic, value=v, key=v, partition=part, on_delivery=self._delivered)
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
            except (KafkaException, BufferError) as e:
                how = self._settle(p, txn, phase, e.args[0] if isinstance(e, KafkaException)
                                   else None)
                if how == RENEW:
                    give_up(None)
                elif how == GIVE_UP:
                    give_up(txn)
                    pending = True
            txn.t1 = now() - b.t0
            if self.pause:
                time.sleep(self.pause)
        if p is not None:
            p.flush(5)

    def _ctp_consumer(self):
        b = self.base
        c = Consumer(dict(QUIET, **{
            "bootstrap.servers": b.cl.all_bootstrap(), "group.id": self.ctp_group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "isolation.level": "read_committed", "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
            "max.poll.interval.ms": 10000,   # the rebalance timeout: a member stuck in a
                                             # transaction holds up a rebalance this long
            "metadata.max.age.ms": 2000, "topic.metadata.refresh.interval.ms": 1000,
            "socket.timeout.ms": 5000, "reconnect.backoff.max.ms": 1000}))
        c.subscribe([b.topic])
        return c

    def _ctp(self, w):
        """A consume-transform-produce worker: each transaction reads 1-4
        records through a read_committed consumer of the group ctp_group,
        writes 1 to as many records as it read (values named like the
        producers', transactional id w), and commits the consumer's
        offsets in the transaction (send_offsets_to_transaction, with the
        group's generation: KIP-447 fencing). What the transaction read
        is kept (Txn.reads) for check_ctp. After any outcome but
        committed the consumer rewinds to the group's committed offsets
        (OffsetFetch with require_stable: waits for a transaction still
        open on them), or is made again when that fails."""
        b = self.base
        rng = random.Random(b.seed * 1000 + w)
        gen = -1
        seq = 0
        index = 0
        p = None
        c = self._ctp_consumer()
        lock = b.lock

        def give_up(txn):
            nonlocal p
            if txn is not None:
                txn.fenced = True
            if p is not None:
                self.zombies.append(p)
            p = None

        def rewind():
            nonlocal c
            try:
                tps = c.assignment()
                if tps:
                    for tp in c.committed(tps, timeout=self.op_timeout):
                        if tp.error is not None:
                            raise KafkaException(tp.error)
                        c.seek(TopicPartition(tp.topic, tp.partition,
                                              tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
                self.ctp_rewinds["seek"] += 1
            except (KafkaException, RuntimeError) as e:
                self.ctp_rewinds["consumer made again"] += 1
                self.events.append((round(now() - b.t0, 2), w, gen, index, "rewind", str(e)))
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
                c = self._ctp_consumer()

        pending = False
        need_rewind = False
        while True:
            stopping = b.stop_ev.is_set()
            if stopping and not pending:
                break
            if p is None:
                if stopping and now() > b.stop_deadline:
                    break
                gen += 1
                p = self._init_producer(w, gen)
                if p is None:
                    continue
                pending = False
                if stopping:
                    break
            if need_rewind:
                rewind()
                need_rewind = False
            try:
                msgs = c.consume(num_messages=rng.randint(1, 4), timeout=0.3)
            except KafkaException:
                msgs = []
            recs = [(m.partition(), m.offset(), m.value()) for m in msgs if not m.error()]
            if not recs:
                continue
            with lock:
                for part, off, v in recs:
                    old = self.ctp_reads.get((part, off))
                    if old is not None and old != v:
                        b.read_conflicts.append(((part, off), old, v))
                    self.ctp_reads[(part, off)] = v
            planned = "abort" if rng.random() < self.abort_share else "commit"
            txn = Txn((w, index), w, gen, planned, now() - b.t0)
            txn.reads = recs
            index += 1
            with lock:
                self.txns[txn.key] = txn
            self.current[w] = txn
            offsets = {}
            for part, off, _ in recs:
                offsets[part] = max(offsets.get(part, 0), off + 1)
            phase = "begin"
            try:
                p.begin_transaction()
                phase = "produce"
                for i in range(rng.randint(1, len(recs))):
                    part = rng.randrange(b.parts)
                    v = ("s%d-t%d.%d-%08d" % (b.seed, w, gen, seq)).encode()
                    seq += 1
                    with lock:
                        b.sent[v] = (now(), part)
                    p.produce(b.topic, value=v, key=v, partition=part, on_delivery=self._delivered)
                    txn.records.append((v, part))
                p.poll(0)
                phase = "offsets"
                p.send_offsets_to_transaction(
                    [TopicPartition(b.topic, q, o) for q, o in sorted(offsets.items())],
                    c.consumer_group_metadata(), self.op_timeout)
                if planned == "abort":
                    phase = "abort"
                    p.abort_transaction(self.op_timeout)
                    txn.outcome = "aborted"
                else:
                    phase = "commit"
                    p.commit_transaction(self.op_timeout)
                    txn.outcome = "committed"
            except (KafkaException, BufferError) as e:
                how = self._settle(p, txn, phase, e.args[0] if isinstance(e, KafkaException)
                                   else None)
                if how == RENEW:
                    give_up(None)
                elif how == GIVE_UP:
                    give_up(txn)
                    pending = True
            txn.t1 = now() - b.t0
            # Not committed: rewind, once an unresolved transaction (it
            # may still commit its offsets) is fenced by the next
            # producer's init_transactions at the top of the loop.
            need_rewind = txn.outcome != "committed"
            if self.pause:
                time.sleep(self.pause)
        if p is not None:
            p.flush(5)
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass

    def stalled(self, thread):
        """thread (a CTP worker) is stuck inside send_offsets_to_transaction
        at the end of the run: its transaction never got to commit (the
        coordinator aborts it when it times out)."""
        txn = self.current.get(int(thread.name.split("-")[1]))
        if txn is not None and txn.outcome is None:
            txn.outcome = "never"
            txn.error = "client stall in send_offsets_to_transaction"

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


def find_cycle(nodes, edges):
    """A cycle of the directed graph (edges: node -> set of nodes) as a
    list of nodes, or None. Kahn's algorithm peels off every node that is
    on no cycle; a walk inside what is left must come back to a node."""
    indeg = {n: 0 for n in nodes}
    for a in nodes:
        for b in edges.get(a, ()):
            indeg[b] += 1
    todo = [n for n in nodes if indeg[n] == 0]
    while todo:
        a = todo.pop()
        for b in edges.get(a, ()):
            indeg[b] -= 1
            if indeg[b] == 0:
                todo.append(b)
    left = {n for n in nodes if indeg[n] > 0}
    if not left:
        return None
    # Every node left has a predecessor left: walk predecessors until one
    # repeats.
    pred = {}
    for a in left:
        for b in edges.get(a, ()):
            if b in left:
                pred.setdefault(b, a)
    n = next(iter(sorted(left)))
    path, at = [], {}
    while n not in at:
        at[n] = len(path)
        path.append(n)
        n = pred[n]
    cyc = path[at[n]:]
    cyc.reverse()
    return cyc


def check_ctp(txns, rc, committed, violations, limit=20):
    """The consume-transform-produce transactions (Txn.reads set), against
    what a read_committed consumer reads at the end (rc: partition ->
    [(offset, value)]) and the CTP group's committed offsets (committed:
    partition -> offset, None if unknown). A transaction took effect when
    it committed, or when its outcome is unknown and its records are
    visible. Violations:

    * ctp-read: a transaction that took effect read a value that is not at
      that place in the final read_committed log (a dirty or moved read);
    * aborted-read (G1a): it read a value written by a transaction that
      did not take effect;
    * twice: a record was processed by two transactions that took effect
      (exactly-once processing broken: the group's offset commits in
      transactions, KIP-447 fencing);
    * skipped: a record below the group's committed offset that no
      transaction which took effect read;
    * G1c: a cycle of write-read dependencies among transactions that took
      effect (T1 wrote a value T2 read, ..., Tn wrote one T1 read): each
      edge orders one commit before the other, so a cycle cannot happen
      without a read of uncommitted data.

    Returns counts."""
    seen = {}
    for part, recs in rc.items():
        for off, v in recs:
            seen[(part, off)] = v
    visible = set(seen.values())
    writer = {}
    for t in txns.values():
        for v, _ in t.records:
            writer[v] = t

    def took_effect(t):
        if t.outcome == "committed":
            return True
        return t.outcome == "unknown" and any(v in visible for v, _ in t.records)

    n_bad = collections.Counter()

    def add(kind, text):
        n_bad[kind] += 1
        if n_bad[kind] <= limit:
            violations.append(text)

    def name(t):
        return "%d.%d" % t.key

    readers = collections.defaultdict(list)   # (partition, offset) -> [txn]
    edges = collections.defaultdict(set)
    nodes = set()
    res = collections.Counter()
    for t in sorted(txns.values(), key=lambda x: x.key):
        if t.reads is None:
            continue
        res["ctp_" + str(t.outcome)] += 1
        if not took_effect(t):
            continue
        res["ctp_effective"] += 1
        nodes.add(t.key)
        for part, off, v in t.reads:
            res["ctp_reads"] += 1
            readers[(part, off)].append(t)
            if seen.get((part, off)) != v:
                add("ctp-read", "consume-transform-produce transaction %s (%s) read p%d@%d %r, "
                    "the final read_committed log has %r there"
                    % (name(t), t.outcome, part, off, v[:40], (seen.get((part, off)) or b"")[:40]))
            w = writer.get(v)
            if w is None:
                continue   # probes
            if not took_effect(w):
                add("aborted-read", "aborted read (G1a): transaction %s read %s, written by "
                    "transaction %s (%s)" % (name(t), v.decode(), name(w), w.outcome))
                continue
            if w is not t:
                edges[w.key].add(t.key)
                nodes.add(w.key)
    for (part, off), ts in sorted(readers.items()):
        if len(ts) > 1:
            add("twice", "processed twice: p%d@%d was read by %d transactions that took effect: "
                "%s" % (part, off, len(ts), ", ".join("%s (%s)" % (name(t), t.outcome) for t in ts)))
    if committed is not None:
        for part, recs in sorted(rc.items()):
            upto = committed.get(part, 0)
            for off, v in recs:
                if off >= upto:
                    break
                if (part, off) not in readers:
                    add("skipped", "skipped: p%d@%d %r is below the group's committed offset %d "
                        "but no transaction that took effect read it"
                        % (part, off, v[:40], upto))
                else:
                    res["ctp_covered"] += 1
    cyc = find_cycle(nodes, edges)
    if cyc:
        add("G1c", "G1c: a cycle of write-read dependencies among transactions that took "
            "effect: %s" % " -> ".join("%d.%d" % k for k in cyc + cyc[:1]))
    res["ctp_edges"] = sum(len(x) for x in edges.values())
    for kind, n in n_bad.items():
        if n > limit:
            violations.append("%s: %d violations in all" % (kind, n))
    return res
