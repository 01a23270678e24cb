/* Server log implementation: formats into a stack buffer, one write(2) per line. */
#include "util/slog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static slog_level slog_min = SLOG_INFO;
static const char *const slog_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void slog_set_level(slog_level lvl) { slog_min = lvl; }
int slog_enabled(slog_level lvl) { return lvl >= slog_min; }

void slog_write(slog_level lvl, const char *fmt, ...)
{
    if (lvl < slog_min)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, slog_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : CN_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nothing sensible to do if stderr is gone */
}

void cn_assert_fail(const char *expr, const char *file, int line)
{
    slog_error("assertion failed: %s at %s:%d", expr, file, line);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        slog_error("out of memory allocating %zu bytes", n);
        abort();
    }
    return p;
}
void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        slog_error("out of memory allocating %zu x %zu bytes", n, sz);
        abort();
    }
    return p;
}
void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        slog_error("out of memory reallocating %zu bytes", n);
        abort();
    }
    return q;
}
char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}
