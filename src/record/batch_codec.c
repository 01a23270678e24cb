/* Codec glue for record batches: decompression of a batch's records section
 * into the scratch buffer, and compression for the builder.
 *
 * Framing accepted inside a v2 batch (NOTES.md section 7):
 *   gzip    one or more concatenated RFC 1952 members (zlib windowBits 15+16).
 *   snappy  either xerial framing ("\x82SNAPPY\0", int32 BE version, int32 BE
 *           min-compatible version, then repeated int32 BE length + raw block;
 *           Java client, kafka-python) or one raw snappy block (librdkafka).
 *   lz4     LZ4F frames; Kafka requires block-independent mode (FLG bit 5), so
 *           a dependent-block frame is refused as corrupt like Java does.
 *   zstd    one or more zstd frames, content size optional (always streamed).
 *           Window log capped at BATCH_ZSTD_WINDOW_LOG_MAX to bound memory.
 *
 * Bounds: the scratch buffer never grows past s->limit; hitting it gives
 * MESSAGE_TOO_LARGE. Known sizes (snappy) are reserved exactly; streamed
 * codecs start at 4x the input (at least 64 KiB) and double. Contexts are
 * created once per scratch and reset per batch, so steady state allocates
 * nothing. */
#include <limits.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"
#include "util/bytes.h"

#define BATCH_ZSTD_WINDOW_LOG_MAX 24
#define XERIAL_HEADER_LEN 16
#define XERIAL_BLOCK 32768
#define LZ4F_MAGIC 0x184D2204u

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

/* Ensure s->buf holds at least need bytes (and is never NULL). */
static int reserve(batch_scratch *s, size_t need)
{
    if (need == 0)
        need = 1;
    if (need <= s->cap)
        return 0;
    uint8_t *p = realloc(s->buf, need);
    if (!p)
        return BATCH_ERR_UNKNOWN;
    s->buf = p;
    s->cap = need;
    return 0;
}

/* Start a streamed decode: some room, guessed from the input size. */
static int stream_start(batch_scratch *s, size_t src_len)
{
    size_t want = src_len > s->limit / 4 ? s->limit : src_len * 4;
    if (want < 65536)
        want = 65536;
    if (want > s->limit)
        want = s->limit;
    return reserve(s, want);
}

/* The output is full and the decoder wants more room. */
static int stream_grow(batch_scratch *s)
{
    if (s->cap >= s->limit)
        return BATCH_ERR_MESSAGE_TOO_LARGE;
    size_t want = s->cap > s->limit / 2 ? s->limit : s->cap * 2;
    return reserve(s, want);
}

static unsigned clamp_uint(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

static int dec_gzip(batch_scratch *s, const uint8_t *src, size_t n, size_t *out_len)
{
    z_stream *z = &s->zs;
    if (!s->zs_ready) {
        memset(z, 0, sizeof(*z));
        if (inflateInit2(z, 15 + 16) != Z_OK)
            return BATCH_ERR_UNKNOWN;
        s->zs_ready = 1;
    } else if (inflateReset(z) != Z_OK) {
        return BATCH_ERR_UNKNOWN;
    }
    int rc = stream_start(s, n);
    if (rc)
        return rc;
    size_t used = 0;
    for (;;) {
        if (used == s->cap && (rc = stream_grow(s)) != 0)
            return rc;
        z->next_in = (Bytef *)src;
        z->avail_in = clamp_uint(n);
        z->next_out = s->buf + used;
        z->avail_out = clamp_uint(s->cap - used);
        int zr = inflate(z, Z_NO_FLUSH);
        size_t took = (size_t)(z->next_in - (Bytef *)src);
        src += took;
        n -= took;
        used = (size_t)(z->next_out - s->buf);
        if (zr == Z_STREAM_END) {
            if (n == 0)
                break;
            if (inflateReset(z) != Z_OK)        /* next concatenated member */
                return BATCH_ERR_UNKNOWN;
            continue;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return BATCH_ERR_CORRUPT_MESSAGE;
        if (used < s->cap && n == 0)            /* wants input we lack: truncated */
            return BATCH_ERR_CORRUPT_MESSAGE;
        if (used < s->cap && took == 0)         /* no progress with room left */
            return BATCH_ERR_CORRUPT_MESSAGE;
    }
    *out_len = used;
    return 0;
}

/* Decode one raw snappy block of known size to s->buf + *used. */
static int snappy_block(batch_scratch *s, const uint8_t *src, size_t n, size_t *used)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)src, n, &ulen) != SNAPPY_OK)
        return BATCH_ERR_CORRUPT_MESSAGE;
    if (ulen > s->limit - *used)
        return BATCH_ERR_MESSAGE_TOO_LARGE;
    int rc = reserve(s, *used + ulen);
    if (rc)
        return rc;
    size_t got = ulen;
    if (snappy_uncompress((const char *)src, n, (char *)s->buf + *used, &got) != SNAPPY_OK ||
        got != ulen)
        return BATCH_ERR_CORRUPT_MESSAGE;
    *used += ulen;
    return 0;
}

