/* Broker and topic configuration. cfg_table is the single description of
 * every broker key: its type, field, default (as text, so defaults pass the
 * same parser and bounds as user values), bounds, allowed names and doc line.
 * Parsing, validation, config_init's defaults and --help all walk it; aliases
 * (broker.id, log.retention.hours, ...) and Kafka keys that Cairn accepts but
 * ignores are rows of the same table. topic_table maps each topic key to the
 * broker key that supplies its type, bounds and default. Invariants: after
 * config_init every field holds a value that passed validation; a failed
 * config_set or topic_config_set leaves the struct unchanged; listen_host and
 * listen_port always describe the current listeners string. */
#include "config/config.h"
#include "config/config_int.h"

#include "util/common.h"
#include "util/slog.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    CFG_STR,       /* char * (owned); choices, if set, restrict it to those names */
    CFG_I32,       /* int32_t in [min, max] */
    CFG_I64,       /* int64_t in [min, max] */
    CFG_BOOL,      /* int, 0 or 1, from "true" / "false" */
    CFG_ENUM,      /* int, index into choices */
    CFG_LISTENERS, /* char * (owned), also sets listen_host and listen_port */
    CFG_AMQP_LISTENERS, /* char * (owned), also sets n_amqp, amqp_host, amqp_port */
    CFG_HTTP_LISTENERS, /* char * (owned), also sets n_http, http_host, http_port */
    CFG_ALIAS,     /* another name for key `target`, value multiplied by scale */
    CFG_IGNORED,   /* a Kafka key with no meaning in Cairn: accepted, ignored */
} cfg_type;

typedef struct cfg_entry {
    const char *name;
    cfg_type type;
    size_t off;                 /* field in cairn_config */
    const char *def;            /* default, as text */
    int64_t min, max;           /* CFG_I32 / CFG_I64 bounds, inclusive */
    const char *const *choices; /* CFG_ENUM / CFG_STR names, NULL-terminated */
    const char *target;         /* CFG_ALIAS: canonical key */
    int64_t scale;              /* CFG_ALIAS: target units per unit of this key */
    /* CFG_STR: extra validation; 0 or -CN_EINVAL with a message in err. */
    int (*check)(const char *name, const char *v, char *err, size_t err_len);
    const char *doc;
    int empty_ok;               /* CFG_STR: "" is a value (an optional path) */
} cfg_entry;

#define CFG_OFF(f) offsetof(cairn_config, f)
#define C_STR(n, f, d, chk, doc_) \
    {.name = n, .type = CFG_STR, .off = CFG_OFF(f), .def = d, .check = chk, .doc = doc_}
#define C_NAMES(n, f, d, ch, doc_) \
    {.name = n, .type = CFG_STR, .off = CFG_OFF(f), .def = d, .choices = ch, .doc = doc_}
#define C_I32(n, f, d, lo, hi, doc_) \
    {.name = n, .type = CFG_I32, .off = CFG_OFF(f), .def = d, .min = lo, .max = hi, .doc = doc_}
#define C_I64(n, f, d, lo, hi, doc_) \
    {.name = n, .type = CFG_I64, .off = CFG_OFF(f), .def = d, .min = lo, .max = hi, .doc = doc_}
#define C_BOOL(n, f, d, doc_) {.name = n, .type = CFG_BOOL, .off = CFG_OFF(f), .def = d, .doc = doc_}
#define C_ENUM(n, f, d, ch, doc_) \
    {.name = n, .type = CFG_ENUM, .off = CFG_OFF(f), .def = d, .choices = ch, .doc = doc_}
#define C_ALIAS(n, t, sc) {.name = n, .type = CFG_ALIAS, .target = t, .scale = sc}
#define C_IGNORED(n) {.name = n, .type = CFG_IGNORED}
#define C_OPT(n, f, doc_) \
    {.name = n, .type = CFG_STR, .off = CFG_OFF(f), .def = "", .empty_ok = 1, .doc = doc_}

static int check_one_dir(const char *name, const char *v, char *err, size_t err_len);
static int check_dlq_suffix(const char *name, const char *v, char *err, size_t err_len);
static int check_cluster_listeners(const char *name, const char *v, char *err, size_t err_len);
static int check_peers(const char *name, const char *v, char *err, size_t err_len);
static int parse_listener(const char *s, size_t n, char *host, size_t host_len, int *out_port,
                          int *out_plaintext, char *err, size_t err_len);

