/* Reading committed records of one partition (see hh_slice.h). */
#include <stdlib.h>
#include <unistd.h>

#include "http/hh_slice.h"
#include "log/log.h"
#include "util/common.h"

void hh_slice_init(hh_slice *s)
{
    *s = (hh_slice){0};
    s->scratch = batch_scratch_new();
}

void hh_slice_fini(hh_slice *s)
{
    batch_scratch_free(s->scratch);
    free(s->buf);
    free(s->ab);
    *s = (hh_slice){0};
}

void hh_slice_trim(hh_slice *s, size_t keep)
{
    if (s->cap > keep) {
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
}

static int pread_all(int fd, uint8_t *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (n <= 0)
            return -CN_EIO;
        done += (size_t)n;
    }
    return 0;
}

static void aborted_one(void *arg, const pst_aborted *a)
{
    hh_slice *s = arg;
    if (s->n_ab == s->cap_ab) {
        s->cap_ab = s->cap_ab ? s->cap_ab * 2 : 8;
        s->ab = xrealloc(s->ab, (size_t)s->cap_ab * sizeof(*s->ab));
    }
    s->ab[s->n_ab++] = *a;
}

static int batch_aborted(const hh_slice *s, const batch_info *bi)
{
    if (!bi->transactional)
        return 0;
    for (int i = 0; i < s->n_ab; i++)
        if (s->ab[i].pid == bi->producer_id && s->ab[i].first_offset <= bi->base_offset &&
            bi->base_offset <= s->ab[i].last_offset)
            return 1;
    return 0;
}

int64_t hh_slice_read(hh_slice *s, partition *p, int64_t pos, int64_t limit, int64_t max_bytes,
                      hh_slice_fn fn, void *arg, int64_t *next)
{
    *next = pos;
    log_slice sl;
    int rc = log_read_verified(p->log, pos, limit, max_bytes, &sl);
    if (rc < 0)
        return rc;
    size_t len = (size_t)sl.len;
    if (len == 0) {
        log_slice_release(&sl);
        return 0;
    }
    if (len > s->cap) {
        free(s->buf);
        s->buf = xmalloc(len);
        s->cap = len;
    }
    rc = pread_all(sl.fd, s->buf, len, sl.pos);
    log_slice_release(&sl);
    if (rc < 0)
        return rc;
    s->n_ab = 0;
    pst_aborted_in(p->ps, pos, batch_span_end(s->buf, len, pos), aborted_one, s);
    size_t off = 0;
    while (off + BATCH_HEADER_SIZE <= len) {
        batch_info bi;
        if (batch_parse_header(s->buf + off, len - off, &bi) < 0 || bi.batch_length < 0)
            break;
        size_t total = (size_t)bi.batch_length + BATCH_LOG_OVERHEAD;
        if (off + total > len)
            break;
        int64_t end = bi.base_offset + bi.last_offset_delta + 1;
        int stop = 0;
        if (end > *next) {
            stop = fn(arg, s->buf + off, total, &bi, !bi.control && !batch_aborted(s, &bi));
            *next = end;
        }
        off += total;
        if (stop)
            break;
    }
    broker_note_read(p, 0, (int64_t)len);
    return (int64_t)len;
}
