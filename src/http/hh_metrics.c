/* GET /metrics: Prometheus text exposition format 0.0.4
 * (Content-Type text/plain; version=0.0.4). Names follow Prometheus
 * conventions: a cairn_ prefix, base units in the name (_bytes, _seconds),
 * _total for counters; the process metrics use the standard process_*
 * names client libraries export, so stock dashboards find them. Label
 * values are escaped (\\, \", \n).
 *
 * Families, one section (function) each, in output order:
 *   process     cairn_build_info, cairn_uptime_seconds,
 *               process_resident_memory_bytes, process_virtual_memory_bytes
 *               (/proc/self/statm), process_open_fds (/proc/self/fd)
 *   listeners   cairn_connections{protocol,listener},
 *               cairn_connections_accepted_total{protocol,listener}
 *   partitions  cairn_topics, cairn_partition_log_start_offset,
 *               cairn_partition_log_end_offset, cairn_partition_high_watermark,
 *               cairn_partition_size_bytes, cairn_produced_records_total,
 *               cairn_produced_bytes_total, cairn_read_bytes_total,
 *               cairn_read_records_total (records decoded for a reader: the
 *               HTTP front end counts them; Kafka's zero-copy fetch adds
 *               bytes only), each {topic,partition}
 *   groups      cairn_group_committed_offset and cairn_group_lag
 *               {group,topic,partition} (lag: high watermark - committed)
 *   http        cairn_http_requests_total{route,code_class}
 *   cluster     (a cluster node only) cairn_cluster_nodes,
 *               cairn_cluster_node_up{node} (1: this node, or a peer with a
 *               live connection), cairn_cluster_controller (its node id, -1
 *               while none), cairn_cluster_leader_partitions (replicated
 *               partitions this node leads), cairn_cluster_under_replicated_partitions
 *               (of those, with fewer in-sync replicas than replicas: Kafka's
 *               UnderReplicatedPartitions), cairn_cluster_leaderless_partitions
 *               (no leader known here); per replicated partition
 *               {topic,partition}: cairn_partition_leader (node id, -1),
 *               cairn_partition_leader_epoch, cairn_partition_replicas,
 *               cairn_partition_in_sync_replicas (on its leader only),
 *               cairn_partition_leader_changes_total (new leaders learnt of)
 *   webhooks    cairn_webhook_subscriptions; per subscription
 *               {subscription,event_type}: cairn_webhook_deliveries_total
 *               (answered 2xx), cairn_webhook_failed_attempts_total,
 *               cairn_webhook_retries_total, cairn_webhook_dead_letters_total
 *               (since start), cairn_webhook_lag (events not yet delivered);
 *               and the same four counters summed over every subscription,
 *               deleted ones included, as cairn_webhook_*_all_total
 *   sse         cairn_http_sse_streams (open now), cairn_http_sse_streams_total,
 *               cairn_http_sse_events_total, cairn_http_sse_backpressure_pauses_total
 *               (a stream stopped reading the log for a slow client),
 *               cairn_http_sse_buffered_bytes (unsent bytes queued for streams)
 *   http        (also) cairn_http_request_duration_seconds{route}, a
 *               histogram from the request's arrival to hh_reply
 *   log         cairn_log_fsync_duration_seconds (one sync job on a syncer
 *               thread), cairn_log_group_commit_bytes and
 *               cairn_log_group_commit_records (what one partition job made
 *               durable): histograms from log_syncer_stats (log.h), through
 *               broker_sync_stats
 *   front ends  what each front end reports through its server row's metrics
 *               hook (srv_metrics; this file is the sink): Kafka's
 *               cairn_kafka_request_duration_seconds{api}, AMQP's
 *               cairn_amqp_queues and cairn_amqp_queue_*{queue}
 * Histograms (util/hist.h; bucket bounds documented there) are written as
 * cumulative _bucket{le} counts ending in le="+Inf" (== _count), _sum in
 * the exposition unit (seconds, bytes, records) and _count; a labelled
 * histogram appears once its first value was observed. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_int.h"

typedef struct mout {
    srv_metrics_sink sink;       /* first: the front ends' hooks get &m->sink */
    wbuf w;
} mout;