/* Index order must match config_ts_type. */
static const char *const ts_type_names[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const cleanup_names[] = {"delete", "compact", NULL};
static const char *const client_auth_names[] = {"none", "requested", "required", NULL};
static const char *const inter_broker_names[] = {"PLAINTEXT", "SSL", NULL};
static const char *const http_auth_names[] = {"none", "basic", NULL};

static const cfg_entry cfg_table[] = {
    {.name = "listeners", .type = CFG_LISTENERS, .off = CFG_OFF(listeners),
     .def = "PLAINTEXT://127.0.0.1:9092",
     .doc = "Where Kafka clients connect: comma-separated [NAME://]HOST:PORT, each a "
            "listener whose NAME maps to its security protocol through "
            "listener.security.protocol.map (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; "
            "no NAME: PLAINTEXT); empty HOST means 0.0.0.0, [ADDR]:PORT for IPv6. "
            "CONTROLLER listeners (KRaft's) are accepted and skipped."},
    C_STR("listener.security.protocol.map", listener_security_map,
          "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
          config__check_protocol_map,
          "Listener names and their security protocols: comma-separated NAME:PROTOCOL."),
    C_OPT("ssl.certificate.location", ssl_cert_location,
          "PEM certificate chain every TLS listener presents (SSL://, SASL_SSL://)."),
    C_OPT("ssl.key.location", ssl_key_location, "PEM private key of that certificate."),
    C_OPT("ssl.key.password", ssl_key_password, "Password of an encrypted private key."),
    C_OPT("ssl.ca.location", ssl_ca_location,
          "PEM file of the CAs trusted to sign client certificates (ssl.client.auth)."),
    C_ENUM("ssl.client.auth", ssl_client_auth, "none", client_auth_names,
           "Client certificates on TLS listeners: none; requested (checked when sent); "
           "required (a client without a trusted one cannot connect)."),
    C_STR("ssl.enabled.protocols", ssl_enabled_protocols, "TLSv1.2,TLSv1.3",
          config__check_protocols,
          "TLS versions accepted: TLSv1.2,TLSv1.3 or TLSv1.3 alone."),
    C_OPT("ssl.cipher.suites", ssl_cipher_suites,
          "TLS 1.2 cipher list in OpenSSL's syntax; empty: OpenSSL's defaults."),
    C_STR("ssl.principal.mapping.rules", ssl_principal_rules, "DEFAULT", NULL,
          "How a client certificate's subject (RFC 2253 DN) becomes the principal User:NAME, "
          "as Kafka's: comma-separated DEFAULT (the DN) or RULE:PATTERN/REPLACEMENT/[L|U] "
          "(the first whose regular expression matches the whole DN; $1.. its groups)."),
    C_ENUM("security.inter.broker.protocol", cluster_tls, "PLAINTEXT", inter_broker_names,
           "Between cluster nodes: PLAINTEXT, or SSL (mutual TLS with the ssl.* certificate, "
           "key and CAs: a node without a certificate signed by ssl.ca.location cannot join)."),
    C_STR("sasl.enabled.mechanisms", sasl_mechanisms, "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
          config__check_mechanisms,
          "SASL mechanisms SASL_PLAINTEXT and SASL_SSL listeners offer: any of SCRAM-SHA-256, "
          "SCRAM-SHA-512, PLAIN (checked against the stored SCRAM credentials)."),
    C_I64("connection.failed.authentication.delay.ms", auth_fail_delay_ms, "100", 0, 5000,
          "A failed login (Kafka SASL, AMQP, HTTP) is answered after this long, doubled for "
          "every further failure from the same address within a minute, up to 5 s (0: at "
          "once)."),
    C_I64("connections.max.reauth.ms", reauth_ms, "0", 0, INT64_MAX,
          "SASL sessions last this long; a client must re-authenticate on its connection "
          "before then (KIP-368) or it is closed. 0: sessions do not expire."),
    C_ENUM("http.authentication", http_auth, "none", http_auth_names,
           "HTTP API logins: none (whoever reaches a listener is an administrator: keep it on "
           "loopback), or basic (Authorization: Basic with the users' passwords; 401 without)."),
    C_BOOL("authorizer.enabled", authorizer_enabled, "false",
           "Check every Kafka request against the ACLs (CreateAcls, cairn acl); false: no "
           "checks, as a Kafka broker without an authorizer."),
    C_OPT("super.users", super_users,
          "Principals allowed everything, semicolon-separated: User:admin;User:ops."),
    C_BOOL("allow.everyone.if.no.acl.found", allow_everyone_if_no_acl, "false",
           "With the authorizer on, a resource without any ACL is open to everyone (true) or "
           "to super users only (false)."),
    C_BOOL("allow.insecure.listeners", allow_insecure_listeners, "false",
           "Let a listener without TLS or authentication bind to an address other machines "
           "can reach (by default such a listener stops the start)."),
    {.name = "amqp.listeners", .type = CFG_AMQP_LISTENERS, .off = CFG_OFF(amqp_listeners),
     .def = CONFIG_AMQP_DEFAULT_LISTENERS,
     .doc = "Where AMQP 0-9-1 clients connect: comma-separated [amqp://|amqps://]HOST:PORT "
            "(amqps: TLS with the ssl.* settings), [ADDR]:PORT for IPv6, empty HOST means "
            "0.0.0.0; off disables AMQP. With the default, an address that cannot be bound "
            "(no IPv6) is skipped with a warning."},
    /* Resource alarms of the AMQP front end (src/amqp/ah_alarm.c). */
    C_I64("amqp.memory.high.watermark.bytes", amqp_mem_high_bytes, "0", 0, INT64_MAX,
          "Bytes of AMQP messages held in memory (bodies, headers, names, content being "
          "received) above which the memory alarm blocks publishing connections "
          "(connection.blocked); it clears below 90%. 0: 20% of physical memory."),
    C_I64("amqp.disk.free.limit.bytes", amqp_disk_free_limit_bytes, "52428800", 0, INT64_MAX,
          "Free space on the data directory's filesystem below which the disk alarm blocks "
          "publishing AMQP connections (checked every second); 0 turns the check off."),
    /* The HTTP front end (src/http). */
    {.name = "http.listeners", .type = CFG_HTTP_LISTENERS, .off = CFG_OFF(http_listeners),
     .def = CONFIG_HTTP_DEFAULT_LISTENERS,
     .doc = "Where HTTP clients connect (REST API, metrics, health): comma-separated "
            "[http://|https://]HOST:PORT (https: TLS with the ssl.* settings), [ADDR]:PORT "
            "for IPv6, empty HOST means 0.0.0.0; off disables HTTP."},
    C_I64("http.max.body.bytes", http_max_body_bytes, "16777216", 0, INT32_MAX,
          "Largest HTTP request body accepted (413 above it; also bounded by "
          "socket.request.max.bytes)."),
    C_I32("http.max.header.bytes", http_max_header_bytes, "16384", 256, 1048576,
          "Largest HTTP request line plus headers accepted (431 above it)."),
    C_I32("http.webhook.max.attempts", http_webhook_max_attempts, "5", 1, 1000,
          "Delivery attempts of one event to a webhook callback before it goes to the "
          "dead-letter topic (a subscription's max_attempts overrides it)."),
    C_I64("http.webhook.backoff.base.ms", http_webhook_backoff_base_ms, "200", 1, 3600000,
          "Delay before the first retry of a failed webhook delivery; doubled per attempt, "
          "with jitter (a random 50..100% of the delay)."),
    C_I64("http.webhook.backoff.max.ms", http_webhook_backoff_max_ms, "30000", 1, 86400000,
          "Longest delay between two webhook delivery attempts."),
    C_I32("http.webhook.timeout.ms", http_webhook_timeout_ms, "10000", 100, 600000,
          "Time a webhook callback has to answer one POST (connect included) before the "
          "attempt counts as failed (a subscription's timeout_ms overrides it)."),
    C_I64("http.sse.keepalive.ms", http_sse_keepalive_ms, "15000", 10, 3600000,
          "A Server-Sent Events stream with nothing to send for this long gets a "
          "': keepalive' comment line (for proxies and clients' idle timeouts)."),
    C_I64("http.sse.max.buffered.bytes", http_sse_max_buffered_bytes, "262144", 4096, 67108864,
          "Unsent bytes a Server-Sent Events stream may queue for its client; above it the "
          "stream stops reading the log until half of them left (backpressure)."),
    C_STR("http.webhook.dead.letter.suffix", http_webhook_dlq_suffix, ".dlq", check_dlq_suffix,
          "Events that exhaust their attempts go to the topic <event_type><suffix>."),
    C_STR("log.dirs", log_dirs, "./data", check_one_dir,
          "Data directory, one subdirectory per partition (a single directory)."),
    C_I32("node.id", node_id, "1", 0, INT32_MAX, "This broker's id in Metadata responses."),
    C_STR("cluster.listeners", cluster_listeners, "off", check_cluster_listeners,
          "Where the other nodes of a cluster connect (HOST:PORT), or off for a single node."),
    C_STR("cluster.peers", cluster_peers, "off", check_peers,
          "The cluster's nodes as ID@HOST:PORT of their cluster listeners, comma-separated, "
          "this node included; off for a single node."),
    C_BOOL("cluster.join", cluster_join, "false",
           "Join a running cluster: cluster.peers names this node and some of the cluster's "
           "nodes (seeds); this node opens its replicas of the cluster's own logs empty, dials "
           "the seeds, and becomes a member once the controller has registered it. A node "
           "that is already a member (its data directory says so) ignores it."),
    C_I32("cluster.election.timeout.ms", cluster_election_ms, "1000", 50, 600000,
          "Raft election timeout of replicated partitions: a follower that hears no leader "
          "for this long (randomized up to twice it) stands for election; heartbeats go "
          "every tenth of it. A leader that heard from no majority for half of it answers "
          "produce with NOT_ENOUGH_REPLICAS."),
    C_I32("cluster.voters.max", cluster_voters_max, "5", 3, CONFIG_MAX_PEERS,
          "Voters of the logs every node keeps (the metadata log, the committed offsets, "
          "the transaction log, AMQP's objects and queues): the members of lowest id, this "
          "many at most; the other members hold a copy that does not vote (standby), so a "
          "large cluster's commits wait for this many nodes, not all."),
    C_BOOL("auto.leader.rebalance.enable", auto_leader_rebalance, "true",
           "In a cluster, hand each replicated partition's leadership back to its preferred "
           "leader (the first replica Metadata lists) once that node is in sync, when too "
           "few of the partitions preferring a node are led by it (below)."),
    C_I64("leader.imbalance.check.interval.seconds", leader_imbalance_check_s, "300", 1,
          86400 * 365, "How often each node checks the leaders of the partitions it leads."),
    C_I32("leader.imbalance.per.broker.percentage", leader_imbalance_pct, "10", 0, 100,
          "A node's partitions go back to it when more than this share of the partitions "
          "preferring it are led elsewhere."),
    C_BOOL("controlled.shutdown.enable", controlled_shutdown, "true",
           "In a cluster, a node asked to stop (SIGTERM, SIGINT) first hands the leadership "
           "of every partition it leads to an in-sync replica, so that clients move on "
           "without waiting for an election; a second signal stops at once."),
    C_I64("controlled.shutdown.timeout.ms", controlled_shutdown_ms, "10000", 0, 600000,
          "Longest a controlled shutdown waits for its partitions to have other leaders."),
    C_I32("default.replication.factor", default_replication_factor, "-1", -1, CONFIG_MAX_PEERS,
          "Replicas of a topic created without a replication factor; -1: every node of the "
          "cluster (1 on a single node)."),
    C_I32("min.insync.replicas", min_insync_replicas, "1", 1, CONFIG_MAX_PEERS,
          "acks=all produces fail fast with NOT_ENOUGH_REPLICAS while fewer replicas than "
          "this are in sync (Kafka's rule). In a cluster the acknowledgement itself always "
          "waits for a majority of the replicas (Raft commit), whatever this says."),
    C_I32("num.partitions", num_partitions, "1", 1, 100000,
          "Partition count of automatically created topics."),
    C_BOOL("auto.create.topics.enable", auto_create_topics, "true",
           "Create a topic when a client first asks for it."),
    C_I64("log.retention.ms", retention_ms, "604800000", -1, INT64_MAX,
          "Delete segments whose newest record is older than this; -1 keeps them forever."),
    C_I64("log.retention.bytes", retention_bytes, "-1", -1, INT64_MAX,
          "Delete the oldest segments while a partition is larger than this; -1 means no limit."),
    C_I64("log.segment.bytes", segment_bytes, "1073741824", 1024, INT32_MAX,
          "Roll to a new segment once the active one reaches this size."),
    C_I64("log.roll.ms", segment_ms, "604800000", 1, INT64_MAX,
          "Roll to a new segment once the active one is this old."),
    C_I64("offsets.topic.segment.bytes", offsets_segment_bytes, "104857600", 1024, INT32_MAX,
          "Segment size of the committed-offsets log (__consumer_offsets): its compaction "
          "frees disk a segment at a time."),
    C_I64("transaction.state.log.segment.bytes", txn_segment_bytes, "104857600", 1024,
          INT32_MAX, "Segment size of the transaction log (__transaction_state)."),
    C_I32("log.index.interval.bytes", index_interval_bytes, "4096", 0, INT32_MAX,
          "Log bytes between two offset index entries."),
    C_I64("log.retention.check.interval.ms", retention_check_ms, "300000", 1, INT64_MAX,
          "How often retention limits are enforced."),
    C_I64("log.flush.interval.ms", flush_interval_ms, "1000", 1, INT64_MAX,
          "Longest time appended data waits for fsync; bounds what acks=0/1 writes can lose "
          "in a crash."),
    C_I32("log.sync.threads", sync_threads, "4", 1, 64,
          "Threads that run fsync jobs: jobs of different partitions run at once, so the file "
          "system can fold their fdatasyncs into one journal commit."),
    C_BOOL("log.preallocate", preallocate, "false", "Allocate segment files at full size."),
    C_I32("message.max.bytes", message_max_bytes, "1048588", 0, INT32_MAX,
          "Largest record batch accepted; default of the topic key max.message.bytes."),
    C_I32("socket.request.max.bytes", socket_request_max_bytes, "104857600", 1, INT32_MAX,
          "Largest request frame accepted."),
    C_I32("max.connections", max_connections, "10000", 1, INT32_MAX,
          "Most client connections open at once; more are closed when accepted."),
    C_I64("connections.max.idle.ms", connections_max_idle_ms, "600000", 0, INT64_MAX,
          "Close a connection with no request in flight after this long; 0 never."),
    C_I64("request.read.timeout.ms", request_read_timeout_ms, "30000", 0, INT64_MAX,
          "Close a connection that leaves a request frame incomplete this long "
          "(slow clients, Cairn-specific); 0 never."),
    C_ENUM("log.message.timestamp.type", ts_type, "CreateTime", ts_type_names,
           "Record timestamps: the producer's (CreateTime) or the broker's clock at append "
           "(LogAppendTime)."),
    C_NAMES("log.level", log_level, "info", log_level_names,
            "Server log verbosity (Cairn-specific)."),
    C_I32("group.initial.rebalance.delay.ms", group_initial_rebalance_delay_ms, "3000", 0,
          INT32_MAX, "How long a new, empty group waits for more members before its first "
          "rebalance completes."),
    C_I32("group.min.session.timeout.ms", group_min_session_timeout_ms, "6000", 1, INT32_MAX,
          "Smallest session timeout a consumer may ask for."),
    C_I32("group.max.session.timeout.ms", group_max_session_timeout_ms, "1800000", 1,
          INT32_MAX, "Largest session timeout a consumer may ask for."),
    C_I32("group.max.size", group_max_size, "2147483647", 1, INT32_MAX,
          "Most members one consumer group may have."),
    C_I64("offsets.retention.minutes", offsets_retention_minutes, "10080", 1, INT64_MAX / 60000,
          "Committed offsets of a group with no members are kept this long after the "
          "group became empty (or after the commit, for standalone consumers)."),
    C_I64("offsets.retention.check.interval.ms", offsets_retention_check_ms, "600000", 1,
          INT64_MAX, "How often expired committed offsets are removed."),
    C_I64("producer.id.expiration.ms", producer_id_expiration_ms, "86400000", 1, INT64_MAX,
          "Forget an idempotent producer's sequence state after this long without "
          "writes to a partition."),
    C_I32("offset.metadata.max.bytes", offset_metadata_max_bytes, "4096", 0, INT32_MAX,
          "Largest metadata string accepted with a committed offset."),
    C_I32("transaction.max.timeout.ms", txn_max_timeout_ms, "900000", 1, INT32_MAX,
          "Largest transaction timeout a transactional producer may ask for."),
    C_I64("transaction.abort.timed.out.transaction.cleanup.interval.ms", txn_abort_check_ms,
          "10000", 1, INT64_MAX, "How often the transaction coordinator aborts transactions "
          "open longer than their timeout."),

    C_ALIAS("broker.id", "node.id", 1),
    C_ALIAS("log.dir", "log.dirs", 1),
    C_ALIAS("log.retention.minutes", "log.retention.ms", 60 * 1000),
    C_ALIAS("log.retention.hours", "log.retention.ms", 60 * 60 * 1000),
    C_ALIAS("log.roll.hours", "log.roll.ms", 60 * 60 * 1000),

    /* Stock Kafka server.properties files load unchanged: these keys tune
     * threads, buffers, ZooKeeper/KRaft or replication, none of which apply to
     * a single-node broker. */
    C_IGNORED("advertised.listeners"),
    C_IGNORED("controller.listener.names"),
    C_IGNORED("controller.quorum.bootstrap.servers"),
    C_IGNORED("controller.quorum.voters"),
    C_IGNORED("inter.broker.listener.name"),
    C_IGNORED("log.cleaner.enable"),
    C_IGNORED("num.io.threads"),
    C_IGNORED("num.network.threads"),
    C_IGNORED("num.recovery.threads.per.data.dir"),
    C_IGNORED("offsets.topic.replication.factor"),
    C_IGNORED("process.roles"),
    C_IGNORED("share.coordinator.state.topic.min.isr"),
    C_IGNORED("share.coordinator.state.topic.replication.factor"),
    C_IGNORED("socket.receive.buffer.bytes"),
    C_IGNORED("socket.send.buffer.bytes"),
    C_IGNORED("transaction.state.log.min.isr"),
    C_IGNORED("transaction.state.log.replication.factor"),
    C_IGNORED("zookeeper.connect"),
    C_IGNORED("zookeeper.connection.timeout.ms"),
};

/* Topic keys. The broker key named in each row supplies type, bounds and the
 * default; cleanup.policy has no broker counterpart and carries its own. */
typedef struct topic_entry {
    const char *name;
    size_t off;             /* field in topic_config; same C type as the broker field */
    const char *broker_key; /* NULL: use spec */
    const cfg_entry *spec;
} topic_entry;

static const cfg_entry cleanup_spec = {.name = "cleanup.policy", .type = CFG_ENUM,
                                       .def = "delete", .choices = cleanup_names};

#define T_OFF(f) offsetof(topic_config, f)
static const topic_entry topic_table[TOPIC_CFG__COUNT] = {
    [TOPIC_CFG_RETENTION_MS] = {"retention.ms", T_OFF(retention_ms), "log.retention.ms", NULL},
    [TOPIC_CFG_RETENTION_BYTES] = {"retention.bytes", T_OFF(retention_bytes),
                                   "log.retention.bytes", NULL},
    [TOPIC_CFG_SEGMENT_BYTES] = {"segment.bytes", T_OFF(segment_bytes), "log.segment.bytes", NULL},
    [TOPIC_CFG_SEGMENT_MS] = {"segment.ms", T_OFF(segment_ms), "log.roll.ms", NULL},
    [TOPIC_CFG_MAX_MESSAGE_BYTES] = {"max.message.bytes", T_OFF(max_message_bytes),
                                     "message.max.bytes", NULL},
    [TOPIC_CFG_TIMESTAMP_TYPE] = {"message.timestamp.type", T_OFF(ts_type),
                                  "log.message.timestamp.type", NULL},
    [TOPIC_CFG_CLEANUP_POLICY] = {"cleanup.policy", T_OFF(cleanup_compact), NULL, &cleanup_spec},
    [TOPIC_CFG_MIN_INSYNC_REPLICAS] = {"min.insync.replicas", T_OFF(min_insync_replicas),
                                       "min.insync.replicas", NULL},
};

#define SAME_SIZE(tf, bf) \
    (sizeof(((topic_config *)0)->tf) == sizeof(((cairn_config *)0)->bf))
_Static_assert(SAME_SIZE(retention_ms, retention_ms) && SAME_SIZE(retention_bytes, retention_bytes) &&
                   SAME_SIZE(segment_bytes, segment_bytes) && SAME_SIZE(segment_ms, segment_ms) &&
                   SAME_SIZE(max_message_bytes, message_max_bytes) && SAME_SIZE(ts_type, ts_type) &&
                   SAME_SIZE(min_insync_replicas, min_insync_replicas),
               "topic_config fields must have the broker fields' types");

/* Helpers ---------------------------------------------------------------- */

CN_PRINTF(3, 4) static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static const cfg_entry *cfg_find(const char *name)
{
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++)
        if (strcmp(cfg_table[i].name, name) == 0)
            return &cfg_table[i];
    return NULL;
}

