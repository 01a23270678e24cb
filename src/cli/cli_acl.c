/* cairn acl add|list|delete: the ACLs of a running broker through its HTTP
 * API (GET/POST/DELETE /acls; src/http/hh_acls.c), with the selection words
 * of Kafka's kafka-acls tool:
 *   cairn acl add --allow|--deny PRINCIPAL --operation OP [--operation OP]...
 *                 (--topic T | --group G | --transactional-id ID | --cluster)
 *                 [--prefixed] [--host HOST]
 *   cairn acl list [--principal P] [--topic T | --group G | ...] [--prefixed]
 *   cairn acl delete  the same selection as list (and --operation, --allow,
 *                 --deny): every matching ACL goes
 * add returns once the ACLs are fsynced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

typedef struct acl_opts {
    const char *principal, *perm, *rtype, *name, *host;
    const char *ops[12];
    int n_ops, prefixed;
} acl_opts;

enum { O_ALLOW = 1000, O_DENY, O_PRINCIPAL, O_OP, O_TOPIC, O_GROUP, O_TXN, O_CLUSTER, O_PREFIXED,
       O_HOST };

static const struct option acl_long[] = {
    {"allow", required_argument, NULL, O_ALLOW},
    {"deny", required_argument, NULL, O_DENY},
    {"principal", required_argument, NULL, O_PRINCIPAL},
    {"operation", required_argument, NULL, O_OP},
    {"topic", required_argument, NULL, O_TOPIC},
    {"group", required_argument, NULL, O_GROUP},
    {"transactional-id", required_argument, NULL, O_TXN},
    {"cluster", no_argument, NULL, O_CLUSTER},
    {"prefixed", no_argument, NULL, O_PREFIXED},
    {"host", required_argument, NULL, O_HOST},
    {NULL, 0, NULL, 0},
};

static int acl_opt(cli *c, int code, const char *arg, void *ctx)
{
    acl_opts *o = ctx;
    const char *rt = NULL;
    switch (code) {
    case O_ALLOW:
    case O_DENY:
        o->principal = arg;
        o->perm = code == O_ALLOW ? "Allow" : "Deny";
        return 0;
    case O_PRINCIPAL:
        o->principal = arg;
        return 0;
    case O_OP:
        if (o->n_ops == (int)(sizeof(o->ops) / sizeof(o->ops[0])))
            return cli__usage(c, "too many --operation");
        o->ops[o->n_ops++] = arg;
        return 0;
    case O_TOPIC:
        rt = "Topic";
        break;
    case O_GROUP:
        rt = "Group";
        break;
    case O_TXN:
        rt = "TransactionalId";
        break;
    case O_CLUSTER:
        rt = "Cluster";
        arg = "kafka-cluster";
        break;
    case O_PREFIXED:
        o->prefixed = 1;
        return 0;
    case O_HOST:
        o->host = arg;
        return 0;
    default:
        return cli__usage(c, "unknown option");
    }
    if (o->rtype)
        return cli__usage(c, "one resource at a time (--topic, --group, --transactional-id or "
                             "--cluster)");
    o->rtype = rt;
    o->name = arg;
    return 0;
}

static int parse(cli *c, int argc, char **argv, acl_opts *o)
{
    memset(o, 0, sizeof(*o));
    int first, rc = cli__parse(c, argc, argv, "", acl_long, acl_opt, o, &first);
    if (rc)
        return rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    return 0;
}

static void print_acls(cli *c, json_t *arr)
{
    if (c->json) {
        cli__print_json(arr);
        return;
    }
    static const char *const head[] = {"PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE",
                                       "NAME", "PATTERN", "HOST"};
    cli_table *t = cli__table_new(7, head);
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        const char *row[] = {json_string_value(json_object_get(a, "principal")),
                             json_string_value(json_object_get(a, "permission")),
                             json_string_value(json_object_get(a, "operation")),
                             json_string_value(json_object_get(a, "resource_type")),
                             json_string_value(json_object_get(a, "name")),
                             json_string_value(json_object_get(a, "pattern")),
                             json_string_value(json_object_get(a, "host"))};
        cli__table_add(t, row);
    }
    cli__table_print(t, stdout);
    cli__table_free(t);
}

/* "/acls?k=v&..." for the selection (caller frees). op: one operation or NULL. */
static char *filter_path(cli *c, const acl_opts *o, const char *op)
{
    const char *keys[] = {"principal", "permission", "resource_type", "name", "host", "operation",
                          "pattern"};
    const char *vals[] = {o->principal, o->perm, o->rtype, o->name, o->host, op,
                          o->prefixed ? "Prefixed" : (o->name ? "Literal" : NULL)};
    size_t cap = 64, len = 0;
    char *p = malloc(cap);
    len = (size_t)snprintf(p, cap, "/acls");
    int n = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!vals[i])
            continue;
        char *e = cli__path(c, "", vals[i], "");
        size_t need = len + strlen(keys[i]) + strlen(e) + 3;
        if (need > cap) {
            cap = need * 2;
            p = realloc(p, cap);
        }
        len += (size_t)snprintf(p + len, cap - len, "%c%s=%s", n++ ? '&' : '?', keys[i], e);
        free(e);
    }
    return p;
}

