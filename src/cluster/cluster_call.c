/* Transaction markers written by a partition's leader on another node's
 * behalf: the remote writer of broker.h ("markers on partitions another node
 * leads"), registered by cluster_meta_start.
 *
 * Frames (after the cluster frame's type byte; big-endian, str = i16 length
 * + bytes):
 *   5 MARKER       u64 request id, str topic, i32 partition, i64 producer id,
 *                  i16 producer epoch, u8 commit (1) or abort (0),
 *                  i32 coordinator epoch
 *   6 MARKER_DONE  u64 request id, i32 status (0: committed on the leader,
 *                  else -CN_E*)
 * The leader appends the marker (broker_write_marker) and answers once the
 * high watermark passed it, or with -CN_ENOTLEADER / -CN_ELEADERWAIT, upon
 * which the asker sends it again (tick, every 10 ms) to whoever leads then.
 * So does an asker whose leader's connection dropped, or that learns of
 * another leader (the one asked may be paused or cut off with its
 * connection open): a marker may be written twice, which changes nothing
 * (the second closes no transaction).
 * A request nobody committed within CL_MARKER_MS fails with -CN_ETIMEDOUT;
 * the transaction coordinator retries its completion later. When this node
 * leads the partition by the time the request is dispatched, it writes the
 * marker itself the same way. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/cluster_wire.h"
#include "util/common.h"
#include "util/slog.h"

#define CL_MARKER_MS 15000

/* A marker this node writes as its partition's leader, until it commits. */
typedef struct cl_serve {
    durable_wait w;                 /* first */
    struct cl_serve *next;
    cluster *c;
    partition *p;
    int32_t node;                   /* who asked (this node: local) */
    uint64_t req;
    broker_marker_req *local;       /* node == self: the request; NULL once cancelled */
} cl_serve;

static void req_unlink(cluster *c, broker_marker_req *r)
{
    for (broker_marker_req **pp = &c->mreqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            return;
        }
}

/* An answer for r (from its leader or from this node): retry or finish. */
static void req_answer(cluster *c, broker_marker_req *r, int status)
{
    if (status == -CN_ENOTLEADER || status == -CN_ELEADERWAIT || status == -CN_ECOMMITTMO) {
        r->sent_to = 0; /* whoever leads at the next tick gets it */
        return;
    }
    req_unlink(c, r);
    r->cb(r, status);
}

static void send_done(cluster *c, int32_t node, uint64_t req, int status)
{
    wbuf w;
    wbuf_init(&w);
    clw_done d = {req, status};
    clw_done_encode(&w, &d);
    cluster__send_frame(c, node, CL_MARKER_DONE, w.buf, w.len);
    wbuf_fini(&w);
}

