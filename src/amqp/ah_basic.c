/* basic.* and confirm.* methods, content assembly and delivery.
 *
 * Publish: basic.publish, then one content header frame, then body frames
 * up to the header's body size (anything else on that channel in between is
 * 505 UNEXPECTED_FRAME). The finished message is routed (ah_queue.c) into
 * every matching queue; unroutable and mandatory: basic.return 312
 * NO_ROUTE with the content; immediate: 540 NOT_IMPLEMENTED (RabbitMQ 3).
 * In confirm mode every publish is then acked with its sequence number:
 * at once for a transient message or one routed to no durable queue, else
 * once every queue partition it was appended to is durable (see
 * "Publisher confirms" below).
 *
 * Delivery: each channel numbers its deliveries (delivery tags from 1) and
 * keeps the unacked ones in tag order; basic.ack/reject/nack settle them
 * (406 PRECONDITION_FAILED on an unknown tag); requeued messages go to the
 * front of their queue, redelivered. Consumers of a queue are served
 * round-robin, each bounded by the channel's basic.qos prefetch_count
 * (global=false) at the time it subscribed, and all of a channel's
 * consumers together by its global=true prefetch_count, as RabbitMQ does
 * (the two limits combine; unacked deliveries of a cancelled consumer
 * still count against the channel's). A closed channel or connection
 * requeues its unacked deliveries.
 *
 * On a channel in tx mode (ah_tx.c) complete publishes and ack/nack/reject
 * are handed to ah_tx.c, which applies them at tx.commit. With
 * x-single-active-consumer only the first registered consumer is served;
 * when it goes the next one takes over. Expired heads are dropped (or
 * dead-lettered) before each delivery and basic.get (ah_qx.c), and
 * reject/nack with requeue=false dead-letters (ah_dlx.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "auth/acl.h"
#include "util/common.h"
#include "util/slog.h"

static int32_t slen(cn_str s) { return s.len > 0 ? s.len : 0; }

#define SARG(s) (int)slen(s), (s).ptr ? (s).ptr : ""

/* Sending content ----------------------------------------------------------- */

/* A method with content: method frame, header frame, body frames. q and off:
 * the queue and stored offset it delivers (NULL, -1: not a delivery); such a
 * response may wait for its delivered mark (ah_redeliver.c). */
static void send_content(asrv_conn *ac, uint16_t ch, uint32_t id, const void *args,
                         const amsg *m, aqueue *q, int64_t off)
{
    net_resp *r = net_resp_new(ac->c);
    int rc = amqp_method_frame(&r->w, ch, id, args);
    CN_ASSERT(rc == 0);
    amqp_frame_write(&r->w, AMQP_FRAME_HEADER, ch, m->hdr, m->hdr_len);
    size_t chunk = ac->frame_max - 8;
    for (size_t at = 0; at < m->body_len; at += chunk) {
        size_t n = m->body_len - at < chunk ? m->body_len - at : chunk;
        amqp_frame_write(&r->w, AMQP_FRAME_BODY, ch, m->body + at, n);
    }
    ac->last_sent = loop_now(ac->l);
    if (!asrv__redeliver_hold(ac->as, q, off, r))
        net_resp_ready(r);
}

/* Delivery ----------------------------------------------------------------- */

static achan *chan_of(asrv_conn *ac, uint16_t ch)
{
    return ac->cs ? ac->cs[ch] : NULL;
}

static uint64_t add_unacked(achan *cs, aqueue *q, amsg *m, aconsumer *c, const aq_entry *e)
{
    if (cs->n_unacked == cs->cap_unacked) {
        cs->cap_unacked = cs->cap_unacked ? cs->cap_unacked * 2 : 16;
        cs->unacked = xrealloc(cs->unacked, cs->cap_unacked * sizeof(*cs->unacked));
    }
    uint64_t tag = ++cs->next_tag;
    q->refs++;
    cs->unacked[cs->n_unacked++] = (adelivery){.tag = tag, .q = q, .m = m, .off = e->off,
                                               .seq = e->seq, .cons = c, .by_consumer = c != NULL,
                                               .t = e->t};
    if (c)
        cs->cons_unacked++;
    return tag;
}

