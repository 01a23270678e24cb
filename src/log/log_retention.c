/* Retention and DeleteRecords. Retention rolls an active segment past
 * segment_ms, then deletes whole segments from the oldest while they are
 * past retention_ms (by their max batch timestamp, or the file's mtime when
 * no batch had one) or while the partition stays at or above
 * retention_bytes without them. log_delete_before moves log_start to any
 * offset up to the high watermark, deletes the segments wholly below it and
 * records it in the log-start file (LOG_START_FILE, format in log_int.h),
 * which the next sync job makes durable. The active segment is never
 * deleted (DeleteRecords up to log_end rolls first). Deleting unlinks the
 * three files and drops the segment's reference on its log_file; slices in
 * flight keep the fd open. */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

static int64_t seg_time_ms(const log_segment *seg)
{
    if (seg->max_ts >= 0)
        return seg->max_ts;
    struct stat st;
    if (fstat(seg->file->fd, &st) < 0)
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

void log__delete_oldest(log_partition *p, const char *reason)
{
    log_segment *seg = p->segs[0];
    memmove(p->segs, p->segs + 1, (p->n_segs - 1) * sizeof(*p->segs));
    p->n_segs--;
    p->size_bytes -= seg->size;
    p->log_start = CN_MAX(p->log_start, p->segs[0]->base);
    p->hw = CN_MAX(p->hw, p->log_start);
    log__seg_unlink(p, seg);
    slog_info("segment deleted dir=%s base=%lld bytes=%lld reason=%s start=%lld", p->dir,
              (long long)seg->base, (long long)seg->size, reason, (long long)p->log_start);
    log__seg_free(seg);
}

int log_enforce_retention(log_partition *p, int64_t now_ms)
{
    if (!p->failed && log__should_roll_time(p, log__active(p), now_ms))
        (void)log__roll(p); /* failure is logged; deletion can still run */
    int n_deleted = 0;
    while (p->n_segs > 1) {
        const char *reason = log__retention_due(p, p->segs[0], now_ms, p->size_bytes);
        if (!reason)
            break;
        log__delete_oldest(p, reason);
        n_deleted++;
    }
    return n_deleted;
}

const char *log__retention_due(const log_partition *p, const log_segment *seg, int64_t now_ms,
                               int64_t size)
{
    if (p->opt.retention_ms >= 0) {
        int64_t t = seg_time_ms(seg);
        if (t >= 0 && now_ms - t > p->opt.retention_ms)
            return "time";
    }
    if (p->opt.retention_bytes >= 0 && size - seg->size >= p->opt.retention_bytes)
        return "size";
    return NULL;
}

/* Write offset to the log-start file (opened on first use). 0 or -CN_E*. */
int log__write_start(log_partition *p, int64_t offset)
{
    if (p->start_fd < 0) {
        char path[LOG_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", p->dir, LOG_START_FILE);
        p->start_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (p->start_fd < 0)
            return log__io_err(errno);
        p->dir_unsynced = 1;
    }
    uint8_t b[LOG_START_LEN];
    be_put64(b, (uint64_t)offset);
    be_put32(b + 8, crc32c(0, b, 8));
    int rc = log__pwrite_all(p->start_fd, b, sizeof(b), 0);
    if (rc < 0)
        return log__io_err(-rc);
    p->start_unsynced = 1;
    return 0;
}

int log_delete_before(log_partition *p, int64_t offset)
{
    if (p->failed)
        return -CN_EIO;
    if (offset < 0 || offset > p->hw)
        return -CN_ERANGE;
    if (offset <= p->log_start)
        return 0;
    int rc = log__write_start(p, offset);
    if (rc < 0) {
        slog_warn("log start write failed dir=%s offset=%lld err=%d", p->dir,
                  (long long)offset, -rc);
        return rc;
    }
    if (offset == p->log_end && log__active(p)->size > 0) {
        rc = log__roll(p); /* so that every old segment can go */
        if (rc < 0 && p->failed)
            return rc;
    }
    while (p->n_segs > 1 && p->segs[1]->base <= offset)
        log__delete_oldest(p, "delete-records");
    p->log_start = offset;
    p->hw = CN_MAX(p->hw, p->log_start);
    p->durable = CN_MAX(p->durable, p->log_start);
    return 0;
}
