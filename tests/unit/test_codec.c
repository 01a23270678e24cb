/* Unit tests for the generated Kafka codec (proto/kafka/gen): golden bytes
 * derived by hand from the protocol notes (ApiVersions v0/v3, Metadata v1
 * null topics, Produce v3, Fetch v4 response with a spliced records field,
 * CreateTopics v5), headers, tagged fields, nullability checks, truncated and
 * hostile input, the API table, error names, and encode/decode/encode round
 * trips of every message at every version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/kafka/gen/kafka_msgs.h"
#include "proto/kafka/kbuf.h"
#include "proto/kafka/kerr.h"
#include "util/arena.h"
#include "util/common.h"

static void assert_bytes(const kw *w, const uint8_t *want, size_t n)
{
    assert_int_equal(w->len, n);
    assert_memory_equal(w->buf, want, n);
}

/* ---- golden messages ---- */

static void test_api_versions_v0_request(void **state)
{
    (void)state;
    /* Header v1: key 18, version 0, correlation 1, client_id "c"; empty body. */
    static const uint8_t b[] = { 0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 'c' };
    kr r;
    kr_init(&r, b, sizeof(b), NULL);
    kafka_request_header h;
    assert_int_equal(kafka_request_header_decode(&r, &h), 0);
    assert_int_equal(h.api_key, KAFKA_API_API_VERSIONS);
    assert_int_equal(h.api_version, 0);
    assert_int_equal(h.correlation_id, 1);
    assert_true(kstr_eq(h.client_id, "c"));
    kafka_api_versions_request req;
    assert_int_equal(kafka_api_versions_request_decode(&r, 0, &req), 0);
    assert_int_equal(kr_remaining(&r), 0);

    kw w;
    kw_init(&w);
    kafka_request_header_encode(&w, &h);
    kafka_api_versions_request_encode(&w, 0, &req);
    assert_bytes(&w, b, sizeof(b));
    kw_fini(&w);
}

static void test_api_versions_v0_unsupported_response(void **state)
{
    (void)state;
    /* NOTES §3: corr | 00 23 | 00 00 00 01 | 00 12 | 00 00 | 00 04 */
    static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x2a, 0x00, 0x23, 0x00, 0x00, 0x00, 0x01,
                                    0x00, 0x12, 0x00, 0x00, 0x00, 0x04 };
    kafka_api_versions_response_api_version k;
    kafka_api_versions_response_api_version_init(&k);
    k.api_key = KAFKA_API_API_VERSIONS;
    k.min_version = 0;
    k.max_version = 4;
    kafka_api_versions_response resp;
    kafka_api_versions_response_init(&resp);
    resp.error_code = KERR_UNSUPPORTED_VERSION;
    resp.api_keys.items = &k;
    resp.api_keys.n = 1;
    kw w;
    kw_init(&w);
    kafka_response_header_encode(&w, KAFKA_API_API_VERSIONS, 0, 42);
    kafka_api_versions_response_encode(&w, 0, &resp);
    assert_bytes(&w, want, sizeof(want));

    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    int32_t corr;
    assert_int_equal(kafka_response_header_decode(&r, KAFKA_API_API_VERSIONS, 0, &corr), 0);
    assert_int_equal(corr, 42);
    arena a;
    arena_init(&a, 0, 0);
    r.a = &a;
    kafka_api_versions_response got;
    assert_int_equal(kafka_api_versions_response_decode(&r, 0, &got), 0);
    assert_int_equal(got.error_code, 35);
    assert_int_equal(got.api_keys.n, 1);
    assert_int_equal(got.api_keys.items[0].max_version, 4);
    assert_int_equal(kr_remaining(&r), 0);
    arena_fini(&a);
    kw_fini(&w);
}

