/* The users table on __users (contract and record format in users.h).
 * Memory: an array sorted by name, each entry with one credential slot per
 * mechanism; lookups are binary searches. */
#include "auth/users.h"

#include <stdlib.h>
#include <string.h>

#include "auth/users_int.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

static int find_idx(const auth_users *u, const char *name, int *at)
{
    int lo = 0, hi = u->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(u->v[mid].name, name);
        if (c == 0) {
            *at = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

/* Set (cred) or clear (NULL) one slot; entries without credentials go. */
static void mem_set(auth_users *u, const char *name, scram_mech m, const scram_cred *cred)
{
    u->gen++;
    int at;
    int found = find_idx(u, name, &at);
    if (!found) {
        if (!cred)
            return;
        if (u->n == u->cap) {
            u->cap = u->cap ? u->cap * 2 : 16;
            u->v = xrealloc(u->v, (size_t)u->cap * sizeof(*u->v));
        }
        memmove(u->v + at + 1, u->v + at, (size_t)(u->n - at) * sizeof(*u->v));
        u->v[at] = (user_ent){xstrdup(name), {NULL, NULL, NULL}};
        u->n++;
    }
    user_ent *e = &u->v[at];
    if (cred) {
        if (!e->c[m])
            e->c[m] = xmalloc(sizeof(scram_cred));
        *e->c[m] = *cred;
        return;
    }
    free(e->c[m]);
    e->c[m] = NULL;
    if (!e->c[1] && !e->c[2]) {
        free(e->name);
        memmove(u->v + at, u->v + at + 1, (size_t)(u->n - at - 1) * sizeof(*u->v));
        u->n--;
    }
}

/* Codec -------------------------------------------------------------------- */

static size_t key_encode(uint8_t *out, const char *name, scram_mech m)
{
    size_t n = strlen(name);
    out[0] = 0;
    out[1] = (uint8_t)m;
    memcpy(out + 2, name, n);
    return n + 2;
}

static size_t value_encode(uint8_t *out, const scram_cred *c)
{
    size_t kl = scram_key_len(c->mech), o = 0;
    out[o++] = 0;
    out[o++] = (uint8_t)(c->iterations >> 24);
    out[o++] = (uint8_t)(c->iterations >> 16);
    out[o++] = (uint8_t)(c->iterations >> 8);
    out[o++] = (uint8_t)c->iterations;
    out[o++] = c->salt_len;
    memcpy(out + o, c->salt, c->salt_len);
    o += c->salt_len;
    memcpy(out + o, c->stored_key, kl);
    o += kl;
    memcpy(out + o, c->server_key, kl);
    return o + kl;
}

static int on_record(void *arg, const batch_record *r, const char **why)
{
    auth_users *u = arg;
    if (r->key_len >= 2 && r->key[0] == 0 && r->key[1] == AUTH_KEY_TOKEN)
        return auth__token_record(u, r, why); /* tokens.c */
    if (r->key_len < 3 || r->key_len > 2 + SCRAM_MAX_NAME || r->key[0] != 0 ||
        (r->key[1] != SCRAM_SHA_256 && r->key[1] != SCRAM_SHA_512) ||
        memchr(r->key + 2, '\0', (size_t)r->key_len - 2)) {
        *why = "bad user key";
        return -CN_EINVAL;
    }
    char name[SCRAM_MAX_NAME + 1];
    memcpy(name, r->key + 2, (size_t)r->key_len - 2);
    name[r->key_len - 2] = '\0';
    scram_mech m = (scram_mech)r->key[1];
    if (r->value_len < 0) {
        mem_set(u, name, m, NULL);
        return 0;
    }
    const uint8_t *v = r->value;
    size_t kl = scram_key_len(m);
    if (r->value_len < 6 || v[0] != 0) {
        *why = "bad credential value";
        return -CN_EINVAL;
    }
    scram_cred c;
    memset(&c, 0, sizeof(c));
    c.mech = m;
    c.iterations = (int32_t)((uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 |
                             v[4]);
    c.salt_len = v[5];
    if (c.salt_len == 0 || c.salt_len > SCRAM_MAX_SALT ||
        (size_t)r->value_len != 6 + c.salt_len + 2 * kl || c.iterations < 1) {
        *why = "bad credential value";
        return -CN_EINVAL;
    }
    memcpy(c.salt, v + 6, c.salt_len);
    memcpy(c.stored_key, v + 6 + c.salt_len, kl);
    memcpy(c.server_key, v + 6 + c.salt_len + kl, kl);
    mem_set(u, name, m, &c);
    return 0;
}

static int on_compact(void *arg, kvl_compaction *cx)
{
    auth_users *u = arg;
    uint8_t k[2 + SCRAM_MAX_NAME], v[6 + SCRAM_MAX_SALT + 2 * SCRAM_MAX_KEY];
    for (int i = 0; i < u->n; i++)
        for (int m = 1; m <= 2; m++) {
            const scram_cred *c = u->v[i].c[m];
            if (!c)
                continue;
            size_t kl = key_encode(k, u->v[i].name, (scram_mech)m);
            size_t vl = value_encode(v, c);
            int rc = kvl_compact_add(cx, k, (int32_t)kl, v, (int32_t)vl);
            if (rc < 0)
                return rc;
        }
    return auth__tokens_compact(u, cx);
}

static int64_t live_bytes(void *arg)
{
    auth_users *u = arg;
    int64_t n = 0;
    for (int i = 0; i < u->n; i++)
        n += (int64_t)(strlen(u->v[i].name) + 2 * (200));
    return n + (int64_t)u->ntok * 120;
}

static const kvl_ops users_ops = {on_record, on_compact, live_bytes};

/* API ------------------------------------------------------------------------ */

int auth_users_open(broker *b, auth_users **out)
{
    auth_users *u = xcalloc(1, sizeof(*u));
    int rc = auth_store_open_local(b, BROKER_USERS_TOPIC, &users_ops, u, &u->st);
    if (rc < 0) {
        auth_users_close(u);
        return rc;
    }
    *out = u;
    return 0;
}

auth_users *auth_users_open_cluster(cluster *c)
{
    auth_users *u = xcalloc(1, sizeof(*u));
    u->st = auth_store_open_cluster(c, "users", &users_ops, u);
    return u;
}

void auth_users_close(auth_users *u)
{
    if (!u)
        return;
    auth_store_close(u->st);
    for (int i = 0; i < u->n; i++) {
        free(u->v[i].name);
        free(u->v[i].c[1]);
        free(u->v[i].c[2]);
    }
    free(u->v);
    auth__tokens_free(u);
    free(u);
}

const scram_cred *auth_users_find(const auth_users *u, const char *name, scram_mech mech)
{
    int at;
    if (!u || (mech != SCRAM_SHA_256 && mech != SCRAM_SHA_512) || !find_idx(u, name, &at))
        return NULL;
    return u->v[at].c[mech];
}

const scram_cred *auth_users_find_any(const auth_users *u, const char *name)
{
    const scram_cred *c = auth_users_find(u, name, SCRAM_SHA_512);
    return c ? c : auth_users_find(u, name, SCRAM_SHA_256);
}

/* When name has no credential after the changes ch[0..n): the index of
 * the first change deleting one of name's (its tokens are buried once,
 * there); else -1. */
static int left_without(const auth_users *u, const auth_user_change *ch, int n,
                        const char *name)
{
    int first_del = -1;
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
        int have = auth_users_find(u, name, (scram_mech)m) != NULL;
        for (int i = 0; i < n; i++)
            if (strcmp(ch[i].name, name) == 0 && (int)ch[i].mech == m) {
                have = ch[i].cred != NULL;
                if (!ch[i].cred && first_del < 0)
                    first_del = i;
            }
        if (have)
            return -1;
    }
    return first_del;
}

int auth_users_apply(auth_users *u, const auth_user_change *ch, int n, int64_t *target)
{
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(ch[i].name);
        if (nl == 0 || nl > SCRAM_MAX_NAME || (ch[i].mech != SCRAM_SHA_256 &&
                                               ch[i].mech != SCRAM_SHA_512))
            return -CN_EINVAL;
        if (!ch[i].cred && !auth_users_find(u, ch[i].name, ch[i].mech))
            return -CN_ENOENT;
    }
    kvl_batch bt;
    kvl_batch_init(&bt);
    uint8_t k[2 + SCRAM_MAX_NAME], v[6 + SCRAM_MAX_SALT + 2 * SCRAM_MAX_KEY];
    for (int i = 0; i < n; i++) {
        size_t kl = key_encode(k, ch[i].name, ch[i].mech);
        size_t vl = ch[i].cred ? value_encode(v, ch[i].cred) : 0;
        kvl_batch_add(&bt, k, (int32_t)kl, v, ch[i].cred ? (int32_t)vl : -1);
    }
    /* a user left without credentials loses its tokens in the same batch */
    for (int i = 0; i < n; i++)
        if (!ch[i].cred && left_without(u, ch, n, ch[i].name) == i)
            auth__tokens_tombstones(u, ch[i].name, &bt);
    int rc = auth_store_append(u->st, &bt, target);
    kvl_batch_fini(&bt);
    if (rc < 0)
        return rc;
    if (auth_store_applies_at_append(u->st)) { /* else: when the cluster applies it */
        for (int i = 0; i < n; i++)
            mem_set(u, ch[i].name, ch[i].mech, ch[i].cred);
        for (int i = 0; i < n; i++)
            if (!ch[i].cred && !auth_users_find_any(u, ch[i].name))
                auth__tokens_drop_user(u, ch[i].name);
    }
    auth_store_maybe_compact(u->st);
    return 0;
}

void auth_users_wait(auth_users *u, int64_t target, durable_wait *w,
                     void (*cb)(durable_wait *w, int status))
{
    auth_store_wait(u->st, target, w, cb);
}

void auth_users_each(const auth_users *u,
                     void (*fn)(void *arg, const char *name, const scram_cred *c256,
                                const scram_cred *c512),
                     void *arg)
{
    for (int i = 0; u && i < u->n; i++)
        fn(arg, u->v[i].name, u->v[i].c[1], u->v[i].c[2]);
}

int auth_users_count(const auth_users *u) { return u ? u->n : 0; }
uint64_t auth_users_generation(const auth_users *u) { return u ? u->gen : 0; }
