/* auth/acl: Kafka's authorization rules over a real __acls log: literal,
 * wildcard and prefixed patterns, DENY over ALLOW, the operations that
 * imply DESCRIBE / DESCRIBE_CONFIGS, User:* and host matches, super users,
 * allow.everyone.if.no.acl.found, filters for describe and delete, the
 * generation, invalid bindings, and the ACLs coming back after a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <string.h>

#include "auth/acl.h"
#include "broker/broker.h"
#include "net/loop.h"
#include "util/common.h"

typedef struct fx {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    acl_store *s;
} fx;

static void fx_open(fx *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(acl_open(f->b, &f->s), 0);
}

static void fx_close(fx *f)
{
    acl_close(f->s);
    broker_close(f->b);
    loop_free(f->l);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "acl");
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fx_close(f);
    but_rm_rf(f->dir);
    config_fini(&f->cfg);
    free(f);
    return 0;
}

static acl_binding B(int rt, const char *name, int pt, const char *pr, int op, int perm)
{
    return (acl_binding){(int8_t)rt, (int8_t)pt, (int8_t)op, (int8_t)perm, name, pr, "*"};
}

static int may(fx *f, const char *pr, int op, int rt, const char *name)
{
    return acl_authorize(f->s, &f->cfg, pr, "10.0.0.1", op, rt, name, strlen(name));
}

static void add(fx *f, acl_binding b)
{
    int64_t t;
    assert_int_equal(acl_add(f->s, &b, 1, &t), 0);
}

static void test_rules(void **state)
{
    fx *f = *state;
    uint64_t g0 = acl_generation(f->s);
    /* no ACL on a resource: allow.everyone.if.no.acl.found (false) */
    assert_false(may(f, "User:alice", ACL_OP_READ, ACL_R_TOPIC, "orders"));
    add(f, B(ACL_R_TOPIC, "orders", ACL_P_LITERAL, "User:alice", ACL_OP_WRITE, ACL_ALLOW));
    assert_true(acl_generation(f->s) > g0);
    assert_true(may(f, "User:alice", ACL_OP_WRITE, ACL_R_TOPIC, "orders"));
    assert_true(may(f, "User:alice", ACL_OP_DESCRIBE, ACL_R_TOPIC, "orders")); /* implied */
    assert_false(may(f, "User:alice", ACL_OP_READ, ACL_R_TOPIC, "orders"));
    assert_false(may(f, "User:bob", ACL_OP_WRITE, ACL_R_TOPIC, "orders"));
    assert_false(may(f, "User:alice", ACL_OP_WRITE, ACL_R_TOPIC, "orders2"));
    assert_false(may(f, "User:alice", ACL_OP_WRITE, ACL_R_GROUP, "orders"));
    /* prefixed */
    add(f, B(ACL_R_TOPIC, "logs-", ACL_P_PREFIXED, "User:bob", ACL_OP_ALL, ACL_ALLOW));
    assert_true(may(f, "User:bob", ACL_OP_READ, ACL_R_TOPIC, "logs-eu"));
    assert_true(may(f, "User:bob", ACL_OP_ALTER_CONFIGS, ACL_R_TOPIC, "logs-"));
    assert_false(may(f, "User:bob", ACL_OP_READ, ACL_R_TOPIC, "log"));
    /* deny wins, and only for its own operation */
    add(f, B(ACL_R_TOPIC, "logs-secret", ACL_P_LITERAL, "User:bob", ACL_OP_READ, ACL_DENY));
    assert_false(may(f, "User:bob", ACL_OP_READ, ACL_R_TOPIC, "logs-secret"));
    assert_true(may(f, "User:bob", ACL_OP_DESCRIBE, ACL_R_TOPIC, "logs-secret"));
    assert_true(may(f, "User:bob", ACL_OP_READ, ACL_R_TOPIC, "logs-open"));
    /* wildcard resource and principal; DESCRIBE_CONFIGS from ALTER_CONFIGS */
    add(f, B(ACL_R_GROUP, "*", ACL_P_LITERAL, "User:*", ACL_OP_ALTER_CONFIGS, ACL_ALLOW));
    assert_true(may(f, "User:carol", ACL_OP_DESCRIBE_CONFIGS, ACL_R_GROUP, "any"));
    assert_false(may(f, "User:carol", ACL_OP_DESCRIBE, ACL_R_GROUP, "any"));
    /* host */
    acl_binding h = B(ACL_R_TXN_ID, "tx", ACL_P_LITERAL, "User:dave", ACL_OP_WRITE, ACL_ALLOW);
    h.host = "10.0.0.2";
    add(f, h);
    assert_false(may(f, "User:dave", ACL_OP_WRITE, ACL_R_TXN_ID, "tx"));
    assert_true(acl_authorize(f->s, &f->cfg, "User:dave", "10.0.0.2", ACL_OP_WRITE, ACL_R_TXN_ID,
                              "tx", 2));
    /* super users; and the no-ACL rule flipped */
    char err[128];
    assert_int_equal(config_set(&f->cfg, "super.users", "User:root; User:ops", err, sizeof(err)), 0);
    assert_true(may(f, "User:ops", ACL_OP_DELETE, ACL_R_TOPIC, "logs-secret"));
    assert_false(may(f, "User:op", ACL_OP_DELETE, ACL_R_TOPIC, "nothing"));
    assert_int_equal(config_set(&f->cfg, "allow.everyone.if.no.acl.found", "true", err,
                                sizeof(err)), 0);
    assert_true(may(f, "User:anyone", ACL_OP_DELETE, ACL_R_TOPIC, "nothing"));
    assert_false(may(f, "User:anyone", ACL_OP_READ, ACL_R_TOPIC, "orders")); /* has ACLs */
}

