/* Raft message codec (format in rg_msg.h). */
#include "repl/rg_msg.h"

#include <stdlib.h>
#include <string.h>

#include "util/bin.h"
#include "util/common.h"

int rg_msg_encode(wbuf *w, const struct raft_message *m, rg_entry_src src, void *src_arg)
{
    bin_put_i8(w, (int8_t)m->type);
    switch (m->type) {
    case RAFT_APPEND_ENTRIES: {
        const struct raft_append_entries *a = &m->append_entries;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i64(w, (int64_t)a->prev_log_index);
        bin_put_i64(w, (int64_t)a->prev_log_term);
        bin_put_i64(w, (int64_t)a->leader_commit);
        bin_put_i32(w, (int32_t)a->n_entries);
        for (unsigned i = 0; i < a->n_entries; i++) {
            uint64_t index = a->prev_log_index + 1 + i;
            uint64_t term = 0;
            enum raft_entry_type type = RAFT_COMMAND;
            const uint8_t *bytes = NULL;
            size_t len = 0;
            int rc = src(src_arg, index, &term, &type, &bytes, &len);
            if (rc < 0)
                return rc;
            bin_put_i64(w, (int64_t)term);
            bin_put_i8(w, (int8_t)type);
            bin_put_i32(w, (int32_t)len);
            bin_put_raw(w, bytes, len);
        }
        return 0;
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *a = &m->append_entries_result;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i64(w, (int64_t)a->rejected);
        bin_put_i64(w, (int64_t)a->last_log_index);
        bin_put_i16(w, (int16_t)a->features);
        bin_put_i16(w, (int16_t)a->capacity);
        return 0;
    }
    case RAFT_REQUEST_VOTE: {
        const struct raft_request_vote *a = &m->request_vote;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i64(w, (int64_t)a->candidate_id);
        bin_put_i64(w, (int64_t)a->last_log_index);
        bin_put_i64(w, (int64_t)a->last_log_term);
        bin_put_i8(w, (int8_t)((a->disrupt_leader ? 1 : 0) | (a->pre_vote ? 2 : 0)));
        return 0;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        const struct raft_request_vote_result *a = &m->request_vote_result;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i8(w, (int8_t)((a->vote_granted ? 1 : 0) | (a->pre_vote ? 2 : 0)));
        bin_put_i16(w, (int16_t)a->features);
        bin_put_i16(w, (int16_t)a->capacity);
        return 0;
    }
    case RAFT_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *a = &m->install_snapshot;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i64(w, (int64_t)a->last_index);
        bin_put_i64(w, (int64_t)a->last_term);
        bin_put_i64(w, (int64_t)a->conf_index);
        struct raft_buffer conf = {0};
        if (raft_configuration_encode(&a->conf, &conf) != 0)
            return -CN_ENOMEM;
        bin_put_i32(w, (int32_t)conf.len);
        bin_put_raw(w, conf.base, conf.len);
        raft_free(conf.base);
        bin_put_i32(w, (int32_t)a->data.len);
        bin_put_raw(w, a->data.base, a->data.len);
        return 0;
    }
    case RAFT_TIMEOUT_NOW: {
        const struct raft_timeout_now *a = &m->timeout_now;
        bin_put_i8(w, (int8_t)a->version);
        bin_put_i64(w, (int64_t)a->term);
        bin_put_i64(w, (int64_t)a->last_log_index);
        bin_put_i64(w, (int64_t)a->last_log_term);
        return 0;
    }
    }
    return -CN_EINVAL;
}

static uint64_t u64(bin_reader *r) { return (uint64_t)bin_i64(r); }

#define RG_CONF_MAX_SERVERS 1024

int rg_conf_valid(const uint8_t *buf, size_t len)
{
    if (len < 9 || buf[0] != 1)
        return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[1 + i];
    if (n == 0 || n > RG_CONF_MAX_SERVERS)
        return 0;
    size_t pos = 9;
    for (uint64_t i = 0; i < n; i++) {
        if (len - pos < 8 + 1 + 1)
            return 0;
        pos += 8;                                   /* id */
        const uint8_t *nul = memchr(buf + pos, 0, len - pos);
        if (!nul || nul == buf + pos)
            return 0;                               /* no terminator, or empty address */
        pos = (size_t)(nul - buf) + 1;
        if (pos >= len || buf[pos] > 2)
            return 0;                               /* role: standby, voter, spare */
        pos++;
    }
    for (; pos < len; pos++)
        if (buf[pos] != 0 || len - pos > 8)
            return 0;                               /* only padding may follow */
    return 1;
}

/* A u32 length, then that many bytes as a view. */
static const uint8_t *blob(bin_reader *r, size_t *len)
{
    uint32_t n = (uint32_t)bin_i32(r);
    *len = n;
    return bin_take(r, n);
}

