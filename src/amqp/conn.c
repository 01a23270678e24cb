/* AMQP 0-9-1 connection: framing (frame_len), the handshake, heartbeats,
 * Close/CloseOk, and dispatch of every method frame (see amqp.h).
 *
 * A connection's state changes only in transition(ac, event), which applies
 * next_state[][] below and CN_ASSERTs that the event is legal in the state
 * (callers raise only events their state allows; bad input never reaches an
 * illegal move: it becomes a Close with a reply code first).
 *
 *                HEADER_OK            START_OK           TUNE_OK            OPEN
 *   HEADER ------------> START_SENT ---------> TUNE_SENT --------> OPEN_WAIT -----> OPEN
 *     |                      |  ERROR (we send connection.close)  |              |
 *     |                      +-----------------+------------------+--------------+
 *     |                                        v
 *     |                                     CLOSING --CLOSE_OK / PEER_CLOSE / DROP--> CLOSED
 *     +--DROP (wrong header)--------------------------------------------------------> CLOSED
 *   START_SENT..OPEN: PEER_CLOSE (client's close, answered with close-ok) or DROP
 *   (framing error after our Close 501, failed login without
 *   authentication_failure_close, missed heartbeats, handshake timeout) -> CLOSED
 *
 * What each client method does in each state (anything else: 503
 * COMMAND_INVALID; in CLOSING everything but connection.close/close-ok is
 * discarded, as the spec says):
 *
 *  method \ state     START_SENT      TUNE_SENT       OPEN_WAIT       OPEN
 *  connection.start-ok on_start_ok:   503             503             503
 *                      Tune, or 403 /
 *                      drop (login)
 *  connection.tune-ok  503            on_tune_ok      503             503
 *                                     (530 on bad
 *                                     limits)
 *  connection.open     503            503             on_open: OpenOk 503
 *                                                     or 530 (vhost)
 *  connection.close    close-ok, =>PEER_CLOSE (every state but CLOSING, where
 *                      it is answered the same way)
 *  channel.*           503            503             503             ah_channel
 *  exchange/queue     503            503             503             ah_queue
 *  basic/confirm      503            503             503             ah_basic
 *  tx                 503            503             503             ah_tx
 *  access             503            503             503             540 NOT_IMPLEMENTED
 *
 * A connection relayed to the cluster's serving node (ah_relay.c: both its
 * sides, made at accept) never enters this machine: frame_len and on_frame
 * pass its bytes on, and it is not in as->conns.
 *
 * A channel with a basic.publish waiting for its content takes only its
 * header and body frames (ah_content); a method on it first is 505
 * UNEXPECTED_FRAME.
 *
 * Frame-level errors (a frame above frame_max, a bad end octet, an unknown
 * frame type, a heartbeat off channel 0) get Close 501 FRAME_ERROR and the
 * socket is closed at once: the byte stream cannot be trusted any more, so
 * there is no close-ok to wait for. Every other hard error sends
 * connection.close (reply code, text, the offending method's ids) and waits
 * ASRV_CLOSE_WAIT_MS for close-ok.
 *
 * Replies leave through one net slot each, finished at once; net writes
 * them to the socket right away when it can, so a Close written just before
 * net_conn_close normally reaches the client (a full socket buffer loses it;
 * the client then sees only the socket close). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "auth/acl.h"
#include "auth/pmap.h"
#include "auth/scram.h"
#include "auth/users.h"
#include "config/config.h"
#include "util/common.h"
#include "util/slog.h"

/* Transitions --------------------------------------------------------------- */

typedef enum {
    EV_HEADER_OK,     /* a good protocol header: Start sent */
    EV_START_OK,      /* login accepted: Tune sent */
    EV_TUNE_OK,       /* limits accepted */
    EV_OPEN,          /* vhost accepted: OpenOk sent */
    EV_ERROR,         /* we sent connection.close */
    EV_PEER_CLOSE,    /* the client's connection.close, answered with close-ok */
    EV_CLOSE_OK,      /* the client's close-ok to our close */
    EV_DROP,          /* the socket closes without (more) ceremony */
    EV__COUNT
} conn_event;

static const char *const state_names[ASRV_STATE__COUNT] = {
    "HEADER", "START_SENT", "TUNE_SENT", "OPEN_WAIT", "OPEN", "CLOSING", "CLOSED",
};
static const char *const event_names[EV__COUNT] = {
    "header ok", "start-ok", "tune-ok", "open", "error", "peer close", "close-ok", "drop",
};

#define NO_MOVE (-1)

