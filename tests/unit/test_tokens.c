/* auth/tokens: bearer tokens on a real __users log: the string's shape,
 * checks (right, wrong secret, unknown, malformed, expired), tokens of a
 * user that does not exist, a user's deletion taking its tokens in the
 * same batch, token deletion, and tokens coming back after a compaction
 * and a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_test_util.h"

#include <string.h>

#include "auth/tokens.h"
#include "auth/users.h"
#include "auth/users_int.h"
#include "broker/broker.h"
#include "net/loop.h"
#include "util/common.h"

typedef struct fx {
    char dir[64];
    cairn_config cfg;
    loop *l;
    broker *b;
    auth_users *u;
} fx;

static void fx_open(fx *f)
{
    assert_int_equal(loop_new(&f->l), 0);
    assert_int_equal(broker_open(&f->cfg, f->l, &f->b), 0);
    assert_int_equal(auth_users_open(f->b, &f->u), 0);
}

static void fx_close(fx *f)
{
    auth_users_close(f->u);
    broker_close(f->b);
    loop_free(f->l);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    but_config_tmpdir(&f->cfg, f->dir, sizeof(f->dir), "tokens");
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

static void add_user(fx *f, const char *name)
{
    scram_cred c[2];
    auth_user_change ch[2];
    for (int m = SCRAM_SHA_256; m <= SCRAM_SHA_512; m++) {
        assert_int_equal(scram_cred_make((scram_mech)m, "pw", 2, NULL, 0, 4096, &c[m - 1]), 0);
        ch[m - 1] = (auth_user_change){name, (scram_mech)m, &c[m - 1]};
    }
    int64_t t;
    assert_int_equal(auth_users_apply(f->u, ch, 2, &t), 0);
}

static int check(fx *f, const char *tok, int64_t now, const char **user)
{
    const char *who = NULL;
    int64_t exp = -1;
    int rc = auth_token_check(f->u, tok, strlen(tok), now, &who, &exp);
    if (user)
        *user = who;
    return rc;
}

static void test_create_and_check(void **state)
{
    fx *f = *state;
    add_user(f, "alice");
    char tok[AUTH_TOKEN_LEN + 1];
    auth_token_info in;
    int64_t t;
    assert_int_equal(auth_token_create(f->u, "nobody", 1000, 0, "", tok, &in, &t), -CN_ENOENT);
    assert_int_equal(auth_token_create(f->u, "alice", 1000, -1, "", tok, &in, &t), -CN_EINVAL);
    assert_int_equal(auth_token_create(f->u, "alice", 1000, 500, "job", tok, &in, &t), 0);
    assert_int_equal(strlen(tok), AUTH_TOKEN_LEN);
    assert_memory_equal(tok, "cairn_", 6);
    assert_memory_equal(tok + 6, in.id, AUTH_TOKEN_ID_HEX);
    assert_string_equal(in.user, "alice");
    assert_string_equal(in.description, "job");
    assert_int_equal(in.created_ms, 1000);
    assert_int_equal(in.expires_ms, 1500);
    const char *who;
    assert_int_equal(check(f, tok, 1499, &who), 0);
    assert_string_equal(who, "alice");
    assert_int_equal(check(f, tok, 1500, NULL), -CN_ETIMEDOUT);
    char bad[AUTH_TOKEN_LEN + 1];
    memcpy(bad, tok, sizeof(bad));
    bad[AUTH_TOKEN_LEN - 1] = bad[AUTH_TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
    assert_int_equal(check(f, bad, 1000, NULL), -CN_ENOENT); /* wrong secret */
    memcpy(bad, tok, sizeof(bad));
    bad[6] = bad[6] == '0' ? '1' : '0';
    assert_int_equal(check(f, bad, 1000, NULL), -CN_ENOENT); /* unknown id */
    bad[6] = 'X';
    assert_int_equal(check(f, bad, 1000, NULL), -CN_ENOENT); /* not hex */
    assert_int_equal(check(f, "cairn_", 1000, NULL), -CN_ENOENT);
    assert_int_equal(auth_token_check(f->u, tok, AUTH_TOKEN_LEN - 1, 1000, &who, &t), -CN_ENOENT);
    /* found by id, deleted by id */
    auth_token_info got;
    assert_int_equal(auth_token_find(f->u, in.id, &got), 0);
    assert_int_equal(auth_token_find(f->u, "zz", &got), -CN_ENOENT);
    char id[AUTH_TOKEN_ID_HEX + 1];
    memcpy(id, in.id, sizeof(id));
    assert_int_equal(auth_token_delete(f->u, id, &t), 0);
    assert_int_equal(auth_token_delete(f->u, id, &t), -CN_ENOENT);
    assert_int_equal(check(f, tok, 1000, NULL), -CN_ENOENT);
}

