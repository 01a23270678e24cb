/* GET /topics/{topic}/stream: the committed records of a topic as
 * Server-Sent Events (text/event-stream, WHATWG HTML "Server-sent events").
 *
 * Query (errors are JSON, 400/404, before the stream starts):
 *   partition   one partition (default: every partition of the topic,
 *               partitions added while streaming included, from their start)
 *   from        earliest | latest (default latest: the last stable offset,
 *               so records of a transaction open now that commit later are
 *               delivered)
 *   offset      first offset (needs partition=, not with from=; within
 *               [log start, high watermark] else 400 offset_out_of_range)
 *   group       load-balanced delivery (below); not with partition=, offset=
 *               or Last-Event-ID; from= says where partitions the group has
 *               no committed offset for start
 * Header Last-Event-ID (what EventSource sends when it reconnects): resume
 * after the records it names; it wins over from/offset for the partitions it
 * lists. 400 invalid_last_event_id when it does not parse, names a
 * partition twice or one the topic (or the stream's partition=) does not
 * have; 400 offset_out_of_range when it is past a partition's high
 * watermark (another topic of the same name); an offset retention already
 * removed resumes at the log start.
 *
 * Answer: "200, Content-Type: text/event-stream, Connection: close" and no
 * length: the body is the stream, which ends when the connection closes.
 * One event per committed record, in offset order per partition:
 *     id: <event id>
 *     event: record
 *     data: <the record in hh_records.c's JSON form, one line>
 *     <blank line>
 * Event ids: with partition=P, "P:O" (O the record's offset); over every
 * partition, "P:O,P:O,..." listing every partition of the stream in
 * ascending order, each with the offset of the last record delivered from
 * it (its start position - 1 while nothing was: -1 at an empty start). So
 * the last id a client saw says, for every partition, where to go on:
 * resuming continues after each, nothing lost, nothing twice. A partition
 * an id does not list (added after that stream started) resumes at its
 * log start.
 *
 * What is served is what a read_committed Kafka consumer sees (hh_slice:
 * up to the last stable offset, no control batches, no aborted
 * transactions), as the long-poll read serves it. The stream wakes on the
 * broker's append listener and on its own tick (min(keepalive, 1 s)). A
 * stream with nothing written for http.sse.keepalive.ms sends ": keepalive"
 * and a blank line (a comment clients ignore): proxies and clients keep the
 * connection, and net's idle sweep never closes it while the stream's slot is
 * open (net_resp_flush).
 *
 * Turns: one wake-up reads at most SSE_TURN_BYTES (1 MiB) of log for a
 * stream, partitions in turn, one slice each; with more left the stream goes
 * on from its timer at 0 ms, so a fast client reading a long log from the
 * start does not hold the loop.
 *
 * Backpressure: events go into the stream's slot (net_resp_flush after each
 * slice read). When the unsent bytes of the connection reach
 * http.sse.max.buffered.bytes the stream stops reading the log and arms
 * net_conn_want_drain at half of it; on_drain (framing.c forwards it) goes
 * on. So a client that stops reading costs at most that bound plus one
 * batch's events, and the log is not read for it meanwhile.
 *
 * Ends: the topic deleted (or recreated: the topic id is kept) ends the
 * stream with "event: error" and data {"error_code": "unknown_topic", ...},
 * then the connection closes; an unreadable log the same with
 * "storage_error". At shutdown (hh_sse_fini) every stream gets ": shutdown"
 * and its connection closes once that is sent. A client hanging up ends the
 * stream (framing.c reads on while streaming and forwards the close).
 *
 * Group streams (group=G): each stream is a member of consumer group G
 * through the group coordinator (group.h; protocol type "sse", protocol
 * "range", metadata = the topic name, session 10 s), joined after the head
 * is sent. The member the coordinator makes leader assigns ranges of the
 * topic's partitions to the members reading that topic (sorted by member
 * id); each stream announces what it got with "event: assignment" and data
 * {"generation", "partitions": [...]} and then delivers those partitions
 * from G's committed offsets (from= where there are none). Its tick (at
 * most 1 s) heartbeats; a rebalance stops delivery until the new
 * assignment. Positions are committed (goff_commit, as OffsetCommit would)
 * on the tick when every byte the stream wrote was handed to the kernel,
 * before a rejoin, and at a clean end; a client that hangs up commits
 * nothing more, so what it had not certainly been given is delivered again
 * to the group (at least once, except bytes that sat in the kernel's
 * buffers at the last commit: SSE has no acknowledgement). Leaving the
 * stream leaves the group at once. A Kafka consumer group of the same name
 * (protocol type "consumer") makes the join fail: "event: error" with
 * group_error. The coordinator is called only from the stream's timer and
 * at its end, and its callbacks only record and arm the timer (it is not
 * reentrant); a stream ended while its join or sync is parked lives on as a
 * zombie until that callback, then its member leaves from the timer. Group
 * event ids are "P:O" of the record.
 *
 * Single node: in a cluster a stream reads this node's copy of each
 * partition like the long-poll read does, and group= needs the node that
 * coordinates groups (503 coordinator_unavailable elsewhere). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "group/offsets.h"
#include "http/hh_slice.h"
#include "http/http_int.h"
#include "util/slog.h"

#define SSE_READ_BYTES ((int64_t)256 << 10) /* log bytes per slice read */
/* Log bytes one stream reads per turn: a fast client reading a long log
 * goes on from its timer on the next loop iteration, so others are served
 * in between. */
