/*
 * Unit tests for cron.c: the accepted syntax and its bits, every macro,
 * every error message kind, hostile input, the canonical spelling, and
 * cron_next() across leap years and the daylight-saving changes of Paris,
 * New York and Lord Howe Island (a 30-minute change), checked against a
 * minute-by-minute walk of real time.
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

#include "cron.h"

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

static struct cron parse_ok(const char *s)
{
	struct cron c;
	char err[CRON_ERR_MAX] = "";
	int rc = cron_parse(s, strlen(s), &c, err, sizeof(err));

	if (rc != 0)
		fail_msg("\"%s\": rc %d: %s", s, rc, err);
	assert_string_equal(err, "");
	return c;
}

/* Expects s to be rejected with exactly the message want, leaving the output alone. */
static void parse_bad_len(const char *s, size_t len, const char *want)
{
	struct cron c, before;
	char err[CRON_ERR_MAX];
	int rc;

	memset(&c, 0xa5, sizeof(c));
	before = c;
	rc = cron_parse(s, len, &c, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("\"%.*s\": rc %d, want -EINVAL", (int)(len < 80 ? len : 80), s, rc);
	if (want != NULL && strcmp(err, want) != 0)
		fail_msg("\"%.*s\": error \"%s\", want \"%s\"", (int)(len < 80 ? len : 80), s, err,
		         want);
	assert_true(err[0] != '\0');
	assert_memory_equal(&c, &before, sizeof(c));
	/* err may be NULL, or too small: still an error, never an overflow. */
	assert_int_equal(cron_parse(s, len, &c, NULL, 0), -EINVAL);
	assert_int_equal(cron_parse(s, len, &c, err, 4), -EINVAL);
	assert_true(strlen(err) <= 3);
}

static void parse_bad(const char *s, const char *want)
{
	parse_bad_len(s, strlen(s), want);
}

static uint64_t bits(const unsigned *v, size_t n)
{
	uint64_t b = 0;

	for (size_t i = 0; i < n; i++)
		b |= 1ULL << v[i];
	return b;
}

#define BITS(...)                                                                                  \
	bits((const unsigned[]){__VA_ARGS__}, sizeof((unsigned[]){__VA_ARGS__}) / sizeof(unsigned))

static void test_parse_fields(void **state)
{
	struct cron c;

	(void)state;
	c = parse_ok("* * * * *");
	assert_true(c.minute == (1ULL << 60) - 1);
	assert_int_equal(c.hour, (1u << 24) - 1);
	assert_int_equal(c.dom, 0xfffffffeu);
	assert_int_equal(c.month, 0x1ffe);
	assert_int_equal(c.dow, 0x7f);
	assert_int_equal(c.flags, CRON_MIN_STAR | CRON_HOUR_STAR | CRON_DOM_STAR | CRON_DOW_STAR);

	c = parse_ok("*/15 1-23/2 1-30/2 */3 1-5");
	assert_true(c.minute == BITS(0, 15, 30, 45));
	assert_true(c.hour == BITS(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23));
	assert_true(c.dom == BITS(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29));
	assert_true(parse_ok("0 0 1,15,31 * *").dom == BITS(1, 15, 31));
	assert_true(c.month == BITS(1, 4, 7, 10));
	assert_true(c.dow == BITS(1, 2, 3, 4, 5));
	assert_int_equal(c.flags, CRON_MIN_STAR);

	/* Names, any case; 7 and 0 are Sunday; a range may end on Sunday. */
	c = parse_ok("0 0 * JAN,jun-Aug sun");
	assert_true(c.month == BITS(1, 6, 7, 8));
	assert_true(c.dow == BITS(0));
	assert_int_equal(parse_ok("0 0 * * 7").dow, BITS(0));
	assert_int_equal(parse_ok("0 0 * * 5-7").dow, BITS(0, 5, 6));
	assert_int_equal(parse_ok("0 0 * * fri-sun").dow, BITS(0, 5, 6));
	assert_int_equal(parse_ok("0 0 * * 5-0").dow, BITS(0, 5, 6));
	assert_int_equal(parse_ok("0 0 * * SAT-sun").dow, BITS(0, 6));
	assert_int_equal(parse_ok("0 0 * * 0-7").dow, 0x7f);
	assert_int_equal(parse_ok("0 0 * * */2").dow, BITS(0, 2, 4, 6));
	assert_int_equal(parse_ok("0 0 * * mon/2").dow, BITS(1, 3, 5, 0));

	/* "N/S" runs to the end of the field; a step bigger than the span is allowed. */
	assert_true(parse_ok("5/20 * * * *").minute == BITS(5, 25, 45));
	assert_true(parse_ok("*/59 * * * *").minute == BITS(0, 59));
	assert_true(parse_ok("0-59/30,7 * * * *").minute == BITS(0, 7, 30));

	/* Blanks: tabs and runs of them, leading and trailing. */
	c = parse_ok(" \t0\t\t12  *  * \t* \t");
	assert_true(c.minute == 1);
	assert_true(c.hour == BITS(12));
	/* Leading zeros are still numbers. */
	assert_true(parse_ok("007 00 01 012 00 ").minute == BITS(7));

	/* Only a field that begins with '*' carries the flag (Vixie cron's rule). */
	assert_int_equal(parse_ok("0-59 0-23 1-31 * 0-6").flags, 0);
	assert_int_equal(parse_ok("1,*/5 * 1 * 1").flags, CRON_HOUR_STAR);
	assert_int_equal(parse_ok("0 0 */2 * 1").flags, CRON_DOM_STAR);
}

static void test_macros(void **state)
{
	static const char *const m[][2] = {
	    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
	    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
	    {"@annually", "0 0 1 1 *"}, {"@DAILY", "0 0 * * *"},   {" @Weekly\t", "0 0 * * 0"},
	};
	char buf[CRON_FORMAT_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct cron a = parse_ok(m[i][0]), b = parse_ok(m[i][1]);

		assert_memory_equal(&a, &b, sizeof(a));
		assert_int_equal(cron_format(&a, buf, sizeof(buf)), 0);
		assert_string_equal(buf, m[i][1]);
	}
	parse_bad("@reboot", "unknown macro '@reboot' (known: @hourly @daily @midnight @weekly "
	                     "@monthly @yearly @annually)");
	parse_bad("@", NULL);
	parse_bad("@daily 5", "@daily takes no fields after it");
	parse_bad("@dailyx", NULL);
}

static void test_errors(void **state)
{
	(void)state;
	parse_bad("0 0 * * 8", "day-of-week: '8' is out of range 0-7");
	parse_bad("60 * * * *", "minute: '60' is out of range 0-59");
	parse_bad("* 24 * * *", "hour: '24' is out of range 0-23");
	parse_bad("* * 0 * *", "day-of-month: '0' is out of range 1-31");
	parse_bad("* * 32 * *", "day-of-month: '32' is out of range 1-31");
	parse_bad("* * * 13 *", "month: '13' is out of range 1-12");
	parse_bad("* * * 0 *", "month: '0' is out of range 1-12");
	parse_bad("* * * foo *", "month: 'foo' is not a month (1-12 or jan-dec)");
	parse_bad("* * * january *", "month: 'january' is not a month (1-12 or jan-dec)");
	parse_bad("* * * * monday",
	          "day-of-week: 'monday' is not a day of the week (0-7 or sun-sat)");
	parse_bad("* * jan * *", "day-of-month: 'jan' is not a number");
	parse_bad("x * * * *", "minute: 'x' is not a number");
	parse_bad("+5 * * * *", "minute: '+5' is not a number");
	parse_bad("*/0 * * * *", "minute: step '0' is out of range 1-59");
	parse_bad("*/60 * * * *", "minute: step '60' is out of range 1-59");
	parse_bad("* * * */12 *", "month: step '12' is out of range 1-11");
	parse_bad("*/ * * * *", "minute: '*/' needs a number after '/'");
	parse_bad("1/2/3 * * * *", "minute: '1/2/3' needs a number after '/'");
	parse_bad("*/x * * * *", "minute: '*/x' needs a number after '/'");
	parse_bad("30-10 * * * *", "minute: '30-10' is a backward range (start after end)");
	parse_bad("* * * * sat-mon",
	          "day-of-week: 'sat-mon' is a backward range (start after end)");
	parse_bad("-5 * * * *", "minute: '-5' lacks the start of its range");
	parse_bad("5- * * * *", "minute: '5-' lacks the end of its range");
	parse_bad("5-/2 * * * *", "minute: '5-/2' lacks the end of its range");
	parse_bad("1-2-3 * * * *", "minute: '2-3' is not a number");
	parse_bad("*-5 * * * *", "minute: '*' is not a number");
	parse_bad("1,,2 * * * *",
	          "minute: '' is an empty list element (two commas, or one at an end)");
	parse_bad("1, * * * *",
	          "minute: '' is an empty list element (two commas, or one at an end)");
	parse_bad(",1 * * * *",
	          "minute: '' is an empty list element (two commas, or one at an end)");
	parse_bad("* * * *",
	          "expected 5 fields (minute hour day-of-month month day-of-week), found 4");
	parse_bad("* * * * * /bin/true",
	          "expected 5 fields (minute hour day-of-month month day-of-week), found 6");
	parse_bad("", "empty expression (expected 5 fields or a macro such as @daily)");
	parse_bad(" \t ", "empty expression (expected 5 fields or a macro such as @daily)");
	parse_bad_len(NULL, 0, "empty expression (expected 5 fields or a macro such as @daily)");
	/* A newline is not a blank: it stays in the token and is escaped in the message. */
	parse_bad("0 0 * * *\n", "day-of-week: '*\\x0a' is not a day of the week (0-7 or sun-sat)");
}

static void test_hostile(void **state)
{
	static const char nul[] = "0 0\0 * * *";
	char *big;
	char err[CRON_ERR_MAX];
	struct cron c;

	(void)state;
	parse_bad("99999999999999999999999999999999 * * * *",
	          "minute: '999999999999999999999999...' is out of range 0-59");
	parse_bad("18446744073709551616 * * * *",
	          "minute: '18446744073709551616' is out of range 0-59");
	parse_bad("*/99999999999999999999999 * * * *",
	          "minute: step '99999999999999999999999' is out of range 1-59");
	parse_bad("1-99999999999 * * * *", "minute: '99999999999' is out of range 0-59");
	parse_bad_len(nul, sizeof(nul) - 1, "expression contains a NUL byte");
	parse_bad("\xff\xfe * * * *", "minute: '\\xff\\xfe' is not a number");

	/* 10 000 commas: too long, said so, nothing read past the end. */
	big = malloc(10001);
	assert_non_null(big);
	memset(big, ',', 10000);
	big[10000] = '\0';
	parse_bad(big, "expression is too long (10000 bytes, at most 1024)");
	/* Within the limit: a list of 1000 commas is an empty element. */
	memcpy(big, "1", 1);
	parse_bad_len(big, 1000,
	              "expected 5 fields (minute hour day-of-month month day-of-week), "
	              "found 1");
	memcpy(big + 1000, " * * * *", 8);
	parse_bad_len(big, 1008,
	              "minute: '' is an empty list element (two commas, or one at an end)");
	/* The longest text accepted, a long but valid list. */
	for (size_t i = 0; i < 1014; i += 2)
		memcpy(big + i, "1,", 2);
	memcpy(big + 1014, "1 * * * *", 9);
	assert_int_equal(cron_parse(big, 1023, &c, err, sizeof(err)), 0);
	assert_true(c.minute == 2);
	/* Not NUL-terminated: only len bytes are read. */
	memcpy(big, "5 4 3 2 1xxxxx", 14);
	assert_int_equal(cron_parse(big, 9, &c, err, sizeof(err)), 0);
	assert_true(c.minute == BITS(5) && c.dow == BITS(1));
	free(big);
}

static void format_is(const char *in, const char *want)
{
	struct cron c = parse_ok(in), back;
	char buf[CRON_FORMAT_MAX];

	assert_int_equal(cron_format(&c, buf, sizeof(buf)), 0);
	if (strcmp(buf, want) != 0)
		fail_msg("\"%s\": formatted \"%s\", want \"%s\"", in, buf, want);
	back = parse_ok(buf);
	assert_memory_equal(&c, &back, sizeof(c));
}

static void test_format(void **state)
{
	char buf[CRON_FORMAT_MAX];
	struct cron c;

	(void)state;
	format_is("* * * * *", "* * * * *");
	format_is("*/15 8-18 * * Mon-Fri", "*/15 8-18 * * 1-5");
	format_is("0,15,30,45 08-18 * jan-dec 1,2,3,4,5", "0-45/15 8-18 * * 1-5");
	format_is("0-59 0-23 1-31 1-12 0-7", "0-59 0-23 1-31 * 0-6");
	format_is("1-30/2 * * * *", "1-29/2 * * * *");
	format_is("*/20,7 * * * *", "*/20,7 * * * *");
	format_is("*/10,5-7 * * * *", "*/10,5-7 * * * *");
	format_is("1,*/5 * * * *", "0,1,5,10,15,20,25,30,35,40,45,50,55 * * * *");
	format_is("1,2 * * * *", "1,2 * * * *");
	format_is("1,2,3,5 * * * *", "1-3,5 * * * *");
	format_is("0 0 * */3 *", "0 0 * */3 *");
	format_is("0 0 * 1-12/3 *", "0 0 * */3 *");
	format_is("0 0 * 2-12/3 *", "0 0 * 2-11/3 *");
	format_is("0 0 * * sat,sun", "0 0 * * 0,6");
	format_is("0 0 * * */7", "0 0 * * */7");
	format_is("0 0 * * 7", "0 0 * * 0");
	format_is("0 0 */2 * 1", "0 0 */2 * 1");
	format_is("0 0 1-31/2 * 1", "0 0 1-31/2 * 1");
	format_is("*/59 * * * *", "*/59 * * * *");
	/* The longest spelling: every other value in every field. */
	format_is("*/2,1,5,9,13,17,21,25,29,33,37,41,45,49,53,57 * * * *",
	          "*/2,1,5,9,13,17,21,25,29,33,37,41,45,49,53,57 * * * *");
	format_is("0,2,3,5,6,8,9,11,12,14,15,17,18,20,21,23,24,26,27,29,30,32,33,35,36,38,39,41,"
	          "42,44,45,47,48,50,51,53,54,56,57,59 * * * *",
	          "0,2,3,5,6,8,9,11,12,14,15,17,18,20,21,23,24,26,27,29,30,32,33,35,36,38,39,41,"
	          "42,44,45,47,48,50,51,53,54,56,57,59 * * * *");

	/* A small buffer is -ENOSPC with an empty string, never a cut one. */
	c = parse_ok("*/15 8-18 * * 1-5");
	assert_int_equal(cron_format(&c, buf, 10), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(cron_format(&c, buf, strlen("*/15 8-18 * * 1-5")), -ENOSPC);
	assert_int_equal(cron_format(&c, buf, strlen("*/15 8-18 * * 1-5") + 1), 0);
	assert_int_equal(cron_format(&c, buf, 0), -ENOSPC);
	/* A hand-made struct with an empty field cannot be written. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(cron_format(&c, buf, sizeof(buf)), -ENOSPC);
}

/* The worst case fits CRON_FORMAT_MAX: every other value, no step applies. */
static void test_format_bound(void **state)
{
	struct cron c;
	char buf[CRON_FORMAT_MAX];

	(void)state;
	memset(&c, 0, sizeof(c));
	for (unsigned v = 0; v < 60; v += 3)
		c.minute |= 3ULL << v;
	c.hour = 0x555555 ^ 0x400000;
	c.dom = 0x2aaaaaaa ^ 0x2;
	c.month = 0x1554;
	c.dow = 0x2a;
	assert_int_equal(cron_format(&c, buf, sizeof(buf)), 0);
	assert_true(strlen(buf) < CRON_FORMAT_MAX / 2);
}

static void next_is(const char *expr, time_t after, time_t want)
{
	struct cron c = parse_ok(expr);
	time_t got = 0;
	int rc = cron_next(&c, after, &got);

	if (rc != 0 || got != want)
		fail_msg("\"%s\" after %lld: rc %d, got %lld, want %lld", expr, (long long)after,
		         rc, (long long)got, (long long)want);
}

static void test_next_utc(void **state)
{
	struct cron c;
	time_t t;

	(void)state;
	set_tz("UTC");
	next_is("* * * * *", utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 1));
	/* Strictly after, and from any second within a minute. */
	next_is("* * * * *", utc(2026, 1, 1, 0, 0) + 59, utc(2026, 1, 1, 0, 1));
	next_is("*/15 * * * *", utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 0, 30));
	next_is("0 0 * * *", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1, 0, 0));
	next_is("@hourly", utc(2026, 5, 5, 5, 5), utc(2026, 5, 5, 6, 0));
	next_is("@weekly", utc(2026, 11, 26, 12, 0), utc(2026, 11, 29, 0, 0));
	next_is("@monthly", utc(2026, 11, 26, 12, 0), utc(2026, 12, 1, 0, 0));
	next_is("@yearly", utc(2026, 11, 26, 12, 0), utc(2027, 1, 1, 0, 0));
	/* The 31st skips short months. */
	next_is("0 12 31 * *", utc(2026, 3, 31, 12, 0), utc(2026, 5, 31, 12, 0));
	/* Leap years: 29 February 2028, and across 2100, which is not one. */
	next_is("0 0 29 2 *", utc(2026, 1, 1, 0, 0), utc(2028, 2, 29, 0, 0));
	next_is("0 0 29 2 *", utc(2096, 2, 29, 0, 0), utc(2104, 2, 29, 0, 0));
	next_is("0 0 29 2 *", utc(2000, 1, 1, 0, 0), utc(2000, 2, 29, 0, 0));
	next_is("59 23 28 2 *", utc(2100, 2, 28, 23, 58), utc(2100, 2, 28, 23, 59));
	/* Never: 30 February, 31 April. */
	c = parse_ok("0 0 30 2 *");
	assert_int_equal(cron_next(&c, utc(2026, 1, 1, 0, 0), &t), -ENOENT);
	c = parse_ok("0 0 31 4,6,9,11 *");
	assert_int_equal(cron_next(&c, utc(2026, 1, 1, 0, 0), &t), -ENOENT);
	/* Either day field when both are restricted: the 13th or a Friday. */
	next_is("0 0 13 * 5", utc(2026, 11, 26, 0, 0), utc(2026, 11, 27, 0, 0));
	next_is("0 0 13 * 5", utc(2026, 11, 27, 0, 0), utc(2026, 12, 4, 0, 0));
	next_is("0 0 13 * 5", utc(2026, 12, 11, 0, 0), utc(2026, 12, 13, 0, 0));
	/* Both when one begins with '*': an odd day that is a Monday. */
	next_is("0 0 */2 * 1", utc(2026, 11, 26, 0, 0), utc(2026, 12, 7, 0, 0));
	/* Day of week only. */
	next_is("30 8 * * mon-fri", utc(2026, 11, 27, 9, 0), utc(2026, 11, 30, 8, 30));
	/* Out of range "after". */
	c = parse_ok("* * * * *");
	assert_int_equal(cron_next(&c, -1, &t), -ERANGE);
	assert_int_equal(cron_next(&c, CRON_TIME_MAX + 1, &t), -ERANGE);
	assert_int_equal(cron_next(&c, CRON_TIME_MAX, &t), 0);
	assert_int_equal(t, CRON_TIME_MAX + 60);
	c = parse_ok("0 0 30 2 *");
	assert_int_equal(cron_next(&c, CRON_TIME_MAX, &t), -ENOENT);
}