static void test_user_deletion_takes_tokens(void **state)
{
    fx *f = *state;
    add_user(f, "alice");
    add_user(f, "bob");
    char ta[AUTH_TOKEN_LEN + 1], tb1[AUTH_TOKEN_LEN + 1], tb2[AUTH_TOKEN_LEN + 1];
    auth_token_info in;
    int64_t t;
    assert_int_equal(auth_token_create(f->u, "alice", 1000, 0, "", ta, &in, &t), 0);
    assert_int_equal(auth_token_create(f->u, "bob", 1000, 0, "", tb1, &in, &t), 0);
    assert_int_equal(auth_token_create(f->u, "bob", 1000, 0, "", tb2, &in, &t), 0);
    /* deleting one of bob's two credentials leaves his tokens */
    auth_user_change one = {"bob", SCRAM_SHA_256, NULL};
    assert_int_equal(auth_users_apply(f->u, &one, 1, &t), 0);
    assert_int_equal(check(f, tb1, 1000, NULL), 0);
    /* deleting the last one takes them */
    auth_user_change last = {"bob", SCRAM_SHA_512, NULL};
    assert_int_equal(auth_users_apply(f->u, &last, 1, &t), 0);
    assert_int_equal(check(f, tb1, 1000, NULL), -CN_ENOENT);
    assert_int_equal(check(f, tb2, 1000, NULL), -CN_ENOENT);
    assert_int_equal(check(f, ta, 1000, NULL), 0);
    /* a new bob does not get the old tokens back, not even after a reopen */
    add_user(f, "bob");
    assert_int_equal(check(f, tb1, 1000, NULL), -CN_ENOENT);
    fx_close(f);
    fx_open(f);
    assert_int_equal(check(f, tb1, 1000, NULL), -CN_ENOENT);
    assert_int_equal(check(f, ta, 1000, NULL), 0);
}

static void nop_timer(loop_timer *tm) { (void)tm; }

static void test_compaction_and_reopen(void **state)
{
    fx *f = *state;
    add_user(f, "alice");
    char keep[AUTH_TOKEN_LEN + 1], gone[AUTH_TOKEN_LEN + 1];
    auth_token_info in;
    int64_t t;
    assert_int_equal(auth_token_create(f->u, "alice", 1000, 5000, "kept", keep, &in, &t), 0);
    assert_int_equal(auth_token_create(f->u, "alice", 1000, 0, "", gone, &in, &t), 0);
    assert_int_equal(auth_token_delete(f->u, in.id, &t), 0);
    kvl *kv = auth_store_kvl(f->u->st);
    assert_int_equal(kvl_compact(kv), 0);
    loop_timer tm;
    loop_timer_init(&tm, nop_timer, NULL);
    for (int i = 0; i < 500 && kvl_compacting(kv); i++) {
        loop_timer_start(f->l, &tm, 10);
        loop_run_once(f->l, 10);
    }
    loop_timer_stop(f->l, &tm);
    assert_false(kvl_compacting(kv));
    fx_close(f);
    fx_open(f);
    const char *who;
    assert_int_equal(check(f, keep, 5999, &who), 0);
    assert_string_equal(who, "alice");
    assert_int_equal(check(f, keep, 6000, NULL), -CN_ETIMEDOUT);
    assert_int_equal(check(f, gone, 1000, NULL), -CN_ENOENT);
    assert_non_null(auth_users_find_any(f->u, "alice"));
    char id[AUTH_TOKEN_ID_HEX + 1];
    memcpy(id, keep + 6, AUTH_TOKEN_ID_HEX);
    id[AUTH_TOKEN_ID_HEX] = '\0';
    auth_token_info got;
    assert_int_equal(auth_token_find(f->u, id, &got), 0);
    assert_string_equal(got.description, "kept");
    assert_int_equal(got.expires_ms, 6000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_deletion_takes_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_and_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
