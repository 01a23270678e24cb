/* Queue arguments at run time (qargs.h parses them): message TTL, queue
 * expiry, length limits. Priorities are kept by the ready ring's order
 * (asrv__queue_push_t, ah_queue.c); single active consumer by the dispatch
 * (ah_basic.c); dead-lettering is ah_dlx.c.
 *
 * TTL. A ready entry expires at t + min(x-message-ttl, the message's
 * expiration property), t being its enqueue time (wall ms; after a restart,
 * the record timestamp of the stored message), and is dropped (or
 * dead-lettered, reason expired) once it is at the head of its queue, as
 * RabbitMQ does: the head is checked before every delivery and basic.get,
 * and a per-queue timer fires at the head's expiry so that queues nobody
 * reads dead-letter promptly. An expired entry is never delivered. A
 * requeued entry keeps its enqueue time.
 *
 * x-expires. A queue with no consumer that is not declared (again) nor read
 * with basic.get for that many ms is deleted (the same timer).
 *
 * Length limits. x-max-length counts ready messages, x-max-length-bytes
 * their body bytes (q->ready_bytes). x-overflow drop-head (the default)
 * drops (dead-letters, reason maxlen) from the head until the queue fits
 * again after an enqueue; reject-publish refuses the publish that does not
 * fit (not enqueued nor stored; basic.nack under confirms);
 * reject-publish-dlx also dead-letters it.
 *
 * Every message dropped here is settled in the queue's storage, so it does
 * not come back after a restart. */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

int asrv__msg_props(amsg *m)
{
    m->priority = 0;
    m->has_ttl = 0;
    m->ttl = 0;
    amqp_content_header h;
    if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) < 0)
        return 0;
    if (h.props.flags & AMQP_BASIC_FLAG_PRIORITY)
        m->priority = h.props.priority;
    if (h.props.flags & AMQP_BASIC_FLAG_EXPIRATION) {
        cn_str e = h.props.expiration;
        if (e.len <= 0 || e.len > 18)
            return -1;
        int64_t v = 0;
        for (int32_t i = 0; i < e.len; i++) {
            if (e.ptr[i] < '0' || e.ptr[i] > '9')
                return -1;
            v = v * 10 + (e.ptr[i] - '0');
        }
        m->ttl = v;
        m->has_ttl = 1;
    }
    return 0;
}

/* When e expires in q (wall ms), or INT64_MAX. */
static int64_t expiry(const aqueue *q, const aq_entry *e)
{
    int64_t ttl = q->xa.message_ttl;
    if (e->m->has_ttl && (ttl < 0 || e->m->ttl < ttl))
        ttl = e->m->ttl;
    return ttl < 0 ? INT64_MAX : e->t + ttl;
}

static loop *loop_of(const aqueue *q) { return q->as ? q->as->l : NULL; }

void asrv__qx_arm(aqueue *q)
{
    loop *l = loop_of(q);
    if (!l || q->deleted)
        return;
    int64_t at = INT64_MAX;
    if (q->n)
        at = expiry(q, &q->ring[q->head]);
    if (q->xa.expires >= 0 && q->n_cons == 0 && q->last_used + q->xa.expires < at)
        at = q->last_used + q->xa.expires;
    if (at == INT64_MAX) {
        loop_timer_stop(l, &q->xt);
        return;
    }
    int64_t ms = at - loop_wall_ms() + 1;
    loop_timer_start(l, &q->xt, ms < 0 ? 0 : ms);
}

void asrv__qx_drop(aqueue *q, aq_entry e, int reason)
{
    if (q->as)
        asrv__store_settled(q->as, q, e.off);
    asrv__dlx_publish(q, e.m, reason);
    amsg_unref(e.m);
}

int asrv__qx_expire(aqueue *q)
{
    int n = 0;
    if (!q->n)
        return 0;
    int64_t now = loop_wall_ms();
    while (q->n && !q->deleted && expiry(q, &q->ring[q->head]) < now) {
        aq_entry e;
        asrv__queue_pop(q, &e);
        asrv__qx_drop(q, e, ADL_EXPIRED);
        n++;
    }
    if (n)
        asrv__qx_arm(q);
    return n;
}

static int full(const aqueue *q, size_t extra_bytes, size_t extra_n)
{
    return (q->xa.max_length >= 0 && (int64_t)(q->n + extra_n) > q->xa.max_length) ||
           (q->xa.max_length_bytes >= 0 &&
            (int64_t)(q->ready_bytes + extra_bytes) > q->xa.max_length_bytes);
}

int asrv__qx_reject(aqueue *q, amsg *m)
{
    if (q->xa.overflow == AQ_OVF_DROP_HEAD || !full(q, m->body_len, 1))
        return 0;
    if (q->xa.overflow == AQ_OVF_REJECT_PUBLISH_DLX)
        asrv__dlx_publish(q, m, ADL_MAXLEN);
    return 1;
}

void asrv__qx_after_push(aqueue *q)
{
    if (q->xa.overflow == AQ_OVF_DROP_HEAD)
        while (q->n && !q->deleted && full(q, 0, 0)) {
            aq_entry e;
            asrv__queue_pop(q, &e);
            asrv__qx_drop(q, e, ADL_MAXLEN);
        }
    asrv__qx_arm(q);
}

void asrv__qx_touch(aqueue *q)
{
    q->last_used = loop_wall_ms();
    if (q->xa.expires >= 0)
        asrv__qx_arm(q);
}

static void on_timer(loop_timer *t)
{
    aqueue *q = t->data;
    if (q->deleted)
        return;
    asrv__qx_expire(q);
    if (q->xa.expires >= 0 && q->n_cons == 0 && !q->deleted &&
        loop_wall_ms() >= q->last_used + q->xa.expires) {
        slog_info("amqp: queue '%s' unused for %lld ms (x-expires): deleted", q->name,
                  (long long)q->xa.expires);
        asrv__queue_delete(q->as, q); /* may free q */
        return;
    }
    asrv__qx_arm(q);
}

void asrv__qx_init(asrv *as, aqueue *q)
{
    q->as = as;
    loop_timer_init(&q->xt, on_timer, q);
    aqargs_err err;
    /* Validated at declare; a replayed queue's arguments were then too. */
    if (asrv_qargs_parse((amqp_table){q->args, q->args_len}, 1, 0, 0, &q->xa, &err) < 0) {
        slog_warn("amqp: queue '%s': arguments ignored (%s)", q->name, err.text);
        aqargs none;
        asrv_qargs_parse((amqp_table){NULL, 0}, 1, 0, 0, &none, &err);
        q->xa = none;
    }
    q->last_used = loop_wall_ms();
}

void asrv__qx_fini(aqueue *q)
{
    loop *l = loop_of(q);
    if (l)
        loop_timer_stop(l, &q->xt);
}
