/* Topic admin over HTTP (the broker's topic registry, broker.h).
 *
 * GET /topics                 200 {"topics": [{"name", "partitions"}]}, creation order
 * POST /topics                {"name", "partitions" (default num.partitions),
 *                              "configs": {"retention.ms": "1000" or 1000, ...}}
 *                             201 {"name", "topic_id", "partitions"}; the topic's
 *                             metadata file is fsynced before the answer
 * GET /topics/{t}             200 {"name", "topic_id", "partitions": [{"partition",
 *                              "log_start_offset", "log_end_offset", "high_watermark",
 *                              "last_stable_offset", "size_bytes"}],
 *                              "configs": {key: {"value", "default": bool}}}
 * DELETE /topics/{t}          200 {"deleted": name}
 * Errors: 404 unknown_topic, 409 topic_exists, 400 invalid_topic_name /
 * invalid_partitions / invalid_config / invalid_request, 500 storage_error. */
#include <stdio.h>
#include <string.h>

#include "auth/acl.h"
#include "http/http_int.h"

int hh_status_from_cn(int rc, const char **code)
{
    switch (rc) {
    case -CN_ENOENT: *code = "not_found"; return 404;
    case -CN_EEXIST: *code = "already_exists"; return 409;
    case -CN_EBADNAME: *code = "invalid_topic_name"; return 400;
    case -CN_EPARTITIONS: *code = "invalid_partitions"; return 400;
    case -CN_ECONFIG: *code = "invalid_config"; return 400;
    case -CN_EINVAL: *code = "invalid_request"; return 400;
    case -CN_ETOOBIG: *code = "record_too_large"; return 413;
    case -CN_ENOSPC: *code = "storage_full"; return 507;
    case -CN_EUNAVAIL: *code = "unavailable"; return 503;
    /* Replicated partitions (a cluster): the leader is elsewhere or not
     * ready yet; the client retries (on the leader's node). */
    case -CN_ENOTLEADER: *code = "not_leader"; return 421;
    case -CN_ELEADERWAIT: *code = "leader_not_available"; return 503;
    case -CN_EREPLICATION: *code = "invalid_replication_factor"; return 400;
    case -CN_EASSIGN: *code = "invalid_replica_assignment"; return 400;
    case -CN_ENOMOVE: *code = "no_move_in_progress"; return 409;
    case -CN_ENOTCOORD: *code = "not_coordinator"; return 421;
    case -CN_ELOADING: *code = "coordinator_loading"; return 503;
    case -CN_ENOTCONTROLLER: *code = "controller_not_available"; return 503;
    /* No majority heard lately, or fewer replicas in sync than the topic's
     * min.insync.replicas: nothing was written; retry later. */
    case -CN_ENOQUORUM: *code = "not_enough_replicas"; return 503;
    default: *code = "storage_error"; return 500;
    }
}

/* The topic named by the path's segment i, or NULL after answering 404. */
topic *hh_topic_or_reply(hreq *q, int i)
{
    topic *t = broker_topic_find(q->hs->b, cn_str_c(q->seg[i]));
    if (!t)
        hh_error(q, 404, "unknown_topic", "topic '%s' does not exist", q->seg[i]);
    return t;
}

static json_t *uuid_json(cn_uuid id)
{
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id.b[i]);
    return json_string(hex);
}

void hh_topics_list(hreq *q)
{
    json_t *arr = json_array();
    for (topic *t = broker_topics(q->hs->b); t; t = t->lnext) {
        if (!hsrv__allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, t->name, strlen(t->name)))
            continue; /* as Kafka's Metadata: not even its name */
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "partitions", json_integer(t->n_parts));
        json_array_append_new(arr, o);
    }
    json_t *j = json_object();
    json_object_set_new(j, "topics", arr);
    hh_reply_json(q, 200, j);
}

