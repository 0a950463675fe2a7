/*
 * The agents' side of the API, /api/v1/agent (docs/agent-protocol.md):
 * enrollment, heartbeat and inventory, the long poll, command results and
 * the manifest. Every route but enroll needs an agent credential
 * (ROLE_AGENT, api.c), which gives r->user.machine_id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentq.h"
#include "api.h"
#include "audit.h"
#include "auth.h"
#include "boot.h"
#include "jv.h"
#include "library.h"
#include "log.h"
#include "machines.h"
#include "match.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"

/* Largest inventory (hello body, serialized) and command result kept. */
#define AGENT_INVENTORY_MAX (64 * 1024)
#define AGENT_RESULT_MAX (64 * 1024)
/* At most this many MAC and IP addresses are looked at. */
#define AGENT_MAX_ADDRS 64
#define AGENT_POLL_DEFAULT_S 25
#define AGENT_POLL_MAX_S 60

/*
 * The first IPv4 address of ips ("10.1.2.34/24" strings; others, such as
 * IPv6 ones, are skipped) as an address and its network in canonical CIDR
 * form. Returns 1 when one was found, else 0.
 */
static int agent_first_ip4(json_t *ips, char ip[MATCH_IP4_SIZE], char subnet[MATCH_CIDR_SIZE])
{
	size_t i;
	json_t *v;
	json_array_foreach(ips, i, v)
	{
		const char *s = json_string_value(v);
		const char *slash = s ? strchr(s, '/') : NULL;
		uint32_t a;
		uint64_t prefix;
		if (!slash || match_ip4_parse(s, (size_t)(slash - s), &a, NULL, 0) < 0 ||
		    parse_uint(slash + 1, 0, 32, &prefix, NULL) < 0)
			continue;
		struct match_cidr c = {a & match_prefix_mask((unsigned)prefix), (unsigned)prefix};
		match_ip4_format(a, ip);
		match_cidr_format(&c, subnet);
		return 1;
	}
	return 0;
}

/* Checks an enrollment token and counts its use. 0, -EACCES or -EIO. */
static int agent_use_token(struct store *s, const char *token, int64_t *tid, char *name,
                           size_t namesz)
{
	char hash[65];
	int64_t now = store_now();
	int ret = -EACCES;
	if (!auth_secret_wellformed(token, "mle_"))
		return -EACCES;
	auth_token_hash(token, hash);
	struct store_q *q = store_query(s,
	                                "SELECT id, name, max_uses, uses, expires_at, revoked_at"
	                                " FROM enroll_tokens WHERE hash = ?",
	                                "t", hash);
	if (!q)
		return -EIO;
	if (store_next(q) == 1) {
		bool used_up = !store_col_null(q, 2) && store_col_int(q, 3) >= store_col_int(q, 2);
		bool expired = !store_col_null(q, 4) && store_col_int(q, 4) <= now;
		bool revoked = !store_col_null(q, 5);
		if (!used_up && !expired && !revoked) {
			*tid = store_col_int(q, 0);
			snprintf(name, namesz, "%s", store_col_text(q, 1));
			ret = 0;
		}
	}
	store_done(q);
	if (ret == 0 && store_exec(s,
	                           "UPDATE enroll_tokens SET uses = uses + 1, last_used_at = ?"
	                           " WHERE id = ?",
	                           "ii", now, *tid) < 0)
		ret = -EIO;
	return ret;
}

/* The machine owning one of the MAC addresses: 1 with *id, 0 none, < 0. */
static int agent_by_macs(struct req *r, json_t *macs, int64_t *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(macs, i, v)
	{
		uint8_t mac[MATCH_MAC_BYTES];
		char canon[MATCH_MAC_SIZE], err[MATCH_ERR_SIZE];
		const char *s = json_string_value(v);
		if (match_mac_parse(s, strlen(s), mac, err, sizeof(err)) < 0)
			return req_bad(r, "macs", "macs: %s", err);
		match_mac_format(mac, canon);
		int rc = store_int(r->srv->store, id,
		                   "SELECT machine_id FROM machine_macs WHERE mac = ?", "t", canon);
		if (rc == 0)
			return 1;
		if (rc != -ENOENT)
			return req_internal(r);
	}
	return 0;
}