static void test_api_versions_v3_request_flexible(void **state)
{
    (void)state;
    /* Header v2: client_id stays a classic int16 string, then a tag buffer.
     * Body: compact strings "librdkafka", "2.0.2", empty tag buffer. */
    static const uint8_t b[] = {
        0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x03, 'r', 'd', 'k', 0x00,
        0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a', 0x06, '2', '.', '0', '.', '2',
        0x00,
    };
    kr r;
    kr_init(&r, b, sizeof(b), NULL);
    kafka_request_header h;
    assert_int_equal(kafka_request_header_decode(&r, &h), 0);
    assert_int_equal(h.api_version, 3);
    assert_int_equal(h.correlation_id, 7);
    assert_true(kstr_eq(h.client_id, "rdk"));
    kafka_api_versions_request req;
    assert_int_equal(kafka_api_versions_request_decode(&r, 3, &req), 0);
    assert_true(kstr_eq(req.client_software_name, "librdkafka"));
    assert_true(kstr_eq(req.client_software_version, "2.0.2"));
    assert_int_equal(kr_remaining(&r), 0);

    kw w;
    kw_init(&w);
    kafka_request_header_encode(&w, &h);
    kafka_api_versions_request_encode(&w, 3, &req);
    assert_bytes(&w, b, sizeof(b));

    /* Response header for ApiVersions v3 stays v0 (no tag byte); Metadata v9
     * gets header v1. */
    kw_reset(&w);
    kafka_response_header_encode(&w, KAFKA_API_API_VERSIONS, 3, 7);
    assert_int_equal(w.len, 4);
    kw_reset(&w);
    kafka_response_header_encode(&w, KAFKA_API_METADATA, 9, 7);
    static const uint8_t v1[] = { 0, 0, 0, 7, 0 };
    assert_bytes(&w, v1, sizeof(v1));
    kw_fini(&w);
}

static void test_api_versions_v3_response_tagged_fields(void **state)
{
    (void)state;
    kafka_api_versions_response resp;
    kafka_api_versions_response_init(&resp);
    assert_true(resp.finalized_features_epoch == -1);
    resp.finalized_features_epoch = 5;
    kw w;
    kw_init(&w);
    kafka_api_versions_response_encode(&w, 3, &resp);
    /* error, empty compact array, throttle, one tag: 1, size 8, int64 5 */
    static const uint8_t want[] = { 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x08,
                                    0, 0, 0, 0, 0, 0, 0, 5 };
    assert_bytes(&w, want, sizeof(want));
    kr r;
    kr_init(&r, w.buf, w.len, NULL);
    kafka_api_versions_response got;
    assert_int_equal(kafka_api_versions_response_decode(&r, 3, &got), 0);
    assert_true(got.finalized_features_epoch == 5);
    assert_int_equal(got.zk_migration_ready, 0);

    /* Unknown tag 9 is skipped; known tag 3 (bool) still decoded. */
    static const uint8_t unk[] = { 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02,
                                   0x03, 0x01, 0x01, 0x09, 0x02, 0xaa, 0xbb };
    kr_init(&r, unk, sizeof(unk), NULL);
    assert_int_equal(kafka_api_versions_response_decode(&r, 3, &got), 0);
    assert_int_equal(got.zk_migration_ready, 1);
    assert_true(got.finalized_features_epoch == -1);
    assert_int_equal(kr_remaining(&r), 0);
    kw_fini(&w);
}

static void test_metadata_v1_null_topics(void **state)
{
    (void)state;
    static const uint8_t b[] = { 0xff, 0xff, 0xff, 0xff };
    kr r;
    kr_init(&r, b, sizeof(b), NULL);
    kafka_metadata_request req;
    assert_int_equal(kafka_metadata_request_decode(&r, 1, &req), 0);
    assert_int_equal(req.topics.n, -1);
    assert_int_equal(req.allow_auto_topic_creation, 1); /* default true */
    kw w;
    kw_init(&w);
    kafka_metadata_request_encode(&w, 1, &req);
    assert_bytes(&w, b, sizeof(b));
    kw_fini(&w);
    /* Null topics are not allowed in v0. */
    kr_init(&r, b, sizeof(b), NULL);
    assert_int_equal(kafka_metadata_request_decode(&r, 0, &req), -1);
    assert_int_equal(r.err, -CN_EPROTO);
}

static const uint8_t produce_v3[] = {
    0xff, 0xff,                   /* transactional_id null */
    0xff, 0xff,                   /* acks -1 */
    0x00, 0x00, 0x03, 0xe8,       /* timeout 1000 */
    0x00, 0x00, 0x00, 0x01,       /* 1 topic */
    0x00, 0x01, 't',              /* name */
    0x00, 0x00, 0x00, 0x01,       /* 1 partition */
    0x00, 0x00, 0x00, 0x02,       /* index 2 */
    0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, /* records */
};

