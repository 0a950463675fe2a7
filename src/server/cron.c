/*
 * Cron expressions: a parser into bitsets, the next firing time in local
 * time with cronie's daylight-saving rules, and a canonical spelling.
 *
 * The next firing time is found by walking civil (local calendar) time,
 * where matching is pure arithmetic on the bitsets, and converting each
 * matching minute to instants with timefmt_local(). Civil order and instant
 * order differ only around the clocks going back, which cron_next() covers
 * by starting a little before `after` and stopping a little after the best
 * instant found.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "cron.h"
#include "log.h"
#include "parse.h"
#include "timefmt.h"

enum { F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

struct field {
	const char *name;
	unsigned lo, hi;          /* the numbers the field accepts */
	const char *const *names; /* NULL, or the names of lo, lo + 1, ... */
	unsigned nnames;
	unsigned star; /* the CRON_*_STAR flag, or 0 (months have none) */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field fields[F_COUNT] = {
    {"minute", 0, 59, NULL, 0, CRON_MIN_STAR},          {"hour", 0, 23, NULL, 0, CRON_HOUR_STAR},
    {"day-of-month", 1, 31, NULL, 0, CRON_DOM_STAR},    {"month", 1, 12, month_names, 12, 0},
    {"day-of-week", 0, 7, dow_names, 7, CRON_DOW_STAR},
};

static const struct {
	const char *name;
	const char *expansion;
} macros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

/* How many bytes of a token error messages quote. */
#define SHOW_MAX 24

/* Escapes p[0..n) for a message, cut to SHOW_MAX bytes with "..." after. */
static const char *show(const char *p, size_t n, char out[4 * SHOW_MAX + 4])
{
	log_escape(p, n < SHOW_MAX ? n : SHOW_MAX, out, 4 * SHOW_MAX + 1);
	if (n > SHOW_MAX)
		memcpy(out + strlen(out), "...", 4);
	return out;
}

/* The error state of one parse: where the message goes. */
struct perr {
	char *buf;
	size_t size;
};

/* Writes "<field>: '<token>' <what>" and returns -EINVAL. */
static int tok_err(const struct perr *e, const struct field *f, const char *p, size_t n,
                   const char *what)
{
	char shown[4 * SHOW_MAX + 4];

	if (e->buf != NULL && e->size > 0)
		snprintf(e->buf, e->size, "%s: '%s' %s", f->name, show(p, n, shown), what);
	return -EINVAL;
}

static int range_err(const struct perr *e, const struct field *f, const char *p, size_t n,
                     unsigned lo, unsigned hi)
{
	char what[48];

	snprintf(what, sizeof(what), "is out of range %u-%u", lo, hi);
	return tok_err(e, f, p, n, what);
}

static int step_err(const struct perr *e, const struct field *f, const char *p, size_t n)
{
	char shown[4 * SHOW_MAX + 4];

	if (e->buf != NULL && e->size > 0)
		snprintf(e->buf, e->size, "%s: step '%s' is out of range 1-%u", f->name,
		         show(p, n, shown), f->hi - f->lo);
	return -EINVAL;
}

/*
 * Reads one value (a number or, where the field has them, a name) from
 * p[0..n) into *v. Returns 0 or -EINVAL with the message written.
 */
static int get_value(const struct perr *e, const struct field *f, const char *p, size_t n,
                     unsigned *v)
{
	char num[24];
	uint64_t x;
	size_t i;

	if (n == 0)
		return tok_err(e, f, p, n, "is missing a value");
	for (i = 0; i < n && ascii_is_digit(p[i]); i++)
		;
	if (i == n) {
		/* All digits: too many of them is a number out of range, not a typo. */
		if (n >= sizeof(num))
			return range_err(e, f, p, n, f->lo, f->hi);
		memcpy(num, p, n);
		num[n] = '\0';
		if (parse_uint(num, f->lo, f->hi, &x, NULL) != 0)
			return range_err(e, f, p, n, f->lo, f->hi);
		*v = (unsigned)x;
		return 0;
	}
	for (i = 0; i < f->nnames; i++) {
		if (ascii_word_is(p, n, f->names[i])) {
			*v = f->lo + (unsigned)i;
			return 0;
		}
	}
	if (f->names == month_names)
		return tok_err(e, f, p, n, "is not a month (1-12 or jan-dec)");
	if (f->names == dow_names)
		return tok_err(e, f, p, n, "is not a day of the week (0-7 or sun-sat)");
	return tok_err(e, f, p, n, "is not a number");
}

