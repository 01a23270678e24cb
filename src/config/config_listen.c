/* Listeners' security: listener.security.protocol.map, the TLS versions
 * key, and the check before listening (secure by default). Contracts in
 * config.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_int.h"
#include "util/common.h"

static const char *const sec_names[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

const char *config_security_name(int sec)
{
    return sec >= 0 && sec < (int)CN_ARRAY_LEN(sec_names) ? sec_names[sec] : "?";
}

int config_security_tls(int sec) { return sec == CONFIG_SEC_SSL || sec == CONFIG_SEC_SASL_SSL; }

static int sec_lookup(const char *s, size_t n)
{
    for (int i = 0; i < (int)CN_ARRAY_LEN(sec_names); i++)
        if (strlen(sec_names[i]) == n && strncasecmp(sec_names[i], s, n) == 0)
            return i;
    return -1;
}

/* Walk "NAME:PROTO,NAME:PROTO": for each item fn(name, nlen, sec, arg);
 * fn returning nonzero stops the walk with that value. -1 when malformed
 * (the bad item in *bad, *bad_len). */
typedef int (*map_fn)(const char *name, size_t nlen, int sec, void *arg);
static int map_walk(const char *v, map_fn fn, void *arg, const char **bad, size_t *bad_len)
{
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *e = end;
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        int sec = colon ? sec_lookup(colon + 1, (size_t)(e - colon - 1)) : -1;
        if (!colon || colon == p || sec < 0) {
            *bad = p;
            *bad_len = (size_t)(e - p);
            return -1;
        }
        int rc = fn(p, (size_t)(colon - p), sec, arg);
        if (rc)
            return rc;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int map_ok(const char *name, size_t nlen, int sec, void *arg)
{
    (void)name, (void)nlen, (void)sec, (void)arg;
    return 0;
}

int config__check_protocol_map(const char *name, const char *v, char *err, size_t err_len)
{
    const char *bad;
    size_t bl;
    if (map_walk(v, map_ok, NULL, &bad, &bl) < 0) {
        snprintf(err, err_len, "%s: '%.*s' is not NAME:PROTOCOL (PLAINTEXT, SSL, "
                               "SASL_PLAINTEXT, SASL_SSL)", name, (int)bl, bad);
        return -CN_EINVAL;
    }
    return 0;
}

int config__check_protocols(const char *name, const char *v, char *err, size_t err_len)
{
    int has12 = 0, has13 = 0;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == 7 && strncasecmp(p, "TLSv1.2", 7) == 0) {
            has12 = 1;
        } else if (n == 7 && strncasecmp(p, "TLSv1.3", 7) == 0) {
            has13 = 1;
        } else {
            snprintf(err, err_len, "%s: '%.*s' is not TLSv1.2 or TLSv1.3 (older versions are "
                                   "not offered)", name, (int)n, p);
            return -CN_EINVAL;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!has13 && has12) {
        snprintf(err, err_len, "%s: TLSv1.2 alone is not offered; use TLSv1.2,TLSv1.3", name);
        return -CN_EINVAL;
    }
    return 0;
}