static void test_next_paris(void **state)
{
	(void)state;
	set_tz("Europe/Paris");
	/* 29 March 2026: 02:00 CET becomes 03:00 CEST at 01:00 UTC. */
	next_is("30 2 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0));
	next_is("30 2 * * *", utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30));
	next_is("0,30 2 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0));
	next_is("0,30 2 * * *", utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0));
	next_is("0 3 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0));
	next_is("59 1 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 0, 59));
	/* Wildcards skip the times that do not exist. */
	next_is("30 * * * *", utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1, 30));
	next_is("*/15 * * * *", utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 0));
	next_is("*/15 2 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 0, 0));
	/* 25 October 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC. */
	next_is("30 2 * * *", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30));
	next_is("30 2 * * *", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30));
	next_is("30 * * * *", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30));
	next_is("30 * * * *", utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30));
	/* From inside the first 02:xx, the second 02:10 comes before 03:10. */
	next_is("10 * * * *", utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 10));
	next_is("55 * * * *", utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 0, 55));
	next_is("*/20 * * * *", utc(2026, 10, 25, 0, 50), utc(2026, 10, 25, 1, 0));
	/* Local midnight, not UTC's. */
	next_is("@daily", utc(2026, 7, 1, 12, 0), utc(2026, 7, 1, 22, 0));
	next_is("@daily", utc(2026, 12, 1, 12, 0), utc(2026, 12, 1, 23, 0));
}

