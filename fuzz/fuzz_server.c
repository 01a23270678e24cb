/* libFuzzer harness for the whole request path: TCP bytes in, through the
 * net layer's framing, ksrv dispatch, the handlers and the broker, to the
 * log on disk.
 *
 * Once per process: a data directory from mkdtemp under /dev/shm, else /tmp
 * (removed at exit), a config with small segments, the loop, the broker, the Kafka front
 * end and a server on 127.0.0.1, port 0, with the Kafka protocol table. Per input: a fresh non-blocking
 * client connection writes the input as a byte stream of frames (when its
 * first 4 bytes are not a plausible frame size, the whole input is sent as
 * one frame), half-closes, and the loop is driven by hand (loop_run_once)
 * while the client reads and discards responses, until the server closes
 * the connection or a pass budget runs out. Then the client closes and the
 * loop runs a few passes more so the server reaps the connection.
 *
 * Bounded state across millions of inputs: parked fetches are answered after
 * every input (the fetch state is reset), and every RESET_EVERY inputs, or
 * sooner when more than MAX_TOPICS or MAX_PARTITIONS exist, every topic is deleted; after that
 * the open file descriptors are counted and a growth past FD_SLACK over the
 * first count traps (an fd leak). */
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

#include "core/core.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "net/loop.h"
#include "net/net.h"
#include "util/slog.h"

#define RESET_EVERY 512
#define MAX_TOPICS 32
#define MAX_PARTITIONS 4096  /* over all topics (each holds open files) */
#define FD_SLACK 64
#define MAX_PASSES 400       /* loop passes per input before giving up */
#define FAST_PASSES 50       /* passes that do not wait before 1 ms waits */

static struct {
    char dir[256];
    cairn_config cfg;
    loop *l;
    core *core;
    broker *b;
    ksrv *ks;
    net_server *srv;
    struct sockaddr_in addr;
    uint64_t n_inputs;
    int fd_baseline;         /* open fds after the first reset; 0 = not yet */
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
    fprintf(stderr, "fuzz_server: setup failed: %s\n", what);
    exit(1);
}

static void set(const char *key, const char *value)
{
    char err[256];
    if (config_set(&g.cfg, key, value, err, sizeof(err)) < 0)
        die(err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    slog_set_level(SLOG_ERROR);
    /* tmpfs when there is one: topic creation fsyncs, which on a disk makes
     * the harness ten times slower. FUZZ_SERVER_TMP overrides. */
    /* As the program does: a refusal answered after the failed-login
     * delay (auth/throttle.h) may be written after the client went away. */
    signal(SIGPIPE, SIG_IGN);
    const char *base = getenv("FUZZ_SERVER_TMP");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g.dir, sizeof(g.dir), "%s/cairn-fuzz-server-XXXXXX", base);
    if (!mkdtemp(g.dir))
        die("mkdtemp");
    atexit(remove_data_dir);
    config_init(&g.cfg);
    set("log.dirs", g.dir);
    set("auto.create.topics.enable", "true");
    set("log.segment.bytes", "1048576");
    set("log.flush.interval.ms", "50");
    set("connection.failed.authentication.delay.ms", "0"); /* failed SASL answered at once */
    if (loop_new(&g.l) < 0)
        die("loop_new");
    if (core_open(&g.cfg, g.l, &g.core) < 0)
        die("core_open");
    g.b = g.core->b;
    g.ks = ksrv_new(g.core);
    net_limits lim = {
        .max_frame_bytes = g.cfg.socket_request_max_bytes,
        .max_inflight = 128,
        .max_connections = 64,
    };
    if (net_server_new(g.l, "127.0.0.1", 0, &lim, &ksrv_proto, g.ks, &g.srv) < 0)
        die("net_server_new");
    broker_set_advertised(g.b, "127.0.0.1", net_server_port(g.srv));
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)net_server_port(g.srv));
    g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* 1 when data starts with a frame size the input can hold (>= 8, as the
 * server requires): then the input is sent as is. */
static int framed(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t n = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                 data[3];
    return n >= 8 && n <= size - 4;
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

static int32_t count_partitions(void)
{
    int32_t n = 0;
    for (topic *t = broker_topics(g.b); t; t = t->lnext)
        n += t->n_parts;
    return n;
}

static void delete_all_topics(void)
{
    topic *t = broker_topics(g.b);
    while (t) {
        topic *next = t->lnext;
        (void)broker_topic_delete(g.b, t);
        t = next;
    }
}

/* Send the pieces in order; between tries the loop runs and responses are
 * read, so neither side's socket buffer stays full. */
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
                continue;   /* keep writing while the socket takes it */
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ENOTCONN)
                part = 3;   /* the server closed on us */
        }
        pass(i);
        closed = drain(fd);
    }
    close(fd);
    for (int j = 0; j < 3; j++)
        pass(0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Delete every topic, let the loop settle, and check no fd was left open. */
static void reset_state(void)
{
    delete_all_topics();
    for (int i = 0; i < 3; i++)
        pass(0);
    int n = count_fds();
    if (!g.fd_baseline)
        g.fd_baseline = n;
    else if (n > g.fd_baseline + FD_SLACK) {
        fprintf(stderr, "fuzz_server: %d fds open, %d after the first reset\n", n, g.fd_baseline);
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t prefix[4];
    size_t prefix_len = 0;
    if (!framed(data, size)) {
        prefix[0] = (uint8_t)(size >> 24);
        prefix[1] = (uint8_t)(size >> 16);
        prefix[2] = (uint8_t)(size >> 8);
        prefix[3] = (uint8_t)size;
        prefix_len = 4;
    }
    exchange(prefix, prefix_len, data, size);
    /* Answer parked fetches now: their connection is gone. */
    kh_fetch_fini(g.ks);
    kh_fetch_init(g.ks);
    if (++g.n_inputs % RESET_EVERY == 0 || broker_topic_count(g.b) > MAX_TOPICS ||
        count_partitions() > MAX_PARTITIONS)
        reset_state();
    pass(0);
    return 0;
}
