/* Broker state: the topic registry and its partitions, on top of the log.
 *
 * On disk, under log.dirs:
 *   <topic>-<n>/            one partition log directory (src/log)
 *   .topics/<topic>.conf    topic metadata: "topic.id=<uuid hex>",
 *                           "partitions=<n>", then config overrides as
 *                           key=value lines. Written atomically (temp file,
 *                           fsync, rename, fsync dir).
 * The .conf file is the commit point: a topic exists iff its .conf exists.
 * Creation makes the partition directories first and the .conf last;
 * deletion removes the .conf first, then the directories. At start, partition
 * directories without a .conf (a crash mid-create or mid-delete) are removed.
 *
 * Partitions keep the log's high watermark equal to the log end offset after
 * each append (single node, no replicas); the leader epoch is 0.
 *
 * Loop thread only. */
#ifndef CAIRN_BROKER_H
#define CAIRN_BROKER_H
#include <stdint.h>

#include "config/config.h"
#include "log/log.h"
#include "net/loop.h"
#include "util/bytes.h"

typedef struct broker broker;
typedef struct topic topic;
typedef struct partition partition;

/* A produce request parked until a partition's durable offset reaches target. */
typedef struct durable_wait {
    struct durable_wait *next;
    int64_t target;                 /* log end after the append */
    void (*cb)(struct durable_wait *w, int status);   /* status 0 (committed), -CN_EIO,
                                                       * or replicated: -CN_ENOTLEADER (a new
                                                       * leader cut the batch: not written),
                                                       * -CN_ECOMMITTMO (deadline passed, or
                                                       * 2 election timeouts after this node
                                                       * stepped down: outcome unknown) */
    int64_t deadline;               /* monotonic ms; 0: none (set by broker_wait_durable*) */
} durable_wait;

struct partition {
    topic *t;
    int32_t id;
    log_partition *log;
    struct rg_group *rg;            /* replicated (topic rf > 1 in a cluster): its Raft
                                     * group, NULL otherwise (src/repl) */
    struct pst_table *ps;           /* producer state (idempotence, transactions) */
    int64_t snap_offset;            /* log end covered by the last producer snapshot */
    int64_t applied;                /* replicated: ps holds the batches below this
                                     * (broker_partition.c, producers_follow) */
    durable_wait *waits;            /* unordered; fired when durable >= target */
    durable_wait *start_waits;      /* DeleteRecords; fired when the log start
                                     * durable >= target (log_start_durable) */
    int64_t last_flush_ms;          /* monotonic ms of the last flush request */
    int leading;                    /* replicated: this node led at the last change */
    int64_t led_term;               /* replicated: the last term this node led (0: none) */
    int64_t known_leader;           /* replicated: the leader id seen last (0: none) */
    /* Placement (broker_place.c): a partition of a topic placed on fewer
     * nodes than the cluster's has no replica here on the others. Such a
     * remote partition keeps no data: log is the broker's empty read-only
     * log (start = end = 0), rg is NULL, and every write is refused with
     * -CN_ENOTLEADER; its leader and epoch are what its replicas report
     * (broker_partition_report). */
    int remote;
    int32_t rep_leader;             /* remote: the reported leader (-1: none known) */
    int32_t rep_epoch;              /* remote: the epoch of that report (-1: none) */
    int64_t leader_changes;         /* replicated: new leaders this node learnt of */
    int64_t move_sent;              /* loop ms this node, leading a finished move, last
                                     * asked for its end record (src/cluster/cluster_move.c) */
    /* Counters since start, for metrics (never reset, no allocation):
     * records and batch bytes stored by broker_produce (client data, not
     * markers or duplicates), and bytes of stored batches front ends sent to
     * readers (each front end adds what it sends: broker_note_read). */
    int64_t produced_records;
    int64_t produced_bytes;
    int64_t read_records;           /* only where a front end decodes records */
    int64_t read_bytes;
};

