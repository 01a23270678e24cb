/* Inside the users table (users.c) and the tokens kept in the same log
 * (tokens.c): not for other modules, which use users.h and tokens.h.
 * Loop thread only. */
#ifndef CAIRN_AUTH_USERS_INT_H
#define CAIRN_AUTH_USERS_INT_H
#include <stdint.h>

#include "auth/astore.h"
#include "auth/scram.h"
#include "auth/users.h"
#include "kvlog/kvlog.h"
#include "record/batch.h"

/* The key's second byte: a SCRAM mechanism (1, 2) or a token. */
#define AUTH_KEY_TOKEN 3

typedef struct user_ent {
    char *name;
    scram_cred *c[3];               /* indexed by scram_mech (1, 2) */
} user_ent;

typedef struct token_ent {
    uint8_t id[8];
    uint8_t hash[32];               /* SHA-256 of the secret */
    int64_t created_ms, expires_ms; /* expires 0: never */
    char *user, *description;       /* owned */
} token_ent;

struct auth_users {
    auth_store *st;
    user_ent *v;                    /* sorted by name */
    int n, cap;
    token_ent *tok;                 /* in creation order */
    int ntok, captok;
    uint64_t gen;                   /* bumped by every change */
};

/* tokens.c, called by users.c: one replayed token record (key byte 1 is
 * AUTH_KEY_TOKEN); the live tokens into a compaction; free them all. */
int auth__token_record(auth_users *u, const batch_record *r, const char **why);
int auth__tokens_compact(const auth_users *u, kvl_compaction *cx);
void auth__tokens_free(auth_users *u);
/* Deleting a user deletes its tokens: tombstones for each of name's
 * tokens added to bt (auth__tokens_drop_user removes them from memory
 * once bt is appended). */
void auth__tokens_tombstones(const auth_users *u, const char *name, kvl_batch *bt);
void auth__tokens_drop_user(auth_users *u, const char *name);

#endif
