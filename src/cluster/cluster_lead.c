/* Leadership reports (cluster plan section 7). A partition placed on fewer
 * nodes than the cluster's is unknown to the Raft groups of the nodes that
 * hold no replica of it, yet any node answers Metadata for it. So every
 * node tells every other, in a LEADERS frame (cluster_wire.h), its view
 * (leader or none, term) of each such partition it holds: at once when a
 * view changed, and every CL_LEAD_EVERY_MS in full (which also informs a
 * node that just connected or restarted). A receiver keeps, per remote
 * partition, the view of the newest term (broker_partition_report); the
 * partition's replicas themselves never need it. */
#include "cluster/cluster_int.h"
#include "cluster/cluster_wire.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "util/slog.h"

#define CL_LEAD_EVERY_MS 1000

typedef struct lead_list {
    clw_leader *v;
    int32_t n, cap;
} lead_list;

static void add_view(void *arg, const topic *t, int32_t part, int32_t leader, int32_t epoch)
{
    lead_list *ls = arg;
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 64;
        ls->v = xrealloc(ls->v, (size_t)ls->cap * sizeof(*ls->v));
    }
    clw_leader *l = &ls->v[ls->n++];
    *l = (clw_leader){.topic = cn_str_c(t->name), .partition = part, .leader = leader,
                      .epoch = CN_MAX(epoch, 0)};
    memcpy(l->id, t->id.b, 16);
}

void cluster__lead_tick(cluster *c, int64_t now)
{
    if (!broker_leaders_changed(c->b) && now < c->next_lead_report)
        return;
    c->next_lead_report = now + CL_LEAD_EVERY_MS;
    lead_list ls = {0};
    broker_each_reportable(c->b, add_view, &ls);
    if (ls.n > 0 && ls.n <= CLW_MAX_LEADERS) {
        wbuf w;
        wbuf_init(&w);
        clw_leaders_encode(&w, ls.v, ls.n);
        for (int i = 0; i < c->n_peers; i++)
            cluster__send_frame(c, c->peers[i].id, CL_LEADERS, w.buf, w.len);
        wbuf_fini(&w);
    }
    free(ls.v);
}

typedef struct view_from {
    cluster *c;
    int32_t from;
} view_from;

static void take_view(void *arg, const clw_leader *l)
{
    view_from *v = arg;
    partition *p = broker_partition(v->c->b, l->topic, l->partition);
    /* The id tells a topic from an earlier one of the same name (a report
     * sent before its sender applied a delete and create). */
    if (p && memcmp(p->t->id.b, l->id, 16) == 0)
        broker_partition_report(p, l->leader, l->epoch, l->leader == v->from);
}

int cluster__on_lead_frame(cluster *c, int32_t from, const uint8_t *body, size_t len)
{
    if (!c->b)
        return clw_leaders_decode(body, len, NULL, NULL); /* not started: checked, dropped */
    view_from v = {c, from};
    return clw_leaders_decode(body, len, take_view, &v);
}
