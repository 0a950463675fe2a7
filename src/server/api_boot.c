/*
 * Boot modes over the API (docs/api.md, "Network boot"): a machine's and a
 * group's own mode, temporary modes, and what a machine boots now and why.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "boot.h"
#include "jv.h"
#include "req.h"
#include "server.h"
#include "store.h"

#define BOOT_REASON_MAX 200
/* A temporary mode lasts at most a year. */
#define BOOT_EXPIRES_MAX (366 * 86400)

/* The body's "mode": *mode a mode, or BOOT_NONE for null. 0 or -1 (400 set). */
static int boot_mode_arg(struct req *r, bool nullable, int *mode)
{
	json_t *v = json_object_get(r->body, "mode");
	if (!v || (json_is_null(v) && !nullable))
		return req_bad(r, "mode", "mode is required: microlinux, local, install or shell");
	*mode = boot_mode_parse(json_string_value(v));
	if (!json_is_null(v) && *mode == BOOT_NONE)
		return req_bad(r, "mode", "mode must be microlinux, local, install or shell%s",
		               nullable ? " (or null to clear it)" : "");
	return 0;
}

static int boot_exists(struct req *r, const char *table, const char *what, int64_t id)
{
	char sql[96];
	int64_t one;
	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = ?", table);
	int rc = store_int(r->srv->store, &one, sql, "i", id);
	if (rc == -ENOENT)
		return req_not_found(r, what, id);
	return rc < 0 ? req_internal(r) : 0;
}

static int boot_machine_get(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	struct boot_choice ch;
	int rc = boot_resolve_machine(r->srv, id, &ch);
	if (rc == -ENOENT)
		return req_not_found(r, "machine", id);
	if (rc < 0)
		return req_internal(r);
	bool found;
	json_t *o = store_row1_json(s, &found,
	                            "SELECT id AS machine_id, name, boot_mode AS own,"
	                            " last_boot_at AS \"last_boot_at:t\", last_boot_mode"
	                            " FROM machines WHERE id = ?",
	                            "i", id);
	if (!o)
		return found ? req_internal(r) : req_not_found(r, "machine", id);
	json_t *tmp = store_row1_json(s, &found,
	                              "SELECT mode, run_id, reason, created_by_name AS created_by,"
	                              " created_at AS \"created_at:t\","
	                              " expires_at AS \"expires_at:t\""
	                              " FROM boot_temporary WHERE machine_id = ?",
	                              "i", id);
	if (!tmp && found) {
		json_decref(o);
		return req_internal(r);
	}
	json_object_set_new(o, "mode", json_string(boot_mode_str(ch.mode)));
	json_object_set_new(o, "why", json_string(ch.why));
	json_object_set_new(o, "temporary", tmp ? tmp : json_null());
	return req_reply(r, 200, o);
}

/*
 * PUT .../boot {"mode"}: the own mode of a machine or a group (table,
 * "machine" or "group"); 0, or -1 with the response set.
 */
static int boot_own_put(struct req *r, const char *table, const char *what)
{
	static const char *const keys[] = {"mode", NULL};
	char sql[80];
	int64_t id = r->id[0];
	int mode;
	if (jv_object(r, keys) < 0 || boot_mode_arg(r, true, &mode) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "UPDATE %s SET boot_mode = ? WHERE id = ?", table);
	int rc = store_exec(r->srv->store, sql, "ti", mode ? boot_mode_str(mode) : NULL, id);
	if (rc == 0)
		return req_not_found(r, what, id);
	if (rc < 0)
		return req_internal(r);
	audit_add(r, "update", what, id, "boot mode %s", mode ? boot_mode_str(mode) : "unset");
	return 0;
}

static int boot_machine_put(struct req *r)
{
	return boot_own_put(r, "machines", "machine") < 0 ? -1 : boot_machine_get(r);
}

static int boot_group_reply(struct req *r, int64_t id)
{
	bool found;
	json_t *o = store_row1_json(
	    r->srv->store, &found,
	    "SELECT id AS group_id, name, boot_mode AS mode FROM mgroups WHERE id = ?", "i", id);
	if (!o)
		return found ? req_internal(r) : req_not_found(r, "group", id);
	return req_reply(r, 200, o);
}

static int boot_group_get(struct req *r)
{
	return boot_group_reply(r, r->id[0]);
}

static int boot_group_put(struct req *r)
{
	return boot_own_put(r, "mgroups", "group") < 0 ? -1 : boot_group_reply(r, r->id[0]);
}

