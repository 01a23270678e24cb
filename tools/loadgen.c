/* loadgen: produce/consume load generator for Cairn (or any Kafka broker),
 * built on librdkafka.
 *
 *   loadgen produce --bootstrap H:P --topic T --records N --size BYTES
 *           [--acks 0|1|all] [--linger-ms 5] [--batch-bytes 1048576]
 *           [--compression none|gzip|snappy|lz4|zstd] [--partitions P]
 *           [--timeout-ms 60000] [--json] [--quiet]
 *   loadgen consume --bootstrap H:P --topic T --records N --size BYTES
 *           [--idle-ms 10000] [--partitions P] [--json] [--quiet]
 *
 * produce: one preallocated, incompressible payload buffer is handed to
 * rd_kafka_produce() without RD_KAFKA_MSG_F_COPY (librdkafka references it,
 * never copies or frees it). Keyless records, librdkafka's default
 * partitioner (random/sticky over the topic's partitions). Delivery reports
 * are polled while producing; the run ends when rd_kafka_flush() returns.
 * Each record carries its enqueue time as the message opaque, so the delivery
 * callback feeds a log-linear latency histogram (enqueue -> delivery report,
 * which includes time spent queued in the client).
 *
 * consume: no consumer group (the broker has no group coordinator yet): the
 * legacy simple-consumer API starts every partition (count from metadata) at
 * RD_KAFKA_OFFSET_BEGINNING on one shared queue; nothing is ever committed.
 * Stops after N records or when nothing arrives for --idle-ms.
 *
 * Output: one human-readable line on stdout; with --json one JSON object line
 * as well. MB = 10^6 bytes of record value (payload) data; keys, headers and
 * protocol framing are not counted. Exit status 0 only if all N records were
 * delivered without error (produce) or read back (consume).
 *
 * Standalone: depends on librdkafka only, nothing in src/. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <pthread.h>

#include "lg/lg_common.h"

/* ------------------------------------------------------------------------ */
/* Options */

typedef struct opts {
    const char *mode;        /* "produce" | "consume" */
    const char *bootstrap;
    const char *topic;
    long long records;
    long size;
    const char *acks;        /* "0" | "1" | "all" */
    int partitions;          /* reporting only; 0 = unknown */
    int linger_ms;
    long batch_bytes;
    const char *compression;
    int timeout_ms;          /* produce: message.timeout.ms and flush bound */
    int idle_ms;             /* consume: stop after this long without records */
    int json;
    int quiet;               /* suppress progress/diagnostics on stderr */
    long long rate;          /* e2e: records/s */
    int idempotent;          /* produce: enable.idempotence */
    long long txn_records;   /* produce: commit a transaction every this many records; 0 off */
    double max_seconds;      /* e2e: wall-clock bound */
    const char *extra[16];   /* -X key=value: librdkafka settings for every client (TLS) */
    int n_extra;
} opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: loadgen produce|consume --bootstrap HOST:PORT --topic T --records N --size BYTES\n"
            "               [--acks 0|1|all] [--partitions P] [--linger-ms 5] [--batch-bytes 1048576]\n"
            "               [--compression none|gzip|snappy|lz4|zstd] [--timeout-ms 60000]\n"
            "               [--idle-ms 10000] [--json] [--quiet]\n"
            "               [--idempotent] [--txn-records N (transactional: commit every N)]\n"
            "               [-X key=value ...] (librdkafka settings, e.g. security.protocol=ssl)\n"
            "       loadgen e2e ... --rate R [--max-seconds 60]: produce at R records/s while consuming;\n"
            "               report send->receive latency (p50/p99/p99.9)\n"
            "  produce: send N records of BYTES each; report records/s, MB/s, delivery errors, latency\n"
            "  consume: read N records from offset 0 of every partition (no group, no commits)\n"
            "  produce/e2e --partitions P: create the topic with P partitions first (CreateTopics;\n"
            "  an existing topic is kept); consume reads the real count from metadata\n");
}

