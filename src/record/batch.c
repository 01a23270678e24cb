/* RecordBatch v2: header parsing, produce-side validation, record iteration
 * and LogAppendTime stamping. Batches are read, never rewritten, except by
 * batch_set_log_append_time (attributes, max_timestamp, crc).
 *
 * Wire layout (all integers big-endian; NOTES.md section 4):
 *   off size field
 *     0  8   baseOffset            broker overwrites; not under the CRC
 *     8  4   batchLength           bytes after this field; total = batchLength + 12
 *    12  4   partitionLeaderEpoch  not under the CRC
 *    16  1   magic                 must be 2
 *    17  4   crc                   CRC-32C (Castagnoli) of bytes 21..end
 *    21  2   attributes            bits 0-2 codec, 3 LogAppendTime, 4 transactional,
 *                                  5 control, 6 delete horizon
 *    23  4   lastOffsetDelta
 *    27  8   baseTimestamp
 *    35  8   maxTimestamp
 *    43  8   producerId
 *    51  2   producerEpoch
 *    53  4   baseSequence
 *    57  4   recordsCount
 *    61  ... records; if the codec is not 0, bytes 61..end are one compressed blob
 *
 * Record (all varints zigzag; varint <= 5 bytes, varlong <= 10 bytes):
 *   varint length (bytes after this field), int8 attributes, varlong
 *   timestampDelta, varint offsetDelta, varint keyLen (-1 null) + key, varint
 *   valueLen (-1 null) + value, varint headerCount (>= 0), then per header
 *   varint keyLen (>= 0) + key, varint valueLen (-1 null) + value.
 *
 * Error choice: damage to the batch frame (lengths, truncation, CRC, a
 * compressed blob that does not decode) is CORRUPT_MESSAGE (2), as Kafka's
 * CorruptRecordException. Records that decode but break the record grammar
 * or the count/offset rules are INVALID_RECORD (87), as Kafka's
 * InvalidRecordException from DefaultRecord.readFrom and LogValidator. A
 * control batch from a client is INVALID_RECORD too (Kafka: "clients are not
 * allowed to write control records"); the broker writes its own markers
 * without batch_validate. Unlike Kafka, offset deltas must be exactly
 * 0..n-1: every real client writes that, and it lets us store the batch
 * untouched. */
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"
#include "util/common.h"
#include "util/crc32c.h"

#define CRC_START 21                      /* first byte under the CRC */
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

/* ---- big-endian and varint readers ---- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* Zigzag varint, at most 5 bytes (a 5th byte with the continuation bit is an
 * error; its spare high bits are dropped, as Kafka's ByteUtils does).
 * Returns 0, or -1 on overrun or overlong encoding. */
static int rd_varint(const uint8_t **pp, const uint8_t *end, int32_t *out)
{
    const uint8_t *p = *pp;
    uint32_t v = 0;
    for (int shift = 0; shift <= 28; shift += 7) {
        if (p == end)
            return -1;
        uint8_t b = *p++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
            return 0;
        }
    }
    return -1;
}

/* Zigzag varlong, at most 10 bytes. */
static int rd_varlong(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (p == end)
            return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = (int64_t)((v >> 1) ^ (0u - (v & 1)));
            return 0;
        }
    }
    return -1;
}

/* A length-prefixed field inside [*pp, end): len >= min_len (-1 or 0) and
 * fits. Sets *out_ptr (NULL for -1) and *out_len, advances. */
static int rd_field(const uint8_t **pp, const uint8_t *end, int32_t min_len,
                    const uint8_t **out_ptr, int32_t *out_len)
{
    int32_t n;
    if (rd_varint(pp, end, &n) || n < min_len || n > end - *pp)
        return -1;
    *out_ptr = n >= 0 ? *pp : NULL;
    *out_len = n;
    if (n > 0)
        *pp += n;
    return 0;
}

/* ---- header ---- */

int batch_parse_header(const uint8_t *buf, size_t len, batch_info *out)
{
    if (!buf || len < BATCH_HEADER_SIZE)
        return -1;
    out->base_offset = (int64_t)be64(buf);
    out->batch_length = (int32_t)be32(buf + 8);
    out->leader_epoch = (int32_t)be32(buf + 12);
    out->magic = (int8_t)buf[16];
    out->crc = be32(buf + 17);
    out->attributes = (int16_t)be16(buf + 21);
    out->last_offset_delta = (int32_t)be32(buf + 23);
    out->base_timestamp = (int64_t)be64(buf + 27);
    out->max_timestamp = (int64_t)be64(buf + 35);
    out->producer_id = (int64_t)be64(buf + 43);
    out->producer_epoch = (int16_t)be16(buf + 51);
    out->base_sequence = (int32_t)be32(buf + 53);
    out->record_count = (int32_t)be32(buf + 57);
    out->compression = out->attributes & BATCH_ATTR_COMPRESSION_MASK;
    out->timestamp_type = !!(out->attributes & BATCH_ATTR_LOG_APPEND_TIME);
    out->transactional = !!(out->attributes & BATCH_ATTR_TRANSACTIONAL);
    out->control = !!(out->attributes & BATCH_ATTR_CONTROL);
    return 0;
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
        if (rd_varint(&p, end, &rec_len) || rec_len < 1 || rec_len > end - p)
            return BATCH_ERR_INVALID_RECORD;
        const uint8_t *rend = p + rec_len;
        p++;                                    /* record attributes: unused */
        if (rd_varlong(&p, rend, &ts_delta) || rd_varint(&p, rend, &off_delta))
            return BATCH_ERR_INVALID_RECORD;
        if (strict && off_delta != i)
            return BATCH_ERR_INVALID_RECORD;
        if (rd_field(&p, rend, -1, &r.key, &r.key_len) ||
            rd_field(&p, rend, -1, &r.value, &r.value_len) || rd_varint(&p, rend, &n_hdr) ||
            n_hdr < 0)
            return BATCH_ERR_INVALID_RECORD;
        for (int32_t h = 0; h < n_hdr; h++) {   /* each header takes >= 2 bytes */
            const uint8_t *hp;
            int32_t hl;
            if (rd_field(&p, rend, 0, &hp, &hl) || rd_field(&p, rend, -1, &hp, &hl))
                return BATCH_ERR_INVALID_RECORD;
        }
        if (p != rend)
            return BATCH_ERR_INVALID_RECORD;
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
    int32_t blen = (int32_t)be32(batch + 8);
    if (blen < BATCH_LENGTH_MIN || (size_t)blen > len - 12)
        return;
    size_t total = (size_t)blen + 12;
    put_be16(batch + 21, (uint16_t)(be16(batch + 21) | BATCH_ATTR_LOG_APPEND_TIME));
    put_be64(batch + 35, (uint64_t)ts);
    put_be32(batch + 17, crc32c(0, batch + CRC_START, total - CRC_START));
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
