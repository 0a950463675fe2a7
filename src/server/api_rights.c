/*
 * Rights (docs/api.md, "Rights"): which users and user groups may start
 * which entry on which machines, optionally only within a weekly time
 * window. Principals are names, not user ids: a right may name people that
 * a directory will provide later, so a name that no local user has yet is
 * accepted as long as it could be one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "jv.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"
#include "targets.h"
#include "timewin.h"

#define RIGHT_PRINCIPALS_MAX 1000 /* names in users, and in user_groups */
#define RIGHT_NAME_MAX 64
#define RIGHT_DESC_MAX 1000

#define RIGHT_COLS                                                                                 \
	"SELECT id, entry_id, NULL AS users, NULL AS user_groups, NULL AS targets,"                \
	" time_window AS \"window\", description, created_at AS \"created_at:t\","                 \
	" updated_at AS \"updated_at:t\" FROM rights"

/*
 * Fills "users", "user_groups" and "targets" of a right read by RIGHT_COLS
 * (whose NULL columns keep their places in the documented key order).
 */
static int right_fill(struct store *s, json_t *o)
{
	int64_t id = json_integer_value(json_object_get(o, "id"));
	json_t *users = json_array(), *groups = json_array();
	json_object_set_new(o, "users", users);
	json_object_set_new(o, "user_groups", groups);
	struct store_q *q = store_query(
	    s, "SELECT kind, name FROM right_principals WHERE right_id = ? ORDER BY kind, name",
	    "i", id);
	if (!q)
		return -EIO;
	int rc;
	while ((rc = store_next(q)) == 1)
		json_array_append_new(strcmp(store_col_text(q, 0), "user") == 0 ? users : groups,
		                      json_string(store_col_text(q, 1)));
	store_done(q);
	if (rc < 0)
		return rc;
	json_t *t = targets_json(s, TARGETS_RIGHT, id);
	if (!t)
		return -EIO;
	json_object_set_new(o, "targets", t);
	return 0;
}

static json_t *right_get(struct store *s, int64_t id, bool *found)
{
	json_t *o = store_row1_json(s, found, RIGHT_COLS " WHERE id = ?", "i", id);
	if (o && right_fill(s, o) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * User names as a directory may provide them: 1..64 of a-z, 0-9, '.', '_'
 * and '-'. No local user with the name needs to exist.
 */
static int right_users_check(struct req *r, json_t *users)
{
	size_t i;
	json_t *v;
	json_array_foreach(users, i, v)
	{
		for (const char *p = json_string_value(v); *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
			      *p == '_' || *p == '-'))
				return req_bad(r, "users",
				               "users[%zu]: a user name holds only a-z, 0-9, '.', "
				               "'_' and '-'",
				               i);
	}
	return 0;
}

/* An entry_id that exists. */
static int right_entry_check(struct req *r, int64_t id)
{
	int64_t n = 0;
	if (store_int(r->srv->store, &n, "SELECT COUNT(*) FROM entries WHERE id = ?", "i", id) < 0)
		return req_internal(r);
	if (n == 0)
		return req_bad(r, "entry_id", "entry_id: no entry with id %lld", (long long)id);
	return 0;
}

/*
 * Reads "window": a string is parsed and its canonical spelling written to
 * buf (TIMEWIN_FORMAT_MAX bytes); null means always. Returns 1 (a window),
 * 2 (null given: clear), 0 (absent) or -1 (400 set).
 */
static int right_window_get(struct req *r, char *buf)
{
	json_t *v = json_object_get(r->body, "window");
	const char *text;
	struct timewin w;
	char why[TIMEWIN_ERR_MAX];
	if (!v)
		return 0;
	if (json_is_null(v))
		return 2;
	if (jv_str(r, "window", JV_REQ, 1, TIMEWIN_TEXT_MAX, &text) < 0)
		return -1;
	if (timewin_parse(text, strlen(text), &w, why, sizeof(why)) < 0)
		return req_bad(r, "window", "window: %s", why);
	if (timewin_format(&w, buf, TIMEWIN_FORMAT_MAX) < 0)
		return req_internal(r);
	return 1;
}

/* Replaces the principals of one kind ("user" or "group"). Inside a transaction. */
static int right_save_principals(struct store *s, int64_t id, const char *kind, json_t *names)
{
	int rc = store_exec(s, "DELETE FROM right_principals WHERE right_id = ? AND kind = ?", "it",
	                    id, kind);
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		if (rc < 0)
			break;
		/* A name given twice is stored once. */
		rc = store_exec(
		    s,
		    "INSERT INTO right_principals (right_id, kind, name) VALUES (?, ?, ?)"
		    " ON CONFLICT (right_id, kind, name) DO NOTHING",
		    "itt", id, kind, json_string_value(v));
	}
	return rc < 0 ? rc : 0;
}

