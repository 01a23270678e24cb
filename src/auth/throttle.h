/* Failed logins cost the client time: each failure from an address makes
 * its answer wait, first_ms for the first (Kafka's
 * connection.failed.authentication.delay.ms, 100 by default), doubling
 * with every further failure from the same address within a minute, up to
 * 5 s; 0 answers at once. One table for
 * every front end (Kafka SASL, AMQP, HTTP), owned by the core, so an
 * attacker gains nothing by switching protocols. The front ends pause the
 * connection's reads while its refusal waits, so a waiting client costs a
 * timer, not CPU. Bounded memory: the 64 most recently failing addresses
 * (an address pushed out starts again at 100 ms).
 * Loop thread only. */
#ifndef CAIRN_AUTH_THROTTLE_H
#define CAIRN_AUTH_THROTTLE_H
#include <stdint.h>

typedef struct auth_throttle auth_throttle;

auth_throttle *auth_throttle_new(int64_t first_ms);
void auth_throttle_free(auth_throttle *t); /* NULL is a no-op */

/* Note a failed login from host (an address without its port) at now_ms
 * (monotonic): the delay in ms its refusal should wait. */
int64_t auth_throttle_fail(auth_throttle *t, const char *host, int64_t now_ms);

#endif
