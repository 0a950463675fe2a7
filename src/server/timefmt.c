/*
 * Timestamps as text, and calendar arithmetic. The date algorithms are
 * Howard Hinnant's days_from_civil / civil_from_days (public domain), which
 * are exact for the proleptic Gregorian calendar over all of int64 days we
 * use, so that nothing here depends on timegm() or on the C library's range.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "timefmt.h"

int64_t timefmt_days_from_civil(int64_t year, int month, int day)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

void timefmt_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);

	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = m;
	*year = yoe + era * 400 + (m <= 2);
}

int timefmt_days_in_month(int64_t year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (month < 1 || month > 12)
		return 0;
	return days[month - 1] + (month == 2 && leap);
}

int timefmt_local_offset(time_t t, long *offset)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return -EOVERFLOW;
	*offset = tm.tm_gmtoff;
	return 0;
}

/* The civil time of instant t, in *civil. Returns 0 or -EOVERFLOW. */
static int civil_of(time_t t, int64_t *civil)
{
	long off;
	int rc = timefmt_local_offset(t, &off);

	if (rc == 0)
		*civil = (int64_t)t + off;
	return rc;
}

int timefmt_local(int64_t c, time_t when[2], time_t *gap_end)
{
	/*
	 * The instants whose clock reads c lie within a day of c read as UTC
	 * (offsets are below 24 h). The offsets a day before and a day after
	 * are those on either side of any change near c, so trying each of
	 * them, and the one at c itself, finds every instant.
	 */
	static const int64_t probes[3] = {-86400, 0, 86400};
	time_t found[3];
	int n = 0;
	int rc;

	if (c < TIMEFMT_CIVIL_MIN || c > TIMEFMT_CIVIL_MAX)
		return -ERANGE;
	for (int i = 0; i < 3; i++) {
		long off;
		int64_t civ = 0;
		time_t t;
		int k;

		rc = timefmt_local_offset((time_t)(c + probes[i]), &off);
		if (rc < 0)
			return rc;
		t = (time_t)(c - off);
		rc = civil_of(t, &civ);
		if (rc < 0)
			return rc;
		if (civ != c)
			continue;
		/* Keep found[] sorted and without duplicates. */
		for (k = 0; k < n && found[k] < t; k++)
			;
		if (k < n && found[k] == t)
			continue;
		memmove(&found[k + 1], &found[k], (size_t)(n - k) * sizeof(found[0]));
		found[k] = t;
		n++;
	}
	if (n > 2)
		n = 2;
	for (int i = 0; i < n; i++)
		when[i] = found[i];
	if (n == 0 && gap_end != NULL) {
		/*
		 * The clock jumps over c somewhere in the four days around it:
		 * it reads less than c two days before and more two days after.
		 * Bisect for the first instant at which it reads more.
		 */
		time_t lo = (time_t)(c - 2 * 86400), hi = (time_t)(c + 2 * 86400);

		while (hi - lo > 1) {
			time_t mid = lo + (hi - lo) / 2;
			int64_t civ = 0;

			rc = civil_of(mid, &civ);
			if (rc < 0)
				return rc;
			if (civ > c)
				hi = mid;
			else
				lo = mid;
		}
		*gap_end = hi;
	}
	return n;
}

int timefmt_format(time_t t, char *buf, size_t size)
{
	int64_t days = (int64_t)t / 86400, sod = (int64_t)t % 86400, year;
	int month, day;

	if (size > 0)
		buf[0] = '\0';
	if (size < TIMEFMT_LEN)
		return -ENOSPC;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	timefmt_civil_from_days(days, &year, &month, &day);
	if (year < 0 || year > 9999)
		return -ERANGE;
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)year, month, day,
	         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
	return 0;
}

/* A reader over the timestamp text. */
struct rd {
	const char *s;
	size_t len;
	size_t off;
};

static bool at_end(const struct rd *r)
{
	return r->off >= r->len;
}

static char peek(const struct rd *r)
{
	return at_end(r) ? '\0' : r->s[r->off];
}

static bool eat(struct rd *r, char ch)
{
	if (at_end(r) || r->s[r->off] != ch)
		return false;
	r->off++;
	return true;
}

/* Reads exactly n decimal digits into *v; false (consuming nothing) otherwise. */
static bool digits(struct rd *r, int n, int *v)
{
	int x = 0;

	if (r->len - r->off < (size_t)n)
		return false;
	for (int i = 0; i < n; i++) {
		char ch = r->s[r->off + (size_t)i];

		if (ch < '0' || ch > '9')
			return false;
		x = x * 10 + (ch - '0');
	}
	r->off += (size_t)n;
	*v = x;
	return true;
}

