/* AMQP queue arguments (issue 10, RabbitMQ's x-* queue arguments): parsing,
 * validation and the redeclare equivalence check. Pure functions, no state
 * (ah_qargs.c); used by queue.declare (ah_queue.c) and tested in
 * tests/unit/test_amqp_qargs.c. What the arguments do at run time is in
 * ah_qx.c (TTL, x-expires, length limits, priorities) and ah_dlx.c
 * (dead-lettering).
 *
 * Arguments, as RabbitMQ 3 validates them (any integer field type is
 * accepted for an integer: b B s u I i l):
 *   x-message-ttl              integer >= 0, ms
 *   x-expires                  integer > 0, ms
 *   x-max-length               integer >= 0, ready messages
 *   x-max-length-bytes         integer >= 0, body bytes of ready messages
 *   x-max-priority             integer 0..255 (0: not a priority queue)
 *   x-overflow                 longstr drop-head | reject-publish |
 *                              reject-publish-dlx
 *   x-dead-letter-exchange     longstr (may be "", the default exchange)
 *   x-dead-letter-routing-key  longstr, only with x-dead-letter-exchange
 *   x-single-active-consumer   bool
 *   x-queue-type               longstr classic | quorum (quorum: durable,
 *                              not exclusive, not auto-delete) | stream (a
 *                              Kafka topic, ah_stream.c, which checks its
 *                              flags; with a classic-only argument above:
 *                              406; with x-max-length-bytes or x-max-age,
 *                              stream retention: 540, the topic's
 *                              retention.* configs apply)
 *   x-queue-mode               longstr default | lazy (no effect here)
 * Any other argument (x-* or not) is ignored, as RabbitMQ does. */
#ifndef CAIRN_AMQP_QARGS_H
#define CAIRN_AMQP_QARGS_H
#include <stddef.h>
#include <stdint.h>

#include "proto/amqp/amqp_buf.h"
#include "util/bytes.h"

enum { AQ_OVF_DROP_HEAD, AQ_OVF_REJECT_PUBLISH, AQ_OVF_REJECT_PUBLISH_DLX };
enum { AQ_TYPE_CLASSIC, AQ_TYPE_QUORUM, AQ_TYPE_STREAM };

/* A queue's parsed arguments. The strings are views into the table parsed
 * (the queue keeps its arguments' bytes for its life). */
typedef struct aqargs {
    int64_t message_ttl;         /* ms, -1: none */
    int64_t expires;             /* ms, -1: none */
    int64_t max_length;          /* -1: none */
    int64_t max_length_bytes;    /* -1: none */
    uint8_t overflow;            /* AQ_OVF_* */
    uint8_t max_priority;        /* 0: not a priority queue */
    uint8_t single_active;       /* x-single-active-consumer */
    uint8_t type;                /* AQ_TYPE_* */
    uint8_t has_dlx, has_dlrk;
    cn_str dlx, dlrk;            /* x-dead-letter-exchange / -routing-key */
} aqargs;

/* Why a declare's arguments were refused: the reply code (406
 * PRECONDITION_FAILED, or 540 NOT_IMPLEMENTED for stream retention), the
 * argument (a view into the table; empty for a queue property) and a text
 * in RabbitMQ's words. */
typedef struct aqargs_err {
    uint16_t code;
    cn_str key;
    char text[320];
} aqargs_err;

/* Parse and validate args (a checked table) for a queue declared with these
 * flags. 0 and *out, or -1 and *err. */
int asrv_qargs_parse(amqp_table args, int durable, int exclusive, int auto_delete, aqargs *out,
                     aqargs_err *err);

/* 0 when a redeclare with args now is equivalent to the declare with args
 * was (every argument named above equal: integers by value whatever their
 * type, x-queue-type absent = classic); else -1 and *err (406, "received
 * ... but current is ..."). */
int asrv_qargs_equiv(amqp_table was, amqp_table now, aqargs_err *err);
#endif
