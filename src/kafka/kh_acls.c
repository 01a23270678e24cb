/* CreateAcls, DescribeAcls and DeleteAcls (auth/acl.h), as Kafka serves
 * them: SECURITY_DISABLED while authorizer.enabled is off (no authorizer),
 * CLUSTER_AUTHORIZATION_FAILED without ALTER (create, delete) or DESCRIBE
 * (describe) on the cluster; a binding or filter that cannot be used is
 * INVALID_REQUEST with the reason. Creations and deletions are answered
 * once their batch of the __acls log is fsynced (in a cluster: committed
 * through the controller and applied on this node, auth/astore.h). */
#include <stdio.h>
#include <string.h>

#include "auth/acl.h"
#include "kafka/kafka.h"
#include "util/common.h"
#include "util/slog.h"

static const char NO_AUTHZ[] = "no authorizer: authorizer.enabled is false";

/* A NUL-terminated arena copy of s (NULL for a null string). */
static const char *cstr(kreq *q, kstr s)
{
    if (s.len < 0)
        return NULL;
    char *p = kreq_alloc(q, (size_t)s.len + 1, 1);
    if (s.len)
        memcpy(p, s.ptr, (size_t)s.len);
    return p;
}

/* Strings with a NUL inside cannot be stored or matched. */
static int has_nul(kstr s) { return s.len > 0 && memchr(s.ptr, '\0', (size_t)s.len) != NULL; }

/* Create ----------------------------------------------------------------------- */

typedef struct ca_park {
    durable_wait w;                 /* first */
    net_resp *resp;
    int16_t ver;
    kafka_create_acls_response rsp;
} ca_park;

static void ca_durable(durable_wait *w, int status)
{
    ca_park *pk = (ca_park *)w;
    for (int32_t i = 0; status < 0 && i < pk->rsp.results.n; i++)
        if (pk->rsp.results.items[i].error_code == KERR_NONE) {
            pk->rsp.results.items[i].error_code = KERR_KAFKA_STORAGE_ERROR;
            pk->rsp.results.items[i].error_message = kstr_c("the ACL log failed to sync");
        }
    kafka_create_acls_response_encode(&pk->resp->w, pk->ver, &pk->rsp);
    net_resp_ready(pk->resp);
}

