/*
 * ASCII character tests for parsers of untrusted text: locale-free, so a
 * parser reads the same bytes the same way whatever the process's locale,
 * and total over all 256 byte values (no <ctype.h> undefined behaviour for
 * negative chars).
 */
#ifndef ML_ASCII_H
#define ML_ASCII_H

#include <stdbool.h>
#include <stddef.h>

/* Space or tab. */
static inline bool ascii_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The six bytes isspace() accepts in the C locale. */
static inline bool ascii_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static inline bool ascii_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The value of a hex digit (either case), or -1. */
static inline int ascii_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * True when p[0..n) equals the NUL-terminated lower-case word, ignoring the
 * case of p.
 */
static inline bool ascii_word_is(const char *p, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n && word[i] != '\0'; i++)
		if (ascii_lower(p[i]) != word[i])
			return false;
	return i == n && word[i] == '\0';
}

#endif
