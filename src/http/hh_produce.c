/* Produce over HTTP: POST /topics/{topic}/records.
 *
 * Body: {"records": [record, ...]} with at least one record; each record is
 * an object with optional fields
 *   "key" | "key_b64"        the key: a JSON string is stored as its UTF-8
 *   "value" | "value_b64"    bytes (no quotes), any other JSON value as its
 *                            compact JSON text, null (or absent) as a null
 *                            key / value; *_b64 is base64 (standard
 *                            alphabet, padded) of raw bytes
 *   "headers"                {"name": v, ...} or [["name", v], ...] (order
 *                            and repeats kept); v a string (UTF-8 bytes),
 *                            null, {"b64": "..."} (raw bytes), or another
 *                            JSON value (its JSON text)
 *   "partition"              an integer in [0, partitions)
 *   "timestamp"              ms since the epoch (default: now; a topic
 *                            with LogAppendTime stamps the broker's clock)
 * Every record is checked before anything is written: one bad record
 * answers 400 and stores nothing.
 *
 * Partitioning is Kafka's default: an explicit partition wins; a keyed
 * record goes to murmur2(key) modulo the partition count
 * (broker_key_partition, the partitioner Kafka clients and AMQP streams
 * use); unkeyed records of one request all go to one partition, the next
 * one round-robin per request (sticky, as Kafka's partitioner is per batch).
 *
 * The records of one partition become one batch (batch_build, uncompressed,
 * no producer id), appended with broker_produce; the answer waits until
 * every written partition is fsynced past its batch (broker_wait_durable:
 * acks=all), then 200 {"topic", "offsets": [{"partition", "offset"}, ...]}
 * in request order. Unknown topic: created when auto.create.topics.enable
 * (as a Kafka producer's metadata request would), else 404 unknown_topic. A
 * batch above the topic's max.message.bytes: 413 record_too_large, nothing
 * written. A storage failure: 500 storage_error (507 storage_full) after the
 * partitions appended before it are durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "record/batch.h"
#include "util/slog.h"

typedef struct prec {
    batch_build_rec r;
    int32_t part;
    int64_t offset;              /* the answer */
} prec;

struct produce_ctx;

typedef struct ppart {
    durable_wait w;              /* first: the broker hands this back */
    struct produce_ctx *pc;
} ppart;

typedef struct produce_ctx {
    hreq *q;
    const char *topic;
    prec *recs;
    int n;
    int pending;                 /* durable waits outstanding, + 1 while appending */
    int status;                  /* 0, or the error status to answer */
    const char *code;
    char msg[256];
} produce_ctx;

/* Bytes of a JSON value as the record stores it (contract above).
 * 0, or -1 with msg set. */