int asrv__can_take(const aconsumer *c)
{
    asrv_conn *ac = c->ac;
    achan *cs = chan_of(ac, c->ch);
    return ac->state == ASRV_OPEN && cs && ac->chan[c->ch] == ACH_OPEN && ac->chan_flow[c->ch] &&
           (c->no_ack || ((!c->prefetch || c->unacked < c->prefetch) &&
                          (!cs->prefetch_global || cs->cons_unacked < cs->prefetch_global))) &&
           asrv__out_ok(ac); /* its socket keeps up (ah_alarm.c) */
}

/* Credit of cs's global prefetch was freed (or raised): its consumers'
 * queues may deliver again, not only the queues that were settled. */
static void dispatch_channel(achan *cs)
{
    for (int k = 0; k < cs->n_cons; k++)
        asrv__dispatch(cs->cons[k]->q);
}

void asrv__deliver(aconsumer *c, aq_entry e)
{
    achan *cs = chan_of(c->ac, c->ch);
    amqp_basic_deliver d;
    amqp_basic_deliver_init(&d);
    d.consumer_tag = (cn_str){c->tag, c->tag_len};
    d.redelivered = (uint8_t)e.redelivered;
    d.exchange = e.m->exchange;
    d.routing_key = e.m->routing_key;
    if (c->no_ack) {
        d.delivery_tag = ++cs->next_tag;
        if (c->ac->as)
            asrv__store_settled(c->ac->as, c->q, e.off);
    } else {
        d.delivery_tag = add_unacked(cs, c->q, e.m, c, &e);
        c->unacked++;
    }
    send_content(c->ac, c->ch, AMQP_BASIC_DELIVER, &d, e.m, c->q, e.off);
    if (c->no_ack)
        amsg_unref(e.m);
}

void asrv__dispatch(aqueue *q)
{
    if (q->stream) {
        asrv__stream_dispatch(q);
        return;
    }
    while (q->n && q->n_cons && !q->deleted) {
        if (asrv__qx_expire(q)) /* TTL: expired heads are never delivered */
            continue;
        aconsumer *c = NULL;
        /* x-single-active-consumer: only the first registered one takes.
         * Else round-robin from rr among the consumers of the highest
         * x-priority that can take (a scan of all only when some consumer
         * has a priority). */
        int span = q->xa.single_active ? 1 : q->n_cons, ci = -1;
        for (int k = 0; k < span; k++) {
            int i = q->xa.single_active ? 0 : (q->rr + k) % q->n_cons;
            if (asrv__can_take(q->cons[i]) && (!c || q->cons[i]->priority > c->priority)) {
                c = q->cons[i];
                ci = i;
                if (!q->n_prio_cons)
                    break;
            }
        }
        if (!c)
            return;
        q->rr = (ci + 1) % q->n_cons;
        aq_entry e;
        asrv__queue_pop(q, &e);
        asrv__deliver(c, e);
    }
}

/* Settling deliveries [lo, hi) of cs->unacked: ack, drop or requeue (to
 * the front of the queue, redelivered, in tag order); SETTLE_* in amqp_int.h. */
static void settle(asrv_conn *ac, achan *cs, size_t lo, size_t hi, int how)
{
    size_t n = hi - lo;
    if (!n)
        return;
    adelivery *tmp = xmalloc(n * sizeof(*tmp));
    memcpy(tmp, cs->unacked + lo, n * sizeof(*tmp));
    memmove(cs->unacked + lo, cs->unacked + hi, (cs->n_unacked - hi) * sizeof(*tmp));
    cs->n_unacked -= n;
    if (how == SETTLE_DROP && ac->as) /* reject/nack requeue=false: dead-letter, in tag order */
        for (size_t i = 0; i < n; i++)
            asrv__dlx_publish(tmp[i].q, tmp[i].m, ADL_REJECTED);
    for (size_t i = n; i-- > 0;) {
        adelivery *d = &tmp[i];
        if (how == SETTLE_REQUEUE && !d->q->deleted && !d->q->stream)
            asrv__queue_push_t(d->q, d->m, 1, d->seq, d->off, d->t);
        else if (how != SETTLE_REQUEUE && ac->as)
            asrv__store_settled(ac->as, d->q, d->off);
        if (d->cons)
            d->cons->unacked--;
        if (d->by_consumer)
            cs->cons_unacked--;
        amsg_unref(d->m);
    }
    for (size_t i = 0; i < n; i++)
        asrv__dispatch(tmp[i].q);
    if (cs->prefetch_global)
        dispatch_channel(cs);
    for (size_t i = 0; i < n; i++)
        asrv__queue_unref(tmp[i].q);
    free(tmp);
}

