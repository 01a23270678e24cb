"""Server-Sent Events (GET /topics/{t}/stream) against a real broker, read as
a real client reads them (http.client line by line, curl -N, a raw socket
that stops reading): records produced over Kafka (confluent-kafka) and HTTP
arrive in order with their ids; Last-Event-ID resumes without loss or
duplicates; aborted and still-open transactions never show; keepalive
comments on an idle stream outlive connections.max.idle.ms; a client that
stops reading does not grow the broker's memory (VmRSS and the buffered
bytes metric stay bounded while 50 MB are produced, and everything arrives
once it reads again); deleting the topic ends the stream with an error
event; shutdown closes streams; bad input gets JSON errors."""
import http.client
import json
import re
import socket
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

import ckhelp
from cairn_broker import unique_topic
from httphelp import assert_error, delete, get, post, produce

pytestmark = pytest.mark.cairn_timeout(60)

KEEPALIVE_MS = 300
IDLE_MS = 1500
BUFFER_BOUND = 65536


@pytest.fixture(scope="module")
def broker_settings():
    return {"http.sse.keepalive.ms": str(KEEPALIVE_MS),
            "connections.max.idle.ms": str(IDLE_MS),
            "http.sse.max.buffered.bytes": str(BUFFER_BOUND),
            "group.initial.rebalance.delay.ms": "0"}


def new_topic(broker, partitions=1):
    name = unique_topic("sse")
    st, _, b = post(broker, "/topics", {"name": name, "partitions": partitions})
    assert st == 201, b
    return name


