/* The storage format: record batch v2 (magic 2). Header parsing,
 * produce-side validation, record iteration, LogAppendTime stamping and a
 * small builder.
 *
 * This is Cairn's own on-disk format; it happens to equal Kafka's
 * RecordBatch v2 byte for byte, so Kafka produce and fetch need no
 * conversion. Every module that touches batches (log, broker, pstate,
 * internal logs, front ends) goes through this header and its layout
 * constants; nobody else hard-codes a byte offset.
 *
 * Batch layout (all integers big-endian):
 *   off size field
 *     0  8   baseOffset            set by the log at append; not under the CRC
 *     8  4   batchLength           bytes after this field; total = batchLength + 12
 *    12  4   partitionLeaderEpoch  set by the log at append; not under the CRC
 *    16  1   magic                 must be 2
 *    17  4   crc                   CRC-32C (Castagnoli) of bytes 21..end
 *    21  2   attributes            bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4,
 *                                  4 zstd), 3 LogAppendTime, 4 transactional,
 *                                  5 control, 6 delete horizon
 *    23  4   lastOffsetDelta       offset of the last record - baseOffset
 *    27  8   baseTimestamp         ms
 *    35  8   maxTimestamp          ms
 *    43  8   producerId            -1 none
 *    51  2   producerEpoch         -1 none
 *    53  4   baseSequence          -1 none
 *    57  4   recordsCount
 *    61  ... records; if the codec is not 0, bytes 61..end are one compressed blob
 *
 * Record (varints are zigzag, util/bytes.h; varint <= 5 bytes, varlong <= 10):
 *   varint length (bytes after this field), int8 attributes (0), varlong
 *   timestampDelta, varint offsetDelta, varint keyLen (-1 null) + key, varint
 *   valueLen (-1 null) + value, varint headerCount (>= 0), then per header
 *   varint keyLen (>= 0) + key, varint valueLen (-1 null) + value.
 *
 * Control record (a batch with the control bit, one record; written by the
 * broker for transaction markers, never accepted from a client):
 *   key   int16 version (0), int16 type (0 ABORT, 1 COMMIT)
 *   value int16 version (0), int32 coordinatorEpoch
 *
 * Codec framing and the choice of errors are documented at the top of
 * batch.c and batch_codec.c. Errors are the core's currency: 0 or -CN_E*
 * (util/common.h): -CN_ECORRUPT for a damaged frame, -CN_EFORMAT for a magic
 * other than 2, -CN_ETOOBIG, -CN_ECODEC, -CN_EBADREC for broken records,
 * -CN_ENOMEM. A front end maps them to its own codes.
 *
 * Threads: every function is reentrant; a batch_scratch must not be shared
 * between threads at the same time (one per loop thread or connection). */
#ifndef CAIRN_RECORD_BATCH_H
#define CAIRN_RECORD_BATCH_H
#include <stddef.h>
#include <stdint.h>

/* Fixed part of a v2 batch: everything up to and including recordsCount. */
#define BATCH_HEADER_SIZE 61
/* Byte offsets of the header fields (layout above). */
#define BATCH_OFF_BASE_OFFSET 0
#define BATCH_OFF_LENGTH 8
#define BATCH_OFF_LEADER_EPOCH 12
#define BATCH_OFF_MAGIC 16
#define BATCH_OFF_CRC 17
#define BATCH_OFF_ATTRIBUTES 21        /* first byte under the CRC */
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_BASE_TIMESTAMP 27
#define BATCH_OFF_MAX_TIMESTAMP 35
#define BATCH_OFF_PRODUCER_ID 43
#define BATCH_OFF_PRODUCER_EPOCH 51
#define BATCH_OFF_BASE_SEQUENCE 53
#define BATCH_OFF_RECORDS_COUNT 57
/* Bytes before batchLength's count starts (total = batchLength + this). */
#define BATCH_LOG_OVERHEAD 12
/* Control record types (key bytes 2..3 of a control batch's record). */
#define BATCH_CONTROL_ABORT 0
#define BATCH_CONTROL_COMMIT 1
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
 * rejected with -CN_ETOOBIG. */
void batch_scratch_set_limit(batch_scratch *s, size_t max_bytes);

/* The offset after the last whole batch of buf[0..len) (batches back to
 * back, as a log slice holds them), or `from` when there is none. Reads
 * headers only. */
int64_t batch_span_end(const uint8_t *buf, size_t len, int64_t from);

/* Parse the 61-byte header at buf (len >= 61) into *out. Checks nothing but
 * the length: magic, CRC and sizes are the caller's (or batch_validate's)
 * business. Returns 0, or -1 if len < 61. */
