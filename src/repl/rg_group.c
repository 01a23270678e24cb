/* One replication group: libraft's state machine over a partition's raft
 * log. Every event goes through step(), and every update libraft hands
 * back is carried out by apply() in this order: term and vote to
 * raft.votes (messages of the group wait for their sync), truncation and
 * new entries to the log (or the pending queue while the log waits for a
 * sync), messages out (or held), commit index and role (the owner's
 * `changed` callback), the next timeout. After apply, follow-ups that are
 * steps of their own: committed configurations (RAFT_CONFIGURATION) and a
 * new leader's barrier (RAFT_SUBMIT). */
#include "repl/repl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/batch.h"
#include "repl/rg_msg.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/slog.h"

static void step(rg_group *g, struct raft_event *ev);

static int single_voter(const rg_group *g)
{
    const struct raft_configuration *c = &g->raft.configuration;
    return c->n == 1 && c->servers[0].id == g->node->id;
}

/* Entries into the log ------------------------------------------------------------ */

static int64_t log_last(const rg_group *g)
{
    int64_t last, term;
    log_raft_last(g->p, &last, &term);
    return last;
}

/* Last index we hold, written or pending. */
static int64_t held_last(const rg_group *g)
{
    return g->n_pend ? g->pend[g->n_pend - 1].index : log_last(g);
}

/* A follower's copy of a leader's batch: whole, magic 2, CRC good, and its
 * leader epoch is the entry's term. */
static int batch_ok(const uint8_t *b, size_t len, int64_t term)
{
    if (len < 61 || (int64_t)(int32_t)be_get32(b + BATCH_OFF_LENGTH) + 12 != (int64_t)len ||
        b[BATCH_OFF_MAGIC] != 2 || (int64_t)(int32_t)be_get32(b + BATCH_OFF_LEADER_EPOCH) != term)
        return 0;
    return crc32c(0, b + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES) ==
           be_get32(b + BATCH_OFF_CRC);
}

/* A barrier that carries a log start (rg_submit_start)? */
static int is_start(const uint8_t *b, size_t len, int64_t *offset)
{
    if (len != RG_START_LEN || !b || memcmp(b, RG_START_MAGIC, 8) != 0)
        return 0;
    *offset = (int64_t)be_get64(b + 8);
    return *offset >= 0;
}

/* Write one entry. 0, -CN_EAGAIN (the log waits for a sync), or an error
 * that stops the group. */
static int write_entry(rg_group *g, int64_t index, int64_t term, enum raft_entry_type type,
                       uint8_t *bytes, size_t len, int own)
{
    log_partition *p = g->p;
    switch (type) {
    case RAFT_COMMAND:
        if (own) {
            log_set_leader_epoch(p, (int32_t)term);
            return log_append(p, bytes, len, rg__wall(g->node), &g->sub_offset);
        }
        if (!batch_ok(bytes, len, term)) {
            slog_error("repl: bad batch from the leader group=%llu index=%lld",
                       (unsigned long long)g->id, (long long)index);
            return -CN_ECORRUPT;
        }
        return log_append_at(p, bytes, len, rg__wall(g->node));
    case RAFT_BARRIER: {
        int64_t off;
        if (is_start(bytes, len, &off))
            return log_raft_append_meta(p, index, term, RG_SIDE_START, bytes + 8, 8);
        return log_raft_append_meta(p, index, term, RG_SIDE_BARRIER, NULL, 0);
    }
    case RAFT_CHANGE:
        return log_raft_append_meta(p, index, term, RG_SIDE_CHANGE, bytes, (uint32_t)len);
    }
    return -CN_EINVAL;
}

static void fail(rg_group *g, int rc, const char *what)
{
    if (!g->failed)
        slog_error("repl: group stopped group=%llu on %s: %s", (unsigned long long)g->id, what,
                   cn_strerror(rc));
    g->failed = 1;
}

static void pend_push(rg_group *g, int64_t index, int64_t term, enum raft_entry_type type,
                      const uint8_t *bytes, size_t len)
{
    if (g->n_pend == g->cap_pend) {
        g->cap_pend = g->cap_pend ? g->cap_pend * 2 : 8;
        g->pend = xrealloc(g->pend, g->cap_pend * sizeof(*g->pend));
    }
    rg_pending *e = &g->pend[g->n_pend++];
    e->index = index;
    e->term = term;
    e->type = type;
    e->len = len;
    e->bytes = len ? xmalloc(len) : NULL;
    if (len)
        memcpy(e->bytes, bytes, len);
}

static void pend_drop_from(rg_group *g, int64_t index)
{
    while (g->n_pend && g->pend[g->n_pend - 1].index >= index)
        free(g->pend[--g->n_pend].bytes);
}

/* Write what waited, in order, until the log says wait again. */
static void pend_drain(rg_group *g)
{
    size_t done = 0;
    while (done < g->n_pend && !g->failed) {
        rg_pending *e = &g->pend[done];
        int rc = write_entry(g, e->index, e->term, e->type, e->bytes, e->len, 0);
        if (rc == -CN_EAGAIN)
            break;
        if (rc < 0) {
            fail(g, rc, "write");
            break;
        }
        free(e->bytes);
        done++;
        g->need_sync = 1;
    }
    if (done) {
        memmove(g->pend, g->pend + done, (g->n_pend - done) * sizeof(*g->pend));
        g->n_pend -= done;
    }
}

static void changes_drop_from(rg_group *g, int64_t index)
{
    while (g->n_changes && g->changes[g->n_changes - 1] >= index)
        g->n_changes--;
}

/* Log-start entries not yet committed, like configurations. */
static void starts_drop_from(rg_group *g, int64_t index)
{
    while (g->n_starts && g->starts[g->n_starts - 1] >= index)
        g->n_starts--;
}

static void starts_push(rg_group *g, int64_t index)
{
    if (g->n_starts == g->cap_starts) {
        g->cap_starts = g->cap_starts ? g->cap_starts * 2 : 4;
        g->starts = xrealloc(g->starts, g->cap_starts * sizeof(*g->starts));
    }
    g->starts[g->n_starts++] = index;
}

static void changes_push(rg_group *g, int64_t index)
{
    if (g->n_changes == g->cap_changes) {
        g->cap_changes = g->cap_changes ? g->cap_changes * 2 : 4;
        g->changes = xrealloc(g->changes, g->cap_changes * sizeof(*g->changes));
    }
    g->changes[g->n_changes++] = index;
}

