/* net/tls: contexts from PEM files, a non-blocking handshake between a
 * server and a client session over a socketpair with tiny socket buffers
 * (so every write blocks part way and staged records are retried), byte
 * streams through tls_write_iov and tls_write_file checked end to end,
 * client-certificate subjects, and garbage instead of a handshake. The
 * certificates are made here with OpenSSL (self-signed, EC P-256). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/tls.h"
#include "util/common.h"

static char dir[64];
static char srv_pem[128], srv_key[128], cli_pem[128], cli_key[128];

/* A self-signed certificate with CN=cn into pem/key. */
static void make_cert(const char *cn, const char *pem, const char *key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Cairn unit", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(pem, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cairn-test-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(srv_pem, sizeof(srv_pem), "%s/srv.pem", dir);
    snprintf(srv_key, sizeof(srv_key), "%s/srv.key", dir);
    snprintf(cli_pem, sizeof(cli_pem), "%s/cli.pem", dir);
    snprintf(cli_key, sizeof(cli_key), "%s/cli.key", dir);
    make_cert("server", srv_pem, srv_key);
    make_cert("alice", cli_pem, cli_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(srv_pem), unlink(srv_key), unlink(cli_pem), unlink(cli_key);
    rmdir(dir);
    return 0;
}

typedef struct pair {
    int fd[2];
    tls_ctx *sc, *cc;
    tls_sess *s, *c;
} pair;

static void pair_open(pair *p, int client_cert)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
    int small = 4096; /* the kernel doubles it; still far below a record */
    for (int i = 0; i < 2; i++) {
        setsockopt(p->fd[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(p->fd[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    char err[256];
    tls_conf sconf = {.cert_file = srv_pem, .key_file = srv_key, .server = 1,
                      .ca_file = client_cert ? cli_pem : NULL,
                      .client_auth = client_cert ? TLS_AUTH_REQUIRED : TLS_AUTH_NONE};
    assert_int_equal(tls_ctx_new(&sconf, &p->sc, err, sizeof(err)), 0);
    tls_conf cconf = {.ca_file = srv_pem, .server = 0,
                      .cert_file = client_cert ? cli_pem : NULL,
                      .key_file = client_cert ? cli_key : NULL};
    assert_int_equal(tls_ctx_new(&cconf, &p->cc, err, sizeof(err)), 0);
    p->s = tls_new(p->sc, p->fd[0]);
    p->c = tls_new(p->cc, p->fd[1]);
    assert_non_null(p->s);
    assert_non_null(p->c);
}

static void pair_close(pair *p)
{
    tls_free(p->s);
    tls_free(p->c);
    tls_ctx_free(p->sc);
    tls_ctx_free(p->cc);
    close(p->fd[0]);
    close(p->fd[1]);
}

/* Both handshakes to completion (or the first error, returned). */
static int pair_handshake(pair *p)
{
    for (int i = 0; i < 1000; i++) {
        int a = tls_handshake(p->s), b = tls_handshake(p->c);
        if (a < 0)
            return a;
        if (b < 0)
            return b;
        if (a == 0 && b == 0)
            return 0;
    }
    fail_msg("handshake did not finish");
    return -1;
}

static void test_ctx_errors(void **state)
{
    (void)state;
    char err[512];
    tls_ctx *c;
    tls_conf none = {.server = 1};
    assert_int_equal(tls_ctx_new(&none, &c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "ssl.certificate.location"));
    tls_conf missing = {.cert_file = "/nonexistent.pem", .key_file = srv_key, .server = 1};
    assert_int_equal(tls_ctx_new(&missing, &c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "cannot load certificate /nonexistent.pem"));
    tls_conf wrongkey = {.cert_file = srv_pem, .key_file = cli_key, .server = 1};
    assert_int_equal(tls_ctx_new(&wrongkey, &c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "does not match the certificate"));
    tls_conf noca = {.cert_file = srv_pem, .key_file = srv_key, .server = 1,
                     .client_auth = TLS_AUTH_REQUIRED};
    assert_int_equal(tls_ctx_new(&noca, &c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "ssl.ca.location"));
    tls_conf badca = {.cert_file = srv_pem, .key_file = srv_key, .server = 1,
                      .ca_file = "/nonexistent-ca.pem"};
    assert_int_equal(tls_ctx_new(&badca, &c, err, sizeof(err)), -CN_EINVAL);
    assert_non_null(strstr(err, "cannot load CA file"));
}

static void test_stream_through_blocked_writes(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, 0);
    assert_int_equal(pair_handshake(&p), 0);
    assert_true(tls_handshake_done(p.s));
    assert_string_equal(tls_peer_subject(p.s), ""); /* no client certificate */
    assert_non_null(strstr(tls_describe(p.c), "TLSv1.3"));
    size_t total = 1 << 20;
    uint8_t *src = malloc(total), *got = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 11));
    size_t sent = 0, n_got = 0;
    int blocked = 0;
    unsigned seed = 7;
    while (sent < total) {
        /* an iovec of 1..5 pieces of random sizes */
        struct iovec iov[5];
        int n = 1 + (int)(rand_r(&seed) % 5);
        size_t at = sent;
        for (int i = 0; i < n; i++) {
            size_t k = 1 + (size_t)rand_r(&seed) % 9000;
            if (k > total - at)
                k = total - at;
            iov[i].iov_base = src + at;
            iov[i].iov_len = k;
            at += k;
        }
        ssize_t w = tls_write_iov(p.c, iov, n);
        if (w == -TLS_WANT_WRITE) {
            blocked++;
            assert_true(tls_out_pending(p.c));
            ssize_t r = tls_read(p.s, got + n_got, total - n_got);
            if (r > 0)
                n_got += (size_t)r;
            continue;
        }
        assert_true(w > 0 && (size_t)w <= TLS_STAGE);
        sent += (size_t)w;
    }
    while (tls_out_pending(p.c) || n_got < total) {
        int f = tls_flush(p.c);
        assert_true(f == 0 || f == -TLS_WANT_WRITE);
        ssize_t r = tls_read(p.s, got + n_got, total - n_got);
        if (r > 0)
            n_got += (size_t)r;
        else
            assert_true(r == -TLS_WANT_READ);
    }
    assert_int_equal(n_got, total);
    assert_memory_equal(got, src, total);
    assert_true(blocked > 0); /* the small buffers made writes block */
    free(src);
    free(got);
    pair_close(&p);
}

static void test_file_ranges(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/log", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    size_t total = 300000;
    uint8_t *src = malloc(total), *got = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(write(fd, src, total), (ssize_t)total);
    pair p;
    pair_open(&p, 0);
    assert_int_equal(pair_handshake(&p), 0);
    size_t off = 1000, n_got = 0; /* a range from the middle of the file */
    size_t len = total - 2000;
    while (off < 1000 + len) {
        ssize_t w = tls_write_file(p.c, fd, (int64_t)off, 1000 + len - off);
        if (w == -TLS_WANT_WRITE) {
            ssize_t r = tls_read(p.s, got + n_got, len - n_got);
            if (r > 0)
                n_got += (size_t)r;
            continue;
        }
        assert_true(w > 0);
        off += (size_t)w;
    }
    while (n_got < len) {
        tls_flush(p.c);
        ssize_t r = tls_read(p.s, got + n_got, len - n_got);
        if (r > 0)
            n_got += (size_t)r;
    }
    assert_memory_equal(got, src + 1000, len);
    /* past the end of the file: an I/O error, not a short record */
    ssize_t w;
    while ((w = tls_write_file(p.c, fd, (int64_t)total - 10, 100)) == -TLS_WANT_WRITE)
        tls_read(p.s, got, total);
    assert_int_equal(w, -CN_EIO);
    assert_non_null(strstr(tls_error(p.c), "shorter"));
    pair_close(&p);
    close(fd);
    unlink(path);
    free(src);
    free(got);
}

static void test_client_certificate_subject(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, 1);
    assert_int_equal(pair_handshake(&p), 0);
    assert_string_equal(tls_peer_subject(p.s), "CN=alice,O=Cairn unit");
    pair_close(&p);
}

static void test_client_without_certificate_refused(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, 1);
    tls_free(p.c); /* a client with no certificate, same trust */
    tls_ctx_free(p.cc);
    char err[256];
    tls_conf cconf = {.ca_file = srv_pem};
    assert_int_equal(tls_ctx_new(&cconf, &p.cc, err, sizeof(err)), 0);
    p.c = tls_new(p.cc, p.fd[1]);
    int rc = pair_handshake(&p);
    assert_int_equal(rc, -CN_EPROTO);
    assert_non_null(strstr(tls_error(p.s), "did not return a certificate"));
    pair_close(&p);
}

static void test_garbage_instead_of_hello(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, 0);
    const char junk[] = "\x00\x00\x00\x15\x00\x12\x00\x03\x00\x00\x00\x01garbage-kafka";
    assert_int_equal(write(p.fd[1], junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    int rc = tls_handshake(p.s);
    assert_int_equal(rc, -CN_EPROTO);
    assert_non_null(strstr(tls_error(p.s), "does not speak TLS"));
    pair_close(&p);
    assert_true(tls_looks_like_hello((const uint8_t *)"\x16\x03\x01\x02\x00\x01", 6));
    assert_false(tls_looks_like_hello((const uint8_t *)"\x00\x00\x00\x15\x00\x12", 6));
    assert_false(tls_looks_like_hello((const uint8_t *)"AMQP\x00\x00", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_stream_through_blocked_writes),
        cmocka_unit_test(test_file_ranges),
        cmocka_unit_test(test_client_certificate_subject),
        cmocka_unit_test(test_client_without_certificate_refused),
        cmocka_unit_test(test_garbage_instead_of_hello),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