class Stream:
    """One text/event-stream response read line by line (http.client)."""

    def __init__(self, broker, path, headers=None, timeout=15):
        self.conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.sock = self.conn.sock  # http.client lets go of it for a close-delimited body
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.comments = []
        self.last_id = None

    def event(self, comments=False):
        """The next event as a dict (id, event, data: parsed JSON), a comment
        ('comment', text) when comments is set, or None at the end."""
        ev = {}
        data = []
        while True:
            line = self.resp.fp.readline()
            if not line:
                return None
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if ev or data:
                    ev["data"] = json.loads("\n".join(data)) if data else None
                    if "id" in ev:
                        self.last_id = ev["id"]
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if comments:
                    return ("comment", line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                ev[name] = value

    def records(self, n):
        out = []
        while len(out) < n:
            e = self.event()
            assert e is not None, "stream ended after %d of %d events" % (len(out), n)
            assert e["event"] == "record", e
            out.append(e)
        return out

    def close(self):
        self.conn.close()
        self.resp.close()
        self.sock.close()  # the server sees the hang-up now


def metric(broker, name):
    st, _, text = get(broker, "/metrics")
    assert st == 200
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, name
    return float(m.group(1))


def parse_id(s):
    return {int(p): int(o) for p, o in (x.split(":") for x in s.split(","))}


def check_in_order(events, partitions):
    """Offsets per partition strictly increasing; each id lists every
    partition with the last offset delivered from it."""
    last = {p: None for p in range(partitions)}
    for e in events:
        d = e["data"]
        p, o = d["partition"], d["offset"]
        assert last[p] is None or o > last[p], (p, o, last[p])
        last[p] = o
        ids = parse_id(e["id"])
        assert set(ids) == set(range(partitions)), e["id"]
        assert ids[p] == o, (e["id"], p, o)
        for q in range(partitions):
            if last[q] is not None:
                assert ids[q] == last[q], (e["id"], last)


def test_kafka_and_http_records_stream_in_order_with_ids(broker):
    name = new_topic(broker, 2)
    s = Stream(broker, "/topics/%s/stream" % name)  # default: from latest
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers.get("connection") == "close"
    p = ckhelp.producer(broker.bootstrap, linger_ms=5)
    for i in range(40):
        p.produce(name, key=b"kk%d" % i, value=b"kafka-%d" % i, partition=i % 2,
                  headers=[("h", b"%d" % i)])
    ckhelp.flush(p)
    http_recs = [{"key": "hk%d" % i, "value": {"n": i}} for i in range(20)]
    offs = produce(broker, name, http_recs)
    events = s.records(60)
    s.close()
    check_in_order(events, 2)
    kafka = [e["data"] for e in events if e["data"]["value"].startswith("kafka-")]
    assert len(kafka) == 40
    for part in (0, 1):
        vals = [d["value"] for d in kafka if d["partition"] == part]
        assert vals == ["kafka-%d" % i for i in range(part, 40, 2)]
    for d in kafka:
        i = int(d["value"].split("-")[1])
        assert d["key"] == "kk%d" % i and d["headers"] == [["h", str(i)]]
    by_pos = {(e["data"]["partition"], e["data"]["offset"]): e["data"] for e in events}
    for r, o in zip(http_recs, offs):
        d = by_pos[(o["partition"], o["offset"])]
        assert d["key"] == r["key"] and json.loads(d["value"]) == r["value"]


def test_single_partition_from_offset_and_earliest(broker):
    name = new_topic(broker, 1)
    produce(broker, name, [{"value": "v%d" % i} for i in range(10)])
    s = Stream(broker, "/topics/%s/stream?partition=0&offset=4" % name)
    ev = s.records(6)
    assert [e["id"] for e in ev] == ["0:%d" % i for i in range(4, 10)]
    assert [e["data"]["value"] for e in ev] == ["v%d" % i for i in range(4, 10)]
    s.close()
    s = Stream(broker, "/topics/%s/stream?from=earliest" % name)
    ev = s.records(10)
    assert [e["data"]["offset"] for e in ev] == list(range(10))
    s.close()


def test_resume_with_last_event_id_loses_and_repeats_nothing(broker):
    name = new_topic(broker, 3)
    produce(broker, name, [{"key": "k%d" % i, "value": "a%d" % i} for i in range(60)])
    seen = []
    s = Stream(broker, "/topics/%s/stream?from=earliest" % name)
    seen += s.records(25)
    last = s.last_id
    s.close()
    # More records while the client is away, on every partition (Kafka too).
    produce(broker, name, [{"key": "k%d" % i, "value": "b%d" % i} for i in range(60)])
    p = ckhelp.producer(broker.bootstrap)
    for i in range(30):
        p.produce(name, value=b"c%d" % i, partition=i % 3)
    ckhelp.flush(p)
    total = 150
    # Resume twice (as EventSource does on every reconnect), once through curl.
    s = Stream(broker, "/topics/%s/stream" % name, headers={"Last-Event-ID": last})
    seen += s.records(50)
    last = s.last_id
    s.close()
    out = subprocess.run(["curl", "-sN", "--max-time", "3", "-H", "Last-Event-ID: " + last,
                          "%s/topics/%s/stream" % (broker.http_url, name)],
                         capture_output=True, text=True)
    assert out.returncode == 28, out  # curl's timeout: the stream stays open
    rest = [json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("data: ")]
    assert len(rest) == total - 75, len(rest)
    positions = [(e["data"]["partition"], e["data"]["offset"]) for e in seen]
    positions += [(d["partition"], d["offset"]) for d in rest]
    assert len(positions) == len(set(positions)), "duplicates"
    st, _, b = get(broker, "/topics/%s" % name)
    hw = {q["partition"]: q["high_watermark"] for q in b["partitions"]}
    assert set(positions) == {(q, o) for q in range(3) for o in range(hw[q])}
    # A single-partition resume: after 0:N comes N+1.
    s = Stream(broker, "/topics/%s/stream?partition=1" % name, headers={"Last-Event-ID": "1:3"})
    assert [e["data"]["offset"] for e in s.records(3)] == [4, 5, 6]
    s.close()


def test_aborted_and_open_transactions_never_appear(broker):
    name = new_topic(broker, 1)
    s = Stream(broker, "/topics/%s/stream?partition=0" % name)
    p = ckhelp.producer(broker.bootstrap, transactional_id="sse-txn-" + name)
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(name, value=b"aborted-%d" % i, partition=0)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(name, value=b"committed-%d" % i, partition=0)
    p.commit_transaction(30)
    # An open transaction holds back what comes after it (last stable offset).
    p.begin_transaction()
    p.produce(name, value=b"late-commit", partition=0)
    p.flush(30)
    plain = ckhelp.producer(broker.bootstrap)
    plain.produce(name, value=b"after-open", partition=0)
    ckhelp.flush(plain)
    got = [e["data"]["value"] for e in s.records(5)]
    assert got == ["committed-%d" % i for i in range(5)]
    # Nothing else arrives while the transaction is open: only keepalives.
    deadline = time.time() + 1.5
    n_comments = 0
    while time.time() < deadline:
        e = s.event(comments=True)
        assert e == ("comment", "keepalive"), e
        n_comments += 1
    assert n_comments >= 2
    s.close()
    p.commit_transaction(30)
    s = Stream(broker, "/topics/%s/stream?from=earliest" % name)
    got = [e["data"]["value"] for e in s.records(7)]
    assert got == ["committed-%d" % i for i in range(5)] + ["late-commit", "after-open"]
    s.close()


def test_partitions_added_while_streaming_are_streamed_from_their_start(broker):
    from confluent_kafka.admin import NewPartitions
    name = new_topic(broker, 1)
    s = Stream(broker, "/topics/%s/stream" % name)
    produce(broker, name, [{"value": "p0"}])
    assert s.records(1)[0]["id"] == "0:0"
    a = ckhelp.admin(broker.bootstrap)
    a.create_partitions([NewPartitions(name, 2)])[name].result(20)
    p = ckhelp.producer(broker.bootstrap)
    p.produce(name, value=b"p1-a", partition=1)
    p.produce(name, value=b"p1-b", partition=1)
    ckhelp.flush(p)
    ev = s.records(2)
    assert [e["data"]["value"] for e in ev] == ["p1-a", "p1-b"]
    assert [e["id"] for e in ev] == ["0:0,1:0", "0:0,1:1"]
    s.close()
    # A resume from an id that predates partition 1 reads it from its start.
    s = Stream(broker, "/topics/%s/stream" % name, headers={"Last-Event-ID": "0:0"})
    assert [e["data"]["value"] for e in s.records(2)] == ["p1-a", "p1-b"]
    s.close()


def test_keepalives_keep_an_idle_stream_open(broker):
    name = new_topic(broker, 1)
    # A plain keep-alive connection is closed by the idle sweep...
    c = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    c.request("GET", "/healthz")
    c.getresponse().read()
    # ...while a stream outlives connections.max.idle.ms several times.
    t0 = time.time()
    out = subprocess.run(["curl", "-sN", "--max-time", "4",
                          "%s/topics/%s/stream" % (broker.http_url, name)],
                         capture_output=True, text=True)
    assert out.returncode == 28, out  # still open when curl gave up
    assert time.time() - t0 >= 3.5
    n = out.stdout.count(": keepalive\n\n")
    assert n >= 4000 // KEEPALIVE_MS - 3, out.stdout
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        c.request("GET", "/healthz")
        c.getresponse().read()


def test_slow_client_does_not_grow_broker_memory(broker):
    name = new_topic(broker, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", broker.http_port))
    sock.sendall(b"GET /topics/%s/stream?partition=0 HTTP/1.1\r\nHost: x\r\n\r\n"
                 % name.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200")

    def rss_kb():
        with open("/proc/%d/status" % broker.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    # Warm up the produce path before measuring.
    p = ckhelp.producer(broker.bootstrap, linger_ms=20, batch_size=1 << 20)
    value = b"x" * 1000
    for i in range(2000):
        p.produce(name, value=value, partition=0)
    ckhelp.flush(p)
    time.sleep(0.5)
    before = rss_kb()
    n_total = 52000  # ~50 MB of values, ~55 MB of events
    peak = before
    max_buffered = 0
    for i in range(2000, n_total):
        p.produce(name, value=value, partition=0)
        if i % 5000 == 0:
            ckhelp.flush(p)
            peak = max(peak, rss_kb())
            max_buffered = max(max_buffered, metric(broker, "cairn_http_sse_buffered_bytes"))
    ckhelp.flush(p)
    time.sleep(1.0)
    peak = max(peak, rss_kb())
    max_buffered = max(max_buffered, metric(broker, "cairn_http_sse_buffered_bytes"))
    print("sse slow client: VmRSS %d kB before, %d kB peak; buffered at most %d bytes"
          % (before, peak, max_buffered))
    assert metric(broker, "cairn_http_sse_backpressure_pauses_total") >= 1
    # The bound, plus at most one slice's events past it.
    assert max_buffered <= BUFFER_BOUND + (400 << 10), max_buffered
    with open("/proc/%d/maps" % broker.proc.pid) as f:
        sanitized = "libasan" in f.read()
    if not sanitized:  # ASan's quarantine keeps freed memory resident: the metric says it
        assert (peak - before) < 30 * 1024, "VmRSS grew from %d to %d kB" % (before, peak)
    # Reading again: every record arrives, in order, none twice.
    f = sock.makefile("rb")
    sock.settimeout(30)
    got = 0
    while got < n_total:
        line = f.readline()
        assert line, "stream ended at %d" % got
        if line.startswith(b"id: "):
            assert line == b"id: 0:%d\n" % got, (line, got)
            got += 1
    sock.close()


def test_topic_deletion_ends_the_stream(broker):
    name = new_topic(broker, 2)
    s = Stream(broker, "/topics/%s/stream" % name)
    produce(broker, name, [{"value": "one"}])
    assert s.records(1)[0]["data"]["value"] == "one"
    st, _, b = delete(broker, "/topics/%s" % name)
    assert st in (200, 204), b
    e = s.event()
    assert e["event"] == "error", e
    assert e["data"]["error_code"] == "unknown_topic"
    assert s.event() is None  # then the connection closes
    s.close()


@pytest.mark.parametrize("first", [b"HTTP/1.1\r\nHost: x", b"HTTP/1.1\r\nConnection: close",
                                   b"HTTP/1.0"])
def test_client_hang_up_frees_the_stream_and_later_input_is_ignored(broker, first):
    name = new_topic(broker, 1)
    base = metric(broker, "cairn_http_sse_streams")
    sock = socket.create_connection(("127.0.0.1", broker.http_port), timeout=10)
    # A request pipelined after the stream is never answered (discarded).
    sock.sendall(b"GET /topics/%s/stream %s\r\n\r\n"
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" % (name.encode(), first))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    produce(broker, name, [{"value": "z"}])
    deadline = time.time() + 5
    while b"data: " not in buf and time.time() < deadline:
        buf += sock.recv(4096)
    assert b'"value":"z"' in buf and b"healthz" not in buf and buf.count(b"HTTP/1.1") == 1
    assert metric(broker, "cairn_http_sse_streams") == base + 1
    sock.close()
    deadline = time.time() + 5
    while metric(broker, "cairn_http_sse_streams") != base and time.time() < deadline:
        time.sleep(0.05)
    assert metric(broker, "cairn_http_sse_streams") == base


def test_bad_input_gets_json_errors(broker):
    name = new_topic(broker, 2)
    produce(broker, name, [{"value": "x"}])
    assert_error(get(broker, "/topics/nope-%s/stream" % name), 404, "unknown_topic")
    assert_error(get(broker, "/topics/%s/stream?partition=5" % name), 404, "unknown_partition")
    assert_error(get(broker, "/topics/%s/stream?partition=x" % name), 400, "invalid_partition")
    assert_error(get(broker, "/topics/%s/stream?from=middle" % name), 400, "invalid_parameter")
    assert_error(get(broker, "/topics/%s/stream?offset=0" % name), 400, "invalid_parameter")
    assert_error(get(broker, "/topics/%s/stream?partition=0&offset=9" % name), 400,
                 "offset_out_of_range")
    for bad in ("x", "0:", "0:1,0:2", "7:1", "0:-2", ":1", "0:1,", "0:1:2"):
        assert_error(get(broker, "/topics/%s/stream" % name, headers={"Last-Event-ID": bad}),
                     400, "invalid_last_event_id")
    assert_error(get(broker, "/topics/%s/stream?partition=0" % name,
                     headers={"Last-Event-ID": "1:0"}), 400, "invalid_last_event_id")
    assert_error(get(broker, "/topics/%s/stream?partition=0" % name,
                     headers={"Last-Event-ID": "0:5"}), 400, "offset_out_of_range")
    assert_error(get(broker, "/topics/%s/stream?group=g&partition=0" % name), 400,
                 "invalid_parameter")
    assert_error(get(broker, "/topics/%s/stream?group=" % name), 400, "invalid_parameter")
    assert_error(get(broker, "/topics/%s/stream?group=g" % name,
                     headers={"Last-Event-ID": "0:0"}), 400, "invalid_parameter")
    st, hdrs, _ = post(broker, "/topics/%s/stream" % name, {})
    assert st == 405 and "GET" in hdrs["allow"]


def next_assignment(s):
    e = s.event()
    assert e is not None and e["event"] == "assignment", e
    return e["data"]


def wait_committed(broker, group, topic, hw, timeout=10):
    deadline = time.time() + timeout
    while True:
        st, _, b = get(broker, "/groups/%s" % group)
        got = {o["partition"]: o["committed_offset"] for o in b.get("offsets", [])
               if o["topic"] == topic} if st == 200 else {}
        if got == hw:
            return
        assert time.time() < deadline, (got, hw)
        time.sleep(0.1)


def test_group_streams_share_partitions_and_resume_from_committed_positions(broker):
    name = new_topic(broker, 4)
    group = unique_topic("sseg")
    path = "/topics/%s/stream?group=%s&from=earliest" % (name, group)
    a = Stream(broker, path)
    assert next_assignment(a)["partitions"] == [0, 1, 2, 3]
    b = Stream(broker, path)
    pb = next_assignment(b)["partitions"]
    pa = next_assignment(a)["partitions"]  # a hears of the rebalance on its heartbeat
    assert pa and pb and sorted(pa + pb) == [0, 1, 2, 3], (pa, pb)
    offs = produce(broker, name, [{"key": "k%d" % i, "value": "v%d" % i} for i in range(40)])
    n_a = sum(1 for o in offs if o["partition"] in pa)
    got = a.records(n_a) + b.records(40 - n_a)
    for e in got[:n_a]:
        assert e["data"]["partition"] in pa
    for e in got[n_a:]:
        assert e["data"]["partition"] in pb
        assert e["id"] == "%d:%d" % (e["data"]["partition"], e["data"]["offset"])
    pos = [(e["data"]["partition"], e["data"]["offset"]) for e in got]
    assert sorted(pos) == sorted((o["partition"], o["offset"]) for o in offs)
    st, _, desc = get(broker, "/topics/%s" % name)
    hw = {q["partition"]: q["high_watermark"] for q in desc["partitions"]}
    wait_committed(broker, group, name, hw)  # positions committed once handed over
    # b leaves: a takes every partition and goes on where b stopped.
    b.close()
    assert next_assignment(a)["partitions"] == [0, 1, 2, 3]
    offs2 = produce(broker, name, [{"key": "x%d" % i, "value": "w%d" % i} for i in range(12)])
    got2 = a.records(12)
    assert sorted((e["data"]["partition"], e["data"]["offset"]) for e in got2) == \
        sorted((o["partition"], o["offset"]) for o in offs2)
    for o in offs2:
        hw[o["partition"]] = max(hw[o["partition"]], o["offset"] + 1)
    wait_committed(broker, group, name, hw)
    a.close()
    # A new member of the group starts at the committed positions: only what is new.
    offs3 = produce(broker, name, [{"value": "late%d" % i} for i in range(5)])
    c = Stream(broker, path)
    assert next_assignment(c)["partitions"] == [0, 1, 2, 3]
    assert sorted(e["data"]["value"] for e in c.records(5)) == ["late%d" % i for i in range(5)]
    assert len(offs3) == 5
    c.close()


def test_group_member_hanging_up_during_its_join_leaves_at_once(broker):
    name = new_topic(broker, 4)
    group = unique_topic("sseh")
    path = "/topics/%s/stream?group=%s" % (name, group)
    a = Stream(broker, path)
    assert next_assignment(a)["partitions"] == [0, 1, 2, 3]
    # A second member whose join waits for a's rejoin, gone before it completes.
    sock = socket.create_connection(("127.0.0.1", broker.http_port), timeout=10)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert b"event: assignment" not in head
    deadline = time.time() + 5
    while True:  # its join has arrived (and waits for a's rejoin)
        st, _, g = get(broker, "/groups/%s" % group)
        if g["state"] == "PreparingRebalance" or len(g["members"]) == 2:
            break
        assert time.time() < deadline, g
        time.sleep(0.01)
    sock.close()
    # a goes through the rebalance that adds the departed member, then the
    # one its leave starts (well within the 10 s session timeout).
    t0 = time.time()
    while True:
        got = next_assignment(a)
        if got["partitions"] == [0, 1, 2, 3]:
            break
    assert got["generation"] >= 2 and time.time() - t0 < 8
    st, _, g = get(broker, "/groups/%s" % group)
    assert st == 200 and len(g["members"]) == 1, g
    a.close()


def test_group_stream_next_to_a_kafka_group_of_that_name_ends_with_an_error(broker):
    name = new_topic(broker, 1)
    group = unique_topic("kg")
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    c.subscribe([name])
    deadline = time.time() + 20
    while not c.assignment():
        assert time.time() < deadline, "the Kafka consumer got no assignment"
        c.poll(0.2)
    s = Stream(broker, "/topics/%s/stream?group=%s" % (name, group))
    assert s.status == 200
    e = s.event()
    assert e["event"] == "error" and e["data"]["error_code"] == "group_error", e
    assert s.event() is None
    s.close()
    c.close()


def test_group_ids_that_are_not_utf8(broker):
    # Found by fuzz_http_server: a group= stream with a non-UTF-8 id made
    # GET /groups call strcmp(NULL). Such ids are refused for streams now...
    name = new_topic(broker, 1)
    assert_error(get(broker, "/topics/%s/stream?group=g%%FF%%FE" % name), 400,
                 "invalid_parameter")
    assert_error(get(broker, "/topics/%s/stream?group=a%%01b" % name), 400,
                 "invalid_parameter")
    # ...and a Kafka client may still make one (OffsetCommit v2, simple commit).
    import kwire
    from kwire import Conn, Reader, i32, i64, string
    gid = b"sse-\xff\xfe-" + unique_topic("x").encode()
    with Conn(broker.bootstrap) as c:
        body = string(gid) + i32(-1) + string("") + i64(-1) + i32(1)
        body += string(name) + i32(1) + i32(0) + i64(0) + string(None)
        r = Reader(c.request(8, 2, body))
        assert r.i32() == 1 and r.string() == name and r.i32() == 1
        assert r.i32() == 0 and r.i16() == 0
    st, _, b = get(broker, "/groups")
    assert st == 200
    shown = gid.decode("latin-1").replace("\xff", "?").replace("\xfe", "?")
    assert shown in [g["group_id"] for g in b["groups"]], b


def test_shutdown_closes_streams(broker_factory):
    b = broker_factory({"http.sse.keepalive.ms": "60000"})
    name = new_topic(b, 1)
    s = Stream(b, "/topics/%s/stream" % name)
    produce(b, name, [{"value": "before"}])
    assert s.records(1)[0]["data"]["value"] == "before"
    b.stop(check=True)
    assert s.event(comments=True) == ("comment", "shutdown")
    assert s.event() is None
    s.close()
