/* Output buffer with file splices (contract in wbuf.h). The buffer doubles
 * from 256 bytes; splices are an array doubling from 4. References are
 * released in stream order. */
#include "util/wbuf.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

void wbuf_init(wbuf *w)
{
    memset(w, 0, sizeof(*w));
}

static void release_splices(wbuf *w)
{
    for (size_t i = 0; i < w->n_splices; i++) {
        wbuf_file *f = &w->splices[i].f;
        if (f->release)
            f->release(f->ref);
    }
    w->n_splices = 0;
}

void wbuf_fini(wbuf *w)
{
    release_splices(w);
    free(w->buf);
    free(w->splices);
    memset(w, 0, sizeof(*w));
}

void wbuf_reset(wbuf *w)
{
    release_splices(w);
    w->len = 0;
}

void wbuf__grow(wbuf *w, size_t n)
{
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n)
        cap *= 2;
    w->buf = xrealloc(w->buf, cap);
    w->cap = cap;
}

void wbuf_append(wbuf *w, const void *p, size_t n)
{
    if (n)
        memcpy(wbuf_reserve(w, n), p, n);
}

void wbuf_splice_file(wbuf *w, const wbuf_file *f, size_t len)
{
    if (w->n_splices == w->cap_splices) {
        w->cap_splices = w->cap_splices ? w->cap_splices * 2 : 4;
        w->splices = xrealloc(w->splices, w->cap_splices * sizeof(*w->splices));
    }
    w->splices[w->n_splices++] = (wbuf_splice){ .at = w->len, .len = len, .f = *f };
}

size_t wbuf_total(const wbuf *w)
{
    size_t t = w->len;
    for (size_t i = 0; i < w->n_splices; i++)
        t += w->splices[i].len;
    return t;
}
