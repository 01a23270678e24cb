/* Unit tests for group/group: the classic consumer-group state machine driven
 * directly through grp_join/grp_sync/grp_heartbeat/grp_leave/grp_check_commit
 * and the admin calls, with callbacks that copy every answer. Each test runs a
 * real broker, loop and offsets store on a fresh temporary data directory, so
 * timers (session, join phase, pending member ids) fire through loop_run_once
 * and generations are persisted. Expectations follow Kafka's
 * GroupCoordinator (shared/protocol/kafka/NOTES.md section 9), in the core's
 * errors (-CN_E*; src/kafka/kerr_map.c gives the Kafka code of each). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "group/group.h"
#include "group/offsets.h"
#include "net/loop.h"
#include "util/common.h"

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    goff_store *s;
    grp_coord *c;
} fixture;

static void fx_open(fixture *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(goff_open(f->b, &f->s), 0);
    f->c = grp_coord_new(f->b, f->s);
    assert_non_null(f->c);
}

static void fx_close(fixture *f)
{
    grp_coord_free(f->c);
    goff_close(f->s);
    broker_close(f->b);
    loop_free(f->l);
    f->c = NULL;
    f->s = NULL;
    f->b = NULL;
    f->l = NULL;
}

static void fx_reopen(fixture *f)
{
    fx_close(f);
    fx_open(f);
}

static int setup_with_delay(void **state, const char *delay_ms)
{
    fixture *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "group");
    char err[256];
    assert_int_equal(config_set(&f->cfg, "group.initial.rebalance.delay.ms", delay_ms, err,
                                sizeof(err)), 0);
    assert_int_equal(config_set(&f->cfg, "group.min.session.timeout.ms", "10", err, sizeof(err)),
                     0);
    assert_int_equal(config_set(&f->cfg, "group.max.session.timeout.ms", "60000", err,
                                sizeof(err)), 0);
    fx_open(f);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_with_delay(state, "0"); }
static int setup_delay(void **state) { return setup_with_delay(state, "100"); }

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->b)
        fx_close(f);
    but_rm_rf(f->dir);
    config_fini(&f->cfg);
    free(f);
    return 0;
}

/* Loop driving ---------------------------------------------------------------- */

static void drive_ms(fixture *f, int64_t ms)
{
    int64_t end = loop_now_mono() + ms;
    while (loop_now_mono() < end)
        loop_run_once(f->l, 5);
}

/* Run the loop until *flag becomes non-zero; fails after max_ms. */
static void drive_until(fixture *f, const int *flag, int64_t max_ms)
{
    int64_t end = loop_now_mono() + max_ms;
    while (!*flag && loop_now_mono() < end)
        loop_run_once(f->l, 5);
    assert_true(*flag);
}

/* Recording callbacks --------------------------------------------------------- */

#define ID_MAX 128

typedef struct jmember {
    char id[ID_MAX];
    char inst[ID_MAX];
    int is_static;
    char meta[64];
} jmember;

typedef struct jrec {
    int calls;
    int error;
    int32_t generation;
    int has_proto;
    char ptype[32];
    char pname[32];
    char leader[ID_MAX];
    char member_id[ID_MAX];
    int skip;
    int n_members;
    jmember members[8];
} jrec;

typedef struct srec {
    int calls;
    int error;
    char pname[32];
    char assign[64];
    int32_t assign_len;
} srec;

static void copy_bytes(char *dst, size_t cap, cn_bytes b)
{
    size_t n = b.len > 0 ? (size_t)b.len : 0;
    assert_true(n < cap);
    memcpy(dst, b.ptr, n);
    dst[n] = '\0';
}

static void on_join(void *ctx, const grp_join_result *r)
{
    jrec *j = ctx;
    j->calls++;
    j->error = r->error;
    j->generation = r->generation;
    j->has_proto = r->protocol_name != NULL;
    snprintf(j->ptype, sizeof(j->ptype), "%s", r->protocol_type ? r->protocol_type : "");
    snprintf(j->pname, sizeof(j->pname), "%s", r->protocol_name ? r->protocol_name : "");
    snprintf(j->leader, sizeof(j->leader), "%s", r->leader);
    snprintf(j->member_id, sizeof(j->member_id), "%s", r->member_id);
    j->skip = r->skip_assignment;
    assert_true(r->n_members <= 8);
    j->n_members = r->n_members;
    for (int i = 0; i < r->n_members; i++) {
        jmember *m = &j->members[i];
        snprintf(m->id, sizeof(m->id), "%s", r->members[i].member_id);
        m->is_static = r->members[i].instance_id != NULL;
        snprintf(m->inst, sizeof(m->inst), "%s",
                 r->members[i].instance_id ? r->members[i].instance_id : "");
        copy_bytes(m->meta, sizeof(m->meta), r->members[i].metadata);
    }
}

static void on_sync(void *ctx, const grp_sync_result *r)
{
    srec *s = ctx;
    s->calls++;
    s->error = r->error;
    snprintf(s->pname, sizeof(s->pname), "%s", r->protocol_name ? r->protocol_name : "");
    copy_bytes(s->assign, sizeof(s->assign), r->assignment);
    s->assign_len = r->assignment.len;
}

/* Requests -------------------------------------------------------------------- */

static cn_str K(const char *s) { return cn_str_c(s); }
static cn_bytes B(const char *s) { return (cn_bytes){(const uint8_t *)s, (int32_t)strlen(s)}; }
static const cn_str KNULL = {NULL, -1};

static const grp_protocol P_RANGE[] = {{{"range", 5}, {(const uint8_t *)"m1", 2}}};

typedef struct jopts {
    const char *instance;       /* NULL: dynamic */
    const grp_protocol *protos; /* NULL: P_RANGE */
    int n_protos;
    const char *ptype;          /* NULL: "consumer" */
    int32_t session_ms;         /* 0: 10000 */
    int32_t rebalance_ms;       /* 0: 10000 */
    int v4;                     /* require_known_member_id */
} jopts;

static void join_opts(fixture *f, const char *group, const char *member, const jopts *o, jrec *out)
{
    jopts d = {0};
    if (!o)
        o = &d;
    char mid[ID_MAX];                 /* member may point into *out, cleared below */
    snprintf(mid, sizeof(mid), "%s", member);
    grp_join_req req = {
        .group_id = K(group),
        .member_id = K(mid),
        .instance_id = o->instance ? K(o->instance) : KNULL,
        .client_id = K("client"),
        .client_host = K("/127.0.0.1"),
        .protocol_type = K(o->ptype ? o->ptype : "consumer"),
        .session_timeout_ms = o->session_ms ? o->session_ms : 10000,
        .rebalance_timeout_ms = o->rebalance_ms ? o->rebalance_ms : 10000,
        .protocols = o->protos ? o->protos : P_RANGE,
        .n_protocols = o->protos ? o->n_protos : 1,
        .require_known_member_id = o->v4,
    };
    memset(out, 0, sizeof(*out));
    grp_join(f->c, &req, on_join, out);
}

