/* Consumer-group coordinator state machine: join, sync, heartbeat, leave,
 * commit checks, timers. Admin queries are in group_admin.c. See group.h.
 *
 * A group is created Empty (group_get); after that its state changes only in
 * grp__transition(g, event), which applies next_state[][] below and
 * CN_ASSERTs that the event is legal in g's state (callers raise only events
 * their state allows: an illegal one is a bug, never bad input). Dead lasts
 * no time: grp_delete frees the group right after the move.
 *
 *              REBALANCE                JOIN_DONE                ASSIGNED
 *   Empty ------------------> Preparing ------------> Completing ----------> Stable
 *   ^   |                      |  |  ^                    |                    |
 *   |   |       ALL_GONE       |  |  |     REBALANCE      |     REBALANCE      |
 *   +---|----------------------+  |  +--------------------+--------------------+
 *       | DELETE                  | DELETE (no members left)
 *       v                         v
 *      Dead                      Dead
 *
 * What each request or timer does in each state, and the function behind it.
 * Errors drop their CN_ prefix (ENOMEMBER is -CN_ENOMEMBER); =>EVENT is the
 * grp__transition raised (GRP_EV_EVENT).
 *
 *  event \ state   Empty              Preparing           Completing          Stable
 *  JoinGroup, new  member_add, park,  member_add, park,   member_add, park,   as Completing
 *  member          =>REBALANCE        maybe_complete_join =>REBALANCE
 *  (new_member_joined)
 *  JoinGroup,      ENOMEMBER (no      park_join,          same protocols:     same protocols and
 *  known member    members)           maybe_complete_join join_answer_current not the leader:
 *                                                         else park,          join_answer_current
 *                                                         =>REBALANCE         else park,
 *                                                                             =>REBALANCE
 *  JoinGroup, new  as a new member    new id, park,       new id, park,       new id; same
 *  id for a known                     maybe_complete_join =>REBALANCE         protocols: answer
 *  static member                                                              now, else park,
 *                                                                             =>REBALANCE
 *  SyncGroup       ENOMEMBER          EREBALANCE          park; the leader's: answer the
 *  (grp_sync)                                             =>ASSIGNED, answer  assignment
 *                                                         every parked sync
 *  Heartbeat       ENOMEMBER          EREBALANCE          0                   0
 *  OffsetCommit    0 for a simple     0                   EREBALANCE          0
 *  (check_commit)  commit, else
 *                  ENOMEMBER
 *  LeaveGroup or   ENOMEMBER (no      member_remove,      member_remove,      as Completing
 *  session expiry  members)           maybe_complete_join =>REBALANCE
 *  all joined, or  -                  complete_join:      -                   -
 *  join_timer_fired                   =>JOIN_DONE, or
 *                                     =>ALL_GONE if
 *                                     nobody is left
 *  DeleteGroups    =>DELETE           =>DELETE if no      ENOTEMPTY           ENOTEMPTY
 *  (grp_delete)                       members, else
 *                                     ENOTEMPTY
 *
 * Before its cell, JoinGroup checks the request (EBADGROUP, ESESSIONTMO,
 * EGROUPPROTO), and a new member may get EGROUPFULL, or EMEMBERREQ with a
 * pending member id to join with (KIP-394). SyncGroup, Heartbeat and
 * OffsetCommit check the member first (check_member: EINSTFENCED, ENOMEMBER,
 * EGENERATION).
 *
 * The join phase ends early once every member has a parked join and no
 * pending member id is outstanding (all_joined), except during the initial
 * delay of a group that was Empty. Members that did not rejoin leave in
 * complete_join: dynamic ones at once, static ones when their session
 * expires; while only absent static members remain, the phase waits another
 * rebalance timeout. Preparing =>REBALANCE restarts the phase: complete_join
 * raises it if the members share no protocol, which their joins exclude. */
#include "group/group.h"
#include "group/group_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "net/loop.h"
#include "util/bin.h"
#include "util/common.h"
#include "util/slog.h"

static const char *const state_names[GRP_STATE__COUNT] = {
    "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead",
};

const char *grp_state_name(grp_state s)
{
    return (unsigned)s < GRP_STATE__COUNT ? state_names[s] : "Unknown";
}

/* Transitions ------------------------------------------------------------------ */

static const char *const event_names[GRP_EV__COUNT] = {
    "rebalance", "join done", "all gone", "assigned", "delete",
};

#define NO_MOVE (-1)

/* next_state[from][event], the table in the file header. */
static const signed char next_state[GRP_STATE__COUNT][GRP_EV__COUNT] = {
    /*                 REBALANCE      JOIN_DONE       ALL_GONE   ASSIGNED    DELETE */
    [GRP_EMPTY]      = {GRP_PREPARING, NO_MOVE,        NO_MOVE,   NO_MOVE,    GRP_DEAD},
    [GRP_PREPARING]  = {GRP_PREPARING, GRP_COMPLETING, GRP_EMPTY, NO_MOVE,    GRP_DEAD},
    [GRP_COMPLETING] = {GRP_PREPARING, NO_MOVE,        NO_MOVE,   GRP_STABLE, NO_MOVE},
    [GRP_STABLE]     = {GRP_PREPARING, NO_MOVE,        NO_MOVE,   NO_MOVE,    NO_MOVE},
    [GRP_DEAD]       = {NO_MOVE,       NO_MOVE,        NO_MOVE,   NO_MOVE,    NO_MOVE},
};

