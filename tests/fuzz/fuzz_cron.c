/*
 * libFuzzer harness for cron_parse(), cron_format() and cron_next(). Beyond
 * "no crash", it checks the contracts: an error has a message and leaves the
 * output alone; a parsed expression formats within CRON_FORMAT_MAX, parses
 * back to the same struct and formats the same again; and cron_next()
 * returns a firing strictly after `after` that matches the expression (or,
 * for a fixed-time one, is the moment the clocks jumped over a match), that
 * is also the answer from one second before it, within the search bound.
 * The time zone and the starting instants come from the input's length and
 * bytes, and include the daylight-saving changes of 2026.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void use_tz(const char *tz)
{
	static const char *current;

	if (current == tz)
		return;
	setenv("TZ", tz, 1);
	tzset();
	current = tz;
}

static long gmtoff(time_t t)
{
	struct tm tm;

	check(localtime_r(&t, &tm) != NULL);
	return tm.tm_gmtoff;
}

static void check_next(const struct cron *c, time_t after)
{
	time_t next = 0, again = 0;
	struct tm tm;
	int rc = cron_next(c, after, &next);

	check(rc == 0 || rc == -ENOENT);
	if (rc != 0)
		return;
	check(next > after);
	check(next - after <= (time_t)(CRON_SEARCH_DAYS + 2) * 86400);
	check(localtime_r(&next, &tm) != NULL);
	check(tm.tm_sec == 0);
	if (!cron_matches(c, &tm)) {
		/* Only the fixed-time catch-up after a jump forward may not match. */
		check(!(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR)));
		check(gmtoff(next - 1) < gmtoff(next));
	}
	check(cron_next(c, next - 1, &again) == 0);
	check(again == next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const zones[] = {"UTC", "Europe/Paris", "America/New_York",
	                                    "Australia/Lord_Howe"};
	/* Around 2026's changes in those zones, and a leap day. */
	static const time_t afters[] = {1774744200, 1792888200, 1772951400, 1793511000,
	                                1775313900, 1791040500, 1835395140};
	struct cron c, back;
	char err[CRON_ERR_MAX], buf[CRON_FORMAT_MAX], again[CRON_FORMAT_MAX];
	int rc;

	memset(&c, 0x5a, sizeof(c));
	back = c;
	rc = cron_parse((const char *)data, size, &c, err, sizeof(err));
	if (rc != 0) {
		check(rc == -EINVAL);
		check(err[0] != '\0');
		check(memcmp(&c, &back, sizeof(c)) == 0);
		return 0;
	}
	check(cron_format(&c, buf, sizeof(buf)) == 0);
	check(strlen(buf) < CRON_FORMAT_MAX);
	check(cron_parse(buf, strlen(buf), &back, err, sizeof(err)) == 0);
	check(memcmp(&c, &back, sizeof(c)) == 0);
	check(cron_format(&back, again, sizeof(again)) == 0);
	check(strcmp(buf, again) == 0);

	use_tz(zones[size % (sizeof(zones) / sizeof(zones[0]))]);
	check_next(&c, afters[(size / 4) % (sizeof(afters) / sizeof(afters[0]))]);
	if (size >= 4) {
		uint32_t x;

		/* Any instant from 1970 to 2106, from the input's first bytes. */
		memcpy(&x, data, sizeof(x));
		check_next(&c, (time_t)x);
	}
	return 0;
}
