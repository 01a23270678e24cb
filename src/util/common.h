/* Error codes, attributes and tiny macros shared by every module. Nothing else
 * belongs here (STYLE.md §1). Internal errors are negative CN_E* values; Kafka
 * wire errors are a separate type (kafka_err) and never mix with these. */
#ifndef CAIRN_COMMON_H
#define CAIRN_COMMON_H
#include <errno.h>
#include <stddef.h>

#define CN_OK 0
#define CN_ENOMEM ENOMEM
#define CN_EIO EIO
#define CN_ENOSPC ENOSPC
#define CN_EINVAL EINVAL
#define CN_ENOENT ENOENT
#define CN_EEXIST EEXIST
#define CN_EPROTO EPROTO
#define CN_ERANGE ERANGE
#define CN_ECORRUPT EBADMSG /* checksum or structure check failed */
#define CN_EAGAIN EAGAIN

#define CN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CN_UNUSED __attribute__((unused))
#define CN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CN_LIKELY(x) __builtin_expect(!!(x), 1)
#define CN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Cheap invariant that stays on in release builds (storage invariants). */
void cn_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define CN_ASSERT(x) ((x) ? (void)0 : cn_assert_fail(#x, __FILE__, __LINE__))

/* Allocation of small control structures: aborts on OOM. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