static void test_next_new_york(void **state)
{
	(void)state;
	set_tz("America/New_York");
	/* 8 March 2026: 02:00 EST becomes 03:00 EDT at 07:00 UTC. */
	next_is("30 2 * * *", utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 7, 0));
	next_is("30 2 * * *", utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30));
	/* 1 November 2026: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:xx twice. */
	next_is("30 1 * * *", utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 5, 30));
	next_is("30 1 * * *", utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30));
	next_is("30 * * * *", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30));
	next_is("0 9 * * mon-fri", utc(2026, 10, 30, 14, 0), utc(2026, 11, 2, 14, 0));
}

/*
 * The reference: walk real time minute by minute and apply cronie's rules
 * directly. A fixed-time expression fires at the first occurrence of a
 * matching local minute, and once when the clock jumps over matching ones;
 * a wildcard one fires at every matching local minute that occurs.
 */
static long gmtoff(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

static bool civil_matches(const struct cron *c, int64_t civ)
{
	time_t t = (time_t)civ;
	struct tm tm;

	gmtime_r(&t, &tm);
	return cron_matches(c, &tm);
}

static size_t reference(const struct cron *c, time_t from, time_t to, time_t *out, size_t max)
{
	bool fixed = !(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR));
	size_t n = 0;

	for (time_t t = from - from % 60 + 60; t <= to && n < max; t += 60) {
		int64_t civ = (int64_t)t + gmtoff(t), prev = (int64_t)(t - 60) + gmtoff(t - 60);
		bool fire = false;

		if (civil_matches(c, civ)) {
			fire = true;
			for (int k = 1; fixed && k <= 180; k++)
				if ((int64_t)(t - 60 * k) + gmtoff(t - 60 * k) == civ)
					fire = false;
		}
		for (int64_t m = prev + 60; fixed && m < civ; m += 60)
			if (civil_matches(c, m))
				fire = true;
		if (fire)
			out[n++] = t;
	}
	return n;
}

