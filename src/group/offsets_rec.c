/* Record codec of the offsets store (format in offsets.h) and the batch
 * builder that appends a set of records to the internal partition. */
#include <stdlib.h>
#include <string.h>

#include "group/offsets_int.h"
#include "util/common.h"

void goff__recs_init(goff__recs *rb)
{
    memset(rb, 0, sizeof(*rb));
    kw_init(&rb->buf);
}

void goff__recs_fini(goff__recs *rb)
{
    kw_fini(&rb->buf);
    free(rb->r);
    memset(rb, 0, sizeof(*rb));
}

void goff__recs_reset(goff__recs *rb)
{
    kw_reset(&rb->buf);
    rb->n = 0;
}

static void recs_push(goff__recs *rb, size_t ko, size_t vo, int null_value)
{
    if (rb->n == rb->cap) {
        rb->cap = rb->cap ? rb->cap * 2 : 16;
        rb->r = xrealloc(rb->r, (size_t)rb->cap * sizeof(*rb->r));
    }
    rb->r[rb->n].ko = ko;
    rb->r[rb->n].kl = (int32_t)(vo - ko);
    rb->r[rb->n].vo = vo;
    rb->r[rb->n].vl = null_value ? -1 : (int32_t)(rb->buf.len - vo);
    rb->n++;
}

void goff__recs_offset(goff__recs *rb, cn_str group, cn_str tp, int32_t part,
                       const goff_entry *v, cn_str md)
{
    size_t ko = rb->buf.len;
    kw_i16(&rb->buf, GOFF_KEY_OFFSET);
    kw_str(&rb->buf, group);
    kw_str(&rb->buf, tp);
    kw_i32(&rb->buf, part);
    size_t vo = rb->buf.len;
    if (v) {
        kw_i16(&rb->buf, GOFF_VALUE_OFFSET_V1);
        kw_i64(&rb->buf, v->offset);
        kw_i32(&rb->buf, v->leader_epoch);
        kw_str(&rb->buf, md);
        kw_i64(&rb->buf, v->commit_ms);
        kw_i64(&rb->buf, v->expire_ms);
    }
    recs_push(rb, ko, vo, v == NULL);
}

void goff__recs_meta(goff__recs *rb, cn_str group, const cn_bytes *blob)
{
    size_t ko = rb->buf.len;
    kw_i16(&rb->buf, GOFF_KEY_GROUP_META);
    kw_str(&rb->buf, group);
    size_t vo = rb->buf.len;
    if (blob) {
        kw_i16(&rb->buf, GOFF_VALUE_GROUP_META_V0);
        kw_raw(&rb->buf, blob->ptr, (size_t)blob->len);
    }
    recs_push(rb, ko, vo, blob == NULL);
}

int goff__recs_append(goff_store *s, goff__recs *rb, int64_t ts)
{
    if (rb->n == 0)
        return 0;
    batch_build_rec *recs = xmalloc((size_t)rb->n * sizeof(*recs));
    for (int i = 0; i < rb->n; i++) {
        recs[i].key = rb->buf.buf + rb->r[i].ko;
        recs[i].key_len = rb->r[i].kl;
        recs[i].value = rb->r[i].vl < 0 ? NULL : rb->buf.buf + rb->r[i].vo;
        recs[i].value_len = rb->r[i].vl;
        recs[i].ts = ts;
    }
    uint8_t *batch = NULL;
    size_t len = 0;
    int rc = batch_build(recs, rb->n, BATCH_COMPRESSION_NONE, 0, &batch, &len);
    free(recs);
    if (rc < 0)
        return -CN_ENOMEM;
    int64_t base = 0;
    rc = broker_append(s->b, s->p, batch, len, &base);
    free(batch);
    if (rc < 0)
        return rc;
    s->log_bytes += (int64_t)len;
    return 0;
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