/* The group [agents] new_group, created when missing. 0 or a store code. */
static int agent_new_group(struct srv *srv, int64_t *gid)
{
	const char *name = srv->conf.agents_new_group;
	int rc = store_int(srv->store, gid, "SELECT id FROM mgroups WHERE name = ?", "t", name);
	if (rc != -ENOENT)
		return rc;
	int64_t now = store_now();
	return store_insert(srv->store, gid,
	                    "INSERT INTO mgroups (name, description, created_at, updated_at)"
	                    " VALUES (?, 'machines registered by their agents', ?, ?) RETURNING id",
	                    "tii", name, now, now);
}

/*
 * Registers an unknown machine (docs/agent-protocol.md, "Enrollment").
 * Returns 0 with *id, or -1 with a response set.
 */
static int agent_register(struct req *r, const char *name, const char *hostname, json_t *macs,
                          json_t *ips, int64_t *id)
{
	struct store *s = r->srv->store;
	struct match_machine m;
	char err[MATCH_ERR_SIZE], ip[MATCH_IP4_SIZE], subnet[MATCH_CIDR_SIZE];
	const char *field = name ? "name" : "hostname";
	int64_t other, gid;
	match_machine_clear(&m);
	if (match_machine_set_name(&m, name ? name : hostname, strlen(name ? name : hostname), err,
	                           sizeof(err)) < 0)
		return req_bad(r, field, "%s: %s", field, err);
	size_t i;
	json_t *v;
	json_array_foreach(macs, i, v)
	{
		if (m.nmacs == MATCH_MAX_MACS)
			break;
		const char *s1 = json_string_value(v);
		if (match_machine_add_mac(&m, s1, strlen(s1), err, sizeof(err)) < 0)
			return req_bad(r, "macs", "macs: %s", err);
	}
	if (agent_first_ip4(ips, ip, subnet)) {
		match_machine_set_ip(&m, ip, strlen(ip), NULL, 0);
		match_machine_set_subnet(&m, subnet, strlen(subnet), NULL, 0);
	}
	/* A taken name gets the last three bytes of the first MAC appended. */
	int rc = machines_by_name(s, m.name, &other);
	if (rc == 0 && m.nmacs > 0) {
		char alt[MATCH_NAME_SIZE + 8];
		snprintf(alt, sizeof(alt), "%.240s-%02x%02x%02x", m.name, m.mac[0][3], m.mac[0][4],
		         m.mac[0][5]);
		if (match_machine_set_name(&m, alt, strlen(alt), err, sizeof(err)) < 0)
			return req_bad(r, field, "%s: %s", field, err);
		rc = machines_by_name(s, m.name, &other);
	}
	if (rc == 0)
		return req_conflict(r, field, "a machine called '%s' exists already", m.name);
	if (rc != -ENOENT)
		return req_internal(r);
	rc = machines_insert(s, &m, "agent", id);
	if (rc == 0)
		rc = agent_new_group(r->srv, &gid);
	if (rc == 0)
		rc = store_exec(s, "INSERT INTO group_members (group_id, machine_id) VALUES (?, ?)",
		                "ii", gid, *id);
	if (rc < 0)
		return req_store_error(r, rc, "machine");
	return 0;
}

