/*
 * Streaming CSV import of machines (see import_csv.h).
 *
 * A byte-at-a-time state machine, so that input may be split anywhere: the
 * state says where in a field we are, the row buffer holds the current row's
 * field contents (unquoted, quotes undoubled), and a row is handed over when
 * its line break arrives outside quotes. Everything the parser keeps lives
 * in the one struct allocated by csvimp_new().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_csv.h"
#include "log.h"

enum csv_state {
	ST_FIELD_START, /* before a field's first byte: blanks are skipped */
	ST_UNQUOTED,    /* inside an unquoted field */
	ST_QUOTED,      /* inside a quoted field */
	ST_QUOTE,       /* a '"' inside a quoted field: a doubled quote or the end */
	ST_AFTER_QUOTE, /* after a closing quote: only blanks until ',' or a line break */
};

enum csv_col { COL_NAME, COL_MAC, COL_IP, COL_SUBNET, COL_ROOM, COL_TAGS, COL_NOTES, COL_COUNT };

static const char *const col_names[COL_COUNT] = {"name", "mac",  "ip",   "subnet",
                                                 "room", "tags", "notes"};

static const char bom[3] = {'\xef', '\xbb', '\xbf'};

struct csvimp {
	struct match_sink sink;
	int dead;      /* 0, or the fatal code every later call returns */
	bool finished; /* csvimp_finish() was called */
	unsigned bom;  /* bytes of a leading BOM matched so far */
	bool bom_done; /* past the place where a BOM may be */
	bool cr;       /* the last row ended at a CR: an LF right after belongs to it */
	enum csv_state st;
	unsigned long line;       /* the line of the byte being parsed, 1-based */
	unsigned long row_line;   /* the line the current row starts on */
	unsigned long quote_line; /* the line the current quoted field opened on */
	bool in_row;              /* the current row has a byte */
	bool row_quoted;          /* a field of the current row was quoted */
	size_t raw;               /* raw bytes of the current row, for the cap */
	bool row_bad;             /* row_msg holds the row's first error */
	char row_msg[128];
	/* The current row: field contents back to back, and where each is. */
	char buf[CSVIMP_MAX_LINE];
	size_t len;
	size_t fstart; /* where the current field starts in buf */
	bool fquoted;  /* the current field was quoted */
	unsigned nfields;
	size_t off[CSVIMP_MAX_FIELDS];
	size_t flen[CSVIMP_MAX_FIELDS];
	/* The header: which column each field is. */
	bool header;
	unsigned ncols;
	enum csv_col cols[CSVIMP_MAX_FIELDS];
	unsigned long rows; /* data rows seen, good or bad */
	struct match_machine m;
	char msg[MATCH_ERR_SIZE + 128];
};

/* Reports a bad row (or a fatal error) to the sink. Returns 0 or the stop code (now sticky). */
static int report(struct csvimp *p, unsigned long line, const char *msg)
{
	int rc = match_sink_error(&p->sink, line, msg);
	if (rc)
		p->dead = rc;
	return rc;
}

/* Reports a fatal error and makes code sticky. Returns the sticky code. */
__attribute__((format(printf, 4, 5))) static int fatal(struct csvimp *p, int code,
                                                       unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	if (report(p, line, p->msg) == 0)
		p->dead = code;
	return p->dead;
}

/* Records the row's first error; the row is then read to its end and dropped. */
__attribute__((format(printf, 2, 3))) static void row_fail(struct csvimp *p, const char *fmt, ...)
{
	va_list ap;

	if (p->row_bad)
		return;
	p->row_bad = true;
	va_start(ap, fmt);
	vsnprintf(p->row_msg, sizeof(p->row_msg), fmt, ap);
	va_end(ap);
}

