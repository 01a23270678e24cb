/* How the HTTP front end plugs into the server: its protocol table
 * (hsrv_proto), the per-connection parser, its row of the server's
 * front-end table (hsrv_frontend) and the front end object.
 *
 * Framing: a frame is one whole request (request line, headers, body).
 * frame_len feeds the bytes net has buffered to the connection's
 * http_parser (Node's http_parser 2.9: callbacks, no I/O), from where it
 * stopped the previous time (net calls again from the frame's start when
 * more bytes arrive, and the bytes before `scanned` are the same), and
 * records the URL, the headers and the body pieces as offsets from the
 * frame's start (the buffer may move between calls). The parser is paused in
 * on_message_complete, so a pipelined next request stays for the next frame;
 * on_frame builds the hreq from the recorded offsets, resets the parser and
 * dispatches. Content-Length and chunked bodies are both accepted (chunked
 * pieces are joined in the slot's arena); with Content-Length known the
 * frame's length is hinted to net (net_scan.need) so the buffer grows once.
 *
 * Limits: request line + headers above http.max.header.bytes: 431; more than
 * HCONN_MAX_HEADERS headers: 431; a body above http.max.body.bytes (by
 * Content-Length, before the body is read, or counted while chunks arrive):
 * 413, as is a chunked body in more than HCONN_MAX_BODY_PIECES chunks;
 * anything http_parser rejects: 400 (an unknown method: 501). Each of
 * these ends the frame at what is buffered; on_frame answers with a JSON
 * error and "Connection: close", logs one line, and the connection closes
 * once the answer is sent (net_conn_close_after): the byte stream is out of
 * step. Net's own bound (socket.request.max.bytes + HSRV_FRAME_OVERHEAD) is
 * a backstop above those. Slow clients, idle keep-alive connections and the
 * connection count are net's (request.read.timeout.ms,
 * connections.max.idle.ms, max.connections).
 *
 * Server-Sent Events (hh_sse.c): a connection whose response streams
 * (hsrv__conn_stream) has its later input discarded whole (frame_len takes
 * everything buffered as one frame, on_frame ignores it): the response has
 * no end, so nothing sent after the request could be answered, and reading
 * on lets a client's hang-up close the connection at once. Its close and
 * net's on_drain are forwarded to the stream. The Last-Event-ID and
 * If-None-Match headers are kept in the hreq (the headers handlers read).
 *
 * "Expect: 100-continue": once the headers are accepted and the body has not
 * arrived, an interim "100 Continue" is sent in its own slot (it leaves
 * after the answers to earlier pipelined requests, before this one's). This
 * is the one place a slot is taken in frame_len: it returns 0 afterwards, so
 * a write error that closed the connection ends the parse loop.
 *
 * Listeners: every address of http.listeners (none when "off"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/evp.h>

#include "auth/pmap.h"
#include "auth/scram.h"
#include "auth/tokens.h"
#include "auth/users.h"
#include "http/http_int.h"
#include "util/slog.h"

#define HCONN_MAX_HEADERS 64
/* Chunked bodies are kept as a list of pieces until on_frame joins them:
 * bound it (16 bytes each), so tiny chunks cannot cost more than the body. */
#define HCONN_MAX_BODY_PIECES 65536
/* Framing bytes allowed beyond socket.request.max.bytes (headers, chunk
 * sizes): net closes a connection whose frame passes the sum. */
#define HSRV_FRAME_OVERHEAD (1u << 20)

typedef struct hspan {
    size_t off, len;
} hspan;

