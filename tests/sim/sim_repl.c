/* Deterministic simulation of src/repl (cluster plan step 3, docs/testing.md
 * "Simulation"): K nodes (3 or 5) in one process, each an rg_node with a few
 * replication groups over real raft-mode partitions in a temp directory
 * (/dev/shm when present), a manual syncer (log_syncer_new_manual) whose
 * fsyncs complete at virtual times in any order, a message queue with
 * seeded drop, delay, duplication and reorder, network partitions that
 * heal, disk stalls, crashes that cut every file of a node back to what a
 * power loss leaves (the CAIRN_FAULT build: fault_cut_dir, mode 1 or 2) or
 * keep it (a process crash), of one node or all, restarts from the files,
 * leadership transfers and membership changes (rg_admin.c). One step is one
 * virtual millisecond. Everything comes from the seed: a run replays
 * exactly with the command line it prints.
 *
 * Checked after every step: at most one leader per term (ever, per group);
 * the first time any node reports an entry committed its term and bytes are
 * recorded, and every node's log up to its commit index must equal that
 * history (so a committed entry never changes); a node's commit index never
 * goes back while it stays up, nor is its log cut below it; no group fails
 * (no storage faults are injected, so any rg_failed is a bug). At the end
 * every fault heals, every node comes back, and every acknowledged batch
 * (its index committed on its leader while that node still led its term)
 * must be on every node.
 *
 * Usage: sim_repl [--seed S] [--steps N] [--nodes K] [--groups G]
 *                 [--seeds A-B] [--time-limit SEC] [-v] (SIMDEBUG=1 with -v: debug log lines)
 * SIM_TRACE=ms prints every delivered message from that virtual time on.
 * With no --seed: the smoke (seeds 1..40, 8000 steps, 3 and 5 nodes
 * alternately; a time limit of 150 s keeps it bounded on a loaded machine). */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "record/batch.h"
#include "repl/repl.h"
#include "repl/repl_int.h" /* internals shown in the violation report */
#include "repl/rg_msg.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/fault.h"
#include "util/slog.h"

#define MAXN 5
#define MAXG 4
#define ELECTION_MS 150
#define HEARTBEAT_MS 30

/* Randomness --------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Simulation state ------------------------------------------------------------------ */

typedef struct msg {
    int64_t at;
    uint64_t seq;
    int from, to;
    uint64_t gid;
    uint8_t *b;
    size_t len;
} msg;

typedef struct hent {
    int64_t term;                   /* 0: not known committed yet */
    uint64_t hash;
} hent;

typedef struct sub {
    int64_t index, term;
    int node;
    uint64_t hash;
    int acked;
} sub;

typedef struct gstate {
    hent *hist;                     /* committed history by index */
    int64_t cap_hist;
    int64_t *leader_of_term;        /* node + 1 */
    int64_t cap_lt;
    sub *subs;
    size_t n_subs, cap_subs;
    size_t first_open;              /* subs before this are acked or decided */
} gstate;

typedef struct node {
    int up;
    int64_t up_at;                  /* restart time while down */
    int64_t stall_until;            /* its disk completes no sync before this */
    int64_t clk_off;                /* its clock: clk_off + now * (1 + clk_ppm / 1e6) */
    int64_t clk_ppm;
    int restarts;
    char dir[300];
    char pdir[MAXG][320];
    log_syncer *sy;
    rg_node *rn;
    log_partition *p[MAXG];
    rg_group *g[MAXG];
    int64_t max_commit[MAXG];
    int64_t checked[MAXG];          /* log verified against history up to here */
    int64_t anchor[MAXG];           /* snapshot index of its log seen last */
    int64_t told[MAXG];             /* commit offset at the last changed callback */
} node;

typedef struct sim sim;
typedef struct sendctx {
    sim *s;
    int from;
} sendctx;

struct sim {
    uint64_t seed, rng;
    int n, ng, verbose;
    int64_t steps, now, step;
    int settling;
    char base[256];
    node nd[MAXN];
    sendctx ctx[MAXN];
    int cut[MAXN][MAXN];
    int64_t heal_at;                /* 0: no partition */
    msg *q;
    size_t nq, capq;
    uint64_t mseq, payload_id;
    gstate gs[MAXG];
    /* per-run parameters, from the seed */
    unsigned p_drop, p_dup, p_long;  /* per mille */
    unsigned max_delay;              /* ms */
    unsigned p_sync;                 /* per mille per pending job per step */
    unsigned crash_every, part_every, transfer_every, member_every, submit_every, stall_every;
    unsigned compact_every;          /* 0: no snapshots this run */
    int crash_mode;                  /* 0: random per crash; 1, 2: power loss (fault.h
                                      * modes); 3: process crash (page cache kept) */
    /* membership (group 0, 5 nodes): the node taken out and its stage */
    int mem_node, mem_stage, mem_role;
    int64_t mem_index, mem_since;
    /* stats */
    long elections, crashes, cuts_mode2, kills, crash_all, stalls, partitions, transfers, transfer_ok, member_changes,
        submits, acked, eagain, notleader, dropped, duplicated, delivered, syncs, compactions,
        installs, starts, downs;
    uint64_t transfer_to[MAXG];
    const char *fault;              /* the last fault injected, for reports */
    int trace;
    int64_t trace_from;
};

static sim *cur;                    /* for the violation report */
static struct {
    long runs, steps, elections, crashes, partitions, transfers, members, stalls, acked,
        compactions, installs;
} tot;                              /* over the runs of this process */
static char replay[512];

static void dump(sim *s);

/* Node i's clock (ms): its own origin and rate, monotonic like the real
 * one (repl takes time from any monotonic origin). */
static int64_t ntime(const sim *s, int i)
{
    const node *n = &s->nd[i];
    return n->clk_off + s->now + s->now * n->clk_ppm / 1000000;
}

static void violation(sim *s, const char *fmt, ...) CN_PRINTF(2, 3);
static void violation(sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\nVIOLATION seed=%llu step=%lld: ", (unsigned long long)s->seed,
            (long long)s->step);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nlast fault: %s\n", s->fault ? s->fault : "none");
    dump(s);
    fprintf(stderr, "files kept in %s\nreplay: %s\n", s->base, replay);
    exit(1);
}

static unsigned rnd(sim *s, unsigned n) { return n ? (unsigned)(rng_next(&s->rng) % n) : 0; }
static int chance(sim *s, unsigned per_mille) { return rnd(s, 1000) < per_mille; }

