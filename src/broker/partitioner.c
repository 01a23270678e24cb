/* Kafka's default partitioner for keyed records (contract in broker.h):
 * murmur2 with seed 0x9747b28c, the sign bit cleared, modulo the partition
 * count. Shared by every front end that picks a partition from a key. */
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
uint32_t broker_murmur2(const void *key, size_t len)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)d[i * 4] | (uint32_t)d[i * 4 + 1] << 8 |
                     (uint32_t)d[i * 4 + 2] << 16 | (uint32_t)d[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t t = len & ~(size_t)3;
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)d[t + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[t + 1] << 8;
        /* fall through */
    case 1:
        h ^= d[t];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t broker_key_partition(const void *key, size_t len, int32_t n_parts)
{
    return (int32_t)((broker_murmur2(key, len) & 0x7fffffffu) % (uint32_t)n_parts);
}
