/* File-system helpers of the broker: directories and atomically replaced
 * files. See broker_int.h. */
#include "broker/broker_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"
#include "util/slog.h"

int broker__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int broker__mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(path))
        return -CN_EINVAL;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    return 0;
}

/* Write path atomically with content. 0 or -errno. */
int broker__write_atomic(const char *dir, const char *path, const char *content, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = fault_write(fd, content + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (fault_fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return -e;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return broker__fsync_dir(dir);
}

int broker__rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    char sub[4400];
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (unlink(sub) < 0 && errno != ENOENT)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(path) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int broker_dir_lock(const char *dir, int *out_fd)
{
    *out_fd = -1;
    int rc = broker__mkdir_p(dir);
    if (rc < 0) {
        slog_error("cannot create data directory %s: %s", dir, strerror(-rc));
        return rc;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        slog_error("cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -CN_EEXIST : -errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (rc == -CN_EEXIST)
            slog_error("data directory %s is in use by another process (pid %s): one process "
                       "at a time may open it", dir, pid[0] ? pid : "?");
        else
            slog_error("cannot lock %s: %s", path, strerror(-rc));
        close(fd);
        return rc;
    }
    char pid[32];
    int pl = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)pl, 0) < 0) {
        /* the pid is only for the message above: not worth failing */
    }
    *out_fd = fd;
    return 0;
}