/* Index of tag in cs->unacked (tags ascend), or -1. */
static ssize_t find_tag(const achan *cs, uint64_t tag)
{
    size_t lo = 0, hi = cs->n_unacked;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cs->unacked[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < cs->n_unacked && cs->unacked[lo].tag == tag ? (ssize_t)lo : -1;
}

static void on_settle(asrv_conn *ac, uint16_t ch, const amqp_method *m, uint64_t tag,
                      int multiple, int how)
{
    achan *cs = chan_of(ac, ch);
    if (cs->tx) { /* transactions: applied at tx.commit (ah_tx.c) */
        asrv__tx_settle(ac, ch, cs, m, tag, multiple, how);
        return;
    }
    if (multiple && tag == 0) {
        settle(ac, cs, 0, cs->n_unacked, how);
        return;
    }
    ssize_t i = find_tag(cs, tag);
    if (i < 0) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, m->class_id, m->method_id,
                         "unknown delivery tag %llu", (unsigned long long)tag);
        return;
    }
    settle(ac, cs, multiple ? 0 : (size_t)i, (size_t)i + 1, how);
}

/* Consumers ---------------------------------------------------------------- */

void asrv__chan_forget_consumer(achan *cs, aconsumer *c)
{
    for (int k = 0; k < cs->n_cons; k++)
        if (cs->cons[k] == c) {
            cs->cons[k] = cs->cons[--cs->n_cons];
            break;
        }
    /* c's unacked deliveries stay on the channel, with no consumer */
    for (size_t k = 0; k < cs->n_unacked; k++)
        if (cs->unacked[k].cons == c)
            cs->unacked[k].cons = NULL;
}

static void consumer_remove(asrv_conn *ac, achan *cs, aconsumer *c)
{
    aqueue *q = c->q;
    for (int k = 0; k < q->n_cons; k++)
        if (q->cons[k] == c) {
            memmove(q->cons + k, q->cons + k + 1, (size_t)(q->n_cons - k - 1) * sizeof(*q->cons));
            q->n_cons--;
            if (c->priority)
                q->n_prio_cons--;
            if (q->rr > k)
                q->rr--;
            if (q->n_cons)
                q->rr %= q->n_cons;
            else
                q->rr = 0;
            break;
        }
    asrv__chan_forget_consumer(cs, c);
    asrv__stream_consumer_free(c);
    free(c);
    if (q->auto_delete && q->n_cons == 0 && ac->as) {
        asrv__queue_delete(ac->as, q);
    } else if (!q->deleted) {
        if (q->n_cons == 0)
            asrv__qx_touch(q); /* x-expires counts from the last consumer */
        else if (q->xa.single_active && ac->as)
            asrv__dispatch(q); /* the next consumer becomes the active one */
    }
}

static aconsumer *consumer_find(achan *cs, cn_str tag)
{
    for (int k = 0; k < cs->n_cons; k++)
        if (cs->cons[k]->tag_len == slen(tag) &&
            memcmp(cs->cons[k]->tag, tag.ptr ? tag.ptr : "", (size_t)slen(tag)) == 0)
            return cs->cons[k];
    return NULL;
}

