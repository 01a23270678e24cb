#!/usr/bin/python3
"""Crash harness: kill the broker at random moments and check that nothing
acknowledged was lost, nothing is corrupt, duplicated or reordered.

    /usr/bin/python3 tests/crash/crash.py [--bin build/cairn] [--cycles N] [--seed S]
    /usr/bin/python3 tests/crash/crash.py --power-loss [--mode 1|2] --bin build-fault/cairn

One data directory is kept across cycles. Each cycle: start cairn on a free
loopback port; run two producers (acks=all and acks=1, no retries, numbered
records whose value carries a checksum) and a group consumer that commits
offsets synchronously; after a random time kill the broker (kill -9, or in
--power-loss mode SIGUSR1 to the fault-injection build, which cuts every file
back to what a power loss could leave, see src/util/fault.h), sometimes
after a SIGSTOP/SIGCONT pause; restart it while the clients keep trying;
then pause the clients and check with an independent reader (raw Fetch over
the Kafka protocol, CRC-32C recomputed here):

* every record acknowledged with acks=all is present exactly once, at the
  offset it was acknowledged with (and so stays there across cycles);
  with kill -9 the same holds for acks=1 (the page cache survives);
  with --power-loss acks=1 records may be gone, but then their offset holds
  another record or lies past the end;
* every batch's CRC-32C is correct and every record's own checksum too;
* offsets run from 0 to the high watermark without gaps;
* no record appears twice; each producer's records of one partition appear
  in the order they were sent;
* whatever was read at an earlier check is still there, byte for byte
  (before each check one acks=all "barrier" record per partition makes
  everything before it durable);
* the group's committed offsets are the last acknowledged commit (or a
  later one that was in flight at the crash).

AMQP load runs alongside in every cycle (--no-amqp turns it off): a pika
publisher with publisher confirms sends numbered persistent messages (body
with a checksum, as the Kafka records) to the durable queue "crashq", and a
pika consumer with manual acks (prefetch 50) records what it receives and
acks each message; both reconnect after the crash. At each check, with the
publisher paused and the consumer still draining:

* every confirmed message has been delivered at least once (waited for up to
  20 s), across the whole run: none lost;
* every delivered body passes its checksum and was published by the harness;
* with kill -9, a message delivered again must carry redelivered=True (the
  broker writes its delivered mark before a delivery leaves); with
  --power-loss the mark of the last flush window may be lost, so this is
  only counted.

Duplicates (messages delivered more than once: unacked at the crash, or
acks the crash lost) are reported with the confirmed and delivered totals,
not failed: AMQP acks have no confirmation.

Prints "N cycles, 0 violations", or the first violation with the seed that
reproduces the schedule, and exits 1. The schedule (kill times, pauses,
settings) comes from the seed; thread timing does not.
"""
import argparse
import hashlib
import logging
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration", "py"))
import kwire  # noqa: E402  (CRC-32C, batch parser, raw requests)

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
import pika  # noqa: E402
import pika.exceptions  # noqa: E402

logging.getLogger("pika").setLevel(logging.CRITICAL)  # reconnects are expected

TOPIC = "crash"
GROUP = "crash-g"
AQUEUE = "crashq"


class Violation(Exception):
    pass


from cairn_broker import free_port  # noqa: E402,F811  (below the ephemeral range)


def make_value(rid, payload):
    body = "%s|%s" % (rid, payload)
    return ("%08x|%s" % (zlib.crc32(body.encode()), body)).encode()


def check_value(v):
    """-> record id, or raise Violation when the record's checksum is wrong."""
    try:
        s = v.decode()
        crc, body = s.split("|", 1)
        if int(crc, 16) != zlib.crc32(body.encode()):
            raise ValueError("checksum")
        return body.split("|", 1)[0]
    except (ValueError, UnicodeDecodeError):
        raise Violation("record value fails its checksum: %r" % v[:80])


# ------------------------------------------------------------------ broker

