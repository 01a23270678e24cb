/* AMQP 0-9-1 wire primitives and field tables (RabbitMQ's dialect), used by
 * the generated method codec (gen/, from tools/amqp_gen.py) and by
 * hand-written code that touches AMQP bytes. Everything is big-endian.
 *
 * Reading goes through the bounds-checked cursor of util/bin.h (bin_reader):
 * the first failure sets r->err = -CN_EPROTO, sticky, and every later read
 * returns zero values, so a decoder reads a whole method and checks once.
 * Strings and tables come back as views into the reader's buffer (no copy,
 * no allocation): they live as long as the frame does.
 *
 * Writing appends to a wbuf (util/wbuf.h) with the util/bin.h writers; it
 * grows as needed and aborts on OOM.
 *
 * Wire types (NOTES.md §2): octet u8, short u16, long u32, longlong u64,
 * timestamp u64 (POSIX seconds), shortstr = u8 length + bytes, longstr =
 * u32 length + bytes, table = u32 byte length + entries. A field-table entry
 * is shortstr key, octet tag, value; the tags are RabbitMQ's set
 * (t b B s u I i l f d D S x A T F V, see amqp_value). An unknown tag, an
 * entry or value running past its table, or nesting deeper than
 * AMQP_TABLE_MAX_DEPTH makes a table malformed (AMQP 502 SYNTAX_ERROR for
 * the caller). Tables are kept as raw views and decoded lazily with an
 * iterator; the method decoders check each table whole (amqp_table_check)
 * when they read it, so iterating a decoded method's table cannot fail.
 *
 * Frames (NOTES.md §1): octet type, short channel, long size, size payload
 * octets, octet 0xCE. Reentrant; nothing here allocates. */
#ifndef CAIRN_AMQP_BUF_H
#define CAIRN_AMQP_BUF_H
#include <stddef.h>
#include <stdint.h>

#include "util/bin.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/wbuf.h"

/* A field table's entries, without the u32 length in front (len bytes at
 * ptr, a view into the frame). {NULL, 0} is the empty table. */
typedef struct amqp_table {
    const uint8_t *ptr;
    uint32_t len;
} amqp_table;

/* A field array's values (tag A), without its u32 length. */
typedef struct amqp_array {
    const uint8_t *ptr;
    uint32_t len;
} amqp_array;

/* Tables nested deeper than this (tables and arrays inside tables and
 * arrays; the outermost table is depth 1) are malformed. RabbitMQ's own
 * headers (x-death: an array of tables of arrays) need 3. */
#define AMQP_TABLE_MAX_DEPTH 32

/* Field value tags (RabbitMQ's set, NOTES.md §2). */
enum amqp_tag {
    AMQP_T_BOOL = 't',      /* u.b: 0 or 1 (any non-zero octet reads as 1) */
    AMQP_T_I8 = 'b',        /* u.i8 */
    AMQP_T_U8 = 'B',        /* u.u8 */
    AMQP_T_I16 = 's',       /* u.i16 (RabbitMQ: 's' is int16, not short string) */
    AMQP_T_U16 = 'u',       /* u.u16 */
    AMQP_T_I32 = 'I',       /* u.i32 */
    AMQP_T_U32 = 'i',       /* u.u32 */
    AMQP_T_I64 = 'l',       /* u.i64 */
    AMQP_T_F32 = 'f',       /* u.f32 */
    AMQP_T_F64 = 'd',       /* u.f64 */
    AMQP_T_DECIMAL = 'D',   /* u.dec: octet scale, int32 unscaled value */
    AMQP_T_LONGSTR = 'S',   /* u.str: u32 length + bytes */
    AMQP_T_BYTES = 'x',     /* u.bytes: u32 length + bytes */
    AMQP_T_ARRAY = 'A',     /* u.array: u32 length + (tag, value)* */
    AMQP_T_TIMESTAMP = 'T', /* u.ts: u64 seconds */
    AMQP_T_TABLE = 'F',     /* u.table: u32 length + entries */
    AMQP_T_VOID = 'V',      /* no value */
};

typedef struct amqp_decimal {
    uint8_t scale;          /* decimal places */
    int32_t value;          /* unscaled: value / 10^scale */
} amqp_decimal;

/* One decoded field value: tag says which member of u is set. Strings,
 * bytes, tables and arrays are views into the frame. */
