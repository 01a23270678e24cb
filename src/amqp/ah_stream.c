/* Stream queues: an AMQP queue over a Kafka topic (docs/amqp-plan.md
 * "Kafka and AMQP on the same data"; the property mapping table is in
 * ARCHITECTURE.md "AMQP front end").
 *
 * Declare: `x-queue-type: stream` (durable, not exclusive, not auto-delete,
 * else 406 as RabbitMQ) maps the queue to the topic of the same name: an
 * existing topic is used with all its partitions, a missing one is created
 * with 1 partition (broker_topic_create). The declaration is kept in
 * __amqp_meta like any durable queue (its arguments hold the type); the
 * topic is found by name whenever it is used (never cached: Kafka may
 * delete, recreate or grow it), and created again when a publish or a
 * consume finds it missing. queue.delete forgets the AMQP queue and its
 * bindings; the topic and its data stay (they are Kafka's: DeleteTopics).
 *
 * Consume: basic.qos prefetch must be set (406 otherwise) and no-ack is
 * refused (540), both as RabbitMQ. `x-stream-offset` picks the start per
 * partition: "first" (log start), "last" (the base offset of the last
 * batch below the last stable offset), "next" (default: the last stable
 * offset), a number (clamped to [log start, high watermark]), a
 * timestamp (AMQP 'T', seconds: the first record with a timestamp >= it,
 * through the time index as ListOffsets; none: "next"), or an interval
 * string "<n>Y|M|D|h|m|s" (now minus it, as a timestamp). Every consumer
 * has its own cursor (next offset per partition); it reads one slice of
 * about 1 KiB per record of credit, at most STREAM_READ_BYTES (the first
 * batch whole, KIP-74) at a time (log_read_verified), decodes the
 * batches of the slice only until it holds as many records as the
 * consumer has credit, and keeps those decoded (never more than one slice)
 * until they are delivered. Reads stop at the last stable offset; control
 * batches and batches of aborted transactions (pst_aborted_in) are
 * skipped: consumers see committed data only. A topic of several
 * partitions is read round-robin, one slice per partition: the order is
 * per partition. Deliveries carry the header `x-stream-offset` (long), and
 * `x-stream-partition` (int) when the topic has more than one partition.
 * Acks, rejects and nacks only give credit back (a stream is never
 * trimmed by acks and never requeues); unacked deliveries of a closed
 * channel are not redelivered. A cursor positioned past a topic that was
 * deleted and recreated (another topic id), or on a partition added
 * later, restarts there at the log start. New data wakes consumers through
 * the broker's append listener (broker_listen_appends).
 *
 * Publish: a message routed to a stream queue is one record appended to a
 * partition of the topic (Kafka's default partitioner: murmur2 of the key
 * modulo the partition count; no key: round-robin), LogAppendTime stamped
 * when the topic asks for it. Confirms wait for broker_wait_durable on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amqp/amqp_int.h"
#include "broker/pstate.h"
#include "log/log.h"
#include "record/batch.h"
#include "util/common.h"
#include "util/slog.h"

#define STREAM_READ_BYTES ((int64_t)64 << 10)

enum { SPEC_FIRST, SPEC_LAST, SPEC_NEXT, SPEC_OFFSET, SPEC_TIME };

/* One decoded record waiting for credit. */
typedef struct srec {
    amsg *m;
    int64_t off;
} srec;

struct astream_cur {
    cn_uuid topic_id;            /* the topic pos[] belongs to */
    int64_t *pos;                /* next offset per partition */
    int32_t n_pos;
    int32_t rr;                  /* partition to read next */
    srec *ready;                 /* decoded, not delivered: ready[head..n) */
    size_t head, n, cap;
    int32_t bad_part;            /* a read failed there at bad_pos: logged once */
    int64_t bad_pos;
};