static void on_consume(asrv_conn *ac, uint16_t ch, const amqp_basic_consume *m)
{
    achan *cs = chan_of(ac, ch);
    if (asrv__reply_is_queue(m->queue)) {
        asrv__reply_consume(ac, ch, cs, m);
        return;
    }
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_BASIC, 20, ACL_OP_READ, ACL_R_GROUP,
                               m->queue))
        return;
    aqueue *q = asrv__queue_find(ac->as, m->queue);
    if (!q) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_BASIC, 20,
                         "no queue '%.*s' in vhost '/'", SARG(m->queue));
        return;
    }
    if (q->exclusive && q->owner != ac) {
        asrv__chan_error(ac, ch, AMQP_RESOURCE_LOCKED, AMQP_CLASS_BASIC, 20,
                         "cannot obtain exclusive access to locked queue '%.*s' in vhost '/'",
                         SARG(m->queue));
        return;
    }
    for (int k = 0; k < q->n_cons; k++)
        if (q->cons[k]->exclusive || m->exclusive) {
            asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_BASIC, 20,
                             "queue '%.*s' in vhost '/' in exclusive use", SARG(m->queue));
            return;
        }
    char gen[64];
    cn_str tag = m->consumer_tag;
    if (slen(tag) == 0) {
        int n = snprintf(gen, sizeof(gen), "amq.ctag-%llu-%llu",
                         (unsigned long long)net_conn_id(ac->c),
                         (unsigned long long)++ac->as->gen);
        tag = (cn_str){gen, n};
    }
    if (consumer_find(cs, tag)) {
        asrv__conn_error(ac, AMQP_NOT_ALLOWED, AMQP_CLASS_BASIC, 20,
                         "attempt to reuse consumer tag '%.*s'", SARG(tag));
        return;
    }
    /* Consumer priority (RabbitMQ's x-priority): an integer, default 0. */
    int64_t prio = 0;
    amqp_value pv;
    if (amqp_table_get(m->arguments, "x-priority", &pv) == 0 &&
        (amqp_value_int(&pv, &prio) < 0 || prio < INT32_MIN || prio > INT32_MAX)) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 20,
                         "invalid arg 'x-priority' for consumer: not a 32-bit integer");
        return;
    }
    astream_cur *scur = NULL;
    if (q->stream && !(scur = asrv__stream_consume_or_reply(ac, ch, q, m, cs->prefetch)))
        return;
    aconsumer *c = xcalloc(1, sizeof(*c));
    c->priority = (int32_t)prio;
    if (prio)
        q->n_prio_cons++;
    c->scur = scur;
    c->ac = ac;
    c->ch = ch;
    memcpy(c->tag, tag.ptr, (size_t)tag.len);
    c->tag_len = tag.len;
    c->q = q;
    c->no_ack = m->no_ack;
    c->exclusive = m->exclusive;
    c->prefetch = cs->prefetch;
    if (q->n_cons == q->cap_cons) {
        q->cap_cons = q->cap_cons ? q->cap_cons * 2 : 4;
        q->cons = xrealloc(q->cons, (size_t)q->cap_cons * sizeof(*q->cons));
    }
    q->cons[q->n_cons++] = c;
    q->had_consumer = 1;
    asrv__qx_touch(q);
    if (cs->n_cons == cs->cap_cons) {
        cs->cap_cons = cs->cap_cons ? cs->cap_cons * 2 : 4;
        cs->cons = xrealloc(cs->cons, (size_t)cs->cap_cons * sizeof(*cs->cons));
    }
    cs->cons[cs->n_cons++] = c;
    if (!m->nowait) {
        amqp_basic_consume_ok ok;
        amqp_basic_consume_ok_init(&ok);
        ok.consumer_tag = tag;
        asrv__send_method(ac, ch, AMQP_BASIC_CONSUME_OK, &ok);
    }
    asrv__dispatch(q);
}

static void on_cancel(asrv_conn *ac, uint16_t ch, const amqp_basic_cancel *m)
{
    achan *cs = chan_of(ac, ch);
    aconsumer *c = asrv__reply_cancel(cs, m->consumer_tag) ? NULL : consumer_find(cs, m->consumer_tag);
    if (!m->nowait) {
        amqp_basic_cancel_ok ok;
        amqp_basic_cancel_ok_init(&ok);
        ok.consumer_tag = m->consumer_tag;
        asrv__send_method(ac, ch, AMQP_BASIC_CANCEL_OK, &ok);
    }
    if (c)
        consumer_remove(ac, cs, c);
}

/* basic.get ---------------------------------------------------------------- */

static void on_get(asrv_conn *ac, uint16_t ch, const amqp_basic_get *m)
{
    achan *cs = chan_of(ac, ch);
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_BASIC, 70, ACL_OP_READ, ACL_R_GROUP,
                               m->queue))
        return;
    aqueue *q = asrv__queue_find(ac->as, m->queue);
    if (!q) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_BASIC, 70,
                         "no queue '%.*s' in vhost '/'", SARG(m->queue));
        return;
    }
    if (q->exclusive && q->owner != ac) {
        asrv__chan_error(ac, ch, AMQP_RESOURCE_LOCKED, AMQP_CLASS_BASIC, 70,
                         "cannot obtain exclusive access to locked queue '%.*s' in vhost '/'",
                         SARG(m->queue));
        return;
    }
    if (q->stream) { /* as RabbitMQ */
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, AMQP_CLASS_BASIC, 70,
                         "basic.get not supported by stream queue '%.*s' in vhost '/'",
                         SARG(m->queue));
        return;
    }
    asrv__qx_touch(q);
    asrv__qx_expire(q);
    aq_entry e;
    if (!asrv__queue_pop(q, &e)) {
        amqp_basic_get_empty ge;
        amqp_basic_get_empty_init(&ge);
        asrv__send_method(ac, ch, AMQP_BASIC_GET_EMPTY, &ge);
        return;
    }
    amqp_basic_get_ok ok;
    amqp_basic_get_ok_init(&ok);
    ok.redelivered = (uint8_t)e.redelivered;
    ok.exchange = e.m->exchange;
    ok.routing_key = e.m->routing_key;
    ok.message_count = (uint32_t)q->n;
    ok.delivery_tag = m->no_ack ? ++cs->next_tag : add_unacked(cs, q, e.m, NULL, &e);
    send_content(ac, ch, AMQP_BASIC_GET_OK, &ok, e.m, q, e.off);
    if (m->no_ack) {
        asrv__store_settled(ac->as, q, e.off);
        amsg_unref(e.m);
    }
}

