/* Segment files: naming, creation, trimming, unlinking, and rolling the active
 * segment. A segment is <dir>/<base, 20 digits>.{log,index,timeindex} (and
 * .rindex in raft mode). With
 * preallocate the .log is fallocated to segment_bytes on creation (the tail
 * of the file then reads as zeros, where recovery stops) and trimmed to its
 * real length when it stops being active or the partition closes. A roll
 * never leaves the partition without an active segment: on failure the old
 * one stays active. */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"
#include "util/slog.h"

void log__seg_path(const log_partition *p, int64_t base, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%020lld%s", p->dir, (long long)base, ext);
}

static void seg_unlink_files(const log_partition *p, int64_t base)
{
    static const char *const exts[] = {".log", ".index", ".timeindex", ".rindex"};
    char path[LOG_PATH_MAX];
    for (size_t i = 0; i < CN_ARRAY_LEN(exts) - (p->raft ? 0 : 1); i++) {
        log__seg_path(p, base, exts[i], path, sizeof(path));
        unlink(path);
    }
}

int log__seg_create(log_partition *p, int64_t base, log_segment **out)
{
    char path[LOG_PATH_MAX];
    log_segment *seg = xcalloc(1, sizeof(*seg));
    int rc = 0;
    seg->base = base;
    seg->idx_fd = -1;
    seg->tidx_fd = -1;
    seg->ridx_fd = -1;
    seg->max_ts = -1;
    seg->created_ms = -1;
    seg->bad_logged = -1;

    log__seg_path(p, base, ".log", path, sizeof(path));
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    seg->file = log__file_new(fd);
    log__seg_path(p, base, ".index", path, sizeof(path));
    seg->idx_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (seg->idx_fd < 0) {
        rc = -errno;
        goto fail;
    }
    log__seg_path(p, base, ".timeindex", path, sizeof(path));
    seg->tidx_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (seg->tidx_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (p->raft) {
        rc = log__raft_seg_open(p, seg);
        if (rc < 0)
            goto fail;
    }
    if (p->opt.preallocate && p->opt.segment_bytes > 0) {
        if (fallocate(fd, 0, 0, (off_t)p->opt.segment_bytes) == 0)
            seg->preallocated = 1;
        else if (errno != EOPNOTSUPP)
            rc = -errno;
        if (rc < 0)
            goto fail;
    }
    seg->unsynced = 1;
    p->dir_unsynced = 1;
    *out = seg;
    return 0;
fail:
    slog_warn("segment create failed dir=%s base=%lld err=%d", p->dir, (long long)base, -rc);
    log__seg_free(seg);
    seg_unlink_files(p, base);
    return log__io_err(-rc);
}

void log__seg_free(log_segment *seg)
{
    if (!seg)
        return;
    if (seg->idx_fd >= 0)
        close(seg->idx_fd);
    if (seg->tidx_fd >= 0)
        close(seg->tidx_fd);
    if (seg->ridx_fd >= 0)
        close(seg->ridx_fd);
    log__file_unref(seg->file);
    free(seg->idx);
    free(seg->tidx);
    free(seg->ridx);
    free(seg);
}

void log__seg_unlink(log_partition *p, log_segment *seg)
{
    seg_unlink_files(p, seg->base);
    if (seg->file)
        seg->file->deleted = 1;
    p->dir_unsynced = 1;
}

int log__seg_trim(log_segment *seg)
{
    if (!seg->preallocated)
        return 0;
    if (fault_ftruncate(seg->file->fd, seg->size) < 0)
        return -errno;
    seg->preallocated = 0;
    seg->unsynced = 1;
    return 0;
}

void log__seg_push(log_partition *p, log_segment *seg)
{
    if (p->n_segs == p->cap_segs) {
        p->cap_segs = p->cap_segs ? p->cap_segs * 2 : 8;
        p->segs = xrealloc(p->segs, p->cap_segs * sizeof(*p->segs));
    }
    p->segs[p->n_segs++] = seg;
}

int log__should_roll_time(const log_partition *p, const log_segment *seg, int64_t now_ms)
{
    return seg->size > 0 && p->opt.segment_ms > 0 && seg->created_ms >= 0 &&
           now_ms - seg->created_ms > p->opt.segment_ms;
}

int log__roll(log_partition *p)
{
    log_segment *old = log__active(p);
    int rc = log__seg_trim(old);
    if (rc < 0) {
        p->failed = 1;
        slog_error("segment trim failed dir=%s base=%lld err=%d", p->dir,
                   (long long)old->base, -rc);
        return -CN_EIO;
    }
    old->unsynced = 1;
    log_segment *seg = NULL;
    rc = log__seg_create(p, p->log_end, &seg);
    if (rc < 0) {
        /* The old segment stays active; give it its reservation back. */
        if (p->opt.preallocate && p->opt.segment_bytes > old->size &&
            fallocate(old->file->fd, 0, 0, (off_t)p->opt.segment_bytes) == 0)
            old->preallocated = 1;
        if (rc != -CN_ENOSPC)
            p->failed = 1;
        return rc;
    }
    log__seg_push(p, seg);
    slog_info("segment rolled dir=%s base=%lld", p->dir, (long long)seg->base);
    return 0;
}
