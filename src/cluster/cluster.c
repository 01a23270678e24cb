/* Cluster transport (format and rules in cluster.h). */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/net.h"
#include "net/tls_config.h"
#include "util/bin.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/slog.h"
#include "cluster/cluster_wire.h"

#define CL_VERSION 2             /* HELLO versions 1 and 2 are accepted */
#define CL_HELLO 1
#define CL_RAFT 2
/* CL_FORWARD 3 and CL_REPLY 4: cluster_meta.c; CL_MARKER 5 and CL_MARKER_DONE 6:
 * cluster_call.c (cluster_int.h) */
#define CL_TICK_MS 10
#define CL_BACKOFF_MIN 100
#define CL_BACKOFF_MAX 2000
#define CL_FRAME_MAX (64 << 20)

typedef struct cl_conn {
    cluster *c;
    cl_peer *peer;                  /* outgoing: known at once; accepted: after HELLO */
    int outgoing;
    int ready;                      /* HELLO exchanged */
} cl_conn;

cl_peer *cluster__peer_by_id(cluster *c, int32_t id)
{
    for (int i = 0; i < c->n_peers; i++)
        if (c->peers[i].id == id)
            return &c->peers[i];
    return NULL;
}

static cl_peer *peer_by_id(cluster *c, int32_t id) { return cluster__peer_by_id(c, id); }

/* Frames out ----------------------------------------------------------------------- */

/* HELLO to node `to`. Members greet each other with version 1 (what a
 * node of an older version accepts: a rolling upgrade keeps its
 * connections); a joining node sends version 2 and is answered with it;
 * with_members: the answer to a joining node, which learns the members
 * from it. */
static void send_hello(cluster *c, net_conn *nc, int32_t to, int version, int with_members)
{
    net_resp *r = net_resp_new(nc);
    wbuf *w = &r->w;
    size_t at = w->len;
    bin_put_i32(w, 0); /* length, patched below */
    bin_put_i8(w, CL_HELLO);
    static clw_hello h; /* loop thread only; members make it large */
    memset(&h, 0, sizeof(h));
    h.version = (int16_t)version;
    h.from = c->self;
    h.to = to;
    h.kafka_host = cn_str_c(c->cfg->listen_host ? c->cfg->listen_host : "");
    h.kafka_port = c->cfg->listen_port;
    h.cluster_host = cn_str_c(c->self_host);
    h.cluster_port = c->self_port;
    h.flags = c->member_self ? 0 : CLW_HELLO_JOINING;
    h.cluster_id = cn_str_c(c->b ? broker_cluster_id(c->b) : "");
    if (with_members)
        cluster__members_fill(c, &h);
    clw_hello_encode(w, &h);
    be_put32(w->buf + at, (uint32_t)(w->len - at - 4));
    net_resp_ready(r);
}

/* rg_node's send: queue one RAFT frame in the peer's slot of this turn. */
int cluster__send_frame(cluster *c, int32_t to, int type, const uint8_t *body, size_t len)
{
    cl_peer *p = peer_by_id(c, to);
    if (!p || !p->conn)
        return -CN_ENOENT;
    if (!p->out)
        p->out = net_resp_new(p->conn);
    wbuf *w = &p->out->w;
    bin_put_i32(w, (int32_t)(1 + len));
    bin_put_i8(w, (int8_t)type);
    bin_put_raw(w, body, len);
    return 0;
}

static int64_t rg_wall(void *arg)
{
    (void)arg;
    return loop_wall_ms();
}

static void rg_send(void *arg, uint64_t to, uint64_t group_id, const uint8_t *msg, size_t len)
{
    cluster *c = arg;
    cl_peer *p = peer_by_id(c, (int32_t)to);
    if (!p || !p->conn)
        return; /* not connected: Raft resends */
    if (!p->out)
        p->out = net_resp_new(p->conn);
    wbuf *w = &p->out->w;
    bin_put_i32(w, (int32_t)(1 + 8 + len));
    bin_put_i8(w, CL_RAFT);
    bin_put_i64(w, (int64_t)group_id);
    bin_put_raw(w, msg, len);
}

