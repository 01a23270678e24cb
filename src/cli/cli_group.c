/* cairn group list|describe|delete: the consumer-group admin endpoints
 * (GET /groups, GET/DELETE /groups/{g}; src/http/hh_groups.c) as tables
 * in the layout of kafka-consumer-groups.sh --describe, or the API's JSON
 * with --json. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

/* The single positional GROUP, or NULL after the usage message. */
static const char *one_group(cli *c, int argc, char **argv, int first, int *rc)
{
    if (argc - first != 1) {
        *rc = cli__usage(c, argc - first < 1 ? "which group?" : "one group at a time");
        return NULL;
    }
    return argv[first];
}

/* Print the rows of arr (objects) under head, one column per key. */
static void print_table(json_t *arr, int n, const char *const *head, const char *const *keys)
{
    cli_table *t = cli__table_new(n, head);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        char b[8][32];
        const char *row[8];
        for (int k = 0; k < n && k < 8; k++)
            row[k] = cli__cell(json_object_get(o, keys[k]), b[k], sizeof(b[k]));
        cli__table_add(t, row);
    }
    cli__table_print(t, stdout);
    cli__table_free(t);
}

int cli__group_list(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *j = NULL;
    if ((rc = cli__request(c, "GET", "/groups", NULL, &j)))
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        static const char *const head[] = {"GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"};
        static const char *const keys[] = {"group_id", "state", "protocol_type", "members"};
        print_table(json_object_get(j, "groups"), 4, head, keys);
    }
    json_decref(j);
    return CLI_OK;
}

int cli__group_describe(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    const char *g = one_group(c, argc, argv, first, &rc);
    if (!g)
        return rc;
    char *path = cli__path(c, "/groups/", g, "");
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
    char b[32];
    const char *ptype = json_string_value(json_object_get(j, "protocol_type"));
    const char *proto = json_string_value(json_object_get(j, "protocol"));
    json_t *members = json_object_get(j, "members");
    printf("group       %s\n", cli__cell(json_object_get(j, "group_id"), b, sizeof(b)));
    printf("state       %s\n", cli__cell(json_object_get(j, "state"), b, sizeof(b)));
    printf("protocol    %s%s%s\n", ptype && ptype[0] ? ptype : "-",
           proto && proto[0] ? " / " : "", proto && proto[0] ? proto : "");
    printf("generation  %s\n", cli__cell(json_object_get(j, "generation"), b, sizeof(b)));
    printf("members     %zu\n", json_array_size(members));
    printf("total lag   %s\n", cli__cell(json_object_get(j, "total_lag"), b, sizeof(b)));
    if (json_array_size(members)) {
        static const char *const head[] = {"MEMBER-ID", "CLIENT-ID", "HOST", "INSTANCE-ID"};
        static const char *const keys[] = {"member_id", "client_id", "client_host",
                                           "instance_id"};
        printf("\n");
        print_table(members, 4, head, keys);
    }
    printf("\n");
    static const char *const head[] = {"TOPIC", "PARTITION", "COMMITTED-OFFSET", "LOG-END-OFFSET",
                                       "LAG"};
    static const char *const keys[] = {"topic", "partition", "committed_offset",
                                       "log_end_offset", "lag"};
    print_table(json_object_get(j, "offsets"), 5, head, keys);
    json_decref(j);
    return CLI_OK;
}

int cli__group_delete(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    const char *g = one_group(c, argc, argv, first, &rc);
    if (!g)
        return rc;
    char *path = cli__path(c, "/groups/", g, "");
    json_t *j = NULL;
    rc = cli__request(c, "DELETE", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("deleted group %s\n", g);
    json_decref(j);
    return CLI_OK;
}
