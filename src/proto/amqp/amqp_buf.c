/* AMQP 0-9-1 field tables and frames (amqp_buf.h). A table is checked by
 * walking it once with the same value reader the iterators use, recursing
 * into nested tables and arrays up to AMQP_TABLE_MAX_DEPTH. */
#include "proto/amqp/amqp_buf.h"

#include <string.h>

#include "proto/amqp/gen/amqp_spec.h"

/* Reads one value of the given tag into *out. Failures fail the reader. */
static void read_value(bin_reader *r, uint8_t tag, amqp_value *out)
{
    out->tag = tag;
    switch (tag) {
    case AMQP_T_BOOL:
        out->u.b = amqp_rd_u8(r) != 0;
        break;
    case AMQP_T_I8:
        out->u.i8 = bin_i8(r);
        break;
    case AMQP_T_U8:
        out->u.u8 = amqp_rd_u8(r);
        break;
    case AMQP_T_I16:
        out->u.i16 = bin_i16(r);
        break;
    case AMQP_T_U16:
        out->u.u16 = amqp_rd_u16(r);
        break;
    case AMQP_T_I32:
        out->u.i32 = bin_i32(r);
        break;
    case AMQP_T_U32:
        out->u.u32 = amqp_rd_u32(r);
        break;
    case AMQP_T_I64:
        out->u.i64 = bin_i64(r);
        break;
    case AMQP_T_F32: {
        uint32_t bits = amqp_rd_u32(r);
        memcpy(&out->u.f32, &bits, sizeof(bits));
        break;
    }
    case AMQP_T_F64: {
        uint64_t bits = amqp_rd_u64(r);
        memcpy(&out->u.f64, &bits, sizeof(bits));
        break;
    }
    case AMQP_T_DECIMAL:
        out->u.dec.scale = amqp_rd_u8(r);
        out->u.dec.value = bin_i32(r);
        break;
    case AMQP_T_LONGSTR:
        out->u.str = amqp_rd_longstr(r);
        break;
    case AMQP_T_BYTES: {
        cn_str s = amqp_rd_longstr(r);
        out->u.bytes.ptr = (const uint8_t *)s.ptr;
        out->u.bytes.len = s.len;
        break;
    }
    case AMQP_T_ARRAY:
    case AMQP_T_TABLE: {
        cn_str s = amqp_rd_longstr(r);
        const uint8_t *p = (const uint8_t *)s.ptr;
        if (tag == AMQP_T_ARRAY)
            out->u.array = (amqp_array){p, (uint32_t)s.len};
        else
            out->u.table = (amqp_table){p, (uint32_t)s.len};
        break;
    }
    case AMQP_T_TIMESTAMP:
        out->u.ts = amqp_rd_u64(r);
        break;
    case AMQP_T_VOID:
        break;
    default:
        bin_fail(r);
        break;
    }
}

static int check_level(const uint8_t *p, uint32_t len, int is_table, int depth);

/* Checks a nested table or array value one level deeper. */
static int check_nested(const amqp_value *v, int depth)
{
    if (v->tag == AMQP_T_TABLE)
        return check_level(v->u.table.ptr, v->u.table.len, 1, depth + 1);
    if (v->tag == AMQP_T_ARRAY)
        return check_level(v->u.array.ptr, v->u.array.len, 0, depth + 1);
    return 0;
}

static int check_level(const uint8_t *p, uint32_t len, int is_table, int depth)
{
    if (depth > AMQP_TABLE_MAX_DEPTH)
        return -CN_EPROTO;
    bin_reader r;
    amqp_reader_init(&r, p, len);
    amqp_value v;
    while (!r.err && r.p < r.end) {
        if (is_table)
            (void)amqp_rd_shortstr(&r);
        read_value(&r, amqp_rd_u8(&r), &v);
        if (!r.err && check_nested(&v, depth) < 0)
            return -CN_EPROTO;
    }
    return r.err ? -CN_EPROTO : 0;
}

int amqp_table_check(amqp_table t) { return check_level(t.ptr, t.len, 1, 1); }
int amqp_array_check(amqp_array a) { return check_level(a.ptr, a.len, 0, 1); }

