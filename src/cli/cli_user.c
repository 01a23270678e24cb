/* cairn user add NAME --password PW [--mechanism SCRAM-SHA-256|SCRAM-SHA-512|all]
 *                [--iterations N] | list | delete NAME: the users SASL checks
 * against, through a running broker's HTTP API (GET/POST /users,
 * DELETE /users/{name}; src/http/hh_users.c). The broker derives the SCRAM
 * credentials and stores no password; add returns once they are fsynced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

int cli__user_list(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *j = NULL;
    if ((rc = cli__request(c, "GET", "/users", NULL, &j)))
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        static const char *const head[] = {"NAME", "MECHANISMS"};
        cli_table *t = cli__table_new(2, head);
        size_t i, k;
        json_t *u, *m;
        json_array_foreach(json_object_get(j, "users"), i, u) {
            char mechs[200] = "";
            json_array_foreach(json_object_get(u, "mechanisms"), k, m) {
                size_t l = strlen(mechs);
                snprintf(mechs + l, sizeof(mechs) - l, "%s%s (%lld)", k ? ", " : "",
                         json_string_value(json_object_get(m, "mechanism")),
                         (long long)json_integer_value(json_object_get(m, "iterations")));
            }
            const char *row[] = {json_string_value(json_object_get(u, "name")), mechs};
            cli__table_add(t, row);
        }
        cli__table_print(t, stdout);
        cli__table_free(t);
    }
    json_decref(j);
    return CLI_OK;
}

typedef struct add_opts {
    const char *password, *mechanism;
    int64_t iterations;
} add_opts;

static int add_opt(cli *c, int code, const char *arg, void *ctx)
{
    add_opts *o = ctx;
    if (code == 'p')
        o->password = arg;
    else if (code == 'm')
        o->mechanism = arg;
    else
        return cli__parse_i64(c, "--iterations", arg, &o->iterations);
    return 0;
}

int cli__user_add(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"password", required_argument, NULL, 'p'},
        {"mechanism", required_argument, NULL, 'm'},
        {"iterations", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    add_opts o = {NULL, "all", 4096};
    int first, rc = cli__parse(c, argc, argv, "p:m:i:", opts, add_opt, &o, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, "want one user NAME");
    if (!o.password)
        return cli__usage(c, "--password is required");
    json_t *body = json_object();
    json_object_set_new(body, "name", json_string(argv[first]));
    json_object_set_new(body, "password", json_string(o.password));
    json_object_set_new(body, "mechanism", json_string(o.mechanism));
    json_object_set_new(body, "iterations", json_integer(o.iterations));
    json_t *j = NULL;
    rc = cli__request(c, "POST", "/users", body, &j);
    json_decref(body);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("user %s: SCRAM credentials stored\n", argv[first]);
    json_decref(j);
    return CLI_OK;
}

int cli__user_delete(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, "want one user NAME");
    char *path = cli__path(c, "/users/", argv[first], "");
    json_t *j = NULL;
    rc = cli__request(c, "DELETE", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("user %s deleted\n", argv[first]);
    json_decref(j);
    return CLI_OK;
}
