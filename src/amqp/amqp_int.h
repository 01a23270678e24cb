/* Private to the AMQP front end: the front end, the per-connection context
 * and its channels, the connection state machine's entry points (conn.c)
 * and the channel handlers (ah_channel.c). */
#ifndef CAIRN_AMQP_INT_H
#define CAIRN_AMQP_INT_H
#include <stdint.h>

#include "amqp/amqp.h"
#include "broker/broker.h"
#include "net/loop.h"
#include "proto/amqp/amqp_buf.h"
#include "proto/amqp/gen/amqp_methods.h"
#include "util/wbuf.h"

/* What the server offers in connection.tune. */
#define ASRV_CHANNEL_MAX 2047
#define ASRV_FRAME_MAX 131072
#define ASRV_HEARTBEAT_S 60
/* Until tune-ok no frame may be larger (the spec's FRAME-MIN-SIZE). */
#define ASRV_FRAME_MIN AMQP_FRAME_MIN_SIZE
/* The handshake (protocol header to open-ok) must finish within this. */
#define ASRV_HANDSHAKE_MS 10000
/* After we send connection.close, wait this long for close-ok. */
#define ASRV_CLOSE_WAIT_MS 1000

/* Exchanges, queues, bindings and messages (ah_queue.c). For now all of it
 * lives in memory (docs/amqp-plan.md "What exists today"): the kvlog
 * __amqp_meta and the queue partitions are the next stages. */
typedef struct amsg {            /* one published message, shared by the queues it went to */
    int refs;
    cn_str exchange, routing_key; /* copies (in buf) */
    uint8_t *hdr;                /* the content header payload as the client sent it */
    size_t hdr_len;
    uint8_t *body;
    size_t body_len;
    char *buf;                   /* exchange + routing key bytes */
    uint8_t persistent;          /* delivery_mode 2 */
} amsg;

typedef struct aq_entry {
    amsg *m;
    int redelivered;
    int64_t off;                 /* offset in the queue partition, -1 when memory only */
    uint64_t seq;                /* enqueue order: requeued messages go back to their place */
} aq_entry;

struct asrv_conn;
struct aconsumer;

typedef struct aqueue {
    char *name;
    int32_t name_len;
    uint64_t id;
    uint8_t durable, exclusive, auto_delete, deleted;
    struct asrv_conn *owner;     /* exclusive: the declaring connection */
    uint8_t *args;               /* the declare arguments (copy) */
    uint32_t args_len;
    aq_entry *ring;              /* ready messages: ring[(head + i) % cap], i < n */
    size_t cap, head, n;
    uint64_t next_seq;
    struct aconsumer **cons;     /* consumers, served round-robin from rr */
    int n_cons, cap_cons, rr;
    int had_consumer;            /* auto-delete: deleted when the last one cancels */
    int refs;                    /* 1 while declared + 1 per unacked delivery */
    /* Storage (ah_store.c): durable queues only. */
    partition *p;                /* __amqp_q-<id>, NULL for memory-only queues */
    int64_t floor;               /* every stored offset below is settled */
    int64_t *acked;              /* settled offsets above floor, ascending */
    size_t n_acked, cap_acked;
    int dirty;                   /* ack state to write to __amqp_meta */
    /* Redelivered after a restart (ah_redeliver.c): every stored offset
     * below dend may have been handed to a client; dend_written is the
     * value in the last ack-state record written. */
    int64_t dend, dend_written;
    /* Confirms wait for the queue's own record too (ah_store.c): the
     * __amqp_meta end after its declare (0: replayed, durable). */
    int64_t meta_end;
} aqueue;

enum { AX_DIRECT, AX_FANOUT, AX_TOPIC, AX_HEADERS };

typedef struct abinding {
    aqueue *q;
    char *key;
    int32_t key_len;
    uint8_t *args;
    uint32_t args_len;
} abinding;

typedef struct aexchange {
    char *name;
    int32_t name_len;
    int type;
    uint8_t durable, auto_delete, internal, builtin;
    abinding *b;
    int n_b, cap_b;
} aexchange;

struct asrv {
    core *core;
    loop *l;
    wbuf props;                  /* server-properties table entries (connection.start) */
    struct asrv_conn *conns;     /* open connections (for the shutdown Close) */
    aexchange **ex;
    int n_ex, cap_ex;
    aqueue **q;
    int n_q, cap_q;
    uint64_t next_qid;
    struct kvl *meta;            /* __amqp_meta (NULL when it could not be opened) */
    uint64_t gen;                /* server-named queues and consumer tags */
    loop_timer flush;            /* writes dirty ack states once per loop iteration */
    int flush_armed;
    /* Redelivered after a restart (ah_redeliver.c): deliveries held back
     * until the ack-state record that covers them is written. */
    struct net_resp **held;
    int n_held, cap_held;
};

