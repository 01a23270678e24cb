/* The cluster transport: this node's identity, its peers, and the
 * connections that carry Raft messages between them (issue 12,
 * docs/cluster-plan.md section 6). It owns the node's replication groups
 * (rg_node, src/repl): messages those groups send go out here, messages
 * that arrive go in there, their timers tick here, and their per-turn flush
 * (vote and entry syncs) runs from a loop hook.
 *
 * Peers come from cluster.peers (ID@HOST:PORT of each node's cluster
 * listener, this node included) and from the members the metadata log
 * registered since (cluster_members.c). One TCP connection per node pair,
 * dialled by the lower id (redialled with backoff when it drops); the
 * higher id accepts. A node that joins (cluster.join, not a member yet)
 * dials the members it knows whatever their ids. Connections carry frames:
 *   0  u32  length of what follows
 *   4  u8   type
 *   5  ...  body
 * all big-endian. Types:
 *   1 HELLO   u16 version (2; 1 is accepted), i32 sender id, i32 receiver
 *             id, the sender's Kafka address, then (version 2) its cluster
 *             address, a flag "joining" and a member list (body in
 *             cluster_wire.h). The dialler sends it first; the acceptor
 *             checks that the receiver is itself and that the sender is a
 *             member with a lower id, or a joining node (then this node
 *             must be a member; the answer carries its members), and
 *             answers with its own HELLO. Nothing else flows before.
 *   2 RAFT    u64 group id, then one Raft message (src/repl/rg_msg.h).
 *   3 FORWARD, 4 REPLY: requests for the controller (cluster_meta.c).
 *   5 MARKER, 6 MARKER_DONE: transaction markers a partition's leader
 *             writes for another node's coordinator (cluster_call.c).
 * A frame that breaks these rules closes the connection with a log line.
 * Messages to a peer without a connection are dropped (Raft resends). All
 * frames to one peer made in one loop turn leave in one write.
 *
 * Loop thread only. */
#ifndef CAIRN_CLUSTER_H
#define CAIRN_CLUSTER_H
#include <stdint.h>

#include "config/config.h"
#include "net/loop.h"
#include "repl/repl.h"
#include "util/bytes.h"

typedef struct cluster cluster;

/* What the front ends may know of a node. */
typedef struct cluster_member {
    int32_t id;
    const char *kafka_host;         /* "" until its HELLO arrived (peers) */
    int kafka_port;                 /* 0 until then */
    int connected;                  /* 1 for this node; peers: a live connection */
    int leaving;                    /* removal under way (cluster_remove_node) */
} cluster_member;

/* Open the cluster of cfg (cluster.peers must name this node's node.id;
 * cluster.listeners is where peers connect). Creates log.dirs if missing
 * (raft.votes lives there). Returns 0 with *out NULL when cluster.peers is
 * empty (a single node), 0 with *out set, or -CN_EINVAL (bad or
 * inconsistent settings, logged), -CN_EIO. cluster.peers "off": 0, *out NULL. */
int cluster_open(const cairn_config *cfg, loop *l, cluster **out);
/* Close connections and the listener, then the replication node (its
 * groups must be closed already: the broker closes its partitions first).
 * NULL is a no-op. */
void cluster_close(cluster *c);
/* security.inter.broker.protocol=SSL: (re)build the cluster transport's
 * TLS contexts from the ssl.* files, mutual authentication both ways
 * (connections made from now on use them; SIGHUP). 0, also without TLS,
 * or -CN_EINVAL (logged; the old contexts stay). */
int cluster_reload_tls(cluster *c);
/* Controlled shutdown (controlled.shutdown.enable): hand the partitions
 * this node leads to other replicas (broker_hand_off, again at every tick),
 * then call done(arg) once: when it leads none, or after
 * controlled.shutdown.timeout.ms. Before cluster_meta_start or with the
 * setting off, done runs at once (inside this call). */
void cluster_hand_off(cluster *c, void (*done)(void *arg), void *arg);

rg_node *cluster_rg(cluster *c);

/* The metadata group (cluster_meta.c; record format there) --------------- */
struct broker;
struct topic;
struct broker_kv;
/* Completion of a topic request: 0 (committed; applied on the controller,
 * soon on every node), 1 (validate_only: valid), or -CN_E* with msg (may be
 * NULL): -CN_EEXIST (the name was taken first), -CN_ENOTCONTROLLER (no
 * controller answered in time, or it lost leadership before the commit:
 * the request may still take effect), a validation error, -CN_EIO. */
typedef void (*cluster_op_cb)(void *arg, int status, const char *msg);
/* Key-value stores above the cluster (cluster_kv.c; the users and the ACLs
 * of src/auth): their records travel in the metadata log, so every node
 * applies the same changes in the same order and replays them at start.
 * kv: n records; a value with ptr NULL and len -1 is a tombstone. */
typedef void (*cluster_kv_apply)(void *arg, const struct broker_kv *kv, int n);
/* Before cluster_meta_start (whose replay applies what the log holds):
 * the records of store name (1..15 bytes, copied) go to apply(arg, ...)
 * on this node as they commit, in log order. unregister: no more. */
