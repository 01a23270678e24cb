/* Record bytes as JSON, both ways (shared by produce, read and, later, the
 * SSE stream): base64 (RFC 4648 standard alphabet, padded; decoding
 * accepts no whitespace and no missing padding) and a stored record's JSON
 * form:
 *   {"partition", "offset", "timestamp", "key" | "key_b64",
 *    "value" | "value_b64", "headers": [[name, value], ...]}
 * key / value are JSON strings when their bytes are text (valid UTF-8,
 * jansson checks, with no control characters but tab, CR and LF), else
 * base64 under the *_b64 name; null keys and values are JSON
 * null under the plain name. A header name or value that is not valid
 * text is {"b64": "..."}; a null header value is null. These are the forms
 * produce accepts, so a record read back can be produced again unchanged. */
#include <string.h>

#include "http/http_int.h"
#include "record/batch.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_t *hh_b64_json(const void *p, size_t len)
{
    const uint8_t *s = p;
    size_t out_len = (len + 2) / 3 * 4;
    char *o = xmalloc(out_len + 1);
    size_t k = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[k++] = b64_alphabet[v >> 18 & 63];
        o[k++] = b64_alphabet[v >> 12 & 63];
        o[k++] = b64_alphabet[v >> 6 & 63];
        o[k++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        o[k++] = b64_alphabet[v >> 18 & 63];
        o[k++] = b64_alphabet[v >> 12 & 63];
        o[k++] = '=';
        o[k++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        o[k++] = b64_alphabet[v >> 18 & 63];
        o[k++] = b64_alphabet[v >> 12 & 63];
        o[k++] = b64_alphabet[v >> 6 & 63];
        o[k++] = '=';
    }
    o[k] = '\0';
    json_t *j = json_stringn(o, k);
    free(o);
    return j;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hh_b64_decode(hreq *q, const char *s, size_t len, uint8_t **out, size_t *out_len)
{
    if (len % 4)
        return -1;
    size_t pad = 0;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    uint8_t *o = hh_alloc(q, len / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int last = i + 4 == len;
        for (int j = 0; j < 4; j++) {
            int is_pad = last && (size_t)j >= 4 - pad;
            v[j] = is_pad ? 0 : b64_val((unsigned char)s[i + (size_t)j]);
            if (v[j] < 0)
                return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        o[k++] = (uint8_t)(x >> 16);
        if (!(last && pad >= 2))
            o[k++] = (uint8_t)(x >> 8);
        if (!(last && pad >= 1))
            o[k++] = (uint8_t)x;
    }
    *out = o;
    *out_len = k;
    return 0;
}

/* Text: no control characters but tab, CR and LF (binary data often is
 * valid UTF-8 by accident: NULs, small integers). jansson checks UTF-8. */
static json_t *text_json(const void *p, int32_t len)
{
    const uint8_t *b = p;
    for (int32_t i = 0; i < len; i++)
        if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') || b[i] == 0x7f)
            return NULL;
    return json_stringn(len ? p : "", (size_t)len);
}

/* Bytes as a JSON string if text, else {"b64": ...}; null for len -1. */
static json_t *bytes_json(const void *p, int32_t len)
{
    if (len < 0)
        return json_null();
    json_t *s = text_json(p, len);
    if (s)
        return s;
    json_t *o = json_object();
    json_object_set_new(o, "b64", hh_b64_json(p, (size_t)len));
    return o;
}

static void set_bytes(json_t *o, const char *name, const char *b64name, const void *p,
                      int32_t len)
{
    if (len < 0) {
        json_object_set_new(o, name, json_null());
        return;
    }
    json_t *s = text_json(p, len);
    if (s)
        json_object_set_new(o, name, s);
    else
        json_object_set_new(o, b64name, hh_b64_json(p, (size_t)len));
}

json_t *hh_record_json(const batch_record *r, int32_t part)
{
    json_t *o = json_object();
    json_object_set_new(o, "partition", json_integer(part));
    json_object_set_new(o, "offset", json_integer(r->offset));
    json_object_set_new(o, "timestamp", json_integer(r->timestamp));
    set_bytes(o, "key", "key_b64", r->key, r->key_len);
    set_bytes(o, "value", "value_b64", r->value, r->value_len);
    json_t *hs = json_array();
    const uint8_t *hp = r->headers, *he = r->headers + r->headers_len;
    batch_header h;
    while (r->n_headers > 0 && hp && batch_header_next(&hp, he, &h) == 1) {
        json_t *pair = json_array();
        json_array_append_new(pair, bytes_json(h.key, h.key_len));
        json_array_append_new(pair, bytes_json(h.value, h.value_len));
        json_array_append_new(hs, pair);
    }
    json_object_set_new(o, "headers", hs);
    return o;
}