static int value_bytes(hreq *q, json_t *v, const uint8_t **out, int32_t *out_len)
{
    if (!v || json_is_null(v)) {
        *out = NULL;
        *out_len = -1;
        return 0;
    }
    if (json_is_string(v)) {
        *out = (const uint8_t *)json_string_value(v);
        *out_len = (int32_t)json_string_length(v);
        return 0;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return -1;
    size_t n = strlen(s);
    uint8_t *c = hh_alloc(q, n);
    memcpy(c, s, n);
    free(s);
    *out = c;
    *out_len = (int32_t)n;
    return 0;
}

/* "name" or "name_b64" of record o. 0, or -1 after answering 400. */
static int field_bytes(hreq *q, json_t *o, const char *name, int idx, const uint8_t **out,
                       int32_t *out_len)
{
    char b64name[16];
    snprintf(b64name, sizeof(b64name), "%s_b64", name);
    json_t *plain = json_object_get(o, name), *b64 = json_object_get(o, b64name);
    if (plain && b64) {
        hh_error(q, 400, "invalid_record", "record %d: give \"%s\" or \"%s\", not both", idx,
                 name, b64name);
        return -1;
    }
    if (b64 && !json_is_null(b64)) {
        uint8_t *d;
        size_t dl;
        if (!json_is_string(b64) ||
            hh_b64_decode(q, json_string_value(b64), json_string_length(b64), &d, &dl) < 0) {
            hh_error(q, 400, "invalid_base64", "record %d: \"%s\" is not valid base64", idx,
                     b64name);
            return -1;
        }
        *out = d;
        *out_len = (int32_t)dl;
        return 0;
    }
    if (value_bytes(q, b64 ? NULL : plain, out, out_len) < 0) {
        hh_error(q, 400, "invalid_record", "record %d: \"%s\" cannot be encoded", idx, name);
        return -1;
    }
    return 0;
}

/* One header value. 0, or -1 after answering 400. */
static int header_value(hreq *q, json_t *v, int idx, batch_header *h)
{
    json_t *b64 = json_is_object(v) ? json_object_get(v, "b64") : NULL;
    if (b64 && json_object_size(v) == 1) {
        uint8_t *d;
        size_t dl;
        if (!json_is_string(b64) ||
            hh_b64_decode(q, json_string_value(b64), json_string_length(b64), &d, &dl) < 0) {
            hh_error(q, 400, "invalid_base64", "record %d: header '%s' has bad base64", idx,
                     (const char *)h->key);
            return -1;
        }
        h->value = d;
        h->value_len = (int32_t)dl;
        return 0;
    }
    const uint8_t *b;
    int32_t bl;
    if (value_bytes(q, v, &b, &bl) < 0) {
        hh_error(q, 400, "invalid_record", "record %d: a header value cannot be encoded", idx);
        return -1;
    }
    h->value = b;
    h->value_len = bl;
    return 0;
}

static int parse_headers(hreq *q, json_t *hs, int idx, prec *pr)
{
    if (!hs || json_is_null(hs))
        return 0;
    size_t n = json_is_object(hs) ? json_object_size(hs) : json_is_array(hs) ? json_array_size(hs)
                                                                            : (size_t)-1;
    if (n == (size_t)-1) {
        hh_error(q, 400, "invalid_record", "record %d: \"headers\" must be an object or an "
                 "array of [name, value] pairs", idx);
        return -1;
    }
    batch_header *h = hh_alloc(q, (n ? n : 1) * sizeof(*h));
    size_t k = 0;
    if (json_is_object(hs)) {
        const char *key;
        json_t *v;
        json_object_foreach(hs, key, v) {
            h[k].key = key;
            h[k].key_len = (int32_t)strlen(key);
            if (header_value(q, v, idx, &h[k]) < 0)
                return -1;
            k++;
        }
    } else {
        for (; k < n; k++) {
            json_t *pair = json_array_get(hs, k);
            if (!json_is_array(pair) || json_array_size(pair) != 2 ||
                !json_is_string(json_array_get(pair, 0))) {
                hh_error(q, 400, "invalid_record", "record %d: header %zu must be [name, value]",
                         idx, k);
                return -1;
            }
            json_t *name = json_array_get(pair, 0);
            h[k].key = json_string_value(name);
            h[k].key_len = (int32_t)json_string_length(name);
            if (header_value(q, json_array_get(pair, 1), idx, &h[k]) < 0)
                return -1;
        }
    }
    pr->r.headers = h;
    pr->r.n_headers = (int32_t)k;
    return 0;
}

static void produce_finish(produce_ctx *pc)
{
    hreq *q = pc->q;
    hsrv *hs = q->hs;
    if (pc->status) {
        hh_error(q, pc->status, pc->code, "%s", pc->msg);
        hsrv__durable_end(hs);
        return;
    }
    json_t *offs = json_array();
    for (int i = 0; i < pc->n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "partition", json_integer(pc->recs[i].part));
        json_object_set_new(o, "offset", json_integer(pc->recs[i].offset));
        json_array_append_new(offs, o);
    }
    json_t *j = json_object();
    json_object_set_new(j, "topic", json_string(pc->topic));
    json_object_set_new(j, "offsets", offs);
    hh_reply_json(q, 200, j);
    hsrv__durable_end(hs);
}

