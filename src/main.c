/* cairn: entry point. A first word naming a client command (cli/cli.h:
 * topic, group, produce, consume) runs that client against a running broker
 * and exits; dev-cluster runs a local cluster. Otherwise this is the broker:
 * parses the command line and loads configuration, then builds the server
 * (server/server.h: loop, core, front ends, listeners) and runs it until
 * SIGINT or SIGTERM, then shuts down cleanly (every partition fsynced). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amqp/amqp.h"
#include "auth/scram.h"
#include "auth/users.h"
#include "cli/cli.h"
#include "config/config.h"
#include "core/core.h"
#include "http/http.h"
#include "kafka/kafka.h"
#include "net/loop.h"
#include "server/server.h"
#include "util/common.h"
#include "util/slog.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cairn [--config FILE] [--listen HOST:PORT] [--amqp-listen HOST:PORT ...]\n"
            "             [--http-listen HOST:PORT ...] [--data-dir DIR] [--set key=value ...]\n"
            "       cairn dev-cluster [--nodes N] [--base-port P] [--data-dir DIR]\n"
            "       cairn topic|group|produce|consume ... [--http HOST:PORT] [--json]\n"
            "                           a client of a running broker (cairn topic --help, ...)\n"
            "       cairn --help | --version\n\n"
            "Cairn is a message broker that speaks the Kafka protocol and AMQP 0-9-1. With\n"
            "no options it listens for Kafka on 127.0.0.1:9092, for AMQP on 127.0.0.1:5672\n"
            "and [::1]:5672, for HTTP on 127.0.0.1:8080, and keeps its data in ./data.\n\n"
            "  --config FILE       read key=value lines (Kafka broker property names)\n"
            "  --listen HOST:PORT  same as --set listeners=PLAINTEXT://HOST:PORT\n"
            "  --amqp-listen [amqps://]HOST:PORT\n"
            "                      AMQP address (amqps: TLS); repeatable: the first replaces\n"
            "                      the default amqp.listeners, later ones add to it; 'off'\n"
            "                      disables AMQP\n"
            "  --http-listen [https://]HOST:PORT\n"
            "                      HTTP address (REST API, /metrics, /healthz; https: TLS);\n"
            "                      repeatable like --amqp-listen (http.listeners); 'off'\n"
            "                      disables HTTP\n"
            "  --data-dir DIR      same as --set log.dirs=DIR\n"
            "  --node-id N         same as --set node.id=N\n"
            "  --cluster-listen HOST:PORT\n"
            "                      where the other nodes connect (cluster.listeners)\n"
            "  --peers ID@HOST:PORT,...\n"
            "                      the cluster's nodes, this one included (cluster.peers)\n"
            "  --join              join a running cluster whose nodes --peers names\n"
            "                      (cluster.join=true)\n"
            "  --set KEY=VALUE     set one property (applied after --config)\n"
            "  --help              this text and every property with its default\n"
            "  --version           print the version\n\n");
}

typedef struct sig_watch {
    loop_io io;
    srv *s;
} sig_watch;

static void on_signal(loop_io *io, uint32_t events)
{
    (void)events;
    sig_watch *w = io->data;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) { /* reload the TLS certificates */
            slog_info("received SIGHUP: reloading TLS certificates");
            srv_reload_tls(w->s);
            continue;
        }
        slog_info("received signal %u, shutting down", si.ssi_signo);
        srv_shutdown(w->s);
    }
}

static int apply(cairn_config *c, const char *key, const char *value)
{
    char err[256];
    if (config_set(c, key, value, err, sizeof(err)) < 0) {
        fprintf(stderr, "cairn: %s\n", err);
        return -1;
    }
    return 0;
}

/* cairn dev-cluster [--nodes N] [--base-port P] [--data-dir DIR]: N nodes of
 * one cluster on this machine for trying it out (issue 12): node i
 * (1..N) serves Kafka on 127.0.0.1:P+i-1 and its cluster listener on
 * 127.0.0.1:P+100+i-1, keeps its data in DIR/node-i, and has AMQP and HTTP
 * off (their state is per node until the cluster plan's step 7). Each node
 * is this program run again (/proc/self/exe) in its own process; SIGINT or
 * SIGTERM stops them all (SIGTERM each, then wait); the command ends when
 * every node has exited, with 1 if any exited with an error. */
