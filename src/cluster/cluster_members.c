/* The cluster's members (cluster_int.h, "Members"; docs/cluster-plan.md
 * step 8).
 *
 * The first members are the nodes cluster.peers names. A node started with
 * cluster.join=true is not a member: it dials the members it knows (its
 * seeds) with a HELLO that says so, learns every member from the first
 * answer, and waits. A member that accepted its connection asks the
 * controller to register it (FORWARD op 7, every 2 s while it stays
 * connected and unregistered); the controller appends a record "N", and
 * every node that applies it, the joining one included, takes the node
 * as a member: its ids, the broker's node set and this file follow. The
 * replicated logs of every node (__cluster_meta-0, __consumer_offsets-0,
 * __transaction_state-0) then take it in through their leaders
 * (cluster_move.c, cluster__members_move_tick).
 *
 * File <log.dirs>/cluster.members, text, rewritten whole (temporary file,
 * fsync, rename) whenever the members change; lines:
 *   joined                                this node joined a running cluster:
 *                                         it never bootstraps a log of every
 *                                         node (its first entries come from
 *                                         their leaders)
 *   member ID HOST PORT KAFKA_HOST KAFKA_PORT
 *                                         a member, its cluster listener and
 *                                         Kafka listener ("-" and 0: unknown)
 *   leaving ID                            that member is leaving
 *   removed ID                            a node removed from the cluster
 *                                         (cluster.peers may still name it)
 * A missing file is an empty one. Lines it does not know are skipped with
 * a warning.
 *
 * Leaving: the controller records "L" (cluster__meta_leave, checked there:
 * the other members can hold every topic's replicas); no new replica is
 * placed on the node from then on, and the controller moves its replicas
 * off, a few partitions at a time, each to the heaviest other member by
 * rendezvous weight (the moves of cluster_move.c). Once no partition lists
 * it (assignment or target), the leaders of the logs every node keeps drop
 * it from their groups (cluster_move.c); once this node's replicas of them
 * show it out of every group, the controller records "X" and every member
 * drops it. By then it is in no group: it can be stopped (it is not told:
 * the metadata log no longer reaches it; GET /cluster/nodes on a member
 * shows it gone). */
#include "cluster/cluster_int.h"
#include "cluster/cluster_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repl/repl.h"
#include "util/common.h"
#include "util/slog.h"

#define CL_REGISTER_EVERY_MS 2000

static void file_path(const cluster *c, char *buf, size_t n, const char *suffix)
{
    snprintf(buf, n, "%s/cluster.members%s", c->cfg->log_dirs, suffix);
}

cl_peer *cluster__peer_add(cluster *c, int32_t id, const char *host, int port)
{
    cl_peer *p = cluster__peer_by_id(c, id);
    if (p)
        return p;
    if (c->n_peers >= CONFIG_MAX_PEERS - 1)
        return NULL;
    p = &c->peers[c->n_peers++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    p->backoff = 100;
    return p;
}

int cluster__members_load(cluster *c)
{
    char path[4200];
    file_path(c, path, sizeof(path), "");
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            c->joined = !c->member_self;
            return 0;
        }
        slog_error("cannot read %s: %s", path, strerror(errno));
        return -CN_EIO;
    }
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (strcmp(line, "joined") == 0) {
            c->joined = 1;
            continue;
        }
        int lid;
        if (sscanf(line, "leaving %d", &lid) == 1 || sscanf(line, "removed %d", &lid) == 1) {
            int removed = line[0] == 'r';
            if (lid == c->self) {
                c->leaving_self = !removed;
                c->removed_self = removed;
                if (removed)
                    c->member_self = 0;
                continue;
            }
            cl_peer *p = cluster__peer_by_id(c, lid);
            if (p) {
                p->leaving = !removed;
                p->removed = removed;
                if (removed)
                    p->member = 0;
            }
            continue;
        }
        int id, port, kport;
        char host[64], khost[64];
        if (sscanf(line, "member %d %63s %d %63s %d", &id, host, &port, khost, &kport) != 5 ||
            id < 0 || port < 1 || port > 65535 || kport < 0 || kport > 65535) {
            slog_warn("%s:%d: skipping a line this version does not know", path, lineno);
            continue;
        }
        if (id == c->self) {
            c->member_self = 1;
            continue;
        }
        cl_peer *p = cluster__peer_add(c, id, host, port);
        if (!p) {
            slog_warn("%s:%d: more members than a cluster may have; node %d skipped", path,
                      lineno, id);
            continue;
        }
        p->member = 1;
        if (!p->kport && kport > 0 && strcmp(khost, "-") != 0) {
            snprintf(p->khost, sizeof(p->khost), "%s", khost);
            p->kport = kport;
        }
    }
    fclose(f);
    if (!c->member_self)
        c->joined = 1;
    return 0;
}

