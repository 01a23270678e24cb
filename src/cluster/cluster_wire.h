/* The bodies of cluster frames and of metadata-log records, decoded and
 * encoded in one place (what a peer sends is parsed here and nowhere else;
 * fuzz/fuzz_cluster_wire.c round-trips every form).
 *
 * Integers big-endian, str = i16 length + bytes (-1: null), as util/bin.h
 * writes them. A frame is i32 length, u8 type, then the body:
 *   1 HELLO        i16 version (1 or 2), i32 from node, i32 to node, str Kafka
 *                  host (< 64 bytes), i32 Kafka port; version 2 goes on: str
 *                  cluster host (< 64 bytes), i32 cluster port, u8 flags (1:
 *                  the sender is not a member yet, it joins), str cluster id
 *                  (< 32 bytes; "" unknown), i32 n
 *                  (0..CLW_MAX_MEMBERS), n x node (below): the sender's members
 *                  (sent in the answer to a joining node, else 0)
 *   node           i32 id (>= 0), str cluster host (1..63 bytes), i32 cluster
 *                  port (1..65535), str Kafka host (< 64 bytes), i32 Kafka port
 *                  (0..65535)
 *   2 RAFT         u64 group id, then a Raft message (src/repl/rg_msg.c)
 *   3 FORWARD      u64 request id, u8 op, u8 validate_only, then
 *                  op 1 create: str name, i32 partitions, i32 replication
 *                               factor, i32 n (0..1000), n x (str key, str value),
 *                               then optionally an assignment: i32 partitions,
 *                               i32 replication factor (both as above, rf
 *                               1..64), partitions x rf i32 node ids (>= 0),
 *                               partition 0's first
 *                  op 2 delete: str name, 16 bytes topic id
 *                  op 3 partitions: str name, 16 bytes topic id, i32 new count,
 *                               then optionally the new partitions' assignment:
 *                               i32 n (>= 1), i32 rf (1..64), n x rf i32 node
 *                               ids (>= 0), the first new partition's first
 *                  op 4 configs: str name, 16 bytes topic id, i32 n (0..1000),
 *                               n x (str key, str value: null = back to default)
 *                  op 5 reassign: str name, 16 bytes topic id, i32 partition,
 *                               i32 n (0..CLW_MAX_RF; 0 cancels), n x i32
 *                               node ids (>= 0), the preferred leader first
 *                  op 6 reassigned: as op 5 with n >= 1: the replicas the
 *                               partition's group now has (sent by its leader)
 *                  op 7 register: a node (above) that asks to join (sent by
 *                               a member it dialled)
 *                  op 8 leave: i32 node id (>= 0): move every replica off
 *                               that member, then remove it
 *                  op 10 key-values: str store (a name registered with
 *                               cluster_kv_register, "users", "acls"), 16
 *                               bytes request id, i32 n (0..1000), n x (str
 *                               key (>= 1 byte), str value: null = tombstone):
 *                               records of a store above the cluster
 *                               (cluster_kv.c), its own format
 *                  op 11 endpoints: i32 node id (>= 0), i32 n (1..16), n x
 *                               (str listener name (1..31 bytes), str host
 *                               (1..63 bytes), i32 port (1..65535)): every
 *                               Kafka listener of that node, so that Metadata
 *                               sends a client to the same listener of
 *                               another node (cluster_members.c)
 *   4 REPLY        u64 request id, i32 status, str message (<= 1000 bytes)
 *   5 MARKER       u64 request id, str topic, i32 partition, i64 producer id,
 *                  i16 producer epoch, u8 commit (1) or abort (0),
 *                  i32 coordinator epoch
 *   6 MARKER_DONE  u64 request id, i32 status
 *   7 LEADERS      i32 n (0..CLW_MAX_LEADERS), n x (str topic, 16 bytes
 *                  topic id, i32 partition, i32 leader (-1: none known),
 *                  i32 epoch (>= 0)): the sender's view of partitions it
 *                  holds (cluster_lead.c)
 * Metadata-log records (__cluster_meta-0, cluster_meta.c), key one byte:
 *   "T" create: str name, i32 partitions, i32 replication factor, 16 bytes
 *       topic id, i32 n (0..1000), n x (str key, str value), then
 *       optionally the assignment as in FORWARD op 1 (records before
 *       2026-12-05 have none: every node places them, broker_place.c)
 *   "D" delete: str name, 16 bytes topic id
 *   "P" partitions: as FORWARD op 3 (the topic's count grows to it)
 *   "C" configs: as FORWARD op 4 (each key set, or reset with null)
 *   "R" reassign: as FORWARD op 5 (the partition's target replicas; n 0:
 *       back to its current ones)
 *   "F" reassigned: as FORWARD op 6 (the move to that target is done)
 *   "N" node: as FORWARD op 7 (the node is a member from here on)
 *   "L" leaving: as FORWARD op 8 (the member leaves: no new replicas on
 *       it; the controller moves its replicas off)
 *   "X" removed: i32 node id (no replica is left on it: not a member from
 *       here on)
 *   "K" key-values: as FORWARD op 10 (handed to the store's apply on every
 *       node, in log order)
 *   "E" endpoints: as FORWARD op 11 (the node's listeners from here on)
 *
 * Decoders return 0 or -CN_EPROTO (short, trailing bytes, a value out of
 * range). What they return points into the input (strs), except configs
 * and an assignment, which a decoder allocates and clw_configs_free
 * releases (NULL when absent; freed already on error). */
#ifndef CAIRN_CLUSTER_CLUSTER_WIRE_H
#define CAIRN_CLUSTER_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "util/common.h"
#include "util/wbuf.h"