/* POST /agent/enroll (no credential). */
static int agent_enroll(struct req *r)
{
	struct srv *srv = r->srv;
	struct store *s = srv->store;
	const char *token, *name = NULL, *hostname = NULL, *version = "";
	json_t *macs = NULL, *ips = NULL;
	int64_t tid = 0, mid = 0, cid;
	char tname[128], cred[AUTH_SECRET_LEN + 1], hash[65], mname[MATCH_NAME_SIZE] = "";
	bool registered = false;
	/* Unknown keys are ignored: newer agents may send more. */
	if (!json_is_object(r->body))
		return req_bad(r, NULL, "send a JSON object");
	if (jv_str(r, "token", JV_REQ, 1, 100, &token) < 0 ||
	    jv_str(r, "name", 0, 1, MATCH_NAME_MAX, &name) < 0 ||
	    jv_str(r, "hostname", 0, 1, MATCH_NAME_MAX, &hostname) < 0 ||
	    jv_strs(r, "macs", 0, AGENT_MAX_ADDRS, 64, &macs) < 0 ||
	    jv_strs(r, "ips", 0, AGENT_MAX_ADDRS, 64, &ips) < 0 ||
	    jv_str(r, "agent_version", 0, 0, 64, &version) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = agent_use_token(s, token, &tid, tname, sizeof(tname));
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EIO)
			return req_internal(r);
		return req_error(r, 401, "bad_token", "token",
		                 "the enrollment token is not valid (unknown, expired, used up or "
		                 "revoked)");
	}
	if (name) {
		char canon[MATCH_NAME_SIZE], err[MATCH_ERR_SIZE];
		if (match_hostname_normalize(name, strlen(name), canon, err, sizeof(err)) < 0) {
			store_rollback(s);
			return req_bad(r, "name", "name: %s", err);
		}
		rc = machines_by_name(s, canon, &mid);
		if (rc == -ENOENT)
			mid = 0;
		else if (rc < 0)
			goto internal;
	} else {
		rc = agent_by_macs(r, macs, &mid);
		if (rc < 0) {
			store_rollback(s);
			return -1;
		}
		if (rc == 0)
			mid = 0;
	}
	if (!mid) {
		if (!srv->conf.agents_register_unknown) {
			store_rollback(s);
			return req_error(
			    r, 403, "unknown_machine", NULL,
			    "this machine is not in the inventory and the server does "
			    "not register unknown machines ([agents] register_unknown)");
		}
		if (!name && !hostname) {
			store_rollback(s);
			return req_bad(r, "hostname", "an unknown machine needs a hostname");
		}
		if (agent_register(r, name, hostname, macs, ips, &mid) < 0) {
			store_rollback(s);
			return -1;
		}
		registered = true;
	}
	if (store_exec(s,
	               "UPDATE agent_credentials SET revoked_at = ?, revoked_by_name = 'enroll'"
	               " WHERE machine_id = ? AND revoked_at IS NULL",
	               "ii", store_now(), mid) < 0 ||
	    agentq_drop_machine(s, mid) < 0 || auth_secret_new("mla_", cred, hash) < 0 ||
	    store_insert(s, &cid,
	                 "INSERT INTO agent_credentials (machine_id, hash, enroll_token_id,"
	                 " created_at, last_addr, agent_version) VALUES (?, ?, ?, ?, ?, ?)"
	                 " RETURNING id",
	                 "itiitt", mid, hash, tid, store_now(), r->peer ? r->peer : "",
	                 version ? version : "") < 0)
		goto internal;
	struct store_q *q = store_query(s, "SELECT name FROM machines WHERE id = ?", "i", mid);
	if (q && store_next(q) == 1)
		snprintf(mname, sizeof(mname), "%s", store_col_text(q, 0));
	store_done(q);
	if (audit_system(s, "enroll", "machine", mid,
	                 "agent of '%s' enrolled from %s with token '%s'%s", mname,
	                 r->peer ? r->peer : "?", tname,
	                 registered ? "; registered the machine" : "") < 0)
		goto internal;
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_reply(r, 201,
	                 json_pack("{s:I, s:s, s:s, s:b, s:s}", "machine_id", (json_int_t)mid,
	                           "machine", mname, "credential", cred, "registered", registered,
	                           "fingerprint", srv->fingerprint));
internal:
	store_rollback(s);
	return req_internal(r);
}

/* The keys of a hello the server reads, with their JSON types. */
static const struct {
	const char *key;
	json_type type;
} agent_hello_types[] = {
    {"agent_version", JSON_STRING},
    {"hostname", JSON_STRING},
    {"boot_id", JSON_STRING},
    {"uptime_s", JSON_INTEGER},
    {"macs", JSON_ARRAY},
    {"ips", JSON_ARRAY},
    {"cpu", JSON_OBJECT},
    {"memory_bytes", JSON_INTEGER},
    {"disks", JSON_ARRAY},
    {"data_dir", JSON_OBJECT},
    {"kvm", JSON_TRUE},
    {"images", JSON_ARRAY},
    {"install", JSON_OBJECT},
};

