/* Inside the cluster module: the cluster object shared by the transport
 * (cluster.c) and the metadata group (cluster_meta.c). Not for other
 * modules. */
#ifndef CAIRN_CLUSTER_INT_H
#define CAIRN_CLUSTER_INT_H
#include <stdint.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "net/net.h"
#include "record/batch.h"

/* One Kafka listener of a node, as its record "E" said (cluster_members.c). */
#define CL_MAX_EPS 16                /* = CLW_MAX_ENDPOINTS */
typedef struct cl_ep {
    char name[32];
    char host[64];
    int port;
} cl_ep;

typedef struct cl_peer {
    int32_t id;
    char host[64];
    int port;
    char khost[64];                 /* its Kafka listener, from its HELLO */
    int kport;
    net_conn *conn;                 /* HELLO exchanged: frames may flow */
    net_conn *dialing;              /* our connection before its HELLO answer */
    net_resp *out;                  /* this turn's frames to it, sealed by the hook */
    net_resp *orphan;               /* out of a connection that closed: dropped by the
                                     * hook (a slot may not be finished inside net's
                                     * conn_close callback) */
    int64_t next_dial;              /* mono ms; we dial peers with a higher id */
    int backoff;
    int member;                     /* a member of the cluster (in ids) */
    int configured;                 /* named by cluster.peers: its address is that one
                                     * (registrations and HELLOs do not change it) */
    int joining;                    /* its HELLO said it joins: registered by the
                                     * controller on our request (cluster_members.c) */
    int64_t next_register;          /* loop ms of the next registration request */
    int leaving;                    /* a member leaving (record "L" applied) */
    int removed;                    /* removed (record "X" applied): not a member */
    cl_ep eps[CL_MAX_EPS];          /* its Kafka listeners (record "E"), n_eps of them */
    int n_eps;
} cl_peer;

struct cluster {
    const cairn_config *cfg;
    loop *l;
    int32_t self;
    char self_host[64];             /* this node's cluster address (its cluster.peers entry) */
    int self_port;
    int member_self;                /* this node is a member (not joining any more) */
    int leaving_self;               /* ... that is leaving (record "L") */
    int self_regs;                  /* records "N" of this node applied (its registrations) */
    int removed_self;               /* ... or was removed (record "X") */
    int64_t next_leave;             /* loop ms of the controller's next look at leaving nodes */
    cl_ep self_eps[CL_MAX_EPS];     /* this node's listeners as the metadata log has them */
    int n_self_eps;
    int eps_in_flight;              /* its record "E" is on the way */
    int64_t next_eps;               /* loop ms of the next comparison */
    int joined;                     /* this node joined a running cluster (was not among
                                     * the first members): it never bootstraps a group of
                                     * every node (cluster_members.c) */
    int32_t ids[CONFIG_MAX_PEERS];  /* the members, sorted (this node once a member) */
    int n_ids;
    cl_peer peers[CONFIG_MAX_PEERS];/* the others: members, seeds, joining nodes */
    int n_peers;
    net_server *srv;
    net_proto proto;
    size_t frame_at;                /* rg_send_begin's frame, for rg_send_end */
    rg_node *rg;
    loop_timer tick;
    int hooked;
    /* The metadata group (cluster_meta.c). */
    broker *b;                      /* set by cluster_meta_start */
    partition *meta;                /* __cluster_meta-0 */
    broker_listener meta_listener;  /* applies what commits */
    int64_t applied;                /* meta log offset applied up to */
    int64_t meta_end_at_start;      /* its log end when it opened (cluster_meta_caught_up) */
    struct cl_op *ops;              /* controller requests waiting for their commit */
    batch_scratch *scratch;
    struct cl_fwd *fwds;            /* requests forwarded (or to forward) to the controller */
    uint64_t next_fwd;
    /* Key-value stores above the cluster (cluster_kv.c). */
    struct cl_kv_store *kv_stores;
    struct cl_kv_wait *kv_waits;    /* this node's writes until applied here */
    /* Markers for partitions led elsewhere (cluster_call.c). */
    broker_marker_req *mreqs;       /* this node's, until answered */
    uint64_t next_mreq;
    struct cl_serve *serves;        /* others' (and its own) this node writes as leader */
    int64_t next_balance;           /* loop ms of the next leader balance check */
    int64_t next_lead_report;       /* loop ms of the next full LEADERS (cluster_lead.c) */
    int64_t next_move;              /* loop ms of the next look at moves (cluster_move.c) */
    /* Controlled shutdown (cluster_hand_off): done != NULL while it runs. */
    void (*handoff_done)(void *arg);
    void *handoff_arg;
    int64_t handoff_deadline;       /* loop ms */
};

