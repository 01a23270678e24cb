/* OffsetCommit, OffsetFetch, OffsetDelete and the group admin APIs
 * (ListGroups, DescribeGroups, DeleteGroups). Commits and deletions are
 * answered after the offsets log is fsynced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "group/group.h"
#include "group/offsets.h"
#include "kafka/kafka.h"
#include "net/loop.h"
#include "txn/txn.h"
#include "util/common.h"
#include "util/slog.h"

#define NULL_STR ((kstr){NULL, -1})
#define AUTH_OPS_UNSET INT32_MIN

/* A response parked until the offsets log is durable past target. */
typedef struct durable_park {
    durable_wait w;                 /* first: handed back by the broker */
    net_resp *resp;
    int16_t ver;
    void (*encode)(struct durable_park *dp, int status);
    void *rsp;                      /* the response struct, in the slot arena */
} durable_park;

static void durable_done(durable_wait *w, int status)
{
    durable_park *dp = (durable_park *)w;
    dp->encode(dp, status);
    net_resp_ready(dp->resp);
}

/* A store write that did not become durable: the coordinator moved (a
 * cluster; the client finds the new one and retries) or the storage failed. */
static int16_t store_error(int status)
{
    return status == -CN_ENOTLEADER || status == -CN_ELEADERWAIT ? KERR_NOT_COORDINATOR
                                                                   : KERR_KAFKA_STORAGE_ERROR;
}

/* Answer after fsync when target >= 0, at once otherwise. */
static void answer_when_durable(kreq *q, int64_t target, void *rsp,
                                void (*encode)(durable_park *dp, int status))
{
    durable_park *dp = kreq_alloc(q, 1, sizeof(*dp));
    dp->resp = q->resp;
    dp->ver = q->ver;
    dp->encode = encode;
    dp->rsp = rsp;
    partition *p = NULL;
    if (target < 0 || broker_internal_partition(q->b, BROKER_OFFSETS_TOPIC, &p) < 0) {
        durable_done(&dp->w, 0);
        return;
    }
    dp->w.target = target;
    dp->w.cb = durable_done;
    broker_wait_durable(q->b, p, &dp->w);
}

/* OffsetCommit --------------------------------------------------------------- */

int16_t kh_offset_commit_error(kreq *q, const topic *t, int32_t part, kstr metadata,
                               int16_t group_error)
{
    if (group_error)
        return group_error;
    if (!t || part < 0 || part >= t->n_parts)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (metadata.len > broker_config(q->b)->offset_metadata_max_bytes)
        return KERR_OFFSET_METADATA_TOO_LARGE;
    return KERR_NONE;
}

static void commit_encode(durable_park *dp, int status)
{
    kafka_offset_commit_response *rsp = dp->rsp;
    if (status < 0) /* the commit did not become durable */
        for (int32_t i = 0; i < rsp->topics.n; i++)
            for (int32_t j = 0; j < rsp->topics.items[i].partitions.n; j++)
                if (rsp->topics.items[i].partitions.items[j].error_code == KERR_NONE)
                    rsp->topics.items[i].partitions.items[j].error_code = store_error(status);
    kafka_offset_commit_response_encode(&dp->resp->w, dp->ver, rsp);
}

