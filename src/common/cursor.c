/*
 * Bounds-checked cursors over wire formats. Every multi-byte value is read
 * and written byte by byte in network order, so a packet is never cast to a
 * struct and alignment never matters. Once a cursor has failed it stays
 * failed: later reads yield zeros and later writes do nothing, so a decoder
 * can read a whole header and check the flag once.
 */
#include <string.h>

#include "cursor.h"

void cur_init(struct cur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = p ? len : 0;
	c->off = 0;
	c->err = false;
}

size_t cur_left(const struct cur *c)
{
	return c->len - c->off;
}

bool cur_bad_or_left(const struct cur *c)
{
	return c->err || c->off != c->len;
}

/*
 * Returns the next n bytes and advances past them, or NULL (and sets the
 * sticky error) when fewer than n are left or the cursor already failed.
 */
static const uint8_t *take(struct cur *c, size_t n)
{
	const uint8_t *q;

	if (c->err || n > c->len - c->off) {
		c->err = true;
		return NULL;
	}
	/* An empty cursor may have no buffer at all; hand out a valid pointer. */
	if (c->p == NULL)
		return (const uint8_t *)"";
	q = c->p + c->off;
	c->off += n;
	return q;
}

uint8_t cur_u8(struct cur *c)
{
	const uint8_t *q = take(c, 1);

	return q ? q[0] : 0;
}

uint16_t cur_u16(struct cur *c)
{
	const uint8_t *q = take(c, 2);

	return q ? (uint16_t)((unsigned)q[0] << 8 | q[1]) : 0;
}

uint32_t cur_u32(struct cur *c)
{
	const uint8_t *q = take(c, 4);

	if (q == NULL)
		return 0;
	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

uint64_t cur_u64(struct cur *c)
{
	const uint8_t *q = take(c, 8);
	uint64_t v = 0;

	if (q == NULL)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | q[i];
	return v;
}

void cur_bytes(struct cur *c, void *out, size_t n)
{
	const uint8_t *q = take(c, n);

	if (n == 0)
		return;
	if (q)
		memcpy(out, q, n);
	else
		memset(out, 0, n);
}

const uint8_t *cur_ptr(struct cur *c, size_t n)
{
	return take(c, n);
}

void cur_skip(struct cur *c, size_t n)
{
	(void)take(c, n);
}

void wcur_init(struct wcur *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = p ? cap : 0;
	w->off = 0;
	w->err = false;
}

/* The writer's twin of take(): room for n bytes, or NULL and the sticky error. */
static uint8_t *room(struct wcur *w, size_t n)
{
	static uint8_t none[1];
	uint8_t *q;

	if (w->err || n > w->cap - w->off) {
		w->err = true;
		return NULL;
	}
	/*
	 * A zero-byte reservation on a writer without a buffer still succeeds;
	 * the caller may write nothing through the pointer it gets.
	 */
	if (w->p == NULL)
		return none;
	q = w->p + w->off;
	w->off += n;
	return q;
}

void wcur_u8(struct wcur *w, uint8_t v)
{
	uint8_t *q = room(w, 1);

	if (q)
		q[0] = v;
}

void wcur_u16(struct wcur *w, uint16_t v)
{
	uint8_t *q = room(w, 2);

	if (q) {
		q[0] = (uint8_t)(v >> 8);
		q[1] = (uint8_t)v;
	}
}

void wcur_u32(struct wcur *w, uint32_t v)
{
	uint8_t *q = room(w, 4);

	if (q) {
		q[0] = (uint8_t)(v >> 24);
		q[1] = (uint8_t)(v >> 16);
		q[2] = (uint8_t)(v >> 8);
		q[3] = (uint8_t)v;
	}
}

void wcur_u64(struct wcur *w, uint64_t v)
{
	uint8_t *q = room(w, 8);

	if (q) {
		for (int i = 7; i >= 0; i--) {
			q[i] = (uint8_t)v;
			v >>= 8;
		}
	}
}

void wcur_bytes(struct wcur *w, const void *p, size_t n)
{
	uint8_t *q = room(w, n);

	if (q && n > 0)
		memcpy(q, p, n);
}

uint8_t *wcur_reserve(struct wcur *w, size_t n)
{
	return room(w, n);
}
