"""HTTP front end: every endpoint's happy path and its errors, against a real
broker (Python's http.client, and curl for one case)."""
import base64
import os
import shutil
import subprocess
import time

import pytest

import ckhelp
from cairn_broker import unique_topic
from httphelp import assert_error, delete, get, post, produce, read, request


@pytest.fixture(scope="module")
def broker_settings():
    # Unknown topics are not created (auto-create has its own test), and a
    # small body limit so 413 is cheap to reach.
    return {"auto.create.topics.enable": "false", "http.max.body.bytes": "65536"}


def create(broker, name, partitions=1, configs=None):
    body = {"name": name, "partitions": partitions}
    if configs is not None:
        body["configs"] = configs
    st, _, b = post(broker, "/topics", body)
    assert st == 201, b
    return b


# ------------------------------------------------------------------ health, broker

def test_healthz_and_readyz(broker):
    st, hdrs, body = get(broker, "/healthz")
    assert st == 200 and body == {"status": "ok"}
    assert hdrs["content-type"] == "application/json"
    st, _, body = get(broker, "/readyz")
    assert st == 200, body
    assert body["ready"] is True
    for name in ("recovered", "listeners", "data_dir_writable", "storage"):
        assert body["checks"][name]["ok"] is True, body


def test_readyz_says_what_is_wrong_when_the_data_dir_is_not_writable(broker_factory):
    if not shutil.which("chattr"):
        pytest.skip("chattr not installed")
    b = broker_factory()
    if subprocess.run(["chattr", "+i", b.data_dir], capture_output=True).returncode != 0:
        pytest.skip("cannot make the data directory immutable here")
    try:
        st, _, body = get(b, "/readyz")
        assert st == 503, body
        assert body["error_code"] == "not_ready"
        assert body["ready"] is False
        assert body["checks"]["data_dir_writable"]["ok"] is False
        assert "not writable" in body["message"] and b.data_dir in body["message"]
        assert body["checks"]["storage"]["ok"] is True
        # liveness is not readiness
        assert get(b, "/healthz")[0] == 200
    finally:
        subprocess.run(["chattr", "-i", b.data_dir], check=True)
    st, _, body = get(b, "/readyz")
    assert st == 200, body
    assert "not_ready" in b.log_text() and "/readyz" in b.log_text()


def test_broker_info(broker):
    st, _, body = get(broker, "/broker")
    assert st == 200, body
    assert body["node_id"] == 1
    assert body["data_dir"] == broker.data_dir
    assert body["version"] and body["cluster_id"]
    assert body["uptime_ms"] >= 0
    ls = {(x["protocol"], x["port"]) for x in body["listeners"]}
    assert ("kafka", broker.port) in ls
    assert ("amqp", broker.amqp_port) in ls
    assert ("http", broker.http_port) in ls
    http_l = [x for x in body["listeners"] if x["protocol"] == "http"][0]
    assert http_l["connections"] >= 1 and http_l["connections_accepted"] >= 1


def test_unknown_path_404_and_wrong_method_405_with_allow(broker):
    assert_error(get(broker, "/nope"), 404, "not_found")
    assert_error(get(broker, "/topics/a/b/c/d/e/f/g/h/i/j"), 404, "not_found")
    r = request(broker, "PUT", "/topics", body={})
    body = assert_error(r, 405, "method_not_allowed")
    assert r[1]["allow"] == "GET, POST"
    assert body["allow"] == "GET, POST"
    r = request(broker, "POST", "/healthz", body={})
    assert_error(r, 405, "method_not_allowed")
    assert r[1]["allow"] == "GET"
    r = request(broker, "PATCH", "/topics/x")
    assert_error(r, 405, "method_not_allowed")
    assert r[1]["allow"] == "GET, DELETE"


# ------------------------------------------------------------------ topics

def test_topic_create_list_describe_delete(broker):
    name = unique_topic("ht")
    b = create(broker, name, 3, {"retention.ms": 3600000, "cleanup.policy": "delete"})
    assert b["name"] == name and b["partitions"] == 3 and len(b["topic_id"]) == 32
    st, _, lst = get(broker, "/topics")
    assert st == 200
    assert {"name": name, "partitions": 3} in lst["topics"]
    # visible to a Kafka client too
    md = ckhelp.admin(broker.bootstrap).list_topics(timeout=10)
    assert len(md.topics[name].partitions) == 3
    produce(broker, name, [{"value": "x" * 100, "partition": 1}] * 4)
    st, _, d = get(broker, "/topics/" + name)
    assert st == 200, d
    assert d["topic_id"] == b["topic_id"]
    parts = {p["partition"]: p for p in d["partitions"]}
    assert parts[1]["log_end_offset"] == 4 and parts[1]["high_watermark"] == 4
    assert parts[1]["log_start_offset"] == 0 and parts[1]["size_bytes"] > 400
    assert parts[0]["log_end_offset"] == 0 and parts[0]["size_bytes"] == 0
    assert d["configs"]["retention.ms"] == {"value": "3600000", "default": False}
    assert d["configs"]["segment.bytes"]["default"] is True
    st, _, body = delete(broker, "/topics/" + name)
    assert st == 200 and body == {"deleted": name}
    assert_error(get(broker, "/topics/" + name), 404, "unknown_topic")
    assert_error(delete(broker, "/topics/" + name), 404, "unknown_topic")


