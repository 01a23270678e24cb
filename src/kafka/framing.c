/* How the Kafka front end plugs into the server: its framing (the protocol
 * table its listeners are served with, ksrv_proto) and its row of the
 * server's front-end table (ksrv_frontend).
 *
 * Wire: every request and every response is a frame of
 *     int32 size (big-endian, bytes that follow), then size bytes.
 * A request's size must be 8..socket.request.max.bytes (8: the smallest
 * request header, api_key + api_version + correlation_id); anything else
 * closes the connection with one warning line, as Kafka does. The body goes
 * to ksrv_on_frame without its size prefix.
 *
 * A response slot starts with a 4-byte placeholder (ksrv__resp_new), the
 * handler encodes header and body after it with kw, and resp_seal patches
 * the size once the handler calls net_resp_ready (file splices included:
 * wbuf_total). Per-connection state: the SASL session (kh_sasl.c), made by
 * conn_open and freed by conn_close.
 *
 * Listeners: every item of `listeners` (--listen sets one), TLS where its
 * name maps to SSL; Metadata advertises the address of the listener a
 * request came through (0.0.0.0 as 127.0.0.1), so a client that bootstrapped
 * over TLS stays on TLS. */
#include <stdio.h>
#include <string.h>

#include "kafka/kafka.h"
#include "util/bytes.h"
#include "util/common.h"

#define KAFKA_SIZE_BYTES 4
#define KAFKA_MIN_REQUEST 8

static int64_t kafka_frame_len(void *cctx, const uint8_t *buf, size_t len,
                               const net_limits *lim, net_scan *out)
{
    (void)cctx;
    if (len < KAFKA_SIZE_BYTES)
        return 0;
    int32_t size = (int32_t)be_get32(buf);
    if (size < KAFKA_MIN_REQUEST || size > lim->max_frame_bytes) {
        snprintf(out->why, sizeof(out->why), "invalid frame size %d (limit %d)", size,
                 lim->max_frame_bytes);
        return -CN_EPROTO;
    }
    size_t whole = KAFKA_SIZE_BYTES + (size_t)size;
    if (len < whole) {
        out->need = whole;
        return 0;
    }
    return (int64_t)whole;
}

static void kafka_on_frame(void *arg, net_conn *c, void *cctx, const uint8_t *frame, size_t len)
{
    (void)cctx;
    ksrv_on_frame(c, frame + KAFKA_SIZE_BYTES, len - KAFKA_SIZE_BYTES, arg);
}

static void kafka_resp_seal(void *arg, void *cctx, net_resp *r)
{
    (void)cctx;
    kw_put_i32_at(&r->w, 0, (int32_t)(kw_total(&r->w) - KAFKA_SIZE_BYTES));
    ksrv__resp_sealed(arg, r);
}

net_resp *ksrv__resp_new(net_conn *c)
{
    net_resp *r = net_resp_new(c);
    kw_i32(&r->w, 0); /* size, patched by kafka_resp_seal */
    return r;
}

static int kafka_conn_open(void *arg, net_conn *c, void **out_cctx)
{
    return ksess_new(arg, c, (ksess **)out_cctx);
}

static void kafka_conn_close(void *arg, net_conn *c, void *cctx)
{
    (void)arg, (void)c;
    ksess_free(cctx);
}

const net_proto ksrv_proto = {
    .name = "kafka",
    .conn_open = kafka_conn_open,
    .conn_close = kafka_conn_close,
    .frame_overhead = KAFKA_SIZE_BYTES,
    .frame_len = kafka_frame_len,
    .on_frame = kafka_on_frame,
    .resp_seal = kafka_resp_seal,
};

static void *kafka_create(core *c) { return ksrv_new(c); }
static void kafka_destroy(void *fe) { ksrv_free(fe); }
static void kafka_metrics(void *fe, srv_metrics_sink *m) { ksrv_metrics(fe, m); }

static int kafka_addresses(const cairn_config *cfg, srv_addr *out, int max)
{
    int n = 0;
    for (int i = 0; i < cfg->n_kafka && n < max; i++) {
        int sec = config_listener_security(cfg, cfg->kafka_name[i]);
        out[n++] = (srv_addr){.host = cfg->kafka_host[i], .port = cfg->kafka_port[i],
                              .tls = sec >= 0 && config_security_tls(sec),
                              .sasl = sec == CONFIG_SEC_SASL_PLAINTEXT ||
                                      sec == CONFIG_SEC_SASL_SSL,
                              .name = cfg->kafka_name[i], .listener = i + 1};
    }
    return n;
}

static void kafka_bound(void *fe, const char *host, int port)
{
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        host = "127.0.0.1";
    ksrv_advertise(fe, host, port);
}

const srv_frontend ksrv_frontend = {
    .name = "kafka",
    .create = kafka_create,
    .destroy = kafka_destroy,
    .proto = &ksrv_proto,
    .addresses = kafka_addresses,
    .bound = kafka_bound,
    .metrics = kafka_metrics,
};