static int members_save(cluster *c)
{
    char path[4200], tmp[4200];
    file_path(c, path, sizeof(path), "");
    file_path(c, tmp, sizeof(tmp), ".tmp");
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -CN_EIO;
    fprintf(f, "# The cluster's members as this node knows them (written by cairn).\n");
    if (c->joined)
        fprintf(f, "joined\n");
    if (c->member_self)
        fprintf(f, "member %d %s %d %s %d\n", c->self, c->self_host, c->self_port,
                c->cfg->listen_host && c->cfg->listen_host[0] ? c->cfg->listen_host : "-",
                c->cfg->listen_port);
    for (int i = 0; i < c->n_peers; i++) {
        const cl_peer *p = &c->peers[i];
        if (p->member)
            fprintf(f, "member %d %s %d %s %d\n", p->id, p->host, p->port,
                    p->khost[0] ? p->khost : "-", p->kport);
    }
    /* After the members: a line names a member the lines above added. */
    if (c->removed_self)
        fprintf(f, "removed %d\n", c->self);
    else if (c->leaving_self)
        fprintf(f, "leaving %d\n", c->self);
    for (int i = 0; i < c->n_peers; i++) {
        const cl_peer *p = &c->peers[i];
        if (p->member && p->leaving)
            fprintf(f, "leaving %d\n", p->id);
        else if (!p->member && p->removed)
            fprintf(f, "removed %d\n", p->id);
    }
    int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -CN_EIO;
    if (fclose(f) != 0)
        rc = -CN_EIO;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -CN_EIO;
    if (rc == 0) {
        int dfd = open(c->cfg->log_dirs, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return rc;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void cluster__ids_rebuild(cluster *c)
{
    c->n_ids = 0;
    if (c->member_self)
        c->ids[c->n_ids++] = c->self;
    for (int i = 0; i < c->n_peers; i++)
        if (c->peers[i].member)
            c->ids[c->n_ids++] = c->peers[i].id;
    qsort(c->ids, (size_t)c->n_ids, sizeof(c->ids[0]), cmp_i32);
}

/* ids, the file and the broker's node sets after a change. */
static void members_changed(cluster *c)
{
    cluster__ids_rebuild(c);
    if (members_save(c) < 0)
        slog_error("cannot write %s/cluster.members", c->cfg->log_dirs);
    cluster__members_publish(c);
}

void cluster__members_publish(cluster *c)
{
    if (!c->b)
        return;
    broker_set_nodes(c->b, c->ids, c->n_ids);
    int32_t leaving[CONFIG_MAX_PEERS];
    int nl = 0;
    if (c->member_self && c->leaving_self)
        leaving[nl++] = c->self;
    for (int i = 0; i < c->n_peers; i++)
        if (c->peers[i].member && c->peers[i].leaving)
            leaving[nl++] = c->peers[i].id;
    qsort(leaving, (size_t)nl, sizeof(leaving[0]), cmp_i32);
    broker_set_leaving(c->b, leaving, nl);
}

int cluster__member_state(cluster *c, int32_t id)
{
    if (id == c->self)
        return !c->member_self ? 0 : c->leaving_self ? 2 : 1;
    cl_peer *p = cluster__peer_by_id(c, id);
    return !p || !p->member ? 0 : p->leaving ? 2 : 1;
}

void cluster__member_leaving(cluster *c, int32_t id)
{
    if (cluster__member_state(c, id) != 1)
        return;
    if (id == c->self)
        c->leaving_self = 1;
    else
        cluster__peer_by_id(c, id)->leaving = 1;
    slog_info("cluster: node %d is leaving: its replicas move to the other members", id);
    members_changed(c);
}

void cluster__member_removed(cluster *c, int32_t id)
{
    if (cluster__member_state(c, id) == 0)
        return;
    if (id == c->self) {
        c->member_self = 0;
        c->leaving_self = 0;
        c->removed_self = 1;
        slog_warn("cluster: this node (%d) was removed from the cluster; stop it", id);
    } else {
        cl_peer *p = cluster__peer_by_id(c, id);
        p->member = 0;
        p->leaving = 0;
        p->removed = 1;
        slog_info("cluster: node %d was removed from the cluster", id);
    }
    members_changed(c);
}

void cluster__member_add(cluster *c, const clw_node *n)
{
    int changed = 0;
    if (n->id == c->self) {
        if (!c->member_self) {
            c->member_self = 1;
            c->removed_self = 0;
            c->leaving_self = 0;
            changed = 1;
            slog_info("cluster: this node (%d) is a member now", c->self);
        }
    } else {
        char host[64];
        snprintf(host, sizeof(host), "%.*s", n->host.len, n->host.ptr);
        cl_peer *p = cluster__peer_add(c, n->id, host, n->port);
        if (!p) {
            slog_error("cluster: node %d cannot be taken in: %d nodes is the most", n->id,
                       CONFIG_MAX_PEERS);
            return;
        }
        if (!p->member) {
            p->member = 1;
            p->joining = 0;
            p->removed = 0;
            p->leaving = 0;
            if (!p->configured) {
                snprintf(p->host, sizeof(p->host), "%s", host);
                p->port = n->port;
            }
            changed = 1;
            slog_info("cluster: node %d is a member (cluster %s:%d)", n->id, p->host, p->port);
        }
        if (!p->kport && n->kafka_port > 0 && n->kafka_host.len > 0) {
            snprintf(p->khost, sizeof(p->khost), "%.*s", n->kafka_host.len, n->kafka_host.ptr);
            p->kport = n->kafka_port;
            changed = 1;
        }
    }
    if (changed)
        members_changed(c);
}

void cluster__members_fill(cluster *c, clw_hello *h)
{
    h->n_members = 0;
    if (c->member_self)
        h->members[h->n_members++] =
            (clw_node){c->self, cn_str_c(c->self_host), c->self_port,
                       cn_str_c(c->cfg->listen_host ? c->cfg->listen_host : ""),
                       c->cfg->listen_port};
    for (int i = 0; i < c->n_peers && h->n_members < CLW_MAX_MEMBERS; i++) {
        const cl_peer *p = &c->peers[i];
        if (p->member)
            h->members[h->n_members++] = (clw_node){p->id, cn_str_c(p->host), p->port,
                                                    cn_str_c(p->khost), p->kport};
    }
}

static void register_done(void *arg, int status, const char *msg)
{
    (void)arg;
    if (status < 0)
        slog_warn("cluster: registering a node failed: %s", msg ? msg : cn_strerror(status));
}

/* The controller's part of node leaving: moves off each leaving member,
 * at most CL_LEAVE_MOVES running at once, then its record "X". */
#define CL_LEAVE_EVERY_MS 500
#define CL_LEAVE_MOVES 8

static void move_done(void *arg, int status, const char *msg)
{
    (void)arg;
    if (status < 0 && status != -CN_ENOMOVE)
        slog_warn("cluster: a move off a leaving node failed: %s",
                  msg ? msg : cn_strerror(status));
}

int cluster__holds_replicas(cluster *c, int32_t id)
{
    for (topic *t = broker_topics(c->b); t; t = t->lnext)
        for (int32_t i = 0; t->assign && i < t->n_parts; i++) {
            const int32_t *tg = broker_reassign_target(t, i);
            if (cn_row_has(t->assign + (size_t)i * (size_t)t->rf, t->rf, id) ||
                cn_row_has(tg, tg ? t->rf : 0, id))
                return 1;
        }
    return 0;
}

int cluster__member_done(cluster *c, int32_t id)
{
    return cluster__member_state(c, id) == 2 && !cluster__holds_replicas(c, id);
}

int cluster__in_every_node_log(cluster *c, int32_t id, int skip_meta)
{
    for (topic *t = broker_internal_topics(c->b); t; t = t->lnext) {
        rg_group *g = t->rf > 1 && !t->assign && t->n_parts == 1 ? t->parts[0]->rg : NULL;
        if (g && !(skip_meta && strcmp(t->name, BROKER_CLUSTER_META_TOPIC) == 0) &&
            rg_role(g, (uint64_t)id) != RG_ROLE_NONE)
            return 1;
    }
    return 0;
}

static void leave_step(cluster *c, int32_t id)
{
    int holds = 0, started = 0;
    int running = broker_moves_running(c->b);
    for (topic *t = broker_topics(c->b); t; t = t->lnext) {
        for (int32_t i = 0; t->assign && i < t->n_parts; i++) {
            const int32_t *tg = broker_reassign_target(t, i);
            const int32_t *row = t->assign + (size_t)i * (size_t)t->rf;
            if (!cn_row_has(row, t->rf, id) && !cn_row_has(tg, tg ? t->rf : 0, id))
                continue;
            holds++;
            if (tg || running + started >= CL_LEAVE_MOVES)
                continue;
            int32_t ids[64];
            if (t->rf > 64 || broker_place_replacement(c->b, t, i, id, ids) < 0)
                continue; /* no member to take it (checked at "L"; members changed since) */
            char msg[256];
            if (cluster_meta_reassign(c, t, i, ids, t->rf, msg, sizeof(msg), move_done, NULL) == 0)
                started++;
        }
    }
    if (started)
        slog_info("cluster: node %d leaving: %d partition(s) hold a replica on it, %d move(s) "
                  "started", id, holds, started);
    /* Removed once out of the logs of every node too (their leaders drop a
     * leaving node that holds nothing): stopping it is then safe. */
    if (holds == 0 && !cluster__in_every_node_log(c, id, 0))
        cluster__meta_removed(c, id);
}

/* Endpoints ------------------------------------------------------------------ */

/* This node's Kafka listeners as configured: a wildcard host is
 * advertised as the cluster listener's host (what other nodes reach it
 * by); a listener on port 0 (the kernel's choice) is left out. */
static int own_endpoints(cluster *c, clw_topic_op *t)
{
    const cairn_config *cfg = c->cfg;
    memset(t, 0, sizeof(*t));
    t->op = 11;
    t->node.id = c->self;
    for (int i = 0; i < cfg->n_kafka && t->n_endpoints < CL_MAX_EPS; i++) {
        const char *h = cfg->kafka_host[i];
        if (!h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 ||
            strcmp(h, "[::]") == 0)
            h = c->self_host;
        if (cfg->kafka_port[i] <= 0 || !h[0] || strlen(cfg->kafka_name[i]) > 31 ||
            strlen(h) > 63)
            continue;
        clw_endpoint *e = &t->endpoints[t->n_endpoints++];
        e->name = cn_str_c(cfg->kafka_name[i]);
        e->host = cn_str_c(h);
        e->port = cfg->kafka_port[i];
    }
    return t->n_endpoints;
}

static int same_endpoints(const cl_ep *eps, int n, const clw_topic_op *t)
{
    if (n != t->n_endpoints)
        return 0;
    for (int i = 0; i < n; i++)
        if (!cn_str_eq(t->endpoints[i].name, eps[i].name) ||
            !cn_str_eq(t->endpoints[i].host, eps[i].host) || t->endpoints[i].port != eps[i].port)
            return 0;
    return 1;
}

static void endpoints_done(void *arg, int status, const char *msg)
{
    cluster *c = arg;
    c->eps_in_flight = 0;
    if (status < 0)
        slog_warn("cluster: publishing this node's Kafka listeners failed (%s); trying again",
                  msg ? msg : cn_strerror(status));
}

void cluster__endpoints_apply(cluster *c, const clw_topic_op *t)
{
    cl_ep *eps;
    int *n;
    if (t->node.id == c->self) {
        eps = c->self_eps;
        n = &c->n_self_eps;
    } else {
        cl_peer *p = cluster__peer_by_id(c, t->node.id);
        if (!p)
            return; /* a node this one does not know (yet): its HELLO address serves */
        eps = p->eps;
        n = &p->n_eps;
    }
    *n = 0;
    for (int32_t i = 0; i < t->n_endpoints && i < CL_MAX_EPS; i++) {
        const clw_endpoint *e = &t->endpoints[i];
        snprintf(eps[i].name, sizeof(eps[i].name), "%.*s", e->name.len, e->name.ptr);
        snprintf(eps[i].host, sizeof(eps[i].host), "%.*s", e->host.len, e->host.ptr);
        eps[i].port = e->port;
        (*n)++;
    }
}

/* Publish this node's listeners when the log's copy differs. */
static void endpoints_tick(cluster *c, int64_t now)
{
    if (c->eps_in_flight || now < c->next_eps || cluster_controller(c) < 0 ||
        !cluster_meta_caught_up(c))
        return;
    c->next_eps = now + CL_REGISTER_EVERY_MS;
    static clw_topic_op t; /* loop thread only */
    if (!own_endpoints(c, &t) || same_endpoints(c->self_eps, c->n_self_eps, &t))
        return;
    wbuf w;
    wbuf_init(&w);
    clw_forward f = {0, 0, t}; /* request id set by cluster__meta_forward */
    clw_forward_encode(&w, &f);
    c->eps_in_flight = 1;
    cluster__meta_forward(c, &w, endpoints_done, c);
}

int cluster_member_endpoint(const cluster *c, int32_t id, const char *listener,
                            const char **host, int *port)
{
    const cl_ep *eps = NULL;
    int n = 0;
    if (id == c->self) {
        eps = c->self_eps;
        n = c->n_self_eps;
    } else {
        for (int i = 0; i < c->n_peers; i++)
            if (c->peers[i].id == id) {
                eps = c->peers[i].eps;
                n = c->peers[i].n_eps;
            }
    }
    for (int i = 0; i < n; i++)
        if (strcmp(eps[i].name, listener) == 0) {
            *host = eps[i].host;
            *port = eps[i].port;
            return 1;
        }
    return 0;
}

void cluster__members_tick(cluster *c, int64_t now)
{
    if (c->member_self && c->meta && cluster_controller(c) == c->self &&
        now >= c->next_leave) {
        c->next_leave = now + CL_LEAVE_EVERY_MS;
        if (c->leaving_self)
            leave_step(c, c->self);
        for (int i = 0; i < c->n_peers; i++)
            if (c->peers[i].member && c->peers[i].leaving)
                leave_step(c, c->peers[i].id);
    }
    if (!c->member_self || !c->meta)
        return;
    endpoints_tick(c, now);
    for (int i = 0; i < c->n_peers; i++) {
        cl_peer *p = &c->peers[i];
        if (p->member || !p->joining || !p->conn || now < p->next_register)
            continue;
        p->next_register = now + CL_REGISTER_EVERY_MS;
        clw_node n = {p->id, cn_str_c(p->host), p->port, cn_str_c(p->khost), p->kport};
        cluster__meta_register(c, &n, register_done, NULL);
    }
}
