"""AMQP resource alarms (issue 10, backpressure), with pika against a real
broker, as RabbitMQ's memory and disk alarms behave:

* memory: a publisher flooding a queue without consumers is blocked once the
  messages held reach amqp.memory.high.watermark.bytes: it gets
  connection.blocked, the broker stops reading it (its RSS stays bounded),
  heartbeats keep flowing both ways; a consumer drains the queue, the
  publisher gets connection.unblocked and all its publishes arrive;
* disk: with the data directory on a small tmpfs (the test_disk_full
  method), free space below amqp.disk.free.limit.bytes blocks persistent
  publishers until space is freed;
* a slow no-ack consumer (it does not read its socket) is not pushed more
  than about 1 MiB: the rest waits in the queue, under the memory alarm;
* a full disk (no disk alarm): a publish whose append fails with ENOSPC is
  nacked under confirms, and every confirmed message survives a restart.
The alarm state changes are logged."""
import os
import subprocess
import threading
import time

import pika
import pika.exceptions
import pytest

from test_amqp_queues import connect  # noqa: E402  (the shared pika fixtures)

WATERMARK = 2 * 1024 * 1024
MSG = 32 * 1024
N_FLOOD = 2000                       # 64 MiB attempted against a 2 MiB watermark


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def body(i, size=MSG):
    head = b"%d|" % i
    return head + b"x" * (size - len(head))


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


class Publisher(threading.Thread):
    """Publishes n messages from its own pika connection (pika runs the
    blocked/unblocked callbacks and heartbeats on this thread)."""

    def __init__(self, broker, queue, n, size=MSG, confirm=False, persistent=False,
                 heartbeat=None):
        super().__init__(daemon=True)
        self.broker, self.queue, self.n, self.size = broker, queue, n, size
        self.confirm, self.persistent, self.heartbeat = confirm, persistent, heartbeat
        self.sent = 0
        self.error = None
        self.blocked = threading.Event()
        self.unblocked = threading.Event()
        self.reasons = []

    def on_blocked(self, conn, frame):
        self.reasons.append(frame.method.reason)
        self.blocked.set()

    def on_unblocked(self, conn, frame):
        self.unblocked.set()

    def run(self):
        try:
            kw = {"heartbeat": self.heartbeat} if self.heartbeat is not None else {}
            conn = connect(self.broker, **kw)
            # On the connection's core (_impl): BlockingConnection runs its own
            # blocked callbacks only from process_data_events, never while a
            # basic_publish waits for the socket, which is what a blocked
            # publisher does.
            conn._impl.add_on_connection_blocked_callback(self.on_blocked)
            conn._impl.add_on_connection_unblocked_callback(self.on_unblocked)
            ch = conn.channel()
            if self.confirm:
                ch.confirm_delivery()
            props = pika.BasicProperties(delivery_mode=2 if self.persistent else 1)
            for i in range(self.n):
                ch.basic_publish("", self.queue, body(i, self.size), props)
                self.sent = i + 1
            ch.exchange_declare("amq.direct", passive=True)   # a round trip: all were read
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


@pytest.fixture(scope="module")
def broker_settings():
    return {"amqp.memory.high.watermark.bytes": str(WATERMARK)}