static void *field(void *base, size_t off) { return (char *)base + off; }
static const void *cfield(const void *base, size_t off) { return (const char *)base + off; }

static void slot_set_int(cfg_type type, void *slot, int64_t v)
{
    if (type == CFG_I64)
        *(int64_t *)slot = v;
    else if (type == CFG_I32)
        *(int32_t *)slot = (int32_t)v;
    else
        *(int *)slot = (int)v; /* CFG_BOOL, CFG_ENUM */
}

static int64_t slot_get_int(cfg_type type, const void *slot)
{
    if (type == CFG_I64)
        return *(const int64_t *)slot;
    if (type == CFG_I32)
        return *(const int32_t *)slot;
    return *(const int *)slot;
}

static void slot_set_str(void *slot, const char *s)
{
    char **p = slot, *old = *p;
    *p = xstrdup(s); /* before the free: s may be the old value */
    free(old);
}

/* "a|b|c" for messages and --help. */
static const char *choices_text(const char *const *ch, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; ch[i] && n < len; i++) {
        int w = snprintf(buf + n, len - n, "%s%s", i ? "|" : "", ch[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return buf;
}

static int parse_int(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out,
                     char *err, size_t err_len)
{
    char *end = NULL;
    long long x = 0;
    errno = 0;
    if (*v && !isspace((unsigned char)*v)) /* strtoll would skip it */
        x = strtoll(v, &end, 10);
    if (!end || end == v || *end) {
        set_err(err, err_len, "%s: '%s' is not an integer", name, v);
        return -CN_EINVAL;
    }
    if ((errno == ERANGE && x == LLONG_MIN) || x < lo) {
        set_err(err, err_len, "%s: value %s below minimum %" PRId64, name, v, lo);
        return -CN_EINVAL;
    }
    if (errno == ERANGE || x > hi) {
        set_err(err, err_len, "%s: value %s above maximum %" PRId64, name, v, hi);
        return -CN_EINVAL;
    }
    *out = x;
    return 0;
}

static int parse_choice(const char *name, const char *const *ch, const char *v, int64_t *out,
                        char *err, size_t err_len)
{
    for (int64_t i = 0; ch[i]; i++) {
        if (strcasecmp(ch[i], v) == 0) {
            *out = i;
            return 0;
        }
    }
    char names[128];
    set_err(err, err_len, "%s: '%s' is not one of %s", name, v,
            choices_text(ch, names, sizeof(names)));
    return -CN_EINVAL;
}

/* Numeric value of v for an I32/I64/BOOL/ENUM entry. */
static int parse_scalar(const cfg_entry *e, const char *name, const char *v, int64_t *out,
                        char *err, size_t err_len)
{
    switch (e->type) {
    case CFG_I32:
    case CFG_I64:
        return parse_int(name, v, e->min, e->max, out, err, err_len);
    case CFG_BOOL:
        if (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0) {
            *out = strcasecmp(v, "true") == 0;
            return 0;
        }
        set_err(err, err_len, "%s: '%s' is not a boolean (true|false)", name, v);
        return -CN_EINVAL;
    case CFG_ENUM:
        return parse_choice(name, e->choices, v, out, err, err_len);
    default:
        set_err(err, err_len, "%s: not a scalar key", name);
        return -CN_EINVAL;
    }
}

/* Kafka's log.dirs is a list; silently using "a,b" as one path would hide
 * the data of a migrated config. */
int config_parse_hostport(const char *v, char *host, size_t host_len, int *port, char *err,
                          size_t err_len)
{
    int plaintext;
    if (strstr(v, "://")) {
        set_err(err, err_len, "'%s' is not HOST:PORT", v);
        return -CN_EINVAL;
    }
    int rc = parse_listener(v, strlen(v), host, host_len, port, &plaintext, err, err_len);
    if (rc == 0 && (*port <= 0 || host[0] == '\0')) {
        set_err(err, err_len, "'%s' needs a host and a port above 0", v);
        return -CN_EINVAL;
    }
    return rc;
}

int config_parse_peers(const char *v, config_peer *out, int max, int *n, char *err,
                       size_t err_len)
{
    *n = 0;
    if (strcmp(v, "off") == 0)
        return 0;
    const char *p = v;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[160];
        if (len == 0 || len >= sizeof(item)) {
            set_err(err, err_len, "cluster.peers: bad item in '%s' (ID@HOST:PORT,...)", v);
            return -CN_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *at = strchr(item, '@');
        char *end = NULL;
        long id = at ? strtol(item, &end, 10) : 0;
        if (!at || end != at || id <= 0 || id > INT32_MAX) {
            set_err(err, err_len, "cluster.peers: '%s' is not ID@HOST:PORT with an id above 0",
                    item);
            return -CN_EINVAL;
        }
        if (*n == max) {
            set_err(err, err_len, "cluster.peers: more than %d nodes", max);
            return -CN_EINVAL;
        }
        config_peer *pe = &out[*n];
        pe->id = (int32_t)id;
        char e2[200];
        if (config_parse_hostport(at + 1, pe->host, sizeof(pe->host), &pe->port, e2,
                                  sizeof(e2)) < 0) {
            set_err(err, err_len, "cluster.peers: %s", e2);
            return -CN_EINVAL;
        }
        for (int i = 0; i < *n; i++)
            if (out[i].id == pe->id) {
                set_err(err, err_len, "cluster.peers: node id %d listed twice", pe->id);
                return -CN_EINVAL;
            }
        (*n)++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static int check_cluster_listeners(const char *name, const char *v, char *err, size_t err_len)
{
    if (strcmp(v, "off") == 0)
        return 0;
    char host[64], e2[200];
    int port;
    if (config_parse_hostport(v, host, sizeof(host), &port, e2, sizeof(e2)) < 0) {
        set_err(err, err_len, "%s: %s (or off)", name, e2);
        return -CN_EINVAL;
    }
    return 0;
}

static int check_peers(const char *name, const char *v, char *err, size_t err_len)
{
    config_peer peers[CONFIG_MAX_PEERS];
    int n;
    (void)name;
    return config_parse_peers(v, peers, CONFIG_MAX_PEERS, &n, err, err_len);
}

static int check_one_dir(const char *name, const char *v, char *err, size_t err_len)
{
    if (!strchr(v, ','))
        return 0;
    set_err(err, err_len, "%s: only one directory is supported, got '%s'", name, v);
    return -CN_EINVAL;
}

/* 1..32 of the topic-name characters [a-zA-Z0-9._-]. */
static int check_dlq_suffix(const char *name, const char *v, char *err, size_t err_len)
{
    size_t n = strlen(v);
    int ok = n >= 1 && n <= 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '_' || v[i] == '-';
    if (ok)
        return 0;
    set_err(err, err_len, "%s: 1..32 of [a-zA-Z0-9._-], got '%s'", name, v);
    return -CN_EINVAL;
}

/* Listeners -------------------------------------------------------------- */

/* One "[NAME://]HOST:PORT" item of length n at s. */
static int parse_listener(const char *s, size_t n, char *host, size_t host_len, int *out_port,
                          int *out_plaintext, char *err, size_t err_len)
{
    *out_plaintext = 1;
    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(s + i, "://", 3) == 0) { /* listener name */
            *out_plaintext = i == 9 && strncasecmp(s, "PLAINTEXT", 9) == 0;
            s += i + 3;
            n -= i + 3;
            break;
        }
    }
    const char *h = s, *colon;
    size_t hn;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close + 1 == s + n || close[1] != ':') {
            set_err(err, err_len, "listeners: '%.*s' is not [ADDRESS]:PORT", (int)n, s);
            return -CN_EINVAL;
        }
        h = s + 1;
        hn = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = memrchr(s, ':', n);
        if (!colon) {
            set_err(err, err_len, "listeners: '%.*s' has no :PORT", (int)n, s);
            return -CN_EINVAL;
        }
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn)) {
            set_err(err, err_len, "listeners: IPv6 address in '%.*s' needs [brackets]", (int)n, s);
            return -CN_EINVAL;
        }
    }
    for (size_t i = 0; i < hn; i++) {
        if (isspace((unsigned char)h[i]) || strchr("/[]", h[i])) {
            set_err(err, err_len, "listeners: bad host '%.*s'", (int)hn, h);
            return -CN_EINVAL;
        }
    }
    if (hn >= host_len) {
        set_err(err, err_len, "listeners: host name too long");
        return -CN_EINVAL;
    }
    const char *p = colon + 1, *end = s + n;
    long port = 0;
    if (p == end || end - p > 5) {
        set_err(err, err_len, "listeners: port '%.*s' is not 1-65535", (int)(end - p), p);
        return -CN_EINVAL;
    }
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p)) {
            set_err(err, err_len, "listeners: port '%.*s' is not a number", (int)(end - colon - 1),
                    colon + 1);
            return -CN_EINVAL;
        }
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) {
        set_err(err, err_len, "listeners: port %ld is not 1-65535", port);
        return -CN_EINVAL;
    }
    if (hn) {
        memcpy(host, h, hn);
        host[hn] = '\0';
    } else {
        snprintf(host, host_len, "0.0.0.0"); /* Kafka: empty host binds every interface */
    }
    *out_port = (int)port;
    return 0;
}

