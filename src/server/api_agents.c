/*
 * Administration of the agents (docs/api.md, "Agents"): enrollment tokens,
 * the enrolled agents with their credentials and inventory, and the
 * command queue.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agentq.h"
#include "auth.h"
#include "api.h"
#include "audit.h"
#include "jv.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"

#define ETOKEN_COLS                                                                                \
	"SELECT id, name, max_uses, uses, expires_at AS \"expires_at:t\","                         \
	" created_by_name AS created_by, created_at AS \"created_at:t\","                          \
	" last_used_at AS \"last_used_at:t\", revoked_at AS \"revoked_at:t\" FROM enroll_tokens"

#define COMMAND_COLS                                                                               \
	"SELECT c.id, c.machine_id, m.name AS machine, c.run_id, c.kind, c.args AS \"args:j\","    \
	" c.state, c.phase, c.result AS \"result:j\", c.created_at AS \"created_at:t\","           \
	" c.sent_at AS \"sent_at:t\", c.updated_at AS \"updated_at:t\","                           \
	" c.expires_at AS \"expires_at:t\" FROM agent_commands c"                                  \
	" JOIN machines m ON m.id = c.machine_id"

static int etokens_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	struct store *s = r->srv->store;
	store_int(s, &total, "SELECT COUNT(*) FROM enroll_tokens", NULL);
	return req_reply_page(
	    r, store_rows_json(s, ETOKEN_COLS " ORDER BY id LIMIT ? OFFSET ?", "ii", limit, offset),
	    total, limit, offset);
}

/* POST /enroll-tokens {"name", "max_uses"?, "expires"?}: shown once. */
static int etokens_create(struct req *r)
{
	static const char *const keys[] = {"name", "max_uses", "expires", NULL};
	const char *name, *expires = NULL;
	int64_t max_uses = 0, id;
	time_t exp = 0;
	char tok[AUTH_SECRET_LEN + 1], hash[65], err[256];
	struct store *s = r->srv->store;
	if (jv_object(r, keys) < 0 || jv_str(r, "name", JV_REQ, 1, 100, &name) < 0 ||
	    jv_int(r, "max_uses", 0, 1, 1000000, &max_uses) < 0 ||
	    jv_str(r, "expires", 0, 1, 64, &expires) < 0)
		return -1;
	if (expires) {
		if (timefmt_parse(expires, strlen(expires), &exp, err, sizeof(err)) < 0)
			return req_bad(r, "expires", "expires: %s", err);
		if ((int64_t)exp <= store_now())
			return req_bad(r, "expires", "expires is in the past");
	}
	if (auth_secret_new("mle_", tok, hash) < 0)
		return req_internal(r);
	if (store_begin(s) < 0)
		return req_internal(r);
	static const char sql[] = "INSERT INTO enroll_tokens (name, hash, max_uses, expires_at,"
	                          " created_by_name, created_at) VALUES (?, ?, ?, ?, ?, ?)"
	                          " RETURNING id";
	int rc;
	if (max_uses && exp)
		rc = store_insert(s, &id, sql, "ttiiti", name, hash, max_uses, (int64_t)exp,
		                  r->user.name, store_now());
	else if (max_uses)
		rc = store_insert(s, &id, sql, "ttinti", name, hash, max_uses, r->user.name,
		                  store_now());
	else if (exp)
		rc = store_insert(s, &id, sql, "ttniti", name, hash, (int64_t)exp, r->user.name,
		                  store_now());
	else
		rc = store_insert(s, &id, sql, "ttnnti", name, hash, r->user.name, store_now());
	if (rc == 0)
		rc = audit_add(r, "create", "enroll_token", id, "enrollment token '%s'", name);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "enrollment token");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	json_t *t = store_row1_json(s, &found, ETOKEN_COLS " WHERE id = ?", "i", id);
	if (!t)
		return req_internal(r);
	json_object_set_new(t, "token", json_string(tok));
	return req_reply(r, 201, t);
}

