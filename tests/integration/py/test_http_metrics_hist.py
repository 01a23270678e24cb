"""Histograms on GET /metrics (docs/http-plan.md slice "Metrics histograms"):
request latency per Kafka API and per HTTP route, fsync duration and
group-commit sizes of the log's syncer. Parsed with Prometheus' own text
parser (python3-prometheus-client); every histogram's invariants are checked
(cumulative buckets never fall, +Inf equals _count, _sum positive once
something was observed), and counts are checked against the requests this
test made with real clients (confluent-kafka, http.client)."""
import time

from prometheus_client.parser import text_string_to_metric_families

import ckhelp
from cairn_broker import unique_topic
from httphelp import get, post, produce, read

LATENCY_LE = ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
              "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
HISTOGRAMS = ["cairn_kafka_request_duration_seconds", "cairn_http_request_duration_seconds",
              "cairn_log_fsync_duration_seconds", "cairn_log_group_commit_bytes",
              "cairn_log_group_commit_records"]


def scrape(broker):
    st, hdrs, text = get(broker, "/metrics")
    assert st == 200
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(text)}, text


def series(fams, family):
    """{frozenset(labels without le): {"buckets": [(le, v)...], "sum": x, "count": n}}"""
    f = fams[family]
    assert f.type == "histogram", (family, f.type)
    out = {}
    for s in f.samples:
        lbl = {k: v for k, v in s.labels.items() if k != "le"}
        e = out.setdefault(frozenset(lbl.items()), {"buckets": [], "sum": None, "count": None})
        if s.name == family + "_bucket":
            e["buckets"].append((s.labels["le"], s.value))
        elif s.name == family + "_sum":
            e["sum"] = s.value
        elif s.name == family + "_count":
            e["count"] = s.value
        else:
            raise AssertionError("unexpected sample %s in %s" % (s.name, family))
    return out


def check_invariants(fams, family):
    """Every series of family is a well-formed histogram; returns series()."""
    ss = series(fams, family)
    for key, e in ss.items():
        les = [le for le, _ in e["buckets"]]
        assert les[-1] == "+Inf", (family, key, les)
        bounds = [float(le) for le in les[:-1]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), (family, les)
        vals = [v for _, v in e["buckets"]]
        assert all(a <= b for a, b in zip(vals, vals[1:])), (family, key, vals)
        assert e["count"] is not None and e["sum"] is not None, (family, key)
        assert vals[-1] == e["count"], (family, key, vals[-1], e["count"])
        assert e["sum"] >= 0, (family, key)
        if e["count"] > 0:
            assert e["sum"] > 0, (family, key, e)
    return ss


def one(ss, **labels):
    e = ss.get(frozenset(labels.items()))
    return e or {"buckets": [], "sum": 0.0, "count": 0.0}


def le_count(e, le):
    return dict(e["buckets"]).get(le, 0.0)


def test_histogram_families_are_announced_and_well_formed(broker):
    fams, text = scrape(broker)
    for h in HISTOGRAMS:
        assert "# TYPE %s histogram" % h in text
        assert "# HELP %s " % h in text
        check_invariants(fams, h)
    # The syncer's histograms exist before any produce (no labels), with the
    # documented bounds.
    fs = one(series(fams, "cairn_log_fsync_duration_seconds"))
    assert [le for le, _ in fs["buckets"]] == LATENCY_LE


