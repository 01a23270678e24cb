/* Raft log on the segment log (log.h "Raft log"): the side log raft.meta,
 * the per-segment .rindex files, their recovery, index <-> offset lookups,
 * and the truncation of the tail. Everything here runs only for partitions
 * opened with opt.raft = 1.
 *
 * Raft indexes. Entries are the batches (in offset order) and the side
 * entries, interleaved: a side entry records `offset`, the log end when it
 * was appended, and sits after every batch below that offset and before the
 * batch at it. Walking batches in order from a known point (the anchor, a
 * segment's first batch, or a .rindex entry), each batch's index is the
 * previous entry's index + 1 after passing the side entries whose offset is
 * <= its base offset.
 *
 * raft.meta: records back to back, big-endian:
 *   0   u64  index       raft index of the entry (anchor: of the entry just
 *                        before the raft log)
 *   8   u64  term
 *   16  i64  offset      log end when appended (anchor: offset of the first
 *                        raft batch)
 *   24  u8   type        0 = anchor (the first record, only there); 1..254 =
 *                        the caller's entry type; 255 reserved
 *   25  u32  len         payload bytes, <= LOG_RAFT_META_MAX
 *   29  len  payload
 *   29+len u32 CRC-32C of bytes [0, 29+len)
 * Valid: whole, CRC matches, index strictly increasing, term and offset
 * non-decreasing (the first side entry: index > the anchor's, offset >= the
 * anchor's). Loading stops at the first record that is not valid and cuts
 * the file there (logged unless only zeros follow); records whose offset is
 * past the recovered log end are cut too (their batches were lost). The file
 * is written with write(2) at its end and fdatasynced by the partition's
 * sync jobs like the segment files.
 *
 * <base>.rindex, one per raft segment:
 *   0   u64  index of the segment's first batch (absent while it has none)
 *   8   then one entry per .index entry, in the same order:
 *       u32  raft index of the batch at that .index entry minus the first
 *       u32  file position of that batch (equal to the .index entry's)
 * Valid when it has exactly the segment's .index entries with the same
 * positions and strictly increasing relative indexes. Advisory, like .index:
 * recovery always rebuilds the tail segment's file and any other that is
 * missing, invalid or whose first index does not follow the previous
 * segment, by walking batch headers (from the anchor, or from the previous
 * segment's end). The one thing it alone keeps is the first index of the
 * first segment once the anchor's segment was deleted by retention: if that
 * file is lost, open fails with -CN_ECORRUPT (step 2 anchors snapshots).
 *
 * Ordering and crashes. (1) A batch is never written while a side entry or a
 * cut of raft.meta is not durable (hold 1), so a side entry lost in a crash
 * has no surviving batch after it: indexes of surviving batches never shift.
 * (2) log_truncate_from cuts the .log files first (segments after the cut
 * unlinked, the cut segment ftruncated, its indexes rewritten) and holds
 * every append (hold 2); raft.meta is cut only after a sync job has made
 * the .log cut durable, and batch appends resume once a second job made the
 * raft.meta cut durable. A crash at any point leaves: .log files that are a
 * prefix of the old log containing the cut log (recovery's torn-tail and
 * gap rules), and raft.meta either old (its records past the recovered end
 * are dropped) or cut. So recovery yields the cut log or a prefix of the
 * old log that contains it, never a mix. (3) Recovery checks each side
 * entry's index against its position and that terms never go down, and cuts
 * the raft log at the first violation (logged as an error). */
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

#define RM_HDR 29
#define RM_CRC 4
#define RM_ANCHOR 0
#define RM_RESERVED 255
#define RIDX_HDR 8
#define RIDX_ENT 8
#define META_FILE "raft.meta"

/* Side entries ------------------------------------------------------------- */

