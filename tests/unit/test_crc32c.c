/* Unit tests for util/crc32c: published vectors, the hardware path against the
 * table path over every short length and alignment and over large random
 * buffers (which cross the three-stream block boundaries), and incremental
 * updates against one-shot. Ends with an informational throughput line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/crc32c.h"

/* xorshift64*: deterministic test data without depending on rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next() >> 56);
}

/* Bit-at-a-time reference, independent of both implementations' tables. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int i = 0; i < 8; i++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void check_both(const void *buf, size_t len, uint32_t want)
{
    assert_int_equal(crc32c(0, buf, len), want);
    assert_int_equal(crc32c_sw(0, buf, len), want);
    assert_int_equal(crc_ref(0, buf, len), want);
}

static void test_known_vectors(void **state)
{
    (void)state;
    uint8_t b[48];

    check_both("", 0, 0x00000000);
    check_both(NULL, 0, 0x00000000);
    check_both("a", 1, 0xC1D04330);
    check_both("123456789", 9, 0xE3069283);
    check_both("The quick brown fox jumps over the lazy dog", 43, 0x22620404);

    /* RFC 3720 (iSCSI) appendix B.4. */
    memset(b, 0, 32);
    check_both(b, 32, 0x8A9136AA);
    memset(b, 0xff, 32);
    check_both(b, 32, 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    check_both(b, 32, 0x46DD794E);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    check_both(b, 32, 0x113FDB5C);
    static const uint8_t iscsi_read[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    check_both(iscsi_read, sizeof(iscsi_read), 0xD9963A56);
}

static void test_hw_matches_sw_every_length_and_alignment(void **state)
{
    (void)state;
    enum { MAXLEN = 1024, MAXOFF = 16 };
    uint8_t *buf = malloc(MAXLEN + MAXOFF);
    assert_non_null(buf);
    rng_fill(buf, MAXLEN + MAXOFF);

    for (size_t off = 0; off < MAXOFF; off++) {
        for (size_t len = 0; len <= MAXLEN; len++) {
            uint32_t sw = crc32c_sw(0, buf + off, len);
            assert_int_equal(crc32c(0, buf + off, len), sw);
            /* A non-zero starting CRC takes the same paths. */
            assert_int_equal(crc32c(0xDEADBEEF, buf + off, len),
                             crc32c_sw(0xDEADBEEF, buf + off, len));
            if (off == 0 && len % 64 == 0)
                assert_int_equal(crc_ref(0, buf, len), sw);
        }
    }
    free(buf);
}

static void test_hw_matches_sw_large_random_buffers(void **state)
{
    (void)state;
    enum { BIG = 4 << 20 };
    uint8_t *buf = malloc(BIG + 8);
    assert_non_null(buf);
    rng_fill(buf, BIG + 8);

    /* Sizes around the 3 x 4096-byte block and the merge thresholds. */
    static const size_t fixed[] = {71,    72,    73,    12287, 12288, 12289, 12288 + 71,
                                   12288 + 72, 24576, 24575, 24577, 36864 + 100,
                                   65536, 100000, 1 << 20, (1 << 20) + 7, BIG};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        for (size_t off = 0; off < 8; off += 3)
            assert_int_equal(crc32c(0, buf + off, fixed[i]), crc32c_sw(0, buf + off, fixed[i]));

    for (int i = 0; i < 200; i++) {
        size_t len = (size_t)(rng_next() % (BIG / 4));
        size_t off = (size_t)(rng_next() % 8);
        uint32_t seed = (uint32_t)rng_next();
        assert_int_equal(crc32c(seed, buf + off, len), crc32c_sw(seed, buf + off, len));
    }
    free(buf);
}

static void test_incremental_matches_one_shot(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint8_t *buf = malloc(N);
    assert_non_null(buf);
    rng_fill(buf, N);
    uint32_t whole = crc32c(0, buf, N);
    assert_int_equal(crc32c_sw(0, buf, N), whole);

    for (int i = 0; i < 100; i++) {
        size_t a = (size_t)(rng_next() % N);
        size_t b = a + (size_t)(rng_next() % (N - a + 1));
        uint32_t c = crc32c(0, buf, a);
        c = crc32c(c, buf + a, b - a);
        c = crc32c(c, buf + b, N - b);
        assert_int_equal(c, whole);
        uint32_t s = crc32c_sw(crc32c_sw(crc32c_sw(0, buf, a), buf + a, b - a), buf + b, N - b);
        assert_int_equal(s, whole);
    }

    /* Byte at a time, and a zero-length update in the middle. */
    uint32_t c = 0;
    for (size_t i = 0; i < 5000; i++)
        c = crc32c(c, buf + i, 1);
    c = crc32c(c, buf, 0);
    assert_int_equal(c, crc32c(0, buf, 5000));

    assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
    free(buf);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Not an assertion: prints GB/s so regressions are visible in the log. Each
 * call continues from the previous CRC so calls cannot overlap. */
static double throughput(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *buf,
                         size_t len)
{
    uint32_t c = 0;
    size_t bytes = 0;
    double t0 = now_sec(), t;
    do {
        for (int i = 0; i < 16; i++)
            c = fn(c, buf, len);
        bytes += 16 * len;
        t = now_sec() - t0;
    } while (t < 0.05);
    if (c == 0x12345678) /* keep the result live */
        fprintf(stderr, " ");
    return (double)bytes / t / 1e9;
}

static void test_print_throughput(void **state)
{
    (void)state;
    enum { LEN = 1 << 20 };
    uint8_t *buf = malloc(LEN);
    assert_non_null(buf);
    rng_fill(buf, LEN);
    printf("crc32c: hw=%s  1 MiB: crc32c %.2f GB/s, crc32c_sw %.2f GB/s\n",
           crc32c_hw_available() ? "sse4.2" : "no", throughput(crc32c, buf, LEN),
           throughput(crc32c_sw, buf, LEN));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_hw_matches_sw_every_length_and_alignment),
        cmocka_unit_test(test_hw_matches_sw_large_random_buffers),
        cmocka_unit_test(test_incremental_matches_one_shot),
        cmocka_unit_test(test_print_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