static const signed char next_state[ASRV_STATE__COUNT][EV__COUNT] = {
    /*                 HEADER_OK        START_OK        TUNE_OK         OPEN       ERROR         PEER_CLOSE   CLOSE_OK     DROP */
    [ASRV_HEADER]     = {ASRV_START_SENT, NO_MOVE,        NO_MOVE,        NO_MOVE,   NO_MOVE,      NO_MOVE,     NO_MOVE,     ASRV_CLOSED},
    [ASRV_START_SENT] = {NO_MOVE,         ASRV_TUNE_SENT, NO_MOVE,        NO_MOVE,   ASRV_CLOSING, ASRV_CLOSED, NO_MOVE,     ASRV_CLOSED},
    [ASRV_TUNE_SENT]  = {NO_MOVE,         NO_MOVE,        ASRV_OPEN_WAIT, NO_MOVE,   ASRV_CLOSING, ASRV_CLOSED, NO_MOVE,     ASRV_CLOSED},
    [ASRV_OPEN_WAIT]  = {NO_MOVE,         NO_MOVE,        NO_MOVE,        ASRV_OPEN, ASRV_CLOSING, ASRV_CLOSED, NO_MOVE,     ASRV_CLOSED},
    [ASRV_OPEN]       = {NO_MOVE,         NO_MOVE,        NO_MOVE,        NO_MOVE,   ASRV_CLOSING, ASRV_CLOSED, NO_MOVE,     ASRV_CLOSED},
    [ASRV_CLOSING]    = {NO_MOVE,         NO_MOVE,        NO_MOVE,        NO_MOVE,   NO_MOVE,      ASRV_CLOSED, ASRV_CLOSED, ASRV_CLOSED},
    [ASRV_CLOSED]     = {NO_MOVE,         NO_MOVE,        NO_MOVE,        NO_MOVE,   NO_MOVE,      NO_MOVE,     NO_MOVE,     NO_MOVE},
};

static void transition(asrv_conn *ac, conn_event ev)
{
    CN_ASSERT((unsigned)ac->state < ASRV_STATE__COUNT && (unsigned)ev < EV__COUNT);
    int to = next_state[ac->state][ev];
    if (to == NO_MOVE) {
        slog_error("amqp connection %llu: event '%s' is illegal in state %s",
                   (unsigned long long)net_conn_id(ac->c), event_names[ev],
                   state_names[ac->state]);
        cn_assert_fail("legal amqp connection transition", __FILE__, __LINE__);
    }
    slog_debug("amqp connection %llu: %s -> %s (%s)", (unsigned long long)net_conn_id(ac->c),
               state_names[ac->state], state_names[to], event_names[ev]);
    ac->state = (asrv_state)to;
}

/* Sending ------------------------------------------------------------------- */

static void send_bytes(asrv_conn *ac, const void *p, size_t len)
{
    net_resp *r = net_resp_new(ac->c);
    wbuf_append(&r->w, p, len);
    ac->last_sent = loop_now(ac->l);
    net_resp_ready(r);
}

void asrv__send_method(asrv_conn *ac, uint16_t ch, uint32_t id, const void *args)
{
    net_resp *r = net_resp_new(ac->c);
    int rc = amqp_method_frame(&r->w, ch, id, args);
    CN_ASSERT(rc == 0); /* our own arguments: short strings are bounded by their makers */
    ac->last_sent = loop_now(ac->l);
    net_resp_ready(r);
}

static void send_heartbeat(asrv_conn *ac)
{
    net_resp *r = net_resp_new(ac->c);
    amqp_frame_write(&r->w, AMQP_FRAME_HEARTBEAT, 0, NULL, 0);
    ac->last_sent = loop_now(ac->l);
    net_resp_ready(r);
}

/* "NAME - text", at most 255 bytes (a shortstr). */
static cn_str reply_text(char *buf, size_t cap, uint16_t code, const char *text)
{
    const char *name = amqp_reply_name(code);
    int n = snprintf(buf, cap, "%s - %s", name ? name : "ERROR", text);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = (int)cap - 1;
    if (n > 255)
        n = 255;
    return (cn_str){buf, n};
}

/* Client bytes (vhost, user names) go into log lines: no control characters. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static const char *method_name(uint16_t class_id, uint16_t method_id, char *buf, size_t cap)
{
    const amqp_method_info *mi = amqp_method_find(class_id, method_id);
    if (mi)
        return mi->name;
    snprintf(buf, cap, "%u/%u", class_id, method_id);
    return buf;
}

/* Closing ------------------------------------------------------------------- */

/* Close the socket now; ac is freed (conn_close) when this returns. */
static void drop(asrv_conn *ac, const char *why)
{
    if (ac->state != ASRV_CLOSED)
        transition(ac, EV_DROP);
    net_conn_close(ac->c, why);
}

static void vconn_error(asrv_conn *ac, uint16_t code, uint16_t class_id, uint16_t method_id,
                        const char *fmt, va_list ap)
{
    if (ac->state == ASRV_CLOSING || ac->state == ASRV_CLOSED)
        return;
    char text[256], buf[300], mname[16];
    vsnprintf(text, sizeof(text), fmt, ap);
    printable(text);
    if (class_id)
        slog_warn("amqp connection %llu from %s: %s (reply %u %s, method %s)",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), text, code,
                  amqp_reply_name(code) ? amqp_reply_name(code) : "?",
                  method_name(class_id, method_id, mname, sizeof(mname)));
    else
        slog_warn("amqp connection %llu from %s: %s (reply %u %s)",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), text, code,
                  amqp_reply_name(code) ? amqp_reply_name(code) : "?");
    amqp_connection_close cl;
    amqp_connection_close_init(&cl);
    cl.reply_code = code;
    cl.reply_text = reply_text(buf, sizeof(buf), code, text);
    cl.class_id = class_id;
    cl.method_id = method_id;
    asrv__send_method(ac, 0, AMQP_CONNECTION_CLOSE, &cl);
    transition(ac, EV_ERROR);
    loop_timer_start(ac->l, &ac->timer, ASRV_CLOSE_WAIT_MS);
}

