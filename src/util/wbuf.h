/* Output buffer with file splices: the protocol-neutral form of a message on
 * its way to a socket.
 *
 * A wbuf is bytes, buf[0..len), plus an ordered list of splices. A splice
 * says "after byte `at` of buf, send `len` bytes of file f.fd from position
 * f.pos (sendfile, no copy into user space), then let go of f.ref". The byte
 * stream a wbuf stands for is therefore
 *     buf[0..s0.at)  file(s0)  buf[s0.at..s1.at)  file(s1) ...  buf[sN.at..len)
 * and its length is wbuf_total. Protocol writers append encoded values
 * through wbuf_reserve (the Kafka writer kw of proto/kafka/kbuf.h is a set of
 * big-endian helpers over a wbuf); the net layer sends the stream in order.
 *
 * Ownership: wbuf_splice_file takes over the caller's reference f->ref. The
 * buffer calls f->release(f->ref) exactly once, from wbuf_reset or
 * wbuf_fini, so an owner that resets the buffer only after the bytes left
 * keeps the file open until then (log segments cannot be closed by retention
 * under a queued response). Memory only grows: wbuf_reset keeps buf and the
 * splice array, so a buffer reused per message allocates nothing in steady
 * state. Growth aborts on OOM (xrealloc). Not thread-safe. */
#ifndef CAIRN_WBUF_H
#define CAIRN_WBUF_H
#include <stddef.h>
#include <stdint.h>

/* A file range's source: where the bytes are and how to release them. */
typedef struct wbuf_file {
    int fd;                       /* read with sendfile(2); not closed by wbuf */
    int64_t pos;                  /* file position of the first byte */
    void (*release)(void *ref);   /* called once when the buffer is done; NULL: nothing */
    void *ref;                    /* the reference the splice holds (e.g. a log_slice *) */
} wbuf_file;

typedef struct wbuf_splice {
    size_t at;                    /* bytes of buf sent before this splice */
    size_t len;                   /* bytes of the file to send */
    wbuf_file f;
} wbuf_splice;

typedef struct wbuf {
    uint8_t *buf;
    size_t len, cap;
    wbuf_splice *splices;         /* in stream order (at is non-decreasing) */
    size_t n_splices, cap_splices;
} wbuf;

/* Empty buffer, no memory yet. */
void wbuf_init(wbuf *w);
/* Release every splice's reference and free the memory. */
void wbuf_fini(wbuf *w);
/* Release every splice's reference and forget the contents; keep the memory. */
void wbuf_reset(wbuf *w);

/* Slow path of wbuf_reserve: make room for n more bytes. */
void wbuf__grow(wbuf *w, size_t n);
/* Room for n more bytes at the end of buf: returns where to write them and
 * counts them in len. The pointer is valid until the next growth. */
static inline uint8_t *wbuf_reserve(wbuf *w, size_t n)
{
    if (__builtin_expect(w->cap - w->len < n, 0))
        wbuf__grow(w, n);
    uint8_t *q = w->buf + w->len;
    w->len += n;
    return q;
}
/* Copy n bytes of p to the end of buf. */
void wbuf_append(wbuf *w, const void *p, size_t n);
/* Send len bytes of f after the current end of buf. Takes over f->ref (see
 * above), also when len is 0. f is copied. */
void wbuf_splice_file(wbuf *w, const wbuf_file *f, size_t len);
/* Bytes the stream holds: buf plus every splice. */
size_t wbuf_total(const wbuf *w);
#endif
