/* Partition log: an ordered, durable sequence of Kafka record batches (magic 2)
 * kept as a directory of segments.
 *
 * Directory layout (one directory per partition, e.g. data/orders-0/):
 *   00000000000000000000.log        batches back to back, exactly as stored on
 *                                   the wire (base offset and leader epoch set)
 *   00000000000000000000.index      sparse offset index, 8-byte entries:
 *                                   u32 BE relative offset, u32 BE file position
 *   00000000000000000000.timeindex  time index, 12-byte entries:
 *                                   i64 BE max timestamp so far, u32 BE relative offset
 *   00000000000000000000.rindex     (raft only) raft index of the segment's batches:
 *                                   u64 BE index of the first batch, then one 8-byte
 *                                   entry per .index entry (format in log_raft.c)
 *   raft.meta                       (raft only) the side log: the anchor and the
 *                                   non-batch Raft entries (format in log_raft.c)
 * The file name is the segment's base offset, 20 digits, zero padded.
 *
 * Threading: every function is loop-thread only, except inside the syncer
 * thread which log_sync.c owns. Nothing here blocks on fsync.
 *
 * Offsets: log_start <= high_watermark <= log_end. durable_offset is the
 * offset below which everything is fsynced. On a single node the broker moves
 * the high watermark to log_end after each append; it is kept apart so that
 * replication can hold it back later. */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H
#include <stddef.h>
#include <stdint.h>

#include "util/hist.h"

typedef struct log_partition log_partition;
typedef struct log_file log_file;   /* refcounted open segment .log file */
typedef struct log_syncer log_syncer;

typedef struct log_options {
    int64_t segment_bytes;          /* roll when the active segment would exceed this */
    int64_t segment_ms;             /* roll when the active segment is older than this */
    int64_t retention_ms;           /* delete segments older than this; -1 = keep */
    int64_t retention_bytes;        /* delete oldest segments beyond this size; -1 = keep */
    int32_t index_interval_bytes;   /* an index entry at least every this many bytes */
    int preallocate;                /* reserve segment_bytes with fallocate on create */
    int raft;                       /* the log is a Raft log (section "Raft log" below):
                                     * keep .rindex files and raft.meta. Fixed at open (a
                                     * directory is always opened with the same value);
                                     * 0 writes no new file and costs nothing. */
} log_options;

/* A byte range of one segment file, for sendfile(). Holds a reference on the
 * file so retention or topic deletion cannot close the fd under a queued
 * response. Release exactly once with log_slice_release(). */
typedef struct log_slice {
    log_file *file;                 /* NULL when len == 0 */
    int fd;
    int64_t pos;                    /* file position of the first byte */
    int64_t len;                    /* bytes to send */
} log_slice;

/* Called (loop thread) when durable_offset advances or a sync failed
 * (status < 0; the partition is then LOG_FAILED). */
typedef void (*log_durable_cb)(log_partition *p, int64_t durable_offset, int status, void *arg);

/* Open / close ------------------------------------------------------------ */

/* Open the partition in dir (created if absent), recovering the tail segment:
 * each batch of the last segment is checked (length, magic 2, CRC-32C); a torn
 * or corrupt tail is truncated to the last whole batch and logged (slog_warn),
 * and that segment's indexes are rebuilt. Indexes of older segments are loaded
 * and sanity-checked, and rebuilt from the log if missing or invalid.
 * With opt->raft, the raft log is recovered too (section "Raft log").
 * Returns 0 or -CN_EIO / -CN_ENOMEM, -CN_EINVAL (dir too long), or
 * -CN_ECORRUPT (raft: raft.meta's anchor unreadable, or the first
 * segment's .rindex lost after retention deleted the anchor's segment). */
int log_partition_open(const char *dir, const log_options *opt, log_syncer *syncer,
                       log_partition **out);
/* Close files (NULL is a no-op). Does not fsync: callers that want a clean
 * shutdown call log_partition_sync_now() first. When a sync job is in
 * flight the memory is freed by log_syncer_drain() once it completes (no
 * callback runs); p must not be used after this call either way. */
