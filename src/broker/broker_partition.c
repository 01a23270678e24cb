/* Partitions: open and recovery of producer state, close, append with
 * Kafka's producer rules, transaction markers, durability waits. See
 * broker.h and broker_int.h. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/pstate.h"
#include "record/batch.h"
#include "util/common.h"
#include "util/slog.h"

/* Partitions ------------------------------------------------------------- */

void broker__log_options(const topic *t, const cairn_config *c, log_options *o)
{
    o->segment_bytes = t->cfg.segment_bytes;
    o->segment_ms = t->cfg.segment_ms;
    o->retention_ms = t->cfg.retention_ms;
    o->retention_bytes = t->cfg.retention_bytes;
    o->index_interval_bytes = c->index_interval_bytes;
    o->preallocate = c->preallocate;
    o->raft = 0; /* issue 12 step 2 turns it on */
}

/* Fire the waits of *list whose target is <= reached (all when status < 0,
 * with -CN_EIO); the others stay, in order. */
static void fire_waits(durable_wait **list, int64_t reached, int status)
{
    durable_wait **pp = list;
    while (*pp) {
        durable_wait *w = *pp;
        if (status < 0 || w->target <= reached) {
            *pp = w->next;
            w->next = NULL;
            w->cb(w, status < 0 ? -CN_EIO : 0);
        } else {
            pp = &w->next;
        }
    }
}

/* Fire the DeleteRecords waits whose start is durable (all when status < 0). */
static void partition_fire_start_waits(partition *p, int status)
{
    fire_waits(&p->start_waits, log_start_durable(p->log), status);
}

static void partition_durable_cb(log_partition *lp, int64_t durable, int status, void *arg)
{
    (void)lp;
    partition *p = arg;
    partition_fire_start_waits(p, status);
    fire_waits(&p->waits, durable, status);
}

