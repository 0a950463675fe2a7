/* Number parsing with ranges; the only way the project turns text into numbers. */
#ifndef ML_PARSE_H
#define ML_PARSE_H

#include <stdint.h>

/*
 * Parses a decimal unsigned integer in [min, max]. The whole string must be
 * digits (no sign, no spaces, no suffix). Returns 0, or -EINVAL (not a
 * number) or -ERANGE (outside the range); *err, when not NULL, then points to
 * a static English reason ("not a number", "too small", "too large").
 */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err);

/*
 * Parses a size in bytes: digits with an optional binary suffix K, M, G, T
 * (also KiB, MiB, GiB, TiB; case-insensitive), e.g. "1M" = 1048576. Same
 * range and error contract as parse_uint.
 */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err);

/*
 * Parses a rate in bits per second: a decimal number (a fraction is allowed,
 * "1.5G") with an optional decimal suffix k, M, G (case-insensitive, an
 * optional trailing "bit", "bps" or "b/s"), e.g. "900M" = 900000000. Same
 * range and error contract as parse_uint.
 */
int parse_rate(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **err);

/*
 * Parses a duration: a decimal number of seconds with an optional fraction
 * and an optional suffix ms, s, m, h. Result in milliseconds, in [min_ms,
 * max_ms]. Same error contract as parse_uint.
 */
int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out,
                      const char **err);

#endif
