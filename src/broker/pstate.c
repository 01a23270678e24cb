/* Producer state of one partition. See pstate.h. */
#include "broker/pstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

#define PST_HASH_MIN 64
#define SNAP_MAGIC 0x43505354u /* "CPST" */
#define SNAP_VERSION 1
#define SNAP_NAME "producer.snapshot"

typedef struct open_txn {
    int64_t pid;
    int64_t first_offset;
} open_txn;

struct pst_table {
    pst_producer *slots;            /* open addressing on pid; pid -1 = empty */
    size_t cap, n;
    open_txn *open;                 /* in first-offset order (append order) */
    size_t n_open, cap_open;
    pst_aborted *aborted;           /* in last-offset order */
    size_t n_aborted, cap_aborted;
};

/* Table ---------------------------------------------------------------------- */

static size_t slot_of(int64_t pid, size_t cap)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static void table_init(pst_table *t, size_t cap)
{
    t->cap = cap;
    t->n = 0;
    t->slots = xmalloc(cap * sizeof(*t->slots));
    for (size_t i = 0; i < cap; i++)
        t->slots[i].pid = -1;
}

pst_table *pst_new(void)
{
    pst_table *t = xcalloc(1, sizeof(*t));
    table_init(t, PST_HASH_MIN);
    return t;
}

void pst_free(pst_table *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->open);
    free(t->aborted);
    free(t);
}

static void table_clear(pst_table *t)
{
    free(t->slots);
    table_init(t, PST_HASH_MIN);
    t->n_open = 0;
    t->n_aborted = 0;
}

const pst_producer *pst_get(const pst_table *t, int64_t pid)
{
    for (size_t i = slot_of(pid, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].pid == pid)
            return &t->slots[i];
        if (t->slots[i].pid == -1)
            return NULL;
    }
}

static void grow(pst_table *t)
{
    pst_producer *old = t->slots;
    size_t old_cap = t->cap;
    table_init(t, old_cap * 2);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].pid == -1)
            continue;
        size_t j = slot_of(old[i].pid, t->cap);
        while (t->slots[j].pid != -1)
            j = (j + 1) & (t->cap - 1);
        t->slots[j] = old[i];
        t->n++;
    }
    free(old);
}

static pst_producer *get_or_add(pst_table *t, int64_t pid)
{
    pst_producer *p = (pst_producer *)pst_get(t, pid);
    if (p)
        return p;
    if ((t->n + 1) * 4 > t->cap * 3)
        grow(t);
    size_t i = slot_of(pid, t->cap);
    while (t->slots[i].pid != -1)
        i = (i + 1) & (t->cap - 1);
    p = &t->slots[i];
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->epoch = -1;
    p->coordinator_epoch = -1;
    p->txn_first_offset = -1;
    t->n++;
    return p;
}

int pst_count(const pst_table *t) { return (int)t->n; }

void pst_foreach(const pst_table *t, void (*cb)(void *arg, const pst_producer *p), void *arg)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].pid != -1)
            cb(arg, &t->slots[i]);
}

/* Open transactions and the aborted index -------------------------------------- */

static void open_add(pst_table *t, int64_t pid, int64_t first)
{
    if (t->n_open == t->cap_open) {
        t->cap_open = t->cap_open ? t->cap_open * 2 : 8;
        t->open = xrealloc(t->open, t->cap_open * sizeof(*t->open));
    }
    /* Keep first-offset order (appends come in offset order). */
    size_t i = t->n_open;
    while (i > 0 && t->open[i - 1].first_offset > first) {
        t->open[i] = t->open[i - 1];
        i--;
    }
    t->open[i].pid = pid;
    t->open[i].first_offset = first;
    t->n_open++;
}

static void open_remove(pst_table *t, int64_t pid)
{
    for (size_t i = 0; i < t->n_open; i++)
        if (t->open[i].pid == pid) {
            memmove(&t->open[i], &t->open[i + 1], (t->n_open - i - 1) * sizeof(*t->open));
            t->n_open--;
            return;
        }
}

