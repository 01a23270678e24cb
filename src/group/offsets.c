/* Committed offsets store: hash tables, replay at open, the public API,
 * expiry and compaction. Contract and record format in offsets.h; the log
 * itself (batches, replay, durability, compaction protocol) is kvlog's. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "group/offsets_int.h"
#include "util/common.h"
#include "util/slog.h"

#define META_MAX ((int32_t)64 << 20)

/* Hashing ------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Seeded FNV-1a with a final mix. */
static uint64_t hash_bytes(uint64_t seed, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static uint64_t node_hash(const goff_store *s, const goff_group *g, cn_str tp, int32_t part)
{
    return mix64(g->hash ^ hash_bytes(s->seed + 1, tp.ptr, (size_t)tp.len) ^
                 ((uint64_t)(uint32_t)part * 0x9e3779b97f4a7c15ULL));
}

static int name_ok(cn_str k)
{
    return k.len >= 0 && k.len <= GOFF_STR_MAX && (k.len == 0 || k.ptr);
}

static char *dup_bytes(const char *p, int32_t len)
{
    char *c = xmalloc((size_t)len + 1);
    if (len > 0)
        memcpy(c, p, (size_t)len);
    c[len] = '\0';
    return c;
}

/* Group table ------------------------------------------------------------- */

static goff_group *group_find(goff_store *s, cn_str name)
{
    if (!name_ok(name))
        return NULL;
    uint64_t h = hash_bytes(s->seed, name.ptr, (size_t)name.len);
    for (goff_group *g = s->gtab[h & s->gmask]; g; g = g->hnext)
        if (g->hash == h && g->name_len == name.len &&
            (name.len == 0 || memcmp(g->name, name.ptr, (size_t)name.len) == 0))
            return g;
    return NULL;
}

static void group_grow(goff_store *s)
{
    size_t n = (s->gmask + 1) * 2;
    goff_group **t = xcalloc(n, sizeof(*t));
    for (size_t i = 0; i <= s->gmask; i++)
        for (goff_group *g = s->gtab[i], *next; g; g = next) {
            next = g->hnext;
            g->hnext = t[g->hash & (n - 1)];
            t[g->hash & (n - 1)] = g;
        }
    free(s->gtab);
    s->gtab = t;
    s->gmask = n - 1;
}

static goff_group *group_get(goff_store *s, cn_str name)
{
    goff_group *g = group_find(s, name);
    if (g)
        return g;
    g = xcalloc(1, sizeof(*g));
    g->name = dup_bytes(name.ptr, name.len);
    g->name_len = name.len;
    g->hash = hash_bytes(s->seed, name.ptr, (size_t)name.len);
    g->meta_len = -1;
    if (s->n_groups + 1 > s->gmask + 1)
        group_grow(s);
    g->hnext = s->gtab[g->hash & s->gmask];
    s->gtab[g->hash & s->gmask] = g;
    s->n_groups++;
    return g;
}

/* Free g when it holds nothing any more. */
static void group_release(goff_store *s, goff_group *g)
{
    if (g->n_entries > 0 || g->meta_len >= 0)
        return;
    goff_group **pp = &s->gtab[g->hash & s->gmask];
    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    s->n_groups--;
    free(g->name);
    free(g);
}

static cn_str group_kstr(const goff_group *g)
{
    return (cn_str){g->name, g->name_len};
}

static void group_set_meta(goff_store *s, goff_group *g, cn_bytes blob)
{
    if (g->meta_len >= 0)
        s->live_bytes -= goff__meta_rec_bytes(g->name_len, g->meta_len);
    free(g->meta);
    g->meta = NULL;
    g->meta_len = -1;
    if (blob.len >= 0) {
        g->meta = xmalloc(blob.len > 0 ? (size_t)blob.len : 1);
        if (blob.len > 0)
            memcpy(g->meta, blob.ptr, (size_t)blob.len);
        g->meta_len = blob.len;
        s->live_bytes += goff__meta_rec_bytes(g->name_len, g->meta_len);
    }
}

/* Node table ----------------------------------------------------------------- */

static goff_node *node_find(goff_store *s, goff_group *g, cn_str tp, int32_t part)
{
    if (!g || !name_ok(tp))
        return NULL;
    uint64_t h = node_hash(s, g, tp, part);
    for (goff_node *n = s->ntab[h & s->nmask]; n; n = n->hnext)
        if (n->hash == h && n->g == g && n->partition == part && n->topic_len == tp.len &&
            (tp.len == 0 || memcmp(n->topic, tp.ptr, (size_t)tp.len) == 0))
            return n;
    return NULL;
}

static void node_grow(goff_store *s)
{
    size_t n = (s->nmask + 1) * 2;
    goff_node **t = xcalloc(n, sizeof(*t));
    for (size_t i = 0; i <= s->nmask; i++)
        for (goff_node *x = s->ntab[i], *next; x; x = next) {
            next = x->hnext;
            x->hnext = t[x->hash & (n - 1)];
            t[x->hash & (n - 1)] = x;
        }
    free(s->ntab);
    s->ntab = t;
    s->nmask = n - 1;
}

static int32_t meta_len_of(const goff_entry *e)
{
    return e->metadata ? (int32_t)strlen(e->metadata) : -1;
}

/* Insert or overwrite (group, topic, part) with a copy of the values. */
static void node_put(goff_store *s, cn_str group, cn_str tp, int32_t part, int64_t offset,
                     int32_t epoch, cn_str metadata, int64_t commit_ms, int64_t expire_ms)
{
    goff_group *g = group_get(s, group);
    goff_node *n = node_find(s, g, tp, part);
    if (n) {
        s->live_bytes -= n->rec_bytes;
        free(n->e.metadata);
    } else {
        n = xcalloc(1, sizeof(*n));
        n->g = g;
        n->topic = dup_bytes(tp.ptr, tp.len);
        n->topic_len = tp.len;
        n->partition = part;
        n->hash = node_hash(s, g, tp, part);
        if (s->n_nodes + 1 > s->nmask + 1)
            node_grow(s);
        n->hnext = s->ntab[n->hash & s->nmask];
        s->ntab[n->hash & s->nmask] = n;
        s->n_nodes++;
        n->gnext = g->entries;
        if (g->entries)
            g->entries->gprev = n;
        g->entries = n;
        g->n_entries++;
    }
    n->e.offset = offset;
    n->e.leader_epoch = epoch;
    n->e.metadata = metadata.len < 0 ? NULL : dup_bytes(metadata.ptr, metadata.len);
    n->e.commit_ms = commit_ms;
    n->e.expire_ms = expire_ms;
    n->rec_bytes = goff__offset_rec_bytes(g->name_len, n->topic_len, meta_len_of(&n->e));
    s->live_bytes += n->rec_bytes;
}

/* Unlink and free n; does not release its group. */
static void node_remove(goff_store *s, goff_node *n)
{
    goff_node **pp = &s->ntab[n->hash & s->nmask];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    s->n_nodes--;
    goff_group *g = n->g;
    if (n->gprev)
        n->gprev->gnext = n->gnext;
    else
        g->entries = n->gnext;
    if (n->gnext)
        n->gnext->gprev = n->gprev;
    g->n_entries--;
    s->live_bytes -= n->rec_bytes;
    free(n->e.metadata);
    free(n->topic);
    free(n);
}

static cn_str node_topic(const goff_node *n)
{
    return (cn_str){n->topic, n->topic_len};
}

/* Replay ----------------------------------------------------------------------- */

static int replay_rec(void *arg, const batch_record *r, const char **why)
{
    goff_store *s = arg;
    goff__rec d;
    if (goff__rec_decode(r, &d, why) < 0)
        return -CN_EPROTO;
    if (d.kind == GOFF_KEY_OFFSET) {
        if (d.tombstone) {
            goff_group *g = group_find(s, d.group);
            goff_node *n = node_find(s, g, d.topic, d.partition);
            if (n) {
                node_remove(s, n);
                group_release(s, g);
            }
        } else {
            node_put(s, d.group, d.topic, d.partition, d.offset, d.leader_epoch, d.metadata,
                     d.commit_ms, d.expire_ms);
        }
    } else {
        goff_group *g = d.tombstone ? group_find(s, d.group) : group_get(s, d.group);
        if (g) {
            group_set_meta(s, g, d.blob);
            group_release(s, g);
        }
    }
    return 0;
}

static int compact_records(void *arg, kvl_compaction *cx);

static int64_t live_bytes(void *arg)
{
    return ((goff_store *)arg)->live_bytes;
}

static const kvl_ops store_ops = {replay_rec, compact_records, live_bytes};

/* Open / close ------------------------------------------------------------- */

static void free_all(goff_store *s)
{
    for (size_t i = 0; s->ntab && i <= s->nmask; i++)
        for (goff_node *n = s->ntab[i], *next; n; n = next) {
            next = n->hnext;
            free(n->e.metadata);
            free(n->topic);
            free(n);
        }
    for (size_t i = 0; s->gtab && i <= s->gmask; i++)
        for (goff_group *g = s->gtab[i], *next; g; g = next) {
            next = g->hnext;
            free(g->meta);
            free(g->name);
            free(g);
        }
    free(s->ntab);
    free(s->gtab);
}

static void tables_new(goff_store *s)
{
    s->gmask = 15;
    s->gtab = xcalloc(s->gmask + 1, sizeof(*s->gtab));
    s->nmask = 63;
    s->ntab = xcalloc(s->nmask + 1, sizeof(*s->ntab));
    s->n_groups = 0;
    s->n_nodes = 0;
    s->live_bytes = 0;
}

static int open_common(broker *b, int replicated, goff_store **out)
{
    *out = NULL;
    goff_store *s = xcalloc(1, sizeof(*s));
    if (getrandom(&s->seed, sizeof(s->seed), 0) != (ssize_t)sizeof(s->seed))
        s->seed = (uint64_t)(uintptr_t)s ^ 0x5bd1e995ULL;
    tables_new(s);
    int rc = replicated ? kvl_open_replicated(b, BROKER_OFFSETS_TOPIC, &store_ops, s, &s->log)
                        : kvl_open(b, BROKER_OFFSETS_TOPIC, &store_ops, s, &s->log);
    if (rc < 0) {
        goff_close(s);
        return rc;
    }
    if (!replicated) {
        kvl_stats st;
        kvl_get_stats(s->log, &st);
        slog_info("%s: replayed %lld record(s): %zu group(s), %zu offset(s)",
                  BROKER_OFFSETS_TOPIC, (long long)st.replayed, s->n_groups, s->n_nodes);
    }
    *out = s;
    return 0;
}

int goff_open(broker *b, goff_store **out)
{
    return open_common(b, 0, out);
}

int goff_open_replicated(broker *b, goff_store **out)
{
    return open_common(b, 1, out);
}

int goff_serving(goff_store *s)
{
    if (!kvl_replicated(s->log))
        return 0;
    int rc = kvl_serving(s->log);
    int64_t term = kvl_term(s->log);
    if (rc == 0 && s->loaded_term == term)
        return 0;
    if (s->loaded_term) {
        /* Another term, or no longer the leader: what memory holds may
         * miss what later leaders committed. */
        free_all(s);
        tables_new(s);
        s->loaded_term = 0;
        s->generation++;
        slog_info("%s: coordinator state dropped (term %lld)", BROKER_OFFSETS_TOPIC,
                  (long long)term);
    }
    if (rc == -CN_ELEADERWAIT)
        return -CN_ELOADING;
    if (rc < 0)
        return -CN_ENOTCOORD;
    /* Leader of this term with its barrier committed: the log holds every
     * committed record, and nothing after them but this term's own. */
    rc = kvl_replay(s->log);
    if (rc < 0) {
        free_all(s);
        tables_new(s);
        slog_error("%s: coordinator state not loaded: %s", BROKER_OFFSETS_TOPIC, cn_strerror(rc));
        return -CN_EUNAVAIL;
    }
    s->loaded_term = term;
    s->generation++;
    kvl_stats st;
    kvl_get_stats(s->log, &st);
    slog_info("%s: coordinator for term %lld: replayed %lld record(s): %zu group(s), "
              "%zu offset(s)", BROKER_OFFSETS_TOPIC, (long long)term, (long long)st.replayed,
              s->n_groups, s->n_nodes);
    return 0;
}

uint64_t goff_generation(const goff_store *s)
{
    return s->generation;
}

int goff_replicated(const goff_store *s)
{
    return kvl_replicated(s->log);
}

int32_t goff_coordinator(goff_store *s)
{
    return broker_partition_leader(kvl_partition(s->log));
}

void goff_close(goff_store *s)
{
    if (!s)
        return;
    kvl_close(s->log);
    free_all(s);
    free(s);
}

partition *goff_partition(goff_store *s)
{
    return kvl_partition(s->log);
}

/* Offsets ------------------------------------------------------------------------ */

const goff_entry *goff_get(goff_store *s, cn_str group, cn_str tp, int32_t part)
{
    goff_node *n = node_find(s, group_find(s, group), tp, part);
    return n ? &n->e : NULL;
}

int goff_commit(goff_store *s, cn_str group, const goff_commit_item *items, int n, int64_t now_ms,
                int64_t *wait_target)
{
    if (!name_ok(group) || n < 0 || (n > 0 && !items))
        return -CN_EINVAL;
    for (int i = 0; i < n; i++)
        if (!name_ok(items[i].topic) || items[i].metadata.len > GOFF_STR_MAX ||
            (items[i].metadata.len > 0 && !items[i].metadata.ptr))
            return -CN_EINVAL;
    if (n > 0) {
        goff__recs rb;
        goff__recs_init(&rb);
        for (int i = 0; i < n; i++) {
            const goff_commit_item *it = &items[i];
            goff_entry e = {it->offset, it->leader_epoch, NULL, now_ms, it->expire_ms};
            goff__recs_offset(&rb, group, it->topic, it->partition, &e, it->metadata);
        }
        int rc = goff__recs_append(s, &rb, now_ms);
        goff__recs_fini(&rb);
        if (rc < 0)
            return rc;
        for (int i = 0; i < n; i++) {
            const goff_commit_item *it = &items[i];
            node_put(s, group, it->topic, it->partition, it->offset, it->leader_epoch,
                     it->metadata, now_ms, it->expire_ms);
        }
    }
    *wait_target = kvl_end(s->log);
    return 0;
}

int goff_delete(goff_store *s, cn_str group, cn_str tp, int32_t part, int64_t *wait_target)
{
    if (!name_ok(group) || !name_ok(tp))
        return -CN_EINVAL;
    goff_group *g = group_find(s, group);
    goff_node *n = node_find(s, g, tp, part);
    if (n) {
        goff__recs rb;
        goff__recs_init(&rb);
        goff__recs_offset(&rb, group, tp, part, NULL, (cn_str){NULL, -1});
        int rc = goff__recs_append(s, &rb, loop_wall_ms());
        goff__recs_fini(&rb);
        if (rc < 0)
            return rc;
        node_remove(s, n);
        group_release(s, g);
    }
    *wait_target = kvl_end(s->log);
    return 0;
}

int goff_delete_group(goff_store *s, cn_str group, int64_t *wait_target)
{
    if (!name_ok(group))
        return -CN_EINVAL;
    goff_group *g = group_find(s, group);
    if (g) {
        goff__recs rb;
        goff__recs_init(&rb);
        for (goff_node *n = g->entries; n; n = n->gnext)
            goff__recs_offset(&rb, group, node_topic(n), n->partition, NULL, (cn_str){NULL, -1});
        if (g->meta_len >= 0)
            goff__recs_meta(&rb, group, NULL);
        int rc = goff__recs_append(s, &rb, loop_wall_ms());
        goff__recs_fini(&rb);
        if (rc < 0)
            return rc;
        while (g->entries)
            node_remove(s, g->entries);
        group_set_meta(s, g, (cn_bytes){NULL, -1});
        group_release(s, g);
    }
    *wait_target = kvl_end(s->log);
    return 0;
}

static int node_cmp(const void *a, const void *b)
{
    const goff_node *x = *(goff_node *const *)a, *y = *(goff_node *const *)b;
    int32_t m = CN_MIN(x->topic_len, y->topic_len);
    int c = m > 0 ? memcmp(x->topic, y->topic, (size_t)m) : 0;
    if (c)
        return c;
    if (x->topic_len != y->topic_len)
        return x->topic_len < y->topic_len ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

void goff_foreach(goff_store *s, cn_str group,
                  void (*cb)(void *arg, const char *topic_name, int32_t part, const goff_entry *e),
                  void *arg)
{
    goff_group *g = group_find(s, group);
    if (!g || g->n_entries == 0)
        return;
    goff_node **v = xmalloc((size_t)g->n_entries * sizeof(*v));
    size_t k = 0;
    for (goff_node *n = g->entries; n; n = n->gnext)
        v[k++] = n;
    qsort(v, k, sizeof(*v), node_cmp);
    for (size_t i = 0; i < k; i++)
        cb(arg, v[i]->topic, v[i]->partition, &v[i]->e);
    free(v);
}

void goff_foreach_group(goff_store *s, void (*cb)(void *arg, const char *group), void *arg)
{
    for (size_t i = 0; i <= s->gmask; i++)
        for (goff_group *g = s->gtab[i]; g; g = g->hnext)
            if (g->n_entries > 0)
                cb(arg, g->name);
}

int goff_group_has_offsets(goff_store *s, cn_str group)
{
    goff_group *g = group_find(s, group);
    return g && g->n_entries > 0;
}

int64_t goff_count(const goff_store *s)
{
    return (int64_t)s->n_nodes;
}

/* Group metadata ------------------------------------------------------------------ */

int goff_put_group_meta(goff_store *s, cn_str group, cn_bytes blob, int64_t *wait_target)
{
    if (!name_ok(group) || blob.len < -1 || blob.len > META_MAX || (blob.len > 0 && !blob.ptr))
        return -CN_EINVAL;
    goff_group *g = group_find(s, group);
    if (blob.len >= 0 || (g && g->meta_len >= 0)) {
        goff__recs rb;
        goff__recs_init(&rb);
        goff__recs_meta(&rb, group, blob.len >= 0 ? &blob : NULL);
        int rc = goff__recs_append(s, &rb, loop_wall_ms());
        goff__recs_fini(&rb);
        if (rc < 0)
            return rc;
        if (!g)
            g = group_get(s, group);
        group_set_meta(s, g, blob);
        group_release(s, g);
    }
    *wait_target = kvl_end(s->log);
    return 0;
}

cn_bytes goff_group_meta(goff_store *s, cn_str group)
{
    goff_group *g = group_find(s, group);
    if (!g || g->meta_len < 0)
        return (cn_bytes){NULL, -1};
    return (cn_bytes){g->meta, g->meta_len};
}

void goff_foreach_group_meta(goff_store *s, void (*cb)(void *arg, const char *group, cn_bytes blob),
                             void *arg)
{
    for (size_t i = 0; i <= s->gmask; i++)
        for (goff_group *g = s->gtab[i]; g; g = g->hnext)
            if (g->meta_len >= 0)
                cb(arg, g->name, (cn_bytes){g->meta, g->meta_len});
}

/* Expiry --------------------------------------------------------------------------- */

/* Write tombstones for v[0..n) in batches, removing each batch's nodes once
 * it is appended. Returns the number removed. */
static int remove_nodes(goff_store *s, goff_node **v, size_t n)
{
    goff__recs rb;
    goff__recs_init(&rb);
    int64_t now = loop_wall_ms();
    size_t done = 0;
    while (done < n) {
        size_t end = CN_MIN(n, done + KVL_COMPACT_BATCH_RECS);
        goff__recs_reset(&rb);
        for (size_t i = done; i < end; i++)
            goff__recs_offset(&rb, group_kstr(v[i]->g), node_topic(v[i]), v[i]->partition, NULL,
                              (cn_str){NULL, -1});
        int rc = goff__recs_append(s, &rb, now);
        if (rc < 0) {
            slog_error("%s: writing expiry tombstones failed: %s", BROKER_OFFSETS_TOPIC,
                       cn_strerror(rc));
            break;
        }
        for (size_t i = done; i < end; i++) {
            goff_group *g = v[i]->g;
            node_remove(s, v[i]);
            group_release(s, g);
        }
        done = end;
    }
    goff__recs_fini(&rb);
    return (int)done;
}

int goff_expire(goff_store *s, int64_t now_ms, int64_t retention_ms,
                int (*is_empty)(void *arg, cn_str group), void *arg)
{
    if (s->n_nodes == 0)
        return 0;
    goff_node **v = xmalloc(s->n_nodes * sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i <= s->gmask; i++)
        for (goff_group *g = s->gtab[i]; g; g = g->hnext) {
            if (g->n_entries == 0)
                continue;
            int whole = 0;
            if (retention_ms >= 0) {
                int64_t newest = INT64_MIN;
                for (goff_node *n = g->entries; n; n = n->gnext)
                    newest = CN_MAX(newest, n->e.commit_ms);
                whole = newest < now_ms - retention_ms && is_empty(arg, group_kstr(g)) == 1;
            }
            for (goff_node *n = g->entries; n; n = n->gnext)
                if (whole || (n->e.expire_ms >= 0 && n->e.expire_ms <= now_ms))
                    v[k++] = n;
        }
    int removed = k ? remove_nodes(s, v, k) : 0;
    free(v);
    if (removed)
        slog_info("%s: expired %d offset(s)", BROKER_OFFSETS_TOPIC, removed);
    return removed;
}

/* Compaction ------------------------------------------------------------------------ */

/* kvlog's compaction callback: every live record, each group's blob before
 * its offsets. */
static int compact_records(void *arg, kvl_compaction *cx)
{
    goff_store *s = arg;
    wbuf w;
    wbuf_init(&w);
    int rc = 0;
    size_t kl;
    for (size_t i = 0; i <= s->gmask && rc == 0; i++)
        for (goff_group *g = s->gtab[i]; g && rc == 0; g = g->hnext) {
            if (g->meta_len >= 0) {
                cn_bytes blob = {g->meta, g->meta_len};
                wbuf_reset(&w);
                goff__enc_meta(&w, group_kstr(g), &blob, &kl);
                rc = kvl_compact_add(cx, w.buf, (int32_t)kl, w.buf + kl,
                                     (int32_t)(w.len - kl));
            }
            for (goff_node *n = g->entries; n && rc == 0; n = n->gnext) {
                wbuf_reset(&w);
                goff__enc_offset(&w, group_kstr(g), node_topic(n), n->partition, &n->e,
                                 cn_str_c(n->e.metadata), &kl);
                rc = kvl_compact_add(cx, w.buf, (int32_t)kl, w.buf + kl,
                                     (int32_t)(w.len - kl));
            }
        }
    wbuf_fini(&w);
    return rc;
}

int goff_compact(goff_store *s)
{
    return kvl_compact(s->log);
}

int goff_maybe_compact(goff_store *s)
{
    return kvl_maybe_compact(s->log);
}

int goff_compacting(const goff_store *s)
{
    return kvl_compacting(s->log);
}
