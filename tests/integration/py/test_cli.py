"""The command-line client (`cairn topic|group|produce|consume`, src/cli)
run as a subprocess against a real broker's HTTP API: topic admin, produce
and consume one record a line (cross-checked with confluent-kafka both
ways), following a topic, group describe after a Kafka consumer committed,
reset-offsets (refused while the group has members, then a Kafka consumer
starting where it was reset), --json output parsed, and the errors: broker
down, unknown topic, bad usage. Also the POST /groups/{g}/offsets endpoint
behind reset-offsets, through HTTP directly."""
import json
import os
import socket
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

import ckhelp
from cairn_broker import cairn_bin, free_port, unique_topic
from httphelp import assert_error, delete, get, post


def cli(broker, *args, stdin=None, timeout=60, env=None):
    """Run build/cairn ARGS --http <broker>; CompletedProcess with bytes."""
    argv = [cairn_bin()] + list(args)
    if broker is not None:
        argv += ["--http", "127.0.0.1:%d" % broker.http_port]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout.decode("utf-8", "surrogateescape")


def table(text):
    """Rows of a table (header first) split on whitespace."""
    return [line.split() for line in text.strip().splitlines()]


def kafka_read(broker, topic, n, partitions, timeout=30):
    c = ckhelp.consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
    c.close()
    assert len(out) == n, "Kafka consumer got %d of %d records" % (len(out), n)
    return out


# ------------------------------------------------------------------ topics

def test_topic_create_list_describe_delete(broker):
    name = unique_topic("cli")
    out = ok(cli(broker, "topic", "create", name, "-p", "3", "--config", "retention.ms=123456"))
    assert name in out and "3 partition" in out
    st, _, d = get(broker, "/topics/" + name)
    assert st == 200 and len(d["partitions"]) == 3
    assert d["configs"]["retention.ms"]["value"] == "123456"

    rows = table(ok(cli(broker, "topic", "list")))
    assert rows[0] == ["NAME", "PARTITIONS"]
    assert [name, "3"] in rows[1:]
    js = json.loads(ok(cli(broker, "topic", "list", "--json")))
    assert {"name": name, "partitions": 3} in js["topics"]

    text = ok(cli(broker, "topic", "describe", name))
    assert "retention.ms=123456" in text and d["topic_id"] in text
    parts = [r for r in table(text) if r and r[0].isdigit()]
    assert [r[0] for r in parts] == ["0", "1", "2"]
    assert all(r[1:6] == ["0", "0", "0", "0", "0"] for r in parts), parts
    jd = json.loads(ok(cli(broker, "topic", "describe", "--json", name)))
    assert jd["name"] == name and len(jd["partitions"]) == 3
    assert jd["configs"]["retention.ms"] == {"value": "123456", "default": False}

    # options may come before the name, and --json gives the API's answer
    jc = json.loads(ok(cli(broker, "topic", "create", "--json", "--partitions", "1",
                           name + "-b")))
    assert jc["name"] == name + "-b" and jc["partitions"] == 1

    r = cli(broker, "topic", "create", name)
    assert r.returncode == 1 and b"topic_exists" in r.stderr and b"HTTP 409" in r.stderr, r

    assert name in ok(cli(broker, "topic", "delete", name))
    ok(cli(broker, "topic", "delete", name + "-b", "--json"))
    names = [t["name"] for t in json.loads(ok(cli(broker, "topic", "list", "--json")))["topics"]]
    assert name not in names and name + "-b" not in names
    r = cli(broker, "topic", "describe", name)
    assert r.returncode == 1, r
    assert b"does not exist" in r.stderr and b"unknown_topic" in r.stderr, r.stderr
    r = cli(broker, "topic", "delete", name)
    assert r.returncode == 1 and b"unknown_topic" in r.stderr, r


# ------------------------------------------------------------------ produce / consume

