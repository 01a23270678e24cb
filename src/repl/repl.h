/* Replication groups: one Raft group per partition, on libraft's raft_step
 * API (cowsql/raft >= 0.22; docs/cluster-plan.md). libraft decides; this
 * module does its I/O: the group's log is the partition's raft log (src/log
 * with opt.raft: a record batch is a command entry whose term is the
 * batch's leader epoch, barriers and configurations are side entries in
 * raft.meta), term and vote live in the node's raft.votes file, messages go
 * out through a callback in the rg_msg.h encoding, and time comes in as an
 * argument (milliseconds, any monotonic origin) so that a simulation can
 * drive it.
 *
 * Durability rules kept here:
 * - term and vote are fdatasynced (raft.votes) before any message of the
 *   step that changed them leaves; later messages of that group queue
 *   behind them, other groups' messages do not wait;
 * - entries reach the page cache during the step; rg_node_flush (once per
 *   loop turn) asks for one sync per partition that got entries, and
 *   libraft hears RAFT_PERSISTED_ENTRIES only for what a completed sync
 *   covered (log_raft_durable), so an acknowledgement always means
 *   durable;
 * - a new leader submits a barrier entry, so its commit index (and the
 *   high watermark derived from it) covers everything before it once an
 *   entry of its own term is durable on a majority.
 *
 * Single voter: leader as soon as it starts, no timers, no messages; an
 * entry commits when its sync completes (the sync a batch needs anyway).
 *
 * Threading: loop thread only (the syncer threads are log's). Ownership: a
 * group does not own its partition (the caller opens it with opt.raft = 1,
 * keeps it open while the group lives, and closes it after
 * rg_group_close); the group sets the partition's durable callback and
 * forwards it (rg_node_cb.durable). Errors: 0 or -CN_E*. */
#ifndef CAIRN_REPL_H
#define CAIRN_REPL_H
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"
#include "util/wbuf.h"

typedef struct rg_node rg_node;
typedef struct rg_group rg_group;

typedef struct rg_node_cb {
    /* Send msg (rg_msg.h) of group group_id to node `to`. The bytes are
     * valid only during the call. May drop it (Raft retries). */
    void (*send)(void *arg, uint64_t to, uint64_t group_id, const uint8_t *msg, size_t len);
    /* Optional, both or neither: encode in place instead of through send
     * (one copy of every entry fewer). send_begin returns the buffer to
     * append one message for node `to` of group group_id to, the
     * transport's framing already in it, or NULL when the message would be
     * dropped anyway (nothing is encoded then). send_end(arg, w, len)
     * finishes that frame over the len bytes appended; len -1: encoding
     * failed and the frame is taken back out. Held messages (a vote not
     * yet durable) still go through send. */
    wbuf *(*send_begin)(void *arg, uint64_t to, uint64_t group_id);
    void (*send_end)(void *arg, wbuf *w, int64_t len);
    /* Role, term, leader, commit index or commit offset (rg_commit_offset)
     * of g changed. May be NULL. */
    void (*changed)(void *arg, rg_group *g);
    /* The partition's durable callback, forwarded (log.h). May be NULL. */
    void (*durable)(void *arg, rg_group *g, int64_t durable_offset, int status);
    /* Wall-clock milliseconds for the log (segment roll times): the time
     * given to the rg_* calls is monotonic. May be NULL: that time is used
     * (a simulation's virtual clock). */
    int64_t (*wall_ms)(void *arg);
    void *arg;
} rg_node_cb;

/* Open this node's replication state in dir (raft.votes is created there
 * when absent). node_id > 0. syncer: log's syncer threads (NULL: syncs run
 * inline, for tests). Returns 0, -CN_EIO (file), -CN_ECORRUPT (raft.votes
 * holds a pair of slots with no valid one), -CN_EINVAL. */
int rg_node_open(const char *dir, uint64_t node_id, log_syncer *syncer, const rg_node_cb *cb,
                 rg_node **out);
