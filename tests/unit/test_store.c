/*
 * Unit tests for the store (src/server/store.c, migrate.c) on a real SQLite
 * database: migrations, error codes, JSON rows, transactions, and the JSON
 * validation helpers and auth module that sit directly on it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "jv.h"
#include "req.h"
#include "server.h"
#include "store.h"

static struct store *open_mem(void)
{
	char err[256] = "";
	struct store *s = NULL;
	assert_int_equal(store_open_sqlite(":memory:", &s, err, sizeof(err)), 0);
	assert_non_null(s);
	return s;
}

static void test_migrations(void **state)
{
	(void)state;
	char path[] = "/tmp/test_store.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char err[256];
	struct store *s = NULL;
	assert_int_equal(store_open_sqlite(path, &s, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	assert_true(store_exec(s, "INSERT INTO settings (key, value) VALUES ('a', 'b')", NULL) ==
	            1);
	store_close(s);
	/* Reopening applies nothing again and keeps the data. */
	assert_int_equal(store_open_sqlite(path, &s, err, sizeof(err)), 0);
	int64_t n = 0;
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM schema_migrations", NULL), 0);
	assert_int_equal(n, store_schema_latest());
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM settings", NULL), 0);
	assert_int_equal(n, 1);
	/* A database from a newer mlserver is refused with a reason. */
	assert_true(store_exec(s, "INSERT INTO schema_migrations VALUES (999, 0)", NULL) == 1);
	store_close(s);
	assert_true(store_open_sqlite(path, &s, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "newer"));
	/* Garbage is not a database. */
	FILE *f = fopen(path, "w");
	fputs("this is not a database at all, not even close; just text\n", f);
	fclose(f);
	assert_true(store_open_sqlite(path, &s, err, sizeof(err)) < 0);
	assert_true(err[0] != '\0');
	unlink(path);
	char wal[64];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
}

static void test_codes(void **state)
{
	(void)state;
	struct store *s = open_mem();
	int64_t id = 0, id2 = 0;
	const char *ins = "INSERT INTO mgroups (name, created_at, updated_at) VALUES (?, 1, 1)"
	                  " RETURNING id";
	assert_int_equal(store_insert(s, &id, ins, "t", "lab"), 0);
	assert_true(id > 0);
	assert_int_equal(store_insert(s, &id2, ins, "t", "lab"), -EEXIST);
	assert_int_equal(store_insert(s, &id2, ins, "t", NULL), -EINVAL);
	/* A foreign key to a missing row. */
	assert_int_equal(
	    store_exec(s, "INSERT INTO group_members VALUES (?, ?)", "ii", id, (int64_t)4242),
	    -EBUSY);
	/* Wrong argument count is refused, not run. */
	assert_true(store_exec(s, "DELETE FROM mgroups WHERE id = ?", "ii", id, id) < 0);
	assert_int_equal(store_exec(s, "DELETE FROM mgroups WHERE id = ?", "i", id), 1);
	assert_int_equal(store_exec(s, "DELETE FROM mgroups WHERE id = ?", "i", id), 0);
	int64_t v;
	assert_int_equal(store_int(s, &v, "SELECT id FROM mgroups WHERE id = ?", "i", id), -ENOENT);
	assert_true(store_exec(s, "SELECT nonsense FROM nowhere", NULL) < 0);
	store_close(s);
}

static void test_json_rows(void **state)
{
	(void)state;
	struct store *s = open_mem();
	assert_int_equal(
	    store_exec(s,
	               "INSERT INTO images (name, offline, vlan, created_at, updated_at)"
	               " VALUES ('w11', 1, NULL, 1764162000, 0)",
	               NULL),
	    1);
	bool found;
	json_t *o = store_row1_json(s, &found,
	                            "SELECT id, name, offline AS \"offline:b\", vlan,"
	                            " created_at AS \"created_at:t\", '[1,2]' AS \"l:j\", cpus"
	                            " FROM images",
	                            NULL);
	assert_true(found);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "w11");
	assert_true(json_is_true(json_object_get(o, "offline")));
	assert_true(json_is_null(json_object_get(o, "vlan")));
	assert_string_equal(json_string_value(json_object_get(o, "created_at")),
	                    "2025-11-26T13:00:00Z");
	assert_int_equal(json_array_size(json_object_get(o, "l")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "cpus")), 2);
	json_decref(o);
	o = store_row1_json(s, &found, "SELECT id FROM images WHERE id = 99", NULL);
	assert_false(found);
	assert_null(o);
	json_t *a = store_rows_json(s, "SELECT name FROM images", NULL);
	assert_int_equal(json_array_size(a), 1);
	json_decref(a);
	store_close(s);
}

