/* Webhook subscriptions of the HTTP event bus: their durable store, their
 * positions, and delivery to the callbacks (the handlers are in
 * hh_events.c). Loop thread only; single node only (hh_wh_init leaves
 * hs->wh NULL in a cluster).
 *
 * Store. The kvlog __webhooks (BROKER_WEBHOOKS_TOPIC), one record per
 * subscription, a tombstone when it is deleted (util/bin.h encodings: str =
 * int16 length + bytes, big-endian integers):
 *   key:   int8 'S', str id
 *   value: int8 version 1, str event_type, str callback, int32 max_attempts,
 *          int32 timeout_ms, int64 created_ms (wall clock)
 * Replay at open rebuilds the list (later records win); compaction re-adds
 * every live subscription. A subscription's position is NOT in this record:
 * it is the consumer group "cairn.webhook.<id>" in the committed offsets
 * store (goff_commit on __consumer_offsets), one committed offset per
 * partition of the event type's topic = the next offset to deliver. Create
 * commits the starting offsets (the high watermark, or the log start with
 * "from": "earliest") so the position is fixed from the first moment.
 *
 * Delivery. libcurl's multi interface on our loop: CURLMOPT_SOCKETFUNCTION
 * registers curl's sockets as loop_io watchers, CURLMOPT_TIMERFUNCTION arms
 * one loop_timer; their callbacks call curl_multi_socket_action and then
 * collect finished transfers. No thread of ours (libcurl's threaded
 * resolver may run one for a host name). Each subscription has at most one
 * POST in flight and one easy handle, so its events arrive in offset order
 * per partition (partitions are served round-robin, one event at a time).
 * Events are read ahead from the log into a small per-subscription queue
 * (WH_QUEUE_MAX records of one partition, from the committed offset up to
 * the last stable offset: what a read_committed consumer sees). A 2xx
 * answer commits offset + 1 (at least once: a crash between the answer and
 * the commit redelivers; X-Cairn-Event-Id tells). A non-2xx answer, a
 * transport error or the timeout is retried after
 * min(backoff.max, backoff.base x 2^(attempt-1)), jittered to a random
 * 50..100% of it; after max_attempts the event is appended to
 * <event_type><http.webhook.dead.letter.suffix> (original key, value,
 * timestamp and headers, plus cairn.dlq.* headers saying why), and once that
 * append is durable the position moves past it. A subscription waits only
 * on its own transfer or timer, never the loop. New data wakes idle
 * subscriptions through the broker's append listener; a one-second tick
 * covers the rest (a topic created later) and re-commits positions older
 * than an hour so offsets.retention.minutes never expires them. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "http/hh_slice.h"
#include "http/http_int.h"
#include "kvlog/kvlog.h"
#include "util/bin.h"
#include "util/slog.h"

#define WH_QUEUE_MAX 64
#define WH_READ_BYTES ((int64_t)256 << 10)
#define WH_TICK_MS 1000
#define WH_RECOMMIT_MS ((int64_t)3600 * 1000)
#define WH_RECORD_V1 1

enum { WH_IDLE, WH_POSTING, WH_BACKOFF, WH_DLQ };
static const char *const state_names[] = {"idle", "delivering", "backoff", "dead_lettering"};

typedef struct wh_event {
    int32_t part;
    int64_t offset;
    int64_t ts;
    uint8_t *key;                /* owned copies; NULL with len -1 = null */
    int32_t key_len;
    uint8_t *value;
    int32_t value_len;
    uint8_t *headers;            /* the record's raw headers section */
    size_t headers_len;
    int32_t n_headers;
} wh_event;

struct hh_wh_sub {
    struct hh_wh *wh;
    struct hh_wh_sub *next;
    char *id, *topic, *callback, *group, *dlq;
    int32_t max_attempts, timeout_ms;
    int64_t created_ms;
    int state;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;                  /* the JSON being posted */
    char errbuf[CURL_ERROR_SIZE];
    wh_event q[WH_QUEUE_MAX];    /* read ahead: one partition, offset order */
    int q_head, q_n;
    int32_t next_part;           /* round-robin cursor */
    int attempt;                 /* attempts made for the head event */
    loop_timer backoff;
    durable_wait dlq_wait;
    partition *dlq_part;
    int64_t last_commit_ms;      /* monotonic */
    hh_wh_counters c;
};

typedef struct wh_sock {
    loop_io io;
    struct hh_wh *wh;
    curl_socket_t fd;
    struct wh_sock *next, *prev;
} wh_sock;

