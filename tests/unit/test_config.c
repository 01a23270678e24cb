/* Unit tests for broker/config: built-in defaults, validation messages,
 * aliases, listeners parsing, config files (comments, whitespace, unknown
 * keys, line numbers in errors, a stock Kafka server.properties), --help,
 * and topic configs (defaults from the broker, set, reset, render, write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/common.h"

/* Writes text to a fresh temporary file; caller unlinks and frees the path. */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/cairn-test-config-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static int load_text(cairn_config *c, const char *text, char *err, size_t err_len, char **out_path)
{
    char *path = temp_file(text);
    int rc = config_load_file(c, path, err, err_len);
    unlink(path);
    if (out_path)
        *out_path = path;
    else
        free(path);
    return rc;
}

/* Sets key=value and expects failure with rc and a message containing want. */
static void expect_set_error(cairn_config *c, const char *key, const char *value, int rc,
                             const char *want)
{
    char err[256] = "";
    assert_int_equal(config_set(c, key, value, err, sizeof(err)), rc);
    if (!strstr(err, want))
        fail_msg("error for %s=%s was '%s', expected to contain '%s'", key, value, err, want);
}

static void set_ok(cairn_config *c, const char *key, const char *value)
{
    char err[256] = "";
    int rc = config_set(c, key, value, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s=%s failed: %d %s", key, value, rc, err);
}

static void test_defaults_match_documented_values(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    assert_string_equal(c.listeners, "PLAINTEXT://127.0.0.1:9092");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 9092);
    assert_string_equal(c.log_dirs, "./data");
    assert_int_equal(c.node_id, 1);
    assert_int_equal(c.num_partitions, 1);
    assert_int_equal(c.auto_create_topics, 1);
    assert_int_equal(c.retention_ms, 604800000);
    assert_int_equal(c.retention_bytes, -1);
    assert_int_equal(c.segment_bytes, 1073741824);
    assert_int_equal(c.segment_ms, 604800000);
    assert_int_equal(c.index_interval_bytes, 4096);
    assert_int_equal(c.retention_check_ms, 300000);
    assert_int_equal(c.flush_interval_ms, 1000);
    assert_int_equal(c.sync_threads, 4);
    assert_int_equal(c.preallocate, 0);
    assert_int_equal(c.message_max_bytes, 1048588);
    assert_int_equal(c.socket_request_max_bytes, 104857600);
    assert_int_equal(c.ts_type, TS_CREATE_TIME);
    assert_string_equal(c.log_level, "info");
    config_fini(&c);
    config_fini(&c); /* a second fini is harmless */
}

static void test_set_accepts_valid_values(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    set_ok(&c, "log.segment.bytes", "1024");
    assert_int_equal(c.segment_bytes, 1024);
    set_ok(&c, "log.retention.ms", "-1");
    assert_int_equal(c.retention_ms, -1);
    set_ok(&c, "log.retention.bytes", "9223372036854775807");
    assert_int_equal(c.retention_bytes, INT64_MAX);
    set_ok(&c, "message.max.bytes", "0");
    assert_int_equal(c.message_max_bytes, 0);
    set_ok(&c, "node.id", "+7");
    assert_int_equal(c.node_id, 7);
    set_ok(&c, "log.preallocate", "true");
    assert_int_equal(c.preallocate, 1);
    set_ok(&c, "auto.create.topics.enable", "FALSE");
    assert_int_equal(c.auto_create_topics, 0);
    set_ok(&c, "log.message.timestamp.type", "LogAppendTime");
    assert_int_equal(c.ts_type, TS_LOG_APPEND_TIME);
    set_ok(&c, "log.level", "DEBUG");
    assert_string_equal(c.log_level, "debug"); /* canonical spelling */
    set_ok(&c, "log.dirs", "/var/lib/cairn");
    assert_string_equal(c.log_dirs, "/var/lib/cairn");
    set_ok(&c, "log.dirs", c.log_dirs); /* value aliasing the field */
    assert_string_equal(c.log_dirs, "/var/lib/cairn");
    set_ok(&c, "listeners", c.listeners);
    assert_string_equal(c.listen_host, "127.0.0.1");
    config_fini(&c);
}