static int dev_cluster(int argc, char **argv)
{
    int n = 3, base = 9092;
    const char *dir = "./cluster";
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--nodes") == 0 && v) {
            n = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--base-port") == 0 && v) {
            base = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--data-dir") == 0 && v) {
            dir = v;
            i++;
        } else {
            fprintf(stderr, "usage: cairn dev-cluster [--nodes N] [--base-port P] [--data-dir DIR]\n");
            return 2;
        }
    }
    if (n < 1 || n > CONFIG_MAX_PEERS || base < 1 || base + 100 + n > 65535) {
        fprintf(stderr, "cairn dev-cluster: --nodes 1..%d and a --base-port that leaves room\n",
                CONFIG_MAX_PEERS);
        return 2;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "cairn dev-cluster: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char peers[CONFIG_MAX_PEERS * 32] = "";
    for (int i = 1; i <= n; i++)
        snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers), "%s%d@127.0.0.1:%d",
                 i > 1 ? "," : "", i, base + 100 + i - 1);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    pid_t pids[CONFIG_MAX_PEERS];
    int alive = 0, failed = 0;
    for (int i = 1; i <= n; i++) {
        char id[16], listen[64], clisten[64], data[4200];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", base + i - 1);
        snprintf(clisten, sizeof(clisten), "127.0.0.1:%d", base + 100 + i - 1);
        snprintf(data, sizeof(data), "%s/node-%d", dir, i);
        char *args[] = {argv[0], "--node-id", id, "--listen", listen, "--cluster-listen", clisten,
                        "--peers", peers, "--data-dir", data, "--amqp-listen", "off",
                        "--http-listen", "off", NULL};
        pid_t pid = fork();
        if (pid == 0) {
            sigprocmask(SIG_UNBLOCK, &mask, NULL);
            execv("/proc/self/exe", args);
            _exit(127);
        }
        if (pid < 0) {
            fprintf(stderr, "cairn dev-cluster: fork: %s\n", strerror(errno));
            failed = 1;
            break;
        }
        pids[alive++] = pid;
    }
    fprintf(stderr, "cairn dev-cluster: %d node(s); Kafka bootstrap ", alive);
    for (int i = 0; i < alive; i++)
        fprintf(stderr, "%s127.0.0.1:%d", i ? "," : "", base + i);
    fprintf(stderr, "; data in %s; Ctrl-C stops all\n", dir);
    int stopping = failed;
    if (failed)
        for (int i = 0; i < alive; i++)
            kill(pids[i], SIGTERM);
    int left = alive;
    while (left > 0) {
        int sig;
        if (sigwait(&mask, &sig) != 0)
            continue;
        if ((sig == SIGINT || sig == SIGTERM) && !stopping) {
            stopping = 1;
            for (int i = 0; i < alive; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGTERM);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < alive; i++)
                if (pids[i] == pid) {
                    pids[i] = -1;
                    left--;
                    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        failed = 1;
                        fprintf(stderr, "cairn dev-cluster: node %d exited (status %d)\n", i + 1,
                                status);
                    }
                }
    }
    return failed ? 1 : 0;
}

/* cairn user add|delete|list ... --data-dir DIR: the users of a data
 * directory no broker has open (the lock says so), written the way the
 * broker writes them (auth/users.h) and fsynced before this returns.
 * Without --data-dir the command goes to a running broker (src/cli). */
typedef struct user_done {
    durable_wait w;               /* first */
    int done, status;
} user_done;

static void user_durable(durable_wait *w, int status)
{
    user_done *d = (user_done *)w;
    d->done = 1;
    d->status = status;
}

static void print_user(void *arg, const char *name, const scram_cred *c256,
                       const scram_cred *c512)
{
    (void)arg;
    printf("%-20s", name);
    if (c256)
        printf(" SCRAM-SHA-256 (%d)", c256->iterations);
    if (c512)
        printf(" SCRAM-SHA-512 (%d)", c512->iterations);
    printf("\n");
}

