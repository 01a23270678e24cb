/* Opening and closing the core's services in order (contract in core.h). */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/common.h"
#include "util/slog.h"

int core_open(cairn_config *cfg, loop *l, core **out)
{
    core *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->l = l;
    c->lock_fd = -1;
    c->throttle = auth_throttle_new(cfg->auth_fail_delay_ms);
    char err[512];
    int rc = auth_pmap_new(cfg->ssl_principal_rules, &c->pmap, err, sizeof(err));
    if (rc < 0) {
        slog_error("%s", err);
        goto fail;
    }
    rc = broker_dir_lock(cfg->log_dirs, &c->lock_fd);
    if (rc < 0)
        goto fail;
    rc = cluster_open(cfg, l, &c->cl);
    if (rc < 0)
        goto fail;
    broker_repl repl = {0};
    if (c->cl) {
        repl.node = cluster_rg(c->cl);
        repl.nodes = cluster_node_ids(c->cl, &repl.n_nodes);
        repl.joined = cluster_joined(c->cl);
    }
    rc = broker_open_repl(cfg, l, c->cl ? &repl : NULL, &c->b);
    if (rc < 0)
        goto fail;
    if (c->cl) {
        /* Users and ACLs live in the metadata log in a cluster: their
         * tables take its records from the replay on (auth/astore.h). */
        c->users = auth_users_open_cluster(c->cl);
        c->acls = acl_open_cluster(c->cl);
        rc = cluster_meta_start(c->cl, c->b);
        if (rc < 0)
            goto fail;
    }
    /* In a cluster the committed offsets and the group coordinator live on
     * the leader of the replicated __consumer_offsets-0, the transaction
     * coordinator on the leader of the replicated __transaction_state-0
     * (cluster plan step 7), which follows the first (core_colocate). */
    rc = c->cl ? goff_open_replicated(c->b, &c->offsets) : goff_open(c->b, &c->offsets);
    if (rc < 0) {
        slog_error("cannot open the committed-offsets log: %s", cn_strerror(rc));
        goto fail;
    }
    c->groups = grp_coord_new(c->b, c->offsets);
    rc = c->cl ? txn_open_replicated(c->b, c->offsets, &c->txn)
               : txn_open(c->b, c->offsets, &c->txn);
    if (rc < 0) {
        slog_error("cannot open the transaction log: %s", cn_strerror(rc));
        goto fail;
    }
    /* The users (SASL) and the ACLs: a single node's own logs (in a
     * cluster, opened above). */
    if (!c->cl && (rc = auth_users_open(c->b, &c->users)) < 0) {
        slog_error("cannot open the users log: %s", cn_strerror(rc));
        goto fail;
    }
    if (!c->cl && (rc = acl_open(c->b, &c->acls)) < 0) {
        slog_error("cannot open the ACL log: %s", cn_strerror(rc));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    core_close(c);
    return rc;
}

void core_close(core *c)
{
    if (!c)
        return;
    auth_users_close(c->users);
    acl_close(c->acls);
    auth_pmap_free(c->pmap);
    auth_throttle_free(c->throttle);
    if (c->txn)
        txn_close(c->txn);
    if (c->groups)
        grp_coord_free(c->groups);
    if (c->offsets)
        goff_close(c->offsets);
    cluster_meta_stop(c->cl);
    if (c->b)
        broker_close(c->b);
    cluster_close(c->cl); /* after the broker: its partitions' groups are closed */
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* the data directory is free for another process */
    free(c);
}
