/* Response building and query access for API handlers (req.h). */
#include "req.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"

#define REQ_PAGE_DEFAULT 100
#define REQ_PAGE_MAX 1000

static const char *const role_names[] = {"none", "viewer", "operator", "admin"};

const char *role_str(int role)
{
	return role >= 0 && role <= ROLE_ADMIN ? role_names[role] : "none";
}

int role_parse(const char *s)
{
	for (int i = ROLE_VIEWER; i <= ROLE_ADMIN; i++)
		if (s && strcmp(s, role_names[i]) == 0)
			return i;
	return 0;
}

int req_reply(struct req *r, int status, json_t *v)
{
	if (r->resp_file) {
		close(r->resp_fd);
		r->resp_file = false;
	}
	json_decref(r->resp);
	r->status = status;
	r->resp = v;
	return 0;
}

int req_no_content(struct req *r)
{
	return req_reply(r, 204, NULL);
}

int req_reply_file(struct req *r, int fd, uint64_t size, const char *type)
{
	req_clear_file(r);
	req_reply(r, 200, NULL);
	r->resp_file = true;
	r->resp_fd = fd;
	r->resp_size = size;
	r->resp_type = type;
	return 0;
}

void req_clear_file(struct req *r)
{
	if (r->resp_file)
		close(r->resp_fd);
	r->resp_file = false;
}

/*
 * A JSON string of s. A message may quote request bytes that are not UTF-8
 * (jansson's own parse errors do), or be cut inside a character; JSON
 * strings must be UTF-8, so such a text keeps its ASCII and shows '?' for
 * the rest.
 */
static json_t *req_text(const char *s)
{
	json_t *v = json_string(s);
	char buf[512];
	if (v)
		return v;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_string(buf);
}

static int req_verror(struct req *r, int status, const char *code, const char *field,
                      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static int req_verror(struct req *r, int status, const char *code, const char *field,
                      const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_t *e = json_pack("{s:s, s:o, s:o}", "code", code, "message", req_text(msg), "field",
	                      field ? req_text(field) : json_null());
	req_reply(r, status, json_pack("{s:o}", "error", e));
	return -1;
}

int req_error(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, status, code, field, fmt, ap);
	va_end(ap);
	return -1;
}

int req_bad(struct req *r, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, 400, "bad_request", field, fmt, ap);
	va_end(ap);
	return -1;
}

int req_conflict(struct req *r, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, 409, "conflict", field, fmt, ap);
	va_end(ap);
	return -1;
}

int req_not_found(struct req *r, const char *what, int64_t id)
{
	return req_error(r, 404, "not_found", NULL, "no %s with id %lld", what, (long long)id);
}

int req_internal(struct req *r)
{
	return req_error(r, 500, "internal", NULL, "internal error; the server log says more");
}

int req_store_error(struct req *r, int code, const char *what)
{
	switch (code) {
	case -EEXIST:
		return req_conflict(r, "name", "%s %s with that name already exists",
		                    strchr("aeiou", what[0]) ? "an" : "a", what);
	case -EBUSY:
		return req_conflict(r, NULL,
		                    "the %s is still in use, or refers to a missing object", what);
	case -EINVAL:
		return req_bad(r, NULL, "the %s breaks a rule of the store", what);
	case -ENOSPC:
		return req_error(r, 507, "insufficient_storage", NULL, "the server's disk is full");
	default:
		return req_internal(r);
	}
}

const char *req_query(const struct req *r, const char *key)
{
	for (int i = 0; i < r->nq; i++)
		if (strcmp(r->qk[i], key) == 0)
			return r->qv[i];
	return NULL;
}

int req_page(struct req *r, int64_t *limit, int64_t *offset)
{
	const char *l = req_query(r, "limit"), *o = req_query(r, "offset"), *why = NULL;
	uint64_t v;
	*limit = REQ_PAGE_DEFAULT;
	*offset = 0;
	if (l) {
		if (parse_uint(l, 1, REQ_PAGE_MAX, &v, &why) < 0)
			return req_bad(r, "limit", "limit: %s (1 to %d)", why, REQ_PAGE_MAX);
		*limit = (int64_t)v;
	}
	if (o) {
		if (parse_uint(o, 0, INT64_MAX / 2, &v, &why) < 0)
			return req_bad(r, "offset", "offset: %s", why);
		*offset = (int64_t)v;
	}
	return 0;
}

int req_reply_page(struct req *r, json_t *items, int64_t total, int64_t limit, int64_t offset)
{
	if (!items)
		return req_internal(r);
	return req_reply(r, 200,
	                 json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
	                           (json_int_t)total, "limit", (json_int_t)limit, "offset",
	                           (json_int_t)offset));
}