void asrv__conn_error(asrv_conn *ac, uint16_t code, uint16_t class_id, uint16_t method_id,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vconn_error(ac, code, class_id, method_id, fmt, ap);
    va_end(ap);
}

/* Close 501, then the socket: the stream is out of step. */
static void frame_error(asrv_conn *ac, const char *fmt, ...) CN_PRINTF(2, 3);
static void frame_error(asrv_conn *ac, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vconn_error(ac, AMQP_FRAME_ERROR, 0, 0, fmt, ap);
    va_end(ap);
    drop(ac, "AMQP frame error");
}

void asrv__chan_error(asrv_conn *ac, uint16_t ch, uint16_t code, uint16_t class_id,
                      uint16_t method_id, const char *fmt, ...)
{
    char text[256], buf[300], mname[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printable(text);
    slog_info("amqp connection %llu from %s: channel %u: %s (reply %u %s, method %s)",
              (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), ch, text, code,
              amqp_reply_name(code) ? amqp_reply_name(code) : "?",
              method_name(class_id, method_id, mname, sizeof(mname)));
    amqp_channel_close cl;
    amqp_channel_close_init(&cl);
    cl.reply_code = code;
    cl.reply_text = reply_text(buf, sizeof(buf), code, text);
    cl.class_id = class_id;
    cl.method_id = method_id;
    asrv__send_method(ac, ch, AMQP_CHANNEL_CLOSE, &cl);
    ac->chan[ch] = ACH_CLOSING;
    asrv__chan_release(ac, ch); /* its deliveries go back now, not at close-ok */
}

/* Timer: handshake timeout, heartbeats, close-ok wait --------------------- */

static void arm(asrv_conn *ac)
{
    if (ac->state == ASRV_OPEN && !ac->heartbeat)
        return; /* nothing left to time: heartbeats are off */
    int64_t ms = ac->heartbeat ? (int64_t)ac->heartbeat * 500 : 1000;
    if (ac->state < ASRV_OPEN && ms > 1000)
        ms = 1000; /* the handshake timeout's resolution */
    loop_timer_start(ac->l, &ac->timer, ms);
}

/* The delayed answer of a refused login: connection.close ACCESS_REFUSED
 * to a client that announced authentication_failure_close, else the
 * socket closes (AMQP 0-9-1's rule for failed logins). */
static void refuse_login(asrv_conn *ac)
{
    ac->refusing = 0;
    if (ac->auth_failure_close) {
        net_conn_resume_read(ac->c); /* for its close-ok */
        asrv__conn_error(ac, AMQP_ACCESS_REFUSED, AMQP_CLASS_CONNECTION, 11, "%s", ac->refusal);
        return;
    }
    slog_warn("amqp connection %llu from %s: %s; closed without connection.close (the client "
              "did not announce authentication_failure_close)",
              (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), ac->refusal);
    drop(ac, "AMQP login refused");
}

static void on_tick(loop_timer *t)
{
    asrv_conn *ac = t->data;
    if (ac->refusing) {
        refuse_login(ac);
        return;
    }
    int64_t now = loop_now(ac->l);
    if (ac->state == ASRV_CLOSING) {
        slog_warn("amqp connection %llu from %s: no close-ok within %d ms",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c),
                  ASRV_CLOSE_WAIT_MS);
        drop(ac, "no close-ok from the client");
        return;
    }
    if (ac->state < ASRV_OPEN && now - ac->opened_at >= ASRV_HANDSHAKE_MS) {
        slog_warn("amqp connection %llu from %s: handshake not finished after %d ms (state %s)",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c),
                  ASRV_HANDSHAKE_MS, state_names[ac->state]);
        drop(ac, "AMQP handshake timeout");
        return;
    }
    if (ac->heartbeat) {
        int64_t iv = (int64_t)ac->heartbeat * 1000;
        /* not while a resource alarm keeps us from reading (ah_alarm.c) */
        if (!ac->blocked && now - ac->last_recv >= 2 * iv) {
            slog_warn("amqp connection %llu from %s: missed heartbeats, nothing received for "
                      "%lld ms (heartbeat %u s)",
                      (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c),
                      (long long)(now - ac->last_recv), ac->heartbeat);
            drop(ac, "missed heartbeats");
            return;
        }
        /* Half the interval, as RabbitMQ does: the client hears from us at
         * least once per interval even when our timer fires late. */
        if (now - ac->last_sent >= iv / 2)
            send_heartbeat(ac);
    }
    arm(ac);
}

/* Handshake ------------------------------------------------------------------ */