#define SSE_TURN_BYTES ((int64_t)1 << 20)
#define SSE_TICK_MAX_MS 1000
#define SSE_KEEP_BUF ((size_t)1 << 20)      /* the shared slice buffer is freed above it */

struct hh_sse_stream {
    struct hh_sse_stream *next, *prev;
    struct hh_sse_state *st;
    hreq *q;                     /* in its slot's arena; q->resp is the stream's slot */
    net_conn *c;
    char *topic;
    cn_uuid topic_id;
    int32_t *ids;                /* its partitions, ascending */
    int32_t n;
    int all;                     /* every partition: the "P:O,..." id form */
    int64_t *pos;                /* per partition: the next offset to deliver */
    int32_t rr;                  /* partition read first next time */
    int waiting_drain;           /* stopped until on_drain */
    int more;                    /* its turn ended with records left: go on from the timer */
    int conn_gone;               /* its connection closed: end from the timer */
    int64_t last_write_ms;
    loop_timer timer;
    /* group= streams (membership section below); group NULL otherwise. */
    char *group;
    grp_coord *gc;               /* the coordinator (outlives the front end's streams) */
    char *member;                /* the coordinator's member id ("" before the first join) */
    int32_t generation;
    int gstate;                  /* SSE_G_* */
    int parked;                  /* a join or sync awaits its callback */
    int ending;                  /* stream_end runs: callbacks do nothing */
    int zombie;                  /* ended while parked: the callback frees it */
    int from_earliest;           /* where partitions without a committed offset start */
    int64_t *committed;          /* per partition: the position last committed */
    char gerr[160];              /* a membership error to end the stream with (from the timer) */
    /* The sync to send (SSE_G_SYNC_DUE): member ids and their assignments
     * (the leader's; none for the others). */
    char **plan_member, **plan_text;
    int n_plan;
};

enum { SSE_G_NONE, SSE_G_JOINING, SSE_G_SYNC_DUE, SSE_G_SYNCING, SSE_G_ACTIVE };

struct hh_sse_state {
    hsrv *hs;
    broker_listener appends;
    hh_sse_stream *head;
    hh_sse_stream *zombies;      /* ended group streams whose member leaves from their timer */
    hh_slice sl;
    int open;
    uint64_t started, events, pauses;
};

/* Ending ------------------------------------------------------------------------- */

static void plan_free(hh_sse_stream *s);

static void stream_release(hh_sse_stream *s)
{
    plan_free(s);
    free(s->ids);
    free(s->pos);
    free(s->committed);
    free(s->topic);
    free(s->group);
    free(s->member);
    free(s);
}

static void group_end(hh_sse_stream *s);

static void stream_free(hh_sse_stream *s)
{
    struct hh_sse_state *st = s->st;
    if (s->prev)
        s->prev->next = s->next;
    else
        st->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    st->open--;
    loop_timer_stop(st->hs->l, &s->timer);
    s->prev = s->next = NULL;
    if (s->parked) {
        s->zombie = 1; /* the coordinator still owes a callback: it frees s */
        return;
    }
    stream_release(s);
}

/* End the stream: send tail (NULL: nothing more) and close the connection
 * after it, or just give the slot back when the connection is gone. */
static void stream_end(hh_sse_stream *s, const char *tail, const char *why)
{
    net_resp *r = s->q->resp;
    s->ending = 1;
    if (s->group)
        group_end(s);
    if (!s->conn_gone && net_resp_alive(r)) {
        hsrv__conn_stream(s->c, NULL);
        if (tail)
            wbuf_append(&r->w, tail, strlen(tail));
        net_resp_ready(r);
        net_conn_close_after(s->c, why);
    } else {
        net_resp_drop(r);
    }
    stream_free(s);
}

static void stream_end_error(hh_sse_stream *s, const char *code, const char *fmt, ...)
    CN_PRINTF(3, 4);
static void stream_end_error(hh_sse_stream *s, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    slog_info("http: stream of '%s' to %s ends: %s", s->topic, net_conn_peer(s->c), msg);
    json_t *j = json_object();
    json_object_set_new(j, "error_code", json_string(code));
    json_object_set_new(j, "message", json_string(msg));
    char *data = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(data) + 32;
    char *ev = xmalloc(n);
    snprintf(ev, n, "event: error\ndata: %s\n\n", data);
    free(data);
    stream_end(s, ev, "event stream ended");
    free(ev);
}

/* Writing events ------------------------------------------------------------------- */

static void put(hh_sse_stream *s, const char *p, size_t n) { wbuf_append(&s->q->resp->w, p, n); }

static void put_s(hh_sse_stream *s, const char *str) { put(s, str, strlen(str)); }

static void put_i64(hh_sse_stream *s, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    put(s, b, (size_t)n);
}

/* The id of an event of the stream's partition i: every partition's last
 * delivered offset ("P:O,..."), or just i's for one-partition and group
 * streams. */
