/*
 * Runs (docs/api.md, "Runs"; docs/runs.md): one execution of a deployment.
 * The scheduler (sched.c), POST /deployments/:id/run and a retry create
 * them pending; the runner (runner.c) executes them. This module shows them
 * with their machines, cancels them, retries their failed machines, and
 * rolls machines back: a run's, one machine, or a group's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agentq.h"
#include "api.h"
#include "audit.h"
#include "jv.h"
#include "parse.h"
#include "req.h"
#include "runner.h"
#include "server.h"
#include "store.h"

static const char *const run_states[] = {"pending", "running", "done", "failed", "cancelled", NULL};

#define RUN_COLS                                                                                   \
	"SELECT r.id, r.deployment_id, r.deployment_name, r.version_id, v.image_id, r.state,"      \
	" r.cause, r.due_at AS \"due_at:t\", r.created_at AS \"created_at:t\","                    \
	" r.started_at AS \"started_at:t\", r.finished_at AS \"finished_at:t\", r.error,"          \
	" r.phase, r.sent_bytes, r.retry_of, r.mail"                                               \
	" FROM runs r JOIN image_versions v ON v.id = r.version_id"

json_t *api_runs_get(struct store *s, int64_t id, bool *found)
{
	return store_row1_json(s, found, RUN_COLS " WHERE r.id = ?", "i", id);
}

static const char *const target_states[] = {"waiting", "ready",  "receiving", "done", "current",
                                            "missing", "failed", "cancelled", NULL};

/* The run with its machines, totals and live rate (GET /runs/:id). */
static json_t *runs_full(struct srv *srv, int64_t id, bool *found)
{
	json_t *o = api_runs_get(srv->store, id, found);
	if (!o)
		return NULL;
	json_t *t = store_rows_json(
	    srv->store,
	    "SELECT machine_id, machine_name AS machine, state, reason, woken, bytes, chunks_done,"
	    " chunks_needed, started_at AS \"started_at:t\", finished_at AS \"finished_at:t\","
	    " CASE WHEN started_at IS NULL THEN NULL"
	    " ELSE (COALESCE(finished_at, ?) - started_at) * 1000 END AS ms"
	    " FROM run_targets WHERE run_id = ? ORDER BY machine_name",
	    "ii", store_now(), id);
	json_t *tot = json_object();
	if (!t || !tot) {
		json_decref(t);
		json_decref(tot);
		json_decref(o);
		return NULL;
	}
	for (size_t k = 0; target_states[k]; k++)
		json_object_set_new(tot, target_states[k], json_integer(0));
	size_t i;
	json_t *row;
	json_array_foreach(t, i, row)
	{
		const char *st = json_string_value(json_object_get(row, "state"));
		json_t *n = st ? json_object_get(tot, st) : NULL;
		if (n)
			json_integer_set(n, json_integer_value(n) + 1);
	}
	json_object_set_new(tot, "machines", json_integer((json_int_t)json_array_size(t)));
	json_object_set_new(o, "totals", tot);
	json_object_set_new(o, "targets", t);
	json_object_set_new(o, "rate_bps", json_integer((json_int_t)runner_rate(srv, id)));
	return o;
}