/* The values lo, lo + step, ... up to hi, as bits. */
static uint64_t step_bits(unsigned lo, unsigned hi, unsigned step)
{
	uint64_t bits = 0;

	for (unsigned v = lo; v <= hi; v += step)
		bits |= 1ULL << v;
	return bits;
}

/* Parses one list element p[0..n) of field f, adding its values to *bits. */
static int parse_element(const struct perr *e, const struct field *f, const char *p, size_t n,
                         uint64_t *bits)
{
	const char *slash = memchr(p, '/', n);
	size_t rlen = slash != NULL ? (size_t)(slash - p) : n;
	const char *dash = memchr(p, '-', rlen);
	unsigned a, b, step = 1;
	uint64_t x;
	char num[24];
	int rc;

	if (n == 0)
		return tok_err(e, f, p, n,
		               "is an empty list element (two commas, or one at an end)");
	if (slash != NULL) {
		const char *s = slash + 1;
		size_t slen = n - rlen - 1;
		size_t i;

		for (i = 0; i < slen && ascii_is_digit(s[i]); i++)
			;
		if (slen == 0 || i < slen)
			return tok_err(e, f, p, n, "needs a number after '/'");
		if (slen >= sizeof(num))
			return step_err(e, f, s, slen);
		memcpy(num, s, slen);
		num[slen] = '\0';
		if (parse_uint(num, 1, f->hi - f->lo, &x, NULL) != 0)
			return step_err(e, f, s, slen);
		step = (unsigned)x;
	}
	if (rlen == 1 && p[0] == '*') {
		a = f->lo;
		b = f->hi;
	} else if (dash != NULL) {
		if (dash == p)
			return tok_err(e, f, p, n, "lacks the start of its range");
		if (dash == p + rlen - 1)
			return tok_err(e, f, p, n, "lacks the end of its range");
		if ((rc = get_value(e, f, p, (size_t)(dash - p), &a)) < 0)
			return rc;
		if ((rc = get_value(e, f, dash + 1, rlen - (size_t)(dash - p) - 1, &b)) < 0)
			return rc;
		/* "fri-sun" and "5-0" mean up to Sunday as 7. */
		if (f->names == dow_names && b == 0 && a > 0)
			b = 7;
		if (a > b)
			return tok_err(e, f, p, rlen, "is a backward range (start after end)");
	} else {
		if ((rc = get_value(e, f, p, rlen, &a)) < 0)
			return rc;
		/* "N/S" runs from N to the end of the field. */
		b = slash != NULL ? f->hi : a;
	}
	*bits |= step_bits(a, b, step);
	return 0;
}

/* Parses field f from p[0..n) (no blanks inside) into *bits and the star flag. */
static int parse_field(const struct perr *e, const struct field *f, const char *p, size_t n,
                       uint64_t *bits, unsigned *flags)
{
	size_t start = 0;
	int rc;

	*bits = 0;
	if (p[0] == '*')
		*flags |= f->star;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != ',')
			continue;
		rc = parse_element(e, f, p + start, i - start, bits);
		if (rc < 0)
			return rc;
		start = i + 1;
	}
	return 0;
}

