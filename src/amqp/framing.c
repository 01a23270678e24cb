/* How the AMQP front end plugs into the server: its protocol table
 * (asrv_proto: framing and per-connection context live in conn.c), its row
 * of the server's front-end table (asrv_frontend), and the front end object
 * with the server-properties table every connection.start announces.
 *
 * Wire (NOTES.md §1): first the 8-byte protocol header "AMQP\0\0\x09\x01",
 * then frames of octet type, short channel, long size, payload, octet 0xCE;
 * a frame may be at most 4096 bytes before tune-ok and the tuned frame_max
 * after it (conn.c enforces both; net's own bound, socket.request.max.bytes
 * + 8, is far above).
 *
 * Listeners: every address of amqp.listeners (none when "off"). With the
 * built-in default, an IPv6 address that cannot be bound is optional (a
 * machine without IPv6 still starts, with a warning); an address the user
 * configured must bind. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "amqp/amqp_int.h"
#include "util/common.h"

const net_proto asrv_proto = {
    .name = "amqp",
    .frame_overhead = AMQP_FRAME_OVERHEAD,
    .conn_open = asrv__conn_open,
    .conn_close = asrv__conn_close,
    .frame_len = asrv__frame_len,
    .on_frame = asrv__on_frame,
    .on_drain = asrv__on_drain, /* slow consumers (ah_alarm.c) */
};

static void put_str(wbuf *w, const char *key, const char *val)
{
    amqp_value v = {.tag = AMQP_T_LONGSTR};
    v.u.str = cn_str_c(val);
    amqp_put_entry(w, cn_str_c(key), &v);
}

static void put_bool(wbuf *w, const char *key, int val)
{
    amqp_value v = {.tag = AMQP_T_BOOL};
    v.u.b = val;
    amqp_put_entry(w, cn_str_c(key), &v);
}

/* What RabbitMQ announces (clients read it). The capabilities are those of
 * issue 10 as a whole; the later steps implement the ones behind methods
 * that are answered with 540 today (docs/amqp-plan.md). */
static void build_props(wbuf *w)
{
    put_str(w, "product", "Cairn");
    put_str(w, "version", CAIRN_VERSION);
    put_str(w, "platform", "Linux, C11");
    put_str(w, "copyright", "Copyright (c) the Cairn authors");
    put_str(w, "information", "Cairn: Kafka and AMQP 0-9-1 on one durable log");
    size_t mark = amqp_put_entry_open(w, cn_str_c("capabilities"), AMQP_T_TABLE);
    static const char *const caps[] = {
        "publisher_confirms",     "exchange_exchange_bindings", "basic.nack",
        "consumer_cancel_notify", "connection.blocked",         "authentication_failure_close",
        "per_consumer_qos",       "direct_reply_to",
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(caps); i++)
        put_bool(w, caps[i], 1);
    amqp_put_close(w, mark);
}

asrv *asrv_new(core *c)
{
    asrv *as = xcalloc(1, sizeof(*as));
    as->core = c;
    as->l = c->l;
    wbuf_init(&as->props);
    build_props(&as->props);
    if (c->cl) {
        /* Which node serves (a relayed client sees the serving node's). */
        char id[16];
        snprintf(id, sizeof(id), "%d", (int)c->cfg->node_id);
        put_str(&as->props, "cluster_node", id);
    }
    asrv__alarm_init(as); /* before meta_init: loaded messages are counted */
    asrv__basic_init(as);
    asrv__meta_init(as);
    return as;
}

void asrv_free(asrv *as)
{
    if (!as)
        return;
    asrv__shutdown(as);
    asrv__meta_free(as);
    asrv__basic_fini(as);
    asrv__alarm_fini(as);
    wbuf_fini(&as->props);
    free(as);
}

static void *amqp_create(core *c) { return asrv_new(c); }
static void amqp_bound(void *fe, const char *host, int port)
{
    const asrv *as = fe;
    const cairn_config *cfg = as->core->cfg;
    int tls = 0;
    for (int i = 0; i < cfg->n_amqp; i++)
        if (cfg->amqp_port[i] == port && strcmp(cfg->amqp_host[i], host) == 0)
            tls = cfg->amqp_tls[i];
    asrv__cluster_bound(fe, host, port, tls);
}
static void amqp_destroy(void *fe) { asrv_free(fe); }
static void amqp_metrics(void *fe, srv_metrics_sink *m) { asrv_metrics(fe, m); }
static void amqp_objects(void *fe, srv_objects_sink *o) { asrv_objects(fe, o); }

static int amqp_addresses(const cairn_config *cfg, srv_addr *out, int max)
{
    int n = 0;
    for (int i = 0; i < cfg->n_amqp && n < max; i++, n++)
        out[n] = (srv_addr){cfg->amqp_host[i], cfg->amqp_port[i],
                            cfg->amqp_default && strchr(cfg->amqp_host[i], ':') != NULL,
                            .tls = cfg->amqp_tls[i], .name = cfg->amqp_tls[i] ? "amqps" : NULL,
                            /* a follower's relay to the serving node: TLS when
                             * the nodes speak TLS to each other (ah_relay.c) */
                            .dial_tls = strcmp(cfg->cluster_peers, "off") != 0 &&
                                        cfg->cluster_peers[0] && cfg->cluster_tls};
    return n;
}

const srv_frontend asrv_frontend = {
    .name = "amqp",
    .create = amqp_create,
    .destroy = amqp_destroy,
    .proto = &asrv_proto,
    .addresses = amqp_addresses,
    .bound = amqp_bound, /* a cluster's serving node advertises it (ah_cluster.c) */
    .metrics = amqp_metrics,
    .objects = amqp_objects,
};
