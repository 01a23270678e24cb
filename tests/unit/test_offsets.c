/* Unit tests for group/offsets: commit/get/overwrite, null vs empty
 * metadata, deletes, foreach order, group metadata blobs, durability through
 * a real broker and loop, replay after restart, expiry, compaction, and
 * replay skipping damaged or unknown records. Each test runs on a fresh
 * temporary data directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "group/offsets.h"
#include "util/bin.h"   /* the tests write records by hand */
#include "record/batch.h"
#include "net/loop.h"
#include "util/common.h"

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    goff_store *s;
} fixture;

static void fx_open(fixture *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(goff_open(f->b, &f->s), 0);
}

static void fx_close(fixture *f)
{
    goff_close(f->s);
    broker_close(f->b);
    loop_free(f->l);
    f->s = NULL;
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
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "offsets");
    fx_open(f);
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

static int64_t commit1(fixture *f, const char *g, const char *t, int32_t p, int64_t off,
                       const char *md, int64_t now)
{
    goff_commit_item it = {K(t), p, off, 7, cn_str_c(md), -1};
    int64_t wt = -1;
    assert_int_equal(goff_commit(f->s, K(g), &it, 1, now, &wt), 0);
    return wt;
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

static int waiter_fired(void *arg)
{
    return ((waiter *)arg)->fired;
}

static void wait_durable(fixture *f, int64_t target)
{
    waiter w = {.w = {.target = target, .cb = on_durable}};
    broker_wait_durable(f->b, goff_partition(f->s), &w.w);
    drive(f, waiter_fired, &w);
    assert_int_equal(w.fired, 1);
    assert_int_equal(w.status, 0);
}

/* Tests ------------------------------------------------------------------- */

static void test_commit_get_overwrite(void **state)
{
    fixture *f = *state;
    assert_null(goff_get(f->s, K("g"), K("t"), 0));
    goff_commit_item items[] = {
        {K("t"), 0, 10, 3, K("m0"), -1},
        {K("t"), 1, 20, -1, K("m1"), 5000},
        {K("u"), 0, 30, 1, K(""), -1},
    };
    int64_t wt = -1;
    assert_int_equal(goff_commit(f->s, K("g"), items, 3, 1000, &wt), 0);
    assert_int_equal(wt, 3);
    const goff_entry *e = goff_get(f->s, K("g"), K("t"), 1);
    assert_non_null(e);
    assert_int_equal(e->offset, 20);
    assert_int_equal(e->leader_epoch, -1);
    assert_string_equal(e->metadata, "m1");
    assert_int_equal(e->commit_ms, 1000);
    assert_int_equal(e->expire_ms, 5000);
    assert_null(goff_get(f->s, K("g"), K("t"), 2));
    assert_null(goff_get(f->s, K("h"), K("t"), 0));
    assert_null(goff_get(f->s, K("g"), K("tt"), 0));
    /* Overwrite; a repeated partition in one request: the later item wins. */
    goff_commit_item again[] = {{K("t"), 0, 11, 4, K("x"), -1}, {K("t"), 0, 12, 4, K("y"), -1}};
    assert_int_equal(goff_commit(f->s, K("g"), again, 2, 2000, &wt), 0);
    assert_int_equal(wt, 5);
    e = goff_get(f->s, K("g"), K("t"), 0);
    assert_int_equal(e->offset, 12);
    assert_string_equal(e->metadata, "y");
    assert_int_equal(e->commit_ms, 2000);
    assert_int_equal(goff_count(f->s), 3);
    /* n == 0 writes nothing. */
    assert_int_equal(goff_commit(f->s, K("g"), NULL, 0, 3000, &wt), 0);
    assert_int_equal(wt, 5);
    /* Bad arguments apply nothing. */
    char *big = malloc(GOFF_STR_MAX + 2);
    memset(big, 'x', GOFF_STR_MAX + 1);
    big[GOFF_STR_MAX + 1] = '\0';
    goff_commit_item bad[] = {{K("t"), 0, 99, 0, K(""), -1}, {K(big), 0, 1, 0, K(""), -1}};
    assert_int_equal(goff_commit(f->s, K("g"), bad, 2, 1, &wt), -CN_EINVAL);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 12);
    assert_int_equal(goff_commit(f->s, K(big), items, 1, 1, &wt), -CN_EINVAL);
    assert_int_equal(goff_commit(f->s, (cn_str){NULL, -1}, items, 1, 1, &wt), -CN_EINVAL);
    goff_commit_item bigmd = {K("t"), 0, 99, 0, K(big), -1};
    assert_int_equal(goff_commit(f->s, K("g"), &bigmd, 1, 1, &wt), -CN_EINVAL);
    assert_int_equal(log_end_offset(goff_partition(f->s)->log), 5);
    /* The longest allowed names work. */
    big[GOFF_STR_MAX] = '\0';
    commit1(f, big, big, 0, 42, big, 1);
    e = goff_get(f->s, K(big), K(big), 0);
    assert_int_equal(e->offset, 42);
    assert_int_equal(strlen(e->metadata), GOFF_STR_MAX);
    /* Empty group and topic names are plain keys. */
    commit1(f, "", "", 0, 43, NULL, 1);
    assert_int_equal(goff_get(f->s, K(""), K(""), 0)->offset, 43);
    fx_reopen(f);
    assert_int_equal(goff_get(f->s, K(big), K(big), 0)->offset, 42);
    assert_int_equal(goff_get(f->s, K(""), K(""), 0)->offset, 43);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 12);
    free(big);
}

