/* Private to the HTTP front end: the front end object, one request as the
 * handlers see it, the route table's ids, and the helpers every handler
 * uses (replies, errors, query parameters, record encoding).
 *
 * A request (hreq) lives in its response slot's arena (net_resp.a), so a
 * handler that parks it (a long-poll read, a produce waiting for fsync) keeps
 * it as long as the slot; its body points into the connection's read buffer
 * and is valid only during dispatch. Every request is answered exactly once
 * through hh_reply / hh_reply_json / hh_error, which write the status line,
 * headers and body into the slot and hand it to net (responses leave in
 * request order). Loop thread only. */
#ifndef CAIRN_HTTP_INT_H
#define CAIRN_HTTP_INT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "record/batch.h"
#include "util/common.h"
#include "util/hist.h"

/* Routes (router.c's table, in this order); HROUTE_NONE: 404/405/framing
 * errors. Metrics count requests per route and status class. */
typedef enum {
    HROUTE_NONE = 0,
    HROUTE_HEALTHZ,
    HROUTE_READYZ,
    HROUTE_METRICS,
    HROUTE_BROKER,
    HROUTE_TOPICS_LIST,
    HROUTE_TOPIC_CREATE,
    HROUTE_TOPIC_DESCRIBE,
    HROUTE_TOPIC_DELETE,
    HROUTE_PRODUCE,
    HROUTE_READ,
    HROUTE_STREAM,
    HROUTE_GROUPS_LIST,
    HROUTE_GROUP_DESCRIBE,
    HROUTE_GROUP_DELETE,
    HROUTE_GROUP_OFFSETS_RESET,
    HROUTE_EVENT_PUBLISH,
    HROUTE_EVENT_SUBSCRIBE,
    HROUTE_EVENT_SUBS_LIST,
    HROUTE_EVENT_SUB_GET,
    HROUTE_EVENT_SUB_DELETE,
    HROUTE_AMQP_LIST,
    HROUTE_REPLICAS_MOVE,
    HROUTE_REPLICAS_CANCEL,
    HROUTE_NODES_LIST,
    HROUTE_NODE_REMOVE,
    HROUTE_USERS_LIST,
    HROUTE_USER_CREATE,
    HROUTE_USER_DELETE,
    HROUTE_ACLS_LIST,
    HROUTE_ACL_CREATE,
    HROUTE_ACLS_DELETE,
    HROUTE_TOKENS_LIST,
    HROUTE_TOKEN_CREATE,
    HROUTE_TOKEN_DELETE,
    HROUTE_CONSOLE_ROOT,
    HROUTE_CONSOLE,
    HROUTE_CONSOLE_ASSET,
    HROUTE__COUNT
} hroute;

/* Status classes counted per route: 2xx, 4xx, 5xx (others count as 5xx). */
enum { HCLASS_2XX, HCLASS_4XX, HCLASS_5XX, HCLASS__COUNT };

#define HREQ_MAX_SEGS 8

typedef struct hreq {
    struct hsrv *hs;
    net_conn *c;
    net_resp *resp;
    hroute route;
    int method;                  /* enum http_method */
    int keep_alive;              /* 0: "Connection: close" on the reply, then close */
    int http10;                  /* HTTP/1.0: keep-alive must be said ("Connection: keep-alive") */
    char *target;                /* request target as sent (arena, for log lines) */
    char *query;                 /* raw query after '?' (arena), NULL when none */
    char *seg[HREQ_MAX_SEGS];    /* path segments, percent-decoded (arena) */
    int n_seg;
    const uint8_t *body;         /* valid during dispatch only */
    size_t body_len;
    int body_json;               /* 0: a multipart body (415); any other type is parsed as JSON */
    char *last_event_id;         /* the Last-Event-ID header (arena), NULL when absent or empty */
    /* Who asks: "User:alice" with http.authentication=basic, else
     * "User:ANONYMOUS" (framing.c). Valid during dispatch and while the
     * request lives (the connection's or a static string). */
    const char *principal;
    char *if_none_match;         /* the If-None-Match header (arena), NULL when absent or empty */
    const char *cache_control;   /* Cache-Control of the reply; NULL: "no-store" (live state) */
    int answered;
    int64_t t0_ns;               /* hist_now_ns when the whole request had arrived */
} hreq;

