/* Internal-log replay shared by the offsets store and the transaction
 * coordinator (contract in replay.h). Reads up to 1 MiB per log_read slice
 * into one growing buffer with pread. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/replay.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

#define REPLAY_READ_BYTES ((int64_t)1 << 20)

static int pread_all(int fd, uint8_t *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -CN_EIO;
        done += (size_t)n;
    }
    return 0;
}

typedef struct rec_filter {
    const broker_replay_ops *ops;
    void *arg;
    int64_t start;
} rec_filter;

static int filter_rec(const batch_record *r, void *arg)
{
    rec_filter *f = arg;
    if (r->offset < f->start)
        return 0;
    return f->ops->record(r, f->arg);
}

int broker_replay(partition *p, const char *name, batch_scratch *scratch,
                  const broker_replay_ops *ops, void *arg)
{
    log_partition *lp = p->log;
    int64_t off = log_start_offset(lp), end = log_end_offset(lp);
    rec_filter f = {ops, arg, off};
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    while (off < end) {
        log_slice sl;
        rc = log_read(lp, off, end, REPLAY_READ_BYTES, &sl);
        if (rc < 0) {
            slog_error("%s: reading offset %lld failed: %d", name, (long long)off, rc);
            rc = -CN_EIO;
            break;
        }
        if (sl.len <= 0) {
            log_slice_release(&sl);
            slog_error("%s: empty read at offset %lld before the log end %lld; replay stops",
                       name, (long long)off, (long long)end);
            break;
        }
        if ((size_t)sl.len > cap) {
            cap = (size_t)sl.len;
            free(buf);
            buf = xmalloc(cap);
        }
        size_t len = (size_t)sl.len;
        rc = pread_all(sl.fd, buf, len, sl.pos);
        log_slice_release(&sl);
        if (rc < 0) {
            slog_error("%s: pread at offset %lld failed", name, (long long)off);
            break;
        }
        size_t pos = 0;
        int64_t next = off;
        while (pos + BATCH_HEADER_SIZE <= len) {
            batch_info bi;
            batch_parse_header(buf + pos, len - pos, &bi);
            int64_t total = (int64_t)bi.batch_length + 12;
            if (bi.batch_length < 49 || (size_t)total > len - pos) {
                slog_error("%s: damaged batch at offset %lld; replay stops there", name,
                           (long long)bi.base_offset);
                goto out;
            }
            const uint8_t *bp = buf + pos;
            if (bi.magic != 2) {
                slog_warn("%s: skipping batch at offset %lld: magic %d", name,
                          (long long)bi.base_offset, bi.magic);
            } else if (crc32c(0, bp + 21, (size_t)total - 21) != bi.crc) {
                slog_warn("%s: skipping batch at offset %lld: CRC mismatch", name,
                          (long long)bi.base_offset);
            } else {
                if (ops->batch)
                    ops->batch(arg, &bi, bp, (size_t)total);
                if (!bi.control && ops->record) {
                    int err = batch_foreach(bp, (size_t)total, scratch, filter_rec, &f);
                    if (err)
                        slog_warn("%s: batch at offset %lld is malformed (%s); rest "
                                  "skipped", name, (long long)bi.base_offset, cn_strerror(err));
                }
            }
            next = bi.base_offset + bi.last_offset_delta + 1;
            pos += (size_t)total;
        }
        if (next <= off) {
            slog_error("%s: no progress reading at offset %lld; replay stops", name,
                       (long long)off);
            break;
        }
        off = next;
    }
out:
    free(buf);
    return rc;
}
