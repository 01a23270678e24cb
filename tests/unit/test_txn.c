/* Unit tests for the transaction coordinator (src/txn): producer ids unique
 * across restarts, epoch bumps and KIP-360 checks, fencing of an Ongoing
 * transaction, state errors of EndTxn/AddPartitions, markers written to the
 * partitions (producer state: open transactions, LSO, aborted index),
 * transactional offsets, crash recovery of PrepareCommit, timeouts and
 * compaction. Real broker and loop on a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/pstate.h"
#include "group/offsets.h"
#include "record/batch.h"
#include "net/loop.h"
#include "txn/txn.h"
#include "util/common.h"
#include "util/crc32c.h"

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    goff_store *offs;
    txn_coord *c;
} fixture;

static void fx_open(fixture *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(goff_open(f->b, &f->offs), 0);
    assert_int_equal(txn_open(f->b, f->offs, &f->c), 0);
}

static void fx_close(fixture *f)
{
    txn_close(f->c);
    goff_close(f->offs);
    broker_close(f->b);
    loop_free(f->l);
    f->c = NULL;
    f->offs = NULL;
    f->b = NULL;
    f->l = NULL;
}

static void fx_reopen(fixture *f)
{
    fx_close(f);
    fx_open(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "txn");
    fx_open(f);
    char msg[128];
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t"), 2, NULL, 0, 0, msg, sizeof(msg), NULL),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->b)
        fx_close(f);
    but_rm_rf(f->dir);
    config_fini(&f->cfg);
    free(f);
    return 0;
}

static cn_str K(const char *s)
{
    return cn_str_c(s);
}

#define NULL_STR ((cn_str){NULL, -1})

/* One operation's answer. */
typedef struct res {
    int fired;
    int err;                        /* 0 or -CN_E* */
    int64_t pid;
    int16_t epoch;
} res;

static void on_res(void *arg, int err, int64_t pid, int16_t epoch)
{
    res *r = arg;
    r->fired++;
    r->err = err;
    r->pid = pid;
    r->epoch = epoch;
}

static void nop_timer(loop_timer *t)
{
    (void)t;
}

static void drive(fixture *f, int (*done)(void *), void *arg)
{
    loop_timer tm;
    loop_timer_init(&tm, nop_timer, NULL);
    for (int i = 0; i < 500 && !done(arg); i++) {
        loop_timer_start(f->l, &tm, 10);
        loop_run_once(f->l, 10);
    }
    loop_timer_stop(f->l, &tm);
}

static int res_fired(void *arg)
{
    return ((res *)arg)->fired;
}

static int not_completing(void *arg)
{
    return !txn_completing(((fixture *)arg)->c);
}

/* Wait for r, check it fired once with err. */
static void expect(fixture *f, res *r, int err)
{
    drive(f, res_fired, r);
    assert_int_equal(r->fired, 1);
    assert_int_equal(r->err, err);
}

static res init_pid(fixture *f, const char *tid, int32_t timeout, int64_t pid, int16_t epoch)
{
    res r = {0};
    txn_init_producer(f->c, tid ? K(tid) : NULL_STR, timeout, pid, epoch, on_res, &r);
    drive(f, res_fired, &r);
    assert_int_equal(r.fired, 1);
    return r;
}

static int add_parts(fixture *f, const char *tid, res *p, int n)
{
    txn_tp tps[2] = {{K("t"), 0}, {K("t"), 1}};
    res r = {0};
    txn_add_partitions(f->c, K(tid), p->pid, p->epoch, tps, n, on_res, &r);
    drive(f, res_fired, &r);
    assert_int_equal(r.fired, 1);
    return r.err;
}

static int end_txn(fixture *f, const char *tid, int64_t pid, int16_t epoch, int commit)
{
    res r = {0};
    txn_end(f->c, K(tid), pid, epoch, commit, on_res, &r);
    drive(f, res_fired, &r);
    assert_int_equal(r.fired, 1);
    if (r.err == 0)
        drive(f, not_completing, f);
    return r.err;
}

static txn_state state_of(fixture *f, const char *tid)
{
    txn_info ti;
    assert_int_equal(txn_describe(f->c, K(tid), &ti), 0);
    return ti.state;
}

