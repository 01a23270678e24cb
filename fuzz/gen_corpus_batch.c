/* Writes the seed corpus for fuzz_batch into the directory given as argv[1]
 * (each file is fuzz_batch's mode byte 0x01, "fix CRCs", then records):
 * one small batch per codec (raw and xerial snappy) and two batches back to
 * back. (corpus/batch/golden-headers, a batch with headers and nulls, is the
 * golden array of tests/unit/test_batch.c written out the same way.)
 * Build and run (from the repo root, after `make build/libcairn.a`):
 *   cc -std=c11 -D_GNU_SOURCE -Isrc fuzz/gen_corpus_batch.c build/libcairn.a \
 *      -lz -lsnappy -llz4 -lzstd -pthread -o build/gen_corpus_batch
 *   ./build/gen_corpus_batch fuzz/corpus/batch */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/batch_int.h"

static void put_file(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputc(0x01, f) == EOF || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    char value[300];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (char)('a' + i % 7);
    const batch_build_rec recs[] = {
        {"key", 3, "hello", 5, 1700000000000LL},
        {NULL, -1, value, (int32_t)sizeof(value), 1700000000007LL},
        {"tomb", 4, NULL, -1, 1700000000003LL},
    };
    uint8_t *b;
    size_t len;
    char name[64];
    for (int codec = 0; codec <= 4; codec++) {
        for (int xerial = 0; xerial <= (codec == BATCH_COMPRESSION_SNAPPY); xerial++) {
            if (batch__build_ex(recs, 3, codec, xerial, 0, &b, &len) != 0)
                return 1;
            snprintf(name, sizeof(name), "%s%s", names[codec], xerial ? "-xerial" : "");
            put_file(argv[1], name, b, len);
            free(b);
        }
    }
    /* Two batches back to back: one record plain, then lz4. */
    uint8_t *a;
    size_t alen;
    if (batch_build(recs, 1, 0, 0, &a, &alen) != 0 || batch_build(recs, 2, 3, 1, &b, &len) != 0)
        return 1;
    uint8_t *two = malloc(alen + len);
    memcpy(two, a, alen);
    memcpy(two + alen, b, len);
    put_file(argv[1], "two-batches", two, alen + len);
    free(two);
    free(a);
    free(b);
    return 0;
}
