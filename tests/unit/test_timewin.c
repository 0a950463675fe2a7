/*
 * Unit tests for timewin.c: the syntax, ranges across midnight and across
 * Saturday night, the canonical spelling and its round trip, every error
 * kind, hostile input, and membership across daylight-saving changes.
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

#include "timewin.h"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static time_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};

	return timegm(&tm);
}

static struct timewin parse_ok(const char *s)
{
	struct timewin w;
	char err[TIMEWIN_ERR_MAX] = "";
	int rc = timewin_parse(s, strlen(s), &w, err, sizeof(err));

	if (rc != 0)
		fail_msg("\"%s\": rc %d: %s", s, rc, err);
	return w;
}

static void bad_len(const char *s, size_t len, const char *want)
{
	static struct timewin w, before;
	char err[TIMEWIN_ERR_MAX] = "";
	int rc;

	memset(&w, 0x5a, sizeof(w));
	before = w;
	rc = timewin_parse(s, len, &w, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("\"%.*s\": rc %d, want -EINVAL", (int)(len < 80 ? len : 80), s, rc);
	if (want != NULL && strcmp(err, want) != 0)
		fail_msg("\"%.*s\": error \"%s\", want \"%s\"", (int)(len < 80 ? len : 80), s, err,
		         want);
	assert_true(err[0] != '\0');
	assert_memory_equal(&w, &before, sizeof(w));
	assert_int_equal(timewin_parse(s, len, &w, NULL, 0), -EINVAL);
}

static void bad(const char *s, const char *want)
{
	bad_len(s, strlen(s), want);
}

/* 2026-11-23 is a Monday; day 0 here is that Monday, 6 the Sunday after. */
static time_t week(int day, int h, int mi)
{
	return utc(2026, 11, 23 + day, h, mi);
}

static void test_contains(void **state)
{
	struct timewin w;

	(void)state;
	set_tz("UTC");
	w = parse_ok("mon-fri 08:00-18:00");
	assert_false(timewin_contains(&w, week(0, 7, 59)));
	assert_true(timewin_contains(&w, week(0, 8, 0)));
	assert_true(timewin_contains(&w, week(0, 17, 59)));
	assert_true(timewin_contains(&w, week(0, 17, 59) + 59));
	assert_false(timewin_contains(&w, week(0, 18, 0)));
	assert_true(timewin_contains(&w, week(4, 12, 0)));
	assert_false(timewin_contains(&w, week(5, 12, 0)));
	assert_false(timewin_contains(&w, week(6, 12, 0)));

	/* Across midnight: Friday 22:00 to Saturday 02:00. */
	w = parse_ok("fri 22:00-02:00");
	assert_false(timewin_contains(&w, week(4, 21, 59)));
	assert_true(timewin_contains(&w, week(4, 22, 0)));
	assert_true(timewin_contains(&w, week(4, 23, 59)));
	assert_true(timewin_contains(&w, week(5, 0, 0)));
	assert_true(timewin_contains(&w, week(5, 1, 59)));
	assert_false(timewin_contains(&w, week(5, 2, 0)));
	assert_false(timewin_contains(&w, week(5, 22, 30)));
	assert_false(timewin_contains(&w, week(3, 23, 0)));

	/* Across Saturday night into Sunday, the start of the bitmap's week. */
	w = parse_ok("sat 23:00-01:00");
	assert_true(timewin_contains(&w, week(5, 23, 30)));
	assert_true(timewin_contains(&w, week(6, 0, 30)));
	assert_false(timewin_contains(&w, week(6, 1, 0)));
	assert_false(timewin_contains(&w, week(0, 0, 30)));

	w = parse_ok("mon,wed 08:00-12:00; sat 09:00-13:00");
	assert_true(timewin_contains(&w, week(0, 9, 0)));
	assert_false(timewin_contains(&w, week(1, 9, 0)));
	assert_true(timewin_contains(&w, week(2, 11, 59)));
	assert_true(timewin_contains(&w, week(5, 12, 0)));
	assert_false(timewin_contains(&w, week(5, 8, 0)));

	/* Several ranges, full names, any case, one-digit hours, blanks around separators. */
	w = parse_ok("  Monday - FRIDAY  8:00 - 12:00 , 13:30-17:00 ;SUN 0:00-24:00 ");
	assert_true(timewin_contains(&w, week(0, 8, 0)));
	assert_false(timewin_contains(&w, week(0, 12, 0)));
	assert_false(timewin_contains(&w, week(0, 13, 29)));
	assert_true(timewin_contains(&w, week(0, 13, 30)));
	assert_true(timewin_contains(&w, week(6, 0, 0)));
	assert_true(timewin_contains(&w, week(6, 23, 59)));
	assert_false(timewin_contains(&w, week(5, 23, 59)));

	/* A day range wraps through the week. */
	w = parse_ok("fri-mon 10:00-11:00");
	for (int d = 0; d < 7; d++)
		assert_int_equal(timewin_contains(&w, week(d, 10, 30)), d == 0 || d >= 4);
	w = parse_ok("wed-wed 10:00-11:00");
	for (int d = 0; d < 7; d++)
		assert_int_equal(timewin_contains(&w, week(d, 10, 30)), d == 2);

	/* Every minute of the week. */
	w = parse_ok("sun-sat 00:00-24:00");
	for (size_t i = 0; i < TIMEWIN_MINUTES / 64; i++)
		assert_true(w.bits[i] == UINT64_MAX);
	assert_true(w.bits[TIMEWIN_MINUTES / 64] == (1ULL << (TIMEWIN_MINUTES % 64)) - 1);
	{
		struct timewin w2 = parse_ok("mon-sun 00:00-24:00");

		assert_memory_equal(&w, &w2, sizeof(w));
	}
}

