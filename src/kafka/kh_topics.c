/* CreateTopics, DeleteTopics, CreatePartitions.
 *
 * In a cluster (src/cluster) topics are created, deleted and grown through
 * the metadata group: the request goes to the controller (forwarded by
 * any node), which appends the record and answers each topic once the
 * record is committed and applied on its node; the request is parked
 * meanwhile (names copied into the slot's arena). */
#include <stdio.h>
#include <string.h>

#include "kafka/kafka.h"
#include "util/common.h"

#define NULL_STR ((kstr){NULL, -1})

/* A message string in the slot arena. */
static kstr msg_str(kreq *q, const char *msg)
{
    if (!msg[0])
        return NULL_STR;
    return kreq_strdup(q, kstr_c(msg));
}

/* A CreateTopics/DeleteTopics request waiting for the metadata group. */
typedef struct topics_park {
    net_resp *resp;
    int16_t ver;
    int api;                        /* 0 create, 1 delete, 2 partitions */
    int pending;                    /* topics not answered yet, +1 while building */
    broker *b;
    kafka_create_topics_response crsp;
    kafka_delete_topics_response drsp;
    kafka_create_partitions_response prsp;
} topics_park;

typedef struct topics_wait {
    topics_park *pk;
    int32_t i;
    kreq q;                         /* a copy for kreq_alloc on the slot's arena */
} topics_wait;

static void fill_created(kreq *q, kafka_create_topics_response_creatable_topic_result *tr,
                         topic *t);

/* CreatePartitions: an explicit assignment for the new partitions, one
 * list per new partition, each as long as the topic's replication factor,
 * flattened into the slot arena for broker_topic_add_partitions (which
 * checks the nodes). NULL with msg when it cannot be one. */
static int32_t *flat_assignment(kreq *q, const topic *t,
                                const kafka_create_partitions_request_create_partitions_topic *ct,
                                char *msg, size_t msg_len)
{
    int32_t n = ct->assignments.n, want = ct->count - t->n_parts;
    if (n != want) {
        snprintf(msg, msg_len, "%d assignment(s) given for %d new partition(s)", n,
                 want > 0 ? want : 0);
        return NULL;
    }
    int32_t *flat = kreq_alloc(q, (size_t)n * (size_t)t->rf, sizeof(int32_t));
    for (int32_t j = 0; j < n; j++) {
        const kafka_int32_array *ids = &ct->assignments.items[j].broker_ids;
        if (ids->n != t->rf) {
            snprintf(msg, msg_len, "new partition %d: %d replica(s); the topic's replication "
                     "factor is %d", t->n_parts + j, ids->n < 0 ? 0 : ids->n, t->rf);
            return NULL;
        }
        memcpy(flat + (size_t)j * (size_t)t->rf, ids->items, (size_t)t->rf * sizeof(int32_t));
    }
    return flat;
}

/* The wait of topic i of a request that goes to the metadata group; the
 * request's park is made with the first one (pending 1 while the request
 * is being built: the caller drops it at the end). */
static topics_wait *park_wait(kreq *q, topics_park **pk, int api, int32_t i)
{
    if (!*pk) {
        *pk = kreq_alloc(q, 1, sizeof(**pk));
        (*pk)->resp = q->resp;
        (*pk)->ver = q->ver;
        (*pk)->b = q->b;
        (*pk)->pending = 1;
        (*pk)->api = api;
    }
    topics_wait *tw = kreq_alloc(q, 1, sizeof(*tw));
    tw->pk = *pk;
    tw->i = i;
    tw->q = *q;
    return tw;
}

static void topics_park_finish(topics_park *pk)
{
    if (pk->api == 0)
        kafka_create_topics_response_encode(&pk->resp->w, pk->ver, &pk->crsp);
    else if (pk->api == 1)
        kafka_delete_topics_response_encode(&pk->resp->w, pk->ver, &pk->drsp);
    else
        kafka_create_partitions_response_encode(&pk->resp->w, pk->ver, &pk->prsp);
    net_resp_ready(pk->resp);
}