/* Publish ------------------------------------------------------------------ */

static void publish_reset(achan *cs)
{
    cs->pending = 0;
    free(cs->pub_hdr);
    cs->pub_hdr = NULL;
    cs->pub_hdr_len = 0;
    wbuf_reset(&cs->body);
}

static void on_publish(asrv_conn *ac, uint16_t ch, const amqp_basic_publish *m)
{
    achan *cs = chan_of(ac, ch);
    if (m->immediate) {
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, AMQP_CLASS_BASIC, 40,
                         "immediate=true is not implemented");
        return;
    }
    if (cs->confirm)
        cs->pub_seq++;
    /* WRITE on the exchange; on refusal the channel closes and its content
     * frames are discarded (a closing channel ignores them). */
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_BASIC, 40, ACL_OP_WRITE, ACL_R_TOPIC,
                               m->exchange))
        return;
    /* The exchange is checked when the message is complete (it may be
     * deleted meanwhile); the content frames must be read either way. */
    memcpy(cs->pub_exchange, m->exchange.ptr ? m->exchange.ptr : "", (size_t)slen(m->exchange));
    cs->pub_exchange_len = slen(m->exchange);
    memcpy(cs->pub_key, m->routing_key.ptr ? m->routing_key.ptr : "",
           (size_t)slen(m->routing_key));
    cs->pub_key_len = slen(m->routing_key);
    cs->pub_mandatory = m->mandatory;
    cs->pending = 1;
}

/* Publisher confirms. Each publish in confirm mode gets an entry in its
 * channel's pending queue (ah_pending.c), in publish order; it is ready at
 * once unless the message was appended to queue partitions, then when every
 * one of them is durable up to the append (one group-commit fsync serves
 * all publishers). Ready confirms at the head leave together: one basic.ack
 * with multiple=1 for a run (basic.nack when a sync failed). */
static void confirms_flush(asrv_conn *ac, uint16_t ch)
{
    achan *cs = chan_of(ac, ch);
    if (!cs)
        return;
    uint64_t seq;
    int failed;
    while (asrv__pending_peek(&cs->confirms, &seq, &failed)) {
        /* the run of ready confirms of the same kind */
        uint64_t upto = seq, s;
        int n = 0, f;
        while (asrv__pending_peek(&cs->confirms, &s, &f) && f == failed) {
            upto = s;
            asrv__pending_pop(&cs->confirms);
            n++;
        }
        if (failed) {
            amqp_basic_nack nk;
            amqp_basic_nack_init(&nk);
            nk.delivery_tag = upto;
            nk.multiple = (uint8_t)(n > 1);
            asrv__send_method(ac, ch, AMQP_BASIC_NACK, &nk);
        } else {
            amqp_basic_ack a;
            amqp_basic_ack_init(&a);
            a.delivery_tag = upto;
            a.multiple = (uint8_t)(n > 1);
            asrv__send_method(ac, ch, AMQP_BASIC_ACK, &a);
        }
    }
}

/* Confirms that are ready at once (transient messages, nothing to sync)
 * leave at the end of the loop pass: a burst of publishes read in one pass
 * gets one basic.ack with multiple=1 instead of one ack each. */