struct topic {
    broker *b;
    char *name;
    cn_uuid id;
    topic_config cfg;
    int32_t rf;                     /* replication factor */
    int32_t *assign;                /* placement: partition i's replicas at [i*rf, i*rf+rf),
                                     * the preferred leader first; NULL (topics created
                                     * before placement, internal logs): every node, or
                                     * this node alone when rf is 1 */
    /* Reassignment (broker_move.c), each NULL until the topic's first: */
    int32_t *target;                /* partition i's target replicas at [i*rf, i*rf+rf)
                                     * while a move runs, else -1 at [i*rf] */
    int32_t *boot;                  /* the voters partition i's group began with (its
                                     * entry 1), -1 at [i*rf]: the same as assign */
    uint8_t first;                  /* while an internal log opens: this node created it
                                     * (broker_internal_partition_voters) */
    int64_t *moved;                 /* the metadata-log offset of the last move record
                                     * applied to partition i (replays skip older ones) */
    partition **parts;
    int32_t n_parts;
    struct topic *hnext;            /* hash chain */
    struct topic *lnext;            /* list of all topics, creation order */
};

/* Open the data directory, load every topic and recover its partitions.
 * l is used for the syncer's completions. 0 or -CN_E* (logged). */
int broker_open(cairn_config *cfg, loop *l, broker **out);
/* Replication (issue 12, docs/cluster-plan.md): a topic with replication
 * factor > 1 keeps each partition as a Raft group on its replicas (its log
 * a raft log); placement (broker_place.c) picks rf of the cluster's nodes
 * per partition when the topic is created, and the topic's file keeps the
 * assignment. */
typedef struct broker_repl {
    struct rg_node *node;           /* the node's replication groups (src/repl) */
    const int32_t *nodes;           /* every member of the cluster, sorted (this node once
                                     * it is one) */
    int n_nodes;
    int joined;                     /* this node joined a running cluster: the logs of
                                     * every node (internal, no assignment) start empty,
                                     * never bootstrapped here (their leaders take it in) */
} broker_repl;
/* broker_open for a cluster node: repl is copied (the node must outlive the
 * broker; its syncer becomes the broker's). repl NULL: broker_open. */
int broker_open_repl(cairn_config *cfg, loop *l, const broker_repl *repl, broker **out);
/* Node ids of the cluster (n 1 and this node on a single node). */
const int32_t *broker_nodes(const broker *b, int *n);
/* The cluster's members changed (a node joined): ids (n, sorted) is the
 * node set from now on, for placement, assignments read from topic files
 * and the replica lists of the logs every node keeps. */
void broker_set_nodes(broker *b, const int32_t *ids, int n);
/* Where this node's own idempotent producer ids start (a cluster node
 * hands them out from its __producer_ids; txn.c): n << 40 for a first
 * member, and a fresh slice for each registration of a node that joined,
 * so that a node that joins again under its old id with an empty data
 * directory never hands out an id its earlier life did. Until it is set
 * (a joining node before its registration) no id is handed out. */
void broker_set_pid_floor(broker *b, int64_t floor);
/* 1 with *floor set, or 0 (not known yet). */
int broker_pid_floor(const broker *b, int64_t *floor);
/* The members leaving the cluster (n ids, sorted; 0: none): no new replica
 * is placed on them. */
void broker_set_leaving(broker *b, const int32_t *ids, int n);
/* Placement of partitions [from, to) of a new topic (name, id, rf) over
 * the members that take new replicas (broker_place.c): (to - from) x rf
 * ids into out. The controller puts the result in the metadata record, so
 * that every node applies the same assignment whatever members it knows
 * by then. 0, or -CN_EREPLICATION when fewer members take replicas than
 * rf. */
int broker_place_new(const broker *b, const char *name, const cn_uuid *id, int32_t from,
                     int32_t to, int32_t rf, int32_t *out);
/* The replicas of partition part of t with node `leaving` replaced by the
 * heaviest member (rendezvous weight) that takes new replicas and holds
 * none of it, in the same position: t->rf ids into out. 0, or -CN_ENOENT
 * (leaving holds none), -CN_EREPLICATION (no member left to take it). */
int broker_place_replacement(const broker *b, const topic *t, int32_t part, int32_t leaving,
                             int32_t *out);
/* fsync every partition, close everything. */
void broker_close(broker *b);

const cairn_config *broker_config(const broker *b);
loop *broker_loop(broker *b);
int32_t broker_node_id(const broker *b);
/* Advertised host/port for Metadata (the listener's). */
void broker_set_advertised(broker *b, const char *host, int port);
const char *broker_adv_host(const broker *b);
int broker_adv_port(const broker *b);
const char *broker_cluster_id(const broker *b);
/* A node joining a cluster takes the cluster's id (meta.properties is
 * rewritten when it changes). 0 or -CN_EIO. */
