/* Unit tests for kafka/batch: a golden batch derived by hand from the spec
 * (CRC computed with an independent bitwise CRC-32C), build/validate/foreach
 * round trips for every codec (xerial and raw snappy, LZ4F), and each
 * rejection batch_validate documents: truncation, magic, size, CRC, codec,
 * control, counts, varints, offset deltas, trailing bytes, undecodable and
 * oversized compressed data. Plus LogAppendTime stamping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>

#include "record/batch.h"
#include "util/common.h"
#include "record/batch_int.h"
#include "util/crc32c.h"

#define BIG 1000000

/* Two records, hand-encoded (NOTES.md sections 4-5):
 *   record 0: ts delta 0, offset delta 0, key "k", value "v", no headers
 *   record 1: ts delta 5, offset delta 1, null key, null value, header h=x
 * baseTimestamp 1700000000000 (0x18BCFE56800), no producer id. */
static const uint8_t golden[] = {
    0, 0, 0, 0, 0, 0, 0, 0,                         /* baseOffset 0 */
    0, 0, 0, 0x45,                                  /* batchLength 69 = 81 - 12 */
    0xff, 0xff, 0xff, 0xff,                         /* partitionLeaderEpoch -1 */
    0x02,                                           /* magic */
    0x69, 0x37, 0xd2, 0x64,                         /* crc32c(bytes 21..80) */
    0x00, 0x00,                                     /* attributes */
    0, 0, 0, 1,                                     /* lastOffsetDelta */
    0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,       /* baseTimestamp */
    0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05,       /* maxTimestamp */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producerId -1 */
    0xff, 0xff,                                     /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* baseSequence -1 */
    0, 0, 0, 2,                                     /* recordsCount */
    /* record 0: length 8, attrs, tsDelta 0, offDelta 0, key len 1 "k", value len 1 "v", 0 hdrs */
    0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00,
    /* record 1: length 10, attrs, tsDelta 5, offDelta 1, key -1, value -1, 1 hdr "h"="x" */
    0x14, 0x00, 0x0a, 0x02, 0x01, 0x01, 0x02, 0x02, 'h', 0x02, 'x',
};

/* ---- helpers ---- */

typedef struct seen {
    int n;
    int stop_after;              /* 0 = never */
    int64_t offset[64];
    int64_t ts[64];
    int32_t key_len[64], value_len[64], n_headers[64];
    uint8_t key0[64], value0[64];
    uint32_t value_crc[64];
} seen;

static int collect(const batch_record *r, void *arg)
{
    seen *sn = arg;
    if (sn->n < 64) {
        sn->offset[sn->n] = r->offset;
        sn->ts[sn->n] = r->timestamp;
        sn->key_len[sn->n] = r->key_len;
        sn->value_len[sn->n] = r->value_len;
        sn->n_headers[sn->n] = r->n_headers;
        sn->key0[sn->n] = r->key_len > 0 ? r->key[0] : 0;
        sn->value0[sn->n] = r->value_len > 0 ? r->value[0] : 0;
        sn->value_crc[sn->n] = r->value_len > 0 ? crc32c(0, r->value, (size_t)r->value_len) : 0;
        if (r->key_len == -1)
            assert_null(r->key);
        if (r->value_len == -1)
            assert_null(r->value);
    }
    sn->n++;
    return sn->stop_after && sn->n >= sn->stop_after;
}

/* Fix batchLength to len and recompute the CRC after a test edits bytes. */
static void reseal(uint8_t *b, size_t len)
{
    uint32_t bl = (uint32_t)(len - 12);
    b[8] = (uint8_t)(bl >> 24);
    b[9] = (uint8_t)(bl >> 16);
    b[10] = (uint8_t)(bl >> 8);
    b[11] = (uint8_t)bl;
    uint32_t c = crc32c(0, b + 21, len - 21);
    b[17] = (uint8_t)(c >> 24);
    b[18] = (uint8_t)(c >> 16);
    b[19] = (uint8_t)(c >> 8);
    b[20] = (uint8_t)c;
}

static void set_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A batch with the golden header and the given raw records section. count
 * sets recordsCount and lastOffsetDelta = count - 1. Caller frees. */
static uint8_t *raw_batch(const uint8_t *recs, size_t recs_len, int32_t count, uint16_t attrs,
                          size_t *out_len)
{
    size_t len = BATCH_HEADER_SIZE + recs_len;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    memcpy(b, golden, BATCH_HEADER_SIZE);
    memcpy(b + BATCH_HEADER_SIZE, recs, recs_len);
    b[21] = (uint8_t)(attrs >> 8);
    b[22] = (uint8_t)attrs;
    set_be32(b + 23, (uint32_t)(count - 1));
    set_be32(b + 57, (uint32_t)count);
    reseal(b, len);
    *out_len = len;
    return b;
}

