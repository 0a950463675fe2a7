/*
 * Unit tests for timefmt.c: every accepted timestamp form, each kind of
 * error, local times across daylight-saving changes, formatting, and the
 * calendar arithmetic checked against the C library's timegm()/gmtime_r().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timefmt.h"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = s};

	return timegm(&tm);
}

static void ok(const char *s, time_t want)
{
	time_t t = 12345;
	char err[TIMEFMT_ERR_MAX] = "";
	int rc = timefmt_parse(s, strlen(s), &t, err, sizeof(err));

	if (rc != 0 || t != want)
		fail_msg("\"%s\": rc %d (%s), got %lld, want %lld", s, rc, err, (long long)t,
		         (long long)want);
}

/* Expects s to fail with message want (or any message when want is NULL). */
static void bad_len(const char *s, size_t len, const char *want)
{
	time_t t = 12345;
	char err[TIMEFMT_ERR_MAX] = "";
	int rc = timefmt_parse(s, len, &t, err, sizeof(err));

	if (rc != -EINVAL)
		fail_msg("\"%s\": rc %d, want -EINVAL", s, rc);
	if (want != NULL && strcmp(err, want) != 0)
		fail_msg("\"%s\": error \"%s\", want \"%s\"", s, err, want);
	assert_true(err[0] != '\0');
	assert_int_equal(t, 12345);
	assert_int_equal(timefmt_parse(s, len, &t, NULL, 0), -EINVAL);
}

static void bad(const char *s, const char *want)
{
	bad_len(s, strlen(s), want);
}

static void test_parse_utc(void **state)
{
	time_t want = 1795698000; /* 2026-11-26 13:00:00 UTC */

	(void)state;
	set_tz("Europe/Paris");
	ok("2026-11-26T13:00:00Z", want);
	ok("2026-11-26t13:00:00z", want);
	ok("2026-11-26 13:00:00Z", want);
	ok("2026-11-26T13:00Z", want);
	ok("2026-11-26T13:00:00.000Z", want);
	ok("2026-11-26T13:00:00.999999999999Z", want);
	ok("2026-11-26T13:00:00,5Z", want);
	ok("2026-11-26T14:00:00+01:00", want);
	ok("2026-11-26T08:00:00-05:00", want);
	ok("2026-11-27T02:45:00+13:45", want);
	ok("2026-11-26T13:00:00+00:00", want);
	ok("2026-11-26T13:00:00-00:00", want);
	ok("1970-01-01T00:00:00Z", 0);
	ok("1970-01-01T00:30:00+01:00", -1800);
	ok("9999-12-31T23:59:59Z", (time_t)253402300799);
	ok("2028-02-29T12:00:00Z", utc(2028, 2, 29, 12, 0, 0));
	ok("2000-02-29T12:00:00Z", utc(2000, 2, 29, 12, 0, 0));
	ok("2026-12-31T23:59:59Z", utc(2026, 12, 31, 23, 59, 59));
}

static void test_parse_local(void **state)
{
	(void)state;
	set_tz("Europe/Paris");
	ok("2026-11-26 14:00", 1795698000);
	ok("2026-11-26T14:00:00", 1795698000);
	ok("2026-07-01 14:00", utc(2026, 7, 1, 12, 0, 0));
	/* The repeated hour means its first occurrence (still summer time). */
	ok("2026-10-25 02:30", utc(2026, 10, 25, 0, 30, 0));
	ok("2026-10-25 03:00", utc(2026, 10, 25, 2, 0, 0));
	ok("2026-03-29 01:59:59", utc(2026, 3, 29, 0, 59, 59));
	ok("2026-03-29 03:00", utc(2026, 3, 29, 1, 0, 0));
	bad("2026-03-29 02:30",
	    "bad timestamp '2026-03-29 02:30': this local time does not exist (the clocks go "
	    "forward then); give an offset such as +01:00 or Z");
	bad("2026-03-29 02:00", NULL);
	set_tz("America/New_York");
	ok("2026-11-26 08:00", 1795698000);
	ok("2026-11-01 01:30", utc(2026, 11, 1, 5, 30, 0));
	bad("2026-03-08 02:59", NULL);
	set_tz("UTC");
	ok("2026-11-26 13:00", 1795698000);
}