static bool runs_ended(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

/* The run's state into buf: 1, 0 (no such run) or < 0. */
static int runs_state(struct store *s, int64_t id, char *buf, size_t n)
{
	struct store_q *q = store_query(s, "SELECT state FROM runs WHERE id = ?", "i", id);
	int rc = q ? store_next(q) : -1;
	if (rc == 1)
		snprintf(buf, n, "%s", store_col_text(q, 0));
	store_done(q);
	return rc;
}

static int runs_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	const char *dep_s = req_query(r, "deployment"), *state = req_query(r, "state"), *why;
	uint64_t dep = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (dep_s && parse_uint(dep_s, 1, INT64_MAX, &dep, &why) < 0)
		return req_bad(r, "deployment", "deployment: %s (a deployment id)", why);
	if (state) {
		bool ok = false;
		for (size_t i = 0; run_states[i]; i++)
			ok = ok || strcmp(state, run_states[i]) == 0;
		if (!ok)
			return req_bad(r, "state",
			               "state must be one of: pending, running, done, failed, "
			               "cancelled");
	}
	/* A filter not given is 0 or NULL and matches everything. */
	static const char where[] = " WHERE (? = 0 OR r.deployment_id = ?)"
	                            " AND (? IS NULL OR r.state = ?)";
	char sql[768];
	struct store *s = r->srv->store;
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM runs r%s", where);
	store_int(s, &total, sql, "iitt", (int64_t)dep, (int64_t)dep, state, state);
	snprintf(sql, sizeof(sql), RUN_COLS "%s ORDER BY r.id DESC LIMIT ? OFFSET ?", where);
	json_t *items = store_rows_json(s, sql, "iittii", (int64_t)dep, (int64_t)dep, state, state,
	                                limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int runs_show(struct req *r)
{
	bool found;
	json_t *o = runs_full(r->srv, r->id[0], &found);
	if (!o)
		return found ? req_internal(r) : req_not_found(r, "run", r->id[0]);
	return req_reply(r, 200, o);
}

static int runs_cancel(struct req *r)
{
	static const char *const keys[] = {NULL};
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	char state[16];
	if (r->body && jv_object(r, keys) < 0)
		return -1;
	int rc = runs_state(s, id, state, sizeof(state));
	if (rc <= 0)
		return rc == 0 ? req_not_found(r, "run", id) : req_internal(r);
	if (runs_ended(state))
		return req_conflict(r, NULL, "run %lld has ended (%s)", (long long)id, state);
	if (strcmp(state, "pending") == 0) {
		/* Only a still pending run is ended here; one the runner took is its business. */
		rc = store_exec(s,
		                "UPDATE runs SET state = 'cancelled', finished_at = ?, error = ?"
		                " WHERE id = ? AND state = 'pending'",
		                "iti", store_now(), "cancelled by a user before it started", id);
		if (rc < 0)
			return req_internal(r);
	}
	if (strcmp(state, "running") == 0 || rc == 0) {
		/* A run not executing here is about to end (or be ended at start): say so. */
		if (!runner_cancel(r->srv, id))
			return req_conflict(r, NULL,
			                    "run %lld is ending; look at it again in a moment",
			                    (long long)id);
		/* A record that a user asked, whatever the run's end says. */
		store_exec(s, "UPDATE runs SET cancel_requested = 1 WHERE id = ?", "i", id);
	}
	audit_add(r, "cancel", "run", id, "cancel run %lld (%s)", (long long)id, state);
	bool found;
	json_t *o = runs_full(r->srv, id, &found);
	return o ? req_reply(r, 200, o) : req_internal(r);
}

static int runs_retry(struct req *r)
{
	static const char *const keys[] = {NULL};
	struct store *s = r->srv->store;
	int64_t id = r->id[0], nid = 0, n = 0, now = store_now();
	char state[16];
	if (r->body && jv_object(r, keys) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = runs_state(s, id, state, sizeof(state));
	if (rc <= 0) {
		store_rollback(s);
		return rc == 0 ? req_not_found(r, "run", id) : req_internal(r);
	}
	if (!runs_ended(state)) {
		store_rollback(s);
		return req_conflict(r, NULL, "run %lld has not ended yet (%s)", (long long)id,
		                    state);
	}
	int64_t busy = 0;
	if (store_int(
	        s, &busy,
	        "SELECT COUNT(*) FROM runs WHERE retry_of = ? AND state IN ('pending', 'running')",
	        "i", id) < 0 ||
	    busy > 0) {
		store_rollback(s);
		return busy ? req_conflict(r, NULL,
		                           "a retry of run %lld is pending or running already",
		                           (long long)id)
		            : req_internal(r);
	}
	static const char again[] = " FROM run_targets WHERE run_id = ? AND machine_id IS NOT NULL"
	                            " AND state IN ('failed', 'missing', 'cancelled')";
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*)%s", again);
	if (store_int(s, &n, sql, "i", id) < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (n == 0) {
		store_rollback(s);
		return req_conflict(r, NULL,
		                    "no machine of run %lld failed, was missing or cancelled",
		                    (long long)id);
	}
	rc = store_insert(
	    s, &nid,
	    "INSERT INTO runs (deployment_id, deployment_name, version_id, state, cause,"
	    " due_at, created_at, retry_of) SELECT deployment_id, deployment_name,"
	    " version_id, 'pending', 'retry', ?, ?, id FROM runs WHERE id = ?"
	    " RETURNING id",
	    "iii", now, now, id);
	if (rc == 0) {
		snprintf(sql, sizeof(sql),
		         "INSERT INTO run_targets (run_id, machine_id, machine_name, state)"
		         " SELECT ?, machine_id, machine_name, 'waiting'%s",
		         again);
		rc = store_exec(s, sql, "ii", nid, id) < 0 ? -1 : 0;
	}
	if (rc == 0)
		rc = audit_add(r, "retry", "run", id, "run %lld retries %lld machines of run %lld",
		               (long long)nid, (long long)n, (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	runner_kick(r->srv);
	bool found;
	json_t *o = runs_full(r->srv, nid, &found);
	return o ? req_reply(r, 201, o) : req_internal(r);
}

/* ---- rollback ---------------------------------------------------------- */

#define ROLLBACK_TTL_S (7 * 86400) /* a machine that is off gets it when it comes back */

/* The active version of image in machine's last inventory; 0 when unknown. */
static int64_t rollback_active(struct store *s, int64_t machine, int64_t image)
{
	int64_t active = 0;
	struct store_q *q =
	    store_query(s, "SELECT data FROM machine_inventory WHERE machine_id = ?", "i", machine);
	json_t *inv = q && store_next(q) == 1 ? json_loads(store_col_text(q, 0), 0, NULL) : NULL;
	store_done(q);
	size_t i;
	json_t *img;
	json_array_foreach(json_object_get(inv, "images"), i, img)
	{
		if (json_integer_value(json_object_get(img, "image_id")) == image)
			active = json_integer_value(json_object_get(img, "active"));
	}
	json_decref(inv);
	return active > 0 ? active : 0;
}

/*
 * Queues a rollback of image for every machine the query (binding id)
 * yields, and replies 202 with the commands; 409 when there is none. The
 * command names the version expected active (from: the run's version; 0:
 * each machine's from its last inventory, when it has one), so that an
 * agent given it twice does not switch back and forth.
 */
static int rollback_reply(struct req *r, const char *sql, int64_t id, int64_t image, int64_t from,
                          const char *what)
{
	struct store *s = r->srv->store;
	int64_t *ids = NULL;
	size_t n = 0;
	struct store_q *q = store_query(s, sql, "i", id);
	if (!q)
		return req_internal(r);
	while (store_next(q) == 1) {
		int64_t *ni = realloc(ids, (n + 1) * sizeof(*ni));
		if (!ni)
			break;
		ids = ni;
		ids[n++] = store_col_int(q, 0);
	}
	store_done(q);
	if (n == 0) {
		free(ids);
		return req_conflict(r, NULL, "%s has no machine to roll back", what);
	}
	json_t *cmds = json_array();
	for (size_t i = 0; cmds && i < n; i++) {
		int64_t cid, expect = from ? from : rollback_active(s, ids[i], image);
		json_t *args = expect ? json_pack("{s:I, s:I}", "image_id", (json_int_t)image,
		                                  "from_version", (json_int_t)expect)
		                      : json_pack("{s:I}", "image_id", (json_int_t)image);
		int rc =
		    args ? agentq_push(r->srv, ids[i], 0, "rollback", args, ROLLBACK_TTL_S, &cid)
		         : -ENOMEM;
		json_decref(args);
		if (rc < 0)
			continue;
		bool found;
		json_t *row = store_row1_json(
		    s, &found,
		    "SELECT ? AS id, id AS machine_id, name AS machine FROM machines WHERE id = ?",
		    "ii", cid, ids[i]);
		if (row)
			json_array_append_new(cmds, row);
	}
	free(ids);
	if (!cmds)
		return req_internal(r);
	audit_add(r, "rollback", "image", image, "roll back image %lld on %s (%zu machines)",
	          (long long)image, what, json_array_size(cmds));
	return req_reply(r, 202, json_pack("{s:o}", "commands", cmds));
}

static int runs_rollback(struct req *r)
{
	static const char *const keys[] = {NULL};
	int64_t id = r->id[0], image = 0, version = 0;
	char what[64];
	if (r->body && jv_object(r, keys) < 0)
		return -1;
	if (store_int(r->srv->store, &image,
	              "SELECT v.image_id FROM runs r JOIN image_versions v ON v.id = r.version_id"
	              " WHERE r.id = ?",
	              "i", id) < 0 ||
	    store_int(r->srv->store, &version, "SELECT version_id FROM runs WHERE id = ?", "i",
	              id) < 0)
		return req_not_found(r, "run", id);
	snprintf(what, sizeof(what), "run %lld", (long long)id);
	return rollback_reply(
	    r,
	    "SELECT machine_id FROM run_targets WHERE run_id = ? AND state = 'done'"
	    " AND machine_id IS NOT NULL ORDER BY machine_name",
	    id, image, version, what);
}

/* The body {"image_id"} of a machine's or group's rollback: 0, or -1 with a 400/404 reply. */
static int rollback_image(struct req *r, int64_t *image)
{
	static const char *const keys[] = {"image_id", NULL};
	int64_t n = 0;
	if (jv_object(r, keys) < 0 || jv_int(r, "image_id", JV_REQ, 1, INT64_MAX, image) < 0)
		return -1;
	if (store_int(r->srv->store, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", *image) <
	        0 ||
	    n == 0) {
		req_bad(r, "image_id", "image_id: no image with id %lld", (long long)*image);
		return -1;
	}
	return 0;
}

static int machines_rollback(struct req *r)
{
	int64_t id = r->id[0], image, n = 0;
	char what[64];
	if (rollback_image(r, &image) < 0)
		return -1;
	if (store_int(r->srv->store, &n, "SELECT COUNT(*) FROM machines WHERE id = ?", "i", id) <
	        0 ||
	    n == 0)
		return req_not_found(r, "machine", id);
	snprintf(what, sizeof(what), "machine %lld", (long long)id);
	return rollback_reply(r, "SELECT id FROM machines WHERE id = ?", id, image, 0, what);
}

static int groups_rollback(struct req *r)
{
	int64_t id = r->id[0], image, n = 0;
	char what[64];
	if (rollback_image(r, &image) < 0)
		return -1;
	if (store_int(r->srv->store, &n, "SELECT COUNT(*) FROM mgroups WHERE id = ?", "i", id) <
	        0 ||
	    n == 0)
		return req_not_found(r, "group", id);
	snprintf(what, sizeof(what), "group %lld", (long long)id);
	return rollback_reply(r,
	                      "SELECT machine_id FROM group_members WHERE group_id = ?"
	                      " ORDER BY machine_id",
	                      id, image, 0, what);
}

const struct api_route api_runs_routes[] = {
    {"GET", "/runs", ROLE_VIEWER, runs_list, NULL},
    {"GET", "/runs/:id", ROLE_VIEWER, runs_show, NULL},
    {"POST", "/runs/:id/cancel", ROLE_OPERATOR, runs_cancel, NULL},
    {"POST", "/runs/:id/retry", ROLE_OPERATOR, runs_retry, NULL},
    {"POST", "/runs/:id/rollback", ROLE_OPERATOR, runs_rollback, NULL},
    {"POST", "/machines/:id/rollback", ROLE_OPERATOR, machines_rollback, NULL},
    {"POST", "/groups/:id/rollback", ROLE_OPERATOR, groups_rollback, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
