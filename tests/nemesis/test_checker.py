#!/usr/bin/python3
"""The nemesis checker must see each anomaly it claims to check: a clean
history passes, and each injected fault (lost ack, moved ack, duplicate, gap,
overlap, bad CRC, reorder, a served record that changed, a log that differs
after a leader change, a commit that went backwards) is reported.

Runs standalone (`make nemesis-smoke` runs it first) or under pytest.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration", "py"))

import kwire  # noqa: E402
from nemesis import check  # noqa: E402


class FakeWorkload:
    def __init__(self):
        self.acked = {}
        self.reads = {}
        self.read_conflicts = []
        self.commits = []


def batch(base, values):
    raw = bytearray(kwire.build_record_batch([(v, v, [], 1000) for v in values]))
    raw[0:8] = struct.pack(">q", base)
    raw = bytes(raw)
    return (base, base + len(values) - 1, raw, kwire.parse_record_batches(raw)[0])


def history():
    """Two partitions, one producer session, values acked where they are."""
    wl = FakeWorkload()
    vals = [("s1-w0.0-%08d" % i).encode() for i in range(12)]
    p0 = [batch(0, vals[0:6:2]), batch(3, vals[6:12:2])]
    p1 = [batch(0, vals[1:6:2]), batch(3, vals[7:12:2])]
    reads = {0: (1, 6, p0), 1: (2, 6, p1)}
    for part, (_, _, bs) in reads.items():
        for b in bs:
            for r in b[3]["records"]:
                wl.acked[r["value"]] = (part, r["offset"], 0.0, 0.1)
    wl.reads[(0, 1)] = vals[2]
    wl.commits = [(1.0, 0, 2), (2.0, 0, 4), (2.0, 1, 3)]
    committed = {0: 4, 1: 3}
    return wl, reads, vals, committed


def run(wl, reads, reread=None, committed=None):
    v = []
    check(wl, reads, reread, committed, v)
    return v


def expect(name, violations, word):
    assert violations and any(word in x for x in violations), \
        "%s: expected a violation with %r, got %s" % (name, word, violations)


def test_clean_history_passes():
    wl, reads, _, committed = history()
    assert run(wl, reads, dict(reads), committed) == []


def test_each_anomaly_is_reported():
    wl, reads, vals, committed = history()
    wl.acked[b"s1-w0.0-99999999"] = (0, 6, 0.0, 0.1)
    expect("lost", run(wl, reads), "lost ack")

    wl, reads, vals, committed = history()
    wl.acked[vals[0]] = (0, 5, 0.0, 0.1)
    expect("moved", run(wl, reads), "moved")

    wl, reads, vals, committed = history()
    reads[1] = (2, 9, reads[1][2] + [batch(6, [vals[0], vals[13 % 12], vals[11]])])
    expect("duplicate", run(wl, reads), "duplicate")

    wl, reads, vals, committed = history()
    reads[0] = (1, 6, [reads[0][2][0], batch(4, [b"s1-w0.0-00000100", b"s1-w0.0-00000102"])])
    expect("gap", run(wl, reads), "gap")

    wl, reads, vals, committed = history()
    reads[0] = (1, 6, [reads[0][2][0], batch(2, [b"s1-w0.0-00000100", b"s1-w0.0-00000102",
                                                  b"s1-w0.0-00000104", b"s1-w0.0-00000106"])])
    expect("overlap", run(wl, reads), "overlap")

    wl, reads, vals, committed = history()
    base, last, raw, parsed = reads[0][2][1]
    bad = raw[:-1] + bytes([raw[-1] ^ 1])
    reads[0][2][1] = (base, last, bad, kwire.parse_record_batches(bad)[0])
    expect("crc", run(wl, reads), "CRC")

    wl, reads, vals, committed = history()
    reads[0] = (1, 6, [batch(0, [vals[2], vals[0], vals[4]]), reads[0][2][1]])
    expect("reorder", run(wl, reads), "reordered")

    wl, reads, vals, committed = history()
    wl.reads[(0, 2)] = b"s1-w0.0-00000777"
    expect("served then changed", run(wl, reads), "served then changed")

    wl, reads, vals, committed = history()
    other = dict(reads)
    other[1] = (3, 6, [reads[1][2][0], batch(3, [vals[7], vals[9], vals[10]])])
    expect("leader change", run(wl, reads, other), "differ between leaders")

    wl, reads, vals, committed = history()
    expect("commit backwards", run(wl, reads, None, {0: 2, 1: 3}), "went backwards")

    wl, reads, vals, committed = history()
    wl.commits.append((3.0, 0, 1))
    expect("commit order", run(wl, reads, None, committed), "acknowledged after")


if __name__ == "__main__":
    test_clean_history_passes()
    test_each_anomaly_is_reported()
    print("nemesis checker self-test: 12 cases ok")
