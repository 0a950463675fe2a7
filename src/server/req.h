/*
 * One API request as the handlers see it, independent of the HTTP library:
 * method, path parameters, query, JSON body, the authenticated user, and the
 * response being built (docs/api.md, "Conventions"). http.c fills it from
 * libmicrohttpd; the fuzz harness and unit tests fill it directly.
 */
#ifndef ML_REQ_H
#define ML_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct srv;

enum role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };
const char *role_str(int role);
/* "admin", "operator" or "viewer" to its value; 0 when unknown. */
int role_parse(const char *s);

#define REQ_MAX_IDS 4
#define REQ_MAX_QUERY 16

struct req_user {
	int64_t id; /* 0 when anonymous */
	char name[65];
	int role;         /* enum role */
	int64_t token_id; /* the token this request came with */
	/*
	 * An agent (docs/agent-protocol.md) instead of a user: the machine
	 * and the credential of its "mla_" token; 0 for users. An agent has
	 * id 0 and role ROLE_NONE, so no user route accepts it.
	 */
	int64_t machine_id;
	int64_t cred_id;
};

struct req {
	struct srv *srv;
	const char *method;
	const char *path;        /* after /api/v1 */
	int64_t id[REQ_MAX_IDS]; /* the :id segments of the route, in order */
	int nid;
	const char *qk[REQ_MAX_QUERY], *qv[REQ_MAX_QUERY]; /* query arguments */
	int nq;
	json_t *body;           /* the parsed JSON body of POST/PUT/PATCH, else NULL */
	int64_t content_length; /* the declared body length; -1 when not declared (chunked) */
	struct req_user user;
	const char *peer; /* client address, for the audit log */
	/* Response: set by req_reply()/req_error(). */
	int status;
	json_t *resp;
	const char *allow; /* Allow header for 405 */
	/*
	 * A file as the response body instead of JSON (req_reply_file): the
	 * front end sends resp_size bytes of resp_fd as resp_type and closes
	 * it. api_handle()'s callers close it themselves (req_clear_file).
	 */
	bool resp_file;
	int resp_fd;
	uint64_t resp_size;
	const char *resp_type;
	/*
	 * Parking (long polls). The front end sets park and wake when it can
	 * hold the request without a thread (http.c; NULL in api_handle(), so
	 * a handler there must answer at once). A handler that parks sets
	 * suspend and no response; someone later calls wake(park) (any
	 * thread, at most once per parking), and the front end calls the
	 * handler again with resumes counting the calls after the first.
	 * on_end, when set, is called when the request ends for any reason,
	 * so whoever holds park forgets it (also when the server stops).
	 */
	void *park;
	void (*wake)(void *park);
	bool suspend;
	int resumes;
	void (*on_end)(struct req *r);
	void *on_end_ctx;
};

/*
 * Sets a JSON response (the reference to v is stolen) with the status.
 * Returns 0 so handlers can `return req_reply(r, 200, v);`.
 */
int req_reply(struct req *r, int status, json_t *v);
/* 204 No Content. */
int req_no_content(struct req *r);
/*
 * 200 with size bytes of the open file fd as the body, of content type
 * type (a static string); the request takes fd. Returns 0.
 */
int req_reply_file(struct req *r, int fd, uint64_t size, const char *type);
/* Closes a file response that was not sent (api_handle()'s callers). */
void req_clear_file(struct req *r);

/*
 * Sets an error response {"error": {"code", "message", "field"}}: code is
 * the machine-readable word (see docs/api.md), field the request field at
 * fault or NULL. Returns -1 so handlers can `return req_error(...)`.
 */
int req_error(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Shorthands for the common cases. */
int req_bad(struct req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int req_not_found(struct req *r, const char *what, int64_t id);
int req_conflict(struct req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int req_internal(struct req *r);
/* Maps a store error code to a response (409 for -EEXIST/-EBUSY, else 500). */
int req_store_error(struct req *r, int code, const char *what);

/* The value of query argument key, or NULL. */
const char *req_query(const struct req *r, const char *key);

/*
 * Pagination from ?limit=&offset= (limit 1..max, default 100; offset >= 0).
 * Returns 0, or -1 with a 400 response set.
 */
int req_page(struct req *r, int64_t *limit, int64_t *offset);
/* Replies {"items": items, "total", "limit", "offset"} with 200. */
int req_reply_page(struct req *r, json_t *items, int64_t total, int64_t limit, int64_t offset);

#endif
