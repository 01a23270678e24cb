/* The client's HTTP calls: one libcurl easy handle per process, reused for
 * every request so they share one keep-alive connection. Requests send JSON
 * and read the whole answer (cli__call), or read a text/event-stream line by
 * line until the caller stops it (cli__stream). What the user sees when
 * something goes wrong is decided here: an unreachable broker says which
 * URL and why (refused, timed out, ...), an error answer prints the broker's
 * JSON message and error code. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 120000L  /* a produce waits for fsync, nothing waits longer */

typedef struct membuf {
    char *p;
    size_t len, cap;
} membuf;

static void mb_add(membuf *b, const char *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static size_t on_body(char *d, size_t sz, size_t n, void *arg)
{
    mb_add(arg, d, sz * n);
    return sz * n;
}

char *cli__path(cli *c, const char *before, const char *name, const char *after)
{
    char *e = curl_easy_escape(c->curl, name, 0);
    if (!e)
        abort();                 /* out of memory, as xmalloc */
    size_t n = strlen(before) + strlen(e) + strlen(after) + 1;
    char *out = xmalloc(n);
    snprintf(out, n, "%s%s%s", before, e, after);
    curl_free(e);
    return out;
}

/* Reset the handle for method and path (keeps the connection). */
static struct curl_slist *setup(cli *c, const char *method, const char *path, const char *body,
                                char *errbuf)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    size_t n = strlen(c->base) + strlen(path) + 1;
    char *url = xmalloc(n);
    snprintf(url, n, "%s%s", c->base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);       /* libcurl copies it */
    free(url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cairn-cli");
    /* A broker with http.authentication=basic: a bearer token or the user
     * from the environment (not the command line, where ps shows it); an
     * https:// broker with a private CA: CAIRN_CACERT. */
    const char *user = getenv("CAIRN_USER"), *pw = getenv("CAIRN_PASSWORD");
    const char *token = getenv("CAIRN_TOKEN");
    if (token && *token) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, token);
    } else if (user && *user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, pw ? pw : "");
    }
    const char *ca = getenv("CAIRN_CACERT");
    if (ca && *ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");   /* no 100-continue wait */
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "POST") == 0 && !body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

static int transport_error(cli *c, CURLcode cc, const char *errbuf)
{
    long oserr = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
    const char *why = oserr ? strerror((int)oserr) : errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return cli__fail(c, "cannot connect to the broker's HTTP API at %s: %s (is cairn "
                         "running? --http HOST:PORT names its HTTP listener)", c->base, why);
    return cli__fail(c, "request to %s failed: %s", c->base, errbuf[0] ? errbuf : why);
}

int cli__http_error(cli *c, long status, json_t *j)
{
    const char *msg = json_string_value(json_object_get(j, "message"));
    const char *code = json_string_value(json_object_get(j, "error_code"));
    if (msg)
        return cli__fail(c, "%s (%s, HTTP %ld)", msg, code ? code : "error", status);
    return cli__fail(c, "the broker answered HTTP %ld", status);
}

int cli__call(cli *c, const char *method, const char *path, json_t *body, long *out_status,
              json_t **out_json)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hdrs = setup(c, method, path, text, errbuf);
    membuf mb = {0};
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &mb);
    CURLcode cc = curl_easy_perform(c->curl);
    curl_slist_free_all(hdrs);
    free(text);
    if (cc != CURLE_OK) {
        free(mb.p);
        return transport_error(c, cc, errbuf);
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, out_status);
    *out_json = mb.len ? json_loadb(mb.p, mb.len, 0, NULL) : NULL;
    free(mb.p);
    return CLI_OK;
}

int cli__request(cli *c, const char *method, const char *path, json_t *body, json_t **out_json)
{
    long status = 0;
    json_t *j = NULL;
    int rc = cli__call(c, method, path, body, &status, &j);
    if (rc)
        return rc;
    if (status < 200 || status > 299) {
        rc = cli__http_error(c, status, j);
        json_decref(j);
        return rc;
    }
    if (out_json)
        *out_json = j;
    else
        json_decref(j);
    return CLI_OK;
}

/* Streams ------------------------------------------------------------------------------ */

typedef struct stream_ctx {
    cli *c;
    cli_stream_fn fn;
    void *ctx;
    membuf line;                 /* the line being received */
    membuf err;                  /* the body of a non-200 answer */
    long status;                 /* 0 until the first bytes */
    int rc;                      /* set when fn ended the stream */
    int stopped;
} stream_ctx;

static size_t on_stream(char *d, size_t sz, size_t n, void *arg)
{
    stream_ctx *s = arg;
    size_t len = sz * n;
    if (!s->status)
        curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) {
        mb_add(&s->err, d, len);
        return len;
    }
    for (size_t i = 0; i < len;) {
        char *nl = memchr(d + i, '\n', len - i);
        size_t k = nl ? (size_t)(nl - (d + i)) : len - i;
        mb_add(&s->line, d + i, k);
        i += k;
        if (!nl)
            break;
        i++;
        size_t ll = s->line.len;
        if (ll && s->line.p[ll - 1] == '\r')
            s->line.p[--ll] = '\0';
        int rc = s->fn(s->ctx, s->line.p ? s->line.p : "", ll);
        s->line.len = 0;
        if (rc != 0) {
            s->stopped = 1;
            s->rc = rc == CLI_STREAM_STOP ? CLI_OK : rc;
            return 0;            /* aborts the transfer (CURLE_WRITE_ERROR) */
        }
    }
    return len;
}

int cli__stream(cli *c, const char *path, const char *const *headers, cli_stream_fn on_line,
                void *ctx)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = setup(c, "GET", path, NULL, errbuf);
    for (int i = 0; headers && headers[i]; i++)
        hdrs = curl_slist_append(hdrs, headers[i]);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    stream_ctx s = {.c = c, .fn = on_line, .ctx = ctx};
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
    CURLcode cc = curl_easy_perform(c->curl);
    curl_slist_free_all(hdrs);
    int rc;
    if (s.stopped) {
        rc = s.rc;
    } else if (cc != CURLE_OK && !s.status) {
        rc = transport_error(c, cc, errbuf);
    } else if (s.status != 200) {
        json_t *j = s.err.len ? json_loadb(s.err.p, s.err.len, 0, NULL) : NULL;
        rc = cli__http_error(c, s.status, j);
        json_decref(j);
    } else {
        rc = cli__fail(c, "the broker closed the stream%s%s", cc != CURLE_OK ? ": " : "",
                       cc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(cc)) : "");
    }
    free(s.line.p);
    free(s.err.p);
    return rc;
}
