/* Kafka wire primitives (contract in kbuf.h). Every reader function checks
 * the remaining length before touching a byte and, on failure, sets the
 * sticky r->err and returns a zero value, so decoders may run straight-line
 * and check once at the end. The writer only grows; kw_reset keeps memory. */
#include "proto/kafka/kbuf.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

/* ---- reader ---- */

void kr_init(kr *r, const void *buf, size_t len, arena *a)
{
    r->p = buf;
    /* No buffer means nothing to read (an empty kw has buf NULL); NULL + 0
     * is undefined in C, so no arithmetic on it either. */
    r->end = buf ? r->p + len : r->p;
    r->err = 0;
    r->a = a;
}

size_t kr_remaining(const kr *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}

void kr_fail(kr *r)
{
    if (!r->err)
        r->err = -CN_EPROTO;
}

/* n bytes or NULL (failed). */
static const uint8_t *take(kr *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) {
        kr_fail(r);
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

const uint8_t *kr_raw(kr *r, size_t n)
{
    return take(r, n);
}

int8_t kr_i8(kr *r)
{
    const uint8_t *q = take(r, 1);
    return q ? (int8_t)q[0] : 0;
}

int16_t kr_i16(kr *r)
{
    const uint8_t *q = take(r, 2);
    return q ? (int16_t)be_get16(q) : 0;
}

int32_t kr_i32(kr *r)
{
    const uint8_t *q = take(r, 4);
    return q ? (int32_t)be_get32(q) : 0;
}

int64_t kr_i64(kr *r)
{
    const uint8_t *q = take(r, 8);
    return q ? (int64_t)be_get64(q) : 0;
}

uint16_t kr_u16(kr *r)
{
    const uint8_t *q = take(r, 2);
    return q ? be_get16(q) : 0;
}

uint32_t kr_u32(kr *r)
{
    const uint8_t *q = take(r, 4);
    return q ? be_get32(q) : 0;
}

double kr_f64(kr *r)
{
    const uint8_t *q = take(r, 8);
    if (!q)
        return 0;
    uint64_t u = be_get64(q);
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

int kr_bool(kr *r)
{
    const uint8_t *q = take(r, 1);
    return q ? q[0] != 0 : 0;
}

/* Unsigned LEB128 of at most max_bytes; the last allowed byte must not carry
 * the continuation bit, and must not set bits above `bits`. */
static uint64_t uvar(kr *r, int max_bytes, int bits)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        const uint8_t *q = take(r, 1);
        if (!q)
            return 0;
        v |= (uint64_t)(*q & 0x7f) << (7 * i);
        if (!(*q & 0x80)) {
            if (bits < 64 && (v >> bits) != 0) {
                kr_fail(r);
                return 0;
            }
            return v;
        }
    }
    kr_fail(r); /* continuation bit on the last allowed byte */
    return 0;
}

uint32_t kr_uvarint(kr *r)
{
    return (uint32_t)uvar(r, 5, 32);
}

int32_t kr_varint(kr *r)
{
    uint32_t u = (uint32_t)uvar(r, 5, 32);
    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

int64_t kr_varlong(kr *r)
{
    uint64_t u = uvar(r, 10, 64);
    return (int64_t)((u >> 1) ^ (0ull - (u & 1)));
}

kuuid kr_uuid(kr *r)
{
    kuuid u;
    const uint8_t *q = take(r, 16);
    if (q)
        memcpy(u.b, q, 16);
    else
        memset(u.b, 0, 16);
    return u;
}

/* len bytes as a view; len -1 = null; other negatives fail. */
static const uint8_t *view(kr *r, int64_t len, int32_t *out_len)
{
    *out_len = 0;
    if (r->err)
        return NULL;
    if (len == -1) {
        *out_len = -1;
        return NULL;
    }
    if (len < 0 || len > INT32_MAX) {
        kr_fail(r);
        return NULL;
    }
    const uint8_t *q = take(r, (size_t)len);
    if (q)
        *out_len = (int32_t)len;
    return q;
}

kstr kr_str(kr *r)
{
    kstr s;
    int64_t n = kr_i16(r);
    s.ptr = (const char *)view(r, n, &s.len);
    return s;
}

kstr kr_cstr(kr *r)
{
    kstr s;
    int64_t n = (int64_t)kr_uvarint(r) - 1;
    s.ptr = (const char *)view(r, n, &s.len);
    return s;
}

kbytes kr_bytes(kr *r)
{
    kbytes b;
    int64_t n = kr_i32(r);
    b.ptr = view(r, n, &b.len);
    return b;
}

kbytes kr_cbytes(kr *r)
{
    kbytes b;
    int64_t n = (int64_t)kr_uvarint(r) - 1;
    b.ptr = view(r, n, &b.len);
    return b;
}

krecords kr_records(kr *r)
{
    kbytes b = kr_bytes(r);
    return (krecords){ .ptr = b.ptr, .len = b.len, .file = NULL };
}

krecords kr_crecords(kr *r)
{
    kbytes b = kr_cbytes(r);
    return (krecords){ .ptr = b.ptr, .len = b.len, .file = NULL };
}

/* Count n (-1 = null) must fit the remaining bytes at min_elem_size each. */
static int32_t check_count(kr *r, int64_t n, size_t min_elem_size)
{
    if (r->err)
        return 0;
    if (n == -1)
        return -1;
    if (n < 0 || n > INT32_MAX) {
        kr_fail(r);
        return 0;
    }
    if (min_elem_size == 0)
        min_elem_size = 1;
    if ((uint64_t)n > (uint64_t)(r->end - r->p) / min_elem_size) {
        kr_fail(r);
        return 0;
    }
    return (int32_t)n;
}

int32_t kr_array_len(kr *r, size_t min_elem_size)
{
    int64_t n = kr_i32(r);
    return check_count(r, n, min_elem_size);
}

int32_t kr_carray_len(kr *r, size_t min_elem_size)
{
    int64_t n = (int64_t)kr_uvarint(r) - 1;
    return check_count(r, n, min_elem_size);
}

void kr_skip_tags(kr *r)
{
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)kr_uvarint(r); /* tag */
        uint32_t size = kr_uvarint(r);
        (void)take(r, size);
    }
}

