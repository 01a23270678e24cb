/* Private to the command-line client (cli.h): the client state every
 * command gets, the HTTP calls (cli_http.c), tables and JSON output
 * (cli_out.c), base64 (cli_b64.c) and the commands, one file per family.
 *
 * Error convention: functions that report a failure themselves (a line on
 * stderr naming the command) return the exit status to end with (CLI_FAIL
 * or CLI_USAGE), 0 on success; callers return it unchanged. */
#ifndef CAIRN_CLI_INT_H
#define CAIRN_CLI_INT_H
#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/common.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

#define CLI_DEFAULT_HTTP "127.0.0.1:8080"

typedef struct cli {
    char prog[64];               /* "cairn topic create": prefix of every message */
    const char *usage;           /* the command's usage text */
    char *base;                  /* "http://127.0.0.1:8080" (owned, no trailing '/') */
    int json;                    /* --json */
    void *curl;                  /* CURL easy handle, reused (keep-alive) */
} cli;

/* A command: argv[0] is its last word ("create"), options anywhere after. */
typedef int (*cli_cmd_fn)(cli *c, int argc, char **argv);

/* Messages (cli.c) ------------------------------------------------------------------- */
/* "PROG: message" on stderr; returns CLI_FAIL. */
int cli__fail(cli *c, const char *fmt, ...) CN_PRINTF(2, 3);
/* "PROG: message", then the command's usage, on stderr; returns CLI_USAGE. */
int cli__usage(cli *c, const char *fmt, ...) CN_PRINTF(2, 3);

/* Options (cli.c) ---------------------------------------------------------------------- */
/* Parse argv[1..] with getopt_long (options may come before, between or
 * after the positional arguments; "--" ends them). The common options
 * (--http, --json, --help / -h) are handled here; each of the command's own
 * (own_opts, NULL-ended; shortopts for their short forms) goes to
 * own(c, code, optarg, ctx), which returns 0 or CLI_USAGE. Positional
 * arguments are left in argv[*out_first..argc) (getopt permutes argv).
 * Returns 0; -1 after printing the usage for --help (the command exits 0);
 * CLI_USAGE after the message for an unknown option or a missing value. */
typedef int (*cli_opt_fn)(cli *c, int code, const char *arg, void *ctx);
/* Codes of the common options; a command's own long-only options number
 * from CLI_OPT__FIRST_OWN (short ones use their character). */
enum { CLI_OPT_HTTP = 256, CLI_OPT_JSON, CLI_OPT_HELP, CLI_OPT__FIRST_OWN };
int cli__parse(cli *c, int argc, char **argv, const char *shortopts,
               const struct option *own_opts, cli_opt_fn own, void *ctx, int *out_first);
/* A non-negative integer option value (decimal, up to INT64_MAX); 0, or
 * CLI_USAGE after the message naming the option. */
int cli__parse_i64(cli *c, const char *name, const char *s, int64_t *out);

/* HTTP (cli_http.c) -------------------------------------------------------------------- */
/* One request to the broker: method and path ("/topics/x", already escaped;
 * query included), body (borrowed; NULL: none). On an answer of any status:
 * returns 0 with *out_status and *out_json (the parsed body, caller decrefs;
 * NULL when the body is not JSON). When the broker cannot be reached (refused,
 * timeout, reset): prints why and returns CLI_FAIL. */
int cli__call(cli *c, const char *method, const char *path, json_t *body, long *out_status,
              json_t **out_json);
/* cli__call for callers that only want success: a 2xx answer returns 0 with
 * *out_json (caller decrefs; may be NULL when out_json is NULL); any other
 * status prints the broker's JSON error ("PROG: message (error_code, HTTP
 * status)") and returns CLI_FAIL. */
int cli__request(cli *c, const char *method, const char *path, json_t *body, json_t **out_json);
/* Print the error of a non-2xx answer as cli__request does; returns CLI_FAIL. */
int cli__http_error(cli *c, long status, json_t *j);
/* The path before + name percent-encoded as one segment + after, e.g.
 * cli__path(c, "/topics/", "a b", "/records") is "/topics/a%20b/records"
 * (caller frees with free()). */
