/* lg_common: the code every load generator shares (tools/loadgen.c for the
 * Kafka protocol, tools/lg_redis.c, tools/lg_nats.c, tools/lg_amqp.c), so the
 * generators differ only in the client calls: one option parser, one clock,
 * one payload layout, one pacing rule, one log-linear latency histogram and
 * one JSON report line. Standalone: libc only, nothing in src/.
 *
 * Payload layout: `size` bytes of incompressible (xorshift) data; when the
 * size allows, bytes 0..7 carry the sender's CLOCK_MONOTONIC time in ns
 * (little-endian) so an end-to-end consumer on the same host can compute
 * produce-to-consume latency. Single-threaded use per object; the clock and
 * the payload helpers are thread-safe. */
#ifndef CAIRN_LG_COMMON_H
#define CAIRN_LG_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Modes every generator implements. */
typedef enum { LG_PRODUCE, LG_CONSUME, LG_E2E } lg_mode;

/* Options common to every generator. Defaults in brackets. */
typedef struct lg_opts {
    lg_mode mode;
    const char *addr;        /* HOST:PORT of the server (--addr, alias --bootstrap) */
    const char *topic;       /* topic / stream / queue base name */
    long long records;       /* N records to produce or consume (required) */
    long size;               /* payload bytes per record (required) */
    int partitions;          /* [1] partitions, streams or queues (name.0 .. name.P-1) */
    int durable;             /* [0] 1: ack only after fsync (system-specific meaning) */
    long long rate;          /* [0] records/s pacing for produce and e2e; 0 = as fast as possible */
    double max_seconds;      /* [60] hard wall-clock bound of the phase */
    int idle_ms;             /* [10000] consumers stop after this long without records */
    long window;             /* [1000] max records in flight (sent, not yet acked) */
    int json;                /* print one JSON line too */
    int quiet;               /* no diagnostics on stderr */
    const char *system;      /* label in the report ("cairn", "redis", ...) */
} lg_opts;

/* Generator-specific option hook: return 1 if `name` (taking `val`, which
 * may be NULL for flags) was consumed, 0 if unknown, -1 on a bad value.
 * *used_val is set to 1 when val was consumed. */
typedef int (*lg_extra_opt_fn)(const char *name, const char *val, int *used_val, void *arg);

/* Parse argv: argv[1] is the mode, then --options. Returns 0 or -1 (message
 * printed). `usage_extra` is appended to the usage text. */
int lg_parse(int argc, char **argv, lg_opts *o, const char *system, const char *usage_extra,
             lg_extra_opt_fn extra, void *arg);

/* Clock, diagnostics, signals. */
uint64_t lg_now_ns(void);
void lg_sleep_ns(uint64_t ns);
void lg_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lg_set_quiet(int quiet);
void lg_install_signals(void);      /* SIGINT/SIGTERM set lg_stop */
extern volatile int lg_stop;

/* Name of partition i ("topic.i"), into buf. */
const char *lg_part_name(const lg_opts *o, int i, char *buf, size_t buf_len);

/* Payload: malloc'd incompressible buffer of max(size, 1) bytes. */
char *lg_payload_new(long size);
/* Stamp / read the send time (no-op / 0 when size < 8). */
void lg_stamp(char *payload, long size, uint64_t ns);
uint64_t lg_stamp_read(const void *payload, size_t len);

/* Pacing: block until record i is due (t0 + i / rate); no-op for rate 0.
 * Returns early if lg_stop is set. */
void lg_pace(uint64_t t0, long long i, long long rate);

/* Log-linear histogram of microseconds: values < 32 exact, above that each
 * power of two split into 32 buckets (relative error < 1/32). */
#define LG_SUB_BITS 5
#define LG_SUB_COUNT (1u << LG_SUB_BITS)
#define LG_HIST_BUCKETS ((64 - LG_SUB_BITS + 1) * LG_SUB_COUNT)
typedef struct lg_hist {
    uint64_t b[LG_HIST_BUCKETS];
    uint64_t count;
    uint64_t max;
    double sum;
} lg_hist;
void lg_hist_add(lg_hist *h, uint64_t v_us);
uint64_t lg_hist_pct(const lg_hist *h, double pct);   /* bucket upper bound, capped at max */

/* Result of one phase; printed by lg_report(). */
typedef struct lg_result {
    long long records;       /* acked (produce) or received (consume, e2e) */
    long long errors;
    double seconds;          /* phase wall time used for the rate */
    const lg_hist *lat;      /* produce: send->ack; e2e: send->receive; NULL: none */
    const char *note;        /* free text (first error, "timeout", ...) or NULL */
} lg_result;

/* One human line on stdout and, with --json, one JSON line:
 * {"system","mode","size","partitions","durable","rate","requested","records","errors",
 *  "seconds","records_per_sec","mb_per_sec","latency_us":{p50,p99,p999,max,mean},"note"}.
 * Returns the exit status: 0 if records == requested and errors == 0, else 1. */
int lg_report(const lg_opts *o, const lg_result *r);

const char *lg_mode_name(lg_mode m);
#endif
