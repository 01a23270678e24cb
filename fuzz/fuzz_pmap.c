/* libFuzzer harness for ssl.principal.mapping.rules (src/auth/pmap.c):
 * the input up to the first 0xff byte is the rules text, the rest a
 * certificate subject the compiled rules are applied to. Crashes,
 * sanitizer reports and leaks are findings; so is a mapped name that is not
 * NUL-terminated inside the caller's buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const uint8_t *sep = memchr(data, 0xff, size);
    size_t rl = sep ? (size_t)(sep - data) : size;
    char *rules = malloc(rl + 1), *dn = malloc(size - rl + 1);
    memcpy(rules, data, rl);
    rules[rl] = '\0';
    size_t dl = sep ? size - rl - 1 : 0;
    memcpy(dn, sep ? sep + 1 : data, dl);
    dn[dl] = '\0';
    auth_pmap *m = NULL;
    char err[256];
    if (auth_pmap_new(rules, &m, err, sizeof(err)) == 0) {
        char out[64];
        memset(out, 'x', sizeof(out));
        if (auth_pmap_apply(m, dn, out, sizeof(out)) == 0 && !memchr(out, '\0', sizeof(out)))
            abort();
        auth_pmap_free(m);
    } else if (m) {
        abort(); /* a failed compile leaves nothing behind */
    }
    free(rules);
    free(dn);
    return 0;
}
