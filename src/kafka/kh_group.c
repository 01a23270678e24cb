/* JoinGroup, SyncGroup, Heartbeat, LeaveGroup: decode, call the group
 * coordinator (src/group), encode; its core errors become Kafka codes
 * through kerr_from_cn(). Join and sync may be answered later: the
 * response slot is kept in a small context in the slot's arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "kafka/kafka.h"
#include "util/common.h"

#define NULL_STR ((kstr){NULL, -1})

typedef struct park_ctx {
    net_resp *resp;
    int16_t ver;
} park_ctx;

static park_ctx *park_new(kreq *q)
{
    park_ctx *p = kreq_alloc(q, 1, sizeof(*p));
    p->resp = q->resp;
    p->ver = q->ver;
    return p;
}

/* Kafka reports the client host as "/<ip>". */
static kstr client_host(kreq *q)
{
    const char *host = net_conn_host(q->conn);
    size_t n = strlen(host);
    char *h = kreq_alloc(q, n + 2, 1);
    h[0] = '/';
    memcpy(h + 1, host, n);
    return (kstr){h, (int32_t)n + 1};
}

static kstr opt_str(const char *s) { return s ? kstr_c(s) : NULL_STR; }

static void on_join(void *vctx, const grp_join_result *r)
{
    park_ctx *p = vctx;
    kafka_join_group_response rsp;
    kafka_join_group_response_init(&rsp);
    rsp.error_code = kerr_from_cn(r->error);
    rsp.generation_id = r->generation;
    /* Before v7 the protocol name is not nullable. */
    rsp.protocol_type = opt_str(r->protocol_type);
    rsp.protocol_name = r->protocol_name ? kstr_c(r->protocol_name)
                                         : (p->ver >= 7 ? NULL_STR : kstr_c(""));
    rsp.leader = kstr_c(r->leader ? r->leader : "");
    rsp.member_id = kstr_c(r->member_id ? r->member_id : "");
    rsp.skip_assignment = r->skip_assignment;
    /* The encoder copies now, so views into the coordinator are fine. */
    kafka_join_group_response_join_group_response_member *items =
        xcalloc((size_t)(r->n_members > 0 ? r->n_members : 1), sizeof(*items));
    rsp.members.items = items;
    rsp.members.n = r->n_members;
    for (int i = 0; i < r->n_members; i++) {
        kafka_join_group_response_join_group_response_member_init(&items[i]);
        items[i].member_id = kstr_c(r->members[i].member_id);
        items[i].group_instance_id = opt_str(r->members[i].instance_id);
        items[i].metadata = r->members[i].metadata;
    }
    kafka_join_group_response_encode(&p->resp->w, p->ver, &rsp);
    free(items);
    net_resp_ready(p->resp);
}

/* READ on the group (the authorizer), for every group membership API. */
static int group_ok(kreq *q, kstr group)
{
    return kreq_allowed(q, ACL_OP_READ, ACL_R_GROUP, group);
}