static void on_confirm_timer(loop_timer *t)
{
    asrv *as = t->data;
    asrv_conn *ac;
    while ((ac = as->confirm_due)) {
        as->confirm_due = ac->due_next;
        ac->due_next = NULL;
        ac->due_linked = 0;
        int n = ac->n_due;
        ac->n_due = 0;
        for (int i = 0; i < n; i++) {
            uint16_t ch = ac->due_ch[i];
            achan *cs = chan_of(ac, ch);
            if (!cs || !cs->confirm_due)
                continue; /* closed (and maybe reopened) since */
            cs->confirm_due = 0;
            if (ac->state == ASRV_OPEN)
                confirms_flush(ac, ch);
        }
    }
}

void asrv__basic_init(asrv *as)
{
    loop_timer_init(&as->confirm_timer, on_confirm_timer, as);
}

void asrv__basic_fini(asrv *as)
{
    loop_timer_stop(as->l, &as->confirm_timer);
    as->confirm_due = NULL;
}

static void confirm_due(asrv_conn *ac, uint16_t ch, achan *cs)
{
    if (cs->confirm_due)
        return;
    cs->confirm_due = 1;
    if (ac->n_due == ac->cap_due) {
        ac->cap_due = ac->cap_due ? ac->cap_due * 2 : 4;
        ac->due_ch = xrealloc(ac->due_ch, (size_t)ac->cap_due * sizeof(*ac->due_ch));
    }
    ac->due_ch[ac->n_due++] = ch;
    asrv *as = ac->as;
    if (!ac->due_linked) {
        ac->due_linked = 1;
        ac->due_next = as->confirm_due;
        as->confirm_due = ac;
    }
    if (!loop_timer_armed(&as->confirm_timer))
        loop_timer_start(as->l, &as->confirm_timer, 0);
}

static void confirm_add(asrv_conn *ac, uint16_t ch, achan *cs, const astored *st)
{
    if (asrv__pending_add(&cs->confirms, ac, ch, cs->pub_seq, st, confirms_flush))
        confirm_due(ac, ch, cs);
}

static void publish_done(asrv_conn *ac, uint16_t ch, achan *cs)
{
    amsg *m = xcalloc(1, sizeof(*m));
    m->refs = 1;
    size_t xl = (size_t)cs->pub_exchange_len, kl = (size_t)cs->pub_key_len;
    m->buf = xmalloc(xl + kl + 1);
    memcpy(m->buf, cs->pub_exchange, xl);
    memcpy(m->buf + xl, cs->pub_key, kl);
    m->exchange = (cn_str){m->buf, (int32_t)xl};
    m->routing_key = (cn_str){m->buf + xl, (int32_t)kl};
    m->hdr = cs->pub_hdr;
    m->hdr_len = cs->pub_hdr_len;
    cs->pub_hdr = NULL;
    m->body_len = cs->body.len;
    m->body = xmalloc(m->body_len ? m->body_len : 1);
    if (m->body_len)
        memcpy(m->body, cs->body.buf, m->body_len);
    asrv__mem_charge(ac->as, m);
    asrv__mem_add(ac->as, -(int64_t)cs->body.len); /* the assembled copy goes */
    publish_reset(cs);

    amqp_content_header h;
    amqp_table headers = {NULL, 0};
    if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) == 0) {
        if (h.props.flags & AMQP_BASIC_FLAG_HEADERS)
            headers = h.props.headers;
        m->persistent = (h.props.flags & AMQP_BASIC_FLAG_DELIVERY_MODE) &&
                        h.props.delivery_mode == 2;
        if ((h.props.flags & AMQP_BASIC_FLAG_REPLY_TO) && asrv__reply_is_queue(h.props.reply_to)) {
            if (asrv__reply_rewrite(ac, ch, cs, m) < 0) {
                amsg_unref(m);
                return;
            }
            /* m->hdr was replaced: headers must view the new bytes */
            if ((h.props.flags & AMQP_BASIC_FLAG_HEADERS) &&
                amqp_content_header_decode(m->hdr, m->hdr_len, &h) == 0)
                headers = h.props.headers;
        }
    }
    if (cs->tx) { /* transactions: routed at tx.commit (ah_tx.c) */
        asrv__tx_publish(ac, ch, cs, m, cs->pub_mandatory);
        return;
    }
    if (asrv__msg_props(m) < 0) { /* priority, expiration (queue arguments) */
        amsg_unref(m);
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 40,
                         "invalid expiration property (not a non-negative integer of ms)");
        return;
    }
    astored st = {0};
    int n = asrv__route(ac->as, m->exchange.ptr, m->exchange.len, m, headers, &st);
    if (n < 0) {
        free(st.p);
        free(st.target);
        amsg_unref(m);
        if (n == -2)
            asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_BASIC, 40,
                             "cannot publish to internal exchange '%.*s' in vhost '/'", (int)xl,
                             cs->pub_exchange);
        else
            asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_BASIC, 40,
                             "no exchange '%.*s' in vhost '/'", (int)xl, cs->pub_exchange);
        return;
    }
    if (n == 0 && cs->pub_mandatory) {
        amqp_basic_return r;
        amqp_basic_return_init(&r);
        r.reply_code = AMQP_NO_ROUTE;
        r.reply_text = cn_str_c("NO_ROUTE");
        r.exchange = m->exchange;
        r.routing_key = m->routing_key;
        send_content(ac, ch, AMQP_BASIC_RETURN, &r, m, NULL, -1);
    }
    if (cs->confirm)
        confirm_add(ac, ch, cs, &st);
    free(st.p);
    free(st.target);
    amsg_unref(m);
}

