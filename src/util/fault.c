/* Fault-injection build only (see fault.h): the written/synced table and the
 * simulated power loss. One mutex guards the table; a write or truncate runs
 * under it so the crash (which takes it and never gives it back) sees a
 * stable state. An fsync runs unlocked: the written length is read before
 * it and becomes the synced length only after it returns, so a crash during
 * an fsync counts none of it as synced. */
#ifdef CAIRN_FAULT
#include "util/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "util/common.h"
#include "util/slog.h"

typedef struct fentry {
    dev_t dev;
    ino_t ino;
    int64_t synced;                /* prefix known durable */
    int64_t written;               /* end of the furthest write or truncate
                                    * (not the size of a preallocated file) */
} fentry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static fentry *tab;
static size_t n_tab, cap_tab;
static char *dir;
static int mode = 1;
static uint64_t rng;
static int64_t crash_ms = -1;
static int quiet;                  /* fault_cut_dir: no line per file */

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Entry of fd's file: all of its current content counts as synced (it was
 * on disk at open, or cut back by the previous crash). A file shorter than
 * what we saw written was replaced (O_TRUNC, or a new file on a reused
 * inode): start over. Caller holds mu. NULL when fd is not a regular file. */
static fentry *entry(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    for (size_t i = 0; i < n_tab; i++) {
        fentry *e = &tab[i];
        if (e->dev == st.st_dev && e->ino == st.st_ino) {
            if (st.st_size < e->written) {
                e->synced = st.st_size;
                e->written = 0;
            }
            return e;
        }
    }
    if (n_tab == cap_tab) {
        cap_tab = cap_tab ? cap_tab * 2 : 256;
        tab = xrealloc(tab, cap_tab * sizeof(*tab));
    }
    fentry *e = &tab[n_tab++];
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->synced = st.st_size;
    e->written = 0;
    return e;
}

static void wrote(fentry *e, int64_t pos, int64_t end)
{
    if (!e)
        return;
    if (pos < e->synced)
        e->synced = pos;
    if (end > e->written)
        e->written = end;
}

ssize_t fault_pwrite(int fd, const void *buf, size_t len, int64_t pos)
{
    pthread_mutex_lock(&mu);
    fentry *e = entry(fd);
    ssize_t n = pwrite(fd, buf, len, (off_t)pos);
    int err = errno;
    if (n > 0)
        wrote(e, pos, pos + n);
    pthread_mutex_unlock(&mu);
    errno = err;
    return n;
}

ssize_t fault_write(int fd, const void *buf, size_t len)
{
    pthread_mutex_lock(&mu);
    fentry *e = entry(fd);
    ssize_t n = write(fd, buf, len);
    int err = errno;
    if (n > 0) {
        int64_t end = (int64_t)lseek(fd, 0, SEEK_CUR);
        wrote(e, end - n, end);
    }
    pthread_mutex_unlock(&mu);
    errno = err;
    return n;
}

int fault_ftruncate(int fd, int64_t len)
{
    pthread_mutex_lock(&mu);
    fentry *e = entry(fd);
    int rc = ftruncate(fd, (off_t)len);
    int err = errno;
    if (rc == 0 && e) {
        e->written = len;
        e->synced = CN_MIN(e->synced, len);
    }
    pthread_mutex_unlock(&mu);
    errno = err;
    return rc;
}

static int do_sync(int fd, int data)
{
    pthread_mutex_lock(&mu);
    fentry *e = entry(fd);
    dev_t dev = e ? e->dev : 0;
    ino_t ino = e ? e->ino : 0;
    int64_t upto = e ? e->written : 0;
    pthread_mutex_unlock(&mu);
    int rc = data ? fdatasync(fd) : fsync(fd);
    if (rc < 0 || !e)
        return rc;
    int err = errno;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_tab; i++)
        if (tab[i].dev == dev && tab[i].ino == ino && tab[i].written >= upto)
            tab[i].synced = CN_MAX(tab[i].synced, upto);
    pthread_mutex_unlock(&mu);
    errno = err;
    return rc;
}

