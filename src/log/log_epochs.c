/* Leader epochs of a log (OffsetsForLeaderEpoch): where each epoch ends.
 *
 * No cache file: in a Raft log the epoch of every entry is its term, terms
 * never go down along the raft index, and log_raft_entry_at finds any
 * entry through the .rindex files, so "the first entry of an epoch above
 * E" is a binary search over the raft index (about log2(entries) lookups,
 * each one index bisection and a short walk). Nothing to rebuild at open,
 * nothing to keep in step with appends and truncations: the log is the
 * cache. A side entry (a new leader's barrier) counts with its position,
 * so a term starts where its leader began writing, as Kafka's
 * LeaderEpochFileCache assigns the log end at election.
 *
 * A log that is not a Raft log has one epoch, log_leader_epoch (0 for a
 * single node), over all of it. */
#include "log/log_int.h"
#include "util/common.h"

/* Term and start offset of raft entry i (a side entry: its position). */
static int entry(log_partition *p, int64_t i, int64_t *term, int64_t *start)
{
    log_raft_entry e;
    int rc = log_raft_entry_at(p, i, &e);
    if (rc < 0)
        return rc;
    *term = e.term;
    *start = e.offset;
    return 0;
}

int log_epoch_end(log_partition *p, int32_t epoch, int32_t latest, int32_t *out_epoch,
                  int64_t *out_end)
{
    *out_epoch = -1;
    *out_end = -1;
    if (epoch < 0 || epoch > latest)
        return 0;
    if (epoch == latest) { /* the epoch being written: it ends at the log end */
        *out_epoch = epoch;
        *out_end = log_end_offset(p);
        return 0;
    }
    int raft = p->raft;
    int64_t last, last_term, ai, at, ao;
    log_raft_last(p, &last, &last_term);
    log_raft_anchor(p, &ai, &at, &ao);
    (void)at;
    if (!raft)
        last_term = log_leader_epoch(p);
    if (epoch >= last_term) {
        /* Epochs after the last one written here (elections that wrote
         * nothing) end where the log does, as the last one written. */
        *out_epoch = (int32_t)last_term;
        *out_end = log_end_offset(p);
        return 0;
    }
    if (!raft)
        return 0; /* below the only epoch */
    /* The first entry in (ai, last] whose term is above epoch: one exists,
     * as the last entry's term is. */
    int64_t lo = ai + 1, hi = last;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, t, s;
        int rc = entry(p, mid, &t, &s);
        if (rc < 0)
            return rc;
        if (t > epoch)
            hi = mid;
        else
            lo = mid + 1;
    }
    int64_t t, start;
    int rc = entry(p, lo, &t, &start);
    if (rc < 0)
        return rc;
    *out_end = start;
    if (lo - 1 > ai) {
        int64_t ft, fs;
        rc = entry(p, lo - 1, &ft, &fs);
        if (rc < 0)
            return rc;
        *out_epoch = (int32_t)ft;
    } else if (ao > log_start_offset(p)) {
        *out_epoch = 0; /* batches before the raft log (epoch 0) */
    } else {
        /* Below every epoch the log holds: Kafka answers the asked epoch
         * and the start of the first one above it. */
        *out_epoch = epoch;
    }
    return 0;
}
