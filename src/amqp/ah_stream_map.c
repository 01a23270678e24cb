/* The AMQP <-> Kafka record mapping of stream queues (the table in
 * ARCHITECTURE.md "AMQP front end"; docs/amqp-plan.md "Kafka and AMQP on
 * the same data"): pure conversions, no state.
 *
 * Record -> message: key -> routing key (a key over 255 bytes: routing key
 * "" and header x-stream-key), value -> body, timestamp ms -> timestamp
 * property s, headers `amqp.<property>` -> that property (delivery-mode and
 * priority as decimal text; absent delivery-mode: 2), other `amqp.*`
 * headers dropped, every other header -> a headers-table entry of the same
 * name (longstr; a null value: void), plus x-stream-offset (long) and, for
 * topics of several partitions, x-stream-partition (int).
 *
 * Message -> record: the reverse; headers-table entries become record
 * headers of their own name: longstr and byte arrays as their bytes, void
 * as a null value, other scalars as text (integers in decimal, bool
 * true/false, decimals with their point, timestamps in decimal seconds,
 * floats %.9g, doubles %.17g); nested tables and arrays are dropped. The
 * record timestamp is the timestamp property x 1000, or the publish time.
 *
 * Partitioner: Kafka's default for keyed records, murmur2 (seed 0x9747b28c)
 * of the key bytes, sign bit cleared, modulo the partition count: the
 * broker's broker_key_partition (src/broker/partitioner.c), shared with HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "record/batch.h"
#include "util/common.h"

static int32_t slen(cn_str s) { return s.len > 0 ? s.len : 0; }

/* Record -> AMQP message ------------------------------------------------------ */

static int key_is(const batch_header *h, const char *name)
{
    size_t n = strlen(name);
    return (size_t)h->key_len == n && memcmp(h->key, name, n) == 0;
}

/* A short string property from a header value (NULL/too long: absent). */
static int prop_str(const batch_header *h, cn_str *out)
{
    if (h->value_len < 0 || h->value_len > 255)
        return 0;
    *out = (cn_str){h->value_len ? h->value : "", h->value_len};
    return 1;
}

