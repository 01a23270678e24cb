/* The event bus over HTTP: publish, and webhook subscriptions (their
 * store and delivery: hh_webhook.c).
 *
 * POST /event/publish   {"event_type": T, "data": any JSON, "key": string
 *                       (optional), "id": string (optional)}
 *     Appends one record to topic T (created as produce creates it: when
 *     auto.create.topics.enable, else 404 unknown_topic): value = the compact
 *     JSON text of data, key = key (Kafka's partitioner places keyed events;
 *     unkeyed ones go round-robin), header "event-id" = id. Answered once
 *     durable: 200 {"event_type", "partition", "offset"} (+ "id").
 *     400 invalid_event_type (not a topic name), invalid_request (no data,
 *     key or id not a string).
 * POST /event/subscribe {"event_type": T, "callback": "http(s)://host[:port]/path",
 *                       "id": 1..64 of [A-Za-z0-9._-] (default: generated),
 *                       "max_attempts": 1..1000 (http.webhook.max.attempts),
 *                       "timeout_ms": 100..600000 (http.webhook.timeout.ms),
 *                       "from": "latest" (default) | "earliest"}
 *     Creates topic T when absent (as publish), commits the starting
 *     positions, stores the subscription and answers 201 with its JSON (below)
 *     once the store is durable. 400 invalid_event_type, invalid_callback,
 *     invalid_parameter; 409 subscription_exists.
 * GET /event/subscriptions        200 {"subscriptions": [...]} sorted by id
 * GET /event/subscriptions/{id}   200 the subscription; 404 unknown_subscription
 * DELETE /event/subscriptions/{id} 200 {"deleted": id} once durable (its
 *     consumer group's offsets are deleted too)
 * A subscription: {"id", "event_type", "callback", "group" (its consumer
 * group), "dead_letter_topic", "max_attempts", "timeout_ms", "created_ms",
 * "state" (idle | delivering | backoff | dead_lettering), "attempt",
 * "lag" (high watermark - position, summed over partitions), "partitions":
 * [{"partition", "position", "high_watermark", "lag"}], "delivered",
 * "failed_attempts", "retries", "dead_lettered" (since the broker started),
 * "last_status", "last_error"}.
 * In a cluster the subscription endpoints answer 501 webhooks_unavailable
 * (webhooks are single-node for now); publish works everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http/http_int.h"

/* Publish ----------------------------------------------------------------------- */

typedef struct pub_wait {
    durable_wait w;              /* first: the broker hands this back */
    hreq *q;
    const char *topic;
    const char *id;
    int32_t part;
    int64_t offset;
} pub_wait;

static void pub_durable(durable_wait *w, int status)
{
    pub_wait *pw = (pub_wait *)w;
    hsrv *hs = pw->q->hs;
    if (status < 0) {
        hh_error(pw->q, 500, "storage_error", "the event was written but could not be synced: "
                 "%s", cn_strerror(status));
    } else {
        json_t *j = json_object();
        json_object_set_new(j, "event_type", json_string(pw->topic));
        json_object_set_new(j, "partition", json_integer(pw->part));
        json_object_set_new(j, "offset", json_integer(pw->offset));
        if (pw->id)
            json_object_set_new(j, "id", json_string(pw->id));
        hh_reply_json(pw->q, 200, j);
    }
    hsrv__durable_end(hs);
}

/* The event type of body, or NULL after answering 400. */
static const char *event_type_or_reply(hreq *q, json_t *body)
{
    json_t *et = json_object_get(body, "event_type");
    if (!json_is_string(et)) {
        hh_error(q, 400, "invalid_event_type", "\"event_type\" (a string) is required");
        return NULL;
    }
    const char *s = json_string_value(et);
    cn_str n = {s, (int32_t)json_string_length(et)};
    if (!broker_topic_name_valid(n) || broker_topic_name_reserved(n) ||
        strlen(s) != json_string_length(et)) {
        hh_error(q, 400, "invalid_event_type", "'%s' is not a valid event type (a topic name: "
                 "1..249 of [a-zA-Z0-9._-])", s);
        return NULL;
    }
    return s;
}