static void put_id(hh_sse_stream *s, int32_t i)
{
    put(s, "id: ", 4);
    int32_t from = s->all ? 0 : i, to = s->all ? s->n : i + 1;
    for (int32_t k = from; k < to; k++) {
        if (k > from)
            put(s, ",", 1);
        put_i64(s, s->ids[k]);
        put(s, ":", 1);
        put_i64(s, s->pos[k] - 1);
    }
    put(s, "\n", 1);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    put(data, buf, size);
    return 0;
}

typedef struct walk {
    hh_sse_stream *s;
    int32_t i;                   /* partition index in the stream */
    int64_t from;                /* records below it are already delivered */
    int64_t n;                   /* events written */
    const char *tname;
} walk;

static int walk_record(const batch_record *r, void *arg)
{
    walk *w = arg;
    if (r->offset < w->from)
        return 0;
    hh_sse_stream *s = w->s;
    s->pos[w->i] = r->offset + 1;
    put_id(s, w->i);
    put(s, "event: record\ndata: ", 20);
    json_t *j = hh_record_json(r, s->ids[w->i]);
    json_dump_callback(j, dump_cb, s, JSON_COMPACT);
    json_decref(j);
    put(s, "\n\n", 2);
    w->n++;
    return 0;
}

static int walk_batch(void *arg, const uint8_t *b, size_t len, const batch_info *bi, int deliver)
{
    walk *w = arg;
    hh_sse_stream *s = w->s;
    if (deliver) {
        int rc = batch_foreach(b, len, s->st->sl.scratch, walk_record, w);
        if (rc < 0)
            slog_warn("http: %s-%d: batch at offset %lld does not decode (%s); skipped",
                      w->tname, s->ids[w->i], (long long)bi->base_offset, cn_strerror(rc));
    }
    /* Stop after this batch once the slot holds the bound (it also holds the
     * bytes already sent until the next flush: an early stop is harmless). */
    return s->q->resp->w.len >= (size_t)s->st->hs->cfg->http_sse_max_buffered_bytes;
}

/* The stream's topic, or NULL when it was deleted or recreated. */
static topic *stream_topic(hh_sse_stream *s)
{
    topic *t = broker_topic_find(s->st->hs->b, cn_str_c(s->topic));
    if (!t || memcmp(&t->id, &s->topic_id, sizeof(t->id)) != 0)
        return NULL;
    return t;
}

static void stream_flush(hh_sse_stream *s)
{
    net_resp *r = s->q->resp;
    if (r->w.len == 0)
        return;
    net_resp_flush(r);
    s->last_write_ms = loop_now(s->st->hs->l);
}

/* Write every committed record not delivered yet, until the bound.
 * Returns 1 when the stream ended (s is freed), else 0. */
static int stream_pump(hh_sse_stream *s)
{
    struct hh_sse_state *st = s->st;
    if (s->waiting_drain || s->conn_gone || (s->group && s->gstate != SSE_G_ACTIVE))
        return 0;
    topic *t = stream_topic(s);
    if (!t) {
        stream_end_error(s, "unknown_topic", "topic '%s' was deleted", s->topic);
        return 1;
    }
    if (s->all && t->n_parts > s->n) { /* partitions added: from their start */
        s->pos = xrealloc(s->pos, (size_t)t->n_parts * sizeof(*s->pos));
        s->ids = xrealloc(s->ids, (size_t)t->n_parts * sizeof(*s->ids));
        for (int32_t i = s->n; i < t->n_parts; i++) {
            s->ids[i] = i;
            s->pos[i] = log_start_offset(t->parts[i]->log);
        }
        s->n = t->n_parts;
    }
    size_t bound = (size_t)st->hs->cfg->http_sse_max_buffered_bytes;
    net_conn *c = s->c;
    int64_t turn = 0;
    s->more = 0;
    for (int progress = 1; progress;) {
        progress = 0;
        for (int32_t k = 0; k < s->n; k++) {
            int32_t i = (s->rr + k) % s->n;
            if (s->ids[i] >= t->n_parts)
                continue;
            partition *p = t->parts[s->ids[i]];
            int64_t limit = broker_lso(p);
            int64_t start = log_start_offset(p->log);
            if (s->pos[i] < start)
                s->pos[i] = start; /* retention passed it */
            int64_t pos = s->pos[i];
            if (pos >= limit)
                continue;
            walk w = {s, i, pos, 0, t->name};
            int64_t next;
            int64_t n = hh_slice_read(&st->sl, p, pos, limit, SSE_READ_BYTES, walk_batch, &w,
                                      &next);
            p->read_records += w.n;
            st->events += (uint64_t)w.n;
            if (n < 0 && w.n == 0) {
                stream_end_error(s, "storage_error", "%s-%d: cannot read at offset %lld (%s)",
                                 t->name, p->id, (long long)pos, cn_strerror((int)n));
                return 1;
            }
            if (next > s->pos[i])
                s->pos[i] = next; /* past skipped control and aborted batches too */
            if (n > 0 && s->pos[i] > pos) {
                progress = 1;
                turn += n;
            }
            stream_flush(s);
            if (!net_resp_alive(s->q->resp))
                return 0; /* the write failed: conn_closed ends it from the timer */
            if (net_conn_out_bytes(c) >= bound) {
                s->rr = (i + 1) % s->n;
                s->waiting_drain = 1;
                st->pauses++;
                net_conn_want_drain(c, bound / 2);
                hh_slice_trim(&st->sl, SSE_KEEP_BUF);
                return 0;
            }
        }
        s->rr = s->n ? (s->rr + 1) % s->n : 0;
        if (progress && turn >= SSE_TURN_BYTES) {
            s->more = 1;
            loop_timer_start(st->hs->l, &s->timer, 0);
            break;
        }
    }
    hh_slice_trim(&st->sl, SSE_KEEP_BUF);
    return 0;
}