/* Position of the side entry with index, or -1. */
static ssize_t rm_find(const log_partition *p, int64_t index)
{
    size_t lo = 0, hi = p->n_rm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->rm[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_rm && p->rm[lo].index == index ? (ssize_t)lo : -1;
}

/* First side entry with offset > off. */
static size_t rm_after(const log_partition *p, int64_t off)
{
    size_t lo = 0, hi = p->n_rm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->rm[mid].offset <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Drop side entries from position i on (memory only). */
static void rm_drop_from(log_partition *p, size_t i)
{
    for (size_t j = i; j < p->n_rm; j++)
        free(p->rm[j].payload);
    if (i < p->n_rm)
        p->n_rm = i;
}

void log__raft_drop_sides(log_partition *p, int64_t index)
{
    size_t n = 0;
    while (n < p->n_rm && p->rm[n].index <= index)
        free(p->rm[n++].payload);
    if (n) {
        memmove(p->rm, p->rm + n, (p->n_rm - n) * sizeof(*p->rm));
        p->n_rm -= n;
    }
}

static void rm_push(log_partition *p, const log_rmeta *m)
{
    if (p->n_rm == p->cap_rm) {
        p->cap_rm = p->cap_rm ? p->cap_rm * 2 : 16;
        p->rm = xrealloc(p->rm, p->cap_rm * sizeof(*p->rm));
    }
    p->rm[p->n_rm++] = *m;
}

/* Encode one record into a malloc'd buffer; *out_len set. */
static uint8_t *rm_encode(int64_t index, int64_t term, int64_t offset, uint8_t type,
                          const uint8_t *payload, uint32_t len, size_t *out_len)
{
    size_t n = RM_HDR + (size_t)len + RM_CRC;
    uint8_t *b = xmalloc(n);
    be_put64(b, (uint64_t)index);
    be_put64(b + 8, (uint64_t)term);
    be_put64(b + 16, (uint64_t)offset);
    b[24] = type;
    be_put32(b + 25, len);
    if (len)
        memcpy(b + RM_HDR, payload, len);
    be_put32(b + RM_HDR + len, crc32c(0, b, RM_HDR + len));
    *out_len = n;
    return b;
}

static void meta_path(const log_partition *p, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", p->dir, META_FILE);
}

/* The last entry, recomputed from segments, side entries and the anchor. */
static void recount_last(log_partition *p)
{
    log__raft_recount(p);
}

void log__raft_recount(log_partition *p)
{
    p->rlast = p->anchor_index;
    p->rlast_term = p->anchor_term;
    for (size_t s = p->n_segs; s-- > 0;) {
        if (p->segs[s]->rfirst) {
            p->rlast = p->segs[s]->rlast;
            p->rlast_term = p->segs[s]->rlast_term;
            break;
        }
    }
    if (p->n_rm && p->rm[p->n_rm - 1].index > p->rlast) {
        p->rlast = p->rm[p->n_rm - 1].index;
        p->rlast_term = p->rm[p->n_rm - 1].term;
    }
}

/* Walking batches with their raft indexes ------------------------------------ */

typedef struct rwalk {
    log_win w;
    int64_t pos;                   /* next batch position */
    int64_t r;                     /* index of the last entry passed */
    int64_t term;                  /* its term */
    size_t k;                      /* first side entry not yet passed */
    int check;                     /* recovery: enforce index and term rules */
    int64_t bad_off, bad_index;    /* check failed: cut from here */
} rwalk;

/* Pass side entries with offset <= upto. 0, or 2 when a check failed. */
static int rwalk_sides(const log_partition *p, rwalk *st, int64_t upto)
{
    while (st->k < p->n_rm && p->rm[st->k].offset <= upto) {
        const log_rmeta *m = &p->rm[st->k];
        if (st->check && (m->index != st->r + 1 || m->term < st->term)) {
            st->bad_off = m->offset;
            st->bad_index = m->index;
            return 2;
        }
        st->r = m->index;
        st->term = m->term;
        st->k++;
    }
    return 0;
}

/* Next batch of seg: 1 (st->r is its index, *h and *epoch set), 0 at the
 * end, 2 when a check failed, or -CN_EIO. */
static int rwalk_next(const log_partition *p, const log_segment *seg, rwalk *st, log_hdr *h,
                      int64_t *epoch)
{
    int rc = 0;
    if (st->pos >= seg->size)
        return 0;
    const uint8_t *b = log__win_get(&st->w, st->pos, BATCH_HEADER_SIZE, seg->size, &rc);
    if (!b)
        return -CN_EIO;
    log__hdr_parse(b, h);
    if (h->total < BATCH_HEADER_SIZE || h->total > seg->size - st->pos || h->lod < 0)
        return -CN_EIO;
    *epoch = (int32_t)be_get32(b + BATCH_OFF_LEADER_EPOCH);
    if (rwalk_sides(p, st, h->base) == 2)
        return 2;
    if (st->check && *epoch < st->term) {
        st->bad_off = h->base;
        st->bad_index = st->r + 1;
        return 2;
    }
    st->r++;
    st->term = *epoch;
    st->pos += h->total;
    return 1;
}

/* Position st before the batch of seg at .index entry j (-1: the first
 * batch), for lookups. */
static void rwalk_at(const log_partition *p, const log_segment *seg, ssize_t j, uint8_t *buf,
                     size_t cap, rwalk *st)
{
    memset(st, 0, sizeof(*st));
    log__win_init(&st->w, seg->file->fd, buf, cap);
    int64_t base = seg->base;
    st->r = seg->rfirst - 1;
    if (j >= 0) {
        st->pos = seg->idx[j].pos;
        base = seg->base + seg->idx[j].rel;
        st->r = seg->rfirst + seg->ridx[j] - 1;
    }
    st->k = rm_after(p, base); /* side entries at base come before this batch */
    st->term = INT64_MIN;
}

/* .rindex files ----------------------------------------------------------- */

static int ridx_open(const log_partition *p, log_segment *seg, int trunc)
{
    if (seg->ridx_fd >= 0 && !trunc)
        return 0;
    if (seg->ridx_fd >= 0)
        close(seg->ridx_fd);
    char path[LOG_PATH_MAX];
    log__seg_path(p, seg->base, ".rindex", path, sizeof(path));
    seg->ridx_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0),
                        0644);
    return seg->ridx_fd < 0 ? -errno : 0;
}

int log__raft_seg_open(log_partition *p, log_segment *seg)
{
    return ridx_open(p, seg, 1);
}

static void ridx_push(log_segment *seg, uint32_t rel)
{
    if (seg->n_ridx == seg->cap_ridx) {
        seg->cap_ridx = seg->cap_ridx ? seg->cap_ridx * 2 : 64;
        seg->ridx = xrealloc(seg->ridx, seg->cap_ridx * sizeof(*seg->ridx));
    }
    seg->ridx[seg->n_ridx++] = rel;
}

