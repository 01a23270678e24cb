/* A compacted key-value log on an internal partition of the broker: the
 * storage under the committed offsets store (__consumer_offsets) and the
 * transaction coordinator (__transaction_state), and later any other broker
 * metadata kept the same way. The owner keeps its state in memory and
 * decides what the keys and values mean; this module writes them, reads
 * them back at open and compacts the log.
 *
 * Framing (what this module writes; the owner's key and value bytes go in
 * unchanged). Each kvl_append writes ONE record batch v2 (layout in
 * record/batch.h), built by batch_build, with these values (big-endian):
 *    0  int64 baseOffset         written by the log at append
 *    8  int32 batchLength        bytes after this field
 *   12  int32 leaderEpoch        written by the log at append
 *   16  int8  magic              2
 *   17  int32 crc                CRC-32C of bytes 21..end
 *   21  int16 attributes         0 (uncompressed, CreateTime, not
 *                                transactional, not control)
 *   23  int32 lastOffsetDelta    n - 1
 *   27  int64 baseTimestamp      ts given to kvl_append (wall ms)
 *   35  int64 maxTimestamp       the same ts
 *   43  int64 producerId         -1
 *   51  int16 producerEpoch      -1
 *   53  int32 baseSequence       -1
 *   57  int32 recordsCount       n
 *   61  n records, i = 0..n-1, in the order added (zigzag varints):
 *         varint length, int8 attributes 0, varlong timestampDelta 0,
 *         varint offsetDelta i, varint keyLen (>= 0: keys are never null)
 *         + key, varint valueLen (-1: tombstone, no bytes) + value,
 *         varint headerCount 0
 * Validity: a batch counts only if its length is sane, magic is 2 and the
 * CRC matches. The owner's key and value formats are documented where the
 * owner encodes them (group/offsets.h, txn/txn_rec.c). Nothing else is
 * stored, no version of our own: both owners wrote exactly this before the
 * module existed, so their old logs replay unchanged.
 *
 * Replay (kvl_open): every batch from the log start to the log end, in
 * offset order, and in each batch its records in order; records below the
 * log start (a batch that straddles it) are not passed. Each batch is
 * checked (length, magic 2, CRC-32C): a damaged one is skipped with a
 * warning, a damaged length stops replay there (logged; what was read stays
 * applied). Control batches are skipped. The owner rejects a record it cannot
 * decode by returning < 0 with a reason: the first 10 are logged, the count
 * is in kvl_stats. Later records win is the owner's rule, applied by
 * replaying in order.
 *
 * Durability: kvl_append writes to the page cache and returns the target
 * (the log end offset after the batch); the batch is durable once
 * kvl_wait_durable for that target calls back with 0. A failed write or
 * fsync is sticky (the log fails; see log.h): every later append fails
 * until the broker restarts.
 *
 * Compaction (kvl_compact): the owner's ops->compact callback hands every
 * live record to kvl_compact_add, which re-appends them after everything
 * else as batches closed at 1000 records or 1 MiB of keys and values; once
 * those are fsynced,
 * the log start moves to the first re-appended offset (log_delete_before)
 * and whole segments below it are deleted. Across a crash at any point, the
 * log that survives replays to the same state: before the start moves it
 * holds the old records followed by (some of) the re-appended copies, which
 * only repeat live values; a log start that did not reach the disk leaves
 * the old records in front again; a moved start always has the complete
 * re-appended state after it (it moves only once that state is durable).
 * So every removal must be written as a tombstone: a key the owner only
 * forgets in memory vanishes at the next compaction, yet comes back from the
 * older records on any replay before that.
 *
 * Ownership: the broker owns the partition (broker_internal_partition) and
 * closes it; the kvl owns its memory and its compaction wait. Pointers given
 * to a call are borrowed for that call unless noted.
 *
 * Threads: loop thread only (or before the loop runs). Callbacks run on the
 * loop thread and must not call kvl_close. */
#ifndef CAIRN_KVLOG_H
#define CAIRN_KVLOG_H
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "record/batch.h"

typedef struct kvl kvl;
typedef struct kvl_compaction kvl_compaction;