static void topics_op_done(void *arg, int status, const char *msg)
{
    topics_wait *tw = arg;
    topics_park *pk = tw->pk;
    kstr m = msg ? kreq_strdup(&tw->q, kstr_c(msg)) : NULL_STR;
    if (pk->api == 0) {
        kafka_create_topics_response_creatable_topic_result *tr = &pk->crsp.topics.items[tw->i];
        tr->error_code = status > 0 ? KERR_NONE : kerr_from_cn(status);
        if (status == -CN_EEXIST)
            tr->error_code = KERR_TOPIC_ALREADY_EXISTS;
        if (status < 0)
            tr->error_message = m;
        if (!status)
            fill_created(&tw->q, tr, broker_topic_find(pk->b, tr->name));
    } else if (pk->api == 1) {
        pk->drsp.responses.items[tw->i].error_code =
            status == -CN_ENOENT ? KERR_UNKNOWN_TOPIC_OR_PARTITION : kerr_from_cn(status);
        if (status < 0)
            pk->drsp.responses.items[tw->i].error_message = m;
    } else {
        kafka_create_partitions_response_create_partitions_topic_result *r =
            &pk->prsp.results.items[tw->i];
        r->error_code = status >= 0 ? KERR_NONE
                        : status == -CN_ENOENT ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                               : kerr_from_cn(status);
        if (status == -CN_EPARTITIONS && !msg)
            m = kstr_c("another request changed the partition count first");
        if (status < 0)
            r->error_message = m;
    }
    if (--pk->pending == 0)
        topics_park_finish(pk);
}

