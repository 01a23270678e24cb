/* ApiVersions, Metadata and DescribeCluster: what the cluster looks like.
 * A single node is every partition's leader and only replica. */
#include <string.h>

#include "kafka/kafka.h"

#define AUTH_OPS_UNSET INT32_MIN /* Kafka's "not requested" */

void kh_api_versions(kreq *q)
{
    kafka_api_versions_request req;
    if (kafka_api_versions_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_api_versions_response rsp;
    kafka_api_versions_response_init(&rsp);
    KARR_ALLOC(q, rsp.api_keys, ksrv_n_apis);
    for (int i = 0; i < ksrv_n_apis; i++) {
        rsp.api_keys.items[i].api_key = ksrv_apis[i].key;
        rsp.api_keys.items[i].min_version = ksrv_apis[i].min;
        rsp.api_keys.items[i].max_version = ksrv_apis[i].max;
    }
    kafka_api_versions_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}


static void fill_topic(kreq *q, kafka_metadata_response_metadata_response_topic *rt, topic *t)
{
    int32_t node = broker_node_id(q->b);
    rt->error_code = KERR_NONE;
    rt->name = kstr_c(t->name);
    rt->topic_id = t->id;
    rt->is_internal = 0;
    rt->topic_authorized_operations = AUTH_OPS_UNSET;
    KARR_ALLOC(q, rt->partitions, t->n_parts);
    for (int32_t i = 0; i < t->n_parts; i++) {
        kafka_metadata_response_metadata_response_partition *p = &rt->partitions.items[i];
        p->error_code = KERR_NONE;
        p->partition_index = i;
        p->leader_id = node;
        p->leader_epoch = log_leader_epoch(t->parts[i]->log);
        KARR_ALLOC(q, p->replica_nodes, 1);
        p->replica_nodes.items[0] = node;
        KARR_ALLOC(q, p->isr_nodes, 1);
        p->isr_nodes.items[0] = node;
        KARR_ALLOC(q, p->offline_replicas, 0);
    }
}

void kh_metadata(kreq *q)
{
    kafka_metadata_request req;
    if (kafka_metadata_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_metadata_response rsp;
    kafka_metadata_response_init(&rsp);
    KARR_ALLOC(q, rsp.brokers, 1);
    rsp.brokers.items[0].node_id = broker_node_id(q->b);
    rsp.brokers.items[0].host = kstr_c(broker_adv_host(q->b));
    rsp.brokers.items[0].port = broker_adv_port(q->b);
    rsp.brokers.items[0].rack = (kstr){NULL, -1};
    rsp.cluster_id = kstr_c(broker_cluster_id(q->b));
    rsp.controller_id = broker_node_id(q->b);
    rsp.cluster_authorized_operations = AUTH_OPS_UNSET;
    /* v0: an empty list means all topics; v1+: null means all. */
    int all = req.topics.n < 0 || (q->ver == 0 && req.topics.n == 0);
    if (all) {
        KARR_ALLOC(q, rsp.topics, broker_topic_count(q->b));
        int i = 0;
        for (topic *t = broker_topics(q->b); t; t = t->lnext)
            fill_topic(q, &rsp.topics.items[i++], t);
    } else {
        /* Auto-create: always for v0-3, by the request's flag from v4. */
        int auto_ok = q->ver < 4 || req.allow_auto_topic_creation;
        KARR_ALLOC(q, rsp.topics, req.topics.n);
        for (int32_t i = 0; i < req.topics.n; i++) {
            kafka_metadata_request_metadata_request_topic *rq = &req.topics.items[i];
            kafka_metadata_response_metadata_response_topic *rt = &rsp.topics.items[i];
            rt->topic_authorized_operations = AUTH_OPS_UNSET;
            KARR_ALLOC(q, rt->partitions, 0);
            topic *t = NULL;
            if (rq->name.len < 0) {
                t = broker_topic_find_id(q->b, rq->topic_id);
                rt->topic_id = rq->topic_id;
                rt->name = (kstr){NULL, -1};
                if (!t) {
                    rt->error_code = KERR_UNKNOWN_TOPIC_ID;
                    continue;
                }
            } else {
                rt->name = kreq_strdup(q, rq->name);
                if (!broker_topic_name_valid(rq->name)) {
                    rt->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                    continue;
                }
                t = auto_ok ? broker_topic_auto_create(q->b, rq->name)
                            : broker_topic_find(q->b, rq->name);
                if (!t) {
                    rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                    continue;
                }
            }
            fill_topic(q, rt, t);
        }
    }
    kafka_metadata_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

void kh_describe_cluster(kreq *q)
{
    kafka_describe_cluster_request req;
    if (kafka_describe_cluster_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_cluster_response rsp;
    kafka_describe_cluster_response_init(&rsp);
    rsp.error_code = KERR_NONE;
    rsp.error_message = (kstr){NULL, -1};
    rsp.endpoint_type = req.endpoint_type;
    if (q->ver >= 1 && req.endpoint_type != 1) {
        rsp.error_code = KERR_UNSUPPORTED_ENDPOINT_TYPE;
        rsp.error_message = kstr_c("only broker endpoints (type 1) are served");
    }
    rsp.cluster_id = kstr_c(broker_cluster_id(q->b));
    rsp.controller_id = broker_node_id(q->b);
    rsp.cluster_authorized_operations = AUTH_OPS_UNSET;
    KARR_ALLOC(q, rsp.brokers, rsp.error_code ? 0 : 1);
    if (!rsp.error_code) {
        rsp.brokers.items[0].broker_id = broker_node_id(q->b);
        rsp.brokers.items[0].host = kstr_c(broker_adv_host(q->b));
        rsp.brokers.items[0].port = broker_adv_port(q->b);
        rsp.brokers.items[0].rack = (kstr){NULL, -1};
    }
    kafka_describe_cluster_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* FindCoordinator: this node coordinates every group. Transaction
 * coordination does not exist yet, so transaction keys get
 * COORDINATOR_NOT_AVAILABLE (clients retry, then report it). */
static int16_t coordinator_error(int8_t key_type, kstr key, const char **msg)
{
    *msg = NULL;
    if (key_type == 0) {
        if (key.len <= 0) {
            *msg = "empty group id";
            return KERR_INVALID_GROUP_ID;
        }
        return KERR_NONE;
    }
    if (key_type == 1) {
        /* This node coordinates every transactional id. */
        if (key.len <= 0) {
            *msg = "empty transactional id";
            return KERR_INVALID_REQUEST;
        }
        return KERR_NONE;
    }
    *msg = "unknown coordinator key type";
    return KERR_INVALID_REQUEST;
}

void kh_find_coordinator(kreq *q)
{
    kafka_find_coordinator_request req;
    if (kafka_find_coordinator_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_find_coordinator_response rsp;
    kafka_find_coordinator_response_init(&rsp);
    kstr host = kstr_c(broker_adv_host(q->b));
    int32_t node = broker_node_id(q->b), port = broker_adv_port(q->b);
    const char *msg;
    if (q->ver < 4) {
        rsp.error_code = coordinator_error(req.key_type, req.key, &msg);
        rsp.error_message = msg ? kstr_c(msg) : (kstr){NULL, -1};
        rsp.node_id = rsp.error_code ? -1 : node;
        rsp.host = rsp.error_code ? kstr_c("") : host;
        rsp.port = rsp.error_code ? -1 : port;
    } else {
        int32_t n = req.coordinator_keys.n > 0 ? req.coordinator_keys.n : 0;
        KARR_ALLOC(q, rsp.coordinators, n);
        for (int32_t i = 0; i < n; i++) {
            kafka_find_coordinator_response_coordinator *c = &rsp.coordinators.items[i];
            c->key = req.coordinator_keys.items[i];
            c->error_code = coordinator_error(req.key_type, c->key, &msg);
            c->error_message = msg ? kstr_c(msg) : (kstr){NULL, -1};
            c->node_id = c->error_code ? -1 : node;
            c->host = c->error_code ? kstr_c("") : host;
            c->port = c->error_code ? -1 : port;
        }
    }
    kafka_find_coordinator_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
