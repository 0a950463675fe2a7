/*
 * A fixed-size bit set. Bits past nbits in the last word are always zero, so
 * word-wise scans and counts need no masking of their own.
 */
#include "bitmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t nwords(uint32_t nbits)
{
	return ((size_t)nbits + 63) / 64;
}

/* Mask of the valid bits of word wi. */
static uint64_t word_mask(const struct bitmap *b, size_t wi)
{
	uint64_t rem = (uint64_t)b->nbits - (uint64_t)wi * 64;

	return rem >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << rem) - 1);
}

int bm_init(struct bitmap *b, uint32_t nbits)
{
	size_t n = nwords(nbits);

	/* One word even for an empty set, so that w is never NULL. */
	b->w = calloc(n > 0 ? n : 1, sizeof(uint64_t));
	b->nbits = 0;
	b->count = 0;
	if (b->w == NULL) {
		return -ENOMEM;
	}
	b->nbits = nbits;
	return 0;
}

void bm_free(struct bitmap *b)
{
	if (b == NULL) {
		return;
	}
	free(b->w);
	b->w = NULL;
	b->nbits = 0;
	b->count = 0;
}

bool bm_set(struct bitmap *b, uint32_t i)
{
	uint64_t m;

	if (i >= b->nbits) {
		return false;
	}
	m = (uint64_t)1 << (i & 63);
	if (b->w[i >> 6] & m) {
		return false;
	}
	b->w[i >> 6] |= m;
	b->count++;
	return true;
}

bool bm_clear(struct bitmap *b, uint32_t i)
{
	uint64_t m;

	if (i >= b->nbits) {
		return false;
	}
	m = (uint64_t)1 << (i & 63);
	if (!(b->w[i >> 6] & m)) {
		return false;
	}
	b->w[i >> 6] &= ~m;
	b->count--;
	return true;
}

void bm_set_all(struct bitmap *b)
{
	size_t n = nwords(b->nbits);

	for (size_t i = 0; i < n; i++) {
		b->w[i] = word_mask(b, i);
	}
	b->count = b->nbits;
}

void bm_clear_all(struct bitmap *b)
{
	memset(b->w, 0, nwords(b->nbits) * sizeof(uint64_t));
	b->count = 0;
}

/* Scans for the first bit at or after i whose value, XORed with flip, is 1. */
static uint32_t next_bit(const struct bitmap *b, uint32_t i, uint64_t flip)
{
	size_t n = nwords(b->nbits);
	size_t wi;
	uint64_t v;

	if (i >= b->nbits) {
		return b->nbits;
	}
	wi = i >> 6;
	v = ((b->w[wi] ^ flip) & word_mask(b, wi)) & (~(uint64_t)0 << (i & 63));
	while (v == 0) {
		if (++wi >= n) {
			return b->nbits;
		}
		v = (b->w[wi] ^ flip) & word_mask(b, wi);
	}
	return (uint32_t)(wi * 64 + (size_t)__builtin_ctzll(v));
}

uint32_t bm_next_set(const struct bitmap *b, uint32_t i)
{
	return next_bit(b, i, 0);
}

uint32_t bm_next_clear(const struct bitmap *b, uint32_t i)
{
	return next_bit(b, i, ~(uint64_t)0);
}

/* Bits [pos, pos + 64) of b, those at or past nbits reading as 0. */
static uint64_t get64(const struct bitmap *b, uint64_t pos)
{
	size_t wi = (size_t)(pos >> 6);
	unsigned sh = (unsigned)(pos & 63);
	size_t n = nwords(b->nbits);
	uint64_t v;

	if (wi >= n) {
		return 0;
	}
	v = b->w[wi] >> sh;
	if (sh != 0 && wi + 1 < n) {
		v |= b->w[wi + 1] << (64 - sh);
	}
	return v;
}

void bm_pack(const struct bitmap *b, uint32_t first, uint32_t n, uint8_t *out)
{
	uint64_t pos = first;
	uint32_t left = n;

	while (left > 0) {
		uint64_t v = get64(b, pos);
		uint32_t take = left < 64 ? left : 64;

		if (take < 64) {
			v &= ((uint64_t)1 << take) - 1;
		}
		for (uint32_t i = 0; i < take; i += 8) {
			*out++ = (uint8_t)(v >> i);
		}
		pos += take;
		left -= take;
	}
}

/* Bits [off, off + 64) of the n-bit LSB-first string in, zero past n. */
static uint64_t in_get64(const uint8_t *in, uint64_t n, uint64_t off)
{
	uint64_t v = 0;
	uint64_t nbytes = (n + 7) / 8;
	uint64_t byte = off >> 3;
	unsigned sh = (unsigned)(off & 7);

	for (unsigned i = 0; i < 9 && byte + i < nbytes; i++) {
		uint64_t c = in[byte + i];

		if (i == 0) {
			v = c >> sh;
		} else if (8 * i - sh < 64) {
			v |= c << (8 * i - sh);
		}
	}
	if (n - off < 64) {
		v &= ((uint64_t)1 << (n - off)) - 1;
	}
	return v;
}

void bm_unpack_or(struct bitmap *b, uint32_t first, uint32_t n, const uint8_t *in)
{
	uint64_t end = (uint64_t)first + n;
	uint64_t pos = first;

	if (end > b->nbits) {
		end = b->nbits;
	}
	while (pos < end) {
		size_t wi = (size_t)(pos >> 6);
		unsigned sh = (unsigned)(pos & 63);
		uint64_t take = 64 - sh;
		uint64_t v, old;

		if (take > end - pos) {
			take = end - pos;
		}
		v = in_get64(in, n, pos - first);
		if (take < 64) {
			v &= ((uint64_t)1 << take) - 1;
		}
		v <<= sh;
		old = b->w[wi];
		b->w[wi] = old | v;
		b->count += (uint32_t)__builtin_popcountll(v & ~old);
		pos += take;
	}
}