/* Close every group still open, then the node (after a votes sync in
 * flight completes: syncer drain or syncer free). NULL is a no-op. */
void rg_node_close(rg_node *n);
uint64_t rg_node_id(const rg_node *n);
/* Election and heartbeat timeouts for groups opened afterwards (defaults
 * 1000 and 100 ms; the broker's from cluster.election.timeout.ms) and the seed of their randomness (libraft's
 * raft_seed, mixed with the group id): a simulation replays by seed. */
void rg_node_set_timeouts(rg_node *n, unsigned election_ms, unsigned heartbeat_ms, uint64_t seed);

/* Open the group group_id over partition p (opened with opt.raft = 1 and
 * this node's syncer). A raft log with no entry is bootstrapped: entry 1 is
 * the configuration "voters" (voter ids, this node need not be one), made
 * durable before this returns, as a new group's first entry is the same on
 * every replica. Otherwise voters is ignored and the group starts from the
 * disk: term and vote from raft.votes, entries from the log. No voters
 * (n_voters 0) on an empty log: the node joins a running group, with no
 * configuration of its own (no entry 1, no elections) until the leader,
 * having added it (rg_set_role), sends it the log from entry 1 or a
 * snapshot (test_repl.c, test_join_without_bootstrap). Returns 0,
 * -CN_EEXIST (group id open), -CN_EINVAL (not a raft log), -CN_EIO,
 * -CN_ENOMEM. */
int rg_group_open(rg_node *n, uint64_t group_id, log_partition *p, const uint64_t *voters,
                  size_t n_voters, int64_t now, rg_group **out);
/* rg_group_open for the node that creates a group while the cluster runs
 * (an AMQP queue's log): every voter bootstraps the same entry 1, and this
 * one stands for election after about one heartbeat timeout instead of an
 * election timeout (pre-vote as ever), until the group has a leader; then
 * its election timeout is the node's again. The others, opening the group
 * later, find a candidate instead of splitting votes. */
int rg_group_open_first(rg_node *n, uint64_t group_id, log_partition *p, const uint64_t *voters,
                        size_t n_voters, int64_t now, rg_group **out);
/* Stop the group (libraft state freed; nothing written). The partition
 * stays open: the caller closes it afterwards. NULL is a no-op. */
void rg_group_close(rg_group *g);
rg_group *rg_group_find(const rg_node *n, uint64_t group_id);
/* The syncer for raft.votes, when it exists only after rg_node_open (the
 * broker makes it). Set before any group opens. */
void rg_node_set_syncer(rg_node *n, log_syncer *syncer);
/* Per-group callbacks instead of the node's changed/durable (either may be
 * NULL: then the node's runs). arg is given back as their first argument. */
void rg_group_set_cb(rg_group *g, void (*changed)(void *arg, rg_group *g),
                     void (*durable)(void *arg, rg_group *g, int64_t durable_offset, int status),
                     void *arg);

/* Leader only: append one record batch (validated by the caller, as for
 * log_append) as a command entry of the current term. The batch's base
 * offset and leader epoch are written in place. On 0, *out_offset is its
 * base offset and *out_index its raft index: it is committed once
 * rg_commit_index() >= index. Returns 0, -CN_ENOTLEADER, -CN_EAGAIN (the
 * log waits for a sync of a side entry, e.g. the barrier of a new term:
 * retry after the next durable callback), or log_append's errors. */
int rg_submit(rg_group *g, uint8_t *batch, size_t len, int64_t now, int64_t *out_offset,
              int64_t *out_index);

/* A message from node `from` for group group_id: decoded and stepped.
 * Returns 0, -CN_ENOENT (no such group here), -CN_EPROTO (bad bytes; the
 * caller should drop the connection). */
int rg_receive(rg_node *n, uint64_t from, uint64_t group_id, const uint8_t *msg, size_t len,
               int64_t now);

/* Step every group whose timeout (election, heartbeat) is due. Returns the
 * next deadline over all groups (INT64_MAX: none). */
