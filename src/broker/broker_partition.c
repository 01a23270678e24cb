/* Partitions: open and recovery of producer state, close, append with
 * Kafka's producer rules, transaction markers, durability waits. See
 * broker.h and broker_int.h. */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/pstate.h"
#include "record/batch.h"
#include "repl/repl.h"
#include "util/common.h"
#include "util/slog.h"

/* Partitions ------------------------------------------------------------- */

/* A topic placed on fewer nodes than the cluster's (others hold none of
 * some of its partitions: they learn the leaders from reports). */
static int partial(const topic *t)
{
    return t->assign && t->rf < t->b->n_nodes;
}

void broker__log_options(const topic *t, const cairn_config *c, log_options *o)
{
    o->segment_bytes = t->cfg.segment_bytes;
    o->segment_ms = t->cfg.segment_ms;
    o->retention_ms = t->cfg.retention_ms;
    o->retention_bytes = t->cfg.retention_bytes;
    o->index_interval_bytes = c->index_interval_bytes;
    o->preallocate = c->preallocate;
    /* A replicated partition's log is its Raft log: retention moves its
     * start by snapshots (rg_compact, from the retention timer). */
    o->raft = t->rf > 1;
}

uint64_t broker__group_id(const char *tname, int32_t part)
{
    /* FNV-1a 64 over "<topic>\0<partition as 4 bytes BE>". */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = tname;; c++) {
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
        if (!*c)
            break;
    }
    for (int i = 3; i >= 0; i--)
        h = (h ^ (uint8_t)((uint32_t)part >> (8 * i))) * 0x100000001b3ull;
    return h ? h : 1;
}

/* Fire the waits of *list whose target is <= reached (all when status < 0,
 * with -CN_EIO); the others stay, in order. */
static void fire_waits(durable_wait **list, int64_t reached, int status)
{
    durable_wait **pp = list;
    while (*pp) {
        durable_wait *w = *pp;
        if (status < 0 || w->target <= reached) {
            *pp = w->next;
            w->next = NULL;
            w->cb(w, status < 0 ? (status == -CN_ENOTLEADER || status == -CN_ECOMMITTMO
                                       ? status : -CN_EIO) : 0);
        } else {
            pp = &w->next;
        }
    }
}

/* Fire the waits of *list whose target is above cut (their batch was cut
 * from the log) with status; the others stay, in order. */
static void fire_waits_above(durable_wait **list, int64_t cut, int status)
{
    durable_wait **pp = list;
    while (*pp) {
        durable_wait *w = *pp;
        if (w->target > cut) {
            *pp = w->next;
            w->next = NULL;
            w->cb(w, status);
        } else {
            pp = &w->next;
        }
    }
}

/* Fire the DeleteRecords waits whose start is durable (all when status < 0). */
static void partition_fire_start_waits(partition *p, int status)
{
    fire_waits(&p->start_waits, log_start_durable(p->log), status);
}

static void partition_durable_cb(log_partition *lp, int64_t durable, int status, void *arg)
{
    (void)lp;
    partition *p = arg;
    partition_fire_start_waits(p, status);
    fire_waits(&p->waits, durable, status);
}

static int partition_replay(partition *p, int64_t from, int64_t to);
static void producers_follow(partition *p, int64_t hw);
static void producers_rebuild(partition *p, int64_t to);

/* A replicated partition's log is durable somewhere: DeleteRecords waits
 * hear it; produce waits hear commits (rg_changed). */
static void rg_durable(void *arg, rg_group *g, int64_t durable, int status)
{
    (void)g, (void)durable;
    partition *p = arg;
    partition_fire_start_waits(p, status);
    if (status < 0)
        fire_waits(&p->waits, 0, status);
}

/* Role, term or commit index moved: the high watermark is the commit
 * offset; acks=all produces complete on it; every replica applies what
 * commits to its producer state, and a new leader adds its log's tail
 * (producers_follow). */
