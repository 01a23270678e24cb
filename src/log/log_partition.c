/* Partition lifecycle (open, close, destroy), offsets, and append. Append
 * stamps the base offset and leader epoch into the caller's batch, writes it
 * with one pwrite loop at the end of the active segment's whole batches (a
 * preallocated file is longer than that), then appends any due index
 * entries. A failed append leaves no trace: the .log and index files are cut
 * back to their previous lengths. ENOSPC is reported and the partition stays
 * usable; any other write error, or a failed cut, makes it LOG_FAILED
 * (sticky, no more appends). Invariants: log_start <= hw <= log_end, and
 * durable_offset only grows. Steady-state appends allocate nothing. */
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"
#include "util/slog.h"

/* mkdir -p. 0 or -errno. */
static int make_dirs(const char *dir)
{
    char path[LOG_PATH_MAX];
    size_t n = strlen(dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    return 0;
}

int log_partition_open(const char *dir, const log_options *opt, log_syncer *syncer,
                       log_partition **out)
{
    *out = NULL;
    if (strlen(dir) + 32 >= LOG_PATH_MAX)
        return -CN_EINVAL;
    log_partition *p = xcalloc(1, sizeof(*p));
    int rc;
    p->dir = xstrdup(dir);
    p->dir_fd = -1;
    p->start_fd = -1;
    p->meta_fd = -1;
    p->meta_cut_pos = -1;
    p->snap_fd = -1;
    p->snap_drop_below = -1;
    p->raft = opt->raft != 0;
    p->opt = *opt;
    p->syncer = syncer;
    p->rbuf = xmalloc(LOG_READ_CHUNK);
    rc = make_dirs(dir);
    if (rc < 0) {
        slog_error("partition mkdir failed dir=%s err=%d", dir, -rc);
        rc = -CN_EIO;
        goto fail;
    }
    p->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dir_fd < 0) {
        rc = -CN_EIO;
        goto fail;
    }
    rc = log__recover(p);
    if (rc == 0 && p->raft)
        rc = log__raft_recover(p);
    if (rc < 0)
        goto fail;
    /* What recovery kept is what counts as durable: make it so. */
    rc = log_partition_sync_now(p);
    if (rc < 0)
        goto fail;
    p->job_end_mark = p->log_end;
    slog_info("partition opened dir=%s start=%lld end=%lld segments=%zu", dir,
              (long long)p->log_start, (long long)p->log_end, p->n_segs);
    *out = p;
    return 0;
fail:
    log_partition_close(p);
    return rc;
}

void log_partition_close(log_partition *p)
{
    if (!p || p->dead)
        return;
    if (p->n_segs > 0 && log__seg_trim(log__active(p)) < 0)
        slog_warn("segment trim failed dir=%s", p->dir);
    for (size_t i = 0; i < p->n_segs; i++)
        log__seg_free(p->segs[i]);
    p->n_segs = 0;
    if (p->dir_fd >= 0)
        close(p->dir_fd);
    p->dir_fd = -1;
    if (p->start_fd >= 0)
        close(p->start_fd);
    p->start_fd = -1;
    if (p->meta_fd >= 0)
        close(p->meta_fd);
    p->meta_fd = -1;
    log__snap_free(p);
    if (p->sync_inflight) {
        p->dead = 1; /* the syncer's drain frees it */
        return;
    }
    log__partition_free(p);
}

void log_partition_destroy(log_partition *p)
{
    if (!p || p->dead)
        return;
    char *dir = xstrdup(p->dir);
    log_partition_close(p);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
    }
    if (rmdir(dir) < 0)
        slog_warn("partition rmdir failed dir=%s err=%d", dir, errno);
    else
        slog_info("partition deleted dir=%s", dir);
    free(dir);
}

void log_partition_set_options(log_partition *p, const log_options *opt)
{
    p->opt = *opt;
    p->opt.raft = p->raft; /* fixed at open */
}

void log_partition_set_durable_cb(log_partition *p, log_durable_cb cb, void *arg)
{
    p->cb = cb;
    p->cb_arg = arg;
}

int64_t log_start_offset(const log_partition *p) { return p->log_start; }
int64_t log_second_segment_base(const log_partition *p)
{
    return p->n_segs > 1 ? p->segs[1]->base : -1;
}
int64_t log_end_offset(const log_partition *p) { return p->log_end; }
int64_t log_high_watermark(const log_partition *p) { return p->hw; }
int64_t log_durable_offset(const log_partition *p) { return p->durable; }
int64_t log_start_durable(const log_partition *p) { return p->start_durable; }
int32_t log_leader_epoch(const log_partition *p) { return p->epoch; }
void log_set_leader_epoch(log_partition *p, int32_t epoch) { p->epoch = epoch; }
int64_t log_size_bytes(const log_partition *p) { return p->size_bytes; }
int log_failed(const log_partition *p) { return p->failed; }

void log_set_high_watermark(log_partition *p, int64_t hw)
{
    p->hw = CN_MAX(p->log_start, CN_MIN(hw, p->log_end));
}

