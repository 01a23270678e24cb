/* DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics.
 * Broker resources are described (read-only, from the running config);
 * changing broker configs at run time is not supported. In a cluster a
 * topic's changes, validated here, go through the metadata group
 * (cluster_meta_set_configs: the controller validates again, every node
 * applies them) and the request is parked until they are committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"
#include "util/common.h"

#define NULL_STR ((kstr){NULL, -1})
#define RES_TOPIC 2
#define RES_BROKER 4

/* ConfigSource values (DescribeConfigs v1+). */
#define SRC_DYNAMIC_TOPIC 1
#define SRC_STATIC_BROKER 4
#define SRC_DEFAULT 5

/* ConfigType values (v3+). */
#define TYPE_BOOLEAN 1
#define TYPE_STRING 2
#define TYPE_INT 3
#define TYPE_LONG 5
#define TYPE_LIST 7

static const int8_t topic_cfg_type[TOPIC_CFG__COUNT] = {
    [TOPIC_CFG_RETENTION_MS] = TYPE_LONG,     [TOPIC_CFG_RETENTION_BYTES] = TYPE_LONG,
    [TOPIC_CFG_SEGMENT_BYTES] = TYPE_INT,     [TOPIC_CFG_SEGMENT_MS] = TYPE_LONG,
    [TOPIC_CFG_MAX_MESSAGE_BYTES] = TYPE_INT, [TOPIC_CFG_TIMESTAMP_TYPE] = TYPE_STRING,
    [TOPIC_CFG_CLEANUP_POLICY] = TYPE_LIST,   [TOPIC_CFG_MIN_INSYNC_REPLICAS] = TYPE_INT,
};

typedef kafka_describe_configs_response_describe_configs_resource_result cfg_entry;

static int key_wanted(const kafka_describe_configs_request_describe_configs_resource *r,
                      const char *name)
{
    if (r->configuration_keys.n < 0)
        return 1;
    for (int32_t i = 0; i < r->configuration_keys.n; i++)
        if (kstr_eq(r->configuration_keys.items[i], name))
            return 1;
    return 0;
}

static void entry_init(kreq *q, cfg_entry *e, const char *name, const char *value, int source,
                       int8_t type)
{
    e->name = kstr_c(name);
    e->value = kreq_strdup(q, kstr_c(value));
    e->read_only = 0;
    e->is_default = source == SRC_DEFAULT;
    e->config_source = (int8_t)source;
    e->is_sensitive = 0;
    KARR_ALLOC(q, e->synonyms, 0);
    e->config_type = type;
    e->documentation = NULL_STR;
}

static void describe_topic(kreq *q, const kafka_describe_configs_request_describe_configs_resource *rq,
                           kafka_describe_configs_response_describe_configs_result *res)
{
    topic *t = broker_topic_find(q->b, rq->resource_name);
    if (!t) {
        res->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        res->error_message = kstr_c("topic does not exist");
        KARR_ALLOC(q, res->configs, 0);
        return;
    }
    KARR_ALLOC(q, res->configs, TOPIC_CFG__COUNT);
    int32_t n = 0;
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        const char *name = topic_config_name((topic_cfg_key)k);
        if (!key_wanted(rq, name))
            continue;
        char buf[64];
        const char *v = topic_config_value(&t->cfg, (topic_cfg_key)k, buf, sizeof(buf));
        int src = (t->cfg.overridden & (1u << k)) ? SRC_DYNAMIC_TOPIC : SRC_DEFAULT;
        entry_init(q, &res->configs.items[n++], name, v, src, topic_cfg_type[k]);
    }
    res->configs.n = n;
}

