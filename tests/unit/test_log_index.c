/* Unit tests for the partition log's sparse indexes (src/log/log_index.c):
 * which batches get entries, the on-disk encoding, lookups, and loading at
 * open: valid indexes of closed segments are kept, missing or corrupt ones
 * are rebuilt from the .log to the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log_test_util.h"
#include "util/common.h"

/* 9 batches of 100 bytes, interval 250: entries at batches 3 and 6 (bytes
 * since the last entry reach 300), rel offsets 6 and 12 (2 records each). */
static log_partition *fill(const char *dir, int64_t seg_bytes)
{
    log_options o = test_opts();
    o.index_interval_bytes = 250;
    o.segment_bytes = seg_bytes;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    for (int i = 0; i < 9; i++)
        append_one(p, 100, 2, 1000 + (i == 4 ? 500 : 10 * i), 0);
    return p;
}

static void test_index_entries_and_encoding(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_partition *p = fill(dir, 1 << 20);
    const log_segment *seg = log__active(p);
    assert_int_equal(seg->n_idx, 2);
    assert_int_equal(seg->idx[0].rel, 6);
    assert_int_equal(seg->idx[0].pos, 300);
    assert_int_equal(seg->idx[1].rel, 12);
    assert_int_equal(seg->idx[1].pos, 600);
    assert_int_equal(seg->n_tidx, 2);
    assert_int_equal(seg->tidx[0].ts, 1020 + 10);  /* max of batches 0..3 */
    assert_int_equal(seg->tidx[0].rel, 6);
    assert_int_equal(seg->tidx[1].ts, 1500);
    assert_int_equal(seg->tidx[1].rel, 12);
    assert_int_equal(seg->max_ts, 1500);

    char path[512];
    size_t len = 0;
    seg_file(dir, 0, ".index", path, sizeof(path));
    uint8_t *b = file_read(path, &len);
    const uint8_t want[] = {0, 0, 0, 6, 0, 0, 1, 44, 0, 0, 0, 12, 0, 0, 2, 88};
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    free(b);
    seg_file(dir, 0, ".timeindex", path, sizeof(path));
    b = file_read(path, &len);
    assert_int_equal(len, 24);
    assert_int_equal((int64_t)be_get64(b), 1030);
    assert_int_equal(be_get32(b + 8), 6);
    assert_int_equal((int64_t)be_get64(b + 12), 1500);
    assert_int_equal(be_get32(b + 20), 12);
    free(b);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_index_lookup(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_partition *p = fill(dir, 1 << 20);
    const log_segment *seg = log__active(p);
    int64_t rel = -1;
    assert_int_equal(log__index_lookup(seg, 0, &rel), 0);
    assert_int_equal(rel, 0);
    assert_int_equal(log__index_lookup(seg, 5, &rel), 0);
    assert_int_equal(log__index_lookup(seg, 6, &rel), 300);
    assert_int_equal(rel, 6);
    assert_int_equal(log__index_lookup(seg, 11, &rel), 300);
    assert_int_equal(log__index_lookup(seg, 17, &rel), 600);
    assert_int_equal(rel, 12);
    assert_int_equal(log__tidx_lookup(seg, 1000), -1);
    assert_int_equal(log__tidx_lookup(seg, 1031), 6);
    assert_int_equal(log__tidx_lookup(seg, 1501), 12);
    /* Reads through the index land on batch boundaries. */
    for (int64_t off = 0; off < 18; off++) {
        log_slice s;
        assert_int_equal(log_read(p, off, 18, 1, &s), 0);
        assert_int_equal(s.pos, (off / 2) * 100);
        assert_int_equal(s.len, 100);
        log_slice_release(&s);
    }
    log_partition_close(p);
    tmpdir_remove(dir);
}

/* Two closed segments (0: offsets 0-17, 18: 18-26) and an active one (27). */
static log_partition *fill_segments(const char *dir)
{
    log_partition *p = fill(dir, 900);
    for (int i = 0; i < 9; i++)
        append_one(p, 100, 1, 2000 + i, 0);
    append_one(p, 100, 1, 3000, 0);
    assert_int_equal(p->n_segs, 3);
    assert_int_equal(log__active(p)->base, 27);
    assert_int_equal(log_partition_sync_now(p), 0);
    return p;
}

static void reopen_expect(const char *dir, int64_t base, const uint8_t *idx, size_t idx_len,
                          const uint8_t *tidx, size_t tidx_len)
{
    log_options o = test_opts();
    o.index_interval_bytes = 250;
    o.segment_bytes = 900;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_end_offset(p), 28);
    assert_int_equal(log_start_offset(p), 0);
    char path[512];
    size_t len = 0;
    seg_file(dir, base, ".index", path, sizeof(path));
    uint8_t *b = file_read(path, &len);
    assert_int_equal(len, idx_len);
    assert_memory_equal(b, idx, len);
    free(b);
    seg_file(dir, base, ".timeindex", path, sizeof(path));
    b = file_read(path, &len);
    assert_int_equal(len, tidx_len);
    assert_memory_equal(b, tidx, len);
    free(b);
    log_slice s;
    assert_int_equal(log_read(p, base + 7, 28, 1, &s), 0);
    uint8_t *got = slice_bytes(&s);
    int64_t got_base = (int64_t)be_get64(got);
    assert_true(got_base <= base + 7 && got_base + be_get32(got + BATCH_OFF_LAST_OFFSET_DELTA) >= base + 7);
    free(got);
    log_slice_release(&s);
    assert_int_equal(log_find_timestamp(p, 1500, &s), 0);
    got = slice_bytes(&s);
    assert_int_equal((int64_t)be_get64(got), 8);
    free(got);
    log_slice_release(&s);
    log_partition_close(p);
}

