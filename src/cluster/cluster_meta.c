/* The metadata group (cluster plan step 5): the cluster's topic registry
 * as a replicated log, so that every node holds the same topics with the
 * same ids, and CreateTopics/DeleteTopics on any client's broker become one
 * decision taken once.
 *
 * The log is the internal partition __cluster_meta-0, replicated to every
 * node (a Raft group like a replicated topic's partition). Its leader is the
 * controller: it validates a request against its registry and the requests
 * still in flight, appends one record batch with one record, and answers
 * once that batch is committed and applied on this node. Every node applies
 * committed batches in log order (an append listener: the high watermark
 * moves only on commit). Records (key, value; integers big-endian, str =
 * i16 length + bytes, as util/bin.h writes them):
 *   key "T" create topic: str name, i32 partitions, i32 replication factor,
 *       16 bytes topic id, i32 n, then n x (str config key, str value)
 *   key "D" delete topic: str name, 16 bytes topic id
 *   key "P" partitions: str name, 16 bytes topic id, i32 new partition count,
 *       optionally the new partitions' assignment (cluster_wire.h)
 *   key "C" configs: str name, 16 bytes topic id, i32 n, then n x (str
 *       config key, str value: null resets it to the default)
 *   key "R" reassign: str name, 16 bytes topic id, i32 partition, i32 n,
 *       n x i32 node ids (n 0: cancel, back to the current replicas)
 *   key "F" reassigned: as "R", n >= 1: the partition's group has those
 *       voters now (its leader sends it, cluster_move.c)
 *   key "N" node: i32 id, str cluster host, i32 cluster port, str Kafka
 *       host, i32 Kafka port: the node is a member from here on
 *       (cluster_members.c; applied once, a replay changes nothing)
 *   key "L" leaving, "X" removed: i32 id (cluster_members.c, idem)
 *   key "K" key-values: str store, 16 bytes request id, i32 n, then n x
 *       (str key, str value: null is a tombstone): records of the users or
 *       the ACLs, handed to the store's callback (cluster_kv.c)
 *   key "E" endpoints: i32 node id, i32 n, then n x (str listener name,
 *       str host, i32 port): the node's Kafka listeners (cluster_members.c;
 *       the last one applied counts)
 * (cluster_wire.h holds every form.)
 * Applying is idempotent by topic id, so a node replays the whole log at
 * every start (its own .topics/ files already hold what it applied
 * before): a create whose name exists is skipped (same id: applied before;
 * another id: the name was taken first, and the request that wrote this
 * record gets TOPIC_ALREADY_EXISTS); a delete removes the topic only when
 * the ids match; a partition count grows the topic when it is larger than
 * what the topic has (else the request that wrote it gets
 * INVALID_PARTITIONS: another grew it first); configs are set as listed
 * (setting a value twice changes nothing). P and C also need the ids to
 * match; their request is found by the record's offset. R and F apply
 * once per partition: the topic's file keeps the offset of the last one
 * applied (broker_move.c). */
#include "cluster/cluster_int.h"
#include "cluster/cluster_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "record/batch.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/slog.h"

typedef struct cl_fwd cl_fwd;
static void fwd_free(cl_fwd *f);

/* A request for the controller (forwarding, below). */
struct cl_fwd {
    struct cl_fwd *next;
    uint64_t id;
    int32_t sent_to;                /* 0: not sent */
    int64_t deadline;
    wbuf body;                      /* the FORWARD body */
    cluster_op_cb cb;
    void *arg;
};

typedef struct cl_op {
    struct cl_op *next;
    int64_t target;                 /* applied once the meta log's applied offset passes it */
    cn_uuid id;                     /* the topic the record names */
    char *name;                     /* create: the name (in-flight duplicates) */
    int status;                     /* set by apply: 0 or -CN_EEXIST */
    cluster_op_cb cb;
    void *arg;
} cl_op;

static cluster *listener_owner(broker_listener *l)
{
    return (cluster *)((char *)l - offsetof(cluster, meta_listener));
}

static void ops_complete(cluster *c, int status_all)
{
    cl_op **pp = &c->ops;
    while (*pp) {
        cl_op *op = *pp;
        if (status_all < 0 || op->target <= c->applied) {
            *pp = op->next;
            op->cb(op->arg, status_all < 0 ? status_all : op->status,
                   status_all == -CN_ENOTCONTROLLER ? "controller changed" : NULL);
            free(op->name);
            free(op);
        } else {
            pp = &op->next;
        }
    }
}

/* The request whose record ends at target (one record per batch). */
static cl_op *op_at(cluster *c, int64_t target)
{
    for (cl_op *op = c->ops; op; op = op->next)
        if (op->target == target)
            return op;
    return NULL;
}

static char *cstr_dup(cn_str s)
{
    if (s.len < 0)
        return NULL;
    char *p = xmalloc((size_t)s.len + 1);
    if (s.len)
        memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = '\0';
    return p;
}

/* Set t's configs kv[0..n) (null values: defaults); dry: validate only.
 * 0 or the first error, with msg. */