static int agent_hello_check(struct req *r)
{
	for (size_t i = 0; i < sizeof(agent_hello_types) / sizeof(agent_hello_types[0]); i++) {
		json_t *v = json_object_get(r->body, agent_hello_types[i].key);
		json_type want = agent_hello_types[i].type;
		if (!v || json_is_null(v))
			continue;
		bool ok = want == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == want;
		if (!ok)
			return req_bad(r, agent_hello_types[i].key, "%s has the wrong type",
			               agent_hello_types[i].key);
	}
	json_t *arr[2] = {json_object_get(r->body, "macs"), json_object_get(r->body, "ips")};
	for (int k = 0; k < 2; k++) {
		size_t i;
		json_t *v;
		json_array_foreach(arr[k], i, v) if (!json_is_string(v)) return req_bad(
		    r, k ? "ips" : "macs", "%s must be an array of strings", k ? "ips" : "macs");
	}
	json_t *cpu = json_object_get(r->body, "cpu");
	json_t *cnt = json_object_get(cpu, "count");
	if (cnt && !json_is_null(cnt) && !json_is_integer(cnt))
		return req_bad(r, "cpu.count", "cpu.count must be an integer");
	const char *ver = json_string_value(json_object_get(r->body, "agent_version"));
	if (ver && strlen(ver) > 64)
		return req_bad(r, "agent_version", "agent_version is longer than 64 bytes");
	return 0;
}

/* Fills the machine's ip and subnet from the hello when it has none. */
static int agent_fill_address(struct store *s, int64_t mid, json_t *ips)
{
	char ip[MATCH_IP4_SIZE], subnet[MATCH_CIDR_SIZE], cur_ip[MATCH_IP4_SIZE] = "";
	bool has_subnet = false;
	if (!agent_first_ip4(ips, ip, subnet))
		return 0;
	struct store_q *q =
	    store_query(s, "SELECT ip, subnet FROM machines WHERE id = ?", "i", mid);
	if (!q)
		return -EIO;
	if (store_next(q) == 1) {
		snprintf(cur_ip, sizeof(cur_ip), "%s", store_col_text(q, 0));
		has_subnet = store_col_text(q, 1)[0] != '\0';
	}
	store_done(q);
	int rc = 0;
	if (!cur_ip[0])
		rc = store_exec(s, "UPDATE machines SET ip = ? WHERE id = ?", "ti", ip, mid);
	/* The subnet only when it holds the machine's recorded address. */
	if (rc >= 0 && !has_subnet && (!cur_ip[0] || strcmp(cur_ip, ip) == 0))
		rc =
		    store_exec(s, "UPDATE machines SET subnet = ? WHERE id = ?", "ti", subnet, mid);
	return rc < 0 ? rc : 0;
}

/* POST /agent/hello: heartbeat and inventory. */
static int agent_hello(struct req *r)
{
	struct srv *srv = r->srv;
	struct store *s = srv->store;
	int64_t mid = r->user.machine_id;
	char now_s[32];
	if (!json_is_object(r->body))
		return req_bad(r, NULL, "send the inventory as a JSON object");
	if (agent_hello_check(r) < 0)
		return -1;
	char *text = json_dumps(r->body, JSON_COMPACT);
	if (!text)
		return req_internal(r);
	if (strlen(text) > AGENT_INVENTORY_MAX) {
		free(text);
		return req_error(r, 413, "payload_too_large", NULL,
		                 "the inventory is larger than %d bytes", AGENT_INVENTORY_MAX);
	}
	const char *ver = json_string_value(json_object_get(r->body, "agent_version"));
	int64_t now = store_now();
	if (store_begin(s) < 0) {
		free(text);
		return req_internal(r);
	}
	int rc = store_exec(s,
	                    "INSERT INTO machine_inventory (machine_id, data, at) VALUES (?, ?, ?)"
	                    " ON CONFLICT (machine_id) DO UPDATE SET data = excluded.data,"
	                    " at = excluded.at",
	                    "iti", mid, text, now);
	free(text);
	if (rc >= 0 && ver)
		rc = store_exec(s, "UPDATE agent_credentials SET agent_version = ? WHERE id = ?",
		                "ti", ver, r->user.cred_id);
	if (rc >= 0)
		rc = agentq_touch(srv, mid, r->user.cred_id, r->peer, true);
	if (rc >= 0)
		rc = agent_fill_address(s, mid, json_object_get(r->body, "ips"));
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	json_t *inst = json_object_get(r->body, "install");
	if (inst && boot_install_reported(s, mid, inst))
		audit_system(s, "update", "machine", mid,
		             "installed to its local disk; temporary install boot mode removed");
	timefmt_format((time_t)now, now_s, sizeof(now_s));
	return req_reply(
	    r, 200,
	    json_pack("{s:I, s:I, s:s}", "heartbeat_s",
	              (json_int_t)(srv->conf.agents_heartbeat_ms / 1000), "poll_wait_s",
	              (json_int_t)(srv->conf.agents_poll_wait_ms / 1000), "server_time", now_s));
}

