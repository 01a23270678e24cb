/* The cluster transport: this node's identity, its peers, and the
 * connections that carry Raft messages between them (issue 12,
 * docs/cluster-plan.md section 6). It owns the node's replication groups
 * (rg_node, src/repl): messages those groups send go out here, messages
 * that arrive go in there, their timers tick here, and their per-turn flush
 * (vote and entry syncs) runs from a loop hook.
 *
 * Peers come from cluster.peers (ID@HOST:PORT of each node's cluster
 * listener, this node included). One TCP connection per node pair, dialled
 * by the lower id (redialled with backoff when it drops); the higher id
 * accepts. Connections carry frames:
 *   0  u32  length of what follows
 *   4  u8   type
 *   5  ...  body
 * all big-endian. Types:
 *   1 HELLO   u16 version (1), i32 sender id, i32 receiver id, i16 length +
 *             the sender's Kafka host, i32 its Kafka port. The dialler sends
 *             it first; the acceptor checks that it knows the sender, that
 *             the sender has the lower id and that the receiver is itself,
 *             and answers with its own HELLO. Nothing else flows before.
 *   2 RAFT    u64 group id, then one Raft message (src/repl/rg_msg.h).
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

typedef struct cluster cluster;

/* What the front ends may know of a node. */
typedef struct cluster_member {
    int32_t id;
    const char *kafka_host;         /* "" until its HELLO arrived (peers) */
    int kafka_port;                 /* 0 until then */
    int connected;                  /* 1 for this node; peers: a live connection */
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

rg_node *cluster_rg(cluster *c);
/* Every node id, sorted ascending (this node included); *n set. */
const int32_t *cluster_node_ids(const cluster *c, int *n);
/* Member i (0 <= i < node count, in id order). */
cluster_member cluster_member_at(const cluster *c, int i);
int32_t cluster_self(const cluster *c);
/* The port the cluster listener is bound to. */
int cluster_port(const cluster *c);

#endif
