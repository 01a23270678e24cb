/* The server: one Cairn node inside a process. It owns the event loop, the
 * core's services (core/core.h) and every listener with the front end that
 * serves it, all built from a configuration the caller owns.
 *
 * Front ends are rows of one table (server.c): a name, how to create and free
 * the front end on the core, and the protocol table its listeners use
 * (net_proto). Kafka is the only row today; AMQP and HTTP join as rows with
 * their own listeners, peers of Kafka on the same core.
 *
 * Order. srv_open: loop, core (recovery and replay), front ends, listeners
 * (the Kafka one also sets the advertised host and port). srv_close: front
 * ends first (parked requests answer), then the core (every partition
 * fsynced, parked durable waits completed), then the listeners (connections
 * close after their answers were queued), then the loop.
 *
 * Ownership: cfg is the caller's and must outlive the server. Loop thread
 * only; srv_stop may be called from a callback on the loop (a signal watch). */
#ifndef CAIRN_SERVER_H
#define CAIRN_SERVER_H
#include "config/config.h"
#include "core/core.h"
#include "net/loop.h"

typedef struct srv srv;

/* Build everything and listen. 0 or -CN_E* (logged); on failure nothing is
 * left open. */
int srv_open(cairn_config *cfg, srv **out);
loop *srv_loop(srv *s);
core *srv_core(srv *s);
/* Port a front end's first listener is bound to (after port 0 picked one),
 * or -1 when that front end has no listener. */
int srv_port(const srv *s, const char *frontend);
/* Run the loop until srv_stop. 0, or -errno when the loop failed. */
int srv_run(srv *s);
void srv_stop(srv *s);
/* Shut down in the order above and free. NULL is a no-op. */
void srv_close(srv *s);
#endif
