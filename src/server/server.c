/* The server object: loop, core, front ends and listeners (contract in
 * server.h). */
#include "server/server.h"

#include <stdlib.h>
#include <string.h>

#include "net/tls_config.h"
#include "util/common.h"
#include "util/slog.h"

/* One bound listener. */
typedef struct srv_listener {
    int fe;                         /* index into s->fes */
    net_server *ns;
    int tls;                        /* serves TLS with the ssl.* settings */
    int dial_tls;                   /* dials with TLS (srv_addr) */
} srv_listener;

#define SRV_MAX_FRONTENDS 8
#define SRV_MAX_LISTENERS 16

struct srv {
    cairn_config *cfg;
    loop *l;
    core *core;
    const srv_frontend *fes[SRV_MAX_FRONTENDS];
    int n_fes;
    void *fe[SRV_MAX_FRONTENDS];    /* front end state, NULL when not created */
    srv_listener ls[SRV_MAX_LISTENERS];
    int n_ls;
    int64_t started_ms;             /* loop_now_mono at the end of srv_open */
    int shutting_down;              /* srv_shutdown calls so far */
};

static int frontend_index(const srv *s, const char *name)
{
    for (int i = 0; i < s->n_fes; i++)
        if (strcmp(s->fes[i]->name, name) == 0)
            return i;
    return -1;
}

static int tls_server_ctx(const cairn_config *cfg, tls_ctx **out)
{
    return tls_ctx_from_config(cfg, TLS_FOR_LISTENER, out);
}

/* A listener's contexts: serving (tls) and dialing (dial_tls). 0 or
 * -CN_EINVAL (logged), nothing made. */
static int listener_ctxs(const cairn_config *cfg, int tls, int dial_tls, tls_ctx **srv_ctx,
                         tls_ctx **dial_ctx)
{
    *srv_ctx = *dial_ctx = NULL;
    if (tls && tls_server_ctx(cfg, srv_ctx) < 0)
        return -CN_EINVAL;
    if (dial_tls && tls_ctx_from_config(cfg, TLS_FOR_RELAY_DIAL, dial_ctx) < 0) {
        tls_ctx_free(*srv_ctx);
        *srv_ctx = NULL;
        return -CN_EINVAL;
    }
    return 0;
}

static int listen_one(srv *s, int i, const srv_addr *a)
{
    if (s->n_ls == SRV_MAX_LISTENERS) {
        slog_error("%s: more than %d listeners", s->fes[i]->name, SRV_MAX_LISTENERS);
        return -CN_ERANGE;
    }
    const cairn_config *cfg = s->cfg;
    net_limits lim = {
        .max_frame_bytes = cfg->socket_request_max_bytes,
        .max_inflight = 128,
        .max_connections = cfg->max_connections,
        .idle_ms = cfg->connections_max_idle_ms,
        .partial_ms = cfg->request_read_timeout_ms,
    };
    net_server *ns = NULL;
    tls_ctx *tls = NULL, *dial = NULL;
    if (listener_ctxs(cfg, a->tls, a->dial_tls, &tls, &dial) < 0)
        return -CN_EINVAL;
    int rc = net_server_new(s->l, a->host, a->port, &lim, s->fes[i]->proto, s->fe[i], &ns);
    if (rc < 0) {
        tls_ctx_free(tls);
        tls_ctx_free(dial);
    } else {
        net_server_set_tls(ns, tls, dial);
        net_server_set_tag(ns, (a->sasl ? SRV_TAG_SASL : 0) | ((uint32_t)(a->listener & 0xff) << 8));
    }
    if (rc < 0 && a->optional) {
        slog_warn("%s: cannot listen on %s:%d (%s); going on without it", s->fes[i]->name,
                  a->host, a->port, cn_strerror(rc));
        return 0;
    }
    if (rc < 0)
        return rc;
    s->ls[s->n_ls++] = (srv_listener){i, ns, a->tls, a->dial_tls};
    int port = net_server_port(ns);
    if (s->fes[i]->bound)
        s->fes[i]->bound(s->fe[i], a->host, port);
    slog_info("%s listening on %s:%d%s%s%s", s->fes[i]->name, a->host, port,
              a->name ? " (" : "", a->name ? a->name : "", a->name ? ")" : "");
    return 0;
}