/* A dynamic member with the defaults (JoinGroup v0..3: no MEMBER_ID_REQUIRED). */
static void join(fixture *f, const char *group, const char *member, jrec *out)
{
    join_opts(f, group, member, NULL, out);
}

static void sync_req(fixture *f, const char *group, const char *member, const char *instance,
                     int32_t gen, const grp_assignment *as, int n, const char *pname, srec *out)
{
    grp_sync_req req = {
        .group_id = K(group),
        .member_id = K(member),
        .instance_id = instance ? K(instance) : KNULL,
        .protocol_type = pname ? K("consumer") : KNULL,
        .protocol_name = pname ? K(pname) : KNULL,
        .generation = gen,
        .assignments = as,
        .n_assignments = n,
    };
    memset(out, 0, sizeof(*out));
    grp_sync(f->c, &req, on_sync, out);
}

static int hb(fixture *f, const char *group, const char *member, int32_t gen)
{
    return grp_heartbeat(f->c, K(group), K(member), KNULL, gen);
}

static int hb_static(fixture *f, const char *group, const char *member, const char *inst,
                     int32_t gen)
{
    return grp_heartbeat(f->c, K(group), K(member), K(inst), gen);
}

static int commit_check(fixture *f, const char *group, const char *member, int32_t gen)
{
    return grp_check_commit(f->c, K(group), K(member), KNULL, gen);
}

/* Describe ------------------------------------------------------------------- */

typedef struct drec {
    int calls;
    grp_state state;
    int32_t generation;
    char pname[32];
    char ptype[32];
    int n_members;
    char ids[8][ID_MAX];
    char client[8][32];
    char host[8][32];
    char meta[8][64];
    char assign[8][64];
} drec;

static void on_describe(void *arg, const grp_info *g)
{
    drec *d = arg;
    d->calls++;
    d->state = g->state;
    d->generation = g->generation;
    snprintf(d->pname, sizeof(d->pname), "%s", g->protocol_name);
    snprintf(d->ptype, sizeof(d->ptype), "%s", g->protocol_type);
    assert_true(g->n_members <= 8);
    d->n_members = g->n_members;
    for (int i = 0; i < g->n_members; i++) {
        snprintf(d->ids[i], ID_MAX, "%s", g->members[i].member_id);
        snprintf(d->client[i], 32, "%s", g->members[i].client_id);
        snprintf(d->host[i], 32, "%s", g->members[i].client_host);
        copy_bytes(d->meta[i], 64, g->members[i].metadata);
        copy_bytes(d->assign[i], 64, g->members[i].assignment);
    }
}

static drec describe(fixture *f, const char *group)
{
    drec d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(grp_describe(f->c, K(group), on_describe, &d), 0);
    assert_int_equal(d.calls, 1);
    return d;
}

static grp_state state_of(fixture *f, const char *group) { return describe(f, group).state; }

/* Scenarios ------------------------------------------------------------------ */

/* One dynamic member through the v4 handshake, then stable with assignment
 * "a1". Returns its id in id. */
static void one_member_stable(fixture *f, const char *group, char *id)
{
    jrec j;
    join_opts(f, group, "", &(jopts){.v4 = 1}, &j);
    assert_int_equal(j.error, -CN_EMEMBERREQ);
    snprintf(id, ID_MAX, "%s", j.member_id);
    join_opts(f, group, id, &(jopts){.v4 = 1}, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.error, 0);
    grp_assignment as[] = {{K(id), B("a1")}};
    srec s;
    sync_req(f, group, id, NULL, j.generation, as, 1, NULL, &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.error, 0);
    assert_int_equal(state_of(f, group), GRP_STABLE);
}

/* Dynamic members a (leader) and b both in one generation, stable with
 * assignments "xa" and "xb". Returns the generation. */
static int32_t two_members_stable(fixture *f, const char *group, char *a, char *b)
{
    jrec ja, jb;
    join(f, group, "", &ja);
    assert_int_equal(ja.error, 0);
    snprintf(a, ID_MAX, "%s", ja.member_id);
    join(f, group, "", &jb);
    assert_int_equal(jb.calls, 0);
    join(f, group, a, &ja);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(jb.error, 0);
    snprintf(b, ID_MAX, "%s", jb.member_id);
    grp_assignment as[] = {{K(a), B("xa")}, {K(b), B("xb")}};
    srec sa, sb;
    sync_req(f, group, b, NULL, jb.generation, NULL, 0, NULL, &sb);
    sync_req(f, group, a, NULL, ja.generation, as, 2, NULL, &sa);
    assert_int_equal(sa.error, 0);
    assert_int_equal(sb.error, 0);
    assert_int_equal(state_of(f, group), GRP_STABLE);
    return ja.generation;
}

/* Tests ---------------------------------------------------------------------- */

static void test_first_member_joins_syncs_and_heartbeats(void **state)
{
    fixture *f = *state;
    jrec j;
    join_opts(f, "g", "", &(jopts){.v4 = 1}, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.error, -CN_EMEMBERREQ);
    assert_int_equal(j.generation, -1);
    assert_string_equal(j.leader, "");
    assert_true(strncmp(j.member_id, "client-", 7) == 0);
    char id[ID_MAX];
    snprintf(id, sizeof(id), "%s", j.member_id);
    /* Nothing joined yet: the group is still empty. */
    assert_int_equal(state_of(f, "g"), GRP_EMPTY);

    join_opts(f, "g", id, &(jopts){.v4 = 1}, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.error, 0);
    assert_int_equal(j.generation, 1);
    assert_string_equal(j.member_id, id);
    assert_string_equal(j.leader, id);
    assert_string_equal(j.ptype, "consumer");
    assert_string_equal(j.pname, "range");
    assert_int_equal(j.skip, 0);
    assert_int_equal(j.n_members, 1);
    assert_string_equal(j.members[0].id, id);
    assert_int_equal(j.members[0].is_static, 0);
    assert_string_equal(j.members[0].meta, "m1");
    assert_int_equal(state_of(f, "g"), GRP_COMPLETING);
    /* Heartbeats are fine while the leader computes the assignment. */
    assert_int_equal(hb(f, "g", id, 1), 0);

    grp_assignment as[] = {{K(id), B("a1")}};
    srec s;
    sync_req(f, "g", id, NULL, 1, as, 1, "range", &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assign, "a1");
    assert_string_equal(s.pname, "range");
    drec d = describe(f, "g");
    assert_int_equal(d.state, GRP_STABLE);
    assert_int_equal(d.generation, 1);
    assert_string_equal(d.assign[0], "a1");

    assert_int_equal(hb(f, "g", id, 1), 0);
    assert_int_equal(hb(f, "g", id, 2), -CN_EGENERATION);
    assert_int_equal(hb(f, "g", id, 0), -CN_EGENERATION);
    assert_int_equal(hb(f, "g", "nobody", 1), -CN_ENOMEMBER);
    assert_int_equal(hb(f, "other", id, 1), -CN_ENOMEMBER);
    /* Sync in Stable returns the current assignment. */
    sync_req(f, "g", id, NULL, 1, NULL, 0, NULL, &s);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assign, "a1");
    sync_req(f, "g", id, NULL, 2, NULL, 0, NULL, &s);
    assert_int_equal(s.error, -CN_EGENERATION);
    sync_req(f, "g", "nobody", NULL, 1, NULL, 0, NULL, &s);
    assert_int_equal(s.error, -CN_ENOMEMBER);
    sync_req(f, "g", id, NULL, 1, NULL, 0, "roundrobin", &s);
    assert_int_equal(s.error, -CN_EGROUPPROTO);
    sync_req(f, "nogroup", id, NULL, 1, NULL, 0, NULL, &s);
    assert_int_equal(s.error, -CN_ENOMEMBER);
    /* A join with a member id the group never gave out. */
    join(f, "g", "bogus", &j);
    assert_int_equal(j.error, -CN_ENOMEMBER);
    join(f, "nogroup", "bogus", &j);
    assert_int_equal(j.error, -CN_ENOMEMBER);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    assert_int_equal(commit_check(f, "g", id, 1), 0);
}

