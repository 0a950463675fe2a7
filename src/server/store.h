/*
 * The store: mlserver's single source of truth (docs/store.md). One module
 * owns the database connection; every other module goes through these calls
 * with SQL that stays portable between SQLite and PostgreSQL: `?`
 * placeholders (a PostgreSQL driver rewrites them to $n), INTEGER unix times,
 * INTEGER 0/1 booleans, `RETURNING id`, `ON CONFLICT`, no engine-specific
 * functions.
 *
 * Threads: every call may come from any thread. A recursive mutex
 * serialises them; store_lock() holds it across several calls (an API
 * request, a transaction), and an open query holds it until store_done().
 */
#ifndef ML_STORE_H
#define ML_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;
struct store_q;

/*
 * Opens (creating when missing) the SQLite database at path (":memory:" for
 * tests), turns on WAL and foreign keys, and applies pending migrations, each
 * in one transaction. Returns 0, or a negative errno-style code with a reason
 * in err.
 */
int store_open_sqlite(const char *path, struct store **out, char *err, size_t errsz);
void store_close(struct store *s);

/* Schema version after migrations; the number of migrations known. */
int store_schema_version(struct store *s);
int store_schema_latest(void);

void store_lock(struct store *s);
void store_unlock(struct store *s);

/*
 * Transactions: store_begin() takes the lock and starts a write
 * transaction; store_commit() or store_rollback() ends it and releases the
 * lock. Nested begin is a bug. Returns 0 or a negative code.
 */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/*
 * Argument types for the variadic calls, one letter per `?`:
 *   'i' int64_t   'd' int (also bool)   't' const char * (NULL binds NULL)
 *   'n' no argument: binds NULL          'b' const void *, size_t (a blob)
 */

/*
 * Runs a statement that returns no rows. Returns the number of rows changed
 * (>= 0), or -EEXIST (a UNIQUE or PRIMARY KEY constraint), -EBUSY (a FOREIGN
 * KEY constraint: a referenced row is missing or a row is still
 * referenced), -EINVAL (a CHECK or NOT NULL constraint), -EIO (anything
 * else; logged with the SQL).
 */
int store_exec(struct store *s, const char *sql, const char *types, ...);

/* Runs an INSERT ... RETURNING id; stores the id. Same codes as store_exec. */
int store_insert(struct store *s, int64_t *id, const char *sql, const char *types, ...);

/* First column of the first row as an integer: 0, -ENOENT (no row), -EIO. */
int store_int(struct store *s, int64_t *out, const char *sql, const char *types, ...);

/*
 * Opens a query; NULL on error (logged). Holds the store lock until
 * store_done(), which accepts NULL.
 */
struct store_q *store_query(struct store *s, const char *sql, const char *types, ...);
/* Steps: 1 a row is ready, 0 no more rows, -EIO on error. */
int store_next(struct store_q *q);
int64_t store_col_int(struct store_q *q, int col);
/* Text of a column; "" for NULL. Valid until the next store_next(). */
const char *store_col_text(struct store_q *q, int col);
bool store_col_null(struct store_q *q, int col);
/* The current row as a JSON object (see store_row_json in docs/store.md). */
json_t *store_row_json(struct store_q *q);
void store_done(struct store_q *q);

/*
 * Runs a query and returns all its rows as a JSON array of objects built by
 * store_row_json(), or NULL on error.
 */
json_t *store_rows_json(struct store *s, const char *sql, const char *types, ...);
/* The first row as an object; NULL when there is none (*found = false) or on error. */
json_t *store_row1_json(struct store *s, bool *found, const char *sql, const char *types, ...);

/* Wall-clock unix time in seconds (one place, so tests can reason about it). */
int64_t store_now(void);

#endif
