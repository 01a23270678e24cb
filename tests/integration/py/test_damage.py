"""Torn and damaged files: with the broker stopped, damage the files of a
partition, restart, and check what recovery did (its log line) and that
everything before the damage is served, nothing damaged is served, and the
offsets stay gapless.

Layout (ARCHITECTURE.md "File formats"): <data>/<topic>-0/<20-digit base>.log,
.index, .timeindex. Segments are kept small (log.segment.bytes) so a
partition has several.
"""
import os
import struct

import kwire
import pytest

SEG_BYTES = 4096
N_BATCHES = 40
SETTINGS = {"log.segment.bytes": SEG_BYTES, "log.index.interval.bytes": 256,
            "num.partitions": 1}


def produce_batches(b, topic, n=N_BATCHES, start=0):
    """n batches of 3 records each, acks=all; returns their base offsets."""
    bases = []
    with kwire.Conn(b.bootstrap) as c:
        for i in range(start, start + n):
            recs = [(b"k%d-%d" % (i, j), b"value-%d-%d-" % (i, j) + b"x" * 60, [], None)
                    for j in range(3)]
            err, base, _ = kwire.produce_v3(c, topic, 0, kwire.build_record_batch(recs), acks=-1)
            if err == 3:  # auto-create on first use: metadata first
                kwire_metadata(c, topic)
                err, base, _ = kwire.produce_v3(c, topic, 0, kwire.build_record_batch(recs), acks=-1)
            assert err == 0, "produce error %d" % err
            bases.append(base)
    return bases


def kwire_metadata(c, topic):
    c.request(3, 1, kwire.i32(1) + kwire.string(topic))


def part_dir(b, topic):
    return os.path.join(b.data_dir, "%s-0" % topic)


def segments(b, topic):
    d = part_dir(b, topic)
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def file_batches(path):
    """[(pos, base, last, total)] of the batches in a segment file."""
    data = open(path, "rb").read()
    out = []
    p = 0
    while p + 61 <= len(data):
        base, blen = struct.unpack(">qi", data[p:p + 12])
        if blen < 49 or p + 12 + blen > len(data):
            break
        lod = struct.unpack(">i", data[p + 23:p + 27])[0]
        out.append((p, base, base + lod, 12 + blen))
        p += 12 + blen
    return out


def read_all(b, topic, start=0):
    """Fetch every record from start: -> list of (offset, value), checks CRCs and gaps."""
    out = []
    off = start
    with kwire.Conn(b.bootstrap) as c:
        while True:
            res = kwire.fetch_v4(c, topic, 0, off, max_wait_ms=0)
            assert res["error"] == 0, "fetch at %d: error %d" % (off, res["error"])
            batches = kwire.parse_record_batches(res["records"])
            for bt in batches:
                assert bt["crc_ok"], "served a batch with a bad CRC at %d" % bt["base_offset"]
                for r in bt["records"]:
                    if r["offset"] >= off:
                        assert r["offset"] == off, "gap: %d after %d" % (r["offset"], off)
                        out.append((r["offset"], r["value"]))
                        off += 1
            if off >= res["high_watermark"]:
                return out, res["high_watermark"]
            assert batches, "no progress at %d (hw %d)" % (off, res["high_watermark"])


def restart_log(b):
    """Start b and return the log text of this start only."""
    mark = len(b.log_text(10 ** 9))
    b.start()
    return b.log_text(10 ** 9)[mark:]


@pytest.fixture
def loaded(broker_factory, topic):
    b = broker_factory(SETTINGS)
    produce_batches(b, topic)
    before, hw = read_all(b, topic)
    assert hw == 3 * N_BATCHES
    assert len(segments(b, topic)) >= 3
    b.stop()
    return b, topic, before


