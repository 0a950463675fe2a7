/*
 * Unit tests for how mlctl shows runs (runview.c): the summary block, the
 * table of machines with progress, the totals line, the ETA, the table of
 * rollback commands, and the change lines of `run watch` without a
 * terminal. Odd input (missing fields, nulls, wrong types, huge numbers,
 * control characters and invalid UTF-8 from the server) must give clean
 * text, never a crash or a raw escape.
 */
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

/* 2026-11-26 06:30:12 UTC. */
#define T0 ((time_t)1795674612)

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s (line %d)", e.text, e.line);
	return j;
}

/* No byte of s is a control character but a newline. */
static void assert_clean(const char *s)
{
	assert_non_null(s);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			fail_msg("control byte 0x%02x at %zu in %s", *p,
			         (size_t)(p - (const unsigned char *)s), s);
}

static const char *RUN =
    "{\"id\": 31, \"deployment_id\": 3, \"deployment_name\": \"lab-b-win11\", \"version_id\": 9,"
    " \"image_id\": 2, \"state\": \"running\", \"cause\": \"manual\","
    " \"due_at\": \"2026-11-26T06:30:00Z\", \"created_at\": \"2026-11-26T06:30:00Z\","
    " \"started_at\": \"2026-11-26T06:30:01Z\", \"finished_at\": null, \"error\": null,"
    " \"phase\": \"sending\", \"sent_bytes\": 3435973837, \"retry_of\": null, \"mail\": null,"
    " \"rate_bps\": 800000000,"
    " \"totals\": {\"machines\": 4, \"waiting\": 0, \"ready\": 0, \"receiving\": 2, \"done\": 1,"
    "  \"current\": 0, \"missing\": 0, \"failed\": 1, \"cancelled\": 0},"
    " \"targets\": ["
    "  {\"machine_id\": 1, \"machine\": \"pc-101\", \"state\": \"done\", \"reason\": null,"
    "   \"woken\": \"direct\", \"bytes\": 21474836480, \"chunks_done\": 5120,"
    "   \"chunks_needed\": 5120, \"ms\": 192000},"
    "  {\"machine_id\": 2, \"machine\": \"pc-102\", \"state\": \"receiving\", \"reason\": null,"
    "   \"woken\": \"relay\", \"bytes\": 1073741824, \"chunks_done\": 256,"
    "   \"chunks_needed\": 1024, \"ms\": null},"
    "  {\"machine_id\": 3, \"machine\": \"pc-103\", \"state\": \"receiving\", \"woken\": \"\","
    "   \"bytes\": 4194304, \"chunks_done\": 1, \"chunks_needed\": 2},"
    "  {\"machine_id\": 4, \"machine\": \"pc-104\", \"state\": \"failed\","
    "   \"reason\": \"no space left: 12.0 GiB free\", \"woken\": \"direct+relay\","
    "   \"bytes\": 0, \"chunks_done\": 0, \"chunks_needed\": 5120, \"ms\": 850}]}";

