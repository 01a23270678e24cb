/* Exchange-to-exchange bindings (exchange.bind / exchange.unbind), the
 * alternate-exchange declare argument, and the routing walk over both
 * (amqp_int.h), with RabbitMQ's semantics:
 *
 * - exchange.bind(destination, source, routing key, arguments) adds a
 *   binding to source's xb table: messages source routes by that binding
 *   (the source's type decides the match, as for a queue binding) go on to
 *   destination, which routes them again by its own bindings. The default
 *   exchange "" may be neither end (403 ACCESS_REFUSED); an unknown end is
 *   404 NOT_FOUND (source checked first); the other built-in exchanges
 *   (amq.*) may be either end, as RabbitMQ allows. A binding already there
 *   is not added twice; unbinding one that is not there is unbind-ok.
 * - Persistence: the binding is kept in __amqp_meta (record 'X', written in
 *   ah_queue.c) when both ends are durable, and replayed at start.
 * - Removal: deleting either exchange removes the bindings it is an end of.
 *   An auto-delete exchange goes when it loses its last binding as a source
 *   (queue or exchange binding; exchange.unbind, or its destination went);
 *   that can cascade.
 * - Alternate exchange: `alternate-exchange` (longstr) on exchange.declare.
 *   An exchange none of whose bindings match a message passes it to its
 *   alternate exchange (looked up by name at routing time; a missing one is
 *   skipped), recursively.
 * - Routing (asrv__xroute): a walk over the exchanges, each at most once per
 *   publish (asrv.route_gen marks them; cycles end), collecting each queue
 *   once however many paths lead to it. Only when no queue at all is
 *   reached is a mandatory message returned (ah_basic.c), so an alternate
 *   exchange that reaches a queue prevents the return. */
#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "auth/acl.h"
#include "util/common.h"
#include "util/slog.h"

static int32_t slen(cn_str s) { return s.len > 0 ? s.len : 0; }

#define SARG(s) (int)slen(s), (s).ptr ? (s).ptr : ""