/* Rewrite seg's .rindex from memory. 0 or -CN_E*. */
static int ridx_write_all(log_partition *p, log_segment *seg)
{
    int rc = ridx_open(p, seg, 0);
    if (rc == 0 && fault_ftruncate(seg->ridx_fd, 0) < 0)
        rc = -errno;
    if (rc < 0)
        return log__io_err(-rc);
    if (seg->rfirst) {
        size_t n = RIDX_HDR + seg->n_ridx * RIDX_ENT;
        uint8_t *b = xmalloc(n);
        be_put64(b, (uint64_t)seg->rfirst);
        for (size_t j = 0; j < seg->n_ridx; j++) {
            be_put32(b + RIDX_HDR + j * RIDX_ENT, seg->ridx[j]);
            be_put32(b + RIDX_HDR + j * RIDX_ENT + 4, seg->idx[j].pos);
        }
        rc = log__write_all(seg->ridx_fd, b, n);
        free(b);
        if (rc < 0)
            return log__io_err(-rc);
    }
    seg->unsynced = 1;
    return 0;
}

/* Load seg's .rindex and check it against seg's .index entries. 1 valid,
 * 0 missing or invalid (memory reset), -CN_EIO. */
static int ridx_load(const log_partition *p, log_segment *seg)
{
    seg->rfirst = 0;
    seg->n_ridx = 0;
    char path[LOG_PATH_MAX];
    log__seg_path(p, seg->base, ".rindex", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -CN_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -CN_EIO;
    }
    size_t want = RIDX_HDR + seg->n_idx * RIDX_ENT;
    if (st.st_size == 0 || (size_t)st.st_size != want) {
        close(fd);
        return st.st_size == 0 && seg->size == 0;
    }
    uint8_t *b = xmalloc(want);
    size_t got = 0;
    int rc = log__pread_all(fd, b, want, 0, &got);
    close(fd);
    if (rc < 0 || got != want) {
        free(b);
        return rc < 0 ? -CN_EIO : 0;
    }
    int64_t first = (int64_t)be_get64(b);
    int ok = first > 0 && seg->size > 0;
    for (size_t j = 0; ok && j < seg->n_idx; j++) {
        uint32_t rel = be_get32(b + RIDX_HDR + j * RIDX_ENT);
        uint32_t pos = be_get32(b + RIDX_HDR + j * RIDX_ENT + 4);
        ok = pos == seg->idx[j].pos && rel > (j ? seg->ridx[j - 1] : 0);
        if (ok)
            ridx_push(seg, rel);
    }
    free(b);
    if (!ok) {
        seg->n_ridx = 0;
        return 0;
    }
    seg->rfirst = first;
    return 1;
}

int log__raft_track(log_partition *p, log_segment *seg, int64_t pos, int64_t epoch, int mask)
{
    int64_t r = p->rlast + 1;
    int first = seg->rfirst == 0;
    uint8_t b[RIDX_HDR + RIDX_ENT];
    size_t n = 0;
    if (first) {
        be_put64(b, (uint64_t)r);
        n = RIDX_HDR;
    }
    if (mask & 1) {
        be_put32(b + n, (uint32_t)(r - (first ? r : seg->rfirst)));
        be_put32(b + n + 4, (uint32_t)pos);
        n += RIDX_ENT;
    }
    if (n) {
        int rc = ridx_open(p, seg, 0);
        if (rc == 0)
            rc = log__write_all(seg->ridx_fd, b, n);
        if (rc < 0) {
            off_t old = first ? 0 : (off_t)(RIDX_HDR + seg->n_ridx * RIDX_ENT);
            if (seg->ridx_fd >= 0 && fault_ftruncate(seg->ridx_fd, old) < 0)
                p->failed = 1;
            return rc;
        }
    }
    if (first)
        seg->rfirst = r;
    if (mask & 1)
        ridx_push(seg, (uint32_t)(r - seg->rfirst));
    seg->rlast = r;
    seg->rlast_term = epoch;
    p->rlast = r;
    p->rlast_term = epoch;
    return 0;
}

/* raft.meta at open ---------------------------------------------------------- */

static int meta_create(log_partition *p)
{
    if (log__active(p)->size > 0) {
        int rc = log__roll(p); /* raft batches begin in a segment of their own */
        if (rc < 0)
            return rc;
    }
    char path[LOG_PATH_MAX];
    meta_path(p, path, sizeof(path));
    if (p->meta_fd >= 0)
        close(p->meta_fd);
    p->meta_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (p->meta_fd < 0)
        return log__io_err(errno);
    p->anchor_index = 0;
    p->anchor_term = 0;
    p->anchor_off = p->log_end;
    size_t n;
    uint8_t *b = rm_encode(0, 0, p->anchor_off, RM_ANCHOR, NULL, 0, &n);
    int rc = log__pwrite_all(p->meta_fd, b, n, 0);
    free(b);
    if (rc < 0)
        return log__io_err(-rc);
    p->meta_size = (int64_t)n;
    p->meta_unsynced = 1;
    p->dir_unsynced = 1;
    slog_info("raft log created dir=%s offset=%lld", p->dir, (long long)p->anchor_off);
    return 0;
}