static void test_set_rejects_bad_values_and_keeps_old(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    expect_set_error(&c, "log.segment.bytes", "12", -CN_EINVAL,
                     "log.segment.bytes: value 12 below minimum 1024");
    expect_set_error(&c, "log.segment.bytes", "4294967296", -CN_EINVAL,
                     "log.segment.bytes: value 4294967296 above maximum 2147483647");
    expect_set_error(&c, "log.segment.bytes", "10MB", -CN_EINVAL,
                     "log.segment.bytes: '10MB' is not an integer");
    expect_set_error(&c, "log.segment.bytes", "", -CN_EINVAL, "is not an integer");
    expect_set_error(&c, "log.segment.bytes", " 2048", -CN_EINVAL, "is not an integer");
    expect_set_error(&c, "log.segment.bytes", "2048 ", -CN_EINVAL, "is not an integer");
    expect_set_error(&c, "log.segment.bytes", "0x1000", -CN_EINVAL, "is not an integer");
    expect_set_error(&c, "log.retention.bytes", "99999999999999999999", -CN_EINVAL,
                     "above maximum 9223372036854775807");
    expect_set_error(&c, "log.retention.ms", "-99999999999999999999", -CN_EINVAL,
                     "below minimum -1");
    expect_set_error(&c, "log.retention.ms", "-2", -CN_EINVAL, "below minimum -1");
    expect_set_error(&c, "node.id", "2147483648", -CN_EINVAL, "above maximum 2147483647");
    expect_set_error(&c, "num.partitions", "0", -CN_EINVAL, "num.partitions: value 0 below");
    expect_set_error(&c, "log.preallocate", "yes", -CN_EINVAL,
                     "log.preallocate: 'yes' is not a boolean (true|false)");
    expect_set_error(&c, "log.message.timestamp.type", "WallClock", -CN_EINVAL,
                     "'WallClock' is not one of CreateTime|LogAppendTime");
    expect_set_error(&c, "log.level", "verbose", -CN_EINVAL,
                     "log.level: 'verbose' is not one of debug|info|warn|error");
    expect_set_error(&c, "log.dirs", "", -CN_EINVAL, "log.dirs: value must not be empty");
    expect_set_error(&c, "log.dirs", "/a,/b", -CN_EINVAL,
                     "log.dirs: only one directory is supported, got '/a,/b'");
    expect_set_error(&c, "log.segmnt.bytes", "2048", -CN_ENOENT,
                     "unknown config key 'log.segmnt.bytes'");
    expect_set_error(&c, "log.segment.bytes", NULL, -CN_EINVAL, "missing");

    assert_int_equal(c.segment_bytes, 1073741824);
    assert_int_equal(c.retention_ms, 604800000);
    assert_int_equal(c.preallocate, 0);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.log_dirs, "./data");

    /* A NULL error buffer is allowed. */
    assert_int_equal(config_set(&c, "nope", "1", NULL, 0), -CN_ENOENT);
    config_fini(&c);
}

static void test_aliases_set_canonical_fields(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    set_ok(&c, "broker.id", "0");
    assert_int_equal(c.node_id, 0);
    set_ok(&c, "log.dir", "/tmp/x");
    assert_string_equal(c.log_dirs, "/tmp/x");
    set_ok(&c, "log.retention.hours", "168");
    assert_int_equal(c.retention_ms, 168LL * 3600 * 1000);
    set_ok(&c, "log.retention.minutes", "5");
    assert_int_equal(c.retention_ms, 5 * 60 * 1000);
    set_ok(&c, "log.retention.hours", "-1");
    assert_int_equal(c.retention_ms, -1);
    set_ok(&c, "log.roll.hours", "2");
    assert_int_equal(c.segment_ms, 2 * 3600 * 1000);
    expect_set_error(&c, "log.roll.hours", "0", -CN_EINVAL, "log.roll.hours: value 0 below minimum 1");
    expect_set_error(&c, "log.retention.hours", "9223372036854775807", -CN_EINVAL,
                     "log.retention.hours: value 9223372036854775807 above maximum 2562047788015");
    expect_set_error(&c, "broker.id", "x", -CN_EINVAL, "broker.id: 'x' is not an integer");
    expect_set_error(&c, "log.dir", "", -CN_EINVAL, "log.dir: value must not be empty");
    config_fini(&c);
}

