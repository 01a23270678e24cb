/* Transaction APIs: InitProducerId, AddPartitionsToTxn (v0-3),
 * AddOffsetsToTxn, TxnOffsetCommit, EndTxn, DescribeTransactions,
 * ListTransactions and DescribeProducers. The coordinator (src/txn) answers
 * through a callback once its record is durable, with 0 or -CN_E*; the
 * handlers map that with kerr_from_cn and encode then.
 *
 * Kafka answers a stale epoch (-CN_EFENCED) with PRODUCER_FENCED from these
 * versions on and INVALID_PRODUCER_EPOCH before: InitProducerId 4,
 * AddPartitionsToTxn 2, AddOffsetsToTxn 2, TxnOffsetCommit 2, EndTxn 2. */
#include <string.h>

#include "broker/pstate.h"
#include "group/group.h"
#include "kafka/kafka.h"
#include "txn/txn.h"
#include "util/common.h"

#define NULL_STR ((kstr){NULL, -1})

/* The coordinator's answer (0 or -CN_E*) as a Kafka error code for request
 * version ver, where PRODUCER_FENCED exists from version first on. */
static int16_t txn_kerr(int err, int16_t ver, int16_t first)
{
    return err == -CN_EFENCED && ver < first ? KERR_INVALID_PRODUCER_EPOCH : kerr_from_cn(err);
}

/* A request parked until the coordinator answers. */
typedef struct txn_park {
    net_resp *resp;
    int16_t ver;
    void *rsp;                      /* response struct in the slot arena */
} txn_park;

static txn_park *park(kreq *q, void *rsp)
{
    txn_park *p = kreq_alloc(q, 1, sizeof(*p));
    p->resp = q->resp;
    p->ver = q->ver;
    p->rsp = rsp;
    return p;
}

/* InitProducerId ------------------------------------------------------------ */

static void init_done(void *arg, int err, int64_t pid, int16_t epoch)
{
    txn_park *p = arg;
    kafka_init_producer_id_response *rsp = p->rsp;
    rsp->error_code = txn_kerr(err, p->ver, 4);
    rsp->producer_id = err ? -1 : pid;
    rsp->producer_epoch = err ? -1 : epoch;
    kafka_init_producer_id_response_encode(&p->resp->w, p->ver, rsp);
    net_resp_ready(p->resp);
}