int fault_fsync(int fd) { return do_sync(fd, 0); }
int fault_fdatasync(int fd) { return do_sync(fd, 1); }

/* nftw callback: cut one file back (mu held by the crash). */
static int cut(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    const fentry *e = NULL;
    for (size_t i = 0; i < n_tab && !e; i++)
        if (tab[i].dev == st->st_dev && tab[i].ino == st->st_ino)
            e = &tab[i];
    if (!e || e->synced >= st->st_size)
        return 0;
    int64_t len = e->synced;
    int64_t junk_from = len;
    if (mode == 2 && e->written > e->synced) {
        len = e->synced + (int64_t)(rnd() % (uint64_t)(e->written - e->synced + 1));
        junk_from = e->synced + (int64_t)(rnd() % (uint64_t)(len - e->synced + 1));
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (ftruncate(fd, (off_t)len) < 0)
        fprintf(stderr, "fault: truncate %s failed: %s\n", path, strerror(errno));
    uint8_t junk[4096];
    for (int64_t p = junk_from; p < len;) {
        size_t n = (size_t)CN_MIN((int64_t)sizeof(junk), len - p);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rnd();
        if (pwrite(fd, junk, n, (off_t)p) < 0)
            break;
        p += (int64_t)n;
    }
    close(fd);
    if (!quiet)
        fprintf(stderr, "fault: %s written=%lld synced=%lld -> length %lld (garbage from %lld)\n",
            path, (long long)e->written, (long long)e->synced, (long long)len,
            (long long)junk_from);
    return 0;
}

static void *crash_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (crash_ms >= 0) {
        struct timespec ts = {.tv_sec = crash_ms / 1000, .tv_nsec = (crash_ms % 1000) * 1000000L};
        while (sigtimedwait(&set, NULL, &ts) < 0 && errno == EINTR)
            ;
    } else {
        int sig;
        while (sigwait(&set, &sig) != 0)
            ;
    }
    pthread_mutex_lock(&mu); /* never released: writers and syncs stop here */
    fprintf(stderr, "fault: simulated power loss (mode %d)\n", mode);
    /* A dead machine sends nothing more: reset every connection (linger 0,
     * so bytes queued by sendfile, which may still refer to page-cache pages
     * about to be garbled, are dropped) before the files change. The fd
     * numbers stay taken (/dev/null) so the still running loop thread cannot
     * mix them up with new files. */
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 65536 && devnull >= 0; fd++) {
        struct stat st;
        if (fd == devnull || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        dup2(devnull, fd);
    }
    nftw(dir, cut, 32, FTW_PHYS);
    _exit(137);
}

int fault_cut_dir(const char *path, int cut_mode, uint64_t seed)
{
    pthread_mutex_lock(&mu);
    int old_mode = mode;
    uint64_t old_rng = rng;
    mode = cut_mode;
    rng = seed * 0x9E3779B97F4A7C15ull | 1;
    quiet = 1;
    int rc = nftw(path, cut, 32, FTW_PHYS);
    quiet = 0;
    mode = old_mode;
    rng = old_rng;
    pthread_mutex_unlock(&mu);
    return rc == 0 ? 0 : -CN_EIO;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

void fault_init(const char *data_dir)
{
    if (dir)
        return;
    dir = xstrdup(data_dir);
    mode = (int)env_u64("CAIRN_FAULT_MODE", 1);
    rng = env_u64("CAIRN_FAULT_SEED", (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20);
    rng = rng * 0x9E3779B97F4A7C15ull | 1;
    const char *c = getenv("CAIRN_FAULT_CRASH_MS");
    crash_ms = c && *c ? (int64_t)strtoll(c, NULL, 10) : -1;
    /* Block SIGUSR1 in this thread and every thread started later. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, crash_main, NULL) != 0) {
        slog_error("fault: cannot start the crash thread");
        return;
    }
    pthread_detach(t);
    slog_warn("fault injection build: mode=%d crash_ms=%lld (SIGUSR1 crashes)", mode,
              (long long)crash_ms);
}
#else
typedef int fault_c_is_empty_without_cairn_fault;
#endif
