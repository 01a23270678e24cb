/* The ACLs (auth/acl.h) for operators and `cairn acl`:
 *   GET    /acls[?FILTER]   {"acls": [ACL...]}, each ACL
 *                           {"resource_type": "Topic", "name", "pattern": "Literal"|"Prefixed",
 *                            "principal": "User:bob", "host": "*", "operation": "Write",
 *                            "permission": "Allow"}
 *   POST   /acls            one ACL as above (host defaults to "*", pattern to
 *                           Literal, permission to Allow) -> 200 {"created": ACL} once fsynced
 *   DELETE /acls?FILTER     every matching ACL -> 200 {"deleted": [ACL...]} once fsynced
 * FILTER: resource_type, name, pattern, principal, host, operation, permission
 * (absent: any; pattern=Match: the ACLs that apply to that name). Names of
 * types and operations as Kafka's tools write them, case-insensitive. The
 * table can be managed with authorizer.enabled off too (to prepare it
 * before turning the authorizer on). Errors: 400 invalid_request, 500
 * storage_error. */
#include <string.h>

#include "auth/acl.h"
#include "http/http_int.h"
#include "util/common.h"
#include "util/slog.h"

static json_t *acl_json(const acl_binding *b)
{
    json_t *o = json_object();
    json_object_set_new(o, "resource_type", json_string(acl_rtype_name(b->rtype)));
    json_object_set_new(o, "name", json_string(b->name));
    json_object_set_new(o, "pattern", json_string(acl_pattern_name(b->pattern)));
    json_object_set_new(o, "principal", json_string(b->principal));
    json_object_set_new(o, "host", json_string(b->host));
    json_object_set_new(o, "operation", json_string(acl_op_name(b->op)));
    json_object_set_new(o, "permission", json_string(acl_perm_name(b->perm)));
    return o;
}

static void append_acl(void *arg, const acl_binding *b) { json_array_append_new(arg, acl_json(b)); }

static int no_acls(hreq *q)
{
    if (q->hs->core->acls)
        return 0;
    hh_error(q, 501, "not_available", "the ACL table is not available on this node");
    return 1;
}

/* A filter from the query string: 0, or 400 answered. */
static int filter_from_query(hreq *q, acl_filter *f)
{
    *f = (acl_filter){ACL_R_ANY, ACL_P_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL};
    char *v;
    if (hh_query(q, "resource_type", &v) == 1 && !(f->rtype = (int8_t)acl_rtype_parse(v)))
        goto bad;
    if (hh_query(q, "pattern", &v) == 1 && !(f->pattern = (int8_t)acl_pattern_parse(v)))
        goto bad;
    if (hh_query(q, "operation", &v) == 1 && !(f->op = (int8_t)acl_op_parse(v)))
        goto bad;
    if (hh_query(q, "permission", &v) == 1 && !(f->perm = (int8_t)acl_perm_parse(v)))
        goto bad;
    if (hh_query(q, "name", &v) == 1)
        f->name = v;
    if (hh_query(q, "principal", &v) == 1)
        f->principal = v;
    if (hh_query(q, "host", &v) == 1)
        f->host = v;
    return 0;
bad:
    hh_error(q, 400, "invalid_request", "unknown value '%s' in the filter", v);
    return 400;
}

void hh_acls_list(hreq *q)
{
    if (no_acls(q))
        return;
    acl_filter f;
    if (filter_from_query(q, &f))
        return;
    json_t *a = json_array();
    acl_each(q->hs->core->acls, &f, append_acl, a);
    json_t *j = json_object();
    json_object_set_new(j, "acls", a);
    hh_reply_json(q, 200, j);
}

typedef struct acl_wait_ctx {
    durable_wait w;              /* first */
    hreq *q;
    json_t *body;                /* the answer, owned until sent */
} acl_wait_ctx;

static void acl_durable(durable_wait *w, int status)
{
    acl_wait_ctx *aw = (acl_wait_ctx *)w;
    hsrv *hs = aw->q->hs;
    if (status < 0) {
        json_decref(aw->body);
        hh_store_error(aw->q, status, "ACLs");
    } else {
        hh_reply_json(aw->q, 200, aw->body);
    }
    hsrv__durable_end(hs);
}

static void wait_then_reply(hreq *q, int64_t target, json_t *body)
{
    acl_wait_ctx *aw = hh_alloc(q, sizeof(*aw));
    aw->q = q;
    aw->body = body;
    hsrv__durable_begin(q->hs);
    if (target < 0) {
        acl_durable(&aw->w, 0);
        return;
    }
    acl_wait(q->hs->core->acls, target, &aw->w, acl_durable);
}

void hh_acl_create(hreq *q)
{
    if (no_acls(q))
        return;
    json_t *b = hh_body_json_or_reply(q);
    if (!b)
        return;
    const char *rt = json_string_value(json_object_get(b, "resource_type"));
    const char *pt = json_string_value(json_object_get(b, "pattern"));
    const char *op = json_string_value(json_object_get(b, "operation"));
    const char *pm = json_string_value(json_object_get(b, "permission"));
    const char *host = json_string_value(json_object_get(b, "host"));
    acl_binding a = {(int8_t)acl_rtype_parse(rt), (int8_t)(pt ? acl_pattern_parse(pt) : ACL_P_LITERAL),
                     (int8_t)acl_op_parse(op), (int8_t)(pm ? acl_perm_parse(pm) : ACL_ALLOW),
                     json_string_value(json_object_get(b, "name")),
                     json_string_value(json_object_get(b, "principal")), host ? host : "*"};
    if (a.rtype == ACL_R_CLUSTER && !a.name)
        a.name = ACL_CLUSTER_NAME;
    const char *why = acl_invalid(&a);
    if (why) {
        hh_error(q, 400, "invalid_request", "%s", why);
        json_decref(b);
        return;
    }
    int64_t target = -1;
    int rc = acl_add(q->hs->core->acls, &a, 1, &target);
    json_t *out = rc == 0 ? acl_json(&a) : NULL;
    json_decref(b); /* a's strings pointed into it; out holds copies */
    if (rc < 0) {
        hh_error(q, 500, "storage_error", "the ACL log cannot be written (%s)", cn_strerror(rc));
        return;
    }
    slog_info("acls: created %s (HTTP, from %s)", json_string_value(json_object_get(out, "principal")),
              net_conn_peer(q->c));
    json_t *j = json_object();
    json_object_set_new(j, "created", out);
    wait_then_reply(q, target, j);
}

void hh_acls_delete(hreq *q)
{
    if (no_acls(q))
        return;
    acl_filter f;
    if (filter_from_query(q, &f))
        return;
    json_t *gone = json_array();
    int64_t target = -1;
    int rc = acl_delete(q->hs->core->acls, &f, append_acl, gone, &target);
    if (rc < 0) {
        json_decref(gone);
        hh_error(q, 500, "storage_error", "the ACL log cannot be written (%s)", cn_strerror(rc));
        return;
    }
    if (json_array_size(gone))
        slog_info("acls: %zu ACL(s) deleted (HTTP, from %s)", json_array_size(gone),
                  net_conn_peer(q->c));
    json_t *j = json_object();
    json_object_set_new(j, "deleted", gone);
    wait_then_reply(q, target, j);
}
