/* Aligned text tables for people (mlctl.h, "tbl"). No I/O. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

#define TBL_MAX_COLS 64

struct tbl {
	size_t ncols;
	char *title[TBL_MAX_COLS];
	bool right[TBL_MAX_COLS];
	char **cells; /* row-major, cleaned */
	size_t ncells, cap;
};

struct tbl *tbl_new(size_t ncols)
{
	if (ncols == 0 || ncols > TBL_MAX_COLS)
		return NULL;
	struct tbl *t = calloc(1, sizeof(*t));
	if (t)
		t->ncols = ncols;
	return t;
}

void tbl_free(struct tbl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		free(t->title[i]);
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/*
 * Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes are
 * not one (a stray continuation byte, a truncated or overlong sequence, a
 * surrogate, or beyond U+10FFFF).
 */
static size_t tbl_utf8_len(const unsigned char *p, uint32_t *cp)
{
	size_t n;
	uint32_t c;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		/* A NUL ends the string, and fails this test before we read past it. */
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

size_t tbl_width(const char *s)
{
	size_t w = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t cp;
		size_t n = tbl_utf8_len(p, &cp);
		p += n ? n : 1;
		w++;
	}
	return w;
}

char *tbl_clean(const char *s, size_t maxw)
{
	struct sb out = {0};
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t w = 0, cut = 0;
	bool cut_set = false;
	while (*p) {
		uint32_t cp;
		size_t n = tbl_utf8_len(p, &cp);
		if (maxw > 3 && !cut_set && w == maxw - 3) {
			cut = out.len;
			cut_set = true;
		}
		if (n == 0) {
			sb_addc(&out, '?');
			p++;
		} else if (cp == '\t' || cp == '\n' || cp == '\r') {
			sb_addc(&out, ' ');
			p++;
		} else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
			sb_addc(&out, '?');
			p += n;
		} else {
			sb_addn(&out, (const char *)p, n);
			p += n;
		}
		w++;
	}
	if (maxw > 3 && w > maxw && cut_set && !out.oom) {
		out.len = cut;
		out.buf[cut] = '\0';
		sb_add(&out, "...");
	}
	return sb_take(&out);
}

int tbl_head(struct tbl *t, size_t col, const char *title, bool right)
{
	if (col >= t->ncols)
		return -EINVAL;
	char *c = tbl_clean(title, 0);
	if (!c)
		return -ENOMEM;
	free(t->title[col]);
	t->title[col] = c;
	t->right[col] = right;
	return 0;
}

int tbl_add(struct tbl *t, const char *cell)
{
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **c = realloc(t->cells, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	char *c = tbl_clean(cell && *cell ? cell : "-", TBL_CELL_MAX);
	if (!c)
		return -ENOMEM;
	t->cells[t->ncells++] = c;
	return 0;
}

/* Appends text padded to width w (left or right aligned; no padding when last). */
static void tbl_put(struct sb *o, const char *text, size_t w, bool right, bool last)
{
	size_t tw = tbl_width(text);
	size_t pad = w > tw ? w - tw : 0;
	if (right)
		for (size_t i = 0; i < pad; i++)
			sb_addc(o, ' ');
	sb_add(o, text);
	if (!right && !last)
		for (size_t i = 0; i < pad; i++)
			sb_addc(o, ' ');
}

char *tbl_render(const struct tbl *t)
{
	size_t w[TBL_MAX_COLS] = {0};
	size_t nrows = (t->ncells + t->ncols - 1) / t->ncols;
	struct sb o = {0};
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = t->title[c] ? tbl_width(t->title[c]) : 0;
	for (size_t i = 0; i < t->ncells; i++) {
		size_t cw = tbl_width(t->cells[i]);
		if (cw > w[i % t->ncols])
			w[i % t->ncols] = cw;
	}
	for (size_t r = 0; r <= nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *text;
			if (r == 0)
				text = t->title[c] ? t->title[c] : "";
			else if ((r - 1) * t->ncols + c < t->ncells)
				text = t->cells[(r - 1) * t->ncols + c];
			else
				text = "";
			if (c > 0)
				sb_add(&o, "  ");
			tbl_put(&o, text, w[c], t->right[c], c + 1 == t->ncols);
		}
		/* A left-aligned last column may still leave trailing blanks: none. */
		while (o.len > 0 && o.buf[o.len - 1] == ' ')
			o.buf[--o.len] = '\0';
		sb_addc(&o, '\n');
	}
	return sb_take(&o);
}
