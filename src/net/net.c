/* TCP servers, connections, framing through the protocol table, and ordered
 * responses. See net.h.
 *
 * Read path: level-triggered EPOLLIN; one read(2) per event into the
 * connection's buffer. proto->frame_len delimits frames; complete ones are
 * handed to proto->on_frame in place, then a partial tail is moved to the
 * front. The buffer grows to the frame length frame_len hints (net_scan.need)
 * in one step, else doubles when full; one that grew past NET_RBUF_KEEP is
 * freed by the sweep once it is empty and the connection was quiet for a
 * sweep period (freeing it after every large frame made each one come
 * back as fresh, zero-filled pages: a produce connection of 1 MiB batches
 * paid that per request). A frame may not exceed frame_max = max_frame_bytes +
 * proto->frame_overhead, so the buffer is bounded whatever frame_len does.
 *
 * Write path: responses leave in slot order. Consecutive ready responses
 * without file splices go out in one writev; a splice goes out with sendfile
 * between the buffer parts around it. EPOLLOUT is watched only while output
 * is blocked.
 *
 * Streaming slots (net_resp_flush) are sent like ready ones but stay at the
 * head once their bytes are out; the sent prefix of their buffer is dropped
 * at the next flush (or the buffer reset when all of it left).
 *
 * Flow control: a connection paused by the protocol (net_conn_pause_read)
 * has EPOLLIN off like one over max_inflight; out_bytes counts the bytes of
 * ready slots not completely sent (added at net_resp_ready, taken off when
 * the slot leaves) and the unsent flushed bytes of a streaming slot (each
 * slot's share is r->counted). Work that must not run inside the call that makes it
 * due (on_drain, parsing frames buffered before a resume) is put on the
 * server's deferred list and done by the loop hook.
 *
 * Freeing: a closed connection is unlinked from the loop at once but freed in
 * a loop hook after the current batch of events, and only when no pending
 * slot still points at it. */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/tls.h"
#include "util/common.h"
#include "util/slog.h"

#define NET_RBUF_INIT 16384
#define NET_RBUF_KEEP (256 * 1024) /* larger buffers are freed once empty */
#define NET_SWEEP_MS 1000
#define NET_IOV_MAX 64
#define NET_RESP_ARENA_BLOCK 16384
#define NET_TLS_READ_BUDGET (256 * 1024) /* decrypted bytes per readiness event */

/* RESP_STREAM: flushed at least once (net_resp_flush), still open. */
enum { RESP_PENDING = 0, RESP_READY = 1, RESP_NONE = 2, RESP_STREAM = 3 };

struct net_conn {
    net_server *srv;
    loop_io io;
    uint64_t id;
    char peer[64];
    char host[64];               /* peer without the port */
    uint8_t *rbuf;
    size_t rlen, rcap;
    net_resp *head, *tail;       /* slots in request order */
    int n_slots;
    net_resp *free_slots;        /* recycled */
    void *cctx;                  /* the protocol's per-connection context */
    int refs;                    /* pending slots held by handlers after close */
    int closed;
    int opened;                  /* proto->conn_open succeeded (conn_close is owed) */
    int paused;                  /* reading stopped: too many slots */
    int held;                    /* reading stopped by the protocol (net_conn_pause_read) */
    size_t out_bytes;            /* bytes of ready slots not sent completely */
    size_t drain_below;          /* net_conn_want_drain: on_drain at or below this */
    int want_drain;              /* net_conn_want_drain armed */
    int drain_due;               /* on_drain to call from the hook */
    int deferred;                /* in srv->deferred */
    struct net_conn *deferred_next;
    int64_t last_active;         /* monotonic ms of the last bytes in or out */
    int64_t partial_since;       /* monotonic ms when a partial frame started, 0 none */
    int parsing;                 /* inside conn_parse (no re-entry) */
    int connecting;              /* outgoing: connect(2) not finished; output waits */
    void *user;                  /* net_server_connect's conn_arg; NULL when accepted */
    int close_after;             /* net_conn_close_after: close once no slot is left */
    char close_why[96];
    int seen_bytes;              /* the first bytes arrived (plaintext-port TLS check) */
    tls_sess *tls;               /* TLS session, NULL on a plaintext connection */
    int handshaking;             /* TLS handshake not finished: no frames, no output */
    int tls_wait;                /* TLS_WANT_READ/WRITE a blocked handshake waits for */
    int64_t hs_start;            /* monotonic ms the handshake started */
    loop_timer tls_kick;         /* read again: bytes buffered inside the TLS session */
    struct net_conn *next, *prev;   /* server's open list, or its graveyard */
};

struct net_server {
    loop *l;
    loop_io lio;
    char host[64];
    int port;
    net_limits lim;
    size_t frame_max;            /* lim.max_frame_bytes + proto->frame_overhead */
    const net_proto *proto;
    void *arg;                   /* the protocol's */
    net_conn *conns;             /* open */
    net_conn *graveyard;         /* closed, waiting to be freed */
    net_conn *deferred;          /* work for the hook: on_drain, buffered frames to parse */
    int n_conns;
    uint64_t next_id;
    loop_timer sweep;            /* idle and slow-request checks */
    int64_t last_refused_log;
    tls_ctx *tls;                /* owned; NULL: plaintext listener */
    tls_ctx *tls_client;         /* owned; dialed connections use TLS with it */
    uint32_t tag;                /* net_server_set_tag */
};

