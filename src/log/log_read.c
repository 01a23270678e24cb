/* Fetch and timestamp lookups: turn an offset or a timestamp into a slice of
 * whole batches of one segment file. The segment is found by binary search on
 * base offsets, the start position through the offset (or time) index, and
 * the batch by walking headers from there in LOG_READ_CHUNK preads into the
 * partition's read buffer. Slices never cross a segment end and take a
 * reference on the segment's log_file, so retention may unlink and drop the
 * segment while a response still sends from it. Header bytes come from disk:
 * a length that does not fit the segment ends the walk with -CN_EIO (or ends
 * the extension of a slice) instead of being trusted. */
#include "log/log_int.h"

#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

size_t log__seg_find(const log_partition *p, int64_t offset)
{
    size_t lo = 0, hi = p->n_segs; /* first segment with base > offset */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : lo - 1;
}

/* Header at pos, checked to fit in the segment. 1, 0 at the end, or -CN_EIO. */
static int hdr_at(log_win *w, const log_segment *seg, int64_t pos, log_hdr *h)
{
    int rc = 0;
    if (pos >= seg->size)
        return 0;
    const uint8_t *b = log__win_get(w, pos, BATCH_HEADER_SIZE, seg->size, &rc);
    if (!b)
        return -CN_EIO;
    log__hdr_parse(b, h);
    if (h->total < BATCH_HEADER_SIZE || h->total > seg->size - pos)
        return -CN_EIO;
    return 1;
}

static void slice_of(log_segment *seg, int64_t pos, int64_t len, log_slice *out)
{
    log__file_ref(seg->file);
    out->file = seg->file;
    out->fd = seg->file->fd;
    out->pos = pos;
    out->len = len;
}

/* log_read from `floor` up (log_start for readers; a raft log's own reads
 * go below it, down to its first segment). */
static int read_from(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
                     int64_t floor, log_slice *out)
{
    out->file = NULL;
    out->fd = -1;
    out->pos = 0;
    out->len = 0;
    if (offset < floor || offset > p->log_end)
        return -CN_ERANGE;
    if (offset >= max_offset || offset == p->log_end)
        return 0;
    log_win w;
    log_hdr h;
    for (size_t i = log__seg_find(p, offset); i < p->n_segs; i++) {
        log_segment *seg = p->segs[i];
        int64_t rel = 0;
        int64_t pos = offset > seg->base ? log__index_lookup(seg, offset - seg->base, &rel) : 0;
        int rc;
        log__win_init(&w, seg->file->fd, p->rbuf, LOG_READ_CHUNK);
        while ((rc = hdr_at(&w, seg, pos, &h)) > 0 && h.base + h.lod < offset)
            pos += h.total;
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue; /* offset is at the end of this segment */
        if (h.base >= max_offset)
            return 0;
        int64_t len = h.total;
        while (hdr_at(&w, seg, pos + len, &h) > 0 && h.base < max_offset &&
               len + h.total <= max_bytes)
            len += h.total;
        slice_of(seg, pos, len, out);
        return 0;
    }
    return 0;
}

int log_read(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
             log_slice *out)
{
    return read_from(p, offset, max_offset, max_bytes, p->log_start, out);
}

int log_raft_read(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
                  log_slice *out)
{
    if (!p->raft)
        return -CN_EINVAL;
    return read_from(p, offset, max_offset, max_bytes, CN_MAX(p->segs[0]->base, p->anchor_off),
                     out);
}

int log_find_timestamp(log_partition *p, int64_t ts, log_slice *out)
{
    out->file = NULL;
    out->fd = -1;
    out->pos = 0;
    out->len = 0;
    log_win w;
    log_hdr h;
    for (size_t i = 0; i < p->n_segs; i++) {
        log_segment *seg = p->segs[i];
        if (seg->size == 0 || seg->max_ts < ts)
            continue;
        int64_t rel = log__tidx_lookup(seg, ts), found = 0;
        int64_t pos = rel > 0 ? log__index_lookup(seg, rel, &found) : 0;
        int rc;
        log__win_init(&w, seg->file->fd, p->rbuf, LOG_READ_CHUNK);
        while ((rc = hdr_at(&w, seg, pos, &h)) > 0 && h.max_ts < ts)
            pos += h.total;
        if (rc < 0)
            return rc;
        if (rc > 0) {
            slice_of(seg, pos, h.total, out);
            return 0;
        }
    }
    return -CN_ENOENT;
}

/* Check the batches of seg in [from, end) (batch boundaries). Returns the
 * position of the first corrupt batch, end when all are good, or -CN_EIO. */
static int64_t verify_range(log_partition *p, log_segment *seg, int64_t from, int64_t end)
{
    log_win w;
    log__win_init(&w, seg->file->fd, p->rbuf, LOG_READ_CHUNK);
    int64_t pos = from;
    while (pos < end) {
        log_hdr h;
        int rc = hdr_at(&w, seg, pos, &h);
        if (rc <= 0)
            return rc < 0 ? rc : pos;
        if (h.magic != LOG_BATCH_MAGIC || h.total < LOG_BATCH_MIN_LENGTH + 12 ||
            pos + h.total > end)
            return pos;
        uint32_t crc = 0;
        int64_t off = pos + BATCH_OFF_ATTRIBUTES, bend = pos + h.total;
        while (off < bend) {
            size_t n = (size_t)CN_MIN((int64_t)w.cap, bend - off);
            const uint8_t *c = log__win_get(&w, off, n, seg->size, &rc);
            if (!c)
                return rc < 0 ? rc : pos;
            crc = crc32c(crc, c, n);
            off += (int64_t)n;
        }
        if (crc != h.crc)
            return pos;
        pos = bend;
    }
    return pos;
}

int log_read_verified(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
                      log_slice *out)
{
    int rc = log_read(p, offset, max_offset, max_bytes, out);
    if (rc < 0 || out->len == 0)
        return rc;
    log_segment *seg = NULL;
    for (size_t i = log__seg_find(p, offset); i < p->n_segs && !seg; i++)
        if (p->segs[i]->file == out->file)
            seg = p->segs[i];
    int64_t end = out->pos + out->len;
    if (!seg || end <= seg->verified ||
        (out->pos >= seg->vr_lo && end <= seg->vr_hi))
        return 0;
    int64_t from = CN_MAX(out->pos, seg->verified);
    if (from >= seg->vr_lo && from < seg->vr_hi)
        from = seg->vr_hi;
    int64_t bad = verify_range(p, seg, from, end);
    if (bad < 0) {
        log_slice_release(out);
        return (int)bad;
    }
    if (from == seg->verified) {
        seg->verified = bad;
    } else if (from == seg->vr_hi) {
        seg->vr_hi = bad;
    } else {
        seg->vr_lo = from;
        seg->vr_hi = bad;
    }
    if (seg->vr_lo <= seg->verified && seg->vr_hi > seg->verified)
        seg->verified = seg->vr_hi; /* the two ranges met */
    if (bad == end)
        return 0;
    if (seg->bad_logged != bad) {
        seg->bad_logged = bad;
        slog_error("corrupt batch not served (CRC-32C or header check failed) dir=%s "
                   "segment=%020lld position=%lld", p->dir, (long long)seg->base, (long long)bad);
    }
    if (bad == out->pos) {
        log_slice_release(out);
        return -CN_ECORRUPT;
    }
    out->len = bad - out->pos;
    return 0;
}