/* Compaction: a re-appended batch is closed once it holds this many records
 * or bytes of keys and values; a log is compacted by kvl_maybe_compact when its bytes
 * since the log start exceed KVL_COMPACT_FACTOR x live bytes + slack. */
#define KVL_COMPACT_BATCH_RECS 1000
#define KVL_COMPACT_BATCH_BYTES ((size_t)1 << 20)
#define KVL_COMPACT_FACTOR 4
#define KVL_COMPACT_SLACK ((int64_t)1 << 20)

/* What the owner provides. arg is the one given to kvl_open. */
typedef struct kvl_ops {
    /* Replay, called from kvl_open for each record of each intact batch (r's
     * views are valid during the call; r->value_len -1 = tombstone). Return
     * 0 when applied, or < 0 with *why set to a static reason when the
     * record is not understood (skipped, logged). Required. */
    int (*on_record)(void *arg, const batch_record *r, const char **why);
    /* Compaction: call kvl_compact_add for every live record, in the order
     * replay must see them; return 0, or the first error kvl_compact_add
     * returned (stop there). Required for kvl_compact. */
    int (*compact)(void *arg, kvl_compaction *cx);
    /* The owner's estimate of the bytes a freshly compacted log would take
     * (kvl_maybe_compact's trigger). Required for kvl_maybe_compact. */
    int64_t (*live_bytes)(void *arg);
} kvl_ops;

/* Open / close ------------------------------------------------------------ */

/* Open the internal partition <log.dirs>/<name>-0 of broker b (created when
 * absent) and replay it through ops->on_record before returning. name must
 * be one of the broker's reserved internal names (broker_topic_name_reserved:
 * clients cannot create it, and start-up does not remove its directory as an
 * orphan); a new internal log adds its name there. ops and name are copied.
 * Returns 0, -CN_EINVAL for a name that is not reserved, -CN_EIO when the log
 * cannot be read (nothing is kept open then; records already replayed stay
 * applied in the owner's memory), or -CN_E* from broker_internal_partition. */
int kvl_open(broker *b, const char *name, const kvl_ops *ops, void *arg, kvl **out);
/* The same on a partition replicated to every node of the cluster
 * (broker_internal_partition_replicated), for an owner that serves only
 * where it leads. Nothing is replayed here: the owner calls kvl_replay
 * when kvl_serving first answers 0 in a new term (kvl_term), after
 * dropping what it held, and drops its memory again when kvl_serving says
 * it no longer leads. Its appends are Raft entries (broker_append, leader
 * only: -CN_ENOTLEADER / -CN_ELEADERWAIT elsewhere) and kvl_wait_durable
 * waits for their commit (durable on a majority); a wait parked when
 * leadership goes answers -CN_ENOTLEADER. Compaction runs on the leader
 * (kvl_compact does nothing where kvl_serving is not 0): the copy is
 * appended and committed as usual, then the log start moves through the
 * group (broker_delete_records: a log-start entry every replica applies on
 * commit), and each replica's retention pass deletes the segments below it
 * by a Raft snapshot. A new leader replays from its log start, so from a
 * complete copy. -CN_EINVAL on a single node. */
int kvl_open_replicated(broker *b, const char *name, const kvl_ops *ops, void *arg, kvl **out);
/* Replay the whole log again (log start to log end) through ops->on_record;
 * the stats restart. For kvl_open_replicated's owner taking over. 0 or
 * -CN_EIO. */
int kvl_replay(kvl *l);
/* broker_partition_serving of the log's partition: 0 where the owner may
 * serve (unreplicated, or the leader with its term's barrier committed),
 * -CN_ELEADERWAIT (leads, not ready), -CN_ENOTLEADER. */
int kvl_serving(kvl *l);
/* The partition's epoch (the Raft term when replicated). */
int64_t kvl_term(const kvl *l);
int kvl_replicated(const kvl *l);
/* Free the memory. NULL is a no-op. No fsync, and the partition stays open
 * (broker_close syncs and closes it). A compaction still waiting for its
 * fsync is abandoned: the log start does not move, the re-appended records
 * stay as harmless duplicates until the next compaction. */
void kvl_close(kvl *l);
/* The internal partition (for broker_wait_durable by request handlers, and
 * tests). */
