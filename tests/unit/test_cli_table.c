/*
 * Unit tests for mlctl's output: text tables (table.c) and the rendering of
 * objects as tables and "key: value" pages (out.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mlctl.h"

static void test_table_alignment(void **state)
{
	(void)state;
	struct tbl *t = tbl_new(3);
	assert_non_null(t);
	assert_int_equal(tbl_head(t, 0, "ID", true), 0);
	assert_int_equal(tbl_head(t, 1, "NAME", false), 0);
	assert_int_equal(tbl_head(t, 2, "ROOM", false), 0);
	assert_int_equal(tbl_head(t, 3, "X", false), -EINVAL);
	const char *cells[] = {"1", "pc-1", "B101", "100", "a-much-longer-name", NULL};
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(tbl_add(t, cells[i]), 0);
	char *s = tbl_render(t);
	assert_string_equal(s, " ID  NAME                ROOM\n"
	                       "  1  pc-1                B101\n"
	                       "100  a-much-longer-name  -\n");
	free(s);
	tbl_free(t);
	tbl_free(NULL);
	assert_null(tbl_new(0));
	assert_null(tbl_new(65));
}

static void test_table_width_and_cleaning(void **state)
{
	(void)state;
	assert_int_equal(tbl_width("abc"), 3);
	assert_int_equal(tbl_width("Zo\xc3\xab"), 3); /* Zoë */
	assert_int_equal(tbl_width("\xe2\x82\xac"
	                           "1"),
	                 2);                        /* €1 */
	assert_int_equal(tbl_width("\xff\xfe"), 2); /* invalid bytes count one each */

	/* A terminal escape from the server must not reach the terminal. */
	char *c = tbl_clean("red\x1b[31mX\x07", 0);
	assert_string_equal(c, "red?[31mX?");
	free(c);
	c = tbl_clean("a\tb\nc", 0);
	assert_string_equal(c, "a b c");
	free(c);
	/* C1 controls (U+0080..U+009F) and broken UTF-8 become '?'. */
	c = tbl_clean("x\xc2\x9by\xc3", 0);
	assert_string_equal(c, "x?y?");
	free(c);
	/* Overlong encodings and surrogates are not valid UTF-8. */
	c = tbl_clean("\xc0\xaf\xed\xa0\x80", 0);
	assert_string_equal(c, "?????");
	free(c);
	c = tbl_clean("Zo\xc3\xab", 0);
	assert_string_equal(c, "Zo\xc3\xab");
	free(c);
	/* Cutting keeps whole characters and ends in "...". */
	c = tbl_clean("0123456789", 8);
	assert_string_equal(c, "01234...");
	free(c);
	c = tbl_clean("\xc3\xab\xc3\xab\xc3\xab\xc3\xab\xc3\xab\xc3\xab", 5);
	assert_string_equal(c, "\xc3\xab\xc3\xab...");
	free(c);
	c = tbl_clean("12345", 5);
	assert_string_equal(c, "12345");
	free(c);
	c = tbl_clean(NULL, 0);
	assert_string_equal(c, "");
	free(c);
}

static void test_table_cell_limit(void **state)
{
	(void)state;
	char longcell[200];
	memset(longcell, 'x', sizeof(longcell) - 1);
	longcell[sizeof(longcell) - 1] = '\0';
	struct tbl *t = tbl_new(1);
	tbl_head(t, 0, "D", false);
	tbl_add(t, longcell);
	tbl_add(t, "");
	char *s = tbl_render(t);
	char *line2 = strchr(s, '\n') + 1;
	assert_int_equal(strchr(line2, '\n') - line2, TBL_CELL_MAX);
	assert_memory_equal(line2 + TBL_CELL_MAX - 3, "...", 3);
	assert_string_equal(strchr(line2, '\n') + 1, "-\n");
	free(s);
	tbl_free(t);
}

static char *fn_both(const json_t *o)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s@%s", json_string_value(json_object_get(o, "name")),
	         json_string_value(json_object_get(o, "room")));
	return strdup(buf);
}

static void test_out_table(void **state)
{
	(void)state;
	static const struct col cols[] = {
	    {"ID", "id", C_NUM, NULL},      {"NAME", "name", C_STR, NULL},
	    {"TAGS", "tags", C_STR, NULL},  {"SEEN", "seen", C_TIME, NULL},
	    {"SIZE", "size", C_SIZE, NULL}, {"ON", "opt.on", C_BOOL, NULL},
	    {"WHERE", NULL, C_FN, fn_both}, {NULL, NULL, C_STR, NULL},
	};
	json_t *items = json_loads(
	    "[{\"id\": 7, \"name\": \"pc-7\", \"room\": \"B1\", \"tags\": [\"a\", \"b\"],"
	    "  \"seen\": \"2026-11-26T13:05:09Z\", \"size\": 1536, \"opt\": {\"on\": true}},"
	    " {\"id\": 12, \"name\": \"pc-12\", \"room\": \"B2\", \"tags\": [], \"seen\": null,"
	    "  \"size\": 10, \"opt\": {\"on\": false}}]",
	    0, NULL);
	assert_non_null(items);
	char *s = out_table(items, cols);
	assert_string_equal(s, "ID  NAME   TAGS  SEEN                 SIZE  ON   WHERE\n"
	                       " 7  pc-7   a, b  2026-11-26 13:05  1.5 KiB  yes  pc-7@B1\n"
	                       "12  pc-12  -     -                    10 B  no   pc-12@B2\n");
	free(s);
	/* No items: the header alone. */
	json_t *none = json_array();
	s = out_table(none, cols);
	assert_string_equal(s, "ID  NAME  TAGS  SEEN  SIZE  ON  WHERE\n");
	free(s);
	json_decref(none);
	json_decref(items);
}

