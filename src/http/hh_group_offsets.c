/* Reset a consumer group's committed offsets over HTTP (what Kafka's
 * kafka-consumer-groups.sh --reset-offsets does; `cairn group reset-offsets`
 * is its command-line client).
 *
 * POST /groups/{g}/offsets
 *   {"topic": name,                      required
 *    "to": "earliest" | "latest" | "offset",
 *    "offset": N,                        with "to": "offset" only
 *    "partitions": [p, ...],             default: every partition of the topic
 *    "dry_run": false}                   true: answer the plan, commit nothing
 *
 * earliest is each partition's log start offset, latest its high watermark
 * (the log end offset as Kafka's tool uses it); an explicit offset is
 * clamped to [log start, high watermark] per partition, as Kafka's tool
 * clamps it. The new offsets are committed in one batch of the offsets store
 * (goff_commit, no metadata) and the answer waits until that batch is
 * durable:
 *   200 {"group_id", "topic", "dry_run", "offsets": [{"partition",
 *        "previous_offset" (null when none was committed), "offset",
 *        "log_start_offset", "log_end_offset"}]}  (partitions in the order asked)
 *
 * The group need not exist (a reset creates its offsets, as Kafka's tool
 * does), but it must have no members: a consumer in the group would go on
 * committing its own positions over the reset. While it has any (Kafka
 * clients, SSE group streams), 409 group_not_empty with the group's "state"
 * and "members" count; stop the consumers first. The group of a live
 * webhook subscription (cairn.webhook.<id>) is refused likewise (409
 * group_in_use): its delivery holds the position in memory.
 *
 * Errors: 400 invalid_request (body fields) / invalid_partition, 404
 * unknown_topic / unknown_partition, 409 as above, 421/503 not the group
 * coordinator (a cluster) or loading, 500 storage_error. */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"

typedef enum { RESET_EARLIEST, RESET_LATEST, RESET_OFFSET } reset_to;

/* A commit parked until the offsets store's batch is durable. */
typedef struct reset_wait {
    durable_wait w;              /* first: the broker hands this back */
    hreq *q;
    json_t *answer;              /* the 200 body, sent once durable */
} reset_wait;

static void reset_durable(durable_wait *w, int status)
{
    reset_wait *rw = (reset_wait *)w;
    hsrv *hs = rw->q->hs;
    if (status < 0) {
        json_decref(rw->answer);
        hh_error(rw->q, 500, "storage_error", "resetting the offsets of group '%s': the offsets "
                 "log could not be synced (%s)", rw->q->seg[1], cn_strerror(status));
    } else {
        hh_reply_json(rw->q, 200, rw->answer);
    }
    hsrv__durable_end(hs);
}

typedef struct members_ctx {
    const char *state;
    int n;
} members_ctx;

static void members_one(void *arg, const grp_info *g)
{
    members_ctx *m = arg;
    m->state = grp_state_name(g->state);
    m->n = g->n_members;
}

/* 0 when the group may be reset, else -1 after answering 409 (or the
 * coordinator's error). */
static int check_group_or_reply(hreq *q, cn_str g)
{
    hsrv *hs = q->hs;
    int rc = grp_coord_serving(hs->core->groups);
    if (rc < 0) {
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        hh_error(q, status, code, "%s (coordinator: node %d)", cn_strerror(rc),
                 (int)grp_coord_node(hs->core->groups));
        return -1;
    }
    if (!grp_is_empty(hs->core->groups, g)) {
        members_ctx m = {"", 0};
        grp_describe(hs->core->groups, g, members_one, &m);
        json_t *extra = json_object();
        json_object_set_new(extra, "state", json_string(m.state));
        json_object_set_new(extra, "members", json_integer(m.n));
        hh_error_obj(q, 409, "group_not_empty", extra,
                     "group '%s' has %d active member(s) (state %s); offsets can only be reset "
                     "while the group has no members: stop its consumers first",
                     q->seg[1], m.n, m.state);
        return -1;
    }
    size_t pl = strlen(HH_WH_GROUP_PREFIX);
    if (strncmp(q->seg[1], HH_WH_GROUP_PREFIX, pl) == 0 && hh_wh_find(hs, q->seg[1] + pl)) {
        hh_error(q, 409, "group_in_use", "group '%s' holds the position of webhook "
                 "subscription '%s'; delete the subscription to reset it", q->seg[1],
                 q->seg[1] + pl);
        return -1;
    }
    return 0;
}

/* The body's "to" / "offset", or -1 after answering 400. */
static int parse_target_or_reply(hreq *q, json_t *body, reset_to *out, int64_t *out_offset)
{
    const char *to = json_string_value(json_object_get(body, "to"));
    json_t *off = json_object_get(body, "offset");
    if (!to) {
        hh_error(q, 400, "invalid_request",
                 "\"to\" (\"earliest\", \"latest\" or \"offset\") is required");
        return -1;
    }
    if (strcmp(to, "earliest") == 0) {
        *out = RESET_EARLIEST;
    } else if (strcmp(to, "latest") == 0) {
        *out = RESET_LATEST;
    } else if (strcmp(to, "offset") == 0) {
        *out = RESET_OFFSET;
    } else {
        hh_error(q, 400, "invalid_request",
                 "\"to\" must be \"earliest\", \"latest\" or \"offset\", not \"%s\"", to);
        return -1;
    }
    if (*out == RESET_OFFSET) {
        if (!json_is_integer(off) || json_integer_value(off) < 0) {
            hh_error(q, 400, "invalid_request",
                     "\"to\": \"offset\" needs \"offset\", a non-negative integer");
            return -1;
        }
        *out_offset = json_integer_value(off);
    } else if (off) {
        hh_error(q, 400, "invalid_request", "\"offset\" goes with \"to\": \"offset\" only");
        return -1;
    }
    return 0;
}

