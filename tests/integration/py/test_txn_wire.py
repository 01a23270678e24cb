"""Kafka error codes of the transaction APIs, byte-level.

The coordinator (src/txn) answers with core codes (-CN_E*); kh_txn.c maps
them to Kafka's. This pins the codes a client sees for each condition,
including the per-version rule for a stale epoch: INVALID_PRODUCER_EPOCH
before AddPartitionsToTxn/AddOffsetsToTxn/TxnOffsetCommit/EndTxn v2,
PRODUCER_FENCED from v2 on. Classic (non-flexible) versions only, encoded
with kwire, apart from the C codec.
"""
import time

import pytest

import kwire
from ckhelp import create_topic

INIT_PRODUCER_ID, ADD_PARTITIONS, ADD_OFFSETS, END_TXN, TXN_OFFSET_COMMIT = 22, 24, 25, 26, 28

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_GROUP_ID = 24
INVALID_REQUEST = 42
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
OPERATION_NOT_ATTEMPTED = 55
PRODUCER_FENCED = 90


def init_pid(c, tid, timeout_ms=60000, ver=0):
    r = kwire.Reader(c.request(INIT_PRODUCER_ID, ver, kwire.string(tid) + kwire.i32(timeout_ms)))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def add_partitions(c, tid, pid, epoch, topics, ver=2):
    """topics: {name: [partition, ...]} -> {(name, partition): error}."""
    body = kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.i32(len(topics))
    for name, parts in topics.items():
        body += kwire.string(name) + kwire.i32(len(parts)) + b"".join(kwire.i32(p) for p in parts)
    r = kwire.Reader(c.request(ADD_PARTITIONS, ver, body))
    r.i32()
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            part = r.i32()
            out[(name, part)] = r.i16()
    return out


def add_offsets(c, tid, pid, epoch, group, ver=2):
    body = kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.string(group)
    r = kwire.Reader(c.request(ADD_OFFSETS, ver, body))
    r.i32()
    return r.i16()


def end_txn(c, tid, pid, epoch, commit, ver=2):
    body = kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.i8(1 if commit else 0)
    r = kwire.Reader(c.request(END_TXN, ver, body))
    r.i32()
    return r.i16()


def txn_offset_commit(c, tid, group, pid, epoch, topic, partition, offset, ver=2):
    """One partition; returns its error code."""
    p = kwire.i32(partition) + kwire.i64(offset)
    if ver >= 2:
        p += kwire.i32(-1)  # committed_leader_epoch
    p += kwire.string(None)  # metadata
    body = (kwire.string(tid) + kwire.string(group) + kwire.i64(pid) + kwire.i16(epoch) +
            kwire.i32(1) + kwire.string(topic) + kwire.i32(1) + p)
    r = kwire.Reader(c.request(TXN_OFFSET_COMMIT, ver, body))
    r.i32()
    assert r.i32() == 1
    assert r.string() == topic
    assert r.i32() == 1
    assert r.i32() == partition
    return r.i16()


def init_until_ready(c, tid, deadline_s=10.0):
    """InitProducerId until it stops answering CONCURRENT_TRANSACTIONS."""
    end = time.time() + deadline_s
    while True:
        err, pid, epoch = init_pid(c, tid)
        if err != CONCURRENT_TRANSACTIONS or time.time() > end:
            return err, pid, epoch
        time.sleep(0.05)


@pytest.mark.cairn_timeout(60)
def test_txn_error_codes_on_the_wire(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    with kwire.Conn(broker.bootstrap) as c:
        # InitProducerId argument errors.
        assert init_pid(c, "")[0] == INVALID_REQUEST
        assert init_pid(c, "w-" + topic, timeout_ms=0)[0] == INVALID_TRANSACTION_TIMEOUT
        assert init_pid(c, "w-" + topic, timeout_ms=900001)[0] == INVALID_TRANSACTION_TIMEOUT
        err, pid, epoch = init_pid(c, "w-" + topic)
        assert (err, epoch) == (NONE, 0) and pid >= 0
        tid = "w-" + topic

        # Nothing ongoing; unknown id; other producer id; empty group.
        assert end_txn(c, tid, pid, epoch, True) == INVALID_TXN_STATE
        assert end_txn(c, "nope-" + topic, pid, epoch, True) == INVALID_PRODUCER_ID_MAPPING
        assert end_txn(c, tid, pid + 1, epoch, True) == INVALID_PRODUCER_ID_MAPPING
        assert end_txn(c, "", pid, epoch, True) == INVALID_REQUEST
        assert add_offsets(c, tid, pid, epoch, "") == INVALID_GROUP_ID

        # An unknown partition: nothing is added.
        assert add_partitions(c, tid, pid, epoch, {topic: [0, 7]}) == {
            (topic, 0): OPERATION_NOT_ATTEMPTED, (topic, 7): UNKNOWN_TOPIC_OR_PARTITION}
        assert add_partitions(c, tid, pid, epoch, {topic: [0]}) == {(topic, 0): NONE}
        # The group was not added to the transaction.
        assert txn_offset_commit(c, tid, "g-" + topic, pid, epoch, topic, 0, 5) == INVALID_TXN_STATE
        assert add_offsets(c, tid, pid, epoch, "g-" + topic) == NONE
        assert txn_offset_commit(c, tid, "g-" + topic, pid, epoch, topic, 0, 5) == NONE

        # A second producer fences the open transaction and retries.
        assert init_pid(c, tid)[0] == CONCURRENT_TRANSACTIONS
        err, pid2, epoch2 = init_until_ready(c, tid)
        assert (err, pid2, epoch2) == (NONE, pid, epoch + 2)

        # The zombie: INVALID_PRODUCER_EPOCH before v2, PRODUCER_FENCED from v2.
        for ver, code in ((0, INVALID_PRODUCER_EPOCH), (1, INVALID_PRODUCER_EPOCH),
                          (2, PRODUCER_FENCED)):
            assert end_txn(c, tid, pid, epoch, True, ver=ver) == code, ver
            assert add_offsets(c, tid, pid, epoch, "g-" + topic, ver=ver) == code, ver
            assert add_partitions(c, tid, pid, epoch, {topic: [0]}, ver=ver) == {
                (topic, 0): code}, ver
            assert txn_offset_commit(c, tid, "g-" + topic, pid, epoch, topic, 0, 6,
                                     ver=ver) == code, ver

        # The new producer goes on.
        assert add_partitions(c, tid, pid2, epoch2, {topic: [0]}) == {(topic, 0): NONE}
        assert end_txn(c, tid, pid2, epoch2, False) == NONE
        # Retried EndTxn with the same outcome is fine, the other one is not.
        end = time.time() + 10
        while True:
            err = end_txn(c, tid, pid2, epoch2, False)
            if err != CONCURRENT_TRANSACTIONS or time.time() > end:
                break
            time.sleep(0.05)
        assert err == NONE
        assert end_txn(c, tid, pid2, epoch2, True) == INVALID_TXN_STATE
