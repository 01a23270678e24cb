/* redelivered=true after a restart (docs/amqp-plan.md, ARCHITECTURE.md
 * "AMQP front end").
 *
 * RabbitMQ sets redelivered on every message that may have been delivered
 * before. Across a restart the broker knows this per durable queue from the
 * delivered mark `dend`: every stored offset below it may have been handed
 * to a client (basic.deliver, with or without ack, or basic.get-ok). The mark
 * is kept in the queue's ack-state record in __amqp_meta (ah_store.c,
 * write_acks) and a restart loads messages below it with redelivered=1.
 *
 * The guarantee is ordering, not an fsync: a delivery that raises the mark
 * is held back (its net_resp stays pending, so nothing after it on that
 * connection leaves either) until the flush that ends the same loop pass
 * has written the ack-state record with the new mark, i.e. until the record
 * is in the kvlog's page cache. Only then are the held responses made ready
 * and written to their sockets. So after kill -9 every message a client
 * could have seen is below the recovered mark. Under power loss the record
 * is durable with the kvlog's next fsync (log.flush.interval.ms): messages
 * delivered within that window before the cut may come back with
 * redelivered=0. One record write per queue and loop pass covers all its
 * deliveries of that pass (the flush writes the ack state then anyway), so
 * the cost is the delay to the end of the pass, not a write per message.
 *
 * Deliveries below the written mark (requeued messages, a second consumer
 * of older messages) are not held. */
#include <stdlib.h>

#include "amqp/amqp_int.h"
#include "util/common.h"

int asrv__redeliver_hold(asrv *as, aqueue *q, int64_t off, net_resp *r)
{
    if (!as || !q || !q->p || q->deleted || off < 0)
        return 0;
    if (off >= q->dend) {
        q->dend = off + 1;
        asrv__store_dirty(as, q);
    }
    if (q->dend <= q->dend_written)
        return 0;
    if (as->n_held == as->cap_held) {
        as->cap_held = as->cap_held ? as->cap_held * 2 : 16;
        as->held = xrealloc(as->held, (size_t)as->cap_held * sizeof(*as->held));
    }
    as->held[as->n_held++] = r;
    return 1;
}

void asrv__redeliver_release(asrv *as)
{
    /* Making a response ready may write to its socket, fail, close the
     * connection and requeue deliveries to other consumers, which may hold
     * new responses: take the list first (asrv__store_flush comes back for
     * those). */
    net_resp **held = as->held;
    int n = as->n_held;
    as->held = NULL;
    as->n_held = as->cap_held = 0;
    for (int i = 0; i < n; i++)
        net_resp_ready(held[i]);
    free(held);
}