static void conn_io_cb(loop_io *io, uint32_t events);
static void conn_flush(net_conn *c);
static void conn_parse(net_conn *c);
static void conn_update_events(net_conn *c, int want_out);
static void conn_defer(net_conn *c);
static void conn_check_drain(net_conn *c);
static void conn_read(net_conn *c);
static void conn_tls_kick(net_conn *c);

/* Slots ---------------------------------------------------------------- */

static void resp_free(net_resp *r)
{
    wbuf_fini(&r->w); /* releases the splices */
    arena_fini(&r->a);
    free(r);
}

/* Back to the connection's free list (or freed when the conn is gone). */
static void resp_recycle(net_conn *c, net_resp *r)
{
    wbuf_reset(&r->w); /* releases the splices: their bytes are sent (or dropped) */
    arena_reset(&r->a);
    r->ctx = NULL;
    r->next = c->free_slots;
    c->free_slots = r;
}

net_resp *net_resp_new(net_conn *c)
{
    CN_ASSERT(!c->closed); /* a closed connection's slots are not counted in refs */
    net_resp *r = c->free_slots;
    if (r) {
        c->free_slots = r->next;
    } else {
        r = xcalloc(1, sizeof(*r));
        wbuf_init(&r->w);
        arena_init(&r->a, NET_RESP_ARENA_BLOCK, 0);
    }
    r->next = NULL;
    r->conn = c;
    r->state = RESP_PENDING;
    r->sent = 0;
    r->counted = 0;
    r->ctx = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->n_slots++;
    return r;
}

int net_resp_alive(const net_resp *r) { return r->conn && !r->conn->closed; }

/* Count r's unsent bytes in out_bytes again (ready and streaming slots). */
static void resp_count(net_conn *c, net_resp *r)
{
    c->out_bytes -= r->counted;
    r->counted = r->state == RESP_READY || r->state == RESP_STREAM
                     ? wbuf_total(&r->w) - r->sent : 0;
    c->out_bytes += r->counted;
}

/* The head slot has bytes to send now. */
static int conn_has_output(const net_conn *c)
{
    const net_resp *h = c->head;
    return h && (h->state == RESP_READY || (h->state == RESP_STREAM && h->sent < h->w.len));
}

static void resp_finish(net_resp *r, int state)
{
    net_conn *c = r->conn;
    int streamed = r->state == RESP_STREAM;
    r->state = state;
    if (c->closed) {
        /* The connection went away while this slot was parked. */
        resp_free(r);
        c->refs--; /* the graveyard hook frees c once this reaches 0 */
        return;
    }
    const net_proto *p = c->srv->proto;
    if (state == RESP_READY && p->resp_seal && !streamed)
        p->resp_seal(c->srv->arg, c->cctx, r);
    resp_count(c, r); /* a dropped stream's unsent bytes are not owed any more */
    if (c->head == r)
        conn_flush(c);
}

void net_resp_flush(net_resp *r)
{
    net_conn *c = r->conn;
    CN_ASSERT(r->state == RESP_PENDING || r->state == RESP_STREAM);
    CN_ASSERT(r->w.n_splices == 0);
    if (c->closed) {
        wbuf_reset(&r->w);
        r->sent = 0;
        return;
    }
    if (r->sent > 0) { /* drop the sent prefix: r->w holds only what is owed */
        memmove(r->w.buf, r->w.buf + r->sent, r->w.len - r->sent);
        r->w.len -= r->sent;
        r->sent = 0;
    }
    r->state = RESP_STREAM;
    resp_count(c, r);
    if (c->head == r)
        conn_flush(c);
}

void net_resp_ready(net_resp *r) { resp_finish(r, RESP_READY); }
void net_resp_drop(net_resp *r) { resp_finish(r, RESP_NONE); }

/* Connections ------------------------------------------------------------ */

const char *net_conn_peer(const net_conn *c) { return c->peer; }
const char *net_conn_host(const net_conn *c) { return c->host; }
uint64_t net_conn_id(const net_conn *c) { return c->id; }
void *net_conn_ctx(const net_conn *c) { return c->cctx; }
void *net_conn_user(const net_conn *c) { return c->user; }
net_server *net_conn_server(const net_conn *c) { return c->srv; }
int net_conn_connecting(const net_conn *c) { return c->connecting; }

void net_conn_pause_read(net_conn *c)
{
    if (c->closed || c->held)
        return;
    c->held = 1;
    conn_update_events(c, (c->io.events & EPOLLOUT) != 0);
}

void net_conn_resume_read(net_conn *c)
{
    if (c->closed || !c->held)
        return;
    c->held = 0;
    c->last_active = loop_now(c->srv->l);
    if (c->rlen > 0)
        c->partial_since = c->last_active; /* the slow-request clock starts again */
    conn_update_events(c, (c->io.events & EPOLLOUT) != 0);
    if (!c->closed && c->rlen > 0)
        conn_defer(c);
    conn_tls_kick(c);
}

