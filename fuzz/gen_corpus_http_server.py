#!/usr/bin/python3
"""Seed corpus of fuzz/fuzz_http_server.c: valid HTTP/1.1 client streams for
every route, pipelined and chunked, plus a few malformed ones.
Run: /usr/bin/python3 fuzz/gen_corpus_http_server.py fuzz/corpus/http_server
"""
import json
import os
import sys


def req(method, path, body=None, headers=(), chunked=False):
    h = ["%s %s HTTP/1.1" % (method, path), "Host: fuzz"] + list(headers)
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if chunked:
            h.append("Transfer-Encoding: chunked")
            parts = [data[i:i + 7] for i in range(0, len(data), 7)]
            data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        else:
            h.append("Content-Length: %d" % len(data))
    return ("\r\n".join(h) + "\r\n\r\n").encode() + data


TOPIC = {"name": "fz", "partitions": 2, "configs": {"retention.ms": "60000"}}
RECORDS = {"records": [
    {"key": "k", "value": {"a": 1}, "headers": {"h": "v"}},
    {"value_b64": "AAEC", "partition": 1, "timestamp": 1700000000000},
    {"key_b64": "AP8=", "value": None, "headers": [["x", {"b64": "AA=="}], ["y", None]]},
]}

SEEDS = {
    "health": req("GET", "/healthz") + req("GET", "/readyz"),
    "broker_metrics": req("GET", "/broker") + req("GET", "/metrics"),
    "topic_create": req("POST", "/topics", TOPIC),
    "topic_cycle": req("POST", "/topics", TOPIC) + req("GET", "/topics") +
    req("GET", "/topics/fz") + req("DELETE", "/topics/fz"),
    "produce": req("POST", "/topics", TOPIC) + req("POST", "/topics/fz/records", RECORDS),
    "produce_chunked": req("POST", "/topics/fz/records", RECORDS, chunked=True),
    "produce_continue": req("POST", "/topics/fz/records", RECORDS,
                            headers=["Expect: 100-continue"]),
    "read": req("POST", "/topics/fz/records", RECORDS) +
    req("GET", "/topics/fz/partitions/0/records?offset=0&max_bytes=100") +
    req("GET", "/topics/fz/partitions/1/records?offset=0&timeout_ms=10"),
    "groups": req("GET", "/groups") + req("GET", "/groups/g1") + req("DELETE", "/groups/g1"),
    "group_offsets": req("POST", "/topics", TOPIC) + req("POST", "/topics/fz/records", RECORDS) +
    req("POST", "/groups/g1/offsets", {"topic": "fz", "to": "earliest"}) +
    req("POST", "/groups/g%FF/offsets", {"topic": "fz", "to": "offset", "offset": 1,
                                          "partitions": [1, 0], "dry_run": True}) +
    req("POST", "/groups/g1/offsets", {"topic": "fz", "to": "latest", "partitions": [0, 0]}) +
    req("POST", "/groups/g1/offsets", {"topic": "fz", "to": "offset"}) +
    req("POST", "/groups/cairn.webhook.x/offsets", {"topic": "nope", "to": "latest"}) +
    req("GET", "/groups/g1"),
    "errors": req("PUT", "/topics") + req("GET", "/nope") +
    req("POST", "/topics/fz/records", b"{bad json") +
    req("GET", "/topics/fz/partitions/x/records?offset=-1"),
    "close": req("GET", "/healthz", headers=["Connection: close"]) + req("GET", "/healthz"),
    "http10": b"GET /healthz HTTP/1.0\r\n\r\n",
    "bad_method": b"BREW /pot HTTP/1.1\r\n\r\n",
    "big_header": b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n",
    "pct": req("GET", "/topics/f%7Az/partitions/0/records?offset=%30"),
    "events": req("POST", "/event/publish", {"event_type": "fz", "data": {"a": [1, None]},
                                             "key": "k", "id": "e1"}) +
    req("POST", "/event/publish", {"event_type": "a b", "data": 1}) +
    req("POST", "/event/subscribe", {"event_type": "fz", "callback": "ftp://x/"}) +
    req("POST", "/event/subscribe", {"event_type": "fz", "callback": "http://[::1"}) +
    req("GET", "/event/subscriptions") + req("GET", "/event/subscriptions/nope") +
    req("DELETE", "/event/subscriptions/nope"),
    # Server-Sent Events: the stream never ends, so what follows it on the
    # connection is discarded until the client's half-close ends it.
    "stream": req("POST", "/topics", TOPIC) + req("POST", "/topics/fz/records", RECORDS) +
    req("GET", "/topics/fz/stream?from=earliest") + req("GET", "/healthz"),
    "stream_resume": req("GET", "/topics/fz/stream?partition=1",
                         headers=["Last-Event-ID: 1:0", "Accept: text/event-stream"]) +
    req("GET", "/topics/fz/stream", headers=["Last-Event-ID: 0:-1,1:0"]),
    "stream_group": req("POST", "/topics", TOPIC) +
    req("GET", "/topics/fz/stream?group=fzg&from=earliest", headers=["Connection: close"]),
    "stream_group_bytes": req("GET", "/topics/fz/stream?group=g%FF%FE") +
    req("GET", "/topics/fz/stream?group=%01") + req("GET", "/groups"),
    "stream_errors": req("GET", "/topics/fz/stream?partition=0&offset=99") +
    req("GET", "/topics/fz/stream", headers=["Last-Event-ID: 0:1,0:2"]) +
    req("GET", "/topics/fz/stream?from=soon") + req("GET", "/topics/nope/stream") +
    req("GET", "/topics/fz/stream?partition=0&offset=0", headers=["Last-Event-ID: x"]),
    "console": req("GET", "/") + req("GET", "/console") +
    req("GET", "/console/app.js", headers=['If-None-Match: W/"x", "y"']) +
    req("GET", "/console/style.css", headers=["If-None-Match: *"]) +
    req("GET", "/console/nope") + req("GET", "/console/") + req("POST", "/console", "{}"),
}

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/http_server"
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(SEEDS), out))