def test_topic_create_errors(broker):
    name = unique_topic("ht")
    create(broker, name)
    assert_error(post(broker, "/topics", {"name": name}), 409, "topic_exists")
    assert_error(post(broker, "/topics", {"name": "bad/name"}), 400, "invalid_topic_name")
    assert_error(post(broker, "/topics", {"name": "a" * 300}), 400, "invalid_topic_name")
    assert_error(post(broker, "/topics", {"name": unique_topic(), "partitions": 0}), 400,
                 "invalid_partitions")
    assert_error(post(broker, "/topics", {"name": unique_topic(), "partitions": "2"}), 400,
                 "invalid_partitions")
    assert_error(post(broker, "/topics", {"name": unique_topic(),
                                          "configs": {"retention.ms": "soon"}}), 400,
                 "invalid_config")
    assert_error(post(broker, "/topics", {"name": unique_topic(),
                                          "configs": {"no.such.key": "1"}}), 400,
                 "invalid_config")
    assert_error(post(broker, "/topics", {"partitions": 1}), 400, "invalid_request")
    assert_error(post(broker, "/topics", b"{not json"), 400, "invalid_json")
    assert_error(post(broker, "/topics", b"[1, 2]"), 400, "invalid_json")
    assert_error(post(broker, "/topics", b""), 400, "invalid_json")
    assert_error(post(broker, "/topics", b'{"name": "a", "name": "b"}'), 400, "invalid_json")
    assert_error(post(broker, "/topics", b"{}", headers={"Content-Type": "multipart/form-data"}),
                 415, "unsupported_media_type")
    # nothing of the failed ones exists
    names = [t["name"] for t in get(broker, "/topics")[2]["topics"]]
    assert "bad/name" not in names


# ------------------------------------------------------------------ produce

def test_produce_values_keys_headers_and_read_back(broker):
    name = unique_topic("hp")
    create(broker, name, 1)
    recs = [
        {"key": "k1", "value": "plain text", "headers": {"h1": "v1", "h2": None}},
        {"value": {"a": [1, 2, {"b": None}]}, "timestamp": 1700000000123},
        {"key_b64": base64.b64encode(b"\x00\xffkey").decode(),
         "value_b64": base64.b64encode(b"\x01\x02\x03\xfe").decode(),
         "headers": [["dup", "1"], ["dup", "2"], ["bin", {"b64": "AAE="}]]},
        {"value": None},
        {"value": 42},
        {"value": "caf\u00e9 \u2615"},
    ]
    offs = produce(broker, name, recs)
    assert offs == [{"partition": 0, "offset": i} for i in range(6)]
    body = read(broker, name, 0)
    got = body["records"]
    assert [r["offset"] for r in got] == list(range(6))
    assert body["next_offset"] == 6 and body["high_watermark"] == 6
    assert body["last_stable_offset"] == 6 and body["log_start_offset"] == 0
    assert got[0]["key"] == "k1" and got[0]["value"] == "plain text"
    assert got[0]["headers"] == [["h1", "v1"], ["h2", None]]
    assert got[1]["key"] is None and got[1]["value"] == '{"a":[1,2,{"b":null}]}'
    assert got[1]["timestamp"] == 1700000000123
    assert abs(got[0]["timestamp"] - time.time() * 1000) < 60000
    assert "key" not in got[2] and base64.b64decode(got[2]["key_b64"]) == b"\x00\xffkey"
    assert base64.b64decode(got[2]["value_b64"]) == b"\x01\x02\x03\xfe"
    assert got[2]["headers"] == [["dup", "1"], ["dup", "2"], ["bin", {"b64": "AAE="}]]
    assert got[3]["value"] is None and got[3]["headers"] == []
    assert got[4]["value"] == "42"
    assert got[5]["value"] == "caf\u00e9 \u2615"
    # a record read back can be produced again unchanged
    again = dict(got[2])
    for k in ("partition", "offset", "timestamp"):
        again.pop(k)
    o2 = produce(broker, name, [again])
    back = read(broker, name, 0, offset=o2[0]["offset"])["records"][0]
    assert back["key_b64"] == got[2]["key_b64"] and back["value_b64"] == got[2]["value_b64"]
    assert back["headers"] == got[2]["headers"]


