/* Private to the AMQP front end: the front end, the per-connection context
 * and its channels, the connection state machine's entry points (conn.c)
 * and the channel handlers (ah_channel.c). */
#ifndef CAIRN_AMQP_INT_H
#define CAIRN_AMQP_INT_H
#include <stdint.h>
#include <sys/types.h>

#include "amqp/amqp.h"
#include "amqp/qargs.h"
#include "broker/broker.h"
#include "net/loop.h"
#include "proto/amqp/amqp_buf.h"
#include "record/batch.h"
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
    /* Queue arguments (ah_qx.c): from the content header (asrv__msg_props). */
    uint8_t priority;            /* the priority property, 0 when absent */
    uint8_t has_ttl;             /* the expiration property is set (0 from xcalloc: none) */
    int64_t ttl;                 /* the expiration property in ms */
    /* Resource alarms (ah_alarm.c): the bytes counted for this message. */
    struct amem *mem;            /* holds a ref; NULL: not counted */
    size_t mem_bytes;
} amsg;

typedef struct aq_entry {
    amsg *m;
    int redelivered;
    int64_t off;                 /* offset in the queue partition, -1 when memory only */
    uint64_t seq;                /* enqueue order: requeued messages go back to their place */
    /* Queue arguments (ah_qx.c) */
    int64_t t;                   /* wall ms of the enqueue (TTLs count from it) */
    uint8_t prio;                /* priority in this queue (0 unless x-max-priority) */
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
    int n_prio_cons;             /* consumers with a non-zero x-priority */
    int had_consumer;            /* auto-delete: deleted when the last one cancels */
    int refs;                    /* 1 while declared + 1 per unacked delivery */
    /* Storage (ah_store.c): durable queues only. */
    partition *p;                /* __amqp_q-<id>, NULL for memory-only queues */
    int64_t floor;               /* every stored offset below is settled */
    int64_t *acked;              /* settled offsets above floor, ascending */
    size_t n_acked, cap_acked;
    int dirty;                   /* ack state to write to __amqp_meta */
    /* Streams (ah_stream.c): x-queue-type stream, over the Kafka topic of
     * the queue's name; no ring, no partition of its own. */
    uint8_t stream;
    /* Queue arguments (ah_qargs.c parses them; ah_qx.c: TTL, x-expires,
     * length limits, priorities; ah_dlx.c: dead-lettering). */
    struct asrv *as;
    aqargs xa;                   /* views into args */
    size_t ready_bytes;          /* body bytes of the ready messages */
    int64_t last_used;           /* wall ms: x-expires counts from here */
    loop_timer xt;               /* head expiry and x-expires (armed while needed) */
    /* Redelivered after a restart (ah_redeliver.c): every stored offset
     * below dend may have been handed to a client; dend_written is the
     * value in the last ack-state record written. */
    int64_t dend, dend_written;
    /* Confirms wait for the queue's own record too (ah_store.c): the
     * __amqp_meta end after its declare (0: replayed, durable). */
    int64_t meta_end;
    /* In a cluster (ah_cluster.c): the voters its log began with (from its
     * record), the log's term when this node loaded it (0: not serving
     * yet), and the trim of its log below the floor, one at a time
     * (broker_delete_records). */
    int32_t *voters;
    int n_voters;
    int64_t term;
    durable_wait trim_w;
    uint8_t trimming;
} aqueue;

#define ASRV_MAX_VOTERS 64

enum { AX_DIRECT, AX_FANOUT, AX_TOPIC, AX_HEADERS };

typedef struct abinding {
    aqueue *q;
    char *key;
    int32_t key_len;
    uint8_t *args;
    uint32_t args_len;
    /* Exchange-to-exchange bindings (ah_xbind.c): the destination exchange,
     * with q NULL; NULL in queue bindings. */
    struct aexchange *dx;
} abinding;