static void group_tick(hh_sse_stream *s);

static void zombie_leave(hh_sse_stream *s);

static void stream_tick(loop_timer *tm)
{
    hh_sse_stream *s = tm->data;
    struct hh_sse_state *st = s->st;
    if (s->zombie) {
        zombie_leave(s);
        return;
    }
    if (s->conn_gone) {
        stream_end(s, NULL, NULL);
        return;
    }
    if (!stream_topic(s)) { /* also while it waits for its client to read */
        stream_end_error(s, "unknown_topic", "topic '%s' was deleted", s->topic);
        return;
    }
    if (s->group) {
        if (s->gerr[0]) {
            stream_end_error(s, "group_error", "group '%s': %s", s->group, s->gerr);
            return;
        }
        group_tick(s);
    }
    int64_t ka = st->hs->cfg->http_sse_keepalive_ms;
    if (stream_pump(s) || s->more)
        return; /* ended, or its timer is armed at 0 to go on */
    int64_t now = loop_now(st->hs->l);
    /* Not while bytes are still unsent: the client is not reading them. */
    if (!s->conn_gone && net_conn_out_bytes(s->c) == 0 && now - s->last_write_ms >= ka) {
        put(s, ": keepalive\n\n", 13);
        stream_flush(s);
    }
    int64_t wait = s->last_write_ms + ka - now;
    if (wait < 1)
        wait = ka; /* skipped: bytes are still unsent */
    if (wait > SSE_TICK_MAX_MS)
        wait = SSE_TICK_MAX_MS;
    if (s->conn_gone)
        wait = 0; /* a write failed meanwhile: end it now */
    loop_timer_start(st->hs->l, &s->timer, wait);
}

static void on_appends(broker_listener *l)
{
    struct hh_sse_state *st = (struct hh_sse_state *)((char *)l - offsetof(struct hh_sse_state,
                                                                             appends));
    hh_sse_stream *s = st->head;
    while (s) {
        hh_sse_stream *next = s->next;
        (void)stream_pump(s); /* may free s, never another stream */
        s = next;
    }
}

void hh_sse_conn_closed(hh_sse_stream *s)
{
    /* Inside net_conn_close: the slot may not be finished here. */
    s->conn_gone = 1;
    loop_timer_start(s->st->hs->l, &s->timer, 0);
}

void hh_sse_drained(hh_sse_stream *s)
{
    s->waiting_drain = 0;
    (void)stream_pump(s);
}

/* Group streams ------------------------------------------------------------------------ */

/* Rule: the coordinator is called only from the stream's timer (join,
 * sync, heartbeat) and at its end (leave); its callbacks only record what
 * came back and arm the timer at 0. The coordinator is not reentrant (a
 * leave inside a join callback frees members it is walking), and a callback
 * may come inside the call that parked it. */

#define SSE_G_PROTOCOL_TYPE "sse"
#define SSE_G_PROTOCOL "range"
#define SSE_G_SESSION_MS 10000
#define SSE_G_REBALANCE_MS 10000

static void arm_now(hh_sse_stream *s) { loop_timer_start(s->st->hs->l, &s->timer, 0); }

/* A membership error: the timer ends the stream. */
static void group_fail(hh_sse_stream *s, const char *what, int rc)
{
    snprintf(s->gerr, sizeof(s->gerr), "%s failed: %s", what, cn_strerror(rc));
    arm_now(s);
}

static void plan_free(hh_sse_stream *s)
{
    for (int i = 0; i < s->n_plan; i++) {
        free(s->plan_member[i]);
        free(s->plan_text[i]);
    }
    free(s->plan_member);
    free(s->plan_text);
    s->plan_member = s->plan_text = NULL;
    s->n_plan = 0;
}

/* Commit the position of every partition that moved (only positions whose
 * events were handed to the kernel: the caller checks out_bytes). */
static void group_commit(hh_sse_stream *s)
{
    if (s->gstate != SSE_G_ACTIVE || s->n == 0)
        return;
    goff_store *off = s->st->hs->core->offsets;
    if (grp_check_commit(s->gc, cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1},
                         s->generation) < 0)
        return; /* a rebalance is on: the next owner starts at the last commit */
    goff_commit_item *it = xmalloc((size_t)s->n * sizeof(*it));
    int k = 0;
    for (int32_t i = 0; i < s->n; i++)
        if (s->pos[i] != s->committed[i])
            it[k++] = (goff_commit_item){cn_str_c(s->topic), s->ids[i], s->pos[i], -1,
                                         {NULL, -1}, -1};
    int64_t target;
    if (k > 0 && goff_commit(off, cn_str_c(s->group), it, k, loop_wall_ms(), &target) == 0)
        for (int32_t i = 0; i < s->n; i++)
            s->committed[i] = s->pos[i];
    free(it);
}

