"""Exactly-once under crashes (issue 6, Tests section, items 1 and 2).

* librdkafka idempotent producer (enable.idempotence=true) sending numbered
  records while the broker is killed with SIGKILL and restarted (same port and
  data dir) several times: the log holds every number exactly once, in order,
  for read_uncommitted and read_committed readers.
* A read-process-write pipeline (eos_pipeline.py, a subprocess: consume `in`
  read_committed, produce to `out`, send_offsets_to_transaction, commit, with
  random aborts) while the pipeline and the broker are killed with SIGKILL and
  restarted: a read_committed reader of `out` sees every input exactly once,
  in order per key.

Both need InitProducerId (and the second the whole transaction coordinator).
Failures print the seed; CAIRN_EOS_SEED=N replays a schedule.
"""
import json
import struct
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import TopicPartition

import ckhelp
import eos_ck
import kwire
from ckhelp import create_topic

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE = os.path.join(HERE, "eos_pipeline.py")
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": "0",
                  "group.min.session.timeout.ms": "1000"}


def seed_for(name):
    s = os.environ.get("CAIRN_EOS_SEED")
    return int(s) if s else random.SystemRandom().randrange(1 << 30)


# ---------------------------------------------------------------- 1. idempotent producer

@pytest.mark.cairn_timeout(240)
def test_idempotent_producer_survives_broker_kill9(broker_factory, topic):
    seed = seed_for("idem")
    rnd = random.Random(seed)
    b = broker_factory()
    nparts = 3
    create_topic(b.bootstrap, topic, nparts)
    n = 9000
    # delivered-count thresholds, spread over the run
    kills_at = [int(n * f) + rnd.randrange(-300, 300) for f in (0.2, 0.45, 0.7)]

    ok = {}          # number -> (partition, offset)
    failed = {}      # number -> error
    fatal = []
    lock = threading.Lock()
    kills = []
    killer_error = []
    done = threading.Event()

    def cb(err, msg):
        i = int(msg.value())
        with lock:
            if err is None:
                ok[i] = (msg.partition(), msg.offset())
            else:
                failed[i] = err

    stats = {}

    def stats_cb(js):
        d = json.loads(js)
        stats["retries"] = sum(br.get("txretries", 0) for br in d.get("brokers", {}).values())

    def error_cb(err):
        if err.fatal():
            fatal.append(err)

    def killer():
        try:
            for k in kills_at:
                deadline = time.time() + 90
                with lock:
                    k = max(k, len(ok) + 300)  # real progress since the last restart
                while time.time() < deadline and not done.is_set():
                    with lock:
                        if len(ok) >= k:
                            break
                    time.sleep(0.002)
                if done.is_set():
                    return
                time.sleep(rnd.random() * 0.05)  # land anywhere in the produce flow
                with lock:
                    at = len(ok)
                b.kill9()
                time.sleep(0.2 + rnd.random() * 0.6)
                b.start()
                kills.append(at)
        except BaseException as e:  # surfaced by the main thread
            killer_error.append(e)

    # Idempotence: acks=all, retries forever within message.timeout.ms, at most
    # 5 in flight; retried batches after a broker crash must be deduplicated
    # from the producer state the broker rebuilt from its log.
    p = eos_ck.idem_producer(b.bootstrap, **{
        "linger.ms": 2, "batch.num.messages": 40, "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 300, "error_cb": error_cb,
        "stats_cb": stats_cb, "statistics.interval.ms": 200,
        "log_level": 2})  # connection refused while the broker is down is expected
    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        for i in range(n):
            while True:
                try:
                    p.produce(topic, value=b"%d" % i, partition=i % nparts, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 40 == 39:
                p.poll(0)
                time.sleep(0.02)  # spread production (~5 s) over the kills
            assert not fatal, "fatal producer error: %s (seed %d)" % (fatal[0], seed)
        # keep going until the killer is through its schedule
        deadline = time.time() + 120
        while th.is_alive() and time.time() < deadline:
            p.poll(0.05)
        left = p.flush(150)
        p.poll(0.5)  # one more stats report
    finally:
        done.set()
        th.join(30)
    if killer_error:
        raise killer_error[0]
    ctx = "seed %d, kills after %s deliveries" % (seed, kills)
    assert len(kills) == len(kills_at), "only %d of %d kills happened (%s)" % (
        len(kills), len(kills_at), ctx)
    assert not fatal, "fatal producer error: %s (%s)" % (fatal[0], ctx)
    assert left == 0, "%d records undelivered (%s)" % (left, ctx)
    assert not failed, "%d deliveries failed, e.g. %s (%s)" % (
        len(failed), list(failed.items())[:3], ctx)
    assert len(ok) == n
    print("idempotent: %s, %s request retries" % (ctx, stats.get("retries")))

    parts = tuple(range(nparts))
    for iso in ("read_uncommitted", "read_committed"):
        ends, recs = eos_ck.read_all(b.bootstrap, topic, parts, iso)
        for q in parts:
            want = list(range(q, n, nparts))
            got = [int(v) for _, _, v in recs[q]]
            if got != want:
                dups = len(got) - len(set(got))
                missing = sorted(set(want) - set(got))
                raise AssertionError(
                    "%s partition %d: %d records, want %d; %d duplicates, %d missing "
                    "(first %s), in order: %s (%s)" % (
                        iso, q, len(got), len(want), dups, len(missing), missing[:5],
                        got == sorted(got), ctx))
            # no transactions: no control records, offsets are dense, LSO == HW
            assert [o for o, _, _ in recs[q]] == list(range(len(want))), (iso, q, ctx)
            assert ends[q] == len(want), (iso, q, ends, ctx)
    for i, (q, off) in ok.items():
        assert off == i // nparts, "record %d acked at %d/%d, stored at %d/%d (%s)" % (
            i, q, off, i % nparts, i // nparts, ctx)
    b.stop()


# ---------------------------------------------------------------- 2. read-process-write

class Pipeline:
    """One eos_pipeline.py process; events collected by a reader thread."""

    def __init__(self, argv, tag):
        self.events = []
        self.lock = threading.Lock()
        self.err_path = "/tmp/cairn-it-eos-pipeline-%d-%s.err" % (os.getpid(), tag)
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def evs(self, kind=None):
        with self.lock:
            e = list(self.events)
        return [x for x in e if kind is None or x["ev"] == kind]

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._done()

    def stop(self, timeout=30):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._done()

    def _done(self):
        self.reader.join(5)
        if not self.err.closed:
            self.err.close()
            self.stderr_text = self.stderr_tail()
            try:
                os.unlink(self.err_path)
            except OSError:
                pass

    def stderr_tail(self):
        if getattr(self, "stderr_text", None) is not None:
            return self.stderr_text
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""


@pytest.mark.cairn_timeout(300)
def test_read_process_write_pipeline_with_kills(broker_factory, topic_name):
    seed = seed_for("pipeline")
    rnd = random.Random(seed)
    b = broker_factory(GROUP_SETTINGS)
    tin, tout = topic_name("eos-in"), topic_name("eos-out")
    nparts = 3
    create_topic(b.bootstrap, tin, nparts)
    create_topic(b.bootstrap, tout, nparts)
    group = "eos-g-%s" % os.urandom(4).hex()
    txn_id = "eos-pipe-%s" % os.urandom(4).hex()

    # 2,000 keyed inputs, 8 keys; per key the value carries a sequence number.
    n, keys = 2000, ["k%d" % k for k in range(8)]
    seqs = {k: 0 for k in keys}
    want = {k: [] for k in keys}
    d = ckhelp.Deliveries()
    prod = ckhelp.producer(b.bootstrap, acks="all", linger_ms=5)
    for i in range(n):
        k = keys[rnd.randrange(len(keys))]
        v = "%s:%d" % (k, seqs[k])
        want[k].append(v + "|out")
        seqs[k] += 1
        prod.produce(tin, key=k.encode(), value=v.encode(), on_delivery=d.cb())
        if i % 500 == 0:
            prod.poll(0)
    ckhelp.flush(prod)
    assert not d.failed, d.failed[:3]
    del prod  # no reconnect noise from it while the broker is killed
    highs = {q: ckhelp.watermarks(b.bootstrap, tin, q)[1] for q in range(nparts)}
    assert sum(highs.values()) == n

    def start_pipeline(tag):
        return Pipeline([sys.executable, PIPELINE, b.bootstrap, tin, tout, group, txn_id,
                         "--batch", "20", "--abort-rate", "0.15", "--delay-ms", "30",
                         "--seed", str(rnd.randrange(1 << 30)), "--session-ms", "3000"], tag)

    pipes = [start_pipeline("0")]
    log = []   # what the harness did, for failure messages

    def progress():
        """Sum over partitions of the highest committed next-offset any pipeline reported."""
        best = {}
        for pp in pipes:
            for ev in pp.evs("commit"):
                for q, o in ev["next"].items():
                    best[int(q)] = max(best.get(int(q), 0), o)
        return sum(best.values()), best

    def ctx():
        return "seed %d; actions %s; last pipeline events %s; stderr %s" % (
            seed, log, pipes[-1].evs()[-5:], pipes[-1].stderr_tail()[-800:])

    # kills at random progress points: pipeline, broker, pipeline, both
    plan = ["pipeline", "broker", "pipeline", "both"]
    points = sorted(rnd.sample(range(n // 10, n * 7 // 10), len(plan)))
    deadline = time.time() + 200
    restarts = 0
    try:
        last = 0
        for what, at in zip(plan, points):
            # each kill after real progress, with the current pipeline mid-stream
            at = max(at, last + 100)
            while progress()[0] < at or not pipes[-1].evs("commit"):
                assert time.time() < deadline, "no progress to %d: %s" % (at, ctx())
                if not pipes[-1].alive():
                    restarts += 1
                    assert restarts <= 15, "pipeline keeps exiting: %s" % ctx()
                    log.append(("exited", pipes[-1].proc.returncode, progress()[0]))
                    pipes.append(start_pipeline(str(len(pipes))))
                time.sleep(0.01)
            last = progress()[0]
            time.sleep(rnd.random() * 0.1)
            log.append((what, progress()[0]))
            if what in ("pipeline", "both"):
                pipes[-1].kill9()
            if what in ("broker", "both"):
                b.kill9()
                time.sleep(0.2 + rnd.random() * 0.5)
                b.start()
            if what in ("pipeline", "both"):
                pipes.append(start_pipeline(str(len(pipes))))
        # run to completion
        while progress()[1] != highs:
            assert time.time() < deadline, "pipeline did not finish (%s of %s): %s" % (
                progress()[1], highs, ctx())
            if not pipes[-1].alive():
                restarts += 1
                assert restarts <= 15, "pipeline keeps exiting: %s" % ctx()
                log.append(("exited", pipes[-1].proc.returncode, progress()[0]))
                pipes.append(start_pipeline(str(len(pipes))))
            time.sleep(0.05)
        pipes[-1].stop()
    finally:
        for pp in pipes:
            pp.kill9()
    aborts = sum(len(pp.evs("abort")) for pp in pipes)
    commits = sum(len(pp.evs("commit")) for pp in pipes)
    log.append(("done", "commits", commits, "aborts", aborts))
    print("pipeline: seed %d, %d pipeline processes, actions %s" % (seed, len(pipes), log))

    # every input exactly once, in order per key, for a read_committed reader
    parts = tuple(range(nparts))
    ends, recs = eos_ck.read_all(b.bootstrap, tout, parts, "read_committed")
    got = {k: [] for k in keys}
    for q in parts:
        for _, k, v in recs[q]:
            got[k].append(v)
    for k in keys:
        if got[k] != want[k]:
            dups = len(got[k]) - len(set(got[k]))
            missing = [v for v in want[k] if v not in set(got[k])]
            raise AssertionError("key %s: %d records, want %d; %d duplicates, %d missing "
                                 "(e.g. %s); first divergence at %s (%s)" % (
                                     k, len(got[k]), len(want[k]), dups, len(missing),
                                     missing[:3], next((j for j, (x, y) in enumerate(
                                         zip(got[k], want[k])) if x != y), None),
                                     ctx()))
    # the aborted and the crashed transactions did write data: read_uncommitted
    # sees more than read_committed, so the filtering was exercised
    assert aborts > 0, "no transaction was aborted: %s" % ctx()
    _, raw = eos_ck.read_all(b.bootstrap, tout, parts, "read_uncommitted")
    n_raw = sum(len(v) for v in raw.values())
    assert n_raw > n, "read_uncommitted sees %d records, want more than %d (%s)" % (
        n_raw, n, ctx())
    # committed consumer offsets of the pipeline's group cover all of `in`
    c = ckhelp.consumer(b.bootstrap, **{"group.id": group, "isolation.level": "read_committed"})
    try:
        com = c.committed([TopicPartition(tin, q) for q in parts], timeout=15)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in com} == highs, ctx()
    b.stop()


# ---------------------------------------------------------------- open transaction across kill -9

@pytest.mark.cairn_timeout(150)
def test_open_transaction_across_broker_kill9(broker_factory, topic):
    """A transaction open while the broker dies: after the restart the same
    producer can still commit it; an open transaction whose producer is
    replaced (same transactional.id) is aborted by the new instance's init."""
    b = broker_factory(GROUP_SETTINGS)
    create_topic(b.bootstrap, topic, 2)
    tid = "eos-k9-%s" % os.urandom(4).hex()
    quiet = {"log_level": 2, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 300}
    p = eos_ck.txn_producer(b.bootstrap, tid, **quiet)
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=b"one-%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    b.kill9()
    b.start()
    lso = eos_ck.end_offsets(b.bootstrap, topic, (0, 1), "read_committed")
    hw = eos_ck.end_offsets(b.bootstrap, topic, (0, 1), "read_uncommitted")
    assert lso == {0: 0, 1: 0} and hw == {0: 5, 1: 5}, \
        "open transaction after restart: LSO %s HW %s" % (lso, hw)
    p.commit_transaction(60)
    _, rc = eos_ck.read_all(b.bootstrap, topic, (0, 1), "read_committed")
    assert [v for _, _, v in rc[0]] == ["one-%d" % i for i in range(0, 10, 2)]
    assert [v for _, _, v in rc[1]] == ["one-%d" % i for i in range(1, 10, 2)]

    # second transaction: open, broker dies, the producer is replaced
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=b"two-%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    b.kill9()
    del p
    b.start()
    p2 = eos_ck.txn_producer(b.bootstrap, tid, **quiet)
    p2.init_transactions(60)  # fences the old instance, aborts "two"
    p2.begin_transaction()
    p2.produce(topic, value=b"three-0", partition=0)
    p2.commit_transaction(60)
    lso = eos_ck.end_offsets(b.bootstrap, topic, (0, 1), "read_committed")
    hw = eos_ck.end_offsets(b.bootstrap, topic, (0, 1), "read_uncommitted")
    assert lso == hw, (lso, hw)
    _, rc = eos_ck.read_all(b.bootstrap, topic, (0, 1), "read_committed")
    assert [v for _, _, v in rc[0]] == ["one-%d" % i for i in range(0, 10, 2)] + ["three-0"]
    assert [v for _, _, v in rc[1]] == ["one-%d" % i for i in range(1, 10, 2)]
    del p2
    b.stop()


# ---------------------------------------------------------------- dedupe across kill -9, on the wire

def idempotent_batch(values, pid, epoch, base_seq):
    """kwire's v2 batch with producer id/epoch/base sequence patched in (new CRC)."""
    b = bytearray(kwire.build_record_batch([(None, v) for v in values]))
    b[43:51] = kwire.i64(pid)
    b[51:53] = kwire.i16(epoch)
    b[53:57] = kwire.i32(base_seq)
    b[17:21] = struct.pack(">I", kwire.crc32c(bytes(b[21:])))
    return bytes(b)


def init_producer_id_v0(conn):
    r = kwire.Reader(conn.request(22, 0, kwire.string(None) + kwire.i32(60000)))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


@pytest.mark.cairn_timeout(60)
def test_idempotent_duplicates_dropped_across_kill9_wire(broker_factory, topic):
    """Deterministic version of the retry-after-crash case: the same batch sent
    again (as a producer retries an unanswered request) is answered with its
    original offset and not appended, also after kill -9 and restart."""
    b = broker_factory()
    create_topic(b.bootstrap, topic, 1)
    with kwire.Conn(b.bootstrap) as c:
        err, pid, epoch = init_producer_id_v0(c)
        assert err == 0 and pid >= 0 and epoch == 0, (err, pid, epoch)
        b0 = idempotent_batch([b"a0", b"a1", b"a2"], pid, epoch, 0)
        b1 = idempotent_batch([b"a3", b"a4"], pid, epoch, 3)
        assert kwire.produce_v3(c, topic, 0, b0)[:2] == (0, 0)
        assert kwire.produce_v3(c, topic, 0, b1)[:2] == (0, 3)
        assert kwire.produce_v3(c, topic, 0, b1)[:2] == (0, 3), "duplicate not answered with its offset"
    assert ckhelp.watermarks(b.bootstrap, topic, 0)[1] == 5
    b.kill9()
    b.start()
    with kwire.Conn(b.bootstrap) as c:
        # both retries are still recognised (the broker remembers 5 batches)
        assert kwire.produce_v3(c, topic, 0, b0)[:2] == (0, 0)
        assert kwire.produce_v3(c, topic, 0, b1)[:2] == (0, 3)
        # a gap is refused, the next sequence is accepted
        gap = idempotent_batch([b"x"], pid, epoch, 9)
        assert kwire.produce_v3(c, topic, 0, gap)[0] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
        assert kwire.produce_v3(c, topic, 0, idempotent_batch([b"a5"], pid, epoch, 5))[:2] == (0, 5)
    msgs = ckhelp.consume_all(b.bootstrap, topic, timeout=30)[0]
    assert [m.value() for m in msgs] == [b"a%d" % i for i in range(6)]
    b.stop()