/* Produce one transactional (or not) batch of one record to t-part. */
static int produce(fixture *f, int32_t part, int64_t pid, int16_t epoch, int32_t seq,
                       int transactional, int64_t *base)
{
    batch_build_rec rec = {"k", 1, "v", 1, loop_wall_ms()};
    uint8_t *b;
    size_t len;
    assert_int_equal(batch_build(&rec, 1, 0, 0, &b, &len), 0);
    b[21] = 0;
    b[22] = transactional ? BATCH_ATTR_TRANSACTIONAL : 0;
    for (int i = 0; i < 8; i++)
        b[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
    b[51] = (uint8_t)((uint16_t)epoch >> 8);
    b[52] = (uint8_t)epoch;
    for (int i = 0; i < 4; i++)
        b[53 + i] = (uint8_t)((uint32_t)seq >> (24 - 8 * i));
    uint32_t crc = crc32c(0, b + 21, len - 21);
    for (int i = 0; i < 4; i++)
        b[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
    partition *p = broker_partition(f->b, K("t"), part);
    int err = broker_produce(f->b, p, b, len, base);
    free(b);
    return err;
}

static partition *tp(fixture *f, int32_t part)
{
    return broker_partition(f->b, K("t"), part);
}

static void count_aborted(void *arg, const pst_aborted *a)
{
    (void)a;
    (*(int *)arg)++;
}

/* Tests ------------------------------------------------------------------- */

static void test_pid_unique_across_restarts(void **state)
{
    fixture *f = *state;
    int64_t seen[12];
    int n = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            res r = init_pid(f, NULL, 0, -1, -1);
            assert_int_equal(r.err, 0);
            assert_int_equal(r.epoch, 0);
            for (int j = 0; j < n; j++)
                assert_true(seen[j] != r.pid);
            seen[n++] = r.pid;
        }
        res t = init_pid(f, round == 0 ? "a" : round == 1 ? "b" : "c", 60000, -1, -1);
        assert_int_equal(t.err, 0);
        for (int j = 0; j < n; j++)
            assert_true(seen[j] != t.pid);
        seen[n++] = t.pid;
        fx_reopen(f);
    }
    /* Ids come from persisted blocks: a restart starts a new block. */
    assert_true(seen[4] >= TXN_PID_BLOCK);
    assert_true(seen[8] >= 2 * TXN_PID_BLOCK);
}

static void test_init_epoch_bump_and_kip360(void **state)
{
    fixture *f = *state;
    res a = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.epoch, 0);
    res b = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(b.pid, a.pid);
    assert_int_equal(b.epoch, 1);
    /* KIP-360: the current producer bumps its own epoch. */
    res c = init_pid(f, "a", 60000, b.pid, 1);
    assert_int_equal(c.err, 0);
    assert_int_equal(c.epoch, 2);
    /* Retry of that bump: same answer, no bump. */
    res d = init_pid(f, "a", 60000, b.pid, 1);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.epoch, 2);
    /* A fenced epoch and a foreign pid. */
    assert_int_equal(init_pid(f, "a", 60000, b.pid, 0).err, -CN_EFENCED);
    assert_int_equal(init_pid(f, "a", 60000, b.pid + 77, 2).err, -CN_EFENCED);
    /* Argument errors. */
    assert_int_equal(init_pid(f, "a", 900001, -1, -1).err, -CN_ETXNTIMEOUT);
    assert_int_equal(init_pid(f, "a", 0, -1, -1).err, -CN_ETXNTIMEOUT);
    assert_int_equal(init_pid(f, "", 1000, -1, -1).err, -CN_EINVAL);
    /* Survives a restart. */
    fx_reopen(f);
    res e = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(e.pid, a.pid);
    assert_int_equal(e.epoch, 3);
}