static void expect_listener(const char *value, const char *host, int port)
{
    cairn_config c;
    config_init(&c);
    set_ok(&c, "listeners", value);
    assert_string_equal(c.listeners, value);
    assert_string_equal(c.listen_host, host);
    assert_int_equal(c.listen_port, port);
    config_fini(&c);
}

static void test_listeners_parse_host_and_port(void **state)
{
    (void)state;
    expect_listener("PLAINTEXT://0.0.0.0:9093", "0.0.0.0", 9093);
    expect_listener("PLAINTEXT://:9092", "0.0.0.0", 9092);
    expect_listener("localhost:1", "localhost", 1);
    expect_listener(":65535", "0.0.0.0", 65535);
    expect_listener("[::1]:9092", "::1", 9092);
    expect_listener("PLAINTEXT://[fe80::1%eth0]:19092", "fe80::1%eth0", 19092);
    expect_listener("plaintext://broker.example.com:9092", "broker.example.com", 9092);
    /* Stock KRaft config: the CONTROLLER listener is checked, then skipped. */
    expect_listener("PLAINTEXT://:9092,CONTROLLER://:9093", "0.0.0.0", 9092);
    expect_listener("CONTROLLER://:9093, PLAINTEXT://127.0.0.2:9094", "127.0.0.2", 9094);
}

/* Several listeners, each with its name and, through the map, its
 * security protocol; the check before listening (secure by default). */
static void test_listeners_security(void **state)
{
    (void)state;
    cairn_config c;
    char err[512];
    config_init(&c);
    set_ok(&c, "listeners", "PLAINTEXT://127.0.0.1:9092, ssl://:9093,CONTROLLER://:9094");
    assert_int_equal(c.n_kafka, 2);
    assert_string_equal(c.kafka_name[1], "SSL");
    assert_string_equal(c.kafka_host[1], "0.0.0.0");
    assert_int_equal(c.kafka_port[1], 9093);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(config_listener_security(&c, "SSL"), CONFIG_SEC_SSL);
    assert_int_equal(config_listener_security(&c, "sasl_ssl"), CONFIG_SEC_SASL_SSL);
    assert_int_equal(config_listener_security(&c, "INTERNAL"), -CN_ENOENT);
    /* SSL without a certificate, then with one */
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "needs ssl.certificate.location"));
    set_ok(&c, "ssl.certificate.location", "/x.pem");
    set_ok(&c, "ssl.key.location", "/x.key");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), 0);
    /* A plaintext listener on every interface is refused ... */
    set_ok(&c, "listeners", "PLAINTEXT://:9092");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "Kafka listener PLAINTEXT://0.0.0.0:9092 would be open"));
    assert_non_null(strstr(err, "allow.insecure.listeners=true"));
    /* ... unless asked for */
    set_ok(&c, "allow.insecure.listeners", "true");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), 0);
    set_ok(&c, "allow.insecure.listeners", "false");
    /* a name mapped through the map */
    set_ok(&c, "listeners", "INTERNAL://10.0.0.1:9092");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "INTERNAL is not in listener.security.protocol.map"));
    set_ok(&c, "listener.security.protocol.map", "INTERNAL:SSL");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), 0);
    expect_set_error(&c, "listener.security.protocol.map", "INTERNAL:TLS", -CN_EINVAL,
                     "'INTERNAL:TLS' is not NAME:PROTOCOL");
    expect_set_error(&c, "listener.security.protocol.map", ":SSL", -CN_EINVAL,
                     "is not NAME:PROTOCOL");
    /* AMQP and HTTP listeners fall under the same rule */
    set_ok(&c, "amqp.listeners", "192.168.1.5:5672");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "AMQP listener 192.168.1.5:5672"));
    set_ok(&c, "amqp.listeners", "[::1]:5672,127.0.0.9:5672");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), 0);
    set_ok(&c, "http.listeners", ":8080");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    set_ok(&c, "http.listeners", "localhost:8080");
    set_ok(&c, "ssl.client.auth", "required");
    assert_int_equal(config_check_listeners(&c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "needs ssl.ca.location"));
    expect_set_error(&c, "ssl.client.auth", "maybe", -CN_EINVAL, "none|requested|required");
    expect_set_error(&c, "ssl.enabled.protocols", "TLSv1.1,TLSv1.2", -CN_EINVAL,
                     "'TLSv1.1' is not TLSv1.2 or TLSv1.3");
    set_ok(&c, "ssl.enabled.protocols", "TLSv1.3");
    config_fini(&c);
    assert_int_equal(config_host_is_loopback("127.1.2.3"), 1);
    assert_int_equal(config_host_is_loopback("[::1]"), 1);
    assert_int_equal(config_host_is_loopback("::"), 0);
    assert_int_equal(config_host_is_loopback("broker.example.com"), 0);
}

