/*
 * SQLite driver of the store (store.h). One connection, serialised by a
 * recursive mutex; statements are prepared per call (a few microseconds),
 * which keeps the module free of a statement cache's lifetime rules.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "migrate.h"
#include "timefmt.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t mu;
	int in_tx;
};

struct store_q {
	struct store *s;
	sqlite3_stmt *st;
};

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

void store_lock(struct store *s)
{
	pthread_mutex_lock(&s->mu);
}

void store_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->mu);
}

/* Maps an SQLite result to the store's negative codes. */
static int store_code(struct store *s, int rc, const char *sql)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		switch (rc) {
		case SQLITE_CONSTRAINT_UNIQUE:
		case SQLITE_CONSTRAINT_PRIMARYKEY:
			return -EEXIST;
		case SQLITE_CONSTRAINT_FOREIGNKEY:
		case SQLITE_CONSTRAINT_TRIGGER:
			return -EBUSY;
		default:
			return -EINVAL;
		}
	case SQLITE_FULL:
		log_error("store: disk full (%s)", sql);
		return -ENOSPC;
	default:
		log_error("store: %s (%s)", sqlite3_errmsg(s->db), sql);
		return -EIO;
	}
}

static int store_bindv(struct store *s, sqlite3_stmt *st, const char *sql, const char *types,
                       va_list ap)
{
	int n = types ? (int)strlen(types) : 0;
	if (n != sqlite3_bind_parameter_count(st)) {
		log_error("store: %d arguments for %d parameters (%s)", n,
		          sqlite3_bind_parameter_count(st), sql);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		int rc;
		switch (types[i]) {
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int));
			break;
		case 't': {
			const char *t = va_arg(ap, const char *);
			rc = t ? sqlite3_bind_text(st, i + 1, t, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(st, i + 1);
			break;
		}
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t len = va_arg(ap, size_t);
			rc = sqlite3_bind_blob64(st, i + 1, p, len, SQLITE_TRANSIENT);
			break;
		}
		case 'n':
			rc = sqlite3_bind_null(st, i + 1);
			break;
		default:
			log_error("store: bad argument type '%c' (%s)", types[i], sql);
			return -EINVAL;
		}
		if (rc != SQLITE_OK)
			return store_code(s, rc, sql);
	}
	return 0;
}

