/* The audit log (audit.h). */
#include "audit.h"

#include <stdarg.h>
#include <stdio.h>

#include "req.h"
#include "server.h"
#include "store.h"

static int audit_insert(struct store *s, int64_t uid, const char *uname, const char *action,
                        const char *otype, int64_t oid, const char *detail)
{
	static const char sql[] = "INSERT INTO audit (at, user_id, username, action, object_type,"
	                          " object_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)";
	/* A user id of 0 (the server itself) is stored as NULL. */
	if (uid)
		return store_exec(s, sql, "iitttit", store_now(), uid, uname, action, otype, oid,
		                  detail);
	return store_exec(s, sql, "intttit", store_now(), uname, action, otype, oid, detail);
}

int audit_add(struct req *r, const char *action, const char *object_type, int64_t object_id,
              const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return audit_insert(r->srv->store, r->user.id, r->user.id ? r->user.name : "anonymous",
	                    action, object_type, object_id, detail);
}

int audit_system(struct store *s, const char *action, const char *object_type, int64_t object_id,
                 const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return audit_insert(s, 0, "mlserver", action, object_type, object_id, detail);
}