static int setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void test_summary(void **state)
{
	(void)state;
	json_t *run = load(RUN);
	/* What run show sets after asking for the version's number. */
	json_object_set_new(run, "_version", json_string("win11:v4"));
	char *s = rv_summary(run);
	/*
	 * ETA: pc-102 has 768 chunks left at 4 MiB each (3 GiB) at 800 Mbit/s:
	 * 3221225472 * 8 / 8e8 = 32.2 s.
	 */
	assert_string_equal(s, "run:        31\n"
	                       "deployment: lab-b-win11\n"
	                       "version:    win11:v4\n"
	                       "state:      running (sending)\n"
	                       "cause:      manual\n"
	                       "due:        2026-11-26 06:30:00 UTC\n"
	                       "started:    2026-11-26 06:30:01 UTC\n"
	                       "finished:   -\n"
	                       "sent:       3.2 GiB, 800.0 Mbit/s, about 32.0s left\n");
	free(s);
	assert_int_equal(rv_eta(run), 32);
	assert_int_equal(rv_end(run), 0);

	/* An ended run: no phase, no rate; retry_of, mail and error shown. */
	json_object_set_new(run, "state", json_string("failed"));
	json_object_set_new(run, "phase", json_null());
	json_object_set_new(run, "rate_bps", json_integer(0));
	json_object_set_new(run, "retry_of", json_integer(28));
	json_object_set_new(run, "mail", json_string("sent to 2 recipients"));
	json_object_set_new(run, "error", json_string("1 machine failed"));
	json_object_set_new(run, "finished_at", json_string("2026-11-26T06:41:07Z"));
	json_object_del(run, "_version");
	s = rv_summary(run);
	assert_string_equal(s, "run:        31\n"
	                       "deployment: lab-b-win11\n"
	                       "version:    9\n"
	                       "state:      failed\n"
	                       "cause:      manual\n"
	                       "retry of:   run 28\n"
	                       "due:        2026-11-26 06:30:00 UTC\n"
	                       "started:    2026-11-26 06:30:01 UTC\n"
	                       "finished:   2026-11-26 06:41:07 UTC\n"
	                       "sent:       3.2 GiB\n"
	                       "mail:       sent to 2 recipients\n"
	                       "error:      1 machine failed\n");
	free(s);
	assert_int_equal(rv_eta(run), -1);
	assert_int_equal(rv_end(run), -1);
	json_object_set_new(run, "state", json_string("done"));
	assert_int_equal(rv_end(run), 1);
	json_object_set_new(run, "state", json_string("cancelled"));
	assert_int_equal(rv_end(run), -1);
	json_object_set_new(run, "state", json_string("pending"));
	assert_int_equal(rv_end(run), 0);
	json_decref(run);
}

static void test_table_and_totals(void **state)
{
	(void)state;
	json_t *run = load(RUN);
	char *t = rv_table(run, false);
	assert_string_equal(
	    t,
	    "MACHINE  STATE      PROGRESS     BYTES  WOKEN          TIME  REASON\n"
	    "pc-101   done       100%      20.0 GiB  direct        3m12s  -\n"
	    "pc-102   receiving  25%        1.0 GiB  relay             -  -\n"
	    "pc-103   receiving  50%        4.0 MiB  -                 -  -\n"
	    "pc-104   failed     0%               -  direct+relay  850ms  no space left: 12.0 GiB "
	    "free\n");
	free(t);
	t = rv_table(run, true);
	assert_non_null(strstr(t, "pc-102   receiving  [#####...............]  25%"));
	assert_non_null(strstr(t, "[####################] 100%"));
	assert_non_null(strstr(t, "[....................]   0%"));
	free(t);
	t = rv_totals(run);
	assert_string_equal(t, "4 machines: 1 done, 2 receiving, 1 failed\n");
	free(t);
	/* Without totals (an older server), the targets are counted. */
	json_object_del(run, "totals");
	t = rv_totals(run);
	assert_string_equal(t, "4 machines: 1 done, 2 receiving, 1 failed\n");
	free(t);
	t = rv_render(run, false);
	assert_non_null(strstr(t, "about 32.0s left\n\nMACHINE  STATE"));
	assert_non_null(strstr(t, "free\n\n4 machines: 1 done"));
	free(t);
	json_decref(run);
}

