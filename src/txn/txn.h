/* Transaction coordinator: producer id allocation for every producer, and
 * the per-transactional.id two-phase commit (Kafka's semantics,
 * ../shared/protocol/kafka/NOTES.md §10-11). State lives in memory and in the
 * internal log __transaction_state (BROKER_TXN_TOPIC); record format and the
 * state machine are documented at the top of txn.c.
 *
 *   Empty / CompleteCommit / CompleteAbort
 *        |  AddPartitionsToTxn / AddOffsetsToTxn
 *        v
 *     Ongoing --EndTxn(commit)--> PrepareCommit --markers durable--> CompleteCommit
 *        |    --EndTxn(abort) --> PrepareAbort  --markers durable--> CompleteAbort
 *        |    --timeout / InitProducerId fence (epoch bump)--> PrepareAbort
 *
 * In a cluster the log is replicated and its leader coordinates
 * (txn_open_replicated); the operations below answer -CN_ENOTCOORD or
 * -CN_ELOADING elsewhere.
 *
 * Every transition is appended to the log before it takes effect for the
 * client: requests are answered once their record is durable. After
 * Prepare* is durable the client is answered, then markers go to every
 * partition of the transaction (broker_write_marker) and, on commit, the
 * pending transactional offsets are committed (goff_commit); once all of
 * those are durable, Complete* is appended.
 *
 * Operations take a callback that is called exactly once, possibly before the
 * function returns (immediate errors, or a record already durable): it gets 0
 * or a negative CN_E* code (util/common.h) and, for InitProducerId, the
 * producer id and epoch. Front ends map the code to their wire errors (Kafka:
 * kerr_from_cn). A stale epoch is -CN_EFENCED; the Kafka handlers answer it
 * as INVALID_PRODUCER_EPOCH for the old request versions as Kafka does.
 *
 * Loop thread only. */
#ifndef CAIRN_TXN_H
#define CAIRN_TXN_H
#include <stdint.h>

#include "broker/broker.h"
#include "group/offsets.h"
#include "util/bytes.h"

typedef struct txn_coord txn_coord;

typedef enum txn_state {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,   /* Kafka's name; never stored by Cairn */
} txn_state;

#define TXN_STATE__COUNT 8
/* Producer ids are handed out from blocks of this many; the end of a block is
 * durable in the log before any id of it is answered. */
#define TXN_PID_BLOCK 1000
/* Epoch at which InitProducerId rotates to a new producer id (Short.MAX - 1). */
#define TXN_EPOCH_MAX 32766

/* Kafka's names ("Empty", "Ongoing", ...). */
const char *txn_state_name(txn_state s);
/* Parse a Kafka state name (exact case). -1 when unknown. */
int txn_state_parse(cn_str name);

/* Open / close ------------------------------------------------------------ */

/* In a cluster, the first producer id the coordinator hands out; idempotent
 * producers get theirs from node.id << 40 up (each node its own blocks). */
#define TXN_CLUSTER_PID_BASE ((int64_t)1 << 56)

/* Open on broker b (opens and replays __transaction_state). offsets is where
 * committed transactional offsets go (may be NULL in tests: offsets are then
 * dropped). Transactions found in Prepare* are completed now (markers
 * re-written: a repeated marker is harmless to the partition); Ongoing ones
 * are aborted by the periodic timeout check once past their timeout.
 * Returns 0, or -CN_E* (logged). */
int txn_open(broker *b, goff_store *offsets, txn_coord **out);
/* Free everything; pending callbacks are dropped without being called.
 * NULL is a no-op. Call before broker_close. */
void txn_close(txn_coord *c);
partition *txn_partition(txn_coord *c);
/* The same in a cluster: __transaction_state is replicated to every node
 * (kvl_open_replicated) and only its leader coordinates, once its term's
 * barrier committed; it replays the log then (once per term) and completes
 * the transactions its predecessor left in Prepare*. Elsewhere, requests
 * for a transactional id answer -CN_ENOTCOORD (NOT_COORDINATOR), or
 * -CN_ELOADING while the leader is not ready (COORDINATOR_LOAD_IN_PROGRESS).
 * Idempotent producers (null transactional id) get ids on any node, from
 * its own log __producer_ids. */
int txn_open_replicated(broker *b, goff_store *offsets, txn_coord **out);
/* 0 where this node coordinates transactional ids (always on a single
 * node); else -CN_ENOTCOORD, -CN_ELOADING or -CN_EUNAVAIL. Loads or drops
 * the state as leadership comes and goes (every operation checks it). */
int txn_serving(txn_coord *c);
/* The node that coordinates transactional ids: the leader of
 * __transaction_state-0 (-1 while none is known; this node on a single
 * node). */
int32_t txn_coordinator(txn_coord *c);

/* Client operations -------------------------------------------------------- */

/* err: 0 or -CN_E*. producer_id/producer_epoch: InitProducerId's answer,
 * -1/-1 otherwise and on errors. */
typedef void (*txn_cb)(void *arg, int err, int64_t producer_id, int16_t producer_epoch);