/* Validate every item of a comma-separated list and keep all but the
 * CONTROLLER ones (their protocol is resolved when listening: the map may
 * be set after this key). */
static int apply_listeners(cairn_config *c, const char *v, char *err, size_t err_len)
{
    char *names[CONFIG_KAFKA_MAX_LISTENERS], *hosts[CONFIG_KAFKA_MAX_LISTENERS];
    int ports[CONFIG_KAFKA_MAX_LISTENERS];
    int n = 0, rc = 0;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *e = end;
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        if (e == p) {
            set_err(err, err_len, "listeners: empty listener in '%s'", v);
            rc = -CN_EINVAL;
            break;
        }
        char host[256], name[32] = "PLAINTEXT";
        int port, plaintext;
        rc = parse_listener(p, (size_t)(e - p), host, sizeof(host), &port, &plaintext, err,
                            err_len);
        if (rc < 0)
            break;
        const char *sep = memmem(p, (size_t)(e - p), "://", 3);
        if (sep) {
            size_t nl = (size_t)(sep - p);
            int ok = nl > 0 && nl < sizeof(name);
            for (size_t i = 0; ok && i < nl; i++) {
                ok = isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == '-';
                name[i] = (char)toupper((unsigned char)p[i]);
            }
            if (!ok) {
                set_err(err, err_len, "listeners: bad listener name in '%.*s'", (int)(e - p),
                        p);
                rc = -CN_EINVAL;
                break;
            }
            name[nl] = '\0';
        }
        if (strcmp(name, "CONTROLLER") != 0) {
            for (int i = 0; i < n && rc == 0; i++) {
                if (strcmp(names[i], name) == 0) {
                    set_err(err, err_len, "listeners: two listeners named %s in '%s'", name, v);
                    rc = -CN_EINVAL;
                } else if (ports[i] == port) {
                    set_err(err, err_len, "listeners: two listeners on port %d in '%s'", port, v);
                    rc = -CN_EINVAL;
                }
            }
            if (rc < 0)
                break;
            if (n == CONFIG_KAFKA_MAX_LISTENERS) {
                set_err(err, err_len, "listeners: more than %d listeners",
                        CONFIG_KAFKA_MAX_LISTENERS);
                rc = -CN_EINVAL;
                break;
            }
            names[n] = xstrdup(name);
            hosts[n] = xstrdup(host);
            ports[n++] = port;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc == 0 && n == 0) {
        set_err(err, err_len, "listeners: no listener but CONTROLLER in '%s'", v);
        rc = -CN_EINVAL;
    }
    if (rc < 0) {
        for (int i = 0; i < n; i++) {
            free(names[i]);
            free(hosts[i]);
        }
        return rc;
    }
    for (int i = 0; i < c->n_kafka; i++) {
        free(c->kafka_name[i]);
        free(c->kafka_host[i]);
    }
    for (int i = 0; i < n; i++) {
        c->kafka_name[i] = names[i];
        c->kafka_host[i] = hosts[i];
        c->kafka_port[i] = ports[i];
    }
    c->n_kafka = n;
    slot_set_str(&c->listeners, v);
    slot_set_str(&c->listen_host, hosts[0]);
    c->listen_port = ports[0];
    return 0;
}