typedef struct amqp_value {
    uint8_t tag;
    union {
        int b;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        float f32;
        double f64;
        amqp_decimal dec;
        cn_str str;
        cn_bytes bytes;
        uint64_t ts;
        amqp_table table;
        amqp_array array;
    } u;
} amqp_value;

/* ---- primitives: reading (bin_reader, sticky -CN_EPROTO) ---- */

/* bin_reader_init that also takes (NULL, 0), the empty table's view
 * (pointer arithmetic on NULL is undefined even with a zero offset). */
static inline void amqp_reader_init(bin_reader *r, const void *p, size_t len)
{
    bin_reader_init(r, p ? p : (const void *)"", p ? len : 0);
}

static inline uint8_t amqp_rd_u8(bin_reader *r) { return (uint8_t)bin_i8(r); }
static inline uint16_t amqp_rd_u16(bin_reader *r) { return (uint16_t)bin_i16(r); }
static inline uint32_t amqp_rd_u32(bin_reader *r) { return (uint32_t)bin_i32(r); }
static inline uint64_t amqp_rd_u64(bin_reader *r) { return (uint64_t)bin_i64(r); }
/* A view of n bytes as a string ({NULL, 0} after a failure). */
static inline cn_str amqp__rd_view(bin_reader *r, uint32_t n)
{
    cn_str s = {NULL, 0};
    if (n > INT32_MAX) {
        bin_fail(r);
        return s;
    }
    const uint8_t *q = bin_take(r, n);
    if (q) {
        s.ptr = (const char *)q;
        s.len = (int32_t)n;
    }
    return s;
}
static inline cn_str amqp_rd_shortstr(bin_reader *r) { return amqp__rd_view(r, amqp_rd_u8(r)); }
static inline cn_str amqp_rd_longstr(bin_reader *r) { return amqp__rd_view(r, amqp_rd_u32(r)); }
/* A table: u32 length, then entries, checked whole (amqp_table_check); a
 * malformed table fails the reader. */
amqp_table amqp_rd_table(bin_reader *r);

/* ---- primitives: writing ---- */

static inline void amqp_put_u8(wbuf *w, uint8_t v) { bin_put_i8(w, (int8_t)v); }
static inline void amqp_put_u16(wbuf *w, uint16_t v) { bin_put_i16(w, (int16_t)v); }
static inline void amqp_put_u32(wbuf *w, uint32_t v) { bin_put_i32(w, (int32_t)v); }
static inline void amqp_put_u64(wbuf *w, uint64_t v) { bin_put_i64(w, (int64_t)v); }
/* 1 if s can be written as a shortstr: at most 255 bytes, and a NULL ptr
 * only with len <= 0 (a null view, len -1, writes as empty). */
static inline int amqp_shortstr_ok(cn_str s) { return s.len <= 255 && (s.ptr || s.len <= 0); }
/* 1 if s can be written as a longstr (a NULL ptr only with len <= 0). */
static inline int amqp_longstr_ok(cn_str s) { return s.ptr || s.len <= 0; }
static inline int amqp_table_ok(amqp_table t) { return t.ptr || t.len == 0; }
/* The writers below expect checked values (the ..._ok tests above); a null
 * view writes as empty. */
static inline void amqp_put_shortstr(wbuf *w, cn_str s)
{
    uint8_t n = (uint8_t)(s.len > 0 ? s.len : 0);
    amqp_put_u8(w, n);
    bin_put_raw(w, s.ptr, n);
}
static inline void amqp_put_longstr(wbuf *w, cn_str s)
{
    uint32_t n = (uint32_t)(s.len > 0 ? s.len : 0);
    amqp_put_u32(w, n);
    bin_put_raw(w, s.ptr, n);
}
/* A table view with its u32 length (the bytes are copied as they are). */
static inline void amqp_put_table(wbuf *w, amqp_table t)
{
    amqp_put_u32(w, t.len);
    bin_put_raw(w, t.ptr, t.len);
}

/* ---- field tables: checking, iterating, looking up ---- */

/* 0 if every entry of t (and of every table and array nested in it, at
 * most AMQP_TABLE_MAX_DEPTH deep) is well formed, else -CN_EPROTO. The same
 * for an array's values. */
int amqp_table_check(amqp_table t);
int amqp_array_check(amqp_array a);

/* Iterator over one level of a table or array: nested tables and arrays
 * come back as views to iterate in turn. Each step is bounds-checked, so
 * an unchecked table can be iterated too (it then fails at the bad entry). */