void log_partition_close(log_partition *p);
/* Close and delete the directory and all its files. */
void log_partition_destroy(log_partition *p);
/* Change segment/retention settings; applies to the next append/roll/retention pass. */
void log_partition_set_options(log_partition *p, const log_options *opt);
/* Durability callback for this partition. */
void log_partition_set_durable_cb(log_partition *p, log_durable_cb cb, void *arg);

/* Offsets ---------------------------------------------------------------- */
int64_t log_start_offset(const log_partition *p);
/* The base offset of the second segment (the first one's end), or -1 when
 * there is one segment: a log start moved to it or beyond deletes a file. */
int64_t log_second_segment_base(const log_partition *p);
int64_t log_end_offset(const log_partition *p);
int64_t log_high_watermark(const log_partition *p);
void log_set_high_watermark(log_partition *p, int64_t hw);
int64_t log_durable_offset(const log_partition *p);
/* The log start a crash can no longer take back: log_start as of the last
 * completed sync (a job, or log_partition_sync_now, or open). Moves after
 * log_delete_before once the log-start file is synced; DeleteRecords
 * answers when it reaches the new start. Only grows. */
int64_t log_start_durable(const log_partition *p);
int32_t log_leader_epoch(const log_partition *p);
void log_set_leader_epoch(log_partition *p, int32_t epoch);
int64_t log_size_bytes(const log_partition *p);       /* sum of segment sizes */
int log_failed(const log_partition *p);               /* sticky storage failure */

/* Append ----------------------------------------------------------------- */

/* Append one record batch (magic 2, already validated by the caller: length,
 * CRC). The batch buffer is the caller's and is modified in place: the base
 * offset (bytes 0-7) and the leader epoch (bytes 12-15) are written, neither
 * covered by the CRC. Rolls the active segment first if it is full or older
 * than segment_ms (now_ms is wall-clock milliseconds). Writes with write(2)
 * to the page cache; durability comes later through log_sync_request().
 * Returns 0 with *out_base_offset set, or -CN_EIO/-CN_ENOSPC (the partition
 * becomes failed on EIO). */
int log_append(log_partition *p, uint8_t *batch, size_t len, int64_t now_ms,
               int64_t *out_base_offset);

/* Read ------------------------------------------------------------------- */

/* Slice for a fetch at `offset`, not crossing max_offset (exclusive; the HW or
 * the LSO): starts at the batch that contains offset, ends at a batch boundary
 * at or before max_offset, holds at most max_bytes unless the first batch is
 * bigger (then exactly that batch, KIP-74), and never crosses a segment end.
 * Returns 0 (out->len may be 0 when offset == max_offset), or -CN_ERANGE when
 * offset < log_start or offset > log_end (OFFSET_OUT_OF_RANGE), or -CN_EIO. */
int log_read(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
             log_slice *out);
void log_slice_release(log_slice *s);
/* log_read for clients: bytes of the slice not yet CRC-checked in this
 * process (batches of segments whose indexes were trusted at open, or kept
 * in place as corrupt by recovery) are checked first, each byte once while
 * it stays good. A corrupt batch is logged and never served: the slice ends
 * before it, or, when it is the first batch, -CN_ECORRUPT. */
int log_read_verified(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
                      log_slice *out);

/* Slice of the first batch whose max timestamp >= ts (for ListOffsets). The
 * caller reads it with pread and refines to a record. Returns 0, -CN_ENOENT
 * when no batch qualifies, or -CN_EIO. */
int log_find_timestamp(log_partition *p, int64_t ts, log_slice *out);

/* Durability --------------------------------------------------------------- */

/* Ask for everything appended so far to be fsynced: the .log and index files
 * of changed segments, new or removed directory entries, the log-start
 * file. Group commit: at most one sync per partition is in flight; a request
 * made meanwhile makes one more run after it, covering all appends made
 * until then. When a sync completes, durable_offset becomes log_end as of
 * its start and the durable callback runs from log_syncer_drain(); on
 * failure the partition becomes failed and the callback gets status < 0.
 * Does nothing (no callback) when the partition is failed or nothing is
 * unsynced. Never blocks. With a NULL syncer (tests) the sync runs inline
 * and the callback fires before this returns. */