int broker_set_cluster_id(broker *b, const char *id);
/* The syncer's histograms (fsync durations, group-commit sizes; contract at
 * log_sync_stats in log.h), for metrics; valid until broker_close. */
const log_sync_stats *broker_sync_stats(const broker *b);

/* Topics ------------------------------------------------------------------ */
topic *broker_topic_find(broker *b, cn_str name);
topic *broker_topic_find_id(broker *b, cn_uuid id);
topic *broker_topics(broker *b);                 /* first; iterate with ->lnext */
topic *broker_internal_topics(broker *b);        /* internal ones, the same way */
int broker_topic_count(const broker *b);
partition *broker_partition(broker *b, cn_str topic_name, int32_t part);

/* Kafka's topic name rule: 1..249 of [a-zA-Z0-9._-], not "." or "..".
 * Returns 1 if valid. */
int broker_topic_name_valid(cn_str name);

/* Create a topic. configs: n key/value pairs (value len -1 = null). Returns 0
 * or -CN_EEXIST (name taken or reserved), -CN_EBADNAME, -CN_EPARTITIONS,
 * -CN_ECONFIG, -CN_EIO (storage), and, on error, a message in msg.
 * validate_only checks without creating. */
typedef struct broker_kv {
    cn_str key;
    cn_str value;
} broker_kv;
int broker_topic_create(broker *b, cn_str name, int32_t n_parts, const broker_kv *configs,
                        int n_configs, int validate_only, char *msg, size_t msg_len,
                        topic **out);
/* Create a topic with a given id (a cluster applying its metadata log: every
 * node creates it alike). Not validate-only; otherwise as broker_topic_create_rf. */
int broker_topic_create_id(broker *b, cn_str name, int32_t n_parts, int32_t rf, cn_uuid id,
                           const broker_kv *configs, int n_configs, const int32_t *assign,
                           char *msg, size_t msg_len, topic **out);
/* The same with a replication factor (-1: default.replication.factor).
 * -CN_EREPLICATION (with msg) when it is not between 1 and the node count.
 * assign: an explicit assignment (n_parts x rf node ids, partition 0's
 * first; checked by broker_check_assignment) instead of placement, or
 * NULL. A single node ignores it once checked. */
int broker_topic_create_rf(broker *b, cn_str name, int32_t n_parts, int32_t rf,
                           const broker_kv *configs, int n_configs, const int32_t *assign,
                           int validate_only, char *msg, size_t msg_len, topic **out);
/* An explicit assignment is n_parts x rf node ids of this cluster, rf
 * between 1 and the node count, no node twice in a partition. 0, or
 * -CN_EASSIGN with msg. */
int broker_check_assignment(const broker *b, const int32_t *assign, int32_t n_parts, int32_t rf,
                            char *msg, size_t msg_len);
/* Reassignment (cluster plan step 8, broker_move.c) ------------------------
 * A partition of a replicated topic moves to a target replica set (the
 * same count, rf): the metadata group records the target on every node
 * (begin); a node in the target without a replica opens an empty one that
 * joins the partition's group; the group's leader changes the group's
 * configuration one server at a time (src/cluster/cluster_move.c); once
 * its voters are the target it records the end, and every node takes the
 * target as the assignment (end): a node left out deletes its replica.
 * Each record applies once per partition: off is its metadata-log offset,
 * and a replay of records at or below the last one applied changes
 * nothing. */
/* A target for partition part of t: rf node ids of this cluster, none
 * twice, t replicated with an assignment. 0 or -CN_EASSIGN / -CN_ENOENT
 * with msg. */
int broker_check_reassign(const broker *b, const topic *t, int32_t part, const int32_t *ids,
                          int n, char *msg, size_t msg_len);
/* Begin (or change) the move of partition part to ids (n == t->rf, checked
 * by the caller); ids NULL: cancel, the target becomes the current
 * assignment (the leader undoes what it added). 0 or -CN_E* (logged). */
int broker_reassign_begin(broker *b, topic *t, int32_t part, const int32_t *ids, int n,
                          int64_t off);
/* The move to ids is done (ignored unless ids is the current target). */
int broker_reassign_end(broker *b, topic *t, int32_t part, const int32_t *ids, int n,
                        int64_t off);
/* Partition part's target (t->rf ids), NULL when no move runs. */
const int32_t *broker_reassign_target(const topic *t, int32_t part);
/* Partition part's assignment (t->rf ids, the preferred leader first), NULL
 * when t has none (a single node, internal logs). */
