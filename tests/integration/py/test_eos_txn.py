"""Transactions with real clients (issue 6, Tests section): confluent_kafka
(librdkafka 2.0.2) transactional producers, read_committed readers, zombie
fencing, the transaction timeout, transactional consumer offsets, and
kafka-python 2.0.2 (no transactions, reads uncommitted, does not filter
control records) reading a transactional topic.

All need the transaction coordinator (FindCoordinator key type 1,
InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn).
"""
import logging
import os
import struct
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

import ckhelp
import eos_ck
from ckhelp import create_topic

logging.getLogger("kafka").setLevel(logging.CRITICAL)

GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": "0",
                  "group.min.session.timeout.ms": "1000"}
FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
                KafkaError.INVALID_PRODUCER_ID_MAPPING}


@pytest.fixture(scope="module")
def broker_settings():
    return dict(GROUP_SETTINGS)


def txn_id(prefix="tx"):
    return "%s-%s" % (prefix, os.urandom(5).hex())


def values(recs):
    return [v for _, _, v in recs]


def vals(prefix, n, start=0):
    return ["%s-%d" % (prefix, i) for i in range(start, start + n)]


def ends(bootstrap, topic, partition=0):
    """(LSO, HW) of one partition, from ListOffsets read_committed / read_uncommitted."""
    return (eos_ck.end_offsets(bootstrap, topic, (partition,), "read_committed")[partition],
            eos_ck.end_offsets(bootstrap, topic, (partition,), "read_uncommitted")[partition])


# ---------------------------------------------------------------- basics

@pytest.mark.cairn_timeout(90)
def test_commit_abort_and_open_transaction_lso(broker, topic):
    b = broker.bootstrap
    create_topic(b, topic, 1)
    eos_ck.txn_write(b, topic, txn_id(), eos_ck.parse_plan(
        "commit:c1:10,abort:a1:10,plain:p:5,commit:c2:10,abort:a2:5"))
    data = vals("c1", 10) + vals("a1", 10) + vals("p", 5) + vals("c2", 10) + vals("a2", 5)
    committed = vals("c1", 10) + vals("p", 5) + vals("c2", 10)
    lso, hw = ends(b, topic)
    assert hw == len(data) + 4, "HW %d: want %d data records + 4 markers" % (hw, len(data))
    assert lso == hw, "no open transaction, but LSO %d != HW %d" % (lso, hw)
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == committed
    _, ru = eos_ck.read_all(b, topic, (0,), "read_uncommitted")
    assert values(ru[0]) == data
    # offsets: markers occupy one offset each, between the transactions
    offs = [o for o, _, _ in ru[0]]
    assert offs == list(range(0, 10)) + list(range(11, 21)) + list(range(22, 27)) + \
        list(range(27, 37)) + list(range(38, 43)), offs

    # an open transaction holds the LSO at its first offset
    p = eos_ck.txn_producer(b, txn_id())
    p.init_transactions(30)
    p.begin_transaction()
    for v in vals("open", 4):
        p.produce(topic, value=v.encode(), partition=0)
    p.flush(30)
    plain = eos_ck.idem_producer(b)
    plain.produce(topic, value=b"after-open", partition=0)
    assert plain.flush(30) == 0
    lso2, hw2 = ends(b, topic)
    assert (lso2, hw2) == (hw, hw + 5), "open txn from offset %d: LSO/HW %s" % (hw, (lso2, hw2))
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == committed, "read_committed reader passed the LSO"
    p.commit_transaction(30)
    lso3, hw3 = ends(b, topic)
    assert lso3 == hw3 == hw + 6, (lso3, hw3)
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == committed + vals("open", 4) + ["after-open"]


@pytest.mark.cairn_timeout(90)
def test_txn_offsets_visible_only_on_commit(broker, topic):
    """send_offsets_to_transaction: aborted offsets are dropped, committed ones stick."""
    b = broker.bootstrap
    create_topic(b, topic, 2)
    group = txn_id("txg")
    c = ckhelp.consumer(b, **{"group.id": group, "isolation.level": "read_committed"})
    try:
        meta = c.consumer_group_metadata()
        p = eos_ck.txn_producer(b, txn_id())
        p.init_transactions(30)

        def committed():
            got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)
            return {tp.partition: tp.offset for tp in got}

        start = committed()
        p.begin_transaction()
        p.produce(topic, value=b"x", partition=0)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 3)],
                                      meta, 30)
        p.abort_transaction(30)
        assert committed() == start, "aborted transactional offsets became visible"
        p.begin_transaction()
        p.produce(topic, value=b"y", partition=0)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 2)],
                                      meta, 30)
        p.commit_transaction(30)
        assert committed() == {0: 5, 1: 2}
    finally:
        c.close()