void kh_create_acls(kreq *q)
{
    kafka_create_acls_request req;
    if (kafka_create_acls_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    ca_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->ver = q->ver;
    kafka_create_acls_response_init(&pk->rsp);
    int32_t n = req.creations.n > 0 ? req.creations.n : 0;
    KARR_ALLOC(q, pk->rsp.results, n);
    acl_binding *ok = kreq_alloc(q, (size_t)n + 1, sizeof(*ok));
    int n_ok = 0;
    int16_t all_err = KERR_NONE;
    const char *all_msg = NULL;
    if (!ksrv_config(q->ks)->authorizer_enabled || !ksrv_acls(q->ks)) {
        all_err = KERR_SECURITY_DISABLED;
        all_msg = NO_AUTHZ;
    } else if (!kreq_cluster_allowed(q, ACL_OP_ALTER)) {
        all_err = KERR_CLUSTER_AUTHORIZATION_FAILED;
        all_msg = "ALTER on the cluster is needed to create ACLs";
    }
    for (int32_t i = 0; i < n; i++) {
        kafka_create_acls_request_acl_creation *c = &req.creations.items[i];
        kafka_create_acls_response_acl_creation_result *r = &pk->rsp.results.items[i];
        r->error_message = (kstr){NULL, -1};
        if (all_err) {
            r->error_code = all_err;
            r->error_message = kstr_c(all_msg);
            continue;
        }
        acl_binding b = {c->resource_type, c->resource_pattern_type, c->operation,
                         c->permission_type, cstr(q, c->resource_name), cstr(q, c->principal),
                         cstr(q, c->host)};
        const char *why = has_nul(c->resource_name) || has_nul(c->principal) || has_nul(c->host)
                              ? "NUL in a name"
                              : acl_invalid(&b);
        if (why) {
            r->error_code = KERR_INVALID_REQUEST;
            r->error_message = kstr_c(why);
            continue;
        }
        r->error_code = KERR_NONE;
        ok[n_ok++] = b;
    }
    int64_t target = -1;
    int rc = n_ok ? acl_add(ksrv_acls(q->ks), ok, n_ok, &target) : 0;
    if (rc < 0) {
        for (int32_t i = 0; i < n; i++)
            if (pk->rsp.results.items[i].error_code == KERR_NONE) {
                pk->rsp.results.items[i].error_code = kerr_from_cn(rc);
                pk->rsp.results.items[i].error_message = kstr_c("the ACL log cannot be written");
            }
    }
    if (n_ok && rc == 0) {
        slog_info("acls: %d ACL(s) created by %s from %s", n_ok,
                  ksess_principal(net_conn_ctx(q->conn)), net_conn_peer(q->conn));
        acl_wait(ksrv_acls(q->ks), target, &pk->w, ca_durable);
        return;
    }
    ca_durable(&pk->w, 0);
}

/* Filters ---------------------------------------------------------------------- */

static acl_filter filter_of(kreq *q, int8_t rt, kstr name, int8_t pt, kstr pr, kstr host, int8_t op,
                            int8_t perm)
{
    return (acl_filter){rt, pt, op, perm, cstr(q, name), cstr(q, pr), cstr(q, host)};
}

/* Describe ---------------------------------------------------------------------- */

typedef kafka_describe_acls_response_describe_acls_resource da_res;

typedef struct da_collect {
    kreq *q;
    da_res *res;
    int n_res, cap;
} da_collect;

/* Group the matches by resource (type, name, pattern), in first-seen order. */
static void da_each(void *arg, const acl_binding *b)
{
    da_collect *c = arg;
    da_res *r = NULL;
    for (int i = 0; i < c->n_res && !r; i++)
        if (c->res[i].resource_type == b->rtype && c->res[i].pattern_type == b->pattern &&
            c->res[i].resource_name.len == (int32_t)strlen(b->name) &&
            memcmp(c->res[i].resource_name.ptr, b->name, strlen(b->name)) == 0)
            r = &c->res[i];
    if (!r) {
        if (c->n_res == c->cap) {
            int cap = c->cap ? c->cap * 2 : 8;
            da_res *nr = kreq_alloc(c->q, (size_t)cap, sizeof(*nr));
            if (c->n_res)
                memcpy(nr, c->res, (size_t)c->n_res * sizeof(*nr));
            c->res = nr;
            c->cap = cap;
        }
        r = &c->res[c->n_res++];
        r->resource_type = b->rtype;
        r->pattern_type = b->pattern;
        r->resource_name = kreq_strdup(c->q, kstr_c(b->name));
        r->acls.n = 0;
        r->acls.items = NULL;
    }
    /* grow the entry list by one (ACL counts per resource are small) */
    kafka_describe_acls_response_acl_description *items =
        kreq_alloc(c->q, (size_t)r->acls.n + 1, sizeof(*items));
    if (r->acls.n)
        memcpy(items, r->acls.items, (size_t)r->acls.n * sizeof(*items));
    items[r->acls.n] = (kafka_describe_acls_response_acl_description){
        kreq_strdup(c->q, kstr_c(b->principal)), kreq_strdup(c->q, kstr_c(b->host)), b->op,
        b->perm};
    r->acls.items = items;
    r->acls.n++;
}

void kh_describe_acls(kreq *q)
{
    kafka_describe_acls_request req;
    if (kafka_describe_acls_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_acls_response rsp;
    kafka_describe_acls_response_init(&rsp);
    rsp.error_message = (kstr){NULL, -1};
    KARR_ALLOC(q, rsp.resources, 0);
    acl_filter f = filter_of(q, req.resource_type_filter, req.resource_name_filter,
                             req.pattern_type_filter, req.principal_filter, req.host_filter,
                             req.operation, req.permission_type);
    const char *why;
    if (!ksrv_config(q->ks)->authorizer_enabled || !ksrv_acls(q->ks)) {
        rsp.error_code = KERR_SECURITY_DISABLED;
        rsp.error_message = kstr_c(NO_AUTHZ);
    } else if (!kreq_cluster_allowed(q, ACL_OP_DESCRIBE)) {
        rsp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        rsp.error_message = kstr_c("DESCRIBE on the cluster is needed to list ACLs");
    } else if ((why = acl_filter_invalid(&f))) {
        rsp.error_code = KERR_INVALID_REQUEST;
        rsp.error_message = kstr_c(why);
    } else {
        da_collect c = {q, NULL, 0, 0};
        acl_each(ksrv_acls(q->ks), &f, da_each, &c);
        rsp.resources.items = c.res;
        rsp.resources.n = c.n_res;
    }
    kafka_describe_acls_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* Delete ------------------------------------------------------------------------ */

typedef kafka_delete_acls_response_delete_acls_filter_result dl_res;
typedef kafka_delete_acls_response_delete_acls_matching_acl dl_match;

typedef struct dl_park {
    durable_wait w;                 /* first */
    net_resp *resp;
    int16_t ver;
    int pending;                    /* deletion batches not yet durable, + 1 guard */
    int failed;
    kafka_delete_acls_response rsp;
} dl_park;

typedef struct dl_wait {
    durable_wait w;                 /* first */
    dl_park *pk;
} dl_wait;

static void dl_finish(dl_park *pk)
{
    if (--pk->pending)
        return;
    for (int32_t i = 0; pk->failed && i < pk->rsp.filter_results.n; i++) {
        pk->rsp.filter_results.items[i].error_code = KERR_KAFKA_STORAGE_ERROR;
        pk->rsp.filter_results.items[i].error_message = kstr_c("the ACL log failed to sync");
    }
    kafka_delete_acls_response_encode(&pk->resp->w, pk->ver, &pk->rsp);
    net_resp_ready(pk->resp);
}

static void dl_durable(durable_wait *w, int status)
{
    dl_wait *dw = (dl_wait *)w;
    if (status < 0)
        dw->pk->failed = 1;
    dl_finish(dw->pk);
}

typedef struct dl_collect {
    kreq *q;
    dl_res *r;
} dl_collect;

static void dl_each(void *arg, const acl_binding *b)
{
    dl_collect *c = arg;
    dl_match *items = kreq_alloc(c->q, (size_t)c->r->matching_acls.n + 1, sizeof(*items));
    if (c->r->matching_acls.n)
        memcpy(items, c->r->matching_acls.items, (size_t)c->r->matching_acls.n * sizeof(*items));
    items[c->r->matching_acls.n] = (dl_match){
        KERR_NONE, (kstr){NULL, -1}, b->rtype, kreq_strdup(c->q, kstr_c(b->name)), b->pattern,
        kreq_strdup(c->q, kstr_c(b->principal)), kreq_strdup(c->q, kstr_c(b->host)), b->op,
        b->perm};
    c->r->matching_acls.items = items;
    c->r->matching_acls.n++;
}

void kh_delete_acls(kreq *q)
{
    kafka_delete_acls_request req;
    if (kafka_delete_acls_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    dl_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->ver = q->ver;
    pk->pending = 1;
    kafka_delete_acls_response_init(&pk->rsp);
    int32_t n = req.filters.n > 0 ? req.filters.n : 0;
    KARR_ALLOC(q, pk->rsp.filter_results, n);
    int16_t all_err = KERR_NONE;
    const char *all_msg = NULL;
    if (!ksrv_config(q->ks)->authorizer_enabled || !ksrv_acls(q->ks)) {
        all_err = KERR_SECURITY_DISABLED;
        all_msg = NO_AUTHZ;
    } else if (!kreq_cluster_allowed(q, ACL_OP_ALTER)) {
        all_err = KERR_CLUSTER_AUTHORIZATION_FAILED;
        all_msg = "ALTER on the cluster is needed to delete ACLs";
    }
    int deleted = 0;
    for (int32_t i = 0; i < n; i++) {
        kafka_delete_acls_request_delete_acls_filter *fl = &req.filters.items[i];
        dl_res *r = &pk->rsp.filter_results.items[i];
        r->error_message = (kstr){NULL, -1};
        KARR_ALLOC(q, r->matching_acls, 0);
        if (all_err) {
            r->error_code = all_err;
            r->error_message = kstr_c(all_msg);
            continue;
        }
        acl_filter f = filter_of(q, fl->resource_type_filter, fl->resource_name_filter,
                                 fl->pattern_type_filter, fl->principal_filter, fl->host_filter,
                                 fl->operation, fl->permission_type);
        const char *why = acl_filter_invalid(&f);
        if (why) {
            r->error_code = KERR_INVALID_REQUEST;
            r->error_message = kstr_c(why);
            continue;
        }
        dl_collect c = {q, r};
        int64_t target = -1;
        int rc = acl_delete(ksrv_acls(q->ks), &f, dl_each, &c, &target);
        if (rc < 0) {
            r->error_code = kerr_from_cn(rc);
            r->error_message = kstr_c("the ACL log cannot be written");
            continue;
        }
        r->error_code = KERR_NONE;
        if (target >= 0) {
            deleted += r->matching_acls.n;
            dl_wait *dw = kreq_alloc(q, 1, sizeof(*dw));
            dw->pk = pk;
            pk->pending++;
            acl_wait(ksrv_acls(q->ks), target, &dw->w, dl_durable);
        }
    }
    if (deleted)
        slog_info("acls: %d ACL(s) deleted by %s from %s", deleted,
                  ksess_principal(net_conn_ctx(q->conn)), net_conn_peer(q->conn));
    dl_finish(pk);
}
