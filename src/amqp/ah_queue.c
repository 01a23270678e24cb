/* exchange.* and queue.* methods, the routing tables and the ready
 * messages of each queue (amqp_int.h).
 *
 * Durable exchanges, durable non-exclusive queues and the bindings between
 * durable ends are kept in the kvlog __amqp_meta (format below) and
 * replayed at start; the rest lives in memory only. Ready messages are
 * served from a ring in memory per queue; durable queues also append their
 * persistent messages to a partition (ah_store.c), read back at start.
 *
 * The __amqp_meta records and their replay and compaction are in ah_meta.c.
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
 * over them live in ah_xbind.c; their records in ah_meta.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp/amqp_int.h"
#include "auth/acl.h"
#include "amqp/route.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
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
        free(q->voters);
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

void asrv__binding_free(abinding *b)
{
    free(b->key);
    free(b->args);
}

void asrv__exchange_free(aexchange *x)
{
    for (int i = 0; i < x->n_b; i++)
        asrv__binding_free(&x->b[i]);
    free(x->b);
    for (int i = 0; i < x->n_xb; i++)
        asrv__binding_free(&x->xb[i]);
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
        asrv__meta_binding(as, x, &x->b[i], 0);
    asrv__meta_exchange(as, x, 0);
    for (int i = 0; i < as->n_ex; i++)
        if (as->ex[i] == x) {
            as->ex[i] = as->ex[--as->n_ex];
            break;
        }
    asrv__exchange_free(x);
}

void asrv__exchange_remove(asrv *as, aexchange *x)
{
    exchange_remove(as, x);
}

/* Remove binding i of x; an auto-delete exchange goes with its last one. */
static void binding_remove(asrv *as, aexchange *x, int i)
{
    asrv__meta_binding(as, x, &x->b[i], 0);
    asrv__binding_free(&x->b[i]);
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
    asrv__meta_queue(as, q, 0);
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

aexchange *asrv__exchange_add(asrv *as, cn_str name, int type)
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

aqueue *asrv__queue_add(asrv *as, cn_str name, uint64_t id, amqp_table args)
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

void asrv__queue_set_voters(aqueue *q, const int32_t *voters, int n)
{
    free(q->voters);
    q->voters = NULL;
    q->n_voters = 0;
    if (n <= 0)
        return;
    q->voters = xmalloc((size_t)n * sizeof(*q->voters));
    memcpy(q->voters, voters, (size_t)n * sizeof(*q->voters));
    q->n_voters = n;
}

void asrv__binding_add(aexchange *x, aqueue *q, cn_str key, amqp_table args)
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

int asrv__binding_find(const aexchange *x, const aqueue *q, cn_str key, amqp_table args)
{
    for (int i = 0; i < x->n_b; i++) {
        const abinding *b = &x->b[i];
        if (b->q == q && str_is(key, b->key, b->key_len) && b->args_len == args.len &&
            (args.len == 0 || memcmp(b->args, args.ptr, args.len) == 0))
            return i;
    }
    return -1;
}

static int reserved_name(cn_str name)
{
    return slen(name) == 0 || (slen(name) >= 4 && memcmp(name.ptr, "amq.", 4) == 0);
}

static void on_exchange_declare(asrv_conn *ac, uint16_t ch, const amqp_exchange_declare *m)
{
    asrv *as = ac->as;
    if (!m->passive && !asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 10, ACL_OP_CREATE,
                                              ACL_R_TOPIC, m->exchange))
        return;
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
            x = asrv__exchange_add(as, m->exchange, type);
            x->durable = m->durable;
            x->auto_delete = m->auto_delete;
            x->internal = m->internal;
            asrv__exchange_set_args(x, m->arguments);
            asrv__meta_exchange(as, x, 1);
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
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 20, ACL_OP_DELETE, ACL_R_TOPIC,
                               m->exchange))
        return;
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

void asrv__declare_ok(asrv_conn *ac, uint16_t ch, const aqueue *q)
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
            asrv__declare_ok(ac, ch, q);
        return;
    }
    /* CREATE on the queue; a server-named one is checked as amq.gen (a
     * prefixed ACL on amq.gen allows it) */
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 10, ACL_OP_CREATE, ACL_R_GROUP,
                               slen(m->queue) ? m->queue : cn_str_c("amq.gen")))
        return;
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
        q = asrv__queue_add(as, name, as->next_qid++, m->arguments);
        q->durable = m->durable;
        q->exclusive = m->exclusive;
        q->auto_delete = m->auto_delete;
        q->owner = m->exclusive ? ac : NULL;
        if (asrv__queue_persisted(q) && as->cl)
            asrv__cluster_voters(as, q);
        asrv__meta_queue(as, q, 1);
        q->meta_end = as->meta ? kvl_end(as->meta) : 0;
        if (asrv__queue_persisted(q))
            asrv__store_open(as, q, 1);
        if (q->p && as->cl) {
            /* Its log was just created: the reply waits for it to be led here. */
            asrv__cluster_park(ac, ch, q, m->nowait);
            return;
        }
    }
    if (!m->nowait)
        asrv__declare_ok(ac, ch, q);
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
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 20, ACL_OP_WRITE, ACL_R_GROUP,
                               m->queue) ||
        !asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 20, ACL_OP_READ, ACL_R_TOPIC,
                               m->exchange))
        return;
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
    if (asrv__binding_find(x, q, m->routing_key, m->arguments) < 0) {
        asrv__binding_add(x, q, m->routing_key, m->arguments);
        asrv__meta_binding(ac->as, x, &x->b[x->n_b - 1], 1);
    }
    if (!m->nowait) {
        amqp_queue_bind_ok ok;
        amqp_queue_bind_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_QUEUE_BIND_OK, &ok);
    }
}

static void on_queue_unbind(asrv_conn *ac, uint16_t ch, const amqp_queue_unbind *m)
{
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 50, ACL_OP_WRITE, ACL_R_GROUP,
                               m->queue) ||
        !asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 50, ACL_OP_READ, ACL_R_TOPIC,
                               m->exchange))
        return;
    aqueue *q = queue_get(ac, ch, m->queue, 50);
    if (!q)
        return;
    aexchange *x;
    if (bind_target(ac, ch, m->exchange, 50, &x) < 0)
        return;
    int i = asrv__binding_find(x, q, m->routing_key, m->arguments);
    if (i >= 0)
        binding_remove(ac->as, x, i);
    amqp_queue_unbind_ok ok;
    amqp_queue_unbind_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_QUEUE_UNBIND_OK, &ok);
}

static void on_queue_purge(asrv_conn *ac, uint16_t ch, const amqp_queue_purge *m)
{
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 30, ACL_OP_DELETE, ACL_R_GROUP,
                               m->queue))
        return;
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
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_QUEUE, 40, ACL_OP_DELETE, ACL_R_GROUP,
                               m->queue))
        return;
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
