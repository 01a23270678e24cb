/* cairn consume TOPIC: committed records to stdout, one a line, as a
 * read_committed Kafka consumer would see them (no aborted transactions, no
 * control records).
 *
 * Where it starts: --from earliest (default: each partition's log start),
 * latest (its last stable offset: only what comes next), or an offset N
 * (in each partition, clamped to [log start, high watermark]); --partition P
 * reads P alone. The positions come from GET /topics/{t} (which also makes
 * an unknown topic an error here: consuming creates nothing).
 *
 * Where it ends: by default at the end of the log. Each partition is read in
 * turn through GET /topics/{t}/partitions/{p}/records with timeout_ms=0
 * (src/http/hh_read.c), until a read's next offset reaches its last stable
 * offset. With --follow it waits for more instead, over one Server-Sent
 * Events stream of the chosen partitions (GET /topics/{t}/stream,
 * src/http/hh_sse.c; the start positions sent as its Last-Event-ID, or
 * partition= and offset= for one partition), until interrupted. --max N
 * stops after N records either way. No consumer group is joined and nothing
 * is committed.
 *
 * A line is the record's value bytes (a null value: empty), with
 * --key-sep SEP "KEY SEP VALUE" (a null key: empty), as kcat -K prints;
 * values that are not text arrive base64-encoded from the API and are
 * written as their raw bytes. With --json each line is the record's JSON
 * object as the API gives it ({"partition", "offset", "timestamp", "key",
 * "value", "headers"}, *_b64 for bytes). Records of one partition come in
 * offset order; partitions interleave. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

typedef struct cpart {
    int32_t id;
    int64_t pos;                 /* next offset to read */
    int done;                    /* exit-at-end mode: reached the last stable offset */
} cpart;

typedef struct consume_ctx {
    cli *c;
    const char *topic;
    const char *from;            /* "earliest", "latest" or an offset in decimal */
    int64_t partition;           /* -1: every partition */
    int64_t max;                 /* -1: no limit */
    int follow;
    const char *sep;             /* NULL: values only */
    int64_t count;               /* records written */
    cpart *parts;
    int n_parts;
    char event[32];              /* SSE: the event name of the block being read */
} consume_ctx;

static int consume_opt(cli *c, int code, const char *arg, void *ctx)
{
    consume_ctx *k = ctx;
    switch (code) {
    case 'F': {
        int64_t n;
        if (strcmp(arg, "earliest") != 0 && strcmp(arg, "latest") != 0 &&
            cli__parse_i64(c, "--from (earliest, latest or an offset)", arg, &n))
            return CLI_USAGE;
        k->from = arg;
        return 0;
    }
    case 'p': return cli__parse_i64(c, "--partition", arg, &k->partition);
    case 'n': return cli__parse_i64(c, "--max", arg, &k->max);
    case 'f': k->follow = 1; return 0;
    case 'K':
        if (!arg[0])
            return cli__usage(c, "--key-sep needs a separator");
        k->sep = arg;
        return 0;
    default: return cli__usage(c, "unknown option");
    }
}

/* Write the bytes of r's name (a string) or name_b64 (base64); null or
 * absent writes nothing. */
static void write_bytes(const json_t *r, const char *name)
{
    json_t *v = json_object_get(r, name);
    if (json_is_string(v)) {
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        return;
    }
    char b64name[32];
    snprintf(b64name, sizeof(b64name), "%s_b64", name);
    const char *s = json_string_value(json_object_get(r, b64name));
    size_t n;
    uint8_t *raw = s ? cli__b64_decode(s, &n) : NULL;
    if (raw)
        fwrite(raw, 1, n, stdout);
    free(raw);
}

/* Write one record; 1 when --max is reached. */
static int emit(consume_ctx *k, const json_t *r)
{
    if (k->c->json) {
        json_dumpf(r, stdout, JSON_COMPACT);
    } else {
        if (k->sep) {
            write_bytes(r, "key");
            fputs(k->sep, stdout);
        }
        write_bytes(r, "value");
    }
    fputc('\n', stdout);
    k->count++;
    return k->max >= 0 && k->count >= k->max;
}

/* The partitions to read and their start positions, from GET /topics/{t}. */
static int plan(consume_ctx *k)
{
    cli *c = k->c;
    char *path = cli__path(c, "/topics/", k->topic, "");
    json_t *j = NULL;
    int rc = cli__request(c, "GET", path, NULL, &j);
    free(path);
    if (rc)
        return rc;
    json_t *arr = json_object_get(j, "partitions");
    int n = (int)json_array_size(arr);
    if (k->partition >= n) {
        json_decref(j);
        return cli__fail(c, "topic '%s' has %d partition(s); %" PRId64 " does not exist",
                         k->topic, n, k->partition);
    }
    k->parts = xcalloc((size_t)(n ? n : 1), sizeof(*k->parts));
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p) {
        int32_t id = (int32_t)json_integer_value(json_object_get(p, "partition"));
        if (k->partition >= 0 && id != k->partition)
            continue;
        int64_t start = json_integer_value(json_object_get(p, "log_start_offset"));
        int64_t lso = json_integer_value(json_object_get(p, "last_stable_offset"));
        int64_t hw = json_integer_value(json_object_get(p, "high_watermark"));
        int64_t pos = start;
        if (strcmp(k->from, "latest") == 0)
            pos = lso;
        else if (strcmp(k->from, "earliest") != 0)
            pos = strtoll(k->from, NULL, 10);
        pos = pos < start ? start : pos > hw ? hw : pos;
        k->parts[k->n_parts++] = (cpart){id, pos, 0};
    }
    json_decref(j);
    return CLI_OK;
}

