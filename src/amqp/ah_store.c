/* Durable queue storage (docs/amqp-plan.md "Queue storage").
 *
 * A durable (non-exclusive) queue has an internal partition
 * `__amqp_q-<queue id>` (broker_internal_partition; the prefix is reserved
 * in broker_topic_name_reserved). Every persistent message (delivery_mode 2)
 * routed to it is appended as one record: key = routing key, value = body,
 * timestamp = publish time (wall ms), and two record headers:
 * `amqp.exchange` (the exchange it was published to) and `amqp.properties`
 * (the content header payload as the publisher sent it: class id, weight,
 * body size, property flags and properties). Transient messages stay in
 * memory (lost at a restart, as RabbitMQ loses them). The queue's ready
 * messages are served from memory (ah_queue.c's ring); the partition is
 * what a restart reads back.
 *
 * Ack state: the floor (every stored offset below it is acked or dropped)
 * and the settled offsets above it. Changes mark the queue dirty; once per
 * loop iteration (a 0 ms timer) each dirty queue's state is written to
 * __amqp_meta as one record, and the partition is trimmed below the floor
 * (log_delete_before, whole segments). The record reaches the disk with the
 * kvlog's next fsync (log.flush.interval.ms): after a crash, acks from the
 * last window may come back as deliveries; an acked message never comes back
 * after a clean shutdown (it syncs).
 *   ack state key:   int8 'A', str vhost "/", int64 queue id
 *             value: int8 version 2, int64 floor, int32 n, n x int64 offset,
 *                    int64 delivered end
 * (big-endian, util/bin.h). The delivered end (ah_redeliver.c) is one past
 * the highest stored offset ever handed to a client: every offset below it
 * may have been delivered. Version 1 records (written before it existed) are
 * the same without it and still load, with delivered end 0.
 *
 * At start (asrv__store_open, after __amqp_meta's replay) the partition is
 * read from max(floor, log start) to its end; records at settled offsets are
 * skipped, the others become ready messages again, in offset order, with
 * redelivered 1 below the delivered end and 0 from it on, their enqueue
 * time being the record timestamp (TTLs keep counting, ah_qx.c). Messages
 * dropped, expired or dead-lettered by the queue arguments are settled
 * like acked ones.
 *
 * A power loss can cut the partition's unsynced tail while the kvlog kept
 * a later ack state (each file keeps its own unsynced tail): the floor, the
 * settled offsets or the delivered end may then lie past the partition's
 * end, at offsets that new messages will reuse. Open clamps them to the end
 * and, when it did, writes and fsyncs the record before anything is
 * appended, else a new confirmed message at a reused offset would count as
 * settled at the next start.
 *
 * queue.delete drops the partition (broker_internal_partition_drop: closed,
 * directory removed) and tombstones the ack state.
 *
 * In a cluster (ah_cluster.c) the partition is a Raft group's log
 * (broker_internal_partition_voters, with the voters of the queue's record)
 * and __amqp_meta is replicated: an append is a Raft entry, a confirm waits
 * for its commit (a majority's fsync), the trim below the floor moves the
 * log start through the group (broker_delete_records), a power loss cannot
 * cut what was committed, and queue.delete only writes the tombstones: every
 * node, this one too, drops the log once it sees the queue's tombstone
 * committed. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amqp/amqp_int.h"
#include "kvlog/kvlog.h"
#include "log/log.h"
#include "record/batch.h"
#include "util/bin.h"
#include "util/common.h"
#include "util/slog.h"

#define STORE_READ_BYTES ((int64_t)1 << 20)

static void part_name(const aqueue *q, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%llu", BROKER_AMQP_QUEUE_PREFIX, (unsigned long long)q->id);
}

/* Acked set ------------------------------------------------------------------ */

