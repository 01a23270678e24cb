/* Committed offsets of consumer groups, and the coordinator's per-group
 * metadata blob, kept durably in the internal log __consumer_offsets
 * (BROKER_OFFSETS_TOPIC, partition 0, opened with broker_internal_partition)
 * and in memory as a hash table.
 *
 * Record format (inside standard v2 batches, uncompressed, built with
 * batch_build; one record per item). All integers big-endian; "str" is an
 * int16 length then that many bytes (length -1 = null, only where noted):
 *
 *   offset key      int16 version = 1, str group, str topic, int32 partition
 *   offset value    int16 version = 1, int64 offset, int32 leader_epoch,
 *                   str metadata (nullable), int64 commit_ms, int64 expire_ms
 *   group meta key  int16 version = 2, str group
 *   group meta val  int16 version = 0, then the blob (rest of the value)
 *   tombstone       any key above with a null value: removes that key
 *
 * Replay reads the log from its start to its end; later records win. A record
 * with an unknown key version, an unknown value version or a malformed layout
 * is skipped with a log line (slog_warn); so is a batch whose CRC-32C does not
 * match. Opening never fails because of record contents.
 *
 * Names: groups and topics are arbitrary bytes of length 0..32767 (not null);
 * metadata is nullable, at most 32767 bytes (offset.metadata.max.bytes is the
 * Kafka handler's check, it answers OFFSET_METADATA_TOO_LARGE per partition).
 * Strings handed back (goff_entry.metadata, topic and group names in
 * callbacks) are NUL-terminated copies; a name holding a NUL byte appears cut
 * at it there.
 *
 * Durability: every change appends to the log (page cache) before it is
 * applied in memory; functions that take int64_t *wait_target set it to the
 * log end offset after their append (or the current log end when nothing had
 * to be written). The caller parks a durable_wait with that target through
 * broker_wait_durable on goff_partition(s) and answers the client from its
 * callback. Memory already shows the change meanwhile (as Kafka's cache does).
 *
 * Loop thread only. Callbacks must not change the store. */
#ifndef CAIRN_GROUP_OFFSETS_H
#define CAIRN_GROUP_OFFSETS_H
#include <stdint.h>

#include "broker/broker.h"
#include "util/bytes.h"

typedef struct goff_store goff_store;

/* Record versions (first int16 of each key / value). */
#define GOFF_KEY_OFFSET 1
#define GOFF_KEY_GROUP_META 2
#define GOFF_VALUE_OFFSET_V1 1
#define GOFF_VALUE_GROUP_META_V0 0
#define GOFF_STR_MAX 32767

/* Open / close ------------------------------------------------------------ */

/* Open the store on broker b: opens the internal partition and replays it
 * (kvl_open: log start to log end), rebuilding the in-memory map. Returns 0,
 * or -CN_EIO when the log cannot be read, -CN_E* from kvl_open. */
int goff_open(broker *b, goff_store **out);
/* The store of a cluster node: __consumer_offsets is replicated to every
 * node (kvl_open_replicated) and the store holds state only while this node
 * is the partition's leader and has loaded it: before any other call, the
 * caller asks goff_serving (below). Memory starts empty. */
int goff_open_replicated(broker *b, goff_store **out);
/* May this node answer for the store now? 0: yes (an unreplicated store
 * always; a replicated one once it leads with its term's barrier committed,
 * then the whole log is replayed into memory here, once per term).
 * -CN_ELOADING: it leads but is not ready; -CN_ENOTCOORD: another node
 * leads (goff_coordinator says which, -1 while unknown); -CN_EUNAVAIL: the
 * log could not be read. Whenever leadership goes or the term changes,
 * memory is emptied. Cheap when nothing changed. */
int goff_serving(goff_store *s);
/* Counts every load and every drop of the memory (goff_serving): a holder
 * of state derived from the store (the group coordinator's groups) rebuilds
 * or drops it when the number moves. */
uint64_t goff_generation(const goff_store *s);
/* Node id of the log's leader: this node for an unreplicated store, -1
 * while unknown. */
int32_t goff_coordinator(goff_store *s);
/* 1 when opened with goff_open_replicated. */
int goff_replicated(const goff_store *s);
/* Free the memory. NULL is a no-op. Does not close the partition (the broker
 * does); a compaction still waiting for its fsync is abandoned (its old
 * segments stay until the next compaction). */
void goff_close(goff_store *s);
/* The internal partition (for broker_wait_durable). */
partition *goff_partition(goff_store *s);

/* Offsets ------------------------------------------------------------------- */

typedef struct goff_entry {
    int64_t offset;
    int32_t leader_epoch;                /* -1 when unknown */
    char *metadata;                      /* owned, NUL-terminated, may be ""; NULL = null */
    int64_t commit_ms;                   /* wall clock at commit */
    int64_t expire_ms;                   /* explicit expiry (OffsetCommit v1..4 retention), -1 none */
} goff_entry;