struct astream_state {
    broker_listener appends;     /* first: the callback casts back */
    asrv *as;
    batch_scratch *scratch;
    uint8_t *buf;                /* one slice being decoded */
    size_t cap;
    pst_aborted *ab;             /* aborted transactions of that slice */
    int n_ab, cap_ab;
    uint32_t rr;                 /* keyless publishes: next partition */
};

static int32_t slen(cn_str s) { return s.len > 0 ? s.len : 0; }

#define SARG(s) (int)slen(s), (s).ptr ? (s).ptr : ""

static int str_is(cn_str s, const char *p)
{
    size_t n = strlen(p);
    return (size_t)slen(s) == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

/* Queue arguments ------------------------------------------------------------ */

int asrv__stream_arg(amqp_table args)
{
    amqp_value v;
    return amqp_table_get(args, "x-queue-type", &v) == 0 && v.tag == AMQP_T_LONGSTR &&
           str_is(v.u.str, "stream");
}

static topic *stream_topic(asrv *as, const aqueue *q, int create)
{
    broker *b = as->core->b;
    cn_str name = {q->name, q->name_len};
    topic *t = broker_topic_find(b, name);
    if (t || !create)
        return t;
    char msg[160] = "";
    int rc = broker_topic_create(b, name, 1, NULL, 0, 0, msg, sizeof(msg), &t);
    if (rc < 0) {
        slog_warn("amqp: stream '%s': cannot create its topic (%s: %s)", q->name,
                  cn_strerror(rc), msg);
        return NULL;
    }
    slog_info("amqp: stream '%s': created topic with 1 partition", q->name);
    return t;
}

int asrv__stream_declare_or_reply(asrv_conn *ac, uint16_t ch, cn_str name,
                                  const amqp_queue_declare *m)
{
    const char *bad = m->auto_delete ? "auto-delete"
                      : m->exclusive ? "exclusive-owner"
                      : !m->durable  ? "non-durable"
                                     : NULL;
    if (bad) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                         "invalid property '%s' for queue '%.*s' in vhost '/'", bad, SARG(name));
        return -1;
    }
    if (!broker_topic_name_valid(name) || broker_topic_name_reserved(name)) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_QUEUE, 10,
                         "stream queue name '%.*s' is not a valid Kafka topic name "
                         "(1..249 of [a-zA-Z0-9._-], not reserved)", SARG(name));
        return -1;
    }
    broker *b = ac->as->core->b;
    if (broker_topic_find(b, name))
        return 0;
    char msg[160] = "";
    topic *t;
    int rc = broker_topic_create(b, name, 1, NULL, 0, 0, msg, sizeof(msg), &t);
    if (rc < 0) {
        asrv__conn_error(ac, AMQP_INTERNAL_ERROR, AMQP_CLASS_QUEUE, 10,
                         "cannot create the topic of stream '%.*s': %s (%s)", SARG(name),
                         cn_strerror(rc), msg);
        return -1;
    }
    slog_info("amqp: stream '%.*s': created topic with 1 partition", SARG(name));
    return 0;
}

/* Cursors ------------------------------------------------------------------ */

static void cur_push(astream_cur *cur, amsg *m, int64_t off)
{
    if (cur->head == cur->n) {
        cur->head = cur->n = 0;
    }
    if (cur->n == cur->cap) {
        cur->cap = cur->cap ? cur->cap * 2 : 16;
        cur->ready = xrealloc(cur->ready, cur->cap * sizeof(*cur->ready));
    }
    cur->ready[cur->n++] = (srec){m, off};
}

static void cur_free(astream_cur *cur)
{
    if (!cur)
        return;
    for (size_t i = cur->head; i < cur->n; i++)
        amsg_unref(cur->ready[i].m);
    free(cur->ready);
    free(cur->pos);
    free(cur);
}

void asrv__stream_consumer_free(aconsumer *c)
{
    cur_free(c->scur);
    c->scur = NULL;
}

