/* Topic registry, persistence of topic metadata, periodic flush,
 * retention and producer snapshots, broker open/close. Partitions are in
 * broker_partition.c, file helpers in broker_fs.c. See broker.h. */
#include "broker/broker.h"
#include "broker/broker_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/pstate.h"
#include "record/batch.h"
#include "repl/repl.h"
#include "util/common.h"
#include "util/fault.h"
#include "util/slog.h"

/* Helpers ---------------------------------------------------------------- */

static uint32_t name_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static void random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* No entropy source: fall back to time-seeded bytes. */
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(rand() ^ loop_wall_ms() >> (i % 8));
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

static void uuid_hex(cn_uuid id, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[id.b[i] >> 4];
        out[2 * i + 1] = hx[id.b[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int uuid_parse(const char *s, cn_uuid *out)
{
    if (strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Accessors -------------------------------------------------------------- */

const cairn_config *broker_config(const broker *b) { return b->cfg; }
loop *broker_loop(broker *b) { return b->l; }
int32_t broker_node_id(const broker *b) { return b->cfg->node_id; }
const char *broker_adv_host(const broker *b) { return b->adv_host; }
int broker_adv_port(const broker *b) { return b->adv_port; }
const char *broker_cluster_id(const broker *b) { return b->cluster_id; }
const log_sync_stats *broker_sync_stats(const broker *b) { return log_syncer_stats(b->syncer); }
topic *broker_topics(broker *b) { return b->list; }
topic *broker_internal_topics(broker *b) { return b->internal; }

void broker_set_pid_floor(broker *b, int64_t floor)
{
    b->pid_floor = floor;
    b->pid_ready = 1;
}

int broker_pid_floor(const broker *b, int64_t *floor)
{
    *floor = b->pid_floor;
    return b->pid_ready;
}

void broker_set_leaving(broker *b, const int32_t *ids, int n)
{
    free(b->leaving);
    b->leaving = NULL;
    b->n_leaving = 0;
    if (n > 0) {
        b->leaving = xcalloc((size_t)n, sizeof(*b->leaving));
        memcpy(b->leaving, ids, (size_t)n * sizeof(*b->leaving));
        b->n_leaving = n;
    }
}

void broker_set_nodes(broker *b, const int32_t *ids, int n)
{
    if (!b->rg || n < 1)
        return;
    free(b->nodes);
    b->nodes = xcalloc((size_t)n, sizeof(*b->nodes));
    memcpy(b->nodes, ids, (size_t)n * sizeof(*b->nodes));
    b->n_nodes = n;
    /* The logs of every node: their replica count follows (their groups
     * take a new member in through their leaders, cluster_move.c). */
    for (topic *t = b->internal; t; t = t->lnext)
        if (t->rf > 1 && !t->assign)
            t->rf = CN_MAX(n, 2);
}
int broker_topic_count(const broker *b) { return b->n_topics; }

void broker_set_advertised(broker *b, const char *host, int port)
{
    snprintf(b->adv_host, sizeof(b->adv_host), "%s", host);
    b->adv_port = port;
}

void broker_listen_appends(broker *b, broker_listener *l)
{
    CN_ASSERT(l->cb != NULL);
    l->prev = NULL;
    l->next = b->listeners;
    if (b->listeners)
        b->listeners->prev = l;
    b->listeners = l;
}

void broker_unlisten_appends(broker *b, broker_listener *l)
{
    if (b->notify_next == l)
        b->notify_next = l->next;
    if (l->prev)
        l->prev->next = l->next;
    else if (b->listeners == l)
        b->listeners = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->next = l->prev = NULL;
}

int broker_topic_name_valid(cn_str name)
{
    if (name.len <= 0 || name.len > 249)
        return 0;
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
        return 0;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

topic *broker_topic_find(broker *b, cn_str name)
{
    if (name.len <= 0)
        return NULL;
    uint32_t h = name_hash(name.ptr, (size_t)name.len) % BROKER_HASH;
    for (topic *t = b->hash[h]; t; t = t->hnext)
        if (strlen(t->name) == (size_t)name.len && memcmp(t->name, name.ptr, (size_t)name.len) == 0)
            return t;
    return NULL;
}

topic *broker_topic_find_id(broker *b, cn_uuid id)
{
    for (topic *t = b->list; t; t = t->lnext)
        if (memcmp(t->id.b, id.b, 16) == 0)
            return t;
    return NULL;
}

partition *broker_partition(broker *b, cn_str name, int32_t part)
{
    topic *t = broker_topic_find(b, name);
    if (!t || part < 0 || part >= t->n_parts)
        return NULL;
    return t->parts[part];
}

/* Topic files ------------------------------------------------------------ */

int broker__topic_write_conf(broker *b, const topic *t)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s.conf", b->meta_dir, t->name);
    char idhex[33];
    uuid_hex(t->id, idhex);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return -CN_ENOMEM;
    fprintf(f, "topic.id=%s\npartitions=%d\n", idhex, t->n_parts);
    if (t->rf > 1)
        fprintf(f, "replication.factor=%d\n", t->rf);
    /* The placement, one line per partition: replicas.<p>=<id>,<id>... */
    for (int32_t i = 0; t->assign && i < t->n_parts; i++) {
        fprintf(f, "replicas.%d=", i);
        for (int32_t k = 0; k < t->rf; k++)
            fprintf(f, "%s%d", k ? "," : "", t->assign[(size_t)i * (size_t)t->rf + (size_t)k]);
        fputc('\n', f);
        broker__moves_write(t, i, f);
    }
    topic_config_write(&t->cfg, f);
    fclose(f);
    int rc = broker__write_atomic(b->meta_dir, path, buf, len);
    free(buf);
    if (rc < 0)
        slog_error("writing %s failed: %s", path, strerror(-rc));
    return rc;
}

static void topic_link(broker *b, topic *t)
{
    uint32_t h = name_hash(t->name, strlen(t->name)) % BROKER_HASH;
    t->hnext = b->hash[h];
    b->hash[h] = t;
    t->lnext = NULL;
    if (b->list_tail)
        b->list_tail->lnext = t;
    else
        b->list = t;
    b->list_tail = t;
    b->n_topics++;
}

static void topic_unlink(broker *b, topic *t)
{
    uint32_t h = name_hash(t->name, strlen(t->name)) % BROKER_HASH;
    for (topic **pp = &b->hash[h]; *pp; pp = &(*pp)->hnext)
        if (*pp == t) {
            *pp = t->hnext;
            break;
        }
    topic *prev = NULL;
    for (topic *x = b->list; x; prev = x, x = x->lnext)
        if (x == t) {
            if (prev)
                prev->lnext = t->lnext;
            else
                b->list = t->lnext;
            if (b->list_tail == t)
                b->list_tail = prev;
            break;
        }
    b->n_topics--;
}

static void topic_free(topic *t)
{
    broker__moves_free(t);
    free(t->assign);
    free(t->parts);
    free(t->name);
    free(t);
}

#define REP_ROW (CONFIG_MAX_PEERS + 1)

/* One replicas.<p>=<ids> line into the rows of *reps. 0 or -CN_EINVAL. */
static int parse_replicas(const char *pk, const char *v, int32_t **reps, int *n)
{
    char *end;
    long part = strtol(pk, &end, 10);
    if (*pk == '\0' || *end != '\0' || part < 0 || part >= BROKER_MAX_PARTITIONS)
        return -CN_EINVAL;
    int32_t row[REP_ROW];
    int k = 0;
    row[0] = (int32_t)part;
    const char *c = v;
    while (*c) {
        long id = strtol(c, &end, 10);
        if (end == c || id < 0 || id > INT32_MAX || k == CONFIG_MAX_PEERS)
            return -CN_EINVAL;
        row[1 + k++] = (int32_t)id;
        c = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -CN_EINVAL;
    }
    if (k == 0)
        return -CN_EINVAL;
    for (int i = k; i < CONFIG_MAX_PEERS; i++)
        row[1 + i] = -1;
    *reps = xrealloc(*reps, (size_t)(*n + 1) * REP_ROW * sizeof(int32_t));
    memcpy(*reps + (size_t)*n * REP_ROW, row, sizeof(row));
    (*n)++;
    return 0;
}

/* The rows parsed from a topic file into t->assign: one per partition,
 * rf ids each, every id a node of this cluster. 0 or -CN_ECORRUPT. */
static int take_assignment(broker *b, topic *t, int n_parts, const int32_t *reps, int n)
{
    if (t->rf < 1 || t->rf > CONFIG_MAX_PEERS || n != n_parts)
        return -CN_ECORRUPT;
    t->assign = xcalloc((size_t)n_parts * (size_t)t->rf, sizeof(int32_t));
    char *seen = xcalloc((size_t)n_parts, 1);
    int rc = 0;
    for (int r = 0; r < n && rc == 0; r++) {
        const int32_t *row = reps + (size_t)r * REP_ROW;
        int32_t part = row[0];
        if (part >= n_parts || seen[part] || (t->rf < CONFIG_MAX_PEERS && row[1 + t->rf] != -1)) {
            rc = -CN_ECORRUPT;
            break;
        }
        seen[part] = 1;
        for (int k = 0; k < t->rf; k++) {
            int known = row[1 + k] == b->cfg->node_id; /* itself, even while it joins again */
            for (int j = 0; j < b->n_nodes; j++)
                known |= b->nodes[j] == row[1 + k];
            if (!known || row[1 + k] < 0) {
                slog_error("topic %s: partition %d has a replica on node %d, not a node of "
                           "this cluster", t->name, part, row[1 + k]);
                rc = -CN_ECORRUPT;
                break;
            }
            t->assign[(size_t)part * (size_t)t->rf + (size_t)k] = row[1 + k];
        }
    }
    free(seen);
    if (rc < 0) {
        free(t->assign);
        t->assign = NULL;
    }
    return rc;
}

/* Place partitions [from, to) of t on the cluster's nodes (t->assign grows
 * to hold them). A single node places nothing (t->assign stays NULL). */
static void topic_place(broker *b, topic *t, int32_t from, int32_t to)
{
    if (b->n_nodes < 2)
        return;
    int32_t nodes[64];
    int n = broker__placeable(b, nodes);
    t->assign = xrealloc(t->assign, (size_t)to * (size_t)t->rf * sizeof(int32_t));
    for (int32_t i = from; i < to; i++)
        broker__place(t, i, nodes, n, t->assign + (size_t)i * (size_t)t->rf);
}

/* Load one .conf file. */
static int topic_load(broker *b, const char *name, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    topic *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->name = xstrdup(name);
    t->rf = 1;
    topic_config_defaults(b->cfg, &t->cfg);
    char line[1024];
    int n_parts = -1, lineno = 0, rc = 0;
    int32_t *reps = NULL; /* (partition, rf ids) rows, CONFIG_MAX_PEERS + 1 wide */
    int n_reps = 0;
    char *moves = NULL;   /* move lines (broker_move.c), taken once rf and rows are known */
    size_t moves_len = 0;
    FILE *mf = open_memstream(&moves, &moves_len);
    if (!mf) {
        fclose(f);
        topic_free(t);
        return -CN_ENOMEM;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = -CN_EINVAL;
            break;
        }
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "topic.id") == 0) {
            if (uuid_parse(v, &t->id) < 0)
                rc = -CN_EINVAL;
        } else if (strcmp(k, "partitions") == 0) {
            n_parts = atoi(v);
        } else if (strcmp(k, "replication.factor") == 0) {
            t->rf = atoi(v);
        } else if (strncmp(k, "replicas.", 9) == 0) {
            rc = parse_replicas(k + 9, v, &reps, &n_reps);
        } else if (broker__moves_key(k)) {
            fprintf(mf, "%s=%s\n", k, v);
        } else if (topic_config_set(&t->cfg, b->cfg, k, v) < 0) {
            slog_warn("%s:%d: ignoring bad topic config %s=%s", path, lineno, k, v);
        }
        if (rc < 0)
            break;
    }
    fclose(f);
    fclose(mf);
    if (rc == 0 && n_parts >= 1 && n_parts <= BROKER_MAX_PARTITIONS && n_reps > 0)
        rc = take_assignment(b, t, n_parts, reps, n_reps);
    if (rc == 0 && n_parts >= 1 && n_parts <= BROKER_MAX_PARTITIONS)
        rc = broker__moves_load(t, n_parts, moves);
    free(moves);
    free(reps);
    if (rc < 0 || n_parts < 1 || n_parts > BROKER_MAX_PARTITIONS) {
        slog_error("%s is damaged (line %d); topic %s not loaded", path, lineno, name);
        topic_free(t);
        return -CN_ECORRUPT;
    }
    if (t->rf > 1 && (!b->rg || (!t->assign && t->rf != b->n_nodes))) {
        /* A replicated topic needs its cluster: refuse to serve it alone,
         * which could take writes a majority never saw. */
        slog_error("topic %s has replication factor %d but this node runs %s; not loaded",
                   name, t->rf, b->rg ? "a cluster of another size" : "alone");
        topic_free(t);
        return -CN_ECORRUPT;
    }
    t->parts = xcalloc((size_t)n_parts, sizeof(*t->parts));
    for (int32_t i = 0; i < n_parts; i++) {
        rc = broker__partition_open(b, t, i, &t->parts[i]);
        if (rc < 0) {
            slog_error("opening partition %s-%d failed: %s", name, i, strerror(-rc));
            for (int32_t j = 0; j < i; j++)
                broker__partition_close(t->parts[j], 0);
            topic_free(t);
            return rc;
        }
        t->n_parts = i + 1;
    }
    topic_link(b, t);
    broker__moves_count(t, 1);
    return 0;
}

int broker_topic_name_reserved(cn_str name)
{
    size_t pl = sizeof(BROKER_AMQP_QUEUE_PREFIX) - 1;
    return cn_str_eq(name, BROKER_OFFSETS_TOPIC) || cn_str_eq(name, BROKER_TXN_TOPIC) ||
           cn_str_eq(name, BROKER_AMQP_META_TOPIC) || cn_str_eq(name, BROKER_CLUSTER_META_TOPIC) ||
           cn_str_eq(name, BROKER_WEBHOOKS_TOPIC) || cn_str_eq(name, BROKER_USERS_TOPIC) ||
           cn_str_eq(name, BROKER_ACLS_TOPIC) ||
           cn_str_eq(name, BROKER_PIDS_TOPIC) ||
           (name.len >= (int32_t)pl && memcmp(name.ptr, BROKER_AMQP_QUEUE_PREFIX, pl) == 0);
}

static int internal_open(broker *b, const char *name, int32_t rf, const int32_t *boot, int first,
                         partition **out);

int broker_internal_partition(broker *b, const char *name, partition **out)
{
    return internal_open(b, name, 1, NULL, 0, out);
}

int broker_internal_partition_replicated(broker *b, const char *name, partition **out)
{
    if (!b->rg) {
        *out = NULL;
        return -CN_EINVAL;
    }
    /* A joined node's copy is a Raft log even while it knows one member
     * (its seed) and is none itself. */
    return internal_open(b, name, b->joined ? CN_MAX(b->n_nodes, 2) : b->n_nodes, NULL, 0, out);
}

int broker_internal_partition_voters(broker *b, const char *name, const int32_t *voters, int n,
                                     int first, partition **out)
{
    *out = NULL;
    if (!b->rg || n < 1 || n > CONFIG_MAX_PEERS)
        return -CN_EINVAL;
    /* A group of one voter would be a plain log (rf 1): such a group still
     * has two rows, the second empty (group_open counts the voters). */
    int32_t row[CONFIG_MAX_PEERS + 1];
    int rf = CN_MAX(n, 2);
    for (int i = 0; i < rf; i++)
        row[i] = i < n ? voters[i] : -1;
    return internal_open(b, name, rf, row, first, out);
}

static int internal_open(broker *b, const char *name, int32_t rf, const int32_t *boot, int first,
                         partition **out)
{
    *out = NULL;
    for (topic *t = b->internal; t; t = t->lnext)
        if (strcmp(t->name, name) == 0) {
            *out = t->parts[0];
            return 0;
        }
    topic *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->name = xstrdup(name);
    topic_config_defaults(b->cfg, &t->cfg);
    t->cfg.retention_ms = -1;
    t->cfg.retention_bytes = -1;
    t->cfg.segment_bytes = strcmp(name, BROKER_OFFSETS_TOPIC) == 0 ? b->cfg->offsets_segment_bytes
                           : strcmp(name, BROKER_TXN_TOPIC) == 0   ? b->cfg->txn_segment_bytes
                                                                   : 100 * 1024 * 1024;
    t->rf = rf;
    if (boot) {
        t->boot = xmalloc((size_t)rf * sizeof(*t->boot));
        memcpy(t->boot, boot, (size_t)rf * sizeof(*t->boot));
    }
    t->first = (uint8_t)first;
    t->parts = xcalloc(1, sizeof(*t->parts));
    int rc = broker__partition_open(b, t, 0, &t->parts[0]);
    t->first = 0;
    if (rc < 0) {
        slog_error("opening internal log %s failed: %s", name, strerror(-rc));
        topic_free(t);
        return rc;
    }
    t->n_parts = 1;
    t->lnext = b->internal;
    b->internal = t;
    *out = t->parts[0];
    return 0;
}

void broker_internal_partition_drop(broker *b, const char *name)
{
    for (topic **pp = &b->internal; *pp; pp = &(*pp)->lnext) {
        topic *t = *pp;
        if (strcmp(t->name, name) != 0)
            continue;
        *pp = t->lnext;
        broker__partition_close(t->parts[0], 1);
        t->parts[0] = NULL;
        slog_info("dropped internal log %s", name);
        topic_free(t);
        break;
    }
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/%s-0", b->dir, name);
    broker__rm_rf(dir);
}

/* Remove partition directories that belong to no topic. */
static void remove_orphans(broker *b)
{
    DIR *d = opendir(b->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *dash = strrchr(e->d_name, '-');
        if (!dash || dash == e->d_name || dash[1] == '\0')
            continue;
        char *end;
        long part = strtol(dash + 1, &end, 10);
        if (*end != '\0' || part < 0)
            continue;
        cn_str name = {e->d_name, (int32_t)(dash - e->d_name)};
        if (broker_topic_name_reserved(name))
            continue;
        topic *t = broker_topic_find(b, name);
        if (t && part < t->n_parts)
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", b->dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        slog_warn("removing %s: no topic owns it (interrupted create or delete)", path);
        broker__rm_rf(path);
    }
    closedir(d);
}

static int write_meta(broker *b)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/meta.properties", b->dir);
    char content[128];
    int n = snprintf(content, sizeof(content), "version=1\ncluster.id=%s\nnode.id=%d\n",
                     b->cluster_id, b->cfg->node_id);
    return broker__write_atomic(b->dir, path, content, (size_t)n);
}

int broker_set_cluster_id(broker *b, const char *id)
{
    if (strcmp(b->cluster_id, id) == 0)
        return 0;
    slog_info("cluster id %s (was %s): the cluster's", id, b->cluster_id);
    snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", id);
    int rc = write_meta(b);
    if (rc < 0)
        slog_error("cannot write %s/meta.properties: %s", b->dir, strerror(-rc));
    return rc < 0 ? -CN_EIO : 0;
}

static int load_meta(broker *b)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/meta.properties", b->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (strncmp(line, "cluster.id=", 11) == 0)
                snprintf(b->cluster_id, sizeof(b->cluster_id), "%.31s", line + 11);
        }
        fclose(f);
        if (b->cluster_id[0])
            return 0;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t rnd[22];
    random_bytes(rnd, sizeof(rnd));
    if (b->rg) {
        /* Every node of a cluster must report the same id (clients refuse
         * brokers of different clusters): derive it from the node ids
         * until the metadata group stores one (cluster plan step 5). */
        uint64_t h = 0xcbf29ce484222325ull;
        for (int i = 0; i < b->n_nodes; i++)
            for (int k = 0; k < 4; k++)
                h = (h ^ (uint8_t)((uint32_t)b->nodes[i] >> (8 * k))) * 0x100000001b3ull;
        for (int i = 0; i < 22; i++) {
            h = (h ^ (uint64_t)i) * 0x100000001b3ull;
            rnd[i] = (uint8_t)(h >> 29);
        }
    }
    for (int i = 0; i < 22; i++)
        b->cluster_id[i] = b64[rnd[i] & 63];
    b->cluster_id[22] = '\0';
    return write_meta(b);
}

