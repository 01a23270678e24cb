/* Placement: which nodes hold the replicas of a partition (cluster plan
 * section 7). Computed once, when the partition is created, by every node
 * from what the metadata record gives them all (topic name and id,
 * replication factor, partition index) and the cluster's node ids; the
 * topic's .conf file keeps the result, which is the truth afterwards.
 *
 * Replication factor = node count: every node, in id order rotated by a
 * hash of the topic name plus the partition index (the order Metadata shows
 * and the preferred leader first; a topic's partitions prefer the nodes in
 * turn). This is the order topics created before placement get
 * (broker_balance.c), so they and new ones agree.
 *
 * Fewer replicas: rendezvous (highest random weight) hashing. Each node
 * gets the weight splitmix64(FNV-1a 64 of the 16 bytes of the topic id,
 * the partition index as 4 bytes big-endian and the node id as 4 bytes
 * big-endian)); the rf heaviest nodes are the replicas, heaviest first
 * (ties: lower id first). Adding or removing a node changes a partition's
 * set only where that node enters or leaves its top rf. */
#include "broker/broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define PLACE_MAX_NODES 64

static uint64_t fnv1a64(uint64_t h, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t broker__place_weight(const cn_uuid *topic_id, int32_t part, int32_t node)
{
    uint8_t buf[24];
    memcpy(buf, topic_id->b, 16);
    for (int i = 0; i < 4; i++) {
        buf[16 + i] = (uint8_t)((uint32_t)part >> (24 - 8 * i));
        buf[20 + i] = (uint8_t)((uint32_t)node >> (24 - 8 * i));
    }
    return mix64(fnv1a64(0xcbf29ce484222325ull, buf, sizeof(buf)));
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct weighed {
    uint64_t w;
    int32_t id;
} weighed;

static int cmp_weighed(const void *a, const void *b)
{
    const weighed *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void broker__place(const topic *t, int32_t part, const int32_t *nodes, int n, int32_t *out)
{
    n = CN_MIN(n, PLACE_MAX_NODES);
    if (t->rf >= n) {
        int32_t v[PLACE_MAX_NODES];
        memcpy(v, nodes, (size_t)n * sizeof(v[0]));
        qsort(v, (size_t)n, sizeof(v[0]), cmp_i32);
        uint32_t h = 2166136261u; /* FNV-1a 32 of the topic name */
        for (const char *c = t->name; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        int start = (int)((h + (uint32_t)part) % (uint32_t)n);
        for (int i = 0; i < n; i++)
            out[i] = v[(start + i) % n];
        return;
    }
    weighed w[PLACE_MAX_NODES];
    for (int i = 0; i < n; i++)
        w[i] = (weighed){broker__place_weight(&t->id, part, nodes[i]), nodes[i]};
    qsort(w, (size_t)n, sizeof(w[0]), cmp_weighed);
    for (int i = 0; i < t->rf; i++)
        out[i] = w[i].id;
}

int broker__placeable(const broker *b, int32_t *out)
{
    int n = 0;
    for (int i = 0; i < b->n_nodes && n < PLACE_MAX_NODES; i++)
        if (!cn_row_has(b->leaving, b->n_leaving, b->nodes[i]))
            out[n++] = b->nodes[i];
    return n;
}

int broker_place_new(const broker *b, const char *name, const cn_uuid *id, int32_t from,
                     int32_t to, int32_t rf, int32_t *out)
{
    int32_t nodes[PLACE_MAX_NODES];
    int n = broker__placeable(b, nodes);
    if (rf < 1 || rf > n)
        return -CN_EREPLICATION;
    topic t;
    memset(&t, 0, sizeof(t));
    t.name = (char *)name;
    t.id = *id;
    t.rf = rf;
    for (int32_t i = from; i < to; i++)
        broker__place(&t, i, nodes, n, out + (size_t)(i - from) * (size_t)rf);
    return 0;
}

int broker_place_replacement(const broker *b, const topic *t, int32_t part, int32_t leaving,
                             int32_t *out)
{
    const int32_t *row = broker__replicas_of(t, part);
    int at = -1;
    for (int k = 0; row && k < t->rf; k++)
        if (row[k] == leaving)
            at = k;
    if (at < 0)
        return -CN_ENOENT;
    int32_t nodes[PLACE_MAX_NODES];
    int n = broker__placeable(b, nodes);
    int32_t best = -1;
    uint64_t best_w = 0;
    for (int i = 0; i < n; i++) {
        if (cn_row_has(row, t->rf, nodes[i]))
            continue;
        uint64_t w = broker__place_weight(&t->id, part, nodes[i]);
        if (best < 0 || w > best_w || (w == best_w && nodes[i] < best)) {
            best = nodes[i];
            best_w = w;
        }
    }
    if (best < 0)
        return -CN_EREPLICATION;
    memcpy(out, row, (size_t)t->rf * sizeof(*out));
    out[at] = best;
    return 0;
}