class Broker:
    def __init__(self, args, data_dir, log_path):
        self.args = args
        self.bin = args.bin
        self.data = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.amqp_port = free_port() if args.amqp else None
        self.proc = None

    def start(self, settings, env_extra=None, wait=True):
        amqp = "127.0.0.1:%d" % self.amqp_port if self.amqp_port else "off"
        argv = [self.bin, "--listen", self.bootstrap, "--amqp-listen", amqp, "--http-listen", "off",
                "--data-dir", self.data]
        for k, v in settings.items():
            argv += ["--set", "%s=%s" % (k, v)]
        env = dict(os.environ)
        env.update(env_extra or {})
        with open(self.log_path, "ab") as f:
            f.write(("\n===== start: %s %s\n" % (env_extra or "", " ".join(argv))).encode())
            mark = f.tell()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=env, start_new_session=True)
        log.close()
        if not wait:
            return
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                text = f.read().decode("utf-8", "replace")
            # every listener: the process exits when a later one cannot bind
            if "kafka listening on" in text and (not self.amqp_port or "amqp listening on" in text):
                return
            if self.proc.poll() is not None:
                raise Violation("broker exited with %s at start:\n%s" % (self.proc.returncode, text[-3000:]))
            time.sleep(0.02)
        raise Violation("broker did not start within 20 s")

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def crash(self, power_loss):
        """kill -9, or the fault build's simulated power loss (exit 137)."""
        if self.proc.poll() is not None:
            raise Violation("broker died on its own with exit code %s" % self.proc.returncode)
        if power_loss:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGUSR1)
            try:
                rc = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
                raise Violation("fault build did not exit within 20 s of SIGUSR1")
            if rc != 137:
                raise Violation("fault build exited %s after SIGUSR1, expected 137 "
                                "(is --bin a FAULT=1 build?)" % rc)
        else:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
        with open(self.log_path, "ab") as f:
            f.write(b"===== crashed by the harness\n")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise Violation("broker did not stop within 30 s of SIGTERM")
            if rc != 0:
                raise Violation("clean shutdown exited %s" % rc)


# ------------------------------------------------------------------ clients

class State:
    """What the clients were told; shared by the client threads (lock)."""

    def __init__(self, partitions):
        self.lock = threading.Lock()
        self.acked = {p: {} for p in range(partitions)}      # offset -> (rid, acks)
        self.commits = {p: [] for p in range(partitions)}    # [(offset, acked)]
        self.consumed = 0


class ProducerThread(threading.Thread):
    def __init__(self, name, acks, bootstrap, st, rng, partitions, run_ev, stop_ev):
        super().__init__(daemon=True, name=name)
        self.pname, self.acks, self.st, self.rng = name, acks, st, rng
        self.partitions, self.run_ev, self.stop_ev = partitions, run_ev, stop_ev
        self.seq = 0
        self.idle = threading.Event()
        self.p = Producer({
            "bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": False,
            "message.send.max.retries": 0, "retries": 0, "linger.ms": 2,
            "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
            "message.timeout.ms": 8000, "request.timeout.ms": 5000,
            "topic.metadata.refresh.interval.ms": 1000, "log_level": 0,
        })

    def on_delivery(self, err, msg):
        if err is not None:
            return
        rid = msg.key().decode()
        with self.st.lock:
            prev = self.st.acked[msg.partition()].get(msg.offset())
            if prev is not None and prev[0] != rid and not (prev[1] == "1" and self.args_power):
                raise_later.append(Violation("offset %d of partition %d acknowledged twice: %s and %s"
                                             % (msg.offset(), msg.partition(), prev[0], rid)))
            self.st.acked[msg.partition()][msg.offset()] = (rid, self.acks)

    def run(self):
        while not self.stop_ev.is_set():
            if not self.run_ev.is_set():
                self.p.flush(10)
                self.idle.set()
                self.run_ev.wait(0.05)
                continue
            self.idle.clear()
            for _ in range(self.rng.randint(1, 4)):
                self.seq += 1
                part = self.rng.randrange(self.partitions)
                rid = "%s-%d-%d" % (self.pname, part, self.seq)
                payload = "x" * self.rng.randint(0, 300)
                try:
                    self.p.produce(TOPIC, key=rid.encode(), value=make_value(rid, payload),
                                   partition=part, on_delivery=self.on_delivery)
                except BufferError:
                    break
            self.p.poll(0.01)
            time.sleep(self.rng.random() * 0.03)
        self.p.flush(5)


