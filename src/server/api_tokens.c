/*
 * Long-lived API tokens for scripts, and the list of one's login sessions
 * (docs/api.md, "Tokens"). A user sees and revokes their own; an admin
 * anyone's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "jv.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"

#define TOKEN_COLS                                                                                 \
	"SELECT t.id, t.user_id, u.username, t.kind, t.name, t.created_at AS \"created_at:t\","    \
	" t.expires_at AS \"expires_at:t\", t.last_used_at AS \"last_used_at:t\""                  \
	" FROM tokens t JOIN users u ON u.id = t.user_id"

static int tokens_list(struct req *r)
{
	int64_t limit, offset, total = 0, uid = r->user.id;
	const char *all = req_query(r, "all");
	bool every = all && strcmp(all, "1") == 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (every && r->user.role < ROLE_ADMIN)
		return req_error(r, 403, "forbidden", "all", "all=1 needs the admin role");
	struct store *s = r->srv->store;
	json_t *items;
	if (every) {
		store_int(s, &total, "SELECT COUNT(*) FROM tokens", NULL);
		items = store_rows_json(s, TOKEN_COLS " ORDER BY t.id LIMIT ? OFFSET ?", "ii",
		                        limit, offset);
	} else {
		store_int(s, &total, "SELECT COUNT(*) FROM tokens WHERE user_id = ?", "i", uid);
		items = store_rows_json(s,
		                        TOKEN_COLS " WHERE t.user_id = ? ORDER BY t.id"
		                                   " LIMIT ? OFFSET ?",
		                        "iii", uid, limit, offset);
	}
	return req_reply_page(r, items, total, limit, offset);
}

/* POST /tokens {"name", "expires_days"}: a new API token, shown once. */
static int tokens_create(struct req *r)
{
	static const char *const keys[] = {"name", "expires_days", NULL};
	const char *name;
	int64_t days = 0, id;
	char tok[AUTH_TOKEN_LEN + 1];
	struct store *s = r->srv->store;
	if (jv_object(r, keys) < 0 || jv_str(r, "name", JV_REQ, 1, 100, &name) < 0 ||
	    jv_int(r, "expires_days", 0, 1, 3650, &days) < 0)
		return -1;
	int64_t exp = days ? store_now() + days * 86400 : 0;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = auth_token_new(s, r->user.id, "api", name, exp, tok, &id);
	if (rc == 0)
		rc = audit_add(r, "create", "token", id, "API token '%s'", name);
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	json_t *t = store_row1_json(s, &found, TOKEN_COLS " WHERE t.id = ?", "i", id);
	if (!t)
		return req_internal(r);
	json_object_set_new(t, "token", json_string(tok));
	return req_reply(r, 201, t);
}

static int tokens_delete(struct req *r)
{
	int64_t id = r->id[0], owner = 0;
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &owner, "SELECT user_id FROM tokens WHERE id = ?", "i", id);
	/* Someone else's token looks the same as no token to a non-admin. */
	if (rc == -ENOENT || (rc == 0 && owner != r->user.id && r->user.role < ROLE_ADMIN)) {
		store_rollback(s);
		return req_not_found(r, "token", id);
	}
	if (rc == 0)
		rc = store_exec(s, "DELETE FROM tokens WHERE id = ?", "i", id);
	if (rc >= 0)
		rc = audit_add(r, "delete", "token", id, "token of user %lld", (long long)owner);
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

const struct api_route api_tokens_routes[] = {
    {"GET", "/tokens", ROLE_VIEWER, tokens_list, NULL},
    {"POST", "/tokens", ROLE_VIEWER, tokens_create, NULL},
    {"DELETE", "/tokens/:id", ROLE_VIEWER, tokens_delete, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
