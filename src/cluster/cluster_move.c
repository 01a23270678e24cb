/* Moves of partition replicas, the leader's part (broker.h, "Reassignment";
 * cluster plan step 8). Every node knows each running move's target from
 * the metadata log (broker_move.c); the partition's leader walks its
 * group's configuration towards it, one change at a time (libraft allows
 * one uncommitted change), in this order:
 *   1. a target node not in the group joins as a standby (it replicates
 *      the log and does not vote; its node opened an empty replica when
 *      the target was recorded);
 *   2. a standby in the target becomes a voter once it is in sync (it
 *      answered with everything committed within the contact window, the
 *      rule of the ISR), so a new voter never holds back commits for long;
 *   3. a server not in the target leaves the group; the leader itself
 *      leaves last, by handing leadership to a target voter first;
 *   4. when the voters are the target and the change is committed, the
 *      leader asks the controller for the end record ("F"), on which every
 *      node takes the target as the assignment and a node left out deletes
 *      its replica.
 * Nothing here is kept across restarts: each step is decided from the
 * group's configuration and the target, so a new leader (after a failover,
 * or a restart) goes on from wherever the last one stopped. Growing first
 * and shrinking last keeps at least rf caught-up voters in the group at
 * every step. */
#include "cluster/cluster_int.h"

#include <string.h>

#include "repl/repl.h"
#include "util/common.h"
#include "util/slog.h"

#define CL_MOVE_EVERY_MS 100     /* how often the leader looks at its moves */
#define CL_MOVE_RESEND_MS 5000   /* an end record asked for and not seen applied */

static void set_role(partition *p, rg_group *g, uint64_t id, int role, int64_t now)
{
    static const char *const names[] = {"leaves", "joins as a spare", "joins as a standby",
                                        "becomes a voter"};
    int was_voter = rg_role(g, id) == RG_ROLE_VOTER;
    int64_t idx;
    int rc = rg_set_role(g, id, role, now, &idx);
    if (rc == 0)
        slog_info("%s-%d: move: node %llu %s (configuration entry %lld)", p->t->name, p->id,
                  (unsigned long long)id,
                  was_voter && role == RG_ROLE_STANDBY ? "stops voting (a standby)" : names[role],
                  (long long)idx);
    else if (rc != -CN_EAGAIN)
        slog_warn("%s-%d: move: node %llu could not change role: %s", p->t->name, p->id,
                  (unsigned long long)id, cn_strerror(rc));
}

static void end_done(void *arg, int status, const char *msg)
{
    (void)arg;
    if (status < 0 && status != -CN_ENOMOVE)
        slog_warn("move: the end record was not written: %s", msg ? msg : cn_strerror(status));
}

/* One step of p's group towards the servers tg (n ids: the first nv
 * vote, the others are standbys), as its leader: 1 when its configuration
 * is that already, else 0 (a change was asked for, or waits). Growing comes
 * first (every target server in, the target voters voting once in sync),
 * shrinking last (extra voters become standbys, servers not in tg leave,
 * this node after handing over). */
