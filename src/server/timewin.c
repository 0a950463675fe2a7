/*
 * Weekly time windows as a bitmap of the minutes of the week. Parsing sets
 * bits; the canonical spelling is rebuilt from the bits alone, so that two
 * spellings of the same window print alike.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "log.h"
#include "timewin.h"

#define DAY_MINUTES 1440
#define DAY_WORDS ((DAY_MINUTES + 63) / 64)

/* How many bytes of the input error messages quote. */
#define SHOW_MAX 32

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const day_full[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                        "thursday", "friday", "saturday"};

/* A span of the input. */
struct span {
	const char *p;
	size_t n;
};

static struct span trim(struct span s)
{
	while (s.n > 0 && ascii_is_blank(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && ascii_is_blank(s.p[s.n - 1]))
		s.n--;
	return s;
}

/*
 * Splits *rest at the first sep: the part before goes to *item (trimmed),
 * *rest moves past sep. Returns false when *rest was already used up.
 */
static bool split(struct span *rest, char sep, struct span *item)
{
	const char *q;

	if (rest->p == NULL)
		return false;
	q = memchr(rest->p, sep, rest->n);
	if (q == NULL) {
		*item = trim(*rest);
		rest->p = NULL;
		rest->n = 0;
	} else {
		*item = trim((struct span){rest->p, (size_t)(q - rest->p)});
		rest->n -= (size_t)(q - rest->p) + 1;
		rest->p = q + 1;
	}
	return true;
}

/* Writes "'<s>' <what>" into err, with s escaped and cut. Returns -EINVAL. */
static int fail(char *err, size_t errsz, struct span s, const char *what)
{
	char shown[4 * SHOW_MAX + 4];

	if (err == NULL || errsz == 0)
		return -EINVAL;
	log_escape(s.p, s.n < SHOW_MAX ? s.n : SHOW_MAX, shown, 4 * SHOW_MAX + 1);
	if (s.n > SHOW_MAX)
		memcpy(shown + strlen(shown), "...", 4);
	snprintf(err, errsz, "'%s' %s", shown, what);
	return -EINVAL;
}

static int parse_day(struct span s, int *day, char *err, size_t errsz)
{
	for (int d = 0; d < 7; d++) {
		if (ascii_word_is(s.p, s.n, day_names[d]) || ascii_word_is(s.p, s.n, day_full[d])) {
			*day = d;
			return 0;
		}
	}
	if (s.n == 0)
		return fail(err, errsz, s, "is an empty day (two commas, or a dash with no day)");
	return fail(err, errsz, s, "is not a day (mon, tue, wed, thu, fri, sat, sun)");
}

/* Parses DAYS into a bitmask of days (bit 0 = Sunday). */
static int parse_days(struct span s, unsigned *mask, char *err, size_t errsz)
{
	struct span rest = s, item;
	int rc;

	*mask = 0;
	while (split(&rest, ',', &item)) {
		struct span r = item, a, b;
		int da, db;

		split(&r, '-', &a);
		if ((rc = parse_day(a, &da, err, errsz)) < 0)
			return rc;
		db = da;
		if (split(&r, '-', &b)) {
			if (r.p != NULL)
				return fail(err, errsz, item, "is not a day range (DAY-DAY)");
			if ((rc = parse_day(b, &db, err, errsz)) < 0)
				return rc;
		}
		/* A range runs forward through the week, wrapping after Saturday. */
		for (int d = da;; d = (d + 1) % 7) {
			*mask |= 1u << d;
			if (d == db)
				break;
		}
	}
	return 0;
}

/* Parses "H:MM" or "HH:MM", 00:00 to 24:00, into minutes of the day. */
static int parse_time(struct span s, unsigned *minutes, char *err, size_t errsz)
{
	size_t h = 0;
	unsigned hour = 0, min;

	while (h < s.n && h < 3 && ascii_is_digit(s.p[h])) {
		hour = hour * 10 + (unsigned)(s.p[h] - '0');
		h++;
	}
	if (h == 0 || h > 2 || s.n != h + 3 || s.p[h] != ':' || !ascii_is_digit(s.p[h + 1]) ||
	    !ascii_is_digit(s.p[h + 2]))
		return fail(err, errsz, s, "is not a time (HH:MM, 00:00 to 24:00)");
	min = (unsigned)(s.p[h + 1] - '0') * 10 + (unsigned)(s.p[h + 2] - '0');
	if (hour > 24 || min > 59 || (hour == 24 && min > 0))
		return fail(err, errsz, s, "is not a time (HH:MM, 00:00 to 24:00)");
	*minutes = hour * 60 + min;
	return 0;
}

/* Sets minutes [from, to) of the week, to < 2 * TIMEWIN_MINUTES, wrapping after Saturday. */
static void set_range(struct timewin *w, unsigned from, unsigned to)
{
	if (to > TIMEWIN_MINUTES) {
		set_range(w, 0, to - TIMEWIN_MINUTES);
		to = TIMEWIN_MINUTES;
	}
	while (from < to) {
		unsigned n = 64 - from % 64;

		if (n > to - from)
			n = to - from;
		w->bits[from / 64] |= (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << (from % 64);
		from += n;
	}
}

/* Parses TIMES and sets them on every day of mask. */
static int parse_times(struct span s, unsigned mask, struct timewin *w, char *err, size_t errsz)
{
	struct span rest = s, item;
	int rc;

	while (split(&rest, ',', &item)) {
		struct span r = item, a, b;
		unsigned start, end;

		if (item.n == 0)
			return fail(err, errsz, s,
			            "has an empty time range (two commas, or one at an end)");
		split(&r, '-', &a);
		if (!split(&r, '-', &b) || r.p != NULL)
			return fail(err, errsz, item, "is not a time range (HH:MM-HH:MM)");
		if ((rc = parse_time(a, &start, err, errsz)) < 0 ||
		    (rc = parse_time(b, &end, err, errsz)) < 0)
			return rc;
		if (start == DAY_MINUTES)
			return fail(err, errsz, item,
			            "starts at 24:00 (write 00:00 of the next day)");
		if (start == end)
			return fail(err, errsz, item,
			            "is an empty range (for a whole day write 00:00-24:00)");
		/* An end before the start is on the next day. */
		if (end < start)
			end += DAY_MINUTES;
		for (unsigned d = 0; d < 7; d++)
			if (mask & (1u << d))
				set_range(w, d * DAY_MINUTES + start, d * DAY_MINUTES + end);
	}
	return 0;
}

int timewin_parse(const char *text, size_t len, struct timewin *out, char *err, size_t errsz)
{
	struct timewin w;
	struct span rest, clause;
	unsigned n = 0;
	int rc;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (text == NULL)
		len = 0;
	if (len > TIMEWIN_TEXT_MAX) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz, "time window is too long (%zu bytes, at most %d)", len,
			         TIMEWIN_TEXT_MAX);
		return -EINVAL;
	}
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz, "time window contains a NUL byte");
		return -EINVAL;
	}
	rest = trim((struct span){text, len});
	if (rest.n == 0) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz,
			         "empty time window (expected e.g. 'mon-fri "
			         "08:00-18:00'; no window means always)");
		return -EINVAL;
	}
	memset(&w, 0, sizeof(w));
	while (split(&rest, ';', &clause)) {
		struct span days, times;
		unsigned mask;
		size_t k;

		n++;
		if (clause.n == 0) {
			if (err != NULL && errsz > 0)
				snprintf(err, errsz,
				         "clause %u is empty (two ';', or one at an end)", n);
			return -EINVAL;
		}
		/* The days run up to the first digit, where the times begin. */
		for (k = 0; k < clause.n && !ascii_is_digit(clause.p[k]); k++)
			;
		days = trim((struct span){clause.p, k});
		times = trim((struct span){clause.p + k, clause.n - k});
		if (days.n == 0)
			return fail(err, errsz, clause,
			            "lacks its days (e.g. mon-fri 08:00-18:00)");
		if (times.n == 0)
			return fail(err, errsz, clause,
			            "lacks its time range (e.g. mon-fri 08:00-18:00)");
		if ((rc = parse_days(days, &mask, err, errsz)) < 0 ||
		    (rc = parse_times(times, mask, &w, err, errsz)) < 0)
			return rc;
	}
	*out = w;
	return 0;
}