/* GET /agent/poll?wait=S: the long poll. */
static int agent_poll(struct req *r)
{
	const char *w = req_query(r, "wait"), *why;
	uint64_t wait_s = AGENT_POLL_DEFAULT_S;
	json_t *cmds;
	if (w && parse_uint(w, 1, AGENT_POLL_MAX_S, &wait_s, &why) < 0)
		return req_bad(r, "wait", "wait: %s (1 to %d seconds)", why, AGENT_POLL_MAX_S);
	uint64_t wait_ms = wait_s * 1000;
	int64_t live = 0;
	/* A poll woken after waiting checks again that its credential still holds. */
	if (r->resumes > 0 &&
	    (store_int(r->srv->store, &live,
	               "SELECT COUNT(*) FROM agent_credentials WHERE id = ? AND revoked_at IS NULL",
	               "i", r->user.cred_id) < 0 ||
	     live == 0))
		return req_error(
		    r, 401, "unauthorized", NULL,
		    "the agent credential is not valid (unknown or revoked); enroll again");
	if (wait_ms > r->srv->conf.agents_poll_wait_ms)
		wait_ms = r->srv->conf.agents_poll_wait_ms;
	if (agentq_touch(r->srv, r->user.machine_id, r->user.cred_id, r->peer, false) < 0)
		return req_internal(r);
	const char *all_s = req_query(r, "all");
	if (all_s && strcmp(all_s, "1") != 0 && strcmp(all_s, "0") != 0)
		return req_bad(r, "all", "all: expected 1 or 0");
	bool all = all_s && strcmp(all_s, "1") == 0;
	int rc = agentq_poll(r, r->user.machine_id, (int64_t)wait_ms, all, &cmds);
	if (rc == 1)
		return 0;
	if (rc < 0)
		return req_internal(r);
	return req_reply(r, 200, json_pack("{s:o}", "commands", cmds));
}

static bool agent_final(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0 || strcmp(state, "expired") == 0;
}

