/* The replication node: this process's raft.votes, its open groups, the
 * per-turn flush (group commit of votes and entries) and the timers.
 * Groups are few per node for now and kept in an array; timeouts are found
 * by a scan over groups with peers (single-voter groups have none), to be
 * replaced by a heap when thousands of replicated groups share a node. */
#include "repl/repl_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

int rg_node_open(const char *dir, uint64_t node_id, log_syncer *syncer, const rg_node_cb *cb,
                 rg_node **out)
{
    *out = NULL;
    if (node_id == 0 || !cb || !cb->send)
        return -CN_EINVAL;
    rg_node *n = xcalloc(1, sizeof(*n));
    n->id = node_id;
    n->dir = xstrdup(dir);
    n->syncer = syncer;
    n->cb = *cb;
    n->votes_fd = -1;
    n->seed = node_id * 0x2545F4914F6CDD1Dull;
    n->election_ms = 1000;
    n->heartbeat_ms = 100;
    wbuf_init(&n->out);
    int rc = rg__votes_open(n);
    if (rc < 0) {
        rg__votes_close(n);
        wbuf_fini(&n->out);
        free(n->dir);
        free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int64_t rg__wall(const rg_node *n)
{
    return n->cb.wall_ms ? n->cb.wall_ms(n->cb.arg) : n->now_ms;
}

void rg_node_set_timeouts(rg_node *n, unsigned election_ms, unsigned heartbeat_ms, uint64_t seed)
{
    n->election_ms = election_ms;
    n->heartbeat_ms = heartbeat_ms;
    n->seed = seed;
}

void rg_node_close(rg_node *n)
{
    if (!n)
        return;
    while (n->n_groups)
        rg_group_close(n->groups[n->n_groups - 1]);
    free(n->groups);
    rg__votes_close(n);
    wbuf_fini(&n->out);
    free(n->rx_entries);
    free(n->rd_buf);
    if (n->votes_inflight) {
        n->dead = 1; /* freed by the sync's completion */
        return;
    }
    free(n->dir);
    free(n);
}

uint64_t rg_node_id(const rg_node *n) { return n->id; }
void rg_node_set_syncer(rg_node *n, log_syncer *syncer) { n->syncer = syncer; }

rg_group *rg_group_find(const rg_node *n, uint64_t group_id)
{
    for (size_t i = 0; i < n->n_groups; i++)
        if (n->groups[i]->id == group_id)
            return n->groups[i];
    return NULL;
}

int rg_receive(rg_node *n, uint64_t from, uint64_t group_id, const uint8_t *msg, size_t len,
               int64_t now)
{
    n->now_ms = now;
    rg_group *g = rg_group_find(n, group_id);
    if (!g)
        return -CN_ENOENT;
    return rg__group_receive(g, from, msg, len, now);
}

int64_t rg_node_tick(rg_node *n, int64_t now)
{
    n->now_ms = now;
    int64_t next = INT64_MAX;
    /* A step may close nothing, but may not add groups either: index loop. */
    for (size_t i = 0; i < n->n_groups; i++) {
        rg_group *g = n->groups[i];
        rg__group_timeout(g, now);
        if (!g->failed)
            next = CN_MIN(next, g->deadline);
    }
    return next;
}

void rg_node_peer_down(rg_node *n, uint64_t peer, int64_t now)
{
    n->now_ms = now;
    for (size_t i = 0; i < n->n_groups; i++)
        rg__group_peer_down(n->groups[i], peer, now);
}

void rg_node_peer_up(rg_node *n, uint64_t peer)
{
    for (size_t i = 0; i < n->n_groups; i++)
        rg__group_peer_up(n->groups[i], peer);
}

void rg_node_flush(rg_node *n, int64_t now)
{
    n->now_ms = now;
    rg__votes_sync_request(n);
    /* With a NULL syncer a sync completes inside log_sync_request and its
     * step may write more entries: loop until no group has new ones. */
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < n->n_groups; i++) {
            rg_group *g = n->groups[i];
            if (g->need_sync && !g->failed) {
                rg__group_flush(g, now);
                again = 1;
            }
        }
        rg__votes_sync_request(n);
    }
}