/* Exit at the end: every partition in turn, reads that do not wait. */
static int read_to_end(consume_ctx *k)
{
    cli *c = k->c;
    int left = k->n_parts;
    while (left > 0) {
        for (int i = 0; i < k->n_parts; i++) {
            cpart *p = &k->parts[i];
            if (p->done)
                continue;
            char after[96];
            snprintf(after, sizeof(after), "/partitions/%d/records?offset=%" PRId64 "&timeout_ms=0",
                     p->id, p->pos);
            char *path = cli__path(c, "/topics/", k->topic, after);
            json_t *j = NULL;
            int rc = cli__request(c, "GET", path, NULL, &j);
            free(path);
            if (rc)
                return rc;
            size_t idx;
            json_t *r;
            json_array_foreach(json_object_get(j, "records"), idx, r) {
                if (emit(k, r)) {
                    json_decref(j);
                    return CLI_OK;
                }
            }
            int64_t next = json_integer_value(json_object_get(j, "next_offset"));
            int64_t lso = json_integer_value(json_object_get(j, "last_stable_offset"));
            if (next >= lso) {
                p->done = 1;
                left--;
            } else if (next <= p->pos && json_array_size(json_object_get(j, "records")) == 0) {
                json_decref(j);          /* never spin on a read that cannot move */
                return cli__fail(c, "reading partition %d stopped at offset %" PRId64
                                 " (the broker returned nothing and no next offset)", p->id,
                                 p->pos);
            }
            p->pos = next;
            json_decref(j);
            if (fflush(stdout) != 0)
                return cli__stdout_failed(c);
        }
    }
    return CLI_OK;
}

/* --follow: one line of the event stream. */
static int on_sse_line(void *arg, const char *line, size_t len)
{
    consume_ctx *k = arg;
    if (len == 0) {                          /* end of an event block */
        k->event[0] = '\0';
        return 0;
    }
    if (strncmp(line, "event:", 6) == 0) {
        const char *v = line + 6 + (line[6] == ' ');
        snprintf(k->event, sizeof(k->event), "%s", v);
        return 0;
    }
    if (strncmp(line, "data:", 5) != 0)
        return 0;                            /* id:, comments (keepalive, shutdown) */
    const char *v = line + 5 + (line[5] == ' ');
    json_t *j = json_loads(v, 0, NULL);
    if (!j)
        return cli__fail(k->c, "the stream sent data that is not JSON: %.200s", v);
    int rc = 0;
    if (strcmp(k->event, "error") == 0) {
        const char *msg = json_string_value(json_object_get(j, "message"));
        const char *code = json_string_value(json_object_get(j, "error_code"));
        rc = cli__fail(k->c, "the stream ended: %s (%s)", msg ? msg : "error",
                       code ? code : "error");
    } else if (k->event[0] == '\0' || strcmp(k->event, "record") == 0) {
        rc = emit(k, j) ? CLI_STREAM_STOP : 0;
        if (fflush(stdout) != 0)
            rc = cli__stdout_failed(k->c);
    }
    json_decref(j);
    return rc;
}

static int follow(consume_ctx *k)
{
    cli *c = k->c;
    char *path;
    char *hdr = NULL;
    if (k->partition >= 0) {
        char after[96];
        snprintf(after, sizeof(after), "/stream?partition=%d&offset=%" PRId64, k->parts[0].id,
                 k->parts[0].pos);
        path = cli__path(c, "/topics/", k->topic, after);
    } else {
        /* Last-Event-ID "P:O,...": resume after offset O of each P, so each
         * starts at its position (pos - 1 is "nothing delivered yet"). */
        size_t cap = 32 + (size_t)k->n_parts * 32, n;
        hdr = xmalloc(cap);
        n = (size_t)snprintf(hdr, cap, "Last-Event-ID: ");
        for (int i = 0; i < k->n_parts; i++)
            n += (size_t)snprintf(hdr + n, cap - n, "%s%d:%" PRId64, i ? "," : "",
                                  k->parts[i].id, k->parts[i].pos - 1);
        path = cli__path(c, "/topics/", k->topic, "/stream");
    }
    const char *headers[] = {hdr, NULL};
    int rc = cli__stream(c, path, hdr ? headers : NULL, on_sse_line, k);
    free(path);
    free(hdr);
    return rc;
}

int cli__consume(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'F'},
        {"partition", required_argument, NULL, 'p'},
        {"max", required_argument, NULL, 'n'},
        {"follow", no_argument, NULL, 'f'},
        {"key-sep", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    consume_ctx k = {.c = c, .from = "earliest", .partition = -1, .max = -1};
    int first, rc = cli__parse(c, argc, argv, "p:n:fK:", opts, consume_opt, &k, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, argc - first < 1 ? "which topic?" : "one topic at a time");
    k.topic = argv[first];
    if ((rc = plan(&k)) == CLI_OK && k.max != 0 && k.n_parts > 0)
        rc = k.follow ? follow(&k) : read_to_end(&k);
    free(k.parts);
    return rc;
}
