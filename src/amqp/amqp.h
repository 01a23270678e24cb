/* AMQP 0-9-1 front end (RabbitMQ's dialect, issue 10; plan in
 * docs/amqp-plan.md): a peer of the Kafka front end on the same core.
 *
 * It serves the protocol header, the handshake (Start/StartOk with PLAIN
 * and AMQPLAIN, Tune/TuneOk, Open on vhost "/"), heartbeats both ways,
 * Close/CloseOk, channel open/close/flow (conn.c, ah_channel.c), exchanges,
 * queues and bindings with the durable ones in the kvlog __amqp_meta
 * (ah_queue.c), publish, get, consume, acks and confirms (ah_basic.c), and
 * durable queue storage: one internal partition per durable queue for its
 * persistent messages, ack state in __amqp_meta (ah_store.c), and
 * backpressure: memory and disk alarms that block publishers with
 * connection.blocked, slow consumers held back (ah_alarm.c). tx.* and the other methods docs/amqp-plan.md lists
 * are answered with connection.close 540 NOT_IMPLEMENTED. Framing and the
 * server row are in framing.c.
 *
 * asrv owns the per-connection contexts (made by the protocol's conn_open,
 * freed by conn_close), the server-properties table it announces, the
 * routing tables, the messages and its kvlog handle (the broker owns the
 * partition). Loop thread only. */
#ifndef CAIRN_AMQP_H
#define CAIRN_AMQP_H
#include "core/core.h"
#include "net/net.h"
#include "server/server.h"

typedef struct asrv asrv;

/* Create the front end on the core (free it before core_close). Never NULL. */
asrv *asrv_new(core *c);
/* Free; connections still open keep no reference to it after their
 * listeners are freed (srv_close order). NULL is a no-op. */
void asrv_free(asrv *as);
/* The AMQP protocol table (framing.c): serve a listener with it and the asrv
 * as arg. */
extern const net_proto asrv_proto;
/* The AMQP row of the server's front-end table (server/server.h): listens on
 * every address of amqp.listeners (none when "off"). */
extern const srv_frontend asrv_frontend;
/* The row's metrics hook: per-queue depth, unacked and consumer gauges
 * (ah_metrics.c lists them). */
void asrv_metrics(asrv *as, srv_metrics_sink *m);
/* The row's objects hook: exchanges, queues and bindings (ah_objects.c). */
void asrv_objects(asrv *as, srv_objects_sink *o);
#endif
