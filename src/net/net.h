/* TCP server for length-prefixed request/response protocols (Kafka framing:
 * int32 size, then size bytes).
 *
 * The server accepts connections on one listening socket and reads frames.
 * Each complete frame goes to the frame callback, which must either close the
 * connection (net_conn_close) or create exactly one response slot with
 * net_resp_new — in request order — and later finish it with net_resp_ready
 * (a response to send) or net_resp_drop (no response, e.g. Produce acks=0).
 * Slots may finish in any order; responses leave in slot order, so pipelined
 * requests on a connection are answered in order.
 *
 * The frame bytes are valid only during the callback: a handler that parks a
 * request copies what it needs (into the slot's arena).
 *
 * A response is built in r->w: net_resp_new writes a 4-byte size placeholder,
 * the handler writes header and body, net_resp_ready patches the size. Bytes
 * of files are sent with sendfile: the handler splices a file range into
 * the writer with kw_splice; the writer holds its reference until the slot
 * is sent (or dropped) and then releases it (util/wbuf.h).
 *
 * Limits: a frame size outside 8..max_frame_bytes closes the connection;
 * reading pauses while a connection has max_inflight unanswered slots (so
 * buffered responses per connection are bounded); a connection with nothing
 * in flight for idle_ms, or holding an incomplete frame for partial_ms
 * (slow-loris), is closed by a once-a-second sweep. A connection's read
 * buffer is allocated on its first bytes and shrunk back after a large
 * frame, so an idle connection holds no buffer.
 *
 * Ownership: the server owns connections and slots. A slot finished after its
 * connection closed is simply freed. Steady state allocates nothing: slots,
 * their writers and arenas are recycled per connection.
 * Single-threaded: the loop thread only. */
#ifndef CAIRN_NET_H
#define CAIRN_NET_H
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "proto/kafka/kbuf.h"
#include "util/arena.h"

typedef struct net_server net_server;
typedef struct net_conn net_conn;

typedef struct net_resp {
    kw w;                        /* the frame being built (size prefix first) */
    arena a;                     /* scratch for this request; reset on reuse */
    void *ctx;                   /* handler's */
    /* private */
    struct net_resp *next;
    net_conn *conn;
    int state;
    size_t sent;                 /* bytes of this response already sent */
} net_resp;

typedef void (*net_frame_cb)(net_conn *c, const uint8_t *frame, size_t len, void *arg);

typedef struct net_limits {
    int32_t max_frame_bytes;     /* socket.request.max.bytes */
    int max_inflight;            /* slots per connection before reading pauses */
    int max_connections;         /* accepted connections at once (more are closed at accept) */
    int64_t idle_ms;             /* close connections with nothing in flight this long (0: never) */
    int64_t partial_ms;          /* close connections that leave a frame incomplete this long */
} net_limits;

/* Listen on host:port (port 0 picks one; see net_server_port). 0 or -errno
 * with a log line. */
int net_server_new(loop *l, const char *host, int port, const net_limits *lim,
                   net_frame_cb cb, void *arg, net_server **out);
/* Close every connection and the listener, free everything. */
void net_server_free(net_server *s);
int net_server_port(const net_server *s);
const char *net_server_host(const net_server *s);

/* Connection ---------------------------------------------------------------- */
/* Close now (log line with reason at info level). Slots still pending stay
 * valid until finished. Safe to call from the frame callback. */
void net_conn_close(net_conn *c, const char *reason);
const char *net_conn_peer(const net_conn *c);   /* "127.0.0.1:5555" */
uint64_t net_conn_id(const net_conn *c);

/* Response slots ------------------------------------------------------------- */
net_resp *net_resp_new(net_conn *c);
void net_resp_ready(net_resp *r);
void net_resp_drop(net_resp *r);
/* 1 while the slot's connection is open. */
int net_resp_alive(const net_resp *r);
#endif
