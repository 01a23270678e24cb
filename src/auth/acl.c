/* ACLs on __acls and the authorizer (contract and record format in acl.h).
 * Memory: an array of bindings with owned strings; acl_authorize scans it
 * (the front ends cache decisions per connection, keyed by the
 * generation), so its cost grows with the number of ACLs, not requests. */
#include "auth/acl.h"

#include <stdlib.h>
#include <string.h>

#include "auth/astore.h"
#include "kvlog/kvlog.h"
#include "net/loop.h"
#include "util/common.h"
#include "util/slog.h"

typedef struct acl_ent {
    acl_binding b;                  /* strings owned */
} acl_ent;

struct acl_store {
    auth_store *st;
    acl_ent *v;
    int n, cap;
    uint64_t gen;
};

static int str_eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static int same(const acl_binding *a, const acl_binding *b)
{
    return a->rtype == b->rtype && a->pattern == b->pattern && a->op == b->op &&
           a->perm == b->perm && str_eq(a->name, b->name) && str_eq(a->principal, b->principal) &&
           str_eq(a->host, b->host);
}

static int find(const acl_store *s, const acl_binding *b)
{
    for (int i = 0; i < s->n; i++)
        if (same(&s->v[i].b, b))
            return i;
    return -1;
}

static void mem_add(acl_store *s, const acl_binding *b)
{
    if (find(s, b) >= 0)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xrealloc(s->v, (size_t)s->cap * sizeof(*s->v));
    }
    acl_binding *d = &s->v[s->n++].b;
    *d = *b;
    d->name = xstrdup(b->name);
    d->principal = xstrdup(b->principal);
    d->host = xstrdup(b->host);
    s->gen++;
}

static void ent_free(acl_ent *e)
{
    free((char *)e->b.name);
    free((char *)e->b.principal);
    free((char *)e->b.host);
}

static void mem_del(acl_store *s, int i)
{
    ent_free(&s->v[i]);
    memmove(s->v + i, s->v + i + 1, (size_t)(s->n - i - 1) * sizeof(*s->v));
    s->n--;
    s->gen++;
}

/* Codec --------------------------------------------------------------------- */

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* Key bytes of b into a buffer of key_max(b) bytes. */
static size_t key_max(const acl_binding *b)
{
    return 5 + 6 + strlen(b->name) + strlen(b->principal) + strlen(b->host);
}

static size_t key_encode(uint8_t *out, const acl_binding *b)
{
    size_t o = 0;
    out[o++] = 0;
    out[o++] = (uint8_t)b->rtype;
    out[o++] = (uint8_t)b->pattern;
    out[o++] = (uint8_t)b->op;
    out[o++] = (uint8_t)b->perm;
    o += put_str(out + o, b->name);
    o += put_str(out + o, b->principal);
    o += put_str(out + o, b->host);
    return o;
}

static char *get_str(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2)
        return NULL;
    size_t n = (size_t)(*p)[0] << 8 | (*p)[1];
    if ((size_t)(end - *p - 2) < n || memchr(*p + 2, '\0', n))
        return NULL;
    char *s = xmalloc(n + 1);
    memcpy(s, *p + 2, n);
    s[n] = '\0';
    *p += 2 + n;
    return s;
}

static int on_record(void *arg, const batch_record *r, const char **why)
{
    acl_store *s = arg;
    const uint8_t *p = r->key, *end = r->key + (r->key_len > 0 ? r->key_len : 0);
    if (r->key_len < 11 || p[0] != 0) {
        *why = "bad ACL key";
        return -CN_EINVAL;
    }
    acl_binding b = {(int8_t)p[1], (int8_t)p[2], (int8_t)p[3], (int8_t)p[4], NULL, NULL, NULL};
    p += 5;
    char *name = get_str(&p, end), *pr = name ? get_str(&p, end) : NULL,
         *host = pr ? get_str(&p, end) : NULL;
    int rc = 0;
    if (!host || p != end) {
        *why = "bad ACL key";
        rc = -CN_EINVAL;
    } else {
        b.name = name;
        b.principal = pr;
        b.host = host;
        if (acl_invalid(&b)) {
            *why = "invalid ACL";
            rc = -CN_EINVAL;
        } else if (r->value_len < 0) {
            int i = find(s, &b);
            if (i >= 0)
                mem_del(s, i);
        } else {
            mem_add(s, &b);
        }
    }
    free(name);
    free(pr);
    free(host);
    return rc;
}

