/* Request dispatch: header decode, version check, routing to handlers, and
 * the version table advertised by ApiVersions. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "group/offsets.h"
#include "kafka/kafka.h"
#include "txn/txn.h"
#include "util/common.h"
#include "util/slog.h"

/* Versions we implement, one row per API in KAFKA_APIS (generated from the
 * APIS table in tools/kafka_gen.py, which also explains the ranges), in key
 * order. */
#define KSRV_API_ROW(name, NAME, key, min, max, handler) {KAFKA_API_##NAME, min, max, handler},
const ksrv_api ksrv_apis[] = {KAFKA_APIS(KSRV_API_ROW)};
#undef KSRV_API_ROW
const int ksrv_n_apis = (int)CN_ARRAY_LEN(ksrv_apis);

struct ksrv {
    broker *b;
    batch_scratch *scratch;
    struct kh_fetch_state *fetch;
    goff_store *offsets;
    grp_coord *groups;
    txn_coord *txn;
    cluster *cl;                     /* NULL on a single node */
    auth_users *users;               /* SASL users (the core's) */
    acl_store *acls;                 /* ACLs (the core's) */
    const auth_pmap *pmap;           /* ssl.principal.mapping.rules */
    auth_throttle *throttle;         /* failed-login delays (core's) */
    const cairn_config *cfg;
    loop *l;
    struct kh_sasl_state *sasl;      /* kh_sasl.c */
    broker_listener appends;         /* wakes parked fetches */
    /* Request latency per API, indexed like ksrv_apis: from the frame's
     * arrival (ksrv_on_frame) to its response being sealed (net_resp_ready
     * on an open connection), parked time included. */
    hist *lat;
};

/* What a response slot remembers for its latency (r->ctx, in its arena). */
typedef struct ksrv_timing {
    int64_t t0_ns;
    int api;                         /* index into ksrv_apis */
} ksrv_timing;

static void on_append(broker_listener *l)
{
    ksrv *ks = (ksrv *)((char *)l - offsetof(ksrv, appends));
    kh_fetch_wake(ks);
}

ksrv *ksrv_new(core *c)
{
    ksrv *ks = xcalloc(1, sizeof(*ks));
    ks->b = c->b;
    ks->offsets = c->offsets;
    ks->groups = c->groups;
    ks->txn = c->txn;
    ks->cl = c->cl;
    ks->users = c->users;
    ks->acls = c->acls;
    ks->pmap = c->pmap;
    ks->throttle = c->throttle;
    ks->cfg = c->cfg;
    ks->l = c->l;
    ks->scratch = batch_scratch_new();
    ks->lat = xcalloc((size_t)ksrv_n_apis, sizeof(*ks->lat));
    for (int i = 0; i < ksrv_n_apis; i++)
        hist_init(&ks->lat[i], &hist_latency_ns);
    kh_fetch_init(ks);
    kh_sasl_init(ks);
    ks->appends.cb = on_append;
    broker_listen_appends(ks->b, &ks->appends);
    return ks;
}

void ksrv_free(ksrv *ks)
{
    if (!ks)
        return;
    broker_unlisten_appends(ks->b, &ks->appends);
    kh_fetch_fini(ks);
    kh_sasl_fini(ks);
    batch_scratch_free(ks->scratch);
    free(ks->lat);
    free(ks);
}

void ksrv_advertise(ksrv *ks, const char *host, int port)
{
    if (broker_adv_port(ks->b) > 0)
        return; /* the first listener is the default (requests not from a listener) */
    broker_set_advertised(ks->b, host, port);
}

batch_scratch *ksrv_scratch(ksrv *ks) { return ks->scratch; }
auth_users *ksrv_users(ksrv *ks) { return ks->users; }
acl_store *ksrv_acls(ksrv *ks) { return ks->acls; }
const auth_pmap *ksrv_pmap(ksrv *ks) { return ks->pmap; }
auth_throttle *ksrv_throttle(ksrv *ks) { return ks->throttle; }

int kreq_allowed(kreq *q, int op, int rtype, kstr name)
{
    if (!q->ks->cfg->authorizer_enabled)
        return 1;
    ksess *s = q->conn ? net_conn_ctx(q->conn) : NULL;
    return s && ksess_allowed(s, op, rtype, name.len > 0 ? name.ptr : "",
                              name.len > 0 ? (size_t)name.len : 0);
}