static void test_second_member_rebalances_and_syncs(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    one_member_stable(f, "g", a);

    jrec ja, jb;
    join(f, "g", "", &jb);
    assert_int_equal(jb.calls, 0);                    /* parked until a rejoins */
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    assert_int_equal(hb(f, "g", a, 1), -CN_EREBALANCE);
    srec sa, sb;
    sync_req(f, "g", a, NULL, 1, NULL, 0, NULL, &sa);
    assert_int_equal(sa.error, -CN_EREBALANCE);
    /* Kafka still accepts commits of the old generation while preparing. */
    assert_int_equal(commit_check(f, "g", a, 1), 0);

    join(f, "g", a, &ja);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(ja.error, 0);
    assert_int_equal(jb.error, 0);
    assert_int_equal(ja.generation, 2);
    assert_int_equal(jb.generation, 2);
    snprintf(b, sizeof(b), "%s", jb.member_id);
    assert_string_not_equal(a, b);
    assert_string_equal(ja.leader, a);
    assert_string_equal(jb.leader, a);
    assert_string_equal(jb.pname, "range");
    assert_int_equal(ja.n_members, 2);
    assert_int_equal(jb.n_members, 0);
    assert_string_equal(ja.members[0].id, a);
    assert_string_equal(ja.members[1].id, b);
    assert_string_equal(ja.members[1].meta, "m1");
    assert_int_equal(state_of(f, "g"), GRP_COMPLETING);

    /* The follower's sync waits for the leader's. */
    sync_req(f, "g", b, NULL, 2, NULL, 0, NULL, &sb);
    assert_int_equal(sb.calls, 0);
    assert_int_equal(commit_check(f, "g", b, 2), -CN_EREBALANCE);
    assert_int_equal(commit_check(f, "g", a, 2), -CN_EREBALANCE);
    /* Members and generations are checked first, as Kafka does. */
    assert_int_equal(commit_check(f, "g", a, 1), -CN_EGENERATION);
    assert_int_equal(commit_check(f, "g", "nobody", 2), -CN_ENOMEMBER);
    assert_int_equal(hb(f, "g", b, 2), 0);
    grp_assignment as[] = {{K(b), B("xb")}, {K(a), B("xa")}};
    sync_req(f, "g", a, NULL, 2, as, 2, NULL, &sa);
    assert_int_equal(sa.calls, 1);
    assert_int_equal(sb.calls, 1);
    assert_int_equal(sa.error, 0);
    assert_int_equal(sb.error, 0);
    assert_string_equal(sa.assign, "xa");
    assert_string_equal(sb.assign, "xb");
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    assert_int_equal(commit_check(f, "g", b, 2), 0);

    /* A follower rejoining with the same metadata gets the current
     * generation straight away, without members. */
    join(f, "g", b, &jb);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(jb.error, 0);
    assert_int_equal(jb.generation, 2);
    assert_int_equal(jb.n_members, 0);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    /* With new metadata it starts a rebalance. */
    static const grp_protocol p2[] = {{{"range", 5}, {(const uint8_t *)"m2", 2}}};
    join_opts(f, "g", b, &(jopts){.protos = p2, .n_protos = 1}, &jb);
    assert_int_equal(jb.calls, 0);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    join(f, "g", a, &ja);
    assert_int_equal(ja.generation, 3);
    assert_int_equal(jb.generation, 3);
    assert_string_equal(ja.members[1].meta, "m2");
}

static void test_leader_sync_gives_missing_members_empty_assignment(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    two_members_stable(f, "g", a, b);
    /* Next generation: the leader assigns nothing to b. */
    jrec ja, jb;
    join(f, "g", a, &ja);                             /* leader rejoin: rebalance */
    assert_int_equal(ja.calls, 0);
    join(f, "g", b, &jb);
    assert_int_equal(ja.generation, 3);
    srec sa, sb;
    sync_req(f, "g", b, NULL, 3, NULL, 0, NULL, &sb);
    grp_assignment as[] = {{K(a), B("all")}, {K("stranger"), B("zz")}};
    sync_req(f, "g", a, NULL, 3, as, 2, NULL, &sa);
    assert_int_equal(sb.error, 0);
    assert_int_equal(sb.assign_len, 0);
    assert_string_equal(sa.assign, "all");
}

static const grp_protocol P_RANGE_RR[] = {{{"range", 5}, {(const uint8_t *)"r", 1}},
                                          {{"roundrobin", 10}, {(const uint8_t *)"rr", 2}}};
static const grp_protocol P_RR_RANGE[] = {{{"roundrobin", 10}, {(const uint8_t *)"rr", 2}},
                                          {{"range", 5}, {(const uint8_t *)"r", 1}}};
static const grp_protocol P_STICKY[] = {{{"sticky", 6}, {(const uint8_t *)"s", 1}}};