static bool bit(const struct timewin *w, unsigned m)
{
	return (w->bits[m / 64] >> (m % 64)) & 1;
}

bool timewin_contains(const struct timewin *w, time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_hour < 0 ||
	    tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59)
		return false;
	return bit(w, (unsigned)(tm.tm_wday * DAY_MINUTES + tm.tm_hour * 60 + tm.tm_min));
}

/* An output buffer that records overflow instead of writing past its end. */
struct out {
	char *buf;
	size_t size;
	size_t len;
	bool full;
};

static void put(struct out *o, const char *s)
{
	size_t n = strlen(s);

	if (o->full || o->size - o->len <= n) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n + 1);
	o->len += n;
}

static void put_time(struct out *o, unsigned minutes)
{
	char hm[8];

	snprintf(hm, sizeof(hm), "%02u:%02u", minutes / 60 % 100, minutes % 60);
	put(o, hm);
}

/*
 * One day as printed: its own minutes, less a head already printed as the
 * end of the day before, and how far its last range runs into the next
 * day (0 when it does not).
 */
struct dayview {
	uint64_t bits[DAY_WORDS];
	unsigned ext;
	bool empty;
};

static bool dbit(const struct dayview *v, unsigned m)
{
	return (v->bits[m / 64] >> (m % 64)) & 1;
}

