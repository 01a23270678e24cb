/* Replies that wait for durability, in order per channel (amqp_int.h
 * "ah_pending.c"): publisher confirms (ah_basic.c) and tx.commit-ok
 * (ah_tx.c) share it.
 *
 * An entry waits for every partition its publish or commit was appended to
 * (an astored: partition and target offset pairs) to be durable up to the
 * target, through broker_wait_durable: one group-commit fsync serves every
 * waiter of a partition. Entries of one queue leave in the order they were
 * added: the owner takes the ready run at the head (asrv__pending_peek /
 * asrv__pending_pop) when asrv__pending_add says the new entry is ready
 * already, or when its `ready` callback runs after the last wait of some
 * entry fired.
 *
 * Ownership: the queue owns its entries. A channel that goes away calls
 * asrv__pending_orphan: entries still waiting are marked orphan and freed
 * by their last wait's callback (the broker holds pointers to their waits
 * until then); ready ones are freed at once. */
#include <stdlib.h>

#include "amqp/amqp_int.h"
#include "util/common.h"

typedef struct apending_wait {
    durable_wait w;              /* first: the callback casts back */
    struct apending *e;
} apending_wait;

struct apending {
    struct apending *next;
    uint64_t seq;
    int n_wait;                  /* partitions not durable yet */
    int failed;                  /* an append or a sync failed */
    int orphan;                  /* the channel is gone */
    asrv_conn *ac;
    uint16_t ch;
    apending_ready_fn ready;
    apending_wait *waits;
};

static void entry_free(apending *e)
{
    free(e->waits);
    free(e);
}

static void on_durable(durable_wait *w, int status)
{
    apending *e = ((apending_wait *)w)->e;
    if (status < 0)
        e->failed = 1;
    if (--e->n_wait > 0)
        return;
    if (e->orphan) {
        entry_free(e);
        return;
    }
    if (e->ac->state == ASRV_OPEN)
        e->ready(e->ac, e->ch);
}

int asrv__pending_add(apending_q *q, asrv_conn *ac, uint16_t ch, uint64_t seq, const astored *st,
                      apending_ready_fn ready)
{
    apending *e = xcalloc(1, sizeof(*e));
    e->seq = seq;
    e->ac = ac;
    e->ch = ch;
    e->ready = ready;
    e->failed = st->failed;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    if (st->n) {
        e->waits = xcalloc((size_t)st->n, sizeof(*e->waits));
        e->n_wait = st->n + 1; /* + 1 while parking: a wait may fire at once */
        for (int i = 0; i < st->n; i++) {
            e->waits[i].e = e;
            e->waits[i].w.target = st->target[i];
            e->waits[i].w.cb = on_durable;
            broker_wait_durable(ac->as->core->b, st->p[i], &e->waits[i].w);
        }
        e->n_wait--;
    }
    return e->n_wait == 0;
}

int asrv__pending_peek(const apending_q *q, uint64_t *seq, int *failed)
{
    const apending *e = q->head;
    if (!e || e->n_wait > 0)
        return 0;
    *seq = e->seq;
    *failed = e->failed;
    return 1;
}

void asrv__pending_pop(apending_q *q)
{
    apending *e = q->head;
    CN_ASSERT(e && e->n_wait == 0);
    q->head = e->next;
    if (!q->head)
        q->tail = NULL;
    entry_free(e);
}

void asrv__pending_orphan(apending_q *q)
{
    apending *e = q->head;
    while (e) {
        apending *n = e->next;
        e->next = NULL;
        if (e->n_wait > 0)
            e->orphan = 1; /* freed by its last wait */
        else
            entry_free(e);
        e = n;
    }
    q->head = q->tail = NULL;
}