raise_later = []   # violations seen in client callbacks


class ConsumerThread(threading.Thread):
    def __init__(self, bootstrap, st, run_ev, stop_ev):
        super().__init__(daemon=True, name="consumer")
        self.st, self.run_ev, self.stop_ev = st, run_ev, stop_ev
        self.idle = threading.Event()
        self.c = Consumer({
            "bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500, "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200, "socket.timeout.ms": 5000,
            "topic.metadata.refresh.interval.ms": 1000, "log_level": 0,
        })
        self.c.subscribe([TOPIC])

    def run(self):
        pos = {}
        n = 0
        while not self.stop_ev.is_set():
            if not self.run_ev.is_set():
                self.idle.set()
                self.run_ev.wait(0.05)
                continue
            self.idle.clear()
            msg = self.c.poll(0.05)
            if msg is None or msg.error():
                continue
            try:
                check_value(msg.value())
            except Violation as e:
                raise_later.append(Violation("consumer read a corrupt record at %d/%d: %s"
                                             % (msg.partition(), msg.offset(), e)))
            pos[msg.partition()] = msg.offset() + 1
            n += 1
            if n % 40 == 0 and pos:
                offs = [TopicPartition(TOPIC, p, o) for p, o in pos.items()]
                with self.st.lock:
                    marks = []
                    for tp in offs:
                        self.st.commits[tp.partition].append([tp.offset, False])
                        marks.append(self.st.commits[tp.partition][-1])
                try:
                    res = self.c.commit(offsets=offs, asynchronous=False)
                except KafkaException:
                    continue
                with self.st.lock:
                    for tp, m in zip(res or [], marks):
                        if tp.error is None:
                            m[1] = True
                pos = {}
        try:
            self.c.close()
        except KafkaException:
            pass



# ------------------------------------------------------------------ AMQP load

