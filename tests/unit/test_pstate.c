/* Unit tests for broker/pstate: idempotent duplicate detection over the last
 * 5 batches, epoch and sequence checks (with wrap-around), open transactions
 * and the LSO, the aborted-transaction index, control-marker build/parse, the
 * snapshot file (round trip, damaged, stale, past the log end), and the same
 * state kept by a real broker across a clean reopen and rebuilt by replay
 * after a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/pstate.h"
#include "record/batch.h"
#include "net/loop.h"
#include "proto/kafka/kerr.h"
#include "util/common.h"
#include "util/crc32c.h"

/* Helpers ------------------------------------------------------------------ */

/* Header of a data batch of n records from pid/epoch starting at seq. */
static batch_info data_bi(int64_t pid, int16_t epoch, int32_t seq, int n, int txn)
{
    batch_info bi;
    memset(&bi, 0, sizeof(bi));
    bi.magic = 2;
    bi.producer_id = pid;
    bi.producer_epoch = epoch;
    bi.base_sequence = seq;
    bi.last_offset_delta = n - 1;
    bi.record_count = n;
    bi.max_timestamp = 1000;
    bi.transactional = txn;
    return bi;
}

static batch_info marker_bi(int64_t pid, int16_t epoch)
{
    batch_info bi = data_bi(pid, epoch, -1, 1, 1);
    bi.control = 1;
    return bi;
}

static int check(pst_table *t, int64_t pid, int16_t epoch, int32_t seq, int n, pst_batch *dup)
{
    batch_info bi = data_bi(pid, epoch, seq, n, 0);
    return pst_check(t, &bi, dup);
}

/* Check and, if accepted, record at base. Returns pst_check's answer. */
static int put(pst_table *t, int64_t pid, int16_t epoch, int32_t seq, int n, int txn,
               int64_t base)
{
    batch_info bi = data_bi(pid, epoch, seq, n, txn);
    pst_batch dup;
    int rc = pst_check(t, &bi, &dup);
    if (rc == 0)
        pst_update(t, &bi, base, -1, -1);
    return rc;
}

static void mark(pst_table *t, int64_t pid, int16_t epoch, int commit, int32_t cepoch,
                 int64_t off)
{
    batch_info bi = marker_bi(pid, epoch);
    pst_update(t, &bi, off, commit, cepoch);
}

typedef struct collected {
    pst_aborted a[16];
    int n;
} collected;

static void collect(void *arg, const pst_aborted *a)
{
    collected *c = arg;
    if (c->n < 16)
        c->a[c->n++] = *a;
}

/* 1 if c holds (pid, first, last). */
static int has_range(const collected *c, int64_t pid, int64_t first, int64_t last)
{
    for (int i = 0; i < c->n; i++)
        if (c->a[i].pid == pid && c->a[i].first_offset == first && c->a[i].last_offset == last)
            return 1;
    return 0;
}

static int aborted_count(const pst_table *t, int64_t from, int64_t to, collected *c)
{
    memset(c, 0, sizeof(*c));
    int n = pst_aborted_in(t, from, to, collect, c);
    assert_int_equal(n, c->n);
    return n;
}

static void make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/cairn-test-pstate-XXXXXX");
    assert_non_null(mkdtemp(dir));
}