static void send_start(asrv_conn *ac)
{
    amqp_connection_start st;
    amqp_connection_start_init(&st);
    st.version_major = 0;
    st.version_minor = 9;
    st.server_properties = (amqp_table){ac->as->props.buf, (uint32_t)ac->as->props.len};
    /* EXTERNAL: the TLS client certificate's subject is the user */
    const char *dn = net_conn_tls_subject(ac->c);
    st.mechanisms = cn_str_c(dn && dn[0] ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN");
    st.locales = cn_str_c("en_US");
    asrv__send_method(ac, 0, AMQP_CONNECTION_START, &st);
}

static void on_header(asrv_conn *ac, const uint8_t *p, size_t len)
{
    if (!ac->as) {
        drop(ac, "shutting down");
        return;
    }
    if (len == AMQP_PROTOCOL_HEADER_LEN && memcmp(p, AMQP_PROTOCOL_HEADER, len) == 0) {
        transition(ac, EV_HEADER_OK);
        send_start(ac);
        return;
    }
    char hex[3 * AMQP_PROTOCOL_HEADER_LEN + 1] = "";
    for (size_t i = 0; i < len && i < AMQP_PROTOCOL_HEADER_LEN; i++)
        snprintf(hex + 3 * i, 4, "%02x ", p[i]);
    slog_warn("amqp connection %llu from %s: wrong protocol header (%s); answered with "
              "AMQP 0-9-1's and closed",
              (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), hex);
    send_bytes(ac, AMQP_PROTOCOL_HEADER, AMQP_PROTOCOL_HEADER_LEN);
    drop(ac, "wrong AMQP protocol header");
}

/* 1 if table t has key as a true boolean. */
static int table_true(amqp_table t, const char *key)
{
    amqp_value v;
    return amqp_table_get(t, key, &v) == 0 && v.tag == AMQP_T_BOOL && v.u.b;
}

/* The credentials of a PLAIN ("[authzid]\0user\0password") or AMQPLAIN
 * (a field table without its length: LOGIN, PASSWORD) response. 0 or -1. */
static int credentials(cn_str mech, cn_str resp, cn_str *user, cn_str *pass)
{
    if (resp.len <= 0 || !resp.ptr)
        return -1;
    if (cn_str_eq(mech, "PLAIN")) {
        const char *p = resp.ptr, *end = resp.ptr + resp.len;
        const char *z1 = memchr(p, 0, (size_t)(end - p));
        if (!z1)
            return -1;
        const char *z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
        if (!z2)
            return -1;
        *user = (cn_str){z1 + 1, (int32_t)(z2 - z1 - 1)};
        *pass = (cn_str){z2 + 1, (int32_t)(end - z2 - 1)};
        return 0;
    }
    amqp_table t = {(const uint8_t *)resp.ptr, (uint32_t)resp.len};
    amqp_value lv, pv;
    if (amqp_table_check(t) < 0 || amqp_table_get(t, "LOGIN", &lv) != 0 ||
        amqp_table_get(t, "PASSWORD", &pv) != 0 || lv.tag != AMQP_T_LONGSTR ||
        pv.tag != AMQP_T_LONGSTR)
        return -1;
    *user = lv.u.str;
    *pass = pv.u.str;
    return 0;
}

/* A PLAIN or AMQPLAIN login, checked against the users SASL checks too
 * (auth/users.h). Without a user named guest, RabbitMQ's default
 * guest/guest works from a loopback address only (its loopback_users
 * rule): a fresh broker takes every AMQP client's defaults locally and
 * nothing from elsewhere. */
static int login_ok(asrv_conn *ac, cn_str user, cn_str pass)
{
    char name[SCRAM_MAX_NAME + 1];
    if (user.len <= 0 || user.len > SCRAM_MAX_NAME || memchr(user.ptr, '\0', (size_t)user.len) ||
        pass.len < 0)
        return 0;
    memcpy(name, user.ptr, (size_t)user.len);
    name[user.len] = '\0';
    auth_users *users = ac->as && ac->as->core ? ac->as->core->users : NULL;
    const scram_cred *c = auth_users_find_any(users, name);
    if (c)
        return scram_check_password(c, pass.ptr, (size_t)pass.len);
    if (strcmp(name, "guest") != 0 || !cn_str_eq(pass, "guest"))
        return 0;
    return config_host_is_loopback(net_conn_host(ac->c));
}

int asrv__allowed(asrv_conn *ac, int op, int rtype, cn_str name)
{
    core *co = ac->as ? ac->as->core : NULL;
    if (!co || !co->cfg->authorizer_enabled)
        return 1;
    if (rtype == ACL_R_TOPIC && name.len == 0)
        name = cn_str_c("amq.default");
    size_t len = name.len > 0 ? (size_t)name.len : 0;
    uint64_t gen = acl_generation(co->acls);
    for (int i = 0; len < sizeof(ac->authz[0].name) && i < (int)CN_ARRAY_LEN(ac->authz); i++) {
        struct ac_decision *d = &ac->authz[i];
        if (d->used && d->gen == gen && d->op == op && d->rtype == rtype && d->len == len &&
            memcmp(d->name, name.ptr, len) == 0)
            return d->allowed;
    }
    int ok = acl_authorize(co->acls, co->cfg, ac->principal, net_conn_host(ac->c), op, rtype,
                           name.ptr, len);
    if (len < sizeof(ac->authz[0].name)) {
        struct ac_decision *d = &ac->authz[ac->authz_next];
        ac->authz_next = (ac->authz_next + 1) % (int)CN_ARRAY_LEN(ac->authz);
        *d = (struct ac_decision){gen, (int8_t)op, (int8_t)rtype, (int8_t)ok, 1, (uint8_t)len, ""};
        memcpy(d->name, name.ptr, len);
    }
    return ok;
}

int asrv__allow_or_refuse(asrv_conn *ac, uint16_t ch, uint16_t class_id, uint16_t method_id,
                          int op, int rtype, cn_str name)
{
    if (asrv__allowed(ac, op, rtype, name))
        return 1;
    asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, class_id, method_id,
                     "access to %s '%.*s' refused for %s (%s)",
                     rtype == ACL_R_TOPIC ? "exchange" : "queue",
                     (int)(name.len > 0 ? name.len : 0), name.len > 0 ? name.ptr : "",
                     ac->principal, acl_op_name(op));
    return 0;
}