/* rg_node's in-place send: the frame's header with its length to patch. */
static wbuf *rg_send_begin(void *arg, uint64_t to, uint64_t group_id)
{
    cluster *c = arg;
    cl_peer *p = peer_by_id(c, (int32_t)to);
    if (!p || !p->conn)
        return NULL; /* not connected: Raft resends */
    if (!p->out)
        p->out = net_resp_new(p->conn);
    wbuf *w = &p->out->w;
    c->frame_at = w->len;
    bin_put_i32(w, 0);
    bin_put_i8(w, CL_RAFT);
    bin_put_i64(w, (int64_t)group_id);
    return w;
}

static void rg_send_end(void *arg, wbuf *w, int64_t len)
{
    cluster *c = arg;
    if (len < 0)
        w->len = c->frame_at; /* the frame never was (no splices in it) */
    else
        be_put32(w->buf + c->frame_at, (uint32_t)(1 + 8 + len));
}

/* After each loop turn: the groups' syncs, then one write per peer. */
static void cl_hook(void *arg)
{
    cluster *c = arg;
    rg_node_flush(c->rg, loop_now(c->l));
    for (int i = 0; i < c->n_peers; i++) {
        cl_peer *p = &c->peers[i];
        if (p->orphan) {
            net_resp_drop(p->orphan);
            p->orphan = NULL;
        }
        if (p->out) {
            /* Handed to net first: a failed write closes the connection
             * inside net_resp_ready, and cl_conn_close must not take this
             * slot (net frees it with the connection) for an orphan. */
            net_resp *r = p->out;
            p->out = NULL;
            net_resp_ready(r);
        }
    }
}

/* Connections ------------------------------------------------------------------------ */

static void dial(cluster *c, cl_peer *p)
{
    net_conn *nc = NULL;
    int rc = net_server_connect(c->srv, p->host, p->port, p, &nc);
    if (rc < 0) {
        slog_warn("cluster: cannot dial node %d at %s:%d: %s", p->id, p->host, p->port,
                  cn_strerror(rc));
        p->next_dial = loop_now(c->l) + p->backoff;
        p->backoff = CN_MIN(p->backoff * 2, CL_BACKOFF_MAX);
    }
    /* else conn_open ran and set p->dialing */
}

static int cl_conn_open(void *arg, net_conn *nc, void **out)
{
    cluster *c = arg;
    cl_conn *cc = xcalloc(1, sizeof(*cc));
    cc->c = c;
    cl_peer *p = net_conn_user(nc);
    if (p) {
        cc->peer = p;
        cc->outgoing = 1;
        p->dialing = nc;
        *out = cc;
        send_hello(c, nc, p->id, c->member_self ? 1 : 2, 0);
        return 0;
    }
    *out = cc;
    return 0;
}

static void cl_conn_close(void *arg, net_conn *nc, void *cctx)
{
    cluster *c = arg;
    cl_conn *cc = cctx;
    cl_peer *p = cc->peer;
    if (p) {
        if (p->conn == nc) {
            p->conn = NULL;
            if (p->out) {
                p->orphan = p->out;
                p->out = NULL;
            }
            slog_warn("cluster: connection to node %d lost", p->id);
            rg_node_peer_down(c->rg, (uint64_t)p->id, loop_now(c->l));
        }
        if (p->dialing == nc)
            p->dialing = NULL;
        if (cc->outgoing && !p->conn && !p->dialing) {
            p->next_dial = loop_now(c->l) + p->backoff;
            p->backoff = CN_MIN(p->backoff * 2, CL_BACKOFF_MAX);
        }
    }
    free(cc);
}

static int64_t cl_frame_len(void *cctx, const uint8_t *buf, size_t len, const net_limits *lim,
                            net_scan *out)
{
    (void)cctx, (void)lim;
    if (len < 4)
        return 0;
    uint32_t n = be_get32(buf);
    if (n < 1 || n > CL_FRAME_MAX) {
        snprintf(out->why, sizeof(out->why), "cluster frame length %u out of range", n);
        return -CN_EPROTO;
    }
    if (len < 4 + (size_t)n) {
        out->need = 4 + (size_t)n;
        return 0;
    }
    return 4 + (int64_t)n;
}

/* An accepted connection's HELLO: who may dial this node. A member with a
 * lower id (the lower id dials); a node that says it joins (not a member
 * yet: it dials the members it knows), when this node is a member itself
 * (it becomes a joining peer, registered through the controller). *p is
 * the peer, added for a joining node seen first. 0 or -1 (refused). */