def queue_depth(broker, queue):
    conn = connect(broker)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def test_memory_alarm_blocks_publisher_until_drained(broker):
    q = "alarm-mem"
    conn = connect(broker)
    conn.channel().queue_declare(q)
    conn.close()
    rss0 = rss_kib(broker.proc.pid)

    pub = Publisher(broker, q, N_FLOOD, heartbeat=2)
    pub.start()
    assert pub.blocked.wait(20), "no connection.blocked (sent %d, error %r)" % (pub.sent, pub.error)
    assert pub.reasons[0] == "low on memory"
    # The publisher is stuck (TCP pushes back) and the broker holds about
    # the watermark. Stay blocked past pika's heartbeat check (2 s + 5 s)
    # and the broker's (2 intervals): both sides must keep the connection.
    time.sleep(8)
    assert pub.error is None, "publisher failed while blocked: %r" % pub.error
    assert pub.is_alive() and pub.sent < N_FLOOD
    assert not pub.unblocked.is_set()
    depth = queue_depth(broker, q)
    held = depth * MSG
    assert 0.9 * WATERMARK <= held <= 2 * WATERMARK, "%d messages held while blocked" % depth
    rss1 = rss_kib(broker.proc.pid)
    # 64 MiB were attempted; the broker grew by the watermark and its buffers.
    assert rss1 - rss0 < 16 * 1024, "RSS grew from %d KiB to %d KiB" % (rss0, rss1)
    log = broker.log_text(10 ** 7)
    assert "memory alarm set" in log

    # Drain: acks free memory, the alarm clears (below 90%), the publisher
    # is unblocked and every message arrives, in order.
    conn = connect(broker)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=200)
    got = 0
    deadline = time.time() + 120
    for m, p, b in ch.consume(q, inactivity_timeout=0.5):
        if m is not None:
            assert b.split(b"|")[0] == b"%d" % got, "message %d out of order" % got
            got += 1
            ch.basic_ack(m.delivery_tag)
        if got == N_FLOOD or time.time() > deadline:
            break
    ch.cancel()
    conn.close()
    assert got == N_FLOOD, "consumed %d of %d" % (got, N_FLOOD)
    pub.join(30)
    assert not pub.is_alive() and pub.error is None, "publisher: %r" % pub.error
    assert pub.sent == N_FLOOD and pub.unblocked.is_set()
    log = broker.log_text(10 ** 7)
    assert "memory alarm cleared" in log and "publishers are unblocked" in log
    assert broker.alive()


def test_consumer_connection_keeps_flowing_during_alarm(broker):
    """A connection that only consumes is never paused: its acks are what
    drains memory. basic.get and queue methods work during the alarm."""
    q = "alarm-get"
    conn = connect(broker)
    conn.channel().queue_declare(q)
    conn.close()
    pub = Publisher(broker, q, 400)
    pub.start()
    assert pub.blocked.wait(20), "no connection.blocked (sent %d)" % pub.sent
    conn = connect(broker)
    ch = conn.channel()
    for i in range(5):
        m, p, b = ch.basic_get(q)
        assert m is not None and b.split(b"|")[0] == b"%d" % i
        ch.basic_ack(m.delivery_tag)
    ch.queue_purge(q)       # frees everything: the alarm clears
    assert pub.unblocked.wait(10), "no connection.unblocked after the purge"
    deadline = time.time() + 30
    while pub.is_alive() and time.time() < deadline:
        ch.queue_purge(q)   # it blocks again at the watermark: keep freeing
        time.sleep(0.05)
    pub.join(1)
    assert pub.error is None and pub.sent == 400
    ch.queue_delete(q)
    conn.close()


def test_slow_noack_consumer_does_not_grow_memory(broker):
    """A no-ack consumer that does not read its socket: deliveries stop once
    about ASRV_OUT_HIGH (1 MiB) waits unsent, the rest stays in the queue
    (counted), so the memory alarm blocks the publisher and RSS stays
    bounded; once the consumer reads, everything arrives in order."""
    q = "alarm-slow"
    cons = connect(broker)
    cch = cons.channel()
    cch.queue_declare(q)
    got = []
    cch.basic_consume(q, lambda c, m, p, b: got.append(int(b.split(b"|")[0])), auto_ack=True)
    rss0 = rss_kib(broker.proc.pid)
    pub = Publisher(broker, q, N_FLOOD)
    pub.start()                       # the consumer's pika does not read meanwhile
    assert pub.blocked.wait(30), "no connection.blocked (sent %d, error %r)" % (pub.sent, pub.error)
    time.sleep(1)
    assert pub.is_alive() and pub.sent < N_FLOOD and pub.error is None
    rss1 = rss_kib(broker.proc.pid)
    assert rss1 - rss0 < 16 * 1024, "RSS grew from %d KiB to %d KiB" % (rss0, rss1)
    assert queue_depth(broker, q) > 0, "everything was pushed to the slow consumer"
    deadline = time.time() + 120
    while len(got) < N_FLOOD and time.time() < deadline:
        cons.process_data_events(time_limit=0.2)
    assert got == list(range(N_FLOOD)), "consumed %d of %d" % (len(got), N_FLOOD)
    pub.join(30)
    assert pub.error is None and pub.sent == N_FLOOD and pub.unblocked.is_set()
    cch.queue_delete(q)
    cons.close()


# ---------------------------------------------------------------- disk