void cluster_kv_register(cluster *c, const char *name, cluster_kv_apply apply, void *arg);
void cluster_kv_unregister(cluster *c, const char *name);
/* Any node: append kv (1..1000 records, keys 1..32767 bytes, values up to
 * 32767) to store through the controller. cb(arg, 0, NULL) once the record
 * is committed and applied on this node (so a read here sees it); or
 * -CN_ENOTCONTROLLER (no controller in time, or it lost leadership before
 * the commit: it may still apply), -CN_ETIMEDOUT (not applied here within
 * 30 s), a storage error of the controller. Returns 0 (cb later, never
 * inside this call), or -CN_EINVAL / a storage error (cb never runs). */
int cluster_kv_write(cluster *c, const char *store, const struct broker_kv *kv, int n,
                     cluster_op_cb cb, void *arg);
/* After broker_open_repl: open __cluster_meta-0 (replicated to every node)
 * and apply what it holds (and, from then on, what commits). 0 or -CN_E*. */
int cluster_meta_start(cluster *c, struct broker *b);
/* Before broker_close: stop applying; waiting requests get
 * -CN_ENOTCONTROLLER. NULL or not started: no-op. */
void cluster_meta_stop(cluster *c);
/* 1 once this node applied the metadata log up to where its copy ended
 * when it started (or to its end, when the leader cut it shorter): what
 * was committed before the restart is applied again. 0 before
 * cluster_meta_start. */
int cluster_meta_caught_up(const cluster *c);
/* The controller: the metadata group's leader id, -1 while unknown. */
int32_t cluster_controller(const cluster *c);
/* For Metadata: cluster_controller, or, on an isolated node that led the
 * metadata group's current term and knows no leader, another voter
 * (broker_partition_leader_hint): naming itself kept admin clients on a
 * node that could do nothing until its partition healed. */
int32_t cluster_controller_hint(const cluster *c);
/* Any node: on the controller, validate as broker_topic_create_rf would
 * (and against creates in flight) and append the create record; elsewhere,
 * forward the request to the controller (cluster_meta.c). Returns 0 (cb
 * runs later, never inside this call), 1 (validate_only, validated here:
 * cb never runs), or a validation error with msg (cb never runs). */
int cluster_meta_create_topic(cluster *c, cn_str name, int32_t n_parts, int32_t rf,
                              const struct broker_kv *configs, int n_configs,
                              const int32_t *assign, int validate_only, char *msg,
                              size_t msg_len, cluster_op_cb cb, void *arg);
/* Any node: delete t through the controller; cb as above. 0 (cb later) or
 * -CN_E* (cb never runs). */
int cluster_meta_delete_topic(cluster *c, struct topic *t, cluster_op_cb cb, void *arg);
/* Any node: grow t to count partitions through the controller (validated
 * there as broker_topic_add_partitions would), applied on every node;
 * assign: the new partitions' replicas as broker_topic_add_partitions
 * takes them, or NULL (placed).
 * Returns as cluster_meta_create_topic. */
int cluster_meta_add_partitions(cluster *c, struct topic *t, int32_t count,
                                const int32_t *assign, int validate_only, char *msg,
                                size_t msg_len, cluster_op_cb cb, void *arg);
/* Any node: set t's configs (value null: back to the default) through the
 * controller (each validated there as broker_topic_set_config would),
 * applied on every node. Returns as cluster_meta_create_topic. */
int cluster_meta_set_configs(cluster *c, struct topic *t, const struct broker_kv *kv, int n,
                             int validate_only, char *msg, size_t msg_len, cluster_op_cb cb,
                             void *arg);
/* Any node: move partition part of t to the replicas ids (n of them, the
 * preferred leader first), or cancel its running move (ids NULL: back to
 * the current replicas), through the controller (validated there:
 * broker_check_reassign; a cancel without a move is -CN_ENOMOVE). The
 * record is applied on every node; cb runs when it is, not when the move
 * is done (broker_reassign_target is NULL again then). Returns as
 * cluster_meta_create_topic. */
int cluster_meta_reassign(cluster *c, struct topic *t, int32_t part, const int32_t *ids, int n,
                          char *msg, size_t msg_len, cluster_op_cb cb, void *arg);
/* Any node: remove member id from the cluster, through the controller
 * (checked there: a member, and the others can hold every topic's
 * replicas). Its replicas then move to the other members and it is
 * removed once none is left (ARCHITECTURE.md "Leaving"); cb runs when
 * the removal has started (the record "L" applied on the controller).
 * Returns as cluster_meta_create_topic (1: it was leaving already). */
int cluster_remove_node(cluster *c, int32_t id, char *msg, size_t msg_len, cluster_op_cb cb,
                        void *arg);
/* Every member id, sorted ascending (this node included once a member); *n set. */
const int32_t *cluster_node_ids(const cluster *c, int *n);
/* Member i (0 <= i < node count, in id order). */
cluster_member cluster_member_at(const cluster *c, int i);
/* Node id's Kafka listener named listener (its record "E", published by
 * each node from its `listeners`): 1 with *host (valid until the next
 * change) and *port, 0 when unknown (then its HELLO address,
 * cluster_member's kafka_host/port, is the fallback). */
int cluster_member_endpoint(const cluster *c, int32_t id, const char *listener,
                            const char **host, int *port);
/* The member whose node id is id: 1 with *out set, 0 when no member has it. */
int cluster_member_by_id(const cluster *c, int32_t id, cluster_member *out);
int32_t cluster_self(const cluster *c);
/* This node joined a running cluster (cluster.join, or its members file
 * says so): it never bootstraps the logs every node keeps. */
int cluster_joined(const cluster *c);
/* The port the cluster listener is bound to. */
int cluster_port(const cluster *c);

#endif
