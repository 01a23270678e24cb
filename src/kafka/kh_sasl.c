/* SASL for Kafka clients: SaslHandshake (v0 with raw tokens, v1 with
 * SaslAuthenticate), SaslAuthenticate v0-2, PLAIN and SCRAM-SHA-256/512
 * against the users table (auth/users.h), re-authentication (KIP-368),
 * and a growing delay on failed logins per client address.
 *
 * The session's state machine; a request that its state does not allow
 * closes the connection (as Kafka does):
 *
 *   state       | allowed APIs                       | event                     -> next
 *   ------------+------------------------------------+---------------------------------------
 *   START       | ApiVersions, SaslHandshake         | SaslHandshake ok          -> MECH
 *   MECH        | ApiVersions, SaslAuthenticate      | PLAIN ok / SCRAM final ok -> AUTHED
 *               | (v0: raw token frames)             | SCRAM client-first        -> SCRAM
 *               |                                    | failure                   -> FAILED
 *   SCRAM       | SaslAuthenticate (v0: raw frame)   | client-final ok           -> AUTHED
 *               |                                    | failure                   -> FAILED
 *   AUTHED      | everything; SaslHandshake begins   | SaslHandshake ok          -> MECH (reauth)
 *               | a re-authentication                | session expired: only SaslHandshake
 *   FAILED      | nothing (the answer is delayed, then the connection closes)
 *   OPEN        | everything (a listener without SASL; SaslHandshake answered
 *               | ILLEGAL_SASL_STATE)
 *
 * A re-authentication must end with the same principal; meanwhile the
 * session keeps its old one and expiry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pmap.h"
#include "auth/scram.h"
#include "kafka/kafka.h"
#include "util/common.h"
#include "util/slog.h"

enum { KS_OPEN = 0, KS_START, KS_MECH, KS_SCRAM, KS_AUTHED, KS_FAILED };

#define KS_CACHE 16
#define KS_CACHE_NAME 64
/* The delayed answer of a failed login. It outlives the session (the
 * client may hang up meanwhile): its response slot keeps the connection
 * object alive until the timer finishes the slot. */
typedef struct fail_answer {
    loop_timer t;
    net_resp *r;
    net_conn *c;
    int raw;                        /* v0: no error frame; the slot is dropped */
    ksrv *ks;
    struct fail_answer *next, *prev;
} fail_answer;

struct kh_sasl_state {
    fail_answer *pending;           /* delayed answers, for shutdown */
};

struct ksess {
    ksrv *ks;
    net_conn *c;
    int state;
    int v0;                         /* SaslHandshake v0: raw token frames */
    int reauth;                     /* a re-authentication is under way */
    int plain;                      /* the mechanism is PLAIN (else mech) */
    scram_mech mech;
    scram_exchange *x;
    char principal[512];
    int64_t expires_ms;             /* monotonic; 0: never */
    /* Authorization decisions, valid while the ACL generation is the same
     * (names up to KS_CACHE_NAME bytes are cached; round-robin eviction). */
    struct ks_decision {
        uint64_t gen;
        int8_t op, rtype, allowed, used;
        uint8_t len;
        char name[KS_CACHE_NAME];
    } cache[KS_CACHE];
    int cache_next;
};

void kh_sasl_init(ksrv *ks) { *ksrv__sasl(ks) = xcalloc(1, sizeof(struct kh_sasl_state)); }