static int user_offline(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "", *dir = NULL, *pw = NULL, *mech = "all",
               *name = NULL;
    long iters = SCRAM_MIN_ITERATIONS;
    for (int i = 3; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--data-dir") == 0 && v)
            dir = argv[++i];
        else if (strcmp(argv[i], "--password") == 0 && v)
            pw = argv[++i];
        else if (strcmp(argv[i], "--mechanism") == 0 && v)
            mech = argv[++i];
        else if (strcmp(argv[i], "--iterations") == 0 && v)
            iters = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "cairn user: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    int add = strcmp(sub, "add") == 0, del = strcmp(sub, "delete") == 0;
    if ((!add && !del && strcmp(sub, "list") != 0) || ((add || del) && !name) || (add && !pw)) {
        fprintf(stderr, "usage: cairn user add NAME --password PW [--mechanism SCRAM-SHA-256|"
                        "SCRAM-SHA-512|all] [--iterations N] --data-dir DIR\n"
                        "       cairn user delete NAME --data-dir DIR\n"
                        "       cairn user list --data-dir DIR\n");
        return 2;
    }
    if (add && strcmp(mech, "all") != 0 && !scram_mech_parse(mech, strlen(mech))) {
        fprintf(stderr, "cairn user: --mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or all\n");
        return 2;
    }
    if (add && (iters < SCRAM_MIN_ITERATIONS || iters > SCRAM_MAX_ITERATIONS)) {
        fprintf(stderr, "cairn user: --iterations: %d..%d\n", SCRAM_MIN_ITERATIONS,
                SCRAM_MAX_ITERATIONS);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-0", dir, BROKER_CLUSTER_META_TOPIC);
    struct stat st;
    if (stat(path, &st) == 0) {
        fprintf(stderr, "cairn user: %s belongs to a cluster node: its users live in the "
                        "cluster's metadata log; add them through a running node "
                        "(cairn user add ... --http HOST:PORT)\n", dir);
        return 1;
    }
    slog_set_level(SLOG_ERROR);
    cairn_config cfg;
    config_init(&cfg);
    char err[256];
    loop *l = NULL;
    core *c = NULL;
    int rc = 1;
    if (config_set(&cfg, "log.dirs", dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "cairn user: %s\n", err);
        goto out;
    }
    if (loop_new(&l) < 0 || core_open(&cfg, l, &c) < 0) {
        fprintf(stderr, "cairn user: cannot open %s (in use by a running broker? then use "
                        "--http HOST:PORT)\n", dir);
        goto out;
    }
    if (!add && !del) {
        auth_users_each(c->users, print_user, NULL);
        rc = 0;
        goto out;
    }
    scram_cred cr[2];
    auth_user_change ch[2];
    int n = 0;
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
        if (del) {
            if (auth_users_find(c->users, name, (scram_mech)m))
                ch[n++] = (auth_user_change){name, (scram_mech)m, NULL};
            continue;
        }
        if (strcmp(mech, "all") != 0 && (int)scram_mech_parse(mech, strlen(mech)) != m)
            continue;
        if (scram_cred_make((scram_mech)m, pw, strlen(pw), NULL, 0, (int32_t)iters, &cr[n]) < 0)
            goto out;
        ch[n] = (auth_user_change){name, (scram_mech)m, &cr[n]};
        n++;
    }
    if (del && n == 0) {
        fprintf(stderr, "cairn user: user '%s' does not exist\n", name);
        goto out;
    }
    int64_t target = -1;
    if (auth_users_apply(c->users, ch, n, &target) < 0) {
        fprintf(stderr, "cairn user: cannot write the users log in %s\n", dir);
        goto out;
    }
    user_done d = {.done = 0};
    auth_users_wait(c->users, target, &d.w, user_durable);
    while (!d.done)
        loop_run_once(l, 100);
    if (d.status < 0) {
        fprintf(stderr, "cairn user: the users log could not be synced\n");
        goto out;
    }
    printf(del ? "user %s deleted\n" : "user %s: SCRAM credentials stored\n", name);
    rc = 0;
out:
    core_close(c);
    loop_free(l);
    config_fini(&cfg);
    return rc;
}

static int has_arg(int argc, char **argv, const char *a)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], a) == 0)
            return 1;
    return 0;
}

/* The broker's command line into cfg (config_init'ed by the caller): -1 to
 * go on and serve, or the exit status to end with at once (--help and
 * --version: 0; a bad argument: 2, after the message). The caller frees cfg
 * either way. */
