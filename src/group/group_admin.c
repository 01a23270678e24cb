/* Group admin queries: DescribeGroups, ListGroups, DeleteGroups, and the
 * checks OffsetDelete and offsets expiry need. See group.h. */
#include "group/group_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "util/slog.h"

/* Admin ---------------------------------------------------------------------- */

static void describe_group(grp *g, void (*cb)(void *arg, const grp_info *info), void *arg)
{
    grp_member_info *mi = xcalloc((size_t)(g->n_members > 0 ? g->n_members : 1), sizeof(*mi));
    int n = 0;
    for (grp_member *m = g->members; m; m = m->next) {
        const grp_proto *p = grp__member_proto(m, g->protocol_name);
        mi[n].member_id = m->id;
        mi[n].instance_id = m->instance_id;
        mi[n].client_id = m->client_id;
        mi[n].client_host = m->client_host;
        mi[n].metadata = p ? (cn_bytes){p->meta, p->len} : (cn_bytes){(const uint8_t *)"", 0};
        mi[n].assignment = (cn_bytes){m->assign ? m->assign : (const uint8_t *)"", m->assign_len};
        n++;
    }
    grp_info info = {
        .group_id = g->id,
        .state = g->state,
        .protocol_type = g->protocol_type ? g->protocol_type : "",
        .protocol_name = g->protocol_name ? g->protocol_name : "",
        .generation = g->generation,
        .members = mi,
        .n_members = n,
    };
    cb(arg, &info);
    free(mi);
}

static void describe_offsets_only(const char *id, int32_t generation,
                                  void (*cb)(void *arg, const grp_info *info), void *arg)
{
    grp_info info = {.group_id = id, .state = GRP_EMPTY, .protocol_type = "",
                     .protocol_name = "", .generation = generation};
    cb(arg, &info);
}

int grp_describe(grp_coord *c, cn_str group_id, void (*cb)(void *arg, const grp_info *g), void *arg)
{
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    grp *g = grp__find(c, group_id);
    if (g) {
        describe_group(g, cb, arg);
        return 0;
    }
    if (c->offsets && (goff_group_has_offsets(c->offsets, group_id) ||
                       goff_group_meta(c->offsets, group_id).len >= 0)) {
        char *id = grp__strdup(group_id);
        describe_offsets_only(id, grp__load_generation(c, group_id), cb, arg);
        free(id);
        return 0;
    }
    return -CN_ENOGROUP;
}

typedef struct list_ctx {
    grp_coord *c;
    void (*cb)(void *arg, const grp_info *g);
    void *arg;
} list_ctx;

static void list_offset_group(void *arg, const char *group)
{
    list_ctx *lc = arg;
    if (grp__find(lc->c, cn_str_c(group)))
        return; /* listed with the live groups */
    describe_offsets_only(group, grp__load_generation(lc->c, cn_str_c(group)), lc->cb, lc->arg);
}

int grp_list(grp_coord *c, void (*cb)(void *arg, const grp_info *g), void *arg)
{
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    for (int i = 0; i < GRP_HASH; i++)
        for (grp *g = c->hash[i]; g; g = g->hnext)
            describe_group(g, cb, arg);
    if (c->offsets) {
        list_ctx lc = {c, cb, arg};
        goff_foreach_group(c->offsets, list_offset_group, &lc);
    }
    return 0;
}

int grp_delete(grp_coord *c, cn_str group_id, int64_t *wait_target)
{
    *wait_target = -1;
    int rc = grp_coord_serving(c);
    if (rc < 0)
        return rc;
    grp *g = grp__find(c, group_id);
    if (g && g->members)
        return -CN_ENOTEMPTY;
    int known = g != NULL;
    if (c->offsets)
        known = known || goff_group_has_offsets(c->offsets, group_id) ||
                goff_group_meta(c->offsets, group_id).len >= 0;
    if (!known)
        return -CN_ENOGROUP;
    if (g) {
        grp__transition(g, GRP_EV_DELETE);  /* Dead: unlinked and freed right away */
        uint32_t h = grp__hash_of(group_id.ptr, (size_t)group_id.len);
        for (grp **pp = &c->hash[h]; *pp; pp = &(*pp)->hnext)
            if (*pp == g) {
                *pp = g->hnext;
                break;
            }
        grp__group_free(c, g, -CN_EUNAVAIL);
    }
    if (c->offsets) {
        int64_t t1 = -1, t2 = -1;
        rc = goff_delete_group(c->offsets, group_id, &t1);
        if (rc == 0)
            rc = goff_put_group_meta(c->offsets, group_id, (cn_bytes){NULL, -1}, &t2);
        if (rc < 0) {
            /* Whatever the store's reason (a name it cannot hold included),
             * the deletion is not recorded: a storage failure to the caller. */
            slog_warn("group %.*s: deleting its offsets failed: %s", group_id.len, group_id.ptr,
                      cn_strerror(rc));
            return -CN_EIO;
        }
        *wait_target = CN_MAX(t1, t2);
    }
    slog_info("group %.*s deleted", group_id.len, group_id.ptr);
    return 0;
}

int grp_any_member_meta(grp_coord *c, cn_str group_id, const char *protocol_type,
                        int (*match)(void *arg, cn_bytes metadata), void *arg)
{
    grp *g = grp__find(c, group_id);
    if (!g || !g->members || !g->protocol_type || strcmp(g->protocol_type, protocol_type) != 0)
        return 0;
    for (grp_member *m = g->members; m; m = m->next) {
        const grp_proto *p = g->protocol_name ? grp__member_proto(m, g->protocol_name) : NULL;
        if (!p && m->n_protos > 0)
            p = &m->protos[0];
        if (p && match(arg, (cn_bytes){p->meta, p->len}))
            return 1;
    }
    return 0;
}