static void mprintf(mout *m, const char *fmt, ...) CN_PRINTF(2, 3);
static void mprintf(mout *m, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(buf)) {
        wbuf_append(&m->w, buf, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    wbuf_append(&m->w, big, (size_t)n);
    free(big);
}

static void family(mout *m, const char *name, const char *type, const char *help)
{
    mprintf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped, into buf (truncated to fit). */
static const char *esc(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            buf[k++] = '\\';
            buf[k++] = *s;
        } else if (*s == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = '\0';
    return buf;
}

/* labels[0..2n) as `k="v",` pairs (values escaped) into buf; "" for none. */
static const char *label_text(const char *const *labels, int n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < cap; i++) {
        char v[512];
        int w = snprintf(buf + k, cap - k, "%s=\"%s\",", labels[2 * i],
                         esc(labels[2 * i + 1], v, sizeof(v)));
        if (w < 0 || (size_t)w >= cap - k) {
            buf[k] = '\0';
            break;
        }
        k += (size_t)w;
    }
    return buf;
}

/* One histogram's samples: cumulative _bucket{le} counts (+Inf == _count),
 * _sum in the exposition unit, _count. lt: label_text output. */
static void hist_samples(mout *m, const char *name, const char *lt, const hist *h)
{
    const hist_spec *sp = h->spec;
    uint64_t cum = 0;
    for (int i = 0; i < sp->n_bounds; i++) {
        cum += h->buckets[i];
        mprintf(m, "%s_bucket{%sle=\"%s\"} %llu\n", name, lt, sp->le[i], (unsigned long long)cum);
    }
    cum += h->buckets[sp->n_bounds];
    mprintf(m, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lt, (unsigned long long)cum);
    size_t n = strlen(lt);
    char braces[1100];
    snprintf(braces, sizeof(braces), n ? "{%.*s}" : "%.*s", (int)(n ? n - 1 : 0), lt);
    if (sp->scale == 1.0)
        mprintf(m, "%s_sum%s %lld\n", name, braces, (long long)h->sum);
    else
        mprintf(m, "%s_sum%s %.10g\n", name, braces, (double)h->sum * sp->scale);
    mprintf(m, "%s_count%s %llu\n", name, braces, (unsigned long long)h->count);
}

/* The sink front ends report through (srv_metrics). */
static void sink_family(srv_metrics_sink *sk, const char *name, const char *type, const char *help)
{
    family((mout *)sk, name, type, help);
}

static void sink_value(srv_metrics_sink *sk, const char *name, const char *const *labels,
                       int n_labels, int64_t v)
{
    char lt[1100];
    label_text(labels, n_labels, lt, sizeof(lt));
    size_t n = strlen(lt);
    if (n)
        mprintf((mout *)sk, "%s{%.*s} %lld\n", name, (int)n - 1, lt, (long long)v);
    else
        mprintf((mout *)sk, "%s %lld\n", name, (long long)v);
}

static void sink_histogram(srv_metrics_sink *sk, const char *name, const char *const *labels,
                           int n_labels, const hist *h)
{
    char lt[1100];
    hist_samples((mout *)sk, name, label_text(labels, n_labels, lt, sizeof(lt)), h);
}

/* process --------------------------------------------------------------------- */

static void sec_process(mout *m, hsrv *hs)
{
    family(m, "cairn_build_info", "gauge", "Cairn version; always 1.");
    mprintf(m, "cairn_build_info{version=\"%s\"} 1\n", CAIRN_VERSION);
    int64_t since = hs->server ? srv_started_ms(hs->server) : hs->created_ms;
    family(m, "cairn_uptime_seconds", "gauge", "Seconds since the server started serving.");
    mprintf(m, "cairn_uptime_seconds %.3f\n", (double)(loop_now_mono() - since) / 1000.0);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &vsz, &rss) != 2)
            vsz = rss = 0;
        fclose(f);
    }
    family(m, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    mprintf(m, "process_resident_memory_bytes %llu\n", (unsigned long long)rss * (unsigned long long)page);
    family(m, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    mprintf(m, "process_virtual_memory_bytes %llu\n", (unsigned long long)vsz * (unsigned long long)page);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory stream's own */
    }
    family(m, "process_open_fds", "gauge", "Number of open file descriptors.");
    mprintf(m, "process_open_fds %d\n", fds);
}