static void describe_broker(kreq *q, const kafka_describe_configs_request_describe_configs_resource *rq,
                            kafka_describe_configs_response_describe_configs_result *res)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", broker_node_id(q->b));
    if (!kstr_eq(rq->resource_name, id) && rq->resource_name.len != 0) {
        res->error_code = KERR_INVALID_REQUEST;
        res->error_message = kstr_c("unknown broker id");
        KARR_ALLOC(q, res->configs, 0);
        return;
    }
    const cairn_config *c = broker_config(q->b);
    char v[8][32];
    struct { const char *name; const char *value; int8_t type; } rows[] = {
        {"broker.id", id, TYPE_INT},
        {"num.partitions", v[0], TYPE_INT},
        {"auto.create.topics.enable", c->auto_create_topics ? "true" : "false", TYPE_BOOLEAN},
        {"log.retention.ms", v[1], TYPE_LONG},
        {"log.retention.bytes", v[2], TYPE_LONG},
        {"log.segment.bytes", v[3], TYPE_INT},
        {"message.max.bytes", v[4], TYPE_INT},
        {"socket.request.max.bytes", v[5], TYPE_INT},
        {"log.flush.interval.ms", v[6], TYPE_LONG},
        {"log.dirs", c->log_dirs, TYPE_STRING},
        {"listeners", c->listeners, TYPE_LIST},
    };
    snprintf(v[0], 32, "%d", c->num_partitions);
    snprintf(v[1], 32, "%lld", (long long)c->retention_ms);
    snprintf(v[2], 32, "%lld", (long long)c->retention_bytes);
    snprintf(v[3], 32, "%lld", (long long)c->segment_bytes);
    snprintf(v[4], 32, "%d", c->message_max_bytes);
    snprintf(v[5], 32, "%d", c->socket_request_max_bytes);
    snprintf(v[6], 32, "%lld", (long long)c->flush_interval_ms);
    int nrows = (int)CN_ARRAY_LEN(rows);
    KARR_ALLOC(q, res->configs, nrows);
    int32_t n = 0;
    for (int i = 0; i < nrows; i++) {
        if (!key_wanted(rq, rows[i].name))
            continue;
        entry_init(q, &res->configs.items[n], rows[i].name, rows[i].value, SRC_STATIC_BROKER,
                   rows[i].type);
        res->configs.items[n].read_only = 1;
        n++;
    }
    res->configs.n = n;
}