int net_conn_read_paused(const net_conn *c) { return c->held; }

/* Nothing left to send: no slot, and no TLS record staged. */
static int conn_out_idle(const net_conn *c)
{
    return !c->head && !(c->tls && tls_out_pending(c->tls));
}

void net_conn_close_after(net_conn *c, const char *reason)
{
    if (c->closed || c->close_after)
        return;
    c->close_after = 1;
    snprintf(c->close_why, sizeof(c->close_why), "%s", reason);
    net_conn_pause_read(c);
    if (conn_out_idle(c))
        conn_defer(c);
}

size_t net_conn_out_bytes(const net_conn *c) { return c->out_bytes; }

void net_conn_want_drain(net_conn *c, size_t below)
{
    if (c->closed)
        return;
    c->want_drain = 1;
    c->drain_below = below;
    conn_check_drain(c);
}

static void list_remove(net_conn **list, net_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void list_push(net_conn **list, net_conn *c)
{
    c->prev = NULL;
    c->next = *list;
    if (*list)
        (*list)->prev = c;
    *list = c;
}

static void conn_free(net_conn *c)
{
    while (c->free_slots) {
        net_resp *r = c->free_slots;
        c->free_slots = r->next;
        resp_free(r);
    }
    free(c->rbuf);
    free(c);
}

void net_conn_close(net_conn *c, const char *reason)
{
    if (c->closed)
        return;
    net_server *s = c->srv;
    slog_info("connection %llu from %s closed: %s", (unsigned long long)c->id, c->peer, reason);
    c->closed = 1;
    if (c->opened && s->proto->conn_close)
        s->proto->conn_close(s->arg, c, c->cctx);
    c->cctx = NULL;
    loop_io_stop(s->l, &c->io);
    loop_timer_stop(s->l, &c->tls_kick);
    tls_free(c->tls);
    c->tls = NULL;
    close(c->io.fd);
    c->io.fd = -1;
    /* Slots already finished are dropped now; pending ones keep a reference. */
    net_resp *r = c->head;
    c->head = c->tail = NULL;
    while (r) {
        net_resp *next = r->next;
        if (r->state == RESP_PENDING || r->state == RESP_STREAM) {
            r->next = NULL;
            c->refs++;
        } else {
            resp_free(r);
        }
        r = next;
    }
    c->n_slots = 0;
    list_remove(&s->conns, c);
    s->n_conns--;
    list_push(&s->graveyard, c);
}

/* Work that must not run inside the call that made it due: the hook does it. */
static void conn_defer(net_conn *c)
{
    if (c->deferred)
        return;
    c->deferred = 1;
    c->deferred_next = c->srv->deferred;
    c->srv->deferred = c;
}

/* net_conn_want_drain is armed and the output fell low enough. */
static void conn_check_drain(net_conn *c)
{
    if (c->want_drain && c->out_bytes <= c->drain_below) {
        c->want_drain = 0;
        c->drain_due = 1;
        conn_defer(c);
    }
}

/* After each batch: the deferred work (on_drain calls; frames that were
 * buffered when net_conn_resume_read ran), then free closed connections. */
static void server_reap(void *arg)
{
    net_server *s = arg;
    while (s->deferred) {
        net_conn *r = s->deferred;
        s->deferred = r->deferred_next;
        r->deferred_next = NULL;
        r->deferred = 0;
        if (r->drain_due && !r->closed) {
            r->drain_due = 0;
            if (s->proto->on_drain)
                s->proto->on_drain(s->arg, r, r->cctx);
        }
        if (!r->closed && r->close_after && conn_out_idle(r))
            net_conn_close(r, r->close_why);
        if (!r->closed && !r->held && !r->paused && !r->parsing && r->rlen > 0)
            conn_parse(r);
    }
    net_conn *c = s->graveyard;
    while (c) {
        net_conn *next = c->next;
        if (c->refs == 0) {
            list_remove(&s->graveyard, c);
            conn_free(c);
        }
        c = next;
    }
}

static void conn_update_events(net_conn *c, int want_out)
{
    if (c->connecting)
        want_out = 1; /* the connect's completion shows as writable */
    uint32_t ev = (c->paused || c->held ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0);
    if (c->handshaking && !c->connecting)
        ev = c->tls_wait == TLS_WANT_WRITE ? EPOLLOUT : EPOLLIN;
    if (loop_io_modify(c->srv->l, &c->io, ev) < 0)
        net_conn_close(c, "epoll_ctl failed");
}

/* Pop finished slots from the head. */
static void conn_pop_head(net_conn *c)
{
    c->last_active = loop_now(c->srv->l);
    net_resp *r = c->head;
    c->head = r->next;
    if (!c->head)
        c->tail = NULL;
    c->n_slots--;
    c->out_bytes -= r->counted;
    r->counted = 0;
    resp_recycle(c, r);
}

/* The three places bytes leave, plaintext or TLS. Each returns the bytes
 * taken, or -1 with errno EAGAIN (blocked: wait for EPOLLOUT), EINTR, or
 * another errno (close the connection with conn_io_reason). */
static ssize_t tls_result(ssize_t w)
{
    if (w >= 0)
        return w;
    errno = w == -TLS_WANT_WRITE || w == -TLS_WANT_READ ? EAGAIN : EPROTO;
    return -1;
}

static ssize_t conn_writev(net_conn *c, const struct iovec *iov, int n)
{
    if (c->tls)
        return tls_result(tls_write_iov(c->tls, iov, n));
    return writev(c->io.fd, iov, n);
}

static ssize_t conn_send(net_conn *c, const void *buf, size_t len, int more)
{
    if (c->tls) {
        struct iovec v = {(void *)buf, len};
        return tls_result(tls_write_iov(c->tls, &v, 1));
    }
    return send(c->io.fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static ssize_t conn_sendfile(net_conn *c, int fd, off_t off, size_t len)
{
    if (c->tls)
        return tls_result(tls_write_file(c->tls, fd, (int64_t)off, len));
    return sendfile(c->io.fd, fd, &off, len);
}

/* Why the last conn_* I/O failed, for the close line. */
static const char *conn_io_reason(const net_conn *c)
{
    return c->tls && errno == EPROTO ? tls_error(c->tls) : strerror(errno);
}

/* Send what can be sent. Returns with EPOLLOUT armed if the socket is full. */
static void conn_flush(net_conn *c)
{
    if (c->connecting || c->handshaking)
        return;
    for (;;) {
        while (c->head && c->head->state == RESP_NONE)
            conn_pop_head(c);
        net_resp *r = c->head;
        if (r && r->state == RESP_STREAM && r->sent == r->w.len) {
            wbuf_reset(&r->w); /* a stream with everything sent: wait for more */
            r->sent = 0;
            break;
        }
        if (!r || (r->state != RESP_READY && r->state != RESP_STREAM))
            break;
        if (r->w.n_splices == 0) {
            /* Gather this and following plain responses into one writev (up
             * to and including an open stream's unsent bytes). */
            struct iovec iov[NET_IOV_MAX];
            int n = 0;
            for (net_resp *q = r; q && n < NET_IOV_MAX; q = q->next) {
                if (q->state == RESP_NONE)
                    continue;
                if (q->state == RESP_STREAM) {
                    if (q->w.len > q->sent) {
                        iov[n].iov_base = q->w.buf + q->sent;
                        iov[n].iov_len = q->w.len - q->sent;
                        n++;
                    }
                    break;
                }
                if (q->state != RESP_READY || q->w.n_splices)
                    break;
                iov[n].iov_base = q->w.buf + q->sent;
                iov[n].iov_len = q->w.len - q->sent;
                n++;
            }
            ssize_t w = conn_writev(c, iov, n);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    goto blocked;
                if (errno == EINTR)
                    continue;
                net_conn_close(c, conn_io_reason(c));
                return;
            }
            size_t left = (size_t)w;
            while (c->head && (c->head->state == RESP_NONE || left > 0)) {
                net_resp *h = c->head;
                if (h->state == RESP_NONE) {
                    conn_pop_head(c);
                    continue;
                }
                size_t rem = h->w.len - h->sent;
                if (h->state == RESP_STREAM) { /* the last one written; stays open */
                    size_t k = left < rem ? left : rem;
                    h->sent += k;
                    left = 0;
                    c->last_active = loop_now(c->srv->l);
                    resp_count(c, h);
                    break;
                }
                if (left >= rem) {
                    left -= rem;
                    conn_pop_head(c);
                } else {
                    h->sent += left;
                    left = 0;
                }
            }
            continue;
        }
        /* A response with file splices: walk buffer parts and slices. */
        size_t pos = r->sent;            /* position in the virtual stream */
        size_t vstart = 0;               /* virtual start of the current part */
        size_t bstart = 0;               /* buffer offset of the current buffer part */
        int done = 1;
        for (size_t i = 0; i <= r->w.n_splices; i++) {
            size_t bend = i < r->w.n_splices ? r->w.splices[i].at : r->w.len;
            size_t blen = bend - bstart;
            if (pos < vstart + blen) {
                size_t off = pos - vstart;
                int more = i < r->w.n_splices;
                ssize_t w = conn_send(c, r->w.buf + bstart + off, blen - off, more);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        done = 0;
                        break;
                    }
                    if (errno == EINTR) {
                        done = 0;
                        i--; /* retry this part */
                        continue;
                    }
                    net_conn_close(c, conn_io_reason(c));
                    return;
                }
                r->sent += (size_t)w;
                pos += (size_t)w;
                if ((size_t)w < blen - off) {
                    done = 0;
                    break;
                }
            }
            vstart += blen;
            bstart = bend;
            if (i == r->w.n_splices)
                break;
            const wbuf_splice *sp = &r->w.splices[i];
            size_t slen = sp->len;
            if (pos < vstart + slen) {
                size_t off = pos - vstart;
                off_t foff = (off_t)(sp->f.pos + (int64_t)off);
                ssize_t w = conn_sendfile(c, sp->f.fd, foff, slen - off);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        done = 0;
                        break;
                    }
                    net_conn_close(c, conn_io_reason(c));
                    return;
                }
                if (w == 0) {
                    /* The file is shorter than promised: cannot keep framing. */
                    net_conn_close(c, "sendfile hit end of file");
                    return;
                }
                r->sent += (size_t)w;
                pos += (size_t)w;
                if ((size_t)w < slen - off) {
                    done = 0;
                    break;
                }
            }
            vstart += slen;
        }
        if (!done) {
            if (r->sent == wbuf_total(&r->w))
                continue;
            goto blocked;
        }
        conn_pop_head(c);
    }
    if (c->tls && tls_out_pending(c->tls)) { /* the last record staged */
        int rc = tls_flush(c->tls);
        if (rc < 0 && rc != -TLS_WANT_WRITE && rc != -TLS_WANT_READ) {
            net_conn_close(c, tls_error(c->tls));
            return;
        }
    }
    int staged = c->tls && tls_out_pending(c->tls); /* EPOLLOUT until it leaves */
    conn_check_drain(c);
    if (c->close_after && conn_out_idle(c))
        conn_defer(c); /* the hook closes it: never inside a net_resp_* call */
    if (c->paused && c->n_slots < c->srv->lim.max_inflight) {
        c->paused = 0;
        conn_update_events(c, staged);
        /* Frames may already be buffered. */
        if (!c->parsing && !c->held)
            conn_parse(c);
        conn_tls_kick(c);
        return;
    }
    conn_update_events(c, staged);
    return;
