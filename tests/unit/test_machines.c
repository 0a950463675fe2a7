/*
 * Unit tests for src/server/machines.c on an in-memory store: writing a
 * validated record and reading it back, the JSON of a page of machines
 * (order, lists, missing ids, more ids than one batch), MAC owners, the
 * check of member ids, and record comparison. Criteria resolution through
 * targets.c is checked on the same data.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "machines.h"
#include "match.h"
#include "store.h"
#include "targets.h"

static struct store *open_mem(void)
{
	char err[256] = "";
	struct store *s = NULL;
	assert_int_equal(store_open_sqlite(":memory:", &s, err, sizeof(err)), 0);
	return s;
}

/* A record from text fields, every value valid. */
static void rec(struct match_machine *m, const char *name, const char *macs, const char *ip,
                const char *subnet, const char *room, const char *tags)
{
	char err[MATCH_ERR_SIZE];
	match_machine_clear(m);
	assert_int_equal(match_machine_set_name(m, name, strlen(name), err, sizeof(err)), 0);
	assert_int_equal(match_machine_add_macs(m, macs, strlen(macs), err, sizeof(err)), 0);
	assert_int_equal(match_machine_set_ip(m, ip, strlen(ip), err, sizeof(err)), 0);
	assert_int_equal(match_machine_set_subnet(m, subnet, strlen(subnet), err, sizeof(err)), 0);
	assert_int_equal(match_machine_set_room(m, room, strlen(room), err, sizeof(err)), 0);
	assert_int_equal(match_machine_add_tags(m, tags, strlen(tags), err, sizeof(err)), 0);
	assert_int_equal(match_machine_check(m, err, sizeof(err)), 0);
}

static void test_insert_load(void **state)
{
	(void)state;
	struct store *s = open_mem();
	struct match_machine m, back, other;
	int64_t id = 0, id2 = 0, got = 0;
	rec(&m, "PC-1.Lab", "52:54:00:00:00:02 52-54-00-00-00-01", "10.1.2.3", "10.1.2.0/24", "B 1",
	    "win lab");
	assert_int_equal(machines_insert(s, &m, "manual", &id), 0);
	assert_true(id > 0);
	assert_int_equal(machines_load(s, id, &back), 0);
	assert_string_equal(back.name, "pc-1.lab");
	assert_string_equal(back.ip, "10.1.2.3");
	assert_string_equal(back.subnet, "10.1.2.0/24");
	assert_string_equal(back.room, "B 1");
	assert_int_equal(back.nmacs, 2);
	assert_int_equal(back.ntags, 2);
	/* Lists come back sorted, but the same sets: the records are the same. */
	assert_string_equal(back.macs[0], "52:54:00:00:00:01");
	assert_true(machines_same(&m, &back));
	assert_int_equal(machines_by_name(s, "pc-1.lab", &got), 0);
	assert_int_equal(got, id);
	assert_int_equal(machines_by_name(s, "nope", &got), -ENOENT);
	assert_int_equal(machines_load(s, id + 100, &back), -ENOENT);

	/* The same name or a taken MAC is -EEXIST. */
	rec(&other, "pc-1.lab", "", "", "", "", "");
	assert_int_equal(machines_insert(s, &other, "import", &id2), -EEXIST);
	rec(&other, "pc-2", "52:54:00:00:00:01", "", "", "", "");
	char mac[MATCH_MAC_SIZE], owner_name[MATCH_NAME_SIZE];
	int64_t owner = 0;
	assert_int_equal(machines_mac_owner(s, &other, 0, mac, &owner, owner_name), 1);
	assert_string_equal(mac, "52:54:00:00:00:01");
	assert_int_equal(owner, id);
	assert_string_equal(owner_name, "pc-1.lab");
	/* A machine's own MACs are not a clash. */
	assert_int_equal(machines_mac_owner(s, &m, id, mac, &owner, owner_name), 0);
	rec(&other, "pc-2", "52:54:00:00:00:03", "", "", "", "");
	assert_int_equal(machines_insert(s, &other, "import", &id2), 0);

	/* Update: lists only when asked. */
	rec(&back, "pc-1.lab", "52:54:00:00:00:09", "", "", "C", "exam");
	assert_int_equal(machines_update(s, id, &back, false, false), 0);
	assert_int_equal(machines_load(s, id, &m), 0);
	assert_int_equal(m.nmacs, 2);
	assert_string_equal(m.room, "C");
	assert_string_equal(m.ip, "");
	assert_int_equal(machines_update(s, id, &back, true, true), 0);
	assert_int_equal(machines_load(s, id, &m), 0);
	assert_true(machines_same(&m, &back));
	assert_false(machines_same(&m, &other));
	assert_int_equal(machines_update(s, 9999, &back, true, true), -ENOENT);
	/* Renaming onto another machine's name is -EEXIST. */
	rec(&back, "pc-2", "", "", "", "", "");
	assert_int_equal(machines_update(s, id, &back, false, false), -EEXIST);
	store_close(s);
}

