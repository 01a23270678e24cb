/* Moves of a partition's replicas over HTTP (the admin API's face of
 * AlterPartitionReassignments; ARCHITECTURE.md "Moves"):
 *   PUT    /topics/{topic}/partitions/{p}/replicas  {"replicas": [3, 1, 2]}
 *          202 {"topic", "partition", "moving_to": [...]} once the
 *          controller applied the target's record (every node applies it as
 *          the commit reaches it; the move then runs in the background:
 *          GET /topics/{topic} shows "moving_to" until it ends)
 *   DELETE /topics/{topic}/partitions/{p}/replicas
 *          202 {"topic", "partition", "cancelled": true}: back to the
 *          current replicas; 409 no_move_in_progress without one
 * Errors: 404 unknown_topic / unknown_partition, 400 invalid_request (the
 * body), 400 invalid_replica_assignment (the cluster's check: the topic's
 * replica count, nodes of this cluster, none twice; a single node holds
 * every partition itself and moves nothing), 503 controller_not_available. */
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster.h"
#include "http/http_int.h"
#include "util/common.h"

typedef struct move_op {
    hreq *q;
    const char *topic;              /* in the request's arena */
    int32_t part;
    int32_t *ids;                   /* NULL: a cancel */
    int n;
} move_op;

static void move_reply(move_op *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "topic", json_string(o->topic));
    json_object_set_new(j, "partition", json_integer(o->part));
    if (o->ids) {
        json_t *a = json_array();
        for (int k = 0; k < o->n; k++)
            json_array_append_new(a, json_integer(o->ids[k]));
        json_object_set_new(j, "moving_to", a);
    } else {
        json_object_set_new(j, "cancelled", json_true());
    }
    hh_reply_json(o->q, 202, j);
}

static void move_error(hreq *q, int rc, const char *msg)
{
    const char *code;
    int status = hh_status_from_cn(rc, &code);
    if (rc == -CN_ENOENT)
        code = "unknown_partition";
    hh_error(q, status, code, "%s", msg && msg[0] ? msg : cn_strerror(rc));
}

static void move_done(void *arg, int status, const char *msg)
{
    move_op *o = arg;
    hsrv *hs = o->q->hs;
    if (status < 0)
        move_error(o->q, status, msg);
    else
        move_reply(o);
    hsrv__durable_end(hs);
}

/* The partition of path segment 3, or -1 after answering 404. */
static int32_t part_or_reply(hreq *q, const topic *t)
{
    char *end;
    long p = strtol(q->seg[3], &end, 10);
    if (*q->seg[3] == '\0' || *end != '\0' || p < 0 || p >= t->n_parts) {
        hh_error(q, 404, "unknown_partition", "topic '%s' has no partition '%s'", t->name,
                 q->seg[3]);
        return -1;
    }
    return (int32_t)p;
}

static void run(hreq *q, topic *t, int32_t part, int32_t *ids, int n)
{
    move_op *o = hh_alloc(q, sizeof(*o));
    o->q = q;
    o->topic = hh_strdup(q, t->name);
    o->part = part;
    o->ids = ids;
    o->n = n;
    cluster *cl = q->hs->core->cl;
    char msg[256] = "";
    if (!cl) {
        int self = broker_node_id(q->hs->b);
        if (!ids) {
            move_error(q, -CN_ENOMOVE, "no move of this partition is in progress");
        } else if (n != 1 || ids[0] != self) {
            snprintf(msg, sizeof(msg), "this broker runs alone (node %d): its partitions "
                     "cannot move", self);
            move_error(q, -CN_EASSIGN, msg);
        } else {
            move_reply(o); /* already there */
        }
        return;
    }
    int rc = cluster_meta_reassign(cl, t, part, ids, n, msg, sizeof(msg), move_done, o);
    if (rc == 0)
        hsrv__durable_begin(q->hs);
    else
        move_error(q, rc, msg);
}

void hh_replicas_move(hreq *q)
{
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    int32_t part = part_or_reply(q, t);
    if (part < 0)
        return;
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    json_t *reps = json_object_get(body, "replicas");
    size_t n = json_is_array(reps) ? json_array_size(reps) : 0;
    if (n == 0 || n > 64) {
        hh_error(q, 400, "invalid_request", "\"replicas\" (an array of 1 to 64 node ids, the "
                 "preferred leader first) is required");
        json_decref(body);
        return;
    }
    int32_t *ids = hh_alloc(q, n * sizeof(int32_t));
    for (size_t k = 0; k < n; k++) {
        json_t *v = json_array_get(reps, k);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > INT32_MAX) {
            hh_error(q, 400, "invalid_request", "replicas[%zu] is not a node id", k);
            json_decref(body);
            return;
        }
        ids[k] = (int32_t)json_integer_value(v);
    }
    json_decref(body);
    run(q, t, part, ids, (int)n);
}

void hh_replicas_cancel(hreq *q)
{
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    int32_t part = part_or_reply(q, t);
    if (part < 0)
        return;
    run(q, t, part, NULL, 0);
}
