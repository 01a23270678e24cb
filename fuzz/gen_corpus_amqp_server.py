#!/usr/bin/python3
"""Seed corpus of fuzz/fuzz_amqp_server.c: valid AMQP 0-9-1 client streams.

Inputs starting with "AMQP" are sent as they are (whole handshakes); the
others follow the harness's own handshake prelude, so they start on an OPEN
connection. Run: /usr/bin/python3 fuzz/gen_corpus_amqp_server.py fuzz/corpus/amqp_server
"""
import os
import struct
import sys

HEADER = b"AMQP\x00\x00\x09\x01"


def frame(t, ch, payload, end=0xCE):
    return struct.pack(">BHI", t, ch, len(payload)) + payload + bytes([end])


def method(ch, c, m, args=b""):
    return frame(1, ch, struct.pack(">HH", c, m) + args)


def ss(s):
    return bytes([len(s)]) + s


def ls(s):
    return struct.pack(">I", len(s)) + s


def caps_table():
    inner = ss(b"authentication_failure_close") + b"t\x01" + ss(b"basic.nack") + b"t\x01"
    ent = ss(b"capabilities") + b"F" + struct.pack(">I", len(inner)) + inner
    ent += ss(b"product") + b"S" + ls(b"fuzz")
    return struct.pack(">I", len(ent)) + ent


def start_ok(mech=b"PLAIN", resp=b"\0guest\0guest"):
    return method(0, 10, 11, caps_table() + ss(mech) + ls(resp) + ss(b"en_US"))


TUNE_OK = method(0, 10, 31, struct.pack(">HIH", 2047, 131072, 60))
OPEN = method(0, 10, 40, ss(b"/") + ss(b"") + b"\0")
CLOSE = method(0, 10, 50, struct.pack(">H", 200) + ss(b"bye") + struct.pack(">HH", 0, 0))
CH_OPEN = method(1, 20, 10, ss(b""))
CH_FLOW = method(1, 20, 20, b"\x00")
CH_CLOSE = method(1, 20, 40, struct.pack(">H", 200) + ss(b"ok") + struct.pack(">HH", 0, 0))
HB = frame(8, 0, b"")
AMQPLAIN = ss(b"LOGIN") + b"S" + ls(b"guest") + ss(b"PASSWORD") + b"S" + ls(b"guest")

def q_declare(name, bits, args=b"\0\0\0\0", ch=1):
    """bits: 1 passive, 2 durable, 4 exclusive, 8 auto-delete, 16 nowait."""
    return method(ch, 50, 10, struct.pack(">H", 0) + ss(name) + bytes([bits]) + args)


def Q_DECLARE(name, bits):
    return q_declare(name, bits)


def x_declare(name, typ, bits=0, ch=1):
    return method(ch, 40, 10, struct.pack(">H", 0) + ss(name) + ss(typ) + bytes([bits])
                  + b"\0\0\0\0")


def x_delete(name):
    return method(1, 40, 20, struct.pack(">H", 0) + ss(name) + b"\x00")


def q_bind(q, x, key, args=b"\0\0\0\0"):
    return method(1, 50, 20, struct.pack(">H", 0) + ss(q) + ss(x) + ss(key) + b"\x00" + args)


def q_unbind(q, x, key):
    return method(1, 50, 50, struct.pack(">H", 0) + ss(q) + ss(x) + ss(key) + b"\0\0\0\0")


def queue_purge(q):
    return method(1, 50, 30, struct.pack(">H", 0) + ss(q) + b"\x00")


def queue_delete(q):
    return method(1, 50, 40, struct.pack(">H", 0) + ss(q) + b"\x00")


def publish(x, key, mandatory=0):
    return method(1, 60, 40, struct.pack(">H", 0) + ss(x) + ss(key) + bytes([mandatory]))


def content(body, props=b"\x00\x00"):
    return frame(2, 1, struct.pack(">HHQ", 60, 0, len(body)) + props) + \
        (frame(3, 1, body) if body else b"")


def consume(q, tag, bits=0):
    return method(1, 60, 20, struct.pack(">H", 0) + ss(q) + ss(tag) + bytes([bits])
                  + b"\0\0\0\0")


def basic_get(q, no_ack=0):
    return method(1, 60, 70, struct.pack(">H", 0) + ss(q) + bytes([no_ack]))


def ack(tag, multiple=0, ch=1):
    return method(ch, 60, 80, struct.pack(">Q", tag) + bytes([multiple]))


def nack(tag, multiple, requeue):
    return method(1, 60, 120, struct.pack(">Q", tag) + bytes([multiple | (requeue << 1)]))