int batch_parse_header(const uint8_t *buf, size_t len, batch_info *out);

/* Validate one produce request's records field for one partition: one or more
 * whole v2 batches back to back covering exactly len bytes. Per batch, in
 * this order (first failure wins):
 *   fewer than 61 bytes left, batch_length < 49 or past the end  -> -CN_ECORRUPT
 *   magic != 2                                                   -> -CN_EFORMAT
 *   batch_length + 12 > max_message_bytes                        -> -CN_ETOOBIG
 *   CRC-32C mismatch                                             -> -CN_ECORRUPT
 *   codec 5..7                                                   -> -CN_ECODEC
 *   control bit set (clients may not write control batches)      -> -CN_EBADREC
 *   record_count < 1 or last_offset_delta != record_count - 1    -> -CN_EBADREC
 *   compressed data does not decode                              -> -CN_ECORRUPT
 *   decompressed size above the scratch limit                    -> -CN_ETOOBIG
 *   records malformed: bad varint, negative/oversized length, offsetDelta != index,
 *     record not consuming exactly its length, wrong count, trailing bytes -> -CN_EBADREC
 *   scratch allocation failure                                   -> -CN_ENOMEM
 * len == 0 (no batch at all) gives -CN_EBADREC, as Kafka does for
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
    /* The record's headers section: n_headers entries (varint keyLen, key,
     * varint valueLen (-1: null), value), already checked; walk it with
     * batch_header_next. */
    const uint8_t *headers;
    size_t headers_len;
} batch_record;

/* One record header: a key (never null) and a value (NULL with len -1 = null). */
typedef struct batch_header {
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
} batch_header;

/* The next header of a batch_record's headers section: *pp advances.
 * Returns 1 with *out set, 0 at end, -1 when malformed. */
int batch_header_next(const uint8_t **pp, const uint8_t *end, batch_header *out);

/* Call cb for each record of one whole batch at batch (len >= its total size;
 * extra bytes after it are ignored), decompressing through s. cb returns
 * non-zero to stop early (then 0 is returned). Does not check the CRC (stored
 * batches were validated on the way in) and accepts what stored logs may
 * hold: record_count 0, control batches, offset-delta gaps. Returns 0, or a
 * -CN_E* as batch_validate would for a malformed batch (records
 * before the damage have already been passed to cb). */
int batch_foreach(const uint8_t *batch, size_t len, batch_scratch *s,
                  int (*cb)(const batch_record *r, void *arg), void *arg);

/* One record for batch_build. key/value NULL with len -1 = null. ts in ms.
 * headers[0..n_headers) are written in order (keys must not be NULL unless
 * key_len is 0); none when n_headers is 0. Zero-initialize the struct
 * (an initializer list or calloc) so fields added later default to 0. */
typedef struct batch_build_rec {
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
    int64_t ts;
    const batch_header *headers;
    int32_t n_headers;
} batch_build_rec;

/* Build one v2 batch holding recs[0..n) with offset deltas 0..n-1, CreateTime,
 * base_timestamp = recs[0].ts (-1 when n == 0), no producer id (-1/-1/-1),
 * leader epoch -1, compressed with codec compression (0..4; snappy is a raw
 * block as librdkafka writes, lz4 an LZ4F block-independent frame). *out is
 * malloc'ed, caller frees. Returns 0, or -1 on bad arguments, codec or
 * allocation failure (then *out is untouched). Not for the hot path. */
int batch_build(const batch_build_rec *recs, int n, int compression, int64_t base_offset,
                uint8_t **out, size_t *out_len);

/* Control batches (transaction markers) ------------------------------------ */
/* Bytes a marker takes at most (batch_marker_build's buffer). */
#define BATCH_MARKER_SIZE 96
/* Build a control batch for producer pid/epoch: one control record (COMMIT if
 * commit, else ABORT, with coordinator_epoch), uncompressed, transactional and
 * control attributes, base offset and leader epoch 0 (the log sets them),
 * both timestamps = timestamp. Writes at most BATCH_MARKER_SIZE bytes into
 * buf; returns the batch length. */
size_t batch_marker_build(uint8_t *buf, int64_t pid, int16_t epoch, int commit,
                          int32_t coordinator_epoch, int64_t timestamp);
/* Read the control record type (BATCH_CONTROL_ABORT, _COMMIT, or another
 * value) of a control batch's first record, and its coordinator epoch (-1 if
 * the value is absent or short). Returns 0 or -CN_ECORRUPT. */
int batch_marker_parse(const uint8_t *batch, size_t len, int *type, int32_t *coordinator_epoch);
#endif