/* Take the assignment "P,P,..." (text; "" for none): positions from the
 * group's committed offsets, else from= (clamped to the log). */
static void group_assign(hh_sse_stream *s, cn_bytes a)
{
    topic *t = stream_topic(s);
    free(s->ids);
    free(s->pos);
    free(s->committed);
    int32_t n = 0, cap = 8;
    s->ids = xmalloc((size_t)cap * sizeof(*s->ids));
    char num[16];
    int nl = 0;
    for (int32_t i = 0; i <= a.len; i++) {
        if (i < a.len && a.ptr[i] >= '0' && a.ptr[i] <= '9' && nl < 10) {
            num[nl++] = (char)a.ptr[i];
            continue;
        }
        if (nl > 0) {
            num[nl] = '\0';
            long v = strtol(num, NULL, 10);
            if (t && v < t->n_parts) {
                if (n == cap)
                    s->ids = xrealloc(s->ids, (size_t)(cap *= 2) * sizeof(*s->ids));
                s->ids[n++] = (int32_t)v;
            }
        }
        nl = 0;
    }
    s->n = n;
    s->pos = xmalloc((size_t)(n ? n : 1) * sizeof(*s->pos));
    s->committed = xmalloc((size_t)(n ? n : 1) * sizeof(*s->committed));
    goff_store *off = s->st->hs->core->offsets;
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[s->ids[i]];
        int64_t start = log_start_offset(p->log), hw = log_high_watermark(p->log);
        const goff_entry *e = goff_get(off, cn_str_c(s->group), cn_str_c(s->topic), s->ids[i]);
        int64_t at = e ? e->offset : s->from_earliest ? start : broker_lso(p);
        at = at < start ? start : at > hw ? hw : at;
        s->pos[i] = at;
        s->committed[i] = e ? e->offset : -1;
    }
    s->rr = 0;
    /* Tell the client which partitions it now gets. */
    put_s(s, "event: assignment\ndata: {\"generation\":");
    put_i64(s, s->generation);
    put_s(s, ",\"partitions\":[");
    for (int32_t i = 0; i < n; i++) {
        if (i)
            put(s, ",", 1);
        put_i64(s, s->ids[i]);
    }
    put_s(s, "]}\n\n");
    stream_flush(s);
}

/* A stream that ended while its join or sync was parked: once the callback
 * came, the member it became (if any) leaves from the timer, then it is
 * freed. When the coordinator itself is going (-CN_EUNAVAIL, at shutdown,
 * after the front end was freed) it is freed at once, touching nothing else. */
static void zombie_answered(hh_sse_stream *s, int error)
{
    if (error == -CN_EUNAVAIL || !s->member || !s->member[0]) {
        stream_release(s);
        return;
    }
    struct hh_sse_state *st = s->st;
    s->prev = NULL;
    s->next = st->zombies;
    if (st->zombies)
        st->zombies->prev = s;
    st->zombies = s;
    arm_now(s);
}

/* From the timer (or hh_sse_fini): leave for a zombie, then free it. */
static void zombie_leave(hh_sse_stream *s)
{
    struct hh_sse_state *st = s->st;
    if (s->prev)
        s->prev->next = s->next;
    else
        st->zombies = s->next;
    if (s->next)
        s->next->prev = s->prev;
    loop_timer_stop(st->hs->l, &s->timer);
    grp_leave(s->gc, cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1});
    stream_release(s);
}

static void on_sync(void *ctx, const grp_sync_result *r)
{
    hh_sse_stream *s = ctx;
    s->parked = 0;
    if (s->zombie) {
        zombie_answered(s, r->error);
        return;
    }
    if (s->ending)
        return;
    if (r->error == -CN_EREBALANCE) {
        s->gstate = SSE_G_JOINING;
        arm_now(s);
        return;
    }
    if (r->error) {
        group_fail(s, "sync", r->error);
        return;
    }
    s->gstate = SSE_G_ACTIVE;
    group_assign(s, r->assignment);
    arm_now(s); /* pump from the timer */
}

static int member_cmp(const void *a, const void *b)
{
    return strcmp((*(const grp_join_member *const *)a)->member_id,
                  (*(const grp_join_member *const *)b)->member_id);
}

/* The leader's range assignment, kept for the sync: the members reading this
 * topic, sorted by member id, get consecutive ranges of its partitions
 * (others nothing). */
