/* Big-endian binary reader and writer: the one copy that our own record
 * formats (the internal logs' keys and values, snapshots) and the protocol
 * codecs build on.
 *
 * Reader: a bounds-checked cursor over caller-owned bytes. The first failure
 * (a read past the end, a negative length other than -1) sets r->err to
 * -CN_EPROTO; it is sticky and every later read returns zero values, so a
 * decoder reads a whole record and checks err once. Strings and bytes come
 * back as views into the buffer (no copy): they live as long as it does.
 *
 * Writer: appends to a wbuf (util/wbuf.h), which grows as needed and aborts
 * on OOM; a buffer reused per record allocates nothing in steady state.
 *
 * Encodings: integers big-endian two's complement; str = int16 length then
 * the bytes (-1 = null); bytes = int32 length then the bytes (-1 = null).
 * Reentrant; a reader or writer must not be shared between threads. */
#ifndef CAIRN_BIN_H
#define CAIRN_BIN_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/bytes.h"
#include "util/common.h"
#include "util/wbuf.h"

typedef struct bin_reader {
    const uint8_t *p;
    const uint8_t *end;
    int err;                      /* 0, or -CN_EPROTO after the first failure */
} bin_reader;

static inline void bin_reader_init(bin_reader *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = len ? r->p + len : r->p;   /* NULL + 0 is undefined in C */
    r->err = 0;
}
static inline size_t bin_remaining(const bin_reader *r)
{
    return r->err || r->p == r->end ? 0 : (size_t)(r->end - r->p);
}
static inline void bin_fail(bin_reader *r)
{
    if (!r->err)
        r->err = -CN_EPROTO;
}
/* The next n bytes (advancing), or NULL after failing. */
static inline const uint8_t *bin_take(bin_reader *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) {
        bin_fail(r);
        return NULL;
    }
    const uint8_t *q = r->p;
    if (n)
        r->p += n;   /* no arithmetic on a NULL buffer of length 0 */
    return q;
}
static inline int8_t bin_i8(bin_reader *r)
{
    const uint8_t *q = bin_take(r, 1);
    return q ? (int8_t)q[0] : 0;
}
static inline int16_t bin_i16(bin_reader *r)
{
    const uint8_t *q = bin_take(r, 2);
    return q ? (int16_t)be_get16(q) : 0;
}
static inline int32_t bin_i32(bin_reader *r)
{
    const uint8_t *q = bin_take(r, 4);
    return q ? (int32_t)be_get32(q) : 0;
}
static inline int64_t bin_i64(bin_reader *r)
{
    const uint8_t *q = bin_take(r, 8);
    return q ? (int64_t)be_get64(q) : 0;
}
/* A view of len bytes; len -1 gives the null view, another negative fails. */
static inline const uint8_t *bin__view(bin_reader *r, int64_t len, int32_t *out_len)
{
    *out_len = 0;
    if (r->err)
        return NULL;
    if (len == -1) {
        *out_len = -1;
        return NULL;
    }
    if (len < 0 || len > INT32_MAX) {
        bin_fail(r);
        return NULL;
    }
    const uint8_t *q = bin_take(r, (size_t)len);
    if (q)
        *out_len = (int32_t)len;
    return q;
}
static inline cn_str bin_str(bin_reader *r)
{
    cn_str s;
    int64_t n = bin_i16(r);
    s.ptr = (const char *)bin__view(r, n, &s.len);
    return s;
}
static inline cn_bytes bin_bytes(bin_reader *r)
{
    cn_bytes b;
    int64_t n = bin_i32(r);
    b.ptr = bin__view(r, n, &b.len);
    return b;
}

static inline void bin_put_i8(wbuf *w, int8_t v) { *wbuf_reserve(w, 1) = (uint8_t)v; }
static inline void bin_put_i16(wbuf *w, int16_t v) { be_put16(wbuf_reserve(w, 2), (uint16_t)v); }
static inline void bin_put_i32(wbuf *w, int32_t v) { be_put32(wbuf_reserve(w, 4), (uint32_t)v); }
static inline void bin_put_i64(wbuf *w, int64_t v) { be_put64(wbuf_reserve(w, 8), (uint64_t)v); }
static inline void bin_put_raw(wbuf *w, const void *p, size_t n)
{
    if (n)
        memcpy(wbuf_reserve(w, n), p, n);
}
/* A str (len -1, or a NULL ptr with len > 0, writes null; longer than
 * INT16_MAX is the caller's bug). */
static inline void bin_put_str(wbuf *w, cn_str s)
{
    if (!s.ptr && s.len > 0)
        s.len = -1;
    bin_put_i16(w, (int16_t)(s.len < 0 ? -1 : s.len));
    if (s.len > 0)
        bin_put_raw(w, s.ptr, (size_t)s.len);
}
static inline void bin_put_bytes(wbuf *w, cn_bytes b)
{
    if (!b.ptr && b.len > 0)
        b.len = -1;
    bin_put_i32(w, b.len < 0 ? -1 : b.len);
    if (b.len > 0)
        bin_put_raw(w, b.ptr, (size_t)b.len);
}
#endif
