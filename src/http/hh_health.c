/* Health and readiness (issue 11 "Operations").
 *
 * GET /healthz: 200 {"status": "ok"} whenever the loop serves requests
 * (liveness: the process is not wedged).
 *
 * GET /readyz: 200 {"ready": true, "checks": {...}} when the broker can take
 * traffic, else 503 with error_code not_ready, a message naming the failed
 * checks, and the same "checks" object. Checks:
 *   recovered          every partition and internal log was recovered and
 *                      replayed (true once the server serves: srv_open
 *                      recovers before any listener is bound)
 *   listeners          every configured listener of every front end is bound
 *   data_dir_writable  an unnamed temporary file (O_TMPFILE) can be created
 *                      and written in log.dirs (catches read-only mounts,
 *                      a full disk, an immutable directory); nothing is left
 *   storage            no partition is in the failed-storage state (a write
 *                      or fsync error made it stop taking appends)
 *   cluster            (a cluster node only) a majority of the nodes is
 *                      reachable (this one and the peers it has a live
 *                      connection to) and a controller is known */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http/http_int.h"

void hh_healthz(hreq *q)
{
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string("ok"));
    hh_reply_json(q, 200, j);
}

static json_t *check(int ok, const char *detail)
{
    json_t *c = json_object();
    json_object_set_new(c, "ok", json_boolean(ok));
    if (detail)
        json_object_set_new(c, "detail", json_string(detail));
    return c;
}

/* 0, or -errno with what failed in why. */
static int probe_dir(const char *dir, char *why, size_t why_len)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_len, "cannot create a file in %s: %s", dir, strerror(e));
        return -e;
    }
    int rc = 0;
    if (write(fd, "r", 1) != 1) {
        rc = -errno;
        snprintf(why, why_len, "cannot write in %s: %s", dir, strerror(-rc));
    }
    close(fd);
    return rc;
}

static void addmsg(char *msg, size_t cap, const char *fmt, ...) CN_PRINTF(3, 4);
static void addmsg(char *msg, size_t cap, const char *fmt, ...)
{
    size_t ml = strlen(msg);
    if (ml + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + ml, cap - ml, fmt, ap);
    va_end(ap);
}

void hh_readyz(hreq *q)
{
    hsrv *hs = q->hs;
    json_t *checks = json_object();
    char msg[512] = "";
    int ready = 1;

    json_object_set_new(checks, "recovered", check(hs->server != NULL, NULL));

    int n_ls = hs->server ? srv_listeners(hs->server, NULL, 0) : 0;
    int want = hs->cfg->n_http + hs->cfg->n_amqp + 1;
    char ldetail[96];
    snprintf(ldetail, sizeof(ldetail), "%d of %d configured listeners bound", n_ls, want);
    /* AMQP's default [::1] may be skipped on a machine without IPv6. */
    int ls_ok = hs->server && (n_ls >= want || (hs->cfg->amqp_default && n_ls >= want - 1));
    json_object_set_new(checks, "listeners", check(ls_ok, ldetail));
    if (!ls_ok) {
        ready = 0;
        addmsg(msg, sizeof(msg), "%s; ", ldetail);
    }

    char why[256];
    int wrc = probe_dir(hs->cfg->log_dirs, why, sizeof(why));
    json_object_set_new(checks, "data_dir_writable", check(wrc == 0, wrc ? why : NULL));
    if (wrc) {
        ready = 0;
        addmsg(msg, sizeof(msg), "data directory not writable (%s); ", why);
    }

    json_t *failed = json_array();
    for (topic *t = broker_topics(hs->b); t; t = t->lnext)
        for (int32_t i = 0; i < t->n_parts; i++)
            if (log_failed(t->parts[i]->log)) {
                char name[300];
                snprintf(name, sizeof(name), "%s-%d", t->name, i);
                json_array_append_new(failed, json_string(name));
            }
    int st_ok = json_array_size(failed) == 0;
    json_t *st = check(st_ok, st_ok ? NULL : "partitions in the failed-storage state");
    json_object_set_new(st, "failed_partitions", failed);
    json_object_set_new(checks, "storage", st);
    if (!st_ok) {
        ready = 0;
        addmsg(msg, sizeof(msg), "%zu partition(s) in the failed-storage state; ",
               json_array_size(failed));
    }

    cluster *cl = hs->core->cl;
    if (cl) {
        int nn = 0, up = 0;
        cluster_node_ids(cl, &nn);
        for (int i = 0; i < nn; i++)
            up += cluster_member_at(cl, i).connected;
        int32_t ctl = cluster_controller(cl);
        int cl_ok = up * 2 > nn && ctl >= 0;
        char cdetail[128];
        snprintf(cdetail, sizeof(cdetail), "%d of %d nodes reachable, controller %d", up, nn, ctl);
        json_object_set_new(checks, "cluster", check(cl_ok, cdetail));
        if (!cl_ok) {
            ready = 0;
            addmsg(msg, sizeof(msg), "cluster: %s; ", cdetail);
        }
    }

    if (ready) {
        json_t *j = json_object();
        json_object_set_new(j, "ready", json_true());
        json_object_set_new(j, "checks", checks);
        hh_reply_json(q, 200, j);
        return;
    }
    size_t ml = strlen(msg);
    if (ml >= 2)
        msg[ml - 2] = '\0'; /* the last "; " */
    json_t *extra = json_object();
    json_object_set_new(extra, "ready", json_false());
    json_object_set_new(extra, "checks", checks);
    hh_error_obj(q, 503, "not_ready", extra, "%s", msg);
}