static void rg_changed(void *arg, rg_group *g)
{
    partition *p = arg;
    broker *b = p->t->b;
    int64_t hw = CN_MIN(rg_commit_offset(g), log_end_offset(p->log));
    if (hw != log_high_watermark(p->log)) {
        log_set_high_watermark(p->log, hw);
        b->appended = 1; /* parked fetches look again */
    }
    /* Entries cut by a new leader never commit: their waits hear
     * NOT_LEADER (definitely not written). A leader that steps down keeps
     * its other waits: what it appended may still commit under the next
     * leader (the commit index reaches it here: success) or be cut (above),
     * or the wait's deadline passes (REQUEST_TIMED_OUT: outcome unknown).
     * Answering NOT_LEADER at the step-down, as before, told clients "not
     * written" of batches that then committed; librdkafka rewinds its
     * sequences on such an answer when the transaction is aborted, and the
     * next batch was taken for a duplicate (a lost record, found by the
     * transactional nemesis, tests/nemesis/repro_notleader.py). */
    int64_t cut, start;
    int cut_seen = rg_take_truncation(g, &cut);
    if (cut_seen)
        fire_waits_above(&p->waits, cut, -CN_ENOTLEADER);
    if (rg_take_start(g, &start) && start > log_start_offset(p->log)) {
        /* A committed DeleteRecords: every replica moves its start (the
         * segments go at the next retention pass, by a snapshot); waits
         * hear it once the log-start file is durable (rg_durable). */
        int rc = log_raft_set_start(p->log, start);
        if (rc < 0)
            slog_error("%s-%d: log start not moved to %lld: %s", p->t->name, p->id,
                       (long long)start, cn_strerror(rc));
        else
            pst_truncate_head(p->ps, log_start_offset(p->log));
    }
    fire_waits(&p->waits, hw, rg_failed(g) ? -CN_EIO : 0);
    int leader = rg_is_leader(g);
    /* Every replica keeps the producer state of the committed log (below),
     * so a new leader adds only its own log's tail beyond what it applied
     * (the entries it is about to commit), not the whole log. */
    if (cut_seen && cut < p->applied)
        producers_rebuild(p, CN_MIN(cut, hw));
    if (!leader)
        producers_follow(p, hw);
    if (leader && !p->leading) {
        int64_t end = log_end_offset(p->log);
        if (p->applied < end && partition_replay(p, p->applied, end) < 0)
            slog_error("%s-%d: producer state not brought to the log end on leadership",
                       p->t->name, p->id);
        p->applied = CN_MAX(p->applied, end);
        slog_info("%s-%d: leader for term %lld", p->t->name, p->id, (long long)rg_term(g));
    } else if (!leader && p->leading) {
        slog_info("%s-%d: no longer leader (term %lld, leader %lld)", p->t->name, p->id,
                  (long long)rg_term(g), (long long)rg_leader_id(g));
        /* The outcome of what waits here is known once a new leader's
         * commit index or entries reach this node, normally within an
         * election; a node cut off from the others would never know:
         * bound the wait (then REQUEST_TIMED_OUT, and clients move on).
         * A node that heard from no other voter within the last election
         * timeout (it stepped down for that: isolated) answers at once:
         * REQUEST_TIMED_OUT is as true now as later, and the client's
         * retry (same sequence: the new leader knows a duplicate) finds
         * the new leader two election timeouts sooner. */
        int64_t now = loop_now(b->l);
        int64_t bound = now + 2 * (int64_t)b->cfg->cluster_election_ms;
        if (rg_isolated(g, now))
            bound = now;
        for (durable_wait *w = p->waits; w; w = w->next)
            if (w->deadline == 0 || w->deadline > bound)
                w->deadline = bound;
        if (p->waits && (!loop_timer_armed(&b->commit_timer) ||
                         b->commit_timer.deadline > bound))
            loop_timer_start(b->l, &b->commit_timer, CN_MAX(bound - loop_now(b->l), 0));
    }
    if (leader)
        p->led_term = rg_term(g);
    if (leader != p->leading)
        b->appended = 1; /* listeners (the metadata group's controller) look again */
    p->leading = leader;
    int64_t lid = (int64_t)rg_leader_id(g);
    if (lid != p->known_leader) {
        if (lid)
            p->leader_changes++;
        p->known_leader = lid;
        if (partial(p->t))
            b->leaders_changed = 1;
    }
}

int32_t broker_partition_leader(const partition *p)
{
    if (p->remote)
        return p->t->rf == 1 ? p->t->assign[(size_t)p->id] : p->rep_leader;
    if (!p->rg)
        return p->t->b->cfg->node_id;
    uint64_t id = rg_leader_id(p->rg);
    return id ? (int32_t)id : -1;
}