/* A create or delete waiting for the cluster's metadata group. */
typedef struct topic_op {
    hreq *q;
    const char *name;               /* in the request's arena */
    int32_t partitions;             /* create: as asked; -1: a delete */
} topic_op;

static void topic_op_done(void *arg, int status, const char *msg)
{
    topic_op *o = arg;
    hreq *q = o->q;
    hsrv *hs = q->hs;
    if (status < 0) {
        const char *code;
        int http = hh_status_from_cn(status, &code);
        if (status == -CN_EEXIST)
            code = "topic_exists";
        if (status == -CN_ENOENT)
            code = "unknown_topic";
        hh_error(q, http, code, "cannot %s topic '%s': %s", o->partitions < 0 ? "delete" : "create",
                 o->name, msg ? msg : cn_strerror(status));
    } else if (o->partitions < 0) {
        json_t *j = json_object();
        json_object_set_new(j, "deleted", json_string(o->name));
        hh_reply_json(q, 200, j);
    } else {
        /* Committed and applied on the controller; this node applies it as
         * the commit reaches it (the id is shown once it has). */
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(o->name));
        topic *t = hs->freed ? NULL : broker_topic_find(hs->b, cn_str_c(o->name));
        if (t)
            json_object_set_new(j, "topic_id", uuid_json(t->id));
        json_object_set_new(j, "partitions", json_integer(t ? t->n_parts : o->partitions));
        hh_reply_json(q, 201, j);
    }
    hsrv__durable_end(hs);
}

/* Park q on a metadata-group request that cluster_meta_* returned rc for. */
static void topic_op_park(hreq *q, topic_op *o, int rc, const char *msg)
{
    if (rc == 0) {
        hsrv__durable_begin(q->hs);
        return;
    }
    const char *code;
    int status = hh_status_from_cn(rc, &code);
    if (rc == -CN_EEXIST)
        code = "topic_exists";
    hh_error(q, status, code, "cannot %s topic '%s': %s", o->partitions < 0 ? "delete" : "create",
             o->name, msg && msg[0] ? msg : cn_strerror(rc));
}

void hh_topic_create(hreq *q)
{
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    json_t *name = json_object_get(body, "name");
    json_t *parts = json_object_get(body, "partitions");
    json_t *configs = json_object_get(body, "configs");
    if (!json_is_string(name)) {
        hh_error(q, 400, "invalid_request", "\"name\" (a string) is required");
        goto out;
    }
    if (parts && !json_is_integer(parts)) {
        hh_error(q, 400, "invalid_partitions", "\"partitions\" must be an integer");
        goto out;
    }
    if (configs && !json_is_object(configs)) {
        hh_error(q, 400, "invalid_config", "\"configs\" must be an object of key: value");
        goto out;
    }
    json_int_t np = parts ? json_integer_value(parts) : q->hs->cfg->num_partitions;
    if (np < 1 || np > 100000) {
        hh_error(q, 400, "invalid_partitions", "\"partitions\" must be in [1, 100000]");
        goto out;
    }
    size_t nc = configs ? json_object_size(configs) : 0;
    broker_kv *kv = hh_alloc(q, (nc ? nc : 1) * sizeof(*kv));
    size_t k = 0;
    const char *key;
    json_t *val;
    if (configs)
        json_object_foreach(configs, key, val) {
            const char *v;
            char num[32];
            if (json_is_string(val)) {
                v = json_string_value(val);
            } else if (json_is_integer(val)) {
                snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
                v = hh_strdup(q, num);
            } else if (json_is_boolean(val)) {
                v = json_is_true(val) ? "true" : "false";
            } else {
                hh_error(q, 400, "invalid_config", "config '%s' must be a string or a number",
                         key);
                goto out;
            }
            kv[k].key = cn_str_c(hh_strdup(q, key));
            kv[k].value = cn_str_c(hh_strdup(q, v));
            k++;
        }
    char msg[256] = "";
    topic *t = NULL;
    const char *tname = json_string_value(name);
    cluster *cl = q->hs->core->cl;
    if (cl) {
        /* Through the controller: every node creates it. */
        topic_op *o = hh_alloc(q, sizeof(*o));
        o->q = q;
        o->name = hh_strdup(q, tname);
        o->partitions = (int32_t)np;
        int crc = cluster_meta_create_topic(cl, cn_str_c(tname), (int32_t)np, -1, kv, (int)k, NULL, 0,
                                            msg, sizeof(msg), topic_op_done, o);
        topic_op_park(q, o, crc, msg);
        goto out;
    }
    int rc = broker_topic_create(q->hs->b, cn_str_c(tname), (int32_t)np, kv, (int)k, 0, msg,
                                 sizeof(msg), &t);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        if (rc == -CN_EEXIST)
            code = "topic_exists";
        hh_error(q, status, code, "cannot create topic '%s': %s", tname,
                 msg[0] ? msg : cn_strerror(rc));
        goto out;
    }
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "topic_id", uuid_json(t->id));
    json_object_set_new(j, "partitions", json_integer(t->n_parts));
    hh_reply_json(q, 201, j);