/* "off", or a comma-separated list of HOST:PORT (no listener names). */
/* An address list: key names it in messages ("amqp.listeners"), the other
 * arguments are its fields in cairn_config (max entries). */
typedef struct addr_list {
    const char *key;
    char **hosts;
    int *ports;
    int *n;
    int max;
    char **slot;
    const char *scheme, *scheme_tls; /* "amqp", "amqps": optional SCHEME:// per item */
    int *tls;                        /* per item: 1 for scheme_tls */
} addr_list;

static int apply_addr_list(const addr_list *al, const char *v, char *err, size_t err_len)
{
    char *hosts[CONFIG_AMQP_MAX_LISTENERS > CONFIG_HTTP_MAX_LISTENERS ? CONFIG_AMQP_MAX_LISTENERS
                                                                      : CONFIG_HTTP_MAX_LISTENERS];
    int ports[CN_ARRAY_LEN(hosts)], tls[CN_ARRAY_LEN(hosts)];
    int n = 0, rc = 0;
    if (strcmp(v, "off") != 0) {
        const char *p = v;
        for (;;) {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            while (p < end && isspace((unsigned char)*p))
                p++;
            const char *e = end;
            while (e > p && isspace((unsigned char)e[-1]))
                e--;
            char host[256];
            int port, plaintext;
            if (e == p) {
                set_err(err, err_len, "%s: empty item in '%s' (or 'off')", al->key, v);
                rc = -CN_EINVAL;
                break;
            }
            const char *sep = memmem(p, (size_t)(e - p), "://", 3);
            int is_tls = 0;
            if (sep) {
                size_t sl = (size_t)(sep - p);
                if (sl == strlen(al->scheme_tls) && strncasecmp(p, al->scheme_tls, sl) == 0) {
                    is_tls = 1;
                } else if (sl != strlen(al->scheme) || strncasecmp(p, al->scheme, sl) != 0) {
                    set_err(err, err_len, "%s: '%.*s' is not [%s://|%s://]HOST:PORT", al->key,
                            (int)(e - p), p, al->scheme, al->scheme_tls);
                    rc = -CN_EINVAL;
                    break;
                }
                p = sep + 3;
            }
            if (n == al->max) {
                set_err(err, err_len, "%s: more than %d addresses", al->key, al->max);
                rc = -CN_EINVAL;
                break;
            }
            rc = parse_listener(p, (size_t)(e - p), host, sizeof(host), &port, &plaintext, err,
                                err_len);
            if (rc < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%s", err); /* "listeners: ..." */
                set_err(err, err_len, "%.*s%s", (int)(strlen(al->key) - strlen("listeners")),
                        al->key, msg);
                break;
            }
            hosts[n] = xstrdup(host);
            tls[n] = is_tls;
            ports[n++] = port;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(hosts[i]);
        return rc;
    }
    for (int i = 0; i < *al->n; i++)
        free(al->hosts[i]);
    for (int i = 0; i < n; i++) {
        al->hosts[i] = hosts[i];
        al->ports[i] = ports[i];
        al->tls[i] = tls[i];
    }
    *al->n = n;
    slot_set_str(al->slot, v);
    return 0;
}

static int apply_amqp_listeners(cairn_config *c, const char *v, char *err, size_t err_len)
{
    addr_list al = {"amqp.listeners", c->amqp_host, c->amqp_port, &c->n_amqp,
                    CONFIG_AMQP_MAX_LISTENERS, &c->amqp_listeners, "amqp", "amqps", c->amqp_tls};
    int rc = apply_addr_list(&al, v, err, err_len);
    if (rc == 0)
        c->amqp_default = 0; /* config_init sets it after applying the defaults */
    return rc;
}

static int apply_http_listeners(cairn_config *c, const char *v, char *err, size_t err_len)
{
    addr_list al = {"http.listeners", c->http_host, c->http_port, &c->n_http,
                    CONFIG_HTTP_MAX_LISTENERS, &c->http_listeners, "http", "https", c->http_tls};
    return apply_addr_list(&al, v, err, err_len);
}

/* Broker config ---------------------------------------------------------- */

/* Validate v for entry e and store it in c; name is the key as the user wrote
 * it (it differs from e->name for aliases). Leaves c unchanged on error. */
static int cfg_apply(const cfg_entry *e, const char *name, cairn_config *c, const char *v,
                     char *err, size_t err_len)
{
    int64_t x;
    int rc;
    switch (e->type) {
    case CFG_IGNORED:
        slog_debug("config key ignored key=%s", name);
        return 0;
    case CFG_LISTENERS:
        return apply_listeners(c, v, err, err_len);
    case CFG_AMQP_LISTENERS:
        return apply_amqp_listeners(c, v, err, err_len);
    case CFG_HTTP_LISTENERS:
        return apply_http_listeners(c, v, err, err_len);
    case CFG_STR:
        if (!*v && !e->empty_ok) {
            set_err(err, err_len, "%s: value must not be empty", name);
            return -CN_EINVAL;
        }
        if (e->check && (rc = e->check(name, v, err, err_len)) < 0)
            return rc;
        if (e->choices) {
            rc = parse_choice(name, e->choices, v, &x, err, err_len);
            if (rc < 0)
                return rc;
            v = e->choices[x]; /* canonical spelling */
        }
        slot_set_str(field(c, e->off), v);
        return 0;
    case CFG_ALIAS: {
        const cfg_entry *t = cfg_find(e->target);
        CN_ASSERT(t && t->type != CFG_ALIAS);
        if (e->scale == 1)
            return cfg_apply(t, name, c, v, err, err_len);
        /* Scaled: bounds in this key's units; -1 ("forever") stays -1. */
        CN_ASSERT(t->type == CFG_I64);
        int64_t lo = t->min < 0 ? t->min : (t->min + e->scale - 1) / e->scale;
        rc = parse_int(name, v, lo, t->max / e->scale, &x, err, err_len);
        if (rc < 0)
            return rc;
        slot_set_int(t->type, field(c, t->off), x < 0 ? x : x * e->scale);
        return 0;
    }
    default:
        rc = parse_scalar(e, name, v, &x, err, err_len);
        if (rc < 0)
            return rc;
        slot_set_int(e->type, field(c, e->off), x);
        return 0;
    }
}

void config_init(cairn_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++) {
        const cfg_entry *e = &cfg_table[i];
        if (!e->def)
            continue;
        char err[256];
        int rc = cfg_apply(e, e->name, c, e->def, err, sizeof(err));
        if (rc < 0)
            slog_error("bad built-in default: %s", err);
        CN_ASSERT(rc == 0);
    }
    c->amqp_default = 1;
}

