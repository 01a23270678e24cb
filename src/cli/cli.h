/* The command-line client of a running broker (issue 11, docs/http-plan.md
 * slice 5): `cairn topic|group|produce|consume ...` talk to the broker's
 * HTTP API (src/http) over libcurl, like Redpanda's rpk. It is a client
 * program in the same binary, not part of the broker: it shares no state
 * with the server and includes only util.
 *
 *   cairn topic list|create|describe|delete ...
 *   cairn group list|describe|reset-offsets|delete ...
 *   cairn produce TOPIC     one record per stdin line
 *   cairn consume TOPIC     one record per stdout line
 * Common options: --http HOST:PORT (or a URL; default $CAIRN_HTTP, else
 * 127.0.0.1:8080), --json (the API's JSON instead of tables), --help.
 *
 * Exit status: 0 success; 1 the broker could not be reached, answered an
 * error (its JSON message is printed on stderr), or the output could not be
 * written; 2 bad usage (the usage text goes to stderr). */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

/* 1 when word (argv[1]) names a client command, so main dispatches to
 * cli_main before parsing the broker's own flags; 0 otherwise. */
int cli_is_command(const char *word);

/* Run the command in argv[1..] (argv[1] a word cli_is_command accepts) and
 * return the process exit status above. Blocking; writes to stdout and
 * stderr; main thread only (it sets up libcurl globally). */
int cli_main(int argc, char **argv);
#endif
