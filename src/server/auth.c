/* Passwords, login and tokens (auth.h). */
#include "auth.h"

#include <argon2.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "log.h"
#include "req.h"
#include "sha256.h"
#include "store.h"

/* OWASP's minimum for argon2id: 19 MiB, two passes, one lane. */
#define AUTH_M_KIB 19456
#define AUTH_T 2
#define AUTH_P 1
#define AUTH_SALT 16
#define AUTH_HASHLEN 32

/* Touch last_used_at at most this often, so reads do not each write. */
#define AUTH_TOUCH_S 60

int auth_hash_password(const char *pw, char out[AUTH_HASH_MAX])
{
	uint8_t salt[AUTH_SALT];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	int rc = argon2id_hash_encoded(AUTH_T, AUTH_M_KIB, AUTH_P, pw, strlen(pw), salt,
	                               sizeof(salt), AUTH_HASHLEN, out, AUTH_HASH_MAX);
	if (rc != ARGON2_OK) {
		log_error("auth: argon2id: %s", argon2_error_message(rc));
		return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int auth_verify_password(const char *encoded, const char *pw)
{
	if (strncmp(encoded, "$argon2id$", 10) != 0)
		return -EINVAL;
	int rc = argon2id_verify(encoded, pw, strlen(pw));
	if (rc == ARGON2_OK)
		return 0;
	if (rc == ARGON2_VERIFY_MISMATCH)
		return -EACCES;
	return -EINVAL;
}

int auth_login(struct store *s, const char *username, const char *pw, struct req_user *u)
{
	/*
	 * Unknown users get their password checked against a fixed hash, so
	 * the answer takes as long as for a known one.
	 */
	static const char dummy[] = "$argon2id$v=19$m=19456,t=2,p=1$"
	                            "c29tZXNhbHRzb21lc2FsdA$"
	                            "qP0mA0Y6cM1M0bcSKCWq8s0QzPNbd7YTn7cGnWn3J3o";
	char hash[AUTH_HASH_MAX] = "";
	int64_t id = 0, disabled = 1;
	int role = 0;
	char name[sizeof(u->name)] = "";
	struct store_q *q = store_query(s,
	                                "SELECT id, username, role, pw_hash, disabled FROM users "
	                                "WHERE username = ? AND source = 'local'",
	                                "t", username);
	if (!q)
		return -EIO;
	if (store_next(q) == 1) {
		id = store_col_int(q, 0);
		snprintf(name, sizeof(name), "%s", store_col_text(q, 1));
		role = role_parse(store_col_text(q, 2));
		snprintf(hash, sizeof(hash), "%s", store_col_text(q, 3));
		disabled = store_col_int(q, 4);
	}
	store_done(q);
	bool known = id != 0 && hash[0] != '\0';
	int rc = auth_verify_password(known ? hash : dummy, pw);
	if (!known || rc != 0 || disabled || role == 0)
		return -EACCES;
	u->id = id;
	u->role = role;
	snprintf(u->name, sizeof(u->name), "%s", name);
	return 0;
}

void auth_token_hash(const char *token, char hex[65])
{
	uint8_t d[32];
	sha256_buf(token, strlen(token), d);
	sha256_hex(d, hex);
}

int auth_token_new(struct store *s, int64_t user_id, const char *kind, const char *name,
                   int64_t expires_at, char tok[AUTH_TOKEN_LEN + 1], int64_t *id)
{
	char hash[65];
	if (auth_secret_new("mlt_", tok, hash) < 0)
		return -EIO;
	static const char sql[] = "INSERT INTO tokens (user_id, kind, name, hash, created_at,"
	                          " expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id";
	/* A token that never expires has expires_at NULL. */
	if (!expires_at)
		return store_insert(s, id, sql, "itttin", user_id, kind, name, hash, store_now());
	return store_insert(s, id, sql, "itttii", user_id, kind, name, hash, store_now(),
	                    expires_at);
}

int auth_secret_new(const char *prefix, char out[AUTH_SECRET_LEN + 1], char hash[65])
{
	uint8_t rnd[32];
	char hex[65];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	sha256_hex(rnd, hex);
	snprintf(out, AUTH_SECRET_LEN + 1, "%.4s%s", prefix, hex);
	auth_token_hash(out, hash);
	return 0;
}

bool auth_secret_wellformed(const char *s, const char *prefix)
{
	if (!s || strlen(s) != AUTH_SECRET_LEN || strncmp(s, prefix, 4) != 0)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int auth_token_check(struct store *s, const char *token, struct req_user *u)
{
	char hash[65];
	int ret = -EACCES;
	if (!auth_secret_wellformed(token, "mlt_"))
		return -EACCES;
	auth_token_hash(token, hash);
	int64_t now = store_now(), last = 0, tid = 0;
	struct store_q *q =
	    store_query(s,
	                "SELECT t.id, t.expires_at, t.last_used_at, u.id, u.username,"
	                " u.role, u.disabled FROM tokens t"
	                " JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
	                "t", hash);
	if (!q)
		return -EIO;
	if (store_next(q) == 1) {
		int64_t exp = store_col_int(q, 1);
		bool expired = !store_col_null(q, 1) && exp != 0 && exp <= now;
		if (!expired && store_col_int(q, 6) == 0) {
			tid = store_col_int(q, 0);
			last = store_col_int(q, 2);
			u->token_id = tid;
			u->id = store_col_int(q, 3);
			snprintf(u->name, sizeof(u->name), "%s", store_col_text(q, 4));
			u->role = role_parse(store_col_text(q, 5));
			ret = u->role ? 0 : -EACCES;
		}
	}
	store_done(q);
	if (ret == 0 && now - last >= AUTH_TOUCH_S)
		store_exec(s, "UPDATE tokens SET last_used_at = ? WHERE id = ?", "ii", now, tid);
	return ret;
}
