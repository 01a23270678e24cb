/* The users SASL checks against (auth/users.h), for operators and
 * `cairn user`:
 *   GET    /users              {"users": [{"name", "mechanisms": [{"mechanism", "iterations"}]}]}
 *   POST   /users              {"name", "password", "mechanism": "SCRAM-SHA-256" |
 *                               "SCRAM-SHA-512" | "all" (default), "iterations": 4096..16384}
 *                               -> 200 {"name", "mechanisms": [...]} once fsynced
 *   DELETE /users/{name}       every credential of the user -> 200 {"deleted": name}
 * The password is derived into SCRAM credentials here and never stored.
 * Errors: 400 invalid_request (bad name, mechanism, iterations, missing
 * password), 404 unknown_user, 500 storage_error, 503 not_committed (hh_store_error). */
#include <string.h>

#include "auth/scram.h"
#include "auth/users.h"
#include "http/http_int.h"
#include "util/common.h"
#include "util/slog.h"

static json_t *mechs_json(const scram_cred *c256, const scram_cred *c512)
{
    json_t *a = json_array();
    const scram_cred *c[2] = {c256, c512};
    for (int i = 0; i < 2; i++)
        if (c[i]) {
            json_t *m = json_object();
            json_object_set_new(m, "mechanism", json_string(scram_mech_name(c[i]->mech)));
            json_object_set_new(m, "iterations", json_integer(c[i]->iterations));
            json_array_append_new(a, m);
        }
    return a;
}

static int no_users(hreq *q)
{
    if (q->hs->core->users)
        return 0;
    hh_error(q, 501, "not_available", "the users table is not available on this node");
    return 1;
}

static void each_user(void *arg, const char *name, const scram_cred *c256,
                      const scram_cred *c512)
{
    json_t *u = json_object();
    json_object_set_new(u, "name", json_string(name));
    json_object_set_new(u, "mechanisms", mechs_json(c256, c512));
    json_array_append_new(arg, u);
}

void hh_users_list(hreq *q)
{
    if (no_users(q))
        return;
    json_t *a = json_array();
    auth_users_each(q->hs->core->users, each_user, a);
    json_t *j = json_object();
    json_object_set_new(j, "users", a);
    hh_reply_json(q, 200, j);
}

typedef struct user_wait {
    durable_wait w;              /* first */
    hreq *q;
    char *name;
    int deleted;
} user_wait;

static void user_durable(durable_wait *w, int status)
{
    user_wait *uw = (user_wait *)w;
    hsrv *hs = uw->q->hs;
    if (status < 0) {
        hh_store_error(uw->q, status, "users");
    } else if (uw->deleted) {
        json_t *j = json_object();
        json_object_set_new(j, "deleted", json_string(uw->name));
        hh_reply_json(uw->q, 200, j);
    } else {
        auth_users *u = hs->core->users;
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(uw->name));
        json_object_set_new(j, "mechanisms",
                            mechs_json(auth_users_find(u, uw->name, SCRAM_SHA_256),
                                       auth_users_find(u, uw->name, SCRAM_SHA_512)));
        hh_reply_json(uw->q, 200, j);
    }
    hsrv__durable_end(hs);
}

static void apply_and_wait(hreq *q, const char *name, const auth_user_change *ch, int n,
                           int deleted)
{
    hsrv *hs = q->hs;
    int64_t target = -1;
    int rc = auth_users_apply(hs->core->users, ch, n, &target);
    if (rc < 0) {
        hh_error(q, 500, "storage_error", "the users log cannot be written (%s)",
                 cn_strerror(rc));
        return;
    }
    slog_info("users: %s %s (HTTP, from %s)", deleted ? "deleted" : "set credentials of", name,
              net_conn_peer(q->c));
    user_wait *uw = hh_alloc(q, sizeof(*uw));
    uw->q = q;
    uw->name = hh_strdup(q, name);
    uw->deleted = deleted;
    hsrv__durable_begin(hs);
    auth_users_wait(hs->core->users, target, &uw->w, user_durable);
}

static int name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > SCRAM_MAX_NAME)
        return 0;
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)n[i] < 0x20)
            return 0;
    return 1;
}

void hh_user_create(hreq *q)
{
    if (no_users(q))
        return;
    json_t *b = hh_body_json_or_reply(q);
    if (!b)
        return;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *pw = json_string_value(json_object_get(b, "password"));
    json_t *mj = json_object_get(b, "mechanism");
    json_t *ij = json_object_get(b, "iterations");
    const char *mech = mj ? json_string_value(mj) : "all";
    int64_t iters = ij ? (json_is_integer(ij) ? json_integer_value(ij) : -1) : 4096;
    if (!name || !name_ok(name)) {
        hh_error(q, 400, "invalid_request", "\"name\": 1..255 characters, no control characters");
    } else if (!pw || !pw[0]) {
        hh_error(q, 400, "invalid_request", "\"password\" is required");
    } else if (!mech || (strcmp(mech, "all") != 0 && !scram_mech_parse(mech, strlen(mech)))) {
        hh_error(q, 400, "invalid_request",
                 "\"mechanism\": SCRAM-SHA-256, SCRAM-SHA-512 or all");
    } else if (iters < SCRAM_MIN_ITERATIONS || iters > SCRAM_MAX_ITERATIONS) {
        hh_error(q, 400, "invalid_request", "\"iterations\": %d..%d", SCRAM_MIN_ITERATIONS,
                 SCRAM_MAX_ITERATIONS);
    } else {
        scram_cred c[2];
        auth_user_change ch[2];
        int n = 0;
        char *nm = hh_strdup(q, name); /* b is freed before the changes are applied */
        for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
            if (strcmp(mech, "all") != 0 && (int)scram_mech_parse(mech, strlen(mech)) != m)
                continue;
            if (scram_cred_make((scram_mech)m, pw, strlen(pw), NULL, 0, (int32_t)iters,
                                &c[n]) < 0) {
                hh_error(q, 500, "internal_error", "cannot derive the credentials");
                json_decref(b);
                return;
            }
            ch[n] = (auth_user_change){nm, (scram_mech)m, &c[n]};
            n++;
        }
        json_decref(b);
        apply_and_wait(q, nm, ch, n, 0);
        return;
    }
    json_decref(b);
}

void hh_user_delete(hreq *q)
{
    if (no_users(q))
        return;
    const char *name = q->seg[1];
    auth_users *u = q->hs->core->users;
    auth_user_change ch[2];
    int n = 0;
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++)
        if (auth_users_find(u, name, (scram_mech)m))
            ch[n++] = (auth_user_change){name, (scram_mech)m, NULL};
    if (!n) {
        hh_error(q, 404, "unknown_user", "user '%s' does not exist", name);
        return;
    }
    apply_and_wait(q, name, ch, n, 1);
}