void log_sync_request(log_partition *p);
/* Blocking fsync of every segment file, the log-start file and the directory
 * (open, shutdown and tests; not the loop). Sets durable_offset to log_end
 * without calling the durable callback. Returns 0, or -CN_EIO and the
 * partition becomes failed. */
int log_partition_sync_now(log_partition *p);

/* Retention: delete whole non-active segments past retention_ms (by their max
 * timestamp) or beyond retention_bytes; roll the active segment if it is older
 * than segment_ms and not empty. Returns the number of segments deleted. */
int log_enforce_retention(log_partition *p, int64_t now_ms);

/* DeleteRecords: move log_start to offset (log_start < offset <= high
 * watermark; offset <= log_start is a no-op returning 0) and delete the
 * segments wholly below it. Reads below the new log_start fail with
 * -CN_ERANGE; a read at log_start may return a batch that starts before it
 * (clients skip those records). The new start is written to the partition's
 * log-start file and made durable by the next sync (log_sync_request or
 * log_partition_sync_now); until then a crash may bring back records
 * between the first segment's base and offset, never lose others. Returns
 * 0, -CN_ERANGE (offset < 0 or > high watermark), -CN_EIO or -CN_ENOSPC. */
int log_delete_before(log_partition *p, int64_t offset);

/* Leader epochs (log_epochs.c; OffsetsForLeaderEpoch, Kafka's semantics):
 * for epoch, *out_end = the first offset written in a later epoch (the log
 * end for the latest epoch, and for epochs after the last one written) and
 * *out_epoch = the largest epoch <= epoch that the log holds (epoch itself
 * when it is below every epoch held, and latest for latest); both -1
 * (undefined) when epoch < 0 or above latest (the partition's current
 * epoch, which the caller knows: the Raft term, >= every epoch written). A
 * Raft log's epochs are its terms (side entries count at their position);
 * any other log has the one epoch log_leader_epoch. Returns 0, or -CN_EIO /
 * -CN_ENOENT from the raft index (then both -1). */
int log_epoch_end(log_partition *p, int32_t epoch, int32_t latest, int32_t *out_epoch,
                  int64_t *out_end);

/* Raft log (opt.raft = 1) ---------------------------------------------------
 *
 * The partition is a Raft log: every record batch is one command entry (its
 * term is the batch's partitionLeaderEpoch) and the entries that are not
 * batches (configurations, barriers) live in the side log raft.meta, in the
 * order of their raft index. The raft index of a batch is not stored in it:
 * it follows from the anchor (raft.meta's first record: the entry just
 * before the raft log, index 0 and term 0 at creation, and the offset where
 * raft batches begin) by counting batches and side entries; .rindex files
 * keep it per segment so that lookups need not walk from the anchor.
 *
 * The first open with raft = 1 rolls a non-empty active segment so that raft
 * batches begin in a segment of their own (earlier ones are not entries)
 * and writes the anchor. Recovery checks that every side entry sits at the
 * index its position gives and that terms never go down, cuts the raft log
 * at the first violation (logged), and rebuilds a .rindex that is missing or
 * does not match its segment from the .log and raft.meta.
 *
 * Write ordering (what makes a power loss safe): a batch is never written
 * while an earlier side entry or a truncation is not yet durable, so a lost
 * side entry can never shift the indexes of batches that survived. Appends
 * made meanwhile return -CN_EAGAIN; log_raft_busy() says when, and the
 * durable callback tells when to retry. Side entries may follow each other
 * freely. All functions: loop thread only. */