static int validate(const uint8_t *b, size_t len, batch_scratch *s)
{
    int n = -1;
    return batch_validate(b, len, BIG, s, NULL, 0, &n);
}

/* Records: various shapes; value 3 is big and compressible (several lz4
 * blocks and xerial chunks), value 4 is incompressible. */
#define N_RECS 6
static uint8_t big_value[200000];
static uint8_t noise[5000];

static void make_recs(batch_build_rec *r)
{
    for (size_t i = 0; i < sizeof(big_value); i++)
        big_value[i] = (uint8_t)("abcdefgh"[i % 8] + (i / 4096) % 3);
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    r[0] = (batch_build_rec){"key0", 4, "value0", 6, 1000};
    r[1] = (batch_build_rec){NULL, -1, "no key", 6, 999};        /* ts below base */
    r[2] = (batch_build_rec){"tomb", 4, NULL, -1, 1500};         /* null value */
    r[3] = (batch_build_rec){"big", 3, big_value, (int32_t)sizeof(big_value), 1501};
    r[4] = (batch_build_rec){"", 0, noise, (int32_t)sizeof(noise), 2000};
    r[5] = (batch_build_rec){"e", 1, "", 0, 1000};
}

static void check_roundtrip(const uint8_t *b, size_t len, int codec, const batch_build_rec *r,
                            batch_scratch *s)
{
    batch_info info[2];
    int n = -1;
    assert_int_equal(batch_validate(b, len, BIG, s, info, 2, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(info[0].compression, codec);
    assert_int_equal(info[0].record_count, N_RECS);
    assert_int_equal(info[0].last_offset_delta, N_RECS - 1);
    assert_int_equal(info[0].base_offset, 100);
    assert_int_equal(info[0].base_timestamp, 1000);
    assert_int_equal(info[0].max_timestamp, 2000);
    assert_int_equal(info[0].batch_length + 12, (int64_t)len);
    assert_int_equal(info[0].magic, 2);
    assert_int_equal(info[0].producer_id, -1);
    assert_int_equal(info[0].timestamp_type, 0);

    seen sn = {0};
    assert_int_equal(batch_foreach(b, len, s, collect, &sn), 0);
    assert_int_equal(sn.n, N_RECS);
    for (int i = 0; i < N_RECS; i++) {
        assert_int_equal(sn.offset[i], 100 + i);
        assert_int_equal(sn.ts[i], r[i].ts);
        assert_int_equal(sn.key_len[i], r[i].key ? r[i].key_len : -1);
        assert_int_equal(sn.value_len[i], r[i].value ? r[i].value_len : -1);
        assert_int_equal(sn.n_headers[i], 0);
        if (r[i].value && r[i].value_len > 0)
            assert_int_equal(sn.value_crc[i], crc32c(0, r[i].value, (size_t)r[i].value_len));
    }
    assert_int_equal(sn.key0[0], 'k');
    assert_int_equal(sn.value0[1], 'n');
}

/* ---- golden ---- */

static void test_golden_batch_validates_and_iterates(void **state)
{
    (void)state;
    batch_scratch *s = batch_scratch_new();
    assert_int_equal(sizeof(golden), 81);
    assert_int_equal(crc32c(0, golden + 21, sizeof(golden) - 21), 0x6937d264);

    batch_info bi;
    assert_int_equal(batch_parse_header(golden, sizeof(golden), &bi), 0);
    assert_int_equal(bi.base_offset, 0);
    assert_int_equal(bi.batch_length, 69);
    assert_int_equal(bi.leader_epoch, -1);
    assert_int_equal(bi.magic, 2);
    assert_int_equal(bi.crc, 0x6937d264);
    assert_int_equal(bi.attributes, 0);
    assert_int_equal(bi.last_offset_delta, 1);
    assert_int_equal(bi.base_timestamp, 1700000000000LL);
    assert_int_equal(bi.max_timestamp, 1700000000005LL);
    assert_int_equal(bi.producer_id, -1);
    assert_int_equal(bi.producer_epoch, -1);
    assert_int_equal(bi.base_sequence, -1);
    assert_int_equal(bi.record_count, 2);
    assert_int_equal(bi.compression, 0);
    assert_int_equal(bi.transactional, 0);
    assert_int_equal(bi.control, 0);
    assert_int_equal(batch_parse_header(golden, 60, &bi), -1);

    int n = 0;
    batch_info out[1];
    assert_int_equal(batch_validate(golden, sizeof(golden), BIG, s, out, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].crc, 0x6937d264);

    seen sn = {0};
    assert_int_equal(batch_foreach(golden, sizeof(golden), s, collect, &sn), 0);
    assert_int_equal(sn.n, 2);
    assert_int_equal(sn.offset[0], 0);
    assert_int_equal(sn.offset[1], 1);
    assert_int_equal(sn.ts[0], 1700000000000LL);
    assert_int_equal(sn.ts[1], 1700000000005LL);
    assert_int_equal(sn.key_len[0], 1);
    assert_int_equal(sn.key0[0], 'k');
    assert_int_equal(sn.value_len[0], 1);
    assert_int_equal(sn.value0[0], 'v');
    assert_int_equal(sn.key_len[1], -1);
    assert_int_equal(sn.value_len[1], -1);
    assert_int_equal(sn.n_headers[0], 0);
    assert_int_equal(sn.n_headers[1], 1);
    batch_scratch_free(s);
}

static void test_builder_matches_golden_header_fields(void **state)
{
    (void)state;
    batch_build_rec r = {"k", 1, "v", 1, 1700000000000LL};
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(&r, 1, 0, 0, &b, &len), 0);
    /* Same header as golden except count/lastOffsetDelta/maxTs/length/crc;
     * the first record is byte-identical to golden's record 0. */
    assert_int_equal(len, 61 + 9);
    assert_memory_equal(b + 61, golden + 61, 9);
    assert_memory_equal(b, golden, 8);
    assert_memory_equal(b + 12, golden + 12, 5);
    assert_memory_equal(b + 27, golden + 27, 8);
    assert_memory_equal(b + 43, golden + 43, 14);
    assert_int_equal(validate(b, len, NULL), 0);  /* uncompressed: no scratch needed */
    free(b);
}

/* ---- round trips ---- */

static void roundtrip(int codec, int xerial)
{
    batch_build_rec r[N_RECS];
    make_recs(r);
    batch_scratch *s = batch_scratch_new();
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch__build_ex(r, N_RECS, codec, xerial, 100, &b, &len), 0);
    if (codec != 0)
        assert_true(len < sizeof(big_value));      /* it did compress */
    check_roundtrip(b, len, codec, r, s);
    check_roundtrip(b, len, codec, r, s);           /* scratch reuse */
    free(b);
    batch_scratch_free(s);
}