static sqlite3_stmt *store_preparev(struct store *s, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("store: cannot prepare: %s (%s)", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	if (store_bindv(s, st, sql, types, ap) < 0) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Runs st to completion; the first column of a returned row goes to *id. */
static int store_run(struct store *s, sqlite3_stmt *st, const char *sql, int64_t *id)
{
	int rc, ret = 0;
	bool got = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (id && !got)
			*id = sqlite3_column_int64(st, 0);
		got = true;
	}
	if (rc != SQLITE_DONE)
		ret = store_code(s, sqlite3_extended_errcode(s->db), sql);
	else if (id && !got)
		ret = -ENOENT;
	else
		ret = sqlite3_changes(s->db);
	return ret;
}

int store_exec(struct store *s, const char *sql, const char *types, ...)
{
	va_list ap;
	int ret = -EIO;
	store_lock(s);
	va_start(ap, types);
	sqlite3_stmt *st = store_preparev(s, sql, types, ap);
	va_end(ap);
	if (st) {
		ret = store_run(s, st, sql, NULL);
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return ret;
}

int store_insert(struct store *s, int64_t *id, const char *sql, const char *types, ...)
{
	va_list ap;
	int ret = -EIO;
	store_lock(s);
	va_start(ap, types);
	sqlite3_stmt *st = store_preparev(s, sql, types, ap);
	va_end(ap);
	if (st) {
		ret = store_run(s, st, sql, id);
		if (ret > 0)
			ret = 0;
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return ret;
}

int store_int(struct store *s, int64_t *out, const char *sql, const char *types, ...)
{
	va_list ap;
	int ret = -EIO;
	store_lock(s);
	va_start(ap, types);
	sqlite3_stmt *st = store_preparev(s, sql, types, ap);
	va_end(ap);
	if (st) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			ret = 0;
		} else if (rc == SQLITE_DONE) {
			ret = -ENOENT;
		} else {
			ret = store_code(s, sqlite3_extended_errcode(s->db), sql);
		}
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return ret;
}

static struct store_q *store_queryv(struct store *s, const char *sql, const char *types, va_list ap)
{
	store_lock(s);
	sqlite3_stmt *st = store_preparev(s, sql, types, ap);
	struct store_q *q = st ? calloc(1, sizeof(*q)) : NULL;
	if (!q) {
		sqlite3_finalize(st);
		store_unlock(s);
		return NULL;
	}
	q->s = s;
	q->st = st;
	return q;
}

struct store_q *store_query(struct store *s, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	struct store_q *q = store_queryv(s, sql, types, ap);
	va_end(ap);
	return q;
}

int store_next(struct store_q *q)
{
	int rc = sqlite3_step(q->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_code(q->s, sqlite3_extended_errcode(q->s->db), sqlite3_sql(q->st));
}

int64_t store_col_int(struct store_q *q, int col)
{
	return sqlite3_column_int64(q->st, col);
}

const char *store_col_text(struct store_q *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q->st, col);
	return t ? (const char *)t : "";
}

bool store_col_null(struct store_q *q, int col)
{
	return sqlite3_column_type(q->st, col) == SQLITE_NULL;
}

void store_done(struct store_q *q)
{
	if (!q)
		return;
	sqlite3_finalize(q->st);
	store_unlock(q->s);
	free(q);
}

/* Unix time t as an ISO 8601 UTC string, or null when out of range. */
static json_t *store_time_json(int64_t t)
{
	char buf[TIMEFMT_LEN + 1];
	if (timefmt_format((time_t)t, buf, sizeof(buf)) < 0)
		return json_null();
	return json_string(buf);
}

/*
 * Column names carry a type suffix when the SQL type is not the JSON type:
 * "name:b" an integer shown as a boolean, "name:t" a unix time shown as an
 * ISO 8601 UTC string, "name:j" text holding JSON. NULL is null.
 */
json_t *store_row_json(struct store_q *q)
{
	json_t *o = json_object();
	int n = sqlite3_column_count(q->st);
	for (int i = 0; o && i < n; i++) {
		const char *name = sqlite3_column_name(q->st, i);
		const char *colon = strchr(name, ':');
		char key[64];
		size_t klen = colon ? (size_t)(colon - name) : strlen(name);
		if (klen >= sizeof(key))
			klen = sizeof(key) - 1;
		memcpy(key, name, klen);
		key[klen] = '\0';
		char kind = colon ? colon[1] : 0;
		json_t *v;
		int type = sqlite3_column_type(q->st, i);
		if (type == SQLITE_NULL) {
			v = json_null();
		} else if (kind == 'b') {
			v = json_boolean(sqlite3_column_int64(q->st, i) != 0);
		} else if (kind == 't') {
			v = store_time_json(sqlite3_column_int64(q->st, i));
		} else if (kind == 'j') {
			v = json_loads(store_col_text(q, i), JSON_DECODE_ANY, NULL);
			if (!v)
				v = json_null();
		} else if (type == SQLITE_INTEGER) {
			v = json_integer(sqlite3_column_int64(q->st, i));
		} else if (type == SQLITE_FLOAT) {
			v = json_real(sqlite3_column_double(q->st, i));
		} else {
			v = json_string(store_col_text(q, i));
		}
		json_object_set_new(o, key, v ? v : json_null());
	}
	return o;
}

json_t *store_rows_json(struct store *s, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	struct store_q *q = store_queryv(s, sql, types, ap);
	va_end(ap);
	if (!q)
		return NULL;
	json_t *a = json_array();
	int rc;
	while ((rc = store_next(q)) == 1)
		json_array_append_new(a, store_row_json(q));
	store_done(q);
	if (rc < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *store_row1_json(struct store *s, bool *found, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	struct store_q *q = store_queryv(s, sql, types, ap);
	va_end(ap);
	*found = false;
	if (!q)
		return NULL;
	json_t *o = NULL;
	if (store_next(q) == 1) {
		o = store_row_json(q);
		*found = true;
	}
	store_done(q);
	return o;
}

int store_begin(struct store *s)
{
	store_lock(s);
	if (s->in_tx) {
		log_error("store: nested transaction");
		store_unlock(s);
		return -EINVAL;
	}
	char *msg = NULL;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
		log_error("store: begin: %s", msg ? msg : "?");
		sqlite3_free(msg);
		store_unlock(s);
		return -EIO;
	}
	s->in_tx = 1;
	return 0;
}

int store_commit(struct store *s)
{
	char *msg = NULL;
	int ret = 0;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		log_error("store: commit: %s", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		ret = -EIO;
	}
	s->in_tx = 0;
	store_unlock(s);
	return ret;
}

void store_rollback(struct store *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_tx = 0;
	store_unlock(s);
}

static int store_pragma(struct store *s, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", sql, msg ? msg : "failed");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int store_open_sqlite(const char *path, struct store **out, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));
	pthread_mutexattr_t ma;
	int ret = -EIO;
	if (!s) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	int rc = sqlite3_open_v2(
	    path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "cannot open database %s: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 1);
	if (store_pragma(s, "PRAGMA foreign_keys = ON", err, errsz) < 0 ||
	    store_pragma(s, "PRAGMA journal_mode = WAL", err, errsz) < 0 ||
	    store_pragma(s, "PRAGMA synchronous = FULL", err, errsz) < 0)
		goto out;
	ret = migrate_apply(s, err, errsz);
out:
	if (ret < 0) {
		store_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

int store_exec_script(struct store *s, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : "failed");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->db)
		sqlite3_close_v2(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
