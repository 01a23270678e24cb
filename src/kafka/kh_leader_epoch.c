/* OffsetForLeaderEpoch (KIP-101, KIP-320): for each partition, the end
 * offset of a leader epoch and the largest epoch <= the one asked, so that
 * a consumer (or a replica) can tell whether the log it read was truncated
 * by a failover. Answered by the partition's leader from its log's epochs
 * (log_epoch_end: the Raft terms of a replicated partition; epoch 0 over a
 * single node's log). current_leader_epoch (v2+) is fenced first, as Kafka
 * does: older -> FENCED_LEADER_EPOCH, newer -> UNKNOWN_LEADER_EPOCH; then
 * a replica that does not lead answers NOT_LEADER_OR_FOLLOWER. */
#include "kafka/kafka.h"
#include "util/common.h"

typedef kafka_offset_for_leader_epoch_request_offset_for_leader_partition req_part;
typedef kafka_offset_for_leader_epoch_response_epoch_end_offset rsp_part;

static void answer(partition *p, const req_part *rp, rsp_part *out)
{
    if (!p) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    int rc = broker_check_epoch(p, rp->current_leader_epoch);
    if (rc == 0 && !broker_partition_is_leader(p))
        rc = -CN_ENOTLEADER;
    if (rc == 0)
        rc = broker_epoch_end(p, rp->leader_epoch, &out->leader_epoch, &out->end_offset);
    out->error_code = kerr_from_cn(rc);
}

void kh_offset_for_leader_epoch(kreq *q)
{
    kafka_offset_for_leader_epoch_request req;
    if (kafka_offset_for_leader_epoch_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_offset_for_leader_epoch_response rsp;
    kafka_offset_for_leader_epoch_response_init(&rsp);
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.topics, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_offset_for_leader_epoch_request_offset_for_leader_topic *rt = &req.topics.items[i];
        kafka_offset_for_leader_epoch_response_offset_for_leader_topic_result *tr =
            &rsp.topics.items[i];
        tr->topic = rt->topic;
        int denied = !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, rt->topic);
        topic *t = broker_topic_find(q->b, rt->topic);
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        KARR_ALLOC(q, tr->partitions, np);
        for (int32_t j = 0; j < np; j++) {
            const req_part *rp = &rt->partitions.items[j];
            rsp_part *out = &tr->partitions.items[j];
            out->partition = rp->partition;
            out->leader_epoch = -1;
            out->end_offset = -1;
            partition *p = t && rp->partition >= 0 && rp->partition < t->n_parts
                               ? t->parts[rp->partition] : NULL;
            if (denied)
                out->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else
                answer(p, rp, out);
        }
    }
    kafka_offset_for_leader_epoch_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
