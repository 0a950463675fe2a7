/*
 * Authentication: password hashes (argon2id), login, session and API tokens,
 * and the token check of every request. The one place that decides who a
 * caller is, so a directory (LDAP) can join later behind auth_login().
 *
 * Tokens are "mlt_" followed by 64 hex digits (256 random bits); the store
 * keeps only their SHA-256, so a stolen database holds no usable token.
 */
#ifndef ML_AUTH_H
#define ML_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct req_user;

/* Every bearer secret: a 4-byte prefix ("mlt_" user token, "mle_" enrollment token, "mla_" agent
 * credential) + 64 hex. */
#define AUTH_SECRET_LEN 68
#define AUTH_TOKEN_LEN AUTH_SECRET_LEN /* "mlt_" + 64 hex */
#define AUTH_HASH_MAX 128              /* encoded argon2id hash */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024

/* argon2id (m = 19 MiB, t = 2, p = 1) with a random salt, PHC-encoded. 0 or -errno. */
int auth_hash_password(const char *pw, char out[AUTH_HASH_MAX]);
/* 0 when pw matches the encoded hash; -EACCES when not; -EINVAL for a bad hash. */
int auth_verify_password(const char *encoded, const char *pw);

/*
 * Checks a user name and password. On success fills u and returns 0; -EACCES
 * for an unknown user, a wrong password or a disabled account (the caller
 * cannot tell which: the same message, and about the same time, for all).
 */
int auth_login(struct store *s, const char *username, const char *pw, struct req_user *u);

/*
 * Creates a token of kind "session" or "api" for user_id, expiring at
 * expires_at (unix time; 0 = never). Writes the secret (NUL-terminated) to
 * tok and its row id to *id. The secret exists only here: show it once.
 */
int auth_token_new(struct store *s, int64_t user_id, const char *kind, const char *name,
                   int64_t expires_at, char tok[AUTH_TOKEN_LEN + 1], int64_t *id);

/*
 * Finds the user of a presented token. 0 with u filled; -EACCES when the
 * token is malformed, unknown, expired or its user disabled.
 */
int auth_token_check(struct store *s, const char *token, struct req_user *u);

/* The SHA-256 hex of a token, as stored. */
void auth_token_hash(const char *token, char hex[65]);

/*
 * A new bearer secret: prefix (4 bytes: "mlt_", "mle_", "mla_") and 64
 * random hex digits into out, its SHA-256 hex (as stored) into hash.
 * 0 or -EIO.
 */
int auth_secret_new(const char *prefix, char out[AUTH_SECRET_LEN + 1], char hash[65]);
/* Is s prefix followed by exactly 64 lower-case hex digits? */
bool auth_secret_wellformed(const char *s, const char *prefix);

#endif