static void test_page_json(void **state)
{
	(void)state;
	struct store *s = open_mem();
	struct match_machine m;
	enum { N = 1200 }; /* more than two batches */
	static int64_t ids[N + 1];
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "m%04d", i);
		rec(&m, name, i % 2 ? "" : "52:54:00:00:10:01", "", "", "", i % 3 ? "a" : "b c");
		/* Distinct MACs: the last bytes from i. */
		if (m.nmacs) {
			snprintf(m.macs[0], sizeof(m.macs[0]), "52:54:00:00:%02x:%02x", i >> 8,
			         i & 255);
		}
		assert_int_equal(machines_insert(s, &m, "manual", &ids[i]), 0);
	}
	/* Reverse order and an unknown id in the middle. */
	int64_t want[N + 1];
	for (int i = 0; i < N; i++)
		want[i] = ids[N - 1 - i];
	want[N] = want[N / 2];
	want[N / 2] = 999999;
	json_t *a = machines_page_json(s, want, N + 1);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), N);
	json_t *first = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(first, "name")), "m1199");
	assert_int_equal(json_array_size(json_object_get(first, "macs")), 0);
	assert_int_equal(json_array_size(json_object_get(first, "tags")), 1);
	json_t *last = json_array_get(a, N - 1);
	assert_int_equal(json_integer_value(json_object_get(last, "id")), want[N]);
	json_t *zero = NULL;
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o)
	{
		if (strcmp(json_string_value(json_object_get(o, "name")), "m0000") == 0)
			zero = o;
	}
	assert_non_null(zero);
	assert_string_equal(json_string_value(json_array_get(json_object_get(zero, "macs"), 0)),
	                    "52:54:00:00:00:00");
	assert_string_equal(json_string_value(json_array_get(json_object_get(zero, "tags"), 1)),
	                    "c");
	assert_true(json_is_null(json_object_get(zero, "ip")));
	assert_string_equal(json_string_value(json_object_get(zero, "source")), "manual");
	json_decref(a);
	a = machines_page_json(s, NULL, 0);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);

	bool found;
	json_t *one = machines_json(s, ids[0], &found);
	assert_true(found);
	assert_int_equal(json_array_size(json_object_get(one, "groups")), 0);
	json_decref(one);
	one = machines_json(s, 999999, &found);
	assert_false(found);
	assert_null(one);

	int64_t missing = 0;
	assert_int_equal(machines_missing(s, ids, N, &missing), 0);
	want[0] = ids[3];
	want[1] = ids[3];
	want[2] = 777777;
	assert_int_equal(machines_missing(s, want, 2, &missing), 0);
	assert_int_equal(machines_missing(s, want, 3, &missing), 1);
	assert_int_equal(missing, 777777);
	store_close(s);
}

static void test_criterion(void **state)
{
	(void)state;
	struct store *s = open_mem();
	struct match_machine m;
	int64_t a, b, c, cid, *ids = NULL;
	size_t n = 0;
	rec(&m, "pc-1.lab.example.edu", "", "10.1.1.1", "", "101", "win");
	assert_int_equal(machines_insert(s, &m, "manual", &a), 0);
	rec(&m, "pc-2.xlab.example.edu", "", "10.1.2.1", "", "101", "win");
	assert_int_equal(machines_insert(s, &m, "manual", &b), 0);
	rec(&m, "srv.lab.example.edu", "", "10.2.0.1", "", "101", "");
	assert_int_equal(machines_insert(s, &m, "manual", &c), 0);
	assert_int_equal(store_insert(s, &cid,
	                              "INSERT INTO criteria (name, domain, subnet, tag, created_at,"
	                              " updated_at) VALUES ('c', 'lab.example.edu', '10.1.0.0/16',"
	                              " 'win', 0, 0) RETURNING id",
	                              NULL),
	                 0);
	assert_int_equal(targets_criterion(s, cid, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], a);
	free(ids);
	assert_true(store_exec(s, "UPDATE criteria SET tag = NULL, domain = NULL", NULL) == 1);
	assert_int_equal(targets_criterion(s, cid, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], b);
	free(ids);
	assert_int_equal(targets_criterion(s, cid + 1, &ids, &n), -ENOENT);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_insert_load),
	    cmocka_unit_test(test_page_json),
	    cmocka_unit_test(test_criterion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
