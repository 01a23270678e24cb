/* libFuzzer harness for the SASL messages a client sends before it is
 * authenticated (src/auth/scram.c): SCRAM client-first and client-final,
 * PLAIN tokens, base64. The first byte picks the mechanism; the rest is
 * split at the first 0xff byte into a client-first and a client-final
 * message, run through a whole exchange against fixed credentials.
 * Crashes, sanitizer reports and leaks are findings; so is an exchange that
 * succeeds (no input can know the proof for the made-up password). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    scram_mech mech = data[0] & 1 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    const char *msg = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memchr(msg, 0xff, n);
    size_t first_len = sep ? (size_t)(sep - msg) : n;

    const char *u, *pw;
    size_t ul, pl;
    (void)sasl_plain_parse(msg, n, &u, &ul, &pw, &pl);
    uint8_t raw[256];
    (void)b64_decode(msg, n < 200 ? n : 200, raw, sizeof(raw));

    static scram_cred cred[3];
    static int have;
    if (!have) {
        static const uint8_t salt[] = "fuzz-salt";
        scram_cred_make(SCRAM_SHA_256, "p@ss", 4, salt, sizeof(salt) - 1, 4096, &cred[1]);
        scram_cred_make(SCRAM_SHA_512, "p@ss", 4, salt, sizeof(salt) - 1, 4096, &cred[2]);
        have = 1;
    }
    scram_exchange x;
    char out[600];
    if (scram_first(&x, mech, msg, first_len) < 0)
        return 0;
    if (scram_challenge(&x, &cred[mech], out, sizeof(out)) < 0 || !sep)
        return 0;
    int rc = scram_final(&x, sep + 1, n - first_len - 1, out, sizeof(out));
    if (rc >= 0)
        abort(); /* a proof for an unknown password and a random nonce */
    return 0;
}
