/* Unit tests for mlctl's times (when.c): API times, local time, typed times. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mlctl.h"

static void test_parse_utc(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(when_parse_utc("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(when_parse_utc("2026-11-26T13:00:00Z", &t), 0);
	assert_int_equal(t, 1795698000);
	assert_int_equal(when_parse_utc("2024-02-29T00:00:00Z", &t), 0);
	static const char *const bad[] = {
	    "2026-11-26T13:00:00",
	    "2026-11-26 13:00:00Z",
	    "2026-11-26T13:00Z",
	    "2025-02-29T00:00:00Z",
	    "2026-00-10T00:00:00Z",
	    "2026-11-31T00:00:00Z",
	    "2026-11-26T24:00:00Z",
	    "1969-12-31T23:59:59Z",
	    "2026-11-26T13:00:00ZZ",
	    "",
	    "x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(when_parse_utc(bad[i], &t), -EINVAL);
}

static void test_local(void **state)
{
	(void)state;
	char buf[64];
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	assert_int_equal(when_local("2026-11-26T13:00:00Z", false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-26 14:00");
	assert_int_equal(when_local("2026-07-01T13:00:05Z", true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-07-01 15:00:05 CEST");
	assert_int_equal(when_local("tomorrow", false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(when_local("2026-11-26T13:00:00Z", false, buf, 5), -ENOSPC);
}

static void test_input(void **state)
{
	(void)state;
	char buf[64];
	const char *why = NULL;
	time_t now = 1795698000; /* 2026-11-26T13:00:00Z */
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	/* Typed local time goes out as UTC. */
	assert_int_equal(when_input("2026-11-26 14:00", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:00:00Z");
	assert_int_equal(when_input("2026-07-01T08:30:15", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-07-01T06:30:15Z");
	assert_int_equal(when_input("2026-11-26T14:00:00+01:00", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:00:00Z");
	assert_int_equal(when_input("2026-11-26T08:00:00-05:30", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:30:00Z");
	assert_int_equal(when_input("2026-11-26T13:00:00Z", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:00:00Z");
	assert_int_equal(when_input("+30m", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:30:00Z");
	assert_int_equal(when_input("+2h", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T15:00:00Z");
	assert_int_equal(when_input("+1d", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-27T13:00:00Z");
	assert_int_equal(when_input("+90", now, buf, sizeof(buf), &why), 0);
	assert_string_equal(buf, "2026-11-26T13:01:30Z");
	static const char *const bad[] = {
	    "",
	    "+",
	    "+d",
	    "+-1h",
	    "+1y",
	    "2026-11-26",
	    "2026-11-26 25:00",
	    "2026-11-26 14:00 CET",
	    "2026-11-26T14:00:00+1:00",
	    "2026-11-26T14:00:00+24:00",
	    "next monday",
	    "+99999d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(when_input(bad[i], now, buf, sizeof(buf), &why), -EINVAL);
		assert_non_null(why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_utc),
	    cmocka_unit_test(test_local),
	    cmocka_unit_test(test_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
