/* SCRAM and PLAIN, server side (contract in scram.h). */
#include "auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/common.h"

scram_mech scram_mech_parse(const char *name, size_t len)
{
    if (len == 13 && strncasecmp(name, "SCRAM-SHA-256", 13) == 0)
        return SCRAM_SHA_256;
    if (len == 13 && strncasecmp(name, "SCRAM-SHA-512", 13) == 0)
        return SCRAM_SHA_512;
    return 0;
}

const char *scram_mech_name(scram_mech m)
{
    return m == SCRAM_SHA_256 ? "SCRAM-SHA-256" : m == SCRAM_SHA_512 ? "SCRAM-SHA-512" : "?";
}

size_t scram_key_len(scram_mech m) { return m == SCRAM_SHA_512 ? 64 : 32; }

static const EVP_MD *md_of(scram_mech m) { return m == SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256(); }

static void hmac(scram_mech m, const uint8_t *key, size_t klen, const void *data, size_t n,
                 uint8_t *out)
{
    unsigned int ol = 0;
    HMAC(md_of(m), key, (int)klen, data, n, out, &ol);
}

static void hash(scram_mech m, const uint8_t *data, size_t n, uint8_t *out)
{
    unsigned int ol = 0;
    EVP_Digest(data, n, out, &ol, md_of(m), NULL);
}

/* StoredKey and ServerKey from SaltedPassword. */
static void keys_from_salted(scram_mech m, const uint8_t *salted, scram_cred *out)
{
    size_t kl = scram_key_len(m);
    uint8_t client_key[SCRAM_MAX_KEY];
    hmac(m, salted, kl, "Client Key", 10, client_key);
    hash(m, client_key, kl, out->stored_key);
    hmac(m, salted, kl, "Server Key", 10, out->server_key);
    OPENSSL_cleanse(client_key, sizeof(client_key));
}

static int salted_password(scram_mech m, const char *pw, size_t pw_len, const uint8_t *salt,
                           size_t salt_len, int32_t iters, uint8_t *out)
{
    return PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, (int)salt_len, iters, md_of(m),
                             (int)scram_key_len(m), out) == 1
               ? 0
               : -CN_EINVAL;
}

int scram_cred_make(scram_mech mech, const char *password, size_t pw_len, const uint8_t *salt,
                    size_t salt_len, int32_t iterations, scram_cred *out)
{
    memset(out, 0, sizeof(*out));
    if ((mech != SCRAM_SHA_256 && mech != SCRAM_SHA_512) ||
        iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS ||
        salt_len > SCRAM_MAX_SALT || pw_len > INT32_MAX)
        return -CN_EINVAL;
    out->mech = mech;
    out->iterations = iterations;
    if (salt) {
        if (salt_len == 0)
            return -CN_EINVAL;
        memcpy(out->salt, salt, salt_len);
        out->salt_len = (uint8_t)salt_len;
    } else {
        out->salt_len = 32;
        if (RAND_bytes(out->salt, out->salt_len) != 1)
            return -CN_EIO;
    }
    uint8_t salted[SCRAM_MAX_KEY];
    if (salted_password(mech, password, pw_len, out->salt, out->salt_len, iterations, salted) < 0)
        return -CN_EINVAL;
    keys_from_salted(mech, salted, out);
    OPENSSL_cleanse(salted, sizeof(salted));
    return 0;
}

int scram_cred_from_salted(scram_mech mech, const uint8_t *salted, size_t salted_len,
                           const uint8_t *salt, size_t salt_len, int32_t iterations,
                           scram_cred *out)
{
    memset(out, 0, sizeof(*out));
    if ((mech != SCRAM_SHA_256 && mech != SCRAM_SHA_512) || salted_len != scram_key_len(mech) ||
        salt_len == 0 || salt_len > SCRAM_MAX_SALT || iterations < SCRAM_MIN_ITERATIONS ||
        iterations > SCRAM_MAX_ITERATIONS)
        return -CN_EINVAL;
    out->mech = mech;
    out->iterations = iterations;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = (uint8_t)salt_len;
    keys_from_salted(mech, salted, out);
    return 0;
}

int scram_check_password(const scram_cred *cred, const char *password, size_t pw_len)
{
    scram_cred probe;
    if (scram_cred_make(cred->mech, password, pw_len, cred->salt, cred->salt_len,
                        cred->iterations, &probe) < 0)
        return 0;
    int ok = CRYPTO_memcmp(probe.stored_key, cred->stored_key, scram_key_len(cred->mech)) == 0;
    OPENSSL_cleanse(&probe, sizeof(probe));
    return ok;
}

void scram_fake_cred(scram_mech mech, const char *user, scram_cred *out)
{
    static uint8_t secret[32];
    static int have;
    if (!have) {
        if (RAND_bytes(secret, sizeof(secret)) != 1)
            memset(secret, 0x5a, sizeof(secret));
        have = 1;
    }
    memset(out, 0, sizeof(*out));
    out->mech = mech;
    out->iterations = SCRAM_MIN_ITERATIONS;
    out->salt_len = 32;
    uint8_t h[64];
    hmac(SCRAM_SHA_512, secret, sizeof(secret), user, strlen(user), h);
    memcpy(out->salt, h, 32);
    /* keys no proof can match: random, never stored */
    RAND_bytes(out->stored_key, (int)scram_key_len(mech));
    RAND_bytes(out->server_key, (int)scram_key_len(mech));
}

