/* Bearer tokens (auth/tokens.h) for services and `cairn token`:
 *   GET    /tokens          {"tokens": [TOKEN...]}, TOKEN {"id", "user", "description",
 *                           "created_ms", "expires_ms" (0: never), "expired"}
 *   POST   /tokens          {"user" (default: the caller's own user), "ttl_ms" (0 or
 *                           absent: no expiry), "description"} -> 201 TOKEN with
 *                           "token": the string, shown this once, once fsynced
 *   DELETE /tokens/{id}     -> 200 {"deleted": id} once fsynced
 * Then `Authorization: Bearer TOKEN` logs in as its user wherever
 * http.authentication=basic asks for a login.
 * Who may: a logged-in user manages its own tokens; tokens of other users
 * (and the whole list) need ALTER (DESCRIBE for the list) on the cluster
 * when the authorizer is on (without it, every login may, as for the
 * other admin routes). Errors: 400 invalid_request, 403 forbidden, 404
 * unknown_user / unknown_token, 500 storage_error. */
#include <string.h>

#include "auth/acl.h"
#include "auth/tokens.h"
#include "auth/users.h"
#include "http/http_int.h"
#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

static int no_users(hreq *q)
{
    if (q->hs->core->users)
        return 0;
    hh_error(q, 501, "not_available", "the users table is not available on this node");
    return 1;
}

/* The caller's own user name (its principal is User:NAME), or NULL. */
static const char *own_user(const hreq *q)
{
    const char *p = q->principal;
    if (!q->hs->cfg->http_auth || !p || strncmp(p, "User:", 5) != 0 ||
        strcmp(p, "User:ANONYMOUS") == 0)
        return NULL;
    return p + 5;
}

/* May the caller op (ALTER or DESCRIBE) the tokens of user (NULL: all)? */
static int may(const hreq *q, int op, const char *user)
{
    const char *me = own_user(q);
    if (user && me && strcmp(me, user) == 0)
        return 1;
    const cairn_config *cfg = q->hs->cfg;
    if (!cfg->authorizer_enabled || !cfg->http_auth)
        return 1;
    return acl_authorize(q->hs->core->acls, cfg, q->principal, net_conn_host(q->c), op,
                         ACL_R_CLUSTER, ACL_CLUSTER_NAME, strlen(ACL_CLUSTER_NAME));
}

static json_t *token_json(const auth_token_info *t, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "user", json_string(t->user));
    json_object_set_new(o, "description", json_string(t->description));
    json_object_set_new(o, "created_ms", json_integer(t->created_ms));
    json_object_set_new(o, "expires_ms", json_integer(t->expires_ms));
    json_object_set_new(o, "expired", json_boolean(t->expires_ms && now >= t->expires_ms));
    return o;
}

typedef struct list_ctx {
    json_t *a;
    const char *only;            /* NULL: all users' */
    int64_t now;
} list_ctx;

static void each_token(void *arg, const auth_token_info *t)
{
    list_ctx *c = arg;
    if (!c->only || strcmp(c->only, t->user) == 0)
        json_array_append_new(c->a, token_json(t, c->now));
}

void hh_tokens_list(hreq *q)
{
    if (no_users(q))
        return;
    /* all tokens for whoever may describe the cluster, else one's own */
    int all = may(q, ACL_OP_DESCRIBE, NULL);
    if (!all && !own_user(q)) {
        hh_error(q, 403, "forbidden", "%s may not Describe the cluster", q->principal);
        return;
    }
    list_ctx c = {json_array(), all ? NULL : own_user(q), loop_wall_ms()};
    auth_tokens_each(q->hs->core->users, each_token, &c);
    json_t *j = json_object();
    json_object_set_new(j, "tokens", c.a);
    hh_reply_json(q, 200, j);
}

typedef struct token_wait {
    durable_wait w;              /* first */
    hreq *q;
    json_t *reply;               /* owned until sent */
    int status;
} token_wait;