static void test_metadata_null_vs_empty(void **state)
{
    fixture *f = *state;
    commit1(f, "g", "t", 0, 1, NULL, 1);
    commit1(f, "g", "t", 1, 1, "", 1);
    assert_null(goff_get(f->s, K("g"), K("t"), 0)->metadata);
    assert_non_null(goff_get(f->s, K("g"), K("t"), 1)->metadata);
    assert_string_equal(goff_get(f->s, K("g"), K("t"), 1)->metadata, "");
    fx_reopen(f);
    assert_null(goff_get(f->s, K("g"), K("t"), 0)->metadata);
    assert_string_equal(goff_get(f->s, K("g"), K("t"), 1)->metadata, "");
}

static void collect_group(void *arg, const char *group)
{
    char *out = arg;
    strcat(out, group);
    strcat(out, ";");
}

static void test_delete(void **state)
{
    fixture *f = *state;
    commit1(f, "g", "t", 0, 1, "a", 1);
    commit1(f, "g", "t", 1, 2, "b", 1);
    commit1(f, "h", "t", 0, 3, "c", 1);
    int64_t wt = -1;
    cn_bytes blob = {(const uint8_t *)"meta", 4};
    assert_int_equal(goff_put_group_meta(f->s, K("g"), blob, &wt), 0);
    int64_t end = log_end_offset(goff_partition(f->s)->log);
    /* Deleting what is not there writes nothing. */
    assert_int_equal(goff_delete(f->s, K("g"), K("t"), 9, &wt), 0);
    assert_int_equal(goff_delete(f->s, K("zz"), K("t"), 0, &wt), 0);
    assert_int_equal(goff_delete_group(f->s, K("zz"), &wt), 0);
    assert_int_equal(wt, end);
    assert_int_equal(log_end_offset(goff_partition(f->s)->log), end);

    assert_int_equal(goff_delete(f->s, K("g"), K("t"), 0, &wt), 0);
    assert_int_equal(wt, end + 1);
    assert_null(goff_get(f->s, K("g"), K("t"), 0));
    assert_non_null(goff_get(f->s, K("g"), K("t"), 1));
    assert_true(goff_group_has_offsets(f->s, K("g")));
    assert_int_equal(goff_delete(f->s, K("g"), K("t"), 1, &wt), 0);
    assert_false(goff_group_has_offsets(f->s, K("g")));
    /* The blob keeps the group known. */
    assert_int_equal(goff_group_meta(f->s, K("g")).len, 4);
    commit1(f, "g", "u", 0, 5, NULL, 1);
    char groups[64] = "";
    goff_foreach_group(f->s, collect_group, groups);
    assert_true(strstr(groups, "g;") && strstr(groups, "h;"));
    assert_int_equal(goff_delete_group(f->s, K("g"), &wt), 0);
    assert_int_equal(wt, log_end_offset(goff_partition(f->s)->log));
    assert_false(goff_group_has_offsets(f->s, K("g")));
    assert_int_equal(goff_group_meta(f->s, K("g")).len, -1);
    groups[0] = '\0';
    goff_foreach_group(f->s, collect_group, groups);
    assert_string_equal(groups, "h;");
    fx_reopen(f);
    assert_null(goff_get(f->s, K("g"), K("t"), 1));
    assert_null(goff_get(f->s, K("g"), K("u"), 0));
    assert_int_equal(goff_group_meta(f->s, K("g")).len, -1);
    assert_int_equal(goff_get(f->s, K("h"), K("t"), 0)->offset, 3);
    assert_int_equal(goff_count(f->s), 1);
}