static void test_out_show(void **state)
{
	(void)state;
	json_t *o = json_loads("{\"id\": 3, \"name\": \"x\", \"size\": 2097152,"
	                       " \"schedule\": {\"kind\": \"cron\", \"cron\": \"30 6 * * 1-5\"},"
	                       " \"errors\": [{\"line\": 2, \"message\": \"bad\\u001b\"}],"
	                       " \"tags\": [\"a\", 1, true], \"note\": null,"
	                       " \"at\": \"2026-01-02T03:04:05Z\"}",
	                       0, NULL);
	assert_non_null(o);
	char *s = out_show(o);
	assert_string_equal(s, "id:                3\n"
	                       "name:              x\n"
	                       "size:              2097152 (2.0 MiB)\n"
	                       "schedule.kind:     cron\n"
	                       "schedule.cron:     30 6 * * 1-5\n"
	                       "errors[0].line:    2\n"
	                       "errors[0].message: bad?\n"
	                       "tags:              a, 1, yes\n"
	                       "note:              -\n"
	                       "at:                2026-01-02 03:04:05 UTC\n");
	free(s);
	json_decref(o);
}

/* The library's byte counts get their human form; counts of things do not. */
static void test_out_show_library(void **state)
{
	(void)state;
	json_t *o = json_loads("{\"versions\": 9, \"versions_bytes\": 3221225472,"
	                       " \"stored_bytes\": 1048576, \"free_bytes\": 5368709120,"
	                       " \"chunks\": 4096}",
	                       0, NULL);
	assert_non_null(o);
	char *s = out_show(o);
	assert_string_equal(s, "versions:       9\n"
	                       "versions_bytes: 3221225472 (3.0 GiB)\n"
	                       "stored_bytes:   1048576 (1.0 MiB)\n"
	                       "free_bytes:     5368709120 (5.0 GiB)\n"
	                       "chunks:         4096\n");
	free(s);
	json_decref(o);
}

/* TARGETS: the names a list's prep filled in, else the ids. */
static void test_targets_col(void **state)
{
	(void)state;
	json_t *o = json_loads("{\"targets\": {\"machines\": [3, 4], \"groups\": [],"
	                       " \"criteria\": [2]}}",
	                       0, NULL);
	assert_non_null(o);
	char *s = res_targets_col(o);
	assert_string_equal(s, "machines 3,4; criteria 2");
	free(s);
	json_object_set_new(o, "_targets", json_string("machines pc-3,pc-4; criteria lab"));
	s = res_targets_col(o);
	assert_string_equal(s, "machines pc-3,pc-4; criteria lab");
	free(s);
	json_decref(o);
}

static void test_out_value_and_get(void **state)
{
	(void)state;
	json_t *o = json_loads(
	    "{\"a\": {\"b\": {\"c\": 5}}, \"r\": 0.5, \"s\": \"2026-13-01T00:00:00Z\"}", 0, NULL);
	char *v = out_value(out_get(o, "a.b.c"), C_NUM, false);
	assert_string_equal(v, "5");
	free(v);
	assert_null(out_get(o, "a.x.c"));
	assert_null(out_get(o, "nope"));
	v = out_value(json_object_get(o, "r"), C_STR, false);
	assert_string_equal(v, "0.5");
	free(v);
	/* Not a real time (month 13): shown as it is. */
	v = out_value(json_object_get(o, "s"), C_TIME, false);
	assert_string_equal(v, "2026-13-01T00:00:00Z");
	free(v);
	v = out_value(NULL, C_STR, false);
	assert_string_equal(v, "");
	free(v);
	v = out_value(json_object_get(o, "a"), C_STR, false);
	assert_string_equal(v, "{\"b\":{\"c\":5}}");
	free(v);
	json_decref(o);

	char b[32];
	out_size(0, b, sizeof(b));
	assert_string_equal(b, "0 B");
	out_size(1023, b, sizeof(b));
	assert_string_equal(b, "1023 B");
	out_size(1024, b, sizeof(b));
	assert_string_equal(b, "1.0 KiB");
	out_size(5ULL << 40, b, sizeof(b));
	assert_string_equal(b, "5.0 TiB");
}

static void test_sb(void **state)
{
	(void)state;
	struct sb s = {0};
	sb_add(&s, "a");
	sb_addc(&s, 'b');
	sb_addf(&s, "%d-%s", 42, "x");
	char big[600];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sb_addf(&s, "%s", big);
	char *r = sb_take(&s);
	assert_int_equal(strlen(r), 6 + 599);
	assert_memory_equal(r, "ab42-xy", 7);
	free(r);
	sb_add_qval(&s, "a b&c=d/é~");
	r = sb_take(&s);
	assert_string_equal(r, "a%20b%26c%3Dd%2F%C3%A9~");
	free(r);
	r = sb_take(&s);
	assert_string_equal(r, "");
	free(r);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_alignment),
	    cmocka_unit_test(test_table_width_and_cleaning),
	    cmocka_unit_test(test_table_cell_limit),
	    cmocka_unit_test(test_out_table),
	    cmocka_unit_test(test_out_show),
	    cmocka_unit_test(test_out_show_library),
	    cmocka_unit_test(test_targets_col),
	    cmocka_unit_test(test_out_value_and_get),
	    cmocka_unit_test(test_sb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
