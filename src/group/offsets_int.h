/* Private to src/group/offsets*.c: the store's structures and the record
 * codec (format in offsets.h). */
#ifndef CAIRN_GROUP_OFFSETS_INT_H
#define CAIRN_GROUP_OFFSETS_INT_H
#include <stddef.h>
#include <stdint.h>

#include "group/offsets.h"
#include "kvlog/kvlog.h"
#include "util/bin.h"
#include "record/batch.h"

/* One group: in the group table while it has offsets or a blob. */
typedef struct goff_group {
    char *name;                     /* owned, NUL-terminated copy */
    int32_t name_len;
    uint64_t hash;
    struct goff_group *hnext;       /* group table chain */
    struct goff_node *entries;      /* this group's offsets, doubly linked */
    int64_t n_entries;
    uint8_t *meta;                  /* owned blob; NULL with meta_len -1 = none */
    int32_t meta_len;
} goff_group;

/* One committed offset: in the node table, keyed by (group, topic, partition). */
typedef struct goff_node {
    goff_entry e;
    goff_group *g;
    char *topic;                    /* owned, NUL-terminated copy */
    int32_t topic_len;
    int32_t partition;
    uint64_t hash;
    struct goff_node *hnext;        /* node table chain */
    struct goff_node *gprev, *gnext;
    int64_t rec_bytes;              /* size of its record, for the live-bytes estimate */
} goff_node;

struct goff_store {
    kvl *log;                       /* __consumer_offsets */
    uint64_t seed;                  /* hash seed (names come from clients) */
    goff_group **gtab;
    size_t gmask, n_groups;
    goff_node **ntab;
    size_t nmask, n_nodes;
    int64_t live_bytes;             /* estimated bytes of a compacted log */
    int64_t loaded_term;            /* replicated: term whose state memory holds, 0 none */
    uint64_t generation;            /* goff_generation */
};

/* Records under construction: each is encoded into w, then copied into bt. */
typedef struct goff__recs {
    kvl_batch bt;
    wbuf w;
} goff__recs;

void goff__recs_init(goff__recs *rb);
void goff__recs_fini(goff__recs *rb);
void goff__recs_reset(goff__recs *rb);
/* Add one record; value NULL = tombstone, else its metadata field is
 * ignored and md (len -1 = null) is written instead. */
void goff__recs_offset(goff__recs *rb, cn_str group, cn_str topic, int32_t partition,
                       const goff_entry *value, cn_str md);
void goff__recs_meta(goff__recs *rb, cn_str group, const cn_bytes *blob);
/* Append the records as one batch (timestamp ts). 0 or -CN_E*. */
int goff__recs_append(goff_store *s, goff__recs *rb, int64_t ts);
/* Encode one record into w (appended): the key, then the value unless it is
 * a tombstone (value / blob NULL). *key_len is the key's size. */
void goff__enc_offset(wbuf *w, cn_str group, cn_str topic, int32_t partition, const goff_entry *value,
                      cn_str md, size_t *key_len);
void goff__enc_meta(wbuf *w, cn_str group, const cn_bytes *blob, size_t *key_len);

/* Record sizes, for the live-bytes estimate. */
int64_t goff__offset_rec_bytes(int32_t group_len, int32_t topic_len, int32_t meta_len);
int64_t goff__meta_rec_bytes(int32_t group_len, int32_t blob_len);

/* Decoded record (views into the record). kind GOFF_KEY_OFFSET or
 * GOFF_KEY_GROUP_META; tombstone 1 for a null value. */
typedef struct goff__rec {
    int kind;
    int tombstone;
    cn_str group;
    cn_str topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    cn_str metadata;
    int64_t commit_ms;
    int64_t expire_ms;
    cn_bytes blob;
} goff__rec;
/* Decode. Returns 0, or -CN_EPROTO with why set to a static reason. */
int goff__rec_decode(const batch_record *r, goff__rec *out, const char **why);
#endif