static int pread_all(int fd, uint8_t *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Read one slice of p (from *pos, below to, about max bytes: the first
 * batch whole) into st->buf: its length, 0 when there is nothing, -1 on an
 * error (logged once per position: the cursor stays there, as a Kafka
 * consumer would, until the data is readable). *pos is moved up to the log
 * start when retention passed it. */
static ssize_t read_slice(astream_state *st, astream_cur *cur, partition *p, int64_t *pos,
                          int64_t to, int64_t max)
{
    int64_t start = log_start_offset(p->log);
    if (*pos < start)
        *pos = start;
    if (*pos >= to)
        return 0;
    log_slice sl;
    int rc = log_read_verified(p->log, *pos, to, max, &sl);
    if (rc < 0) {
        if (cur->bad_part == p->id && cur->bad_pos == *pos)
            return -1;
        cur->bad_part = p->id;
        cur->bad_pos = *pos;
        slog_warn("amqp: stream %s-%d: read at offset %lld failed (%s)", p->t->name, p->id,
                  (long long)*pos, cn_strerror(rc));
        return -1;
    }
    size_t len = (size_t)sl.len;
    if (len > st->cap) {
        free(st->buf);
        st->buf = xmalloc(len);
        st->cap = len;
    }
    rc = len ? pread_all(sl.fd, st->buf, len, sl.pos) : 0;
    log_slice_release(&sl);
    if (rc < 0) {
        slog_warn("amqp: stream %s-%d: pread failed", p->t->name, p->id);
        return -1;
    }
    return (ssize_t)len;
}

static void aborted_one(void *arg, const pst_aborted *a)
{
    astream_state *st = arg;
    if (st->n_ab == st->cap_ab) {
        st->cap_ab = st->cap_ab ? st->cap_ab * 2 : 8;
        st->ab = xrealloc(st->ab, (size_t)st->cap_ab * sizeof(*st->ab));
    }
    st->ab[st->n_ab++] = *a;
}

static int batch_aborted(const astream_state *st, const batch_info *bi)
{
    if (!bi->transactional)
        return 0;
    for (int i = 0; i < st->n_ab; i++)
        if (st->ab[i].pid == bi->producer_id && st->ab[i].first_offset <= bi->base_offset &&
            bi->base_offset <= st->ab[i].last_offset)
            return 1;
    return 0;
}

typedef struct decode_ctx {
    astream_cur *cur;
    int64_t from;
    int32_t part, n_parts;
} decode_ctx;

static int decode_one(const batch_record *r, void *arg)
{
    decode_ctx *d = arg;
    if (r->offset >= d->from)
        cur_push(d->cur, asrv__stream_record_msg(r, d->part, d->n_parts), r->offset);
    return 0;
}

/* Decode committed records of partition i from the cursor's position until
 * `want` records are ready (or the slice ends). Returns how many were added. */
static size_t cur_load(astream_state *st, astream_cur *cur, topic *t, int32_t i, size_t want)
{
    partition *p = t->parts[i];
    int64_t lso = broker_lso(p);
    int64_t *pos = &cur->pos[i];
    size_t before = cur->n - cur->head;
    while (cur->n - cur->head - before < want) {
        /* about 1 KiB per record of credit: little is decoded in vain */
        int64_t max = want < (size_t)(STREAM_READ_BYTES >> 10) ? (int64_t)want << 10
                                                                : STREAM_READ_BYTES;
        ssize_t len = read_slice(st, cur, p, pos, lso, max);
        if (len <= 0)
            break;
        int64_t from = *pos;
        st->n_ab = 0;
        pst_aborted_in(p->ps, from, batch_span_end(st->buf, (size_t)len, from), aborted_one, st);
        size_t off = 0;
        while (off + BATCH_HEADER_SIZE <= (size_t)len &&
               cur->n - cur->head - before < want) {
            batch_info bi;
            if (batch_parse_header(st->buf + off, (size_t)len - off, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + BATCH_LOG_OVERHEAD;
            if (bi.batch_length < 0 || off + total > (size_t)len)
                break;
            int64_t next = bi.base_offset + bi.last_offset_delta + 1;
            if (next > *pos && !bi.control && !batch_aborted(st, &bi)) {
                decode_ctx d = {cur, *pos, i, t->n_parts};
                int rc = batch_foreach(st->buf + off, total, st->scratch, decode_one, &d);
                if (rc < 0)
                    slog_warn("amqp: stream %s-%d: batch at offset %lld does not decode (%s); "
                              "skipped", t->name, i, (long long)bi.base_offset, cn_strerror(rc));
            }
            if (next > *pos)
                *pos = next;
            off += total;
        }
        if (*pos <= from)
            break; /* no progress: damaged data, logged by the read */
    }
    return cur->n - cur->head - before;
}

/* Bring the cursor in line with topic t: a recreated topic or new
 * partitions start at their log start. */
static void cur_sync(astream_cur *cur, topic *t)
{
    if (memcmp(&cur->topic_id, &t->id, sizeof(t->id)) != 0) {
        cur->topic_id = t->id;
        cur->n_pos = 0;
    }
    if (cur->n_pos < t->n_parts) {
        cur->pos = xrealloc(cur->pos, (size_t)t->n_parts * sizeof(*cur->pos));
        for (int32_t i = cur->n_pos; i < t->n_parts; i++)
            cur->pos[i] = log_start_offset(t->parts[i]->log);
        cur->n_pos = t->n_parts;
    }
}

/* The next record for c (credit: how many it may take now), or 0. */
static int cur_next(astream_state *st, aconsumer *c, topic *t, size_t credit, srec *out)
{
    astream_cur *cur = c->scur;
    if (cur->head == cur->n && t) {
        cur_sync(cur, t);
        for (int32_t k = 0; k < t->n_parts; k++) {
            int32_t i = (cur->rr + k) % t->n_parts;
            if (cur_load(st, cur, t, i, credit) > 0) {
                cur->rr = (i + 1) % t->n_parts;
                break;
            }
        }
    }
    if (cur->head == cur->n)
        return 0;
    *out = cur->ready[cur->head++];
    return 1;
}

void asrv__stream_dispatch(aqueue *q)
{
    if (q->deleted)
        return;
    for (int k = 0; k < q->n_cons; k++) {
        aconsumer *c = q->cons[k];
        asrv *as = c->ac->as;
        if (!as || !as->stream || !c->scur)
            continue;
        topic *t = NULL;
        int looked = 0;
        while (asrv__can_take(c)) {
            if (!looked && c->scur->head == c->scur->n) {
                t = stream_topic(as, q, 0);
                looked = 1;
            }
            size_t credit = c->prefetch > c->unacked ? (size_t)(c->prefetch - c->unacked) : 1;
            srec r;
            if (!cur_next(as->stream, c, t, credit, &r))
                break;
            asrv__deliver(c, (aq_entry){r.m, 0, r.off, 0});
            looked = 0;
        }
    }
}

static void on_appends(broker_listener *l)
{
    asrv *as = ((astream_state *)l)->as;
    for (int i = 0; i < as->n_q; i++)
        if (as->q[i]->stream && as->q[i]->n_cons)
            asrv__stream_dispatch(as->q[i]);
}

/* Consume ----------------------------------------------------------------- */

typedef struct ts_find {
    int64_t ts, offset;
} ts_find;

static int ts_cb(const batch_record *r, void *arg)
{
    ts_find *f = arg;
    if (r->timestamp >= f->ts) {
        f->offset = r->offset;
        return 1;
    }
    return 0;
}

/* First offset of p with a timestamp >= ts (ListOffsets' lookup; it may
 * lie above the last stable offset: the cursor waits there); the last
 * stable offset when there is none. */
static int64_t offset_for_time(astream_state *st, partition *p, int64_t ts)
{
    int64_t lso = broker_lso(p);
    log_slice sl;
    if (log_find_timestamp(p->log, ts, &sl) < 0)
        return lso;
    size_t len = (size_t)sl.len;
    if (len > st->cap) {
        free(st->buf);
        st->buf = xmalloc(len);
        st->cap = len;
    }
    ts_find f = {ts, -1};
    if (pread_all(sl.fd, st->buf, len, sl.pos) == 0)
        batch_foreach(st->buf, len, st->scratch, ts_cb, &f);
    log_slice_release(&sl);
    return f.offset < 0 ? lso : f.offset;
}

/* The base offset of the last batch below the last stable offset. */
static int64_t offset_last(astream_state *st, partition *p)
{
    int64_t lso = broker_lso(p), start = log_start_offset(p->log);
    if (lso <= start)
        return lso;
    log_slice sl;
    if (log_read(p->log, lso - 1, lso, 1, &sl) < 0)
        return lso;
    uint8_t hdr[BATCH_HEADER_SIZE];
    batch_info bi;
    int64_t off = lso - 1;
    if (sl.len >= BATCH_HEADER_SIZE && pread_all(sl.fd, hdr, sizeof(hdr), sl.pos) == 0 &&
        batch_parse_header(hdr, sizeof(hdr), &bi) == 0)
        off = bi.base_offset < start ? start : bi.base_offset;
    log_slice_release(&sl);
    (void)st;
    return off;
}

/* "<n><unit>" (RabbitMQ's max-age syntax: Y M D h m s) in ms, or -1. */
static int64_t parse_age(cn_str s)
{
    int32_t n = slen(s);
    if (n < 2)
        return -1;
    int64_t v = 0;
    for (int32_t i = 0; i < n - 1; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9' || v > (int64_t)1 << 40)
            return -1;
        v = v * 10 + (s.ptr[i] - '0');
    }
    switch (s.ptr[n - 1]) {
    case 'Y': return v * 365 * 86400000;
    case 'M': return v * 30 * 86400000;
    case 'D': return v * 86400000;
    case 'h': return v * 3600000;
    case 'm': return v * 60000;
    case 's': return v * 1000;
    }
    return -1;
}

astream_cur *asrv__stream_consume_or_reply(asrv_conn *ac, uint16_t ch, aqueue *q,
                                           const amqp_basic_consume *m, uint16_t prefetch)
{
    asrv *as = ac->as;
    cn_str qn = {q->name, q->name_len};
    if (m->no_ack) {
        asrv__conn_error(ac, AMQP_NOT_IMPLEMENTED, AMQP_CLASS_BASIC, 20,
                         "automatic acknowledgement not supported by stream queue '%.*s' in "
                         "vhost '/'", SARG(qn));
        return NULL;
    }
    if (!prefetch) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 20,
                         "consumer prefetch count is not set for stream queue '%.*s' in "
                         "vhost '/'", SARG(qn));
        return NULL;
    }
    int spec = SPEC_NEXT;
    int64_t arg = 0;
    amqp_value v;
    int rc = amqp_table_get(m->arguments, "x-stream-offset", &v);
    if (rc == 0) {
        int64_t iv;
        if (v.tag == AMQP_T_LONGSTR && str_is(v.u.str, "first")) {
            spec = SPEC_FIRST;
        } else if (v.tag == AMQP_T_LONGSTR && str_is(v.u.str, "last")) {
            spec = SPEC_LAST;
        } else if (v.tag == AMQP_T_LONGSTR && str_is(v.u.str, "next")) {
            spec = SPEC_NEXT;
        } else if (v.tag == AMQP_T_TIMESTAMP && v.u.ts < (uint64_t)INT64_MAX / 1000) {
            spec = SPEC_TIME;
            arg = (int64_t)v.u.ts * 1000;
        } else if (amqp_value_int(&v, &iv) == 0 && iv >= 0) {
            spec = SPEC_OFFSET;
            arg = iv;
        } else if (v.tag == AMQP_T_LONGSTR && parse_age(v.u.str) >= 0) {
            spec = SPEC_TIME;
            arg = loop_wall_ms() - parse_age(v.u.str);
        } else {
            asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_BASIC, 20,
                             "invalid x-stream-offset for stream queue '%.*s' (first, last, "
                             "next, an offset, a timestamp or an interval like 1D)", SARG(qn));
            return NULL;
        }
    }
    topic *t = stream_topic(as, q, 1);
    if (!t) {
        asrv__conn_error(ac, AMQP_INTERNAL_ERROR, AMQP_CLASS_BASIC, 20,
                         "the topic of stream queue '%.*s' is missing and cannot be created",
                         SARG(qn));
        return NULL;
    }
    astream_cur *cur = xcalloc(1, sizeof(*cur));
    cur->bad_part = -1;
    cur->topic_id = t->id;
    cur->n_pos = t->n_parts;
    cur->pos = xcalloc((size_t)t->n_parts, sizeof(*cur->pos));
    for (int32_t i = 0; i < t->n_parts; i++) {
        partition *p = t->parts[i];
        int64_t start = log_start_offset(p->log), lso = broker_lso(p);
        int64_t hw = log_high_watermark(p->log);
        switch (spec) {
        case SPEC_FIRST: cur->pos[i] = start; break;
        case SPEC_LAST: cur->pos[i] = offset_last(as->stream, p); break;
        case SPEC_NEXT: cur->pos[i] = lso; break;
        case SPEC_OFFSET: cur->pos[i] = arg < start ? start : CN_MIN(arg, hw); break;
        case SPEC_TIME: cur->pos[i] = offset_for_time(as->stream, p, arg); break;
        }
    }
    return cur;
}

