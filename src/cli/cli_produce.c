/* cairn produce TOPIC: one record per line of stdin, through
 * POST /topics/{t}/records (src/http/hh_produce.c; the broker answers once
 * the records are fsynced, and creates the topic when
 * auto.create.topics.enable says so).
 *
 * A line is its bytes without the LF (a CR before it stays; an empty line is
 * a record with an empty value; a last line without LF counts). With
 * --key-sep SEP the line is split at the first SEP into key and value (a
 * line without SEP has a null key), as kcat -K does. Text is sent as a JSON
 * string, bytes that are not UTF-8 as base64 (value_b64 / key_b64), so any
 * byte but LF goes through unchanged. Unkeyed records are spread by the
 * broker (sticky per request), keyed ones by murmur2 of the key, as Kafka
 * producers do; --partition P sends every record to P.
 *
 * Lines are sent in requests of up to BATCH_RECORDS records or BATCH_BYTES
 * bytes, and whenever stdin has nothing more to read right now, so an
 * interactive session sees each line stored as it is typed. The first
 * failed request ends the command (the records before it are stored).
 * Output: a summary line; with --json one {"partition", "offset"} object a
 * line per record, in input order. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_int.h"

#define BATCH_RECORDS 1000
#define BATCH_BYTES ((size_t)1 << 20)
#define READ_CHUNK ((size_t)64 << 10)

typedef struct produce_ctx {
    cli *c;
    char *path;
    const char *sep;             /* NULL: no keys */
    int64_t partition;           /* -1: the broker's partitioner */
    json_t *batch;               /* records not sent yet */
    size_t batch_bytes;
    int64_t sent;
} produce_ctx;

static int produce_opt(cli *c, int code, const char *arg, void *ctx)
{
    produce_ctx *p = ctx;
    if (code == 'p')
        return cli__parse_i64(c, "--partition", arg, &p->partition);
    if (!arg[0])
        return cli__usage(c, "--key-sep needs a separator");
    p->sep = arg;
    return 0;
}

/* Set name (or name_b64 when not UTF-8) in o to the bytes s[0..len). */
static void set_bytes(json_t *o, const char *name, const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    if (v) {
        json_object_set_new(o, name, v);
        return;
    }
    char b64name[32];
    snprintf(b64name, sizeof(b64name), "%s_b64", name);
    char *e = cli__b64_encode(s, len);
    json_object_set_new(o, b64name, json_string(e));
    free(e);
}

static void add_line(produce_ctx *p, const char *s, size_t len)
{
    json_t *r = json_object();
    const char *v = s;
    size_t vlen = len;
    if (p->sep) {
        const char *at = memmem(s, len, p->sep, strlen(p->sep));
        if (at) {
            set_bytes(r, "key", s, (size_t)(at - s));
            v = at + strlen(p->sep);
            vlen = len - (size_t)(v - s);
        }
    }
    set_bytes(r, "value", v, vlen);
    if (p->partition >= 0)
        json_object_set_new(r, "partition", json_integer(p->partition));
    json_array_append_new(p->batch, r);
    p->batch_bytes += len + 16;
}

static int flush_batch(produce_ctx *p)
{
    size_t n = json_array_size(p->batch);
    if (!n)
        return CLI_OK;
    json_t *body = json_object(), *j = NULL;
    json_object_set(body, "records", p->batch);
    int rc = cli__request(p->c, "POST", p->path, body, &j);
    json_decref(body);
    json_array_clear(p->batch);
    p->batch_bytes = 0;
    if (rc)
        return rc;
    if (p->c->json) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(j, "offsets"), i, o) {
            json_dumpf(o, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        }
        if (fflush(stdout) != 0)
            rc = cli__stdout_failed(p->c);
    }
    json_decref(j);
    p->sent += (int64_t)n;
    return rc;
}

static int stdin_idle(void)
{
    struct pollfd pf = {.fd = 0, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

int cli__produce(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"key-sep", required_argument, NULL, 'K'},
        {"partition", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    produce_ctx p = {.c = c, .partition = -1};
    int first, rc = cli__parse(c, argc, argv, "K:p:", opts, produce_opt, &p, &first);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (argc - first != 1)
        return cli__usage(c, argc - first < 1 ? "which topic?" : "one topic at a time");
    const char *topic = argv[first];
    p.path = cli__path(c, "/topics/", topic, "/records");
    p.batch = json_array();
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < READ_CHUNK) {
            cap = cap ? cap * 2 : 2 * READ_CHUNK;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(0, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cli__fail(c, "reading stdin: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            if (len)
                add_line(&p, buf, len);
            rc = flush_batch(&p);
            break;
        }
        len += (size_t)r;
        size_t start = 0;
        char *nl;
        while (rc == 0 && (nl = memchr(buf + start, '\n', len - start))) {
            add_line(&p, buf + start, (size_t)(nl - (buf + start)));
            start = (size_t)(nl - buf) + 1;
            if (json_array_size(p.batch) >= BATCH_RECORDS || p.batch_bytes >= BATCH_BYTES)
                rc = flush_batch(&p);
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (rc == 0 && json_array_size(p.batch) && stdin_idle())
            rc = flush_batch(&p);
        if (rc)
            break;
    }
    if (rc == 0 && !c->json)
        printf("produced %" PRId64 " record(s) to %s\n", p.sent, topic);
    else if (rc && p.sent)
        fprintf(stderr, "%s: %" PRId64 " record(s) before the failed request were stored\n",
                c->prog, p.sent);
    free(buf);
    free(p.path);
    json_decref(p.batch);
    return rc;
}
