/* Shared option parsing, clock, payload, pacing, histogram and report code for
 * every load generator (see lg_common.h). */
#include "lg_common.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile int lg_stop;
static int g_quiet;

static void on_signal(int sig) {
    (void)sig;
    lg_stop = 1;
}

void lg_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

uint64_t lg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lg_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !lg_stop) {
    }
}

void lg_set_quiet(int quiet) { g_quiet = quiet; }

void lg_diag(const char *fmt, ...) {
    if (g_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *lg_mode_name(lg_mode m) {
    return m == LG_PRODUCE ? "produce" : m == LG_CONSUME ? "consume" : "e2e";
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

static void usage(FILE *f, const char *system, const char *extra) {
    fprintf(f,
            "usage: (%s) produce|consume|e2e --addr HOST:PORT --topic T --records N --size BYTES\n"
            "          [--partitions 1] [--durable] [--rate R] [--max-seconds 60] [--idle-ms 10000]\n"
            "          [--window 1000] [--json] [--quiet]%s\n"
            "  produce: send N records (paced at R/s if --rate), report acked records/s and\n"
            "           send->ack latency\n"
            "  consume: read N records from the start of every partition\n"
            "  e2e:     produce N records at --rate R while consuming them; report\n"
            "           send->receive latency (p50/p99/p99.9)\n",
            system, extra ? extra : "");
}

int lg_parse(int argc, char **argv, lg_opts *o, const char *system, const char *usage_extra,
             lg_extra_opt_fn extra, void *arg) {
    memset(o, 0, sizeof *o);
    o->system = system;
    o->partitions = 1;
    o->max_seconds = 60;
    o->idle_ms = 10000;
    o->window = 1000;
    o->records = -1;
    o->size = -1;
    if (argc < 2) {
        usage(stderr, system, usage_extra);
        return -1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout, system, usage_extra);
        exit(0);
    }
    if (!strcmp(argv[1], "produce")) o->mode = LG_PRODUCE;
    else if (!strcmp(argv[1], "consume")) o->mode = LG_CONSUME;
    else if (!strcmp(argv[1], "e2e")) o->mode = LG_E2E;
    else {
        fprintf(stderr, "loadgen: unknown mode '%s'\n", argv[1]);
        usage(stderr, system, usage_extra);
        return -1;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v;
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--durable")) { o->durable = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout, system, usage_extra); exit(0); }
        if (extra) {
            int used = 0;
            int rc = extra(a, val, &used, arg);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                i += used;
                continue;
            }
        }
        if (!val) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--addr") || !strcmp(a, "--bootstrap")) { o->addr = val; continue; }
        if (!strcmp(a, "--topic")) { o->topic = val; continue; }
        if (!strcmp(a, "--max-seconds")) {
            char *end;
            o->max_seconds = strtod(val, &end);
            if (end == val || *end || o->max_seconds <= 0) {
                fprintf(stderr, "loadgen: bad value for --max-seconds: '%s'\n", val);
                return -1;
            }
            continue;
        }
        long long lo = 0, hi = INT32_MAX;
        if (!strcmp(a, "--records")) { lo = 1; hi = INT64_MAX / 2; }
        else if (!strcmp(a, "--size")) { hi = 64 << 20; }
        else if (!strcmp(a, "--partitions")) { lo = 1; hi = 1024; }
        else if (!strcmp(a, "--rate")) { hi = 100000000; }
        else if (!strcmp(a, "--idle-ms") || !strcmp(a, "--window")) { lo = 1; }
        else {
            fprintf(stderr, "loadgen: unknown option '%s'\n", a);
            usage(stderr, system, usage_extra);
            return -1;
        }
        if (parse_ll(val, lo, hi, &v)) {
            fprintf(stderr, "loadgen: bad value for %s: '%s'\n", a, val);
            return -1;
        }
        if (!strcmp(a, "--records")) o->records = v;
        else if (!strcmp(a, "--size")) o->size = (long)v;
        else if (!strcmp(a, "--partitions")) o->partitions = (int)v;
        else if (!strcmp(a, "--rate")) o->rate = v;
        else if (!strcmp(a, "--idle-ms")) o->idle_ms = (int)v;
        else o->window = (long)v;
    }
    if (!o->addr || !o->topic || o->records < 0 || o->size < 0) {
        fprintf(stderr, "loadgen: --addr, --topic, --records and --size are required\n");
        usage(stderr, system, usage_extra);
        return -1;
    }
    if (o->mode == LG_E2E && o->size < 8) {
        fprintf(stderr, "loadgen: e2e needs --size >= 8 (the send time rides in the payload)\n");
        return -1;
    }
    g_quiet = o->quiet;
    return 0;
}

const char *lg_part_name(const lg_opts *o, int i, char *buf, size_t buf_len) {
    snprintf(buf, buf_len, "%s.%d", o->topic, i);
    return buf;
}

char *lg_payload_new(long size) {
    size_t n = size > 0 ? (size_t)size : 1;
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(2);
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (char)(x >> 24);
    }
    return p;
}