class AmqpState:
    """What the AMQP clients were told and what they received (lock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.published = set()     # every message id handed to basic_publish
        self.confirmed = set()     # ids whose publish was confirmed (basic.ack)
        self.delivered = {}        # id -> times delivered
        self.deliveries = 0
        self.flag_first = 0        # redelivered=True on a first delivery (allowed)
        self.unflagged_again = 0   # delivered again with redelivered=False


def amqp_connect(port):
    params = pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1,
                                       socket_timeout=2, blocked_connection_timeout=None,
                                       heartbeat=0)
    return pika.BlockingConnection(params)


AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


class AmqpPublisher(threading.Thread):
    """Numbered persistent messages with publisher confirms, in bursts."""

    def __init__(self, port, ast, rng, run_ev, stop_ev):
        super().__init__(daemon=True, name="amqp-publisher")
        self.port, self.ast, self.rng = port, ast, rng
        self.run_ev, self.stop_ev = run_ev, stop_ev
        self.idle = threading.Event()
        self.seq = 0
        self.conn = self.ch = None

    def drop(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:  # noqa: BLE001  (the broker is gone anyway)
            pass
        self.conn = self.ch = None

    def run(self):
        while not self.stop_ev.is_set():
            if not self.run_ev.is_set():
                self.idle.set()
                self.run_ev.wait(0.05)
                continue
            self.idle.clear()
            try:
                if self.ch is None:
                    self.conn = amqp_connect(self.port)
                    self.ch = self.conn.channel()
                    self.ch.queue_declare(AQUEUE, durable=True)
                    self.ch.confirm_delivery()
                for _ in range(self.rng.randint(1, 5)):
                    self.seq += 1
                    rid = "q-%d" % self.seq
                    body = make_value(rid, "y" * self.rng.randint(0, 300))
                    with self.ast.lock:
                        self.ast.published.add(rid)
                    self.ch.basic_publish("", AQUEUE, body,
                                          pika.BasicProperties(delivery_mode=2))
                    with self.ast.lock:  # returned without NackError: confirmed
                        self.ast.confirmed.add(rid)
            except AMQP_ERRORS:
                self.drop()  # the message in flight is in doubt: not confirmed
                time.sleep(0.05)
                continue
            time.sleep(self.rng.random() * 0.02)
        self.drop()


class AmqpConsumer(threading.Thread):
    """Manual acks, prefetch 50; records every delivery. Never pauses. Acks
    lag (multiple=True up to the last tag, once 30 are pending or the oldest
    is 200 ms old), so a crash finds deliveries unacked."""

    def __init__(self, port, ast, power_loss, stop_ev):
        super().__init__(daemon=True, name="amqp-consumer")
        self.port, self.ast, self.power_loss, self.stop_ev = port, ast, power_loss, stop_ev
        self.conn = self.ch = None
        self.last_tag = self.n_unacked = 0
        self.since = 0.0

    def ack(self, force=False):
        if self.n_unacked and (force or self.n_unacked >= 30 or
                               time.time() - self.since >= 0.2):
            self.ch.basic_ack(self.last_tag, multiple=True)
            self.n_unacked = 0

    def on_message(self, ch, m, props, body):
        try:
            rid = check_value(body)
        except Violation as e:
            raise_later.append(Violation("AMQP consumer got a corrupt message: %s" % e))
            return
        with self.ast.lock:
            n = self.ast.delivered.get(rid, 0)
            if rid not in self.ast.published:
                raise_later.append(Violation("AMQP consumer got %s, which was never published"
                                             % rid))
            if n and not m.redelivered:
                self.ast.unflagged_again += 1
                if not self.power_loss:
                    raise_later.append(Violation(
                        "AMQP message %s delivered again with redelivered=False (kill -9 "
                        "keeps the delivered mark)" % rid))
            if not n and m.redelivered:
                self.ast.flag_first += 1
            self.ast.delivered[rid] = n + 1
            self.ast.deliveries += 1
        self.last_tag = m.delivery_tag
        if not self.n_unacked:
            self.since = time.time()
        self.n_unacked += 1
        self.ack()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                if self.ch is None:
                    self.n_unacked = 0
                    self.conn = amqp_connect(self.port)
                    self.ch = self.conn.channel()
                    self.ch.queue_declare(AQUEUE, durable=True)
                    self.ch.basic_qos(prefetch_count=50)
                    self.ch.basic_consume(AQUEUE, self.on_message, auto_ack=False)
                self.conn.process_data_events(time_limit=0.05)
                self.ack()
            except AMQP_ERRORS:
                try:
                    if self.conn is not None and self.conn.is_open:
                        self.conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self.conn = self.ch = None
                time.sleep(0.05)
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def amqp_check(ast, timeout=20.0):
    """Every confirmed message delivered at least once (the consumer drains
    while the publisher is paused)."""
    deadline = time.time() + timeout
    while True:
        if raise_later:
            raise raise_later[0]
        with ast.lock:
            missing = [r for r in ast.confirmed if r not in ast.delivered]
        if not missing:
            return
        if time.time() > deadline:
            missing.sort(key=lambda r: int(r.split("-")[1]))
            raise Violation("AMQP: %d confirmed message(s) never delivered within %.0f s of the "
                            "check, e.g. %s" % (len(missing), timeout, missing[:10]))
        time.sleep(0.02)


def amqp_summary(ast):
    with ast.lock:
        dups = sum(1 for n in ast.delivered.values() if n > 1)
        return ("amqp: %d published, %d confirmed, %d delivered (%d deliveries), %d delivered "
                "more than once, %d again without redelivered, %d first deliveries flagged "
                "redelivered" % (len(ast.published), len(ast.confirmed), len(ast.delivered),
                                 ast.deliveries, dups, ast.unflagged_again, ast.flag_first))


# ------------------------------------------------------------------ reader

def read_partition(bootstrap, part, deadline):
    """Raw Fetch from 0 to the high watermark -> (hw, [(base, last, bytes)])."""
    out = []
    off = 0
    with kwire.Conn(bootstrap, timeout=10) as c:
        while True:
            res = kwire.fetch_v4(c, TOPIC, part, off, max_bytes=8 << 20, max_wait_ms=0)
            if res["error"] != 0:
                raise Violation("fetch %d at %d: error %d" % (part, off, res["error"]))
            hw = res["high_watermark"]
            data = res["records"]
            p = 0
            while p + 12 <= len(data):
                base, blen = struct.unpack(">qi", data[p:p + 12])
                if blen < 49 or p + 12 + blen > len(data):
                    break  # partial trailing batch (size limit)
                b = data[p:p + 12 + blen]
                lod = struct.unpack(">i", b[23:27])[0]
                if base + lod >= off:
                    out.append((base, base + lod, b))
                    off = base + lod + 1
                p += 12 + blen
            if off >= hw:
                return hw, out
            if time.time() > deadline:
                raise Violation("reader stuck at %d/%d of partition %d" % (off, hw, part))


def offset_fetch(bootstrap, partitions):
    """OffsetFetch v1 for GROUP -> {partition: offset}."""
    body = (kwire.string(GROUP) + kwire.i32(1) + kwire.string(TOPIC) + kwire.i32(partitions)
            + b"".join(kwire.i32(p) for p in range(partitions)))
    with kwire.Conn(bootstrap, timeout=10) as c:
        r = kwire.Reader(c.request(9, 1, body))
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            r.string()
            err = r.i16()
            if err != 0:
                raise Violation("OffsetFetch partition %d: error %d" % (p, err))
            out[p] = off
    return out


class Checker:
    def __init__(self, partitions, power_loss):
        self.partitions = partitions
        self.power_loss = power_loss
        self.known = {p: {} for p in range(partitions)}   # base -> (last, digest) seen earlier
        self.ids = {p: {} for p in range(partitions)}     # offset -> rid (verified records)
        self.ends = {p: 0 for p in range(partitions)}
        self.rids = {p: set() for p in range(partitions)}     # every record id read
        self.lastseq = {p: {} for p in range(partitions)}     # producer -> last seq read

    def check(self, bootstrap, st):
        with st.lock:
            acked = {p: dict(st.acked[p]) for p in st.acked}
            commits = {p: [list(c) for c in st.commits[p]] for p in st.commits}
        deadline = time.time() + 60
        hws = {}
        for part in range(self.partitions):
            hws[part] = self.check_partition(bootstrap, part, acked[part], st, deadline)
        committed = offset_fetch(bootstrap, self.partitions)
        with st.lock:  # commits issued while we read are candidates too
            later = {p: [list(c) for c in st.commits[p][len(commits[p]):]] for p in st.commits}
        for p in range(self.partitions):
            cs = commits[p] + later[p]
            last = max((i for i, c in enumerate(cs) if c[1]), default=None)
            got = committed.get(p, -1)
            if last is None:
                ok = got == -1 or any(c[0] == got for c in cs)
            else:
                ok = any(c[0] == got for c in cs[last:])
            if not ok:
                raise Violation("partition %d: committed offset %d, last acknowledged commit %s "
                                "(later attempts %s)" % (p, got, cs[last][0] if last is not None else None,
                                                         [c[0] for c in cs[(last or 0) + 1:]][-5:]))
            if got > hws[p] and not self.power_loss:  # acks=1 data under it may be lost
                raise Violation("partition %d: committed offset %d past high watermark %d" % (p, got, hws[p]))
        return sum(hws.values())

    def check_partition(self, bootstrap, part, acked, st, deadline):
        hw, batches = read_partition(bootstrap, part, deadline)
        known = self.known[part]
        ids = self.ids[part]
        if hw < self.ends[part]:
            raise Violation("partition %d: high watermark %d below %d read at an earlier check"
                            % (part, hw, self.ends[part]))
        expect = 0
        new_ids = {}
        for base, last, b in batches:
            if base != expect:
                raise Violation("partition %d: gap or overlap: batch at %d, expected %d" % (part, base, expect))
            expect = last + 1
            dig = hashlib.blake2b(b, digest_size=16).digest()
            k = known.get(base)
            if k is not None:
                if k != (last, dig):
                    raise Violation("partition %d: batch at offset %d changed since an earlier check"
                                    % (part, base))
                continue
            if base < self.ends[part]:
                raise Violation("partition %d: batch at %d is new inside what an earlier check read"
                                % (part, base))
            if b[16] != 2:
                raise Violation("partition %d: batch at %d has magic %d" % (part, base, b[16]))
            crc = struct.unpack(">I", b[17:21])[0]
            if kwire.crc32c(b[21:]) != crc:
                raise Violation("partition %d: batch at %d fails its CRC-32C" % (part, base))
            recs = kwire.parse_record_batches(b)[0]["records"]
            if recs is None or len(recs) != last - base + 1:
                raise Violation("partition %d: batch at %d holds %s records for %d offsets"
                                % (part, base, None if recs is None else len(recs), last - base + 1))
            for i, r in enumerate(recs):
                if r["offset"] != base + i:
                    raise Violation("partition %d: record offset %d in batch at %d, expected %d"
                                    % (part, r["offset"], base, base + i))
                rid = check_value(r["value"])
                if r["key"] is None or r["key"].decode() != rid:
                    raise Violation("partition %d: key/value mismatch at %d" % (part, r["offset"]))
                new_ids[r["offset"]] = rid
            known[base] = (last, dig)
        if expect != hw:
            raise Violation("partition %d: batches end at %d, high watermark %d" % (part, expect, hw))
        ids.update(new_ids)
        # exactly once, and each producer's records in the order sent
        rids = self.rids[part]
        lastseq = self.lastseq[part]
        for off in sorted(new_ids):
            rid = new_ids[off]
            if rid in rids:
                raise Violation("partition %d: record %s appears twice (again at offset %d)"
                                % (part, rid, off))
            rids.add(rid)
            prod, _, seq = rid.rsplit("-", 2)
            seq = int(seq)
            if seq <= lastseq.get(prod, 0):
                raise Violation("partition %d: %s out of order at offset %d (after seq %d)"
                                % (part, rid, off, lastseq[prod]))
            lastseq[prod] = seq
        # acknowledged records
        for off, (rid, acks) in acked.items():
            got = ids.get(off)
            if got == rid:
                continue
            if acks == "1" and self.power_loss:
                with st.lock:  # lost in the power cut: forget it
                    if st.acked[part].get(off, (None,))[0] == rid:
                        del st.acked[part][off]
                continue
            raise Violation("partition %d: acks=%s record %s acknowledged at offset %d, found %s"
                            % (part, acks, rid, off, got if got else "nothing (hw %d)" % hw))
        self.ends[part] = hw
        return hw


def barrier(bootstrap, st, partitions, cycle):
    """One acks=all record per partition before a check: its acknowledgement
    means everything before it is fsynced, so what the check reads is durable
    and must stay (with --power-loss, acks=1 records written after the restart
    could otherwise be read by one check and legitimately lost by the next
    power cut)."""
    with kwire.Conn(bootstrap, timeout=15) as c:
        for p in range(partitions):
            rid = "bar-%d-%d" % (p, cycle)
            batch = kwire.build_record_batch([(rid.encode(), make_value(rid, ""), [], None)])
            err, base, _ = kwire.produce_v3(c, TOPIC, p, batch, acks=-1)
            if err != 0:
                raise Violation("barrier produce to partition %d: error %d" % (p, err))
            with st.lock:
                st.acked[p][base] = (rid, "all")


def early_crash(br, settings, power_loss, rng):
    """Start the broker and crash it within a few ms (in recovery or just after)."""
    if power_loss:
        br.start(settings, {"CAIRN_FAULT_MODE": str(rng.choice((1, 2))),
                            "CAIRN_FAULT_SEED": str(rng.randrange(1 << 30)),
                            "CAIRN_FAULT_CRASH_MS": str(rng.randint(0, 30))}, wait=False)
        try:
            rc = br.proc.wait(20)
        except subprocess.TimeoutExpired:
            br.proc.kill()
            br.proc.wait(10)
            raise Violation("fault build did not crash within 20 s (CAIRN_FAULT_CRASH_MS)")
        if rc != 137:
            raise Violation("early crash: fault build exited %s, expected 137" % rc)
    else:
        br.start(settings, wait=False)
        time.sleep(rng.uniform(0.0, 0.05))
        br.signal(signal.SIGKILL)
        br.proc.wait(10)
    with open(br.log_path, "ab") as f:
        f.write(b"===== early crash by the harness\n")


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("CAIRN_BIN"))
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--power-loss", action="store_true",
                    help="crash with the fault build's simulated power loss (SIGUSR1)")
    ap.add_argument("--mode", type=int, default=0,
                    help="power-loss mode: 1 truncate to synced, 2 random length with garbage, "
                         "0 (default) pick per cycle")
    ap.add_argument("--max-load", type=float, default=1.5, help="longest load phase, seconds")
    ap.add_argument("--time-limit", type=float, default=0, help="stop after this many seconds (0: none)")
    ap.add_argument("--dir", default=None, help="data dir (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and broker log")
    ap.add_argument("--no-amqp", dest="amqp", action="store_false",
                    help="no AMQP publisher and consumer (Kafka load only)")
    args = ap.parse_args()
    if not args.bin:
        args.bin = os.path.join(REPO, "build-fault" if args.power_loss else "build", "cairn")
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        print("crash: broker binary %s not found (make build/cairn, or for --power-loss "
              "make BUILD=build-fault FAULT=1 build-fault/cairn)" % args.bin, file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    work = args.dir or tempfile.mkdtemp(prefix="cairn-crash-")
    data = os.path.join(work, "data")
    log_path = os.path.join(work, "broker.log")
    os.makedirs(data, exist_ok=True)
    kind = "power-loss" if args.power_loss else "kill -9"
    print("crash: %s, seed %d, %d cycles, data %s" % (kind, seed, args.cycles, work), flush=True)

    br = Broker(args, data, log_path)
    base_settings = {"group.initial.rebalance.delay.ms": 0, "log.segment.bytes": 65536,
                     "log.index.interval.bytes": 1024, "num.partitions": args.partitions}
    st = State(args.partitions)
    checker = Checker(args.partitions, args.power_loss)
    run_ev, stop_ev = threading.Event(), threading.Event()
    amqp_stop = threading.Event()
    ast = AmqpState()
    threads = []
    t0 = time.time()
    done = 0
    cycle = 0
    ok = False
    try:
        br.start(base_settings)
        adm = AdminClient({"bootstrap.servers": br.bootstrap, "log_level": 0})
        for f in adm.create_topics([NewTopic(TOPIC, args.partitions, 1)]).values():
            f.result(15)
        prng = random.Random(rng.random())
        threads = [ProducerThread("all", "all", br.bootstrap, st, random.Random(prng.random()),
                                  args.partitions, run_ev, stop_ev),
                   ProducerThread("one", "1", br.bootstrap, st, random.Random(prng.random()),
                                  args.partitions, run_ev, stop_ev),
                   ConsumerThread(br.bootstrap, st, run_ev, stop_ev)]
        if args.amqp:
            threads += [AmqpPublisher(br.amqp_port, ast, random.Random(prng.random()), run_ev,
                                      stop_ev),
                        AmqpConsumer(br.amqp_port, ast, args.power_loss, amqp_stop)]
        for t in threads:
            t.args_power = args.power_loss
            t.start()
        for cycle in range(1, args.cycles + 1):
            # load, then crash at a random moment (sometimes after a pause)
            run_ev.set()
            time.sleep(rng.uniform(0.05, args.max_load))
            if rng.random() < 0.2:
                br.signal(signal.SIGSTOP)
                time.sleep(rng.uniform(0.05, 0.6))
                br.signal(signal.SIGCONT)
                time.sleep(rng.uniform(0.0, 0.3))
            br.crash(args.power_loss)
            time.sleep(rng.uniform(0.0, 0.3))   # clients keep trying meanwhile
            settings = dict(base_settings)
            settings["log.preallocate"] = "true" if rng.random() < 0.3 else "false"
            if rng.random() < 0.1:
                # crash again at once: during recovery, or right after it
                early_crash(br, settings, args.power_loss, rng)
            env = {}
            if args.power_loss:
                env = {"CAIRN_FAULT_MODE": str(args.mode or rng.choice((1, 2))),
                       "CAIRN_FAULT_SEED": str(rng.randrange(1 << 30))}
            br.start(settings, env)
            time.sleep(rng.uniform(0.2, 0.6))  # reconnect, deliver what was queued
            run_ev.clear()
            for t in threads:
                if isinstance(t, AmqpConsumer):
                    continue  # drains while the others are paused
                if not t.idle.wait(15):
                    print("crash: cycle %d: %s still busy, checking anyway" % (cycle, t.name),
                          flush=True)
            if raise_later:
                raise raise_later[0]
            barrier(br.bootstrap, st, args.partitions, cycle)
            total = checker.check(br.bootstrap, st)
            if args.amqp:
                amqp_check(ast)
            done = cycle
            if cycle % 10 == 0 or cycle == args.cycles:
                print("crash: cycle %d, %d records in the log, %.0fs" % (cycle, total, time.time() - t0),
                      flush=True)
            if args.time_limit and time.time() - t0 > args.time_limit:
                print("crash: time limit reached", flush=True)
                break
        # the end: clean stop, restart, last check
        stop_ev.set()
        run_ev.set()
        for t in threads:
            if not isinstance(t, AmqpConsumer):
                t.join(30)
        br.stop()
        br.start(base_settings)
        checker.check(br.bootstrap, st)
        if args.amqp:
            amqp_check(ast)
            amqp_stop.set()
            for t in threads:
                t.join(30)
        br.stop()
        ok = True
        with st.lock:
            n_all = sum(1 for p in st.acked for v in st.acked[p].values() if v[1] == "all")
            n_one = sum(1 for p in st.acked for v in st.acked[p].values() if v[1] == "1")
            n_com = sum(1 for p in st.commits for c in st.commits[p] if c[1])
        print("crash: checked %d acks=all and %d acks=1 acknowledged records, %d acknowledged "
              "commits" % (n_all, n_one, n_com))
        if args.amqp:
            print("crash: " + amqp_summary(ast))
        print("%d cycles, 0 violations (%s, seed %d, %.0fs)" % (done, kind, seed, time.time() - t0))
        return 0
    except (Violation, OSError) as e:
        if isinstance(e, OSError):
            # a client error the harness did not expect (the broker refused a
            # connection, a socket timed out): say whether the broker is alive
            # and show the end of its log, so that a CI failure can be read
            rc = br.proc.poll() if br.proc else None
            e = Violation("%s: %s (broker %s)\n--- broker log tail:\n%s"
                          % (type(e).__name__, e,
                             "exited with %s" % rc if rc is not None else "running",
                             br.log_tail()))
        print("VIOLATION in cycle %d: %s" % (cycle, e))
        if args.amqp:
            print("crash: " + amqp_summary(ast))
        print("reproduce the schedule with: /usr/bin/python3 tests/crash/crash.py %s--seed %d "
              "--cycles %d --bin %s" % ("--power-loss " if args.power_loss else "", seed, cycle, args.bin))
        print("broker log and data kept in %s" % work)
        args.keep = True
        return 1
    finally:
        stop_ev.set()
        amqp_stop.set()
        run_ev.set()
        if br.proc and br.proc.poll() is None:
            br.proc.kill()
            br.proc.wait(10)
        if ok and not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
