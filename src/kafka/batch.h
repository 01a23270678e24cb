/* Kafka RecordBatch v2 (magic 2): header parsing, produce-side validation,
 * record iteration, LogAppendTime stamping and a small builder.
 *
 * The broker stores batches exactly as received, so nothing here rewrites a
 * batch except batch_set_log_append_time. Byte layout and codec framing are
 * documented at the top of batch.c (and in shared/protocol/kafka/NOTES.md
 * sections 4-7). Functions return Kafka wire error codes as plain ints
 * (0 = ok); the KERR_* names live elsewhere on purpose, see batch.c.
 *
 * Threads: every function is reentrant; a batch_scratch must not be shared
 * between threads at the same time (one per loop thread or connection). */
#ifndef CAIRN_KAFKA_BATCH_H
#define CAIRN_KAFKA_BATCH_H
#include <stddef.h>
#include <stdint.h>

/* Fixed part of a v2 batch: everything up to and including recordsCount. */
#define BATCH_HEADER_SIZE 61
/* Default bound on one batch's decompressed records section. */
#define BATCH_DECOMPRESSED_MAX_DEFAULT ((size_t)64 << 20)

/* Codec ids (attribute bits 0-2). */
#define BATCH_COMPRESSION_NONE 0
#define BATCH_COMPRESSION_GZIP 1
#define BATCH_COMPRESSION_SNAPPY 2
#define BATCH_COMPRESSION_LZ4 3
#define BATCH_COMPRESSION_ZSTD 4

/* Attribute bits. */
#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

/* One parsed batch header. Fields mirror the wire (see batch.c); the last four
 * are decoded from attributes. */
typedef struct batch_info {
    int64_t base_offset;
    int32_t batch_length;     /* bytes after this field; total bytes = batch_length + 12 */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;             /* CRC-32C over bytes 21..end, as stored */
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;   /* ms */
    int64_t max_timestamp;    /* ms */
    int64_t producer_id;      /* -1 = none */
    int16_t producer_epoch;   /* -1 = none */
    int32_t base_sequence;    /* -1 = none */
    int32_t record_count;
    int compression;          /* 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (5-7 invalid) */
    int timestamp_type;       /* 0 create, 1 log append */
    int transactional;        /* 0/1 */
    int control;              /* 0/1 */
} batch_info;

/* Reusable decompression state: one growable output buffer plus lazily
 * created zlib/lz4/zstd contexts. Grows to the largest decompressed records
 * section seen (never beyond its limit) and keeps that memory until freed. */
typedef struct batch_scratch batch_scratch;

/* Create and free scratch. _new aborts on OOM (small struct); _free(NULL) is
 * a no-op. */
batch_scratch *batch_scratch_new(void);
void batch_scratch_free(batch_scratch *s);
/* Bound on one batch's decompressed records section (default
 * BATCH_DECOMPRESSED_MAX_DEFAULT). A batch that inflates beyond it is
 * rejected with 10 MESSAGE_TOO_LARGE. */
void batch_scratch_set_limit(batch_scratch *s, size_t max_bytes);

/* Parse the 61-byte header at buf (len >= 61) into *out. Checks nothing but
 * the length: magic, CRC and sizes are the caller's (or batch_validate's)
 * business. Returns 0, or -1 if len < 61. */
int batch_parse_header(const uint8_t *buf, size_t len, batch_info *out);

/* Validate one produce request's records field for one partition: one or more
 * whole v2 batches back to back covering exactly len bytes. Per batch, in
 * this order (first failure wins):
 *   fewer than 61 bytes left, batch_length < 49 or past the end  -> 2  CORRUPT_MESSAGE
 *   magic != 2                                                   -> 43 UNSUPPORTED_FOR_MESSAGE_FORMAT
 *   batch_length + 12 > max_message_bytes                        -> 10 MESSAGE_TOO_LARGE
 *   CRC-32C mismatch                                             -> 2  CORRUPT_MESSAGE
 *   codec 5..7                                                   -> 76 UNSUPPORTED_COMPRESSION_TYPE
 *   control bit set (clients may not write control batches)      -> 87 INVALID_RECORD
 *   record_count < 1 or last_offset_delta != record_count - 1    -> 87 INVALID_RECORD
 *   compressed data does not decode                              -> 2  CORRUPT_MESSAGE
 *   decompressed size above the scratch limit                    -> 10 MESSAGE_TOO_LARGE
 *   records malformed: bad varint, negative/oversized length, offsetDelta != index,
 *     record not consuming exactly its length, wrong count, trailing bytes -> 87 INVALID_RECORD
 *   scratch allocation failure                                   -> -1 UNKNOWN_SERVER_ERROR
 * len == 0 (no batch at all) gives 87 INVALID_RECORD, as Kafka does for
 * Produce v3+. Exactly-one-batch (Produce v3+) is the caller's check on
 * *n_batches. Fills *n_batches (may be NULL) and up to max_out infos in out
 * (may be NULL); on error they describe the batches before the bad one.
 * s: required. Never reads outside buf; allocates only when s must grow. */
int batch_validate(const uint8_t *buf, size_t len, int32_t max_message_bytes,
                   batch_scratch *s, batch_info *out, int max_out, int *n_batches);

/* Stamp LogAppendTime on one whole batch in place: attribute bit 3 set,
 * max_timestamp = ts, CRC recomputed over bytes 21..end. The batch should
 * have passed batch_validate; if len < 61 or batch_length disagrees with len
 * the bytes are left unchanged. */
void batch_set_log_append_time(uint8_t *batch, size_t len, int64_t ts);

/* One record as seen by batch_foreach. Views point into the batch or into
 * the scratch buffer and are valid only during the callback. len -1 = null. */
typedef struct batch_record {
    int64_t offset;      /* base_offset + offsetDelta */
    int64_t timestamp;   /* base_timestamp + delta, or max_timestamp for LogAppendTime */
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    int32_t n_headers;
} batch_record;

/* Call cb for each record of one whole batch at batch (len >= its total size;
 * extra bytes after it are ignored), decompressing through s. cb returns
 * non-zero to stop early (then 0 is returned). Does not check the CRC (stored
 * batches were validated on the way in) and accepts what stored logs may
 * hold: record_count 0, control batches, offset-delta gaps. Returns 0, or a
 * Kafka error code as batch_validate would for a malformed batch (records
 * before the damage have already been passed to cb). */
int batch_foreach(const uint8_t *batch, size_t len, batch_scratch *s,
                  int (*cb)(const batch_record *r, void *arg), void *arg);

/* One record for batch_build. key/value NULL with len -1 = null. ts in ms. */
typedef struct batch_build_rec {
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
    int64_t ts;
} batch_build_rec;

/* Build one v2 batch holding recs[0..n) with offset deltas 0..n-1, CreateTime,
 * base_timestamp = recs[0].ts (-1 when n == 0), no producer id (-1/-1/-1),
 * leader epoch -1, compressed with codec compression (0..4; snappy is a raw
 * block as librdkafka writes, lz4 an LZ4F block-independent frame). *out is
 * malloc'ed, caller frees. Returns 0, or -1 on bad arguments, codec or
 * allocation failure (then *out is untouched). Not for the hot path. */
int batch_build(const batch_build_rec *recs, int n, int compression, int64_t base_offset,
                uint8_t **out, size_t *out_len);

#endif
