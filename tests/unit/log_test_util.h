/* Helpers shared by the partition log tests: temporary directories,
 * hand-built RecordBatch v2 buffers with a valid CRC-32C, and file pokes.
 * Header-only (static functions) because the Makefile builds one binary per
 * tests/unit/test_*.c file. */
#ifndef CAIRN_LOG_TEST_UTIL_H
#define CAIRN_LOG_TEST_UTIL_H
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "log/log_int.h"
#include "util/crc32c.h"

/* Fresh empty directory under /tmp; caller frees with tmpdir_remove(). */
static inline char *tmpdir_new(void)
{
    char *d = strdup("/tmp/cairn-test-log-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static inline void tmpdir_remove(char *d)
{
    DIR *dir = opendir(d);
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL)
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                unlinkat(dirfd(dir), de->d_name, 0);
        closedir(dir);
    }
    rmdir(d);
    free(d);
}

static inline log_options test_opts(void)
{
    log_options o = {
        .segment_bytes = 1 << 20,
        .segment_ms = -1,
        .retention_ms = -1,
        .retention_bytes = -1,
        .index_interval_bytes = 4096,
        .preallocate = 0,
    };
    return o;
}

/* Build a batch of total size len (>= 61) holding n_records (>= 1) with
 * maxTimestamp max_ts into buf; the payload is a pattern from seed. Base
 * offset and epoch are left 0 (the log stamps them). Returns len. */
static inline size_t make_batch(uint8_t *buf, size_t len, int32_t n_records, int64_t max_ts,
                         uint8_t seed)
{
    memset(buf, 0, BATCH_HEADER_SIZE);
    be_put32(buf + BATCH_OFF_LENGTH, (uint32_t)(len - 12));
    buf[BATCH_OFF_MAGIC] = LOG_BATCH_MAGIC;
    be_put32(buf + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n_records - 1));
    be_put64(buf + 27, (uint64_t)max_ts);          /* baseTimestamp */
    be_put64(buf + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    be_put64(buf + 43, (uint64_t)-1);              /* producerId */
    buf[51] = 0xff;                                 /* producerEpoch -1 */
    buf[52] = 0xff;
    be_put32(buf + 53, (uint32_t)-1);              /* baseSequence */
    be_put32(buf + 57, (uint32_t)n_records);
    for (size_t i = BATCH_HEADER_SIZE; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7);
    be_put32(buf + BATCH_OFF_CRC, crc32c(0, buf + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
    return len;
}

/* Append one fresh batch; returns its base offset. */
static inline int64_t append_one(log_partition *p, size_t len, int32_t n_records, int64_t max_ts,
                          int64_t now_ms)
{
    uint8_t buf[8192];
    assert_true(len <= sizeof(buf));
    make_batch(buf, len, n_records, max_ts, (uint8_t)len);
    int64_t base = -1;
    assert_int_equal(log_append(p, buf, len, now_ms, &base), 0);
    return base;
}

static inline void seg_file(const char *dir, int64_t base, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%s/%020lld%s", dir, (long long)base, ext);
}

static inline int64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    return (int64_t)st.st_size;
}

/* Whole file into a malloc'd buffer (caller frees); *out_len set. */
static inline uint8_t *file_read(const char *path, size_t *out_len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *out_len = (size_t)st.st_size;
    return b;
}

static inline void file_append(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static inline void file_poke(const char *path, int64_t pos, uint8_t xor_mask)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, pos), 1);
    b ^= xor_mask;
    assert_int_equal(pwrite(fd, &b, 1, pos), 1);
    close(fd);
}

/* Bytes of a slice, malloc'd (caller frees). */
static inline uint8_t *slice_bytes(const log_slice *s)
{
    uint8_t *b = malloc((size_t)s->len + 1);
    assert_non_null(b);
    assert_int_equal(pread(s->fd, b, (size_t)s->len, s->pos), s->len);
    return b;
}
#endif
