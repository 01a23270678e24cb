/* cairn group reset-offsets: POST /groups/{g}/offsets
 * (src/http/hh_group_offsets.c), with the flags of Kafka's
 * kafka-consumer-groups.sh --reset-offsets (--to-earliest, --to-latest,
 * --to-offset N, --dry-run). Unlike Kafka's tool it commits without
 * --execute (as rpk does); --dry-run shows the plan only. The broker
 * refuses while the group has members (409), and the message says so. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

enum { OPT_TOPIC = CLI_OPT__FIRST_OWN, OPT_EARLIEST, OPT_LATEST, OPT_OFFSET, OPT_PARTS, OPT_DRY };

typedef struct reset_opts {
    const char *topic;
    const char *to;              /* "earliest", "latest", "offset"; NULL: none yet */
    int64_t offset;
    json_t *parts;               /* array, NULL: every partition */
    int dry_run;
} reset_opts;

static int set_to(cli *c, reset_opts *o, const char *to)
{
    if (o->to)
        return cli__usage(c, "one of --to-earliest, --to-latest, --to-offset");
    o->to = to;
    return 0;
}

static int parse_parts(cli *c, reset_opts *o, const char *arg)
{
    if (!o->parts)
        o->parts = json_array();
    char *copy = xstrdup(arg), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int64_t p;
        rc = cli__parse_i64(c, "--partitions", tok, &p);
        if (!rc)
            json_array_append_new(o->parts, json_integer(p));
    }
    if (!rc && json_array_size(o->parts) == 0)
        rc = cli__usage(c, "--partitions needs P,P,...");
    free(copy);
    return rc;
}

static int reset_opt(cli *c, int code, const char *arg, void *ctx)
{
    reset_opts *o = ctx;
    switch (code) {
    case OPT_TOPIC: o->topic = arg; return 0;
    case OPT_EARLIEST: return set_to(c, o, "earliest");
    case OPT_LATEST: return set_to(c, o, "latest");
    case OPT_OFFSET: {
        int rc = set_to(c, o, "offset");
        return rc ? rc : cli__parse_i64(c, "--to-offset", arg, &o->offset);
    }
    case OPT_PARTS: return parse_parts(c, o, arg);
    case OPT_DRY: o->dry_run = 1; return 0;
    default: return cli__usage(c, "unknown option");
    }
}

int cli__group_reset(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"to-earliest", no_argument, NULL, OPT_EARLIEST},
        {"to-latest", no_argument, NULL, OPT_LATEST},
        {"to-offset", required_argument, NULL, OPT_OFFSET},
        {"partitions", required_argument, NULL, OPT_PARTS},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {NULL, 0, NULL, 0},
    };
    reset_opts o = {0};
    json_t *body = NULL, *j = NULL;
    char *path = NULL;
    int first, rc = cli__parse(c, argc, argv, NULL, opts, reset_opt, &o, &first);
    if (rc) {
        rc = rc < 0 ? CLI_OK : rc;
        goto out;
    }
    if (argc - first != 1) {
        rc = cli__usage(c, argc - first < 1 ? "which group?" : "one group at a time");
        goto out;
    }
    if (!o.topic || !o.to) {
        rc = cli__usage(c, "--topic and one of --to-earliest, --to-latest, --to-offset N are "
                        "required");
        goto out;
    }
    const char *g = argv[first];
    body = json_object();
    json_object_set_new(body, "topic", json_string(o.topic));
    json_object_set_new(body, "to", json_string(o.to));
    if (strcmp(o.to, "offset") == 0)
        json_object_set_new(body, "offset", json_integer(o.offset));
    if (o.parts)
        json_object_set(body, "partitions", o.parts);
    if (o.dry_run)
        json_object_set_new(body, "dry_run", json_true());
    path = cli__path(c, "/groups/", g, "/offsets");
    if ((rc = cli__request(c, "POST", path, body, &j)))
        goto out;
    if (c->json) {
        cli__print_json(j);
        goto out;
    }
    static const char *const head[] = {"GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET",
                                       "NEW-OFFSET"};
    cli_table *t = cli__table_new(5, head);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "offsets"), i, e) {
        char b[3][32];
        const char *row[] = {g, o.topic,
                             cli__cell(json_object_get(e, "partition"), b[0], sizeof(b[0])),
                             cli__cell(json_object_get(e, "previous_offset"), b[1], sizeof(b[1])),
                             cli__cell(json_object_get(e, "offset"), b[2], sizeof(b[2]))};
        cli__table_add(t, row);
    }
    cli__table_print(t, stdout);
    cli__table_free(t);
    if (o.dry_run)
        printf("(dry run: nothing was committed)\n");
out:
    free(path);
    json_decref(o.parts);
    json_decref(body);
    json_decref(j);
    return rc;
}