static void aborted_add(pst_table *t, int64_t pid, int64_t first, int64_t last)
{
    if (t->n_aborted == t->cap_aborted) {
        t->cap_aborted = t->cap_aborted ? t->cap_aborted * 2 : 8;
        t->aborted = xrealloc(t->aborted, t->cap_aborted * sizeof(*t->aborted));
    }
    t->aborted[t->n_aborted++] = (pst_aborted){pid, first, last};
}

int64_t pst_first_unstable(const pst_table *t) { return t->n_open ? t->open[0].first_offset : -1; }

int pst_txn_open(const pst_table *t, int64_t pid)
{
    const pst_producer *p = pst_get(t, pid);
    return p && p->txn_first_offset >= 0;
}

int pst_aborted_in(const pst_table *t, int64_t from, int64_t to,
                   void (*cb)(void *arg, const pst_aborted *a), void *arg)
{
    /* Entries are in last-offset order: skip those that end before from. */
    size_t lo = 0, hi = t->n_aborted;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->aborted[mid].last_offset < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    int n = 0;
    for (size_t i = lo; i < t->n_aborted; i++) {
        if (t->aborted[i].first_offset >= to)
            continue;
        if (cb)
            cb(arg, &t->aborted[i]);
        n++;
    }
    return n;
}

void pst_truncate_head(pst_table *t, int64_t log_start)
{
    size_t k = 0;
    while (k < t->n_aborted && t->aborted[k].last_offset < log_start)
        k++;
    if (k) {
        memmove(t->aborted, t->aborted + k, (t->n_aborted - k) * sizeof(*t->aborted));
        t->n_aborted -= k;
    }
}

/* Checks --------------------------------------------------------------------- */

static int32_t seq_add(int32_t seq, int32_t n)
{
    int64_t v = (int64_t)seq + n;
    return v > INT32_MAX ? (int32_t)(v - INT32_MAX - 1) : (int32_t)v;
}

static int in_sequence(int32_t last, int32_t next)
{
    return next == seq_add(last, 1);
}

static const pst_batch *ring_at(const pst_producer *p, int i)
{
    return &p->batches[(p->head + i) % PST_BATCHES];
}

int pst_check(pst_table *t, const batch_info *bi, pst_batch *dup)
{
    const pst_producer *p = pst_get(t, bi->producer_id);
    if (!p || p->epoch < 0)
        return 0; /* nothing known: any sequence is accepted */
    int32_t first = bi->base_sequence;
    int32_t last = seq_add(first, bi->last_offset_delta);
    if (bi->producer_epoch == p->epoch) {
        for (int i = 0; i < p->n_batches; i++) {
            const pst_batch *b = ring_at(p, i);
            if (b->first_seq == first && b->last_seq == last) {
                *dup = *b;
                return 1;
            }
        }
    }
    if (bi->producer_epoch < p->epoch)
        return -CN_EEPOCH;
    if (bi->producer_epoch > p->epoch)
        return first == 0 ? 0 : -CN_ESEQUENCE;
    if (p->n_batches == 0)
        return first == 0 ? 0 : -CN_ESEQUENCE;
    const pst_batch *newest = ring_at(p, p->n_batches - 1);
    return in_sequence(newest->last_seq, first) ? 0 : -CN_ESEQUENCE;
}