/* listeners ------------------------------------------------------------------- */

static void sec_listeners(mout *m, hsrv *hs)
{
    srv_listener_info info[32];
    int n = hs->server ? srv_listeners(hs->server, info, 32) : 0;
    if (n > 32)
        n = 32;
    char h[128];
    family(m, "cairn_connections", "gauge", "Client connections open, per listener.");
    for (int i = 0; i < n; i++)
        mprintf(m, "cairn_connections{protocol=\"%s\",listener=\"%s:%d\"} %d\n", info[i].frontend,
                esc(info[i].host, h, sizeof(h)), info[i].port, info[i].conns_open);
    family(m, "cairn_connections_accepted_total", "counter",
           "Client connections accepted since start, per listener.");
    for (int i = 0; i < n; i++)
        mprintf(m, "cairn_connections_accepted_total{protocol=\"%s\",listener=\"%s:%d\"} %llu\n",
                info[i].frontend, esc(info[i].host, h, sizeof(h)), info[i].port,
                (unsigned long long)info[i].conns_accepted);
}

/* partitions ------------------------------------------------------------------ */

enum { PM_START, PM_END, PM_HW, PM_SIZE, PM_PROD_REC, PM_PROD_BYTES, PM_READ_BYTES,
       PM_READ_REC, PM__COUNT };

static const struct {
    const char *name, *type, *help;
} pmetrics[PM__COUNT] = {
    [PM_START] = {"cairn_partition_log_start_offset", "gauge", "First offset kept."},
    [PM_END] = {"cairn_partition_log_end_offset", "gauge", "Offset the next record gets."},
    [PM_HW] = {"cairn_partition_high_watermark", "gauge", "Offsets below it are readable."},
    [PM_SIZE] = {"cairn_partition_size_bytes", "gauge", "Bytes of the partition's segments."},
    [PM_PROD_REC] = {"cairn_produced_records_total", "counter",
                     "Records stored by producers (any front end) since start."},
    [PM_PROD_BYTES] = {"cairn_produced_bytes_total", "counter",
                       "Bytes of record batches stored by producers since start."},
    [PM_READ_BYTES] = {"cairn_read_bytes_total", "counter",
                       "Bytes of stored batches sent or decoded for readers since start."},
    [PM_READ_REC] = {"cairn_read_records_total", "counter",
                     "Records decoded for readers since start (HTTP reads; Kafka fetches are "
                     "zero-copy and count bytes only)."},
};

static int64_t pvalue(partition *p, int k)
{
    switch (k) {
    case PM_START: return log_start_offset(p->log);
    case PM_END: return log_end_offset(p->log);
    case PM_HW: return log_high_watermark(p->log);
    case PM_SIZE: return log_size_bytes(p->log);
    case PM_PROD_REC: return p->produced_records;
    case PM_PROD_BYTES: return p->produced_bytes;
    case PM_READ_BYTES: return p->read_bytes;
    default: return p->read_records;
    }
}

static void sec_partitions(mout *m, hsrv *hs)
{
    family(m, "cairn_topics", "gauge", "Topics.");
    mprintf(m, "cairn_topics %d\n", broker_topic_count(hs->b));
    char tn[600];
    for (int k = 0; k < PM__COUNT; k++) {
        family(m, pmetrics[k].name, pmetrics[k].type, pmetrics[k].help);
        for (topic *t = broker_topics(hs->b); t; t = t->lnext) {
            esc(t->name, tn, sizeof(tn));
            for (int32_t i = 0; i < t->n_parts; i++)
                mprintf(m, "%s{topic=\"%s\",partition=\"%d\"} %lld\n", pmetrics[k].name, tn, i,
                        (long long)pvalue(t->parts[i], k));
        }
    }
}

/* cluster --------------------------------------------------------------------- */

typedef struct cl_counts {
    int leading, under, leaderless;
} cl_counts;

static int in_sync_count(partition *p, const int32_t *ids, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += broker_partition_in_sync(p, ids[i]) == 1;
    return k;
}