const int32_t *broker_assignment(const topic *t, int32_t part);
/* Partitions of all topics with a move running. */
int broker_moves_running(const broker *b);

/* Auto-create with broker defaults if auto.create.topics.enable. */
topic *broker_topic_auto_create(broker *b, cn_str name);
/* Delete a topic and its data. Parked requests on it are failed first.
 * 0 or -CN_EIO. */
int broker_topic_delete(broker *b, topic *t);
/* Grow to n_parts partitions, placed (broker_place.c) or, assign non-NULL,
 * on the replicas it gives: (n_parts - current count) x t->rf node ids of
 * this cluster, the new partitions' in order (a single node takes only
 * itself, rf 1). 0, -CN_EPARTITIONS, -CN_EASSIGN or -CN_EIO, with a
 * message. */
int broker_topic_add_partitions(broker *b, topic *t, int32_t n_parts, const int32_t *assign,
                                int validate_only, char *msg, size_t msg_len);
/* The same for a metadata record being applied: its assignment was checked
 * by the controller against the members of its time and is taken as it
 * is (a node replaying it may know other members). */
int broker_topic_add_partitions_recorded(broker *b, topic *t, int32_t n_parts,
                                         const int32_t *assign, char *msg, size_t msg_len);
/* Set (value non-NULL) or reset (value NULL) a topic config and persist.
 * Returns 0, -CN_ECONFIG or -CN_EIO, and a message. */
int broker_topic_set_config(broker *b, topic *t, const char *key, const char *value,
                            int validate_only, char *msg, size_t msg_len);
/* Persist t's current config (after a series of set_config with persist 0). */

/* Internal partitions --------------------------------------------------- */
/* Names reserved for the broker's own logs; clients cannot create topics
 * with these names. */
#define BROKER_OFFSETS_TOPIC "__consumer_offsets"
#define BROKER_TXN_TOPIC "__transaction_state"
/* The AMQP front end's metadata kvlog (exchanges, queues, bindings). */
#define BROKER_AMQP_META_TOPIC "__amqp_meta"
/* A cluster's metadata log (src/cluster/cluster_meta.c). */
#define BROKER_CLUSTER_META_TOPIC "__cluster_meta"
/* A cluster node's own producer-id blocks for idempotent producers
 * (src/txn/txn.c; on a single node they are records of __transaction_state). */
#define BROKER_PIDS_TOPIC "__producer_ids"
/* The HTTP front end's webhook subscriptions (src/http/hh_webhook.c). */
#define BROKER_WEBHOOKS_TOPIC "__webhooks"
/* The users and their SCRAM credentials (src/auth/users.c). */
#define BROKER_USERS_TOPIC "__users"
/* The ACLs (src/auth/acl.c). */
#define BROKER_ACLS_TOPIC "__acls"
/* Prefix of the AMQP front end's queue partitions (__amqp_q-<queue id>). */
#define BROKER_AMQP_QUEUE_PREFIX "__amqp_q-"
int broker_topic_name_reserved(cn_str name);
/* Take the data directory dir for this process (created if absent): an
 * exclusive flock on <dir>/.lock holding our pid, released when the
 * process ends (also by kill -9) or *out_fd is closed. 0, -CN_EEXIST when
 * another process holds it (one error line naming its pid), or -errno. */
int broker_dir_lock(const char *dir, int *out_fd);
/* Open (creating if absent) partition 0 of an internal log stored as
 * <log.dirs>/<name>-0. It is not listed among topics and not served to
 * clients; broker_append and broker_wait_durable work on it as on topic
 * partitions. Segments are never deleted by time or size retention (the
 * owner compacts it). The broker owns it and closes it in broker_close.
 * Returns 0 or -CN_E*. */
int broker_internal_partition(broker *b, const char *name, partition **out);
/* The same, replicated to every node of the cluster as a Raft group (its
 * log a raft log): -CN_EINVAL on a single node. */
int broker_internal_partition_replicated(broker *b, const char *name, partition **out);
/* The same for an internal log created while the cluster runs (an AMQP
 * queue's messages): its group begins with voters (n of them, n >= 1), and
 * every node that opens it must give the same ones, since entry 1 of an
 * empty log is their configuration (the creator puts them in the record
 * that announces the log; a node that is not among them opens it all the
 * same and its leader takes it in, as for the logs of every node). first:
 * this node creates it and stands for its first election at once
 * (rg_group_open_first). An open log is returned as it is. -CN_EINVAL on
 * a single node. */
