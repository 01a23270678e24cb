/* Unit tests for kvlog (src/kvlog): append and the exact batch bytes it
 * writes, durable waits, replay after reopen (later wins, tombstones,
 * rejected records), damaged batches skipped, and compaction: the trigger,
 * a finished compaction, and crashes in between (before the log start
 * moves, a log start lost, a copy cut short). A tiny owner keeps a
 * last-wins map of string keys. Real broker and loop on a fresh temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "record/batch.h"
#include "util/common.h"

/* Any reserved internal name will do (kvl_open refuses others); this binary
 * runs no transaction coordinator. */
#define NAME BROKER_TXN_TOPIC
#define MAX_KEYS 4096

/* The owner: keys -> values, last wins; keys starting with '!' are rejected
 * at replay. compact_stop_after >= 0 makes the compaction callback fail
 * after that many records (a copy cut short). */
typedef struct owner {
    char *key[MAX_KEYS];
    char *val[MAX_KEYS];
    int n;
    int compact_stop_after;
} owner;

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    kvl *kv;
    owner o;
} fixture;

static int owner_find(owner *o, const char *k, size_t kl)
{
    for (int i = 0; i < o->n; i++)
        if (strlen(o->key[i]) == kl && memcmp(o->key[i], k, kl) == 0)
            return i;
    return -1;
}

static void owner_put(owner *o, const char *k, size_t kl, const char *v, int32_t vl)
{
    int i = owner_find(o, k, kl);
    if (vl < 0) {
        if (i >= 0) {
            free(o->key[i]);
            free(o->val[i]);
            o->key[i] = o->key[o->n - 1];
            o->val[i] = o->val[o->n - 1];
            o->n--;
        }
        return;
    }
    if (i < 0) {
        assert_true(o->n < MAX_KEYS);
        i = o->n++;
        o->key[i] = strndup(k, kl);
    } else {
        free(o->val[i]);
    }
    o->val[i] = strndup(v, (size_t)vl);
}

static const char *owner_get(owner *o, const char *k)
{
    int i = owner_find(o, k, strlen(k));
    return i < 0 ? NULL : o->val[i];
}

static void owner_clear(owner *o)
{
    for (int i = 0; i < o->n; i++) {
        free(o->key[i]);
        free(o->val[i]);
    }
    o->n = 0;
}

static int on_record(void *arg, const batch_record *r, const char **why)
{
    owner *o = arg;
    if (r->key_len < 1 || ((const char *)r->key)[0] == '!') {
        *why = "test owner rejects it";
        return -CN_EPROTO;
    }
    owner_put(o, (const char *)r->key, (size_t)r->key_len, (const char *)r->value, r->value_len);
    return 0;
}