void kh_offset_commit(kreq *q)
{
    kafka_offset_commit_request req;
    if (kafka_offset_commit_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_offset_commit_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_offset_commit_response_init(rsp);
    int32_t generation = q->ver >= 1 ? req.generation_id_or_member_epoch : -1;
    kstr member = q->ver >= 1 ? req.member_id : kstr_c("");
    int16_t gerr = !kreq_allowed(q, ACL_OP_READ, ACL_R_GROUP, req.group_id)
                       ? KERR_GROUP_AUTHORIZATION_FAILED
                       : kerr_from_cn(grp_check_commit(ksrv_groups(q->ks), req.group_id, member,
                                                       req.group_instance_id, generation));
    int64_t now = loop_wall_ms();
    int64_t expire = -1;
    if (q->ver >= 2 && q->ver <= 4 && req.retention_time_ms >= 0)
        expire = now + req.retention_time_ms;
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req.topics.items[i].partitions.n > 0 ? req.topics.items[i].partitions.n : 0;
    goff_commit_item *items = kreq_alloc(q, (size_t)total, sizeof(*items));
    int n_items = 0;
    KARR_ALLOC(q, rsp->topics, nt);
    for (int32_t i = 0; i < nt; i++) {
        kafka_offset_commit_request_offset_commit_request_topic *t = &req.topics.items[i];
        kafka_offset_commit_response_offset_commit_response_topic *rt = &rsp->topics.items[i];
        rt->name = kreq_strdup(q, t->name);
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        KARR_ALLOC(q, rt->partitions, np);
        topic *top = broker_topic_find(q->b, t->name);
        int16_t terr = gerr ? gerr
                       : kreq_allowed(q, ACL_OP_READ, ACL_R_TOPIC, t->name)
                           ? KERR_NONE
                           : KERR_TOPIC_AUTHORIZATION_FAILED;
        for (int32_t j = 0; j < np; j++) {
            kafka_offset_commit_request_offset_commit_request_partition *p = &t->partitions.items[j];
            kafka_offset_commit_response_offset_commit_response_partition *rp =
                &rt->partitions.items[j];
            rp->partition_index = p->partition_index;
            rp->error_code = kh_offset_commit_error(q, top, p->partition_index,
                                                    p->committed_metadata, terr);
            if (rp->error_code == KERR_NONE) {
                goff_commit_item *it = &items[n_items++];
                it->topic = t->name;
                it->partition = p->partition_index;
                it->offset = p->committed_offset;
                it->leader_epoch = q->ver >= 6 ? p->committed_leader_epoch : -1;
                it->metadata = p->committed_metadata;
                it->expire_ms = expire;
            }
        }
    }
    int64_t target = -1;
    int crc = n_items > 0 ? goff_commit(ksrv_offsets(q->ks), req.group_id, items, n_items, now,
                                        &target)
                          : 0;
    if (crc < 0) {
        for (int32_t i = 0; i < nt; i++)
            for (int32_t j = 0; j < rsp->topics.items[i].partitions.n; j++)
                if (rsp->topics.items[i].partitions.items[j].error_code == KERR_NONE)
                    rsp->topics.items[i].partitions.items[j].error_code = store_error(crc);
        target = -1;
    }
    if (n_items > 0)
        goff_maybe_compact(ksrv_offsets(q->ks));
    answer_when_durable(q, target, rsp, commit_encode);
}

/* OffsetFetch ------------------------------------------------------------------ */

typedef struct fetch_part {
    kstr topic;
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kstr metadata;
} fetch_part;

typedef struct fetch_all {
    kreq *q;
    fetch_part *parts;
    int n, cap;
} fetch_all;

static void collect(void *arg, const char *tname, int32_t part, const goff_entry *e)
{
    fetch_all *fa = arg;
    if (fa->n == fa->cap) {
        int ncap = fa->cap ? fa->cap * 2 : 16;
        fetch_part *np = kreq_alloc(fa->q, (size_t)ncap, sizeof(*np));
        if (fa->n)
            memcpy(np, fa->parts, (size_t)fa->n * sizeof(*np));
        fa->parts = np;
        fa->cap = ncap;
    }
    fetch_part *p = &fa->parts[fa->n++];
    p->topic = kreq_strdup(fa->q, kstr_c(tname));
    p->partition = part;
    p->offset = e->offset;
    p->epoch = e->leader_epoch;
    p->metadata = e->metadata ? kreq_strdup(fa->q, kstr_c(e->metadata)) : NULL_STR;
}

/* The committed partitions of group: for the listed topics (n_topics >= 0),
 * or all of them. Output grouped by topic, in request order. */
typedef struct topic_req {
    kstr name;
    const int32_t *parts;
    int32_t n_parts;
} topic_req;

typedef struct topic_out {
    kstr name;
    fetch_part *parts;
    int32_t n_parts;
} topic_out;

static int32_t fetch_group(kreq *q, kstr group, const topic_req *tr, int32_t n_topics,
                           topic_out **out)
{
    goff_store *gs = ksrv_offsets(q->ks);
    if (n_topics >= 0) {
        topic_out *to = kreq_alloc(q, (size_t)n_topics, sizeof(*to));
        for (int32_t i = 0; i < n_topics; i++) {
            to[i].name = tr[i].name;
            to[i].n_parts = tr[i].n_parts > 0 ? tr[i].n_parts : 0;
            to[i].parts = kreq_alloc(q, (size_t)to[i].n_parts, sizeof(fetch_part));
            for (int32_t j = 0; j < to[i].n_parts; j++) {
                fetch_part *p = &to[i].parts[j];
                p->topic = tr[i].name;
                p->partition = tr[i].parts[j];
                const goff_entry *e = goff_get(gs, group, tr[i].name, p->partition);
                p->offset = e ? e->offset : -1;
                p->epoch = e ? e->leader_epoch : -1;
                p->metadata = e && e->metadata ? kreq_strdup(q, kstr_c(e->metadata))
                                                : (e ? NULL_STR : kstr_c(""));
            }
        }
        *out = to;
        return n_topics;
    }
    fetch_all fa = {.q = q};
    goff_foreach(gs, group, collect, &fa);
    topic_out *to = kreq_alloc(q, (size_t)fa.n, sizeof(*to));
    int32_t nt = 0;
    for (int i = 0; i < fa.n; i++) {
        if (nt == 0 || to[nt - 1].name.len != fa.parts[i].topic.len ||
            memcmp(to[nt - 1].name.ptr, fa.parts[i].topic.ptr, (size_t)fa.parts[i].topic.len)) {
            to[nt].name = fa.parts[i].topic;
            to[nt].parts = &fa.parts[i];
            to[nt].n_parts = 0;
            nt++;
        }
        to[nt - 1].n_parts++;
    }
    *out = to;
    return nt;
}

/* OffsetFetch v7+ require_stable: a partition with a transactional offset
 * still pending is UNSTABLE_OFFSET_COMMIT (the client retries). */
static int16_t unstable(kreq *q, int require_stable, kstr group, kstr tname, int32_t part,
                        int64_t *offset)
{
    if (q->ver < 7 || !require_stable ||
        !txn_offsets_pending(ksrv_txn(q->ks), group, tname, part))
        return KERR_NONE;
    *offset = -1;
    return KERR_UNSTABLE_OFFSET_COMMIT;
}

/* Not the coordinator (a cluster) or not ready: every requested item
 * carries err, and nothing is read from the store. */
/* DESCRIBE on each topic of an OffsetFetch answer (the authorizer): with
 * every topic asked for (explicit 0), the ones the client may not describe
 * are left out; named ones are kept and marked per partition (denied[i]).
 * Returns the new count. */
static int32_t described_only(kreq *q, topic_out *to, int32_t nt, int explicit,
                              uint8_t **denied)
{
    *denied = kreq_alloc(q, (size_t)nt + 1, 1);
    int32_t k = 0;
    for (int32_t i = 0; i < nt; i++) {
        int ok = kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_TOPIC, to[i].name);
        if (!ok && !explicit)
            continue;
        to[k] = to[i];
        (*denied)[k++] = !ok;
    }
    return k;
}

