/* The client's entry point: the command table (word, sub-command, handler,
 * usage), dispatch from argv, the options every command shares and the
 * messages. Each command runs once per process against one broker URL; the
 * libcurl handle lives from dispatch to exit. */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_int.h"

#define COMMON " [--http HOST:PORT] [--json]"

typedef struct cli_cmd {
    const char *word;            /* argv[1] */
    const char *sub;             /* argv[2]; NULL: the word alone is the command */
    cli_cmd_fn fn;
    const char *usage;
} cli_cmd;

static const cli_cmd cmds[] = {
    {"topic", "list", cli__topic_list, "cairn topic list" COMMON},
    {"topic", "create", cli__topic_create,
     "cairn topic create NAME [-p|--partitions N] [-c|--config KEY=VALUE]..." COMMON},
    {"topic", "describe", cli__topic_describe, "cairn topic describe NAME" COMMON},
    {"topic", "delete", cli__topic_delete, "cairn topic delete NAME" COMMON},
    {"topic", "move", cli__topic_move,
     "cairn topic move NAME PARTITION REPLICAS|--cancel   (REPLICAS: node ids, like 3,1,2)"
     COMMON},
    {"cluster", "nodes", cli__cluster_nodes, "cairn cluster nodes" COMMON},
    {"cluster", "remove-node", cli__cluster_remove,
     "cairn cluster remove-node ID   (its replicas move to the other nodes first)" COMMON},
    {"user", "add", cli__user_add,
     "cairn user add NAME --password PW [--mechanism SCRAM-SHA-256|SCRAM-SHA-512|all]"
     " [--iterations N]" COMMON},
    {"user", "list", cli__user_list, "cairn user list" COMMON},
    {"acl", "add", cli__acl_add,
     "cairn acl add --allow|--deny PRINCIPAL --operation OP [--operation OP]...\n"
     "      (--topic T | --group G | --transactional-id ID | --cluster) [--prefixed]"
     " [--host H]" COMMON},
    {"acl", "list", cli__acl_list,
     "cairn acl list [--principal P] [--topic T | --group G | ...] [--prefixed]" COMMON},
    {"acl", "delete", cli__acl_delete,
     "cairn acl delete [--principal P] [--operation OP] [--topic T | ...] [--prefixed]" COMMON},
    {"user", "delete", cli__user_delete, "cairn user delete NAME" COMMON},
    {"token", "create", cli__token_create,
     "cairn token create [--user NAME] [--ttl DURATION (90s, 30m, 12h, 7d)]"
     " [--description TEXT]" COMMON},
    {"token", "list", cli__token_list, "cairn token list" COMMON},
    {"token", "delete", cli__token_delete, "cairn token delete ID" COMMON},
    {"group", "list", cli__group_list, "cairn group list" COMMON},
    {"group", "describe", cli__group_describe, "cairn group describe GROUP" COMMON},
    {"group", "reset-offsets", cli__group_reset,
     "cairn group reset-offsets GROUP --topic TOPIC\n"
     "             (--to-earliest | --to-latest | --to-offset N) [--partitions P,P...]\n"
     "             [--dry-run]" COMMON},
    {"group", "delete", cli__group_delete, "cairn group delete GROUP" COMMON},
    {"produce", NULL, cli__produce,
     "cairn produce TOPIC [-K|--key-sep SEP] [-p|--partition P]" COMMON},
    {"consume", NULL, cli__consume,
     "cairn consume TOPIC [--from earliest|latest|OFFSET] [-p|--partition P]\n"
     "             [-n|--max N] [-f|--follow] [-K|--key-sep SEP]" COMMON},
};

static const char help_tail[] =
    "\nA client of a running broker's HTTP API (docs: README.md \"Command line\").\n"
    "  --http HOST:PORT  the broker's HTTP listener or a URL (default $CAIRN_HTTP, else "
    CLI_DEFAULT_HTTP ")\n"
    "  --json            print the API's JSON (consume: one record object a line)\n"
    "  produce           one record per stdin line; -K SEP splits KEY SEP VALUE at the first SEP\n"
    "  consume           one record value per stdout line (-K SEP: KEY SEP VALUE), from\n"
    "                    earliest by default; exits at the end of the log unless --follow\n"
    "Login (http.authentication=basic): $CAIRN_TOKEN (a bearer token), else $CAIRN_USER and\n"
    "$CAIRN_PASSWORD; $CAIRN_CACERT: the CA of an https:// broker.\n"
    "Exit status: 0 ok, 1 the broker failed or answered an error, 2 bad usage.\n";

/* Every usage line of the word's commands (all of them when word is NULL). */
static void print_usage(FILE *out, const char *word)
{
    const char *lead = "usage: ";
    for (size_t i = 0; i < CN_ARRAY_LEN(cmds); i++)
        if (!word || strcmp(cmds[i].word, word) == 0) {
            fprintf(out, "%s%s\n", lead, cmds[i].usage);
            lead = "       ";
        }
    fputs(help_tail, out);
}

