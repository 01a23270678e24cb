/* Replay of an internal key-value log at open (contract in kvlog.h): reads
 * the partition from its log start to its log end, up to 1 MiB per log_read
 * slice, into one growing buffer with pread, checks each batch (length,
 * magic 2, CRC-32C) and hands its records to the owner. Uses plain log_read,
 * not log_read_verified: a bad batch is skipped here rather than ending the
 * read. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvlog/kvlog_int.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

#define REPLAY_READ_BYTES ((int64_t)1 << 20)
#define REPLAY_WARN_MAX 10          /* skipped records logged one by one */

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

typedef struct replay_ctx {
    kvl *l;
    int64_t start;                  /* records below the log start are not passed */
} replay_ctx;

static int replay_rec(const batch_record *r, void *arg)
{
    replay_ctx *c = arg;
    kvl *l = c->l;
    if (r->offset < c->start)
        return 0;
    const char *why = NULL;
    if (l->ops.on_record(l->arg, r, &why) < 0) {
        if (l->skipped++ < REPLAY_WARN_MAX)
            slog_warn("%s: skipping record at offset %lld: %s", l->name, (long long)r->offset,
                      why ? why : "rejected");
        return 0;
    }
    l->replayed++;
    return 0;
}

int kvl__replay(kvl *l)
{
    log_partition *lp = l->p->log;
    const char *name = l->name;
    int64_t off = log_start_offset(lp), end = log_end_offset(lp);
    replay_ctx c = {l, off};
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    while (off < end) {
        log_slice sl;
        rc = log_read(lp, off, end, REPLAY_READ_BYTES, &sl);
        if (rc < 0) {
            slog_error("%s: reading offset %lld failed: %s", name, (long long)off, cn_strerror(rc));
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
            int64_t total = (int64_t)bi.batch_length + BATCH_LOG_OVERHEAD;
            if (bi.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
                (size_t)total > len - pos) {
                slog_error("%s: damaged batch at offset %lld; replay stops there", name,
                           (long long)bi.base_offset);
                goto out;
            }
            const uint8_t *bp = buf + pos;
            if (bi.magic != 2) {
                slog_warn("%s: skipping batch at offset %lld: magic %d", name,
                          (long long)bi.base_offset, bi.magic);
            } else if (crc32c(0, bp + BATCH_OFF_ATTRIBUTES,
                              (size_t)total - BATCH_OFF_ATTRIBUTES) != bi.crc) {
                slog_warn("%s: skipping batch at offset %lld: CRC mismatch", name,
                          (long long)bi.base_offset);
            } else {
                l->log_bytes += total;
                if (!bi.control) {
                    int err = batch_foreach(bp, (size_t)total, l->scratch, replay_rec, &c);
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
    if (l->skipped)
        slog_warn("%s: %lld record(s) skipped during replay", name, (long long)l->skipped);
    return rc;
}
