/* Bearer tokens on __users (contract and record format in tokens.h).
 * Memory: an array in creation order; lookups scan it (the HTTP front end
 * checks a connection's token once and caches the result). */
#include "auth/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users_int.h"
#include "net/loop.h"
#include "util/bytes.h"
#include "util/common.h"

#define TOKEN_PREFIX "cairn_"
#define SECRET_LEN 32

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
    }
    return 0;
}

static token_ent *find(const auth_users *u, const uint8_t id[8])
{
    for (int i = 0; i < u->ntok; i++)
        if (memcmp(u->tok[i].id, id, 8) == 0)
            return &u->tok[i];
    return NULL;
}

static void info_of(const token_ent *t, auth_token_info *out)
{
    hex(t->id, 8, out->id);
    out->user = t->user;
    out->description = t->description;
    out->created_ms = t->created_ms;
    out->expires_ms = t->expires_ms;
}

/* Memory --------------------------------------------------------------------- */

static void ent_free(token_ent *t)
{
    free(t->user);
    free(t->description);
}

static void mem_remove(auth_users *u, token_ent *t)
{
    u->gen++;
    ent_free(t);
    int at = (int)(t - u->tok);
    memmove(u->tok + at, u->tok + at + 1, (size_t)(u->ntok - at - 1) * sizeof(*u->tok));
    u->ntok--;
}

/* Take t (strings owned) in, replacing a token of the same id. */
static void mem_put(auth_users *u, const token_ent *t)
{
    u->gen++;
    token_ent *old = find(u, t->id);
    if (old) {
        ent_free(old);
        *old = *t;
        return;
    }
    if (u->ntok == u->captok) {
        u->captok = u->captok ? u->captok * 2 : 8;
        u->tok = xrealloc(u->tok, (size_t)u->captok * sizeof(*u->tok));
    }
    u->tok[u->ntok++] = *t;
}

void auth__tokens_free(auth_users *u)
{
    for (int i = 0; i < u->ntok; i++)
        ent_free(&u->tok[i]);
    free(u->tok);
    u->tok = NULL;
    u->ntok = u->captok = 0;
}

/* Codec ---------------------------------------------------------------------- */

#define VALUE_MAX (1 + 8 + 8 + 32 + 1 + SCRAM_MAX_NAME + 2 + AUTH_TOKEN_MAX_DESC)

static void key_encode(uint8_t out[10], const uint8_t id[8])
{
    out[0] = 0;
    out[1] = AUTH_KEY_TOKEN;
    memcpy(out + 2, id, 8);
}

static size_t value_encode(uint8_t *out, const token_ent *t)
{
    size_t o = 0, ul = strlen(t->user), dl = strlen(t->description);
    out[o++] = 0;
    be_put64(out + o, (uint64_t)t->created_ms);
    o += 8;
    be_put64(out + o, (uint64_t)t->expires_ms);
    o += 8;
    memcpy(out + o, t->hash, 32);
    o += 32;
    out[o++] = (uint8_t)ul;
    memcpy(out + o, t->user, ul);
    o += ul;
    be_put16(out + o, (uint16_t)dl);
    o += 2;
    memcpy(out + o, t->description, dl);
    return o + dl;
}

int auth__token_record(auth_users *u, const batch_record *r, const char **why)
{
    if (r->key_len != 10) {
        *why = "bad token key";
        return -CN_EINVAL;
    }
    const uint8_t *id = r->key + 2;
    if (r->value_len < 0) {
        token_ent *t = find(u, id);
        if (t)
            mem_remove(u, t);
        return 0;
    }
    const uint8_t *v = r->value;
    size_t n = (size_t)r->value_len;
    if (n < 1 + 8 + 8 + 32 + 1 || v[0] != 0) {
        *why = "bad token value";
        return -CN_EINVAL;
    }
    size_t ul = v[49];
    if (ul == 0 || n < 50 + ul + 2) {
        *why = "bad token value";
        return -CN_EINVAL;
    }
    size_t dl = be_get16(v + 50 + ul);
    if (n != 50 + ul + 2 + dl || dl > AUTH_TOKEN_MAX_DESC || memchr(v + 50, '\0', ul) ||
        memchr(v + 52 + ul, '\0', dl)) {
        *why = "bad token value";
        return -CN_EINVAL;
    }
    token_ent t;
    memcpy(t.id, id, 8);
    t.created_ms = (int64_t)be_get64(v + 1);
    t.expires_ms = (int64_t)be_get64(v + 9);
    memcpy(t.hash, v + 17, 32);
    t.user = xmalloc(ul + 1);
    memcpy(t.user, v + 50, ul);
    t.user[ul] = '\0';
    t.description = xmalloc(dl + 1);
    memcpy(t.description, v + 52 + ul, dl);
    t.description[dl] = '\0';
    mem_put(u, &t);
    return 0;
}