void kh_join_group(kreq *q)
{
    kafka_join_group_request req;
    if (kafka_join_group_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    if (!group_ok(q, req.group_id)) {
        kafka_join_group_response rsp;
        kafka_join_group_response_init(&rsp);
        rsp.error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        rsp.generation_id = -1;
        rsp.protocol_name = q->ver >= 7 ? NULL_STR : kstr_c(""); /* nullable from v7 */
        rsp.leader = kstr_c("");
        rsp.member_id = kstr_c("");
        KARR_ALLOC(q, rsp.members, 0);
        kafka_join_group_response_encode(&q->resp->w, q->ver, &rsp);
        kreq_done(q);
        return;
    }
    int n = req.protocols.n > 0 ? req.protocols.n : 0;
    grp_protocol *protos = kreq_alloc(q, (size_t)n, sizeof(*protos));
    for (int i = 0; i < n; i++) {
        protos[i].name = req.protocols.items[i].name;
        protos[i].metadata = req.protocols.items[i].metadata;
    }
    grp_join_req jr = {
        .group_id = req.group_id,
        .member_id = req.member_id,
        .instance_id = req.group_instance_id,
        .client_id = q->hdr.client_id,
        .client_host = client_host(q),
        .protocol_type = req.protocol_type,
        /* v0 has no rebalance timeout: the session timeout serves. */
        .session_timeout_ms = req.session_timeout_ms,
        .rebalance_timeout_ms = q->ver >= 1 ? req.rebalance_timeout_ms : req.session_timeout_ms,
        .protocols = protos,
        .n_protocols = n,
        .require_known_member_id = q->ver >= 4 && req.group_instance_id.len < 0,
    };
    grp_join(ksrv_groups(q->ks), &jr, on_join, park_new(q));
}

static void on_sync(void *vctx, const grp_sync_result *r)
{
    park_ctx *p = vctx;
    kafka_sync_group_response rsp;
    kafka_sync_group_response_init(&rsp);
    rsp.error_code = kerr_from_cn(r->error);
    rsp.protocol_type = opt_str(r->protocol_type);
    rsp.protocol_name = opt_str(r->protocol_name);
    rsp.assignment = r->assignment;
    kafka_sync_group_response_encode(&p->resp->w, p->ver, &rsp);
    net_resp_ready(p->resp);
}

void kh_sync_group(kreq *q)
{
    kafka_sync_group_request req;
    if (kafka_sync_group_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    if (!group_ok(q, req.group_id)) {
        kafka_sync_group_response rsp;
        kafka_sync_group_response_init(&rsp);
        rsp.error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        rsp.protocol_type = NULL_STR;
        rsp.protocol_name = NULL_STR;
        rsp.assignment = (kbytes){NULL, 0};
        kafka_sync_group_response_encode(&q->resp->w, q->ver, &rsp);
        kreq_done(q);
        return;
    }
    int n = req.assignments.n > 0 ? req.assignments.n : 0;
    grp_assignment *as = kreq_alloc(q, (size_t)n, sizeof(*as));
    for (int i = 0; i < n; i++) {
        as[i].member_id = req.assignments.items[i].member_id;
        as[i].assignment = req.assignments.items[i].assignment;
    }
    grp_sync_req sr = {
        .group_id = req.group_id,
        .member_id = req.member_id,
        .instance_id = req.group_instance_id,
        .protocol_type = q->ver >= 5 ? req.protocol_type : NULL_STR,
        .protocol_name = q->ver >= 5 ? req.protocol_name : NULL_STR,
        .generation = req.generation_id,
        .assignments = as,
        .n_assignments = n,
    };
    grp_sync(ksrv_groups(q->ks), &sr, on_sync, park_new(q));
}

void kh_heartbeat(kreq *q)
{
    kafka_heartbeat_request req;
    if (kafka_heartbeat_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_heartbeat_response rsp;
    kafka_heartbeat_response_init(&rsp);
    rsp.error_code = !group_ok(q, req.group_id)
                         ? KERR_GROUP_AUTHORIZATION_FAILED
                         : kerr_from_cn(grp_heartbeat(ksrv_groups(q->ks), req.group_id,
                                                      req.member_id, req.group_instance_id,
                                                      req.generation_id));
    kafka_heartbeat_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}

void kh_leave_group(kreq *q)
{
    kafka_leave_group_request req;
    if (kafka_leave_group_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    kafka_leave_group_response rsp;
    kafka_leave_group_response_init(&rsp);
    grp_coord *gc = ksrv_groups(q->ks);
    if (!group_ok(q, req.group_id)) {
        rsp.error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        KARR_ALLOC(q, rsp.members, 0);
    } else if (q->ver < 3) {
        rsp.error_code = kerr_from_cn(grp_leave(gc, req.group_id, req.member_id, NULL_STR));
    } else {
        int32_t n = req.members.n > 0 ? req.members.n : 0;
        KARR_ALLOC(q, rsp.members, n);
        for (int32_t i = 0; i < n; i++) {
            kafka_leave_group_request_member_identity *mi = &req.members.items[i];
            kafka_leave_group_response_member_response *mr = &rsp.members.items[i];
            mr->member_id = mi->member_id;
            mr->group_instance_id = mi->group_instance_id;
            mr->error_code =
                kerr_from_cn(grp_leave(gc, req.group_id, mi->member_id, mi->group_instance_id));
        }
        /* Kafka: the top-level error is for the group as a whole. */
        rsp.error_code = KERR_NONE;
        if (n == 0)
            rsp.error_code = KERR_INVALID_REQUEST;
    }
    kafka_leave_group_response_encode(&q->resp->w, q->ver, &rsp);
    kreq_done(q);
}
