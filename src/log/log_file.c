/* Refcounted segment files, whole-buffer read/write loops and the read window
 * used to walk batch headers. A log_file's fd is closed exactly when its last
 * reference (segment or slice) is dropped; all of it is loop-thread only, so
 * the counts are plain ints. */
#include "log/log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"

log_file *log__file_new(int fd)
{
    log_file *f = xcalloc(1, sizeof(*f));
    f->fd = fd;
    f->refs = 1;
    return f;
}

void log__file_ref(log_file *f)
{
    f->refs++;
}

void log__file_unref(log_file *f)
{
    if (!f || --f->refs > 0)
        return;
    close(f->fd);
    free(f);
}

void log_slice_release(log_slice *s)
{
    if (!s)
        return;
    log__file_unref(s->file);
    s->file = NULL;
    s->fd = -1;
    s->pos = 0;
    s->len = 0;
}

int log__io_err(int err)
{
    if (err == ENOSPC || err == EDQUOT)
        return -CN_ENOSPC;
    return -CN_EIO;
}

int log__pwrite_all(int fd, const void *buf, size_t len, int64_t pos)
{
    const uint8_t *b = buf;
    while (len > 0) {
        ssize_t n = fault_pwrite(fd, b, len, (off_t)pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        b += n;
        len -= (size_t)n;
        pos += n;
    }
    return 0;
}

int log__write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    while (len > 0) {
        ssize_t n = fault_write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int log__pread_all(int fd, void *buf, size_t len, int64_t pos, size_t *out_n)
{
    uint8_t *b = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, b + got, len - got, (off_t)(pos + (int64_t)got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *out_n = got;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *out_n = got;
    return 0;
}

void log__win_init(log_win *w, int fd, uint8_t *buf, size_t cap)
{
    w->fd = fd;
    w->buf = buf;
    w->cap = cap;
    w->pos = -1;
    w->len = 0;
}

const uint8_t *log__win_get(log_win *w, int64_t pos, size_t n, int64_t limit, int *rc)
{
    *rc = 0;
    if (pos < 0 || n > w->cap || pos + (int64_t)n > limit)
        return NULL;
    if (w->pos >= 0 && pos >= w->pos && pos + (int64_t)n <= w->pos + (int64_t)w->len)
        return w->buf + (pos - w->pos);
    size_t want = (size_t)CN_MIN((int64_t)w->cap, limit - pos);
    size_t got = 0;
    int r = log__pread_all(w->fd, w->buf, want, pos, &got);
    if (r < 0) {
        w->pos = -1;
        *rc = -CN_EIO;
        return NULL;
    }
    w->pos = pos;
    w->len = got;
    if (got < n)
        return NULL;
    return w->buf;
}