static int walk(cluster *c, partition *p, const int32_t *tg, int n, int nv, int64_t now)
{
    rg_group *g = p->rg;
    if (!g || !rg_is_leader(g) || !rg_leader_ready(g) || rg_transferee(g) ||
        rg_change_pending(g) || n == 0)
        return 0;
    for (int k = 0; k < n; k++) {
        uint64_t id = (uint64_t)tg[k];
        int role = rg_role(g, id);
        if (role == RG_ROLE_VOTER || (k >= nv && role == RG_ROLE_STANDBY))
            continue;
        if (role == RG_ROLE_NONE || role == RG_ROLE_SPARE)
            set_role(p, g, id, RG_ROLE_STANDBY, now);
        else if (rg_in_sync(g, id, now) == 1)
            set_role(p, g, id, RG_ROLE_VOTER, now);
        return 0; /* one change at a time; a standby catching up waits */
    }
    uint64_t ids[64];
    int nsrv = CN_MIN(rg_server_ids(g, ids, 64), 64);
    int leave_self = 0;
    for (int k = 0; k < nsrv; k++) {
        int at = -1;
        for (int j = 0; j < n && at < 0; j++)
            if ((uint64_t)tg[j] == ids[k])
                at = j;
        if (at >= 0 && (at < nv || rg_role(g, ids[k]) != RG_ROLE_VOTER))
            continue;
        if (ids[k] == (uint64_t)c->self) {
            leave_self = 1;
            continue;
        }
        set_role(p, g, ids[k], at >= 0 ? RG_ROLE_STANDBY : RG_ROLE_NONE, now);
        return 0;
    }
    if (!leave_self)
        return 1;
    /* Hand over to the first target voter in sync (the preferred one when
     * it is). */
    for (int k = 0; k < nv; k++)
        if (rg_in_sync(g, (uint64_t)tg[k], now) == 1) {
            if (rg_transfer(g, (uint64_t)tg[k], now) == 0)
                slog_info("%s-%d: move: leadership to node %d, as this node %s",
                          p->t->name, p->id, tg[k],
                          cn_row_has(tg, n, c->self) ? "stops voting" : "leaves");
            break;
        }
    return 0;
}

static void step(cluster *c, topic *t, int32_t i, const int32_t *tg, int64_t now)
{
    partition *p = t->parts[i];
    if (!walk(c, p, tg, t->rf, t->rf, now))
        return;
    if (p->move_sent && now - p->move_sent < CL_MOVE_RESEND_MS)
        return;
    p->move_sent = now;
    cluster__meta_reassigned(c, t, i, tg, t->rf, end_done, NULL);
}

void cluster__move_tick(cluster *c, int64_t now)
{
    if (!c->b || now < c->next_move)
        return;
    c->next_move = now + CL_MOVE_EVERY_MS;
    /* The logs every node keeps (internal, no assignment) follow the
     * members (cluster_members.c) by the same walk, their target the
     * members but a leaving one that no partition lists any more (it
     * leaves the group, the leader last); the metadata log keeps such a node
     * until the others dropped it: it may lead one of them and must hear
     * what it needs to leave it (the end records of its moves), which a
     * node dropped from the metadata log first never would. */
    for (topic *t = broker_internal_topics(c->b); t; t = t->lnext) {
        if (t->rf < 2 || t->assign || t->n_parts != 1)
            continue;
        int meta = strcmp(t->name, BROKER_CLUSTER_META_TOPIC) == 0;
        int32_t every[CONFIG_MAX_PEERS];
        int n = 0;
        /* This node's own replicas may not know that it left the others
         * (their leader stops sending to a server it removed): a leaving
         * node that leads the metadata log hands it over as soon as it is
         * done, and the next leader, in those groups, decides. */
        for (int k = 0; k < c->n_ids; k++)
            if (!cluster__member_done(c, c->ids[k]))
                every[n++] = c->ids[k];
        int active = n;
        for (int k = 0; meta && k < c->n_ids; k++)
            if (cluster__member_done(c, c->ids[k]) && c->ids[k] != c->self &&
                cluster__in_every_node_log(c, c->ids[k], 1))
                every[n++] = c->ids[k];
        /* cluster.voters.max: beyond it the members of higher id hold a
         * copy that does not vote (a cluster that small: all vote, as
         * before the cap). */
        int nv = active > c->cfg->cluster_voters_max ? c->cfg->cluster_voters_max : n;
        walk(c, t->parts[0], every, n, nv, now);
    }
    if (broker_moves_running(c->b) == 0)
        return;
    for (topic *t = broker_topics(c->b); t; t = t->lnext)
        for (int32_t i = 0; t->target && i < t->n_parts; i++) {
            const int32_t *tg = broker_reassign_target(t, i);
            if (tg)
                step(c, t, i, tg, now);
        }
}
