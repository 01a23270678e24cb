"""GET /metrics parsed with Prometheus' own text parser
(python3-prometheus-client), values checked against what the test did."""
import http.client
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import ckhelp
from cairn_broker import unique_topic
from httphelp import get, post, produce, read


def scrape(broker):
    st, hdrs, text = get(broker, "/metrics")
    assert st == 200
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams, text


def sample(fams, family, name=None, **labels):
    f = fams[family]
    for s in f.samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v
                                                    for k, v in labels.items()):
            return s.value
    return None


def test_metrics_reflect_what_was_produced_and_read(broker):
    name = unique_topic("hm")
    assert post(broker, "/topics", {"name": name, "partitions": 2})[0] == 201
    produce(broker, name, [{"value": "x" * 10, "partition": 0}] * 7)
    produce(broker, name, [{"value": "y", "partition": 1}] * 3)
    p = ckhelp.producer(broker.bootstrap)
    for _ in range(5):
        p.produce(name, value=b"kafka", partition=1)
    ckhelp.flush(p)
    assert len(read(broker, name, 0)["records"]) == 7
    fams, text = scrape(broker)
    lbl0 = {"topic": name, "partition": "0"}
    lbl1 = {"topic": name, "partition": "1"}
    assert sample(fams, "cairn_partition_log_end_offset", **lbl0) == 7
    assert sample(fams, "cairn_partition_log_end_offset", **lbl1) == 8
    assert sample(fams, "cairn_partition_high_watermark", **lbl1) == 8
    assert sample(fams, "cairn_partition_log_start_offset", **lbl0) == 0
    d = get(broker, "/topics/" + name)[2]
    sizes = {p["partition"]: p["size_bytes"] for p in d["partitions"]}
    assert sample(fams, "cairn_partition_size_bytes", **lbl0) == sizes[0] > 0
    assert sample(fams, "cairn_produced_records", "cairn_produced_records_total", **lbl0) == 7
    assert sample(fams, "cairn_produced_records", "cairn_produced_records_total", **lbl1) == 8
    assert sample(fams, "cairn_produced_bytes", "cairn_produced_bytes_total", **lbl0) == sizes[0]
    assert sample(fams, "cairn_read_records", "cairn_read_records_total", **lbl0) == 7
    assert sample(fams, "cairn_read_bytes", "cairn_read_bytes_total", **lbl0) == sizes[0]
    assert fams["cairn_produced_records"].type == "counter"
    assert fams["cairn_partition_size_bytes"].type == "gauge"
    assert sample(fams, "cairn_topics") >= 1
    assert sample(fams, "process_resident_memory_bytes") > 1 << 20
    assert sample(fams, "process_open_fds") > 3
    assert sample(fams, "cairn_uptime_seconds") >= 0
    assert [s.labels for s in fams["cairn_build_info"].samples][0]["version"]
    # requests per route: the two produce calls (and more from elsewhere)
    assert sample(fams, "cairn_http_requests", "cairn_http_requests_total", route="produce",
                  code_class="2xx") >= 2
    assert "# TYPE cairn_produced_records_total counter" in text


def test_connections_per_listener(broker):
    conns = [http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
             for _ in range(3)]
    for c in conns:
        c.request("GET", "/healthz")
        c.getresponse().read()
    fams, _ = scrape(broker)
    http_l = "127.0.0.1:%d" % broker.http_port
    assert sample(fams, "cairn_connections", protocol="http", listener=http_l) >= 4
    assert sample(fams, "cairn_connections", protocol="kafka",
                  listener="127.0.0.1:%d" % broker.port) is not None
    acc = sample(fams, "cairn_connections_accepted", "cairn_connections_accepted_total",
                 protocol="http", listener=http_l)
    for c in conns:
        c.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        fams, _ = scrape(broker)
        if sample(fams, "cairn_connections", protocol="http", listener=http_l) == 1:
            break
        time.sleep(0.05)
    assert sample(fams, "cairn_connections", protocol="http", listener=http_l) == 1
    assert sample(fams, "cairn_connections_accepted", "cairn_connections_accepted_total",
                  protocol="http", listener=http_l) > acc


def test_group_lag_metrics(broker):
    from confluent_kafka import TopicPartition
    name = unique_topic("hml")
    group = unique_topic("g")
    assert post(broker, "/topics", {"name": name, "partitions": 1})[0] == 201
    produce(broker, name, [{"value": str(i)} for i in range(9)])
    c = ckhelp.consumer(broker.bootstrap, group_id=group)
    c.assign([TopicPartition(name, 0, 0)])
    c.commit(offsets=[TopicPartition(name, 0, 4)], asynchronous=False)
    c.close()
    fams, _ = scrape(broker)
    lbl = {"group": group, "topic": name, "partition": "0"}
    assert sample(fams, "cairn_group_committed_offset", **lbl) == 4
    assert sample(fams, "cairn_group_lag", **lbl) == 5


@pytest.mark.parametrize("path", ["/metrics", "/metrics?x=1"])
def test_metrics_has_help_and_type_for_every_family(broker, path):
    st, _, text = get(broker, path)
    assert st == 200
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            # A histogram's samples are its _bucket, _sum and _count series.
            names.update([name + "_bucket", name + "_sum", name + "_count"]
                         if typ == "histogram" else [name])
    for line in text.splitlines():
        if line and not line.startswith("#"):
            metric = line.split("{")[0].split(" ")[0]
            assert metric in names, line