def reject(tag, requeue):
    return method(1, 60, 90, struct.pack(">Q", tag) + bytes([requeue]))


def table(entries):
    b = b""
    for k, v in entries:
        b += ss(k) + b"S" + ls(v)
    return struct.pack(">I", len(b)) + b


def ttable(entries):
    """A field table with typed values: (key, tag, packed value bytes)."""
    b = b""
    for k, tag, v in entries:
        b += ss(k) + tag + v
    return struct.pack(">I", len(b)) + b


def I(n):
    return struct.pack(">i", n)


def S(v):
    return ls(v)


QARGS = ttable([(b"x-message-ttl", b"I", I(50)), (b"x-dead-letter-exchange", b"S", S(b"dlx")),
                (b"x-max-length", b"I", I(2)), (b"x-overflow", b"S", S(b"reject-publish-dlx")),
                (b"x-max-priority", b"I", I(5)), (b"x-single-active-consumer", b"t", b"\x01")])
STREAM_ARGS = ttable([(b"x-queue-type", b"S", S(b"stream"))])
PRIO_PROPS = struct.pack(">H", 1 << 11) + b"\x03"                  # priority 3
EXPIRE_PROPS = struct.pack(">H", 1 << 7) + ss(b"10")               # expiration "10"
REPLY_PROPS = struct.pack(">H", 1 << 9) + ss(b"amq.rabbitmq.reply-to")

HDR_ARGS = table([(b"x-match", b"any"), (b"format", b"pdf")])
DELIVERY_MODE_2 = struct.pack(">H", 1 << 12) + b"\x02"
HDR_PROPS = struct.pack(">H", 1 << 13) + table([(b"format", b"pdf")])

