/* Replies and request helpers of the HTTP front end (contracts in
 * http_int.h).
 *
 * Every reply is one HTTP/1.1 response written whole into the request's slot:
 * status line, Content-Type, Content-Length, "Connection: close" when the
 * connection ends after it, Cache-Control: no-store (everything here is live
 * state; the console's files say otherwise through hreq.cache_control),
 * then the body. Errors are JSON objects
 * {"error_code": "<stable snake_case>", "message": "..."} (plus fields some
 * errors add), and each gets one log line: info for 4xx (the client's
 * mistake, DEBUG-free but not an operator's problem), warn for 5xx. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "http/http_int.h"
#include "util/slog.h"

const char *hh_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 507: return "Insufficient Storage";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* A JSON string of msg; bytes that are not valid UTF-8 (a message quoting a
 * client's bytes) become '?'. */
static json_t *text_json(char *msg)
{
    json_t *m = json_string(msg);
    if (m)
        return m;
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    return json_string(msg);
}

/* conn: 0 keep-alive (HTTP/1.1's default: nothing said), 1 close, 2
 * keep-alive said (an HTTP/1.0 client asked for it). A 304 has no body and
 * says neither type nor length (RFC 9110 8.6: a length there would have to
 * be the 200's). */
static void put_head(wbuf *w, int status, const char *ctype, size_t len, int conn,
                     const char *cache, const char *extra)
{
    static const char *const conn_hdr[] = {"", "Connection: close\r\n",
                                           "Connection: keep-alive\r\n"};
    char head[512];
    int n = status == 304
                ? snprintf(head, sizeof(head), "HTTP/1.1 304 %s\r\nCache-Control: %s\r\n%s",
                           hh_status_text(status), cache ? cache : "no-store", conn_hdr[conn])
                : snprintf(head, sizeof(head),
                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: %s\r\n%s",
                           status, hh_status_text(status), ctype, len,
                           cache ? cache : "no-store", conn_hdr[conn]);
    wbuf_append(w, head, (size_t)n);
    if (extra)
        wbuf_append(w, extra, strlen(extra));
    wbuf_append(w, "\r\n", 2);
}

void hh_reply(hreq *q, int status, const char *ctype, const void *body, size_t len,
              const char *extra)
{
    CN_ASSERT(!q->answered);
    q->answered = 1;
    int cls = status < 400 ? HCLASS_2XX : status < 500 ? HCLASS_4XX : HCLASS_5XX;
    q->hs->requests[q->route][cls]++;
    hist_observe(&q->hs->latency[q->route], hist_now_ns() - q->t0_ns);
    if (!net_resp_alive(q->resp)) {
        net_resp_drop(q->resp); /* the client went away while it was parked */
        return;
    }
    wbuf *w = &q->resp->w;
    put_head(w, status, ctype, len, !q->keep_alive ? 1 : q->http10 ? 2 : 0, q->cache_control,
             extra);
    if (len)
        wbuf_append(w, body, len);
    net_resp_ready(q->resp);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    wbuf_append(data, buf, size);
    return 0;
}

void hh_reply_json(hreq *q, int status, json_t *j)
{
    wbuf body;
    wbuf_init(&body);
    json_dump_callback(j, dump_cb, &body, JSON_COMPACT);
    wbuf_append(&body, "\n", 1);
    json_decref(j);
    hh_reply(q, status, "application/json", body.buf, body.len, NULL);
    wbuf_fini(&body);
}

void hsrv__log_error(hsrv *hs, int warn, const char *fmt, ...)
{
    int64_t now = loop_now(hs->l);
    if (now - hs->log_window_ms >= 1000) {
        if (hs->log_suppressed)
            slog_warn("http: %llu more error line(s) suppressed (at most %d a second)",
                      (unsigned long long)hs->log_suppressed, HSRV_LOG_PER_SEC);
        hs->log_window_ms = now;
        hs->log_lines = 0;
        hs->log_suppressed = 0;
    }
    if (hs->log_lines >= HSRV_LOG_PER_SEC) {
        hs->log_suppressed++;
        return;
    }
    hs->log_lines++;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (warn)
        slog_warn("%s", line);
    else
        slog_info("%s", line);
}

