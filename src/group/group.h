/* Consumer-group coordinator: the classic group membership protocol
 * (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state machine, with no
 * knowledge of the wire format. The Kafka handlers (src/kafka/kh_group.c)
 * decode requests into the structs below and encode what comes back.
 * Errors are the core's (0 or -CN_E*, util/common.h); the handlers map them
 * with kerr_from_cn().
 *
 * States: EMPTY -> PREPARING (a join phase: waiting for members to
 * (re)join) -> COMPLETING (generation bumped, waiting for the leader's
 * SyncGroup) -> STABLE; back to PREPARING on any membership change, to
 * EMPTY when a join phase ends with nobody; DEAD once deleted (and freed at
 * once, so no call ever sees it). The transition table, with the function
 * behind each move, heads group.c. Protocol metadata and assignments are
 * opaque bytes.
 *
 * Join and sync may park: they answer through a callback, either before the
 * call returns or later (join phase completion, leader's sync, timers). A
 * callback's pointers are valid only during the callback. Every parked
 * request is answered exactly once (at the latest when the coordinator is
 * freed, with -CN_EUNAVAIL).
 *
 * Timers (loop): each member's session timeout (reset by heartbeat, join and
 * sync; suspended while its join is parked), each group's join-phase
 * deadline (the initial rebalance delay for a new group, else the largest
 * rebalance timeout), and the expiry of member ids handed out with
 * -CN_EMEMBERREQ.
 *
 * The generation of each group is persisted through the offsets store as a
 * group-metadata record whenever a generation completes, so generations keep
 * growing across restarts; members themselves are not restored (after a
 * restart clients get -CN_ENOMEMBER and rejoin).
 *
 * Loop thread only. */
#ifndef CAIRN_GROUP_H
#define CAIRN_GROUP_H
#include <stdint.h>

#include "broker/broker.h"
#include "group/offsets.h"
#include "util/bytes.h"

typedef struct grp_coord grp_coord;
typedef struct grp grp;

typedef enum {
    GRP_EMPTY = 0,
    GRP_PREPARING = 1,
    GRP_COMPLETING = 2,
    GRP_STABLE = 3,
    GRP_DEAD = 4,
} grp_state;

const char *grp_state_name(grp_state s);   /* Kafka's names: "Empty", "PreparingRebalance", ... */

/* Create on broker b; offsets may be NULL (tests). */
grp_coord *grp_coord_new(broker *b, goff_store *offsets);
/* Whether this node coordinates groups now. With a replicated offsets store
 * (a cluster) only the leader of __consumer_offsets-0 does, once it has
 * loaded the store for its term (goff_serving); when that changes every
 * group is dropped (parked joins and syncs answer -CN_ENOTCOORD; members
 * rejoin at the coordinator). The coordinator watches appends and checks
 * by itself; callers ask before answering from the store (OffsetFetch,
 * OffsetDelete, admin). Returns 0, -CN_ENOTCOORD, -CN_ELOADING or
 * -CN_EUNAVAIL. grp_join, grp_sync, grp_heartbeat, grp_leave,
 * grp_check_commit, grp_describe, grp_list and grp_delete check it first
 * and answer its error. */
int grp_coord_serving(grp_coord *c);
/* The coordinator's node id (FindCoordinator): this node without a
 * replicated store, else the leader of __consumer_offsets-0, -1 while
 * unknown. */
int32_t grp_coord_node(grp_coord *c);
void grp_coord_free(grp_coord *c);

/* Join ----------------------------------------------------------------- */
typedef struct grp_protocol {
    cn_str name;
    cn_bytes metadata;
} grp_protocol;

typedef struct grp_join_req {
    cn_str group_id;
    cn_str member_id;               /* "" for a new member */
    cn_str instance_id;             /* len -1: dynamic member */
    cn_str client_id;
    cn_str client_host;
    cn_str protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    const grp_protocol *protocols;
    int n_protocols;
    int require_known_member_id;    /* JoinGroup v4+ without instance id (KIP-394) */
} grp_join_req;

typedef struct grp_join_member {
    const char *member_id;
    const char *instance_id;        /* NULL: dynamic */
    cn_bytes metadata;              /* for the selected protocol */
} grp_join_member;

typedef struct grp_join_result {
    int error;                      /* 0 or -CN_E*, see grp_join */
    int32_t generation;             /* -1 on error */
    const char *protocol_type;      /* NULL on error */
    const char *protocol_name;      /* NULL on error */
    const char *leader;             /* "" on error */
    const char *member_id;          /* the member's id (also with -CN_EMEMBERREQ) */
    int skip_assignment;            /* static leader replaced in a stable group */
    const grp_join_member *members; /* leader only, else n_members 0 */
    int n_members;
} grp_join_result;

/* Join (or rejoin) a member; cb gets the answer now or when the join phase
 * completes. r->error: 0, -CN_EBADGROUP (empty group id), -CN_ESESSIONTMO
 * (session timeout out of group.min/max.session.timeout.ms),
 * -CN_EGROUPPROTO (no protocol, or none in common with the members),
 * -CN_ENOMEMBER, -CN_EINSTFENCED (instance id held by another member id),
 * -CN_EGROUPFULL (group.max.size), -CN_EMEMBERREQ (rejoin with
 * r->member_id), -CN_EREBALANCE (a parked join replaced by a newer one from
 * the same member), -CN_EUNAVAIL (coordinator freed). req: borrowed. */
