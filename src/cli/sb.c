/* Growable strings (mlctl.h, "sb"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* Makes room for n more bytes and a NUL; false after running out of memory. */
static bool sb_grow(struct sb *s, size_t n)
{
	if (s->oom)
		return false;
	if (n > SIZE_MAX / 2 - s->len - 1) {
		s->oom = true;
		return false;
	}
	size_t need = s->len + n + 1;
	if (need <= s->cap)
		return true;
	size_t cap = s->cap ? s->cap : 64;
	while (cap < need)
		cap *= 2;
	char *p = realloc(s->buf, cap);
	if (!p) {
		s->oom = true;
		return false;
	}
	s->buf = p;
	s->cap = cap;
	return true;
}

void sb_addn(struct sb *s, const char *p, size_t n)
{
	if (!sb_grow(s, n))
		return;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
}

void sb_add(struct sb *s, const char *str)
{
	sb_addn(s, str, strlen(str));
}

void sb_addc(struct sb *s, char c)
{
	sb_addn(s, &c, 1);
}

void sb_addf(struct sb *s, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		sb_addn(s, small, (size_t)n);
		return;
	}
	if (!sb_grow(s, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

void sb_add_qval(struct sb *s, const char *str)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		/* RFC 3986 unreserved characters go as they are; the rest is %XX. */
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			sb_addc(s, (char)*p);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			sb_addn(s, e, 3);
		}
	}
}

char *sb_take(struct sb *s)
{
	if (s->oom) {
		sb_free(s);
		return NULL;
	}
	char *r = s->buf ? s->buf : strdup("");
	s->buf = NULL;
	s->len = s->cap = 0;
	return r;
}

void sb_free(struct sb *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
	s->oom = false;
}