static int parse_fields(const struct perr *e, const char *p, size_t n, struct cron *out)
{
	const char *tok[F_COUNT];
	size_t toklen[F_COUNT];
	unsigned count = 0, flags = 0;
	uint64_t bits[F_COUNT];
	size_t i = 0;
	int rc;

	while (i < n) {
		size_t start;

		while (i < n && ascii_is_blank(p[i]))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && !ascii_is_blank(p[i]))
			i++;
		if (count < F_COUNT) {
			tok[count] = p + start;
			toklen[count] = i - start;
		}
		count++;
	}
	if (count != F_COUNT) {
		if (e->buf != NULL && e->size > 0)
			snprintf(e->buf, e->size,
			         "expected 5 fields (minute hour day-of-month month day-of-week), "
			         "found %u",
			         count);
		return -EINVAL;
	}
	for (unsigned k = 0; k < F_COUNT; k++) {
		rc = parse_field(e, &fields[k], tok[k], toklen[k], &bits[k], &flags);
		if (rc < 0)
			return rc;
	}
	/* Day of week 7 is Sunday, bit 0. */
	if (bits[F_DOW] & (1ULL << 7))
		bits[F_DOW] = (bits[F_DOW] & 0x7f) | 1;
	memset(out, 0, sizeof(*out));
	out->minute = bits[F_MIN];
	out->hour = (uint32_t)bits[F_HOUR];
	out->dom = (uint32_t)bits[F_DOM];
	out->month = (uint16_t)bits[F_MON];
	out->dow = (uint8_t)bits[F_DOW];
	out->flags = (uint8_t)flags;
	return 0;
}

int cron_parse(const char *text, size_t len, struct cron *out, char *err, size_t errsz)
{
	struct perr e = {err, errsz};
	char shown[4 * SHOW_MAX + 4];
	struct cron c;
	size_t a = 0, b = len, w;
	int rc;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (text == NULL)
		len = b = 0;
	if (len > CRON_TEXT_MAX) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz, "expression is too long (%zu bytes, at most %d)", len,
			         CRON_TEXT_MAX);
		return -EINVAL;
	}
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz, "expression contains a NUL byte");
		return -EINVAL;
	}
	while (a < b && ascii_is_blank(text[a]))
		a++;
	while (b > a && ascii_is_blank(text[b - 1]))
		b--;
	if (a == b) {
		if (err != NULL && errsz > 0)
			snprintf(err, errsz,
			         "empty expression (expected 5 fields or a macro such "
			         "as @daily)");
		return -EINVAL;
	}
	if (text[a] != '@') {
		rc = parse_fields(&e, text + a, b - a, &c);
		if (rc == 0)
			*out = c;
		return rc;
	}
	for (w = a; w < b && !ascii_is_blank(text[w]); w++)
		;
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (!ascii_word_is(text + a, w - a, macros[i].name))
			continue;
		if (w != b) {
			if (err != NULL && errsz > 0)
				snprintf(err, errsz, "%s takes no fields after it", macros[i].name);
			return -EINVAL;
		}
		rc = parse_fields(&e, macros[i].expansion, strlen(macros[i].expansion), &c);
		if (rc == 0)
			*out = c;
		return rc;
	}
	if (err != NULL && errsz > 0)
		snprintf(err, errsz,
		         "unknown macro '%s' (known: @hourly @daily @midnight @weekly @monthly "
		         "@yearly @annually)",
		         show(text + a, w - a, shown));
	return -EINVAL;
}