blocked:
    conn_update_events(c, 1);
}

/* Hand complete frames to the callback. */
static void conn_parse_frames(net_conn *c);
static void conn_parse(net_conn *c)
{
    c->parsing = 1;
    conn_parse_frames(c);
    c->parsing = 0;
}

/* A frame that cannot be served: one warning line, then close. */
static void conn_reject(net_conn *c, const char *why)
{
    slog_warn("connection %llu from %s: %s", (unsigned long long)c->id, c->peer, why);
    net_conn_close(c, why);
}

static void conn_parse_frames(net_conn *c)
{
    net_server *s = c->srv;
    const net_proto *proto = s->proto;
    size_t off = 0;
    while (!c->closed && c->rlen > off && !c->held) {
        if (c->n_slots >= s->lim.max_inflight) {
            c->paused = 1;
            conn_update_events(c, conn_has_output(c));
            break;
        }
        const uint8_t *p = c->rbuf + off;
        size_t avail = c->rlen - off;
        net_scan scan;
        scan.need = 0;
        scan.why[0] = '\0';
        int64_t n = proto->frame_len(c->cctx, p, avail, &s->lim, &scan);
        if (n < 0) {
            if (!scan.why[0])
                snprintf(scan.why, sizeof(scan.why), "malformed %s frame: %s", proto->name,
                         cn_strerror((int)n));
            conn_reject(c, scan.why);
            return;
        }
        CN_ASSERT((uint64_t)n <= avail);
        size_t len = n > 0 ? (size_t)n : scan.need;
        if (len > s->frame_max || (n == 0 && len == 0 && avail >= s->frame_max)) {
            char why[96];
            snprintf(why, sizeof(why), "%s frame larger than %zu bytes", proto->name,
                     s->frame_max);
            conn_reject(c, why);
            return;
        }
        if (n == 0) {
            /* Make room for the whole frame when its length is known. */
            if (len > c->rcap) {
                if (off > 0) {
                    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
                    c->rlen -= off;
                    off = 0;
                }
                c->rcap = len;
                c->rbuf = xrealloc(c->rbuf, c->rcap);
            }
            break;
        }
        off += len;
        proto->on_frame(s->arg, c, c->cctx, p, len);
    }
    if (c->closed)
        return;
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->rlen == 0) {
        c->partial_since = 0;
    } else if (off > 0 || c->partial_since == 0) {
        c->partial_since = loop_now(s->l);
    }
}

