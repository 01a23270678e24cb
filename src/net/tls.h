/* TLS for net's connections, over OpenSSL 3 (libssl): contexts built from
 * PEM files, and non-blocking TLS sessions over a socket that net drives
 * from its event loop. net uses it at three places: the read (tls_read
 * instead of read(2)), the write of buffered bytes (tls_write_iov instead
 * of writev(2)) and the write of file ranges (tls_write_file instead of
 * sendfile(2): there is no kernel TLS here, so the range is pread into the
 * session's staging buffer and encrypted from there).
 *
 * Contexts. tls_ctx_new builds one from a tls_conf: the certificate chain
 * and key (PEM), the trusted CAs for peers' certificates, and whether
 * client certificates are asked for. TLS 1.2 is the minimum, 1.3 preferred;
 * renegotiation and compression are off. A context may be replaced while
 * sessions made from it are open (a certificate reload): each session
 * holds its own reference, so tls_ctx_free only drops the caller's.
 *
 * Sessions. tls_new wraps a connected, non-blocking socket (which stays
 * the caller's: tls_free never closes it). The handshake runs from the
 * caller's readiness events through tls_handshake until it reports done.
 * Every call returns what the socket must wait for (TLS_WANT_READ or
 * TLS_WANT_WRITE) when it cannot go on, so the caller sets its epoll
 * interest from it.
 *
 * Writing. Bytes handed to tls_write_iov / tls_write_file are copied into a
 * staging buffer of up to TLS_STAGE bytes (one TLS record) and count as
 * consumed at once; when the socket is full the record stays staged and
 * every later write first finishes it (OpenSSL requires a blocked write to
 * be retried with the same bytes). tls_out_pending says whether a staged
 * record still waits for the socket: the caller keeps EPOLLOUT armed (and
 * does not consider its output sent) until tls_flush empties it.
 *
 * Reading. tls_read may leave decrypted or raw bytes buffered inside the
 * session (a record larger than the caller's buffer, read-ahead); epoll
 * cannot see those, so after a read the caller asks tls_in_pending and
 * reads again without waiting for an event.
 *
 * Errors are -CN_EPROTO (the peer broke TLS: handshake failure, bad record,
 * untrusted certificate) or -CN_EIO (the socket failed), with a one-line
 * reason from tls_error. 0 from tls_read is the peer's close (close_notify
 * or EOF). Loop thread only per session; contexts are immutable once made. */
#ifndef CAIRN_NET_TLS_H
#define CAIRN_NET_TLS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define TLS_STAGE 16384             /* one TLS record's plaintext */

typedef enum { TLS_AUTH_NONE = 0, TLS_AUTH_REQUESTED = 1, TLS_AUTH_REQUIRED = 2 } tls_client_auth;

typedef struct tls_conf {
    const char *cert_file;          /* PEM certificate chain (server: required) */
    const char *key_file;           /* PEM private key (required with cert_file) */
    const char *key_password;       /* for an encrypted key, or NULL */
    const char *ca_file;            /* PEM CAs trusted for the peer's certificate, or NULL */
    tls_client_auth client_auth;    /* server side: ask for client certificates */
    int server;                     /* 1: accepts connections; 0: dials (verifies the server) */
    int min_tls13;                  /* 1: TLS 1.3 only (ssl.enabled.protocols=TLSv1.3) */
    const char *ciphers;            /* TLS 1.2 cipher list (OpenSSL syntax), or NULL: default */
} tls_conf;

typedef struct tls_ctx tls_ctx;
typedef struct tls_sess tls_sess;

/* Build a context. 0, or -CN_EINVAL with the reason in err (a file that
 * cannot be read, a key that does not match the certificate, a CA file
 * without certificates, a server without a certificate, client_auth
 * without ca_file). */
int tls_ctx_new(const tls_conf *conf, tls_ctx **out, char *err, size_t err_len);
/* Drop the caller's reference; sessions made from it keep working. NULL: no-op. */
void tls_ctx_free(tls_ctx *ctx);

/* What a call that could not finish waits for (outside errno's range, so
 * -TLS_WANT_* never reads as a -CN_E* error). */
enum { TLS_WANT_READ = 0x10000, TLS_WANT_WRITE = 0x20000 };

/* A session over fd, accepting when the context is a server's, else
 * dialing. NULL on allocation failure. */
tls_sess *tls_new(tls_ctx *ctx, int fd);
/* Frees the session (the fd stays open). Sends no close_notify: the caller
 * is closing the socket. NULL: no-op. */
void tls_free(tls_sess *s);
/* Run the handshake: 0 done, TLS_WANT_READ / TLS_WANT_WRITE, or a
 * negative error (tls_error says why). Call again on the wanted event. */
int tls_handshake(tls_sess *s);
int tls_handshake_done(const tls_sess *s);
/* Up to len decrypted bytes into buf: >0 bytes, 0 the peer closed,
 * -TLS_WANT_READ / -TLS_WANT_WRITE nothing now, or -CN_EPROTO / -CN_EIO. */
ssize_t tls_read(tls_sess *s, void *buf, size_t len);
/* 1 when bytes are buffered inside the session that a tls_read would
 * return without the socket becoming readable. */
int tls_in_pending(const tls_sess *s);
/* Consume bytes from iov[0..n) (up to TLS_STAGE per call): >0 bytes taken
 * (staged; they leave with this call or a later flush), -TLS_WANT_WRITE /
 * -TLS_WANT_READ (a staged record is still blocked: nothing taken), or
 * -CN_EPROTO / -CN_EIO. */
ssize_t tls_write_iov(tls_sess *s, const struct iovec *iov, int n);
/* The same for len bytes of file fd at off (pread; a short file is -CN_EIO). */
ssize_t tls_write_file(tls_sess *s, int fd, int64_t off, size_t len);
/* Send a staged record: 0 nothing left staged, or -TLS_WANT_* / error. */
int tls_flush(tls_sess *s);
int tls_out_pending(const tls_sess *s);
/* The last error's reason (OpenSSL's, or the certificate check's). */
const char *tls_error(const tls_sess *s);
/* After the handshake: the peer certificate's subject as an RFC 2253 DN
 * ("CN=alice,O=Example"), "" without a peer certificate. Owned by s. */
const char *tls_peer_subject(tls_sess *s);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for log lines; owned by s. */
const char *tls_describe(tls_sess *s);
/* 1 when buf[0..len) (len >= 3) starts like a TLS record of a handshake
 * (a ClientHello sent to a plaintext port). */
int tls_looks_like_hello(const uint8_t *buf, size_t len);
#endif