typedef void (*grp_join_cb)(void *ctx, const grp_join_result *r);
void grp_join(grp_coord *c, const grp_join_req *req, grp_join_cb cb, void *ctx);

/* Sync ----------------------------------------------------------------- */
typedef struct grp_assignment {
    cn_str member_id;
    cn_bytes assignment;
} grp_assignment;

typedef struct grp_sync_req {
    cn_str group_id;
    cn_str member_id;
    cn_str instance_id;
    cn_str protocol_type;           /* len -1: not sent (SyncGroup before v5) */
    cn_str protocol_name;
    int32_t generation;
    const grp_assignment *assignments;
    int n_assignments;
} grp_sync_req;

typedef struct grp_sync_result {
    int error;                      /* 0 or -CN_E*, see grp_sync */
    const char *protocol_type;
    const char *protocol_name;
    cn_bytes assignment;
} grp_sync_result;

/* The leader hands in the assignments; followers wait for them. cb gets the
 * member's assignment now or when the leader's sync arrives. r->error: 0,
 * -CN_ENOMEMBER, -CN_EINSTFENCED, -CN_EGENERATION, -CN_EGROUPPROTO
 * (protocol type or name not the group's), -CN_EREBALANCE (join phase
 * running, or it started while the sync was parked, or a newer sync
 * replaced it), -CN_EUNAVAIL (coordinator freed). req: borrowed. */
typedef void (*grp_sync_cb)(void *ctx, const grp_sync_result *r);
void grp_sync(grp_coord *c, const grp_sync_req *req, grp_sync_cb cb, void *ctx);

/* Heartbeat, leave, commit checks --------------------------------------------- */
/* Reset the member's session timer. Returns 0, -CN_ENOMEMBER,
 * -CN_EINSTFENCED, -CN_EGENERATION, or -CN_EREBALANCE (join phase running:
 * rejoin; the session timer is reset all the same). */
int grp_heartbeat(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id,
                  int32_t generation);
/* Remove one member, by member id, or by instance id when member_id is ""
 * (a member id still pending after -CN_EMEMBERREQ is forgotten). Returns 0,
 * -CN_ENOMEMBER or -CN_EINSTFENCED. */
int grp_leave(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id);
/* May this member commit offsets for the group at this generation? A simple
 * commit (generation -1, member "") is allowed when the group has no members.
 * Creates no state. Returns 0, -CN_EBADGROUP (empty group id),
 * -CN_ENOMEMBER, -CN_EINSTFENCED, -CN_EGENERATION, or -CN_EREBALANCE (the
 * member's generation awaits its assignment). */
int grp_check_commit(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id,
                     int32_t generation);

/* Admin -------------------------------------------------------------------- */
typedef struct grp_member_info {
    const char *member_id;
    const char *instance_id;        /* NULL: dynamic */
    const char *client_id;
    const char *client_host;
    cn_bytes metadata;              /* for the selected protocol (empty when none) */
    cn_bytes assignment;
} grp_member_info;

typedef struct grp_info {
    const char *group_id;
    grp_state state;
    const char *protocol_type;      /* "" when none */
    const char *protocol_name;      /* "" when none */
    int32_t generation;
    const grp_member_info *members;
    int n_members;
} grp_info;

/* Describe one group: returns 0 and calls cb, or -CN_ENOGROUP if the
 * coordinator has never heard of it (no members, no committed offsets and no
 * stored generation). */
int grp_describe(grp_coord *c, cn_str group_id, void (*cb)(void *arg, const grp_info *g),
                 void *arg);
/* Every known group (live ones and ones that only have committed offsets).
 * 0, or grp_coord_serving's error (nothing listed). */
int grp_list(grp_coord *c, void (*cb)(void *arg, const grp_info *g), void *arg);
/* Delete an empty group and its offsets. Returns 0, -CN_ENOTEMPTY,
 * -CN_ENOGROUP, or -CN_EIO when the store could not record the deletion
 * (the group is gone from memory all the same). *wait_target is set for a
 * durable wait when something was written (-1 otherwise). */
int grp_delete(grp_coord *c, cn_str group_id, int64_t *wait_target);
/* 1 if the group has live members, its protocol type is protocol_type, and
 * match(arg, metadata) returns 1 for some member's metadata (for the selected
 * protocol, else the member's first). The metadata stays opaque here: the
 * caller knows its encoding (OffsetDelete's "subscribed to topic" check). */
int grp_any_member_meta(grp_coord *c, cn_str group_id, const char *protocol_type,
                        int (*match)(void *arg, cn_bytes metadata), void *arg);
/* 1 if the coordinator knows the group (live, or with committed offsets or
 * a stored generation). */
int grp_known(grp_coord *c, cn_str group_id);
/* 1 if the group has no members (or does not exist). */
int grp_is_empty(grp_coord *c, cn_str group_id);
#endif
