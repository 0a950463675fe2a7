/* Routing, authorization and dispatch of /api/v1 (api.h). */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agentq.h"
#include "auth.h"
#include "log.h"
#include "parse.h"
#include "req.h"
#include "server.h"

/* Every module's routes. A new API module adds its table here. */
static const struct api_route *const api_tables[] = {
    api_auth_routes,     api_users_routes,  api_tokens_routes,      api_audit_routes,
    api_machines_routes, api_groups_routes, api_criteria_routes,    api_images_routes,
    api_entries_routes,  api_rights_routes, api_deployments_routes, api_runs_routes,
    api_agent_routes,    api_agents_routes, api_boot_routes,
};

#define API_NTABLES (sizeof(api_tables) / sizeof(api_tables[0]))
#define API_MAX_SEGS 8
#define API_MAX_PATH 512

/*
 * Splits path into at most API_MAX_SEGS segments (in buf). Returns the
 * count, or -1 when the path is too long, has too many segments, or has an
 * empty segment (a trailing slash is tolerated).
 */
static int api_split(const char *path, char *buf, size_t bufsz, char **seg)
{
	size_t len = strlen(path);
	int n = 0;
	if (len == 0 || len >= bufsz || path[0] != '/')
		return -1;
	memcpy(buf, path + 1, len);
	if (len > 1 && buf[len - 2] == '/')
		buf[len - 2] = '\0';
	if (buf[0] == '\0')
		return 0;
	for (char *p = buf;;) {
		if (n == API_MAX_SEGS || *p == '\0' || *p == '/')
			return -1;
		seg[n++] = p;
		char *slash = strchr(p, '/');
		if (!slash)
			return n;
		*slash = '\0';
		p = slash + 1;
	}
}

/* Does the pattern match the segments? Fills ids on a match. */
static bool api_match(const char *pattern, char **seg, int nseg, int64_t *ids, int *nid)
{
	char buf[API_MAX_PATH];
	char *pseg[API_MAX_SEGS];
	int np = api_split(pattern, buf, sizeof(buf), pseg);
	if (np != nseg)
		return false;
	*nid = 0;
	for (int i = 0; i < np; i++) {
		if (strcmp(pseg[i], ":id") == 0) {
			uint64_t v;
			if (parse_uint(seg[i], 1, INT64_MAX, &v, NULL) < 0 || *nid == REQ_MAX_IDS)
				return false;
			ids[(*nid)++] = (int64_t)v;
		} else if (strcmp(pseg[i], seg[i]) != 0) {
			return false;
		}
	}
	return true;
}

const struct api_route *api_route(struct req *r, const char *method, const char *path)
{
	char buf[API_MAX_PATH];
	char *seg[API_MAX_SEGS];
	char allow[128] = "";
	static __thread char allow_out[128];
	int nseg = api_split(path, buf, sizeof(buf), seg);
	if (nseg < 0) {
		req_error(r, 404, "not_found", NULL, "no such API path");
		return NULL;
	}
	for (size_t t = 0; t < API_NTABLES; t++) {
		for (const struct api_route *rt = api_tables[t]; rt->method; rt++) {
			int64_t ids[REQ_MAX_IDS];
			int nid = 0;
			if (!api_match(rt->pattern, seg, nseg, ids, &nid))
				continue;
			if (strcmp(rt->method, method) == 0) {
				memcpy(r->id, ids, sizeof(ids));
				r->nid = nid;
				return rt;
			}
			if (!strstr(allow, rt->method)) {
				size_t used = strlen(allow);
				snprintf(allow + used, sizeof(allow) - used, "%s%s",
				         used ? ", " : "", rt->method);
			}
		}
	}
	if (allow[0]) {
		snprintf(allow_out, sizeof(allow_out), "%s", allow);
		r->allow = allow_out;
		req_error(r, 405, "method_not_allowed", NULL, "%s is not allowed here; use %s",
		          method, allow);
		return NULL;
	}
	req_error(r, 404, "not_found", NULL, "no such API path");
	return NULL;
}

int api_authorize(struct req *r, const struct api_route *rt, const char *token)
{
	memset(&r->user, 0, sizeof(r->user));
	if (token && strncmp(token, "mla_", 4) == 0) {
		int rc = agentq_cred_check(r->srv, token, &r->user.machine_id, &r->user.cred_id);
		if (rc == -EIO)
			return req_error(r, 503, "unavailable", NULL, "the store is not available");
		if (rc < 0)
			return req_error(r, 401, "unauthorized", NULL,
			                 "the agent credential is not valid (unknown or revoked); "
			                 "enroll again");
		if (rt->role == ROLE_AGENT || rt->role == ROLE_NONE)
			return 0;
		return req_error(r, 403, "forbidden", NULL,
		                 "an agent credential may call only /agent/ paths");
	}
	if (rt->role == ROLE_AGENT) {
		if (token && *token && auth_token_check(r->srv->store, token, &r->user) == 0)
			return req_error(r, 403, "forbidden", NULL,
			                 "this path is for agents; users may not call it");
		memset(&r->user, 0, sizeof(r->user));
		return req_error(r, 401, "unauthorized", NULL,
		                 "agent credential required: send 'Authorization: Bearer mla_...'");
	}
	if (token && *token) {
		int rc = auth_token_check(r->srv->store, token, &r->user);
		if (rc == -EIO)
			return req_error(r, 503, "unavailable", NULL, "the store is not available");
		if (rc < 0)
			return req_error(r, 401, "unauthorized", NULL,
			                 "the token is not valid (unknown, expired or revoked); "
			                 "log in again");
	}
	if (rt->role == ROLE_NONE)
		return 0;
	if (!r->user.id)
		return req_error(r, 401, "unauthorized", NULL,
		                 "authentication required: send 'Authorization: Bearer TOKEN'");
	if (r->user.role < rt->role)
		return req_error(r, 403, "forbidden", NULL, "this needs the %s role; you are %s",
		                 role_str(rt->role), role_str(r->user.role));
	return 0;
}

int api_parse_body(struct req *r, const char *body, size_t len)
{
	json_error_t e;
	if (len == 0) {
		r->body = NULL;
		return 0;
	}
	r->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!r->body)
		return req_error(r, 400, "bad_json", NULL,
		                 "malformed JSON at line %d column %d: %s", e.line, e.column,
		                 e.text);
	if (!json_is_object(r->body))
		return req_bad(r, NULL, "the request body must be a JSON object");
	return 0;
}

void api_call(struct req *r, const struct api_route *rt)
{
	int rc = rt->fn(r);
	if (!r->status && !r->suspend) {
		/* A handler that returns without a response is a bug; say so. */
		log_error("api: %s %s returned %d without a response", r->method, r->path, rc);
		req_internal(r);
	}
}

void api_handle(struct req *r, const char *method, const char *path, const char *token,
                const char *body, size_t len)
{
	r->method = method;
	r->path = path;
	r->content_length = (int64_t)len;
	const struct api_route *rt = api_route(r, method, path);
	if (!rt || api_authorize(r, rt, token) < 0)
		return;
	if (rt->upload) {
		void *ctx = NULL;
		if (rt->upload->begin(r, &ctx) < 0)
			return;
		int rc = len ? rt->upload->data(ctx, r, body, len) : 0;
		rt->upload->finish(ctx, r, rc == 0);
		return;
	}
	if (api_parse_body(r, body, len) < 0)
		return;
	api_call(r, rt);
}