def test_produce_lines_consume_them_back_and_with_kafka(broker):
    name = unique_topic("clip")
    ok(cli(broker, "topic", "create", name, "-p", "3"))
    lines = [b"k%d:value %d" % (i, i) for i in range(30)]
    lines += [b"nokey here", b"", b"k-bin:\xff\xfe\x00raw", b"k:a:b"]
    data = b"\n".join(lines) + b"\n" + b"last-no-newline:z"
    out = ok(cli(broker, "produce", name, "-K", ":", stdin=data))
    assert "produced 35 record(s)" in out, out

    # Expected (key, value) pairs: split at the first ':'; none: null key.
    def split(line):
        if b":" in line:
            k, v = line.split(b":", 1)
            return k, v
        return None, line
    want = [split(x) for x in lines + [b"last-no-newline:z"]]

    # Kafka consumer: same keys and values, keyed records on murmur2 partitions.
    msgs = kafka_read(broker, name, len(want), 3)
    got = sorted(((m.key(), m.value() or b"") for m in msgs), key=repr)
    assert got == sorted(want, key=repr)
    keyed = {m.key(): m.partition() for m in msgs if m.key() is not None}
    assert len(set(keyed.values())) > 1, "keyed records all on one partition"

    # consume exits at the end of the log, one value a line (raw bytes too).
    r = cli(broker, "consume", name)
    vals = ok(r) and r.stdout.split(b"\n")
    assert vals[-1] == b"" and sorted(vals[:-1]) == sorted(v for _, v in want)
    # -K prints KEY SEP VALUE (a null key: empty)
    r = cli(broker, "consume", name, "--key-sep", "|")
    ok(r)
    kv = [tuple(x.split(b"|", 1)) for x in r.stdout.split(b"\n")[:-1]]
    assert sorted(kv) == sorted(((k or b""), v) for k, v in want)

    # --json: one record object a line, offsets in order per partition and
    # the same positions the Kafka consumer saw.
    objs = [json.loads(x) for x in ok(cli(broker, "consume", name, "--json")).splitlines()]
    assert len(objs) == len(want)
    for p in range(3):
        offs = [o["offset"] for o in objs if o["partition"] == p]
        assert offs == list(range(len(offs))), (p, offs)
    pos = {(m.partition(), m.offset()): (m.key(), m.value() or b"") for m in msgs}
    for o in objs:
        k, v = pos[(o["partition"], o["offset"])]
        assert (o["key"].encode() if o["key"] is not None else None) == k
        assert "value_b64" in o or o["value"].encode() == v
    binary = [o for o in objs if "value_b64" in o]
    assert len(binary) == 1 and binary[0]["key"] == "k-bin"

    # --max stops early; --partition and --from OFFSET pick the start
    assert len(ok(cli(broker, "consume", name, "--max", "2")).splitlines()) == 2
    p0 = [o for o in objs if o["partition"] == 0]
    r = cli(broker, "consume", name, "-p", "0", "--from", "1", "--json")
    assert [json.loads(x)["offset"] for x in ok(r).splitlines()] == [o["offset"] for o in p0[1:]]
    # from latest without --follow: nothing new, exits at once
    assert ok(cli(broker, "consume", name, "--from", "latest")) == ""
    # --partition past the topic's partitions
    r = cli(broker, "consume", name, "-p", "3")
    assert r.returncode == 1 and b"does not exist" in r.stderr, r


def test_kafka_records_consumed_by_the_cli(broker):
    name = unique_topic("clik")
    ckhelp.create_topic(broker.bootstrap, name, 2)
    p = ckhelp.producer(broker.bootstrap, linger_ms=5)
    for i in range(40):
        p.produce(name, key=b"key%d" % i, value=b"v%d" % i, partition=i % 2)
    ckhelp.flush(p)
    objs = [json.loads(x) for x in ok(cli(broker, "consume", name, "--json")).splitlines()]
    assert len(objs) == 40
    for part in (0, 1):
        mine = [o for o in objs if o["partition"] == part]
        assert [o["value"] for o in mine] == ["v%d" % i for i in range(part, 40, 2)]
        assert [o["key"] for o in mine] == ["key%d" % i for i in range(part, 40, 2)]
    r = cli(broker, "consume", name, "-K", "=", "-p", "1", "-n", "3")
    assert ok(r).splitlines() == ["key1=v1", "key3=v3", "key5=v5"]


