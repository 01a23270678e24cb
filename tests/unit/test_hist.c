/* util/hist: bucket placement at and around the bounds, +Inf, sums, and the
 * specs' shape (ascending bounds whose labels say the same value). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "util/hist.h"

static void test_values_land_in_the_first_bound_at_or_above(void **state)
{
    (void)state;
    hist h;
    hist_init(&h, &hist_records);   /* 1, 2, 5, 10, ... 100000 */
    hist_observe(&h, 0);            /* le=1 */
    hist_observe(&h, 1);            /* le=1: bounds are inclusive */
    hist_observe(&h, 2);            /* le=2 */
    hist_observe(&h, 3);            /* le=5 */
    hist_observe(&h, 100000);       /* the last bound */
    hist_observe(&h, 100001);       /* +Inf */
    hist_observe(&h, -7);           /* counts as 0 */
    assert_int_equal(h.buckets[0], 3);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[2], 1);
    assert_int_equal(h.buckets[hist_records.n_bounds - 1], 1);
    assert_int_equal(h.buckets[hist_records.n_bounds], 1);
    assert_int_equal(h.count, 7);
    assert_int_equal(h.sum, 0 + 1 + 2 + 3 + 100000 + 100001 + 0);
    uint64_t total = 0;
    for (int i = 0; i <= hist_records.n_bounds; i++)
        total += h.buckets[i];
    assert_int_equal(total, h.count);
}

static void test_latency_buckets(void **state)
{
    (void)state;
    hist h;
    hist_init(&h, &hist_latency_ns);
    hist_observe(&h, 50000);           /* 50 us: le=0.0001 */
    hist_observe(&h, 1000000);         /* 1 ms exactly: le=0.001 (index 3) */
    hist_observe(&h, 1000001);         /* just above: le=0.0025 */
    hist_observe(&h, 60000000000LL);   /* a minute: +Inf */
    assert_int_equal(h.buckets[0], 1);
    assert_int_equal(h.buckets[3], 1);
    assert_int_equal(h.buckets[4], 1);
    assert_int_equal(h.buckets[hist_latency_ns.n_bounds], 1);
    assert_int_equal(h.count, 4);
}

static void check_spec(const hist_spec *s)
{
    assert_true(s->n_bounds >= 1 && s->n_bounds <= HIST_MAX_BOUNDS);
    for (int i = 0; i < s->n_bounds; i++) {
        if (i > 0)
            assert_true(s->bounds[i - 1] < s->bounds[i]);
        assert_non_null(s->le[i]);
        double want = (double)s->bounds[i] * s->scale;
        double got = strtod(s->le[i], NULL);
        assert_true(got > want * 0.999999 && got < want * 1.000001);
    }
}

static void test_specs_are_ascending_and_labels_match(void **state)
{
    (void)state;
    check_spec(&hist_latency_ns);
    check_spec(&hist_bytes);
    check_spec(&hist_records);
}

static void test_clock_is_monotonic(void **state)
{
    (void)state;
    int64_t a = hist_now_ns(), b = hist_now_ns();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_land_in_the_first_bound_at_or_above),
        cmocka_unit_test(test_latency_buckets),
        cmocka_unit_test(test_specs_are_ascending_and_labels_match),
        cmocka_unit_test(test_clock_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
