/* Broker and topic configuration.
 *
 * One table (config.c) drives parsing, validation, defaults, `cairn --help`
 * and DescribeConfigs. Keys are Apache Kafka's broker property names where one
 * exists. Broker config comes from the embedded defaults, then a key=value
 * file (--config), then command-line overrides (--listen, --data-dir, --set).
 * Topic configs are per-topic overrides layered on the broker defaults.
 * Not thread-safe: loop thread (and main before the loop starts) only. */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H
#include <stdint.h>
#include <stdio.h>

/* The program's version: `cairn --version`, the log, and what front ends
 * announce (AMQP's server-properties). */
#define CAIRN_VERSION "0.1.0"

/* Most Kafka listeners (listeners items). */
#define CONFIG_KAFKA_MAX_LISTENERS 8

/* A listener's security protocol (listener.security.protocol.map). */
typedef enum {
    CONFIG_SEC_PLAINTEXT = 0,
    CONFIG_SEC_SSL = 1,
    CONFIG_SEC_SASL_PLAINTEXT = 2,
    CONFIG_SEC_SASL_SSL = 3,
} config_security;

/* Most AMQP listen addresses (amqp.listeners items). */
#define CONFIG_AMQP_MAX_LISTENERS 8
/* The built-in amqp.listeners. */
#define CONFIG_AMQP_DEFAULT_LISTENERS "127.0.0.1:5672,[::1]:5672"

/* Most HTTP listen addresses (http.listeners items), and the built-in list. */
#define CONFIG_HTTP_MAX_LISTENERS 8
#define CONFIG_HTTP_DEFAULT_LISTENERS "127.0.0.1:8080"

typedef enum { TS_CREATE_TIME = 0, TS_LOG_APPEND_TIME = 1 } config_ts_type;

