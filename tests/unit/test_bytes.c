/* Unit tests for util/bytes.h (big-endian, zigzag varints) and util/bin.h
 * (the big-endian reader and writer of our own record formats): golden
 * encodings at the edges, truncated and overlong input, sticky reader
 * failure, null strings and bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/bin.h"
#include "util/bytes.h"
#include "util/common.h"

typedef struct v_case {
    int64_t v;
    uint8_t b[10];
    size_t n;
} v_case;

static void test_be_round_trip(void **state)
{
    (void)state;
    uint8_t b[8];
    be_put16(b, 0xa1b2);
    assert_memory_equal(b, "\xa1\xb2", 2);
    assert_int_equal(be_get16(b), 0xa1b2);
    be_put32(b, 0x01020304u);
    assert_memory_equal(b, "\x01\x02\x03\x04", 4);
    assert_int_equal(be_get32(b), 0x01020304u);
    be_put64(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true(be_get64(b) == 0x0102030405060708ull);
    be_put32(b, (uint32_t)-2);
    assert_int_equal((int32_t)be_get32(b), -2);
}

static void test_varint_golden(void **state)
{
    (void)state;
    static const v_case cases[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {1, {0x02}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
        {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(cases); i++) {
        uint8_t out[10];
        size_t n = uvarint_put(out, zz_enc64(cases[i].v));
        assert_int_equal(n, cases[i].n);
        assert_int_equal(uvarint_size(zz_enc64(cases[i].v)), cases[i].n);
        assert_memory_equal(out, cases[i].b, n);
        const uint8_t *p = cases[i].b;
        int32_t v32;
        assert_int_equal(varint_get(&p, cases[i].b + n, &v32), 0);
        assert_int_equal(v32, cases[i].v);
        assert_ptr_equal(p, cases[i].b + n);
        p = cases[i].b;
        int64_t v64;
        assert_int_equal(varlong_get(&p, cases[i].b + n, &v64), 0);
        assert_true(v64 == cases[i].v);
    }
    /* varlong edges */
    static const int64_t longs[] = {INT64_MAX, INT64_MIN, (int64_t)1 << 40, -((int64_t)1 << 40)};
    for (size_t i = 0; i < CN_ARRAY_LEN(longs); i++) {
        uint8_t out[10];
        size_t n = uvarint_put(out, zz_enc64(longs[i]));
        const uint8_t *p = out;
        int64_t v;
        assert_int_equal(varlong_get(&p, out + n, &v), 0);
        assert_true(v == longs[i]);
        assert_ptr_equal(p, out + n);
    }
}

static void test_varint_truncated_and_overlong(void **state)
{
    (void)state;
    static const uint8_t cont[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x80};
    int32_t v32;
    int64_t v64;
    for (size_t n = 0; n <= 4; n++) {          /* truncated: every byte continues */
        const uint8_t *p = cont;
        assert_int_equal(varint_get(&p, cont + n, &v32), -1);
    }
    const uint8_t *p = cont;                    /* a 6th byte is never read */
    assert_int_equal(varint_get(&p, cont + 11, &v32), -1);
    p = cont;
    assert_int_equal(varlong_get(&p, cont + 11, &v64), -1);
    p = cont;
    assert_int_equal(varint_get(&p, cont, &v32), -1);   /* empty */
    /* uvarint_get with an explicit bound */
    uint64_t u;
    static const uint8_t two[2] = {0x81, 0x01};
    p = two;
    assert_int_equal(uvarint_get(&p, two + 2, 1, &u), -1);
    p = two;
    assert_int_equal(uvarint_get(&p, two + 2, 2, &u), 0);
    assert_int_equal(u, 129);
}