amqp_table amqp_rd_table(bin_reader *r)
{
    cn_str s = amqp_rd_longstr(r);
    amqp_table t = {(const uint8_t *)s.ptr, (uint32_t)s.len};
    if (r->err || amqp_table_check(t) < 0) {
        bin_fail(r);
        t = (amqp_table){NULL, 0};
    }
    return t;
}

void amqp_table_iter(amqp_iter *it, amqp_table t) { amqp_reader_init(&it->r, t.ptr, t.len); }
void amqp_array_iter(amqp_iter *it, amqp_array a) { amqp_reader_init(&it->r, a.ptr, a.len); }

int amqp_table_next(amqp_iter *it, cn_str *out_key, amqp_value *out)
{
    if (it->r.err)
        return -CN_EPROTO;
    if (it->r.p == it->r.end)
        return 0;
    *out_key = amqp_rd_shortstr(&it->r);
    read_value(&it->r, amqp_rd_u8(&it->r), out);
    return it->r.err ? -CN_EPROTO : 1;
}

int amqp_array_next(amqp_iter *it, amqp_value *out)
{
    if (it->r.err)
        return -CN_EPROTO;
    if (it->r.p == it->r.end)
        return 0;
    read_value(&it->r, amqp_rd_u8(&it->r), out);
    return it->r.err ? -CN_EPROTO : 1;
}

int amqp_table_get(amqp_table t, const char *key, amqp_value *out)
{
    amqp_iter it;
    cn_str k;
    amqp_table_iter(&it, t);
    int rc;
    while ((rc = amqp_table_next(&it, &k, out)) > 0)
        if (cn_str_eq(k, key))
            return 0;
    return rc < 0 ? rc : -CN_ENOENT;
}

int amqp_value_int(const amqp_value *v, int64_t *out)
{
    switch (v->tag) {
    case AMQP_T_I8:
        *out = v->u.i8;
        return 0;
    case AMQP_T_U8:
        *out = v->u.u8;
        return 0;
    case AMQP_T_I16:
        *out = v->u.i16;
        return 0;
    case AMQP_T_U16:
        *out = v->u.u16;
        return 0;
    case AMQP_T_I32:
        *out = v->u.i32;
        return 0;
    case AMQP_T_U32:
        *out = v->u.u32;
        return 0;
    case AMQP_T_I64:
        *out = v->u.i64;
        return 0;
    default:
        return -CN_EINVAL;
    }
}

/* ---- writing ---- */

static int value_ok(const amqp_value *v)
{
    switch (v->tag) {
    case AMQP_T_LONGSTR:
        return amqp_longstr_ok(v->u.str);
    case AMQP_T_BYTES:
        return v->u.bytes.ptr || v->u.bytes.len <= 0;
    case AMQP_T_TABLE:
        return amqp_table_ok(v->u.table);
    case AMQP_T_ARRAY:
        return v->u.array.ptr || v->u.array.len == 0;
    case AMQP_T_BOOL: case AMQP_T_I8: case AMQP_T_U8: case AMQP_T_I16: case AMQP_T_U16:
    case AMQP_T_I32: case AMQP_T_U32: case AMQP_T_I64: case AMQP_T_F32: case AMQP_T_F64:
    case AMQP_T_DECIMAL: case AMQP_T_TIMESTAMP: case AMQP_T_VOID:
        return 1;
    default:
        return 0;
    }
}