static int dec_snappy(batch_scratch *s, const uint8_t *src, size_t n, size_t *out_len)
{
    size_t used = 0;
    if (n < sizeof(xerial_magic) || memcmp(src, xerial_magic, sizeof(xerial_magic)) != 0) {
        int rc = snappy_block(s, src, n, &used);
        *out_len = used;
        return rc;
    }
    if (n < XERIAL_HEADER_LEN)
        return BATCH_ERR_CORRUPT_MESSAGE;
    /* Pass 1 checks the chunk framing and sums the sizes so the buffer is
     * reserved once; pass 2 decodes. */
    size_t total = 0;
    for (size_t pos = XERIAL_HEADER_LEN; pos < n;) {
        if (n - pos < 4)
            return BATCH_ERR_CORRUPT_MESSAGE;
        size_t clen = be_get32(src + pos);
        pos += 4;
        if (clen > n - pos)
            return BATCH_ERR_CORRUPT_MESSAGE;
        size_t ulen;
        if (snappy_uncompressed_length((const char *)src + pos, clen, &ulen) != SNAPPY_OK)
            return BATCH_ERR_CORRUPT_MESSAGE;
        if (ulen > s->limit - total)
            return BATCH_ERR_MESSAGE_TOO_LARGE;
        total += ulen;
        pos += clen;
    }
    int rc = reserve(s, total);
    if (rc)
        return rc;
    for (size_t pos = XERIAL_HEADER_LEN; pos < n;) {
        size_t clen = be_get32(src + pos);
        pos += 4;
        if ((rc = snappy_block(s, src + pos, clen, &used)) != 0)
            return rc;
        pos += clen;
    }
    *out_len = used;
    return 0;
}

/* Kafka refuses LZ4 frames that use linked (dependent) blocks. */
static int lz4_frame_dependent(const uint8_t *p, size_t n)
{
    if (n < 5)
        return 0;
    uint32_t magic = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
    return magic == LZ4F_MAGIC && !(p[4] & 0x20);
}

static int dec_lz4(batch_scratch *s, const uint8_t *src, size_t n, size_t *out_len)
{
    if (!s->lz4) {
        if (LZ4F_isError(LZ4F_createDecompressionContext(&s->lz4, LZ4F_VERSION))) {
            s->lz4 = NULL;
            return BATCH_ERR_UNKNOWN;
        }
    } else {
        LZ4F_resetDecompressionContext(s->lz4);
    }
    int rc = stream_start(s, n);
    if (rc)
        return rc;
    if (lz4_frame_dependent(src, n))
        return BATCH_ERR_CORRUPT_MESSAGE;
    size_t used = 0;
    for (;;) {
        if (used == s->cap && (rc = stream_grow(s)) != 0)
            return rc;
        size_t dst = s->cap - used, took = n;
        size_t r = LZ4F_decompress(s->lz4, s->buf + used, &dst, src, &took, NULL);
        if (LZ4F_isError(r))
            return BATCH_ERR_CORRUPT_MESSAGE;
        src += took;
        n -= took;
        used += dst;
        if (r == 0) {                           /* frame complete */
            if (n == 0)
                break;
            if (lz4_frame_dependent(src, n))
                return BATCH_ERR_CORRUPT_MESSAGE;
            continue;
        }
        if (used < s->cap && (n == 0 || (took == 0 && dst == 0)))
            return BATCH_ERR_CORRUPT_MESSAGE;   /* truncated or stuck */
    }
    *out_len = used;
    return 0;
}

static int dec_zstd(batch_scratch *s, const uint8_t *src, size_t n, size_t *out_len)
{
    if (!s->zstd) {
        s->zstd = ZSTD_createDCtx();
        if (!s->zstd)
            return BATCH_ERR_UNKNOWN;
        ZSTD_DCtx_setParameter(s->zstd, ZSTD_d_windowLogMax, BATCH_ZSTD_WINDOW_LOG_MAX);
    } else {
        ZSTD_DCtx_reset(s->zstd, ZSTD_reset_session_only);
    }
    int rc = stream_start(s, n);
    if (rc)
        return rc;
    ZSTD_inBuffer in = {src, n, 0};
    size_t used = 0;
    for (;;) {
        if (used == s->cap && (rc = stream_grow(s)) != 0)
            return rc;
        ZSTD_outBuffer out = {s->buf, s->cap, used};
        size_t in_before = in.pos;
        size_t r = ZSTD_decompressStream(s->zstd, &out, &in);
        if (ZSTD_isError(r)) {
            if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
                return BATCH_ERR_MESSAGE_TOO_LARGE;
            return BATCH_ERR_CORRUPT_MESSAGE;
        }
        int progress = out.pos != used || in.pos != in_before;
        used = out.pos;
        if (in.pos == in.size && r == 0)
            break;
        if (used < s->cap && (in.pos == in.size || !progress))
            return BATCH_ERR_CORRUPT_MESSAGE;   /* truncated or stuck */
    }
    *out_len = used;
    return 0;
}