/* Writes "bad timestamp '<s>': <why>" into err, with s escaped. */
static int fail(const struct rd *r, char *err, size_t errsz, const char *why)
{
	char shown[4 * TIMEFMT_TEXT_MAX + 1];

	if (err != NULL && errsz > 0) {
		log_escape(r->s, r->len, shown, sizeof(shown));
		snprintf(err, errsz, "bad timestamp '%s': %s", shown, why);
	}
	return -EINVAL;
}

int timefmt_parse(const char *s, size_t len, time_t *out, char *err, size_t errsz)
{
	struct rd r = {s, len, 0};
	char why[96];
	int year, month, day, hour, min, sec = 0, n;
	int64_t civil;
	time_t when[2];

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (s == NULL || len == 0)
		return fail(&(struct rd){"", 0, 0}, err, errsz, "empty timestamp");
	if (len > TIMEFMT_TEXT_MAX) {
		r.len = 24;
		return fail(&r, err, errsz, "too long to be a timestamp");
	}
	if (memchr(s, '\0', len) != NULL)
		return fail(&r, err, errsz, "contains a NUL byte");

	if (!digits(&r, 4, &year) || !eat(&r, '-') || !digits(&r, 2, &month) || !eat(&r, '-') ||
	    !digits(&r, 2, &day))
		return fail(&r, err, errsz, "expected a date as YYYY-MM-DD");
	if (year < 1970) {
		snprintf(why, sizeof(why), "year %04d is out of range 1970-9999", year);
		return fail(&r, err, errsz, why);
	}
	if (month < 1 || month > 12) {
		snprintf(why, sizeof(why), "month %02d is out of range 01-12", month);
		return fail(&r, err, errsz, why);
	}
	if (day < 1 || day > timefmt_days_in_month(year, month)) {
		snprintf(why, sizeof(why), "day %02d does not exist in %04d-%02d (01-%02d)", day,
		         year, month, timefmt_days_in_month(year, month));
		return fail(&r, err, errsz, why);
	}
	if (at_end(&r))
		return fail(&r, err, errsz, "a time is needed after the date (YYYY-MM-DDTHH:MM)");
	if (!eat(&r, 'T') && !eat(&r, 't') && !eat(&r, ' '))
		return fail(&r, err, errsz,
		            "expected 'T' or a space between the date and the time");
	if (!digits(&r, 2, &hour) || !eat(&r, ':') || !digits(&r, 2, &min))
		return fail(&r, err, errsz, "expected a time as HH:MM or HH:MM:SS");
	if (eat(&r, ':') && !digits(&r, 2, &sec))
		return fail(&r, err, errsz, "expected two digits of seconds after HH:MM:");
	if (hour > 23 || min > 59 || sec > 59) {
		snprintf(why, sizeof(why), "time %02d:%02d:%02d is out of range 00:00:00-23:59:59",
		         hour, min, sec);
		return fail(&r, err, errsz, why);
	}
	if (eat(&r, '.') || eat(&r, ',')) {
		/* A fraction of a second: checked, then dropped (we count whole seconds). */
		size_t start = r.off;

		while (!at_end(&r) && peek(&r) >= '0' && peek(&r) <= '9')
			r.off++;
		if (r.off == start)
			return fail(&r, err, errsz, "expected digits after the decimal point");
	}
	civil = timefmt_days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;

	if (at_end(&r)) {
		n = timefmt_local(civil, when, NULL);
		if (n < 0)
			return fail(&r, err, errsz, "cannot be converted from local time");
		if (n == 0)
			return fail(&r, err, errsz,
			            "this local time does not exist (the clocks go forward then); "
			            "give an offset such as +01:00 or Z");
		*out = when[0];
		return 0;
	}
	if (eat(&r, 'Z') || eat(&r, 'z')) {
		if (!at_end(&r))
			return fail(&r, err, errsz, "unexpected text after 'Z'");
		*out = (time_t)civil;
		return 0;
	}
	if (peek(&r) == '+' || peek(&r) == '-') {
		int sign = peek(&r) == '-' ? -1 : 1;
		int oh, om;

		r.off++;
		if (!digits(&r, 2, &oh) || !eat(&r, ':') || !digits(&r, 2, &om) || !at_end(&r))
			return fail(&r, err, errsz,
			            "expected an offset as +HH:MM or -HH:MM at the end");
		if (oh > 23 || om > 59) {
			snprintf(why, sizeof(why), "offset %02d:%02d is out of range 00:00-23:59",
			         oh, om);
			return fail(&r, err, errsz, why);
		}
		*out = (time_t)(civil - sign * (oh * 3600 + om * 60));
		return 0;
	}
	return fail(&r, err, errsz, "expected 'Z', +HH:MM or -HH:MM after the time, or nothing");
}