static void offset_fetch_refuse(kreq *q, const kafka_offset_fetch_request *req,
                                kafka_offset_fetch_response *rsp, int16_t err)
{
    if (q->ver < 8) {
        int32_t n = req->topics.n > 0 ? req->topics.n : 0;
        KARR_ALLOC(q, rsp->topics, n);
        for (int32_t i = 0; i < n; i++) {
            rsp->topics.items[i].name = req->topics.items[i].name;
            int32_t np = req->topics.items[i].partition_indexes.n;
            np = np > 0 ? np : 0;
            KARR_ALLOC(q, rsp->topics.items[i].partitions, np);
            for (int32_t j = 0; j < np; j++) {
                kafka_offset_fetch_response_offset_fetch_response_partition *p =
                    &rsp->topics.items[i].partitions.items[j];
                p->partition_index = req->topics.items[i].partition_indexes.items[j];
                p->committed_offset = -1;
                p->committed_leader_epoch = -1;
                p->metadata = kstr_c("");
                p->error_code = err;
            }
        }
        rsp->error_code = err;
    } else {
        int32_t ng = req->groups.n > 0 ? req->groups.n : 0;
        KARR_ALLOC(q, rsp->groups, ng);
        for (int32_t g = 0; g < ng; g++) {
            rsp->groups.items[g].group_id = req->groups.items[g].group_id;
            rsp->groups.items[g].error_code = err;
            KARR_ALLOC(q, rsp->groups.items[g].topics, 0);
        }
    }
    kafka_offset_fetch_response_encode(&q->resp->w, q->ver, rsp);
    kreq_done(q);
}