/* A delivery awaiting its ack (per channel, in tag order). */
typedef struct adelivery {
    uint64_t tag;
    aqueue *q;                   /* holds a ref */
    amsg *m;                     /* holds a ref */
    int64_t off;                 /* as aq_entry.off */
    uint64_t seq;                /* as aq_entry.seq */
    struct aconsumer *cons;      /* NULL for basic.get */
} adelivery;

typedef struct aconsumer {
    struct asrv_conn *ac;
    uint16_t ch;
    char tag[256];
    int32_t tag_len;
    aqueue *q;
    uint8_t no_ack, exclusive;
    uint16_t prefetch;           /* 0: unlimited */
    uint32_t unacked;
} aconsumer;

/* Per open channel: delivery tags, unacked deliveries, consumers, prefetch,
 * confirms and the content being assembled. */
typedef struct achan {
    uint64_t next_tag;           /* last delivery tag given */
    adelivery *unacked;
    size_t n_unacked, cap_unacked;
    aconsumer **cons;
    int n_cons, cap_cons;
    uint16_t prefetch;           /* basic.qos prefetch_count for new consumers */
    uint8_t confirm;             /* confirm.select done */
    uint64_t pub_seq;            /* publishes seen in confirm mode */
    struct aconfirm *cf_head, *cf_tail; /* confirms not sent yet, in publish order */
    /* content assembly: a basic.publish waiting for its header and body */
    int pending;                 /* 0 none, 1 waiting header, 2 waiting body */
    char pub_exchange[256], pub_key[256];
    int32_t pub_exchange_len, pub_key_len;
    uint8_t pub_mandatory;
    uint8_t *pub_hdr;
    size_t pub_hdr_len;
    uint64_t body_size;
    wbuf body;
} achan;

/* Connection states; the transition table is in conn.c. */
typedef enum {
    ASRV_HEADER,                 /* waiting for the protocol header */
    ASRV_START_SENT,             /* Start sent, waiting for StartOk */
    ASRV_TUNE_SENT,              /* Tune sent, waiting for TuneOk */
    ASRV_OPEN_WAIT,              /* tuned, waiting for connection.open */
    ASRV_OPEN,                   /* open: channels may be used */
    ASRV_CLOSING,                /* we sent connection.close: only close/close-ok count */
    ASRV_CLOSED,                 /* done: the socket is being closed */
    ASRV_STATE__COUNT
} asrv_state;

/* Channel states (index: channel number). */
enum { ACH_FREE = 0, ACH_OPEN, ACH_CLOSING };

typedef struct asrv_conn {
    asrv *as;                    /* NULL after asrv__shutdown */
    loop *l;
    net_conn *c;
    struct asrv_conn *prev, *next; /* in as->conns */
    asrv_state state;
    uint32_t frame_max;          /* largest whole frame accepted now */
    uint16_t channel_max;        /* tuned */
    uint16_t heartbeat;          /* tuned, seconds; 0 off */
    int auth_failure_close;      /* the client announced authentication_failure_close */
    /* frame_len saw a frame above frame_max: it delimits only the 7-byte
     * header, on_frame answers Close 501. */
    uint64_t oversize;
    int64_t opened_at, last_sent, last_recv;
    loop_timer timer;            /* handshake timeout, heartbeats, close-ok wait */
    uint8_t *chan;               /* ACH_* per channel 0..channel_max (chan[0] unused) */
    uint8_t *chan_flow;          /* channel.flow active per channel (1 = deliver) */
    int n_chan;                  /* channels open or closing */
    achan **cs;                  /* per open channel (NULL when free or closing) */
} asrv_conn;

/* conn.c: the net_proto callbacks (framing.c wires them) */
int asrv__conn_open(void *arg, net_conn *c, void **out_cctx);
void asrv__conn_close(void *arg, net_conn *c, void *cctx);
void asrv__on_frame(void *arg, net_conn *c, void *cctx, const uint8_t *frame, size_t len);
int64_t asrv__frame_len(void *cctx, const uint8_t *buf, size_t len, const net_limits *lim,
                        net_scan *out);

/* conn.c: replies, for handlers */
/* Send one method frame on channel ch (args: the method's struct). */
void asrv__send_method(asrv_conn *ac, uint16_t ch, uint32_t id, const void *args);
/* A hard error: log a warning, send connection.close (code, text, the
 * method that caused it: class/method ids or 0), enter CLOSING and wait
 * for close-ok (ASRV_CLOSE_WAIT_MS). */
void asrv__conn_error(asrv_conn *ac, uint16_t code, uint16_t class_id, uint16_t method_id,
                      const char *fmt, ...) CN_PRINTF(5, 6);
/* A soft error: log a line, send channel.close on ch and mark it CLOSING
 * until the client's close-ok. */
void asrv__chan_error(asrv_conn *ac, uint16_t ch, uint16_t code, uint16_t class_id,
                      uint16_t method_id, const char *fmt, ...) CN_PRINTF(6, 7);

/* Send 320 CONNECTION_FORCED to every connection and forget them (asrv_free). */
void asrv__shutdown(asrv *as);