int rg_msg_decode(const uint8_t *buf, size_t len, struct raft_message *m,
                  struct raft_entry **entries, size_t *cap_entries)
{
    memset(m, 0, sizeof(*m));
    bin_reader r;
    bin_reader_init(&r, buf, len);
    int type = (uint8_t)bin_i8(&r);
    unsigned char version = (unsigned char)bin_i8(&r);
    raft_term term = u64(&r);
    m->type = (enum raft_message_type)type;
    switch (type) {
    case RAFT_APPEND_ENTRIES: {
        struct raft_append_entries *a = &m->append_entries;
        a->version = version;
        a->term = term;
        a->prev_log_index = u64(&r);
        a->prev_log_term = u64(&r);
        a->leader_commit = u64(&r);
        uint32_t n = (uint32_t)bin_i32(&r);
        /* Each entry takes at least 13 bytes: bounds n before allocating. */
        if (r.err || n > RG_MSG_MAX_ENTRIES || n > bin_remaining(&r) / 13)
            return -CN_EPROTO;
        if (n > *cap_entries) {
            *entries = xrealloc(*entries, n * sizeof(**entries));
            *cap_entries = n;
        }
        for (uint32_t i = 0; i < n; i++) {
            struct raft_entry *e = &(*entries)[i];
            memset(e, 0, sizeof(*e));
            e->term = u64(&r);
            int et = (uint8_t)bin_i8(&r);
            if (et != RAFT_COMMAND && et != RAFT_BARRIER && et != RAFT_CHANGE)
                return -CN_EPROTO;
            e->type = (enum raft_entry_type)et;
            size_t blen = 0;
            const uint8_t *b = blob(&r, &blen);
            if (r.err || (et == RAFT_CHANGE && !rg_conf_valid(b, blen)))
                return -CN_EPROTO; /* libraft decodes configurations unchecked */
            e->buf.base = (void *)(uintptr_t)b;
            e->buf.len = blen;
            e->batch = (void *)(uintptr_t)buf; /* a placeholder: rg_group.c gives the entries a
                                                * raft_malloc'd block before stepping (libraft frees it) */
        }
        a->entries = n ? *entries : NULL;
        a->n_entries = n;
        break;
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
        struct raft_append_entries_result *a = &m->append_entries_result;
        a->version = version;
        a->term = term;
        a->rejected = u64(&r);
        a->last_log_index = u64(&r);
        a->features = (unsigned short)(uint16_t)bin_i16(&r);
        a->capacity = (unsigned short)(uint16_t)bin_i16(&r);
        break;
    }
    case RAFT_REQUEST_VOTE: {
        struct raft_request_vote *a = &m->request_vote;
        a->version = version;
        a->term = term;
        a->candidate_id = u64(&r);
        a->last_log_index = u64(&r);
        a->last_log_term = u64(&r);
        int f = (uint8_t)bin_i8(&r);
        if (f & ~3)
            return -CN_EPROTO;
        a->disrupt_leader = f & 1;
        a->pre_vote = (f & 2) != 0;
        break;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        struct raft_request_vote_result *a = &m->request_vote_result;
        a->version = version;
        a->term = term;
        int f = (uint8_t)bin_i8(&r);
        if (f & ~3)
            return -CN_EPROTO;
        a->vote_granted = f & 1;
        a->pre_vote = (f & 2) != 0;
        a->features = (unsigned short)(uint16_t)bin_i16(&r);
        a->capacity = (unsigned short)(uint16_t)bin_i16(&r);
        break;
    }
    case RAFT_INSTALL_SNAPSHOT: {
        struct raft_install_snapshot *a = &m->install_snapshot;
        a->version = version;
        a->term = term;
        a->last_index = u64(&r);
        a->last_term = u64(&r);
        a->conf_index = u64(&r);
        size_t clen = 0, dlen = 0;
        const uint8_t *conf = blob(&r, &clen);
        const uint8_t *data = blob(&r, &dlen);
        if (r.err || bin_remaining(&r))
            return -CN_EPROTO;
        if (!rg_conf_valid(conf, clen))
            return -CN_EPROTO;
        struct raft_buffer cb = {(void *)(uintptr_t)conf, clen};
        raft_configuration_init(&a->conf);
        if (raft_configuration_decode(&cb, &a->conf) != 0) {
            raft_configuration_close(&a->conf);
            return -CN_EPROTO;
        }
        a->data.base = (void *)(uintptr_t)data;
        a->data.len = dlen;
        return 0;
    }
    case RAFT_TIMEOUT_NOW: {
        struct raft_timeout_now *a = &m->timeout_now;
        a->version = version;
        a->term = term;
        a->last_log_index = u64(&r);
        a->last_log_term = u64(&r);
        break;
    }
    default:
        return -CN_EPROTO;
    }
    if (r.err || bin_remaining(&r))
        return -CN_EPROTO;
    return 0;
}
