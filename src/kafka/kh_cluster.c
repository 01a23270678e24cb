/* ApiVersions, Metadata and DescribeCluster: what the cluster looks like.
 * A single node is every partition's leader and only replica. In a cluster
 * (src/cluster) the brokers are its nodes with the Kafka addresses their
 * HELLOs gave (a node not heard from yet is left out); a replicated
 * partition's leader is its Raft leader (LEADER_NOT_AVAILABLE while none is
 * known), its epoch the term, its replicas the group's voters, its ISR (on
 * the leader) the voters in contact and caught up with the commit index
 * (fill_replicas), its offline replicas those this node is not connected
 * to. */
#include <string.h>

#include "kafka/kafka.h"
#include "util/common.h"

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


static int node_connected(kreq *q, int32_t id)
{
    cluster *cl = ksrv_cluster(q->ks);
    if (!cl || id == broker_node_id(q->b))
        return 1;
    cluster_member m;
    return cluster_member_by_id(cl, id, &m) && m.connected;
}

/* Replicas of p (the Raft group's voters), the ISR and the offline ones.
 * ISR: on the leader, the replicas in sync (broker_partition_in_sync: in
 * contact and caught up with the commit index lately); elsewhere (no match
 * indexes here) the known leader and the replicas this node is connected
 * to. Offline: replicas this node has no connection to. */
static void fill_replicas(kreq *q, partition *part,
                          kafka_metadata_response_metadata_response_partition *p)
{
    int32_t ids[64];
    int n = broker_partition_replicas(part, ids, (int)CN_ARRAY_LEN(ids));
    n = CN_MIN(n, (int)CN_ARRAY_LEN(ids));
    int32_t leader = broker_partition_leader(part);
    KARR_ALLOC(q, p->replica_nodes, n);
    KARR_ALLOC(q, p->isr_nodes, n);
    KARR_ALLOC(q, p->offline_replicas, n);
    int n_isr = 0, n_off = 0;
    for (int k = 0; k < n; k++) {
        p->replica_nodes.items[k] = ids[k];
        int conn = node_connected(q, ids[k]);
        int sync = broker_partition_in_sync(part, ids[k]);
        if (sync < 0)
            sync = ids[k] == leader || (conn && leader >= 0);
        if (sync)
            p->isr_nodes.items[n_isr++] = ids[k];
        if (!conn)
            p->offline_replicas.items[n_off++] = ids[k];
    }
    p->isr_nodes.n = n_isr;
    p->offline_replicas.n = n_off;
}

/* The cluster's controller (the metadata group's leader). While none is
 * known (an election), this node: a client that sends it CreateTopics gets
 * NOT_CONTROLLER and looks again, where -1 would make librdkafka's admin
 * client wait for a metadata refresh that may be minutes away. */
static int32_t controller_id(kreq *q)
{
    cluster *cl = ksrv_cluster(q->ks);
    int32_t id = cl ? cluster_controller_hint(cl) : -1;
    return id >= 0 ? id : broker_node_id(q->b);
}