# ---------------------------------------------------------------- 4. kafka-python

@pytest.mark.cairn_timeout(90)
def test_kafka_python_reads_transactional_topic(broker, topic):
    b = broker.bootstrap
    create_topic(b, topic, 1)
    eos_ck.txn_write(b, topic, txn_id(), eos_ck.parse_plan(
        "commit:c1:10,abort:a1:10,plain:p:5,commit:c2:10,abort:a2:5"))
    data = vals("c1", 10) + vals("a1", 10) + vals("p", 5) + vals("c2", 10) + vals("a2", 5)
    lso, hw = ends(b, topic)
    assert hw == len(data) + 4

    c = KafkaConsumer(bootstrap_servers=b, group_id=None, enable_auto_commit=False,
                      api_version_auto_timeout_ms=10000, request_timeout_ms=15000,
                      reconnect_backoff_max_ms=1000)
    try:
        tp = KpTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        recs = []
        deadline = time.time() + 30
        while c.position(tp) < hw:
            assert time.time() < deadline, "kafka-python stuck at %d of %d (%d records)" % (
                c.position(tp), hw, len(recs))
            for rs in c.poll(timeout_ms=500, max_records=1000).values():
                recs.extend(rs)
    finally:
        c.close()
    # kafka-python reads uncommitted and yields control records like data
    # records (4-byte key: version 0 + type, 0 abort / 1 commit)
    offs = [r.offset for r in recs]
    assert offs == list(range(hw)), "offsets seen: %s" % offs
    ctrl = [r for r in recs if r.key is not None and len(r.key) == 4 and r.key[:2] == b"\0\0"]
    datas = [r for r in recs if r not in ctrl]
    assert [r.value.decode() for r in datas] == data
    assert [struct.unpack(">hh", r.key)[1] for r in ctrl] == [1, 0, 1, 0], \
        "control records (commit=1, abort=0) in log order"
    assert [r.offset for r in ctrl] == [10, 21, 37, 43]


# ---------------------------------------------------------------- 5. zombie fencing

@pytest.mark.cairn_timeout(120)
def test_zombie_producer_is_fenced(broker, topic):
    b = broker.bootstrap
    create_topic(b, topic, 2)
    tid = txn_id("zombie")
    p1 = eos_ck.txn_producer(b, tid)
    p1.init_transactions(30)
    p1.begin_transaction()
    for v in vals("z0", 5):
        p1.produce(topic, value=v.encode(), partition=0)
    p1.commit_transaction(30)
    # p1 opens a transaction and writes to partition 0, then a new instance
    # with the same transactional.id starts: it fences p1 and aborts its
    # open transaction
    p1.begin_transaction()
    for v in vals("z1", 5):
        p1.produce(topic, value=v.encode(), partition=0)
    assert p1.flush(30) == 0
    p2 = eos_ck.txn_producer(b, tid)
    t0 = time.time()
    p2.init_transactions(60)
    init_s = time.time() - t0
    # zombie: writes to a partition already in its transaction (Produce with
    # the old epoch) and to a new one (AddPartitionsToTxn with the old epoch)
    failed = []
    try:
        for v in vals("z2", 4):
            p1.produce(topic, value=v.encode(), partition=0,
                       on_delivery=lambda err, msg: err and failed.append(err))
        for v in vals("z2", 4, start=4):
            p1.produce(topic, value=v.encode(), partition=1,
                       on_delivery=lambda err, msg: err and failed.append(err))
    except KafkaException as e:
        # the fenced AddPartitionsToTxn may have been answered already: the
        # producer is then in its fatal state and refuses further records
        pe = e.args[0]
        assert pe.fatal() or pe.code() in FENCED_CODES, "zombie produce failed with %s" % pe
    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(30)
    err = ei.value.args[0]
    assert err.fatal() or err.code() in FENCED_CODES, "zombie commit failed, but with %s" % err
    try:
        p1.flush(10)
    except KafkaException as e:
        # librdkafka may raise the fatal fencing error (from the fenced
        # AddPartitionsToTxn) here rather than from commit_transaction,
        # depending on which of its threads sees the answer first.
        fe = e.args[0]
        assert fe.fatal() or fe.code() in FENCED_CODES, "zombie flush failed with %s" % fe
    # the new instance works normally
    p2.begin_transaction()
    for i, v in enumerate(vals("n", 6)):
        p2.produce(topic, value=v.encode(), partition=i % 2)
    p2.commit_transaction(30)

    _, rc = eos_ck.read_all(b, topic, (0, 1), "read_committed")
    assert values(rc[0]) == vals("z0", 5) + ["n-0", "n-2", "n-4"], "partition 0: %s" % rc[0]
    assert values(rc[1]) == ["n-1", "n-3", "n-5"], "partition 1: %s" % rc[1]
    _, ru = eos_ck.read_all(b, topic, (0, 1), "read_uncommitted")
    everything = values(ru[0]) + values(ru[1])
    assert not [v for v in everything if v.startswith("z2")], \
        "broker appended the fenced producer's writes: %s" % everything
    assert values(ru[0])[:10] == vals("z0", 5) + vals("z1", 5)
    lso, hw = ends(b, topic, 0)
    assert lso == hw
    assert init_s < 30, init_s