static void collect_tp(void *arg, const char *topic_name, int32_t part, const goff_entry *e)
{
    char *out = arg;
    char one[64];
    snprintf(one, sizeof(one), "%s/%d=%lld;", topic_name, part, (long long)e->offset);
    strcat(out, one);
}

static void test_foreach_order(void **state)
{
    fixture *f = *state;
    const char *topics[] = {"b", "a", "ab", "a", "b", "B"};
    int32_t parts[] = {2, 10, 0, 2, 0, 1};
    for (int i = 0; i < 6; i++)
        commit1(f, "g", topics[i], parts[i], i, NULL, 1);
    commit1(f, "other", "a", 0, 99, NULL, 1);
    char out[256] = "";
    goff_foreach(f->s, K("g"), collect_tp, out);
    assert_string_equal(out, "B/1=5;a/2=3;a/10=1;ab/0=2;b/0=4;b/2=0;");
    out[0] = '\0';
    goff_foreach(f->s, K("nobody"), collect_tp, out);
    assert_string_equal(out, "");
}

static void collect_meta(void *arg, const char *group, cn_bytes blob)
{
    char *out = arg;
    char one[64];
    snprintf(one, sizeof(one), "%s:%.*s;", group, blob.len, (const char *)blob.ptr);
    strcat(out, one);
}

static void test_group_meta(void **state)
{
    fixture *f = *state;
    int64_t wt = -1;
    assert_int_equal(goff_group_meta(f->s, K("g")).len, -1);
    assert_int_equal(goff_put_group_meta(f->s, K("g"), (cn_bytes){(const uint8_t *)"v1", 2}, &wt), 0);
    assert_int_equal(wt, 1);
    assert_int_equal(goff_put_group_meta(f->s, K("g"), (cn_bytes){(const uint8_t *)"v22", 3}, &wt),
                     0);
    cn_bytes m = goff_group_meta(f->s, K("g"));
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.ptr, "v22", 3);
    /* Empty blob is not "none". */
    assert_int_equal(goff_put_group_meta(f->s, K("e"), (cn_bytes){NULL, 0}, &wt), 0);
    assert_int_equal(goff_group_meta(f->s, K("e")).len, 0);
    assert_int_equal(goff_put_group_meta(f->s, K("d"), (cn_bytes){(const uint8_t *)"x", 1}, &wt), 0);
    assert_int_equal(goff_put_group_meta(f->s, K("d"), (cn_bytes){NULL, -1}, &wt), 0);
    assert_int_equal(goff_group_meta(f->s, K("d")).len, -1);
    /* Deleting a missing blob writes nothing. */
    int64_t end = log_end_offset(goff_partition(f->s)->log);
    assert_int_equal(goff_put_group_meta(f->s, K("d"), (cn_bytes){NULL, -1}, &wt), 0);
    assert_int_equal(log_end_offset(goff_partition(f->s)->log), end);
    assert_int_equal(goff_put_group_meta(f->s, K("d"), (cn_bytes){NULL, -2}, &wt), -CN_EINVAL);
    /* Meta-only groups do not count as having offsets. */
    assert_false(goff_group_has_offsets(f->s, K("g")));
    fx_reopen(f);
    m = goff_group_meta(f->s, K("g"));
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.ptr, "v22", 3);
    assert_int_equal(goff_group_meta(f->s, K("e")).len, 0);
    assert_int_equal(goff_group_meta(f->s, K("d")).len, -1);
    char out[128] = "";
    goff_foreach_group_meta(f->s, collect_meta, out);
    assert_int_equal(strlen(out), strlen("g:v22;e:;"));
    assert_non_null(strstr(out, "g:v22;"));
    assert_non_null(strstr(out, "e:;"));
}