static void test_produce_v3_request(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 0, 0);
    kr r;
    kr_init(&r, produce_v3, sizeof(produce_v3), &a);
    kafka_produce_request req;
    assert_int_equal(kafka_produce_request_decode(&r, 3, &req), 0);
    assert_int_equal(req.transactional_id.len, -1);
    assert_int_equal(req.acks, -1);
    assert_int_equal(req.timeout_ms, 1000);
    assert_int_equal(req.topic_data.n, 1);
    kafka_produce_request_topic_produce_data *t = &req.topic_data.items[0];
    assert_true(kstr_eq(t->name, "t"));
    assert_int_equal(t->partition_data.n, 1);
    kafka_produce_request_partition_produce_data *p = &t->partition_data.items[0];
    assert_int_equal(p->index, 2);
    assert_int_equal(p->records.len, 4);
    assert_ptr_equal(p->records.ptr, produce_v3 + sizeof(produce_v3) - 4); /* zero copy */

    kw w;
    kw_init(&w);
    kafka_produce_request_encode(&w, 3, &req);
    assert_bytes(&w, produce_v3, sizeof(produce_v3));
    kw_fini(&w);
    arena_fini(&a);
}

static void test_produce_v3_null_topic_name_rejected(void **state)
{
    (void)state;
    uint8_t b[sizeof(produce_v3)];
    memcpy(b, produce_v3, sizeof(b));
    b[12] = 0xff; /* name length -1 */
    b[13] = 0xff;
    arena a;
    arena_init(&a, 0, 0);
    kr r;
    kr_init(&r, b, sizeof(b), &a);
    kafka_produce_request req;
    assert_int_equal(kafka_produce_request_decode(&r, 3, &req), -1);
    arena_fini(&a);
}

static void test_truncated_produce_fails_cleanly(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 0, 0);
    for (size_t n = 0; n < sizeof(produce_v3); n++) {
        uint8_t *b = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
        assert_non_null(b);
        memcpy(b, produce_v3, n);
        kr r;
        kr_init(&r, b, n, &a);
        kafka_produce_request req;
        assert_int_equal(kafka_produce_request_decode(&r, 3, &req), -1);
        assert_int_equal(r.err, -CN_EPROTO);
        free(b);
        arena_reset(&a);
    }
    arena_fini(&a);
}

static void test_hostile_array_count_no_huge_alloc(void **state)
{
    (void)state;
    /* Metadata v1 claiming 2^31-1 topics in 6 bytes. */
    static const uint8_t b[] = { 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00 };
    arena a;
    arena_init(&a, 1024, 0);
    kr r;
    kr_init(&r, b, sizeof(b), &a);
    kafka_metadata_request req;
    assert_int_equal(kafka_metadata_request_decode(&r, 1, &req), -1);
    assert_int_equal(a.total, 0);
    /* Compact count in a flexible version, too. */
    static const uint8_t c[] = { 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00 };
    kr_init(&r, c, sizeof(c), &a);
    assert_int_equal(kafka_metadata_request_decode(&r, 9, &req), -1);
    assert_int_equal(a.total, 0);
    arena_fini(&a);
}

static void test_fetch_v4_response_splices_records(void **state)
{
    (void)state;
    wbuf_file file = { .fd = -1, .pos = 0, .release = NULL, .ref = NULL };
    kafka_fetch_response_partition_data p;
    kafka_fetch_response_partition_data_init(&p);
    p.partition_index = 0;
    p.high_watermark = 5;
    p.last_stable_offset = 5;
    p.aborted_transactions.n = -1;
    p.records = (krecords){ NULL, 3, &file };
    kafka_fetch_response_fetchable_topic_response t;
    kafka_fetch_response_fetchable_topic_response_init(&t);
    t.topic = kstr_c("t");
    t.partitions.items = &p;
    t.partitions.n = 1;
    kafka_fetch_response resp;
    kafka_fetch_response_init(&resp);
    resp.responses.items = &t;
    resp.responses.n = 1;

    kw w;
    kw_init(&w);
    kafka_fetch_response_encode(&w, 4, &resp);
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00,                         /* throttle */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't',        /* 1 topic "t" */
        0x00, 0x00, 0x00, 0x01,                         /* 1 partition */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,             /* index, error */
        0, 0, 0, 0, 0, 0, 0, 5,                         /* high watermark */
        0, 0, 0, 0, 0, 0, 0, 5,                         /* last stable offset */
        0xff, 0xff, 0xff, 0xff,                         /* aborted: null */
        0x00, 0x00, 0x00, 0x03,                         /* records length */
    };
    assert_bytes(&w, want, sizeof(want));
    assert_int_equal(w.n_splices, 1);
    assert_int_equal(w.splices[0].at, sizeof(want));
    assert_int_equal(w.splices[0].len, 3);
    assert_int_equal(kw_total(&w), sizeof(want) + 3);
    kw_fini(&w);
}