int log__raft_meta_restart(log_partition *p, int64_t index, int64_t term, int64_t offset)
{
    rm_drop_from(p, 0);
    size_t n;
    uint8_t *b = rm_encode(index, term, offset, RM_ANCHOR, NULL, 0, &n);
    int rc = fault_ftruncate(p->meta_fd, 0) < 0 ? -errno : log__pwrite_all(p->meta_fd, b, n, 0);
    free(b);
    if (rc < 0)
        return log__io_err(-rc);
    p->meta_size = (int64_t)n;
    p->meta_unsynced = 1;
    p->meta_cut_pos = -1;
    p->anchor_index = index;
    p->anchor_term = term;
    p->anchor_off = offset;
    return 0;
}

/* Cut raft.meta at pos (loaded records after it are gone). */
static int meta_cut_file(log_partition *p, int64_t pos)
{
    if (fault_ftruncate(p->meta_fd, pos) < 0)
        return -CN_EIO;
    p->meta_size = pos;
    p->meta_unsynced = 1;
    return 0;
}

static int meta_load(log_partition *p)
{
    char path[LOG_PATH_MAX];
    meta_path(p, path, sizeof(path));
    p->meta_fd = open(path, O_RDWR | O_CLOEXEC);
    if (p->meta_fd < 0)
        return errno == ENOENT ? meta_create(p) : -CN_EIO;
    struct stat st;
    if (fstat(p->meta_fd, &st) < 0)
        return -CN_EIO;
    if (st.st_size < RM_HDR + RM_CRC) {
        /* Torn at creation (the open that wrote it syncs before returning:
         * nothing was appended after it). */
        slog_warn("raft log: raft.meta shorter than its anchor, created again dir=%s", p->dir);
        return meta_create(p);
    }
    if (st.st_size > (off_t)1 << 30)
        return -CN_ECORRUPT;
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *b = xmalloc(size);
    int rc = log__pread_all(p->meta_fd, b, size, 0, &got);
    if (rc < 0 || got != size) {
        free(b);
        return -CN_EIO;
    }
    size_t pos = 0;
    int64_t prev_index = 0, prev_term = 0, prev_off = 0;
    while (size - pos >= RM_HDR + RM_CRC) {
        const uint8_t *r = b + pos;
        uint32_t len = be_get32(r + 25);
        if (len > LOG_RAFT_META_MAX || size - pos - RM_HDR - RM_CRC < len ||
            be_get32(r + RM_HDR + len) != crc32c(0, r, RM_HDR + len))
            break;
        log_rmeta m = {
            .index = (int64_t)be_get64(r),
            .term = (int64_t)be_get64(r + 8),
            .offset = (int64_t)be_get64(r + 16),
            .file_pos = (int64_t)pos,
            .type = r[24],
            .len = len,
        };
        if (pos == 0) {
            if (m.type != RM_ANCHOR || m.index < 0 || m.term < 0 || m.offset < 0)
                break;
            p->anchor_index = prev_index = m.index;
            p->anchor_term = prev_term = m.term;
            p->anchor_off = prev_off = m.offset;
        } else {
            if (m.type == RM_ANCHOR || m.type == RM_RESERVED || m.index <= prev_index ||
                m.term < prev_term || m.offset < prev_off)
                break;
            if (len) {
                m.payload = xmalloc(len);
                memcpy(m.payload, r + RM_HDR, len);
            }
            rm_push(p, &m);
            prev_index = m.index;
            prev_term = m.term;
            prev_off = m.offset;
        }
        pos += RM_HDR + len + RM_CRC;
    }
    int zeros = 1;
    for (size_t i = pos; i < size && zeros; i++)
        zeros = b[i] == 0;
    free(b);
    if (pos == 0) {
        slog_error("raft log: raft.meta anchor is corrupt dir=%s", p->dir);
        return -CN_ECORRUPT;
    }
    p->meta_size = (int64_t)size;
    if (pos < size) {
        if (!zeros)
            slog_warn("raft log: raft.meta cut after a bad record dir=%s from=%zu to=%zu", p->dir,
                      size, pos);
        if (meta_cut_file(p, (int64_t)pos) < 0)
            return -CN_EIO;
    }
    /* Side entries past the recovered end lost the batches before them. */
    size_t i = rm_after(p, p->log_end);
    if (i < p->n_rm) {
        slog_warn("raft log: dropped %zu side entries past the log end dir=%s end=%lld",
                  p->n_rm - i, p->dir, (long long)p->log_end);
        if (meta_cut_file(p, p->rm[i].file_pos) < 0)
            return -CN_EIO;
        rm_drop_from(p, i);
    }
    return 0;
}

/* Truncation ----------------------------------------------------------------- */