void grp__transition(grp *g, grp_event ev)
{
    CN_ASSERT((unsigned)g->state < GRP_STATE__COUNT && (unsigned)ev < GRP_EV__COUNT);
    int to = next_state[g->state][ev];
    if (to == NO_MOVE) {
        slog_error("group %s: event '%s' is illegal in state %s", g->id, event_names[ev],
                   state_names[g->state]);
        cn_assert_fail("legal group transition", __FILE__, __LINE__);
    }
    slog_debug("group %s: %s -> %s (%s)", g->id, state_names[g->state], state_names[to],
               event_names[ev]);
    g->state = (grp_state)to;
}

/* Helpers ------------------------------------------------------------------ */

char *grp__strdup(cn_str s)
{
    if (s.len < 0)
        return NULL;
    char *p = xmalloc((size_t)s.len + 1);
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = '\0';
    return p;
}

static int keq(cn_str a, const char *b) { return b && cn_str_eq(a, b); }

uint32_t grp__hash_of(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h % GRP_HASH;
}

/* "<prefix>-<uuid v4>" */
static char *new_member_id(cn_str prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (int i = 0; i < 16; i++)
            r[i] = (uint8_t)(rand() ^ (loop_now_mono() >> i));
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    int plen = prefix.len > 0 ? CN_MIN(prefix.len, 200) : 0;
    char *id = xmalloc((size_t)plen + 38);
    memcpy(id, prefix.ptr, (size_t)plen);
    char *p = id + plen;
    *p++ = '-';
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hx[r[i] >> 4];
        *p++ = hx[r[i] & 15];
    }
    *p = '\0';
    return id;
}

grp *grp__find(grp_coord *c, cn_str id)
{
    if (id.len < 0)
        return NULL;
    for (grp *g = c->hash[grp__hash_of(id.ptr, (size_t)id.len)]; g; g = g->hnext)
        if (cn_str_eq(id, g->id))
            return g;
    return NULL;
}

static grp_member *member_find(grp *g, cn_str id)
{
    for (grp_member *m = g->members; m; m = m->next)
        if (cn_str_eq(id, m->id))
            return m;
    return NULL;
}

static grp_member *member_find_instance(grp *g, cn_str inst)
{
    if (inst.len < 0)
        return NULL;
    for (grp_member *m = g->members; m; m = m->next)
        if (m->instance_id && cn_str_eq(inst, m->instance_id))
            return m;
    return NULL;
}

const grp_proto *grp__member_proto(const grp_member *m, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < m->n_protos; i++)
        if (strcmp(m->protos[i].name, name) == 0)
            return &m->protos[i];
    return NULL;
}

static void protos_free(grp_member *m)
{
    for (int i = 0; i < m->n_protos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
    }
    free(m->protos);
    m->protos = NULL;
    m->n_protos = 0;
}

static void protos_set(grp_member *m, const grp_join_req *req)
{
    protos_free(m);
    m->protos = xcalloc((size_t)req->n_protocols, sizeof(*m->protos));
    m->n_protos = req->n_protocols;
    for (int i = 0; i < req->n_protocols; i++) {
        m->protos[i].name = grp__strdup(req->protocols[i].name);
        int32_t len = req->protocols[i].metadata.len > 0 ? req->protocols[i].metadata.len : 0;
        m->protos[i].meta = xmalloc((size_t)len + 1);
        memcpy(m->protos[i].meta, req->protocols[i].metadata.ptr, (size_t)len);
        m->protos[i].len = len;
    }
}

/* Same protocol names and metadata, in the same order. */
static int protos_equal(const grp_member *m, const grp_join_req *req)
{
    if (m->n_protos != req->n_protocols)
        return 0;
    for (int i = 0; i < m->n_protos; i++) {
        const grp_protocol *p = &req->protocols[i];
        int32_t len = p->metadata.len > 0 ? p->metadata.len : 0;
        if (!cn_str_eq(p->name, m->protos[i].name) || len != m->protos[i].len ||
            memcmp(p->metadata.ptr, m->protos[i].meta, (size_t)len) != 0)
            return 0;
    }
    return 1;
}

static int member_supports(const grp_member *m, const char *name)
{
    return grp__member_proto(m, name) != NULL;
}

/* Protocol every member supports, chosen by each member's first preference
 * among those (most votes; ties go to the earlier one in the first member's
 * order). NULL if none. */