struct hsrv {
    core *core;
    broker *b;
    loop *l;
    const cairn_config *cfg;
    srv *server;                 /* set by the serving hook; NULL before */
    int64_t created_ms;          /* monotonic */
    uint32_t rr;                 /* unkeyed produce: partition of the next request */
    struct hh_read_state *read;  /* parked long-poll reads (hh_read.c) */
    struct hh_sse_state *sse;    /* Server-Sent Events streams (hh_sse.c) */
    struct hh_wh *wh;            /* webhook subscriptions (hh_webhook.c); NULL: off */
    struct hrefusal *refusals;   /* 401s waiting out a failed login's delay (framing.c) */
    /* Requests parked on a durable wait (produce, group delete): the core
     * completes them in core_close, after hsrv_free, so the last one frees a
     * front end that was freed meanwhile (hsrv__durable_end). */
    int n_durable;
    int freed;
    /* Error log lines this second (hsrv__log_error's rate limit). */
    int64_t log_window_ms;
    int log_lines;
    uint64_t log_suppressed;
    /* Requests answered, per route and status class (hh_metrics.c). */
    uint64_t requests[HROUTE__COUNT][HCLASS__COUNT];
    /* Their latency per route, from arrival to hh_reply (parked time
     * included: long polls, produce's fsync); a stream's 200 is not
     * counted (it has no end to time), its early errors are. */
    hist latency[HROUTE__COUNT];
};

/* Percent-decode s[0..len) into a NUL-terminated arena string; NULL when an
 * escape is malformed or decodes to NUL. plus_space: '+' is ' ' (queries).
 * (framing.c) */
char *hsrv__pct_decode(hreq *q, const char *s, size_t len, int plus_space);

/* A request parks on / comes back from a durable wait (framing.c). The
 * request must be answered before _end, which may free hs. */
void hsrv__durable_begin(hsrv *hs);
void hsrv__durable_end(hsrv *hs);

/* One error log line (warn: 1 for warn level, else info), at most
 * HSRV_LOG_PER_SEC a second; the lines dropped are counted and reported
 * once the next second starts (STYLE §7: peer errors are rate-limited).
 * (reply.c) */
#define HSRV_LOG_PER_SEC 100
void hsrv__log_error(hsrv *hs, int warn, const char *fmt, ...) CN_PRINTF(3, 4);

/* Server-Sent Events (hh_sse.c; contract at its top) ---------------------------------- */
/* One open stream. While a connection streams, framing.c discards what the
 * client sends (the response never ends, so no later request can be
 * answered) and forwards the connection's close and on_drain. */
typedef struct hh_sse_stream hh_sse_stream;
void hh_sse_init(hsrv *hs);
void hh_sse_fini(hsrv *hs);                /* ends every stream (": shutdown") */
/* The stream's connection closed (from conn_close: the stream ends later,
 * from its timer, never inside net_conn_close). */
void hh_sse_conn_closed(hh_sse_stream *s);
void hh_sse_drained(hh_sse_stream *s);     /* net's on_drain for its connection */
/* Metrics: streams open, events sent, backpressure pauses, unsent bytes. */
typedef struct hh_sse_counters {
    int open;
    uint64_t started, events, pauses;
    uint64_t buffered;           /* unsent bytes queued for every open stream now */
} hh_sse_counters;
void hh_sse_counters_get(hsrv *hs, hh_sse_counters *out);
/* Attach s to c's HTTP connection (NULL: detach). (framing.c) */
void hsrv__conn_stream(net_conn *c, hh_sse_stream *s);

/* Dispatch (router.c) ---------------------------------------------------------- */
/* Route q (method and segments set) to its handler, or answer 404 / 405. */
void hsrv__dispatch(hreq *q);
/* The route's name for metrics labels ("produce", ...). */
const char *hsrv__route_name(hroute r);

/* Replies (reply.c) -------------------------------------------------------------- */
/* Send status with body[0..len) of content type ctype; extra: more header
 * lines, each ending in CRLF, or NULL. Counts the request, finishes the slot
 * (closing the connection after it unless keep-alive). */
void hh_reply(hreq *q, int status, const char *ctype, const void *body, size_t len,
              const char *extra);
/* Send j (steals the reference) as application/json. */
void hh_reply_json(hreq *q, int status, json_t *j);
/* The JSON error {"error_code": code, "message": ...} with status, and one
 * log line (info for 4xx, warn for 5xx). code: stable snake_case. */
