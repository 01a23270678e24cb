/* Unit tests for the command-line client's pure parts (src/cli): base64
 * against RFC 4648's vectors, every byte value and the inputs it must
 * refuse; table layout; table cells from JSON scalars. The commands
 * themselves run against a real broker in tests/integration/py/test_cli.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = cli__b64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, enc[i]);
        free(e);
        size_t n = 99;
        uint8_t *d = cli__b64_decode(enc[i], &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(d);
    }
}

static void test_b64_round_trips_every_byte(void **state)
{
    (void)state;
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    for (size_t len = 0; len <= sizeof(all); len += 1 + len / 7) {
        char *e = cli__b64_encode(all, len);
        assert_int_equal(strlen(e), (len + 2) / 3 * 4);
        size_t n;
        uint8_t *d = cli__b64_decode(e, &n);
        assert_non_null(d);
        assert_int_equal(n, len);
        assert_memory_equal(d, all, len);
        free(d);
        free(e);
    }
}

static void test_b64_refuses_what_the_broker_never_writes(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zg", "Zg=", "Z===", "====", "Zm9v!A==", "Zg==Zg==",
                                      "Zm 9v", "Zg=A", "Zm9\n"};
    for (size_t i = 0; i < CN_ARRAY_LEN(bad); i++) {
        size_t n;
        uint8_t *d = cli__b64_decode(bad[i], &n);
        if (d)
            fail_msg("'%s' decoded", bad[i]);
    }
}

static void test_table_columns_as_wide_as_their_widest_cell(void **state)
{
    (void)state;
    static const char *const head[] = {"NAME", "PARTITIONS"};
    cli_table *t = cli__table_new(2, head);
    static const char *const r1[] = {"a-long-topic-name", "3"};
    static const char *const r2[] = {"b", NULL};
    cli__table_add(t, r1);
    cli__table_add(t, r2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli__table_print(t, f);
    fclose(f);
    assert_string_equal(buf, "NAME               PARTITIONS\n"
                             "a-long-topic-name  3\n"
                             "b\n");               /* no trailing blanks */
    free(buf);
    cli__table_free(t);
    cli__table_free(NULL);
}

static void test_cells_from_json_scalars(void **state)
{
    (void)state;
    char b[32];
    json_t *v = json_integer(-42);
    assert_string_equal(cli__cell(v, b, sizeof(b)), "-42");
    json_decref(v);
    v = json_integer(INT64_MAX);
    assert_string_equal(cli__cell(v, b, sizeof(b)), "9223372036854775807");
    json_decref(v);
    v = json_string("Stable");
    assert_string_equal(cli__cell(v, b, sizeof(b)), "Stable");
    json_decref(v);
    v = json_string("");
    assert_string_equal(cli__cell(v, b, sizeof(b)), "-");
    json_decref(v);
    assert_string_equal(cli__cell(json_null(), b, sizeof(b)), "-");
    assert_string_equal(cli__cell(NULL, b, sizeof(b)), "-");
    assert_string_equal(cli__cell(json_true(), b, sizeof(b)), "true");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_round_trips_every_byte),
        cmocka_unit_test(test_b64_refuses_what_the_broker_never_writes),
        cmocka_unit_test(test_table_columns_as_wide_as_their_widest_cell),
        cmocka_unit_test(test_cells_from_json_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
