/* ListOffsets: earliest (-2), latest (-1), or the first record whose
 * timestamp is at or after a given time. v0 answers with a one-element
 * old-style offset list. */
#include <string.h>
#include <unistd.h>

#include "kafka/kafka.h"
#include "util/common.h"
#include "util/slog.h"

#define TS_LATEST (-1)
#define TS_EARLIEST (-2)

typedef struct ts_find {
    int64_t ts;
    int64_t offset;
    int64_t found_ts;
} ts_find;

static int ts_cb(const batch_record *r, void *arg)
{
    ts_find *f = arg;
    if (r->timestamp >= f->ts) {
        f->offset = r->offset;
        f->found_ts = r->timestamp;
        return 1;
    }
    return 0;
}

/* First record with timestamp >= ts. Returns a Kafka error code; offset -1
 * when there is none. */
static int16_t offset_for_time(kreq *q, partition *p, int64_t ts, int64_t *offset,
                               int64_t *found_ts)
{
    *offset = -1;
    *found_ts = -1;
    log_slice sl;
    int rc = log_find_timestamp(p->log, ts, &sl);
    if (rc == -CN_ENOENT)
        return KERR_NONE;
    if (rc < 0)
        return KERR_KAFKA_STORAGE_ERROR;
    int16_t err = KERR_NONE;
    uint8_t *buf = kreq_alloc(q, (size_t)sl.len, 1);
    ssize_t n = pread(sl.fd, buf, (size_t)sl.len, sl.pos);
    if (n != sl.len) {
        err = KERR_KAFKA_STORAGE_ERROR;
    } else {
        ts_find f = {ts, -1, -1};
        int berr = batch_foreach(buf, (size_t)sl.len, ksrv_scratch(q->ks), ts_cb, &f);
        if (berr) {
            slog_error("%s-%d: stored batch at position %lld does not decode (%s)",
                       p->t->name, p->id, (long long)sl.pos, cn_strerror(berr));
            err = KERR_CORRUPT_MESSAGE;
        } else if (f.offset >= 0) {
            *offset = f.offset;
            *found_ts = f.found_ts;
        }
    }
    log_slice_release(&sl);
    return err;
}

void kh_list_offsets(kreq *q)
{
    kafka_list_offsets_request req;
    if (kafka_list_offsets_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_list_offsets_response rsp;
    kafka_list_offsets_response_init(&rsp);
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.topics, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_list_offsets_request_list_offsets_topic *lt = &req.topics.items[i];
        kafka_list_offsets_response_list_offsets_topic_response *tr = &rsp.topics.items[i];
        tr->name = lt->name;
        int denied = !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, lt->name);
        topic *t = denied ? NULL : broker_topic_find(q->b, lt->name);
        int32_t np = lt->partitions.n > 0 ? lt->partitions.n : 0;
        KARR_ALLOC(q, tr->partitions, np);
        for (int32_t j = 0; j < np; j++) {
            kafka_list_offsets_request_list_offsets_partition *lp = &lt->partitions.items[j];
            kafka_list_offsets_response_list_offsets_partition_response *pr =
                &tr->partitions.items[j];
            pr->partition_index = lp->partition_index;
            pr->timestamp = -1;
            pr->offset = -1;
            pr->leader_epoch = -1;
            KARR_ALLOC(q, pr->old_style_offsets, 0);
            partition *p = t && lp->partition_index >= 0 && lp->partition_index < t->n_parts
                               ? t->parts[lp->partition_index] : NULL;
            if (!p) {
                pr->error_code = denied ? KERR_TOPIC_AUTHORIZATION_FAILED
                                        : KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            /* KIP-320 (v4+): fence a client with an older or newer epoch. */
            int erc = q->ver >= 4 ? broker_check_epoch(p, lp->current_leader_epoch) : 0;
            if (erc < 0) {
                pr->error_code = kerr_from_cn(erc);
                continue;
            }
            if (broker_partition_serving(p) < 0) { /* as Fetch: a new leader's
                                                     * high watermark may lag */
                pr->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            pr->leader_epoch = broker_partition_epoch(p);
            int64_t off = -1, ts = -1;
            int16_t err = KERR_NONE;
            if (lp->timestamp == TS_LATEST)
                off = q->ver >= 2 && req.isolation_level == 1 ? broker_lso(p)
                                                             : log_high_watermark(p->log);
            else if (lp->timestamp == TS_EARLIEST)
                off = log_start_offset(p->log);
            else if (lp->timestamp >= 0)
                err = offset_for_time(q, p, lp->timestamp, &off, &ts);
            else
                err = KERR_UNSUPPORTED_VERSION; /* -3 max timestamp etc.: newer versions */
            pr->error_code = err;
            if (err)
                continue;
            pr->offset = off;
            pr->timestamp = ts;
            if (q->ver == 0 && off >= 0) {
                KARR_ALLOC(q, pr->old_style_offsets, 1);
                pr->old_style_offsets.items[0] = off;
            }
        }
    }
    kafka_list_offsets_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
