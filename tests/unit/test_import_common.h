/*
 * Shared by test_import_csv.c and test_import_hosts.c: a sink that writes
 * every record and error as one line of text, so that a test compares the
 * whole outcome of an import with one string, and a driver that runs an
 * import with the input split in several ways and checks that the outcome
 * never depends on the split.
 */
#ifndef TEST_IMPORT_COMMON_H
#define TEST_IMPORT_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

struct out {
	char *buf;
	size_t len, cap;
	int calls;   /* callbacks so far */
	int stop_at; /* when > 0, the callback number that returns stop_rc */
	int stop_rc;
};

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt,
		              ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (o->buf && (size_t)n < o->cap - o->len)
			break;
		o->cap = (o->cap + (size_t)n + 1) * 2;
		o->buf = realloc(o->buf, o->cap);
		if (o->buf == NULL)
			abort();
	}
	o->len += (size_t)n;
}

static int out_next(struct out *o)
{
	o->calls++;
	return o->stop_at > 0 && o->calls == o->stop_at ? o->stop_rc : 0;
}

/* "LINE name [mac=..] [ip=..] [subnet=..] [room=..] [tags=a;b] [notes=..]" */
static int out_record(void *user, const struct match_machine *m)
{
	struct out *o = user;

	out_printf(o, "%lu %s", m->line, m->name);
	for (unsigned i = 0; i < m->nmacs; i++)
		out_printf(o, "%s%s", i ? "," : " mac=", m->macs[i]);
	if (m->ip[0])
		out_printf(o, " ip=%s", m->ip);
	if (m->subnet[0])
		out_printf(o, " subnet=%s", m->subnet);
	if (m->room[0])
		out_printf(o, " room=%s", m->room);
	for (unsigned i = 0; i < m->ntags; i++)
		out_printf(o, "%s%s", i ? ";" : " tags=", m->tags[i]);
	if (m->notes[0]) {
		out_printf(o, " notes=");
		for (const char *p = m->notes; *p; p++) {
			if (*p == '\n')
				out_printf(o, "\\n");
			else if (*p == '\r')
				out_printf(o, "\\r");
			else
				out_printf(o, "%c", *p);
		}
	}
	out_printf(o, "\n");
	return out_next(o);
}

/* "LINE! message" */
static int out_error(void *user, unsigned long line, const char *msg)
{
	struct out *o = user;

	out_printf(o, "%lu! %s\n", line, msg);
	return out_next(o);
}

static void out_reset(struct out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/* The outcome as a string ("" when nothing came out). */
static const char *out_str(const struct out *o)
{
	return o->buf ? o->buf : "";
}

#endif