int32_t broker_partition_leader_hint(const partition *p)
{
    int32_t l = broker_partition_leader(p);
    broker *b = p->t->b;
    if (l >= 0 || !p->rg || p->led_term != rg_term(p->rg) || !rg_isolated(p->rg, loop_now(b->l)))
        return l;
    uint64_t ids[64];
    int n = CN_MIN(rg_voter_ids(p->rg, ids, 64), 64);
    const int32_t *a = broker__replicas_of(p->t, p->id);
    for (int k = 0; a && k < p->t->rf; k++)
        for (int j = 0; j < n; j++)
            if (ids[j] == (uint64_t)a[k] && a[k] != b->cfg->node_id)
                return a[k];
    for (int j = 0; j < n; j++)
        if (ids[j] != (uint64_t)b->cfg->node_id)
            return (int32_t)ids[j];
    return -1;
}

int32_t broker_partition_epoch(const partition *p)
{
    if (p->remote)
        return p->t->rf == 1 ? 0 : CN_MAX(p->rep_epoch, 0);
    return p->rg ? (int32_t)rg_term(p->rg) : log_leader_epoch(p->log);
}

int broker_partition_is_leader(const partition *p)
{
    return !p->remote && (!p->rg || rg_is_leader(p->rg));
}

int broker_partition_in_sync(const partition *p, int32_t id)
{
    if (p->remote)
        return -1;
    if (!p->rg)
        return id == p->t->b->cfg->node_id;
    if (!rg_is_leader(p->rg))
        return -1;
    return rg_in_sync(p->rg, (uint64_t)id, loop_now(p->t->b->l));
}

int broker_min_isr_check(const partition *p)
{
    int isr = broker_partition_isr_count(p);
    return isr >= 0 && isr < p->t->cfg.min_insync_replicas ? -CN_ENOQUORUM : 0;
}

int broker_partition_isr_count(const partition *p)
{
    if (p->remote)
        return -1;
    if (!p->rg)
        return 1;
    if (!rg_is_leader(p->rg))
        return -1;
    uint64_t ids[64];
    int n = rg_voter_ids(p->rg, ids, (int)CN_ARRAY_LEN(ids)), isr = 0;
    for (int k = 0; k < CN_MIN(n, (int)CN_ARRAY_LEN(ids)); k++)
        isr += rg_in_sync(p->rg, ids[k], loop_now(p->t->b->l)) == 1;
    return isr;
}

int broker_check_epoch(const partition *p, int32_t current_leader_epoch)
{
    if (current_leader_epoch < 0)
        return 0;
    int32_t e = broker_partition_epoch(p);
    if (current_leader_epoch < e)
        return -CN_EFENCEDEPOCH;
    return current_leader_epoch > e ? -CN_EUNKNOWNEPOCH : 0;
}

int broker_epoch_end(partition *p, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    return log_epoch_end(p->log, epoch, broker_partition_epoch(p), out_epoch, out_end);
}

int broker_partition_serving(partition *p)
{
    if (p->remote)
        return -CN_ENOTLEADER;
    if (!p->rg)
        return 0;
    if (!rg_is_leader(p->rg))
        return -CN_ENOTLEADER;
    return rg_leader_ready(p->rg) ? 0 : -CN_ELEADERWAIT;
}

int broker_partition_replicated(const partition *p)
{
    return p->rg != NULL || (p->remote && p->t->rf > 1);
}

/* Leadership reports ------------------------------------------------------ */

void broker_each_reportable(broker *b, broker_report_fn fn, void *arg)
{
    for (topic *t = b->list; t; t = t->lnext) {
        if (!partial(t) || t->rf < 2)
            continue;
        for (int32_t i = 0; i < t->n_parts; i++) {
            partition *p = t->parts[i];
            if (!p->rg)
                continue;
            uint64_t lid = rg_leader_id(p->rg);
            fn(arg, t, i, lid ? (int32_t)lid : -1, (int32_t)rg_term(p->rg));
        }
    }
}

int broker_leaders_changed(broker *b)
{
    int c = b->leaders_changed;
    b->leaders_changed = 0;
    return c;
}

void broker_partition_report(partition *p, int32_t leader, int32_t epoch, int self_report)
{
    if (!p->remote || p->t->rf < 2)
        return;
    if (leader >= 0 && !cn_row_has(broker__replicas_of(p->t, p->id), p->t->rf, leader) &&
        !cn_row_has(broker_reassign_target(p->t, p->id), p->t->rf, leader))
        return;
    if (epoch > p->rep_epoch ||
        (epoch == p->rep_epoch && leader >= 0 && (p->rep_leader < 0 || self_report))) {
        if (leader != p->rep_leader)
            p->leader_changes += leader >= 0;
        p->rep_leader = leader;
        p->rep_epoch = epoch;
        p->t->b->appended = 1; /* parked requests waiting for a leader look again */
    }
}

