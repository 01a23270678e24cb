/* Dead-lettering (RabbitMQ's x-dead-letter-exchange).
 *
 * A message dies in a queue when a consumer rejects it (basic.reject or
 * basic.nack with requeue=false: reason "rejected"), when its TTL runs out
 * at the head of the queue ("expired", ah_qx.c) or when the queue's length
 * limit drops it ("maxlen": drop-head, or reject-publish-dlx for the publish
 * that did not fit). If the queue has an x-dead-letter-exchange, a copy of
 * the message is published through that exchange (an absent exchange drops
 * it, as RabbitMQ does) with the routing key x-dead-letter-routing-key, or
 * its own routing key when that is not set. The copy's content header is
 * re-encoded:
 *   - the expiration property is removed (kept in x-death as
 *     original-expiration);
 *   - headers.x-death, an array of tables, one per (queue, reason), the most
 *     recent first; a death in a (queue, reason) already listed increments
 *     that entry's count and moves it to the front. Each table:
 *       count (long), reason (longstr rejected|expired|maxlen), queue
 *       (longstr), time (timestamp, seconds), exchange (longstr: the exchange
 *       the message was published to), routing-keys (array of longstr),
 *       original-expiration (longstr, when the message had one);
 *   - headers.x-first-death-reason/-queue/-exchange (longstr), set on the
 *     first death and kept after; x-last-death-reason/-queue/-exchange
 *     (longstr, RabbitMQ 3.13), the latest death.
 * Cycles: a message that dies again, automatically (expired or maxlen), in a
 * queue it already died in, and was never rejected on the way, is dropped
 * (RabbitMQ drops such cycles too), so a TTL loop cannot spin.
 * The copy is a new message: a durable target queue stores it when it is
 * persistent; the caller settles the original in its queue. */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

static const char *const reasons[] = {"rejected", "expired", "maxlen"};

