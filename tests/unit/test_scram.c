/* auth/scram: the RFC 7677 SCRAM-SHA-256 example exchange end to end
 * (credentials from the password, the client's proof checked, the server
 * signature), a wrong proof, the librdkafka nonce form, malformed
 * messages, saslname escapes, PLAIN parsing and password checks against
 * stored credentials, base64 edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "auth/scram.h"
#include "util/common.h"

#define C1 "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define S1 "r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define C2 "c=biws,r=" NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define S2 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* The exchange as the RFC's server had it (its server nonce, not ours). */
static void rfc_exchange(scram_exchange *x, scram_cred *c)
{
    uint8_t salt[32];
    int sl = b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt));
    assert_int_equal(sl, 16);
    assert_int_equal(scram_cred_make(SCRAM_SHA_256, "pencil", 6, salt, (size_t)sl, 4096, c), 0);
    assert_int_equal(scram_first(x, SCRAM_SHA_256, C1, strlen(C1)), 0);
    assert_string_equal(x->user, "user");
    assert_string_equal(x->client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
    x->cred = *c;
    strcpy(x->nonce, NONCE);
    strcpy(x->server_first, S1);
}

static void test_rfc7677_example(void **state)
{
    (void)state;
    scram_exchange x;
    scram_cred c;
    rfc_exchange(&x, &c);
    char out[200];
    int n = scram_final(&x, C2, strlen(C2), out, sizeof(out));
    assert_int_equal(n, (int)strlen(S2));
    assert_string_equal(out, S2);
    assert_true(scram_check_password(&c, "pencil", 6));
    assert_false(scram_check_password(&c, "pencils", 7));
}

static void test_wrong_proof_and_nonce(void **state)
{
    (void)state;
    scram_exchange x;
    scram_cred c;
    char out[200];
    rfc_exchange(&x, &c);
    const char *bad = "c=biws,r=" NONCE ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    assert_int_equal(scram_final(&x, bad, strlen(bad), out, sizeof(out)), -CN_EPROTO);
    rfc_exchange(&x, &c);
    const char *other = "c=biws,r=rOprNGfwEbeRWgbNEkqOxx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    assert_int_equal(scram_final(&x, other, strlen(other), out, sizeof(out)), -CN_EINVAL);
    assert_non_null(strstr(x.why, "nonce"));
    rfc_exchange(&x, &c);
    const char *noproof = "c=biws,r=" NONCE;
    assert_int_equal(scram_final(&x, noproof, strlen(noproof), out, sizeof(out)), -CN_EINVAL);
    /* out of order: a second final on a finished exchange */
    assert_int_equal(scram_final(&x, C2, strlen(C2), out, sizeof(out)), -CN_EINVAL);
}

/* librdkafka sends its client nonce before the whole server nonce; Kafka
 * accepts a nonce that ends with the server's, and so do we (the proof is
 * then computed over that message). */
static void test_nonce_suffix_form(void **state)
{
    (void)state;
    scram_exchange x;
    scram_cred c;
    char out[200];
    rfc_exchange(&x, &c);
    const char *pre = "c=biws,r=PREFIX" NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    /* the proof does not fit this message: EPROTO, not a nonce error */
    assert_int_equal(scram_final(&x, pre, strlen(pre), out, sizeof(out)), -CN_EPROTO);
}

static void test_client_first_forms(void **state)
{
    (void)state;
    scram_exchange x;
    static const char *const bad[] = {
        "", "n", "p=tls-unique,,n=a,r=x", "n,,r=x", "n,,n=,r=x", "n,,n=a", "n,,n=a,r=",
        "n,,n=a=,r=x", "n,,n=a=2,r=x", "n,,m=ext,n=a,r=x", "n,a=bob,n=alice,r=x",
        "x,,n=a,r=x", "n,,n=a,r=has space",
    };
    for (size_t i = 0; i < CN_ARRAY_LEN(bad); i++)
        assert_int_equal(scram_first(&x, SCRAM_SHA_512, bad[i], strlen(bad[i])), -CN_EINVAL);
    const char *esc = "n,,n=a=2Cb=3Dc,r=nonce,tokenauth=true";
    assert_int_equal(scram_first(&x, SCRAM_SHA_512, esc, strlen(esc)), 0);
    assert_string_equal(x.user, "a,b=c");
    const char *authz = "y,a=bob,n=bob,r=nonce";
    assert_int_equal(scram_first(&x, SCRAM_SHA_512, authz, strlen(authz)), 0);
    char out[600];
    scram_cred c;
    assert_int_equal(scram_cred_make(SCRAM_SHA_512, "pw", 2, NULL, 0, 4096, &c), 0);
    assert_int_equal(c.salt_len, 32);
    int n = scram_challenge(&x, &c, out, sizeof(out));
    assert_true(n > 0);
    assert_true(strncmp(out, "r=nonce", 7) == 0 && strstr(out, ",i=4096"));
}