void config_fini(cairn_config *c)
{
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++)
        if (cfg_table[i].type == CFG_STR || cfg_table[i].type == CFG_LISTENERS ||
            cfg_table[i].type == CFG_AMQP_LISTENERS || cfg_table[i].type == CFG_HTTP_LISTENERS)
            free(*(char **)field(c, cfg_table[i].off));
    free(c->listen_host);
    for (int i = 0; i < c->n_kafka; i++) {
        free(c->kafka_name[i]);
        free(c->kafka_host[i]);
    }
    for (int i = 0; i < c->n_amqp; i++)
        free(c->amqp_host[i]);
    for (int i = 0; i < c->n_http; i++)
        free(c->http_host[i]);
    memset(c, 0, sizeof(*c));
}

int config_set(cairn_config *c, const char *key, const char *value, char *err, size_t err_len)
{
    if (!key || !value) {
        set_err(err, err_len, "config key or value missing");
        return -CN_EINVAL;
    }
    const cfg_entry *e = cfg_find(key);
    if (!e) {
        set_err(err, err_len, "unknown config key '%s'", key);
        return -CN_ENOENT;
    }
    return cfg_apply(e, key, c, value, err, err_len);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_load_file(cairn_config *c, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        set_err(err, err_len, "cannot open config file '%s': %s", path, strerror(e));
        return e == ENOENT ? -CN_ENOENT : -CN_EIO;
    }
    char *line = NULL, msg[512];
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            set_err(err, err_len, "%s:%d: expected key=value, got '%s'", path, lineno, s);
            rc = -CN_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key) {
            set_err(err, err_len, "%s:%d: missing key before '='", path, lineno);
            rc = -CN_EINVAL;
            break;
        }
        rc = config_set(c, key, value, msg, sizeof(msg));
        if (rc < 0) {
            set_err(err, err_len, "%s:%d: %s", path, lineno, msg);
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        set_err(err, err_len, "%s: read error", path);
        rc = -CN_EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

static void help_range(const cfg_entry *e, char *buf, size_t len)
{
    int64_t type_max = e->type == CFG_I32 ? INT32_MAX : INT64_MAX;
    if (e->type == CFG_BOOL)
        snprintf(buf, len, "true|false");
    else if (e->choices)
        choices_text(e->choices, buf, len);
    else if ((e->type == CFG_I32 || e->type == CFG_I64) && e->max == type_max)
        snprintf(buf, len, ">= %" PRId64, e->min);
    else if (e->type == CFG_I32 || e->type == CFG_I64)
        snprintf(buf, len, "%" PRId64 "..%" PRId64, e->min, e->max);
    else
        buf[0] = '\0';
}

/* Doc text indented six columns, wrapped before column 79. */
static void help_doc(FILE *out, const char *doc)
{
    size_t col = 0;
    while (*doc) {
        size_t w = strcspn(doc, " ");
        if (col && col + 1 + w > 72) {
            fputc('\n', out);
            col = 0;
        }
        fprintf(out, "%s%.*s", col ? " " : "      ", (int)w, doc);
        col += w + (col ? 1 : 0);
        doc += w;
        doc += strspn(doc, " ");
    }
    fputc('\n', out);
}

void config_print_help(FILE *out)
{
    char range[128];
    fprintf(out, "Configuration keys (--config FILE of key=value lines, or --set key=value):\n");
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++) {
        const cfg_entry *e = &cfg_table[i];
        if (e->type == CFG_ALIAS || e->type == CFG_IGNORED)
            continue;
        help_range(e, range, sizeof(range));
        fprintf(out, "  %s = %s%s%s%s\n", e->name, e->def, range[0] ? "  (" : "", range,
                range[0] ? ")" : "");
        help_doc(out, e->doc);
    }
    fprintf(out, "\nAliases:\n");
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++) {
        const cfg_entry *e = &cfg_table[i];
        if (e->type != CFG_ALIAS)
            continue;
        const char *unit = e->scale == 60 * 1000 ? " in minutes"
                           : e->scale == 60 * 60 * 1000 ? " in hours"
                                                       : "";
        fprintf(out, "  %-26s %s%s\n", e->name, e->target, unit);
    }
    fprintf(out, "\nTopic keys (default from the broker key shown):\n");
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        const topic_entry *te = &topic_table[k];
        if (te->broker_key) {
            fprintf(out, "  %-26s %s\n", te->name, te->broker_key);
        } else {
            help_range(te->spec, range, sizeof(range));
            fprintf(out, "  %-26s %s  (%s)\n", te->name, te->spec->def, range);
        }
    }
    fprintf(out, "\nAccepted and ignored (Kafka keys with no effect here):\n ");
    size_t col = 1;
    for (size_t i = 0; i < CN_ARRAY_LEN(cfg_table); i++) {
        if (cfg_table[i].type != CFG_IGNORED)
            continue;
        size_t w = strlen(cfg_table[i].name) + 1;
        if (col + w > 78) {
            fprintf(out, "\n ");
            col = 1;
        }
        fprintf(out, " %s", cfg_table[i].name);
        col += w;
    }
    fprintf(out, "\n");
}