static void on_start_ok(asrv_conn *ac, const amqp_connection_start_ok *m)
{
    amqp_value caps;
    if (amqp_table_get(m->client_properties, "capabilities", &caps) == 0 &&
        caps.tag == AMQP_T_TABLE) {
        ac->auth_failure_close = table_true(caps.u.table, "authentication_failure_close");
        ac->cap_blocked = table_true(caps.u.table, "connection.blocked"); /* ah_alarm.c */
    }
    const char *dn = net_conn_tls_subject(ac->c);
    int external = cn_str_eq(m->mechanism, "EXTERNAL") && dn && dn[0];
    if (!external && !cn_str_eq(m->mechanism, "PLAIN") && !cn_str_eq(m->mechanism, "AMQPLAIN")) {
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, AMQP_CLASS_CONNECTION, 11,
                         "unknown authentication mechanism '%.*s' (PLAIN, AMQPLAIN%s)",
                         (int)(m->mechanism.len > 0 ? m->mechanism.len : 0),
                         m->mechanism.ptr ? m->mechanism.ptr : "",
                         dn && dn[0] ? ", EXTERNAL" : "");
        return;
    }
    cn_str user = {NULL, 0}, pass = {NULL, 0};
    int ok;
    char mapped[256];
    if (external) {
        /* the certificate's subject, mapped as a Kafka mTLS principal */
        ok = auth_pmap_apply(ac->as && ac->as->core ? ac->as->core->pmap : NULL, dn, mapped,
                             sizeof(mapped)) == 0;
        user = cn_str_c(ok ? mapped : dn);
    } else {
        ok = credentials(m->mechanism, m->response, &user, &pass) == 0 &&
             login_ok(ac, user, pass);
    }
    if (ok)
        snprintf(ac->principal, sizeof(ac->principal), "User:%.*s", (int)user.len, user.ptr);
    if (!ok) {
        char uname[65];
        snprintf(uname, sizeof(uname), "%.*s", user.len > 64 ? 64 : (user.len > 0 ? user.len : 0),
                 user.ptr ? user.ptr : "");
        printable(uname);
        snprintf(ac->refusal, sizeof(ac->refusal),
                 "Login was refused using authentication mechanism %.*s (user '%s')",
                 (int)(m->mechanism.len > 20 ? 20 : m->mechanism.len), m->mechanism.ptr, uname);
        /* the answer waits, longer for every failure from the address */
        ac->refusing = 1;
        net_conn_pause_read(ac->c);
        core *co = ac->as ? ac->as->core : NULL;
        loop_timer_start(ac->l, &ac->timer,
                         co ? auth_throttle_fail(co->throttle, net_conn_host(ac->c),
                                                 loop_now(ac->l))
                            : 0);
        return;
    }
    transition(ac, EV_START_OK);
    amqp_connection_tune tu;
    amqp_connection_tune_init(&tu);
    tu.channel_max = ASRV_CHANNEL_MAX;
    tu.frame_max = ASRV_FRAME_MAX;
    tu.heartbeat = ASRV_HEARTBEAT_S;
    asrv__send_method(ac, 0, AMQP_CONNECTION_TUNE, &tu);
}