def sse_streams(broker):
    st, _, text = get(broker, "/metrics")
    assert st == 200
    for line in text.splitlines():
        if line.startswith("cairn_http_sse_streams "):
            return float(line.split()[1])
    return 0.0


def test_consume_follow_from_latest_waits_for_new_records(broker):
    name = unique_topic("clif")
    ok(cli(broker, "topic", "create", name, "-p", "2"))
    ok(cli(broker, "produce", name, stdin=b"old1\nold2\n"))
    before = sse_streams(broker)
    proc = subprocess.Popen([cairn_bin(), "consume", name, "--from", "latest", "--follow",
                             "--max", "3", "-K", "/",
                             "--http", "127.0.0.1:%d" % broker.http_port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while sse_streams(broker) < before + 1:
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the consume stream never opened"
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "consume --follow ended early: %r" % (proc.communicate(),)
        p = ckhelp.producer(broker.bootstrap)
        for i in range(3):
            p.produce(name, key=b"n%d" % i, value=b"new%d" % i, partition=i % 2)
        ckhelp.flush(p)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert sorted(out.decode().splitlines()) == ["n0/new0", "n1/new1", "n2/new2"]

    # --follow from an offset of one partition: the rest of it, then waits
    r = cli(broker, "consume", name, "-p", "0", "--from", "1", "-f", "-n", "1", "--json")
    first = json.loads(ok(r))
    assert first["partition"] == 0 and first["offset"] == 1


def test_produce_sends_each_line_while_stdin_stays_open(broker):
    name = unique_topic("clii")
    ok(cli(broker, "topic", "create", name, "-p", "1"))
    proc = subprocess.Popen([cairn_bin(), "produce", name, "--json",
                             "--http", "127.0.0.1:%d" % broker.http_port],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"typed line\n")
        proc.stdin.flush()
        line = proc.stdout.readline()          # the answer of that line, stdin still open
        assert json.loads(line) == {"partition": 0, "offset": 0}
        st, _, body = get(broker, "/topics/%s/partitions/0/records?offset=0" % name)
        assert [r["value"] for r in body["records"]] == ["typed line"]
        out, err = proc.communicate(b"second\n", timeout=30)   # then end of input
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"partition": 0, "offset": 1}


# ------------------------------------------------------------------ groups

def commit_with_kafka(broker, topic, group, commits):
    """A Kafka consumer joins group on topic, commits, and is returned open."""
    c = ckhelp.consumer(broker.bootstrap, group_id=group, session_timeout_ms=6000)
    c.subscribe([topic])
    deadline = time.time() + 30
    while not c.assignment() and time.time() < deadline:
        c.poll(0.2)
    assert c.assignment(), "no assignment"
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits], asynchronous=False)
    return c