static void fill_topic(kreq *q, kafka_metadata_response_metadata_response_topic *rt, topic *t)
{
    rt->error_code = KERR_NONE;
    rt->name = kstr_c(t->name);
    rt->topic_id = t->id;
    rt->is_internal = 0;
    rt->topic_authorized_operations = AUTH_OPS_UNSET;
    KARR_ALLOC(q, rt->partitions, t->n_parts);
    for (int32_t i = 0; i < t->n_parts; i++) {
        kafka_metadata_response_metadata_response_partition *p = &rt->partitions.items[i];
        p->partition_index = i;
        p->leader_id = broker_partition_leader_hint(t->parts[i]);
        p->error_code = p->leader_id < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_NONE;
        p->leader_epoch = broker_partition_epoch(t->parts[i]);
        fill_replicas(q, t->parts[i], p);
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
    cluster *cl = ksrv_cluster(q->ks);
    int nn = 0;
    if (cl)
        cluster_node_ids(cl, &nn);
    KARR_ALLOC(q, rsp.brokers, cl ? nn : 1);
    rsp.brokers.items[0].node_id = broker_node_id(q->b);
    kreq_advertised(q, &rsp.brokers.items[0].host, &rsp.brokers.items[0].port);
    rsp.brokers.items[0].rack = (kstr){NULL, -1};
    if (cl) {
        int k = 1; /* this node first, with the address it really listens on */
        for (int i = 0; i < nn; i++) {
            cluster_member m = cluster_member_at(cl, i);
            if (m.id == broker_node_id(q->b) || m.kafka_port <= 0)
                continue;
            rsp.brokers.items[k].node_id = m.id;
            kreq_member_addr(q, &m, &rsp.brokers.items[k].host, &rsp.brokers.items[k].port);
            rsp.brokers.items[k].rack = (kstr){NULL, -1};
            k++;
        }
        rsp.brokers.n = k;
    }
    rsp.cluster_id = kstr_c(broker_cluster_id(q->b));
    rsp.controller_id = controller_id(q);
    rsp.cluster_authorized_operations = AUTH_OPS_UNSET;
    /* v0: an empty list means all topics; v1+: null means all. */
    int all = req.topics.n < 0 || (q->ver == 0 && req.topics.n == 0);
    if (all) {
        KARR_ALLOC(q, rsp.topics, broker_topic_count(q->b));
        int i = 0;
        for (topic *t = broker_topics(q->b); t; t = t->lnext)
            if (kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, kstr_c(t->name)))
                fill_topic(q, &rsp.topics.items[i++], t); /* the others stay unseen */
        rsp.topics.n = i;
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
                if (!t || !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, kstr_c(t->name))) {
                    rt->error_code = KERR_UNKNOWN_TOPIC_ID; /* an id tells nothing either */
                    continue;
                }
            } else {
                rt->name = kreq_strdup(q, rq->name);
                if (!broker_topic_name_valid(rq->name)) {
                    rt->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                    continue;
                }
                if (!kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, rq->name)) {
                    rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                    continue;
                }
                /* auto-creation needs CREATE on the cluster or the topic */
                int may_create = auto_ok && (kreq_cluster_allowed(q, ACL_OP_CREATE) ||
                                             kreq_allowed(q, ACL_OP_CREATE, ACL_R_TOPIC, rq->name));
                t = may_create ? broker_topic_auto_create(q->b, rq->name)
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
    } else if (!kreq_cluster_allowed(q, ACL_OP_DESCRIBE)) {
        rsp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        rsp.error_message = kstr_c("DESCRIBE on the cluster is needed");
    }
    rsp.cluster_id = kstr_c(broker_cluster_id(q->b));
    rsp.controller_id = controller_id(q);
    rsp.cluster_authorized_operations = AUTH_OPS_UNSET;
    cluster *cl = ksrv_cluster(q->ks);
    int nn = 0;
    if (cl)
        cluster_node_ids(cl, &nn);
    KARR_ALLOC(q, rsp.brokers, rsp.error_code ? 0 : cl ? nn : 1);
    if (!rsp.error_code) {
        rsp.brokers.items[0].broker_id = broker_node_id(q->b);
        kreq_advertised(q, &rsp.brokers.items[0].host, &rsp.brokers.items[0].port);
        rsp.brokers.items[0].rack = (kstr){NULL, -1};
        int k = 1; /* the other members, as Metadata lists them */
        for (int i = 0; cl && i < nn; i++) {
            cluster_member m = cluster_member_at(cl, i);
            if (m.id == broker_node_id(q->b) || m.kafka_port <= 0)
                continue;
            rsp.brokers.items[k].broker_id = m.id;
            kreq_member_addr(q, &m, &rsp.brokers.items[k].host, &rsp.brokers.items[k].port);
            rsp.brokers.items[k].rack = (kstr){NULL, -1};
            k++;
        }
        if (cl)
            rsp.brokers.n = k;
    }
    kafka_describe_cluster_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* FindCoordinator. Groups: the leader of __consumer_offsets-0 (this node
 * on a single node; in a cluster the node the Raft group elected, with the
 * Kafka address its HELLO gave; COORDINATOR_NOT_AVAILABLE while no leader
 * or address is known: clients retry). Transactional ids: the leader of
 * __transaction_state-0 the same way (txn_coordinator). */
typedef struct coord_addr {
    int32_t node;
    kstr host;
    int32_t port;
} coord_addr;

static int16_t coordinator_of(kreq *q, int8_t key_type, kstr key, coord_addr *out,
                              const char **msg)
{
    *msg = NULL;
    out->node = broker_node_id(q->b);
    kreq_advertised(q, &out->host, &out->port);
    if (key_type == 0) {
        if (key.len <= 0) {
            *msg = "empty group id";
            return KERR_INVALID_GROUP_ID;
        }
    } else if (key_type == 1) {
        if (key.len <= 0) {
            *msg = "empty transactional id";
            return KERR_INVALID_REQUEST;
        }
    } else {
        *msg = "unknown coordinator key type";
        return KERR_INVALID_REQUEST;
    }
    if (!kreq_allowed(q, ACL_OP_DESCRIBE, key_type == 0 ? ACL_R_GROUP : ACL_R_TXN_ID, key))
        return key_type == 0 ? KERR_GROUP_AUTHORIZATION_FAILED
                             : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    int32_t id = key_type == 0 ? grp_coord_node(ksrv_groups(q->ks))
                               : txn_coordinator(ksrv_txn(q->ks));
    if (id == out->node)
        return KERR_NONE;
    cluster *cl = ksrv_cluster(q->ks);
    cluster_member m;
    if (cl && id >= 0 && cluster_member_by_id(cl, id, &m) && m.kafka_port > 0) {
        out->node = id;
        kreq_member_addr(q, &m, &out->host, &out->port);
        return KERR_NONE;
    }
    *msg = "the coordinator is not known yet";
    return KERR_COORDINATOR_NOT_AVAILABLE;
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
    const char *msg;
    coord_addr a;
    if (q->ver < 4) {
        rsp.error_code = coordinator_of(q, req.key_type, req.key, &a, &msg);
        rsp.error_message = msg ? kstr_c(msg) : (kstr){NULL, -1};
        rsp.node_id = rsp.error_code ? -1 : a.node;
        rsp.host = rsp.error_code ? kstr_c("") : a.host;
        rsp.port = rsp.error_code ? -1 : a.port;
    } else {
        int32_t n = req.coordinator_keys.n > 0 ? req.coordinator_keys.n : 0;
        KARR_ALLOC(q, rsp.coordinators, n);
        for (int32_t i = 0; i < n; i++) {
            kafka_find_coordinator_response_coordinator *c = &rsp.coordinators.items[i];
            c->key = req.coordinator_keys.items[i];
            c->error_code = coordinator_of(q, req.key_type, c->key, &a, &msg);
            c->error_message = msg ? kstr_c(msg) : (kstr){NULL, -1};
            c->node_id = c->error_code ? -1 : a.node;
            c->host = c->error_code ? kstr_c("") : a.host;
            c->port = c->error_code ? -1 : a.port;
        }
    }
    kafka_find_coordinator_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