static void test_odd_input(void **state)
{
	(void)state;
	/* Nothing at all: every line still there, with "-". */
	json_t *run = load("{}");
	char *s = rv_render(run, true);
	assert_string_equal(s, "run:        ?\n"
	                       "deployment: -\n"
	                       "version:    -\n"
	                       "state:      ?\n"
	                       "cause:      -\n"
	                       "due:        -\n"
	                       "started:    -\n"
	                       "finished:   -\n"
	                       "\n(no machines)\n\n0 machines\n");
	free(s);
	assert_int_equal(rv_end(run), 0);
	assert_int_equal(rv_eta(run), -1);
	json_decref(run);

	/* Wrong types everywhere, nulls, huge and negative numbers. */
	run = load("{\"id\": \"x\", \"deployment_name\": null, \"deployment_id\": 7, \"state\": 5,"
	           " \"phase\": \"\", \"sent_bytes\": 9223372036854775807,"
	           " \"rate_bps\": 9223372036854775807,"
	           " \"totals\": {\"machines\": -3, \"done\": 1.8e19,"
	           "  \"failed\": \"many\", \"waiting\": 9223372036854775807},"
	           " \"targets\": [null, 3, {}, {\"machine_id\": 9, \"state\": null,"
	           "  \"chunks_done\": 9223372036854775807, \"chunks_needed\": 3, \"bytes\": -5,"
	           "  \"ms\": 9223372036854775807},"
	           " {\"machine\": \"pc-x\", \"chunks_done\": -1, \"chunks_needed\": "
	           "9223372036854775807}]}");
	s = rv_render(run, true);
	assert_clean(s);
	assert_non_null(strstr(s, "deployment: #7\n"));
	assert_non_null(strstr(s, "state:      ?\n"));
	assert_non_null(strstr(s, "sent:       8192.0 PiB, 9223372.0 Tbit/s\n"));
	/* chunks_done beyond chunks_needed is complete, not 3074457345618258602%. */
	assert_non_null(strstr(s, "#9 "));
	assert_non_null(strstr(s, "[####################] 100%"));
	assert_non_null(strstr(s, "pc-x"));
	assert_non_null(strstr(s, "[....................]   0%"));
	assert_non_null(strstr(s, "106751991167d07h"));
	/* machines -3 is not a count: the targets are; 1.8e19 is no integer. */
	assert_non_null(strstr(s, "\n5 machines: 9223372036854775807 waiting\n"));
	free(s);
	json_decref(run);

	/* A terminal escape and invalid UTF-8 in names and reasons. */
	run = json_pack("{s:i, s:s, s:s, s:s, s:[{s:i, s:o, s:s, s:o}]}", "id", 5, "state",
	                "failed", "deployment_name", "evil\x1b]0;pwned\x07", "error",
	                "bad\r\nthing", "targets", "machine_id", 1, "machine",
	                json_stringn_nocheck("pc-\x1b[2J\xff\xfe", 9), "state", "failed", "reason",
	                json_stringn_nocheck("disk\x9b"
	                                     "1m\xc3",
	                                     8));
	assert_non_null(run);
	s = rv_render(run, false);
	assert_clean(s);
	assert_non_null(strstr(s, "deployment: evil?]0;pwned?\n"));
	assert_non_null(strstr(s, "error:      bad  thing\n"));
	assert_non_null(strstr(s, "pc-?[2J??"));
	assert_non_null(strstr(s, "disk?1m?"));
	free(s);
	struct rv_watch *w = rv_watch_new();
	s = rv_watch_feed(w, run, T0);
	assert_clean(s);
	assert_string_equal(s, "06:30:12 run 5: failed\n"
	                       "06:30:12 pc-?[2J??: failed: disk?1m?\n");
	free(s);
	rv_watch_free(w);
	json_decref(run);

	/* A very long reason is cut in the table, not in the log. */
	char longr[300];
	memset(longr, 'x', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	run = json_pack("{s:[{s:s, s:s, s:s}]}", "targets", "machine", "pc-1", "state", "failed",
	                "reason", longr);
	s = rv_table(run, false);
	assert_non_null(strstr(s, "..."));
	assert_true(strlen(s) < 200);
	free(s);
	json_decref(run);
}

static void test_watch_changes(void **state)
{
	(void)state;
	struct rv_watch *w = rv_watch_new();
	assert_non_null(w);
	json_t *run = load("{\"id\": 31, \"state\": \"running\", \"phase\": \"waking\","
	                   " \"targets\": [{\"machine_id\": 1, \"machine\": \"pc-101\","
	                   " \"state\": \"waiting\"}, {\"machine_id\": 2, \"machine\": \"pc-102\","
	                   " \"state\": \"waiting\"}]}");
	/* The first poll reports everything. */
	char *s = rv_watch_feed(w, run, T0);
	assert_string_equal(s, "06:30:12 run 31: running (waking)\n"
	                       "06:30:12 pc-101: waiting\n"
	                       "06:30:12 pc-102: waiting\n");
	free(s);
	/* The same again: nothing. A rate or byte count alone is no change. */
	json_object_set_new(run, "rate_bps", json_integer(5));
	s = rv_watch_feed(w, run, T0 + 2);
	assert_string_equal(s, "");
	free(s);
	/* A phase changes, one machine moves on. */
	json_object_set_new(run, "phase", json_string("sending"));
	json_object_set_new(json_array_get(json_object_get(run, "targets"), 1), "state",
	                    json_string("receiving"));
	s = rv_watch_feed(w, run, T0 + 4);
	assert_string_equal(s, "06:30:16 run 31: running (sending)\n"
	                       "06:30:16 pc-102: waiting -> receiving\n");
	free(s);
	/* A new machine appears (a retry's late joiner); one is done, one fails. */
	json_t *targets = json_object_get(run, "targets");
	json_object_set_new(json_array_get(targets, 0), "state", json_string("failed"));
	json_object_set_new(json_array_get(targets, 0), "reason", json_string("timeout"));
	json_t *m2 = json_array_get(targets, 1);
	json_object_set_new(m2, "state", json_string("done"));
	json_object_set_new(m2, "bytes", json_integer(21474836480));
	json_object_set_new(m2, "ms", json_integer(192000));
	json_array_append_new(targets,
	                      json_pack("{s:i, s:s}", "machine_id", 3, "state", "current"));
	json_object_set_new(run, "state", json_string("done"));
	json_object_set_new(run, "phase", json_null());
	s = rv_watch_feed(w, run, T0 + 60);
	assert_string_equal(s, "06:31:12 run 31: done\n"
	                       "06:31:12 pc-101: waiting -> failed: timeout\n"
	                       "06:31:12 pc-102: receiving -> done (20.0 GiB in 3m12s)\n"
	                       "06:31:12 #3: current\n");
	free(s);
	/* Machines are told apart by id, so a renamed machine is no new one. */
	json_object_set_new(json_array_get(targets, 0), "machine", json_string("pc-101-new"));
	s = rv_watch_feed(w, run, T0 + 62);
	assert_string_equal(s, "");
	free(s);
	json_decref(run);

	/* Machines without ids, targets not an array, nothing typed right. */
	run = load("{\"state\": null, \"targets\": {\"a\": 1}}");
	s = rv_watch_feed(w, run, T0);
	assert_string_equal(s, "06:30:12 run ?: ?\n");
	free(s);
	json_decref(run);
	run =
	    load("{\"state\": null, \"targets\": [{\"machine\": \"a\"}, 7, {\"machine\": \"a\"}]}");
	s = rv_watch_feed(w, run, T0);
	/* The second "a" is the same machine as the first: no line for it. */
	assert_string_equal(s, "06:30:12 a: ?\n06:30:12 ?: ?\n");
	free(s);
	json_decref(run);
	rv_watch_free(w);
	rv_watch_free(NULL);
}

static void test_commands(void **state)
{
	(void)state;
	json_t *cmds =
	    load("[{\"id\": 91, \"machine_id\": 1, \"machine\": \"pc-101\", \"state\": \"done\","
	         "  \"result\": {\"active\": 5}},"
	         " {\"id\": 92, \"machine_id\": 2, \"machine\": \"pc-102\", \"state\": \"failed\","
	         "  \"result\": {\"reason\": \"no previous version\"}},"
	         " {\"id\": 93, \"machine_id\": 3, \"machine\": \"pc-103\", \"state\": \"expired\","
	         "  \"result\": null},"
	         " {\"id\": 94, \"machine_id\": 4, \"machine\": \"pc-104\", \"state\": \"running\","
	         "  \"result\": {\"x\": [1, 2]}},"
	         " {\"machine_id\": 5}]");
	char *t = rv_commands(cmds);
	assert_string_equal(t, "ID  MACHINE  STATE    RESULT\n"
	                       "91  pc-101   done     active version 5\n"
	                       "92  pc-102   failed   no previous version\n"
	                       "93  pc-103   expired  -\n"
	                       "94  pc-104   running  {\"x\":[1,2]}\n"
	                       " -  #5       -        -\n");
	free(t);
	assert_true(rv_command_ended(json_array_get(cmds, 0)));
	assert_true(rv_command_ended(json_array_get(cmds, 1)));
	assert_true(rv_command_ended(json_array_get(cmds, 2)));
	assert_false(rv_command_ended(json_array_get(cmds, 3)));
	/* No state yet (a 202 answer lists only ids): not ended, so it is polled. */
	assert_false(rv_command_ended(json_array_get(cmds, 4)));
	json_decref(cmds);
	json_t *c = load("{\"result\": {\"outcome\": \"current\", \"bytes\": 0}}");
	t = rv_command_result(c);
	assert_string_equal(t, "current");
	free(t);
	json_decref(c);
	t = rv_commands(NULL);
	assert_string_equal(t, "ID  MACHINE  STATE  RESULT\n");
	free(t);
}

static void test_units(void **state)
{
	(void)state;
	char b[64];
	rv_duration(0, b, sizeof(b));
	assert_string_equal(b, "0ms");
	rv_duration(999, b, sizeof(b));
	assert_string_equal(b, "999ms");
	rv_duration(12345, b, sizeof(b));
	assert_string_equal(b, "12.3s");
	rv_duration(192000, b, sizeof(b));
	assert_string_equal(b, "3m12s");
	rv_duration(3723000, b, sizeof(b));
	assert_string_equal(b, "1h02m");
	rv_duration(183600000, b, sizeof(b));
	assert_string_equal(b, "2d03h");
	rv_duration(UINT64_MAX, b, sizeof(b));
	assert_string_equal(b, "213503982334d14h");
	rv_rate(0, b, sizeof(b));
	assert_string_equal(b, "0 bit/s");
	rv_rate(999, b, sizeof(b));
	assert_string_equal(b, "999 bit/s");
	rv_rate(812000000, b, sizeof(b));
	assert_string_equal(b, "812.0 Mbit/s");
	rv_rate(UINT64_MAX, b, sizeof(b));
	assert_string_equal(b, "18446744.1 Tbit/s");

	json_t *t = load("{\"chunks_done\": 999, \"chunks_needed\": 1000}");
	char *p = rv_progress(t, false);
	assert_string_equal(p, "99%");
	free(p);
	json_decref(t);
	t = load("{\"state\": \"current\", \"chunks_needed\": 0}");
	assert_null(rv_progress(t, true));
	json_decref(t);
	t = load("{\"state\": \"done\"}");
	p = rv_progress(t, false);
	assert_string_equal(p, "100%");
	free(p);
	json_decref(t);
	t = load("{\"chunks_needed\": 4}");
	p = rv_progress(t, false);
	assert_string_equal(p, "0%");
	free(p);
	json_decref(t);

	/* An ETA beyond a year is no estimate. */
	t = load("{\"rate_bps\": 1, \"targets\": [{\"state\": \"receiving\", \"chunks_done\": 1,"
	         " \"chunks_needed\": 1000000, \"bytes\": 4194304}]}");
	assert_int_equal(rv_eta(t), -1);
	json_decref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_summary),   cmocka_unit_test(test_table_and_totals),
	    cmocka_unit_test(test_odd_input), cmocka_unit_test(test_watch_changes),
	    cmocka_unit_test(test_commands),  cmocka_unit_test(test_units),
	};
	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