struct hh_wh {
    broker_listener appends;     /* first: the callback casts back */
    hsrv *hs;
    kvl *kv;
    CURLM *multi;
    loop_timer curl_timer;
    loop_timer tick;
    wh_sock *socks;
    hh_wh_sub *subs;
    int n_subs;
    hh_slice sl;                 /* read ahead of delivery */
    uint64_t rng;
    hh_wh_counters total;        /* of deleted subscriptions too */
};

static void sub_kick(hh_wh_sub *s);
static void check_done(struct hh_wh *wh);

static void set_error(hh_wh_sub *s, const char *fmt, ...) CN_PRINTF(2, 3);
static void set_error(hh_wh_sub *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->c.last_error, sizeof(s->c.last_error), fmt, ap);
    va_end(ap);
}

static uint64_t wh_rand(struct hh_wh *wh)
{
    uint64_t x = wh->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return wh->rng = x;
}

static char *dupn(const void *p, size_t n)
{
    char *s = xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Subscriptions in memory ------------------------------------------------------ */

static void event_clear(wh_event *e)
{
    free(e->key);
    free(e->value);
    free(e->headers);
    memset(e, 0, sizeof(*e));
}

static void queue_clear(hh_wh_sub *s)
{
    for (int i = 0; i < s->q_n; i++)
        event_clear(&s->q[(s->q_head + i) % WH_QUEUE_MAX]);
    s->q_head = s->q_n = 0;
}

static void queue_pop(hh_wh_sub *s)
{
    event_clear(&s->q[s->q_head]);
    s->q_head = (s->q_head + 1) % WH_QUEUE_MAX;
    s->q_n--;
}

static hh_wh_sub *sub_new(struct hh_wh *wh, const char *id, const char *tname,
                          const char *callback, int32_t max_attempts, int32_t timeout_ms,
                          int64_t created_ms)
{
    hh_wh_sub *s = xcalloc(1, sizeof(*s));
    s->wh = wh;
    s->id = dupn(id, strlen(id));
    s->topic = dupn(tname, strlen(tname));
    s->callback = dupn(callback, strlen(callback));
    size_t gl = strlen(HH_WH_GROUP_PREFIX) + strlen(id) + 1;
    s->group = xmalloc(gl);
    snprintf(s->group, gl, "%s%s", HH_WH_GROUP_PREFIX, id);
    const char *suffix = wh->hs->cfg->http_webhook_dlq_suffix;
    size_t dl = strlen(tname) + strlen(suffix) + 1;
    s->dlq = xmalloc(dl);
    snprintf(s->dlq, dl, "%s%s", tname, suffix);
    s->max_attempts = max_attempts;
    s->timeout_ms = timeout_ms;
    s->created_ms = created_ms;
    s->last_commit_ms = loop_now_mono();
    loop_timer_init(&s->backoff, NULL, s);
    return s;
}

/* Stop s's delivery (transfer, timer, parked dead-letter wait) and free it. */
static void sub_free(hh_wh_sub *s)
{
    struct hh_wh *wh = s->wh;
    if (s->easy) {
        if (s->state == WH_POSTING)
            curl_multi_remove_handle(wh->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->hdrs);
    free(s->body);
    loop_timer_stop(wh->hs->l, &s->backoff);
    if (s->state == WH_DLQ) {
        broker_wait_cancel(s->dlq_part, &s->dlq_wait);
        hsrv__durable_end(wh->hs);
    }
    queue_clear(s);
    free(s->id);
    free(s->topic);
    free(s->callback);
    free(s->group);
    free(s->dlq);
    free(s);
}

static void sub_link(struct hh_wh *wh, hh_wh_sub *s)
{
    s->next = wh->subs;
    wh->subs = s;
    wh->n_subs++;
}

static void sub_unlink(struct hh_wh *wh, hh_wh_sub *s)
{
    for (hh_wh_sub **pp = &wh->subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            wh->n_subs--;
            return;
        }
}

hh_wh_sub *hh_wh_find(hsrv *hs, const char *id)
{
    for (hh_wh_sub *s = hs->wh ? hs->wh->subs : NULL; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

/* The store (__webhooks) -------------------------------------------------------- */

static void sub_key(wbuf *k, const char *id)
{
    bin_put_i8(k, 'S');
    bin_put_str(k, cn_str_c(id));
}

static void sub_value(wbuf *v, const hh_wh_sub *s)
{
    bin_put_i8(v, WH_RECORD_V1);
    bin_put_str(v, cn_str_c(s->topic));
    bin_put_str(v, cn_str_c(s->callback));
    bin_put_i32(v, s->max_attempts);
    bin_put_i32(v, s->timeout_ms);
    bin_put_i64(v, s->created_ms);
}

static int on_record(void *arg, const batch_record *r, const char **why)
{
    struct hh_wh *wh = arg;
    bin_reader k;
    bin_reader_init(&k, r->key, r->key_len > 0 ? (size_t)r->key_len : 0);
    int8_t kind = bin_i8(&k);
    cn_str id = bin_str(&k);
    if (k.err || kind != 'S' || id.len <= 0 || bin_remaining(&k)) {
        *why = "not a subscription key";
        return -1;
    }
    char *ids = dupn(id.ptr, (size_t)id.len);
    hh_wh_sub *old = hh_wh_find(wh->hs, ids);
    if (old) {
        sub_unlink(wh, old);
        sub_free(old);
    }
    if (r->value_len < 0) {
        free(ids);
        return 0;
    }
    bin_reader v;
    bin_reader_init(&v, r->value, (size_t)r->value_len);
    int8_t ver = bin_i8(&v);
    cn_str tn = bin_str(&v), cb = bin_str(&v);
    int32_t ma = bin_i32(&v), to = bin_i32(&v);
    int64_t created = bin_i64(&v);
    if (v.err || ver != WH_RECORD_V1 || tn.len <= 0 || cb.len <= 0) {
        free(ids);
        *why = "not a version 1 subscription value";
        return -1;
    }
    char *ts = dupn(tn.ptr, (size_t)tn.len), *cbs = dupn(cb.ptr, (size_t)cb.len);
    sub_link(wh, sub_new(wh, ids, ts, cbs, ma, to, created));
    free(ids);
    free(ts);
    free(cbs);
    return 0;
}

static int put_sub(kvl_compaction *cx, const hh_wh_sub *s)
{
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    sub_key(&k, s->id);
    sub_value(&v, s);
    int rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    wbuf_fini(&k);
    wbuf_fini(&v);
    return rc;
}

static int on_compact(void *arg, kvl_compaction *cx)
{
    struct hh_wh *wh = arg;
    for (hh_wh_sub *s = wh->subs; s; s = s->next) {
        int rc = put_sub(cx, s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int64_t live_bytes(void *arg)
{
    struct hh_wh *wh = arg;
    int64_t n = 0;
    for (hh_wh_sub *s = wh->subs; s; s = s->next)
        n += 32 + (int64_t)(strlen(s->id) + strlen(s->topic) + strlen(s->callback));
    return n;
}

static const kvl_ops store_ops = {on_record, on_compact, live_bytes};

/* Append the subscription's record (tombstone: s NULL, id given). */
static int store_write(struct hh_wh *wh, const char *id, const hh_wh_sub *s, int64_t *target)
{
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    sub_key(&k, id);
    if (s)
        sub_value(&v, s);
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, k.buf, (int32_t)k.len, v.buf, s ? (int32_t)v.len : -1);
    int rc = kvl_append(wh->kv, &bt, loop_wall_ms(), target);
    kvl_batch_fini(&bt);
    wbuf_fini(&k);
    wbuf_fini(&v);
    if (rc == 0)
        kvl_maybe_compact(wh->kv);
    return rc;
}

void hh_wh_wait_durable(hsrv *hs, int64_t target, durable_wait *w,
                        void (*cb)(durable_wait *w, int status))
{
    kvl_wait_durable(hs->wh->kv, target, w, cb);
}

/* Positions ------------------------------------------------------------------------ */

static int commit(hh_wh_sub *s, int32_t part, int64_t offset)
{
    goff_commit_item it = {cn_str_c(s->topic), part, offset, -1, {NULL, -1}, -1};
    int64_t target;
    int rc = goff_commit(s->wh->hs->core->offsets, cn_str_c(s->group), &it, 1, loop_wall_ms(),
                         &target);
    if (rc < 0)
        set_error(s, "committing the position of "
                 "partition %d failed: %s", part, cn_strerror(rc));
    else
        s->last_commit_ms = loop_now_mono();
    return rc;
}

/* The next offset to deliver of p (committed, or the log start when none or
 * when retention passed it). */
static int64_t position(hh_wh_sub *s, partition *p)
{
    const goff_entry *e = goff_get(s->wh->hs->core->offsets, cn_str_c(s->group),
                                   cn_str_c(s->topic), p->id);
    int64_t start = log_start_offset(p->log);
    return e && e->offset > start ? e->offset : start;
}

int64_t hh_wh_lag(hsrv *hs, hh_wh_sub *s, json_t *parts)
{
    topic *t = broker_topic_find(hs->b, cn_str_c(s->topic));
    int64_t lag = 0;
    for (int32_t i = 0; t && i < t->n_parts; i++) {
        partition *p = t->parts[i];
        int64_t hw = log_high_watermark(p->log), pos = position(s, p);
        int64_t l = hw > pos ? hw - pos : 0;
        lag += l;
        if (parts) {
            json_t *o = json_object();
            json_object_set_new(o, "partition", json_integer(i));
            json_object_set_new(o, "position", json_integer(pos));
            json_object_set_new(o, "high_watermark", json_integer(hw));
            json_object_set_new(o, "lag", json_integer(l));
            json_array_append_new(parts, o);
        }
    }
    return lag;
}

/* Reading ahead ------------------------------------------------------------------------ */

typedef struct fill_ctx {
    hh_wh_sub *s;
    int32_t part;
    int64_t from;
} fill_ctx;

static uint8_t *copy_or_null(const uint8_t *p, int32_t len)
{
    if (len < 0)
        return NULL;
    uint8_t *c = xmalloc(len ? (size_t)len : 1);
    if (len)
        memcpy(c, p, (size_t)len);
    return c;
}

static int fill_one(const batch_record *r, void *arg)
{
    fill_ctx *f = arg;
    hh_wh_sub *s = f->s;
    if (r->offset < f->from)
        return 0;
    if (s->q_n == WH_QUEUE_MAX)
        return 1;
    wh_event *e = &s->q[(s->q_head + s->q_n) % WH_QUEUE_MAX];
    e->part = f->part;
    e->offset = r->offset;
    e->ts = r->timestamp;
    e->key = copy_or_null(r->key, r->key_len);
    e->key_len = r->key_len;
    e->value = copy_or_null(r->value, r->value_len);
    e->value_len = r->value_len;
    e->headers = copy_or_null(r->headers, (int32_t)r->headers_len);
    e->headers_len = r->headers_len;
    e->n_headers = r->n_headers;
    s->q_n++;
    f->from = r->offset + 1;
    return 0;
}

static int fill_batch(void *arg, const uint8_t *b, size_t len, const batch_info *bi, int deliver)
{
    fill_ctx *f = arg;
    hh_wh_sub *s = f->s;
    int64_t end = bi->base_offset + bi->last_offset_delta + 1;
    if (deliver && batch_foreach(b, len, s->wh->sl.scratch, fill_one, f) < 0)
        slog_warn("http: webhook %s: %s-%d: batch at offset %lld does not decode; skipped", s->id,
                  s->topic, f->part, (long long)bi->base_offset);
    if (s->q_n == 0 && end > f->from) {
        /* Nothing deliverable in this batch (control, aborted): move the
         * position past it so it is not read again. */
        f->from = end;
        commit(s, f->part, end);
    }
    return s->q_n == WH_QUEUE_MAX;
}

/* Read committed records of p from pos into s's queue (empty before). */
static void fill(hh_wh_sub *s, partition *p, int64_t pos, int64_t limit)
{
    struct hh_wh *wh = s->wh;
    fill_ctx f = {s, p->id, pos};
    int64_t next;
    int64_t rc = hh_slice_read(&wh->sl, p, pos, limit, WH_READ_BYTES, fill_batch, &f, &next);
    if (rc < 0)
        set_error(s, "%s-%d: cannot read at offset %lld (%s)", s->topic, p->id, (long long)pos,
                  cn_strerror((int)rc));
    p->read_records += s->q_n;
    hh_slice_trim(&wh->sl, (size_t)4 << 20);
}

/* Delivery --------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static json_t *event_body(const hh_wh_sub *s, const wh_event *e, const char *event_id)
{
    json_t *j = json_object();
    json_object_set_new(j, "event_type", json_string(s->topic));
    const char *pub_id = NULL;
    size_t pub_len = 0;
    const uint8_t *hp = e->headers, *he = e->headers + e->headers_len;
    batch_header h;
    while (e->headers && batch_header_next(&hp, he, &h) == 1)
        if (h.key_len == (int32_t)strlen(HH_EVENT_ID_HEADER) &&
            memcmp(h.key, HH_EVENT_ID_HEADER, (size_t)h.key_len) == 0 && h.value_len >= 0) {
            pub_id = (const char *)h.value;
            pub_len = (size_t)h.value_len;
        }
    json_t *idj = pub_id ? json_stringn(pub_id, pub_len) : NULL;
    json_object_set_new(j, "id", idj ? idj : json_string(event_id));
    json_t *kj = e->key_len >= 0 ? json_stringn((const char *)e->key, (size_t)e->key_len) : NULL;
    if (e->key_len >= 0 && !kj)
        json_object_set_new(j, "key_b64", hh_b64_json(e->key, (size_t)e->key_len));
    else
        json_object_set_new(j, "key", kj ? kj : json_null());
    if (e->value_len < 0) {
        json_object_set_new(j, "data", json_null());
    } else {
        json_t *d = json_loadb((const char *)e->value, (size_t)e->value_len, JSON_DECODE_ANY,
                               NULL);
        if (!d)
            d = json_stringn((const char *)e->value, (size_t)e->value_len);
        if (d)
            json_object_set_new(j, "data", d);
        else
            json_object_set_new(j, "data_b64", hh_b64_json(e->value, (size_t)e->value_len));
    }
    json_object_set_new(j, "partition", json_integer(e->part));
    json_object_set_new(j, "offset", json_integer(e->offset));
    json_object_set_new(j, "timestamp", json_integer(e->ts));
    return j;
}

static void post_head(hh_wh_sub *s)
{
    struct hh_wh *wh = s->wh;
    wh_event *e = &s->q[s->q_head];
    char eid[300], line[400];
    snprintf(eid, sizeof(eid), "%s:%d:%lld", s->topic, e->part, (long long)e->offset);
    s->attempt++;
    free(s->body);
    json_t *j = event_body(s, e, eid);
    s->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s->body)
        s->body = dupn("{}", 2);
    curl_slist_free_all(s->hdrs);
    s->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof(line), "X-Cairn-Event-Id: %s", eid);
    s->hdrs = curl_slist_append(s->hdrs, line);
    snprintf(line, sizeof(line), "X-Cairn-Event-Type: %s", s->topic);
    s->hdrs = curl_slist_append(s->hdrs, line);
    snprintf(line, sizeof(line), "X-Cairn-Attempt: %d", s->attempt);
    s->hdrs = curl_slist_append(s->hdrs, line);
    snprintf(line, sizeof(line), "X-Cairn-Subscription: %s", s->id);
    s->hdrs = curl_slist_append(s->hdrs, line);
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    if (!s->easy)
        s->easy = curl_easy_init();
    if (!s->easy || !s->hdrs)
        abort(); /* allocation failure, as xmalloc */
    CURL *c = s->easy;
    curl_easy_setopt(c, CURLOPT_URL, s->callback);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-webhook/1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, s);
    s->errbuf[0] = '\0';
    s->state = WH_POSTING;
    CURLMcode mc = curl_multi_add_handle(wh->multi, c);
    if (mc != CURLM_OK) {
        slog_error("http: webhook %s: curl_multi_add_handle: %s", s->id, curl_multi_strerror(mc));
        s->state = WH_BACKOFF;
        loop_timer_start(wh->hs->l, &s->backoff, wh->hs->cfg->http_webhook_backoff_max_ms);
    }
}

static void on_backoff(loop_timer *t);

static void retry_later(hh_wh_sub *s)
{
    const cairn_config *cfg = s->wh->hs->cfg;
    int64_t d = cfg->http_webhook_backoff_base_ms;
    for (int i = 1; i < s->attempt && d < cfg->http_webhook_backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->http_webhook_backoff_max_ms)
        d = cfg->http_webhook_backoff_max_ms;
    d = d / 2 + (int64_t)(wh_rand(s->wh) % (uint64_t)(d - d / 2 + 1));
    s->state = WH_BACKOFF;
    s->c.retries++;
    s->wh->total.retries++;
    s->backoff.cb = on_backoff;
    loop_timer_start(s->wh->hs->l, &s->backoff, d);
}

static void delivered(hh_wh_sub *s)
{
    wh_event *e = &s->q[s->q_head];
    commit(s, e->part, e->offset + 1);
    queue_pop(s);
    s->attempt = 0;
    s->state = WH_IDLE;
}

static void dlq_durable(durable_wait *w, int status)
{
    hh_wh_sub *s = (hh_wh_sub *)((char *)w - offsetof(hh_wh_sub, dlq_wait));
    hsrv *hs = s->wh->hs;
    s->state = WH_IDLE;
    if (status < 0) {
        set_error(s, "dead-letter topic %s could not be "
                 "synced: %s", s->dlq, cn_strerror(status));
        retry_later(s);
    } else {
        s->c.dead_lettered++;
        s->wh->total.dead_lettered++;
        delivered(s);
        sub_kick(s);
    }
    hsrv__durable_end(hs);
}

static void add_header(batch_header *h, int *n, const char *k, const char *v)
{
    h[*n].key = k;
    h[*n].key_len = (int32_t)strlen(k);
    h[*n].value = v;
    h[*n].value_len = (int32_t)strlen(v);
    (*n)++;
}

/* Append the head event to the dead-letter topic and park until durable. */
static void dead_letter(hh_wh_sub *s)
{
    struct hh_wh *wh = s->wh;
    hsrv *hs = wh->hs;
    wh_event *e = &s->q[s->q_head];
    topic *t = broker_topic_auto_create(hs->b, cn_str_c(s->dlq));
    char msg[256] = "";
    if (!t && !broker_topic_find(hs->b, cn_str_c(s->dlq)))
        broker_topic_create(hs->b, cn_str_c(s->dlq), -1, NULL, 0, 0, msg, sizeof(msg), &t);
    if (!t) {
        set_error(s, "dead-letter topic %s cannot be "
                 "created: %s", s->dlq, msg);
        retry_later(s);
        return;
    }
    batch_header *h = xcalloc((size_t)e->n_headers + 5, sizeof(*h));
    int n = 0;
    const uint8_t *hp = e->headers, *he = e->headers + e->headers_len;
    while (e->headers && n < e->n_headers && batch_header_next(&hp, he, &h[n]) == 1)
        n++;
    char src[300], att[16];
    snprintf(src, sizeof(src), "%s:%d:%lld", s->topic, e->part, (long long)e->offset);
    snprintf(att, sizeof(att), "%d", s->attempt);
    add_header(h, &n, "cairn.dlq.reason", s->c.last_error);
    add_header(h, &n, "cairn.dlq.source", src);
    add_header(h, &n, "cairn.dlq.attempts", att);
    add_header(h, &n, "cairn.dlq.subscription", s->id);
    add_header(h, &n, "cairn.dlq.callback", s->callback);
    batch_build_rec r = {e->key, e->key_len, e->value, e->value_len, e->ts, h, n};
    uint8_t *batch = NULL;
    size_t len = 0;
    int rc = batch_build(&r, 1, BATCH_COMPRESSION_NONE, 0, &batch, &len);
    free(h);
    partition *p = t->parts[e->key_len >= 0 ? broker_key_partition(e->key, (size_t)e->key_len,
                                                                    t->n_parts)
                                            : e->part % t->n_parts];
    int64_t base = -1;
    if (rc == 0) {
        if (t->cfg.ts_type == TS_LOG_APPEND_TIME)
            batch_set_log_append_time(batch, len, loop_wall_ms());
        rc = broker_produce(hs->b, p, batch, len, &base);
    } else {
        rc = -CN_EINVAL;
    }
    free(batch);
    if (rc < 0) {
        set_error(s, "append to dead-letter topic %s "
                 "failed: %s", s->dlq, cn_strerror(rc));
        retry_later(s);
        return;
    }
    slog_info("http: webhook %s: %s moved to %s-%d@%lld after %d attempts (%s)", s->id, src,
              s->dlq, p->id, (long long)base, s->attempt, s->c.last_error);
    s->state = WH_DLQ;
    s->dlq_part = p;
    s->dlq_wait.target = log_end_offset(p->log);
    s->dlq_wait.cb = dlq_durable;
    hsrv__durable_begin(hs);
    broker_wait_durable(hs->b, p, &s->dlq_wait);
}

static void on_backoff(loop_timer *t)
{
    hh_wh_sub *s = t->data;
    if (s->state != WH_BACKOFF)
        return;
    s->state = WH_IDLE;
    if (s->q_n == 0) {
        sub_kick(s);
        return;
    }
    if (s->attempt >= s->max_attempts)
        dead_letter(s); /* the dead-letter append itself failed before */
    else
        post_head(s);
}

/* One transfer finished. */
static void finished(hh_wh_sub *s, CURLcode res)
{
    struct hh_wh *wh = s->wh;
    curl_multi_remove_handle(wh->multi, s->easy);
    s->state = WH_IDLE;
    long code = 0;
    if (res == CURLE_OK)
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    s->c.last_status = (int)code;
    if (res == CURLE_OK && code >= 200 && code < 300) {
        s->c.delivered++;
        wh->total.delivered++;
        delivered(s);
        sub_kick(s);
        return;
    }
    s->c.failed_attempts++;
    wh->total.failed_attempts++;
    if (res != CURLE_OK)
        set_error(s, "attempt %d: %.200s", s->attempt,
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(res));
    else
        set_error(s, "attempt %d: HTTP %ld", s->attempt,
                 code);
    if (s->attempt >= s->max_attempts)
        dead_letter(s);
    else
        retry_later(s);
}

/* Deliver the next event when s is idle: from the queue, else read ahead
 * from the next partition with something past its position. */
static void sub_kick(hh_wh_sub *s)
{
    if (s->state != WH_IDLE)
        return;
    if (s->q_n == 0) {
        topic *t = broker_topic_find(s->wh->hs->b, cn_str_c(s->topic));
        for (int32_t k = 0; t && k < t->n_parts && s->q_n == 0; k++) {
            int32_t i = (s->next_part + k) % t->n_parts;
            partition *p = t->parts[i];
            int64_t limit = broker_lso(p), pos = position(s, p);
            if (pos < limit) {
                fill(s, p, pos, limit);
                s->next_part = (i + 1) % t->n_parts;
            }
        }
        if (s->q_n == 0)
            return;
        s->attempt = 0;
    }
    post_head(s);
}

/* libcurl on the loop ------------------------------------------------------------------ */

static void check_done(struct hh_wh *wh)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(wh->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        CURLcode res = m->data.result;
        if (priv)
            finished((hh_wh_sub *)priv, res);
    }
}

static void on_sock(loop_io *io, uint32_t events)
{
    wh_sock *ws = io->data;
    struct hh_wh *wh = ws->wh;
    curl_socket_t fd = ws->fd;
    int flags = 0;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(wh->multi, fd, flags, &running); /* may free ws */
    check_done(wh);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    struct hh_wh *wh = userp;
    wh_sock *ws = socketp;
    loop *l = wh->hs->l;
    if (what == CURL_POLL_REMOVE) {
        if (ws) {
            loop_io_stop(l, &ws->io);
            if (ws->prev)
                ws->prev->next = ws->next;
            else
                wh->socks = ws->next;
            if (ws->next)
                ws->next->prev = ws->prev;
            free(ws);
        }
        return 0;
    }
    uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (!ws) {
        ws = xcalloc(1, sizeof(*ws));
        ws->wh = wh;
        ws->fd = fd;
        int rc = loop_io_start(l, &ws->io, fd, ev, on_sock, ws);
        if (rc < 0) {
            slog_error("http: webhook socket %d cannot be watched: %s", fd, cn_strerror(rc));
            free(ws);
            return -1;
        }
        ws->next = wh->socks;
        if (wh->socks)
            wh->socks->prev = ws;
        wh->socks = ws;
        curl_multi_assign(wh->multi, fd, ws);
    } else {
        loop_io_modify(l, &ws->io, ev);
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct hh_wh *wh = userp;
    if (timeout_ms < 0)
        loop_timer_stop(wh->hs->l, &wh->curl_timer);
    else
        loop_timer_start(wh->hs->l, &wh->curl_timer, timeout_ms);
    return 0;
}

static void on_curl_timer(loop_timer *t)
{
    struct hh_wh *wh = t->data;
    int running;
    curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(wh);
}

static void kick_all(struct hh_wh *wh)
{
    for (hh_wh_sub *s = wh->subs; s; s = s->next)
        sub_kick(s);
}

static void on_appends(broker_listener *l) { kick_all((struct hh_wh *)l); }

/* Re-commit the positions of a subscription that committed nothing for an
 * hour, so offsets.retention.minutes never expires them. */
static void recommit(hh_wh_sub *s, int64_t now)
{
    if (now - s->last_commit_ms < WH_RECOMMIT_MS)
        return;
    topic *t = broker_topic_find(s->wh->hs->b, cn_str_c(s->topic));
    for (int32_t i = 0; t && i < t->n_parts; i++)
        commit(s, i, position(s, t->parts[i]));
    s->last_commit_ms = now;
}

static void on_tick(loop_timer *t)
{
    struct hh_wh *wh = t->data;
    int64_t now = loop_now(wh->hs->l);
    for (hh_wh_sub *s = wh->subs; s; s = s->next)
        recommit(s, now);
    kick_all(wh);
    loop_timer_start(wh->hs->l, &wh->tick, WH_TICK_MS);
}

/* The API ---------------------------------------------------------------------------- */

void hh_wh_init(hsrv *hs)
{
    if (hs->core->cl)
        return; /* single node only (docs/http-plan.md) */
    struct hh_wh *wh = xcalloc(1, sizeof(*wh));
    wh->hs = hs;
    wh->rng = (uint64_t)loop_wall_ms() * 0x9E3779B97F4A7C15ull | 1;
    hs->wh = wh;
    int rc = kvl_open(hs->b, BROKER_WEBHOOKS_TOPIC, &store_ops, wh, &wh->kv);
    if (rc < 0) {
        slog_error("http: webhook subscriptions cannot be loaded (%s): webhooks are off",
                   cn_strerror(rc));
        while (wh->subs) {
            hh_wh_sub *s = wh->subs;
            wh->subs = s->next;
            sub_free(s);
        }
        free(wh);
        hs->wh = NULL;
        return;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(wh->multi = curl_multi_init()))
        abort();
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh);
    loop_timer_init(&wh->curl_timer, on_curl_timer, wh);
    loop_timer_init(&wh->tick, on_tick, wh);
    hh_slice_init(&wh->sl);
    wh->appends.cb = on_appends;
    broker_listen_appends(hs->b, &wh->appends);
    loop_timer_start(hs->l, &wh->tick, 0); /* first kick once the loop runs */
    if (wh->n_subs)
        slog_info("http: %d webhook subscription(s) loaded", wh->n_subs);
}

void hh_wh_fini(hsrv *hs)
{
    struct hh_wh *wh = hs->wh;
    if (!wh)
        return;
    broker_unlisten_appends(hs->b, &wh->appends);
    loop_timer_stop(hs->l, &wh->tick);
    while (wh->subs) {
        hh_wh_sub *s = wh->subs;
        wh->subs = s->next;
        sub_free(s);
    }
    curl_multi_cleanup(wh->multi);
    while (wh->socks) { /* curl said nothing about these (should not happen) */
        wh_sock *ws = wh->socks;
        wh->socks = ws->next;
        loop_io_stop(hs->l, &ws->io);
        free(ws);
    }
    loop_timer_stop(hs->l, &wh->curl_timer);
    curl_global_cleanup();
    kvl_close(wh->kv);
    hh_slice_fini(&wh->sl);
    free(wh);
    hs->wh = NULL;
}

int hh_wh_create(hsrv *hs, const hh_wh_spec *sp, hh_wh_sub **out, int64_t *out_target)
{
    struct hh_wh *wh = hs->wh;
    topic *t = broker_topic_find(hs->b, cn_str_c(sp->event_type));
    hh_wh_sub *s = sub_new(wh, sp->id, sp->event_type, sp->callback, sp->max_attempts,
                           sp->timeout_ms, loop_wall_ms());
    /* The starting position first: a crash after the record and before
     * the commit would start a live subscription at the log start. */
    for (int32_t i = 0; t && i < t->n_parts; i++) {
        partition *p = t->parts[i];
        int64_t o = sp->from_earliest ? log_start_offset(p->log) : log_high_watermark(p->log);
        int rc = commit(s, i, o);
        if (rc < 0) {
            sub_free(s);
            return rc;
        }
    }
    int rc = store_write(wh, s->id, s, out_target);
    if (rc < 0) {
        sub_free(s);
        return rc;
    }
    sub_link(wh, s);
    *out = s;
    sub_kick(s);
    return 0;
}

int hh_wh_delete(hsrv *hs, hh_wh_sub *s, int64_t *out_target)
{
    struct hh_wh *wh = hs->wh;
    int rc = store_write(wh, s->id, NULL, out_target);
    if (rc < 0)
        return rc;
    int64_t ignored;
    goff_delete_group(hs->core->offsets, cn_str_c(s->group), &ignored);
    sub_unlink(wh, s);
    sub_free(s);
    return 0;
}

json_t *hh_wh_sub_json(hsrv *hs, hh_wh_sub *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(s->id));
    json_object_set_new(j, "event_type", json_string(s->topic));
    json_object_set_new(j, "callback", json_string(s->callback));
    json_object_set_new(j, "group", json_string(s->group));
    json_object_set_new(j, "dead_letter_topic", json_string(s->dlq));
    json_object_set_new(j, "max_attempts", json_integer(s->max_attempts));
    json_object_set_new(j, "timeout_ms", json_integer(s->timeout_ms));
    json_object_set_new(j, "created_ms", json_integer(s->created_ms));
    json_object_set_new(j, "state", json_string(state_names[s->state]));
    json_object_set_new(j, "attempt", json_integer(s->attempt));
    json_t *parts = json_array();
    json_object_set_new(j, "lag", json_integer(hh_wh_lag(hs, s, parts)));
    json_object_set_new(j, "partitions", parts);
    json_object_set_new(j, "delivered", json_integer((json_int_t)s->c.delivered));
    json_object_set_new(j, "failed_attempts", json_integer((json_int_t)s->c.failed_attempts));
    json_object_set_new(j, "retries", json_integer((json_int_t)s->c.retries));
    json_object_set_new(j, "dead_lettered", json_integer((json_int_t)s->c.dead_lettered));
    json_object_set_new(j, "last_status", s->c.last_status ? json_integer(s->c.last_status)
                                                           : json_null());
    json_object_set_new(j, "last_error", s->c.last_error[0] ? json_string(s->c.last_error)
                                                            : json_null());
    return j;
}

void hh_wh_foreach(hsrv *hs, void (*cb)(void *arg, hh_wh_sub *s), void *arg)
{
    for (hh_wh_sub *s = hs->wh ? hs->wh->subs : NULL; s; s = s->next)
        cb(arg, s);
}

const char *hh_wh_id(const hh_wh_sub *s) { return s->id; }
const char *hh_wh_event_type(const hh_wh_sub *s) { return s->topic; }
const hh_wh_counters *hh_wh_sub_counters(const hh_wh_sub *s) { return &s->c; }
const hh_wh_counters *hh_wh_total(hsrv *hs) { return hs->wh ? &hs->wh->total : NULL; }
