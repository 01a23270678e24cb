/* Administration of a group, leader side: leadership transfer and
 * membership changes on libraft's request events (RAFT_TRANSFER,
 * RAFT_CATCH_UP, a RAFT_SUBMIT of a RAFT_CHANGE entry). libraft enforces
 * one uncommitted configuration change at a time; the configuration entry
 * goes to raft.meta like the bootstrap one, and its commit is applied by
 * rg_group.c (apply_configurations). A refusal changes nothing and leaves
 * the group running. */
#include "repl/repl_int.h"

#include <stdio.h>

#include "util/common.h"

static int map_refusal(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
        return -CN_ENOTLEADER;
    case RAFT_CANTCHANGE:
        return -CN_EAGAIN;
    default:
        return -CN_EINVAL;
    }
}

static int leader_ok(const rg_group *g)
{
    if (g->failed)
        return -CN_EIO;
    if (raft_state((struct raft *)&g->raft) != RAFT_LEADER ||
        raft_transferee((struct raft *)&g->raft) != 0)
        return -CN_ENOTLEADER;
    return 0;
}

static const struct raft_server *server_of(const rg_group *g, uint64_t id)
{
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return &c->servers[i];
    return NULL;
}

int rg_transfer(rg_group *g, uint64_t to, int64_t now)
{
    int rc = leader_ok(g);
    if (rc < 0)
        return rc;
    if (to != 0) {
        const struct raft_server *s = server_of(g, to);
        if (!s || to == g->node->id || s->role != RAFT_VOTER)
            return -CN_EINVAL;
    }
    g->node->now_ms = now;
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_TRANSFER};
    ev.transfer.server_id = to;
    rc = map_refusal(rg__group_request(g, &ev, 0));
    return g->failed ? -CN_EIO : rc;
}

uint64_t rg_transferee(const rg_group *g)
{
    if (g->failed || raft_state((struct raft *)&g->raft) != RAFT_LEADER)
        return 0;
    return raft_transferee((struct raft *)&g->raft);
}

int rg_role(const rg_group *g, uint64_t id)
{
    const struct raft_server *s = server_of(g, id);
    if (!s)
        return RG_ROLE_NONE;
    switch (s->role) {
    case RAFT_VOTER:
        return RG_ROLE_VOTER;
    case RAFT_STANDBY:
        return RG_ROLE_STANDBY;
    default:
        return RG_ROLE_SPARE;
    }
}

static int to_raft_role(int role)
{
    return role == RG_ROLE_VOTER ? RAFT_VOTER : role == RG_ROLE_STANDBY ? RAFT_STANDBY : RAFT_SPARE;
}

int rg_set_role(rg_group *g, uint64_t id, int role, int64_t now, int64_t *out_index)
{
    *out_index = 0;
    int rc = leader_ok(g);
    if (rc < 0)
        return rc;
    if (id == 0 || role < RG_ROLE_NONE || role > RG_ROLE_VOTER || id == g->node->id ||
        rg_role(g, id) == role)
        return -CN_EINVAL;
    if (g->n_pend || log_raft_busy(g->p) >= 2)
        return -CN_EAGAIN;
    const struct raft_configuration *cur = &g->raft.configuration;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int voters = 0, added = 0;
    for (unsigned i = 0; i < cur->n && rc == 0; i++) {
        const struct raft_server *s = &cur->servers[i];
        int r = s->role;
        if (s->id == id) {
            added = 1;
            if (role == RG_ROLE_NONE)
                continue;
            r = to_raft_role(role);
        }
        voters += r == RAFT_VOTER;
        if (raft_configuration_add(&conf, s->id, s->address, r) != 0)
            rc = -CN_ENOMEM;
    }
    if (rc == 0 && !added) {
        char addr[24];
        snprintf(addr, sizeof(addr), "%llu", (unsigned long long)id);
        voters += role == RG_ROLE_VOTER;
        if (role == RG_ROLE_NONE)
            rc = -CN_EINVAL;
        else if (raft_configuration_add(&conf, id, addr, to_raft_role(role)) != 0)
            rc = -CN_ENOMEM;
    }
    if (rc == 0 && voters == 0)
        rc = -CN_EINVAL;
    struct raft_buffer buf = {0};
    if (rc == 0 && raft_configuration_encode(&conf, &buf) != 0)
        rc = -CN_ENOMEM;
    raft_configuration_close(&conf);
    if (rc < 0)
        return rc;
    g->node->now_ms = now;
    int64_t before = (int64_t)raft_last_index(&g->raft);
    struct raft_entry e = {.term = raft_current_term(&g->raft), .type = RAFT_CHANGE, .buf = buf,
                           .batch = buf.base};
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_SUBMIT};
    ev.submit.entries = &e;
    ev.submit.n = 1;
    rc = map_refusal(rg__group_request(g, &ev, 1));
    raft_free(buf.base);
    if (g->failed)
        return -CN_EIO;
    if (rc == 0)
        *out_index = before + 1;
    return rc;
}

int rg_catch_up(rg_group *g, uint64_t id, int64_t now)
{
    int rc = leader_ok(g);
    if (rc < 0)
        return rc;
    if (id == g->node->id || !server_of(g, id))
        return -CN_EINVAL;
    g->node->now_ms = now;
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_CATCH_UP};
    ev.catch_up.server_id = id;
    rc = map_refusal(rg__group_request(g, &ev, 0));
    return g->failed ? -CN_EIO : rc;
}

int rg_catch_up_status(const rg_group *g, uint64_t id)
{
    if (g->failed || raft_state((struct raft *)&g->raft) != RAFT_LEADER || !server_of(g, id))
        return RG_CATCH_UP_NONE;
    int st = RAFT_CATCH_UP_NONE;
    if (raft_catch_up(&g->raft, id, &st) != 0)
        return RG_CATCH_UP_NONE;
    switch (st) {
    case RAFT_CATCH_UP_RUNNING:
        return RG_CATCH_UP_RUNNING;
    case RAFT_CATCH_UP_ABORTED:
        return RG_CATCH_UP_ABORTED;
    case RAFT_CATCH_UP_FINISHED:
        return RG_CATCH_UP_FINISHED;
    default:
        return RG_CATCH_UP_NONE;
    }
}

int rg_server_ids(const rg_group *g, uint64_t *out, int cap)
{
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n && (int)i < cap; i++)
        out[i] = c->servers[i].id;
    return (int)c->n;
}

int rg_change_pending(const rg_group *g)
{
    return g->raft.configuration_uncommitted_index != 0;
}