/* The partitions to reset (arena array, *out_n of them), or NULL after
 * answering 400/404. */
static int32_t *parse_partitions_or_reply(hreq *q, json_t *body, const topic *t, int *out_n)
{
    json_t *ps = json_object_get(body, "partitions");
    if (!ps || json_is_null(ps)) {
        int32_t *all = hh_alloc(q, (size_t)t->n_parts * sizeof(*all));
        for (int32_t i = 0; i < t->n_parts; i++)
            all[i] = i;
        *out_n = t->n_parts;
        return all;
    }
    if (!json_is_array(ps) || json_array_size(ps) == 0) {
        hh_error(q, 400, "invalid_request", "\"partitions\" must be a non-empty array");
        return NULL;
    }
    size_t n = json_array_size(ps);
    int32_t *out = hh_alloc(q, n * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ps, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            hh_error(q, 400, "invalid_partition", "\"partitions\" holds non-negative integers");
            return NULL;
        }
        json_int_t p = json_integer_value(v);
        if (p >= t->n_parts) {
            hh_error(q, 404, "unknown_partition",
                     "topic '%s' has %d partition(s); %lld does not exist", t->name, t->n_parts,
                     (long long)p);
            return NULL;
        }
        for (size_t k = 0; k < i; k++)
            if (out[k] == p) {
                hh_error(q, 400, "invalid_partition", "partition %lld is listed twice",
                         (long long)p);
                return NULL;
            }
        out[i] = (int32_t)p;
    }
    *out_n = (int)n;
    return out;
}

void hh_group_offsets_reset(hreq *q)
{
    hsrv *hs = q->hs;
    cn_str g = cn_str_c(q->seg[1]);
    json_t *body = hh_body_json_or_reply(q);
    if (!body)
        return;
    json_t *answer = NULL;
    const char *tname = json_string_value(json_object_get(body, "topic"));
    json_t *dry = json_object_get(body, "dry_run");
    reset_to to;
    int64_t want = 0;
    if (!tname) {
        hh_error(q, 400, "invalid_request", "\"topic\" (a string) is required");
        goto out;
    }
    if (dry && !json_is_boolean(dry)) {
        hh_error(q, 400, "invalid_request", "\"dry_run\" must be true or false");
        goto out;
    }
    if (parse_target_or_reply(q, body, &to, &want) < 0)
        goto out;
    topic *t = broker_topic_find(hs->b, cn_str_c(tname));
    if (!t) {
        hh_error(q, 404, "unknown_topic", "topic '%s' does not exist", tname);
        goto out;
    }
    int n = 0;
    int32_t *parts = parse_partitions_or_reply(q, body, t, &n);
    if (!parts || check_group_or_reply(q, g) < 0)
        goto out;

    goff_commit_item *items = hh_alloc(q, (size_t)n * sizeof(*items));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        partition *p = t->parts[parts[i]];
        int64_t start = log_start_offset(p->log), end = log_high_watermark(p->log);
        int64_t off = to == RESET_EARLIEST ? start : to == RESET_LATEST ? end : want;
        off = off < start ? start : off > end ? end : off;
        items[i] = (goff_commit_item){cn_str_c(t->name), parts[i], off, -1, {NULL, -1}, -1};
        const goff_entry *e = goff_get(hs->core->offsets, g, cn_str_c(t->name), parts[i]);
        json_t *o = json_object();
        json_object_set_new(o, "partition", json_integer(parts[i]));
        json_object_set_new(o, "previous_offset", e ? json_integer(e->offset) : json_null());
        json_object_set_new(o, "offset", json_integer(off));
        json_object_set_new(o, "log_start_offset", json_integer(start));
        json_object_set_new(o, "log_end_offset", json_integer(end));
        json_array_append_new(arr, o);
    }
    answer = json_object();
    json_t *gid = json_string(q->seg[1]);    /* NULL: the id is not UTF-8 */
    json_object_set_new(answer, "group_id", gid ? gid : json_null());
    json_object_set_new(answer, "topic", json_string(t->name));
    json_object_set_new(answer, "dry_run", json_boolean(json_is_true(dry)));
    json_object_set_new(answer, "offsets", arr);
    if (json_is_true(dry)) {
        hh_reply_json(q, 200, answer);
        goto out;
    }
    int64_t target = -1;
    int rc = goff_commit(hs->core->offsets, g, items, n, loop_wall_ms(), &target);
    if (rc < 0) {
        json_decref(answer);
        const char *code;
        int status = hh_status_from_cn(rc, &code);
        hh_error(q, status, code, "resetting the offsets of group '%s': %s", q->seg[1],
                 cn_strerror(rc));
        goto out;
    }
    reset_wait *rw = hh_alloc(q, sizeof(*rw));
    rw->q = q;
    rw->answer = answer;
    rw->w.target = target;
    rw->w.cb = reset_durable;
    hsrv__durable_begin(hs);
    broker_wait_durable(hs->b, goff_partition(hs->core->offsets), &rw->w);
out:
    json_decref(body);
}
