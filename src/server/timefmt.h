/*
 * Timestamps as text (ISO 8601 / RFC 3339), and the calendar arithmetic that
 * the scheduler (cron.c) and the API share. No I/O; the only outside state is
 * the process's local time zone (TZ), read through localtime_r().
 *
 * A "civil time" below is a local calendar date and clock reading counted
 * as seconds since 1970-01-01 00:00:00 as if it were UTC, that is with no
 * time zone attached: timefmt_days_from_civil(y, m, d) * 86400 + h * 3600 +
 * min * 60 + s. Converting a civil time to a time_t needs the time zone,
 * and a civil time may occur once, twice (when the clocks go back) or never
 * (when they go forward): see timefmt_local().
 */
#ifndef ML_TIMEFMT_H
#define ML_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Bytes needed for "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define TIMEFMT_LEN 21
/* Longest text timefmt_parse() looks at; longer input is an error. */
#define TIMEFMT_TEXT_MAX 64
/* A size for error buffers that holds every message unabridged. */
#define TIMEFMT_ERR_MAX 384

/* Civil times timefmt_local() accepts: 1900-01-01 00:00 to 9999-12-31 23:59:59. */
#define TIMEFMT_CIVIL_MIN ((int64_t)-2208988800)
#define TIMEFMT_CIVIL_MAX ((int64_t)253402300799)

/*
 * Parses a timestamp. len is the length of s, which need not be
 * NUL-terminated; a NUL byte inside it is an error. Accepted forms (the
 * separator may be 'T', 't' or one space; seconds are optional; a fraction
 * of a second, as JavaScript's toISOString() writes, is accepted and
 * dropped; 'Z' may be lower case):
 *
 *   2026-11-26T13:00:00Z          UTC
 *   2026-11-26T13:00:00.123Z      UTC, the fraction dropped
 *   2026-11-26T14:00:00+01:00     an explicit offset from UTC (+HH:MM or -HH:MM)
 *   2026-11-26 14:00              no zone: local time (TZ)
 *
 * Years run from 1970 to 9999; the date must exist (2026-02-29 does not);
 * seconds run from 00 to 59 (no leap seconds). A local time that occurs
 * twice (the hour repeated when the clocks go back) means its first
 * occurrence; one that does not occur (skipped when they go forward) is an
 * error, as the caller should say what it meant with an offset.
 *
 * Returns 0 and sets *out; or -EINVAL with a one-line English reason in err
 * (size errsz; err may be NULL), leaving *out unchanged.
 */
int timefmt_parse(const char *s, size_t len, time_t *out, char *err, size_t errsz);

/*
 * Writes t as UTC "YYYY-MM-DDTHH:MM:SSZ" into buf, which needs TIMEFMT_LEN
 * bytes. Returns 0; -ENOSPC when size is too small, -ERANGE when t is
 * outside years 0000 to 9999. On error buf holds "" (when size > 0).
 */
int timefmt_format(time_t t, char *buf, size_t size);

/* Days from 1970-01-01 to the given proleptic Gregorian date (month 1-12). */
int64_t timefmt_days_from_civil(int64_t year, int month, int day);
/* The date of a day count from 1970-01-01 (month 1-12). */
void timefmt_civil_from_days(int64_t days, int64_t *year, int *month, int *day);
/* Days in a month (1-12) of a year: 28 to 31; 0 for a bad month. */
int timefmt_days_in_month(int64_t year, int month);

/*
 * The local UTC offset in seconds (east positive) at instant t. Returns 0,
 * or -EOVERFLOW when the C library cannot convert t.
 */
int timefmt_local_offset(time_t t, long *offset);

/*
 * The instants at which the local clock reads civil time c (a whole
 * second). Returns how many there are: 1 usually, 2 in the hour repeated when
 * the clocks go back (when[0] < when[1]), 0 in the gap when they go forward;
 * then *gap_end (when not NULL) is the first instant after the gap, the
 * moment the clocks jumped past c. Returns -ERANGE when c is outside
 * TIMEFMT_CIVIL_MIN..TIMEFMT_CIVIL_MAX, -EOVERFLOW when the C library fails.
 * Assumes, as every real time zone does, at most one change of offset in
 * any two days around c.
 */
int timefmt_local(int64_t c, time_t when[2], time_t *gap_end);

#endif
