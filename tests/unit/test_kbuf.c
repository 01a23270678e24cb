/* Unit tests for proto/kafka/kbuf: golden bytes for big-endian ints, varints
 * (unsigned, zigzag int and long) at their edge values, overflow and
 * truncation errors (sticky), classic/compact strings and bytes including
 * null, hostile array counts, tag skipping, and the writer's growth, tag
 * framing and splices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/kafka/kbuf.h"
#include "util/common.h"

/* Asserts that the writer holds exactly the n bytes of want. */
static void assert_bytes(const kw *w, const uint8_t *want, size_t n)
{
    assert_int_equal(w->len, n);
    assert_memory_equal(w->buf, want, n);
}

/* A reader over a heap copy of exactly n bytes, so ASan sees over-reads. */
static uint8_t *copy(const uint8_t *b, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, b, n);
    return p;
}

static void test_fixed_width_big_endian(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    kw_i8(&w, -2);
    kw_i16(&w, 0x0102);
    kw_i32(&w, -2);
    kw_i64(&w, 0x0102030405060708LL);
    kw_u16(&w, 0xfffe);
    kw_u32(&w, 0x80000001u);
    kw_bool(&w, 7);
    kw_f64(&w, 1.0);
    static const uint8_t want[] = {
        0xfe, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07, 0x08, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x01, 0x01, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
    };
    assert_bytes(&w, want, sizeof(want));

    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    assert_int_equal(kr_i8(&r), -2);
    assert_int_equal(kr_i16(&r), 0x0102);
    assert_int_equal(kr_i32(&r), -2);
    assert_true(kr_i64(&r) == 0x0102030405060708LL);
    assert_int_equal(kr_u16(&r), 0xfffe);
    assert_int_equal(kr_u32(&r), 0x80000001u);
    assert_int_equal(kr_bool(&r), 1);
    assert_true(kr_f64(&r) == 1.0);
    assert_int_equal(r.err, 0);
    assert_int_equal(kr_remaining(&r), 0);
    kw_fini(&w);
}

typedef struct uv_case {
    uint32_t v;
    uint8_t b[5];
    size_t n;
} uv_case;