static int str_is(cn_str s, const char *p, size_t n)
{
    return s.len >= 0 && (size_t)s.len == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

static int key_is(cn_str k, const char *lit) { return str_is(k, lit, strlen(lit)); }

/* The queue and reason of one x-death table. */
static void death_of(amqp_table t, cn_str *queue, cn_str *reason)
{
    amqp_value v;
    *queue = *reason = (cn_str){"", 0};
    if (amqp_table_get(t, "queue", &v) == 0 && v.tag == AMQP_T_LONGSTR)
        *queue = v.u.str;
    if (amqp_table_get(t, "reason", &v) == 0 && v.tag == AMQP_T_LONGSTR)
        *reason = v.u.str;
}

static void put_str(wbuf *w, const char *key, cn_str s)
{
    amqp_value v = {.tag = AMQP_T_LONGSTR};
    v.u.str = s;
    amqp_put_entry(w, cn_str_c(key), &v);
}

void asrv__dlx_publish(aqueue *q, const amsg *m, int reason)
{
    asrv *as = q->as;
    if (!q->xa.has_dlx || !as || q->deleted)
        return;
    amqp_content_header h;
    if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) < 0)
        return;
    amqp_table old = {NULL, 0};
    if (h.props.flags & AMQP_BASIC_FLAG_HEADERS)
        old = h.props.headers;
    cn_str qname = {q->name, q->name_len};
    const char *why = reasons[reason];
    cn_str rs = cn_str_c(why);

    /* The old x-death: the entry to bump, and the cycle check. */
    amqp_value xd;
    int have_xd = amqp_table_get(old, "x-death", &xd) == 0 && xd.tag == AMQP_T_ARRAY;
    int64_t count = 0;
    int died_here = 0, rejected = reason == ADL_REJECTED;
    if (have_xd) {
        amqp_iter it;
        amqp_array_iter(&it, xd.u.array);
        amqp_value e;
        while (amqp_array_next(&it, &e) > 0) {
            if (e.tag != AMQP_T_TABLE)
                continue;
            cn_str eq, er;
            death_of(e.u.table, &eq, &er);
            if (str_is(er, "rejected", 8))
                rejected = 1;
            if (str_is(eq, q->name, (size_t)q->name_len)) {
                died_here = 1;
                amqp_value c;
                if (str_is(er, why, strlen(why)) && amqp_table_get(e.u.table, "count", &c) == 0)
                    amqp_value_int(&c, &count);
            }
        }
    }
    if (died_here && !rejected) {
        slog_debug("amqp: queue '%s': dead-letter cycle (%s), message dropped", q->name, why);
        return;
    }

    wbuf hw;
    wbuf_init(&hw);
    /* Other headers as they were. */
    amqp_iter it;
    amqp_table_iter(&it, old);
    cn_str k;
    amqp_value v;
    amqp_value first[3];
    int have_first[3] = {0, 0, 0};
    static const char *const first_names[3] = {"x-first-death-reason", "x-first-death-queue",
                                               "x-first-death-exchange"};
    while (amqp_table_next(&it, &k, &v) > 0) {
        if (key_is(k, "x-death") || key_is(k, "x-last-death-reason") ||
            key_is(k, "x-last-death-queue") || key_is(k, "x-last-death-exchange"))
            continue;
        int f = -1;
        for (int i = 0; i < 3; i++)
            if (key_is(k, first_names[i]))
                f = i;
        if (f >= 0) {
            first[f] = v;
            have_first[f] = 1;
            continue;
        }
        amqp_put_entry(&hw, k, &v);
    }
    /* x-death: the new (or bumped) entry first, then the others. */
    size_t arr = amqp_put_entry_open(&hw, cn_str_c("x-death"), AMQP_T_ARRAY);
    size_t tab = amqp_put_value_open(&hw, AMQP_T_TABLE);
    amqp_value cv = {.tag = AMQP_T_I64};
    cv.u.i64 = count + 1;
    amqp_put_entry(&hw, cn_str_c("count"), &cv);
    put_str(&hw, "reason", rs);
    put_str(&hw, "queue", qname);
    amqp_value tv = {.tag = AMQP_T_TIMESTAMP};
    tv.u.ts = (uint64_t)(loop_wall_ms() / 1000);
    amqp_put_entry(&hw, cn_str_c("time"), &tv);
    put_str(&hw, "exchange", m->exchange);
    size_t rk = amqp_put_entry_open(&hw, cn_str_c("routing-keys"), AMQP_T_ARRAY);
    amqp_value kv = {.tag = AMQP_T_LONGSTR};
    kv.u.str = m->routing_key;
    amqp_put_value(&hw, &kv);
    amqp_put_close(&hw, rk);
    if (h.props.flags & AMQP_BASIC_FLAG_EXPIRATION)
        put_str(&hw, "original-expiration", h.props.expiration);
    amqp_put_close(&hw, tab);
    if (have_xd) {
        amqp_iter ai;
        amqp_array_iter(&ai, xd.u.array);
        amqp_value e;
        while (amqp_array_next(&ai, &e) > 0) {
            if (e.tag == AMQP_T_TABLE) {
                cn_str eq, er;
                death_of(e.u.table, &eq, &er);
                if (str_is(eq, q->name, (size_t)q->name_len) && str_is(er, why, strlen(why)))
                    continue; /* bumped above */
            }
            amqp_put_value(&hw, &e);
        }
    }
    amqp_put_close(&hw, arr);
    cn_str cur[3] = {rs, qname, m->exchange};
    for (int i = 0; i < 3; i++) {
        if (have_first[i])
            amqp_put_entry(&hw, cn_str_c(first_names[i]), &first[i]);
        else
            put_str(&hw, first_names[i], cur[i]);
    }
    put_str(&hw, "x-last-death-reason", rs);
    put_str(&hw, "x-last-death-queue", qname);
    put_str(&hw, "x-last-death-exchange", m->exchange);

    /* The copy: new content header, same body. */
    amqp_table headers = {(const uint8_t *)hw.buf, (uint32_t)hw.len};
    h.props.headers = headers;
    h.props.flags |= AMQP_BASIC_FLAG_HEADERS;
    h.props.flags &= (uint16_t)~AMQP_BASIC_FLAG_EXPIRATION;
    h.props.expiration = (cn_str){NULL, 0};
    wbuf cw;
    wbuf_init(&cw);
    if (amqp_content_header_encode(&cw, &h) < 0) {
        slog_warn("amqp: queue '%s': cannot re-encode a dead-lettered message's header", q->name);
        wbuf_fini(&cw);
        wbuf_fini(&hw);
        return;
    }
    cn_str ex = q->xa.dlx;
    cn_str key = q->xa.has_dlrk ? q->xa.dlrk : m->routing_key;
    amsg *n = xcalloc(1, sizeof(*n));
    n->refs = 1;
    size_t xl = (size_t)(ex.len > 0 ? ex.len : 0), kl = (size_t)(key.len > 0 ? key.len : 0);
    n->buf = xmalloc(xl + kl + 1);
    if (xl)
        memcpy(n->buf, ex.ptr, xl);
    if (kl)
        memcpy(n->buf + xl, key.ptr, kl);
    n->exchange = (cn_str){n->buf, (int32_t)xl};
    n->routing_key = (cn_str){n->buf + xl, (int32_t)kl};
    n->hdr_len = cw.len;
    n->hdr = xmalloc(cw.len);
    memcpy(n->hdr, cw.buf, cw.len);
    n->body_len = m->body_len;
    n->body = xmalloc(m->body_len ? m->body_len : 1);
    if (m->body_len)
        memcpy(n->body, m->body, m->body_len);
    n->persistent = m->persistent;
    n->priority = m->priority;
    n->has_ttl = 0; /* the expiration property is removed */
    wbuf_fini(&cw);
    asrv__mem_charge(as, n); /* held like any publish (resource alarms) */
    /* Route with the header the copy carries (headers exchanges match it). */
    amqp_content_header nh;
    amqp_table nt = {NULL, 0};
    if (amqp_content_header_decode(n->hdr, n->hdr_len, &nh) == 0)
        nt = nh.props.headers;
    wbuf_fini(&hw);
    astored st = {0};
    int r = asrv__route(as, n->exchange.ptr, n->exchange.len, n, nt, &st);
    if (r < 0)
        slog_debug("amqp: queue '%s': dead-letter exchange '%.*s' %s; message dropped", q->name,
                   (int)xl, n->buf, r == -1 ? "does not exist" : "is internal");
    free(st.p);
    free(st.target);
    amsg_unref(n);
}
