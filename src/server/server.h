/* The server: one Cairn node inside a process. It owns the event loop, the
 * core's services (core/core.h) and every listener with the front end that
 * serves it, all built from a configuration the caller owns.
 *
 * The server speaks no protocol. Front ends are handed to it as a table of
 * srv_frontend rows, each exported by its front end (ksrv_frontend in
 * kafka.h); the cairn program's table is in main.c: Kafka today, AMQP and
 * HTTP join as rows, peers of Kafka on the same core. A row says
 * how to create and free the front end on the core, which protocol table
 * (net_proto) its listeners use, and where it listens.
 *
 * Order. srv_open: loop, core (recovery and replay), every front end, then
 * every listener (each front end's `bound` hook hears its address). srv_close:
 * front ends first (parked requests answer), then the core (every partition
 * fsynced, parked durable waits completed), then the listeners (connections
 * close after their answers were queued), then the loop.
 *
 * Ownership: cfg and the table are the caller's and must outlive the server.
 * Loop thread only; srv_stop may be called from a callback on the loop (a
 * signal watch). */
#ifndef CAIRN_SERVER_H
#define CAIRN_SERVER_H
#include "config/config.h"
#include "core/core.h"
#include "net/loop.h"
#include "net/net.h"
#include "util/hist.h"

typedef struct srv srv;

/* Metrics a front end reports about itself (its request latencies, AMQP's
 * queues), for a front end that exposes metrics (HTTP's /metrics) without
 * either including the other: the exposing one hands a sink to
 * srv_metrics, which calls every front end's `metrics` hook with it. The
 * hook announces a family once, then gives its samples, then the next
 * family; names and types follow Prometheus ("gauge", "counter",
 * "histogram"), the sink escapes label values and writes the format.
 * labels: n_labels pairs, {name0, value0, name1, value1, ...}. */
typedef struct srv_metrics_sink srv_metrics_sink;
struct srv_metrics_sink {
    void (*family)(srv_metrics_sink *m, const char *name, const char *type, const char *help);
    void (*value)(srv_metrics_sink *m, const char *name, const char *const *labels,
                  int n_labels, int64_t v);
    void (*histogram)(srv_metrics_sink *m, const char *name, const char *const *labels,
                      int n_labels, const hist *h);
};

/* AMQP objects a front end holds (exchanges, queues, bindings), for a front
 * end that lists them (HTTP's /amqp/...) without including the other: the
 * lister hands a sink to srv_objects, which calls every front end's
 * `objects` hook with it. Strings are valid during the call only; vhost is
 * "/" (the only one). */
typedef struct srv_exchange_info {
    const char *vhost, *name, *type;   /* type: direct, fanout, topic, headers */
    int durable, auto_delete, internal, builtin;
    const char *alternate;             /* alternate-exchange, NULL: none */
    int bindings;                      /* with this exchange as the source */
} srv_exchange_info;
typedef struct srv_queue_info {
    const char *vhost, *name, *type;   /* type: classic, stream */
    int durable, exclusive, auto_delete;
    int64_t ready, ready_bytes, unacked;
    int consumers;
} srv_queue_info;
typedef struct srv_binding_info {
    const char *vhost, *source, *destination;
    const char *destination_type;      /* queue, exchange */
    const char *routing_key;
} srv_binding_info;
typedef struct srv_objects_sink srv_objects_sink;
struct srv_objects_sink {
    void (*exchange)(srv_objects_sink *s, const srv_exchange_info *x);
    void (*queue)(srv_objects_sink *s, const srv_queue_info *q);
    void (*binding)(srv_objects_sink *s, const srv_binding_info *b);
};

