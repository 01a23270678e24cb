/* TCP servers for request/response protocols, protocol-neutral: each
 * listener is given a protocol table (net_proto) that says how its byte
 * stream splits into frames and what to do with each frame. net knows fds
 * and bytes; the protocol (the Kafka front end's ksrv_proto, later AMQP
 * 0-9-1 and HTTP/1.1) knows frames and their meaning. Several servers, each
 * with its own protocol, may run on one loop.
 *
 * Reading: the connection's buffered bytes go to proto->frame_len, which
 * returns the length of the next complete frame (0: need more bytes; <0:
 * close the connection with a reason). Each complete frame goes to
 * proto->on_frame in place; the frame bytes are valid only during that call,
 * so a handler that parks a request copies what it needs (into a slot's
 * arena). Examples of frame_len: Kafka reads an int32 size prefix; AMQP
 * 0-9-1 returns 8 for the protocol header "AMQP\0\0\x09\x01" (tracked in its
 * per-connection context), then 7 + size + 1 from each frame's type/channel/
 * size header; HTTP/1.1 finds CRLFCRLF, then adds Content-Length or walks
 * the chunks (it may remember how far it scanned in its context).
 *
 * Responses: a frame handler answers by taking response slots with
 * net_resp_new, in the order the answers must leave (Kafka: exactly one per
 * request; a protocol may also take slots outside on_frame, e.g. for
 * server-initiated frames, or none for frames without an answer). Each slot
 * is finished later with net_resp_ready (send r->w) or net_resp_drop (send
 * nothing). Slots may finish in any order; they leave in slot order, so
 * pipelined requests are answered in order. The protocol writes every byte
 * of a response into r->w, its own framing included; proto->resp_seal, if
 * set, runs at net_resp_ready to finish the framing (Kafka patches its size
 * prefix). File bytes go out with sendfile: splice a file range into r->w
 * (wbuf_splice_file, or the Kafka kw_splice); the slot holds that range's
 * reference until its bytes are sent and then releases it (util/wbuf.h).
 *
 * Streaming: a slot may also be answered in parts (HTTP's Server-Sent
 * Events): net_resp_flush sends what r->w holds so far and keeps the slot
 * open; the protocol appends more and flushes again, and ends with
 * net_resp_ready or net_resp_drop (contract at net_resp_flush). Later slots
 * of the connection wait until it ends.
 *
 * Limits: a frame longer than max_frame_bytes + proto->frame_overhead
 * (whether frame_len returns it, hints it in net_scan.need, or finds no end
 * within that many bytes) closes the connection; a protocol applies its own
 * exact rule in frame_len (Kafka: size field outside 8..max_frame_bytes).
 * Reading pauses while a connection has max_inflight unfinished or unsent
 * slots (so buffered responses per connection are bounded); a connection
 * with nothing in flight for idle_ms, or holding an incomplete frame for
 * partial_ms (slow-loris), is closed by a once-a-second sweep; more than
 * max_connections open are closed at accept. A connection's read buffer is
 * allocated on its first bytes; one grown past NET_RBUF_KEEP is freed by
 * the sweep once empty and a sweep period without traffic, so a busy
 * connection keeps it between large frames and an idle one holds at most
 * the small one.
 *
 * Ownership: the server owns connections and slots. A slot finished after
 * its connection closed is simply freed (its splices released). The
 * per-connection context belongs to the protocol: made by conn_open, given
 * back to conn_close. Steady state allocates nothing: slots, their buffers
 * and arenas are recycled per connection. Single-threaded: the loop thread
 * only. */
#ifndef CAIRN_NET_H
#define CAIRN_NET_H
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "util/arena.h"
#include "util/wbuf.h"

typedef struct net_server net_server;
typedef struct net_conn net_conn;

typedef struct net_resp {
    wbuf w;                      /* the bytes to send, framing included, and file splices */
    arena a;                     /* scratch for this request; reset on reuse */
    void *ctx;                   /* handler's */
    /* private */
    struct net_resp *next;
    net_conn *conn;
    int state;
    size_t sent;                 /* bytes of this response already sent */
    size_t counted;              /* bytes of it counted in the connection's out_bytes */
} net_resp;

typedef struct net_limits {
    int32_t max_frame_bytes;     /* socket.request.max.bytes (see frame_overhead) */
    int max_inflight;            /* slots per connection before reading pauses */
    int max_connections;         /* accepted connections at once (more are closed at accept) */
    int64_t idle_ms;             /* close connections with nothing in flight this long (0: never) */
    int64_t partial_ms;          /* close connections that leave a frame incomplete this long */
} net_limits;

/* What frame_len reports besides its return value. net zeroes need and
 * why[0] before each call. */
typedef struct net_scan {
    size_t need;                 /* with 0 returned: the whole frame's length when already
                                    known (the read buffer is sized for it once), else 0 */
    char why[96];                /* with <0 returned: the reason, for the log line */
} net_scan;

