/* Unit tests for AMQP queue arguments (amqp/qargs.h): parsing and
 * validation as RabbitMQ does (406 on a bad type or value, quorum and
 * stream rules, 540 for stream retention arguments) and the redeclare equivalence check
 * (integers by value whatever their field type). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "amqp/qargs.h"
#include "util/wbuf.h"

static void put_str(wbuf *w, const char *k, const char *v)
{
    amqp_value val = {.tag = AMQP_T_LONGSTR};
    val.u.str = cn_str_c(v);
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static void put_i32(wbuf *w, const char *k, int32_t i)
{
    amqp_value val = {.tag = AMQP_T_I32};
    val.u.i32 = i;
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static void put_i64(wbuf *w, const char *k, int64_t i)
{
    amqp_value val = {.tag = AMQP_T_I64};
    val.u.i64 = i;
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static void put_bool(wbuf *w, const char *k, int b)
{
    amqp_value val = {.tag = AMQP_T_BOOL};
    val.u.b = b;
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static amqp_table tab(const wbuf *w)
{
    return (amqp_table){(const uint8_t *)w->buf, (uint32_t)w->len};
}

static void test_parse_all(void **state)
{
    (void)state;
    wbuf w;
    wbuf_init(&w);
    put_i32(&w, "x-message-ttl", 1500);
    put_i64(&w, "x-expires", 60000);
    put_i32(&w, "x-max-length", 10);
    put_i64(&w, "x-max-length-bytes", 4096);
    put_i32(&w, "x-max-priority", 255);
    put_str(&w, "x-overflow", "reject-publish-dlx");
    put_str(&w, "x-dead-letter-exchange", "dlx");
    put_str(&w, "x-dead-letter-routing-key", "rk");
    put_bool(&w, "x-single-active-consumer", 1);
    put_str(&w, "x-queue-type", "quorum");
    put_str(&w, "x-queue-mode", "lazy");
    put_str(&w, "x-unknown", "ignored");
    put_str(&w, "plain", "ignored");
    aqargs a;
    aqargs_err e;
    assert_int_equal(asrv_qargs_parse(tab(&w), 1, 0, 0, &a, &e), 0);
    assert_int_equal(a.message_ttl, 1500);
    assert_int_equal(a.expires, 60000);
    assert_int_equal(a.max_length, 10);
    assert_int_equal(a.max_length_bytes, 4096);
    assert_int_equal(a.max_priority, 255);
    assert_int_equal(a.overflow, AQ_OVF_REJECT_PUBLISH_DLX);
    assert_true(a.has_dlx && a.has_dlrk && a.single_active);
    assert_true(cn_str_eq(a.dlx, "dlx") && cn_str_eq(a.dlrk, "rk"));
    assert_int_equal(a.type, AQ_TYPE_QUORUM);
    /* quorum: durable, not exclusive, not auto-delete */
    assert_int_equal(asrv_qargs_parse(tab(&w), 0, 0, 0, &a, &e), -1);
    assert_int_equal(e.code, 406);
    assert_int_equal(asrv_qargs_parse(tab(&w), 1, 1, 0, &a, &e), -1);
    assert_int_equal(asrv_qargs_parse(tab(&w), 1, 0, 1, &a, &e), -1);
    /* nothing: defaults */
    assert_int_equal(asrv_qargs_parse((amqp_table){NULL, 0}, 0, 0, 0, &a, &e), 0);
    assert_int_equal(a.message_ttl, -1);
    assert_int_equal(a.max_length, -1);
    assert_int_equal(a.overflow, AQ_OVF_DROP_HEAD);
    assert_false(a.has_dlx);
    wbuf_fini(&w);
}

/* One argument alone: the parse's result and reply code. */
static int one(void (*put)(wbuf *, const char *, const char *), const char *k, const char *v,
               uint16_t *code)
{
    wbuf w;
    wbuf_init(&w);
    put(&w, k, v);
    aqargs a;
    aqargs_err e = {0};
    int rc = asrv_qargs_parse(tab(&w), 1, 0, 0, &a, &e);
    *code = e.code;
    wbuf_fini(&w);
    return rc;
}

static void put_s(wbuf *w, const char *k, const char *v) { put_str(w, k, v); }
static void put_n(wbuf *w, const char *k, const char *v) { put_i64(w, k, strtoll(v, NULL, 10)); }

