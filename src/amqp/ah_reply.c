/* Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to` pseudo-queue), the
 * server-side half of the RPC pattern without a reply queue per client.
 *
 * 1. The requester consumes from "amq.rabbitmq.reply-to" with no-ack (an
 *    acking consumer is 406 PRECONDITION_FAILED, as RabbitMQ). One such
 *    consumer per channel; no queue exists, nothing is stored.
 * 2. It publishes a request on that same channel with the reply_to
 *    property "amq.rabbitmq.reply-to". The server rewrites the property to
 *    "amq.rabbitmq.reply-to.<conn>.<channel>.<consumer>" (decimal numbers:
 *    the connection's uid, the channel, the reply consumer's number), so
 *    the responder learns where to answer. Publishing it from a channel
 *    without a reply consumer is 406.
 * 3. The responder publishes the reply to the default exchange with that
 *    name as routing key: it goes straight to the reply consumer (no queue,
 *    no ack, never stored, lost if the requester is gone; a mandatory
 *    publish is then returned 312 NO_ROUTE).
 *
 * The name is not a secret (there are no permissions yet): anyone who
 * knows it can answer. Lookups scan the open connections (as->conns). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

#define REPLY_Q "amq.rabbitmq.reply-to"
#define REPLY_Q_LEN 21

int asrv__reply_is_queue(cn_str name)
{
    return name.len == REPLY_Q_LEN && memcmp(name.ptr, REPLY_Q, REPLY_Q_LEN) == 0;
}

static int is_reply_key(cn_str key)
{
    return key.len > REPLY_Q_LEN + 1 && memcmp(key.ptr, REPLY_Q ".", REPLY_Q_LEN + 1) == 0;
}

void asrv__reply_consume(asrv_conn *ac, uint16_t ch, achan *cs, const amqp_basic_consume *m)
{
    if (!m->no_ack) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 20,
                         "reply consumer cannot acknowledge");
        return;
    }
    if (cs->reply_id) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 20,
                         "reply consumer already set");
        return;
    }
    char gen[64];
    cn_str tag = m->consumer_tag;
    if (tag.len <= 0) {
        int n = snprintf(gen, sizeof(gen), "amq.ctag-reply-%" PRIu64, ac->as->gen + 1);
        tag = (cn_str){gen, n};
    }
    cs->reply_id = ++ac->as->gen;
    memcpy(cs->reply_tag, tag.ptr, (size_t)tag.len);
    cs->reply_tag_len = tag.len;
    if (!m->nowait) {
        amqp_basic_consume_ok ok;
        amqp_basic_consume_ok_init(&ok);
        ok.consumer_tag = tag;
        asrv__send_method(ac, ch, AMQP_BASIC_CONSUME_OK, &ok);
    }
}

int asrv__reply_cancel(achan *cs, cn_str tag)
{
    if (!cs->reply_id || tag.len != cs->reply_tag_len ||
        memcmp(tag.ptr, cs->reply_tag, (size_t)tag.len) != 0)
        return 0;
    cs->reply_id = 0;
    cs->reply_tag_len = 0;
    return 1;
}

int asrv__reply_rewrite(asrv_conn *ac, uint16_t ch, achan *cs, amsg *m)
{
    amqp_content_header h;
    if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) < 0 ||
        !(h.props.flags & AMQP_BASIC_FLAG_REPLY_TO) || !asrv__reply_is_queue(h.props.reply_to))
        return 0;
    if (!cs->reply_id) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 40,
                         "fast reply consumer does not exist");
        return -1;
    }
    char name[128];
    int n = snprintf(name, sizeof(name), REPLY_Q ".%" PRIu64 ".%u.%" PRIu64, ac->uid,
                     (unsigned)ch, cs->reply_id);
    h.props.reply_to = (cn_str){name, n};
    wbuf w;
    wbuf_init(&w);
    if (amqp_content_header_encode(&w, &h) < 0) {
        wbuf_fini(&w);
        return 0; /* cannot happen for a header that decoded; keep it as sent */
    }
    free(m->hdr);
    m->hdr = w.buf; /* the bytes move to m (no splices in w) */
    m->hdr_len = w.len;
    return 0;
}

int asrv__reply_deliver(asrv *as, const amsg *m)
{
    if (!is_reply_key(m->routing_key))
        return -1;
    /* <conn>.<channel>.<consumer> after the prefix */
    char tail[96];
    int32_t tl = m->routing_key.len - (REPLY_Q_LEN + 1);
    if (tl <= 0 || tl >= (int32_t)sizeof(tail))
        return 0;
    memcpy(tail, m->routing_key.ptr + REPLY_Q_LEN + 1, (size_t)tl);
    tail[tl] = 0;
    uint64_t uid, rid;
    unsigned ch;
    char extra;
    if (sscanf(tail, "%" SCNu64 ".%u.%" SCNu64 "%c", &uid, &ch, &rid, &extra) != 3)
        return 0;
    for (asrv_conn *ac = as->conns; ac; ac = ac->next) {
        if (ac->uid != uid)
            continue;
        if (ac->state != ASRV_OPEN || ch == 0 || ch > ac->channel_max || !ac->cs ||
            !ac->cs[ch] || ac->chan[ch] != ACH_OPEN)
            return 0;
        achan *cs = ac->cs[ch];
        if (cs->reply_id != rid)
            return 0;
        amqp_basic_deliver d;
        amqp_basic_deliver_init(&d);
        d.consumer_tag = (cn_str){cs->reply_tag, cs->reply_tag_len};
        d.delivery_tag = ++cs->next_tag;
        d.exchange = m->exchange;
        d.routing_key = m->routing_key;
        asrv__send_content(ac, (uint16_t)ch, AMQP_BASIC_DELIVER, &d, m);
        return 1;
    }
    return 0;
}