/* Broker-wide settings. Strings are owned by the struct (config_fini frees). */
typedef struct cairn_config {
    char *listeners;             /* listeners: "PLAINTEXT://127.0.0.1:9092" */
    /* Derived from listeners: every item but CONTROLLER ones (KRaft's,
     * accepted and skipped), NAME ("PLAINTEXT" without one) upper-cased;
     * the strings are owned. listen_host/port: the first of them (what a
     * cluster node announces to the others). */
    int n_kafka;
    char *kafka_name[CONFIG_KAFKA_MAX_LISTENERS];
    char *kafka_host[CONFIG_KAFKA_MAX_LISTENERS];
    int kafka_port[CONFIG_KAFKA_MAX_LISTENERS];
    char *listen_host;
    int listen_port;
    char *listener_security_map; /* listener.security.protocol.map: NAME:PROTOCOL,... */
    /* TLS (issue 13; net/tls.h): every TLS listener's certificate and key. */
    char *ssl_cert_location;     /* ssl.certificate.location: PEM chain, "" none */
    char *ssl_key_location;      /* ssl.key.location: PEM key, "" none */
    char *ssl_key_password;      /* ssl.key.password: "" none */
    char *ssl_ca_location;       /* ssl.ca.location: PEM CAs for client certificates, "" none */
    int ssl_client_auth;         /* ssl.client.auth: 0 none, 1 requested, 2 required */
    char *ssl_enabled_protocols; /* ssl.enabled.protocols: "TLSv1.2,TLSv1.3" */
    char *ssl_cipher_suites;     /* ssl.cipher.suites: "" (OpenSSL's defaults) */
    char *ssl_principal_rules;   /* ssl.principal.mapping.rules: "DEFAULT" (auth/pmap.h) */
    int allow_insecure_listeners; /* allow.insecure.listeners: false */
    int cluster_tls;             /* security.inter.broker.protocol: 0 PLAINTEXT, 1 SSL */
    char *sasl_mechanisms;       /* sasl.enabled.mechanisms: "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN" */
    int64_t reauth_ms;           /* connections.max.reauth.ms: 0 (sessions do not expire) */
    int64_t auth_fail_delay_ms;  /* connection.failed.authentication.delay.ms: 100 */
    int authorizer_enabled;      /* authorizer.enabled: false */
    int http_auth;               /* http.authentication: 0 none, 1 basic */
    char *super_users;           /* super.users: "User:a;User:b", "" none */
    int allow_everyone_if_no_acl; /* allow.everyone.if.no.acl.found: false */
    char *amqp_listeners;        /* amqp.listeners: "127.0.0.1:5672,[::1]:5672" or "off" */
    /* Derived from amqp_listeners (n_amqp 0 when "off"); the hosts are owned. */
    int n_amqp;
    char *amqp_host[CONFIG_AMQP_MAX_LISTENERS];
    int amqp_port[CONFIG_AMQP_MAX_LISTENERS];
    int amqp_tls[CONFIG_AMQP_MAX_LISTENERS];   /* 1: amqps:// (TLS) */
    int amqp_default;            /* 1 while amqp.listeners holds the built-in default */
    int64_t amqp_mem_high_bytes; /* amqp.memory.high.watermark.bytes: 0 = 20% of RAM */
    int64_t amqp_disk_free_limit_bytes; /* amqp.disk.free.limit.bytes: 52428800 */
    char *http_listeners;        /* http.listeners: "127.0.0.1:8080" or "off" */
    /* Derived from http_listeners (n_http 0 when "off"); the hosts are owned. */
    int n_http;
    char *http_host[CONFIG_HTTP_MAX_LISTENERS];
    int http_port[CONFIG_HTTP_MAX_LISTENERS];
    int http_tls[CONFIG_HTTP_MAX_LISTENERS];   /* 1: https:// (TLS) */
    int64_t http_max_body_bytes; /* http.max.body.bytes: 16777216 */
    int32_t http_max_header_bytes; /* http.max.header.bytes: 16384 */
    /* Webhook delivery of the HTTP event bus (src/http/hh_webhook.c). */
    int32_t http_webhook_max_attempts;     /* http.webhook.max.attempts: 5 */
    int64_t http_webhook_backoff_base_ms;  /* http.webhook.backoff.base.ms: 200 */
    int64_t http_webhook_backoff_max_ms;   /* http.webhook.backoff.max.ms: 30000 */
    int32_t http_webhook_timeout_ms;       /* http.webhook.timeout.ms: 10000 */
    char *http_webhook_dlq_suffix;         /* http.webhook.dead.letter.suffix: ".dlq" */
    /* Server-Sent Events (src/http/hh_sse.c). */
    int64_t http_sse_keepalive_ms;         /* http.sse.keepalive.ms: 15000 */
    int64_t http_sse_max_buffered_bytes;   /* http.sse.max.buffered.bytes: 262144 */
    char *log_dirs;              /* log.dirs: "./data" (one directory) */
    int32_t node_id;             /* node.id (alias broker.id): 1 */
    /* Cluster (issue 12; src/cluster): "off" and "" for a single node. */
    char *cluster_listeners;     /* cluster.listeners: "off" or HOST:PORT */
    char *cluster_peers;         /* cluster.peers: "ID@HOST:PORT,..." (this node included) or "off" */
    int cluster_join;            /* cluster.join: false (join a running cluster) */
    int32_t cluster_election_ms; /* cluster.election.timeout.ms: 1000 */
    int32_t cluster_voters_max;  /* cluster.voters.max: 5 (logs of every node) */
    int auto_leader_rebalance;   /* auto.leader.rebalance.enable: true */
    int64_t leader_imbalance_check_s; /* leader.imbalance.check.interval.seconds: 300 */
    int32_t leader_imbalance_pct;     /* leader.imbalance.per.broker.percentage: 10 */
    int controlled_shutdown;          /* controlled.shutdown.enable: true */
    int64_t controlled_shutdown_ms;   /* controlled.shutdown.timeout.ms: 10000 */
    int32_t default_replication_factor; /* default.replication.factor: -1 = every node */
    int32_t min_insync_replicas; /* min.insync.replicas: 1 (acks=all fails fast below it) */
    int32_t num_partitions;      /* num.partitions: 1 */
    int auto_create_topics;      /* auto.create.topics.enable: true */
    int64_t retention_ms;        /* log.retention.ms: 604800000 (-1 = forever) */
    int64_t retention_bytes;     /* log.retention.bytes: -1 */
    int64_t segment_bytes;       /* log.segment.bytes: 1073741824 */
    int64_t segment_ms;          /* log.roll.ms: 604800000 */
    int64_t offsets_segment_bytes; /* offsets.topic.segment.bytes: 104857600 */
    int64_t txn_segment_bytes;   /* transaction.state.log.segment.bytes: 104857600 */
    int32_t index_interval_bytes;/* log.index.interval.bytes: 4096 */
    int64_t retention_check_ms;  /* log.retention.check.interval.ms: 300000 */
    int64_t flush_interval_ms;   /* log.flush.interval.ms: 1000; bounds acks=0/1 loss window */
    int32_t sync_threads;        /* log.sync.threads: 4; fsync jobs of different partitions at once */
    int preallocate;             /* log.preallocate: false */
    int32_t message_max_bytes;   /* message.max.bytes: 1048588 */
    int32_t socket_request_max_bytes; /* socket.request.max.bytes: 104857600 */
    int32_t max_connections;     /* max.connections: 10000 */
    int64_t connections_max_idle_ms; /* connections.max.idle.ms: 600000 */
    int64_t request_read_timeout_ms; /* request.read.timeout.ms: 30000 (cairn-specific) */
    int ts_type;                 /* log.message.timestamp.type: CreateTime */
    char *log_level;             /* log.level: "info" (cairn-specific) */
    int32_t group_initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms: 3000 */
    int32_t group_min_session_timeout_ms;     /* group.min.session.timeout.ms: 6000 */
    int32_t group_max_session_timeout_ms;     /* group.max.session.timeout.ms: 1800000 */
    int32_t group_max_size;                   /* group.max.size: unlimited */
    int64_t offsets_retention_minutes;        /* offsets.retention.minutes: 10080 (7 days) */
    int64_t offsets_retention_check_ms;       /* offsets.retention.check.interval.ms: 600000 */
    int32_t offset_metadata_max_bytes;        /* offset.metadata.max.bytes: 4096 */
    int64_t producer_id_expiration_ms;        /* producer.id.expiration.ms: 86400000 */
    int32_t txn_max_timeout_ms;               /* transaction.max.timeout.ms: 900000 */
    int64_t txn_abort_check_ms;               /* transaction.abort.timed.out.transaction.cleanup.interval.ms: 10000 */
} cairn_config;

