/* Where the users (users.c, tokens.c) and the ACLs (acl.c) keep their
 * records: one interface over two backends, chosen when the owner opens.
 *
 * Single node: a compacted key-value log (kvlog/kvlog.h) of the broker,
 * replayed through ops->on_record at open. An append writes to the page
 * cache and the OWNER applies the change to its memory at once; the wait
 * ends when the batch is fsynced.
 *
 * Cluster: the records travel in the cluster's metadata log
 * (cluster_kv_write: through the controller, committed on a majority) and
 * EVERY node, the writer included, applies them through ops->on_record as
 * they commit, in log order (and all of them again at each start, when the
 * metadata log replays). So the owner must not touch its memory at append
 * (auth_store_applies_at_append is 0), and the wait ends once the change
 * is applied on this node. Nothing is compacted (ops->compact unused).
 *
 * Targets: what auth_store_append returns for auth_store_wait (a log
 * offset on a single node, a write's sequence number in a cluster).
 * Loop thread only. */
#ifndef CAIRN_AUTH_ASTORE_H
#define CAIRN_AUTH_ASTORE_H
#include <stdint.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "kvlog/kvlog.h"

typedef struct auth_store auth_store;

/* Single node: the internal log log_name of b, replayed now. 0 or -CN_E*. */
int auth_store_open_local(broker *b, const char *log_name, const kvl_ops *ops, void *arg,
                          auth_store **out);
/* Cluster: the store `name` of the metadata log; to be opened before
 * cluster_meta_start, whose replay applies what is there. Cannot fail. */
auth_store *auth_store_open_cluster(cluster *c, const char *name, const kvl_ops *ops, void *arg);
void auth_store_close(auth_store *s); /* NULL is a no-op; waits still parked get -CN_EIO */

/* 1 on a single node (the owner applies its change after a successful
 * append), 0 in a cluster (the change comes back through on_record). */
int auth_store_applies_at_append(const auth_store *s);
/* Append bt's records (at least one) as one change. 0 with *target, or
 * -CN_E* (nothing written). */
int auth_store_append(auth_store *s, const kvl_batch *bt, int64_t *target);
/* cb(w, 0) once the change up to target is durable (single node) or
 * applied here (cluster), or cb(w, -CN_E*): -CN_EIO (fsync), or in a
 * cluster -CN_ENOTCONTROLLER / -CN_ETIMEDOUT (cluster_kv_write). May run
 * before this returns. */
void auth_store_wait(auth_store *s, int64_t target, durable_wait *w,
                     void (*cb)(durable_wait *w, int status));
/* 1 when the table holds what the store had when this node started: on a
 * single node always; in a cluster once the metadata log is applied that
 * far (cluster_meta_caught_up: a restarted node learns the commit index
 * from the leader first). Until then an authorizer must not take a
 * missing entry for an absent one. */
int auth_store_ready(const auth_store *s);
/* Single node: kvl_maybe_compact; a cluster: nothing. */
void auth_store_maybe_compact(auth_store *s);
/* The kvlog of a single node (tests), NULL in a cluster. */
kvl *auth_store_kvl(auth_store *s);

#endif
