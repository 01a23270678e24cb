/* Private structures of the partition log, shared by the files of src/log/.
 * A partition owns an array of segments sorted by base offset; the last one
 * is active (the only one appended to). Each segment holds a refcounted
 * log_file for its .log (slices share it), the in-memory copy of its two
 * indexes, and, while it has unsynced index data or is active, open fds of
 * its .index and .timeindex. Invariants: segs[i]->base < segs[i+1]->base;
 * segs[0]->base <= log_start, and log_start < segs[1]->base when there are
 * two or more segments (log_delete_before may move log_start inside the first
 * segment; it is then kept in the log-start file); segment sizes count whole batches only (a
 * preallocated file may be longer); everything here is loop-thread only
 * except log_sync_job, which the syncer thread reads between submit and
 * completion under the syncer's mutex hand-off. */
#ifndef CAIRN_LOG_INT_H
#define CAIRN_LOG_INT_H
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"
#include "record/batch.h"
#include "util/bytes.h"

#define LOG_BATCH_HEADER 61        /* RecordBatch v2 header bytes (NOTES.md §4) */
#define LOG_BATCH_MIN_LENGTH 49    /* batchLength of a batch without records */
#define LOG_BATCH_MAGIC 2
#define LOG_READ_CHUNK 16384       /* pread size for header walks */
#define LOG_SCAN_CHUNK (1 << 20)   /* pread size for recovery scans */
#define LOG_IDX_ENTRY 8            /* u32 rel offset, u32 position */
#define LOG_TIDX_ENTRY 12          /* i64 timestamp, u32 rel offset */
#define LOG_PATH_MAX 4096
/* log_start when above the first segment's base: 12 bytes, i64 BE offset,
 * u32 BE CRC-32C of those 8 bytes. Ignored when missing or invalid. */
#define LOG_START_FILE "log-start-offset"
#define LOG_START_LEN 12

/* Refcounted .log file: the segment holds one reference, every slice one. */
struct log_file {
    int fd;
    int refs;
    int deleted;                   /* unlinked; fd stays valid for holders */
};

typedef struct log_idx_ent {
    uint32_t rel;                  /* base offset of a batch minus segment base */
    uint32_t pos;                  /* file position of that batch */
} log_idx_ent;

typedef struct log_tidx_ent {
    int64_t ts;                    /* max batch timestamp up to and including rel */
    uint32_t rel;                  /* base offset of a batch minus segment base */
} log_tidx_ent;

typedef struct log_segment {
    int64_t base;                  /* offset of the first batch, the file name */
    log_file *file;                /* the .log */
    int idx_fd;                    /* .index, -1 when closed */
    int tidx_fd;                   /* .timeindex, -1 when closed */
    int64_t size;                  /* bytes of whole batches */
    int64_t verified;              /* [0, verified) passed a CRC check (at
                                    * produce, or a scan); log_read_verified
                                    * checks the rest before serving it */
    int64_t vr_lo, vr_hi;          /* one more verified range [lo, hi) past
                                    * verified (reads that start mid-segment) */
    int64_t bad_logged;            /* position of the last corrupt batch logged, -1 */
    int64_t max_ts;                /* max batch maxTimestamp, -1 when none */
    int64_t created_ms;            /* roll clock start, -1 = set at next append */
    int64_t bytes_since_idx;       /* bytes appended since the last index entry */
    int unsynced;                  /* some file of the segment may need fsync */
    int preallocated;              /* .log was fallocated past size */
    log_idx_ent *idx;
    size_t n_idx, cap_idx;
    log_tidx_ent *tidx;
    size_t n_tidx, cap_tidx;
    /* Raft mode only (log_raft.c); 0/NULL/-1 otherwise. */
    int ridx_fd;                   /* .rindex, -1 when closed */
    int64_t rfirst;                /* raft index of the first batch, 0 = none (yet) */
    int64_t rlast;                 /* raft index of the last batch, 0 = none */
    int64_t rlast_term;            /* its term (epoch) */
    uint32_t *ridx;                /* ridx[j]: raft index of the batch at idx[j], minus rfirst */
    size_t n_ridx, cap_ridx;       /* n_ridx == n_idx once rfirst is set */
} log_segment;