/* Timers and hooks -------------------------------------------------------- */

static void flush_topics(topic *list)
{
    for (topic *t = list; t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++) {
            log_partition *lp = t->parts[i]->log;
            if (!t->parts[i]->remote && log_durable_offset(lp) < log_end_offset(lp))
                log_sync_request(lp);
        }
}

/* Every log.flush.interval.ms: topics and internal partitions (kvlogs such
 * as __amqp_meta, AMQP queue partitions) alike. */
static void flush_timer_cb(loop_timer *tm)
{
    broker *b = tm->data;
    flush_topics(b->list);
    flush_topics(b->internal);
    loop_timer_start(b->l, tm, b->cfg->flush_interval_ms);
}

static void retention_timer_cb(loop_timer *tm)
{
    broker *b = tm->data;
    int64_t now = loop_wall_ms();
    for (topic *t = b->list; t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++) {
            partition *p = t->parts[i];
            int n;
            if (p->remote)
                continue;
            if (p->rg) {
                /* A replicated log moves its start by a Raft snapshot, on
                 * each replica, over committed entries only. */
                int64_t before = log_start_offset(p->log);
                n = rg_compact(p->rg, now) > 0;
                if (n)
                    slog_info("retention moved the start of %s-%d from %lld to %lld (snapshot)",
                              t->name, i, (long long)before,
                              (long long)log_start_offset(p->log));
            } else {
                n = log_enforce_retention(p->log, now);
                if (n > 0)
                    slog_info("retention deleted %d segment(s) of %s-%d", n, t->name, i);
            }
            if (n > 0) {
                pst_truncate_head(p->ps, log_start_offset(p->log));
            }
        }
    /* Replicated internal logs (offsets, transactions): their compaction
     * moves the log start through the group; the segments below it go by
     * a snapshot here (they have no retention of their own). */
    for (topic *t = b->internal; t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++)
            if (t->parts[i]->rg && rg_compact(t->parts[i]->rg, now) > 0)
                slog_info("log start of %s-%d now %lld: segments below it deleted (snapshot)",
                          t->name, i, (long long)log_start_offset(t->parts[i]->log));
    loop_timer_start(b->l, tm, b->cfg->retention_check_ms);
}