out:
    json_decref(body);
}

void hh_topic_describe(hreq *q)
{
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "topic_id", uuid_json(t->id));
    json_t *ps = json_array();
    for (int32_t i = 0; i < t->n_parts; i++) {
        partition *p = t->parts[i];
        json_t *o = json_object();
        json_object_set_new(o, "partition", json_integer(i));
        json_object_set_new(o, "log_start_offset", json_integer(log_start_offset(p->log)));
        json_object_set_new(o, "log_end_offset", json_integer(log_end_offset(p->log)));
        json_object_set_new(o, "high_watermark", json_integer(log_high_watermark(p->log)));
        json_object_set_new(o, "last_stable_offset", json_integer(broker_lso(p)));
        json_object_set_new(o, "size_bytes", json_integer(log_size_bytes(p->log)));
        if (broker_partition_replicated(p) || t->assign) {
            int32_t ids[64];
            int n = CN_MIN(broker_partition_replicas(p, ids, 64), 64);
            json_t *r = json_array();
            for (int k = 0; k < n; k++)
                json_array_append_new(r, json_integer(ids[k]));
            json_object_set_new(o, "leader", json_integer(broker_partition_leader(p)));
            json_object_set_new(o, "replicas", r);
            const int32_t *tg = broker_reassign_target(t, i);
            if (tg) {
                json_t *m = json_array();
                for (int k = 0; k < t->rf; k++)
                    json_array_append_new(m, json_integer(tg[k]));
                json_object_set_new(o, "moving_to", m);
            }
        }
        json_array_append_new(ps, o);
    }
    json_object_set_new(j, "partitions", ps);
    json_t *cs = json_object();
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        char buf[64];
        json_t *c = json_object();
        json_object_set_new(c, "value",
                            json_string(topic_config_value(&t->cfg, (topic_cfg_key)k, buf,
                                                           sizeof(buf))));
        json_object_set_new(c, "default", json_boolean(!(t->cfg.overridden & (1u << k))));
        json_object_set_new(cs, topic_config_name((topic_cfg_key)k), c);
    }
    json_object_set_new(j, "configs", cs);
    hh_reply_json(q, 200, j);
}

void hh_topic_delete(hreq *q)
{
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    char *name = hh_strdup(q, t->name);
    cluster *cl = q->hs->core->cl;
    if (cl) {
        topic_op *o = hh_alloc(q, sizeof(*o));
        o->q = q;
        o->name = name;
        o->partitions = -1;
        topic_op_park(q, o, cluster_meta_delete_topic(cl, t, topic_op_done, o), NULL);
        return;
    }
    int rc = broker_topic_delete(q->hs->b, t);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        hh_error(q, status, code, "cannot delete topic '%s': %s", name, cn_strerror(rc));
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(name));
    hh_reply_json(q, 200, j);
}
