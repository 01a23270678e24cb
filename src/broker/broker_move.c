/* Reassignment of a replicated partition's replicas (broker.h, "Reassignment";
 * cluster plan step 8). This file keeps the state every node shares: the
 * target of a running move, the voters the group began with, and the
 * metadata-log offset of the last move record applied; the partition's
 * own transitions (an empty replica joining, a replica leaving) are in
 * broker_partition.c, and the leader's part (configuration changes, one
 * server at a time) in src/cluster/cluster_move.c.
 *
 * Topic file lines (broker.c writes them after replicas.<p>):
 *   target.<p>=<id>,<id>...   the move's target, while one runs
 *   boot.<p>=<id>,<id>...     the group's first voters, once they differ
 *                             from replicas.<p> (a move ended)
 *   moved.<p>=<offset>        the last move record applied (metadata log)
 * A node that joins a group opens an empty log whose entry 1 must be every
 * replica's entry 1: the configuration of the group's first voters (boot).
 */
#include "broker/broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "util/slog.h"

static int same_set(const int32_t *a, const int32_t *b, int n)
{
    for (int k = 0; k < n; k++)
        if (!cn_row_has(b, n, a[k]))
            return 0;
    return 1;
}

static void moves_alloc(topic *t)
{
    if (t->target)
        return;
    size_t cells = (size_t)t->n_parts * (size_t)t->rf;
    t->target = xmalloc(cells * sizeof(int32_t));
    t->boot = xmalloc(cells * sizeof(int32_t));
    for (size_t i = 0; i < cells; i++)
        t->target[i] = t->boot[i] = -1;
    t->moved = xcalloc((size_t)t->n_parts, sizeof(int64_t));
}

void broker__moves_grow(topic *t, int32_t old, int32_t n_parts)
{
    if (!t->target)
        return;
    size_t rf = (size_t)t->rf, cells = (size_t)n_parts * rf;
    t->target = xrealloc(t->target, cells * sizeof(int32_t));
    t->boot = xrealloc(t->boot, cells * sizeof(int32_t));
    t->moved = xrealloc(t->moved, (size_t)n_parts * sizeof(int64_t));
    for (size_t i = (size_t)old * rf; i < cells; i++)
        t->target[i] = t->boot[i] = -1;
    for (int32_t i = old; i < n_parts; i++)
        t->moved[i] = 0;
}

void broker__moves_count(topic *t, int sign)
{
    for (int32_t i = 0; t->target && i < t->n_parts; i++)
        t->b->n_moves += sign * (t->target[(size_t)i * (size_t)t->rf] >= 0);
}

void broker__moves_free(topic *t)
{
    free(t->target);
    free(t->boot);
    free(t->moved);
    t->target = t->boot = NULL;
    t->moved = NULL;
}

const int32_t *broker_reassign_target(const topic *t, int32_t part)
{
    return part < 0 || part >= t->n_parts ? NULL : broker__target_of(t, part);
}

const int32_t *broker_assignment(const topic *t, int32_t part)
{
    return part >= 0 && part < t->n_parts ? broker__replicas_of(t, part) : NULL;
}

int broker_moves_running(const broker *b)
{
    return b->n_moves;
}

int broker_check_reassign(const broker *b, const topic *t, int32_t part, const int32_t *ids,
                          int n, char *msg, size_t msg_len)
{
    msg[0] = '\0';
    if (part < 0 || part >= t->n_parts) {
        snprintf(msg, msg_len, "topic %s has no partition %d", t->name, part);
        return -CN_ENOENT;
    }
    if (t->rf < 2 || !t->assign) {
        snprintf(msg, msg_len, "topic %s is not replicated with an assignment (replication "
                 "factor %d): its replicas cannot move", t->name, t->rf);
        return -CN_EASSIGN;
    }
    if (n != t->rf) {
        snprintf(msg, msg_len, "%d replicas given; topic %s has replication factor %d (a move "
                 "keeps it)", n, t->name, t->rf);
        return -CN_EASSIGN;
    }
    return broker_check_assignment(b, ids, 1, n, msg, msg_len);
}

/* Write the file; on failure the caller's change is logged, not undone
 * (the record is replayed at the next start: moved is not advanced on
 * disk). */
static int persist(broker *b, topic *t)
{
    int rc = broker__topic_write_conf(b, t);
    if (rc < 0)
        slog_error("topic %s: the move could not be written to its file: %s", t->name,
                   cn_strerror(rc));
    return rc;
}

