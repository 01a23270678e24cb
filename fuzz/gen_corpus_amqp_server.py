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
    "queue_declare_540": CH_OPEN + method(1, 50, 10, struct.pack(">H", 0) + ss(b"q") + b"\x00"
                                          + struct.pack(">I", 0)) + method(0, 10, 51),
    "publish_540": CH_OPEN + method(1, 60, 40, struct.pack(">H", 0) + ss(b"") + ss(b"q") + b"\x00")
    + frame(2, 1, struct.pack(">HHQH", 60, 0, 5, 0)) + frame(3, 1, b"hello"),
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