/* The entries of an update: cut what conflicts, then write or queue. */
static void apply_entries(rg_group *g, const struct raft_update *up)
{
    int64_t index = (int64_t)up->entries.index;
    if (index <= held_last(g)) {
        changes_drop_from(g, index);
        starts_drop_from(g, index);
        if (index > log_last(g)) {
            pend_drop_from(g, index);
        } else {
            pend_drop_from(g, 0);
            int rc = log_raft_truncate(g->p, index);
            if (rc < 0) {
                fail(g, rc, "truncate");
                return;
            }
            g->cut_to = CN_MIN(g->cut_to, log_end_offset(g->p));
        }
        g->reported = CN_MIN(g->reported, index - 1);
    }
    if (up->entries.n > 0 && g->rx_block && up->entries.batch[0].batch == g->rx_block)
        g->rx_block_taken = 1; /* persisted here: we free the block (rg__group_receive) */
    for (unsigned i = 0; i < up->entries.n; i++) {
        const struct raft_entry *e = &up->entries.batch[i];
        int64_t at = index + (int64_t)i;
        int own = g->submitting;
        int64_t soff;
        if (e->type == RAFT_CHANGE)
            changes_push(g, at);
        else if (e->type == RAFT_BARRIER && is_start(e->buf.base, e->buf.len, &soff))
            starts_push(g, at);
        int rc = -CN_EAGAIN;
        if (!g->n_pend)
            rc = write_entry(g, at, (int64_t)e->term, e->type, e->buf.base, e->buf.len, own);
        if (rc == -CN_EAGAIN && !own) {
            pend_push(g, at, (int64_t)e->term, e->type, e->buf.base, e->buf.len);
            continue;
        }
        if (rc < 0) {
            fail(g, rc, "append");
            return;
        }
        g->need_sync = 1;
    }
}

/* Entries out (the encoder's source) ------------------------------------------------ */

static int entry_src(void *arg, uint64_t index, uint64_t *term, enum raft_entry_type *type,
                     const uint8_t **out, size_t *len)
{
    rg_group *g = arg;
    rg_node *n = g->node;
    if ((int64_t)index > log_last(g)) {
        for (size_t i = 0; i < g->n_pend; i++)
            if (g->pend[i].index == (int64_t)index) {
                *term = (uint64_t)g->pend[i].term;
                *type = g->pend[i].type;
                *out = g->pend[i].bytes;
                *len = g->pend[i].len;
                return 0;
            }
        return -CN_ERANGE;
    }
    log_raft_entry e;
    int rc = log_raft_entry_at(g->p, (int64_t)index, &e);
    if (rc < 0)
        return rc;
    *term = (uint64_t)e.term;
    if (!e.is_batch) {
        *type = e.type == RG_SIDE_CHANGE ? RAFT_CHANGE : RAFT_BARRIER;
        *out = e.payload;
        *len = e.payload_len;
        if (e.type == RG_SIDE_START) {
            if (e.payload_len != 8)
                return -CN_EIO;
            memcpy(n->start_buf, RG_START_MAGIC, 8);
            memcpy(n->start_buf + 8, e.payload, 8);
            *out = n->start_buf;
            *len = RG_START_LEN;
        }
        return 0;
    }
    *type = RAFT_COMMAND;
    log_slice s;
    rc = log_raft_read(g->p, e.offset, e.next_offset, e.len, &s);
    if (rc < 0)
        return rc;
    if (s.len != e.len) {
        log_slice_release(&s);
        return -CN_EIO;
    }
    if ((size_t)s.len > n->rd_cap) {
        n->rd_cap = (size_t)s.len;
        n->rd_buf = xrealloc(n->rd_buf, n->rd_cap);
    }
    ssize_t got = pread(s.fd, n->rd_buf, (size_t)s.len, s.pos);
    log_slice_release(&s);
    if (got != (ssize_t)e.len)
        return -CN_EIO;
    *out = n->rd_buf;
    *len = (size_t)e.len;
    return 0;
}

/* Messages ------------------------------------------------------------------------- */

static void held_push(rg_group *g, uint64_t to, const uint8_t *b, size_t len)
{
    if (g->n_held == g->cap_held) {
        g->cap_held = g->cap_held ? g->cap_held * 2 : 8;
        g->held = xrealloc(g->held, g->cap_held * sizeof(*g->held));
    }
    rg_held *h = &g->held[g->n_held++];
    h->to = to;
    h->len = len;
    h->bytes = xmalloc(len ? len : 1);
    memcpy(h->bytes, b, len);
}

void rg__group_release_held(rg_group *g)
{
    rg_node *n = g->node;
    if (!g->n_held || g->hold_gen > n->votes_synced)
        return;
    for (size_t i = 0; i < g->n_held; i++) {
        n->cb.send(n->cb.arg, g->held[i].to, g->id, g->held[i].bytes, g->held[i].len);
        free(g->held[i].bytes);
    }
    g->n_held = 0;
}

static void send_messages(rg_group *g, const struct raft_update *up)
{
    rg_node *n = g->node;
    for (unsigned i = 0; i < up->messages.n; i++) {
        const struct raft_message *m = &up->messages.batch[i];
        struct raft_message snap;
        int rc = 0;
        if (m->type == RAFT_INSTALL_SNAPSHOT) {
            /* libraft names the snapshot; its contents are ours to fill. */
            snap = *m;
            rc = rg__snap_fill(g, &snap.install_snapshot);
            if (rc < 0) {
                slog_warn("repl: snapshot not sent group=%llu to=%llu: %s",
                          (unsigned long long)g->id, (unsigned long long)m->server_id,
                          cn_strerror(rc));
                continue;
            }
            m = &snap;
        }
        int hold = g->n_held || g->hold_gen > n->votes_synced;
        wbuf *w = &n->out;
        size_t at = 0;
        if (!hold && n->cb.send_begin) {
            w = n->cb.send_begin(n->cb.arg, m->server_id, g->id);
            at = w ? w->len : 0;
        } else {
            wbuf_reset(w);
        }
        rc = w ? rg_msg_encode(w, m, entry_src, g) : 0;
        if (m == &snap) {
            raft_configuration_close(&snap.install_snapshot.conf);
            raft_free(snap.install_snapshot.data.base);
        }
        if (w && w != &n->out) {
            n->cb.send_end(n->cb.arg, w, rc < 0 ? -1 : (int64_t)(w->len - at));
            if (rc == 0)
                continue;
        }
        if (!w)
            continue; /* not connected: Raft resends */
        if (rc < 0) {
            /* An entry could not be read: drop the message (Raft resends;
             * a storage failure shows in the partition). */
            slog_warn("repl: message not sent group=%llu to=%llu type=%d: %s",
                      (unsigned long long)g->id, (unsigned long long)m->server_id, (int)m->type,
                      cn_strerror(rc));
            continue;
        }
        if (hold)
            held_push(g, m->server_id, n->out.buf, n->out.len);
        else
            n->cb.send(n->cb.arg, m->server_id, g->id, n->out.buf, n->out.len);
    }
}

