/* cairn token create [--user NAME] [--ttl DURATION] [--description TEXT] |
 * list | delete ID: bearer tokens for the HTTP API through a running
 * broker (GET/POST /tokens, DELETE /tokens/{id}; src/http/hh_tokens.c).
 * create prints the token once (the broker keeps only its hash); a client
 * sends it as `Authorization: Bearer TOKEN`, and `cairn` itself uses
 * CAIRN_TOKEN from the environment. DURATION: N followed by s, m, h or d
 * (bare N: seconds); none: the token does not expire. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_int.h"

typedef struct create_opts {
    const char *user, *description;
    int64_t ttl_ms;
} create_opts;

static int parse_duration(cli *c, const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int64_t unit = 0;
    if (end != s && v > 0 && !errno) {
        if (!*end || strcmp(end, "s") == 0)
            unit = 1000;
        else if (strcmp(end, "m") == 0)
            unit = 60000;
        else if (strcmp(end, "h") == 0)
            unit = 3600000;
        else if (strcmp(end, "d") == 0)
            unit = 86400000;
    }
    if (!unit || v > INT64_MAX / 1000 / unit)
        return cli__usage(c, "--ttl needs a duration like 90s, 30m, 12h or 7d, not '%s'", s);
    *ms = (int64_t)v * unit;
    return 0;
}

static int create_opt(cli *c, int code, const char *arg, void *ctx)
{
    create_opts *o = ctx;
    if (code == 'u')
        o->user = arg;
    else if (code == 'd')
        o->description = arg;
    else
        return parse_duration(c, arg, &o->ttl_ms);
    return 0;
}

/* "2026-12-06 23:10:00 UTC", or "never" for 0. */
static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (!ms) {
        snprintf(out, n, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int cli__token_create(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"ttl", required_argument, NULL, 't'},
        {"description", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    create_opts o = {NULL, NULL, 0};
    int first, rc = cli__parse(c, argc, argv, "u:t:d:", opts, create_opt, &o, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *body = json_object();
    if (o.user)
        json_object_set_new(body, "user", json_string(o.user));
    if (o.description)
        json_object_set_new(body, "description", json_string(o.description));
    json_object_set_new(body, "ttl_ms", json_integer(o.ttl_ms));
    json_t *j = NULL;
    rc = cli__request(c, "POST", "/tokens", body, &j);
    json_decref(body);
    if (rc)
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        char exp[40];
        fmt_time(json_integer_value(json_object_get(j, "expires_ms")), exp, sizeof(exp));
        /* the token alone on stdout (for $(...)); what it is on stderr */
        printf("%s\n", json_string_value(json_object_get(j, "token")));
        fprintf(stderr, "token %s for user %s, expires %s (shown once: keep it now)\n",
                json_string_value(json_object_get(j, "id")),
                json_string_value(json_object_get(j, "user")), exp);
    }
    json_decref(j);
    return CLI_OK;
}

int cli__token_list(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *j = NULL;
    if ((rc = cli__request(c, "GET", "/tokens", NULL, &j)))
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        static const char *const head[] = {"ID", "USER", "CREATED", "EXPIRES", "DESCRIPTION"};
        cli_table *t = cli__table_new(5, head);
        size_t i;
        json_t *tk;
        json_array_foreach(json_object_get(j, "tokens"), i, tk) {
            char cr[40], ex[48];
            fmt_time(json_integer_value(json_object_get(tk, "created_ms")), cr, sizeof(cr));
            fmt_time(json_integer_value(json_object_get(tk, "expires_ms")), ex, sizeof(ex));
            if (json_is_true(json_object_get(tk, "expired")))
                strncat(ex, " (expired)", sizeof(ex) - strlen(ex) - 1);
            const char *row[] = {json_string_value(json_object_get(tk, "id")),
                                 json_string_value(json_object_get(tk, "user")), cr, ex,
                                 json_string_value(json_object_get(tk, "description"))};
            cli__table_add(t, row);
        }
        cli__table_print(t, stdout);
        cli__table_free(t);
    }
    json_decref(j);
    return CLI_OK;
}

int cli__token_delete(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, "want one token ID (cairn token list shows them)");
    char *path = cli__path(c, "/tokens/", argv[first], "");
    json_t *j = NULL;
    rc = cli__request(c, "DELETE", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("token %s deleted\n", argv[first]);
    json_decref(j);
    return CLI_OK;
}