/* DELETE /enroll-tokens/:id: revokes (the row stays, for the credentials' history). */
static int etokens_delete(struct req *r)
{
	int64_t id = r->id[0], revoked = 0;
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(
	    s, &revoked, "SELECT COALESCE(revoked_at, 0) FROM enroll_tokens WHERE id = ?", "i", id);
	if (rc == -ENOENT) {
		store_rollback(s);
		return req_not_found(r, "enrollment token", id);
	}
	if (rc == 0 && !revoked)
		rc = store_exec(s, "UPDATE enroll_tokens SET revoked_at = ? WHERE id = ?", "ii",
		                store_now(), id);
	if (rc >= 0 && !revoked)
		rc = audit_add(r, "delete", "enroll_token", id, "revoked enrollment token %lld",
		               (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

/* A short view of an inventory for the list. */
static json_t *agents_summary(const char *data)
{
	json_t *inv = json_loads(data, 0, NULL);
	if (!inv)
		return json_null();
	json_t *sum = json_object();
	static const char *const keys[] = {"hostname", "memory_bytes", "kvm", "uptime_s", NULL};
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(inv, keys[i]);
		if (v)
			json_object_set(sum, keys[i], v);
	}
	json_t *cpu = json_object_get(json_object_get(inv, "cpu"), "count");
	if (cpu)
		json_object_set(sum, "cpus", cpu);
	json_t *images = json_object_get(inv, "images");
	if (json_is_array(images))
		json_object_set_new(sum, "images",
		                    json_integer((json_int_t)json_array_size(images)));
	json_decref(inv);
	return sum;
}

/* Adds "online" and turns "inventory" text into its summary (list) or itself (one). */
static void agents_decorate(struct srv *srv, json_t *row, bool full)
{
	json_int_t mid = json_integer_value(json_object_get(row, "machine_id"));
	json_object_set_new(row, "online", json_boolean(agentq_online(srv, mid)));
	const char *inv = json_string_value(json_object_get(row, "inventory"));
	if (!inv)
		return;
	if (full) {
		json_t *v = json_loads(inv, 0, NULL);
		json_object_set_new(row, "inventory", v ? v : json_null());
	} else {
		json_object_set_new(row, "inventory", agents_summary(inv));
	}
}

#define AGENT_COLS                                                                                 \
	"SELECT m.id AS machine_id, m.name AS machine, m.ip, m.subnet,"                            \
	" m.last_seen_at AS \"last_seen_at:t\","                                                   \
	" (SELECT last_addr FROM agent_credentials c WHERE c.machine_id = m.id"                    \
	"  ORDER BY c.id DESC LIMIT 1) AS address,"                                                \
	" (SELECT agent_version FROM agent_credentials c WHERE c.machine_id = m.id"                \
	"  ORDER BY c.id DESC LIMIT 1) AS agent_version,"                                          \
	" (SELECT COUNT(*) FROM agent_credentials c WHERE c.machine_id = m.id"                     \
	"  AND c.revoked_at IS NULL) > 0 AS \"enrolled:b\","                                       \
	" i.data AS inventory, i.at AS \"inventory_at:t\" FROM machines m"                         \
	" LEFT JOIN machine_inventory i ON i.machine_id = m.id"                                    \
	" WHERE EXISTS (SELECT 1 FROM agent_credentials c WHERE c.machine_id = m.id)"

static int agents_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	struct store *s = r->srv->store;
	store_int(s, &total, "SELECT COUNT(DISTINCT machine_id) FROM agent_credentials", NULL);
	json_t *items =
	    store_rows_json(s, AGENT_COLS " ORDER BY m.name LIMIT ? OFFSET ?", "ii", limit, offset);
	size_t i;
	json_t *row;
	json_array_foreach(items, i, row) agents_decorate(r->srv, row, false);
	return req_reply_page(r, items, total, limit, offset);
}

static int agents_show(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	bool found;
	json_t *row = store_row1_json(s, &found, AGENT_COLS " AND m.id = ?", "i", id);
	if (!row)
		return found ? req_internal(r) : req_not_found(r, "agent of machine", id);
	agents_decorate(r->srv, row, true);
	json_t *creds = store_rows_json(
	    s,
	    "SELECT id, enroll_token_id, created_at AS \"created_at:t\","
	    " revoked_at AS \"revoked_at:t\", revoked_by_name AS revoked_by,"
	    " last_seen_at AS \"last_seen_at:t\", last_addr AS address, agent_version"
	    " FROM agent_credentials WHERE machine_id = ? ORDER BY id",
	    "i", id);
	if (!creds) {
		json_decref(row);
		return req_internal(r);
	}
	json_object_set_new(row, "credentials", creds);
	return req_reply(r, 200, row);
}

/* DELETE /agents/:id: revokes every credential of the machine. */
static int agents_revoke(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0], n = 0;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &n, "SELECT COUNT(*) FROM agent_credentials WHERE machine_id = ?",
	                   "i", id);
	if (rc == 0 && n == 0) {
		store_rollback(s);
		return req_not_found(r, "agent of machine", id);
	}
	if (rc == 0)
		rc = store_exec(s,
		                "UPDATE agent_credentials SET revoked_at = ?, revoked_by_name = ?"
		                " WHERE machine_id = ? AND revoked_at IS NULL",
		                "iti", store_now(), r->user.name, id);
	int dropped = 0;
	if (rc >= 0) {
		int revoked = rc;
		rc = dropped = agentq_drop_machine(s, id);
		if (rc >= 0)
			rc = audit_add(
			    r, "revoke", "machine", id,
			    "revoked %d agent credential(s); %d unfinished command(s) cancelled",
			    revoked, dropped);
	}
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	/* Its waiting poll, if any, answers 401 now: a cut-off agent gets nothing more. */
	agentq_kick(r->srv, id);
	return req_no_content(r);
}