static void test_roundtrip_none(void **state) { (void)state; roundtrip(0, 0); }
static void test_roundtrip_gzip(void **state) { (void)state; roundtrip(1, 0); }
static void test_roundtrip_snappy_raw(void **state) { (void)state; roundtrip(2, 0); }
static void test_roundtrip_zstd(void **state) { (void)state; roundtrip(4, 0); }

static void test_roundtrip_snappy_xerial(void **state)
{
    (void)state;
    roundtrip(2, 1);
    batch_build_rec r = {"k", 1, "v", 1, 5};
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch__build_ex(&r, 1, 2, 1, 0, &b, &len), 0);
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    assert_memory_equal(b + 61, magic, 8);
    free(b);
}

static void test_roundtrip_lz4_frame(void **state)
{
    (void)state;
    roundtrip(3, 0);
    batch_build_rec r = {"k", 1, "v", 1, 5};
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(&r, 1, 3, 0, &b, &len), 0);
    static const uint8_t magic[4] = {0x04, 0x22, 0x4d, 0x18};
    assert_memory_equal(b + 61, magic, 4);
    assert_true(b[65] & 0x20);                     /* block independent */
    free(b);
}

/* A hand-made LZ4F frame with linked blocks and content checksum: Kafka
 * refuses the former. */
static void test_lz4_dependent_blocks_rejected(void **state)
{
    (void)state;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    batch_build_rec r = {"k", 1, "v", 1, 5};
    assert_int_equal(batch_build(&r, 1, 0, 0, &plain, &plain_len), 0);
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof(p));
    p.frameInfo.blockMode = LZ4F_blockLinked;
    size_t recs_len = plain_len - 61;
    size_t cap = LZ4F_compressBound(recs_len, &p) + 64;
    uint8_t *b = malloc(61 + cap);
    memcpy(b, plain, 61);
    /* Streamed, because LZ4F_compressFrame turns one-block input independent. */
    LZ4F_cctx *c = NULL;
    assert_false(LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)));
    size_t got = LZ4F_compressBegin(c, b + 61, cap, &p);
    assert_false(LZ4F_isError(got));
    size_t step = LZ4F_compressUpdate(c, b + 61 + got, cap - got, plain + 61, recs_len, NULL);
    assert_false(LZ4F_isError(step));
    got += step;
    step = LZ4F_compressEnd(c, b + 61 + got, cap - got, NULL);
    assert_false(LZ4F_isError(step));
    got += step;
    LZ4F_freeCompressionContext(c);
    assert_int_equal(b[65] & 0x20, 0);                /* really linked */
    b[22] = 3;
    reseal(b, 61 + got);
    batch_scratch *s = batch_scratch_new();
    assert_int_equal(validate(b, 61 + got, s), -CN_ECORRUPT);
    b[65] |= 0x20;                    /* now independent, but HC is stale */
    reseal(b, 61 + got);
    assert_int_equal(validate(b, 61 + got, s), -CN_ECORRUPT);
    batch_scratch_free(s);
    free(b);
    free(plain);
}

