/* exchange.* and queue.* methods, the routing tables and the ready
 * messages of each queue (amqp_int.h).
 *
 * Durable exchanges, durable non-exclusive queues and the bindings between
 * durable ends are kept in the kvlog __amqp_meta (format below) and
 * replayed at start; the rest lives in memory only. Ready messages are
 * served from a ring in memory per queue; durable queues also append their
 * persistent messages to a partition (ah_store.c), read back at start.
 *
 * __amqp_meta records (util/bin.h encodings: str = int16 length + bytes,
 * bytes = int32 length + bytes, big-endian integers). A removal is a
 * tombstone of the same key. Metadata writes go to the page cache at once
 * and are durable within the log flush window (declare-ok does not wait).
 *   exchange  key:   int8 'E', str vhost "/", str name
 *             value: int8 version (1, or 2 when declared with arguments),
 *                    int8 type (0 direct, 1 fanout, 2 topic, 3 headers),
 *                    int8 flags (1 auto-delete, 2 internal),
 *                    version 2 only: bytes declare arguments (field table;
 *                    alternate-exchange is taken from it at replay)
 *   queue     key:   int8 'Q', str vhost "/", str name
 *             value: int8 version 1, int64 queue id, int8 flags
 *                    (1 auto-delete), bytes declare arguments (field table)
 *   binding   key:   int8 'B', str vhost "/", str exchange, str queue,
 *                    str routing key, bytes arguments (field table)
 *             value: int8 version 1
 *   exchange-to-exchange binding (ah_xbind.c), kept when both ends are
 *   durable (built-in exchanges count as durable):
 *             key:   int8 'X', str vhost "/", str source exchange,
 *                    str destination exchange, str routing key,
 *                    bytes arguments (field table)
 *             value: int8 version 1
 *
 * Pre-declared: the default exchange "" (direct; every queue is bound to
 * it under its own name, implicitly), amq.direct, amq.fanout, amq.topic,
 * amq.headers and amq.match (headers). Declaring a name under "amq." (or
 * "") without passive is 403 ACCESS_REFUSED, as RabbitMQ. Soft errors
 * (404 NOT_FOUND, 403, 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED) close
 * the channel; an unknown exchange type is 503 COMMAND_INVALID on the
 * connection; queue arguments are checked as RabbitMQ does (qargs.h: 406
 * for a bad one or an inequivalent redeclare). `x-queue-type: stream`
 * queues are Kafka topics (ah_stream.c).
 *
 * Exchange-to-exchange bindings, alternate exchanges and the routing walk
 * over them live in ah_xbind.c; their records are written here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp/amqp_int.h"
#include "amqp/route.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "util/bin.h"
#include "util/common.h"
#include "util/slog.h"

static int str_is(cn_str s, const char *p, int32_t len)
{
    int32_t sl = s.len > 0 ? s.len : 0;
    return sl == len && (len == 0 || memcmp(s.ptr, p, (size_t)len) == 0);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static int32_t slen(cn_str s) { return s.len > 0 ? s.len : 0; }

#define SARG(s) (int)slen(s), (s).ptr ? (s).ptr : ""

/* Messages ---------------------------------------------------------------- */

void amsg_unref(amsg *m)
{
    if (m && --m->refs == 0) {
        asrv__mem_release(m);
        free(m->hdr);
        free(m->body);
        free(m->buf);
        free(m);
    }
}

/* Persistence (__amqp_meta) ------------------------------------------------ */

static int queue_persisted(const aqueue *q) { return q->durable && !q->exclusive; }
static int exchange_persisted(const aexchange *x) { return x->durable && !x->builtin; }
static int binding_persisted(const aexchange *x, const abinding *b)
{
    return x->durable && queue_persisted(b->q);
}

static void key_exchange(wbuf *k, const aexchange *x)
{
    bin_put_i8(k, 'E');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){x->name, x->name_len});
}

static void val_exchange(wbuf *v, const aexchange *x)
{
    bin_put_i8(v, x->args_len ? 2 : 1);
    bin_put_i8(v, (int8_t)x->type);
    bin_put_i8(v, (int8_t)((x->auto_delete ? 1 : 0) | (x->internal ? 2 : 0)));
    if (x->args_len)
        bin_put_bytes(v, (cn_bytes){x->args, (int32_t)x->args_len});
}

static void key_queue(wbuf *k, const aqueue *q)
{
    bin_put_i8(k, 'Q');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){q->name, q->name_len});
}

static void val_queue(wbuf *v, const aqueue *q)
{
    bin_put_i8(v, 1);
    bin_put_i64(v, (int64_t)q->id);
    bin_put_i8(v, (int8_t)(q->auto_delete ? 1 : 0));
    bin_put_bytes(v, (cn_bytes){q->args, (int32_t)q->args_len});
}

static void key_binding(wbuf *k, const aexchange *x, const abinding *b)
{
    bin_put_i8(k, 'B');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){x->name, x->name_len});
    bin_put_str(k, (cn_str){b->q->name, b->q->name_len});
    bin_put_str(k, (cn_str){b->key, b->key_len});
    bin_put_bytes(k, (cn_bytes){b->args, (int32_t)b->args_len});
}

static int xbind_persisted(const aexchange *src, const abinding *b)
{
    return src->durable && b->dx->durable;
}

