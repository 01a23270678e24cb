/* The AMQP relay (ah_cluster.c; ARCHITECTURE.md "AMQP in a cluster").
 *
 * In a cluster one node serves AMQP. A node that does not, and knows which
 * one does (its record 'S' in __amqp_meta names the node, its address and
 * the term it serves in, and that node leads __amqp_meta-0 in that term as
 * far as this node sees), relays every new AMQP connection to it: at
 * accept, it dials the serving node's AMQP listener through the same
 * server (net_server_connect, the upstream connection's user pointer being
 * the client's asrv_conn) and from then on passes bytes both ways
 * unchanged, whatever they are. With security.inter.broker.protocol=SSL
 * the relay dials the serving node's amqps:// listener with TLS (the
 * listener's dial context, srv_addr.dial_tls: its certificate checked
 * against ssl.ca.location, none shown, so a relayed client never logs in
 * as this node: EXTERNAL is not offered through a relay), and a serving
 * node advertises its first amqps:// listener. AMQP 0-9-1 has no redirect; with the relay
 * a client given any one node's address works. The term check rules out
 * two nodes relaying to each other: each would have to see the other lead
 * in a term in which it served itself.
 *
 * Each read chunk is one frame (frame_len takes every buffered byte) and
 * leaves as one response slot on the other connection. When the other
 * side holds more than ASRV_RELAY_HIGH bytes not yet sent, reading this
 * side pauses until it drains below ASRV_RELAY_LOW (net_conn_want_drain).
 * A side that closes closes the other once what it queued is sent
 * (net_conn_close_after). Relayed connections are not in as->conns: a
 * step-down of this node does not touch them; the serving node closes its
 * own side when it steps down, and the relay follows. */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

#define ASRV_RELAY_HIGH (64 * 1024)
#define ASRV_RELAY_LOW (16 * 1024)

int asrv__relay_start(asrv_conn *ac)
{
    const char *host;
    int port, tls;
    int32_t node;
    if (!asrv__cluster_relay_target(ac->as, &host, &port, &node, &tls))
        return 0;
    if (tls != ac->as->core->cfg->cluster_tls) {
        slog_warn("amqp connection %llu from %s: not relayed to node %d at %s:%d: that listener "
                  "is %s, and this node relays %s (security.inter.broker.protocol); give every "
                  "node %s AMQP listener",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), node, host, port,
                  tls ? "amqps://" : "plaintext", ac->as->core->cfg->cluster_tls ? "over TLS"
                                                                                  : "in plaintext",
                  ac->as->core->cfg->cluster_tls ? "an amqps://" : "a plaintext");
        return 0;
    }
    net_conn *up = NULL;
    ac->relay = 1; /* set first: conn_open of the upstream side looks at it */
    int rc = net_server_connect(net_conn_server(ac->c), host, port, ac, &up);
    if (rc < 0) {
        ac->relay = 0;
        slog_warn("amqp connection %llu from %s: cannot relay to node %d at %s:%d (%s)",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), node, host,
                  port, cn_strerror(rc));
        return 0;
    }
    slog_info("amqp connection %llu from %s: relayed to node %d at %s:%d, the cluster's AMQP "
              "node", (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c), node, host,
              port);
    return 1;
}

void asrv__relay_upstream(asrv_conn *up, asrv_conn *client)
{
    up->relay = 2;
    up->peer = client;
    client->peer = up;
}

void asrv__relay_frame(asrv_conn *ac, const uint8_t *buf, size_t len)
{
    asrv_conn *p = ac->peer;
    if (!p)
        return; /* the other side closed: this one follows */
    net_resp *r = net_resp_new(p->c);
    wbuf_append(&r->w, buf, len);
    net_resp_ready(r);
    if (ac->peer && net_conn_out_bytes(p->c) > ASRV_RELAY_HIGH && !ac->relay_paused) {
        ac->relay_paused = 1;
        net_conn_pause_read(ac->c);
        net_conn_want_drain(p->c, ASRV_RELAY_LOW);
    }
}

void asrv__relay_drained(asrv_conn *ac)
{
    asrv_conn *p = ac->peer;
    if (p && p->relay_paused) {
        p->relay_paused = 0;
        net_conn_resume_read(p->c);
    }
}

void asrv__relay_closed(asrv_conn *ac)
{
    asrv_conn *p = ac->peer;
    ac->peer = NULL;
    if (!p)
        return;
    p->peer = NULL;
    net_conn_close_after(p->c, ac->relay == 1 ? "amqp relay: the client closed"
                                               : "amqp relay: the serving node closed");
}