int auth__tokens_compact(const auth_users *u, kvl_compaction *cx)
{
    uint8_t k[10], v[VALUE_MAX];
    for (int i = 0; i < u->ntok; i++) {
        key_encode(k, u->tok[i].id);
        size_t vl = value_encode(v, &u->tok[i]);
        int rc = kvl_compact_add(cx, k, (int32_t)sizeof(k), v, (int32_t)vl);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void auth__tokens_tombstones(const auth_users *u, const char *name, kvl_batch *bt)
{
    uint8_t k[10];
    for (int i = 0; i < u->ntok; i++)
        if (strcmp(u->tok[i].user, name) == 0) {
            key_encode(k, u->tok[i].id);
            kvl_batch_add(bt, k, (int32_t)sizeof(k), NULL, -1);
        }
}

void auth__tokens_drop_user(auth_users *u, const char *name)
{
    for (int i = u->ntok - 1; i >= 0; i--)
        if (strcmp(u->tok[i].user, name) == 0)
            mem_remove(u, &u->tok[i]);
}

/* API ------------------------------------------------------------------------ */

static int append_one(auth_users *u, const uint8_t id[8], const token_ent *t, int64_t *target)
{
    uint8_t k[10], v[VALUE_MAX];
    key_encode(k, id);
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, k, (int32_t)sizeof(k), v, t ? (int32_t)value_encode(v, t) : -1);
    int rc = auth_store_append(u->st, &bt, target);
    kvl_batch_fini(&bt);
    return rc;
}

int auth_token_create(auth_users *u, const char *user, int64_t now_ms, int64_t ttl_ms,
                      const char *description, char *token, auth_token_info *info,
                      int64_t *target)
{
    if (!description)
        description = "";
    if (ttl_ms < 0 || ttl_ms > INT64_MAX - now_ms || strlen(description) > AUTH_TOKEN_MAX_DESC)
        return -CN_EINVAL;
    if (!auth_users_find_any(u, user))
        return -CN_ENOENT;
    uint8_t secret[SECRET_LEN];
    token_ent t;
    do {
        if (RAND_bytes(t.id, sizeof(t.id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
            return -CN_EIO;
    } while (find(u, t.id));
    unsigned int hl = 0;
    EVP_Digest(secret, sizeof(secret), t.hash, &hl, EVP_sha256(), NULL);
    t.created_ms = now_ms;
    t.expires_ms = ttl_ms ? now_ms + ttl_ms : 0;
    t.user = (char *)user;
    t.description = (char *)description;
    int rc = append_one(u, t.id, &t, target);
    if (rc < 0)
        return rc;
    memcpy(token, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
    char *p = token + sizeof(TOKEN_PREFIX) - 1;
    hex(t.id, 8, p);
    p[AUTH_TOKEN_ID_HEX] = '_';
    hex(secret, sizeof(secret), p + AUTH_TOKEN_ID_HEX + 1);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (auth_store_applies_at_append(u->st)) { /* else: when the cluster applies it */
        t.user = xstrdup(user);
        t.description = xstrdup(description);
        mem_put(u, &t);
        info_of(find(u, t.id), info);
    } else {
        info_of(&t, info); /* borrowed strings: the caller's, valid for its call */
    }
    auth_store_maybe_compact(u->st);
    return 0;
}

static int parse_id(const char *id, uint8_t out[8])
{
    return strlen(id) == AUTH_TOKEN_ID_HEX && unhex(id, 8, out) == 0 ? 0 : -CN_ENOENT;
}

int auth_token_delete(auth_users *u, const char *id, int64_t *target)
{
    uint8_t raw[8];
    token_ent *t;
    if (parse_id(id, raw) < 0 || !(t = find(u, raw)))
        return -CN_ENOENT;
    int rc = append_one(u, raw, NULL, target);
    if (rc < 0)
        return rc;
    if (auth_store_applies_at_append(u->st)) /* else: when the cluster applies it */
        mem_remove(u, find(u, raw));
    auth_store_maybe_compact(u->st);
    return 0;
}

int auth_token_find(const auth_users *u, const char *id, auth_token_info *out)
{
    uint8_t raw[8];
    const token_ent *t;
    if (parse_id(id, raw) < 0 || !(t = find(u, raw)))
        return -CN_ENOENT;
    info_of(t, out);
    return 0;
}

int auth_token_check(const auth_users *u, const char *tok, size_t len, int64_t now_ms,
                     const char **user, int64_t *expires_ms)
{
    const size_t pl = sizeof(TOKEN_PREFIX) - 1;
    uint8_t id[8], secret[SECRET_LEN], h[32];
    if (!u || len != AUTH_TOKEN_LEN || memcmp(tok, TOKEN_PREFIX, pl) != 0 ||
        tok[pl + AUTH_TOKEN_ID_HEX] != '_' || unhex(tok + pl, 8, id) < 0 ||
        unhex(tok + pl + AUTH_TOKEN_ID_HEX + 1, SECRET_LEN, secret) < 0)
        return -CN_ENOENT;
    const token_ent *t = find(u, id);
    if (!t)
        return -CN_ENOENT;
    unsigned int hl = 0;
    EVP_Digest(secret, sizeof(secret), h, &hl, EVP_sha256(), NULL);
    if (CRYPTO_memcmp(h, t->hash, sizeof(h)) != 0 || !auth_users_find_any(u, t->user))
        return -CN_ENOENT;
    if (t->expires_ms && now_ms >= t->expires_ms)
        return -CN_ETIMEDOUT;
    *user = t->user;
    *expires_ms = t->expires_ms;
    return 0;
}

void auth_tokens_each(const auth_users *u, void (*fn)(void *arg, const auth_token_info *t),
                      void *arg)
{
    for (int i = 0; u && i < u->ntok; i++) {
        auth_token_info in;
        info_of(&u->tok[i], &in);
        fn(arg, &in);
    }
}