static void test_dst(void **state)
{
	struct timewin w;

	(void)state;
	set_tz("Europe/Paris");
	/* 29 March 2026: 02:00-03:00 does not occur. */
	w = parse_ok("sun 02:00-03:00");
	for (time_t t = utc(2026, 3, 28, 22, 0); t < utc(2026, 3, 29, 6, 0); t += 60)
		assert_false(timewin_contains(&w, t));
	w = parse_ok("sun 01:00-04:00");
	assert_true(timewin_contains(&w, utc(2026, 3, 29, 0, 59)));
	assert_true(timewin_contains(&w, utc(2026, 3, 29, 1, 0)));
	assert_true(timewin_contains(&w, utc(2026, 3, 29, 1, 59)));
	assert_false(timewin_contains(&w, utc(2026, 3, 29, 2, 0)));
	/* 25 October 2026: 02:00-03:00 occurs twice, and is inside both times. */
	w = parse_ok("sun 02:00-03:00");
	assert_false(timewin_contains(&w, utc(2026, 10, 24, 23, 59)));
	assert_true(timewin_contains(&w, utc(2026, 10, 25, 0, 30)));
	assert_true(timewin_contains(&w, utc(2026, 10, 25, 1, 30)));
	assert_false(timewin_contains(&w, utc(2026, 10, 25, 2, 0)));
	/* Local time, not UTC. */
	w = parse_ok("mon-fri 08:00-18:00");
	assert_true(timewin_contains(&w, utc(2026, 11, 23, 7, 0)));
	assert_false(timewin_contains(&w, utc(2026, 11, 23, 17, 0)));
	set_tz("America/New_York");
	assert_false(timewin_contains(&w, utc(2026, 11, 23, 12, 59)));
	assert_true(timewin_contains(&w, utc(2026, 11, 23, 13, 0)));
	set_tz("UTC");
}

