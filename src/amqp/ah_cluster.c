/* The AMQP front end in a cluster (issue 12, docs/cluster-plan.md step 7;
 * ARCHITECTURE.md "AMQP in a cluster").
 *
 * One node at a time serves AMQP: the leader of the replicated kvlog
 * __amqp_meta-0 (kvl_open_replicated; every node keeps a copy), once its
 * term's barrier committed. Each durable queue's messages are the log of a
 * Raft group of their own, `__amqp_q-<id>` (ah_store.c), whose leadership
 * follows __amqp_meta-0's (broker_colocate_prefix, at every cluster tick).
 * So what a confirm acknowledged is on a majority, and a new AMQP node
 * holds all of it.
 *
 * Every node tails its copy of __amqp_meta-0 up to the commit index (the
 * "tail" below) to learn the queues: a queue record (version 2 carries the
 * voters its log began with) opens the queue's log here with those voters,
 * so that each node writes the same entry 1; the queue's tombstone drops
 * the log (closed, directory removed). That is how followers replicate
 * queues they never served, and how a deleted queue's log goes everywhere.
 * When the tail restarts at a later log start (a snapshot moved it), what
 * it does not see again by the commit index is dropped.
 *
 * States of this node (as->cl->state), decided at every tick (ACL_TICK_MS):
 *
 *   state     event                                    next      action
 *   FOLLOW    __amqp_meta-0 led here and ready, every  LOADING   replay __amqp_meta, open
 *             known queue's log led here and ready               and load every queue
 *   FOLLOW    the same, some queue's log led elsewhere FOLLOW    wait (colocation moves it)
 *   LOADING   the load's own records committed         SERVING   -
 *   LOADING,  __amqp_meta-0 not led here, or another   FOLLOW    close every open
 *   SERVING   term; or a loaded queue's log not led              connection (320), drop
 *             here, or in another term                           the tables
 *
 * The load waits for its own records' commit (a power-loss clamp of an ack
 * state, ah_store.c) so that nothing is served from state the next AMQP
 * node could miss. Outside SERVING, connection.open is answered with
 * connection.close 320 CONNECTION_FORCED naming the node that serves, as
 * far as this node knows it (AMQP has no redirect; clients with a list of
 * addresses move on). Unacked deliveries of the connections closed at a
 * step-down come back at the next AMQP node as after a restart (redelivered
 * below the delivered mark).
 *
 * A durable queue declared while serving gets its log at once (the
 * creator stands for its first election without waiting an election
 * timeout, rg_group_open_first); its declare-ok waits until that log is
 * led here and ready (the connection's reading paused meanwhile, so
 * nothing after the declare overtakes it), at most ACL_PARK_MS.
 *
 * What stays per node in a cluster: nothing of AMQP. Transient messages
 * and non-durable queues live in the serving node's memory and go with it,
 * as RabbitMQ loses them with their node. Loop thread only. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amqp/amqp_int.h"
#include "kvlog/kvlog.h"
#include "log/log.h"
#include "record/batch.h"
#include "util/bin.h"
#include "util/common.h"
#include "util/slog.h"

#define ACL_TICK_MS 20
#define ACL_PARK_MS 30000
#define ACL_READ_BYTES ((int64_t)1 << 20)

enum { ACL_FOLLOW, ACL_LOADING, ACL_SERVING };

/* A queue the tail saw declared, and its log here. */
typedef struct aknown {
    char *name;
    int32_t name_len;
    uint64_t id;
    partition *p;
    uint8_t seen;                /* seen again since the tail restarted */
} aknown;

/* A queue.declare-ok waiting for its queue's log. */
typedef struct apark {
    asrv_conn *ac;
    uint16_t ch;
    uint8_t nowait;
    aqueue *q;                   /* holds a ref */
    int64_t deadline;
} apark;

