/* AlterPartitionReassignments and ListPartitionReassignments (KIP-455).
 *
 * In a cluster a reassignment is a record of the metadata group ("R",
 * src/cluster/cluster_meta.c): the request goes to the controller (any
 * node forwards it), and each partition is answered once its record is
 * applied on this node; the move itself then runs in the background
 * (src/cluster/cluster_move.c) and ListPartitionReassignments shows it
 * until it ends. A single node holds every partition alone: moving a
 * partition to this node is a move already done, any other target is
 * INVALID_REPLICA_ASSIGNMENT, a cancel is NO_REASSIGNMENT_IN_PROGRESS. */
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"
#include "kafka/kafka.h"
#include "util/common.h"

#define NULL_STR ((kstr){NULL, -1})

typedef struct move_park {
    net_resp *resp;
    int pending;                    /* partitions not answered yet, +1 while building */
    kafka_alter_partition_reassignments_response rsp;
} move_park;

typedef struct move_wait {
    move_park *pk;
    kafka_alter_partition_reassignments_response_reassignable_partition_response *out;
    kreq q;                         /* a copy for the slot's arena */
} move_wait;

static void park_finish(move_park *pk)
{
    kafka_alter_partition_reassignments_response_encode(&pk->resp->w, 0, &pk->rsp);
    net_resp_ready(pk->resp);
}

static void move_done(void *arg, int status, const char *msg)
{
    move_wait *mw = arg;
    mw->out->error_code = status < 0 ? (status == -CN_ENOENT ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                                             : kerr_from_cn(status))
                                     : KERR_NONE;
    if (status < 0 && msg)
        mw->out->error_message = kreq_strdup(&mw->q, kstr_c(msg));
    if (--mw->pk->pending == 0)
        park_finish(mw->pk);
}

