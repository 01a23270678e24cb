/* auth/pmap: ssl.principal.mapping.rules as Kafka's documentation shows
 * them: DEFAULT, RULE with groups, lazy quantifiers, L/U, escaped '/',
 * rules tried in order, commas inside patterns, no rule applying, empty
 * results, too long results, and invalid rules named in the error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/pmap.h"
#include "util/common.h"

static auth_pmap *compile(const char *rules)
{
    auth_pmap *m = NULL;
    char err[256] = "";
    int rc = auth_pmap_new(rules, &m, err, sizeof(err));
    if (rc != 0)
        fail_msg("rules '%s': %s", rules, err);
    return m;
}

static void expect(const auth_pmap *m, const char *dn, const char *want)
{
    char out[128];
    int rc = auth_pmap_apply(m, dn, out, sizeof(out));
    if (!want) {
        assert_int_equal(rc, -CN_ENOENT);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
}

static void test_default(void **st)
{
    (void)st;
    expect(NULL, "CN=bob,O=Acme", "CN=bob,O=Acme");
    auth_pmap *m = compile("");
    expect(m, "CN=bob,O=Acme", "CN=bob,O=Acme");
    expect(m, "", NULL);
    auth_pmap_free(m);
    m = compile("DEFAULT");
    expect(m, "CN=x", "CN=x");
    auth_pmap_free(m);
}

static void test_kafka_examples(void **st)
{
    (void)st;
    /* Kafka's documentation: the CN of service users, the rest lowercased
     * as name@unit, then the DN itself. */
    auth_pmap *m = compile("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\n"
                           "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\n"
                           "DEFAULT");
    expect(m, "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
           "serviceuser");
    expect(m, "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
           "adminuser@admin");
    expect(m, "CN=other,O=Acme", "CN=other,O=Acme"); /* DEFAULT */
    auth_pmap_free(m);
    m = compile("RULE:^CN=([^,]*).*$/$1/U");
    expect(m, "CN=bob,OU=eng", "BOB");
    expect(m, "O=Acme", NULL); /* no rule applies: no principal */
    auth_pmap_free(m);
}

static void test_whole_match_and_escapes(void **st)
{
    (void)st;
    /* the pattern must match the whole DN, not a part of it */
    auth_pmap *m = compile("RULE:CN=([a-z]+)/$1/");
    expect(m, "CN=bob", "bob");
    expect(m, "CN=bob,O=Acme", NULL);
    auth_pmap_free(m);
    /* '/' escaped in both parts; a literal '$' and an unset group */
    m = compile("RULE:^CN=(.*)\\/(x)?(.*)$/$1\\/$3\\$$2/");
    expect(m, "CN=a/b", "a/b$");
    auth_pmap_free(m);
    /* an empty result names no principal */
    m = compile("RULE:^CN=(.*)$/$1/,DEFAULT");
    expect(m, "CN=", NULL);
    auth_pmap_free(m);
    /* too long for the caller's buffer */
    m = compile("DEFAULT");
    char small[4];
    assert_int_equal(auth_pmap_apply(m, "CN=bob", small, sizeof(small)), -CN_ERANGE);
    auth_pmap_free(m);
}

static void test_invalid(void **st)
{
    (void)st;
    const char *bad[] = {"RULE:^CN=(.*)$/$1", "NOPE", "DEFAULT junk", "RULE:^CN=(.*$/$1/",
                         "RULE:x/y/Q", "DEFAULT,RULE:"};
    for (size_t i = 0; i < CN_ARRAY_LEN(bad); i++) {
        auth_pmap *m = NULL;
        char err[256] = "";
        assert_int_equal(auth_pmap_new(bad[i], &m, err, sizeof(err)), -CN_EINVAL);
        assert_null(m);
        assert_non_null(strstr(err, "ssl.principal.mapping.rules: invalid rule"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_kafka_examples),
        cmocka_unit_test(test_whole_match_and_escapes),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