typedef struct acluster {
    loop_timer tick;
    int state;
    int64_t term;                /* LOADING, SERVING: the term loaded */
    int64_t ready_at;            /* LOADING: the __amqp_meta end to see committed */
    int64_t wait_logged;         /* the term whose wait for queue logs was logged */
    int64_t tail;                /* next __amqp_meta offset the tail reads */
    int resync;                  /* the tail restarted at a later log start */
    aknown *known;
    int n_known, cap_known;
    batch_scratch *scratch;
    uint8_t *buf;
    size_t cap;
    apark *park;
    int n_park, cap_park;
    /* This node's AMQP address as it advertises it (its first listener, or
     * its first amqps:// one with security.inter.broker.protocol=SSL; a
     * wildcard host replaced by its cluster listener's host; port 0: none). */
    char host[64];
    int port;
    int tls;                     /* that listener is amqps:// */
    /* The serving node's record 'S' as the tail last saw it (ah_relay.c). */
    int32_t up_id;
    int64_t up_term;
    char up_host[64];
    int up_port;
    int up_tls;
} acluster;

static void log_name(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%llu", BROKER_AMQP_QUEUE_PREFIX, (unsigned long long)id);
}

/* The tail ----------------------------------------------------------------------- */

static aknown *known_find(acluster *cl, cn_str name)
{
    for (int i = 0; i < cl->n_known; i++)
        if (cl->known[i].name_len == name.len && memcmp(cl->known[i].name, name.ptr,
                                                        (size_t)name.len) == 0)
            return &cl->known[i];
    return NULL;
}

/* Drop known entry i and its log (unless the tables use it: a queue of
 * this node's own, which cannot be, but the log is the data). */
static void known_drop(asrv *as, int i)
{
    acluster *cl = as->cl;
    aknown *k = &cl->known[i];
    int used = 0;
    for (int j = 0; j < as->n_q; j++)
        if (as->q[j]->p && as->q[j]->p == k->p)
            used = 1;
    if (!used && k->p) {
        char name[64];
        log_name(k->id, name, sizeof(name));
        broker_internal_partition_drop(as->core->b, name);
    }
    free(k->name);
    cl->known[i] = cl->known[--cl->n_known];
}

/* The serving node's record (written when it starts serving):
 *   key:   int8 'S', str vhost "/"
 *   value: int8 version 1 or 2, int32 node id, int64 term (of
 *          __amqp_meta-0), str host, int32 port (its AMQP listener), and in
 *          version 2 int8 tls (1: that listener is amqps://)
 * The replay ignores it; the tail keeps the last one (the relay's target). */
static void serving_record(acluster *cl, const batch_record *r)
{
    if (r->value_len < 0)
        return;
    bin_reader v;
    bin_reader_init(&v, r->value, (size_t)r->value_len);
    int version = bin_i8(&v);
    int32_t id = bin_i32(&v);
    int64_t term = bin_i64(&v);
    cn_str host = bin_str(&v);
    int32_t port = bin_i32(&v);
    int tls = version >= 2 ? bin_i8(&v) : 0;
    if (v.err || bin_remaining(&v) || version < 1 || version > 2 || tls < 0 || tls > 1 ||
        host.len <= 0 ||
        host.len >= (int32_t)sizeof(cl->up_host) || port <= 0 || port > 65535)
        return;
    cl->up_id = id;
    cl->up_term = term;
    memcpy(cl->up_host, host.ptr, (size_t)host.len);
    cl->up_host[host.len] = '\0';
    cl->up_port = port;
    cl->up_tls = tls;
}

static void serving_kv(const asrv *as, wbuf *k, wbuf *v)
{
    bin_put_i8(k, 'S');
    bin_put_str(k, cn_str_c("/"));
    bin_put_i8(v, as->cl->tls ? 2 : 1); /* version 1 where it says nothing new */
    bin_put_i32(v, as->core->cfg->node_id);
    bin_put_i64(v, as->cl->term);
    bin_put_str(v, cn_str_c(as->cl->host));
    bin_put_i32(v, as->cl->port);
    if (as->cl->tls)
        bin_put_i8(v, 1);
}

