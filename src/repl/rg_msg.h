/* The wire form of one Raft message of one group (libraft's struct
 * raft_message), as replicas exchange them. The transport (cluster) frames
 * it and says who sent it; this codec knows nothing of sockets.
 *
 * All integers big-endian. Every message:
 *   0   u8   type        libraft's enum raft_message_type, 1..6
 *   1   u8   version     the message struct's version field
 *   2   u64  term
 * then by type:
 *   1 AppendEntries:        u64 prev_log_index, u64 prev_log_term,
 *                           u64 leader_commit, u32 n_entries, then n entries:
 *                             u64 term, u8 entry type (1 command, 2 barrier,
 *                             3 change), u32 len, len bytes (a command is one
 *                             record batch as stored; a change is the
 *                             configuration as raft_configuration_encode
 *                             writes it; a barrier is empty)
 *   2 AppendEntriesResult:  u64 rejected, u64 last_log_index, u16 features,
 *                           u16 capacity
 *   3 RequestVote:          u64 candidate_id, u64 last_log_index,
 *                           u64 last_log_term, u8 flags (1 disrupt_leader,
 *                           2 pre_vote)
 *   4 RequestVoteResult:    u8 flags (1 vote_granted, 2 pre_vote),
 *                           u16 features, u16 capacity
 *   5 InstallSnapshot:      u64 last_index, u64 last_term, u64 conf_index,
 *                           u32 conf_len, conf bytes (encoded configuration),
 *                           u32 data_len, data bytes
 *   6 TimeoutNow:           u64 last_log_index, u64 last_log_term
 * Nothing may follow. A message that breaks these rules (short, long,
 * unknown type or entry type, a count that cannot fit) is refused whole. */
#ifndef CAIRN_RG_MSG_H
#define CAIRN_RG_MSG_H
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "util/wbuf.h"

#define RG_MSG_MAX_ENTRIES 4096   /* per AppendEntries, far above libraft's window */

/* Entry `index` of an AppendEntries being encoded: libraft names the
 * entries (prev_log_index + 1 .. + n_entries) but leaves their contents to
 * the caller, so the encoder asks for each one (from the segment log or
 * raft.meta). Returns 0 with *term, *type, *out and *len set (bytes valid
 * until the next call), or -CN_E* to fail the encode. */
typedef int (*rg_entry_src)(void *arg, uint64_t index, uint64_t *term, enum raft_entry_type *type,
                            const uint8_t **out, size_t *len);

/* Append the encoding of m to w. AppendEntries: m->append_entries.entries
 * is not read (libraft leaves it unset in outgoing messages); entry i comes
 * from src. Returns 0 or the error of src; w may then hold a partial
 * message (reset it). */
int rg_msg_encode(wbuf *w, const struct raft_message *m, rg_entry_src src, void *src_arg);

/* Decode buf[0..len) into m (server_id/address are left for the caller).
 * AppendEntries entries go to *entries (grown with realloc, the caller's to
 * free) and their buffers point into buf: m is valid while buf is. Their
 * batch field points at buf too, which libraft would free: a caller that
 * steps the message gives the entries a raft_malloc'd block of their own
 * first (rg_group.c does).
 * InstallSnapshot's configuration is decoded into m->install_snapshot.conf
 * (the caller releases it with raft_configuration_close unless libraft took
 * it) and its data points into buf. Returns 0 or -CN_EPROTO. */
int rg_msg_decode(const uint8_t *buf, size_t len, struct raft_message *m,
                  struct raft_entry **entries, size_t *cap_entries);

#endif