static void compare_window(const char *tz, const char *expr, time_t from, time_t to)
{
	static time_t ref[8192];
	struct cron c = parse_ok(expr);
	size_t n = reference(&c, from, to, ref, sizeof(ref) / sizeof(ref[0])), i = 0;
	time_t t = from, next;

	/* The chain of cron_next() is the reference's list. */
	for (;;) {
		int rc = cron_next(&c, t, &next);

		assert_int_equal(rc, 0);
		if (next > to)
			break;
		if (i >= n || next != ref[i])
			fail_msg("%s \"%s\": firing %zu is %lld, reference %lld", tz, expr, i,
			         (long long)next, i < n ? (long long)ref[i] : -1LL);
		t = next;
		i++;
	}
	if (i != n)
		fail_msg("%s \"%s\": %zu firings, reference %zu", tz, expr, i, n);
	/* And from arbitrary instants, not just from firings. */
	for (time_t a = from; a < to - 86400; a += 7 * 60 + 13) {
		size_t k = 0;

		while (k < n && ref[k] <= a)
			k++;
		if (k == n)
			break;
		assert_int_equal(cron_next(&c, a, &next), 0);
		if (next != ref[k])
			fail_msg("%s \"%s\" after %lld: %lld, reference %lld", tz, expr,
			         (long long)a, (long long)next, (long long)ref[k]);
	}
}