static void *dup_mem(const void *p, size_t n)
{
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

/* The binding table ----------------------------------------------------------- */

int asrv__xbind_find(const aexchange *src, const aexchange *dst, cn_str key, amqp_table args)
{
    for (int i = 0; i < src->n_xb; i++) {
        const abinding *b = &src->xb[i];
        if (b->dx == dst && b->key_len == slen(key) &&
            (b->key_len == 0 || memcmp(b->key, key.ptr, (size_t)b->key_len) == 0) &&
            b->args_len == args.len && (args.len == 0 || memcmp(b->args, args.ptr, args.len) == 0))
            return i;
    }
    return -1;
}

void asrv__xbind_add(aexchange *src, aexchange *dst, cn_str key, amqp_table args)
{
    if (src->n_xb == src->cap_xb) {
        src->cap_xb = src->cap_xb ? src->cap_xb * 2 : 4;
        src->xb = xrealloc(src->xb, (size_t)src->cap_xb * sizeof(*src->xb));
    }
    abinding *b = &src->xb[src->n_xb++];
    memset(b, 0, sizeof(*b));
    b->dx = dst;
    b->key = dup_mem(key.ptr, (size_t)slen(key));
    b->key_len = slen(key);
    b->args = dup_mem(args.ptr, args.len);
    b->args_len = args.len;
}

void asrv__xbind_forget(aexchange *src, int i)
{
    free(src->xb[i].key);
    free(src->xb[i].args);
    src->xb[i] = src->xb[--src->n_xb];
}

/* Remove binding i of src (tombstoned); an auto-delete src that lost its
 * last binding goes too. Returns 1 when src went. */
static int xbind_remove(asrv *as, aexchange *src, int i)
{
    asrv__meta_xbind(as, src, &src->xb[i], 0);
    asrv__xbind_forget(src, i);
    if (src->auto_delete && !src->builtin && src->n_b == 0 && src->n_xb == 0) {
        slog_debug("amqp: auto-delete exchange '%.*s' lost its last binding", (int)src->name_len,
                   src->name);
        asrv__exchange_remove(as, src);
        return 1;
    }
    return 0;
}

void asrv__xbind_exchange_gone(asrv *as, aexchange *x)
{
    /* As the source: x goes anyway, no auto-delete to consider. */
    while (x->n_xb > 0) {
        asrv__meta_xbind(as, x, &x->xb[x->n_xb - 1], 0);
        asrv__xbind_forget(x, x->n_xb - 1);
    }
    /* As the destination: a source may go with its last binding, and that
     * may take others along (the table changes): scan again after one. */
again:
    for (int i = 0; i < as->n_ex; i++) {
        aexchange *s = as->ex[i];
        for (int j = s->n_xb - 1; j >= 0; j--)
            if (s->xb[j].dx == x && xbind_remove(as, s, j))
                goto again;
    }
}

/* Alternate exchange ------------------------------------------------------------ */

int asrv__exchange_args_or_reply(asrv_conn *ac, uint16_t ch, cn_str xname, amqp_table args,
                                 cn_str *out_ae)
{
    *out_ae = (cn_str){"", 0};
    if (amqp_table_check(args) < 0) {
        asrv__conn_error(ac, AMQP_SYNTAX_ERROR, AMQP_CLASS_EXCHANGE, 10, "malformed arguments");
        return -1;
    }
    amqp_value v;
    if (amqp_table_get(args, "alternate-exchange", &v) < 0)
        return 0;
    if (v.tag != AMQP_T_LONGSTR || slen(v.u.str) > 255) {
        asrv__chan_error(ac, ch, AMQP_PRECONDITION_FAILED, AMQP_CLASS_EXCHANGE, 10,
                         "invalid arg 'alternate-exchange' for exchange '%.*s' in vhost '/': "
                         "a longstr exchange name is expected (field type '%c')",
                         SARG(xname), v.tag >= 0x20 && v.tag < 0x7f ? (char)v.tag : '?');
        return -1;
    }
    *out_ae = v.u.str;
    return 0;
}

void asrv__exchange_set_args(aexchange *x, amqp_table args)
{
    free(x->args);
    free(x->ae);
    x->args = NULL;
    x->args_len = 0;
    x->ae = NULL;
    x->ae_len = 0;
    if (args.len == 0)
        return;
    x->args = dup_mem(args.ptr, args.len);
    x->args_len = args.len;
    amqp_value v;
    if (amqp_table_check(args) == 0 && amqp_table_get(args, "alternate-exchange", &v) == 0 &&
        v.tag == AMQP_T_LONGSTR && slen(v.u.str) <= 255) {
        x->ae = dup_mem(v.u.str.ptr, (size_t)slen(v.u.str));
        x->ae_len = slen(v.u.str);
    }
}

/* Routing --------------------------------------------------------------------- */

void asrv__route_init(aroute *r)
{
    r->q = r->inl;
    r->n = 0;
    r->cap = (int)CN_ARRAY_LEN(r->inl);
}

void asrv__route_fini(aroute *r)
{
    if (r->q != r->inl)
        free(r->q);
    r->q = r->inl;
    r->n = 0;
}

static void route_add(aroute *r, aqueue *q)
{
    for (int j = 0; j < r->n; j++)
        if (r->q[j] == q)
            return;
    if (r->n == r->cap) {
        aqueue **nq = xmalloc((size_t)r->cap * 2 * sizeof(*nq));
        memcpy(nq, r->q, (size_t)r->n * sizeof(*nq));
        if (r->q != r->inl)
            free(r->q);
        r->q = nq;
        r->cap *= 2;
    }
    r->q[r->n++] = q;
}

/* The exchanges still to route through (a stack). */
typedef struct xwork {
    aexchange **x;
    int n, cap;
    aexchange *inl[16];
} xwork;

static void work_push(xwork *w, aexchange *x, uint64_t gen)
{
    if (x->route_seen == gen)
        return; /* already routed through (or waiting): a cycle or a second path */
    x->route_seen = gen;
    if (w->n == w->cap) {
        aexchange **nx = xmalloc((size_t)w->cap * 2 * sizeof(*nx));
        memcpy(nx, w->x, (size_t)w->n * sizeof(*nx));
        if (w->x != w->inl)
            free(w->x);
        w->x = nx;
        w->cap *= 2;
    }
    w->x[w->n++] = x;
}

void asrv__xroute(asrv *as, aexchange *x, const amsg *m, amqp_table headers, aroute *r)
{
    uint64_t gen = ++as->route_gen;
    xwork w;
    w.x = w.inl;
    w.n = 0;
    w.cap = (int)CN_ARRAY_LEN(w.inl);
    work_push(&w, x, gen);
    while (w.n > 0) {
        aexchange *e = w.x[--w.n];
        int matched = 0;
        if (e->name_len == 0) {
            /* the default exchange, reached as an alternate exchange: the
             * queue named by the routing key */
            aqueue *q = asrv__queue_find(as, m->routing_key);
            if (q) {
                matched = 1;
                route_add(r, q);
            }
        }
        for (int i = 0; i < e->n_b; i++)
            if (asrv__binding_matches(e, &e->b[i], m, headers)) {
                matched = 1;
                route_add(r, e->b[i].q);
            }
        for (int i = 0; i < e->n_xb; i++)
            if (asrv__binding_matches(e, &e->xb[i], m, headers)) {
                matched = 1;
                work_push(&w, e->xb[i].dx, gen);
            }
        if (!matched && e->ae) {
            aexchange *ae = asrv__exchange_find(as, (cn_str){e->ae, e->ae_len});
            if (ae)
                work_push(&w, ae, gen);
            else
                slog_debug("amqp: alternate exchange '%s' of exchange '%.*s' does not exist",
                           e->ae, (int)e->name_len, e->name);
        }
    }
    if (w.x != w.inl)
        free(w.x);
}

/* exchange.bind / exchange.unbind ----------------------------------------------- */

/* Both ends of a bind or unbind (method id mid): 0, or -1 after a soft error. */
static int ends(asrv_conn *ac, uint16_t ch, uint16_t mid, cn_str src_name, cn_str dst_name,
                aexchange **out_src, aexchange **out_dst)
{
    if (slen(src_name) == 0 || slen(dst_name) == 0) {
        asrv__chan_error(ac, ch, AMQP_ACCESS_REFUSED, AMQP_CLASS_EXCHANGE, mid,
                         "operation not permitted on the default exchange");
        return -1;
    }
    *out_src = asrv__exchange_find(ac->as, src_name);
    if (!*out_src) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_EXCHANGE, mid,
                         "no exchange '%.*s' in vhost '/'", SARG(src_name));
        return -1;
    }
    *out_dst = asrv__exchange_find(ac->as, dst_name);
    if (!*out_dst) {
        asrv__chan_error(ac, ch, AMQP_NOT_FOUND, AMQP_CLASS_EXCHANGE, mid,
                         "no exchange '%.*s' in vhost '/'", SARG(dst_name));
        return -1;
    }
    return 0;
}