typedef struct hconn {
    hsrv *hs;
    net_conn *c;
    http_parser p;
    const uint8_t *base;         /* the frame's start during frame_len */
    size_t scanned;              /* bytes of this frame fed to the parser */
    hspan url;
    hspan hname[HCONN_MAX_HEADERS], hval[HCONN_MAX_HEADERS];
    int n_headers;
    int in_value;                /* the last header callback was a value */
    hspan *body;                 /* body pieces, in order */
    int n_body, cap_body;
    uint64_t body_bytes;
    int headers_done;
    int done;                    /* on_message_complete ran (parser paused) */
    int continue_sent;
    hh_sse_stream *stream;       /* streaming: input is discarded (hsrv__conn_stream) */
    /* The last accepted Authorization header (SHA-256 of it) and whom it
     * named, valid while the users' generation is the same: a keep-alive
     * connection pays the password check (a PBKDF2 run) once. auth_ok:
     * 0 none, 1 that header, 2 the TLS client certificate (no header). */
    uint8_t auth_hash[32];
    uint64_t auth_gen;
    int64_t auth_expires;        /* a bearer token's expiry (0: none) */
    int auth_ok;
    char principal[512];
    /* A framing error to answer (status 0: none). */
    int err_status;
    const char *err_code;
    char err_msg[160];
} hconn;

static void fail(hconn *hc, int status, const char *code, const char *fmt, ...) CN_PRINTF(4, 5);

static void fail(hconn *hc, int status, const char *code, const char *fmt, ...)
{
    if (hc->err_status)
        return;
    hc->err_status = status;
    hc->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hc->err_msg, sizeof(hc->err_msg), fmt, ap);
    va_end(ap);
    /* Stop the parser inside a callback; after it failed on its own it is
     * already stopped (and http_parser_pause asserts on an errored parser). */
    if (HTTP_PARSER_ERRNO(&hc->p) == HPE_OK)
        http_parser_pause(&hc->p, 1);
}