int batch__decompress(batch_scratch *s, int codec, const uint8_t *src, size_t src_len,
                      size_t *out_len)
{
    *out_len = 0;
    switch (codec) {
    case BATCH_COMPRESSION_GZIP:
        return dec_gzip(s, src, src_len, out_len);
    case BATCH_COMPRESSION_SNAPPY:
        return dec_snappy(s, src, src_len, out_len);
    case BATCH_COMPRESSION_LZ4:
        return dec_lz4(s, src, src_len, out_len);
    case BATCH_COMPRESSION_ZSTD:
        return dec_zstd(s, src, src_len, out_len);
    default:
        return BATCH_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
}

/* ---- compression (builder only; allocation per call is fine here) ---- */

static int enc_gzip(const uint8_t *src, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (n > UINT_MAX || deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 32;     /* + gzip header/trailer slack */
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)src;
    z.avail_in = (unsigned)n;
    z.next_out = buf;
    z.avail_out = clamp_uint(cap);
    int zr = deflate(&z, Z_FINISH);
    size_t got = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

static int enc_snappy(const uint8_t *src, size_t n, int xerial, uint8_t **out, size_t *out_len)
{
    size_t n_chunks = xerial ? (n + XERIAL_BLOCK - 1) / XERIAL_BLOCK : 1;
    size_t cap = xerial ? XERIAL_HEADER_LEN + n_chunks * (4 + snappy_max_compressed_length(XERIAL_BLOCK))
                        : snappy_max_compressed_length(n);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return -1;
    size_t pos = 0;
    if (!xerial) {
        size_t got = cap;
        if (snappy_compress((const char *)src, n, (char *)buf, &got) != SNAPPY_OK)
            goto fail;
        pos = got;
    } else {
        memcpy(buf, xerial_magic, sizeof(xerial_magic));
        be_put32(buf + 8, 1);
        be_put32(buf + 12, 1);
        pos = XERIAL_HEADER_LEN;
        for (size_t off = 0; off < n; off += XERIAL_BLOCK) {
            size_t in = n - off < XERIAL_BLOCK ? n - off : XERIAL_BLOCK;
            size_t got = cap - pos - 4;
            if (snappy_compress((const char *)src + off, in, (char *)buf + pos + 4, &got) !=
                SNAPPY_OK)
                goto fail;
            be_put32(buf + pos, (uint32_t)got);
            pos += 4 + got;
        }
    }
    *out = buf;
    *out_len = pos;
    return 0;
fail:
    free(buf);
    return -1;
}

static int enc_lz4(const uint8_t *src, size_t n, uint8_t **out, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t cap = LZ4F_compressFrameBound(n, &prefs);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t got = LZ4F_compressFrame(buf, cap, src, n, &prefs);
    if (LZ4F_isError(got)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

/* Like Kafka's zstd-jni stream encoder: the frame carries no content size. */
static int enc_zstd(const uint8_t *src, size_t n, uint8_t **out, size_t *out_len)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (!c)
        return -1;
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    size_t cap = ZSTD_compressBound(n);
    uint8_t *buf = malloc(cap);
    size_t got = buf ? ZSTD_compress2(c, buf, cap, src, n) : 0;
    ZSTD_freeCCtx(c);
    if (!buf || ZSTD_isError(got)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

int batch__compress(int codec, int snappy_xerial, const uint8_t *src, size_t src_len,
                    uint8_t **out, size_t *out_len)
{
    switch (codec) {
    case BATCH_COMPRESSION_GZIP:
        return enc_gzip(src, src_len, out, out_len);
    case BATCH_COMPRESSION_SNAPPY:
        return enc_snappy(src, src_len, snappy_xerial, out, out_len);
    case BATCH_COMPRESSION_LZ4:
        return enc_lz4(src, src_len, out, out_len);
    case BATCH_COMPRESSION_ZSTD:
        return enc_zstd(src, src_len, out, out_len);
    default:
        return -1;
    }
}
