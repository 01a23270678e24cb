/* TLS contexts and sessions over OpenSSL 3 (contract in tls.h).
 *
 * Every OpenSSL call that may fail is preceded by ERR_clear_error: the
 * error queue is per thread and shared with anything else on the loop
 * thread, so a stale entry must not be read as this call's reason. */
#include "net/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/common.h"

struct tls_ctx {
    SSL_CTX *ctx;
    int server;
};

struct tls_sess {
    SSL *ssl;
    int server;
    int done;                       /* handshake finished */
    uint8_t *stage;                 /* TLS_STAGE bytes, allocated on the first write */
    size_t stage_len;               /* staged bytes not yet taken by SSL_write */
    char err[160];
    char *subject;                  /* tls_peer_subject, made on first use */
    char desc[96];
};

/* The first queued OpenSSL reason (or what) into buf. */
static void ossl_reason(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        char r[128];
        ERR_error_string_n(e, r, sizeof(r));
        /* "error:0A000086:SSL routines::certificate verify failed": keep the tail */
        const char *tail = strrchr(r, ':');
        snprintf(buf, len, "%s: %s", what, tail ? tail + 1 : r);
    } else {
        snprintf(buf, len, "%s", what);
    }
    ERR_clear_error();
}

int tls_ctx_new(const tls_conf *conf, tls_ctx **out, char *err, size_t err_len)
{
    *out = NULL;
    if (conf->server && (!conf->cert_file || !conf->key_file)) {
        snprintf(err, err_len, "a TLS listener needs ssl.certificate.location and "
                               "ssl.key.location");
        return -CN_EINVAL;
    }
    if (conf->server && conf->client_auth != TLS_AUTH_NONE && !conf->ca_file) {
        snprintf(err, err_len, "ssl.client.auth needs ssl.ca.location (the CAs that sign "
                               "client certificates)");
        return -CN_EINVAL;
    }
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(conf->server ? TLS_server_method() : TLS_client_method());
    if (!c) {
        ossl_reason(err, err_len, "cannot make a TLS context");
        return -CN_EINVAL;
    }
    SSL_CTX_set_min_proto_version(c, conf->min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(c, 1);
    if (conf->ciphers && SSL_CTX_set_cipher_list(c, conf->ciphers) != 1) {
        ossl_reason(err, err_len, "ssl.cipher.suites");
        goto fail;
    }
    if (conf->cert_file) {
        if (conf->key_password)
            SSL_CTX_set_default_passwd_cb_userdata(c, (void *)conf->key_password);
        if (SSL_CTX_use_certificate_chain_file(c, conf->cert_file) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load certificate %s", conf->cert_file);
            ossl_reason(err, err_len, what);
            goto fail;
        }
        if (!conf->key_file ||
            SSL_CTX_use_PrivateKey_file(c, conf->key_file, SSL_FILETYPE_PEM) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load private key %s",
                     conf->key_file ? conf->key_file : "(none)");
            ossl_reason(err, err_len, what);
            if (strstr(err, "key values mismatch"))
                snprintf(err, err_len, "the private key %s does not match the certificate %s",
                         conf->key_file, conf->cert_file);
            goto fail;
        }
        SSL_CTX_set_default_passwd_cb_userdata(c, NULL); /* not kept past the load */
        if (SSL_CTX_check_private_key(c) != 1) {
            ossl_reason(err, err_len, "the private key does not match the certificate");
            goto fail;
        }
    }
    if (conf->ca_file) {
        if (SSL_CTX_load_verify_locations(c, conf->ca_file, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load CA file %s", conf->ca_file);
            ossl_reason(err, err_len, what);
            goto fail;
        }
        if (conf->server) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(c, names);
            ERR_clear_error();
        }
    }
    if (conf->server) {
        int mode = SSL_VERIFY_NONE;
        if (conf->client_auth == TLS_AUTH_REQUESTED)
            mode = SSL_VERIFY_PEER;
        else if (conf->client_auth == TLS_AUTH_REQUIRED)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(c, mode, NULL);
        /* Session ids are per context; a fixed one lets resumption work. */
        static const unsigned char sid[] = "cairn";
        SSL_CTX_set_session_id_context(c, sid, sizeof(sid) - 1);
    } else {
        SSL_CTX_set_verify(c, conf->ca_file ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    }
    tls_ctx *t = xcalloc(1, sizeof(*t));
    t->ctx = c;
    t->server = conf->server;
    *out = t;
    return 0;
fail:
    SSL_CTX_free(c);
    return -CN_EINVAL;
}

void tls_ctx_free(tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ctx); /* sessions hold their own references */
    free(ctx);
}

tls_sess *tls_new(tls_ctx *ctx, int fd)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    if (ctx->server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    tls_sess *s = xcalloc(1, sizeof(*s));
    s->ssl = ssl;
    s->server = ctx->server;
    return s;
}

void tls_free(tls_sess *s)
{
    if (!s)
        return;
    SSL_free(s->ssl);
    free(s->stage);
    free(s->subject);
    free(s);
}

/* Map SSL_get_error for a call that returned rc <= 0: -TLS_WANT_*, 0 (a
 * clean close, reads only) or an error with s->err set. */