static void answer_unlink(fail_answer *f)
{
    struct kh_sasl_state *st = *ksrv__sasl(f->ks);
    if (f->prev)
        f->prev->next = f->next;
    else
        st->pending = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

/* Send (or, for v0 and closed connections, drop) the delayed answer and
 * close the connection after it. */
static void answer_fire(fail_answer *f)
{
    answer_unlink(f);
    int alive = net_resp_alive(f->r);
    if (alive && !f->raw) {
        net_resp_ready(f->r);
        net_conn_close_after(f->c, "SASL authentication failed");
    } else {
        net_resp_drop(f->r);
        if (alive)
            net_conn_close(f->c, "SASL authentication failed");
    }
    free(f);
}

static void answer_cb(loop_timer *t) { answer_fire(t->data); }

void kh_sasl_fini(ksrv *ks)
{
    struct kh_sasl_state *st = *ksrv__sasl(ks);
    while (st->pending) {
        fail_answer *f = st->pending;
        loop_timer_stop(ksrv_loop(ks), &f->t);
        answer_fire(f);
    }
    free(st);
    *ksrv__sasl(ks) = NULL;
}

int ksess_new(ksrv *ks, net_conn *c, ksess **out)
{
    ksess *s = xcalloc(1, sizeof(*s));
    s->ks = ks;
    s->c = c;
    s->state = net_server_tag(net_conn_server(c)) & SRV_TAG_SASL ? KS_START : KS_OPEN;
    strcpy(s->principal, "User:ANONYMOUS");
    const char *dn = net_conn_tls_subject(c);
    if (s->state == KS_OPEN && dn && dn[0]) {
        /* mTLS: the certificate names the principal (SASL would replace it) */
        memcpy(s->principal, "User:", 5);
        int rc = auth_pmap_apply(ksrv_pmap(ks), dn, s->principal + 5, sizeof(s->principal) - 5);
        if (rc < 0) {
            slog_warn("kafka connection %llu from %s: the client certificate '%.300s' names no "
                      "principal (%s under ssl.principal.mapping.rules)",
                      (unsigned long long)net_conn_id(c), net_conn_peer(c), dn,
                      rc == -CN_ERANGE ? "too long" : "no rule applies");
            free(s);
            return -CN_EINVAL;
        }
    }
    *out = s;
    return 0;
}

void ksess_free(ksess *s)
{
    if (!s)
        return;
    free(s->x);
    free(s);
}

const char *ksess_principal(const ksess *s) { return s->principal; }

int ksess_allowed(ksess *s, int op, int rtype, const char *name, size_t len)
{
    acl_store *acls = ksrv_acls(s->ks);
    uint64_t gen = acl_generation(acls);
    if (len < KS_CACHE_NAME)
        for (int i = 0; i < KS_CACHE; i++) {
            struct ks_decision *d = &s->cache[i];
            if (d->used && d->gen == gen && d->op == op && d->rtype == rtype && d->len == len &&
                memcmp(d->name, name, len) == 0)
                return d->allowed;
        }
    int ok = acl_authorize(acls, ksrv_config(s->ks), s->principal, net_conn_host(s->c), op, rtype,
                           name, len);
    if (len < KS_CACHE_NAME) {
        struct ks_decision *d = &s->cache[s->cache_next];
        s->cache_next = (s->cache_next + 1) % KS_CACHE;
        *d = (struct ks_decision){gen, (int8_t)op, (int8_t)rtype, (int8_t)ok, 1, (uint8_t)len, ""};
        memcpy(d->name, name, len);
    }
    return ok;
}

static int sasl_api(int16_t k)
{
    return k == KAFKA_API_SASL_HANDSHAKE || k == KAFKA_API_SASL_AUTHENTICATE;
}

const char *ksess_gate(ksess *s, int16_t k)
{
    switch (s->state) {
    case KS_OPEN:
        return NULL;
    case KS_START:
        return k == KAFKA_API_API_VERSIONS || k == KAFKA_API_SASL_HANDSHAKE
                   ? NULL
                   : "not authenticated: SASL comes first on this listener";
    case KS_MECH:
    case KS_SCRAM:
        if (s->v0)
            return "a SASL v0 client must send its tokens, not requests";
        return k == KAFKA_API_API_VERSIONS || k == KAFKA_API_SASL_AUTHENTICATE
                   ? NULL
                   : "SASL authentication is in progress";
    case KS_AUTHED:
        if (s->expires_ms && loop_now(ksrv_loop(s->ks)) > s->expires_ms && !sasl_api(k) &&
            k != KAFKA_API_API_VERSIONS)
            return "SASL session expired: re-authentication required "
                   "(connections.max.reauth.ms)";
        return k == KAFKA_API_SASL_AUTHENTICATE ? "SaslAuthenticate without SaslHandshake"
                                                : NULL;
    default:
        return "SASL authentication failed";
    }
}

/* Mechanisms ---------------------------------------------------------------- */

static const char *const MECHS[] = {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"};

static int mech_allowed(ksess *s, kstr m)
{
    return m.len > 0 && config_sasl_enabled(ksrv_config(s->ks), m.ptr, (size_t)m.len);
}

/* The result of one token: the bytes to answer, or an error. */
typedef struct step_out {
    int16_t err;                    /* KERR_NONE, KERR_SASL_AUTHENTICATION_FAILED, ... */
    char msg[200];
    char bytes[600];
    int n_bytes;
} step_out;

/* The session reached a principal: AUTHED (and the expiry set). */
static void authed(ksess *s, const char *user, step_out *o)
{
    char p[300];
    snprintf(p, sizeof(p), "User:%s", user);
    if (s->reauth && strcmp(p, s->principal) != 0) {
        o->err = KERR_SASL_AUTHENTICATION_FAILED;
        snprintf(o->msg, sizeof(o->msg), "re-authentication as %.70s on a connection of %.70s", p,
                 s->principal);
        return;
    }
    snprintf(s->principal, sizeof(s->principal), "%s", p);
    s->state = KS_AUTHED;
    s->reauth = 0;
    int64_t re = ksrv_config(s->ks)->reauth_ms;
    s->expires_ms = re > 0 ? loop_now(ksrv_loop(s->ks)) + re : 0;
    slog_debug("connection %llu from %s: SASL %s authenticated as %s",
               (unsigned long long)net_conn_id(s->c), net_conn_peer(s->c),
               s->plain ? "PLAIN" : scram_mech_name(s->mech), s->principal);
}

static void step(ksess *s, const uint8_t *tok, size_t n, step_out *o)
{
    memset(o, 0, sizeof(*o));
    auth_users *users = ksrv_users(s->ks);
    const char *mname = s->plain ? "PLAIN" : scram_mech_name(s->mech);
    char user[SCRAM_MAX_NAME + 1] = "";
    int rc;
    if (s->plain) {
        const char *u, *pw;
        size_t ul, pl;
        if (sasl_plain_parse((const char *)tok, n, &u, &ul, &pw, &pl) < 0) {
            snprintf(o->msg, sizeof(o->msg), "malformed PLAIN token");
            goto failed;
        }
        snprintf(user, sizeof(user), "%.*s", (int)ul, u);
        const scram_cred *c = strlen(user) == ul ? auth_users_find_any(users, user) : NULL;
        if (!c || !scram_check_password(c, pw, pl)) {
            snprintf(o->msg, sizeof(o->msg), "invalid credentials");
            goto failed;
        }
        authed(s, user, o);
        return;
    }
    if (s->state == KS_MECH) {
        if (!s->x)
            s->x = xmalloc(sizeof(*s->x));
        if (scram_first(s->x, s->mech, (const char *)tok, n) < 0) {
            snprintf(o->msg, sizeof(o->msg), "%s", s->x->why);
            goto failed;
        }
        snprintf(user, sizeof(user), "%s", s->x->user);
        const scram_cred *c = auth_users_find(users, s->x->user, s->mech);
        scram_cred fake;
        if (!c) {
            scram_fake_cred(s->mech, s->x->user, &fake);
            c = &fake;
        }
        rc = scram_challenge(s->x, c, o->bytes, sizeof(o->bytes));
        if (rc < 0) {
            snprintf(o->msg, sizeof(o->msg), "%s", s->x->why);
            goto failed;
        }
        o->n_bytes = rc;
        s->state = KS_SCRAM;
        return;
    }
    snprintf(user, sizeof(user), "%s", s->x->user);
    rc = scram_final(s->x, (const char *)tok, n, o->bytes, sizeof(o->bytes));
    if (rc < 0) {
        o->n_bytes = 0;
        snprintf(o->msg, sizeof(o->msg), "%s", s->x->why);
        goto failed;
    }
    o->n_bytes = rc;
    authed(s, s->x->user, o);
    if (o->err == KERR_NONE) {
        free(s->x); /* ~2.5 KiB a connection would keep for nothing */
        s->x = NULL;
        return;
    }
failed:
    o->err = KERR_SASL_AUTHENTICATION_FAILED;
    o->n_bytes = 0;
    s->state = KS_FAILED;
    slog_warn("connection %llu from %s: SASL %s authentication failed for user '%s': %s",
              (unsigned long long)net_conn_id(s->c), net_conn_peer(s->c), mname, user,
              o->msg);
    char m[200];
    snprintf(m, sizeof(m), "Authentication failed during authentication due to invalid "
                           "credentials with SASL mechanism %s", mname);
    snprintf(o->msg, sizeof(o->msg), "%s", m);
}

/* A failed login's answer waits (brute force costs time, not our CPU);
 * reading stops meanwhile. raw: a v0 client gets no error frame, only the
 * close. */
static void park_failure(ksess *s, net_resp *r, int raw)
{
    struct kh_sasl_state *st = *ksrv__sasl(s->ks);
    fail_answer *f = xcalloc(1, sizeof(*f));
    f->r = r;
    f->c = s->c;
    f->raw = raw;
    f->ks = s->ks;
    f->next = st->pending;
    if (st->pending)
        st->pending->prev = f;
    st->pending = f;
    net_conn_pause_read(s->c);
    loop_timer_init(&f->t, answer_cb, f);
    loop_timer_start(ksrv_loop(s->ks), &f->t,
                     auth_throttle_fail(ksrv_throttle(s->ks), net_conn_host(s->c),
                                        loop_now(ksrv_loop(s->ks))));
}

/* Handlers --------------------------------------------------------------- */

void kh_sasl_handshake(kreq *q)
{
    kafka_sasl_handshake_request req;
    if (kafka_sasl_handshake_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    ksess *s = net_conn_ctx(q->conn);
    kafka_sasl_handshake_response rsp;
    kafka_sasl_handshake_response_init(&rsp);
    int n = 0;
    for (size_t i = 0; i < CN_ARRAY_LEN(MECHS); i++)
        n += config_sasl_enabled(ksrv_config(q->ks), MECHS[i], strlen(MECHS[i]));
    KARR_ALLOC(q, rsp.mechanisms, n);
    n = 0;
    for (size_t i = 0; i < CN_ARRAY_LEN(MECHS); i++)
        if (config_sasl_enabled(ksrv_config(q->ks), MECHS[i], strlen(MECHS[i])))
            rsp.mechanisms.items[n++] = kstr_c(MECHS[i]);
    if (!s || s->state == KS_OPEN) {
        rsp.error_code = KERR_ILLEGAL_SASL_STATE; /* this listener does not use SASL */
        KARR_ALLOC(q, rsp.mechanisms, 0);
    } else if (s->state != KS_START && s->state != KS_AUTHED) {
        rsp.error_code = KERR_ILLEGAL_SASL_STATE;
    } else if (!mech_allowed(s, req.mechanism)) {
        rsp.error_code = KERR_UNSUPPORTED_SASL_MECHANISM;
        slog_warn("connection %llu from %s: SASL mechanism '%.*s' is not enabled",
                  (unsigned long long)net_conn_id(q->conn), net_conn_peer(q->conn),
                  req.mechanism.len > 0 ? (int)req.mechanism.len : 0,
                  req.mechanism.len > 0 ? req.mechanism.ptr : "");
    } else {
        s->reauth = s->state == KS_AUTHED;
        s->plain = req.mechanism.len == 5 && strncasecmp(req.mechanism.ptr, "PLAIN", 5) == 0;
        s->mech = s->plain ? 0 : scram_mech_parse(req.mechanism.ptr, (size_t)req.mechanism.len);
        s->v0 = q->ver == 0;
        s->state = KS_MECH;
    }
    kafka_sasl_handshake_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
    if (rsp.error_code == KERR_UNSUPPORTED_SASL_MECHANISM)
        net_conn_close_after(q->conn, "unsupported SASL mechanism");
}

void kh_sasl_authenticate(kreq *q)
{
    kafka_sasl_authenticate_request req;
    if (kafka_sasl_authenticate_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    ksess *s = net_conn_ctx(q->conn);
    kafka_sasl_authenticate_response rsp;
    kafka_sasl_authenticate_response_init(&rsp);
    rsp.error_message = (kstr){NULL, -1};
    rsp.auth_bytes = (kbytes){NULL, 0};
    if (!s || (s->state != KS_MECH && s->state != KS_SCRAM)) {
        rsp.error_code = KERR_ILLEGAL_SASL_STATE;
        rsp.error_message = kstr_c("SaslAuthenticate without a SaslHandshake");
        kafka_sasl_authenticate_response_encode(&q->resp->w, q->ver, &rsp);
        kreq_done(q);
        net_conn_close_after(q->conn, "SaslAuthenticate out of order");
        return;
    }
    step_out o;
    step(s, req.auth_bytes.ptr, req.auth_bytes.len > 0 ? (size_t)req.auth_bytes.len : 0, &o);
    rsp.error_code = o.err;
    if (o.err) {
        rsp.error_message = kreq_strdup(q, kstr_c(o.msg));
    } else {
        char *b = kreq_alloc(q, (size_t)o.n_bytes + 1, 1);
        memcpy(b, o.bytes, (size_t)o.n_bytes);
        rsp.auth_bytes = (kbytes){(const uint8_t *)b, o.n_bytes};
        if (s->state == KS_AUTHED && s->expires_ms)
            rsp.session_lifetime_ms = ksrv_config(q->ks)->reauth_ms;
    }
    kafka_sasl_authenticate_response_encode(&q->resp->w, q->ver, &rsp);
    if (o.err)
        park_failure(s, q->resp, 0);
    else
        kreq_done(q);
}

int ksess_raw_frame(ksess *s, net_conn *c, const uint8_t *frame, size_t len)
{
    if (!s->v0 || (s->state != KS_MECH && s->state != KS_SCRAM))
        return 0;
    step_out o;
    step(s, frame, len, &o);
    if (o.err) {
        /* v0 has no error frame: the client sees the connection close,
         * after the same delay as a v1 answer */
        park_failure(s, ksrv__resp_new(c), 1);
        return 1;
    }
    net_resp *r = ksrv__resp_new(c);
    wbuf_append(&r->w, o.bytes, (size_t)o.n_bytes);
    net_resp_ready(r);
    if (s->state == KS_AUTHED)
        s->v0 = 0; /* requests from here on */
    return 1;
}
