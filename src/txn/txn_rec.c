/* Record codec of __transaction_state.
 *
 * Each state change is one uncompressed v2 batch (batch_build) holding one
 * record (compaction packs many). Integers big-endian; "str" is an int16
 * length then the bytes (-1 = null, only where noted):
 *
 *   pid block key    int16 0 (kind), no more
 *   pid block value  int16 0 (version), int64 block_end
 *                    every producer id below block_end may have been handed
 *                    out; after a restart allocation resumes at block_end
 *   txn key          int16 1 (kind), str transactional_id
 *   txn value        int16 0 (version),
 *                    int64 producer_id, int64 last_producer_id (-1 none),
 *                    int16 producer_epoch, int16 last_producer_epoch (-1 none),
 *                    int32 timeout_ms, int8 state (txn_state: 0 Empty,
 *                    1 Ongoing, 2 PrepareCommit, 3 PrepareAbort,
 *                    4 CompleteCommit, 5 CompleteAbort),
 *                    int64 start_ms (-1 none), int64 update_ms,
 *                    int32 n_partitions, n x (str topic, int32 partition),
 *                    int32 n_groups, n x (str group, int32 n_offsets,
 *                      n x (str topic, int32 partition, int64 offset,
 *                           int32 leader_epoch, str metadata (nullable)))
 *   tombstone        a txn key with a null value: the id is forgotten
 *
 * The latest record of a key wins. Pending offsets are stored with the state
 * so that a PrepareCommit found at recovery can still commit them. Records
 * with an unknown kind or version, or a broken layout, are skipped at replay
 * with a warning. */
#include <stdlib.h>
#include <string.h>

#include "txn/txn_int.h"
#include "util/common.h"

void txn__enc_block(wbuf *w, int64_t block_end, size_t *key_len)
{
    size_t k0 = w->len;
    bin_put_i16(w, TXN_KEY_PID_BLOCK);
    *key_len = w->len - k0;
    bin_put_i16(w, TXN_VALUE_V0);
    bin_put_i64(w, block_end);
}

void txn__enc_meta(wbuf *w, const txn_meta *m, size_t *key_len)
{
    size_t k0 = w->len;
    bin_put_i16(w, TXN_KEY_TXN);
    bin_put_str(w, m->tid);
    *key_len = w->len - k0;
    bin_put_i16(w, TXN_VALUE_V0);
    bin_put_i64(w, m->pid);
    bin_put_i64(w, m->last_pid);
    bin_put_i16(w, m->epoch);
    bin_put_i16(w, m->last_epoch);
    bin_put_i32(w, m->timeout_ms);
    bin_put_i8(w, (int8_t)m->state);
    bin_put_i64(w, m->start_ms);
    bin_put_i64(w, m->update_ms);
    bin_put_i32(w, m->n_parts);
    for (int i = 0; i < m->n_parts; i++) {
        bin_put_str(w, m->parts[i].topic);
        bin_put_i32(w, m->parts[i].partition);
    }
    bin_put_i32(w, m->n_groups);
    for (int i = 0; i < m->n_groups; i++) {
        const txn_group *g = &m->groups[i];
        bin_put_str(w, g->name);
        bin_put_i32(w, g->n_offs);
        for (int j = 0; j < g->n_offs; j++) {
            const txn_off *o = &g->offs[j];
            bin_put_str(w, o->tp.topic);
            bin_put_i32(w, o->tp.partition);
            bin_put_i64(w, o->offset);
            bin_put_i32(w, o->leader_epoch);
            bin_put_str(w, o->metadata);
        }
    }
}

void txn__rec_fini(txn__rec *r)
{
    for (int i = 0; i < r->v.n_groups; i++)
        free(r->v.groups[i].offs);
    free(r->v.groups);
    free(r->v.parts);
    r->v.groups = NULL;
    r->v.parts = NULL;
    r->v.n_groups = r->v.n_parts = 0;
}

/* Each array element takes at least min bytes: bounds a count before
 * allocating for it. */
static int count_ok(bin_reader *r, int32_t n, size_t min)
{
    return !r->err && n >= 0 && (size_t)n <= bin_remaining(r) / min;
}

