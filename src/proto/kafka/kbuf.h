/* Kafka wire primitives: a bounds-checked reader over a request buffer and a
 * growable writer for responses. Used by the generated codec (gen/) and by
 * hand-written code that touches raw protocol bytes.
 *
 * Reader (kr): never reads past end; the first failure sets r->err (sticky,
 * -CN_EPROTO) and every later read returns zero values. Strings and bytes are
 * returned as views into the reader's buffer (zero copy): they live as long as
 * that buffer. Arrays are allocated from r->a (the request arena).
 *
 * Writer (kw): big-endian and varint helpers over the neutral output buffer
 * of util/wbuf.h (kw is a wbuf: the net layer's response buffer can be
 * written with these directly). It grows with xrealloc; the caller reuses
 * one kw across responses, so steady state allocates nothing. A writer may
 * also carry splices, file ranges sent with sendfile between buf[at-1] and
 * buf[at]; kw_splice records one and takes over its reference (released by
 * kw_reset / kw_fini, see wbuf.h). Not thread-safe. */
#ifndef CAIRN_KBUF_H
#define CAIRN_KBUF_H
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/bytes.h"
#include "util/wbuf.h"

/* The codec's string, bytes and UUID views are the neutral ones of
 * util/bytes.h (len -1 = null), so decoded fields pass to the core as they
 * are. */
typedef cn_str kstr;
typedef cn_bytes kbytes;
typedef cn_uuid kuuid;

/* A RECORDS field. Decoded: ptr/len view into the request (len -1 = null).
 * Encoded: when file != NULL, the length prefix is written from len and the
 * bytes are len bytes of that file range, spliced (kw_splice(w, file, len):
 * the writer takes over file->ref); otherwise ptr/len are copied. */
typedef struct krecords {
    const uint8_t *ptr;
    int32_t len;
    const wbuf_file *file;
} krecords;


typedef struct kr {
    const uint8_t *p;
    const uint8_t *end;
    int err;            /* 0, or -CN_EPROTO after the first failure */
    arena *a;           /* array allocations; NULL = arrays fail */
} kr;

void kr_init(kr *r, const void *buf, size_t len, arena *a);
size_t kr_remaining(const kr *r);
int8_t kr_i8(kr *r);
int16_t kr_i16(kr *r);
int32_t kr_i32(kr *r);
int64_t kr_i64(kr *r);
uint16_t kr_u16(kr *r);
uint32_t kr_u32(kr *r);
double kr_f64(kr *r);
int kr_bool(kr *r);                    /* any non-zero byte is true */
int32_t kr_varint(kr *r);              /* zigzag, at most 5 bytes */
int64_t kr_varlong(kr *r);             /* zigzag, at most 10 bytes */
uint32_t kr_uvarint(kr *r);            /* unsigned, at most 5 bytes */
kuuid kr_uuid(kr *r);
/* Strings: classic (int16 length) or compact (uvarint length+1). A null
 * where the schema says non-nullable is not an error here (the codec checks). */
kstr kr_str(kr *r);
kstr kr_cstr(kr *r);
kbytes kr_bytes(kr *r);                /* int32 length */
kbytes kr_cbytes(kr *r);               /* uvarint length+1 */
krecords kr_records(kr *r);            /* as kr_bytes; file = NULL */
krecords kr_crecords(kr *r);           /* as kr_cbytes; file = NULL */
/* Array length: classic int32 (-1 null) or compact uvarint (0 null). Fails
 * when the count could not fit in the remaining bytes (each element takes at
 * least min_elem_size bytes), so hostile counts cannot force huge allocations. */
int32_t kr_array_len(kr *r, size_t min_elem_size);
int32_t kr_carray_len(kr *r, size_t min_elem_size);
/* Raw view of n bytes. */
const uint8_t *kr_raw(kr *r, size_t n);
/* Skip a whole tagged-field section (used for unknown tags). */
void kr_skip_tags(kr *r);
/* Mark the reader failed. */
void kr_fail(kr *r);
/* Allocate n elements of size sz from r->a, zeroed; fails the reader on NULL. */
void *kr_alloc(kr *r, size_t n, size_t sz);

/* The writer is the neutral buffer itself (buf, len, splices: see wbuf.h). */
typedef wbuf kw;

void kw_init(kw *w);
void kw_fini(kw *w);
/* Forget the contents (releasing splices), keep the memory. */
void kw_reset(kw *w);
/* Room for n more bytes; returns a pointer to write them and advances len. */
uint8_t *kw_reserve(kw *w, size_t n);
void kw_i8(kw *w, int8_t v);
void kw_i16(kw *w, int16_t v);
void kw_i32(kw *w, int32_t v);
void kw_i64(kw *w, int64_t v);
void kw_u16(kw *w, uint16_t v);
void kw_u32(kw *w, uint32_t v);
void kw_f64(kw *w, double v);
void kw_bool(kw *w, int v);
void kw_varint(kw *w, int32_t v);
void kw_varlong(kw *w, int64_t v);
void kw_uvarint(kw *w, uint32_t v);
void kw_uuid(kw *w, kuuid v);
void kw_str(kw *w, kstr s);
void kw_cstr(kw *w, kstr s);
void kw_bytes(kw *w, kbytes b);
void kw_cbytes(kw *w, kbytes b);
/* RECORDS: int32 (or compact) length from rec.len (-1 = null), then the bytes
 * from rec.file via kw_splice when set (its reference is taken over even when
 * len <= 0), else copied from rec.ptr. */
void kw_records(kw *w, krecords rec);
void kw_crecords(kw *w, krecords rec);
void kw_array_len(kw *w, int32_t n);   /* -1 = null */
void kw_carray_len(kw *w, int32_t n);  /* -1 = null */
void kw_raw(kw *w, const void *p, size_t n);
/* Overwrite 4 bytes at pos (for size prefixes written after the body). */
void kw_put_i32_at(kw *w, size_t pos, int32_t v);
/* Tagged field framing: kw_tag_begin writes the tag and returns a mark; the
 * caller then writes the field value; kw_tag_end inserts the uvarint size of
 * everything written since the mark in front of it. No splice may be recorded
 * in between. */
size_t kw_tag_begin(kw *w, uint32_t tag);
void kw_tag_end(kw *w, size_t mark);
/* Record that len bytes of the file range f follow the current end of buf;
 * the writer takes over f->ref (released by kw_reset or kw_fini). */
void kw_splice(kw *w, const wbuf_file *f, int32_t len);
/* Total bytes the writer will send: buf plus every splice. */
size_t kw_total(const kw *w);

/* Helpers for handlers. */
#define kstr_c cn_str_c                 /* view of a C string (NULL -> null) */
#define kstr_eq cn_str_eq               /* 1 if a equals s (a null never does) */
#endif