/* Index of the first settled offset >= off (n_acked when none). */
static size_t acked_lower_bound(const aqueue *q, int64_t off)
{
    size_t lo = 0, hi = q->n_acked;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (q->acked[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void acked_insert(aqueue *q, int64_t off)
{
    size_t lo = acked_lower_bound(q, off);
    if (lo < q->n_acked && q->acked[lo] == off)
        return;
    if (q->n_acked == q->cap_acked) {
        q->cap_acked = q->cap_acked ? q->cap_acked * 2 : 16;
        q->acked = xrealloc(q->acked, q->cap_acked * sizeof(*q->acked));
    }
    memmove(q->acked + lo + 1, q->acked + lo, (q->n_acked - lo) * sizeof(*q->acked));
    q->acked[lo] = off;
    q->n_acked++;
}

static int acked_has(const aqueue *q, int64_t off)
{
    size_t lo = acked_lower_bound(q, off);
    return lo < q->n_acked && q->acked[lo] == off;
}

/* Move the floor over settled offsets (and drop those from the set). */
static void advance_floor(aqueue *q)
{
    size_t i = 0;
    while (i < q->n_acked && q->acked[i] <= q->floor) {
        if (q->acked[i] == q->floor)
            q->floor++;
        i++;
    }
    if (i) {
        memmove(q->acked, q->acked + i, (q->n_acked - i) * sizeof(*q->acked));
        q->n_acked -= i;
    }
}

void asrv__store_dirty(asrv *as, aqueue *q)
{
    q->dirty = 1;
    if (!as->flush_armed) {
        as->flush_armed = 1;
        loop_timer_start(as->l, &as->flush, 0);
    }
}

void asrv__store_settled(asrv *as, aqueue *q, int64_t off)
{
    if (!q->p || off < 0 || off < q->floor)
        return;
    acked_insert(q, off);
    advance_floor(q);
    asrv__store_dirty(as, q);
}

/* Ack-state records -------------------------------------------------------------- */

static void ack_key(wbuf *k, uint64_t qid)
{
    bin_put_i8(k, 'A');
    bin_put_str(k, cn_str_c("/"));
    bin_put_i64(k, (int64_t)qid);
}

void asrv__store_ack_record(const aqueue *q, wbuf *k, wbuf *v)
{
    ack_key(k, q->id);
    /* version 2: int8 2, int64 floor, int32 n, n x int64 settled offset,
     * int64 delivered end (the layout in the file header) */
    bin_put_i8(v, 2);
    bin_put_i64(v, q->floor);
    bin_put_i32(v, (int32_t)q->n_acked);
    for (size_t i = 0; i < q->n_acked; i++)
        bin_put_i64(v, q->acked[i]);
    bin_put_i64(v, q->dend);
}

static void on_trimmed(durable_wait *w, int status)
{
    aqueue *q = (aqueue *)(void *)((char *)w - offsetof(aqueue, trim_w));
    q->trimming = 0;
    if (status < 0)
        slog_debug("amqp: queue '%s': trim not confirmed (%s)", q->name, cn_strerror(status));
}

static void write_acks(asrv *as, aqueue *q)
{
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    asrv__store_ack_record(q, &k, &v);
    asrv__meta_write(as, k.buf, k.len, v.buf, (int32_t)v.len);
    q->dend_written = q->dend;
    wbuf_fini(&k);
    wbuf_fini(&v);
    /* Trim whole segments below the floor (their messages are all settled). */
    if (q->floor <= log_start_offset(q->p->log) || q->floor > log_high_watermark(q->p->log))
        return;
    if (as->cl) {
        /* Only when a whole segment goes: each move is an entry of the
         * queue's log, and appends wait while it syncs (rg_submit). */
        int64_t next = log_second_segment_base(q->p->log);
        if (q->trimming || next < 0 || q->floor < next)
            return; /* the next write after it trims further */
        q->trimming = 1;
        q->trim_w.cb = on_trimmed;
        int rc = broker_delete_records(as->core->b, q->p, q->floor, &q->trim_w);
        if (rc < 0) {
            q->trimming = 0;
            slog_warn("amqp: queue '%s': trimming below offset %lld failed (%s)", q->name,
                      (long long)q->floor, cn_strerror(rc));
        }
    } else {
        int rc = log_delete_before(q->p->log, q->floor);
        if (rc < 0)
            slog_warn("amqp: queue '%s': trimming below offset %lld failed (%s)", q->name,
                      (long long)q->floor, cn_strerror(rc));
    }
}

void asrv__store_forget(aqueue *q)
{
    if (q->trimming && q->p)
        broker_wait_cancel(q->p, &q->trim_w);
    q->trimming = 0;
    q->p = NULL;
}

void asrv__store_flush(asrv *as)
{
    do {
        for (int i = 0; i < as->n_q; i++) {
            aqueue *q = as->q[i];
            if (q->dirty && q->p && !q->deleted) {
                q->dirty = 0;
                write_acks(as, q);
            }
        }
        /* Deliveries that waited for their delivered mark (ah_redeliver.c);
         * releasing them can hold new ones. */
        asrv__redeliver_release(as);
    } while (as->n_held);
}

static void on_flush(loop_timer *t)
{
    asrv *as = t->data;
    as->flush_armed = 0;
    asrv__store_flush(as);
}

int asrv__store_replay_acks(asrv *as, uint64_t qid, const uint8_t *v, int32_t len)
{
    aqueue *q = NULL;
    for (int i = 0; i < as->n_q && !q; i++)
        if (as->q[i]->id == qid)
            q = as->q[i];
    if (!q)
        return 0; /* the queue went before (tombstone replayed earlier) */
    q->n_acked = 0;
    q->floor = 0;
    q->dend = q->dend_written = 0;
    if (!v)
        return 0;
    bin_reader r;
    bin_reader_init(&r, v, (size_t)len);
    int version = bin_i8(&r);
    if (version != 1 && version != 2)
        return -1;
    int64_t floor = bin_i64(&r);
    int32_t n = bin_i32(&r);
    size_t tail = version == 2 ? 8 : 0; /* the delivered end */
    if (r.err || n < 0 || (size_t)n * 8 + tail != bin_remaining(&r))
        return -1;
    q->floor = floor;
    for (int32_t i = 0; i < n; i++)
        acked_insert(q, bin_i64(&r));
    if (version == 2) {
        int64_t dend = bin_i64(&r);
        q->dend = q->dend_written = dend > 0 ? dend : 0;
    }
    return 0;
}

/* Append ----------------------------------------------------------------------- */

void asrv__stored_add(astored *st, partition *p, int64_t target)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4;
        st->p = xrealloc(st->p, (size_t)st->cap * sizeof(*st->p));
        st->target = xrealloc(st->target, (size_t)st->cap * sizeof(*st->target));
    }
    st->p[st->n] = p;
    st->target[st->n++] = target;
}

/* A confirmed message must survive a power loss, and so must the queue that
 * holds it: without its declare record the partition is an orphan at the
 * next start. The wait is needed only until __amqp_meta's first sync after
 * the declare (then q->meta_end is 0). */
void asrv__store_meta_wait(asrv *as, aqueue *q, astored *st)
{
    if (!q->meta_end || !as->meta)
        return;
    partition *mp = kvl_partition(as->meta);
    int64_t done = as->cl ? log_high_watermark(mp->log) : log_durable_offset(mp->log);
    if (done >= q->meta_end) {
        q->meta_end = 0;
        return;
    }
    for (int i = 0; i < st->n; i++) {
        if (st->p[i] == mp) {
            if (st->target[i] < q->meta_end)
                st->target[i] = q->meta_end;
            return;
        }
    }
    asrv__stored_add(st, mp, q->meta_end);
}

int64_t asrv__store_append(asrv *as, aqueue *q, const amsg *m)
{
    batch_header h[2] = {
        {"amqp.exchange", 13, m->exchange.ptr ? m->exchange.ptr : "", m->exchange.len},
        {"amqp.properties", 15, m->hdr, (int32_t)m->hdr_len},
    };
    batch_build_rec rec = {m->routing_key.ptr ? m->routing_key.ptr : "", m->routing_key.len,
                           m->body_len ? (const void *)m->body : "", (int32_t)m->body_len,
                           loop_wall_ms(), h, 2};
    uint8_t *batch;
    size_t len;
    if (batch_build(&rec, 1, BATCH_COMPRESSION_NONE, 0, &batch, &len) < 0) {
        slog_error("amqp: queue '%s': cannot build a record of %zu bytes", q->name, m->body_len);
        return -1;
    }
    int64_t base;
    int rc = broker_append(as->core->b, q->p, batch, len, &base);
    free(batch);
    if (rc == 0)
        asrv__disk_wrote(as, len); /* resource alarms: the disk check comes sooner */
    if (rc < 0) {
        slog_error("amqp: queue '%s': append failed (%s): the message is kept in memory only",
                   q->name, cn_strerror(rc));
        return -1;
    }
    return base;
}

/* Open and recover ------------------------------------------------------------ */

typedef struct load_ctx {
    aqueue *q;
    int64_t n;
    asrv *as;                    /* resource alarms: loaded messages are counted */
} load_ctx;

static int load_record(const batch_record *r, void *arg)
{
    load_ctx *lc = arg;
    aqueue *q = lc->q;
    if (r->offset < q->floor || acked_has(q, r->offset))
        return 0;
    cn_str exch = {"", 0};
    const uint8_t *props = NULL;
    int32_t props_len = -1;
    const uint8_t *p = r->headers, *end = r->headers + r->headers_len;
    batch_header h;
    while (batch_header_next(&p, end, &h) == 1) {
        if (h.key_len == 13 && memcmp(h.key, "amqp.exchange", 13) == 0 && h.value_len >= 0)
            exch = (cn_str){h.value, h.value_len};
        else if (h.key_len == 15 && memcmp(h.key, "amqp.properties", 15) == 0)
            props = h.value, props_len = h.value_len;
    }
    if (!props || props_len < 0 || r->key_len < 0 || r->value_len < 0) {
        slog_warn("amqp: queue '%s': record at offset %lld is not a message; skipped", q->name,
                  (long long)r->offset);
        return 0;
    }
    amsg *m = xcalloc(1, sizeof(*m));
    m->refs = 1;
    size_t xl = (size_t)(exch.len > 255 ? 255 : exch.len), kl = (size_t)r->key_len;
    m->buf = xmalloc(xl + kl + 1);
    if (xl)
        memcpy(m->buf, exch.ptr, xl);
    if (kl)
        memcpy(m->buf + xl, r->key, kl);
    m->exchange = (cn_str){m->buf, (int32_t)xl};
    m->routing_key = (cn_str){m->buf + xl, (int32_t)kl};
    m->hdr = xmalloc((size_t)props_len + 1);
    memcpy(m->hdr, props, (size_t)props_len);
    m->hdr_len = (size_t)props_len;
    m->body = xmalloc((size_t)r->value_len + 1);
    if (r->value_len)
        memcpy(m->body, r->value, (size_t)r->value_len);
    m->body_len = (size_t)r->value_len;
    m->persistent = 1;
    asrv__msg_props(m); /* priority, expiration; TTLs count from the append */
    asrv__mem_charge(lc->as, m);
    asrv__queue_push_t(q, m, r->offset < q->dend, 0, r->offset, r->timestamp);
    amsg_unref(m);
    lc->n++;
    return 0;
}

/* The ack state may refer to offsets past the partition's end after a power
 * loss (file header): forget those and make that durable now, before a new
 * message can reuse one of those offsets. */
static void clamp_to_end(asrv *as, aqueue *q, int64_t end)
{
    int changed = 0;
    if (q->floor > end) {
        q->floor = end;
        changed = 1;
    }
    size_t n = acked_lower_bound(q, end);
    if (n < q->n_acked) {
        q->n_acked = n;
        changed = 1;
    }
    if (q->dend > end) {
        q->dend = end;
        changed = 1;
    }
    if (!changed)
        return;
    slog_warn("amqp: queue '%s': its ack state went past the end of its partition (%lld): "
              "a power loss cut the partition; ack state cut back to it", q->name,
              (long long)end);
    write_acks(as, q);
    /* In a cluster the load waits for this record's commit before serving
     * (ah_cluster.c). */
    if (as->meta && !as->cl) {
        int rc = log_partition_sync_now(kvl_partition(as->meta)->log);
        if (rc < 0)
            slog_error("amqp: queue '%s': syncing %s failed (%s)", q->name,
                       BROKER_AMQP_META_TOPIC, cn_strerror(rc));
    }
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

int asrv__store_open(asrv *as, aqueue *q, int first)
{
    if (q->stream)
        return 0; /* its data is its topic (ah_stream.c) */
    char name[64];
    part_name(q, name, sizeof(name));
    int rc;
    if (as->cl) {
        if (!q->n_voters)
            asrv__cluster_voters(as, q); /* a record of a single node's days */
        rc = broker_internal_partition_voters(as->core->b, name, q->voters, q->n_voters, first,
                                              &q->p);
    } else {
        rc = broker_internal_partition(as->core->b, name, &q->p);
    }
    if (rc < 0) {
        slog_error("amqp: queue '%s': cannot open its partition %s (%s): its messages are "
                   "kept in memory only", q->name, name, cn_strerror(rc));
        q->p = NULL;
        return rc;
    }
    log_partition *lp = q->p->log;
    int64_t start = log_start_offset(lp), end = log_high_watermark(lp);
    if (q->floor < start)
        q->floor = start;
    advance_floor(q);
    clamp_to_end(as, q, end);
    load_ctx lc = {q, 0, as};
    batch_scratch *s = batch_scratch_new();
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t off = q->floor;
    while (off < end) {
        log_slice sl;
        rc = log_read(lp, off, end, STORE_READ_BYTES, &sl);
        if (rc < 0 || sl.len == 0) {
            if (rc < 0)
                slog_error("amqp: queue '%s': reading %s at offset %lld failed (%s)", q->name,
                           name, (long long)off, cn_strerror(rc));
            log_slice_release(&sl);
            break;
        }
        size_t len = (size_t)sl.len;
        if (len > cap) {
            free(buf);
            buf = xmalloc(len);
            cap = len;
        }
        rc = pread_all(sl.fd, buf, len, sl.pos);
        log_slice_release(&sl);
        if (rc < 0) {
            slog_error("amqp: queue '%s': pread of %s failed", q->name, name);
            break;
        }
        size_t pos = 0;
        int64_t next = off;
        while (pos + BATCH_HEADER_SIZE <= len) {
            batch_info bi;
            if (batch_parse_header(buf + pos, len - pos, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + 12;
            if (pos + total > len)
                break;
            if (!bi.control)
                batch_foreach(buf + pos, total, s, load_record, &lc);
            next = bi.base_offset + bi.last_offset_delta + 1;
            pos += total;
        }
        if (next <= off)
            break; /* no progress: damaged data */
        off = next;
    }
    free(buf);
    batch_scratch_free(s);
    if (lc.n)
        slog_info("amqp: queue '%s': %lld message(s) recovered from %s", q->name,
                  (long long)lc.n, name);
    return 0;
}

void asrv__store_drop(asrv *as, aqueue *q)
{
    if (!q->p)
        return;
    wbuf k;
    wbuf_init(&k);
    ack_key(&k, q->id);
    asrv__meta_write(as, k.buf, k.len, NULL, -1);
    wbuf_fini(&k);
    if (as->cl) {
        asrv__store_forget(q); /* dropped on the tombstone's commit (ah_cluster.c) */
        return;
    }
    char name[64];
    part_name(q, name, sizeof(name));
    broker_internal_partition_drop(as->core->b, name);
    q->p = NULL;
}

void asrv__store_init(asrv *as)
{
    loop_timer_init(&as->flush, on_flush, as);
}

void asrv__store_fini(asrv *as)
{
    loop_timer_stop(as->l, &as->flush);
    as->flush_armed = 0;
}