static void test_protocol_selection_and_join_validation(void **state)
{
    fixture *f = *state;
    jrec j1, j2, j3;
    /* First member prefers range; the two others prefer roundrobin. */
    join_opts(f, "g", "", &(jopts){.protos = P_RANGE_RR, .n_protos = 2}, &j1);
    assert_string_equal(j1.pname, "range");
    char a[ID_MAX];
    snprintf(a, sizeof(a), "%s", j1.member_id);
    join_opts(f, "g", "", &(jopts){.protos = P_RR_RANGE, .n_protos = 2}, &j2);
    join_opts(f, "g", "", &(jopts){.protos = P_RR_RANGE, .n_protos = 2}, &j3);
    assert_int_equal(j2.calls, 0);
    join_opts(f, "g", a, &(jopts){.protos = P_RANGE_RR, .n_protos = 2}, &j1);
    assert_int_equal(j1.calls, 1);
    assert_int_equal(j2.calls, 1);
    assert_int_equal(j3.calls, 1);
    assert_int_equal(j1.generation, 2);
    assert_string_equal(j1.pname, "roundrobin");
    assert_string_equal(j2.pname, "roundrobin");
    assert_int_equal(j1.n_members, 3);
    for (int i = 0; i < 3; i++)                       /* metadata of the chosen protocol */
        assert_string_equal(j1.members[i].meta, "rr");

    /* No protocol in common, or another protocol type. */
    jrec j;
    join_opts(f, "g", "", &(jopts){.protos = P_STICKY, .n_protos = 1}, &j);
    assert_int_equal(j.error, -CN_EGROUPPROTO);
    assert_int_equal(j.generation, -1);
    join_opts(f, "g", "", &(jopts){.protos = P_RR_RANGE, .n_protos = 2, .ptype = "connect"}, &j);
    assert_int_equal(j.error, -CN_EGROUPPROTO);
    join_opts(f, "g", "", &(jopts){.protos = P_RR_RANGE, .n_protos = 0}, &j);
    assert_int_equal(j.error, -CN_EGROUPPROTO);
    assert_int_equal(state_of(f, "g"), GRP_COMPLETING);
    /* Session timeout outside [10, 60000]; empty group id. */
    join_opts(f, "g", "", &(jopts){.session_ms = 9}, &j);
    assert_int_equal(j.error, -CN_ESESSIONTMO);
    join_opts(f, "g", "", &(jopts){.session_ms = 60001}, &j);
    assert_int_equal(j.error, -CN_ESESSIONTMO);
    join(f, "", "", &j);
    assert_int_equal(j.error, -CN_EBADGROUP);
    assert_int_equal(grp_known(f->c, K("")), 0);
    /* A member supporting only one protocol narrows the choice. */
    static const grp_protocol p_range_only[] = {{{"range", 5}, {(const uint8_t *)"r", 1}}};
    jrec j4;
    join_opts(f, "g", "", &(jopts){.protos = p_range_only, .n_protos = 1}, &j4);
    assert_int_equal(j4.calls, 0);
    join_opts(f, "g", a, &(jopts){.protos = P_RANGE_RR, .n_protos = 2}, &j1);
    join_opts(f, "g", j2.member_id, &(jopts){.protos = P_RR_RANGE, .n_protos = 2}, &j2);
    join_opts(f, "g", j3.member_id, &(jopts){.protos = P_RR_RANGE, .n_protos = 2}, &j3);
    assert_int_equal(j4.calls, 1);
    assert_int_equal(j4.error, 0);
    assert_int_equal(j4.generation, 3);
    assert_string_equal(j4.pname, "range");
    assert_string_equal(j1.members[3].meta, "r");
}

static void test_leave_and_simple_commits(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    int32_t gen = two_members_stable(f, "g", a, b);
    assert_int_equal(gen, 2);
    /* Simple commits only while nobody is a member. */
    assert_int_equal(commit_check(f, "g", "", -1), -CN_ENOMEMBER);
    assert_int_equal(commit_check(f, "g", b, 1), -CN_EGENERATION);
    assert_int_equal(commit_check(f, "g", "nobody", 2), -CN_ENOMEMBER);

    assert_int_equal(grp_leave(f->c, K("g"), K(b), KNULL), 0);
    assert_int_equal(grp_leave(f->c, K("g"), K(b), KNULL), -CN_ENOMEMBER);
    assert_int_equal(grp_leave(f->c, K("nogroup"), K(b), KNULL), -CN_ENOMEMBER);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    assert_int_equal(hb(f, "g", a, 2), -CN_EREBALANCE);
    jrec ja;
    join(f, "g", a, &ja);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(ja.generation, 3);
    assert_string_equal(ja.leader, a);
    assert_int_equal(ja.n_members, 1);

    /* The leader leaves while completing: last member gone, group empty. */
    assert_int_equal(grp_leave(f->c, K("g"), K(a), KNULL), 0);
    drec d = describe(f, "g");
    assert_int_equal(d.state, GRP_EMPTY);
    assert_int_equal(d.generation, 4);
    assert_int_equal(d.n_members, 0);
    assert_int_equal(grp_is_empty(f->c, K("g")), 1);
    assert_int_equal(commit_check(f, "g", "", -1), 0);
    assert_int_equal(commit_check(f, "fresh", "", -1), 0);
    assert_int_equal(grp_known(f->c, K("fresh")), 0);  /* the check creates nothing */
    assert_int_equal(commit_check(f, "g", a, 3), -CN_ENOMEMBER);
    assert_int_equal(commit_check(f, "g", a, -1), -CN_ENOMEMBER);
    assert_int_equal(commit_check(f, "unknown", a, 3), -CN_EGENERATION);
    assert_int_equal(commit_check(f, "unknown", a, -1), -CN_ENOMEMBER);
    assert_int_equal(commit_check(f, "", "", -1), -CN_EBADGROUP);
    assert_int_equal(hb(f, "g", a, 4), -CN_ENOMEMBER);
}

static void test_leave_answers_parked_requests(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    two_members_stable(f, "g", a, b);
    jrec ja, jb;
    join(f, "g", a, &ja);                             /* parked: b must rejoin */
    assert_int_equal(ja.calls, 0);
    join(f, "g", b, &jb);
    srec sb;
    sync_req(f, "g", b, NULL, 3, NULL, 0, NULL, &sb);
    assert_int_equal(sb.calls, 0);
    /* b leaves with its sync parked: answered once, and a must rejoin. */
    assert_int_equal(grp_leave(f->c, K("g"), K(b), KNULL), 0);
    assert_int_equal(sb.calls, 1);
    assert_int_equal(sb.error, -CN_ENOMEMBER);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    /* A second join from a member replaces its parked one. */
    jrec ja2;
    join(f, "g", a, &ja);
    assert_int_equal(ja.calls, 1);                    /* completes: a is alone */
    assert_int_equal(ja.generation, 4);
    jrec jc;
    join(f, "g", "", &jc);                            /* parked: a must rejoin */
    join(f, "g", a, &ja);
    assert_int_equal(jc.calls, 1);
    assert_int_equal(ja.calls, 1);
    join(f, "g", "", &jb);                            /* third member */
    join(f, "g", a, &ja);
    join(f, "g", a, &ja2);                            /* replaces ja */
    assert_int_equal(ja.calls, 1);
    assert_int_equal(ja.error, -CN_EREBALANCE);
    assert_int_equal(ja2.calls, 0);
    join(f, "g", jc.member_id, &jc);
    assert_int_equal(ja2.calls, 1);
    assert_int_equal(ja2.generation, 6);
    assert_int_equal(ja.calls, 1);
}

/* Run the loop, heartbeating member m of generation gen every few ms, until
 * the heartbeat answers something other than NONE or max_ms passed. */
static int heartbeat_until_error(fixture *f, const char *group, const char *m, int32_t gen,
                                 int64_t max_ms)
{
    int64_t end = loop_now_mono() + max_ms;
    int err = 0;
    while (err == 0 && loop_now_mono() < end) {
        loop_run_once(f->l, 5);
        err = hb(f, group, m, gen);
    }
    return err;
}

