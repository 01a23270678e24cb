/* Builder for v2 record batches (tests, fuzz seeds, internal logs). Writes
 * the layout documented in batch.c: records encoded with zigzag varints,
 * offset deltas 0..n-1, timestamp deltas from recs[0].ts, then the records
 * section compressed as a whole, the 61-byte header in front and the CRC-32C
 * over bytes 21..end. Allocates freely: not a hot path. */
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"
#include "util/crc32c.h"

typedef struct bbuf {
    uint8_t *p;
    size_t len, cap;
    int err;
} bbuf;

static void bb_need(bbuf *b, size_t n)
{
    if (b->err || b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->err = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void bb_put(bbuf *b, const void *src, size_t n)
{
    bb_need(b, n);
    if (b->err || n == 0)
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void bb_uvarint(bbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    bb_put(b, tmp, n);
}

static void bb_varint(bbuf *b, int32_t v)
{
    bb_uvarint(b, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

static void bb_varlong(bbuf *b, int64_t v)
{
    bb_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_size(int32_t v)
{
    return uvarint_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

static size_t varlong_size(int64_t v)
{
    return uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void encode_record(bbuf *b, const batch_build_rec *r, int32_t index, int64_t base_ts)
{
    int64_t ts_delta = (int64_t)((uint64_t)r->ts - (uint64_t)base_ts);
    int32_t klen = r->key ? r->key_len : -1;
    int32_t vlen = r->value ? r->value_len : -1;
    size_t body = 1 + varlong_size(ts_delta) + varint_size(index) + varint_size(klen) +
                  (klen > 0 ? (size_t)klen : 0) + varint_size(vlen) +
                  (vlen > 0 ? (size_t)vlen : 0) + varint_size(0);
    bb_varint(b, (int32_t)body);
    uint8_t attrs = 0;
    bb_put(b, &attrs, 1);
    bb_varlong(b, ts_delta);
    bb_varint(b, index);
    bb_varint(b, klen);
    if (klen > 0)
        bb_put(b, r->key, (size_t)klen);
    bb_varint(b, vlen);
    if (vlen > 0)
        bb_put(b, r->value, (size_t)vlen);
    bb_varint(b, 0);                          /* no headers */
}

int batch__build_ex(const batch_build_rec *recs, int n, int compression, int snappy_xerial,
                    int64_t base_offset, uint8_t **out, size_t *out_len)
{
    if (n < 0 || (n > 0 && !recs) || compression < 0 || compression > BATCH_COMPRESSION_ZSTD ||
        !out || !out_len)
        return -1;
    for (int i = 0; i < n; i++)
        if ((recs[i].key && recs[i].key_len < 0) || (recs[i].value && recs[i].value_len < 0))
            return -1;
    int64_t base_ts = n > 0 ? recs[0].ts : -1, max_ts = base_ts;
    bbuf recb = {0};
    for (int i = 0; i < n; i++) {
        encode_record(&recb, &recs[i], i, base_ts);
        if (recs[i].ts > max_ts)
            max_ts = recs[i].ts;
    }
    if (recb.err) {
        free(recb.p);
        return -1;
    }
    const uint8_t *body = recb.p;
    size_t body_len = recb.len;
    uint8_t *comp = NULL;
    if (compression != BATCH_COMPRESSION_NONE) {
        static const uint8_t empty[1];
        if (batch__compress(compression, snappy_xerial, body ? body : empty, body_len, &comp,
                            &body_len) != 0) {
            free(recb.p);
            return -1;
        }
        body = comp;
    }
    size_t total = BATCH_HEADER_SIZE + body_len;
    uint8_t *b = total - 12 <= INT32_MAX ? malloc(total) : NULL;
    if (!b) {
        free(comp);
        free(recb.p);
        return -1;
    }
    put_be(b + 0, (uint64_t)base_offset, 8);
    put_be(b + 8, total - 12, 4);
    put_be(b + 12, (uint64_t)-1, 4);           /* partitionLeaderEpoch */
    b[16] = 2;                                  /* magic */
    put_be(b + 21, (uint64_t)compression, 2);  /* attributes: CreateTime */
    put_be(b + 23, (uint64_t)(int64_t)(n - 1), 4);
    put_be(b + 27, (uint64_t)base_ts, 8);
    put_be(b + 35, (uint64_t)max_ts, 8);
    put_be(b + 43, (uint64_t)-1, 8);           /* producerId */
    put_be(b + 51, (uint64_t)-1, 2);           /* producerEpoch */
    put_be(b + 53, (uint64_t)-1, 4);           /* baseSequence */
    put_be(b + 57, (uint64_t)n, 4);
    if (body_len)
        memcpy(b + BATCH_HEADER_SIZE, body, body_len);
    put_be(b + 17, crc32c(0, b + 21, total - 21), 4);
    free(comp);
    free(recb.p);
    *out = b;
    *out_len = total;
    return 0;
}

int batch_build(const batch_build_rec *recs, int n, int compression, int64_t base_offset,
                uint8_t **out, size_t *out_len)
{
    return batch__build_ex(recs, n, compression, 0, base_offset, out, out_len);
}