static void group_plan(hh_sse_stream *s, const grp_join_result *r)
{
    topic *t = stream_topic(s);
    int32_t np = t ? t->n_parts : 0;
    int m = r->n_members;
    const grp_join_member **mem = xcalloc((size_t)(m ? m : 1), sizeof(*mem));
    int readers = 0;
    size_t tl = strlen(s->topic);
    for (int i = 0; i < m; i++) {
        const grp_join_member *x = &r->members[i];
        if ((size_t)x->metadata.len == tl && memcmp(x->metadata.ptr, s->topic, tl) == 0)
            mem[readers++] = x;
    }
    qsort(mem, (size_t)readers, sizeof(*mem), member_cmp);
    s->plan_member = xcalloc((size_t)(m ? m : 1), sizeof(char *));
    s->plan_text = xcalloc((size_t)(m ? m : 1), sizeof(char *));
    s->n_plan = m;
    for (int i = 0; i < m; i++) {
        s->plan_member[i] = xstrdup(r->members[i].member_id);
        s->plan_text[i] = xstrdup("");
    }
    for (int j = 0; j < readers; j++) {
        int32_t lo = (int32_t)((int64_t)j * np / readers);
        int32_t hi = (int32_t)((int64_t)(j + 1) * np / readers);
        char *text = xmalloc((size_t)(hi - lo) * 12 + 1);
        size_t n = 0;
        text[0] = '\0';
        for (int32_t p = lo; p < hi; p++)
            n += (size_t)sprintf(text + n, "%s%d", p > lo ? "," : "", p);
        for (int k = 0; k < m; k++)
            if (strcmp(s->plan_member[k], mem[j]->member_id) == 0) {
                free(s->plan_text[k]);
                s->plan_text[k] = xstrdup(text);
            }
        free(text);
    }
    free(mem);
}

static void on_join(void *ctx, const grp_join_result *r)
{
    hh_sse_stream *s = ctx;
    s->parked = 0;
    if (r->member_id && r->member_id[0]) { /* s is not freed yet in any case */
        free(s->member);
        s->member = xstrdup(r->member_id);
    }
    if (s->zombie) {
        zombie_answered(s, r->error);
        return;
    }
    if (s->ending)
        return;
    if (r->error == -CN_EMEMBERREQ || r->error == -CN_EREBALANCE) {
        s->gstate = SSE_G_JOINING;
        arm_now(s);
        return;
    }
    if (r->error) {
        group_fail(s, "join", r->error);
        return;
    }
    s->generation = r->generation;
    plan_free(s);
    if (r->n_members > 0)
        group_plan(s, r); /* the leader */
    s->gstate = SSE_G_SYNC_DUE;
    arm_now(s);
}

static void group_join(hh_sse_stream *s)
{
    grp_protocol proto = {cn_str_c(SSE_G_PROTOCOL),
                          {(const uint8_t *)s->topic, (int32_t)strlen(s->topic)}};
    grp_join_req req = {cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1},
                        cn_str_c("cairn-http-sse"), cn_str_c(net_conn_peer(s->c)),
                        cn_str_c(SSE_G_PROTOCOL_TYPE), SSE_G_SESSION_MS, SSE_G_REBALANCE_MS,
                        &proto, 1, 0};
    s->gstate = SSE_G_JOINING;
    s->parked = 1;
    grp_join(s->gc, &req, on_join, s);
}

static void group_sync(hh_sse_stream *s)
{
    grp_assignment *as = xcalloc((size_t)(s->n_plan ? s->n_plan : 1), sizeof(*as));
    for (int i = 0; i < s->n_plan; i++)
        as[i] = (grp_assignment){cn_str_c(s->plan_member[i]),
                                 {(const uint8_t *)s->plan_text[i],
                                  (int32_t)strlen(s->plan_text[i])}};
    grp_sync_req req = {cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1},
                        cn_str_c(SSE_G_PROTOCOL_TYPE), cn_str_c(SSE_G_PROTOCOL), s->generation,
                        as, s->n_plan};
    s->gstate = SSE_G_SYNCING;
    s->parked = 1;
    grp_sync(s->gc, &req, on_sync, s);
    free(as);
    plan_free(s);
}

/* From the stream's timer: joins, syncs, heartbeats, commits. */
static void group_tick(hh_sse_stream *s)
{
    if (s->parked)
        return; /* a join or sync is under way */
    if (s->gstate == SSE_G_JOINING) {
        group_join(s);
        return;
    }
    if (s->gstate == SSE_G_SYNC_DUE) {
        group_sync(s);
        return;
    }
    if (s->gstate != SSE_G_ACTIVE)
        return;
    int rc = grp_heartbeat(s->gc, cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1},
                           s->generation);
    if (net_conn_out_bytes(s->c) == 0)
        group_commit(s);
    if (rc == -CN_EREBALANCE || rc == -CN_EGENERATION || rc == -CN_ENOMEMBER) {
        if (rc == -CN_ENOMEMBER) {
            free(s->member);
            s->member = xstrdup("");
        }
        group_join(s); /* stops delivery until the new assignment */
    } else if (rc < 0) {
        group_fail(s, "heartbeat", rc);
    }
}

/* The stream ends (never inside a coordinator callback): commit what left
 * (a clean end: everything flushed was handed to the kernel; after a hang-up
 * nothing more is committed) and leave, so the others take its partitions
 * at once. A join or sync still parked leaves from its callback (zombie). */
static void group_end(hh_sse_stream *s)
{
    if (!s->conn_gone && net_resp_alive(s->q->resp) && net_conn_out_bytes(s->c) == 0)
        group_commit(s);
    if (!s->parked && s->member && s->member[0])
        grp_leave(s->gc, cn_str_c(s->group), cn_str_c(s->member), (cn_str){NULL, -1});
}

