/* HTTP/1.1 front end (issue 11; what is built and what is left:
 * docs/http-plan.md): a peer of the Kafka and AMQP front ends on the same
 * core. A JSON REST API over the core's services: health and readiness,
 * produce, long-poll reads of one partition, topic and group admin, broker
 * info, and Prometheus metrics.
 *
 * Parsing is Node's http_parser (Debian libhttp-parser-dev, callbacks only,
 * no I/O) run inside net's framing callbacks, so HTTP connections get net's
 * limits, timeouts, backpressure, ordered (pipelined) responses and
 * sendfile like every front end; JSON is jansson (libjansson-dev).
 * Framing and the server row: framing.c; routes: router.c.
 *
 * hsrv owns the per-connection contexts (made by the protocol's conn_open,
 * freed by conn_close), its parked reads and its counters. Loop thread
 * only. */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H
#include "core/core.h"
#include "net/net.h"
#include "server/server.h"

typedef struct hsrv hsrv;

/* Create the front end on the core (free it before core_close). Never NULL. */
hsrv *hsrv_new(core *c);
/* Answer parked requests (reads get what is there), then free. NULL is a
 * no-op. */
void hsrv_free(hsrv *hs);
/* The HTTP protocol table (framing.c): serve a listener with it and the hsrv
 * as arg. */
extern const net_proto hsrv_proto;
/* The HTTP row of the server's front-end table: listens on every address of
 * http.listeners (none when "off"). */
extern const srv_frontend hsrv_frontend;
#endif