typedef struct log_raft_entry {
    int64_t index;
    int64_t term;
    int is_batch;                   /* 1: a record batch; 0: a side entry */
    /* batch: */
    int64_t offset;                 /* base offset */
    int64_t next_offset;            /* last offset + 1 */
    int64_t len;                    /* bytes (batchLength + 12) */
    /* side entry: */
    uint8_t type;                   /* the caller's type, 1..254 */
    const uint8_t *payload;         /* valid until the next truncate or close */
    uint32_t payload_len;
} log_raft_entry;

/* Append one batch that keeps the base offset and leader epoch already in it
 * (a follower's copy of the leader's batch). The same checks as log_append,
 * and: its base offset must be log_end (-CN_ERANGE otherwise, nothing
 * written), its epoch >= 0 and, in raft mode, >= the last entry's term
 * (-CN_EINVAL). Raft mode: -CN_EAGAIN while log_raft_busy() >= 1. Returns 0,
 * or -CN_EIO/-CN_ENOSPC as log_append. Works without raft mode too. */
int log_append_at(log_partition *p, uint8_t *batch, size_t len, int64_t now_ms);

/* Cut the tail: remove every batch at or after offset (which must be the
 * base offset of a batch or log_end: -CN_EINVAL otherwise) and, in raft
 * mode, every side entry after them (side entries positioned at offset,
 * i.e. before that batch, stay). Segments after it are deleted, its segment
 * is cut, its indexes rewritten; log_end becomes offset, and the high
 * watermark and durable offset are lowered to it. -CN_ERANGE when offset <
 * log_start, > log_end, or (raft) below the anchor's offset. The caller
 * guarantees that nothing at or after offset is committed (Raft: only a
 * follower, only above its commit index) and that no slice of the cut range
 * is being used for anything but discarding. Not durable at once: the cut
 * is synced by a sync job that this call requests; in raft mode appends
 * return -CN_EAGAIN until then. A crash before that sync leaves, after
 * recovery, either the cut log or a prefix of the old log that contains the
 * cut log (how: log_raft.c). Returns 0, -CN_EIO (partition failed). */
int log_truncate_from(log_partition *p, int64_t offset);

/* Raft mode only (-CN_EINVAL otherwise). Append a side entry at index (must
 * be the last index + 1: -CN_ERANGE otherwise) with term (>= the last
 * term: -CN_EINVAL), type 1..254 and payload (copied; at most
 * LOG_RAFT_META_MAX bytes) to raft.meta. Durable with the next sync job
 * (call log_sync_request); until that sync completes batch appends return
 * -CN_EAGAIN. Returns 0, -CN_EAGAIN (a truncation is not yet durable),
 * -CN_EIO or -CN_ENOSPC. */
#define LOG_RAFT_META_MAX (1 << 20)
int log_raft_append_meta(log_partition *p, int64_t index, int64_t term, uint8_t type,
                         const uint8_t *payload, uint32_t len);

/* Truncate the raft log from index (the entry at index and all after it):
 * a batch cuts as log_truncate_from(its offset); a side entry cuts the side
 * entries from it on and the batches after it. The same contract, return
 * values and durability as log_truncate_from; index = last index + 1 is a
 * no-op; -CN_ERANGE when index <= the anchor index, > last index + 1, or
 * names an entry deleted below the log start. */
int log_raft_truncate(log_partition *p, int64_t index);

/* The entry at index (also below log_start, while its segment exists: see
 * log_raft_set_start). Returns 0, -CN_ERANGE when index <= the anchor index
 * or > the last index, -CN_ENOENT when its segment was deleted
 * (log_delete_before),
 * -CN_EIO (read error or inconsistent files), -CN_EINVAL (not raft mode). */
int log_raft_entry_at(log_partition *p, int64_t index, log_raft_entry *out);

/* The last side entry of type with index <= upto still in the raft log
 * (after the anchor). Returns 0, -CN_ENOENT (none), -CN_EINVAL (not raft
 * mode). */
int log_raft_side_last(const log_partition *p, int64_t upto, uint8_t type, log_raft_entry *out);

/* Raft index and term of the batch that holds offset. Returns 0, -CN_ERANGE
 * when offset is outside [max(log_start, anchor offset), log_end), -CN_EIO,
 * -CN_EINVAL (not raft mode). */
