/*
 * libFuzzer harness for timewin_parse(), timewin_format() and
 * timewin_contains(). Beyond "no crash", it checks the contracts: an error
 * has a message and leaves the output alone; a parsed window is not empty,
 * formats within TIMEWIN_FORMAT_MAX, parses back to the same bits and
 * formats the same again; and timewin_contains() agrees with the bit of the
 * local minute.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timewin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct timewin w, back, before;
	static char buf[TIMEWIN_FORMAT_MAX], again[TIMEWIN_FORMAT_MAX];
	static bool tz_set;
	char err[TIMEWIN_ERR_MAX];
	bool any = false;
	int rc;

	if (!tz_set) {
		setenv("TZ", "Europe/Paris", 1);
		tzset();
		tz_set = true;
	}
	memset(&w, 0x5a, sizeof(w));
	before = w;
	rc = timewin_parse((const char *)data, size, &w, err, sizeof(err));
	if (rc != 0) {
		check(rc == -EINVAL);
		check(err[0] != '\0');
		check(memcmp(&w, &before, sizeof(w)) == 0);
		return 0;
	}
	for (size_t i = 0; i < sizeof(w.bits) / sizeof(w.bits[0]); i++)
		any |= w.bits[i] != 0;
	check(any);
	check((w.bits[TIMEWIN_MINUTES / 64] >> (TIMEWIN_MINUTES % 64)) == 0);
	check(timewin_format(&w, buf, sizeof(buf)) == 0);
	check(timewin_parse(buf, strlen(buf), &back, err, sizeof(err)) == 0);
	check(memcmp(&w, &back, sizeof(w)) == 0);
	check(timewin_format(&back, again, sizeof(again)) == 0);
	check(strcmp(buf, again) == 0);

	if (size >= 4) {
		uint32_t x;
		time_t t;
		struct tm tm;
		unsigned m;

		memcpy(&x, data, sizeof(x));
		t = (time_t)x;
		check(localtime_r(&t, &tm) != NULL);
		m = (unsigned)(tm.tm_wday * 1440 + tm.tm_hour * 60 + tm.tm_min);
		check(timewin_contains(&w, t) == (bool)((w.bits[m / 64] >> (m % 64)) & 1));
	}
	return 0;
}