/* Apply and step ----------------------------------------------------------------------- */

/* libraft 0.22.1's convertToLeader submits a no-op barrier of its own when
 * the new leader has entries not yet persisted (last_stored < last index):
 * an entry kept inside struct raft whose buf.base is raft_malloc(8), handed
 * over in this step's entries and never freed by libraft. It is written
 * (barriers carry no bytes) or queued as a copy by now: free it. This was
 * the 8-byte block LeakSanitizer saw in a candidate's step on a
 * RequestVoteResult (found with the simulation's ASan build; the path read
 * from libraft's machine code, docs/cluster-plan.md open questions). */
static void free_libraft_barrier(rg_group *g, const struct raft_update *up)
{
    const char *lo = (const char *)&g->raft, *hi = lo + sizeof(g->raft);
    for (unsigned i = 0; i < up->entries.n; i++) {
        struct raft_entry *e = &up->entries.batch[i];
        if ((const char *)e >= lo && (const char *)e < hi && e->type == RAFT_BARRIER &&
            e->buf.base) {
            raft_free(e->buf.base);
            e->buf.base = NULL;
        }
    }
}

static void apply(rg_group *g, const struct raft_update *up)
{
    rg_node *n = g->node;
    struct raft *r = &g->raft;
    if (up->flags & (RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR)) {
        int rc = rg__votes_set(n, g->vs_i, raft_current_term(r), raft_voted_for(r));
        if (rc < 0) {
            fail(g, rc, "raft.votes write");
            return;
        }
        g->hold_gen = n->votes_gen;
    }
    if (up->flags & RAFT_UPDATE_ENTRIES) {
        apply_entries(g, up);
        free_libraft_barrier(g, up);
    }
    if (g->failed)
        return;
    if (up->flags & RAFT_UPDATE_SNAPSHOT) {
        /* The leader's snapshot replaces this replica's log; libraft
         * hears it is persisted in a step of its own (step_rc). */
        pend_drop_from(g, 0);
        int rc = rg__snap_install(g, up);
        struct raft_snapshot_metadata md = up->snapshot.metadata;
        if (rc < 0) {
            raft_configuration_close(&md.configuration);
            fail(g, rc, "snapshot install");
            return;
        }
        g->snap_md = md;
        g->snap_done = 1;
    }
    if (up->flags & RAFT_UPDATE_MESSAGES)
        send_messages(g, up);
    if ((up->flags & RAFT_UPDATE_STATE) && raft_state(r) == RAFT_LEADER)
        g->want_barrier = 1;
    if (g->hurry && (raft_state(r) == RAFT_LEADER || rg_leader_id(g) != 0)) {
        g->hurry = 0;
        raft_set_election_timeout(r, n->election_ms);
    }
    g->deadline = single_voter(g) ? INT64_MAX : (int64_t)raft_timeout(r);
}

/* Committed configuration entries -> RAFT_CONFIGURATION. */
static void apply_configurations(rg_group *g)
{
    int64_t commit = (int64_t)raft_commit_index(&g->raft);
    while (g->n_changes && g->changes[0] <= commit && g->changes[0] <= log_last(g) &&
           !g->failed) {
        int64_t index = g->changes[0];
        memmove(g->changes, g->changes + 1, (g->n_changes - 1) * sizeof(*g->changes));
        g->n_changes--;
        log_raft_entry e;
        if (log_raft_entry_at(g->p, index, &e) < 0 || e.is_batch) {
            fail(g, -CN_EIO, "configuration read");
            return;
        }
        struct raft_event ev = {.time = (raft_time)g->node->now_ms, .type = RAFT_CONFIGURATION};
        ev.configuration.index = (raft_index)index;
        raft_configuration_init(&ev.configuration.conf);
        struct raft_buffer b = {(void *)(uintptr_t)e.payload, e.payload_len};
        if (!rg_conf_valid(e.payload, e.payload_len) ||
            raft_configuration_decode(&b, &ev.configuration.conf) != 0) {
            raft_configuration_close(&ev.configuration.conf);
            fail(g, -CN_ECORRUPT, "configuration decode");
            return;
        }
        step(g, &ev); /* libraft takes the configuration */
    }
}

/* Committed log-start entries raise start_to (rg_take_start). */
static void apply_starts(rg_group *g)
{
    int64_t commit = (int64_t)raft_commit_index(&g->raft);
    while (g->n_starts && g->starts[0] <= commit && g->starts[0] <= log_last(g) && !g->failed) {
        int64_t index = g->starts[0];
        memmove(g->starts, g->starts + 1, (g->n_starts - 1) * sizeof(*g->starts));
        g->n_starts--;
        log_raft_entry e;
        int rc = log_raft_entry_at(g->p, index, &e);
        if (rc == -CN_ERANGE)
            continue; /* in a snapshot by now: the start is past it anyway */
        if (rc < 0 || e.is_batch || e.type != RG_SIDE_START || e.payload_len != 8) {
            fail(g, -CN_EIO, "log start read");
            return;
        }
        g->start_to = CN_MAX(g->start_to, (int64_t)be_get64(e.payload));
    }
}

static void submit_barrier(rg_group *g)
{
    static char zero[8];
    struct raft_entry e = {.term = raft_current_term(&g->raft), .type = RAFT_BARRIER,
                           .buf = {zero, sizeof(zero)}, .batch = zero};
    struct raft_event ev = {.time = (raft_time)g->node->now_ms, .type = RAFT_SUBMIT};
    ev.submit.entries = &e;
    ev.submit.n = 1;
    /* Barriers are written empty; buf only satisfies libraft. */
    e.buf.len = 0;
    g->submitting = 1;
    step(g, &ev);
    g->submitting = 0;
}