static int prop_octet(const batch_header *h, uint8_t *out)
{
    if (h->value_len <= 0 || h->value_len > 3)
        return 0;
    unsigned v = 0;
    for (int32_t i = 0; i < h->value_len; i++) {
        char c = ((const char *)h->value)[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (unsigned)(c - '0');
    }
    if (v > 255)
        return 0;
    *out = (uint8_t)v;
    return 1;
}

static const struct {
    const char *name;
    uint16_t flag;
} prop_names[] = {
    {"amqp.content-type", AMQP_BASIC_FLAG_CONTENT_TYPE},
    {"amqp.content-encoding", AMQP_BASIC_FLAG_CONTENT_ENCODING},
    {"amqp.delivery-mode", AMQP_BASIC_FLAG_DELIVERY_MODE},
    {"amqp.priority", AMQP_BASIC_FLAG_PRIORITY},
    {"amqp.correlation-id", AMQP_BASIC_FLAG_CORRELATION_ID},
    {"amqp.reply-to", AMQP_BASIC_FLAG_REPLY_TO},
    {"amqp.expiration", AMQP_BASIC_FLAG_EXPIRATION},
    {"amqp.message-id", AMQP_BASIC_FLAG_MESSAGE_ID},
    {"amqp.type", AMQP_BASIC_FLAG_TYPE},
    {"amqp.user-id", AMQP_BASIC_FLAG_USER_ID},
    {"amqp.app-id", AMQP_BASIC_FLAG_APP_ID},
};
#define N_PROPS ((int)(sizeof(prop_names) / sizeof(prop_names[0])))

static cn_str *prop_field(amqp_basic_properties *p, uint16_t flag)
{
    switch (flag) {
    case AMQP_BASIC_FLAG_CONTENT_TYPE: return &p->content_type;
    case AMQP_BASIC_FLAG_CONTENT_ENCODING: return &p->content_encoding;
    case AMQP_BASIC_FLAG_CORRELATION_ID: return &p->correlation_id;
    case AMQP_BASIC_FLAG_REPLY_TO: return &p->reply_to;
    case AMQP_BASIC_FLAG_EXPIRATION: return &p->expiration;
    case AMQP_BASIC_FLAG_MESSAGE_ID: return &p->message_id;
    case AMQP_BASIC_FLAG_TYPE: return &p->type;
    case AMQP_BASIC_FLAG_USER_ID: return &p->user_id;
    case AMQP_BASIC_FLAG_APP_ID: return &p->app_id;
    }
    return NULL;
}

/* The AMQP message for record r of partition part (n_parts in its topic). */
amsg *asrv__stream_record_msg(const batch_record *r, int32_t part, int32_t n_parts)
{
    amqp_content_header h;
    memset(&h, 0, sizeof(h));
    h.class_id = AMQP_CLASS_BASIC;
    h.body_size = r->value_len > 0 ? (uint64_t)r->value_len : 0;
    amqp_basic_properties *p = &h.props;
    wbuf tbl;
    wbuf_init(&tbl);
    const uint8_t *hp = r->headers, *end = r->headers + r->headers_len;
    batch_header bh;
    while (batch_header_next(&hp, end, &bh) == 1) {
        if (bh.key_len >= 5 && memcmp(bh.key, "amqp.", 5) == 0) {
            for (int i = 0; i < N_PROPS; i++) {
                if (!key_is(&bh, prop_names[i].name))
                    continue;
                uint16_t f = prop_names[i].flag;
                int ok = f == AMQP_BASIC_FLAG_DELIVERY_MODE ? prop_octet(&bh, &p->delivery_mode)
                         : f == AMQP_BASIC_FLAG_PRIORITY    ? prop_octet(&bh, &p->priority)
                                                            : prop_str(&bh, prop_field(p, f));
                if (ok)
                    p->flags |= f;
                break;
            }
            continue; /* other amqp.* headers are ours, not the application's */
        }
        if (bh.key_len > 255)
            continue;
        amqp_value v;
        memset(&v, 0, sizeof(v));
        if (bh.value_len < 0) {
            v.tag = AMQP_T_VOID;
        } else {
            v.tag = AMQP_T_LONGSTR;
            v.u.str = (cn_str){bh.value_len ? bh.value : "", bh.value_len};
        }
        amqp_put_entry(&tbl, (cn_str){bh.key, bh.key_len}, &v);
    }
    amqp_value v;
    memset(&v, 0, sizeof(v));
    v.tag = AMQP_T_I64;
    v.u.i64 = r->offset;
    amqp_put_entry(&tbl, cn_str_c("x-stream-offset"), &v);
    if (n_parts > 1) {
        v.tag = AMQP_T_I32;
        v.u.i32 = part;
        amqp_put_entry(&tbl, cn_str_c("x-stream-partition"), &v);
    }
    if (r->key_len > 255) { /* no routing key can hold it */
        v.tag = AMQP_T_LONGSTR;
        v.u.str = (cn_str){(const char *)r->key, r->key_len};
        amqp_put_entry(&tbl, cn_str_c("x-stream-key"), &v);
    }
    p->flags |= AMQP_BASIC_FLAG_HEADERS;
    p->headers = (amqp_table){tbl.buf, (uint32_t)tbl.len};
    if (!(p->flags & AMQP_BASIC_FLAG_DELIVERY_MODE)) {
        p->flags |= AMQP_BASIC_FLAG_DELIVERY_MODE;
        p->delivery_mode = 2;
    }
    if (r->timestamp >= 0) {
        p->flags |= AMQP_BASIC_FLAG_TIMESTAMP;
        p->timestamp = (uint64_t)r->timestamp / 1000;
    }
    wbuf hdr;
    wbuf_init(&hdr);
    int rc = amqp_content_header_encode(&hdr, &h);
    CN_ASSERT(rc == 0);
    wbuf_fini(&tbl);

    amsg *m = xcalloc(1, sizeof(*m));
    m->refs = 1;
    size_t kl = r->key_len > 0 && r->key_len <= 255 ? (size_t)r->key_len : 0;
    m->buf = xmalloc(kl + 1);
    if (kl)
        memcpy(m->buf, r->key, kl);
    m->exchange = (cn_str){m->buf, 0};
    m->routing_key = (cn_str){m->buf, (int32_t)kl};
    m->hdr = xmalloc(hdr.len);
    memcpy(m->hdr, hdr.buf, hdr.len);
    m->hdr_len = hdr.len;
    wbuf_fini(&hdr);
    m->body_len = (size_t)h.body_size;
    m->body = xmalloc(m->body_len ? m->body_len : 1);
    if (m->body_len)
        memcpy(m->body, r->value, m->body_len);
    m->persistent = 1;
    return m;
}


/* AMQP message -> record ---------------------------------------------------- */

/* A headers-table value as record header bytes (text for non-strings,
 * ARCHITECTURE.md); 0 = skip the entry, -1 value = null. */
static int value_bytes(const amqp_value *v, char *tmp, size_t cap, const void **out,
                       int32_t *len)
{
    int n = -1;
    switch (v->tag) {
    case AMQP_T_LONGSTR:
        *out = v->u.str.len > 0 ? v->u.str.ptr : "";
        *len = slen(v->u.str);
        return 1;
    case AMQP_T_BYTES:
        *out = v->u.bytes.len > 0 ? (const void *)v->u.bytes.ptr : "";
        *len = v->u.bytes.len > 0 ? v->u.bytes.len : 0;
        return 1;
    case AMQP_T_VOID:
        *out = NULL;
        *len = -1;
        return 1;
    case AMQP_T_BOOL:
        n = snprintf(tmp, cap, "%s", v->u.b ? "true" : "false");
        break;
    case AMQP_T_F32:
        n = snprintf(tmp, cap, "%.9g", (double)v->u.f32);
        break;
    case AMQP_T_F64:
        n = snprintf(tmp, cap, "%.17g", v->u.f64);
        break;
    case AMQP_T_TIMESTAMP:
        n = snprintf(tmp, cap, "%llu", (unsigned long long)v->u.ts);
        break;
    case AMQP_T_DECIMAL: {
        /* the unscaled value with the point put in: scale 2, -12345 -> "-123.45" */
        long long u = v->u.dec.value;
        char digits[24];
        int nd = snprintf(digits, sizeof(digits), "%lld", u < 0 ? -u : u);
        int sc = v->u.dec.scale > 20 ? 20 : v->u.dec.scale;
        char *o = tmp;
        if (u < 0)
            *o++ = '-';
        if (sc == 0) {
            memcpy(o, digits, (size_t)nd + 1);
        } else if (nd > sc) {
            memcpy(o, digits, (size_t)(nd - sc));
            o += nd - sc;
            *o++ = '.';
            memcpy(o, digits + nd - sc, (size_t)sc + 1);
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < sc - nd; i++)
                *o++ = '0';
            memcpy(o, digits, (size_t)nd + 1);
        }
        n = (int)strlen(tmp); /* at most 1 + 2 + 20 + 11 < TXT */
        break;
    }
    default: {
        int64_t iv;
        if (amqp_value_int(v, &iv) < 0)
            return 0; /* tables and arrays are not mapped */
        n = snprintf(tmp, cap, "%lld", (long long)iv);
        break;
    }
    }
    if (n < 0 || (size_t)n >= cap)
        return 0;
    *out = tmp;
    *len = n;
    return 1;
}