static uint64_t fnv(uint64_t h, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* Network ------------------------------------------------------------------------------ */

static void q_push(sim *s, int from, int to, uint64_t gid, const uint8_t *b, size_t len,
                   int64_t at)
{
    if (s->nq == s->capq) {
        s->capq = s->capq ? s->capq * 2 : 256;
        s->q = xrealloc(s->q, s->capq * sizeof(*s->q));
    }
    msg *m = &s->q[s->nq++];
    m->at = at;
    m->seq = s->mseq++;
    m->from = from;
    m->to = to;
    m->gid = gid;
    m->len = len;
    m->b = xmalloc(len ? len : 1);
    memcpy(m->b, b, len);
}

static int64_t delay(sim *s)
{
    int64_t d = 1 + rnd(s, s->max_delay);
    if (!s->settling && chance(s, s->p_long))
        d += rnd(s, 400);
    return d;
}

static void on_changed(void *arg, rg_group *g)
{
    sendctx *c = arg;
    c->s->nd[c->from].told[rg_group_id(g) - 1] = rg_commit_offset(g);
}

static void on_send(void *arg, uint64_t to, uint64_t gid, const uint8_t *b, size_t len)
{
    sendctx *c = arg;
    sim *s = c->s;
    if (to < 1 || to > (uint64_t)s->n)
        violation(s, "node %d sent to unknown node %llu", c->from + 1, (unsigned long long)to);
    int t = (int)to - 1;
    if (s->cut[c->from][t] || (!s->settling && chance(s, s->p_drop))) {
        s->dropped++;
        return;
    }
    q_push(s, c->from, t, gid, b, len, s->now + delay(s));
    if (!s->settling && chance(s, s->p_dup)) {
        s->duplicated++;
        q_push(s, c->from, t, gid, b, len, s->now + delay(s));
    }
}

/* SIM_TRACE=from_ms: print every delivered message from then on. */
static void trace_msg(sim *s, const msg *m)
{
    static struct raft_entry *ents;
    static size_t cap;
    struct raft_message x;
    if (rg_msg_decode(m->b, m->len, &x, &ents, &cap) < 0)
        return;
    printf("  %8lld ms g%llu %d->%d ", (long long)s->now, (unsigned long long)m->gid, m->from + 1,
           m->to + 1);
    switch (x.type) {
    case RAFT_APPEND_ENTRIES:
        printf("AE term %llu prev %llu^%llu n %u commit %llu\n",
               (unsigned long long)x.append_entries.term,
               (unsigned long long)x.append_entries.prev_log_index,
               (unsigned long long)x.append_entries.prev_log_term, x.append_entries.n_entries,
               (unsigned long long)x.append_entries.leader_commit);
        break;
    case RAFT_APPEND_ENTRIES_RESULT:
        printf("AER term %llu rejected %llu last %llu\n",
               (unsigned long long)x.append_entries_result.term,
               (unsigned long long)x.append_entries_result.rejected,
               (unsigned long long)x.append_entries_result.last_log_index);
        break;
    case RAFT_REQUEST_VOTE:
        printf("RV term %llu last %llu^%llu pre %d\n", (unsigned long long)x.request_vote.term,
               (unsigned long long)x.request_vote.last_log_index,
               (unsigned long long)x.request_vote.last_log_term, x.request_vote.pre_vote);
        break;
    case RAFT_REQUEST_VOTE_RESULT:
        printf("RVR term %llu granted %d pre %d\n",
               (unsigned long long)x.request_vote_result.term,
               x.request_vote_result.vote_granted, x.request_vote_result.pre_vote);
        break;
    default:
        printf("type %d\n", x.type);
    }
}

static int msg_cmp(const void *a, const void *b)
{
    const msg *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void deliver_due(sim *s)
{
    size_t nd = 0;
    for (size_t i = 0; i < s->nq; i++)
        if (s->q[i].at <= s->now)
            nd++;
    if (!nd)
        return;
    msg *due = xmalloc(nd * sizeof(*due));
    size_t k = 0, keep = 0;
    for (size_t i = 0; i < s->nq; i++) {
        if (s->q[i].at <= s->now)
            due[k++] = s->q[i];
        else
            s->q[keep++] = s->q[i];
    }
    s->nq = keep;
    qsort(due, nd, sizeof(*due), msg_cmp);
    for (size_t i = 0; i < nd; i++) {
        msg *m = &due[i];
        node *n = &s->nd[m->to];
        if (s->trace && n->up && !s->cut[m->from][m->to] && s->now >= s->trace_from)
            trace_msg(s, m);
        if (n->up && !s->cut[m->from][m->to]) {
            int rc = rg_receive(n->rn, (uint64_t)m->from + 1, m->gid, m->b, m->len, ntime(s, m->to));
            if (rc < 0)
                violation(s, "rg_receive node=%d group=%llu from=%d: %s", m->to + 1,
                          (unsigned long long)m->gid, m->from + 1, cn_strerror(rc));
            s->delivered++;
        } else {
            s->dropped++;
        }
        free(m->b);
    }
    free(due);
}

/* Nodes ----------------------------------------------------------------------------------- */

static log_options ropts(const sim *s)
{
    log_options o = {
        .segment_bytes = 16384,
        .segment_ms = -1,
        .retention_ms = -1,
        .retention_bytes = s->compact_every ? 32768 : -1,
        .index_interval_bytes = 512,
        .raft = 1,
    };
    return o;
}

static void node_open(sim *s, int i)
{
    node *n = &s->nd[i];
    int rc = log_syncer_new_manual(&n->sy);
    if (rc < 0)
        violation(s, "syncer: %s", cn_strerror(rc));
    s->ctx[i] = (sendctx){s, i};
    rg_node_cb cb = {.send = on_send, .changed = on_changed, .arg = &s->ctx[i]};
    rc = rg_node_open(n->dir, (uint64_t)i + 1, n->sy, &cb, &n->rn);
    if (rc < 0)
        violation(s, "rg_node_open node=%d: %s", i + 1, cn_strerror(rc));
    rg_node_set_timeouts(n->rn, ELECTION_MS, HEARTBEAT_MS,
                         s->seed * 1000003u + (uint64_t)i * 7919u + (uint64_t)n->restarts * 104729u);
    uint64_t voters[MAXN];
    for (int k = 0; k < s->n; k++)
        voters[k] = (uint64_t)k + 1;
    for (int g = 0; g < s->ng; g++) {
        log_options o = ropts(s);
        rc = log_partition_open(n->pdir[g], &o, n->sy, &n->p[g]);
        if (rc < 0)
            violation(s, "log_partition_open node=%d group=%d: %s", i + 1, g + 1,
                      cn_strerror(rc));
        /* With 5 nodes, group 1 starts with voters 1-4: node 5 opens it
         * over an empty log with the same first entry and is added later
         * (membership), as a node that never had the group. */
        size_t nv = s->n == 5 && g == 0 ? 4 : (size_t)s->n;
        rc = rg_group_open(n->rn, (uint64_t)g + 1, n->p[g], voters, nv, ntime(s, i),
                           &n->g[g]);
        if (rc < 0)
            violation(s, "rg_group_open node=%d group=%d: %s", i + 1, g + 1, cn_strerror(rc));
        n->max_commit[g] = 0; /* the commit index is volatile */
        n->told[g] = rg_commit_offset(n->g[g]); /* the owner reads it at open */
        n->checked[g] = 0;
        int64_t ai, at, ao;
        log_raft_anchor(n->p[g], &ai, &at, &ao);
        n->anchor[g] = ai;
    }
    n->up = 1;
    if (s->verbose)
        for (int g = 0; g < s->ng; g++)
            printf("  %8lld ms: node %d opened group %d: log end %lld\n", (long long)s->now, i + 1,
                   g + 1, (long long)log_end_offset(n->p[g]));
}

/* Stop abruptly: nothing more is synced, queued syncs are lost, then every
 * file is cut back to what the disk had (CAIRN_FAULT build). */
static void node_crash(sim *s, int i)
{
    node *n = &s->nd[i];
    rg_node_close(n->rn);
    for (int g = 0; g < s->ng; g++) {
        log_partition_close(n->p[g]);
        n->p[g] = NULL;
        n->g[g] = NULL;
    }
    n->rn = NULL;
    log_syncer_discard(n->sy);
    int mode = s->crash_mode ? s->crash_mode : 1 + (int)rnd(s, 3);
    uint64_t cut_seed = rng_next(&s->rng);
    s->cuts_mode2 += mode == 2;
    if (s->verbose)
        printf("  %8lld ms: node %d crash mode %d\n", (long long)s->now, i + 1, mode);
    s->kills += mode == 3;
#ifdef CAIRN_FAULT
    if (mode != 3 && fault_cut_dir(n->dir, mode, cut_seed) < 0)
        violation(s, "fault_cut_dir %s failed", n->dir);
#else
    (void)cut_seed;
#endif
    log_syncer_free(n->sy);
    n->sy = NULL;
    n->up = 0;
    n->restarts++;
    s->crashes++;
}

static void node_close_clean(sim *s, int i)
{
    node *n = &s->nd[i];
    if (!n->up)
        return;
    rg_node_close(n->rn);
    for (int g = 0; g < s->ng; g++)
        log_partition_close(n->p[g]);
    log_syncer_free(n->sy);
    n->up = 0;
}

/* Syncs: each pending job of an up node completes with some chance per
 * step, a random one of them first (completions reorder across
 * partitions and raft.votes). */
static void run_syncs(sim *s, int i)
{
    node *n = &s->nd[i];
    if (s->now < n->stall_until)
        return;
    size_t pend = log_syncer_pending(n->sy);
    int ran = 0;
    for (size_t k = 0; k < pend; k++) {
        if (!chance(s, s->p_sync))
            continue;
        size_t left = log_syncer_pending(n->sy);
        if (!left)
            break;
        log_syncer_run(n->sy, rnd(s, (unsigned)left));
        s->syncs++;
        ran = 1;
    }
    if (ran)
        log_syncer_drain(n->sy);
}

/* Checks ---------------------------------------------------------------------------------- */

static uint8_t *rbuf;
static size_t rcap;

/* Term and hash of the entry at index on node i, group g. */
static int entry_hash(sim *s, int i, int g, int64_t index, int64_t *term, uint64_t *hash)
{
    node *n = &s->nd[i];
    log_raft_entry e;
    int rc = log_raft_entry_at(n->p[g], index, &e);
    if (rc < 0)
        return rc;
    *term = e.term;
    uint64_t h = fnv(0xcbf29ce484222325ull, (const uint8_t *)&e.term, sizeof(e.term));
    if (!e.is_batch) {
        uint8_t t = e.type;
        h = fnv(h, &t, 1);
        *hash = fnv(h, e.payload, e.payload_len);
        return 0;
    }
    log_slice sl;
    rc = log_raft_read(n->p[g], e.offset, e.next_offset, e.len, &sl);
    if (rc < 0)
        return rc;
    if (sl.len != e.len) {
        log_slice_release(&sl);
        return -CN_EIO;
    }
    if ((size_t)sl.len > rcap) {
        rcap = (size_t)sl.len;
        rbuf = xrealloc(rbuf, rcap);
    }
    ssize_t got = pread(sl.fd, rbuf, (size_t)sl.len, sl.pos);
    log_slice_release(&sl);
    if (got != (ssize_t)e.len)
        return -CN_EIO;
    *hash = fnv(h, rbuf, (size_t)e.len);
    return 0;
}

static uint64_t batch_hash(int64_t term, const uint8_t *b, size_t len)
{
    return fnv(fnv(0xcbf29ce484222325ull, (const uint8_t *)&term, sizeof(term)), b, len);
}

static hent *hist_at(gstate *gs, int64_t index)
{
    if (index >= gs->cap_hist) {
        int64_t cap = gs->cap_hist ? gs->cap_hist : 256;
        while (cap <= index)
            cap *= 2;
        gs->hist = xrealloc(gs->hist, (size_t)cap * sizeof(*gs->hist));
        memset(gs->hist + gs->cap_hist, 0, (size_t)(cap - gs->cap_hist) * sizeof(*gs->hist));
        gs->cap_hist = cap;
    }
    return &gs->hist[index];
}

static void note_leader(sim *s, int g, int64_t term, int i)
{
    gstate *gs = &s->gs[g];
    if (term >= gs->cap_lt) {
        int64_t cap = gs->cap_lt ? gs->cap_lt : 64;
        while (cap <= term)
            cap *= 2;
        gs->leader_of_term = xrealloc(gs->leader_of_term, (size_t)cap * sizeof(int64_t));
        memset(gs->leader_of_term + gs->cap_lt, 0, (size_t)(cap - gs->cap_lt) * sizeof(int64_t));
        gs->cap_lt = cap;
    }
    int64_t *l = &gs->leader_of_term[term];
    if (*l && *l != i + 1)
        violation(s, "two leaders in term %lld of group %d: nodes %lld and %d", (long long)term,
                  g + 1, (long long)*l, i + 1);
    if (!*l) {
        *l = i + 1;
        s->elections++;
        if (s->verbose)
            printf("  %8lld ms: group %d leader node %d term %lld\n", (long long)s->now, g + 1,
                   i + 1, (long long)term);
    }
}

static void check(sim *s)
{
    for (int g = 0; g < s->ng; g++) {
        gstate *gs = &s->gs[g];
        for (int i = 0; i < s->n; i++) {
            node *n = &s->nd[i];
            if (!n->up)
                continue;
            rg_group *grp = n->g[g];
            if (rg_failed(grp))
                violation(s, "group %d failed on node %d (no fault injected that could do it)",
                          g + 1, i + 1);
            if (rg_is_leader(grp))
                note_leader(s, g, rg_term(grp), i);
            int64_t c = rg_commit_index(grp);
            if (c < n->max_commit[g])
                violation(s, "commit index of group %d on node %d went back %lld -> %lld", g + 1,
                          i + 1, (long long)n->max_commit[g], (long long)c);
            n->max_commit[g] = c;
            /* The owner (the broker's high watermark) heard of every move
             * of the commit offset. */
            if (n->told[g] != rg_commit_offset(grp))
                violation(s, "group %d node %d: commit offset %lld, last told %lld", g + 1,
                          i + 1, (long long)rg_commit_offset(grp), (long long)n->told[g]);
            int64_t last, lt;
            log_raft_last(n->p[g], &last, &lt);
            if (last < n->checked[g])
                violation(s, "group %d node %d: log cut to %lld below committed %lld", g + 1,
                          i + 1, (long long)last, (long long)n->checked[g]);
            int64_t upto = CN_MIN(c, last);
            int64_t ai, at, ao;
            log_raft_anchor(n->p[g], &ai, &at, &ao);
            if (ai > n->anchor[g]) {
                /* A snapshot this node did not take: installed from a
                 * leader. Its index and term are history too. */
                s->installs++;
                n->anchor[g] = ai;
            }
            if (ai > 0) {
                hent *he = hist_at(gs, ai);
                if (he->term && he->term != at)
                    violation(s, "group %d node %d: snapshot at %lld has term %lld, committed as "
                              "term %lld", g + 1, i + 1, (long long)ai, (long long)at,
                              (long long)he->term);
            }
            for (int64_t x = CN_MAX(n->checked[g], ai) + 1; x <= upto; x++) {
                int64_t t;
                uint64_t h;
                int rc = entry_hash(s, i, g, x, &t, &h);
                if (rc < 0)
                    violation(s, "group %d node %d: committed entry %lld unreadable: %s", g + 1,
                              i + 1, (long long)x, cn_strerror(rc));
                hent *he = hist_at(gs, x);
                if (!he->term) {
                    he->term = t;
                    he->hash = h;
                } else if (he->term != t || he->hash != h) {
                    violation(s,
                              "group %d node %d: committed entry %lld differs (term %lld, "
                              "committed as term %lld%s)",
                              g + 1, i + 1, (long long)x, (long long)t, (long long)he->term,
                              he->term == t ? ", other bytes" : "");
                }
            }
            if (upto > n->checked[g])
                n->checked[g] = upto;
        }
        /* Acknowledgements: committed on the node that took the submit
         * while it still leads the term it took it in. */
        for (size_t k = gs->first_open; k < gs->n_subs; k++) {
            sub *u = &gs->subs[k];
            if (u->acked)
                continue;
            node *n = &s->nd[u->node];
            if (!n->up || !rg_is_leader(n->g[g]) || rg_term(n->g[g]) != u->term) {
                u->acked = -1; /* never acknowledged: may be lost */
                continue;
            }
            if (rg_commit_index(n->g[g]) >= u->index) {
                hent *he = hist_at(gs, u->index);
                if (he->term != u->term || he->hash != u->hash)
                    violation(s, "group %d: acknowledged batch at %lld is not what was submitted",
                              g + 1, (long long)u->index);
                u->acked = 1;
                s->acked++;
            }
        }
        while (gs->first_open < gs->n_subs && gs->subs[gs->first_open].acked)
            gs->first_open++;
    }
}

/* Re-verify every node's whole committed prefix (a committed entry never
 * changes afterwards, not only when first seen). */
static void recheck_all(sim *s)
{
    for (int i = 0; i < s->n; i++)
        for (int g = 0; g < s->ng; g++)
            s->nd[i].checked[g] = 0;
    check(s);
}

/* Workload ------------------------------------------------------------------------------- */

static int leader_of(sim *s, int g)
{
    int l = -1;
    int64_t best = -1;
    for (int i = 0; i < s->n; i++)
        if (s->nd[i].up && rg_is_leader(s->nd[i].g[g]) && rg_term(s->nd[i].g[g]) > best) {
            best = rg_term(s->nd[i].g[g]);
            l = i;
        }
    return l;
}

static size_t make_batch(sim *s, uint8_t *buf, size_t len, uint64_t id)
{
    memset(buf, 0, BATCH_HEADER_SIZE);
    be_put32(buf + BATCH_OFF_LENGTH, (uint32_t)(len - 12));
    buf[BATCH_OFF_MAGIC] = 2;
    be_put32(buf + BATCH_OFF_LAST_OFFSET_DELTA, 0);
    be_put64(buf + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)s->now);
    be_put64(buf + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)s->now);
    be_put64(buf + BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
    buf[BATCH_OFF_PRODUCER_EPOCH] = 0xff;
    buf[BATCH_OFF_PRODUCER_EPOCH + 1] = 0xff;
    be_put32(buf + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    be_put32(buf + BATCH_OFF_RECORDS_COUNT, 1);
    be_put64(buf + BATCH_HEADER_SIZE, id); /* unique payload */
    for (size_t i = BATCH_HEADER_SIZE + 8; i < len; i++)
        buf[i] = (uint8_t)(id * 31 + i * 7);
    be_put32(buf + BATCH_OFF_CRC, crc32c(0, buf + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
    return len;
}

/* Submit one batch to group g's leader. Returns its index or 0. */
static int64_t submit(sim *s, int g)
{
    int l = leader_of(s, g);
    if (l < 0)
        return 0;
    uint8_t b[512];
    size_t len = make_batch(s, b, BATCH_HEADER_SIZE + 8 + rnd(s, 400), ++s->payload_id);
    int64_t off = -1, idx = -1;
    rg_group *grp = s->nd[l].g[g];
    int rc = rg_submit(grp, b, len, ntime(s, l), &off, &idx);
    if (rc == -CN_EAGAIN) {
        s->eagain++;
        return 0;
    }
    if (rc == -CN_ENOTLEADER) {
        s->notleader++;
        return 0;
    }
    if (rc < 0)
        violation(s, "rg_submit group %d node %d: %s", g + 1, l + 1, cn_strerror(rc));
    gstate *gs = &s->gs[g];
    if (gs->n_subs == gs->cap_subs) {
        gs->cap_subs = gs->cap_subs ? gs->cap_subs * 2 : 256;
        gs->subs = xrealloc(gs->subs, gs->cap_subs * sizeof(*gs->subs));
    }
    int64_t term = rg_term(grp);
    gs->subs[gs->n_subs++] = (sub){.index = idx, .term = term, .node = l,
                                   .hash = batch_hash(term, b, len)};
    s->submits++;
    return idx;
}

/* Faults ----------------------------------------------------------------------------------- */

/* The transport's word on links (rg_node_peer_down/up, fast election): node
 * j hears that its connection to node i closed. Said after most crashes (a
 * killed process's sockets close) and for some links a partition cuts
 * (a wrong "down" about a live node: it may cost an election, never
 * safety); "up" for every link on heal and restart. */
static void link_down(sim *s, int i, int j)
{
    if (i != j && s->nd[j].up) {
        rg_node_peer_down(s->nd[j].rn, (uint64_t)i + 1, ntime(s, j));
        s->downs++;
    }
}

static void links_up(sim *s, int i)
{
    for (int j = 0; j < s->n; j++)
        if (j != i && s->nd[j].up && s->nd[i].up) {
            rg_node_peer_up(s->nd[j].rn, (uint64_t)i + 1);
            rg_node_peer_up(s->nd[i].rn, (uint64_t)j + 1);
        }
}

static void heal(sim *s)
{
    memset(s->cut, 0, sizeof(s->cut));
    s->heal_at = 0;
    for (int i = 0; i < s->n; i++)
        links_up(s, i);
}

static void partition(sim *s)
{
    heal(s);
    int kind = (int)rnd(s, 3);
    if (kind == 0) {
        int l = leader_of(s, (int)rnd(s, (unsigned)s->ng));
        if (l < 0)
            l = (int)rnd(s, (unsigned)s->n);
        for (int j = 0; j < s->n; j++)
            s->cut[l][j] = s->cut[j][l] = j != l;
        s->fault = "partition: leader isolated";
    } else if (kind == 1) {
        int side[MAXN];
        for (int i = 0; i < s->n; i++)
            side[i] = (int)rnd(s, 2);
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->n; j++)
                s->cut[i][j] = side[i] != side[j];
        s->fault = "partition: random halves";
    } else {
        int k = 1 + (int)rnd(s, (unsigned)s->n);
        for (int x = 0; x < k; x++) {
            int a = (int)rnd(s, (unsigned)s->n), b = (int)rnd(s, (unsigned)s->n);
            if (a != b)
                s->cut[a][b] = 1;
        }
        s->fault = "partition: one-way links";
    }
    for (int a = 0; a < s->n; a++)
        for (int b = 0; b < s->n; b++)
            if (s->cut[a][b] && chance(s, 500))
                link_down(s, a, b);
    s->heal_at = s->now + 100 + rnd(s, 3000);
    s->partitions++;
}

static void transfer(sim *s)
{
    int g = (int)rnd(s, (unsigned)s->ng);
    int l = leader_of(s, g);
    if (l < 0)
        return;
    uint64_t to = rnd(s, (unsigned)s->n + 1); /* 0: libraft picks */
    int rc = rg_transfer(s->nd[l].g[g], to, ntime(s, l));
    if (rc == 0) {
        s->transfers++;
        s->transfer_to[g] = to;
        s->fault = "leadership transfer";
    } else if (rc != -CN_EINVAL && rc != -CN_ENOTLEADER) {
        violation(s, "rg_transfer group %d node %d to %llu: %s", g + 1, l + 1,
                  (unsigned long long)to, cn_strerror(rc));
    }
}

/* Membership (group 1, 5 nodes): add node 5, which never had the group,
 * then over and over take a voter out (remove), bring it back as a
 * standby or a spare, catch it up, promote it to voter. One stage at a time, each
 * after the previous change committed on the leader. */
static void membership(sim *s)
{
    int l = leader_of(s, 0);
    if (l < 0)
        return;
    rg_group *grp = s->nd[l].g[0];
    if (s->mem_stage && rg_commit_index(grp) < s->mem_index)
        return;
    int64_t idx = 0;
    int rc = 0;
    switch (s->mem_stage) {
    case 0: { /* remove a voter other than the leader */
        int v = (int)rnd(s, (unsigned)s->n);
        if (v == l || rg_role(grp, (uint64_t)v + 1) != RG_ROLE_VOTER || rg_voters(grp) <= 3)
            return;
        rc = rg_set_role(grp, (uint64_t)v + 1, RG_ROLE_NONE, ntime(s, l), &idx);
        if (rc == 0) {
            s->mem_node = v;
            s->mem_stage = 1;
            s->fault = "membership: voter removed";
        }
        break;
    }
    case 1:
        if (s->mem_node == l) { /* it leads again?? cannot: not a member */
            s->mem_stage = 0;
            return;
        }
        s->mem_role = rnd(s, 2) ? RG_ROLE_STANDBY : RG_ROLE_SPARE;
        rc = rg_set_role(grp, (uint64_t)s->mem_node + 1, s->mem_role, ntime(s, l), &idx);
        if (rc == 0) {
            s->mem_stage = 2;
            s->fault = s->mem_role == RG_ROLE_STANDBY ? "membership: standby added"
                                                      : "membership: spare added";
        }
        break;
    case 2:
        if (rg_role(grp, (uint64_t)s->mem_node + 1) != s->mem_role) {
            s->mem_stage = 0;
            return;
        }
        rc = rg_catch_up(grp, (uint64_t)s->mem_node + 1, ntime(s, l));
        if (rc == 0) {
            s->mem_stage = 3;
            s->mem_since = s->now;
            s->fault = "membership: catch-up started";
        }
        break;
    case 3: {
        int st = rg_catch_up_status(grp, (uint64_t)s->mem_node + 1);
        if (st == RG_CATCH_UP_RUNNING && s->now - s->mem_since < 5000)
            return;
        if (rg_role(grp, (uint64_t)s->mem_node + 1) != s->mem_role) {
            s->mem_stage = 0;
            return;
        }
        rc = rg_set_role(grp, (uint64_t)s->mem_node + 1, RG_ROLE_VOTER, ntime(s, l), &idx);
        if (rc == 0) {
            s->mem_stage = 0;
            s->fault = st == RG_CATCH_UP_FINISHED ? "membership: promoted after catch-up"
                                                   : "membership: promoted (catch-up not done)";
        }
        break;
    }
    }
    if (rc == 0 && idx) {
        s->mem_index = idx;
        s->member_changes++;
    } else if (rc < 0 && rc != -CN_EAGAIN && rc != -CN_ENOTLEADER && rc != -CN_EINVAL) {
        violation(s, "membership stage %d: %s", s->mem_stage, cn_strerror(rc));
    }
}

static void faults(sim *s)
{
    if (s->heal_at && s->now >= s->heal_at)
        heal(s);
    for (int i = 0; i < s->n; i++)
        if (!s->nd[i].up && s->now >= s->nd[i].up_at) {
            node_open(s, i);
            links_up(s, i);
        }
    if (rnd(s, s->crash_every) == 0) {
        int i = (int)rnd(s, (unsigned)s->n);
        if (s->nd[i].up) {
            node_crash(s, i);
            for (int j = 0; j < s->n; j++)
                if (chance(s, 750))
                    link_down(s, i, j);
            s->nd[i].up_at = s->now + 20 + rnd(s, 2000);
            s->fault = "crash";
        }
    }
    if (rnd(s, s->crash_every * 8) == 0) {
        /* Every node at once (a power cut of the whole cluster). */
        for (int i = 0; i < s->n; i++)
            if (s->nd[i].up) {
                node_crash(s, i);
                s->nd[i].up_at = s->now + 20 + rnd(s, 1500);
            }
        s->crash_all++;
        s->fault = "crash of every node";
    }
    if (rnd(s, s->stall_every) == 0) {
        int i = (int)rnd(s, (unsigned)s->n);
        s->nd[i].stall_until = s->now + 20 + rnd(s, 800);
        s->stalls++;
        s->fault = "disk stall";
    }
    if (!s->heal_at && rnd(s, s->part_every) == 0)
        partition(s);
    if (rnd(s, s->transfer_every) == 0)
        transfer(s);
    if (s->compact_every && rnd(s, s->compact_every * 4) == 0) {
        /* DeleteRecords: the leader puts a new log start, at most its
         * commit offset, in the log. */
        int g = (int)rnd(s, (unsigned)s->ng), l = leader_of(s, g);
        if (l >= 0) {
            rg_group *grp = s->nd[l].g[g];
            int64_t hw = rg_commit_offset(grp), start = log_start_offset(s->nd[l].p[g]);
            int64_t idx;
            if (hw > start) {
                int rc = rg_submit_start(grp, start + (int64_t)rnd(s, (unsigned)(hw - start)) + 1,
                                         ntime(s, l), &idx);
                if (rc < 0 && rc != -CN_EAGAIN && rc != -CN_ENOTLEADER)
                    violation(s, "rg_submit_start group %d node %d: %s", g + 1, l + 1,
                              cn_strerror(rc));
                if (rc == 0)
                    s->starts++;
            }
        }
    }
    if (s->compact_every && rnd(s, s->compact_every) == 0) {
        /* Retention on one replica (each compacts on its own). */
        int i = (int)rnd(s, (unsigned)s->n), g = (int)rnd(s, (unsigned)s->ng);
        node *n = &s->nd[i];
        if (n->up) {
            int rc = rg_compact(n->g[g], ntime(s, i));
            if (rc < 0)
                violation(s, "rg_compact group %d node %d: %s", g + 1, i + 1, cn_strerror(rc));
            if (rc > 0) {
                int64_t ai, at, ao;
                log_raft_anchor(n->p[g], &ai, &at, &ao);
                n->anchor[g] = ai;
                s->compactions++;
                s->fault = "snapshot (retention)";
            }
        }
    }
    if (s->n == 5 && rnd(s, s->member_every) == 0)
        membership(s);
    else if (s->n == 5 && s->mem_stage)
        membership(s); /* keep a change going until it completes */
}

/* The loop -------------------------------------------------------------------------------- */

static void one_step(sim *s)
{
    s->now++;
    s->step++;
    if (!s->settling)
        faults(s);
    for (int i = 0; i < s->n; i++)
        if (s->nd[i].up)
            run_syncs(s, i);
    deliver_due(s);
    for (int i = 0; i < s->n; i++)
        if (s->nd[i].up)
            rg_node_tick(s->nd[i].rn, ntime(s, i));
    if (!s->settling)
        for (int g = 0; g < s->ng; g++)
            if (rnd(s, s->submit_every) == 0)
                submit(s, g);
    for (int i = 0; i < s->n; i++)
        if (s->nd[i].up) {
            rg_node_flush(s->nd[i].rn, ntime(s, i));
            for (int g = 0; g < s->ng; g++) {
                int64_t off;
                /* What the broker does with a committed DeleteRecords. */
                if (rg_take_start(s->nd[i].g[g], &off) &&
                    log_raft_set_start(s->nd[i].p[g], off) < 0)
                    violation(s, "log_raft_set_start group %d node %d", g + 1, i + 1);
            }
        }
    check(s);
    if (s->step % 2000 == 0)
        recheck_all(s);
}

static void dump(sim *s)
{
    fprintf(stderr, "state at %lld ms (%s):\n", (long long)s->now,
            s->settling ? "settling" : "faults");
    for (int i = 0; i < s->n; i++) {
        node *n = &s->nd[i];
        if (!n->up) {
            fprintf(stderr, "  node %d: down until %lld\n", i + 1, (long long)n->up_at);
            continue;
        }
        for (int g = 0; g < s->ng; g++) {
            rg_group *grp = n->g[g];
            int64_t last, lt;
            log_raft_last(n->p[g], &last, &lt);
            fprintf(stderr,
                    "  node %d group %d: %s term %lld leader %llu commit %lld last %lld^%lld "
                    "voters %d%s\n",
                    i + 1, g + 1, rg_is_leader(grp) ? "LEADER" : "follower",
                    (long long)rg_term(grp), (unsigned long long)rg_leader_id(grp),
                    (long long)rg_commit_index(grp), (long long)last, (long long)lt,
                    rg_voters(grp), rg_failed(grp) ? " FAILED" : "");
            fprintf(stderr,
                    "    raft commit %llu last_stored? durable %lld busy %d pending %zu held %zu "
                    "need_sync %d reported %lld syncs queued %zu votes gen %llu synced %llu "
                    "inflight %d changes %zu first %lld uncommitted conf %llu\n",
                    (unsigned long long)raft_commit_index(&grp->raft),
                    (long long)log_raft_durable(n->p[g]), log_raft_busy(n->p[g]), grp->n_pend,
                    grp->n_held, grp->need_sync, (long long)grp->reported,
                    log_syncer_pending(n->sy), (unsigned long long)n->rn->votes_gen,
                    (unsigned long long)n->rn->votes_synced, n->rn->votes_inflight,
                    grp->n_changes, grp->n_changes ? (long long)grp->changes[0] : -1LL,
                    (unsigned long long)grp->raft.configuration_uncommitted_index);
        }
    }
    fprintf(stderr, "  cuts:");
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++)
            if (s->cut[i][j])
                fprintf(stderr, " %d->%d", i + 1, j + 1);
    fprintf(stderr, "\n  messages queued %zu\n", s->nq);
}

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

/* After the fault phase: heal, restart everyone, no more faults; every
 * group must elect a leader and commit a last batch on every node; then
 * every acknowledged batch must be on every node. */
static void settle(sim *s)
{
    s->settling = 1;
    s->fault = "none (settling)";
    heal(s);
    for (int i = 0; i < s->n; i++)
        if (!s->nd[i].up)
            node_open(s, i);
    int64_t final[MAXG] = {0};
    int64_t deadline = s->now + 60000;
    for (;;) {
        one_step(s);
        int done = 1;
        for (int g = 0; g < s->ng; g++) {
            if (!final[g]) {
                done = 0;
                if (s->now % 50 == 0)
                    final[g] = submit(s, g);
                continue;
            }
            for (int i = 0; i < s->n; i++)
                if (rg_commit_index(s->nd[i].g[g]) < final[g] ||
                    rg_role(s->nd[i].g[g], (uint64_t)i + 1) == RG_ROLE_NONE)
                    done = 0;
            /* The final batch may be lost if its leader lost its term:
             * submit again. */
            int l = leader_of(s, g);
            if (!done && l >= 0 && s->now % 500 == 0 &&
                rg_commit_index(s->nd[l].g[g]) < final[g] &&
                rg_term(s->nd[l].g[g]) != s->gs[g].subs[s->gs[g].n_subs - 1].term)
                final[g] = 0;
        }
        /* A node left out by a membership change in progress comes back. */
        if (s->n == 5) {
            int l = leader_of(s, 0);
            if (l >= 0) {
                rg_group *grp = s->nd[l].g[0];
                for (int i = 0; i < s->n; i++) {
                    int64_t idx;
                    int r = rg_role(grp, (uint64_t)i + 1);
                    if (r == RG_ROLE_NONE)
                        rg_set_role(grp, (uint64_t)i + 1, RG_ROLE_STANDBY, ntime(s, l), &idx);
                    else if (r == RG_ROLE_STANDBY || r == RG_ROLE_SPARE)
                        rg_set_role(grp, (uint64_t)i + 1, RG_ROLE_VOTER, ntime(s, l), &idx);
                }
            }
        }
        if (done)
            break;
        if (s->now > deadline)
            violation(s, "the cluster did not settle within 60 s after every fault healed");
    }
    for (int k = 0; k < 500; k++)
        one_step(s);
    recheck_all(s);
    for (int g = 0; g < s->ng; g++) {
        gstate *gs = &s->gs[g];
        for (size_t k = 0; k < gs->n_subs; k++) {
            sub *u = &gs->subs[k];
            if (u->acked != 1)
                continue;
            for (int i = 0; i < s->n; i++) {
                int64_t t, ai, at, ao;
                uint64_t h;
                log_raft_anchor(s->nd[i].p[g], &ai, &at, &ao);
                if (u->index <= ai)
                    continue; /* in a snapshot: checked when it was still in the log */
                int rc = entry_hash(s, i, g, u->index, &t, &h);
                if (rc < 0 || t != u->term || h != u->hash)
                    violation(s, "acknowledged batch group %d index %lld missing on node %d", g + 1,
                              (long long)u->index, i + 1);
            }
        }
    }
}

static int run_one(uint64_t seed, int64_t steps, int nodes, int groups, int verbose,
                   const char *argv0)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sim *s = xcalloc(1, sizeof(*s));
    cur = s;
    s->seed = seed;
    s->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    s->n = nodes;
    s->ng = groups;
    s->steps = steps;
    s->verbose = verbose;
    s->now = 1000;
    const char *tr = getenv("SIM_TRACE");
    s->trace = tr && *tr;
    s->trace_from = s->trace ? strtoll(tr, NULL, 10) : 0;
    snprintf(replay, sizeof(replay), "%s --seed %llu --steps %lld --nodes %d --groups %d", argv0,
             (unsigned long long)seed, (long long)steps, nodes, groups);
    /* Per-run fault rates. */
    s->p_drop = rnd(s, 80);
    s->p_dup = rnd(s, 40);
    s->p_long = rnd(s, 30);
    s->max_delay = 1 + rnd(s, 20);
    s->p_sync = 30 + rnd(s, 570);
    s->crash_every = 1500 + rnd(s, 4000);
    s->part_every = 1500 + rnd(s, 4000);
    s->transfer_every = 1000 + rnd(s, 3000);
    s->member_every = 1500 + rnd(s, 3000);
    s->submit_every = 2 + rnd(s, 10);
    s->stall_every = 800 + rnd(s, 3000);
    s->crash_mode = (int)rnd(s, 4);
    s->compact_every = rnd(s, 4) ? 100 + rnd(s, 600) : 0;
    for (int i = 0; i < nodes; i++) {
        s->nd[i].clk_off = (int64_t)rnd(s, 1u << 30);
        s->nd[i].clk_ppm = (int64_t)rnd(s, 200001) - 100000; /* +-10 % */
    }
    const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->base, sizeof(s->base), "%s/cairn-sim-%llu-XXXXXX", shm, (unsigned long long)seed);
    if (!mkdtemp(s->base)) {
        fprintf(stderr, "mkdtemp %s: %s\n", s->base, strerror(errno));
        exit(2);
    }
    for (int i = 0; i < nodes; i++) {
        node *n = &s->nd[i];
        snprintf(n->dir, sizeof(n->dir), "%s/n%d", s->base, i + 1);
        mkdir(n->dir, 0755);
        for (int g = 0; g < groups; g++)
            snprintf(n->pdir[g], sizeof(n->pdir[g]), "%s/n%d/g%d", s->base, i + 1, g + 1);
    }
    for (int i = 0; i < nodes; i++)
        node_open(s, i);
    if (nodes == 5) {
        s->mem_node = 4; /* the first change adds node 5 */
        s->mem_stage = 1;
    }
    while (s->step < steps)
        one_step(s);
    settle(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int64_t committed = 0;
    for (int g = 0; g < groups; g++)
        committed += rg_commit_index(s->nd[0].g[g]);
    printf("seed %llu nodes %d groups %d steps %lld: ok in %.1f s | elections %ld, crashes %ld "
           "(%ld cut mode 1, %ld mode 2, %ld kill; %ld of all nodes), disk stalls %ld, "
           "partitions %ld, transfers %ld, membership changes %ld, snapshots %ld taken, %ld "
           "installed, %ld log starts, %ld link downs | submits %ld, acked %ld, "
           "committed entries %lld | messages %ld delivered, %ld dropped, %ld duplicated | "
           "syncs %ld\n",
           (unsigned long long)seed, nodes, groups, (long long)s->step, secs, s->elections,
           s->crashes, s->crashes - s->cuts_mode2 - s->kills, s->cuts_mode2, s->kills,
           s->crash_all, s->stalls, s->partitions, s->transfers, s->member_changes,
           s->compactions, s->installs, s->starts, s->downs, s->submits,
           s->acked, (long long)committed, s->delivered, s->dropped, s->duplicated, s->syncs);
    tot.compactions += s->compactions;
    tot.installs += s->installs;
    tot.runs++;
    tot.steps += s->step;
    tot.elections += s->elections;
    tot.crashes += s->crashes;
    tot.partitions += s->partitions;
    tot.transfers += s->transfers;
    tot.members += s->member_changes;
    tot.stalls += s->stalls;
    tot.acked += s->acked;
    fflush(stdout);
    for (int i = 0; i < nodes; i++)
        node_close_clean(s, i);
    nftw(s->base, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
    for (size_t k = 0; k < s->nq; k++)
        free(s->q[k].b);
    free(s->q);
    for (int g = 0; g < groups; g++) {
        free(s->gs[g].hist);
        free(s->gs[g].leader_of_term);
        free(s->gs[g].subs);
    }
    free(s);
    cur = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, from = 1, to = 40;
    int64_t steps = 8000;
    int nodes = 0, groups = 2, verbose = 0, have_seed = 0;
    double limit = -1; /* default: 150 s for the smoke, none for --seeds */
    int have_range = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v")) {
            verbose = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: %s [--seed S] [--steps N] [--nodes 3|5] [--groups G] "
                            "[--seeds A-B] [--time-limit SEC] [-v] (SIMDEBUG=1 with -v: debug log lines)\n", argv[0]);
            return 2;
        }
        i++;
        if (!strcmp(a, "--seed")) {
            seed = strtoull(v, NULL, 10);
            have_seed = 1;
        } else if (!strcmp(a, "--steps")) {
            steps = strtoll(v, NULL, 10);
        } else if (!strcmp(a, "--nodes")) {
            nodes = atoi(v);
        } else if (!strcmp(a, "--groups")) {
            groups = atoi(v);
        } else if (!strcmp(a, "--seeds")) {
            if (sscanf(v, "%llu-%llu", (unsigned long long *)&from, (unsigned long long *)&to) != 2)
                return 2;
            have_range = 1;
        } else if (!strcmp(a, "--time-limit")) {
            limit = atof(v);
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if ((nodes && nodes != 3 && nodes != 5) || groups < 1 || groups > MAXG || steps < 0) {
        fprintf(stderr, "nodes must be 3 or 5, groups 1..%d\n", MAXG);
        return 2;
    }
    slog_set_level(verbose ? (getenv("SIMDEBUG") ? SLOG_DEBUG : SLOG_WARN) : SLOG_ERROR + 1);
#ifndef CAIRN_FAULT
    printf("sim_repl: built without CAIRN_FAULT: crashes keep unsynced data (kill -9 model); "
           "build with FAULT=1 for power loss\n");
#endif
    if (limit < 0)
        limit = have_range ? 0 : 150;
    if (have_seed)
        return run_one(seed, steps, nodes ? nodes : 3, groups, verbose, argv[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int runs = 0;
    for (uint64_t sd = from; sd <= to; sd++) {
        int k = nodes ? nodes : (sd % 2 ? 3 : 5);
        run_one(sd, steps, k, groups, verbose, argv[0]);
        runs++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (limit > 0 && el > limit && sd < to) {
            printf("time limit reached after seed %llu\n", (unsigned long long)sd);
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("sim_repl: %d runs, 0 violations in %.1f s: %ld virtual seconds, %ld elections, %ld "
           "crashes, %ld disk stalls, %ld partitions, %ld transfers, %ld membership changes, "
           "%ld snapshots taken, %ld installed, %ld acknowledged batches checked\n",
           runs, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           tot.steps / 1000, tot.elections, tot.crashes, tot.stalls, tot.partitions, tot.transfers,
           tot.members, tot.compactions, tot.installs, tot.acked);
    return 0;
}