/* Producer-state snapshots bound the replay after a crash. */
#define BROKER_SNAPSHOT_MS 30000
static void snapshot_timer_cb(loop_timer *tm)
{
    broker *b = tm->data;
    int64_t now = loop_wall_ms();
    for (topic *t = b->list; t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++) {
            int n = pst_expire(t->parts[i]->ps, now, b->cfg->producer_id_expiration_ms);
            if (n > 0)
                slog_info("%s-%d: %d idle producer(s) expired", t->name, i, n);
            broker__partition_snapshot(t->parts[i]);
        }
    loop_timer_start(b->l, tm, BROKER_SNAPSHOT_MS);
}

static void append_hook(void *arg)
{
    broker *b = arg;
    if (!b->appended)
        return;
    b->appended = 0;
    /* notify_next lets a callback remove itself or any other listener. */
    for (broker_listener *l = b->listeners; l; l = b->notify_next) {
        b->notify_next = l->next;
        l->cb(l);
    }
    b->notify_next = NULL;
}

static void syncer_io_cb(loop_io *io, uint32_t events)
{
    (void)events;
    broker *b = io->data;
    log_syncer_drain(b->syncer);
}

/* Open / close ------------------------------------------------------------ */

int broker_open(cairn_config *cfg, loop *l, broker **out)
{
    return broker_open_repl(cfg, l, NULL, out);
}