int broker_internal_partition_voters(broker *b, const char *name, const int32_t *voters, int n,
                                     int first, partition **out);
/* Close the internal partition name (if open) and delete its data and
 * directory (its owner deleted what it stored there). Parked durable waits
 * on it get -CN_EIO. Its partition pointer is invalid afterwards. A name
 * not open is removed from disk if present. */
void broker_internal_partition_drop(broker *b, const char *name);

/* Partitions ------------------------------------------------------------- */
/* Append one validated batch; sets the high watermark and notifies waiters
 * registered with broker_listen_appends. 0 or -CN_E*. */
int broker_append(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset);
/* Append a client's batch (validated, magic 2) applying the producer rules
 * (idempotence; storage semantics, defined as Kafka defines them): a batch
 * with a producer id is checked against the partition's producer state
 * (duplicates are not appended: *base_offset is the original one and the
 * return is 0). Returns 0 or -CN_EEPOCH, -CN_ESEQUENCE, -CN_ECORRUPT,
 * -CN_EIO / -CN_ENOSPC (storage). */
int broker_produce(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset);
/* Append a transaction marker (control batch: COMMIT if commit, else ABORT)
 * for producer pid/epoch, closing its open transaction on p. Returns 0 or
 * -CN_E*, with *offset the marker's offset; -CN_EINVAL (nothing written) when
 * epoch is older than the producer's current epoch on p. */
int broker_write_marker(broker *b, partition *p, int64_t pid, int16_t epoch, int commit,
                        int32_t coordinator_epoch, int64_t *offset);
/* Produce on a replicated partition also fails with -CN_ENOQUORUM when
 * this leader has not heard from a majority of the group lately
 * (rg_quorum_contact): nothing is appended. */

/* Transaction markers on partitions another node leads ------------------------
 *
 * A replicated partition's marker must be written by its leader. The
 * transaction coordinator hands such a marker to broker_marker_remote, which
 * passes it to the remote writer the cluster registered
 * (src/cluster/cluster_call.c). That one sends it to the partition's leader,
 * sends it again when leadership moves or the answer is lost (a repeated
 * marker is harmless: the second finds no open transaction) and calls cb once
 * the marker is committed on the leader (in the high watermark), or with an
 * error when it gave up. The caller owns r until cb ran or it cancelled r. */
typedef struct broker_marker_req {
    /* Set by the caller: */
    const char *topic;              /* NUL-terminated; must outlive the request */
    int32_t partition;
    int64_t pid;
    int16_t epoch;
    int commit;
    int32_t coordinator_epoch;
    void (*cb)(struct broker_marker_req *r, int status);
    /* status: 0 committed on the leader; -CN_ENOENT the topic or partition is
     * gone there; -CN_EINVAL the epoch is older than the producer's there;
     * -CN_ETIMEDOUT no leader took it in time; -CN_EIO and others. */
    /* The remote writer's, not the caller's: */
    struct broker_marker_req *next;
    uint64_t id;
    int32_t sent_to;                /* node the request is at; 0: none */
    int64_t deadline;               /* monotonic ms */
} broker_marker_req;

typedef struct broker_remote_writer {
    void *ctx;
    void (*submit)(void *ctx, broker_marker_req *r);   /* cb later, never inside */
    void (*cancel)(void *ctx, broker_marker_req *r);   /* cb never runs */
} broker_remote_writer;

/* Register the cluster's remote writer (copied); NULL removes it. */
void broker_set_remote_writer(broker *b, const broker_remote_writer *w);
/* 1 when p's markers must go through broker_marker_remote (replicated, and
 * this node does not lead it now). */
int broker_marker_is_remote(const partition *p);
/* Submit r: 0 (r->cb runs later, never inside this call), or -CN_ENOTLEADER
 * when no remote writer is registered (r is not used). */
int broker_marker_remote(broker *b, broker_marker_req *r);
/* Withdraw r before its cb ran (its owner goes away). */
void broker_marker_cancel(broker *b, broker_marker_req *r);

/* Replication state of p for Metadata: the leader's node id (this node for
 * an unreplicated partition; -1 while unknown), its epoch (the Raft term;
 * the log's leader epoch when unreplicated) and whether this node leads
 * (accepts produce and serves fetch). */