static void test_index_kept_missing_or_corrupt_rebuilt(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_partition *p = fill_segments(dir);
    log_partition_close(p);
    char ipath[512], tpath[512];
    uint8_t *idx[2], *tidx[2];
    size_t il[2], tl[2];
    int64_t bases[2] = {0, 18};
    for (int k = 0; k < 2; k++) {
        seg_file(dir, bases[k], ".index", ipath, sizeof(ipath));
        seg_file(dir, bases[k], ".timeindex", tpath, sizeof(tpath));
        idx[k] = file_read(ipath, &il[k]);
        tidx[k] = file_read(tpath, &tl[k]);
    }
    assert_int_equal(il[0], 16);
    assert_true(il[1] > 0);

    /* Valid: kept as is. */
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    /* Missing: rebuilt to the same bytes. */
    seg_file(dir, 0, ".index", ipath, sizeof(ipath));
    seg_file(dir, 18, ".timeindex", tpath, sizeof(tpath));
    unlink(ipath);
    unlink(tpath);
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    reopen_expect(dir, 18, idx[1], il[1], tidx[1], tl[1]);
    /* Not a whole number of entries. */
    file_append(ipath, "xyz", 3);
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    /* Position past the end of the .log; offsets not increasing. */
    file_poke(ipath, 5, 0x10);
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    file_poke(ipath, 11, 0x0a);
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    /* A valid-looking index that ends short of the .log: rebuilt. */
    assert_int_equal(truncate(ipath, 8), 0);
    {
        /* One entry pointing inside a batch: the tail scan from it fails. */
        uint8_t e[8] = {0, 0, 0, 6, 0, 0, 1, 45};
        int fd = open(ipath, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, e, 8, 0), 8);
        close(fd);
    }
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    /* Time index with decreasing timestamps. */
    seg_file(dir, 0, ".timeindex", tpath, sizeof(tpath));
    file_poke(tpath, 5, 0x01); /* entry 0 ts above entry 1 */
    reopen_expect(dir, 0, idx[0], il[0], tidx[0], tl[0]);
    for (int k = 0; k < 2; k++) {
        free(idx[k]);
        free(tidx[k]);
    }
    tmpdir_remove(dir);
}

static void test_orphan_index_files_removed(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_partition *p = fill(dir, 1 << 20);
    log_partition_close(p);
    char path[512];
    seg_file(dir, 777, ".index", path, sizeof(path));
    file_append(path, "12345678", 8);
    seg_file(dir, 777, ".timeindex", path, sizeof(path));
    file_append(path, "123456789012", 12);
    log_options o = test_opts();
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(file_size(path), -1);
    seg_file(dir, 777, ".index", path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    log_partition_close(p);
    tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_entries_and_encoding),
        cmocka_unit_test(test_index_lookup),
        cmocka_unit_test(test_index_kept_missing_or_corrupt_rebuilt),
        cmocka_unit_test(test_orphan_index_files_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