const int32_t *broker_nodes(const broker *b, int *n)
{
    *n = b->n_nodes;
    return b->nodes;
}

int broker_open_repl(cairn_config *cfg, loop *l, const broker_repl *repl, broker **out)
{
    *out = NULL;
    broker *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->l = l;
    /* Before anything can fail: broker_close stops them. */
    loop_timer_init(&b->flush_timer, flush_timer_cb, b);
    loop_timer_init(&b->retention_timer, retention_timer_cb, b);
    loop_timer_init(&b->commit_timer, broker__commit_timer_cb, b);
    loop_timer_init(&b->snapshot_timer, snapshot_timer_cb, b);
    if (repl && repl->node && repl->n_nodes > 0) {
        b->rg = repl->node;
        b->n_nodes = repl->n_nodes;
        b->nodes = xcalloc((size_t)repl->n_nodes, sizeof(*b->nodes));
        memcpy(b->nodes, repl->nodes, (size_t)repl->n_nodes * sizeof(*b->nodes));
        b->joined = repl->joined;
    } else {
        b->n_nodes = 1;
        b->nodes = xcalloc(1, sizeof(*b->nodes));
        b->nodes[0] = cfg->node_id;
    }
    b->dir = xstrdup(cfg->log_dirs);
    size_t n = strlen(b->dir) + 16;
    b->meta_dir = xmalloc(n);
    snprintf(b->meta_dir, n, "%s/.topics", b->dir);
    fault_init(b->dir);
    int rc = broker__mkdir_p(b->meta_dir);
    if (rc < 0) {
        slog_error("cannot create data directory %s: %s", b->meta_dir, strerror(-rc));
        goto fail;
    }
    rc = load_meta(b);
    if (rc < 0) {
        slog_error("cannot write %s/meta.properties: %s", b->dir, strerror(-rc));
        goto fail;
    }
    rc = log_syncer_new(&b->syncer, cfg->sync_threads);
    if (rc < 0) {
        slog_error("cannot start the fsync threads: %s", strerror(-rc));
        goto fail;
    }
    rc = loop_io_start(l, &b->sync_io, log_syncer_fd(b->syncer), EPOLLIN,
                       syncer_io_cb, b);
    if (rc < 0)
        goto fail;
    if (b->rg)
        rg_node_set_syncer(b->rg, b->syncer);
    DIR *d = opendir(b->meta_dir);
    if (!d) {
        rc = -errno;
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        char name[256];
        if (len - 5 >= sizeof(name))
            continue;
        memcpy(name, e->d_name, len - 5);
        name[len - 5] = '\0';
        if (!broker_topic_name_valid(cn_str_c(name)))
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", b->meta_dir, e->d_name);
        rc = topic_load(b, name, path);
        if (rc < 0 && rc != -CN_ECORRUPT) {
            closedir(d);
            goto fail;
        }
    }
    closedir(d);
    remove_orphans(b);
    if (cfg->flush_interval_ms > 0)
        loop_timer_start(l, &b->flush_timer, cfg->flush_interval_ms);
    loop_timer_start(l, &b->retention_timer, cfg->retention_check_ms);
    loop_timer_start(l, &b->snapshot_timer, BROKER_SNAPSHOT_MS);
    loop_add_hook(l, append_hook, b);
    slog_info("data directory %s: %d topic(s) loaded, cluster id %s", b->dir, b->n_topics,
              b->cluster_id);
    *out = b;
    return 0;
fail:
    broker_close(b);
    return rc < 0 ? rc : -CN_EIO;
}

