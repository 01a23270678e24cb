/* Unit tests for AMQP routing predicates (amqp/route.h): topic patterns
 * with * and #, and headers-exchange matching (x-match all/any). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "amqp/route.h"
#include "util/wbuf.h"

static int tm(const char *p, const char *k)
{
    return asrv_topic_match(cn_str_c(p), cn_str_c(k));
}

static void test_topic(void **state)
{
    (void)state;
    assert_true(tm("a.b.c", "a.b.c"));
    assert_false(tm("a.b.c", "a.b"));
    assert_false(tm("a.b", "a.b.c"));
    assert_true(tm("a.*.c", "a.x.c"));
    assert_false(tm("a.*.c", "a.c"));
    assert_false(tm("a.*.c", "a.x.y.c"));
    assert_true(tm("#", ""));
    assert_true(tm("#", "a.b.c"));
    assert_true(tm("a.#", "a"));
    assert_true(tm("a.#", "a.b.c"));
    assert_false(tm("a.#", "b.a"));
    assert_true(tm("#.c", "a.b.c"));
    assert_true(tm("#.c", "c"));
    assert_true(tm("a.#.c", "a.c"));
    assert_true(tm("a.#.c", "a.x.y.c"));
    assert_false(tm("a.#.c", "a.x.y.d"));
    assert_true(tm("*.orange.*", "quick.orange.rabbit"));
    assert_false(tm("*.orange.*", "quick.orange.male.rabbit"));
    assert_true(tm("lazy.#", "lazy.orange.male.rabbit"));
    assert_true(tm("*.*.rabbit", "lazy.orange.rabbit"));
    assert_false(tm("*", ""));   /* "" has no words */
    assert_true(tm("", ""));
    assert_false(tm("", "a"));
    assert_true(tm("#.#", "a"));
    assert_true(tm("*.#", "a"));
    assert_false(tm("*.*", "a"));
    assert_false(tm("abc", "abd"));
}

static void put_str(wbuf *w, const char *k, const char *v)
{
    amqp_value val = {.tag = AMQP_T_LONGSTR};
    val.u.str = cn_str_c(v);
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static void put_int(wbuf *w, const char *k, int32_t i)
{
    amqp_value val = {.tag = AMQP_T_I32};
    val.u.i32 = i;
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &val), 0);
}

static amqp_table tab(wbuf *w)
{
    return (amqp_table){w->buf, (uint32_t)w->len};
}

static void test_headers(void **state)
{
    (void)state;
    wbuf all, any, h1, h2, h3, none;
    wbuf_init(&all);
    wbuf_init(&any);
    wbuf_init(&h1);
    wbuf_init(&h2);
    wbuf_init(&h3);
    wbuf_init(&none);
    put_str(&all, "x-match", "all");
    put_str(&all, "format", "pdf");
    put_str(&all, "type", "report");
    put_str(&any, "x-match", "any");
    put_str(&any, "format", "pdf");
    put_int(&any, "n", 7);
    put_str(&h1, "format", "pdf");
    put_str(&h1, "type", "report");
    put_str(&h2, "format", "pdf");
    put_str(&h2, "type", "log");
    {
        amqp_value v = {.tag = AMQP_T_I64};
        v.u.i64 = 7;
        assert_int_equal(amqp_put_entry(&h3, cn_str_c("n"), &v), 0);
    }
    assert_true(asrv_headers_match(tab(&all), tab(&h1)));
    assert_false(asrv_headers_match(tab(&all), tab(&h2)));
    assert_false(asrv_headers_match(tab(&all), tab(&h3)));
    assert_true(asrv_headers_match(tab(&any), tab(&h1)));
    assert_true(asrv_headers_match(tab(&any), tab(&h2)));
    assert_true(asrv_headers_match(tab(&any), tab(&h3))); /* 7 as I32 == 7 as I64 */
    assert_false(asrv_headers_match(tab(&any), tab(&none)));
    assert_true(asrv_headers_match(tab(&none), tab(&h2))); /* no args, all: matches */
    /* malformed */
    uint8_t bad[] = {5, 'a'};
    assert_false(asrv_headers_match(tab(&all), (amqp_table){bad, sizeof(bad)}));
    wbuf_fini(&all);
    wbuf_fini(&any);
    wbuf_fini(&h1);
    wbuf_fini(&h2);
    wbuf_fini(&h3);
    wbuf_fini(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