static void test_session_expiry_removes_silent_members(void **state)
{
    fixture *f = *state;
    jrec ja, jb;
    jopts o = {.session_ms = 40};
    join_opts(f, "g", "", &o, &ja);
    char a[ID_MAX], b[ID_MAX];
    snprintf(a, sizeof(a), "%s", ja.member_id);
    join_opts(f, "g", "", &o, &jb);
    join_opts(f, "g", a, &o, &ja);
    snprintf(b, sizeof(b), "%s", jb.member_id);
    assert_int_equal(ja.generation, 2);
    int64_t t0 = loop_now_mono();
    /* a keeps heartbeating, b is silent: b goes, a is told to rejoin. */
    assert_int_equal(heartbeat_until_error(f, "g", a, 2, 1000), -CN_EREBALANCE);
    assert_true(loop_now_mono() - t0 >= 35);
    assert_int_equal(hb(f, "g", b, 2), -CN_ENOMEMBER);
    drec d = describe(f, "g");
    assert_int_equal(d.state, GRP_PREPARING);
    assert_int_equal(d.n_members, 1);
    join_opts(f, "g", a, &o, &ja);
    assert_int_equal(ja.generation, 3);
    assert_int_equal(ja.n_members, 1);
    /* A member parked in a join is not expired meanwhile. */
    jrec jc;
    join_opts(f, "g", "", &o, &jc);
    assert_int_equal(jc.calls, 0);
    drive_ms(f, 20);
    assert_int_equal(hb(f, "g", a, 3), -CN_EREBALANCE);
    drive_ms(f, 100);                                 /* a is silent now */
    assert_int_equal(jc.calls, 1);                    /* a expired: c completes alone */
    assert_int_equal(jc.error, 0);
    assert_int_equal(jc.generation, 4);
    assert_string_equal(jc.leader, jc.member_id);
    /* Then c goes silent too: the group ends empty. */
    drive_ms(f, 100);
    d = describe(f, "g");
    assert_int_equal(d.state, GRP_EMPTY);
    assert_int_equal(d.generation, 5);
}

static void test_rebalance_timeout_removes_members_that_do_not_rejoin(void **state)
{
    fixture *f = *state;
    jopts o = {.session_ms = 5000, .rebalance_ms = 60};
    jrec ja, jb, jc;
    join_opts(f, "g", "", &o, &ja);
    char a[ID_MAX];
    snprintf(a, sizeof(a), "%s", ja.member_id);
    join_opts(f, "g", "", &o, &jb);
    join_opts(f, "g", a, &o, &ja);
    char b[ID_MAX];
    snprintf(b, sizeof(b), "%s", jb.member_id);
    assert_int_equal(ja.generation, 2);
    /* c joins; a rejoins; b never does. */
    join_opts(f, "g", "", &o, &jc);
    join_opts(f, "g", a, &o, &ja);
    assert_int_equal(ja.calls, 0);
    int64_t t0 = loop_now_mono();
    drive_until(f, &ja.calls, 1000);
    assert_true(loop_now_mono() - t0 >= 40);
    assert_int_equal(jc.calls, 1);
    assert_int_equal(ja.error, 0);
    assert_int_equal(ja.generation, 3);
    assert_int_equal(ja.n_members, 2);
    assert_string_equal(ja.members[0].id, a);
    assert_string_equal(ja.members[1].id, jc.member_id);
    assert_int_equal(hb(f, "g", b, 3), -CN_ENOMEMBER);
    assert_int_equal(state_of(f, "g"), GRP_COMPLETING);
}

static const grp_protocol P_RANGE_M2[] = {{{"range", 5}, {(const uint8_t *)"m2", 2}}};

static void test_static_member_rejoin_without_rebalance(void **state)
{
    fixture *f = *state;
    jopts sa_opts = {.instance = "ia"}, sb_opts = {.instance = "ib"};
    jrec ja, jb, jd;
    /* Static members never get MEMBER_ID_REQUIRED. */
    join_opts(f, "g", "", &sa_opts, &ja);
    assert_int_equal(ja.error, 0);
    char a[ID_MAX], b[ID_MAX], d[ID_MAX];
    snprintf(a, sizeof(a), "%s", ja.member_id);
    assert_true(strncmp(a, "ia-", 3) == 0);
    join_opts(f, "g", "", &sb_opts, &jb);
    join(f, "g", "", &jd);                            /* a dynamic one too */
    join_opts(f, "g", a, &sa_opts, &ja);
    assert_int_equal(ja.generation, 2);
    assert_int_equal(ja.n_members, 3);
    assert_int_equal(ja.members[1].is_static, 1);
    assert_string_equal(ja.members[1].inst, "ib");
    assert_int_equal(ja.members[2].is_static, 0);
    snprintf(b, sizeof(b), "%s", jb.member_id);
    snprintf(d, sizeof(d), "%s", jd.member_id);
    grp_assignment as[] = {{K(a), B("xa")}, {K(b), B("xb")}, {K(d), B("xd")}};
    srec s;
    sync_req(f, "g", a, "ia", 2, as, 3, NULL, &s);
    assert_int_equal(s.error, 0);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);

    /* The leader restarts: new id, same generation, no rebalance. */
    jrec ja2;
    join_opts(f, "g", "", &sa_opts, &ja2);
    assert_int_equal(ja2.calls, 1);
    assert_int_equal(ja2.error, 0);
    assert_int_equal(ja2.generation, 2);
    assert_string_not_equal(ja2.member_id, a);
    assert_true(strncmp(ja2.member_id, "ia-", 3) == 0);
    assert_int_equal(ja2.skip, 1);
    assert_string_equal(ja2.pname, "range");
    assert_int_equal(ja2.n_members, 3);
    char a2[ID_MAX];
    snprintf(a2, sizeof(a2), "%s", ja2.member_id);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    assert_int_equal(hb(f, "g", d, 2), 0);   /* others unaffected */
    assert_int_equal(hb_static(f, "g", b, "ib", 2), 0);
    /* The old incarnation is fenced. */
    assert_int_equal(hb_static(f, "g", a, "ia", 2), -CN_EINSTFENCED);
    sync_req(f, "g", a, "ia", 2, NULL, 0, NULL, &s);
    assert_int_equal(s.error, -CN_EINSTFENCED);
    assert_int_equal(grp_check_commit(f->c, K("g"), K(a), K("ia"), 2), -CN_EINSTFENCED);
    jrec jx;
    join_opts(f, "g", a, &sa_opts, &jx);
    assert_int_equal(jx.error, -CN_EINSTFENCED);
    assert_int_equal(hb(f, "g", a, 2), -CN_ENOMEMBER);
    /* The new one keeps the assignment. */
    assert_int_equal(hb_static(f, "g", a2, "ia", 2), 0);
    sync_req(f, "g", a2, "ia", 2, NULL, 0, NULL, &s);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assign, "xa");

    /* A follower restarts: no members, no skip. */
    jrec jb2;
    join_opts(f, "g", "", &sb_opts, &jb2);
    assert_int_equal(jb2.error, 0);
    assert_int_equal(jb2.generation, 2);
    assert_int_equal(jb2.skip, 0);
    assert_int_equal(jb2.n_members, 0);
    assert_string_equal(jb2.leader, a2);
    char b2[ID_MAX];
    snprintf(b2, sizeof(b2), "%s", jb2.member_id);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);

    /* Back with new metadata: that needs a rebalance. */
    jrec ja3;
    join_opts(f, "g", "", &(jopts){.instance = "ia", .protos = P_RANGE_M2, .n_protos = 1}, &ja3);
    assert_int_equal(ja3.calls, 0);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    join_opts(f, "g", b2, &sb_opts, &jb2);
    join(f, "g", d, &jd);
    assert_int_equal(ja3.calls, 1);
    assert_int_equal(ja3.generation, 3);
    assert_int_equal(ja3.skip, 0);
    assert_string_equal(ja3.leader, ja3.member_id);
    assert_string_equal(ja3.members[0].meta, "m2");

    /* Admin removal by instance id. */
    assert_int_equal(grp_leave(f->c, K("g"), K(""), K("ib")), 0);
    assert_int_equal(grp_leave(f->c, K("g"), K(""), K("ib")), -CN_ENOMEMBER);
    assert_int_equal(grp_leave(f->c, K("g"), K(d), K("ia")), -CN_EINSTFENCED);
    drec dd = describe(f, "g");
    assert_int_equal(dd.state, GRP_PREPARING);
    assert_int_equal(dd.n_members, 2);
}

