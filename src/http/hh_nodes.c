/* The cluster's nodes over HTTP (ARCHITECTURE.md "Joining", "Leaving"):
 *   GET    /cluster/nodes
 *          200 {"controller": id or null, "nodes": [{"id", "kafka_host",
 *          "kafka_port", "connected", "state": "member" | "leaving"}]}
 *          (a single node lists itself, controller itself)
 *   DELETE /cluster/nodes/{id}
 *          202 {"node": id, "state": "leaving"} once the controller
 *          recorded the removal; the node's replicas then move to the
 *          other members and it leaves the list when none is left
 * Errors: 404 unknown_node (not a member), 400 invalid_request (the id;
 * or the others cannot hold every topic's replicas; or a single node),
 * 503 controller_not_available. */
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster.h"
#include "http/http_int.h"
#include "util/common.h"

void hh_nodes_list(hreq *q)
{
    cluster *cl = q->hs->core->cl;
    json_t *j = json_object();
    json_t *a = json_array();
    if (!cl) {
        int32_t self = broker_node_id(q->hs->b);
        json_object_set_new(j, "controller", json_integer(self));
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(self));
        json_object_set_new(o, "kafka_host", json_string(q->hs->cfg->listen_host
                                                             ? q->hs->cfg->listen_host : ""));
        json_object_set_new(o, "kafka_port", json_integer(q->hs->cfg->listen_port));
        json_object_set_new(o, "connected", json_true());
        json_object_set_new(o, "state", json_string("member"));
        json_array_append_new(a, o);
    } else {
        int32_t ctl = cluster_controller(cl);
        json_object_set_new(j, "controller", ctl >= 0 ? json_integer(ctl) : json_null());
        int n;
        cluster_node_ids(cl, &n);
        for (int i = 0; i < n; i++) {
            cluster_member m = cluster_member_at(cl, i);
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(m.id));
            json_object_set_new(o, "kafka_host", json_string(m.kafka_host));
            json_object_set_new(o, "kafka_port", json_integer(m.kafka_port));
            json_object_set_new(o, "connected", json_boolean(m.connected));
            json_object_set_new(o, "state", json_string(m.leaving ? "leaving" : "member"));
            json_array_append_new(a, o);
        }
    }
    json_object_set_new(j, "nodes", a);
    hh_reply_json(q, 200, j);
}

typedef struct remove_op {
    hreq *q;
    int32_t id;
} remove_op;

static void remove_reply(remove_op *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "node", json_integer(o->id));
    json_object_set_new(j, "state", json_string("leaving"));
    hh_reply_json(o->q, 202, j);
}

static void remove_error(hreq *q, int rc, const char *msg)
{
    const char *code;
    int status = hh_status_from_cn(rc, &code);
    if (rc == -CN_ENOENT) {
        status = 404;
        code = "unknown_node";
    } else if (rc == -CN_EINVAL) {
        status = 400;
        code = "invalid_request";
    }
    hh_error(q, status, code, "%s", msg && msg[0] ? msg : cn_strerror(rc));
}

static void remove_done(void *arg, int status, const char *msg)
{
    remove_op *o = arg;
    hsrv *hs = o->q->hs;
    if (status < 0)
        remove_error(o->q, status, msg);
    else
        remove_reply(o);
    hsrv__durable_end(hs);
}

void hh_node_remove(hreq *q)
{
    char *end;
    long id = strtol(q->seg[2], &end, 10);
    if (*q->seg[2] == '\0' || *end != '\0' || id < 0 || id > INT32_MAX) {
        hh_error(q, 400, "invalid_request", "'%s' is not a node id", q->seg[2]);
        return;
    }
    cluster *cl = q->hs->core->cl;
    if (!cl) {
        hh_error(q, 400, "invalid_request", "this broker runs alone (node %d): no node can "
                 "leave", broker_node_id(q->hs->b));
        return;
    }
    remove_op *o = hh_alloc(q, sizeof(*o));
    o->q = q;
    o->id = (int32_t)id;
    char msg[256] = "";
    int rc = cluster_remove_node(cl, o->id, msg, sizeof(msg), remove_done, o);
    if (rc == 0)
        hsrv__durable_begin(q->hs);
    else if (rc == 1)
        remove_reply(o);
    else
        remove_error(q, rc, msg);
}
