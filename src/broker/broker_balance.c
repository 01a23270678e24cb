/* Preferred leaders and leader balance (Kafka's auto.leader.rebalance.enable).
 *
 * Raft elections put leaders wherever a timeout fired first: after a node
 * restarts, the others lead everything it led, and nothing moves back. As
 * in Kafka, each replicated partition has a preferred leader, the first
 * replica of its assignment: the voters in id order, rotated by a hash of
 * the topic name plus the partition index, so that a topic's partitions
 * prefer the nodes in turn (Metadata lists replicas in this order).
 *
 * Every leader.imbalance.check.interval.seconds, each node looks at the
 * partitions it leads. For a node X, the imbalance is the share of the
 * partitions preferring X that X does not lead (as this node knows the
 * leaders). When X's imbalance is above leader.imbalance.per.broker.percentage
 * and X is in sync for a partition this node leads and X prefers, this node
 * hands that partition's leadership to X (rg_transfer: X is told to stand
 * at once; Raft guarantees hold as in any election). A transfer that does
 * not complete within an election timeout is abandoned by libraft; the
 * next check tries again.
 *
 * Co-location (broker_colocate): the transaction coordinator commits a
 * transaction's offsets into the offsets store, which only the leader of
 * __consumer_offsets-0 can write; so the leadership of
 * __transaction_state-0 follows that leader (checked at every cluster
 * tick). Leader balance leaves internal logs alone (each_replicated). */
#include "broker/broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"
#include "util/slog.h"

#define BAL_MAX_NODES 64

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The replicas of p in assignment order (the preferred one first): its
 * topic's placement (broker_place.c), or for a topic created before
 * placement the voters in the same order placement gives every node. */
static int assignment(const partition *p, uint64_t *ids, int cap)
{
    const int32_t *a = broker__replicas_of(p->t, p->id);
    if (a) {
        int n = CN_MIN(p->t->rf, cap);
        for (int i = 0; i < n; i++)
            ids[i] = (uint64_t)a[i];
        return p->t->rf;
    }
    if (!p->rg)
        return 0;
    uint64_t v[BAL_MAX_NODES];
    int n = rg_voter_ids(p->rg, v, BAL_MAX_NODES);
    n = CN_MIN(n, BAL_MAX_NODES);
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof(v[0]), cmp_u64);
    uint32_t h = 2166136261u; /* FNV-1a 32 of the topic name */
    for (const char *c = p->t->name; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    int start = (int)((h + (uint32_t)p->id) % (uint32_t)n);
    int k = 0;
    for (int i = 0; i < n && k < cap; i++)
        ids[k++] = v[(start + i) % n];
    return n;
}

int broker_partition_replicas(const partition *p, int32_t *out, int cap)
{
    const int32_t *tg = broker_reassign_target(p->t, p->id);
    if (tg) {
        /* A move runs: Kafka's form, the target then those leaving. */
        const int32_t *a = broker__replicas_of(p->t, p->id);
        int n = 0, rf = p->t->rf;
        for (int i = 0; i < rf; i++)
            if (n < cap)
                out[n++] = tg[i];
        for (int i = 0; i < rf; i++) {
            int kept = 0;
            for (int j = 0; j < rf; j++)
                kept |= a[i] == tg[j];
            if (!kept && n < cap)
                out[n++] = a[i];
        }
        return n;
    }
    if (!p->rg && !p->t->assign) {
        if (cap > 0)
            out[0] = p->t->b->cfg->node_id;
        return 1;
    }
    uint64_t ids[BAL_MAX_NODES];
    int n = assignment(p, ids, BAL_MAX_NODES);
    for (int i = 0; i < n && i < cap; i++)
        out[i] = (int32_t)ids[i];
    return n;
}

int32_t broker_partition_preferred(const partition *p)
{
    int32_t id = -1;
    broker_partition_replicas(p, &id, 1);
    return id;
}

typedef struct bal_node {
    int32_t id;
    int preferred;      /* partitions that prefer it */
    int not_led;        /* of those, led by another node or by none known */
} bal_node;

static bal_node *bal_find(bal_node *ns, int *n, int32_t id)
{
    for (int i = 0; i < *n; i++)
        if (ns[i].id == id)
            return &ns[i];
    if (*n == BAL_MAX_NODES)
        return NULL;
    ns[*n] = (bal_node){.id = id};
    return &ns[(*n)++];
}

typedef void (*part_fn)(broker *b, partition *p, void *arg);

/* The topics' replicated partitions. Internal logs stay where elections put
 * them: each is one partition whose move disturbs every client of it (the
 * controller's requests in flight, every group's coordinator) for no
 * balance worth having. */
static void each_replicated(broker *b, part_fn fn, void *arg)
{
    for (topic *t = b->list; t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++)
            if (t->parts[i] && t->parts[i]->rg)
                fn(b, t->parts[i], arg);
}

typedef struct bal_state {
    bal_node nodes[BAL_MAX_NODES];
    int n;
    int64_t now;
    int moved, pct;
} bal_state;

static void count_one(broker *b, partition *p, void *arg)
{
    (void)b;
    bal_state *st = arg;
    bal_node *x = bal_find(st->nodes, &st->n, broker_partition_preferred(p));
    if (!x)
        return;
    x->preferred++;
    if (rg_leader_id(p->rg) != (uint64_t)x->id)
        x->not_led++;
}