/*
 * Reads a principal list: 1 given (an array in *out, or NULL for null,
 * which means empty), 0 absent, -1 bad.
 */
static int right_names_get(struct req *r, const char *key, json_t **out)
{
	json_t *v = json_object_get(r->body, key);
	if (!v)
		return 0;
	if (json_is_null(v)) {
		*out = NULL;
		return 1;
	}
	return jv_strs(r, key, JV_REQ, RIGHT_PRINCIPALS_MAX, RIGHT_NAME_MAX, out);
}

static int rights_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	const char *entry_s = req_query(r, "entry"), *why;
	uint64_t entry = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (entry_s && parse_uint(entry_s, 1, INT64_MAX, &entry, &why) < 0)
		return req_bad(r, "entry", "entry: %s (an entry id)", why);
	struct store *s = r->srv->store;
	store_int(s, &total, "SELECT COUNT(*) FROM rights WHERE (? = 0 OR entry_id = ?)", "ii",
	          (int64_t)entry, (int64_t)entry);
	json_t *items = store_rows_json(s,
	                                RIGHT_COLS " WHERE (? = 0 OR entry_id = ?)"
	                                           " ORDER BY id LIMIT ? OFFSET ?",
	                                "iiii", (int64_t)entry, (int64_t)entry, limit, offset);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o)
	{
		if (right_fill(s, o) < 0) {
			json_decref(items);
			return req_internal(r);
		}
	}
	return req_reply_page(r, items, total, limit, offset);
}

static int rights_show(struct req *r)
{
	bool found;
	json_t *o = right_get(r->srv->store, r->id[0], &found);
	if (!o)
		return found ? req_internal(r) : req_not_found(r, "right", r->id[0]);
	return req_reply(r, 200, o);
}

static const char *const right_keys[] = {"entry_id", "users",       "user_groups", "targets",
                                         "window",   "description", NULL};

static int rights_create(struct req *r)
{
	int64_t entry_id, id;
	json_t *users = NULL, *groups = NULL;
	const char *desc = "";
	struct targets t = {0};
	int has_win, has_users = 0, has_groups = 0, ret = -1;
	char *win = malloc(TIMEWIN_FORMAT_MAX);
	struct store *s = r->srv->store;
	if (!win)
		return req_error(r, 503, "unavailable", NULL, "out of memory");
	if (jv_object(r, right_keys) < 0 ||
	    jv_int(r, "entry_id", JV_REQ, 1, INT64_MAX, &entry_id) < 0 ||
	    right_entry_check(r, entry_id) < 0 ||
	    (has_users = right_names_get(r, "users", &users)) < 0 ||
	    (users && right_users_check(r, users) < 0) ||
	    (has_groups = right_names_get(r, "user_groups", &groups)) < 0 ||
	    jv_str(r, "description", 0, 0, RIGHT_DESC_MAX, &desc) < 0 ||
	    (has_win = right_window_get(r, win)) < 0)
		goto out;
	if (json_array_size(users) + json_array_size(groups) == 0) {
		req_bad(r, "users", "a right needs at least one user or user group");
		goto out;
	}
	if (targets_parse(r, "targets", true, &t) < 0)
		goto out;
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	int64_t now = store_now();
	int rc = store_insert(s, &id,
	                      "INSERT INTO rights (entry_id, time_window, description, created_at,"
	                      " updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
	                      "ittii", entry_id, has_win == 1 ? win : NULL, desc, now, now);
	if (rc == 0 && has_users)
		rc = right_save_principals(s, id, "user", users);
	if (rc == 0 && has_groups)
		rc = right_save_principals(s, id, "group", groups);
	if (rc == 0)
		rc = targets_save(s, TARGETS_RIGHT, id, &t);
	if (rc == 0)
		rc = audit_add(r, "create", "right", id, "right on entry %lld%s%s",
		               (long long)entry_id, has_win == 1 ? ", window " : "",
		               has_win == 1 ? win : "");
	if (rc < 0) {
		store_rollback(s);
		req_store_error(r, rc, "right");
		goto out;
	}
	if (store_commit(s) < 0) {
		req_internal(r);
		goto out;
	}
	bool found;
	req_reply(r, 201, right_get(s, id, &found));
	ret = 0;
out:
	targets_free(&t);
	free(win);
	return ret;
}