static int opt_string_or_reply(hreq *q, json_t *body, const char *name, const char **out)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        hh_error(q, 400, "invalid_request", "\"%s\" must be a string", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

void hh_event_publish(hreq *q)
{
    hsrv *hs = q->hs;
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    uint8_t *batch = NULL;
    char *value = NULL;
    const char *tname = event_type_or_reply(q, body), *key, *id;
    if (!tname)
        goto out;
    json_t *data = json_object_get(body, "data");
    if (!data) {
        hh_error(q, 400, "invalid_request", "\"data\" (any JSON value) is required");
        goto out;
    }
    if (opt_string_or_reply(q, body, "key", &key) < 0 ||
        opt_string_or_reply(q, body, "id", &id) < 0)
        goto out;
    topic *t = broker_topic_auto_create(hs->b, cn_str_c(tname));
    if (!t) {
        hh_error(q, 404, "unknown_topic", "topic '%s' does not exist (auto.create.topics.enable "
                 "is off)", tname);
        goto out;
    }
    value = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!value) {
        hh_error(q, 400, "invalid_request", "\"data\" cannot be encoded");
        goto out;
    }
    batch_header h = {HH_EVENT_ID_HEADER, (int32_t)strlen(HH_EVENT_ID_HEADER), id,
                      id ? (int32_t)strlen(id) : -1};
    int64_t now = loop_wall_ms();
    batch_build_rec r = {key, key ? (int32_t)strlen(key) : -1, value, (int32_t)strlen(value),
                         now, &h, id ? 1 : 0};
    size_t len;
    if (batch_build(&r, 1, BATCH_COMPRESSION_NONE, 0, &batch, &len) < 0) {
        hh_error(q, 400, "invalid_request", "the event cannot be encoded");
        goto out;
    }
    if (len > (size_t)t->cfg.max_message_bytes) {
        hh_error(q, 413, "record_too_large", "the event takes %zu bytes, above the topic's "
                 "max.message.bytes %d", len, t->cfg.max_message_bytes);
        goto out;
    }
    int32_t part = key ? broker_key_partition(key, strlen(key), t->n_parts)
                       : (int32_t)(hs->rr++ % (uint32_t)t->n_parts);
    partition *p = t->parts[part];
    if (t->cfg.ts_type == TS_LOG_APPEND_TIME)
        batch_set_log_append_time(batch, len, now);
    int64_t base = -1;
    int rc = broker_min_isr_check(p);
    if (rc == 0)
        rc = broker_produce(hs->b, p, batch, len, &base);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        if (rc == -CN_ETOOBIG || rc == -CN_EINVAL)
            status = 500, code = "storage_error";
        hh_error(q, status, code, "append to %s-%d failed: %s", t->name, part, cn_strerror(rc));
        goto out;
    }
    pub_wait *pw = hh_alloc(q, sizeof(*pw));
    pw->q = q;
    pw->topic = hh_strdup(q, t->name);
    pw->id = id ? hh_strdup(q, id) : NULL;
    pw->part = part;
    pw->offset = base;
    pw->w.target = log_end_offset(p->log);
    pw->w.cb = pub_durable;
    hsrv__durable_begin(hs);
    broker_wait_durable(hs->b, p, &pw->w);
out:
    free(batch);
    free(value);
    json_decref(body);
}

/* Subscriptions ------------------------------------------------------------------- */

static int available_or_reply(hreq *q)
{
    if (q->hs->wh)
        return 0;
    hh_error(q, 501, "webhooks_unavailable", "webhook subscriptions are not available here "
             "(%s)", q->hs->core->cl ? "a cluster node: webhooks are single-node for now"
                                     : "the subscription store could not be opened");
    return -1;
}