/* Errors of the operations below (Kafka's names in parentheses):
 *   -CN_EINVAL       empty transactional id (INVALID_REQUEST)
 *   -CN_EPIDMAP      unknown id, or another producer id (INVALID_PRODUCER_ID_MAPPING)
 *   -CN_EFENCED      stale epoch (PRODUCER_FENCED)
 *   -CN_EBUSY        a state change is in progress (CONCURRENT_TRANSACTIONS)
 *   -CN_ETXNSTATE    not valid in the current state (INVALID_TXN_STATE)
 *   -CN_ETXNTIMEOUT  timeout out of range (INVALID_TRANSACTION_TIMEOUT)
 *   -CN_EBADGROUP    empty group id (INVALID_GROUP_ID)
 *   -CN_EUNAVAIL     the coordinator stopped after a storage failure
 *                    (COORDINATOR_NOT_AVAILABLE) */

/* InitProducerId. tid.len < 0 (null): idempotent producer, a fresh producer id
 * with epoch 0. Otherwise (see txn.c for the full table): new id -> new pid;
 * Empty/Complete* -> epoch bump (new pid past TXN_EPOCH_MAX); Ongoing -> the
 * transaction is aborted with a bumped epoch (fencing the old producer) and
 * the answer is -CN_EBUSY (the client retries, as with Kafka); Prepare* ->
 * -CN_EBUSY. pid/epoch: -1/-1, or the producer's current ones (v3+,
 * KIP-360). Errors: -CN_EINVAL (empty id), -CN_ETXNTIMEOUT, -CN_EFENCED,
 * -CN_EBUSY, -CN_EUNAVAIL. */
void txn_init_producer(txn_coord *c, cn_str tid, int32_t timeout_ms, int64_t pid, int16_t epoch,
                       txn_cb cb, void *arg);

typedef struct txn_tp {
    cn_str topic;
    int32_t partition;
} txn_tp;

/* AddPartitionsToTxn: the caller has checked that each partition exists.
 * Errors: -CN_EINVAL, -CN_EPIDMAP, -CN_EFENCED, -CN_EBUSY, -CN_EUNAVAIL. */
void txn_add_partitions(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, const txn_tp *tps,
                        int n, txn_cb cb, void *arg);
/* AddOffsetsToTxn: the group's offsets join the transaction. Same errors
 * (-CN_EBADGROUP for an empty group). */
void txn_add_offsets(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, cn_str group,
                     txn_cb cb, void *arg);
/* TxnOffsetCommit (after the group generation check, which is the
 * handler's): items become pending in the transaction, committed with it.
 * Items' expire_ms is ignored. Errors: -CN_EINVAL, -CN_EPIDMAP, -CN_EFENCED,
 * -CN_EBUSY (Prepare*), -CN_ETXNSTATE (not Ongoing, or the group was not
 * added), -CN_EUNAVAIL. */
void txn_offset_commit(txn_coord *c, cn_str tid, cn_str group, int64_t pid, int16_t epoch,
                       const goff_commit_item *items, int n, txn_cb cb, void *arg);
/* EndTxn. Errors: -CN_EINVAL, -CN_EPIDMAP, -CN_EFENCED, -CN_ETXNSTATE,
 * -CN_EBUSY, -CN_EUNAVAIL. */
void txn_end(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, int commit, txn_cb cb,
             void *arg);

/* 1 if an Ongoing or Prepare* transaction holds a pending offset for
 * (group, topic, partition): a stable offset read (Kafka's OffsetFetch with
 * require_stable) must not answer it yet (UNSTABLE_OFFSET_COMMIT). */
int txn_offsets_pending(txn_coord *c, cn_str group, cn_str topic, int32_t partition);

/* Describe ----------------------------------------------------------------- */

typedef struct txn_info {
    const char *tid;                /* NUL-terminated */
    txn_state state;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int64_t start_ms;               /* wall ms the transaction started, -1 when none */
    int64_t update_ms;              /* wall ms of the last transition */
    const txn_tp *parts;            /* partitions in the transaction */
    int n_parts;
} txn_info;

/* Fill *out for tid. Views are valid until the next change to the
 * coordinator. 0, or -CN_ENOENT. */
int txn_describe(txn_coord *c, cn_str tid, txn_info *out);
/* Call cb for every transactional id (no order). cb must not change c. */
void txn_foreach(txn_coord *c, void (*cb)(void *arg, const txn_info *ti), void *arg);

/* Maintenance (the coordinator arms its own timer; tests call these) ------- */

/* Abort (with an epoch bump) every Ongoing transaction older than its
 * timeout, and retry completions that failed. Returns how many were
 * aborted. */
int txn_check_timeouts(txn_coord *c);
/* Compact the log when it is more than 4 x the live bytes + 1 MiB, as the
 * offsets store does (force: always). Returns 0 or -CN_E*. */
int txn_maybe_compact(txn_coord *c, int force);
/* 1 while some transaction is in PrepareCommit or PrepareAbort (its markers
 * are not all durable yet, or a failed completion waits for a retry). */
int txn_completing(const txn_coord *c);
#endif