static void test_parse_bad(void **state)
{
    (void)state;
    uint16_t c;
    assert_int_equal(one(put_s, "x-message-ttl", "100", &c), -1);
    assert_int_equal(c, 406);
    assert_int_equal(one(put_n, "x-message-ttl", "-1", &c), -1);
    assert_int_equal(one(put_n, "x-message-ttl", "0", &c), 0);
    assert_int_equal(one(put_n, "x-expires", "0", &c), -1);
    assert_int_equal(one(put_n, "x-max-priority", "256", &c), -1);
    assert_int_equal(one(put_n, "x-max-length", "-3", &c), -1);
    assert_int_equal(one(put_s, "x-overflow", "drop-tail", &c), -1);
    assert_int_equal(one(put_n, "x-dead-letter-exchange", "1", &c), -1);
    assert_int_equal(one(put_s, "x-dead-letter-routing-key", "k", &c), -1); /* no DLX */
    assert_int_equal(one(put_s, "x-single-active-consumer", "true", &c), -1);
    assert_int_equal(one(put_s, "x-queue-type", "lake", &c), -1);
    assert_int_equal(c, 406);
    assert_int_equal(one(put_s, "x-queue-type", "stream", &c), 0);
    assert_int_equal(one(put_s, "x-queue-mode", "fast", &c), -1);
    assert_int_equal(one(put_s, "x-whatever", "x", &c), 0);
}

/* parse {x-queue-type: stream, k: v}: rc, and the reply code in *code */
static int stream_with(wbuf *w, uint16_t *code)
{
    put_str(w, "x-queue-type", "stream");
    aqargs a;
    aqargs_err e = {0};
    int rc = asrv_qargs_parse(tab(w), 1, 0, 0, &a, &e);
    *code = e.code;
    wbuf_fini(w);
    return rc;
}

static void test_stream_arguments(void **state)
{
    (void)state;
    uint16_t c;
    wbuf w;
    wbuf_init(&w);
    put_i64(&w, "x-message-ttl", 100); /* classic-only: 406 */
    assert_int_equal(stream_with(&w, &c), -1);
    assert_int_equal(c, 406);
    wbuf_init(&w);
    put_str(&w, "x-dead-letter-exchange", "dlx");
    assert_int_equal(stream_with(&w, &c), -1);
    assert_int_equal(c, 406);
    wbuf_init(&w);
    put_i64(&w, "x-max-length-bytes", 1000); /* stream retention: 540 */
    assert_int_equal(stream_with(&w, &c), -1);
    assert_int_equal(c, 540);
    wbuf_init(&w);
    put_str(&w, "x-max-age", "7D");
    assert_int_equal(stream_with(&w, &c), -1);
    assert_int_equal(c, 540);
    wbuf_init(&w);
    put_str(&w, "x-queue-mode", "lazy"); /* harmless */
    assert_int_equal(stream_with(&w, &c), 0);
}

static void test_equiv(void **state)
{
    (void)state;
    wbuf a, b, c, d;
    wbuf_init(&a);
    wbuf_init(&b);
    wbuf_init(&c);
    wbuf_init(&d);
    put_i32(&a, "x-message-ttl", 1000);
    put_str(&a, "other", "x");
    put_i64(&b, "x-message-ttl", 1000); /* another integer type, same value */
    put_i32(&c, "x-message-ttl", 2000);
    put_str(&d, "x-queue-type", "classic");
    aqargs_err e;
    assert_int_equal(asrv_qargs_equiv(tab(&a), tab(&b), &e), 0);
    assert_int_equal(asrv_qargs_equiv(tab(&a), tab(&c), &e), -1);
    assert_int_equal(e.code, 406);
    assert_non_null(strstr(e.text, "inequivalent arg 'x-message-ttl'"));
    assert_int_equal(asrv_qargs_equiv(tab(&a), (amqp_table){NULL, 0}, &e), -1);
    /* x-queue-type absent is classic */
    assert_int_equal(asrv_qargs_equiv((amqp_table){NULL, 0}, tab(&d), &e), 0);
    wbuf_reset(&d);
    put_str(&d, "x-queue-type", "quorum");
    assert_int_equal(asrv_qargs_equiv((amqp_table){NULL, 0}, tab(&d), &e), -1);
    wbuf_fini(&a);
    wbuf_fini(&b);
    wbuf_fini(&c);
    wbuf_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_all),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_stream_arguments),
        cmocka_unit_test(test_equiv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