int broker_reassign_begin(broker *b, topic *t, int32_t part, const int32_t *ids, int n,
                          int64_t off)
{
    if (part < 0 || part >= t->n_parts || !t->assign || (ids && n != t->rf))
        return -CN_EINVAL;
    moves_alloc(t);
    if (off <= t->moved[part])
        return 0; /* applied before (a replay at start) */
    size_t rf = (size_t)t->rf, at = (size_t)part * rf;
    int32_t *tg = t->target + at, *boot = t->boot + at;
    const int32_t *cur = t->assign + at;
    int was = tg[0] >= 0;
    if (!ids && !was) {
        t->moved[part] = off;
        return persist(b, t); /* nothing to cancel */
    }
    if (boot[0] < 0)
        memcpy(boot, cur, rf * sizeof(int32_t)); /* entry 1 of the group, for joiners */
    memcpy(tg, ids ? ids : cur, rf * sizeof(int32_t));
    b->n_moves += !was;
    t->moved[part] = off;
    partition *p = t->parts[part];
    int rc = 0;
    if (p->remote && cn_row_has(tg, t->rf, b->cfg->node_id)) {
        rc = broker__partition_go_local(p);
        if (rc < 0)
            slog_error("%s-%d: cannot open a replica to join the partition's group: %s",
                       t->name, part, cn_strerror(rc));
    }
    char list[160] = "";
    for (size_t k = 0; k < rf && strlen(list) + 16 < sizeof(list); k++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", k ? "," : "", tg[k]);
    slog_info("%s-%d: %s to replicas %s", t->name, part, ids ? "moving" : "move cancelled: back",
              list);
    int wrc = persist(b, t);
    return rc < 0 ? rc : wrc;
}

int broker_reassign_end(broker *b, topic *t, int32_t part, const int32_t *ids, int n,
                        int64_t off)
{
    if (part < 0 || part >= t->n_parts || !t->assign || n != t->rf || !t->target)
        return 0;
    if (off <= t->moved[part])
        return 0;
    size_t rf = (size_t)t->rf, at = (size_t)part * rf;
    int32_t *tg = t->target + at;
    if (tg[0] < 0 || !same_set(tg, ids, n))
        return 0; /* a newer target (or none): the leader goes on */
    memcpy(t->assign + at, tg, rf * sizeof(int32_t)); /* the target's order: preferred first */
    tg[0] = -1;
    for (size_t k = 1; k < rf; k++)
        tg[k] = -1;
    if (memcmp(t->boot + at, t->assign + at, rf * sizeof(int32_t)) == 0)
        t->boot[at] = -1;
    b->n_moves--;
    t->moved[part] = off;
    partition *p = t->parts[part];
    if (!p->remote && !cn_row_has(t->assign + at, t->rf, b->cfg->node_id))
        broker__partition_go_remote(p);
    slog_info("%s-%d: move done", t->name, part);
    b->leaders_changed = 1;
    return persist(b, t);
}

/* Lines --------------------------------------------------------------------------------- */

int broker__moves_key(const char *key)
{
    return strncmp(key, "target.", 7) == 0 || strncmp(key, "boot.", 5) == 0 ||
           strncmp(key, "moved.", 6) == 0;
}

void broker__moves_write(const topic *t, int32_t i, FILE *f)
{
    if (!t->target)
        return;
    size_t rf = (size_t)t->rf, at = (size_t)i * rf;
    const int32_t *rows[2] = {t->target + at, t->boot + at};
    static const char *const names[2] = {"target", "boot"};
    for (int r = 0; r < 2; r++) {
        if (rows[r][0] < 0)
            continue;
        fprintf(f, "%s.%d=", names[r], i);
        for (size_t k = 0; k < rf; k++)
            fprintf(f, "%s%d", k ? "," : "", rows[r][k]);
        fputc('\n', f);
    }
    if (t->moved[i] > 0)
        fprintf(f, "moved.%d=%lld\n", i, (long long)t->moved[i]);
}

/* "<p>=<ids>" after the prefix: the partition and t->rf node ids. */
static int parse_row(const topic *t, const char *s, int32_t n_parts, int32_t *part, int32_t *ids)
{
    char *end;
    long p = strtol(s, &end, 10);
    if (end == s || *end != '=' || p < 0 || p >= n_parts)
        return -1;
    const char *c = end + 1;
    for (int k = 0; k < t->rf; k++) {
        long id = strtol(c, &end, 10);
        if (end == c || id < 0 || id > INT32_MAX)
            return -1;
        ids[k] = (int32_t)id;
        if (k + 1 < t->rf && *end != ',')
            return -1;
        c = end + 1;
    }
    if (*end != '\0')
        return -1;
    *part = (int32_t)p;
    return 0;
}

int broker__moves_load(topic *t, int32_t n_parts, const char *lines)
{
    if (!lines || !*lines)
        return 0;
    if (!t->assign || t->rf < 2 || t->rf > 64)
        return -CN_ECORRUPT;
    int32_t saved = t->n_parts;
    t->n_parts = n_parts; /* moves_alloc sizes by it */
    moves_alloc(t);
    t->n_parts = saved;
    int rc = 0;
    char *copy = xstrdup(lines), *save = NULL;
    for (char *ln = strtok_r(copy, "\n", &save); ln && rc == 0; ln = strtok_r(NULL, "\n", &save)) {
        int32_t part, ids[64];
        if (strncmp(ln, "moved.", 6) == 0) {
            char *end;
            long p = strtol(ln + 6, &end, 10);
            long long off = *end == '=' ? strtoll(end + 1, &end, 10) : -1;
            if (p < 0 || p >= n_parts || off < 0 || *end != '\0')
                rc = -CN_ECORRUPT;
            else
                t->moved[p] = off;
            continue;
        }
        int is_target = strncmp(ln, "target.", 7) == 0;
        const char *rest = ln + (is_target ? 7 : 5);
        if (parse_row(t, rest, n_parts, &part, ids) < 0) {
            rc = -CN_ECORRUPT;
            break;
        }
        int32_t *row = (is_target ? t->target : t->boot) + (size_t)part * (size_t)t->rf;
        memcpy(row, ids, (size_t)t->rf * sizeof(int32_t));
    }
    free(copy);
    return rc;
}