void *kr_alloc(kr *r, size_t n, size_t sz)
{
    if (r->err)
        return NULL;
    if (!r->a || (sz && n > SIZE_MAX / sz)) {
        kr_fail(r);
        return NULL;
    }
    void *p = arena_alloc(r->a, n * sz);
    if (!p)
        kr_fail(r);
    return p;
}

/* ---- writer ---- */

void kw_init(kw *w)
{
    wbuf_init(w);
}

void kw_fini(kw *w)
{
    wbuf_fini(w);
}

void kw_reset(kw *w)
{
    wbuf_reset(w);
}

uint8_t *kw_reserve(kw *w, size_t n)
{
    return wbuf_reserve(w, n);
}

void kw_i8(kw *w, int8_t v)
{
    *kw_reserve(w, 1) = (uint8_t)v;
}

void kw_i16(kw *w, int16_t v)
{
    be_put16(kw_reserve(w, 2), (uint16_t)v);
}

void kw_i32(kw *w, int32_t v)
{
    be_put32(kw_reserve(w, 4), (uint32_t)v);
}

void kw_i64(kw *w, int64_t v)
{
    be_put64(kw_reserve(w, 8), (uint64_t)v);
}

void kw_u16(kw *w, uint16_t v)
{
    be_put16(kw_reserve(w, 2), (uint16_t)v);
}

void kw_u32(kw *w, uint32_t v)
{
    be_put32(kw_reserve(w, 4), (uint32_t)v);
}

void kw_f64(kw *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    be_put64(kw_reserve(w, 8), (uint64_t)u);
}

void kw_bool(kw *w, int v)
{
    *kw_reserve(w, 1) = v ? 1 : 0;
}

static void uvar_w(kw *w, uint64_t v)
{
    uvarint_put(kw_reserve(w, uvarint_size(v)), v);
}

void kw_uvarint(kw *w, uint32_t v)
{
    uvar_w(w, v);
}

void kw_varint(kw *w, int32_t v)
{
    uvar_w(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(kw *w, int64_t v)
{
    uvar_w(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kw_uuid(kw *w, kuuid v)
{
    memcpy(kw_reserve(w, 16), v.b, 16);
}

void kw_raw(kw *w, const void *p, size_t n)
{
    wbuf_append(w, p, n);
}

void kw_str(kw *w, kstr s)
{
    if (!s.ptr && s.len > 0)
        s.len = -1;
    kw_i16(w, (int16_t)(s.len < 0 ? -1 : s.len));
    if (s.len > 0)
        kw_raw(w, s.ptr, (size_t)s.len);
}

void kw_cstr(kw *w, kstr s)
{
    if (!s.ptr && s.len > 0)
        s.len = -1;
    kw_uvarint(w, s.len < 0 ? 0 : (uint32_t)s.len + 1);
    if (s.len > 0)
        kw_raw(w, s.ptr, (size_t)s.len);
}

void kw_bytes(kw *w, kbytes b)
{
    kw_i32(w, b.len < 0 ? -1 : b.len);
    if (b.len > 0)
        kw_raw(w, b.ptr, (size_t)b.len);
}

void kw_cbytes(kw *w, kbytes b)
{
    kw_uvarint(w, b.len < 0 ? 0 : (uint32_t)b.len + 1);
    if (b.len > 0)
        kw_raw(w, b.ptr, (size_t)b.len);
}

static void records_body(kw *w, krecords rec)
{
    if (rec.file)
        kw_splice(w, rec.file, rec.len); /* also len <= 0: the reference is ours */
    else if (rec.len > 0)
        kw_raw(w, rec.ptr, (size_t)rec.len);
}

void kw_records(kw *w, krecords rec)
{
    kw_i32(w, rec.len < 0 ? -1 : rec.len);
    records_body(w, rec);
}

void kw_crecords(kw *w, krecords rec)
{
    kw_uvarint(w, rec.len < 0 ? 0 : (uint32_t)rec.len + 1);
    records_body(w, rec);
}

void kw_array_len(kw *w, int32_t n)
{
    kw_i32(w, n < 0 ? -1 : n);
}

void kw_carray_len(kw *w, int32_t n)
{
    kw_uvarint(w, n < 0 ? 0 : (uint32_t)n + 1);
}

void kw_put_i32_at(kw *w, size_t pos, int32_t v)
{
    CN_ASSERT(pos + 4 <= w->len);
    be_put32(w->buf + pos, (uint32_t)v);
}

size_t kw_tag_begin(kw *w, uint32_t tag)
{
    kw_uvarint(w, tag);
    return w->len;
}

void kw_tag_end(kw *w, size_t mark)
{
    CN_ASSERT(mark <= w->len);
    size_t size = w->len - mark;
    int n = (int)uvarint_size(size);
    kw_reserve(w, (size_t)n);
    memmove(w->buf + mark + n, w->buf + mark, size);
    uvarint_put(w->buf + mark, size);
}

void kw_splice(kw *w, const wbuf_file *f, int32_t len)
{
    wbuf_splice_file(w, f, len > 0 ? (size_t)len : 0);
}

size_t kw_total(const kw *w)
{
    return wbuf_total(w);
}

/* ---- helpers ---- */