static void write_value(wbuf *w, const amqp_value *v)
{
    amqp_put_u8(w, v->tag);
    switch (v->tag) {
    case AMQP_T_BOOL:
        amqp_put_u8(w, v->u.b ? 1 : 0);
        break;
    case AMQP_T_I8:
        bin_put_i8(w, v->u.i8);
        break;
    case AMQP_T_U8:
        amqp_put_u8(w, v->u.u8);
        break;
    case AMQP_T_I16:
        bin_put_i16(w, v->u.i16);
        break;
    case AMQP_T_U16:
        amqp_put_u16(w, v->u.u16);
        break;
    case AMQP_T_I32:
        bin_put_i32(w, v->u.i32);
        break;
    case AMQP_T_U32:
        amqp_put_u32(w, v->u.u32);
        break;
    case AMQP_T_I64:
        bin_put_i64(w, v->u.i64);
        break;
    case AMQP_T_F32: {
        uint32_t bits;
        memcpy(&bits, &v->u.f32, sizeof(bits));
        amqp_put_u32(w, bits);
        break;
    }
    case AMQP_T_F64: {
        uint64_t bits;
        memcpy(&bits, &v->u.f64, sizeof(bits));
        amqp_put_u64(w, bits);
        break;
    }
    case AMQP_T_DECIMAL:
        amqp_put_u8(w, v->u.dec.scale);
        bin_put_i32(w, v->u.dec.value);
        break;
    case AMQP_T_LONGSTR:
        amqp_put_longstr(w, v->u.str);
        break;
    case AMQP_T_BYTES:
        amqp_put_longstr(w, (cn_str){(const char *)v->u.bytes.ptr, v->u.bytes.len});
        break;
    case AMQP_T_ARRAY:
        amqp_put_u32(w, v->u.array.len);
        bin_put_raw(w, v->u.array.ptr, v->u.array.len);
        break;
    case AMQP_T_TABLE:
        amqp_put_table(w, v->u.table);
        break;
    case AMQP_T_TIMESTAMP:
        amqp_put_u64(w, v->u.ts);
        break;
    default: /* AMQP_T_VOID */
        break;
    }
}

int amqp_put_value(wbuf *w, const amqp_value *v)
{
    if (!value_ok(v))
        return -CN_EINVAL;
    write_value(w, v);
    return 0;
}

int amqp_put_entry(wbuf *w, cn_str key, const amqp_value *v)
{
    if (!amqp_shortstr_ok(key) || !value_ok(v))
        return -CN_EINVAL;
    amqp_put_shortstr(w, key);
    write_value(w, v);
    return 0;
}

size_t amqp_put_value_open(wbuf *w, uint8_t tag)
{
    amqp_put_u8(w, tag);
    size_t mark = w->len;
    amqp_put_u32(w, 0);
    return mark;
}

size_t amqp_put_entry_open(wbuf *w, cn_str key, uint8_t tag)
{
    amqp_put_shortstr(w, key);
    return amqp_put_value_open(w, tag);
}

void amqp_put_close(wbuf *w, size_t mark)
{
    be_put32(w->buf + mark, (uint32_t)(w->len - mark - 4));
}

/* ---- frames ---- */

uint64_t amqp_frame_len(const uint8_t *buf, size_t len)
{
    if (len < AMQP_FRAME_HEAD_LEN)
        return 0;
    return (uint64_t)be_get32(buf + 3) + AMQP_FRAME_OVERHEAD;
}

int amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max, amqp_frame *out)
{
    if (len < AMQP_FRAME_OVERHEAD || amqp_frame_len(buf, len) != len)
        return -CN_EPROTO;
    if (frame_max && len > frame_max)
        return -CN_EPROTO;
    out->type = buf[0];
    out->channel = be_get16(buf + 1);
    out->size = be_get32(buf + 3);
    out->payload = buf + AMQP_FRAME_HEAD_LEN;
    switch (out->type) {
    case AMQP_FRAME_METHOD:
    case AMQP_FRAME_HEADER:
    case AMQP_FRAME_BODY:
    case AMQP_FRAME_HEARTBEAT:
        break;
    default:
        return -CN_EPROTO;
    }
    return buf[len - 1] == AMQP_FRAME_END ? 0 : -CN_EPROTO;
}

amqp_frame_mark amqp_frame_begin(wbuf *w, uint8_t type, uint16_t channel)
{
    amqp_frame_mark m;
    m.at = w->len;
    amqp_put_u8(w, type);
    amqp_put_u16(w, channel);
    amqp_put_u32(w, 0);
    m.total = wbuf_total(w);
    return m;
}

void amqp_frame_end(wbuf *w, amqp_frame_mark m)
{
    be_put32(w->buf + m.at + 3, (uint32_t)(wbuf_total(w) - m.total));
    amqp_put_u8(w, AMQP_FRAME_END);
}

void amqp_frame_write(wbuf *w, uint8_t type, uint16_t channel, const void *p, size_t len)
{
    amqp_frame_mark m = amqp_frame_begin(w, type, channel);
    bin_put_raw(w, p, len);
    amqp_frame_end(w, m);
}
