/* Replay of an internal log (__consumer_offsets, __transaction_state): read a
 * partition from its log start to its log end, batch by batch, for owners
 * that rebuild their memory from it at open.
 *
 * Each stored batch is checked (length, magic 2, CRC-32C). A batch with the
 * wrong magic or CRC is skipped with a warning; a damaged length stops the
 * replay there (logged; what was read stays applied). Loop thread (or before
 * the loop runs). */
#ifndef CAIRN_BROKER_REPLAY_H
#define CAIRN_BROKER_REPLAY_H
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "record/batch.h"

typedef struct broker_replay_ops {
    /* Every intact batch (control batches included), before its records:
     * header, whole batch bytes. May be NULL. */
    void (*batch)(void *arg, const batch_info *bi, const uint8_t *batch, size_t len);
    /* Every record at or above the log start of every intact non-control
     * batch (batch_foreach through scratch). Return non-zero to skip the
     * rest of that batch. May be NULL. */
    int (*record)(const batch_record *r, void *arg);
} broker_replay_ops;

/* Replay p (name is for log lines). Returns 0, or -CN_EIO when the log cannot
 * be read. */
int broker_replay(partition *p, const char *name, batch_scratch *scratch,
                  const broker_replay_ops *ops, void *arg);
#endif