/* Whether a day with day of month mday and weekday wday (0 = Sunday) matches. */
static bool day_matches(const struct cron *c, int mday, int wday)
{
	bool dom = (c->dom >> mday) & 1, dow = (c->dow >> wday) & 1;

	if (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
		return dom && dow;
	return dom || dow;
}

bool cron_matches(const struct cron *c, const struct tm *tm)
{
	if (tm->tm_min < 0 || tm->tm_min > 59 || tm->tm_hour < 0 || tm->tm_hour > 23 ||
	    tm->tm_mday < 1 || tm->tm_mday > 31 || tm->tm_mon < 0 || tm->tm_mon > 11 ||
	    tm->tm_wday < 0 || tm->tm_wday > 6)
		return false;
	return ((c->minute >> tm->tm_min) & 1) && ((c->hour >> tm->tm_hour) & 1) &&
	       ((c->month >> (tm->tm_mon + 1)) & 1) && day_matches(c, tm->tm_mday, tm->tm_wday);
}

/* The lowest set bit of bits at or above `from`, or -1. */
static int next_bit(uint64_t bits, int from)
{
	if (from > 63)
		return -1;
	bits &= ~0ULL << from;
	return bits != 0 ? __builtin_ctzll(bits) : -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The day of the week (0 = Sunday) of a day count from 1970-01-01, a Thursday. */
static int weekday(int64_t day)
{
	return (int)(day + 4 - floor_div(day + 4, 7) * 7);
}

/*
 * The first civil minute at or after civil time `from` (a whole minute)
 * that matches, on a day no later than last_day, in *found. Returns false
 * when there is none.
 */
static bool next_civil(const struct cron *c, int64_t from, int64_t last_day, int64_t *found)
{
	int64_t day = floor_div(from, 86400);
	int sod = (int)(from - day * 86400);
	int h = sod / 3600, m = sod / 60 % 60;

	for (; day <= last_day; day++, h = 0, m = 0) {
		int64_t year;
		int month, mday, hh, mm;

		timefmt_civil_from_days(day, &year, &month, &mday);
		if (!((c->month >> month) & 1)) {
			/* Skip the rest of the month: the loop steps to the 1st of the next. */
			day += timefmt_days_in_month(year, month) - mday;
			continue;
		}
		if (!day_matches(c, mday, weekday(day)))
			continue;
		while ((hh = next_bit(c->hour, h)) >= 0) {
			mm = next_bit(c->minute, hh == h ? m : 0);
			if (mm >= 0) {
				*found = day * 86400 + hh * 3600 + mm * 60;
				return true;
			}
			h = hh + 1;
			m = 0;
		}
	}
	return false;
}

/* The widest spread of the local offset over the two days around t. */
static int offset_spread(time_t t, long *spread)
{
	long lo = 0, hi = 0;

	for (int i = -1; i <= 1; i++) {
		long off;
		int rc = timefmt_local_offset(t + i * 86400, &off);

		if (rc < 0)
			return rc;
		if (i == -1 || off < lo)
			lo = off;
		if (i == -1 || off > hi)
			hi = off;
	}
	*spread = hi - lo;
	return 0;
}

int cron_next(const struct cron *c, time_t after, time_t *next)
{
	bool fixed = !(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR));
	long now_off, off1, off2, back, spread = 0;
	int64_t civ, last_day, stop = 0;
	time_t best = 0;
	bool found = false;
	int rc;

	if (after < CRON_TIME_MIN || after > CRON_TIME_MAX)
		return -ERANGE;
	if ((rc = timefmt_local_offset(after, &now_off)) < 0 ||
	    (rc = timefmt_local_offset(after + 86400, &off1)) < 0 ||
	    (rc = timefmt_local_offset(after + 2 * 86400, &off2)) < 0)
		return rc;
	/*
	 * When the clocks go back within the next day, civil times up to
	 * `back` seconds before now come round again later: start there.
	 */
	back = now_off - (off1 < off2 ? off1 : off2);
	if (back < 0)
		back = 0;
	civ = (int64_t)after + now_off;
	last_day = floor_div(civ, 86400) + CRON_SEARCH_DAYS;
	civ = floor_div(civ - back, 60) * 60;

	while (next_civil(c, civ, last_day, &civ)) {
		time_t when[2], gap_end, cand[2];
		int n, ncand = 0;

		n = timefmt_local(civ, when, &gap_end);
		if (n < 0)
			return n;
		if (n == 0 && fixed)
			cand[ncand++] = gap_end;
		for (int i = 0; i < n && !(fixed && i > 0); i++)
			cand[ncand++] = when[i];
		for (int i = 0; i < ncand; i++) {
			if (cand[i] <= after || (found && cand[i] >= best))
				continue;
			best = cand[i];
			found = true;
			/*
			 * Around the clocks going back, a later civil minute may
			 * still come earlier in real time, but never by more than
			 * the spread of the offsets there.
			 */
			if ((rc = offset_spread(best, &spread)) < 0 ||
			    (rc = timefmt_local_offset(best, &off1)) < 0)
				return rc;
			stop = (int64_t)best + off1 + spread;
		}
		if (found && civ + 60 >= stop)
			break;
		civ += 60;
	}
	if (!found)
		return -ENOENT;
	*next = best;
	return 0;
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

static void put_uint(struct out *o, unsigned v)
{
	char num[16];

	snprintf(num, sizeof(num), "%u", v);
	put(o, num);
}

/*
 * Writes bits (values lo..hi) as a list of single values and runs "a-b"
 * (runs of three or more). sep is put before the first item.
 */
static void put_runs(struct out *o, uint64_t bits, unsigned lo, unsigned hi, const char *sep)
{
	for (unsigned v = lo; v <= hi; v++) {
		unsigned end = v;

		if (!((bits >> v) & 1))
			continue;
		while (end < hi && ((bits >> (end + 1)) & 1))
			end++;
		put(o, sep);
		sep = ",";
		put_uint(o, v);
		if (end > v) {
			put(o, end - v >= 2 ? "-" : ",");
			put_uint(o, end);
		}
		v = end;
	}
}

/* The bits "*\/step" gives in field f (day of week 7 folded into 0). */
static uint64_t star_step_bits(const struct field *f, unsigned step)
{
	uint64_t bits = step_bits(f->lo, f->hi, step);

	if (f->names == dow_names && (bits & (1ULL << 7)))
		bits = (bits & 0x7f) | 1;
	return bits;
}

static void put_field(struct out *o, const struct field *f, uint64_t bits, bool star)
{
	uint64_t full = star_step_bits(f, 1);
	unsigned hi = f->names == dow_names ? 6 : f->hi;
	unsigned n = (unsigned)__builtin_popcountll(bits);

	if (bits == full && (star || f->star == 0)) {
		put(o, "*");
		return;
	}
	/*
	 * A field that began with '*' must begin with '*' again, so that the
	 * flag survives: "*\/S" with the smallest step S whose values are all
	 * there, then whatever else is there. Months have no flag, so a set
	 * that is exactly "*\/S" is written so.
	 */
	if (star || f->star == 0) {
		for (unsigned s = 2; s <= f->hi - f->lo; s++) {
			uint64_t sb = star_step_bits(f, s);

			if ((sb & ~bits) != 0 || (!star && sb != bits))
				continue;
			put(o, "*/");
			put_uint(o, s);
			put_runs(o, bits & ~sb, f->lo, hi, ",");
			return;
		}
	}
	/* Three values or more evenly spaced by two or more: "a-b/S". */
	if (n >= 3) {
		unsigned first = (unsigned)__builtin_ctzll(bits);
		unsigned second = (unsigned)next_bit(bits, (int)first + 1);
		unsigned last = 63 - (unsigned)__builtin_clzll(bits);
		unsigned s = second - first;

		if (s >= 2 && step_bits(first, last, s) == bits) {
			put_uint(o, first);
			put(o, "-");
			put_uint(o, last);
			put(o, "/");
			put_uint(o, s);
			return;
		}
	}
	put_runs(o, bits, f->lo, hi, "");
}

int cron_format(const struct cron *c, char *buf, size_t size)
{
	struct out o = {buf, size, 0, false};
	const uint64_t bits[F_COUNT] = {c->minute, c->hour, c->dom, c->month, c->dow};

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned k = 0; k < F_COUNT; k++) {
		const struct field *f = &fields[k];
		/* Keep only the bits the field can hold, so that any struct prints. */
		uint64_t mask = star_step_bits(f, 1);

		if (k > 0)
			put(&o, " ");
		if ((bits[k] & mask) == 0) {
			/* An empty field cannot be written; only a hand-made struct has one. */
			o.full = true;
			break;
		}
		put_field(&o, f, bits[k] & mask, (c->flags & f->star) != 0);
	}
	if (o.full) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}
