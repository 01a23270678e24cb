/* Error codes, attributes and tiny macros shared by every module. Nothing else
 * belongs here (STYLE.md §1).
 *
 * One error currency for the core: functions return 0 or a negative CN_E*
 * value. The first group are errno values (system failures keep their errno
 * so strerror works); the second group are the core's own conditions, above
 * any errno, named for what went wrong in storage, groups or transactions,
 * not for any protocol. Each front end maps them to its wire errors (Kafka
 * error codes in src/kafka/kerr_map.c; AMQP reply codes and HTTP statuses
 * later). cn_strerror names any of them. */
#ifndef CAIRN_COMMON_H
#define CAIRN_COMMON_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define CN_OK 0
#define CN_ENOMEM ENOMEM
#define CN_EIO EIO
#define CN_ENOSPC ENOSPC
#define CN_EINVAL EINVAL
#define CN_ENOENT ENOENT
#define CN_EEXIST EEXIST
#define CN_EPROTO EPROTO
#define CN_ERANGE ERANGE    /* offset or value out of range */
#define CN_ECORRUPT EBADMSG /* checksum or structure check failed */
#define CN_EAGAIN EAGAIN
#define CN_ETIMEDOUT ETIMEDOUT /* nobody took a request in time (another node's) */

/* The core's own conditions (values above every errno). */
enum {
    CN_E_BASE = 4096,
    /* record batches (src/record) */
    CN_EFORMAT,        /* unsupported batch format (magic) */
    CN_ETOOBIG,        /* batch or message above its size limit */
    CN_ECODEC,         /* unknown compression codec */
    CN_EBADREC,        /* records that break the record grammar or count rules */
    /* topics (src/broker) */
    CN_EBADNAME,       /* invalid topic name */
    CN_EPARTITIONS,    /* invalid partition count */
    CN_ECONFIG,        /* invalid configuration value */
    /* producers (src/broker/pstate) */
    CN_ESEQUENCE,      /* producer sequence gap */
    CN_EEPOCH,         /* producer epoch older than the current one */
    CN_EFENCED,        /* producer fenced by a newer epoch */
    CN_EPIDMAP,        /* producer id does not belong to the transactional id */
    /* transactions (src/txn) */
    CN_EBUSY,          /* a concurrent transaction state change is in progress */
    CN_ETXNSTATE,      /* operation not valid in the transaction's state */
    CN_ETXNTIMEOUT,    /* transaction timeout out of range */
    /* consumer groups (src/group) */
    CN_EUNAVAIL,       /* coordinator unavailable (stopped after a storage failure) */
    CN_EBADGROUP,      /* invalid group id */
    CN_ENOGROUP,       /* no such group */
    CN_ENOTEMPTY,      /* group still has members */
    CN_ENOMEMBER,      /* unknown member id */
    CN_EMEMBERREQ,     /* member id required: rejoin with the one given */
    CN_EGENERATION,    /* stale generation */
    CN_EREBALANCE,     /* rebalance in progress */
    CN_EINSTFENCED,    /* static member fenced by a newer instance */
    CN_EGROUPPROTO,    /* protocol type or protocols do not match the group's */
    CN_EGROUPFULL,     /* group.max.size reached */
    CN_ESESSIONTMO,    /* session timeout out of the allowed range */
    CN_ENOTCOORD,      /* this node is not the coordinator (another node leads its log) */
    CN_ELOADING,       /* the coordinator is loading its state (a new leader) */
    /* replication (src/repl) */
    CN_ENOTLEADER,     /* this replica is not the partition's leader */
    CN_ELEADERWAIT,    /* the leader is not ready yet (a new term's barrier) */
    CN_EREPLICATION,   /* invalid replication factor */
    CN_ENOTCONTROLLER, /* this node is not the cluster's controller */
    CN_ENOQUORUM,      /* the leader has not heard from a majority of its group lately */
    CN_ECOMMITTMO,     /* not committed within the request's timeout (it may still be) */
    CN_EFENCEDEPOCH,   /* the client's leader epoch is older than the partition's */
    CN_EUNKNOWNEPOCH,  /* the client's leader epoch is newer than this replica knows */
    CN_EASSIGN,        /* an explicit replica assignment that cannot be taken */
    CN_ENOMOVE,        /* no reassignment of that partition is running */
    CN_E_LAST
};
/* Short English description of -err or err (CN_E* or errno). Static storage. */
const char *cn_strerror(int err);

#define CN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CN_UNUSED __attribute__((unused))
#define CN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CN_LIKELY(x) __builtin_expect(!!(x), 1)
#define CN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* 1 if id is one of row[0..n) (node id rows of replica assignments; a NULL
 * row holds nothing). */
static inline int cn_row_has(const int32_t *row, int n, int32_t id)
{
    for (int k = 0; row && k < n; k++)
        if (row[k] == id)
            return 1;
    return 0;
}

/* Cheap invariant that stays on in release builds (storage invariants). */
void cn_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define CN_ASSERT(x) ((x) ? (void)0 : cn_assert_fail(#x, __FILE__, __LINE__))

/* Allocation of small control structures: aborts on OOM. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
