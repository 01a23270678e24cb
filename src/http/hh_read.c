/* Read one partition over HTTP, with long poll:
 * GET /topics/{topic}/partitions/{p}/records?offset=&max_bytes=&timeout_ms=
 *
 *   offset      first offset wanted (default: the log start offset); below
 *               the log start or above the high watermark: 400
 *               offset_out_of_range (the answer carries both bounds)
 *   max_bytes   about how many bytes of stored batches to decode (default
 *               1 MiB, 1..16 MiB; the first batch is returned whole, KIP-74)
 *   timeout_ms  how long to wait when nothing is there yet (default 0,
 *               at most 300000)
 *
 * 200 {"topic", "partition", "records": [...], "next_offset",
 * "high_watermark", "last_stable_offset", "log_start_offset"}; each record
 * in hh_records.c's form. Only committed data is served, as a Kafka
 * consumer with isolation.level=read_committed sees it (kh_fetch's rule):
 * reads stop at the last stable offset (the high watermark when no
 * transaction is open), control batches and batches of aborted
 * transactions (pst_aborted_in) are skipped. next_offset is where the next
 * read should start (past skipped batches too).
 *
 * Long poll: with nothing committed at offset and timeout_ms > 0 the request
 * is parked (in its slot's arena) on the front end's list; the broker's
 * append listener (broker_listen_appends) re-checks every parked read after
 * each loop iteration that appended anything, and a parked read is answered
 * when its partition's last stable offset passes its offset, or with an
 * empty list at its timeout, or with 404 when its topic was deleted (or
 * recreated: the topic id is kept). Nothing is read until then. At shutdown
 * parked reads are answered with what is there (hh_read_fini).
 *
 * Records are decoded from a private copy of the slice (pread; the JSON
 * answer is built from it), unlike Kafka's zero-copy sendfile. Errors:
 * 404 unknown_topic / unknown_partition, 400 invalid_partition /
 * invalid_parameter / offset_out_of_range, 500 storage_error (unreadable
 * or corrupt data at the offset). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/hh_slice.h"
#include "http/http_int.h"
#include "util/slog.h"

#define READ_DEFAULT_BYTES ((int64_t)1 << 20)
#define READ_MAX_BYTES ((int64_t)16 << 20)
#define READ_MAX_TIMEOUT_MS 300000
#define READ_KEEP_BUF ((size_t)4 << 20) /* larger slice buffers are freed after use */

typedef struct read_park {
    struct read_park *next, *prev;
    struct hh_read_state *st;
    hreq *q;
    cn_uuid topic_id;
    int32_t part;
    int64_t offset;
    int64_t max_bytes;
    loop_timer timer;
} read_park;

struct hh_read_state {
    broker_listener appends;     /* first: the callback casts back */
    hsrv *hs;
    read_park *head;
    hh_slice sl;                 /* the slice being decoded */
};

typedef struct decode_ctx {
    json_t *arr;
    int64_t from;
    int32_t part;
    int64_t n;
    batch_scratch *scratch;
    const char *tname;
} decode_ctx;

static int decode_one(const batch_record *r, void *arg)
{
    decode_ctx *d = arg;
    if (r->offset >= d->from) {
        json_array_append_new(d->arr, hh_record_json(r, d->part));
        d->n++;
    }
    return 0;
}

static int decode_batch(void *arg, const uint8_t *b, size_t len, const batch_info *bi, int deliver)
{
    decode_ctx *d = arg;
    if (!deliver)
        return 0;
    int rc = batch_foreach(b, len, d->scratch, decode_one, d);
    if (rc < 0)
        slog_warn("http: %s-%d: batch at offset %lld does not decode (%s); skipped", d->tname,
                  d->part, (long long)bi->base_offset, cn_strerror(rc));
    return 0;
}

/* Answer q with the committed records of p from offset (at most about
 * max_bytes of batches). */
static void read_respond(struct hh_read_state *st, hreq *q, topic *t, partition *p,
                         int64_t offset, int64_t max_bytes)
{
    int64_t start = log_start_offset(p->log);
    int64_t pos = offset < start ? start : offset; /* retention passed a parked read */
    int64_t limit = broker_lso(p);
    decode_ctx d = {json_array(), pos, p->id, 0, st->sl.scratch, t->name};
    int64_t used = 0;
    while (pos < limit && used < max_bytes) {
        int64_t next;
        int64_t n = hh_slice_read(&st->sl, p, pos, limit, max_bytes - used, decode_batch, &d,
                                  &next);
        if (n < 0) {
            if (d.n > 0)
                break; /* serve what was read; the next read reports it */
            json_decref(d.arr);
            hh_error(q, 500, "storage_error", "%s-%d: cannot read at offset %lld (%s)", t->name,
                     p->id, (long long)pos, cn_strerror((int)n));
            return;
        }
        if (n == 0 || next <= pos)
            break; /* nothing more, or no progress */
        used += n;
        pos = next;
    }
    p->read_records += d.n;
    hh_slice_trim(&st->sl, READ_KEEP_BUF);
    json_t *j = json_object();
    json_object_set_new(j, "topic", json_string(t->name));
    json_object_set_new(j, "partition", json_integer(p->id));
    json_object_set_new(j, "records", d.arr);
    json_object_set_new(j, "next_offset", json_integer(pos));
    json_object_set_new(j, "high_watermark", json_integer(log_high_watermark(p->log)));
    json_object_set_new(j, "last_stable_offset", json_integer(limit));
    json_object_set_new(j, "log_start_offset", json_integer(log_start_offset(p->log)));
    hh_reply_json(q, 200, j);
}