static void on_tune_ok(asrv_conn *ac, const amqp_connection_tune_ok *m)
{
    uint32_t fm = m->frame_max ? m->frame_max : ASRV_FRAME_MAX;
    uint16_t cm = m->channel_max ? m->channel_max : ASRV_CHANNEL_MAX;
    if (fm < ASRV_FRAME_MIN || fm > ASRV_FRAME_MAX) {
        asrv__conn_error(ac, AMQP_NOT_ALLOWED, AMQP_CLASS_CONNECTION, 31,
                         "frame_max %u outside %u..%u", m->frame_max, ASRV_FRAME_MIN,
                         ASRV_FRAME_MAX);
        return;
    }
    if (cm > ASRV_CHANNEL_MAX) {
        asrv__conn_error(ac, AMQP_NOT_ALLOWED, AMQP_CLASS_CONNECTION, 31,
                         "channel_max %u above %u", m->channel_max, ASRV_CHANNEL_MAX);
        return;
    }
    transition(ac, EV_TUNE_OK);
    ac->frame_max = fm;
    ac->channel_max = cm;
    ac->heartbeat = m->heartbeat; /* the client's choice counts; 0 turns them off */
    ac->chan = xcalloc((size_t)cm + 1, 1);
    ac->chan_flow = xcalloc((size_t)cm + 1, 1);
    ac->cs = xcalloc((size_t)cm + 1, sizeof(*ac->cs));
    arm(ac);
}

static void on_open(asrv_conn *ac, const amqp_connection_open *m)
{
    if (!cn_str_eq(m->virtual_host, "/")) {
        asrv__conn_error(ac, AMQP_NOT_ALLOWED, AMQP_CLASS_CONNECTION, 40,
                         "vhost '%.*s' not found (only '/' exists)",
                         (int)(m->virtual_host.len > 0 ? m->virtual_host.len : 0),
                         m->virtual_host.ptr ? m->virtual_host.ptr : "");
        return;
    }
    if (ac->as && !asrv__cluster_serving(ac->as)) {
        char buf[160];
        asrv__conn_error(ac, AMQP_CONNECTION_FORCED, AMQP_CLASS_CONNECTION, 40, "%s",
                         asrv__cluster_refusal(ac->as, buf, sizeof(buf)));
        return;
    }
    transition(ac, EV_OPEN);
    amqp_connection_open_ok ok;
    amqp_connection_open_ok_init(&ok);
    asrv__send_method(ac, 0, AMQP_CONNECTION_OPEN_OK, &ok);
    slog_info("amqp connection %llu from %s open (vhost /, frame_max %u, channel_max %u, "
              "heartbeat %u s)",
              (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), ac->frame_max,
              ac->channel_max, ac->heartbeat);
    asrv__alarm_conn_open(ac);
}

/* Dispatch -------------------------------------------------------------------- */

static void on_peer_close(asrv_conn *ac, const amqp_connection_close *m)
{
    amqp_connection_close_ok ok;
    amqp_connection_close_ok_init(&ok);
    asrv__send_method(ac, 0, AMQP_CONNECTION_CLOSE_OK, &ok);
    char why[128];
    snprintf(why, sizeof(why), "client closed the AMQP connection (%u)", m->reply_code);
    transition(ac, EV_PEER_CLOSE);
    net_conn_close(ac->c, why);
}

static void on_connection_method(asrv_conn *ac, const amqp_method *m)
{
    static const uint32_t expected[ASRV_STATE__COUNT] = {
        [ASRV_START_SENT] = AMQP_CONNECTION_START_OK,
        [ASRV_TUNE_SENT] = AMQP_CONNECTION_TUNE_OK,
        [ASRV_OPEN_WAIT] = AMQP_CONNECTION_OPEN,
    };
    uint32_t id = m->info->id;
    if (id == AMQP_CONNECTION_CLOSE) {
        on_peer_close(ac, &m->args.connection_close);
        return;
    }
    if (id != expected[ac->state]) {
        if (ac->state == ASRV_OPEN && id == AMQP_CONNECTION_UPDATE_SECRET)
            asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, m->class_id, m->method_id,
                             "%s is not implemented", m->info->name);
        else
            asrv__conn_error(ac, AMQP_COMMAND_INVALID, m->class_id, m->method_id,
                             "%s is not expected in state %s", m->info->name,
                             state_names[ac->state]);
        return;
    }
    switch (id) {
    case AMQP_CONNECTION_START_OK:
        on_start_ok(ac, &m->args.connection_start_ok);
        break;
    case AMQP_CONNECTION_TUNE_OK:
        on_tune_ok(ac, &m->args.connection_tune_ok);
        break;
    case AMQP_CONNECTION_OPEN:
        on_open(ac, &m->args.connection_open);
        break;
    default:
        CN_ASSERT(0);
    }
}

