/* cairn topic list|create|describe|delete: the topic admin endpoints
 * (GET/POST /topics, GET/DELETE /topics/{t}; src/http/hh_topics.c) as
 * tables or, with --json, the API's JSON unchanged. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

/* The single positional NAME of a command, or NULL after the usage message. */
static const char *one_name(cli *c, int argc, char **argv, int first, int *rc)
{
    if (argc - first != 1) {
        *rc = cli__usage(c, argc - first < 1 ? "which topic?" : "one topic at a time");
        return NULL;
    }
    return argv[first];
}

int cli__topic_list(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *j = NULL;
    if ((rc = cli__request(c, "GET", "/topics", NULL, &j)))
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        static const char *const head[] = {"NAME", "PARTITIONS"};
        cli_table *t = cli__table_new(2, head);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(j, "topics"), i, o) {
            char b[32];
            const char *row[] = {json_string_value(json_object_get(o, "name")),
                                 cli__cell(json_object_get(o, "partitions"), b, sizeof(b))};
            cli__table_add(t, row);
        }
        cli__table_print(t, stdout);
        cli__table_free(t);
    }
    json_decref(j);
    return CLI_OK;
}

typedef struct create_opts {
    int64_t partitions;          /* -1: the broker's num.partitions */
    json_t *configs;
} create_opts;

static int create_opt(cli *c, int code, const char *arg, void *ctx)
{
    create_opts *o = ctx;
    if (code == 'p')
        return cli__parse_i64(c, "--partitions", arg, &o->partitions);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli__usage(c, "--config needs KEY=VALUE, not '%s'", arg);
    char *key = xstrdup(arg);
    key[eq - arg] = '\0';
    json_object_set_new(o->configs, key, json_string(eq + 1));
    free(key);
    return 0;
}

int cli__topic_create(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    create_opts o = {-1, json_object()};
    json_t *body = NULL, *j = NULL;
    int first, rc = cli__parse(c, argc, argv, "p:c:", opts, create_opt, &o, &first);
    if (rc) {
        rc = rc < 0 ? CLI_OK : rc;
        goto out;
    }
    const char *name = one_name(c, argc, argv, first, &rc);
    if (!name)
        goto out;
    body = json_object();
    json_object_set_new(body, "name", json_string(name));
    if (o.partitions >= 0)
        json_object_set_new(body, "partitions", json_integer(o.partitions));
    if (json_object_size(o.configs))
        json_object_set(body, "configs", o.configs);
    if ((rc = cli__request(c, "POST", "/topics", body, &j)))
        goto out;
    if (c->json)
        cli__print_json(j);
    else
        printf("created topic %s with %lld partition(s)\n", name,
               (long long)json_integer_value(json_object_get(j, "partitions")));
out:
    json_decref(o.configs);
    json_decref(body);
    json_decref(j);
    return rc;
}

static void print_configs(json_t *configs)
{
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(configs, key, v) {
        if (json_is_true(json_object_get(v, "default")))
            continue;
        char b[32];
        printf("%s  %s=%s\n", n++ ? "       " : "configs", key,
               cli__cell(json_object_get(v, "value"), b, sizeof(b)));
    }
    if (!n)
        printf("configs  (all default)\n");
}

int cli__topic_describe(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    const char *name = one_name(c, argc, argv, first, &rc);
    if (!name)
        return rc;
    char *path = cli__path(c, "/topics/", name, "");
    json_t *j = NULL;
    rc = cli__request(c, "GET", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    if (c->json) {
        cli__print_json(j);
        json_decref(j);
        return CLI_OK;
    }
    json_t *parts = json_object_get(j, "partitions");
    printf("topic       %s\n", json_string_value(json_object_get(j, "name")));
    printf("topic id    %s\n", json_string_value(json_object_get(j, "topic_id")));
    printf("partitions  %zu\n", json_array_size(parts));
    print_configs(json_object_get(j, "configs"));
    printf("\n");
    static const char *const head[] = {"PARTITION", "LOG-START", "LOG-END", "HIGH-WATERMARK",
                                       "LAST-STABLE", "SIZE-BYTES", "LEADER", "REPLICAS",
                                       "MOVING-TO"};
    static const char *const keys[] = {"partition", "log_start_offset", "log_end_offset",
                                       "high_watermark", "last_stable_offset", "size_bytes",
                                       "leader", "replicas", "moving_to"};
    /* A cluster's partitions have replicas (and a move its target): their
     * columns appear only then, so a single node's table is as before. */
    int cols = 6;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        if (json_object_get(p, "replicas"))
            cols = CN_MAX(cols, 8);
        if (json_object_get(p, "moving_to"))
            cols = 9;
    }
    cli_table *t = cli__table_new(cols, head);
    json_array_foreach(parts, i, p) {
        char b[9][160];
        const char *row[9];
        for (int k = 0; k < cols; k++) {
            json_t *v = json_object_get(p, keys[k]);
            if (json_is_array(v)) {
                size_t n = 0, x;
                json_t *id;
                b[k][0] = '\0';
                json_array_foreach(v, x, id) {
                    if (n >= sizeof(b[k]))
                        break;
                    n += (size_t)snprintf(b[k] + n, sizeof(b[k]) - n, "%s%lld", x ? "," : "",
                                          (long long)json_integer_value(id));
                }
                row[k] = b[k];
            } else {
                row[k] = cli__cell(v, b[k], sizeof(b[k]));
            }
        }
        cli__table_add(t, row);
    }
    cli__table_print(t, stdout);
    cli__table_free(t);
    json_decref(j);
    return CLI_OK;
}

int cli__topic_delete(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    const char *name = one_name(c, argc, argv, first, &rc);
    if (!name)
        return rc;
    char *path = cli__path(c, "/topics/", name, "");
    json_t *j = NULL;
    rc = cli__request(c, "DELETE", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("deleted topic %s\n", name);
    json_decref(j);
    return CLI_OK;
}
