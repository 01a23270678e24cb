/* Consumer-group admin over HTTP (the group coordinator and the offsets
 * store, group.h / offsets.h).
 *
 * GET /groups        200 {"groups": [{"group_id", "state", "protocol_type",
 *                    "members"}]} (live groups and groups with only committed
 *                    offsets; sorted by id)
 * GET /groups/{g}    200 {"group_id", "state", "protocol_type", "protocol",
 *                    "generation", "members": [{"member_id", "instance_id",
 *                    "client_id", "client_host"}], "offsets": [{"topic",
 *                    "partition", "committed_offset", "metadata",
 *                    "log_end_offset", "lag"}], "total_lag"}; lag is the
 *                    high watermark minus the committed offset (0 when the
 *                    partition is gone or the offset is ahead), as Kafka's
 *                    tools compute it
 * DELETE /groups/{g} 200 {"deleted": g} once the tombstones are fsynced;
 *                    409 group_not_empty while it has members
 * Errors: 404 unknown_group, 500 storage_error. */
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "http/http_int.h"

/* A group id as a JSON string: ids are bytes (a Kafka client may send any),
 * so one that is not UTF-8 shows with '?' for its bytes above 0x7f rather
 * than vanish (json_string gives NULL for it). */
static json_t *id_json(const char *id)
{
    json_t *j = json_string(id);
    if (j)
        return j;
    char *c = xstrdup(id);
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(c);
    free(c);
    return j;
}

typedef struct list_ctx {
    hreq *q;
    json_t *arr;
    int all;                        /* DESCRIBE on the cluster: every group */
} list_ctx;

static void list_one(void *arg, const grp_info *g)
{
    list_ctx *lc = arg;
    if (!lc->all &&
        !hsrv__allowed(lc->q, ACL_OP_DESCRIBE, ACL_R_GROUP, g->group_id, strlen(g->group_id)))
        return; /* as Kafka's ListGroups */
    json_t *o = json_object();
    json_object_set_new(o, "group_id", id_json(g->group_id));
    json_object_set_new(o, "state", json_string(grp_state_name(g->state)));
    json_object_set_new(o, "protocol_type", json_string(g->protocol_type));
    json_object_set_new(o, "members", json_integer(g->n_members));
    json_array_append_new(lc->arr, o);
}

static int by_id(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *p = json_string_value(json_object_get(x, "group_id"));
    const char *q = json_string_value(json_object_get(y, "group_id"));
    return strcmp(p ? p : "", q ? q : "");
}

/* Not the group coordinator (a cluster: 421 with its node id, the client
 * asks that node) or not ready (503). */
static void coord_error(hreq *q, int rc)
{
    const char *code;
    int status = hh_status_from_cn(rc, &code);
    hh_error(q, status, code, "%s (coordinator: node %d)", cn_strerror(rc),
             (int)grp_coord_node(q->hs->core->groups));
}

void hh_groups_list(hreq *q)
{
    json_t *arr = json_array();
    list_ctx lc = {q, arr,
                   hsrv__allowed(q, ACL_OP_DESCRIBE, ACL_R_CLUSTER, ACL_CLUSTER_NAME,
                                 strlen(ACL_CLUSTER_NAME))};
    int rc = grp_list(q->hs->core->groups, list_one, &lc);
    if (rc < 0) {
        json_decref(arr);
        coord_error(q, rc);
        return;
    }
    size_t n = json_array_size(arr);
    json_t **v = hh_alloc(q, (n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), by_id);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    json_t *j = json_object();
    json_object_set_new(j, "groups", arr);
    hh_reply_json(q, 200, j);
}

typedef struct describe_ctx {
    hsrv *hs;
    json_t *j;
    json_t *offsets;
    int64_t total_lag;
} describe_ctx;

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static void describe_one(void *arg, const grp_info *g)
{
    describe_ctx *d = arg;
    json_object_set_new(d->j, "group_id", id_json(g->group_id));
    json_object_set_new(d->j, "state", json_string(grp_state_name(g->state)));
    json_object_set_new(d->j, "protocol_type", json_string(g->protocol_type));
    json_object_set_new(d->j, "protocol", json_string(g->protocol_name));
    json_object_set_new(d->j, "generation", json_integer(g->generation));
    json_t *ms = json_array();
    for (int i = 0; i < g->n_members; i++) {
        const grp_member_info *m = &g->members[i];
        json_t *o = json_object();
        json_object_set_new(o, "member_id", str_or_null(m->member_id));
        json_object_set_new(o, "instance_id", str_or_null(m->instance_id));
        json_object_set_new(o, "client_id", str_or_null(m->client_id));
        json_object_set_new(o, "client_host", str_or_null(m->client_host));
        json_array_append_new(ms, o);
    }
    json_object_set_new(d->j, "members", ms);
}

