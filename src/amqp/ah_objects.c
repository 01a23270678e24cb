/* The AMQP row's objects hook (srv_frontend.objects, called for HTTP's
 * /amqp/exchanges, /amqp/queues and /amqp/bindings through srv_objects):
 * every exchange (the built-in ones included), every declared queue with
 * its depth, unacknowledged deliveries and consumers (as ah_metrics.c
 * counts them), and every binding: queue bindings, then exchange-to-
 * exchange bindings, each in exchange order. Names are copied out of the
 * length-counted strings the front end keeps. */
#include <stdio.h>

#include "amqp/amqp_int.h"

static const char *const xtype_names[] = {"direct", "fanout", "topic", "headers"};

static const char *cstr(char *buf, size_t cap, const char *s, int32_t len)
{
    snprintf(buf, cap, "%.*s", (int)len, s ? s : "");
    return buf;
}

void asrv_objects(asrv *as, srv_objects_sink *o)
{
    char a[512], b[512], k[512];
    for (int i = 0; i < as->n_ex; i++) {
        const aexchange *x = as->ex[i];
        int t = x->type >= 0 && x->type < 4 ? x->type : 0;
        srv_exchange_info xi = {"/", cstr(a, sizeof(a), x->name, x->name_len), xtype_names[t],
                                x->durable, x->auto_delete, x->internal, x->builtin,
                                x->ae ? cstr(b, sizeof(b), x->ae, x->ae_len) : NULL,
                                x->n_b + x->n_xb};
        if (o->exchange)
            o->exchange(o, &xi);
    }
    for (int i = 0; i < as->n_q; i++) {
        const aqueue *q = as->q[i];
        if (q->deleted)
            continue;
        srv_queue_info qi = {"/", cstr(a, sizeof(a), q->name, q->name_len),
                             q->stream ? "stream" : "classic", q->durable, q->exclusive,
                             q->auto_delete, (int64_t)q->n, (int64_t)q->ready_bytes,
                             q->refs > 1 ? q->refs - 1 : 0, q->n_cons};
        if (o->queue)
            o->queue(o, &qi);
    }
    for (int i = 0; o->binding && i < as->n_ex; i++) {
        const aexchange *x = as->ex[i];
        cstr(a, sizeof(a), x->name, x->name_len);
        for (int j = 0; j < x->n_b; j++) {
            const abinding *bd = &x->b[j];
            if (!bd->q || bd->q->deleted)
                continue;
            srv_binding_info bi = {"/", a, cstr(b, sizeof(b), bd->q->name, bd->q->name_len),
                                   "queue", cstr(k, sizeof(k), bd->key, bd->key_len)};
            o->binding(o, &bi);
        }
        for (int j = 0; j < x->n_xb; j++) {
            const abinding *bd = &x->xb[j];
            if (!bd->dx)
                continue;
            srv_binding_info bi = {"/", a, cstr(b, sizeof(b), bd->dx->name, bd->dx->name_len),
                                   "exchange", cstr(k, sizeof(k), bd->key, bd->key_len)};
            o->binding(o, &bi);
        }
    }
}