def test_kafka_latency_per_api_grows_with_real_client_requests(broker):
    name = unique_topic("hist-k")
    ckhelp.create_topic(broker.bootstrap, name, partitions=1)
    before = check_invariants(scrape(broker)[0], "cairn_kafka_request_duration_seconds")
    n = 12
    p = ckhelp.producer(broker.bootstrap, acks="all", linger_ms=0)
    for i in range(n):
        p.produce(name, value=b"v%d" % i, partition=0)
        ckhelp.flush(p)  # one Produce request each
    got = ckhelp.consume_all(broker.bootstrap, name, expect={0: n})
    assert [m.value() for m in got[0]] == [b"v%d" % i for i in range(n)]
    after = check_invariants(scrape(broker)[0], "cairn_kafka_request_duration_seconds")
    prod_b, prod_a = one(before, api="Produce"), one(after, api="Produce")
    assert prod_a["count"] - prod_b["count"] >= n, (prod_b, prod_a)
    assert prod_a["sum"] > prod_b["sum"]
    assert [le for le, _ in prod_a["buckets"]] == LATENCY_LE
    # Under 10 s on average: the clock is in seconds, not ms or ns.
    assert prod_a["sum"] / prod_a["count"] < 10
    fetch_b, fetch_a = one(before, api="Fetch"), one(after, api="Fetch")
    assert fetch_a["count"] > fetch_b["count"], (fetch_b, fetch_a)
    for api in ("Metadata", "ApiVersions"):
        assert one(after, api=api)["count"] > one(before, api=api)["count"], api
    # Answers straight from memory: most ApiVersions take under 10 ms.
    av = one(after, api="ApiVersions")
    assert le_count(av, "0.01") >= av["count"] / 2, av


def test_http_latency_per_route(broker):
    name = unique_topic("hist-h")
    assert post(broker, "/topics", {"name": name, "partitions": 1})[0] == 201
    before = check_invariants(scrape(broker)[0], "cairn_http_request_duration_seconds")
    n = 7
    for i in range(n):
        produce(broker, name, [{"value": "r%d" % i}])
    assert len(read(broker, name, 0)["records"]) == n
    st, _, _ = get(broker, "/topics/%s" % name)
    assert st == 200
    st, _, _ = get(broker, "/topics/no-such-%s" % name)
    assert st == 404
    after = check_invariants(scrape(broker)[0], "cairn_http_request_duration_seconds")
    pb, pa = one(before, route="produce"), one(after, route="produce")
    assert pa["count"] - pb["count"] >= n, (pb, pa)
    assert pa["sum"] > pb["sum"]
    assert one(after, route="read")["count"] >= one(before, route="read")["count"] + 1
    # The describe answered 200 and 404: both count on the route.
    assert (one(after, route="topic_describe")["count"]
            >= one(before, route="topic_describe")["count"] + 2)
    # The scrape before this one is counted on the metrics route.
    assert one(after, route="metrics")["count"] >= 1


def test_fsync_and_group_commit_grow_after_acks_all_produces(broker):
    name = unique_topic("hist-f")
    ckhelp.create_topic(broker.bootstrap, name, partitions=1)
    fams0, _ = scrape(broker)
    fs0 = one(check_invariants(fams0, "cairn_log_fsync_duration_seconds"))
    gb0 = one(check_invariants(fams0, "cairn_log_group_commit_bytes"))
    gr0 = one(check_invariants(fams0, "cairn_log_group_commit_records"))
    n = 8
    value = b"x" * 1000
    p = ckhelp.producer(broker.bootstrap, acks="all", linger_ms=0)
    for _ in range(n):
        p.produce(name, value=value, partition=0)
        ckhelp.flush(p)  # answered after its fsync: a sync per produce
    fams1, _ = scrape(broker)
    fs1 = one(check_invariants(fams1, "cairn_log_fsync_duration_seconds"))
    gb1 = one(check_invariants(fams1, "cairn_log_group_commit_bytes"))
    gr1 = one(check_invariants(fams1, "cairn_log_group_commit_records"))
    assert fs1["count"] - fs0["count"] >= n, (fs0, fs1)
    assert fs1["sum"] > fs0["sum"]
    assert gb1["count"] - gb0["count"] >= n
    assert gb1["sum"] - gb0["sum"] >= n * len(value)   # every stored byte was synced
    assert gr1["sum"] - gr0["sum"] >= n
    # Each produce waited for its own sync: at least n syncs of one record.
    assert le_count(gr1, "1") - le_count(gr0, "1") >= n