static int on_compact(void *arg, kvl_compaction *cx)
{
    owner *o = arg;
    for (int i = 0; i < o->n; i++) {
        if (o->compact_stop_after >= 0 && i >= o->compact_stop_after)
            return -CN_EIO;
        int rc = kvl_compact_add(cx, o->key[i], (int32_t)strlen(o->key[i]), o->val[i],
                                 (int32_t)strlen(o->val[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int64_t live_bytes(void *arg)
{
    owner *o = arg;
    int64_t n = 0;
    for (int i = 0; i < o->n; i++)
        n += 16 + (int64_t)strlen(o->key[i]) + (int64_t)strlen(o->val[i]);
    return n;
}

static const kvl_ops ops = {on_record, on_compact, live_bytes};

static void fx_open(fixture *f)
{
    owner_clear(&f->o);
    f->o.compact_stop_after = -1;
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(kvl_open(f->b, NAME, &ops, &f->o, &f->kv), 0);
}

static void fx_close(fixture *f)
{
    kvl_close(f->kv);
    broker_close(f->b);
    loop_free(f->l);
    f->kv = NULL;
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
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "kvlog");
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->b)
        fx_close(f);
    owner_clear(&f->o);
    but_rm_rf(f->dir);
    config_fini(&f->cfg);
    free(f);
    return 0;
}

static void nop_timer(loop_timer *t)
{
    (void)t;
}

/* Drive the loop until done() or a bound. */
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

static int not_compacting(void *arg)
{
    return !kvl_compacting(arg);
}

/* Apply to memory and append one record in its own batch (the owner's way). */
static int64_t put(fixture *f, const char *k, const char *v)
{
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, k, (int32_t)strlen(k), v, v ? (int32_t)strlen(v) : -1);
    int64_t target = -1;
    assert_int_equal(kvl_append(f->kv, &bt, 1000, &target), 0);
    kvl_batch_fini(&bt);
    owner_put(&f->o, k, strlen(k), v, v ? (int32_t)strlen(v) : -1);
    return target;
}

static log_partition *lp_of(fixture *f)
{
    return kvl_partition(f->kv)->log;
}

/* Tests ------------------------------------------------------------------- */

static void test_append_replay(void **state)
{
    fixture *f = *state;
    kvl *other = NULL;
    assert_int_equal(kvl_open(f->b, "not-reserved", &ops, &f->o, &other), -CN_EINVAL);
    assert_null(other);
    kvl_batch bt;
    kvl_batch_init(&bt);
    int64_t target = -1;
    /* An empty batch writes nothing; the target is the current end. */
    assert_int_equal(kvl_append(f->kv, &bt, 1, &target), 0);
    assert_int_equal(target, 0);
    kvl_batch_add(&bt, "k1", 2, "a", 1);
    kvl_batch_add(&bt, "k2", 2, "b", 1);
    kvl_batch_add(&bt, "k1", 2, "c", 1);
    kvl_batch_add(&bt, "k3", 2, "", 0);          /* empty value is not a tombstone */
    assert_int_equal(kvl_batch_count(&bt), 4);
    assert_int_equal(kvl_batch_bytes(&bt), 4 * 2 + 3);
    assert_int_equal(kvl_append(f->kv, &bt, 1, &target), 0);
    assert_int_equal(target, 4);
    kvl_batch_reset(&bt);
    kvl_batch_add(&bt, "k2", 2, NULL, -1);
    kvl_batch_add(&bt, "!bad", 4, "x", 1);
    assert_int_equal(kvl_append(f->kv, &bt, 1, &target), 0);
    assert_int_equal(target, 6);
    assert_int_equal(kvl_end(f->kv), 6);
    kvl_batch_fini(&bt);
    fx_reopen(f);
    assert_int_equal(f->o.n, 2);
    assert_string_equal(owner_get(&f->o, "k1"), "c");
    assert_string_equal(owner_get(&f->o, "k3"), "");
    assert_null(owner_get(&f->o, "k2"));
    kvl_stats st;
    kvl_get_stats(f->kv, &st);
    assert_int_equal(st.replayed, 5);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.compacting, 0);
    assert_int_equal(st.log_bytes, log_size_bytes(lp_of(f)));
}

/* The framing is batch_build's output byte for byte: logs written before
 * the module existed replay unchanged, and new ones read the same. */
static void test_batch_bytes(void **state)
{
    fixture *f = *state;
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, "key", 3, "value", 5);
    kvl_batch_add(&bt, "gone", 4, NULL, -1);
    assert_int_equal(kvl_append(f->kv, &bt, 1234567, NULL), 0);
    kvl_batch_fini(&bt);
    batch_build_rec recs[] = {{"key", 3, "value", 5, 1234567}, {"gone", 4, NULL, -1, 1234567}};
    uint8_t *want = NULL;
    size_t want_len = 0;
    assert_int_equal(batch_build(recs, 2, BATCH_COMPRESSION_NONE, 0, &want, &want_len), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s-0/00000000000000000000.log", f->dir, NAME);
    fx_close(f);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t got[256];
    assert_true(pread(fd, got, sizeof(got), 0) >= (ssize_t)want_len);
    close(fd);
    /* The leader epoch is the log's to set (not under the CRC). */
    memcpy(want + BATCH_OFF_LEADER_EPOCH, got + BATCH_OFF_LEADER_EPOCH, 4);
    assert_memory_equal(got, want, want_len);
    free(want);
    fx_open(f);
}

/* What the owner sees for an empty key and value: lengths 0, not -1. */
static int saw_empty;
static int on_record_empty(void *arg, const batch_record *r, const char **why)
{
    (void)arg;
    (void)why;
    saw_empty += r->key_len == 0 && r->value_len == 0;
    return 0;
}

static void test_empty_key_and_value(void **state)
{
    fixture *f = *state;
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, NULL, 0, NULL, 0);
    assert_int_equal(kvl_append(f->kv, &bt, 1, NULL), 0);
    kvl_batch_fini(&bt);
    fx_close(f);
    static const kvl_ops empty_ops = {on_record_empty, NULL, NULL};
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    saw_empty = 0;
    assert_int_equal(kvl_open(f->b, NAME, &empty_ops, NULL, &f->kv), 0);
    assert_int_equal(saw_empty, 1);
}

