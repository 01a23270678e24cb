/* GET /broker: who this node is and where it listens.
 * {"version", "node_id", "cluster_id", "data_dir", "uptime_ms", "topics",
 *  "listeners": [{"protocol", "host", "port", "connections",
 *                 "connections_accepted"}]} */
#include "http/http_int.h"

void hh_broker(hreq *q)
{
    hsrv *hs = q->hs;
    json_t *j = json_object();
    json_object_set_new(j, "version", json_string(CAIRN_VERSION));
    json_object_set_new(j, "node_id", json_integer(broker_node_id(hs->b)));
    json_object_set_new(j, "cluster_id", json_string(broker_cluster_id(hs->b)));
    json_object_set_new(j, "data_dir", json_string(hs->cfg->log_dirs));
    int64_t since = hs->server ? srv_started_ms(hs->server) : hs->created_ms;
    json_object_set_new(j, "uptime_ms", json_integer(loop_now_mono() - since));
    json_object_set_new(j, "topics", json_integer(broker_topic_count(hs->b)));
    json_t *ls = json_array();
    if (hs->server) {
        srv_listener_info info[32];
        int n = srv_listeners(hs->server, info, 32);
        for (int i = 0; i < n && i < 32; i++) {
            json_t *l = json_object();
            json_object_set_new(l, "protocol", json_string(info[i].frontend));
            json_object_set_new(l, "host", json_string(info[i].host));
            json_object_set_new(l, "port", json_integer(info[i].port));
            json_object_set_new(l, "connections", json_integer(info[i].conns_open));
            json_object_set_new(l, "connections_accepted",
                                json_integer((json_int_t)info[i].conns_accepted));
            json_array_append_new(ls, l);
        }
    }
    json_object_set_new(j, "listeners", ls);
    hh_reply_json(q, 200, j);
}
