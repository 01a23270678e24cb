/* Cluster frame bodies and metadata records (format in cluster_wire.h). */
#include "cluster/cluster_wire.h"

#include <stdlib.h>
#include <string.h>

#include "util/bin.h"

static int done(const bin_reader *r) { return r->err || bin_remaining(r) ? -CN_EPROTO : 0; }

static int node_decode(bin_reader *r, clw_node *n)
{
    n->id = bin_i32(r);
    n->host = bin_str(r);
    n->port = bin_i32(r);
    n->kafka_host = bin_str(r);
    n->kafka_port = bin_i32(r);
    if (r->err || n->id < 0 || n->host.len < 1 || n->host.len > CLW_MAX_HOST ||
        n->port < 1 || n->port > 65535 || n->kafka_host.len < 0 ||
        n->kafka_host.len > CLW_MAX_HOST || n->kafka_port < 0 || n->kafka_port > 65535)
        return -CN_EPROTO;
    return 0;
}

/* op 11: i32 node id, i32 n, n x (str name, str host, i32 port). */
static int endpoints_decode(bin_reader *r, clw_topic_op *t)
{
    t->name = (cn_str){"", 0};
    memset(t->id, 0, 16);
    memset(&t->node, 0, sizeof(t->node));
    t->node.id = bin_i32(r);
    t->n_endpoints = bin_i32(r);
    if (r->err || t->node.id < 0 || t->n_endpoints < 1 || t->n_endpoints > CLW_MAX_ENDPOINTS)
        return -CN_EPROTO;
    for (int32_t i = 0; i < t->n_endpoints; i++) {
        clw_endpoint *e = &t->endpoints[i];
        e->name = bin_str(r);
        e->host = bin_str(r);
        e->port = bin_i32(r);
        if (r->err || e->name.len < 1 || e->name.len > CLW_MAX_LISTENER_NAME ||
            e->host.len < 1 || e->host.len > CLW_MAX_HOST || e->port < 1 || e->port > 65535)
            return -CN_EPROTO;
    }
    return done(r);
}

static void endpoints_encode(wbuf *w, const clw_topic_op *t)
{
    bin_put_i32(w, t->node.id);
    bin_put_i32(w, t->n_endpoints);
    for (int32_t i = 0; i < t->n_endpoints; i++) {
        bin_put_str(w, t->endpoints[i].name);
        bin_put_str(w, t->endpoints[i].host);
        bin_put_i32(w, t->endpoints[i].port);
    }
}

static void node_encode(wbuf *w, const clw_node *n)
{
    bin_put_i32(w, n->id);
    bin_put_str(w, n->host);
    bin_put_i32(w, n->port);
    bin_put_str(w, n->kafka_host);
    bin_put_i32(w, n->kafka_port);
}

int clw_hello_decode(const uint8_t *b, size_t len, clw_hello *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->version = bin_i16(&r);
    out->from = bin_i32(&r);
    out->to = bin_i32(&r);
    out->kafka_host = bin_str(&r);
    out->kafka_port = bin_i32(&r);
    out->cluster_host = (cn_str){"", 0};
    out->cluster_port = 0;
    out->flags = 0;
    out->cluster_id = (cn_str){"", 0};
    out->n_members = 0;
    if (r.err || out->kafka_host.len < 0 || out->kafka_host.len > CLW_MAX_HOST)
        return -CN_EPROTO;
    if (out->version < 2)
        return done(&r);
    out->cluster_host = bin_str(&r);
    out->cluster_port = bin_i32(&r);
    out->flags = (uint8_t)bin_i8(&r);
    out->cluster_id = bin_str(&r);
    out->n_members = bin_i32(&r);
    if (r.err || out->cluster_host.len < 1 || out->cluster_host.len > CLW_MAX_HOST ||
        out->cluster_port < 1 || out->cluster_port > 65535 || out->flags > 1 ||
        out->cluster_id.len < 0 || out->cluster_id.len > 31 ||
        out->n_members < 0 || out->n_members > CLW_MAX_MEMBERS)
        return -CN_EPROTO;
    for (int32_t i = 0; i < out->n_members; i++)
        if (node_decode(&r, &out->members[i]) < 0)
            return -CN_EPROTO;
    return done(&r);
}