/* Kafka removes only dynamic members that miss a join phase; a static one
 * stays, so that when it comes back its place (and assignment) is there. */
static void test_static_member_survives_missed_join_phase(void **state)
{
    fixture *f = *state;
    jopts oa = {.instance = "ia", .rebalance_ms = 60};
    jopts ob = {.instance = "ib", .rebalance_ms = 60};
    jopts oc = {.rebalance_ms = 60};
    jrec ja, jb, jc;
    join_opts(f, "g", "", &oa, &ja);
    char a[ID_MAX], b[ID_MAX], c[ID_MAX];
    snprintf(a, sizeof(a), "%s", ja.member_id);
    join_opts(f, "g", "", &ob, &jb);
    join_opts(f, "g", a, &oa, &ja);
    snprintf(b, sizeof(b), "%s", jb.member_id);
    assert_int_equal(ja.generation, 2);
    /* c joins; only a rejoins; static b is away (restarting). */
    join_opts(f, "g", "", &oc, &jc);
    join_opts(f, "g", a, &oa, &ja);
    drive_until(f, &ja.calls, 1000);
    assert_int_equal(ja.error, 0);
    assert_int_equal(ja.generation, 3);
    assert_int_equal(jc.generation, 3);
    snprintf(c, sizeof(c), "%s", jc.member_id);
    assert_int_equal(ja.n_members, 3);               /* b still there, with its metadata */
    assert_string_equal(ja.members[1].id, b);
    assert_string_equal(ja.members[1].meta, "m1");
    assert_int_equal(hb_static(f, "g", b, "ib", 2), -CN_EGENERATION);
    grp_assignment as[] = {{K(a), B("xa")}, {K(b), B("xb")}, {K(c), B("xc")}};
    srec s;
    sync_req(f, "g", a, "ia", 3, as, 3, NULL, &s);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    /* b is back: no rebalance, its assignment is waiting. */
    jrec jb2;
    join_opts(f, "g", "", &ob, &jb2);
    assert_int_equal(jb2.calls, 1);
    assert_int_equal(jb2.error, 0);
    assert_int_equal(jb2.generation, 3);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);
    sync_req(f, "g", jb2.member_id, "ib", 3, NULL, 0, NULL, &s);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assign, "xb");

    /* The static leader misses a phase: a member that rejoined leads. */
    char b2[ID_MAX];
    snprintf(b2, sizeof(b2), "%s", jb2.member_id);
    join_opts(f, "g", c, &(jopts){.rebalance_ms = 60, .protos = P_RANGE_M2, .n_protos = 1}, &jc);
    join_opts(f, "g", b2, &ob, &jb2);
    drive_until(f, &jc.calls, 1000);
    assert_int_equal(jc.generation, 4);
    assert_string_equal(jc.leader, b2);
    assert_int_equal(jb2.n_members, 3);
    assert_int_equal(describe(f, "g").n_members, 3);
}

/* A join phase in which no member rejoined, only absent static members
 * remain: nobody to answer, so it waits until their sessions expire. */
static void test_join_phase_waits_when_only_absent_static_members(void **state)
{
    fixture *f = *state;
    jopts oa = {.instance = "ia", .rebalance_ms = 30, .session_ms = 150};
    jopts od = {.rebalance_ms = 30, .session_ms = 150};
    jrec ja, jd;
    join_opts(f, "g", "", &oa, &ja);
    char a[ID_MAX];
    snprintf(a, sizeof(a), "%s", ja.member_id);
    join_opts(f, "g", "", &od, &jd);
    join_opts(f, "g", a, &oa, &ja);
    assert_int_equal(ja.generation, 2);
    /* d leaves; a (static) does not rejoin. */
    assert_int_equal(grp_leave(f->c, K("g"), K(jd.member_id), KNULL), 0);
    drive_ms(f, 80);                                  /* > rebalance timeout */
    drec d = describe(f, "g");
    assert_int_equal(d.state, GRP_PREPARING);
    assert_int_equal(d.generation, 2);
    assert_int_equal(d.n_members, 1);
    drive_ms(f, 200);                                 /* a's session expired */
    d = describe(f, "g");
    assert_int_equal(d.state, GRP_EMPTY);
    assert_int_equal(d.generation, 3);
}

static void test_pending_member_id_expires(void **state)
{
    fixture *f = *state;
    char a[ID_MAX];
    one_member_stable(f, "g", a);
    jrec j;
    join_opts(f, "g", "", &(jopts){.v4 = 1, .session_ms = 30}, &j);
    assert_int_equal(j.error, -CN_EMEMBERREQ);
    char p[ID_MAX];
    snprintf(p, sizeof(p), "%s", j.member_id);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);  /* a pending id changes nothing yet */
    assert_int_equal(hb(f, "g", a, 1), 0);
    drive_ms(f, 80);
    assert_int_equal(hb(f, "g", a, 1), 0);
    join_opts(f, "g", p, &(jopts){.v4 = 1, .session_ms = 30}, &j);
    assert_int_equal(j.error, -CN_ENOMEMBER);
    assert_int_equal(describe(f, "g").n_members, 1);
}