void kh_create_topics(kreq *q)
{
    kafka_create_topics_request req;
    if (kafka_create_topics_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_create_topics_response rsp;
    kafka_create_topics_response_init(&rsp);
    int32_t n = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.topics, n);
    topics_park *pk = NULL;         /* a cluster: set when a topic waits for its commit */
    for (int32_t i = 0; i < n; i++) {
        kafka_create_topics_request_creatable_topic *ct = &req.topics.items[i];
        kafka_create_topics_response_creatable_topic_result *tr = &rsp.topics.items[i];
        char msg[256] = "";
        tr->name = ct->name;
        tr->error_message = NULL_STR;
        tr->num_partitions = -1;
        tr->replication_factor = -1;
        tr->configs.n = -1;
        /* A name listed twice in one request is refused for both. */
        int dup = 0;
        for (int32_t j = 0; j < n; j++)
            if (j != i && req.topics.items[j].name.len == ct->name.len &&
                memcmp(req.topics.items[j].name.ptr, ct->name.ptr, (size_t)ct->name.len) == 0)
                dup = 1;
        int32_t n_parts = ct->num_partitions;
        int32_t rf = ct->replication_factor;
        int32_t *assign = NULL;
        int16_t err = KERR_NONE;
        if (dup) {
            err = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "topic listed more than once in the request");
        } else if (!kreq_cluster_allowed(q, ACL_OP_CREATE) &&
                   !kreq_allowed(q, ACL_OP_CREATE, ACL_R_TOPIC, ct->name)) {
            err = KERR_TOPIC_AUTHORIZATION_FAILED; /* CREATE on the cluster or the topic */
            snprintf(msg, sizeof(msg), "not authorized to create this topic");
        } else if (ct->assignments.n > 0) {
            if (n_parts != -1) {
                err = KERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "both numPartitions and replica assignments given");
            }
            /* Taken as given (broker_check_assignment, where the topic is
             * created): the replication factor is the lists' length. */
            rf = ct->assignments.items[0].broker_ids.n;
            if (!err && rf > 0)
                assign = kreq_alloc(q, (size_t)ct->assignments.n * (size_t)rf, sizeof(*assign));
            for (int32_t j = 0; !err && j < ct->assignments.n; j++) {
                kafka_create_topics_request_creatable_replica_assignment *ra =
                    &ct->assignments.items[j];
                if (ra->partition_index != j) {
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg), "assignments must name partitions 0..n-1");
                } else if (rf < 1 || ra->broker_ids.n != rf) {
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg), "every partition needs the same number of "
                             "replicas, at least one");
                } else {
                    memcpy(assign + (size_t)j * (size_t)rf, ra->broker_ids.items,
                           (size_t)rf * sizeof(*assign));
                }
            }
            n_parts = ct->assignments.n;
        }
        topic *t = NULL;
        if (!err) {
            int nc = ct->configs.n > 0 ? ct->configs.n : 0;
            broker_kv *kv = kreq_alloc(q, (size_t)nc, sizeof(*kv));
            for (int j = 0; j < nc; j++) {
                kv[j].key = ct->configs.items[j].name;
                kv[j].value = ct->configs.items[j].value;
            }
            cluster *cl = ksrv_cluster(q->ks);
            if (cl) {
                topics_wait *tw = park_wait(q, &pk, 0, i);
                tr->name = kreq_strdup(q, ct->name);
                int rc = cluster_meta_create_topic(cl, ct->name, n_parts, rf, kv, nc, assign,
                                                   req.validate_only, msg, sizeof(msg),
                                                   topics_op_done, tw);
                if (rc == 0) {
                    pk->pending++;
                    tr->error_code = KERR_NONE;
                    continue; /* answered by topics_op_done */
                }
                err = rc == 1 ? KERR_NONE : kerr_from_cn(rc);
            } else {
                err = kerr_from_cn(broker_topic_create_rf(q->b, ct->name, n_parts, rf, kv, nc,
                                                          assign, req.validate_only, msg,
                                                          sizeof(msg), &t));
            }
        }
        tr->error_code = err;
        tr->error_message = msg_str(q, msg);
        if (err)
            continue;
        tr->num_partitions = t ? t->n_parts : (n_parts == -1 ? broker_config(q->b)->num_partitions
                                                             : n_parts);
        tr->replication_factor = (int16_t)(t ? t->rf : rf > 0 ? rf : 1);
        fill_created(q, tr, t);
    }
    if (pk) {
        /* Names and messages of every result must outlive the frame. */
        for (int32_t i = 0; i < n; i++) {
            rsp.topics.items[i].name = kreq_strdup(q, rsp.topics.items[i].name);
            rsp.topics.items[i].error_message = rsp.topics.items[i].error_message.len > 0
                                                    ? kreq_strdup(q, rsp.topics.items[i].error_message)
                                                    : NULL_STR;
        }
        pk->crsp = rsp;
        if (--pk->pending == 0)
            topics_park_finish(pk);
        return;
    }
    kafka_create_topics_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* The result fields of a created topic (t NULL: validate-only). */
static void fill_created(kreq *q, kafka_create_topics_response_creatable_topic_result *tr,
                         topic *t)
{
    if (!t)
        return;
    tr->num_partitions = t->n_parts;
    tr->replication_factor = (int16_t)t->rf;
    tr->topic_id = t->id;
    KARR_ALLOC(q, tr->configs, TOPIC_CFG__COUNT);
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        char buf[64];
        kafka_create_topics_response_creatable_topic_configs *c = &tr->configs.items[k];
        c->name = kstr_c(topic_config_name((topic_cfg_key)k));
        c->value = kreq_strdup(q, kstr_c(topic_config_value(&t->cfg, (topic_cfg_key)k, buf,
                                                            sizeof(buf))));
        c->read_only = 0;
        c->config_source = (t->cfg.overridden & (1u << k)) ? 1 : 5;
        c->is_sensitive = 0;
    }
}

