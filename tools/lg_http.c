/* lg_http: load generator for Cairn's HTTP front end (src/http), the same
 * phases and report as tools/loadgen.c via tools/lg/lg_common.c, on
 * libcurl's multi interface (one thread, no pipelining).
 *
 * produce: creates the topic with --partitions P (POST /topics; an existing
 *   topic is kept), then POST /topics/{topic}/records with --batch B
 *   records per request ({"records": [{"value_b64": ...}, ...]}: the
 *   payload's bytes are incompressible, so they travel as base64 and are
 *   stored as the same --size bytes the other generators store), unkeyed:
 *   the broker spreads requests round-robin over the partitions. The broker
 *   answers once the records are fsynced (acks=all; there is no relaxed
 *   mode over HTTP). --connections C keep-alive connections, each with one
 *   request in flight (so at most C * B records in flight; --window is not
 *   used). Latency = one request, from handing it to libcurl to its 200
 *   answer, one histogram entry per request (not per record).
 * consume: one Server-Sent Events stream, GET /topics/{topic}/stream
 *   ?from=earliest over every partition; counts "event: record" events,
 *   checks that each one's value_b64 has the length --size gives, stops at
 *   --records (or --idle-ms without a record, or --max-seconds). Time runs
 *   from the request to the last record, as the other consumers count it.
 * e2e: creates the topic, opens the SSE stream from its (empty) start and,
 *   once the stream's 200 arrived, a producer thread on its own multi handle
 *   paces --rate records/s, each stamped with its send time: a free
 *   connection takes every record due by then (at most --batch; the loop
 *   waits at most 1 ms past a record's due time) in one request. Latency =
 *   the stamp -> the consumer parsing its event (p50/p99/p99.9).
 * --rate is for e2e only (produce sends as fast as the connections allow). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg_common.h"

static long g_batch = 1, g_conns = 16;

static int extra_opt(const char *name, const char *val, int *used, void *arg)
{
    (void)arg;
    long *dst = !strcmp(name, "--batch") ? &g_batch : !strcmp(name, "--connections") ? &g_conns : NULL;
    if (!dst)
        return 0;
    char *end;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || *end || v < 1 || v > 100000) {
        fprintf(stderr, "lg_http: bad value for %s\n", name);
        return -1;
    }
    *dst = v;
    *used = 1;
    return 1;
}

/* A growable byte buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "lg_http: out of memory\n");
            exit(2);
        }
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static size_t b64_len(long size) { return (size_t)(size + 2) / 3 * 4; }

static void b64_add(buf *b, const unsigned char *s, size_t len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < len) v |= s[i + 2];
        char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < len ? a[v >> 6 & 63] : '=',
                     i + 2 < len ? a[v & 63] : '='};
        buf_add(b, q, 4);
    }
}

/* {"records": [{"value_b64": "..."} x n]} */
static void body_build(buf *b, const char *payload, long size, long n)
{
    buf_str(b, "{\"records\":[");
    for (long i = 0; i < n; i++) {
        buf_str(b, i ? ",{\"value_b64\":\"" : "{\"value_b64\":\"");
        b64_add(b, (const unsigned char *)payload, (size_t)size);
        buf_str(b, "\"}");
    }
    buf_str(b, "]}");
}

/* One request slot: an easy handle and what it carries. */
typedef struct slot {
    CURL *h;
    uint64_t sent_ns;
    long records;
    buf resp;                    /* first bytes of the answer (for a note) */
} slot;

static size_t on_resp(char *p, size_t sz, size_t n, void *arg)
{
    slot *s = arg;
    if (s->resp.len < 200)
        buf_add(&s->resp, p, sz * n < 200 ? sz * n : 200);
    return sz * n;
}

static size_t on_discard(char *p, size_t sz, size_t n, void *arg)
{
    (void)p; (void)arg;
    return sz * n;
}

static CURL *easy_new(const char *url, struct curl_slist *hdrs)
{
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "lg_http: curl_easy_init failed\n");
        exit(2);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    return h;
}