static void test_transactions(void **state)
{
	(void)state;
	struct store *s = open_mem();
	int64_t n = -1;
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, "INSERT INTO settings VALUES ('x', '1')", NULL), 1);
	store_rollback(s);
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM settings", NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, "INSERT INTO settings VALUES ('x', '1')", NULL), 1);
	assert_int_equal(store_exec(s, "INSERT INTO settings VALUES ('y', '2')", NULL), 1);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM settings", NULL), 0);
	assert_int_equal(n, 2);
	store_close(s);
}

/* A request with a body, for the validators. */
static void req_with(struct req *r, const char *json)
{
	memset(r, 0, sizeof(*r));
	r->body = json_loads(json, 0, NULL);
	assert_non_null(r->body);
}

static const char *err_field(struct req *r)
{
	return json_string_value(json_object_get(json_object_get(r->resp, "error"), "field"));
}

static void req_clear(struct req *r)
{
	json_decref(r->body);
	json_decref(r->resp);
}

static void test_jv(void **state)
{
	(void)state;
	static const char *const keys[] = {"name", "n", "ok", "kind", "ids", "sub", NULL};
	static const char *const kinds[] = {"a", "b", NULL};
	struct req r;
	const char *s;
	int64_t n;
	bool b;
	req_with(&r, "{\"name\": \"x\", \"n\": 5, \"ok\": true, \"kind\": \"b\", \"ids\": [1, 2]}");
	assert_int_equal(jv_object(&r, keys), 0);
	assert_int_equal(jv_str(&r, "name", JV_REQ, 1, 10, &s), 1);
	assert_string_equal(s, "x");
	assert_int_equal(jv_int(&r, "n", 0, 1, 10, &n), 1);
	assert_int_equal(n, 5);
	assert_int_equal(jv_bool(&r, "ok", 0, &b), 1);
	assert_true(b);
	assert_int_equal(jv_enum(&r, "kind", 0, kinds, &s), 1);
	int64_t *ids = NULL;
	size_t nids = 0;
	assert_int_equal(jv_ids(&r, "ids", 0, 10, &ids, &nids), 1);
	assert_int_equal(nids, 2);
	assert_int_equal(ids[1], 2);
	free(ids);
	assert_int_equal(jv_str(&r, "absent", 0, 1, 10, &s), 0);
	assert_int_equal(jv_str(&r, "absent", JV_REQ, 1, 10, &s), -1);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "absent");
	req_clear(&r);

	req_with(&r, "{\"name\": \"x\", \"bogus\": 1}");
	assert_int_equal(jv_object(&r, keys), -1);
	assert_string_equal(err_field(&r), "bogus");
	req_clear(&r);
	req_with(&r, "{\"n\": 11}");
	assert_int_equal(jv_int(&r, "n", 0, 1, 10, &n), -1);
	req_clear(&r);
	req_with(&r, "{\"n\": \"5\"}");
	assert_int_equal(jv_int(&r, "n", 0, 1, 10, &n), -1);
	req_clear(&r);
	req_with(&r, "{\"kind\": \"c\"}");
	assert_int_equal(jv_enum(&r, "kind", 0, kinds, &s), -1);
	req_clear(&r);
	req_with(&r, "{\"name\": \"a\\tb\"}");
	assert_int_equal(jv_str(&r, "name", 0, 1, 10, &s), -1);
	req_clear(&r);
	req_with(&r, "{\"name\": \"abcdefghijk\"}");
	assert_int_equal(jv_str(&r, "name", 0, 1, 10, &s), -1);
	req_clear(&r);
	req_with(&r, "{\"ids\": [1, 0]}");
	assert_int_equal(jv_ids(&r, "ids", 0, 10, &ids, &nids), -1);
	req_clear(&r);
	req_with(&r, "{\"sub\": {\"n\": 3, \"zz\": 1}}");
	json_t *sub = json_object_get(r.body, "sub");
	static const char *const subkeys[] = {"n", NULL};
	assert_int_equal(jv_keys(&r, sub, "sub", subkeys), -1);
	assert_string_equal(err_field(&r), "zz");
	req_clear(&r);
	req_with(&r, "{\"sub\": {\"n\": 30}}");
	sub = json_object_get(r.body, "sub");
	assert_int_equal(jv_int_in(&r, sub, "sub", "n", 0, 1, 10, &n), -1);
	assert_string_equal(err_field(&r), "sub.n");
	req_clear(&r);
}