/* Members (cluster_members.c): the registry of the cluster's nodes. The
 * first members come from cluster.peers; a node joins when the controller
 * appends its record "N" (cluster_wire.h), which every node applies; each
 * node keeps the members it knows in <log.dirs>/cluster.members (format
 * there), read at open. */
struct clw_node;
struct clw_hello;
/* The peer with this id, added (not a member, address as given) when
 * missing; NULL when the table is full. */
cl_peer *cluster__peer_add(cluster *c, int32_t id, const char *host, int port);
cl_peer *cluster__peer_by_id(cluster *c, int32_t id);
/* c->ids from the member flags (this node's and its peers'), sorted. */
void cluster__ids_rebuild(cluster *c);
/* Node id is in the group of a log every node keeps (internal, no
 * assignment; skip_meta: other than the metadata log), as this node's
 * replicas know their configurations (c->b set). */
int cluster__in_every_node_log(cluster *c, int32_t id, int skip_meta);
/* Read the registry file (missing: nothing to read). 0 or -CN_E*. */
int cluster__members_load(cluster *c);
/* n became a member (an applied "N", or a member list in a HELLO answer
 * to this joining node): ids, the broker's node set and the file follow.
 * Idempotent. */
void cluster__member_add(cluster *c, const struct clw_node *n);
/* Records "L" and "X" applied: node id leaves (no new replicas on it; the
 * controller moves its replicas off), or is removed (not a member from
 * now on; the logs of every node drop it). Idempotent. */
void cluster__member_leaving(cluster *c, int32_t id);
void cluster__member_removed(cluster *c, int32_t id);
/* Tell the broker the members and the leaving ones (c->b set). */
void cluster__members_publish(cluster *c);
/* 0 not a member, 1 a member, 2 a member leaving. */
int cluster__member_state(cluster *c, int32_t id);
/* A partition of a topic lists node id (its assignment or a move's
 * target). Walks every topic: for leaving nodes only. */
int cluster__holds_replicas(cluster *c, int32_t id);
/* Member id leaves and no partition lists it any more: the logs of every
 * node drop it (cluster_move.c), then the controller records "X". */
int cluster__member_done(cluster *c, int32_t id);
/* Any node: have the controller start node id's removal (FORWARD op 8):
 * checked there (a member; the others can hold every topic's replicas),
 * record "L". Returns as cluster_meta_create_topic. */
int cluster__meta_leave(cluster *c, int32_t id, char *msg, size_t msg_len, cluster_op_cb cb,
                        void *arg);
/* The controller: append record "X" for a leaving node no replica is left
 * on. 0 or -CN_E*. */
int cluster__meta_removed(cluster *c, int32_t id);
/* Fill h's member list (this node and every member peer). */
void cluster__members_fill(cluster *c, struct clw_hello *h);
/* Every tick: ask the controller to register the joining peers connected
 * to this node; and publish this node's Kafka listeners (record "E") when
 * the metadata log does not hold them as configured. */
