/* machlimits: the machine's limits the benchmark compares against, one JSON
 * line on stdout. Every measurement is bounded in bytes and in time.
 *
 *   machlimits --dir DATA_DIR [--scale 1.0]
 *
 * loopback_mbps   TCP over 127.0.0.1: one thread writes 1 MiB chunks, the
 *                 other reads (up to 4 GiB or 1.5 s)
 * rtt_us          1-byte ping-pong over loopback TCP (TCP_NODELAY), p50/p99
 * seqwrite_mbps   1 MiB write()s of a new file in DATA_DIR, then fdatasync;
 *                 time includes the fdatasync (up to 512 MiB or 3 s)
 * fsync_us        4 KiB append + fdatasync, p50/p99 (up to 500 or 3 s)
 * crc32c_mbps     Cairn's crc32c() (src/util) over a 1 MiB buffer
 * memcpy_mbps     64 MiB memcpy between two buffers
 * MB = 10^6 bytes. --scale shrinks every byte/count bound (smoke runs). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg/lg_common.h"
#include "util/crc32c.h"

static double g_scale = 1.0;

static int listen_any(int *port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1) ||
        getsockname(s, (struct sockaddr *)&a, &len)) {
        perror("machlimits: listen");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    return s;
}

static int connect_port(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        perror("machlimits: connect");
        exit(2);
    }
    return s;
}

typedef struct { int fd; uint64_t limit; uint64_t deadline; } sender;

static void *send_loop(void *arg) {
    sender *s = arg;
    char *buf = lg_payload_new(1 << 20);
    uint64_t sent = 0;
    while (sent < s->limit && lg_now_ns() < s->deadline) {
        ssize_t n = write(s->fd, buf, 1 << 20);
        if (n <= 0)
            break;
        sent += (uint64_t)n;
    }
    shutdown(s->fd, SHUT_WR);
    free(buf);
    return NULL;
}

static double loopback_mbps(void) {
    int port, l = listen_any(&port);
    int c = connect_port(port), a = accept(l, NULL, NULL);
    uint64_t t0 = lg_now_ns();
    sender s = {c, (uint64_t)(4e9 * g_scale), t0 + (uint64_t)(1.5e9 * g_scale) + 1000000};
    pthread_t th;
    pthread_create(&th, NULL, send_loop, &s);
    char *buf = malloc(1 << 20);
    uint64_t got = 0;
    ssize_t n;
    while ((n = read(a, buf, 1 << 20)) > 0)
        got += (uint64_t)n;
    double secs = (double)(lg_now_ns() - t0) / 1e9;
    pthread_join(th, NULL);
    close(a); close(c); close(l);
    free(buf);
    return (double)got / secs / 1e6;
}

static void *echo_loop(void *arg) {
    int fd = *(int *)arg;
    char b;
    while (read(fd, &b, 1) == 1 && write(fd, &b, 1) == 1) {
    }
    return NULL;
}

static void rtt(double *p50, double *p99) {
    int port, l = listen_any(&port);
    int c = connect_port(port), a = accept(l, NULL, NULL), one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t th;
    pthread_create(&th, NULL, echo_loop, &a);
    static lg_hist h;
    uint64_t end = lg_now_ns() + 1000000000ull;
    long n = (long)(20000 * g_scale) + 10;
    for (long i = 0; i < n && lg_now_ns() < end; i++) {
        char b = 'x';
        uint64_t t = lg_now_ns();
        if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1)
            break;
        lg_hist_add(&h, (lg_now_ns() - t) / 1000u);
    }
    shutdown(c, SHUT_RDWR);
    pthread_join(th, NULL);
    close(a); close(c); close(l);
    *p50 = (double)lg_hist_pct(&h, 50);
    *p99 = (double)lg_hist_pct(&h, 99);
}

static double seqwrite_mbps(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/machlimits.seq", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("machlimits: open"); exit(2); }
    char *buf = lg_payload_new(1 << 20);
    uint64_t limit = (uint64_t)(512e6 * g_scale) + (1 << 20), wrote = 0;
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(3e9 * g_scale) + 1000000;
    while (wrote < limit && lg_now_ns() < deadline) {
        ssize_t n = write(fd, buf, 1 << 20);
        if (n <= 0) break;
        wrote += (uint64_t)n;
    }
    fdatasync(fd);
    double secs = (double)(lg_now_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    free(buf);
    return (double)wrote / secs / 1e6;
}

static void fsync_lat(const char *dir, double *p50, double *p99) {
    char path[4096];
    snprintf(path, sizeof path, "%s/machlimits.fsync", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) { perror("machlimits: open"); exit(2); }
    char *buf = lg_payload_new(4096);
    static lg_hist h;
    long n = (long)(500 * g_scale) + 5;
    uint64_t end = lg_now_ns() + (uint64_t)(3e9 * g_scale) + 100000000ull;
    for (long i = 0; i < n && lg_now_ns() < end; i++) {
        uint64_t t = lg_now_ns();
        if (write(fd, buf, 4096) != 4096 || fdatasync(fd))
            break;
        lg_hist_add(&h, (lg_now_ns() - t) / 1000u);
    }
    close(fd);
    unlink(path);
    free(buf);
    *p50 = (double)lg_hist_pct(&h, 50);
    *p99 = (double)lg_hist_pct(&h, 99);
}

static double crc_mbps(void) {
    char *buf = lg_payload_new(1 << 20);
    uint32_t crc = 0;
    long n = (long)(2000 * g_scale) + 1;
    uint64_t t0 = lg_now_ns();
    for (long i = 0; i < n; i++)
        crc = crc32c(crc, buf, 1 << 20);
    double secs = (double)(lg_now_ns() - t0) / 1e9;
    free(buf);
    if (crc == 1) fputc(' ', stderr);   /* keep the loop */
    return (double)n * (1 << 20) / secs / 1e6;
}

static double memcpy_mbps(void) {
    size_t len = 64u << 20;
    char *a = lg_payload_new((long)len), *b = malloc(len);
    memcpy(b, a, len);   /* fault the pages in */
    long n = (long)(30 * g_scale) + 1;
    uint64_t t0 = lg_now_ns();
    for (long i = 0; i < n; i++) {
        memcpy(i & 1 ? a : b, i & 1 ? b : a, len);
        __asm__ volatile("" ::: "memory");
    }
    double secs = (double)(lg_now_ns() - t0) / 1e9;
    free(a); free(b);
    return (double)n * (double)len / secs / 1e6;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--scale")) g_scale = atof(argv[i + 1]);
    }
    if (!dir || g_scale <= 0 || g_scale > 10) {
        fprintf(stderr, "usage: machlimits --dir DATA_DIR [--scale 1.0]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    double lb = loopback_mbps(), r50, r99, f50, f99;
    rtt(&r50, &r99);
    double sw = seqwrite_mbps(dir);
    fsync_lat(dir, &f50, &f99);
    double crc = crc_mbps(), mc = memcpy_mbps();
    printf("{\"loopback_mbps\":%.0f,\"rtt_us\":{\"p50\":%.0f,\"p99\":%.0f},\"seqwrite_mbps\":%.0f,"
           "\"fsync_us\":{\"p50\":%.0f,\"p99\":%.0f},\"crc32c_mbps\":%.0f,\"crc32c_hw\":%d,"
           "\"memcpy_mbps\":%.0f}\n",
           lb, r50, r99, sw, f50, f99, crc, !!crc32c_hw_available(), mc);
    return 0;
}
