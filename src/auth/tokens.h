/* Bearer tokens for the HTTP API: a token stands for one user (the
 * principal User:NAME), as that user's password does, until it expires or
 * is deleted. Services that call the API keep a token instead of a
 * password; a token can be revoked alone.
 *
 * A token string is "cairn_" + 16 hex digits of its id + "_" + 64 hex
 * digits of a 32-byte random secret (87 characters). Only the secret's
 * SHA-256 is stored: the string is shown once, at creation, and cannot be
 * recovered from the broker.
 *
 * Record format: tokens live in the users' log __users (users.h), beside
 * the credentials (big-endian):
 *   key:   int8 version 0, int8 3 (a token), 8 bytes token id
 *   value: int8 version 0, int64 created (ms since the epoch), int64
 *          expires (ms since the epoch, 0: never), 32 bytes SHA-256 of the
 *          secret, int8 L + L bytes user name (1..255), int16 D + D bytes
 *          description (0..1024, UTF-8)
 *   tombstone (null value): the token was deleted.
 * Deleting a user's last credential deletes its tokens in the same batch.
 * Loop thread only. */
#ifndef CAIRN_AUTH_TOKENS_H
#define CAIRN_AUTH_TOKENS_H
#include <stddef.h>
#include <stdint.h>

#include "auth/users.h"

#define AUTH_TOKEN_LEN 87           /* the token string's length */
#define AUTH_TOKEN_ID_HEX 16        /* the id as text */
#define AUTH_TOKEN_MAX_DESC 1024

typedef struct auth_token_info {
    char id[AUTH_TOKEN_ID_HEX + 1];
    const char *user, *description; /* valid until the next change */
    int64_t created_ms, expires_ms; /* expires 0: never */
} auth_token_info;

/* A new token for user (who must have a credential), valid for ttl_ms
 * from now_ms (0: no expiry). The string goes to token (AUTH_TOKEN_LEN + 1
 * bytes), what is stored to *info; *target is the log offset to wait for
 * (auth_users_wait). 0, -CN_ENOENT (no such user), -CN_EINVAL (bad ttl or
 * description) or a storage error (nothing created). */
int auth_token_create(auth_users *u, const char *user, int64_t now_ms, int64_t ttl_ms,
                      const char *description, char *token, auth_token_info *info,
                      int64_t *target);
/* Delete the token with that id (16 hex digits). 0, -CN_ENOENT, or a
 * storage error. */
int auth_token_delete(auth_users *u, const char *id, int64_t *target);
/* The token with that id into *out: 0 or -CN_ENOENT. */
int auth_token_find(const auth_users *u, const char *id, auth_token_info *out);

/* Check a presented token string (len bytes, not NUL-terminated): 0 with
 * *user its owner (valid until the next change) and *expires_ms its expiry
 * (0: never); -CN_ENOENT when it is
 * malformed, unknown, its secret is wrong or its user is gone;
 * -CN_ETIMEDOUT when it has expired at now_ms. Constant time in the
 * secret. */
int auth_token_check(const auth_users *u, const char *tok, size_t len, int64_t now_ms,
                     const char **user, int64_t *expires_ms);

/* Every token, in creation order. */
void auth_tokens_each(const auth_users *u, void (*fn)(void *arg, const auth_token_info *t),
                      void *arg);

#endif
