/*
 * Static groups of machines (docs/api.md, "Groups"). Members are machine
 * ids; a machine deleted leaves its groups (the link cascades), a group
 * that a right or deployment targets cannot be deleted (the link
 * restricts, and the store says -EBUSY).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "jv.h"
#include "machines.h"
#include "req.h"
#include "server.h"
#include "store.h"

#define GROUP_NAME_MAX 64
#define GROUP_DESC_MAX 1000
#define GROUP_MEMBERS_MAX 100000

#define GROUP_COLS                                                                                 \
	"SELECT g.id, g.name, g.description,"                                                      \
	" (SELECT COUNT(*) FROM group_members gm WHERE gm.group_id = g.id) AS member_count,"       \
	" g.created_at AS \"created_at:t\", g.updated_at AS \"updated_at:t\" FROM mgroups g"

/* Group names: 1..64 bytes without control characters (jv_str) or spaces at either end. */
static int group_name(struct req *r, unsigned flags, const char **name)
{
	int rc = jv_str(r, "name", flags, 1, GROUP_NAME_MAX, name);
	if (rc == 1 && ((*name)[0] == ' ' || (*name)[strlen(*name) - 1] == ' '))
		return req_bad(r, "name", "name must not start or end with a space");
	return rc;
}

/* The group with its members' ids; NULL with *found false when there is none. */
static json_t *group_json(struct store *s, int64_t id, bool *found)
{
	store_lock(s);
	json_t *g = store_row1_json(s, found, GROUP_COLS " WHERE g.id = ?", "i", id);
	json_t *m = g ? store_rows_json(s,
	                                "SELECT machine_id FROM group_members WHERE group_id = ?"
	                                " ORDER BY machine_id",
	                                "i", id)
	              : NULL;
	store_unlock(s);
	if (!g)
		return NULL;
	json_t *ids = m ? json_array() : NULL;
	size_t i;
	json_t *row;
	json_array_foreach(m, i, row) json_array_append(ids, json_object_get(row, "machine_id"));
	json_decref(m);
	if (!ids || json_object_set_new(g, "members", ids) < 0) {
		json_decref(g);
		return NULL;
	}
	return g;
}

static int group_reply(struct req *r, int status, int64_t id)
{
	bool found;
	json_t *g = group_json(r->srv->store, id, &found);
	if (!g)
		return found ? req_internal(r) : req_not_found(r, "group", id);
	return req_reply(r, status, g);
}

/* Checks the ids of field (all must be machines); -1 with a 400 naming the first unknown. */
static int group_check_members(struct req *r, const char *field, const int64_t *ids, size_t n)
{
	int64_t missing = 0;
	int rc = machines_missing(r->srv->store, ids, n, &missing);
	if (rc == 1)
		return req_bad(r, field, "%s: no machine with id %" PRId64, field, missing);
	if (rc < 0)
		return req_internal(r);
	return 0;
}