static void sec_cluster(mout *m, hsrv *hs)
{
    cluster *cl = hs->core->cl;
    if (!cl)
        return;
    int nn = 0;
    cluster_node_ids(cl, &nn);
    family(m, "cairn_cluster_nodes", "gauge", "Nodes of the cluster.");
    mprintf(m, "cairn_cluster_nodes %d\n", nn);
    family(m, "cairn_cluster_node_up", "gauge",
           "1 for this node and each peer with a live cluster connection.");
    for (int i = 0; i < nn; i++) {
        cluster_member mb = cluster_member_at(cl, i);
        mprintf(m, "cairn_cluster_node_up{node=\"%d\"} %d\n", mb.id, mb.connected);
    }
    family(m, "cairn_cluster_controller", "gauge", "The controller's node id, -1 while none.");
    mprintf(m, "cairn_cluster_controller %d\n", cluster_controller(cl));
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"cairn_partition_leader", "gauge", "Node id of the partition's leader, -1 while none."},
        {"cairn_partition_leader_epoch", "gauge", "The partition's leader epoch (Raft term)."},
        {"cairn_partition_replicas", "gauge", "Replicas of the partition."},
        {"cairn_partition_in_sync_replicas", "gauge",
         "Replicas in sync (reported by the partition's leader only)."},
        {"cairn_partition_leader_changes_total", "counter",
         "New leaders of the partition this node learnt of since start."},
    };
    cl_counts cc = {0};
    char tn[600];
    for (int k = 0; k < (int)CN_ARRAY_LEN(fam); k++) {
        family(m, fam[k].name, fam[k].type, fam[k].help);
        for (topic *t = broker_topics(hs->b); t; t = t->lnext) {
            esc(t->name, tn, sizeof(tn));
            for (int32_t i = 0; i < t->n_parts; i++) {
                partition *p = t->parts[i];
                if (!broker_partition_replicated(p))
                    continue;
                int32_t ids[64];
                int n = broker_partition_replicas(p, ids, (int)CN_ARRAY_LEN(ids));
                n = CN_MIN(n, (int)CN_ARRAY_LEN(ids));
                int32_t leader = broker_partition_leader(p);
                int lead = broker_partition_is_leader(p);
                long long v;
                if (k == 0) {
                    v = leader;
                    cc.leading += lead;
                    cc.leaderless += leader < 0;
                } else if (k == 1) {
                    v = broker_partition_epoch(p);
                } else if (k == 2) {
                    v = n;
                } else if (k == 3) {
                    if (!lead)
                        continue;
                    v = in_sync_count(p, ids, n);
                    cc.under += v < n;
                } else {
                    v = p->leader_changes;
                }
                mprintf(m, "%s{topic=\"%s\",partition=\"%d\"} %lld\n", fam[k].name, tn, i, v);
            }
        }
    }
    family(m, "cairn_cluster_leader_partitions", "gauge", "Replicated partitions this node leads.");
    mprintf(m, "cairn_cluster_leader_partitions %d\n", cc.leading);
    family(m, "cairn_cluster_under_replicated_partitions", "gauge",
           "Partitions this node leads with fewer replicas in sync than replicas.");
    mprintf(m, "cairn_cluster_under_replicated_partitions %d\n", cc.under);
    family(m, "cairn_cluster_leaderless_partitions", "gauge",
           "Replicated partitions without a known leader here.");
    mprintf(m, "cairn_cluster_leaderless_partitions %d\n", cc.leaderless);
}

/* groups ---------------------------------------------------------------------- */

typedef struct gctx {
    mout *m;
    hsrv *hs;
    const char *group;
    int lag;                     /* 0: committed offsets pass, 1: lag pass */
} gctx;

static void group_offset(void *arg, const char *tname, int32_t part, const goff_entry *e)
{
    gctx *g = arg;
    char gn[600], tn[600];
    esc(g->group, gn, sizeof(gn));
    esc(tname, tn, sizeof(tn));
    if (!g->lag) {
        mprintf(g->m, "cairn_group_committed_offset{group=\"%s\",topic=\"%s\",partition=\"%d\"} "
                "%lld\n", gn, tn, part, (long long)e->offset);
        return;
    }
    partition *p = broker_partition(g->hs->b, cn_str_c(tname), part);
    if (!p)
        return;
    int64_t hw = log_high_watermark(p->log);
    mprintf(g->m, "cairn_group_lag{group=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n", gn, tn,
            part, (long long)(hw > e->offset ? hw - e->offset : 0));
}

