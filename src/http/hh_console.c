/* The web console: one page and its script and style sheet, embedded in the
 * binary (gen/console_assets.c, written by tools/embed_console.py from
 * src/http/console/), talking to the JSON API with fetch().
 *
 *   GET /                  302 to /console
 *   GET /console           index.html
 *   GET /console/{file}    app.js, style.css (404 not_found for any other)
 *
 * The files never change while the process runs, so they carry a strong
 * ETag (a hash of their bytes, computed by the generator) and
 * "Cache-Control: no-cache": a browser revalidates on each load and gets
 * 304 Not Modified without a body while the binary is the same. An
 * If-None-Match that lists the ETag (anywhere in the list, weak or not) or
 * is "*" matches. */
#include <string.h>

#include "http/http_int.h"

#define CONSOLE_CACHE "no-cache"

static const hh_asset *asset_find(const char *name)
{
    for (size_t i = 0; i < hh_console_n_assets; i++)
        if (strcmp(hh_console_assets[i].name, name) == 0)
            return &hh_console_assets[i];
    return NULL;
}

static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    return strstr(inm, etag) != NULL;
}

static void serve(hreq *q, const hh_asset *a)
{
    char extra[128];
    snprintf(extra, sizeof(extra), "ETag: %s\r\nX-Content-Type-Options: nosniff\r\n", a->etag);
    q->cache_control = CONSOLE_CACHE;
    if (etag_matches(q->if_none_match, a->etag)) {
        hh_reply(q, 304, a->ctype, NULL, 0, extra); /* no type or length said (reply.c) */
        return;
    }
    hh_reply(q, 200, a->ctype, a->data, a->len, extra);
}

void hh_console_root(hreq *q)
{
    static const char body[] = "see /console\n";
    hh_reply(q, 302, "text/plain; charset=utf-8", body, sizeof(body) - 1,
             "Location: /console\r\n");
}

void hh_console(hreq *q)
{
    const hh_asset *a = asset_find("index.html");
    if (!a) {
        hh_error(q, 404, "not_found", "this build has no console");
        return;
    }
    serve(q, a);
}

void hh_console_asset(hreq *q)
{
    const hh_asset *a = asset_find(q->seg[1]);
    if (!a || strcmp(a->name, "index.html") == 0) {
        hh_error(q, 404, "not_found", "no such console file");
        return;
    }
    serve(q, a);
}