def test_produce_partitioning_matches_kafka(broker):
    """Keyed records land where a Kafka client's murmur2 partitioner puts
    them; an explicit partition wins; unkeyed records of one request share a
    partition."""
    name = unique_topic("hk")
    create(broker, name, 6)
    keys = ["key-%d" % i for i in range(40)]
    offs = produce(broker, name, [{"key": k, "value": "h"} for k in keys])
    p = ckhelp.producer(broker.bootstrap, partitioner="murmur2_random")
    d = ckhelp.Deliveries()
    for k in keys:
        p.produce(name, key=k.encode(), value=b"k", on_delivery=d.cb(k))
    ckhelp.flush(p)
    kafka_part = {tag: part for tag, _, part, _ in d.ok}
    assert [o["partition"] for o in offs] == [kafka_part[k] for k in keys]
    assert len(set(kafka_part.values())) > 1
    offs = produce(broker, name, [{"value": "a", "partition": 5}, {"key": "x", "value": "b",
                                                                    "partition": 2}])
    assert [o["partition"] for o in offs] == [5, 2]
    offs = produce(broker, name, [{"value": str(i)} for i in range(10)])
    assert len({o["partition"] for o in offs}) == 1
    seen = {produce(broker, name, [{"value": "rr"}])[0]["partition"] for _ in range(12)}
    assert len(seen) > 1  # the next unkeyed request goes elsewhere (round-robin)


def test_produce_errors_store_nothing(broker):
    name = unique_topic("he")
    create(broker, name, 2, {"max.message.bytes": 2000})
    path = "/topics/%s/records" % name
    assert_error(post(broker, path, b"{oops"), 400, "invalid_json")
    assert_error(post(broker, path, {"records": []}), 400, "invalid_request")
    assert_error(post(broker, path, {"rec": [{"value": 1}]}), 400, "invalid_request")
    assert_error(post(broker, path, {"records": [{"value": "ok"}, 5]}), 400, "invalid_record")
    assert_error(post(broker, path, {"records": [{"value": "ok"}, {"value": "x",
                                                                  "partition": 2}]}),
                 400, "invalid_partition")
    assert_error(post(broker, path, {"records": [{"value": "x", "partition": -1}]}), 400,
                 "invalid_partition")
    assert_error(post(broker, path, {"records": [{"value": "x", "partition": "0"}]}), 400,
                 "invalid_partition")
    assert_error(post(broker, path, {"records": [{"value_b64": "not base64!"}]}), 400,
                 "invalid_base64")
    assert_error(post(broker, path, {"records": [{"value": "a", "value_b64": "YQ=="}]}), 400,
                 "invalid_record")
    assert_error(post(broker, path, {"records": [{"headers": "h"}]}), 400, "invalid_record")
    assert_error(post(broker, path, {"records": [{"headers": [["a"]]}]}), 400, "invalid_record")
    assert_error(post(broker, path, {"records": [{"value": "x", "timestamp": -5}]}), 400,
                 "invalid_record")
    assert_error(post(broker, path, {"records": [{"value": "y" * 3000}]}), 413,
                 "record_too_large")
    # the body limit (http.max.body.bytes=65536 here): 413 and the connection closes
    st, hdrs, body = post(broker, path, {"records": [{"value": "z" * 70000}]})
    assert st == 413 and body["error_code"] == "body_too_large", body
    assert hdrs.get("connection") == "close"
    assert_error(post(broker, "/topics/%s/records" % unique_topic(), {"records": [{"value": 1}]}),
                 404, "unknown_topic")
    assert_error(post(broker, "/topics/bad%2Fname/records", {"records": [{"value": 1}]}), 400,
                 "invalid_topic_name")
    st, _, d = get(broker, "/topics/" + name)
    assert [p["log_end_offset"] for p in d["partitions"]] == [0, 0]
    assert "http: 400 invalid_partition POST /topics/%s/records" % name in broker.log_text()


def test_produce_auto_creates_topics_when_the_broker_says_so(broker_factory):
    b = broker_factory({"num.partitions": 2})
    name = unique_topic("ha")
    offs = produce(b, name, [{"value": "v"}])
    assert offs[0]["offset"] == 0
    st, _, d = get(b, "/topics/" + name)
    assert st == 200 and len(d["partitions"]) == 2


# ------------------------------------------------------------------ read

