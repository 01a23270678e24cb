/* tx.select, tx.commit, tx.rollback (amqp_int.h), with RabbitMQ's
 * semantics:
 *
 * - tx.select puts the channel in tx mode for good (a second select is a
 *   no-op); on a channel in confirm mode it is 406 PRECONDITION_FAILED, as
 *   is confirm.select on a channel in tx mode (ah_basic.c). tx.commit and
 *   tx.rollback on a channel not in tx mode are 406.
 * - In tx mode a complete basic.publish is buffered (the exchange must exist
 *   and not be internal at publish time: 404 / 403 as without tx), and
 *   basic.ack/nack/reject mark the deliveries they name (adelivery.tx_settle;
 *   an unknown or already marked tag is 406, as the delivery is no longer
 *   unacked for the client).
 * - tx.commit routes the buffered publishes in publish order (basic.return
 *   312 NO_ROUTE for a mandatory one that reaches no queue, before
 *   commit-ok), then applies the marked settlements in tag order. commit-ok
 *   is sent once every queue partition a persistent message was appended to
 *   is durable (broker_wait_durable, as publisher confirms): after commit-ok
 *   the transaction's persistent messages in durable queues survive a
 *   crash. When an append or a sync failed the channel is closed with 541
 *   INTERNAL_ERROR instead (the messages may be in memory only). Commit-oks
 *   leave in commit order.
 * - tx.rollback drops the buffered publishes and unmarks the deliveries:
 *   they stay unacked on the channel (RabbitMQ does not requeue them).
 * - Routing happens at commit, not at publish (RabbitMQ computes the target
 *   queues at publish): a binding changed between the two counts as it is
 *   at commit; an exchange deleted meanwhile makes its messages unroutable.
 * - Memory: one transaction buffers at most ASRV_TX_MAX_BYTES of publishes
 *   (bodies, content headers, names and bookkeeping); the publish that
 *   would go above closes the channel with 506 RESOURCE_ERROR (logged) and
 *   the transaction is dropped. Marks cost nothing: they live in the
 *   channel's unacked deliveries.
 * - A channel that goes away drops its buffered publishes; its marked
 *   deliveries are requeued with the others (ah_basic.c); commits still
 *   waiting for durability are orphaned and freed by their last wait. */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

typedef struct atx_pub {
    amsg *m;                     /* holds a ref */
    uint8_t mandatory;
} atx_pub;

struct atx {
    atx_pub *pubs;               /* buffered publishes, in publish order */
    size_t n_pubs, cap_pubs;
    size_t bytes;                /* what they hold (bounded by ASRV_TX_MAX_BYTES) */
    apending_q commits;          /* commits not answered yet, in commit order */
};

static size_t pub_cost(const amsg *m)
{
    return sizeof(atx_pub) + sizeof(*m) + m->hdr_len + m->body_len +
           (size_t)m->exchange.len + (size_t)m->routing_key.len + 1;
}

static void drop_pubs(struct atx *t)
{
    for (size_t i = 0; i < t->n_pubs; i++)
        amsg_unref(t->pubs[i].m);
    t->n_pubs = 0;
    t->bytes = 0;
}

/* Publish and settle ------------------------------------------------------------ */

void asrv__tx_publish(asrv_conn *ac, uint16_t ch, achan *cs, amsg *m, int mandatory)
{
    struct atx *t = cs->txs;
    if (m->exchange.len > 0) {
        aexchange *x = asrv__exchange_find(ac->as, m->exchange);
        if (!x || x->internal) {
            int internal = x != NULL;
            char name[256];
            memcpy(name, m->exchange.ptr, (size_t)m->exchange.len);
            int nl = m->exchange.len;
            amsg_unref(m);
            if (internal)
                asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_BASIC, 40,
                                 "cannot publish to internal exchange '%.*s' in vhost '/'", nl,
                                 name);
            else
                asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_BASIC, 40,
                                 "no exchange '%.*s' in vhost '/'", nl, name);
            return;
        }
    }
    size_t cost = pub_cost(m);
    if (t->bytes + cost > ASRV_TX_MAX_BYTES) {
        size_t n = t->n_pubs, bytes = t->bytes;
        amsg_unref(m);
        asrv__chan_error(ac, ch, AMQP_RESOURCE_ERROR, AMQP_CLASS_BASIC, 40,
                         "transaction too large: %zu publishes (%zu bytes) buffered, this one "
                         "(%zu bytes) would pass the limit of %zu bytes before tx.commit",
                         n, bytes, cost, ASRV_TX_MAX_BYTES);
        return;
    }
    if (t->n_pubs == t->cap_pubs) {
        t->cap_pubs = t->cap_pubs ? t->cap_pubs * 2 : 8;
        t->pubs = xrealloc(t->pubs, t->cap_pubs * sizeof(*t->pubs));
    }
    t->pubs[t->n_pubs++] = (atx_pub){m, (uint8_t)(mandatory ? 1 : 0)};
    t->bytes += cost;
}

void asrv__tx_settle(asrv_conn *ac, uint16_t ch, achan *cs, const amqp_method *m, uint64_t tag,
                     int multiple, int how)
{
    size_t hi;
    if (multiple && tag == 0) {
        hi = cs->n_unacked;
    } else {
        ssize_t i = asrv__chan_find_tag(cs, tag);
        if (i < 0 || cs->unacked[i].tx_settle) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, m->class_id, m->method_id,
                             "unknown delivery tag %llu", (unsigned long long)tag);
            return;
        }
        if (!multiple) {
            cs->unacked[i].tx_settle = (uint8_t)(1 + how);
            return;
        }
        hi = (size_t)i + 1;
    }
    for (size_t k = 0; k < hi; k++)
        if (!cs->unacked[k].tx_settle)
            cs->unacked[k].tx_settle = (uint8_t)(1 + how);
}

