/* The kvlog __amqp_meta (amqp_int.h "ah_meta.c"): the records of durable
 * exchanges, queues and bindings, their replay at start and their
 * compaction. The tables themselves live in ah_queue.c; the queues' ack
 * states are records of this kvlog too, encoded by ah_store.c.
 *
 * __amqp_meta records (util/bin.h encodings: str = int16 length + bytes,
 * bytes = int32 length + bytes, big-endian integers). A removal is a
 * tombstone of the same key. Metadata writes go to the page cache at once
 * and are durable within the log flush window (declare-ok does not wait).
 *   exchange  key:   int8 'E', str vhost "/", str name
 *             value: int8 version (1, or 2 when declared with arguments),
 *                    int8 type (0 direct, 1 fanout, 2 topic, 3 headers),
 *                    int8 flags (1 auto-delete, 2 internal),
 *                    version 2 only: bytes declare arguments (field table;
 *                    alternate-exchange is taken from it at replay)
 *   queue     key:   int8 'Q', str vhost "/", str name
 *             value: int8 version 1, int64 queue id, int8 flags
 *                    (1 auto-delete), bytes declare arguments (field table)
 *                    in a cluster, version 2: the same, then int32 n,
 *                    n x int32 node id: the voters the queue's log began
 *                    with (every node opens it with them, ah_cluster.c)
 *   binding   key:   int8 'B', str vhost "/", str exchange, str queue,
 *                    str routing key, bytes arguments (field table)
 *             value: int8 version 1
 *   exchange-to-exchange binding (ah_xbind.c), kept when both ends are
 *   durable (built-in exchanges count as durable):
 *             key:   int8 'X', str vhost "/", str source exchange,
 *                    str destination exchange, str routing key,
 *                    bytes arguments (field table)
 *             value: int8 version 1
 *
 *   ack state key:   int8 'A', str vhost "/", int64 queue id
 *             value: see ah_store.c (asrv__store_ack_record)
 *   serving node (in a cluster): key int8 'S', str vhost "/"; the value
 *             in ah_cluster.c (serving_record); the replay skips it */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "util/bin.h"
#include "util/common.h"
#include "util/slog.h"

/* Persistence (__amqp_meta) ------------------------------------------------ */

static int exchange_persisted(const aexchange *x) { return x->durable && !x->builtin; }
static int binding_persisted(const aexchange *x, const abinding *b)
{
    return x->durable && asrv__queue_persisted(b->q);
}

static void key_exchange(wbuf *k, const aexchange *x)
{
    bin_put_i8(k, 'E');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){x->name, x->name_len});
}

static void val_exchange(wbuf *v, const aexchange *x)
{
    bin_put_i8(v, x->args_len ? 2 : 1);
    bin_put_i8(v, (int8_t)x->type);
    bin_put_i8(v, (int8_t)((x->auto_delete ? 1 : 0) | (x->internal ? 2 : 0)));
    if (x->args_len)
        bin_put_bytes(v, (cn_bytes){x->args, (int32_t)x->args_len});
}

static void key_queue(wbuf *k, const aqueue *q)
{
    bin_put_i8(k, 'Q');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){q->name, q->name_len});
}

static void val_queue(wbuf *v, const aqueue *q)
{
    bin_put_i8(v, q->n_voters ? 2 : 1);
    bin_put_i64(v, (int64_t)q->id);
    bin_put_i8(v, (int8_t)(q->auto_delete ? 1 : 0));
    bin_put_bytes(v, (cn_bytes){q->args, (int32_t)q->args_len});
    if (q->n_voters) {
        bin_put_i32(v, q->n_voters);
        for (int i = 0; i < q->n_voters; i++)
            bin_put_i32(v, q->voters[i]);
    }
}

int asrv__meta_parse_queue(const uint8_t *val, int32_t len, uint64_t *id, int *flags,
                           cn_bytes *args, int32_t *voters, int *n_voters)
{
    bin_reader v;
    bin_reader_init(&v, val, (size_t)len);
    int version = bin_i8(&v);
    *id = (uint64_t)bin_i64(&v);
    *flags = bin_i8(&v);
    *args = bin_bytes(&v);
    *n_voters = 0;
    if (version == 2) {
        int32_t n = bin_i32(&v);
        if (n < 1 || n > ASRV_MAX_VOTERS || (size_t)n * 4 != bin_remaining(&v))
            return -1;
        for (int32_t i = 0; i < n; i++)
            voters[i] = bin_i32(&v);
        *n_voters = n;
    }
    if ((version != 1 && version != 2) || v.err || bin_remaining(&v) || args->len < 0)
        return -1;
    return 0;
}

