/* Unit tests for broker/broker_place.c, the placement of partition
 * replicas on a cluster's nodes: the answer is a function of its inputs
 * only (every node computes the same), the replicas are distinct nodes of
 * the cluster, the order of the node list does not matter, RF = N keeps the
 * rotation topics had before placement, RF < N spreads replicas and
 * preferred leaders over the nodes, and a node added to the cluster takes
 * only the replicas it wins (rendezvous: every other partition keeps its
 * set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "broker/broker_int.h"

static topic mk(const char *name, int32_t rf, uint8_t seed)
{
    topic t;
    memset(&t, 0, sizeof(t));
    t.name = (char *)name;
    t.rf = rf;
    for (int i = 0; i < 16; i++)
        t.id.b[i] = (uint8_t)(seed * 31 + i * 7);
    return t;
}

static int has(const int32_t *v, int n, int32_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

static void test_distinct_and_deterministic(void **state)
{
    (void)state;
    const int32_t nodes[] = {1, 2, 3, 4, 5};
    const int32_t shuffled[] = {4, 1, 5, 3, 2};
    for (int32_t rf = 1; rf <= 5; rf++) {
        topic t = mk("orders", rf, 9);
        for (int32_t p = 0; p < 50; p++) {
            int32_t a[5], b[5];
            broker__place(&t, p, nodes, 5, a);
            broker__place(&t, p, shuffled, 5, b);
            assert_memory_equal(a, b, (size_t)rf * sizeof(a[0]));
            for (int i = 0; i < rf; i++) {
                assert_true(has(nodes, 5, a[i]));
                assert_false(has(a, i, a[i]));
            }
        }
    }
}

static void test_full_rf_is_rotation(void **state)
{
    (void)state;
    const int32_t nodes[] = {3, 1, 2};
    topic t = mk("payments", 3, 1);
    int first[4] = {0};
    for (int32_t p = 0; p < 30; p++) {
        int32_t a[3];
        broker__place(&t, p, nodes, 3, a);
        /* sorted ids rotated: each next id follows the one before, mod 3 */
        for (int i = 1; i < 3; i++)
            assert_int_equal(a[i], a[i - 1] % 3 + 1);
        first[a[0]]++;
    }
    /* consecutive partitions prefer the nodes in turn: 10 each */
    assert_int_equal(first[1], 10);
    assert_int_equal(first[2], 10);
    assert_int_equal(first[3], 10);
}

static void test_spread(void **state)
{
    (void)state;
    const int32_t nodes[] = {1, 2, 3, 4, 5};
    int held[6] = {0}, preferred[6] = {0};
    for (uint8_t s = 0; s < 20; s++) {
        topic t = mk("t", 3, s);
        for (int32_t p = 0; p < 50; p++) {
            int32_t a[3];
            broker__place(&t, p, nodes, 5, a);
            for (int i = 0; i < 3; i++)
                held[a[i]]++;
            preferred[a[0]]++;
        }
    }
    /* 1000 partitions x 3 replicas over 5 nodes: 600 each expected, 200
     * preferred each; a fair hash stays well within +-20%. */
    for (int n = 1; n <= 5; n++) {
        assert_in_range(held[n], 480, 720);
        assert_in_range(preferred[n], 160, 240);
    }
}

static void test_adding_a_node_moves_only_what_it_wins(void **state)
{
    (void)state;
    const int32_t four[] = {1, 2, 3, 4}, five[] = {1, 2, 3, 4, 5};
    int moved = 0;
    topic t = mk("events", 2, 4);
    for (int32_t p = 0; p < 500; p++) {
        int32_t a[2], b[2];
        broker__place(&t, p, four, 4, a);
        broker__place(&t, p, five, 5, b);
        if (has(b, 2, 5)) {
            moved++;
            /* the new node replaced one replica; the other stayed */
            assert_true(has(a, 2, b[0] == 5 ? b[1] : b[0]));
        } else {
            assert_true(has(a, 2, b[0]) && has(a, 2, b[1]));
        }
    }
    /* the new node wins a top-2 place in about 2/5 of the partitions */
    assert_in_range(moved, 150, 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_and_deterministic),
        cmocka_unit_test(test_full_rf_is_rotation),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_adding_a_node_moves_only_what_it_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