static void notify(rg_group *g)
{
    rg_node *n = g->node;
    struct raft *r = &g->raft;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(r, &lid, &laddr);
    int state = raft_state(r);
    int64_t term = (int64_t)raft_current_term(r), commit = rg_commit_index(g);
    /* The commit offset (rg_commit_offset) moves when the index does, and
     * also when entries that committed while they waited for a sync
     * (pend) reach the log: a follower that took a new leader's barrier
     * and commands in one AppendEntries learns the commit index at once
     * but writes the commands after the barrier's sync. Keyed on the
     * index alone, its high watermark stayed at the barrier until the
     * next commit, for as long as the group was idle. */
    int64_t written = CN_MIN(commit, log_last(g));
    if (lid == g->last_leader && state == g->last_state && term == g->last_term &&
        commit == g->last_commit && written == g->last_written)
        return;
    g->last_leader = lid;
    g->last_state = state;
    g->last_term = term;
    g->last_commit = commit;
    g->last_written = written;
    if (g->changed)
        g->changed(g->cb_arg, g);
    else if (n->cb.changed)
        n->cb.changed(n->cb.arg, g);
}

/* Refusals of a request (RAFT_SUBMIT, RAFT_TRANSFER): libraft changed
 * nothing, the group goes on. */
static int refusal(int rc)
{
    return rc == RAFT_NOTLEADER || rc == RAFT_NOTFOUND || rc == RAFT_BADID ||
           rc == RAFT_CANTCHANGE || rc == RAFT_MALFORMED || rc == RAFT_NOSPACE;
}

/* One event: 0, or (soft only) libraft's refusal code. */
static int step_rc(rg_group *g, struct raft_event *ev, int soft)
{
    if (g->failed)
        return 0;
    struct raft_update up = {0};
    int rc = raft_step(&g->raft, ev, &up);
    if (rc != 0 && soft && refusal(rc))
        return rc;
    if (rc == RAFT_BUSY) {
        /* An InstallSnapshot while one is being persisted (cannot happen:
         * rg persists a snapshot within the step that asked for it); the
         * leader sends it again. */
        slog_warn("repl: snapshot busy group=%llu", (unsigned long long)g->id);
        return 0;
    }
    if (rc != 0) {
        /* RAFT_SHUTDOWN: a committed entry conflicts (a replica lost data
         * it acknowledged); others: out of memory. Either way this
         * replica stops rather than serve a wrong log. */
        slog_error("repl: raft_step failed group=%llu event=%d: %s (%s)",
                   (unsigned long long)g->id, (int)ev->type, raft_strerror(rc),
                   raft_errmsg(&g->raft));
        g->failed = 1;
        return 0;
    }
    apply(g, &up);
    if (g->snap_done && !g->failed) {
        g->snap_done = 0;
        struct raft_event pe = {.time = ev->time, .type = RAFT_PERSISTED_SNAPSHOT};
        pe.persisted_snapshot.metadata = g->snap_md; /* libraft takes the configuration */
        pe.persisted_snapshot.offset = 0;
        pe.persisted_snapshot.last = true;
        step_rc(g, &pe, 0);
    }
    /* libraft 0.22.1 may lower a follower's commit index: an AppendEntries
     * whose prev_log_index + n_entries is below it, with a higher
     * leader_commit, sets it to that lower index (replicationAppend; seen
     * by the simulation, docs/cluster-plan.md open questions). What was
     * committed stays committed: keep the highest. */
    g->commit_max = CN_MAX(g->commit_max, (int64_t)raft_commit_index(&g->raft));
    if (up.flags & RAFT_UPDATE_COMMIT_INDEX) {
        apply_configurations(g);
        apply_starts(g);
    }
    if (g->want_barrier && raft_state(&g->raft) == RAFT_LEADER && !g->failed) {
        g->want_barrier = 0;
        submit_barrier(g);
    }
    notify(g);
    return 0;
}

static void step(rg_group *g, struct raft_event *ev)
{
    step_rc(g, ev, 0);
}

void rg__group_step(rg_group *g, struct raft_event *ev)
{
    step(g, ev);
}

int rg__group_request(rg_group *g, struct raft_event *ev, int own)
{
    g->submitting = own;
    int rc = step_rc(g, ev, 1);
    g->submitting = 0;
    return rc;
}

/* Tell libraft what a completed sync made durable. */
static void report_persisted(rg_group *g)
{
    int64_t d = log_raft_durable(g->p);
    int64_t last = (int64_t)raft_last_index(&g->raft);
    d = CN_MIN(d, last);
    if (d <= g->reported || g->failed)
        return;
    g->reported = d;
    struct raft_event ev = {.time = (raft_time)g->node->now_ms, .type = RAFT_PERSISTED_ENTRIES};
    ev.persisted_entries.index = (raft_index)d;
    step(g, &ev);
}

static void on_durable(log_partition *p, int64_t durable_offset, int status, void *arg)
{
    rg_group *g = arg;
    rg_node *n = g->node;
    if (status < 0) {
        fail(g, status, "sync");
    } else {
        pend_drain(g);
        report_persisted(g);
        notify(g); /* what drained may have committed already */
    }
    if (g->durable)
        g->durable(g->cb_arg, g, durable_offset, status);
    else if (n->cb.durable)
        n->cb.durable(n->cb.arg, g, durable_offset, status);
    (void)p;
}

/* Start from disk ------------------------------------------------------------------------ */

static int bootstrap(rg_group *g, const uint64_t *voters, size_t n_voters)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rc = 0;
    for (size_t i = 0; i < n_voters && rc == 0; i++) {
        char addr[24];
        snprintf(addr, sizeof(addr), "%llu", (unsigned long long)voters[i]);
        if (raft_configuration_add(&conf, voters[i], addr, RAFT_VOTER) != 0)
            rc = -CN_EINVAL;
    }
    struct raft_buffer buf = {0};
    if (rc == 0 && raft_configuration_encode(&conf, &buf) != 0)
        rc = -CN_ENOMEM;
    raft_configuration_close(&conf);
    if (rc < 0)
        return rc;
    rc = log_raft_append_meta(g->p, 1, 1, RG_SIDE_CHANGE, buf.base, (uint32_t)buf.len);
    raft_free(buf.base);
    if (rc == 0)
        rc = log_partition_sync_now(g->p);
    return rc;
}

/* RAFT_START: term and vote, then every entry after the anchor (terms
 * only; configurations with their bytes). */