/* A method on channel ch >= 1 of an OPEN connection. */
static void on_channel_method(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    uint32_t id = m->info->id;
    if (ch > ac->channel_max) {
        asrv__conn_error(ac, AMQP_CHANNEL_ERROR, m->class_id, m->method_id,
                         "channel %u above channel_max %u", ch, ac->channel_max);
        return;
    }
    if (ac->chan[ch] == ACH_CLOSING) {
        /* We closed it: only close/close-ok count, the rest is discarded. */
        if (id == AMQP_CHANNEL_CLOSE) {
            amqp_channel_close_ok ok;
            amqp_channel_close_ok_init(&ok);
            asrv__send_method(ac, ch, AMQP_CHANNEL_CLOSE_OK, &ok);
        }
        if (id == AMQP_CHANNEL_CLOSE || id == AMQP_CHANNEL_CLOSE_OK) {
            ac->chan[ch] = ACH_FREE;
            ac->n_chan--;
        }
        return;
    }
    if (ac->chan[ch] == ACH_FREE && id != AMQP_CHANNEL_OPEN) {
        asrv__conn_error(ac, AMQP_CHANNEL_ERROR, m->class_id, m->method_id,
                         "%s on channel %u, which is not open", m->info->name, ch);
        return;
    }
    if (ac->cs[ch] && ac->cs[ch]->pending) {
        asrv__conn_error(ac, AMQP_UNEXPECTED_FRAME, m->class_id, m->method_id,
                         "%s on channel %u while a message's content is expected",
                         m->info->name, ch);
        return;
    }
    if (m->class_id == AMQP_CLASS_CHANNEL) {
        ah_channel(ac, ch, m);
        return;
    }
    if (!ac->as) {
        asrv__conn_error(ac, AMQP_CONNECTION_FORCED, m->class_id, m->method_id,
                         "broker shutdown");
        return;
    }
    if (m->class_id == AMQP_CLASS_EXCHANGE || m->class_id == AMQP_CLASS_QUEUE) {
        ah_queue(ac, ch, m);
        return;
    }
    if (m->class_id == AMQP_CLASS_BASIC || m->class_id == AMQP_CLASS_CONFIRM) {
        ah_basic(ac, ch, m);
        return;
    }
    if (m->class_id == AMQP_CLASS_TX) {
        ah_tx(ac, ch, m);
        return;
    }
    /* access.*: not served (docs/amqp-plan.md). */
    asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, m->class_id, m->method_id,
                     "%s is not implemented yet", m->info->name);
}

static void on_method(asrv_conn *ac, const amqp_frame *f)
{
    amqp_method m;
    memset(&m, 0, sizeof(m));
    int rc = amqp_method_decode(f->payload, f->size, &m);
    if (ac->state == ASRV_CLOSING) {
        if (rc == 0 && f->channel == 0 && m.info->id == AMQP_CONNECTION_CLOSE_OK) {
            transition(ac, EV_CLOSE_OK);
            net_conn_close(ac->c, "AMQP connection closed after an error");
        } else if (rc == 0 && f->channel == 0 && m.info->id == AMQP_CONNECTION_CLOSE) {
            on_peer_close(ac, &m.args.connection_close);
        }
        return;
    }
    char mname[16];
    if (rc == -CN_ENOENT) {
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, m.class_id, m.method_id,
                         "unknown method %u/%u on channel %u", m.class_id, m.method_id,
                         f->channel);
        return;
    }
    if (rc < 0) {
        asrv__conn_error(ac, AMQP_SYNTAX_ERROR, m.class_id, m.method_id,
                         "malformed %s (%u bytes) on channel %u",
                         method_name(m.class_id, m.method_id, mname, sizeof(mname)), f->size,
                         f->channel);
        return;
    }
    const amqp_method_info *mi = m.info;
    if (mi->senders && !(mi->senders & AMQP_FROM_CLIENT)) {
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, m.class_id, m.method_id,
                         "%s is sent by servers, not clients", mi->name);
        return;
    }
    if (m.class_id == AMQP_CLASS_CONNECTION) {
        if (f->channel != 0)
            asrv__conn_error(ac, AMQP_COMMAND_INVALID, m.class_id, m.method_id,
                             "%s on channel %u (connection methods use channel 0)", mi->name,
                             f->channel);
        else
            on_connection_method(ac, &m);
        return;
    }
    if (f->channel == 0) {
        asrv__conn_error(ac, AMQP_CHANNEL_ERROR, m.class_id, m.method_id,
                         "%s on channel 0 (it belongs to a channel)", mi->name);
        return;
    }
    if (ac->state != ASRV_OPEN) {
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, m.class_id, m.method_id,
                         "%s before connection.open-ok (state %s)", mi->name,
                         state_names[ac->state]);
        return;
    }
    on_channel_method(ac, f->channel, &m);
}

/* net_proto ------------------------------------------------------------------ */

int64_t asrv__frame_len(void *cctx, const uint8_t *buf, size_t len, const net_limits *lim,
                        net_scan *out)
{
    (void)lim;
    asrv_conn *ac = cctx;
    if (ac->relay)
        return (int64_t)len; /* bytes passed on as they come (ah_relay.c) */
    if (ac->state == ASRV_HEADER) {
        /* The 8-byte protocol header. A mismatch is delimited as soon as it
         * shows, so on_frame can answer without waiting for 8 bytes. */
        size_t n = len < AMQP_PROTOCOL_HEADER_LEN ? len : AMQP_PROTOCOL_HEADER_LEN;
        if (memcmp(buf, AMQP_PROTOCOL_HEADER, n) != 0)
            return (int64_t)n;
        if (n < AMQP_PROTOCOL_HEADER_LEN) {
            out->need = AMQP_PROTOCOL_HEADER_LEN;
            return 0;
        }
        return AMQP_PROTOCOL_HEADER_LEN;
    }
    uint64_t whole = amqp_frame_len(buf, len);
    if (whole == 0)
        return 0;
    if (whole > ac->frame_max) {
        /* Delimit only the header: on_frame answers Close 501 and closes. */
        ac->oversize = whole;
        return AMQP_FRAME_HEAD_LEN;
    }
    if (len < whole) {
        out->need = (size_t)whole;
        return 0;
    }
    return (int64_t)whole;
}