static void test_parse_errors(void **state)
{
	static const char nul[] = "2026-11-26T13:00\0:00Z";
	char big[200];

	(void)state;
	set_tz("UTC");
	bad("", "bad timestamp '': empty timestamp");
	bad_len(NULL, 0, "bad timestamp '': empty timestamp");
	bad("2026-11-26", "bad timestamp '2026-11-26': a time is needed after the date "
	                  "(YYYY-MM-DDTHH:MM)");
	bad("2026-1-26T13:00Z", "bad timestamp '2026-1-26T13:00Z': expected a date as YYYY-MM-DD");
	bad("26-11-2026 13:00", NULL);
	bad("2026/11/26 13:00", NULL);
	bad("1969-12-31T23:59:59Z",
	    "bad timestamp '1969-12-31T23:59:59Z': year 1969 is out of range 1970-9999");
	bad("2026-13-01T00:00Z",
	    "bad timestamp '2026-13-01T00:00Z': month 13 is out of range 01-12");
	bad("2026-00-01T00:00Z", NULL);
	bad("2026-02-29T00:00:00Z",
	    "bad timestamp '2026-02-29T00:00:00Z': day 29 does not exist in 2026-02 (01-28)");
	bad("2100-02-29T00:00:00Z", NULL);
	bad("2026-04-31T00:00:00Z", NULL);
	bad("2026-04-00T00:00:00Z", NULL);
	bad("2026-11-26X13:00Z", "bad timestamp '2026-11-26X13:00Z': expected 'T' or a space "
	                         "between the date and the time");
	bad("2026-11-26T1:00Z", "bad timestamp '2026-11-26T1:00Z': expected a time as HH:MM or "
	                        "HH:MM:SS");
	bad("2026-11-26T13Z", NULL);
	bad("2026-11-26T13:00:5Z", "bad timestamp '2026-11-26T13:00:5Z': expected two digits of "
	                           "seconds after HH:MM:");
	bad("2026-11-26T24:00:00Z", "bad timestamp '2026-11-26T24:00:00Z': time 24:00:00 is out "
	                            "of range 00:00:00-23:59:59");
	bad("2026-11-26T13:60Z", NULL);
	bad("2026-11-26T13:00:60Z", NULL);
	bad("2026-11-26T13:00:00.Z", "bad timestamp '2026-11-26T13:00:00.Z': expected digits "
	                             "after the decimal point");
	bad("2026-11-26T13:00:00Zjunk", "bad timestamp '2026-11-26T13:00:00Zjunk': unexpected "
	                                "text after 'Z'");
	bad("2026-11-26T13:00:00+0100", "bad timestamp '2026-11-26T13:00:00+0100': expected an "
	                                "offset as +HH:MM or -HH:MM at the end");
	bad("2026-11-26T13:00:00+01", NULL);
	bad("2026-11-26T13:00:00+01:00x", NULL);
	bad("2026-11-26T13:00:00+24:00", "bad timestamp '2026-11-26T13:00:00+24:00': offset "
	                                 "24:00 is out of range 00:00-23:59");
	bad("2026-11-26T13:00:00 ", "bad timestamp '2026-11-26T13:00:00 ': expected 'Z', +HH:MM "
	                            "or -HH:MM after the time, or nothing");
	bad(" 2026-11-26T13:00:00Z", NULL);
	bad("2026-11-26T13:00:00UTC", NULL);
	bad("\xff\x01", "bad timestamp '\\xff\\x01': expected a date as YYYY-MM-DD");
	bad_len(nul, sizeof(nul) - 1,
	        "bad timestamp '2026-11-26T13:00\\x00:00Z': contains a NUL "
	        "byte");
	memset(big, '9', sizeof(big));
	bad_len(big, sizeof(big),
	        "bad timestamp '999999999999999999999999': too long to be a "
	        "timestamp");
	/* Not NUL-terminated: only len bytes are read. */
	memcpy(big, "2026-11-26T13:00:00Z", 20);
	{
		time_t t = 0;

		assert_int_equal(timefmt_parse(big, 20, &t, NULL, 0), 0);
		assert_int_equal(t, 1795698000);
	}
}