static void test_uvarint_golden(void **state)
{
    (void)state;
    static const uv_case cases[] = {
        { 0, { 0x00 }, 1 },
        { 1, { 0x01 }, 1 },
        { 127, { 0x7f }, 1 },
        { 128, { 0x80, 0x01 }, 2 },
        { 300, { 0xac, 0x02 }, 2 },
        { 16383, { 0xff, 0x7f }, 2 },
        { 16384, { 0x80, 0x80, 0x01 }, 3 },
        { UINT32_MAX, { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5 },
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(cases); i++) {
        kw w;
        kw_init(&w);
        kw_uvarint(&w, cases[i].v);
        assert_bytes(&w, cases[i].b, cases[i].n);
        kr r;
        kr_init(&r, w.buf, w.len, NULL);
        assert_int_equal(kr_uvarint(&r), cases[i].v);
        assert_int_equal(r.err, 0);
        assert_int_equal(kr_remaining(&r), 0);
        kw_fini(&w);
    }
}

typedef struct v_case {
    int64_t v;
    uint8_t b[10];
    size_t n;
} v_case;

static void test_zigzag_varint_golden(void **state)
{
    (void)state;
    static const v_case cases[] = {
        { 0, { 0x00 }, 1 },
        { -1, { 0x01 }, 1 },
        { 1, { 0x02 }, 1 },
        { -2, { 0x03 }, 1 },
        { 63, { 0x7e }, 1 },
        { -64, { 0x7f }, 1 },
        { 64, { 0x80, 0x01 }, 2 },
        { INT32_MAX, { 0xfe, 0xff, 0xff, 0xff, 0x0f }, 5 },
        { INT32_MIN, { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5 },
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(cases); i++) {
        kw w;
        kw_init(&w);
        kw_varint(&w, (int32_t)cases[i].v);
        assert_bytes(&w, cases[i].b, cases[i].n);
        kr r;
        kr_init(&r, w.buf, w.len, NULL);
        assert_int_equal(kr_varint(&r), cases[i].v);
        assert_int_equal(r.err, 0);
        kw_fini(&w);
    }
}

static void test_zigzag_varlong_golden(void **state)
{
    (void)state;
    static const v_case cases[] = {
        { 0, { 0x00 }, 1 },
        { -1, { 0x01 }, 1 },
        { 1, { 0x02 }, 1 },
        { 150, { 0xac, 0x02 }, 2 },
        { INT64_MAX, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
        { INT64_MIN, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(cases); i++) {
        kw w;
        kw_init(&w);
        kw_varlong(&w, cases[i].v);
        assert_bytes(&w, cases[i].b, cases[i].n);
        kr r;
        kr_init(&r, w.buf, w.len, NULL);
        assert_true(kr_varlong(&r) == cases[i].v);
        assert_int_equal(r.err, 0);
        kw_fini(&w);
    }
}

static void test_varint_overflow_fails(void **state)
{
    (void)state;
    /* Continuation bit on the 5th byte of a 32-bit varint. */
    static const uint8_t six[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    kr r;
    kr_init(&r, six, sizeof(six), NULL);
    assert_int_equal(kr_uvarint(&r), 0);
    assert_int_equal(r.err, -CN_EPROTO);
    kr_init(&r, six, sizeof(six), NULL);
    assert_int_equal(kr_varint(&r), 0);
    assert_int_equal(r.err, -CN_EPROTO);
    /* Five bytes whose value needs more than 32 bits. */
    static const uint8_t big[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };
    kr_init(&r, big, sizeof(big), NULL);
    (void)kr_uvarint(&r);
    assert_int_equal(r.err, -CN_EPROTO);
    /* Eleven bytes for a varlong. */
    static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                      0x80, 0x80, 0x80, 0x80, 0x01 };
    kr_init(&r, eleven, sizeof(eleven), NULL);
    assert_true(kr_varlong(&r) == 0);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_truncation_is_sticky(void **state)
{
    (void)state;
    static const uint8_t b[] = { 0x00, 0x00, 0x01, 0x7f, 0x05 };
    uint8_t *p = copy(b, 3);
    kr r;
    kr_init(&r, p, 3, NULL);
    assert_int_equal(kr_i32(&r), 0); /* only 3 bytes */
    assert_int_equal(r.err, -CN_EPROTO);
    assert_int_equal(kr_i8(&r), 0); /* bytes remain but the reader failed */
    assert_int_equal(kr_remaining(&r), 0);
    free(p);

    /* A varint cut in the middle. */
    static const uint8_t cut[] = { 0x80, 0x80 };
    p = copy(cut, sizeof(cut));
    kr_init(&r, p, sizeof(cut), NULL);
    assert_int_equal(kr_uvarint(&r), 0);
    assert_int_equal(r.err, -CN_EPROTO);
    free(p);

    /* kr_raw past the end, and uuid with 15 bytes. */
    p = copy(b, sizeof(b));
    kr_init(&r, p, sizeof(b), NULL);
    assert_null(kr_raw(&r, 6));
    assert_int_equal(r.err, -CN_EPROTO);
    free(p);
    uint8_t u15[15] = { 1 };
    kr_init(&r, u15, sizeof(u15), NULL);
    kuuid u = kr_uuid(&r);
    assert_int_equal(u.b[0], 0);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_classic_strings(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    kw_str(&w, kstr_c("ab"));
    kw_str(&w, kstr_c(NULL));
    kw_str(&w, kstr_c(""));
    kw_bytes(&w, (kbytes){ (const uint8_t *)"\x01", 1 });
    kw_bytes(&w, (kbytes){ NULL, -1 });
    static const uint8_t want[] = { 0x00, 0x02, 'a', 'b', 0xff, 0xff, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff };
    assert_bytes(&w, want, sizeof(want));
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    kstr s = kr_str(&r);
    assert_int_equal(s.len, 2);
    assert_true(kstr_eq(s, "ab"));
    s = kr_str(&r);
    assert_int_equal(s.len, -1);
    assert_null(s.ptr);
    assert_false(kstr_eq(s, ""));
    s = kr_str(&r);
    assert_int_equal(s.len, 0);
    assert_true(kstr_eq(s, ""));
    kbytes b = kr_bytes(&r);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.ptr[0], 1);
    b = kr_bytes(&r);
    assert_int_equal(b.len, -1);
    assert_int_equal(r.err, 0);
    kw_fini(&w);

    /* -2 is not a length, and a length past the end fails. */
    static const uint8_t bad[] = { 0xff, 0xfe };
    kr_init(&r, bad, sizeof(bad), NULL);
    (void)kr_str(&r);
    assert_int_equal(r.err, -CN_EPROTO);
    static const uint8_t longer[] = { 0x00, 0x05, 'a', 'b' };
    kr_init(&r, longer, sizeof(longer), NULL);
    s = kr_str(&r);
    assert_int_equal(s.len, 0);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_compact_strings(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    kw_cstr(&w, kstr_c("ab"));
    kw_cstr(&w, kstr_c(NULL));
    kw_cstr(&w, kstr_c(""));
    kw_cbytes(&w, (kbytes){ NULL, -1 });
    kw_cbytes(&w, (kbytes){ (const uint8_t *)"xyz", 3 });
    static const uint8_t want[] = { 0x03, 'a', 'b', 0x00, 0x01, 0x00, 0x04, 'x', 'y', 'z' };
    assert_bytes(&w, want, sizeof(want));
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    assert_true(kstr_eq(kr_cstr(&r), "ab"));
    assert_int_equal(kr_cstr(&r).len, -1);
    assert_int_equal(kr_cstr(&r).len, 0);
    assert_int_equal(kr_cbytes(&r).len, -1);
    kbytes b = kr_cbytes(&r);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "xyz", 3);
    assert_int_equal(r.err, 0);
    kw_fini(&w);

    /* Compact length claims 9 bytes, 2 present. */
    static const uint8_t trunc[] = { 0x0a, 'a', 'b' };
    kr_init(&r, trunc, sizeof(trunc), NULL);
    (void)kr_cstr(&r);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_array_len_rejects_hostile_counts(void **state)
{
    (void)state;
    static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
    kr r;
    kr_init(&r, huge, sizeof(huge), NULL);
    assert_int_equal(kr_array_len(&r, 4), 0);
    assert_int_equal(r.err, -CN_EPROTO);

    /* One 4-byte element fits in 4 bytes; two do not. */
    static const uint8_t one[] = { 0x00, 0x00, 0x00, 0x01, 1, 2, 3, 4 };
    kr_init(&r, one, sizeof(one), NULL);
    assert_int_equal(kr_array_len(&r, 4), 1);
    static const uint8_t two[] = { 0x00, 0x00, 0x00, 0x02, 1, 2, 3, 4 };
    kr_init(&r, two, sizeof(two), NULL);
    assert_int_equal(kr_array_len(&r, 4), 0);
    assert_int_equal(r.err, -CN_EPROTO);

    static const uint8_t nul[] = { 0xff, 0xff, 0xff, 0xff };
    kr_init(&r, nul, sizeof(nul), NULL);
    assert_int_equal(kr_array_len(&r, 1), -1);
    assert_int_equal(r.err, 0);
    static const uint8_t neg[] = { 0xff, 0xff, 0xff, 0xfe };
    kr_init(&r, neg, sizeof(neg), NULL);
    (void)kr_array_len(&r, 1);
    assert_int_equal(r.err, -CN_EPROTO);

    static const uint8_t cnull[] = { 0x00 };
    kr_init(&r, cnull, sizeof(cnull), NULL);
    assert_int_equal(kr_carray_len(&r, 1), -1);
    static const uint8_t chuge[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 };
    kr_init(&r, chuge, sizeof(chuge), NULL);
    (void)kr_carray_len(&r, 1);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_alloc_needs_arena_and_respects_limit(void **state)
{
    (void)state;
    kr r;
    kr_init(&r, "", 0, NULL);
    assert_null(kr_alloc(&r, 1, 8));
    assert_int_equal(r.err, -CN_EPROTO);

    arena a;
    arena_init(&a, 1024, 4096);
    kr_init(&r, "", 0, &a);
    assert_non_null(kr_alloc(&r, 2, 8));
    assert_null(kr_alloc(&r, SIZE_MAX / 4, 8)); /* n * sz overflows */
    assert_int_equal(r.err, -CN_EPROTO);
    kr_init(&r, "", 0, &a);
    assert_null(kr_alloc(&r, 1, 8192)); /* over the arena limit */
    assert_int_equal(r.err, -CN_EPROTO);
    arena_fini(&a);
}

static void test_skip_tags(void **state)
{
    (void)state;
    /* Two tags (0: 2 bytes, 5: 0 bytes), then an int8 7. */
    static const uint8_t b[] = { 0x02, 0x00, 0x02, 0xaa, 0xbb, 0x05, 0x00, 0x07 };
    kr r;
    kr_init(&r, b, sizeof(b), NULL);
    kr_skip_tags(&r);
    assert_int_equal(kr_i8(&r), 7);
    assert_int_equal(r.err, 0);
    /* A tag claiming more bytes than remain. */
    static const uint8_t bad[] = { 0x01, 0x00, 0x05, 0xaa };
    kr_init(&r, bad, sizeof(bad), NULL);
    kr_skip_tags(&r);
    assert_int_equal(r.err, -CN_EPROTO);
}

static void test_writer_grows_and_resets(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    for (int i = 0; i < 100000; i++)
        kw_i32(&w, i);
    assert_int_equal(w.len, 400000);
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(kr_i32(&r), i);
    size_t cap = w.cap;
    kw_reset(&w);
    assert_int_equal(w.len, 0);
    assert_int_equal(w.cap, cap);
    kw_i32(&w, 0); /* size placeholder, patched after the body */
    kw_i8(&w, 9);
    kw_put_i32_at(&w, 0, (int32_t)w.len - 4);
    static const uint8_t framed[] = { 0, 0, 0, 1, 9 };
    assert_bytes(&w, framed, sizeof(framed));
    kw_fini(&w);
}

static void test_tag_framing_inserts_size(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    kw_i8(&w, 0x11);
    size_t m = kw_tag_begin(&w, 3);
    for (int i = 0; i < 200; i++) /* 200 needs a 2-byte uvarint size */
        kw_i8(&w, (int8_t)i);
    kw_tag_end(&w, m);
    assert_int_equal(w.len, 1 + 1 + 2 + 200);
    assert_int_equal(w.buf[1], 3);
    assert_int_equal(w.buf[2], 0xc8);
    assert_int_equal(w.buf[3], 0x01);
    assert_int_equal(w.buf[4], 0);
    assert_int_equal(w.buf[203], 199);
    kw_fini(&w);
}

static void test_records_and_splices(void **state)
{
    (void)state;
    int slice_token;
    wbuf_file file = { .fd = 7, .pos = 42, .release = NULL, .ref = &slice_token };
    kw w;
    kw_init(&w);
    kw_records(&w, (krecords){ NULL, 100, &file });
    kw_crecords(&w, (krecords){ (const uint8_t *)"ab", 2, NULL });
    kw_records(&w, (krecords){ NULL, -1, NULL });
    static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x64, 0x03, 'a', 'b', 0xff, 0xff, 0xff, 0xff };
    assert_bytes(&w, want, sizeof(want));
    assert_int_equal(w.n_splices, 1);
    assert_int_equal(w.splices[0].at, 4);
    assert_int_equal(w.splices[0].len, 100);
    assert_int_equal(w.splices[0].f.fd, 7);
    assert_int_equal(w.splices[0].f.pos, 42);
    assert_ptr_equal(w.splices[0].f.ref, &slice_token);
    assert_int_equal(kw_total(&w), sizeof(want) + 100);

    kr r;
    kr_init(&r, want + 4, sizeof(want) - 4, NULL);
    krecords rec = kr_crecords(&r);
    assert_int_equal(rec.len, 2);
    assert_ptr_equal(rec.ptr, want + 5);
    assert_null(rec.file);
    assert_int_equal(kr_records(&r).len, -1);
    kw_fini(&w);
}

/* An empty writer has no buffer: reading it is a clean empty read (fuzz_decode
 * found kr_init doing NULL + 0, which UBSan reports). */
static void test_reader_over_empty_writer(void **state)
{
    (void)state;
    kw w;
    kw_init(&w);
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    assert_int_equal(kr_remaining(&r), 0);
    assert_int_equal(r.err, 0);
    assert_int_equal(kr_i8(&r), 0);
    assert_int_not_equal(r.err, 0);
    kr_init(&r, NULL, 5, NULL);
    assert_int_equal(kr_remaining(&r), 0);
    kw_fini(&w);
}

static void test_uuid_roundtrip(void **state)
{
    (void)state;
    kuuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(i * 17);
    kw w;
    kw_init(&w);
    kw_uuid(&w, u);
    assert_bytes(&w, u.b, 16);
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    kuuid v = kr_uuid(&r);
    assert_memory_equal(v.b, u.b, 16);
    kw_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_width_big_endian),
        cmocka_unit_test(test_reader_over_empty_writer),
        cmocka_unit_test(test_uvarint_golden),
        cmocka_unit_test(test_zigzag_varint_golden),
        cmocka_unit_test(test_zigzag_varlong_golden),
        cmocka_unit_test(test_varint_overflow_fails),
        cmocka_unit_test(test_truncation_is_sticky),
        cmocka_unit_test(test_classic_strings),
        cmocka_unit_test(test_compact_strings),
        cmocka_unit_test(test_array_len_rejects_hostile_counts),
        cmocka_unit_test(test_alloc_needs_arena_and_respects_limit),
        cmocka_unit_test(test_skip_tags),
        cmocka_unit_test(test_writer_grows_and_resets),
        cmocka_unit_test(test_tag_framing_inserts_size),
        cmocka_unit_test(test_records_and_splices),
        cmocka_unit_test(test_uuid_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
