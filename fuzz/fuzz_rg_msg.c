/* libFuzzer harness for the Raft message codec (src/repl/rg_msg.c): what
 * a peer sends is decoded before libraft sees it. Any input is decoded;
 * one that decodes must encode back to exactly the same bytes (the codec
 * has one form per message), with its entries served back from the
 * decoded message. Crashes, sanitizer reports, leaks and round-trip
 * mismatches are findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repl/rg_msg.h"

static const struct raft_message *cur;

static int src(void *arg, uint64_t index, uint64_t *term, enum raft_entry_type *type,
               const uint8_t **out, size_t *len)
{
    (void)arg;
    const struct raft_append_entries *a = &cur->append_entries;
    uint64_t i = index - a->prev_log_index - 1;
    if (i >= a->n_entries)
        abort();
    *term = a->entries[i].term;
    *type = a->entries[i].type;
    *out = a->entries[i].buf.base;
    *len = a->entries[i].buf.len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct raft_entry *ents;
    static size_t cap;
    struct raft_message m;
    if (rg_msg_decode(data, size, &m, &ents, &cap) != 0)
        return 0;
    wbuf w;
    wbuf_init(&w);
    cur = &m;
    int rc = rg_msg_encode(&w, &m, src, NULL);
    if (m.type == RAFT_INSTALL_SNAPSHOT)
        raft_configuration_close(&m.install_snapshot.conf);
    /* A configuration may have more than one encoding (libraft's own
     * format); every other message must come back byte for byte. */
    if (rc != 0 || (m.type != RAFT_INSTALL_SNAPSHOT &&
                    (w.len != size || memcmp(w.buf, data, size) != 0)))
        abort();
    wbuf_fini(&w);
    return 0;
}