#define CLW_MAX_CONFIGS 1000
#define CLW_MAX_MSG 1000
#define CLW_MAX_HOST 63
#define CLW_MAX_RF 64
#define CLW_MAX_LEADERS (1 << 20)

#define CLW_MAX_MEMBERS 16          /* = CONFIG_MAX_PEERS */
#define CLW_MAX_ENDPOINTS 16        /* Kafka listeners of one node (op 11) */
#define CLW_MAX_LISTENER_NAME 31

/* One Kafka listener of a node (FORWARD op 11, record "E"). */
typedef struct clw_endpoint {
    cn_str name;                    /* its listener name: 1..31 bytes */
    cn_str host;                    /* 1..63 bytes */
    int32_t port;                   /* 1..65535 */
} clw_endpoint;

/* A node of the cluster and its two addresses (HELLO v2 members, record
 * "N", FORWARD op 7). */
typedef struct clw_node {
    int32_t id;
    cn_str host;                    /* cluster listener */
    int32_t port;
    cn_str kafka_host;
    int32_t kafka_port;
} clw_node;

#define CLW_HELLO_JOINING 1         /* flags: the sender is not a member yet */

typedef struct clw_hello {
    int16_t version;                /* 1 or 2 */
    int32_t from, to;
    cn_str kafka_host;
    int32_t kafka_port;
    /* Version 2 only (zero, empty and 0 in a version 1 HELLO). */
    cn_str cluster_host;            /* the sender's cluster listener */
    int32_t cluster_port;
    int flags;                      /* CLW_HELLO_JOINING */
    cn_str cluster_id;              /* the sender's (Kafka's cluster id), < 32 bytes */
    int32_t n_members;              /* the sender's members (an acceptor's answer to a
                                     * joining node), 0..CLW_MAX_MEMBERS */
    clw_node members[CLW_MAX_MEMBERS];
} clw_hello;

/* A topic create (FORWARD op 1, record "T": the record carries the id),
 * delete (op 2, "D"), partition count (op 3, "P"), config change (op 4,
 * "C"), reassignment (op 5, "R") or its end (op 6, "F"). Ops 5 and 6 use
 * partitions for the partition index, rf for the replica count and assign
 * for the rf node ids (NULL when rf is 0). */
typedef struct clw_topic_op {
    int op;                         /* 1 create, 2 delete, 3 partitions, 4 configs,
                                     * 5 reassign, 6 reassigned, 7 node registration,
                                     * 8 node leaving, 9 node removed (node.id only),
                                     * 10 key-values of a store (name, id, configs),
                                     * 11 a node's Kafka listeners (node.id, endpoints) */
    cn_str name;
    int32_t partitions, rf;         /* create; partitions: the new count */
    int32_t n_configs;              /* create, configs */
    broker_kv *configs;
    uint8_t id[16];                 /* not in a create FORWARD */
    int32_t *assign;                /* create: partitions x rf replica node ids (an
                                     * explicit assignment), NULL: placement; partitions:
                                     * n_assign x rf, the new partitions' */
    int32_t n_assign;               /* partitions (op 3): rows of assign */
    clw_node node;                  /* op 7 (no name, id, ...: only this); 8, 9, 11: its id */
    int32_t n_endpoints;            /* op 11: the node's Kafka listeners */
    clw_endpoint endpoints[CLW_MAX_ENDPOINTS];
} clw_topic_op;

typedef struct clw_forward {
    uint64_t req;
    int validate_only;
    clw_topic_op t;
} clw_forward;

typedef struct clw_reply {
    uint64_t req;
    int32_t status;
    cn_str msg;
} clw_reply;

typedef struct clw_marker {
    uint64_t req;
    cn_str topic;
    int32_t partition;
    int64_t pid;
    int16_t epoch;
    int commit;
    int32_t coordinator_epoch;
} clw_marker;

typedef struct clw_done {
    uint64_t req;
    int32_t status;
} clw_done;

typedef struct clw_leader {
    cn_str topic;
    uint8_t id[16];
    int32_t partition, leader, epoch;
} clw_leader;

int clw_hello_decode(const uint8_t *b, size_t len, clw_hello *out);
void clw_hello_encode(wbuf *w, const clw_hello *h);
int clw_forward_decode(const uint8_t *b, size_t len, clw_forward *out);
void clw_forward_encode(wbuf *w, const clw_forward *f);
int clw_reply_decode(const uint8_t *b, size_t len, clw_reply *out);
void clw_reply_encode(wbuf *w, const clw_reply *r);
int clw_marker_decode(const uint8_t *b, size_t len, clw_marker *out);
void clw_marker_encode(wbuf *w, const clw_marker *m);
int clw_done_decode(const uint8_t *b, size_t len, clw_done *out);
void clw_done_encode(wbuf *w, const clw_done *d);
/* LEADERS: the whole body is checked first; then fn gets each entry in
 * order (its topic points into b). 0 or -CN_EPROTO (fn not called). */
int clw_leaders_decode(const uint8_t *b, size_t len,
                       void (*fn)(void *arg, const clw_leader *l), void *arg);
void clw_leaders_encode(wbuf *w, const clw_leader *ls, int32_t n);
/* A metadata record: key 'T' (create, with id), 'D', 'P', 'C', 'R', 'F', 'N', 'L' or 'X'. */
int clw_record_decode(char key, const uint8_t *b, size_t len, clw_topic_op *out);
void clw_record_encode(wbuf *w, const clw_topic_op *t);
/* The record key of t's op ('T', 'D', 'P', 'C', 'R', 'F', 'N', 'L', 'X'). */
char clw_record_key(const clw_topic_op *t);
void clw_configs_free(clw_topic_op *t);

#endif