void kh_describe_configs(kreq *q)
{
    kafka_describe_configs_request req;
    if (kafka_describe_configs_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_configs_response rsp;
    kafka_describe_configs_response_init(&rsp);
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    KARR_ALLOC(q, rsp.results, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_describe_configs_request_describe_configs_resource *rq = &req.resources.items[i];
        kafka_describe_configs_response_describe_configs_result *res = &rsp.results.items[i];
        res->resource_type = rq->resource_type;
        res->resource_name = rq->resource_name;
        res->error_code = KERR_NONE;
        res->error_message = NULL_STR;
        if (rq->resource_type == RES_TOPIC &&
            !kreq_allowed(q, ACL_OP_DESCRIBE_CONFIGS, ACL_R_TOPIC, rq->resource_name)) {
            res->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            KARR_ALLOC(q, res->configs, 0);
        } else if (rq->resource_type == RES_BROKER &&
                   !kreq_cluster_allowed(q, ACL_OP_DESCRIBE_CONFIGS)) {
            res->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            KARR_ALLOC(q, res->configs, 0);
        } else if (rq->resource_type == RES_TOPIC) {
            describe_topic(q, rq, res);
        } else if (rq->resource_type == RES_BROKER) {
            describe_broker(q, rq, res);
        } else {
            res->error_code = KERR_INVALID_REQUEST;
            res->error_message = kstr_c("unsupported resource type");
            KARR_ALLOC(q, res->configs, 0);
        }
    }
    kafka_describe_configs_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* Alter ------------------------------------------------------------------ */

/* Incremental operations. */
#define OP_SET 0
#define OP_DELETE 1
#define OP_APPEND 2
#define OP_SUBTRACT 3

typedef struct alter_op {
    kstr name;
    kstr value;
    int op;
} alter_op;

static char *cstr(kreq *q, kstr s)
{
    if (s.len < 0)
        return NULL;
    char *p = kreq_alloc(q, (size_t)s.len + 1, 1);
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = '\0';
    return p;
}

/* An alter request parked until the metadata group commits its topics. */
typedef struct cfg_park {
    net_resp *resp;
    int16_t ver;
    int incremental;
    int pending;                    /* resources not answered yet, +1 while building */
    kafka_alter_configs_response arsp;
    kafka_incremental_alter_configs_response irsp;
} cfg_park;

typedef struct cfg_wait {
    cfg_park *pk;
    int32_t i;
    kreq q;                         /* a copy for kreq_alloc on the slot's arena */
} cfg_wait;

static void cfg_park_finish(cfg_park *pk)
{
    if (pk->incremental)
        kafka_incremental_alter_configs_response_encode(&pk->resp->w, pk->ver, &pk->irsp);
    else
        kafka_alter_configs_response_encode(&pk->resp->w, pk->ver, &pk->arsp);
    net_resp_ready(pk->resp);
}

static void cfg_done(void *arg, int status, const char *msg)
{
    cfg_wait *w = arg;
    cfg_park *pk = w->pk;
    int16_t err = status >= 0 ? KERR_NONE
                  : status == -CN_ENOENT ? KERR_UNKNOWN_TOPIC_OR_PARTITION : kerr_from_cn(status);
    kstr m = status < 0 && msg ? kreq_strdup(&w->q, kstr_c(msg)) : NULL_STR;
    if (pk->incremental) {
        pk->irsp.responses.items[w->i].error_code = err;
        pk->irsp.responses.items[w->i].error_message = m;
    } else {
        pk->arsp.responses.items[w->i].error_code = err;
        pk->arsp.responses.items[w->i].error_message = m;
    }
    if (--pk->pending == 0)
        cfg_park_finish(pk);
}

/* Where a cluster's change goes: the park (made on first use) and this
 * resource's index. */
typedef struct cfg_target {
    cfg_park **pk;
    int incremental;
    int32_t i;
} cfg_target;

/* In a cluster: send the changes ops make to t (replace: the unlisted
 * overridden keys go back to defaults) to the metadata group. */
static int16_t alter_cluster(kreq *q, cluster *cl, topic *t, const alter_op *ops, int n,
                             int replace, const cfg_target *tg, char *msg, size_t msg_len)
{
    broker_kv *kv = kreq_alloc(q, (size_t)(n + TOPIC_CFG__COUNT), sizeof(*kv));
    int nk = 0;
    if (replace)
        for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
            const char *name = topic_config_name((topic_cfg_key)k);
            int listed = 0;
            for (int i = 0; i < n; i++)
                if (kstr_eq(ops[i].name, name))
                    listed = 1;
            if (!listed && (t->cfg.overridden & (1u << k)))
                kv[nk++] = (broker_kv){cn_str_c(name), {NULL, -1}};
        }
    for (int i = 0; i < n; i++)
        kv[nk++] = (broker_kv){{ops[i].name.ptr, ops[i].name.len},
                               ops[i].op == OP_DELETE ? (cn_str){NULL, -1}
                                                      : (cn_str){ops[i].value.ptr,
                                                                 ops[i].value.len}};
    cfg_park *pk = *tg->pk;
    if (!pk) {
        pk = *tg->pk = kreq_alloc(q, 1, sizeof(*pk));
        pk->resp = q->resp;
        pk->ver = q->ver;
        pk->incremental = tg->incremental;
        pk->pending = 1;
    }
    cfg_wait *w = kreq_alloc(q, 1, sizeof(*w));
    w->pk = pk;
    w->i = tg->i;
    w->q = *q;
    int rc = cluster_meta_set_configs(cl, t, kv, nk, 0, msg, msg_len, cfg_done, w);
    if (rc == 0)
        pk->pending++;
    return rc >= 0 ? KERR_NONE : kerr_from_cn(rc);
}

/* Apply ops to topic t. replace: keys not listed go back to defaults
 * (AlterConfigs). Validates everything first; changes nothing on error.
 * In a cluster (tg set) the change goes to the metadata group. */
static int16_t alter_topic(kreq *q, topic *t, const alter_op *ops, int n, int replace,
                           int validate_only, const cfg_target *tg, char *msg, size_t msg_len)
{
    cluster *cl = ksrv_cluster(q->ks);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && cl && !validate_only)
            return alter_cluster(q, cl, t, ops, n, replace, tg, msg, msg_len);
        int dry = pass == 0 || validate_only;
        if (pass == 1 && validate_only)
            break;
        if (replace) {
            for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
                const char *name = topic_config_name((topic_cfg_key)k);
                int listed = 0;
                for (int i = 0; i < n; i++)
                    if (kstr_eq(ops[i].name, name))
                        listed = 1;
                if (!listed && (t->cfg.overridden & (1u << k))) {
                    int e = broker_topic_set_config(q->b, t, name, NULL, dry, msg, msg_len);
                    if (e)
                        return kerr_from_cn(e);
                }
            }
        }
        for (int i = 0; i < n; i++) {
            char *key = cstr(q, ops[i].name);
            char *val = cstr(q, ops[i].value);
            if (!key)
                return KERR_INVALID_CONFIG;
            if (ops[i].op == OP_APPEND || ops[i].op == OP_SUBTRACT) {
                snprintf(msg, msg_len, "APPEND/SUBTRACT are only valid for list configs; %s is "
                                       "not one Cairn accepts them for", key);
                return KERR_INVALID_CONFIG;
            }
            if (ops[i].op != OP_SET && ops[i].op != OP_DELETE) {
                snprintf(msg, msg_len, "unknown config operation %d", ops[i].op);
                return KERR_INVALID_REQUEST;
            }
            if (ops[i].op == OP_SET && !val) {
                snprintf(msg, msg_len, "null value for %s", key);
                return KERR_INVALID_CONFIG;
            }
            int e = broker_topic_set_config(q->b, t, key, ops[i].op == OP_DELETE ? NULL : val,
                                            dry, msg, msg_len);
            if (e)
                return kerr_from_cn(e);
        }
    }
    return KERR_NONE;
}