def test_group_describe_and_reset_offsets(broker):
    name = unique_topic("clig")
    group = unique_topic("grp")
    ok(cli(broker, "topic", "create", name, "-p", "2"))
    p = ckhelp.producer(broker.bootstrap)
    for i in range(20):
        p.produce(name, value=b"m%d" % i, partition=i % 2)
    ckhelp.flush(p)
    c = commit_with_kafka(broker, name, group, [(0, 7), (1, 10)])
    try:
        rows = table(ok(cli(broker, "group", "list")))
        assert rows[0] == ["GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"]
        assert [group, "Stable", "consumer", "1"] in rows[1:], rows
        text = ok(cli(broker, "group", "describe", group))
        assert "Stable" in text and "MEMBER-ID" in text and "total lag   3" in text, text
        offs = [r for r in table(text) if r and r[0] == name]
        assert offs == [[name, "0", "7", "10", "3"], [name, "1", "10", "10", "0"]], text
        jd = json.loads(ok(cli(broker, "group", "describe", group, "--json")))
        assert jd["group_id"] == group and len(jd["members"]) == 1 and jd["total_lag"] == 3

        # refused while the consumer is a member (as Kafka's tool refuses)
        r = cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-earliest")
        assert r.returncode == 1, r
        assert b"active member" in r.stderr and b"group_not_empty" in r.stderr, r.stderr
        assert b"HTTP 409" in r.stderr
        r = cli(broker, "group", "delete", group)
        assert r.returncode == 1 and b"group_not_empty" in r.stderr, r
    finally:
        c.close()

    # dry run: the plan, nothing committed
    out = ok(cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-offset", "2",
                 "--dry-run"))
    assert "dry run" in out
    plan = [r for r in table(out) if r and r[0] == group]
    assert plan == [[group, name, "0", "7", "2"], [group, name, "1", "10", "2"]], out
    st, _, d = get(broker, "/groups/" + group)
    assert {o["partition"]: o["committed_offset"] for o in d["offsets"]} == {0: 7, 1: 10}

    # partition 0 to the earliest, partition 1 to offset 4
    ok(cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-earliest",
           "--partitions", "0"))
    js = json.loads(ok(cli(broker, "group", "reset-offsets", group, "--topic", name,
                           "--to-offset", "4", "--partitions", "1", "--json")))
    assert js["offsets"] == [{"partition": 1, "previous_offset": 10, "offset": 4,
                              "log_start_offset": 0, "log_end_offset": 10}]
    st, _, d = get(broker, "/groups/" + group)
    assert {o["partition"]: o["committed_offset"] for o in d["offsets"]} == {0: 0, 1: 4}
    assert d["total_lag"] == 16

    # A Kafka consumer of the group starts where the reset put it
    # (auto.offset.reset=latest: without the committed offsets it would read nothing).
    k = ckhelp.consumer(broker.bootstrap, group_id=group, auto_offset_reset="latest",
                        session_timeout_ms=6000)
    k.subscribe([name])
    firsts = {}
    deadline = time.time() + 30
    while len(firsts) < 2 and time.time() < deadline:
        m = k.poll(0.5)
        if m is not None and not m.error():
            firsts.setdefault(m.partition(), (m.offset(), m.value()))
    k.close()
    assert firsts == {0: (0, b"m0"), 1: (4, b"m9")}, firsts

    # --to-latest: lag 0; --to-offset past the end is clamped to it
    ok(cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-latest"))
    st, _, d = get(broker, "/groups/" + group)
    assert d["total_lag"] == 0
    js = json.loads(ok(cli(broker, "group", "reset-offsets", group, "--topic", name,
                           "--to-offset", "1000", "--json")))
    assert [o["offset"] for o in js["offsets"]] == [10, 10]

    assert group in ok(cli(broker, "group", "delete", group))
    r = cli(broker, "group", "describe", group)
    assert r.returncode == 1 and b"unknown_group" in r.stderr, r


def test_reset_offsets_endpoint(broker):
    name = unique_topic("clie")
    ok(cli(broker, "topic", "create", name, "-p", "2"))
    ok(cli(broker, "produce", name, "-p", "1", stdin=b"a\nb\nc\n"))
    group = unique_topic("newgrp")
    path = "/groups/%s/offsets" % group
    # a group that does not exist yet gets offsets (as with Kafka's tool)
    st, _, body = post(broker, path, {"topic": name, "to": "latest"})
    assert st == 200, body
    assert body == {"group_id": group, "topic": name, "dry_run": False, "offsets": [
        {"partition": 0, "previous_offset": None, "offset": 0, "log_start_offset": 0,
         "log_end_offset": 0},
        {"partition": 1, "previous_offset": None, "offset": 3, "log_start_offset": 0,
         "log_end_offset": 3}]}
    st, _, d = get(broker, "/groups/" + group)
    assert st == 200 and {o["partition"]: o["lag"] for o in d["offsets"]} == {0: 0, 1: 0}
    st, _, body = post(broker, path, {"topic": name, "to": "offset", "offset": 1,
                                      "partitions": [1], "dry_run": True})
    assert st == 200 and body["dry_run"] is True and body["offsets"][0]["offset"] == 1
    assert body["offsets"][0]["previous_offset"] == 3
    assert_error(post(broker, path, {"to": "latest"}), 400, "invalid_request")
    assert_error(post(broker, path, {"topic": name}), 400, "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "yesterday"}), 400, "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "offset"}), 400, "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "offset", "offset": -1}), 400,
                 "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "latest", "offset": 1}), 400,
                 "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "latest", "partitions": [0, 0]}), 400,
                 "invalid_partition")
    assert_error(post(broker, path, {"topic": name, "to": "latest", "partitions": []}), 400,
                 "invalid_request")
    assert_error(post(broker, path, {"topic": name, "to": "latest", "partitions": [2]}), 404,
                 "unknown_partition")
    assert_error(post(broker, path, {"topic": name, "to": "latest", "dry_run": "yes"}), 400,
                 "invalid_request")
    assert_error(post(broker, path, {"topic": "no-such-topic", "to": "latest"}), 404,
                 "unknown_topic")
    st, hdrs, body = get(broker, path)
    assert st == 405 and "POST" in hdrs.get("allow", ""), (st, hdrs)
    # nothing of the refused requests was committed
    st, _, d = get(broker, "/groups/" + group)
    assert {o["partition"]: o["committed_offset"] for o in d["offsets"]} == {0: 0, 1: 3}