static void format_is(const char *in, const char *want)
{
	struct timewin w = parse_ok(in), back;
	char buf[TIMEWIN_FORMAT_MAX], again[TIMEWIN_FORMAT_MAX];

	assert_int_equal(timewin_format(&w, buf, sizeof(buf)), 0);
	if (strcmp(buf, want) != 0)
		fail_msg("\"%s\": formatted \"%s\", want \"%s\"", in, buf, want);
	back = parse_ok(buf);
	assert_memory_equal(&w, &back, sizeof(w));
	assert_int_equal(timewin_format(&back, again, sizeof(again)), 0);
	assert_string_equal(buf, again);
}

static void test_format(void **state)
{
	struct timewin w;
	char buf[64];

	(void)state;
	format_is("mon-fri 08:00-18:00", "mon-fri 08:00-18:00");
	format_is("sun-sat 00:00-24:00", "mon-sun 00:00-24:00");
	format_is("mon,wed 08:00-12:00; sat 09:00-13:00", "mon,wed 08:00-12:00; sat 09:00-13:00");
	format_is("fri 22:00-02:00", "fri 22:00-02:00");
	format_is("sat 23:00-01:00", "sat 23:00-01:00");
	format_is("mon-fri 08:00-18:00; sat 09:00-13:00; fri 22:00-02:00",
	          "mon-thu 08:00-18:00; fri 08:00-18:00,22:00-02:00; sat 09:00-13:00");
	format_is("mon 10:00-12:00,08:00-10:00", "mon 08:00-12:00");
	format_is("mon 08:00-11:00,10:00-12:00", "mon 08:00-12:00");
	format_is("sun,sat 10:00-11:00", "sat,sun 10:00-11:00");
	format_is("tue,mon,wed 10:00-11:00", "mon-wed 10:00-11:00");
	format_is("mon,tue,thu,fri,sun 10:00-11:00", "mon,tue,thu,fri,sun 10:00-11:00");
	format_is("fri-mon 10:00-11:00", "mon,fri-sun 10:00-11:00");
	format_is("fri 02:00-24:00; sat 00:00-03:00", "fri 02:00-24:00; sat 00:00-03:00");
	format_is("fri 22:00-24:00; sat 00:00-02:00", "fri 22:00-02:00");
	format_is("mon-sun 22:00-06:00", "mon-sun 22:00-06:00");
	format_is("mon 00:00-24:00; tue 00:00-01:00", "mon 00:00-24:00; tue 00:00-01:00");
	format_is("mon 23:00-24:00; tue 00:00-24:00", "mon 23:00-24:00; tue 00:00-24:00");
	format_is("mon 20:00-01:00; tue 00:30-02:00", "mon 20:00-02:00");
	format_is("mon 8:00-9:00", "mon 08:00-09:00");
	format_is("mon 00:00-00:01; sun 23:59-24:00", "sun 23:59-00:01");

	w = parse_ok("mon-fri 08:00-18:00");
	assert_int_equal(timewin_format(&w, buf, 10), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(timewin_format(&w, buf, strlen("mon-fri 08:00-18:00")), -ENOSPC);
	assert_int_equal(timewin_format(&w, buf, strlen("mon-fri 08:00-18:00") + 1), 0);
	assert_int_equal(timewin_format(&w, buf, 0), -ENOSPC);
	memset(&w, 0, sizeof(w));
	assert_int_equal(timewin_format(&w, buf, sizeof(buf)), -EINVAL);
}

static void test_errors(void **state)
{
	(void)state;
	bad("", "empty time window (expected e.g. 'mon-fri 08:00-18:00'; no window means always)");
	bad(" \t", NULL);
	bad_len(NULL, 0, NULL);
	bad("mon-fri", "'mon-fri' lacks its time range (e.g. mon-fri 08:00-18:00)");
	bad("08:00-18:00", "'08:00-18:00' lacks its days (e.g. mon-fri 08:00-18:00)");
	bad("xyz 08:00-18:00", "'xyz' is not a day (mon, tue, wed, thu, fri, sat, sun)");
	bad("mo 08:00-18:00", "'mo' is not a day (mon, tue, wed, thu, fri, sat, sun)");
	bad("mon,,tue 08:00-10:00", "'' is an empty day (two commas, or a dash with no day)");
	bad("mon- 08:00-10:00", "'' is an empty day (two commas, or a dash with no day)");
	bad("mon-tue-wed 08:00-10:00", "'mon-tue-wed' is not a day range (DAY-DAY)");
	bad("mon 25:00-26:00", "'25:00' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08:60-09:00", "'08:60' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08:00-24:01", "'24:01' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 8-18", "'8' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 008:00-09:00", "'008:00' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08:0-09:00", "'08:0' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08h00-09h00", "'08h00' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08:00", "'08:00' is not a time range (HH:MM-HH:MM)");
	bad("mon 08:00-09:00-10:00", "'08:00-09:00-10:00' is not a time range (HH:MM-HH:MM)");
	bad("mon 08:00-08:00", "'08:00-08:00' is an empty range (for a whole day write "
	                       "00:00-24:00)");
	bad("mon 00:00-00:00", NULL);
	bad("mon 24:00-02:00", "'24:00-02:00' starts at 24:00 (write 00:00 of the next day)");
	bad("mon 08:00-12:00,,13:00-14:00",
	    "'08:00-12:00,,13:00-14:00' has an empty time range (two commas, or one at an end)");
	bad("mon 08:00-12:00,", NULL);
	bad("mon 08:00-12:00;", "clause 2 is empty (two ';', or one at an end)");
	bad(";mon 08:00-12:00", "clause 1 is empty (two ';', or one at an end)");
	bad("mon 08:00-12:00;; tue 08:00-12:00", "clause 2 is empty (two ';', or one at an end)");
	bad("mon 08:00-12:00 tue 13:00-14:00", NULL);
}

static void test_hostile(void **state)
{
	static const char nul[] = "mon 08:00\0-18:00";
	static struct timewin w;
	static char big[20001], out[TIMEWIN_FORMAT_MAX];
	char err[TIMEWIN_ERR_MAX];
	size_t n;

	(void)state;
	bad_len(nul, sizeof(nul) - 1, "time window contains a NUL byte");
	bad("\x01\xff 08:00-09:00",
	    "'\\x01\\xff' is not a day (mon, tue, wed, thu, fri, sat, sun)");
	bad("mon 99999999999999999999:00-10:00",
	    "'99999999999999999999:00' is not a time (HH:MM, 00:00 to 24:00)");
	bad("mon 08:00-10:00,99999999999999999999999999999999999999999999",
	    "'99999999999999999999999999999999...' is not a time range (HH:MM-HH:MM)");
	memset(big, ',', 20000);
	big[20000] = '\0';
	bad(big, "time window is too long (20000 bytes, at most 1024)");
	memset(big, ';', 1024);
	bad_len(big, 1024, "clause 1 is empty (two ';', or one at an end)");
	memcpy(big, "mon ", 4);
	memset(big + 4, ',', 1000);
	bad_len(big, 1004, NULL);

	/* The most ranges that fit: every day different, each with many ranges. */
	n = 0;
	memcpy(big + n, "mon-sun ", 8);
	n += 8;
	for (int i = 0; n + 12 < 1000; i++) {
		int m = i * 13;

		n += (size_t)snprintf(big + n, 20, "%d:%02d-%d:%02d,", m / 60, m % 60, (m + 1) / 60,
		                      (m + 1) % 60);
	}
	big[n - 1] = ';';
	memcpy(big + n, "mon 0:02-0:03;tue 0:04-0:05", 27);
	n += 27;
	assert_true(n <= TIMEWIN_TEXT_MAX);
	assert_int_equal(timewin_parse(big, n, &w, err, sizeof(err)), 0);
	assert_int_equal(timewin_format(&w, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_contains), cmocka_unit_test(test_dst),
	    cmocka_unit_test(test_format),   cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_hostile),
	};

	set_tz("UTC");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
