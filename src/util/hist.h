/* Fixed-bucket histograms for metrics (Prometheus histograms): a spec (the
 * bucket upper bounds, shared and static) and a histogram of counters that
 * an observation updates without allocating, so a hot path (a request's
 * answer, a sync's completion) can keep one per label value in a fixed
 * array.
 *
 * Values are integers in the spec's base unit (nanoseconds, bytes,
 * records); `scale` converts the base unit to the exposition unit (1e-9:
 * nanoseconds to seconds), and `le` holds each bound as its exposition
 * label, exact ("0.00025", "1048576"), so writers print no floats for
 * bounds. Buckets are kept per bucket (not cumulative): buckets[i] counts
 * values v with bounds[i-1] < v <= bounds[i]; buckets[n_bounds] counts the
 * values above the last bound (+Inf). A writer sums them up into the
 * cumulative `le` counts Prometheus wants; +Inf's cumulative count equals
 * count.
 *
 * The specs in use, and why those bounds:
 *   hist_latency_ns  100 us .. 10 s (0.0001, 0.00025, 0.0005, 0.001, ...,
 *                    5, 10 s; 1-2.5-5 steps): a broker's request answered
 *                    from memory takes tens of microseconds, an fsync on an
 *                    SSD about a millisecond, a long poll up to its wait
 *                    (Fetch max wait 500 ms by default, HTTP reads up to
 *                    300 s: those beyond 10 s land in +Inf).
 *   hist_bytes       256 B .. 64 MiB in factors of 4: a sync covering one
 *                    small record up to a burst of large batches.
 *   hist_records     1 .. 100000 (1-2.5-5 steps): records (offsets) per sync.
 * Not thread-safe: one thread updates a histogram (the loop thread for
 * every histogram in Cairn) and readers on that thread see it whole. */
#ifndef CAIRN_HIST_H
#define CAIRN_HIST_H
#include <stdint.h>

#define HIST_MAX_BOUNDS 20

typedef struct hist_spec {
    int n_bounds;                         /* 1..HIST_MAX_BOUNDS */
    int64_t bounds[HIST_MAX_BOUNDS];      /* ascending, base unit */
    const char *le[HIST_MAX_BOUNDS];      /* the same in the exposition unit, as text */
    double scale;                         /* exposition unit per base unit */
} hist_spec;

typedef struct hist {
    const hist_spec *spec;
    uint64_t buckets[HIST_MAX_BOUNDS + 1];  /* per bucket, not cumulative; last: +Inf */
    uint64_t count;
    int64_t sum;                          /* base unit (int64 ns: 292 years) */
} hist;

extern const hist_spec hist_latency_ns;
extern const hist_spec hist_bytes;
extern const hist_spec hist_records;

/* Zero h and tie it to spec (static storage). */
void hist_init(hist *h, const hist_spec *spec);
/* Count one value (negative values count as 0). */
void hist_observe(hist *h, int64_t v);
/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC), for latencies. Any
 * thread. */
int64_t hist_now_ns(void);
#endif