void kh_delete_topics(kreq *q)
{
    kafka_delete_topics_request req;
    if (kafka_delete_topics_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_delete_topics_response rsp;
    kafka_delete_topics_response_init(&rsp);
    topics_park *pk = NULL;         /* a cluster: set when a topic waits for its commit */
    int32_t n = q->ver >= 6 ? req.topics.n : req.topic_names.n;
    if (n < 0)
        n = 0;
    KARR_ALLOC(q, rsp.responses, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_delete_topics_response_deletable_topic_result *r = &rsp.responses.items[i];
        r->error_message = NULL_STR;
        topic *t;
        if (q->ver >= 6 && req.topics.items[i].name.len < 0) {
            r->topic_id = req.topics.items[i].topic_id;
            r->name = NULL_STR;
            t = broker_topic_find_id(q->b, r->topic_id);
            if (!t || !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, kstr_c(t->name))) {
                r->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
            if (!kreq_allowed(q, ACL_OP_DELETE, ACL_R_TOPIC, kstr_c(t->name))) {
                r->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
        } else {
            kstr name = q->ver >= 6 ? req.topics.items[i].name : req.topic_names.items[i];
            r->name = kreq_strdup(q, name);
            if (!kreq_allowed(q, ACL_OP_DELETE, ACL_R_TOPIC, name)) {
                r->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            t = broker_topic_find(q->b, name);
            if (!t) {
                r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
        }
        r->topic_id = t->id;
        if (r->name.len < 0)
            r->name = kreq_strdup(q, kstr_c(t->name));
        cluster *cl = ksrv_cluster(q->ks);
        if (!cl) {
            r->error_code = kerr_from_cn(broker_topic_delete(q->b, t));
            continue;
        }
        topics_wait *tw = park_wait(q, &pk, 1, i);
        int rc = cluster_meta_delete_topic(cl, t, topics_op_done, tw);
        r->error_code = kerr_from_cn(rc);
        if (rc == 0)
            pk->pending++;
    }
    if (pk) {
        for (int32_t i = 0; i < n; i++)
            if (rsp.responses.items[i].name.len > 0)
                rsp.responses.items[i].name = kreq_strdup(q, rsp.responses.items[i].name);
        pk->drsp = rsp;
        if (--pk->pending == 0)
            topics_park_finish(pk);
        return;
    }
    kafka_delete_topics_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

void kh_create_partitions(kreq *q)
{
    kafka_create_partitions_request req;
    if (kafka_create_partitions_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_create_partitions_response rsp;
    kafka_create_partitions_response_init(&rsp);
    topics_park *pk = NULL;         /* a cluster: set when a topic waits for its commit */
    int32_t n = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.results, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_create_partitions_request_create_partitions_topic *ct = &req.topics.items[i];
        kafka_create_partitions_response_create_partitions_topic_result *r = &rsp.results.items[i];
        char msg[256] = "";
        r->name = ct->name;
        if (!kreq_allowed(q, ACL_OP_ALTER, ACL_R_TOPIC, ct->name)) {
            r->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            r->error_message = NULL_STR;
            continue;
        }
        topic *t = broker_topic_find(q->b, ct->name);
        if (!t) {
            r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            r->error_message = NULL_STR;
            continue;
        }
        int16_t err = KERR_NONE;
        int32_t *assign = NULL;
        if (ct->assignments.n > 0 && ct->count > t->n_parts) {
            assign = flat_assignment(q, t, ct, msg, sizeof(msg));
            if (!assign)
                err = KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        cluster *cl = ksrv_cluster(q->ks);
        if (!err && cl) {
            topics_wait *tw = park_wait(q, &pk, 2, i);
            int rc = cluster_meta_add_partitions(cl, t, ct->count, assign, req.validate_only,
                                                 msg, sizeof(msg), topics_op_done, tw);
            if (rc == 0)
                pk->pending++;
            err = rc > 0 ? KERR_NONE : kerr_from_cn(rc);
        } else if (!err) {
            err = kerr_from_cn(broker_topic_add_partitions(q->b, t, ct->count, assign,
                                                           req.validate_only, msg, sizeof(msg)));
        }
        r->error_code = err;
        r->error_message = msg_str(q, msg);
    }
    if (pk) {
        for (int32_t i = 0; i < n; i++)
            rsp.results.items[i].name = kreq_strdup(q, rsp.results.items[i].name);
        pk->prsp = rsp;
        if (--pk->pending == 0)
            topics_park_finish(pk);
        return;
    }
    kafka_create_partitions_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