static int start(rg_group *g, int64_t now)
{
    rg_node *n = g->node;
    int64_t ai, at, ao, last, lt;
    log_raft_anchor(g->p, &ai, &at, &ao);
    log_raft_last(g->p, &last, &lt);
    struct raft_snapshot_metadata md;
    int have_md = 0;
    if (ai != 0) {
        /* The log starts after a snapshot (retention, or one installed). */
        int mrc = rg__snap_metadata(g, &md);
        if (mrc < 0)
            return mrc;
        have_md = 1;
    }
    size_t ne = (size_t)(last - ai);
    struct raft_entry *ents = ne ? xcalloc(ne, sizeof(*ents)) : NULL;
    static char empty[1];
    int rc = 0;
    for (size_t i = 0; i < ne && rc == 0; i++) {
        log_raft_entry e;
        rc = log_raft_entry_at(g->p, ai + 1 + (int64_t)i, &e);
        if (rc < 0)
            break;
        ents[i].term = (raft_term)e.term;
        ents[i].batch = empty;
        ents[i].buf.base = empty;
        ents[i].buf.len = 0;
        if (e.is_batch) {
            ents[i].type = RAFT_COMMAND;
        } else if (e.type == RG_SIDE_CHANGE) {
            ents[i].type = RAFT_CHANGE;
            if (!rg_conf_valid(e.payload, e.payload_len)) {
                rc = -CN_ECORRUPT;
                break;
            }
            ents[i].buf.base = (void *)(uintptr_t)e.payload;
            ents[i].buf.len = e.payload_len;
            if (e.index > 1)
                changes_push(g, e.index);
        } else {
            ents[i].type = RAFT_BARRIER;
            if (e.type == RG_SIDE_START)
                starts_push(g, e.index);
        }
    }
    if (rc < 0) {
        free(ents);
        if (have_md)
            raft_configuration_close(&md.configuration);
        return rc;
    }
    rg_vslot *v = &n->slots[g->vs_i];
    uint64_t term = v->term;
    if (term < (uint64_t)lt) {
        /* The vote slot lags the log (a new group, or a crash between the
         * first entry and its vote sync): the log's last term is a term
         * this node took part in. */
        term = (uint64_t)lt;
    }
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_START};
    ev.start.term = term;
    ev.start.voted_for = term == v->term ? v->vote : 0;
    ev.start.metadata = have_md ? &md : NULL; /* libraft takes its configuration */
    ev.start.start_index = (raft_index)ai + 1;
    ev.start.entries = ents;
    ev.start.n_entries = (unsigned)ne;
    if (term != v->term) {
        rc = rg__votes_set(n, g->vs_i, term, ev.start.voted_for);
        if (rc == 0)
            rc = rg__votes_sync_now(n);
        if (rc < 0) {
            free(ents);
            if (have_md)
                raft_configuration_close(&md.configuration);
            return rc;
        }
    }
    g->reported = last;
    step(g, &ev);
    free(ents);
    return g->failed ? -CN_EIO : 0;
}

int rg_group_open(rg_node *n, uint64_t group_id, log_partition *p, const uint64_t *voters,
                  size_t n_voters, int64_t now, rg_group **out)
{
    *out = NULL;
    if (rg_group_find(n, group_id))
        return -CN_EEXIST;
    int64_t ai, at, ao, last, lt;
    log_raft_anchor(p, &ai, &at, &ao);
    log_raft_last(p, &last, &lt);
    n->now_ms = now;
    rg_group *g = xcalloc(1, sizeof(*g));
    g->opened_ms = now;
    g->node = n;
    g->id = group_id;
    g->p = p;
    g->deadline = INT64_MAX;
    g->fast_at = INT64_MAX;
    g->cut_to = INT64_MAX;
    g->last_state = -1;
    g->start_to = g->start_taken = -1;
    char addr[24];
    snprintf(addr, sizeof(addr), "%llu", (unsigned long long)n->id);
    if (raft_init(&g->raft, NULL, NULL, n->id, addr) != 0) {
        free(g);
        return -CN_ENOMEM;
    }
    g->raft_started = 1;
    raft_seed(&g->raft, (unsigned)(n->seed ^ (group_id * 0x9E3779B97F4A7C15ull) ^ n->id));
    raft_set_pre_vote(&g->raft, true);
    raft_set_election_timeout(&g->raft, n->election_ms);
    raft_set_heartbeat_timeout(&g->raft, n->heartbeat_ms);
    raft_set_max_inflight_entries(&g->raft, 256);
    g->vs_i = rg__votes_slot(n, group_id);
    int rc = 0;
    if (last == 0 && n_voters > 0)
        rc = bootstrap(g, voters, n_voters);
    if (n->n_groups == n->cap_groups) {
        n->cap_groups = n->cap_groups ? n->cap_groups * 2 : 16;
        n->groups = xrealloc(n->groups, n->cap_groups * sizeof(*n->groups));
    }
    n->groups[n->n_groups++] = g;
    log_partition_set_durable_cb(p, on_durable, g);
    if (rc == 0)
        rc = start(g, now);
    if (rc < 0) {
        rg_group_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int rg_group_open_first(rg_node *n, uint64_t group_id, log_partition *p, const uint64_t *voters,
                        size_t n_voters, int64_t now, rg_group **out)
{
    unsigned election = n->election_ms;
    n->election_ms = n->heartbeat_ms ? n->heartbeat_ms : 1;
    int rc = rg_group_open(n, group_id, p, voters, n_voters, now, out);
    n->election_ms = election;
    if (rc == 0)
        (*out)->hurry = 1;
    return rc;
}

void rg_group_set_cb(rg_group *g, void (*changed)(void *arg, rg_group *g),
                     void (*durable)(void *arg, rg_group *g, int64_t durable_offset, int status),
                     void *arg)
{
    g->changed = changed;
    g->durable = durable;
    g->cb_arg = arg;
}

void rg__group_free(rg_group *g)
{
    log_partition_set_durable_cb(g->p, NULL, NULL);
    if (g->raft_started)
        raft_close(&g->raft, NULL);
    for (size_t i = 0; i < g->n_held; i++)
        free(g->held[i].bytes);
    free(g->held);
    pend_drop_from(g, 0);
    free(g->pend);
    free(g->changes);
    free(g->starts);
    free(g->contact_id);
    free(g->contact_at);
    free(g->caught_at);
    free(g);
}

void rg_group_close(rg_group *g)
{
    if (!g)
        return;
    rg_node *n = g->node;
    for (size_t i = 0; i < n->n_groups; i++)
        if (n->groups[i] == g) {
            n->groups[i] = n->groups[--n->n_groups];
            break;
        }
    rg__group_free(g);
}

/* Events from the node ------------------------------------------------------------------ */

/* Fast election ------------------------------------------------------------------------
 *
 * A follower that waits out the election timeout after its leader's process
 * died costs clients 1-2 s (plus a split vote now and then). When the
 * connection to the leader's node closes and stays closed (a killed process's
 * sockets close at once; a live node's dialler reconnects within
 * CL_BACKOFF_MIN), the follower stands without waiting: it steps a TimeoutNow
 * as if the leader had handed it the leadership, which starts an election of
 * the next term without pre-vote whose RequestVote the other voters may grant
 * although they still believe in the leader (disrupt_leader). Safety is
 * Raft's as ever (votes still need an up-to-date log); only liveness
 * changes. The survivors stand one after another, in order of id, one
 * quarter of an election timeout apart, so that two of them do not split the
 * vote; one that hears a leader of a newer term by its turn does nothing. A
 * machine that vanishes without closing its sockets still waits the election
 * timeout. */

void rg__group_peer_down(rg_group *g, uint64_t peer, int64_t now)
{
    if (g->failed || raft_state(&g->raft) != RAFT_FOLLOWER || rg_leader_id(g) != peer)
        return;
    const struct raft_configuration *c = &g->raft.configuration;
    int me = 0, rank = 0;
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        if (s->role != RAFT_VOTER || s->id == peer)
            continue;
        if (s->id == g->node->id)
            me = 1;
        else if (s->id < g->node->id)
            rank++;
    }
    if (!me)
        return;
    int64_t hb = g->node->heartbeat_ms;
    g->fast_leader = peer;
    g->fast_since = now;
    g->fast_at = now + 3 * hb + rank * (int64_t)(g->node->election_ms / 4);
}

void rg__group_peer_up(rg_group *g, uint64_t peer)
{
    if (g->fast_at != INT64_MAX && g->fast_leader == peer)
        g->fast_at = INT64_MAX;
}

static void fast_campaign(rg_group *g, int64_t now)
{
    g->fast_at = INT64_MAX;
    uint64_t leader = g->fast_leader;
    if (g->failed || raft_state(&g->raft) != RAFT_FOLLOWER ||
        rg_last_contact(g, leader) > g->fast_since)
        return;
    /* Our term may have moved on: a survivor of lower id stood first and
     * lost (its log was behind ours). Its RequestVote raised our term but,
     * as we were a follower already, left the dead leader as ours and our
     * election timer running: stand now all the same. */
    if (rg_leader_id(g) != leader)
        return;
    int64_t last, term;
    log_raft_last(g->p, &last, &term);
    if (g->n_pend) {
        last = g->pend[g->n_pend - 1].index;
        term = g->pend[g->n_pend - 1].term;
    }
    if ((int64_t)raft_last_index(&g->raft) != last)
        return;   /* libraft holds entries we have not: leave it to the timeout */
    slog_info("repl: leader %llu of group=%llu term=%lld is gone (connection closed): "
              "standing for election", (unsigned long long)leader, (unsigned long long)g->id,
              (long long)rg_term(g));
    char addr[24];
    snprintf(addr, sizeof(addr), "%llu", (unsigned long long)leader);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_TIMEOUT_NOW;
    m.server_id = leader;
    m.server_address = addr;
    m.timeout_now.term = raft_current_term(&g->raft);
    m.timeout_now.last_log_index = (raft_index)last;
    m.timeout_now.last_log_term = (raft_term)term;
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_RECEIVE};
    ev.receive.message = &m;
    step(g, &ev);
}