/* Copies day d's minutes out of the week. */
static void day_bits(const struct timewin *w, unsigned d, uint64_t bits[DAY_WORDS])
{
	memset(bits, 0, DAY_WORDS * sizeof(bits[0]));
	for (unsigned m = 0; m < DAY_MINUTES; m++)
		if (bit(w, d * DAY_MINUTES + m))
			bits[m / 64] |= 1ULL << (m % 64);
}

static void build_views(const struct timewin *w, struct dayview v[7])
{
	unsigned head[7], tail[7];

	for (unsigned d = 0; d < 7; d++) {
		day_bits(w, d, v[d].bits);
		v[d].ext = 0;
		/* head: the end of the range from 00:00; tail: the start of the one to 24:00. */
		for (head[d] = 0; head[d] < DAY_MINUTES && dbit(&v[d], head[d]); head[d]++)
			;
		for (tail[d] = DAY_MINUTES; tail[d] > 0 && dbit(&v[d], tail[d] - 1); tail[d]--)
			;
	}
	for (unsigned d = 0; d < 7; d++) {
		unsigned nx = (d + 1) % 7;

		/*
		 * Day d's range to midnight and the next day's range from
		 * midnight print as one range across midnight when neither is
		 * a whole day and the end comes before the start, as only then
		 * does it read back the same.
		 */
		if (tail[d] == DAY_MINUTES || tail[d] == 0 || head[nx] == 0 ||
		    head[nx] == DAY_MINUTES || head[nx] >= tail[d])
			continue;
		v[d].ext = head[nx];
		for (unsigned m = 0; m < head[nx]; m++)
			v[nx].bits[m / 64] &= ~(1ULL << (m % 64));
	}
	for (unsigned d = 0; d < 7; d++) {
		v[d].empty = true;
		for (unsigned i = 0; i < DAY_WORDS; i++)
			if (v[d].bits[i] != 0)
				v[d].empty = false;
	}
}

static bool same_view(const struct dayview *a, const struct dayview *b)
{
	return a->ext == b->ext && memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

/* Writes the days of mask (bit 0 = Sunday) from Monday: runs of three or more as "a-b". */
static void put_days(struct out *o, unsigned mask)
{
	const char *sep = "";

	for (unsigned i = 0; i < 7; i++) {
		unsigned end = i;

		if (!(mask & (1u << ((i + 1) % 7))))
			continue;
		while (end + 1 < 7 && (mask & (1u << ((end + 2) % 7))))
			end++;
		put(o, sep);
		sep = ",";
		put(o, day_names[(i + 1) % 7]);
		if (end > i) {
			put(o, end - i >= 2 ? "-" : ",");
			put(o, day_names[(end + 1) % 7]);
		}
		i = end;
	}
}

static void put_ranges(struct out *o, const struct dayview *v)
{
	const char *sep = "";

	for (unsigned m = 0; m < DAY_MINUTES; m++) {
		unsigned end = m;

		if (!dbit(v, m))
			continue;
		while (end < DAY_MINUTES && dbit(v, end))
			end++;
		put(o, sep);
		sep = ",";
		put_time(o, m);
		put(o, "-");
		put_time(o, end == DAY_MINUTES && v->ext > 0 ? v->ext : end);
		m = end;
	}
}

int timewin_format(const struct timewin *w, char *buf, size_t size)
{
	struct out o = {buf, size, 0, false};
	struct dayview v[7];
	unsigned done = 0;
	const char *sep = "";

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	build_views(w, v);
	for (unsigned i = 0; i < 7; i++) {
		unsigned d = (i + 1) % 7, mask = 0;

		if (v[d].empty || (done & (1u << d)))
			continue;
		for (unsigned k = 0; k < 7; k++) {
			if (!v[k].empty && same_view(&v[d], &v[k]))
				mask |= 1u << k;
		}
		done |= mask;
		put(&o, sep);
		sep = "; ";
		put_days(&o, mask);
		put(&o, " ");
		put_ranges(&o, &v[d]);
	}
	if (done == 0)
		return -EINVAL;
	if (o.full) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}
