/* Raft snapshots of a partition's raft log (log.h "Raft snapshots"): moving
 * the start of the log forward (retention on a replicated partition, Raft's
 * log compaction) and replacing a replica's whole log by a leader's
 * snapshot (InstallSnapshot). A data partition's state is its log, so a
 * snapshot holds no data: it is the anchor (index and term of the last
 * entry it covers, the offset where the log goes on) plus the caller's
 * bytes (the configuration as of the index, for repl).
 *
 * raft.snap: records appended back to back (never overwritten in place, so
 * a torn append leaves every earlier record whole); the last valid record
 * is the snapshot. Loading stops at the first record that is not whole or
 * fails its CRC and cuts the file there. Big-endian:
 *   0   u64  index       last entry the snapshot covers
 *   8   u64  term        its term
 *   16  i64  offset      where the log goes on (a segment base, or log end)
 *   24  u8   flags       1 = reset: the log before it is discarded whole
 *   25  u32  len         caller's bytes, <= LOG_RAFT_SNAP_MAX
 *   29  len  bytes
 *   29+len u32 CRC-32C of [0, 29+len)
 * About 100 bytes a snapshot (one per retention pass that moves the start):
 * the file is not compacted.
 *
 * Ordering. Compaction appends a record and moves the anchor and log_start in
 * memory at once (reads below fail), but deletes the segments below the
 * new start only once a sync job has made the record durable: a crash before
 * leaves the old anchor and every segment. Recovery applies a snapshot
 * newer than raft.meta's anchor: side entries it covers are dropped,
 * segments wholly below its offset deleted (again). A reset appends its record
 * and syncs it before anything else (blocking: a rare path, like a group's
 * bootstrap), then deletes every segment and restarts raft.meta and the log
 * at the snapshot; recovery that finds a reset record newer than raft.meta's
 * anchor does the same. */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/crc32c.h"
#include "util/fault.h"
#include "util/slog.h"

#define SNAP_FILE "raft.snap"
#define SNAP_HDR 29
#define SNAP_CRC 4
#define SNAP_RESET 1
#define SNAP_FILE_MAX ((int64_t)1 << 30)

typedef struct snap_rec {
    int64_t index, term, offset;
    uint8_t flags;
    uint32_t len;
    const uint8_t *bytes;
} snap_rec;

static int snap_open(log_partition *p)
{
    if (p->snap_fd >= 0)
        return 0;
    char path[LOG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, SNAP_FILE);
    p->snap_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->snap_fd < 0)
        return log__io_err(errno);
    p->dir_unsynced = 1;
    return 0;
}

/* Append a record. 0 or -CN_E*. */
static int snap_write(log_partition *p, int64_t index, int64_t term, int64_t offset,
                      uint8_t flags, const uint8_t *bytes, uint32_t len)
{
    if (len > LOG_RAFT_SNAP_MAX)
        return -CN_EINVAL;
    int rc = snap_open(p);
    if (rc < 0)
        return rc;
    uint8_t b[SNAP_HDR + LOG_RAFT_SNAP_MAX + SNAP_CRC];
    be_put64(b, (uint64_t)index);
    be_put64(b + 8, (uint64_t)term);
    be_put64(b + 16, (uint64_t)offset);
    b[24] = flags;
    be_put32(b + 25, len);
    if (len)
        memcpy(b + SNAP_HDR, bytes, len);
    be_put32(b + SNAP_HDR + len, crc32c(0, b, SNAP_HDR + len));
    size_t n = SNAP_HDR + len + SNAP_CRC;
    rc = log__pwrite_all(p->snap_fd, b, n, p->snap_size);
    if (rc < 0)
        return log__io_err(-rc);
    p->snap_size += (int64_t)n;
    p->snap_seq++;
    p->snap_unsynced = 1;
    free(p->snap_payload);
    p->snap_payload = NULL;
    if (len) {
        p->snap_payload = xmalloc(len);
        memcpy(p->snap_payload, bytes, len);
    }
    p->snap_len = len;
    return 0;
}

/* Parse the record at b (avail bytes); its size, or 0 when not valid. */
static size_t snap_parse(const uint8_t *b, size_t avail, snap_rec *r)
{
    if (avail < SNAP_HDR + SNAP_CRC)
        return 0;
    r->index = (int64_t)be_get64(b);
    r->term = (int64_t)be_get64(b + 8);
    r->offset = (int64_t)be_get64(b + 16);
    r->flags = b[24];
    r->len = be_get32(b + 25);
    r->bytes = b + SNAP_HDR;
    if (r->len > LOG_RAFT_SNAP_MAX || avail - SNAP_HDR - SNAP_CRC < r->len ||
        r->index <= 0 || r->term <= 0 || r->offset < 0 || (r->flags & ~SNAP_RESET) != 0 ||
        be_get32(b + SNAP_HDR + r->len) != crc32c(0, b, SNAP_HDR + r->len))
        return 0;
    return SNAP_HDR + r->len + SNAP_CRC;
}

