/* libFuzzer harness for the HTTP/1.1 listener: TCP bytes in, through the
 * net layer, the HTTP front end's framing (http_parser in frame_len, header
 * and body limits, chunked bodies, pipelining), the route table and every
 * handler (produce, long-poll reads, topic and group admin, metrics).
 * Modelled on fuzz_amqp_server.c.
 *
 * Once per process: a data directory from mkdtemp under /dev/shm, else /tmp
 * (removed at exit), the loop, the core, the HTTP front end (bodies up to
 * 64 KiB, headers up to 2 KiB, so the limits are within reach) and a server
 * on 127.0.0.1, port 0, with hsrv_proto. Per input: a fresh non-blocking
 * client connection writes the input as it is, half-closes, and the loop is
 * driven by hand (loop_run_once) while the client reads and discards what
 * the server sends, until the server closes the connection or a pass budget
 * runs out (a long poll still parked then is answered when its timer fires
 * during a later input, or at exit). Every RESET_EVERY inputs the open file
 * descriptors are counted (files under the data directory excepted: topics
 * an input created are kept state); growth past FD_SLACK over the first
 * count traps (an fd leak). Seeds: fuzz/corpus/http_server (requests for
 * every route, pipelined, chunked; made by fuzz/gen_corpus_http_server.py).
 * SIGPIPE is ignored, as the program does. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "config/config.h"
#include "core/core.h"
#include "net/loop.h"
#include "net/net.h"
#include "util/slog.h"

#define RESET_EVERY 512
#define FD_SLACK 64
#define MAX_PASSES 400       /* loop passes per input before giving up */
#define FAST_PASSES 50       /* passes that do not wait before 1 ms waits */

static struct {
    char dir[256];
    cairn_config cfg;
    loop *l;
    core *core;
    hsrv *hs;
    net_server *srv;
    struct sockaddr_in addr;
    uint64_t n_inputs;
    int fd_baseline;
} g;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_data_dir(void)
{
    if (g.dir[0])
        nftw(g.dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http_server: setup failed: %s\n", what);
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    slog_set_level(SLOG_ERROR);
    /* As src/main.c: a write to a peer that went away is an error, not a
     * signal (a Server-Sent Events stream writes on after the client left). */
    signal(SIGPIPE, SIG_IGN);
    const char *base = getenv("FUZZ_SERVER_TMP");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g.dir, sizeof(g.dir), "%s/cairn-fuzz-http-XXXXXX", base);
    if (!mkdtemp(g.dir))
        die("mkdtemp");
    atexit(remove_data_dir);
    config_init(&g.cfg);
    char err[256];
    if (config_set(&g.cfg, "log.dirs", g.dir, err, sizeof(err)) < 0)
        die(err);
    /* Small limits, so inputs reach 413 and 431 within -max_len. */
    if (config_set(&g.cfg, "http.max.body.bytes", "65536", err, sizeof(err)) < 0 ||
        config_set(&g.cfg, "http.max.header.bytes", "2048", err, sizeof(err)) < 0)
        die(err);
    if (loop_new(&g.l) < 0)
        die("loop_new");
    if (core_open(&g.cfg, g.l, &g.core) < 0)
        die("core_open");
    g.hs = hsrv_new(g.core);
    net_limits lim = {
        .max_frame_bytes = g.cfg.socket_request_max_bytes,
        .max_inflight = 128,
        .max_connections = 64,
    };
    if (net_server_new(g.l, "127.0.0.1", 0, &lim, &hsrv_proto, g.hs, &g.srv) < 0)
        die("net_server_new");
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)net_server_port(g.srv));
    g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* Read and discard what the server sent. 1 once the server has closed. */
static int drain(int fd)
{
    static uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return !(errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void pass(int i)
{
    if (loop_run_once(g.l, i < FAST_PASSES ? 0 : 1) < 0)
        abort();
}

static void exchange(const uint8_t *prefix, size_t prefix_len, const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    if (connect(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) < 0 && errno != EINPROGRESS)
        abort();
    const uint8_t *parts[2] = {prefix, data};
    size_t lens[2] = {prefix_len, size};
    int part = 0, closed = 0, i = 0;
    size_t off = 0;
    for (; i < MAX_PASSES && !closed; i++) {
        while (part < 2 && off == lens[part]) {
            part++;
            off = 0;
        }
        if (part == 2) {
            shutdown(fd, SHUT_WR);
            part = 3;
        }
        if (part < 2) {
            ssize_t n = send(fd, parts[part] + off, lens[part] - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ENOTCONN)
                part = 3;
        }
        pass(i);
        closed = drain(fd);
    }
    close(fd);
    for (int j = 0; j < 3; j++)
        pass(0);
}

/* Open descriptors, not counting files under the data directory: inputs may
 * create topics and leave them, which is state the broker must keep, not a
 * leak. Sockets and every other file still count. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[64], target[4096];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            if (strncmp(target, g.dir, strlen(g.dir)) == 0)
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exchange(NULL, 0, data, size);
    if (++g.n_inputs % RESET_EVERY == 0) {
        int n = count_fds();
        if (!g.fd_baseline)
            g.fd_baseline = n;
        else if (n > g.fd_baseline + FD_SLACK) {
            fprintf(stderr, "fuzz_http_server: %d fds open, %d at first count\n", n,
                    g.fd_baseline);
            __builtin_trap();
        }
    }
    pass(0);
    return 0;
}
