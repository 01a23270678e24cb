/* Producer state of one partition: idempotence and transactions.
 *
 * For every producer id that wrote to the partition: its epoch, the metadata
 * of its last 5 batches (for duplicate detection), the first offset of its
 * open transaction, and the coordinator epoch of its last marker. For the
 * partition: the set of open transactions (whose smallest first offset is the
 * last stable offset when below the high watermark) and the aborted-
 * transaction index (producer id, first offset, last offset = ABORT marker
 * offset), which read_committed fetches return.
 *
 * Rules (Kafka's, ../shared/protocol/kafka/NOTES.md §10-11):
 *  - a batch equal (epoch, first seq, last seq) to one of the producer's last
 *    5 is a duplicate: not appended, answered with the original offset;
 *  - an older epoch is INVALID_PRODUCER_EPOCH; a newer epoch must start at
 *    sequence 0 (unless nothing is known of the producer);
 *  - otherwise the sequence must follow the last one (wrapping after
 *    INT32_MAX), else OUT_OF_ORDER_SEQUENCE_NUMBER; with no state for the
 *    producer any sequence is accepted.
 *
 * Persistence: the state is a function of the log. pst_snapshot_write saves
 * it at an offset into <dir>/producer.snapshot (temp file, rename; not fsynced: a lost or torn snapshot only means a longer replay);
 * pst_load reads a snapshot (ignored if damaged or past the log end) and the
 * caller replays batch headers from the snapshot offset to the log end with
 * pst_replay_batch. Loop thread only. */
#ifndef CAIRN_PSTATE_H
#define CAIRN_PSTATE_H
#include <stddef.h>
#include <stdint.h>

#include "record/batch.h"

typedef struct pst_table pst_table;

#define PST_BATCHES 5

typedef struct pst_batch {
    int32_t first_seq;
    int32_t last_seq;
    int64_t first_offset;
    int64_t last_offset;
    int64_t timestamp;              /* max timestamp of the batch */
} pst_batch;

typedef struct pst_producer {
    int64_t pid;
    int16_t epoch;
    int32_t coordinator_epoch;      /* of the last marker, -1 none */
    int64_t txn_first_offset;       /* open transaction's first offset, -1 none */
    int64_t last_timestamp;         /* of its last batch or marker */
    pst_batch batches[PST_BATCHES]; /* ring, oldest first from head */
    int n_batches;
    int head;
} pst_producer;

typedef struct pst_aborted {
    int64_t pid;
    int64_t first_offset;
    int64_t last_offset;            /* the ABORT marker's offset */
} pst_aborted;

pst_table *pst_new(void);
void pst_free(pst_table *t);        /* NULL is a no-op */

/* Check a batch with a producer id (bi->producer_id >= 0) before appending.
 * Returns 0 (append it), 1 for a duplicate (*dup is then the original batch:
 * its offsets go in the answer), or -CN_EEPOCH (epoch older than the
 * producer's) / -CN_ESEQUENCE (sequence gap): do not append. */
int pst_check(pst_table *t, const batch_info *bi, pst_batch *dup);
/* Record an appended batch (data or control) at [base, base + lod]. For a
 * control batch, marker_type is 0 ABORT / 1 COMMIT and coordinator_epoch is
 * the marker's; otherwise pass -1 for both. */
void pst_update(pst_table *t, const batch_info *bi, int64_t base_offset, int marker_type,
                int32_t coordinator_epoch);
/* Replaying the log at open: same as pst_update, from stored batch headers
 * (the caller reads the marker type from a control batch's first record). */
#define pst_replay_batch pst_update

/* Smallest first offset of an open transaction, or -1 when none. */
int64_t pst_first_unstable(const pst_table *t);
/* 1 if pid has a transaction open on this partition. */
int pst_txn_open(const pst_table *t, int64_t pid);
/* Aborted transactions overlapping [from, to) (last offset >= from and first
 * offset < to, as Kafka's index lookup): calls cb (may be NULL) for each, in
 * marker (last offset) order, not first offset order; clients sort them.
 * Returns the count. */
int pst_aborted_in(const pst_table *t, int64_t from, int64_t to,
                   void (*cb)(void *arg, const pst_aborted *a), void *arg);
/* Forget aborted ranges that end below log_start (after retention). */
void pst_truncate_head(pst_table *t, int64_t log_start);
/* Iterate producers (DescribeProducers). */
void pst_foreach(const pst_table *t, void (*cb)(void *arg, const pst_producer *p), void *arg);
const pst_producer *pst_get(const pst_table *t, int64_t pid);
int pst_count(const pst_table *t);

/* Forget producers with no open transaction whose last batch or marker is
 * older than max_idle_ms (producer.id.expiration.ms). Returns how many. */
int pst_expire(pst_table *t, int64_t now_ms, int64_t max_idle_ms);

/* Snapshot file in dir. write: 0 or -errno. load: returns the offset the
 * snapshot covers (replay from there), or 0 when there is none or it is
 * invalid (state cleared: replay everything; a snapshot past log_end is also
 * deleted, as it describes data the log lost), or -errno on I/O error. */
int pst_snapshot_write(const pst_table *t, const char *dir, int64_t offset);
int64_t pst_snapshot_load(pst_table *t, const char *dir, int64_t log_start, int64_t log_end);

#endif