def test_truncated_active_segment(loaded):
    b, topic, before = loaded
    seg = os.path.join(part_dir(b, topic), segments(b, topic)[-1])
    bt = file_batches(seg)
    assert len(bt) >= 2
    pos, base, last, total = bt[-1]
    os.truncate(seg, pos + total // 2)        # torn last batch
    log = restart_log(b)
    assert "recovery truncated torn tail" in log
    after, hw = read_all(b, topic)
    assert hw == base
    assert after == before[:base]
    # appends continue at the cut, without a gap
    assert produce_batches(b, topic, 1, start=100) == [base]


def test_garbled_active_segment_tail_and_indexes(loaded):
    b, topic, before = loaded
    d = part_dir(b, topic)
    name = segments(b, topic)[-1]
    seg = os.path.join(d, name)
    bt = file_batches(seg)
    pos, base, last, total = bt[-1]
    with open(seg, "r+b") as f:               # garbage over the last batch's body
        f.seek(pos + 30)
        f.write(os.urandom(total - 30))
    stem = name[:-4]
    with open(os.path.join(d, stem + ".index"), "ab") as f:
        f.write(b"\xff\xff\xff\xff\x7f\xff")   # torn / bogus entry
    with open(os.path.join(d, stem + ".timeindex"), "r+b") as f:
        f.truncate(5)
    log = restart_log(b)
    assert "recovery truncated torn tail" in log
    after, hw = read_all(b, topic)
    assert hw == base and after == before[:base]
    for off in range(0, hw, 7):               # index lookups land on the right batch
        got, _ = read_all(b, topic, off)
        assert got == before[off:base]


def test_deleted_and_damaged_index_of_old_segment(loaded):
    b, topic, before = loaded
    d = part_dir(b, topic)
    segs = segments(b, topic)
    os.remove(os.path.join(d, segs[0][:-4] + ".index"))
    with open(os.path.join(d, segs[1][:-4] + ".index"), "r+b") as f:
        f.write(b"\x00\x00\x7f\xff\x00\x7f\xff\xff")  # entry pointing past the file
    log = restart_log(b)
    assert "recovery rebuilding index dir=%s base=%d" % (d, int(segs[0][:-4])) in log
    assert "recovery rebuilding index dir=%s base=%d" % (d, int(segs[1][:-4])) in log
    assert os.path.exists(os.path.join(d, segs[0][:-4] + ".index"))
    after, hw = read_all(b, topic)
    assert after == before
    for off in range(0, hw, 5):
        got, _ = read_all(b, topic, off)
        assert got == before[off:]


def test_half_written_segment_from_a_roll(loaded):
    b, topic, before = loaded
    d = part_dir(b, topic)
    end = len(before)
    last_seg = os.path.join(d, segments(b, topic)[-1])
    data = open(last_seg, "rb").read()
    first = file_batches(last_seg)[0]
    # a new segment at the log end holding the first half of a batch
    torn = bytearray(data[first[0]:first[0] + first[3] // 2])
    torn[0:8] = struct.pack(">q", end)
    with open(os.path.join(d, "%020d.log" % end), "wb") as f:
        f.write(torn)
    open(os.path.join(d, "%020d.index" % end), "wb").close()
    log = restart_log(b)
    assert "recovery truncated torn tail dir=%s segment=%020d.log" % (d, end) in log
    after, hw = read_all(b, topic)
    assert hw == end and after == before
    assert produce_batches(b, topic, 1, start=100) == [end]
    got, _ = read_all(b, topic)
    assert got[:end] == before and len(got) == end + 3


def test_lost_tail_of_old_segment_before_a_newer_one(loaded):
    """Power loss soon after a roll: the old segment's unsynced tail is gone
    but the new segment's file survived. The offsets after the hole cannot
    have been acknowledged as durable; recovery removes the later segments."""
    b, topic, before = loaded
    d = part_dir(b, topic)
    segs = segments(b, topic)
    prev = os.path.join(d, segs[-2])
    pos, base, last, total = file_batches(prev)[-1]
    os.truncate(prev, pos)
    log = restart_log(b)
    assert "recovery removed segment after a gap dir=%s base=%d" % (d, int(segs[-1][:-4])) in log
    after, hw = read_all(b, topic)
    assert hw == base and after == before[:base]
    assert produce_batches(b, topic, 1, start=100) == [base]


def test_flipped_bytes_in_old_segment_never_served(loaded):
    b, topic, before = loaded
    d = part_dir(b, topic)
    segs = segments(b, topic)
    old = os.path.join(d, segs[0])
    bt = file_batches(old)
    assert len(bt) >= 4
    pos, base, last, total = bt[1]            # an early batch: before the last index entry
    with open(old, "r+b") as f:
        f.seek(pos + total - 10)
        c = f.read(1)
        f.seek(pos + total - 10)
        f.write(bytes([c[0] ^ 0x5A]))
    b.start()
    with kwire.Conn(b.bootstrap) as c:
        # from the damaged batch: an error, no data
        res = kwire.fetch_v4(c, topic, 0, base, max_wait_ms=0)
        assert res["error"] == 56, "damaged batch fetched with error %d" % res["error"]
        assert not res["records"]
        # from before it: the good batches only
        res = kwire.fetch_v4(c, topic, 0, 0, max_wait_ms=0)
        assert res["error"] == 0
        got = kwire.parse_record_batches(res["records"])
        assert got and all(x["crc_ok"] for x in got)
        assert got[-1]["base_offset"] + got[-1]["last_offset_delta"] == base - 1
        # after it: everything else, intact and gapless
    after, hw = read_all(b, topic, last + 1)
    assert after == before[last + 1:]
    assert "corrupt batch not served" in b.log_text(10 ** 9)
    # a restart that scans the segment (its index is gone) reports it at open
    b.stop()
    os.remove(os.path.join(d, segs[0][:-4] + ".index"))
    log = restart_log(b)
    assert "recovery found 1 corrupt batch(es) dir=%s segment=%s" % (d, segs[0][:-4]) in log
    with kwire.Conn(b.bootstrap) as c:
        assert kwire.fetch_v4(c, topic, 0, base, max_wait_ms=0)["error"] == 56
    after, hw = read_all(b, topic, last + 1)
    assert after == before[last + 1:] and hw == len(before)
