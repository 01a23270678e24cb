/* raft.votes: the term and vote of every group of this node, one file.
 *
 * Format: pairs of 32-byte slots, pair k at byte 64*k, one pair per group
 * (in the order groups were first seen; a pair is never moved):
 *   0   u64  group id
 *   8   u64  term
 *   16  u64  voted for (node id, 0 none)
 *   24  u32  sequence (newest wins)
 *   28  u32  CRC-32C of bytes [0, 28)
 * all big-endian. A write goes to the slot the group did not write last
 * (sequence + 1, slot (sequence + 1) % 2), so a torn write leaves the other
 * slot intact: loading takes the valid slot with the higher sequence. A
 * pair with no valid slot is corruption (-CN_ECORRUPT) unless it is all
 * zeros (allocated, never written: term 0). Written with pwrite, made
 * durable by one fdatasync per loop turn for every group whose term or vote
 * changed (rg_node_flush), on the syncer threads. */
#include "repl/repl_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/common.h"
#include "util/crc32c.h"
#include "util/fault.h"
#include "util/slog.h"

#define VS_SLOT 32
#define VS_PAIR 64

static int slot_valid(const uint8_t *b)
{
    return crc32c(0, b, 28) == be_get32(b + 28);
}

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static rg_vslot *slot_push(rg_node *n)
{
    if (n->n_slots == n->cap_slots) {
        n->cap_slots = n->cap_slots ? n->cap_slots * 2 : 16;
        n->slots = xrealloc(n->slots, n->cap_slots * sizeof(*n->slots));
    }
    rg_vslot *s = &n->slots[n->n_slots++];
    memset(s, 0, sizeof(*s));
    return s;
}

int rg__votes_open(rg_node *n)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/raft.votes", n->dir) >= (int)sizeof(path))
        return -CN_EINVAL;
    n->votes_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (n->votes_fd < 0) {
        slog_error("raft.votes open failed path=%s err=%d", path, errno);
        return -CN_EIO;
    }
    struct stat st;
    if (fstat(n->votes_fd, &st) < 0)
        return -CN_EIO;
    int64_t pairs = st.st_size / VS_PAIR;
    uint8_t b[VS_PAIR];
    for (int64_t k = 0; k < pairs; k++) {
        if (pread(n->votes_fd, b, VS_PAIR, k * VS_PAIR) != VS_PAIR)
            return -CN_EIO;
        int v0 = slot_valid(b), v1 = slot_valid(b + VS_SLOT);
        if (!v0 && !v1) {
            if (all_zero(b, VS_PAIR))
                continue; /* allocated, never written */
            slog_error("raft.votes: pair %lld has no valid slot path=%s", (long long)k, path);
            return -CN_ECORRUPT;
        }
        const uint8_t *s = b;
        if (!v0 || (v1 && be_get32(b + VS_SLOT + 24) > be_get32(b + 24)))
            s = b + VS_SLOT;
        rg_vslot *v = slot_push(n);
        v->group_id = be_get64(s);
        v->term = be_get64(s + 8);
        v->vote = be_get64(s + 16);
        v->seq = be_get32(s + 24);
        v->pair = k;
    }
    /* A torn pair past the last whole one is dropped: it was never synced
     * whole, so the group it would name started from term 0. */
    n->next_pair = pairs;
    return 0;
}

void rg__votes_close(rg_node *n)
{
    if (n->votes_fd >= 0)
        close(n->votes_fd);
    n->votes_fd = -1;
    free(n->slots);
    n->slots = NULL;
    n->n_slots = n->cap_slots = 0;
}

size_t rg__votes_slot(rg_node *n, uint64_t group_id)
{
    for (size_t i = 0; i < n->n_slots; i++)
        if (n->slots[i].group_id == group_id)
            return i;
    rg_vslot *v = slot_push(n);
    v->group_id = group_id;
    v->pair = n->next_pair++;
    return n->n_slots - 1;
}

int rg__votes_set(rg_node *n, size_t i, uint64_t term, uint64_t vote)
{
    rg_vslot *v = &n->slots[i];
    uint32_t seq = v->seq + 1;
    uint8_t b[VS_SLOT];
    be_put64(b, v->group_id);
    be_put64(b + 8, term);
    be_put64(b + 16, vote);
    be_put32(b + 24, seq);
    be_put32(b + 28, crc32c(0, b, 28));
    off_t pos = (off_t)(v->pair * VS_PAIR + (int64_t)(seq % 2) * VS_SLOT);
    if (fault_pwrite(n->votes_fd, b, VS_SLOT, pos) != VS_SLOT) {
        slog_error("raft.votes write failed group=%llu err=%d", (unsigned long long)v->group_id,
                   errno);
        return -CN_EIO;
    }
    v->term = term;
    v->vote = vote;
    v->seq = seq;
    n->votes_gen++;
    return 0;
}

int rg__votes_sync_now(rg_node *n)
{
    if (fault_fdatasync(n->votes_fd) < 0)
        return -CN_EIO;
    if (!n->votes_inflight)
        n->votes_synced = n->votes_gen;
    return 0;
}

static void votes_done(void *arg, int status)
{
    rg_node *n = arg;
    n->votes_inflight = 0;
    if (n->dead) {
        free(n->dir);
        free(n);
        return;
    }
    if (status < 0) {
        /* A vote that may not be durable must never be acted on: every
         * group keeps its held messages; the node is stopped. */
        slog_error("raft.votes sync failed: replication stopped dir=%s", n->dir);
        return;
    }
    n->votes_synced = CN_MAX(n->votes_synced, n->votes_syncing);
    for (size_t i = 0; i < n->n_groups; i++)
        rg__group_release_held(n->groups[i]);
    if (n->votes_gen > n->votes_synced)
        rg__votes_sync_request(n);
}

void rg__votes_sync_request(rg_node *n)
{
    if (n->votes_inflight || n->votes_gen <= n->votes_synced)
        return;
    n->votes_inflight = 1;
    n->votes_syncing = n->votes_gen;
    if (log_syncer_fdatasync(n->syncer, n->votes_fd, votes_done, n) < 0) {
        n->votes_inflight = 0;
        slog_error("raft.votes sync submit failed dir=%s", n->dir);
    }
}
