/* Record codec of the offsets store (format in offsets.h; this file writes
 * every key and value byte, kvlog frames them into batches). */
#include <stdlib.h>
#include <string.h>

#include "group/offsets_int.h"
#include "util/common.h"

void goff__recs_init(goff__recs *rb)
{
    kvl_batch_init(&rb->bt);
    wbuf_init(&rb->w);
}

void goff__recs_fini(goff__recs *rb)
{
    kvl_batch_fini(&rb->bt);
    wbuf_fini(&rb->w);
}

void goff__recs_reset(goff__recs *rb)
{
    kvl_batch_reset(&rb->bt);
}

void goff__enc_offset(wbuf *w, cn_str group, cn_str tp, int32_t part, const goff_entry *v, cn_str md,
                      size_t *key_len)
{
    size_t k0 = w->len;
    bin_put_i16(w, GOFF_KEY_OFFSET);
    bin_put_str(w, group);
    bin_put_str(w, tp);
    bin_put_i32(w, part);
    *key_len = w->len - k0;
    if (v) {
        bin_put_i16(w, GOFF_VALUE_OFFSET_V1);
        bin_put_i64(w, v->offset);
        bin_put_i32(w, v->leader_epoch);
        bin_put_str(w, md);
        bin_put_i64(w, v->commit_ms);
        bin_put_i64(w, v->expire_ms);
    }
}

void goff__enc_meta(wbuf *w, cn_str group, const cn_bytes *blob, size_t *key_len)
{
    size_t k0 = w->len;
    bin_put_i16(w, GOFF_KEY_GROUP_META);
    bin_put_str(w, group);
    *key_len = w->len - k0;
    if (blob) {
        bin_put_i16(w, GOFF_VALUE_GROUP_META_V0);
        bin_put_raw(w, blob->ptr, (size_t)blob->len);
    }
}

/* Move the record encoded in rb->w into the batch. */
static void recs_push(goff__recs *rb, size_t key_len, int null_value)
{
    kvl_batch_add(&rb->bt, rb->w.buf, (int32_t)key_len, rb->w.buf + key_len,
                  null_value ? -1 : (int32_t)(rb->w.len - key_len));
    wbuf_reset(&rb->w);
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
    bin_reader k;
    bin_reader_init(&k, r->key, (size_t)r->key_len);
    int16_t kv = bin_i16(&k);
    out->tombstone = r->value_len < 0;
    bin_reader v;
    bin_reader_init(&v, r->value, r->value_len < 0 ? 0 : (size_t)r->value_len);
    if (kv == GOFF_KEY_OFFSET) {
        out->kind = GOFF_KEY_OFFSET;
        out->group = bin_str(&k);
        out->topic = bin_str(&k);
        out->partition = bin_i32(&k);
        if (k.err || bin_remaining(&k) || out->group.len < 0 || out->topic.len < 0) {
            *why = "malformed offset key";
            return -CN_EPROTO;
        }
        if (out->tombstone)
            return 0;
        int16_t vv = bin_i16(&v);
        if (v.err || vv != GOFF_VALUE_OFFSET_V1) {
            *why = "unknown offset value version";
            return -CN_EPROTO;
        }
        out->offset = bin_i64(&v);
        out->leader_epoch = bin_i32(&v);
        out->metadata = bin_str(&v);
        out->commit_ms = bin_i64(&v);
        out->expire_ms = bin_i64(&v);
        if (v.err || bin_remaining(&v)) {
            *why = "malformed offset value";
            return -CN_EPROTO;
        }
        return 0;
    }
    if (kv == GOFF_KEY_GROUP_META) {
        out->kind = GOFF_KEY_GROUP_META;
        out->group = bin_str(&k);
        if (k.err || bin_remaining(&k) || out->group.len < 0) {
            *why = "malformed group metadata key";
            return -CN_EPROTO;
        }
        out->blob.len = -1;
        if (out->tombstone)
            return 0;
        int16_t vv = bin_i16(&v);
        if (v.err || vv != GOFF_VALUE_GROUP_META_V0) {
            *why = "unknown group metadata value version";
            return -CN_EPROTO;
        }
        out->blob.len = (int32_t)bin_remaining(&v);
        out->blob.ptr = bin_take(&v, (size_t)out->blob.len);
        return 0;
    }
    *why = "unknown key version";
    return -CN_EPROTO;
}
