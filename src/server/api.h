/*
 * The API's routing: every module that serves part of /api/v1 exports one
 * table of routes; api.c lists the tables, matches a request to a route,
 * checks the caller's token and role, and calls the handler. Nothing here
 * knows about HTTP libraries, so the fuzz harness drives it directly.
 */
#ifndef ML_API_H
#define ML_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct req;
struct srv;
struct store;

/*
 * A streamed request body (image uploads): begin() is called once the
 * route and the caller are accepted (r->content_length is the declared
 * length, -1 when the body is chunked), data() for each piece, finish() at
 * the end with complete = true, or with complete = false when the body did
 * not arrive whole: the client went away (then no response is sent), or
 * data() refused it (then finish() runs at once, so the upload's resources
 * go at once; the rest of the body is read and dropped, and the response
 * data() set is sent at its end). Each returns 0, or -1 with an error
 * response set in r; after an error no further data() is called, but
 * finish() always is, so it frees ctx. begin() and data() may block on
 * disk I/O: they run in an HTTP worker thread.
 */
struct api_upload {
	int (*begin)(struct req *r, void **ctx);
	int (*data)(void *ctx, struct req *r, const void *buf, size_t n);
	int (*finish)(void *ctx, struct req *r, bool complete);
};

/*
 * The "role" of the agents' routes (under /agent): only an agent credential
 * ("mla_" token) may call them; an agent may call nothing else but routes
 * that need no token.
 */
#define ROLE_AGENT 100

struct api_route {
	const char *method;
	/* Segments after /api/v1; ":id" matches a positive integer (r->id[]). */
	const char *pattern;
	int role; /* least role allowed (req.h); ROLE_NONE: no token needed; ROLE_AGENT */
	int (*fn)(struct req *r);
	const struct api_upload *upload; /* NULL: JSON body, buffered */
};

/* Route tables of the modules, each ended by an entry with method NULL. */
extern const struct api_route api_auth_routes[];
extern const struct api_route api_users_routes[];
extern const struct api_route api_tokens_routes[];
extern const struct api_route api_audit_routes[];
extern const struct api_route api_machines_routes[];
extern const struct api_route api_groups_routes[];
extern const struct api_route api_criteria_routes[];
extern const struct api_route api_images_routes[];
extern const struct api_route api_entries_routes[];
extern const struct api_route api_rights_routes[];
extern const struct api_route api_deployments_routes[];
extern const struct api_route api_runs_routes[];
extern const struct api_route api_agent_routes[];
extern const struct api_route api_agents_routes[];
extern const struct api_route api_boot_routes[];

/*
 * A run as the API shows it (docs/api.md, "Runs"), for the deployments
 * module, which creates runs too. NULL when there is none (*found false) or
 * on error.
 */
json_t *api_runs_get(struct store *s, int64_t id, bool *found);

/*
 * Finds the route of method + path (path after /api/v1, without query) and
 * fills r->id[]. Returns the route, or NULL with a 404 or 405 response set.
 */
const struct api_route *api_route(struct req *r, const char *method, const char *path);

/*
 * Authenticates the request from its bearer token (NULL: none) for route
 * rt. Returns 0 with r->user set, or -1 with a 401/403 response set.
 */
int api_authorize(struct req *r, const struct api_route *rt, const char *token);

/*
 * Runs the handler of rt for a buffered request. Always leaves a response
 * in r, unless the handler parked the request (r->suspend, req.h).
 */
void api_call(struct req *r, const struct api_route *rt);

/*
 * All of it for a buffered request: route, authorize, parse body (len bytes
 * of JSON, may be 0), call. Always leaves a response in r. Used by the fuzz
 * harness and tests; http.c does the same in steps.
 */
void api_handle(struct req *r, const char *method, const char *path, const char *token,
                const char *body, size_t len);

/* Parses a JSON request body into r->body; -1 with a 400 response on error. */
int api_parse_body(struct req *r, const char *body, size_t len);

#endif