void rg__group_timeout(rg_group *g, int64_t now)
{
    if (g->fast_at <= now)
        fast_campaign(g, now);
    if (g->failed || now < g->deadline)
        return;
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_TIMEOUT};
    step(g, &ev);
}

/* libraft 0.22.1 (progressMaybeDecrement, probe state) takes a rejection
 * that arrives after a later success from the same follower (messages
 * reordered or duplicated) as current and sets that follower's next index
 * to last_log_index + 1, below its match index; from then on the leader
 * sends it only empty AppendEntries (the in-flight count underflows) and
 * ignores its answers: the follower never catches up (found by the
 * simulation; docs/cluster-plan.md, open questions). A rejection at or
 * below the match index is stale (the follower acknowledged a matching
 * entry there): dropped. A rejection above it never moves next below the
 * match index + 1 (the follower holds the matched entries). Returns 1 to
 * drop the message. */
static int stale_rejection(rg_group *g, uint64_t from, struct raft_append_entries_result *a)
{
    struct raft *r = &g->raft;
    raft_index match = 0;
    if (a->rejected == 0 || g->failed || raft_state(r) != RAFT_LEADER ||
        a->term != raft_current_term(r) || raft_match_index(r, from, &match) != 0)
        return 0;
    if (a->rejected <= match)
        return 1;
    if (a->last_log_index < match)
        a->last_log_index = match;
    return 0;
}

/* libraft 0.22.1 (replicationAppend) records a received configuration
 * entry as its uncommitted configuration at the index of the first new
 * entry of the AppendEntries, not at its own: when the entry is not the
 * first new one, the RAFT_CONFIGURATION of its commit never matches, the
 * uncommitted index stays set, and that node can make no membership change
 * as leader again (RAFT_CANTCHANGE; found by the simulation, seed 20 of 5
 * nodes; docs/cluster-plan.md open questions). So an AppendEntries is
 * stepped in parts that each start at a configuration entry: a new
 * configuration entry is then always the first new one of its part. */
/* Step one AppendEntries (or part of one). libraft owns entries[0].batch
 * as a raft_malloc'd block: it frees it itself when it answers at once (a
 * rejection, nothing new), and hands the entries back in the update when
 * they must be persisted, then the block is ours to free once they are
 * written (apply_entries marks that). So the entries are copied out of the
 * receive buffer into one block. */
static int step_append(rg_group *g, struct raft_event *ev)
{
    struct raft_append_entries *a = &ev->receive.message->append_entries;
    void *block = NULL;
    if (a->n_entries > 0) {
        size_t total = 0;
        for (unsigned i = 0; i < a->n_entries; i++)
            total += a->entries[i].buf.len;
        block = raft_malloc(total ? total : 1);
        if (!block)
            return -CN_ENOMEM;
        size_t at = 0;
        for (unsigned i = 0; i < a->n_entries; i++) {
            struct raft_entry *e = &a->entries[i];
            if (e->buf.len)
                memcpy((char *)block + at, e->buf.base, e->buf.len);
            e->buf.base = (char *)block + at;
            e->batch = block;
            at += e->buf.len;
        }
    }
    g->rx_block = block;
    g->rx_block_taken = 0;
    step(g, ev);
    if (block && g->rx_block_taken)
        raft_free(block);
    g->rx_block = NULL;
    return 0;
}

