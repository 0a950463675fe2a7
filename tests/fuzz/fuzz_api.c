/*
 * libFuzzer harness for the API's request handling: routing, authorization,
 * JSON body parsing and validation, and every handler, on an in-memory
 * store, exactly as http.c drives them but without sockets. The store
 * lives across inputs, so one input can create what the next one changes;
 * when an input takes the harness's own admin token away (revoked, its user
 * demoted or disabled), the store starts anew, or every later input would
 * stop at the 401.
 *
 * Input: the first byte picks the method, then the path up to the first
 * newline, then the body. Every request runs as an admin (the widest
 * reach), except when the method byte's high bit is set (no token), or
 * its 0x40 bit (the agent credential of machine 1, for /agent paths: 0x42
 * is GET, 0x43 POST; a command of each kind is queued for it, one a
 * receive of version 1). The
 * contract checked: a handler always leaves a response, a status in
 * 200..599, and an error response has the documented shape.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentq.h"
#include "api.h"
#include "auth.h"
#include "log.h"
#include "req.h"
#include "server.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct srv fz_srv;
static char fz_token[AUTH_TOKEN_LEN + 1];
static char fz_agent[AUTH_SECRET_LEN + 1];

static void fz_init(void)
{
	static int once;
	char err[256];
	int64_t id, tid;
	if (!once) {
		log_init("fuzz_api", LOG_LVL_ERROR, 0);
		log_set_level(LOG_LVL_ERROR + 0);
		srvconf_defaults(&fz_srv.conf);
		once = 1;
	}
	if (store_open_sqlite(":memory:", &fz_srv.store, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_api: %s\n", err);
		abort();
	}
	/* A known hash: hashing at start-up would cost 19 MiB and time per run. */
	if (store_insert(fz_srv.store, &id,
	                 "INSERT INTO users (username, role, pw_hash, created_at, updated_at)"
	                 " VALUES ('admin', 'admin', NULL, 0, 0) RETURNING id",
	                 NULL) < 0 ||
	    auth_token_new(fz_srv.store, id, "api", "fuzz", 0, fz_token, &tid) < 0)
		abort();
	/*
	 * Rows that deployments, entries and rights refer to, so that their
	 * handlers get past the existence checks: an image with a ready and an
	 * importing version, a machine in a group, and a criterion.
	 */
	static const char *const rows[] = {
	    "INSERT INTO images (name, created_at, updated_at) VALUES ('img', 0, 0)",
	    "INSERT INTO image_versions (image_id, number, state, created_at)"
	    " VALUES (1, 1, 'ready', 0), (1, 2, 'importing', 0)",
	    "INSERT INTO machines (name, ip, room, created_at, updated_at)"
	    " VALUES ('pc-1', '10.0.0.1', 'B', 0, 0)",
	    "INSERT INTO mgroups (name, created_at, updated_at) VALUES ('g', 0, 0)",
	    "INSERT INTO group_members (group_id, machine_id) VALUES (1, 1)",
	    "INSERT INTO criteria (name, room, created_at, updated_at) VALUES ('b', 'B', 0, 0)",
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (store_exec(fz_srv.store, rows[i], NULL) < 0)
			abort();
	/*
	 * An agent of machine 1 with commands to report on, and an enrollment
	 * token the seeds know: "mle_" and 64 times '1'.
	 */
	char hash[65], etok[AUTH_SECRET_LEN + 1];
	snprintf(etok, sizeof(etok), "mle_%064d", 0);
	memset(etok + 4, '1', 64);
	if (auth_secret_new("mla_", fz_agent, hash) < 0 ||
	    store_exec(fz_srv.store,
	               "INSERT INTO agent_credentials (machine_id, hash, created_at)"
	               " VALUES (1, ?, 0)",
	               "t", hash) < 0)
		abort();
	auth_token_hash(etok, hash);
	if (store_exec(fz_srv.store,
	               "INSERT INTO enroll_tokens (name, hash, created_at) VALUES ('e', ?, 0)", "t",
	               hash) < 0)
		abort();
	static const char *const cmds[] = {"{\"version_id\": 1}", "{}", "{\"image_id\": 1}",
	                                   "{\"command\": 1}"};
	static const char *const kinds[] = {"receive", "wol", "rollback", "cancel"};
	for (size_t i = 0; i < 4; i++) {
		json_t *a = json_loads(cmds[i], 0, NULL);
		int64_t cid;
		if (!a || agentq_push(&fz_srv, 1, 0, kinds[i], a, 0, &cid) < 0)
			abort();
		json_decref(a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"};
	static int ready;
	struct req_user me;
	int64_t am, ac;
	/* A re-enrollment of machine 1 or a revocation takes the agent's credential too. */
	if (ready && (auth_token_check(fz_srv.store, fz_token, &me) < 0 || me.role != ROLE_ADMIN ||
	              agentq_cred_check(&fz_srv, fz_agent, &am, &ac) < 0)) {
		store_close(fz_srv.store);
		fz_srv.store = NULL;
		ready = 0;
	}
	if (!ready) {
		fz_init();
		ready = 1;
	}
	if (size < 2)
		return 0;
	const char *method = methods[(data[0] & 0x7f) % 6];
	bool anonymous = data[0] & 0x80, agent = data[0] & 0x40;
	const uint8_t *nl = memchr(data + 1, '\n', size - 1);
	size_t plen = nl ? (size_t)(nl - data - 1) : size - 1;
	char path[600];
	if (plen >= sizeof(path))
		return 0;
	memcpy(path, data + 1, plen);
	path[plen] = '\0';
	/* The HTTP layer never passes a path with a NUL or a query in it. */
	if (strlen(path) != plen)
		return 0;
	char *query = strchr(path, '?');
	struct req r;
	memset(&r, 0, sizeof(r));
	r.srv = &fz_srv;
	r.peer = "fuzz";
	if (query) {
		/* Query arguments as http.c hands them: k=v pairs split on '&'. */
		*query++ = '\0';
		char *save = NULL;
		for (char *kv = strtok_r(query, "&", &save); kv && r.nq < REQ_MAX_QUERY;
		     kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');
			if (eq)
				*eq++ = '\0';
			r.qk[r.nq] = kv;
			r.qv[r.nq] = eq ? eq : "";
			r.nq++;
		}
	}
	const char *body = nl ? (const char *)nl + 1 : "";
	size_t blen = nl ? size - plen - 2 : 0;
	api_handle(&r, method, path, anonymous ? NULL : agent ? fz_agent : fz_token, body, blen);
	req_clear_file(&r);
	if (r.status < 200 || r.status > 599)
		abort();
	if (r.status >= 400) {
		json_t *e = json_object_get(r.resp, "error");
		if (!json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message")))
			abort();
	}
	json_decref(r.body);
	json_decref(r.resp);
	return 0;
}