/* Lifecycle ------------------------------------------------------------------------ */

void hh_sse_init(hsrv *hs)
{
    struct hh_sse_state *st = xcalloc(1, sizeof(*st));
    st->hs = hs;
    hh_slice_init(&st->sl);
    st->appends.cb = on_appends;
    hs->sse = st;
    broker_listen_appends(hs->b, &st->appends);
}

void hh_sse_fini(hsrv *hs)
{
    struct hh_sse_state *st = hs->sse;
    if (!st)
        return;
    while (st->head) {
        hh_sse_stream *s = st->head;
        stream_end(s, s->conn_gone ? NULL : ": shutdown\n\n", "shutdown");
    }
    while (st->zombies)
        zombie_leave(st->zombies);
    broker_unlisten_appends(hs->b, &st->appends);
    hh_slice_fini(&st->sl);
    free(st);
    hs->sse = NULL;
}

void hh_sse_counters_get(hsrv *hs, hh_sse_counters *out)
{
    struct hh_sse_state *st = hs->sse;
    *out = (hh_sse_counters){0};
    if (!st)
        return;
    out->open = st->open;
    out->started = st->started;
    out->events = st->events;
    out->pauses = st->pauses;
    for (hh_sse_stream *s = st->head; s; s = s->next)
        if (!s->conn_gone)
            out->buffered += net_conn_out_bytes(s->c);
}

/* The handler ------------------------------------------------------------------------ */

