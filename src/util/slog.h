/* Server log: one line per event on stderr, "2026-11-23T01:02:03.123Z LEVEL msg".
 * Thread-safe (each line is one write(2)). */
#ifndef CAIRN_SLOG_H
#define CAIRN_SLOG_H
#include "util/common.h"

typedef enum { SLOG_DEBUG = 0, SLOG_INFO = 1, SLOG_WARN = 2, SLOG_ERROR = 3 } slog_level;

void slog_set_level(slog_level lvl);
int slog_enabled(slog_level lvl);
void slog_write(slog_level lvl, const char *fmt, ...) CN_PRINTF(2, 3);

#define slog_debug(...) (slog_enabled(SLOG_DEBUG) ? slog_write(SLOG_DEBUG, __VA_ARGS__) : (void)0)
#define slog_info(...) slog_write(SLOG_INFO, __VA_ARGS__)
#define slog_warn(...) slog_write(SLOG_WARN, __VA_ARGS__)
#define slog_error(...) slog_write(SLOG_ERROR, __VA_ARGS__)
#endif