/* Rebuild producer state from batch headers in [from, log end). */
static int partition_replay(partition *p, int64_t from, int64_t to)
{
    int64_t off = from, end = CN_MIN(to, log_end_offset(p->log));
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    int64_t n_batches = 0;
    while (off < end) {
        log_slice sl;
        rc = log_read(p->log, off, end, 1 << 20, &sl);
        if (rc < 0 || sl.len == 0)
            break;
        if ((size_t)sl.len > cap) {
            cap = (size_t)sl.len;
            buf = xrealloc(buf, cap);
        }
        ssize_t got = pread(sl.fd, buf, (size_t)sl.len, sl.pos);
        int64_t len = sl.len;
        log_slice_release(&sl);
        if (got != len) {
            rc = -CN_EIO;
            break;
        }
        size_t pos = 0;
        int64_t before = off;
        while (pos + BATCH_HEADER_SIZE <= (size_t)len) {
            batch_info bi;
            if (batch_parse_header(buf + pos, (size_t)len - pos, &bi) < 0)
                break;
            size_t total = (size_t)bi.batch_length + 12;
            if (total < BATCH_HEADER_SIZE || pos + total > (size_t)len)
                break;
            int64_t last = bi.base_offset + bi.last_offset_delta;
            if (last >= off && bi.producer_id >= 0) {
                int type = -1;
                int32_t cepoch = -1;
                if (bi.control)
                    batch_marker_parse(buf + pos, total, &type, &cepoch);
                pst_replay_batch(p->ps, &bi, bi.base_offset, type, cepoch);
            }
            n_batches++;
            off = CN_MAX(off, last + 1);
            pos += total;
        }
        if (off == before) {
            rc = -CN_ECORRUPT; /* no progress: the log module guarantees whole batches */
            break;
        }
    }
    free(buf);
    if (rc < 0)
        slog_error("%s-%d: rebuilding producer state failed at offset %lld: %d", p->t->name,
                   p->id, (long long)off, rc);
    else if (n_batches > 0 && !p->rg)
        slog_info("%s-%d: producer state rebuilt from %lld batch(es) at offsets %lld..%lld "
                  "(%d producer(s))", p->t->name, p->id, (long long)n_batches, (long long)from,
                  (long long)end - 1, pst_count(p->ps));
    return rc;
}

/* Replicated partitions: producer state on every replica.
 *
 * p->ps holds what the batches of [log start, p->applied) say. A follower
 * applies batches as they commit (producers_follow: applied <= the commit
 * offset); a leader applies its own appends at once (broker_produce,
 * broker_write_marker: applied = its log end) and, on winning an election,
 * the tail of its log beyond applied, which it is about to commit. State
 * ahead of the commit offset (a leader's, or a restarted node's that
 * replayed its whole local log) is only wrong when a new leader cuts
 * those entries: then it is rebuilt from the last snapshot below the cut
 * (producers_rebuild; rare: only a deposed leader's unreplicated tail is
 * ever cut). Snapshots are written at committed offsets only
 * (broker__partition_snapshot), so none ever describes a cut entry. Before,
 * only leaders kept the state and each new leader rebuilt it from the
 * whole log on the loop thread: failover time grew with the log. */
static void producers_follow(partition *p, int64_t hw)
{
    int64_t start = log_start_offset(p->log);
    if (p->applied < start)
        p->applied = start; /* a snapshot install or DeleteRecords took the log past it */
    if (hw <= p->applied)
        return;
    if (partition_replay(p, p->applied, hw) < 0) {
        slog_error("%s-%d: producer state not applied up to %lld; rebuilding", p->t->name,
                   p->id, (long long)hw);
        producers_rebuild(p, hw);
        return;
    }
    p->applied = hw;
}

static void producers_rebuild(partition *p, int64_t to)
{
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", p->t->b->dir, p->t->name, p->id);
    int64_t start = log_start_offset(p->log);
    int64_t from = pst_snapshot_load(p->ps, dir, start, to); /* clears the state first */
    from = CN_MAX(from, start);
    p->snap_offset = from;
    if (from < to && partition_replay(p, from, to) < 0)
        slog_error("%s-%d: producer state not rebuilt", p->t->name, p->id);
    p->applied = to;
    slog_info("%s-%d: producer state rebuilt from offset %lld to %lld after a cut of the log",
              p->t->name, p->id, (long long)from, (long long)to);
}