/* ---- rejections ---- */

static void test_bad_crc_is_corrupt_message(void **state)
{
    (void)state;
    uint8_t b[sizeof(golden)];
    memcpy(b, golden, sizeof(b));
    b[70] ^= 1;
    assert_int_equal(validate(b, sizeof(b), NULL), -CN_ECORRUPT);
    memcpy(b, golden, sizeof(b));
    b[20] ^= 0x80;                                  /* the CRC field itself */
    assert_int_equal(validate(b, sizeof(b), NULL), -CN_ECORRUPT);
    /* Bytes outside the CRC may change freely. */
    memcpy(b, golden, sizeof(b));
    b[7] = 42;                                      /* baseOffset */
    b[15] = 7;                                      /* leader epoch */
    assert_int_equal(validate(b, sizeof(b), NULL), 0);
}

static void test_truncated_batch_is_corrupt_message(void **state)
{
    (void)state;
    batch_scratch *s = batch_scratch_new();
    assert_int_equal(validate(golden, 0, s), -CN_EBADREC);   /* no batch at all */
    for (size_t n = 1; n < sizeof(golden); n++) {
        uint8_t *b = malloc(n);                     /* exact size: ASan sees overreads */
        memcpy(b, golden, n);
        int rc = validate(b, n, s);
        assert_int_equal(rc, -CN_ECORRUPT);
        assert_int_equal(batch_foreach(b, n, s, collect, &(seen){0}), -CN_ECORRUPT);
        free(b);
    }
    /* Whole batch followed by part of another. */
    uint8_t two[sizeof(golden) + 30];
    memcpy(two, golden, sizeof(golden));
    memcpy(two + sizeof(golden), golden, 30);
    int n = -1;
    assert_int_equal(batch_validate(two, sizeof(two), BIG, s, NULL, 0, &n), -CN_ECORRUPT);
    assert_int_equal(n, 1);
    /* batchLength below the header size. */
    uint8_t b[sizeof(golden)];
    memcpy(b, golden, sizeof(b));
    set_be32(b + 8, 48);
    assert_int_equal(validate(b, sizeof(b), s), -CN_ECORRUPT);
    set_be32(b + 8, 0xffffffffu);
    assert_int_equal(validate(b, sizeof(b), s), -CN_ECORRUPT);
    batch_scratch_free(s);
}

static void test_wrong_magic_is_unsupported_for_message_format(void **state)
{
    (void)state;
    uint8_t b[sizeof(golden)];
    for (int m = 0; m < 4; m++) {
        if (m == 2)
            continue;
        memcpy(b, golden, sizeof(b));
        b[16] = (uint8_t)m;
        assert_int_equal(validate(b, sizeof(b), NULL), -CN_EFORMAT);
    }
}

static void test_oversized_batch_is_message_too_large(void **state)
{
    (void)state;
    int n;
    assert_int_equal(batch_validate(golden, sizeof(golden), 81, NULL, NULL, 0, &n), 0);
    assert_int_equal(batch_validate(golden, sizeof(golden), 80, NULL, NULL, 0, &n), -CN_ETOOBIG);
    assert_int_equal(batch_validate(golden, sizeof(golden), 0, NULL, NULL, 0, &n), -CN_ETOOBIG);
    assert_int_equal(batch_validate(golden, sizeof(golden), -1, NULL, NULL, 0, &n), -CN_ETOOBIG);
}