void pst_update(pst_table *t, const batch_info *bi, int64_t base_offset, int marker_type,
                int32_t coordinator_epoch)
{
    if (bi->producer_id < 0)
        return;
    pst_producer *p = get_or_add(t, bi->producer_id);
    if (bi->producer_epoch != p->epoch) {
        p->epoch = bi->producer_epoch;
        p->n_batches = 0;
        p->head = 0;
    }
    p->last_timestamp = bi->max_timestamp;
    if (bi->control) {
        if (p->txn_first_offset >= 0) {
            if (marker_type == 0)
                aborted_add(t, p->pid, p->txn_first_offset, base_offset);
            open_remove(t, p->pid);
            p->txn_first_offset = -1;
        }
        if (coordinator_epoch >= 0)
            p->coordinator_epoch = coordinator_epoch;
        return;
    }
    if (bi->base_sequence >= 0) {
        pst_batch b = {
            .first_seq = bi->base_sequence,
            .last_seq = seq_add(bi->base_sequence, bi->last_offset_delta),
            .first_offset = base_offset,
            .last_offset = base_offset + bi->last_offset_delta,
            .timestamp = bi->max_timestamp,
        };
        if (p->n_batches < PST_BATCHES) {
            p->batches[(p->head + p->n_batches) % PST_BATCHES] = b;
            p->n_batches++;
        } else {
            p->batches[p->head] = b;
            p->head = (p->head + 1) % PST_BATCHES;
        }
    }
    if (bi->transactional && p->txn_first_offset < 0) {
        p->txn_first_offset = base_offset;
        open_add(t, p->pid, base_offset);
    }
}

/* Snapshot ------------------------------------------------------------------- */

/* Layout (big-endian): u32 magic, u16 version, i64 offset, u32 n_producers,
 * u32 n_aborted, producers, aborted entries, u32 crc32c of everything before. */
int pst_snapshot_write(const pst_table *t, const char *dir, int64_t offset)
{
    size_t n = 4 + 2 + 8 + 4 + 4 + t->n * (8 + 2 + 4 + 8 + 8 + 1 + PST_BATCHES * 32) +
               t->n_aborted * 24 + 4;
    uint8_t *buf = xmalloc(n), *p = buf;
    be_put32(p, SNAP_MAGIC);
    be_put16(p + 4, SNAP_VERSION);
    be_put64(p + 6, (uint64_t)offset);
    be_put32(p + 14, (uint32_t)t->n);
    be_put32(p + 18, (uint32_t)t->n_aborted);
    p += 22;
    for (size_t i = 0; i < t->cap; i++) {
        const pst_producer *pr = &t->slots[i];
        if (pr->pid == -1)
            continue;
        be_put64(p, (uint64_t)pr->pid);
        be_put16(p + 8, (uint16_t)pr->epoch);
        be_put32(p + 10, (uint32_t)pr->coordinator_epoch);
        be_put64(p + 14, (uint64_t)pr->txn_first_offset);
        be_put64(p + 22, (uint64_t)pr->last_timestamp);
        p[30] = (uint8_t)pr->n_batches;
        p += 31;
        for (int k = 0; k < pr->n_batches; k++) {
            const pst_batch *b = ring_at(pr, k);
            be_put32(p, (uint32_t)b->first_seq);
            be_put32(p + 4, (uint32_t)b->last_seq);
            be_put64(p + 8, (uint64_t)b->first_offset);
            be_put64(p + 16, (uint64_t)b->last_offset);
            be_put64(p + 24, (uint64_t)b->timestamp);
            p += 32;
        }
    }
    for (size_t i = 0; i < t->n_aborted; i++) {
        be_put64(p, (uint64_t)t->aborted[i].pid);
        be_put64(p + 8, (uint64_t)t->aborted[i].first_offset);
        be_put64(p + 16, (uint64_t)t->aborted[i].last_offset);
        p += 24;
    }
    be_put32(p, crc32c(0, buf, (size_t)(p - buf)));
    p += 4;
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s", dir, SNAP_NAME);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
    } else {
        size_t len = (size_t)(p - buf), off = 0;
        while (off < len && rc == 0) {
            ssize_t w = write(fd, buf + off, len - off);
            if (w < 0 && errno != EINTR)
                rc = -errno;
            else if (w > 0)
                off += (size_t)w;
        }
        close(fd);
        if (rc == 0 && rename(tmp, path) < 0)
            rc = -errno;
        if (rc < 0)
            unlink(tmp);
    }
    free(buf);
    return rc;
}