static void test_create_topics_v5_round_trip(void **state)
{
    (void)state;
    kafka_create_topics_request_creatable_topic_config cfg;
    kafka_create_topics_request_creatable_topic_config_init(&cfg);
    cfg.name = kstr_c("cleanup.policy");
    cfg.value = kstr_c("compact");
    kafka_create_topics_request_creatable_topic t;
    kafka_create_topics_request_creatable_topic_init(&t);
    t.name = kstr_c("t");
    t.num_partitions = 3;
    t.replication_factor = 1;
    t.configs.items = &cfg;
    t.configs.n = 1;
    kafka_create_topics_request req;
    kafka_create_topics_request_init(&req);
    assert_int_equal(req.timeout_ms, 60000);
    req.timeout_ms = 1000;
    req.topics.items = &t;
    req.topics.n = 1;

    kw w;
    kw_init(&w);
    kafka_create_topics_request_encode(&w, 5, &req);
    static const uint8_t want[] = {
        0x02, 0x02, 't', 0x00, 0x00, 0x00, 0x03, 0x00, 0x01,
        0x01,                                             /* no assignments */
        0x02, 0x0f, 'c', 'l', 'e', 'a', 'n', 'u', 'p', '.', 'p', 'o', 'l', 'i', 'c', 'y',
        0x08, 'c', 'o', 'm', 'p', 'a', 'c', 't', 0x00,    /* config + its tags */
        0x00,                                             /* topic tags */
        0x00, 0x00, 0x03, 0xe8, 0x00,                     /* timeout, validate_only */
        0x00,                                             /* top-level tags */
    };
    assert_bytes(&w, want, sizeof(want));

    arena a;
    arena_init(&a, 0, 0);
    kr r;
    kr_init(&r, w.buf, w.len, &a);
    kafka_create_topics_request got;
    assert_int_equal(kafka_create_topics_request_decode(&r, 5, &got), 0);
    assert_int_equal(kr_remaining(&r), 0);
    assert_int_equal(got.topics.n, 1);
    assert_true(kstr_eq(got.topics.items[0].name, "t"));
    assert_int_equal(got.topics.items[0].num_partitions, 3);
    assert_int_equal(got.topics.items[0].assignments.n, 0);
    assert_true(kstr_eq(got.topics.items[0].configs.items[0].value, "compact"));
    assert_int_equal(got.timeout_ms, 1000);
    arena_fini(&a);
    kw_fini(&w);
}

/* Fetch response with tagged struct and array fields filled in, at every
 * version: encode, decode, encode again must give the same bytes. */
static void test_fetch_response_round_trip_all_versions(void **state)
{
    (void)state;
    kafka_fetch_response_aborted_transaction ab = { 7, 100 };
    kafka_fetch_response_partition_data p;
    kafka_fetch_response_partition_data_init(&p);
    p.partition_index = 3;
    p.error_code = KERR_NOT_LEADER_OR_FOLLOWER;
    p.high_watermark = 1000;
    p.current_leader.leader_id = 2;
    p.current_leader.leader_epoch = 9;
    p.aborted_transactions.items = &ab;
    p.aborted_transactions.n = 1;
    p.records = (krecords){ (const uint8_t *)"abc", 3, NULL };
    kafka_fetch_response_fetchable_topic_response t;
    kafka_fetch_response_fetchable_topic_response_init(&t);
    t.topic = kstr_c("topic");
    t.topic_id.b[0] = 1;
    t.partitions.items = &p;
    t.partitions.n = 1;
    kafka_fetch_response_node_endpoint ne;
    kafka_fetch_response_node_endpoint_init(&ne);
    ne.node_id = 2;
    ne.host = kstr_c("h");
    ne.port = 9092;
    kafka_fetch_response resp;
    kafka_fetch_response_init(&resp);
    resp.throttle_time_ms = 1;
    resp.session_id = 77;
    resp.responses.items = &t;
    resp.responses.n = 1;
    resp.node_endpoints.items = &ne;
    resp.node_endpoints.n = 1;

    arena a;
    arena_init(&a, 0, 0);
    for (int16_t v = 0; v <= kafka_api_max_schema_version(KAFKA_API_FETCH); v++) {
        kw w1, w2;
        kw_init(&w1);
        kw_init(&w2);
        kafka_fetch_response_encode(&w1, v, &resp);
        kr r;
        kr_init(&r, w1.buf, w1.len, &a);
        kafka_fetch_response got;
        assert_int_equal(kafka_fetch_response_decode(&r, v, &got), 0);
        assert_int_equal(kr_remaining(&r), 0);
        assert_int_equal(got.responses.items[0].partitions.items[0].records.len, 3);
        if (v >= 12)
            assert_int_equal(got.responses.items[0].partitions.items[0].current_leader.leader_epoch, 9);
        if (v >= 16)
            assert_int_equal(got.node_endpoints.n, 1);
        else
            assert_int_equal(got.node_endpoints.n, 0);
        kafka_fetch_response_encode(&w2, v, &got);
        assert_int_equal(w1.len, w2.len);
        assert_memory_equal(w1.buf, w2.buf, w1.len);
        kw_fini(&w1);
        kw_fini(&w2);
        arena_reset(&a);
    }
    arena_fini(&a);
}