static void key_xbind(wbuf *k, const aexchange *src, const abinding *b)
{
    bin_put_i8(k, 'X');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){src->name, src->name_len});
    bin_put_str(k, (cn_str){b->dx->name, b->dx->name_len});
    bin_put_str(k, (cn_str){b->key, b->key_len});
    bin_put_bytes(k, (cn_bytes){b->args, (int32_t)b->args_len});
}

void asrv__meta_write(asrv *as, const void *k, size_t kl, const void *v, int32_t vl)
{
    if (!as->meta)
        return;
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, k, (int32_t)kl, v, v ? vl : -1);
    int rc = kvl_append(as->meta, &bt, loop_wall_ms(), NULL);
    kvl_batch_fini(&bt);
    if (rc < 0)
        slog_error("amqp: writing %s failed (%s): the metadata change is not persisted",
                   BROKER_AMQP_META_TOPIC, cn_strerror(rc));
    else
        kvl_maybe_compact(as->meta);
}

/* Append one record (value NULL: tombstone). */
static void meta_write(asrv *as, const wbuf *k, const wbuf *v)
{
    asrv__meta_write(as, k->buf, k->len, v ? v->buf : NULL, v ? (int32_t)v->len : -1);
}

enum { META_PUT, META_DEL };

static void meta_exchange(asrv *as, const aexchange *x, int op)
{
    if (!exchange_persisted(x))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_exchange(&k, x);
    val_exchange(&v, x);
    meta_write(as, &k, op == META_PUT ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

static void meta_queue(asrv *as, const aqueue *q, int op)
{
    if (!queue_persisted(q))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_queue(&k, q);
    val_queue(&v, q);
    meta_write(as, &k, op == META_PUT ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

static void meta_binding(asrv *as, const aexchange *x, const abinding *b, int op)
{
    if (!binding_persisted(x, b))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_binding(&k, x, b);
    bin_put_i8(&v, 1);
    meta_write(as, &k, op == META_PUT ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

void asrv__meta_xbind(asrv *as, const aexchange *src, const abinding *b, int put)
{
    if (!xbind_persisted(src, b))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_xbind(&k, src, b);
    bin_put_i8(&v, 1);
    meta_write(as, &k, put ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

/* Queues ------------------------------------------------------------------ */

/* Insert e at index i of q's ring (room for it is there). */
static void ring_insert(aqueue *q, size_t i, aq_entry e)
{
    if (i < q->n / 2) { /* shift the entries before i one place to the front */
        q->head = (q->head + q->cap - 1) % q->cap;
        for (size_t j = 0; j < i; j++)
            q->ring[(q->head + j) % q->cap] = q->ring[(q->head + j + 1) % q->cap];
    } else { /* shift the entries from i one place to the back */
        for (size_t j = q->n; j > i; j--)
            q->ring[(q->head + j) % q->cap] = q->ring[(q->head + j - 1) % q->cap];
    }
    q->ring[(q->head + i) % q->cap] = e;
    q->n++;
}

void asrv__queue_push_t(aqueue *q, amsg *m, int redelivered, uint64_t seq, int64_t off,
                        int64_t t)
{
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        aq_entry *r = xmalloc(ncap * sizeof(*r));
        for (size_t i = 0; i < q->n; i++)
            r[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = r;
        q->cap = ncap;
        q->head = 0;
    }
    m->refs++;
    q->ready_bytes += m->body_len;
    /* Priority queues (x-max-priority): the message's priority, capped. */
    uint8_t prio = m->priority < q->xa.max_priority ? m->priority : q->xa.max_priority;
    aq_entry e = {m, redelivered, off, seq ? seq : ++q->next_seq, t, prio};
    size_t i;
    if (!seq) { /* new: after every entry of the same or a higher priority */
        i = q->n;
        while (i > 0 && q->ring[(q->head + i - 1) % q->cap].prio < prio)
            i--;
    } else { /* requeue: at its place (priority, then enqueue order) */
        i = 0;
        while (i < q->n) {
            const aq_entry *o = &q->ring[(q->head + i) % q->cap];
            if (o->prio < prio || (o->prio == prio && o->seq > seq))
                break;
            i++;
        }
    }
    ring_insert(q, i, e);
    asrv__qx_arm(q);
}

void asrv__queue_push(aqueue *q, amsg *m, int redelivered, uint64_t seq, int64_t off)
{
    asrv__queue_push_t(q, m, redelivered, seq, off, loop_wall_ms());
}

int asrv__queue_pop(aqueue *q, aq_entry *out)
{
    if (!q->n)
        return 0;
    *out = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    q->ready_bytes -= out->m->body_len;
    return 1; /* the caller takes the ring's ref */
}

/* Drop the ready messages (settled in the queue's storage when as is set). */
static uint32_t queue_purge(asrv *as, aqueue *q)
{
    uint32_t n = (uint32_t)q->n;
    aq_entry e;
    while (asrv__queue_pop(q, &e)) {
        if (as)
            asrv__store_settled(as, q, e.off);
        amsg_unref(e.m);
    }
    return n;
}

void asrv__queue_unref(aqueue *q)
{
    if (q && --q->refs == 0) {
        queue_purge(NULL, q);
        free(q->acked);
        free(q->ring);
        free(q->cons);
        free(q->args);
        free(q->name);
        free(q);
    }
}

aqueue *asrv__queue_find(asrv *as, cn_str name)
{
    for (int i = 0; i < as->n_q; i++)
        if (str_is(name, as->q[i]->name, as->q[i]->name_len))
            return as->q[i];
    return NULL;
}

static aexchange *exchange_find(asrv *as, cn_str name)
{
    for (int i = 0; i < as->n_ex; i++)
        if (str_is(name, as->ex[i]->name, as->ex[i]->name_len))
            return as->ex[i];
    return NULL;
}

aexchange *asrv__exchange_find(asrv *as, cn_str name)
{
    return exchange_find(as, name);
}

static void binding_free(abinding *b)
{
    free(b->key);
    free(b->args);
}

static void exchange_free(aexchange *x)
{
    for (int i = 0; i < x->n_b; i++)
        binding_free(&x->b[i]);
    free(x->b);
    for (int i = 0; i < x->n_xb; i++)
        binding_free(&x->xb[i]);
    free(x->xb);
    free(x->args);
    free(x->ae);
    free(x->name);
    free(x);
}

/* Forget x and its bindings (tombstones for the persisted ones). */
static void exchange_remove(asrv *as, aexchange *x)
{
    asrv__xbind_exchange_gone(as, x);
    for (int i = 0; i < x->n_b; i++)
        meta_binding(as, x, &x->b[i], META_DEL);
    meta_exchange(as, x, META_DEL);
    for (int i = 0; i < as->n_ex; i++)
        if (as->ex[i] == x) {
            as->ex[i] = as->ex[--as->n_ex];
            break;
        }
    exchange_free(x);
}

void asrv__exchange_remove(asrv *as, aexchange *x)
{
    exchange_remove(as, x);
}

/* Remove binding i of x; an auto-delete exchange goes with its last one. */
static void binding_remove(asrv *as, aexchange *x, int i)
{
    meta_binding(as, x, &x->b[i], META_DEL);
    binding_free(&x->b[i]);
    x->b[i] = x->b[--x->n_b];
    if (x->auto_delete && x->n_b == 0 && x->n_xb == 0 && !x->builtin)
        exchange_remove(as, x);
}

void asrv__queue_delete(asrv *as, aqueue *q)
{
    if (q->deleted)
        return;
    q->deleted = 1;
    asrv__qx_fini(q); /* queue arguments: its timer */
    meta_queue(as, q, META_DEL);
    for (int i = 0; i < as->n_ex; i++) {
        aexchange *x = as->ex[i];
        for (int j = x->n_b - 1; j >= 0; j--)
            if (x->b[j].q == q) {
                int n_before = as->n_ex;
                binding_remove(as, x, j);
                if (as->n_ex != n_before) { /* x went (auto-delete), maybe others: again */
                    i = -1;
                    break;
                }
            }
    }
    for (int i = 0; i < as->n_q; i++)
        if (as->q[i] == q) {
            as->q[i] = as->q[--as->n_q];
            break;
        }
    /* Consumers: told with basic.cancel (consumer_cancel_notify). */
    while (q->n_cons) {
        aconsumer *c = q->cons[q->n_cons - 1];
        q->n_cons--;
        achan *cs = c->ac->cs ? c->ac->cs[c->ch] : NULL;
        if (cs) {
            asrv__chan_forget_consumer(cs, c);
            if (c->ac->state == ASRV_OPEN) { /* consumer_cancel_notify */
                amqp_basic_cancel bc;
                amqp_basic_cancel_init(&bc);
                bc.consumer_tag = (cn_str){c->tag, c->tag_len};
                bc.nowait = 1;
                asrv__send_method(c->ac, c->ch, AMQP_BASIC_CANCEL, &bc);
            }
        }
        asrv__stream_consumer_free(c);
        free(c);
    }
    asrv__store_drop(as, q);
    queue_purge(NULL, q);
    asrv__queue_unref(q);
}

/* Routing ----------------------------------------------------------------- */

static int binding_matches(const aexchange *x, const abinding *b, const amsg *m,
                           amqp_table headers)
{
    switch (x->type) {
    case AX_FANOUT:
        return 1;
    case AX_DIRECT:
        return str_is(m->routing_key, b->key, b->key_len);
    case AX_TOPIC:
        return asrv_topic_match((cn_str){b->key, b->key_len}, m->routing_key);
    case AX_HEADERS:
        return asrv_headers_match((amqp_table){b->args, b->args_len}, headers);
    }
    return 0;
}

int asrv__binding_matches(const aexchange *x, const abinding *b, const amsg *m,
                          amqp_table headers)
{
    return binding_matches(x, b, m, headers);
}

/* Enqueue m on q: appended to q's partition first when both are durable. */
static void enqueue(asrv *as, aqueue *q, amsg *m, astored *st)
{
    if (q->stream) {
        asrv__stream_publish(as, q, m, st);
        return;
    }
    if (asrv__qx_reject(q, m)) { /* x-overflow reject-publish(-dlx): nacked */
        st->failed = 1;
        return;
    }
    int64_t off = -1;
    if (q->p && m->persistent) {
        off = asrv__store_append(as, q, m);
        if (off < 0) {
            st->failed = 1;
        } else {
            asrv__stored_add(st, q->p, off + 1);
            asrv__store_meta_wait(as, q, st); /* the queue's own record, if not durable yet */
        }
    }
    asrv__queue_push(q, m, 0, 0, off);
    asrv__qx_after_push(q); /* x-overflow drop-head */
}

int asrv__route(asrv *as, const char *ex, int32_t ex_len, amsg *m, amqp_table headers,
                astored *st)
{
    cn_str xname = {ex, ex_len};
    if (ex_len == 0) {
        int r = asrv__reply_deliver(as, m);
        if (r >= 0)
            return r;
        aqueue *q = asrv__queue_find(as, m->routing_key);
        if (!q)
            return 0;
        enqueue(as, q, m, st);
        asrv__dispatch(q);
        return 1;
    }
    aexchange *x = exchange_find(as, xname);
    if (!x)
        return -1;
    if (x->internal)
        return -2;
    /* Each queue once, however many bindings (queue, exchange, alternate
     * exchange: ah_xbind.c) lead to it. */
    aroute r;
    asrv__route_init(&r);
    asrv__xroute(as, x, m, headers, &r);
    aqueue **hits = r.q;
    int n = r.n;
    for (int j = 0; j < n; j++) {
        hits[j]->refs++; /* dispatch may delete nothing, but be safe */
        enqueue(as, hits[j], m, st);
    }
    for (int j = 0; j < n; j++) {
        asrv__dispatch(hits[j]);
        asrv__queue_unref(hits[j]);
    }
    asrv__route_fini(&r);
    return n;
}

/* Exchanges --------------------------------------------------------------- */

static aexchange *exchange_add(asrv *as, cn_str name, int type)
{
    aexchange *x = xcalloc(1, sizeof(*x));
    x->name = dup_bytes(name.ptr, (size_t)slen(name));
    x->name_len = slen(name);
    x->type = type;
    if (as->n_ex == as->cap_ex) {
        as->cap_ex = as->cap_ex ? as->cap_ex * 2 : 16;
        as->ex = xrealloc(as->ex, (size_t)as->cap_ex * sizeof(*as->ex));
    }
    as->ex[as->n_ex++] = x;
    return x;
}

static int exchange_type(cn_str t)
{
    if (cn_str_eq(t, "direct"))
        return AX_DIRECT;
    if (cn_str_eq(t, "fanout"))
        return AX_FANOUT;
    if (cn_str_eq(t, "topic"))
        return AX_TOPIC;
    if (cn_str_eq(t, "headers"))
        return AX_HEADERS;
    return -1;
}

static const char *const type_names[] = {"direct", "fanout", "topic", "headers"};

static aqueue *queue_add(asrv *as, cn_str name, uint64_t id, amqp_table args)
{
    aqueue *q = xcalloc(1, sizeof(*q));
    q->name = dup_bytes(name.ptr, (size_t)slen(name));
    q->name_len = slen(name);
    q->id = id;
    q->args_len = args.len;
    q->args = (uint8_t *)dup_bytes(args.ptr, args.len);
    q->stream = (uint8_t)asrv__stream_arg(args);
    q->refs = 1;
    asrv__qx_init(as, q); /* queue arguments (qargs.h) */
    if (as->n_q == as->cap_q) {
        as->cap_q = as->cap_q ? as->cap_q * 2 : 16;
        as->q = xrealloc(as->q, (size_t)as->cap_q * sizeof(*as->q));
    }
    as->q[as->n_q++] = q;
    return q;
}

static void binding_add(aexchange *x, aqueue *q, cn_str key, amqp_table args)
{
    if (x->n_b == x->cap_b) {
        x->cap_b = x->cap_b ? x->cap_b * 2 : 8;
        x->b = xrealloc(x->b, (size_t)x->cap_b * sizeof(*x->b));
    }
    abinding *b = &x->b[x->n_b++];
    b->q = q;
    b->key = dup_bytes(key.ptr, (size_t)slen(key));
    b->key_len = slen(key);
    b->args = (uint8_t *)dup_bytes(args.ptr, args.len);
    b->args_len = args.len;
}

static int binding_find(const aexchange *x, const aqueue *q, cn_str key, amqp_table args)
{
    for (int i = 0; i < x->n_b; i++) {
        const abinding *b = &x->b[i];
        if (b->q == q && str_is(key, b->key, b->key_len) && b->args_len == args.len &&
            (args.len == 0 || memcmp(b->args, args.ptr, args.len) == 0))
            return i;
    }
    return -1;
}

/* Replay of __amqp_meta --------------------------------------------------- */

static int meta_on_record(void *arg, const batch_record *r, const char **why)
{
    asrv *as = arg;
    bin_reader k, v;
    bin_reader_init(&k, r->key, (size_t)r->key_len);
    int kind = bin_i8(&k);
    cn_str vhost = bin_str(&k);
    if (kind == 'A') {
        uint64_t qid = (uint64_t)bin_i64(&k);
        if (k.err || bin_remaining(&k) || !cn_str_eq(vhost, "/") ||
            asrv__store_replay_acks(as, qid, r->value_len < 0 ? NULL : r->value,
                                    r->value_len) < 0) {
            *why = "malformed ack state";
            return -1;
        }
        return 0;
    }
    cn_str name = bin_str(&k);
    if (k.err || !cn_str_eq(vhost, "/")) {
        *why = "malformed key";
        return -1;
    }
    int tomb = r->value_len < 0;
    bin_reader_init(&v, r->value, tomb ? 0 : (size_t)r->value_len);
    int version = tomb ? 0 : bin_i8(&v);
    if (!tomb && version != 1 && !(kind == 'E' && version == 2)) {
        *why = "unknown value version";
        return -1;
    }
    if (kind == 'E') {
        aexchange *x = exchange_find(as, name);
        if (tomb) {
            if (x && !x->builtin)
                exchange_remove(as, x);
            return 0;
        }
        int type = bin_i8(&v), flags = bin_i8(&v);
        cn_bytes args = {NULL, 0};
        if (version == 2)
            args = bin_bytes(&v);
        if (v.err || bin_remaining(&v) || type < AX_DIRECT || type > AX_HEADERS ||
            args.len < 0) {
            *why = "malformed exchange";
            return -1;
        }
        if (!x)
            x = exchange_add(as, name, type);
        asrv__exchange_set_args(x, (amqp_table){args.ptr, (uint32_t)args.len});
        x->type = type;
        x->durable = 1;
        x->auto_delete = flags & 1;
        x->internal = (flags & 2) ? 1 : 0;
        return 0;
    }
    if (kind == 'Q') {
        aqueue *q = asrv__queue_find(as, name);
        if (tomb) {
            if (q)
                asrv__queue_delete(as, q);
            return 0;
        }
        uint64_t id = (uint64_t)bin_i64(&v);
        int flags = bin_i8(&v);
        cn_bytes args = bin_bytes(&v);
        if (v.err || bin_remaining(&v) || args.len < 0) {
            *why = "malformed queue";
            return -1;
        }
        if (!q)
            q = queue_add(as, name, id, (amqp_table){args.ptr, (uint32_t)args.len});
        q->durable = 1;
        q->auto_delete = flags & 1;
        if (id >= as->next_qid)
            as->next_qid = id + 1;
        return 0;
    }
    if (kind == 'B') {
        cn_str qname = bin_str(&k), key = bin_str(&k);
        cn_bytes args = bin_bytes(&k);
        if (k.err || bin_remaining(&k) || args.len < 0) {
            *why = "malformed binding";
            return -1;
        }
        aexchange *x = exchange_find(as, name);
        aqueue *q = asrv__queue_find(as, qname);
        if (!x || !q) {
            *why = "binding of a missing exchange or queue";
            return -1;
        }
        amqp_table at = {args.ptr, (uint32_t)args.len};
        int i = binding_find(x, q, key, at);
        if (tomb) {
            if (i >= 0) {
                binding_free(&x->b[i]);
                x->b[i] = x->b[--x->n_b];
            }
        } else if (i < 0) {
            binding_add(x, q, key, at);
        }
        return 0;
    }
    if (kind == 'X') {
        cn_str dname = bin_str(&k), key = bin_str(&k);
        cn_bytes args = bin_bytes(&k);
        if (k.err || bin_remaining(&k) || args.len < 0) {
            *why = "malformed exchange binding";
            return -1;
        }
        aexchange *src = exchange_find(as, name), *dst = exchange_find(as, dname);
        if (!src || !dst) {
            *why = "exchange binding of a missing exchange";
            return -1;
        }
        amqp_table at = {args.ptr, (uint32_t)args.len};
        int i = asrv__xbind_find(src, dst, key, at);
        if (tomb) {
            if (i >= 0)
                asrv__xbind_forget(src, i);
        } else if (i < 0) {
            asrv__xbind_add(src, dst, key, at);
        }
        return 0;
    }
    *why = "unknown record kind";
    return -1;
}

static int meta_compact(void *arg, kvl_compaction *cx)
{
    asrv *as = arg;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    int rc = 0;
    for (int i = 0; i < as->n_ex && !rc; i++) {
        const aexchange *x = as->ex[i];
        if (!exchange_persisted(x))
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        key_exchange(&k, x);
        val_exchange(&v, x);
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    for (int i = 0; i < as->n_q && !rc; i++) {
        const aqueue *q = as->q[i];
        if (!queue_persisted(q))
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        key_queue(&k, q);
        val_queue(&v, q);
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    for (int i = 0; i < as->n_q && !rc; i++) {
        const aqueue *q = as->q[i];
        if (!queue_persisted(q) || !q->p)
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        asrv__store_ack_record(q, &k, &v); /* the same record write_acks writes */
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    uint8_t one = 1;
    for (int i = 0; i < as->n_ex && !rc; i++) {
        const aexchange *x = as->ex[i];
        for (int j = 0; j < x->n_b && !rc; j++) {
            if (!binding_persisted(x, &x->b[j]))
                continue;
            wbuf_reset(&k);
            key_binding(&k, x, &x->b[j]);
            rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, &one, 1);
        }
        for (int j = 0; j < x->n_xb && !rc; j++) {
            if (!xbind_persisted(x, &x->xb[j]))
                continue;
            wbuf_reset(&k);
            key_xbind(&k, x, &x->xb[j]);
            rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, &one, 1);
        }
    }
    wbuf_fini(&k);
    wbuf_fini(&v);
    return rc;
}

static int64_t meta_live_bytes(void *arg)
{
    asrv *as = arg;
    int64_t n = 0;
    for (int i = 0; i < as->n_ex; i++) {
        n += 32 + as->ex[i]->name_len + as->ex[i]->args_len;
        for (int j = 0; j < as->ex[i]->n_xb; j++)
            n += 48 + as->ex[i]->name_len + as->ex[i]->xb[j].key_len +
                 as->ex[i]->xb[j].dx->name_len + as->ex[i]->xb[j].args_len;
        for (int j = 0; j < as->ex[i]->n_b; j++)
            n += 48 + as->ex[i]->name_len + as->ex[i]->b[j].key_len +
                 as->ex[i]->b[j].q->name_len + as->ex[i]->b[j].args_len;
    }
    for (int i = 0; i < as->n_q; i++)
        n += 48 + as->q[i]->name_len + as->q[i]->args_len;
    return n;
}

void asrv__meta_init(asrv *as)
{
    static const struct {
        const char *name;
        int type;
    } builtin[] = {
        {"", AX_DIRECT},           {"amq.direct", AX_DIRECT},   {"amq.fanout", AX_FANOUT},
        {"amq.topic", AX_TOPIC},   {"amq.headers", AX_HEADERS}, {"amq.match", AX_HEADERS},
    };
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        aexchange *x = exchange_add(as, cn_str_c(builtin[i].name), builtin[i].type);
        x->durable = 1;
        x->builtin = 1;
    }
    as->next_qid = 1;
    asrv__store_init(as);
    asrv__stream_init(as);
    static const kvl_ops ops = {meta_on_record, meta_compact, meta_live_bytes};
    int rc = kvl_open(as->core->b, BROKER_AMQP_META_TOPIC, &ops, as, &as->meta);
    if (rc < 0) {
        slog_error("amqp: cannot open %s (%s): durable exchanges, queues and bindings are "
                   "neither replayed nor persisted",
                   BROKER_AMQP_META_TOPIC, cn_strerror(rc));
        as->meta = NULL;
        return;
    }
    slog_info("amqp: %d exchanges, %d queues from %s", as->n_ex, as->n_q,
              BROKER_AMQP_META_TOPIC);
    /* Queue ids are never reused, even after a deleted queue's records are
     * compacted away: start above the wall clock (ms x 1024). */
    uint64_t clock_id = (uint64_t)loop_wall_ms() * 1024;
    if (as->next_qid < clock_id)
        as->next_qid = clock_id;
    for (int i = 0; i < as->n_q; i++)
        if (queue_persisted(as->q[i]))
            asrv__store_open(as, as->q[i]);
}

void asrv__meta_free(asrv *as)
{
    asrv__store_flush(as); /* the last acks, synced by broker_close */
    asrv__store_fini(as);
    asrv__stream_fini(as);
    kvl_close(as->meta); /* first: tearing down the tables is not a deletion */
    as->meta = NULL;
    for (int i = 0; i < as->n_q; i++)
        as->q[i]->p = NULL; /* nor a reason to trim their partitions */
    while (as->n_q)
        asrv__queue_delete(as, as->q[as->n_q - 1]);
    for (int i = 0; i < as->n_ex; i++)
        exchange_free(as->ex[i]);
    free(as->ex);
    free(as->q);
    as->ex = NULL;
    as->q = NULL;
    as->n_ex = as->n_q = 0;
}

static int reserved_name(cn_str name)
{
    return slen(name) == 0 || (slen(name) >= 4 && memcmp(name.ptr, "amq.", 4) == 0);
}

static void on_exchange_declare(asrv_conn *ac, uint16_t ch, const amqp_exchange_declare *m)
{
    asrv *as = ac->as;
    aexchange *x = exchange_find(as, m->exchange);
    if (m->passive) {
        if (!x) {
            asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_EXCHANGE, 10,
                             "no exchange '%.*s' in vhost '/'", SARG(m->exchange));
            return;
        }
    } else {
        if (reserved_name(m->exchange)) {
            asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_EXCHANGE, 10,
                             "exchange name '%.*s' contains reserved prefix 'amq.*'",
                             SARG(m->exchange));
            return;
        }
        int type = exchange_type(m->type);
        if (type < 0) {
            if (slen(m->type) > 0 && m->type.len >= 2 && memcmp(m->type.ptr, "x-", 2) == 0)
                asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, AMQP_CLASS_EXCHANGE, 10,
                                 "exchange type '%.*s' is not implemented", SARG(m->type));
            else
                asrv__conn_error(ac, AMQP_COMMAND_INVALID, AMQP_CLASS_EXCHANGE, 10,
                                 "unknown exchange type '%.*s'", SARG(m->type));
            return;
        }
        if (slen(m->exchange) == 0 || m->exchange.len > 255)
            return;
        cn_str ae;
        if (asrv__exchange_args_or_reply(ac, ch, m->exchange, m->arguments, &ae) < 0)
            return;
        if (x) {
            if (!str_is(ae, x->ae ? x->ae : "", x->ae_len)) {
                asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_EXCHANGE, 10,
                                 "inequivalent arg 'alternate-exchange' for exchange '%.*s' in "
                                 "vhost '/': received '%.*s' but current is '%.*s'",
                                 SARG(m->exchange), SARG(ae), (int)x->ae_len,
                                 x->ae ? x->ae : "");
                return;
            }
            if (x->type != type || x->durable != m->durable || x->auto_delete != m->auto_delete ||
                x->internal != m->internal) {
                asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_EXCHANGE, 10,
                                 "inequivalent arg for exchange '%.*s': declared type '%s' "
                                 "durable %u auto_delete %u internal %u",
                                 SARG(m->exchange), type_names[x->type], x->durable,
                                 x->auto_delete, x->internal);
                return;
            }
        } else {
            x = exchange_add(as, m->exchange, type);
            x->durable = m->durable;
            x->auto_delete = m->auto_delete;
            x->internal = m->internal;
            asrv__exchange_set_args(x, m->arguments);
            meta_exchange(as, x, META_PUT);
        }
    }
    if (!m->nowait) {
        amqp_exchange_declare_ok ok;
        amqp_exchange_declare_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_EXCHANGE_DECLARE_OK, &ok);
    }
}

static void on_exchange_delete(asrv_conn *ac, uint16_t ch, const amqp_exchange_delete *m)
{
    asrv *as = ac->as;
    if (reserved_name(m->exchange)) {
        asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_EXCHANGE, 20,
                         "exchange '%.*s' cannot be deleted", SARG(m->exchange));
        return;
    }
    aexchange *x = exchange_find(as, m->exchange);
    if (x) {
        if (m->if_unused && (x->n_b > 0 || x->n_xb > 0)) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_EXCHANGE, 20,
                             "exchange '%.*s' in use", SARG(m->exchange));
            return;
        }
        exchange_remove(as, x);
    }
    if (!m->nowait) {
        amqp_exchange_delete_ok ok;
        amqp_exchange_delete_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_EXCHANGE_DELETE_OK, &ok);
    }
}