/* Delete the segments wholly below offset (never the active one). */
static void drop_below(log_partition *p, int64_t offset)
{
    while (p->n_segs > 1 && p->segs[1]->base <= offset)
        log__delete_oldest(p, "raft-snapshot");
}

/* Discard the whole log and start it again empty at the snapshot. */
static int wipe(log_partition *p, int64_t index, int64_t term, int64_t offset)
{
    for (size_t i = 0; i < p->n_segs; i++) {
        log__seg_unlink(p, p->segs[i]);
        log__seg_free(p->segs[i]);
    }
    p->n_segs = 0;
    p->size_bytes = 0;
    int rc = log__raft_meta_restart(p, index, term, offset);
    log_segment *seg = NULL;
    if (rc == 0)
        rc = log__seg_create(p, offset, &seg);
    if (rc == 0) {
        log__seg_push(p, seg);
        rc = log__write_start(p, offset);
    }
    if (rc < 0) {
        p->failed = 1;
        slog_error("raft log: restart at a snapshot failed, partition failed dir=%s", p->dir);
        return rc;
    }
    p->log_start = p->log_end = p->hw = p->durable = offset;
    p->job_end_mark = offset; /* not records a sync wrote (metrics) */
    p->start_durable = CN_MIN(p->start_durable, offset);
    p->rlast = p->rdurable = index;
    p->rlast_term = term;
    p->hold = 0;
    p->hold_seq++;
    p->snap_drop_below = -1;
    p->dir_unsynced = 1;
    return 0;
}

int log__snap_recover(log_partition *p)
{
    p->snap_drop_below = -1;
    char path[LOG_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, SNAP_FILE);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -CN_EIO;
    p->snap_fd = fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -CN_EIO;
    if (st.st_size > SNAP_FILE_MAX)
        return -CN_ECORRUPT;
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *b = xmalloc(size ? size : 1);
    int rc = log__pread_all(fd, b, size, 0, &got);
    if (rc < 0 || got != size) {
        free(b);
        return -CN_EIO;
    }
    snap_rec r, last, *best = NULL;
    size_t pos = 0, n;
    while ((n = snap_parse(b + pos, size - pos, &r)) > 0) {
        last = r;
        best = &last;
        pos += n;
    }
    p->snap_size = (int64_t)pos;
    if (pos < size) {
        slog_warn("raft log: raft.snap cut after a bad record dir=%s from=%zu to=%zu", p->dir,
                  size, pos);
        if (fault_ftruncate(fd, (int64_t)pos) < 0) {
            free(b);
            return -CN_EIO;
        }
        p->snap_unsynced = 1;
    }
    rc = 0;
    if (best) {
        p->snap_len = best->len;
        p->snap_payload = best->len ? xmalloc(best->len) : NULL;
        if (best->len)
            memcpy(p->snap_payload, best->bytes, best->len);
    }
    if (best && best->index > p->anchor_index) {
        if ((best->flags & SNAP_RESET) || p->log_end < best->offset) {
            slog_warn("raft log: restarting at snapshot dir=%s index=%lld offset=%lld", p->dir,
                      (long long)best->index, (long long)best->offset);
            rc = wipe(p, best->index, best->term, best->offset);
        } else {
            log__raft_drop_sides(p, best->index);
            p->anchor_index = best->index;
            p->anchor_term = best->term;
            p->anchor_off = best->offset;
            drop_below(p, best->offset);
            p->log_start = CN_MAX(p->log_start, best->offset);
            p->hw = CN_MAX(p->hw, p->log_start);
        }
    }
    free(b);
    return rc;
}

void log__snap_synced(log_partition *p, uint64_t seq)
{
    p->snap_synced = CN_MAX(p->snap_synced, seq);
    if (p->snap_drop_below >= 0 && p->snap_synced >= p->snap_seq) {
        drop_below(p, p->snap_drop_below);
        p->snap_drop_below = -1;
    }
}

void log__snap_free(log_partition *p)
{
    if (p->snap_fd >= 0)
        close(p->snap_fd);
    p->snap_fd = -1;
    free(p->snap_payload);
    p->snap_payload = NULL;
    p->snap_len = 0;
}

/* Public ----------------------------------------------------------------------------- */

