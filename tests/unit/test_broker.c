/* Unit tests for broker/broker: topic create/validate/delete, persistence of
 * topic metadata and configs across reopen, adding partitions, removal of
 * orphan partition directories, appends with durability waits, DeleteRecords
 * (answered once the new log start is durable), and the topic-name rule. Each test runs a real loop (for the syncer's eventfd) on a
 * fresh temporary data directory. */
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
#include "record/batch.h"
#include "net/loop.h"
#include "proto/kafka/kerr.h"
#include "util/common.h"

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
} fixture;

static void fx_open(fixture *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
}

static void fx_close(fixture *f)
{
    broker_close(f->b);
    loop_free(f->l);
    f->b = NULL;
    f->l = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "broker");
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

static int path_exists(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_name_rule(void **state)
{
    (void)state;
    assert_true(broker_topic_name_valid(cn_str_c("orders.v1_x-2")));
    assert_false(broker_topic_name_valid(cn_str_c("")));
    assert_false(broker_topic_name_valid(cn_str_c(".")));
    assert_false(broker_topic_name_valid(cn_str_c("..")));
    assert_false(broker_topic_name_valid(cn_str_c("a/b")));
    assert_false(broker_topic_name_valid(cn_str_c("a b")));
    char longname[251];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    assert_false(broker_topic_name_valid(cn_str_c(longname)));
    longname[249] = '\0';
    assert_true(broker_topic_name_valid(cn_str_c(longname)));
}

static void test_create_persist_delete(void **state)
{
    fixture *f = *state;
    char msg[256];
    broker_kv kv[] = {{cn_str_c("retention.ms"), cn_str_c("1234")}};
    topic *t = NULL;
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t1"), 3, kv, 1, 0, msg, sizeof(msg), &t),
                     KERR_NONE);
    assert_non_null(t);
    assert_int_equal(t->n_parts, 3);
    assert_int_equal(t->cfg.retention_ms, 1234);
    cn_uuid id = t->id;
    assert_true(path_exists(f->dir, "t1-2"));
    assert_true(path_exists(f->dir, ".topics/t1.conf"));
    /* Duplicate, invalid name, bad partitions, bad config. */
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t1"), 1, NULL, 0, 0, msg, sizeof(msg), NULL),
                     -CN_EEXIST);
    assert_int_equal(broker_topic_create(f->b, cn_str_c("a/b"), 1, NULL, 0, 0, msg, sizeof(msg), NULL),
                     -CN_EBADNAME);
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t2"), 0, NULL, 0, 0, msg, sizeof(msg), NULL),
                     -CN_EPARTITIONS);
    broker_kv bad[] = {{cn_str_c("no.such.key"), cn_str_c("1")}};
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t2"), 1, bad, 1, 0, msg, sizeof(msg), NULL),
                     -CN_ECONFIG);
    assert_non_null(strstr(msg, "no.such.key"));
    /* validate_only creates nothing. */
    assert_int_equal(broker_topic_create(f->b, cn_str_c("t3"), 2, NULL, 0, 1, msg, sizeof(msg), NULL),
                     KERR_NONE);
    assert_null(broker_topic_find(f->b, cn_str_c("t3")));
    assert_false(path_exists(f->dir, "t3-0"));

    /* Reopen: same id, partitions and config. */
    fx_close(f);
    fx_open(f);
    t = broker_topic_find(f->b, cn_str_c("t1"));
    assert_non_null(t);
    assert_memory_equal(t->id.b, id.b, 16);
    assert_int_equal(t->n_parts, 3);
    assert_int_equal(t->cfg.retention_ms, 1234);
    assert_ptr_equal(broker_topic_find_id(f->b, id), t);

    assert_int_equal(broker_topic_delete(f->b, t), KERR_NONE);
    assert_null(broker_topic_find(f->b, cn_str_c("t1")));
    assert_false(path_exists(f->dir, "t1-0"));
    assert_false(path_exists(f->dir, ".topics/t1.conf"));
    fx_close(f);
    fx_open(f);
    assert_int_equal(broker_topic_count(f->b), 0);
}