def test_group_commit_covers_many_records_per_sync(broker):
    """Records produced faster than one fsync are made durable together:
    some sync covers more than one record."""
    name = unique_topic("hist-g")
    ckhelp.create_topic(broker.bootstrap, name, partitions=1)
    gr0 = one(check_invariants(scrape(broker)[0], "cairn_log_group_commit_records"))
    n = 3000
    p = ckhelp.producer(broker.bootstrap, acks="all", linger_ms=5)
    for i in range(n):
        p.produce(name, value=b"g%d" % i, partition=0)
    ckhelp.flush(p)
    gr1 = one(check_invariants(scrape(broker)[0], "cairn_log_group_commit_records"))
    syncs = gr1["count"] - gr0["count"]
    assert gr1["sum"] - gr0["sum"] >= n
    assert 1 <= syncs < n, (gr0, gr1)
    # Syncs of more than one record: total minus those in the le="1" bucket.
    assert syncs - (le_count(gr1, "1") - le_count(gr0, "1")) >= 1


def amqp_gauges(broker, queue):
    fams, text = scrape(broker)
    out = {}
    for fam in ("cairn_amqp_queue_messages_ready", "cairn_amqp_queue_messages_ready_bytes",
                "cairn_amqp_queue_messages_unacked", "cairn_amqp_queue_consumers"):
        assert "# TYPE %s gauge" % fam in text
        vals = [s.value for s in fams[fam].samples if s.labels.get("queue") == queue]
        assert len(vals) <= 1, (fam, vals)
        out[fam[len("cairn_amqp_queue_"):]] = vals[0] if vals else None
    return out, fams


def test_amqp_queue_gauges_follow_pika(broker):
    """Depth, unacked and consumers per queue, reported by the AMQP front end
    through the server's metrics hook, against what pika did."""
    import pika

    q = unique_topic("hist-q")
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        broker.host, broker.amqp_port, connection_attempts=1, socket_timeout=5))
    try:
        ch = conn.channel()
        ch.queue_declare(q)
        g, fams = amqp_gauges(broker, q)
        assert g == {"messages_ready": 0, "messages_ready_bytes": 0, "messages_unacked": 0,
                     "consumers": 0}, g
        assert fams["cairn_amqp_queues"].samples[0].value >= 1
        body = b"m" * 100
        for _ in range(5):
            ch.basic_publish("", q, body)
        conn.process_data_events(time_limit=0.2)
        g, _ = amqp_gauges(broker, q)
        assert g["messages_ready"] == 5 and g["messages_ready_bytes"] == 500, g
        # Two basic.get without ack: unacked.
        tags = []
        for _ in range(2):
            m, _, b = ch.basic_get(q, auto_ack=False)
            assert b == body
            tags.append(m.delivery_tag)
        g, _ = amqp_gauges(broker, q)
        assert (g["messages_ready"], g["messages_unacked"], g["consumers"]) == (3, 2, 0), g
        # A consumer with prefetch 1 on another channel takes one more.
        ch2 = conn.channel()
        ch2.basic_qos(prefetch_count=1)
        got = []
        ch2.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            conn.process_data_events(time_limit=0.1)
        assert len(got) == 1
        g, _ = amqp_gauges(broker, q)
        assert (g["messages_ready"], g["messages_unacked"], g["consumers"]) == (2, 3, 1), g
        # Acks settle: the gets' two, then the consumer's.
        for t in tags:
            ch.basic_ack(t)
        conn.process_data_events(time_limit=0.2)
        g, _ = amqp_gauges(broker, q)
        assert g["messages_unacked"] == 1, g
        ch2.close()  # the consumer's unacked delivery goes back to the queue
        conn.process_data_events(time_limit=0.2)
        g, _ = amqp_gauges(broker, q)
        assert (g["messages_ready"], g["messages_unacked"], g["consumers"]) == (3, 0, 0), g
        ch.queue_delete(q)
        g, _ = amqp_gauges(broker, q)
        assert g["messages_ready"] is None, g   # a deleted queue is not reported
    finally:
        conn.close()
