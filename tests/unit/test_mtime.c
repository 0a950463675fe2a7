/* Unit tests for mtime.c: monotonic, consistent units, tracks a real sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "mtime.h"

static void test_monotonic(void **state)
{
	uint64_t prev = mtime_ns();

	(void)state;
	assert_true(prev > 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t now = mtime_ns();

		assert_true(now >= prev);
		prev = now;
	}
}

/* The three units read the same clock: ns <= us*1000 <= ms*1e6 never goes backwards. */
static void test_units_agree(void **state)
{
	uint64_t ns, us, ms, ns2;

	(void)state;
	ns = mtime_ns();
	us = mtime_us();
	ms = mtime_ms();
	ns2 = mtime_ns();
	assert_true(us * 1000 + 999 >= ns);
	assert_true(us * 1000 <= ns2);
	assert_true(ms * 1000000 + 999999 >= ns);
	assert_true(ms * 1000000 <= ns2);
	assert_true(ms <= us / 1000 + 1);
}

static void test_sleep(void **state)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	uint64_t t0_ms = mtime_ms(), t0_us = mtime_us(), t0_ns = mtime_ns();
	uint64_t d_ns;

	(void)state;
	nanosleep(&ts, NULL);
	d_ns = mtime_ns() - t0_ns;
	assert_true(d_ns >= 50ULL * 1000 * 1000);
	/* Generous upper bound: a loaded CI machine may be slow, but not 10 s slow. */
	assert_true(d_ns < 10ULL * 1000 * 1000 * 1000);
	assert_true(mtime_us() - t0_us >= 50 * 1000);
	assert_true(mtime_ms() - t0_ms >= 49);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_monotonic),
	    cmocka_unit_test(test_units_agree),
	    cmocka_unit_test(test_sleep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