static const char *select_protocol(grp *g)
{
    if (!g->members)
        return NULL;
    const grp_member *first = g->members;
    int best = -1, best_votes = -1;
    for (int i = 0; i < first->n_protos; i++) {
        const char *cand = first->protos[i].name;
        int all = 1;
        for (grp_member *m = g->members; m && all; m = m->next)
            all = member_supports(m, cand);
        if (!all)
            continue;
        int votes = 0;
        for (grp_member *m = g->members; m; m = m->next) {
            /* m's most preferred protocol that everyone supports */
            for (int k = 0; k < m->n_protos; k++) {
                int ok = 1;
                for (grp_member *o = g->members; o && ok; o = o->next)
                    ok = member_supports(o, m->protos[k].name);
                if (ok) {
                    if (strcmp(m->protos[k].name, cand) == 0)
                        votes++;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = i;
            best_votes = votes;
        }
    }
    return best < 0 ? NULL : first->protos[best].name;
}

/* Would a member with these protocols fit the group's current members? */
static int group_accepts(grp *g, const grp_join_req *req)
{
    if (!g->members)
        return 1;
    if (!g->protocol_type || !cn_str_eq(req->protocol_type, g->protocol_type))
        return 0;
    for (int i = 0; i < req->n_protocols; i++) {
        int all = 1;
        for (grp_member *m = g->members; m && all; m = m->next) {
            int found = 0;
            for (int k = 0; k < m->n_protos && !found; k++)
                found = cn_str_eq(req->protocols[i].name, m->protos[k].name);
            all = found;
        }
        if (all)
            return 1;
    }
    return 0;
}

/* Persistence of the generation ---------------------------------------------- */

static void persist_meta(grp *g)
{
    if (!g->c->offsets)
        return;
    /* Blob: i16 version, i32 generation, protocol type and name as str
     * (util/bin.h: i16 length, then the bytes). */
    const char *pt = g->protocol_type ? g->protocol_type : "";
    const char *pn = g->protocol_name ? g->protocol_name : "";
    cn_str st = {pt, (int32_t)CN_MIN(strlen(pt), 32767)};
    cn_str sn = {pn, (int32_t)CN_MIN(strlen(pn), 32767)};
    wbuf w;
    wbuf_init(&w);
    bin_put_i16(&w, GRP_META_VERSION);
    bin_put_i32(&w, g->generation);
    bin_put_str(&w, st);
    bin_put_str(&w, sn);
    int64_t target;
    int rc = goff_put_group_meta(g->c->offsets, cn_str_c(g->id),
                                 (cn_bytes){w.buf, (int32_t)w.len}, &target);
    if (rc < 0)
        slog_warn("group %s: storing generation %d failed: %s", g->id, g->generation,
                  cn_strerror(rc));
    wbuf_fini(&w);
}

int32_t grp__load_generation(grp_coord *c, cn_str id)
{
    if (!c->offsets)
        return 0;
    cn_bytes b = goff_group_meta(c->offsets, id);
    bin_reader r;
    bin_reader_init(&r, b.ptr, b.len < 0 ? 0 : (size_t)b.len);
    if (bin_i16(&r) != GRP_META_VERSION)
        return 0;
    int32_t gen = bin_i32(&r);
    return r.err ? 0 : gen;
}

/* Answers ------------------------------------------------------------------ */

static void answer_join_error(grp_member *m, int err)
{
    if (!m->join_cb)
        return;
    grp_join_cb cb = m->join_cb;
    void *ctx = m->join_ctx;
    m->join_cb = NULL;
    m->join_ctx = NULL;
    grp_join_result r = {.error = err, .generation = -1, .leader = "", .member_id = m->id};
    cb(ctx, &r);
}

static void answer_sync(grp_member *m, int err)
{
    if (!m->sync_cb)
        return;
    grp_sync_cb cb = m->sync_cb;
    void *ctx = m->sync_ctx;
    m->sync_cb = NULL;
    m->sync_ctx = NULL;
    grp *g = m->g;
    grp_sync_result r = {.error = err};
    if (!err) {
        r.protocol_type = g->protocol_type;
        r.protocol_name = g->protocol_name;
        r.assignment = (cn_bytes){m->assign ? m->assign : (const uint8_t *)"", m->assign_len};
    } else {
        r.assignment = (cn_bytes){(const uint8_t *)"", 0};
    }
    cb(ctx, &r);
}

/* The current generation's answer to m (members only for the leader). */
static void join_answer_current(grp_member *m, grp_join_cb cb, void *ctx, int skip_assignment)
{
    grp *g = m->g;
    int is_leader = g->leader && strcmp(g->leader, m->id) == 0;
    grp_join_member *list = NULL;
    int n = 0;
    if (is_leader) {
        list = xcalloc((size_t)g->n_members, sizeof(*list));
        for (grp_member *o = g->members; o; o = o->next) {
            const grp_proto *p = grp__member_proto(o, g->protocol_name);
            list[n].member_id = o->id;
            list[n].instance_id = o->instance_id;
            list[n].metadata = p ? (cn_bytes){p->meta, p->len} : (cn_bytes){(const uint8_t *)"", 0};
            n++;
        }
    }
    grp_join_result r = {
        .error = 0,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol_name,
        .leader = g->leader ? g->leader : "",
        .member_id = m->id,
        .skip_assignment = skip_assignment,
        .members = list,
        .n_members = n,
    };
    cb(ctx, &r);
    free(list);
}

/* Timers ---------------------------------------------------------------------- */

static void session_arm(grp_member *m)
{
    if (m->join_cb)
        return; /* suspended while the join is parked */
    loop_timer_start(m->g->c->l, &m->session, m->session_ms);
}

static void member_remove(grp *g, grp_member *m, int err);
static void prepare_rebalance(grp *g, const char *why);
static void maybe_complete_join(grp *g);

static void session_expired(loop_timer *t)
{
    grp_member *m = t->data;
    grp *g = m->g;
    slog_info("group %s: member %s left: session timeout (%d ms) expired", g->id, m->id,
              m->session_ms);
    member_remove(g, m, -CN_ENOMEMBER);
}

/* Forget a member id handed out with -CN_EMEMBERREQ; a join phase
 * that waited for it may now complete. */
static void pending_forget(grp *g, grp_pending *p)
{
    for (grp_pending **pp = &g->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    loop_timer_stop(g->c->l, &p->expire);
    free(p->id);
    free(p);
    if (g->state == GRP_PREPARING)
        maybe_complete_join(g);
}

static void pending_expired(loop_timer *t)
{
    grp_pending *p = t->data;
    pending_forget(p->g, p);
}

static void complete_join(grp *g);

static void join_timer_fired(loop_timer *t)
{
    grp *g = t->data;
    if (g->state == GRP_PREPARING)
        complete_join(g);
}

/* Membership ------------------------------------------------------------------ */

static grp_member *member_add(grp *g, char *id, const grp_join_req *req)
{
    grp_member *m = xcalloc(1, sizeof(*m));
    m->g = g;
    m->id = id;
    m->instance_id = grp__strdup(req->instance_id);
    m->client_id = grp__strdup(req->client_id.len >= 0 ? req->client_id : cn_str_c(""));
    m->client_host = grp__strdup(req->client_host.len >= 0 ? req->client_host : cn_str_c(""));
    m->session_ms = req->session_timeout_ms;
    m->rebalance_ms = req->rebalance_timeout_ms;
    protos_set(m, req);
    loop_timer_init(&m->session, session_expired, m);
    /* Append: the first member to join leads. */
    grp_member **pp = &g->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    g->n_members++;
    if (!g->protocol_type)
        g->protocol_type = grp__strdup(req->protocol_type);
    return m;
}

static void member_free(grp *g, grp_member *m)
{
    loop_timer_stop(g->c->l, &m->session);
    protos_free(m);
    free(m->assign);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m);
}

/* Unlink m, answer whatever it had parked with err, and free it (no
 * rebalance triggered here). */
static void member_drop(grp *g, grp_member *m, int err)
{
    for (grp_member **pp = &g->members; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    g->n_members--;
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        free(g->leader);
        g->leader = g->members ? xstrdup(g->members->id) : NULL;
    }
    answer_join_error(m, err);
    answer_sync(m, err);
    member_free(g, m);
    if (!g->members) {
        free(g->protocol_type);
        g->protocol_type = NULL;
    }
}

static void member_remove(grp *g, grp_member *m, int err)
{
    member_drop(g, m, err);
    switch (g->state) {
    case GRP_STABLE:
    case GRP_COMPLETING:
        prepare_rebalance(g, "member left");
        break;
    case GRP_PREPARING:
        maybe_complete_join(g);
        break;
    default:
        break;
    }
}

static int all_joined(grp *g)
{
    if (g->pending)
        return 0;
    for (grp_member *m = g->members; m; m = m->next)
        if (!m->join_cb)
            return 0;
    return 1;
}

static void maybe_complete_join(grp *g)
{
    if (g->state != GRP_PREPARING || g->initial_phase)
        return;
    if (all_joined(g))
        complete_join(g);
}

static int32_t max_rebalance_ms(grp *g)
{
    int32_t t = 0;
    for (grp_member *m = g->members; m; m = m->next)
        t = CN_MAX(t, m->rebalance_ms);
    return t > 0 ? t : 60000;
}

static void prepare_rebalance(grp *g, const char *why)
{
    grp_coord *c = g->c;
    grp_state was = g->state;
    if (was == GRP_COMPLETING) {
        /* Followers waiting for the leader's assignment must rejoin. */
        for (grp_member *m = g->members; m; m = m->next) {
            free(m->assign);
            m->assign = NULL;
            m->assign_len = 0;
            answer_sync(m, -CN_EREBALANCE);
        }
    }
    grp__transition(g, GRP_EV_REBALANCE);
    slog_info("group %s: rebalance (generation %d): %s", g->id, g->generation, why);
    int32_t delay = c->cfg->group_initial_rebalance_delay_ms;
    if (was == GRP_EMPTY && delay > 0) {
        g->initial_phase = 1;
        g->initial_deadline = loop_now_mono() + max_rebalance_ms(g);
        loop_timer_start(c->l, &g->join_timer, CN_MIN((int64_t)delay, max_rebalance_ms(g)));
        return;
    }
    g->initial_phase = 0;
    loop_timer_start(c->l, &g->join_timer, max_rebalance_ms(g));
    maybe_complete_join(g);
}

static void complete_join(grp *g)
{
    grp_coord *c = g->c;
    loop_timer_stop(c->l, &g->join_timer);
    g->initial_phase = 0;
    /* Dynamic members that did not rejoin in time are out. Static ones stay
     * (until their session expires) so that a restarting instance keeps its
     * place, as in Kafka's onCompleteJoin. */
    grp_member *m = g->members;
    grp_member *joined = NULL;
    while (m) {
        grp_member *next = m->next;
        if (!m->join_cb && !m->instance_id) {
            slog_info("group %s: member %s removed: did not rejoin within the rebalance timeout",
                      g->id, m->id);
            member_drop(g, m, -CN_ENOMEMBER);
        } else if (m->join_cb && !joined) {
            joined = m;
        }
        m = next;
    }
    if (g->members && !joined) {
        /* Only absent static members: nobody to answer. Wait another
         * rebalance timeout; their sessions expire meanwhile. */
        loop_timer_start(c->l, &g->join_timer, max_rebalance_ms(g));
        return;
    }
    grp_member *leader = g->leader ? member_find(g, cn_str_c(g->leader)) : NULL;
    if (joined && (!leader || !leader->join_cb)) {
        free(g->leader);                  /* the leader must be one that rejoined */
        g->leader = xstrdup(joined->id);
    }
    g->generation++;
    free(g->protocol_name);
    g->protocol_name = NULL;
    if (!g->members) {
        grp__transition(g, GRP_EV_ALL_GONE);
        free(g->leader);
        g->leader = NULL;
        slog_info("group %s: empty at generation %d", g->id, g->generation);
        persist_meta(g);
        return;
    }
    const char *proto = select_protocol(g);
    if (!proto) {
        /* Cannot happen: joins are checked against the members. Be safe. */
        for (m = g->members; m; m = m->next)
            answer_join_error(m, -CN_EGROUPPROTO);
        prepare_rebalance(g, "no common protocol");
        return;
    }
    g->protocol_name = xstrdup(proto);
    if (!g->leader)
        g->leader = xstrdup(g->members->id);
    grp__transition(g, GRP_EV_JOIN_DONE);
    slog_info("group %s: generation %d with %d member(s), protocol %s, leader %s", g->id,
              g->generation, g->n_members, g->protocol_name, g->leader);
    persist_meta(g);
    /* Answer every parked join; arm the session timers again. */
    for (m = g->members; m; m = m->next) {
        grp_join_cb cb = m->join_cb;
        void *ctx = m->join_ctx;
        m->join_cb = NULL;
        m->join_ctx = NULL;
        session_arm(m);
        if (cb)
            join_answer_current(m, cb, ctx, 0);
    }
}

static grp *group_get(grp_coord *c, cn_str id, int create)
{
    grp *g = grp__find(c, id);
    if (g || !create)
        return g;
    g = xcalloc(1, sizeof(*g));
    g->c = c;
    g->id = grp__strdup(id);
    g->state = GRP_EMPTY;            /* every group starts Empty, then only grp__transition */
    g->generation = grp__load_generation(c, id);
    loop_timer_init(&g->join_timer, join_timer_fired, g);
    uint32_t h = grp__hash_of(id.ptr, (size_t)id.len);
    g->hnext = c->hash[h];
    c->hash[h] = g;
    return g;
}

void grp__group_free(grp_coord *c, grp *g, int err)
{
    while (g->members)
        member_drop(g, g->members, err);
    while (g->pending) {
        grp_pending *p = g->pending;
        g->pending = p->next;
        loop_timer_stop(c->l, &p->expire);
        free(p->id);
        free(p);
    }
    loop_timer_stop(c->l, &g->join_timer);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader);
    free(g);
}

/* Leadership of the offsets log (a cluster) ----------------------------------- */

/* Drop every group: its members' parked joins and syncs answer err. */
static void drop_all(grp_coord *c, int err)
{
    for (int i = 0; i < GRP_HASH; i++)
        while (c->hash[i]) {
            grp *g = c->hash[i];
            c->hash[i] = g->hnext;
            grp__group_free(c, g, err);
        }
}

int grp_coord_serving(grp_coord *c)
{
    if (!c->offsets)
        return 0;
    int rc = goff_serving(c->offsets);
    uint64_t gen = goff_generation(c->offsets);
    if (gen != c->seen_generation) {
        /* The store was loaded for a new term or dropped: groups built on
         * the old state go (members rejoin here or at the new coordinator). */
        c->seen_generation = gen;
        drop_all(c, -CN_ENOTCOORD);
    }
    return rc;
}

int32_t grp_coord_node(grp_coord *c)
{
    return c->offsets ? goff_coordinator(c->offsets) : broker_node_id(c->b);
}

/* Leadership moves show up as appends (broker_listen_appends). */
static void on_appends(broker_listener *l)
{
    grp_coord *c = (grp_coord *)((char *)l - offsetof(grp_coord, listener));
    grp_coord_serving(c);
}

/* API ------------------------------------------------------------------------- */

int grp_known(grp_coord *c, cn_str group_id)
{
    if (grp__find(c, group_id))
        return 1;
    return c->offsets && (goff_group_has_offsets(c->offsets, group_id) ||
                          goff_group_meta(c->offsets, group_id).len >= 0);
}

int grp_is_empty(grp_coord *c, cn_str group_id)
{
    grp *g = grp__find(c, group_id);
    return !g || !g->members;
}

static int expiry_is_empty(void *arg, cn_str group) { return grp_is_empty(arg, group); }

/* Remove committed offsets of groups that stayed empty past
 * offsets.retention.minutes (and commits whose own expiry passed). */
static void expiry_fired(loop_timer *t)
{
    grp_coord *c = t->data;
    int64_t retention = c->cfg->offsets_retention_minutes * 60000;
    if (grp_coord_serving(c) < 0) {
        loop_timer_start(c->l, t, c->cfg->offsets_retention_check_ms);
        return;
    }
    int n = goff_expire(c->offsets, loop_wall_ms(), retention, expiry_is_empty, c);
    if (n > 0)
        slog_info("offsets expiry removed %d committed offset(s)", n);
    loop_timer_start(c->l, t, c->cfg->offsets_retention_check_ms);
}

grp_coord *grp_coord_new(broker *b, goff_store *offsets)
{
    grp_coord *c = xcalloc(1, sizeof(*c));
    c->b = b;
    c->l = broker_loop(b);
    c->offsets = offsets;
    c->cfg = broker_config(b);
    loop_timer_init(&c->expiry, expiry_fired, c);
    if (offsets)
        loop_timer_start(c->l, &c->expiry, c->cfg->offsets_retention_check_ms);
    if (offsets && goff_replicated(offsets)) {
        c->listener.cb = on_appends;
        broker_listen_appends(b, &c->listener);
        c->listening = 1;
    }
    return c;
}

void grp_coord_free(grp_coord *c)
{
    if (!c)
        return;
    loop_timer_stop(c->l, &c->expiry);
    if (c->listening)
        broker_unlisten_appends(c->b, &c->listener);
    drop_all(c, -CN_EUNAVAIL);
    free(c);
}

static void join_error(grp_join_cb cb, void *ctx, int err, const char *member_id)
{
    grp_join_result r = {.error = err, .generation = -1, .leader = "",
                         .member_id = member_id ? member_id : ""};
    cb(ctx, &r);
}

static void park_join(grp_member *m, grp_join_cb cb, void *ctx)
{
    /* A second join from the same member replaces the first. */
    answer_join_error(m, -CN_EREBALANCE);
    m->join_cb = cb;
    m->join_ctx = ctx;
    loop_timer_stop(m->g->c->l, &m->session);
}

/* Park the join of a member just added and start or join a rebalance.
 * During the initial delay of a group that was empty, each new member
 * (whether it came straight in or through -CN_EMEMBERREQ) restarts the
 * delay, up to the deadline, as Kafka's InitialDelayedJoin waits again
 * while new members keep arriving. */
static void new_member_joined(grp *g, grp_member *m, grp_join_cb cb, void *ctx)
{
    grp_coord *c = g->c;
    park_join(m, cb, ctx);
    if (g->state == GRP_PREPARING)
        maybe_complete_join(g);
    else
        prepare_rebalance(g, "new member joined");
    if (g->state == GRP_PREPARING && g->initial_phase) {
        int64_t left = g->initial_deadline - loop_now_mono();
        loop_timer_start(c->l, &g->join_timer,
                         CN_MAX(0, CN_MIN((int64_t)c->cfg->group_initial_rebalance_delay_ms,
                                          left)));
    }
}

void grp_join(grp_coord *c, const grp_join_req *req, grp_join_cb cb, void *ctx)
{
    char midbuf[256];
    snprintf(midbuf, sizeof(midbuf), "%.*s", req->member_id.len > 0 ? req->member_id.len : 0,
             req->member_id.ptr ? req->member_id.ptr : "");
    if (req->group_id.len <= 0) {
        join_error(cb, ctx, -CN_EBADGROUP, midbuf);
        return;
    }
    int serving = grp_coord_serving(c);
    if (serving < 0) {
        join_error(cb, ctx, serving, midbuf);
        return;
    }
    if (req->session_timeout_ms < c->cfg->group_min_session_timeout_ms ||
        req->session_timeout_ms > c->cfg->group_max_session_timeout_ms) {
        join_error(cb, ctx, -CN_ESESSIONTMO, midbuf);
        return;
    }
    if (req->protocol_type.len <= 0 || req->n_protocols <= 0) {
        join_error(cb, ctx, -CN_EGROUPPROTO, midbuf);
        return;
    }
    int new_member = req->member_id.len <= 0;
    grp *g = group_get(c, req->group_id, new_member);
    if (!g) {
        join_error(cb, ctx, -CN_ENOMEMBER, midbuf);
        return;
    }
    if (!group_accepts(g, req)) {
        join_error(cb, ctx, -CN_EGROUPPROTO, midbuf);
        return;
    }
    if (new_member) {
        grp_member *old = member_find_instance(g, req->instance_id);
        if (old) {
            /* Static member back with a new incarnation: fence the old id. */
            char *nid = new_member_id(req->instance_id);
            slog_info("group %s: static member %s replaced %s with %s", g->id, old->instance_id,
                      old->id, nid);
            answer_join_error(old, -CN_EINSTFENCED);
            answer_sync(old, -CN_EINSTFENCED);
            int was_leader = g->leader && strcmp(g->leader, old->id) == 0;
            free(old->id);
            old->id = nid;
            if (was_leader) {
                free(g->leader);
                g->leader = xstrdup(nid);
            }
            int same = protos_equal(old, req);
            protos_set(old, req);
            old->session_ms = req->session_timeout_ms;
            old->rebalance_ms = req->rebalance_timeout_ms;
            if (g->state == GRP_STABLE && same) {
                session_arm(old);
                join_answer_current(old, cb, ctx, was_leader);
                return;
            }
            park_join(old, cb, ctx);
            if (g->state == GRP_PREPARING)
                maybe_complete_join(g);
            else
                prepare_rebalance(g, "static member rejoined with new metadata");
            return;
        }
        if (g->n_members >= c->cfg->group_max_size) {
            join_error(cb, ctx, -CN_EGROUPFULL, "");
            return;
        }
        cn_str prefix = req->instance_id.len >= 0 ? req->instance_id : req->client_id;
        char *nid = new_member_id(prefix);
        if (req->require_known_member_id) {
            grp_pending *p = xcalloc(1, sizeof(*p));
            p->g = g;
            p->id = nid;
            loop_timer_init(&p->expire, pending_expired, p);
            loop_timer_start(c->l, &p->expire, req->session_timeout_ms);
            p->next = g->pending;
            g->pending = p;
            join_error(cb, ctx, -CN_EMEMBERREQ, nid);
            return;
        }
        grp_member *m = member_add(g, nid, req);
        new_member_joined(g, m, cb, ctx);
        return;
    }
    /* A member id we handed out with -CN_EMEMBERREQ? */
    for (grp_pending **pp = &g->pending; *pp; pp = &(*pp)->next) {
        grp_pending *p = *pp;
        if (!cn_str_eq(req->member_id, p->id))
            continue;
        *pp = p->next;
        loop_timer_stop(c->l, &p->expire);
        char *nid = p->id;
        free(p);
        if (g->n_members >= c->cfg->group_max_size) {
            join_error(cb, ctx, -CN_EGROUPFULL, nid);
            free(nid);
            return;
        }
        grp_member *m = member_add(g, nid, req);
        new_member_joined(g, m, cb, ctx);
        return;
    }
    grp_member *m = member_find(g, req->member_id);
    if (!m) {
        grp_member *byinst = member_find_instance(g, req->instance_id);
        join_error(cb, ctx, byinst ? -CN_EINSTFENCED : -CN_ENOMEMBER, midbuf);
        return;
    }
    if (req->instance_id.len >= 0 && !keq(req->instance_id, m->instance_id)) {
        join_error(cb, ctx, -CN_EINSTFENCED, midbuf);
        return;
    }
    int same = protos_equal(m, req);
    if (!same)
        protos_set(m, req);
    m->session_ms = req->session_timeout_ms;
    m->rebalance_ms = req->rebalance_timeout_ms;
    int is_leader = g->leader && strcmp(g->leader, m->id) == 0;
    switch (g->state) {
    case GRP_PREPARING:
        park_join(m, cb, ctx);
        maybe_complete_join(g);
        break;
    case GRP_COMPLETING:
        if (same) {
            session_arm(m);
            join_answer_current(m, cb, ctx, 0);
        } else {
            park_join(m, cb, ctx);
            prepare_rebalance(g, "member changed its subscription");
        }
        break;
    case GRP_STABLE:
        if (same && !is_leader) {
            session_arm(m);
            join_answer_current(m, cb, ctx, 0);
        } else {
            park_join(m, cb, ctx);
            prepare_rebalance(g, is_leader ? "leader rejoined" : "member changed its subscription");
        }
        break;
    default:
        join_error(cb, ctx, -CN_ENOMEMBER, midbuf);
        break;
    }
}

/* Common checks of sync/heartbeat/commit: the member and its generation. */
static int check_member(grp *g, cn_str member_id, cn_str instance_id, int32_t generation,
                        grp_member **out)
{
    *out = NULL;
    if (instance_id.len >= 0) {
        grp_member *byinst = member_find_instance(g, instance_id);
        if (byinst && !cn_str_eq(member_id, byinst->id))
            return -CN_EINSTFENCED;
    }
    grp_member *m = member_find(g, member_id);
    if (!m)
        return -CN_ENOMEMBER;
    if (generation != g->generation)
        return -CN_EGENERATION;
    *out = m;
    return 0;
}

void grp_sync(grp_coord *c, const grp_sync_req *req, grp_sync_cb cb, void *ctx)
{
    grp_sync_result r = {.error = grp_coord_serving(c), .assignment = {(const uint8_t *)"", 0}};
    if (r.error) {
        cb(ctx, &r);
        return;
    }
    grp *g = grp__find(c, req->group_id);
    grp_member *m = NULL;
    if (!g || g->state == GRP_EMPTY || g->state == GRP_DEAD) {
        r.error = -CN_ENOMEMBER;
        cb(ctx, &r);
        return;
    }
    r.error = check_member(g, req->member_id, req->instance_id, req->generation, &m);
    if (!r.error && ((req->protocol_type.len >= 0 && !keq(req->protocol_type, g->protocol_type)) ||
                     (req->protocol_name.len >= 0 && !keq(req->protocol_name, g->protocol_name))))
        r.error = -CN_EGROUPPROTO;
    if (r.error) {
        cb(ctx, &r);
        return;
    }
    switch (g->state) {
    case GRP_PREPARING:
        r.error = -CN_EREBALANCE;
        cb(ctx, &r);
        return;
    case GRP_STABLE:
        m->sync_cb = cb;
        m->sync_ctx = ctx;
        session_arm(m);
        answer_sync(m, 0);
        return;
    case GRP_COMPLETING:
        answer_sync(m, -CN_EREBALANCE); /* an earlier parked sync */
        m->sync_cb = cb;
        m->sync_ctx = ctx;
        session_arm(m);
        if (!(g->leader && strcmp(g->leader, m->id) == 0))
            return; /* followers wait for the leader */
        for (grp_member *o = g->members; o; o = o->next) {
            free(o->assign);
            o->assign = NULL;
            o->assign_len = 0;
        }
        for (int i = 0; i < req->n_assignments; i++) {
            grp_member *o = member_find(g, req->assignments[i].member_id);
            if (!o)
                continue;
            cn_bytes a = req->assignments[i].assignment;
            int32_t len = a.len > 0 ? a.len : 0;
            free(o->assign);
            o->assign = xmalloc((size_t)len + 1);
            memcpy(o->assign, a.ptr, (size_t)len);
            o->assign_len = len;
        }
        grp__transition(g, GRP_EV_ASSIGNED);
        slog_info("group %s: stable at generation %d", g->id, g->generation);
        for (grp_member *o = g->members; o; o = o->next)
            answer_sync(o, 0);
        return;
    default:
        r.error = -CN_ENOMEMBER;
        cb(ctx, &r);
        return;
    }
}

int grp_heartbeat(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id,
                  int32_t generation)
{
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    grp *g = grp__find(c, group_id);
    if (!g)
        return -CN_ENOMEMBER;
    if (g->state == GRP_DEAD)
        return -CN_EUNAVAIL;
    grp_member *m;
    int err = check_member(g, member_id, instance_id, generation, &m);
    if (err)
        return err;
    switch (g->state) {
    case GRP_PREPARING:
        session_arm(m);
        return -CN_EREBALANCE;
    case GRP_COMPLETING:
    case GRP_STABLE:
        session_arm(m);
        return 0;
    default:
        return -CN_ENOMEMBER;
    }
}

int grp_leave(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id)
{
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    grp *g = grp__find(c, group_id);
    if (!g)
        return -CN_ENOMEMBER;
    grp_member *m;
    if (member_id.len <= 0) {
        m = member_find_instance(g, instance_id);
    } else {
        /* A client that got -CN_EMEMBERREQ and shuts down before
         * rejoining leaves with that id (Kafka: removePendingMember). */
        for (grp_pending *p = g->pending; p; p = p->next)
            if (cn_str_eq(member_id, p->id)) {
                slog_info("group %s: pending member %s left", g->id, p->id);
                pending_forget(g, p);
                return 0;
            }
        m = member_find(g, member_id);
        if (instance_id.len >= 0) {
            grp_member *byinst = member_find_instance(g, instance_id);
            if (byinst && byinst != m)
                return -CN_EINSTFENCED;
            if (m && !keq(instance_id, m->instance_id))
                return -CN_EINSTFENCED;
        }
    }
    if (!m)
        return -CN_ENOMEMBER;
    slog_info("group %s: member %s left", g->id, m->id);
    member_remove(g, m, -CN_ENOMEMBER);
    return 0;
}

int grp_check_commit(grp_coord *c, cn_str group_id, cn_str member_id, cn_str instance_id,
                     int32_t generation)
{
    if (group_id.len <= 0)
        return -CN_EBADGROUP;
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    grp *g = grp__find(c, group_id);
    if (generation < 0 && member_id.len <= 0) {
        /* A simple (standalone) commit: only while nobody is a member. */
        return !g || !g->members ? 0 : -CN_ENOMEMBER;
    }
    /* A group Kafka would have loaded (offsets or a stored generation) is an
     * empty group there: the member is unknown. */
    if (!g)
        return generation < 0 || grp_known(c, group_id) ? -CN_ENOMEMBER
                                                        : -CN_EGENERATION;
    grp_member *m;
    int err = check_member(g, member_id, instance_id, generation, &m);
    if (err)
        return err;
    /* Only a current member of the current generation learns that the
     * assignment is not there yet; a stale one gets -CN_EGENERATION. */
    if (g->state == GRP_COMPLETING)
        return -CN_EREBALANCE;
    session_arm(m);
    return 0;
}