/* A protocol: how a listener's byte stream is framed and served. Callbacks
 * run on the loop thread; arg is the one given to net_server_new, cctx the
 * connection's context from conn_open (NULL without conn_open). */
typedef struct net_proto {
    const char *name;            /* "kafka": for log lines */
    /* Bytes of framing a frame may have beyond lim.max_frame_bytes (Kafka 4,
     * the size prefix); net's bound on a frame is the sum. */
    size_t frame_overhead;
    /* Optional. A connection was accepted: make its context in *out_cctx.
     * May take response slots (a greeting; set *out_cctx first, resp_seal
     * reads it). 0, or -CN_E* to refuse it (net closes the connection and
     * does not call conn_close); must not close the connection itself. */
    int (*conn_open)(void *arg, net_conn *c, void **out_cctx);
    /* Optional. The connection closed, for any reason (peer, limit, error,
     * net_conn_close, net_server_free): free cctx. It runs inside
     * net_conn_close, so a frame handler that closes its own connection must
     * not touch cctx afterwards. Slots still pending stay valid
     * (net_resp_alive is 0) and must still be finished. */
    void (*conn_close)(void *arg, net_conn *c, void *cctx);
    /* Required. buf[0..len) (len > 0) are the buffered bytes from the start
     * of the next frame. Returns the frame's length n (1..len) if it is
     * complete; 0 if more bytes are needed (optionally out->need); a negative
     * -CN_E* to close the connection (out->why says why; one warning line).
     * Called again from the start of the frame when more bytes arrive. */
    int64_t (*frame_len)(void *cctx, const uint8_t *buf, size_t len, const net_limits *lim,
                         net_scan *out);
    /* Required. One complete frame, as frame_len delimited it. May take slots,
     * finish them, or close the connection. */
    void (*on_frame)(void *arg, net_conn *c, void *cctx, const uint8_t *frame, size_t len);
    /* Optional. net_resp_ready on an open connection: finish r->w's framing
     * (e.g. patch a length written as a placeholder) before it is queued. */
    void (*resp_seal)(void *arg, void *cctx, net_resp *r);
    /* Optional. The queued output fell as low as net_conn_want_drain asked
     * (once per want_drain; from a loop hook). May take slots or close. */
    void (*on_drain)(void *arg, net_conn *c, void *cctx);
} net_proto;

/* Server -------------------------------------------------------------------- */
/* Listen on host:port (port 0 picks one; see net_server_port) and serve
 * proto (borrowed: must outlive the server, as must arg). 0 or -errno /
 * -CN_EINVAL with a log line. */
int net_server_new(loop *l, const char *host, int port, const net_limits *lim,
                   const net_proto *proto, void *arg, net_server **out);
/* Close every connection (conn_close runs for each) and the listener, free
 * everything, including slots still pending (their handlers must be shut
 * down first). NULL is a no-op. */
void net_server_free(net_server *s);
int net_server_port(const net_server *s);
/* Dial host:port (an IP address, like listeners: no DNS on the loop) and
 * serve the connection with s's protocol, as if accepted: conn_open runs at
 * once (so conn_close always follows, also when the connect fails), frames
 * are read from it, slots may be taken at once and leave once connected.
 * conn_arg is the caller's (net_conn_user). The connection counts against
 * max_connections and the sweeps like any other. 0 with *out set, or
 * -CN_EINVAL (address) / -errno (socket) with nothing made. */
int net_server_connect(net_server *s, const char *host, int port, void *conn_arg,
                       net_conn **out);
/* Connections open now, and accepted since the server started (those refused
 * at accept for max.connections are not counted). For metrics. */
int net_server_conns_open(const net_server *s);
uint64_t net_server_conns_accepted(const net_server *s);
const char *net_server_host(const net_server *s);
/* TLS (net/tls.h): connections accepted from now on run a TLS handshake
 * with server_ctx before the protocol sees them (conn_open runs when it
 * completes; a failed or slow one, beyond partial_ms, closes the
 * connection with a warning line), and connections dialed from now on
 * (net_server_connect) with client_ctx (conn_open runs at once as without
 * TLS; output waits for the handshake). The server takes both (either may
 * be NULL: plaintext) and frees the ones it held; open connections keep
 * their sessions, so this is also how certificates are reloaded. Bytes
 * then leave through the session (file ranges are read and encrypted
 * instead of sendfile'd). A plaintext listener closes a connection whose
 * first bytes are a TLS ClientHello, with a warning line saying so. */
typedef struct tls_ctx tls_ctx;
void net_server_set_tls(net_server *s, tls_ctx *server_ctx, tls_ctx *client_ctx);
int net_server_tls(const net_server *s);        /* 1: accepts TLS */
/* A word the server's owner keeps on a listener for its protocol (the
 * Kafka front end: SASL required); net never reads it. 0 by default. */
void net_server_set_tag(net_server *s, uint32_t tag);
uint32_t net_server_tag(const net_server *s);