/* libraft 0.22.1 (replicationAppend) records a received configuration
 * entry as its uncommitted configuration at the index of the first new
 * entry of the AppendEntries, not at its own: when the entry is not the
 * first new one, the RAFT_CONFIGURATION of its commit never matches, the
 * uncommitted index stays set, and that node can make no membership change
 * as leader again (RAFT_CANTCHANGE; found by the simulation, seed 20 of 5
 * nodes; docs/cluster-plan.md open questions). So an AppendEntries is
 * stepped in parts that each start at a configuration entry (each part
 * with its own block): a new configuration entry is then always the first
 * new one of its part. */
static int receive_split(rg_group *g, struct raft_message *m, struct raft_event *ev)
{
    struct raft_append_entries *a = &m->append_entries;
    struct raft_entry *all = a->entries;
    unsigned n = a->n_entries, start = 0;
    raft_index prev = a->prev_log_index;
    raft_term prev_term = a->prev_log_term;
    if (n == 0)
        return step_append(g, ev);
    for (unsigned i = 1; i <= n && !g->failed; i++) {
        if (i < n && all[i].type != RAFT_CHANGE)
            continue;
        a->prev_log_index = prev + start;
        a->prev_log_term = start ? all[start - 1].term : prev_term;
        a->entries = all + start;
        a->n_entries = i - start;
        int rc = step_append(g, ev);
        if (rc < 0)
            return rc;
        start = i;
    }
    return 0;
}

static size_t contact_slot(rg_group *g, uint64_t from)
{
    for (size_t i = 0; i < g->n_contact; i++)
        if (g->contact_id[i] == from)
            return i;
    if (g->n_contact == g->cap_contact) {
        g->cap_contact = g->cap_contact ? g->cap_contact * 2 : 8;
        g->contact_id = xrealloc(g->contact_id, g->cap_contact * sizeof(*g->contact_id));
        g->contact_at = xrealloc(g->contact_at, g->cap_contact * sizeof(*g->contact_at));
        g->caught_at = xrealloc(g->caught_at, g->cap_contact * sizeof(*g->caught_at));
    }
    g->contact_id[g->n_contact] = from;
    g->contact_at[g->n_contact] = -1;
    g->caught_at[g->n_contact] = -1;
    return g->n_contact++;
}

static void note_contact(rg_group *g, uint64_t from, int64_t now)
{
    size_t i = contact_slot(g, from);
    g->contact_at[i] = CN_MAX(g->contact_at[i], now);
}

/* After a follower's answer was stepped: caught up with the commit index? */
static void note_caught_up(rg_group *g, uint64_t from, int64_t now)
{
    raft_index idx = 0;
    if (g->failed || raft_state(&g->raft) != RAFT_LEADER ||
        raft_match_index(&g->raft, from, &idx) != 0 || (int64_t)idx < rg_commit_index(g))
        return;
    size_t i = contact_slot(g, from);
    g->caught_at[i] = CN_MAX(g->caught_at[i], now);
}

int rg__group_receive(rg_group *g, uint64_t from, const uint8_t *msg, size_t len, int64_t now)
{
    rg_node *n = g->node;
    struct raft_message m;
    int rc = rg_msg_decode(msg, len, &m, &n->rx_entries, &n->rx_cap);
    if (rc < 0)
        return rc;
    char addr[24];
    snprintf(addr, sizeof(addr), "%llu", (unsigned long long)from);
    m.server_id = from;
    m.server_address = addr;
    note_contact(g, from, now);
    if (m.type == RAFT_APPEND_ENTRIES_RESULT && stale_rejection(g, from, &m.append_entries_result))
        return 0;
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_RECEIVE};
    ev.receive.message = &m;
    if (g->failed) {
        if (m.type == RAFT_INSTALL_SNAPSHOT)
            raft_configuration_close(&m.install_snapshot.conf);
        return 0;
    }
    if (m.type == RAFT_APPEND_ENTRIES)
        return receive_split(g, &m, &ev);
    if (m.type == RAFT_INSTALL_SNAPSHOT) {
        /* libraft frees the data (raft_free) or hands it back to persist
         * (rg__snap_install frees it): a block of its own, not buf. */
        struct raft_buffer *d = &m.install_snapshot.data;
        void *copy = raft_malloc(d->len ? d->len : 1);
        if (!copy) {
            raft_configuration_close(&m.install_snapshot.conf);
            return 0;
        }
        if (d->len)
            memcpy(copy, d->base, d->len);
        d->base = copy;
    }
    int result = m.type == RAFT_APPEND_ENTRIES_RESULT;
    step(g, &ev);
    if (result)
        note_caught_up(g, from, now);
    return 0;
}

void rg__group_flush(rg_group *g, int64_t now)
{
    (void)now;
    if (g->need_sync && !g->failed) {
        g->need_sync = 0;
        log_sync_request(g->p);
    }
}

/* Submit and state ------------------------------------------------------------------------- */

/* Step one entry of our own as the leader: 0 with *out_index, or
 * -CN_EIO, -CN_ENOTLEADER, -CN_EAGAIN (the log waits for a sync),
 * -CN_EINVAL (libraft refused it). */
static int submit_one(rg_group *g, struct raft_entry *e, int64_t now, int64_t *out_index)
{
    if (g->failed)
        return -CN_EIO;
    /* A leader handing over (rg_transfer) takes no entries: libraft
     * refuses them with RAFT_NOTLEADER. */
    if (raft_state(&g->raft) != RAFT_LEADER || raft_transferee(&g->raft) != 0)
        return -CN_ENOTLEADER;
    if (g->n_pend || log_raft_busy(g->p))
        return -CN_EAGAIN;
    g->node->now_ms = now;
    e->term = raft_current_term(&g->raft);
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_SUBMIT};
    ev.submit.entries = e;
    ev.submit.n = 1;
    int64_t before = log_last(g);
    g->submitting = 1;
    int rc = step_rc(g, &ev, 1);
    g->submitting = 0;
    if (g->failed)
        return -CN_EIO;
    if (rc == RAFT_NOTLEADER)
        return -CN_ENOTLEADER;
    if (rc != 0)
        return -CN_EINVAL;
    if (log_last(g) != before + 1)
        return -CN_EIO;
    *out_index = before + 1;
    return 0;
}