static void test_commit_writes_markers(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 2), 0);
    assert_int_equal(state_of(f, "a"), TXN_ONGOING);
    int64_t base;
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 0, 1, &base), 0);
    assert_int_equal(base, 0);
    assert_int_equal(produce(f, 1, p.pid, p.epoch, 0, 1, &base), 0);
    assert_int_equal(broker_lso(tp(f, 0)), 0);
    assert_true(pst_txn_open(tp(f, 0)->ps, p.pid));
    /* Adding known partitions again changes nothing. */
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), 0);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_COMMIT);
    for (int i = 0; i < 2; i++) {
        partition *x = tp(f, i);
        assert_int_equal(log_end_offset(x->log), 2); /* record + COMMIT marker */
        assert_int_equal(broker_lso(x), 2);
        assert_false(pst_txn_open(x->ps, p.pid));
        assert_true(log_durable_offset(x->log) >= 2);
        int n = 0;
        pst_aborted_in(x->ps, 0, 2, count_aborted, &n);
        assert_int_equal(n, 0);
    }
    txn_info ti;
    assert_int_equal(txn_describe(f->c, K("a"), &ti), 0);
    assert_int_equal(ti.n_parts, 0);
    /* Retried EndTxn with the same outcome is fine, the other one is not. */
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), 0);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 0), -CN_ETXNSTATE);
    /* Next transaction on the same producer. */
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 1, 1, &base), 0);
    assert_int_equal(base, 2);
    assert_int_equal(broker_lso(tp(f, 0)), 2);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 0), 0);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_ABORT);
    assert_int_equal(broker_lso(tp(f, 0)), 4);
    int n = 0;
    pst_aborted_in(tp(f, 0)->ps, 0, 4, count_aborted, &n);
    assert_int_equal(n, 1);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 0), 0);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), -CN_ETXNSTATE);
}

static void test_state_errors(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    /* Nothing ongoing. */
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), -CN_ETXNSTATE);
    /* Unknown id, wrong pid, old or newer epoch. */
    assert_int_equal(end_txn(f, "zz", p.pid, p.epoch, 1), -CN_EPIDMAP);
    assert_int_equal(end_txn(f, "a", p.pid + 1, p.epoch, 1), -CN_EPIDMAP);
    res old = p;
    p = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(end_txn(f, "a", old.pid, old.epoch, 1), -CN_EFENCED);
    assert_int_equal(add_parts(f, "a", &old, 1), -CN_EFENCED);
    res zz = {0, 0, p.pid, 5};
    assert_int_equal(add_parts(f, "zz", &zz, 1), -CN_EPIDMAP);
    /* While PrepareCommit is not complete: -CN_EBUSY (CONCURRENT_TRANSACTIONS). */
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    res r = {0};
    txn_end(f->c, K("a"), p.pid, p.epoch, 1, on_res, &r);
    assert_int_equal(state_of(f, "a"), TXN_PREPARE_COMMIT);
    res r2 = {0}, r3 = {0}, r4 = {0};
    txn_end(f->c, K("a"), p.pid, p.epoch, 1, on_res, &r2);
    txn_end(f->c, K("a"), p.pid, p.epoch, 0, on_res, &r3);
    txn_init_producer(f->c, K("a"), 1000, -1, -1, on_res, &r4);
    expect(f, &r2, -CN_EBUSY);
    expect(f, &r3, -CN_ETXNSTATE);
    expect(f, &r4, -CN_EBUSY);
    expect(f, &r, 0);
    drive(f, not_completing, f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_COMMIT);
}

/* Argument errors and Prepare* answers of the calls that test_state_errors
 * leaves out, as the core codes the Kafka handlers map. */