/* Parse a decimal integer s[0..len) (optional '-' when neg) into *out. */
static int parse_num(const char *s, size_t len, int neg, int64_t *out)
{
    char b[24];
    if (len == 0 || len >= sizeof(b))
        return -1;
    memcpy(b, s, len);
    b[len] = '\0';
    if (!(b[0] >= '0' && b[0] <= '9') && !(neg && b[0] == '-' && len > 1))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Apply Last-Event-ID to pos[] (per partition of the topic, -2: not listed).
 * 0, or -1 when it does not parse or names a partition twice or one out of
 * [0, n_parts). */
static int parse_last_id(const char *id, int32_t n_parts, int64_t *last)
{
    for (int32_t i = 0; i < n_parts; i++)
        last[i] = -2;
    const char *p = id;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        int64_t part, off;
        if (!colon || parse_num(p, (size_t)(colon - p), 0, &part) < 0 ||
            parse_num(colon + 1, len - (size_t)(colon - p) - 1, 1, &off) < 0 || off < -1 ||
            part >= n_parts || last[part] != -2)
            return -1;
        last[part] = off;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void hh_stream(hreq *q)
{
    hsrv *hs = q->hs;
    struct hh_sse_state *st = hs->sse;
    topic *t = hh_topic_or_reply(q, 1);
    if (!t)
        return;
    char *ps = NULL, *from = NULL;
    int has_part = hh_query(q, "partition", &ps);
    int has_from = hh_query(q, "from", &from);
    int64_t pid = -1;
    if (has_part) {
        if (has_part < 0 || parse_num(ps, strlen(ps), 0, &pid) < 0 || pid > INT32_MAX) {
            hh_error(q, 400, "invalid_partition", "partition '%s' is not a non-negative integer",
                     has_part < 0 ? "?" : ps);
            return;
        }
        if (pid >= t->n_parts) {
            hh_error(q, 404, "unknown_partition", "topic '%s' has %d partition(s); %lld does "
                     "not exist", t->name, t->n_parts, (long long)pid);
            return;
        }
    }
    int earliest = 0;
    if (has_from) {
        if (has_from < 0 || (strcmp(from, "earliest") != 0 && strcmp(from, "latest") != 0)) {
            hh_error(q, 400, "invalid_parameter", "query parameter 'from' must be earliest or "
                     "latest");
            return;
        }
        earliest = strcmp(from, "earliest") == 0;
    }
    char *os = NULL, *group = NULL;
    int has_offset = hh_query(q, "offset", &os);
    int has_group = hh_query(q, "group", &group);
    if (has_group) {
        json_t *gj = has_group > 0 ? json_string(group) : NULL; /* NULL: not UTF-8 */
        int bad = !gj || !group[0] || strlen(group) > 255;
        json_decref(gj);
        for (const char *p = group; !bad && *p; p++)
            bad = (unsigned char)*p < 0x20 || *p == 0x7f;
        if (bad) {
            hh_error(q, 400, "invalid_parameter", "query parameter 'group' must be 1..255 bytes "
                     "of UTF-8 text without control characters");
            return;
        }
        if (has_part || has_offset || q->last_event_id) {
            hh_error(q, 400, "invalid_parameter", "a group stream takes no 'partition', "
                     "'offset' or Last-Event-ID (its positions are the group's)");
            return;
        }
        int rc = grp_coord_serving(hs->core->groups);
        if (rc < 0) {
            hh_error(q, 503, "coordinator_unavailable", "this node does not coordinate groups "
                     "now (%s)", cn_strerror(rc));
            return;
        }
    }
    for (int32_t i = has_part ? (int32_t)pid : 0;
         !has_group && i < (has_part ? (int32_t)pid + 1 : t->n_parts); i++) {
        if (t->parts[i]->remote) {
            /* A cluster node without a replica of it holds none of its records. */
            json_t *extra = json_object();
            json_object_set_new(extra, "partition", json_integer(i));
            json_object_set_new(extra, "leader", json_integer(broker_partition_leader(t->parts[i])));
            hh_error_obj(q, 421, "not_leader", extra, "this node holds no replica of %s-%d: "
                         "stream it from a node that does", t->name, i);
            return;
        }
    }
    int64_t offset = 0;
    if (has_offset) {
        if (!has_part || has_from) {
            hh_error(q, 400, "invalid_parameter", "query parameter 'offset' needs 'partition' "
                     "and excludes 'from'");
            return;
        }
        if (hh_query_i64_or_reply(q, "offset", 0, 0, INT64_MAX, &offset) < 0)
            return;
        partition *p = t->parts[pid];
        int64_t start = log_start_offset(p->log), hw = log_high_watermark(p->log);
        if (offset < start || offset > hw) {
            json_t *extra = json_object();
            json_object_set_new(extra, "log_start_offset", json_integer(start));
            json_object_set_new(extra, "high_watermark", json_integer(hw));
            hh_error_obj(q, 400, "offset_out_of_range", extra, "offset %lld is outside "
                         "[%lld, %lld] of %s-%lld", (long long)offset, (long long)start,
                         (long long)hw, t->name, (long long)pid);
            return;
        }
    }
    int32_t first = has_part ? (int32_t)pid : 0;
    int32_t n = has_group ? 0 : has_part ? 1 : t->n_parts; /* a group's come from its sync */
    int64_t *pos = xmalloc((size_t)(n ? n : 1) * sizeof(*pos));
    int32_t *ids = xmalloc((size_t)(n ? n : 1) * sizeof(*ids));
    for (int32_t i = 0; i < n; i++)
        ids[i] = first + i;
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[first + i];
        pos[i] = has_offset ? offset : earliest ? log_start_offset(p->log) : broker_lso(p);
    }
    if (q->last_event_id) {
        int64_t *last = xmalloc((size_t)(t->n_parts ? t->n_parts : 1) * sizeof(*last));
        int bad = parse_last_id(q->last_event_id, t->n_parts, last) < 0 ||
                  (has_part && last[first] == -2);
        for (int32_t i = 0; !bad && i < t->n_parts; i++)
            if (last[i] != -2 && has_part && i != first)
                bad = 1; /* a single-partition stream's id names only it */
        if (bad) {
            free(last);
            free(ids);
            free(pos);
            hh_error(q, 400, "invalid_last_event_id", "Last-Event-ID must be P:O or P:O,P:O,... "
                     "for partitions of '%s'%s", t->name,
                     has_part ? " (naming the stream's partition)" : "");
            return;
        }
        for (int32_t i = 0; i < n; i++) {
            partition *p = t->parts[first + i];
            int64_t l = last[first + i];
            int64_t want = l == -2 ? log_start_offset(p->log) : l + 1;
            int64_t start = log_start_offset(p->log), hw = log_high_watermark(p->log);
            if (want > hw) {
                free(last);
                free(ids);
                free(pos);
                hh_error(q, 400, "offset_out_of_range", "Last-Event-ID resumes %s-%d at %lld, "
                         "past its high watermark %lld", t->name, first + i, (long long)want,
                         (long long)hw);
                return;
            }
            pos[i] = want < start ? start : want;
        }
        free(last);
    }
    /* The stream starts: the head now, events as they come. */
    hh_sse_stream *s = xcalloc(1, sizeof(*s));
    s->st = st;
    s->q = q;
    s->c = q->c;
    s->topic = xstrdup(t->name);
    s->topic_id = t->id;
    s->ids = ids;
    s->n = n;
    s->all = !has_part && !has_group;
    s->pos = pos;
    if (has_group) {
        s->group = xstrdup(group);
        s->gc = hs->core->groups;
        s->member = xstrdup("");
        s->from_earliest = earliest;
        s->gstate = SSE_G_JOINING;
    }
    s->next = st->head;
    if (st->head)
        st->head->prev = s;
    st->head = s;
    st->open++;
    st->started++;
    q->answered = 1;
    hs->requests[q->route][HCLASS_2XX]++;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nConnection: close\r\n"
                               "X-Accel-Buffering: no\r\n\r\n";
    put(s, head, sizeof(head) - 1);
    hsrv__conn_stream(q->c, s);
    loop_timer_init(&s->timer, stream_tick, s);
    stream_flush(s);
    if (s->group) { /* join from the timer: a join may answer at once */
        loop_timer_start(hs->l, &s->timer, 0);
        return;
    }
    if (stream_pump(s))
        return;
    /* Tick for keepalives and missed wake-ups (already armed at 0 when a
     * failed write closed the connection: that ends it). */
    int64_t ka = hs->cfg->http_sse_keepalive_ms;
    if (!loop_timer_armed(&s->timer))
        loop_timer_start(hs->l, &s->timer, ka < SSE_TICK_MAX_MS ? ka : SSE_TICK_MAX_MS);
}