typedef struct waiter {
    durable_wait w;
    int fired;
    int status;
} waiter;

static void on_durable(durable_wait *w, int status)
{
    waiter *x = (waiter *)w;
    x->fired++;
    x->status = status;
}

static int waiter_fired(void *arg)
{
    return ((waiter *)arg)->fired;
}

static void test_wait_durable(void **state)
{
    fixture *f = *state;
    int64_t t1 = put(f, "a", "1");
    assert_true(log_durable_offset(lp_of(f)) < t1);
    waiter w = {0};
    kvl_wait_durable(f->kv, t1, &w.w, on_durable);
    drive(f, waiter_fired, &w);
    assert_int_equal(w.fired, 1);
    assert_int_equal(w.status, 0);
    assert_true(log_durable_offset(lp_of(f)) >= t1);
    /* Already durable: called back before kvl_wait_durable returns. */
    waiter now = {0};
    kvl_wait_durable(f->kv, t1, &now.w, on_durable);
    assert_int_equal(now.fired, 1);
    /* A cancelled wait is never called, even when the fsync completes. */
    int64_t t2 = put(f, "b", "2");
    waiter gone = {0}, kept = {0};
    kvl_wait_durable(f->kv, t2, &gone.w, on_durable);
    kvl_wait_durable(f->kv, t2, &kept.w, on_durable);
    kvl_wait_cancel(f->kv, &gone.w);
    kvl_wait_cancel(f->kv, &gone.w);             /* twice: no-op */
    drive(f, waiter_fired, &kept);
    assert_int_equal(kept.fired, 1);
    assert_int_equal(gone.fired, 0);
}