static void test_durable(void **state)
{
    fixture *f = *state;
    int64_t wt = commit1(f, "g", "t", 0, 5, "m", 1);
    assert_true(log_durable_offset(goff_partition(f->s)->log) < wt);
    wait_durable(f, wt);
    assert_true(log_durable_offset(goff_partition(f->s)->log) >= wt);
    assert_int_equal(goff_delete_group(f->s, K("g"), &wt), 0);
    wait_durable(f, wt);
}

static void test_restart_replay(void **state)
{
    fixture *f = *state;
    char g[32];
    const char *names[5] = {"topic-0", "topic-1", "topic-2", "topic-3", "topic-4"};
    goff_commit_item items[50];
    for (int gi = 0; gi < 20; gi++) {
        snprintf(g, sizeof(g), "group-%d", gi);
        for (int i = 0; i < 50; i++)
            items[i] = (goff_commit_item){K(names[i % 5]), i, gi * 1000 + i, i, K(g), -1};
        int64_t wt;
        assert_int_equal(goff_commit(f->s, K(g), items, 50, 100 + gi, &wt), 0);
    }
    int64_t wt;
    assert_int_equal(goff_delete(f->s, K("group-3"), K("topic-1"), 1, &wt), 0);
    assert_int_equal(goff_delete_group(f->s, K("group-4"), &wt), 0);
    commit1(f, "group-5", "topic-0", 0, 777, "new", 5000);
    assert_int_equal(goff_put_group_meta(f->s, K("group-5"), (cn_bytes){(const uint8_t *)"M", 1}, &wt),
                     0);
    fx_reopen(f);
    assert_int_equal(goff_count(f->s), 20 * 50 - 1 - 50);
    assert_null(goff_get(f->s, K("group-3"), K("topic-1"), 1));
    assert_false(goff_group_has_offsets(f->s, K("group-4")));
    const goff_entry *e = goff_get(f->s, K("group-5"), K("topic-0"), 0);
    assert_int_equal(e->offset, 777);
    assert_string_equal(e->metadata, "new");
    assert_int_equal(e->commit_ms, 5000);
    e = goff_get(f->s, K("group-19"), K("topic-3"), 48);
    assert_non_null(e);
    assert_int_equal(e->offset, 19048);
    assert_int_equal(e->leader_epoch, 48);
    assert_string_equal(e->metadata, "group-19");
    assert_int_equal(e->commit_ms, 119);
    assert_int_equal(e->expire_ms, -1);
    assert_int_equal(goff_group_meta(f->s, K("group-5")).len, 1);
}

/* Many entries: the table grows, lookups stay right, replay restores all. */
static void test_many_entries(void **state)
{
    fixture *f = *state;
    enum { N = 100000, PER = 1000 };
    goff_commit_item *items = calloc(PER, sizeof(*items));
    char g[32];
    for (int b = 0; b < N / PER; b++) {
        snprintf(g, sizeof(g), "g%d", b % 10);
        for (int i = 0; i < PER; i++)
            items[i] = (goff_commit_item){K("topic"), b * PER + i, b * PER + i, 0, {NULL, -1}, -1};
        int64_t wt;
        assert_int_equal(goff_commit(f->s, K(g), items, PER, 1, &wt), 0);
    }
    assert_int_equal(goff_count(f->s), N);
    fx_reopen(f);
    assert_int_equal(goff_count(f->s), N);
    for (int i = 0; i < N; i += 997) {
        snprintf(g, sizeof(g), "g%d", (i / PER) % 10);
        const goff_entry *e = goff_get(f->s, K(g), K("topic"), i);
        assert_non_null(e);
        assert_int_equal(e->offset, i);
    }
    free(items);
}