partition *kvl_partition(kvl *l);
/* Log end offset: the durability target covering everything appended so far. */
int64_t kvl_end(const kvl *l);

/* Building a batch --------------------------------------------------------- */

/* Records to append as one batch. Caller's storage: kvl_batch_init, then
 * kvl_batch_fini. Fields are private. */
typedef struct kvl_batch {
    uint8_t *buf;                   /* keys and values back to back */
    size_t len, cap;
    struct kvl__rec { size_t ko, vo; int32_t kl, vl; } *recs;
    int n, cap_recs;
} kvl_batch;

void kvl_batch_init(kvl_batch *bt);
void kvl_batch_fini(kvl_batch *bt);
/* Drop the records, keep the memory. */
void kvl_batch_reset(kvl_batch *bt);
/* Add one record; key and value are copied. key_len >= 0; value_len -1 (value
 * ignored) is a tombstone. Aborts on OOM (control data, bounded by the
 * owner). */
void kvl_batch_add(kvl_batch *bt, const void *key, int32_t key_len, const void *value,
                   int32_t value_len);
int kvl_batch_count(const kvl_batch *bt);
/* Bytes of keys and values added. */
size_t kvl_batch_bytes(const kvl_batch *bt);

/* Append ------------------------------------------------------------------- */

/* Append bt's records as one batch with timestamp ts (wall ms), in the page
 * cache. bt is not changed. An empty bt writes nothing. *out_target (may be
 * NULL) is the log end offset after the append (the current end when nothing
 * was written). Returns 0, -CN_ENOMEM (the batch could not be built), or
 * log_append's -CN_EIO (the log is failed now) / -CN_ENOSPC. */
int kvl_append(kvl *l, const kvl_batch *bt, int64_t ts, int64_t *out_target);

/* Park w until the log is durable up to target, then call cb(w, 0), or
 * cb(w, -CN_EIO) when the fsync failed. w->target and w->cb are set here.
 * When the log is already durable that far, cb runs before this returns.
 * w is borrowed until cb runs or kvl_wait_cancel. */
void kvl_wait_durable(kvl *l, int64_t target, durable_wait *w,
                      void (*cb)(durable_wait *w, int status));
/* Withdraw a parked w without calling it (a no-op when it already fired). */
void kvl_wait_cancel(kvl *l, durable_wait *w);

/* Compaction ---------------------------------------------------------------- */

/* Compact now (protocol at the top of this file): ops->compact re-appends
 * the live records, then the module waits for their fsync and moves the log
 * start. Returns 0 (the start moves later, from the loop; at once when the
 * fsync is already done; not at all when nothing was re-appended), -CN_EAGAIN
 * when a compaction is already waiting, or the first append error (the log
 * start stays; what was re-appended only duplicates live records). */
int kvl_compact(kvl *l);
/* kvl_compact when the bytes since the log start (or the last compaction
 * point) exceed KVL_COMPACT_FACTOR x ops->live_bytes + KVL_COMPACT_SLACK.
 * Cheap otherwise; 0 while a compaction waits. Returns 0 or kvl_compact's
 * -CN_E*. */
int kvl_maybe_compact(kvl *l);
/* For ops->compact: add one live record (as kvl_batch_add); appends a batch
 * whenever KVL_COMPACT_BATCH_RECS or KVL_COMPACT_BATCH_BYTES is reached.
 * Returns 0, or the append's -CN_E* (sticky: later adds do nothing and
 * return it). */
int kvl_compact_add(kvl_compaction *cx, const void *key, int32_t key_len, const void *value,
                    int32_t value_len);

/* Stats ----------------------------------------------------------------------- */

typedef struct kvl_stats {
    int64_t log_bytes;              /* batch bytes from the log start, or from the last
                                       compaction point, to the end */
    int64_t replayed;               /* records applied at open */
    int64_t skipped;                /* records the owner rejected at open */
    int compacting;                 /* 1 while a compaction waits for its fsync */
} kvl_stats;
void kvl_get_stats(const kvl *l, kvl_stats *out);
/* 1 while a compaction waits for its fsync before moving the log start. */
int kvl_compacting(const kvl *l);
#endif