static int on_compact(void *arg, kvl_compaction *cx)
{
    acl_store *s = arg;
    static const uint8_t zero = 0;
    for (int i = 0; i < s->n; i++) {
        uint8_t *k = xmalloc(key_max(&s->v[i].b));
        size_t kl = key_encode(k, &s->v[i].b);
        int rc = kvl_compact_add(cx, k, (int32_t)kl, &zero, 1);
        free(k);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int64_t live_bytes(void *arg)
{
    acl_store *s = arg;
    int64_t n = 0;
    for (int i = 0; i < s->n; i++)
        n += (int64_t)key_max(&s->v[i].b) + 64;
    return n;
}

static const kvl_ops acl_ops = {on_record, on_compact, live_bytes};

/* API ---------------------------------------------------------------------- */

int acl_open(broker *b, acl_store **out)
{
    acl_store *s = xcalloc(1, sizeof(*s));
    int rc = auth_store_open_local(b, BROKER_ACLS_TOPIC, &acl_ops, s, &s->st);
    if (rc < 0) {
        acl_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

acl_store *acl_open_cluster(cluster *c)
{
    acl_store *s = xcalloc(1, sizeof(*s));
    s->st = auth_store_open_cluster(c, "acls", &acl_ops, s);
    return s;
}

void acl_close(acl_store *s)
{
    if (!s)
        return;
    auth_store_close(s->st);
    for (int i = 0; i < s->n; i++)
        ent_free(&s->v[i]);
    free(s->v);
    free(s);
}

uint64_t acl_generation(const acl_store *s)
{
    /* readiness counts: decisions cached while not ready are not kept */
    return s ? s->gen * 2 + (uint64_t)auth_store_ready(s->st) : 0;
}
int acl_count(const acl_store *s) { return s ? s->n : 0; }

const char *acl_invalid(const acl_binding *b)
{
    if (b->rtype < ACL_R_TOPIC || b->rtype > ACL_R_TXN_ID)
        return "unknown or unsupported resource type";
    if (b->pattern != ACL_P_LITERAL && b->pattern != ACL_P_PREFIXED)
        return "the pattern type must be LITERAL or PREFIXED";
    if (b->op < ACL_OP_ALL || b->op > ACL_OP_IDEMPOTENT_WRITE)
        return "unknown operation";
    if (b->perm != ACL_ALLOW && b->perm != ACL_DENY)
        return "the permission must be ALLOW or DENY";
    if (!b->name || !b->name[0] || strlen(b->name) > 32767)
        return "the resource name must not be empty";
    if (!b->principal || !strchr(b->principal, ':') || b->principal[0] == ':' ||
        strlen(b->principal) > 32767)
        return "the principal must be of the form Type:name (User:alice)";
    if (!b->host || !b->host[0] || strlen(b->host) > 255)
        return "the host must not be empty (* for any)";
    if (b->rtype == ACL_R_CLUSTER && !str_eq(b->name, ACL_CLUSTER_NAME))
        return "the cluster resource is named kafka-cluster";
    return NULL;
}

const char *acl_filter_invalid(const acl_filter *f)
{
    if (f->rtype < ACL_R_ANY || f->rtype > ACL_R_TXN_ID)
        return "unknown resource type";
    if (f->pattern < ACL_P_ANY || f->pattern > ACL_P_PREFIXED)
        return "unknown pattern type";
    if (f->op < ACL_OP_ANY || f->op > ACL_OP_IDEMPOTENT_WRITE)
        return "unknown operation";
    if (f->perm < ACL_PERM_ANY || f->perm > ACL_ALLOW)
        return "unknown permission";
    return NULL;
}

/* The resource pattern of b applies to a resource named name (MATCH). */
static int pattern_covers(const acl_binding *b, const char *name, size_t len)
{
    size_t bl = strlen(b->name);
    if (b->pattern == ACL_P_LITERAL)
        return str_eq(b->name, "*") || (bl == len && memcmp(b->name, name, len) == 0);
    return bl <= len && memcmp(b->name, name, bl) == 0; /* PREFIXED */
}

int acl_matches(const acl_filter *f, const acl_binding *b)
{
    if (f->rtype != ACL_R_ANY && f->rtype != b->rtype)
        return 0;
    if (f->op != ACL_OP_ANY && f->op != b->op)
        return 0;
    if (f->perm != ACL_PERM_ANY && f->perm != b->perm)
        return 0;
    if (f->principal && !str_eq(f->principal, b->principal))
        return 0;
    if (f->host && !str_eq(f->host, b->host))
        return 0;
    if (f->pattern == ACL_P_MATCH)
        return !f->name || pattern_covers(b, f->name, strlen(f->name));
    if (f->pattern != ACL_P_ANY && f->pattern != b->pattern)
        return 0;
    return !f->name || str_eq(f->name, b->name);
}

int acl_add(acl_store *s, const acl_binding *b, int n, int64_t *target)
{
    kvl_batch bt;
    kvl_batch_init(&bt);
    static const uint8_t zero = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *k = xmalloc(key_max(&b[i]));
        size_t kl = key_encode(k, &b[i]);
        kvl_batch_add(&bt, k, (int32_t)kl, &zero, 1);
        free(k);
    }
    int rc = auth_store_append(s->st, &bt, target);
    kvl_batch_fini(&bt);
    if (rc < 0)
        return rc;
    if (auth_store_applies_at_append(s->st)) /* else: when the cluster applies it */
        for (int i = 0; i < n; i++)
            mem_add(s, &b[i]);
    auth_store_maybe_compact(s->st);
    return 0;
}

int acl_delete(acl_store *s, const acl_filter *f,
               void (*cb)(void *arg, const acl_binding *b), void *arg, int64_t *target)
{
    *target = -1;
    kvl_batch bt;
    kvl_batch_init(&bt);
    int hits = 0;
    for (int i = 0; i < s->n; i++) {
        if (!acl_matches(f, &s->v[i].b))
            continue;
        uint8_t *k = xmalloc(key_max(&s->v[i].b));
        size_t kl = key_encode(k, &s->v[i].b);
        kvl_batch_add(&bt, k, (int32_t)kl, NULL, -1);
        free(k);
        hits++;
    }
    int rc = hits ? auth_store_append(s->st, &bt, target) : 0;
    kvl_batch_fini(&bt);
    if (rc < 0 || !hits)
        return rc;
    int now = auth_store_applies_at_append(s->st); /* else: when the cluster applies it */
    for (int i = 0; i < s->n;) {
        if (!acl_matches(f, &s->v[i].b)) {
            i++;
            continue;
        }
        if (cb)
            cb(arg, &s->v[i].b);
        if (now)
            mem_del(s, i);
        else
            i++;
    }
    auth_store_maybe_compact(s->st);
    return 0;
}

void acl_each(const acl_store *s, const acl_filter *f,
              void (*cb)(void *arg, const acl_binding *b), void *arg)
{
    for (int i = 0; s && i < s->n; i++)
        if (acl_matches(f, &s->v[i].b))
            cb(arg, &s->v[i].b);
}

void acl_wait(acl_store *s, int64_t target, durable_wait *w,
              void (*cb)(durable_wait *w, int status))
{
    auth_store_wait(s->st, target, w, cb);
}

/* Authorizer ------------------------------------------------------------------ */

static int super_user(const cairn_config *cfg, const char *principal)
{
    const char *p = cfg->super_users;
    size_t pl = strlen(principal);
    while (p && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == pl && memcmp(p, principal, n) == 0)
            return 1;
        if (!semi)
            break;
        p = semi + 1;
    }
    return 0;
}

static int op_covers(int acl_op, int op, int allow)
{
    if (acl_op == ACL_OP_ALL || acl_op == op)
        return 1;
    if (!allow)
        return 0;
    if (op == ACL_OP_DESCRIBE)
        return acl_op == ACL_OP_READ || acl_op == ACL_OP_WRITE || acl_op == ACL_OP_DELETE ||
               acl_op == ACL_OP_ALTER;
    if (op == ACL_OP_DESCRIBE_CONFIGS)
        return acl_op == ACL_OP_ALTER_CONFIGS;
    return 0;
}

int acl_authorize(const acl_store *s, const cairn_config *cfg, const char *principal,
                  const char *host, int op, int rtype, const char *name, size_t name_len)
{
    if (super_user(cfg, principal))
        return 1;
    if (s && !auth_store_ready(s->st))
        return 0; /* a restarted cluster node: its table may still miss ACLs */
    int any = 0, allowed = 0;
    for (int i = 0; s && i < s->n; i++) {
        const acl_binding *b = &s->v[i].b;
        if (b->rtype != rtype || !pattern_covers(b, name, name_len))
            continue;
        any = 1;
        if (!str_eq(b->principal, principal) && !str_eq(b->principal, "User:*"))
            continue;
        if (!str_eq(b->host, "*") && !str_eq(b->host, host))
            continue;
        if (b->perm == ACL_DENY && op_covers(b->op, op, 0))
            return 0; /* deny wins */
        if (b->perm == ACL_ALLOW && op_covers(b->op, op, 1))
            allowed = 1;
    }
    if (!any)
        return cfg->allow_everyone_if_no_acl;
    return allowed;
}

/* Names --------------------------------------------------------------------------- */

static const char *const OPS[] = {NULL, "Any", "All", "Read", "Write", "Create", "Delete",
                                  "Alter", "Describe", "ClusterAction", "DescribeConfigs",
                                  "AlterConfigs", "IdempotentWrite"};
static const char *const RTYPES[] = {NULL, "Any", "Topic", "Group", "Cluster", "TransactionalId"};
static const char *const PATTERNS[] = {NULL, "Any", "Match", "Literal", "Prefixed"};
static const char *const PERMS[] = {NULL, "Any", "Deny", "Allow"};

static const char *name_of(const char *const *t, int n, int v)
{
    return v > 0 && v < n ? t[v] : "Unknown";
}

/* Compare ignoring case, '_' and '-' ("transactional_id" is TransactionalId). */
static int loose_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_' || *a == '-')
            a++;
        while (*b == '_' || *b == '-')
            b++;
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
        if (!x)
            return 1;
        a++, b++;
    }
}

static int parse_of(const char *const *t, int n, const char *s)
{
    for (int i = 1; s && i < n; i++)
        if (loose_eq(t[i], s))
            return i;
    return 0;
}

const char *acl_op_name(int op) { return name_of(OPS, (int)CN_ARRAY_LEN(OPS), op); }
const char *acl_rtype_name(int r) { return name_of(RTYPES, (int)CN_ARRAY_LEN(RTYPES), r); }
const char *acl_pattern_name(int p) { return name_of(PATTERNS, (int)CN_ARRAY_LEN(PATTERNS), p); }
const char *acl_perm_name(int p) { return name_of(PERMS, (int)CN_ARRAY_LEN(PERMS), p); }
int acl_op_parse(const char *s) { return parse_of(OPS, (int)CN_ARRAY_LEN(OPS), s); }
int acl_rtype_parse(const char *s) { return parse_of(RTYPES, (int)CN_ARRAY_LEN(RTYPES), s); }
int acl_pattern_parse(const char *s) { return parse_of(PATTERNS, (int)CN_ARRAY_LEN(PATTERNS), s); }
int acl_perm_parse(const char *s) { return parse_of(PERMS, (int)CN_ARRAY_LEN(PERMS), s); }