static void test_unknown_codec_and_control_rejected(void **state)
{
    (void)state;
    uint8_t b[sizeof(golden)];
    for (int c = 5; c < 8; c++) {
        memcpy(b, golden, sizeof(b));
        b[22] = (uint8_t)c;
        reseal(b, sizeof(b));
        assert_int_equal(validate(b, sizeof(b), NULL), -CN_ECODEC);
    }
    memcpy(b, golden, sizeof(b));
    b[22] = 0x30;                                   /* transactional control batch */
    reseal(b, sizeof(b));
    assert_int_equal(validate(b, sizeof(b), NULL), -CN_EBADREC);
    /* foreach still reads control batches (stored markers). */
    seen sn = {0};
    assert_int_equal(batch_foreach(b, sizeof(b), NULL, collect, &sn), 0);
    assert_int_equal(sn.n, 2);
    /* Transactional (non-control) and LogAppendTime from a client are fine. */
    b[22] = 0x18;
    reseal(b, sizeof(b));
    assert_int_equal(validate(b, sizeof(b), NULL), 0);
}

static void test_bad_record_count_is_invalid_record(void **state)
{
    (void)state;
    const uint8_t *recs = golden + 61;
    size_t rl = sizeof(golden) - 61, len;
    uint8_t *b;
    int counts[] = {0, 1, 3, -1, 0x7fffffff};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        b = raw_batch(recs, rl, counts[i], 0, &len);
        assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
        free(b);
    }
    /* lastOffsetDelta disagreeing with the count. */
    b = raw_batch(recs, rl, 2, 0, &len);
    set_be32(b + 23, 0);
    reseal(b, len);
    assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
    set_be32(b + 23, 2);
    reseal(b, len);
    assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
    free(b);
    /* An empty batch (as compaction leaves): invalid from a client, but
     * foreach accepts it. */
    assert_int_equal(batch_build(NULL, 0, 0, 0, &b, &len), 0);
    assert_int_equal(len, 61);
    assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
    seen sn = {0};
    assert_int_equal(batch_foreach(b, len, NULL, collect, &sn), 0);
    assert_int_equal(sn.n, 0);
    free(b);
}

/* One record body per case; each must give INVALID_RECORD as the only record. */
static void expect_record_invalid(const uint8_t *rec, size_t n, const char *what)
{
    size_t len;
    uint8_t *b = raw_batch(rec, n, 1, 0, &len);
    int rc = validate(b, len, NULL);
    if (rc != -CN_EBADREC)
        fail_msg("%s: got %d, want 87", what, rc);
    free(b);
}

