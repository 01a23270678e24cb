/* Request dispatch: header decode, version check, routing to handlers, and
 * the version table advertised by ApiVersions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "group/offsets.h"
#include "kafka/kafka.h"
#include "txn/txn.h"
#include "util/common.h"
#include "util/slog.h"

/* Versions we implement. Ranges follow ../shared/protocol/kafka/CLIENTS.md:
 * librdkafka 2.0.2 enables features only when exact versions are in range —
 * RecordBatch v2 needs Produce 3 and Fetch 4; it compresses at all only if
 * Produce 0 is in range (gzip, snappy, lz4 are checked against Produce 0..0),
 * LZ4 also needs FindCoordinator 0, zstd needs Produce 7 and Fetch 10 — and
 * kafka-python infers the broker generation from the maxima. Cairn stores
 * only magic-2 batches: Produce v0-v2 are decoded, and their older message
 * formats get UNSUPPORTED_FOR_MESSAGE_FORMAT per partition (no client we
 * serve sends them once Produce 3 is offered). Fetch starts at v4, the first
 * version that carries magic-2 batches without down-conversion. */
const ksrv_api ksrv_apis[] = {
    {KAFKA_API_PRODUCE, 0, 11, kh_produce},
    {KAFKA_API_FETCH, 4, 12, kh_fetch},
    {KAFKA_API_LIST_OFFSETS, 0, 6, kh_list_offsets},
    {KAFKA_API_METADATA, 0, 12, kh_metadata},
    {KAFKA_API_OFFSET_COMMIT, 0, 8, kh_offset_commit},
    {KAFKA_API_OFFSET_FETCH, 0, 8, kh_offset_fetch},
    {KAFKA_API_FIND_COORDINATOR, 0, 4, kh_find_coordinator},
    {KAFKA_API_JOIN_GROUP, 0, 9, kh_join_group},
    {KAFKA_API_HEARTBEAT, 0, 4, kh_heartbeat},
    {KAFKA_API_LEAVE_GROUP, 0, 5, kh_leave_group},
    {KAFKA_API_SYNC_GROUP, 0, 5, kh_sync_group},
    {KAFKA_API_DESCRIBE_GROUPS, 0, 5, kh_describe_groups},
    {KAFKA_API_LIST_GROUPS, 0, 5, kh_list_groups},
    {KAFKA_API_API_VERSIONS, 0, 4, kh_api_versions},
    {KAFKA_API_CREATE_TOPICS, 0, 7, kh_create_topics},
    {KAFKA_API_DELETE_TOPICS, 0, 6, kh_delete_topics},
    {KAFKA_API_DESCRIBE_CONFIGS, 0, 4, kh_describe_configs},
    {KAFKA_API_ALTER_CONFIGS, 0, 2, kh_alter_configs},
    {KAFKA_API_CREATE_PARTITIONS, 0, 3, kh_create_partitions},
    {KAFKA_API_DELETE_GROUPS, 0, 2, kh_delete_groups},
    {KAFKA_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, kh_incremental_alter_configs},
    {KAFKA_API_OFFSET_DELETE, 0, 0, kh_offset_delete},
    {KAFKA_API_DESCRIBE_CLUSTER, 0, 1, kh_describe_cluster},
    {KAFKA_API_INIT_PRODUCER_ID, 0, 4, kh_init_producer_id},
    {KAFKA_API_ADD_PARTITIONS_TO_TXN, 0, 3, kh_add_partitions_to_txn},
    {KAFKA_API_ADD_OFFSETS_TO_TXN, 0, 3, kh_add_offsets_to_txn},
    {KAFKA_API_END_TXN, 0, 3, kh_end_txn},
    {KAFKA_API_TXN_OFFSET_COMMIT, 0, 3, kh_txn_offset_commit},
    {KAFKA_API_DESCRIBE_PRODUCERS, 0, 0, kh_describe_producers},
    {KAFKA_API_DESCRIBE_TRANSACTIONS, 0, 0, kh_describe_transactions},
    {KAFKA_API_LIST_TRANSACTIONS, 0, 1, kh_list_transactions},
};
const int ksrv_n_apis = (int)CN_ARRAY_LEN(ksrv_apis);

struct ksrv {
    broker *b;
    batch_scratch *scratch;
    struct kh_fetch_state *fetch;
    goff_store *offsets;
    grp_coord *groups;
    txn_coord *txn;
};

static void on_append(void *arg) { kh_fetch_wake(arg); }

ksrv *ksrv_new(broker *b)
{
    goff_store *offsets = NULL;
    int rc = goff_open(b, &offsets);
    if (rc < 0) {
        slog_error("cannot open the committed-offsets log: %s", strerror(-rc));
        return NULL;
    }
    ksrv *ks = xcalloc(1, sizeof(*ks));
    ks->b = b;
    ks->offsets = offsets;
    ks->groups = grp_coord_new(b, offsets);
    rc = txn_open(b, offsets, &ks->txn);
    if (rc < 0) {
        slog_error("cannot open the transaction log: %s", strerror(-rc));
        grp_coord_free(ks->groups);
        goff_close(offsets);
        free(ks);
        return NULL;
    }
    ks->scratch = batch_scratch_new();
    kh_fetch_init(ks);
    broker_set_append_listener(b, on_append, ks);
    return ks;
}

void ksrv_free(ksrv *ks)
{
    if (!ks)
        return;
    broker_set_append_listener(ks->b, NULL, NULL);
    kh_fetch_fini(ks);
    txn_close(ks->txn);
    grp_coord_free(ks->groups);
    goff_close(ks->offsets);
    batch_scratch_free(ks->scratch);
    free(ks);
}

batch_scratch *ksrv_scratch(ksrv *ks) { return ks->scratch; }
grp_coord *ksrv_groups(ksrv *ks) { return ks->groups; }
goff_store *ksrv_offsets(ksrv *ks) { return ks->offsets; }
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

kstr kreq_strdup(kreq *q, kstr s)
{
    if (s.len <= 0)
        return s.len == 0 ? kstr_c("") : s;
    char *p = kreq_alloc(q, (size_t)s.len, 1);
    memcpy(p, s.ptr, (size_t)s.len);
    return (kstr){p, s.len};
}

void kreq_done(kreq *q) { net_resp_ready(q->resp); }

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
    kreq q;
    memset(&q, 0, sizeof(q));
    q.ks = ks;
    q.b = ks->b;
    q.conn = c;
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
    if (bad_version) {
        kafka_response_header_encode(&q.resp->w, api->key, 0, q.hdr.correlation_id);
        api_versions_unsupported(&q);
        return;
    }
    kafka_response_header_encode(&q.resp->w, api->key, q.ver, q.hdr.correlation_id);
    api->handler(&q);
}