/* Position of the batch of seg whose base is offset, or -CN_EINVAL. */
static int64_t batch_pos(log_partition *p, log_segment *seg, int64_t offset)
{
    if (offset == seg->base)
        return 0;
    int64_t rel = 0;
    int64_t pos = log__index_lookup(seg, offset - seg->base, &rel);
    log_win w;
    log__win_init(&w, seg->file->fd, p->rbuf, LOG_READ_CHUNK);
    while (pos < seg->size) {
        int rc = 0;
        const uint8_t *b = log__win_get(&w, pos, BATCH_HEADER_SIZE, seg->size, &rc);
        if (!b)
            return -CN_EIO;
        log_hdr h;
        log__hdr_parse(b, &h);
        if (h.total < BATCH_HEADER_SIZE || h.total > seg->size - pos)
            return -CN_EIO;
        if (h.base == offset)
            return pos;
        if (h.base > offset)
            break;
        pos += h.total;
    }
    return -CN_EINVAL;
}

/* seg was cut to size: drop index entries past it and recompute max_ts,
 * bytes_since_idx, rlast. 0 or -CN_EIO. */
static int seg_cut_memory(log_partition *p, log_segment *seg)
{
    int64_t size = seg->size;
    while (seg->n_idx && seg->idx[seg->n_idx - 1].pos >= size)
        seg->n_idx--;
    int64_t end_rel = INT64_MAX;
    int64_t last_pos = seg->n_idx ? seg->idx[seg->n_idx - 1].pos : 0;
    log_win w;
    log__win_init(&w, seg->file->fd, p->rbuf, LOG_READ_CHUNK);
    int64_t max_ts = -1, pos = last_pos;
    while (pos < size) {
        int rc = 0;
        const uint8_t *b = log__win_get(&w, pos, BATCH_HEADER_SIZE, size, &rc);
        if (!b)
            return -CN_EIO;
        log_hdr h;
        log__hdr_parse(b, &h);
        if (h.total < BATCH_HEADER_SIZE || h.total > size - pos)
            return -CN_EIO;
        max_ts = CN_MAX(max_ts, h.max_ts);
        end_rel = h.base + h.lod - seg->base;
        pos += h.total;
    }
    if (size == 0)
        end_rel = -1;
    while (seg->n_tidx && (int64_t)seg->tidx[seg->n_tidx - 1].rel > end_rel)
        seg->n_tidx--;
    seg->max_ts = CN_MAX(max_ts, seg->n_tidx ? seg->tidx[seg->n_tidx - 1].ts : -1);
    seg->bytes_since_idx = size - last_pos;
    seg->verified = CN_MIN(seg->verified, size);
    seg->vr_hi = CN_MIN(seg->vr_hi, size);
    if (seg->vr_lo >= seg->vr_hi)
        seg->vr_lo = seg->vr_hi = 0;
    if (!p->raft || !seg->rfirst)
        return 0;
    if (size == 0) {
        seg->rfirst = seg->rlast = seg->rlast_term = 0;
        seg->n_ridx = 0;
        return 0;
    }
    if (seg->n_ridx > seg->n_idx)
        seg->n_ridx = seg->n_idx;
    rwalk st;
    rwalk_at(p, seg, (ssize_t)seg->n_ridx - 1, p->rbuf, LOG_READ_CHUNK, &st);
    log_hdr h;
    int64_t epoch = 0;
    int rc;
    while ((rc = rwalk_next(p, seg, &st, &h, &epoch)) == 1) {
        seg->rlast = st.r;
        seg->rlast_term = epoch;
    }
    return rc < 0 ? rc : 0;
}

/* Remove batches at offset and after (offset: a batch base or log_end) and
 * side entries with index >= side_from. recovering: at open, everything at
 * once (a blocking sync between the .log cut and the raft.meta cut). */
static int cut(log_partition *p, int64_t offset, int64_t side_from, int recovering)
{
    int batches = offset < p->log_end;
    size_t si = 0, ci = 0;
    log_segment *seg = NULL;
    int64_t pos = 0;
    if (batches) {
        si = log__seg_find(p, offset);
        seg = p->segs[si];
        pos = batch_pos(p, seg, offset);
        if (pos < 0)
            return (int)pos;
    }
    if (p->raft) {
        ci = p->n_rm;
        for (size_t i = 0; i < p->n_rm; i++)
            if (p->rm[i].index >= side_from) {
                ci = i;
                break;
            }
    }
    int sides = p->raft && ci < p->n_rm;
    if (!batches && !sides)
        return 0;
    if (batches) {
        slog_info("log truncated dir=%s from=%lld to=%lld", p->dir, (long long)p->log_end,
                  (long long)offset);
        /* Later segments first (last to first), so that a crash leaves a
         * prefix; recovery removes segments after a gap. */
        while (p->n_segs > si + 1) {
            log_segment *s = p->segs[--p->n_segs];
            p->size_bytes -= s->size;
            log__seg_unlink(p, s);
            log__seg_free(s);
        }
        if (fault_ftruncate(seg->file->fd, pos) < 0) {
            p->failed = 1;
            slog_error("truncate failed, partition failed dir=%s err=%d", p->dir, errno);
            return -CN_EIO;
        }
        p->size_bytes -= seg->size - pos;
        seg->size = pos;
        seg->preallocated = 0;
        seg->unsynced = 1;
        if (pos == 0)
            seg->created_ms = -1; /* the roll clock starts at the next append */
        int rc = seg_cut_memory(p, seg);
        if (rc == 0)
            rc = log__index_write_all(p, seg) < 0 ? -CN_EIO : 0;
        if (rc == 0 && p->raft)
            rc = ridx_write_all(p, seg);
        if (rc < 0) {
            p->failed = 1;
            slog_error("truncate failed, partition failed dir=%s err=%d", p->dir, -rc);
            return -CN_EIO;
        }
        if (p->opt.preallocate && p->opt.segment_bytes > pos &&
            fallocate(seg->file->fd, 0, 0, (off_t)p->opt.segment_bytes) == 0)
            seg->preallocated = 1;
        p->log_end = offset;
        p->hw = CN_MIN(p->hw, offset);
        p->durable = CN_MIN(p->durable, offset);
        if (p->sync_inflight)
            p->job.target = CN_MIN(p->job.target, offset);
    }
    if (sides) {
        int64_t fpos = p->rm[ci].file_pos;
        rm_drop_from(p, ci);
        if (batches && !recovering) {
            /* Once the .log cut is durable (log__raft_synced). */
            p->meta_cut_pos = p->meta_cut_pos >= 0 ? CN_MIN(p->meta_cut_pos, fpos) : fpos;
            p->meta_size = fpos;
        } else {
            if (p->meta_cut_pos >= fpos)
                p->meta_cut_pos = -1;
            if (batches && log_partition_sync_now(p) < 0)
                return -CN_EIO;
            if (meta_cut_file(p, fpos) < 0) {
                p->failed = 1;
                return -CN_EIO;
            }
        }
    }
    if (p->raft) {
        recount_last(p);
        p->rdurable = CN_MIN(p->rdurable, p->rlast);
        if (p->sync_inflight)
            p->job.rtarget = CN_MIN(p->job.rtarget, p->rlast);
        if (!recovering) {
            p->hold = CN_MAX(p->hold, batches ? 2 : 1);
            p->hold_seq++;
        }
    }
    if (!recovering)
        log_sync_request(p);
    return 0;
}

