/* Base64 for the client (RFC 4648, standard alphabet, padded), the form
 * the HTTP API uses for bytes that are not text ("value_b64", "key_b64").
 * Decoding accepts exactly what the broker writes: no whitespace, padding
 * required. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli__b64_encode(const void *p, size_t len)
{
    const uint8_t *s = p;
    char *o = xmalloc((len + 2) / 3 * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        uint32_t v = (uint32_t)s[i] << 16;
        if (n > 1)
            v |= (uint32_t)s[i + 1] << 8;
        if (n > 2)
            v |= s[i + 2];
        o[k++] = alphabet[v >> 18 & 63];
        o[k++] = alphabet[v >> 12 & 63];
        o[k++] = n > 1 ? alphabet[v >> 6 & 63] : '=';
        o[k++] = n > 2 ? alphabet[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

static int val(char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

uint8_t *cli__b64_decode(const char *s, size_t *out_len)
{
    size_t len = strlen(s);
    if (len % 4)
        return NULL;
    uint8_t *o = xmalloc(len / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        int pad = (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=');
        int a = val(s[i]), b = val(s[i + 1]);
        int c = pad >= 2 ? 0 : val(s[i + 2]), d = pad >= 1 ? 0 : val(s[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0 || (pad && i + 4 != len)) {
            free(o);
            return NULL;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        o[k++] = (uint8_t)(v >> 16);
        if (pad < 2)
            o[k++] = (uint8_t)(v >> 8);
        if (pad < 1)
            o[k++] = (uint8_t)v;
    }
    *out_len = k;
    return o;
}