static int partition_load_producers(partition *p, const char *dir)
{
    int64_t start = log_start_offset(p->log), end = log_end_offset(p->log);
    int64_t from = pst_snapshot_load(p->ps, dir, start, end);
    if (from < 0)
        from = 0;
    from = CN_MAX(from, start);
    p->snap_offset = from;
    p->applied = end;
    return from < end ? partition_replay(p, from, end) : 0;
}

void broker__partition_snapshot(partition *p)
{
    if (p->remote)
        return;
    int64_t end = log_end_offset(p->log);
    if (p->t->rf > 1) {
        /* A replicated partition (asked by rf, not p->rg: the close takes
         * the group before its final snapshot): committed state only (see
         * producers_follow), at the offset that state covers. A snapshot
         * must not describe an entry a new leader may cut, nor claim the
         * log end for state that stops short of it (the next start trusts
         * it and replays nothing). */
        if (p->applied > log_high_watermark(p->log))
            return;
        end = p->applied;
    }
    if (end == p->snap_offset)
        return;
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", p->t->b->dir, p->t->name, p->id);
    int rc = pst_snapshot_write(p->ps, dir, end);
    if (rc < 0)
        slog_warn("%s-%d: writing the producer snapshot failed: %s", p->t->name, p->id,
                  strerror(-rc));
    else
        p->snap_offset = end;
}

/* The broker's empty log, which remote partitions share: opened once under
 * <dir>/.remote-0 (a name no topic can have: remove_orphans skips names
 * starting with a dot), never written (every write path refuses a remote
 * partition before it reaches the log). */
static log_partition *empty_log(broker *b)
{
    if (b->empty_log)
        return b->empty_log;
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/.remote-0", b->dir);
    broker__rm_rf(dir);
    log_options o = {.segment_bytes = 1 << 20, .segment_ms = -1, .retention_ms = -1,
                     .retention_bytes = -1, .index_interval_bytes = 4096};
    if (log_partition_open(dir, &o, b->syncer, &b->empty_log) < 0)
        b->empty_log = NULL;
    return b->empty_log;
}

/* This node keeps a replica of partition id: it is in the assignment, or
 * in the target of a move (it joins the group). */
static int hosts(const broker *b, const topic *t, int32_t id)
{
    const int32_t *a = broker__replicas_of(t, id);
    /* broker__target_of, not broker_reassign_target: called while the
     * topic loads, and a node restarted in the middle of a move onto it
     * must open its replica again (found by the nemesis's leave-rejoin-kill). */
    const int32_t *tg = broker__target_of(t, id);
    return !a || cn_row_has(a, t->rf, b->cfg->node_id) ||
           cn_row_has(tg, tg ? t->rf : 0, b->cfg->node_id);
}

/* Open p's Raft group over p->log (a raft log): an empty log is
 * bootstrapped with the voters the group began with. */
static int group_open(broker *b, partition *p)
{
    topic *t = p->t;
    uint64_t voters[64];
    const int32_t *a = broker__boot_of(t, p->id);
    int nv = CN_MIN(a ? t->rf : b->n_nodes, 64);
    if (!a && b->joined)
        nv = 0; /* a log of every node on a node that joined: its leader sends entry 1 */
    if (a)
        while (nv > 0 && a[nv - 1] < 0)
            nv--; /* broker_internal_partition_voters: one voter, an empty second row */
    for (int i = 0; i < nv; i++)
        voters[i] = (uint64_t)(a ? a[i] : b->nodes[i]);
    /* Nothing is readable until a leader's commit says so. */
    log_set_high_watermark(p->log, log_start_offset(p->log));
    int rc = (t->first ? rg_group_open_first : rg_group_open)(
        b->rg, broker__group_id(t->name, p->id), p->log, voters, (size_t)nv, loop_now(b->l),
        &p->rg);
    if (rc == 0) {
        rg_group_set_cb(p->rg, rg_changed, rg_durable, p);
        rg_changed(p, p->rg);
    }
    return rc;
}