static int fake_is_empty(void *arg, cn_str group)
{
    int *calls = arg;
    (*calls)++;
    return !(group.len == 4 && memcmp(group.ptr, "busy", 4) == 0);
}

static void test_expire(void **state)
{
    fixture *f = *state;
    const int64_t ret = 1000;
    commit1(f, "old", "t", 0, 1, NULL, 100);
    commit1(f, "old", "t", 1, 1, NULL, 200);
    commit1(f, "busy", "t", 0, 1, NULL, 100);       /* old but not empty */
    commit1(f, "mixed", "t", 0, 1, NULL, 100);
    commit1(f, "mixed", "t", 1, 1, NULL, 5000);     /* newest commit recent: group kept */
    goff_commit_item ex = {K("t"), 2, 1, 0, K(""), 4000}; /* explicit expiry passed */
    int64_t wt;
    assert_int_equal(goff_commit(f->s, K("mixed"), &ex, 1, 5000, &wt), 0);
    goff_commit_item later = {K("t"), 3, 1, 0, K(""), 9000};
    assert_int_equal(goff_commit(f->s, K("mixed"), &later, 1, 5000, &wt), 0);
    int calls = 0;
    assert_int_equal(goff_expire(f->s, 5100, ret, fake_is_empty, &calls), 3);
    assert_int_equal(calls, 2); /* only groups past retention are asked */
    assert_false(goff_group_has_offsets(f->s, K("old")));
    assert_non_null(goff_get(f->s, K("busy"), K("t"), 0));
    assert_non_null(goff_get(f->s, K("mixed"), K("t"), 0));
    assert_non_null(goff_get(f->s, K("mixed"), K("t"), 1));
    assert_null(goff_get(f->s, K("mixed"), K("t"), 2));
    assert_non_null(goff_get(f->s, K("mixed"), K("t"), 3));
    /* Nothing more to do now; negative retention disables group expiry. */
    assert_int_equal(goff_expire(f->s, 5100, ret, fake_is_empty, &calls), 0);
    assert_int_equal(goff_expire(f->s, 1000000, -1, fake_is_empty, &calls), 1);
    assert_null(goff_get(f->s, K("mixed"), K("t"), 3));
    fx_reopen(f);
    assert_int_equal(goff_count(f->s), 3);
    assert_false(goff_group_has_offsets(f->s, K("old")));
    assert_null(goff_get(f->s, K("mixed"), K("t"), 2));
}

static int not_compacting(void *arg)
{
    return !goff_compacting(arg);
}

