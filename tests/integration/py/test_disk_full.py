"""Disk full: the data directory is a small tmpfs. Producing until it is full
gets KAFKA_STORAGE_ERROR (56); the broker stays up and serves reads; once
space is freed (a topic deleted) writes are accepted again; nothing
acknowledged is lost. Skips when this machine cannot mount a tmpfs (needs
root, or a sandbox that allows mount(2))."""
import os
import subprocess

import kwire
import pytest

import ckhelp

KAFKA_STORAGE_ERROR = 56
SIZE_MB = 8
CHUNK = 60 * 1024


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % SIZE_MB, "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a %d MiB tmpfs here (%s): disk-full test skipped"
                    % (SIZE_MB, (r.stderr or r.stdout).strip()))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def batch(tag, i, size):
    return kwire.build_record_batch([(b"%s-%d" % (tag, i), b"%s-%d|" % (tag, i) + b"v" * size, [], None)])


def produce(c, topic, tag, i, size=CHUNK):
    err, base, _ = kwire.produce_v3(c, topic, 0, batch(tag, i, size), acks=-1)
    return err, base


def values(b, topic):
    _, batches = kwire.fetch_all_batches(b.bootstrap, topic, 0)
    out = []
    for bt in batches:
        assert bt["crc_ok"]
        out += [(r["offset"], r["value"].split(b"|")[0]) for r in bt["records"]]
    return out


@pytest.mark.cairn_timeout(120)
def test_disk_full_storage_error_then_recovers(small_fs, broker_factory, topic_name):
    b = broker_factory({"log.segment.bytes": 1 << 20, "log.preallocate": "false"}, start=False)
    b.data_dir = str(small_fs / "data")
    os.makedirs(b.data_dir)
    b.start()
    keep, filler = topic_name("keep"), topic_name("fill")
    ckhelp.create_topic(b.bootstrap, keep, 1)
    ckhelp.create_topic(b.bootstrap, filler, 1)
    acked = {keep: [], filler: []}
    with kwire.Conn(b.bootstrap) as c:
        for i in range(10):
            err, base = produce(c, keep, b"keep", i, 1000)
            assert err == 0
            acked[keep].append((base, b"keep-%d" % i))
        full = None
        for i in range(2 * SIZE_MB * 1024 * 1024 // CHUNK):   # bounded: twice the fs size
            err, base = produce(c, filler, b"fill", i)
            if err == 0:
                acked[filler].append((base, b"fill-%d" % i))
                continue
            full = err
            break
        assert full == KAFKA_STORAGE_ERROR, "produce into a full disk: error %s" % full
        # the broker stays up; more writes keep failing cleanly
        for i in range(3):
            err, _ = produce(c, filler, b"more", i)
            assert err in (0, KAFKA_STORAGE_ERROR)
            if err == 0:
                acked[filler].append((_, b"more-%d" % i))
    assert b.alive()
    assert "no space" in b.log_text(10 ** 9)
    # reads are served, nothing acknowledged is missing, offsets gapless
    for t in (keep, filler):
        got = values(b, t)
        assert [o for o, _ in got] == list(range(len(got)))
        assert set(acked[t]) <= set(got), "acknowledged records missing in %s" % t
    # free space: delete the filler topic
    a = ckhelp.admin(b.bootstrap)
    for f in a.delete_topics([filler], operation_timeout=10).values():
        f.result(15)
    with kwire.Conn(b.bootstrap) as c:
        for i in range(10, 30):
            err, base = produce(c, keep, b"keep", i, 1000)
            assert err == 0, "produce after freeing space: error %d" % err
            acked[keep].append((base, b"keep-%d" % i))
    got = values(b, keep)
    assert got == sorted(acked[keep])
    # and it all survives a restart
    b.stop()
    b.start()
    assert values(b, keep) == sorted(acked[keep])