static void on_bind(asrv_conn *ac, uint16_t ch, const amqp_exchange_bind *m)
{
    aexchange *src, *dst;
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 30, ACL_OP_WRITE, ACL_R_TOPIC,
                               m->destination) ||
        !asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 30, ACL_OP_READ, ACL_R_TOPIC,
                               m->source))
        return;
    if (ends(ac, ch, 30, m->source, m->destination, &src, &dst) < 0)
        return;
    if (amqp_table_check(m->arguments) < 0) {
        asrv__conn_error(ac, AMQP_SYNTAX_ERROR, AMQP_CLASS_EXCHANGE, 30, "malformed arguments");
        return;
    }
    if (asrv__xbind_find(src, dst, m->routing_key, m->arguments) < 0) {
        asrv__xbind_add(src, dst, m->routing_key, m->arguments);
        asrv__meta_xbind(ac->as, src, &src->xb[src->n_xb - 1], 1);
    }
    if (!m->nowait) {
        amqp_exchange_bind_ok ok;
        amqp_exchange_bind_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_EXCHANGE_BIND_OK, &ok);
    }
}

static void on_unbind(asrv_conn *ac, uint16_t ch, const amqp_exchange_unbind *m)
{
    aexchange *src, *dst;
    if (!asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 40, ACL_OP_WRITE, ACL_R_TOPIC,
                               m->destination) ||
        !asrv__allow_or_refuse(ac, ch, AMQP_CLASS_EXCHANGE, 40, ACL_OP_READ, ACL_R_TOPIC,
                               m->source))
        return;
    if (ends(ac, ch, 40, m->source, m->destination, &src, &dst) < 0)
        return;
    int i = asrv__xbind_find(src, dst, m->routing_key, m->arguments);
    if (i >= 0)
        xbind_remove(ac->as, src, i);
    if (!m->nowait) {
        amqp_exchange_unbind_ok ok;
        amqp_exchange_unbind_ok_init(&ok);
        asrv__send_method(ac, ch, AMQP_EXCHANGE_UNBIND_OK, &ok);
    }
}

void ah_xbind(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    if (m->info->id == AMQP_EXCHANGE_BIND)
        on_bind(ac, ch, &m->args.exchange_bind);
    else
        on_unbind(ac, ch, &m->args.exchange_unbind);
}