int64_t rg_node_tick(rg_node *n, int64_t now);
/* The transport's word on node peer: its connection closed (down) or is
 * back (up). Every group that follows peer as leader stands for election
 * without waiting for the election timeout if the connection is still down
 * and nothing was heard from the leader after 3 heartbeat intervals (plus a
 * quarter election timeout per surviving voter of lower id); up cancels
 * that. Liveness only: a wrong "down" costs an election, never safety
 * (rg_group.c, "Fast election"). */
void rg_node_peer_down(rg_node *n, uint64_t peer, int64_t now);
void rg_node_peer_up(rg_node *n, uint64_t peer);
/* End of a loop turn: write changed vote slots and ask for their sync, ask
 * for one sync per partition that got entries, retry entries that waited
 * for a sync. */
void rg_node_flush(rg_node *n, int64_t now);

/* Leader only: move the log start of every replica to offset (Kafka's
 * DeleteRecords) through the log: an entry that each replica applies when
 * it sees it committed (rg_take_start). The caller checks offset against
 * its high watermark. On 0, *out_index is the entry's index. Returns 0,
 * -CN_ENOTLEADER, -CN_EAGAIN (the log waits for a sync: retry), -CN_EIO. */
int rg_submit_start(rg_group *g, int64_t offset, int64_t now, int64_t *out_index);
/* 1 with *offset = the highest log start a committed entry asked for, when
 * it rose since the last call (the caller moves its log start there:
 * log_raft_set_start); 0 otherwise. */
int rg_take_start(rg_group *g, int64_t *offset);

/* Retention on a replicated partition: when log_raft_trim_point finds
 * segments retention would delete whose entries are all committed and
 * durable here, take a snapshot there (log_raft_compact) and tell libraft;
 * the segments go once the snapshot is durable. Each replica does this on
 * its own. Returns 1 (a snapshot taken), 0 (nothing to do) or -CN_E*. */
int rg_compact(rg_group *g, int64_t now);

/* State --------------------------------------------------------------------- */
int rg_is_leader(const rg_group *g);
uint64_t rg_leader_id(const rg_group *g);   /* 0: unknown */
int64_t rg_term(const rg_group *g);
/* The highest commit index libraft reported since the group opened: it
 * never goes back while the group is open (libraft's own may; rg_group.c). */
int64_t rg_commit_index(const rg_group *g);
/* The log offset the commit index covers (the end of the last committed
 * batch): what consumers may read up to (the high watermark). */
int64_t rg_commit_offset(const rg_group *g);
/* 1 with *log_end = the lowest log end offset a truncation of this
 * replica's log left (a new leader's entries replaced uncommitted ones)
 * since the last call, 0 when none happened. Entries past it were never
 * committed: what waited for them can be told so. */
int rg_take_truncation(rg_group *g, int64_t *log_end);
/* 1 when this node leads and an entry of its own term is committed (the
 * barrier a new leader submits): every entry of earlier terms that will
 * ever commit is committed and in its log, so state rebuilt from the log
 * now is complete (what a coordinator on the partition waits for before it
 * serves). 0 otherwise, and while a leadership transfer runs. Cheap once
 * true for a term (cached). */
int rg_leader_ready(rg_group *g);
uint64_t rg_group_id(const rg_group *g);
log_partition *rg_partition(const rg_group *g);
int rg_voters(const rg_group *g);           /* voters in the configuration */
/* Stopped after a storage failure, a bad message from the leader or a
 * conflict with a committed entry: the group does nothing more. */
int rg_failed(const rg_group *g);

/* Liveness of the group's members, for a leader's fail-fast and Kafka's ISR.
 * A peer is "in contact" when a message of this group came from it within
 * the contact window (half the election timeout, at least two heartbeats)
 * before now; this node always is. rg_quorum_contact: 1 when this node
 * leads and a majority of the voters (itself included) are in contact; a
 * leader without it cannot commit soon, so acks=all producers are failed
 * at once (NOT_ENOUGH_REPLICAS) instead of parked. A new leader has just
 * heard a majority's votes, so it starts with contact. */