/*
 * A receive command's session key authenticates the session's control
 * packets: only the agent it is for sees it (docs/agent-protocol.md), the
 * API shows that there is one.
 */
static json_t *commands_redact(json_t *row)
{
	json_t *args = json_object_get(row, "args");
	if (json_object_get(args, "key"))
		json_object_set_new(args, "key", json_string("(hidden)"));
	return row;
}

static int commands_list(struct req *r)
{
	static const char *const states[] = {"queued", "sent",      "running", "done",
	                                     "failed", "cancelled", "expired", NULL};
	int64_t limit, offset, total = 0;
	uint64_t machine = 0, run = 0;
	const char *m = req_query(r, "machine"), *ru = req_query(r, "run"),
	           *st = req_query(r, "state"), *why;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (m && parse_uint(m, 1, INT64_MAX, &machine, &why) < 0)
		return req_bad(r, "machine", "machine: %s", why);
	if (ru && parse_uint(ru, 1, INT64_MAX, &run, &why) < 0)
		return req_bad(r, "run", "run: %s", why);
	if (st) {
		int i;
		for (i = 0; states[i] && strcmp(states[i], st) != 0; i++)
			;
		if (!states[i])
			return req_bad(r, "state",
			               "state: expected queued, sent, running, done, "
			               "failed, cancelled or expired");
	}
	static const char where[] = " WHERE (? = 0 OR c.machine_id = ?) AND (? = 0 OR c.run_id = ?)"
	                            " AND (? IS NULL OR c.state = ?)";
	struct store *s = r->srv->store;
	char sql[1024];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM agent_commands c%s", where);
	store_int(s, &total, sql, "iiiitt", (int64_t)machine, (int64_t)machine, (int64_t)run,
	          (int64_t)run, st, st);
	snprintf(sql, sizeof(sql), COMMAND_COLS "%s ORDER BY c.id LIMIT ? OFFSET ?", where);
	json_t *items = store_rows_json(s, sql, "iiiittii", (int64_t)machine, (int64_t)machine,
	                                (int64_t)run, (int64_t)run, st, st, limit, offset);
	size_t i;
	json_t *row;
	json_array_foreach(items, i, row) commands_redact(row);
	return req_reply_page(r, items, total, limit, offset);
}

static int commands_show(struct req *r)
{
	bool found;
	json_t *row =
	    store_row1_json(r->srv->store, &found, COMMAND_COLS " WHERE c.id = ?", "i", r->id[0]);
	if (!row)
		return found ? req_internal(r) : req_not_found(r, "command", r->id[0]);
	return req_reply(r, 200, commands_redact(row));
}

const struct api_route api_agents_routes[] = {
    {"GET", "/enroll-tokens", ROLE_ADMIN, etokens_list, NULL},
    {"POST", "/enroll-tokens", ROLE_ADMIN, etokens_create, NULL},
    {"DELETE", "/enroll-tokens/:id", ROLE_ADMIN, etokens_delete, NULL},
    {"GET", "/agents", ROLE_VIEWER, agents_list, NULL},
    {"GET", "/agents/:id", ROLE_VIEWER, agents_show, NULL},
    {"DELETE", "/agents/:id", ROLE_ADMIN, agents_revoke, NULL},
    {"GET", "/commands", ROLE_VIEWER, commands_list, NULL},
    {"GET", "/commands/:id", ROLE_VIEWER, commands_show, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
