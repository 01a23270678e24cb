/* Snapshots of a group (docs/cluster-plan.md section 3, "Snapshots"). A
 * partition's state is its log, so a snapshot is the log's anchor moved
 * forward (log.h "Raft snapshots"): retention takes one when it deletes
 * old segments (rg_compact), a replica that fell behind the leader's log
 * start gets one (InstallSnapshot) and restarts its log at the leader's,
 * and a restart after either gives libraft the anchor as its snapshot.
 *
 * The bytes repl keeps with a snapshot (log_raft_snap_bytes), big-endian:
 *   0   u64  conf_index  index of the configuration entry in force at the
 *                        snapshot's index
 *   8   u32  len
 *   12  len  that configuration, in libraft's encoding
 * InstallSnapshot's data (rg_msg.h carries it opaque):
 *   0   i64  offset      where the leader's log goes on after the snapshot
 *   8   u32  len
 *   12  len  the snapshot bytes above */
#include "repl/repl_int.h"

#include <stdlib.h>
#include <string.h>

#include "repl/rg_msg.h"
#include "util/bytes.h"
#include "util/common.h"
#include "util/slog.h"

#define SNAP_BYTES_HDR 12
#define SNAP_DATA_HDR 12

/* Decode a configuration checked by rg_conf_valid. 0 or -CN_ECORRUPT. */
static int conf_decode(const uint8_t *b, size_t len, struct raft_configuration *conf)
{
    raft_configuration_init(conf);
    struct raft_buffer buf = {(void *)(uintptr_t)b, len};
    if (!rg_conf_valid(b, len) || raft_configuration_decode(&buf, conf) != 0) {
        raft_configuration_close(conf);
        return -CN_ECORRUPT;
    }
    return 0;
}

/* Split snapshot bytes. 0 or -CN_ECORRUPT. */
static int bytes_parse(const uint8_t *b, uint32_t len, int64_t *conf_index, const uint8_t **conf,
                       uint32_t *conf_len)
{
    if (!b || len < SNAP_BYTES_HDR)
        return -CN_ECORRUPT;
    *conf_index = (int64_t)be_get64(b);
    *conf_len = be_get32(b + 8);
    if (*conf_len != len - SNAP_BYTES_HDR || *conf_index <= 0)
        return -CN_ECORRUPT;
    *conf = b + SNAP_BYTES_HDR;
    return 0;
}

/* The snapshot bytes for a snapshot at index (malloc'd into *out). The
 * configuration in force there is the last configuration entry <= index
 * still in the log, or else the one of the log's current snapshot. */
static int bytes_for(rg_group *g, int64_t index, uint8_t **out, uint32_t *out_len)
{
    log_raft_entry e;
    int64_t ci;
    const uint8_t *conf;
    uint32_t clen;
    if (log_raft_side_last(g->p, index, RG_SIDE_CHANGE, &e) == 0) {
        ci = e.index;
        conf = e.payload;
        clen = e.payload_len;
    } else {
        uint32_t len;
        const uint8_t *b = log_raft_snap_bytes(g->p, &len);
        if (bytes_parse(b, len, &ci, &conf, &clen) < 0)
            return -CN_ECORRUPT;
    }
    if (!rg_conf_valid(conf, clen) || (size_t)clen + SNAP_BYTES_HDR > LOG_RAFT_SNAP_MAX)
        return -CN_ECORRUPT;
    uint8_t *b = xmalloc(SNAP_BYTES_HDR + clen);
    be_put64(b, (uint64_t)ci);
    be_put32(b + 8, clen);
    memcpy(b + SNAP_BYTES_HDR, conf, clen);
    *out = b;
    *out_len = SNAP_BYTES_HDR + clen;
    return 0;
}

int rg__snap_metadata(rg_group *g, struct raft_snapshot_metadata *md)
{
    memset(md, 0, sizeof(*md));
    int64_t ai, at, ao;
    log_raft_anchor(g->p, &ai, &at, &ao);
    if (ai == 0)
        return -CN_ENOENT;
    uint32_t len, clen;
    const uint8_t *b = log_raft_snap_bytes(g->p, &len), *conf;
    int64_t ci;
    int rc = bytes_parse(b, len, &ci, &conf, &clen);
    if (rc == 0)
        rc = conf_decode(conf, clen, &md->configuration);
    if (rc < 0) {
        slog_error("repl: snapshot bytes unreadable group=%llu index=%lld",
                   (unsigned long long)g->id, (long long)ai);
        return rc;
    }
    md->index = (raft_index)ai;
    md->term = (raft_term)at;
    md->configuration_index = (raft_index)ci;
    return 0;
}