#define TXT 48

/* Build the record of m: its batch in *out (malloc'ed). 0 or -1. */
int asrv__stream_msg_batch(const amsg *m, int64_t now, uint8_t **out, size_t *out_len)
{
    amqp_content_header h;
    amqp_basic_properties *p = &h.props;
    if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) < 0)
        memset(&h, 0, sizeof(h));
    int n_tbl = 0;
    amqp_iter it;
    cn_str k;
    amqp_value v;
    if (p->flags & AMQP_BASIC_FLAG_HEADERS) {
        amqp_table_iter(&it, p->headers);
        while (amqp_table_next(&it, &k, &v) > 0)
            n_tbl++;
    }
    batch_header *hs = xcalloc((size_t)(N_PROPS + n_tbl + 1), sizeof(*hs));
    char (*txt)[TXT] = xcalloc((size_t)(n_tbl + 2), TXT);
    int nh = 0, nt = 0;
    for (int i = 0; i < N_PROPS; i++) {
        uint16_t f = prop_names[i].flag;
        if (!(p->flags & f))
            continue;
        batch_header *bh = &hs[nh++];
        bh->key = prop_names[i].name;
        bh->key_len = (int32_t)strlen(prop_names[i].name);
        if (f == AMQP_BASIC_FLAG_DELIVERY_MODE || f == AMQP_BASIC_FLAG_PRIORITY) {
            int n = snprintf(txt[nt], TXT, "%u",
                             f == AMQP_BASIC_FLAG_PRIORITY ? p->priority : p->delivery_mode);
            bh->value = txt[nt++];
            bh->value_len = n;
        } else {
            cn_str *s = prop_field(p, f);
            bh->value = s->len > 0 ? s->ptr : "";
            bh->value_len = slen(*s);
        }
    }
    if (p->flags & AMQP_BASIC_FLAG_HEADERS) {
        amqp_table_iter(&it, p->headers);
        while (amqp_table_next(&it, &k, &v) > 0) {
            batch_header *bh = &hs[nh];
            if (!value_bytes(&v, txt[nt], TXT, &bh->value, &bh->value_len))
                continue;
            if (bh->value == txt[nt])
                nt++;
            bh->key = slen(k) ? k.ptr : "";
            bh->key_len = slen(k);
            nh++;
        }
    }
    int64_t ts = now;
    if ((p->flags & AMQP_BASIC_FLAG_TIMESTAMP) && p->timestamp < (uint64_t)INT64_MAX / 1000)
        ts = (int64_t)p->timestamp * 1000;
    int32_t kl = slen(m->routing_key);
    batch_build_rec rec = {kl ? m->routing_key.ptr : NULL, kl ? kl : -1,
                           m->body_len ? (const void *)m->body : "", (int32_t)m->body_len,
                           ts, hs, nh};
    int rc = batch_build(&rec, 1, BATCH_COMPRESSION_NONE, 0, out, out_len);
    free(hs);
    free(txt);
    return rc;
}