int cli__acl_list(cli *c, int argc, char **argv)
{
    acl_opts o;
    int rc = parse(c, argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    char *path = filter_path(c, &o, o.n_ops ? o.ops[0] : NULL);
    json_t *j = NULL;
    rc = cli__request(c, "GET", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    print_acls(c, json_object_get(j, "acls"));
    json_decref(j);
    return CLI_OK;
}

int cli__acl_add(cli *c, int argc, char **argv)
{
    acl_opts o;
    int rc = parse(c, argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!o.principal || !o.perm)
        return cli__usage(c, "--allow PRINCIPAL or --deny PRINCIPAL is required");
    if (!o.rtype)
        return cli__usage(c, "a resource is required: --topic, --group, --transactional-id or "
                             "--cluster");
    if (!o.n_ops)
        return cli__usage(c, "--operation is required (Read, Write, Create, Delete, Alter, "
                             "Describe, DescribeConfigs, AlterConfigs, IdempotentWrite, All)");
    json_t *made = json_array();
    for (int i = 0; i < o.n_ops; i++) {
        json_t *body = json_object();
        json_object_set_new(body, "principal", json_string(o.principal));
        json_object_set_new(body, "permission", json_string(o.perm));
        json_object_set_new(body, "operation", json_string(o.ops[i]));
        json_object_set_new(body, "resource_type", json_string(o.rtype));
        json_object_set_new(body, "name", json_string(o.name));
        json_object_set_new(body, "pattern", json_string(o.prefixed ? "Prefixed" : "Literal"));
        json_object_set_new(body, "host", json_string(o.host ? o.host : "*"));
        json_t *j = NULL;
        rc = cli__request(c, "POST", "/acls", body, &j);
        json_decref(body);
        if (rc) {
            json_decref(made);
            return rc;
        }
        json_array_append(made, json_object_get(j, "created"));
        json_decref(j);
    }
    print_acls(c, made);
    json_decref(made);
    return CLI_OK;
}

int cli__acl_delete(cli *c, int argc, char **argv)
{
    acl_opts o;
    int rc = parse(c, argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!o.principal && !o.rtype && !o.n_ops)
        return cli__usage(c, "select what to delete (--principal, a resource, --operation)");
    json_t *gone = json_array();
    for (int i = 0; i < (o.n_ops ? o.n_ops : 1); i++) {
        char *path = filter_path(c, &o, o.n_ops ? o.ops[i] : NULL);
        json_t *j = NULL;
        rc = cli__request(c, "DELETE", path, NULL, &j);
        free(path);
        if (rc) {
            json_decref(gone);
            return rc;
        }
        json_array_extend(gone, json_object_get(j, "deleted"));
        json_decref(j);
    }
    print_acls(c, gone);
    json_decref(gone);
    return CLI_OK;
}
