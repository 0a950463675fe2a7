/*
 * The audit log: who changed what, when. Handlers call audit_add() inside
 * the transaction of the change, so a change and its record land together
 * or not at all.
 */
#ifndef ML_AUDIT_H
#define ML_AUDIT_H

#include <stdint.h>

struct req;
struct store;

/*
 * Records action ("create", "update", "delete", "login", ...) on object_type
 * ("machine", ...) object_id (0: none) by the request's user, with a detail
 * line. Returns 0 or a negative store code.
 */
int audit_add(struct req *r, const char *action, const char *object_type, int64_t object_id,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The same for work done by the server itself (user "mlserver"). */
int audit_system(struct store *s, const char *action, const char *object_type, int64_t object_id,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