static int parse_ll(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->acks = "1";
    o->linger_ms = 5;
    o->batch_bytes = 1048576;
    o->compression = "none";
    o->timeout_ms = 60000;
    o->idle_ms = 10000;
    o->max_seconds = 60;
    o->records = -1;
    o->size = -1;
    if (argc < 2) {
        usage(stderr);
        return -1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        exit(0);
    }
    if (strcmp(argv[1], "produce") && strcmp(argv[1], "consume") && strcmp(argv[1], "e2e")) {
        fprintf(stderr, "loadgen: unknown mode '%s'\n", argv[1]);
        usage(stderr);
        return -1;
    }
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--idempotent")) { o->idempotent = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        if (i + 1 >= argc) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return -1;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-X")) {
            if (!strchr(val, '=') || o->n_extra == (int)(sizeof(o->extra) / sizeof(o->extra[0]))) {
                fprintf(stderr, "loadgen: -X needs key=value (at most 16)\n");
                return -1;
            }
            o->extra[o->n_extra++] = val;
            continue;
        }
        if (!strcmp(a, "--bootstrap") || !strcmp(a, "--addr")) o->bootstrap = val;
        else if (!strcmp(a, "--topic")) o->topic = val;
        else if (!strcmp(a, "--acks")) {
            if (strcmp(val, "0") && strcmp(val, "1") && strcmp(val, "all") && strcmp(val, "-1")) {
                fprintf(stderr, "loadgen: --acks must be 0, 1 or all\n");
                return -1;
            }
            o->acks = strcmp(val, "-1") ? val : "all";
        } else if (!strcmp(a, "--compression")) o->compression = val;
        else if (!strcmp(a, "--max-seconds")) o->max_seconds = atof(val) > 0 ? atof(val) : 60;
        else {
            long long lo = 0, hi = INT32_MAX;
            if (!strcmp(a, "--records")) { lo = 1; hi = INT64_MAX / 2; }
            else if (!strcmp(a, "--size")) { lo = 0; hi = 64 << 20; }
            else if (!strcmp(a, "--batch-bytes")) { lo = 1; }
            else if (!strcmp(a, "--timeout-ms") || !strcmp(a, "--idle-ms")) { lo = 1; }
            else if (!strcmp(a, "--rate")) { hi = 100000000; }
            else if (!strcmp(a, "--txn-records")) { lo = 1; hi = INT64_MAX / 2; }
            else if (strcmp(a, "--partitions") && strcmp(a, "--linger-ms")) {
                fprintf(stderr, "loadgen: unknown option '%s'\n", a);
                usage(stderr);
                return -1;
            }
            if (parse_ll(val, lo, hi, &v)) {
                fprintf(stderr, "loadgen: bad value for %s: '%s'\n", a, val);
                return -1;
            }
            if (!strcmp(a, "--records")) o->records = v;
            else if (!strcmp(a, "--size")) o->size = (long)v;
            else if (!strcmp(a, "--batch-bytes")) o->batch_bytes = (long)v;
            else if (!strcmp(a, "--timeout-ms")) o->timeout_ms = (int)v;
            else if (!strcmp(a, "--idle-ms")) o->idle_ms = (int)v;
            else if (!strcmp(a, "--partitions")) o->partitions = (int)v;
            else if (!strcmp(a, "--rate")) o->rate = v;
            else if (!strcmp(a, "--txn-records")) o->txn_records = v;
            else o->linger_ms = (int)v;
        }
    }
    if (!o->bootstrap || !o->topic || o->records < 0 || o->size < 0) {
        fprintf(stderr, "loadgen: --bootstrap, --topic, --records and --size are required\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static int g_quiet;
static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...) {
    if (g_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "loadgen: config %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

/* A client configuration with the -X settings applied (exits on a bad one). */
static rd_kafka_conf_t *conf_new(const opts *o) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    for (int i = 0; i < o->n_extra; i++) {
        char k[256];
        const char *eq = strchr(o->extra[i], '=');
        snprintf(k, sizeof k, "%.*s", (int)(eq - o->extra[i]), o->extra[i]);
        if (conf_set(c, k, eq + 1))
            exit(2);
    }
    return c;
}

static int conf_set_int(rd_kafka_conf_t *c, const char *k, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return conf_set(c, k, buf);
}

/* Client-level errors (connection refused, all brokers down, ...): print a
 * few, then go quiet so a dead broker does not flood the terminal. */
static int g_client_errors;
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    (void)opaque;
    if (++g_client_errors <= 10)
        diag("client error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        g_stop = 1;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* Connection failures also arrive via error_cb (rate-limited there). */
    if (!g_quiet && level <= 4 && strcmp(fac, "FAIL"))
        fprintf(stderr, "loadgen: rdkafka %d %s: %s\n", level, fac, buf);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* The log-linear latency histogram, pacing and payload stamp are shared
 * with the other generators (tools/lg/lg_common.c). */
typedef lg_hist hist;
#define hist_add lg_hist_add
#define hist_pct lg_hist_pct

/* ------------------------------------------------------------------------ */
/* Topic creation (CreateTopics); an existing topic is left as it is. */

static int create_topic(rd_kafka_t *rk, const char *topic, int partitions) {
    char err[512];
    if (partitions <= 0)
        return 0;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
    if (!nt) {
        fprintf(stderr, "loadgen: NewTopic: %s\n", err);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    int rc = -1;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        if (!e && n == 1)
            e = rd_kafka_topic_result_error(tr[0]);
        if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            fprintf(stderr, "loadgen: CreateTopics %s: %s\n", topic, rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "loadgen: CreateTopics %s: no answer in 15 s\n", topic);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Produce */

typedef struct prod_state {
    uint64_t t0;             /* run start (ns); opaques are offsets from it */
    long long delivered;     /* successful delivery reports */
    long long errors;        /* failed delivery reports */
    char first_err[256];
    hist lat;                /* enqueue -> delivery report, microseconds */
} prod_state;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    prod_state *st = opaque;
    if (m->err) {
        if (st->errors++ == 0)
            snprintf(st->first_err, sizeof st->first_err, "%s: %s",
                     rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
        if (st->errors <= 5)
            diag("delivery failed: %s", rd_kafka_err2str(m->err));
        return;
    }
    st->delivered++;
    uint64_t sent = (uint64_t)(uintptr_t)m->_private;
    uint64_t now = now_ns() - st->t0;
    hist_add(&st->lat, now > sent ? (now - sent) / 1000u : 0);
}

/* Report a transactional API error; returns 1 on error. */
static int txn_call(rd_kafka_error_t *e, const char *what) {
    if (!e)
        return 0;
    fprintf(stderr, "loadgen: %s transaction: %s\n", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return 1;
}

static int run_produce(const opts *o) {
    char err[512];
    static prod_state st;
    rd_kafka_conf_t *conf = conf_new(o);
    long msg_max = o->batch_bytes > 1000000 ? o->batch_bytes : 1000000;
    if ((long)o->size + 1024 > msg_max)
        msg_max = (long)o->size + 1024;
    if (conf_set(conf, "bootstrap.servers", o->bootstrap) ||
        conf_set(conf, "acks", o->acks) ||
        conf_set_int(conf, "linger.ms", o->linger_ms) ||
        conf_set_int(conf, "message.max.bytes", msg_max) ||
        conf_set_int(conf, "batch.size", o->batch_bytes) ||
        conf_set(conf, "compression.codec", o->compression) ||
        conf_set_int(conf, "message.timeout.ms", o->timeout_ms) ||
        conf_set(conf, "enable.idempotence",
                 o->idempotent || o->txn_records ? "true" : "false") ||
        conf_set(conf, "client.id", "cairn-loadgen")) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    char txn_id[64];
    snprintf(txn_id, sizeof txn_id, "cairn-loadgen-%d", (int)getpid());
    if (o->txn_records && conf_set(conf, "transactional.id", txn_id)) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, &st);

    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "loadgen: rd_kafka_new: %s\n", err);
        return 2;
    }
    if (create_topic(rk, o->topic, o->partitions)) {
        rd_kafka_destroy(rk);
        return 2;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (!rkt) {
        fprintf(stderr, "loadgen: topic_new: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return 2;
    }

    if (o->txn_records && (txn_call(rd_kafka_init_transactions(rk, 30000), "init") ||
                           txn_call(rd_kafka_begin_transaction(rk), "begin"))) {
        rd_kafka_destroy(rk);
        return 2;
    }
    long long txns = 0;

    /* One shared payload, incompressible (xorshift bytes), never copied. */
    size_t psize = (size_t)o->size;
    char *payload = malloc(psize ? psize : 1);
    if (!payload) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 2;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < psize; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        payload[i] = (char)(x >> 24);
    }

    st.t0 = now_ns();
    long long sent = 0, queue_full = 0, produce_errors = 0;
    uint64_t next_progress = st.t0 + 5000000000ull;
    while (sent < o->records && !g_stop) {
        uintptr_t ts = (uintptr_t)(now_ns() - st.t0);
        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, payload, psize, NULL, 0,
                             (void *)ts) == -1) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                queue_full++;
                rd_kafka_poll(rk, 5);
                continue;
            }
            if (produce_errors++ < 5)
                diag("produce failed: %s", rd_kafka_err2str(e));
            if (produce_errors > 1000) {
                diag("too many produce errors, giving up");
                break;
            }
            rd_kafka_poll(rk, 10);
            continue;
        }
        sent++;
        if (o->txn_records && sent % o->txn_records == 0) {
            /* commit waits for this transaction's deliveries */
            if (txn_call(rd_kafka_commit_transaction(rk, o->timeout_ms), "commit"))
                break;
            txns++;
            if (sent < o->records && txn_call(rd_kafka_begin_transaction(rk), "begin"))
                break;
        }
        if ((sent & 1023) == 0) {
            rd_kafka_poll(rk, 0);
            uint64_t t = now_ns();
            if (t > next_progress) {
                diag("progress: %lld enqueued, %lld delivered, %lld errors", sent,
                     st.delivered, st.errors);
                next_progress = t + 5000000000ull;
            }
        }
    }
    if (o->txn_records && sent % o->txn_records != 0 &&
        !txn_call(rd_kafka_commit_transaction(rk, o->timeout_ms), "commit"))
        txns++;
    if (o->txn_records)
        diag("%lld transaction(s) committed", txns);
    /* Wait for outstanding deliveries: message.timeout.ms bounds each record,
     * so this returns; the extra margin covers the last batch's round trip. */
    rd_kafka_resp_err_t ferr = RD_KAFKA_RESP_ERR_NO_ERROR;
    while (!g_stop) {
        ferr = rd_kafka_flush(rk, 1000);
        if (ferr != RD_KAFKA_RESP_ERR__TIMED_OUT)
            break;
        if (now_ns() - st.t0 > (uint64_t)o->timeout_ms * 1000000ull * 4 + 60000000000ull)
            break;
    }
    uint64_t t1 = now_ns();
    int outstanding = rd_kafka_outq_len(rk);
    double secs = (double)(t1 - st.t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;

    long long failed = st.errors + produce_errors + (sent - st.delivered - st.errors);
    double bytes = (double)st.delivered * (double)psize;
    double rps = (double)st.delivered / secs;
    double mbps = bytes / secs / 1e6;
    double p50 = (double)hist_pct(&st.lat, 50) / 1000.0;
    double p99 = (double)hist_pct(&st.lat, 99) / 1000.0;
    double pmax = (double)st.lat.max / 1000.0;
    double pmean = st.lat.count ? st.lat.sum / (double)st.lat.count / 1000.0 : 0;

    printf("produce topic=%s size=%ld acks=%s partitions=%d records=%lld delivered=%lld errors=%lld "
           "seconds=%.3f records/s=%.0f MB/s=%.2f latency_ms p50=%.2f p99=%.2f max=%.2f mean=%.2f%s\n",
           o->topic, o->size, o->acks, o->partitions, sent, st.delivered, failed, secs, rps, mbps,
           p50, p99, pmax, pmean, ferr || outstanding ? " (flush incomplete)" : "");
    if (failed && st.first_err[0])
        printf("produce first_error: %s\n", st.first_err);
    if (o->json) {
        printf("{\"mode\":\"produce\",\"topic\":");
        json_str(stdout, o->topic);
        printf(",\"size\":%ld,\"acks\":\"%s\",\"partitions\":%d,\"linger_ms\":%d,\"batch_bytes\":%ld,"
               "\"compression\":",
               o->size, o->acks, o->partitions, o->linger_ms, o->batch_bytes);
        json_str(stdout, o->compression);
        printf(",\"records\":%lld,\"requested\":%lld,\"delivered\":%lld,\"errors\":%lld,"
               "\"queue_full\":%lld,\"outstanding\":%d,\"bytes\":%.0f,\"seconds\":%.6f,"
               "\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
               "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},"
               "\"first_error\":",
               sent, o->records, st.delivered, failed, queue_full, outstanding, bytes, secs, rps,
               mbps, p50, p99, (double)hist_pct(&st.lat, 99.9) / 1000.0, pmax, pmean);
        json_str(stdout, st.first_err);
        printf("}\n");
    }
    fflush(stdout);

    rd_kafka_topic_destroy(rkt);
    if (outstanding)
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk);
    free(payload);
    return (failed == 0 && st.delivered == o->records) ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* Consume */

#define BATCH 4096

static int run_consume(const opts *o) {
    char err[512];
    rd_kafka_conf_t *conf = conf_new(o);
    /* No group: nothing to join, nothing to commit. fetch.message.max.bytes
     * (max.partition.fetch.bytes) at 4 MiB lets one fetch carry a few batches. */
    if (conf_set(conf, "bootstrap.servers", o->bootstrap) ||
        conf_set(conf, "enable.auto.commit", "false") ||
        conf_set(conf, "enable.auto.offset.store", "false") ||
        conf_set(conf, "enable.partition.eof", "false") ||
        conf_set(conf, "max.partition.fetch.bytes", "4194304") ||
        conf_set(conf, "queued.min.messages", "200000") ||
        conf_set(conf, "check.crcs", "false") ||
        conf_set(conf, "client.id", "cairn-loadgen")) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    /* Legacy per-topic commit settings: never commit, never store offsets. */
    if (rd_kafka_topic_conf_set(tconf, "auto.commit.enable", "false", err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "earliest", err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "loadgen: topic config: %s\n", err);
        rd_kafka_conf_destroy(conf);
        rd_kafka_topic_conf_destroy(tconf);
        return 2;
    }

    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "loadgen: rd_kafka_new: %s\n", err);
        rd_kafka_topic_conf_destroy(tconf);
        return 2;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, tconf);
    if (!rkt) {
        fprintf(stderr, "loadgen: topic_new: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return 2;
    }

    uint64_t t0 = now_ns();
    /* Partition count from metadata; retry briefly in case the broker is
     * still starting or the topic has no leader yet. */
    int nparts = 0;
    uint64_t md_deadline = t0 + (uint64_t)o->idle_ms * 1000000ull;
    while (!g_stop) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
            nparts = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
            break;
        }
        if (!e) {
            if (md->topic_cnt == 1)
                e = md->topics[0].err;
            rd_kafka_metadata_destroy(md);
        }
        if (now_ns() > md_deadline) {
            fprintf(stderr, "loadgen: metadata for topic '%s': %s\n", o->topic,
                    rd_kafka_err2str(e));
            break;
        }
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    if (nparts == 0) {
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 2;
    }

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < nparts; p++) {
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1) {
            fprintf(stderr, "loadgen: consume_start partition %d: %s\n", p,
                    rd_kafka_err2str(rd_kafka_last_error()));
            rd_kafka_queue_destroy(q);
            rd_kafka_topic_destroy(rkt);
            rd_kafka_destroy(rk);
            return 2;
        }
    }

    static rd_kafka_message_t *msgs[BATCH];
    long long got = 0, errors = 0;
    double bytes = 0;
    uint64_t t_first = 0, t_last = 0, last_activity = now_ns();
    uint64_t next_progress = last_activity + 5000000000ull;
    char first_err[256] = "";
    while (got < o->records && !g_stop) {
        long long want = o->records - got;
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, want < BATCH ? (size_t)want : BATCH);
        uint64_t t = now_ns();
        if (n < 0) {
            if (errors++ == 0)
                snprintf(first_err, sizeof first_err, "%s",
                         rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    if (errors++ == 0)
                        snprintf(first_err, sizeof first_err, "%s: %s",
                                 rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
                    if (errors <= 5)
                        diag("consume error: %s", rd_kafka_message_errstr(m));
                }
            } else {
                got++;
                bytes += (double)m->len;
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0) {
            if (!t_first)
                t_first = t;
            t_last = t;
            last_activity = t;
        } else if (t - last_activity > (uint64_t)o->idle_ms * 1000000ull) {
            diag("no records for %d ms, stopping at %lld/%lld", o->idle_ms, got, o->records);
            break;
        }
        if (t > next_progress) {
            diag("progress: %lld/%lld records", got, o->records);
            next_progress = t + 5000000000ull;
        }
    }
    if (!t_last)
        t_last = now_ns();
    for (int p = 0; p < nparts; p++)
        rd_kafka_consume_stop(rkt, p);

    /* Elapsed from consume start (incl. metadata and connect) to the last
     * record; an idle tail is not counted. */
    double secs = (double)(t_last - t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    double first_ms = t_first ? (double)(t_first - t0) / 1e6 : 0;
    double rps = (double)got / secs;
    double mbps = bytes / secs / 1e6;
    printf("consume topic=%s size=%ld partitions=%d records=%lld errors=%lld seconds=%.3f "
           "records/s=%.0f MB/s=%.2f first_record_ms=%.1f%s\n",
           o->topic, o->size, nparts, got, errors, secs, rps, mbps, first_ms,
           got < o->records ? " (incomplete)" : "");
    if (errors && first_err[0])
        printf("consume first_error: %s\n", first_err);
    if (o->json) {
        printf("{\"mode\":\"consume\",\"topic\":");
        json_str(stdout, o->topic);
        printf(",\"size\":%ld,\"partitions\":%d,\"records\":%lld,\"requested\":%lld,"
               "\"errors\":%lld,\"bytes\":%.0f,\"seconds\":%.6f,\"records_per_sec\":%.1f,"
               "\"mb_per_sec\":%.3f,\"first_record_ms\":%.3f,\"first_error\":",
               o->size, nparts, got, o->records, errors, bytes, secs, rps, mbps, first_ms);
        json_str(stdout, first_err);
        printf("}\n");
    }
    fflush(stdout);

    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return got >= o->records ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* End to end: a producer thread paces records at --rate (each carries its
 * send time, lg_stamp), the main thread consumes them from the start of a
 * fresh topic; latency = send -> receive. Reported through lg_report(). */

typedef struct e2e_prod {
    const opts *o;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    long long sent, failed;
} e2e_prod;

static void e2e_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    e2e_prod *p = opaque;
    if (m->err)
        p->failed++;
}

