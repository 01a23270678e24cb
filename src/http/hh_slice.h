/* Reading committed records of one partition for the HTTP front end (the
 * long-poll read in hh_read.c, webhook delivery in hh_webhook.c).
 *
 * hh_slice_read reads one verified slice of the log (log_read_verified)
 * into a private buffer with pread, and walks its whole batches in order.
 * Each batch is handed to the caller with `deliver` set when its records
 * are to be served: not a control batch and not a batch of an aborted
 * transaction (pst_aborted_in over the slice). Batches that end at or
 * before `pos` are not handed over. The caller bounds the read with limit
 * (the last stable offset: read_committed) and max_bytes.
 *
 * Ownership: an hh_slice owns its buffer, its scratch for batch_foreach and
 * its list of aborted ranges; batch pointers handed to the callback are valid
 * only during the call. Single-threaded (the loop thread). */
#ifndef CAIRN_HTTP_HH_SLICE_H
#define CAIRN_HTTP_HH_SLICE_H

#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/pstate.h"
#include "record/batch.h"

typedef struct hh_slice {
    batch_scratch *scratch;      /* for batch_foreach in callbacks */
    uint8_t *buf;                /* the slice being walked */
    size_t cap;
    pst_aborted *ab;             /* aborted transactions within it */
    int n_ab, cap_ab;
} hh_slice;

/* One whole batch (b[0..len), header bi) of the slice. deliver: 1 for a
 * data batch of a committed (or non-transactional) producer, 0 for a
 * control batch or one of an aborted transaction. Return 0 to go on, 1 to
 * stop the walk after this batch. */
typedef int (*hh_slice_fn)(void *arg, const uint8_t *b, size_t len, const batch_info *bi,
                           int deliver);

void hh_slice_init(hh_slice *s);
void hh_slice_fini(hh_slice *s);

/* Read at most about max_bytes of p's log from pos (below limit) and walk
 * the batches that end after pos. Returns the bytes read (0: nothing there
 * yet), or the negative error of log_read_verified (unreadable or corrupt
 * data at pos), or -CN_EIO when pread fails. *next (pos when no batch was
 * walked) is the offset after the last batch walked: where the next read
 * starts. */
int64_t hh_slice_read(hh_slice *s, partition *p, int64_t pos, int64_t limit, int64_t max_bytes,
                      hh_slice_fn fn, void *arg, int64_t *next);

/* Free the buffer when it grew past keep bytes (a large slice once). */
void hh_slice_trim(hh_slice *s, size_t keep);

#endif
