/* Unit tests for the partition log (src/log): append/read round trips of
 * hand-built magic-2 batches, offset assignment, fetch slices (max_bytes,
 * KIP-74, max_offset, segment ends), rolling by size, retention by bytes and
 * time, timestamp lookup, group-commit syncs through a real syncer thread,
 * and DeleteRecords (log_delete_before), including across a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>

#include "log_test_util.h"
#include "util/common.h"

static void test_append_read_round_trip(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_end_offset(p), 0);
    log_set_leader_epoch(p, 7);

    uint8_t b[3][300];
    size_t lens[3] = {100, 300, 150};
    int32_t counts[3] = {1, 5, 2};
    int64_t bases[3];
    for (int i = 0; i < 3; i++) {
        make_batch(b[i], lens[i], counts[i], 1000 + i, (uint8_t)i);
        assert_int_equal(log_append(p, b[i], lens[i], 0, &bases[i]), 0);
    }
    assert_int_equal(bases[0], 0);
    assert_int_equal(bases[1], 1);
    assert_int_equal(bases[2], 6);
    assert_int_equal(log_end_offset(p), 8);
    assert_int_equal(log_size_bytes(p), 550);
    /* The caller's buffer got the base offset and epoch stamped. */
    assert_int_equal((int64_t)be_get64(b[2]), 6);
    assert_int_equal((int32_t)be_get32(b[2] + BATCH_OFF_LEADER_EPOCH), 7);

    log_slice s;
    assert_int_equal(log_read(p, 0, 8, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 0);
    assert_int_equal(s.len, 550);
    uint8_t *got = slice_bytes(&s);
    assert_memory_equal(got, b[0], 100);
    assert_memory_equal(got + 100, b[1], 300);
    assert_memory_equal(got + 400, b[2], 150);
    free(got);
    log_slice_release(&s);
    assert_null(s.file);

    /* An offset inside a batch starts at that batch. */
    assert_int_equal(log_read(p, 3, 8, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 100);
    assert_int_equal(s.len, 450);
    log_slice_release(&s);
    assert_int_equal(log_read(p, 7, 8, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 400);
    assert_int_equal(s.len, 150);
    log_slice_release(&s);

    /* At the end: empty; past it: out of range. */
    assert_int_equal(log_read(p, 8, 8, 1 << 20, &s), 0);
    assert_int_equal(s.len, 0);
    assert_null(s.file);
    assert_int_equal(log_read(p, 9, 9, 1 << 20, &s), -CN_ERANGE);
    assert_int_equal(log_read(p, -1, 8, 1 << 20, &s), -CN_ERANGE);

    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_read_respects_max_bytes_and_max_offset(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(append_one(p, 100, 1, 10, 0), i);
    log_slice s;
    assert_int_equal(log_read(p, 0, 4, 250, &s), 0);
    assert_int_equal(s.len, 200); /* whole batches only */
    log_slice_release(&s);
    assert_int_equal(log_read(p, 1, 4, 50, &s), 0);
    assert_int_equal(s.pos, 100);
    assert_int_equal(s.len, 100); /* KIP-74: first batch even if too big */
    log_slice_release(&s);
    assert_int_equal(log_read(p, 0, 2, 1 << 20, &s), 0);
    assert_int_equal(s.len, 200); /* stops before max_offset */
    log_slice_release(&s);
    assert_int_equal(log_read(p, 2, 2, 1 << 20, &s), 0);
    assert_int_equal(s.len, 0);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_rolls_by_size_and_reads_stop_at_segment_end(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 300;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(append_one(p, 100, 1, 10, 0), i);
    /* 3 batches per segment: bases 0, 3, 6, 9. */
    char path[512];
    int64_t bases[] = {0, 3, 6, 9};
    for (size_t i = 0; i < 4; i++) {
        seg_file(dir, bases[i], ".log", path, sizeof(path));
        assert_int_equal(file_size(path), i < 3 ? 300 : 100);
    }
    seg_file(dir, 12, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    log_slice s;
    assert_int_equal(log_read(p, 1, 10, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 100);
    assert_int_equal(s.len, 200);
    log_slice_release(&s);
    assert_int_equal(log_read(p, 3, 10, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 0);
    assert_int_equal(s.len, 300);
    uint8_t *got = slice_bytes(&s);
    assert_int_equal((int64_t)be_get64(got), 3);
    free(got);
    log_slice_release(&s);
    /* A first batch bigger than segment_bytes still goes in (new segment). */
    assert_int_equal(append_one(p, 1000, 1, 10, 0), 10);
    seg_file(dir, 10, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), 1000);
    assert_int_equal(log_size_bytes(p), 2000);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_roll_by_time(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_ms = 1000;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    append_one(p, 100, 1, 10, 5000);
    append_one(p, 100, 1, 10, 5900);
    assert_int_equal(append_one(p, 100, 1, 10, 6001), 2);
    char path[512];
    seg_file(dir, 2, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), 100);
    /* Retention also rolls an idle active segment past segment_ms. */
    assert_int_equal(log_enforce_retention(p, 8000), 0);
    seg_file(dir, 3, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), 0);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_retention_by_bytes_deletes_whole_segments(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 200;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    for (int i = 0; i < 7; i++)
        append_one(p, 100, 1, 10, 0); /* segments 0,2,4 full; 6 active */
    assert_int_equal(log_size_bytes(p), 700);
    o.retention_bytes = 300; /* keep while size - oldest >= 300 */
    log_partition_set_options(p, &o);
    log_slice held;
    assert_int_equal(log_read(p, 0, 7, 1 << 20, &held), 0); /* keeps fd alive */
    assert_int_equal(log_enforce_retention(p, 0), 2);
    assert_int_equal(log_start_offset(p), 4);
    assert_int_equal(log_size_bytes(p), 300);
    char path[512];
    seg_file(dir, 0, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    seg_file(dir, 2, ".index", path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    uint8_t *got = slice_bytes(&held); /* still readable after unlink */
    assert_int_equal((int64_t)be_get64(got + 100), 1);
    free(got);
    log_slice_release(&held);
    log_slice s;
    assert_int_equal(log_read(p, 3, 7, 1 << 20, &s), -CN_ERANGE);
    assert_int_equal(log_read(p, 4, 7, 1 << 20, &s), 0);
    assert_int_equal(s.len, 200);
    log_slice_release(&s);
    /* The active segment is never deleted. */
    o.retention_bytes = 0;
    log_partition_set_options(p, &o);
    assert_int_equal(log_enforce_retention(p, 0), 1);
    assert_int_equal(log_start_offset(p), 6);
    assert_int_equal(log_size_bytes(p), 100);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_retention_by_time_uses_max_timestamp(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 200;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    append_one(p, 100, 1, 1000, 0);
    append_one(p, 100, 1, 2000, 0); /* segment 0: max ts 2000 */
    append_one(p, 100, 1, 5000, 0);
    append_one(p, 100, 1, 3000, 0); /* segment 2: max ts 5000 */
    append_one(p, 100, 1, 9000, 0); /* active */
    o.retention_ms = 1000;
    log_partition_set_options(p, &o);
    assert_int_equal(log_enforce_retention(p, 3000), 0);
    assert_int_equal(log_enforce_retention(p, 3001), 1);
    assert_int_equal(log_start_offset(p), 2);
    assert_int_equal(log_enforce_retention(p, 6000), 0);
    assert_int_equal(log_enforce_retention(p, 6001), 1);
    assert_int_equal(log_start_offset(p), 4);
    assert_int_equal(log_enforce_retention(p, 1 << 30), 0); /* active stays */
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_find_timestamp(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 1000;
    o.index_interval_bytes = 150;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    /* 30 batches of 100 bytes, ts 100*i except a late one at i=12. */
    for (int i = 0; i < 30; i++)
        append_one(p, 100, 2, i == 12 ? 99999 : 100 * i, 0);
    log_slice s;
    assert_int_equal(log_find_timestamp(p, 0, &s), 0);
    assert_int_equal(s.pos, 0);
    assert_int_equal(s.len, 100);
    log_slice_release(&s);
    int64_t want[][2] = {{550, 12}, {1150, 24}, {2900, 24}, {1250, 24}, {1100, 22}, {99999, 24}};
    for (size_t k = 0; k < CN_ARRAY_LEN(want); k++) {
        assert_int_equal(log_find_timestamp(p, want[k][0], &s), 0);
        uint8_t *got = slice_bytes(&s);
        if ((int64_t)be_get64(got) != want[k][1])
            fail_msg("ts %lld: got offset %lld want %lld", (long long)want[k][0],
                     (long long)be_get64(got), (long long)want[k][1]);
        free(got);
        log_slice_release(&s);
    }
    assert_int_equal(log_find_timestamp(p, 100000, &s), -CN_ENOENT);
    assert_null(s.file);
    log_partition_close(p);
    tmpdir_remove(dir);
}

typedef struct cb_rec {
    int calls;
    int64_t last;
    int status;
    int close_in_cb;
} cb_rec;

static void on_durable(log_partition *p, int64_t durable, int status, void *arg)
{
    cb_rec *r = arg;
    r->calls++;
    r->last = durable;
    r->status = status;
    assert_int_equal(log_durable_offset(p), durable);
    if (r->close_in_cb)
        log_partition_close(p);
}

/* Poll the syncer and drain until cond (re-evaluated) holds or 5 s pass. */
#define WAIT_FOR(sy, cond)                                                      \
    do {                                                                        \
        for (int i_ = 0; i_ < 500 && !(cond); i_++) {                           \
            struct pollfd pfd_ = {.fd = log_syncer_fd(sy), .events = POLLIN};   \
            if (poll(&pfd_, 1, 10) > 0)                                         \
                log_syncer_drain(sy);                                           \
        }                                                                       \
        assert_true(cond);                                                      \
    } while (0)

static void file_done(void *arg, int status)
{
    *(int *)arg = status == 0 ? 1 : -1;
}

/* log_syncer_stats: one duration per job that ran (partition and file
 * jobs), group-commit bytes and offsets per partition job that carried
 * appends; jobs discarded unrun count nothing. Manual syncer: deterministic. */
static void test_syncer_stats_count_jobs_and_group_commit_sizes(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    log_syncer *sy = NULL;
    assert_int_equal(log_syncer_new_manual(&sy), 0);
    const log_sync_stats *st = log_syncer_stats(sy);
    assert_int_equal(st->duration.count, 0);
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, sy, &p), 0);

    append_one(p, 100, 2, 1, 0);
    append_one(p, 100, 2, 1, 0);
    append_one(p, 100, 2, 1, 0);
    log_sync_request(p);
    assert_int_equal(log_syncer_pending(sy), 1);
    assert_int_equal(log_syncer_run(sy, 0), 0);
    log_syncer_drain(sy);
    assert_int_equal(log_durable_offset(p), 6);
    assert_int_equal(st->duration.count, 1);
    assert_true(st->duration.sum > 0);
    assert_int_equal(st->bytes.count, 1);
    assert_int_equal(st->bytes.sum, 300);
    assert_int_equal(st->bytes.buckets[1], 1);      /* 256 < 300 <= 1024 */
    assert_int_equal(st->records.count, 1);
    assert_int_equal(st->records.sum, 6);

    /* Nothing new: no job, nothing counted. */
    log_sync_request(p);
    assert_int_equal(log_syncer_pending(sy), 0);

    /* The next job covers only what came after the first. */
    append_one(p, 100, 1, 1, 0);
    log_sync_request(p);
    assert_int_equal(log_syncer_run(sy, 0), 0);
    log_syncer_drain(sy);
    assert_int_equal(st->duration.count, 2);
    assert_int_equal(st->bytes.count, 2);
    assert_int_equal(st->bytes.sum, 400);
    assert_int_equal(st->records.sum, 7);
    assert_int_equal(st->records.buckets[0], 1);    /* one record: le=1 */

    /* A file job counts a duration, no group-commit size. */
    int done = 0;
    assert_int_equal(log_syncer_fdatasync(sy, p->dir_fd, file_done, &done), 0);
    assert_int_equal(log_syncer_run(sy, 0), 0);
    log_syncer_drain(sy);
    assert_int_equal(done, 1);
    assert_int_equal(st->duration.count, 3);
    assert_int_equal(st->bytes.count, 2);

    /* Discarded unrun (a simulated crash): not counted. */
    done = 0;
    assert_int_equal(log_syncer_fdatasync(sy, p->dir_fd, file_done, &done), 0);
    log_partition_close(p);
    log_syncer_discard(sy);
    assert_int_equal(done, -1);
    assert_int_equal(st->duration.count, 3);
    uint64_t total = 0;
    for (int i = 0; i <= st->duration.spec->n_bounds; i++)
        total += st->duration.buckets[i];
    assert_int_equal(total, 3);
    log_syncer_free(sy);
    tmpdir_remove(dir);
}

static void test_sync_request_through_syncer(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 250;
    log_syncer *sy = NULL;
    assert_int_equal(log_syncer_new(&sy, 2), 0);
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, sy, &p), 0);
    cb_rec r = {0};
    log_partition_set_durable_cb(p, on_durable, &r);
    assert_int_equal(log_durable_offset(p), 0);

    append_one(p, 100, 3, 1, 0);
    log_sync_request(p);
    assert_int_equal(log_durable_offset(p), 0); /* never synchronous */
    WAIT_FOR(sy, r.calls == 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.last, 3);

    /* Group commit: requests while one is in flight coalesce into one more. */
    append_one(p, 100, 1, 1, 0);
    log_sync_request(p);
    append_one(p, 100, 1, 1, 0); /* rolls */
    log_sync_request(p);
    append_one(p, 100, 1, 1, 0);
    log_sync_request(p);
    WAIT_FOR(sy, log_durable_offset(p) == 6);
    assert_true(r.calls == 2 || r.calls == 3);
    assert_int_equal(r.last, 6);
    assert_int_equal(r.status, 0);

    /* Nothing unsynced: no job, no callback. */
    int calls = r.calls;
    log_sync_request(p);
    log_syncer_drain(sy);
    assert_int_equal(r.calls, calls);

    /* Closed while in flight: freed when the job completes (ASan checks). */
    append_one(p, 100, 1, 1, 0);
    log_sync_request(p);
    log_partition_close(p);
    log_syncer_free(sy);
    assert_int_equal(r.calls, calls); /* no callback for a closed partition */

    /* Everything synced is there after reopen. */
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_end_offset(p), 7);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_sync_inline_and_close_in_callback(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    cb_rec r = {0};
    log_partition_set_durable_cb(p, on_durable, &r);
    append_one(p, 100, 2, 1, 0);
    log_sync_request(p); /* NULL syncer: inline */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, 2);
    assert_int_equal(log_durable_offset(p), 2);
    append_one(p, 100, 2, 1, 0);
    assert_int_equal(log_partition_sync_now(p), 0);
    assert_int_equal(log_durable_offset(p), 4);
    assert_int_equal(r.calls, 1);

    log_syncer *sy = NULL;
    assert_int_equal(log_syncer_new(&sy, 2), 0);
    log_partition *q = NULL;
    assert_int_equal(log_partition_open(dir, &o, sy, &q), 0);
    log_partition_close(p); /* q reopened the same files; p's fds are its own */
    cb_rec rq = {.close_in_cb = 1};
    log_partition_set_durable_cb(q, on_durable, &rq);
    append_one(q, 100, 1, 1, 0);
    log_sync_request(q);
    WAIT_FOR(sy, rq.calls == 1);
    assert_int_equal(rq.last, 5);
    log_syncer_free(sy);
    tmpdir_remove(dir);
}

static void test_delete_before(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 200;
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    for (int i = 0; i < 7; i++)
        append_one(p, 100, 1, 10, 0); /* segments 0, 2, 4, active 6 */
    log_set_high_watermark(p, 5);
    assert_int_equal(log_delete_before(p, 6), -CN_ERANGE); /* above HW */
    assert_int_equal(log_delete_before(p, -1), -CN_ERANGE);
    assert_int_equal(log_delete_before(p, 3), 0);
    assert_int_equal(log_start_offset(p), 3);
    assert_int_equal(log_size_bytes(p), 500);
    char path[512];
    seg_file(dir, 0, ".log", path, sizeof(path));
    assert_int_equal(file_size(path), -1);
    log_slice s;
    assert_int_equal(log_read(p, 2, 7, 1 << 20, &s), -CN_ERANGE);
    assert_int_equal(log_read(p, 3, 7, 1 << 20, &s), 0);
    assert_int_equal(s.pos, 100);
    log_slice_release(&s);
    assert_int_equal(log_delete_before(p, 2), 0); /* below start: no-op */
    assert_int_equal(log_start_offset(p), 3);

    /* Survives a reopen once synced. */
    assert_int_equal(log_partition_sync_now(p), 0);
    log_partition_close(p);
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_start_offset(p), 3);
    assert_int_equal(log_end_offset(p), 7);
    assert_int_equal(log_read(p, 2, 7, 1 << 20, &s), -CN_ERANGE);

    /* Up to log_end: the active segment rolls so every old one goes. */
    log_set_high_watermark(p, 7);
    assert_int_equal(log_delete_before(p, 7), 0);
    assert_int_equal(log_start_offset(p), 7);
    assert_int_equal(log_size_bytes(p), 0);
    assert_int_equal(append_one(p, 100, 1, 10, 0), 7);
    assert_int_equal(log_partition_sync_now(p), 0);
    log_partition_close(p);
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_start_offset(p), 7);
    assert_int_equal(log_end_offset(p), 8);
    log_partition_close(p);
    tmpdir_remove(dir);
}

/* log_start_durable follows log_delete_before only once a sync covering the
 * log-start file completed: never synchronously through the syncer, not by
 * a job built before the move, and at once when there is nothing to sync. */
static void test_delete_before_start_durable(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    o.segment_bytes = 200;
    log_syncer *sy = NULL;
    assert_int_equal(log_syncer_new(&sy, 2), 0);
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, sy, &p), 0);
    for (int i = 0; i < 5; i++)
        append_one(p, 100, 1, 10, 0);
    log_set_high_watermark(p, 5);
    assert_int_equal(log_start_durable(p), 0);
    log_sync_request(p); /* a job built before the move: start_target 0 */
    assert_int_equal(log_delete_before(p, 3), 0);
    assert_int_equal(log_start_offset(p), 3);
    assert_int_equal(log_start_durable(p), 0);
    log_sync_request(p); /* rides after the one in flight */
    WAIT_FOR(sy, log_start_durable(p) == 3);
    assert_int_equal(log_durable_offset(p), 5);

    /* A no-op move needs no sync; nothing unsynced keeps it as it is. */
    assert_int_equal(log_delete_before(p, 2), 0);
    log_sync_request(p);
    assert_int_equal(log_start_durable(p), 3);

    /* Blocking sync covers it too. */
    assert_int_equal(log_delete_before(p, 4), 0);
    assert_int_equal(log_start_durable(p), 3);
    assert_int_equal(log_partition_sync_now(p), 0);
    assert_int_equal(log_start_durable(p), 4);
    log_partition_close(p);
    log_syncer_free(sy);

    /* Reopen: the recovered start is durable (open syncs). */
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    assert_int_equal(log_start_offset(p), 4);
    assert_int_equal(log_start_durable(p), 4);
    /* NULL syncer: the sync runs inline. */
    assert_int_equal(log_delete_before(p, 5), 0);
    assert_int_equal(log_start_durable(p), 4);
    log_sync_request(p);
    assert_int_equal(log_start_durable(p), 5);
    log_partition_close(p);
    tmpdir_remove(dir);
}

static void test_destroy_removes_directory(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    log_options o = test_opts();
    log_partition *p = NULL;
    assert_int_equal(log_partition_open(dir, &o, NULL, &p), 0);
    append_one(p, 100, 1, 10, 0);
    log_partition_destroy(p);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_round_trip),
        cmocka_unit_test(test_read_respects_max_bytes_and_max_offset),
        cmocka_unit_test(test_rolls_by_size_and_reads_stop_at_segment_end),
        cmocka_unit_test(test_roll_by_time),
        cmocka_unit_test(test_retention_by_bytes_deletes_whole_segments),
        cmocka_unit_test(test_retention_by_time_uses_max_timestamp),
        cmocka_unit_test(test_find_timestamp),
        cmocka_unit_test(test_sync_request_through_syncer),
        cmocka_unit_test(test_sync_inline_and_close_in_callback),
        cmocka_unit_test(test_delete_before),
        cmocka_unit_test(test_delete_before_start_durable),
        cmocka_unit_test(test_destroy_removes_directory),
        cmocka_unit_test(test_syncer_stats_count_jobs_and_group_commit_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