static void group_each(void *arg, const char *group)
{
    gctx *g = arg;
    g->group = group;
    goff_foreach(g->hs->core->offsets, cn_str_c(group), group_offset, g);
}

static void sec_groups(mout *m, hsrv *hs)
{
    gctx g = {m, hs, NULL, 0};
    family(m, "cairn_group_committed_offset", "gauge",
           "Committed offset of a consumer group, per partition.");
    goff_foreach_group(hs->core->offsets, group_each, &g);
    g.lag = 1;
    family(m, "cairn_group_lag", "gauge",
           "High watermark minus the group's committed offset, per partition.");
    goff_foreach_group(hs->core->offsets, group_each, &g);
}

/* http ------------------------------------------------------------------------ */

static void sec_http(mout *m, hsrv *hs)
{
    static const char *const cls[HCLASS__COUNT] = {"2xx", "4xx", "5xx"};
    family(m, "cairn_http_requests_total", "counter",
           "HTTP requests answered, per route and status class.");
    for (int r = 0; r < HROUTE__COUNT; r++)
        for (int c = 0; c < HCLASS__COUNT; c++)
            if (hs->requests[r][c])
                mprintf(m, "cairn_http_requests_total{route=\"%s\",code_class=\"%s\"} %llu\n",
                        hsrv__route_name((hroute)r), cls[c],
                        (unsigned long long)hs->requests[r][c]);
    static const char lat[] = "cairn_http_request_duration_seconds";
    family(m, lat, "histogram",
           "HTTP requests from arrival to answer, per route (parked time included: long "
           "polls, produce's fsync; Server-Sent Events streams are not counted).");
    for (int r = 0; r < HROUTE__COUNT; r++) {
        if (!hs->latency[r].count)
            continue;
        const char *labels[] = {"route", hsrv__route_name((hroute)r)};
        char lt[256];
        hist_samples(m, lat, label_text(labels, 1, lt, sizeof(lt)), &hs->latency[r]);
    }
}

/* log ---------------------------------------------------------------------------- */

static void sec_log(mout *m, hsrv *hs)
{
    const log_sync_stats *st = broker_sync_stats(hs->b);
    family(m, "cairn_log_fsync_duration_seconds", "histogram",
           "Sync jobs on the fsync threads: fdatasync of one partition's files with unsynced "
           "data (or one other file, such as raft.votes).");
    hist_samples(m, "cairn_log_fsync_duration_seconds", "", &st->duration);
    family(m, "cairn_log_group_commit_bytes", "histogram",
           "Bytes appended to a partition that one sync job made durable (group commit).");
    hist_samples(m, "cairn_log_group_commit_bytes", "", &st->bytes);
    family(m, "cairn_log_group_commit_records", "histogram",
           "Offsets (records and markers) appended to a partition that one sync job made "
           "durable.");
    hist_samples(m, "cairn_log_group_commit_records", "", &st->records);
}

/* front ends ------------------------------------------------------------------------ */

static void sec_frontends(mout *m, hsrv *hs)
{
    if (hs->server)
        srv_metrics(hs->server, &m->sink);
}

/* webhooks ---------------------------------------------------------------------- */

typedef struct wh_metric {
    mout *m;
    hsrv *hs;
    int k;
} wh_metric;

static const struct {
    const char *name, *help;
} wh_families[] = {
    {"cairn_webhook_deliveries_total", "Events delivered (callback answered 2xx)."},
    {"cairn_webhook_failed_attempts_total", "Delivery attempts that failed (non-2xx, "
     "transport error or timeout)."},
    {"cairn_webhook_retries_total", "Delivery attempts scheduled after a failure."},
    {"cairn_webhook_dead_letters_total", "Events moved to the dead-letter topic."},
    {"cairn_webhook_lag", "Events of the subscription's type not yet delivered."},
};

