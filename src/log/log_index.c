/* Offset and time indexes of a segment, in memory and on disk.
 *
 * .index: 8-byte entries, u32 BE relative offset, u32 BE file position. An
 * entry names the base offset (minus the segment base) of the batch that
 * starts at that position. Entries strictly increase in both fields. The
 * first batch of a segment (position 0) is implicit; after it an entry is
 * added once index_interval_bytes have been appended since the previous one.
 * .timeindex: 12-byte entries, i64 BE timestamp, u32 BE relative offset: the
 * largest batch maxTimestamp among batches up to and including the batch at
 * that offset. Written together with an offset entry when the maximum grew,
 * so timestamps are non-decreasing. Both files are advisory: recovery
 * rebuilds them from the .log whenever they are missing or fail the checks
 * in log__index_load. The in-memory arrays mirror the files entry for entry. */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"

static void idx_push(log_segment *seg, uint32_t rel, uint32_t pos)
{
    if (seg->n_idx == seg->cap_idx) {
        seg->cap_idx = seg->cap_idx ? seg->cap_idx * 2 : 64;
        seg->idx = xrealloc(seg->idx, seg->cap_idx * sizeof(*seg->idx));
    }
    seg->idx[seg->n_idx].rel = rel;
    seg->idx[seg->n_idx].pos = pos;
    seg->n_idx++;
}

static void tidx_push(log_segment *seg, int64_t ts, uint32_t rel)
{
    if (seg->n_tidx == seg->cap_tidx) {
        seg->cap_tidx = seg->cap_tidx ? seg->cap_tidx * 2 : 64;
        seg->tidx = xrealloc(seg->tidx, seg->cap_tidx * sizeof(*seg->tidx));
    }
    seg->tidx[seg->n_tidx].ts = ts;
    seg->tidx[seg->n_tidx].rel = rel;
    seg->n_tidx++;
}

int log__index_track(log_segment *seg, int64_t base, int64_t pos, int64_t len,
                     int64_t max_ts, int32_t interval)
{
    int mask = 0;
    if (max_ts > seg->max_ts)
        seg->max_ts = max_ts;
    if (seg->bytes_since_idx > 0 && seg->bytes_since_idx >= interval) {
        uint32_t rel = (uint32_t)(base - seg->base);
        idx_push(seg, rel, (uint32_t)pos);
        mask |= 1;
        int64_t last = seg->n_tidx ? seg->tidx[seg->n_tidx - 1].ts : -1;
        if (seg->max_ts > last) {
            tidx_push(seg, seg->max_ts, rel);
            mask |= 2;
        }
        seg->bytes_since_idx = 0;
    }
    seg->bytes_since_idx += len;
    return mask;
}