static void span_add(hspan *s, hconn *hc, const char *at, size_t len)
{
    size_t off = (size_t)((const uint8_t *)at - hc->base);
    if (s->len == 0)
        s->off = off;
    s->len = off + len - s->off; /* pieces of one element are contiguous */
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    hconn *hc = p->data;
    span_add(&hc->url, hc, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    hconn *hc = p->data;
    if (hc->in_value || hc->n_headers == 0) {
        if (hc->n_headers == HCONN_MAX_HEADERS) {
            fail(hc, 431, "header_too_large", "more than %d header fields", HCONN_MAX_HEADERS);
            return 0;
        }
        hc->n_headers++;
        hc->hname[hc->n_headers - 1] = (hspan){0, 0};
        hc->hval[hc->n_headers - 1] = (hspan){0, 0};
        hc->in_value = 0;
    }
    span_add(&hc->hname[hc->n_headers - 1], hc, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    hconn *hc = p->data;
    if (hc->n_headers == 0)
        return 0;
    hc->in_value = 1;
    span_add(&hc->hval[hc->n_headers - 1], hc, at, len);
    return 0;
}

/* The header named name (case-insensitive), or NULL; *len its value length. */
static const uint8_t *header_get(const hconn *hc, const uint8_t *frame, const char *name,
                                 size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < hc->n_headers; i++)
        if (hc->hname[i].len == nl &&
            strncasecmp((const char *)frame + hc->hname[i].off, name, nl) == 0) {
            *len = hc->hval[i].len;
            return frame + hc->hval[i].off;
        }
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    hconn *hc = p->data;
    hc->headers_done = 1;
    uint64_t max = (uint64_t)hc->hs->cfg->http_max_body_bytes;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > max) {
        fail(hc, 413, "body_too_large", "Content-Length %llu above http.max.body.bytes %llu",
             (unsigned long long)p->content_length, (unsigned long long)max);
        return 0;
    }
    size_t vl;
    const uint8_t *v = header_get(hc, hc->base, "expect", &vl);
    if (v && !(vl == 12 && strncasecmp((const char *)v, "100-continue", 12) == 0))
        fail(hc, 417, "expectation_failed", "only 'Expect: 100-continue' is understood");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hconn *hc = p->data;
    hc->body_bytes += len;
    if (hc->body_bytes > (uint64_t)hc->hs->cfg->http_max_body_bytes) {
        fail(hc, 413, "body_too_large", "body above http.max.body.bytes %lld",
             (long long)hc->hs->cfg->http_max_body_bytes);
        return 0;
    }
    size_t off = (size_t)((const uint8_t *)at - hc->base);
    if (hc->n_body > 0 && hc->body[hc->n_body - 1].off + hc->body[hc->n_body - 1].len == off) {
        hc->body[hc->n_body - 1].len += len; /* contiguous: one piece */
        return 0;
    }
    if (hc->n_body == HCONN_MAX_BODY_PIECES) {
        fail(hc, 413, "body_too_large", "chunked body in more than %d chunks",
             HCONN_MAX_BODY_PIECES);
        return 0;
    }
    if (hc->n_body == hc->cap_body) {
        hc->cap_body = hc->cap_body ? hc->cap_body * 2 : 4;
        hc->body = xrealloc(hc->body, (size_t)hc->cap_body * sizeof(*hc->body));
    }
    hc->body[hc->n_body++] = (hspan){off, len};
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hconn *hc = p->data;
    hc->done = 1;
    http_parser_pause(p, 1); /* the next pipelined request is the next frame */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void hconn_reset(hconn *hc)
{
    http_parser_init(&hc->p, HTTP_REQUEST);
    hc->p.data = hc;
    hc->base = NULL;
    hc->scanned = 0;
    hc->url = (hspan){0, 0};
    hc->n_headers = 0;
    hc->in_value = 0;
    hc->n_body = 0;
    hc->body_bytes = 0;
    hc->headers_done = 0;
    hc->done = 0;
    hc->continue_sent = 0;
}

static int http_conn_open(void *arg, net_conn *c, void **out_cctx)
{
    hconn *hc = xcalloc(1, sizeof(*hc));
    hc->hs = arg;
    hc->c = c;
    hconn_reset(hc);
    *out_cctx = hc;
    return 0;
}

static void http_conn_close(void *arg, net_conn *c, void *cctx)
{
    (void)arg;
    (void)c;
    hconn *hc = cctx;
    if (hc->stream)
        hh_sse_conn_closed(hc->stream);
    free(hc->body);
    free(hc);
}

static void http_on_drain(void *arg, net_conn *c, void *cctx)
{
    (void)arg;
    (void)c;
    hconn *hc = cctx;
    if (hc->stream)
        hh_sse_drained(hc->stream);
}

void hsrv__conn_stream(net_conn *c, hh_sse_stream *s)
{
    hconn *hc = net_conn_ctx(c);
    if (hc)
        hc->stream = s;
}

static void send_continue(hconn *hc)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    net_resp *r = net_resp_new(hc->c);
    wbuf_append(&r->w, cont, sizeof(cont) - 1);
    net_resp_ready(r);
}

static int64_t http_frame_len(void *cctx, const uint8_t *buf, size_t len, const net_limits *lim,
                              net_scan *out)
{
    (void)lim;
    hconn *hc = cctx;
    if (hc->err_status || hc->stream)
        return (int64_t)len; /* already failed: on_frame answers; streaming: discarded */
    hc->base = buf;
    size_t n = http_parser_execute(&hc->p, &parser_settings, (const char *)buf + hc->scanned,
                                   len - hc->scanned);
    hc->scanned += n;
    if (hc->done && !hc->err_status)
        return (int64_t)hc->scanned;
    enum http_errno e = HTTP_PARSER_ERRNO(&hc->p);
    if (!hc->err_status && e != HPE_OK && e != HPE_PAUSED) {
        if (e == HPE_HEADER_OVERFLOW)
            fail(hc, 431, "header_too_large", "request line and headers above %d bytes",
                 hc->hs->cfg->http_max_header_bytes);
        else if (e == HPE_INVALID_METHOD)
            fail(hc, 501, "method_not_implemented", "unknown request method");
        else
            fail(hc, 400, "bad_request", "malformed HTTP request: %s",
                 http_errno_description(e));
    }
    if (!hc->err_status && !hc->headers_done &&
        hc->scanned > (size_t)hc->hs->cfg->http_max_header_bytes)
        fail(hc, 431, "header_too_large", "request line and headers above %d bytes",
             hc->hs->cfg->http_max_header_bytes);
    if (hc->err_status)
        return (int64_t)len;
    if (hc->headers_done) {
        if (!hc->continue_sent) {
            size_t vl;
            hc->continue_sent = 1; /* checked once per request */
            if (header_get(hc, buf, "expect", &vl))
                send_continue(hc);
        }
        if ((hc->p.flags & F_CONTENTLENGTH) && !(hc->p.flags & F_CHUNKED))
            out->need = hc->scanned + (size_t)hc->p.content_length; /* what is left of it */
    }
    return 0;
}