static void test_listeners_reject_bad_values(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    expect_set_error(&c, "listeners", "PLAINTEXT://host:0", -CN_EINVAL, "port 0 is not 1-65535");
    expect_set_error(&c, "listeners", "host:65536", -CN_EINVAL, "port 65536 is not 1-65535");
    expect_set_error(&c, "listeners", "host:123456", -CN_EINVAL, "is not 1-65535");
    expect_set_error(&c, "listeners", "host:", -CN_EINVAL, "is not 1-65535");
    expect_set_error(&c, "listeners", "host:90x2", -CN_EINVAL, "port '90x2' is not a number");
    expect_set_error(&c, "listeners", "host", -CN_EINVAL, "'host' has no :PORT");
    expect_set_error(&c, "listeners", "::1:9092", -CN_EINVAL, "needs [brackets]");
    expect_set_error(&c, "listeners", "[::1]9092", -CN_EINVAL, "is not [ADDRESS]:PORT");
    expect_set_error(&c, "listeners", "[::1", -CN_EINVAL, "is not [ADDRESS]:PORT");
    expect_set_error(&c, "listeners", "CONTROLLER://:9093", -CN_EINVAL,
                     "no listener but CONTROLLER");
    expect_set_error(&c, "listeners", "A://:9093,a://:9094", -CN_EINVAL, "two listeners named A");
    expect_set_error(&c, "listeners", "A://:9093,B://:9093", -CN_EINVAL,
                     "two listeners on port 9093");
    expect_set_error(&c, "listeners", "B@D://:9093", -CN_EINVAL, "bad listener name");
    expect_set_error(&c, "listeners", "PLAINTEXT://:9092,", -CN_EINVAL, "empty listener");
    expect_set_error(&c, "listeners", "", -CN_EINVAL, "empty listener");
    expect_set_error(&c, "listeners", "PLAINTEXT://:9092,CONTROLLER://:x", -CN_EINVAL,
                     "not a number");
    /* Failed sets changed nothing. */
    assert_string_equal(c.listeners, "PLAINTEXT://127.0.0.1:9092");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 9092);
    config_fini(&c);
}

static void test_amqp_listeners(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    /* Default: two addresses, IPv6 in brackets; marked as the default. */
    assert_string_equal(c.amqp_listeners, "127.0.0.1:5672,[::1]:5672");
    assert_int_equal(c.n_amqp, 2);
    assert_string_equal(c.amqp_host[0], "127.0.0.1");
    assert_int_equal(c.amqp_port[0], 5672);
    assert_string_equal(c.amqp_host[1], "::1");
    assert_int_equal(c.amqp_port[1], 5672);
    assert_int_equal(c.amqp_default, 1);
    /* A list, with spaces and an empty host (every interface). */
    set_ok(&c, "amqp.listeners", "127.0.0.1:5673, [::1]:5674 ,:5675");
    assert_int_equal(c.n_amqp, 3);
    assert_string_equal(c.amqp_host[1], "::1");
    assert_int_equal(c.amqp_port[1], 5674);
    assert_string_equal(c.amqp_host[2], "0.0.0.0");
    assert_int_equal(c.amqp_default, 0);
    /* Bad values change nothing and name the key. */
    expect_set_error(&c, "amqp.listeners", "host:0", -CN_EINVAL, "amqp.listeners: port 0");
    expect_set_error(&c, "amqp.listeners", "::1:5672", -CN_EINVAL, "needs [brackets]");
    expect_set_error(&c, "amqp.listeners", "a:1,", -CN_EINVAL, "empty item");
    expect_set_error(&c, "amqp.listeners", "", -CN_EINVAL, "empty item");
    expect_set_error(&c, "amqp.listeners", "amqpx://h:5672", -CN_EINVAL,
                     "is not [amqp://|amqps://]HOST:PORT");
    expect_set_error(&c, "amqp.listeners", "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9", -CN_EINVAL,
                     "more than 8");
    assert_int_equal(c.n_amqp, 3);
    assert_string_equal(c.amqp_listeners, "127.0.0.1:5673, [::1]:5674 ,:5675");
    set_ok(&c, "amqp.listeners", "amqp://127.0.0.1:5672,AMQPS://127.0.0.1:5671");
    assert_int_equal(c.n_amqp, 2);
    assert_int_equal(c.amqp_tls[0], 0);
    assert_int_equal(c.amqp_tls[1], 1);
    assert_int_equal(c.amqp_port[1], 5671);
    /* off: no address. */
    set_ok(&c, "amqp.listeners", "off");
    assert_int_equal(c.n_amqp, 0);
    assert_string_equal(c.amqp_listeners, "off");
    /* Setting the default's text explicitly is not the default any more. */
    set_ok(&c, "amqp.listeners", "127.0.0.1:5672,[::1]:5672");
    assert_int_equal(c.n_amqp, 2);
    assert_int_equal(c.amqp_default, 0);
    config_fini(&c);
}