static int set_configs(broker *b, topic *t, const broker_kv *kv, int n, int dry, char *msg,
                       size_t msg_len)
{
    for (int i = 0; i < n; i++) {
        char *key = cstr_dup(kv[i].key), *val = cstr_dup(kv[i].value);
        int rc = key ? broker_topic_set_config(b, t, key, val, dry, msg, msg_len) : -CN_EINVAL;
        free(key);
        free(val);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static cl_op *op_by_id(cluster *c, cn_uuid id)
{
    for (cl_op *op = c->ops; op; op = op->next)
        if (memcmp(op->id.b, id.b, 16) == 0)
            return op;
    return NULL;
}

/* Apply one record. */
static int apply_record(const batch_record *r, void *arg)
{
    cluster *c = arg;
    if (r->key_len != 1 || r->value_len < 0)
        return 0;
    clw_topic_op t;
    if (clw_record_decode((char)r->key[0], r->value, (size_t)r->value_len, &t) < 0) {
        slog_error("cluster metadata: bad record at offset %lld", (long long)r->offset);
        return 0;
    }
    if (t.op == 10) {
        cluster__kv_apply(c, &t);
        clw_configs_free(&t);
        return 0;
    }
    if (t.op == 11) {
        cluster__endpoints_apply(c, &t);
        return 0;
    }
    if (t.op >= 7) {
        if (t.op == 7 && t.node.id == c->self) {
            /* Each registration of this node opens a fresh slice of its
             * own producer ids (broker_set_pid_floor). */
            c->self_regs++;
            broker_set_pid_floor(c->b, ((int64_t)c->self << 40) +
                                           ((int64_t)(c->self_regs & 1023) << 30));
        }
        if (t.op == 7)
            cluster__member_add(c, &t.node);
        else if (t.op == 8)
            cluster__member_leaving(c, t.node.id);
        else
            cluster__member_removed(c, t.node.id);
        cl_op *nop = op_at(c, r->offset + 1);
        if (nop)
            nop->status = 0;
        return 0;
    }
    cn_uuid id;
    memcpy(id.b, t.id, 16);
    topic *tp = broker_topic_find(c->b, t.name);
    cl_op *op = op_by_id(c, id);
    char msg[256];
    if (t.op == 1) {
        if (tp) {
            if (memcmp(tp->id.b, id.b, 16) != 0 && op)
                op->status = -CN_EEXIST;
        } else {
            int rc = broker_topic_create_id(c->b, t.name, t.partitions, t.rf, id, t.configs,
                                            t.n_configs, t.assign, msg, sizeof(msg), NULL);
            if (rc < 0) {
                slog_error("cluster metadata: creating topic %.*s failed: %s", t.name.len,
                           t.name.ptr, msg);
                if (op)
                    op->status = rc;
            }
        }
        clw_configs_free(&t);
        return 0;
    }
    int same = tp && memcmp(tp->id.b, id.b, 16) == 0;
    if (t.op == 2) {
        if (same && broker_topic_delete(c->b, tp) < 0 && op)
            op->status = -CN_EIO;
        return 0;
    }
    op = op_at(c, r->offset + 1);
    int rc = 0;
    msg[0] = '\0';
    if (same && (t.op == 5 || t.op == 6) && t.partitions >= tp->n_parts)
        rc = -CN_ENOENT;
    else if (!same)
        rc = -CN_ENOENT; /* deleted (or recreated) meanwhile */
    else if (t.op == 5)
        rc = broker_reassign_begin(c->b, tp, t.partitions, t.assign, t.rf, r->offset);
    else if (t.op == 6)
        rc = broker_reassign_end(c->b, tp, t.partitions, t.assign, t.rf, r->offset);
    else if (t.op == 3 && t.partitions > tp->n_parts && t.assign &&
             (t.n_assign != t.partitions - tp->n_parts || t.rf != tp->rf))
        rc = op ? -CN_EPARTITIONS : 0; /* the count changed since the request was checked */
    else if (t.op == 3 && t.partitions > tp->n_parts)
        rc = broker_topic_add_partitions_recorded(c->b, tp, t.partitions, t.assign, msg,
                                                  sizeof(msg));
    else if (t.op == 3)
        rc = op ? -CN_EPARTITIONS : 0; /* another request grew it first; or a replay */
    else
        rc = set_configs(c->b, tp, t.configs, t.n_configs, 0, msg, sizeof(msg));
    if (rc < 0 && rc != -CN_ENOENT && rc != -CN_EPARTITIONS)
        slog_error("cluster metadata: %s of topic %.*s failed at offset %lld: %s",
                   t.op == 3 ? "partition count" : t.op == 4 ? "configs" : "reassignment",
                   t.name.len, t.name.ptr,
                   (long long)r->offset, msg[0] ? msg : cn_strerror(rc));
    if (op)
        op->status = rc;
    clw_configs_free(&t);
    return 0;
}

/* Apply committed batches [applied, high watermark). */
static void meta_apply(cluster *c)
{
    log_partition *lp = c->meta->log;
    int64_t hw = log_high_watermark(lp);
    if (c->applied < log_start_offset(lp))
        c->applied = log_start_offset(lp);
    while (c->applied < hw) {
        log_slice sl;
        if (log_read(lp, c->applied, hw, 1 << 20, &sl) < 0 || sl.len <= 0)
            break;
        uint8_t *buf = xmalloc((size_t)sl.len);
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.pos);
        int64_t len = sl.len;
        log_slice_release(&sl);
        if (got != len) {
            free(buf);
            slog_error("cluster metadata: read failed at offset %lld", (long long)c->applied);
            break;
        }
        size_t pos = 0;
        while (pos + BATCH_HEADER_SIZE <= (size_t)len) {
            batch_info bi;
            if (batch_parse_header(buf + pos, (size_t)len - pos, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + 12;
            if (pos + total > (size_t)len)
                break;
            int64_t next = bi.base_offset + bi.last_offset_delta + 1;
            if (next > c->applied) {
                if (!bi.control)
                    batch_foreach(buf + pos, total, c->scratch, apply_record, c);
                c->applied = next;
            }
            pos += total;
        }
        free(buf);
    }
    ops_complete(c, 0);
    /* What is still waiting may never commit, or its offsets may be taken
     * by another controller's records: not ours to answer any more. */
    if (c->ops && !broker_partition_is_leader(c->meta))
        ops_complete(c, -CN_ENOTCONTROLLER);
}

static void meta_listener_cb(broker_listener *l)
{
    meta_apply(listener_owner(l));
}

int cluster_meta_start(cluster *c, broker *b)
{
    c->b = b;
    cluster__members_publish(c);
    int rc = broker_internal_partition_replicated(b, BROKER_CLUSTER_META_TOPIC, &c->meta);
    if (rc < 0) {
        slog_error("cannot open the cluster metadata log: %s", cn_strerror(rc));
        return rc;
    }
    c->scratch = batch_scratch_new();
    c->meta_listener.cb = meta_listener_cb;
    broker_listen_appends(b, &c->meta_listener);
    c->applied = log_start_offset(c->meta->log);
    c->meta_end_at_start = log_end_offset(c->meta->log);
    meta_apply(c);
    /* A first member's ids start at n << 40 (as before joining existed);
     * a node that joined waits for its registration. */
    if (!c->joined)
        broker_set_pid_floor(b, (int64_t)c->self << 40);
    cluster__call_start(c);
    return 0;
}

void cluster_meta_stop(cluster *c)
{
    if (!c || !c->b)
        return;
    broker_unlisten_appends(c->b, &c->meta_listener);
    cluster__call_stop(c);
    ops_complete(c, -CN_ENOTCONTROLLER);
    while (c->fwds) {
        cl_fwd *f = c->fwds;
        c->fwds = f->next;
        f->cb(f->arg, -CN_ENOTCONTROLLER, "shutting down");
        fwd_free(f);
    }
    cluster__kv_stop(c);
    batch_scratch_free(c->scratch);
    c->scratch = NULL;
    c->b = NULL;
    c->meta = NULL;
}

int cluster_meta_caught_up(const cluster *c)
{
    if (!c->meta)
        return 0;
    int64_t end = log_end_offset(c->meta->log);
    return c->applied >= (c->meta_end_at_start < end ? c->meta_end_at_start : end);
}

int32_t cluster_controller(const cluster *c)
{
    return c->meta ? broker_partition_leader(c->meta) : -1;
}

int32_t cluster_controller_hint(const cluster *c)
{
    return c->meta ? broker_partition_leader_hint(c->meta) : -1;
}

/* Append one record as the controller and park an op on it. */
int cluster__meta_submit(cluster *c, const char *key, const wbuf *value, cn_uuid id,
                         const char *name, cluster_op_cb cb, void *arg)
{
    batch_build_rec rec = {.key = key, .key_len = 1, .value = value->buf,
                           .value_len = (int32_t)value->len, .ts = loop_wall_ms()};
    uint8_t *batch = NULL;
    size_t len = 0;
    if (batch_build(&rec, 1, 0, 0, &batch, &len) < 0)
        return -CN_ENOMEM;
    int64_t off = -1;
    int rc = broker_append(c->b, c->meta, batch, len, &off);
    free(batch);
    if (rc < 0)
        return rc;
    cl_op *op = xcalloc(1, sizeof(*op));
    op->target = log_end_offset(c->meta->log);
    op->id = id;
    op->name = name ? xstrdup(name) : NULL;
    op->cb = cb;
    op->arg = arg;
    op->next = c->ops;
    c->ops = op;
    return 0;
}

static int name_in_flight(cluster *c, cn_str name)
{
    for (cl_op *op = c->ops; op; op = op->next)
        if (op->name && (int32_t)strlen(op->name) == name.len &&
            memcmp(op->name, name.ptr, (size_t)name.len) == 0)
            return 1;
    return 0;
}

/* 0 when this node is the controller; else -CN_ENOTCONTROLLER and msg
 * names the one that is. */
static int ctl_check(cluster *c, char *msg, size_t msg_len)
{
    msg[0] = '\0';
    if (c->meta && broker_partition_is_leader(c->meta))
        return 0;
    snprintf(msg, msg_len, "this node is not the controller (node %d is)", cluster_controller(c));
    return -CN_ENOTCONTROLLER;
}

int cluster__meta_submit_op(cluster *c, const clw_topic_op *t, char *msg, size_t msg_len,
                            cluster_op_cb cb, void *arg)
{
    int rc = ctl_check(c, msg, msg_len);
    if (rc < 0)
        return rc;
    wbuf w;
    wbuf_init(&w);
    clw_record_encode(&w, t);
    char key[2] = {clw_record_key(t), '\0'};
    cn_uuid id;
    memcpy(id.b, t->id, 16);
    rc = cluster__meta_submit(c, key, &w, id, NULL, cb, arg);
    wbuf_fini(&w);
    return rc;
}

/* 1 with msg when ids (n) name a leaving member. */
static int leaving_named(cluster *c, const int32_t *ids, size_t n, char *msg, size_t msg_len)
{
    for (size_t i = 0; i < n; i++)
        if (cluster__member_state(c, ids[i]) == 2) {
            snprintf(msg, msg_len, "node %d is leaving the cluster: it takes no new replicas",
                     ids[i]);
            return 1;
        }
    return 0;
}

static int ctl_create(cluster *c, cn_str name, int32_t n_parts, int32_t rf,
                      const broker_kv *configs, int n_configs, const int32_t *assign,
                      int validate_only, char *msg, size_t msg_len, cluster_op_cb cb, void *arg)
{
    int crc = ctl_check(c, msg, msg_len);
    if (crc < 0)
        return crc;
    if (n_parts == -1)
        n_parts = broker_config(c->b)->num_partitions;
    if (assign && (n_parts < 1 || rf < 1)) {
        snprintf(msg, msg_len, "an assignment needs its partition count and replication factor");
        return -CN_EASSIGN;
    }
    int rc = broker_topic_create_rf(c->b, name, n_parts, rf, configs, n_configs, assign, 1, msg,
                                    msg_len, NULL);
    if (rc < 0)
        return rc;
    if (name_in_flight(c, name)) {
        snprintf(msg, msg_len, "topic '%.*s' is being created", name.len, name.ptr);
        return -CN_EEXIST;
    }
    if (validate_only)
        return 1;
    if (rf == -1)
        rf = broker_config(c->b)->default_replication_factor;
    if (rf == -1) {
        int nn;
        broker_nodes(c->b, &nn);
        rf = nn;
    }
    cn_uuid id;
    if (getrandom(id.b, 16, 0) != 16)
        return -CN_EIO;
    char nbuf[256];
    snprintf(nbuf, sizeof(nbuf), "%.*s", name.len, name.ptr);
    /* Placed here, carried by the record: every node applies the same
     * assignment, whatever members it knows when it does. */
    int32_t *placed = NULL;
    int nn;
    broker_nodes(c->b, &nn);
    if (!assign && nn >= 2) {
        placed = xcalloc((size_t)n_parts * (size_t)rf, sizeof(*placed));
        if (broker_place_new(c->b, nbuf, &id, 0, n_parts, rf, placed) < 0) {
            free(placed);
            snprintf(msg, msg_len, "replication factor %d: more than the members that take new "
                     "replicas (leaving ones do not)", rf);
            return -CN_EREPLICATION;
        }
        assign = placed;
    } else if (assign && leaving_named(c, assign, (size_t)n_parts * (size_t)rf, msg, msg_len)) {
        return -CN_EASSIGN;
    }
    wbuf w;
    wbuf_init(&w);
    clw_topic_op t = {1, name, n_parts, rf, n_configs, (broker_kv *)configs, {0},
                      (int32_t *)assign};
    memcpy(t.id, id.b, 16);
    clw_record_encode(&w, &t);
    free(placed);
    rc = cluster__meta_submit(c, "T", &w, id, nbuf, cb, arg);
    wbuf_fini(&w);
    return rc;
}

static int ctl_delete(cluster *c, cn_str name, cn_uuid id, char *msg, size_t msg_len,
                      cluster_op_cb cb, void *arg)
{
    msg[0] = '\0';
    if (!c->meta || !broker_partition_is_leader(c->meta))
        return -CN_ENOTCONTROLLER;
    topic *t = broker_topic_find(c->b, name);
    if (!t || memcmp(t->id.b, id.b, 16) != 0) {
        snprintf(msg, msg_len, "unknown topic");
        return -CN_ENOENT;
    }
    wbuf w;
    wbuf_init(&w);
    clw_topic_op rec = {.op = 2, .name = name};
    memcpy(rec.id, id.b, 16);
    clw_record_encode(&w, &rec);
    int rc = cluster__meta_submit(c, "D", &w, id, NULL, cb, arg);
    wbuf_fini(&w);
    return rc;
}

/* A change to an existing topic (op 3 partitions, 4 configs) as the
 * controller: validated against its registry, then the record. */
static int ctl_alter(cluster *c, const clw_topic_op *t, int validate_only, char *msg,
                     size_t msg_len, cluster_op_cb cb, void *arg)
{
    int crc = ctl_check(c, msg, msg_len);
    if (crc < 0)
        return crc;
    topic *tp = broker_topic_find(c->b, t->name);
    if (!tp || memcmp(tp->id.b, t->id, 16) != 0) {
        snprintf(msg, msg_len, "unknown topic");
        return -CN_ENOENT;
    }
    int rc;
    if (t->op == 5 && t->rf == 0) {
        /* a cancel: only of a move that runs */
        rc = t->partitions < 0 || t->partitions >= tp->n_parts ? -CN_ENOENT
             : broker_reassign_target(tp, t->partitions)      ? 0
                                                               : -CN_ENOMOVE;
        if (rc < 0)
            snprintf(msg, msg_len, "%s", rc == -CN_ENOENT ? "unknown partition"
                                                          : "no reassignment of this partition "
                                                            "is in progress");
    } else if (t->op == 5) {
        rc = broker_check_reassign(c->b, tp, t->partitions, t->assign, t->rf, msg, msg_len);
        if (rc == 0 && leaving_named(c, t->assign, (size_t)t->rf, msg, msg_len))
            rc = -CN_EASSIGN;
    } else if (t->op == 6) {
        rc = broker_reassign_target(tp, t->partitions) ? 0 : -CN_ENOMOVE; /* done already */
    } else if (t->op == 3 && t->assign &&
               (t->n_assign != t->partitions - tp->n_parts || t->rf != tp->rf)) {
        snprintf(msg, msg_len, "an assignment for %d new partition(s) of %d replicas is needed",
                 t->partitions - tp->n_parts, tp->rf);
        rc = -CN_EASSIGN;
    } else {
        rc = t->op == 3 ? broker_topic_add_partitions(c->b, tp, t->partitions, t->assign, 1, msg,
                                                      msg_len)
                        : set_configs(c->b, tp, t->configs, t->n_configs, 1, msg, msg_len);
    }
    if (rc < 0)
        return rc;
    if (validate_only)
        return 1;
    cn_uuid id;
    memcpy(id.b, t->id, 16);
    /* New partitions are placed here, as a create's are. */
    clw_topic_op placed = *t;
    int32_t *pa = NULL;
    int nn;
    broker_nodes(c->b, &nn);
    if (t->op == 3 && !t->assign && tp->assign && nn >= 2 && t->partitions > tp->n_parts) {
        int32_t add = t->partitions - tp->n_parts;
        pa = xcalloc((size_t)add * (size_t)tp->rf, sizeof(*pa));
        if (broker_place_new(c->b, tp->name, &tp->id, tp->n_parts, t->partitions, tp->rf,
                             pa) < 0) {
            free(pa);
            snprintf(msg, msg_len, "fewer members take new replicas than the topic's %d",
                     tp->rf);
            return -CN_EREPLICATION;
        }
        placed.assign = pa;
        placed.n_assign = add;
        placed.rf = tp->rf;
    } else if (t->op == 3 && t->assign &&
               leaving_named(c, t->assign, (size_t)t->n_assign * (size_t)t->rf, msg, msg_len)) {
        return -CN_EASSIGN;
    }
    t = &placed;
    wbuf w;
    wbuf_init(&w);
    clw_record_encode(&w, t);
    free(pa);
    char key[2] = {clw_record_key(t), '\0'};
    rc = cluster__meta_submit(c, key, &w, id, NULL, cb, arg);
    wbuf_fini(&w);
    return rc;
}

/* Append the record of node op 7 ("N"), 8 ("L") or 9 ("X") for n (ops 8
 * and 9 carry its id only); name keeps one such request in flight. */
static int submit_node(cluster *c, int op, const clw_node *n, const char *name,
                       cluster_op_cb cb, void *arg)
{
    clw_topic_op t = {.op = op, .node = *n};
    wbuf w;
    wbuf_init(&w);
    clw_record_encode(&w, &t);
    char key[2] = {clw_record_key(&t), '\0'};
    cn_uuid none = {{0}};
    int rc = cluster__meta_submit(c, key, &w, none, name, cb, arg);
    wbuf_fini(&w);
    return rc;
}

/* A joining node's registration: a record "N" unless it is a member
 * already or its record is in flight (1: nothing to do). */
static int ctl_register(cluster *c, const clw_node *n, char *msg, size_t msg_len,
                        cluster_op_cb cb, void *arg)
{
    int crc = ctl_check(c, msg, msg_len);
    if (crc < 0)
        return crc;
    int known = n->id == c->self;
    for (int i = 0; i < c->n_ids; i++)
        known |= c->ids[i] == n->id;
    char name[32];
    snprintf(name, sizeof(name), ".node-%d", n->id);
    if (known || name_in_flight(c, cn_str_c(name)))
        return 1;
    if (c->n_ids >= CONFIG_MAX_PEERS) {
        snprintf(msg, msg_len, "the cluster has %d nodes, the most it can have", c->n_ids);
        return -CN_EINVAL;
    }
    int rc = submit_node(c, 7, n, name, cb, arg);
    if (rc == 0)
        slog_info("cluster: registering node %d (cluster %.*s:%d, Kafka %.*s:%d)", n->id,
                  n->host.len, n->host.ptr, n->port, n->kafka_host.len, n->kafka_host.ptr,
                  n->kafka_port);
    return rc;
}

/* A member's removal starts: record "L" once it is known that the others
 * can hold every topic's replicas. */
static int ctl_leave(cluster *c, int32_t id, char *msg, size_t msg_len, cluster_op_cb cb,
                     void *arg)
{
    int crc = ctl_check(c, msg, msg_len);
    if (crc < 0)
        return crc;
    int st = cluster__member_state(c, id);
    if (st == 0) {
        snprintf(msg, msg_len, "node %d is not a member of this cluster", id);
        return -CN_ENOENT;
    }
    if (st == 2)
        return 1; /* leaving already */
    int others = 0;
    for (int i = 0; i < c->n_ids; i++)
        others += c->ids[i] != id && cluster__member_state(c, c->ids[i]) == 1;
    if (others < 1) {
        snprintf(msg, msg_len, "node %d is the last member taking replicas", id);
        return -CN_EINVAL;
    }
    for (topic *t = broker_topics(c->b); t; t = t->lnext) {
        if (t->rf > others) {
            snprintf(msg, msg_len, "topic %s has %d replicas; without node %d the cluster has %d "
                     "member(s) to hold them", t->name, t->rf, id, others);
            return -CN_EINVAL;
        }
        /* What moves cannot take off it (broker_check_reassign). */
        for (int32_t i = 0; i < t->n_parts && (t->rf < 2 || !t->assign); i++)
            if (!t->assign || t->assign[(size_t)i * (size_t)t->rf] == id) {
                snprintf(msg, msg_len, "topic %s cannot move off node %d (%s); delete it first",
                         t->name, id, t->assign ? "replication factor 1" : "created before "
                         "placement");
                return -CN_EINVAL;
            }
    }
    char name[32];
    snprintf(name, sizeof(name), ".leave-%d", id);
    if (name_in_flight(c, cn_str_c(name)))
        return 1;
    clw_node n = {.id = id};
    int rc = submit_node(c, 8, &n, name, cb, arg);
    if (rc == 0)
        slog_info("cluster: node %d leaves the cluster", id);
    return rc;
}

static void removed_done(void *arg, int status, const char *msg)
{
    (void)arg;
    if (status < 0)
        slog_warn("cluster: the removal record was not written: %s",
                  msg ? msg : cn_strerror(status));
}

int cluster__meta_removed(cluster *c, int32_t id)
{
    char msg[128];
    if (ctl_check(c, msg, sizeof(msg)) < 0)
        return -CN_ENOTCONTROLLER;
    char name[32];
    snprintf(name, sizeof(name), ".removed-%d", id);
    if (name_in_flight(c, cn_str_c(name)))
        return 0;
    clw_node n = {.id = id};
    int rc = submit_node(c, 9, &n, name, removed_done, NULL);
    if (rc == 0)
        slog_info("cluster: node %d holds no replica any more: removing it", id);
    return rc;
}

/* Forwarding ---------------------------------------------------------------------------
 *
 * A node that is not the controller forwards CreateTopics/DeleteTopics to
 * it over the cluster connection (as Kafka brokers forward to their
 * controller, KIP-590), so clients never see NOT_CONTROLLER. Frames (after
 * the cluster frame's type byte; big-endian, str = i16 length + bytes):
 *   3 FORWARD  u64 request id, u8 op (1 create, 2 delete), u8 validate_only,
 *              create: str name, i32 partitions, i32 replication factor,
 *                      i32 n, n x (str key, str value)
 *              delete: str name, 16 bytes topic id
 *   4 REPLY    u64 request id, i32 status (0 done, 1 validated, or -CN_E*),
 *              str message ("" none)
 * A request waits (at most CL_FWD_MS) while no controller is known; one
 * whose controller went away, or that the controller refused with
 * -CN_ENOTCONTROLLER, is forwarded again to the next controller. */
#define CL_FWD_MS 15000


typedef struct cl_reply_to {
    cluster *c;
    int32_t node;
    uint64_t req;
} cl_reply_to;

static void send_reply(cluster *c, int32_t node, uint64_t req, int status, const char *msg)
{
    wbuf w;
    wbuf_init(&w);
    clw_reply rp = {req, status, cn_str_c(msg ? msg : "")};
    if (rp.msg.len > CLW_MAX_MSG)
        rp.msg.len = CLW_MAX_MSG;
    clw_reply_encode(&w, &rp);
    cluster__send_frame(c, node, CL_REPLY, w.buf, w.len);
    wbuf_fini(&w);
}

static void reply_done(void *arg, int status, const char *msg)
{
    cl_reply_to *rt = arg;
    send_reply(rt->c, rt->node, rt->req, status, msg);
    free(rt);
}

/* Run a FORWARD body here, as the controller. Returns what ctl_* return
 * (0: cb runs later). */
static int run_body(cluster *c, const uint8_t *body, size_t len, char *msg, size_t msg_len,
                    cluster_op_cb cb, void *arg)
{
    clw_forward f;
    if (clw_forward_decode(body, len, &f) < 0)
        return -CN_EPROTO;
    if (f.t.op == 1) {
        int rc = ctl_create(c, f.t.name, f.t.partitions, f.t.rf, f.t.configs, f.t.n_configs,
                            f.t.assign, f.validate_only, msg, msg_len, cb, arg);
        clw_configs_free(&f.t);
        return rc;
    }
    if (f.t.op == 2) {
        cn_uuid id;
        memcpy(id.b, f.t.id, 16);
        return ctl_delete(c, f.t.name, id, msg, msg_len, cb, arg);
    }
    if (f.t.op == 7)
        return ctl_register(c, &f.t.node, msg, msg_len, cb, arg);
    if (f.t.op == 8)
        return ctl_leave(c, f.t.node.id, msg, msg_len, cb, arg);
    if (f.t.op == 10) {
        int rc = cluster__meta_submit_op(c, &f.t, msg, msg_len, cb, arg);
        clw_configs_free(&f.t);
        return rc;
    }
    if (f.t.op == 11)
        return cluster__meta_submit_op(c, &f.t, msg, msg_len, cb, arg);
    int rc = ctl_alter(c, &f.t, f.validate_only, msg, msg_len, cb, arg);
    clw_configs_free(&f.t);
    return rc;
}

/* Send or run fwd if a controller is known. Returns 1 when fwd is done
 * (its cb ran), else 0. */
static int fwd_dispatch(cluster *c, cl_fwd *f)
{
    int32_t ctl = cluster_controller(c);
    if (ctl < 0 || f->sent_to)
        return 0;
    if (ctl == c->self) {
        char msg[256];
        int rc = run_body(c, f->body.buf, f->body.len, msg, sizeof(msg), f->cb, f->arg);
        if (rc == -CN_ELEADERWAIT || rc == -CN_ENOTCONTROLLER)
            return 0; /* a new controller's first commit is pending: next tick */
        if (rc != 0)
            f->cb(f->arg, rc, msg[0] ? msg : NULL);
        return 1;
    }
    if (cluster__send_frame(c, ctl, CL_FORWARD, f->body.buf, f->body.len) == 0)
        f->sent_to = ctl;
    return 0;
}

static void fwd_free(cl_fwd *f)
{
    wbuf_fini(&f->body);
    free(f);
}

/* Queue a request for the controller (this node is not it, or none is
 * known). Returns 0 (cb runs later). */
int cluster__meta_forward(cluster *c, wbuf *body, cluster_op_cb cb, void *arg)
{
    cl_fwd *f = xcalloc(1, sizeof(*f));
    f->id = ++c->next_fwd;
    be_put64(body->buf, f->id);
    f->body = *body; /* takes the buffer */
    f->deadline = loop_now_mono() + CL_FWD_MS;
    f->cb = cb;
    f->arg = arg;
    f->next = c->fwds;
    c->fwds = f;
    /* Not dispatched here: a controller that is this node would run it and
     * call cb inside the caller's call. The tick (10 ms) sends it. */
    return 0;
}

void cluster__meta_tick(cluster *c)
{
    int64_t now = loop_now_mono();
    cl_fwd **pp = &c->fwds;
    while (*pp) {
        cl_fwd *f = *pp;
        if (f->sent_to) {
            int32_t ctl = cluster_controller(c);
            cluster_member m;
            int up = cluster_member_by_id(c, f->sent_to, &m) && m.connected;
            if (!up || ctl != f->sent_to)
                f->sent_to = 0; /* its controller went away: the next one gets it */
        }
        int done = 0;
        if (!f->sent_to && now >= f->deadline) {
            f->cb(f->arg, -CN_ENOTCONTROLLER, "no controller reachable");
            done = 1;
        } else if (!f->sent_to) {
            done = fwd_dispatch(c, f);
        }
        if (done) {
            *pp = f->next;
            fwd_free(f);
        } else {
            pp = &f->next;
        }
    }
}

int cluster__on_meta_frame(cluster *c, int32_t from, int type, const uint8_t *body, size_t len)
{
    if (len < 8)
        return -CN_EPROTO;
    uint64_t req = be_get64(body);
    if (type == CL_FORWARD) {
        if (!c->b)
            return 0;
        cl_reply_to *rt = xcalloc(1, sizeof(*rt));
        rt->c = c;
        rt->node = from;
        rt->req = req;
        char msg[256];
        int rc = run_body(c, body, len, msg, sizeof(msg), reply_done, rt);
        if (rc == -CN_EPROTO) {
            free(rt);
            return rc;
        }
        if (rc != 0) {
            send_reply(c, from, req, rc, msg);
            free(rt);
        }
        return 0;
    }
    clw_reply rp;
    if (clw_reply_decode(body, len, &rp) < 0)
        return -CN_EPROTO;
    int32_t status = rp.status;
    cn_str m = rp.msg;
    for (cl_fwd **pp = &c->fwds; *pp; pp = &(*pp)->next) {
        cl_fwd *f = *pp;
        if (f->id != req || f->sent_to != from)
            continue;
        if (status == -CN_ENOTCONTROLLER || status == -CN_ELEADERWAIT) {
            f->sent_to = 0; /* the next controller (or this one, ready) gets it (tick) */
            return 0;
        }
        char msg[1001];
        memcpy(msg, m.ptr, (size_t)m.len);
        msg[m.len] = '\0';
        *pp = f->next;
        f->cb(f->arg, status, msg[0] ? msg : NULL);
        fwd_free(f);
        return 0;
    }
    return 0; /* an answer nobody waits for any more */
}


int cluster_meta_create_topic(cluster *c, cn_str name, int32_t n_parts, int32_t rf,
                              const broker_kv *configs, int n_configs, const int32_t *assign,
                              int validate_only, char *msg, size_t msg_len, cluster_op_cb cb,
                              void *arg)
{
    msg[0] = '\0';
    if (cluster_controller(c) == c->self) {
        int rc = ctl_create(c, name, n_parts, rf, configs, n_configs, assign, validate_only, msg,
                            msg_len, cb, arg);
        if (rc != -CN_ELEADERWAIT)
            return rc;
        msg[0] = '\0'; /* a new controller: queued below until its barrier commits */
    }
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {0, validate_only, {1, name, n_parts, rf, n_configs, (broker_kv *)configs,
                                        {0}, (int32_t *)assign}}; /* request id: forward() */
    clw_forward_encode(&w, &f);
    return cluster__meta_forward(c, &w, cb, arg);
}

int cluster_meta_delete_topic(cluster *c, topic *t, cluster_op_cb cb, void *arg)
{
    char msg[256];
    if (cluster_controller(c) == c->self) {
        int rc = ctl_delete(c, cn_str_c(t->name), t->id, msg, sizeof(msg), cb, arg);
        if (rc != -CN_ELEADERWAIT)
            return rc;
    }
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {.t = {.op = 2, .name = cn_str_c(t->name)}};
    memcpy(f.t.id, t->id.b, 16);
    clw_forward_encode(&w, &f);
    return cluster__meta_forward(c, &w, cb, arg);
}

/* Partitions and configs of an existing topic: on the controller at once,
 * else forwarded (ctl_alter). */
static int alter(cluster *c, clw_topic_op *t, int validate_only, char *msg, size_t msg_len,
                 cluster_op_cb cb, void *arg)
{
    msg[0] = '\0';
    if (cluster_controller(c) == c->self) {
        int rc = ctl_alter(c, t, validate_only, msg, msg_len, cb, arg);
        if (rc != -CN_ELEADERWAIT)
            return rc;
        msg[0] = '\0'; /* a new controller: queued below until its barrier commits */
    }
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {0, validate_only, *t}; /* request id set by forward() */
    clw_forward_encode(&w, &f);
    return cluster__meta_forward(c, &w, cb, arg);
}

int cluster_meta_add_partitions(cluster *c, topic *t, int32_t count, const int32_t *assign,
                                int validate_only, char *msg, size_t msg_len, cluster_op_cb cb,
                                void *arg)
{
    clw_topic_op op = {.op = 3, .name = cn_str_c(t->name), .partitions = count,
                       .assign = (int32_t *)assign, .rf = assign ? t->rf : 0,
                       .n_assign = assign ? count - t->n_parts : 0};
    memcpy(op.id, t->id.b, 16);
    return alter(c, &op, validate_only, msg, msg_len, cb, arg);
}

int cluster_meta_set_configs(cluster *c, topic *t, const broker_kv *kv, int n,
                             int validate_only, char *msg, size_t msg_len, cluster_op_cb cb,
                             void *arg)
{
    clw_topic_op op = {.op = 4, .name = cn_str_c(t->name), .n_configs = n,
                       .configs = (broker_kv *)kv};
    memcpy(op.id, t->id.b, 16);
    return alter(c, &op, validate_only, msg, msg_len, cb, arg);
}

int cluster_meta_reassign(cluster *c, topic *t, int32_t part, const int32_t *ids, int n,
                          char *msg, size_t msg_len, cluster_op_cb cb, void *arg)
{
    clw_topic_op op = {.op = 5, .name = cn_str_c(t->name), .partitions = part,
                       .rf = ids ? n : 0, .assign = ids ? (int32_t *)ids : NULL};
    memcpy(op.id, t->id.b, 16);
    return alter(c, &op, 0, msg, msg_len, cb, arg);
}

int cluster__meta_reassigned(cluster *c, topic *t, int32_t part, const int32_t *ids, int n,
                             cluster_op_cb cb, void *arg)
{
    char msg[256];
    clw_topic_op op = {.op = 6, .name = cn_str_c(t->name), .partitions = part, .rf = n,
                       .assign = (int32_t *)ids};
    memcpy(op.id, t->id.b, 16);
    return alter(c, &op, 0, msg, sizeof(msg), cb, arg);
}

int cluster__meta_register(cluster *c, const clw_node *n, cluster_op_cb cb, void *arg)
{
    /* Always through the queue, even on the controller: cb never runs
     * inside this call. */
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {0, 0, {.op = 7, .node = *n}}; /* request id set by forward() */
    clw_forward_encode(&w, &f);
    return cluster__meta_forward(c, &w, cb, arg);
}

int cluster__meta_leave(cluster *c, int32_t id, char *msg, size_t msg_len, cluster_op_cb cb,
                        void *arg)
{
    msg[0] = '\0';
    if (cluster_controller(c) == c->self) {
        int rc = ctl_leave(c, id, msg, msg_len, cb, arg);
        if (rc != -CN_ELEADERWAIT)
            return rc;
        msg[0] = '\0';
    }
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {0, 0, {.op = 8}}; /* request id set by forward() */
    f.t.node.id = id;
    clw_forward_encode(&w, &f);
    return cluster__meta_forward(c, &w, cb, arg);
}
