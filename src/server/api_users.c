/*
 * Local user accounts (docs/api.md, "Users"): admins manage them; everyone
 * may change their own password.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "jv.h"
#include "req.h"
#include "server.h"
#include "store.h"

static const char *const role_vals[] = {"admin", "operator", "viewer", NULL};

#define USER_COLS                                                                                  \
	"SELECT id, username, display_name, role, source, disabled AS \"disabled:b\","             \
	" created_at AS \"created_at:t\", updated_at AS \"updated_at:t\" FROM users"

/* User names: 1..64 of [a-z0-9._-], starting with a letter or digit. */
static int user_name_check(struct req *r, const char *s)
{
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		          (p != s && (*p == '.' || *p == '_' || *p == '-'));
		if (!ok)
			return req_bad(r, "username",
			               "username may hold only a-z, 0-9, '.', '_' and '-', and "
			               "must start with a letter or digit");
	}
	return 0;
}

static int user_password_check(struct req *r, const char *pw)
{
	if (strlen(pw) < AUTH_PASSWORD_MIN)
		return req_bad(r, "password", "password must be at least %d characters",
		               AUTH_PASSWORD_MIN);
	return 0;
}

static json_t *user_get(struct req *r, int64_t id, bool *found)
{
	return store_row1_json(r->srv->store, found, USER_COLS " WHERE id = ?", "i", id);
}

static int users_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(r->srv->store, &total, "SELECT COUNT(*) FROM users", NULL);
	json_t *items = store_rows_json(r->srv->store, USER_COLS " ORDER BY id LIMIT ? OFFSET ?",
	                                "ii", limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int users_get(struct req *r)
{
	bool found;
	json_t *u = user_get(r, r->id[0], &found);
	if (!found)
		return u ? req_internal(r) : req_not_found(r, "user", r->id[0]);
	return req_reply(r, 200, u);
}

static int users_create(struct req *r)
{
	static const char *const keys[] = {"username", "display_name", "role",
	                                   "password", "disabled",     NULL};
	const char *name, *display = "", *role, *pw;
	bool disabled = false;
	char hash[AUTH_HASH_MAX];
	int64_t id;
	if (jv_object(r, keys) < 0 || jv_str(r, "username", JV_REQ, 1, 64, &name) < 0 ||
	    user_name_check(r, name) < 0 || jv_str(r, "display_name", 0, 0, 200, &display) < 0 ||
	    jv_enum(r, "role", JV_REQ, role_vals, &role) < 0 ||
	    jv_str(r, "password", JV_REQ, 1, AUTH_PASSWORD_MAX, &pw) < 0 ||
	    user_password_check(r, pw) < 0 || jv_bool(r, "disabled", 0, &disabled) < 0)
		return -1;
	if (auth_hash_password(pw, hash) < 0)
		return req_internal(r);
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t now = store_now();
	int rc = store_insert(s, &id,
	                      "INSERT INTO users (username, display_name, role, pw_hash, disabled,"
	                      " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
	                      "ttttdii", name, display, role, hash, disabled, now, now);
	if (rc == 0)
		rc = audit_add(r, "create", "user", id, "user '%s' role %s", name, role);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "username", "user '%s' already exists", name);
		return req_store_error(r, rc, "user");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	return req_reply(r, 201, user_get(r, id, &found));
}

/* Would the change leave no enabled admin? */
static bool user_last_admin(struct store *s, int64_t id)
{
	int64_t n = 0;
	store_int(s, &n,
	          "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?",
	          "i", id);
	return n == 0;
}