static void test_argument_and_busy_errors(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    /* Empty transactional id (a null one is an idempotent producer). */
    assert_int_equal(end_txn(f, "", p.pid, p.epoch, 1), -CN_EINVAL);
    assert_int_equal(add_parts(f, "", &p, 1), -CN_EINVAL);
    goff_commit_item it = {K("in"), 0, 1, -1, NULL_STR, -1};
    res r = {0};
    txn_offset_commit(f->c, K(""), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, -CN_EINVAL);
    /* Empty group id. */
    r = (res){0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K(""), on_res, &r);
    expect(f, &r, -CN_EBADGROUP);
    r = (res){0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, NULL_STR, on_res, &r);
    expect(f, &r, -CN_EBADGROUP);
    /* While PrepareCommit is not complete, nothing joins the transaction. */
    r = (res){0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K("g"), on_res, &r);
    expect(f, &r, 0);
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    res e = {0}, r1 = {0}, r2 = {0}, r3 = {0};
    txn_end(f->c, K("a"), p.pid, p.epoch, 1, on_res, &e);
    assert_int_equal(state_of(f, "a"), TXN_PREPARE_COMMIT);
    txn_tp tps[1] = {{K("t"), 1}};
    txn_add_partitions(f->c, K("a"), p.pid, p.epoch, tps, 1, on_res, &r1);
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K("g2"), on_res, &r2);
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r3);
    expect(f, &r1, -CN_EBUSY);
    expect(f, &r2, -CN_EBUSY);
    expect(f, &r3, -CN_EBUSY);
    expect(f, &e, 0);
    drive(f, not_completing, f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_COMMIT);
    /* Complete: TxnOffsetCommit needs a new transaction first. */
    r = (res){0};
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, -CN_ETXNSTATE);
}

static void test_init_fences_ongoing(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    int64_t base;
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 0, 1, &base), 0);
    /* A second producer with the same id: the open transaction is aborted
     * with a bumped epoch; the new producer retries. */
    res q = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(q.err, -CN_EBUSY);
    drive(f, not_completing, f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_ABORT);
    q = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(q.err, 0);
    assert_int_equal(q.pid, p.pid);
    assert_int_equal(q.epoch, p.epoch + 2);
    /* The partition saw the ABORT marker with the fencing epoch. */
    assert_int_equal(broker_lso(tp(f, 0)), 2);
    int n = 0;
    pst_aborted_in(tp(f, 0)->ps, 0, 2, count_aborted, &n);
    assert_int_equal(n, 1);
    assert_int_equal(pst_get(tp(f, 0)->ps, p.pid)->epoch, p.epoch + 1);
    /* The zombie is fenced everywhere. */
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 1, 1, &base), -CN_EEPOCH);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), -CN_EFENCED);
    assert_int_equal(add_parts(f, "a", &p, 1), -CN_EFENCED);
    assert_int_equal(add_parts(f, "a", &q, 1), 0);
}

static void test_txn_offsets(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    goff_commit_item it = {K("in"), 3, 42, 1, K("md"), -1};
    res r = {0};
    /* Group not added yet. */
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, -CN_ETXNSTATE);
    r = (res){0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K("g"), on_res, &r);
    expect(f, &r, 0);
    assert_int_equal(state_of(f, "a"), TXN_ONGOING);
    r = (res){0};
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, 0);
    assert_true(txn_offsets_pending(f->c, K("g"), K("in"), 3));
    assert_false(txn_offsets_pending(f->c, K("g"), K("in"), 2));
    assert_null(goff_get(f->offs, K("g"), K("in"), 3));
    /* Aborted: dropped. */
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 0), 0);
    assert_null(goff_get(f->offs, K("g"), K("in"), 3));
    assert_false(txn_offsets_pending(f->c, K("g"), K("in"), 3));
    /* Committed: visible, durable. */
    r = (res){0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K("g"), on_res, &r);
    expect(f, &r, 0);
    r = (res){0};
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, 0);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), 0);
    const goff_entry *e = goff_get(f->offs, K("g"), K("in"), 3);
    assert_non_null(e);
    assert_int_equal(e->offset, 42);
    assert_string_equal(e->metadata, "md");
    fx_reopen(f);
    assert_int_equal(goff_get(f->offs, K("g"), K("in"), 3)->offset, 42);
}