@pytest.mark.cairn_timeout(90)
def test_fenced_while_idle_then_zombie_begins(broker, topic):
    """Fencing with no open transaction: the zombie's next transaction fails."""
    b = broker.bootstrap
    create_topic(b, topic, 1)
    tid = txn_id("zidle")
    p1 = eos_ck.txn_producer(b, tid)
    p1.init_transactions(30)
    p2 = eos_ck.txn_producer(b, tid)
    p2.init_transactions(30)
    p1.begin_transaction()  # local state only
    p1.produce(topic, value=b"zombie", partition=0)
    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(30)
    err = ei.value.args[0]
    assert err.fatal() or err.code() in FENCED_CODES, err
    p2.begin_transaction()
    p2.produce(topic, value=b"live", partition=0)
    p2.commit_transaction(30)
    _, ru = eos_ck.read_all(b, topic, (0,), "read_uncommitted")
    assert values(ru[0]) == ["live"]


# ---------------------------------------------------------------- 6. transaction timeout

@pytest.mark.cairn_timeout(120)
def test_transaction_timeout_aborts(broker_factory, topic):
    # check for timed-out transactions every 200 ms (Kafka's default: 10 s)
    bk = broker_factory(dict(GROUP_SETTINGS, **{
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}))
    b = bk.bootstrap
    create_topic(b, topic, 1)
    plain = eos_ck.idem_producer(b)
    for v in vals("pre", 3):
        plain.produce(topic, value=v.encode(), partition=0)
    assert plain.flush(30) == 0
    tid = txn_id("tmo")
    # librdkafka's minimum transaction.timeout.ms is 1000; the broker's
    # transaction.max.timeout.ms (default 900000) is the upper bound
    p = eos_ck.txn_producer(b, tid, **{"transaction.timeout.ms": 2000, "socket.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    t0 = time.time()
    for v in vals("open", 10):
        p.produce(topic, value=v.encode(), partition=0)
    assert p.flush(30) == 0
    for v in vals("post", 5):
        plain.produce(topic, value=v.encode(), partition=0)
    assert plain.flush(30) == 0
    lso, hw = ends(b, topic)
    if time.time() - t0 < 1.5:  # surely before the timeout
        assert (lso, hw) == (3, 18), "open transaction at 3..12: LSO/HW %s" % ((lso, hw),)
    # the broker aborts it: an abort marker is appended, the LSO reaches the HW
    deadline = time.time() + 20
    while (lso, hw) != (19, 19):
        assert time.time() < deadline, "transaction not aborted %.1fs after it began: " \
            "LSO/HW %s, want (19, 19)" % (time.time() - t0, (lso, hw))
        time.sleep(0.2)
        lso, hw = ends(b, topic)
    aborted_after = time.time() - t0
    assert aborted_after >= 1.5, "aborted after %.1fs, timeout is 2s" % aborted_after
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == vals("pre", 3) + vals("post", 5)
    _, ru = eos_ck.read_all(b, topic, (0,), "read_uncommitted")
    assert values(ru[0]) == vals("pre", 3) + vals("open", 10) + vals("post", 5)
    # the timed-out producer cannot commit any more
    with pytest.raises(KafkaException):
        p.commit_transaction(30)
    lso, hw = ends(b, topic)
    assert lso == hw
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == vals("pre", 3) + vals("post", 5), "timed-out data became visible"
    # the transactional.id is usable again
    p2 = eos_ck.txn_producer(b, tid)
    p2.init_transactions(30)
    p2.begin_transaction()
    p2.produce(topic, value=b"again", partition=0)
    p2.commit_transaction(30)
    _, rc = eos_ck.read_all(b, topic, (0,), "read_committed")
    assert values(rc[0]) == vals("pre", 3) + vals("post", 5) + ["again"]
    bk.stop()