void clw_hello_encode(wbuf *w, const clw_hello *h)
{
    bin_put_i16(w, h->version);
    bin_put_i32(w, h->from);
    bin_put_i32(w, h->to);
    bin_put_str(w, h->kafka_host);
    bin_put_i32(w, h->kafka_port);
    if (h->version < 2)
        return;
    bin_put_str(w, h->cluster_host);
    bin_put_i32(w, h->cluster_port);
    bin_put_i8(w, (int8_t)h->flags);
    bin_put_str(w, h->cluster_id);
    bin_put_i32(w, h->n_members);
    for (int32_t i = 0; i < h->n_members; i++)
        node_encode(w, &h->members[i]);
}

void clw_configs_free(clw_topic_op *t)
{
    free(t->configs);
    t->configs = NULL;
    t->n_configs = 0;
    free(t->assign);
    t->assign = NULL;
}

static int configs_decode(bin_reader *r, clw_topic_op *t);

/* n node ids (each >= 0) into a new t->assign; the reader fails on a
 * negative one (the caller's done() then reports it). */
static void ids_decode(bin_reader *r, clw_topic_op *t, size_t n)
{
    t->assign = xmalloc((n ? n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        t->assign[i] = bin_i32(r);
        if (t->assign[i] < 0)
            bin_fail(r);
    }
}

/* A partition count's optional trailer: i32 n, i32 rf, n x rf node ids. */
static int grow_decode(bin_reader *r, clw_topic_op *t)
{
    t->n_assign = 0;
    t->rf = 0;
    if (bin_remaining(r) == 0)
        return 0;
    int32_t n = bin_i32(r), rf = bin_i32(r);
    if (r->err || n < 1 || rf < 1 || rf > CLW_MAX_RF ||
        (size_t)n * (size_t)rf * 4 != bin_remaining(r))
        return -CN_EPROTO;
    ids_decode(r, t, (size_t)n * (size_t)rf);
    int rc = done(r);
    if (rc < 0) {
        clw_configs_free(t);
        return rc;
    }
    t->n_assign = n;
    t->rf = rf;
    return 0;
}

/* A reassignment (op 5, n 0 cancels) or its end (op 6, n >= 1): i32
 * partition, i32 n (0..CLW_MAX_RF), n node ids (>= 0). */
static int moves_decode(bin_reader *r, clw_topic_op *t)
{
    t->partitions = bin_i32(r);
    t->rf = bin_i32(r);
    if (r->err || t->partitions < 0 || t->rf < (t->op == 6) || t->rf > CLW_MAX_RF ||
        (size_t)t->rf * 4 != bin_remaining(r))
        return -CN_EPROTO;
    if (t->rf == 0)
        return done(r);
    ids_decode(r, t, (size_t)t->rf);
    int rc = done(r);
    if (rc < 0)
        clw_configs_free(t);
    return rc;
}

/* A create's optional trailer: i32 partitions, i32 rf (both as the create
 * says), then partitions x rf node ids. Present only when bytes remain. */
static int assign_decode(bin_reader *r, clw_topic_op *t)
{
    if (bin_remaining(r) == 0)
        return done(r);
    int32_t np = bin_i32(r), rf = bin_i32(r);
    if (r->err || np != t->partitions || rf != t->rf || np < 1 || rf < 1 ||
        rf > CLW_MAX_RF || (size_t)np * (size_t)rf * 4 != bin_remaining(r))
        return -CN_EPROTO;
    ids_decode(r, t, (size_t)np * (size_t)rf);
    return done(r);
}

/* name, and for a create partitions, rf, [id,] configs[, assignment];
 * otherwise the id, then a count (op 3) or configs (op 4). On error
 * nothing stays allocated. */
static int topic_decode(bin_reader *r, clw_topic_op *t, int create_has_id)
{
    t->configs = NULL;
    t->n_configs = 0;
    t->assign = NULL;
    t->n_assign = 0;
    t->n_endpoints = 0;
    if (t->op == 11)
        return endpoints_decode(r, t);
    if (t->op >= 7 && t->op <= 9) {
        t->name = (cn_str){"", 0};
        memset(t->id, 0, 16);
        if (t->op == 7)
            return node_decode(r, &t->node) < 0 ? -CN_EPROTO : done(r);
        memset(&t->node, 0, sizeof(t->node));
        t->node.id = bin_i32(r);
        return r->err || t->node.id < 0 ? -CN_EPROTO : done(r);
    }
    t->name = bin_str(r);
    if (r->err || t->name.len <= 0)
        return -CN_EPROTO;
    memset(t->id, 0, 16);
    if (t->op != 1) {
        const uint8_t *id = bin_take(r, 16);
        if (!id)
            return -CN_EPROTO;
        memcpy(t->id, id, 16);
        if (t->op == 5 || t->op == 6)
            return moves_decode(r, t);
        if (t->op == 3) {
            t->partitions = bin_i32(r);
            return r->err ? -CN_EPROTO : grow_decode(r, t);
        }
        if (t->op == 4 || t->op == 10) {
            int rc = configs_decode(r, t);
            if (rc == 0)
                rc = done(r);
            if (rc < 0)
                clw_configs_free(t);
            return rc;
        }
        return done(r);
    }
    t->partitions = bin_i32(r);
    t->rf = bin_i32(r);
    if (create_has_id) {
        const uint8_t *id = bin_take(r, 16);
        if (id)
            memcpy(t->id, id, 16);
    }
    int rc = configs_decode(r, t);
    if (rc == 0)
        rc = assign_decode(r, t);
    if (rc < 0)
        clw_configs_free(t);
    return rc;
}

static int configs_decode(bin_reader *r, clw_topic_op *t)
{
    int32_t n = bin_i32(r);
    if (r->err || n < 0 || n > CLW_MAX_CONFIGS)
        return -CN_EPROTO;
    if (n > 0) {
        t->configs = xcalloc((size_t)n, sizeof(*t->configs));
        t->n_configs = n;
        for (int32_t i = 0; i < n && !r->err; i++) {
            t->configs[i].key = bin_str(r);
            t->configs[i].value = bin_str(r);
            if (t->configs[i].key.len <= 0)
                bin_fail(r); /* every config has a name */
        }
    }
    return r->err ? -CN_EPROTO : 0;
}

static void topic_encode(wbuf *w, const clw_topic_op *t, int create_has_id)
{
    if (t->op == 11) {
        endpoints_encode(w, t);
        return;
    }
    if (t->op == 7) {
        node_encode(w, &t->node);
        return;
    }
    if (t->op > 7 && t->op <= 9) {
        bin_put_i32(w, t->node.id);
        return;
    }
    bin_put_str(w, t->name);
    if (t->op != 1) {
        bin_put_raw(w, t->id, 16);
        if (t->op == 5 || t->op == 6) {
            bin_put_i32(w, t->partitions);
            bin_put_i32(w, t->rf);
            for (int32_t i = 0; i < t->rf; i++)
                bin_put_i32(w, t->assign[i]);
            return;
        }
        if (t->op == 3) {
            bin_put_i32(w, t->partitions);
            if (t->assign) {
                bin_put_i32(w, t->n_assign);
                bin_put_i32(w, t->rf);
                for (size_t i = 0; i < (size_t)t->n_assign * (size_t)t->rf; i++)
                    bin_put_i32(w, t->assign[i]);
            }
        }
        if (t->op != 4 && t->op != 10)
            return;
    } else {
        bin_put_i32(w, t->partitions);
        bin_put_i32(w, t->rf);
        if (create_has_id)
            bin_put_raw(w, t->id, 16);
    }
    bin_put_i32(w, t->n_configs);
    for (int32_t i = 0; i < t->n_configs; i++) {
        bin_put_str(w, t->configs[i].key);
        bin_put_str(w, t->configs[i].value);
    }
    if (t->op == 1 && t->assign) {
        bin_put_i32(w, t->partitions);
        bin_put_i32(w, t->rf);
        for (size_t i = 0; i < (size_t)t->partitions * (size_t)t->rf; i++)
            bin_put_i32(w, t->assign[i]);
    }
}

int clw_forward_decode(const uint8_t *b, size_t len, clw_forward *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->req = (uint64_t)bin_i64(&r);
    out->t.op = (uint8_t)bin_i8(&r);
    out->validate_only = (uint8_t)bin_i8(&r);
    out->t.configs = NULL;
    out->t.n_configs = 0;
    out->t.assign = NULL;
    if (r.err || out->t.op < 1 || (out->t.op > 8 && out->t.op != 10 && out->t.op != 11) ||
        out->validate_only > 1)
        return -CN_EPROTO;
    return topic_decode(&r, &out->t, 0);
}

void clw_forward_encode(wbuf *w, const clw_forward *f)
{
    bin_put_i64(w, (int64_t)f->req);
    bin_put_i8(w, (int8_t)f->t.op);
    bin_put_i8(w, (int8_t)(f->validate_only ? 1 : 0));
    topic_encode(w, &f->t, 0);
}

int clw_reply_decode(const uint8_t *b, size_t len, clw_reply *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->req = (uint64_t)bin_i64(&r);
    out->status = bin_i32(&r);
    out->msg = bin_str(&r);
    if (out->msg.len < 0 || out->msg.len > CLW_MAX_MSG)
        return -CN_EPROTO;
    return done(&r);
}

void clw_reply_encode(wbuf *w, const clw_reply *rp)
{
    bin_put_i64(w, (int64_t)rp->req);
    bin_put_i32(w, rp->status);
    bin_put_str(w, rp->msg.ptr ? rp->msg : cn_str_c(""));
}

int clw_marker_decode(const uint8_t *b, size_t len, clw_marker *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->req = (uint64_t)bin_i64(&r);
    out->topic = bin_str(&r);
    out->partition = bin_i32(&r);
    out->pid = bin_i64(&r);
    out->epoch = bin_i16(&r);
    out->commit = (uint8_t)bin_i8(&r);
    out->coordinator_epoch = bin_i32(&r);
    if (out->topic.len <= 0 || out->commit > 1)
        return -CN_EPROTO;
    return done(&r);
}

void clw_marker_encode(wbuf *w, const clw_marker *m)
{
    bin_put_i64(w, (int64_t)m->req);
    bin_put_str(w, m->topic);
    bin_put_i32(w, m->partition);
    bin_put_i64(w, m->pid);
    bin_put_i16(w, m->epoch);
    bin_put_i8(w, m->commit ? 1 : 0);
    bin_put_i32(w, m->coordinator_epoch);
}

int clw_done_decode(const uint8_t *b, size_t len, clw_done *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->req = (uint64_t)bin_i64(&r);
    out->status = bin_i32(&r);
    return done(&r);
}

void clw_done_encode(wbuf *w, const clw_done *d)
{
    bin_put_i64(w, (int64_t)d->req);
    bin_put_i32(w, d->status);
}

static int leaders_walk(const uint8_t *b, size_t len,
                        void (*fn)(void *arg, const clw_leader *l), void *arg)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    int32_t n = bin_i32(&r);
    if (r.err || n < 0 || n > CLW_MAX_LEADERS)
        return -CN_EPROTO;
    for (int32_t i = 0; i < n; i++) {
        clw_leader l;
        l.topic = bin_str(&r);
        const uint8_t *id = bin_take(&r, 16);
        if (id)
            memcpy(l.id, id, 16);
        l.partition = bin_i32(&r);
        l.leader = bin_i32(&r);
        l.epoch = bin_i32(&r);
        if (r.err || l.topic.len <= 0 || l.partition < 0 || l.leader < -1 || l.epoch < 0)
            return -CN_EPROTO;
        if (fn)
            fn(arg, &l);
    }
    return done(&r);
}