static void token_durable(durable_wait *w, int status)
{
    token_wait *tw = (token_wait *)w;
    hsrv *hs = tw->q->hs;
    if (status < 0) {
        json_decref(tw->reply);
        hh_store_error(tw->q, status, "users");
    } else {
        hh_reply_json(tw->q, tw->status, tw->reply);
    }
    hsrv__durable_end(hs);
}

static void reply_when_durable(hreq *q, int64_t target, int status, json_t *reply)
{
    token_wait *tw = hh_alloc(q, sizeof(*tw));
    tw->q = q;
    tw->reply = reply;
    tw->status = status;
    hsrv__durable_begin(q->hs);
    auth_users_wait(q->hs->core->users, target, &tw->w, token_durable);
}

void hh_token_create(hreq *q)
{
    if (no_users(q))
        return;
    json_t *b = hh_body_json_or_reply(q);
    if (!b)
        return;
    json_t *uj = json_object_get(b, "user"), *tj = json_object_get(b, "ttl_ms"),
           *dj = json_object_get(b, "description");
    const char *user = uj ? json_string_value(uj) : own_user(q);
    const char *desc = dj ? json_string_value(dj) : "";
    int64_t ttl = tj ? (json_is_integer(tj) ? json_integer_value(tj) : -1) : 0;
    if (!user) {
        hh_error(q, 400, "invalid_request",
                 uj ? "\"user\" must be a string" : "\"user\" is required (no login)");
    } else if (ttl < 0) {
        hh_error(q, 400, "invalid_request", "\"ttl_ms\": 0 (no expiry) or more");
    } else if (!desc || strlen(desc) > AUTH_TOKEN_MAX_DESC) {
        hh_error(q, 400, "invalid_request", "\"description\": a string of at most %d bytes",
                 AUTH_TOKEN_MAX_DESC);
    } else if (!may(q, ACL_OP_ALTER, user)) {
        hh_error(q, 403, "forbidden", "%s may not Alter the cluster (tokens of user '%.64s')",
                 q->principal, user);
    } else {
        char tok[AUTH_TOKEN_LEN + 1];
        auth_token_info info;
        int64_t target = -1, now = loop_wall_ms();
        int rc = auth_token_create(q->hs->core->users, user, now, ttl, desc, tok, &info,
                                   &target);
        if (rc == -CN_ENOENT) {
            hh_error(q, 404, "unknown_user", "user '%.64s' does not exist", user);
        } else if (rc == -CN_EINVAL) {
            hh_error(q, 400, "invalid_request", "\"ttl_ms\" out of range");
        } else if (rc < 0) {
            hh_error(q, 500, "storage_error", "the users log cannot be written (%s)",
                     cn_strerror(rc));
        } else {
            slog_info("tokens: created %s for user '%s' (HTTP, %s from %s)", info.id, info.user,
                      q->principal, net_conn_peer(q->c));
            json_t *j = token_json(&info, now);
            json_object_set_new(j, "token", json_string(tok));
            memset(tok, 0, sizeof(tok));
            json_decref(b);
            reply_when_durable(q, target, 201, j);
            return;
        }
    }
    json_decref(b);
}

void hh_token_delete(hreq *q)
{
    if (no_users(q))
        return;
    const char *id = q->seg[1];
    auth_token_info info;
    if (auth_token_find(q->hs->core->users, id, &info) < 0) {
        hh_error(q, 404, "unknown_token", "no token with id '%.32s'", id);
        return;
    }
    if (!may(q, ACL_OP_ALTER, info.user)) {
        hh_error(q, 403, "forbidden", "%s may not Alter the cluster (tokens of user '%s')",
                 q->principal, info.user);
        return;
    }
    int64_t target = -1;
    int rc = auth_token_delete(q->hs->core->users, id, &target);
    if (rc < 0) {
        hh_error(q, 500, "storage_error", "the users log cannot be written (%s)",
                 cn_strerror(rc));
        return;
    }
    slog_info("tokens: deleted %s (HTTP, %s from %s)", id, q->principal, net_conn_peer(q->c));
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(id));
    reply_when_durable(q, target, 200, j);
}