static void on_durable(durable_wait *w, int status)
{
    produce_ctx *pc = ((ppart *)w)->pc;
    if (status == -CN_ENOTLEADER && !pc->status) {
        /* A cluster: a new leader cut them from this node's log. */
        pc->status = 421;
        pc->code = "not_leader";
        snprintf(pc->msg, sizeof(pc->msg), "this node lost leadership and the records were not "
                 "kept: send them again to the new leader");
    } else if (status == -CN_ECOMMITTMO && !pc->status) {
        /* A cluster: no majority confirmed them in time. */
        pc->status = 503;
        pc->code = "commit_unknown";
        snprintf(pc->msg, sizeof(pc->msg), "records were written here but no majority confirmed "
                 "them in time: they may or may not be kept");
    } else if (status < 0 && !pc->status) {
        pc->status = 500;
        pc->code = "storage_error";
        snprintf(pc->msg, sizeof(pc->msg), "records were written but could not be synced: %s",
                 cn_strerror(status));
    }
    if (--pc->pending == 0)
        produce_finish(pc);
}

void hh_produce(hreq *q)
{
    hsrv *hs = q->hs;
    const char *tname = q->seg[1];
    if (!broker_topic_name_valid(cn_str_c(tname))) {
        hh_error(q, 400, "invalid_topic_name", "'%s' is not a valid topic name", tname);
        return;
    }
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    uint8_t **batches = NULL;
    int n_parts = 0;
    json_t *recs = json_object_get(body, "records");
    if (!json_is_array(recs) || json_array_size(recs) == 0) {
        hh_error(q, 400, "invalid_request", "\"records\" must be a non-empty array");
        goto out;
    }
    topic *t = broker_topic_auto_create(hs->b, cn_str_c(tname));
    if (!t) {
        hh_error(q, 404, "unknown_topic", "topic '%s' does not exist", tname);
        goto out;
    }
    int n = (int)json_array_size(recs);
    produce_ctx *pc = hh_alloc(q, sizeof(*pc));
    pc->q = q;
    pc->topic = hh_strdup(q, t->name);
    pc->recs = hh_alloc(q, (size_t)n * sizeof(*pc->recs));
    pc->n = n;
    int64_t now = loop_wall_ms();
    int32_t sticky = -1;
    for (int i = 0; i < n; i++) {
        json_t *o = json_array_get(recs, (size_t)i);
        prec *pr = &pc->recs[i];
        if (!json_is_object(o)) {
            hh_error(q, 400, "invalid_record", "record %d is not an object", i);
            goto out;
        }
        const uint8_t *b;
        int32_t bl;
        if (field_bytes(q, o, "key", i, &b, &bl) < 0)
            goto out;
        pr->r.key = b;
        pr->r.key_len = bl;
        if (field_bytes(q, o, "value", i, &b, &bl) < 0)
            goto out;
        pr->r.value = b;
        pr->r.value_len = bl;
        if (parse_headers(q, json_object_get(o, "headers"), i, pr) < 0)
            goto out;
        json_t *ts = json_object_get(o, "timestamp");
        if (ts && !json_is_null(ts) && (!json_is_integer(ts) || json_integer_value(ts) < 0)) {
            hh_error(q, 400, "invalid_record", "record %d: \"timestamp\" must be ms since the "
                     "epoch (an integer >= 0)", i);
            goto out;
        }
        pr->r.ts = ts && json_is_integer(ts) ? json_integer_value(ts) : now;
        json_t *part = json_object_get(o, "partition");
        if (part && !json_is_null(part)) {
            if (!json_is_integer(part) || json_integer_value(part) < 0 ||
                json_integer_value(part) >= t->n_parts) {
                hh_error(q, 400, "invalid_partition", "record %d: \"partition\" must be an "
                         "integer in [0, %d)", i, t->n_parts);
                goto out;
            }
            pr->part = (int32_t)json_integer_value(part);
        } else if (pr->r.key_len >= 0) {
            pr->part = broker_key_partition(pr->r.key, (size_t)pr->r.key_len, t->n_parts);
        } else {
            if (sticky < 0)
                sticky = (int32_t)(hs->rr++ % (uint32_t)t->n_parts);
            pr->part = sticky;
        }
    }

    /* One batch per partition, in order of first appearance; all built and
     * checked before any is appended. */
    int32_t *slot = hh_alloc(q, (size_t)t->n_parts * sizeof(*slot));
    for (int32_t i = 0; i < t->n_parts; i++)
        slot[i] = -1;
    int32_t *parts = hh_alloc(q, (size_t)n * sizeof(*parts));
    for (int i = 0; i < n; i++)
        if (slot[pc->recs[i].part] < 0) {
            slot[pc->recs[i].part] = n_parts;
            parts[n_parts++] = pc->recs[i].part;
        }
    batch_build_rec *br = hh_alloc(q, (size_t)n * sizeof(*br));
    size_t *lens = hh_alloc(q, (size_t)n_parts * sizeof(*lens));
    batches = xcalloc((size_t)n_parts, sizeof(*batches));
    for (int k = 0; k < n_parts; k++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (pc->recs[i].part == parts[k])
                br[m++] = pc->recs[i].r;
        if (batch_build(br, m, BATCH_COMPRESSION_NONE, 0, &batches[k], &lens[k]) < 0) {
            hh_error(q, 400, "invalid_record", "records for partition %d cannot be encoded",
                     parts[k]);
            goto out;
        }
        if (lens[k] > (size_t)t->cfg.max_message_bytes) {
            hh_error(q, 413, "record_too_large", "the records for partition %d take %zu bytes, "
                     "above the topic's max.message.bytes %d", parts[k], lens[k],
                     t->cfg.max_message_bytes);
            goto out;
        }
    }

    /* min.insync.replicas, for every partition before any is written. */
    for (int k = 0; k < n_parts; k++) {
        int rc = broker_min_isr_check(t->parts[parts[k]]);
        if (rc < 0) {
            const char *code;
            int status = hh_status_from_cn(rc, &code);
            hh_error(q, status, code, "partition %d has fewer replicas in sync than the topic's "
                     "min.insync.replicas %d: nothing was written", parts[k],
                     t->cfg.min_insync_replicas);
            goto out;
        }
    }

    /* Append and park until durable. */
    pc->pending = 1;
    hsrv__durable_begin(hs);
    int written = 0;
    for (int k = 0; k < n_parts; k++) {
        partition *p = t->parts[parts[k]];
        if (t->cfg.ts_type == TS_LOG_APPEND_TIME)
            batch_set_log_append_time(batches[k], lens[k], now);
        int64_t base = -1;
        int rc = broker_produce(hs->b, p, batches[k], lens[k], &base);
        if (rc < 0) {
            int status = hh_status_from_cn(rc, &pc->code);
            if (rc == -CN_ETOOBIG || rc == -CN_EINVAL)
                status = 500, pc->code = "storage_error";
            pc->status = status;
            snprintf(pc->msg, sizeof(pc->msg), "append to partition %d failed (%s); %d of %d "
                     "partitions were written", parts[k], cn_strerror(rc), written, n_parts);
            break;
        }
        written++;
        int j = 0;
        for (int i = 0; i < n; i++)
            if (pc->recs[i].part == parts[k])
                pc->recs[i].offset = base + j++;
        ppart *pp = hh_alloc(q, sizeof(*pp));
        pp->pc = pc;
        pp->w.target = log_end_offset(p->log);
        pp->w.cb = on_durable;
        pc->pending++;
        broker_wait_durable(hs->b, p, &pp->w);
    }
    if (--pc->pending == 0)
        produce_finish(pc);
out:
    for (int k = 0; batches && k < n_parts; k++)
        free(batches[k]);
    free(batches);
    json_decref(body);
}
