/* Control batches (transaction markers): build and parse. Layout of the
 * control record at the top of batch.h. The broker writes these; clients
 * never may (batch_validate rejects the control bit). */
#include <string.h>

#include "record/batch.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"

size_t batch_marker_build(uint8_t *buf, int64_t pid, int16_t epoch, int commit,
                          int32_t coordinator_epoch, int64_t timestamp)
{
    /* Record: length, attributes 0, timestamp delta 0, offset delta 0,
     * key (4 bytes: version 0, type), value (6 bytes: version 0, epoch),
     * no headers. Every varint here is one byte (small values, zigzag). */
    uint8_t rec[32];
    size_t r = 0;
    rec[r++] = 0;                           /* attributes */
    rec[r++] = 0;                           /* timestamp delta */
    rec[r++] = 0;                           /* offset delta */
    rec[r++] = (uint8_t)zz_enc64(4);        /* key length 4 */
    be_put16(rec + r, 0);
    be_put16(rec + r + 2, commit ? BATCH_CONTROL_COMMIT : BATCH_CONTROL_ABORT);
    r += 4;
    rec[r++] = (uint8_t)zz_enc64(6);        /* value length 6 */
    be_put16(rec + r, 0);
    be_put32(rec + r + 2, (uint32_t)coordinator_epoch);
    r += 6;
    rec[r++] = 0;                           /* header count */
    size_t len = BATCH_HEADER_SIZE + 1 + r;
    memset(buf, 0, BATCH_HEADER_SIZE);
    be_put64(buf + BATCH_OFF_BASE_OFFSET, 0);                 /* set by the log */
    be_put32(buf + BATCH_OFF_LENGTH, (uint32_t)(len - BATCH_LOG_OVERHEAD));
    be_put32(buf + BATCH_OFF_LEADER_EPOCH, 0);                /* set by the log */
    buf[BATCH_OFF_MAGIC] = 2;
    be_put16(buf + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
    be_put32(buf + BATCH_OFF_LAST_OFFSET_DELTA, 0);
    be_put64(buf + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)timestamp);
    be_put64(buf + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)timestamp);
    be_put64(buf + BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    be_put16(buf + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    be_put32(buf + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    be_put32(buf + BATCH_OFF_RECORDS_COUNT, 1);
    buf[BATCH_HEADER_SIZE] = (uint8_t)zz_enc64((int64_t)r);  /* record length */
    memcpy(buf + BATCH_HEADER_SIZE + 1, rec, r);
    be_put32(buf + BATCH_OFF_CRC,
             crc32c(0, buf + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
    return len;
}

int batch_marker_parse(const uint8_t *batch, size_t len, int *type, int32_t *coordinator_epoch)
{
    *type = -1;
    *coordinator_epoch = -1;
    if (len < BATCH_HEADER_SIZE + 1)
        return -CN_ECORRUPT;
    const uint8_t *p = batch + BATCH_HEADER_SIZE, *end = batch + len;
    int64_t rec_len, ts_delta, off_delta, klen, vlen;
    if (varlong_get(&p, end, &rec_len) < 0 || p >= end)
        return -CN_ECORRUPT;
    p++; /* attributes */
    if (varlong_get(&p, end, &ts_delta) < 0 || varlong_get(&p, end, &off_delta) < 0 ||
        varlong_get(&p, end, &klen) < 0)
        return -CN_ECORRUPT;
    if (klen < 4 || end - p < klen)
        return -CN_ECORRUPT;
    *type = (int)(int16_t)be_get16(p + 2);
    p += klen;
    if (varlong_get(&p, end, &vlen) < 0)
        return 0;
    if (vlen >= 6 && end - p >= 6)
        *coordinator_epoch = (int32_t)be_get32(p + 2);
    return 0;
}