/* Per-topic settings; every field is resolved (override or broker default).
 * overridden has bit (1 << TOPIC_CFG_*) set for keys set on the topic. */
typedef enum {
    TOPIC_CFG_RETENTION_MS = 0,
    TOPIC_CFG_RETENTION_BYTES,
    TOPIC_CFG_SEGMENT_BYTES,
    TOPIC_CFG_SEGMENT_MS,
    TOPIC_CFG_MAX_MESSAGE_BYTES,
    TOPIC_CFG_TIMESTAMP_TYPE,
    TOPIC_CFG_CLEANUP_POLICY,
    TOPIC_CFG_MIN_INSYNC_REPLICAS,
    TOPIC_CFG__COUNT
} topic_cfg_key;

typedef struct topic_config {
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t segment_bytes;
    int64_t segment_ms;
    int32_t max_message_bytes;
    int ts_type;
    int cleanup_compact;         /* cleanup.policy: 0 delete, 1 compact (compaction not yet run) */
    int32_t min_insync_replicas; /* min.insync.replicas */
    uint32_t overridden;
} topic_config;

/* Broker config ---------------------------------------------------------- */

/* Fill c with the embedded defaults (zero-config start). */
void config_init(cairn_config *c);
void config_fini(cairn_config *c);
/* Apply one "key=value" (also used for --set). Returns 0, or -CN_EINVAL/-CN_ENOENT
 * with a one-line reason written to err (err_len bytes). */
int config_set(cairn_config *c, const char *key, const char *value, char *err, size_t err_len);
/* Read a key=value file: '#' comments, blank lines, whitespace around key and
 * value ignored. Unknown keys are an error (typos must not pass silently),
 * except keys Kafka has that we accept and ignore (listed in config.c). */
int config_load_file(cairn_config *c, const char *path, char *err, size_t err_len);
/* Print the table for --help. */
void config_print_help(FILE *out);

/* Topic config ----------------------------------------------------------- */

/* Topic defaults derived from the broker config. */
void topic_config_defaults(const cairn_config *c, topic_config *out);
/* Set one topic key ("retention.ms", ...). value NULL resets it to the broker
 * default. Returns 0, -CN_ENOENT (unknown key) or -CN_EINVAL (bad value). */
int topic_config_set(topic_config *t, const cairn_config *c, const char *key, const char *value);
/* Name and current value (as text) of key k; buf holds at least 32 bytes. */
const char *topic_config_name(topic_cfg_key k);
const char *topic_config_value(const topic_config *t, topic_cfg_key k, char *buf, size_t buf_len);
/* Key index by name, or -1. */
int topic_config_lookup(const char *name);
/* Serialise overrides as key=value lines (for the topic's metadata file) and
 * parse them back. */
int topic_config_write(const topic_config *t, FILE *out);
/* Listeners' security (config_listen.c) ------------------------------------ */
/* The protocol a listener name maps to through listener.security.protocol.map
 * (names compare case-insensitively), or -CN_ENOENT when it is not there. */
int config_listener_security(const cairn_config *c, const char *name);
const char *config_security_name(int sec);   /* "SASL_SSL" */
int config_security_tls(int sec);            /* 1 for SSL and SASL_SSL */
/* 1 when host is a loopback address (127.0.0.0/8, ::1, localhost). */
int config_host_is_loopback(const char *host);
/* 1 when mech ("PLAIN", "SCRAM-SHA-512") is in sasl.enabled.mechanisms. */
int config_sasl_enabled(const cairn_config *c, const char *mech, size_t len);
/* The check before listening: every Kafka listener's name has a protocol;
 * a TLS listener has ssl.certificate.location and ssl.key.location; and,
 * unless allow.insecure.listeners, no listener (Kafka, AMQP, HTTP,
 * cluster) that is neither TLS nor authenticated is bound to an address
 * other machines can reach. 0, or -CN_EINVAL with one line in err naming
 * the listener and the way out. */
int config_check_listeners(const cairn_config *c, char *err, size_t err_len);

/* Cluster addresses --------------------------------------------------------- */
#define CONFIG_MAX_PEERS 16
typedef struct config_peer {
    int32_t id;
    char host[64];
    int port;
} config_peer;
/* HOST:PORT (listener syntax, no scheme) into host/port. 0 or -CN_EINVAL
 * with a message in err. */
int config_parse_hostport(const char *v, char *host, size_t host_len, int *port, char *err,
                          size_t err_len);
/* cluster.peers: comma-separated ID@HOST:PORT, ids 1..INT32_MAX and
 * distinct, at most CONFIG_MAX_PEERS; "off" gives 0 peers. 0 or -CN_EINVAL with
 * a message in err. */
int config_parse_peers(const char *v, config_peer *out, int max, int *n, char *err,
                       size_t err_len);
#endif
