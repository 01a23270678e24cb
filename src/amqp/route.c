/* Topic and headers matching (route.h). */
#include <string.h>

#include "amqp/route.h"

/* Word i of s starting at *pos: sets *w, advances *pos past the dot.
 * Returns 0 when no word is left. */
static int next_word(cn_str s, int32_t *pos, cn_str *w)
{
    int32_t len = s.len > 0 ? s.len : 0;
    if (len == 0 || *pos > len) /* the empty key has no words (as RabbitMQ) */
        return 0;
    int32_t start = *pos, i = start;
    while (i < len && s.ptr[i] != '.')
        i++;
    *w = (cn_str){s.ptr + start, i - start};
    *pos = i + 1;
    return 1;
}

static int word_eq(cn_str a, cn_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static int topic_rec(cn_str pat, int32_t pp, cn_str key, int32_t kp, int depth)
{
    if (depth > 600)
        return 0; /* patterns are shortstrs: at most 128 words */
    cn_str pw, kw;
    int32_t pnext = pp;
    if (!next_word(pat, &pnext, &pw))
        return !next_word(key, &kp, &kw); /* pattern done: key must be too */
    if (pw.len == 1 && pw.ptr[0] == '#') {
        /* zero words, or one more word and '#' again */
        if (topic_rec(pat, pnext, key, kp, depth + 1))
            return 1;
        int32_t knext = kp;
        if (!next_word(key, &knext, &kw))
            return 0;
        return topic_rec(pat, pp, key, knext, depth + 1);
    }
    int32_t knext = kp;
    if (!next_word(key, &knext, &kw))
        return 0;
    if (!(pw.len == 1 && pw.ptr[0] == '*') && !word_eq(pw, kw))
        return 0;
    return topic_rec(pat, pnext, key, knext, depth + 1);
}

int asrv_topic_match(cn_str pat, cn_str key)
{
    return topic_rec(pat, 0, key, 0, 0);
}

static int value_eq(const amqp_value *a, const amqp_value *b)
{
    int64_t x, y;
    if (amqp_value_int(a, &x) == 0 && amqp_value_int(b, &y) == 0)
        return x == y;
    if (a->tag != b->tag)
        return 0;
    switch (a->tag) {
    case AMQP_T_BOOL:
        return a->u.b == b->u.b;
    case AMQP_T_LONGSTR:
        return word_eq(a->u.str, b->u.str);
    case AMQP_T_BYTES:
        return a->u.bytes.len == b->u.bytes.len &&
               (a->u.bytes.len <= 0 ||
                memcmp(a->u.bytes.ptr, b->u.bytes.ptr, (size_t)a->u.bytes.len) == 0);
    case AMQP_T_F32:
        return a->u.f32 == b->u.f32;
    case AMQP_T_F64:
        return a->u.f64 == b->u.f64;
    case AMQP_T_DECIMAL:
        return a->u.dec.scale == b->u.dec.scale && a->u.dec.value == b->u.dec.value;
    case AMQP_T_TIMESTAMP:
        return a->u.ts == b->u.ts;
    case AMQP_T_VOID:
        return 1;
    case AMQP_T_TABLE:
        return a->u.table.len == b->u.table.len &&
               (a->u.table.len == 0 || memcmp(a->u.table.ptr, b->u.table.ptr, a->u.table.len) == 0);
    case AMQP_T_ARRAY:
        return a->u.array.len == b->u.array.len &&
               (a->u.array.len == 0 || memcmp(a->u.array.ptr, b->u.array.ptr, a->u.array.len) == 0);
    default:
        return 0;
    }
}

/* Look key (not NUL-terminated) up in t: 1 and *out when found. */
static int table_find(amqp_table t, cn_str key, amqp_value *out)
{
    amqp_iter it;
    amqp_table_iter(&it, t);
    cn_str k;
    amqp_value v;
    int rc;
    while ((rc = amqp_table_next(&it, &k, &v)) > 0) {
        if (word_eq(k, key)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

int asrv_headers_match(amqp_table args, amqp_table hdr)
{
    if (amqp_table_check(args) < 0 || amqp_table_check(hdr) < 0)
        return 0;
    int any = 0;
    amqp_value xm;
    if (table_find(args, cn_str_c("x-match"), &xm) && xm.tag == AMQP_T_LONGSTR &&
        (word_eq(xm.u.str, cn_str_c("any")) || word_eq(xm.u.str, cn_str_c("any-with-x"))))
        any = 1;
    amqp_iter it;
    amqp_table_iter(&it, args);
    cn_str k;
    amqp_value v;
    while (amqp_table_next(&it, &k, &v) > 0) {
        if (k.len >= 2 && k.ptr[0] == 'x' && k.ptr[1] == '-')
            continue;
        amqp_value hv;
        int ok = table_find(hdr, k, &hv) && (v.tag == AMQP_T_VOID || value_eq(&v, &hv));
        if (any && ok)
            return 1;
        if (!any && !ok)
            return 0;
    }
    return any ? 0 : 1;
}
