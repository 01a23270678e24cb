/* RecordBatch v2: header parsing, produce-side validation, record iteration
 * and LogAppendTime stamping. Batches are read, never rewritten, except by
 * batch_set_log_append_time (attributes, max_timestamp, crc).
 *
 * The byte layout of a batch and of a record is documented in batch.h.
 *
 * Error choice: damage to the batch frame (lengths, truncation, CRC, a
 * compressed blob that does not decode) is -CN_ECORRUPT (the Kafka front end
 * answers CORRUPT_MESSAGE, as Kafka's CorruptRecordException). Records that
 * decode but break the record grammar or the count/offset rules are
 * -CN_EBADREC (INVALID_RECORD, as Kafka's InvalidRecordException from
 * DefaultRecord.readFrom and LogValidator). A control batch from a client is
 * -CN_EBADREC too (Kafka: "clients are not
 * allowed to write control records"); the broker writes its own markers
 * without batch_validate. Unlike Kafka, offset deltas must be exactly
 * 0..n-1: every real client writes that, and it lets us store the batch
 * untouched. */
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"

#define CRC_START BATCH_OFF_ATTRIBUTES     /* first byte under the CRC */
#define BATCH_LENGTH_MIN (BATCH_HEADER_SIZE - 12)

/* ---- scratch ---- */

batch_scratch *batch_scratch_new(void)
{
    batch_scratch *s = xcalloc(1, sizeof(*s));
    s->limit = BATCH_DECOMPRESSED_MAX_DEFAULT;
    return s;
}

void batch_scratch_free(batch_scratch *s)
{
    if (!s)
        return;
    if (s->zs_ready)
        inflateEnd(&s->zs);
    if (s->lz4)
        LZ4F_freeDecompressionContext(s->lz4);
    ZSTD_freeDCtx(s->zstd);                   /* NULL-safe */
    free(s->buf);
    free(s);
}

void batch_scratch_set_limit(batch_scratch *s, size_t max_bytes)
{
    s->limit = max_bytes;
}

/* ---- field readers (big-endian and varints: util/bytes.h) ---- */

/* A length-prefixed field inside [*pp, end): len >= min_len (-1 or 0) and
 * fits. Sets *out_ptr (NULL for -1) and *out_len, advances. */
static int rd_field(const uint8_t **pp, const uint8_t *end, int32_t min_len,
                    const uint8_t **out_ptr, int32_t *out_len)
{
    int32_t n;
    if (varint_get(pp, end, &n) || n < min_len || n > end - *pp)
        return -1;
    *out_ptr = n >= 0 ? *pp : NULL;
    *out_len = n;
    if (n > 0)
        *pp += n;
    return 0;
}

int batch_header_next(const uint8_t **pp, const uint8_t *end, batch_header *out)
{
    if (*pp >= end)
        return 0;
    const uint8_t *k, *v;
    if (rd_field(pp, end, 0, &k, &out->key_len) || rd_field(pp, end, -1, &v, &out->value_len))
        return -1;
    out->key = k;
    out->value = v;
    return 1;
}

/* ---- header ---- */

int batch_parse_header(const uint8_t *buf, size_t len, batch_info *out)
{
    if (!buf || len < BATCH_HEADER_SIZE)
        return -1;
    out->base_offset = (int64_t)be_get64(buf + BATCH_OFF_BASE_OFFSET);
    out->batch_length = (int32_t)be_get32(buf + BATCH_OFF_LENGTH);
    out->leader_epoch = (int32_t)be_get32(buf + BATCH_OFF_LEADER_EPOCH);
    out->magic = (int8_t)buf[BATCH_OFF_MAGIC];
    out->crc = be_get32(buf + BATCH_OFF_CRC);
    out->attributes = (int16_t)be_get16(buf + BATCH_OFF_ATTRIBUTES);
    out->last_offset_delta = (int32_t)be_get32(buf + BATCH_OFF_LAST_OFFSET_DELTA);
    out->base_timestamp = (int64_t)be_get64(buf + BATCH_OFF_BASE_TIMESTAMP);
    out->max_timestamp = (int64_t)be_get64(buf + BATCH_OFF_MAX_TIMESTAMP);
    out->producer_id = (int64_t)be_get64(buf + BATCH_OFF_PRODUCER_ID);
    out->producer_epoch = (int16_t)be_get16(buf + BATCH_OFF_PRODUCER_EPOCH);
    out->base_sequence = (int32_t)be_get32(buf + BATCH_OFF_BASE_SEQUENCE);
    out->record_count = (int32_t)be_get32(buf + BATCH_OFF_RECORDS_COUNT);
    out->compression = out->attributes & BATCH_ATTR_COMPRESSION_MASK;
    out->timestamp_type = !!(out->attributes & BATCH_ATTR_LOG_APPEND_TIME);
    out->transactional = !!(out->attributes & BATCH_ATTR_TRANSACTIONAL);
    out->control = !!(out->attributes & BATCH_ATTR_CONTROL);
    return 0;
}