char *cli__path(cli *c, const char *before, const char *name, const char *after);
/* GET path as a stream (Server-Sent Events): on_line(ctx, line, len) for
 * every line of a 200 answer, the trailing LF (and CR) removed, line
 * NUL-terminated and valid during the call only. on_line returns 0 to go
 * on, CLI_STREAM_STOP to end the stream with success, or an exit status
 * (> 0) to end with it. headers: extra request header lines, NULL-ended, or
 * NULL. A non-200 answer is reported as cli__request does. Returns 0 after
 * CLI_STREAM_STOP, on_line's status, or CLI_FAIL when the broker could not
 * be reached or closed the stream (reported). */
typedef int (*cli_stream_fn)(void *ctx, const char *line, size_t len);
#define CLI_STREAM_STOP (-1)
int cli__stream(cli *c, const char *path, const char *const *headers, cli_stream_fn on_line,
                void *ctx);

/* Output (cli_out.c) ------------------------------------------------------------------- */
/* Print j (borrowed) indented on stdout, with a newline. */
void cli__print_json(const json_t *j);
/* A table printed with every column as wide as its widest cell, two spaces
 * apart, header first. Cells are copied. */
typedef struct cli_table cli_table;
cli_table *cli__table_new(int n_cols, const char *const *headers);
void cli__table_add(cli_table *t, const char *const *cells);     /* n_cols cells */
void cli__table_print(cli_table *t, FILE *out);
void cli__table_free(cli_table *t);
/* A JSON scalar as table text in buf: strings as they are, integers in
 * decimal, true/false, "-" for null, absent or the empty string. Returns buf (or the string). */
const char *cli__cell(const json_t *v, char *buf, size_t len);
/* stdout failed (a closed pipe, a full disk): 1, after the message. */
int cli__stdout_failed(cli *c);

/* Base64, standard alphabet with padding (cli_b64.c) ----------------------------------- */
/* Encode p[0..len) into a new NUL-terminated string (caller frees). */
char *cli__b64_encode(const void *p, size_t len);
/* Decode s into a new buffer (caller frees) and *out_len; NULL when s is not
 * valid base64. */
uint8_t *cli__b64_decode(const char *s, size_t *out_len);

/* Commands ----------------------------------------------------------------------------- */
int cli__topic_list(cli *c, int argc, char **argv);       /* cli_topic.c */
int cli__topic_create(cli *c, int argc, char **argv);
int cli__topic_describe(cli *c, int argc, char **argv);
int cli__topic_delete(cli *c, int argc, char **argv);
int cli__topic_move(cli *c, int argc, char **argv);        /* cli_move.c */
int cli__cluster_nodes(cli *c, int argc, char **argv);     /* cli_cluster.c */
int cli__cluster_remove(cli *c, int argc, char **argv);
int cli__group_list(cli *c, int argc, char **argv);       /* cli_group.c */
int cli__group_describe(cli *c, int argc, char **argv);
int cli__group_delete(cli *c, int argc, char **argv);
int cli__group_reset(cli *c, int argc, char **argv);      /* cli_group_reset.c */
int cli__produce(cli *c, int argc, char **argv);          /* cli_produce.c */
int cli__consume(cli *c, int argc, char **argv);          /* cli_consume.c */
int cli__user_add(cli *c, int argc, char **argv);         /* cli_user.c */
int cli__user_list(cli *c, int argc, char **argv);
int cli__user_delete(cli *c, int argc, char **argv);
int cli__acl_add(cli *c, int argc, char **argv);          /* cli_acl.c */
int cli__acl_list(cli *c, int argc, char **argv);
int cli__acl_delete(cli *c, int argc, char **argv);
int cli__token_create(cli *c, int argc, char **argv);      /* cli_token.c */
int cli__token_list(cli *c, int argc, char **argv);
int cli__token_delete(cli *c, int argc, char **argv);
#endif
