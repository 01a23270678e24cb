/* The AMQP row's metrics hook (srv_frontend.metrics, called for HTTP's
 * /metrics through srv_metrics): per-queue gauges, labelled {queue}, for
 * every declared queue (vhost "/" is the only one):
 *   cairn_amqp_queues                      queues declared
 *   cairn_amqp_queue_messages_ready        messages waiting for delivery
 *   cairn_amqp_queue_messages_ready_bytes  their body bytes
 *   cairn_amqp_queue_messages_unacked      deliveries not settled yet (sent
 *                                          to a consumer or basic.get and not
 *                                          acked, nacked or rejected; those a
 *                                          transaction holds until tx.commit
 *                                          included)
 *   cairn_amqp_queue_consumers             consumers
 * Stream queues (x-queue-type stream) keep no messages of their own: their
 * ready and unacked gauges are 0 and their depth is the Kafka topic's
 * (cairn_partition_* and cairn_group_lag). The unacked count is the queue's
 * reference count minus its declaration: every unacked delivery holds one
 * reference and nothing else holds one between loop events. */
#include <stdio.h>

#include "amqp/amqp_int.h"

enum { QM_READY, QM_READY_BYTES, QM_UNACKED, QM_CONSUMERS, QM__COUNT };

static const struct {
    const char *name, *help;
} qm[QM__COUNT] = {
    [QM_READY] = {"cairn_amqp_queue_messages_ready", "AMQP messages ready for delivery."},
    [QM_READY_BYTES] = {"cairn_amqp_queue_messages_ready_bytes",
                        "Body bytes of the AMQP messages ready for delivery."},
    [QM_UNACKED] = {"cairn_amqp_queue_messages_unacked",
                    "AMQP deliveries not acknowledged, rejected or nacked yet."},
    [QM_CONSUMERS] = {"cairn_amqp_queue_consumers", "AMQP consumers of the queue."},
};

static int64_t qvalue(const aqueue *q, int k)
{
    switch (k) {
    case QM_READY: return (int64_t)q->n;
    case QM_READY_BYTES: return (int64_t)q->ready_bytes;
    case QM_UNACKED: return q->refs > 1 ? q->refs - 1 : 0;
    default: return q->n_cons;
    }
}

void asrv_metrics(asrv *as, srv_metrics_sink *m)
{
    int n = 0;
    for (int i = 0; i < as->n_q; i++)
        n += !as->q[i]->deleted;
    m->family(m, "cairn_amqp_queues", "gauge", "AMQP queues declared.");
    m->value(m, "cairn_amqp_queues", NULL, 0, n);
    for (int k = 0; k < QM__COUNT; k++) {
        m->family(m, qm[k].name, "gauge", qm[k].help);
        for (int i = 0; i < as->n_q; i++) {
            const aqueue *q = as->q[i];
            if (q->deleted)
                continue;
            char name[512];
            snprintf(name, sizeof(name), "%.*s", (int)q->name_len, q->name);
            const char *labels[] = {"queue", name};
            m->value(m, qm[k].name, labels, 1, qvalue(q, k));
        }
    }
}
