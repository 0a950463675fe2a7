/*
 * Numbered schema migrations of the store (docs/store.md). Internal to the
 * store module: store_open_*() applies them.
 */
#ifndef ML_MIGRATE_H
#define ML_MIGRATE_H

#include <stddef.h>

struct store;

/*
 * Applies every migration newer than the database's, each with its version
 * row in one transaction. Returns 0, or a negative code with a reason in err.
 */
int migrate_apply(struct store *s, char *err, size_t errsz);

/* Runs a script of several statements (inside the store module only). */
int store_exec_script(struct store *s, const char *sql, char *err, size_t errsz);

#endif
