#!/usr/bin/python3
"""The nemesis checker must see each anomaly it claims to check: a clean
history passes, a value resent under a newer producer epoch is an allowed
anomaly, and each injected fault (lost ack, moved ack, duplicate, gap,
overlap, bad CRC, reorder, a served record that changed, a log that differs
after a leader change, a commit that went backwards) is reported, also
above a log start that retention moved (what is below it is skipped); and the
transactional checker (txn.check_txn) flags a lost commit, a visible abort,
a visible never-committed (fenced) transaction, a partly visible unknown
transaction, a duplicate, reordered and foreign records, a dirty read and a
hanging transaction, while a clean history (unknown outcomes resolved either
way) passes.

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
from txn import Txn, check_ctp, check_txn, find_cycle  # noqa: E402


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
    wl.acked[b"s1-w0.0-00000099"] = (0, 4, 0.0, 0.1)   # offset 4 holds vals[8], same session
    expect("lost, sequence reused", run(wl, reads), "a reused sequence number")

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


def producer_batch(base, values, pid, epoch):
    """batch() written by producer pid at epoch (the CRC made again)."""
    raw = bytearray(kwire.build_record_batch([(v, v, [], 1000) for v in values]))
    raw[0:8] = struct.pack(">q", base)
    raw[43:51] = struct.pack(">q", pid)
    raw[51:53] = struct.pack(">h", epoch)
    raw[17:21] = struct.pack(">I", kwire.crc32c(bytes(raw[21:])))
    raw = bytes(raw)
    return (base, base + len(values) - 1, raw, kwire.parse_record_batches(raw)[0])


def test_resend_under_a_new_epoch_is_an_allowed_anomaly():
    """A value the client sent again after bumping its producer epoch is
    reported apart (the broker cannot deduplicate across epochs); the same
    value twice in one epoch, or from two producers, stays a violation."""
    wl, reads, vals, committed = history()
    p0 = reads[0][2]
    again = producer_batch(6, [vals[6]], 7, 1)
    first = producer_batch(p0[1][0], [r["value"] for r in p0[1][3]["records"]], 7, 0)
    reads[0] = (1, 7, [p0[0], first, again])
    v, anomalies = [], []
    check(wl, reads, None, committed, v, None, anomalies)
    assert v == [] and len(anomalies) == 1 and "new producer epoch" in anomalies[0], (v, anomalies)
    assert any("duplicate" in x for x in run(wl, reads)), "without the list it is a violation"
    for pid, epoch in ((7, 0), (8, 1)):
        reads[0] = (1, 7, [p0[0], first, producer_batch(6, [vals[6]], pid, epoch)])
        v, anomalies = [], []
        check(wl, reads, None, committed, v, None, anomalies)
        assert anomalies == [] and any("duplicate" in x for x in v), (pid, epoch, v)


def test_control_batches_are_not_workload_values():
    wl, reads, vals, committed = history()
    marker = batch(6, [b"\x00\x00\x00\x00\x00\x00"])
    raw = bytearray(marker[2])
    raw[21:23] = struct.pack(">h", 0x30)   # transactional + control
    crc = kwire.crc32c(bytes(raw[21:]))
    raw[17:21] = struct.pack(">I", crc)
    raw = bytes(raw)
    reads[0] = (1, 7, reads[0][2] + [(6, 6, raw, kwire.parse_record_batches(raw)[0])])
    assert run(wl, reads) == []


# ---------------------------------------------------------------- transactions

def txn_history():
    """Two transactional ids over three partitions: t0 commits #0, aborts #1,
    commits #2; t1 commits #0, its #1 has an unknown outcome (committed in
    the end), its #2 an unknown one (aborted in the end), its #3 was never
    committed (its producer fenced). rc: what read_committed shows."""
    txns = {}
    seq = {0: 0, 1: 0}

    def mk(w, i, outcome, parts, gen=0, fenced=False):
        t = Txn((w, i), w, gen, "abort" if outcome == "aborted" else "commit", 0.0)
        t.outcome = outcome
        t.fenced = fenced
        for q in parts:
            t.records.append((("s1-t%d.%d-%08d" % (w, gen, seq[w])).encode(), q))
            seq[w] += 1
        txns[t.key] = t
        return t
    visible = [mk(0, 0, "committed", [0, 1, 2]), None, None]
    mk(0, 1, "aborted", [0, 1])
    visible[1] = mk(0, 2, "committed", [1, 2])
    visible[2] = mk(1, 0, "committed", [0, 2, 2])
    u1 = mk(1, 1, "unknown", [0, 1])
    mk(1, 2, "unknown", [1, 2])
    mk(1, 3, "never", [0, 2], fenced=True)
    rc = {0: [], 1: [], 2: []}
    off = {0: 0, 1: 0, 2: 0}
    for t in visible + [u1]:
        for v, q in t.records:
            rc[q].append((off[q], v))
            off[q] += 3   # aborted data and markers between
    stable = {q: (off[q] + 1, off[q] + 1) for q in rc}
    eof = {q: off[q] + 1 for q in rc}
    served = {(0, rc[0][0][0]): rc[0][0][1]}
    return txns, rc, served, stable, eof


def run_txn(txns, rc, served, stable, eof):
    v = []
    res = check_txn(txns, rc, served, stable, eof, v)
    return v, res


def test_retention_starts():
    """--retention: records below a partition's log start are gone by design
    (acked, read or in the other leader's log); from the start on every
    check holds."""
    wl, reads, vals, committed = history()
    trimmed = {0: (1, 6, reads[0][2][1:]), 1: reads[1]}
    starts = {0: 3, 1: 0}
    v = []
    check(wl, trimmed, dict(reads), committed, v, starts)
    assert v == [], v
    assert wl.aged_out == 3
    # A gap after the start, or a lost ack at or above it, is still caught.
    wl, reads, vals, committed = history()
    v = []
    check(wl, {0: (1, 6, reads[0][2][1:]), 1: reads[1]}, None, committed, v, {0: 2, 1: 0})
    assert any("gap" in x for x in v), v
    wl, reads, vals, committed = history()
    wl.acked[b"s1-w0.0-99999999"] = (0, 4, 0.0, 0.1)
    v = []
    check(wl, {0: (1, 6, reads[0][2][1:]), 1: reads[1]}, None, committed, v, {0: 3, 1: 0})
    assert any("lost ack" in x for x in v), v


def test_clean_transactional_history_passes():
    v, res = run_txn(*txn_history())
    assert v == [], v
    assert (res["committed"], res["aborted"], res["never"], res["unknown"]) == (3, 1, 1, 2)
    assert (res["unknown_visible"], res["unknown_invisible"]) == (1, 1)


def find(txns, key):
    return txns[key]


def test_each_transactional_anomaly_is_reported():
    # a committed transaction missing one record on one partition
    txns, rc, served, stable, eof = txn_history()
    v0 = find(txns, (0, 2)).records[1][0]
    rc[2] = [x for x in rc[2] if x[1] != v0]
    expect("lost commit", run_txn(txns, rc, served, stable, eof)[0], "lost commit")

    # a record of an aborted transaction visible
    txns, rc, served, stable, eof = txn_history()
    v1, q1 = find(txns, (0, 1)).records[0]
    rc[q1].append((1000, v1))
    expect("visible abort", run_txn(txns, rc, served, stable, eof)[0], "visible abort")

    # a record of a fenced producer's never-committed transaction visible
    txns, rc, served, stable, eof = txn_history()
    v2, q2 = find(txns, (1, 3)).records[1]
    rc[q2].append((1000, v2))
    expect("fenced visible", run_txn(txns, rc, served, stable, eof)[0], "visible uncommitted")

    # an unknown transaction visible on one of its partitions only
    txns, rc, served, stable, eof = txn_history()
    v3, q3 = find(txns, (1, 2)).records[0]
    rc[q3].append((1000, v3))
    expect("atomicity", run_txn(txns, rc, served, stable, eof)[0], "atomicity")

    # the same: the visible unknown transaction loses one of its partitions
    txns, rc, served, stable, eof = txn_history()
    v4, q4 = find(txns, (1, 1)).records[1]
    rc[q4] = [x for x in rc[q4] if x[1] != v4]
    expect("atomicity 2", run_txn(txns, rc, served, stable, eof)[0], "atomicity")

    # a committed record visible twice
    txns, rc, served, stable, eof = txn_history()
    rc[0].append((1000, rc[0][0][1]))
    expect("duplicate", run_txn(txns, rc, served, stable, eof)[0], "visible 2 times")

    # two committed transactions of one producer in the wrong order on a partition
    txns, rc, served, stable, eof = txn_history()
    (o1, a), (o2, b) = rc[1][0], rc[1][1]
    rc[1][0], rc[1][1] = (o1, b), (o2, a)
    expect("order", run_txn(txns, rc, served, stable, eof)[0], "order")

    # a record the workload never wrote
    txns, rc, served, stable, eof = txn_history()
    rc[2].append((1000, b"s1-t9.0-00000001"))
    expect("foreign", run_txn(txns, rc, served, stable, eof)[0], "not written by the workload")

    # a record served under read_committed during the run, gone at the end
    txns, rc, served, stable, eof = txn_history()
    v5, q5 = find(txns, (1, 2)).records[0]
    served[(q5, 1)] = v5
    expect("dirty read", run_txn(txns, rc, served, stable, eof)[0], "dirty read")

    # a partition whose last stable offset stays below its high watermark
    txns, rc, served, stable, eof = txn_history()
    hw, _ = stable[1]
    stable[1] = (hw, hw - 2)
    eof[1] = hw - 2
    expect("hanging", run_txn(txns, rc, served, stable, eof)[0], "hanging transaction")

    # the read_committed consumer never reached the end of a partition
    txns, rc, served, stable, eof = txn_history()
    del eof[2]
    expect("consumer end", run_txn(txns, rc, served, stable, eof)[0], "read_committed consumer ended")

    # a transaction whose producer thread never ended it
    txns, rc, served, stable, eof = txn_history()
    find(txns, (1, 2)).outcome = None
    expect("open", run_txn(txns, rc, served, stable, eof)[0], "no outcome")


def ctp_history():
    """A transactional producer (id 0) and a consume-transform-produce
    worker (id 5): reads chain through committed, aborted and unknown
    transactions; the group committed past everything that took effect."""
    def t(w, i, outcome, records, reads=None):
        x = Txn((w, i), w, 0, "commit", 0.0)
        x.outcome = outcome
        x.records = records
        x.reads = reads
        return x
    a, b, c, d, e, f, g, h = [("s1-t%d.0-%08d" % (0 if i < 3 else 5, i)).encode()
                              for i in range(8)]
    txns = {}
    for x in (t(0, 0, "committed", [(a, 0), (b, 1)]),
              t(0, 1, "aborted", [(c, 0)]),
              t(5, 0, "committed", [(d, 1)], [(0, 0, a)]),
              t(5, 1, "aborted", [(e, 0)], [(1, 0, b)]),
              t(5, 2, "committed", [(f, 0)], [(1, 0, b), (1, 1, d)]),
              t(5, 3, "unknown", [(g, 1)], [(0, 2, f)]),
              t(5, 4, "unknown", [(h, 0)], [(1, 2, g)])):
        txns[x.key] = x
    rc = {0: [(0, a), (2, f)], 1: [(0, b), (1, d), (2, g)]}
    committed = {0: 3, 1: 2}
    return txns, rc, committed, (a, b, c, d, e, f, g, h)


def test_find_cycle():
    assert find_cycle({1, 2, 3}, {1: {2}, 2: {3}}) is None
    cyc = find_cycle({1, 2, 3, 4}, {1: {2}, 2: {3}, 3: {1}, 4: {1}})
    assert sorted(cyc) == [1, 2, 3], cyc
    assert find_cycle({1}, {1: {1}}) == [1]


def test_consume_transform_produce():
    txns, rc, committed, _ = ctp_history()
    v = []
    res = check_ctp(txns, rc, committed, v)
    assert v == [], v
    assert res["ctp_effective"] == 3 and res["ctp_edges"] == 4 and res["ctp_covered"] == 4, res

    # a record processed by two transactions that took effect
    txns, rc, committed, _ = ctp_history()
    txns[(5, 1)].outcome = "committed"
    v = []
    check_ctp(txns, rc, committed, v)
    expect("twice", v, "processed twice")

    # a record below the committed offset that no committed transaction read
    txns, rc, committed, _ = ctp_history()
    committed[1] = 3
    v = []
    check_ctp(txns, rc, committed, v)
    expect("skipped", v, "skipped")

    # a committed transaction read an aborted transaction's record (G1a)
    txns, rc, committed, vals = ctp_history()
    txns[(5, 0)].reads.append((0, 1, vals[2]))
    v = []
    check_ctp(txns, rc, committed, v)
    expect("G1a", v, "aborted read")

    # a committed transaction read a value that is not there at the end
    txns, rc, committed, _ = ctp_history()
    txns[(5, 2)].reads[1] = (1, 1, b"s1-t0.0-00000009")
    v = []
    check_ctp(txns, rc, committed, v)
    expect("ctp read", v, "the final read_committed log has")

    # a cycle of write-read dependencies: 0.0 -> 5.2 (b), 5.2 -> 0.0 (f)
    txns, rc, committed, vals = ctp_history()
    txns[(0, 0)].reads = [(0, 2, vals[5])]
    v = []
    check_ctp(txns, rc, committed, v)
    expect("G1c", v, "G1c")


if __name__ == "__main__":
    test_clean_history_passes()
    test_each_anomaly_is_reported()
    test_resend_under_a_new_epoch_is_an_allowed_anomaly()
    test_control_batches_are_not_workload_values()
    test_retention_starts()
    test_clean_transactional_history_passes()
    test_each_transactional_anomaly_is_reported()
    test_find_cycle()
    test_consume_transform_produce()
    print("nemesis checker self-test: 18 cases ok; transactional checker: 13 cases ok; "
          "consume-transform-produce checker: 6 cases ok")