int log_raft_index_of(log_partition *p, int64_t offset, int64_t *out_index, int64_t *out_term);

/* Index and term of the last entry (the anchor's when the raft log is
 * empty). Raft mode only (else both 0). */
void log_raft_last(const log_partition *p, int64_t *out_index, int64_t *out_term);
/* The anchor: index and term of the entry just before the raft log, and the
 * offset where its batches begin. Raft mode only (else all 0). */
void log_raft_anchor(const log_partition *p, int64_t *out_index, int64_t *out_term,
                     int64_t *out_offset);
/* Index of the last entry a completed sync covers (at open: the last
 * entry; lowered by truncations, so it never names a cut entry). What a
 * Raft replica may report as persisted. Raft mode only (else 0). */
int64_t log_raft_durable(const log_partition *p);
/* 0: appends allowed; 1: batch appends wait for a sync (a side entry or a
 * cut of raft.meta is not durable yet); 2: every append waits (a truncation
 * is not durable yet). Always 0 without raft mode. */
int log_raft_busy(const log_partition *p);

/* Raft snapshots (log_raft_snap.c) -------------------------------------------
 *
 * A data partition's snapshot is its log: a snapshot at index is the
 * anchor moved to index (the raft log then holds only the entries after
 * it), the offset where the log goes on, and up to LOG_RAFT_SNAP_MAX bytes
 * of the caller's (repl: the configuration as of index), kept in raft.snap
 * (format and crash ordering: log_raft_snap.c). */
#define LOG_RAFT_SNAP_MAX 4000

/* Where retention would move the start of a raft log: the segments that
 * retention_ms / retention_bytes would delete, from the oldest, as long as
 * each one's entries are all <= limit (the caller's commit index). Rolls
 * an active segment older than segment_ms first, as log_enforce_retention.
 * Returns 1 with *out_index (the last entry the snapshot would cover) and
 * *out_offset (the base of the first segment kept), or 0: nothing to do. */
int log_raft_trim_point(log_partition *p, int64_t now_ms, int64_t limit, int64_t *out_index,
                        int64_t *out_offset);

/* Take a snapshot at index: the log starts at offset from now on (reads
 * below fail with -CN_ERANGE, log_start moves up), entries <= index are
 * gone for log_raft_entry_at, and the segments wholly below offset are
 * deleted once a sync (requested here) has made the snapshot durable.
 * index must be > the anchor index and <= log_raft_durable (-CN_ERANGE),
 * offset the base of the segment whose first batch follows index, or the
 * log end when no batch does (-CN_EINVAL): what log_raft_trim_point
 * returns. The caller guarantees index is committed. Returns 0, -CN_EIO,
 * -CN_EINVAL (also: not raft mode, len > LOG_RAFT_SNAP_MAX). */
int log_raft_compact(log_partition *p, int64_t index, int64_t offset, const uint8_t *bytes,
                     uint32_t len);

/* Replace the whole log by a snapshot (a replica that fell behind the
 * leader's log start): the log restarts empty at offset, its anchor is
 * (index, term), side entries and segments are gone. Durable when it
 * returns (raft.snap synced, blocking; the rest follows with a sync
 * requested here; recovery finishes a reset a crash interrupted). Returns
 * 0, -CN_EINVAL, -CN_EIO (the partition failed). */
int log_raft_reset(log_partition *p, int64_t index, int64_t term, int64_t offset,
                   const uint8_t *bytes, uint32_t len);

/* Move log_start up to offset (<= log end) without deleting anything: the
 * raft log keeps its entries (followers may still need them) and reads
 * below offset fail with -CN_ERANGE; the next log_raft_trim_point counts
 * the segments wholly below it as due. The caller applies a committed
 * DeleteRecords entry. Written to the log-start file, durable with the
 * sync requested here (log_start_durable). Returns 0 (also when offset <=
 * log_start), -CN_EINVAL (not raft mode), -CN_EIO / -CN_ENOSPC. */