/* POST /topics {"name", "partitions"}; 201, or 409 when it exists. */
static int create_topic(const lg_opts *o, struct curl_slist *hdrs, char *note, size_t note_len)
{
    char url[512], body[512];
    snprintf(url, sizeof url, "http://%s/topics", o->addr);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"partitions\":%d}", o->topic, o->partitions);
    CURL *h = easy_new(url, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || (code != 201 && code != 409)) {
        snprintf(note, note_len, "create topic: %s, HTTP %ld", curl_easy_strerror(rc), code);
        return -1;
    }
    return 0;
}

static void run_produce(const lg_opts *o, lg_hist *lat, lg_result *res, char *note, size_t note_len)
{
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    if (create_topic(o, hdrs, note, note_len)) {
        res->errors = 1;
        curl_slist_free_all(hdrs);
        return;
    }
    char url[512];
    snprintf(url, sizeof url, "http://%s/topics/%s/records", o->addr, o->topic);
    char *payload = lg_payload_new(o->size);
    buf full = {0}, tail = {0};
    body_build(&full, payload, o->size, g_batch);
    if (o->records % g_batch)
        body_build(&tail, payload, o->size, o->records % g_batch);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, g_conns);
    slot *slots = calloc((size_t)g_conns, sizeof *slots);
    long long sent = 0, acked = 0, errors = 0;
    int running = 0, in_flight = 0;
    /* Hand slot s the next request, if any is left. */
#define START(s)                                                                           \
    do {                                                                                   \
        long n_ = o->records - sent < g_batch ? (long)(o->records - sent) : g_batch;       \
        buf *b_ = n_ == g_batch ? &full : &tail;                                           \
        curl_easy_setopt((s)->h, CURLOPT_POSTFIELDS, b_->p);                               \
        curl_easy_setopt((s)->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b_->len);        \
        (s)->records = n_;                                                                 \
        (s)->resp.len = 0;                                                                 \
        (s)->sent_ns = lg_now_ns();                                                        \
        sent += n_;                                                                        \
        in_flight++;                                                                       \
        curl_multi_add_handle(m, (s)->h);                                                  \
    } while (0)
    for (long i = 0; i < g_conns; i++) {
        slots[i].h = easy_new(url, hdrs);
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, on_resp);
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEDATA, &slots[i]);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        if (sent < o->records)
            START(&slots[i]);
    }
    int stopping = 0;
    while (in_flight > 0) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode rc = msg->data.result;
            long code = 0;
            curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
            uint64_t now = lg_now_ns();
            curl_multi_remove_handle(m, s->h);
            in_flight--;
            if (rc == CURLE_OK && code == 200) {
                lg_hist_add(lat, (now - s->sent_ns) / 1000u);
                acked += s->records;
            } else {
                errors += s->records;
                if (!note[0])
                    snprintf(note, note_len, "%s HTTP %ld %.120s", curl_easy_strerror(rc), code,
                             s->resp.p ? s->resp.p : "");
            }
            if (!stopping && (lg_stop || now > deadline)) {
                stopping = 1;
                if (!note[0])
                    snprintf(note, note_len, lg_stop ? "stopped" : "max-seconds reached");
            }
            if (!stopping && sent < o->records)
                START(s);
        }
        if (in_flight > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
#undef START
    res->records = acked;
    res->errors = errors;
    res->seconds = (double)(lg_now_ns() - t0) / 1e9;
    for (long i = 0; i < g_conns; i++) {
        curl_easy_cleanup(slots[i].h);
        free(slots[i].resp.p);
    }
    free(slots);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    free(full.p);
    free(tail.p);
    free(payload);
}

/* The first 9 bytes of a base64 text (12 characters, no padding among them). */
static void b64_dec12(const char *in, unsigned char out[9])
{
    for (int g = 0; g < 3; g++) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[g * 4 + k];
            int d = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
                  : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : 0;
            v = v << 6 | (uint32_t)d;
        }
        out[g * 3] = (unsigned char)(v >> 16);
        out[g * 3 + 1] = (unsigned char)(v >> 8);
        out[g * 3 + 2] = (unsigned char)v;
    }
}

/* e2e producer: paced single-shot requests on its own multi handle. */
typedef struct e2e_prod {
    const lg_opts *o;
    long long acked, errors;
    char note[256];
} e2e_prod;

typedef struct e2e_slot {
    CURL *h;
    buf body;
    long records;
} e2e_slot;

