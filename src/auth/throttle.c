/* The failed-login delay per address (contract in throttle.h). */
#include "auth/throttle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define SLOTS 64
#define DELAY_MAX_MS 5000
#define FORGET_MS 60000

typedef struct fail_slot {
    char host[48];
    int fails;
    int64_t last_ms;
} fail_slot;

struct auth_throttle {
    int64_t first_ms;
    fail_slot slots[SLOTS];
};

auth_throttle *auth_throttle_new(int64_t first_ms)
{
    auth_throttle *t = xcalloc(1, sizeof(auth_throttle));
    t->first_ms = first_ms;
    return t;
}

void auth_throttle_free(auth_throttle *t) { free(t); }

int64_t auth_throttle_fail(auth_throttle *t, const char *host, int64_t now_ms)
{
    if (t->first_ms <= 0)
        return 0;
    fail_slot *f = NULL, *victim = NULL; /* an unused slot, else the least recent */
    for (int i = 0; i < SLOTS; i++) {
        fail_slot *s = &t->slots[i];
        if (s->fails && strcmp(s->host, host) == 0) {
            f = s;
            break;
        }
        if (!victim || (victim->fails && (!s->fails || s->last_ms < victim->last_ms)))
            victim = s;
    }
    if (!f) {
        f = victim;
        snprintf(f->host, sizeof(f->host), "%s", host);
        f->fails = 0;
    }
    if (now_ms - f->last_ms > FORGET_MS)
        f->fails = 0;
    f->fails++;
    f->last_ms = now_ms;
    int64_t d = t->first_ms;
    for (int i = 1; i < f->fails && d < DELAY_MAX_MS; i++)
        d *= 2;
    return d < DELAY_MAX_MS ? d : DELAY_MAX_MS;
}