static void error_v(hreq *q, int status, const char *code, json_t *extra, const char *fmt,
                    va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *method = http_method_str((enum http_method)q->method);
    char line[512]; /* one log line: no control bytes from the client */
    snprintf(line, sizeof(line), "%s", msg);
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    hsrv__log_error(q->hs, status >= 500, "http: %d %s %s %s from %s: %s", status, code, method,
                    q->target, net_conn_peer(q->c), line);
    json_t *j = extra ? extra : json_object();
    json_object_set_new(j, "error_code", json_string(code));
    json_object_set_new(j, "message", text_json(msg));
    const char *allow = NULL;
    if (status == 405) {
        json_t *a = json_object_get(j, "allow");
        allow = a ? json_string_value(a) : NULL;
    }
    if (allow) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
        wbuf body;
        wbuf_init(&body);
        json_dump_callback(j, dump_cb, &body, JSON_COMPACT);
        wbuf_append(&body, "\n", 1);
        json_decref(j);
        hh_reply(q, status, "application/json", body.buf, body.len, hdr);
        wbuf_fini(&body);
        return;
    }
    hh_reply_json(q, status, j);
}

void hh_error(hreq *q, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(q, status, code, NULL, fmt, ap);
    va_end(ap);
}

void hh_error_obj(hreq *q, int status, const char *code, json_t *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(q, status, code, extra, fmt, ap);
    va_end(ap);
}

void hh_reply_raw_error(net_resp *r, int status, const char *code, const char *text)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", text);
    json_t *j = json_object();
    json_object_set_new(j, "error_code", json_string(code));
    json_object_set_new(j, "message", text_json(msg));
    wbuf body;
    wbuf_init(&body);
    json_dump_callback(j, dump_cb, &body, JSON_COMPACT);
    wbuf_append(&body, "\n", 1);
    json_decref(j);
    put_head(&r->w, status, "application/json", body.len, 1, NULL, NULL);
    wbuf_append(&r->w, body.buf, body.len);
    wbuf_fini(&body);
    net_resp_ready(r);
}

/* Request helpers ------------------------------------------------------------- */

void *hh_alloc(hreq *q, size_t n)
{
    void *p = arena_alloc(&q->resp->a, n ? n : 1);
    if (!p)
        abort(); /* the slot arena has no limit: only OOM gets here */
    return p;
}

char *hh_strdup(hreq *q, const char *s)
{
    size_t n = strlen(s);
    char *d = hh_alloc(q, n + 1);
    memcpy(d, s, n + 1);
    return d;
}

int hh_query(hreq *q, const char *name, char **out)
{
    if (!q->query)
        return 0;
    size_t nl = strlen(name);
    const char *p = q->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq ? eq + 1 : end;
            *out = hsrv__pct_decode(q, v, (size_t)(end - v), 1);
            return *out ? 1 : -1;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

/* Parse a decimal int64 (optional '-'), the whole string. 0 or -1. */
static int parse_i64(const char *s, int64_t *out)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
        return -1;
    *out = v;
    return 0;
}

int hh_query_i64_or_reply(hreq *q, const char *name, int64_t def, int64_t lo, int64_t hi,
                          int64_t *out)
{
    char *v = NULL;
    int rc = hh_query(q, name, &v);
    if (rc == 0) {
        *out = def;
        return 0;
    }
    int64_t x;
    if (rc < 0 || parse_i64(v, &x) < 0 || x < lo || x > hi) {
        hh_error(q, 400, "invalid_parameter", "query parameter '%s' must be an integer in "
                 "[%lld, %lld]", name, (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

json_t *hh_body_json_or_reply(hreq *q)
{
    if (!q->body_json) {
        hh_error(q, 415, "unsupported_media_type", "the body must be JSON (application/json), not a multipart form");
        return NULL;
    }
    if (q->body_len == 0) {
        hh_error(q, 400, "invalid_json", "a JSON object body is required");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)q->body, q->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        hh_error(q, 400, "invalid_json", "body is not valid JSON: %s (line %d, column %d)",
                 err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        hh_error(q, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

void hh_store_error(hreq *q, int status, const char *what)
{
    if (status == -CN_ENOTCONTROLLER || status == -CN_ETIMEDOUT)
        hh_error(q, 503, "not_committed",
                 "the change of the %s was not committed by the cluster in time (%s); it may "
                 "still apply: check, then retry", what, cn_strerror(status));
    else
        hh_error(q, 500, "storage_error", "the %s could not be stored (%s)", what,
                 cn_strerror(status));
}