/* Queues: declare, bind, unbind, purge, delete ----------------------------- */

/* The queue named name for connection ac: NULL after a soft error (404
 * when missing, 405 when another connection's exclusive queue). */
static aqueue *queue_get(asrv_conn *ac, uint16_t ch, cn_str name, uint16_t mid)
{
    aqueue *q = asrv__queue_find(ac->as, name);
    if (!q) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_QUEUE, mid,
                         "no queue '%.*s' in vhost '/'", SARG(name));
        return NULL;
    }
    if (q->exclusive && q->owner != ac) {
        asrv__chan_error(ac, ch, AMQP_RESOURCE_LOCKED, AMQP_CLASS_QUEUE, mid,
                         "cannot obtain exclusive access to locked queue '%.*s' in vhost '/'",
                         SARG(name));
        return NULL;
    }
    return q;
}

/* 0 when the queue arguments are valid (qargs.h); else the error is sent
 * (502 malformed, 406 invalid, 540 not implemented) and -1. */
static int queue_args_ok(asrv_conn *ac, uint16_t ch, cn_str name, const amqp_queue_declare *m)
{
    if (amqp_table_check(m->arguments) < 0) {
        asrv__conn_error(ac, AMQP_SYNTAX_ERROR, AMQP_CLASS_QUEUE, 10, "malformed arguments");
        return -1;
    }
    aqargs xa;
    aqargs_err err;
    if (asrv_qargs_parse(m->arguments, m->durable, m->exclusive, m->auto_delete, &xa, &err) == 0)
        return 0;
    if (err.code == AMQP_NOT_IMPLEMENTED)
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, AMQP_CLASS_QUEUE, 10, "%s", err.text);
    else
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                         "%s for queue '%.*s' in vhost '/'", err.text, SARG(name));
    return -1;
}