typedef struct aexchange {
    char *name;
    int32_t name_len;
    int type;
    uint8_t durable, auto_delete, internal, builtin;
    abinding *b;
    int n_b, cap_b;
    /* Exchange-to-exchange bindings and the alternate exchange (ah_xbind.c). */
    abinding *xb;                /* bindings with this exchange as the source (dx set) */
    int n_xb, cap_xb;
    uint8_t *args;               /* the declare arguments (copy), persisted */
    uint32_t args_len;
    char *ae;                    /* alternate-exchange name (NUL-terminated), NULL: none */
    int32_t ae_len;
    uint64_t route_seen;         /* == asrv.route_gen: reached by the current publish */
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
    struct asrv_conn *confirm_due; /* connections with ready confirms to send */
    loop_timer confirm_timer;    /* sends them at the end of the loop pass */
    struct astream_state *stream; /* streams (ah_stream.c): append listener, read buffers */
    loop_timer flush;            /* writes dirty ack states once per loop iteration */
    int flush_armed;
    uint64_t route_gen;          /* ah_xbind.c: one per routed publish (cycle guard) */
    /* Resource alarms (ah_alarm.c). */
    struct amem *mem;            /* message bytes held (a ref: messages may outlive asrv) */
    uint64_t mem_high, mem_low;  /* the memory alarm sets at >= high, clears below low */
    int64_t disk_limit;          /* amqp.disk.free.limit.bytes; 0: no check */
    int64_t disk_free;           /* last statvfs of the data directory, -1 unknown */
    uint64_t disk_written;       /* bytes appended to queue partitions since */
    int alarms;                  /* ASRV_ALARM_* set now */
    loop_timer alarm_eval;       /* re-evaluates the alarms soon after the count crosses */
    loop_timer disk_timer;       /* statvfs every ASRV_DISK_CHECK_MS */
    int64_t alarm_logged_at;     /* last alarm change logged at info/warn (1 a second) */
    uint64_t alarm_flaps;        /* changes logged at debug since */
    loop_timer alarm_log;        /* logs the flaps' outcome */
    /* Redelivered after a restart (ah_redeliver.c): deliveries held back
     * until the ack-state record that covers them is written. */
    struct net_resp **held;
    int n_held, cap_held;
    /* In a cluster (ah_cluster.c; NULL on a single node). */
    struct acluster *cl;
};

/* A delivery awaiting its ack (per channel, in tag order). */
typedef struct adelivery {
    uint64_t tag;
    aqueue *q;                   /* holds a ref */
    amsg *m;                     /* holds a ref */
    int64_t off;                 /* as aq_entry.off */
    uint64_t seq;                /* as aq_entry.seq */
    struct aconsumer *cons;      /* NULL for basic.get (and once the consumer is gone) */
    uint8_t by_consumer;         /* counts against the channel's global prefetch */
    /* Transactions (ah_tx.c): 0, or 1 + SETTLE_* when an ack/nack/reject of
     * this delivery waits for tx.commit (it is no longer "unacked" for the
     * client: a second ack of its tag is 406; tx.rollback clears it). */
    uint8_t tx_settle;
    int64_t t;                   /* as aq_entry.t (queue arguments, ah_qx.c) */
} adelivery;

typedef struct aconsumer {
    struct asrv_conn *ac;
    uint16_t ch;
    char tag[256];
    int32_t tag_len;
    aqueue *q;
    uint8_t no_ack, exclusive;
    uint16_t prefetch;           /* 0: unlimited */
    int32_t priority;            /* x-priority consumer argument (default 0) */
    uint32_t unacked;
    struct astream_cur *scur;    /* streams (ah_stream.c): the read cursor, owned */
} aconsumer;

/* Replies waiting for durability, in order (ah_pending.c). */
typedef struct apending apending;
typedef struct apending_q {
    apending *head, *tail;
} apending_q;

/* Per open channel: delivery tags, unacked deliveries, consumers, prefetch,
 * confirms and the content being assembled. */
