/* Private to src/kvlog/kvlog*.c: the log handle and the replay entry point. */
#ifndef CAIRN_KVLOG_INT_H
#define CAIRN_KVLOG_INT_H
#include <stdint.h>

#include "kvlog/kvlog.h"

struct kvl {
    broker *b;
    partition *p;
    char *name;                     /* owned; for log lines */
    kvl_ops ops;
    void *arg;
    batch_scratch *scratch;         /* replay's decompression state (unused after open) */
    int64_t log_bytes;              /* see kvl_stats */
    int64_t replayed, skipped;
    durable_wait cw;                /* the pending compaction's wait */
    durable_wait sw;                /* replicated: its log start's wait (DeleteRecords) */
    int compacting;
    int64_t compact_from;           /* first re-appended offset: the new log start */
    int replicated;                 /* kvl_open_replicated: a Raft group's log */
};

/* Replay l's partition from its log start to its log end through
 * l->ops.on_record, adding intact batches' bytes to l->log_bytes. 0, or
 * -CN_EIO when the log cannot be read. */
int kvl__replay(kvl *l);
#endif
