/* The core: every protocol-neutral service of one Cairn node, opened and
 * closed together, handed to each front end (Kafka today; AMQP and HTTP are
 * to be its peers).
 *
 * What it holds, in opening order (each may use the ones before it):
 *   broker   topics, partitions and their logs (src/broker)
 *   offsets  committed offsets and group metadata on __consumer_offsets
 *   groups   the consumer-group coordinator
 *   txn      the transaction coordinator on __transaction_state
 * core_close closes them in reverse order: the transaction coordinator and
 * the groups stop first, then the offsets store, then the broker fsyncs every
 * partition and completes parked durable waits.
 *
 * Ownership: the core owns these services; cfg and l are the caller's and
 * must outlive the core. Front ends keep pointers into the core and must be
 * freed before core_close. Loop thread only. */
#ifndef CAIRN_CORE_H
#define CAIRN_CORE_H
#include "auth/acl.h"
#include "auth/pmap.h"
#include "auth/throttle.h"
#include "auth/users.h"
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "group/group.h"
#include "group/offsets.h"
#include "net/loop.h"
#include "txn/txn.h"

typedef struct core {
    const cairn_config *cfg;
    loop *l;
    broker *b;
    cluster *cl;                    /* NULL on a single node (no cluster.peers) */
    goff_store *offsets;
    grp_coord *groups;
    txn_coord *txn;
    auth_users *users;              /* SASL users, bearer tokens */
    int lock_fd;                    /* the data directory's lock (broker_dir_lock) */
    acl_store *acls;                /* ACLs */
    auth_pmap *pmap;                /* ssl.principal.mapping.rules, compiled */
    auth_throttle *throttle;        /* failed-login delays, every front end's */
} core;

/* Open the data directory in cfg->log_dirs and every service on it
 * (recovering logs and replaying the internal ones). The directory is
 * locked first (broker_dir_lock): a second process, broker or
 * `cairn user --data-dir`, gets -CN_EEXIST. 0 or -CN_E*, logged; on
 * failure nothing stays open. */
int core_open(cairn_config *cfg, loop *l, core **out);
/* Close every service (see above). NULL is a no-op. */
void core_close(core *c);
#endif
