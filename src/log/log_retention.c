/* Retention: rolls an active segment past segment_ms, then deletes whole
 * segments from the oldest while they are past retention_ms (by their max
 * batch timestamp, or the file's mtime when no batch had one) or while the
 * partition stays at or above retention_bytes without them. The active
 * segment is never deleted, so log_start only moves to the base of a
 * surviving segment. Deleting unlinks the three files and drops the
 * segment's reference on its log_file; slices in flight keep the fd open. */
#include "log/log_int.h"

#include <string.h>
#include <sys/stat.h>

#include "util/common.h"
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

static void delete_oldest(log_partition *p, const char *reason)
{
    log_segment *seg = p->segs[0];
    memmove(p->segs, p->segs + 1, (p->n_segs - 1) * sizeof(*p->segs));
    p->n_segs--;
    p->size_bytes -= seg->size;
    p->log_start = p->segs[0]->base;
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
        const log_segment *seg = p->segs[0];
        const char *reason = NULL;
        if (p->opt.retention_ms >= 0) {
            int64_t t = seg_time_ms(seg);
            if (t >= 0 && now_ms - t > p->opt.retention_ms)
                reason = "time";
        }
        if (!reason && p->opt.retention_bytes >= 0 &&
            p->size_bytes - seg->size >= p->opt.retention_bytes)
            reason = "size";
        if (!reason)
            break;
        delete_oldest(p, reason);
        n_deleted++;
    }
    return n_deleted;
}