seeds = {
    "handshake_plain": HEADER + start_ok() + TUNE_OK + OPEN + CLOSE,
    "handshake_amqplain": HEADER + start_ok(b"AMQPLAIN", AMQPLAIN) + TUNE_OK + OPEN + CH_OPEN
    + CH_CLOSE + CLOSE,
    "handshake_bad_login": HEADER + start_ok(resp=b"\0guest\0nope") + method(0, 10, 51),
    "handshake_bad_vhost": HEADER + start_ok() + TUNE_OK
    + method(0, 10, 40, ss(b"other") + ss(b"") + b"\0") + method(0, 10, 51),
    "wrong_header": b"AMQP\x01\x01\x00\x0a",
    "channels": CH_OPEN + CH_FLOW + method(1, 20, 20, b"\x01") + CH_CLOSE + CH_OPEN
    + method(2, 20, 10, ss(b"")) + HB + CLOSE,
    "tx_select_commit": CH_OPEN + method(1, 90, 10) + publish(b"", b"q") + content(b"tx")
    + method(1, 90, 20) + method(1, 90, 30) + CH_CLOSE + CLOSE,
    "exchange_bind_ae": CH_OPEN + x_declare(b"s", b"topic") + x_declare(b"d", b"fanout")
    + method(1, 40, 10, struct.pack(">H", 0) + ss(b"m") + ss(b"direct") + b"\x00"
             + table([(b"alternate-exchange", b"d")]))
    + method(1, 40, 30, struct.pack(">H", 0) + ss(b"d") + ss(b"s") + ss(b"a.#") + b"\x00"
             + b"\0\0\0\0")
    + method(1, 40, 30, struct.pack(">H", 0) + ss(b"s") + ss(b"d") + ss(b"") + b"\x00"
             + b"\0\0\0\0")
    + Q_DECLARE(b"xq", 0) + q_bind(b"xq", b"d", b"") + publish(b"s", b"a.b", 1) + content(b"e")
    + publish(b"m", b"none", 1) + content(b"ae")
    + method(1, 40, 40, struct.pack(">H", 0) + ss(b"d") + ss(b"s") + ss(b"a.#") + b"\x00"
             + b"\0\0\0\0")
    + x_delete(b"d") + CLOSE,
    "publish_unroutable": CH_OPEN + publish(b"", b"q") + content(b"hello"),
    "declare_publish_get": CH_OPEN + Q_DECLARE(b"q1", 2) + publish(b"", b"q1")
    + content(b"hello", props=DELIVERY_MODE_2) + basic_get(b"q1") + ack(1) + basic_get(b"q1")
    + queue_delete(b"q1") + CH_CLOSE + CLOSE,
    "exchanges_bindings": CH_OPEN + x_declare(b"events", b"fanout")
    + x_declare(b"tp", b"topic", 2) + x_declare(b"hx", b"headers")
    + Q_DECLARE(b"", 4) + Q_DECLARE(b"a", 0) + q_bind(b"a", b"tp", b"*.x.#")
    + q_bind(b"a", b"hx", b"", HDR_ARGS) + q_bind(b"a", b"events", b"")
    + publish(b"tp", b"k.x.y", mandatory=1) + content(b"t")
    + publish(b"hx", b"", 1) + content(b"h", props=HDR_PROPS)
    + publish(b"events", b"") + content(b"f" * 300)
    + publish(b"tp", b"nomatch", mandatory=1) + content(b"")
    + q_unbind(b"a", b"tp", b"*.x.#") + queue_purge(b"a") + x_delete(b"events") + CLOSE,
    "consume_ack_nack": CH_OPEN + method(1, 60, 10, struct.pack(">IH", 0, 2) + b"\x00")
    + Q_DECLARE(b"w", 0) + consume(b"w", b"") + consume(b"w", b"c2")
    + b"".join(publish(b"", b"w") + content(b"m%d" % i) for i in range(4))
    + ack(1) + nack(2, 0, 1) + reject(3, 1) + method(1, 60, 110, b"\x01")
    + method(1, 60, 30, ss(b"c2") + b"\x00") + ack(0, 1) + CH_CLOSE + CLOSE,
    "confirms": CH_OPEN + method(1, 85, 10, b"\x00") + Q_DECLARE(b"d", 2)
    + b"".join(publish(b"", b"d") + content(b"p", props=DELIVERY_MODE_2) for i in range(3))
    + CLOSE,
    "soft_errors": CH_OPEN + Q_DECLARE(b"missing", 1) + method(1, 20, 41)
    + method(2, 20, 10, ss(b"")) + x_declare(b"amq.x", b"direct", 0, ch=2) + method(2, 20, 41)
    + method(3, 20, 10, ss(b"")) + ack(7, ch=3) + CLOSE,
    "content_split": CH_OPEN + Q_DECLARE(b"s", 0) + publish(b"", b"s")
    + frame(2, 1, struct.pack(">HHQH", 60, 0, 6, 0)) + frame(3, 1, b"abc") + frame(3, 1, b"def")
    + publish(b"", b"s") + Q_DECLARE(b"s", 0),
    "queue_arguments": CH_OPEN + x_declare(b"dlx", b"fanout") + Q_DECLARE(b"dead", 0)
    + q_bind(b"dead", b"dlx", b"") + q_declare(b"qa", 0, QARGS)
    + b"".join(publish(b"", b"qa") + content(b"m%d" % i, props=PRIO_PROPS) for i in range(4))
    + publish(b"", b"qa") + content(b"e", props=EXPIRE_PROPS)
    + method(1, 60, 10, struct.pack(">IH", 0, 1) + b"\x01")          # global qos 1
    + method(1, 60, 20, struct.pack(">H", 0) + ss(b"qa") + ss(b"p") + b"\x00"
             + ttable([(b"x-priority", b"I", I(7))]))
    + reject(1, 0) + nack(0, 1, 0) + q_declare(b"qa", 0, STREAM_ARGS) + CLOSE,
    "stream_queue": CH_OPEN + q_declare(b"sq", 2, STREAM_ARGS)
    + publish(b"", b"sq") + content(b"s1", props=DELIVERY_MODE_2)
    + method(1, 60, 10, struct.pack(">IH", 0, 10) + b"\x00")
    + method(1, 60, 20, struct.pack(">H", 0) + ss(b"sq") + ss(b"sc") + b"\x00"
             + ttable([(b"x-stream-offset", b"S", S(b"first"))]))
    + ack(1) + basic_get(b"sq") + CLOSE,
    "direct_reply_to": CH_OPEN + method(1, 60, 20, struct.pack(">H", 0)
                                        + ss(b"amq.rabbitmq.reply-to") + ss(b"") + b"\x02"
                                        + b"\0\0\0\0")
    + Q_DECLARE(b"rpc", 0) + publish(b"", b"rpc") + content(b"req", props=REPLY_PROPS)
    + basic_get(b"rpc", 1) + publish(b"", b"amq.rabbitmq.reply-to.1.1.1") + content(b"resp")
    + CLOSE,
    "heartbeats": HB + HB + CH_OPEN + HB,
    "bad_end": CH_OPEN + frame(1, 1, struct.pack(">HH", 20, 20) + b"\x01", end=0),
    "peer_close_while_closing": method(0, 20, 10, ss(b"")) + CLOSE,
}

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/amqp_server"
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("%d seeds in %s" % (len(seeds), out))