int32_t broker_partition_leader(const partition *p);
/* What Metadata names as p's leader: broker_partition_leader, except on
 * the leader of the current term that stepped down cut off from the others
 * (no voter heard within an election timeout, rg_isolated) and knows no
 * leader: another replica, the first of the assignment. librdkafka asks for metadata only the brokers it is
 * connected to, often just the old leader; "none" from an isolated old
 * leader kept producers there for the whole partition (nemesis
 * part-leader, docs/testing.md). A wrong guess costs one
 * NOT_LEADER_OR_FOLLOWER, answered by a node that knows the truth. */
int32_t broker_partition_leader_hint(const partition *p);
int32_t broker_partition_epoch(const partition *p);
int broker_partition_is_leader(const partition *p);
/* Metadata: the node ids of p's replicas (the Raft group's voters; this
 * node for an unreplicated partition) in assignment order, the preferred
 * leader first (broker_balance.c); while a move runs, Kafka's form: the
 * target, then the replicas leaving. At most cap written, the count
 * returned; and whether replica id is in sync (Kafka's ISR): 1 or 0 as the
 * leader knows it (rg_in_sync), -1 when this node does not lead p. */
int broker_partition_replicas(const partition *p, int32_t *out, int cap);
int broker_partition_in_sync(const partition *p, int32_t id);
/* The ISR's size as the leader sees it (1 on a single node), -1 when this
 * node does not lead p. With the topic's min.insync.replicas it decides
 * Kafka's NOT_ENOUGH_REPLICAS for acks=all. */
int broker_partition_isr_count(const partition *p);
/* The rule for a write acknowledged once durable (Kafka's acks=all; every
 * HTTP produce): -CN_ENOQUORUM when this node leads p and sees fewer
 * replicas in sync than the topic's min.insync.replicas, else 0. Checked
 * before anything is written. */
int broker_min_isr_check(const partition *p);
/* p's preferred leader: its first replica. */
int32_t broker_partition_preferred(const partition *p);
/* Leader balance (broker_balance.c; auto.leader.rebalance.enable): hand
 * the partitions this node leads to their preferred leaders where the
 * imbalance calls for it. Called every leader.imbalance.check.interval.seconds
 * by the cluster; returns how many transfers started. */
int broker_balance_leaders(broker *b, int64_t now);
/* Keep the leadership of internal log follower (partition 0) on the node
 * that leads internal log lead: where this node leads follower and another
 * node, in sync, leads lead, hand follower to it (rg_transfer). Called at
 * every cluster tick for __transaction_state after __consumer_offsets.
 * Returns 1 when a transfer started. */
int broker_colocate(broker *b, const char *follower, const char *lead, int64_t now);
/* broker_colocate for every internal log whose name begins with prefix
 * (the AMQP queues' logs follow __amqp_meta). Returns the transfers
 * started. */
int broker_colocate_prefix(broker *b, const char *prefix, const char *lead, int64_t now);
/* Controlled shutdown: hand every replicated partition this node leads
 * (internal ones too) to an in-sync replica that up(arg, id) says is
 * reachable, the preferred one first (rg_transfer; one running transfer
 * per partition). Returns how many
 * partitions this node still leads with a transfer running (one without an
 * in-sync replica is not counted: nobody can take it); call again until 0. */
int broker_hand_off(broker *b, int64_t now, int (*up)(void *arg, int32_t id), void *arg);
/* KIP-320 fencing: a client's current_leader_epoch (-1: not given) against
 * broker_partition_epoch: 0 when equal or not given, -CN_EFENCEDEPOCH when
 * older (FENCED_LEADER_EPOCH), -CN_EUNKNOWNEPOCH when newer
 * (UNKNOWN_LEADER_EPOCH). */
int broker_check_epoch(const partition *p, int32_t current_leader_epoch);
/* OffsetsForLeaderEpoch: log_epoch_end with the partition's epoch as the
 * latest. 0 or -CN_E* (then -1s). */
int broker_epoch_end(partition *p, int32_t epoch, int32_t *out_epoch, int64_t *out_end);
/* Whether state rebuilt from p's log may be served now (coordinators on an
 * internal partition): 0 for an unreplicated partition or a leader whose
 * own term has a committed entry (rg_leader_ready), -CN_ELEADERWAIT for a
 * leader still waiting for that, -CN_ENOTLEADER otherwise. */
