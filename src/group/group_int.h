/* Private structures of the group coordinator, shared by group.c (the
 * state machine) and group_admin.c (describe, list, delete). Loop thread
 * only. */
#ifndef CAIRN_GROUP_INT_H
#define CAIRN_GROUP_INT_H
#include <stdint.h>

#include "group/group.h"
#include "net/loop.h"

#define GRP_HASH 256
#define GRP_META_VERSION 0
#define GRP_STATE__COUNT (GRP_DEAD + 1)

/* What moves a group from one state to another; the table in group.c says
 * where each may happen and what it leads to. */
typedef enum {
    GRP_EV_REBALANCE,               /* membership or metadata changed: prepare_rebalance */
    GRP_EV_JOIN_DONE,               /* join phase over, members left: complete_join */
    GRP_EV_ALL_GONE,                /* join phase over, nobody left: complete_join */
    GRP_EV_ASSIGNED,                /* the leader's SyncGroup: grp_sync */
    GRP_EV_DELETE,                  /* DeleteGroups of a group without members: grp_delete */
    GRP_EV__COUNT
} grp_event;

typedef struct grp_proto {
    char *name;
    uint8_t *meta;
    int32_t len;
} grp_proto;

typedef struct grp_member {
    struct grp_member *next;
    grp *g;
    char *id;
    char *instance_id;              /* NULL: dynamic */
    char *client_id;
    char *client_host;
    int32_t session_ms;
    int32_t rebalance_ms;
    grp_proto *protos;
    int n_protos;
    uint8_t *assign;
    int32_t assign_len;
    grp_join_cb join_cb;            /* parked JoinGroup */
    void *join_ctx;
    grp_sync_cb sync_cb;            /* parked SyncGroup */
    void *sync_ctx;
    loop_timer session;
} grp_member;

typedef struct grp_pending {
    struct grp_pending *next;
    grp *g;
    char *id;
    loop_timer expire;
} grp_pending;

struct grp {
    grp *hnext;
    grp_coord *c;
    char *id;
    grp_state state;
    int32_t generation;
    char *protocol_type;            /* NULL when none */
    char *protocol_name;            /* NULL when none */
    char *leader;                   /* member id, NULL when none */
    grp_member *members;
    int n_members;
    grp_pending *pending;
    loop_timer join_timer;
    int initial_phase;              /* join phase of a group that was empty */
    int64_t initial_deadline;       /* monotonic ms: the initial delay never runs past this */
};

struct grp_coord {
    broker *b;
    loop *l;
    goff_store *offsets;
    const cairn_config *cfg;
    grp *hash[GRP_HASH];
    loop_timer expiry;              /* offsets.retention.check.interval.ms */
    broker_listener listener;       /* replicated offsets: leadership moves */
    int listening;
    uint64_t seen_generation;       /* goff_generation the groups were built on */
};

/* The one place g->state changes (after its creation as Empty): the move
 * next_state[g->state][ev] of the table in group.c. An event the table does
 * not allow in g's state is a bug: logged, then CN_ASSERT fails. */
void grp__transition(grp *g, grp_event ev);
grp *grp__find(grp_coord *c, cn_str id);
const grp_proto *grp__member_proto(const grp_member *m, const char *name);
char *grp__strdup(cn_str s);     /* NUL-terminated copy; NULL for a null string */
int32_t grp__load_generation(grp_coord *c, cn_str id);
uint32_t grp__hash_of(const char *p, size_t n);
/* Unlink nothing; answer parked requests with err and free g. */
void grp__group_free(grp_coord *c, grp *g, int err);
#endif