/* Stores one byte of the current field. */
static void put(struct csvimp *p, char c)
{
	if (p->row_bad)
		return;
	if (c == '\0') {
		row_fail(p, "NUL byte in the row");
		return;
	}
	/* raw counts every byte already, so this cannot overflow buf. */
	if (p->len < sizeof(p->buf))
		p->buf[p->len++] = c;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static void end_field(struct csvimp *p)
{
	if (p->row_bad)
		return;
	if (p->nfields == CSVIMP_MAX_FIELDS) {
		row_fail(p, "more than %d fields", CSVIMP_MAX_FIELDS);
		return;
	}
	/* Blanks after an unquoted field are not part of it (those before were skipped). */
	if (!p->fquoted)
		while (p->len > p->fstart && blank(p->buf[p->len - 1]))
			p->len--;
	p->off[p->nfields] = p->fstart;
	p->flen[p->nfields] = p->len - p->fstart;
	p->nfields++;
	p->fstart = p->len;
	p->fquoted = false;
}

static int header_row(struct csvimp *p)
{
	static const char cols_list[] = "name, mac, ip, subnet, room, tags, notes";
	bool seen[COL_COUNT] = {false};
	char v[200];

	if (p->row_bad)
		return fatal(p, -EINVAL, p->row_line, "bad header row: %s", p->row_msg);
	for (unsigned i = 0; i < p->nfields; i++) {
		const char *s = p->buf + p->off[i];
		size_t n = p->flen[i];
		unsigned c;

		while (n > 0 && blank(*s)) {
			s++;
			n--;
		}
		while (n > 0 && blank(s[n - 1]))
			n--;
		if (n == 0)
			return fatal(p, -EINVAL, p->row_line, "column %u of the header has no name",
			             i + 1);
		for (c = 0; c < COL_COUNT; c++)
			if (strlen(col_names[c]) == n && strncasecmp(col_names[c], s, n) == 0)
				break;
		log_escape(s, n > 40 ? 40 : n, v, sizeof(v));
		if (c == COL_COUNT) {
			bool sep = memchr(s, ';', n) || memchr(s, '\t', n);

			return fatal(p, -EINVAL, p->row_line,
			             "unknown column \"%s\" (the first row must name the columns: "
			             "%s%s)",
			             v, cols_list, sep ? "; fields are separated by ','" : "");
		}
		if (seen[c])
			return fatal(p, -EINVAL, p->row_line, "column \"%s\" is named twice",
			             col_names[c]);
		seen[c] = true;
		p->cols[i] = (enum csv_col)c;
	}
	if (!seen[COL_NAME])
		return fatal(p, -EINVAL, p->row_line,
		             "no \"name\" column in the header (columns: %s)", cols_list);
	p->ncols = p->nfields;
	p->header = true;
	return 0;
}

/* Fills p->m from the row's fields. Returns 0, or -EINVAL with the reason in p->msg. */
static int fill(struct csvimp *p)
{
	struct match_machine *m = &p->m;
	char *e = p->msg;
	size_t esz = sizeof(p->msg);
	int rc = 0;

	match_machine_clear(m);
	m->line = p->row_line;
	for (unsigned i = 0; i < p->nfields && rc == 0; i++) {
		const char *s = p->buf + p->off[i];
		size_t n = p->flen[i];

		switch (p->cols[i]) {
		case COL_NAME:
			rc = match_machine_set_name(m, s, n, e, esz);
			/* An empty name is reported as missing by the check below. */
			if (rc < 0 && n == 0)
				rc = 0;
			break;
		case COL_MAC:
			rc = match_machine_add_macs(m, s, n, e, esz);
			break;
		case COL_IP:
			rc = match_machine_set_ip(m, s, n, e, esz);
			break;
		case COL_SUBNET:
			rc = match_machine_set_subnet(m, s, n, e, esz);
			break;
		case COL_ROOM:
			rc = match_machine_set_room(m, s, n, e, esz);
			break;
		case COL_TAGS:
			rc = match_machine_add_tags(m, s, n, e, esz);
			break;
		case COL_NOTES:
			rc = match_machine_set_notes(m, s, n, e, esz);
			break;
		default:
			snprintf(e, esz, "internal error: bad column");
			rc = -EINVAL;
			break;
		}
	}
	if (rc == 0)
		rc = match_machine_check(m, e, esz);
	return rc;
}

static int data_row(struct csvimp *p)
{
	int rc = 0;

	if (p->rows >= CSVIMP_MAX_ROWS)
		return fatal(p, -E2BIG, p->row_line, "more than %d rows", CSVIMP_MAX_ROWS);
	p->rows++;
	if (p->row_bad)
		return report(p, p->row_line, p->row_msg);
	if (p->nfields > p->ncols) {
		snprintf(p->msg, sizeof(p->msg), "the row has %u fields but the header names %u",
		         p->nfields, p->ncols);
		return report(p, p->row_line, p->msg);
	}
	if (fill(p) < 0)
		return report(p, p->row_line, p->msg);
	rc = match_sink_record(&p->sink, &p->m);
	if (rc)
		p->dead = rc;
	return rc;
}

/* Ends the current row: hands it over (header or data) and resets the row state. */
static int end_row(struct csvimp *p)
{
	int rc = 0;

	end_field(p);
	/* A line with nothing but blanks is no row at all. */
	if (p->row_bad || p->row_quoted || p->nfields != 1 || p->flen[0] != 0)
		rc = p->header ? data_row(p) : header_row(p);
	p->st = ST_FIELD_START;
	p->in_row = false;
	p->row_quoted = false;
	p->row_bad = false;
	p->raw = 0;
	p->len = 0;
	p->fstart = 0;
	p->fquoted = false;
	p->nfields = 0;
	return rc;
}

/* A line break outside quotes: the end of the row. */
static int line_break(struct csvimp *p, char c)
{
	int rc = end_row(p);

	p->line++;
	p->cr = c == '\r';
	return rc;
}

/* Parses one byte. Returns 0, or the sticky fatal code. */
static int step(struct csvimp *p, char c)
{
	if (p->cr) {
		p->cr = false;
		if (c == '\n')
			return 0;
	}
	if (!p->in_row) {
		p->in_row = true;
		p->row_line = p->line;
	}
	/* Every byte of the row counts towards the cap but the line break that ends it. */
	if ((p->st == ST_QUOTED || (c != '\n' && c != '\r')) && ++p->raw > CSVIMP_MAX_LINE)
		row_fail(p, "the row is longer than %d bytes", CSVIMP_MAX_LINE);
	switch (p->st) {
	case ST_FIELD_START:
		if (c == '\n' || c == '\r')
			return line_break(p, c);
		if (c == ',') {
			end_field(p);
		} else if (c == '"') {
			p->fquoted = true;
			p->row_quoted = true;
			p->quote_line = p->line;
			p->st = ST_QUOTED;
		} else if (!blank(c)) {
			put(p, c);
			p->st = ST_UNQUOTED;
		}
		return 0;
	case ST_UNQUOTED:
		if (c == '\n' || c == '\r')
			return line_break(p, c);
		if (c == ',') {
			end_field(p);
			p->st = ST_FIELD_START;
		} else {
			if (c == '"')
				row_fail(p,
				         "a '\"' inside an unquoted field (quote the whole field "
				         "and double the quote)");
			put(p, c);
		}
		return 0;
	case ST_QUOTED:
		/* Inside quotes line breaks are data. */
		if (c == '\n')
			p->line++;
		if (c == '"')
			p->st = ST_QUOTE;
		else
			put(p, c);
		return 0;
	case ST_QUOTE:
		if (c == '"') {
			put(p, c);
			p->st = ST_QUOTED;
			return 0;
		}
		/* That quote closed the field: this byte is handled as after it. */
		p->st = ST_AFTER_QUOTE;
		__attribute__((fallthrough));
	case ST_AFTER_QUOTE:
		if (c == '\n' || c == '\r')
			return line_break(p, c);
		if (c == ',') {
			end_field(p);
			p->st = ST_FIELD_START;
		} else if (!blank(c)) {
			row_fail(p, "text after the closing quote of a field");
		}
		return 0;
	default:
		row_fail(p, "internal error: bad parser state");
		return 0;
	}
}

/* Parses one byte, first skipping a UTF-8 BOM at the very start. */
static int step_bom(struct csvimp *p, char c)
{
	int rc;

	if (p->bom_done)
		return step(p, c);
	if (c == bom[p->bom]) {
		if (++p->bom == sizeof(bom))
			p->bom_done = true;
		return 0;
	}
	/* Not a BOM after all: the bytes matched so far are data. */
	p->bom_done = true;
	for (unsigned i = 0; i < p->bom; i++) {
		rc = step(p, bom[i]);
		if (rc)
			return rc;
	}
	return step(p, c);
}

struct csvimp *csvimp_new(const struct match_sink *sink)
{
	struct csvimp *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (sink)
		p->sink = *sink;
	p->line = 1;
	p->row_line = 1;
	return p;
}

int csvimp_feed(struct csvimp *p, const void *buf, size_t len)
{
	const char *s = buf;

	if (p->dead)
		return p->dead;
	if (p->finished)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int rc = step_bom(p, s[i]);

		if (rc)
			return rc;
	}
	return 0;
}

