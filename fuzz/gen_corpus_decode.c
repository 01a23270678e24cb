/* Writes the seed corpus for fuzz_decode into the directory given as argv[1]:
 * for every API and version, the 4-byte selector (API index, version + 1)
 * then the encoding of an M_init'ed request. Checks that each one decodes.
 * Build and run (from the repo root, after `make build/libcairn.a`):
 *   cc -std=c11 -D_GNU_SOURCE -Isrc fuzz/gen_corpus_decode.c build/libcairn.a \
 *      -lz -lsnappy -llz4 -lzstd -pthread -o build/gen_corpus_decode
 *   ./build/gen_corpus_decode fuzz/corpus/decode */
#include <stdio.h>
#include <stdlib.h>

#include "kafka_apis.h"
#include "proto/kafka/gen/kafka_msgs.h"

static const char *dir;
static int api_index;

static void put(const char *name, int16_t ver, const kw *w)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-v%d", dir, name, ver);
    uint8_t sel[4] = {(uint8_t)(api_index >> 8), (uint8_t)api_index, (uint8_t)((ver + 1) >> 8),
                      (uint8_t)(ver + 1)};
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(sel, 1, 4, f) != 4 || fwrite(w->buf, 1, w->len, f) != w->len ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

#define GEN(name, NAME, ...)                                                   \
    for (int16_t v = 0; v <= KAFKA_##NAME##_MAX_VERSION; v++) {                \
        kafka_##name##_request m, m2;                                          \
        kafka_##name##_request_init(&m);                                       \
        kw w;                                                                  \
        kw_init(&w);                                                           \
        kafka_##name##_request_encode(&w, v, &m);                              \
        kr r;                                                                  \
        kr_init(&r, w.buf, w.len, &a);                                         \
        if (kafka_##name##_request_decode(&r, v, &m2) < 0) {                   \
            fprintf(stderr, "%s v%d: init'ed request does not decode\n", #name, v); \
            rc = 1;                                                            \
        }                                                                      \
        put(#name, v, &w);                                                     \
        kw_fini(&w);                                                           \
        arena_reset(&a);                                                       \
    }                                                                          \
    api_index++;

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    arena a;
    arena_init(&a, 4096, 0);
    int rc = 0;
    FUZZ_KAFKA_APIS(GEN)
    arena_fini(&a);
    return rc;
}
