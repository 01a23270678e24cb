/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and
 * final xor ~0), the checksum of Kafka record batches. Two implementations
 * compute the same function: a portable slicing-by-8 table path, and on
 * x86-64 the SSE4.2 crc32 instruction. Buffers of CRC_3WAY_MIN bytes or more
 * are split into three equal streams whose crc32 chains run interleaved (the
 * instruction has a latency of three cycles but issues every cycle), and the
 * stream results are merged with one carry-less multiply each (PCLMULQDQ)
 * against a precomputed power of x. CPU features are probed once, on first
 * use; after that every function is thread-safe, lock-free and allocates
 * nothing. Invariant: for every input, crc32c() == crc32c_sw(), and
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
#include "util/crc32c.h"

#include "util/common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h> /* SSE4.2 _mm_crc32_* */
#include <wmmintrin.h> /* PCLMULQDQ _mm_clmulepi64_si128 */
#define CRC_X86 1
#else
#define CRC_X86 0
#endif

#define CRC_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

/* Bytes per stream in a full three-stream block. Larger amortises the merge
 * (about 15 cycles) better; 4 KiB keeps the merge cost under 1%. */
#define CRC_LMAX 4096
/* Below this many bytes one chain is faster than three plus a merge
 * (measured crossover on an AMD EPYC: about 64 bytes). */
#define CRC_3WAY_MIN 72

/* The state is the raw register: crc32c() inverts on entry and exit. A state
 * s stands for the polynomial S(x) = sum s_i x^(31-i) (bit 0 is the highest
 * power), and feeding n zero bytes maps S to S * x^(8n) mod P. */

static uint32_t crc_table[8][256]; /* slicing-by-8: table[k][b] = b shifted by k more bytes */
static int crc_use_hw;             /* SSE4.2 crc32 present */
static int crc_use_3way;           /* PCLMULQDQ present too: merge streams */
/* crc_k[j] = x^(64j - 33) mod P. Multiplying a stream CRC by crc_k[n / 8] and
 * folding the product through crc32 (which multiplies by x^33 overall, see
 * crc_hw_block3) shifts it past n further bytes. */
static uint32_t crc_k[2 * CRC_LMAX / 8 + 1];
static atomic_int crc_ready;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Portable path ---------------------------------------------------------- */

static inline uint32_t crc_sw_byte(uint32_t s, uint8_t b)
{
    return crc_table[0][(s ^ b) & 0xff] ^ (s >> 8);
}

static uint32_t crc_sw_update(uint32_t s, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        s = crc_sw_byte(s, *p++);
        len--;
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w = load_le64(p) ^ s;
        s = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
    }
    while (len--)
        s = crc_sw_byte(s, *p++);
    return s;
}

/* Hardware path ---------------------------------------------------------- */

#if CRC_X86
__attribute__((target("sse4.2"))) static uint64_t crc_hw_single(uint64_t s, const uint8_t *p,
                                                                size_t len)
{
    for (; len >= 8; p += 8, len -= 8)
        s = _mm_crc32_u64(s, load_le64(p));
    while (len--)
        s = _mm_crc32_u8((uint32_t)s, *p++);
    return s;
}

/* CRC of the 3*l bytes at p, continuing from state s; l is a multiple of 8,
 * 8 <= l <= CRC_LMAX. Streams a, b, c cover consecutive thirds; b and c start
 * from 0. By linearity the result is a*x^(16l) ^ b*x^(8l) ^ c. The two shifts
 * are folded into c's last word: clmul(a, x^(16l-33)) is A*x^(16l-33)*x (the
 * 63-bit product lands one bit up in a 64-bit word) and crc32 of a word
 * multiplies it by x^32, giving A*x^(16l) mod P. */
__attribute__((target("sse4.2,pclmul"))) static uint64_t crc_hw_block3(uint64_t s,
                                                                       const uint8_t *p, size_t l)
{
    const uint8_t *last = p + l - 8;
    uint64_t a = s, b = 0, c = 0;
    for (; p < last; p += 8) {
        a = _mm_crc32_u64(a, load_le64(p));
        b = _mm_crc32_u64(b, load_le64(p + l));
        c = _mm_crc32_u64(c, load_le64(p + 2 * l));
    }
    a = _mm_crc32_u64(a, load_le64(p));
    b = _mm_crc32_u64(b, load_le64(p + l));
    __m128i pa = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)(uint32_t)a),
                                      _mm_cvtsi32_si128((int)crc_k[2 * l / 8]), 0);
    __m128i pb = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)(uint32_t)b),
                                      _mm_cvtsi32_si128((int)crc_k[l / 8]), 0);
    uint64_t fold = (uint64_t)_mm_cvtsi128_si64(_mm_xor_si128(pa, pb));
    return _mm_crc32_u64(c, load_le64(p + 2 * l) ^ fold);
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw_update(uint32_t crc, const uint8_t *p,
                                                                size_t len)
{
    uint64_t s = crc;
    while (len && ((uintptr_t)p & 7)) {
        s = _mm_crc32_u8((uint32_t)s, *p++);
        len--;
    }
    if (crc_use_3way) {
        for (; len >= 3 * CRC_LMAX; p += 3 * CRC_LMAX, len -= 3 * CRC_LMAX)
            s = crc_hw_block3(s, p, CRC_LMAX);
        if (len >= CRC_3WAY_MIN) {
            size_t l = len / 24 * 8;
            s = crc_hw_block3(s, p, l);
            p += 3 * l;
            len -= 3 * l;
        }
    }
    return (uint32_t)crc_hw_single(s, p, len);
}
#endif

/* Setup and entry points ------------------------------------------------- */

static void crc_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t s = b;
        for (int i = 0; i < 8; i++)
            s = (s >> 1) ^ (CRC_POLY & (0u - (s & 1)));
        crc_table[0][b] = s;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            crc_table[k][b] = crc_sw_byte(crc_table[k - 1][b], 0);

    /* x^31 is bit 0; each step feeds 8 zero bytes, multiplying by x^64. */
    crc_k[0] = 0; /* x^-33: never used (l >= 8) */
    crc_k[1] = 1;
    for (size_t j = 2; j < CN_ARRAY_LEN(crc_k); j++)
        crc_k[j] = crc_sw_update(crc_k[j - 1], (const uint8_t *)"\0\0\0\0\0\0\0\0", 8);

#if CRC_X86
    __builtin_cpu_init();
    crc_use_hw = __builtin_cpu_supports("sse4.2");
    crc_use_3way = crc_use_hw && __builtin_cpu_supports("pclmul");
#endif
    atomic_store_explicit(&crc_ready, 1, memory_order_release);
}

static inline void crc_setup(void)
{
    if (CN_UNLIKELY(!atomic_load_explicit(&crc_ready, memory_order_acquire)))
        pthread_once(&crc_once, crc_init);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc_setup();
#if CRC_X86
    if (crc_use_hw)
        return ~crc_hw_update(~crc, buf, len);
#endif
    return ~crc_sw_update(~crc, buf, len);
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    crc_setup();
    return ~crc_sw_update(~crc, buf, len);
}

int crc32c_hw_available(void)
{
    crc_setup();
    return crc_use_hw;
}