void ah_content(asrv_conn *ac, uint16_t ch, const amqp_frame *f)
{
    achan *cs = chan_of(ac, ch);
    if (f->type == AMQP_FRAME_HEADER && cs->pending == 1) {
        amqp_content_header h;
        if (amqp_content_header_decode(f->payload, f->size, &h) < 0) {
            asrv__conn_error(ac, AMQP_FRAME_ERROR, 0, 0, "malformed content header on channel %u",
                             ch);
            return;
        }
        if (h.body_size > (uint64_t)512 << 20) {
            asrv__conn_error(ac, AMQP_FRAME_ERROR, 0, 0,
                             "message body of %llu bytes above 512 MiB",
                             (unsigned long long)h.body_size);
            return;
        }
        cs->pub_hdr = (uint8_t *)xmalloc(f->size ? f->size : 1);
        memcpy(cs->pub_hdr, f->payload, f->size);
        cs->pub_hdr_len = f->size;
        cs->body_size = h.body_size;
        cs->pending = 2;
        if (h.body_size == 0)
            publish_done(ac, ch, cs);
        return;
    }
    if (f->type == AMQP_FRAME_BODY && cs->pending == 2) {
        if (cs->body.len + f->size > cs->body_size) {
            asrv__conn_error(ac, AMQP_FRAME_ERROR, 0, 0,
                             "body frames exceed the announced body size %llu",
                             (unsigned long long)cs->body_size);
            return;
        }
        wbuf_append(&cs->body, f->payload, f->size);
        asrv__mem_add(ac->as, f->size);
        if (cs->body.len == cs->body_size)
            publish_done(ac, ch, cs);
        return;
    }
    asrv__conn_error(ac, AMQP_UNEXPECTED_FRAME, 0, 0,
                     "content frame (type %u) on channel %u out of order", f->type, ch);
}

/* Channel life ------------------------------------------------------------- */

void asrv__chan_release(asrv_conn *ac, uint16_t ch)
{
    achan *cs = chan_of(ac, ch);
    if (!cs)
        return;
    ac->cs[ch] = NULL; /* its consumers take nothing more */
    /* Unacked deliveries back to their queues, redelivered, in tag order. */
    adelivery *un = cs->unacked;
    size_t n = cs->n_unacked;
    for (size_t i = n; i-- > 0;) {
        if (!un[i].q->deleted && !un[i].q->stream)
            asrv__queue_push_t(un[i].q, un[i].m, 1, un[i].seq, un[i].off, un[i].t);
        amsg_unref(un[i].m);
    }
    cs->n_unacked = 0;
    asrv__pending_orphan(&cs->confirms);
    asrv__tx_release(cs);
    while (cs->n_cons)
        consumer_remove(ac, cs, cs->cons[cs->n_cons - 1]);
    for (size_t i = 0; i < n; i++)
        asrv__dispatch(un[i].q);
    for (size_t i = 0; i < n; i++)
        asrv__queue_unref(un[i].q);
    free(un);
    free(cs->cons);
    free(cs->pub_hdr);
    asrv__mem_add(ac->as, -(int64_t)cs->body.len);
    wbuf_fini(&cs->body);
    free(cs);
}

