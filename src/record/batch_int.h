/* Private to src/record/batch*.c: the scratch layout and the codec glue that
 * batch.c (decode) and batch_build.c (encode) share. */
#ifndef CAIRN_RECORD_BATCH_INT_H
#define CAIRN_RECORD_BATCH_INT_H
#include <stddef.h>
#include <stdint.h>

#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "record/batch.h"
#include "util/common.h"

/* Errors of this module, in the core's currency (util/common.h). */
#define BATCH_ERR_UNKNOWN (-CN_ENOMEM)
#define BATCH_ERR_CORRUPT_MESSAGE (-CN_ECORRUPT)
#define BATCH_ERR_MESSAGE_TOO_LARGE (-CN_ETOOBIG)
#define BATCH_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT (-CN_EFORMAT)
#define BATCH_ERR_UNSUPPORTED_COMPRESSION_TYPE (-CN_ECODEC)
#define BATCH_ERR_INVALID_RECORD (-CN_EBADREC)

struct batch_scratch {
    uint8_t *buf;          /* decompressed records section */
    size_t cap;            /* bytes allocated at buf */
    size_t limit;          /* max decompressed bytes per batch */
    z_stream zs;           /* gzip; valid when zs_ready */
    int zs_ready;
    LZ4F_dctx *lz4;        /* NULL until first lz4 batch */
    ZSTD_DCtx *zstd;       /* NULL until first zstd batch */
};

/* Decompress src[0..src_len) of codec (1..4) into s->buf. On success
 * *out_len is the decompressed size. Returns 0, BATCH_ERR_CORRUPT_MESSAGE
 * (undecodable), BATCH_ERR_MESSAGE_TOO_LARGE (above s->limit) or
 * BATCH_ERR_UNKNOWN (allocation failure). */
int batch__decompress(batch_scratch *s, int codec, const uint8_t *src, size_t src_len,
                      size_t *out_len);

/* Compress src with codec (1..4) into a fresh malloc'ed buffer. snappy_xerial
 * selects xerial framing (as the Java client and kafka-python write) instead
 * of one raw block. Returns 0 or -1. */
int batch__compress(int codec, int snappy_xerial, const uint8_t *src, size_t src_len,
                    uint8_t **out, size_t *out_len);

/* batch_build with the codec's framing choice exposed (tests, fuzz seeds). */
int batch__build_ex(const batch_build_rec *recs, int n, int compression, int snappy_xerial,
                    int64_t base_offset, uint8_t **out, size_t *out_len);

#endif
