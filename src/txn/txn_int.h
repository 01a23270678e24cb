/* Private to src/txn/txn*.c: the coordinator's structures and the record
 * codec of __transaction_state (format at the top of txn_rec.c). */
#ifndef CAIRN_TXN_INT_H
#define CAIRN_TXN_INT_H
#include <stddef.h>
#include <stdint.h>

#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "record/batch.h"
#include "txn/txn.h"
#include "util/bytes.h"
#include "util/bin.h"

/* Record kinds (first int16 of each key) and value versions. */
#define TXN_KEY_PID_BLOCK 0
#define TXN_KEY_TXN 1
#define TXN_VALUE_V0 0

/* One pending transactional offset. Strings owned, NUL-terminated. */
typedef struct txn_off {
    txn_tp tp;                      /* tp.topic.ptr owned */
    int64_t offset;
    int32_t leader_epoch;
    cn_str metadata;                /* owned; len -1 = null */
} txn_off;

/* A group added with AddOffsetsToTxn and its pending offsets. */
typedef struct txn_group {
    cn_str name;                    /* owned */
    txn_off *offs;
    int n_offs, cap_offs;
} txn_group;

/* One transactional id. Never freed before the coordinator (no expiry yet). */
typedef struct txn_meta {
    cn_str tid;                     /* owned, NUL-terminated */
    uint64_t hash;
    struct txn_meta *hnext;
    int64_t pid, last_pid;          /* last_pid: before the last rotation, -1 none */
    int16_t epoch, last_epoch;      /* last_epoch: before the last bump (KIP-360 retries), -1 */
    int32_t timeout_ms;
    txn_state state;
    int64_t start_ms;               /* wall ms of the first AddPartitions/AddOffsets, -1 */
    int64_t update_ms;              /* wall ms of the last transition */
    txn_tp *parts;                  /* topic ptrs owned */
    int n_parts, cap_parts;
    txn_group *groups;
    int n_groups, cap_groups;
    int64_t rec_bytes;              /* size of its last record (live-bytes estimate) */
    /* Completion of a Prepare* state (not persisted). */
    int completing;                 /* markers written, waiting for durability */
    int inflight;                   /* durable waits outstanding */
    int comp_failed;                /* a marker or its fsync failed: retried by the timer */
} txn_meta;

/* A durable wait owned by the coordinator (client replies, completions,
 * compaction). Freed after it fires; unlinked and freed by txn_close. */
typedef struct txn_op {
    durable_wait w;                 /* first */
    struct txn_coord *c;
    partition *p;                   /* the partition w waits on */
    struct txn_op *prev, *next;
    void (*fire)(struct txn_op *op, int status);
    txn_cb cb;
    void *arg;
    int err;                        /* 0 or -CN_E* */
    int64_t pid;
    int16_t epoch;
    txn_meta *m;
    int remote;                     /* 1: waits on mr (a marker another node writes), not w */
    broker_marker_req mr;
} txn_op;

/* A producer id allocator: blocks of TXN_PID_BLOCK ids whose end is a
 * record of log (durable before an id of the block is answered). */
typedef struct txn_pids {
    kvl *log;
    int64_t next;                   /* ids [next, end) may be handed out */
    int64_t end;
    int64_t end_target;             /* log end after the last block record */
    int64_t *last_target;           /* log end after the last record appended to log */
} txn_pids;

struct txn_coord {
    broker *b;
    kvl *log;                       /* __transaction_state */
    partition *p;                   /* its partition, for durable waits */
    goff_store *offsets;            /* may be NULL (tests) */
    loop *l;
    uint64_t seed;
    txn_meta **tab;
    size_t mask, n;
    txn_pids tx;                    /* ids of transactional producers (log: __transaction_state) */
    int64_t last_target;            /* log end after the last record we appended */
    /* In a cluster (txn_open_replicated): __transaction_state is replicated
     * and this node coordinates only while it leads it; memory holds the
     * state of the term loaded_term (0: none). Idempotent producers' ids
     * come from this node's own log __producer_ids (own). */
    int replicated;
    int64_t loaded_term;
    int reload;                     /* an append or wait lost leadership: drop memory */
    broker_listener appends;        /* leadership moves show up as appends */
    txn_pids own;
    int64_t own_target;
    partition *own_p;
    txn_op *ops;
    loop_timer timer;
    int failed;                     /* the log failed: every request gets -CN_EUNAVAIL */
    int n_completing;
    int64_t live_bytes;             /* estimated bytes of a compacted log */
};

/* Record codec (txn_rec.c). */
typedef struct txn__rec {
    int kind;                       /* TXN_KEY_* */
    int tombstone;
    int64_t block_end;              /* kind PID_BLOCK */
    cn_str tid;                     /* kind TXN: views into the record */
    txn_meta v;                     /* kind TXN, not tombstone: decoded fields; parts and
                                       groups malloc'ed with views into the record */
} txn__rec;

/* Encode the key and value of m, or of a pid block, into w; *key_len is the
 * key's size (the value follows it). */
void txn__enc_meta(wbuf *w, const txn_meta *m, size_t *key_len);
void txn__enc_block(wbuf *w, int64_t block_end, size_t *key_len);
/* Decode a record. 0, or -CN_EPROTO with *why set. On success with kind TXN
 * and a value, the caller frees out->v.parts, out->v.groups[i].offs and
 * out->v.groups with txn__rec_fini. */
int txn__rec_decode(const batch_record *r, txn__rec *out, const char **why);
void txn__rec_fini(txn__rec *r);
#endif