static void move_one(broker *b, partition *p, void *arg)
{
    bal_state *st = arg;
    if (!rg_is_leader(p->rg) || !rg_leader_ready(p->rg) || rg_transferee(p->rg) != 0)
        return;
    if (broker_reassign_target(p->t, p->id))
        return; /* a move runs: its leader may be leaving (cluster_move.c) */
    int32_t pref = broker_partition_preferred(p);
    if (pref < 0 || pref == b->cfg->node_id)
        return;
    bal_node *x = bal_find(st->nodes, &st->n, pref);
    if (!x || x->preferred == 0 || (int64_t)x->not_led * 100 <= (int64_t)st->pct * x->preferred)
        return;
    if (rg_in_sync(p->rg, (uint64_t)pref, st->now) != 1)
        return;
    int rc = rg_transfer(p->rg, (uint64_t)pref, st->now);
    if (rc < 0) {
        slog_debug("leader balance: %s-%d to node %d: %s", p->t->name, p->id, pref,
                   cn_strerror(rc));
        return;
    }
    slog_info("leader balance: handing %s-%d to its preferred leader, node %d", p->t->name,
              p->id, pref);
    st->moved++;
}

int broker_balance_leaders(broker *b, int64_t now)
{
    if (!b->rg || !b->cfg->auto_leader_rebalance)
        return 0;
    bal_state st = {.now = now, .pct = b->cfg->leader_imbalance_pct};
    each_replicated(b, count_one, &st);
    each_replicated(b, move_one, &st);
    return st.moved;
}

static partition *internal(broker *b, const char *name)
{
    for (topic *t = b->internal; t; t = t->lnext)
        if (strcmp(t->name, name) == 0)
            return t->n_parts > 0 ? t->parts[0] : NULL;
    return NULL;
}

int broker_colocate(broker *b, const char *follower, const char *lead, int64_t now)
{
    partition *f = internal(b, follower), *l = internal(b, lead);
    if (!f || !l || !f->rg || !l->rg)
        return 0;
    if (!rg_is_leader(f->rg) || !rg_leader_ready(f->rg) || rg_transferee(f->rg) != 0)
        return 0;
    uint64_t to = rg_leader_id(l->rg);
    if (to == 0 || to == (uint64_t)b->cfg->node_id || rg_in_sync(f->rg, to, now) != 1)
        return 0;
    int rc = rg_transfer(f->rg, to, now);
    if (rc < 0)
        return 0;
    slog_info("%s-0: handing leadership to node %llu, the leader of %s-0", follower,
              (unsigned long long)to, lead);
    return 1;
}

int broker_colocate_prefix(broker *b, const char *prefix, const char *lead, int64_t now)
{
    partition *l = internal(b, lead);
    if (!l || !l->rg)
        return 0;
    uint64_t to = rg_leader_id(l->rg);
    if (to == 0 || to == (uint64_t)b->cfg->node_id)
        return 0;
    size_t pl = strlen(prefix);
    int n = 0;
    for (topic *t = b->internal; t; t = t->lnext) {
        partition *f = t->n_parts > 0 ? t->parts[0] : NULL;
        if (!f || !f->rg || strncmp(t->name, prefix, pl) != 0 || !rg_is_leader(f->rg) ||
            !rg_leader_ready(f->rg) || rg_transferee(f->rg) != 0 ||
            rg_in_sync(f->rg, to, now) != 1 || rg_transfer(f->rg, to, now) < 0)
            continue;
        slog_info("%s-0: handing leadership to node %llu, the leader of %s-0", t->name,
                  (unsigned long long)to, lead);
        n++;
    }
    return n;
}

/* An in-sync voter of p other than this node that up() says is reachable,
 * the preferred one first; 0 when there is none. */
static uint64_t hand_off_target(broker *b, partition *p, int64_t now,
                                int (*up)(void *arg, int32_t id), void *arg)
{
    uint64_t ids[BAL_MAX_NODES];
    int n = assignment(p, ids, BAL_MAX_NODES);
    for (int i = 0; i < n; i++)
        if (ids[i] != (uint64_t)b->cfg->node_id && rg_role(p->rg, ids[i]) == RG_ROLE_VOTER &&
            rg_in_sync(p->rg, ids[i], now) == 1 && up(arg, (int32_t)ids[i]))
            return ids[i];
    return 0;
}

int broker_hand_off(broker *b, int64_t now, int (*up)(void *arg, int32_t id), void *arg)
{
    int left = 0;
    topic *lists[2] = {b->list, b->internal};
    for (int l = 0; l < 2; l++)
        for (topic *t = lists[l]; t; t = t->lnext)
            for (int32_t i = 0; i < t->n_parts; i++) {
                partition *p = t->parts[i];
                if (!p || !p->rg || !rg_is_leader(p->rg))
                    continue;
                if (rg_transferee(p->rg) != 0) {
                    left++;
                    continue;
                }
                uint64_t to = hand_off_target(b, p, now, up, arg);
                if (to && rg_transfer(p->rg, to, now) == 0)
                    left++; /* no replica in sync: nobody to wait for */
            }
    return left;
}