int64_t batch_span_end(const uint8_t *buf, size_t len, int64_t from)
{
    int64_t end = from;
    size_t off = 0;
    batch_info bi;
    while (off + BATCH_HEADER_SIZE <= len && batch_parse_header(buf + off, len - off, &bi) == 0 &&
           bi.batch_length >= 0 && off + (size_t)bi.batch_length + BATCH_LOG_OVERHEAD <= len) {
        end = bi.base_offset + bi.last_offset_delta + 1;
        off += (size_t)bi.batch_length + BATCH_LOG_OVERHEAD;
    }
    return end;
}

/* Frame checks shared by validate and foreach: magic, header present,
 * batch_length within [49, avail - 12]. Sets *out_total. */
static int frame_check(const uint8_t *p, size_t avail, batch_info *bi, size_t *out_total)
{
    if (avail < 17)
        return BATCH_ERR_CORRUPT_MESSAGE;
    if (p[16] != 2)
        return BATCH_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (batch_parse_header(p, avail, bi) != 0)
        return BATCH_ERR_CORRUPT_MESSAGE;
    if (bi->batch_length < BATCH_LENGTH_MIN || (size_t)bi->batch_length > avail - 12)
        return BATCH_ERR_CORRUPT_MESSAGE;
    *out_total = (size_t)bi->batch_length + 12;
    return 0;
}

/* ---- records ---- */

/* Walk bi->record_count records covering exactly [p, p + len). strict (produce
 * validation) also demands offsetDelta == index. cb may be NULL. */
static int walk_records(const uint8_t *p, size_t len, const batch_info *bi, int strict,
                        int (*cb)(const batch_record *r, void *arg), void *arg)
{
    const uint8_t *end = p + len;
    batch_record r;
    if (bi->record_count < 0)
        return BATCH_ERR_INVALID_RECORD;
    for (int32_t i = 0; i < bi->record_count; i++) {
        int32_t rec_len, off_delta, n_hdr;
        int64_t ts_delta;
        if (varint_get(&p, end, &rec_len) || rec_len < 1 || rec_len > end - p)
            return BATCH_ERR_INVALID_RECORD;
        const uint8_t *rend = p + rec_len;
        p++;                                    /* record attributes: unused */
        if (varlong_get(&p, rend, &ts_delta) || varint_get(&p, rend, &off_delta))
            return BATCH_ERR_INVALID_RECORD;
        if (strict && off_delta != i)
            return BATCH_ERR_INVALID_RECORD;
        if (rd_field(&p, rend, -1, &r.key, &r.key_len) ||
            rd_field(&p, rend, -1, &r.value, &r.value_len) || varint_get(&p, rend, &n_hdr) ||
            n_hdr < 0)
            return BATCH_ERR_INVALID_RECORD;
        r.headers = p;
        for (int32_t h = 0; h < n_hdr; h++) {   /* each header takes >= 2 bytes */
            const uint8_t *hp;
            int32_t hl;
            if (rd_field(&p, rend, 0, &hp, &hl) || rd_field(&p, rend, -1, &hp, &hl))
                return BATCH_ERR_INVALID_RECORD;
        }
        if (p != rend)
            return BATCH_ERR_INVALID_RECORD;
        r.headers_len = (size_t)(p - r.headers);
        if (cb) {
            /* Unsigned sums: hostile deltas wrap instead of overflowing. */
            r.offset = (int64_t)((uint64_t)bi->base_offset + (uint64_t)(int64_t)off_delta);
            r.timestamp = bi->timestamp_type
                              ? bi->max_timestamp
                              : (int64_t)((uint64_t)bi->base_timestamp + (uint64_t)ts_delta);
            r.n_headers = n_hdr;
            if (cb(&r, arg))
                return 0;
        }
    }
    return p == end ? 0 : BATCH_ERR_INVALID_RECORD;
}