/* Adds members (duplicates and present ones are fine). Inside a transaction. */
static int group_add(struct store *s, int64_t gid, const int64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = store_exec(s,
		                    "INSERT INTO group_members (group_id, machine_id) VALUES (?, ?)"
		                    " ON CONFLICT (group_id, machine_id) DO NOTHING",
		                    "ii", gid, ids[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int groups_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(r->srv->store, &total, "SELECT COUNT(*) FROM mgroups", NULL);
	json_t *items = store_rows_json(
	    r->srv->store, GROUP_COLS " ORDER BY g.name LIMIT ? OFFSET ?", "ii", limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int groups_get(struct req *r)
{
	return group_reply(r, 200, r->id[0]);
}

static int groups_create(struct req *r)
{
	static const char *const keys[] = {"name", "description", "members", NULL};
	struct store *s = r->srv->store;
	const char *name, *desc = "";
	int64_t *members = NULL, id = 0;
	size_t n = 0;
	int ret = -1;
	if (jv_object(r, keys) < 0 || group_name(r, JV_REQ, &name) < 0 ||
	    jv_str(r, "description", 0, 0, GROUP_DESC_MAX, &desc) < 0 ||
	    jv_ids(r, "members", 0, GROUP_MEMBERS_MAX, &members, &n) < 0)
		goto out;
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	if (group_check_members(r, "members", members, n) < 0) {
		store_rollback(s);
		goto out;
	}
	int64_t now = store_now();
	int rc = store_insert(s, &id,
	                      "INSERT INTO mgroups (name, description, created_at, updated_at)"
	                      " VALUES (?, ?, ?, ?) RETURNING id",
	                      "ttii", name, desc, now, now);
	if (rc == 0)
		rc = group_add(s, id, members, n);
	if (rc == 0)
		rc = audit_add(r, "create", "group", id, "group '%s', %zu members", name, n);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			req_conflict(r, "name", "a group named '%s' already exists", name);
		else
			req_store_error(r, rc, "group");
		goto out;
	}
	if (store_commit(s) < 0) {
		req_internal(r);
		goto out;
	}
	ret = group_reply(r, 201, id);
out:
	free(members);
	return ret;
}

static int groups_update(struct req *r)
{
	static const char *const keys[] = {"name", "description", "members", NULL};
	struct store *s = r->srv->store;
	const char *name = NULL, *desc = NULL;
	int64_t *members = NULL, id = r->id[0], found = 0;
	size_t n = 0;
	int has_members = 0, ret = -1;
	if (jv_object(r, keys) < 0 || group_name(r, 0, &name) < 0 ||
	    jv_str(r, "description", 0, 0, GROUP_DESC_MAX, &desc) < 0)
		goto out;
	/* members: null empties the group, like []. */
	has_members = jv_ids(r, "members", 0, GROUP_MEMBERS_MAX, &members, &n);
	if (has_members < 0)
		goto out;
	if (json_is_null(json_object_get(r->body, "members")))
		has_members = 1;
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	int rc = store_int(s, &found, "SELECT COUNT(*) FROM mgroups WHERE id = ?", "i", id);
	if (rc == 0 && !found) {
		store_rollback(s);
		req_not_found(r, "group", id);
		goto out;
	}
	if (rc == 0 && has_members && group_check_members(r, "members", members, n) < 0) {
		store_rollback(s);
		goto out;
	}
	int64_t now = store_now();
	if (rc == 0 && name)
		rc = store_exec(s, "UPDATE mgroups SET name = ? WHERE id = ?", "ti", name, id);
	if (rc >= 0 && desc)
		rc = store_exec(s, "UPDATE mgroups SET description = ? WHERE id = ?", "ti", desc,
		                id);
	if (rc >= 0 && has_members) {
		rc = store_exec(s, "DELETE FROM group_members WHERE group_id = ?", "i", id);
		if (rc >= 0)
			rc = group_add(s, id, members, n);
	}
	if (rc >= 0)
		rc = store_exec(s, "UPDATE mgroups SET updated_at = ? WHERE id = ?", "ii", now, id);
	if (rc >= 0)
		rc = audit_add(r, "update", "group", id, "%s%s%s", name ? "name " : "",
		               desc ? "description " : "", has_members ? "members" : "");
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			req_conflict(r, "name", "a group named '%s' already exists", name);
		else
			req_store_error(r, rc, "group");
		goto out;
	}
	if (store_commit(s) < 0) {
		req_internal(r);
		goto out;
	}
	ret = group_reply(r, 200, id);
out:
	free(members);
	return ret;
}

/* The 409 of a group or criterion still targeted: says by how many rights and deployments. */
static int group_in_use(struct req *r, int64_t id)
{
	int64_t nr = 0, nd = 0;
	store_int(r->srv->store, &nr, "SELECT COUNT(*) FROM right_targets WHERE group_id = ?", "i",
	          id);
	store_int(r->srv->store, &nd, "SELECT COUNT(*) FROM deployment_targets WHERE group_id = ?",
	          "i", id);
	return req_conflict(r, NULL,
	                    "group %" PRId64 " is a target of %" PRId64 " right(s) and %" PRId64
	                    " deployment(s); remove it from them first",
	                    id, nr, nd);
}

static int groups_delete(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_exec(s, "DELETE FROM mgroups WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "group", id);
	}
	if (rc > 0)
		rc = audit_add(r, "delete", "group", id, "group %" PRId64, id);
	if (rc < 0) {
		store_rollback(s);
		return rc == -EBUSY ? group_in_use(r, id) : req_store_error(r, rc, "group");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

/* POST /groups/:id/members {"machines": [ids]}: adds them. */
static int groups_add_members(struct req *r)
{
	static const char *const keys[] = {"machines", NULL};
	struct store *s = r->srv->store;
	int64_t *ids = NULL, id = r->id[0], found = 0;
	size_t n = 0;
	int ret = -1;
	if (jv_object(r, keys) < 0 ||
	    jv_ids(r, "machines", JV_REQ, GROUP_MEMBERS_MAX, &ids, &n) < 0)
		goto out;
	if (n == 0) {
		req_bad(r, "machines", "machines must name at least one machine");
		goto out;
	}
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	int rc = store_int(s, &found, "SELECT COUNT(*) FROM mgroups WHERE id = ?", "i", id);
	if (rc == 0 && !found) {
		store_rollback(s);
		req_not_found(r, "group", id);
		goto out;
	}
	if (rc == 0 && group_check_members(r, "machines", ids, n) < 0) {
		store_rollback(s);
		goto out;
	}
	if (rc == 0)
		rc = group_add(s, id, ids, n);
	if (rc == 0)
		rc = store_exec(s, "UPDATE mgroups SET updated_at = ? WHERE id = ?", "ii",
		                store_now(), id);
	if (rc >= 0)
		rc = audit_add(r, "update", "group", id, "added %zu members", n);
	if (rc < 0) {
		store_rollback(s);
		req_store_error(r, rc, "group");
		goto out;
	}
	if (store_commit(s) < 0) {
		req_internal(r);
		goto out;
	}
	ret = group_reply(r, 200, id);
out:
	free(ids);
	return ret;
}

/* DELETE /groups/:id/members/:id */
static int groups_remove_member(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t gid = r->id[0], mid = r->id[1], found = 0;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &found, "SELECT COUNT(*) FROM mgroups WHERE id = ?", "i", gid);
	if (rc == 0 && !found) {
		store_rollback(s);
		return req_not_found(r, "group", gid);
	}
	if (rc == 0)
		rc =
		    store_exec(s, "DELETE FROM group_members WHERE group_id = ? AND machine_id = ?",
		               "ii", gid, mid);
	if (rc == 0) {
		store_rollback(s);
		return req_error(r, 404, "not_found", NULL,
		                 "machine %" PRId64 " is not a member of group %" PRId64, mid, gid);
	}
	if (rc > 0)
		rc = store_exec(s, "UPDATE mgroups SET updated_at = ? WHERE id = ?", "ii",
		                store_now(), gid);
	if (rc >= 0)
		rc = audit_add(r, "update", "group", gid, "removed machine %" PRId64, mid);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "group");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

const struct api_route api_groups_routes[] = {
    {"GET", "/groups", ROLE_VIEWER, groups_list, NULL},
    {"POST", "/groups", ROLE_OPERATOR, groups_create, NULL},
    {"GET", "/groups/:id", ROLE_VIEWER, groups_get, NULL},
    {"PATCH", "/groups/:id", ROLE_OPERATOR, groups_update, NULL},
    {"DELETE", "/groups/:id", ROLE_OPERATOR, groups_delete, NULL},
    {"POST", "/groups/:id/members", ROLE_OPERATOR, groups_add_members, NULL},
    {"DELETE", "/groups/:id/members/:id", ROLE_OPERATOR, groups_remove_member, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