static void *run_e2e_producer(void *arg)
{
    e2e_prod *p = arg;
    const lg_opts *o = p->o;
    char url[512];
    snprintf(url, sizeof url, "http://%s/topics/%s/records", o->addr, o->topic);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    char *payload = lg_payload_new(o->size);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, g_conns);
    e2e_slot *slots = calloc((size_t)g_conns, sizeof *slots);
    long *free_ids = calloc((size_t)g_conns, sizeof *free_ids);
    long n_free = 0;
    for (long i = 0; i < g_conns; i++) {
        slots[i].h = easy_new(url, hdrs);
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, on_discard);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        free_ids[n_free++] = i;
    }
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    long long next = 0;
    int in_flight = 0, running = 0;
    while ((next < o->records && !lg_stop) || in_flight) {
        uint64_t now = lg_now_ns();
        if (next < o->records && (now > deadline || lg_stop)) {
            snprintf(p->note, sizeof p->note, "max-seconds reached");
            p->errors += o->records - next;
            next = o->records;
        }
        while (n_free && next < o->records &&
               t0 + (uint64_t)((double)next * 1e9 / (double)o->rate) <= now) {
            e2e_slot *sl = &slots[free_ids[--n_free]];
            sl->body.len = 0;
            sl->records = 0;
            buf_str(&sl->body, "{\"records\":[");
            while (sl->records < g_batch && next < o->records &&
                   t0 + (uint64_t)((double)next * 1e9 / (double)o->rate) <= now) {
                lg_stamp(payload, o->size, lg_now_ns());
                buf_str(&sl->body, sl->records ? ",{\"value_b64\":\"" : "{\"value_b64\":\"");
                b64_add(&sl->body, (const unsigned char *)payload, (size_t)o->size);
                buf_str(&sl->body, "\"}");
                sl->records++;
                next++;
            }
            buf_str(&sl->body, "]}");
            curl_easy_setopt(sl->h, CURLOPT_POSTFIELDS, sl->body.p);
            curl_easy_setopt(sl->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sl->body.len);
            curl_multi_add_handle(m, sl->h);
            in_flight++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            e2e_slot *sl;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            long code = 0;
            curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code == 200) {
                p->acked += sl->records;
            } else {
                p->errors += sl->records;
                if (!p->note[0])
                    snprintf(p->note, sizeof p->note, "produce: %s HTTP %ld",
                             curl_easy_strerror(msg->data.result), code);
            }
            curl_multi_remove_handle(m, sl->h);
            in_flight--;
            free_ids[n_free++] = sl - slots;
        }
        /* Wake for the next due record (rounded up to 1 ms) or an answer. */
        int wait_ms = 100;
        if (next < o->records && n_free) {
            uint64_t due = t0 + (uint64_t)((double)next * 1e9 / (double)o->rate);
            now = lg_now_ns();
            wait_ms = due <= now ? 0 : (int)((due - now + 999999) / 1000000);
        }
        if (wait_ms || in_flight)
            curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
    for (long i = 0; i < g_conns; i++) {
        curl_easy_cleanup(slots[i].h);
        free(slots[i].body.p);
    }
    free(slots);
    free(free_ids);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    free(payload);
    return NULL;
}

/* SSE parsing state: lines may span the chunks libcurl hands over. */
typedef struct sse {
    const lg_opts *o;
    buf line;
    int in_record;               /* the current event is "event: record" */
    long long got, bad, errors;
    uint64_t t_last;
    lg_hist *lat;                /* e2e: stamp -> event parsed */
    char *note;
    size_t note_len;
} sse;

static void sse_line(sse *s, const char *l, size_t len)
{
    if (len == 0) {
        s->in_record = 0;
        return;
    }
    if (len == 13 && !memcmp(l, "event: record", 13)) {
        s->in_record = 1;
    } else if (len >= 12 && !memcmp(l, "event: error", 12)) {
        if (s->errors++ == 0)
            snprintf(s->note, s->note_len, "stream ended with event: error");
    } else if (s->in_record && len > 6 && !memcmp(l, "data: ", 6)) {
        /* The value must be as long as --size says. */
        const char *v = memmem(l, len, "\"value_b64\":\"", 13);
        const char *e = v ? memchr(v + 13, '"', len - (size_t)(v + 13 - l)) : NULL;
        if (!e || (size_t)(e - (v + 13)) != b64_len(s->o->size)) {
            if (s->bad++ == 0)
                snprintf(s->note, s->note_len, "record value not %ld bytes of base64", s->o->size);
        }
        s->got++;
        s->t_last = lg_now_ns();
        if (s->lat && e && e - (v + 13) >= 12) {
            unsigned char raw[9];
            b64_dec12(v + 13, raw);
            uint64_t sent = lg_stamp_read(raw, 8);
            lg_hist_add(s->lat, s->t_last > sent ? (s->t_last - sent) / 1000u : 0);
        }
    }
}

