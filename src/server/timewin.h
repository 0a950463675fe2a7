/*
 * Weekly time windows, for rights that hold only at certain times ("pupils
 * may start the exam VM mon-fri 08:00-18:00"). No I/O; the window is read
 * in wall-clock local time (TZ), the server's. docs/schedules.md describes
 * the syntax for administrators.
 *
 * Syntax: clauses separated by ';', each "DAYS TIMES":
 *
 *   DAYS   a comma-separated list of days or day ranges: mon, tue, wed, thu,
 *          fri, sat, sun (or the full English names, any case); a range
 *          runs forward through the week and may wrap ("fri-mon" is fri,
 *          sat, sun, mon; "sun-sat" and "mon-sun" are every day).
 *   TIMES  a comma-separated list of ranges HH:MM-HH:MM (hours 0-24, one
 *          or two digits; minutes two digits). The end is excluded; 24:00
 *          may only end a range. A range whose end is before its start
 *          crosses midnight into the next day: "fri 22:00-02:00" is Friday
 *          22:00 to Saturday 02:00.
 *
 *   "mon-fri 08:00-18:00"
 *   "mon,wed 08:00-12:00,13:30-17:00; sat 09:00-13:00"
 *   "sun-sat 00:00-24:00"
 *
 * An empty window (no clause) is an error: callers store no window (NULL)
 * for "always".
 */
#ifndef ML_TIMEWIN_H
#define ML_TIMEWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest window text timewin_parse() accepts, in bytes. */
#define TIMEWIN_TEXT_MAX 1024
/* A size for error buffers that holds every message unabridged. */
#define TIMEWIN_ERR_MAX 256
/* Buffer size that timewin_format() never exceeds for a parsed window (NUL included). */
#define TIMEWIN_FORMAT_MAX 16384

/* Minutes in a week: the window holds one bit per minute of the week. */
#define TIMEWIN_MINUTES (7 * 24 * 60)

/*
 * A parsed window: bit (day * 1440 + minute of the day) is set when that
 * minute is inside, day 0 being Sunday. A value type with no resources
 * (about 1.3 KB); compare with memcmp().
 */
struct timewin {
	uint64_t bits[(TIMEWIN_MINUTES + 63) / 64];
};

/*
 * Parses a window of len bytes (not necessarily NUL-terminated; blanks
 * around separators are ignored). Returns 0 and fills *out, or -EINVAL with
 * a one-line reason in err (size errsz; err may be NULL) that quotes the
 * bad part, e.g. "'25:00' is not a time (HH:MM, 00:00 to 24:00)"; *out is
 * then unchanged. Empty text, text longer than TIMEWIN_TEXT_MAX and text
 * holding a NUL byte are errors.
 */
int timewin_parse(const char *text, size_t len, struct timewin *out, char *err, size_t errsz);

/*
 * Whether instant t falls inside the window, by the local wall clock: a
 * window "08:00-18:00" holds while the clock reads 08:00 to 17:59, so on
 * the day the clocks go back, the repeated hour is inside (or outside)
 * twice, and on the day they go forward the skipped hour simply does not
 * occur. False when the C library cannot convert t.
 */
bool timewin_contains(const struct timewin *w, time_t t);

/*
 * Writes the canonical spelling of w into buf: clauses in week order from
 * Monday, days with the same times grouped ("mon-fri", "mon,wed"), ranges
 * in order, merged where they touch, a range into the small hours written
 * as crossing midnight, e.g. "mon-fri 08:00-18:00; sat 09:00-13:00; fri
 * 22:00-02:00" is written "mon-thu 08:00-18:00; fri 08:00-18:00,22:00-02:00;
 * sat 09:00-13:00". Windows with the same minutes get the same spelling, and
 * timewin_parse() of it gives back *w. Returns 0; -ENOSPC when size is too
 * small (TIMEWIN_FORMAT_MAX always suffices for a parsed window; buf then
 * holds ""); -EINVAL for an empty window.
 */
int timewin_format(const struct timewin *w, char *buf, size_t size);

#endif