/* Read once into the buffer (growing it when full): 1 bytes arrived, 0
 * nothing now, -1 the connection was closed. */
static int conn_read_once(net_conn *c)
{
    net_server *s = c->srv;
    if (c->rlen == c->rcap) {
        /* No buffer yet, or full with a partial frame conn_parse sized for. */
        size_t cap = c->rcap ? c->rcap * 2 : NET_RBUF_INIT;
        /* A partial frame of frame_max bytes is already a verdict. */
        if (c->rcap > 0 && c->rcap < s->frame_max && cap > s->frame_max)
            cap = s->frame_max;
        c->rcap = cap;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    ssize_t n;
    if (c->tls) {
        /* ACK at once: a client's TLS library writes a request as several
         * records, and with Nagle on (librdkafka's default) the later ones
         * wait for our ACK, which delayed ACK holds back for 40 ms. The
         * kernel clears QUICKACK on its own, so it is set at every read. */
        int one = 1;
        setsockopt(c->io.fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        n = tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n == -TLS_WANT_READ || n == -TLS_WANT_WRITE)
            return 0;
        if (n < 0) {
            slog_warn("connection %llu from %s: %s", (unsigned long long)c->id, c->peer,
                      tls_error(c->tls));
            net_conn_close(c, tls_error(c->tls));
            return -1;
        }
    } else {
        n = read(c->io.fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            net_conn_close(c, strerror(errno));
            return -1;
        }
    }
    if (n == 0) {
        net_conn_close(c, "peer closed");
        return -1;
    }
    if (!c->seen_bytes && !c->tls && !c->user && tls_looks_like_hello(c->rbuf, (size_t)n)) {
        slog_warn("connection %llu from %s: a TLS handshake on plaintext %s listener %s:%d "
                  "(is the client set to SSL?)", (unsigned long long)c->id, c->peer,
                  s->proto->name, s->host, s->port);
        net_conn_close(c, "TLS handshake on a plaintext listener");
        return -1;
    }
    c->seen_bytes = 1;
    c->rlen += (size_t)n;
    c->last_active = loop_now(s->l);
    return 1;
}

/* Readable: one read(2) for plaintext (level-triggered epoll calls again);
 * for TLS, reads and parses until the session has nothing buffered, up to
 * NET_TLS_READ_BUDGET bytes, then the kick timer takes the rest next turn
 * (epoll cannot see bytes already inside the session). */
static void conn_read(net_conn *c)
{
    size_t budget = NET_TLS_READ_BUDGET;
    for (;;) {
        size_t before = c->rlen;
        int rc = conn_read_once(c);
        if (rc < 0)
            return;
        if (!c->paused && !c->held && !c->parsing)
            conn_parse(c);
        if (!c->tls || rc == 0 || c->closed)
            return;
        size_t got = c->rlen >= before ? c->rlen - before : 0;
        budget = got >= budget ? 0 : budget - got;
        if (c->paused || c->held || !tls_in_pending(c->tls))
            return;
        if (budget == 0) {
            conn_tls_kick(c);
            return;
        }
    }
}

static void tls_kick_cb(loop_timer *t)
{
    net_conn *c = t->data;
    if (!c->closed && !c->paused && !c->held && !c->handshaking)
        conn_read(c);
}

/* Bytes are buffered inside the TLS session and reading may go on: read
 * them on the next loop turn. */
static void conn_tls_kick(net_conn *c)
{
    if (c->tls && !c->closed && !c->handshaking && !c->paused && !c->held &&
        tls_in_pending(c->tls) && !loop_timer_armed(&c->tls_kick))
        loop_timer_start(c->srv->l, &c->tls_kick, 0);
}

/* Drive the TLS handshake; when it completes, the connection opens for the
 * protocol (conn_open of an accepted one runs now) and reads any bytes the
 * client sent behind its Finished message. */
static void conn_handshake(net_conn *c)
{
    net_server *s = c->srv;
    int rc = tls_handshake(c->tls);
    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        c->tls_wait = rc;
        conn_update_events(c, 0);
        return;
    }
    if (rc < 0) {
        slog_warn("connection %llu from %s: %s", (unsigned long long)c->id, c->peer,
                  tls_error(c->tls));
        net_conn_close(c, tls_error(c->tls));
        return;
    }
    c->handshaking = 0;
    c->tls_wait = 0;
    c->seen_bytes = 1;
    c->last_active = loop_now(s->l);
    const char *subj = tls_peer_subject(c->tls);
    slog_debug("%s connection %llu from %s: %s%s%s", s->proto->name, (unsigned long long)c->id,
               c->peer, tls_describe(c->tls), subj[0] ? ", client " : "", subj);
    if (!c->opened) {
        if (s->proto->conn_open) {
            int orc = s->proto->conn_open(s->arg, c, &c->cctx);
            if (orc < 0) {
                net_conn_close(c, cn_strerror(orc));
                return;
            }
        }
        c->opened = 1;
    }
    conn_update_events(c, c->head != NULL);
    if (c->closed)
        return;
    if (c->head)
        conn_flush(c);
    if (!c->closed && !c->paused && !c->held)
        conn_read(c);
}

