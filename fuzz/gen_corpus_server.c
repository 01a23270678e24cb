/* Writes the seed corpus for fuzz_server into the directory given as argv[1]:
 * complete size-prefixed request frames (request header + body from the
 * generated encoders), one request per file, a few conversations of several
 * frames, on topic "fz" (auto-created by Metadata/Produce).
 * Build and run (from the repo root, after `make build/libcairn.a`):
 *   cc -std=c11 -D_GNU_SOURCE -Isrc fuzz/gen_corpus_server.c build/libcairn.a \
 *      -lz -lsnappy -llz4 -lzstd -pthread -o build/gen_corpus_server
 *   ./build/gen_corpus_server fuzz/corpus/server */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/batch.h"
#include "proto/kafka/gen/kafka_msgs.h"

static const char *dir;
static kw conv;        /* frames of the current conversation */
static int32_t corr = 1;

static void put_file(const char *name, const kw *w)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(w->buf, 1, w->len, f) != w->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Frame: size, header, body (written by enc). Also appended to conv. */
#define FRAME(file, KEY, ver, enc_fn, msg)                                     \
    do {                                                                       \
        kw w;                                                                  \
        kw_init(&w);                                                           \
        kw_i32(&w, 0);                                                         \
        kafka_request_header h = {KEY, (ver), corr++, kstr_c("fuzz")};         \
        kafka_request_header_encode(&w, &h);                                   \
        enc_fn(&w, (ver), (msg));                                              \
        kw_put_i32_at(&w, 0, (int32_t)(w.len - 4));                            \
        if (file)                                                              \
            put_file(file, &w);                                                \
        kw_raw(&conv, w.buf, w.len);                                           \
        kw_fini(&w);                                                           \
    } while (0)

static const kstr topic_name = {"fz", 2};

static void api_versions(int16_t v, const char *file)
{
    kafka_api_versions_request m;
    kafka_api_versions_request_init(&m);
    m.client_software_name = kstr_c("gen");
    m.client_software_version = kstr_c("1.0");
    FRAME(file, KAFKA_API_API_VERSIONS, v, kafka_api_versions_request_encode, &m);
}

static void metadata(int16_t v, const char *file, int all)
{
    kafka_metadata_request m;
    kafka_metadata_request_init(&m);
    kafka_metadata_request_metadata_request_topic t;
    kafka_metadata_request_metadata_request_topic_init(&t);
    t.name = topic_name;
    if (all) {
        m.topics.n = v >= 1 ? -1 : 0;
    } else {
        m.topics.items = &t;
        m.topics.n = 1;
    }
    m.allow_auto_topic_creation = 1;
    FRAME(file, KAFKA_API_METADATA, v, kafka_metadata_request_encode, &m);
}

static void produce(int16_t v, const char *file, int16_t acks, int codec)
{
    static const batch_build_rec recs[] = {
        {"k1", 2, "hello", 5, 1700000000000LL},
        {NULL, -1, "world", 5, 1700000000001LL},
    };
    uint8_t *b;
    size_t len;
    if (batch_build(recs, 2, codec, 0, &b, &len) != 0)
        exit(1);
    kafka_produce_request m;
    kafka_produce_request_init(&m);
    kafka_produce_request_topic_produce_data t;
    kafka_produce_request_topic_produce_data_init(&t);
    kafka_produce_request_partition_produce_data p;
    kafka_produce_request_partition_produce_data_init(&p);
    p.index = 0;
    p.records = (krecords){b, (int32_t)len, NULL};
    t.name = topic_name;
    t.partition_data.items = &p;
    t.partition_data.n = 1;
    m.transactional_id = (kstr){NULL, -1};
    m.acks = acks;
    m.timeout_ms = 1000;
    m.topic_data.items = &t;
    m.topic_data.n = 1;
    FRAME(file, KAFKA_API_PRODUCE, v, kafka_produce_request_encode, &m);
    free(b);
}

static void fetch(int16_t v, const char *file, int32_t max_wait, int32_t min_bytes)
{
    kafka_fetch_request m;
    kafka_fetch_request_init(&m);
    kafka_fetch_request_fetch_topic t;
    kafka_fetch_request_fetch_topic_init(&t);
    kafka_fetch_request_fetch_partition p;
    kafka_fetch_request_fetch_partition_init(&p);
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    t.topic = topic_name;
    t.partitions.items = &p;
    t.partitions.n = 1;
    m.replica_id = -1;
    m.max_wait_ms = max_wait;
    m.min_bytes = min_bytes;
    m.max_bytes = 1 << 20;
    m.topics.items = &t;
    m.topics.n = 1;
    FRAME(file, KAFKA_API_FETCH, v, kafka_fetch_request_encode, &m);
}

