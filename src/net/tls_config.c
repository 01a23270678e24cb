/* TLS contexts from the ssl.* settings (contract in tls_config.h). */
#include "net/tls_config.h"

#include <string.h>

#include "util/common.h"
#include "util/slog.h"

int tls_ctx_from_config(const cairn_config *cfg, tls_use use, tls_ctx **out)
{
    tls_conf tc = {
        .cert_file = cfg->ssl_cert_location[0] ? cfg->ssl_cert_location : NULL,
        .key_file = cfg->ssl_key_location[0] ? cfg->ssl_key_location : NULL,
        .key_password = cfg->ssl_key_password[0] ? cfg->ssl_key_password : NULL,
        .ca_file = cfg->ssl_ca_location[0] ? cfg->ssl_ca_location : NULL,
        .client_auth = use == TLS_FOR_CLUSTER_ACCEPT ? TLS_AUTH_REQUIRED
                                                     : (tls_client_auth)cfg->ssl_client_auth,
        .server = use != TLS_FOR_CLUSTER_DIAL && use != TLS_FOR_RELAY_DIAL,
        .min_tls13 = strstr(cfg->ssl_enabled_protocols, "1.2") == NULL,
        .ciphers = cfg->ssl_cipher_suites[0] ? cfg->ssl_cipher_suites : NULL,
    };
    if (use == TLS_FOR_CLUSTER_DIAL || use == TLS_FOR_RELAY_DIAL)
        tc.client_auth = TLS_AUTH_NONE;
    if (use == TLS_FOR_RELAY_DIAL)
        tc.cert_file = tc.key_file = tc.key_password = NULL;
    char err[512];
    int rc = tls_ctx_new(&tc, out, err, sizeof(err));
    if (rc < 0)
        slog_error("TLS%s: %s", use == TLS_FOR_LISTENER ? "" : " (cluster)", err);
    return rc;
}