static uint64_t wh_value(const hh_wh_counters *c, int k)
{
    return k == 0 ? c->delivered : k == 1 ? c->failed_attempts : k == 2 ? c->retries
                                                                        : c->dead_lettered;
}

static void wh_one(void *arg, hh_wh_sub *s)
{
    wh_metric *w = arg;
    char b1[256], b2[512];
    uint64_t v = w->k < 4 ? wh_value(hh_wh_sub_counters(s), w->k)
                          : (uint64_t)hh_wh_lag(w->hs, s, NULL);
    mprintf(w->m, "%s{subscription=\"%s\",event_type=\"%s\"} %llu\n", wh_families[w->k].name,
            esc(hh_wh_id(s), b1, sizeof(b1)), esc(hh_wh_event_type(s), b2, sizeof(b2)),
            (unsigned long long)v);
}

static void count_one(void *arg, hh_wh_sub *s)
{
    (void)s;
    (*(int *)arg)++;
}

static void sec_webhooks(mout *m, hsrv *hs)
{
    const hh_wh_counters *tot = hh_wh_total(hs);
    if (!tot)
        return; /* webhooks are off */
    int n = 0;
    hh_wh_foreach(hs, count_one, &n);
    family(m, "cairn_webhook_subscriptions", "gauge", "Webhook subscriptions.");
    mprintf(m, "cairn_webhook_subscriptions %d\n", n);
    for (int k = 0; k < (int)CN_ARRAY_LEN(wh_families); k++) {
        family(m, wh_families[k].name, k < 4 ? "counter" : "gauge", wh_families[k].help);
        wh_metric w = {m, hs, k};
        hh_wh_foreach(hs, wh_one, &w);
    }
    static const char *const all[] = {"cairn_webhook_deliveries_all", "cairn_webhook_failed_attempts_all",
                                      "cairn_webhook_retries_all", "cairn_webhook_dead_letters_all"};
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof(name), "%s_total", all[k]);
        family(m, name, "counter", "The same summed over every subscription since start.");
        mprintf(m, "%s %llu\n", name, (unsigned long long)wh_value(tot, k));
    }
}

/* sse ------------------------------------------------------------------------------ */

static void sec_sse(mout *m, hsrv *hs)
{
    hh_sse_counters c;
    hh_sse_counters_get(hs, &c);
    family(m, "cairn_http_sse_streams", "gauge", "Server-Sent Events streams open.");
    mprintf(m, "cairn_http_sse_streams %d\n", c.open);
    family(m, "cairn_http_sse_streams_total", "counter", "Server-Sent Events streams started.");
    mprintf(m, "cairn_http_sse_streams_total %llu\n", (unsigned long long)c.started);
    family(m, "cairn_http_sse_events_total", "counter", "Record events sent on streams.");
    mprintf(m, "cairn_http_sse_events_total %llu\n", (unsigned long long)c.events);
    family(m, "cairn_http_sse_backpressure_pauses_total", "counter",
           "Times a stream stopped reading the log because its client read too slowly.");
    mprintf(m, "cairn_http_sse_backpressure_pauses_total %llu\n", (unsigned long long)c.pauses);
    family(m, "cairn_http_sse_buffered_bytes", "gauge",
           "Bytes queued for stream clients and not sent yet.");
    mprintf(m, "cairn_http_sse_buffered_bytes %llu\n", (unsigned long long)c.buffered);
}

void hh_metrics(hreq *q)
{
    mout m = {.sink = {sink_family, sink_value, sink_histogram}};
    wbuf_init(&m.w);
    sec_process(&m, q->hs);
    sec_listeners(&m, q->hs);
    sec_partitions(&m, q->hs);
    sec_cluster(&m, q->hs);
    sec_groups(&m, q->hs);
    sec_http(&m, q->hs);
    sec_log(&m, q->hs);
    sec_frontends(&m, q->hs);
    sec_sse(&m, q->hs);
    sec_webhooks(&m, q->hs);
    hh_reply(q, 200, "text/plain; version=0.0.4; charset=utf-8", m.w.buf, m.w.len, NULL);
    wbuf_fini(&m.w);
}