static void test_format(void **state)
{
	char buf[TIMEFMT_LEN];

	(void)state;
	assert_int_equal(timefmt_format(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(timefmt_format(1795698000, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-26T13:00:00Z");
	assert_int_equal(timefmt_format(-1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	assert_int_equal(timefmt_format(utc(2028, 2, 29, 23, 59, 59), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2028-02-29T23:59:59Z");
	assert_int_equal(timefmt_format((time_t)253402300799, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9999-12-31T23:59:59Z");
	assert_int_equal(timefmt_format((time_t)253402300800, buf, sizeof(buf)), -ERANGE);
	assert_string_equal(buf, "");
	assert_int_equal(timefmt_format((time_t)-62167219201, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(timefmt_format((time_t)-62167219200, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0000-01-01T00:00:00Z");
	assert_int_equal(timefmt_format(INT64_MIN, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(timefmt_format(INT64_MAX, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(timefmt_format(0, buf, TIMEFMT_LEN - 1), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(timefmt_format(0, buf, 0), -ENOSPC);
}

/* Format then parse gives the instant back, over many instants. */
static void test_roundtrip(void **state)
{
	char buf[TIMEFMT_LEN];
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		time_t t, back = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		t = (time_t)(x % 253402300800ULL);
		assert_int_equal(timefmt_format(t, buf, sizeof(buf)), 0);
		assert_int_equal(timefmt_parse(buf, strlen(buf), &back, NULL, 0), 0);
		assert_int_equal(back, t);
	}
}

/* The calendar arithmetic agrees with the C library, day by day. */
static void test_calendar(void **state)
{
	(void)state;
	for (int64_t days = -800000; days <= 3000000; days += 37) {
		time_t t = (time_t)(days * 86400);
		struct tm tm;
		int64_t y;
		int m, d;

		assert_non_null(gmtime_r(&t, &tm));
		timefmt_civil_from_days(days, &y, &m, &d);
		assert_int_equal(y, tm.tm_year + 1900);
		assert_int_equal(m, tm.tm_mon + 1);
		assert_int_equal(d, tm.tm_mday);
		assert_int_equal(timefmt_days_from_civil(y, m, d), days);
	}
	assert_int_equal(timefmt_days_in_month(2028, 2), 29);
	assert_int_equal(timefmt_days_in_month(2100, 2), 28);
	assert_int_equal(timefmt_days_in_month(2000, 2), 29);
	assert_int_equal(timefmt_days_in_month(2026, 4), 30);
	assert_int_equal(timefmt_days_in_month(2026, 12), 31);
	assert_int_equal(timefmt_days_in_month(2026, 13), 0);
	assert_int_equal(timefmt_days_in_month(2026, 0), 0);
}

static void test_local(void **state)
{
	time_t when[2] = {0, 0}, gap = 0;
	int64_t c;

	(void)state;
	set_tz("Europe/Paris");
	/* A plain time: once. */
	c = (int64_t)utc(2026, 6, 1, 12, 0, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 1);
	assert_int_equal(when[0], utc(2026, 6, 1, 10, 0, 0));
	/* In the gap: never; the gap ends at 01:00 UTC. */
	c = (int64_t)utc(2026, 3, 29, 2, 30, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 0);
	assert_int_equal(gap, utc(2026, 3, 29, 1, 0, 0));
	c = (int64_t)utc(2026, 3, 29, 2, 0, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 0);
	assert_int_equal(gap, utc(2026, 3, 29, 1, 0, 0));
	assert_int_equal(timefmt_local(c, when, NULL), 0);
	/* In the repeated hour: twice, in order. */
	c = (int64_t)utc(2026, 10, 25, 2, 30, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 2);
	assert_int_equal(when[0], utc(2026, 10, 25, 0, 30, 0));
	assert_int_equal(when[1], utc(2026, 10, 25, 1, 30, 0));
	/* Lord Howe Island moves by 30 minutes. */
	set_tz("Australia/Lord_Howe");
	c = (int64_t)utc(2026, 10, 4, 2, 15, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 0);
	assert_int_equal(gap, utc(2026, 10, 3, 15, 30, 0));
	c = (int64_t)utc(2026, 4, 5, 1, 45, 0);
	assert_int_equal(timefmt_local(c, when, &gap), 2);
	assert_int_equal(when[1] - when[0], 1800);
	/* Out of range. */
	assert_int_equal(timefmt_local(TIMEFMT_CIVIL_MAX + 1, when, &gap), -ERANGE);
	assert_int_equal(timefmt_local(TIMEFMT_CIVIL_MIN - 1, when, &gap), -ERANGE);
	assert_true(timefmt_local(TIMEFMT_CIVIL_MAX, when, &gap) >= 0);
	assert_true(timefmt_local(TIMEFMT_CIVIL_MIN, when, &gap) >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_utc),    cmocka_unit_test(test_parse_local),
	    cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_format),
	    cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_calendar),
	    cmocka_unit_test(test_local),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
