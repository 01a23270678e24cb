/* SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka use
 * them) and SASL PLAIN, server side: credential derivation, the two server
 * messages of a SCRAM exchange, and PLAIN checked against stored SCRAM
 * credentials. Pure functions over OpenSSL's crypto (PBKDF2, HMAC, SHA-2,
 * RAND_bytes): no I/O, no global state; the client's messages are parsed
 * here and are fuzzed (fuzz/fuzz_scram.c).
 *
 * Credentials are what Kafka stores per user and mechanism: a salt, the
 * iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
 * ServerKey = HMAC(SaltedPassword, "Server Key"), SaltedPassword =
 * PBKDF2-HMAC-H(password, salt, iterations). Never the password.
 *
 * An exchange (scram_exchange) is two steps:
 *   client-first  "n,,n=USER,r=CNONCE[,ext...]"  -> scram_first: the user
 *                 name (for the caller to look up), then scram_challenge
 *                 with the credentials: server-first "r=CNONCE+SNONCE,s=SALT,i=N";
 *   client-final  "c=biws,r=NONCE,p=PROOF"       -> scram_final: checks
 *                 the proof; on success server-final "v=SIGNATURE".
 * A user that does not exist is given a challenge from made-up credentials
 * (scram_fake_cred) so the exchange fails only at the proof, like a wrong
 * password: the answers do not tell which user names exist.
 * Errors are -CN_EINVAL (malformed message: the reason in the exchange's
 * why) or -CN_EPROTO (the proof does not match). */
#ifndef CAIRN_AUTH_SCRAM_H
#define CAIRN_AUTH_SCRAM_H
#include <stddef.h>
#include <stdint.h>

/* Kafka's mechanism numbers (AlterUserScramCredentials' Mechanism). */
typedef enum { SCRAM_SHA_256 = 1, SCRAM_SHA_512 = 2 } scram_mech;

#define SCRAM_MAX_KEY 64            /* SHA-512 */
#define SCRAM_MAX_SALT 64
#define SCRAM_MIN_ITERATIONS 4096   /* Kafka's minimum */
#define SCRAM_MAX_ITERATIONS 16384  /* Kafka's maximum */
#define SCRAM_MAX_NAME 255

typedef struct scram_cred {
    scram_mech mech;
    int32_t iterations;
    uint8_t salt_len;
    uint8_t salt[SCRAM_MAX_SALT];
    uint8_t stored_key[SCRAM_MAX_KEY];
    uint8_t server_key[SCRAM_MAX_KEY];
} scram_cred;

/* "SCRAM-SHA-256" / "SCRAM-SHA-512" -> mech, or 0. */
scram_mech scram_mech_parse(const char *name, size_t len);
const char *scram_mech_name(scram_mech m);
size_t scram_key_len(scram_mech m);           /* 32 or 64 */

/* Derive credentials for password with salt (salt NULL: 32 random bytes).
 * 0 or -CN_EINVAL (iterations outside Kafka's bounds, salt too long). */
int scram_cred_make(scram_mech mech, const char *password, size_t pw_len, const uint8_t *salt,
                    size_t salt_len, int32_t iterations, scram_cred *out);
/* Kafka's other upsertion form: the client derived SaltedPassword itself
 * (AlterUserScramCredentials carries salt and SaltedPassword). */
int scram_cred_from_salted(scram_mech mech, const uint8_t *salted, size_t salted_len,
                           const uint8_t *salt, size_t salt_len, int32_t iterations,
                           scram_cred *out);
/* 1 when password matches cred (SASL PLAIN against stored SCRAM
 * credentials; constant-time compare). Costs one PBKDF2 run. */
int scram_check_password(const scram_cred *cred, const char *password, size_t pw_len);
/* Credentials for a user that does not exist, stable per name within the
 * process (so a probe sees the same salt twice), that no password matches. */
void scram_fake_cred(scram_mech mech, const char *user, scram_cred *out);

typedef struct scram_exchange {
    scram_mech mech;
    int step;                       /* 0 before first, 1 after, 2 done */
    char user[SCRAM_MAX_NAME + 1];  /* decoded saslname */
    char client_first_bare[512];
    char server_first[512];
    char nonce[256];                /* client nonce + server nonce */
    scram_cred cred;
    char why[128];
} scram_exchange;

/* Parse client-first (len bytes at msg) into x (x->user set). 0 or
 * -CN_EINVAL. */
int scram_first(scram_exchange *x, scram_mech mech, const char *msg, size_t len);
/* The server-first message for cred (cred copied into x) into out (NUL-
 * terminated). Returns its length, or -CN_EINVAL when out is too small. */
int scram_challenge(scram_exchange *x, const scram_cred *cred, char *out, size_t out_len);
/* Check client-final; on success write server-final into out and return
 * its length; -CN_EPROTO for a wrong proof, -CN_EINVAL for a malformed
 * message (x->why). */
int scram_final(scram_exchange *x, const char *msg, size_t len, char *out, size_t out_len);

/* SASL PLAIN: "[authzid]\0authcid\0password". Pointers into msg. 0 or
 * -CN_EINVAL (authzid, when present, must equal authcid). */
int sasl_plain_parse(const char *msg, size_t len, const char **user, size_t *user_len,
                     const char **pw, size_t *pw_len);

/* Standard base64 without line breaks; decode returns the byte count or
 * -1 for bad input. */
int b64_encode(const uint8_t *in, size_t n, char *out, size_t out_len);
int b64_decode(const char *in, size_t n, uint8_t *out, size_t out_len);
#endif