static void test_preparing_group_waits_for_pending_member(void **state)
{
    fixture *f = *state;
    char a[ID_MAX];
    one_member_stable(f, "g", a);
    jrec jp, ja;
    join_opts(f, "g", "", &(jopts){.v4 = 1, .session_ms = 5000}, &jp);
    char p[ID_MAX];
    snprintf(p, sizeof(p), "%s", jp.member_id);
    join(f, "g", a, &ja);                             /* leader rejoins: rebalance */
    assert_int_equal(ja.calls, 0);                    /* waits for the pending id */
    drive_ms(f, 20);
    assert_int_equal(ja.calls, 0);
    join_opts(f, "g", p, &(jopts){.v4 = 1, .session_ms = 5000}, &jp);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(jp.calls, 1);
    assert_int_equal(jp.error, 0);
    assert_string_equal(jp.member_id, p);
    assert_int_equal(ja.generation, 2);
    assert_int_equal(ja.n_members, 2);
    grp_assignment as[] = {{K(a), B("xa")}, {K(p), B("xp")}};
    srec s;
    sync_req(f, "g", a, NULL, 2, as, 2, NULL, &s);
    assert_int_equal(state_of(f, "g"), GRP_STABLE);

    /* A pending id that never comes back holds the phase until it expires. */
    jrec jq;
    join_opts(f, "g", "", &(jopts){.v4 = 1, .session_ms = 40}, &jq);
    assert_int_equal(jq.error, -CN_EMEMBERREQ);
    join(f, "g", a, &ja);
    join(f, "g", p, &jp);
    assert_int_equal(ja.calls, 0);
    int64_t t0 = loop_now_mono();
    drive_until(f, &ja.calls, 1000);
    assert_true(loop_now_mono() - t0 >= 20);
    assert_int_equal(ja.generation, 3);
    assert_int_equal(ja.n_members, 2);
    assert_int_equal(jp.calls, 1);
}

static void test_pending_member_leave_releases_join_phase(void **state)
{
    fixture *f = *state;
    char a[ID_MAX];
    one_member_stable(f, "g", a);
    jrec jq, ja;
    join_opts(f, "g", "", &(jopts){.v4 = 1, .session_ms = 5000}, &jq);
    assert_int_equal(jq.error, -CN_EMEMBERREQ);
    char q[ID_MAX];
    snprintf(q, sizeof(q), "%s", jq.member_id);
    join(f, "g", a, &ja);                             /* leader rejoins: rebalance */
    assert_int_equal(ja.calls, 0);                    /* waits for q */
    /* q gives up before rejoining: LeaveGroup with the pending id. */
    assert_int_equal(grp_leave(f->c, K("g"), K(q), KNULL), 0);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(ja.generation, 2);
    assert_int_equal(ja.n_members, 1);
    assert_int_equal(grp_leave(f->c, K("g"), K(q), KNULL), -CN_ENOMEMBER);
    join_opts(f, "g", q, &(jopts){.v4 = 1, .session_ms = 5000}, &jq);
    assert_int_equal(jq.error, -CN_ENOMEMBER);
}

typedef struct lrec {
    int n;
    char ids[8][32];
    grp_state states[8];
    int32_t gens[8];
} lrec;

static void on_list(void *arg, const grp_info *g)
{
    lrec *l = arg;
    assert_true(l->n < 8);
    snprintf(l->ids[l->n], 32, "%s", g->group_id);
    l->states[l->n] = g->state;
    l->gens[l->n] = g->generation;
    l->n++;
}

static int list_find(const lrec *l, const char *id)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], id) == 0)
            return i;
    return -1;
}

static void commit_offset(fixture *f, const char *group, const char *tname, int64_t off)
{
    goff_commit_item it = {K(tname), 0, off, -1, KNULL, -1};
    int64_t wt;
    assert_int_equal(goff_commit(f->s, K(group), &it, 1, loop_wall_ms(), &wt), 0);
}

static void test_describe_list_delete(void **state)
{
    fixture *f = *state;
    drec d;
    assert_int_equal(grp_describe(f->c, K("g"), on_describe, &d), -CN_ENOGROUP);
    assert_int_equal(grp_known(f->c, K("g")), 0);
    char a[ID_MAX];
    one_member_stable(f, "g", a);
    d = describe(f, "g");
    assert_int_equal(d.state, GRP_STABLE);
    assert_string_equal(d.ptype, "consumer");
    assert_string_equal(d.pname, "range");
    assert_int_equal(d.generation, 1);
    assert_int_equal(d.n_members, 1);
    assert_string_equal(d.ids[0], a);
    assert_string_equal(d.client[0], "client");
    assert_string_equal(d.host[0], "/127.0.0.1");
    assert_string_equal(d.meta[0], "m1");
    assert_string_equal(d.assign[0], "a1");
    assert_string_equal(grp_state_name(GRP_STABLE), "Stable");
    assert_string_equal(grp_state_name(GRP_PREPARING), "PreparingRebalance");

    commit_offset(f, "g", "t", 5);
    commit_offset(f, "offsets-only", "t", 7);
    d = describe(f, "offsets-only");
    assert_int_equal(d.state, GRP_EMPTY);
    assert_int_equal(d.n_members, 0);
    lrec l = {0};
    grp_list(f->c, on_list, &l);
    assert_int_equal(l.n, 2);
    int i = list_find(&l, "g");
    assert_true(i >= 0);
    assert_int_equal(l.states[i], GRP_STABLE);
    i = list_find(&l, "offsets-only");
    assert_true(i >= 0);
    assert_int_equal(l.states[i], GRP_EMPTY);

    int64_t wt;
    assert_int_equal(grp_delete(f->c, K("g"), &wt), -CN_ENOTEMPTY);
    assert_int_equal(wt, -1);
    assert_int_equal(grp_delete(f->c, K("nope"), &wt), -CN_ENOGROUP);
    assert_int_equal(grp_leave(f->c, K("g"), K(a), KNULL), 0);
    assert_int_equal(state_of(f, "g"), GRP_EMPTY);
    assert_int_equal(grp_delete(f->c, K("g"), &wt), 0);
    assert_true(wt >= 0);
    assert_null(goff_get(f->s, K("g"), K("t"), 0));
    assert_int_equal(grp_describe(f->c, K("g"), on_describe, &d), -CN_ENOGROUP);
    assert_int_equal(grp_known(f->c, K("g")), 0);
    assert_int_equal(grp_delete(f->c, K("g"), &wt), -CN_ENOGROUP);
    assert_int_equal(grp_delete(f->c, K("offsets-only"), &wt), 0);
    assert_null(goff_get(f->s, K("offsets-only"), K("t"), 0));
    l.n = 0;
    grp_list(f->c, on_list, &l);
    assert_int_equal(l.n, 0);

    /* A deleted group starts again from generation 1, also after a restart. */
    fx_reopen(f);
    assert_int_equal(grp_known(f->c, K("g")), 0);
    assert_null(goff_get(f->s, K("g"), K("t"), 0));
    jrec j;
    join(f, "g", "", &j);
    assert_int_equal(j.generation, 1);
}