static void test_add_partitions_and_config(void **state)
{
    fixture *f = *state;
    char msg[256];
    topic *t = NULL;
    assert_int_equal(broker_topic_create(f->b, cn_str_c("grow"), 1, NULL, 0, 0, msg, sizeof(msg), &t),
                     KERR_NONE);
    assert_int_equal(broker_topic_add_partitions(f->b, t, 1, NULL, 0, msg, sizeof(msg)),
                     -CN_EPARTITIONS);
    assert_int_equal(broker_topic_add_partitions(f->b, t, 4, NULL, 1, msg, sizeof(msg)), KERR_NONE);
    assert_int_equal(t->n_parts, 1);
    assert_int_equal(broker_topic_add_partitions(f->b, t, 4, NULL, 0, msg, sizeof(msg)), KERR_NONE);
    assert_int_equal(t->n_parts, 4);
    assert_int_equal(broker_topic_set_config(f->b, t, "segment.bytes", "1048576", 0, msg,
                                             sizeof(msg)), KERR_NONE);
    assert_int_equal(broker_topic_set_config(f->b, t, "segment.bytes", "abc", 0, msg, sizeof(msg)),
                     -CN_ECONFIG);
    assert_int_equal(t->cfg.segment_bytes, 1048576);
    fx_close(f);
    fx_open(f);
    t = broker_topic_find(f->b, cn_str_c("grow"));
    assert_int_equal(t->n_parts, 4);
    assert_int_equal(t->cfg.segment_bytes, 1048576);
    /* Reset to the broker default. */
    assert_int_equal(broker_topic_set_config(f->b, t, "segment.bytes", NULL, 0, msg, sizeof(msg)),
                     KERR_NONE);
    assert_int_equal(t->cfg.segment_bytes, f->cfg.segment_bytes);
}