void cluster__members_tick(cluster *c, int64_t now);
/* Record "E" applied. */
struct clw_topic_op;
void cluster__endpoints_apply(cluster *c, const struct clw_topic_op *t);
/* Any node: have the controller register node n (FORWARD op 7 elsewhere);
 * cb as cluster_op_cb. 0 (cb later) or -CN_E* (cb never runs). */
int cluster__meta_register(cluster *c, const struct clw_node *n, cluster_op_cb cb, void *arg);

/* Frames of the metadata group's forwarding (format in cluster_meta.c). */
#define CL_FORWARD 3
#define CL_REPLY 4
/* Queue one frame of type with body to node `to` in this turn's write.
 * 0, or -CN_ENOENT (not connected). */
int cluster__send_frame(cluster *c, int32_t to, int type, const uint8_t *body, size_t len);
/* A FORWARD or REPLY frame arrived from node `from`. 0 or -CN_EPROTO. */
int cluster__on_meta_frame(cluster *c, int32_t from, int type, const uint8_t *body, size_t len);
/* Every tick: forward what waited for a controller, fail what waited too long. */
void cluster__meta_tick(cluster *c);
/* The controller: append one metadata record (key one letter, value) and
 * park a request on it: cb(arg, op status) once applied here (the record's
 * apply sets the status; an op found by id, or by offset). 0 or -CN_E*. */
int cluster__meta_submit(cluster *c, const char *key, const wbuf *value, cn_uuid id,
                         const char *name, cluster_op_cb cb, void *arg);
/* Queue a FORWARD body (its first 8 bytes, the request id, are set here)
 * for the controller; takes body's buffer. 0 (cb runs later). */
int cluster__meta_forward(cluster *c, wbuf *body, cluster_op_cb cb, void *arg);

/* The controller: append t's record (its key by clw_record_key, its id
 * t->id; FORWARD ops 10 and 11) as run_body's ops do: 0 and cb later, or
 * -CN_ENOTCONTROLLER / a storage error with msg. */
int cluster__meta_submit_op(cluster *c, const struct clw_topic_op *t, char *msg, size_t msg_len,
                            cluster_op_cb cb, void *arg);
/* Key-value stores above the cluster (cluster_kv.c): a committed record
 * "K" applied on this node; every tick; at stop (waiting writes fail). */
struct clw_topic_op;
void cluster__kv_apply(cluster *c, const struct clw_topic_op *t);
void cluster__kv_tick(cluster *c, int64_t now);
void cluster__kv_stop(cluster *c);
void cluster__kv_free(cluster *c); /* the registrations, at cluster_close */

/* Moves (cluster_move.c): every tick, the leader of each partition with a
 * running move changes its group's configuration one server at a time
 * towards the target, and records the end (cluster__meta_reassigned, a
 * record "F" through the controller) once the voters are the target. */
void cluster__move_tick(cluster *c, int64_t now);
int cluster__meta_reassigned(cluster *c, topic *t, int32_t part, const int32_t *ids, int n,
                             cluster_op_cb cb, void *arg);

/* Leadership reports (cluster_lead.c): every tick, send this node's views
 * when one changed or a full report is due; take a peer's. */
#define CL_LEADERS 7
void cluster__lead_tick(cluster *c, int64_t now);
int cluster__on_lead_frame(cluster *c, int32_t from, const uint8_t *body, size_t len);

/* Markers written by a partition's leader for another node (format in
 * cluster_call.c). */
#define CL_MARKER 5
#define CL_MARKER_DONE 6
/* Register / unregister the broker's remote writer (c->b set). Stop drops
 * what waits and cancels this node's leader-side waits. */
void cluster__call_start(cluster *c);
void cluster__call_stop(cluster *c);
/* A MARKER or MARKER_DONE frame arrived from node `from`. 0 or -CN_EPROTO. */
int cluster__on_call_frame(cluster *c, int32_t from, int type, const uint8_t *body, size_t len);
/* Every tick: send what waits for a leader, fail what waited too long. */
void cluster__call_tick(cluster *c);


#endif