/* Connection ---------------------------------------------------------------- */
/* Close now (log line with reason at info level). Slots still pending stay
 * valid until finished. Safe to call from the frame callback. */
void net_conn_close(net_conn *c, const char *reason);
/* Close once every slot taken so far has been sent (or dropped): reading
 * stops now (as net_conn_pause_read; frames after the current one are never
 * handed to on_frame), the close itself runs from a loop hook with reason
 * in its log line. For protocols that answer an error and then hang up
 * (HTTP's "Connection: close"). A peer that does not read those answers
 * (output queued, no progress for request.read.timeout.ms) is closed by the
 * sweep. reason is copied. No-op when closed. */
void net_conn_close_after(net_conn *c, const char *reason);
const char *net_conn_peer(const net_conn *c);   /* "127.0.0.1:5555" */
const char *net_conn_host(const net_conn *c);   /* "127.0.0.1" (the peer without its port) */
uint64_t net_conn_id(const net_conn *c);        /* per server, from 1 */
void *net_conn_ctx(const net_conn *c);          /* the protocol's cctx */
void *net_conn_user(const net_conn *c);         /* net_server_connect's conn_arg, or NULL */
net_server *net_conn_server(const net_conn *c); /* the server it belongs to */
int net_conn_connecting(const net_conn *c);     /* 1 until an outgoing connect completes */
int net_conn_tls(const net_conn *c);            /* 1: a TLS connection */
/* The peer certificate's subject DN (RFC 2253) once the TLS handshake is
 * done, "" without a client certificate, NULL on a plaintext connection.
 * Owned by the connection. */
const char *net_conn_tls_subject(net_conn *c);
/* Flow control by the protocol (AMQP's resource alarms block publishers this
 * way): pause stops reading the socket and handing frames to on_frame; called
 * from on_frame, the current frame finishes and the frames after it stay
 * buffered. Writing goes on (responses, heartbeats), a peer hang-up still
 * closes the connection, and the idle and slow-request sweeps skip it.
 * resume reads again; frames already buffered are handed to on_frame from a
 * loop hook after the current batch of events, never inside this call (so
 * resume may be called from any callback). Independent of the max_inflight
 * pause: reading runs when neither holds it. Both are no-ops when already in
 * that state or on a closed connection. */
void net_conn_pause_read(net_conn *c);
void net_conn_resume_read(net_conn *c);
int net_conn_read_paused(const net_conn *c);    /* 1 between pause and resume */
/* Output backpressure: the bytes of finished (ready) slots not completely
 * sent yet, file splices included, plus the flushed bytes of a streaming
 * slot not sent yet (net_resp_flush; counted down as they leave). A protocol that pushes data on its own
 * (deliveries to a consumer) stops while this is high and arms
 * net_conn_want_drain: proto->on_drain is then called once, from a loop
 * hook (never inside this call or a net_resp_* call), when the count is at
 * or below `below` (at once, from the hook, if it already is). */
size_t net_conn_out_bytes(const net_conn *c);
void net_conn_want_drain(net_conn *c, size_t below);

/* Response slots ------------------------------------------------------------- */
/* A slot at the end of the connection's queue, with r->w empty and r->a
 * reset. The connection must be open. */
net_resp *net_resp_new(net_conn *c);
/* Send r->w after every earlier slot (resp_seal first). r belongs to net again. */
void net_resp_ready(net_resp *r);
/* Send nothing for this slot (releases r->w's splices). r belongs to net again. */
void net_resp_drop(net_resp *r);
/* 1 while the slot's connection is open. */
int net_resp_alive(const net_resp *r);
/* Streaming: send the bytes r->w holds now and keep the slot open (its first
 * call makes r a streaming slot; r stays the protocol's). The protocol
 * appends more to r->w later and calls net_resp_flush again; it ends the
 * stream with net_resp_ready (what r->w holds then is sent, resp_seal is NOT
 * called for a streaming slot) or net_resp_drop (what was not sent yet is
 * discarded: close the connection after it). Rules:
 *  - Bytes leave after every earlier slot has left; later slots of the
 *    connection wait until the stream ends (so a protocol stops reading
 *    requests, or discards them, while it streams).
 *  - After a flush, net may send any bytes r->w holds whenever the loop
 *    runs: append whole units only (e.g. whole events), then flush.
 *  - Sent bytes are removed from r->w (at each flush, and r->w is emptied
 *    when everything was sent), so r->w holds only what is unsent and its
 *    size is what the protocol lets queue: it bounds that with
 *    net_conn_out_bytes (flushed bytes not sent yet) and net_conn_want_drain.
 *  - No file splices in a streaming slot.
 *  - The slot counts as in flight: the idle sweep (idle_ms) never closes its
 *    connection, so a quiet stream must send its own keepalives if the peer
 *    or a proxy needs them.
 *  - On a closed connection (net_resp_alive 0) a flush discards r->w; the
 *    slot must still be ended with net_resp_ready or net_resp_drop. */
void net_resp_flush(net_resp *r);
#endif