static void serve_unlink(cluster *c, cl_serve *s)
{
    for (cl_serve **pp = &c->serves; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static void serve_finish(cluster *c, cl_serve *s, int status)
{
    if (s->node == c->self) {
        if (s->local)
            req_answer(c, s->local, status);
    } else {
        send_done(c, s->node, s->req, status);
    }
    free(s);
}

static void serve_durable(durable_wait *w, int status)
{
    cl_serve *s = (cl_serve *)w;
    serve_unlink(s->c, s);
    serve_finish(s->c, s, status);
}

/* Write a marker on p as its leader; the answer goes to s->node (or s->local)
 * once it committed. */
static void serve_start(cluster *c, cl_serve *s, int64_t pid, int16_t epoch, int commit,
                        int32_t coord_epoch)
{
    int64_t off;
    int rc = broker_write_marker(c->b, s->p, pid, epoch, commit, coord_epoch, &off);
    if (rc < 0) {
        serve_finish(c, s, rc);
        return;
    }
    s->next = c->serves;
    c->serves = s;
    s->w.next = NULL;
    s->w.target = off + 1;
    s->w.cb = serve_durable;
    broker_wait_durable(c->b, s->p, &s->w); /* may fire at once */
}

static int node_connected(cluster *c, int32_t id)
{
    cluster_member m;
    return cluster_member_by_id(c, id, &m) && m.connected;
}

/* Send r to its partition's leader, or write it here when this node leads.
 * Returns 1 when r is finished (its cb ran). */
static int req_dispatch(cluster *c, broker_marker_req *r)
{
    partition *p = broker_partition(c->b, cn_str_c(r->topic), r->partition);
    if (!p) {
        req_unlink(c, r);
        r->cb(r, -CN_ENOENT);
        return 1;
    }
    int32_t leader = broker_partition_leader(p);
    if (leader < 0)
        return 0;
    if (leader == c->self) {
        cl_serve *s = xcalloc(1, sizeof(*s));
        s->c = c;
        s->p = p;
        s->node = c->self;
        s->local = r;
        r->sent_to = c->self;
        serve_start(c, s, r->pid, r->epoch, r->commit, r->coordinator_epoch);
        for (broker_marker_req *q = c->mreqs; q; q = q->next)
            if (q == r)
                return 0;
        return 1; /* answered at once */
    }
    wbuf w;
    wbuf_init(&w);
    clw_marker m = {r->id, cn_str_c(r->topic), r->partition, r->pid, r->epoch, r->commit,
                    r->coordinator_epoch};
    clw_marker_encode(&w, &m);
    if (cluster__send_frame(c, leader, CL_MARKER, w.buf, w.len) == 0)
        r->sent_to = leader;
    wbuf_fini(&w);
    return 0;
}

void cluster__call_tick(cluster *c)
{
    int64_t now = loop_now_mono();
again:
    /* Each cb may change the list: scan again after one ran (a request's cb
     * runs once, so this ends). */
    for (broker_marker_req *r = c->mreqs; r; r = r->next) {
        if (now >= r->deadline && r->sent_to != c->self) {
            req_unlink(c, r);
            r->cb(r, -CN_ETIMEDOUT);
            goto again;
        }
        if (r->sent_to && r->sent_to != c->self && !node_connected(c, r->sent_to))
            r->sent_to = 0; /* its answer is lost: send it again */
        if (r->sent_to && r->sent_to != c->self) {
            /* Another node leads now (the one asked may be paused, or cut
             * off with its connection still open): it gets the marker. */
            partition *p = broker_partition(c->b, cn_str_c(r->topic), r->partition);
            int32_t leader = p ? broker_partition_leader(p) : -1;
            if (leader >= 0 && leader != r->sent_to)
                r->sent_to = 0;
        }
        if (!r->sent_to && req_dispatch(c, r))
            goto again;
    }
}

static void remote_submit(void *ctx, broker_marker_req *r)
{
    cluster *c = ctx;
    r->id = ++c->next_mreq;
    r->deadline = loop_now_mono() + CL_MARKER_MS;
    r->next = c->mreqs;
    c->mreqs = r; /* dispatched by the tick: cb never runs inside submit */
}

static void remote_cancel(void *ctx, broker_marker_req *r)
{
    cluster *c = ctx;
    req_unlink(c, r);
    for (cl_serve *s = c->serves; s; s = s->next)
        if (s->local == r)
            s->local = NULL;
}

void cluster__call_start(cluster *c)
{
    broker_remote_writer w = {.ctx = c, .submit = remote_submit, .cancel = remote_cancel};
    broker_set_remote_writer(c->b, &w);
}

void cluster__call_stop(cluster *c)
{
    broker_set_remote_writer(c->b, NULL);
    while (c->serves) {
        cl_serve *s = c->serves;
        c->serves = s->next;
        broker_wait_cancel(s->p, &s->w);
        free(s);
    }
    /* Requests still waiting are dropped without their cb: their owner (the
     * transaction coordinator, closed before) has let go of them. */
    c->mreqs = NULL;
}

int cluster__on_call_frame(cluster *c, int32_t from, int type, const uint8_t *body, size_t len)
{
    if (type == CL_MARKER_DONE) {
        clw_done d;
        if (clw_done_decode(body, len, &d) < 0)
            return -CN_EPROTO;
        for (broker_marker_req *q = c->mreqs; q; q = q->next)
            if (q->id == d.req && q->sent_to == from) {
                req_answer(c, q, d.status);
                break;
            }
        return 0; /* else an answer nobody waits for any more */
    }
    clw_marker m;
    if (clw_marker_decode(body, len, &m) < 0)
        return -CN_EPROTO;
    if (!c->b) {
        send_done(c, from, m.req, -CN_ENOTLEADER);
        return 0;
    }
    partition *p = broker_partition(c->b, m.topic, m.partition);
    if (!p) {
        send_done(c, from, m.req, -CN_ENOENT);
        return 0;
    }
    cl_serve *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->p = p;
    s->node = from;
    s->req = m.req;
    serve_start(c, s, m.pid, m.epoch, m.commit, m.coordinator_epoch);
    return 0;
}
