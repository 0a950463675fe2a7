/* Unit tests for parse.c: every accepted form, every rejected form, every boundary. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

typedef int (*parse_fn)(const char *, uint64_t, uint64_t, uint64_t *, const char **);

/* Expects fn(s) over the full range to succeed with want. */
static void ok(parse_fn fn, const char *s, uint64_t want)
{
	uint64_t v = 12345;
	const char *err = NULL;
	int rc = fn(s, 0, UINT64_MAX, &v, &err);

	if (rc != 0 || v != want)
		fail_msg("\"%s\": rc %d (%s), got %llu, want %llu", s, rc, err ? err : "-",
		         (unsigned long long)v, (unsigned long long)want);
}

/* Expects fn(s) in [min, max] to fail with code and reason, leaving the output alone. */
static void bad(parse_fn fn, const char *s, uint64_t min, uint64_t max, int code,
                const char *reason)
{
	uint64_t v = 12345;
	const char *err = NULL;
	int rc = fn(s, min, max, &v, &err);

	if (rc != code)
		fail_msg("\"%s\": rc %d, want %d", s ? s : "(null)", rc, code);
	assert_non_null(err);
	assert_string_equal(err, reason);
	assert_int_equal(v, 12345);
	/* err may be NULL. */
	assert_int_equal(fn(s, min, max, &v, NULL), code);
}

static void bad_nan(parse_fn fn, const char *s)
{
	bad(fn, s, 0, UINT64_MAX, -EINVAL, "not a number");
}

static void test_uint_ok(void **state)
{
	(void)state;
	ok(parse_uint, "0", 0);
	ok(parse_uint, "1", 1);
	ok(parse_uint, "007", 7);
	ok(parse_uint, "4294967296", 4294967296ULL);
	ok(parse_uint, "18446744073709551615", UINT64_MAX);
	ok(parse_uint, "000000000000000000000000000018446744073709551615", UINT64_MAX);
}

static void test_uint_bad(void **state)
{
	(void)state;
	bad_nan(parse_uint, NULL);
	bad_nan(parse_uint, "");
	bad_nan(parse_uint, " 1");
	bad_nan(parse_uint, "1 ");
	bad_nan(parse_uint, "+1");
	bad_nan(parse_uint, "-1");
	bad_nan(parse_uint, "-0");
	bad_nan(parse_uint, "0x10");
	bad_nan(parse_uint, "1.5");
	bad_nan(parse_uint, "1k");
	bad_nan(parse_uint, "12abc");
	bad_nan(parse_uint, "abc");
	bad_nan(parse_uint, "1\n");
	bad_nan(parse_uint, "1e3");
	/* Overflow by one, and far beyond 64 bits. */
	bad(parse_uint, "18446744073709551616", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_uint, "99999999999999999999999999999", 0, UINT64_MAX, -ERANGE, "too large");
	/* A junk suffix is "not a number" even after an overflowing number. */
	bad_nan(parse_uint, "99999999999999999999999999999x");
}

static void test_uint_range(void **state)
{
	uint64_t v = 0;

	(void)state;
	bad(parse_uint, "9", 10, 20, -ERANGE, "too small");
	bad(parse_uint, "21", 10, 20, -ERANGE, "too large");
	assert_int_equal(parse_uint("10", 10, 20, &v, NULL), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("20", 10, 20, &v, NULL), 0);
	assert_int_equal(v, 20);
	assert_int_equal(parse_uint("5", 5, 5, &v, NULL), 0);
	assert_int_equal(v, 5);
	bad(parse_uint, "0", 1, UINT64_MAX, -ERANGE, "too small");
	bad(parse_uint, "65536", 0, 65535, -ERANGE, "too large");
}

static void test_size(void **state)
{
	(void)state;
	ok(parse_size, "0", 0);
	ok(parse_size, "512", 512);
	ok(parse_size, "1K", 1024);
	ok(parse_size, "1k", 1024);
	ok(parse_size, "1KiB", 1024);
	ok(parse_size, "1kib", 1024);
	ok(parse_size, "1M", 1048576);
	ok(parse_size, "1MiB", 1048576);
	ok(parse_size, "64m", 64ULL << 20);
	ok(parse_size, "3G", 3ULL << 30);
	ok(parse_size, "2GiB", 2ULL << 30);
	ok(parse_size, "1T", 1ULL << 40);
	ok(parse_size, "1TiB", 1ULL << 40);
	ok(parse_size, "16777215T", 16777215ULL << 40);
	ok(parse_size, "0G", 0);
	bad(parse_size, "16777216T", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_size, "18446744073709551616", 0, UINT64_MAX, -ERANGE, "too large");
	bad_nan(parse_size, "");
	bad_nan(parse_size, "M");
	bad_nan(parse_size, "1.5M");
	bad_nan(parse_size, "1 M");
	bad_nan(parse_size, "1MB");
	bad_nan(parse_size, "1Mi");
	bad_nan(parse_size, "1P");
	bad_nan(parse_size, "1KK");
	bad_nan(parse_size, "1M ");
	bad_nan(parse_size, "-1M");
	bad(parse_size, "1M", 2 << 20, 4 << 20, -ERANGE, "too small");
	bad(parse_size, "5M", 2 << 20, 4 << 20, -ERANGE, "too large");
}