static int rights_update(struct req *r)
{
	int64_t entry_id = 0, id = r->id[0], n = 0;
	json_t *users = NULL, *groups = NULL;
	const char *desc = NULL;
	struct targets t = {0};
	int has_win = 0, has_entry = 0, has_t = 0, has_users = 0, has_groups = 0, ret = -1;
	char *win = malloc(TIMEWIN_FORMAT_MAX);
	struct store *s = r->srv->store;
	if (!win)
		return req_error(r, 503, "unavailable", NULL, "out of memory");
	if (jv_object(r, right_keys) < 0 ||
	    (has_entry = jv_int(r, "entry_id", 0, 1, INT64_MAX, &entry_id)) < 0 ||
	    (has_entry && right_entry_check(r, entry_id) < 0) ||
	    (has_users = right_names_get(r, "users", &users)) < 0 ||
	    (users && right_users_check(r, users) < 0) ||
	    (has_groups = right_names_get(r, "user_groups", &groups)) < 0 ||
	    jv_str(r, "description", 0, 0, RIGHT_DESC_MAX, &desc) < 0 ||
	    (has_win = right_window_get(r, win)) < 0)
		goto out;
	/* Targets cannot become empty: null is refused like an empty set. */
	if ((has_t = targets_parse(r, "targets", json_object_get(r->body, "targets") != NULL, &t)) <
	    0)
		goto out;
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	int rc =
	    store_exec(s, "UPDATE rights SET updated_at = ? WHERE id = ?", "ii", store_now(), id);
	if (rc == 0) {
		store_rollback(s);
		req_not_found(r, "right", id);
		goto out;
	}
	if (rc > 0 && has_entry)
		rc = store_exec(s, "UPDATE rights SET entry_id = ? WHERE id = ?", "ii", entry_id,
		                id);
	if (rc >= 0 && desc)
		rc =
		    store_exec(s, "UPDATE rights SET description = ? WHERE id = ?", "ti", desc, id);
	if (rc >= 0 && has_win)
		rc = store_exec(s, "UPDATE rights SET time_window = ? WHERE id = ?", "ti",
		                has_win == 1 ? win : NULL, id);
	if (rc >= 0 && has_users)
		rc = right_save_principals(s, id, "user", users);
	if (rc >= 0 && has_groups)
		rc = right_save_principals(s, id, "group", groups);
	if (rc >= 0 && has_t)
		rc = targets_save(s, TARGETS_RIGHT, id, &t);
	if (rc >= 0)
		rc = store_int(s, &n, "SELECT COUNT(*) FROM right_principals WHERE right_id = ?",
		               "i", id);
	if (rc >= 0 && n == 0) {
		store_rollback(s);
		req_bad(r, has_users ? "users" : "user_groups",
		        "a right needs at least one user or user group");
		goto out;
	}
	if (rc >= 0)
		rc = audit_add(r, "update", "right", id, "%s%s%s%s%s%s",
		               has_entry ? "entry_id " : "", desc ? "description " : "",
		               has_win ? "window " : "", has_users ? "users " : "",
		               has_groups ? "user_groups " : "", has_t ? "targets" : "");
	if (rc < 0) {
		store_rollback(s);
		req_store_error(r, rc, "right");
		goto out;
	}
	if (store_commit(s) < 0) {
		req_internal(r);
		goto out;
	}
	bool found;
	req_reply(r, 200, right_get(s, id, &found));
	ret = 0;
out:
	targets_free(&t);
	free(win);
	return ret;
}

static int rights_delete(struct req *r)
{
	int64_t id = r->id[0];
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_exec(s, "DELETE FROM rights WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "right", id);
	}
	if (rc > 0)
		rc = audit_add(r, "delete", "right", id, "right %lld", (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "right");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

static int rights_targets(struct req *r)
{
	int64_t n = 0, *ids = NULL;
	size_t nids = 0;
	struct store *s = r->srv->store;
	int rc = store_int(s, &n, "SELECT COUNT(*) FROM rights WHERE id = ?", "i", r->id[0]);
	if (rc < 0)
		return req_internal(r);
	if (n == 0)
		return req_not_found(r, "right", r->id[0]);
	if (targets_resolve(s, TARGETS_RIGHT, r->id[0], &ids, &nids) < 0)
		return req_internal(r);
	rc = targets_reply_machines(r, ids, nids);
	free(ids);
	return rc;
}

const struct api_route api_rights_routes[] = {
    {"GET", "/rights", ROLE_VIEWER, rights_list, NULL},
    {"POST", "/rights", ROLE_OPERATOR, rights_create, NULL},
    {"GET", "/rights/:id", ROLE_VIEWER, rights_show, NULL},
    {"PATCH", "/rights/:id", ROLE_OPERATOR, rights_update, NULL},
    {"DELETE", "/rights/:id", ROLE_OPERATOR, rights_delete, NULL},
    {"GET", "/rights/:id/targets", ROLE_VIEWER, rights_targets, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