static void declare_ok(asrv_conn *ac, uint16_t ch, const aqueue *q)
{
    amqp_queue_declare_ok ok;
    amqp_queue_declare_ok_init(&ok);
    ok.queue = (cn_str){q->name, q->name_len};
    ok.message_count = (uint32_t)q->n;
    ok.consumer_count = (uint32_t)q->n_cons;
    asrv__send_method(ac, ch, AMQP_QUEUE_DECLARE_OK, &ok);
}

static void on_queue_declare(asrv_conn *ac, uint16_t ch, const amqp_queue_declare *m)
{
    asrv *as = ac->as;
    if (m->passive) {
        aqueue *q = queue_get(ac, ch, m->queue, 10);
        if (q)
            asrv__qx_touch(q);
        if (q && !m->nowait)
            declare_ok(ac, ch, q);
        return;
    }
    char gen[64];
    cn_str name = m->queue;
    if (slen(name) == 0) {
        unsigned long long r = (unsigned long long)time(NULL) ^ ((unsigned long long)rand() << 20);
        int n = snprintf(gen, sizeof(gen), "amq.gen-%llx-%llu", r, (unsigned long long)++as->gen);
        name = (cn_str){gen, n};
    } else if (reserved_name(name)) {
        asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_QUEUE, 10,
                         "queue name '%.*s' contains reserved prefix 'amq.*'", SARG(name));
        return;
    }
    if (queue_args_ok(ac, ch, name, m) < 0)
        return;
    int stream = asrv__stream_arg(m->arguments);
    aqueue *q = asrv__queue_find(as, name);
    if (!q && stream && asrv__stream_declare_or_reply(ac, ch, name, m) < 0)
        return;
    if (q) {
        if (q->exclusive && q->owner != ac) {
            asrv__chan_error(ac, ch, AMQP_RESOURCE_LOCKED, AMQP_CLASS_QUEUE, 10,
                             "cannot obtain exclusive access to locked queue '%.*s' in vhost '/'",
                             SARG(name));
            return;
        }
        if (q->durable != m->durable || q->exclusive != m->exclusive ||
            q->auto_delete != m->auto_delete) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                             "inequivalent arg for queue '%.*s': declared durable %u exclusive "
                             "%u auto_delete %u",
                             SARG(name), q->durable, q->exclusive, q->auto_delete);
            return;
        }
        if (q->stream != stream) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                             "inequivalent arg 'x-queue-type' for queue '%.*s' in vhost '/': "
                             "received '%s' but current is '%s'", SARG(name),
                             stream ? "stream" : "classic", q->stream ? "stream" : "classic");
            return;
        }
        aqargs_err err;
        if (asrv_qargs_equiv((amqp_table){q->args, q->args_len}, m->arguments, &err) < 0) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                             "%s for queue '%.*s' in vhost '/'", err.text, SARG(name));
            return;
        }
        asrv__qx_touch(q);
    } else {
        q = queue_add(as, name, as->next_qid++, m->arguments);
        q->durable = m->durable;
        q->exclusive = m->exclusive;
        q->auto_delete = m->auto_delete;
        q->owner = m->exclusive ? ac : NULL;
        meta_queue(as, q, META_PUT);
        q->meta_end = as->meta ? kvl_end(as->meta) : 0;
        if (queue_persisted(q))
            asrv__store_open(as, q);
    }
    if (!m->nowait)
        declare_ok(ac, ch, q);
}