/* A side entry of raft.meta, in memory (log_raft.c). */
typedef struct log_rmeta {
    int64_t index;
    int64_t term;
    int64_t offset;                /* log_end when appended: it sits before that batch */
    int64_t file_pos;              /* of its record in raft.meta */
    uint8_t type;
    uint32_t len;
    uint8_t *payload;              /* malloc'd, NULL when len == 0 */
} log_rmeta;

/* One fsync job; embedded in its partition (one in flight at most). */
typedef struct log_sync_job {
    struct log_sync_job *next;
    log_partition *p;
    int *fds;                      /* dup()s; the syncer closes them */
    size_t n_fds, cap_fds;
    size_t n_data;                 /* fds[0..n_data) get fdatasync, the rest fsync */
    int64_t target;                /* log_end at submit */
    int64_t start_target;          /* log_start at submit */
    uint64_t hold_seq;             /* raft: p->hold_seq at submit */
    int64_t rtarget;               /* raft: last index at submit (lowered by cuts) */
    uint64_t snap_seq;             /* raft: p->snap_seq at submit */
    void (*done)(void *arg, int status); /* p == NULL: a file job (log_syncer_fdatasync) */
    void *done_arg;
    int status;                    /* 0 or -CN_E*, written by the syncer */
    int64_t run_ns;                /* time job_run took, written by the syncer; -1: not run */
    int64_t bytes;                 /* partition jobs: bytes appended since the previous job */
    int64_t records;               /* and offsets (records and markers) since then */
} log_sync_job;

struct log_partition {
    char *dir;
    int dir_fd;
    int dir_unsynced;              /* entries were created or removed */
    log_options opt;
    log_syncer *syncer;            /* may be NULL: syncs then run inline */
    log_segment **segs;
    size_t n_segs, cap_segs;
    int64_t log_start, log_end, hw, durable;
    int64_t size_bytes;            /* sum of segment sizes */
    int32_t epoch;
    int failed;
    log_durable_cb cb;
    void *cb_arg;
    int sync_inflight;             /* job is owned by the syncer */
    int sync_again;                /* requested while in flight */
    int dead;                      /* closed while in flight: freed on completion */
    int start_fd;                  /* log-start file, -1 when never written */
    int start_unsynced;            /* log-start file written since the last sync */
    int64_t start_durable;         /* log_start covered by the last completed sync */
    log_sync_job job;
    /* Group-commit sizes (log_syncer_stats): bytes appended since open, and
     * the byte count and log_end at the last job built. */
    int64_t appended_bytes;
    int64_t job_bytes_mark;
    int64_t job_end_mark;
    uint8_t *rbuf;                 /* LOG_READ_CHUNK bytes for header walks */
    /* Raft mode (opt.raft at open; log_raft.c). */
    int raft;
    int meta_fd;                   /* raft.meta, -1 when not open */
    int64_t meta_size;             /* bytes of valid records */
    int meta_unsynced;
    log_rmeta *rm;                 /* side entries by index (and offset) */
    size_t n_rm, cap_rm;
    int64_t anchor_index, anchor_term, anchor_off;
    int64_t rlast, rlast_term;     /* last entry (anchor when none) */
    int64_t rdurable;              /* last entry covered by a completed sync */
    int hold;                      /* log_raft_busy(): 0, 1 or 2 */
    uint64_t hold_seq;             /* bumped by each event that sets hold */
    int64_t meta_cut_pos;          /* hold 2: cut raft.meta here once the .log cut is
                                    * durable; -1 none */
    /* Raft snapshots (log_raft_snap.c). */
    int snap_fd;                   /* raft.snap, -1 when not open */
    int snap_unsynced;
    int64_t snap_size;             /* bytes of valid records */
    uint64_t snap_seq;             /* records written since open */
    uint64_t snap_synced;          /* records a completed sync covers */
    int64_t snap_drop_below;       /* delete the segments wholly below this offset once
                                    * snap_synced reaches snap_seq; -1 none */
    uint8_t *snap_payload;         /* the caller's bytes of the anchor's snapshot */
    uint32_t snap_len;
};