int kreq_cluster_allowed(kreq *q, int op)
{
    return kreq_allowed(q, op, ACL_R_CLUSTER, kstr_c(ACL_CLUSTER_NAME));
}
const cairn_config *ksrv_config(ksrv *ks) { return ks->cfg; }
loop *ksrv_loop(ksrv *ks) { return ks->l; }
struct kh_sasl_state **ksrv__sasl(ksrv *ks) { return &ks->sasl; }
grp_coord *ksrv_groups(ksrv *ks) { return ks->groups; }
goff_store *ksrv_offsets(ksrv *ks) { return ks->offsets; }
cluster *ksrv_cluster(ksrv *ks) { return ks->cl; }
txn_coord *ksrv_txn(ksrv *ks) { return ks->txn; }
struct kh_fetch_state **ksrv_fetch_state(ksrv *ks) { return &ks->fetch; }

void *kreq_alloc(kreq *q, size_t n, size_t sz)
{
    size_t bytes = n * sz;
    void *p = arena_alloc(&q->resp->a, bytes ? bytes : 1);
    if (!p)
        abort(); /* the slot arena is unlimited */
    return p;
}

void kreq_member_addr(kreq *q, const cluster_member *m, kstr *host, int32_t *port)
{
    cluster *cl = ksrv_cluster(q->ks);
    net_server *ns = q->conn ? net_conn_server(q->conn) : NULL;
    int li = ns ? SRV_TAG_LISTENER(net_server_tag(ns)) : 0;
    const cairn_config *cfg = ksrv_config(q->ks);
    const char *h;
    int p;
    if (cl && li >= 1 && li <= cfg->n_kafka &&
        cluster_member_endpoint(cl, m->id, cfg->kafka_name[li - 1], &h, &p)) {
        *host = kreq_strdup(q, kstr_c(h));
        *port = p;
        return;
    }
    *host = kreq_strdup(q, kstr_c(m->kafka_host));
    *port = m->kafka_port;
}

void kreq_advertised(kreq *q, kstr *host, int32_t *port)
{
    net_server *ns = q->conn ? net_conn_server(q->conn) : NULL;
    if (!ns) {
        *host = kstr_c(broker_adv_host(q->b));
        *port = broker_adv_port(q->b);
        return;
    }
    const char *h = net_server_host(ns);
    if (h[0] == '\0' || strcmp(h, "0.0.0.0") == 0)
        h = "127.0.0.1";
    else if (strcmp(h, "::") == 0)
        h = "::1";
    *host = kstr_c(h);
    *port = net_server_port(ns);
}

kstr kreq_strdup(kreq *q, kstr s)
{
    if (s.len <= 0)
        return s.len == 0 ? kstr_c("") : s;
    char *p = kreq_alloc(q, (size_t)s.len, 1);
    memcpy(p, s.ptr, (size_t)s.len);
    return (kstr){p, s.len};
}

void kreq_done(kreq *q) { net_resp_ready(q->resp); }

void ksrv__resp_sealed(ksrv *ks, net_resp *r)
{
    const ksrv_timing *tm = r->ctx;
    if (tm)
        hist_observe(&ks->lat[tm->api], hist_now_ns() - tm->t0_ns);
}

void ksrv_metrics(ksrv *ks, srv_metrics_sink *m)
{
    static const char name[] = "cairn_kafka_request_duration_seconds";
    m->family(m, name, "histogram",
              "Kafka requests from arrival to response ready, per API (parked time included: "
              "acks=all produce waits for fsync, fetch for max.wait.ms).");
    for (int i = 0; i < ksrv_n_apis; i++) {
        if (!ks->lat[i].count)
            continue;
        const char *labels[] = {"api", kafka_api_name(ksrv_apis[i].key)};
        m->histogram(m, name, labels, 1, &ks->lat[i]);
    }
}