void hh_error(hreq *q, int status, const char *code, const char *fmt, ...) CN_PRINTF(4, 5);
/* A change of the users, tokens or ACLs (what: "users", "ACLs") that did
 * not complete (auth_store_wait's status): 503 not_committed when a
 * cluster did not commit and apply it in time (it may still apply), else
 * 500 storage_error. */
void hh_store_error(hreq *q, int status, const char *what);
/* Same, with more fields in the error object (extra: stolen; may be NULL). */
void hh_error_obj(hreq *q, int status, const char *code, json_t *extra, const char *fmt, ...)
    CN_PRINTF(5, 6);
/* The reason phrase of status ("Not Found"). */
const char *hh_status_text(int status);
/* A raw reply (framing errors, before a request exists): status, code and
 * message as JSON, "Connection: close". */
void hh_reply_raw_error(net_resp *r, int status, const char *code, const char *msg);

/* Request helpers (reply.c) --------------------------------------------------------- */
/* Query parameter name: 1 and *out (percent-decoded, arena) when present,
 * 0 when absent, -1 when its encoding is bad. */
int hh_query(hreq *q, const char *name, char **out);
/* Integer query parameter in [lo, hi], def when absent. 0, or -1 after
 * answering 400 (error code invalid_parameter). */
int hh_query_i64_or_reply(hreq *q, const char *name, int64_t def, int64_t lo, int64_t hi,
                          int64_t *out);
/* Parse the body as a JSON object: the object (caller decrefs), or NULL
 * after answering 400 (invalid_json / not an object) or 415 (multipart). */
json_t *hh_body_json_or_reply(hreq *q);
/* Allocate from the request's arena (zeroed; aborts on exhaustion like xmalloc). */
void *hh_alloc(hreq *q, size_t n);
char *hh_strdup(hreq *q, const char *s);

/* Base64 (hh_records.c) ---------------------------------------------------------------- */
/* Standard alphabet with padding. Decode: 0 and *out (arena) / *out_len, or
 * -1 when s is not valid base64. */
int hh_b64_decode(hreq *q, const char *s, size_t len, uint8_t **out, size_t *out_len);
/* A new JSON string holding the base64 of p[0..len) (never NULL). */
json_t *hh_b64_json(const void *p, size_t len);
/* A stored record of partition part as JSON (form at the top of
 * hh_records.c). */
json_t *hh_record_json(const batch_record *r, int32_t part);

/* Handlers: one file per family ----------------------------------------------------- */
void hh_healthz(hreq *q);                  /* hh_health.c */
void hh_readyz(hreq *q);
void hh_metrics(hreq *q);                  /* hh_metrics.c */
void hh_broker(hreq *q);                   /* hh_broker.c */
void hh_topics_list(hreq *q);              /* hh_topics.c */
void hh_topic_create(hreq *q);
void hh_topic_describe(hreq *q);
void hh_topic_delete(hreq *q);
void hh_groups_list(hreq *q);              /* hh_groups.c */
void hh_group_describe(hreq *q);
void hh_group_delete(hreq *q);
void hh_group_offsets_reset(hreq *q);      /* hh_group_offsets.c */
void hh_produce(hreq *q);                  /* hh_produce.c */
void hh_read(hreq *q);                     /* hh_read.c */
void hh_read_init(hsrv *hs);
void hh_read_fini(hsrv *hs);               /* answers parked reads */
void hh_stream(hreq *q);                   /* hh_sse.c */
void hh_event_publish(hreq *q);            /* hh_events.c */
void hh_event_subscribe(hreq *q);
void hh_event_subs_list(hreq *q);
void hh_event_sub_get(hreq *q);
void hh_event_sub_delete(hreq *q);
void hh_amqp_list(hreq *q);                /* hh_amqp.c */
void hh_replicas_move(hreq *q);            /* hh_moves.c */
void hh_replicas_cancel(hreq *q);
void hh_nodes_list(hreq *q);                /* hh_nodes.c */
void hh_node_remove(hreq *q);
void hh_users_list(hreq *q);          /* hh_users.c */
void hh_user_create(hreq *q);
void hh_user_delete(hreq *q);
void hh_acls_list(hreq *q);           /* hh_acls.c */
void hh_acl_create(hreq *q);
void hh_acls_delete(hreq *q);
/* May q's principal op (ACL_OP_*) the resource (ACL_R_*, name)? 1 when
 * http.authentication or authorizer.enabled is off (router.c). */