/* Look up. NULL when nothing is committed (or a name is null / too long).
 * The pointer is valid until the next call that changes the store. No
 * allocation. */
const goff_entry *goff_get(goff_store *s, cn_str group, cn_str topic, int32_t partition);

/* One commit request: n items for one group. Validates every item (group and
 * topic not null and <= 32767 bytes, metadata <= 32767 bytes; otherwise
 * -CN_EINVAL), appends ONE batch (one record per item, in order; n == 0
 * appends nothing), then applies the items to memory (a repeated
 * topic-partition: the later item wins, as on replay). commit_ms of each entry
 * is now_ms. On success *wait_target is the log end offset to wait for.
 * Returns 0, -CN_EINVAL, or the append's -CN_EIO/-CN_ENOSPC; on error nothing
 * is applied. */
typedef struct goff_commit_item {
    cn_str topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    cn_str metadata;                     /* len -1 = null */
    int64_t expire_ms;                   /* -1 none */
} goff_commit_item;
int goff_commit(goff_store *s, cn_str group, const goff_commit_item *items, int n, int64_t now_ms,
                int64_t *wait_target);

/* Remove the offset of one topic-partition (OffsetDelete): one tombstone.
 * Nothing committed there: nothing written, returns 0. Same return and
 * wait_target contract as goff_commit. */
int goff_delete(goff_store *s, cn_str group, cn_str topic, int32_t partition, int64_t *wait_target);
/* Remove a whole group (DeleteGroups): tombstones for every committed offset
 * AND for its metadata blob, in one batch. Unknown group: returns 0, nothing
 * written. */
int goff_delete_group(goff_store *s, cn_str group, int64_t *wait_target);

/* Call cb for each committed partition of group, ordered by topic name
 * (bytewise, shorter first on a common prefix) then partition. Allocates a
 * temporary array of the group's entries. */
void goff_foreach(goff_store *s, cn_str group,
                  void (*cb)(void *arg, const char *topic, int32_t partition, const goff_entry *e),
                  void *arg);
/* Call cb for each group that has at least one committed offset (no order). */
void goff_foreach_group(goff_store *s, void (*cb)(void *arg, const char *group), void *arg);
/* 1 if the group has at least one committed offset, else 0. */
int goff_group_has_offsets(goff_store *s, cn_str group);
/* Number of committed offsets in the whole store. */
int64_t goff_count(const goff_store *s);

/* Group metadata ----------------------------------------------------------- */

/* Store (blob.len >= 0) or delete (blob.len == -1) the coordinator's opaque
 * blob for group: one record in one batch. Deleting a group with no blob
 * writes nothing. Same return/wait contract as goff_commit (-CN_EINVAL for a
 * bad group name or a blob over 64 MiB). */
int goff_put_group_meta(goff_store *s, cn_str group, cn_bytes blob, int64_t *wait_target);
/* The blob, or len -1 when none. Valid until the next change to the store. */
cn_bytes goff_group_meta(goff_store *s, cn_str group);
/* Call cb for each group that has a blob (no order); for the coordinator to
 * rebuild its groups after a restart. */
void goff_foreach_group_meta(goff_store *s, void (*cb)(void *arg, const char *group, cn_bytes blob),
                             void *arg);

/* Expiry and compaction ------------------------------------------------------ */

/* offsets.retention.minutes, run by the coordinator periodically. Removes, with
 * tombstones:
 *   - every offset of each group for which is_empty(arg, group) returns 1 and
 *     whose newest commit_ms is older than now_ms - retention_ms
 *     (retention_ms < 0: never);
 *   - every entry whose expire_ms is >= 0 and <= now_ms, whatever the group.
 * Does not touch metadata blobs (the coordinator decides when a group is
 * dead). No wait target: the periodic flush makes the tombstones durable.
 * Returns the number of offsets removed (stops early, logged, if an append
 * fails). is_empty is called at most once per group, and only for groups
 * whose newest commit is past retention. */
int goff_expire(goff_store *s, int64_t now_ms, int64_t retention_ms,
                int (*is_empty)(void *arg, cn_str group), void *arg);

/* Compact when the bytes of the log since its start are more than
 * 4 x the live bytes + 1 MiB (see goff_compact). Cheap otherwise; nothing
 * happens while a compaction waits for its fsync. Returns 0 or -CN_E*. */
int goff_maybe_compact(goff_store *s);
/* Compact now: re-append every live offset and blob as new batches (after
 * everything else), then, once those are durable (a durable_wait on the
 * partition), log_delete_before(first re-appended offset) so older segments
 * go. A crash at any point leaves a log whose replay gives the same state
 * (re-appended records duplicate live ones; later wins). Returns 0 (the
 * deletion happens from the loop later), -CN_EAGAIN when a compaction is
 * already waiting, or the append's -CN_E*. */
int goff_compact(goff_store *s);
/* 1 while a compaction waits for its fsync before deleting. */
int goff_compacting(const goff_store *s);
#endif