void broker_close(broker *b)
{
    if (!b)
        return;
    loop_timer_stop(b->l, &b->flush_timer);
    loop_timer_stop(b->l, &b->retention_timer);
    loop_timer_stop(b->l, &b->snapshot_timer);
    loop_timer_stop(b->l, &b->commit_timer);
    while (b->list) {
        topic *t = b->list;
        topic_unlink(b, t);
        for (int32_t i = 0; i < t->n_parts; i++)
            broker__partition_close(t->parts[i], 0);
        topic_free(t);
    }
    while (b->internal) {
        topic *t = b->internal;
        b->internal = t->lnext;
        for (int32_t i = 0; i < t->n_parts; i++)
            broker__partition_close(t->parts[i], 0);
        topic_free(t);
    }
    if (b->empty_log)
        log_partition_close(b->empty_log);
    if (b->syncer) {
        loop_io_stop(b->l, &b->sync_io);
        log_syncer_free(b->syncer);
    }
    free(b->meta_dir);
    free(b->dir);
    free(b->nodes);
    free(b->leaving);
    free(b);
}

/* Topic lifecycle ---------------------------------------------------------- */

static int check_configs(broker *b, topic_config *tc, const broker_kv *configs, int n,
                             char *msg, size_t msg_len)
{
    for (int i = 0; i < n; i++) {
        char key[128], val[256];
        if (configs[i].key.len <= 0 || configs[i].key.len >= (int32_t)sizeof(key)) {
            snprintf(msg, msg_len, "invalid config key");
            return -CN_ECONFIG;
        }
        memcpy(key, configs[i].key.ptr, (size_t)configs[i].key.len);
        key[configs[i].key.len] = '\0';
        const char *v = NULL;
        if (configs[i].value.len >= 0) {
            if (configs[i].value.len >= (int32_t)sizeof(val)) {
                snprintf(msg, msg_len, "value of %s too long", key);
                return -CN_ECONFIG;
            }
            memcpy(val, configs[i].value.ptr, (size_t)configs[i].value.len);
            val[configs[i].value.len] = '\0';
            v = val;
        }
        int rc = topic_config_set(tc, b->cfg, key, v);
        if (rc == -CN_ENOENT) {
            snprintf(msg, msg_len, "unknown topic config %s", key);
            return -CN_ECONFIG;
        }
        if (rc < 0) {
            snprintf(msg, msg_len, "invalid value %s for topic config %s", v ? v : "null", key);
            return -CN_ECONFIG;
        }
    }
    return 0;
}