/* Parsed batch header fields the log uses. */
typedef struct log_hdr {
    int64_t base;
    int64_t total;                 /* batchLength + 12 */
    int8_t magic;
    uint32_t crc;
    int32_t lod;                   /* lastOffsetDelta */
    int64_t max_ts;
} log_hdr;

/* A window of a file kept in a buffer, for walking batch headers. */
typedef struct log_win {
    int fd;
    uint8_t *buf;
    size_t cap;
    int64_t pos;                   /* file position of buf[0], -1 = empty */
    size_t len;
} log_win;

static inline void log__hdr_parse(const uint8_t *b, log_hdr *h)
{
    h->base = (int64_t)be_get64(b + BATCH_OFF_BASE_OFFSET);
    h->total = (int64_t)(int32_t)be_get32(b + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
    h->magic = (int8_t)b[BATCH_OFF_MAGIC];
    h->crc = be_get32(b + BATCH_OFF_CRC);
    h->lod = (int32_t)be_get32(b + BATCH_OFF_LAST_OFFSET_DELTA);
    h->max_ts = (int64_t)be_get64(b + BATCH_OFF_MAX_TIMESTAMP);
}
static inline log_segment *log__active(const log_partition *p)
{
    return p->segs[p->n_segs - 1];
}

/* log_file.c: files, raw I/O, windows ------------------------------------- */
log_file *log__file_new(int fd);
void log__file_ref(log_file *f);
void log__file_unref(log_file *f);              /* closes the fd at zero */
/* Loop over short writes and EINTR. Returns 0 or -errno. */
int log__pwrite_all(int fd, const void *buf, size_t len, int64_t pos);
int log__write_all(int fd, const void *buf, size_t len);
/* Loop over short reads and EINTR; *out_n < len only at end of file.
 * Returns 0 or -errno. */
int log__pread_all(int fd, void *buf, size_t len, int64_t pos, size_t *out_n);
void log__win_init(log_win *w, int fd, uint8_t *buf, size_t cap);
/* Pointer to bytes [pos, pos+n) of the file, reading a new window at pos when
 * needed; limit is the end of valid data. NULL with *rc = 0 when the range
 * passes limit or the end of the file, NULL with *rc < 0 on a read error. */
const uint8_t *log__win_get(log_win *w, int64_t pos, size_t n, int64_t limit, int *rc);
/* Map an errno from a write to the log's codes: ENOSPC/EDQUOT -> -CN_ENOSPC,
 * anything else -> -CN_EIO. */
int log__io_err(int err);

/* log_index.c: in-memory and on-disk indexes ------------------------------ */
/* Account a batch of len bytes at pos in seg: push an offset index entry (and a
 * time index entry when the max timestamp grew) if index_interval bytes went
 * by since the last one, and update max_ts. Returns a mask of pushed entries
 * (1 offset, 2 time) for log__index_append_files / log__index_pop. */
int log__index_track(log_segment *seg, int64_t base, int64_t pos, int64_t len,
                     int64_t max_ts, int32_t interval);
int log__index_append_files(log_segment *seg, int mask);   /* 0 or -errno */
void log__index_pop(log_segment *seg, int mask);
void log__index_reset(log_segment *seg);
/* Rewrite both index files of seg from memory (opening them if closed). */
int log__index_write_all(const log_partition *p, log_segment *seg);
/* Load seg's index files into memory and check them against a .log of
 * log_size bytes whose offsets are below base + n_offsets (-1: unknown).
 * Returns 0, 1 when missing or invalid (memory reset), or -CN_EIO. */
int log__index_load(const log_partition *p, log_segment *seg, int64_t log_size,
                    int64_t n_offsets);
/* Largest indexed batch at or before offset rel: file position, or 0. */
int64_t log__index_lookup(const log_segment *seg, int64_t rel, int64_t *out_rel);
/* Relative offset of the last time entry whose ts < ts, or -1. */
int64_t log__tidx_lookup(const log_segment *seg, int64_t ts);

/* log_segment.c: segment files and rolling ---------------------------------- */
void log__seg_path(const log_partition *p, int64_t base, const char *ext, char *buf,
                   size_t n);
/* Create an empty segment at base (files truncated if present). */
int log__seg_create(log_partition *p, int64_t base, log_segment **out);
void log__seg_free(log_segment *seg);           /* NULL is a no-op */
void log__seg_unlink(log_partition *p, log_segment *seg);
/* Trim a preallocated .log to its real length. 0 or -errno. */
int log__seg_trim(log_segment *seg);
void log__seg_push(log_partition *p, log_segment *seg);
/* Close the active segment and start a new one at log_end. */
int log__roll(log_partition *p);
int log__should_roll_time(const log_partition *p, const log_segment *seg, int64_t now_ms);

/* log_recover.c ------------------------------------------------------------ */
int log__recover(log_partition *p);
/* Write offset to the log-start file (opened on first use; synced by the
 * next sync). 0 or -CN_E*. */
int log__write_start(log_partition *p, int64_t offset);

/* log_retention.c ---------------------------------------------------------- */
/* Drop segs[0] (never the active one): unlink its files, free it, move
 * log_start up to the new first segment if it was below it. */
void log__delete_oldest(log_partition *p, const char *reason);
/* Why retention would delete seg (the oldest left) while the partition
 * holds size bytes: "time", "size", or NULL when it stays. */
const char *log__retention_due(const log_partition *p, const log_segment *seg, int64_t now_ms,
                               int64_t size);

/* log_read.c --------------------------------------------------------------- */
/* Index of the segment that may hold offset (largest base <= offset). */
size_t log__seg_find(const log_partition *p, int64_t offset);

/* log_raft.c --------------------------------------------------------------- */
/* Open raft.meta, rebuild or check .rindex files, check the side entries
 * against the batches (cutting the raft log at the first inconsistency).
 * After log__recover; open syncs afterwards. 0 or -CN_E*. */
int log__raft_recover(log_partition *p);
/* A batch of len bytes at pos with epoch was just appended to seg (mask as
 * from log__index_track). Writes .rindex. 0 or -errno (then nothing changed
 * in memory; the caller undoes the append). */
int log__raft_track(log_partition *p, log_segment *seg, int64_t pos, int64_t epoch, int mask);
int log__raft_seg_open(log_partition *p, log_segment *seg);  /* create an empty .rindex */
void log__raft_free(log_partition *p);
/* Sync job hooks: a completed job (status 0) with hold_seq may lift or
 * advance the hold; sync_now lifts it. 0 or -CN_EIO. */
int log__raft_synced(log_partition *p, uint64_t hold_seq, int blocking);
/* Forget the side entries with index <= index (memory only: raft.meta keeps
 * their records until it is rewritten; loading drops them again). */
void log__raft_drop_sides(log_partition *p, int64_t index);
/* Empty raft.meta but for an anchor (index, term, offset); memory too. */
int log__raft_meta_restart(log_partition *p, int64_t index, int64_t term, int64_t offset);
/* Recount the last entry after the anchor or the segments moved. */
void log__raft_recount(log_partition *p);

/* log_raft_snap.c ----------------------------------------------------------- */
/* Open: load raft.snap and apply a snapshot newer than raft.meta's anchor
 * (after meta_load, before the .rindex walk). 0 or -CN_E*. */
int log__snap_recover(log_partition *p);
/* A completed sync covered slot seq (or, blocking, every slot written):
 * delete the segments a snapshot made unneeded. */
void log__snap_synced(log_partition *p, uint64_t seq);
void log__snap_free(log_partition *p);

/* log_sync.c --------------------------------------------------------------- */
void log__partition_free(log_partition *p);     /* memory only; files closed */
void log__close_synced_indexes(log_partition *p);
#endif
