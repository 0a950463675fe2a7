/*
 * Runs (docs/api.md, "Runs"): one execution of a deployment. The
 * scheduler (sched.c) and POST /deployments/:id/run create them pending;
 * the deployment runner executes them. This module only shows them.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"

static const char *const run_states[] = {"pending", "running", "done", "failed", "cancelled", NULL};

#define RUN_COLS                                                                                   \
	"SELECT r.id, r.deployment_id, r.deployment_name, r.version_id, v.image_id, r.state,"      \
	" r.cause, r.due_at AS \"due_at:t\", r.created_at AS \"created_at:t\","                    \
	" r.started_at AS \"started_at:t\", r.finished_at AS \"finished_at:t\", r.error"           \
	" FROM runs r JOIN image_versions v ON v.id = r.version_id"

json_t *api_runs_get(struct store *s, int64_t id, bool *found)
{
	return store_row1_json(s, found, RUN_COLS " WHERE r.id = ?", "i", id);
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
	json_t *o = api_runs_get(r->srv->store, r->id[0], &found);
	if (!found)
		return o ? req_internal(r) : req_not_found(r, "run", r->id[0]);
	return req_reply(r, 200, o);
}

const struct api_route api_runs_routes[] = {
    {"GET", "/runs", ROLE_VIEWER, runs_list, NULL},
    {"GET", "/runs/:id", ROLE_VIEWER, runs_show, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