static int accept_from(cluster *c, const clw_hello *h, cl_peer **p)
{
    int joining = h->version >= 2 && (h->flags & CLW_HELLO_JOINING);
    *p = peer_by_id(c, h->from);
    if (joining) {
        if (!c->member_self || h->from == c->self)
            return -1;
        if (!*p) {
            char host[64];
            snprintf(host, sizeof(host), "%.*s", h->cluster_host.len, h->cluster_host.ptr);
            *p = cluster__peer_add(c, h->from, host, h->cluster_port);
            if (!*p)
                return -1;
        }
        if (!(*p)->member) {
            (*p)->joining = 1;
            if (!(*p)->configured) {
                snprintf((*p)->host, sizeof((*p)->host), "%.*s", h->cluster_host.len,
                         h->cluster_host.ptr);
                (*p)->port = h->cluster_port;
            }
        }
        return 0;
    }
    return *p && (*p)->member && h->from < c->self ? 0 : -1;
}

static void on_hello(cluster *c, net_conn *nc, cl_conn *cc, const uint8_t *body, size_t len)
{
    static clw_hello h; /* loop thread only */
    int bad = clw_hello_decode(body, len, &h) < 0;
    int32_t from = h.from, to = h.to, kport = h.kafka_port;
    cn_str kh = h.kafka_host;
    if (bad || h.version < 1 || h.version > CL_VERSION || to != c->self) {
        slog_warn("cluster: bad HELLO from %s (version %d, for node %d)", net_conn_peer(nc),
                  bad ? -1 : h.version, bad ? -1 : to);
        net_conn_close(nc, "bad cluster HELLO");
        return;
    }
    cl_peer *p = NULL;
    if (cc->outgoing)
        p = peer_by_id(c, from);
    if (cc->outgoing ? p != cc->peer : accept_from(c, &h, &p) < 0) {
        slog_warn("cluster: HELLO from node %d at %s refused (not a peer, or it should not "
                  "dial us)", from, net_conn_peer(nc));
        net_conn_close(nc, "unexpected cluster node");
        return;
    }
    /* A joining node learns the members from the answer of the first
     * member it reaches (until its own record "N" comes in the log). */
    if (cc->outgoing && !c->member_self) {
        for (int32_t i = 0; i < h.n_members; i++)
            cluster__member_add(c, &h.members[i]);
        /* ... and the cluster's id, which Kafka clients check. */
        if (h.cluster_id.len > 0 && c->b) {
            char id[32];
            snprintf(id, sizeof(id), "%.*s", h.cluster_id.len, h.cluster_id.ptr);
            broker_set_cluster_id(c->b, id);
        }
    }
    if (p->conn && p->conn != nc) {
        net_conn *old = p->conn;
        p->conn = NULL;
        if (p->out) {
            net_resp_drop(p->out);
            p->out = NULL;
        }
        net_conn_close(old, "replaced by a new connection from the same node");
    }
    memcpy(p->khost, kh.ptr, (size_t)kh.len);
    p->khost[kh.len] = '\0';
    p->kport = kport;
    cc->peer = p;
    cc->ready = 1;
    p->conn = nc;
    if (p->dialing == nc)
        p->dialing = NULL;
    p->backoff = CL_BACKOFF_MIN;
    rg_node_peer_up(c->rg, (uint64_t)p->id);
    if (!cc->outgoing)
        send_hello(c, nc, from, h.version, p->joining);
    slog_info("cluster: connected to node %d (%s, Kafka at %s:%d)", p->id, net_conn_peer(nc),
              p->khost, p->kport);
}

