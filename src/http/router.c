/* The route table of the HTTP front end: one row per (method, path pattern),
 * each naming its handler (STYLE §6: route through one table). A pattern is
 * a list of segments where "*" matches any one non-empty segment (the
 * handler reads it from q->seg). A path that matches no pattern gets 404
 * not_found; one that matches patterns but none with the request's method
 * gets 405 method_not_allowed with an Allow header listing the methods that
 * would work. */
#include <string.h>

#include <http_parser.h>

#include "auth/acl.h"
#include "http/http_int.h"

typedef struct hroute_row {
    hroute id;
    const char *name;            /* metrics label */
    int method;                  /* enum http_method */
    const char *pattern;         /* "topics/ * /records" without spaces; "" is "/" */
    void (*handler)(hreq *q);
    /* With http.authentication=basic and authorizer.enabled: the ACL the
     * caller needs (auth/acl.h), on the resource named by path segment
     * seg, or on the cluster (seg -1); op 0: none (health, console). */
    int8_t op, rtype, seg;
} hroute_row;

static const hroute_row routes[] = {
    {HROUTE_HEALTHZ, "healthz", HTTP_GET, "healthz", hh_healthz, 0, 0, 0},
    {HROUTE_READYZ, "readyz", HTTP_GET, "readyz", hh_readyz, 0, 0, 0},
    {HROUTE_METRICS, "metrics", HTTP_GET, "metrics",
     hh_metrics, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_BROKER, "broker", HTTP_GET, "broker", hh_broker, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    /* listings show what the caller may describe (hsrv__allowed), as Kafka's
     * Metadata and ListGroups do */
    {HROUTE_TOPICS_LIST, "topics_list", HTTP_GET, "topics", hh_topics_list, 0, 0, 0},
    {HROUTE_TOPIC_CREATE, "topic_create", HTTP_POST, "topics",
     hh_topic_create, ACL_OP_CREATE, ACL_R_CLUSTER, -1},
    {HROUTE_TOPIC_DESCRIBE, "topic_describe", HTTP_GET, "topics/*",
     hh_topic_describe, ACL_OP_DESCRIBE, ACL_R_TOPIC, 1},
    {HROUTE_TOPIC_DELETE, "topic_delete", HTTP_DELETE, "topics/*",
     hh_topic_delete, ACL_OP_DELETE, ACL_R_TOPIC, 1},
    {HROUTE_PRODUCE, "produce", HTTP_POST, "topics/*/records",
     hh_produce, ACL_OP_WRITE, ACL_R_TOPIC, 1},
    {HROUTE_READ, "read", HTTP_GET, "topics/*/partitions/*/records",
     hh_read, ACL_OP_READ, ACL_R_TOPIC, 1},
    {HROUTE_STREAM, "stream", HTTP_GET, "topics/*/stream", hh_stream, ACL_OP_READ, ACL_R_TOPIC, 1},
    {HROUTE_GROUPS_LIST, "groups_list", HTTP_GET, "groups", hh_groups_list, 0, 0, 0},
    {HROUTE_GROUP_DESCRIBE, "group_describe", HTTP_GET, "groups/*",
     hh_group_describe, ACL_OP_DESCRIBE, ACL_R_GROUP, 1},
    {HROUTE_GROUP_DELETE, "group_delete", HTTP_DELETE, "groups/*",
     hh_group_delete, ACL_OP_DELETE, ACL_R_GROUP, 1},
    {HROUTE_GROUP_OFFSETS_RESET, "group_offsets_reset", HTTP_POST, "groups/*/offsets",
     hh_group_offsets_reset, ACL_OP_READ, ACL_R_GROUP, 1},
    {HROUTE_EVENT_PUBLISH, "event_publish", HTTP_POST, "event/publish",
     hh_event_publish, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_EVENT_SUBSCRIBE, "event_subscribe", HTTP_POST, "event/subscribe",
     hh_event_subscribe, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_EVENT_SUBS_LIST, "event_subscriptions", HTTP_GET, "event/subscriptions",
     hh_event_subs_list, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_EVENT_SUB_GET, "event_subscription", HTTP_GET, "event/subscriptions/*",
     hh_event_sub_get, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_EVENT_SUB_DELETE, "event_unsubscribe", HTTP_DELETE, "event/subscriptions/*",
     hh_event_sub_delete, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_AMQP_LIST, "amqp_list", HTTP_GET, "amqp/*",
     hh_amqp_list, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_REPLICAS_MOVE, "replicas_move", HTTP_PUT, "topics/*/partitions/*/replicas",
     hh_replicas_move, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_REPLICAS_CANCEL, "replicas_cancel", HTTP_DELETE, "topics/*/partitions/*/replicas",
     hh_replicas_cancel, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_NODES_LIST, "nodes_list", HTTP_GET, "cluster/nodes",
     hh_nodes_list, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_NODE_REMOVE, "node_remove", HTTP_DELETE, "cluster/nodes/*",
     hh_node_remove, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_USERS_LIST, "users_list", HTTP_GET, "users",
     hh_users_list, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_USER_CREATE, "user_create", HTTP_POST, "users",
     hh_user_create, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_USER_DELETE, "user_delete", HTTP_DELETE, "users/*",
     hh_user_delete, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_ACLS_LIST, "acls_list", HTTP_GET, "acls",
     hh_acls_list, ACL_OP_DESCRIBE, ACL_R_CLUSTER, -1},
    {HROUTE_ACL_CREATE, "acl_create", HTTP_POST, "acls",
     hh_acl_create, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    {HROUTE_ACLS_DELETE, "acls_delete", HTTP_DELETE, "acls",
     hh_acls_delete, ACL_OP_ALTER, ACL_R_CLUSTER, -1},
    /* tokens: one's own, or others' with the cluster's ACL (hh_tokens.c checks) */
    {HROUTE_TOKENS_LIST, "tokens_list", HTTP_GET, "tokens", hh_tokens_list, 0, 0, 0},
    {HROUTE_TOKEN_CREATE, "token_create", HTTP_POST, "tokens", hh_token_create, 0, 0, 0},
    {HROUTE_TOKEN_DELETE, "token_delete", HTTP_DELETE, "tokens/*", hh_token_delete, 0, 0, 0},
    {HROUTE_CONSOLE_ROOT, "console_root", HTTP_GET, "", hh_console_root, 0, 0, 0},
    {HROUTE_CONSOLE, "console", HTTP_GET, "console", hh_console, 0, 0, 0},
    {HROUTE_CONSOLE_ASSET, "console_asset", HTTP_GET, "console/*", hh_console_asset, 0, 0, 0},
};

const char *hsrv__route_name(hroute r)
{
    for (size_t i = 0; i < CN_ARRAY_LEN(routes); i++)
        if (routes[i].id == r)
            return routes[i].name;
    return "other";
}

static int pattern_match(const char *pat, const hreq *q)
{
    int k = 0;
    const char *p = pat;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (k >= q->n_seg)
            return 0;
        const char *s = q->seg[k];
        if (n == 1 && p[0] == '*') {
            if (!s[0])
                return 0;
        } else if (strlen(s) != n || memcmp(s, p, n) != 0) {
            return 0;
        }
        k++;
        p += n;
        if (*p == '/')
            p++;
    }
    return k == q->n_seg;
}

int hsrv__allowed(const hreq *q, int op, int rtype, const char *name, size_t len)
{
    const cairn_config *cfg = q->hs->cfg;
    if (!cfg->authorizer_enabled || !cfg->http_auth)
        return 1;
    return acl_authorize(q->hs->core->acls, cfg, q->principal, net_conn_host(q->c), op, rtype,
                         name, len);
}

/* The route's ACL for q's principal. */
static int allowed(const hreq *q, const hroute_row *r)
{
    if (!r->op)
        return 1;
    const char *name = r->seg < 0 ? ACL_CLUSTER_NAME : q->seg[r->seg];
    return hsrv__allowed(q, r->op, r->rtype, name, strlen(name));
}

void hsrv__dispatch(hreq *q)
{
    char allow[128] = "";
    size_t al = 0;
    for (size_t i = 0; i < CN_ARRAY_LEN(routes); i++) {
        const hroute_row *r = &routes[i];
        if (!pattern_match(r->pattern, q))
            continue;
        if (r->method == q->method) {
            q->route = r->id;
            if (!allowed(q, r)) {
                hh_error(q, 403, "forbidden", "%s may not %s %s", q->principal,
                         acl_op_name(r->op),
                         r->seg < 0 ? "the cluster" : q->seg[r->seg]);
                return;
            }
            r->handler(q);
            return;
        }
        const char *m = http_method_str((enum http_method)r->method);
        if (!strstr(allow, m) && al + strlen(m) + 3 < sizeof(allow))
            al += (size_t)snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", m);
    }
    if (al) {
        json_t *extra = json_object();
        json_object_set_new(extra, "allow", json_string(allow));
        hh_error_obj(q, 405, "method_not_allowed", extra, "%s is not allowed here (allowed: %s)",
                     http_method_str((enum http_method)q->method), allow);
        return;
    }
    hh_error(q, 404, "not_found", "no such resource");
}