static void test_http_listeners_and_limits(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    assert_string_equal(c.http_listeners, "127.0.0.1:8080");
    assert_int_equal(c.n_http, 1);
    assert_string_equal(c.http_host[0], "127.0.0.1");
    assert_int_equal(c.http_port[0], 8080);
    assert_int_equal(c.http_max_body_bytes, 16777216);
    assert_int_equal(c.http_max_header_bytes, 16384);
    set_ok(&c, "http.listeners", "127.0.0.1:18080,[::1]:18081");
    assert_int_equal(c.n_http, 2);
    assert_string_equal(c.http_host[1], "::1");
    assert_int_equal(c.http_port[1], 18081);
    /* The AMQP list is untouched, and errors name the HTTP key. */
    assert_int_equal(c.n_amqp, 2);
    expect_set_error(&c, "http.listeners", "host:0", -CN_EINVAL, "http.listeners: port 0");
    expect_set_error(&c, "http.listeners", "a:1,", -CN_EINVAL, "http.listeners: empty item");
    expect_set_error(&c, "http.listeners", "ws://h:80", -CN_EINVAL,
                     "is not [http://|https://]HOST:PORT");
    assert_int_equal(c.n_http, 2);
    set_ok(&c, "http.listeners", "https://[::1]:8443");
    assert_int_equal(c.n_http, 1);
    assert_int_equal(c.http_tls[0], 1);
    assert_string_equal(c.http_host[0], "::1");
    set_ok(&c, "http.listeners", "off");
    assert_int_equal(c.n_http, 0);
    set_ok(&c, "http.max.body.bytes", "1024");
    assert_int_equal(c.http_max_body_bytes, 1024);
    expect_set_error(&c, "http.max.header.bytes", "10", -CN_EINVAL, "http.max.header.bytes");
    config_fini(&c);
}

static void test_amqp_alarm_keys(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    assert_int_equal(c.amqp_mem_high_bytes, 0); /* 0: 20% of physical memory */
    assert_int_equal(c.amqp_disk_free_limit_bytes, 52428800);
    set_ok(&c, "amqp.memory.high.watermark.bytes", "2097152");
    assert_int_equal(c.amqp_mem_high_bytes, 2097152);
    set_ok(&c, "amqp.disk.free.limit.bytes", "0");
    assert_int_equal(c.amqp_disk_free_limit_bytes, 0);
    expect_set_error(&c, "amqp.memory.high.watermark.bytes", "-1", -CN_EINVAL,
                     "amqp.memory.high.watermark.bytes");
    expect_set_error(&c, "amqp.disk.free.limit.bytes", "lots", -CN_EINVAL,
                     "amqp.disk.free.limit.bytes");
    assert_int_equal(c.amqp_mem_high_bytes, 2097152);
    config_fini(&c);
}