static void snap_path(const char *dir, char *out, size_t len)
{
    snprintf(out, len, "%s/producer.snapshot", dir);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Idempotence ---------------------------------------------------------------- */

static void test_unknown_producer_any_sequence(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    assert_int_equal(check(t, 7, 0, 0, 1, &dup), KERR_NONE);
    assert_int_equal(check(t, 7, 3, 12345, 1, &dup), KERR_NONE);
    assert_int_equal(put(t, 7, 3, 12345, 2, 0, 0), KERR_NONE);
    assert_int_equal(pst_count(t), 1);
    const pst_producer *p = pst_get(t, 7);
    assert_non_null(p);
    assert_int_equal(p->epoch, 3);
    assert_int_equal(p->n_batches, 1);
    /* Known now: the next batch must follow 12346. */
    assert_int_equal(check(t, 7, 3, 12347, 1, &dup), KERR_NONE);
    assert_int_equal(check(t, 7, 3, 12348, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(t, 7, 3, 0, 1, &dup), -CN_ESEQUENCE);
    assert_null(pst_get(t, 8));
    pst_free(t);
    pst_free(NULL);
}

static void test_in_sequence_and_gap(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    int64_t off = 0;
    for (int i = 0; i < 10; i++, off += 3)
        assert_int_equal(put(t, 1, 0, i * 3, 3, 0, off), KERR_NONE);
    /* Next expected is 30: 31 (gap) and 29 (overlap, not a stored batch) fail. */
    assert_int_equal(check(t, 1, 0, 31, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(t, 1, 0, 29, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(t, 1, 0, 30, 1, &dup), KERR_NONE);
    pst_free(t);
}

static void test_duplicates_of_last_five(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    /* Six batches of 2 records at offsets 100, 102, ... (seq 0..11). */
    for (int i = 0; i < 6; i++)
        assert_int_equal(put(t, 5, 2, i * 2, 2, 0, 100 + i * 2), KERR_NONE);
    const pst_producer *p = pst_get(t, 5);
    assert_int_equal(p->n_batches, PST_BATCHES);
    /* Batches 1..5 (seq 2..11) are remembered, with their original offsets. */
    for (int i = 1; i < 6; i++) {
        memset(&dup, 0, sizeof(dup));
        assert_int_equal(check(t, 5, 2, i * 2, 2, &dup), 1);
        assert_int_equal(dup.first_seq, i * 2);
        assert_int_equal(dup.last_seq, i * 2 + 1);
        assert_int_equal(dup.first_offset, 100 + i * 2);
        assert_int_equal(dup.last_offset, 100 + i * 2 + 1);
    }
    /* The 6th-oldest (seq 0..1) has been dropped: out of order now. */
    assert_int_equal(check(t, 5, 2, 0, 2, &dup), -CN_ESEQUENCE);
    /* Same first seq, different last seq: not a duplicate. */
    assert_int_equal(check(t, 5, 2, 10, 1, &dup), -CN_ESEQUENCE);
    /* Same sequences under another epoch: not a duplicate. */
    assert_int_equal(check(t, 5, 1, 10, 2, &dup), -CN_EEPOCH);
    assert_int_equal(check(t, 5, 3, 10, 2, &dup), -CN_ESEQUENCE);
    pst_free(t);
}

static void test_epochs(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    assert_int_equal(put(t, 9, 4, 0, 5, 0, 0), KERR_NONE);
    assert_int_equal(check(t, 9, 3, 5, 1, &dup), -CN_EEPOCH);
    assert_int_equal(check(t, 9, 3, 0, 1, &dup), -CN_EEPOCH);
    /* A newer epoch must start at 0. */
    assert_int_equal(check(t, 9, 5, 5, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(t, 9, 5, 1, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(put(t, 9, 5, 0, 2, 0, 5), KERR_NONE);
    const pst_producer *p = pst_get(t, 9);
    assert_int_equal(p->epoch, 5);
    assert_int_equal(p->n_batches, 1); /* the old epoch's batches are gone */
    assert_int_equal(check(t, 9, 5, 2, 1, &dup), KERR_NONE);
    assert_int_equal(check(t, 9, 4, 0, 5, &dup), -CN_EEPOCH);
    pst_free(t);
}

static void test_sequence_wrap(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    /* Records INT32_MAX-2 .. INT32_MAX: last seq is INT32_MAX, next is 0. */
    assert_int_equal(put(t, 3, 0, INT32_MAX - 2, 3, 0, 0), KERR_NONE);
    assert_int_equal(check(t, 3, 0, 1, 1, &dup), -CN_ESEQUENCE);
    assert_int_equal(put(t, 3, 0, 0, 2, 0, 3), KERR_NONE);
    assert_int_equal(check(t, 3, 0, 2, 1, &dup), KERR_NONE);
    /* A batch that itself wraps: INT32_MAX-1 with 4 records ends at seq 1. */
    pst_table *u = pst_new();
    assert_int_equal(put(u, 3, 0, INT32_MAX - 1, 4, 0, 0), KERR_NONE);
    const pst_producer *p = pst_get(u, 3);
    assert_int_equal(p->batches[p->head].last_seq, 1);
    assert_int_equal(check(u, 3, 0, 2, 1, &dup), KERR_NONE);
    assert_int_equal(check(u, 3, 0, INT32_MAX - 1, 4, &dup), 1);
    assert_int_equal(dup.first_offset, 0);
    assert_int_equal(dup.last_offset, 3);
    pst_free(u);
    pst_free(t);
}

static void test_many_producers(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    pst_batch dup;
    for (int64_t pid = 0; pid < 500; pid++)
        assert_int_equal(put(t, pid * 1000003, 0, 0, 1, 0, pid), KERR_NONE);
    assert_int_equal(pst_count(t), 500);
    for (int64_t pid = 0; pid < 500; pid++) {
        assert_int_equal(check(t, pid * 1000003, 0, 0, 1, &dup), 1);
        assert_int_equal(dup.first_offset, pid);
    }
    pst_free(t);
}

/* Transactions ------------------------------------------------------------------ */

static void test_txn_open_commit_abort(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    collected c;
    assert_int_equal(pst_first_unstable(t), -1);
    /* A non-transactional idempotent batch opens nothing. */
    assert_int_equal(put(t, 1, 0, 0, 2, 0, 0), KERR_NONE);
    assert_int_equal(pst_first_unstable(t), -1);
    assert_false(pst_txn_open(t, 1));
    /* Transactional batches at 2 and 5: the txn opens at 2 and stays there. */
    assert_int_equal(put(t, 1, 0, 2, 3, 1, 2), KERR_NONE);
    assert_int_equal(pst_first_unstable(t), 2);
    assert_true(pst_txn_open(t, 1));
    assert_int_equal(pst_get(t, 1)->txn_first_offset, 2);
    assert_int_equal(put(t, 1, 0, 5, 1, 1, 5), KERR_NONE);
    assert_int_equal(pst_first_unstable(t), 2);
    /* COMMIT at 6 closes it, no aborted range. */
    mark(t, 1, 0, 1, 7, 6);
    assert_int_equal(pst_first_unstable(t), -1);
    assert_false(pst_txn_open(t, 1));
    assert_int_equal(pst_get(t, 1)->coordinator_epoch, 7);
    assert_int_equal(aborted_count(t, 0, 100, &c), 0);
    /* The marker does not disturb the sequence: 6 follows. */
    pst_batch dup;
    assert_int_equal(check(t, 1, 0, 6, 1, &dup), KERR_NONE);
    /* Next txn at 7..8, ABORT at 9: range (1, 7, 9). */
    assert_int_equal(put(t, 1, 0, 6, 2, 1, 7), KERR_NONE);
    assert_int_equal(pst_first_unstable(t), 7);
    mark(t, 1, 0, 0, 8, 9);
    assert_int_equal(pst_first_unstable(t), -1);
    assert_int_equal(pst_get(t, 1)->coordinator_epoch, 8);
    assert_int_equal(aborted_count(t, 0, 100, &c), 1);
    assert_true(has_range(&c, 1, 7, 9));
    /* A marker with nothing open adds nothing. */
    mark(t, 1, 0, 0, 8, 10);
    assert_int_equal(aborted_count(t, 0, 100, &c), 1);
    pst_free(t);
}

static void test_aborted_windows(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    collected c;
    /* Aborted: A=(1, 10, 20), B=(2, 15, 30), C=(1, 40, 45). B opens inside A
     * and ends after it; ranges are kept in marker order. */
    put(t, 1, 0, 0, 1, 1, 10);
    put(t, 2, 0, 0, 1, 1, 15);
    mark(t, 1, 0, 0, 0, 20);
    mark(t, 2, 0, 0, 0, 30);
    put(t, 1, 0, 1, 1, 1, 40);
    mark(t, 1, 0, 0, 0, 45);
    assert_int_equal(aborted_count(t, 0, 100, &c), 3);
    assert_true(has_range(&c, 1, 10, 20));
    assert_true(has_range(&c, 2, 15, 30));
    assert_true(has_range(&c, 1, 40, 45));
    assert_int_equal(aborted_count(t, 0, 10, &c), 0);   /* ends before A starts */
    assert_int_equal(aborted_count(t, 0, 11, &c), 1);
    assert_true(has_range(&c, 1, 10, 20));
    assert_int_equal(aborted_count(t, 20, 21, &c), 2);  /* A's marker and B */
    assert_true(has_range(&c, 1, 10, 20));
    assert_true(has_range(&c, 2, 15, 30));
    assert_int_equal(aborted_count(t, 21, 40, &c), 1);
    assert_true(has_range(&c, 2, 15, 30));
    assert_int_equal(aborted_count(t, 31, 40, &c), 0);
    assert_int_equal(aborted_count(t, 31, 41, &c), 1);
    assert_true(has_range(&c, 1, 40, 45));
    assert_int_equal(aborted_count(t, 46, 1000, &c), 0);
    assert_int_equal(pst_aborted_in(t, 0, 100, NULL, NULL), 3);
    /* Retention: drop ranges that end before the log start. */
    pst_truncate_head(t, 20);
    assert_int_equal(aborted_count(t, 0, 100, &c), 3);  /* A ends at 20: kept */
    pst_truncate_head(t, 21);
    assert_int_equal(aborted_count(t, 0, 100, &c), 2);
    assert_false(has_range(&c, 1, 10, 20));
    pst_truncate_head(t, 44);
    assert_int_equal(aborted_count(t, 0, 100, &c), 1);
    assert_true(has_range(&c, 1, 40, 45));
    pst_truncate_head(t, 1000);
    assert_int_equal(aborted_count(t, 0, 1000, &c), 0);
    pst_free(t);
}

/* Ranges come back in marker (last offset) order, which is how they are
 * kept; clients sort them by first offset themselves (NOTES.md §11.3). */
static void test_aborted_marker_order(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    collected c;
    put(t, 1, 0, 0, 1, 1, 10);
    put(t, 2, 0, 0, 1, 1, 11);
    mark(t, 2, 0, 0, 0, 12);
    mark(t, 1, 0, 0, 0, 13);
    assert_int_equal(aborted_count(t, 0, 100, &c), 2);
    assert_int_equal(c.a[0].pid, 2);
    assert_int_equal(c.a[0].last_offset, 12);
    assert_int_equal(c.a[1].pid, 1);
    assert_int_equal(c.a[1].last_offset, 13);
    assert_int_equal(aborted_count(t, 13, 14, &c), 1);
    assert_true(has_range(&c, 1, 10, 13));
    pst_free(t);
}

static void test_interleaved_txns_lso(void **state)
{
    (void)state;
    pst_table *t = pst_new();
    collected c;
    put(t, 10, 0, 0, 1, 1, 0);   /* A opens at 0 */
    put(t, 20, 0, 0, 1, 1, 1);   /* B opens at 1 */
    put(t, 10, 0, 1, 1, 1, 2);
    put(t, 20, 0, 1, 1, 1, 3);
    assert_int_equal(pst_first_unstable(t), 0);
    mark(t, 20, 0, 1, 0, 4);     /* B commits: A still holds the LSO */
    assert_int_equal(pst_first_unstable(t), 0);
    put(t, 20, 0, 2, 1, 1, 5);   /* B opens again at 5 */
    assert_int_equal(pst_first_unstable(t), 0);
    mark(t, 10, 0, 0, 0, 6);     /* A aborts: B's 5 is now the oldest */
    assert_int_equal(pst_first_unstable(t), 5);
    assert_int_equal(aborted_count(t, 0, 10, &c), 1);
    assert_true(has_range(&c, 10, 0, 6));
    mark(t, 20, 0, 1, 0, 7);
    assert_int_equal(pst_first_unstable(t), -1);
    pst_free(t);
}

/* Control markers ------------------------------------------------------------------ */

static int one_record(const batch_record *r, void *arg)
{
    void **a = arg;
    *(batch_record *)a[0] = *r;
    (*(int *)a[1])++;
    return 0;
}

static void test_marker_build_parse(void **state)
{
    (void)state;
    for (int commit = 0; commit < 2; commit++) {
        uint8_t buf[BATCH_MARKER_SIZE];
        memset(buf, 0xee, sizeof(buf));
        size_t len = batch_marker_build(buf, 0x123456789abcLL, 321, commit, 77, 1700000000123LL);
        assert_true(len > BATCH_HEADER_SIZE);
        assert_true(len <= BATCH_MARKER_SIZE);
        batch_info bi;
        assert_int_equal(batch_parse_header(buf, len, &bi), 0);
        assert_int_equal(bi.magic, 2);
        assert_int_equal((size_t)bi.batch_length + 12, len);
        assert_int_equal(bi.crc, crc32c(0, buf + 21, len - 21));
        assert_int_equal(bi.control, 1);
        assert_int_equal(bi.transactional, 1);
        assert_int_equal(bi.compression, 0);
        assert_int_equal(bi.producer_id, 0x123456789abcLL);
        assert_int_equal(bi.producer_epoch, 321);
        assert_int_equal(bi.base_sequence, -1);
        assert_int_equal(bi.record_count, 1);
        assert_int_equal(bi.last_offset_delta, 0);
        assert_int_equal(bi.base_timestamp, 1700000000123LL);
        assert_int_equal(bi.max_timestamp, 1700000000123LL);
        int type = 9;
        int32_t cepoch = 9;
        assert_int_equal(batch_marker_parse(buf, len, &type, &cepoch), 0);
        assert_int_equal(type, commit);
        assert_int_equal(cepoch, 77);
        /* batch_foreach sees exactly one record: key 4 bytes, value 6 bytes. */
        batch_scratch *s = batch_scratch_new();
        batch_record rec;
        memset(&rec, 0, sizeof(rec));
        int n = 0;
        void *arg[2] = {&rec, &n};
        assert_int_equal(batch_foreach(buf, len, s, one_record, arg), 0);
        batch_scratch_free(s);
        assert_int_equal(n, 1);
        assert_int_equal(rec.key_len, 4);
        assert_int_equal(rec.value_len, 6);
        /* Truncated: parse fails cleanly. */
        assert_int_equal(batch_marker_parse(buf, BATCH_HEADER_SIZE, &type, &cepoch), -CN_ECORRUPT);
        assert_int_equal(batch_marker_parse(buf, BATCH_HEADER_SIZE + 4, &type, &cepoch), -CN_ECORRUPT);
    }
    /* A large coordinator epoch and negative one survive too. */
    uint8_t buf[BATCH_MARKER_SIZE];
    int type;
    int32_t cepoch;
    size_t len = batch_marker_build(buf, 1, 0, 1, INT32_MAX, 0);
    assert_int_equal(batch_marker_parse(buf, len, &type, &cepoch), 0);
    assert_int_equal(cepoch, INT32_MAX);
}

/* Snapshot ------------------------------------------------------------------------ */

/* 100 producers (pid p: epoch p % 3, 1 + p % 8 batches of 2 records) at
 * offsets 0..883; aborted ranges (200, 884, 885) and (201, 886, 887); open
 * transactions of pid 7 at 888 and pid 8 at 889. Log end 890. */
static void fill_table(pst_table *t)
{
    int64_t off = 0;
    for (int64_t pid = 0; pid < 100; pid++)
        for (int b = 0; b < 1 + pid % 8; b++, off += 2)
            assert_int_equal(put(t, pid, (int16_t)(pid % 3), b * 2, 2, 0, off), KERR_NONE);
    assert_int_equal(off, 884);
    assert_int_equal(put(t, 200, 1, 0, 1, 1, 884), KERR_NONE);
    mark(t, 200, 1, 0, 5, 885);
    assert_int_equal(put(t, 201, 1, 0, 1, 1, 886), KERR_NONE);
    mark(t, 201, 1, 0, 6, 887);
    assert_int_equal(put(t, 7, 1, 16, 1, 1, 888), KERR_NONE);
    assert_int_equal(put(t, 8, 2, 2, 1, 1, 889), KERR_NONE);
    assert_int_equal(pst_first_unstable(t), 888);
}

static void assert_tables_equal(const pst_table *a, const pst_table *b)
{
    assert_int_equal(pst_count(a), pst_count(b));
    assert_int_equal(pst_first_unstable(a), pst_first_unstable(b));
    for (int64_t pid = 0; pid < 300; pid++) {
        const pst_producer *x = pst_get(a, pid), *y = pst_get(b, pid);
        if (!x) {
            assert_null(y);
            continue;
        }
        assert_non_null(y);
        assert_int_equal(x->epoch, y->epoch);
        assert_int_equal(x->coordinator_epoch, y->coordinator_epoch);
        assert_int_equal(x->txn_first_offset, y->txn_first_offset);
        assert_int_equal(x->last_timestamp, y->last_timestamp);
        assert_int_equal(x->n_batches, y->n_batches);
        for (int i = 0; i < x->n_batches; i++) {
            const pst_batch *p = &x->batches[(x->head + i) % PST_BATCHES];
            const pst_batch *q = &y->batches[(y->head + i) % PST_BATCHES];
            assert_int_equal(p->first_seq, q->first_seq);
            assert_int_equal(p->last_seq, q->last_seq);
            assert_int_equal(p->first_offset, q->first_offset);
            assert_int_equal(p->last_offset, q->last_offset);
            assert_int_equal(p->timestamp, q->timestamp);
        }
        assert_int_equal(pst_txn_open(a, pid), pst_txn_open(b, pid));
    }
    collected ca, cb;
    int n = aborted_count(a, 0, INT64_MAX, &ca);
    assert_int_equal(aborted_count(b, 0, INT64_MAX, &cb), n);
    for (int i = 0; i < n; i++)
        assert_true(has_range(&cb, ca.a[i].pid, ca.a[i].first_offset, ca.a[i].last_offset));
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    pst_table *t = pst_new(), *u = pst_new();
    /* No snapshot: 0, empty. */
    assert_int_equal(pst_snapshot_load(u, dir, 0, 100), 0);
    assert_int_equal(pst_count(u), 0);
    fill_table(t);
    assert_int_equal(pst_snapshot_write(t, dir, 900), 0);
    put(u, 999, 0, 0, 1, 1, 0); /* loading replaces what was there */
    assert_int_equal(pst_snapshot_load(u, dir, 0, 900), 900);
    assert_tables_equal(t, u);
    assert_int_equal(pst_first_unstable(u), 888);
    assert_true(pst_txn_open(u, 8));
    /* The ring keeps working after a load: duplicates and the next sequence. */
    pst_batch dup;
    const pst_producer *p = pst_get(t, 23); /* 8 batches, 5 remembered */
    assert_int_equal(p->n_batches, 5);
    assert_int_equal(check(u, 23, 23 % 3, 6, 2, &dup), 1);
    assert_int_equal(check(u, 23, 23 % 3, 4, 2, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(u, 23, 23 % 3, 16, 2, &dup), KERR_NONE);
    assert_int_equal(put(u, 23, 23 % 3, 16, 2, 0, 950), KERR_NONE);
    assert_int_equal(check(u, 23, 23 % 3, 6, 2, &dup), -CN_ESEQUENCE);
    assert_int_equal(check(u, 23, 23 % 3, 8, 2, &dup), 1);
    /* Aborted ranges that end before the log start are dropped; a snapshot
     * older than the log start is replayed from the log start. */
    collected c;
    assert_int_equal(aborted_count(u, 0, INT64_MAX, &c), 2);
    assert_int_equal(pst_snapshot_load(u, dir, 886, 1000), 900);
    assert_int_equal(aborted_count(u, 0, INT64_MAX, &c), 1);
    assert_true(has_range(&c, 201, 886, 887));
    assert_int_equal(pst_snapshot_write(t, dir, 850), 0);
    assert_int_equal(pst_snapshot_load(u, dir, 886, 1000), 886);
    assert_int_equal(pst_first_unstable(u), 888);
    /* Empty table round trip. */
    pst_table *e = pst_new();
    assert_int_equal(pst_snapshot_write(e, dir, 3), 0);
    assert_int_equal(pst_snapshot_load(u, dir, 0, 3), 3);
    assert_int_equal(pst_count(u), 0);
    assert_int_equal(pst_first_unstable(u), -1);
    pst_free(e);
    pst_free(t);
    pst_free(u);
    but_rm_rf(dir);
}

static void test_snapshot_damaged_ignored(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    snap_path(dir, path, sizeof(path));
    pst_table *t = pst_new(), *u = pst_new();
    fill_table(t);
    assert_int_equal(pst_snapshot_write(t, dir, 500), 0);
    size_t len;
    uint8_t *good = read_all(path, &len);
    uint8_t *bad = malloc(len);
    /* Every single flipped byte is detected. */
    for (size_t i = 0; i < len; i += (i < 64 ? 1 : 97)) {
        memcpy(bad, good, len);
        bad[i] ^= 0x40;
        write_all(path, bad, len);
        put(u, 999, 0, 0, 1, 1, 0);
        assert_int_equal(pst_snapshot_load(u, dir, 0, 1000), 0);
        assert_int_equal(pst_count(u), 0);
        assert_int_equal(pst_first_unstable(u), -1);
    }
    /* Truncated at various lengths, and empty. */
    size_t cuts[] = {0, 1, 25, 26, 100, len / 2, len - 1};
    for (size_t i = 0; i < CN_ARRAY_LEN(cuts); i++) {
        write_all(path, good, cuts[i]);
        put(u, 999, 0, 0, 1, 1, 0);
        assert_int_equal(pst_snapshot_load(u, dir, 0, 1000), 0);
        assert_int_equal(pst_count(u), 0);
    }
    /* Restored: valid again. */
    write_all(path, good, len);
    assert_int_equal(pst_snapshot_load(u, dir, 0, 1000), 500);
    assert_tables_equal(t, u);
    free(bad);
    free(good);
    pst_free(t);
    pst_free(u);
    but_rm_rf(dir);
}

static void test_snapshot_past_log_end_ignored(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    pst_table *t = pst_new(), *u = pst_new();
    fill_table(t);
    assert_int_equal(pst_snapshot_write(t, dir, 500), 0);
    assert_int_equal(pst_snapshot_load(u, dir, 0, 499), 0);
    assert_int_equal(pst_count(u), 0);
    /* The snapshot describes data the log lost. Once the log has grown
     * past its offset again (new appends, then a crash before the next
     * snapshot) it must not be taken for the new data. */
    assert_int_equal(pst_snapshot_load(u, dir, 0, 600), 0);
    assert_int_equal(pst_count(u), 0);
    pst_free(t);
    pst_free(u);
    but_rm_rf(dir);
}

static void test_snapshot_at_log_end_loaded(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    pst_table *t = pst_new(), *u = pst_new();
    fill_table(t);
    assert_int_equal(pst_snapshot_write(t, dir, 500), 0);
    assert_int_equal(pst_snapshot_load(u, dir, 0, 500), 500);
    assert_int_equal(pst_count(u), pst_count(t));
    pst_free(t);
    pst_free(u);
    but_rm_rf(dir);
}

/* Through the broker ------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
} fixture;

static void fx_open(fixture *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
}

static void fx_close(fixture *f)
{
    broker_close(f->b);
    loop_free(f->l);
    f->b = NULL;
    f->l = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "pstate");
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->b)
        fx_close(f);
    but_rm_rf(f->dir);
    config_fini(&f->cfg);
    free(f);
    return 0;
}

/* A real batch of n records from pid/epoch at seq (attributes patched, CRC
 * recomputed). Caller frees. */
static uint8_t *make_batch(int64_t pid, int16_t epoch, int32_t seq, int n, int txn,
                           size_t *out_len)
{
    batch_build_rec recs[8];
    assert_true(n >= 1 && n <= 8);
    for (int i = 0; i < n; i++)
        recs[i] = (batch_build_rec){"k", 1, "value", 5, 1000 + i};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(batch_build(recs, n, 0, 0, &buf, &len), 0);
    uint16_t attr = txn ? BATCH_ATTR_TRANSACTIONAL : 0;
    buf[21] = (uint8_t)(attr >> 8);
    buf[22] = (uint8_t)attr;
    for (int i = 0; i < 8; i++)
        buf[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
    buf[51] = (uint8_t)((uint16_t)epoch >> 8);
    buf[52] = (uint8_t)epoch;
    for (int i = 0; i < 4; i++)
        buf[53 + i] = (uint8_t)((uint32_t)seq >> (24 - 8 * i));
    uint32_t crc = crc32c(0, buf + 21, len - 21);
    for (int i = 0; i < 4; i++)
        buf[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
    *out_len = len;
    return buf;
}

static int produce(fixture *f, partition *p, int64_t pid, int16_t epoch, int32_t seq, int n,
                       int txn, int64_t *base)
{
    size_t len;
    uint8_t *buf = make_batch(pid, epoch, seq, n, txn, &len);
    batch_info bi;
    assert_int_equal(batch_parse_header(buf, len, &bi), 0);
    assert_int_equal(bi.producer_id, pid);
    assert_int_equal(bi.base_sequence, seq);
    assert_int_equal(bi.transactional, txn);
    int rc = broker_produce(f->b, p, buf, len, base);
    free(buf);
    return rc;
}

static partition *fx_partition(fixture *f)
{
    partition *p = broker_partition(f->b, cn_str_c("tx"), 0);
    assert_non_null(p);
    return p;
}

/* The answers the state gives at the end of the broker scenario, whatever
 * way it was (re)built. */
static void assert_scenario_state(fixture *f)
{
    partition *p = fx_partition(f);
    int64_t base = -7;
    assert_int_equal(log_end_offset(p->log), 14);
    /* Duplicate of the idempotent producer's last batch: original offset. */
    assert_int_equal(produce(f, p, 100, 0, 3, 2, 0, &base), KERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(produce(f, p, 100, 0, 0, 3, 0, &base), KERR_NONE);
    assert_int_equal(base, 0);
    assert_int_equal(log_end_offset(p->log), 14);
    /* Gap and fenced epoch. */
    assert_int_equal(produce(f, p, 100, 0, 6, 1, 0, &base), -CN_ESEQUENCE);
    assert_int_equal(produce(f, p, 200, 0, 3, 1, 1, &base), -CN_EEPOCH);
    assert_int_equal(log_end_offset(p->log), 14);
    /* pid 300's transaction is still open at 12: it holds the LSO. */
    assert_int_equal(broker_lso(p), 12);
    assert_true(pst_txn_open(p->ps, 300));
    assert_false(pst_txn_open(p->ps, 200));
    const pst_producer *pr = pst_get(p->ps, 200);
    assert_non_null(pr);
    assert_int_equal(pr->epoch, 1);
    assert_int_equal(pr->coordinator_epoch, 4);
    collected c;
    assert_int_equal(aborted_count(p->ps, 0, 14, &c), 1);
    assert_true(has_range(&c, 200, 5, 9));
    assert_int_equal(aborted_count(p->ps, 10, 14, &c), 0);
}

static void test_broker_produce_reopen_replay(void **state)
{
    fixture *f = *state;
    char msg[256], dir[128], path[192], stale[192];
    assert_int_equal(broker_topic_create(f->b, cn_str_c("tx"), 1, NULL, 0, 0, msg, sizeof(msg),
                                         NULL), KERR_NONE);
    partition *p = fx_partition(f);
    int64_t base = -1, off = -1;
    assert_int_equal(broker_lso(p), 0);
    /* Idempotent producer 100: [0..2] seq 0-2, [3..4] seq 3-4. */
    assert_int_equal(produce(f, p, 100, 0, 0, 3, 0, &base), KERR_NONE);
    assert_int_equal(base, 0);
    assert_int_equal(produce(f, p, 100, 0, 3, 2, 0, &base), KERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(broker_lso(p), 5);
    /* The retry is answered with its offset and nothing is appended. */
    base = -1;
    assert_int_equal(produce(f, p, 100, 0, 3, 2, 0, &base), KERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(log_end_offset(p->log), 5);
    /* Transactional producer 200, epoch 0: [5..6], [7..8], ABORT at 9. */
    assert_int_equal(produce(f, p, 200, 0, 0, 2, 1, &base), KERR_NONE);
    assert_int_equal(base, 5);
    assert_int_equal(broker_lso(p), 5);
    assert_int_equal(produce(f, p, 200, 0, 2, 2, 1, &base), KERR_NONE);
    assert_int_equal(base, 7);
    assert_int_equal(broker_lso(p), 5);
    assert_int_equal(broker_write_marker(f->b, p, 200, 0, 0, 3, &off), 0);
    assert_int_equal(off, 9);
    assert_int_equal(broker_lso(p), 10);
    /* Epoch bump to 1 (as a fenced restart): marker-free, batch at 10, COMMIT 11. */
    assert_int_equal(produce(f, p, 200, 1, 0, 1, 1, &base), KERR_NONE);
    assert_int_equal(base, 10);
    assert_int_equal(broker_write_marker(f->b, p, 200, 1, 1, 4, &off), 0);
    assert_int_equal(off, 11);
    /* Producer 300 opens a txn at 12 and leaves it open. */
    assert_int_equal(produce(f, p, 300, 0, 0, 2, 1, &base), KERR_NONE);
    assert_int_equal(base, 12);
    assert_int_equal(log_end_offset(p->log), 14);
    assert_scenario_state(f);

    /* Clean close writes the snapshot; reopen gives the same answers. */
    snprintf(dir, sizeof(dir), "%s/tx-0", f->dir);
    snap_path(dir, path, sizeof(path));
    fx_close(f);
    assert_true(file_exists(path));
    fx_open(f);
    assert_scenario_state(f);

    /* Crash without a snapshot: rebuilt entirely by replay. */
    fx_close(f);
    assert_int_equal(unlink(path), 0);
    fx_open(f);
    assert_scenario_state(f);

    /* Crash with a stale snapshot (taken at offset 5, after producer 100's
     * batches only): loaded, then the rest is replayed. */
    fx_close(f);
    {
        pst_table *t = pst_new();
        put(t, 100, 0, 0, 3, 0, 0);
        put(t, 100, 0, 3, 2, 0, 3);
        assert_int_equal(pst_snapshot_write(t, dir, 5), 0);
        pst_free(t);
    }
    fx_open(f);
    assert_scenario_state(f);

    /* A stale snapshot taken in the middle of producer 200's txn (offset 7). */
    fx_close(f);
    {
        pst_table *t = pst_new();
        put(t, 100, 0, 0, 3, 0, 0);
        put(t, 100, 0, 3, 2, 0, 3);
        put(t, 200, 0, 0, 2, 1, 5);
        assert_int_equal(pst_snapshot_write(t, dir, 7), 0);
        pst_free(t);
    }
    fx_open(f);
    assert_scenario_state(f);

    /* A damaged snapshot is ignored and replaced by replay. */
    fx_close(f);
    snprintf(stale, sizeof(stale), "%s", path);
    {
        size_t len;
        uint8_t *buf = read_all(stale, &len);
        buf[len / 2] ^= 1;
        write_all(stale, buf, len);
        free(buf);
    }
    fx_open(f);
    assert_scenario_state(f);
}

/* Close as a crash right after an fsync would leave things: the log is
 * durable but no snapshot is written at close (the file, or its absence, is
 * as it was before). */
static void fx_crash(fixture *f, const char *snap)
{
    size_t len = 0;
    uint8_t *saved = file_exists(snap) ? read_all(snap, &len) : NULL;
    fx_close(f);
    if (saved) {
        write_all(snap, saved, len);
        free(saved);
    } else {
        unlink(snap);
    }
}

/* A snapshot past the log end (written by the timer before the tail it
 * describes was fsynced, then lost in a crash) is ignored at open. If the
 * log then grows past its offset and the broker crashes again before a new
 * snapshot, the old file must not come back as the state of the new data. */
static void test_broker_snapshot_past_end_not_reused(void **state)
{
    fixture *f = *state;
    char msg[256], dir[128], path[192];
    assert_int_equal(broker_topic_create(f->b, cn_str_c("tx"), 1, NULL, 0, 0, msg, sizeof(msg),
                                         NULL), KERR_NONE);
    snprintf(dir, sizeof(dir), "%s/tx-0", f->dir);
    snap_path(dir, path, sizeof(path));
    partition *p = fx_partition(f);
    int64_t base;
    assert_int_equal(produce(f, p, 1, 0, 0, 2, 0, &base), KERR_NONE);
    fx_crash(f, path);
    /* The lost tail: producer 1 at epoch 3 and producer 2's open txn at 5. */
    pst_table *t = pst_new();
    put(t, 1, 3, 0, 1, 0, 4);
    put(t, 2, 0, 0, 1, 1, 5);
    assert_int_equal(pst_snapshot_write(t, dir, 8), 0);
    pst_free(t);
    fx_open(f);
    p = fx_partition(f);
    assert_int_equal(broker_lso(p), 2);
    assert_null(pst_get(p->ps, 2));
    /* Grow past 8 with producer 1, epoch 0, then crash again. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(produce(f, p, 1, 0, 2 + 2 * i, 2, 0, &base), KERR_NONE);
    assert_int_equal(log_end_offset(p->log), 10);
    fx_crash(f, path);
    fx_open(f);
    p = fx_partition(f);
    assert_int_equal(broker_lso(p), 10);
    assert_null(pst_get(p->ps, 2));
    assert_int_equal(pst_get(p->ps, 1)->epoch, 0);
    assert_int_equal(produce(f, p, 1, 0, 8, 2, 0, &base), KERR_NONE);
    assert_int_equal(base, 8);
    assert_int_equal(produce(f, p, 1, 0, 10, 1, 0, &base), KERR_NONE);
    assert_int_equal(base, 10);
}

/* The producer commits after a reopen: LSO moves to the end. */
static void test_broker_commit_after_reopen(void **state)
{
    fixture *f = *state;
    char msg[256];
    assert_int_equal(broker_topic_create(f->b, cn_str_c("tx"), 1, NULL, 0, 0, msg, sizeof(msg),
                                         NULL), KERR_NONE);
    partition *p = fx_partition(f);
    int64_t base, off;
    assert_int_equal(produce(f, p, 1, 0, 0, 1, 0, &base), KERR_NONE);
    assert_int_equal(produce(f, p, 2, 0, 0, 2, 1, &base), KERR_NONE);
    assert_int_equal(base, 1);
    assert_int_equal(broker_lso(p), 1);
    fx_close(f);
    fx_open(f);
    p = fx_partition(f);
    assert_int_equal(broker_lso(p), 1);
    assert_int_equal(produce(f, p, 2, 0, 2, 1, 1, &base), KERR_NONE);
    assert_int_equal(base, 3);
    assert_int_equal(broker_lso(p), 1);
    assert_int_equal(broker_write_marker(f->b, p, 2, 0, 1, 0, &off), 0);
    assert_int_equal(off, 4);
    assert_int_equal(broker_lso(p), 5);
    collected c;
    assert_int_equal(aborted_count(p->ps, 0, 5, &c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_producer_any_sequence),
        cmocka_unit_test(test_in_sequence_and_gap),
        cmocka_unit_test(test_duplicates_of_last_five),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_sequence_wrap),
        cmocka_unit_test(test_many_producers),
        cmocka_unit_test(test_txn_open_commit_abort),
        cmocka_unit_test(test_aborted_windows),
        cmocka_unit_test(test_aborted_marker_order),
        cmocka_unit_test(test_interleaved_txns_lso),
        cmocka_unit_test(test_marker_build_parse),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_damaged_ignored),
        cmocka_unit_test(test_snapshot_past_log_end_ignored),
        cmocka_unit_test(test_snapshot_at_log_end_loaded),
        cmocka_unit_test_setup_teardown(test_broker_produce_reopen_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_commit_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_snapshot_past_end_not_reused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
