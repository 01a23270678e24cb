/* cairn topic move NAME PARTITION REPLICAS | --cancel: move a partition's
 * replicas to other nodes of a cluster, or cancel the move that runs
 * (PUT/DELETE /topics/{t}/partitions/{p}/replicas; src/http/hh_moves.c).
 * REPLICAS is a comma list of node ids, the preferred leader first. The
 * command returns once the controller recorded the target; the move runs
 * in the background and `cairn topic describe` shows MOVING-TO until it
 * ends. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

enum { OPT_CANCEL = CLI_OPT__FIRST_OWN };

static int move_opt(cli *c, int code, const char *arg, void *ctx)
{
    (void)c, (void)arg;
    if (code == OPT_CANCEL)
        *(int *)ctx = 1;
    return 0;
}

/* "3,1,2" as a JSON array of node ids; NULL after the usage message. */
static json_t *parse_ids(cli *c, const char *s, int *rc)
{
    json_t *a = json_array();
    const char *p = s;
    while (*p) {
        char *end;
        long long id = strtoll(p, &end, 10);
        if (end == p || id < 0 || id > 2147483647LL || (*end != ',' && *end != '\0')) {
            json_decref(a);
            *rc = cli__usage(c, "replicas '%s': want node ids separated by commas, like 3,1,2", s);
            return NULL;
        }
        json_array_append_new(a, json_integer(id));
        p = *end == ',' ? end + 1 : end;
    }
    if (json_array_size(a) == 0) {
        json_decref(a);
        *rc = cli__usage(c, "which replicas?");
        return NULL;
    }
    return a;
}

int cli__topic_move(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"cancel", no_argument, NULL, OPT_CANCEL},
                                         {NULL, 0, NULL, 0}};
    int cancel = 0, first, rc = cli__parse(c, argc, argv, "", opts, move_opt, &cancel, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    int want = cancel ? 2 : 3;
    if (argc - first != want)
        return cli__usage(c, cancel ? "want NAME PARTITION with --cancel"
                                    : "want NAME PARTITION REPLICAS (or --cancel)");
    const char *name = argv[first], *part = argv[first + 1];
    int64_t p;
    if ((rc = cli__parse_i64(c, "PARTITION", part, &p)))
        return rc;
    json_t *body = NULL;
    if (!cancel) {
        json_t *ids = parse_ids(c, argv[first + 2], &rc);
        if (!ids)
            return rc;
        body = json_object();
        json_object_set_new(body, "replicas", ids);
    }
    char after[48];
    snprintf(after, sizeof(after), "/partitions/%lld/replicas", (long long)p);
    char *path = cli__path(c, "/topics/", name, after);
    json_t *j = NULL;
    rc = cli__request(c, cancel ? "DELETE" : "PUT", path, body, &j);
    free(path);
    json_decref(body);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else if (cancel)
        printf("move of %s-%lld cancelled: back to its replicas\n", name, (long long)p);
    else
        printf("moving %s-%lld to replicas %s (cairn topic describe %s shows MOVING-TO until "
               "it ends)\n", name, (long long)p, argv[first + 2], name);
    json_decref(j);
    return CLI_OK;
}