def test_read_paging_and_errors(broker):
    name = unique_topic("hr")
    create(broker, name, 2)
    produce(broker, name, [{"value": "v%d" % i, "partition": 0} for i in range(50)])
    body = read(broker, name, 0, offset=10, max_bytes=1)
    assert body["records"][0]["offset"] == 10  # the first batch is returned whole
    assert body["next_offset"] == 50
    body = read(broker, name, 0, offset=50)
    assert body["records"] == [] and body["next_offset"] == 50
    body = read(broker, name, 0)
    assert len(body["records"]) == 50
    assert read(broker, name, 1)["records"] == []
    base = "/topics/%s/partitions" % name
    assert_error(get(broker, base + "/x/records"), 400, "invalid_partition")
    assert_error(get(broker, base + "/-1/records"), 400, "invalid_partition")
    assert_error(get(broker, base + "/2/records"), 404, "unknown_partition")
    assert_error(get(broker, "/topics/%s/partitions/0/records" % unique_topic()), 404,
                 "unknown_topic")
    e = assert_error(get(broker, base + "/0/records?offset=51"), 400, "offset_out_of_range")
    assert e["high_watermark"] == 50 and e["log_start_offset"] == 0
    assert_error(get(broker, base + "/0/records?offset=-1"), 400, "invalid_parameter")
    assert_error(get(broker, base + "/0/records?offset=abc"), 400, "invalid_parameter")
    assert_error(get(broker, base + "/0/records?max_bytes=0"), 400, "invalid_parameter")
    assert_error(get(broker, base + "/0/records?timeout_ms=999999999"), 400,
                 "invalid_parameter")
    assert_error(get(broker, base + "/0/records?offset=%zz"), 400, "invalid_parameter")


# ------------------------------------------------------------------ groups

def test_groups_list_describe_lag_delete(broker):
    name = unique_topic("hg")
    group = unique_topic("grp")
    create(broker, name, 2)
    produce(broker, name, [{"value": str(i), "partition": i % 2} for i in range(10)])
    c = ckhelp.consumer(broker.bootstrap, group_id=group, session_timeout_ms=6000)
    c.subscribe([name])
    got = 0
    deadline = time.time() + 30
    while got < 6 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    from confluent_kafka import TopicPartition
    c.commit(offsets=[TopicPartition(name, 0, 3), TopicPartition(name, 1, 5)], asynchronous=False)
    st, _, lst = get(broker, "/groups")
    assert st == 200
    g = [x for x in lst["groups"] if x["group_id"] == group]
    assert g and g[0]["members"] == 1 and g[0]["protocol_type"] == "consumer"
    st, _, d = get(broker, "/groups/" + group)
    assert st == 200, d
    assert d["state"] == "Stable" and len(d["members"]) == 1
    assert d["members"][0]["client_id"]
    offs = {(o["topic"], o["partition"]): o for o in d["offsets"]}
    assert offs[(name, 0)]["committed_offset"] == 3 and offs[(name, 0)]["lag"] == 2
    assert offs[(name, 1)]["committed_offset"] == 5 and offs[(name, 1)]["lag"] == 0
    assert offs[(name, 0)]["log_end_offset"] == 5
    assert d["total_lag"] == 2
    assert_error(delete(broker, "/groups/" + group), 409, "group_not_empty")
    c.close()
    st, _, body = delete(broker, "/groups/" + group)
    assert st == 200 and body == {"deleted": group}
    assert_error(get(broker, "/groups/" + group), 404, "unknown_group")
    assert_error(delete(broker, "/groups/" + group), 404, "unknown_group")


# ------------------------------------------------------------------ curl

def test_curl_produce_and_read(broker):
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    name = unique_topic("hc")
    create(broker, name, 1)
    url = "%s/topics/%s/records" % (broker.http_url, name)
    # curl -d sends application/x-www-form-urlencoded: the body is still JSON
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-d",
                        '{"records":[{"key":"a","value":"from curl"}]}', url],
                       capture_output=True, text=True, timeout=30)
    out, code = r.stdout.rsplit("\n", 1)
    assert code == "200", r
    assert '"offset":0' in out
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}",
                        "%s/topics/%s/partitions/0/records?offset=0" % (broker.http_url, name)],
                       capture_output=True, text=True, timeout=30)
    out, code = r.stdout.rsplit("\n", 1)
    assert code == "200" and '"value":"from curl"' in out, r
    # a body over 1 KiB makes curl send "Expect: 100-continue": answered at once
    big = '{"records":[{"value":"%s"}]}' % ("b" * 5000)
    t0 = time.time()
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                        "--data-binary", big, url], capture_output=True, text=True, timeout=30)
    assert r.stdout.rsplit("\n", 1)[1] == "200", r
    assert time.time() - t0 < 0.9  # curl would wait 1 s for a 100 that never came