/* Long poll ------------------------------------------------------------------ */

static void park_unlink(read_park *rp)
{
    struct hh_read_state *st = rp->st;
    if (rp->prev)
        rp->prev->next = rp->next;
    else
        st->head = rp->next;
    if (rp->next)
        rp->next->prev = rp->prev;
    rp->next = rp->prev = NULL;
    loop_timer_stop(st->hs->l, &rp->timer);
}

/* The parked read's partition, or NULL when its topic is gone (or was
 * recreated under the same name). */
static partition *park_partition(read_park *rp, topic **out_t)
{
    topic *t = broker_topic_find(rp->st->hs->b, cn_str_c(rp->q->seg[1]));
    if (!t || memcmp(&t->id, &rp->topic_id, sizeof(t->id)) != 0 || rp->part >= t->n_parts)
        return NULL;
    *out_t = t;
    return t->parts[rp->part];
}

static void park_answer(read_park *rp)
{
    park_unlink(rp);
    topic *t = NULL;
    partition *p = park_partition(rp, &t);
    if (!p) {
        hh_error(rp->q, 404, "unknown_topic", "topic '%s' was deleted while the read waited",
                 rp->q->seg[1]);
        return;
    }
    read_respond(rp->st, rp->q, t, p, rp->offset, rp->max_bytes);
}

static void park_timeout(loop_timer *tm) { park_answer(tm->data); }

static void on_appends(broker_listener *l)
{
    struct hh_read_state *st = (struct hh_read_state *)l;
    read_park *rp = st->head;
    while (rp) {
        read_park *next = rp->next;
        topic *t = NULL;
        partition *p = park_partition(rp, &t);
        if (!p || broker_lso(p) > rp->offset)
            park_answer(rp);
        rp = next;
    }
}

void hh_read_init(hsrv *hs)
{
    struct hh_read_state *st = xcalloc(1, sizeof(*st));
    st->hs = hs;
    hh_slice_init(&st->sl);
    st->appends.cb = on_appends;
    hs->read = st;
    broker_listen_appends(hs->b, &st->appends);
}

void hh_read_fini(hsrv *hs)
{
    struct hh_read_state *st = hs->read;
    if (!st)
        return;
    while (st->head)
        park_answer(st->head);
    broker_unlisten_appends(hs->b, &st->appends);
    hh_slice_fini(&st->sl);
    free(st);
    hs->read = NULL;
}

/* The handler ------------------------------------------------------------------ */

void hh_read(hreq *q)
{
    struct hh_read_state *st = q->hs->read;
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    const char *ps = q->seg[3];
    char *end;
    long pid = strtol(ps, &end, 10);
    if (!ps[0] || *end || pid < 0 || pid > INT32_MAX || (ps[0] < '0' || ps[0] > '9')) {
        hh_error(q, 400, "invalid_partition", "partition '%s' is not a non-negative integer", ps);
        return;
    }
    if (pid >= t->n_parts) {
        hh_error(q, 404, "unknown_partition", "topic '%s' has %d partition(s); %ld does not exist",
                 t->name, t->n_parts, pid);
        return;
    }
    partition *p = t->parts[pid];
    if (p->remote) {
        /* A cluster node without a replica of it holds none of its records. */
        json_t *extra = json_object();
        json_object_set_new(extra, "leader", json_integer(broker_partition_leader(p)));
        hh_error_obj(q, 421, "not_leader", extra, "this node holds no replica of %s-%ld: read "
                     "it from its leader", t->name, pid);
        return;
    }
    int64_t start = log_start_offset(p->log), hw = log_high_watermark(p->log);
    int64_t offset, max_bytes, timeout_ms;
    if (hh_query_i64_or_reply(q, "offset", start, 0, INT64_MAX, &offset) < 0 ||
        hh_query_i64_or_reply(q, "max_bytes", READ_DEFAULT_BYTES, 1, READ_MAX_BYTES,
                              &max_bytes) < 0 ||
        hh_query_i64_or_reply(q, "timeout_ms", 0, 0, READ_MAX_TIMEOUT_MS, &timeout_ms) < 0)
        return;
    if (offset < start || offset > hw) {
        json_t *extra = json_object();
        json_object_set_new(extra, "log_start_offset", json_integer(start));
        json_object_set_new(extra, "high_watermark", json_integer(hw));
        hh_error_obj(q, 400, "offset_out_of_range", extra, "offset %lld is outside [%lld, %lld] "
                     "of %s-%ld", (long long)offset, (long long)start, (long long)hw, t->name,
                     pid);
        return;
    }
    if (timeout_ms == 0 || broker_lso(p) > offset) {
        read_respond(st, q, t, p, offset, max_bytes);
        return;
    }
    read_park *rp = hh_alloc(q, sizeof(*rp));
    rp->st = st;
    rp->q = q;
    rp->topic_id = t->id;
    rp->part = (int32_t)pid;
    rp->offset = offset;
    rp->max_bytes = max_bytes;
    rp->next = st->head;
    if (st->head)
        st->head->prev = rp;
    st->head = rp;
    loop_timer_init(&rp->timer, park_timeout, rp);
    loop_timer_start(q->hs->l, &rp->timer, timeout_ms);
}