void asrv__on_frame(void *arg, net_conn *c, void *cctx, const uint8_t *frame, size_t len)
{
    (void)arg;
    (void)c;
    asrv_conn *ac = cctx;
    if (ac->relay) {
        asrv__relay_frame(ac, frame, len);
        return;
    }
    if (ac->state == ASRV_HEADER) {
        on_header(ac, frame, len);
        return;
    }
    if (ac->state == ASRV_CLOSED)
        return;
    ac->last_recv = loop_now(ac->l);
    if (ac->oversize) {
        frame_error(ac, "frame of %llu bytes above frame_max %u", (unsigned long long)ac->oversize,
                    ac->frame_max);
        return;
    }
    amqp_frame f;
    if (amqp_frame_parse(frame, len, 0, &f) < 0) {
        frame_error(ac, "malformed frame (type %u, %zu bytes, end octet 0x%02x)", frame[0], len,
                    frame[len - 1]);
        return;
    }
    asrv__alarm_frame(ac, &f); /* a publish during an alarm: the last frame read */
    switch (f.type) {
    case AMQP_FRAME_HEARTBEAT:
        if (f.channel != 0)
            frame_error(ac, "heartbeat frame on channel %u", f.channel);
        return;
    case AMQP_FRAME_METHOD:
        on_method(ac, &f);
        return;
    default: /* content header or body */
        if (ac->state == ASRV_CLOSING)
            return;
        if (f.channel == 0)
            asrv__conn_error(ac, AMQP_CHANNEL_ERROR, 0, 0, "content frame (type %u) on channel 0",
                             f.type);
        else if (ac->state == ASRV_OPEN && f.channel <= ac->channel_max &&
                 ac->chan[f.channel] == ACH_CLOSING)
            return; /* discarded while the channel closes */
        else if (ac->state == ASRV_OPEN && f.channel <= ac->channel_max && ac->cs[f.channel] &&
                 ac->cs[f.channel]->pending)
            ah_content(ac, f.channel, &f);
        else
            asrv__conn_error(ac, AMQP_UNEXPECTED_FRAME, 0, 0,
                             "content frame (type %u) on channel %u without a content method",
                             f.type, f.channel);
        return;
    }
}

int asrv__conn_open(void *arg, net_conn *c, void **out_cctx)
{
    asrv *as = arg;
    asrv_conn *ac = xcalloc(1, sizeof(*ac));
    ac->as = as;
    ac->l = as->l;
    ac->c = c;
    ac->uid = ++as->gen;
    ac->state = ASRV_HEADER;
    ac->frame_max = ASRV_FRAME_MIN;
    ac->opened_at = ac->last_recv = ac->last_sent = loop_now(as->l);
    loop_timer_init(&ac->timer, on_tick, ac);
    *out_cctx = ac;
    asrv_conn *client = net_conn_user(c);
    if (client) { /* the relay's connection to the serving node (ah_relay.c) */
        asrv__relay_upstream(ac, client);
        return 0;
    }
    if (as->cl && asrv__relay_start(ac))
        return 0; /* neither in as->conns nor timed: bytes pass through */
    arm(ac);
    ac->next = as->conns;
    if (as->conns)
        as->conns->prev = ac;
    as->conns = ac;
    *out_cctx = ac;
    return 0;
}

void asrv__conn_close(void *arg, net_conn *c, void *cctx)
{
    (void)arg; /* may already be freed: srv_close frees front ends before listeners */
    (void)c;
    asrv_conn *ac = cctx;
    loop_timer_stop(ac->l, &ac->timer);
    if (ac->relay) {
        asrv__relay_closed(ac);
        free(ac);
        return;
    }
    ac->state = ASRV_CLOSED; /* nothing more is delivered to it */
    asrv__cluster_conn_gone(ac);
    asrv__conn_release(ac);
    if (ac->as) {
        if (ac->prev)
            ac->prev->next = ac->next;
        else
            ac->as->conns = ac->next;
        if (ac->next)
            ac->next->prev = ac->prev;
    }
    free(ac->chan);
    free(ac->chan_flow);
    free(ac->cs);
    free(ac);
}

/* Shutdown: tell every open connection (320 CONNECTION_FORCED); net closes
 * the sockets when the listeners are freed. */
void asrv__shutdown(asrv *as)
{
    asrv_conn *ac = as->conns;
    while (ac) {
        asrv_conn *next = ac->next;
        if (ac->state > ASRV_HEADER && ac->state < ASRV_CLOSING)
            asrv__conn_error(ac, AMQP_CONNECTION_FORCED, 0, 0, "broker shutdown");
        ac->as = NULL;
        ac->prev = ac->next = NULL;
        ac = next;
    }
    as->conns = NULL;
}