static void test_rate(void **state)
{
	(void)state;
	ok(parse_rate, "0", 0);
	ok(parse_rate, "1000", 1000);
	ok(parse_rate, "900M", 900000000);
	ok(parse_rate, "900m", 900000000);
	ok(parse_rate, "900Mbit", 900000000);
	ok(parse_rate, "900Mbps", 900000000);
	ok(parse_rate, "900Mb/s", 900000000);
	ok(parse_rate, "900MBPS", 900000000);
	ok(parse_rate, "1.5G", 1500000000);
	ok(parse_rate, "1.5g", 1500000000);
	ok(parse_rate, "10k", 10000);
	ok(parse_rate, "10K", 10000);
	ok(parse_rate, "2.25k", 2250);
	ok(parse_rate, "100bps", 100);
	ok(parse_rate, "100bit", 100);
	ok(parse_rate, "0.5M", 500000);
	ok(parse_rate, "1.000000001G", 1000000001);
	/* Below one bit per second is truncated, whatever the number of digits. */
	ok(parse_rate, "1.0005k", 1000);
	ok(parse_rate, "1.5", 1);
	ok(parse_rate, "1.99999999999999999999999999", 1);
	ok(parse_rate, "18446744073709551615", UINT64_MAX);
	ok(parse_rate, "18446744073G", 18446744073000000000ULL);
	bad(parse_rate, "18446744074G", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_rate, "18446744073.709551616G", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_rate, "18446744073709551616", 0, UINT64_MAX, -ERANGE, "too large");
	bad_nan(parse_rate, "");
	bad_nan(parse_rate, "G");
	bad_nan(parse_rate, ".5G");
	bad_nan(parse_rate, "1.G");
	bad_nan(parse_rate, "1..5G");
	bad_nan(parse_rate, "1.5.5G");
	bad_nan(parse_rate, "1,5G");
	bad_nan(parse_rate, "900MiB");
	bad_nan(parse_rate, "900Mb");
	bad_nan(parse_rate, "900T");
	bad_nan(parse_rate, "900 M");
	bad_nan(parse_rate, "900Mbps ");
	bad_nan(parse_rate, "-900M");
	bad(parse_rate, "999k", 1000000, 10000000000ULL, -ERANGE, "too small");
	bad(parse_rate, "10.5G", 1000000, 10000000000ULL, -ERANGE, "too large");
}

static void test_duration(void **state)
{
	(void)state;
	ok(parse_duration_ms, "30", 30000);
	ok(parse_duration_ms, "0", 0);
	ok(parse_duration_ms, "1.5", 1500);
	ok(parse_duration_ms, "1.5s", 1500);
	ok(parse_duration_ms, "200ms", 200);
	ok(parse_duration_ms, "2m", 120000);
	ok(parse_duration_ms, "1.5m", 90000);
	ok(parse_duration_ms, "1h", 3600000);
	ok(parse_duration_ms, "0.25h", 900000);
	ok(parse_duration_ms, "10S", 10000);
	ok(parse_duration_ms, "0.001", 1);
	ok(parse_duration_ms, "0.0009", 0);
	ok(parse_duration_ms, "1.9ms", 1);
	ok(parse_duration_ms, "18446744073709551615ms", UINT64_MAX);
	bad(parse_duration_ms, "18446744073709552s", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_duration_ms, "18446744073709552", 0, UINT64_MAX, -ERANGE, "too large");
	bad(parse_duration_ms, "5124095576030432h", 0, UINT64_MAX, -ERANGE, "too large");
	bad_nan(parse_duration_ms, "");
	bad_nan(parse_duration_ms, "s");
	bad_nan(parse_duration_ms, "ms");
	bad_nan(parse_duration_ms, "1d");
	bad_nan(parse_duration_ms, "1sec");
	bad_nan(parse_duration_ms, "1 s");
	bad_nan(parse_duration_ms, "1s2");
	bad_nan(parse_duration_ms, "1m30s");
	bad_nan(parse_duration_ms, "-1s");
	bad_nan(parse_duration_ms, "1.s");
	bad(parse_duration_ms, "99ms", 100, 60000, -ERANGE, "too small");
	bad(parse_duration_ms, "61", 100, 60000, -ERANGE, "too large");
	bad(parse_duration_ms, "1.0001m", 100, 60000, -ERANGE, "too large");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uint_ok),    cmocka_unit_test(test_uint_bad),
	    cmocka_unit_test(test_uint_range), cmocka_unit_test(test_size),
	    cmocka_unit_test(test_rate),       cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