static void test_ignored_kafka_keys_are_accepted(void **state)
{
    (void)state;
    cairn_config c;
    config_init(&c);
    set_ok(&c, "num.network.threads", "3");
    set_ok(&c, "zookeeper.connect", "localhost:2181");
    set_ok(&c, "advertised.listeners", "PLAINTEXT://x:9092");
    set_ok(&c, "log.cleaner.enable", "whatever");
    config_fini(&c);
}

static void test_load_file_with_comments_and_whitespace(void **state)
{
    (void)state;
    cairn_config c;
    char err[512] = "";
    config_init(&c);
    int rc = load_text(&c,
                       "# a comment\n"
                       "! another comment style\n"
                       "\n"
                       "   \t\n"
                       "  log.segment.bytes   =   2048  \n"
                       "\tnode.id=42\r\n"
                       "log.dirs = /data/with = sign\n"
                       "log.preallocate=true\n"
                       "listeners=PLAINTEXT://[::1]:9999\n"
                       "log.retention.hours=1\n"
                       "num.io.threads=8\n"
                       "node.id=43", /* last line without newline; later keys win */
                       err, sizeof(err), NULL);
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(c.segment_bytes, 2048);
    assert_int_equal(c.node_id, 43);
    assert_string_equal(c.log_dirs, "/data/with = sign");
    assert_int_equal(c.preallocate, 1);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9999);
    assert_int_equal(c.retention_ms, 3600000);
    config_fini(&c);
}

static void test_load_file_errors_name_file_and_line(void **state)
{
    (void)state;
    cairn_config c;
    char err[512], want[600];
    char *path;
    config_init(&c);

    assert_int_equal(load_text(&c, "# x\nnode.id=3\n\nlog.segmnt.bytes=1\n", err, sizeof(err), &path),
                     -CN_ENOENT);
    snprintf(want, sizeof(want), "%s:4: unknown config key 'log.segmnt.bytes'", path);
    assert_string_equal(err, want);
    free(path);
    assert_int_equal(c.node_id, 3); /* lines before the error were applied */

    assert_int_equal(load_text(&c, "log.segment.bytes=12\n", err, sizeof(err), &path), -CN_EINVAL);
    snprintf(want, sizeof(want), "%s:1: log.segment.bytes: value 12 below minimum 1024", path);
    assert_string_equal(err, want);
    free(path);

    assert_int_equal(load_text(&c, "\n\njust some words\n", err, sizeof(err), &path), -CN_EINVAL);
    snprintf(want, sizeof(want), "%s:3: expected key=value, got 'just some words'", path);
    assert_string_equal(err, want);
    free(path);

    assert_int_equal(load_text(&c, "  = 5\n", err, sizeof(err), &path), -CN_EINVAL);
    snprintf(want, sizeof(want), "%s:1: missing key before '='", path);
    assert_string_equal(err, want);
    free(path);

    assert_int_equal(config_load_file(&c, "/nonexistent/cairn.properties", err, sizeof(err)),
                     -CN_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/cairn.properties"));
    config_fini(&c);
}

static void test_load_stock_kafka_server_properties(void **state)
{
    (void)state;
    cairn_config c;
    char err[512] = "";
    config_init(&c);
    int rc = load_text(&c,
                       "############################# Server Basics #############################\n"
                       "process.roles=broker,controller\n"
                       "node.id=1\n"
                       "controller.quorum.bootstrap.servers=localhost:9093\n"
                       "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n"
                       "inter.broker.listener.name=PLAINTEXT\n"
                       "advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n"
                       "controller.listener.names=CONTROLLER\n"
                       "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
                       "num.network.threads=3\n"
                       "num.io.threads=8\n"
                       "socket.send.buffer.bytes=102400\n"
                       "socket.receive.buffer.bytes=102400\n"
                       "socket.request.max.bytes=104857600\n"
                       "log.dirs=/tmp/kraft-combined-logs\n"
                       "num.partitions=1\n"
                       "num.recovery.threads.per.data.dir=1\n"
                       "offsets.topic.replication.factor=1\n"
                       "share.coordinator.state.topic.replication.factor=1\n"
                       "share.coordinator.state.topic.min.isr=1\n"
                       "transaction.state.log.replication.factor=1\n"
                       "transaction.state.log.min.isr=1\n"
                       "#log.flush.interval.messages=10000\n"
                       "log.retention.hours=168\n"
                       "#log.retention.bytes=1073741824\n"
                       "log.segment.bytes=1073741824\n"
                       "log.retention.check.interval.ms=300000\n"
                       "zookeeper.connect=localhost:2181\n"
                       "zookeeper.connection.timeout.ms=18000\n"
                       "group.initial.rebalance.delay.ms=0\n",
                       err, sizeof(err), NULL);
    if (rc != 0)
        fail_msg("stock config failed: %s", err);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9092);
    assert_string_equal(c.log_dirs, "/tmp/kraft-combined-logs");
    assert_int_equal(c.retention_ms, 604800000);
    config_fini(&c);
}