def test_reset_refused_for_an_sse_group_member_and_a_webhook_group(broker):
    name = unique_topic("clis")
    ok(cli(broker, "topic", "create", name, "-p", "2"))
    group = unique_topic("sseg")
    # An SSE stream of group=G is a member of G: refused as a Kafka consumer is.
    sock = socket.create_connection(("127.0.0.1", broker.http_port), timeout=10)
    try:
        sock.sendall(b"GET /topics/%s/stream?group=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                     % (name.encode(), group.encode()))
        deadline = time.time() + 10
        while True:
            st, _, g = get(broker, "/groups/" + group)
            if st == 200 and len(g["members"]) == 1:
                break
            assert time.time() < deadline, (st, g)
            time.sleep(0.05)
        body = assert_error(post(broker, "/groups/%s/offsets" % group,
                                 {"topic": name, "to": "earliest"}), 409, "group_not_empty")
        assert body["members"] == 1 and body["state"] in ("PreparingRebalance",
                                                          "CompletingRebalance", "Stable")
        r = cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-latest")
        assert r.returncode == 1 and b"group_not_empty" in r.stderr, r
    finally:
        sock.close()
    # The stream's hang-up leaves the group; then the reset goes through.
    deadline = time.time() + 15
    while True:
        st, _, g = get(broker, "/groups/" + group)
        if st != 200 or not g["members"]:
            break
        assert time.time() < deadline, g
        time.sleep(0.1)
    ok(cli(broker, "group", "reset-offsets", group, "--topic", name, "--to-earliest"))

    # The group of a live webhook subscription holds its position in memory.
    st, _, sub = post(broker, "/event/subscribe", {"event_type": name, "id": "cliwh",
                                                   "callback": "http://127.0.0.1:1/hook"})
    assert st == 201, sub
    try:
        r = cli(broker, "group", "reset-offsets", "cairn.webhook.cliwh", "--topic", name,
                "--to-earliest")
        assert r.returncode == 1 and b"group_in_use" in r.stderr and b"cliwh" in r.stderr, r
    finally:
        st, _, _ = delete(broker, "/event/subscriptions/cliwh")
        assert st == 200


# ------------------------------------------------------------------ errors and usage

def test_broker_down_is_exit_1_with_a_clear_message():
    port = free_port()        # nothing listens there
    for args in (["topic", "list"], ["consume", "x"], ["group", "list", "--json"]):
        r = subprocess.run([cairn_bin()] + args + ["--http", "127.0.0.1:%d" % port],
                           capture_output=True, timeout=30)
        assert r.returncode == 1, r
        assert b"cannot connect" in r.stderr and b"Connection refused" in r.stderr, r.stderr
        assert b"127.0.0.1:%d" % port in r.stderr
        assert r.stdout == b""
    r = subprocess.run([cairn_bin(), "produce", "x", "--http", "127.0.0.1:%d" % port],
                       input=b"a\n", capture_output=True, timeout=30)
    assert r.returncode == 1 and b"Connection refused" in r.stderr, r


def test_http_address_from_the_environment(broker):
    env = dict(os.environ, CAIRN_HTTP="127.0.0.1:%d" % broker.http_port)
    r = subprocess.run([cairn_bin(), "topic", "list", "--json"], capture_output=True, timeout=30,
                       env=env)
    assert r.returncode == 0 and "topics" in json.loads(r.stdout), r
    env["CAIRN_HTTP"] = "http://127.0.0.1:%d/" % broker.http_port     # a URL works too
    r = subprocess.run([cairn_bin(), "group", "list"], capture_output=True, timeout=30, env=env)
    assert r.returncode == 0 and r.stdout.startswith(b"GROUP"), r


def test_unknown_topic_errors(broker):
    r = cli(broker, "consume", "no-such-topic-here")
    assert r.returncode == 1 and b"unknown_topic" in r.stderr and r.stdout == b"", r
    r = cli(broker, "consume", "no-such-topic-here", "-f")
    assert r.returncode == 1 and b"unknown_topic" in r.stderr, r
    r = cli(broker, "group", "describe", "no-such-group-here")
    assert r.returncode == 1 and b"unknown_group" in r.stderr and b"HTTP 404" in r.stderr, r
    r = cli(broker, "group", "reset-offsets", "g", "--topic", "no-such-topic-here",
            "--to-earliest")
    assert r.returncode == 1 and b"unknown_topic" in r.stderr, r


@pytest.mark.parametrize("args", [
    ["topic"], ["topic", "frobnicate"], ["group"], ["topic", "create"],
    ["topic", "create", "a", "b"], ["topic", "create", "x", "--bogus"],
    ["topic", "create", "x", "-p", "three"], ["topic", "create", "x", "-c", "novalue"],
    ["topic", "list", "extra"], ["produce"], ["consume"], ["consume", "t", "--from", "yesterday"],
    ["consume", "t", "--max"], ["group", "reset-offsets", "g", "--topic", "t"],
    ["group", "reset-offsets", "g", "--to-earliest"],
    ["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"],
    ["group", "reset-offsets", "g", "--topic", "t", "--to-offset", "x"],
])
def test_bad_usage_is_exit_2_with_usage(args):
    # No broker: usage errors are found before any request.
    r = subprocess.run([cairn_bin()] + args + ["--http", "127.0.0.1:1"], capture_output=True,
                       timeout=30)
    assert r.returncode == 2, (args, r)
    assert b"usage: cairn " in r.stderr, r.stderr
    assert r.stdout == b""


def test_help_and_the_broker_flags_still_work():
    r = subprocess.run([cairn_bin(), "topic", "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"cairn topic create NAME" in r.stdout, r
    r = subprocess.run([cairn_bin(), "consume", "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"--follow" in r.stdout, r
    r = subprocess.run([cairn_bin(), "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"--http-listen" in r.stdout and b"topic|group" in r.stdout, r
    assert b"log.segment.bytes" in r.stdout        # the property list follows
    r = subprocess.run([cairn_bin(), "--version"], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"cairn "), r
    r = subprocess.run([cairn_bin(), "--no-such-flag"], capture_output=True, timeout=30)
    assert r.returncode == 2 and b"unknown or incomplete argument" in r.stderr, r
