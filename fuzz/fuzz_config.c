/* libFuzzer harness for the configuration parser. The input is used three
 * ways, each on a fresh config: as a whole key=value file (written to a
 * memfd and read with config_load_file through /proc/self/fd); split at its
 * first '=' (or first newline if none) into one config_set call; and the
 * same key/value as a topic override with topic_config_set. Errors are
 * expected; crashes, sanitizer reports and leaks (config_fini must free
 * everything) are findings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "util/slog.h"

static void check_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_config", MFD_CLOEXEC);
        if (fd < 0)
            abort();
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    cairn_config c;
    config_init(&c);
    char err[256];
    (void)config_load_file(&c, path, err, sizeof(err));
    config_fini(&c);
}

static void check_kv(const uint8_t *data, size_t size)
{
    char *kv = malloc(size + 1);
    memcpy(kv, data, size);
    kv[size] = '\0';
    char *sep = strchr(kv, '=');
    if (!sep)
        sep = strchr(kv, '\n');
    const char *value = "";
    if (sep) {
        *sep = '\0';
        value = sep + 1;
    }
    cairn_config c;
    config_init(&c);
    char err[256];
    (void)config_set(&c, kv, value, err, sizeof(err));
    topic_config t;
    topic_config_defaults(&c, &t);
    if (topic_config_set(&t, &c, kv, value) == 0) {
        char buf[64];
        int k = topic_config_lookup(kv);
        if (k >= 0)
            (void)topic_config_value(&t, (topic_cfg_key)k, buf, sizeof(buf));
    }
    config_fini(&c);
    free(kv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        slog_set_level(SLOG_ERROR);
        quiet = 1;
    }
    check_file(data, size);
    check_kv(data, size);
    return 0;
}