/* ah_queue.c: exchange.* and queue.* methods; the routing tables. */
void ah_queue(asrv_conn *ac, uint16_t ch, const amqp_method *m);
/* Pre-declare the built-in exchanges, then open __amqp_meta and replay the
 * durable exchanges, queues and bindings. */
void asrv__meta_init(asrv *as);
void asrv__meta_free(asrv *as);
/* Route m (exchange, routing key, headers) into every matching queue;
 * returns the number of queues; -1 when the exchange does not exist, -2
 * when it is internal (not for publishers). */
/* Partitions a routed message was appended to (publisher confirms wait for them). */
typedef struct astored {
    int n, cap;
    partition **p;
    int64_t *target;             /* log end after the append */
    int failed;                  /* an append failed (the message is in memory only) */
} astored;
int asrv__route(asrv *as, const char *ex, int32_t ex_len, amsg *m, amqp_table headers,
                astored *st);
aqueue *asrv__queue_find(asrv *as, cn_str name);
void asrv__queue_unref(aqueue *q);
/* Enqueue m (a new ref): at the tail when seq is 0 (a new message), else
 * (a requeue) at its place in enqueue order. */
void asrv__queue_push(aqueue *q, amsg *m, int redelivered, uint64_t seq, int64_t off);
int asrv__queue_pop(aqueue *q, aq_entry *out);
void asrv__queue_delete(asrv *as, aqueue *q);
void amsg_unref(amsg *m);

/* ah_store.c: durable queue storage (docs/amqp-plan.md "Queue storage"). */
/* Open (creating) q's partition and load its unsettled messages. 0 or -CN_E*. */
int asrv__store_open(asrv *as, aqueue *q);
/* Append m to q's partition: its offset, or -1 (logged) on failure. */
int64_t asrv__store_append(asrv *as, aqueue *q, const amsg *m);
/* Stored offset off of q was acked or dropped. */
void asrv__store_settled(asrv *as, aqueue *q, int64_t off);
/* q is deleted: drop its partition (closed, directory removed) and its ack state. */
void asrv__store_drop(asrv *as, aqueue *q);
/* Replay of an ack-state record (value NULL: tombstone). 0 or -1. */
int asrv__store_replay_acks(asrv *as, uint64_t qid, const uint8_t *v, int32_t len);
void asrv__store_init(asrv *as);
void asrv__store_fini(asrv *as);
/* Write the ack state of every dirty queue now (also done once per loop
 * iteration by the flush timer). */
void asrv__store_flush(asrv *as);
/* ah_queue.c, for ah_store.c: write one __amqp_meta record (v NULL: tombstone). */
void asrv__meta_write(asrv *as, const void *k, size_t kl, const void *v, int32_t vl);

/* Add a durability target (partition p durable up to target) to st. */
void asrv__stored_add(astored *st, partition *p, int64_t target);
/* A persistent message was appended to q: when q's declare record in
 * __amqp_meta is not durable yet, add it to st (a confirm must not
 * outrun the queue it names). */
void asrv__store_meta_wait(asrv *as, aqueue *q, astored *st);
/* Mark q dirty (its ack state is written by the next flush) and arm the flush. */
void asrv__store_dirty(asrv *as, aqueue *q);

/* ah_redeliver.c: which stored messages may have been delivered before a
 * restart. Called with the response r that carries stored offset off of q
 * to a client (basic.deliver, basic.get-ok), before it is made ready:
 * raises q's delivered mark and returns 1 when r must wait for the flush
 * that writes the mark (the flush then makes it ready), else 0 (the caller
 * makes r ready). as NULL, q memory-only or off < 0: 0. */
int asrv__redeliver_hold(asrv *as, aqueue *q, int64_t off, struct net_resp *r);
/* The flush wrote every dirty mark: make the held responses ready. */
void asrv__redeliver_release(asrv *as);

/* ah_basic.c: basic.* and confirm.* methods, content frames, delivery. */
void ah_basic(asrv_conn *ac, uint16_t ch, const amqp_method *m);
void ah_content(asrv_conn *ac, uint16_t ch, const amqp_frame *f);
/* Deliver ready messages of q to its consumers (round-robin, prefetch). */
void asrv__dispatch(aqueue *q);
/* Channel ch is going away (closed by either side, or the connection):
 * requeue its unacked deliveries (redelivered), cancel its consumers. */
void asrv__chan_release(asrv_conn *ac, uint16_t ch);
/* Take consumer c off channel cs's list; its unacked deliveries stay on the
 * channel with no consumer (ah_basic.c). Does not free c. */
void asrv__chan_forget_consumer(achan *cs, aconsumer *c);
/* The connection goes away: release every channel, delete its exclusive queues. */
void asrv__conn_release(asrv_conn *ac);

/* ah_channel.c: a channel.* method m on channel ch of an OPEN connection
 * (ch >= 1; the channel is ACH_FREE only for channel.open). */
void ah_channel(asrv_conn *ac, uint16_t ch, const amqp_method *m);
#endif
