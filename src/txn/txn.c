/* Transaction coordinator: producer ids, the per-transactional.id state
 * machine, its persistence in __transaction_state (format in txn_rec.c),
 * recovery, timeouts and compaction. Contract in txn.h. The log itself
 * (batches, replay, durability, the compaction protocol) is kvlog's.
 *
 * Transitions and the function behind each (Kafka's TransactionCoordinator).
 * Errors are CN_E* codes; Kafka's names, which kerr_from_cn gives on the
 * wire, are in parentheses in the legend below:
 *
 *   from \ request   InitProducerId          AddPartitions/AddOffsets   EndTxn(commit|abort)
 *   (none)           new pid, Empty          -CN_EPIDMAP                 same
 *   Empty            epoch bump, Empty       -> Ongoing                  -CN_ETXNSTATE
 *   Ongoing          fence_abort: epoch bump, stays Ongoing (adds)       -> Prepare{Commit|Abort}
 *                    -> PrepareAbort, answer                             (txn_end)
 *                    -CN_EBUSY
 *   Prepare*         -CN_EBUSY               -CN_EBUSY                   same outcome: -CN_EBUSY,
 *                                                                        else -CN_ETXNSTATE
 *   Complete*        epoch bump, Empty       -> Ongoing                  same outcome: 0 (success),
 *                                                                        else -CN_ETXNSTATE
 *
 *   Prepare* --complete_start: markers + offsets, complete_finish when all durable--> Complete*
 *   Ongoing past its timeout --txn_check_timeouts: fence_abort--> PrepareAbort
 *
 *   -CN_EPIDMAP (INVALID_PRODUCER_ID_MAPPING)   -CN_ETXNSTATE (INVALID_TXN_STATE)
 *   -CN_EBUSY (CONCURRENT_TRANSACTIONS)         -CN_EFENCED (PRODUCER_FENCED)
 *   -CN_EUNAVAIL (COORDINATOR_NOT_AVAILABLE)
 *
 * Before any of that, a request whose producer id differs from the id's gets
 * -CN_EPIDMAP and one whose epoch differs gets -CN_EFENCED (InitProducerId:
 * KIP-360 rules in init_existing).
 *
 * Memory changes first, then the record is appended; the client is answered
 * when the log is durable up to that record. A failed append or fsync of the
 * log makes the coordinator failed (the log itself is failed: sticky storage
 * errors): every later request gets -CN_EUNAVAIL until restart,
 * when replay gives the last durable state. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "txn/txn_int.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/slog.h"

#define REC_OVERHEAD 80                 /* batch header + record framing, roughly */

static const char *const state_names[TXN_STATE__COUNT] = {
    "Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
    "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
};

const char *txn_state_name(txn_state s)
{
    return (unsigned)s < TXN_STATE__COUNT ? state_names[s] : "Unknown";
}

int txn_state_parse(cn_str name)
{
    for (int i = 0; i < TXN_STATE__COUNT; i++)
        if (cn_str_eq(name, state_names[i]))
            return i;
    return -1;
}

/* Strings ------------------------------------------------------------------- */

static cn_str str_dup(cn_str s)
{
    if (s.len < 0)
        return s;
    char *c = xmalloc((size_t)s.len + 1);
    if (s.len > 0)
        memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = '\0';
    return (cn_str){c, s.len};
}

static void str_free(cn_str s)
{
    free((char *)s.ptr);
}