typedef struct amqp_iter {
    bin_reader r;
} amqp_iter;

void amqp_table_iter(amqp_iter *it, amqp_table t);
void amqp_array_iter(amqp_iter *it, amqp_array a);
/* The next entry: 1 and *out_key, *out set; 0 at the end; -CN_EPROTO when
 * the entry is malformed (truncated, unknown tag); the iterator then stays
 * failed. */
int amqp_table_next(amqp_iter *it, cn_str *out_key, amqp_value *out);
int amqp_array_next(amqp_iter *it, amqp_value *out);
/* The first entry named key: 0 and *out set; -CN_ENOENT when there is none;
 * -CN_EPROTO when the table is malformed before a match. */
int amqp_table_get(amqp_table t, const char *key, amqp_value *out);
/* The value of an integer tag (b B s u I i l) as int64 in *out: 0, or
 * -CN_EINVAL for any other tag (for x-* arguments that RabbitMQ accepts in
 * any integer type). */
int amqp_value_int(const amqp_value *v, int64_t *out);

/* ---- field tables: writing ---- */

/* Writing a table: append entries to a wbuf, one amqp_put_entry each; the
 * bytes from the first entry on are the table's contents (wrap them in an
 * amqp_table view to pass to a method encoder). A nested table or array is
 * opened with amqp_put_entry_open (or amqp_put_value_open inside an array),
 * filled, then closed with amqp_put_close, which writes its length. */

/* key, then v (tag and value; a table or array value copies its view).
 * Returns 0, or -CN_EINVAL with nothing written when key is longer than
 * 255 bytes, a string is a NULL ptr with len > 0, or the tag is unknown. */
int amqp_put_entry(wbuf *w, cn_str key, const amqp_value *v);
/* v alone (an array element). 0 or -CN_EINVAL, nothing written. */
int amqp_put_value(wbuf *w, const amqp_value *v);
/* Opens a nested table (tag AMQP_T_TABLE) or array (AMQP_T_ARRAY) as an
 * entry named key (at most 255 bytes: the caller's bug otherwise) or as an
 * array element. Returns the mark that amqp_put_close takes. */
size_t amqp_put_entry_open(wbuf *w, cn_str key, uint8_t tag);
size_t amqp_put_value_open(wbuf *w, uint8_t tag);
void amqp_put_close(wbuf *w, size_t mark);

/* ---- frames ---- */

/* The protocol header a client sends first (and the server answers with
 * when it does not speak the client's version). */
#define AMQP_PROTOCOL_HEADER "AMQP\x00\x00\x09\x01"
#define AMQP_PROTOCOL_HEADER_LEN 8
/* Bytes around a frame's payload: 7 of header, 1 frame-end octet. */
#define AMQP_FRAME_HEAD_LEN 7
#define AMQP_FRAME_OVERHEAD 8

typedef struct amqp_frame {
    uint8_t type;            /* AMQP_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT */
    uint16_t channel;
    uint32_t size;           /* payload bytes */
    const uint8_t *payload;  /* view into the frame */
} amqp_frame;

/* The length of the whole frame that starts at buf (header + payload + end
 * octet), from its 7-byte header; 0 when len < 7 (not known yet). */
uint64_t amqp_frame_len(const uint8_t *buf, size_t len);
/* Parses the whole frame buf[0..len): its header, the size agreeing with
 * len, a known frame type, the 0xCE end octet, and frame_max (the largest
 * whole frame; 0 = no limit). Returns 0, or -CN_EPROTO (AMQP 501
 * FRAME_ERROR for the caller). */
int amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max, amqp_frame *out);

/* Writing a frame around a payload written in between: begin writes the
 * header with a placeholder size, end patches the size (everything written
 * since, splices included) and writes the end octet. */
typedef struct amqp_frame_mark {
    size_t at;               /* offset of the frame's first byte in w->buf */
    size_t total;            /* wbuf_total(w) after the header */
} amqp_frame_mark;
amqp_frame_mark amqp_frame_begin(wbuf *w, uint8_t type, uint16_t channel);
void amqp_frame_end(wbuf *w, amqp_frame_mark m);
/* A whole frame with a payload copied from p (a heartbeat: type 8, channel
 * 0, len 0). */
void amqp_frame_write(wbuf *w, uint8_t type, uint16_t channel, const void *p, size_t len);
#endif