/* One address a front end listens on. */
typedef struct srv_addr {
    const char *host;
    int port;                       /* 0: the kernel picks one */
    /* 1: failing to bind it is a warning and the server goes on without it
     * (a default address the machine may lack, such as [::1] without IPv6);
     * 0: failing to bind it fails srv_open. */
    int optional;
    /* 1: a TLS listener (net/tls.h) with the broker's ssl.* settings. */
    int tls;
    /* 1: connections the front end dials through this listener
     * (net_server_connect: the AMQP relay to another node) use TLS,
     * checking the other node's certificate against ssl.ca.location and
     * showing none. */
    int dial_tls;
    /* 1: clients must authenticate with SASL (the front end reads it back
     * with net_server_tag(net_conn_server(c)) & SRV_TAG_SASL). */
    int sasl;
    /* For log lines: "SSL" (the listener's name), or NULL. */
    const char *name;
    /* The front end's own number for the listener (1..255; 0: none), read
     * back with SRV_TAG_LISTENER(net_server_tag(...)): the Kafka front end
     * numbers its `listeners` items from 1. */
    int listener;
} srv_addr;

/* Listener tags (net_server_tag) the server sets from srv_addr. */
#define SRV_TAG_SASL 1u
#define SRV_TAG_LISTENER(tag) ((int)(((tag) >> 8) & 0xff))

/* One front end. */
typedef struct srv_frontend {
    const char *name;               /* "kafka": log lines and srv_port */
    /* Create on the core; NULL on failure (logged). */
    void *(*create)(core *c);
    void (*destroy)(void *fe);
    const net_proto *proto;         /* its listeners' protocol; arg is the front end */
    /* Where to listen per cfg: fills at most max addresses (pointers into
     * cfg), returns how many (0: this front end is off). */
    int (*addresses)(const cairn_config *cfg, srv_addr *out, int max);
    /* Optional: a listener of this front end is bound at host:port (after
     * port 0 was resolved), e.g. to advertise it. */
    void (*bound)(void *fe, const char *host, int port);
    /* Optional: every listener of every front end is bound and srv_open is
     * about to succeed; s stays valid until destroy. For front ends that
     * report on the server itself (HTTP's /broker, /readyz, /metrics). */
    void (*serving)(void *fe, srv *s);
    /* Optional: report this front end's metrics into m (see
     * srv_metrics_sink). Loop thread, between create and destroy. */
    void (*metrics)(void *fe, srv_metrics_sink *m);
    /* Optional: list this front end's AMQP objects into o (see
     * srv_objects_sink). Loop thread, between create and destroy. */
    void (*objects)(void *fe, srv_objects_sink *o);
} srv_frontend;

/* Build everything and listen. 0 or -CN_E* (logged); on failure nothing is
 * left open. */
int srv_open(cairn_config *cfg, const srv_frontend *const *fes, int n_fes, srv **out);
loop *srv_loop(srv *s);
core *srv_core(srv *s);
/* Port a front end's first listener is bound to (after port 0 picked one),
 * or -1 when that front end has no listener. */
int srv_port(const srv *s, const char *frontend);
/* One bound listener, for reports: its front end, address and connections. */
typedef struct srv_listener_info {
    const char *frontend;           /* the row's name */
    const char *host;               /* as configured */
    int port;                       /* bound */
    int conns_open;
    uint64_t conns_accepted;        /* since start */
} srv_listener_info;
/* Fill out[0..max) with the bound listeners in binding order; returns how
 * many there are (may exceed max). */
int srv_listeners(const srv *s, srv_listener_info *out, int max);
/* Call every front end's metrics hook with m, in table order. */
void srv_metrics(srv *s, srv_metrics_sink *m);
/* Call every front end's objects hook with o; returns how many front ends
 * have one (0: no AMQP front end in this build). */
int srv_objects(srv *s, srv_objects_sink *o);
/* Monotonic ms when srv_open finished (uptime). */
int64_t srv_started_ms(const srv *s);
/* Run the loop until srv_stop. 0, or -errno when the loop failed. */
int srv_run(srv *s);
void srv_stop(srv *s);
/* Build the TLS listeners' contexts again from the ssl.* files (SIGHUP):
 * new connections get the new certificates, open ones keep theirs. When a
 * file does not load, every listener keeps its context. 0 or -CN_EINVAL
 * (logged). */
int srv_reload_tls(srv *s);
/* Stop the way an operator asks (a signal): on a cluster node, hand the
 * partitions it leads to other nodes first (cluster_hand_off), then
 * srv_stop; a second call stops at once. */
void srv_shutdown(srv *s);
/* Shut down in the order above and free. NULL is a no-op. */
void srv_close(srv *s);
#endif
