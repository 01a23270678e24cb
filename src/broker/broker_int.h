/* Private parts of the broker module shared by broker.c (registry, topics,
 * timers), broker_partition.c (partition open/close, append, producer state)
 * and broker_fs.c (directory and atomic-file helpers). Loop thread only. */
#ifndef CAIRN_BROKER_INT_H
#define CAIRN_BROKER_INT_H
#include <stddef.h>
#include <stdio.h>

#include "broker/broker.h"
#include "log/log.h"
#include "net/loop.h"

#define BROKER_HASH 1024
#define BROKER_MAX_PARTITIONS 10000

struct broker {
    cairn_config *cfg;
    loop *l;
    log_syncer *syncer;
    loop_io sync_io;
    char *dir;                       /* log.dirs */
    char *meta_dir;                  /* <dir>/.topics */
    char cluster_id[32];
    char adv_host[64];
    int adv_port;
    topic *hash[BROKER_HASH];
    topic *list, *list_tail;
    int n_topics;
    topic *internal;                 /* internal logs (lnext chain), not in hash/list */
    loop_timer flush_timer;
    loop_timer retention_timer;
    loop_timer snapshot_timer;       /* producer-state snapshots */
    loop_timer commit_timer;         /* deadlines of waits on replicated partitions */
    int appended;                    /* an append happened this iteration */
    broker_listener *listeners;      /* append listeners (doubly linked) */
    broker_listener *notify_next;    /* next listener to call during notification */
    /* Replication (broker_open_repl); rg NULL on a single node. */
    struct rg_node *rg;
    int32_t *nodes;                  /* cluster node ids (the local one when single) */
    int n_nodes;
    int joined;                      /* broker_repl.joined */
    int64_t pid_floor;               /* broker_set_pid_floor */
    int pid_ready;
    int32_t *leaving;                /* members leaving (broker_set_leaving), sorted */
    int n_leaving;
    broker_remote_writer remote;     /* markers for partitions led elsewhere */
    log_partition *empty_log;        /* remote partitions' log (broker.h), opened at the
                                      * first, never written; <dir>/.remote-0 */
    int leaders_changed;             /* broker_leaders_changed */
    int n_moves;                     /* partitions with a move running (broker_move.c) */
};

/* broker_fs.c: 0 or -errno. */
int broker__fsync_dir(const char *dir);
int broker__mkdir_p(const char *dir);
/* Write path atomically (temp file, fsync, rename, fsync dir). */
int broker__write_atomic(const char *dir, const char *path, const char *content, size_t len);
int broker__rm_rf(const char *path);      /* a directory of files, then the directory */

/* broker_place.c: partition part's replicas (t->rf of the cluster's n
 * nodes) into out, the preferred leader first. rf == n: the nodes in id
 * order rotated by a hash of the topic name plus part (so a topic's
 * partitions prefer the nodes in turn, as before placement); rf < n:
 * rendezvous hashing, the rf nodes with the highest weight
 * broker__place_weight(topic id, part, node), in weight order. */
void broker__place(const topic *t, int32_t part, const int32_t *nodes, int n, int32_t *out);
/* The members that take new replicas (not leaving) into out (cap 64): their count. */
int broker__placeable(const broker *b, int32_t *out);
uint64_t broker__place_weight(const cn_uuid *topic_id, int32_t part, int32_t node);
/* The assignment of partition i (t->rf ids), or NULL when t has none. */
static inline const int32_t *broker__replicas_of(const topic *t, int32_t i)
{
    return t->assign ? t->assign + (size_t)i * (size_t)t->rf : NULL;
}

/* The target of a move of partition i (t->rf ids), or NULL without one.
 * Bounded by the topic's partition count as loaded, not t->n_parts, which
 * counts only the partitions opened so far while a topic loads. */
static inline const int32_t *broker__target_of(const topic *t, int32_t i)
{
    return t->target && t->target[(size_t)i * (size_t)t->rf] >= 0
               ? t->target + (size_t)i * (size_t)t->rf
               : NULL;
}

/* The voters partition i's group began with: t->boot's row when set, else
 * the assignment (NULL when t has none). */
static inline const int32_t *broker__boot_of(const topic *t, int32_t i)
{
    if (t->boot && t->boot[(size_t)i * (size_t)t->rf] >= 0)
        return t->boot + (size_t)i * (size_t)t->rf;
    return broker__replicas_of(t, i);
}

/* broker.c: write t's file (<meta>/<topic>.conf) atomically. 0 or -CN_E*. */
int broker__topic_write_conf(broker *b, const topic *t);

/* broker_move.c: grow t's move arrays (when present) to n_parts, the new
 * rows empty; free them. */
void broker__moves_grow(topic *t, int32_t old, int32_t n_parts);
void broker__moves_free(topic *t);
/* Add (sign 1: t was linked) or take away (-1: t is being deleted) t's
 * running moves from the broker's count. */
void broker__moves_count(topic *t, int sign);
/* 1 when key is a move line of a topic file (target.<p>, boot.<p>,
 * moved.<p>). broker__moves_load takes such lines ("key=value\n" each, as
 * the file had them) once t->rf and t->assign are loaded. 0 or
 * -CN_ECORRUPT (a row that does not fit the topic). */
int broker__moves_key(const char *key);
int broker__moves_load(topic *t, int32_t n_parts, const char *lines);
/* Write t's move lines for partition i into f. */
void broker__moves_write(const topic *t, int32_t i, FILE *f);

/* broker_partition.c */
void broker__log_options(const topic *t, const cairn_config *c, log_options *o);
/* Open partition id of t under <log.dirs>/<topic>-<id>, recovering its log
 * and rebuilding its producer state; a partition whose assignment
 * (t->assign) leaves this node out opens remote (no files). 0 or -CN_E*. */
int broker__partition_open(broker *b, topic *t, int32_t id, partition **out);
/* destroy: delete its data (parked waits fail); else fsync, complete parked
 * waits, write a producer snapshot and close. Frees p (NULL is a no-op). */
void broker__partition_close(partition *p, int destroy);
/* Reassignment: a remote partition becomes an empty replica that joins its
 * group (go_local, 0 or -CN_E*), or a replica is closed and its data
 * deleted, leaving a remote partition (go_remote). */
int broker__partition_go_local(partition *p);
void broker__partition_go_remote(partition *p);
/* Write a producer-state snapshot if the log grew since the last one. */
void broker__partition_snapshot(partition *p);
/* commit_timer: fire the replicated waits whose deadline passed, re-arm. */
void broker__commit_timer_cb(loop_timer *tm);
/* The Raft group id of a replicated partition: a hash of topic name and
 * partition (the same on every node; never 0, the metadata group's). */
uint64_t broker__group_id(const char *tname, int32_t part);
#endif
