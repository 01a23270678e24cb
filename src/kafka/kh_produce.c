/* Produce: validate each partition's record batches, append them, answer.
 *
 * acks=0: append, send nothing. acks=1: answer once the batches are in the
 * page cache. acks=-1 (all): park the request until every partition it
 * wrote to has fsynced past its append (group commit in the log's syncer),
 * or, replicated, committed on a majority; the response is encoded when
 * the last partition reports. Replicated: a leader out of contact with a
 * majority answers NOT_ENOUGH_REPLICAS without appending; a commit that
 * does not come within the request's timeout_ms: REQUEST_TIMED_OUT.
 *
 * Batches are appended in place from the connection's read buffer (the log
 * stamps base offset and leader epoch into it): no copy before the write. */
#include <string.h>

#include "kafka/kafka.h"
#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

typedef kafka_produce_response_partition_produce_response prod_part;

typedef struct prod_park {
    net_resp *resp;
    int16_t ver;
    int pending;                    /* partitions still waiting for fsync */
    kafka_produce_response rsp;
} prod_park;

typedef struct prod_wait {
    durable_wait w;                 /* first: the broker hands this back */
    prod_park *pk;
    prod_part *pr;
} prod_wait;

static void park_finish(prod_park *pk)
{
    kafka_produce_response_encode(&pk->resp->w, pk->ver, &pk->rsp);
    net_resp_ready(pk->resp);
}

static void on_durable(durable_wait *w, int status)
{
    prod_wait *pw = (prod_wait *)w;
    if (status < 0) {
        pw->pr->error_code = kerr_from_cn(status); /* storage error, or not leader */
        pw->pr->base_offset = -1;
    }
    if (--pw->pk->pending == 0)
        park_finish(pw->pk);
}

/* Validate and append one partition's records (one batch). Returns a Kafka
 * error code; on success pr->base_offset is the batch's base offset. */
static int16_t append_records(kreq *q, partition *p, krecords rec, prod_part *pr)
{
    const topic_config *tc = &p->t->cfg;
    if (rec.len <= 0 || rec.ptr == NULL)
        return KERR_CORRUPT_MESSAGE;
    /* Message sets v0/v1 have their magic byte at the same position. */
    if (rec.len > 16 && rec.ptr[16] != 2)
        return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    int n_batches = 0;
    int verr = batch_validate(rec.ptr, (size_t)rec.len, tc->max_message_bytes,
                              ksrv_scratch(q->ks), NULL, 0, &n_batches);
    if (verr)
        return kerr_from_cn(verr);
    /* Kafka's rule for Produce v3+: exactly one batch per partition, so an
     * append is all or nothing and a retry cannot duplicate part of it. */
    if (n_batches != 1)
        return KERR_INVALID_RECORD;
    int64_t now = loop_wall_ms();
    uint8_t *buf = (uint8_t *)rec.ptr; /* our read buffer: the log writes offsets into it */
    size_t len = (size_t)rec.len;
    if (tc->ts_type == TS_LOG_APPEND_TIME)
        batch_set_log_append_time(buf, len, now);
    int err = broker_produce(q->b, p, buf, len, &pr->base_offset);
    if (err) {
        pr->base_offset = -1;
        return kerr_from_cn(err);
    }
    pr->log_append_time_ms = tc->ts_type == TS_LOG_APPEND_TIME ? now : -1;
    return KERR_NONE;
}

void kh_produce(kreq *q)
{
    kafka_produce_request req;
    if (kafka_produce_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    prod_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->ver = q->ver;
    pk->pending = 1; /* guard: released at the end of this function */
    kafka_produce_response *rsp = &pk->rsp;
    kafka_produce_response_init(rsp);
    int acks = req.acks;
    int16_t req_err = KERR_NONE;
    if (acks != 0 && acks != 1 && acks != -1)
        req_err = KERR_INVALID_REQUIRED_ACKS;
    else if (req.transactional_id.len >= 0 &&
             !kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID, req.transactional_id))
        req_err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    KARR_ALLOC(q, rsp->responses, req.topic_data.n > 0 ? req.topic_data.n : 0);
    /* Partitions to wait for (acks=all): at most one wait per partition entry. */
    for (int32_t i = 0; i < req.topic_data.n; i++) {
        kafka_produce_request_topic_produce_data *td = &req.topic_data.items[i];
        kafka_produce_response_topic_produce_response *tr = &rsp->responses.items[i];
        tr->name = kreq_strdup(q, td->name);
        int32_t np = td->partition_data.n > 0 ? td->partition_data.n : 0;
        KARR_ALLOC(q, tr->partition_responses, np);
        topic *t = broker_topic_find(q->b, td->name);
        int16_t t_err = kreq_allowed(q, ACL_OP_WRITE, ACL_R_TOPIC, td->name)
                            ? KERR_NONE
                            : KERR_TOPIC_AUTHORIZATION_FAILED;
        for (int32_t j = 0; j < np; j++) {
            kafka_produce_request_partition_produce_data *pd = &td->partition_data.items[j];
            prod_part *pr = &tr->partition_responses.items[j];
            pr->index = pd->index;
            pr->base_offset = -1;
            pr->log_append_time_ms = -1;
            pr->log_start_offset = -1;
            pr->error_message = (kstr){NULL, -1};
            KARR_ALLOC(q, pr->record_errors, 0);
            if (req_err || t_err) {
                pr->error_code = req_err ? req_err : t_err;
                continue;
            }
            partition *p = t && pd->index >= 0 && pd->index < t->n_parts ? t->parts[pd->index]
                                                                         : NULL;
            if (!p) {
                pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (acks == -1 && broker_min_isr_check(p) < 0) {
                /* Kafka's rule for acks=all, before anything is written
                 * (the acknowledgement itself waits for a Raft majority). */
                pr->error_code = KERR_NOT_ENOUGH_REPLICAS;
                pr->log_start_offset = log_start_offset(p->log);
                continue;
            }
            pr->error_code = append_records(q, p, pd->records, pr);
            pr->log_start_offset = log_start_offset(p->log);
            if (pr->error_code == KERR_NONE && acks == -1) {
                prod_wait *pw = kreq_alloc(q, 1, sizeof(*pw));
                pw->pk = pk;
                pw->pr = pr;
                pw->w.target = log_end_offset(p->log);
                pw->w.cb = on_durable;
                pk->pending++;
                /* A replicated partition that does not commit in time:
                 * REQUEST_TIMED_OUT (indeterminate), as Kafka. */
                int64_t dl = req.timeout_ms > 0
                                 ? loop_now(broker_loop(q->b)) + req.timeout_ms : 0;
                broker_wait_durable_until(q->b, p, &pw->w, dl);
            }
        }
    }
    if (acks == 0) {
        net_resp_drop(q->resp); /* acks=0 never parks: no waits were made */
        return;
    }
    if (--pk->pending == 0)
        park_finish(pk);
}
