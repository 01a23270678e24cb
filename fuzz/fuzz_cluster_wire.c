/* libFuzzer harness for the bodies of cluster frames and metadata records
 * (src/cluster/cluster_wire.c): what a peer sends, and what the replicated
 * metadata log holds, is decoded there before anything acts on it. The
 * first input byte picks the form (HELLO, FORWARD, REPLY, MARKER,
 * MARKER_DONE, records "T", "D", "P", "C", LEADERS, records "R", "F", "N", "L", "X",
 * "K", "E"); the
 * rest is the body. A body that
 * decodes must encode back to exactly the same bytes (one form per value).
 * Crashes, sanitizer reports, leaks and round-trip mismatches are findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_wire.h"

typedef struct leaders {
    clw_leader *v;
    int32_t n;
} leaders;

static void collect(void *arg, const clw_leader *l)
{
    leaders *ls = arg;
    ls->v = realloc(ls->v, (size_t)(ls->n + 1) * sizeof(*ls->v));
    if (!ls->v)
        abort();
    ls->v[ls->n++] = *l;
}

static void same(const wbuf *w, const uint8_t *b, size_t len)
{
    if (w->len != len || (len && memcmp(w->buf, b, len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int form = data[0] % 17;
    const uint8_t *b = data + 1;
    size_t len = size - 1;
    wbuf w;
    wbuf_init(&w);
    switch (form) {
    case 0: {
        clw_hello h;
        if (clw_hello_decode(b, len, &h) == 0) {
            clw_hello_encode(&w, &h);
            same(&w, b, len);
        }
        break;
    }
    case 1: {
        clw_forward f;
        if (clw_forward_decode(b, len, &f) == 0) {
            clw_forward_encode(&w, &f);
            clw_configs_free(&f.t);
            same(&w, b, len);
        }
        break;
    }
    case 2: {
        clw_reply r;
        if (clw_reply_decode(b, len, &r) == 0) {
            clw_reply_encode(&w, &r);
            same(&w, b, len);
        }
        break;
    }
    case 3: {
        clw_marker m;
        if (clw_marker_decode(b, len, &m) == 0) {
            clw_marker_encode(&w, &m);
            same(&w, b, len);
        }
        break;
    }
    case 4: {
        clw_done d;
        if (clw_done_decode(b, len, &d) == 0) {
            clw_done_encode(&w, &d);
            same(&w, b, len);
        }
        break;
    }
    case 9: {
        leaders ls = {0};
        if (clw_leaders_decode(b, len, collect, &ls) == 0) {
            clw_leaders_encode(&w, ls.v, ls.n);
            same(&w, b, len);
        }
        free(ls.v);
        break;
    }
    default: {
        clw_topic_op t;
        char key = form >= 10 ? "RFNLXKE"[form - 10] : "TDPC"[form - 5];
        if (clw_record_decode(key, b, len, &t) == 0) {
            clw_record_encode(&w, &t);
            clw_configs_free(&t);
            same(&w, b, len);
        }
        break;
    }
    }
    wbuf_fini(&w);
    return 0;
}