static void test_help_lists_keys_defaults_and_docs(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_help(f);
    fclose(f);
    static const char *const want[] = {
        "listeners = PLAINTEXT://127.0.0.1:9092", "log.segment.bytes = 1073741824  (1024..2147483647)",
        "num.partitions = 1  (1..100000)", "node.id = 1  (>= 0)", "log.preallocate = false  (true|false)",
        "log.message.timestamp.type = CreateTime  (CreateTime|LogAppendTime)",
        "log.level = info  (debug|info|warn|error)", "Roll to a new segment",
        "log.retention.hours", "log.retention.ms in hours", "broker.id", "cleanup.policy",
        "zookeeper.connect"};
    for (size_t i = 0; i < CN_ARRAY_LEN(want); i++)
        if (!strstr(text, want[i]))
            fail_msg("help lacks '%s':\n%s", want[i], text);
    free(text);
}

static void test_topic_defaults_follow_broker(void **state)
{
    (void)state;
    cairn_config c;
    topic_config t;
    config_init(&c);
    set_ok(&c, "log.retention.ms", "1000");
    set_ok(&c, "log.segment.bytes", "4096");
    set_ok(&c, "message.max.bytes", "777");
    set_ok(&c, "log.message.timestamp.type", "LogAppendTime");
    set_ok(&c, "log.roll.ms", "5000");
    set_ok(&c, "log.retention.bytes", "123456");
    topic_config_defaults(&c, &t);
    assert_int_equal(t.retention_ms, 1000);
    assert_int_equal(t.retention_bytes, 123456);
    assert_int_equal(t.segment_bytes, 4096);
    assert_int_equal(t.segment_ms, 5000);
    assert_int_equal(t.max_message_bytes, 777);
    assert_int_equal(t.ts_type, TS_LOG_APPEND_TIME);
    assert_int_equal(t.cleanup_compact, 0);
    assert_int_equal(t.overridden, 0);
    config_fini(&c);
}

