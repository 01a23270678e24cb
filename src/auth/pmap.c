/* ssl.principal.mapping.rules (contract and syntax in pmap.h). */
#include "auth/pmap.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

typedef struct pmap_rule {
    pcre2_code *re;                 /* NULL: DEFAULT */
    char *repl;                     /* as written, escapes kept (expanded at apply) */
    char kase;                      /* 0, 'L' or 'U' */
} pmap_rule;

struct auth_pmap {
    pmap_rule *v;
    int n;
};

void auth_pmap_free(auth_pmap *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        pcre2_code_free(m->v[i].re);
        free(m->v[i].repl);
    }
    free(m->v);
    free(m);
}

/* The end of a '/'-terminated part starting at p (a backslash escapes the
 * next character), or NULL when the '/' is missing. */
static const char *part_end(const char *p)
{
    for (; *p && *p != '/'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p == '/' ? p : NULL;
}

static int bad(char *err, size_t errlen, const char *rule, const char *why)
{
    int n = (int)strcspn(rule, ",\n");
    snprintf(err, errlen, "ssl.principal.mapping.rules: invalid rule '%.*s': %s", n > 200 ? 200 : n,
             rule, why);
    return -CN_EINVAL;
}

/* One rule at *pp into r; *pp moves past it. */
static int parse_rule(const char **pp, pmap_rule *r, char *err, size_t errlen)
{
    const char *p = *pp, *start = p;
    if (strncmp(p, "DEFAULT", 7) == 0) {
        *pp = p + 7;
        return 0;
    }
    if (strncmp(p, "RULE:", 5) != 0)
        return bad(err, errlen, start, "expected DEFAULT or RULE:PATTERN/REPLACEMENT/[L|U]");
    p += 5;
    const char *pe = part_end(p);
    const char *re_end = pe ? part_end(pe + 1) : NULL;
    if (!re_end)
        return bad(err, errlen, start, "PATTERN and REPLACEMENT each end with '/'");
    int ec;
    PCRE2_SIZE eo;
    r->re = pcre2_compile((PCRE2_SPTR)p, (PCRE2_SIZE)(pe - p), PCRE2_UTF, &ec, &eo, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        char why[220];
        snprintf(why, sizeof(why), "pattern at %zu: %s", (size_t)eo, (const char *)msg);
        return bad(err, errlen, start, why);
    }
    size_t rl = (size_t)(re_end - (pe + 1));
    r->repl = xmalloc(rl + 1);
    memcpy(r->repl, pe + 1, rl);
    r->repl[rl] = '\0';
    p = re_end + 1;
    if (*p == 'L' || *p == 'U')
        r->kase = *p++;
    *pp = p;
    return 0;
}

int auth_pmap_new(const char *rules, auth_pmap **out, char *err, size_t errlen)
{
    auth_pmap *m = xcalloc(1, sizeof(*m));
    const char *p = rules ? rules : "";
    int cap = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p)
            break;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 4;
            m->v = xrealloc(m->v, (size_t)cap * sizeof(*m->v));
        }
        pmap_rule *r = &m->v[m->n];
        *r = (pmap_rule){0};
        const char *rule = p;
        int rc = parse_rule(&p, r, err, errlen);
        m->n++;
        if (rc < 0) {
            auth_pmap_free(m);
            return rc;
        }
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (*p && *p != ',' && *p != '\n') {
            auth_pmap_free(m);
            return bad(err, errlen, rule, "unexpected text after the rule");
        }
        if (*p)
            p++;
    }
    *out = m;
    return 0;
}

/* REPLACEMENT with the groups of md (over subject s) into out. */
static int expand(const pmap_rule *r, const char *s, pcre2_match_data *md, int ngroups, char *out,
                  size_t outlen)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t n = 0;
    for (const char *q = r->repl; *q; q++) {
        const char *src = q;
        size_t len = 1;
        if (*q == '\\' && q[1]) {
            src = ++q;
        } else if (*q == '$' && isdigit((unsigned char)q[1])) {
            int g = q[1] - '0';
            q++;
            if (g >= ngroups || ov[2 * g] == PCRE2_UNSET) {
                len = 0; /* an unset group is empty */
            } else {
                src = s + ov[2 * g];
                len = ov[2 * g + 1] - ov[2 * g];
            }
        }
        if (n + len >= outlen)
            return -CN_ERANGE;
        memcpy(out + n, src, len);
        n += len;
    }
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (r->kase)
            out[i] = (char)(r->kase == 'L' ? tolower((unsigned char)out[i])
                                           : toupper((unsigned char)out[i]));
    return n ? 0 : -CN_ENOENT;
}

int auth_pmap_apply(const auth_pmap *m, const char *dn, char *out, size_t outlen)
{
    int n = m ? m->n : 0;
    for (int i = 0; i <= n; i++) {
        if (i == n && n > 0)
            break; /* rules given and none applied */
        const pmap_rule *r = i < n ? &m->v[i] : NULL;
        if (!r || !r->re) { /* DEFAULT (or no rules at all) */
            size_t l = strlen(dn);
            if (!l)
                return -CN_ENOENT;
            if (l >= outlen)
                return -CN_ERANGE;
            memcpy(out, dn, l + 1);
            return 0;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
        CN_ASSERT(md != NULL);
        int rc = pcre2_match(r->re, (PCRE2_SPTR)dn, strlen(dn), 0,
                             PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL);
        if (rc > 0) {
            rc = expand(r, dn, md, rc, out, outlen);
            pcre2_match_data_free(md);
            return rc;
        }
        pcre2_match_data_free(md);
    }
    return -CN_ENOENT;
}