/* Base64 ------------------------------------------------------------------ */

int b64_encode(const uint8_t *in, size_t n, char *out, size_t out_len)
{
    if (out_len < 4 * ((n + 2) / 3) + 1)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int b64_decode(const char *in, size_t n, uint8_t *out, size_t out_len)
{
    if (n % 4 != 0 || out_len < 3 * (n / 4))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '/' || (ch == '=' && i >= n - 2);
        if (!ok || (ch != '=' && i > 0 && in[i - 1] == '='))
            return -1;
    }
    if (n == 0)
        return 0;
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0)
        return -1;
    if (in[n - 1] == '=')
        r--;
    if (in[n - 2] == '=')
        r--;
    return r;
}

/* Messages ------------------------------------------------------------------ */

/* The value of attribute `a=` at the start of [p, end) up to the next comma. */
static int attr(const char *p, const char *end, char a, const char **v, size_t *vlen,
                const char **next)
{
    if (end - p < 2 || p[0] != a || p[1] != '=')
        return -1;
    const char *s = p + 2;
    const char *c = memchr(s, ',', (size_t)(end - s));
    const char *e = c ? c : end;
    *v = s;
    *vlen = (size_t)(e - s);
    *next = c ? c + 1 : end;
    return 0;
}

static int fail(scram_exchange *x, const char *why)
{
    snprintf(x->why, sizeof(x->why), "%s", why);
    return -CN_EINVAL;
}

/* A printable nonce without commas (RFC 5802 "printable"). */
static int nonce_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return 0;
    return 1;
}

int scram_first(scram_exchange *x, scram_mech mech, const char *msg, size_t len)
{
    memset(x, 0, sizeof(*x));
    x->mech = mech;
    const char *end = msg + len;
    if (memchr(msg, '\0', len))
        return fail(x, "NUL in client-first message");
    /* gs2 header: "n,," or "y,," (no channel binding); an authzid a=... is
     * accepted only when it names the same user (checked below). */
    if (len < 3 || (msg[0] != 'n' && msg[0] != 'y'))
        return fail(x, len > 0 && msg[0] == 'p' ? "channel binding is not supported"
                                                : "client-first message must start with n,,");
    if (msg[1] != ',')
        return fail(x, "malformed gs2 header");
    const char *p = msg + 2;
    const char *authz = NULL;
    size_t authz_len = 0;
    if (p < end && *p == 'a') {
        const char *next;
        if (attr(p, end, 'a', &authz, &authz_len, &next) < 0)
            return fail(x, "malformed authzid");
        p = next;
    } else {
        if (p >= end || *p != ',')
            return fail(x, "malformed gs2 header");
        p++;
    }
    const char *bare = p;
    const char *v, *next;
    size_t vl;
    if (p < end && *p == 'm')
        return fail(x, "mandatory extensions are not supported");
    if (attr(p, end, 'n', &v, &vl, &next) < 0)
        return fail(x, "client-first message has no n=USER");
    /* saslname: "=2C" is ',', "=3D" is '=', a bare '=' is an error */
    size_t u = 0;
    for (size_t i = 0; i < vl; i++) {
        char ch = v[i];
        if (ch == '=') {
            if (i + 2 < vl && v[i + 1] == '2' && v[i + 2] == 'C')
                ch = ',';
            else if (i + 2 < vl && v[i + 1] == '3' && v[i + 2] == 'D')
                ch = '=';
            else
                return fail(x, "bad escape in user name");
            i += 2;
        }
        if (u >= SCRAM_MAX_NAME || ch == '\0')
            return fail(x, "user name too long");
        x->user[u++] = ch;
    }
    x->user[u] = '\0';
    if (u == 0)
        return fail(x, "empty user name");
    if (authz && (authz_len != vl || memcmp(authz, v, vl) != 0))
        return fail(x, "authzid differs from the user name");
    p = next;
    if (attr(p, end, 'r', &v, &vl, &next) < 0)
        return fail(x, "client-first message has no r=NONCE");
    if (!nonce_ok(v, vl) || vl > 128)
        return fail(x, "bad client nonce");
    memcpy(x->nonce, v, vl);
    x->nonce[vl] = '\0';
    /* extensions after r= (Kafka's tokenauth=...) are accepted and ignored */
    size_t bl = (size_t)(end - bare);
    if (bl >= sizeof(x->client_first_bare))
        return fail(x, "client-first message too long");
    memcpy(x->client_first_bare, bare, bl);
    x->client_first_bare[bl] = '\0';
    x->step = 1;
    return 0;
}