/* 0 and *out, or a soft error sent and -1. */
static int bind_target(asrv_conn *ac, uint16_t ch, cn_str exchange, uint16_t mid,
                       aexchange **out)
{
    if (slen(exchange) == 0) {
        asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_QUEUE, mid,
                         "operation not permitted on the default exchange");
        return -1;
    }
    *out = exchange_find(ac->as, exchange);
    if (!*out) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_QUEUE, mid,
                         "no exchange '%.*s' in vhost '/'", SARG(exchange));
        return -1;
    }
    return 0;
}

static void on_queue_bind(asrv_conn *ac, uint16_t ch, const amqp_queue_bind *m)
{
    aqueue *q = queue_get(ac, ch, m->queue, 20);
    if (!q)
        return;
    aexchange *x;
    if (bind_target(ac, ch, m->exchange, 20, &x) < 0)
        return;
    if (amqp_table_check(m->arguments) < 0) {
        asrv__conn_error(ac, AMQP_SYNTAX_ERROR, AMQP_CLASS_QUEUE, 20, "malformed arguments");
        return;
    }
    if (binding_find(x, q, m->routing_key, m->arguments) < 0) {
        binding_add(x, q, m->routing_key, m->arguments);
        meta_binding(ac->as, x, &x->b[x->n_b - 1], META_PUT);
    }
    if (!m->nowait) {
        amqp_queue_bind_ok ok;
        amqp_queue_bind_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_QUEUE_BIND_OK, &ok);
    }
}