int rg_quorum_contact(const rg_group *g, int64_t now);
int rg_peer_contact(const rg_group *g, uint64_t id, int64_t now);
int64_t rg_last_contact(const rg_group *g, uint64_t id);   /* -1: never */
/* 1 when no other voter of the configuration was heard from within the
 * election timeout before now, and the group has been open that long (this
 * node is cut off, or alone). */
int rg_isolated(const rg_group *g, int64_t now);
int64_t rg_contact_window(const rg_group *g);
/* Leader only (0 elsewhere): 1 when voter id is in sync (Kafka's ISR):
 * this node, or a follower in contact whose match index reached the commit
 * index within the contact window. */
int rg_in_sync(const rg_group *g, uint64_t id, int64_t now);
/* Leader only: the raft index known replicated on voter id (this node: its
 * last index); -1 elsewhere or for an unknown id. */
int64_t rg_match_index(const rg_group *g, uint64_t id);
/* The voters' ids (at most cap written); returns how many there are. */
int rg_voter_ids(const rg_group *g, uint64_t *out, int cap);

/* Administration (rg_admin.c) ---------------------------------------------------
 * Leader only: -CN_ENOTLEADER elsewhere and while a transfer runs; -CN_EIO
 * once the group failed. A refusal changes nothing. */

/* Hand leadership to voter `to` (0: a caught-up voter libraft picks).
 * libraft sends it TimeoutNow once its log matches ours; meanwhile (until
 * it leads, or an election timeout passes) this leader refuses submits
 * (-CN_ENOTLEADER). Returns 0, -CN_EINVAL (not another voter, or none). */
int rg_transfer(rg_group *g, uint64_t to, int64_t now);
uint64_t rg_transferee(const rg_group *g);   /* 0: no transfer running */

/* Roles in the configuration libraft uses (the latest, committed or not). */
#define RG_ROLE_NONE 0      /* not in the configuration */
#define RG_ROLE_SPARE 1     /* no log, no vote */
#define RG_ROLE_STANDBY 2   /* replicates the log, no vote */
#define RG_ROLE_VOTER 3
int rg_role(const rg_group *g, uint64_t id);
/* Submit a configuration entry that adds node id with role, changes its
 * role, or removes it (RG_ROLE_NONE); the other servers keep theirs. One
 * change at a time: -CN_EAGAIN while an earlier one is uncommitted or the
 * log waits for a truncation sync. -CN_EINVAL: id is this node (transfer
 * first), already has role, or no voter would remain. On 0 *out_index is
 * the entry's index: the change is committed once rg_commit_index() >= it
 * (libraft uses the new configuration from now on). A node added to a
 * group opens it with rg_group_open over an empty log and the same initial
 * voters, so its entry 1 is everyone's. */
int rg_set_role(rg_group *g, uint64_t id, int role, int64_t now, int64_t *out_index);
/* Every server of the configuration libraft uses, any role (count
 * returned, at most cap written). */
int rg_server_ids(const rg_group *g, uint64_t *out, int cap);
/* 1 while a configuration change is appended but not committed. */
int rg_change_pending(const rg_group *g);
/* Catch up a standby or spare before promoting it: libraft replicates to
 * it in rounds; RG_CATCH_UP_FINISHED when a round took less than an
 * election timeout (then rg_set_role(.., RG_ROLE_VOTER)). A round ends
 * when the server's match index moves, so one already up to date finishes
 * with the next entry (submit one). */
#define RG_CATCH_UP_NONE 0
#define RG_CATCH_UP_RUNNING 1
#define RG_CATCH_UP_ABORTED 2
#define RG_CATCH_UP_FINISHED 3
int rg_catch_up(rg_group *g, uint64_t id, int64_t now);
int rg_catch_up_status(const rg_group *g, uint64_t id);

#endif
