/* Neutral byte and string views, big-endian load/store, and zigzag varints.
 * One copy for the whole tree: storage formats (record batches, internal
 * logs, snapshots) and protocol codecs all use these.
 *
 * Views never own their bytes: they live as long as the buffer they point
 * into. len == -1 means null (a protocol "null string"); len 0 is empty.
 * Nothing here allocates. Every function is reentrant. */
#ifndef CAIRN_BYTES_H
#define CAIRN_BYTES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A string view. len == -1 means null. Not NUL-terminated. */
typedef struct cn_str {
    const char *ptr;
    int32_t len;
} cn_str;

/* A bytes view. len == -1 means null. */
typedef struct cn_bytes {
    const uint8_t *ptr;
    int32_t len;
} cn_bytes;

/* A 16-byte UUID (topic ids). */
typedef struct cn_uuid {
    uint8_t b[16];
} cn_uuid;

/* View of a NUL-terminated C string (NULL gives the null view). */
static inline cn_str cn_str_c(const char *s)
{
    cn_str v = {s, s ? (int32_t)strlen(s) : -1};
    return v;
}

/* 1 if a equals the C string s (a null view or a NULL s equals nothing). */
static inline int cn_str_eq(cn_str a, const char *s)
{
    if (a.len < 0 || !s)
        return 0;
    size_t n = strlen(s);
    return (size_t)a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/* Big-endian loads and stores on unaligned memory. */
static inline uint16_t be_get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t be_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be_get64(const uint8_t *p)
{
    return (uint64_t)be_get32(p) << 32 | be_get32(p + 4);
}
static inline void be_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void be_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void be_put64(uint8_t *p, uint64_t v)
{
    be_put32(p, (uint32_t)(v >> 32));
    be_put32(p + 4, (uint32_t)v);
}

/* Varints (protobuf/Kafka style: 7 bits per byte, low group first, high bit
 * = more follows). Zigzag maps signed to unsigned: 0,-1,1,-2 -> 0,1,2,3.
 * A varint (32-bit) takes at most 5 bytes, a varlong at most 10. */
static inline uint64_t zz_enc64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t zz_dec64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
/* Bytes uvarint_put writes for v (1..10). */
static inline size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
/* Write v at p (room for uvarint_size(v) bytes); returns bytes written. */
static inline size_t uvarint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}
/* Read an unsigned varint of at most max_bytes (5 or 10) from *pp < end.
 * Advances *pp. Returns 0, or -1 when truncated or longer than max_bytes
 * (then *pp is unspecified). Bits beyond 64 are not checked for 10-byte
 * varlongs (as Kafka's readers). */
static inline int uvarint_get(const uint8_t **pp, const uint8_t *end, int max_bytes,
                              uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}
/* Zigzag 32-bit varint (at most 5 bytes; a 5th byte's spare high bits are
 * dropped, as Kafka's readers do). 0 or -1 (truncated or overlong). The
 * record validator calls this per field: one-byte values take the first
 * branch, and the loop stays 32-bit. */
static inline int varint_get(const uint8_t **pp, const uint8_t *end, int32_t *out)
{
    const uint8_t *p = *pp;
    if (__builtin_expect(p < end && !(*p & 0x80), 1)) {
        uint32_t v = *p;
        *out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
        *pp = p + 1;
        return 0;
    }
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
/* Zigzag 64-bit varlong (at most 10 bytes). 0 or -1. */
static inline int varlong_get(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    if (__builtin_expect(p < end && !(*p & 0x80), 1)) {
        uint64_t v = *p;
        *out = (int64_t)((v >> 1) ^ (0ull - (v & 1)));
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (p == end)
            return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = (int64_t)((v >> 1) ^ (0ull - (v & 1)));
            return 0;
        }
    }
    return -1;
}
#endif
