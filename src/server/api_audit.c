/* The audit log, newest first, with filters (docs/api.md, "Audit log"). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"

static int audit_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	const char *user = req_query(r, "user"), *action = req_query(r, "action");
	const char *otype = req_query(r, "object_type"), *oid_s = req_query(r, "object_id");
	const char *why;
	uint64_t oid = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (oid_s && parse_uint(oid_s, 1, INT64_MAX, &oid, &why) < 0)
		return req_bad(r, "object_id", "object_id: %s", why);
	/*
	 * One statement for every combination of filters: a filter that is
	 * not given is NULL and matches everything.
	 */
	static const char where[] = " WHERE (? IS NULL OR username = ?)"
	                            " AND (? IS NULL OR action = ?)"
	                            " AND (? IS NULL OR object_type = ?)"
	                            " AND (? = 0 OR object_id = ?)";
	char sql[512];
	struct store *s = r->srv->store;
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM audit%s", where);
	store_int(s, &total, sql, "ttttttii", user, user, action, action, otype, otype,
	          (int64_t)oid, (int64_t)oid);
	snprintf(sql, sizeof(sql),
	         "SELECT id, at AS \"at:t\", user_id, username, action, object_type, object_id,"
	         " detail FROM audit%s ORDER BY id DESC LIMIT ? OFFSET ?",
	         where);
	json_t *items = store_rows_json(s, sql, "ttttttiiii", user, user, action, action, otype,
	                                otype, (int64_t)oid, (int64_t)oid, limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

const struct api_route api_audit_routes[] = {
    {"GET", "/audit", ROLE_ADMIN, audit_list, NULL},
    {NULL, NULL, 0, NULL, NULL},
};