int broker__partition_open(broker *b, topic *t, int32_t id, partition **out)
{
    if (!hosts(b, t, id)) {
        log_partition *lp = empty_log(b);
        if (!lp)
            return -CN_EIO;
        partition *p = xcalloc(1, sizeof(*p));
        p->t = t;
        p->id = id;
        p->log = lp;
        p->remote = 1;
        p->rep_leader = -1;
        p->rep_epoch = -1;
        p->ps = pst_new();
        *out = p;
        return 0;
    }
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", b->dir, t->name, id);
    log_options o;
    broker__log_options(t, b->cfg, &o);
    partition *p = xcalloc(1, sizeof(*p));
    p->t = t;
    p->id = id;
    int rc = log_partition_open(dir, &o, b->syncer, &p->log);
    if (rc < 0) {
        free(p);
        return rc;
    }
    log_partition_set_durable_cb(p->log, partition_durable_cb, p);
    log_set_high_watermark(p->log, log_end_offset(p->log));
    p->ps = pst_new();
    rc = partition_load_producers(p, dir);
    if (rc == 0 && o.raft) {
        rc = b->rg ? group_open(b, p) : -CN_EINVAL;
    }
    if (rc < 0) {
        pst_free(p->ps);
        log_partition_close(p->log);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void partition_end_waits(partition *p, int status);

int broker__partition_go_local(partition *p)
{
    broker *b = p->t->b;
    if (!p->remote)
        return 0;
    if (!b->rg)
        return -CN_EINVAL;
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-%d", b->dir, p->t->name, p->id);
    broker__rm_rf(dir); /* a replica this node once had: the group starts it anew */
    log_options o;
    broker__log_options(p->t, b->cfg, &o);
    log_partition *lp = NULL;
    int rc = log_partition_open(dir, &o, b->syncer, &lp);
    if (rc < 0)
        return rc;
    broker__fsync_dir(b->dir);
    log_partition *empty = p->log;
    p->log = lp;
    p->remote = 0;
    p->applied = 0;
    p->snap_offset = 0;
    log_partition_set_durable_cb(lp, partition_durable_cb, p);
    rc = group_open(b, p);
    if (rc < 0) {
        p->log = empty;
        p->remote = 1;
        log_partition_destroy(lp);
        return rc;
    }
    slog_info("%s-%d: replica opened to join the partition's group", p->t->name, p->id);
    return 0;
}

void broker__partition_go_remote(partition *p)
{
    broker *b = p->t->b;
    log_partition *empty = empty_log(b);
    if (p->remote || !empty) {
        if (!empty)
            slog_error("%s-%d: replica kept: the empty log cannot be opened", p->t->name, p->id);
        return;
    }
    if (p->rg) {
        rg_group_close(p->rg);
        p->rg = NULL;
    }
    /* What waits here may have committed under the group's leader, which
     * this node no longer hears from: outcome unknown. */
    partition_end_waits(p, -CN_ECOMMITTMO);
    log_partition_destroy(p->log);
    p->log = empty;
    pst_free(p->ps);
    p->ps = pst_new();
    p->remote = 1;
    p->rep_leader = -1;
    p->rep_epoch = -1;
    p->leading = 0;
    p->known_leader = 0;
    p->applied = 0;
    p->snap_offset = 0;
    b->appended = 1; /* parked requests on it look again (now: not the leader) */
    slog_info("%s-%d: replica removed (moved to other nodes)", p->t->name, p->id);
}

/* Complete every parked wait with status. */
static void partition_end_waits(partition *p, int status)
{
    while (p->start_waits) {
        durable_wait *w = p->start_waits;
        p->start_waits = w->next;
        w->next = NULL;
        w->cb(w, status);
    }
    while (p->waits) {
        durable_wait *w = p->waits;
        p->waits = w->next;
        w->next = NULL;
        w->cb(w, status);
    }
}

/* destroy: delete the data (waits fail). Otherwise fsync everything first,
 * so parked acks=all requests complete with success. */
void broker__partition_close(partition *p, int destroy)
{
    if (!p)
        return;
    if (p->remote) {
        pst_free(p->ps);
        free(p);
        return;
    }
    if (p->rg) {
        rg_group_close(p->rg);
        p->rg = NULL;
    }
    if (destroy) {
        partition_end_waits(p, -CN_EIO);
        log_partition_destroy(p->log);
    } else {
        int rc = log_partition_sync_now(p->log);
        if (rc < 0)
            slog_error("final fsync of %s-%d failed: %s", p->t->name, p->id, cn_strerror(rc));
        partition_end_waits(p, rc < 0 ? -CN_EIO : 0);
        if (rc == 0)
            broker__partition_snapshot(p);
        log_partition_close(p->log);
    }
    pst_free(p->ps);
    free(p);
}

int broker_produce(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset)
{
    if (p->remote || (p->rg && !rg_is_leader(p->rg)))
        return -CN_ENOTLEADER; /* before the producer rules: a follower has no producer state */
    if (p->rg && !rg_quorum_contact(p->rg, loop_now(b->l)))
        return -CN_ENOQUORUM; /* would park until the majority is back: fail fast */
    batch_info bi;
    if (batch_parse_header(batch, len, &bi) < 0)
        return -CN_ECORRUPT;
    if (bi.producer_id >= 0) {
        pst_batch dup;
        int rc = pst_check(p->ps, &bi, &dup);
        if (rc == 1) {
            *base_offset = dup.first_offset; /* a retry of a stored batch */
            return 0;
        }
        if (rc < 0)
            return rc;
    }
    int rc = broker_append(b, p, batch, len, base_offset);
    if (rc < 0)
        return rc;
    if (bi.producer_id >= 0)
        pst_update(p->ps, &bi, *base_offset, -1, -1);
    if (p->rg)
        p->applied = log_end_offset(p->log);
    p->produced_records += bi.record_count;
    p->produced_bytes += (int64_t)len;
    return 0;
}

int broker_write_marker(broker *b, partition *p, int64_t pid, int16_t epoch, int commit,
                        int32_t coordinator_epoch, int64_t *offset)
{
    if (p->remote || (p->rg && !rg_is_leader(p->rg)))
        return -CN_ENOTLEADER;
    const pst_producer *known = pst_get(p->ps, pid);
    if (known && epoch < known->epoch) {
        /* Kafka refuses a marker from an older epoch: it would un-fence. */
        slog_warn("%s-%d: marker for producer %lld with epoch %d below its epoch %d refused",
                  p->t->name, p->id, (long long)pid, epoch, known->epoch);
        return -CN_EINVAL;
    }
    uint8_t buf[BATCH_MARKER_SIZE];
    size_t len = batch_marker_build(buf, pid, epoch, commit, coordinator_epoch, loop_wall_ms());
    int rc = broker_append(b, p, buf, len, offset);
    if (rc < 0)
        return rc;
    batch_info bi;
    batch_parse_header(buf, len, &bi);
    pst_update(p->ps, &bi, *offset, commit ? 1 : 0, coordinator_epoch);
    if (p->rg)
        p->applied = log_end_offset(p->log);
    return 0;
}

int64_t broker_lso(const partition *p)
{
    int64_t hw = log_high_watermark(p->log);
    int64_t first = pst_first_unstable(p->ps);
    return first >= 0 && first < hw ? first : hw;
}

int broker_append(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *base_offset)
{
    if (p->remote)
        return -CN_ENOTLEADER;
    if (p->rg) {
        int64_t index;
        int rc = rg_submit(p->rg, batch, len, loop_now(b->l), base_offset, &index);
        if (rc == -CN_EAGAIN)
            return -CN_ELEADERWAIT;
        if (rc < 0)
            return rc;
        b->appended = 1; /* the high watermark moves with the commit (rg_changed) */
        return 0;
    }
    int rc = log_append(p->log, batch, len, loop_wall_ms(), base_offset);
    if (rc < 0)
        return rc;
    log_set_high_watermark(p->log, log_end_offset(p->log));
    b->appended = 1;
    return 0;
}

/* DeleteRecords on a replicated partition: the leader puts the new start in
 * the log (rg_submit_start); every replica moves its start when it sees the
 * entry committed (rg_changed); the wait fires once this node's start is
 * durable, or with REQUEST_TIMED_OUT after BROKER_DELETE_WAIT_MS. */
#define BROKER_DELETE_WAIT_MS 30000
static int delete_records_replicated(broker *b, partition *p, int64_t offset, durable_wait *w)
{
    if (!rg_is_leader(p->rg))
        return -CN_ENOTLEADER;
    int64_t start = log_start_offset(p->log);
    if (offset > start) {
        int64_t index;
        int rc = rg_submit_start(p->rg, offset, loop_now(b->l), &index);
        if (rc == -CN_EAGAIN)
            return -CN_ELEADERWAIT; /* a new term's first sync: retriable */
        if (rc < 0)
            return rc;
        slog_info("%s-%d: records before %lld to be deleted (DeleteRecords, raft index %lld)",
                  p->t->name, p->id, (long long)offset, (long long)index);
    }
    w->target = CN_MAX(offset, start);
    w->deadline = loop_now(b->l) + BROKER_DELETE_WAIT_MS;
    w->next = p->start_waits;
    p->start_waits = w;
    if (!loop_timer_armed(&b->commit_timer) || b->commit_timer.deadline > w->deadline)
        loop_timer_start(b->l, &b->commit_timer, BROKER_DELETE_WAIT_MS);
    partition_fire_start_waits(p, log_failed(p->log) ? -CN_EIO : 0);
    return 0;
}

int broker_delete_records(broker *b, partition *p, int64_t offset, durable_wait *w)
{
    if (p->remote)
        return -CN_ENOTLEADER;
    if (p->rg)
        return delete_records_replicated(b, p, offset, w);
    int64_t before = log_start_offset(p->log);
    int rc = log_delete_before(p->log, offset);
    if (rc < 0)
        return rc;
    int64_t start = log_start_offset(p->log);
    if (start > before) {
        pst_truncate_head(p->ps, start);
        slog_info("%s-%d: records before %lld deleted (DeleteRecords)", p->t->name, p->id,
                  (long long)start);
    }
    w->target = start;
    w->next = p->start_waits;
    p->start_waits = w;
    /* A job runs (or is queued behind the one in flight) and its completion
     * fires w; with nothing left to sync the start is durable already. */
    log_sync_request(p->log);
    partition_fire_start_waits(p, log_failed(p->log) ? -CN_EIO : 0);
    return 0;
}

/* Fire the waits of p whose deadline passed; returns the earliest deadline
 * left (INT64_MAX: none). */
static int64_t expire_waits(durable_wait **list, int64_t now)
{
    int64_t next = INT64_MAX;
    durable_wait **pp = list;
    while (*pp) {
        durable_wait *w = *pp;
        if (w->deadline > 0 && w->deadline <= now) {
            *pp = w->next;
            w->next = NULL;
            w->cb(w, -CN_ECOMMITTMO);
        } else {
            if (w->deadline > 0)
                next = CN_MIN(next, w->deadline);
            pp = &w->next;
        }
    }
    return next;
}

void broker__commit_timer_cb(loop_timer *tm)
{
    broker *b = tm->data;
    int64_t now = loop_now(b->l), next = INT64_MAX;
    topic *lists[2] = {b->list, b->internal};
    for (int k = 0; k < 2; k++)
        for (topic *t = lists[k]; t; t = t->lnext)
            for (int32_t i = 0; i < t->n_parts; i++)
                if (t->parts[i]->rg) {
                    next = CN_MIN(next, expire_waits(&t->parts[i]->waits, now));
                    next = CN_MIN(next, expire_waits(&t->parts[i]->start_waits, now));
                }
    if (next != INT64_MAX)
        loop_timer_start(b->l, tm, next - now);
}

void broker_wait_durable(broker *b, partition *p, durable_wait *w)
{
    broker_wait_durable_until(b, p, w, 0);
}

void broker_wait_durable_until(broker *b, partition *p, durable_wait *w, int64_t deadline)
{
    w->deadline = p->rg && deadline > 0 ? deadline : 0;
    if (p->rg) {
        /* acks=all on a replicated partition: committed = durable on a
         * majority. The group's flush asks for the syncs. */
        if (log_high_watermark(p->log) >= w->target) {
            w->cb(w, 0);
            return;
        }
        w->next = p->waits;
        p->waits = w;
        if (w->deadline > 0 && (!loop_timer_armed(&b->commit_timer) ||
                                b->commit_timer.deadline > w->deadline))
            loop_timer_start(b->l, &b->commit_timer, CN_MAX(w->deadline - loop_now(b->l), 0));
        return;
    }
    if (log_durable_offset(p->log) >= w->target) {
        w->cb(w, 0);
        return;
    }
    w->next = p->waits;
    p->waits = w;
    log_sync_request(p->log);
}

void broker_wait_cancel(partition *p, durable_wait *w)
{
    durable_wait **lists[2] = {&p->waits, &p->start_waits};
    for (int k = 0; k < 2; k++)
        for (durable_wait **pp = lists[k]; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                w->next = NULL;
                return;
            }
}
