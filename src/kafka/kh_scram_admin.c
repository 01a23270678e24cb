/* DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554):
 * Kafka admin clients list and manage the users SASL checks against
 * (auth/users.h).
 *
 * Describe: null or empty users = every user; per user its mechanisms and
 * iteration counts (never salts or keys); a user without credentials is
 * RESOURCE_NOT_FOUND, a name asked twice DUPLICATE_RESOURCE.
 * Alter, per user as Kafka answers: an unknown mechanism
 * UNSUPPORTED_SASL_MECHANISM; an empty name, iterations outside
 * 4096..16384, a missing salt or a SaltedPassword of the wrong length
 * UNACCEPTABLE_CREDENTIAL; a deletion of a credential that does not exist
 * RESOURCE_NOT_FOUND; one user named in two changes for the same mechanism
 * DUPLICATE_RESOURCE (all of that user's changes fail). The good changes
 * are appended as one batch and answered once fsynced (in a cluster: once
 * committed through the controller and applied on this node, astore.h). */
#include <stdio.h>
#include <string.h>

#include "auth/scram.h"
#include "auth/users.h"
#include "kafka/kafka.h"
#include "util/common.h"
#include "util/slog.h"

static const char NO_USERS[] = "the users table is not available on this node";

static int same(kstr a, kstr b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

typedef kafka_describe_user_scram_credentials_response_describe_user_scram_credentials_result
    du_result;
typedef kafka_alter_user_scram_credentials_response_alter_user_scram_credentials_result au_result;

static void describe_one(kreq *q, auth_users *u, const char *name, du_result *r)
{
    r->user = kreq_strdup(q, kstr_c(name));
    r->error_message = (kstr){NULL, -1};
    int n = 0;
    const scram_cred *c[2] = {auth_users_find(u, name, SCRAM_SHA_256),
                              auth_users_find(u, name, SCRAM_SHA_512)};
    n = (c[0] != NULL) + (c[1] != NULL);
    if (n == 0) {
        r->error_code = KERR_RESOURCE_NOT_FOUND;
        r->error_message = kstr_c("Attempt to describe a user credential that does not exist");
        KARR_ALLOC(q, r->credential_infos, 0);
        return;
    }
    KARR_ALLOC(q, r->credential_infos, n);
    int k = 0;
    for (int i = 0; i < 2; i++)
        if (c[i]) {
            r->credential_infos.items[k].mechanism = (int8_t)c[i]->mech;
            r->credential_infos.items[k].iterations = c[i]->iterations;
            k++;
        }
}

typedef struct du_all {
    kreq *q;
    auth_users *u;
    du_result *items;
    int n;
} du_all;

static void each_user(void *arg, const char *name, const scram_cred *c256,
                      const scram_cred *c512)
{
    (void)c256, (void)c512;
    du_all *a = arg;
    describe_one(a->q, a->u, name, &a->items[a->n++]);
}

void kh_describe_user_scram_credentials(kreq *q)
{
    kafka_describe_user_scram_credentials_request req;
    if (kafka_describe_user_scram_credentials_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_user_scram_credentials_response rsp;
    kafka_describe_user_scram_credentials_response_init(&rsp);
    rsp.error_message = (kstr){NULL, -1};
    auth_users *u = ksrv_users(q->ks);
    if (!u) {
        rsp.error_code = KERR_UNSUPPORTED_VERSION;
        rsp.error_message = kstr_c(NO_USERS);
        KARR_ALLOC(q, rsp.results, 0);
    } else if (!kreq_cluster_allowed(q, ACL_OP_DESCRIBE)) {
        rsp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        rsp.error_message = kstr_c("DESCRIBE on the cluster is needed");
        KARR_ALLOC(q, rsp.results, 0);
    } else if (req.users.n <= 0) {
        du_all a = {q, u, NULL, 0};
        KARR_ALLOC(q, rsp.results, auth_users_count(u));
        a.items = rsp.results.items;
        auth_users_each(u, each_user, &a);
        rsp.results.n = a.n;
    } else {
        KARR_ALLOC(q, rsp.results, req.users.n);
        for (int32_t i = 0; i < req.users.n; i++) {
            kstr nm = req.users.items[i].name;
            du_result *r = &rsp.results.items[i];
            char name[SCRAM_MAX_NAME + 1];
            snprintf(name, sizeof(name), "%.*s", nm.len > 0 ? (int)nm.len : 0,
                     nm.len > 0 ? nm.ptr : "");
            int dup = 0;
            for (int32_t j = 0; j < req.users.n; j++)
                dup |= j != i && same(req.users.items[j].name, nm);
            if (dup) {
                r->user = kreq_strdup(q, nm);
                r->error_code = KERR_DUPLICATE_RESOURCE;
                r->error_message = kstr_c("Cannot describe SCRAM credentials for the same user "
                                          "twice in a single request");
                KARR_ALLOC(q, r->credential_infos, 0);
                continue;
            }
            describe_one(q, u, name, r);
        }
    }
    kafka_describe_user_scram_credentials_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* Alter ----------------------------------------------------------------------- */

typedef struct au_park {
    durable_wait w;                 /* first */
    net_resp *resp;
    int16_t ver;
    kafka_alter_user_scram_credentials_response rsp;
} au_park;

static void au_durable(durable_wait *w, int status)
{
    au_park *pk = (au_park *)w;
    if (status < 0)
        for (int32_t i = 0; i < pk->rsp.results.n; i++)
            if (pk->rsp.results.items[i].error_code == KERR_NONE) {
                pk->rsp.results.items[i].error_code = KERR_KAFKA_STORAGE_ERROR;
                pk->rsp.results.items[i].error_message = kstr_c("the users log failed to sync");
            }
    kafka_alter_user_scram_credentials_response_encode(&pk->resp->w, pk->ver, &pk->rsp);
    net_resp_ready(pk->resp);
}

/* The user names of the request, each once, in first-seen order. */
static int add_name(kstr *names, int n, kstr nm)
{
    for (int i = 0; i < n; i++)
        if (same(names[i], nm))
            return n;
    names[n] = nm;
    return n + 1;
}

void kh_alter_user_scram_credentials(kreq *q)
{
    kafka_alter_user_scram_credentials_request req;
    if (kafka_alter_user_scram_credentials_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    int32_t nd = req.deletions.n > 0 ? req.deletions.n : 0;
    int32_t nu = req.upsertions.n > 0 ? req.upsertions.n : 0;
    au_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->ver = q->ver;
    kafka_alter_user_scram_credentials_response_init(&pk->rsp);
    kstr *names = kreq_alloc(q, (size_t)(nd + nu) + 1, sizeof(kstr));
    int nn = 0;
    for (int32_t i = 0; i < nd; i++)
        nn = add_name(names, nn, req.deletions.items[i].name);
    for (int32_t i = 0; i < nu; i++)
        nn = add_name(names, nn, req.upsertions.items[i].name);
    KARR_ALLOC(q, pk->rsp.results, nn);
    int16_t *err = kreq_alloc(q, (size_t)nn + 1, sizeof(int16_t));
    const char **msg = kreq_alloc(q, (size_t)nn + 1, sizeof(char *));
    auth_users *u = ksrv_users(q->ks);
    int may = kreq_cluster_allowed(q, ACL_OP_ALTER);
    /* per user: the first problem found */
    for (int k = 0; k < nn; k++) {
        int seen[3] = {0, 0, 0};
        if (!u) {
            err[k] = KERR_UNSUPPORTED_VERSION;
            msg[k] = NO_USERS;
            continue;
        }
        if (!may) {
            err[k] = KERR_CLUSTER_AUTHORIZATION_FAILED;
            msg[k] = "ALTER on the cluster is needed to change users";
            continue;
        }
        if (names[k].len <= 0 || names[k].len > SCRAM_MAX_NAME ||
            memchr(names[k].ptr, '\0', (size_t)names[k].len)) {
            err[k] = KERR_UNACCEPTABLE_CREDENTIAL;
            msg[k] = "Username must not be empty";
            continue;
        }
        /* duplicates first, as Kafka checks them */
        for (int32_t i = 0; i < nd + nu && !err[k]; i++) {
            int del = i < nd;
            kstr nm = del ? req.deletions.items[i].name : req.upsertions.items[i - nd].name;
            int8_t m = del ? req.deletions.items[i].mechanism
                           : req.upsertions.items[i - nd].mechanism;
            if (same(nm, names[k]) && (m == SCRAM_SHA_256 || m == SCRAM_SHA_512) && seen[m]++) {
                err[k] = KERR_DUPLICATE_RESOURCE;
                msg[k] = "A user credential cannot be altered twice in the same request";
            }
        }
        for (int32_t i = 0; i < nd + nu && !err[k]; i++) {
            int del = i < nd;
            kstr nm = del ? req.deletions.items[i].name : req.upsertions.items[i - nd].name;
            int8_t m = del ? req.deletions.items[i].mechanism
                           : req.upsertions.items[i - nd].mechanism;
            if (!same(nm, names[k]))
                continue;
            if (m != SCRAM_SHA_256 && m != SCRAM_SHA_512) {
                err[k] = KERR_UNSUPPORTED_SASL_MECHANISM;
                msg[k] = "Unknown SCRAM mechanism";
            } else if (del) {
                char name[SCRAM_MAX_NAME + 1];
                snprintf(name, sizeof(name), "%.*s", (int)nm.len, nm.ptr);
                if (!auth_users_find(u, name, (scram_mech)m)) {
                    err[k] = KERR_RESOURCE_NOT_FOUND;
                    msg[k] = "Attempt to delete a user credential that does not exist";
                }
            } else {
                const kafka_alter_user_scram_credentials_request_scram_credential_upsertion *up =
                    &req.upsertions.items[i - nd];
                if (up->iterations < SCRAM_MIN_ITERATIONS ||
                    up->iterations > SCRAM_MAX_ITERATIONS) {
                    err[k] = KERR_UNACCEPTABLE_CREDENTIAL;
                    msg[k] = up->iterations < SCRAM_MIN_ITERATIONS
                                 ? "Too few iterations (at least 4096)"
                                 : "Too many iterations (at most 16384)";
                } else if (up->salt.len <= 0 || up->salt.len > SCRAM_MAX_SALT ||
                           up->salted_password.len != (int32_t)scram_key_len((scram_mech)m)) {
                    err[k] = KERR_UNACCEPTABLE_CREDENTIAL;
                    msg[k] = "Salt or salted password of the wrong size";
                }
            }
        }
    }
    /* the changes of the users without a problem, as one batch */
    auth_user_change *ch = kreq_alloc(q, (size_t)(nd + nu) + 1, sizeof(*ch));
    scram_cred *creds = kreq_alloc(q, (size_t)nu + 1, sizeof(*creds));
    char(*nbuf)[SCRAM_MAX_NAME + 1] = kreq_alloc(q, (size_t)(nd + nu) + 1, sizeof(*nbuf));
    int nc = 0;
    for (int32_t i = 0; u && i < nd + nu; i++) {
        int del = i < nd;
        kstr nm = del ? req.deletions.items[i].name : req.upsertions.items[i - nd].name;
        int k = 0;
        while (!same(names[k], nm))
            k++;
        if (err[k])
            continue;
        snprintf(nbuf[nc], sizeof(nbuf[nc]), "%.*s", (int)nm.len, nm.ptr);
        ch[nc].name = nbuf[nc];
        if (del) {
            ch[nc].mech = (scram_mech)req.deletions.items[i].mechanism;
            ch[nc].cred = NULL;
        } else {
            const kafka_alter_user_scram_credentials_request_scram_credential_upsertion *up =
                &req.upsertions.items[i - nd];
            ch[nc].mech = (scram_mech)up->mechanism;
            if (scram_cred_from_salted(ch[nc].mech, up->salted_password.ptr,
                                       (size_t)up->salted_password.len, up->salt.ptr,
                                       (size_t)up->salt.len, up->iterations,
                                       &creds[i - nd]) < 0) {
                err[k] = KERR_UNACCEPTABLE_CREDENTIAL;
                msg[k] = "Invalid credential";
                continue;
            }
            ch[nc].cred = &creds[i - nd];
        }
        nc++;
    }
    int64_t target = -1;
    int rc = nc ? auth_users_apply(u, ch, nc, &target) : 0;
    for (int k = 0; k < nn; k++) {
        au_result *r = &pk->rsp.results.items[k];
        r->user = kreq_strdup(q, names[k]);
        r->error_code = err[k] ? err[k] : rc < 0 ? kerr_from_cn(rc) : KERR_NONE;
        r->error_message = err[k] ? kstr_c(msg[k])
                           : rc < 0 ? kstr_c("the users log cannot be written")
                                    : (kstr){NULL, -1};
    }
    if (nc && rc == 0) {
        slog_info("users: %d SCRAM credential change(s) from %s", nc, net_conn_peer(q->conn));
        auth_users_wait(u, target, &pk->w, au_durable);
        return;
    }
    au_durable(&pk->w, 0);
}