static int count_cb_n;
static void count_cb(void *arg, const acl_binding *b)
{
    (void)arg, (void)b;
    count_cb_n++;
}

static int count(fx *f, acl_filter fl)
{
    count_cb_n = 0;
    acl_each(f->s, &fl, count_cb, NULL);
    return count_cb_n;
}

static void test_filters_delete_and_reopen(void **state)
{
    fx *f = *state;
    acl_binding bs[] = {
        B(ACL_R_TOPIC, "a", ACL_P_LITERAL, "User:x", ACL_OP_READ, ACL_ALLOW),
        B(ACL_R_TOPIC, "a", ACL_P_LITERAL, "User:y", ACL_OP_READ, ACL_ALLOW),
        B(ACL_R_TOPIC, "ab", ACL_P_PREFIXED, "User:x", ACL_OP_WRITE, ACL_DENY),
        B(ACL_R_GROUP, "g", ACL_P_LITERAL, "User:x", ACL_OP_READ, ACL_ALLOW),
    };
    int64_t t;
    assert_int_equal(acl_add(f->s, bs, 4, &t), 0);
    assert_int_equal(acl_add(f->s, bs, 1, &t), 0); /* again: kept once */
    assert_int_equal(acl_count(f->s), 4);
    acl_filter any = {ACL_R_ANY, ACL_P_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL};
    assert_int_equal(count(f, any), 4);
    acl_filter byp = any;
    byp.principal = "User:x";
    assert_int_equal(count(f, byp), 3);
    acl_filter match = any;
    match.rtype = ACL_R_TOPIC;
    match.pattern = ACL_P_MATCH;
    match.name = "abc"; /* "ab" prefixed applies, literal "a" does not */
    assert_int_equal(count(f, match), 1);
    acl_filter lit = any;
    lit.pattern = ACL_P_LITERAL;
    assert_int_equal(count(f, lit), 3);
    acl_filter del = any;
    del.rtype = ACL_R_TOPIC;
    del.name = "a";
    assert_int_equal(acl_delete(f->s, &del, NULL, NULL, &t), 0);
    assert_true(t >= 0);
    assert_int_equal(acl_count(f->s), 2);
    /* durable, then back after a reopen */
    fx_close(f);
    fx_open(f);
    assert_int_equal(acl_count(f->s), 2);
    assert_int_equal(count(f, byp), 2);
}

static void test_invalid(void **state)
{
    (void)state;
    acl_binding ok = B(ACL_R_TOPIC, "t", ACL_P_LITERAL, "User:x", ACL_OP_READ, ACL_ALLOW);
    assert_null(acl_invalid(&ok));
    acl_binding b = ok;
    b.pattern = ACL_P_MATCH;
    assert_non_null(acl_invalid(&b));
    b = ok;
    b.op = ACL_OP_ANY;
    assert_non_null(acl_invalid(&b));
    b = ok;
    b.perm = ACL_PERM_ANY;
    assert_non_null(acl_invalid(&b));
    b = ok;
    b.principal = "alice";
    assert_non_null(acl_invalid(&b));
    b = ok;
    b.name = "";
    assert_non_null(acl_invalid(&b));
    b = ok;
    b.rtype = ACL_R_CLUSTER;
    assert_non_null(acl_invalid(&b)); /* the cluster is named kafka-cluster */
    b.name = ACL_CLUSTER_NAME;
    assert_null(acl_invalid(&b));
    acl_filter fl = {9, ACL_P_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL};
    assert_non_null(acl_filter_invalid(&fl));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_delete_and_reopen, setup, teardown),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
