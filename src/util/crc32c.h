/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by Kafka
 * record batches. Uses the SSE4.2 crc32 instruction with three interleaved
 * streams when the CPU has it (checked once at start), a table otherwise.
 * Thread-safe; no allocation. */
#ifndef CAIRN_CRC32C_H
#define CAIRN_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over len bytes of buf; returns the new CRC.
 * crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* Same, forced through the portable table path (for tests and comparison). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* 1 if the hardware path is in use. */
int crc32c_hw_available(void);
#endif
