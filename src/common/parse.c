/*
 * Number parsing with ranges. Every number the project reads from a command
 * line, a config file or a peer goes through here, so the rules live in one
 * place: no sign, no spaces, no locale, overflow is an error, and a value is
 * checked against its range before it reaches the caller.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ascii.h"
#include "parse.h"

#define ERR_NAN "not a number"
#define ERR_SMALL "too small"
#define ERR_LARGE "too large"

/*
 * Fraction digits past this many are checked but ignored (the result is
 * truncated). Nine keeps frac * mult below 2^64 for every multiplier used
 * here (at most 3.6e6 for hours, 1e9 for G), and nobody means a billionth.
 */
#define MAX_FRAC_DIGITS 9

/* A unit suffix and what it multiplies by. */
struct unit {
	const char *name;
	uint64_t mult;
};

/* The digits of a decimal number "I[.F]", split out by scan_decimal(). */
struct decimal {
	uint64_t ipart;
	uint64_t fnum;   /* the first MAX_FRAC_DIGITS fraction digits, as an integer */
	uint64_t fscale; /* 10^(number of digits in fnum) */
	bool overflow;   /* ipart did not fit in 64 bits */
};

/* Case-insensitive comparison of two whole strings (ASCII only, no locale). */
static bool eq_nocase(const char *a, const char *b)
{
	while (*a && *b && ascii_lower(*a) == ascii_lower(*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

/*
 * Scans digits, and a '.' followed by digits when allow_frac is set, from the
 * start of s. Returns a pointer to the first byte after the number, or NULL
 * when s does not start with a well-formed number ("", ".5", "1.", "-1").
 */
static const char *scan_decimal(const char *s, bool allow_frac, struct decimal *d)
{
	const char *p = s;

	d->ipart = 0;
	d->fnum = 0;
	d->fscale = 1;
	d->overflow = false;
	if (!ascii_is_digit(*p))
		return NULL;
	for (; ascii_is_digit(*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (d->ipart > (UINT64_MAX - digit) / 10)
			d->overflow = true;
		else
			d->ipart = d->ipart * 10 + digit;
	}
	if (*p != '.' || !allow_frac)
		return p;
	p++;
	if (!ascii_is_digit(*p))
		return NULL;
	for (unsigned n = 0; ascii_is_digit(*p); p++, n++) {
		if (n < MAX_FRAC_DIGITS) {
			d->fnum = d->fnum * 10 + (uint64_t)(*p - '0');
			d->fscale *= 10;
		}
	}
	return p;
}

/* Checks v against [min, max] and stores it; the common tail of every parser. */
static int finish(uint64_t v, uint64_t min, uint64_t max, uint64_t *out, const char **err)
{
	if (v < min) {
		if (err)
			*err = ERR_SMALL;
		return -ERANGE;
	}
	if (v > max) {
		if (err)
			*err = ERR_LARGE;
		return -ERANGE;
	}
	*out = v;
	return 0;
}

static int fail(int code, const char *why, const char **err)
{
	if (err)
		*err = why;
	return code;
}

/*
 * Computes d * mult, truncating any fraction below one unit of the result.
 * Returns 0 or -ERANGE on overflow.
 */
static int scale(const struct decimal *d, uint64_t mult, uint64_t *v)
{
	uint64_t whole, frac;

	if (d->overflow)
		return -ERANGE;
	if (mult != 0 && d->ipart > UINT64_MAX / mult)
		return -ERANGE;
	whole = d->ipart * mult;
	/* fnum < 10^9 and mult <= 1e9, so the product fits (see MAX_FRAC_DIGITS). */
	frac = d->fnum * mult / d->fscale;
	if (whole > UINT64_MAX - frac)
		return -ERANGE;
	*v = whole + frac;
	return 0;
}

/*
 * Parses "NUMBER[UNIT]" where UNIT, when present, must be one of units
 * (compared case-insensitively); no unit multiplies by bare_mult.
 */
static int parse_scaled(const char *s, bool allow_frac, uint64_t bare_mult,
                        const struct unit *units, size_t nunits, uint64_t min, uint64_t max,
                        uint64_t *out, const char **err)
{
	struct decimal d;
	const char *rest;
	uint64_t mult = 0, v = 0;
	bool found = false;

	if (s == NULL)
		return fail(-EINVAL, ERR_NAN, err);
	rest = scan_decimal(s, allow_frac, &d);
	if (rest == NULL)
		return fail(-EINVAL, ERR_NAN, err);
	if (*rest == '\0') {
		mult = bare_mult;
		found = true;
	}
	for (size_t i = 0; !found && i < nunits; i++) {
		if (eq_nocase(rest, units[i].name)) {
			mult = units[i].mult;
			found = true;
		}
	}
	if (!found)
		return fail(-EINVAL, ERR_NAN, err);
	if (scale(&d, mult, &v) < 0)
		return fail(-ERANGE, ERR_LARGE, err);
	return finish(v, min, max, out, err);
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err)
{
	return parse_scaled(s, false, 1, NULL, 0, min, max, out, err);
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err)
{
	static const struct unit units[] = {
	    {"k", 1ULL << 10}, {"kib", 1ULL << 10}, {"m", 1ULL << 20}, {"mib", 1ULL << 20},
	    {"g", 1ULL << 30}, {"gib", 1ULL << 30}, {"t", 1ULL << 40}, {"tib", 1ULL << 40},
	};

	return parse_scaled(s, false, 1, units, sizeof(units) / sizeof(units[0]), min, max, out,
	                    err);
}

int parse_rate(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err)
{
	/*
	 * Every prefix with every spelling of the unit, spelled out: a table
	 * is easier to check than a second little parser for the tail.
	 */
	static const struct unit units[] = {
	    {"bit", 1},           {"bps", 1},           {"b/s", 1},           {"k", 1000},
	    {"kbit", 1000},       {"kbps", 1000},       {"kb/s", 1000},       {"m", 1000000},
	    {"mbit", 1000000},    {"mbps", 1000000},    {"mb/s", 1000000},    {"g", 1000000000},
	    {"gbit", 1000000000}, {"gbps", 1000000000}, {"gb/s", 1000000000},
	};

	return parse_scaled(s, true, 1, units, sizeof(units) / sizeof(units[0]), min, max, out,
	                    err);
}

int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out,
                      const char **err)
{
	static const struct unit units[] = {
	    {"ms", 1},
	    {"s", 1000},
	    {"m", 60 * 1000},
	    {"h", 60 * 60 * 1000},
	};
	/* A bare number is seconds, not milliseconds. */
	return parse_scaled(s, true, 1000, units, sizeof(units) / sizeof(units[0]), min_ms, max_ms,
	                    out, err);
}