static void test_generation_survives_restart(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    two_members_stable(f, "g", a, b);                 /* generation 2 */
    assert_int_equal(grp_leave(f->c, K("g"), K(b), KNULL), 0);
    jrec ja;
    join(f, "g", a, &ja);
    assert_int_equal(ja.generation, 3);
    fx_reopen(f);
    /* Members are not restored; the generation is. */
    drec d = describe(f, "g");
    assert_int_equal(d.state, GRP_EMPTY);
    assert_int_equal(d.generation, 3);
    assert_int_equal(grp_known(f->c, K("g")), 1);
    assert_int_equal(hb(f, "g", a, 3), -CN_ENOMEMBER);
    assert_int_equal(commit_check(f, "g", a, 3), -CN_ENOMEMBER);
    join(f, "g", a, &ja);
    assert_int_equal(ja.error, -CN_ENOMEMBER);
    join(f, "g", "", &ja);
    assert_int_equal(ja.error, 0);
    assert_int_equal(ja.generation, 4);
    /* Going empty is a generation too, and is stored. */
    assert_int_equal(grp_leave(f->c, K("g"), K(ja.member_id), KNULL), 0);
    assert_int_equal(describe(f, "g").generation, 5);
    fx_reopen(f);
    assert_int_equal(describe(f, "g").generation, 5);
    join(f, "g", "", &ja);
    assert_int_equal(ja.generation, 6);
}

static void test_coord_free_answers_parked_requests_once(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    /* g1: a follower's sync parked (the leader never syncs). */
    jrec ja, jb;
    join(f, "g1", "", &ja);
    snprintf(a, sizeof(a), "%s", ja.member_id);
    join(f, "g1", "", &jb);
    join(f, "g1", a, &ja);
    snprintf(b, sizeof(b), "%s", jb.member_id);
    srec sb;
    sync_req(f, "g1", b, NULL, 2, NULL, 0, NULL, &sb);
    assert_int_equal(sb.calls, 0);
    /* g2: a join parked (the old member never rejoins). */
    char c[ID_MAX];
    one_member_stable(f, "g2", c);
    jrec jn;
    join(f, "g2", "", &jn);
    assert_int_equal(jn.calls, 0);
    grp_coord_free(f->c);
    f->c = NULL;
    assert_int_equal(sb.calls, 1);
    assert_int_equal(sb.error, -CN_EUNAVAIL);
    assert_int_equal(jn.calls, 1);
    assert_int_equal(jn.error, -CN_EUNAVAIL);
    assert_int_equal(jn.generation, -1);
    assert_int_equal(ja.calls, 1);                    /* nothing else answered again */
    assert_int_equal(jb.calls, 1);
    drive_ms(f, 20);                                  /* no timer left behind */
    assert_int_equal(sb.calls, 1);
    assert_int_equal(jn.calls, 1);
}

static void test_initial_delay_waits_for_more_members(void **state)
{
    fixture *f = *state;
    jrec ja, jb;
    int64_t t0 = loop_now_mono();
    join(f, "g", "", &ja);
    assert_int_equal(ja.calls, 0);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    drive_ms(f, 30);
    assert_int_equal(ja.calls, 0);
    join(f, "g", "", &jb);                            /* within the delay */
    drive_until(f, &ja.calls, 1000);
    assert_true(loop_now_mono() - t0 >= 90);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(ja.error, 0);
    assert_int_equal(ja.generation, 1);
    assert_int_equal(ja.n_members, 2);
    assert_string_equal(ja.leader, ja.member_id);
    assert_string_equal(jb.leader, ja.member_id);
    /* Later rebalances of a non-empty group do not wait for the delay. */
    jrec jc;
    join(f, "g", "", &jc);
    join(f, "g", ja.member_id, &ja);
    join(f, "g", jb.member_id, &jb);
    assert_int_equal(jc.calls, 1);
    assert_int_equal(jc.generation, 2);
}

/* The same with JoinGroup v4+ members, which arrive through
 * MEMBER_ID_REQUIRED: each one still extends the delay. */
static void test_initial_delay_extended_by_member_id_required_joins(void **state)
{
    fixture *f = *state;
    jrec ja, jb;
    jopts o = {.v4 = 1};
    int64_t t0 = loop_now_mono();
    join_opts(f, "g", "", &o, &ja);
    assert_int_equal(ja.error, -CN_EMEMBERREQ);
    join_opts(f, "g", ja.member_id, &o, &ja);
    assert_int_equal(ja.calls, 0);
    drive_ms(f, 60);
    join_opts(f, "g", "", &o, &jb);
    assert_int_equal(jb.error, -CN_EMEMBERREQ);
    join_opts(f, "g", jb.member_id, &o, &jb);
    assert_int_equal(jb.calls, 0);
    int64_t tb = loop_now_mono();
    /* Past the first delay (t0 + 100) but within b's (tb + 100). */
    drive_ms(f, t0 + 130 - loop_now_mono());
    if (loop_now_mono() < tb + 95)
        assert_int_equal(ja.calls, 0);
    drive_until(f, &ja.calls, 1000);
    assert_true(loop_now_mono() - tb >= 90);
    assert_int_equal(jb.calls, 1);
    assert_int_equal(ja.generation, 1);
    assert_int_equal(ja.n_members, 2);
}

/* PreparingRebalance with no members left (the only member left during the
 * initial delay) is as deletable as Empty: the group goes Dead and its join
 * timer with it. */
static void test_delete_group_preparing_without_members(void **state)
{
    fixture *f = *state;
    jrec ja;
    jopts o = {.instance = "i1"};
    join_opts(f, "g", "", &o, &ja);
    assert_int_equal(ja.calls, 0);
    assert_int_equal(grp_leave(f->c, K("g"), K(""), K("i1")), 0);
    assert_int_equal(ja.calls, 1);
    assert_int_equal(ja.error, -CN_ENOMEMBER);
    assert_int_equal(state_of(f, "g"), GRP_PREPARING);
    int64_t wt;
    assert_int_equal(grp_delete(f->c, K("g"), &wt), 0);
    drec d;
    assert_int_equal(grp_describe(f->c, K("g"), on_describe, &d), -CN_ENOGROUP);
    drive_ms(f, 150);                                 /* past the delay: no timer left */
    assert_int_equal(grp_known(f->c, K("g")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_member_joins_syncs_and_heartbeats, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_member_rebalances_and_syncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_sync_gives_missing_members_empty_assignment,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_selection_and_join_validation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leave_and_simple_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_answers_parked_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry_removes_silent_members, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rebalance_timeout_removes_members_that_do_not_rejoin,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_member_rejoin_without_rebalance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_member_survives_missed_join_phase, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_join_phase_waits_when_only_absent_static_members,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_member_id_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preparing_group_waits_for_pending_member, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_member_leave_releases_join_phase, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_describe_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coord_free_answers_parked_requests_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_initial_delay_waits_for_more_members, setup_delay,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_initial_delay_extended_by_member_id_required_joins,
                                        setup_delay, teardown),
        cmocka_unit_test_setup_teardown(test_delete_group_preparing_without_members, setup_delay,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
