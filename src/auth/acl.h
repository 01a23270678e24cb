/* Access control lists and the authorizer, with Kafka's model: an ACL
 * binds a resource pattern (type, name, literal or prefixed) to an entry
 * (principal, host, operation, allow or deny). The front ends ask
 * acl_authorize whether a principal connected from a host may perform an
 * operation on a resource; Kafka's APIs create, describe and delete ACLs
 * with filters (acl_filter).
 *
 * Decision (acl_authorize), as Kafka's authorizer decides:
 *   1. a super user (super.users) may do everything;
 *   2. the ACLs whose pattern matches the resource are collected: same
 *      type, and LITERAL with the same name or the name "*", or PREFIXED
 *      with a name the resource's name starts with;
 *   3. none at all: allow.everyone.if.no.acl.found decides;
 *   4. a DENY entry matching principal (or User:*), host (or *) and
 *      operation (or ALL) denies;
 *   5. an ALLOW entry matching the same way allows, where READ, WRITE,
 *      DELETE and ALTER also allow DESCRIBE, and ALTER_CONFIGS allows
 *      DESCRIBE_CONFIGS;
 *   6. otherwise denied.
 * Every change bumps acl_generation, so callers may cache decisions per
 * connection keyed by it.
 *
 * Storage (auth/astore.h): on a single node the internal key-value log
 * __acls (kvlog/kvlog.h); in a cluster the store "acls" of the cluster's
 * metadata log, applied on every node (acl_open_cluster). One record
 * per ACL; its key is the binding (big-endian):
 *   int8 version 0, int8 resource type, int8 pattern type, int8 operation,
 *   int8 permission, int16 L + L bytes resource name, int16 L + principal,
 *   int16 L + host
 * and its value one byte, 0 (a tombstone deletes the ACL). In a cluster,
 * acl_add and acl_delete change the table only once their records commit
 * and come back (before acl_wait calls back on this node).
 * Loop thread only. */
#ifndef CAIRN_AUTH_ACL_H
#define CAIRN_AUTH_ACL_H
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "config/config.h"

/* Kafka's codes. */
enum { ACL_R_ANY = 1, ACL_R_TOPIC = 2, ACL_R_GROUP = 3, ACL_R_CLUSTER = 4, ACL_R_TXN_ID = 5 };
enum { ACL_P_ANY = 1, ACL_P_MATCH = 2, ACL_P_LITERAL = 3, ACL_P_PREFIXED = 4 };
enum {
    ACL_OP_ANY = 1, ACL_OP_ALL = 2, ACL_OP_READ = 3, ACL_OP_WRITE = 4, ACL_OP_CREATE = 5,
    ACL_OP_DELETE = 6, ACL_OP_ALTER = 7, ACL_OP_DESCRIBE = 8, ACL_OP_CLUSTER_ACTION = 9,
    ACL_OP_DESCRIBE_CONFIGS = 10, ACL_OP_ALTER_CONFIGS = 11, ACL_OP_IDEMPOTENT_WRITE = 12,
};
enum { ACL_PERM_ANY = 1, ACL_DENY = 2, ACL_ALLOW = 3 };

/* The cluster resource's one name. */
#define ACL_CLUSTER_NAME "kafka-cluster"

typedef struct acl_binding {
    int8_t rtype, pattern, op, perm;
    const char *name, *principal, *host;
} acl_binding;

/* A filter: NULL strings and the ANY codes match everything; pattern
 * MATCH matches the ACLs that would apply to a resource of that name
 * (literal equal or "*", or a prefix of it). */
typedef acl_binding acl_filter;

typedef struct acl_store acl_store;

int acl_open(broker *b, acl_store **out);
/* In a cluster, before cluster_meta_start (astore.h). */
acl_store *acl_open_cluster(cluster *c);
void acl_close(acl_store *s);              /* NULL is a no-op */
uint64_t acl_generation(const acl_store *s);
int acl_count(const acl_store *s);

/* NULL when b can be stored (concrete types, a pattern LITERAL or PREFIXED,
 * a "Type:name" principal, a host, a name), else why not (for Kafka's
 * INVALID_REQUEST message). */
const char *acl_invalid(const acl_binding *b);
/* Kafka's error for a filter that cannot match anything sensible, NULL if
 * it is fine (UNKNOWN codes). */
const char *acl_filter_invalid(const acl_filter *f);
int acl_matches(const acl_filter *f, const acl_binding *b);

/* Add bindings (already present ones are kept once) as one appended batch;
 * *target for acl_wait. 0 or -CN_E* (nothing changed). */
int acl_add(acl_store *s, const acl_binding *b, int n, int64_t *target);
/* Delete every ACL matching f; each deleted one is reported through cb
 * (strings valid during the call) before it goes. *target as above (-1
 * when nothing matched). 0 or -CN_E*. */
int acl_delete(acl_store *s, const acl_filter *f,
               void (*cb)(void *arg, const acl_binding *b), void *arg, int64_t *target);
/* Every ACL matching f, in a stable order (type, name, pattern). */
void acl_each(const acl_store *s, const acl_filter *f,
              void (*cb)(void *arg, const acl_binding *b), void *arg);
void acl_wait(acl_store *s, int64_t target, durable_wait *w,
              void (*cb)(durable_wait *w, int status));

/* Names of the codes as Kafka's tools write them ("Write", "Topic",
 * "Prefixed", "Allow"; "TransactionalId", "DescribeConfigs"), and back
 * (case-insensitive, '_' and '-' ignored; 0 when unknown). */
const char *acl_op_name(int op);
const char *acl_rtype_name(int rtype);
const char *acl_pattern_name(int pattern);
const char *acl_perm_name(int perm);
int acl_op_parse(const char *s);
int acl_rtype_parse(const char *s);
int acl_pattern_parse(const char *s);
int acl_perm_parse(const char *s);

/* The decision above. cfg supplies super.users and
 * allow.everyone.if.no.acl.found (authorizer.enabled is the caller's). */
int acl_authorize(const acl_store *s, const cairn_config *cfg, const char *principal,
                  const char *host, int op, int rtype, const char *name, size_t name_len);
#endif