int64_t pst_snapshot_load(pst_table *t, const char *dir, int64_t log_start, int64_t log_end)
{
    table_clear(t);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, SNAP_NAME);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 26 || size > (off_t)1 << 30) {
        close(fd);
        slog_warn("%s: ignoring a snapshot of %lld bytes", path, (long long)size);
        return 0;
    }
    uint8_t *buf = xmalloc((size_t)size);
    ssize_t got = pread(fd, buf, (size_t)size, 0);
    close(fd);
    int64_t offset = 0;
    const uint8_t *p = buf, *end = buf + size - 4;
    if (got != size || be_get32(p) != SNAP_MAGIC || (be_get32(p + 4) >> 16) != SNAP_VERSION ||
        crc32c(0, buf, (size_t)size - 4) != be_get32(end))
        goto bad;
    offset = (int64_t)be_get64(p + 6);
    uint32_t np = be_get32(p + 14), na = be_get32(p + 18);
    p += 22;
    if (offset > log_end) {
        /* The log lost data the snapshot describes (unsynced tail): replay.
         * Remove the file too: once new appends take the log past offset,
         * a crash before the next snapshot would have it loaded as the
         * state of data it never saw. */
        slog_warn("%s: snapshot at offset %lld is past the log end %lld; rebuilding",
                  path, (long long)offset, (long long)log_end);
        unlink(path);
        goto bad;
    }
    for (uint32_t i = 0; i < np; i++) {
        if (end - p < 31)
            goto bad;
        pst_producer *pr = get_or_add(t, (int64_t)be_get64(p));
        pr->epoch = (int16_t)be_get16(p + 8);
        pr->coordinator_epoch = (int32_t)be_get32(p + 10);
        pr->txn_first_offset = (int64_t)be_get64(p + 14);
        pr->last_timestamp = (int64_t)be_get64(p + 22);
        int nb = p[30];
        p += 31;
        if (nb > PST_BATCHES || end - p < (ptrdiff_t)nb * 32)
            goto bad;
        for (int k = 0; k < nb; k++) {
            pst_batch *b = &pr->batches[k];
            b->first_seq = (int32_t)be_get32(p);
            b->last_seq = (int32_t)be_get32(p + 4);
            b->first_offset = (int64_t)be_get64(p + 8);
            b->last_offset = (int64_t)be_get64(p + 16);
            b->timestamp = (int64_t)be_get64(p + 24);
            p += 32;
        }
        pr->n_batches = nb;
        pr->head = 0;
        if (pr->txn_first_offset >= 0)
            open_add(t, pr->pid, pr->txn_first_offset);
    }
    for (uint32_t i = 0; i < na; i++) {
        if (end - p < 24)
            goto bad;
        aborted_add(t, (int64_t)be_get64(p), (int64_t)be_get64(p + 8), (int64_t)be_get64(p + 16));
        p += 24;
    }
    free(buf);
    pst_truncate_head(t, log_start);
    return offset < log_start ? log_start : offset;
bad:
    free(buf);
    table_clear(t);
    if (offset <= log_end)
        slog_warn("%s: damaged producer snapshot ignored; rebuilding from the log", path);
    return 0;
}

/* Expiry ------------------------------------------------------------------------ */

int pst_expire(pst_table *t, int64_t now_ms, int64_t max_idle_ms)
{
    size_t gone = 0;
    for (size_t i = 0; i < t->cap; i++) {
        const pst_producer *p = &t->slots[i];
        if (p->pid != -1 && p->txn_first_offset < 0 && now_ms - p->last_timestamp > max_idle_ms)
            gone++;
    }
    if (!gone)
        return 0;
    pst_producer *old = t->slots;
    size_t old_cap = t->cap;
    size_t keep = t->n - gone, cap = PST_HASH_MIN;
    while (keep * 4 > cap * 3)
        cap *= 2;
    table_init(t, cap);
    for (size_t i = 0; i < old_cap; i++) {
        const pst_producer *p = &old[i];
        if (p->pid == -1 || (p->txn_first_offset < 0 && now_ms - p->last_timestamp > max_idle_ms))
            continue;
        size_t j = slot_of(p->pid, t->cap);
        while (t->slots[j].pid != -1)
            j = (j + 1) & (t->cap - 1);
        t->slots[j] = *p;
        t->n++;
    }
    free(old);
    return (int)gone;
}