static void *e2e_produce(void *arg) {
    e2e_prod *p = arg;
    const opts *o = p->o;
    char *payload = lg_payload_new(o->size);
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    for (long long i = 0; i < o->records && !g_stop; i++) {
        lg_pace(t0, i, o->rate);
        uint64_t now = lg_now_ns();
        if (now > deadline)
            break;
        lg_stamp(payload, o->size, now);
        while (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)o->size, NULL, 0, NULL) == -1 && !g_stop)
            rd_kafka_poll(p->rk, 5);
        p->sent++;
        rd_kafka_poll(p->rk, 0);
    }
    while (!g_stop && rd_kafka_flush(p->rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT &&
           lg_now_ns() < deadline + 10000000000ull) {
    }
    free(payload);
    return NULL;
}

static int run_e2e(const opts *o) {
    char err[512];
    static e2e_prod p;
    static lg_hist lat;
    p.o = o;
    rd_kafka_conf_t *pc = conf_new(o);
    if (conf_set(pc, "bootstrap.servers", o->bootstrap) || conf_set(pc, "acks", o->acks) ||
        conf_set_int(pc, "linger.ms", o->linger_ms) || conf_set_int(pc, "batch.size", o->batch_bytes) ||
        conf_set(pc, "enable.idempotence", "false") || conf_set(pc, "client.id", "cairn-loadgen")) {
        rd_kafka_conf_destroy(pc);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, e2e_dr);
    rd_kafka_conf_set_error_cb(pc, error_cb);
    rd_kafka_conf_set_opaque(pc, &p);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (!p.rk) {
        fprintf(stderr, "loadgen: rd_kafka_new: %s\n", err);
        return 2;
    }
    if (create_topic(p.rk, o->topic, o->partitions > 0 ? o->partitions : 1))
        return 2;
    p.rkt = rd_kafka_topic_new(p.rk, o->topic, NULL);

    rd_kafka_conf_t *cc = conf_new(o);
    if (conf_set(cc, "bootstrap.servers", o->bootstrap) || conf_set(cc, "enable.auto.commit", "false") ||
        conf_set(cc, "enable.partition.eof", "false") || conf_set(cc, "fetch.wait.max.ms", "100") ||
        conf_set(cc, "fetch.error.backoff.ms", "10") || conf_set(cc, "client.id", "cairn-loadgen")) {
        rd_kafka_conf_destroy(cc);
        return 2;
    }
    rd_kafka_conf_set_error_cb(cc, error_cb);
    rd_kafka_t *ck = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (!ck) {
        fprintf(stderr, "loadgen: rd_kafka_new: %s\n", err);
        return 2;
    }
    rd_kafka_topic_t *ckt = rd_kafka_topic_new(ck, o->topic, NULL);
    int nparts = o->partitions > 0 ? o->partitions : 1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(ck);
    for (int i = 0; i < nparts; i++)
        rd_kafka_consume_start_queue(ckt, i, RD_KAFKA_OFFSET_BEGINNING, q);

    /* Warm up before the first record: the consumer has its metadata, its
     * connection and a fetch in flight (the peers' consumers are ready when
     * their subscribe call returns), so startup is not counted as latency. */
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(ck, 0, ckt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    for (uint64_t w = lg_now_ns() + 500000000ull; lg_now_ns() < w && !g_stop;) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 50);
        if (m)
            rd_kafka_message_destroy(m);
    }
    pthread_t th;
    pthread_create(&th, NULL, e2e_produce, &p);
    long long got = 0, errors = 0;
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9), last = t0, t_last = t0;
    /* One message per call: rd_kafka_consume_batch_queue() waits for a full
     * batch or its timeout, which would add up to the timeout to latency. */
    while (got < o->records && !g_stop) {
        rd_kafka_message_t *one = rd_kafka_consume_queue(q, 100);
        ssize_t n = one ? 1 : 0;
        uint64_t now = lg_now_ns();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = one;
            if (!m->err) {
                uint64_t sent = lg_stamp_read(m->payload, m->len);
                lg_hist_add(&lat, now > sent ? (now - sent) / 1000u : 0);
                got++;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                errors++;
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0)
            last = t_last = now;
        if (now > deadline || now - last > (uint64_t)o->idle_ms * 1000000u)
            break;
    }
    pthread_join(th, NULL);
    for (int i = 0; i < nparts; i++)
        rd_kafka_consume_stop(ckt, i);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(ckt);
    rd_kafka_destroy(ck);
    rd_kafka_topic_destroy(p.rkt);
    rd_kafka_destroy(p.rk);

    lg_opts lo = {.mode = LG_E2E, .addr = o->bootstrap, .topic = o->topic, .records = o->records,
                  .size = o->size, .partitions = nparts, .durable = !strcmp(o->acks, "all"),
                  .rate = o->rate, .json = o->json, .system = "cairn"};
    lg_result r = {got, errors + p.failed, (double)(t_last - t0) / 1e9, &lat, NULL};
    return lg_report(&lo, &r);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    g_quiet = o.quiet;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!strcmp(o.mode, "produce"))
        return run_produce(&o);
    if (!strcmp(o.mode, "e2e"))
        return o.size >= 8 ? run_e2e(&o) : 2;
    return run_consume(&o);
}
