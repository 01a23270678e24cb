/* Inside the repl module: the node and group structures and the functions
 * its files share. Not for other modules. */
#ifndef CAIRN_REPL_INT_H
#define CAIRN_REPL_INT_H
#include <stdint.h>

#include <raft.h>

#include "repl/repl.h"
#include "util/wbuf.h"

/* Side entry types in raft.meta (log_raft_append_meta's type). */
#define RG_SIDE_BARRIER 2
#define RG_SIDE_CHANGE 3
#define RG_SIDE_START 4             /* payload: u64 BE new log start offset */

/* A log-start entry (rg_submit_start) travels as a RAFT_BARRIER whose 16
 * bytes are this magic and the offset, big-endian. Barriers of libraft's
 * and ours are empty or 8 bytes, never this. */
#define RG_START_MAGIC "CNSTART1"
#define RG_START_LEN 16

/* One message that waits for a votes sync (bytes owned). */
typedef struct rg_held {
    uint64_t to;
    uint8_t *bytes;
    size_t len;
} rg_held;

/* An entry received or submitted but not yet in the log: the log waits for
 * a sync (log_raft_busy). Bytes owned. */
typedef struct rg_pending {
    int64_t index;
    int64_t term;
    enum raft_entry_type type;
    uint8_t *bytes;
    size_t len;
} rg_pending;

/* Vote slots of one group in raft.votes (rg_votes.c). */
typedef struct rg_vslot {
    uint64_t group_id;
    uint64_t term, vote;
    uint32_t seq;                   /* of the newest slot written */
    int64_t pair;                   /* pair number in the file */
    int live;                       /* a group with this id is open */
} rg_vslot;

struct rg_group {
    rg_node *node;
    uint64_t id;
    log_partition *p;
    struct raft raft;
    int raft_started;               /* raft_init done: raft_close needed */
    int64_t opened_ms;              /* the time rg_group_open was given */
    rg_vslot *vs;                   /* its vote slots (index into node's table) */
    size_t vs_i;
    int64_t deadline;               /* next RAFT_TIMEOUT; INT64_MAX none */
    int hurry;                      /* rg_group_open_first: short election timeout
                                     * until the group has a leader */
    int64_t reported;               /* last index told as persisted */
    int64_t cut_to;                 /* lowest log end a truncation left since
                                     * rg_take_truncation; INT64_MAX: none */
    int need_sync;                  /* entries written this turn */
    int submitting;                 /* entries of this step are our own (log_append) */
    int64_t sub_offset;             /* base offset of the batch just submitted */
    uint64_t hold_gen;              /* messages wait for this votes generation */
    rg_held *held;
    size_t n_held, cap_held;
    rg_pending *pend;
    size_t n_pend, cap_pend;
    int want_barrier;               /* became leader: submit a barrier */
    int64_t ready_term;             /* rg_leader_ready: term whose entry was seen committed */
    void *rx_block;                 /* entries of the AppendEntries being stepped */
    int rx_block_taken;             /* ... handed back to persist: we free it */
    void (*changed)(void *arg, rg_group *g);             /* rg_group_set_cb */
    void (*durable)(void *arg, rg_group *g, int64_t off, int status);
    void *cb_arg;
    int64_t *changes;               /* indexes of configuration entries not yet
                                     * applied as committed (ascending) */
    size_t n_changes, cap_changes;
    int64_t *starts;                /* indexes of log-start entries not yet
                                     * committed (ascending) */
    size_t n_starts, cap_starts;
    int64_t start_to;               /* highest committed log start (-1 none) */
    int64_t start_taken;            /* ... handed out by rg_take_start */
    uint64_t last_leader;
    int64_t last_term, last_commit;
    int64_t last_written; /* min(commit, last written): a drain moves it alone */
    int64_t commit_max;             /* highest commit index libraft reported
                                     * (rg_commit_index: it never goes back) */
    int last_state;
    int failed;                     /* storage or protocol failure: stopped */
    int snap_done;                  /* a snapshot was installed: step
                                     * RAFT_PERSISTED_SNAPSHOT with snap_md */
    struct raft_snapshot_metadata snap_md;
    /* When each peer was last heard from (any message of this group; time
     * as given to rg_receive): rg_quorum_contact, rg_peer_contact. */
    uint64_t *contact_id;
    int64_t *contact_at;
    int64_t *caught_at;             /* leader: last answer with match >= commit */
    size_t n_contact, cap_contact;
    /* Fast election (rg_node_peer_down): at fast_at (INT64_MAX none), if
     * this follower still follows fast_leader and has heard nothing from
     * it since fast_since, it stands at once. */
    int64_t fast_at, fast_since;
    uint64_t fast_leader;
};