int log_truncate_from(log_partition *p, int64_t offset)
{
    if (p->failed)
        return -CN_EIO;
    if (offset < p->log_start || offset > p->log_end || (p->raft && offset < p->anchor_off))
        return -CN_ERANGE;
    int64_t side_from = INT64_MAX;
    if (p->raft) {
        /* Side entries after the batch at offset: those with a larger offset. */
        size_t i = rm_after(p, offset);
        if (i < p->n_rm)
            side_from = p->rm[i].index;
    }
    return cut(p, offset, side_from, 0);
}

int log_raft_truncate(log_partition *p, int64_t index)
{
    if (!p->raft)
        return -CN_EINVAL;
    if (p->failed)
        return -CN_EIO;
    if (index <= p->anchor_index || index > p->rlast + 1)
        return -CN_ERANGE;
    if (index == p->rlast + 1)
        return 0;
    ssize_t i = rm_find(p, index);
    if (i >= 0) {
        if (p->rm[i].offset < p->log_start)
            return -CN_ERANGE;
        return cut(p, p->rm[i].offset, index, 0);
    }
    log_raft_entry e;
    int rc = log_raft_entry_at(p, index, &e);
    if (rc < 0)
        return rc == -CN_ENOENT ? -CN_ERANGE : rc;
    if (e.offset < p->log_start)
        return -CN_ERANGE;
    return cut(p, e.offset, index, 0);
}

/* Appends and sync hooks -------------------------------------------------------- */

int log_raft_append_meta(log_partition *p, int64_t index, int64_t term, uint8_t type,
                         const uint8_t *payload, uint32_t len)
{
    if (!p->raft || type == RM_ANCHOR || type == RM_RESERVED || len > LOG_RAFT_META_MAX ||
        (len && !payload))
        return -CN_EINVAL;
    if (p->failed)
        return -CN_EIO;
    if (p->hold == 2)
        return -CN_EAGAIN;
    if (index != p->rlast + 1)
        return -CN_ERANGE;
    if (term < p->rlast_term)
        return -CN_EINVAL;
    size_t n;
    uint8_t *b = rm_encode(index, term, p->log_end, type, payload, len, &n);
    int rc = log__pwrite_all(p->meta_fd, b, n, p->meta_size);
    free(b);
    if (rc < 0) {
        int err = log__io_err(-rc);
        if (fault_ftruncate(p->meta_fd, p->meta_size) < 0 || err != -CN_ENOSPC) {
            p->failed = 1;
            slog_error("raft.meta write failed, partition failed dir=%s err=%d", p->dir, -rc);
            return -CN_EIO;
        }
        return err;
    }
    log_rmeta m = {
        .index = index, .term = term, .offset = p->log_end, .file_pos = p->meta_size,
        .type = type, .len = len,
    };
    if (len) {
        m.payload = xmalloc(len);
        memcpy(m.payload, payload, len);
    }
    rm_push(p, &m);
    p->meta_size += (int64_t)n;
    p->meta_unsynced = 1;
    p->rlast = index;
    p->rlast_term = term;
    p->hold = CN_MAX(p->hold, 1);
    p->hold_seq++;
    return 0;
}

