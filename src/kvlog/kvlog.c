/* Internal key-value log: open and close, the batch builder, append,
 * durability waits and compaction (contract and framing in kvlog.h; replay
 * in kvlog_replay.c).
 *
 * Compaction keeps one invariant: the log start moves only to the first
 * offset of a complete, fsynced copy of the live state. compact_from is that
 * offset; cw waits for the copy's fsync; log_bytes restarts at 0 when the
 * copy begins, so it counts the copy plus what came after it. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kvlog/kvlog_int.h"
#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

/* Open / close ------------------------------------------------------------ */

static int replay(kvl *l)
{
    l->scratch = batch_scratch_new();
    int rc = kvl__replay(l);
    batch_scratch_free(l->scratch);
    l->scratch = NULL;
    return rc;
}

static int open_common(broker *b, const char *name, int replicated, const kvl_ops *ops,
                       void *arg, kvl **out)
{
    *out = NULL;
    CN_ASSERT(ops->on_record);
    if (!broker_topic_name_reserved(cn_str_c(name)))
        return -CN_EINVAL;
    partition *p = NULL;
    int rc = replicated ? broker_internal_partition_replicated(b, name, &p)
                        : broker_internal_partition(b, name, &p);
    if (rc < 0)
        return rc;
    kvl *l = xcalloc(1, sizeof(*l));
    l->b = b;
    l->p = p;
    l->name = xstrdup(name);
    l->ops = *ops;
    l->arg = arg;
    l->replicated = replicated;
    if (!replicated) {
        rc = replay(l);
        if (rc < 0) {
            kvl_close(l);
            return rc;
        }
    }
    *out = l;
    return 0;
}

int kvl_open(broker *b, const char *name, const kvl_ops *ops, void *arg, kvl **out)
{
    return open_common(b, name, 0, ops, arg, out);
}

int kvl_open_replicated(broker *b, const char *name, const kvl_ops *ops, void *arg, kvl **out)
{
    return open_common(b, name, 1, ops, arg, out);
}

int kvl_replay(kvl *l)
{
    l->log_bytes = 0;
    l->replayed = 0;
    l->skipped = 0;
    return replay(l);
}

int kvl_serving(kvl *l)
{
    return broker_partition_serving(l->p);
}

int64_t kvl_term(const kvl *l)
{
    return broker_partition_epoch(l->p);
}

int kvl_replicated(const kvl *l)
{
    return l->replicated;
}

void kvl_close(kvl *l)
{
    if (!l)
        return;
    if (l->compacting) {
        /* the broker outlives us: whichever wait is parked */
        broker_wait_cancel(l->p, &l->cw);
        broker_wait_cancel(l->p, &l->sw);
    }
    batch_scratch_free(l->scratch);
    free(l->name);
    free(l);
}

partition *kvl_partition(kvl *l)
{
    return l->p;
}

int64_t kvl_end(const kvl *l)
{
    return log_end_offset(l->p->log);
}

/* Batches ------------------------------------------------------------------ */

void kvl_batch_init(kvl_batch *bt)
{
    memset(bt, 0, sizeof(*bt));
}

void kvl_batch_fini(kvl_batch *bt)
{
    free(bt->buf);
    free(bt->recs);
    memset(bt, 0, sizeof(*bt));
}

void kvl_batch_reset(kvl_batch *bt)
{
    bt->len = 0;
    bt->n = 0;
}

static size_t batch_put(kvl_batch *bt, const void *p, int32_t n)
{
    size_t at = bt->len;
    if (n <= 0)
        return at;
    if (bt->len + (size_t)n > bt->cap) {
        size_t cap = bt->cap ? bt->cap : 256;
        while (cap < bt->len + (size_t)n)
            cap *= 2;
        bt->buf = xrealloc(bt->buf, cap);
        bt->cap = cap;
    }
    memcpy(bt->buf + bt->len, p, (size_t)n);
    bt->len += (size_t)n;
    return at;
}

void kvl_batch_add(kvl_batch *bt, const void *key, int32_t key_len, const void *value,
                   int32_t value_len)
{
    CN_ASSERT(key_len >= 0 && value_len >= -1);
    if (bt->n == bt->cap_recs) {
        bt->cap_recs = bt->cap_recs ? bt->cap_recs * 2 : 16;
        bt->recs = xrealloc(bt->recs, (size_t)bt->cap_recs * sizeof(*bt->recs));
    }
    struct kvl__rec *r = &bt->recs[bt->n++];
    r->kl = key_len;
    r->ko = batch_put(bt, key, key_len);
    r->vl = value_len;
    r->vo = batch_put(bt, value, value_len);
}

int kvl_batch_count(const kvl_batch *bt)
{
    return bt->n;
}

size_t kvl_batch_bytes(const kvl_batch *bt)
{
    return bt->len;
}

/* Append ------------------------------------------------------------------- */

int kvl_append(kvl *l, const kvl_batch *bt, int64_t ts, int64_t *out_target)
{
    static const uint8_t none[1];
    if (bt->n > 0) {
        /* Every key is non-null, even an empty one in an empty buffer. */
        const uint8_t *bytes = bt->buf ? bt->buf : none;
        batch_build_rec *recs = xcalloc((size_t)bt->n, sizeof(*recs)); /* no headers */
        for (int i = 0; i < bt->n; i++) {
            const struct kvl__rec *r = &bt->recs[i];
            recs[i].key = bytes + r->ko;
            recs[i].key_len = r->kl;
            recs[i].value = r->vl < 0 ? NULL : bytes + r->vo;
            recs[i].value_len = r->vl;
            recs[i].ts = ts;
        }
        uint8_t *batch = NULL;
        size_t len = 0;
        int rc = batch_build(recs, bt->n, BATCH_COMPRESSION_NONE, 0, &batch, &len);
        free(recs);
        if (rc < 0)
            return -CN_ENOMEM;
        int64_t base = 0;
        rc = broker_append(l->b, l->p, batch, len, &base);
        free(batch);
        if (rc < 0)
            return rc;
        l->log_bytes += (int64_t)len;
    }
    if (out_target)
        *out_target = log_end_offset(l->p->log);
    return 0;
}