int broker_topic_create(broker *b, cn_str name, int32_t n_parts, const broker_kv *configs,
                            int n_configs, int validate_only, char *msg, size_t msg_len,
                            topic **out)
{
    return broker_topic_create_rf(b, name, n_parts, -1, configs, n_configs, NULL, validate_only,
                                  msg, msg_len, out);
}

static int topic_create(broker *b, cn_str name, int32_t n_parts, int32_t rf, const cn_uuid *id,
                        const broker_kv *configs, int n_configs, const int32_t *assign,
                        int validate_only, char *msg, size_t msg_len, topic **out);

int broker_topic_create_rf(broker *b, cn_str name, int32_t n_parts, int32_t rf,
                           const broker_kv *configs, int n_configs, const int32_t *assign,
                           int validate_only, char *msg, size_t msg_len, topic **out)
{
    return topic_create(b, name, n_parts, rf, NULL, configs, n_configs, assign, validate_only,
                        msg, msg_len, out);
}

int broker_topic_create_id(broker *b, cn_str name, int32_t n_parts, int32_t rf, cn_uuid id,
                           const broker_kv *configs, int n_configs, const int32_t *assign,
                           char *msg, size_t msg_len, topic **out)
{
    return topic_create(b, name, n_parts, rf, &id, configs, n_configs, assign, 0, msg, msg_len,
                        out);
}

