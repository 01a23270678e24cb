/* The server object: loop, core, front ends and listeners (contract in
 * server.h). */
#include "server/server.h"

#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"
#include "net/net.h"
#include "util/common.h"
#include "util/slog.h"

/* One front end: created on the core, serving listeners with proto. */
typedef struct srv_frontend {
    const char *name;
    void *(*create)(core *c);
    void (*destroy)(void *fe);
    const net_proto *proto;
} srv_frontend;

static void *kafka_create(core *c) { return ksrv_new(c); }
static void kafka_destroy(void *fe) { ksrv_free(fe); }

static const srv_frontend frontends[] = {
    {"kafka", kafka_create, kafka_destroy, &ksrv_proto},
};
#define N_FRONTENDS ((int)CN_ARRAY_LEN(frontends))

/* One bound listener. */
typedef struct srv_listener {
    int fe;                         /* index into frontends */
    net_server *ns;
} srv_listener;

#define SRV_MAX_LISTENERS 16

struct srv {
    cairn_config *cfg;
    loop *l;
    core *core;
    void *fe[N_FRONTENDS];          /* front end state, NULL when not created */
    srv_listener ls[SRV_MAX_LISTENERS];
    int n_ls;
};

static int frontend_index(const char *name)
{
    for (int i = 0; i < N_FRONTENDS; i++)
        if (strcmp(frontends[i].name, name) == 0)
            return i;
    return -1;
}

static int srv_listen(srv *s, const char *frontend, const char *host, int port)
{
    int i = frontend_index(frontend);
    CN_ASSERT(i >= 0 && s->n_ls < SRV_MAX_LISTENERS);
    const cairn_config *cfg = s->cfg;
    net_limits lim = {
        .max_frame_bytes = cfg->socket_request_max_bytes,
        .max_inflight = 128,
        .max_connections = cfg->max_connections,
        .idle_ms = cfg->connections_max_idle_ms,
        .partial_ms = cfg->request_read_timeout_ms,
    };
    net_server *ns = NULL;
    int rc = net_server_new(s->l, host, port, &lim, frontends[i].proto, s->fe[i], &ns);
    if (rc < 0)
        return rc;
    s->ls[s->n_ls++] = (srv_listener){i, ns};
    slog_info("%s listening on %s:%d", frontend, host, net_server_port(ns));
    return 0;
}

int srv_open(cairn_config *cfg, srv **out)
{
    srv *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    int rc = loop_new(&s->l);
    if (rc < 0) {
        slog_error("cannot create the event loop: %s", cn_strerror(rc));
        free(s);
        return rc;
    }
    rc = core_open(cfg, s->l, &s->core);
    if (rc < 0)
        goto fail;
    for (int i = 0; i < N_FRONTENDS; i++)
        s->fe[i] = frontends[i].create(s->core);
    rc = srv_listen(s, "kafka", cfg->listen_host, cfg->listen_port);
    if (rc < 0)
        goto fail;
    /* Metadata answers with this host and port. */
    const char *adv = cfg->listen_host;
    if (strcmp(adv, "0.0.0.0") == 0 || adv[0] == '\0')
        adv = "127.0.0.1";
    broker_set_advertised(s->core->b, adv, srv_port(s, "kafka"));
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
    int i = frontend_index(frontend);
    for (int k = 0; k < s->n_ls; k++)
        if (s->ls[k].fe == i)
            return net_server_port(s->ls[k].ns);
    return -1;
}

int srv_run(srv *s)
{
    int rc = loop_run(s->l);
    if (rc < 0)
        slog_error("event loop failed: %s", cn_strerror(rc));
    return rc;
}

void srv_stop(srv *s) { loop_stop(s->l); }

void srv_close(srv *s)
{
    if (!s)
        return;
    for (int i = 0; i < N_FRONTENDS; i++)
        if (s->fe[i])
            frontends[i].destroy(s->fe[i]);
    core_close(s->core);
    for (int k = 0; k < s->n_ls; k++)
        net_server_free(s->ls[k].ns);
    loop_free(s->l);
    free(s);
}