static void test_recover_prepare_commit(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 2), 0);
    res r = {0};
    txn_add_offsets(f->c, K("a"), p.pid, p.epoch, K("g"), on_res, &r);
    expect(f, &r, 0);
    goff_commit_item it = {K("in"), 0, 7, -1, NULL_STR, -1};
    r = (res){0};
    txn_offset_commit(f->c, K("a"), K("g"), p.pid, p.epoch, &it, 1, on_res, &r);
    expect(f, &r, 0);
    int64_t base;
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 0, 1, &base), 0);
    assert_int_equal(produce(f, 1, p.pid, p.epoch, 0, 1, &base), 0);
    /* PrepareCommit reaches the disk, then the broker stops before the
     * coordinator hears of it: no marker was written. */
    r = (res){0};
    txn_end(f->c, K("a"), p.pid, p.epoch, 1, on_res, &r);
    assert_int_equal(r.fired, 0);
    assert_int_equal(log_partition_sync_now(txn_partition(f->c)->log), 0);
    assert_int_equal(log_end_offset(tp(f, 0)->log), 1);
    fx_reopen(f);
    /* Recovery completes the commit. */
    drive(f, not_completing, f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_COMMIT);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(log_end_offset(tp(f, i)->log), 2);
        assert_int_equal(broker_lso(tp(f, i)), 2);
        int n = 0;
        pst_aborted_in(tp(f, i)->ps, 0, 2, count_aborted, &n);
        assert_int_equal(n, 0);
    }
    assert_int_equal(goff_get(f->offs, K("g"), K("in"), 0)->offset, 7);
    /* The producer goes on after its retried EndTxn. */
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), 0);
    fx_reopen(f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_COMMIT);
    assert_int_equal(log_end_offset(tp(f, 0)->log), 2);
}

static void test_recover_ongoing_then_timeout(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 100, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    int64_t base;
    assert_int_equal(produce(f, 0, p.pid, p.epoch, 0, 1, &base), 0);
    assert_int_equal(txn_check_timeouts(f->c), 0);
    fx_reopen(f);
    assert_int_equal(state_of(f, "a"), TXN_ONGOING);
    assert_int_equal(broker_lso(tp(f, 0)), 0);
    usleep(150 * 1000);
    assert_int_equal(txn_check_timeouts(f->c), 1);
    drive(f, not_completing, f);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_ABORT);
    assert_int_equal(broker_lso(tp(f, 0)), 2);
    txn_info ti;
    assert_int_equal(txn_describe(f->c, K("a"), &ti), 0);
    assert_int_equal(ti.producer_epoch, p.epoch + 1);
    assert_int_equal(end_txn(f, "a", p.pid, p.epoch, 1), -CN_EFENCED);
    /* The old producer's KIP-360 bump is fenced too. */
    assert_int_equal(init_pid(f, "a", 100, p.pid, p.epoch).err, -CN_EFENCED);
}

static void test_timer_aborts(void **state)
{
    fixture *f = *state;
    char err[128];
    assert_int_equal(config_set(&f->cfg, "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                                "20", err, sizeof(err)), 0);
    fx_reopen(f);
    res p = init_pid(f, "a", 50, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    for (int i = 0; i < 100 && state_of(f, "a") != TXN_COMPLETE_ABORT; i++)
        loop_run_once(f->l, 10);
    assert_int_equal(state_of(f, "a"), TXN_COMPLETE_ABORT);
}

static void test_compaction_keeps_state(void **state)
{
    fixture *f = *state;
    res p = init_pid(f, "a", 60000, -1, -1);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(add_parts(f, "a", &p, 2), 0);
        assert_int_equal(end_txn(f, "a", p.pid, p.epoch, i % 2), 0);
    }
    res idem = init_pid(f, NULL, 0, -1, -1);
    assert_int_equal(add_parts(f, "a", &p, 1), 0);
    partition *x = txn_partition(f->c);
    int64_t end = log_end_offset(x->log);
    assert_int_equal(txn_maybe_compact(f->c, 1), 0);
    loop_run_once(f->l, 10);
    for (int i = 0; i < 100 && log_start_offset(x->log) < end; i++)
        loop_run_once(f->l, 10);
    assert_int_equal(log_start_offset(x->log), end);
    fx_reopen(f);
    txn_info ti;
    assert_int_equal(txn_describe(f->c, K("a"), &ti), 0);
    assert_int_equal(ti.state, TXN_ONGOING);
    assert_int_equal(ti.producer_id, p.pid);
    assert_int_equal(ti.n_parts, 1);
    assert_true(init_pid(f, NULL, 0, -1, -1).pid > idem.pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pid_unique_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_epoch_bump_and_kip360, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_writes_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argument_and_busy_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_fences_ongoing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_prepare_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_ongoing_then_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