static int dec_value(bin_reader *r, txn__rec *out, const char **why)
{
    txn_meta *v = &out->v;
    v->pid = bin_i64(r);
    v->last_pid = bin_i64(r);
    v->epoch = bin_i16(r);
    v->last_epoch = bin_i16(r);
    v->timeout_ms = bin_i32(r);
    int8_t st = bin_i8(r);
    v->start_ms = bin_i64(r);
    v->update_ms = bin_i64(r);
    if (r->err) {
        *why = "short value";
        return -CN_EPROTO;
    }
    if (st < TXN_EMPTY || st > TXN_COMPLETE_ABORT) {
        *why = "unknown state";
        return -CN_EPROTO;
    }
    v->state = (txn_state)st;
    int32_t np = bin_i32(r);
    if (!count_ok(r, np, 6)) {
        *why = "bad partition count";
        return -CN_EPROTO;
    }
    v->parts = xcalloc((size_t)(np ? np : 1), sizeof(*v->parts));
    v->n_parts = np;
    for (int32_t i = 0; i < np; i++) {
        v->parts[i].topic = bin_str(r);
        v->parts[i].partition = bin_i32(r);
        if (v->parts[i].topic.len < 0)
            bin_fail(r);
    }
    int32_t ng = bin_i32(r);
    if (!count_ok(r, ng, 6)) {
        *why = "bad group count";
        return -CN_EPROTO;
    }
    v->groups = xcalloc((size_t)(ng ? ng : 1), sizeof(*v->groups));
    for (int32_t i = 0; i < ng; i++) {
        txn_group *g = &v->groups[i];
        v->n_groups = i + 1;
        g->name = bin_str(r);
        int32_t no = bin_i32(r);
        if (g->name.len < 0 || !count_ok(r, no, 20)) {
            *why = "bad group";
            return -CN_EPROTO;
        }
        g->offs = xcalloc((size_t)(no ? no : 1), sizeof(*g->offs));
        g->n_offs = no;
        for (int32_t j = 0; j < no; j++) {
            txn_off *o = &g->offs[j];
            o->tp.topic = bin_str(r);
            o->tp.partition = bin_i32(r);
            o->offset = bin_i64(r);
            o->leader_epoch = bin_i32(r);
            o->metadata = bin_str(r);
            if (o->tp.topic.len < 0)
                bin_fail(r);
        }
    }
    if (r->err) {
        *why = "truncated value";
        return -CN_EPROTO;
    }
    return 0;
}

int txn__rec_decode(const batch_record *rec, txn__rec *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (rec->key_len < 2) {
        *why = "short key";
        return -CN_EPROTO;
    }
    bin_reader k;
    bin_reader_init(&k, rec->key, (size_t)rec->key_len);
    out->kind = bin_i16(&k);
    if (out->kind == TXN_KEY_TXN) {
        out->tid = bin_str(&k);
        if (k.err || out->tid.len < 0) {
            *why = "bad transactional id";
            return -CN_EPROTO;
        }
    } else if (out->kind != TXN_KEY_PID_BLOCK) {
        *why = "unknown key kind";
        return -CN_EPROTO;
    }
    if (rec->value_len < 0) {
        out->tombstone = 1;
        if (out->kind == TXN_KEY_PID_BLOCK) {
            *why = "pid block tombstone";
            return -CN_EPROTO;
        }
        return 0;
    }
    bin_reader r;
    bin_reader_init(&r, rec->value, (size_t)rec->value_len);
    int16_t ver = bin_i16(&r);
    if (r.err || ver != TXN_VALUE_V0) {
        *why = "unknown value version";
        return -CN_EPROTO;
    }
    if (out->kind == TXN_KEY_PID_BLOCK) {
        out->block_end = bin_i64(&r);
        if (r.err || out->block_end < 0) {
            *why = "bad pid block";
            return -CN_EPROTO;
        }
        return 0;
    }
    int rc = dec_value(&r, out, why);
    if (rc < 0)
        txn__rec_fini(out);
    return rc;
}
