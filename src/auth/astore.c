/* The users' and ACLs' storage on a single node or in a cluster (contract
 * in astore.h). */
#include "auth/astore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

/* A cluster write of this store until its waiter is told. */
typedef struct as_write {
    struct as_write *next;
    auth_store *s;                  /* NULL once the store closed */
    int64_t seq;
    int done, status;
    durable_wait *w;                /* parked by auth_store_wait */
} as_write;

struct auth_store {
    kvl *kv;                        /* single node */
    cluster *cl;                    /* cluster */
    char name[16];
    kvl_ops ops;
    void *arg;
    as_write *writes;
    int64_t next_seq;
};

int auth_store_open_local(broker *b, const char *log_name, const kvl_ops *ops, void *arg,
                          auth_store **out)
{
    auth_store *s = xcalloc(1, sizeof(*s));
    int rc = kvl_open(b, log_name, ops, arg, &s->kv);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* A committed record "K" of this store: each record to the owner. */
static void on_apply(void *arg, const broker_kv *kv, int n)
{
    auth_store *s = arg;
    for (int i = 0; i < n; i++) {
        batch_record r = {.key = (const uint8_t *)kv[i].key.ptr, .key_len = kv[i].key.len,
                          .value = (const uint8_t *)kv[i].value.ptr,
                          .value_len = kv[i].value.ptr ? kv[i].value.len : -1};
        if (r.value_len < 0)
            r.value_len = -1;
        const char *why = NULL;
        if (s->ops.on_record(s->arg, &r, &why) < 0)
            slog_warn("%s: a record from the cluster's metadata log skipped (%s)", s->name,
                      why ? why : "not understood");
    }
}

auth_store *auth_store_open_cluster(cluster *c, const char *name, const kvl_ops *ops, void *arg)
{
    auth_store *s = xcalloc(1, sizeof(*s));
    s->cl = c;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->ops = *ops;
    s->arg = arg;
    cluster_kv_register(c, s->name, on_apply, s);
    return s;
}

static void write_unlink(auth_store *s, as_write *wr)
{
    for (as_write **pp = &s->writes; *pp; pp = &(*pp)->next)
        if (*pp == wr) {
            *pp = wr->next;
            return;
        }
}

/* cluster_kv_write's answer. */
static void on_written(void *arg, int status, const char *msg)
{
    as_write *wr = arg;
    if (!wr->s) { /* the store closed meanwhile */
        free(wr);
        return;
    }
    if (status < 0)
        slog_warn("%s: a change failed in the cluster (%s%s%s)", wr->s->name,
                  cn_strerror(status), msg ? ": " : "", msg ? msg : "");
    if (wr->w) {
        write_unlink(wr->s, wr);
        durable_wait *w = wr->w;
        free(wr);
        w->cb(w, status);
        return;
    }
    wr->done = 1; /* its wait comes later */
    wr->status = status;
}

void auth_store_close(auth_store *s)
{
    if (!s)
        return;
    kvl_close(s->kv);
    if (s->cl)
        cluster_kv_unregister(s->cl, s->name);
    while (s->writes) {
        as_write *wr = s->writes;
        s->writes = wr->next;
        if (wr->w)
            wr->w->cb(wr->w, -CN_EIO);
        if (wr->done)
            free(wr);
        else
            wr->s = NULL; /* freed by its answer */
    }
    free(s);
}

int auth_store_applies_at_append(const auth_store *s) { return s->kv != NULL; }

int auth_store_append(auth_store *s, const kvl_batch *bt, int64_t *target)
{
    if (s->kv)
        return kvl_append(s->kv, bt, loop_wall_ms(), target);
    int n = kvl_batch_count(bt);
    broker_kv *kv = xcalloc((size_t)(n ? n : 1), sizeof(*kv));
    for (int i = 0; i < n; i++) {
        const struct kvl__rec *r = &bt->recs[i];
        kv[i].key = (cn_str){(const char *)bt->buf + r->ko, r->kl};
        kv[i].value = r->vl < 0 ? (cn_str){NULL, -1}
                                : (cn_str){(const char *)bt->buf + r->vo, r->vl};
    }
    as_write *wr = xcalloc(1, sizeof(*wr));
    wr->s = s;
    wr->seq = ++s->next_seq;
    int rc = cluster_kv_write(s->cl, s->name, kv, n, on_written, wr);
    free(kv);
    if (rc < 0) {
        free(wr);
        return rc;
    }
    wr->next = s->writes;
    s->writes = wr;
    *target = wr->seq;
    return 0;
}

void auth_store_wait(auth_store *s, int64_t target, durable_wait *w,
                     void (*cb)(durable_wait *w, int status))
{
    if (s->kv) {
        kvl_wait_durable(s->kv, target, w, cb);
        return;
    }
    w->target = target;
    w->cb = cb;
    for (as_write *wr = s->writes; wr; wr = wr->next)
        if (wr->seq == target) {
            if (wr->done) {
                int status = wr->status;
                write_unlink(s, wr);
                free(wr);
                cb(w, status);
            } else {
                wr->w = w;
            }
            return;
        }
    cb(w, 0); /* nothing of that number waits: told already */
}

void auth_store_maybe_compact(auth_store *s)
{
    if (s->kv)
        kvl_maybe_compact(s->kv);
}

kvl *auth_store_kvl(auth_store *s) { return s->kv; }

int auth_store_ready(const auth_store *s) { return !s->cl || cluster_meta_caught_up(s->cl); }