void lg_stamp(char *payload, long size, uint64_t ns) {
    if (size < 8)
        return;
    for (int i = 0; i < 8; i++)
        payload[i] = (char)(ns >> (8 * i));
}

uint64_t lg_stamp_read(const void *payload, size_t len) {
    if (len < 8)
        return 0;
    const unsigned char *p = payload;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void lg_pace(uint64_t t0, long long i, long long rate) {
    if (rate <= 0)
        return;
    uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)rate);
    uint64_t now = lg_now_ns();
    if (due > now && !lg_stop)
        lg_sleep_ns(due - now);
}

static unsigned hist_index(uint64_t v) {
    if (v < LG_SUB_COUNT)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - LG_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) & (LG_SUB_COUNT - 1);
    return (shift + 1) * LG_SUB_COUNT + sub;
}

static uint64_t hist_upper(unsigned i) {
    if (i < LG_SUB_COUNT)
        return i;
    unsigned shift = i / LG_SUB_COUNT - 1;
    uint64_t sub = i % LG_SUB_COUNT;
    uint64_t lo = (LG_SUB_COUNT + sub) << shift;
    return lo + ((uint64_t)1 << shift) - 1;
}

void lg_hist_add(lg_hist *h, uint64_t v) {
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

uint64_t lg_hist_pct(const lg_hist *h, double p) {
    if (!h->count)
        return 0;
    double r = p / 100.0 * (double)h->count;
    uint64_t want = (uint64_t)r;
    if ((double)want < r)
        want++;
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int lg_report(const lg_opts *o, const lg_result *r) {
    double secs = r->seconds > 0 ? r->seconds : 1e-9;
    double rps = (double)r->records / secs;
    double mbps = rps * (double)o->size / 1e6;
    const lg_hist *h = r->lat;
    double p50 = 0, p99 = 0, p999 = 0, pmax = 0, mean = 0;
    if (h && h->count) {
        p50 = (double)lg_hist_pct(h, 50);
        p99 = (double)lg_hist_pct(h, 99);
        p999 = (double)lg_hist_pct(h, 99.9);
        pmax = (double)h->max;
        mean = h->sum / (double)h->count;
    }
    printf("%s %s topic=%s size=%ld partitions=%d durable=%d rate=%lld requested=%lld records=%lld "
           "errors=%lld seconds=%.3f records/s=%.0f MB/s=%.2f latency_us p50=%.0f p99=%.0f "
           "p99.9=%.0f max=%.0f%s%s\n",
           o->system, lg_mode_name(o->mode), o->topic, o->size, o->partitions, o->durable, o->rate,
           o->records, r->records, r->errors, secs, rps, mbps, p50, p99, p999, pmax,
           r->note && *r->note ? " note=" : "", r->note ? r->note : "");
    if (o->json) {
        printf("{\"system\":");
        json_str(stdout, o->system);
        printf(",\"mode\":\"%s\",\"topic\":", lg_mode_name(o->mode));
        json_str(stdout, o->topic);
        printf(",\"size\":%ld,\"partitions\":%d,\"durable\":%d,\"rate\":%lld,\"requested\":%lld,"
               "\"records\":%lld,\"errors\":%lld,\"seconds\":%.6f,\"records_per_sec\":%.1f,"
               "\"mb_per_sec\":%.3f,\"latency_us\":{\"count\":%llu,\"p50\":%.0f,\"p99\":%.0f,"
               "\"p999\":%.0f,\"max\":%.0f,\"mean\":%.1f},\"note\":",
               o->size, o->partitions, o->durable, o->rate, o->records, r->records, r->errors, secs,
               rps, mbps, h ? (unsigned long long)h->count : 0ull, p50, p99, p999, pmax, mean);
        json_str(stdout, r->note);
        printf("}\n");
    }
    fflush(stdout);
    return (r->records >= o->records && r->errors == 0) ? 0 : 1;
}