static void on_queue_unbind(asrv_conn *ac, uint16_t ch, const amqp_queue_unbind *m)
{
    aqueue *q = queue_get(ac, ch, m->queue, 50);
    if (!q)
        return;
    aexchange *x;
    if (bind_target(ac, ch, m->exchange, 50, &x) < 0)
        return;
    int i = binding_find(x, q, m->routing_key, m->arguments);
    if (i >= 0)
        binding_remove(ac->as, x, i);
    amqp_queue_unbind_ok ok;
    amqp_queue_unbind_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_QUEUE_UNBIND_OK, &ok);
}

static void on_queue_purge(asrv_conn *ac, uint16_t ch, const amqp_queue_purge *m)
{
    aqueue *q = queue_get(ac, ch, m->queue, 30);
    if (!q)
        return;
    uint32_t n = queue_purge(ac->as, q);
    if (!m->nowait) {
        amqp_queue_purge_ok ok;
        amqp_queue_purge_ok_init(&ok);
        ok.message_count = n;
        asrv__send_method(ac, ch, AMQP_QUEUE_PURGE_OK, &ok);
    }
}

static void on_queue_delete(asrv_conn *ac, uint16_t ch, const amqp_queue_delete *m)
{
    uint32_t n = 0;
    aqueue *q = asrv__queue_find(ac->as, m->queue);
    if (q) {
        if (!(q = queue_get(ac, ch, m->queue, 40)))
            return;
        if (m->if_unused && q->n_cons > 0) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 40,
                             "queue '%.*s' in use", SARG(m->queue));
            return;
        }
        if (m->if_empty && q->n > 0) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 40,
                             "queue '%.*s' is not empty", SARG(m->queue));
            return;
        }
        n = (uint32_t)q->n;
        asrv__queue_delete(ac->as, q);
    }
    if (!m->nowait) {
        amqp_queue_delete_ok ok;
        amqp_queue_delete_ok_init(&ok);
        ok.message_count = n;
        asrv__send_method(ac, ch, AMQP_QUEUE_DELETE_OK, &ok);
    }
}

void ah_queue(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    switch (m->info->id) {
    case AMQP_EXCHANGE_DECLARE:
        on_exchange_declare(ac, ch, &m->args.exchange_declare);
        break;
    case AMQP_EXCHANGE_DELETE:
        on_exchange_delete(ac, ch, &m->args.exchange_delete);
        break;
    case AMQP_QUEUE_DECLARE:
        on_queue_declare(ac, ch, &m->args.queue_declare);
        break;
    case AMQP_QUEUE_BIND:
        on_queue_bind(ac, ch, &m->args.queue_bind);
        break;
    case AMQP_QUEUE_UNBIND:
        on_queue_unbind(ac, ch, &m->args.queue_unbind);
        break;
    case AMQP_QUEUE_PURGE:
        on_queue_purge(ac, ch, &m->args.queue_purge);
        break;
    case AMQP_QUEUE_DELETE:
        on_queue_delete(ac, ch, &m->args.queue_delete);
        break;
    case AMQP_EXCHANGE_BIND:
    case AMQP_EXCHANGE_UNBIND:
        ah_xbind(ac, ch, m);
        break;
    default:
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, m->class_id, m->method_id,
                         "%s is not implemented yet", m->info->name);
        break;
    }
}