int log__index_append_files(log_segment *seg, int mask)
{
    uint8_t b[LOG_TIDX_ENTRY];
    if (mask & 1) {
        const log_idx_ent *e = &seg->idx[seg->n_idx - 1];
        be_put32(b, e->rel);
        be_put32(b + 4, e->pos);
        int rc = log__write_all(seg->idx_fd, b, LOG_IDX_ENTRY);
        if (rc < 0)
            return rc;
    }
    if (mask & 2) {
        const log_tidx_ent *e = &seg->tidx[seg->n_tidx - 1];
        be_put64(b, (uint64_t)e->ts);
        be_put32(b + 8, e->rel);
        int rc = log__write_all(seg->tidx_fd, b, LOG_TIDX_ENTRY);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void log__index_pop(log_segment *seg, int mask)
{
    if (mask & 1)
        seg->n_idx--;
    if (mask & 2)
        seg->n_tidx--;
}

void log__index_reset(log_segment *seg)
{
    seg->n_idx = 0;
    seg->n_tidx = 0;
    seg->max_ts = -1;
    seg->bytes_since_idx = 0;
}

static int open_index(const log_partition *p, const log_segment *seg, const char *ext,
                      int *fd)
{
    if (*fd >= 0)
        return 0;
    char path[LOG_PATH_MAX];
    log__seg_path(p, seg->base, ext, path, sizeof(path));
    *fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return *fd < 0 ? -errno : 0;
}

int log__index_write_all(const log_partition *p, log_segment *seg)
{
    uint8_t *buf = NULL;
    int rc = open_index(p, seg, ".index", &seg->idx_fd);
    if (rc < 0)
        goto fail;
    rc = open_index(p, seg, ".timeindex", &seg->tidx_fd);
    if (rc < 0)
        goto fail;
    if (fault_ftruncate(seg->idx_fd, 0) < 0 || fault_ftruncate(seg->tidx_fd, 0) < 0) {
        rc = -errno;
        goto fail;
    }
    size_t n = CN_MAX(seg->n_idx * LOG_IDX_ENTRY, seg->n_tidx * LOG_TIDX_ENTRY);
    buf = xmalloc(n);
    for (size_t i = 0; i < seg->n_idx; i++) {
        be_put32(buf + i * LOG_IDX_ENTRY, seg->idx[i].rel);
        be_put32(buf + i * LOG_IDX_ENTRY + 4, seg->idx[i].pos);
    }
    rc = log__write_all(seg->idx_fd, buf, seg->n_idx * LOG_IDX_ENTRY);
    if (rc < 0)
        goto fail;
    for (size_t i = 0; i < seg->n_tidx; i++) {
        be_put64(buf + i * LOG_TIDX_ENTRY, (uint64_t)seg->tidx[i].ts);
        be_put32(buf + i * LOG_TIDX_ENTRY + 8, seg->tidx[i].rel);
    }
    rc = log__write_all(seg->tidx_fd, buf, seg->n_tidx * LOG_TIDX_ENTRY);
    if (rc < 0)
        goto fail;
    seg->unsynced = 1;
    free(buf);
    return 0;
fail:
    free(buf);
    return log__io_err(-rc);
}

/* Read a whole index file. Returns 0 with *out (caller frees), 1 when missing
 * or not a multiple of entry bytes, or -CN_EIO. */
static int read_file(const log_partition *p, const log_segment *seg, const char *ext,
                     size_t entry, uint8_t **out, size_t *out_len)
{
    char path[LOG_PATH_MAX];
    log__seg_path(p, seg->base, ext, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -CN_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -CN_EIO;
    }
    if (st.st_size % (off_t)entry != 0 || st.st_size > (off_t)INT32_MAX) {
        close(fd);
        return 1;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = xmalloc(len);
    int rc = log__pread_all(fd, buf, len, 0, &got);
    close(fd);
    if (rc < 0 || got != len) {
        free(buf);
        return rc < 0 ? -CN_EIO : 1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int log__index_load(const log_partition *p, log_segment *seg, int64_t log_size,
                    int64_t n_offsets)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    log__index_reset(seg);
    int rc = read_file(p, seg, ".index", LOG_IDX_ENTRY, &buf, &len);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < len / LOG_IDX_ENTRY; i++) {
        uint32_t rel = be_get32(buf + i * LOG_IDX_ENTRY);
        uint32_t pos = be_get32(buf + i * LOG_IDX_ENTRY + 4);
        int bad = (int64_t)pos >= log_size || (n_offsets >= 0 && (int64_t)rel >= n_offsets);
        if (i > 0)
            bad |= rel <= seg->idx[i - 1].rel || pos <= seg->idx[i - 1].pos;
        if (bad)
            goto invalid;
        idx_push(seg, rel, pos);
    }
    free(buf);
    buf = NULL;
    rc = read_file(p, seg, ".timeindex", LOG_TIDX_ENTRY, &buf, &len);
    if (rc < 0)
        goto fail;
    if (rc > 0)
        goto invalid;
    for (size_t i = 0; i < len / LOG_TIDX_ENTRY; i++) {
        int64_t ts = (int64_t)be_get64(buf + i * LOG_TIDX_ENTRY);
        uint32_t rel = be_get32(buf + i * LOG_TIDX_ENTRY + 8);
        int bad = n_offsets >= 0 && (int64_t)rel >= n_offsets;
        if (i > 0)
            bad |= ts < seg->tidx[i - 1].ts || rel < seg->tidx[i - 1].rel;
        if (bad)
            goto invalid;
        tidx_push(seg, ts, rel);
    }
    if (seg->n_tidx > 0)
        seg->max_ts = seg->tidx[seg->n_tidx - 1].ts;
    free(buf);
    return 0;
invalid:
    rc = 1;
fail:
    free(buf);
    log__index_reset(seg);
    return rc;
}

int64_t log__index_lookup(const log_segment *seg, int64_t rel, int64_t *out_rel)
{
    size_t lo = 0, hi = seg->n_idx; /* first entry with rel > target */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)seg->idx[mid].rel <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *out_rel = 0;
        return 0;
    }
    *out_rel = seg->idx[lo - 1].rel;
    return seg->idx[lo - 1].pos;
}

int64_t log__tidx_lookup(const log_segment *seg, int64_t ts)
{
    size_t lo = 0, hi = seg->n_tidx; /* first entry with ts >= target */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->tidx[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? -1 : (int64_t)seg->tidx[lo - 1].rel;
}