static void test_compaction(void **state)
{
    fixture *f = *state;
    log_partition *lp = goff_partition(f->s)->log;
    char md[600];
    memset(md, 'm', sizeof(md) - 1);
    md[sizeof(md) - 1] = '\0';
    commit1(f, "g", "keep", 0, 1, "k", 1);
    commit1(f, "g", "gone", 0, 1, "k", 1);
    int64_t wt;
    assert_int_equal(goff_put_group_meta(f->s, K("g"), (cn_bytes){(const uint8_t *)"blob", 4}, &wt),
                     0);
    assert_int_equal(goff_delete(f->s, K("g"), K("gone"), 0, &wt), 0);
    /* Small log: nothing to do. */
    assert_int_equal(goff_maybe_compact(f->s), 0);
    assert_false(goff_compacting(f->s));
    int compactions = 0;
    for (int i = 0; i < 2000; i++) {
        commit1(f, "g", "hot", 0, i, md, 10 + i);
        assert_int_equal(goff_maybe_compact(f->s), 0);
        if (goff_compacting(f->s)) {
            compactions++;
            drive(f, not_compacting, f->s);
            assert_false(goff_compacting(f->s));
            assert_true(log_start_offset(lp) > 0);
        }
    }
    /* ~1.4 MB written (~700 bytes a commit), live data ~1 KiB: one
     * compaction once past 1 MiB. */
    assert_int_equal(compactions, 1);
    int64_t start = log_start_offset(lp);
    assert_true(start > 1000);
    /* A forced compaction moves the start to the end of the old data. */
    int64_t end = log_end_offset(lp);
    assert_int_equal(goff_compact(f->s), 0);
    assert_int_equal(goff_compact(f->s), -CN_EAGAIN);
    drive(f, not_compacting, f->s);
    assert_int_equal(log_start_offset(lp), end);
    assert_int_equal(log_end_offset(lp), end + 3); /* 2 offsets + 1 blob */
    fx_reopen(f);
    assert_int_equal(goff_count(f->s), 2);
    const goff_entry *e = goff_get(f->s, K("g"), K("hot"), 0);
    assert_int_equal(e->offset, 1999);
    assert_string_equal(e->metadata, md);
    assert_int_equal(e->commit_ms, 10 + 1999);
    assert_int_equal(e->leader_epoch, 7);
    assert_int_equal(goff_get(f->s, K("g"), K("keep"), 0)->offset, 1);
    assert_null(goff_get(f->s, K("g"), K("gone"), 0));
    assert_int_equal(goff_group_meta(f->s, K("g")).len, 4);
    assert_int_equal(log_start_offset(goff_partition(f->s)->log), end);
}

/* A crash between re-append and delete leaves duplicates: replay resolves. */
static void test_compaction_interrupted(void **state)
{
    fixture *f = *state;
    commit1(f, "g", "t", 0, 1, "a", 1);
    commit1(f, "g", "t", 0, 2, "b", 2);
    commit1(f, "g", "u", 0, 3, NULL, 3);
    int64_t wt;
    assert_int_equal(goff_delete(f->s, K("g"), K("u"), 0, &wt), 0);
    assert_int_equal(goff_compact(f->s), 0);
    assert_true(goff_compacting(f->s));
    /* Close before the fsync completes: the wait is withdrawn. */
    fx_reopen(f);
    assert_int_equal(log_start_offset(goff_partition(f->s)->log), 0);
    assert_int_equal(goff_count(f->s), 1);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 2);
    assert_string_equal(goff_get(f->s, K("g"), K("t"), 0)->metadata, "b");
    commit1(f, "g", "t", 0, 4, "c", 4);
    fx_reopen(f);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 4);
}

/* Hand-made records appended straight to the internal log. */
static void append_raw(fixture *f, const batch_build_rec *recs, int n, int corrupt)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(recs, n, 0, 0, &buf, &len), 0);
    if (corrupt)
        buf[len - 1] ^= 0xff;
    int64_t base;
    assert_int_equal(broker_append(f->b, goff_partition(f->s), buf, len, &base), 0);
    free(buf);
}

static size_t enc_offset_key(uint8_t *p, int16_t version, const char *g, const char *t, int32_t part)
{
    wbuf w;
    wbuf_init(&w);
    bin_put_i16(&w, version);
    bin_put_str(&w, K(g));
    bin_put_str(&w, K(t));
    bin_put_i32(&w, part);
    memcpy(p, w.buf, w.len);
    size_t n = w.len;
    wbuf_fini(&w);
    return n;
}

static size_t enc_offset_value(uint8_t *p, int16_t version, int64_t off)
{
    wbuf w;
    wbuf_init(&w);
    bin_put_i16(&w, version);
    bin_put_i64(&w, off);
    bin_put_i32(&w, -1);
    bin_put_str(&w, K("md"));
    bin_put_i64(&w, 1);
    bin_put_i64(&w, -1);
    memcpy(p, w.buf, w.len);
    size_t n = w.len;
    wbuf_fini(&w);
    return n;
}