static void list_offsets(int16_t v, const char *file, int64_t ts)
{
    kafka_list_offsets_request m;
    kafka_list_offsets_request_init(&m);
    kafka_list_offsets_request_list_offsets_topic t;
    kafka_list_offsets_request_list_offsets_topic_init(&t);
    kafka_list_offsets_request_list_offsets_partition p;
    kafka_list_offsets_request_list_offsets_partition_init(&p);
    p.partition_index = 0;
    p.timestamp = ts;
    t.name = topic_name;
    t.partitions.items = &p;
    t.partitions.n = 1;
    m.replica_id = -1;
    m.topics.items = &t;
    m.topics.n = 1;
    FRAME(file, KAFKA_API_LIST_OFFSETS, v, kafka_list_offsets_request_encode, &m);
}

static void create_topics(int16_t v, const char *file, const char *name, int32_t parts)
{
    kafka_create_topics_request m;
    kafka_create_topics_request_init(&m);
    kafka_create_topics_request_creatable_topic t;
    kafka_create_topics_request_creatable_topic_init(&t);
    kafka_create_topics_request_creatable_topic_config c[2];
    kafka_create_topics_request_creatable_topic_config_init(&c[0]);
    kafka_create_topics_request_creatable_topic_config_init(&c[1]);
    c[0].name = kstr_c("retention.ms");
    c[0].value = kstr_c("3600000");
    c[1].name = kstr_c("segment.bytes");
    c[1].value = kstr_c("4096");
    t.name = kstr_c(name);
    t.num_partitions = parts;
    t.replication_factor = 1;
    t.configs.items = c;
    t.configs.n = 2;
    m.topics.items = &t;
    m.topics.n = 1;
    m.timeout_ms = 1000;
    FRAME(file, KAFKA_API_CREATE_TOPICS, v, kafka_create_topics_request_encode, &m);
}

static void delete_topics(int16_t v, const char *file, const char *name)
{
    kafka_delete_topics_request m;
    kafka_delete_topics_request_init(&m);
    kstr n = kstr_c(name);
    m.topic_names.items = &n;
    m.topic_names.n = 1;
    m.timeout_ms = 1000;
    FRAME(file, KAFKA_API_DELETE_TOPICS, v, kafka_delete_topics_request_encode, &m);
}

static void delete_records(int16_t v, const char *file, int64_t offset)
{
    kafka_delete_records_request m;
    kafka_delete_records_request_init(&m);
    kafka_delete_records_request_delete_records_topic t;
    kafka_delete_records_request_delete_records_topic_init(&t);
    kafka_delete_records_request_delete_records_partition p;
    kafka_delete_records_request_delete_records_partition_init(&p);
    p.partition_index = 0;
    p.offset = offset;
    t.name = topic_name;
    t.partitions.items = &p;
    t.partitions.n = 1;
    m.topics.items = &t;
    m.topics.n = 1;
    m.timeout_ms = 1000;
    FRAME(file, KAFKA_API_DELETE_RECORDS, v, kafka_delete_records_request_encode, &m);
}

static void create_partitions(int16_t v, const char *file, const char *name, int32_t count)
{
    kafka_create_partitions_request m;
    kafka_create_partitions_request_init(&m);
    kafka_create_partitions_request_create_partitions_topic t;
    kafka_create_partitions_request_create_partitions_topic_init(&t);
    t.name = kstr_c(name);
    t.count = count;
    t.assignments.n = -1;
    m.topics.items = &t;
    m.topics.n = 1;
    m.timeout_ms = 1000;
    FRAME(file, KAFKA_API_CREATE_PARTITIONS, v, kafka_create_partitions_request_encode, &m);
}

static void describe_configs(int16_t v, const char *file, int8_t type, const char *name)
{
    kafka_describe_configs_request m;
    kafka_describe_configs_request_init(&m);
    kafka_describe_configs_request_describe_configs_resource r;
    kafka_describe_configs_request_describe_configs_resource_init(&r);
    r.resource_type = type;
    r.resource_name = kstr_c(name);
    r.configuration_keys.n = -1;
    m.resources.items = &r;
    m.resources.n = 1;
    m.include_synonyms = 1;
    m.include_documentation = 1;
    FRAME(file, KAFKA_API_DESCRIBE_CONFIGS, v, kafka_describe_configs_request_encode, &m);
}

static void alter_configs(int16_t v, const char *file, const char *name)
{
    kafka_alter_configs_request m;
    kafka_alter_configs_request_init(&m);
    kafka_alter_configs_request_alter_configs_resource r;
    kafka_alter_configs_request_alter_configs_resource_init(&r);
    kafka_alter_configs_request_alterable_config c;
    kafka_alter_configs_request_alterable_config_init(&c);
    c.name = kstr_c("retention.ms");
    c.value = kstr_c("86400000");
    r.resource_type = 2; /* TOPIC */
    r.resource_name = kstr_c(name);
    r.configs.items = &c;
    r.configs.n = 1;
    m.resources.items = &r;
    m.resources.n = 1;
    FRAME(file, KAFKA_API_ALTER_CONFIGS, v, kafka_alter_configs_request_encode, &m);
}