int broker_partition_serving(partition *p);
/* 1 when p is a Raft-replicated partition (here or, remote, elsewhere). */
int broker_partition_replicated(const partition *p);
/* Leadership reports (cluster plan section 7): nodes that hold no replica
 * of a partition learn its leader from its replicas.
 * broker_each_reportable calls fn with this node's view (leader id or -1,
 * term) of each replicated partition it holds whose topic is not on every
 * node; broker_leaders_changed returns whether such a view changed since
 * the last call (and forgets it); broker_partition_report takes a view
 * from a replica for a remote partition: kept when its epoch is newer
 * than what is known, or equal with a leader where none was known, or
 * equal and sent by the leader it names (self_report: a follower may
 * still name the last term's leader in a new term, libraft keeps it; the
 * term's leader itself is the one answer for that term); a leader that
 * is not one of p's replicas is ignored. */
typedef void (*broker_report_fn)(void *arg, const topic *t, int32_t part, int32_t leader,
                                 int32_t epoch);
void broker_each_reportable(broker *b, broker_report_fn fn, void *arg);
int broker_leaders_changed(broker *b);
void broker_partition_report(partition *p, int32_t leader, int32_t epoch, int self_report);
/* Last stable offset: the first offset of the oldest open transaction, or
 * the high watermark when none is open (and never above it). */
int64_t broker_lso(const partition *p);
/* Park w until p's durable offset >= w->target (requests an fsync). */
void broker_wait_durable(broker *b, partition *p, durable_wait *w);
/* The same with a deadline (monotonic ms, loop_now's clock; <= 0: none)
 * for a replicated partition: a wait whose entry has not committed by then
 * fires with -CN_ECOMMITTMO (indeterminate: the entry may still commit).
 * An unreplicated partition's fsync ignores it. */
void broker_wait_durable_until(broker *b, partition *p, durable_wait *w, int64_t deadline);
/* DeleteRecords: move p's log start to offset (log_delete_before: at most the
 * high watermark; at or below the current start nothing moves) and park w
 * until that start is durable: w->target is set to the log start after the
 * call, and w->cb gets 0, or -CN_EIO when the sync failed or the topic was
 * deleted meanwhile; it may run before this returns. Returns 0 when w was
 * taken, else -CN_ERANGE (offset < 0 or above the high watermark), -CN_EIO
 * or -CN_ENOSPC, and w is not used. */
int broker_delete_records(broker *b, partition *p, int64_t offset, durable_wait *w);
/* Remove w from p's parked waits without calling it; a no-op when w is not
 * parked there (it already fired). For owners that go away before the
 * partition does (the internal logs' owners at close). A connection gone is
 * NOT a reason: its slot completes. */
void broker_wait_cancel(partition *p, durable_wait *w);

/* A front end sent n_records records (0 when it does not count them, as a
 * zero-copy Kafka fetch) in n_bytes bytes of stored batches from p. */
static inline void broker_note_read(partition *p, int64_t n_records, int64_t n_bytes)
{
    p->read_records += n_records;
    p->read_bytes += n_bytes;
}

/* Kafka's default partitioner for keyed records: murmur2 of the key
 * (org.apache.kafka.common.utils.Utils.murmur2, as an unsigned value) with
 * the sign bit cleared, modulo n_parts (> 0). Every front end that picks a
 * partition from a key uses it, so Kafka, AMQP streams and HTTP agree. */
uint32_t broker_murmur2(const void *key, size_t len);
int32_t broker_key_partition(const void *key, size_t len, int32_t n_parts);

/* Data-arrival listeners: after any loop iteration that appended to any
 * partition, every registered listener's cb runs once (in a loop hook, not
 * inside the append), so parked readers of any front end (a Kafka long-poll
 * fetch, an AMQP consumer, an HTTP stream) can look for new data. The caller
 * owns the struct (embed it; nothing is allocated) and must unlisten before
 * freeing it. A callback may unlisten itself or other listeners. */
typedef struct broker_listener {
    void (*cb)(struct broker_listener *l);
    /* private */
    struct broker_listener *next, *prev;
} broker_listener;
void broker_listen_appends(broker *b, broker_listener *l);
void broker_unlisten_appends(broker *b, broker_listener *l);
/* Periodic work (retention, flush of acks=1 data): the broker arms its own timer. */
#endif