int hsrv__allowed(const hreq *q, int op, int rtype, const char *name, size_t len);
void hh_tokens_list(hreq *q);         /* hh_tokens.c */
void hh_token_create(hreq *q);
void hh_token_delete(hreq *q);
void hh_console_root(hreq *q);             /* hh_console.c */
void hh_console(hreq *q);
void hh_console_asset(hreq *q);

/* The web console's files, embedded (gen/console_assets.c, written by
 * tools/embed_console.py from src/http/console/; served by hh_console.c). */
typedef struct hh_asset {
    const char *name;            /* "index.html" */
    const char *ctype;           /* Content-Type */
    const char *etag;            /* strong ETag with its quotes: a hash of the bytes */
    const unsigned char *data;
    size_t len;
} hh_asset;
extern const hh_asset hh_console_assets[];
extern const size_t hh_console_n_assets;

/* Webhook subscriptions and delivery (hh_webhook.c; contract and record
 * format at its top) ------------------------------------------------------------ */
/* The record header that carries a published event's "id". */
#define HH_EVENT_ID_HEADER "event-id"
/* A subscription's consumer group is this prefix + its id. */
#define HH_WH_GROUP_PREFIX "cairn.webhook."
typedef struct hh_wh_sub hh_wh_sub;
typedef struct hh_wh_spec {
    const char *id;              /* 1..64 of [A-Za-z0-9._-] */
    const char *event_type;      /* a valid topic name */
    const char *callback;        /* an http(s) URL */
    int32_t max_attempts;
    int32_t timeout_ms;
    int from_earliest;           /* start at the log start, not the high watermark */
} hh_wh_spec;
typedef struct hh_wh_counters {
    uint64_t delivered;          /* events answered 2xx */
    uint64_t failed_attempts;    /* attempts answered non-2xx or failed */
    uint64_t retries;            /* attempts scheduled after a failure */
    uint64_t dead_lettered;      /* events moved to the dead-letter topic */
    int last_status;             /* HTTP status of the last attempt, 0 none */
    char last_error[256];        /* "" none */
} hh_wh_counters;
/* Open the store and start delivery (hs->wh stays NULL in a cluster or when
 * the store cannot be read: webhooks are off). */
void hh_wh_init(hsrv *hs);
/* Stop every transfer and free (before hs is marked freed). */
void hh_wh_fini(hsrv *hs);
hh_wh_sub *hh_wh_find(hsrv *hs, const char *id);
/* Commit sp's starting positions, store it, start delivering. 0 with *out
 * and the store's durability target, or -CN_E* (nothing kept). */
int hh_wh_create(hsrv *hs, const hh_wh_spec *sp, hh_wh_sub **out, int64_t *out_target);
/* Tombstone s, drop its group's offsets, stop and free it. 0 with the
 * target, or -CN_E* (s unchanged). */
int hh_wh_delete(hsrv *hs, hh_wh_sub *s, int64_t *out_target);
/* Park w until the store is durable up to target (kvl_wait_durable). */
void hh_wh_wait_durable(hsrv *hs, int64_t target, durable_wait *w,
                        void (*cb)(durable_wait *w, int status));
/* The subscription as JSON (hh_events.c documents the form). */
json_t *hh_wh_sub_json(hsrv *hs, hh_wh_sub *s);
/* Events not yet delivered (high watermark - position, summed); per
 * partition objects appended to parts when not NULL. */
int64_t hh_wh_lag(hsrv *hs, hh_wh_sub *s, json_t *parts);
void hh_wh_foreach(hsrv *hs, void (*cb)(void *arg, hh_wh_sub *s), void *arg);
const char *hh_wh_id(const hh_wh_sub *s);
const char *hh_wh_event_type(const hh_wh_sub *s);
const hh_wh_counters *hh_wh_sub_counters(const hh_wh_sub *s);
/* Totals since start, deleted subscriptions included; NULL when off. */
const hh_wh_counters *hh_wh_total(hsrv *hs);

/* The topic named by path segment i, or NULL after answering 404
 * unknown_topic (hh_topics.c). */
topic *hh_topic_or_reply(hreq *q, int i);
/* Map a core error to an HTTP status and error code for storage and
 * generic failures (hh_topics.c). */
int hh_status_from_cn(int rc, const char **code);
#endif