int rg_submit(rg_group *g, uint8_t *batch, size_t len, int64_t now, int64_t *out_offset,
              int64_t *out_index)
{
    struct raft_entry e = {.type = RAFT_COMMAND, .buf = {batch, len}, .batch = batch};
    g->sub_offset = -1;
    int rc = submit_one(g, &e, now, out_index);
    if (rc == 0 && g->sub_offset < 0)
        rc = -CN_EIO;
    if (rc == 0)
        *out_offset = g->sub_offset;
    return rc;
}

int rg_submit_start(rg_group *g, int64_t offset, int64_t now, int64_t *out_index)
{
    if (offset < 0)
        return -CN_EINVAL;
    uint8_t b[RG_START_LEN];
    memcpy(b, RG_START_MAGIC, 8);
    be_put64(b + 8, (uint64_t)offset);
    struct raft_entry e = {.type = RAFT_BARRIER, .buf = {b, sizeof(b)}, .batch = b};
    return submit_one(g, &e, now, out_index);
}

int rg_take_start(rg_group *g, int64_t *offset)
{
    if (g->start_to <= g->start_taken)
        return 0;
    g->start_taken = g->start_to;
    *offset = g->start_to;
    return 1;
}

int rg_is_leader(const rg_group *g)
{
    return !g->failed && raft_state((struct raft *)&g->raft) == RAFT_LEADER;
}

uint64_t rg_leader_id(const rg_group *g)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader((struct raft *)&g->raft, &id, &addr);
    return id;
}

int64_t rg_term(const rg_group *g) { return (int64_t)raft_current_term(&g->raft); }
int64_t rg_commit_index(const rg_group *g)
{
    return CN_MAX(g->commit_max, (int64_t)raft_commit_index(&g->raft));
}
int rg_leader_ready(rg_group *g)
{
    if (!rg_is_leader(g) || raft_transferee(&g->raft) != 0)
        return 0;
    int64_t term = (int64_t)raft_current_term(&g->raft);
    if (g->ready_term == term)
        return 1;
    int64_t commit = rg_commit_index(g);
    if (commit > log_last(g))
        return 0;
    log_raft_entry e;
    if (log_raft_entry_at(g->p, commit, &e) < 0 || e.term != term)
        return 0;
    g->ready_term = term;
    return 1;
}

uint64_t rg_group_id(const rg_group *g) { return g->id; }
log_partition *rg_partition(const rg_group *g) { return g->p; }
int rg_failed(const rg_group *g) { return g->failed; }

int rg_voters(const rg_group *g)
{
    int v = 0;
    for (unsigned i = 0; i < g->raft.configuration.n; i++)
        v += g->raft.configuration.servers[i].role == RAFT_VOTER;
    return v;
}

int64_t rg_commit_offset(const rg_group *g)
{
    int64_t ai, at, ao;
    log_raft_anchor(g->p, &ai, &at, &ao);
    int64_t c = CN_MIN(rg_commit_index(g), log_last(g));
    if (c <= ai)
        return ao;
    log_raft_entry e;
    if (log_raft_entry_at(g->p, c, &e) < 0)
        return ao;
    return e.is_batch ? e.next_offset : e.offset;
}

/* Quorum contact ---------------------------------------------------------------------------- */

int64_t rg_last_contact(const rg_group *g, uint64_t id)
{
    if (id == g->node->id)
        return g->node->now_ms;
    for (size_t i = 0; i < g->n_contact; i++)
        if (g->contact_id[i] == id)
            return g->contact_at[i];
    return -1;
}

int64_t rg_contact_window(const rg_group *g)
{
    unsigned w = g->node->election_ms / 2;
    return w > g->node->heartbeat_ms ? (int64_t)w : (int64_t)g->node->heartbeat_ms * 2;
}

int rg_peer_contact(const rg_group *g, uint64_t id, int64_t now)
{
    if (id == g->node->id)
        return 1;
    int64_t at = rg_last_contact(g, id);
    return at >= 0 && now - at <= rg_contact_window(g);
}

int rg_in_sync(const rg_group *g, uint64_t id, int64_t now)
{
    if (!rg_is_leader(g))
        return 0;
    if (id == g->node->id)
        return 1;
    for (size_t i = 0; i < g->n_contact; i++)
        if (g->contact_id[i] == id)
            return g->caught_at[i] >= 0 && now - g->caught_at[i] <= rg_contact_window(g) &&
                   rg_peer_contact(g, id, now);
    return 0;
}

int rg_isolated(const rg_group *g, int64_t now)
{
    int64_t timeout = g->node->election_ms;
    for (unsigned i = 0; i < g->raft.configuration.n; i++) {
        const struct raft_server *s = &g->raft.configuration.servers[i];
        if (s->role != RAFT_VOTER || s->id == g->node->id)
            continue;
        int64_t at = CN_MAX(rg_last_contact(g, s->id), g->opened_ms);
        if (now - at < timeout)
            return 0;
    }
    return 1;
}

int rg_quorum_contact(const rg_group *g, int64_t now)
{
    if (!rg_is_leader(g))
        return 0;
    int voters = 0, heard = 0;
    for (unsigned i = 0; i < g->raft.configuration.n; i++) {
        const struct raft_server *s = &g->raft.configuration.servers[i];
        if (s->role != RAFT_VOTER)
            continue;
        voters++;
        heard += rg_peer_contact(g, s->id, now);
    }
    return heard > voters / 2;
}

int64_t rg_match_index(const rg_group *g, uint64_t id)
{
    if (!rg_is_leader(g))
        return -1;
    if (id == g->node->id)
        return log_last(g);
    raft_index idx = 0;
    if (raft_match_index(&g->raft, id, &idx) != 0)
        return -1;
    return (int64_t)idx;
}

int rg_voter_ids(const rg_group *g, uint64_t *out, int cap)
{
    int n = 0;
    for (unsigned i = 0; i < g->raft.configuration.n; i++)
        if (g->raft.configuration.servers[i].role == RAFT_VOTER) {
            if (n < cap)
                out[n] = g->raft.configuration.servers[i].id;
            n++;
        }
    return n;
}

int rg_take_truncation(rg_group *g, int64_t *log_end)
{
    if (g->cut_to == INT64_MAX)
        return 0;
    *log_end = g->cut_to;
    g->cut_to = INT64_MAX;
    return 1;
}