static const char *const mech_names[] = {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"};

int config__check_mechanisms(const char *name, const char *v, char *err, size_t err_len)
{
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        int ok = 0;
        for (size_t i = 0; i < CN_ARRAY_LEN(mech_names); i++)
            ok |= strlen(mech_names[i]) == n && strncasecmp(mech_names[i], p, n) == 0;
        if (!ok) {
            snprintf(err, err_len, "%s: '%.*s' is not one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN",
                     name, (int)n, p);
            return -CN_EINVAL;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int config_sasl_enabled(const cairn_config *c, const char *mech, size_t len)
{
    const char *p = c->sasl_mechanisms;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == len && strncasecmp(p, mech, len) == 0)
            return 1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

typedef struct map_find {
    const char *name;
    int sec;
} map_find;

static int map_match(const char *name, size_t nlen, int sec, void *arg)
{
    map_find *f = arg;
    if (strlen(f->name) == nlen && strncasecmp(f->name, name, nlen) == 0) {
        f->sec = sec;
        return 1;
    }
    return 0;
}

int config_listener_security(const cairn_config *c, const char *name)
{
    map_find f = {name, -1};
    const char *bad;
    size_t bl;
    if (map_walk(c->listener_security_map, map_match, &f, &bad, &bl) == 1)
        return f.sec;
    return -CN_ENOENT;
}

int config_host_is_loopback(const char *host)
{
    char h[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(h)) {
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
        host = h;
    }
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* what: "Kafka listener PLAINTEXT://"; hint: how to secure it, or "". */
static int insecure(const cairn_config *c, const char *what, const char *host, int port,
                    const char *hint, char *err, size_t err_len)
{
    if (c->allow_insecure_listeners || config_host_is_loopback(host))
        return 0;
    snprintf(err, err_len,
             "%s%s%s:%d would be open to other machines without TLS or authentication: %s"
             "bind it to a loopback address, or set allow.insecure.listeners=true",
             what, strstr(what, "://") ? "" : " ", host[0] ? host : "0.0.0.0", port, hint);
    return -CN_EINVAL;
}

int config_check_listeners(const cairn_config *c, char *err, size_t err_len)
{
    char what[96];
    for (int i = 0; i < c->n_kafka; i++) {
        int sec = config_listener_security(c, c->kafka_name[i]);
        if (sec < 0) {
            snprintf(err, err_len, "listeners: listener name %s is not in "
                                   "listener.security.protocol.map", c->kafka_name[i]);
            return -CN_EINVAL;
        }
        if (config_security_tls(sec) && (!c->ssl_cert_location[0] || !c->ssl_key_location[0])) {
            snprintf(err, err_len, "listeners: %s listener %s needs ssl.certificate.location "
                                   "and ssl.key.location", config_security_name(sec),
                     c->kafka_name[i]);
            return -CN_EINVAL;
        }
        snprintf(what, sizeof(what), "Kafka listener %s://", c->kafka_name[i]);
        if (sec == CONFIG_SEC_SASL_PLAINTEXT && !c->allow_insecure_listeners &&
            !config_host_is_loopback(c->kafka_host[i]) &&
            config_sasl_enabled(c, "PLAIN", 5)) {
            snprintf(err, err_len, "Kafka listener %s://%s:%d would take PLAIN passwords in "
                                   "clear text from other machines: use SASL_SSL://, drop PLAIN "
                                   "from sasl.enabled.mechanisms, or set "
                                   "allow.insecure.listeners=true",
                     c->kafka_name[i], c->kafka_host[i], c->kafka_port[i]);
            return -CN_EINVAL;
        }
        if (sec == CONFIG_SEC_PLAINTEXT &&
            insecure(c, what, c->kafka_host[i], c->kafka_port[i],
                     "use an SSL:// listener, ", err, err_len) < 0)
            return -CN_EINVAL;
    }
    if (c->ssl_client_auth != 0 && !c->ssl_ca_location[0]) {
        snprintf(err, err_len, "ssl.client.auth=%s needs ssl.ca.location (the CAs that sign "
                               "client certificates)",
                 c->ssl_client_auth == 1 ? "requested" : "required");
        return -CN_EINVAL;
    }
    int has_cert = c->ssl_cert_location[0] && c->ssl_key_location[0];
    for (int i = 0; i < c->n_amqp; i++) {
        if (c->amqp_tls[i] && !has_cert) {
            snprintf(err, err_len, "amqp.listeners: amqps://%s:%d needs ssl.certificate.location "
                                   "and ssl.key.location", c->amqp_host[i], c->amqp_port[i]);
            return -CN_EINVAL;
        }
        if (!c->amqp_tls[i] && insecure(c, "AMQP listener", c->amqp_host[i], c->amqp_port[i],
                                        "use amqps://, ", err, err_len) < 0)
            return -CN_EINVAL;
    }
    for (int i = 0; i < c->n_http; i++) {
        if (c->http_tls[i] && !has_cert) {
            snprintf(err, err_len, "http.listeners: https://%s:%d needs ssl.certificate.location "
                                   "and ssl.key.location", c->http_host[i], c->http_port[i]);
            return -CN_EINVAL;
        }
        if (!c->http_tls[i] && insecure(c, "HTTP listener", c->http_host[i], c->http_port[i],
                                        "use https://, ", err, err_len) < 0)
            return -CN_EINVAL;
    }
    if (strcmp(c->cluster_listeners, "off") != 0) {
        if (c->cluster_tls && (!has_cert || !c->ssl_ca_location[0])) {
            snprintf(err, err_len, "security.inter.broker.protocol=SSL needs "
                                   "ssl.certificate.location, ssl.key.location and "
                                   "ssl.ca.location (nodes authenticate each other)");
            return -CN_EINVAL;
        }
        char host[64], e2[200];
        int port;
        if (!c->cluster_tls &&
            config_parse_hostport(c->cluster_listeners, host, sizeof(host), &port, e2,
                                  sizeof(e2)) == 0 &&
            insecure(c, "cluster listener", host, port,
                     "set security.inter.broker.protocol=SSL, ", err, err_len) < 0)
            return -CN_EINVAL;
    }
    return 0;
}