/* Undo a failed append: drop its index entries and cut the files back. */
static int append_fail(log_partition *p, log_segment *seg, int err, int mask,
                       int64_t old_max_ts, int64_t old_since)
{
    log__index_pop(seg, mask);
    seg->max_ts = old_max_ts;
    seg->bytes_since_idx = old_since;
    int undone = fault_ftruncate(seg->file->fd, seg->size) == 0 &&
                 fault_ftruncate(seg->idx_fd, (int64_t)(seg->n_idx * LOG_IDX_ENTRY)) == 0 &&
                 fault_ftruncate(seg->tidx_fd, (int64_t)(seg->n_tidx * LOG_TIDX_ENTRY)) == 0;
    if (undone && seg->preallocated &&
        fallocate(seg->file->fd, 0, 0, (off_t)p->opt.segment_bytes) < 0)
        seg->preallocated = 0;
    int rc = log__io_err(err);
    if (rc == -CN_ENOSPC && undone) {
        slog_warn("append failed no space dir=%s offset=%lld", p->dir, (long long)p->log_end);
        return rc;
    }
    p->failed = 1;
    slog_error("append failed, partition failed dir=%s offset=%lld err=%d", p->dir,
               (long long)p->log_end, err);
    return -CN_EIO;
}

static int should_roll(const log_partition *p, const log_segment *seg, size_t len,
                       int32_t lod, int64_t now_ms)
{
    if (seg->size == 0)
        return 0;
    return seg->size + (int64_t)len > p->opt.segment_bytes ||
           log__should_roll_time(p, seg, now_ms) ||
           seg->size + (int64_t)len > (int64_t)UINT32_MAX ||
           p->log_end + lod - seg->base > (int64_t)INT32_MAX;
}

/* log_append and log_append_at. keep: the batch's base offset must be
 * log_end and its epoch stays; otherwise both are stamped. */
static int append(log_partition *p, uint8_t *batch, size_t len, int64_t now_ms, int keep,
                  int64_t *out_base_offset)
{
    if (p->failed)
        return -CN_EIO;
    if (len < BATCH_HEADER_SIZE || len > (size_t)INT32_MAX)
        return -CN_EINVAL;
    int32_t lod = (int32_t)be_get32(batch + BATCH_OFF_LAST_OFFSET_DELTA);
    if (lod < 0)
        return -CN_EINVAL;
    int32_t epoch = p->epoch;
    if (keep) {
        if ((int64_t)be_get64(batch + BATCH_OFF_BASE_OFFSET) != p->log_end)
            return -CN_ERANGE;
        epoch = (int32_t)be_get32(batch + BATCH_OFF_LEADER_EPOCH);
        if (epoch < 0)
            return -CN_EINVAL;
    }
    if (p->raft) {
        if (p->hold)
            return -CN_EAGAIN; /* a side entry or a cut is not durable yet */
        if (epoch < p->rlast_term)
            return -CN_EINVAL;
    }
    log_segment *seg = log__active(p);
    if (should_roll(p, seg, len, lod, now_ms)) {
        int rc = log__roll(p);
        if (rc < 0)
            return rc;
        seg = log__active(p);
    }
    int64_t base = p->log_end;
    if (!keep) {
        be_put64(batch + BATCH_OFF_BASE_OFFSET, (uint64_t)base);
        be_put32(batch + BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
    }
    int64_t old_max_ts = seg->max_ts, old_since = seg->bytes_since_idx;
    int rc = log__pwrite_all(seg->file->fd, batch, len, seg->size);
    if (rc < 0)
        return append_fail(p, seg, -rc, 0, old_max_ts, old_since);
    int64_t max_ts = (int64_t)be_get64(batch + BATCH_OFF_MAX_TIMESTAMP);
    int mask = log__index_track(seg, base, seg->size, (int64_t)len, max_ts,
                                p->opt.index_interval_bytes);
    rc = log__index_append_files(seg, mask);
    if (rc == 0 && p->raft)
        rc = log__raft_track(p, seg, seg->size, epoch, mask);
    if (rc < 0)
        return append_fail(p, seg, -rc, mask, old_max_ts, old_since);
    if (seg->verified == seg->size)
        seg->verified += (int64_t)len; /* batch_validate checked its CRC */
    seg->size += (int64_t)len;
    seg->unsynced = 1;
    if (seg->created_ms < 0)
        seg->created_ms = now_ms;
    p->size_bytes += (int64_t)len;
    p->appended_bytes += (int64_t)len;
    p->log_end = base + lod + 1;
    *out_base_offset = base;
    return 0;
}

int log_append(log_partition *p, uint8_t *batch, size_t len, int64_t now_ms,
               int64_t *out_base_offset)
{
    return append(p, batch, len, now_ms, 0, out_base_offset);
}

int log_append_at(log_partition *p, uint8_t *batch, size_t len, int64_t now_ms)
{
    int64_t base;
    return append(p, batch, len, now_ms, 1, &base);
}