int rg_compact(rg_group *g, int64_t now)
{
    if (g->failed || g->n_pend)
        return 0;
    int64_t limit = CN_MIN((int64_t)raft_commit_index(&g->raft), log_raft_durable(g->p));
    int64_t index, offset;
    if (!log_raft_trim_point(g->p, now, limit, &index, &offset))
        return 0;
    uint8_t *b = NULL;
    uint32_t len = 0;
    int rc = bytes_for(g, index, &b, &len);
    if (rc == 0)
        rc = log_raft_compact(g->p, index, offset, b, len);
    free(b);
    struct raft_event ev = {.time = (raft_time)now, .type = RAFT_SNAPSHOT};
    if (rc == 0)
        rc = rg__snap_metadata(g, &ev.snapshot.metadata);
    if (rc < 0) {
        slog_error("repl: snapshot failed group=%llu index=%lld: %s", (unsigned long long)g->id,
                   (long long)index, cn_strerror(rc));
        if (rc == -CN_EIO || rc == -CN_ECORRUPT)
            g->failed = 1; /* storage: as any failed write */
        return rc;
    }
    ev.snapshot.trailing = 0;
    rg__group_step(g, &ev); /* libraft takes the configuration */
    return 1;
}

int rg__snap_fill(rg_group *g, struct raft_install_snapshot *a)
{
    struct raft_snapshot_metadata md;
    int rc = rg__snap_metadata(g, &md);
    if (rc < 0)
        return rc;
    if (md.index != a->last_index || md.term != a->last_term) {
        /* libraft names a snapshot this log no longer has (cannot happen
         * while every compaction is stepped at once): let it retry. */
        raft_configuration_close(&md.configuration);
        return -CN_ERANGE;
    }
    int64_t ai, at, ao;
    log_raft_anchor(g->p, &ai, &at, &ao);
    uint32_t len;
    const uint8_t *b = log_raft_snap_bytes(g->p, &len);
    uint8_t *data = raft_malloc(SNAP_DATA_HDR + len);
    if (!data) {
        raft_configuration_close(&md.configuration);
        return -CN_ENOMEM;
    }
    be_put64(data, (uint64_t)ao);
    be_put32(data + 8, len);
    memcpy(data + SNAP_DATA_HDR, b, len);
    a->conf = md.configuration;
    a->conf_index = md.configuration_index;
    a->data.base = data;
    a->data.len = SNAP_DATA_HDR + len;
    return 0;
}

int rg__snap_install(rg_group *g, const struct raft_update *up)
{
    const uint8_t *d = up->snapshot.chunk.base;
    size_t dlen = up->snapshot.chunk.len;
    const struct raft_snapshot_metadata *md = &up->snapshot.metadata;
    int rc = -CN_EPROTO;
    int64_t offset = 0, ci;
    const uint8_t *conf;
    uint32_t clen;
    if (up->snapshot.offset == 0 && up->snapshot.last && d && dlen >= SNAP_DATA_HDR &&
        be_get32(d + 8) == dlen - SNAP_DATA_HDR) {
        offset = (int64_t)be_get64(d);
        rc = bytes_parse(d + SNAP_DATA_HDR, (uint32_t)(dlen - SNAP_DATA_HDR), &ci, &conf, &clen);
        if (rc == 0 && (!rg_conf_valid(conf, clen) || offset < 0 || md->index == 0 ||
                        md->term == 0 || (int64_t)md->configuration_index != ci))
            rc = -CN_EPROTO;
    }
    if (rc == 0) {
        /* Before the reset: a sync it requests may complete inline (no
         * syncer) and must not report the snapshot's entries persisted. */
        g->reported = (int64_t)md->index;
        rc = log_raft_reset(g->p, (int64_t)md->index, (int64_t)md->term, offset,
                            d + SNAP_DATA_HDR, (uint32_t)(dlen - SNAP_DATA_HDR));
    }
    if (rc == 0) {
        g->n_changes = 0;
        g->n_starts = 0;
        slog_info("repl: installed a snapshot group=%llu index=%lld term=%lld offset=%lld",
                  (unsigned long long)g->id, (long long)md->index, (long long)md->term,
                  (long long)offset);
    }
    raft_free(up->snapshot.chunk.base);
    return rc;
}