static int sess_error(tls_sess *s, int rc, const char *what)
{
    int e = SSL_get_error(s->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return -TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return -TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            ERR_clear_error();
            return -TLS_WANT_READ;
        }
        if (errno == 0 && ERR_peek_last_error() == 0) {
            /* EOF without close_notify (SSL_OP_IGNORE_UNEXPECTED_EOF maps most) */
            snprintf(s->err, sizeof(s->err), "%s: peer closed the connection", what);
            return 0;
        }
        snprintf(s->err, sizeof(s->err), "%s: %s", what,
                 errno ? strerror(errno) : "socket error");
        ERR_clear_error();
        return -CN_EIO;
    default: {
        long v = SSL_get_verify_result(s->ssl);
        if (v != X509_V_OK) {
            snprintf(s->err, sizeof(s->err), "%s: peer certificate: %s", what,
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            ossl_reason(s->err, sizeof(s->err), what);
            if (strstr(s->err, "wrong version number") || strstr(s->err, "http request"))
                snprintf(s->err + strlen(s->err), sizeof(s->err) - strlen(s->err),
                         " (the client does not speak TLS: set to PLAINTEXT?)");
        }
        return -CN_EPROTO;
    }
    }
}

int tls_handshake(tls_sess *s)
{
    if (s->done)
        return 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(s->ssl);
    if (rc == 1) {
        s->done = 1;
        return 0;
    }
    int e = sess_error(s, rc, "TLS handshake");
    if (e == -TLS_WANT_READ || e == -TLS_WANT_WRITE)
        return -e;
    if (e == 0) { /* closed during the handshake */
        if (!s->err[0])
            snprintf(s->err, sizeof(s->err), "TLS handshake: peer closed the connection");
        return -CN_EPROTO;
    }
    return e;
}

int tls_handshake_done(const tls_sess *s) { return s->done; }

ssize_t tls_read(tls_sess *s, void *buf, size_t len)
{
    if (len > INT32_MAX)
        len = INT32_MAX;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(s->ssl, buf, (int)len);
    if (rc > 0)
        return rc;
    return sess_error(s, rc, "TLS read");
}

int tls_in_pending(const tls_sess *s) { return SSL_has_pending(s->ssl); }

/* Hand the staged bytes to SSL_write until they are all taken. */
static int stage_send(tls_sess *s)
{
    size_t off = 0;
    while (off < s->stage_len) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write(s->ssl, s->stage + off, (int)(s->stage_len - off));
        if (rc <= 0) {
            if (off > 0) { /* keep the unsent tail at the front: a new write next time */
                memmove(s->stage, s->stage + off, s->stage_len - off);
                s->stage_len -= off;
            }
            int e = sess_error(s, rc, "TLS write");
            if (e == 0) {
                snprintf(s->err, sizeof(s->err), "TLS write: peer closed the connection");
                return -CN_EIO;
            }
            return e;
        }
        off += (size_t)rc;
    }
    s->stage_len = 0;
    return 0;
}

static int stage_ready(tls_sess *s)
{
    if (!s->stage)
        s->stage = xmalloc(TLS_STAGE);
    return stage_send(s);
}

/* A blocked write is retried with the same bytes; taken counts as sent. */
static ssize_t stage_result(tls_sess *s, size_t taken)
{
    int rc = stage_send(s);
    if (rc < 0 && rc != -TLS_WANT_READ && rc != -TLS_WANT_WRITE)
        return rc;
    return (ssize_t)taken;
}

ssize_t tls_write_iov(tls_sess *s, const struct iovec *iov, int n)
{
    int rc = stage_ready(s);
    if (rc < 0)
        return rc;
    size_t taken = 0;
    for (int i = 0; i < n && taken < TLS_STAGE; i++) {
        size_t k = iov[i].iov_len;
        if (k > TLS_STAGE - taken)
            k = TLS_STAGE - taken;
        memcpy(s->stage + taken, iov[i].iov_base, k);
        taken += k;
    }
    if (taken == 0)
        return 0;
    s->stage_len = taken;
    return stage_result(s, taken);
}

ssize_t tls_write_file(tls_sess *s, int fd, int64_t off, size_t len)
{
    int rc = stage_ready(s);
    if (rc < 0)
        return rc;
    if (len > TLS_STAGE)
        len = TLS_STAGE;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, s->stage + got, len - got, (off_t)(off + (int64_t)got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(s->err, sizeof(s->err), "TLS write: reading the log: %s",
                     r < 0 ? strerror(errno) : "file shorter than promised");
            return -CN_EIO;
        }
        got += (size_t)r;
    }
    if (got == 0)
        return 0;
    s->stage_len = got;
    return stage_result(s, got);
}

int tls_flush(tls_sess *s) { return s->stage_len ? stage_send(s) : 0; }
int tls_out_pending(const tls_sess *s) { return s->stage_len > 0; }
const char *tls_error(const tls_sess *s) { return s->err[0] ? s->err : "TLS error"; }

const char *tls_peer_subject(tls_sess *s)
{
    if (s->subject)
        return s->subject;
    X509 *cert = SSL_get1_peer_certificate(s->ssl);
    if (!cert)
        return "";
    BIO *b = BIO_new(BIO_s_mem());
    char *dn = NULL;
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        if (n >= 0) {
            dn = xmalloc((size_t)n + 1);
            memcpy(dn, p, (size_t)n);
            dn[n] = '\0';
        }
    }
    BIO_free(b);
    X509_free(cert);
    ERR_clear_error();
    s->subject = dn ? dn : xstrdup("");
    return s->subject;
}

const char *tls_describe(tls_sess *s)
{
    snprintf(s->desc, sizeof(s->desc), "%s %s", SSL_get_version(s->ssl),
             SSL_get_cipher_name(s->ssl) ? SSL_get_cipher_name(s->ssl) : "?");
    return s->desc;
}

int tls_looks_like_hello(const uint8_t *buf, size_t len)
{
    /* content type 22 (handshake), version 3.x, then a ClientHello (1) */
    return len >= 6 && buf[0] == 0x16 && buf[1] == 0x03 && buf[2] <= 0x04 && buf[5] == 0x01;
}
