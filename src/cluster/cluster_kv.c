/* Key-value stores above the cluster (contract in cluster.h): the users
 * and the ACLs (src/auth) keep their records in the metadata log, as
 * records "K" (cluster_wire.h: store name, a request id, the records), so
 * every node applies the same changes in the same order, replays them all
 * at start (the metadata log is never compacted), and a write made on any
 * node goes through the controller like a topic request (FORWARD op 10).
 *
 * A write waits here (cl_kv_wait, keyed by its random request id) until
 * this node applies its record, so the writer reads its own write on the
 * node it asked; the controller's answer only reports failures (no
 * controller, a lost leadership). A write the controller committed but
 * this node has not applied within KV_APPLY_MS fails with -CN_ETIMEDOUT
 * (it may still apply). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cluster/cluster_int.h"
#include "cluster/cluster_wire.h"
#include "util/common.h"
#include "util/slog.h"

#define KV_APPLY_MS 30000
#define KV_MAX_NAME 15

typedef struct cl_kv_store {
    struct cl_kv_store *next;
    char name[KV_MAX_NAME + 1];
    cluster_kv_apply apply;
    void *arg;
} cl_kv_store;

typedef struct cl_kv_wait {
    struct cl_kv_wait *next;
    uint8_t id[16];
    int64_t deadline;               /* loop ms */
    cluster_op_cb cb;
    void *arg;
} cl_kv_wait;

/* What the controller's answer (or the local op) finds the wait by. */
typedef struct kv_ref {
    cluster *c;
    uint8_t id[16];
} kv_ref;

void cluster_kv_register(cluster *c, const char *name, cluster_kv_apply apply, void *arg)
{
    cl_kv_store *s = xcalloc(1, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->apply = apply;
    s->arg = arg;
    s->next = c->kv_stores;
    c->kv_stores = s;
}

void cluster_kv_unregister(cluster *c, const char *name)
{
    for (cl_kv_store **pp = &c->kv_stores; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            cl_kv_store *s = *pp;
            *pp = s->next;
            free(s);
            return;
        }
}

/* Remove and return the wait with id, or NULL. */
static cl_kv_wait *wait_take(cluster *c, const uint8_t id[16])
{
    for (cl_kv_wait **pp = &c->kv_waits; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->id, id, 16) == 0) {
            cl_kv_wait *w = *pp;
            *pp = w->next;
            return w;
        }
    return NULL;
}

static void wait_finish(cl_kv_wait *w, int status, const char *msg)
{
    w->cb(w->arg, status, msg);
    free(w);
}

/* The controller's answer: a failure ends the wait; success leaves it to
 * this node's apply (which may have come first: then nothing waits). */
static void on_answer(void *arg, int status, const char *msg)
{
    kv_ref *r = arg;
    if (status < 0) {
        cl_kv_wait *w = wait_take(r->c, r->id);
        if (w)
            wait_finish(w, status, msg);
    }
    free(r);
}

void cluster__kv_apply(cluster *c, const clw_topic_op *t)
{
    cl_kv_store *s = c->kv_stores;
    while (s && ((int32_t)strlen(s->name) != t->name.len ||
                 memcmp(s->name, t->name.ptr, (size_t)t->name.len) != 0))
        s = s->next;
    if (s)
        s->apply(s->arg, t->configs, t->n_configs);
    else
        slog_warn("cluster metadata: records of an unknown store '%.*s' skipped", t->name.len,
                  t->name.ptr);
    cl_kv_wait *w = wait_take(c, t->id);
    if (w)
        wait_finish(w, 0, NULL);
}

int cluster_kv_write(cluster *c, const char *store, const broker_kv *kv, int n,
                     cluster_op_cb cb, void *arg)
{
    size_t nl = strlen(store);
    if (n < 1 || n > CLW_MAX_CONFIGS || nl == 0 || nl > KV_MAX_NAME)
        return -CN_EINVAL;
    for (int i = 0; i < n; i++)
        if (kv[i].key.len < 1 || kv[i].key.len > INT16_MAX || kv[i].value.len > INT16_MAX)
            return -CN_EINVAL;
    cl_kv_wait *w = xcalloc(1, sizeof(*w));
    if (getrandom(w->id, sizeof(w->id), 0) != (ssize_t)sizeof(w->id)) {
        free(w);
        return -CN_EIO;
    }
    w->deadline = loop_now(c->l) + KV_APPLY_MS;
    w->cb = cb;
    w->arg = arg;
    w->next = c->kv_waits;
    c->kv_waits = w;
    clw_topic_op t = {.op = 10, .name = cn_str_c(store), .n_configs = n,
                      .configs = (broker_kv *)kv};
    memcpy(t.id, w->id, 16);
    kv_ref *r = xmalloc(sizeof(*r));
    r->c = c;
    memcpy(r->id, w->id, 16);
    if (cluster_controller(c) == c->self) {
        char msg[256];
        int rc = cluster__meta_submit_op(c, &t, msg, sizeof(msg), on_answer, r);
        if (rc == 0)
            return 0;
        if (rc != -CN_ELEADERWAIT && rc != -CN_ENOTCONTROLLER) { /* storage: nothing written */
            free(r);
            free(wait_take(c, w->id));
            return rc;
        }
        /* a new controller: queued below until its barrier commits */
    }
    wbuf b;
    wbuf_init(&b);
    clw_forward f = {0, 0, t}; /* request id set by cluster__meta_forward */
    clw_forward_encode(&b, &f);
    return cluster__meta_forward(c, &b, on_answer, r);
}

void cluster__kv_tick(cluster *c, int64_t now)
{
    cl_kv_wait **pp = &c->kv_waits;
    while (*pp) {
        cl_kv_wait *w = *pp;
        if (now < w->deadline) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        wait_finish(w, -CN_ETIMEDOUT, "not applied on this node in time");
    }
}

void cluster__kv_stop(cluster *c)
{
    while (c->kv_waits) {
        cl_kv_wait *w = c->kv_waits;
        c->kv_waits = w->next;
        wait_finish(w, -CN_ENOTCONTROLLER, "shutting down");
    }
}

void cluster__kv_free(cluster *c)
{
    while (c->kv_stores) {
        cl_kv_store *s = c->kv_stores;
        c->kv_stores = s->next;
        free(s);
    }
}