@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    size_mb = 24
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mb, "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s): disk tests skipped"
                    % (r.stderr or r.stdout).strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def broker_on(fs, broker_factory, settings):
    s = {"log.segment.bytes": 1 << 20, "log.preallocate": "false"}
    s.update(settings)
    b = broker_factory(s, start=False)
    b.data_dir = str(fs / "data")
    os.makedirs(b.data_dir)
    b.start()
    return b


@pytest.mark.cairn_timeout(120)
def test_disk_alarm_blocks_persistent_publisher(small_fs, broker_factory):
    limit = 12 * 1024 * 1024
    b = broker_on(small_fs, broker_factory, {"amqp.disk.free.limit.bytes": str(limit)})
    free0 = free_bytes(small_fs)
    assert free0 > limit + 4 * 1024 * 1024, "tmpfs too small: %d free" % free0
    conn = connect(b)
    conn.channel().queue_declare("disk", durable=True)
    conn.close()
    size = 64 * 1024
    n = 2 * free0 // size                       # twice what would fit
    pub = Publisher(b, "disk", n, size=size, confirm=True, persistent=True)
    pub.start()
    assert pub.blocked.wait(30), "no connection.blocked (sent %d of %d, error %r)" % (
        pub.sent, n, pub.error)
    assert pub.reasons[0] == "low on disk"
    time.sleep(1.5)
    stuck = pub.sent
    assert pub.error is None and stuck < n
    # blocked before the disk filled: the free space is around the limit
    assert free_bytes(small_fs) > limit // 2
    assert (free0 - limit) // size - 20 <= stuck <= (free0 - limit) // size + 40
    time.sleep(1.5)
    assert pub.sent == stuck, "a blocked publisher kept publishing"
    log = b.log_text(10 ** 7)
    assert "disk alarm set" in log
    assert "no space" not in log and "append failed" not in log
    # Free the space: delete the queue (its partition goes); the alarm
    # clears within a check or two and the publisher finishes (unroutable
    # publishes are confirmed at once).
    conn = connect(b)
    conn.channel().queue_delete("disk")
    conn.close()
    assert pub.unblocked.wait(10), "no connection.unblocked after freeing space"
    pub.join(60)
    assert pub.error is None and pub.sent == n, "publisher: %r, sent %d" % (pub.error, pub.sent)
    assert "disk alarm cleared" in b.log_text(10 ** 7)
    assert b.alive()


@pytest.mark.cairn_timeout(120)
def test_enospc_nacks_and_keeps_confirmed(small_fs, broker_factory):
    # no disk alarm: the appends themselves hit ENOSPC
    b = broker_on(small_fs, broker_factory, {"amqp.disk.free.limit.bytes": "0"})
    ballast = small_fs / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\0" * (free_bytes(small_fs) - 6 * 1024 * 1024))
    conn = connect(b)
    ch = conn.channel()
    ch.queue_declare("keep", durable=True)
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)
    size = 64 * 1024
    acked, nacked = [], []
    for i in range(2 * 6 * 1024 * 1024 // size):        # bounded: twice the free space
        try:
            ch.basic_publish("", "keep", body(i, size), props)
            acked.append(i)
        except pika.exceptions.NackError:
            nacked.append(i)
            break
    assert nacked, "the disk never filled (%d acked)" % len(acked)
    for i in range(nacked[0] + 1, nacked[0] + 4):        # more publishes fail cleanly
        try:
            ch.basic_publish("", "keep", body(i, size), props)
            acked.append(i)
        except pika.exceptions.NackError:
            nacked.append(i)
    assert "no space" in b.log_text(10 ** 7)
    os.unlink(ballast)                                   # space again: appends succeed
    last = max(acked + nacked) + 1
    for i in range(last, last + 5):
        ch.basic_publish("", "keep", body(i, size), props)
        acked.append(i)
    conn.close()
    assert b.alive()
    b.stop()
    b.start()
    conn = connect(b)
    ch = conn.channel()
    got = []
    while True:
        m, p, bd = ch.basic_get("keep", auto_ack=True)
        if m is None:
            break
        got.append(int(bd.split(b"|")[0]))
    conn.close()
    assert set(acked) <= set(got), "confirmed messages lost: %s" % sorted(set(acked) - set(got))
    assert len(got) == len(set(got)) and got == sorted(got)
    assert not set(nacked) & set(got), "a nacked message was stored"
