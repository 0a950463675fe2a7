/*
 * Login, logout, who am I, and the unauthenticated health check
 * (docs/api.md, "Sessions").
 */
#include <errno.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "jv.h"
#include "req.h"
#include "server.h"
#include "store.h"

static json_t *api_user_json(const struct req_user *u)
{
	return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)u->id, "username", u->name, "role",
	                 role_str(u->role));
}

static int login(struct req *r)
{
	static const char *const keys[] = {"username", "password", NULL};
	const char *user, *pw;
	struct req_user u = {0};
	char tok[AUTH_TOKEN_LEN + 1];
	int64_t tid;
	if (jv_object(r, keys) < 0 || jv_str(r, "username", JV_REQ, 1, 64, &user) < 0 ||
	    jv_str(r, "password", JV_REQ, 1, AUTH_PASSWORD_MAX, &pw) < 0)
		return -1;
	int rc = auth_login(r->srv->store, user, pw, &u);
	if (rc == -EACCES) {
		r->user.id = 0;
		store_begin(r->srv->store);
		audit_add(r, "login_failed", "user", 0, "user '%.64s' from %s", user,
		          r->peer ? r->peer : "?");
		store_commit(r->srv->store);
		return req_error(r, 401, "unauthorized", NULL, "wrong user name or password");
	}
	if (rc < 0)
		return req_internal(r);
	int64_t exp = store_now() + (int64_t)(r->srv->conf.session_ttl_ms / 1000);
	if (store_begin(r->srv->store) < 0)
		return req_internal(r);
	r->user = u;
	if (auth_token_new(r->srv->store, u.id, "session", "login", exp, tok, &tid) < 0 ||
	    audit_add(r, "login", "user", u.id, "from %s", r->peer ? r->peer : "?") < 0) {
		store_rollback(r->srv->store);
		return req_internal(r);
	}
	if (store_commit(r->srv->store) < 0)
		return req_internal(r);
	json_t *expires = NULL;
	bool found;
	json_t *row = store_row1_json(
	    r->srv->store, &found, "SELECT expires_at AS \"expires_at:t\" FROM tokens WHERE id = ?",
	    "i", tid);
	if (row)
		expires = json_incref(json_object_get(row, "expires_at"));
	json_decref(row);
	return req_reply(r, 200,
	                 json_pack("{s:s, s:o, s:o}", "token", tok, "expires_at",
	                           expires ? expires : json_null(), "user", api_user_json(&u)));
}

static int logout(struct req *r)
{
	store_exec(r->srv->store, "DELETE FROM tokens WHERE id = ? AND kind = 'session'", "i",
	           r->user.token_id);
	return req_no_content(r);
}

static int me(struct req *r)
{
	return req_reply(r, 200, api_user_json(&r->user));
}

static int health(struct req *r)
{
	int v = store_schema_version(r->srv->store);
	if (v < 0)
		return req_error(r, 503, "unavailable", NULL, "the store does not answer");
	return req_reply(r, 200,
	                 json_pack("{s:s, s:s, s:i, s:s}", "status", "ok", "version", "0.1.0",
	                           "schema", v, "tls_fingerprint", r->srv->fingerprint));
}

const struct api_route api_auth_routes[] = {
    {"POST", "/login", ROLE_NONE, login, NULL},
    {"POST", "/logout", ROLE_VIEWER, logout, NULL},
    {"GET", "/me", ROLE_VIEWER, me, NULL},
    {"GET", "/health", ROLE_NONE, health, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
