/* Helpers for unit tests that run a real broker on a temporary data
 * directory (test_broker, test_offsets, test_group, test_txn, test_pstate).
 * Include after <cmocka.h>. */
#ifndef CAIRN_BROKER_TEST_UTIL_H
#define CAIRN_BROKER_TEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

/* Make /tmp/cairn-test-<name>-XXXXXX in dir (n bytes) and a default config
 * whose log.dirs points at it. */
static inline void but_config_tmpdir(cairn_config *cfg, char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/cairn-test-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    config_init(cfg);
    char err[256];
    assert_int_equal(config_set(cfg, "log.dirs", dir, err, sizeof(err)), 0);
}

/* Remove a test data directory and everything in it. */
static inline void but_rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}
#endif
