/*
 * Times (mlctl.h, "when"): the API speaks ISO 8601 in UTC; people read and
 * type local time. No I/O; the time zone comes from TZ through the C
 * library.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mlctl.h"
#include "parse.h"

/* Parses exactly n digits at s into *v. */
static bool when_digits(const char *s, size_t n, int *v)
{
	int x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

static bool when_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Parses "YYYY-MM-DD", then 'T' or ' ' (when sep_space), "HH:MM" and an
 * optional ":SS", into tm. Returns the number of bytes used, or 0.
 */
static size_t when_fields(const char *s, bool sep_space, struct tm *tm)
{
	int y, mo, d, h, mi, sec = 0;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t len = strlen(s), used = 16;
	if (len < 16 || !when_digits(s, 4, &y) || s[4] != '-' || !when_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !when_digits(s + 8, 2, &d) ||
	    !(s[10] == 'T' || (sep_space && s[10] == ' ')) || !when_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !when_digits(s + 14, 2, &mi))
		return 0;
	if (len >= 19 && s[16] == ':') {
		if (!when_digits(s + 17, 2, &sec))
			return 0;
		used = 19;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && when_leap(y)) || h > 23 || mi > 59 || sec > 60)
		return 0;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = y - 1900;
	tm->tm_mon = mo - 1;
	tm->tm_mday = d;
	tm->tm_hour = h;
	tm->tm_min = mi;
	tm->tm_sec = sec;
	return used;
}

int when_parse_utc(const char *s, time_t *out)
{
	struct tm tm;
	size_t n = when_fields(s, false, &tm);
	if (n != 19 || strcmp(s + 19, "Z") != 0)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

int when_local(const char *s, bool seconds, char *out, size_t outsz)
{
	time_t t;
	struct tm tm;
	if (when_parse_utc(s, &t) < 0)
		return -EINVAL;
	if (!localtime_r(&t, &tm))
		return -EINVAL;
	if (strftime(out, outsz, seconds ? "%Y-%m-%d %H:%M:%S %Z" : "%Y-%m-%d %H:%M", &tm) == 0)
		return -ENOSPC;
	return 0;
}

static int when_utc_out(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -ENOSPC;
	return 0;
}

int when_input(const char *in, time_t now, char *out, size_t outsz, const char **why)
{
	struct tm tm;
	size_t n;
	*why = "expected YYYY-MM-DD HH:MM (local time), an ISO 8601 time with Z or an "
	       "offset, or +N followed by s, m, h or d";
	if (in[0] == '+') {
		/* A relative time: "+30m", "+2h", "+1d", "+90s" (seconds by default). */
		char num[32];
		uint64_t v, ms;
		size_t len = strlen(in + 1);
		if (len == 0 || len >= sizeof(num))
			return -EINVAL;
		memcpy(num, in + 1, len + 1);
		if (num[len - 1] == 'd') {
			num[len - 1] = '\0';
			if (parse_uint(num, 0, 3650, &v, NULL) < 0)
				return -EINVAL;
			return when_utc_out(now + (time_t)v * 86400, out, outsz);
		}
		if (parse_duration_ms(num, 0, 3650ULL * 86400 * 1000, &ms, NULL) < 0)
			return -EINVAL;
		return when_utc_out(now + (time_t)(ms / 1000), out, outsz);
	}
	n = when_fields(in, true, &tm);
	if (n == 0)
		return -EINVAL;
	const char *zone = in + n;
	if (*zone == '\0') {
		/* Local time, like the times mlctl prints; sent as UTC. */
		tm.tm_isdst = -1;
		time_t t = mktime(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		return when_utc_out(t, out, outsz);
	}
	if (strcmp(zone, "Z") == 0 || strcmp(zone, "z") == 0)
		return when_utc_out(timegm(&tm), out, outsz);
	int oh, om;
	if (strlen(zone) != 6 || (zone[0] != '+' && zone[0] != '-') ||
	    !when_digits(zone + 1, 2, &oh) || zone[3] != ':' || !when_digits(zone + 4, 2, &om) ||
	    oh > 23 || om > 59)
		return -EINVAL;
	long off = (long)(oh * 3600 + om * 60) * (zone[0] == '-' ? -1 : 1);
	return when_utc_out(timegm(&tm) - off, out, outsz);
}
