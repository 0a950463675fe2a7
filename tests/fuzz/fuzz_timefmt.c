/*
 * libFuzzer harness for timefmt_parse() and timefmt_format(). Beyond "no
 * crash", it checks the contracts: an error has a message and leaves the
 * output alone; a parsed instant formats, and the formatted text parses
 * back to the same instant; and timefmt_local() gives instants whose local
 * time is the civil time asked for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static int64_t civil_of(time_t t)
{
	struct tm tm;

	check(localtime_r(&t, &tm) != NULL);
	return (int64_t)t + tm.tm_gmtoff;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool tz_set;
	char err[TIMEFMT_ERR_MAX], buf[TIMEFMT_LEN];
	time_t t = 12345, back = 0, when[2], gap;
	int rc, n;

	if (!tz_set) {
		setenv("TZ", "America/New_York", 1);
		tzset();
		tz_set = true;
	}
	rc = timefmt_parse((const char *)data, size, &t, err, sizeof(err));
	if (rc != 0) {
		check(rc == -EINVAL);
		check(err[0] != '\0');
		check(t == 12345);
	} else {
		rc = timefmt_format(t, buf, sizeof(buf));
		check(rc == 0 || rc == -ERANGE);
		if (rc == 0) {
			check(timefmt_parse(buf, strlen(buf), &back, err, sizeof(err)) == 0);
			check(back == t);
		}
	}
	if (size >= 8) {
		int64_t c;

		memcpy(&c, data, sizeof(c));
		/* A civil time from 1969-12-31 to 9999, within the accepted range. */
		c = (int64_t)((uint64_t)c % (uint64_t)(TIMEFMT_CIVIL_MAX + 86400)) - 86400;
		n = timefmt_local(c, when, &gap);
		check(n >= 0 && n <= 2);
		for (int i = 0; i < n; i++)
			check(civil_of(when[i]) == c);
		if (n == 2)
			check(when[0] < when[1]);
		if (n == 0)
			check(civil_of(gap) > c && civil_of(gap - 1) < c);
	}
	return 0;
}
