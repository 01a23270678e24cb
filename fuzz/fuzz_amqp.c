/* libFuzzer harness for the AMQP 0-9-1 codec (proto/amqp). Every input is
 * read four ways:
 *   1. as a stream of frames (amqp_frame_len / amqp_frame_parse); method
 *      frames go through the method table (amqp_method_decode), header
 *      frames through amqp_content_header_decode;
 *   2. whole, as a method frame payload;
 *   3. whole, as a content header payload;
 *   4. whole, as a field table's entries (amqp_table_check, the iterators,
 *      amqp_table_get).
 *
 * Properties (a violation traps):
 *   - what decodes re-encodes without error, the encoding decodes again,
 *     consuming it all, and encodes to the same bytes (decode . encode is
 *     the identity on what decode produces);
 *   - a method or header frame written around an encoded payload parses
 *     back to that payload;
 *   - a table that passes amqp_table_check iterates to its end without an
 *     error at every depth, and rebuilt entry by entry with the writers
 *     (nested tables and arrays opened and closed, not copied) it passes
 *     the check again and rebuilds to the same bytes.
 * Nothing here allocates except the two reused output buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amqp/amqp_buf.h"
#include "proto/amqp/gen/amqp_methods.h"
#include "util/wbuf.h"

static wbuf w1, w2, t1, t2;

static void same_bytes(const wbuf *a, const wbuf *b)
{
    if (a->len != b->len || (a->len && memcmp(a->buf, b->buf, a->len) != 0))
        __builtin_trap();
}

static void check_method(const uint8_t *p, size_t len)
{
    amqp_method m, m2;
    if (amqp_method_decode(p, len, &m) < 0)
        return;
    wbuf_reset(&w1);
    if (amqp_method_encode(&w1, m.info->id, &m.args) != 0)
        __builtin_trap();
    if (amqp_method_decode(w1.buf, w1.len, &m2) != 0 || m2.info != m.info)
        __builtin_trap();
    wbuf_reset(&w2);
    if (amqp_method_encode(&w2, m2.info->id, &m2.args) != 0)
        __builtin_trap();
    same_bytes(&w1, &w2);
    /* The same method framed: the frame parses back to that payload. */
    wbuf_reset(&w2);
    if (amqp_method_frame(&w2, 7, m.info->id, &m.args) != 0)
        __builtin_trap();
    amqp_frame f;
    if (amqp_frame_parse(w2.buf, w2.len, 0, &f) != 0 || f.type != AMQP_FRAME_METHOD ||
        f.channel != 7 || f.size != w1.len || memcmp(f.payload, w1.buf, w1.len) != 0)
        __builtin_trap();
}

static void check_header(const uint8_t *p, size_t len)
{
    amqp_content_header h, h2;
    if (amqp_content_header_decode(p, len, &h) < 0)
        return;
    wbuf_reset(&w1);
    if (amqp_content_header_encode(&w1, &h) != 0)
        __builtin_trap();
    if (amqp_content_header_decode(w1.buf, w1.len, &h2) != 0 || h2.props.flags != h.props.flags ||
        h2.body_size != h.body_size)
        __builtin_trap();
    wbuf_reset(&w2);
    if (amqp_content_header_encode(&w2, &h2) != 0)
        __builtin_trap();
    same_bytes(&w1, &w2);
    wbuf_reset(&w2);
    amqp_frame_write(&w2, AMQP_FRAME_HEADER, 1, w1.buf, w1.len);
    amqp_frame f;
    if (amqp_frame_parse(w2.buf, w2.len, 0, &f) != 0 || f.size != w1.len)
        __builtin_trap();
}

static void rebuild_array(wbuf *w, amqp_array a, int depth);

/* Writes one value, rebuilding nested tables and arrays with the writers. */
static void rebuild_value(wbuf *w, const cn_str *key, const amqp_value *v, int depth)
{
    if (v->tag == AMQP_T_TABLE || v->tag == AMQP_T_ARRAY) {
        if (depth >= AMQP_TABLE_MAX_DEPTH)
            __builtin_trap(); /* the check let a too-deep table through */
        size_t mark = key ? amqp_put_entry_open(w, *key, v->tag) : amqp_put_value_open(w, v->tag);
        if (v->tag == AMQP_T_TABLE) {
            amqp_iter it;
            cn_str k;
            amqp_value e;
            int rc;
            amqp_table_iter(&it, v->u.table);
            while ((rc = amqp_table_next(&it, &k, &e)) > 0)
                rebuild_value(w, &k, &e, depth + 1);
            if (rc < 0)
                __builtin_trap();
        } else {
            rebuild_array(w, v->u.array, depth + 1);
        }
        amqp_put_close(w, mark);
        return;
    }
    int rc = key ? amqp_put_entry(w, *key, v) : amqp_put_value(w, v);
    if (rc != 0)
        __builtin_trap();
}

static void rebuild_array(wbuf *w, amqp_array a, int depth)
{
    amqp_iter it;
    amqp_value e;
    int rc;
    amqp_array_iter(&it, a);
    while ((rc = amqp_array_next(&it, &e)) > 0)
        rebuild_value(w, NULL, &e, depth);
    if (rc < 0)
        __builtin_trap();
}

/* Rebuilds the entries of t (depth 1) into w. */
static void rebuild_table(wbuf *w, amqp_table t)
{
    amqp_iter it;
    cn_str k;
    amqp_value e;
    int rc;
    amqp_table_iter(&it, t);
    while ((rc = amqp_table_next(&it, &k, &e)) > 0)
        rebuild_value(w, &k, &e, 1);
    if (rc < 0)
        __builtin_trap();
}

static void check_table(const uint8_t *p, size_t len)
{
    if (len > UINT32_MAX)
        return;
    amqp_table t = {p, (uint32_t)len};
    amqp_value v;
    int rc = amqp_table_get(t, "x-match", &v);
    if (amqp_table_check(t) != 0) {
        /* the flat iterator may still succeed (a deep or bad nested table) */
        return;
    }
    if (rc != 0 && rc != -CN_ENOENT)
        __builtin_trap();
    wbuf_reset(&t1);
    rebuild_table(&t1, t);
    amqp_table t1v = {t1.buf, (uint32_t)t1.len};
    if (amqp_table_check(t1v) != 0)
        __builtin_trap();
    wbuf_reset(&t2);
    rebuild_table(&t2, t1v);
    same_bytes(&t1, &t2);
    amqp_array a = {p, (uint32_t)len};
    (void)amqp_array_check(a);
}

static void check_frames(const uint8_t *data, size_t size)
{
    while (size > 0) {
        uint64_t n = amqp_frame_len(data, size);
        if (n == 0 || n > size)
            return;
        amqp_frame f;
        if (amqp_frame_parse(data, (size_t)n, AMQP_FRAME_MIN_SIZE * 4, &f) == 0) {
            if (f.type == AMQP_FRAME_METHOD)
                check_method(f.payload, f.size);
            else if (f.type == AMQP_FRAME_HEADER)
                check_header(f.payload, f.size);
        }
        data += n;
        size -= (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        wbuf_init(&w1);
        wbuf_init(&w2);
        wbuf_init(&t1);
        wbuf_init(&t2);
        ready = 1;
    }
    check_frames(data, size);
    check_method(data, size);
    check_header(data, size);
    check_table(data, size);
    return 0;
}