static void write_serving(asrv *as)
{
    if (!as->cl->port)
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    serving_kv(as, &k, &v);
    asrv__meta_write(as, k.buf, k.len, v.buf, (int32_t)v.len);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

int asrv__cluster_compact(asrv *as, kvl_compaction *cx)
{
    if (!as->cl || as->cl->state == ACL_FOLLOW || !as->cl->port)
        return 0;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    serving_kv(as, &k, &v);
    int rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    wbuf_fini(&k);
    wbuf_fini(&v);
    return rc;
}

static void tail_record(asrv *as, const batch_record *r)
{
    acluster *cl = as->cl;
    bin_reader k;
    bin_reader_init(&k, r->key, (size_t)r->key_len);
    int kind = r->key_len < 1 ? 0 : bin_i8(&k);
    if (kind == 'S') {
        serving_record(cl, r);
        return;
    }
    if (kind != 'Q')
        return;
    cn_str vhost = bin_str(&k), name = bin_str(&k);
    if (k.err || bin_remaining(&k) || !cn_str_eq(vhost, "/"))
        return;
    aknown *kn = known_find(cl, name);
    if (r->value_len < 0) {
        if (kn)
            known_drop(as, (int)(kn - cl->known));
        return;
    }
    uint64_t id;
    int flags, nv;
    cn_bytes args;
    int32_t voters[ASRV_MAX_VOTERS];
    if (asrv__meta_parse_queue(r->value, r->value_len, &id, &flags, &args, voters, &nv) < 0) {
        slog_warn("amqp: %s offset %lld: malformed queue record skipped",
                  BROKER_AMQP_META_TOPIC, (long long)r->offset);
        return;
    }
    if (asrv__stream_arg((amqp_table){args.ptr, (uint32_t)args.len}))
        return; /* a stream's data is its Kafka topic */
    if (kn && kn->id != id) {
        known_drop(as, (int)(kn - cl->known)); /* its tombstone went with a compaction */
        kn = NULL;
    }
    if (!kn) {
        if (cl->n_known == cl->cap_known) {
            cl->cap_known = cl->cap_known ? cl->cap_known * 2 : 16;
            cl->known = xrealloc(cl->known, (size_t)cl->cap_known * sizeof(*cl->known));
        }
        kn = &cl->known[cl->n_known++];
        memset(kn, 0, sizeof(*kn));
        kn->name = xmalloc((size_t)name.len + 1);
        memcpy(kn->name, name.ptr, (size_t)name.len);
        kn->name[name.len] = '\0';
        kn->name_len = name.len;
        kn->id = id;
    }
    kn->seen = 1;
    if (kn->p)
        return;
    if (nv == 0) { /* written by a single node before it was in a cluster */
        int n;
        const int32_t *ids = broker_nodes(as->core->b, &n);
        nv = CN_MIN(n, ASRV_MAX_VOTERS);
        memcpy(voters, ids, (size_t)nv * sizeof(*voters));
    }
    char pname[64];
    log_name(id, pname, sizeof(pname));
    int rc = broker_internal_partition_voters(as->core->b, pname, voters, nv, 0, &kn->p);
    if (rc < 0) {
        kn->p = NULL;
        slog_error("amqp: queue '%s': cannot open its log %s (%s)", kn->name, pname,
                   cn_strerror(rc));
    }
}

typedef struct tail_ctx {
    asrv *as;
} tail_ctx;

static int tail_one(const batch_record *r, void *arg)
{
    tail_record(((tail_ctx *)arg)->as, r);
    return 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Read the committed records of __amqp_meta-0 from cl->tail on. */
static void tail(asrv *as)
{
    acluster *cl = as->cl;
    log_partition *lp = kvl_partition(as->meta)->log;
    int64_t start = log_start_offset(lp), end = log_high_watermark(lp);
    if (cl->tail < start) {
        for (int i = 0; i < cl->n_known; i++)
            cl->known[i].seen = 0;
        cl->resync = cl->n_known > 0;
        cl->tail = start;
    }
    tail_ctx tc = {as};
    while (cl->tail < end) {
        log_slice sl;
        int rc = log_read(lp, cl->tail, end, ACL_READ_BYTES, &sl);
        if (rc < 0 || sl.len == 0) {
            if (rc < 0)
                slog_error("amqp: reading %s at offset %lld failed (%s)", BROKER_AMQP_META_TOPIC,
                           (long long)cl->tail, cn_strerror(rc));
            log_slice_release(&sl);
            return;
        }
        size_t len = (size_t)sl.len;
        if (len > cl->cap) {
            free(cl->buf);
            cl->buf = xmalloc(len);
            cl->cap = len;
        }
        rc = pread_all(sl.fd, cl->buf, len, sl.pos);
        log_slice_release(&sl);
        if (rc < 0) {
            slog_error("amqp: pread of %s failed", BROKER_AMQP_META_TOPIC);
            return;
        }
        size_t pos = 0;
        int64_t next = cl->tail;
        while (pos + BATCH_HEADER_SIZE <= len) {
            batch_info bi;
            if (batch_parse_header(cl->buf + pos, len - pos, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + 12;
            if (pos + total > len)
                break;
            if (!bi.control && bi.base_offset + bi.last_offset_delta >= cl->tail)
                batch_foreach(cl->buf + pos, total, cl->scratch, tail_one, &tc);
            next = bi.base_offset + bi.last_offset_delta + 1;
            pos += total;
        }
        if (next <= cl->tail)
            return; /* no progress: damaged data (the log's own checks logged it) */
        cl->tail = next;
    }
    if (cl->resync) {
        cl->resync = 0;
        for (int i = cl->n_known - 1; i >= 0; i--)
            if (!cl->known[i].seen)
                known_drop(as, i);
    }
}

/* Parked declares ------------------------------------------------------------------ */

static void park_remove(asrv *as, int i)
{
    acluster *cl = as->cl;
    apark *pk = &cl->park[i];
    asrv_conn *ac = pk->ac;
    asrv__queue_unref(pk->q);
    memmove(cl->park + i, cl->park + i + 1, (size_t)(cl->n_park - i - 1) * sizeof(*cl->park));
    cl->n_park--;
    for (int j = 0; j < cl->n_park; j++)
        if (cl->park[j].ac == ac)
            return;
    ac->parked = 0;
    if (!ac->blocked && ac->state != ASRV_CLOSED) {
        ac->last_recv = loop_now(ac->l); /* we did not read: no missed heartbeats */
        net_conn_resume_read(ac->c);
    }
}

void asrv__cluster_park(asrv_conn *ac, uint16_t ch, aqueue *q, int nowait)
{
    acluster *cl = ac->as->cl;
    if (cl->n_park == cl->cap_park) {
        cl->cap_park = cl->cap_park ? cl->cap_park * 2 : 8;
        cl->park = xrealloc(cl->park, (size_t)cl->cap_park * sizeof(*cl->park));
    }
    q->refs++;
    cl->park[cl->n_park++] = (apark){ac, ch, (uint8_t)(nowait ? 1 : 0), q,
                                     loop_now(ac->l) + ACL_PARK_MS};
    if (!ac->parked) {
        ac->parked = 1;
        if (!ac->blocked)
            net_conn_pause_read(ac->c);
    }
}

void asrv__cluster_conn_gone(asrv_conn *ac)
{
    acluster *cl = ac->as ? ac->as->cl : NULL;
    for (int i = cl ? cl->n_park - 1 : -1; i >= 0; i--)
        if (cl->park[i].ac == ac)
            park_remove(ac->as, i);
}

static void parks_check(asrv *as)
{
    acluster *cl = as->cl;
    int64_t now = loop_now(as->l);
    for (int i = 0; i < cl->n_park; i++) {
        apark *pk = &cl->park[i];
        int first = 1; /* the connection's first parked declare: replies stay in order */
        for (int j = 0; j < i; j++)
            if (cl->park[j].ac == pk->ac)
                first = 0;
        if (!first)
            continue;
        aqueue *q = pk->q;
        asrv_conn *ac = pk->ac;
        uint16_t ch = pk->ch;
        if (q->deleted || !q->p) {
            park_remove(as, i--);
            asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_QUEUE, 10,
                             "queue '%.*s' was deleted while its declaration waited",
                             (int)q->name_len, q->name);
            continue;
        }
        if (broker_partition_serving(q->p) == 0) {
            q->term = broker_partition_epoch(q->p);
            int nowait = pk->nowait;
            park_remove(as, i--);
            if (!nowait && ac->state == ASRV_OPEN && ac->cs && ac->cs[ch])
                asrv__declare_ok(ac, ch, q);
            continue;
        }
        if (now >= pk->deadline) {
            park_remove(as, i--);
            asrv__conn_error(ac, AMQP_INTERNAL_ERROR, AMQP_CLASS_QUEUE, 10,
                             "queue '%.*s': its replicated log has no leader here after %d s",
                             (int)q->name_len, q->name, ACL_PARK_MS / 1000);
        }
    }
}

/* Serving -------------------------------------------------------------------------- */

static void step_down(asrv *as, const char *why)
{
    acluster *cl = as->cl;
    int closed = 0;
    for (;;) {
        asrv_conn *ac = as->conns;
        while (ac && ac->state != ASRV_OPEN)
            ac = ac->next;
        if (!ac)
            break;
        asrv__conn_error(ac, AMQP_CONNECTION_FORCED, 0, 0,
                         "this node no longer serves AMQP for the cluster (%s)", why);
        net_conn_close(ac->c, "amqp: no longer the cluster's AMQP node");
        closed++;
    }
    asrv__redeliver_release(as);
    asrv__meta_tables_free(as);
    asrv__meta_tables_init(as);
    slog_info("amqp: no longer the cluster's AMQP node (%s, term %lld): %d connection(s) "
              "closed, queues dropped from memory", why, (long long)cl->term, closed);
    cl->state = ACL_FOLLOW;
    cl->term = 0;
}

/* A loaded queue whose log is not led here any more, or in another term:
 * its memory may not be what its log holds. */
static const aqueue *queue_lost(const asrv *as)
{
    for (int i = 0; i < as->n_q; i++) {
        const aqueue *q = as->q[i];
        if (q->p && q->term &&
            (broker_partition_serving(q->p) != 0 || broker_partition_epoch(q->p) != q->term))
            return q;
    }
    return NULL;
}

static void try_load(asrv *as, int64_t term)
{
    acluster *cl = as->cl;
    int waiting = 0;
    for (int i = 0; i < cl->n_known; i++)
        if (cl->known[i].p && broker_partition_serving(cl->known[i].p) != 0)
            waiting++;
    if (waiting) {
        if (cl->wait_logged != term)
            slog_info("amqp: leading %s-0 (term %lld): waiting for %d queue log(s) to be led "
                      "here", BROKER_AMQP_META_TOPIC, (long long)term, waiting);
        cl->wait_logged = term;
        return;
    }
    int rc = kvl_replay(as->meta);
    if (rc == 0) {
        asrv__meta_loaded(as);
        for (int i = 0; i < as->n_q; i++) {
            aqueue *q = as->q[i];
            if (q->p && broker_partition_serving(q->p) != 0)
                rc = -CN_ELEADERWAIT; /* declared after the tail's last look */
            else if (q->p)
                q->term = broker_partition_epoch(q->p);
        }
    }
    if (rc < 0) {
        slog_warn("amqp: loading the cluster's AMQP state failed (%s); trying again",
                  cn_strerror(rc));
        asrv__meta_tables_free(as);
        asrv__meta_tables_init(as);
        return;
    }
    cl->state = ACL_LOADING;
    cl->term = term;
    write_serving(as); /* the relay's target on the other nodes, once committed */
    cl->ready_at = kvl_end(as->meta);
}

static void on_tick(loop_timer *t)
{
    asrv *as = t->data;
    acluster *cl = as->cl;
    tail(as);
    int rc = kvl_serving(as->meta);
    int64_t term = kvl_term(as->meta);
    if (cl->state != ACL_FOLLOW) {
        const aqueue *lost = queue_lost(as);
        if (rc != 0 || term != cl->term)
            step_down(as, rc != 0 ? "the leadership of __amqp_meta-0 moved" : "a new term");
        else if (lost) {
            char why[300];
            snprintf(why, sizeof(why), "the log of queue '%.*s' is no longer led here",
                     (int)lost->name_len, lost->name);
            step_down(as, why);
        }
    }
    if (cl->state == ACL_FOLLOW && rc == 0)
        try_load(as, term);
    if (cl->state == ACL_LOADING &&
        log_high_watermark(kvl_partition(as->meta)->log) >= cl->ready_at) {
        cl->state = ACL_SERVING;
        slog_info("amqp: serving as the cluster's AMQP node (term %lld): %d exchange(s), "
                  "%d queue(s)", (long long)term, as->n_ex, as->n_q);
    }
    parks_check(as);
    loop_timer_start(as->l, &cl->tick, ACL_TICK_MS);
}

/* Hooks ----------------------------------------------------------------------------- */

void asrv__cluster_init(asrv *as)
{
    acluster *cl = xcalloc(1, sizeof(*cl));
    as->cl = cl;
    cl->scratch = batch_scratch_new();
    int rc = kvl_open_replicated(as->core->b, BROKER_AMQP_META_TOPIC, &asrv__meta_ops, as,
                                 &as->meta);
    if (rc < 0) {
        slog_error("amqp: cannot open %s (%s): this node never serves AMQP",
                   BROKER_AMQP_META_TOPIC, cn_strerror(rc));
        as->meta = NULL;
        return;
    }
    loop_timer_init(&cl->tick, on_tick, as);
    loop_timer_start(as->l, &cl->tick, ACL_TICK_MS);
}

void asrv__cluster_fini(asrv *as)
{
    acluster *cl = as->cl;
    if (!cl)
        return;
    if (as->meta)
        loop_timer_stop(as->l, &cl->tick);
    while (cl->n_park)
        park_remove(as, cl->n_park - 1);
    for (int i = 0; i < cl->n_known; i++)
        free(cl->known[i].name);
    free(cl->known);
    free(cl->park);
    free(cl->buf);
    batch_scratch_free(cl->scratch);
    free(cl);
    as->cl = NULL;
}

int asrv__cluster_serving(const asrv *as)
{
    return !as->cl || as->cl->state == ACL_SERVING;
}

const char *asrv__cluster_refusal(const asrv *as, char *buf, size_t cap)
{
    if (!as->meta)
        return "this node cannot serve AMQP (its copy of __amqp_meta did not open)";
    int32_t leader = broker_partition_leader(kvl_partition(as->meta));
    int self = leader == as->core->cfg->node_id;
    if (leader < 0)
        snprintf(buf, cap, "this node does not serve AMQP: the cluster elects the node that "
                 "does; try again");
    else if (self)
        snprintf(buf, cap, "this node is loading the cluster's AMQP state; try again");
    else
        snprintf(buf, cap, "this node does not serve AMQP: node %d of the cluster does",
                 leader);
    return buf;
}

int asrv__cluster_relay_target(asrv *as, const char **host, int *port, int32_t *node,
                               int *tls)
{
    acluster *cl = as->cl;
    if (!cl || cl->state != ACL_FOLLOW || !as->meta || !cl->up_port ||
        cl->up_id == as->core->cfg->node_id)
        return 0;
    partition *mp = kvl_partition(as->meta);
    if (broker_partition_leader(mp) != cl->up_id || broker_partition_epoch(mp) != cl->up_term)
        return 0; /* its record is from another term: no relay (no loops either) */
    *host = cl->up_host;
    *port = cl->up_port;
    *node = cl->up_id;
    *tls = cl->up_tls;
    return 1;
}

static int wildcard(const char *h)
{
    return !h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

void asrv__cluster_bound(asrv *as, const char *host, int port, int tls)
{
    acluster *cl = as->cl;
    /* the first listener; with TLS between nodes, the first amqps:// one */
    if (!cl || (cl->port && !(as->core->cfg->cluster_tls && tls && !cl->tls)))
        return;
    char h[64];
    snprintf(h, sizeof(h), "%s", host);
    if (wildcard(h)) {
        /* The cluster listener's host, when it names one. */
        const char *cls = as->core->cfg->cluster_listeners;
        const char *colon = cls ? strrchr(cls, ':') : NULL;
        size_t n = colon ? (size_t)(colon - cls) : 0;
        if (!colon || n == 0 || n >= sizeof(h))
            return;
        memcpy(h, cls, n);
        h[n] = '\0';
        if (wildcard(h))
            return;
    }
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* an IPv6 address as listeners write it */
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = '\0';
    }
    snprintf(cl->host, sizeof(cl->host), "%s", h);
    cl->port = port;
    cl->tls = tls;
}

void asrv__cluster_voters(asrv *as, aqueue *q)
{
    int n;
    const int32_t *ids = broker_nodes(as->core->b, &n);
    asrv__queue_set_voters(q, ids, CN_MIN(n, ASRV_MAX_VOTERS));
}
