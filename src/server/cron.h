/*
 * Cron expressions for recurring schedules: parsing, the next firing time,
 * and a canonical spelling. No I/O; the next firing time is computed in the
 * process's local time zone (TZ), which is the server's. docs/schedules.md
 * describes the syntax and the daylight-saving rules for administrators.
 *
 * Syntax: five fields separated by blanks (spaces or tabs),
 *
 *   minute (0-59)  hour (0-23)  day-of-month (1-31)  month (1-12)  day-of-week (0-7)
 *
 * each a comma-separated list of "*", "N", "N-M", with an optional step
 * "/S" after "*", "N-M" or "N" ("N/S" means N to the field's end, every S).
 * Months may be named jan..dec and days of the week sun..sat (three letters,
 * any case); day of week 0 and 7 are both Sunday, and a range ending in
 * Sunday ("fri-sun", "5-0") runs to 7. Instead of the five fields, one of
 * the macros @hourly, @daily, @midnight, @weekly, @monthly, @yearly,
 * @annually (any case) stands for "0 * * * *", "0 0 * * *", "0 0 * * *",
 * "0 0 * * 0", "0 0 1 * *", "0 0 1 1 *", "0 0 1 1 *".
 *
 * Matching follows Vixie cron and cronie: minute, hour and month must
 * match; when the day-of-month or the day-of-week field begins with '*',
 * both day fields must match, otherwise either may ("0 0 1,15 * mon" runs
 * on the 1st, the 15th and every Monday).
 */
#ifndef ML_CRON_H
#define ML_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest expression cron_parse() accepts, in bytes. */
#define CRON_TEXT_MAX 1024
/* A size for error buffers that holds every message unabridged. */
#define CRON_ERR_MAX 256
/* Buffer size that cron_format() never exceeds (NUL included). */
#define CRON_FORMAT_MAX 512
/* The instants cron_next() accepts as "after": 1970 to 9000. */
#define CRON_TIME_MIN ((time_t)0)
#define CRON_TIME_MAX ((time_t)221845392000)
/* How far cron_next() looks, in days: 9 years, enough for 29 February across 2100. */
#define CRON_SEARCH_DAYS 3290

/* The field began with '*' (flags below). */
enum {
	CRON_MIN_STAR = 1 << 0,
	CRON_HOUR_STAR = 1 << 1,
	CRON_DOM_STAR = 1 << 2,
	CRON_DOW_STAR = 1 << 3,
};

/*
 * A parsed expression: one bit per allowed value, and which fields began
 * with '*'. A value type with no resources: copy it, compare it with
 * memcmp() (cron_parse() zeroes the padding), store it by its canonical text.
 */
struct cron {
	uint64_t minute; /* bit m: minute m, 0-59 */
	uint32_t hour;   /* bit h: hour h, 0-23 */
	uint32_t dom;    /* bit d: day of month d, 1-31 */
	uint16_t month;  /* bit m: month m, 1-12 */
	uint8_t dow;     /* bit d: day of week d, 0-6, 0 = Sunday (7 is folded into 0) */
	uint8_t flags;   /* CRON_*_STAR: the day-of-month / day-of-week rule and DST */
};

/*
 * Parses an expression of len bytes (not necessarily NUL-terminated;
 * leading and trailing blanks are ignored). Returns 0 and fills *out, or
 * -EINVAL with a one-line reason in err (size errsz; err may be NULL) that
 * names the field and quotes the bad token, e.g. "day-of-week: '8' is out
 * of range 0-7"; *out is then unchanged. Input longer than CRON_TEXT_MAX or
 * holding a NUL byte is an error.
 */
int cron_parse(const char *text, size_t len, struct cron *out, char *err, size_t errsz);

/*
 * The first whole local minute strictly after `after` at which the
 * expression fires, in *next. Daylight saving time, as cronie handles it:
 *
 * - When the clocks go forward, local times in the gap do not occur. A
 *   "fixed-time" expression (neither the minute nor the hour field begins
 *   with '*', e.g. "30 2 * * *") whose time falls in the gap fires once, at
 *   the moment the clocks jump (03:00 new time in Europe). A wildcard
 *   expression ("*" or "*\/15" in the minute or hour field) just skips the
 *   times that do not exist.
 * - When the clocks go back, a fixed-time expression fires once, at the
 *   first of the two occurrences; a wildcard one fires at both, so that
 *   "every 15 minutes" stays every 15 minutes of real time.
 *
 * Returns 0; -ENOENT when nothing fires within CRON_SEARCH_DAYS (e.g. "0 0
 * 30 2 *"); -ERANGE when after is outside CRON_TIME_MIN..CRON_TIME_MAX;
 * -EOVERFLOW when the C library cannot convert a time.
 */
int cron_next(const struct cron *c, time_t after, time_t *next);

/*
 * Whether the expression matches a broken-down local time (tm_min, tm_hour,
 * tm_mday, tm_mon, tm_wday are read), by the day rule above.
 */
bool cron_matches(const struct cron *c, const struct tm *tm);

/*
 * Writes the canonical spelling of c into buf: always five numeric fields,
 * with "*", "*\/S", ranges "N-M" (three values or more), steps "N-M/S" and
 * lists, e.g. "*\/15 8-18 * * 1-5" for "*\/15 08-18 * * Mon-Fri" too.
 * Whether a field began with '*' is kept ("0 0 * * 1" is Mondays, "0 0 1-31 * 1" every day),
 * as it changes the day rule and the daylight-saving rule; so cron_parse()
 * of the spelling gives back *c exactly, and the spelling of that is the
 * same. A struct not made by cron_parse() may lose flags that its bits
 * cannot show. Returns 0, or -ENOSPC when size is too small (at most
 * CRON_FORMAT_MAX is ever needed; buf then holds "").
 */
int cron_format(const struct cron *c, char *buf, size_t size);

#endif
