/* Proof that libraft (cowsql/raft >= 0.22, the raft_step API; docs/cluster-plan.md)
 * links into our build and behaves as the cluster plan assumes. No I/O, no
 * threads, virtual time: the test is the "disk" and the "network".
 *
 * - one voter: RAFT_START with a bootstrap configuration entry at index 1
 *   makes it leader at once; a submitted entry is reported for persistence
 *   (RAFT_UPDATE_ENTRIES) and commits only after RAFT_PERSISTED_ENTRIES.
 * - three voters: the election timeout makes a candidate that asks for term
 *   and vote to be persisted in the same update that carries its RequestVote
 *   messages (the caller must fsync them before sending), and two granted
 *   votes of three make it leader of the new term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <raft.h>

_Static_assert(RAFT_VERSION_NUMBER >= 2200, "libraft >= 0.22 (raft_step API) required");

/* The first log entry of a new group: its configuration (what the legacy
 * raft_bootstrap writes through raft_io). The caller keeps ownership of the
 * entries handed to RAFT_START: libraft copies what it needs (the terms into
 * its trail, the configuration decoded). */
static void start(struct raft *r, unsigned n_voters)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 1; i <= n_voters; i++) {
        char addr[2] = {(char)('0' + i), 0};
        assert_int_equal(raft_configuration_add(&conf, i, addr, RAFT_VOTER), 0);
    }
    struct raft_buffer buf;
    assert_int_equal(raft_configuration_encode(&conf, &buf), 0);
    raft_configuration_close(&conf);

    struct raft_entry entry = {.term = 1, .type = RAFT_CHANGE, .buf = buf, .batch = buf.base};
    struct raft_event ev = {.time = 0, .type = RAFT_START};
    ev.start.term = 1;
    ev.start.voted_for = 0;
    ev.start.metadata = NULL;
    ev.start.start_index = 1;
    ev.start.entries = &entry;
    ev.start.n_entries = 1;
    struct raft_update up = {0};
    assert_int_equal(raft_step(r, &ev, &up), 0);
    raft_free(buf.base);

    /* Start loads state: nothing to persist or send. */
    assert_false(up.flags & (RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR |
                             RAFT_UPDATE_ENTRIES | RAFT_UPDATE_MESSAGES));
    assert_true(raft_state(r) == RAFT_FOLLOWER || raft_state(r) == RAFT_LEADER);
    assert_int_equal(raft_last_index(r), 1);
}

static void test_one_voter_commits(void **state)
{
    (void)state;
    struct raft r;
    assert_int_equal(raft_init(&r, NULL, NULL, 1, "1"), 0); /* no raft_io, no fsm */
    raft_seed(&r, 42);
    start(&r, 1);
    assert_int_equal(raft_state(&r), RAFT_LEADER);
    assert_int_equal(raft_current_term(&r), 1);
    assert_int_equal(raft_commit_index(&r), 1);

    /* Submit one command (the caller owns its memory; batch must be set). */
    static char payload[] = "batch";
    struct raft_entry e = {.term = raft_current_term(&r), .type = RAFT_COMMAND,
                           .buf = {payload, sizeof payload}, .batch = payload};
    struct raft_event ev = {.time = 10, .type = RAFT_SUBMIT};
    ev.submit.entries = &e;
    ev.submit.n = 1;
    struct raft_update up = {0};
    assert_int_equal(raft_step(&r, &ev, &up), 0);
    assert_true(up.flags & RAFT_UPDATE_ENTRIES);
    assert_int_equal(up.entries.index, 2);
    assert_int_equal(up.entries.n, 1);
    assert_ptr_equal(up.entries.batch[0].buf.base, payload);
    assert_int_equal(up.entries.batch[0].term, 1);
    assert_int_equal(raft_commit_index(&r), 1); /* not durable yet: not committed */

    /* Our "fsync" is done: the entry commits (majority of one). */
    ev = (struct raft_event){.time = 11, .type = RAFT_PERSISTED_ENTRIES};
    ev.persisted_entries.index = 2;
    up = (struct raft_update){0};
    assert_int_equal(raft_step(&r, &ev, &up), 0);
    assert_true(up.flags & RAFT_UPDATE_COMMIT_INDEX);
    assert_int_equal(raft_commit_index(&r), 2);
    assert_int_equal(raft_state(&r), RAFT_LEADER);

    raft_close(&r, NULL);
}

static void test_three_voters_election(void **state)
{
    (void)state;
    struct raft r;
    assert_int_equal(raft_init(&r, NULL, NULL, 1, "1"), 0);
    raft_seed(&r, 42);
    raft_set_election_timeout(&r, 1000);
    start(&r, 3);
    assert_int_equal(raft_state(&r), RAFT_FOLLOWER);
    raft_time t = raft_timeout(&r);
    assert_true(t >= 1000 && t <= 2000); /* randomized in [1x, 2x] */

    struct raft_event ev = {.time = t, .type = RAFT_TIMEOUT};
    struct raft_update up = {0};
    assert_int_equal(raft_step(&r, &ev, &up), 0);
    assert_int_equal(raft_state(&r), RAFT_CANDIDATE);
    assert_int_equal(raft_current_term(&r), 2);
    assert_int_equal(raft_voted_for(&r), 1);
    unsigned persist = RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR;
    assert_int_equal(up.flags & persist, persist);
    assert_true(up.flags & RAFT_UPDATE_MESSAGES);
    assert_int_equal(up.messages.n, 2);
    for (unsigned i = 0; i < up.messages.n; i++) {
        assert_int_equal(up.messages.batch[i].type, RAFT_REQUEST_VOTE);
        assert_int_equal(up.messages.batch[i].request_vote.term, 2);
        assert_false(up.messages.batch[i].request_vote.pre_vote);
    }

    /* Server 2 grants its vote: two of three. */
    struct raft_message m = {.type = RAFT_REQUEST_VOTE_RESULT, .server_id = 2, .server_address = "2"};
    m.request_vote_result.version = 2;
    m.request_vote_result.term = 2;
    m.request_vote_result.vote_granted = true;
    ev = (struct raft_event){.time = t + 5, .type = RAFT_RECEIVE};
    ev.receive.message = &m;
    up = (struct raft_update){0};
    assert_int_equal(raft_step(&r, &ev, &up), 0);
    assert_int_equal(raft_state(&r), RAFT_LEADER);
    assert_true(up.flags & RAFT_UPDATE_STATE);
    /* The new leader announces itself with empty AppendEntries to both. */
    assert_true(up.flags & RAFT_UPDATE_MESSAGES);
    assert_int_equal(up.messages.n, 2);
    for (unsigned i = 0; i < up.messages.n; i++) {
        assert_int_equal(up.messages.batch[i].type, RAFT_APPEND_ENTRIES);
        assert_int_equal(up.messages.batch[i].append_entries.n_entries, 0);
        assert_int_equal(up.messages.batch[i].append_entries.prev_log_index, 1);
    }
    /* No entry of its own term yet: its commit index is the old one. */
    assert_int_equal(raft_commit_index(&r), 1);

    raft_close(&r, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_voter_commits),
        cmocka_unit_test(test_three_voters_election),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