typedef struct achan {
    uint64_t next_tag;           /* last delivery tag given */
    adelivery *unacked;
    size_t n_unacked, cap_unacked;
    aconsumer **cons;
    int n_cons, cap_cons;
    uint16_t prefetch;           /* basic.qos prefetch_count for new consumers (global=0) */
    uint16_t prefetch_global;    /* basic.qos global=1: shared by the channel's consumers; 0 none */
    uint32_t cons_unacked;       /* unacked consumer deliveries (by_consumer) on the channel */
    uint8_t confirm;             /* confirm.select done */
    uint64_t pub_seq;            /* publishes seen in confirm mode */
    apending_q confirms;         /* confirms not sent yet, in publish order (seq) */
    uint8_t confirm_due;         /* ready confirms wait for the end of the loop pass */
    /* content assembly: a basic.publish waiting for its header and body */
    int pending;                 /* 0 none, 1 waiting header, 2 waiting body */
    char pub_exchange[256], pub_key[256];
    int32_t pub_exchange_len, pub_key_len;
    uint8_t pub_mandatory;
    uint8_t *pub_hdr;
    size_t pub_hdr_len;
    uint64_t body_size;
    wbuf body;
    /* Transactions (ah_tx.c): tx.select done; the buffered publishes and the
     * commits waiting for durability (NULL until tx.select). */
    uint8_t tx;
    struct atx *txs;
    /* Direct reply-to (ah_reply.c): the channel's reply consumer, 0 none. */
    uint64_t reply_id;
    char reply_tag[256];
    int32_t reply_tag_len;
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
    uint64_t uid;                /* unique among this server's connections (as->gen) */
    /* Confirms coalesced per loop pass (ah_basic.c): channels with ready
     * confirms, and the link in as->confirm_due. */
    uint16_t *due_ch;
    int n_due, cap_due;
    uint8_t due_linked;
    struct asrv_conn *due_next;
    struct asrv_conn *prev, *next; /* in as->conns */
    asrv_state state;
    uint32_t frame_max;          /* largest whole frame accepted now */
    uint16_t channel_max;        /* tuned */
    uint16_t heartbeat;          /* tuned, seconds; 0 off */
    int auth_failure_close;      /* the client announced authentication_failure_close */
    /* A refused login waits (auth/throttle.h) with reads paused; the timer
     * then answers with refusal (conn.c: refuse_login). */
    int refusing;
    char refusal[160];
    char principal[300];         /* "User:alice" once logged in (Kafka's principal names) */
    /* Authorization decisions (asrv__allowed), valid while the ACL
     * generation is the same; names up to 63 bytes. */
    struct ac_decision {
        uint64_t gen;
        int8_t op, rtype, allowed, used;
        uint8_t len;
        char name[64];
    } authz[8];
    int authz_next;
    /* frame_len saw a frame above frame_max: it delimits only the 7-byte
     * header, on_frame answers Close 501. */
    uint64_t oversize;
    int64_t opened_at, last_sent, last_recv;
    loop_timer timer;            /* handshake timeout, heartbeats, close-ok wait */
    uint8_t *chan;               /* ACH_* per channel 0..channel_max (chan[0] unused) */
    uint8_t *chan_flow;          /* channel.flow active per channel (1 = deliver) */
    int n_chan;                  /* channels open or closing */
    achan **cs;                  /* per open channel (NULL when free or closing) */
    /* Resource alarms (ah_alarm.c). */
    uint8_t cap_blocked;         /* the client announced the connection.blocked capability */
    uint8_t blocked_sent;        /* connection.blocked sent, connection.unblocked owed */
    uint8_t blocked;             /* it published during an alarm: reading is paused */
    uint8_t out_waiting;         /* deliveries held back: net_conn_want_drain armed */
    uint8_t parked;              /* a queue.declare waits for its queue's log (ah_cluster.c):
                                  * reading is paused */
    /* The relay (ah_relay.c): 1 a client's connection relayed to the
     * serving node, 2 the connection to it; peer the other side (NULL once
     * it closed); relay_paused: reading waits for the peer to drain. */
    uint8_t relay, relay_paused;
    struct asrv_conn *peer;
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

/* ACLs (auth/acl.h) for AMQP, with authorizer.enabled: may this
 * connection's user do op on the resource? Exchanges are Topic resources
 * (the default exchange is named amq.default), queues Group resources:
 * declare CREATE, delete and purge DELETE, publish WRITE on the exchange,
 * consume and get READ on the queue, a binding READ on its source exchange
 * and WRITE on its destination. 1 when the authorizer is off. */
int asrv__allowed(asrv_conn *ac, int op, int rtype, cn_str name);
/* The same; on refusal a 403 ACCESS_REFUSED channel error naming the
 * operation is sent on ch and 0 returned. */
int asrv__allow_or_refuse(asrv_conn *ac, uint16_t ch, uint16_t class_id, uint16_t method_id,
                          int op, int rtype, cn_str name);

/* Send 320 CONNECTION_FORCED to every connection and forget them (asrv_free). */
void asrv__shutdown(asrv *as);

/* ah_queue.c: exchange.* and queue.* methods; the routing tables. */
void ah_queue(asrv_conn *ac, uint16_t ch, const amqp_method *m);
/* ah_meta.c: pre-declare the built-in exchanges, then open __amqp_meta and
 * replay the durable exchanges, queues and bindings; asrv__meta_free closes
 * it and frees the tables. */
void asrv__meta_init(asrv *as);
void asrv__meta_free(asrv *as);
/* The tables alone: the built-in exchanges (init); every queue and
 * exchange dropped from memory without a record or a partition change
 * (free). For ah_cluster.c's loads and step-downs. */
void asrv__meta_tables_init(asrv *as);
void asrv__meta_tables_free(asrv *as);
/* After __amqp_meta's replay: queue ids above the clock, the durable
 * queues' logs opened and their messages loaded. */
void asrv__meta_loaded(asrv *as);
extern const struct kvl_ops asrv__meta_ops;
/* Decode a queue record's value (versions 1 and 2; voters: room for
 * ASRV_MAX_VOTERS, *n_voters 0 for version 1). 0 or -1. */
int asrv__meta_parse_queue(const uint8_t *val, int32_t len, uint64_t *id, int *flags,
                           cn_bytes *args, int32_t *voters, int *n_voters);

/* ah_cluster.c: the AMQP front end in a cluster (the file's header). */
struct kvl_compaction;
void asrv__cluster_init(asrv *as);
void asrv__cluster_fini(asrv *as);
/* 1 when this node serves AMQP (always on a single node). */
int asrv__cluster_serving(const asrv *as);
/* Why a connection is refused here (a static text with the node that
 * serves, when known, in buf). */
const char *asrv__cluster_refusal(const asrv *as, char *buf, size_t cap);
/* The voters a new durable queue's log begins with: the cluster's members. */
void asrv__cluster_voters(asrv *as, aqueue *q);
/* A new durable queue's declare-ok waits until its log is led here
 * (reading of ac paused meanwhile); nowait: no reply then. */
void asrv__cluster_park(asrv_conn *ac, uint16_t ch, aqueue *q, int nowait);
/* ac is closing: forget its parked declares. */
void asrv__cluster_conn_gone(asrv_conn *ac);
/* Where a new connection is relayed (ah_relay.c): 1 with the serving
 * node's AMQP address, id and whether that listener is amqps:// when this
 * node does not serve and knows, from the serving node's record, one that
 * leads __amqp_meta-0 in the term its record names; else 0. */
int asrv__cluster_relay_target(asrv *as, const char **host, int *port, int32_t *node,
                               int *tls);
/* An AMQP listener's address (the front end's bound hook): the first one
 * (with security.inter.broker.protocol=SSL the first amqps:// one) is what
 * a serving node advertises in its record. */
void asrv__cluster_bound(asrv *as, const char *host, int port, int tls);
/* __amqp_meta compaction: the serving node's record, when written. */
int asrv__cluster_compact(asrv *as, struct kvl_compaction *cx);

/* ah_relay.c: the relay (its header). */
/* At accept: relay ac to the serving node when asrv__cluster_relay_target
 * names one; 1 when relayed (ac->relay set), 0 to serve it here. */
int asrv__relay_start(asrv_conn *ac);
/* conn_open of the upstream side (its net_conn_user is the client's ac). */
void asrv__relay_upstream(asrv_conn *up, asrv_conn *client);
void asrv__relay_frame(asrv_conn *ac, const uint8_t *buf, size_t len);
void asrv__relay_drained(asrv_conn *ac);
void asrv__relay_closed(asrv_conn *ac);
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
/* The same with the enqueue time t (wall ms; asrv__queue_push: now). Ready
 * messages are kept in priority order (x-max-priority; higher first), then
 * in enqueue order. */
void asrv__queue_push_t(aqueue *q, amsg *m, int redelivered, uint64_t seq, int64_t off,
                        int64_t t);
int asrv__queue_pop(aqueue *q, aq_entry *out);
void asrv__queue_delete(asrv *as, aqueue *q);
void amsg_unref(amsg *m);

/* ah_store.c: durable queue storage (docs/amqp-plan.md "Queue storage"). */
/* Open (creating) q's partition and load its unsettled messages. 0 or
 * -CN_E*. first: in a cluster, q is new and this node creates its log
 * (broker_internal_partition_voters). */
int asrv__store_open(asrv *as, aqueue *q, int first);
/* Let go of q's partition without touching it (the tables are torn down,
 * not the queue deleted): a trim in flight is withdrawn. */
void asrv__store_forget(aqueue *q);
/* Append m to q's partition: its offset, or -1 (logged) on failure. */
int64_t asrv__store_append(asrv *as, aqueue *q, const amsg *m);
/* Stored offset off of q was acked or dropped. */
void asrv__store_settled(asrv *as, aqueue *q, int64_t off);
/* q is deleted: drop its partition (closed, directory removed) and its ack state. */
void asrv__store_drop(asrv *as, aqueue *q);
/* Encode q's ack-state record (key and value, the format in ah_store.c's
 * header) into k and v: write_acks and __amqp_meta compaction both use it. */
void asrv__store_ack_record(const aqueue *q, wbuf *k, wbuf *v);
/* Replay of an ack-state record (value NULL: tombstone). 0 or -1. */
int asrv__store_replay_acks(asrv *as, uint64_t qid, const uint8_t *v, int32_t len);
void asrv__store_init(asrv *as);
void asrv__store_fini(asrv *as);
/* Write the ack state of every dirty queue now (also done once per loop
 * iteration by the flush timer). */
void asrv__store_flush(asrv *as);
/* ah_meta.c: the __amqp_meta records (format at the top of ah_meta.c). */
/* Write one record (v NULL: tombstone); compaction is checked after. */
void asrv__meta_write(asrv *as, const void *k, size_t kl, const void *v, int32_t vl);
/* Write (put 1) or tombstone (put 0) the record of x / q / binding b of x,
 * when it is persisted (durable, not built-in; a binding: both ends). */
void asrv__meta_exchange(asrv *as, const aexchange *x, int put);
void asrv__meta_queue(asrv *as, const aqueue *q, int put);
void asrv__meta_binding(asrv *as, const aexchange *x, const abinding *b, int put);
/* A queue whose declaration and messages are stored: durable, not exclusive. */
static inline int asrv__queue_persisted(const aqueue *q) { return q->durable && !q->exclusive; }
/* ah_queue.c, for ah_meta.c's replay: the tables without metadata writes. */
aexchange *asrv__exchange_add(asrv *as, cn_str name, int type);
void asrv__exchange_free(aexchange *x);
aqueue *asrv__queue_add(asrv *as, cn_str name, uint64_t id, amqp_table args);
/* Send queue.declare-ok for q on channel ch. */
void asrv__declare_ok(asrv_conn *ac, uint16_t ch, const aqueue *q);
/* q's log's first voters (a copy; n 0: none). */
void asrv__queue_set_voters(aqueue *q, const int32_t *voters, int n);
void asrv__binding_add(aexchange *x, aqueue *q, cn_str key, amqp_table args);
/* Index of queue binding (q, key, args) of x, or -1. */
int asrv__binding_find(const aexchange *x, const aqueue *q, cn_str key, amqp_table args);
void asrv__binding_free(abinding *b);

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

/* ah_pending.c: replies that wait for durability, in order per channel
 * (publisher confirms, tx.commit-ok; contracts at the top of the file). */
/* Called when an entry of (ac, ch) became ready (ac is OPEN): the owner
 * looks its channel up (it may be gone) and takes the ready head run. */
typedef void (*apending_ready_fn)(asrv_conn *ac, uint16_t ch);
/* Add an entry carrying seq to q's tail; it waits until every partition of
 * st is durable up to its target (failed when st->failed or a sync fails).
 * 1 when it is ready already (the owner takes the ready heads now), else 0
 * (ready(ac, ch) runs when its last wait fires). st is not kept. */
int asrv__pending_add(apending_q *q, asrv_conn *ac, uint16_t ch, uint64_t seq, const astored *st,
                      apending_ready_fn ready);
/* 1 and the head's seq and failed flag when the head is ready, else 0. */
int asrv__pending_peek(const apending_q *q, uint64_t *seq, int *failed);
/* Free the head (it must be ready: asrv__pending_peek said 1). */
void asrv__pending_pop(apending_q *q);
/* The channel goes: waiting entries are freed by their last wait, ready
 * ones now; q is empty after. */
void asrv__pending_orphan(apending_q *q);

/* ah_basic.c: basic.* and confirm.* methods, content frames, delivery. */
void ah_basic(asrv_conn *ac, uint16_t ch, const amqp_method *m);
void ah_content(asrv_conn *ac, uint16_t ch, const amqp_frame *f);
/* Set up / stop the end-of-pass confirm timer (asrv_new / asrv_free). */
void asrv__basic_init(asrv *as);
void asrv__basic_fini(asrv *as);
/* Deliver ready messages of q to its consumers (round-robin, prefetch;
 * only the first with x-single-active-consumer; expired heads dropped). */
void asrv__dispatch(aqueue *q);
/* Channel ch is going away (closed by either side, or the connection):
 * requeue its unacked deliveries (redelivered), cancel its consumers. */
void asrv__chan_release(asrv_conn *ac, uint16_t ch);
/* Take consumer c off channel cs's list; its unacked deliveries stay on the
 * channel with no consumer (ah_basic.c). Does not free c. */
void asrv__chan_forget_consumer(achan *cs, aconsumer *c);
/* The connection goes away: release every channel, delete its exclusive queues. */
void asrv__conn_release(asrv_conn *ac);

/* ah_basic.c, for ah_tx.c. Settling deliveries [lo, hi) of cs->unacked:
 * ack (SETTLE_ACK), drop (SETTLE_DROP) or back to the front of their queue,
 * redelivered (SETTLE_REQUEUE). */
enum { SETTLE_ACK, SETTLE_DROP, SETTLE_REQUEUE };
void asrv__chan_settle(asrv_conn *ac, achan *cs, size_t lo, size_t hi, int how);
/* Index of tag in cs->unacked (tags ascend), or -1. */
ssize_t asrv__chan_find_tag(const achan *cs, uint64_t tag);
/* Send a method with content (method, header and body frames) on ch. */
void asrv__send_content(asrv_conn *ac, uint16_t ch, uint32_t id, const void *args,
                        const amsg *m);

/* ah_queue.c, for ah_xbind.c and ah_tx.c. */
aexchange *asrv__exchange_find(asrv *as, cn_str name);
/* Forget x, its bindings (tombstones for persisted ones) and the
 * exchange-to-exchange bindings it is either end of. */
void asrv__exchange_remove(asrv *as, aexchange *x);
/* 1 if binding b of exchange x (queue or exchange binding) matches m. */
int asrv__binding_matches(const aexchange *x, const abinding *b, const amsg *m,
                          amqp_table headers);
/* ah_meta.c: write (put 1) or tombstone (put 0) the __amqp_meta record of
 * exchange-to-exchange binding b of src, when both ends are durable. */
void asrv__meta_xbind(asrv *as, const aexchange *src, const abinding *b, int put);

/* ah_xbind.c: exchange.bind/unbind, the exchange-to-exchange binding
 * table and alternate exchanges (RabbitMQ semantics), and the routing walk
 * over them. */
void ah_xbind(asrv_conn *ac, uint16_t ch, const amqp_method *m);
/* The queues one publish reaches (each once). */
typedef struct aroute {
    aqueue **q;
    int n, cap;
    aqueue *inl[32];
} aroute;
void asrv__route_init(aroute *r);
void asrv__route_fini(aroute *r);
/* Collect into r every queue m reaches from exchange x: x's matching queue
 * bindings, then recursively the exchanges its matching exchange bindings
 * lead to; an exchange none of whose bindings match passes m to its
 * alternate exchange, if that exists. Each exchange is visited at most once
 * per call (cycles end), each queue is collected once. */
void asrv__xroute(asrv *as, aexchange *x, const amsg *m, amqp_table headers, aroute *r);
/* Index of the exchange binding src -> dst (key, args), or -1. */
int asrv__xbind_find(const aexchange *src, const aexchange *dst, cn_str key, amqp_table args);
/* Add binding src -> dst (no metadata written, no check for a duplicate). */
void asrv__xbind_add(aexchange *src, aexchange *dst, cn_str key, amqp_table args);
/* Forget binding i of src (no metadata written, no auto-delete): replay. */
void asrv__xbind_forget(aexchange *src, int i);
/* x goes: remove (tombstoned) the exchange bindings it is either end of;
 * a source that loses its last binding this way and is auto-delete goes too. */
void asrv__xbind_exchange_gone(asrv *as, aexchange *x);
/* Declare arguments: 0 and *out_ae (alternate-exchange, len 0: none), or
 * -1 after a soft error on ch (406 when alternate-exchange is not a longstr). */
int asrv__exchange_args_or_reply(asrv_conn *ac, uint16_t ch, cn_str xname, amqp_table args,
                                 cn_str *out_ae);
/* Set x's declare arguments (a copy) and its alternate exchange from them. */
void asrv__exchange_set_args(aexchange *x, amqp_table args);

/* ah_tx.c: tx.select/commit/rollback (RabbitMQ semantics). */
void ah_tx(asrv_conn *ac, uint16_t ch, const amqp_method *m);
/* A complete publish on a channel in tx mode: buffered until tx.commit
 * (takes m's ref). Answers 404/403 for a missing/internal exchange and 506
 * RESOURCE_ERROR above ASRV_TX_MAX_BYTES, closing the channel. */
void asrv__tx_publish(asrv_conn *ac, uint16_t ch, achan *cs, amsg *m, int mandatory);
/* basic.ack/nack/reject on a channel in tx mode: marked, applied at commit. */
void asrv__tx_settle(asrv_conn *ac, uint16_t ch, achan *cs, const amqp_method *m, uint64_t tag,
                     int multiple, int how);
/* The channel goes: drop its buffered publishes, orphan its waiting commits. */
void asrv__tx_release(achan *cs);
/* Most bytes of publishes (bodies, headers, names, bookkeeping) one
 * transaction buffers before tx.commit. */
#define ASRV_TX_MAX_BYTES ((size_t)64 << 20)

/* ah_reply.c: direct reply-to, the amq.rabbitmq.reply-to pseudo-queue. */
/* name is "amq.rabbitmq.reply-to" itself. */
int asrv__reply_is_queue(cn_str name);
/* basic.consume on the pseudo-queue: answers consume-ok or a channel error. */
void asrv__reply_consume(asrv_conn *ac, uint16_t ch, achan *cs, const amqp_basic_consume *m);
/* basic.cancel: 1 when tag was cs's reply consumer (now gone), else 0. */
int asrv__reply_cancel(achan *cs, cn_str tag);
/* A publish on ch: a reply_to of "amq.rabbitmq.reply-to" is rewritten in
 * m's content header to this channel's reply name. 0, or -1 after a
 * channel error (no reply consumer on ch: drop m). */
int asrv__reply_rewrite(asrv_conn *ac, uint16_t ch, achan *cs, amsg *m);
/* Default-exchange routing of m: -1 when the routing key is not a reply
 * name; else 1 delivered to its reply consumer, 0 nobody there. */
int asrv__reply_deliver(asrv *as, const amsg *m);

/* ah_basic.c, for ah_stream.c: 1 if c may take a delivery now (channel
 * open and flowing, prefetch credit left); deliver e to c (takes e.m's ref). */
int asrv__can_take(const aconsumer *c);
void asrv__deliver(aconsumer *c, aq_entry e);

/* ah_stream.c: stream queues (docs/amqp-plan.md "Kafka and AMQP on the same
 * data"; contracts at the top of ah_stream.c). */
typedef struct astream_cur astream_cur;
typedef struct astream_state astream_state;
/* 1 if the declare arguments ask for x-queue-type stream. */
int asrv__stream_arg(amqp_table args);
/* A new stream queue named name: 0, or -1 after a soft error (406: not
 * durable, exclusive, auto-delete, not a topic name) or a hard one (the
 * topic cannot be created). Creates the topic when it is missing. */
int asrv__stream_declare_or_reply(asrv_conn *ac, uint16_t ch, cn_str name,
                                  const amqp_queue_declare *m);
/* basic.consume on stream q: the consumer's cursor, or NULL after an error
 * (406 without prefetch or a bad x-stream-offset, 540 with no-ack). */
astream_cur *asrv__stream_consume_or_reply(asrv_conn *ac, uint16_t ch, aqueue *q,
                                           const amqp_basic_consume *m, uint16_t prefetch);
void asrv__stream_consumer_free(aconsumer *c);
/* Deliver from the topic to q's consumers while they have credit. */
void asrv__stream_dispatch(aqueue *q);
/* Append m to q's topic; the partition and target go to st (confirms). */
void asrv__stream_publish(asrv *as, aqueue *q, amsg *m, astored *st);
void asrv__stream_init(asrv *as);
void asrv__stream_fini(asrv *as);
/* ah_stream_map.c: the property mapping (table in ARCHITECTURE.md). The
 * message of record r (of partition part of a topic of n_parts), with a
 * ref for the caller; and the one-record batch of m (*out malloc'ed, the
 * caller frees; now: wall ms for a message without a timestamp): 0 or -1. */
amsg *asrv__stream_record_msg(const batch_record *r, int32_t part, int32_t n_parts);
int asrv__stream_msg_batch(const amsg *m, int64_t now, uint8_t **out, size_t *out_len);
/* The partitioner for keyed publishes is the broker's (broker_key_partition). */

/* ah_qx.c: queue arguments at run time (TTL, x-expires, length limits,
 * priorities). */
/* Read m's priority and expiration properties (m->hdr) into m. 0, or -1
 * when the expiration is not a non-negative integer string (406). */
int asrv__msg_props(amsg *m);
/* Arm (or stop) q's timer: the expiry of its head, x-expires while unused. */
void asrv__qx_arm(aqueue *q);
/* Before enqueueing new message m on q: 1 when the queue is full and its
 * x-overflow is reject-publish(-dlx) (m is then not enqueued; dead-lettered
 * for -dlx), else 0. */
int asrv__qx_reject(aqueue *q, amsg *m);
/* After an enqueue: drop-head over the length limits, arm the timer. */
void asrv__qx_after_push(aqueue *q);
/* Drop (dead-letter) the expired messages at the head of q; how many. */
int asrv__qx_expire(aqueue *q);
/* q was used (declare, get, consumer count change): restart x-expires. */
void asrv__qx_touch(aqueue *q);
/* Set up q's argument state (after q->args is set; q->as, q->xa). */
void asrv__qx_init(asrv *as, aqueue *q);
/* q is deleted: stop its timer. */
void asrv__qx_fini(aqueue *q);
/* Remove ready entry e (popped by the caller) of q for reason (ADL_*): settled
 * in storage, dead-lettered when q has a DLX; takes e's ref. */
void asrv__qx_drop(aqueue *q, aq_entry e, int reason);

/* ah_dlx.c: dead-lettering. Reasons, as RabbitMQ names them in x-death. */
enum { ADL_REJECTED, ADL_EXPIRED, ADL_MAXLEN };
/* Re-publish m (dead in q for reason) through q's dead-letter exchange with
 * an updated x-death header; nothing when q has none. m is not consumed. */
void asrv__dlx_publish(aqueue *q, const amsg *m, int reason);

/* ah_alarm.c: resource alarms (docs/amqp-plan.md "Backpressure"). While
 * an alarm is set (memory: the bytes of messages held reached
 * amqp.memory.high.watermark.bytes, until they fall below 90% of it; disk:
 * the data directory's free space is below amqp.disk.free.limit.bytes),
 * every connection that announced the connection.blocked capability is
 * sent connection.blocked, and a connection that publishes (basic.publish
 * or content frames) stops being read after that frame until the alarms
 * clear (then connection.unblocked). Heartbeats keep going out; the missed-
 * heartbeat check is off while we do not read. */
enum { ASRV_ALARM_MEMORY = 1, ASRV_ALARM_DISK = 2 };
#define ASRV_DISK_CHECK_MS 1000
void asrv__alarm_init(asrv *as);
void asrv__alarm_fini(asrv *as);
/* Count m's bytes (body, header, names) in as's total (once per message). */
void asrv__mem_charge(asrv *as, amsg *m);
/* m is freed: take its bytes off the total (amsg_unref). */
void asrv__mem_release(amsg *m);
/* n bytes were appended to a queue partition (the disk check comes sooner). */
void asrv__disk_wrote(asrv *as, size_t n);
/* Content being received: delta bytes more (or fewer) held. as may be NULL. */
void asrv__mem_add(asrv *as, int64_t delta);
/* Before f is dispatched: a publishing frame while an alarm is set pauses
 * reading ac after it. */
void asrv__alarm_frame(asrv_conn *ac, const amqp_frame *f);
/* The connection is open (open-ok sent): connection.blocked if an alarm is set. */
void asrv__alarm_conn_open(asrv_conn *ac);
/* Slow consumers: deliveries to ac stop while ASRV_OUT_HIGH bytes wait to be
 * sent on its socket (they stay in their queues, counted, so the memory
 * alarm bounds them) and resume when it drained to ASRV_OUT_LOW. 1 when
 * ac may be sent a delivery now; 0 arms the drain callback. */
#define ASRV_OUT_HIGH (1024 * 1024)
#define ASRV_OUT_LOW (256 * 1024)
int asrv__out_ok(asrv_conn *ac);
/* net_proto.on_drain: dispatch the queues of ac's consumers again. */
void asrv__on_drain(void *arg, net_conn *c, void *cctx);

/* ah_channel.c: a channel.* method m on channel ch of an OPEN connection
 * (ch >= 1; the channel is ACH_FREE only for channel.open). */
void ah_channel(asrv_conn *ac, uint16_t ch, const amqp_method *m);
#endif