static void cl_on_frame(void *arg, net_conn *nc, void *cctx, const uint8_t *frame, size_t len)
{
    cluster *c = arg;
    cl_conn *cc = cctx;
    bin_reader r;
    bin_reader_init(&r, frame + 4, len - 4);
    int type = (uint8_t)bin_i8(&r);
    if (type == CL_HELLO) {
        if (cc->ready) {
            net_conn_close(nc, "second cluster HELLO");
            return;
        }
        size_t n = bin_remaining(&r);
        on_hello(c, nc, cc, bin_take(&r, n), n);
        return;
    }
    if ((type == CL_FORWARD || type == CL_REPLY) && cc->ready) {
        size_t n = bin_remaining(&r);
        const uint8_t *body = bin_take(&r, n);
        if (cluster__on_meta_frame(c, cc->peer->id, type, body, n) < 0) {
            slog_warn("cluster: malformed %s frame from node %d",
                      type == CL_FORWARD ? "FORWARD" : "REPLY", cc->peer->id);
            net_conn_close(nc, "malformed cluster frame");
        }
        return;
    }
    if (type == CL_LEADERS && cc->ready) {
        size_t n = bin_remaining(&r);
        const uint8_t *body = bin_take(&r, n);
        if (cluster__on_lead_frame(c, cc->peer->id, body, n) < 0) {
            slog_warn("cluster: malformed LEADERS frame from node %d", cc->peer->id);
            net_conn_close(nc, "malformed cluster frame");
        }
        return;
    }
    if ((type == CL_MARKER || type == CL_MARKER_DONE) && cc->ready) {
        size_t n = bin_remaining(&r);
        const uint8_t *body = bin_take(&r, n);
        if (cluster__on_call_frame(c, cc->peer->id, type, body, n) < 0) {
            slog_warn("cluster: malformed %s frame from node %d",
                      type == CL_MARKER ? "MARKER" : "MARKER_DONE", cc->peer->id);
            net_conn_close(nc, "malformed cluster frame");
        }
        return;
    }
    if (type != CL_RAFT || !cc->ready) {
        slog_warn("cluster: unexpected frame type %d from %s", type, net_conn_peer(nc));
        net_conn_close(nc, "bad cluster frame");
        return;
    }
    uint64_t gid = (uint64_t)bin_i64(&r);
    size_t n = bin_remaining(&r);
    const uint8_t *msg = bin_take(&r, n);
    if (r.err) {
        net_conn_close(nc, "short cluster frame");
        return;
    }
    int rc = rg_receive(c->rg, (uint64_t)cc->peer->id, gid, msg, n, loop_now(c->l));
    if (rc == -CN_EPROTO) {
        slog_warn("cluster: malformed Raft message from node %d (group %llu)", cc->peer->id,
                  (unsigned long long)gid);
        net_conn_close(nc, "malformed Raft message");
    }
    /* -CN_ENOENT: a group this node does not have (yet): dropped. */
}

static int node_up(void *arg, int32_t id)
{
    cluster_member m;
    return cluster_member_by_id(arg, id, &m) && m.connected;
}

static void hand_off_tick(cluster *c, int64_t now)
{
    int left = broker_hand_off(c->b, now, node_up, c);
    if (left > 0 && now < c->handoff_deadline)
        return;
    void (*done)(void *arg) = c->handoff_done;
    c->handoff_done = NULL;
    if (left > 0)
        slog_warn("controlled shutdown: still leading %d partition(s) after %lld ms; stopping",
                  left, (long long)c->cfg->controlled_shutdown_ms);
    else
        slog_info("controlled shutdown: other nodes lead every partition now");
    done(c->handoff_arg);
}

void cluster_hand_off(cluster *c, void (*done)(void *arg), void *arg)
{
    if (!c->b || !c->cfg->controlled_shutdown || c->handoff_done) {
        done(arg);
        return;
    }
    int64_t now = loop_now(c->l);
    int left = broker_hand_off(c->b, now, node_up, c);
    if (left == 0) {
        done(arg);
        return;
    }
    slog_info("controlled shutdown: handing %d partition(s) to other nodes", left);
    c->handoff_done = done;
    c->handoff_arg = arg;
    c->handoff_deadline = now + c->cfg->controlled_shutdown_ms;
}