/* The temporary mode's body: mode, reason, expires_in_s. 0 or -1. */
static int boot_temp_args(struct req *r, int *mode, const char **reason, int64_t *expires_at)
{
	static const char *const keys[] = {"mode", "reason", "expires_in_s", NULL};
	int64_t in = 0;
	*reason = "";
	if (jv_object(r, keys) < 0 || boot_mode_arg(r, false, mode) < 0 ||
	    jv_str(r, "reason", 0, 0, BOOT_REASON_MAX, reason) < 0 ||
	    jv_int(r, "expires_in_s", 0, 60, BOOT_EXPIRES_MAX, &in) < 0)
		return -1;
	*expires_at = in ? store_now() + in : 0;
	return 0;
}

static int boot_machine_temp_put(struct req *r)
{
	int64_t id = r->id[0], exp;
	int mode;
	const char *reason;
	if (boot_temp_args(r, &mode, &reason, &exp) < 0 ||
	    boot_exists(r, "machines", "machine", id) < 0)
		return -1;
	int rc = boot_temp_set(r->srv->store, id, mode, 0, reason, r->user.name, exp);
	if (rc < 0)
		return req_store_error(r, rc, "temporary boot mode");
	audit_add(r, "update", "machine", id, "temporary boot mode %s", boot_mode_str(mode));
	return boot_machine_get(r);
}

static int boot_machine_temp_delete(struct req *r)
{
	int64_t id = r->id[0];
	if (boot_exists(r, "machines", "machine", id) < 0)
		return -1;
	int rc =
	    store_exec(r->srv->store, "DELETE FROM boot_temporary WHERE machine_id = ?", "i", id);
	if (rc < 0)
		return req_internal(r);
	if (rc > 0)
		audit_add(r, "update", "machine", id, "temporary boot mode removed");
	return req_no_content(r);
}

/* The members of a group, for its temporary modes. NULL on error. */
static json_t *boot_members(struct req *r, int64_t gid)
{
	return store_rows_json(r->srv->store,
	                       "SELECT machine_id FROM group_members WHERE group_id = ?"
	                       " ORDER BY machine_id",
	                       "i", gid);
}

static int boot_group_temp_put(struct req *r)
{
	int64_t gid = r->id[0], exp;
	int mode;
	const char *reason;
	if (boot_temp_args(r, &mode, &reason, &exp) < 0 ||
	    boot_exists(r, "mgroups", "group", gid) < 0)
		return -1;
	struct store *s = r->srv->store;
	json_t *ids = boot_members(r, gid);
	if (!ids)
		return req_internal(r);
	if (store_begin(s) < 0) {
		json_decref(ids);
		return req_internal(r);
	}
	size_t i, n = 0;
	json_t *v;
	int rc = 0;
	json_array_foreach(ids, i, v)
	{
		int64_t m = json_integer_value(json_object_get(v, "machine_id"));
		if ((rc = boot_temp_set(s, m, mode, 0, reason, r->user.name, exp)) < 0)
			break;
		n++;
	}
	json_decref(ids);
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	audit_add(r, "update", "group", gid, "temporary boot mode %s for %zu machines",
	          boot_mode_str(mode), n);
	return req_reply(r, 200,
	                 json_pack("{sIsssI}", "group_id", (json_int_t)gid, "mode",
	                           boot_mode_str(mode), "machines", (json_int_t)n));
}

static int boot_group_temp_delete(struct req *r)
{
	int64_t gid = r->id[0];
	if (boot_exists(r, "mgroups", "group", gid) < 0)
		return -1;
	int rc = store_exec(r->srv->store,
	                    "DELETE FROM boot_temporary WHERE machine_id IN"
	                    " (SELECT machine_id FROM group_members WHERE group_id = ?)",
	                    "i", gid);
	if (rc < 0)
		return req_internal(r);
	audit_add(r, "update", "group", gid, "temporary boot modes of %d machines removed", rc);
	return req_reply(
	    r, 200, json_pack("{sIsI}", "group_id", (json_int_t)gid, "machines", (json_int_t)rc));
}

const struct api_route api_boot_routes[] = {
    {"GET", "/machines/:id/boot", ROLE_VIEWER, boot_machine_get, NULL},
    {"PUT", "/machines/:id/boot", ROLE_OPERATOR, boot_machine_put, NULL},
    {"PUT", "/machines/:id/boot/temporary", ROLE_OPERATOR, boot_machine_temp_put, NULL},
    {"DELETE", "/machines/:id/boot/temporary", ROLE_OPERATOR, boot_machine_temp_delete, NULL},
    {"GET", "/groups/:id/boot", ROLE_VIEWER, boot_group_get, NULL},
    {"PUT", "/groups/:id/boot", ROLE_OPERATOR, boot_group_put, NULL},
    {"PUT", "/groups/:id/boot/temporary", ROLE_OPERATOR, boot_group_temp_put, NULL},
    {"DELETE", "/groups/:id/boot/temporary", ROLE_OPERATOR, boot_group_temp_delete, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