void kh_offset_fetch(kreq *q)
{
    kafka_offset_fetch_request req;
    if (kafka_offset_fetch_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_offset_fetch_response rsp;
    kafka_offset_fetch_response_init(&rsp);
    int serr = grp_coord_serving(ksrv_groups(q->ks));
    if (serr < 0) {
        offset_fetch_refuse(q, &req, &rsp, kerr_from_cn(serr));
        return;
    }
    if (q->ver < 8 && !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_GROUP, req.group_id)) {
        offset_fetch_refuse(q, &req, &rsp, KERR_GROUP_AUTHORIZATION_FAILED);
        return;
    }
    uint8_t *denied;
    if (q->ver < 8) {
        int32_t n = req.topics.n;
        if (n < 0 && q->ver < 2)
            n = 0; /* v0/v1: topics cannot be null */
        topic_req *tr = kreq_alloc(q, (size_t)(n > 0 ? n : 0), sizeof(*tr));
        for (int32_t i = 0; i < n; i++) {
            tr[i].name = req.topics.items[i].name;
            tr[i].parts = req.topics.items[i].partition_indexes.items;
            tr[i].n_parts = req.topics.items[i].partition_indexes.n;
        }
        topic_out *to;
        int32_t nt = fetch_group(q, req.group_id, tr, n, &to);
        nt = described_only(q, to, nt, n >= 0, &denied);
        KARR_ALLOC(q, rsp.topics, nt);
        for (int32_t i = 0; i < nt; i++) {
            rsp.topics.items[i].name = to[i].name;
            KARR_ALLOC(q, rsp.topics.items[i].partitions, to[i].n_parts);
            for (int32_t j = 0; j < to[i].n_parts; j++) {
                kafka_offset_fetch_response_offset_fetch_response_partition *p =
                    &rsp.topics.items[i].partitions.items[j];
                p->partition_index = to[i].parts[j].partition;
                p->committed_offset = to[i].parts[j].offset;
                p->committed_leader_epoch = to[i].parts[j].epoch;
                p->metadata = to[i].parts[j].metadata;
                p->error_code = unstable(q, req.require_stable, req.group_id, to[i].name,
                                         p->partition_index, &p->committed_offset);
                if (denied[i]) {
                    p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                    p->committed_offset = -1;
                    p->metadata = kstr_c("");
                }
            }
        }
        rsp.error_code = req.group_id.len <= 0 && q->ver >= 2 ? KERR_INVALID_GROUP_ID : KERR_NONE;
    } else {
        int32_t ng = req.groups.n > 0 ? req.groups.n : 0;
        KARR_ALLOC(q, rsp.groups, ng);
        for (int32_t g = 0; g < ng; g++) {
            kafka_offset_fetch_request_offset_fetch_request_group *rg = &req.groups.items[g];
            kafka_offset_fetch_response_offset_fetch_response_group *og = &rsp.groups.items[g];
            og->group_id = rg->group_id;
            og->error_code = rg->group_id.len <= 0 ? KERR_INVALID_GROUP_ID : KERR_NONE;
            if (!kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_GROUP, rg->group_id)) {
                og->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
                KARR_ALLOC(q, og->topics, 0);
                continue;
            }
            int32_t n = rg->topics.n;
            topic_req *tr = kreq_alloc(q, (size_t)(n > 0 ? n : 0), sizeof(*tr));
            for (int32_t i = 0; i < n; i++) {
                tr[i].name = rg->topics.items[i].name;
                tr[i].parts = rg->topics.items[i].partition_indexes.items;
                tr[i].n_parts = rg->topics.items[i].partition_indexes.n;
            }
            topic_out *to;
            int32_t nt = fetch_group(q, rg->group_id, tr, n, &to);
            nt = described_only(q, to, nt, n >= 0, &denied);
            KARR_ALLOC(q, og->topics, nt);
            for (int32_t i = 0; i < nt; i++) {
                og->topics.items[i].name = to[i].name;
                KARR_ALLOC(q, og->topics.items[i].partitions, to[i].n_parts);
                for (int32_t j = 0; j < to[i].n_parts; j++) {
                    kafka_offset_fetch_response_offset_fetch_response_partitions *p =
                        &og->topics.items[i].partitions.items[j];
                    p->partition_index = to[i].parts[j].partition;
                    p->committed_offset = to[i].parts[j].offset;
                    p->committed_leader_epoch = to[i].parts[j].epoch;
                    p->metadata = to[i].parts[j].metadata;
                    p->error_code = unstable(q, req.require_stable, rg->group_id, to[i].name,
                                             p->partition_index, &p->committed_offset);
                    if (denied[i]) {
                        p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                        p->committed_offset = -1;
                        p->metadata = kstr_c("");
                    }
                }
            }
        }
    }
    kafka_offset_fetch_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