static void key_binding(wbuf *k, const aexchange *x, const abinding *b)
{
    bin_put_i8(k, 'B');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){x->name, x->name_len});
    bin_put_str(k, (cn_str){b->q->name, b->q->name_len});
    bin_put_str(k, (cn_str){b->key, b->key_len});
    bin_put_bytes(k, (cn_bytes){b->args, (int32_t)b->args_len});
}

static int xbind_persisted(const aexchange *src, const abinding *b)
{
    return src->durable && b->dx->durable;
}

static void key_xbind(wbuf *k, const aexchange *src, const abinding *b)
{
    bin_put_i8(k, 'X');
    bin_put_str(k, cn_str_c("/"));
    bin_put_str(k, (cn_str){src->name, src->name_len});
    bin_put_str(k, (cn_str){b->dx->name, b->dx->name_len});
    bin_put_str(k, (cn_str){b->key, b->key_len});
    bin_put_bytes(k, (cn_bytes){b->args, (int32_t)b->args_len});
}

void asrv__meta_write(asrv *as, const void *k, size_t kl, const void *v, int32_t vl)
{
    if (!as->meta)
        return;
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, k, (int32_t)kl, v, v ? vl : -1);
    int rc = kvl_append(as->meta, &bt, loop_wall_ms(), NULL);
    kvl_batch_fini(&bt);
    if (rc < 0)
        slog_error("amqp: writing %s failed (%s): the metadata change is not persisted",
                   BROKER_AMQP_META_TOPIC, cn_strerror(rc));
    else
        kvl_maybe_compact(as->meta);
}

/* Append one record (value NULL: tombstone). */
static void meta_write(asrv *as, const wbuf *k, const wbuf *v)
{
    asrv__meta_write(as, k->buf, k->len, v ? v->buf : NULL, v ? (int32_t)v->len : -1);
}

