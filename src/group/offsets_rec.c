/* Record codec of the offsets store (format in offsets.h; this file writes
 * every key and value byte, kvlog frames them into batches). */
#include <stdlib.h>
#include <string.h>

#include "group/offsets_int.h"
#include "util/common.h"

void goff__recs_init(goff__recs *rb)
{
    kvl_batch_init(&rb->bt);
    kw_init(&rb->w);
}

void goff__recs_fini(goff__recs *rb)
{
    kvl_batch_fini(&rb->bt);
    kw_fini(&rb->w);
}

void goff__recs_reset(goff__recs *rb)
{
    kvl_batch_reset(&rb->bt);
}

void goff__enc_offset(kw *w, kstr group, kstr tp, int32_t part, const goff_entry *v, kstr md,
                      size_t *key_len)
{
    size_t k0 = w->len;
    kw_i16(w, GOFF_KEY_OFFSET);
    kw_str(w, group);
    kw_str(w, tp);
    kw_i32(w, part);
    *key_len = w->len - k0;
    if (v) {
        kw_i16(w, GOFF_VALUE_OFFSET_V1);
        kw_i64(w, v->offset);
        kw_i32(w, v->leader_epoch);
        kw_str(w, md);
        kw_i64(w, v->commit_ms);
        kw_i64(w, v->expire_ms);
    }
}

void goff__enc_meta(kw *w, kstr group, const kbytes *blob, size_t *key_len)
{
    size_t k0 = w->len;
    kw_i16(w, GOFF_KEY_GROUP_META);
    kw_str(w, group);
    *key_len = w->len - k0;
    if (blob) {
        kw_i16(w, GOFF_VALUE_GROUP_META_V0);
        kw_raw(w, blob->ptr, (size_t)blob->len);
    }
}

/* Move the record encoded in rb->w into the batch. */
static void recs_push(goff__recs *rb, size_t key_len, int null_value)
{
    kvl_batch_add(&rb->bt, rb->w.buf, (int32_t)key_len, rb->w.buf + key_len,
                  null_value ? -1 : (int32_t)(rb->w.len - key_len));
    kw_reset(&rb->w);
}

void goff__recs_offset(goff__recs *rb, cn_str group, cn_str tp, int32_t part,
                       const goff_entry *v, cn_str md)
{
    size_t kl;
    goff__enc_offset(&rb->w, group, tp, part, v, md, &kl);
    recs_push(rb, kl, v == NULL);
}

void goff__recs_meta(goff__recs *rb, cn_str group, const cn_bytes *blob)
{
    size_t kl;
    goff__enc_meta(&rb->w, group, blob, &kl);
    recs_push(rb, kl, blob == NULL);
}

int goff__recs_append(goff_store *s, goff__recs *rb, int64_t ts)
{
    return kvl_append(s->log, &rb->bt, ts, NULL);
}

/* Record overhead in a batch (attributes, varints, header count) plus the
 * batch header shared by many records, roughly. */
#define REC_OVERHEAD 16

int64_t goff__offset_rec_bytes(int32_t group_len, int32_t topic_len, int32_t meta_len)
{
    return REC_OVERHEAD + (2 + 2 + group_len + 2 + topic_len + 4) +
           (2 + 8 + 4 + 2 + (meta_len > 0 ? meta_len : 0) + 8 + 8);
}

int64_t goff__meta_rec_bytes(int32_t group_len, int32_t blob_len)
{
    return REC_OVERHEAD + (2 + 2 + group_len) + (2 + (blob_len > 0 ? blob_len : 0));
}

int goff__rec_decode(const batch_record *r, goff__rec *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (r->key_len < 2) {
        *why = "key missing or too short";
        return -CN_EPROTO;
    }
    kr k;
    kr_init(&k, r->key, (size_t)r->key_len, NULL);
    int16_t kv = kr_i16(&k);
    out->tombstone = r->value_len < 0;
    kr v;
    kr_init(&v, r->value, r->value_len < 0 ? 0 : (size_t)r->value_len, NULL);
    if (kv == GOFF_KEY_OFFSET) {
        out->kind = GOFF_KEY_OFFSET;
        out->group = kr_str(&k);
        out->topic = kr_str(&k);
        out->partition = kr_i32(&k);
        if (k.err || kr_remaining(&k) || out->group.len < 0 || out->topic.len < 0) {
            *why = "malformed offset key";
            return -CN_EPROTO;
        }
        if (out->tombstone)
            return 0;
        int16_t vv = kr_i16(&v);
        if (v.err || vv != GOFF_VALUE_OFFSET_V1) {
            *why = "unknown offset value version";
            return -CN_EPROTO;
        }
        out->offset = kr_i64(&v);
        out->leader_epoch = kr_i32(&v);
        out->metadata = kr_str(&v);
        out->commit_ms = kr_i64(&v);
        out->expire_ms = kr_i64(&v);
        if (v.err || kr_remaining(&v)) {
            *why = "malformed offset value";
            return -CN_EPROTO;
        }
        return 0;
    }
    if (kv == GOFF_KEY_GROUP_META) {
        out->kind = GOFF_KEY_GROUP_META;
        out->group = kr_str(&k);
        if (k.err || kr_remaining(&k) || out->group.len < 0) {
            *why = "malformed group metadata key";
            return -CN_EPROTO;
        }
        out->blob.len = -1;
        if (out->tombstone)
            return 0;
        int16_t vv = kr_i16(&v);
        if (v.err || vv != GOFF_VALUE_GROUP_META_V0) {
            *why = "unknown group metadata value version";
            return -CN_EPROTO;
        }
        out->blob.len = (int32_t)kr_remaining(&v);
        out->blob.ptr = kr_raw(&v, (size_t)out->blob.len);
        return 0;
    }
    *why = "unknown key version";
    return -CN_EPROTO;
}