/* OffsetDelete ------------------------------------------------------------------ */

static void offset_delete_encode(durable_park *dp, int status)
{
    kafka_offset_delete_response *rsp = dp->rsp;
    if (status < 0 && rsp->error_code == KERR_NONE)
        rsp->error_code = store_error(status);
    kafka_offset_delete_response_encode(&dp->resp->w, dp->ver, rsp);
}

/* ConsumerProtocolSubscription (the "consumer" protocol's member metadata):
 * i16 version, [string topic], then fields added by later versions. 1 if
 * *arg (a kstr topic name) is among the topics. */
static int subscription_has(void *arg, kbytes meta)
{
    const kstr *topic_name = arg;
    kr r;
    kr_init(&r, meta.ptr, meta.len > 0 ? (size_t)meta.len : 0, NULL);
    (void)kr_i16(&r);
    int32_t n = kr_i32(&r);
    for (int32_t i = 0; i < n && !r.err; i++) {
        kstr t = kr_str(&r);
        if (!r.err && t.len == topic_name->len &&
            memcmp(t.ptr, topic_name->ptr, (size_t)t.len) == 0)
            return 1;
    }
    return 0;
}

void kh_offset_delete(kreq *q)
{
    kafka_offset_delete_request req;
    if (kafka_offset_delete_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_offset_delete_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_offset_delete_response_init(rsp);
    grp_coord *gc = ksrv_groups(q->ks);
    goff_store *gs = ksrv_offsets(q->ks);
    int serr = grp_coord_serving(gc);
    if (serr < 0) {
        rsp->error_code = kerr_from_cn(serr);
        KARR_ALLOC(q, rsp->topics, 0);
        kafka_offset_delete_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    if (!kreq_allowed(q, ACL_OP_DELETE, ACL_R_GROUP, req.group_id)) {
        rsp->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        KARR_ALLOC(q, rsp->topics, 0);
        kafka_offset_delete_response_encode(&q->resp->w, q->ver, rsp);
        kreq_done(q);
        return;
    }
    int known = grp_known(gc, req.group_id);
    rsp->error_code = known ? KERR_NONE : KERR_GROUP_ID_NOT_FOUND;
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    KARR_ALLOC(q, rsp->topics, nt);
    int64_t target = -1;
    for (int32_t i = 0; i < nt; i++) {
        kafka_offset_delete_request_offset_delete_request_topic *t = &req.topics.items[i];
        kafka_offset_delete_response_offset_delete_response_topic *rt = &rsp->topics.items[i];
        rt->name = kreq_strdup(q, t->name);
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        KARR_ALLOC(q, rt->partitions, np);
        int subscribed = grp_any_member_meta(gc, req.group_id, "consumer", subscription_has,
                                             &t->name);
        topic *top = broker_topic_find(q->b, t->name);
        for (int32_t j = 0; j < np; j++) {
            kafka_offset_delete_response_offset_delete_response_partition *rp =
                &rt->partitions.items[j];
            int32_t part = t->partitions.items[j].partition_index;
            rp->partition_index = part;
            if (!known) {
                rp->error_code = KERR_GROUP_ID_NOT_FOUND;
            } else if (subscribed) {
                rp->error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
            } else if (!top || part < 0 || part >= top->n_parts) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                int64_t t1 = -1;
                rp->error_code = goff_delete(gs, req.group_id, t->name, part, &t1) < 0
                                     ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE;
                target = CN_MAX(target, t1);
            }
        }
    }
    answer_when_durable(q, target, rsp, offset_delete_encode);
}

/* ListGroups / DescribeGroups / DeleteGroups -------------------------------------- */

typedef struct list_ctx {
    kreq *q;
    const kafka_string_array *states;
    kafka_list_groups_response_listed_group *items;
    int32_t n, cap;
    int all;                        /* DESCRIBE on the cluster: every group */
} list_ctx;

static void list_one(void *arg, const grp_info *g)
{
    list_ctx *lc = arg;
    if (g->state == GRP_DEAD)
        return;
    /* without DESCRIBE on the cluster, only the groups it may describe */
    if (!lc->all && !kreq_allowed(lc->q, ACL_OP_DESCRIBE, ACL_R_GROUP, kstr_c(g->group_id)))
        return;
    if (lc->states && lc->states->n > 0) {
        int match = 0;
        const char *name = grp_state_name(g->state);
        for (int32_t i = 0; i < lc->states->n && !match; i++) {
            kstr s = lc->states->items[i];
            match = s.len == (int32_t)strlen(name) && strncasecmp(s.ptr, name, (size_t)s.len) == 0;
        }
        if (!match)
            return;
    }
    if (lc->n == lc->cap) {
        int32_t ncap = lc->cap ? lc->cap * 2 : 16;
        kafka_list_groups_response_listed_group *ni = kreq_alloc(lc->q, (size_t)ncap, sizeof(*ni));
        if (lc->n)
            memcpy(ni, lc->items, (size_t)lc->n * sizeof(*ni));
        lc->items = ni;
        lc->cap = ncap;
    }
    kafka_list_groups_response_listed_group *it = &lc->items[lc->n++];
    it->group_id = kreq_strdup(lc->q, kstr_c(g->group_id));
    it->protocol_type = kreq_strdup(lc->q, kstr_c(g->protocol_type));
    it->group_state = kstr_c(grp_state_name(g->state));
    it->group_type = kstr_c("classic");
}

void kh_list_groups(kreq *q)
{
    kafka_list_groups_request req;
    if (kafka_list_groups_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_list_groups_response rsp;
    kafka_list_groups_response_init(&rsp);
    list_ctx lc = {.q = q, .states = q->ver >= 4 ? &req.states_filter : NULL,
                   .all = kreq_cluster_allowed(q, ACL_OP_DESCRIBE)};
    int want_classic = 1;
    if (q->ver >= 5 && req.types_filter.n > 0) {
        want_classic = 0;
        for (int32_t i = 0; i < req.types_filter.n; i++) {
            kstr t = req.types_filter.items[i];
            if (t.len == 7 && strncasecmp(t.ptr, "classic", 7) == 0)
                want_classic = 1;
        }
    }
    int lrc = want_classic ? grp_list(ksrv_groups(q->ks), list_one, &lc) : 0;
    /* Every broker is asked; one that coordinates nothing lists nothing. */
    rsp.error_code = lrc == -CN_ENOTCOORD ? KERR_NONE : kerr_from_cn(lrc);
    rsp.groups.items = lc.items;
    rsp.groups.n = lc.n;
    kafka_list_groups_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

typedef struct describe_ctx {
    kreq *q;
    kafka_describe_groups_response_described_group *out;
} describe_ctx;

static void describe_one(void *arg, const grp_info *g)
{
    describe_ctx *dc = arg;
    kreq *q = dc->q;
    kafka_describe_groups_response_described_group *d = dc->out;
    d->error_code = KERR_NONE;
    d->group_state = kstr_c(grp_state_name(g->state));
    d->protocol_type = kreq_strdup(q, kstr_c(g->protocol_type));
    d->protocol_data = kreq_strdup(q, kstr_c(g->protocol_name));
    KARR_ALLOC(q, d->members, g->n_members);
    for (int i = 0; i < g->n_members; i++) {
        const grp_member_info *m = &g->members[i];
        kafka_describe_groups_response_described_group_member *o = &d->members.items[i];
        o->member_id = kreq_strdup(q, kstr_c(m->member_id));
        o->group_instance_id = m->instance_id ? kreq_strdup(q, kstr_c(m->instance_id)) : NULL_STR;
        o->client_id = kreq_strdup(q, kstr_c(m->client_id));
        o->client_host = kreq_strdup(q, kstr_c(m->client_host));
        uint8_t *meta = kreq_alloc(q, (size_t)m->metadata.len, 1);
        memcpy(meta, m->metadata.ptr, (size_t)m->metadata.len);
        o->member_metadata = (kbytes){meta, m->metadata.len};
        uint8_t *as = kreq_alloc(q, (size_t)m->assignment.len, 1);
        memcpy(as, m->assignment.ptr, (size_t)m->assignment.len);
        o->member_assignment = (kbytes){as, m->assignment.len};
    }
}

void kh_describe_groups(kreq *q)
{
    kafka_describe_groups_request req;
    if (kafka_describe_groups_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_describe_groups_response rsp;
    kafka_describe_groups_response_init(&rsp);
    int32_t n = req.groups.n > 0 ? req.groups.n : 0;
    KARR_ALLOC(q, rsp.groups, n);
    int rc;
    for (int32_t i = 0; i < n; i++) {
        kafka_describe_groups_response_described_group *d = &rsp.groups.items[i];
        d->group_id = req.groups.items[i];
        d->authorized_operations = AUTH_OPS_UNSET;
        describe_ctx dc = {q, d};
        if (req.groups.items[i].len > 0 &&
            !kreq_allowed(q, ACL_OP_DESCRIBE, ACL_R_GROUP, req.groups.items[i])) {
            d->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            d->group_state = kstr_c("");
            d->protocol_type = kstr_c("");
            d->protocol_data = kstr_c("");
            KARR_ALLOC(q, d->members, 0);
        } else if (req.groups.items[i].len <= 0) {
            d->error_code = KERR_INVALID_GROUP_ID;
            d->group_state = kstr_c("");
            d->protocol_type = kstr_c("");
            d->protocol_data = kstr_c("");
            KARR_ALLOC(q, d->members, 0);
        } else if ((rc = grp_describe(ksrv_groups(q->ks), req.groups.items[i], describe_one,
                                      &dc)) < 0) {
            /* Kafka describes a group it does not know as Dead, without error. */
            d->error_code = rc == -CN_ENOGROUP ? KERR_NONE : kerr_from_cn(rc);
            d->group_state = kstr_c("Dead");
            d->protocol_type = kstr_c("");
            d->protocol_data = kstr_c("");
            KARR_ALLOC(q, d->members, 0);
        }
    }
    kafka_describe_groups_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

static void delete_groups_encode(durable_park *dp, int status)
{
    kafka_delete_groups_response *rsp = dp->rsp;
    if (status < 0)
        for (int32_t i = 0; i < rsp->results.n; i++)
            if (rsp->results.items[i].error_code == KERR_NONE)
                rsp->results.items[i].error_code = store_error(status);
    kafka_delete_groups_response_encode(&dp->resp->w, dp->ver, rsp);
}

void kh_delete_groups(kreq *q)
{
    kafka_delete_groups_request req;
    if (kafka_delete_groups_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_delete_groups_response *rsp = kreq_alloc(q, 1, sizeof(*rsp));
    kafka_delete_groups_response_init(rsp);
    int32_t n = req.groups_names.n > 0 ? req.groups_names.n : 0;
    KARR_ALLOC(q, rsp->results, n);
    int64_t target = -1;
    for (int32_t i = 0; i < n; i++) {
        kstr g = req.groups_names.items[i];
        rsp->results.items[i].group_id = kreq_strdup(q, g);
        int64_t t = -1;
        rsp->results.items[i].error_code =
            g.len <= 0 ? KERR_INVALID_GROUP_ID
            : !kreq_allowed(q, ACL_OP_DELETE, ACL_R_GROUP, g)
                ? KERR_GROUP_AUTHORIZATION_FAILED
                : kerr_from_cn(grp_delete(ksrv_groups(q->ks), g, &t));
        target = CN_MAX(target, t);
    }
    answer_when_durable(q, target, rsp, delete_groups_encode);
}