/* Commit --------------------------------------------------------------------- */

/* Answer the ready commits at the head of the channel's queue. */
static void commits_flush(asrv_conn *ac, uint16_t ch)
{
    achan *cs = ac->cs ? ac->cs[ch] : NULL;
    if (!cs || !cs->txs)
        return;
    uint64_t seq;
    int failed;
    while (asrv__pending_peek(&cs->txs->commits, &seq, &failed)) {
        asrv__pending_pop(&cs->txs->commits);
        if (failed) {
            /* releases the channel (and its atx): nothing more to do here */
            asrv__chan_error(ac, ch, AMQP_INTERNAL_ERROR, AMQP_CLASS_TX, 20,
                             "tx.commit: a message could not be stored or synced");
            return;
        }
        amqp_tx_commit_ok ok;
        amqp_tx_commit_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_TX_COMMIT_OK, &ok);
    }
}

/* Route the buffered publishes (returns for the unroutable mandatory ones),
 * collecting the partitions to wait for in st. */
static void commit_publishes(asrv_conn *ac, uint16_t ch, struct atx *t, astored *st)
{
    for (size_t i = 0; i < t->n_pubs; i++) {
        amsg *m = t->pubs[i].m;
        amqp_content_header h;
        amqp_table headers = {NULL, 0};
        if (amqp_content_header_decode(m->hdr, m->hdr_len, &h) == 0 &&
            (h.props.flags & AMQP_BASIC_FLAG_HEADERS))
            headers = h.props.headers;
        int n = asrv__route(ac->as, m->exchange.ptr, m->exchange.len, m, headers, st);
        if (n < 0)
            slog_info("amqp connection %llu: channel %u: tx.commit: exchange '%.*s' was deleted "
                      "or made internal since the publish; the message is unroutable",
                      (unsigned long long)net_conn_id(ac->c), ch, (int)m->exchange.len,
                      m->exchange.ptr);
        if (n <= 0 && t->pubs[i].mandatory) {
            amqp_basic_return r;
            amqp_basic_return_init(&r);
            r.reply_code = AMQP_NO_ROUTE;
            r.reply_text = cn_str_c("NO_ROUTE");
            r.exchange = m->exchange;
            r.routing_key = m->routing_key;
            asrv__send_content(ac, ch, AMQP_BASIC_RETURN, &r, m);
        }
    }
    drop_pubs(t);
}

/* Apply the marked settlements, in tag order. Settling may deliver more
 * messages to this channel (appended at the end, unmarked). */
static void commit_settles(asrv_conn *ac, achan *cs)
{
    size_t i = 0;
    while (i < cs->n_unacked) {
        uint8_t mark = cs->unacked[i].tx_settle;
        if (!mark) {
            i++;
            continue;
        }
        /* the run of deliveries with the same mark */
        size_t j = i + 1;
        while (j < cs->n_unacked && cs->unacked[j].tx_settle == mark)
            j++;
        asrv__chan_settle(ac, cs, i, j, mark - 1);
    }
}

static void on_commit(asrv_conn *ac, uint16_t ch, achan *cs)
{
    struct atx *t = cs->txs;
    astored st = {0};
    commit_publishes(ac, ch, t, &st);
    commit_settles(ac, cs);
    int ready = asrv__pending_add(&t->commits, ac, ch, 0, &st, commits_flush);
    free(st.p);
    free(st.target);
    if (ready)
        commits_flush(ac, ch);
}

static void on_rollback(asrv_conn *ac, uint16_t ch, achan *cs)
{
    drop_pubs(cs->txs);
    for (size_t i = 0; i < cs->n_unacked; i++)
        cs->unacked[i].tx_settle = 0;
    amqp_tx_rollback_ok ok;
    amqp_tx_rollback_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_TX_ROLLBACK_OK, &ok);
}

/* Channel life ------------------------------------------------------------------ */

void asrv__tx_release(achan *cs)
{
    struct atx *t = cs->txs;
    if (!t)
        return;
    drop_pubs(t);
    asrv__pending_orphan(&t->commits);
    free(t->pubs);
    free(t);
    cs->txs = NULL;
    cs->tx = 0;
}

/* Dispatch ------------------------------------------------------------------- */

void ah_tx(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    achan *cs = ac->cs[ch];
    uint32_t id = m->info->id;
    if (id == AMQP_TX_SELECT) {
        if (cs->confirm) {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, m->class_id, m->method_id,
                             "cannot switch from confirm to tx mode");
            return;
        }
        if (!cs->txs)
            cs->txs = xcalloc(1, sizeof(*cs->txs));
        cs->tx = 1;
        amqp_tx_select_ok ok;
        amqp_tx_select_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_TX_SELECT_OK, &ok);
        return;
    }
    if (id != AMQP_TX_COMMIT && id != AMQP_TX_ROLLBACK) {
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, m->class_id, m->method_id,
                         "%s is not expected from a client", m->info->name);
        return;
    }
    if (!cs->tx) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, m->class_id, m->method_id,
                         "channel is not transactional");
        return;
    }
    if (id == AMQP_TX_COMMIT)
        on_commit(ac, ch, cs);
    else
        on_rollback(ac, ch, cs);
}