int log__raft_synced(log_partition *p, uint64_t hold_seq, int blocking)
{
    if (!p->raft || !p->hold || (!blocking && hold_seq != p->hold_seq))
        return 0;
    if (p->hold == 2 && p->meta_cut_pos >= 0) {
        int64_t fpos = p->meta_cut_pos;
        p->meta_cut_pos = -1;
        if (meta_cut_file(p, fpos) < 0 || (blocking && fault_fdatasync(p->meta_fd) < 0)) {
            p->failed = 1;
            slog_error("raft.meta cut failed, partition failed dir=%s", p->dir);
            return -CN_EIO;
        }
        if (!blocking) {
            p->hold = 1;
            p->hold_seq++;
            return 1; /* one more sync for the raft.meta cut */
        }
        p->meta_unsynced = 0;
    }
    p->hold = 0;
    return 0;
}

/* Lookups -------------------------------------------------------------------------- */

int log_raft_entry_at(log_partition *p, int64_t index, log_raft_entry *out)
{
    memset(out, 0, sizeof(*out));
    if (!p->raft)
        return -CN_EINVAL;
    if (index <= p->anchor_index || index > p->rlast)
        return -CN_ERANGE;
    ssize_t i = rm_find(p, index);
    if (i >= 0) {
        const log_rmeta *m = &p->rm[i];
        out->index = index;
        out->term = m->term;
        out->offset = m->offset;
        out->next_offset = m->offset;
        out->type = m->type;
        out->payload = m->payload;
        out->payload_len = m->len;
        return 0;
    }
    log_segment *seg = NULL;
    for (size_t s = p->n_segs; s-- > 0 && !seg;)
        if (p->segs[s]->rfirst && p->segs[s]->rfirst <= index)
            seg = p->segs[s];
    if (!seg)
        return -CN_ENOENT;
    if (index > seg->rlast)
        return -CN_EIO;
    size_t lo = 0, hi = seg->n_ridx; /* first entry past index */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->rfirst + seg->ridx[mid] <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    rwalk st;
    rwalk_at(p, seg, (ssize_t)lo - 1, p->rbuf, LOG_READ_CHUNK, &st);
    log_hdr h;
    int64_t epoch = 0;
    int rc;
    while ((rc = rwalk_next(p, seg, &st, &h, &epoch)) == 1 && st.r < index)
        ;
    if (rc != 1 || st.r != index)
        return -CN_EIO;
    out->index = index;
    out->term = epoch;
    out->is_batch = 1;
    out->offset = h.base;
    out->next_offset = h.base + h.lod + 1;
    out->len = h.total;
    return 0;
}

int log_raft_side_last(const log_partition *p, int64_t upto, uint8_t type, log_raft_entry *out)
{
    memset(out, 0, sizeof(*out));
    if (!p->raft)
        return -CN_EINVAL;
    for (size_t i = p->n_rm; i-- > 0;) {
        const log_rmeta *m = &p->rm[i];
        if (m->index > upto || m->type != type)
            continue;
        out->index = m->index;
        out->term = m->term;
        out->offset = m->offset;
        out->type = m->type;
        out->payload = m->payload;
        out->payload_len = m->len;
        return 0;
    }
    return -CN_ENOENT;
}

int log_raft_index_of(log_partition *p, int64_t offset, int64_t *out_index, int64_t *out_term)
{
    if (!p->raft)
        return -CN_EINVAL;
    if (offset < CN_MAX(p->log_start, p->anchor_off) || offset >= p->log_end)
        return -CN_ERANGE;
    log_segment *seg = p->segs[log__seg_find(p, offset)];
    if (!seg->rfirst)
        return -CN_EIO;
    size_t lo = 0, hi = seg->n_ridx; /* first entry past offset */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->base + seg->idx[mid].rel <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    rwalk st;
    rwalk_at(p, seg, (ssize_t)lo - 1, p->rbuf, LOG_READ_CHUNK, &st);
    log_hdr h;
    int64_t epoch = 0;
    int rc;
    while ((rc = rwalk_next(p, seg, &st, &h, &epoch)) == 1 && h.base + h.lod < offset)
        ;
    if (rc != 1)
        return -CN_EIO;
    *out_index = st.r;
    *out_term = epoch;
    return 0;
}

int64_t log_raft_durable(const log_partition *p)
{
    return p->raft ? p->rdurable : 0;
}

void log_raft_last(const log_partition *p, int64_t *out_index, int64_t *out_term)
{
    *out_index = p->raft ? p->rlast : 0;
    *out_term = p->raft ? p->rlast_term : 0;
}

void log_raft_anchor(const log_partition *p, int64_t *out_index, int64_t *out_term,
                     int64_t *out_offset)
{
    *out_index = p->raft ? p->anchor_index : 0;
    *out_term = p->raft ? p->anchor_term : 0;
    *out_offset = p->raft ? p->anchor_off : 0;
}

int log_raft_busy(const log_partition *p)
{
    return p->raft ? p->hold : 0;
}

/* Recovery --------------------------------------------------------------------- */

/* Walk seg from its first batch, rebuilding its .rindex; st continues from
 * the previous segment. 0, 2 (check failed: st->bad_*), or -CN_E*. */
