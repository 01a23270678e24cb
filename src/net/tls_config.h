/* TLS contexts from the broker's ssl.* settings (config.h), for the
 * listeners of every front end and for the cluster transport. */
#ifndef CAIRN_NET_TLS_CONFIG_H
#define CAIRN_NET_TLS_CONFIG_H
#include "config/config.h"
#include "net/tls.h"

typedef enum {
    TLS_FOR_LISTENER = 0,       /* a client listener: ssl.client.auth as configured */
    TLS_FOR_CLUSTER_ACCEPT = 1, /* the cluster listener: client certificates required */
    TLS_FOR_CLUSTER_DIAL = 2,   /* dialing another node: its certificate checked, ours shown */
    TLS_FOR_RELAY_DIAL = 3,     /* a front end's relay to another node's listener: its
                                 * certificate checked, none shown (the relayed client
                                 * logs in on its own, never as this node) */
} tls_use;

/* 0 with *out made, or -CN_EINVAL with one error line logged ("TLS: ..."). */
int tls_ctx_from_config(const cairn_config *cfg, tls_use use, tls_ctx **out);
#endif