static void test_bin_round_trip(void **state)
{
    (void)state;
    wbuf w;
    wbuf_init(&w);
    bin_put_i8(&w, -3);
    bin_put_i16(&w, -2);
    bin_put_i32(&w, 0x7fffffff);
    bin_put_i64(&w, INT64_MIN);
    bin_put_str(&w, cn_str_c("topic"));
    bin_put_str(&w, (cn_str){NULL, -1});
    bin_put_str(&w, (cn_str){NULL, 5});            /* NULL ptr writes null */
    bin_put_bytes(&w, (cn_bytes){(const uint8_t *)"\x00\x01", 2});
    bin_put_bytes(&w, (cn_bytes){NULL, -1});
    assert_int_equal(w.len, 1 + 2 + 4 + 8 + (2 + 5) + 2 + 2 + (4 + 2) + 4);
    bin_reader r;
    bin_reader_init(&r, w.buf, w.len);
    assert_int_equal(bin_i8(&r), -3);
    assert_int_equal(bin_i16(&r), -2);
    assert_int_equal(bin_i32(&r), 0x7fffffff);
    assert_true(bin_i64(&r) == INT64_MIN);
    assert_true(cn_str_eq(bin_str(&r), "topic"));
    assert_int_equal(bin_str(&r).len, -1);
    assert_int_equal(bin_str(&r).len, -1);
    cn_bytes b = bin_bytes(&r);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.ptr, "\x00\x01", 2);
    assert_int_equal(bin_bytes(&r).len, -1);
    assert_int_equal(bin_remaining(&r), 0);
    assert_int_equal(r.err, 0);
    wbuf_fini(&w);
}

static void test_bin_reader_fails_sticky(void **state)
{
    (void)state;
    static const uint8_t short_str[] = {0x00, 0x05, 'a', 'b'};   /* says 5, has 2 */
    bin_reader r;
    bin_reader_init(&r, short_str, sizeof(short_str));
    assert_int_equal(bin_str(&r).len, 0);
    assert_int_equal(r.err, -CN_EPROTO);
    assert_int_equal(bin_i8(&r), 0);           /* every later read gives zero */
    assert_int_equal(bin_remaining(&r), 0);
    static const uint8_t neg[] = {0xff, 0xfe};  /* length -2: invalid */
    bin_reader_init(&r, neg, sizeof(neg));
    (void)bin_str(&r);
    assert_int_equal(r.err, -CN_EPROTO);
    bin_reader_init(&r, neg, 1);               /* i16 from one byte */
    assert_int_equal(bin_i16(&r), 0);
    assert_int_equal(r.err, -CN_EPROTO);
    assert_null(bin_take(&r, 1));
    bin_reader_init(&r, NULL, 0);              /* empty input: no arithmetic on NULL */
    assert_int_equal(bin_remaining(&r), 0);
    assert_int_equal(bin_str(&r).len, 0);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_str_views(void **state)
{
    (void)state;
    assert_true(cn_str_eq(cn_str_c("ab"), "ab"));
    assert_false(cn_str_eq(cn_str_c("ab"), "abc"));
    assert_false(cn_str_eq(cn_str_c(NULL), ""));
    assert_false(cn_str_eq(cn_str_c("x"), NULL));
    assert_true(cn_str_eq((cn_str){NULL, 0}, ""));
    assert_int_equal(cn_str_c(NULL).len, -1);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(cn_strerror(0), "ok");
    assert_string_equal(cn_strerror(-CN_ENOMEMBER), "unknown member id");
    assert_string_equal(cn_strerror(CN_EGROUPFULL), "group is full");
    assert_string_equal(cn_strerror(-CN_ECORRUPT), "corrupt data");
    assert_string_equal(cn_strerror(-CN_ENOSPC), strerror(ENOSPC));
    for (int e = CN_E_BASE + 1; e < CN_E_LAST; e++)   /* every core code is named */
        assert_true(strcmp(cn_strerror(-e), strerror(e)) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_be_round_trip),
        cmocka_unit_test(test_varint_golden),
        cmocka_unit_test(test_varint_truncated_and_overlong),
        cmocka_unit_test(test_bin_round_trip),
        cmocka_unit_test(test_bin_reader_fails_sticky),
        cmocka_unit_test(test_str_views),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
