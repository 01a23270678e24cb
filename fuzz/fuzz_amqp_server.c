/* libFuzzer harness for the AMQP 0-9-1 listener: TCP bytes in, through the
 * net layer, the AMQP front end's framing (protocol header, frame_len with
 * frame_max), the connection state machine and the channel handlers.
 * Modelled on fuzz_server.c (the Kafka one).
 *
 * Once per process: a data directory from mkdtemp under /dev/shm, else /tmp
 * (removed at exit), the loop, the core, the AMQP front end and a server on
 * 127.0.0.1, port 0, with asrv_proto. Per input: a fresh non-blocking client
 * connection writes the input; an input that does not start with "AMQP" is
 * sent after a valid handshake prelude (protocol header, start-ok as
 * guest/guest, tune-ok, open "/"), so most inputs exercise an OPEN
 * connection. The client half-closes and the loop is driven by hand
 * (loop_run_once) while it reads and discards what the server sends, until
 * the server closes the connection or a pass budget runs out. Every
 * RESET_EVERY inputs the open file descriptors are counted (durable queue
 * files excepted: they are kept state); growth past
 * FD_SLACK over the first count traps (an fd leak). Seeds:
 * fuzz/corpus/amqp_server (valid handshakes and channel traffic, made by
 * fuzz/gen_corpus_amqp_server.py). */
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

#include "amqp/amqp.h"
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
    asrv *as;
    net_server *srv;
    struct sockaddr_in addr;
    uint64_t n_inputs;
    int fd_baseline;
} g;

/* Header, start-ok (PLAIN guest/guest, empty client properties), tune-ok
 * (2047, 131072, heartbeat 0), open "/". */
static const uint8_t prelude[] = {
    'A', 'M', 'Q', 'P', 0, 0, 9, 1,
    /* connection.start-ok */
    1, 0, 0, 0, 0, 0, 36, 0, 10, 0, 11, 0, 0, 0, 0, 5, 'P', 'L', 'A', 'I', 'N', 0, 0, 0, 12,
    0, 'g', 'u', 'e', 's', 't', 0, 'g', 'u', 'e', 's', 't', 5, 'e', 'n', '_', 'U', 'S', 0xCE,
    /* connection.tune-ok */
    1, 0, 0, 0, 0, 0, 12, 0, 10, 0, 31, 0x07, 0xFF, 0, 2, 0, 0, 0, 0, 0xCE,
    /* connection.open "/" */
    1, 0, 0, 0, 0, 0, 8, 0, 10, 0, 40, 1, '/', 0, 0, 0xCE,
};

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
    fprintf(stderr, "fuzz_amqp_server: setup failed: %s\n", what);
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    slog_set_level(SLOG_ERROR);
    /* As the program does: a refusal answered after the failed-login
     * delay (auth/throttle.h) may be written after the client went away. */
    signal(SIGPIPE, SIG_IGN);
    const char *base = getenv("FUZZ_SERVER_TMP");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g.dir, sizeof(g.dir), "%s/cairn-fuzz-amqp-XXXXXX", base);
    if (!mkdtemp(g.dir))
        die("mkdtemp");
    atexit(remove_data_dir);
    config_init(&g.cfg);
    char err[256];
    /* failed logins answered at once: the delay would only slow the search */
    if (config_set(&g.cfg, "connection.failed.authentication.delay.ms", "0", err,
                   sizeof(err)) < 0 ||
        config_set(&g.cfg, "log.dirs", g.dir, err, sizeof(err)) < 0)
        die(err);
    if (loop_new(&g.l) < 0)
        die("loop_new");
    if (core_open(&g.cfg, g.l, &g.core) < 0)
        die("core_open");
    g.as = asrv_new(g.core);
    net_limits lim = {
        .max_frame_bytes = g.cfg.socket_request_max_bytes,
        .max_inflight = 128,
        .max_connections = 64,
    };
    if (net_server_new(g.l, "127.0.0.1", 0, &lim, &asrv_proto, g.as, &g.srv) < 0)
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

/* Open descriptors, not counting the files of durable queues' partitions:
 * inputs may declare durable queues and leave them, which is state the
 * broker must keep, not a leak. Sockets and every other file still count. */
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
            if (strstr(target, "/__amqp_q-"))
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int raw = size >= 4 && memcmp(data, "AMQP", 4) == 0;
    exchange(raw ? NULL : prelude, raw ? 0 : sizeof(prelude), data, size);
    if (++g.n_inputs % RESET_EVERY == 0) {
        int n = count_fds();
        if (!g.fd_baseline)
            g.fd_baseline = n;
        else if (n > g.fd_baseline + FD_SLACK) {
            fprintf(stderr, "fuzz_amqp_server: %d fds open, %d at first count\n", n,
                    g.fd_baseline);
            __builtin_trap();
        }
    }
    pass(0);
    return 0;
}