int srv_reload_tls(srv *s)
{
    int n = 0;
    for (int k = 0; k < s->n_ls; k++) {
        if (!s->ls[k].tls && !s->ls[k].dial_tls)
            continue;
        tls_ctx *tls, *dial;
        if (listener_ctxs(s->cfg, s->ls[k].tls, s->ls[k].dial_tls, &tls, &dial) < 0) {
            slog_error("TLS: certificates not reloaded; listeners keep the ones they have");
            return -CN_EINVAL;
        }
        net_server_set_tls(s->ls[k].ns, tls, dial);
        n++;
    }
    if (s->core->cl && s->cfg->cluster_tls) {
        if (cluster_reload_tls(s->core->cl) < 0) {
            slog_error("TLS (cluster): certificates not reloaded for the cluster transport");
            return -CN_EINVAL;
        }
        n++;
    }
    slog_info("TLS: certificates reloaded for %d listener(s); open connections keep theirs", n);
    return 0;
}

int srv_open(cairn_config *cfg, const srv_frontend *const *fes, int n_fes, srv **out)
{
    CN_ASSERT(n_fes >= 0 && n_fes <= SRV_MAX_FRONTENDS);
    srv *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    for (int i = 0; i < n_fes; i++)
        s->fes[i] = fes[i];
    s->n_fes = n_fes;
    char err[512];
    int rc = config_check_listeners(cfg, err, sizeof(err));
    if (rc < 0) {
        slog_error("%s", err);
        free(s);
        return rc;
    }
    if (cfg->authorizer_enabled && !cfg->http_auth && cfg->n_http > 0)
        slog_warn("authorizer.enabled with http.authentication=none: the HTTP API (users, "
                  "ACLs, topics) is open to whoever reaches its listeners; set "
                  "http.authentication=basic");
    rc = loop_new(&s->l);
    if (rc < 0) {
        slog_error("cannot create the event loop: %s", cn_strerror(rc));
        free(s);
        return rc;
    }
    rc = core_open(cfg, s->l, &s->core);
    if (rc < 0)
        goto fail;
    for (int i = 0; i < n_fes; i++) {
        s->fe[i] = fes[i]->create(s->core);
        if (!s->fe[i]) {
            rc = -CN_ENOMEM;
            goto fail;
        }
    }
    for (int i = 0; i < n_fes; i++) {
        srv_addr addrs[SRV_MAX_LISTENERS];
        int n = fes[i]->addresses(cfg, addrs, SRV_MAX_LISTENERS);
        for (int k = 0; k < n; k++)
            if ((rc = listen_one(s, i, &addrs[k])) < 0)
                goto fail;
    }
    s->started_ms = loop_now_mono();
    for (int i = 0; i < n_fes; i++)
        if (fes[i]->serving)
            fes[i]->serving(s->fe[i], s);
    *out = s;
    return 0;
fail:
    srv_close(s);
    return rc;
}

loop *srv_loop(srv *s) { return s->l; }
core *srv_core(srv *s) { return s->core; }

int srv_port(const srv *s, const char *frontend)
{
    int i = frontend_index(s, frontend);
    for (int k = 0; k < s->n_ls; k++)
        if (s->ls[k].fe == i)
            return net_server_port(s->ls[k].ns);
    return -1;
}

int srv_listeners(const srv *s, srv_listener_info *out, int max)
{
    for (int k = 0; k < s->n_ls && k < max; k++) {
        const srv_listener *l = &s->ls[k];
        out[k] = (srv_listener_info){s->fes[l->fe]->name, net_server_host(l->ns),
                                     net_server_port(l->ns), net_server_conns_open(l->ns),
                                     net_server_conns_accepted(l->ns)};
    }
    return s->n_ls;
}

int64_t srv_started_ms(const srv *s) { return s->started_ms; }

void srv_metrics(srv *s, srv_metrics_sink *m)
{
    for (int i = 0; i < s->n_fes; i++)
        if (s->fe[i] && s->fes[i]->metrics)
            s->fes[i]->metrics(s->fe[i], m);
}

int srv_objects(srv *s, srv_objects_sink *o)
{
    int n = 0;
    for (int i = 0; i < s->n_fes; i++)
        if (s->fe[i] && s->fes[i]->objects) {
            s->fes[i]->objects(s->fe[i], o);
            n++;
        }
    return n;
}

int srv_run(srv *s)
{
    int rc = loop_run(s->l);
    if (rc < 0)
        slog_error("event loop failed: %s", cn_strerror(rc));
    return rc;
}

void srv_stop(srv *s) { loop_stop(s->l); }

static void handed_off(void *arg) { srv_stop(arg); }

void srv_shutdown(srv *s)
{
    if (s->shutting_down++ || !s->core->cl) {
        srv_stop(s);
        return;
    }
    cluster_hand_off(s->core->cl, handed_off, s);
}

void srv_close(srv *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_fes; i++)
        if (s->fe[i])
            s->fes[i]->destroy(s->fe[i]);
    core_close(s->core);
    for (int k = 0; k < s->n_ls; k++)
        net_server_free(s->ls[k].ns);
    loop_free(s->l);
    free(s);
}