static int seg_rebuild(log_partition *p, log_segment *seg, rwalk *st, uint8_t *buf)
{
    log__win_init(&st->w, seg->file->fd, buf, LOG_SCAN_CHUNK);
    st->pos = 0;
    seg->rfirst = seg->rlast = seg->rlast_term = 0;
    seg->n_ridx = 0;
    size_t j = 0;
    log_hdr h;
    int64_t epoch = 0;
    int rc;
    for (;;) {
        int64_t at = st->pos;
        rc = rwalk_next(p, seg, st, &h, &epoch);
        if (rc != 1)
            break;
        if (at == 0)
            seg->rfirst = st->r;
        if (j < seg->n_idx && seg->idx[j].pos == at) {
            ridx_push(seg, (uint32_t)(st->r - seg->rfirst));
            j++;
        }
        seg->rlast = st->r;
        seg->rlast_term = epoch;
    }
    if (rc < 0 || rc == 2)
        return rc;
    if (j != seg->n_idx)
        return -CN_EIO;
    rc = ridx_write_all(p, seg);
    return rc < 0 ? rc : 0;
}

/* One pass over the segments. 0, 2 (cut needed: st->bad_*), or -CN_E*. */
static int map_build(log_partition *p, rwalk *st, uint8_t *buf)
{
    memset(st, 0, sizeof(*st));
    st->check = 1;
    st->r = p->anchor_index;
    st->term = p->anchor_term;
    int started = 0;
    for (size_t i = 0; i < p->n_segs; i++) {
        log_segment *seg = p->segs[i];
        int last = i + 1 == p->n_segs;
        if (seg->base < p->anchor_off)
            continue; /* before the raft log (the anchor is a segment base) */
        if (!started && seg->base > p->anchor_off) {
            /* The anchor's segment was deleted: this segment's .rindex is
             * the only record of where the indexes stand. */
            int rc = ridx_load(p, seg);
            if (rc < 0)
                return rc;
            if (rc == 0 || !seg->rfirst) {
                slog_error("raft log: first segment's .rindex is missing or invalid and the "
                           "anchor's segment is gone dir=%s base=%lld", p->dir,
                           (long long)seg->base);
                return -CN_ECORRUPT;
            }
            st->r = seg->rfirst - 1;
            st->term = 0;
            st->k = rm_after(p, seg->base);
        }
        started = 1;
        if (rwalk_sides(p, st, seg->base - 1) == 2)
            return 2;
        int rc = last ? 0 : ridx_load(p, seg);
        if (rc < 0)
            return rc;
        if (rc == 1 && seg->rfirst) {
            /* Trusted if it follows the previous segment. */
            rwalk tmp = *st;
            tmp.check = 0;
            rwalk_sides(p, &tmp, seg->base);
            if (seg->rfirst == tmp.r + 1) {
                int64_t term = st->term;
                size_t k = st->k;
                rwalk_at(p, seg, (ssize_t)seg->n_ridx - 1, buf, LOG_SCAN_CHUNK, st);
                st->check = 1;
                st->term = term;
                st->k = CN_MAX(st->k, k);
                log_hdr h;
                int64_t epoch = 0;
                while ((rc = rwalk_next(p, seg, st, &h, &epoch)) == 1) {
                    seg->rlast = st->r;
                    seg->rlast_term = epoch;
                }
                if (rc < 0 || rc == 2)
                    return rc;
                continue;
            }
        }
        if (!last)
            slog_info("raft log: rebuilding .rindex dir=%s base=%lld", p->dir,
                      (long long)seg->base);
        rc = seg_rebuild(p, seg, st, buf);
        if (rc != 0)
            return rc;
    }
    /* Side entries after the last batch. */
    return rwalk_sides(p, st, INT64_MAX);
}

int log__raft_recover(log_partition *p)
{
    int rc = meta_load(p);
    if (rc == 0)
        rc = log__snap_recover(p);
    if (rc < 0)
        return rc;
    if (p->log_end < p->anchor_off) {
        /* A power loss cut the log below the anchor written at the first raft
         * open: no raft batch was ever durable; start the raft log again. */
        slog_warn("raft log: log end %lld below the anchor %lld, raft log created again "
                  "dir=%s", (long long)p->log_end, (long long)p->anchor_off, p->dir);
        rm_drop_from(p, 0);
        rc = meta_create(p);
        if (rc < 0)
            return rc;
    } else if (log__active(p)->base < p->anchor_off) {
        if (p->log_end != p->anchor_off)
            return -CN_ECORRUPT;
        rc = log__roll(p); /* the roll of meta_create was lost */
        if (rc < 0)
            return rc;
    }
    uint8_t *buf = xmalloc(LOG_SCAN_CHUNK);
    rwalk st;
    for (int round = 0;; round++) {
        rc = map_build(p, &st, buf);
        if (rc != 2)
            break;
        if (round == 8) {
            rc = -CN_ECORRUPT;
            break;
        }
        slog_error("raft log: side entry or term out of order, raft log cut dir=%s offset=%lld "
                   "index=%lld", p->dir, (long long)st.bad_off, (long long)st.bad_index);
        rc = cut(p, CN_MAX(st.bad_off, p->log_start), st.bad_index, 1);
        if (rc < 0)
            break;
    }
    free(buf);
    if (rc < 0)
        return rc;
    recount_last(p);
    return 0;
}

void log__raft_free(log_partition *p)
{
    rm_drop_from(p, 0);
    free(p->rm);
    p->rm = NULL;
    p->n_rm = p->cap_rm = 0;
}