int scram_challenge(scram_exchange *x, const scram_cred *cred, char *out, size_t out_len)
{
    if (x->step != 1)
        return fail(x, "challenge out of order");
    x->cred = *cred;
    uint8_t rnd[24];
    char snonce[40], salt[100];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -CN_EIO;
    b64_encode(rnd, sizeof(rnd), snonce, sizeof(snonce));
    b64_encode(cred->salt, cred->salt_len, salt, sizeof(salt));
    size_t cn = strlen(x->nonce);
    snprintf(x->nonce + cn, sizeof(x->nonce) - cn, "%s", snonce);
    int n = snprintf(x->server_first, sizeof(x->server_first), "r=%s,s=%s,i=%d", x->nonce, salt,
                     cred->iterations);
    if (n < 0 || (size_t)n >= sizeof(x->server_first) || (size_t)n >= out_len)
        return fail(x, "server-first message too long");
    memcpy(out, x->server_first, (size_t)n + 1);
    return n;
}

int scram_final(scram_exchange *x, const char *msg, size_t len, char *out, size_t out_len)
{
    if (x->step != 1 || !x->server_first[0])
        return fail(x, "client-final message out of order");
    x->step = 2;
    const char *end = msg + len;
    if (memchr(msg, '\0', len))
        return fail(x, "NUL in client-final message");
    const char *v, *next;
    size_t vl;
    if (attr(msg, end, 'c', &v, &vl, &next) < 0)
        return fail(x, "client-final message has no c=");
    /* c= is base64 of the gs2 header: "biws" for "n,,", "eSws" for "y,,"
     * (a=authzid forms are accepted by decoding and checking the prefix) */
    uint8_t gs2[200];
    int gl = b64_decode(v, vl, gs2, sizeof(gs2));
    if (gl < 3 || (gs2[0] != 'n' && gs2[0] != 'y') || gs2[1] != ',' || gs2[gl - 1] != ',')
        return fail(x, "channel binding data does not match the gs2 header");
    const char *p = next;
    if (attr(p, end, 'r', &v, &vl, &next) < 0)
        return fail(x, "client-final message has no r=");
    /* The nonce must end with ours (Kafka's server checks endsWith: librdkafka
     * sends its client nonce in front of the whole server nonce). The proof
     * covers the message as sent, so this admits no other client. */
    size_t nl = strlen(x->nonce);
    if (vl < nl || memcmp(v + vl - nl, x->nonce, nl) != 0)
        return fail(x, "nonce does not match");
    p = next;
    /* extensions, then p= last */
    const char *proof_at = NULL;
    while (p < end) {
        if (end - p >= 2 && p[0] == 'p' && p[1] == '=') {
            proof_at = p;
            break;
        }
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c)
            break;
        p = c + 1;
    }
    if (!proof_at || proof_at == msg)
        return fail(x, "client-final message has no p=PROOF");
    attr(proof_at, end, 'p', &v, &vl, &next);
    if (next != end)
        return fail(x, "p= must be the last attribute");
    size_t kl = scram_key_len(x->mech);
    uint8_t proof[SCRAM_MAX_KEY + 4];
    int pl = b64_decode(v, vl, proof, sizeof(proof));
    if (pl != (int)kl)
        return fail(x, "proof has the wrong length");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char auth[1600];
    int an = snprintf(auth, sizeof(auth), "%s,%s,%.*s", x->client_first_bare, x->server_first,
                      (int)(proof_at - 1 - msg), msg);
    if (an < 0 || (size_t)an >= sizeof(auth))
        return fail(x, "client-final message too long");
    uint8_t sig[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY];
    hmac(x->mech, x->cred.stored_key, kl, auth, (size_t)an, sig);
    for (size_t i = 0; i < kl; i++)
        client_key[i] = proof[i] ^ sig[i];
    hash(x->mech, client_key, kl, stored);
    if (CRYPTO_memcmp(stored, x->cred.stored_key, kl) != 0) {
        snprintf(x->why, sizeof(x->why), "invalid credentials");
        return -CN_EPROTO;
    }
    uint8_t server_sig[SCRAM_MAX_KEY];
    hmac(x->mech, x->cred.server_key, kl, auth, (size_t)an, server_sig);
    char b64[100];
    b64_encode(server_sig, kl, b64, sizeof(b64));
    int n = snprintf(out, out_len, "v=%s", b64);
    if (n < 0 || (size_t)n >= out_len)
        return fail(x, "server-final message too long");
    return n;
}

int sasl_plain_parse(const char *msg, size_t len, const char **user, size_t *user_len,
                     const char **pw, size_t *pw_len)
{
    const char *z1 = memchr(msg, '\0', len);
    if (!z1)
        return -CN_EINVAL;
    const char *a = z1 + 1;
    const char *z2 = memchr(a, '\0', (size_t)(msg + len - a));
    if (!z2)
        return -CN_EINVAL;
    size_t authz_len = (size_t)(z1 - msg);
    *user = a;
    *user_len = (size_t)(z2 - a);
    *pw = z2 + 1;
    *pw_len = (size_t)(msg + len - *pw);
    if (*user_len == 0 || *user_len > SCRAM_MAX_NAME || *pw_len == 0 ||
        memchr(*pw, '\0', *pw_len))
        return -CN_EINVAL;
    if (authz_len && (authz_len != *user_len || memcmp(msg, *user, authz_len) != 0))
        return -CN_EINVAL;
    return 0;
}