/* Percent-decode s[0..len) into a NUL-terminated arena string. NULL when an
 * escape is malformed or decodes to NUL. plus_space: '+' means ' ' (query). */
static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *hsrv__pct_decode(hreq *q, const char *s, size_t len, int plus_space)
{
    char *o = hh_alloc(q, len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return NULL;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return NULL;
            o[k++] = (char)(h << 4 | l);
            i += 2;
        } else if (ch == '+' && plus_space) {
            o[k++] = ' ';
        } else {
            o[k++] = ch;
        }
    }
    o[k] = '\0';
    return o;
}

/* Split the target into path segments and query. 0, or -1 (bad target). */
static int parse_target(hreq *q, const char *t, size_t len)
{
    if (len == 0 || t[0] != '/')
        return -1; /* origin-form only (no absolute-form, no '*') */
    const char *qm = memchr(t, '?', len);
    size_t plen = qm ? (size_t)(qm - t) : len;
    if (qm)
        q->query = hh_strdup(q, qm + 1);
    const char *hash = q->query ? strchr(q->query, '#') : NULL;
    if (hash)
        q->query[hash - q->query] = '\0';
    size_t i = 1;
    if (plen == 1)
        return 0; /* "/" */
    while (i <= plen) {
        size_t j = i;
        while (j < plen && t[j] != '/')
            j++;
        if (q->n_seg == HREQ_MAX_SEGS)
            return 0; /* deeper than any route: routed as unknown (404) */
        char *seg = hsrv__pct_decode(q, t + i, j - i, 0);
        if (!seg)
            return -1;
        q->seg[q->n_seg++] = seg;
        i = j + 1;
    }
    return 0;
}

/* http.authentication=basic: the paths anyone may ask for (health checks,
 * the console's page and assets, which then call the API with the
 * browser's Basic login). */
static int open_path(const hreq *q)
{
    if (q->n_seg == 0)
        return 1;
    return strcmp(q->seg[0], "healthz") == 0 || strcmp(q->seg[0], "readyz") == 0 ||
           strcmp(q->seg[0], "console") == 0;
}

/* Who q is: 1 with q->principal set; 0 when a login is required and
 * missing; -1 when one was tried and failed (both answered 401 by the
 * caller, a failure after the address's delay, with *why set for a bearer
 * token that was refused). Logins: Authorization: Basic (a user's
 * password), Authorization: Bearer (a token, auth/tokens.h), or, without
 * the header, a trusted TLS client certificate. */