/* Every message at every version: defaults encode, decode back to the same
 * bytes, consume the whole buffer, and every strict prefix fails. */
#define RT(M, KEY)                                                                     \
    static void rt_##M(arena *a)                                                       \
    {                                                                                  \
        M m, got;                                                                      \
        for (int16_t v = 0; v <= kafka_api_max_schema_version(KEY); v++) {             \
            kw w1, w2;                                                                 \
            kw_init(&w1);                                                              \
            kw_init(&w2);                                                              \
            M##_init(&m);                                                              \
            M##_encode(&w1, v, &m);                                                    \
            kr r;                                                                      \
            kr_init(&r, w1.buf, w1.len, a);                                            \
            assert_int_equal(M##_decode(&r, v, &got), 0);                              \
            assert_int_equal(kr_remaining(&r), 0);                                     \
            M##_encode(&w2, v, &got);                                                  \
            assert_int_equal(w1.len, w2.len);                                          \
            if (w1.len)                                                                \
                assert_memory_equal(w1.buf, w2.buf, w1.len);                           \
            for (size_t n = 0; n < w1.len; n++) {                                      \
                kr_init(&r, w1.buf, n, a);                                             \
                assert_int_equal(M##_decode(&r, v, &got), -1);                         \
            }                                                                          \
            kw_fini(&w1);                                                              \
            kw_fini(&w2);                                                              \
            arena_reset(a);                                                            \
        }                                                                              \
        kr bad;                                                                        \
        kr_init(&bad, "", 0, a);                                                       \
        assert_int_equal(M##_decode(&bad, (int16_t)(kafka_api_max_schema_version(KEY) + 1), &got), -1);  \
    }

/* Every generated API (the KAFKA_APIS X-macro, proto/kafka/gen/kafka_apis.h). */
#define DEF(api, NAME, ...)                                \
    RT(kafka_##api##_request, KAFKA_API_##NAME)            \
    RT(kafka_##api##_response, KAFKA_API_##NAME)
KAFKA_APIS(DEF)

static void test_every_message_round_trips_defaults(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 0, 0);
#define CALL(api, ...)                  \
    rt_kafka_##api##_request(&a);       \
    rt_kafka_##api##_response(&a);
    KAFKA_APIS(CALL)
    arena_fini(&a);
}

static void test_api_table(void **state)
{
    (void)state;
    assert_string_equal(kafka_api_name(KAFKA_API_PRODUCE), "Produce");
    assert_string_equal(kafka_api_name(66), "ListTransactions");
    assert_null(kafka_api_name(7));
    assert_null(kafka_api_name(-1));
    assert_null(kafka_api_name(1000));
    assert_true(kafka_api_known(18));
    assert_false(kafka_api_known(27)); /* WriteTxnMarkers: not served */
    assert_int_equal(kafka_api_max_schema_version(KAFKA_API_PRODUCE), 11);
    assert_int_equal(kafka_api_max_schema_version(KAFKA_API_FETCH), 17);
    assert_int_equal(kafka_api_max_schema_version(7), -1);
    assert_false(kafka_request_is_flexible(KAFKA_API_PRODUCE, 8));
    assert_true(kafka_request_is_flexible(KAFKA_API_PRODUCE, 9));
    assert_true(kafka_request_is_flexible(KAFKA_API_API_VERSIONS, 5)); /* above max */
    assert_false(kafka_request_is_flexible(KAFKA_API_OFFSET_DELETE, 0));
    assert_true(kafka_response_is_flexible(KAFKA_API_DESCRIBE_CLUSTER, 0));
    assert_false(kafka_request_is_flexible(7, 3));
    assert_int_equal(KAFKA_PRODUCE_MAX_VERSION, 11);
    assert_int_equal(KAFKA_PRODUCE_FIRST_FLEXIBLE, 9);
}

/* The served-API list: key order, constants agree, ranges inside the codec,
 * and nothing generated that is not served. */
static void test_kafka_apis_table(void **state)
{
    (void)state;
    static const struct { int key, enum_key, min, max, schema_max; } rows[] = {
#define ROW(name, NAME, key, min, max, handler) \
    {key, KAFKA_API_##NAME, min, max, KAFKA_##NAME##_MAX_VERSION},
        KAFKA_APIS(ROW)
#undef ROW
    };
    assert_int_equal(CN_ARRAY_LEN(rows), KAFKA_APIS_COUNT);
    int served = 0;
    for (size_t i = 0; i < CN_ARRAY_LEN(rows); i++) {
        assert_int_equal(rows[i].key, rows[i].enum_key);
        if (i > 0)
            assert_true(rows[i].key > rows[i - 1].key);
        assert_true(0 <= rows[i].min && rows[i].min <= rows[i].max);
        assert_true(rows[i].max <= rows[i].schema_max);
        assert_true(kafka_api_known((int16_t)rows[i].key));
    }
    for (int16_t k = 0; k < KAFKA_API__COUNT; k++)
        served += kafka_api_known(k);
    assert_int_equal(served, KAFKA_APIS_COUNT); /* every codec is served */
    assert_true(kafka_api_known(17));           /* SaslHandshake */
    assert_true(kafka_api_known(36));           /* SaslAuthenticate */
    assert_true(kafka_api_known(30));           /* CreateAcls */
    assert_false(kafka_api_known(7));           /* ControlledShutdown: not ours */
}

static void test_header_unknown_key_uses_v1(void **state)
{
    (void)state;
    /* Key 7 is not ours: header v1 even at a high version; no tag buffer read. */
    static const uint8_t b[] = { 0x00, 0x07, 0x00, 0x09, 0x00, 0x00, 0x00, 0x05, 0xff, 0xff };
    kr r;
    kr_init(&r, b, sizeof(b), NULL);
    kafka_request_header h;
    assert_int_equal(kafka_request_header_decode(&r, &h), 0);
    assert_int_equal(h.client_id.len, -1);
    assert_int_equal(kr_remaining(&r), 0);
    /* Truncated header fails. */
    kr_init(&r, b, 7, NULL);
    assert_int_equal(kafka_request_header_decode(&r, &h), -1);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(kerr_name(KERR_NONE), "NONE");
    assert_string_equal(kerr_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_string_equal(kerr_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_string_equal(kerr_name(KERR_TRANSACTION_ABORTABLE), "TRANSACTION_ABORTABLE");
    assert_int_equal(KERR_TRANSACTION_ABORTABLE, 120);
    assert_string_equal(kerr_name(99), "UNKNOWN_ERROR_CODE");
    assert_string_equal(kerr_name(-2), "UNKNOWN_ERROR_CODE");
    assert_string_equal(kerr_name(30000), "UNKNOWN_ERROR_CODE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_versions_v0_request),
        cmocka_unit_test(test_api_versions_v0_unsupported_response),
        cmocka_unit_test(test_api_versions_v3_request_flexible),
        cmocka_unit_test(test_api_versions_v3_response_tagged_fields),
        cmocka_unit_test(test_metadata_v1_null_topics),
        cmocka_unit_test(test_produce_v3_request),
        cmocka_unit_test(test_produce_v3_null_topic_name_rejected),
        cmocka_unit_test(test_truncated_produce_fails_cleanly),
        cmocka_unit_test(test_hostile_array_count_no_huge_alloc),
        cmocka_unit_test(test_fetch_v4_response_splices_records),
        cmocka_unit_test(test_create_topics_v5_round_trip),
        cmocka_unit_test(test_fetch_response_round_trip_all_versions),
        cmocka_unit_test(test_every_message_round_trips_defaults),
        cmocka_unit_test(test_api_table),
        cmocka_unit_test(test_kafka_apis_table),
        cmocka_unit_test(test_header_unknown_key_uses_v1),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
