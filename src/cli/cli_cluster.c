/* cairn cluster nodes | remove-node ID: the cluster's members and the
 * removal of one (GET /cluster/nodes, DELETE /cluster/nodes/{id};
 * src/http/hh_nodes.c). remove-node returns once the controller recorded
 * the removal; the node's replicas then move to the other members in the
 * background, and `cairn cluster nodes` lists it as leaving until it is
 * gone. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli_int.h"

int cli__cluster_nodes(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (first != argc)
        return cli__usage(c, "unexpected argument '%s'", argv[first]);
    json_t *j = NULL;
    if ((rc = cli__request(c, "GET", "/cluster/nodes", NULL, &j)))
        return rc;
    if (c->json) {
        cli__print_json(j);
    } else {
        static const char *const head[] = {"ID", "KAFKA", "CONNECTED", "STATE", "CONTROLLER"};
        cli_table *t = cli__table_new(5, head);
        json_t *ctl = json_object_get(j, "controller");
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(j, "nodes"), i, o) {
            char id[32], kafka[128];
            json_int_t nid = json_integer_value(json_object_get(o, "id"));
            const char *kh = json_string_value(json_object_get(o, "kafka_host"));
            snprintf(id, sizeof(id), "%lld", (long long)nid);
            snprintf(kafka, sizeof(kafka), "%s:%lld", kh ? kh : "",
                     (long long)json_integer_value(json_object_get(o, "kafka_port")));
            const char *row[] = {id, kafka,
                                 json_is_true(json_object_get(o, "connected")) ? "yes" : "no",
                                 json_string_value(json_object_get(o, "state")),
                                 json_is_integer(ctl) && json_integer_value(ctl) == nid ? "*"
                                                                                        : ""};
            cli__table_add(t, row);
        }
        cli__table_print(t, stdout);
        cli__table_free(t);
    }
    json_decref(j);
    return CLI_OK;
}

int cli__cluster_remove(cli *c, int argc, char **argv)
{
    int first, rc = cli__parse(c, argc, argv, NULL, NULL, NULL, NULL, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, "want the ID of the node to remove");
    int64_t id;
    if ((rc = cli__parse_i64(c, "ID", argv[first], &id)))
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/cluster/nodes/%lld", (long long)id);
    json_t *j = NULL;
    if ((rc = cli__request(c, "DELETE", path, NULL, &j)))
        return rc;
    if (c->json)
        cli__print_json(j);
    else
        printf("node %lld is leaving: its replicas move to the other nodes\n", (long long)id);
    json_decref(j);
    return CLI_OK;
}