static int authenticate(hsrv *hs, hconn *hc, hreq *q, const uint8_t *auth, size_t len,
                        const char **why)
{
    q->principal = "User:ANONYMOUS";
    if (!hs->cfg->http_auth || open_path(q))
        return 1;
    auth_users *users = hs->core->users;
    const char *dn = net_conn_tls_subject(hc->c);
    if (!auth && dn && dn[0]) {
        /* a trusted client certificate, mapped by ssl.principal.mapping.rules */
        if (hc->auth_ok == 2) {
            q->principal = hc->principal;
            return 1;
        }
        memcpy(hc->principal, "User:", 5);
        int rc = auth_pmap_apply(hs->core->pmap, dn, hc->principal + 5, sizeof(hc->principal) - 5);
        if (rc < 0) {
            hsrv__log_error(hs, 1, "http: connection %llu from %s: the client certificate "
                            "'%.300s' names no principal (ssl.principal.mapping.rules)",
                            (unsigned long long)net_conn_id(hc->c), net_conn_peer(hc->c), dn);
            return -1;
        }
        hc->auth_ok = 2;
        q->principal = hc->principal;
        return 1;
    }
    if (!auth || !users)
        return 0;
    uint8_t h[32];
    unsigned int hl = 0;
    EVP_Digest(auth, len, h, &hl, EVP_sha256(), NULL);
    int64_t now = loop_wall_ms();
    if (hc->auth_ok == 1 && hc->auth_gen == auth_users_generation(users) &&
        memcmp(h, hc->auth_hash, sizeof(h)) == 0 &&
        (!hc->auth_expires || now < hc->auth_expires)) {
        q->principal = hc->principal;
        return 1;
    }
    hc->auth_ok = 0;
    const char *user;
    int64_t expires = 0;
    uint8_t dec[512];
    if (len > 7 && strncasecmp((const char *)auth, "Bearer ", 7) == 0) {
        const char *t = (const char *)auth + 7;
        size_t tl = len - 7;
        while (tl && t[tl - 1] == ' ')
            tl--;
        int rc = auth_token_check(users, t, tl, now, &user, &expires);
        if (rc < 0) {
            *why = rc == -CN_ETIMEDOUT ? "the token has expired" : "the token is not valid";
            hsrv__log_error(hs, 1, "http: connection %llu from %s: bearer token refused (%s)",
                            (unsigned long long)net_conn_id(hc->c), net_conn_peer(hc->c), *why);
            return -1;
        }
    } else {
        if (len < 7 || strncasecmp((const char *)auth, "Basic ", 6) != 0)
            return 0;
        const char *b64 = (const char *)auth + 6;
        size_t bl = len - 6;
        while (bl && b64[bl - 1] == ' ')
            bl--;
        int n = bl < 600 ? b64_decode(b64, bl, dec, sizeof(dec) - 1) : -1;
        if (n < 0)
            return -1;
        dec[n] = '\0';
        char *colon = memchr(dec, ':', (size_t)n);
        if (!colon || colon == (char *)dec || memchr(dec, '\0', (size_t)n))
            return -1;
        *colon = '\0';
        user = (const char *)dec;
        const char *pw = colon + 1;
        const scram_cred *c =
            strlen(user) <= SCRAM_MAX_NAME ? auth_users_find_any(users, user) : NULL;
        if (!c || !scram_check_password(c, pw, strlen(pw))) {
            hsrv__log_error(hs, 1, "http: connection %llu from %s: login refused for user '%.64s'",
                            (unsigned long long)net_conn_id(hc->c), net_conn_peer(hc->c), user);
            return -1;
        }
    }
    memcpy(hc->auth_hash, h, sizeof(h));
    hc->auth_gen = auth_users_generation(users);
    hc->auth_expires = expires;
    hc->auth_ok = 1;
    snprintf(hc->principal, sizeof(hc->principal), "User:%.255s", user);
    q->principal = hc->principal;
    return 1;
}

/* 401 with the challenges browsers, curl and token clients answer; a
 * refused bearer token gets RFC 6750's invalid_token. */
static void unauthorized(hreq *q, const char *why)
{
    char body[300], hdr[300];
    snprintf(body, sizeof(body),
             "{\"error_code\":\"unauthorized\",\"message\":\"%s\"}\n",
             why ? why : "log in with HTTP Basic authentication (a user of cairn user add) "
                         "or a bearer token (cairn token create)");
    snprintf(hdr, sizeof(hdr),
             "WWW-Authenticate: Basic realm=\"cairn\", charset=\"UTF-8\"\r\n"
             "WWW-Authenticate: Bearer realm=\"cairn\"%s%s%s\r\n",
             why ? ", error=\"invalid_token\", error_description=\"" : "", why ? why : "",
             why ? "\"" : "");
    hh_reply(q, 401, "application/json", body, strlen(body), hdr);
}