static void test_orphans_removed(void **state)
{
    fixture *f = *state;
    fx_close(f);
    char p[256];
    snprintf(p, sizeof(p), "%s/ghost-0", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/ghost-0/00000000000000000000.log", f->dir);
    FILE *fp = fopen(p, "w");
    fputs("junk", fp);
    fclose(fp);
    fx_open(f);
    assert_false(path_exists(f->dir, "ghost-0"));
    assert_null(broker_topic_find(f->b, cn_str_c("ghost")));
}

/* An internal partition dropped: closed, its directory gone, reopened empty. */
static void test_internal_partition_drop(void **state)
{
    fixture *f = *state;
    partition *p;
    assert_int_equal(broker_internal_partition(f->b, "__amqp_q-7", &p), 0);
    batch_build_rec rec = {"k", 1, "v", 1, 1000};
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_build(&rec, 1, 0, 0, &batch, &len), 0);
    int64_t base;
    assert_int_equal(broker_append(f->b, p, batch, len, &base), 0);
    free(batch);
    assert_true(path_exists(f->dir, "__amqp_q-7-0"));
    broker_internal_partition_drop(f->b, "__amqp_q-7");
    assert_false(path_exists(f->dir, "__amqp_q-7-0"));
    broker_internal_partition_drop(f->b, "__amqp_q-7"); /* not open: a no-op */
    assert_int_equal(broker_internal_partition(f->b, "__amqp_q-7", &p), 0);
    assert_int_equal(log_end_offset(p->log), 0);
    assert_true(broker_topic_name_reserved(cn_str_c("__amqp_q-7")));
    assert_true(broker_topic_name_reserved(cn_str_c("__amqp_meta")));
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

static void stop_when_fired(loop_timer *t)
{
    (void)t;
}

static void test_append_and_durable_wait(void **state)
{
    fixture *f = *state;
    char msg[256];
    topic *t = NULL;
    assert_int_equal(broker_topic_create(f->b, cn_str_c("d"), 1, NULL, 0, 0, msg, sizeof(msg), &t),
                     KERR_NONE);
    batch_build_rec recs[2] = {{"k", 1, "v1", 2, 1000}, {NULL, -1, "v2", 2, 1001}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(recs, 2, 0, 0, &buf, &len), 0);
    int64_t base = -1;
    assert_int_equal(broker_append(f->b, t->parts[0], buf, len, &base), 0);
    assert_int_equal(base, 0);
    assert_int_equal(broker_append(f->b, t->parts[0], buf, len, &base), 0);
    assert_int_equal(base, 2);
    assert_int_equal(log_high_watermark(t->parts[0]->log), 4);
    waiter w = {.w = {.target = 4, .cb = on_durable}};
    broker_wait_durable(f->b, t->parts[0], &w.w);
    /* Drive the loop until the syncer reports (bounded). */
    loop_timer tm;
    loop_timer_init(&tm, stop_when_fired, NULL);
    for (int i = 0; i < 200 && !w.fired; i++) {
        loop_timer_start(f->l, &tm, 10);
        loop_run_once(f->l, 10);
    }
    loop_timer_stop(f->l, &tm);
    assert_int_equal(w.fired, 1);
    assert_int_equal(w.status, 0);
    assert_true(log_durable_offset(t->parts[0]->log) >= 4);
    /* A wait that is already satisfied fires at once. */
    waiter w2 = {.w = {.target = 2, .cb = on_durable}};
    broker_wait_durable(f->b, t->parts[0], &w2.w);
    assert_int_equal(w2.fired, 1);
    free(buf);
}

/* Drive the loop until x fired (bounded). */
static void run_until_fired(fixture *f, waiter *x)
{
    loop_timer tm;
    loop_timer_init(&tm, stop_when_fired, NULL);
    for (int i = 0; i < 200 && !x->fired; i++) {
        loop_timer_start(f->l, &tm, 10);
        loop_run_once(f->l, 10);
    }
    loop_timer_stop(f->l, &tm);
}

static void test_delete_records(void **state)
{
    fixture *f = *state;
    char msg[256];
    topic *t = NULL;
    assert_int_equal(broker_topic_create(f->b, cn_str_c("dr"), 1, NULL, 0, 0, msg, sizeof(msg), &t),
                     KERR_NONE);
    batch_build_rec recs[2] = {{"k", 1, "v1", 2, 1000}, {NULL, -1, "v2", 2, 1001}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(recs, 2, 0, 0, &buf, &len), 0);
    int64_t base = -1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(broker_append(f->b, t->parts[0], buf, len, &base), 0);
    partition *p = t->parts[0];
    assert_int_equal(log_high_watermark(p->log), 6);

    /* Out of range: w untouched. */
    waiter bad = {.w = {.cb = on_durable}};
    assert_int_equal(broker_delete_records(f->b, p, 7, &bad.w), -CN_ERANGE);
    assert_int_equal(bad.fired, 0);

    /* Answered once the new start is durable, not before. */
    waiter w = {.w = {.cb = on_durable}};
    assert_int_equal(broker_delete_records(f->b, p, 3, &w.w), 0);
    assert_int_equal(w.w.target, 3);
    assert_int_equal(log_start_offset(p->log), 3);
    if (!w.fired)
        assert_true(log_start_durable(p->log) < 3);
    run_until_fired(f, &w);
    assert_int_equal(w.fired, 1);
    assert_int_equal(w.status, 0);
    assert_true(log_start_durable(p->log) >= 3);

    /* At or below the start: nothing moves, answered at once with the start. */
    waiter w2 = {.w = {.cb = on_durable}};
    assert_int_equal(broker_delete_records(f->b, p, 1, &w2.w), 0);
    assert_int_equal(w2.fired, 1);
    assert_int_equal(w2.w.target, 3);

    /* Survives a restart. */
    fx_close(f);
    fx_open(f);
    t = broker_topic_find(f->b, cn_str_c("dr"));
    assert_non_null(t);
    assert_int_equal(log_start_offset(t->parts[0]->log), 3);
    assert_int_equal(log_end_offset(t->parts[0]->log), 6);

    /* Topic deleted while the answer waits: the wait fails. */
    waiter w3 = {.w = {.cb = on_durable}};
    assert_int_equal(broker_delete_records(f->b, t->parts[0], 6, &w3.w), 0);
    if (!w3.fired) {
        assert_int_equal(broker_topic_delete(f->b, t), 0);
        assert_int_equal(w3.fired, 1);
        assert_int_equal(w3.status, -CN_EIO);
    }
    free(buf);
}

/* Several front ends wait on appends: each listener runs once per loop
 * iteration that appended, and one may remove another during notification. */
typedef struct counting_listener {
    broker_listener l;
    int calls;
    broker *b;
    struct counting_listener *victim;   /* unlisten this one when called */
} counting_listener;

static void count_cb(broker_listener *l)
{
    counting_listener *c = (counting_listener *)l;
    c->calls++;
    if (c->victim) {
        broker_unlisten_appends(c->b, &c->victim->l);
        c->victim = NULL;
    }
}

static void test_append_listeners(void **state)
{
    fixture *f = *state;
    char msg[256];
    topic *t = NULL;
    assert_int_equal(broker_topic_create(f->b, cn_str_c("al"), 1, NULL, 0, 0, msg, sizeof(msg), &t),
                     0);
    counting_listener a = {.l.cb = count_cb, .b = f->b}, b = a, c = a;
    broker_listen_appends(f->b, &a.l);
    broker_listen_appends(f->b, &b.l);
    broker_listen_appends(f->b, &c.l);     /* called first: newest at the head */
    c.victim = &b;                          /* c removes b before b is reached */
    batch_build_rec rec = {"k", 1, "v", 1, 1000};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(&rec, 1, 0, 0, &buf, &len), 0);
    int64_t base;
    assert_int_equal(broker_append(f->b, t->parts[0], buf, len, &base), 0);
    loop_run_once(f->l, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    /* No append: nobody is called. */
    loop_run_once(f->l, 0);
    assert_int_equal(a.calls + c.calls, 2);
    broker_unlisten_appends(f->b, &a.l);
    assert_int_equal(broker_append(f->b, t->parts[0], buf, len, &base), 0);
    loop_run_once(f->l, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(c.calls, 2);
    broker_unlisten_appends(f->b, &c.l);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_rule),
        cmocka_unit_test_setup_teardown(test_internal_partition_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_persist_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_partitions_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_and_durable_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_listeners, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