static int users_update(struct req *r)
{
	static const char *const keys[] = {"display_name", "role", "password", "disabled", NULL};
	const char *display = NULL, *role = NULL, *pw = NULL;
	bool disabled = false;
	int has_dis;
	char hash[AUTH_HASH_MAX];
	int64_t id = r->id[0];
	struct store *s = r->srv->store;
	if (jv_object(r, keys) < 0 || jv_str(r, "display_name", 0, 0, 200, &display) < 0 ||
	    jv_enum(r, "role", 0, role_vals, &role) < 0 ||
	    jv_str(r, "password", 0, 1, AUTH_PASSWORD_MAX, &pw) < 0 ||
	    (pw && user_password_check(r, pw) < 0) ||
	    (has_dis = jv_bool(r, "disabled", 0, &disabled)) < 0)
		return -1;
	if (pw && auth_hash_password(pw, hash) < 0)
		return req_internal(r);
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t isadmin = 0;
	int rc = store_int(
	    s, &isadmin, "SELECT role = 'admin' AND disabled = 0 FROM users WHERE id = ?", "i", id);
	if (rc == -ENOENT) {
		store_rollback(s);
		return req_not_found(r, "user", id);
	}
	bool demote = (role && strcmp(role, "admin") != 0) || (has_dis && disabled);
	if (rc == 0 && isadmin && demote && user_last_admin(s, id)) {
		store_rollback(s);
		return req_conflict(r, role ? "role" : "disabled",
		                    "this is the last enabled admin; make another admin first");
	}
	int64_t now = store_now();
	if (rc == 0 && display)
		rc = store_exec(s, "UPDATE users SET display_name = ?, updated_at = ? WHERE id = ?",
		                "tii", display, now, id);
	if (rc >= 0 && role)
		rc = store_exec(s, "UPDATE users SET role = ?, updated_at = ? WHERE id = ?", "tii",
		                role, now, id);
	if (rc >= 0 && pw)
		rc = store_exec(s, "UPDATE users SET pw_hash = ?, updated_at = ? WHERE id = ?",
		                "tii", hash, now, id);
	if (rc >= 0 && has_dis)
		rc = store_exec(s, "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?",
		                "dii", disabled, now, id);
	/* A new password or a disabled account ends the user's login sessions. */
	if (rc >= 0 && (pw || (has_dis && disabled)))
		rc = store_exec(s, "DELETE FROM tokens WHERE user_id = ? AND kind = 'session'", "i",
		                id);
	if (rc >= 0)
		rc = audit_add(r, "update", "user", id, "%s%s%s%s", display ? "display_name " : "",
		               role ? "role " : "", pw ? "password " : "",
		               has_dis ? (disabled ? "disabled" : "enabled") : "");
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "user");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	return req_reply(r, 200, user_get(r, id, &found));
}

static int users_delete(struct req *r)
{
	int64_t id = r->id[0];
	struct store *s = r->srv->store;
	if (id == r->user.id)
		return req_conflict(r, NULL, "you cannot delete your own account");
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t isadmin = 0;
	int rc = store_int(s, &isadmin, "SELECT role = 'admin' FROM users WHERE id = ?", "i", id);
	if (rc == -ENOENT) {
		store_rollback(s);
		return req_not_found(r, "user", id);
	}
	if (rc == 0 && isadmin && user_last_admin(s, id)) {
		store_rollback(s);
		return req_conflict(r, NULL, "this is the last enabled admin");
	}
	if (rc == 0)
		rc = store_exec(s, "DELETE FROM users WHERE id = ?", "i", id);
	if (rc >= 0)
		rc = audit_add(r, "delete", "user", id, "user %lld", (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "user");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

/* POST /me/password {"old_password", "new_password"}: one's own password. */
static int me_password(struct req *r)
{
	static const char *const keys[] = {"old_password", "new_password", NULL};
	const char *old, *pw;
	struct req_user u;
	char hash[AUTH_HASH_MAX];
	struct store *s = r->srv->store;
	if (jv_object(r, keys) < 0 ||
	    jv_str(r, "old_password", JV_REQ, 1, AUTH_PASSWORD_MAX, &old) < 0 ||
	    jv_str(r, "new_password", JV_REQ, 1, AUTH_PASSWORD_MAX, &pw) < 0)
		return -1;
	if (strlen(pw) < AUTH_PASSWORD_MIN)
		return req_bad(r, "new_password", "new_password must be at least %d characters",
		               AUTH_PASSWORD_MIN);
	if (auth_login(s, r->user.name, old, &u) < 0)
		return req_error(r, 403, "forbidden", "old_password", "old_password is wrong");
	if (auth_hash_password(pw, hash) < 0 || store_begin(s) < 0)
		return req_internal(r);
	int rc = store_exec(s, "UPDATE users SET pw_hash = ?, updated_at = ? WHERE id = ?", "tii",
	                    hash, store_now(), u.id);
	/* Other sessions end; this one stays. */
	if (rc >= 0)
		rc = store_exec(
		    s, "DELETE FROM tokens WHERE user_id = ? AND kind = 'session' AND id <> ?",
		    "ii", u.id, r->user.token_id);
	if (rc >= 0)
		rc = audit_add(r, "update", "user", u.id, "own password");
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

const struct api_route api_users_routes[] = {
    {"GET", "/users", ROLE_ADMIN, users_list, NULL},
    {"POST", "/users", ROLE_ADMIN, users_create, NULL},
    {"GET", "/users/:id", ROLE_ADMIN, users_get, NULL},
    {"PATCH", "/users/:id", ROLE_ADMIN, users_update, NULL},
    {"DELETE", "/users/:id", ROLE_ADMIN, users_delete, NULL},
    {"POST", "/me/password", ROLE_VIEWER, me_password, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