/* A failed login's 401 waits (auth/throttle.h); the connection reads
 * nothing more and closes once it is sent. The wait lives in the request's
 * arena, which its response slot keeps until answered. */
typedef struct hrefusal {
    loop_timer t;
    hsrv *hs;
    hreq *q;
    const char *why;             /* static text or NULL */
    struct hrefusal *next, *prev;
} hrefusal;

static void refusal_fire(hrefusal *f)
{
    hsrv *hs = f->hs;
    if (f->prev)
        f->prev->next = f->next;
    else
        hs->refusals = f->next;
    if (f->next)
        f->next->prev = f->prev;
    unauthorized(f->q, f->why); /* f and q are gone after this */
}

static void refusal_cb(loop_timer *t) { refusal_fire(t->data); }

static void refuse_later(hsrv *hs, hreq *q, const char *why)
{
    hrefusal *f = hh_alloc(q, sizeof(*f));
    f->hs = hs;
    f->q = q;
    f->why = why;
    f->prev = NULL;
    f->next = hs->refusals;
    if (hs->refusals)
        hs->refusals->prev = f;
    hs->refusals = f;
    net_conn_close_after(q->c, "HTTP login refused");
    loop_timer_init(&f->t, refusal_cb, f);
    loop_timer_start(hs->l, &f->t,
                     auth_throttle_fail(hs->core->throttle, net_conn_host(q->c), loop_now(hs->l)));
}

static void http_on_frame(void *arg, net_conn *c, void *cctx, const uint8_t *frame, size_t len)
{
    (void)len;
    hsrv *hs = arg;
    hconn *hc = cctx;
    if (hc->stream)
        return; /* bytes sent while a response streams: discarded (frame_len) */
    net_resp *r = net_resp_new(c);
    if (hc->err_status) {
        hsrv__log_error(hs, 1, "http: connection %llu from %s: %d %s: %s",
                        (unsigned long long)net_conn_id(c), net_conn_peer(c), hc->err_status,
                        hc->err_code, hc->err_msg);
        hs->requests[HROUTE_NONE][hc->err_status >= 500 ? HCLASS_5XX : HCLASS_4XX]++;
        hh_reply_raw_error(r, hc->err_status, hc->err_code, hc->err_msg);
        net_conn_close_after(c, "malformed HTTP request");
        hc->err_status = 0; /* no more frames are parsed on this connection */
        hconn_reset(hc);
        return;
    }
    hreq *q = arena_alloc(&r->a, sizeof(*q));
    if (!q)
        abort();
    q->t0_ns = hist_now_ns();
    q->hs = hs;
    q->c = c;
    q->resp = r;
    q->method = hc->p.method;
    q->keep_alive = http_should_keep_alive(&hc->p);
    q->http10 = hc->p.http_major == 1 && hc->p.http_minor == 0;
    q->target = hh_alloc(q, hc->url.len + 1);
    memcpy(q->target, frame + hc->url.off, hc->url.len);
    size_t vl;
    const uint8_t *ct = header_get(hc, frame, "content-type", &vl);
    /* Bodies are parsed as JSON whatever the type says (curl -d sends
     * application/x-www-form-urlencoded), except forms with parts. */
    q->body_json = !ct || !(vl >= 10 && strncasecmp((const char *)ct, "multipart/", 10) == 0);
    const uint8_t *lei = header_get(hc, frame, "last-event-id", &vl);
    if (lei && vl > 0) {
        q->last_event_id = hh_alloc(q, vl + 1);
        memcpy(q->last_event_id, lei, vl);
    }
    const uint8_t *inm = header_get(hc, frame, "if-none-match", &vl);
    if (inm && vl > 0) {
        q->if_none_match = hh_alloc(q, vl + 1);
        memcpy(q->if_none_match, inm, vl);
    }
    if (hc->n_body == 1) {
        q->body = frame + hc->body[0].off;
        q->body_len = hc->body[0].len;
    } else if (hc->n_body > 1) {
        uint8_t *b = hh_alloc(q, (size_t)hc->body_bytes);
        size_t k = 0;
        for (int i = 0; i < hc->n_body; i++) {
            memcpy(b + k, frame + hc->body[i].off, hc->body[i].len);
            k += hc->body[i].len;
        }
        q->body = b;
        q->body_len = k;
    }
    int bad_target = parse_target(q, q->target, hc->url.len) < 0;
    size_t al = 0;
    const uint8_t *auth = header_get(hc, frame, "authorization", &al);
    const char *why = NULL;
    int authed = bad_target ? 1 : authenticate(hs, hc, q, auth, al, &why);
    hconn_reset(hc);
    if (authed < 0) {
        refuse_later(hs, q, why);
        return;
    }
    /* Neither q nor hc may be used after the answer: a failed write closes
     * the connection at once, freeing hc and the answered slot (q's arena).
     * c itself lives until net's hook; its ctx is NULL once closed. */
    int keep_alive = q->keep_alive;
    if (bad_target)
        hh_error(q, 400, "bad_request", "request target is not a valid path");
    else if (!authed)
        unauthorized(q, why);
    else
        hsrv__dispatch(q);
    hconn *now = net_conn_ctx(c);
    if (!keep_alive && !(now && now->stream)) /* a stream closes when it ends */
        net_conn_close_after(c, "Connection: close");
}