void kreq_bad(kreq *q, const char *what)
{
    char why[160];
    snprintf(why, sizeof(why), "malformed %s v%d request (%s)", kafka_api_name(q->hdr.api_key),
             q->ver, what);
    slog_warn("connection %llu from %s: %s", (unsigned long long)net_conn_id(q->conn),
              net_conn_peer(q->conn), why);
    net_resp_drop(q->resp);
    net_conn_close(q->conn, why);
}

static const ksrv_api *find_api(int16_t key)
{
    for (int i = 0; i < ksrv_n_apis; i++)
        if (ksrv_apis[i].key == key)
            return &ksrv_apis[i];
    return NULL;
}

/* ApiVersions at a version we do not know: a v0 body with
 * UNSUPPORTED_VERSION and our table, so the client can pick (NOTES §3). */
static void api_versions_unsupported(kreq *q)
{
    kafka_api_versions_response rsp;
    kafka_api_versions_response_init(&rsp);
    rsp.error_code = KERR_UNSUPPORTED_VERSION;
    KARR_ALLOC(q, rsp.api_keys, ksrv_n_apis);
    for (int i = 0; i < ksrv_n_apis; i++) {
        rsp.api_keys.items[i].api_key = ksrv_apis[i].key;
        rsp.api_keys.items[i].min_version = ksrv_apis[i].min;
        rsp.api_keys.items[i].max_version = ksrv_apis[i].max;
    }
    kafka_api_versions_response_encode(&q->resp->w, 0, &rsp);
    kreq_done(q);
}

void ksrv_on_frame(net_conn *c, const uint8_t *frame, size_t len, void *arg)
{
    ksrv *ks = arg;
    int64_t t0 = hist_now_ns();
    kreq q;
    memset(&q, 0, sizeof(q));
    q.ks = ks;
    q.b = ks->b;
    q.conn = c;
    ksess *sess = net_conn_ctx(c);
    if (sess && ksess_raw_frame(sess, c, frame, len))
        return; /* a SaslHandshake v0 client's raw SASL token */
    kr_init(&q.r, frame, len, NULL);
    if (kafka_request_header_decode(&q.r, &q.hdr) < 0) {
        slog_warn("connection %llu from %s: malformed request header",
                  (unsigned long long)net_conn_id(c), net_conn_peer(c));
        net_conn_close(c, "malformed request header");
        return;
    }
    q.ver = q.hdr.api_version;
    const ksrv_api *api = find_api(q.hdr.api_key);
    if (!api) {
        char why[96];
        snprintf(why, sizeof(why), "unsupported API key %d (%s)", q.hdr.api_key,
                 kafka_api_known(q.hdr.api_key) ? kafka_api_name(q.hdr.api_key) : "unknown");
        slog_warn("connection %llu from %s: %s", (unsigned long long)net_conn_id(c),
                  net_conn_peer(c), why);
        net_conn_close(c, why);
        return;
    }
    const char *why_not = sess ? ksess_gate(sess, api->key) : NULL;
    if (why_not) {
        slog_warn("connection %llu from %s: %s request: %s", (unsigned long long)net_conn_id(c),
                  net_conn_peer(c), kafka_api_name(api->key), why_not);
        net_conn_close(c, why_not);
        return;
    }
    int bad_version = q.ver < api->min || q.ver > api->max;
    if (bad_version && api->key != KAFKA_API_API_VERSIONS) {
        char why[96];
        snprintf(why, sizeof(why), "unsupported %s version %d (we support %d-%d)",
                 kafka_api_name(api->key), q.ver, api->min, api->max);
        slog_warn("connection %llu from %s: %s", (unsigned long long)net_conn_id(c),
                  net_conn_peer(c), why);
        net_conn_close(c, why);
        return;
    }
    q.resp = ksrv__resp_new(c);
    q.r.a = &q.resp->a;
    ksrv_timing *tm = kreq_alloc(&q, 1, sizeof(*tm));
    tm->t0_ns = t0;
    tm->api = (int)(api - ksrv_apis);
    q.resp->ctx = tm;
    if (bad_version) {
        kafka_response_header_encode(&q.resp->w, api->key, 0, q.hdr.correlation_id);
        api_versions_unsupported(&q);
        return;
    }
    kafka_response_header_encode(&q.resp->w, api->key, q.ver, q.hdr.correlation_id);
    api->handler(&q);
}