/* Rebuild producer state from batch headers in [from, log end). */
static int partition_replay(partition *p, int64_t from)
{
    int64_t off = from, end = log_end_offset(p->log);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    int64_t n_batches = 0;
    while (off < end) {
        log_slice sl;
        rc = log_read(p->log, off, end, 1 << 20, &sl);
        if (rc < 0 || sl.len == 0)
            break;
        if ((size_t)sl.len > cap) {
            cap = (size_t)sl.len;
            buf = xrealloc(buf, cap);
        }
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.pos);
        int64_t len = sl.len;
        log_slice_release(&sl);
        if (got != len) {
            rc = -CN_EIO;
            break;
        }
        size_t pos = 0;
        int64_t before = off;
        while (pos + BATCH_HEADER_SIZE <= (size_t)len) {
            batch_info bi;
            if (batch_parse_header(buf + pos, (size_t)len - pos, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + 12;
            if (total < BATCH_HEADER_SIZE || pos + total > (size_t)len)
                break;
            int64_t last = bi.base_offset + bi.last_offset_delta;
            if (last >= off && bi.producer_id >= 0) {
                int type = -1;
                int32_t cepoch = -1;
                if (bi.control)
                    batch_marker_parse(buf + pos, total, &type, &cepoch);
                pst_replay_batch(p->ps, &bi, bi.base_offset, type, cepoch);
            }
            n_batches++;
            off = CN_MAX(off, last + 1);
            pos += total;
        }
        if (off == before) {
            rc = -CN_ECORRUPT; /* no progress: the log module guarantees whole batches */
            break;
        }
    }
    free(buf);
    if (rc < 0)
        slog_error("%s-%d: rebuilding producer state failed at offset %lld: %d", p->t->name,
                   p->id, (long long)off, rc);
    else if (n_batches > 0)
        slog_info("%s-%d: producer state rebuilt from %lld batch(es) at offsets %lld..%lld "
                  "(%d producer(s))", p->t->name, p->id, (long long)n_batches, (long long)from,
                  (long long)end - 1, pst_count(p->ps));
    return rc;
}

static int partition_load_producers(partition *p, const char *dir)
{
    int64_t start = log_start_offset(p->log), end = log_end_offset(p->log);
    int64_t from = pst_snapshot_load(p->ps, dir, start, end);
    if (from < 0)
        from = 0;
    from = CN_MAX(from, start);
    p->snap_offset = from;
    return from < end ? partition_replay(p, from) : 0;
}

void broker__partition_snapshot(partition *p)
{
    int64_t end = log_end_offset(p->log);
    if (end == p->snap_offset)
        return;
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", p->t->b->dir, p->t->name, p->id);
    int rc = pst_snapshot_write(p->ps, dir, end);
    if (rc < 0)
        slog_warn("%s-%d: writing the producer snapshot failed: %s", p->t->name, p->id,
                  strerror(-rc));
    else
        p->snap_offset = end;
}

int broker__partition_open(broker *b, topic *t, int32_t id, partition **out)
{
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", b->dir, t->name, id);
    log_options o;
    broker__log_options(t, b->cfg, &o);
    partition *p = xcalloc(1, sizeof(*p));
    p->t = t;
    p->id = id;
    int rc = log_partition_open(dir, &o, b->syncer, &p->log);
    if (rc < 0) {
        free(p);
        return rc;
    }
    log_partition_set_durable_cb(p->log, partition_durable_cb, p);
    log_set_high_watermark(p->log, log_end_offset(p->log));
    p->ps = pst_new();
    rc = partition_load_producers(p, dir);
    if (rc < 0) {
        pst_free(p->ps);
        log_partition_close(p->log);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Complete every parked wait with status. */
static void partition_end_waits(partition *p, int status)
{
    while (p->start_waits) {
        durable_wait *w = p->start_waits;
        p->start_waits = w->next;
        w->next = NULL;
        w->cb(w, status);
    }
    while (p->waits) {
        durable_wait *w = p->waits;
        p->waits = w->next;
        w->next = NULL;
        w->cb(w, status);
    }
}

/* destroy: delete the data (waits fail). Otherwise fsync everything first,
 * so parked acks=all requests complete with success. */
void broker__partition_close(partition *p, int destroy)
{
    if (!p)
        return;
    if (destroy) {
        partition_end_waits(p, -CN_EIO);
        log_partition_destroy(p->log);
    } else {
        int rc = log_partition_sync_now(p->log);
        if (rc < 0)
            slog_error("final fsync of %s-%d failed: %s", p->t->name, p->id, cn_strerror(rc));
        partition_end_waits(p, rc < 0 ? -CN_EIO : 0);
        if (rc == 0)
            broker__partition_snapshot(p);
        log_partition_close(p->log);
    }
    pst_free(p->ps);
    free(p);
}

int broker_produce(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset)
{
    batch_info bi;
    if (batch_parse_header(batch, len, &bi) < 0)
        return -CN_ECORRUPT;
    if (bi.producer_id >= 0) {
        pst_batch dup;
        int rc = pst_check(p->ps, &bi, &dup);
        if (rc == 1) {
            *base_offset = dup.first_offset; /* a retry of a stored batch */
            return 0;
        }
        if (rc < 0)
            return rc;
    }
    int rc = broker_append(b, p, batch, len, base_offset);
    if (rc < 0)
        return rc;
    if (bi.producer_id >= 0)
        pst_update(p->ps, &bi, *base_offset, -1, -1);
    p->produced_records += bi.record_count;
    p->produced_bytes += (int64_t)len;
    return 0;
}

int broker_write_marker(broker *b, partition *p, int64_t pid, int16_t epoch, int commit,
                        int32_t coordinator_epoch, int64_t *offset)
{
    const pst_producer *known = pst_get(p->ps, pid);
    if (known && epoch < known->epoch) {
        /* Kafka refuses a marker from an older epoch: it would un-fence. */
        slog_warn("%s-%d: marker for producer %lld with epoch %d below its epoch %d refused",
                  p->t->name, p->id, (long long)pid, epoch, known->epoch);
        return -CN_EINVAL;
    }
    uint8_t buf[BATCH_MARKER_SIZE];
    size_t len = batch_marker_build(buf, pid, epoch, commit, coordinator_epoch, loop_wall_ms());
    int rc = broker_append(b, p, buf, len, offset);
    if (rc < 0)
        return rc;
    batch_info bi;
    batch_parse_header(buf, len, &bi);
    pst_update(p->ps, &bi, *offset, commit ? 1 : 0, coordinator_epoch);
    return 0;
}

int64_t broker_lso(const partition *p)
{
    int64_t hw = log_high_watermark(p->log);
    int64_t first = pst_first_unstable(p->ps);
    return first >= 0 && first < hw ? first : hw;
}

int broker_append(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset)
{
    int rc = log_append(p->log, batch, len, loop_wall_ms(), base_offset);
    if (rc < 0)
        return rc;
    log_set_high_watermark(p->log, log_end_offset(p->log));
    b->appended = 1;
    return 0;
}

int broker_delete_records(broker *b, partition *p, int64_t offset, durable_wait *w)
{
    (void)b;
    int64_t before = log_start_offset(p->log);
    int rc = log_delete_before(p->log, offset);
    if (rc < 0)
        return rc;
    int64_t start = log_start_offset(p->log);
    if (start > before) {
        pst_truncate_head(p->ps, start);
        slog_info("%s-%d: records before %lld deleted (DeleteRecords)", p->t->name, p->id,
                  (long long)start);
    }
    w->target = start;
    w->next = p->start_waits;
    p->start_waits = w;
    /* A job runs (or is queued behind the one in flight) and its completion
     * fires w; with nothing left to sync the start is durable already. */
    log_sync_request(p->log);
    partition_fire_start_waits(p, log_failed(p->log) ? -CN_EIO : 0);
    return 0;
}

void broker_wait_durable(broker *b, partition *p, durable_wait *w)
{
    (void)b;
    if (log_durable_offset(p->log) >= w->target) {
        w->cb(w, 0);
        return;
    }
    w->next = p->waits;
    p->waits = w;
    log_sync_request(p->log);
}

void broker_wait_cancel(partition *p, durable_wait *w)
{
    for (durable_wait **pp = &p->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            return;
        }
}
