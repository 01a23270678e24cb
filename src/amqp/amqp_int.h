/* Private to the AMQP front end: the front end, the per-connection context
 * and its channels, the connection state machine's entry points (conn.c)
 * and the channel handlers (ah_channel.c). */
#ifndef CAIRN_AMQP_INT_H
#define CAIRN_AMQP_INT_H
#include <stdint.h>

#include "amqp/amqp.h"
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

struct asrv {
    core *core;
    loop *l;
    wbuf props;                  /* server-properties table entries (connection.start) */
    struct asrv_conn *conns;     /* open connections (for the shutdown Close) */
};

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

/* ah_channel.c: a channel.* method m on channel ch of an OPEN connection
 * (ch >= 1; the channel is ACH_FREE only for channel.open). */
void ah_channel(asrv_conn *ac, uint16_t ch, const amqp_method *m);
#endif