static void test_bad_records_skipped(void **state)
{
    fixture *f = *state;
    commit1(f, "g", "t", 0, 1, NULL, 1);
    uint8_t k_ok[64], v_ok[64], k_v9[64], v_v9[64], k_trunc[64];
    size_t kl_ok = enc_offset_key(k_ok, 1, "g", "t", 5);
    size_t vl_ok = enc_offset_value(v_ok, 1, 55);
    size_t kl_v9 = enc_offset_key(k_v9, 9, "g", "t", 6);
    size_t vl_v9 = enc_offset_value(v_v9, 7, 66); /* unknown value version */
    size_t kl_tr = enc_offset_key(k_trunc, 1, "g", "t", 7);
    batch_build_rec recs[] = {
        {NULL, -1, v_ok, (int32_t)vl_ok, 1},                  /* null key */
        {k_v9, (int32_t)kl_v9, v_ok, (int32_t)vl_ok, 1},      /* unknown key version */
        {k_ok, (int32_t)kl_ok, v_v9, (int32_t)vl_v9, 1},      /* unknown value version */
        {k_trunc, (int32_t)kl_tr - 2, v_ok, (int32_t)vl_ok, 1}, /* truncated key */
        {k_ok, (int32_t)kl_ok, v_ok, (int32_t)vl_ok - 3, 1},  /* truncated value */
        {k_ok, (int32_t)kl_ok, v_ok, (int32_t)vl_ok, 1},      /* good: g/t/5 = 55 */
        {"\x00\x02\x00", 3, "x", 1, 1},                         /* meta key cut short */
    };
    append_raw(f, recs, (int)CN_ARRAY_LEN(recs), 0);
    commit1(f, "g", "t", 9, 99, NULL, 1);
    /* A damaged last batch is cut by the log's recovery; what precedes it
     * stays. (A CRC mismatch in an older segment, which recovery does not
     * scan, is skipped by replay itself.) */
    uint8_t k_crc[64];
    size_t kl_crc = enc_offset_key(k_crc, 1, "g", "t", 8);
    batch_build_rec bad[] = {{k_crc, (int32_t)kl_crc, v_ok, (int32_t)vl_ok, 1}};
    append_raw(f, bad, 1, 1);
    fx_reopen(f);
    assert_int_equal(goff_count(f->s), 3);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 1);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 5)->offset, 55);
    assert_null(goff_get(f->s, K("g"), K("t"), 6));
    assert_null(goff_get(f->s, K("g"), K("t"), 7));
    assert_null(goff_get(f->s, K("g"), K("t"), 8));
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 9)->offset, 99);
}

/* A batch with a bad CRC in an older segment: open succeeds, the damaged
 * record is gone, later segments survive. (The log's recovery may cut that
 * segment at the damage itself; otherwise replay skips the batch.) */
static void test_bad_crc_old_segment(void **state)
{
    fixture *f = *state;
    log_options o = {.segment_bytes = 1024, .segment_ms = INT64_MAX / 4, .retention_ms = -1,
                     .retention_bytes = -1, .index_interval_bytes = 4096};
    log_partition_set_options(goff_partition(f->s)->log, &o);
    commit1(f, "g", "t", 0, 10, NULL, 1);
    commit1(f, "g", "t", 1, 11, NULL, 1);
    for (int i = 2; i < 40; i++)
        commit1(f, "g", "t", i, 10 + i, NULL, 1);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s-0/00000000000000000000.log", f->dir, BROKER_OFFSETS_TOPIC);
    fx_close(f);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t hdr[12];
    assert_int_equal(pread(fd, hdr, 12, 0), 12);
    int64_t second = 12 + (int64_t)((uint32_t)hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11]);
    assert_int_equal(pread(fd, hdr, 12, second), 12);
    int64_t last = second + 12 + (int64_t)((uint32_t)hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11]) - 1;
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(last + 1 < st.st_size || st.st_size < 1024); /* more batches follow */
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, last), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, last), 1);
    close(fd);
    fx_open(f);
    assert_int_equal(log_end_offset(goff_partition(f->s)->log), 40);
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 0)->offset, 10);
    assert_null(goff_get(f->s, K("g"), K("t"), 1));
    assert_int_equal(goff_get(f->s, K("g"), K("t"), 39)->offset, 49);
    assert_true(goff_count(f->s) >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_get_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_null_vs_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_crc_old_segment, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