static void conn_io_cb(loop_io *io, uint32_t events)
{
    net_conn *c = io->data;
    net_server *s = c->srv;
    if (c->closed)
        return;
    if (c->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err) {
            net_conn_close(c, strerror(err));
            return;
        }
        c->connecting = 0;
        c->last_active = loop_now(s->l);
        slog_info("%s connection %llu to %s established", s->proto->name,
                  (unsigned long long)c->id, c->peer);
        if (c->tls) {
            c->hs_start = c->last_active;
            conn_handshake(c);
            return;
        }
        conn_update_events(c, c->head != NULL);
        events |= EPOLLOUT;
    }
    if (c->handshaking) {
        conn_handshake(c);
        return;
    }
    if (events & EPOLLOUT) {
        conn_flush(c);
        if (c->closed)
            return;
    }
    if ((events & (EPOLLHUP | EPOLLERR)) && (c->paused || c->held)) {
        net_conn_close(c, "peer hung up");
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->paused && !c->held) {
        if (c->tls && tls_out_pending(c->tls))
            conn_flush(c); /* a staged record may have waited for a read */
        if (!c->closed)
            conn_read(c);
        return;
    }
    if (!c->paused && !c->held && !c->parsing)
        conn_parse(c);
}

/* Idle connections and slow (partial) requests. */
static void sweep_cb(loop_timer *t)
{
    net_server *s = t->data;
    int64_t now = loop_now_mono();
    net_conn *c = s->conns;
    while (c) {
        net_conn *next = c->next;
        if (c->close_after && c->out_bytes > 0 && s->lim.partial_ms > 0 &&
            now - c->last_active > s->lim.partial_ms) {
            /* closing after its answers, which the peer does not read */
            net_conn_close(c, "answers not read before the close");
        } else if (c->handshaking && !c->connecting && s->lim.partial_ms > 0 &&
                   now - c->hs_start > s->lim.partial_ms) {
            char why[96];
            snprintf(why, sizeof(why), "TLS handshake not finished after %lld ms",
                     (long long)(now - c->hs_start));
            slog_warn("connection %llu from %s: %s", (unsigned long long)c->id, c->peer, why);
            net_conn_close(c, why);
        } else if (c->held) {
            /* we stopped reading it: neither idle nor slow */
        } else if (c->rlen > 0 && c->partial_since > 0 && s->lim.partial_ms > 0 &&
            now - c->partial_since > s->lim.partial_ms) {
            char why[96];
            snprintf(why, sizeof(why), "request incomplete after %lld ms (%zu bytes received)",
                     (long long)(now - c->partial_since), c->rlen);
            slog_warn("connection %llu from %s: %s", (unsigned long long)c->id, c->peer, why);
            net_conn_close(c, why);
        } else if (c->n_slots == 0 && c->rlen == 0 && s->lim.idle_ms > 0 &&
                   now - c->last_active > s->lim.idle_ms) {
            net_conn_close(c, "idle");
        } else if (c->rlen == 0 && c->rcap > NET_RBUF_KEEP &&
                   now - c->last_active >= NET_SWEEP_MS) {
            free(c->rbuf); /* a large frame's buffer, quiet since */
            c->rbuf = NULL;
            c->rcap = 0;
        }
        c = next;
    }
    loop_timer_start(s->l, t, NET_SWEEP_MS);
}