static int id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* An absolute http(s) URL with a host, as libcurl's URL parser reads it. */
static int callback_valid(const char *s, char *why, size_t why_len)
{
    CURLU *u = curl_url();
    if (!u)
        abort();
    int ok = 0;
    char *scheme = NULL, *host = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, s, 0);
    if (rc != CURLUE_OK) {
        snprintf(why, why_len, "%s", curl_url_strerror(rc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(why, why_len, "the scheme must be http or https");
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(why, why_len, "no host");
    } else {
        ok = 1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int opt_int_or_reply(hreq *q, json_t *body, const char *name, int64_t def, int64_t lo,
                            int64_t hi, int32_t *out)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        *out = (int32_t)def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        hh_error(q, 400, "invalid_parameter", "\"%s\" must be an integer in [%lld, %lld]", name,
                 (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int32_t)json_integer_value(v);
    return 0;
}

typedef struct sub_wait {
    durable_wait w;              /* first: the store hands this back */
    hreq *q;
    json_t *answer;              /* owned until answered */
    int status;
} sub_wait;

static void sub_durable(durable_wait *w, int status)
{
    sub_wait *sw = (sub_wait *)w;
    hsrv *hs = sw->q->hs;
    if (status < 0) {
        json_decref(sw->answer);
        hh_error(sw->q, 500, "storage_error", "the subscription store could not be synced: %s",
                 cn_strerror(status));
    } else {
        hh_reply_json(sw->q, sw->status, sw->answer);
    }
    hsrv__durable_end(hs);
}

static void park_answer(hreq *q, int64_t target, int status, json_t *answer)
{
    sub_wait *sw = hh_alloc(q, sizeof(*sw));
    sw->q = q;
    sw->answer = answer;
    sw->status = status;
    hsrv__durable_begin(q->hs);
    hh_wh_wait_durable(q->hs, target, &sw->w, sub_durable);
}

void hh_event_subscribe(hreq *q)
{
    hsrv *hs = q->hs;
    if (available_or_reply(q) < 0)
        return;
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    hh_wh_spec sp = {0};
    const char *from;
    char why[256], gen[32];
    if (!(sp.event_type = event_type_or_reply(q, body)))
        goto out;
    if (strlen(sp.event_type) + strlen(hs->cfg->http_webhook_dlq_suffix) > 249) {
        hh_error(q, 400, "invalid_event_type", "'%s' is too long: its dead-letter topic name "
                 "would pass 249 characters", sp.event_type);
        goto out;
    }
    json_t *cb = json_object_get(body, "callback");
    if (!json_is_string(cb) || strlen(json_string_value(cb)) != json_string_length(cb)) {
        hh_error(q, 400, "invalid_callback", "\"callback\" (an http or https URL) is required");
        goto out;
    }
    sp.callback = json_string_value(cb);
    if (!callback_valid(sp.callback, why, sizeof(why))) {
        hh_error(q, 400, "invalid_callback", "callback '%s' is not a usable URL: %s", sp.callback,
                 why);
        goto out;
    }
    if (opt_string_or_reply(q, body, "id", &sp.id) < 0 ||
        opt_string_or_reply(q, body, "from", &from) < 0 ||
        opt_int_or_reply(q, body, "max_attempts", hs->cfg->http_webhook_max_attempts, 1, 1000,
                         &sp.max_attempts) < 0 ||
        opt_int_or_reply(q, body, "timeout_ms", hs->cfg->http_webhook_timeout_ms, 100, 600000,
                         &sp.timeout_ms) < 0)
        goto out;
    if (from && strcmp(from, "latest") != 0 && strcmp(from, "earliest") != 0) {
        hh_error(q, 400, "invalid_parameter", "\"from\" must be \"latest\" or \"earliest\"");
        goto out;
    }
    sp.from_earliest = from && strcmp(from, "earliest") == 0;
    if (sp.id && !id_valid(sp.id)) {
        hh_error(q, 400, "invalid_parameter", "\"id\" must be 1..64 of [A-Za-z0-9._-]");
        goto out;
    }
    if (!sp.id) {
        do {
            snprintf(gen, sizeof(gen), "sub-%08x%04x", (unsigned)loop_wall_ms(),
                     (unsigned)(rand() & 0xffff));
        } while (hh_wh_find(hs, gen));
        sp.id = gen;
    }
    if (hh_wh_find(hs, sp.id)) {
        hh_error(q, 409, "subscription_exists", "subscription '%s' exists", sp.id);
        goto out;
    }
    if (!broker_topic_auto_create(hs->b, cn_str_c(sp.event_type))) {
        hh_error(q, 404, "unknown_topic", "topic '%s' does not exist (auto.create.topics.enable "
                 "is off)", sp.event_type);
        goto out;
    }
    hh_wh_sub *s;
    int64_t target;
    int rc = hh_wh_create(hs, &sp, &s, &target);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        hh_error(q, status, code, "the subscription cannot be stored: %s", cn_strerror(rc));
        goto out;
    }
    park_answer(q, target, 201, hh_wh_sub_json(hs, s));
out:
    json_decref(body);
}

static void list_one(void *arg, hh_wh_sub *s)
{
    json_t *arr = arg;
    json_array_append_new(arr, json_string(hh_wh_id(s)));
}

static int by_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

void hh_event_subs_list(hreq *q)
{
    hsrv *hs = q->hs;
    if (available_or_reply(q) < 0)
        return;
    json_t *ids = json_array();
    hh_wh_foreach(hs, list_one, ids);
    size_t n = json_array_size(ids);
    json_t **v = hh_alloc(q, (n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(ids, i);
    qsort(v, n, sizeof(*v), by_str);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, hh_wh_sub_json(hs, hh_wh_find(hs, json_string_value(v[i]))));
    json_decref(ids);
    json_t *j = json_object();
    json_object_set_new(j, "subscriptions", arr);
    hh_reply_json(q, 200, j);
}

static hh_wh_sub *sub_or_reply(hreq *q)
{
    if (available_or_reply(q) < 0)
        return NULL;
    hh_wh_sub *s = hh_wh_find(q->hs, q->seg[2]);
    if (!s)
        hh_error(q, 404, "unknown_subscription", "subscription '%s' does not exist", q->seg[2]);
    return s;
}

void hh_event_sub_get(hreq *q)
{
    hh_wh_sub *s = sub_or_reply(q);
    if (s)
        hh_reply_json(q, 200, hh_wh_sub_json(q->hs, s));
}

void hh_event_sub_delete(hreq *q)
{
    hh_wh_sub *s = sub_or_reply(q);
    if (!s)
        return;
    int64_t target;
    int rc = hh_wh_delete(q->hs, s, &target);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        hh_error(q, status, code, "the subscription cannot be deleted: %s", cn_strerror(rc));
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(q->seg[2]));
    park_answer(q, target, 200, j);
}
