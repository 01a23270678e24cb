#!/usr/bin/python3
"""Golden AMQP 0-9-1 frames for tests/unit/test_amqp_codec.c, encoded by a
real client library (pika, Debian python3-pika 1.2.0), written apart from
our C codec (pika encodes tags S x t I l D T F A V; it has no float,
int8/16 or unsigned tags, which the C tests cover by hand). Prints C
arrays; paste them into the test when they change:

    /usr/bin/python3 tests/unit/amqp_golden_pika.py

With --corpus DIR it writes the seed corpus of fuzz/fuzz_amqp.c instead
(fuzz/corpus/amqp): each frame, all of them as one stream, each payload
alone, and the field tables alone.
"""
import datetime
import decimal
import os
import struct
import sys

from pika import frame, spec


def carray(name, b):
    out = ["static const uint8_t %s[] = {" % name]
    for i in range(0, len(b), 12):
        out.append("    " + " ".join("0x%02x," % x for x in b[i:i + 12]))
    out.append("};")
    return "\n".join(out)


def method(ch, m):
    return frame.Method(ch, m).marshal()


GOLDEN = [
    ("g_connection_start", method(0, spec.Connection.Start(
        version_major=0, version_minor=9,
        server_properties={
            "product": "Cairn",
            "version": "0.1",
            "capabilities": {"publisher_confirms": True, "basic.nack": True,
                             "consumer_cancel_notify": True},
        },
        mechanisms="PLAIN AMQPLAIN", locales="en_US"))),
    ("g_connection_start_ok", method(0, spec.Connection.StartOk(
        client_properties={"product": "pika", "capabilities": {"basic.nack": True}},
        mechanism="PLAIN", response="\0guest\0guest", locale="en_US"))),
    ("g_connection_tune", method(0, spec.Connection.Tune(
        channel_max=2047, frame_max=131072, heartbeat=60))),
    ("g_queue_declare", method(1, spec.Queue.Declare(
        queue="hello", passive=False, durable=True, exclusive=False, auto_delete=True,
        nowait=True, arguments={"x-message-ttl": 60000, "x-queue-type": "classic"}))),
    ("g_basic_publish", method(1, spec.Basic.Publish(
        exchange="events", routing_key="hello", mandatory=True, immediate=False))),
    ("g_basic_deliver", method(1, spec.Basic.Deliver(
        consumer_tag="ctag-1", delivery_tag=2**40 + 7, redelivered=True,
        exchange="events", routing_key="hello"))),
    ("g_exchange_unbind_ok", method(1, spec.Exchange.UnbindOk())),
    ("g_content_header", frame.Header(1, 12, spec.BasicProperties(
        content_type="text/plain", delivery_mode=2, priority=5,
        correlation_id="c-1", timestamp=1700000000, app_id="app",
        headers={"k": "v", "n": 42, "big": 2**40, "b": False,
                 "arr": [1, "two", {"three": 3}], "nested": {"x": None},
                 "ts": datetime.datetime(2023, 11, 14, 22, 13, 20),
                 "dec": decimal.Decimal("3.14"), "raw": b"\x00\xff"})).marshal()),
]

def write_corpus(d):
    os.makedirs(d, exist_ok=True)
    files = {}
    for name, b in GOLDEN:
        name = name[2:]
        files["frame-" + name] = b
        files["payload-" + name] = b[7:-1]
    files["stream-all"] = b"".join(b for _, b in GOLDEN) + frame.Heartbeat().marshal()
    # the field tables alone (without their u32 length), for fuzz_amqp's table reader
    ch = dict(GOLDEN)["g_content_header"][7:-1]
    n = struct.unpack(">I", ch[25:29])[0]
    files["table-headers"] = ch[29:29 + n]
    qd = dict(GOLDEN)["g_queue_declare"][7:-1]
    n = struct.unpack(">I", qd[13:17])[0]
    files["table-queue-args"] = qd[17:17 + n]
    for name in sorted(files):
        with open(os.path.join(d, name), "wb") as f:
            f.write(files[name])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        write_corpus(sys.argv[2])
    else:
        for name, b in GOLDEN:
            print(carray(name, b))