/* A single node: only "this node" is a valid target, and it is one already. */
static int16_t single_node(kreq *q, const topic *t, const kafka_int32_array *ids, char *msg,
                           size_t msg_len)
{
    (void)t;
    if (ids->n < 0) {
        snprintf(msg, msg_len, "no reassignment of this partition is in progress");
        return KERR_NO_REASSIGNMENT_IN_PROGRESS;
    }
    if (ids->n != 1 || ids->items[0] != broker_node_id(q->b)) {
        snprintf(msg, msg_len, "this broker runs alone (node %d): its partitions cannot move",
                 broker_node_id(q->b));
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    return KERR_NONE;
}

void kh_alter_partition_reassignments(kreq *q)
{
    kafka_alter_partition_reassignments_request req;
    if (kafka_alter_partition_reassignments_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    move_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->pending = 1;
    kafka_alter_partition_reassignments_response *rsp = &pk->rsp;
    kafka_alter_partition_reassignments_response_init(rsp);
    if (!kreq_cluster_allowed(q, ACL_OP_ALTER)) {
        rsp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        rsp->error_message = kstr_c("ALTER on the cluster is needed to move replicas");
        KARR_ALLOC(q, rsp->responses, 0);
        kafka_alter_partition_reassignments_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    cluster *cl = ksrv_cluster(q->ks);
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp->responses, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_alter_partition_reassignments_request_reassignable_topic *rt = &req.topics.items[i];
        kafka_alter_partition_reassignments_response_reassignable_topic_response *ot =
            &rsp->responses.items[i];
        ot->name = kreq_strdup(q, rt->name);
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        KARR_ALLOC(q, ot->partitions, np);
        topic *t = broker_topic_find(q->b, rt->name);
        for (int32_t j = 0; j < np; j++) {
            kafka_alter_partition_reassignments_request_reassignable_partition *rp =
                &rt->partitions.items[j];
            kafka_alter_partition_reassignments_response_reassignable_partition_response *op =
                &ot->partitions.items[j];
            op->partition_index = rp->partition_index;
            op->error_message = NULL_STR;
            char msg[256] = "";
            if (!t || rp->partition_index < 0 || rp->partition_index >= t->n_parts) {
                op->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (!cl) {
                op->error_code = single_node(q, t, &rp->replicas, msg, sizeof(msg));
            } else {
                move_wait *mw = kreq_alloc(q, 1, sizeof(*mw));
                mw->pk = pk;
                mw->out = op;
                mw->q = *q;
                int null = rp->replicas.n < 0;
                int rc = cluster_meta_reassign(cl, t, rp->partition_index,
                                               null ? NULL : rp->replicas.items,
                                               null ? 0 : rp->replicas.n, msg, sizeof(msg),
                                               move_done, mw);
                if (rc == 0) {
                    pk->pending++;
                    continue;
                }
                op->error_code = rc == -CN_ENOENT ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                                  : kerr_from_cn(rc);
            }
            if (msg[0])
                op->error_message = kreq_strdup(q, kstr_c(msg));
        }
    }
    if (--pk->pending == 0)
        park_finish(pk);
}

/* Append the ids of a (n of them) that are in b (in_b 1) or not (0). */
static int32_t pick(const int32_t *a, int n, const int32_t *b, int in_b, int32_t *out)
{
    int32_t k = 0;
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found |= a[i] == b[j];
        if (found == in_b)
            out[k++] = a[i];
    }
    return k;
}

static void fill_partition(kreq *q, const topic *t, int32_t i,
                           kafka_list_partition_reassignments_response_ongoing_partition_reassignment *o)
{
    const int32_t *tg = broker_reassign_target(t, i), *cur = broker_assignment(t, i);
    int rf = t->rf;
    o->partition_index = i;
    o->replicas.items = kreq_alloc(q, (size_t)rf * 2, sizeof(int32_t));
    o->adding_replicas.items = kreq_alloc(q, (size_t)rf, sizeof(int32_t));
    o->removing_replicas.items = kreq_alloc(q, (size_t)rf, sizeof(int32_t));
    /* Kafka's form: replicas = the target, then those being removed. */
    memcpy(o->replicas.items, tg, (size_t)rf * sizeof(int32_t));
    o->removing_replicas.n = pick(cur, rf, tg, 0, o->removing_replicas.items);
    memcpy(o->replicas.items + rf, o->removing_replicas.items,
           (size_t)o->removing_replicas.n * sizeof(int32_t));
    o->replicas.n = rf + o->removing_replicas.n;
    o->adding_replicas.n = pick(tg, rf, cur, 0, o->adding_replicas.items);
}

/* The listed topic's running moves (every one when parts is NULL). */
static void fill_topic(kreq *q, const topic *t, const kafka_int32_array *parts,
                       kafka_list_partition_reassignments_response_ongoing_topic_reassignment *o)
{
    int32_t cap = parts ? (parts->n > 0 ? parts->n : 0) : t->n_parts, n = 0;
    KARR_ALLOC(q, o->partitions, cap);
    o->name = kstr_c(t->name);
    for (int32_t k = 0; k < cap; k++) {
        int32_t i = parts ? parts->items[k] : k;
        if (broker_reassign_target(t, i))
            fill_partition(q, t, i, &o->partitions.items[n++]);
    }
    o->partitions.n = n;
}

void kh_list_partition_reassignments(kreq *q)
{
    kafka_list_partition_reassignments_request req;
    if (kafka_list_partition_reassignments_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_list_partition_reassignments_response rsp;
    kafka_list_partition_reassignments_response_init(&rsp);
    rsp.error_message = NULL_STR;
    if (!kreq_cluster_allowed(q, ACL_OP_DESCRIBE)) {
        rsp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        rsp.error_message = kstr_c("DESCRIBE on the cluster is needed");
        KARR_ALLOC(q, rsp.topics, 0);
        kafka_list_partition_reassignments_response_encode(&q->resp->w, q->ver, &rsp);
        kreq_done(q);
        return;
    }
    int32_t cap = 0, n = 0;
    if (req.topics.n < 0) {
        for (topic *t = broker_topics(q->b); t; t = t->lnext)
            cap++;
    } else {
        cap = req.topics.n;
    }
    KARR_ALLOC(q, rsp.topics, cap);
    if (req.topics.n < 0) {
        for (topic *t = broker_topics(q->b); t; t = t->lnext)
            if (t->target)
                fill_topic(q, t, NULL, &rsp.topics.items[n++]);
    } else {
        for (int32_t k = 0; k < req.topics.n; k++) {
            topic *t = broker_topic_find(q->b, req.topics.items[k].name);
            if (t && t->target)
                fill_topic(q, t, &req.topics.items[k].partition_indexes, &rsp.topics.items[n++]);
        }
    }
    /* Topics with no running move are left out. */
    int32_t w = 0;
    for (int32_t k = 0; k < n; k++)
        if (rsp.topics.items[k].partitions.n > 0)
            rsp.topics.items[w++] = rsp.topics.items[k];
    rsp.topics.n = w;
    kafka_list_partition_reassignments_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