int log_raft_trim_point(log_partition *p, int64_t now_ms, int64_t limit, int64_t *out_index,
                        int64_t *out_offset)
{
    if (!p->raft || p->failed)
        return 0;
    if (log__should_roll_time(p, log__active(p), now_ms))
        (void)log__roll(p); /* failure is logged; the rest can still run */
    int64_t size = p->size_bytes;
    size_t k = 0;
    while (k + 1 < p->n_segs) {
        const log_segment *seg = p->segs[k];
        /* Due for retention, or wholly below a log start DeleteRecords
         * moved (log_raft_set_start). */
        int below_start = p->segs[k + 1]->base <= p->log_start;
        if (seg->base < p->anchor_off || !seg->rfirst || seg->rlast > limit ||
            (!below_start && !log__retention_due(p, seg, now_ms, size)))
            break;
        size -= seg->size;
        k++;
    }
    if (k == 0)
        return 0;
    const log_segment *next = p->segs[k];
    /* The entry just before next's first batch (side entries positioned at
     * its base come before that batch). */
    int64_t index = next->rfirst ? next->rfirst - 1 : p->rlast;
    if (index > limit || index <= p->anchor_index)
        return 0;
    *out_index = index;
    *out_offset = next->base;
    return 1;
}

int log_raft_compact(log_partition *p, int64_t index, int64_t offset, const uint8_t *bytes,
                     uint32_t len)
{
    if (!p->raft)
        return -CN_EINVAL;
    if (p->failed)
        return -CN_EIO;
    if (index <= p->anchor_index || index > p->rdurable || index > p->rlast)
        return -CN_ERANGE;
    /* offset must be where the log goes on after index: a segment base
     * whose first batch follows index (or the end of the log). */
    size_t s = log__seg_find(p, offset);
    const log_segment *seg = p->segs[s];
    if (seg->base != offset || offset < p->anchor_off ||
        (seg->rfirst ? seg->rfirst - 1 : p->rlast) != index)
        return -CN_EINVAL;
    log_raft_entry e;
    int rc = log_raft_entry_at(p, index, &e);
    if (rc < 0)
        return rc;
    rc = snap_write(p, index, e.term, offset, 0, bytes, len);
    if (rc < 0)
        return rc;
    log__raft_drop_sides(p, index);
    p->anchor_index = index;
    p->anchor_term = e.term;
    p->anchor_off = offset;
    p->log_start = CN_MAX(p->log_start, offset);
    p->hw = CN_MAX(p->hw, p->log_start);
    p->durable = CN_MAX(p->durable, p->log_start);
    p->snap_drop_below = offset;
    slog_info("raft log: snapshot at index=%lld term=%lld, log starts at %lld dir=%s",
              (long long)index, (long long)e.term, (long long)offset, p->dir);
    log_sync_request(p);
    return 0;
}

int log_raft_reset(log_partition *p, int64_t index, int64_t term, int64_t offset,
                   const uint8_t *bytes, uint32_t len)
{
    if (!p->raft)
        return -CN_EINVAL;
    if (p->failed)
        return -CN_EIO;
    if (index <= 0 || term <= 0 || offset < 0)
        return -CN_EINVAL;
    int rc = snap_write(p, index, term, offset, SNAP_RESET, bytes, len);
    if (rc < 0)
        return rc;
    if (fault_fdatasync(p->snap_fd) < 0 || fsync(p->dir_fd) < 0) {
        p->failed = 1;
        slog_error("raft.snap sync failed, partition failed dir=%s", p->dir);
        return -CN_EIO;
    }
    p->snap_unsynced = 0;
    p->snap_synced = p->snap_seq;
    slog_info("raft log: replaced by a snapshot index=%lld term=%lld offset=%lld dir=%s",
              (long long)index, (long long)term, (long long)offset, p->dir);
    rc = wipe(p, index, term, offset);
    if (rc == 0)
        log_sync_request(p);
    return rc;
}

int log_raft_set_start(log_partition *p, int64_t offset)
{
    if (!p->raft)
        return -CN_EINVAL;
    if (p->failed)
        return -CN_EIO;
    if (offset <= p->log_start)
        return 0;
    offset = CN_MIN(offset, p->log_end);
    int rc = log__write_start(p, offset);
    if (rc < 0)
        return rc;
    p->log_start = offset;
    p->hw = CN_MAX(p->hw, p->log_start);
    slog_info("raft log: log start moved to %lld dir=%s", (long long)offset, p->dir);
    log_sync_request(p);
    return 0;
}

const uint8_t *log_raft_snap_bytes(const log_partition *p, uint32_t *len)
{
    *len = p->snap_len;
    return p->snap_payload;
}
