/* GET /amqp/exchanges, /amqp/queues, /amqp/bindings: the AMQP front end's
 * objects, listed through the server (srv_objects; the HTTP front end does
 * not include the AMQP one).
 *   {"exchanges": [{"vhost", "name", "type", "durable", "auto_delete",
 *                   "internal", "builtin", "alternate_exchange" (or null),
 *                   "bindings"}]}
 *   {"queues": [{"vhost", "name", "type" (classic | stream), "durable",
 *                "exclusive", "auto_delete", "messages_ready",
 *                "messages_ready_bytes", "messages_unacked", "consumers"}]}
 *   {"bindings": [{"vhost", "source", "destination", "destination_type"
 *                  (queue | exchange), "routing_key"}]}
 * Each list in the AMQP front end's order (exchanges and queues in
 * declaration order). 404 not_found for another name; 503 not_ready before
 * the server serves; 404 amqp_unavailable in a build without AMQP. The
 * lists exist whether or not AMQP listens (amqp.listeners off: the
 * built-in exchanges, and the objects kept from earlier runs). */
#include <string.h>

#include "http/http_int.h"

typedef struct amqp_sink {
    srv_objects_sink sink;       /* first: hooks get &s->sink */
    json_t *list;
} amqp_sink;

static void on_exchange(srv_objects_sink *sk, const srv_exchange_info *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "vhost", json_string(x->vhost));
    json_object_set_new(o, "name", json_string(x->name));
    json_object_set_new(o, "type", json_string(x->type));
    json_object_set_new(o, "durable", json_boolean(x->durable));
    json_object_set_new(o, "auto_delete", json_boolean(x->auto_delete));
    json_object_set_new(o, "internal", json_boolean(x->internal));
    json_object_set_new(o, "builtin", json_boolean(x->builtin));
    json_object_set_new(o, "alternate_exchange", x->alternate ? json_string(x->alternate)
                                                              : json_null());
    json_object_set_new(o, "bindings", json_integer(x->bindings));
    json_array_append_new(((amqp_sink *)sk)->list, o);
}

static void on_queue(srv_objects_sink *sk, const srv_queue_info *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "vhost", json_string(q->vhost));
    json_object_set_new(o, "name", json_string(q->name));
    json_object_set_new(o, "type", json_string(q->type));
    json_object_set_new(o, "durable", json_boolean(q->durable));
    json_object_set_new(o, "exclusive", json_boolean(q->exclusive));
    json_object_set_new(o, "auto_delete", json_boolean(q->auto_delete));
    json_object_set_new(o, "messages_ready", json_integer(q->ready));
    json_object_set_new(o, "messages_ready_bytes", json_integer(q->ready_bytes));
    json_object_set_new(o, "messages_unacked", json_integer(q->unacked));
    json_object_set_new(o, "consumers", json_integer(q->consumers));
    json_array_append_new(((amqp_sink *)sk)->list, o);
}

static void on_binding(srv_objects_sink *sk, const srv_binding_info *b)
{
    json_t *o = json_object();
    json_object_set_new(o, "vhost", json_string(b->vhost));
    json_object_set_new(o, "source", json_string(b->source));
    json_object_set_new(o, "destination", json_string(b->destination));
    json_object_set_new(o, "destination_type", json_string(b->destination_type));
    json_object_set_new(o, "routing_key", json_string(b->routing_key));
    json_array_append_new(((amqp_sink *)sk)->list, o);
}

void hh_amqp_list(hreq *q)
{
    const char *what = q->seg[1];
    amqp_sink s = {{NULL, NULL, NULL}, NULL};
    if (strcmp(what, "exchanges") == 0)
        s.sink.exchange = on_exchange;
    else if (strcmp(what, "queues") == 0)
        s.sink.queue = on_queue;
    else if (strcmp(what, "bindings") == 0)
        s.sink.binding = on_binding;
    else {
        hh_error(q, 404, "not_found", "no AMQP listing '%s' (exchanges, queues, bindings)", what);
        return;
    }
    if (!q->hs->server) {
        hh_error(q, 503, "not_ready", "the server is starting");
        return;
    }
    s.list = json_array();
    if (srv_objects(q->hs->server, &s.sink) == 0) {
        json_decref(s.list);
        hh_error(q, 404, "amqp_unavailable", "this broker has no AMQP front end");
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, what, s.list);
    hh_reply_json(q, 200, j);
}