static size_t on_sse(char *p, size_t sz, size_t n, void *arg)
{
    sse *s = arg;
    size_t len = sz * n, i = 0;
    while (i < len) {
        char *nl = memchr(p + i, '\n', len - i);
        if (!nl) {
            buf_add(&s->line, p + i, len - i);
            break;
        }
        size_t k = (size_t)(nl - (p + i));
        if (s->line.len) {
            buf_add(&s->line, p + i, k);
            sse_line(s, s->line.p, s->line.len);
            s->line.len = 0;
        } else {
            sse_line(s, p + i, k);
        }
        i += k + 1;
    }
    return len;
}

static void run_consume(const lg_opts *o, lg_hist *lat, lg_result *res, char *note, size_t note_len)
{
    e2e_prod prod = {.o = o};
    pthread_t th;
    int started = 0;
    if (lat) {
        struct curl_slist *ch = curl_slist_append(NULL, "Content-Type: application/json");
        int rc = create_topic(o, ch, note, note_len);
        curl_slist_free_all(ch);
        if (rc) {
            res->errors = 1;
            return;
        }
    }
    char url[512];
    snprintf(url, sizeof url, "http://%s/topics/%s/stream?from=earliest", o->addr, o->topic);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
    sse s = {.o = o, .note = note, .note_len = note_len, .lat = lat};
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    s.t_last = t0;
    CURL *h = easy_new(url, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, h);
    int running = 1;
    while (s.got < o->records && !s.errors && !lg_stop) {
        curl_multi_perform(m, &running);
        if (lat && !started) {
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            if (code == 200) {           /* the stream is open: start producing */
                pthread_create(&th, NULL, run_e2e_producer, &prod);
                started = 1;
                s.t_last = lg_now_ns();
            }
        }
        if (!running) {
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            if (!note[0])
                snprintf(note, note_len, "stream closed (HTTP %ld)", code);
            break;
        }
        uint64_t now = lg_now_ns();
        if (now > deadline) { snprintf(note, note_len, "max-seconds reached"); break; }
        if (now - s.t_last > (uint64_t)o->idle_ms * 1000000u) { snprintf(note, note_len, "idle"); break; }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    if (started) {
        if (s.got < o->records)
            lg_stop = 1;                 /* the consumer gave up: stop the producer */
        pthread_join(th, NULL);
        if (!note[0] && prod.note[0])
            snprintf(note, note_len, "%s", prod.note);
    } else if (lat && !note[0]) {
        snprintf(note, note_len, "the stream did not open");
    }
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    free(s.line.p);
    res->records = s.got - s.bad;
    res->errors = s.errors + s.bad + prod.errors;
    res->seconds = (double)(s.t_last - t0) / 1e9;
}

int main(int argc, char **argv)
{
    lg_opts o;
    if (lg_parse(argc, argv, &o, "cairn-http", " [--batch 1] [--connections 16]", extra_opt, NULL))
        return 2;
    if ((o.mode == LG_E2E) != (o.rate > 0)) {
        fprintf(stderr, "lg_http: e2e needs --rate, and only e2e takes it\n");
        return 2;
    }
    lg_install_signals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static lg_hist lat;
    char note[256] = "";
    lg_result res = {0};
    if (o.mode == LG_PRODUCE) {
        o.durable = 1;               /* every HTTP produce is answered after fsync */
        run_produce(&o, &lat, &res, note, sizeof note);
        res.lat = &lat;
    } else if (o.mode == LG_CONSUME) {
        run_consume(&o, NULL, &res, note, sizeof note);
    } else {
        o.durable = 1;
        run_consume(&o, &lat, &res, note, sizeof note);
        res.lat = &lat;
    }
    res.note = note;
    int rc = lg_report(&o, &res);
    curl_global_cleanup();
    return rc;
}