static void test_topic_set_reset_render_write(void **state)
{
    (void)state;
    cairn_config c;
    topic_config t;
    char buf[32];
    config_init(&c);
    topic_config_defaults(&c, &t);

    assert_string_equal(topic_config_value(&t, TOPIC_CFG_RETENTION_MS, buf, sizeof(buf)),
                        "604800000");
    assert_string_equal(topic_config_value(&t, TOPIC_CFG_TIMESTAMP_TYPE, buf, sizeof(buf)),
                        "CreateTime");
    assert_string_equal(topic_config_value(&t, TOPIC_CFG_CLEANUP_POLICY, buf, sizeof(buf)),
                        "delete");
    assert_string_equal(topic_config_value(&t, TOPIC_CFG_MAX_MESSAGE_BYTES, buf, sizeof(buf)),
                        "1048588");
    assert_null(topic_config_value(&t, TOPIC_CFG__COUNT, buf, sizeof(buf)));

    assert_int_equal(topic_config_set(&t, &c, "retention.ms", "-1"), 0);
    assert_int_equal(topic_config_set(&t, &c, "cleanup.policy", "compact"), 0);
    assert_int_equal(topic_config_set(&t, &c, "message.timestamp.type", "LogAppendTime"), 0);
    assert_int_equal(topic_config_set(&t, &c, "segment.bytes", "1024"), 0);
    assert_int_equal(t.retention_ms, -1);
    assert_int_equal(t.cleanup_compact, 1);
    assert_int_equal(t.ts_type, TS_LOG_APPEND_TIME);
    assert_int_equal(t.segment_bytes, 1024);
    assert_int_equal(t.overridden, (1u << TOPIC_CFG_RETENTION_MS) | (1u << TOPIC_CFG_CLEANUP_POLICY) |
                                       (1u << TOPIC_CFG_TIMESTAMP_TYPE) |
                                       (1u << TOPIC_CFG_SEGMENT_BYTES));
    assert_string_equal(topic_config_value(&t, TOPIC_CFG_CLEANUP_POLICY, buf, sizeof(buf)),
                        "compact");

    /* Bad values and keys change nothing. */
    assert_int_equal(topic_config_set(&t, &c, "segment.bytes", "10"), -CN_EINVAL);
    assert_int_equal(topic_config_set(&t, &c, "segment.bytes", "1k"), -CN_EINVAL);
    assert_int_equal(topic_config_set(&t, &c, "cleanup.policy", "compact,delete"), -CN_EINVAL);
    assert_int_equal(topic_config_set(&t, &c, "max.message.bytes", "2147483648"), -CN_EINVAL);
    assert_int_equal(topic_config_set(&t, &c, "unclean.leader.election.enable", "true"),
                     -CN_ENOENT);
    assert_int_equal(topic_config_set(&t, &c, "min.insync.replicas", "0"), -CN_EINVAL);
    assert_int_equal(topic_config_set(&t, &c, "log.retention.ms", "1"), -CN_ENOENT);
    assert_int_equal(t.segment_bytes, 1024);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(topic_config_write(&t, f), 0);
    fclose(f);
    assert_string_equal(text, "retention.ms=-1\n"
                              "segment.bytes=1024\n"
                              "message.timestamp.type=LogAppendTime\n"
                              "cleanup.policy=compact\n");
    free(text);

    /* NULL resets to the broker's current value and clears the bit. */
    set_ok(&c, "log.retention.ms", "5555");
    assert_int_equal(topic_config_set(&t, &c, "retention.ms", NULL), 0);
    assert_int_equal(topic_config_set(&t, &c, "cleanup.policy", NULL), 0);
    assert_int_equal(t.retention_ms, 5555);
    assert_int_equal(t.cleanup_compact, 0);
    assert_int_equal(t.overridden,
                     (1u << TOPIC_CFG_TIMESTAMP_TYPE) | (1u << TOPIC_CFG_SEGMENT_BYTES));
    config_fini(&c);
}

static void test_topic_names_and_lookup_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < TOPIC_CFG__COUNT; k++) {
        const char *name = topic_config_name((topic_cfg_key)k);
        assert_non_null(name);
        assert_int_equal(topic_config_lookup(name), k);
    }
    assert_string_equal(topic_config_name(TOPIC_CFG_MAX_MESSAGE_BYTES), "max.message.bytes");
    assert_null(topic_config_name(TOPIC_CFG__COUNT));
    assert_int_equal(topic_config_lookup("nope"), -1);
    assert_int_equal(topic_config_lookup(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_documented_values),
        cmocka_unit_test(test_set_accepts_valid_values),
        cmocka_unit_test(test_set_rejects_bad_values_and_keeps_old),
        cmocka_unit_test(test_aliases_set_canonical_fields),
        cmocka_unit_test(test_listeners_parse_host_and_port),
        cmocka_unit_test(test_listeners_reject_bad_values),
        cmocka_unit_test(test_listeners_security),
        cmocka_unit_test(test_amqp_listeners),
        cmocka_unit_test(test_amqp_alarm_keys),
        cmocka_unit_test(test_ignored_kafka_keys_are_accepted),
        cmocka_unit_test(test_load_file_with_comments_and_whitespace),
        cmocka_unit_test(test_load_file_errors_name_file_and_line),
        cmocka_unit_test(test_load_stock_kafka_server_properties),
        cmocka_unit_test(test_http_listeners_and_limits),
        cmocka_unit_test(test_help_lists_keys_defaults_and_docs),
        cmocka_unit_test(test_topic_defaults_follow_broker),
        cmocka_unit_test(test_topic_set_reset_render_write),
        cmocka_unit_test(test_topic_names_and_lookup_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
