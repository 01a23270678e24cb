/* CreateTopics, DeleteTopics, CreatePartitions. */
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
        int16_t err = KERR_NONE;
        if (dup) {
            err = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "topic listed more than once in the request");
        } else if (ct->assignments.n > 0) {
            if (n_parts != -1) {
                err = KERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "both numPartitions and replica assignments given");
            }
            for (int32_t j = 0; !err && j < ct->assignments.n; j++) {
                kafka_create_topics_request_creatable_replica_assignment *ra =
                    &ct->assignments.items[j];
                if (ra->partition_index != j || ra->broker_ids.n != 1 ||
                    ra->broker_ids.items[0] != broker_node_id(q->b)) {
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg), "assignments must name partitions 0..n-1 on broker %d",
                             broker_node_id(q->b));
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
            int32_t rf = ct->assignments.n > 0 ? 1 : ct->replication_factor;
            err = kerr_from_cn(broker_topic_create_rf(q->b, ct->name, n_parts, rf, kv, nc,
                                                      req.validate_only, msg, sizeof(msg), &t));
        }
        tr->error_code = err;
        tr->error_message = msg_str(q, msg);
        if (err)
            continue;
        tr->num_partitions = t ? t->n_parts : (n_parts == -1 ? broker_config(q->b)->num_partitions
                                                             : n_parts);
        tr->replication_factor = (int16_t)(t ? t->rf : 1);
        if (t)
            tr->topic_id = t->id;
        if (t) {
            KARR_ALLOC(q, tr->configs, TOPIC_CFG__COUNT);
            for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
                char buf[64];
                kafka_create_topics_response_creatable_topic_configs *c = &tr->configs.items[k];
                c->name = kstr_c(topic_config_name((topic_cfg_key)k));
                c->value = kreq_strdup(q, kstr_c(topic_config_value(&t->cfg, (topic_cfg_key)k,
                                                                    buf, sizeof(buf))));
                c->read_only = 0;
                c->config_source = (t->cfg.overridden & (1u << k)) ? 1 : 5;
                c->is_sensitive = 0;
            }
        }
    }
    kafka_create_topics_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
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
            if (!t) {
                r->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
        } else {
            kstr name = q->ver >= 6 ? req.topics.items[i].name : req.topic_names.items[i];
            r->name = kreq_strdup(q, name);
            t = broker_topic_find(q->b, name);
            if (!t) {
                r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
        }
        r->topic_id = t->id;
        if (r->name.len < 0)
            r->name = kreq_strdup(q, kstr_c(t->name));
        r->error_code = kerr_from_cn(broker_topic_delete(q->b, t));
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
    int32_t n = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.results, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_create_partitions_request_create_partitions_topic *ct = &req.topics.items[i];
        kafka_create_partitions_response_create_partitions_topic_result *r = &rsp.results.items[i];
        char msg[256] = "";
        r->name = ct->name;
        topic *t = broker_topic_find(q->b, ct->name);
        if (!t) {
            r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            r->error_message = NULL_STR;
            continue;
        }
        int16_t err = KERR_NONE;
        if (ct->assignments.n > 0) {
            for (int32_t j = 0; j < ct->assignments.n && !err; j++) {
                kafka_create_partitions_request_create_partitions_assignment *a =
                    &ct->assignments.items[j];
                if (a->broker_ids.n != 1 || a->broker_ids.items[0] != broker_node_id(q->b)) {
                    err = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof(msg), "every new partition must be on broker %d",
                             broker_node_id(q->b));
                }
            }
        }
        if (!err)
            err = kerr_from_cn(broker_topic_add_partitions(q->b, t, ct->count,
                                                           req.validate_only, msg, sizeof(msg)));
        r->error_code = err;
        r->error_message = msg_str(q, msg);
    }
    kafka_create_partitions_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