int broker_check_assignment(const broker *b, const int32_t *assign, int32_t n_parts, int32_t rf,
                            char *msg, size_t msg_len)
{
    if (rf < 1 || rf > b->n_nodes || n_parts < 1 || n_parts > BROKER_MAX_PARTITIONS) {
        snprintf(msg, msg_len, "an assignment needs 1 to %d replicas per partition and 1 to %d "
                 "partitions", b->n_nodes, BROKER_MAX_PARTITIONS);
        return -CN_EASSIGN;
    }
    for (int32_t i = 0; i < n_parts; i++) {
        const int32_t *a = assign + (size_t)i * (size_t)rf;
        for (int32_t k = 0; k < rf; k++) {
            int known = 0, twice = 0;
            for (int j = 0; j < b->n_nodes; j++)
                known |= b->nodes[j] == a[k];
            for (int32_t j = 0; j < k; j++)
                twice |= a[j] == a[k];
            if (!known || twice) {
                snprintf(msg, msg_len, "partition %d: %s node %d", i,
                         twice ? "lists twice" : "names no broker of this cluster:", a[k]);
                return -CN_EASSIGN;
            }
        }
    }
    return 0;
}

static int topic_create(broker *b, cn_str name, int32_t n_parts, int32_t rf, const cn_uuid *id,
                        const broker_kv *configs, int n_configs, const int32_t *assign,
                        int validate_only, char *msg, size_t msg_len, topic **out)
{
    if (out)
        *out = NULL;
    msg[0] = '\0';
    if (rf == -1)
        rf = b->cfg->default_replication_factor;
    if (rf == -1)
        rf = b->n_nodes;
    /* A metadata record's assignment (id and assign given) was checked by
     * the controller against the members of its time; a node applying it
     * later, or replaying it after joining, may know other members (one
     * since removed, or itself not yet registered again): taken as it is. */
    int recorded = id && assign;
    if (rf < 1 || (!recorded && rf > b->n_nodes) || rf > CONFIG_MAX_PEERS) {
        snprintf(msg, msg_len, "replication factor %d: it must be between 1 and the %d node(s) "
                 "of this cluster", rf, b->n_nodes);
        return -CN_EREPLICATION;
    }
    if (assign && !recorded) {
        int rc = broker_check_assignment(b, assign, n_parts, rf, msg, msg_len);
        if (rc < 0)
            return rc;
    }
    if (!broker_topic_name_valid(name)) {
        snprintf(msg, msg_len, "topic name is illegal: it must be 1-249 characters of [a-zA-Z0-9._-]");
        return -CN_EBADNAME;
    }
    if (broker_topic_find(b, name) || broker_topic_name_reserved(name)) {
        snprintf(msg, msg_len, "topic '%.*s' already exists%s", name.len, name.ptr,
                 broker_topic_name_reserved(name) ? " (internal)" : "");
        return -CN_EEXIST;
    }
    if (n_parts == -1)
        n_parts = b->cfg->num_partitions;
    if (n_parts < 1 || n_parts > BROKER_MAX_PARTITIONS) {
        snprintf(msg, msg_len, "number of partitions must be between 1 and %d",
                 BROKER_MAX_PARTITIONS);
        return -CN_EPARTITIONS;
    }
    topic *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->name = xmalloc((size_t)name.len + 1);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = '\0';
    topic_config_defaults(b->cfg, &t->cfg);
    int err = check_configs(b, &t->cfg, configs, n_configs, msg, msg_len);
    if (err || validate_only) {
        topic_free(t);
        return err;
    }
    if (id)
        t->id = *id;
    else
        random_bytes(t->id.b, 16);
    t->rf = rf;
    if (assign && b->n_nodes > 1) {
        size_t n = (size_t)n_parts * (size_t)rf;
        t->assign = xmalloc(n * sizeof(int32_t));
        memcpy(t->assign, assign, n * sizeof(int32_t));
    } else {
        topic_place(b, t, 0, n_parts);
    }
    t->parts = xcalloc((size_t)n_parts, sizeof(*t->parts));
    for (int32_t i = 0; i < n_parts; i++) {
        /* A leftover directory from an interrupted create/delete is not ours. */
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s/%s-%d", b->dir, t->name, i);
        broker__rm_rf(dir);
        int rc = broker__partition_open(b, t, i, &t->parts[i]);
        if (rc < 0) {
            snprintf(msg, msg_len, "cannot create partition %d: %s", i, strerror(-rc));
            for (int32_t j = 0; j < i; j++)
                broker__partition_close(t->parts[j], 1);
            topic_free(t);
            return -CN_EIO;
        }
        t->n_parts = i + 1;
    }
    broker__fsync_dir(b->dir);
    if (broker__topic_write_conf(b, t) < 0) {
        snprintf(msg, msg_len, "cannot write topic metadata");
        for (int32_t j = 0; j < t->n_parts; j++)
            broker__partition_close(t->parts[j], 1);
        topic_free(t);
        return -CN_EIO;
    }
    topic_link(b, t);
    slog_info("created topic %s with %d partition(s), replication factor %d", t->name,
              t->n_parts, t->rf);
    if (out)
        *out = t;
    return 0;
}

topic *broker_topic_auto_create(broker *b, cn_str name)
{
    topic *t = broker_topic_find(b, name);
    if (t || !b->cfg->auto_create_topics || b->rg)
        return t; /* a cluster creates topics through its metadata group only */
    char msg[256];
    if (broker_topic_create(b, name, -1, NULL, 0, 0, msg, sizeof(msg), &t) != 0) {
        slog_warn("auto-create of topic '%.*s' failed: %s", name.len, name.ptr, msg);
        return NULL;
    }
    return t;
}