static void test_bad_varints_and_lengths_are_invalid_record(void **state)
{
    (void)state;
    /* The valid single record for reference. */
    static const uint8_t ok[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    size_t len;
    uint8_t *b = raw_batch(ok, sizeof(ok), 1, 0, &len);
    assert_int_equal(validate(b, len, NULL), 0);
    free(b);

    /* Overlong varints (6 bytes for a varint, 11 for a varlong). */
    static const uint8_t long_len[] = {0x90, 0x80, 0x80, 0x80, 0x80, 0x00};
    expect_record_invalid(long_len, sizeof(long_len), "overlong record length");
    static const uint8_t long_key[] = {0x18, 0x00, 0x00, 0x00, 0x82, 0x80, 0x80, 0x80,
                                       0x80, 0x00, 'k', 0x02, 'v', 0x00};
    expect_record_invalid(long_key, sizeof(long_key), "overlong key length");
    static const uint8_t long_ts[] = {0x1c, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                      0x80, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00};
    expect_record_invalid(long_ts, sizeof(long_ts), "overlong timestamp delta");
    /* Varint running off the end of the record / batch. */
    static const uint8_t cut_len[] = {0x90};
    expect_record_invalid(cut_len, sizeof(cut_len), "truncated length varint");
    static const uint8_t cut_key[] = {0x06, 0x00, 0x00, 0x00, 0x82};
    expect_record_invalid(cut_key, 3 + 2, "key varint cut by record end");
    /* Lengths that do not fit. */
    static const uint8_t rec_long[] = {0x12, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    expect_record_invalid(rec_long, sizeof(rec_long), "record length past the end");
    static const uint8_t rec_neg[] = {0x01, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    expect_record_invalid(rec_neg, sizeof(rec_neg), "negative record length");
    static const uint8_t key_big[] = {0x10, 0x00, 0x00, 0x00, 0x0a, 'k', 0x02, 'v', 0x00};
    expect_record_invalid(key_big, sizeof(key_big), "key longer than record");
    static const uint8_t key_m2[] = {0x10, 0x00, 0x00, 0x00, 0x03, 'k', 0x02, 'v', 0x00};
    expect_record_invalid(key_m2, sizeof(key_m2), "key length -2");
    static const uint8_t val_m2[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x03, 'v', 0x00};
    expect_record_invalid(val_m2, sizeof(val_m2), "value length -2");
    /* Headers. */
    static const uint8_t hdr_neg[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x01};
    expect_record_invalid(hdr_neg, sizeof(hdr_neg), "header count -1");
    static const uint8_t hkey_null[] = {0x16, 0x00, 0x00, 0x00, 0x02, 'k', 0x02,
                                        'v',  0x02, 0x01, 0x02, 'x'};
    expect_record_invalid(hkey_null, sizeof(hkey_null), "null header key");
    static const uint8_t hdr_many[] = {0x18, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0xfe,
                                       0xff, 0xff, 0xff, 0x0f};
    expect_record_invalid(hdr_many, sizeof(hdr_many), "huge header count");
    /* Record length and content disagree. */
    static const uint8_t slack[] = {0x12, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00, 0x00};
    expect_record_invalid(slack, sizeof(slack), "record with unread bytes");
    static const uint8_t trailing[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00, 0x00};
    expect_record_invalid(trailing, sizeof(trailing), "bytes after the last record");
    static const uint8_t empty_rec[] = {0x00};
    expect_record_invalid(empty_rec, sizeof(empty_rec), "zero-length record");
}

static void test_offset_delta_mismatch_is_invalid_record(void **state)
{
    (void)state;
    uint8_t recs[sizeof(golden) - 61];
    memcpy(recs, golden + 61, sizeof(recs));
    recs[9 + 3] = 0x00;                   /* record 1 offsetDelta 1 -> 0 */
    size_t len;
    uint8_t *b = raw_batch(recs, sizeof(recs), 2, 0, &len);
    assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
    /* foreach reports the stored deltas as they are. */
    seen sn = {0};
    assert_int_equal(batch_foreach(b, len, NULL, collect, &sn), 0);
    assert_int_equal(sn.offset[1], 0);
    free(b);
    recs[9 + 3] = 0x04;                   /* 1 -> 2: a gap */
    b = raw_batch(recs, sizeof(recs), 2, 0, &len);
    assert_int_equal(validate(b, len, NULL), -CN_EBADREC);
    free(b);
}

static void test_undecodable_compressed_data_is_corrupt_message(void **state)
{
    (void)state;
    batch_build_rec r[N_RECS];
    make_recs(r);
    batch_scratch *s = batch_scratch_new();
    for (int codec = 1; codec <= 4; codec++) {
        for (int xerial = 0; xerial <= (codec == 2); xerial++) {
            uint8_t *b = NULL;
            size_t len = 0;
            assert_int_equal(batch__build_ex(r, N_RECS, codec, xerial, 0, &b, &len), 0);
            /* Cut the compressed stream short. */
            reseal(b, len - 7);
            int rc = validate(b, len - 7, s);
            if (rc != -CN_ECORRUPT)
                fail_msg("codec %d xerial %d truncated: %d", codec, xerial, rc);
            /* Flip bytes in the middle of the stream. */
            reseal(b, len);
            for (size_t i = 61 + 40; i < 61 + 80; i++)
                b[i] ^= 0x5a;
            reseal(b, len);
            rc = validate(b, len, s);
            if (rc != -CN_ECORRUPT && rc != -CN_EBADREC)
                fail_msg("codec %d xerial %d garbled: %d", codec, xerial, rc);
            /* No payload at all. */
            reseal(b, 61);
            rc = validate(b, 61, s);
            if (rc != -CN_ECORRUPT)
                fail_msg("codec %d xerial %d empty: %d", codec, xerial, rc);
            free(b);
        }
    }
    batch_scratch_free(s);
}

/* Valid compression of a wrong record count: decodes, then fails the grammar. */
static void test_compressed_records_are_checked(void **state)
{
    (void)state;
    batch_build_rec r[N_RECS];
    make_recs(r);
    batch_scratch *s = batch_scratch_new();
    for (int codec = 1; codec <= 4; codec++) {
        uint8_t *b = NULL;
        size_t len = 0;
        assert_int_equal(batch_build(r, N_RECS, codec, 0, &b, &len), 0);
        set_be32(b + 57, N_RECS - 1);
        set_be32(b + 23, N_RECS - 2);
        reseal(b, len);
        assert_int_equal(validate(b, len, s), -CN_EBADREC);
        free(b);
    }
    batch_scratch_free(s);
}

static void test_decompression_bomb_is_message_too_large(void **state)
{
    (void)state;
    static uint8_t zeros[1 << 20];
    batch_build_rec r = {NULL, -1, zeros, (int32_t)sizeof(zeros), 0};
    batch_scratch *s = batch_scratch_new();
    batch_scratch_set_limit(s, 100000);
    for (int codec = 1; codec <= 4; codec++) {
        for (int xerial = 0; xerial <= (codec == 2); xerial++) {
            uint8_t *b = NULL;
            size_t len = 0;
            assert_int_equal(batch__build_ex(&r, 1, codec, xerial, 0, &b, &len), 0);
            assert_true(len < 100000);
            int rc = validate(b, len, s);
            if (rc != -CN_ETOOBIG)
                fail_msg("codec %d xerial %d: %d", codec, xerial, rc);
            free(b);
        }
    }
    batch_scratch_set_limit(s, 2 << 20);
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(&r, 1, 4, 0, &b, &len), 0);
    assert_int_equal(validate(b, len, s), 0);
    free(b);
    batch_scratch_free(s);
}

/* ---- several batches, LogAppendTime, early stop ---- */

static void test_batches_back_to_back(void **state)
{
    (void)state;
    batch_build_rec r[N_RECS];
    make_recs(r);
    uint8_t *a = NULL, *z = NULL;
    size_t al, zl;
    assert_int_equal(batch_build(r, 2, 1, 10, &a, &al), 0);
    assert_int_equal(batch_build(r, 3, 4, 20, &z, &zl), 0);
    size_t len = al + sizeof(golden) + zl;
    uint8_t *b = malloc(len);
    memcpy(b, a, al);
    memcpy(b + al, golden, sizeof(golden));
    memcpy(b + al + sizeof(golden), z, zl);
    batch_scratch *s = batch_scratch_new();
    batch_info info[3];
    int n = -1;
    assert_int_equal(batch_validate(b, len, BIG, s, info, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(info[0].base_offset, 10);
    assert_int_equal(info[1].record_count, 2);
    assert_int_equal(info[2].compression, 4);
    assert_int_equal(info[2].record_count, 3);
    memset(info, 0, sizeof(info));
    assert_int_equal(batch_validate(b, len, BIG, s, info, 1, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(info[1].record_count, 0);      /* not written past max_out */
    /* foreach handles one batch and ignores what follows it. */
    seen sn = {0};
    assert_int_equal(batch_foreach(b, len, s, collect, &sn), 0);
    assert_int_equal(sn.n, 2);
    free(b);
    free(a);
    free(z);
    batch_scratch_free(s);
}

static void test_log_append_time_rewrite_keeps_crc_valid(void **state)
{
    (void)state;
    batch_build_rec r[N_RECS];
    make_recs(r);
    batch_scratch *s = batch_scratch_new();
    for (int codec = 0; codec <= 4; codec++) {
        uint8_t *b = NULL;
        size_t len = 0;
        assert_int_equal(batch_build(r, N_RECS, codec, 0, &b, &len), 0);
        batch_set_log_append_time(b, len, 1800000000123LL);
        batch_info bi;
        int n;
        assert_int_equal(batch_validate(b, len, BIG, s, &bi, 1, &n), 0);
        assert_int_equal(bi.timestamp_type, 1);
        assert_int_equal(bi.attributes & 0x08, 0x08);
        assert_int_equal(bi.compression, codec);
        assert_int_equal(bi.max_timestamp, 1800000000123LL);
        assert_int_equal(bi.base_timestamp, 1000);
        seen sn = {0};
        assert_int_equal(batch_foreach(b, len, s, collect, &sn), 0);
        assert_int_equal(sn.n, N_RECS);
        for (int i = 0; i < N_RECS; i++)
            assert_int_equal(sn.ts[i], 1800000000123LL);
        free(b);
    }
    /* Mismatched length: left untouched. */
    uint8_t g[sizeof(golden)];
    memcpy(g, golden, sizeof(g));
    batch_set_log_append_time(g, sizeof(g) - 1, 5);
    assert_memory_equal(g, golden, sizeof(g));
    batch_set_log_append_time(g, 10, 5);
    assert_memory_equal(g, golden, sizeof(g));
    batch_scratch_free(s);
}

static void test_foreach_stops_when_callback_asks(void **state)
{
    (void)state;
    batch_build_rec r[N_RECS];
    make_recs(r);
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(r, N_RECS, 2, 7, &b, &len), 0);
    batch_scratch *s = batch_scratch_new();
    seen sn = {.stop_after = 2};
    assert_int_equal(batch_foreach(b, len, s, collect, &sn), 0);
    assert_int_equal(sn.n, 2);
    assert_int_equal(sn.offset[1], 8);
    /* Compressed batches need a scratch. */
    assert_int_equal(batch_foreach(b, len, NULL, collect, &sn), -CN_ENOMEM);
    free(b);
    batch_scratch_free(s);
}

/* Record headers: built, validated, iterated back in order (a null value too). */
static int hdr_cb(const batch_record *r, void *arg)
{
    int *n = arg;
    const uint8_t *p = r->headers, *end = r->headers + r->headers_len;
    batch_header h;
    if (r->offset == 0) {
        assert_int_equal(r->n_headers, 2);
        assert_int_equal(batch_header_next(&p, end, &h), 1);
        assert_int_equal(h.key_len, 6);
        assert_memory_equal(h.key, "amqp.a", 6);
        assert_int_equal(h.value_len, 3);
        assert_memory_equal(h.value, "xyz", 3);
        assert_int_equal(batch_header_next(&p, end, &h), 1);
        assert_int_equal(h.key_len, 1);
        assert_int_equal(h.value_len, -1);
        assert_null(h.value);
    } else {
        assert_int_equal(r->n_headers, 0);
    }
    assert_int_equal(batch_header_next(&p, end, &h), 0);
    (*n)++;
    return 0;
}

static void test_build_with_headers(void **state)
{
    (void)state;
    batch_header hs[2] = {{"amqp.a", 6, "xyz", 3}, {"k", 1, NULL, -1}};
    batch_build_rec r[2] = {{"key", 3, "value", 5, 1000, hs, 2}, {NULL, -1, "v", 1, 1001, NULL, 0}};
    for (int comp = 0; comp <= 1; comp++) {
        uint8_t *b;
        size_t len;
        assert_int_equal(batch_build(r, 2, comp, 0, &b, &len), 0);
        batch_info bi;
        int nb = 0;
        batch_scratch *s = batch_scratch_new();
        assert_int_equal(batch_validate(b, len, 1 << 20, s, &bi, 1, &nb), 0);
        assert_int_equal(nb, 1);
        int n = 0;
        assert_int_equal(batch_foreach(b, len, s, hdr_cb, &n), 0);
        assert_int_equal(n, 2);
        batch_scratch_free(s);
        free(b);
    }
    /* malformed headers section */
    const uint8_t bad[] = {0x06, 'a'};
    const uint8_t *p = bad;
    batch_header h;
    assert_int_equal(batch_header_next(&p, bad + sizeof(bad), &h), -1);
    batch_build_rec nohdr = {"k", 1, "v", 1, 0, NULL, 1};
    uint8_t *b;
    size_t len;
    assert_int_equal(batch_build(&nohdr, 1, 0, 0, &b, &len), -1);
}

static void test_build_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len;
    batch_build_rec r = {"k", -5, "v", 1, 0};
    assert_int_equal(batch_build(&r, 1, 0, 0, &b, &len), -1);
    r.key_len = 1;
    assert_int_equal(batch_build(&r, 1, 5, 0, &b, &len), -1);
    assert_int_equal(batch_build(&r, -1, 0, 0, &b, &len), -1);
    assert_int_equal(batch_build(NULL, 1, 0, 0, &b, &len), -1);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_batch_validates_and_iterates),
        cmocka_unit_test(test_build_with_headers),
        cmocka_unit_test(test_builder_matches_golden_header_fields),
        cmocka_unit_test(test_roundtrip_none),
        cmocka_unit_test(test_roundtrip_gzip),
        cmocka_unit_test(test_roundtrip_snappy_raw),
        cmocka_unit_test(test_roundtrip_snappy_xerial),
        cmocka_unit_test(test_roundtrip_lz4_frame),
        cmocka_unit_test(test_roundtrip_zstd),
        cmocka_unit_test(test_lz4_dependent_blocks_rejected),
        cmocka_unit_test(test_bad_crc_is_corrupt_message),
        cmocka_unit_test(test_truncated_batch_is_corrupt_message),
        cmocka_unit_test(test_wrong_magic_is_unsupported_for_message_format),
        cmocka_unit_test(test_oversized_batch_is_message_too_large),
        cmocka_unit_test(test_unknown_codec_and_control_rejected),
        cmocka_unit_test(test_bad_record_count_is_invalid_record),
        cmocka_unit_test(test_bad_varints_and_lengths_are_invalid_record),
        cmocka_unit_test(test_offset_delta_mismatch_is_invalid_record),
        cmocka_unit_test(test_undecodable_compressed_data_is_corrupt_message),
        cmocka_unit_test(test_compressed_records_are_checked),
        cmocka_unit_test(test_decompression_bomb_is_message_too_large),
        cmocka_unit_test(test_batches_back_to_back),
        cmocka_unit_test(test_log_append_time_rewrite_keeps_crc_valid),
        cmocka_unit_test(test_foreach_stops_when_callback_asks),
        cmocka_unit_test(test_build_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