const net_proto hsrv_proto = {
    .name = "http",
    .frame_overhead = HSRV_FRAME_OVERHEAD,
    .conn_open = http_conn_open,
    .conn_close = http_conn_close,
    .frame_len = http_frame_len,
    .on_frame = http_on_frame,
    .on_drain = http_on_drain,
};

/* The front end ---------------------------------------------------------------- */

hsrv *hsrv_new(core *c)
{
    hsrv *hs = xcalloc(1, sizeof(*hs));
    hs->core = c;
    hs->b = c->b;
    hs->l = c->l;
    hs->cfg = c->cfg;
    hs->created_ms = loop_now_mono();
    for (int i = 0; i < HROUTE__COUNT; i++)
        hist_init(&hs->latency[i], &hist_latency_ns);
    /* http_parser's own bound (process-wide; one HTTP front end per process);
     * frame_len applies the exact one. */
    http_parser_set_max_header_size((uint32_t)c->cfg->http_max_header_bytes + 1);
    hh_read_init(hs);
    hh_sse_init(hs);
    hh_wh_init(hs);
    return hs;
}

void hsrv__durable_begin(hsrv *hs) { hs->n_durable++; }

void hsrv__durable_end(hsrv *hs)
{
    if (--hs->n_durable == 0 && hs->freed)
        free(hs);
}

void hsrv_free(hsrv *hs)
{
    if (!hs)
        return;
    hh_read_fini(hs);
    hh_sse_fini(hs);
    hh_wh_fini(hs);
    while (hs->refusals) {
        loop_timer_stop(hs->l, &hs->refusals->t);
        refusal_fire(hs->refusals);
    }
    hs->freed = 1;
    if (hs->n_durable == 0)
        free(hs); /* else the last durable wait frees it (core_close completes them) */
}

static void *http_create(core *c) { return hsrv_new(c); }
static void http_destroy(void *fe) { hsrv_free(fe); }

static int http_addresses(const cairn_config *cfg, srv_addr *out, int max)
{
    int n = 0;
    for (int i = 0; i < cfg->n_http && n < max; i++, n++)
        out[n] = (srv_addr){cfg->http_host[i], cfg->http_port[i], 0, .tls = cfg->http_tls[i],
                            .name = cfg->http_tls[i] ? "https" : NULL};
    return n;
}

static void http_serving(void *fe, srv *s) { ((hsrv *)fe)->server = s; }

const srv_frontend hsrv_frontend = {
    .name = "http",
    .create = http_create,
    .destroy = http_destroy,
    .proto = &hsrv_proto,
    .addresses = http_addresses,
    .serving = http_serving,
};
