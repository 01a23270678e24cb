/* DeleteRecords: move partitions' log start forward (the admin clients'
 * deleteRecords / rd_kafka_DeleteRecords).
 *
 * Per partition, as Kafka does: unknown topic or partition ->
 * UNKNOWN_TOPIC_OR_PARTITION; a topic with cleanup.policy=compact ->
 * POLICY_VIOLATION; offset -1 means the high watermark; an offset below 0 or
 * above the high watermark -> OFFSET_OUT_OF_RANGE; an offset at or below the
 * current log start changes nothing. Otherwise the log start moves
 * (broker_delete_records -> log_delete_before: whole segments below it are
 * deleted, reads below it get OFFSET_OUT_OF_RANGE) and the answer, with the
 * new low watermark, waits until the new start is durable (the log-start
 * file fsynced by the syncer): a crash after the answer cannot bring the
 * records back. A failed sync, or the topic deleted meanwhile, gives
 * KAFKA_STORAGE_ERROR. timeout_ms is not used: on a single node the wait is
 * one fsync, not replicas catching up.
 *
 * A replicated partition (cluster): only its leader takes it
 * (NOT_LEADER_OR_FOLLOWER elsewhere); the new start goes through the Raft
 * log and every replica moves its start when the entry commits
 * (broker_delete_records -> rg_submit_start; the segments go at the next
 * retention pass, by a snapshot). The answer waits until the entry
 * committed and this node's log-start file is durable; REQUEST_TIMED_OUT
 * after 30 s without it (outcome unknown), LEADER_NOT_AVAILABLE while a
 * new leader's first sync is pending (retry). */
#include "kafka/kafka.h"
#include "util/common.h"

typedef kafka_delete_records_response_delete_records_partition_result dr_part;

typedef struct dr_park {
    net_resp *resp;
    int16_t ver;
    int pending;                    /* partitions still waiting, + 1 guard */
    kafka_delete_records_response rsp;
} dr_park;

typedef struct dr_wait {
    durable_wait w;                 /* first: the broker hands this back */
    dr_park *pk;
    dr_part *pr;
} dr_wait;

static void park_release(dr_park *pk)
{
    if (--pk->pending > 0)
        return;
    kafka_delete_records_response_encode(&pk->resp->w, pk->ver, &pk->rsp);
    net_resp_ready(pk->resp);
}

static void on_start_durable(durable_wait *w, int status)
{
    dr_wait *dw = (dr_wait *)w;
    if (status < 0) {
        /* -CN_EIO (storage), -CN_ECOMMITTMO (replicated: not seen committed
         * in time; it may still be) */
        dw->pr->error_code = kerr_from_cn(status);
        dw->pr->low_watermark = -1;
    } else {
        dw->pr->low_watermark = w->target;
    }
    park_release(dw->pk);
}

/* One partition: an error code now, or KERR_NONE with the answer parked
 * (on_start_durable fills pr in, possibly before this returns). */
static int16_t delete_one(kreq *q, dr_park *pk, partition *p, int64_t offset, dr_part *pr)
{
    if (!p)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->t->cfg.cleanup_compact)
        return KERR_POLICY_VIOLATION;
    if (!broker_partition_is_leader(p))
        return KERR_NOT_LEADER_OR_FOLLOWER; /* before the offset checks, as Kafka */
    int64_t hw = log_high_watermark(p->log);
    if (offset == -1)
        offset = hw;
    if (offset < 0 || offset > hw)
        return KERR_OFFSET_OUT_OF_RANGE;
    dr_wait *dw = kreq_alloc(q, 1, sizeof(*dw));
    dw->pk = pk;
    dw->pr = pr;
    dw->w.cb = on_start_durable;
    pk->pending++; /* before: the wait may fire inside the call */
    int rc = broker_delete_records(q->b, p, offset, &dw->w);
    if (rc < 0) {
        pk->pending--;
        return kerr_from_cn(rc);
    }
    return KERR_NONE;
}

void kh_delete_records(kreq *q)
{
    kafka_delete_records_request req;
    if (kafka_delete_records_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    dr_park *pk = kreq_alloc(q, 1, sizeof(*pk));
    pk->resp = q->resp;
    pk->ver = q->ver;
    pk->pending = 1; /* guard: released at the end of this function */
    kafka_delete_records_response *rsp = &pk->rsp;
    kafka_delete_records_response_init(rsp);
    KARR_ALLOC(q, rsp->topics, req.topics.n > 0 ? req.topics.n : 0);
    for (int32_t i = 0; i < req.topics.n; i++) {
        kafka_delete_records_request_delete_records_topic *td = &req.topics.items[i];
        kafka_delete_records_response_delete_records_topic_result *tr = &rsp->topics.items[i];
        kafka_delete_records_response_delete_records_topic_result_init(tr);
        tr->name = kreq_strdup(q, td->name);
        int32_t np = td->partitions.n > 0 ? td->partitions.n : 0;
        KARR_ALLOC(q, tr->partitions, np);
        topic *t = broker_topic_find(q->b, td->name);
        int denied = !kreq_allowed(q, ACL_OP_DELETE, ACL_R_TOPIC, td->name);
        for (int32_t j = 0; j < np; j++) {
            kafka_delete_records_request_delete_records_partition *pd =
                &td->partitions.items[j];
            dr_part *pr = &tr->partitions.items[j];
            kafka_delete_records_response_delete_records_partition_result_init(pr);
            pr->partition_index = pd->partition_index;
            pr->low_watermark = -1;
            partition *p = t && pd->partition_index >= 0 && pd->partition_index < t->n_parts
                               ? t->parts[pd->partition_index]
                               : NULL;
            int16_t err = denied ? KERR_TOPIC_AUTHORIZATION_FAILED
                                 : delete_one(q, pk, p, pd->offset, pr);
            if (err != KERR_NONE)
                pr->error_code = err; /* else on_start_durable sets it */
        }
    }
    park_release(pk);
}