int csvimp_finish(struct csvimp *p)
{
	int rc = 0;

	if (p->dead)
		return p->dead;
	if (p->finished)
		return -EINVAL;
	p->finished = true;
	if (!p->bom_done) {
		p->bom_done = true;
		for (unsigned i = 0; i < p->bom && rc == 0; i++)
			rc = step(p, bom[i]);
		if (rc)
			return rc;
	}
	if (p->st == ST_QUOTED) {
		/* This message wins over any other: it explains the rest. */
		p->row_bad = false;
		row_fail(p, "unterminated quoted field (the quote opens on line %lu)",
		         p->quote_line);
	}
	if (p->in_row) {
		rc = end_row(p);
		if (rc)
			return rc;
	}
	if (!p->header)
		return fatal(p, -EINVAL, 1, "no header row (the file is empty)");
	return 0;
}

void csvimp_free(struct csvimp *p)
{
	free(p);
}

int csvimp_parse(const void *buf, size_t len, const struct match_sink *sink)
{
	struct csvimp *p = csvimp_new(sink);
	int rc;

	if (p == NULL)
		return -ENOMEM;
	rc = csvimp_feed(p, buf, len);
	if (rc == 0)
		rc = csvimp_finish(p);
	csvimp_free(p);
	return rc;
}
