/* Builder for v2 record batches (tests, fuzz seeds, internal logs). Writes
 * the layout documented in batch.c: records encoded with zigzag varints,
 * offset deltas 0..n-1, timestamp deltas from recs[0].ts, then the records
 * section compressed as a whole, the 61-byte header in front and the CRC-32C
 * over bytes 21..end. Allocates freely: not a hot path. */
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"
#include "util/bytes.h"
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
    bb_put(b, tmp, uvarint_put(tmp, v));
}

static void bb_varint(bbuf *b, int32_t v) { bb_uvarint(b, zz_enc64(v)); }
static void bb_varlong(bbuf *b, int64_t v) { bb_uvarint(b, zz_enc64(v)); }
static size_t varint_size(int64_t v) { return uvarint_size(zz_enc64(v)); }

static void encode_record(bbuf *b, const batch_build_rec *r, int32_t index, int64_t base_ts)
{
    int64_t ts_delta = (int64_t)((uint64_t)r->ts - (uint64_t)base_ts);
    int32_t klen = r->key ? r->key_len : -1;
    int32_t vlen = r->value ? r->value_len : -1;
    int32_t nh = r->n_headers > 0 ? r->n_headers : 0;
    size_t hbytes = 0;
    for (int32_t h = 0; h < nh; h++) {
        const batch_header *hd = &r->headers[h];
        int32_t hk = hd->key_len > 0 ? hd->key_len : 0;
        int32_t hv = hd->value ? hd->value_len : -1;
        hbytes += varint_size(hk) + (size_t)hk + varint_size(hv) + (hv > 0 ? (size_t)hv : 0);
    }
    size_t body = 1 + varint_size(ts_delta) + varint_size(index) + varint_size(klen) +
                  (klen > 0 ? (size_t)klen : 0) + varint_size(vlen) +
                  (vlen > 0 ? (size_t)vlen : 0) + varint_size(nh) + hbytes;
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
    bb_varint(b, nh);
    for (int32_t h = 0; h < nh; h++) {
        const batch_header *hd = &r->headers[h];
        int32_t hk = hd->key_len > 0 ? hd->key_len : 0;
        int32_t hv = hd->value ? hd->value_len : -1;
        bb_varint(b, hk);
        if (hk > 0)
            bb_put(b, hd->key, (size_t)hk);
        bb_varint(b, hv);
        if (hv > 0)
            bb_put(b, hd->value, (size_t)hv);
    }
}

int batch__build_ex(const batch_build_rec *recs, int n, int compression, int snappy_xerial,
                    int64_t base_offset, uint8_t **out, size_t *out_len)
{
    if (n < 0 || (n > 0 && !recs) || compression < 0 || compression > BATCH_COMPRESSION_ZSTD ||
        !out || !out_len)
        return -1;
    for (int i = 0; i < n; i++)
    {
        if ((recs[i].key && recs[i].key_len < 0) || (recs[i].value && recs[i].value_len < 0) ||
            recs[i].n_headers < 0 || (recs[i].n_headers > 0 && !recs[i].headers))
            return -1;
        for (int32_t h = 0; h < recs[i].n_headers; h++)
            if ((recs[i].headers[h].key_len > 0 && !recs[i].headers[h].key) ||
                (recs[i].headers[h].value && recs[i].headers[h].value_len < 0))
                return -1;
    }
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
    be_put64(b + BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
    be_put32(b + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    be_put32(b + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
    b[BATCH_OFF_MAGIC] = 2;
    be_put16(b + BATCH_OFF_ATTRIBUTES, (uint16_t)compression);     /* CreateTime */
    be_put32(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1));
    be_put64(b + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    be_put64(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    be_put64(b + BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
    be_put16(b + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)-1);
    be_put32(b + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    be_put32(b + BATCH_OFF_RECORDS_COUNT, (uint32_t)n);
    if (body_len)
        memcpy(b + BATCH_HEADER_SIZE, body, body_len);
    be_put32(b + BATCH_OFF_CRC,
             crc32c(0, b + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
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