/* POST /agent/commands/:id: progress and result of a command. */
static int agent_result(struct req *r)
{
	static const char *const states[] = {"running", "done", "failed", "cancelled", NULL};
	static const char *const phases[] = {"preparing", "ready",     "receiving",
	                                     "verifying", "switching", NULL};
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	const char *state, *phase = NULL;
	json_t *result = NULL;
	char cur[16] = "", kind[16] = "", *rtext = NULL;
	if (!json_is_object(r->body))
		return req_bad(r, NULL, "send a JSON object");
	if (jv_enum(r, "state", JV_REQ, states, &state) < 0 ||
	    jv_enum(r, "phase", 0, phases, &phase) < 0 || jv_obj(r, "result", 0, &result) < 0)
		return -1;
	if (result) {
		rtext = json_dumps(result, JSON_COMPACT);
		if (!rtext)
			return req_internal(r);
		if (strlen(rtext) > AGENT_RESULT_MAX) {
			free(rtext);
			return req_error(r, 413, "payload_too_large", "result",
			                 "the result is larger than %d bytes", AGENT_RESULT_MAX);
		}
	}
	if (store_begin(s) < 0) {
		free(rtext);
		return req_internal(r);
	}
	struct store_q *q =
	    store_query(s, "SELECT state, kind FROM agent_commands WHERE id = ? AND machine_id = ?",
	                "ii", id, r->user.machine_id);
	if (q && store_next(q) == 1) {
		snprintf(cur, sizeof(cur), "%s", store_col_text(q, 0));
		snprintf(kind, sizeof(kind), "%s", store_col_text(q, 1));
	}
	store_done(q);
	int ret;
	if (!q) {
		ret = req_internal(r);
		goto fail;
	}
	/* Another machine's command is no command at all to this agent. */
	if (!cur[0]) {
		ret = req_not_found(r, "command", id);
		goto fail;
	}
	/* A cancel command has nothing to run: any report of it ends it. */
	if (strcmp(kind, "cancel") == 0 && strcmp(state, "running") == 0)
		state = "done";
	if (agent_final(cur)) {
		if (strcmp(cur, state) != 0) {
			ret = req_error(r, 409, "conflict", "state",
			                "the command already ended '%s'; it cannot become '%s'",
			                cur, state);
			goto fail;
		}
		store_rollback(s);
		free(rtext);
		return req_reply(r, 200, json_pack("{s:s}", "state", cur));
	}
	int rc = store_exec(s, "UPDATE agent_commands SET state = ?, updated_at = ? WHERE id = ?",
	                    "tii", state, store_now(), id);
	if (rc >= 0 && phase)
		rc = store_exec(s, "UPDATE agent_commands SET phase = ? WHERE id = ?", "ti", phase,
		                id);
	if (rc >= 0 && rtext)
		rc = store_exec(s, "UPDATE agent_commands SET result = ? WHERE id = ?", "ti", rtext,
		                id);
	if (rc < 0) {
		ret = req_internal(r);
		goto fail;
	}
	free(rtext);
	if (store_commit(s) < 0)
		return req_internal(r);
	if (agentq_touch(r->srv, r->user.machine_id, r->user.cred_id, r->peer, false) < 0)
		log_warn("agent: cannot record that machine %lld was seen",
		         (long long)r->user.machine_id);
	return req_reply(r, 200, json_pack("{s:s}", "state", state));
fail:
	store_rollback(s);
	free(rtext);
	return ret;
}

/* Has the machine an unfinished receive command for version vid? 1, 0 or < 0. */
static int agent_receiving(struct store *s, int64_t mid, int64_t vid)
{
	int found = 0;
	struct store_q *q = store_query(s,
	                                "SELECT args FROM agent_commands WHERE machine_id = ?"
	                                " AND kind = 'receive'"
	                                " AND state IN ('queued', 'sent', 'running')",
	                                "i", mid);
	if (!q)
		return -EIO;
	while (!found && store_next(q) == 1) {
		json_t *a = json_loads(store_col_text(q, 0), 0, NULL);
		json_t *v = json_object_get(a, "version_id");
		found = json_is_integer(v) && json_integer_value(v) == vid;
		json_decref(a);
	}
	store_done(q);
	return found;
}

/* GET /agent/manifest/:version_id: the manifest of a version being received. */
static int agent_manifest(struct req *r)
{
	int64_t vid = r->id[0];
	char dir[512], path[600];
	int rc = agent_receiving(r->srv->store, r->user.machine_id, vid);
	if (rc < 0)
		return req_internal(r);
	if (rc == 0 || !r->srv->lib)
		return req_not_found(r, "manifest for version", vid);
	if (library_version_dir(r->srv->lib, vid, dir, sizeof(dir)) < 0)
		return req_internal(r);
	snprintf(path, sizeof(path), "%s/manifest", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return req_not_found(r, "manifest for version", vid);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return req_internal(r);
	}
	return req_reply_file(r, fd, (uint64_t)st.st_size, "application/octet-stream");
}

const struct api_route api_agent_routes[] = {
    {"POST", "/agent/enroll", ROLE_NONE, agent_enroll, NULL},
    {"POST", "/agent/hello", ROLE_AGENT, agent_hello, NULL},
    {"GET", "/agent/poll", ROLE_AGENT, agent_poll, NULL},
    {"POST", "/agent/commands/:id", ROLE_AGENT, agent_result, NULL},
    {"GET", "/agent/manifest/:id", ROLE_AGENT, agent_manifest, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