/* Publish ------------------------------------------------------------------ */

void asrv__stream_publish(asrv *as, aqueue *q, amsg *m, astored *st)
{
    topic *t = stream_topic(as, q, 1);
    if (!t || t->n_parts < 1) {
        st->failed = 1;
        return;
    }
    int32_t kl = slen(m->routing_key);
    int32_t part = kl ? broker_key_partition(m->routing_key.ptr, (size_t)kl, t->n_parts)
                      : (int32_t)(as->stream->rr++ % (uint32_t)t->n_parts);
    partition *p = t->parts[part];
    int64_t now = loop_wall_ms();
    uint8_t *batch;
    size_t len;
    if (asrv__stream_msg_batch(m, now, &batch, &len) < 0) {
        slog_warn("amqp: stream '%s': cannot build a record of %zu bytes", q->name, m->body_len);
        st->failed = 1;
        return;
    }
    int rc = len > (size_t)t->cfg.max_message_bytes ? -CN_ERANGE : 0;
    if (rc == 0 && t->cfg.ts_type == TS_LOG_APPEND_TIME)
        batch_set_log_append_time(batch, len, now);
    int64_t base = -1;
    if (rc == 0)
        rc = broker_produce(as->core->b, p, batch, len, &base);
    free(batch);
    if (rc < 0) {
        slog_warn("amqp: stream '%s': append to partition %d failed (%s)", q->name, part,
                  cn_strerror(rc));
        st->failed = 1;
        return;
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4;
        st->p = xrealloc(st->p, (size_t)st->cap * sizeof(*st->p));
        st->target = xrealloc(st->target, (size_t)st->cap * sizeof(*st->target));
    }
    st->p[st->n] = p;
    st->target[st->n++] = base + 1;
}

/* Life -------------------------------------------------------------------- */

void asrv__stream_init(asrv *as)
{
    astream_state *st = xcalloc(1, sizeof(*st));
    st->as = as;
    st->scratch = batch_scratch_new();
    st->appends.cb = on_appends;
    as->stream = st;
    broker_listen_appends(as->core->b, &st->appends);
}

void asrv__stream_fini(asrv *as)
{
    astream_state *st = as->stream;
    if (!st)
        return;
    broker_unlisten_appends(as->core->b, &st->appends);
    batch_scratch_free(st->scratch);
    free(st->buf);
    free(st->ab);
    free(st);
    as->stream = NULL;
}