void asrv__meta_exchange(asrv *as, const aexchange *x, int put)
{
    if (!exchange_persisted(x))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_exchange(&k, x);
    val_exchange(&v, x);
    meta_write(as, &k, put ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

void asrv__meta_queue(asrv *as, const aqueue *q, int put)
{
    if (!asrv__queue_persisted(q))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_queue(&k, q);
    val_queue(&v, q);
    meta_write(as, &k, put ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

void asrv__meta_binding(asrv *as, const aexchange *x, const abinding *b, int put)
{
    if (!binding_persisted(x, b))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_binding(&k, x, b);
    bin_put_i8(&v, 1);
    meta_write(as, &k, put ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

void asrv__meta_xbind(asrv *as, const aexchange *src, const abinding *b, int put)
{
    if (!xbind_persisted(src, b))
        return;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    key_xbind(&k, src, b);
    bin_put_i8(&v, 1);
    meta_write(as, &k, put ? &v : NULL);
    wbuf_fini(&k);
    wbuf_fini(&v);
}

/* Replay of __amqp_meta --------------------------------------------------- */

static int meta_on_record(void *arg, const batch_record *r, const char **why)
{
    asrv *as = arg;
    bin_reader k, v;
    bin_reader_init(&k, r->key, (size_t)r->key_len);
    int kind = bin_i8(&k);
    cn_str vhost = bin_str(&k);
    if (kind == 'A') {
        uint64_t qid = (uint64_t)bin_i64(&k);
        if (k.err || bin_remaining(&k) || !cn_str_eq(vhost, "/") ||
            asrv__store_replay_acks(as, qid, r->value_len < 0 ? NULL : r->value,
                                    r->value_len) < 0) {
            *why = "malformed ack state";
            return -1;
        }
        return 0;
    }
    if (kind == 'S')
        return 0; /* the serving node's record: the tail's (ah_cluster.c) */
    cn_str name = bin_str(&k);
    if (k.err || !cn_str_eq(vhost, "/")) {
        *why = "malformed key";
        return -1;
    }
    int tomb = r->value_len < 0;
    bin_reader_init(&v, r->value, tomb ? 0 : (size_t)r->value_len);
    int version = tomb ? 0 : bin_i8(&v);
    if (!tomb && version != 1 && !((kind == 'E' || kind == 'Q') && version == 2)) {
        *why = "unknown value version";
        return -1;
    }
    if (kind == 'E') {
        aexchange *x = asrv__exchange_find(as, name);
        if (tomb) {
            if (x && !x->builtin)
                asrv__exchange_remove(as, x);
            return 0;
        }
        int type = bin_i8(&v), flags = bin_i8(&v);
        cn_bytes args = {NULL, 0};
        if (version == 2)
            args = bin_bytes(&v);
        if (v.err || bin_remaining(&v) || type < AX_DIRECT || type > AX_HEADERS ||
            args.len < 0) {
            *why = "malformed exchange";
            return -1;
        }
        if (!x)
            x = asrv__exchange_add(as, name, type);
        asrv__exchange_set_args(x, (amqp_table){args.ptr, (uint32_t)args.len});
        x->type = type;
        x->durable = 1;
        x->auto_delete = flags & 1;
        x->internal = (flags & 2) ? 1 : 0;
        return 0;
    }
    if (kind == 'Q') {
        aqueue *q = asrv__queue_find(as, name);
        if (tomb) {
            if (q)
                asrv__queue_delete(as, q);
            return 0;
        }
        uint64_t id;
        int flags, nv;
        cn_bytes args;
        int32_t voters[ASRV_MAX_VOTERS];
        if (asrv__meta_parse_queue(r->value, r->value_len, &id, &flags, &args, voters, &nv) <
            0) {
            *why = "malformed queue";
            return -1;
        }
        if (!q)
            q = asrv__queue_add(as, name, id, (amqp_table){args.ptr, (uint32_t)args.len});
        asrv__queue_set_voters(q, voters, nv);
        q->durable = 1;
        q->auto_delete = flags & 1;
        if (id >= as->next_qid)
            as->next_qid = id + 1;
        return 0;
    }
    if (kind == 'B') {
        cn_str qname = bin_str(&k), key = bin_str(&k);
        cn_bytes args = bin_bytes(&k);
        if (k.err || bin_remaining(&k) || args.len < 0) {
            *why = "malformed binding";
            return -1;
        }
        aexchange *x = asrv__exchange_find(as, name);
        aqueue *q = asrv__queue_find(as, qname);
        if (!x || !q) {
            *why = "binding of a missing exchange or queue";
            return -1;
        }
        amqp_table at = {args.ptr, (uint32_t)args.len};
        int i = asrv__binding_find(x, q, key, at);
        if (tomb) {
            if (i >= 0) {
                asrv__binding_free(&x->b[i]);
                x->b[i] = x->b[--x->n_b];
            }
        } else if (i < 0) {
            asrv__binding_add(x, q, key, at);
        }
        return 0;
    }
    if (kind == 'X') {
        cn_str dname = bin_str(&k), key = bin_str(&k);
        cn_bytes args = bin_bytes(&k);
        if (k.err || bin_remaining(&k) || args.len < 0) {
            *why = "malformed exchange binding";
            return -1;
        }
        aexchange *src = asrv__exchange_find(as, name), *dst = asrv__exchange_find(as, dname);
        if (!src || !dst) {
            *why = "exchange binding of a missing exchange";
            return -1;
        }
        amqp_table at = {args.ptr, (uint32_t)args.len};
        int i = asrv__xbind_find(src, dst, key, at);
        if (tomb) {
            if (i >= 0)
                asrv__xbind_forget(src, i);
        } else if (i < 0) {
            asrv__xbind_add(src, dst, key, at);
        }
        return 0;
    }
    *why = "unknown record kind";
    return -1;
}

static int meta_compact(void *arg, kvl_compaction *cx)
{
    asrv *as = arg;
    wbuf k, v;
    wbuf_init(&k);
    wbuf_init(&v);
    int rc = 0;
    for (int i = 0; i < as->n_ex && !rc; i++) {
        const aexchange *x = as->ex[i];
        if (!exchange_persisted(x))
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        key_exchange(&k, x);
        val_exchange(&v, x);
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    for (int i = 0; i < as->n_q && !rc; i++) {
        const aqueue *q = as->q[i];
        if (!asrv__queue_persisted(q))
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        key_queue(&k, q);
        val_queue(&v, q);
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    for (int i = 0; i < as->n_q && !rc; i++) {
        const aqueue *q = as->q[i];
        if (!asrv__queue_persisted(q) || !q->p)
            continue;
        wbuf_reset(&k);
        wbuf_reset(&v);
        asrv__store_ack_record(q, &k, &v); /* the same record write_acks writes */
        rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, v.buf, (int32_t)v.len);
    }
    uint8_t one = 1;
    for (int i = 0; i < as->n_ex && !rc; i++) {
        const aexchange *x = as->ex[i];
        for (int j = 0; j < x->n_b && !rc; j++) {
            if (!binding_persisted(x, &x->b[j]))
                continue;
            wbuf_reset(&k);
            key_binding(&k, x, &x->b[j]);
            rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, &one, 1);
        }
        for (int j = 0; j < x->n_xb && !rc; j++) {
            if (!xbind_persisted(x, &x->xb[j]))
                continue;
            wbuf_reset(&k);
            key_xbind(&k, x, &x->xb[j]);
            rc = kvl_compact_add(cx, k.buf, (int32_t)k.len, &one, 1);
        }
    }
    wbuf_fini(&k);
    wbuf_fini(&v);
    if (!rc)
        rc = asrv__cluster_compact(as, cx);
    return rc;
}

static int64_t meta_live_bytes(void *arg)
{
    asrv *as = arg;
    int64_t n = 0;
    for (int i = 0; i < as->n_ex; i++) {
        n += 32 + as->ex[i]->name_len + as->ex[i]->args_len;
        for (int j = 0; j < as->ex[i]->n_xb; j++)
            n += 48 + as->ex[i]->name_len + as->ex[i]->xb[j].key_len +
                 as->ex[i]->xb[j].dx->name_len + as->ex[i]->xb[j].args_len;
        for (int j = 0; j < as->ex[i]->n_b; j++)
            n += 48 + as->ex[i]->name_len + as->ex[i]->b[j].key_len +
                 as->ex[i]->b[j].q->name_len + as->ex[i]->b[j].args_len;
    }
    for (int i = 0; i < as->n_q; i++)
        n += 48 + as->q[i]->name_len + as->q[i]->args_len;
    return n;
}

void asrv__meta_tables_init(asrv *as)
{
    static const struct {
        const char *name;
        int type;
    } builtin[] = {
        {"", AX_DIRECT},           {"amq.direct", AX_DIRECT},   {"amq.fanout", AX_FANOUT},
        {"amq.topic", AX_TOPIC},   {"amq.headers", AX_HEADERS}, {"amq.match", AX_HEADERS},
    };
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        aexchange *x = asrv__exchange_add(as, cn_str_c(builtin[i].name), builtin[i].type);
        x->durable = 1;
        x->builtin = 1;
    }
    as->next_qid = 1;
}

const kvl_ops asrv__meta_ops = {meta_on_record, meta_compact, meta_live_bytes};

void asrv__meta_loaded(asrv *as)
{
    slog_info("amqp: %d exchanges, %d queues from %s", as->n_ex, as->n_q,
              BROKER_AMQP_META_TOPIC);
    /* Queue ids are never reused, even after a deleted queue's records are
     * compacted away: start above the wall clock (ms x 1024). */
    uint64_t clock_id = (uint64_t)loop_wall_ms() * 1024;
    if (as->next_qid < clock_id)
        as->next_qid = clock_id;
    for (int i = 0; i < as->n_q; i++)
        if (asrv__queue_persisted(as->q[i]))
            asrv__store_open(as, as->q[i], 0);
}

void asrv__meta_init(asrv *as)
{
    asrv__meta_tables_init(as);
    asrv__store_init(as);
    asrv__stream_init(as);
    if (as->core->cl) {
        asrv__cluster_init(as); /* the tables load where __amqp_meta-0 is led */
        return;
    }
    int rc = kvl_open(as->core->b, BROKER_AMQP_META_TOPIC, &asrv__meta_ops, as, &as->meta);
    if (rc < 0) {
        slog_error("amqp: cannot open %s (%s): durable exchanges, queues and bindings are "
                   "neither replayed nor persisted",
                   BROKER_AMQP_META_TOPIC, cn_strerror(rc));
        as->meta = NULL;
        return;
    }
    asrv__meta_loaded(as);
}

void asrv__meta_tables_free(asrv *as)
{
    /* Tearing down the tables is not a deletion: no records (meta NULL
     * meanwhile), and the partitions stay (p NULL). */
    struct kvl *meta = as->meta;
    as->meta = NULL;
    for (int i = 0; i < as->n_q; i++) {
        asrv__store_forget(as->q[i]);
        as->q[i]->dirty = 0;
    }
    while (as->n_q)
        asrv__queue_delete(as, as->q[as->n_q - 1]);
    for (int i = 0; i < as->n_ex; i++)
        asrv__exchange_free(as->ex[i]);
    free(as->ex);
    free(as->q);
    as->ex = NULL;
    as->q = NULL;
    as->n_ex = as->n_q = as->cap_ex = as->cap_q = 0;
    as->meta = meta;
}

void asrv__meta_free(asrv *as)
{
    asrv__store_flush(as); /* the last acks, synced by broker_close */
    asrv__cluster_fini(as);  /* after the flush: its trims are the cluster's kind */
    asrv__store_fini(as);
    asrv__stream_fini(as);
    kvl_close(as->meta);
    as->meta = NULL;
    asrv__meta_tables_free(as);
}