/* Listener --------------------------------------------------------------- */

static void accept_cb(loop_io *io, uint32_t events)
{
    (void)events;
    net_server *s = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(s->lio.fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                slog_warn("accept failed: %s", strerror(errno));
            return;
        }
        if (s->n_conns >= s->lim.max_connections) {
            int64_t now = loop_now(s->l);
            if (now - s->last_refused_log >= 1000) { /* at most one line a second */
                slog_warn("connection refused: %d connections open (max.connections)",
                          s->n_conns);
                s->last_refused_log = now;
            }
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        net_conn *c = xcalloc(1, sizeof(*c));
        c->srv = s;
        c->id = ++s->next_id;
        c->last_active = loop_now(s->l);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (sa.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
        snprintf(c->host, sizeof(c->host), "%s", host);
        loop_timer_init(&c->tls_kick, tls_kick_cb, c);
        if (s->tls) {
            c->tls = tls_new(s->tls, fd);
            if (!c->tls) {
                slog_warn("connection from %s refused: cannot start a TLS session", c->peer);
                close(fd);
                free(c);
                continue;
            }
            c->handshaking = 1;
            c->tls_wait = TLS_WANT_READ;
            c->hs_start = c->last_active;
        }
        if (loop_io_start(s->l, &c->io, fd, EPOLLIN, conn_io_cb, c) < 0) {
            slog_warn("epoll add failed for %s", c->peer);
            tls_free(c->tls);
            close(fd);
            free(c->rbuf);
            free(c);
            continue;
        }
        list_push(&s->conns, c);
        s->n_conns++;
        slog_debug("%s connection %llu from %s", s->proto->name, (unsigned long long)c->id,
                   c->peer);
        if (c->handshaking)
            continue; /* conn_open runs once the handshake completes */
        if (s->proto->conn_open) {
            int rc = s->proto->conn_open(s->arg, c, &c->cctx);
            if (rc < 0) {
                net_conn_close(c, cn_strerror(rc));
                continue;
            }
        }
        c->opened = 1;
    }
}

/* Parse host (IPv4, IPv6 with or without brackets, "localhost") and port
 * into sa. 0 or -CN_EINVAL. */
static int parse_addr(const char *host, int port, struct sockaddr_storage *sa, socklen_t *sl)
{
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
    const char *h = host;
    char hbuf[64];
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 3 || n - 2 >= sizeof(hbuf))
            return -CN_EINVAL;
        memcpy(hbuf, h + 1, n - 2);
        hbuf[n - 2] = '\0';
        h = hbuf;
    }
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sl = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sl = sizeof(*a6);
        return 0;
    }
    return -CN_EINVAL;
}