void asrv__conn_release(asrv_conn *ac)
{
    if (ac->cs)
        for (uint32_t ch = 1; ch <= ac->channel_max; ch++)
            asrv__chan_release(ac, (uint16_t)ch);
    asrv *as = ac->as;
    if (ac->due_linked && as) /* off the end-of-pass confirm list */
        for (asrv_conn **pp = &as->confirm_due; *pp; pp = &(*pp)->due_next)
            if (*pp == ac) {
                *pp = ac->due_next;
                break;
            }
    ac->due_linked = 0;
    ac->due_next = NULL;
    free(ac->due_ch);
    ac->due_ch = NULL;
    ac->n_due = ac->cap_due = 0;
    if (!as)
        return;
    for (int i = as->n_q - 1; i >= 0; i--) {
        if (i >= as->n_q)
            continue;
        aqueue *q = as->q[i];
        if (q->exclusive && q->owner == ac)
            asrv__queue_delete(as, q);
    }
}

/* Dispatch ------------------------------------------------------------------ */

void ah_basic(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    achan *cs = chan_of(ac, ch);
    switch (m->info->id) {
    case AMQP_BASIC_QOS: {
        const amqp_basic_qos *a = &m->args.basic_qos;
        if (a->prefetch_size) {
            asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, m->class_id, m->method_id,
                             "prefetch_size %u is not implemented (use 0)", a->prefetch_size);
            return;
        }
        if (a->global)
            cs->prefetch_global = a->prefetch_count;
        else
            cs->prefetch = a->prefetch_count;
        amqp_basic_qos_ok ok;
        amqp_basic_qos_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_BASIC_QOS_OK, &ok);
        if (a->global)
            dispatch_channel(cs); /* a raised or removed limit applies at once */
        return;
    }
    case AMQP_BASIC_CONSUME:
        on_consume(ac, ch, &m->args.basic_consume);
        return;
    case AMQP_BASIC_CANCEL:
        on_cancel(ac, ch, &m->args.basic_cancel);
        return;
    case AMQP_BASIC_PUBLISH:
        on_publish(ac, ch, &m->args.basic_publish);
        return;
    case AMQP_BASIC_GET:
        on_get(ac, ch, &m->args.basic_get);
        return;
    case AMQP_BASIC_ACK:
        on_settle(ac, ch, m, m->args.basic_ack.delivery_tag, m->args.basic_ack.multiple,
                  SETTLE_ACK);
        return;
    case AMQP_BASIC_REJECT:
        on_settle(ac, ch, m, m->args.basic_reject.delivery_tag, 0,
                  m->args.basic_reject.requeue ? SETTLE_REQUEUE : SETTLE_DROP);
        return;
    case AMQP_BASIC_NACK:
        on_settle(ac, ch, m, m->args.basic_nack.delivery_tag, m->args.basic_nack.multiple,
                  m->args.basic_nack.requeue ? SETTLE_REQUEUE : SETTLE_DROP);
        return;
    case AMQP_BASIC_RECOVER:
    case AMQP_BASIC_RECOVER_ASYNC: {
        settle(ac, cs, 0, cs->n_unacked, SETTLE_REQUEUE);
        if (m->info->id == AMQP_BASIC_RECOVER) {
            amqp_basic_recover_ok ok;
            amqp_basic_recover_ok_init(&ok);
            asrv__send_method(ac, ch, AMQP_BASIC_RECOVER_OK, &ok);
        }
        return;
    }
    case AMQP_CONFIRM_SELECT:
        if (cs->tx) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, m->class_id, m->method_id,
                             "cannot switch from tx to confirm mode");
            return;
        }
        cs->confirm = 1;
        if (!m->args.confirm_select.nowait) {
            amqp_confirm_select_ok ok;
            amqp_confirm_select_ok_init(&ok);
            asrv__send_method(ac, ch, AMQP_CONFIRM_SELECT_OK, &ok);
        }
        return;
    default:
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, m->class_id, m->method_id,
                         "%s is not implemented yet", m->info->name);
        return;
    }
}

/* For ah_tx.c ---------------------------------------------------------------- */

void asrv__chan_settle(asrv_conn *ac, achan *cs, size_t lo, size_t hi, int how)
{
    settle(ac, cs, lo, hi, how);
}

ssize_t asrv__chan_find_tag(const achan *cs, uint64_t tag)
{
    return find_tag(cs, tag);
}

void asrv__send_content(asrv_conn *ac, uint16_t ch, uint32_t id, const void *args,
                        const amsg *m)
{
    send_content(ac, ch, id, args, m, NULL, -1);
}
