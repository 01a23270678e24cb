/* The users: SCRAM credentials per user name and mechanism, kept in memory
 * and stored in the internal key-value log __users (kvlog/kvlog.h), so
 * that SASL PLAIN and SCRAM on every front end check against one table.
 *
 * Record format (the kvlog's key and value bytes; big-endian):
 *   key:   int8 version 0, int8 mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512),
 *          then the user name (1..255 bytes of UTF-8, no NUL)
 *   value: int8 version 0, int32 iterations, int8 salt length S (1..64),
 *          S bytes salt, K bytes StoredKey, K bytes ServerKey
 *          (K = 32 for SHA-256, 64 for SHA-512)
 *   tombstone (null value): the credential was deleted.
 * Keys whose second byte is 3 are bearer tokens (tokens.h).
 * Later records win; a record that does not decode is skipped with a
 * warning at replay. Never a password.
 *
 * Storage (auth/astore.h): on a single node the internal log __users,
 * where changes (auth_users_apply) are appended and applied to memory at
 * once, and the caller waits for their fsync (auth_users_wait) before
 * answering; in a cluster the store "users" of the cluster's metadata log
 * (auth_users_open_cluster), where a change reaches memory on every node
 * when it commits, before auth_users_wait calls back on the writer's.
 * Loop thread only. */
#ifndef CAIRN_AUTH_USERS_H
#define CAIRN_AUTH_USERS_H
#include <stdint.h>

#include "auth/scram.h"
#include "broker/broker.h"
#include "cluster/cluster.h"

typedef struct auth_users auth_users;

/* Open and replay __users of broker b. 0 or -CN_E*. */
int auth_users_open(broker *b, auth_users **out);
/* In a cluster, before cluster_meta_start (astore.h). */
auth_users *auth_users_open_cluster(cluster *c);
void auth_users_close(auth_users *u);   /* NULL is a no-op */

/* The stored credential of name for mech, or NULL. Valid until the next
 * change of the table. */
const scram_cred *auth_users_find(const auth_users *u, const char *name, scram_mech mech);
/* Any credential of name (SHA-512 first), for PLAIN; NULL when none. */
const scram_cred *auth_users_find_any(const auth_users *u, const char *name);

/* One change: set (cred non-NULL) or delete (cred NULL) name's credential
 * for mech. */
typedef struct auth_user_change {
    const char *name;
    scram_mech mech;
    const scram_cred *cred;
} auth_user_change;
/* Append the changes as one batch and apply them in memory. *target is the
 * log offset to wait for (auth_users_wait). 0 or -CN_E* (nothing applied).
 * A deletion of a credential that does not exist is -CN_ENOENT for the
 * whole call (the caller checks first to answer per user). */
int auth_users_apply(auth_users *u, const auth_user_change *ch, int n, int64_t *target);
/* Call cb(w, status) once the changes up to target are fsynced. */
void auth_users_wait(auth_users *u, int64_t target, durable_wait *w,
                     void (*cb)(durable_wait *w, int status));

/* Users in name order for listing: call fn for each (name, mechanisms
 * bitmask 1<<mech, the credentials). */
void auth_users_each(const auth_users *u,
                     void (*fn)(void *arg, const char *name, const scram_cred *c256,
                                const scram_cred *c512),
                     void *arg);
int auth_users_count(const auth_users *u);
/* Bumped by every change (callers caching a login check key on it). */
uint64_t auth_users_generation(const auth_users *u);
#endif