static void test_compaction(void **state)
{
    fixture *f = *state;
    log_partition *lp = lp_of(f);
    char v[600];
    memset(v, 'v', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    put(f, "keep", "k");
    put(f, "gone", "g");
    put(f, "gone", NULL);
    /* Small log: nothing to do. */
    assert_int_equal(kvl_maybe_compact(f->kv), 0);
    assert_false(kvl_compacting(f->kv));
    int compactions = 0;
    for (int i = 0; i < 2000; i++) {
        v[0] = (char)('a' + i % 26);
        put(f, "hot", v);
        assert_int_equal(kvl_maybe_compact(f->kv), 0);
        if (kvl_compacting(f->kv)) {
            compactions++;
            drive(f, not_compacting, f->kv);
            assert_false(kvl_compacting(f->kv));
            assert_true(log_start_offset(lp) > 0);
        }
    }
    /* ~1.4 MB written, ~1 KiB live: one compaction once past 1 MiB. */
    assert_int_equal(compactions, 1);
    assert_true(log_start_offset(lp) > 1000);
    /* A forced compaction moves the start to the end of the old data. */
    int64_t end = log_end_offset(lp);
    assert_int_equal(kvl_compact(f->kv), 0);
    assert_int_equal(kvl_compact(f->kv), -CN_EAGAIN);
    kvl_stats st;
    kvl_get_stats(f->kv, &st);
    assert_int_equal(st.compacting, 1);
    assert_true(st.log_bytes > 600 && st.log_bytes < 4096);  /* the copy only */
    drive(f, not_compacting, f->kv);
    assert_int_equal(log_start_offset(lp), end);
    assert_int_equal(log_end_offset(lp), end + 2); /* keep + hot */
    char want[600];
    strcpy(want, owner_get(&f->o, "hot"));
    fx_reopen(f);
    assert_int_equal(f->o.n, 2);
    assert_string_equal(owner_get(&f->o, "keep"), "k");
    assert_string_equal(owner_get(&f->o, "hot"), want);
    assert_int_equal(log_start_offset(lp_of(f)), end);
    kvl_get_stats(f->kv, &st);
    assert_int_equal(st.replayed, 2);
}

/* Crash after the copy was appended, before its fsync moved the log start:
 * the wait is withdrawn at close; replay sees old records then duplicates. */
static void test_compaction_crash_before_start_moves(void **state)
{
    fixture *f = *state;
    put(f, "a", "1");
    put(f, "a", "2");
    put(f, "b", "3");
    put(f, "b", NULL);
    assert_int_equal(kvl_compact(f->kv), 0);
    assert_true(kvl_compacting(f->kv));
    assert_int_equal(log_end_offset(lp_of(f)), 5);
    fx_reopen(f);
    assert_int_equal(log_start_offset(lp_of(f)), 0);
    assert_int_equal(f->o.n, 1);
    assert_string_equal(owner_get(&f->o, "a"), "2");
    put(f, "a", "3");
    fx_reopen(f);
    assert_string_equal(owner_get(&f->o, "a"), "3");
}

/* Crash after the log start moved in memory but before the log-start file
 * reached the disk: the old records come back in front of the copy. */
static void test_compaction_log_start_lost(void **state)
{
    fixture *f = *state;
    put(f, "a", "1");
    put(f, "b", "2");
    put(f, "a", NULL);
    put(f, "c", "3");
    assert_int_equal(kvl_compact(f->kv), 0);
    drive(f, not_compacting, f->kv);
    assert_int_equal(log_start_offset(lp_of(f)), 4);
    put(f, "c", "4");
    fx_close(f);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s-0/log-start-offset", f->dir, NAME);
    assert_int_equal(unlink(path), 0);
    fx_open(f);
    assert_int_equal(log_start_offset(lp_of(f)), 0);
    assert_int_equal(f->o.n, 2);
    assert_null(owner_get(&f->o, "a"));
    assert_string_equal(owner_get(&f->o, "b"), "2");
    assert_string_equal(owner_get(&f->o, "c"), "4");
}

/* A copy cut short (an append failing after the first full batch): the
 * start stays, the partial copy only repeats live values, and the next
 * compaction works. */
static void test_compaction_copy_cut_short(void **state)
{
    fixture *f = *state;
    enum { N = 2500 };
    kvl_batch bt;
    kvl_batch_init(&bt);
    char k[32], v[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "old-%d", i);
        kvl_batch_add(&bt, k, (int32_t)strlen(k), v, (int32_t)strlen(v));
        owner_put(&f->o, k, strlen(k), v, (int32_t)strlen(v));
    }
    assert_int_equal(kvl_append(f->kv, &bt, 1, NULL), 0);
    kvl_batch_fini(&bt);
    put(f, "key-7", "new");
    int64_t end = log_end_offset(lp_of(f));
    kvl_stats before;
    kvl_get_stats(f->kv, &before);
    f->o.compact_stop_after = 1500;
    assert_int_equal(kvl_compact(f->kv), -CN_EIO);
    assert_false(kvl_compacting(f->kv));
    assert_int_equal(log_start_offset(lp_of(f)), 0);
    assert_int_equal(log_end_offset(lp_of(f)), end + KVL_COMPACT_BATCH_RECS);
    kvl_stats after;
    kvl_get_stats(f->kv, &after);
    assert_true(after.log_bytes > before.log_bytes);
    fx_reopen(f);
    assert_int_equal(f->o.n, N);
    assert_string_equal(owner_get(&f->o, "key-7"), "new");
    assert_string_equal(owner_get(&f->o, "key-2499"), "old-2499");
    /* A whole compaction after it. */
    end = log_end_offset(lp_of(f));
    assert_int_equal(kvl_compact(f->kv), 0);
    drive(f, not_compacting, f->kv);
    assert_int_equal(log_start_offset(lp_of(f)), end);
    fx_reopen(f);
    assert_int_equal(f->o.n, N);
    assert_string_equal(owner_get(&f->o, "key-7"), "new");
}

/* A batch damaged in place (bit rot inside written data, followed by whole
 * batches) is skipped; the batches around it replay. */
static void test_damaged_batch_skipped(void **state)
{
    fixture *f = *state;
    put(f, "a", "1");
    put(f, "b", "2");
    put(f, "c", "3");
    char path[256];
    snprintf(path, sizeof(path), "%s/%s-0/00000000000000000000.log", f->dir, NAME);
    fx_close(f);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t hdr[12];
    assert_int_equal(pread(fd, hdr, 12, 0), 12);
    int64_t second = BATCH_LOG_OVERHEAD + (int64_t)be_get32(hdr + BATCH_OFF_LENGTH);
    assert_int_equal(pread(fd, hdr, 12, second), 12);
    int64_t last = second + BATCH_LOG_OVERHEAD + (int64_t)be_get32(hdr + BATCH_OFF_LENGTH) - 1;
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, last), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, last), 1);
    close(fd);
    fx_open(f);
    assert_int_equal(log_end_offset(lp_of(f)), 3);
    assert_string_equal(owner_get(&f->o, "a"), "1");
    assert_null(owner_get(&f->o, "b"));
    assert_string_equal(owner_get(&f->o, "c"), "3");
    kvl_stats st;
    kvl_get_stats(f->kv, &st);
    assert_int_equal(st.replayed, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_key_and_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_crash_before_start_moves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compaction_log_start_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_copy_cut_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_batch_skipped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