static void test_auth(void **state)
{
	(void)state;
	char hash[AUTH_HASH_MAX], hash2[AUTH_HASH_MAX];
	assert_int_equal(auth_hash_password("correct horse", hash), 0);
	assert_int_equal(strncmp(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
	assert_int_equal(auth_hash_password("correct horse", hash2), 0);
	assert_string_not_equal(hash, hash2); /* random salt */
	assert_int_equal(auth_verify_password(hash, "correct horse"), 0);
	assert_int_equal(auth_verify_password(hash, "correct horsf"), -EACCES);
	assert_int_equal(auth_verify_password("$2y$10$bcrypt", "x"), -EINVAL);

	struct store *s = open_mem();
	int64_t uid, tid;
	assert_int_equal(
	    store_insert(s, &uid,
	                 "INSERT INTO users (username, role, pw_hash, created_at,"
	                 " updated_at) VALUES ('ann', 'operator', ?, 0, 0) RETURNING id",
	                 "t", hash),
	    0);
	struct req_user u;
	memset(&u, 0, sizeof(u));
	assert_int_equal(auth_login(s, "ann", "correct horse", &u), 0);
	assert_int_equal(u.id, uid);
	assert_int_equal(u.role, ROLE_OPERATOR);
	assert_int_equal(auth_login(s, "ann", "wrong", &u), -EACCES);
	assert_int_equal(auth_login(s, "nobody", "correct horse", &u), -EACCES);

	char tok[AUTH_TOKEN_LEN + 1];
	assert_int_equal(auth_token_new(s, uid, "api", "t", 0, tok, &tid), 0);
	assert_int_equal(strlen(tok), AUTH_TOKEN_LEN);
	memset(&u, 0, sizeof(u));
	assert_int_equal(auth_token_check(s, tok, &u), 0);
	assert_int_equal(u.token_id, tid);
	/* Only the hash is stored. */
	int64_t n = 1;
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM tokens WHERE hash = ?", "t", tok),
	                 0);
	assert_int_equal(n, 0);
	tok[10] ^= 1;
	assert_int_equal(auth_token_check(s, tok, &u), -EACCES);
	assert_int_equal(auth_token_check(s, "mlt_short", &u), -EACCES);
	/* Expired tokens and disabled users are refused. */
	assert_int_equal(auth_token_new(s, uid, "session", "t", store_now() - 1, tok, &tid), 0);
	assert_int_equal(auth_token_check(s, tok, &u), -EACCES);
	assert_int_equal(auth_token_new(s, uid, "session", "t", store_now() + 100, tok, &tid), 0);
	assert_int_equal(auth_token_check(s, tok, &u), 0);
	assert_int_equal(store_exec(s, "UPDATE users SET disabled = 1", NULL), 1);
	assert_int_equal(auth_token_check(s, tok, &u), -EACCES);
	assert_int_equal(auth_login(s, "ann", "correct horse", &u), -EACCES);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations), cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_json_rows),  cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_jv),         cmocka_unit_test(test_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
