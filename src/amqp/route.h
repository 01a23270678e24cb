/* AMQP routing predicates (pure functions, no state): topic patterns and
 * headers-exchange bindings. Used by the exchange code (ah_queue.c) and
 * tested in tests/unit/test_amqp_route.c. */
#ifndef CAIRN_AMQP_ROUTE_H
#define CAIRN_AMQP_ROUTE_H
#include "proto/amqp/amqp_buf.h"
#include "util/bytes.h"

/* 1 if routing key key matches the topic pattern pat: both are words
 * separated by '.', "*" in pat matches exactly one word, "#" zero or more
 * words (RabbitMQ's topic exchange). An empty key has no words ("#" matches it, "*" does not). */
int asrv_topic_match(cn_str pat, cn_str key);

/* 1 if a message with headers table hdr matches a headers-exchange binding
 * with arguments args: "x-match" is "all" (default: every other non-"x-"
 * argument is present in hdr with an equal value; a void argument only
 * needs the key to be present) or "any" (at least one does). Arguments
 * whose key starts with "x-" do not take part. A binding with no
 * argument left matches every message under "all", none under "any".
 * Values are equal when tags and contents are equal, integers of any width
 * by their value. Malformed tables match nothing. */
int asrv_headers_match(amqp_table args, amqp_table hdr);
#endif