static void test_credentials(void **state)
{
    (void)state;
    scram_cred c, d;
    assert_int_equal(scram_cred_make(SCRAM_SHA_256, "pw", 2, NULL, 0, 100, &c), -CN_EINVAL);
    assert_int_equal(scram_cred_make(SCRAM_SHA_256, "pw", 2, NULL, 0, 20000, &c), -CN_EINVAL);
    assert_int_equal(scram_cred_make(SCRAM_SHA_512, "pw", 2, NULL, 0, 8192, &c), 0);
    assert_true(scram_check_password(&c, "pw", 2));
    /* the same password salted again differs; a fake never matches */
    assert_int_equal(scram_cred_make(SCRAM_SHA_512, "pw", 2, NULL, 0, 8192, &d), 0);
    assert_memory_not_equal(c.stored_key, d.stored_key, 64);
    scram_fake_cred(SCRAM_SHA_512, "ghost", &d);
    scram_cred e;
    scram_fake_cred(SCRAM_SHA_512, "ghost", &e);
    assert_memory_equal(d.salt, e.salt, d.salt_len); /* stable salt per name */
    assert_false(scram_check_password(&d, "pw", 2));
    assert_int_equal(scram_mech_parse("scram-sha-512", 13), SCRAM_SHA_512);
    assert_int_equal(scram_mech_parse("SCRAM-SHA-1", 11), 0);
}

static void test_plain_and_base64(void **state)
{
    (void)state;
    const char *u, *p;
    size_t ul, pl;
    assert_int_equal(sasl_plain_parse("\0alice\0secret", 13, &u, &ul, &p, &pl), 0);
    assert_int_equal(ul, 5);
    assert_int_equal(pl, 6);
    assert_int_equal(sasl_plain_parse("alice\0alice\0secret", 18, &u, &ul, &p, &pl), 0);
    assert_int_equal(sasl_plain_parse("bob\0alice\0secret", 16, &u, &ul, &p, &pl), -CN_EINVAL);
    assert_int_equal(sasl_plain_parse("\0alice\0", 7, &u, &ul, &p, &pl), -CN_EINVAL);
    assert_int_equal(sasl_plain_parse("\0\0pw", 4, &u, &ul, &p, &pl), -CN_EINVAL);
    assert_int_equal(sasl_plain_parse("alice", 5, &u, &ul, &p, &pl), -CN_EINVAL);
    uint8_t b[16];
    assert_int_equal(b64_decode("biws", 4, b, sizeof(b)), 3);
    assert_memory_equal(b, "n,,", 3);
    assert_int_equal(b64_decode("YQ==", 4, b, sizeof(b)), 1);
    assert_int_equal(b64_decode("YQ=", 3, b, sizeof(b)), -1);
    assert_int_equal(b64_decode("Y=Q=", 4, b, sizeof(b)), -1);
    assert_int_equal(b64_decode("a*bc", 4, b, sizeof(b)), -1);
    char o[16];
    assert_int_equal(b64_encode((const uint8_t *)"n,,", 3, o, sizeof(o)), 4);
    assert_string_equal(o, "biws");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_example),   cmocka_unit_test(test_wrong_proof_and_nonce),
        cmocka_unit_test(test_nonce_suffix_form), cmocka_unit_test(test_client_first_forms),
        cmocka_unit_test(test_credentials),       cmocka_unit_test(test_plain_and_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
