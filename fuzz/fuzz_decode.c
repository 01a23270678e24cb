/* libFuzzer harness for the generated Kafka request codec. Input: 2 bytes
 * picking an API (index into FUZZ_KAFKA_APIS, modulo its length), 2 bytes
 * picking a version (-1 .. max+1, so rejection of bad versions is covered
 * too), then the request body. The same bytes are also decoded whole as a
 * request header, and the rest after a good header as that API's body.
 *
 * Property, for every decode that succeeds: encode(m) = b1 decodes again,
 * consuming all of b1, and encoding that result gives b1 byte for byte
 * (decode . encode is the identity on what decode produces). A violation
 * traps. Arrays come from an arena capped at 1 MiB, reset per input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_apis.h"
#include "proto/kafka/gen/kafka_msgs.h"

#define ARENA_LIMIT (1 << 20)

static arena a1, a2;
static kw w1, w2;

/* b1 (in w1) must decode from a2, consume everything, and re-encode to b1. */
#define RT(name, NAME, ...)                                                    \
    static void rt_##name(kr *r, int16_t ver)                                  \
    {                                                                          \
        kafka_##name##_request m, m2;                                          \
        if (kafka_##name##_request_decode(r, ver, &m) < 0)                     \
            return;                                                            \
        kw_reset(&w1);                                                         \
        kafka_##name##_request_encode(&w1, ver, &m);                           \
        kr r2;                                                                 \
        kr_init(&r2, w1.buf, w1.len, &a2);                                     \
        if (kafka_##name##_request_decode(&r2, ver, &m2) < 0 ||                \
            kr_remaining(&r2) != 0)                                            \
            __builtin_trap();                                                  \
        kw_reset(&w2);                                                         \
        kafka_##name##_request_encode(&w2, ver, &m2);                          \
        if (w2.len != w1.len || (w1.len && memcmp(w1.buf, w2.buf, w1.len) != 0)) \
            __builtin_trap();                                                  \
    }
FUZZ_KAFKA_APIS(RT)
#undef RT

typedef struct api {
    int16_t key;
    int16_t max;
    void (*rt)(kr *r, int16_t ver);
} api;

#define ROW(name, NAME, ...) {KAFKA_API_##NAME, KAFKA_##NAME##_MAX_VERSION, rt_##name},
static const api apis[] = {FUZZ_KAFKA_APIS(ROW)};
#undef ROW
#define N_APIS ((int)(sizeof(apis) / sizeof(apis[0])))

static const api *api_by_key(int16_t key)
{
    for (int i = 0; i < N_APIS; i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

static void reset(void)
{
    arena_reset(&a1);
    arena_reset(&a2);
}

/* Header round trip, then the body with the API and version it names. */
static void check_header(const uint8_t *data, size_t size)
{
    kr r;
    kafka_request_header h, h2;
    kr_init(&r, data, size, &a1);
    if (kafka_request_header_decode(&r, &h) < 0)
        return;
    kw_reset(&w2);
    kafka_request_header_encode(&w2, &h);
    kr r2;
    kr_init(&r2, w2.buf, w2.len, &a2);
    if (kafka_request_header_decode(&r2, &h2) < 0 || kr_remaining(&r2) != 0 ||
        h2.api_key != h.api_key || h2.api_version != h.api_version ||
        h2.correlation_id != h.correlation_id || h2.client_id.len != h.client_id.len ||
        (h.client_id.len > 0 &&
         memcmp(h.client_id.ptr, h2.client_id.ptr, (size_t)h.client_id.len) != 0))
        __builtin_trap();
    const api *p = api_by_key(h.api_key);
    if (p)
        p->rt(&r, h.api_version);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        arena_init(&a1, 4096, ARENA_LIMIT);
        arena_init(&a2, 4096, ARENA_LIMIT);
        kw_init(&w1);
        kw_init(&w2);
        ready = 1;
    }
    check_header(data, size);
    reset();
    if (size < 4)
        return 0;
    const api *p = &apis[((unsigned)data[0] << 8 | data[1]) % N_APIS];
    int16_t ver = (int16_t)(((unsigned)data[2] << 8 | data[3]) % (unsigned)(p->max + 3)) - 1;
    kr r;
    kr_init(&r, data + 4, size - 4, &a1);
    p->rt(&r, ver);
    reset();
    return 0;
}