static void incremental_alter_configs(int16_t v, const char *file, const char *name)
{
    kafka_incremental_alter_configs_request m;
    kafka_incremental_alter_configs_request_init(&m);
    kafka_incremental_alter_configs_request_alter_configs_resource r;
    kafka_incremental_alter_configs_request_alter_configs_resource_init(&r);
    kafka_incremental_alter_configs_request_alterable_config c[2];
    kafka_incremental_alter_configs_request_alterable_config_init(&c[0]);
    kafka_incremental_alter_configs_request_alterable_config_init(&c[1]);
    c[0].name = kstr_c("cleanup.policy");
    c[0].config_operation = 0; /* SET */
    c[0].value = kstr_c("compact");
    c[1].name = kstr_c("retention.bytes");
    c[1].config_operation = 1; /* DELETE */
    c[1].value = (kstr){NULL, -1};
    r.resource_type = 2;
    r.resource_name = kstr_c(name);
    r.configs.items = c;
    r.configs.n = 2;
    m.resources.items = &r;
    m.resources.n = 1;
    FRAME(file, KAFKA_API_INCREMENTAL_ALTER_CONFIGS, v,
          kafka_incremental_alter_configs_request_encode, &m);
}

static void describe_cluster(int16_t v, const char *file)
{
    kafka_describe_cluster_request m;
    kafka_describe_cluster_request_init(&m);
    FRAME(file, KAFKA_API_DESCRIBE_CLUSTER, v, kafka_describe_cluster_request_encode, &m);
}

static void conv_begin(void) { kw_reset(&conv); }
static void conv_end(const char *file) { put_file(file, &conv); }

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    kw_init(&conv);
    api_versions(0, "api_versions-v0");
    api_versions(3, "api_versions-v3");
    api_versions(9, "api_versions-v9-unsupported");
    metadata(1, "metadata-v1", 0);
    metadata(4, "metadata-v4", 0);
    metadata(9, "metadata-v9", 0);
    metadata(12, "metadata-v12-all", 1);
    produce(3, "produce-v3", 1, 0);
    produce(7, "produce-v7-gzip", -1, 1);
    produce(9, "produce-v9-zstd", 1, 4);
    produce(9, "produce-v9-acks0-lz4", 0, 3);
    fetch(4, "fetch-v4", 0, 1);
    fetch(11, "fetch-v11", 0, 1);
    fetch(12, "fetch-v12-longpoll", 100, 1000000);
    list_offsets(1, "list_offsets-v1-latest", -1);
    list_offsets(1, "list_offsets-v1-earliest", -2);
    create_topics(0, "create_topics-v0", "fz", 2);
    create_topics(5, "create_topics-v5", "fz2", 3);
    delete_topics(1, "delete_topics-v1", "fz2");
    create_partitions(0, "create_partitions-v0", "fz", 4);
    create_partitions(2, "create_partitions-v2", "fz", 5);
    describe_configs(0, "describe_configs-v0-topic", 2, "fz");
    describe_configs(4, "describe_configs-v4-broker", 4, "1");
    alter_configs(0, "alter_configs-v0", "fz");
    alter_configs(2, "alter_configs-v2", "fz");
    incremental_alter_configs(0, "incremental_alter_configs-v0", "fz");
    incremental_alter_configs(1, "incremental_alter_configs-v1", "fz");
    describe_cluster(0, "describe_cluster-v0");
    describe_cluster(1, "describe_cluster-v1");

    /* Conversations: a client's first requests, then produce and fetch back. */
    conv_begin();
    api_versions(3, NULL);
    metadata(12, NULL, 0);
    produce(9, NULL, 1, 0);
    list_offsets(1, NULL, -1);
    fetch(12, NULL, 0, 1);
    conv_end("conv-produce-fetch");
    conv_begin();
    create_topics(5, NULL, "fz3", 2);
    create_partitions(2, NULL, "fz3", 3);
    incremental_alter_configs(1, NULL, "fz3");
    describe_configs(4, NULL, 2, "fz3");
    delete_topics(4, NULL, "fz3");
    conv_end("conv-admin");
    delete_records(0, "delete_records-v0", 1);
    delete_records(2, "delete_records-v2-hw", -1);
    conv_begin();
    metadata(12, NULL, 0);
    produce(9, NULL, -1, 0);
    produce(9, NULL, 1, 0);
    delete_records(2, NULL, 2);
    list_offsets(1, NULL, -2);
    fetch(12, NULL, 0, 1);
    conv_end("conv-delete-records");
    kw_fini(&conv);
    return 0;
}