static int str_eq(cn_str a, cn_str b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static uint64_t hash_str(uint64_t seed, cn_str s)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (int32_t i = 0; i < s.len; i++) {
        h ^= (uint8_t)s.ptr[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 31;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 29);
}

/* Transactional ids --------------------------------------------------------- */

static txn_meta *meta_find(txn_coord *c, cn_str tid)
{
    if (tid.len < 0)
        return NULL;
    uint64_t h = hash_str(c->seed, tid);
    for (txn_meta *m = c->tab[h & c->mask]; m; m = m->hnext)
        if (m->hash == h && str_eq(m->tid, tid))
            return m;
    return NULL;
}

static void meta_clear(txn_meta *m)
{
    for (int i = 0; i < m->n_parts; i++)
        str_free(m->parts[i].topic);
    m->n_parts = 0;
    for (int i = 0; i < m->n_groups; i++) {
        txn_group *g = &m->groups[i];
        for (int j = 0; j < g->n_offs; j++) {
            str_free(g->offs[j].tp.topic);
            str_free(g->offs[j].metadata);
        }
        free(g->offs);
        str_free(g->name);
    }
    m->n_groups = 0;
}

static void meta_free(txn_meta *m)
{
    meta_clear(m);
    free(m->parts);
    free(m->groups);
    str_free(m->tid);
    free(m);
}

static txn_meta *meta_new(txn_coord *c, cn_str tid)
{
    txn_meta *m = xcalloc(1, sizeof(*m));
    m->tid = str_dup(tid);
    m->hash = hash_str(c->seed, tid);
    m->pid = m->last_pid = -1;
    m->epoch = m->last_epoch = -1;
    m->start_ms = -1;
    if (c->n + 1 > c->mask + 1) {
        size_t nsz = (c->mask + 1) * 2;
        txn_meta **t = xcalloc(nsz, sizeof(*t));
        for (size_t i = 0; i <= c->mask; i++)
            for (txn_meta *x = c->tab[i], *next; x; x = next) {
                next = x->hnext;
                x->hnext = t[x->hash & (nsz - 1)];
                t[x->hash & (nsz - 1)] = x;
            }
        free(c->tab);
        c->tab = t;
        c->mask = nsz - 1;
    }
    m->hnext = c->tab[m->hash & c->mask];
    c->tab[m->hash & c->mask] = m;
    c->n++;
    return m;
}

static void meta_remove(txn_coord *c, txn_meta *m)
{
    txn_meta **pp = &c->tab[m->hash & c->mask];
    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    c->n--;
    c->live_bytes -= m->rec_bytes;
    meta_free(m);
}

static int meta_has_part(const txn_meta *m, cn_str tname, int32_t part)
{
    for (int i = 0; i < m->n_parts; i++)
        if (m->parts[i].partition == part && str_eq(m->parts[i].topic, tname))
            return 1;
    return 0;
}

static void meta_add_part(txn_meta *m, cn_str tname, int32_t part)
{
    if (meta_has_part(m, tname, part))
        return;
    if (m->n_parts == m->cap_parts) {
        m->cap_parts = m->cap_parts ? m->cap_parts * 2 : 8;
        m->parts = xrealloc(m->parts, (size_t)m->cap_parts * sizeof(*m->parts));
    }
    m->parts[m->n_parts++] = (txn_tp){str_dup(tname), part};
}

static txn_group *meta_group(txn_meta *m, cn_str group)
{
    for (int i = 0; i < m->n_groups; i++)
        if (str_eq(m->groups[i].name, group))
            return &m->groups[i];
    return NULL;
}

static txn_group *meta_add_group(txn_meta *m, cn_str group)
{
    txn_group *g = meta_group(m, group);
    if (g)
        return g;
    if (m->n_groups == m->cap_groups) {
        m->cap_groups = m->cap_groups ? m->cap_groups * 2 : 2;
        m->groups = xrealloc(m->groups, (size_t)m->cap_groups * sizeof(*m->groups));
    }
    g = &m->groups[m->n_groups++];
    memset(g, 0, sizeof(*g));
    g->name = str_dup(group);
    return g;
}

static void group_put(txn_group *g, cn_str tname, int32_t part, int64_t offset, int32_t epoch,
                      cn_str md)
{
    txn_off *o = NULL;
    for (int i = 0; i < g->n_offs && !o; i++)
        if (g->offs[i].tp.partition == part && str_eq(g->offs[i].tp.topic, tname))
            o = &g->offs[i];
    if (!o) {
        if (g->n_offs == g->cap_offs) {
            g->cap_offs = g->cap_offs ? g->cap_offs * 2 : 8;
            g->offs = xrealloc(g->offs, (size_t)g->cap_offs * sizeof(*g->offs));
        }
        o = &g->offs[g->n_offs++];
        o->tp = (txn_tp){str_dup(tname), part};
    } else {
        str_free(o->metadata);
    }
    o->offset = offset;
    o->leader_epoch = epoch;
    o->metadata = str_dup(md);
}

/* Copy the decoded value v (views) into m (owned). */
static void meta_assign(txn_meta *m, const txn_meta *v)
{
    meta_clear(m);
    m->pid = v->pid;
    m->last_pid = v->last_pid;
    m->epoch = v->epoch;
    m->last_epoch = v->last_epoch;
    m->timeout_ms = v->timeout_ms;
    m->state = v->state;
    m->start_ms = v->start_ms;
    m->update_ms = v->update_ms;
    for (int i = 0; i < v->n_parts; i++)
        meta_add_part(m, v->parts[i].topic, v->parts[i].partition);
    for (int i = 0; i < v->n_groups; i++) {
        txn_group *g = meta_add_group(m, v->groups[i].name);
        for (int j = 0; j < v->groups[i].n_offs; j++) {
            const txn_off *o = &v->groups[i].offs[j];
            group_put(g, o->tp.topic, o->tp.partition, o->offset, o->leader_epoch, o->metadata);
        }
    }
}

/* Durable waits ---------------------------------------------------------------- */

static void op_unlink(txn_op *op)
{
    txn_coord *c = op->c;
    if (op->prev)
        op->prev->next = op->next;
    else
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
}

static void op_durable(durable_wait *w, int status)
{
    txn_op *op = (txn_op *)w;
    op_unlink(op);
    op->fire(op, status);
    free(op);
}

static txn_op *op_new(txn_coord *c, void (*fire)(txn_op *op, int status))
{
    txn_op *op = xcalloc(1, sizeof(*op));
    op->c = c;
    op->fire = fire;
    return op;
}

/* Put op on the coordinator's list (txn_close takes it off). */
static void op_link(txn_op *op)
{
    txn_coord *c = op->c;
    op->next = c->ops;
    op->prev = NULL;
    if (c->ops)
        c->ops->prev = op;
    c->ops = op;
}

/* Park op until p is durable up to target; fire may run before this returns. */
static void op_wait(txn_op *op, partition *p, int64_t target)
{
    txn_coord *c = op->c;
    op->p = p;
    op_link(op);
    op->w.next = NULL;
    op->w.target = target;
    op->w.cb = op_durable;
    broker_wait_durable(c->b, p, &op->w);
}

static void coord_fail(txn_coord *c, const char *what, int rc)
{
    if (!c->failed)
        slog_error("%s: %s failed (%d); the transaction coordinator stops until restart",
                   BROKER_TXN_TOPIC, what, rc);
    c->failed = 1;
}

/* An append to, or a wait on, log failed with rc. On the replicated
 * __transaction_state, losing leadership is no storage failure: memory
 * may now differ from the log, so it is dropped at the next txn_serving,
 * and the client hears NOT_COORDINATOR. Anything else stops the
 * coordinator. Returns the error for the client. */
static int log_error(txn_coord *c, partition *p, const char *what, int rc)
{
    if (c->replicated && p == c->p &&
        (rc == -CN_ENOTLEADER || rc == -CN_ELEADERWAIT || rc == -CN_ECOMMITTMO)) {
        c->reload = 1;
        return -CN_ENOTCOORD;
    }
    coord_fail(c, what, rc);
    return -CN_EUNAVAIL;
}

static void reply_fire(txn_op *op, int status)
{
    int err = status < 0 ? log_error(op->c, op->p, "fsync", status) : op->err;
    op->cb(op->arg, err, op->pid, op->epoch);
}

/* Answer cb once everything appended so far is durable. */
static void reply_durable(txn_coord *c, txn_cb cb, void *arg, int64_t pid, int16_t epoch)
{
    txn_op *op = op_new(c, reply_fire);
    op->cb = cb;
    op->arg = arg;
    op->err = 0;
    op->pid = pid;
    op->epoch = epoch;
    op_wait(op, c->p, c->last_target);
}

/* Appending records ------------------------------------------------------------- */

/* Append the record encoded in w (key_len bytes of key, then the value) as
 * one batch to log; *target: the log end after it. 0 or -CN_E*. */
static int append_rec(kvl *log, const wbuf *w, size_t key_len, int64_t *target)
{
    kvl_batch bt;
    kvl_batch_init(&bt);
    kvl_batch_add(&bt, w->buf, (int32_t)key_len, w->buf + key_len, (int32_t)(w->len - key_len));
    int rc = kvl_append(log, &bt, loop_wall_ms(), target);
    kvl_batch_fini(&bt);
    return rc;
}

/* Append m's current state. 0, or -CN_EUNAVAIL (the coordinator is then
 * failed), or -CN_ENOTCOORD (leadership lost, log_error). */
static int persist(txn_coord *c, txn_meta *m)
{
    m->update_ms = loop_wall_ms();
    wbuf w;
    wbuf_init(&w);
    size_t kl;
    txn__enc_meta(&w, m, &kl);
    int rc = append_rec(c->log, &w, kl, &c->last_target);
    int64_t bytes = (int64_t)w.len + REC_OVERHEAD;
    wbuf_fini(&w);
    if (rc < 0)
        return log_error(c, c->p, "append", rc);
    c->live_bytes += bytes - m->rec_bytes;
    m->rec_bytes = bytes;
    return 0;
}

/* Take a producer id from a, persisting a new block end first when needed
 * (the caller's reply waits for *a->last_target, which covers it). 0 or
 * what log_error gives. */
static int pids_take(txn_coord *c, txn_pids *a, int64_t *out)
{
    if (a->next >= a->end) {
        int64_t end = a->next + TXN_PID_BLOCK;
        wbuf w;
        wbuf_init(&w);
        size_t kl;
        txn__enc_block(&w, end, &kl);
        int rc = append_rec(a->log, &w, kl, a->last_target);
        wbuf_fini(&w);
        if (rc < 0)
            return log_error(c, kvl_partition(a->log), "append", rc);
        a->end = end;
        a->end_target = *a->last_target;
    }
    *out = a->next++;
    return 0;
}

static int alloc_pid(txn_coord *c, int64_t *out)
{
    return pids_take(c, &c->tx, out);
}

/* Completing Prepare* ---------------------------------------------------------------- */

static void complete_start(txn_coord *c, txn_meta *m);

static void complete_finish(txn_coord *c, txn_meta *m)
{
    m->completing = 0;
    c->n_completing--;
    if (m->comp_failed) {
        slog_warn("%s: transaction of %s not completed (a marker failed); retrying later",
                  BROKER_TXN_TOPIC, m->tid.ptr);
        return;
    }
    m->state = m->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    meta_clear(m);
    m->start_ms = -1;
    persist(c, m);
}

static void comp_fire(txn_op *op, int status)
{
    txn_meta *m = op->m;
    if (status < 0)
        m->comp_failed = 1;
    if (--m->inflight == 0)
        complete_finish(op->c, m);
}

static void comp_wait(txn_coord *c, txn_meta *m, partition *p, int64_t target)
{
    txn_op *op = op_new(c, comp_fire);
    op->m = m;
    m->inflight++;
    op_wait(op, p, target);
}

static void remote_marker_done(broker_marker_req *r, int status)
{
    txn_op *op = (txn_op *)((char *)r - offsetof(txn_op, mr));
    if (status == -CN_ENOENT) {
        slog_warn("%s: %s-%d of transaction %s no longer exists on its leader; no marker",
                  BROKER_TXN_TOPIC, r->topic, r->partition, op->m->tid.ptr);
        status = 0;
    } else if (status < 0) {
        slog_error("%s: %s marker on %s-%d (written by its leader) failed: %s", BROKER_TXN_TOPIC,
                   r->commit ? "COMMIT" : "ABORT", r->topic, r->partition, cn_strerror(status));
    }
    op_unlink(op);
    op->fire(op, status);
    free(op);
}

/* The marker of m on tp goes to the node that leads it (broker.h, "markers on
 * partitions another node leads"); comp_fire runs once it is committed
 * there. */
static void comp_remote(txn_coord *c, txn_meta *m, const txn_tp *tp, int commit)
{
    txn_op *op = op_new(c, comp_fire);
    op->m = m;
    op->remote = 1;
    op->mr.topic = tp->topic.ptr;
    op->mr.partition = tp->partition;
    op->mr.pid = m->pid;
    op->mr.epoch = m->epoch;
    op->mr.commit = commit;
    op->mr.coordinator_epoch = 0;
    op->mr.cb = remote_marker_done;
    int rc = broker_marker_remote(c->b, &op->mr);
    if (rc < 0) {
        slog_error("%s: %s marker on %s-%d: no node to write it: %s", BROKER_TXN_TOPIC,
                   commit ? "COMMIT" : "ABORT", tp->topic.ptr, tp->partition, cn_strerror(rc));
        m->comp_failed = 1;
        free(op);
        return;
    }
    m->inflight++;
    op_link(op);
}

/* Write the markers of m's transaction to each of its partitions and, on
 * commit, its pending offsets to the offsets store; complete_finish runs when
 * all of those are durable. */
static void complete_start(txn_coord *c, txn_meta *m)
{
    if (c->failed || m->completing)
        return;
    int commit = m->state == TXN_PREPARE_COMMIT;
    m->completing = 1;
    m->comp_failed = 0;
    m->inflight = 1; /* held until every wait is parked */
    c->n_completing++;
    for (int i = 0; i < m->n_parts; i++) {
        partition *p = broker_partition(c->b, m->parts[i].topic, m->parts[i].partition);
        if (!p) {
            slog_warn("%s: %s-%d of transaction %s no longer exists; no marker",
                      BROKER_TXN_TOPIC, m->parts[i].topic.ptr, m->parts[i].partition,
                      m->tid.ptr);
            continue;
        }
        if (broker_marker_is_remote(p)) {
            comp_remote(c, m, &m->parts[i], commit);
            continue;
        }
        int64_t off;
        int rc = broker_write_marker(c->b, p, m->pid, m->epoch, commit, 0, &off);
        if (rc < 0) {
            slog_error("%s: %s marker on %s-%d failed: %s", BROKER_TXN_TOPIC,
                       commit ? "COMMIT" : "ABORT", m->parts[i].topic.ptr,
                       m->parts[i].partition, cn_strerror(rc));
            m->comp_failed = 1;
            continue;
        }
        comp_wait(c, m, p, off + 1);
    }
    int has_offs = 0;
    for (int i = 0; i < m->n_groups; i++)
        has_offs |= m->groups[i].n_offs > 0;
    if (commit && c->offsets && has_offs && goff_serving(c->offsets) < 0) {
        /* In a cluster another node leads __consumer_offsets-0 for now
         * (broker_colocate moves this coordinator there): later. */
        slog_warn("%s: offsets of transaction %s wait for this node to lead %s",
                  BROKER_TXN_TOPIC, m->tid.ptr, BROKER_OFFSETS_TOPIC);
        m->comp_failed = 1;
    } else if (commit && c->offsets) {
        for (int i = 0; i < m->n_groups; i++) {
            txn_group *g = &m->groups[i];
            if (g->n_offs == 0)
                continue;
            goff_commit_item *items = xcalloc((size_t)g->n_offs, sizeof(*items));
            for (int j = 0; j < g->n_offs; j++)
                items[j] = (goff_commit_item){g->offs[j].tp.topic, g->offs[j].tp.partition,
                                              g->offs[j].offset, g->offs[j].leader_epoch,
                                              g->offs[j].metadata, -1};
            int64_t target = -1;
            int rc = goff_commit(c->offsets, g->name, items, g->n_offs, loop_wall_ms(), &target);
            free(items);
            if (rc < 0) {
                slog_error("%s: committing offsets of group %s for %s failed: %s",
                           BROKER_TXN_TOPIC, g->name.ptr, m->tid.ptr, cn_strerror(rc));
                m->comp_failed = 1;
                continue;
            }
            comp_wait(c, m, goff_partition(c->offsets), target);
        }
        goff_maybe_compact(c->offsets);
    }
    if (--m->inflight == 0)
        complete_finish(c, m);
}

static void prepare_fire(txn_op *op, int status)
{
    if (status < 0) {
        int err = log_error(op->c, op->p, "fsync", status);
        if (op->cb)
            op->cb(op->arg, err, -1, -1);
        return; /* the next leader (or a restart) completes it */
    }
    if (op->cb)
        op->cb(op->arg, 0, -1, -1);
    complete_start(op->c, op->m);
}

/* Move m to Prepare{Commit,Abort}, and once that is durable answer cb (may be
 * NULL) and complete the transaction. */
static int prepare(txn_coord *c, txn_meta *m, int commit, txn_cb cb, void *arg)
{
    m->state = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
    int rc = persist(c, m);
    if (rc < 0)
        return rc;
    txn_op *op = op_new(c, prepare_fire);
    op->m = m;
    op->cb = cb;
    op->arg = arg;
    op_wait(op, c->p, c->last_target);
    return 0;
}

/* Abort m's Ongoing transaction with a bumped epoch, so that the producer
 * that opened it is fenced on every partition by the ABORT markers. */
static void fence_abort(txn_coord *c, txn_meta *m)
{
    if (m->epoch < TXN_EPOCH_MAX)
        m->epoch++;
    m->last_epoch = -1;
    prepare(c, m, 0, NULL, NULL);
}

/* Replay ---------------------------------------------------------------------- */

static int replay_rec(void *arg, const batch_record *r, const char **why)
{
    txn_coord *c = arg;
    txn__rec d;
    if (txn__rec_decode(r, &d, why) < 0)
        return -CN_EPROTO;
    if (d.kind == TXN_KEY_PID_BLOCK) {
        c->tx.end = CN_MAX(c->tx.end, d.block_end);
        return 0;
    }
    txn_meta *m = meta_find(c, d.tid);
    if (d.tombstone) {
        if (m)
            meta_remove(c, m);
        return 0;
    }
    if (!m)
        m = meta_new(c, d.tid);
    meta_assign(m, &d.v);
    c->live_bytes -= m->rec_bytes;
    m->rec_bytes = (int64_t)r->key_len + r->value_len + REC_OVERHEAD;
    c->live_bytes += m->rec_bytes;
    c->tx.next = CN_MAX(c->tx.next, CN_MAX(m->pid, m->last_pid) + 1);
    txn__rec_fini(&d);
    return 0;
}

static int compact_records(void *arg, kvl_compaction *cx);

static int64_t live_bytes(void *arg)
{
    return ((txn_coord *)arg)->live_bytes;
}

static const kvl_ops log_ops = {replay_rec, compact_records, live_bytes};

/* __producer_ids (a cluster node's own blocks): block records only. */
static int own_replay(void *arg, const batch_record *r, const char **why)
{
    txn_coord *c = arg;
    txn__rec d;
    if (txn__rec_decode(r, &d, why) < 0)
        return -CN_EPROTO;
    if (d.kind == TXN_KEY_PID_BLOCK)
        c->own.end = CN_MAX(c->own.end, d.block_end);
    else
        txn__rec_fini(&d);
    return 0;
}

/* Add a pid block record (the end of the ids handed out) to a compaction;
 * w is scratch. */
static int compact_block(kvl_compaction *cx, wbuf *w, int64_t end)
{
    size_t kl;
    wbuf_reset(w);
    txn__enc_block(w, end, &kl);
    return kvl_compact_add(cx, w->buf, (int32_t)kl, w->buf + kl, (int32_t)(w->len - kl));
}

static int own_compact(void *arg, kvl_compaction *cx)
{
    txn_coord *c = arg;
    wbuf w;
    wbuf_init(&w);
    int rc = compact_block(cx, &w, c->own.end);
    wbuf_fini(&w);
    return rc;
}

static int64_t own_live_bytes(void *arg)
{
    (void)arg;
    return REC_OVERHEAD + 12;
}

static const kvl_ops own_ops = {own_replay, own_compact, own_live_bytes};

/* Timer ----------------------------------------------------------------------- */

static void on_timer(loop_timer *t)
{
    txn_coord *c = t->data;
    txn_check_timeouts(c);
    txn_maybe_compact(c, 0);
    if (c->replicated && !c->failed && kvl_maybe_compact(c->own.log) < 0)
        coord_fail(c, "compaction append of " BROKER_PIDS_TOPIC, -CN_EIO);
    loop_timer_start(c->l, &c->timer, broker_config(c->b)->txn_abort_check_ms);
}

/* Loading and dropping the state (replicated) ---------------------------------------- */

/* After a replay: a fresh block (ids of the last one may be out), and the
 * transactions left in Prepare* completed now. */
static void loaded(txn_coord *c, int64_t pid_base)
{
    c->tx.next = CN_MAX(CN_MAX(c->tx.next, c->tx.end), pid_base);
    c->tx.end = c->tx.next;
    c->last_target = c->tx.end_target = kvl_end(c->log);
    c->live_bytes += REC_OVERHEAD + 12;
    int n_prepared = 0, n_ongoing = 0;
    for (size_t i = 0; i <= c->mask; i++)
        for (txn_meta *m = c->tab[i]; m; m = m->hnext) {
            if (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT) {
                n_prepared++;
                complete_start(c, m);
            } else if (m->state == TXN_ONGOING) {
                n_ongoing++;
            }
        }
    kvl_stats st;
    kvl_get_stats(c->log, &st);
    slog_info("%s: replayed %lld record(s): %zu transactional id(s), %d completing, %d ongoing, "
              "next producer id %lld", BROKER_TXN_TOPIC, (long long)st.replayed, c->n, n_prepared,
              n_ongoing, (long long)c->tx.next);
}

static void tab_free(txn_coord *c)
{
    for (size_t i = 0; c->tab && i <= c->mask; i++)
        for (txn_meta *m = c->tab[i], *next; m; m = next) {
            next = m->hnext;
            meta_free(m);
        }
    free(c->tab);
    c->tab = NULL;
}

static void tab_new(txn_coord *c)
{
    c->mask = 15;
    c->tab = xcalloc(c->mask + 1, sizeof(*c->tab));
    c->n = 0;
}

/* Forget the coordinator's state: waits on __transaction_state and every
 * transaction's completion are taken back (a reply that waited hears
 * NOT_COORDINATOR), then the transactional ids. The next leader completes
 * what was left in Prepare*. Waits on this node's own __producer_ids stay. */
static void drop_state(txn_coord *c)
{
    txn_op *op = c->ops;
    while (op) {
        txn_op *next = op->next;
        if (op->remote || op->m || op->p == c->p) {
            if (op->remote)
                broker_marker_cancel(c->b, &op->mr);
            else
                broker_wait_cancel(op->p, &op->w);
            op_unlink(op);
            if (op->cb)
                op->cb(op->arg, -CN_ENOTCOORD, -1, -1);
            free(op);
        }
        op = next;
    }
    tab_free(c);
    tab_new(c);
    c->live_bytes = 0;
    c->n_completing = 0;
    c->tx.next = c->tx.end = 0;
    c->loaded_term = 0;
    c->reload = 0;
}

int txn_serving(txn_coord *c)
{
    if (!c->replicated)
        return 0;
    if (c->failed)
        return -CN_EUNAVAIL;
    int rc = kvl_serving(c->log);
    int64_t term = kvl_term(c->log);
    if (rc == 0 && c->loaded_term == term && !c->reload)
        return 0;
    if (c->loaded_term || c->reload) {
        drop_state(c);
        slog_info("%s: coordinator state dropped (term %lld)", BROKER_TXN_TOPIC,
                  (long long)term);
    }
    if (rc == -CN_ELEADERWAIT)
        return -CN_ELOADING;
    if (rc < 0)
        return -CN_ENOTCOORD;
    /* Leader of this term with its barrier committed: the log holds every
     * committed record, and nothing after them but this term's own. */
    rc = kvl_replay(c->log);
    if (rc < 0) {
        drop_state(c);
        slog_error("%s: coordinator state not loaded: %s", BROKER_TXN_TOPIC, cn_strerror(rc));
        return -CN_EUNAVAIL;
    }
    c->loaded_term = term;
    slog_info("%s: coordinator for term %lld", BROKER_TXN_TOPIC, (long long)term);
    loaded(c, TXN_CLUSTER_PID_BASE);
    return 0;
}

static int serving(txn_coord *c)
{
    return c->replicated ? txn_serving(c) : 0;
}

int32_t txn_coordinator(txn_coord *c)
{
    return broker_partition_leader(c->p);
}

/* Leadership moves show up as appends (broker_listen_appends): a new leader
 * loads and completes what its predecessor left at once. */
static void on_appends(broker_listener *l)
{
    txn_coord *c = (txn_coord *)((char *)l - offsetof(txn_coord, appends));
    txn_serving(c);
}

/* Open / close ------------------------------------------------------------------ */

static txn_coord *coord_new(broker *b, goff_store *offsets)
{
    txn_coord *c = xcalloc(1, sizeof(*c));
    c->b = b;
    c->offsets = offsets;
    c->l = broker_loop(b);
    if (getrandom(&c->seed, sizeof(c->seed), 0) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
    tab_new(c);
    c->tx.last_target = &c->last_target;
    c->own.last_target = &c->own_target;
    loop_timer_init(&c->timer, on_timer, c);
    return c;
}

int txn_open(broker *b, goff_store *offsets, txn_coord **out)
{
    *out = NULL;
    txn_coord *c = coord_new(b, offsets);
    int rc = kvl_open(b, BROKER_TXN_TOPIC, &log_ops, c, &c->log);
    if (rc < 0) {
        txn_close(c);
        return rc;
    }
    c->p = kvl_partition(c->log);
    c->tx.log = c->log;
    loaded(c, 0);
    loop_timer_start(c->l, &c->timer, broker_config(b)->txn_abort_check_ms);
    *out = c;
    return 0;
}

int txn_open_replicated(broker *b, goff_store *offsets, txn_coord **out)
{
    *out = NULL;
    txn_coord *c = coord_new(b, offsets);
    c->replicated = 1;
    int rc = kvl_open_replicated(b, BROKER_TXN_TOPIC, &log_ops, c, &c->log);
    if (rc == 0)
        rc = kvl_open(b, BROKER_PIDS_TOPIC, &own_ops, c, &c->own.log);
    if (rc < 0) {
        txn_close(c);
        return rc;
    }
    c->p = kvl_partition(c->log);
    c->tx.log = c->log;
    /* Idempotent producers' ids: node n hands out ids from n << 40 in
     * blocks recorded in its own log, so ids never collide across nodes nor
     * with the coordinator's (from TXN_CLUSTER_PID_BASE). */
    c->own.next = CN_MAX(c->own.end, (int64_t)broker_node_id(b) << 40);
    c->own.end = c->own.next;
    c->own_target = c->own.end_target = kvl_end(c->own.log);
    c->appends.cb = on_appends;
    broker_listen_appends(b, &c->appends);
    loop_timer_start(c->l, &c->timer, broker_config(b)->txn_abort_check_ms);
    *out = c;
    return 0;
}

void txn_close(txn_coord *c)
{
    if (!c)
        return;
    loop_timer_stop(c->l, &c->timer);
    if (c->appends.cb)
        broker_unlisten_appends(c->b, &c->appends);
    /* Take our waits off the partitions' lists; the broker outlives us. */
    while (c->ops) {
        txn_op *op = c->ops;
        if (op->remote)
            broker_marker_cancel(c->b, &op->mr);
        else
            broker_wait_cancel(op->p, &op->w);
        c->ops = op->next;
        free(op);
    }
    kvl_close(c->log);
    kvl_close(c->own.log);
    tab_free(c);
    free(c);
}

partition *txn_partition(txn_coord *c)
{
    return c->p;
}

/* InitProducerId ------------------------------------------------------------------ */

/* Known id in Empty or Complete*: KIP-360 checks, then an epoch bump (or a
 * new producer id once the epoch is exhausted). */
static void init_existing(txn_coord *c, txn_meta *m, int32_t timeout_ms, int64_t pid,
                          int16_t epoch, txn_cb cb, void *arg)
{
    int expected = pid >= 0;
    if (expected) {
        int valid = m->epoch < 0 || pid == m->pid ||
                    (pid == m->last_pid && epoch >= TXN_EPOCH_MAX);
        if (!valid) {
            cb(arg, -CN_EFENCED, -1, -1);
            return;
        }
        if (pid == m->last_pid && pid != m->pid) {
            /* Retry of the call that rotated the producer id. */
            reply_durable(c, cb, arg, m->pid, m->epoch);
            return;
        }
        if (m->epoch >= 0 && epoch != m->epoch) {
            if (epoch == m->last_epoch)
                reply_durable(c, cb, arg, m->pid, m->epoch); /* retry of a bump */
            else
                cb(arg, -CN_EFENCED, -1, -1);
            return;
        }
    }
    if (m->epoch >= TXN_EPOCH_MAX) {
        int64_t npid;
        int arc = alloc_pid(c, &npid);
        if (arc < 0) {
            cb(arg, arc, -1, -1);
            return;
        }
        m->last_pid = m->pid;
        m->last_epoch = expected ? m->epoch : -1;
        m->pid = npid;
        m->epoch = 0;
    } else {
        m->last_epoch = expected ? m->epoch : -1;
        m->epoch++;
    }
    m->timeout_ms = timeout_ms;
    m->state = TXN_EMPTY;
    m->start_ms = -1;
    meta_clear(m);
    int prc = persist(c, m);
    if (prc < 0) {
        cb(arg, prc, -1, -1);
        return;
    }
    reply_durable(c, cb, arg, m->pid, m->epoch);
}

void txn_init_producer(txn_coord *c, cn_str tid, int32_t timeout_ms, int64_t pid, int16_t epoch,
                       txn_cb cb, void *arg)
{
    if (c->failed) {
        cb(arg, -CN_EUNAVAIL, -1, -1);
        return;
    }
    if (tid.len < 0) {
        /* Idempotent producer: any node answers, from its own blocks in a
         * cluster. */
        txn_pids *a = c->replicated ? &c->own : &c->tx;
        if (c->replicated) {
            /* A joined node's slice is known once its registration is
             * (broker_set_pid_floor): until then it hands out nothing. */
            int64_t floor;
            if (!broker_pid_floor(c->b, &floor)) {
                cb(arg, -CN_ELOADING, -1, -1);
                return;
            }
            if (a->next < floor)
                a->next = a->end = floor;
        }
        int64_t npid;
        int arc = pids_take(c, a, &npid);
        if (arc < 0) {
            cb(arg, arc, -1, -1);
            return;
        }
        txn_op *op = op_new(c, reply_fire);
        op->cb = cb;
        op->arg = arg;
        op->pid = npid;
        op->epoch = 0;
        op_wait(op, kvl_partition(a->log), a->end_target);
        return;
    }
    if (tid.len == 0) {
        cb(arg, -CN_EINVAL, -1, -1);
        return;
    }
    int src = serving(c);
    if (src < 0) {
        cb(arg, src, -1, -1);
        return;
    }
    if (timeout_ms <= 0 || timeout_ms > broker_config(c->b)->txn_max_timeout_ms) {
        cb(arg, -CN_ETXNTIMEOUT, -1, -1);
        return;
    }
    txn_meta *m = meta_find(c, tid);
    if (!m) {
        int64_t npid;
        int arc = alloc_pid(c, &npid);
        if (arc < 0) {
            cb(arg, arc, -1, -1);
            return;
        }
        m = meta_new(c, tid);
        m->pid = npid;
        m->epoch = 0;
        m->timeout_ms = timeout_ms;
        m->state = TXN_EMPTY;
        int prc = persist(c, m);
        if (prc < 0) {
            cb(arg, prc, -1, -1);
            return;
        }
        reply_durable(c, cb, arg, m->pid, m->epoch);
        return;
    }
    switch (m->state) {
    case TXN_ONGOING:
        if (pid >= 0 && pid != m->pid && pid != m->last_pid) {
            cb(arg, -CN_EFENCED, -1, -1);
            return;
        }
        fence_abort(c, m);
        cb(arg, c->failed ? -CN_EUNAVAIL : c->reload ? -CN_ENOTCOORD : -CN_EBUSY, -1, -1);
        return;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT:
    case TXN_PREPARE_EPOCH_FENCE:
    case TXN_DEAD:
        cb(arg, -CN_EBUSY, -1, -1);
        return;
    case TXN_EMPTY:
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT:
        init_existing(c, m, timeout_ms, pid, epoch, cb, arg);
        return;
    }
}

/* Transaction requests ------------------------------------------------------------ */

/* The id's state for a request from producer pid/epoch, or NULL with *err. */
static txn_meta *check_producer(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch,
                                int *err)
{
    *err = 0;
    if (c->failed) {
        *err = -CN_EUNAVAIL;
        return NULL;
    }
    if (tid.len <= 0) {
        *err = -CN_EINVAL;
        return NULL;
    }
    if ((*err = serving(c)) < 0)
        return NULL;
    txn_meta *m = meta_find(c, tid);
    if (!m || m->pid != pid) {
        *err = -CN_EPIDMAP;
        return NULL;
    }
    if (m->epoch != epoch) {
        *err = -CN_EFENCED;
        return NULL;
    }
    return m;
}

/* Enter Ongoing (a new transaction starts) unless already there. */
static void begin(txn_meta *m)
{
    if (m->state != TXN_ONGOING) {
        meta_clear(m);
        m->state = TXN_ONGOING;
        m->start_ms = loop_wall_ms();
    }
}

static int addable(const txn_meta *m)
{
    switch (m->state) {
    case TXN_EMPTY:
    case TXN_ONGOING:
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT:
        return 0;
    default:
        return -CN_EBUSY;
    }
}

void txn_add_partitions(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, const txn_tp *tps,
                        int n, txn_cb cb, void *arg)
{
    int err;
    txn_meta *m = check_producer(c, tid, pid, epoch, &err);
    if (m)
        err = addable(m);
    if (err) {
        cb(arg, err, -1, -1);
        return;
    }
    int new_parts = m->state != TXN_ONGOING;
    for (int i = 0; i < n && !new_parts; i++)
        new_parts = !meta_has_part(m, tps[i].topic, tps[i].partition);
    if (new_parts) {
        begin(m);
        for (int i = 0; i < n; i++)
            meta_add_part(m, tps[i].topic, tps[i].partition);
        int prc = persist(c, m);
        if (prc < 0) {
            cb(arg, prc, -1, -1);
            return;
        }
    }
    reply_durable(c, cb, arg, m->pid, m->epoch);
}

void txn_add_offsets(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, cn_str group,
                     txn_cb cb, void *arg)
{
    int err;
    txn_meta *m = check_producer(c, tid, pid, epoch, &err);
    if (m)
        err = addable(m);
    if (!err && group.len <= 0)
        err = -CN_EBADGROUP;
    if (err) {
        cb(arg, err, -1, -1);
        return;
    }
    if (m->state != TXN_ONGOING || !meta_group(m, group)) {
        begin(m);
        meta_add_group(m, group);
        int prc = persist(c, m);
        if (prc < 0) {
            cb(arg, prc, -1, -1);
            return;
        }
    }
    reply_durable(c, cb, arg, m->pid, m->epoch);
}

void txn_offset_commit(txn_coord *c, cn_str tid, cn_str group, int64_t pid, int16_t epoch,
                       const goff_commit_item *items, int n, txn_cb cb, void *arg)
{
    int err;
    txn_meta *m = check_producer(c, tid, pid, epoch, &err);
    txn_group *g = NULL;
    if (m) {
        if (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT)
            err = -CN_EBUSY;
        else if (m->state != TXN_ONGOING || !(g = meta_group(m, group)))
            err = -CN_ETXNSTATE;
    }
    if (err) {
        cb(arg, err, -1, -1);
        return;
    }
    if (n > 0) {
        for (int i = 0; i < n; i++)
            group_put(g, items[i].topic, items[i].partition, items[i].offset,
                      items[i].leader_epoch, items[i].metadata);
        int prc = persist(c, m);
        if (prc < 0) {
            cb(arg, prc, -1, -1);
            return;
        }
    }
    reply_durable(c, cb, arg, m->pid, m->epoch);
}

void txn_end(txn_coord *c, cn_str tid, int64_t pid, int16_t epoch, int commit, txn_cb cb,
             void *arg)
{
    int err;
    txn_meta *m = check_producer(c, tid, pid, epoch, &err);
    if (err) {
        cb(arg, err, -1, -1);
        return;
    }
    switch (m->state) {
    case TXN_ONGOING:
        err = prepare(c, m, commit, cb, arg);
        if (err)
            cb(arg, err, -1, -1);
        return;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT:
        err = (m->state == TXN_PREPARE_COMMIT) == !!commit ? -CN_EBUSY : -CN_ETXNSTATE;
        break;
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT:
        if ((m->state == TXN_COMPLETE_COMMIT) == !!commit) {
            reply_durable(c, cb, arg, -1, -1);
            return;
        }
        err = -CN_ETXNSTATE;
        break;
    default:
        err = -CN_ETXNSTATE;
        break;
    }
    cb(arg, err, -1, -1);
}

int txn_offsets_pending(txn_coord *c, cn_str group, cn_str tname, int32_t part)
{
    if (serving(c) < 0)
        return 1; /* not known here: unstable, the client asks again */
    for (size_t i = 0; i <= c->mask; i++)
        for (txn_meta *m = c->tab[i]; m; m = m->hnext) {
            if (m->state != TXN_ONGOING && m->state != TXN_PREPARE_COMMIT &&
                m->state != TXN_PREPARE_ABORT)
                continue;
            txn_group *g = meta_group(m, group);
            for (int j = 0; g && j < g->n_offs; j++)
                if (g->offs[j].tp.partition == part && str_eq(g->offs[j].tp.topic, tname))
                    return 1;
        }
    return 0;
}

/* Describe ------------------------------------------------------------------------ */

static void fill_info(const txn_meta *m, txn_info *out)
{
    out->tid = m->tid.ptr;
    out->state = m->state;
    out->producer_id = m->pid;
    out->producer_epoch = m->epoch;
    out->timeout_ms = m->timeout_ms;
    out->start_ms = m->start_ms;
    out->update_ms = m->update_ms;
    out->parts = m->parts;
    out->n_parts = m->n_parts;
}

int txn_describe(txn_coord *c, cn_str tid, txn_info *out)
{
    int rc = serving(c);
    if (rc < 0)
        return rc;
    txn_meta *m = meta_find(c, tid);
    if (!m)
        return -CN_ENOENT;
    fill_info(m, out);
    return 0;
}

void txn_foreach(txn_coord *c, void (*cb)(void *arg, const txn_info *ti), void *arg)
{
    if (serving(c) < 0)
        return; /* another node coordinates them */
    for (size_t i = 0; i <= c->mask; i++)
        for (txn_meta *m = c->tab[i]; m; m = m->hnext) {
            txn_info ti;
            fill_info(m, &ti);
            cb(arg, &ti);
        }
}

/* Maintenance ---------------------------------------------------------------------- */

int txn_check_timeouts(txn_coord *c)
{
    if (c->failed || serving(c) < 0)
        return 0;
    int64_t now = loop_wall_ms();
    int n = 0;
    for (size_t i = 0; i <= c->mask; i++)
        for (txn_meta *m = c->tab[i]; m; m = m->hnext) {
            if (m->state == TXN_ONGOING && m->start_ms >= 0 &&
                now - m->start_ms > (int64_t)m->timeout_ms) {
                slog_info("%s: aborting transaction of %s (pid %lld epoch %d) open for %lld ms, "
                          "past its timeout of %d ms", BROKER_TXN_TOPIC, m->tid.ptr,
                          (long long)m->pid, m->epoch, (long long)(now - m->start_ms),
                          m->timeout_ms);
                fence_abort(c, m);
                n++;
            } else if ((m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT) &&
                       !m->completing) {
                complete_start(c, m);
            }
        }
    return n;
}

int txn_completing(const txn_coord *c)
{
    for (size_t i = 0; i <= c->mask; i++)
        for (const txn_meta *m = c->tab[i]; m; m = m->hnext)
            if (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT)
                return 1;
    return 0;
}

/* kvlog's compaction callback: the pid block end first, then every
 * transactional id's state. */
static int compact_records(void *arg, kvl_compaction *cx)
{
    txn_coord *c = arg;
    wbuf w;
    wbuf_init(&w);
    size_t kl;
    int rc = compact_block(cx, &w, c->tx.end);
    for (size_t i = 0; i <= c->mask && rc == 0; i++)
        for (txn_meta *m = c->tab[i]; m && rc == 0; m = m->hnext) {
            wbuf_reset(&w);
            txn__enc_meta(&w, m, &kl);
            rc = kvl_compact_add(cx, w.buf, (int32_t)kl, w.buf + kl, (int32_t)(w.len - kl));
        }
    wbuf_fini(&w);
    return rc;
}

/* Re-append every live record after the existing ones; once durable, move
 * the log start to the first of them (kvl_compact). A crash in between
 * leaves duplicates that replay resolves (later wins). */
int txn_maybe_compact(txn_coord *c, int force)
{
    if (c->failed || kvl_compacting(c->log))
        return 0;
    int rc = force ? kvl_compact(c->log) : kvl_maybe_compact(c->log);
    if (rc < 0)
        coord_fail(c, "compaction append", rc);
    return rc;
}