static void test_next_reference(void **state)
{
	static const char *const zones[] = {"Europe/Paris", "America/New_York",
	                                    "Australia/Lord_Howe", "UTC"};
	static const char *const exprs[] = {
	    "30 2 * * *",      "0,30 2 * * *",  "30 * * * *",   "*/15 * * * *",
	    "0 * * * *",       "*/7 2-3 * * *", "45 1 * * *",   "15 2 * * 0",
	    "0-59 2 * * *",    "0 3 * * *",     "30 0-4 * * *", "*/20 1,2,3 * * *",
	    "10,40 1-3 * * *", "0 2 * * 1-5",   "@daily",       "* 2 * * *",
	};

	(void)state;
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		time_t t = utc(2026, 1, 1, 0, 0), end = utc(2027, 1, 1, 0, 0);
		long off;

		set_tz(zones[z]);
		off = gmtoff(t);
		/* Find each change of offset in 2026 and compare three days around it. */
		for (; t < end; t += 1800) {
			if (gmtoff(t) == off)
				continue;
			off = gmtoff(t);
			for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++)
				compare_window(zones[z], exprs[e], t - 36 * 3600, t + 36 * 3600);
		}
		/* And a quiet stretch, in every zone. */
		compare_window(zones[z], "*/15 2 * * *", utc(2026, 6, 1, 0, 0),
		               utc(2026, 6, 4, 0, 0));
	}
}

static void test_matches(void **state)
{
	struct cron c = parse_ok("30 8 13 * 5");
	struct tm tm = {.tm_min = 30, .tm_hour = 8, .tm_mday = 13, .tm_mon = 10, .tm_wday = 3};

	(void)state;
	assert_true(cron_matches(&c, &tm));
	tm.tm_mday = 12;
	assert_false(cron_matches(&c, &tm));
	tm.tm_wday = 5;
	assert_true(cron_matches(&c, &tm));
	tm.tm_min = 31;
	assert_false(cron_matches(&c, &tm));
	tm.tm_min = 99;
	assert_false(cron_matches(&c, &tm));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_fields),  cmocka_unit_test(test_macros),
	    cmocka_unit_test(test_errors),        cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_format),        cmocka_unit_test(test_format_bound),
	    cmocka_unit_test(test_next_utc),      cmocka_unit_test(test_next_paris),
	    cmocka_unit_test(test_next_new_york), cmocka_unit_test(test_next_reference),
	    cmocka_unit_test(test_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