static void tick_cb(loop_timer *t)
{
    cluster *c = t->data;
    int64_t now = loop_now(c->l);
    rg_node_tick(c->rg, now);
    if (c->b) {
        cluster__meta_tick(c);
        cluster__kv_tick(c, now);
        cluster__call_tick(c);
        cluster__lead_tick(c, now);
        cluster__move_tick(c, now);
        cluster__members_tick(c, now);
        if (c->handoff_done)
            hand_off_tick(c, now);
        else {
            broker_colocate(c->b, BROKER_TXN_TOPIC, BROKER_OFFSETS_TOPIC, now);
            /* The AMQP front end serves where __amqp_meta-0 is led, from
             * its queues' logs (src/amqp/ah_cluster.c). */
            broker_colocate_prefix(c->b, BROKER_AMQP_QUEUE_PREFIX, BROKER_AMQP_META_TOPIC, now);
        }
        int64_t every = c->cfg->leader_imbalance_check_s * 1000;
        if (!c->next_balance)
            c->next_balance = now + every;
        else if (now >= c->next_balance) {
            broker_balance_leaders(c->b, now);
            c->next_balance = now + every;
        }
    }
    for (int i = 0; i < c->n_peers; i++) {
        cl_peer *p = &c->peers[i];
        /* The lower id dials; a joining node dials the members it knows. */
        if (p->member && (p->id > c->self || !c->member_self) && !p->conn && !p->dialing &&
            now >= p->next_dial)
            dial(c, p);
    }
    loop_timer_start(c->l, &c->tick, CL_TICK_MS);
}

/* Open / close ----------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
        return -CN_EINVAL;
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -CN_EIO;
            *s = '/';
        }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -CN_EIO;
    return 0;
}

int cluster_open(const cairn_config *cfg, loop *l, cluster **out)
{
    *out = NULL;
    config_peer peers[CONFIG_MAX_PEERS];
    int n = 0;
    char err[256];
    if (!cfg->cluster_peers || !cfg->cluster_peers[0] || strcmp(cfg->cluster_peers, "off") == 0)
        return 0;
    if (config_parse_peers(cfg->cluster_peers, peers, CONFIG_MAX_PEERS, &n, err,
                           sizeof(err)) < 0) {
        slog_error("%s", err);
        return -CN_EINVAL;
    }
    cluster *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->l = l;
    c->self = cfg->node_id;
    const config_peer *me = NULL;
    for (int i = 0; i < n; i++) {
        if (peers[i].id == c->self) {
            me = &peers[i];
            continue;
        }
        cl_peer *p = &c->peers[c->n_peers++];
        p->id = peers[i].id;
        snprintf(p->host, sizeof(p->host), "%s", peers[i].host);
        p->port = peers[i].port;
        p->backoff = CL_BACKOFF_MIN;
        p->member = 1; /* the first members, or a joining node's seeds */
        p->configured = 1;
    }
    if (!me) {
        slog_error("cluster.peers does not name this node (node.id %d)", c->self);
        free(c);
        return -CN_EINVAL;
    }
    if (cfg->cluster_join && c->n_peers == 0) {
        slog_error("cluster.join: cluster.peers must name at least one node of the cluster "
                   "to join besides this one");
        free(c);
        return -CN_EINVAL;
    }
    snprintf(c->self_host, sizeof(c->self_host), "%s", me->host);
    c->self_port = me->port;
    c->member_self = !cfg->cluster_join;
    if (cluster__members_load(c) < 0) {
        free(c);
        return -CN_EIO;
    }
    cluster__ids_rebuild(c);
    char host[64];
    int port = me->port;
    snprintf(host, sizeof(host), "%s", me->host);
    if (cfg->cluster_listeners && strcmp(cfg->cluster_listeners, "off") != 0 &&
        config_parse_hostport(cfg->cluster_listeners, host, sizeof(host), &port, err,
                              sizeof(err)) < 0) {
        slog_error("cluster.listeners: %s", err);
        free(c);
        return -CN_EINVAL;
    }
    if (mkdir_p(cfg->log_dirs) < 0) {
        slog_error("cannot create data directory %s", cfg->log_dirs);
        free(c);
        return -CN_EIO;
    }
    rg_node_cb cb = {.send = rg_send, .send_begin = rg_send_begin, .send_end = rg_send_end,
                     .wall_ms = rg_wall, .arg = c};
    int rc = rg_node_open(cfg->log_dirs, (uint64_t)c->self, NULL, &cb, &c->rg);
    if (rc < 0) {
        slog_error("cannot open %s/raft.votes: %s", cfg->log_dirs, cn_strerror(rc));
        free(c);
        return rc;
    }
    {
        unsigned el = (unsigned)cfg->cluster_election_ms;
        unsigned hb = el / 10 > 10 ? el / 10 : 10;
        rg_node_set_timeouts(c->rg, el, hb, (uint64_t)c->self * 0x2545F4914F6CDD1Dull);
    }
    c->proto = (net_proto){
        .name = "cluster",
        .frame_overhead = 4,
        .conn_open = cl_conn_open,
        .conn_close = cl_conn_close,
        .frame_len = cl_frame_len,
        .on_frame = cl_on_frame,
    };
    net_limits lim = {.max_frame_bytes = CL_FRAME_MAX, .max_inflight = 1 << 16,
                      .max_connections = 4 * CONFIG_MAX_PEERS, .idle_ms = 0,
                      .partial_ms = 60000};
    rc = net_server_new(l, host, port, &lim, &c->proto, c, &c->srv);
    if (rc < 0) {
        rg_node_close(c->rg);
        free(c);
        return rc == -CN_EINVAL ? rc : -CN_EIO;
    }
    if (cfg->cluster_tls && (rc = cluster_reload_tls(c)) < 0) {
        net_server_free(c->srv);
        rg_node_close(c->rg);
        free(c);
        return rc;
    }
    if (c->member_self)
        slog_info("cluster listening on %s:%d as node %d of %d", host, net_server_port(c->srv),
                  c->self, c->n_ids);
    else
        slog_info("cluster listening on %s:%d as node %d, joining a cluster of %d known "
                  "node(s)", host, net_server_port(c->srv), c->self, c->n_ids);
    loop_add_hook(l, cl_hook, c);
    c->hooked = 1;
    loop_timer_init(&c->tick, tick_cb, c);
    loop_timer_start(l, &c->tick, CL_TICK_MS);
    *out = c;
    return 0;
}