static int parse_args(int argc, char **argv, cairn_config *cfg)
{
    const char *config_file = NULL;
    int amqp_flags = 0; /* --amqp-listen seen so far */
    int http_flags = 0; /* --http-listen seen so far */
    /* First pass: --help, --version, --config (file values come before overrides). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            config_print_help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("cairn %s\n", CAIRN_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cairn: --config needs a file\n");
                return 2;
            }
            config_file = argv[++i];
        }
    }
    if (config_file) {
        char err[512];
        if (config_load_file(cfg, config_file, err, sizeof(err)) < 0) {
            fprintf(stderr, "cairn: %s\n", err);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--config") == 0) {
            i++;
        } else if (strcmp(a, "--listen") == 0 && v) {
            char buf[300];
            snprintf(buf, sizeof(buf), "PLAINTEXT://%s", v);
            if (apply(cfg, "listeners", buf) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--amqp-listen") == 0 && v) {
            /* The first replaces the list (config file's or default), later ones append. */
            char buf[1024];
            if (amqp_flags++ == 0 || strcmp(v, "off") == 0 || cfg->n_amqp == 0)
                snprintf(buf, sizeof(buf), "%s", v);
            else
                snprintf(buf, sizeof(buf), "%s,%s", cfg->amqp_listeners, v);
            if (apply(cfg, "amqp.listeners", buf) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--http-listen") == 0 && v) {
            /* As --amqp-listen: the first replaces the list, later ones append. */
            char buf[1024];
            if (http_flags++ == 0 || strcmp(v, "off") == 0 || cfg->n_http == 0)
                snprintf(buf, sizeof(buf), "%s", v);
            else
                snprintf(buf, sizeof(buf), "%s,%s", cfg->http_listeners, v);
            if (apply(cfg, "http.listeners", buf) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--data-dir") == 0 && v) {
            if (apply(cfg, "log.dirs", v) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--node-id") == 0 && v) {
            if (apply(cfg, "node.id", v) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--cluster-listen") == 0 && v) {
            if (apply(cfg, "cluster.listeners", v) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--peers") == 0 && v) {
            if (apply(cfg, "cluster.peers", v) < 0)
                return 2;
            i++;
        } else if (strcmp(a, "--join") == 0) {
            if (apply(cfg, "cluster.join", "true") < 0)
                return 2;
        } else if (strcmp(a, "--set") == 0 && v) {
            char kv[1024];
            snprintf(kv, sizeof(kv), "%s", v);
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "cairn: --set needs key=value, got '%s'\n", v);
                return 2;
            }
            *eq = '\0';
            if (apply(cfg, kv, eq + 1) < 0)
                return 2;
            i++;
        } else {
            fprintf(stderr, "cairn: unknown or incomplete argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* glibc's malloc gives blocks above its mmap threshold (128 KiB at first,
 * raised as such blocks are freed) their own mappings and returns free
 * memory at the heap's top beyond 128 KiB: the broker's large transient
 * buffers (request frames of up to a MiB read in, AppendEntries messages
 * and the per-peer output of a loop turn) then come back as fresh pages
 * each time, and the kernel zero-fills every page on first touch. Measured
 * (`bench/cluster.py --records 600000 --rounds 3 --kills 0`, 2026-12-05):
 * the leader spent about a fifth of its time in those page faults; with
 * the thresholds below, 3 nodes RF 3 wrote 1,125,792 / 146,140 rec/s at
 * 100 B / 1 KiB instead of 606,637 / 64,768 (single node, within this
 * machine's noise: 1,418,496 / 339,010 against 1,471,280 / 357,784).
 * Blocks under 32 MiB come from
 * the heap, and up to 64 MiB of free memory at its top stays. The server
 * only: an embedding host keeps its own allocator settings. */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "dev-cluster") == 0)
        return dev_cluster(argc, argv);
    if (argc > 1 && strcmp(argv[1], "user") == 0 && has_arg(argc, argv, "--data-dir"))
        return user_offline(argc, argv);
    /* Client commands (src/cli) before the broker's own flags. */
    if (argc > 1 && cli_is_command(argv[1]))
        return cli_main(argc, argv);
    cairn_config cfg;
    config_init(&cfg);
    int prc = parse_args(argc, argv, &cfg);
    if (prc >= 0) {
        config_fini(&cfg);
        return prc;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(cfg.log_level, levels[i]) == 0)
            slog_set_level((slog_level)i);

    signal(SIGPIPE, SIG_IGN);
    tune_malloc();
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    slog_info("cairn %s starting: data in %s", CAIRN_VERSION, cfg.log_dirs);
    /* The front ends this program serves, peers on one core. */
    static const srv_frontend *const frontends[] = {&ksrv_frontend, &asrv_frontend,
                                                    &hsrv_frontend};
    srv *server = NULL;
    if (srv_open(&cfg, frontends, (int)CN_ARRAY_LEN(frontends), &server) < 0) {
        config_fini(&cfg);
        return 1;
    }
    sig_watch sw = {.s = server};
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0 || loop_io_start(srv_loop(server), &sw.io, sfd, EPOLLIN, on_signal, &sw) < 0) {
        slog_error("cannot watch signals: %s", strerror(errno));
        srv_close(server);
        config_fini(&cfg);
        return 1;
    }
    int rc = srv_run(server);
    /* Parked fetches answer, then the broker fsyncs and completes parked
     * produces, and only then do the connections go (srv_close). */
    loop_io_stop(srv_loop(server), &sw.io);
    close(sfd);
    srv_close(server);
    config_fini(&cfg);
    slog_info("stopped");
    return rc < 0 ? 1 : 0;
}