int cli_is_command(const char *word)
{
    for (size_t i = 0; i < CN_ARRAY_LEN(cmds); i++)
        if (strcmp(cmds[i].word, word) == 0)
            return 1;
    return 0;
}

int cli__fail(cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

int cli__usage(cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", c->usage);
    va_end(ap);
    return CLI_USAGE;
}

static int set_base(cli *c, const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n == 0)
        return cli__usage(c, "--http needs HOST:PORT or a URL");
    const char *scheme = strstr(s, "://") ? "" : "http://";
    free(c->base);
    c->base = xmalloc(strlen(scheme) + n + 1);
    sprintf(c->base, "%s%.*s", scheme, (int)n, s);
    return 0;
}

int cli__parse_i64(cli *c, const char *name, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!s[0] || *end || errno || v < 0)
        return cli__usage(c, "%s needs a non-negative integer, not '%s'", name, s);
    *out = v;
    return 0;
}

int cli__parse(cli *c, int argc, char **argv, const char *shortopts,
               const struct option *own_opts, cli_opt_fn own, void *ctx, int *out_first)
{
    static const struct option common[] = {
        {"http", required_argument, NULL, CLI_OPT_HTTP},
        {"json", no_argument, NULL, CLI_OPT_JSON},
        {"help", no_argument, NULL, CLI_OPT_HELP},
    };
    int n_own = 0;
    while (own_opts && own_opts[n_own].name)
        n_own++;
    struct option *all = xcalloc((size_t)n_own + CN_ARRAY_LEN(common) + 1, sizeof(*all));
    if (n_own)
        memcpy(all, own_opts, (size_t)n_own * sizeof(*all));
    memcpy(all + n_own, common, sizeof(common));
    char shorts[64];
    /* ':' first: a missing value is ':' rather than '?'; 'h' is --help. */
    snprintf(shorts, sizeof(shorts), ":h%s", shortopts ? shortopts : "");
    opterr = 0;
    optind = 0;                  /* GNU: start over (permuting) */
    int rc = 0, opt;
    while (rc == 0 && (opt = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
        switch (opt) {
        case CLI_OPT_HTTP:
            rc = set_base(c, optarg);
            break;
        case CLI_OPT_JSON:
            c->json = 1;
            break;
        case CLI_OPT_HELP:
        case 'h':
            printf("usage: %s\n", c->usage);
            fputs(help_tail, stdout);
            rc = -1;
            break;
        case ':':
            rc = cli__usage(c, "option '%s' needs a value", argv[optind - 1]);
            break;
        case '?':
            if (optopt && optopt < 256)
                rc = cli__usage(c, "unknown option '-%c'", optopt);
            else
                rc = cli__usage(c, "unknown option '%s'", argv[optind - 1]);
            break;
        default:
            rc = own ? own(c, opt, optarg, ctx) : cli__usage(c, "unknown option");
            break;
        }
    }
    free(all);
    *out_first = optind;
    return rc;
}

int cli_main(int argc, char **argv)
{
    const char *word = argv[1];
    const cli_cmd *cmd = NULL;
    int has_sub = 0;
    for (size_t i = 0; i < CN_ARRAY_LEN(cmds); i++) {
        if (strcmp(cmds[i].word, word) != 0)
            continue;
        if (!cmds[i].sub) {
            cmd = &cmds[i];
            break;
        }
        has_sub = 1;
        if (argc > 2 && strcmp(cmds[i].sub, argv[2]) == 0) {
            cmd = &cmds[i];
            break;
        }
    }
    if (!cmd) {
        int help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        if (help) {
            print_usage(stdout, word);
            return CLI_OK;
        }
        if (argc > 2)
            fprintf(stderr, "cairn %s: unknown command '%s'\n", word, argv[2]);
        else
            fprintf(stderr, "cairn %s: which command?\n", word);
        print_usage(stderr, has_sub ? word : NULL);
        return CLI_USAGE;
    }
    int skip = cmd->sub ? 2 : 1;
    cli c = {.usage = cmd->usage};
    snprintf(c.prog, sizeof(c.prog), "cairn %s%s%s", cmd->word, cmd->sub ? " " : "",
             cmd->sub ? cmd->sub : "");
    const char *env = getenv("CAIRN_HTTP");
    int rc = set_base(&c, env && env[0] ? env : CLI_DEFAULT_HTTP);
    if (rc)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(c.curl = curl_easy_init())) {
        free(c.base);
        return cli__fail(&c, "cannot initialise libcurl");
    }
    rc = cmd->fn(&c, argc - skip, argv + skip);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    free(c.base);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = cli__stdout_failed(&c);
    return rc;
}