void kvl_wait_durable(kvl *l, int64_t target, durable_wait *w,
                      void (*cb)(durable_wait *w, int status))
{
    w->next = NULL;
    w->target = target;
    w->cb = cb;
    broker_wait_durable(l->b, l->p, w);
}

void kvl_wait_cancel(kvl *l, durable_wait *w)
{
    broker_wait_cancel(l->p, w);
}

/* Compaction ------------------------------------------------------------------ */

struct kvl_compaction {
    kvl *l;
    kvl_batch bt;
    int64_t ts;
    int err;                        /* first append error, sticky */
};

static int compaction_flush(kvl_compaction *cx)
{
    if (cx->err == 0)
        cx->err = kvl_append(cx->l, &cx->bt, cx->ts, NULL);
    kvl_batch_reset(&cx->bt);
    return cx->err;
}

int kvl_compact_add(kvl_compaction *cx, const void *key, int32_t key_len, const void *value,
                    int32_t value_len)
{
    if (cx->err)
        return cx->err;
    kvl_batch_add(&cx->bt, key, key_len, value, value_len);
    if (cx->bt.n >= KVL_COMPACT_BATCH_RECS || cx->bt.len >= KVL_COMPACT_BATCH_BYTES)
        return compaction_flush(cx);
    return 0;
}

/* Replicated: every replica has moved its start (or it failed). */
static void start_moved(durable_wait *w, int status)
{
    kvl *l = (kvl *)((char *)w - offsetof(kvl, sw));
    l->compacting = 0;
    if (status < 0)
        slog_warn("%s: compaction's log start not moved to %lld: %s (the copy stays, the next "
                  "compaction tries again)", l->name, (long long)l->compact_from,
                  cn_strerror(status));
    else
        slog_info("%s: compacted, log start %lld (through the group)", l->name,
                  (long long)w->target);
}

/* The copy is durable (replicated: committed): move the log start to it. */
static void compact_durable(durable_wait *w, int status)
{
    kvl *l = (kvl *)((char *)w - offsetof(kvl, cw));
    l->compacting = 0;
    log_partition *lp = l->p->log;
    if (status < 0) {
        slog_error("%s: compaction not finished: %s", l->name, cn_strerror(status));
        return;
    }
    int64_t before = log_start_offset(lp);
    if (l->compact_from <= before)
        return;
    if (l->replicated) {
        /* A raft log's start moves through the group (a log-start entry
         * every replica applies on commit, as DeleteRecords); its segments
         * go by snapshot at the next retention pass. */
        l->compacting = 1;
        l->sw.cb = start_moved;
        int rc = broker_delete_records(l->b, l->p, l->compact_from, &l->sw);
        if (rc < 0) {
            l->compacting = 0;
            slog_warn("%s: compaction's log start not moved: %s", l->name, cn_strerror(rc));
        }
        return;
    }
    int rc = log_delete_before(lp, l->compact_from);
    if (rc < 0) {
        slog_error("%s: compaction could not move the log start to %lld: %d", l->name,
                   (long long)l->compact_from, rc);
        return;
    }
    log_sync_request(lp);
    slog_info("%s: compacted, log start %lld -> %lld", l->name, (long long)before,
              (long long)l->compact_from);
}

int kvl_compact(kvl *l)
{
    CN_ASSERT(l->ops.compact);
    if (l->replicated && kvl_serving(l) != 0)
        return 0; /* the leader compacts, once its term is ready */
    if (l->compacting)
        return -CN_EAGAIN;
    log_partition *lp = l->p->log;
    int64_t first = log_end_offset(lp);
    int64_t old_bytes = l->log_bytes;
    l->log_bytes = 0;
    kvl_compaction cx = {.l = l, .ts = loop_wall_ms()};
    kvl_batch_init(&cx.bt);
    int rc = l->ops.compact(l->arg, &cx);
    if (rc == 0)
        rc = compaction_flush(&cx);
    else if (cx.err == 0)
        cx.err = rc;
    kvl_batch_fini(&cx.bt);
    if (rc < 0) {
        /* What was re-appended only duplicates live records. */
        l->log_bytes += old_bytes;
        slog_error("%s: compaction append failed: %s", l->name, cn_strerror(rc));
        return rc;
    }
    if (first <= log_start_offset(lp))
        return 0;
    l->compacting = 1;
    l->compact_from = first;
    kvl_wait_durable(l, log_end_offset(lp), &l->cw, compact_durable);
    return 0;
}

int kvl_maybe_compact(kvl *l)
{
    CN_ASSERT(l->ops.live_bytes);
    if (l->compacting ||
        l->log_bytes <= KVL_COMPACT_FACTOR * l->ops.live_bytes(l->arg) + KVL_COMPACT_SLACK)
        return 0;
    return kvl_compact(l);
}

/* Stats ------------------------------------------------------------------------ */

void kvl_get_stats(const kvl *l, kvl_stats *out)
{
    out->log_bytes = l->log_bytes;
    out->replayed = l->replayed;
    out->skipped = l->skipped;
    out->compacting = l->compacting;
}

int kvl_compacting(const kvl *l)
{
    return l->compacting;
}