/* Point out_p and out_len at the batch's plain records section, decompressing
 * into s if needed. */
static int records_section(const uint8_t *p, size_t total, const batch_info *bi,
                           batch_scratch *s, const uint8_t **out_p, size_t *out_len)
{
    if (bi->compression == BATCH_COMPRESSION_NONE) {
        *out_p = p + BATCH_HEADER_SIZE;
        *out_len = total - BATCH_HEADER_SIZE;
        return 0;
    }
    if (bi->compression > BATCH_COMPRESSION_ZSTD)
        return BATCH_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (!s)
        return BATCH_ERR_UNKNOWN;
    int rc = batch__decompress(s, bi->compression, p + BATCH_HEADER_SIZE,
                               total - BATCH_HEADER_SIZE, out_len);
    *out_p = s->buf;
    return rc;
}

/* ---- validation ---- */

static int validate_one(const uint8_t *p, size_t avail, int32_t max_message_bytes,
                        batch_scratch *s, batch_info *bi, size_t *out_total)
{
    size_t total;
    int rc = frame_check(p, avail, bi, &total);
    if (rc)
        return rc;
    if ((int64_t)total > (int64_t)max_message_bytes)
        return BATCH_ERR_MESSAGE_TOO_LARGE;
    if (crc32c(0, p + CRC_START, total - CRC_START) != bi->crc)
        return BATCH_ERR_CORRUPT_MESSAGE;
    if (bi->compression > BATCH_COMPRESSION_ZSTD)
        return BATCH_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (bi->control)
        return BATCH_ERR_INVALID_RECORD;
    if (bi->record_count < 1 || bi->last_offset_delta != bi->record_count - 1)
        return BATCH_ERR_INVALID_RECORD;
    const uint8_t *rp;
    size_t rlen;
    if ((rc = records_section(p, total, bi, s, &rp, &rlen)) != 0)
        return rc;
    if ((rc = walk_records(rp, rlen, bi, 1, NULL, NULL)) != 0)
        return rc;
    *out_total = total;
    return 0;
}

int batch_validate(const uint8_t *buf, size_t len, int32_t max_message_bytes,
                   batch_scratch *s, batch_info *out, int max_out, int *n_batches)
{
    int n = 0, rc = len == 0 ? BATCH_ERR_INVALID_RECORD : 0;
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        batch_info bi;
        size_t total = 0;
        rc = validate_one(buf + pos, len - pos, max_message_bytes, s, &bi, &total);
        if (rc)
            break;
        if (out && n < max_out)
            out[n] = bi;
        n++;
        pos += total;
    }
    if (n_batches)
        *n_batches = n;
    return rc;
}

/* ---- LogAppendTime ---- */

void batch_set_log_append_time(uint8_t *batch, size_t len, int64_t ts)
{
    if (!batch || len < BATCH_HEADER_SIZE)
        return;
    int32_t blen = (int32_t)be_get32(batch + BATCH_OFF_LENGTH);
    if (blen < BATCH_LENGTH_MIN || (size_t)blen > len - BATCH_LOG_OVERHEAD)
        return;
    size_t total = (size_t)blen + BATCH_LOG_OVERHEAD;
    be_put16(batch + BATCH_OFF_ATTRIBUTES,
             (uint16_t)(be_get16(batch + BATCH_OFF_ATTRIBUTES) | BATCH_ATTR_LOG_APPEND_TIME));
    be_put64(batch + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    be_put32(batch + BATCH_OFF_CRC, crc32c(0, batch + CRC_START, total - CRC_START));
}

/* ---- iteration ---- */

int batch_foreach(const uint8_t *batch, size_t len, batch_scratch *s,
                  int (*cb)(const batch_record *r, void *arg), void *arg)
{
    batch_info bi;
    size_t total;
    int rc = frame_check(batch, batch ? len : 0, &bi, &total);
    if (rc)
        return rc;
    const uint8_t *rp;
    size_t rlen;
    if ((rc = records_section(batch, total, &bi, s, &rp, &rlen)) != 0)
        return rc;
    return walk_records(rp, rlen, &bi, 0, cb, arg);
}