int net_server_new(loop *l, const char *host, int port, const net_limits *lim,
                   const net_proto *proto, void *arg, net_server **out)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t sl;
    if (parse_addr(host[0] ? host : "0.0.0.0", port, &sa, &sl) < 0) {
        slog_error("listen: cannot parse host '%s' (use an IP address)", host);
        return -CN_EINVAL;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sl) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        slog_error("listen on %s:%d failed: %s", host, port, strerror(e));
        close(fd);
        return -e;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof(got);
    getsockname(fd, (struct sockaddr *)&got, &gl);
    net_server *s = xcalloc(1, sizeof(*s));
    s->l = l;
    s->lim = *lim;
    if (s->lim.max_inflight <= 0)
        s->lim.max_inflight = 128;
    if (s->lim.max_connections <= 0)
        s->lim.max_connections = 10000;
    s->proto = proto;
    s->arg = arg;
    s->frame_max = (size_t)(lim->max_frame_bytes > 0 ? lim->max_frame_bytes : 0) +
                   proto->frame_overhead;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                              : ((struct sockaddr_in6 *)&got)->sin6_port);
    int rc = loop_add_hook(l, server_reap, s);
    if (rc == 0) {
        rc = loop_io_start(l, &s->lio, fd, EPOLLIN, accept_cb, s);
        if (rc < 0)
            loop_remove_hook(l, server_reap, s);
    }
    if (rc < 0) {
        slog_error("listen on %s:%d failed: %s", host, port, cn_strerror(rc));
        close(fd);
        free(s);
        return rc;
    }
    loop_timer_init(&s->sweep, sweep_cb, s);
    if (s->lim.idle_ms > 0 || s->lim.partial_ms > 0)
        loop_timer_start(l, &s->sweep, NET_SWEEP_MS);
    *out = s;
    return 0;
}

int net_server_connect(net_server *s, const char *host, int port, void *conn_arg,
                       net_conn **out)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t sl;
    if (parse_addr(host, port, &sa, &sl) < 0) {
        slog_error("connect: cannot parse host '%s' (use an IP address)", host);
        return -CN_EINVAL;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int connecting = 0;
    if (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return -e;
        }
        connecting = 1;
    }
    net_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->id = ++s->next_id;
    c->last_active = loop_now(s->l);
    c->connecting = connecting;
    c->user = conn_arg;
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    snprintf(c->host, sizeof(c->host), "%s", host);
    loop_timer_init(&c->tls_kick, tls_kick_cb, c);
    if (s->tls_client) {
        c->tls = tls_new(s->tls_client, fd);
        if (!c->tls) {
            close(fd);
            free(c);
            return -CN_ENOMEM;
        }
        c->handshaking = 1;
        c->tls_wait = TLS_WANT_WRITE;
        c->hs_start = c->last_active;
    }
    if (loop_io_start(s->l, &c->io, fd, EPOLLIN | EPOLLOUT, conn_io_cb, c) < 0) {
        tls_free(c->tls);
        close(fd);
        free(c);
        return -CN_EIO;
    }
    list_push(&s->conns, c);
    s->n_conns++;
    if (s->proto->conn_open) {
        int rc = s->proto->conn_open(s->arg, c, &c->cctx);
        if (rc < 0) {
            net_conn_close(c, cn_strerror(rc));
            return rc;
        }
    }
    c->opened = 1;
    if (!connecting) /* with TLS: EPOLLOUT starts the handshake from the loop */
        conn_update_events(c, c->head != NULL);
    *out = c;
    return 0;
}
int net_server_conns_open(const net_server *s) { return s->n_conns; }
uint64_t net_server_conns_accepted(const net_server *s) { return s->next_id; }

int net_server_port(const net_server *s) { return s->port; }
const char *net_server_host(const net_server *s) { return s->host; }

void net_server_free(net_server *s)
{
    if (!s)
        return;
    while (s->conns)
        net_conn_close(s->conns, "shutdown");
    loop_timer_stop(s->l, &s->sweep);
    loop_io_stop(s->l, &s->lio);
    close(s->lio.fd);
    loop_remove_hook(s->l, server_reap, s);
    tls_ctx_free(s->tls);
    tls_ctx_free(s->tls_client);
    s->deferred = NULL; /* every connection is closed */
    /* Pending slots belong to handlers that are shut down first; free all. */
    while (s->graveyard) {
        net_conn *c = s->graveyard;
        list_remove(&s->graveyard, c);
        conn_free(c);
    }
    free(s);
}

void net_server_set_tls(net_server *s, tls_ctx *server_ctx, tls_ctx *client_ctx)
{
    if (server_ctx != s->tls) {
        tls_ctx_free(s->tls);
        s->tls = server_ctx;
    }
    if (client_ctx != s->tls_client) {
        tls_ctx_free(s->tls_client);
        s->tls_client = client_ctx;
    }
}

int net_server_tls(const net_server *s) { return s->tls != NULL; }
void net_server_set_tag(net_server *s, uint32_t tag) { s->tag = tag; }
uint32_t net_server_tag(const net_server *s) { return s->tag; }

int net_conn_tls(const net_conn *c) { return c->tls != NULL; }

const char *net_conn_tls_subject(net_conn *c)
{
    return c->tls && !c->handshaking ? tls_peer_subject(c->tls) : NULL;
}