int clw_leaders_decode(const uint8_t *b, size_t len,
                       void (*fn)(void *arg, const clw_leader *l), void *arg)
{
    int rc = leaders_walk(b, len, NULL, NULL);
    return rc < 0 ? rc : leaders_walk(b, len, fn, arg);
}

void clw_leaders_encode(wbuf *w, const clw_leader *ls, int32_t n)
{
    bin_put_i32(w, n);
    for (int32_t i = 0; i < n; i++) {
        bin_put_str(w, ls[i].topic);
        bin_put_raw(w, ls[i].id, 16);
        bin_put_i32(w, ls[i].partition);
        bin_put_i32(w, ls[i].leader);
        bin_put_i32(w, ls[i].epoch);
    }
}

int clw_record_decode(char key, const uint8_t *b, size_t len, clw_topic_op *out)
{
    bin_reader r;
    bin_reader_init(&r, b, len);
    out->configs = NULL;
    out->n_configs = 0;
    out->assign = NULL;
    static const char keys[] = "TDPCRFNLXKE";
    const char *k = key ? strchr(keys, key) : NULL;
    if (!k)
        return -CN_EPROTO;
    out->op = (int)(k - keys) + 1;
    return topic_decode(&r, out, 1);
}

char clw_record_key(const clw_topic_op *t)
{
    return "?TDPCRFNLXKE"[t->op >= 1 && t->op <= 11 ? t->op : 0];
}

void clw_record_encode(wbuf *w, const clw_topic_op *t)
{
    topic_encode(w, t, 1);
}
