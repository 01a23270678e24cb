/* libFuzzer harness for kafka/batch. Input: one mode byte, then one
 * partition's produce `records` field. Mode bit 0: recompute each batch's
 * CRC-32C first, so mutations get past the checksum into the codecs and the
 * record grammar. Mode bit 1: also run batch_foreach on rejected input
 * (foreach must be safe on anything). Runs batch_validate and, when it accepts, checks
 * that batch_foreach agrees (same record count, offsets base..base+n-1, every
 * key/value byte readable) and that LogAppendTime stamping keeps the batch
 * valid. A disagreement traps, so it is reported like a crash. The scratch is
 * static and reused across inputs, as a loop thread would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/batch.h"
#include "util/crc32c.h"

#define MAX_BATCHES 64

typedef struct walk {
    int64_t next_offset;
    int32_t n;
    uint32_t sum;
} walk;

static int visit(const batch_record *r, void *arg)
{
    walk *w = arg;
    if (r->offset != w->next_offset)
        __builtin_trap();
    w->next_offset = (int64_t)((uint64_t)w->next_offset + 1);  /* wraps like offsets do */
    w->n++;
    for (int32_t i = 0; i < r->key_len; i++)      /* ASan checks each view */
        w->sum += r->key[i];
    for (int32_t i = 0; i < r->value_len; i++)
        w->sum += r->value[i];
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrite the CRC of every batch whose length field is plausible. */
static void fix_crcs(uint8_t *b, size_t len)
{
    size_t pos = 0;
    while (len - pos >= BATCH_HEADER_SIZE) {
        uint32_t bl = be32(b + pos + 8);
        if (bl < BATCH_HEADER_SIZE - 12 || bl > len - pos - 12)
            return;
        uint32_t c = crc32c(0, b + pos + 21, bl + 12 - 21);
        b[pos + 17] = (uint8_t)(c >> 24);
        b[pos + 18] = (uint8_t)(c >> 16);
        b[pos + 19] = (uint8_t)(c >> 8);
        b[pos + 20] = (uint8_t)c;
        pos += (size_t)bl + 12;
    }
}

static int ignore(const batch_record *r, void *arg)
{
    (void)r;
    (void)arg;
    return 0;
}

static void check(const uint8_t *data, size_t size, batch_scratch *s, int foreach_always)
{
    batch_info info[MAX_BATCHES];
    int n = 0;
    int rc = batch_validate(data, size, INT32_MAX, s, info, MAX_BATCHES, &n);
    if (rc != 0 && foreach_always)
        (void)batch_foreach(data, size, s, ignore, NULL);
    if (rc != 0 || n > MAX_BATCHES)
        return;

    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t total = (size_t)info[i].batch_length + 12;
        walk w = {info[i].base_offset, 0, 0};
        if (batch_foreach(data + pos, size - pos, s, visit, &w) != 0 ||
            w.n != info[i].record_count)
            __builtin_trap();
        batch_set_log_append_time(copy + pos, total, 42);
        pos += total;
    }
    if (pos != size || batch_validate(copy, size, INT32_MAX, s, NULL, 0, &n) != 0)
        __builtin_trap();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static batch_scratch *s;
    if (!s) {
        s = batch_scratch_new();
        batch_scratch_set_limit(s, 16 << 20);     /* stay far below -rss_limit_mb */
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (!(mode & 1)) {
        check(data, size, s, mode & 2);
        return 0;
    }
    /* Exact-size copy, so ASan still sees any overread. */
    uint8_t *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    fix_crcs(b, size);
    check(b, size, s, mode & 2);
    free(b);
    return 0;
}