int cluster_reload_tls(cluster *c)
{
    if (!c->cfg->cluster_tls)
        return 0;
    tls_ctx *acc = NULL, *dial = NULL;
    if (tls_ctx_from_config(c->cfg, TLS_FOR_CLUSTER_ACCEPT, &acc) < 0 ||
        tls_ctx_from_config(c->cfg, TLS_FOR_CLUSTER_DIAL, &dial) < 0) {
        tls_ctx_free(acc);
        return -CN_EINVAL;
    }
    net_server_set_tls(c->srv, acc, dial);
    return 0;
}

void cluster_close(cluster *c)
{
    if (!c)
        return;
    loop_timer_stop(c->l, &c->tick);
    if (c->hooked)
        loop_remove_hook(c->l, cl_hook, c);
    for (int i = 0; i < c->n_peers; i++) {
        if (c->peers[i].out) {
            net_resp_drop(c->peers[i].out);
            c->peers[i].out = NULL;
        }
        if (c->peers[i].orphan) {
            net_resp_drop(c->peers[i].orphan);
            c->peers[i].orphan = NULL;
        }
    }
    net_server_free(c->srv);
    rg_node_close(c->rg);
    cluster__kv_free(c);
    free(c);
}

rg_node *cluster_rg(cluster *c) { return c->rg; }
int32_t cluster_self(const cluster *c) { return c->self; }
int cluster_joined(const cluster *c) { return c->joined; }
int cluster_port(const cluster *c) { return net_server_port(c->srv); }

const int32_t *cluster_node_ids(const cluster *c, int *n)
{
    *n = c->n_ids;
    return c->ids;
}

cluster_member cluster_member_at(const cluster *c, int i)
{
    cluster_member m = {.id = c->ids[i], .kafka_host = "", .kafka_port = 0};
    if (m.id == c->self) {
        m.kafka_host = c->cfg->listen_host ? c->cfg->listen_host : "";
        m.kafka_port = c->cfg->listen_port;
        m.connected = 1;
        m.leaving = c->leaving_self;
        return m;
    }
    cl_peer *p = peer_by_id((cluster *)c, m.id);
    if (p) {
        m.kafka_host = p->khost;
        m.kafka_port = p->kport;
        m.connected = p->conn != NULL;
        m.leaving = p->leaving;
    }
    return m;
}

int cluster_member_by_id(const cluster *c, int32_t id, cluster_member *out)
{
    for (int i = 0; i < c->n_ids; i++) {
        if (c->ids[i] == id) {
            *out = cluster_member_at(c, i);
            return 1;
        }
    }
    return 0;
}

int cluster_remove_node(cluster *c, int32_t id, char *msg, size_t msg_len, cluster_op_cb cb,
                        void *arg)
{
    return cluster__meta_leave(c, id, msg, msg_len, cb, arg);
}