int log_raft_set_start(log_partition *p, int64_t offset);

/* log_read for the raft log's own use (entries sent to followers): the
 * same, but from the first segment on, below log_start too. -CN_EINVAL
 * when not raft mode. */
int log_raft_read(log_partition *p, int64_t offset, int64_t max_offset, int64_t max_bytes,
                  log_slice *out);

/* The caller's bytes of the last snapshot (NULL and 0 when none); valid
 * until the next compact, reset or close. */
const uint8_t *log_raft_snap_bytes(const log_partition *p, uint32_t *len);

/* Syncer threads ----------------------------------------------------------- */

/* `threads` threads (at least 1) that run fdatasync jobs off the loop
 * thread, jobs of different partitions at the same time (one job per
 * partition at most). Completion is posted to an eventfd; the loop calls
 * log_syncer_drain() when it is readable and the durable callbacks run
 * there, in completion order (not submit order across partitions). */
int log_syncer_new(log_syncer **out, int threads); /* 0, -CN_EIO or -CN_ENOMEM */
/* Runs the jobs still queued, joins the threads, then delivers their
 * completions as log_syncer_drain() does. Partitions using s must not
 * request syncs afterwards. NULL is a no-op. */
void log_syncer_free(log_syncer *s);
int log_syncer_fd(const log_syncer *s);   /* eventfd to poll for readability */
/* fdatasync one file that is not a partition's (repl's raft.votes) on the
 * syncer threads: fd is dup()ed at once (the caller may close its own), and
 * done(arg, 0 or -CN_EIO) runs from log_syncer_drain() (or before this
 * returns with a NULL syncer). The caller keeps arg alive until done runs.
 * Returns 0 or -CN_EIO (dup failed; done does not run). */
int log_syncer_fdatasync(log_syncer *s, int fd, void (*done)(void *arg, int status), void *arg);
void log_syncer_drain(log_syncer *s);     /* loop thread: run completions */
/* What the syncer did since it was made, for metrics. Counted by
 * log_syncer_drain on the loop thread from what each job recorded (the
 * threads only write their job's duration), so reading needs no lock.
 *   duration  time one job took on a syncer thread (hist_latency_ns): the
 *             fdatasync of every file of one partition that held unsynced
 *             data (plus the directory's fsync when entries changed), or
 *             one log_syncer_fdatasync file (raft.votes); every job that
 *             ran, failed ones included. Syncs without a syncer (inline,
 *             log_partition_sync_now at open and close) are not counted.
 *   bytes     per partition job that carried appended data: bytes of
 *             batches appended since the previous job of that partition,
 *             i.e. the group commit's size (hist_bytes);
 *   records   the same jobs: offsets appended since then (records and
 *             transaction markers; hist_records).
 * Loop thread only; the pointer stays valid until log_syncer_free. */
typedef struct log_sync_stats {
    hist duration;
    hist bytes;
    hist records;
} log_sync_stats;
const log_sync_stats *log_syncer_stats(const log_syncer *s);

/* Manual syncer, for simulations (tests/sim): no threads; jobs (partition
 * syncs and log_syncer_fdatasync files) queue in submit order and run only
 * when the caller says, so sync completions happen at virtual times and in
 * any order across partitions and files. log_syncer_run(s, i) runs the
 * i-th queued job (0: the oldest; the fdatasyncs happen then, covering
 * what the files hold at that moment) and posts its completion, which
 * log_syncer_drain delivers as usual. log_syncer_discard throws every
 * queued job away unrun, as a crash would (fds closed, completion with
 * -CN_EIO, then drained): call it after every partition and file user of
 * s is closed (their memory is freed there). log_syncer_free runs what is
 * still queued first. Returns 0, -CN_EIO/-CN_ENOMEM; run: 0 or -CN_EINVAL
 * (not manual, i out of range). */
int log_syncer_new_manual(log_syncer **out);
size_t log_syncer_pending(const log_syncer *s);
int log_syncer_run(log_syncer *s, size_t i);
void log_syncer_discard(log_syncer *s);
#endif