static void offset_one(void *arg, const char *tname, int32_t part, const goff_entry *e)
{
    describe_ctx *d = arg;
    json_t *o = json_object();
    json_object_set_new(o, "topic", json_string(tname));
    json_object_set_new(o, "partition", json_integer(part));
    json_object_set_new(o, "committed_offset", json_integer(e->offset));
    json_object_set_new(o, "metadata", str_or_null(e->metadata));
    partition *p = broker_partition(d->hs->b, cn_str_c(tname), part);
    if (p) {
        int64_t end = log_high_watermark(p->log);
        int64_t lag = end > e->offset ? end - e->offset : 0;
        json_object_set_new(o, "log_end_offset", json_integer(end));
        json_object_set_new(o, "lag", json_integer(lag));
        d->total_lag += lag;
    } else {
        json_object_set_new(o, "log_end_offset", json_null());
        json_object_set_new(o, "lag", json_null());
    }
    json_array_append_new(d->offsets, o);
}

void hh_group_describe(hreq *q)
{
    hsrv *hs = q->hs;
    describe_ctx d = {hs, json_object(), json_array(), 0};
    cn_str g = cn_str_c(q->seg[1]);
    int rc = grp_describe(hs->core->groups, g, describe_one, &d);
    if (rc < 0) {
        json_decref(d.j);
        json_decref(d.offsets);
        if (rc == -CN_ENOGROUP)
            hh_error(q, 404, "unknown_group", "group '%s' does not exist", q->seg[1]);
        else
            coord_error(q, rc);
        return;
    }
    goff_foreach(hs->core->offsets, g, offset_one, &d);
    json_object_set_new(d.j, "offsets", d.offsets);
    json_object_set_new(d.j, "total_lag", json_integer(d.total_lag));
    hh_reply_json(q, 200, d.j);
}

/* DELETE: parked until the offsets store's tombstones are durable. */
typedef struct del_wait {
    durable_wait w;              /* first: the broker hands this back */
    hreq *q;
    char *group;
} del_wait;

static void del_durable(durable_wait *w, int status)
{
    del_wait *dw = (del_wait *)w;
    hsrv *hs = dw->q->hs;
    if (status < 0) {
        hh_error(dw->q, 500, "storage_error", "deleting group '%s': the offsets log could not "
                 "be synced (%s)", dw->group, cn_strerror(status));
    } else {
        json_t *j = json_object();
        json_object_set_new(j, "deleted", id_json(dw->group));
        hh_reply_json(dw->q, 200, j);
    }
    hsrv__durable_end(hs);
}

void hh_group_delete(hreq *q)
{
    hsrv *hs = q->hs;
    int64_t target = -1;
    int rc = grp_delete(hs->core->groups, cn_str_c(q->seg[1]), &target);
    if (rc == -CN_ENOGROUP) {
        hh_error(q, 404, "unknown_group", "group '%s' does not exist", q->seg[1]);
        return;
    }
    if (rc == -CN_ENOTEMPTY) {
        hh_error(q, 409, "group_not_empty", "group '%s' still has members", q->seg[1]);
        return;
    }
    if (rc == -CN_ENOTCOORD || rc == -CN_ELOADING) {
        coord_error(q, rc);
        return;
    }
    if (rc < 0) {
        hh_error(q, 500, "storage_error", "deleting group '%s': %s", q->seg[1], cn_strerror(rc));
        return;
    }
    del_wait *dw = hh_alloc(q, sizeof(*dw));
    dw->q = q;
    dw->group = q->seg[1];
    hsrv__durable_begin(hs);
    if (target < 0) {
        del_durable(&dw->w, 0);
        return;
    }
    dw->w.target = target;
    dw->w.cb = del_durable;
    broker_wait_durable(hs->b, goff_partition(hs->core->offsets), &dw->w);
}