struct rg_node {
    uint64_t id;
    char *dir;
    log_syncer *syncer;
    int64_t now_ms;                 /* time of the latest call that gave one */
    uint64_t seed;                  /* libraft's randomness, per group from this */
    unsigned election_ms, heartbeat_ms;
    rg_node_cb cb;
    /* raft.votes (rg_votes.c) */
    int votes_fd;
    rg_vslot *slots;
    size_t n_slots, cap_slots;
    int64_t next_pair;
    uint64_t votes_gen;             /* bumped by every slot write */
    uint64_t votes_synced;          /* generation covered by the last completed sync */
    uint64_t votes_syncing;         /* generation the sync in flight covers */
    int votes_inflight;
    int dead;                       /* closed while a votes sync was in flight */
    /* groups */
    rg_group **groups;
    size_t n_groups, cap_groups;
    wbuf out;                       /* encode buffer for messages */
    struct raft_entry *rx_entries;  /* decode scratch */
    size_t rx_cap;
    uint8_t *rd_buf;                /* read scratch for entry bytes */
    size_t rd_cap;
    uint8_t start_buf[RG_START_LEN]; /* a log-start entry being encoded */
};

/* rg_group.c: the connection to node peer closed (rg_node_peer_down) or
 * came back (rg_node_peer_up). */
void rg__group_peer_down(rg_group *g, uint64_t peer, int64_t now);
void rg__group_peer_up(rg_group *g, uint64_t peer);

/* Wall-clock ms for the log (rg_node_cb.wall_ms, or the latest time given). */
int64_t rg__wall(const rg_node *n);

/* rg_votes.c */
int rg__votes_open(rg_node *n);                 /* load or create raft.votes */
void rg__votes_close(rg_node *n);
/* The slot of group_id (created zeroed when absent). */
size_t rg__votes_slot(rg_node *n, uint64_t group_id);
/* Write term/vote of slot i (pwrite, page cache). 0 or -CN_EIO. */
int rg__votes_set(rg_node *n, size_t i, uint64_t term, uint64_t vote);
/* Blocking fdatasync (group creation). 0 or -CN_EIO. */
int rg__votes_sync_now(rg_node *n);
/* Ask for a sync of what was written (flush). */
void rg__votes_sync_request(rg_node *n);

/* rg_group.c */
void rg__group_flush(rg_group *g, int64_t now);
void rg__group_release_held(rg_group *g);
void rg__group_timeout(rg_group *g, int64_t now);
int rg__group_receive(rg_group *g, uint64_t from, const uint8_t *msg, size_t len, int64_t now);
void rg__group_free(rg_group *g);
/* Step a request event (rg_admin.c): 0, or libraft's refusal code
 * (RAFT_NOTLEADER, RAFT_BADID, RAFT_CANTCHANGE...) when it changed nothing;
 * other failures stop the group as any step does. own: entries it appends
 * are this node's (RAFT_SUBMIT). */
int rg__group_request(rg_group *g, struct raft_event *ev, int own);
/* Step an event as the group's own steps do (rg_snap.c). */
void rg__group_step(rg_group *g, struct raft_event *ev);

/* rg_snap.c */
/* The log's current snapshot as libraft's metadata (configuration decoded:
 * the caller hands it to libraft or closes it). 0, -CN_ENOENT (the log
 * starts at index 1: no snapshot), -CN_ECORRUPT. */
int rg__snap_metadata(rg_group *g, struct raft_snapshot_metadata *md);
/* Fill an outgoing InstallSnapshot's configuration and data (raft_malloc'd:
 * the caller frees both after encoding). 0 or -CN_E* (drop the message). */
int rg__snap_fill(rg_group *g, struct raft_install_snapshot *a);
/* RAFT_UPDATE_SNAPSHOT on a follower: replace the log by the leader's
 * snapshot (log_raft_reset). Frees the chunk. 0 or -CN_E* (the caller
 * stops the group). The caller then steps RAFT_PERSISTED_SNAPSHOT. */
int rg__snap_install(rg_group *g, const struct raft_update *up);

#endif