int broker_topic_delete(broker *b, topic *t)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s.conf", b->meta_dir, t->name);
    if (unlink(path) < 0 && errno != ENOENT) {
        slog_error("deleting %s failed: %s", path, strerror(errno));
        return -CN_EIO;
    }
    broker__fsync_dir(b->meta_dir);
    broker__moves_count(t, -1);
    topic_unlink(b, t);
    for (int32_t i = 0; i < t->n_parts; i++)
        broker__partition_close(t->parts[i], 1);
    slog_info("deleted topic %s", t->name);
    topic_free(t);
    return 0;
}

static int add_partitions(broker *b, topic *t, int32_t n_parts, const int32_t *assign,
                          int validate_only, int recorded, char *msg, size_t msg_len);

int broker_topic_add_partitions(broker *b, topic *t, int32_t n_parts, const int32_t *assign,
                                int validate_only, char *msg, size_t msg_len)
{
    return add_partitions(b, t, n_parts, assign, validate_only, 0, msg, msg_len);
}

int broker_topic_add_partitions_recorded(broker *b, topic *t, int32_t n_parts,
                                         const int32_t *assign, char *msg, size_t msg_len)
{
    return add_partitions(b, t, n_parts, assign, 0, 1, msg, msg_len);
}

static int add_partitions(broker *b, topic *t, int32_t n_parts, const int32_t *assign,
                          int validate_only, int recorded, char *msg, size_t msg_len)
{
    msg[0] = '\0';
    if (n_parts <= t->n_parts) {
        snprintf(msg, msg_len, "topic currently has %d partitions, %d would not be an increase",
                 t->n_parts, n_parts);
        return -CN_EPARTITIONS;
    }
    if (n_parts > BROKER_MAX_PARTITIONS) {
        snprintf(msg, msg_len, "at most %d partitions", BROKER_MAX_PARTITIONS);
        return -CN_EPARTITIONS;
    }
    if (assign) {
        /* A record's assignment: checked by the controller (topic_create). */
        int rc = recorded ? 0 : broker_check_assignment(b, assign, n_parts - t->n_parts, t->rf,
                                                        msg, msg_len);
        if (rc == 0 && !t->assign && t->rf > 1) {
            snprintf(msg, msg_len, "topic %s was created before placement: its new partitions "
                     "go on every node", t->name);
            rc = -CN_EASSIGN;
        }
        if (rc < 0)
            return rc;
    }
    if (validate_only)
        return 0;
    partition **np = xrealloc(t->parts, (size_t)n_parts * sizeof(*np));
    t->parts = np;
    int32_t old = t->n_parts;
    if (assign && t->assign) {
        size_t rf = (size_t)t->rf;
        t->assign = xrealloc(t->assign, (size_t)n_parts * rf * sizeof(int32_t));
        memcpy(t->assign + (size_t)old * rf, assign, (size_t)(n_parts - old) * rf * sizeof(int32_t));
    } else if (t->assign) {
        topic_place(b, t, old, n_parts);
    }
    broker__moves_grow(t, old, n_parts);
    for (int32_t i = old; i < n_parts; i++) {
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s/%s-%d", b->dir, t->name, i);
        broker__rm_rf(dir);
        int rc = broker__partition_open(b, t, i, &t->parts[i]);
        if (rc < 0) {
            for (int32_t j = old; j < i; j++)
                broker__partition_close(t->parts[j], 1);
            t->n_parts = old;
            snprintf(msg, msg_len, "cannot create partition %d: %s", i, strerror(-rc));
            return -CN_EIO;
        }
        t->n_parts = i + 1;
    }
    broker__fsync_dir(b->dir);
    if (broker__topic_write_conf(b, t) < 0) {
        for (int32_t j = old; j < n_parts; j++)
            broker__partition_close(t->parts[j], 1);
        t->n_parts = old;
        snprintf(msg, msg_len, "cannot write topic metadata");
        return -CN_EIO;
    }
    slog_info("topic %s now has %d partitions", t->name, t->n_parts);
    return 0;
}

int broker_topic_set_config(broker *b, topic *t, const char *key, const char *value,
                                int validate_only, char *msg, size_t msg_len)
{
    msg[0] = '\0';
    topic_config tc = t->cfg;
    int rc = topic_config_set(&tc, b->cfg, key, value);
    if (rc == -CN_ENOENT) {
        snprintf(msg, msg_len, "unknown topic config %s", key);
        return -CN_ECONFIG;
    }
    if (rc < 0) {
        snprintf(msg, msg_len, "invalid value %s for topic config %s", value ? value : "null", key);
        return -CN_ECONFIG;
    }
    if (validate_only)
        return 0;
    topic_config old = t->cfg;
    t->cfg = tc;
    if (broker__topic_write_conf(b, t) < 0) {
        t->cfg = old;
        snprintf(msg, msg_len, "cannot write topic metadata");
        return -CN_EIO;
    }
    log_options o;
    broker__log_options(t, b->cfg, &o);
    for (int32_t i = 0; i < t->n_parts; i++)
        if (!t->parts[i]->remote)
            log_partition_set_options(t->parts[i]->log, &o);
    return 0;
}