static int16_t alter_resource(kreq *q, int8_t type, kstr name, const alter_op *ops, int n,
                              int replace, int validate_only, const cfg_target *tg,
                              kstr *out_msg)
{
    char msg[256] = "";
    int16_t err;
    if (type == RES_TOPIC && !kreq_allowed(q, ACL_OP_ALTER_CONFIGS, ACL_R_TOPIC, name)) {
        err = KERR_TOPIC_AUTHORIZATION_FAILED;
    } else if (type == RES_BROKER && !kreq_cluster_allowed(q, ACL_OP_ALTER_CONFIGS)) {
        err = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (type == RES_TOPIC) {
        topic *t = broker_topic_find(q->b, name);
        if (!t) {
            err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(msg, sizeof(msg), "topic does not exist");
        } else {
            err = alter_topic(q, t, ops, n, replace, validate_only, tg, msg, sizeof(msg));
        }
    } else if (type == RES_BROKER) {
        err = KERR_INVALID_REQUEST;
        snprintf(msg, sizeof(msg), "broker configs cannot be changed at run time; "
                                   "use the config file or --set");
    } else {
        err = KERR_INVALID_REQUEST;
        snprintf(msg, sizeof(msg), "unsupported resource type %d", type);
    }
    *out_msg = msg[0] ? kreq_strdup(q, kstr_c(msg)) : NULL_STR;
    return err;
}

void kh_alter_configs(kreq *q)
{
    kafka_alter_configs_request req;
    if (kafka_alter_configs_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_alter_configs_response rsp;
    kafka_alter_configs_response_init(&rsp);
    cfg_park *pk = NULL;
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    KARR_ALLOC(q, rsp.responses, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_alter_configs_request_alter_configs_resource *r = &req.resources.items[i];
        int nc = r->configs.n > 0 ? r->configs.n : 0;
        alter_op *ops = kreq_alloc(q, (size_t)nc, sizeof(*ops));
        for (int j = 0; j < nc; j++) {
            ops[j].name = r->configs.items[j].name;
            ops[j].value = r->configs.items[j].value;
            ops[j].op = r->configs.items[j].value.len < 0 ? OP_DELETE : OP_SET;
        }
        kafka_alter_configs_response_alter_configs_resource_response *o = &rsp.responses.items[i];
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        cfg_target tg = {&pk, 0, i};
        o->error_code = alter_resource(q, r->resource_type, r->resource_name, ops, nc, 1,
                                       req.validate_only, &tg, &o->error_message);
    }
    if (pk) {
        for (int32_t i = 0; i < n; i++)
            rsp.responses.items[i].resource_name =
                kreq_strdup(q, rsp.responses.items[i].resource_name);
        pk->arsp = rsp;
        if (--pk->pending == 0)
            cfg_park_finish(pk);
        return;
    }
    kafka_alter_configs_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

void kh_incremental_alter_configs(kreq *q)
{
    kafka_incremental_alter_configs_request req;
    if (kafka_incremental_alter_configs_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_incremental_alter_configs_response rsp;
    kafka_incremental_alter_configs_response_init(&rsp);
    cfg_park *pk = NULL;
    int32_t n = req.resources.n > 0 ? req.resources.n : 0;
    KARR_ALLOC(q, rsp.responses, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_incremental_alter_configs_request_alter_configs_resource *r = &req.resources.items[i];
        int nc = r->configs.n > 0 ? r->configs.n : 0;
        alter_op *ops = kreq_alloc(q, (size_t)nc, sizeof(*ops));
        for (int j = 0; j < nc; j++) {
            ops[j].name = r->configs.items[j].name;
            ops[j].value = r->configs.items[j].value;
            ops[j].op = r->configs.items[j].config_operation;
        }
        kafka_incremental_alter_configs_response_alter_configs_resource_response *o =
            &rsp.responses.items[i];
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        cfg_target tg = {&pk, 1, i};
        o->error_code = alter_resource(q, r->resource_type, r->resource_name, ops, nc, 0,
                                       req.validate_only, &tg, &o->error_message);
    }
    if (pk) {
        for (int32_t i = 0; i < n; i++)
            rsp.responses.items[i].resource_name =
                kreq_strdup(q, rsp.responses.items[i].resource_name);
        pk->irsp = rsp;
        if (--pk->pending == 0)
            cfg_park_finish(pk);
        return;
    }
    kafka_incremental_alter_configs_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