void kh_init_producer_id(kreq *q)
{
    kafka_init_producer_id_request req;
    if (kafka_init_producer_id_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_init_producer_id_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_init_producer_id_response_init(rsp);
    int16_t aerr = KERR_NONE;
    if (req.transactional_id.len >= 0) {
        if (!kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID, req.transactional_id))
            aerr = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (!kreq_cluster_allowed(q, ACL_OP_IDEMPOTENT_WRITE)) {
        /* KIP-679: WRITE on any topic is enough for an idempotent producer */
        int any = 0;
        for (topic *t = broker_topics(q->b); t && !any; t = t->lnext)
            any = kreq_allowed(q, ACL_OP_WRITE, ACL_R_TOPIC, kstr_c(t->name));
        if (!any)
            aerr = KERR_CLUSTER_AUTHORIZATION_FAILED;
    }
    if (aerr) {
        rsp->error_code = aerr;
        rsp->producer_id = -1;
        rsp->producer_epoch = -1;
        kafka_init_producer_id_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    int64_t pid = q->ver >= 3 ? req.producer_id : -1;
    int16_t epoch = q->ver >= 3 ? req.producer_epoch : -1;
    txn_init_producer(ksrv_txn(q->ks), req.transactional_id, req.transaction_timeout_ms, pid,
                      epoch, init_done, park(q, rsp));
}

/* AddPartitionsToTxn -------------------------------------------------------- */

static void set_all_partitions(kafka_add_partitions_to_txn_response *rsp, int16_t err)
{
    for (int32_t i = 0; i < rsp->results_by_topic_v3_and_below.n; i++) {
        kafka_add_partitions_to_txn_response_add_partitions_to_txn_topic_result *t =
            &rsp->results_by_topic_v3_and_below.items[i];
        for (int32_t j = 0; j < t->results_by_partition.n; j++)
            t->results_by_partition.items[j].partition_error_code = err;
    }
}

static void add_parts_done(void *arg, int err, int64_t pid, int16_t epoch)
{
    (void)pid;
    (void)epoch;
    txn_park *p = arg;
    kafka_add_partitions_to_txn_response *rsp = p->rsp;
    set_all_partitions(rsp, txn_kerr(err, p->ver, 2));
    kafka_add_partitions_to_txn_response_encode(&p->resp->w, p->ver, rsp);
    net_resp_ready(p->resp);
}

void kh_add_partitions_to_txn(kreq *q)
{
    kafka_add_partitions_to_txn_request req;
    if (kafka_add_partitions_to_txn_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_add_partitions_to_txn_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_add_partitions_to_txn_response_init(rsp);
    int32_t nt = req.v3_and_below_topics.n > 0 ? req.v3_and_below_topics.n : 0;
    KARR_ALLOC(q, rsp->results_by_topic_v3_and_below, nt);
    int total = 0, unknown = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req.v3_and_below_topics.items[i].partitions.n > 0
                     ? req.v3_and_below_topics.items[i].partitions.n : 0;
    txn_tp *tps = kreq_alloc(q, (size_t)total, sizeof(*tps));
    int n = 0;
    int tid_denied = !kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID,
                                   req.v3_and_below_transactional_id);
    for (int32_t i = 0; i < nt; i++) {
        kafka_add_partitions_to_txn_request_add_partitions_to_txn_topic *t =
            &req.v3_and_below_topics.items[i];
        int16_t aerr = tid_denied ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                       : kreq_allowed(q, ACL_OP_WRITE, ACL_R_TOPIC, t->name)
                           ? KERR_NONE
                           : KERR_TOPIC_AUTHORIZATION_FAILED;
        kafka_add_partitions_to_txn_response_add_partitions_to_txn_topic_result *rt =
            &rsp->results_by_topic_v3_and_below.items[i];
        rt->name = kreq_strdup(q, t->name);
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        KARR_ALLOC(q, rt->results_by_partition, np);
        topic *top = broker_topic_find(q->b, t->name);
        for (int32_t j = 0; j < np; j++) {
            int32_t part = t->partitions.items[j];
            rt->results_by_partition.items[j].partition_index = part;
            if (aerr) {
                rt->results_by_partition.items[j].partition_error_code = aerr;
                unknown++;
            } else if (!top || part < 0 || part >= top->n_parts) {
                rt->results_by_partition.items[j].partition_error_code =
                    KERR_UNKNOWN_TOPIC_OR_PARTITION;
                unknown++;
            } else {
                tps[n++] = (txn_tp){rt->name, part};
            }
        }
    }
    if (unknown) {
        /* Kafka adds nothing when a partition is unknown. */
        for (int32_t i = 0; i < nt; i++) {
            kafka_add_partitions_to_txn_response_add_partitions_to_txn_topic_result *rt =
                &rsp->results_by_topic_v3_and_below.items[i];
            for (int32_t j = 0; j < rt->results_by_partition.n; j++)
                if (rt->results_by_partition.items[j].partition_error_code == KERR_NONE)
                    rt->results_by_partition.items[j].partition_error_code =
                        KERR_OPERATION_NOT_ATTEMPTED;
        }
        kafka_add_partitions_to_txn_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    txn_add_partitions(ksrv_txn(q->ks), req.v3_and_below_transactional_id,
                       req.v3_and_below_producer_id, req.v3_and_below_producer_epoch, tps, n,
                       add_parts_done, park(q, rsp));
}

/* AddOffsetsToTxn ------------------------------------------------------------ */

static void add_offsets_done(void *arg, int err, int64_t pid, int16_t epoch)
{
    (void)pid;
    (void)epoch;
    txn_park *p = arg;
    kafka_add_offsets_to_txn_response *rsp = p->rsp;
    rsp->error_code = txn_kerr(err, p->ver, 2);
    kafka_add_offsets_to_txn_response_encode(&p->resp->w, p->ver, rsp);
    net_resp_ready(p->resp);
}

void kh_add_offsets_to_txn(kreq *q)
{
    kafka_add_offsets_to_txn_request req;
    if (kafka_add_offsets_to_txn_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_add_offsets_to_txn_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_add_offsets_to_txn_response_init(rsp);
    int16_t aerr = !kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID, req.transactional_id)
                       ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                   : !kreq_allowed(q, ACL_OP_READ, ACL_R_GROUP, req.group_id)
                       ? KERR_GROUP_AUTHORIZATION_FAILED
                       : KERR_NONE;
    if (aerr) {
        rsp->error_code = aerr;
        kafka_add_offsets_to_txn_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    txn_add_offsets(ksrv_txn(q->ks), req.transactional_id, req.producer_id, req.producer_epoch,
                    req.group_id, add_offsets_done, park(q, rsp));
}

/* TxnOffsetCommit ------------------------------------------------------------- */

static void txn_commit_done(void *arg, int err, int64_t pid, int16_t epoch)
{
    (void)pid;
    (void)epoch;
    txn_park *p = arg;
    kafka_txn_offset_commit_response *rsp = p->rsp;
    int16_t kerr = txn_kerr(err, p->ver, 2);
    for (int32_t i = 0; i < rsp->topics.n; i++)
        for (int32_t j = 0; j < rsp->topics.items[i].partitions.n; j++)
            if (rsp->topics.items[i].partitions.items[j].error_code == KERR_NONE)
                rsp->topics.items[i].partitions.items[j].error_code = kerr;
    kafka_txn_offset_commit_response_encode(&p->resp->w, p->ver, rsp);
    net_resp_ready(p->resp);
}

void kh_txn_offset_commit(kreq *q)
{
    kafka_txn_offset_commit_request req;
    if (kafka_txn_offset_commit_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_txn_offset_commit_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_txn_offset_commit_response_init(rsp);
    /* KIP-447: the generation is checked only when the producer gives one. */
    int16_t gerr = KERR_NONE;
    if (!kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID, req.transactional_id))
        gerr = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    else if (!kreq_allowed(q, ACL_OP_READ, ACL_R_GROUP, req.group_id))
        gerr = KERR_GROUP_AUTHORIZATION_FAILED;
    else if (req.group_id.len <= 0)
        gerr = KERR_INVALID_GROUP_ID;
    else if (q->ver >= 3 && (req.generation_id >= 0 || req.member_id.len > 0))
        gerr = kerr_from_cn(grp_check_commit(ksrv_groups(q->ks), req.group_id, req.member_id,
                                             req.group_instance_id, req.generation_id));
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req.topics.items[i].partitions.n > 0 ? req.topics.items[i].partitions.n : 0;
    goff_commit_item *items = kreq_alloc(q, (size_t)total, sizeof(*items));
    int n = 0;
    KARR_ALLOC(q, rsp->topics, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_txn_offset_commit_request_txn_offset_commit_request_topic *t = &req.topics.items[i];
        kafka_txn_offset_commit_response_txn_offset_commit_response_topic *rt =
            &rsp->topics.items[i];
        rt->name = kreq_strdup(q, t->name);
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        KARR_ALLOC(q, rt->partitions, np);
        topic *top = broker_topic_find(q->b, t->name);
        int16_t terr = gerr ? gerr
                       : kreq_allowed(q, ACL_OP_READ, ACL_R_TOPIC, t->name)
                           ? KERR_NONE
                           : KERR_TOPIC_AUTHORIZATION_FAILED;
        for (int32_t j = 0; j < np; j++) {
            kafka_txn_offset_commit_request_txn_offset_commit_request_partition *p =
                &t->partitions.items[j];
            kafka_txn_offset_commit_response_txn_offset_commit_response_partition *rp =
                &rt->partitions.items[j];
            rp->partition_index = p->partition_index;
            rp->error_code = kh_offset_commit_error(q, top, p->partition_index,
                                                    p->committed_metadata, terr);
            if (rp->error_code == KERR_NONE) {
                items[n++] = (goff_commit_item){rt->name, p->partition_index, p->committed_offset,
                                                q->ver >= 2 ? p->committed_leader_epoch : -1,
                                                p->committed_metadata, -1};
            }
        }
    }
    if (gerr || n == 0) {
        kafka_txn_offset_commit_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    txn_offset_commit(ksrv_txn(q->ks), req.transactional_id, req.group_id, req.producer_id,
                      req.producer_epoch, items, n, txn_commit_done, park(q, rsp));
}

/* EndTxn ----------------------------------------------------------------------- */

static void end_done(void *arg, int err, int64_t pid, int16_t epoch)
{
    (void)pid;
    (void)epoch;
    txn_park *p = arg;
    kafka_end_txn_response *rsp = p->rsp;
    rsp->error_code = txn_kerr(err, p->ver, 2);
    kafka_end_txn_response_encode(&p->resp->w, p->ver, rsp);
    net_resp_ready(p->resp);
}

void kh_end_txn(kreq *q)
{
    kafka_end_txn_request req;
    if (kafka_end_txn_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_end_txn_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_end_txn_response_init(rsp);
    if (!kreq_allowed(q, ACL_OP_WRITE, ACL_R_TXN_ID, req.transactional_id)) {
        rsp->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        kafka_end_txn_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    txn_end(ksrv_txn(q->ks), req.transactional_id, req.producer_id, req.producer_epoch,
            req.committed, end_done, park(q, rsp));
}

/* DescribeTransactions --------------------------------------------------------- */

void kh_describe_transactions(kreq *q)
{
    kafka_describe_transactions_request req;
    if (kafka_describe_transactions_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_transactions_response rsp;
    kafka_describe_transactions_response_init(&rsp);
    int32_t n = req.transactional_ids.n > 0 ? req.transactional_ids.n : 0;
    KARR_ALLOC(q, rsp.transaction_states, n);
    for (int32_t i = 0; i < n; i++) {
        kafka_describe_transactions_response_transaction_state *s =
            &rsp.transaction_states.items[i];
        kafka_describe_transactions_response_transaction_state_init(s);
        s->transactional_id = req.transactional_ids.items[i];
        s->transaction_state = kstr_c("");
        txn_info ti;
        if (!kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TXN_ID, s->transactional_id)) {
            s->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            s->producer_id = -1;
            s->producer_epoch = -1;
            s->transaction_start_time_ms = -1;
            KARR_ALLOC(q, s->topics, 0);
            continue;
        }
        int drc = txn_describe(ksrv_txn(q->ks), s->transactional_id, &ti);
        if (drc < 0) {
            s->error_code = drc == -CN_ENOENT ? KERR_TRANSACTIONAL_ID_NOT_FOUND : kerr_from_cn(drc);
            s->producer_id = -1;
            s->producer_epoch = -1;
            s->transaction_start_time_ms = -1;
            KARR_ALLOC(q, s->topics, 0);
            continue;
        }
        s->error_code = KERR_NONE;
        s->transaction_state = kstr_c(txn_state_name(ti.state));
        s->transaction_timeout_ms = ti.timeout_ms;
        s->transaction_start_time_ms = ti.start_ms;
        s->producer_id = ti.producer_id;
        s->producer_epoch = ti.producer_epoch;
        /* Group the partitions by topic, in first-seen order. */
        KARR_ALLOC(q, s->topics, ti.n_parts);
        int32_t nt = 0;
        for (int j = 0; j < ti.n_parts; j++) {
            int32_t k = 0;
            while (k < nt && !(s->topics.items[k].topic.len == ti.parts[j].topic.len &&
                               memcmp(s->topics.items[k].topic.ptr, ti.parts[j].topic.ptr,
                                      (size_t)ti.parts[j].topic.len) == 0))
                k++;
            kafka_describe_transactions_response_topic_data *td = &s->topics.items[k];
            if (k == nt) {
                nt++;
                td->topic = kreq_strdup(q, ti.parts[j].topic);
                td->partitions.items = kreq_alloc(q, (size_t)ti.n_parts, sizeof(int32_t));
                td->partitions.n = 0;
            }
            td->partitions.items[td->partitions.n++] = ti.parts[j].partition;
        }
        s->topics.n = nt;
    }
    kafka_describe_transactions_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* ListTransactions -------------------------------------------------------------- */

typedef struct list_ctx {
    kreq *q;
    const kafka_list_transactions_request *req;
    uint32_t state_mask;            /* 0 = every state */
    int64_t now;
    kafka_list_transactions_response_transaction_state *items;
    int32_t n, cap;
} list_ctx;

static void list_one(void *arg, const txn_info *ti)
{
    list_ctx *lc = arg;
    if (lc->state_mask && !(lc->state_mask & (1u << ti->state)))
        return;
    if (!kreq_allowed(lc->q, ACL_OP_DESCRIBE, ACL_R_TXN_ID, kstr_c(ti->tid)))
        return; /* only the ids the client may describe */
    if (lc->req->producer_id_filters.n > 0) {
        int match = 0;
        for (int32_t i = 0; i < lc->req->producer_id_filters.n && !match; i++)
            match = lc->req->producer_id_filters.items[i] == ti->producer_id;
        if (!match)
            return;
    }
    /* v1 duration filter: transactions running longer than it (ms). */
    if (lc->q->ver >= 1 && lc->req->duration_filter >= 0 &&
        (ti->state != TXN_ONGOING || ti->start_ms < 0 ||
         lc->now - ti->start_ms < lc->req->duration_filter))
        return;
    if (lc->n == lc->cap) {
        int32_t ncap = lc->cap ? lc->cap * 2 : 16;
        kafka_list_transactions_response_transaction_state *ni =
            kreq_alloc(lc->q, (size_t)ncap, sizeof(*ni));
        if (lc->n)
            memcpy(ni, lc->items, (size_t)lc->n * sizeof(*ni));
        lc->items = ni;
        lc->cap = ncap;
    }
    kafka_list_transactions_response_transaction_state *it = &lc->items[lc->n++];
    it->transactional_id = kreq_strdup(lc->q, kstr_c(ti->tid));
    it->producer_id = ti->producer_id;
    it->transaction_state = kstr_c(txn_state_name(ti->state));
}

void kh_list_transactions(kreq *q)
{
    kafka_list_transactions_request req;
    if (kafka_list_transactions_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_list_transactions_response rsp;
    kafka_list_transactions_response_init(&rsp);
    list_ctx lc = {.q = q, .req = &req, .now = loop_wall_ms()};
    int32_t nf = req.state_filters.n > 0 ? req.state_filters.n : 0;
    kstr *unknown = kreq_alloc(q, (size_t)nf, sizeof(*unknown));
    int32_t n_unknown = 0;
    for (int32_t i = 0; i < nf; i++) {
        int s = txn_state_parse(req.state_filters.items[i]);
        if (s < 0)
            unknown[n_unknown++] = req.state_filters.items[i];
        else
            lc.state_mask |= 1u << s;
    }
    rsp.unknown_state_filters.items = unknown;
    rsp.unknown_state_filters.n = n_unknown;
    /* Only unknown states asked for: nothing matches. */
    if (!(nf > 0 && lc.state_mask == 0))
        txn_foreach(ksrv_txn(q->ks), list_one, &lc);
    rsp.error_code = KERR_NONE;
    rsp.transaction_states.items = lc.items;
    rsp.transaction_states.n = lc.n;
    kafka_list_transactions_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* DescribeProducers ---------------------------------------------------------------- */

typedef struct prod_ctx {
    kreq *q;
    kafka_describe_producers_response_producer_state *items;
    int32_t n, cap;
} prod_ctx;

static void prod_one(void *arg, const pst_producer *p)
{
    prod_ctx *pc = arg;
    if (pc->n == pc->cap)
        return;
    kafka_describe_producers_response_producer_state *s = &pc->items[pc->n++];
    s->producer_id = p->pid;
    s->producer_epoch = p->epoch;
    s->last_sequence = p->n_batches > 0
                           ? p->batches[(p->head + p->n_batches - 1) % PST_BATCHES].last_seq
                           : -1;
    s->last_timestamp = p->last_timestamp;
    s->coordinator_epoch = p->coordinator_epoch;
    s->current_txn_start_offset = p->txn_first_offset;
}

void kh_describe_producers(kreq *q)
{
    kafka_describe_producers_request req;
    if (kafka_describe_producers_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_producers_response rsp;
    kafka_describe_producers_response_init(&rsp);
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp.topics, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_describe_producers_request_topic_request *t = &req.topics.items[i];
        kafka_describe_producers_response_topic_response *rt = &rsp.topics.items[i];
        rt->name = kreq_strdup(q, t->name);
        int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
        KARR_ALLOC(q, rt->partitions, np);
        int denied = !kreq_allowed(q, ACL_OP_READ, ACL_R_TOPIC, t->name);
        for (int32_t j = 0; j < np; j++) {
            kafka_describe_producers_response_partition_response *rp = &rt->partitions.items[j];
            rp->partition_index = t->partition_indexes.items[j];
            rp->error_message = NULL_STR;
            partition *p = denied ? NULL : broker_partition(q->b, t->name, rp->partition_index);
            if (denied) {
                rp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                KARR_ALLOC(q, rp->active_producers, 0);
                continue;
            }
            if (!p) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                KARR_ALLOC(q, rp->active_producers, 0);
                continue;
            }
            rp->error_code = KERR_NONE;
            prod_ctx pc = {.q = q, .cap = pst_count(p->ps)};
            pc.items = kreq_alloc(q, (size_t)pc.cap, sizeof(*pc.items));
            pst_foreach(p->ps, prod_one, &pc);
            rp->active_producers.items = pc.items;
            rp->active_producers.n = pc.n;
        }
    }
    kafka_describe_producers_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