/* Topic config ----------------------------------------------------------- */

static const cfg_entry *topic_spec(int k)
{
    const topic_entry *te = &topic_table[k];
    const cfg_entry *e = te->broker_key ? cfg_find(te->broker_key) : te->spec;
    CN_ASSERT(e && (e->type == CFG_I32 || e->type == CFG_I64 || e->type == CFG_ENUM));
    return e;
}

static void topic_reset(topic_config *t, const cairn_config *c, int k)
{
    const topic_entry *te = &topic_table[k];
    const cfg_entry *e = topic_spec(k);
    int64_t v = 0;
    if (te->broker_key) {
        v = slot_get_int(e->type, cfield(c, e->off));
    } else {
        int rc = parse_scalar(e, e->name, e->def, &v, NULL, 0);
        CN_ASSERT(rc == 0);
    }
    slot_set_int(e->type, field(t, te->off), v);
    t->overridden &= ~(1u << k);
}

void topic_config_defaults(const cairn_config *c, topic_config *out)
{
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < TOPIC_CFG__COUNT; k++)
        topic_reset(out, c, k);
}

int topic_config_lookup(const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < TOPIC_CFG__COUNT; k++)
        if (strcmp(topic_table[k].name, name) == 0)
            return k;
    return -1;
}

int topic_config_set(topic_config *t, const cairn_config *c, const char *key, const char *value)
{
    int k = topic_config_lookup(key);
    if (k < 0)
        return -CN_ENOENT;
    if (!value) {
        topic_reset(t, c, k);
        return 0;
    }
    const cfg_entry *e = topic_spec(k);
    int64_t v;
    int rc = parse_scalar(e, topic_table[k].name, value, &v, NULL, 0);
    if (rc < 0)
        return rc;
    slot_set_int(e->type, field(t, topic_table[k].off), v);
    t->overridden |= 1u << k;
    return 0;
}

const char *topic_config_name(topic_cfg_key k)
{
    return (unsigned)k < TOPIC_CFG__COUNT ? topic_table[k].name : NULL;
}

const char *topic_config_value(const topic_config *t, topic_cfg_key k, char *buf, size_t buf_len)
{
    if ((unsigned)k >= TOPIC_CFG__COUNT || !buf || !buf_len)
        return NULL;
    const cfg_entry *e = topic_spec(k);
    int64_t v = slot_get_int(e->type, cfield(t, topic_table[k].off));
    if (e->type == CFG_ENUM) {
        size_t n = 0;
        while (e->choices[n])
            n++;
        snprintf(buf, buf_len, "%s", v >= 0 && (size_t)v < n ? e->choices[v] : "?");
    } else {
        snprintf(buf, buf_len, "%" PRId64, v);
    }
    return buf;
}

int topic_config_write(const topic_config *t, FILE *out)
{
    char buf[32];
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        if (!(t->overridden & (1u << k)))
            continue;
        if (fprintf(out, "%s=%s\n", topic_table[k].name,
                    topic_config_value(t, (topic_cfg_key)k, buf, sizeof(buf))) < 0)
            return -CN_EIO;
    }
    return 0;
}
