/* A fixed-size bit set over [0, nbits). */
#ifndef MC_BITMAP_H
#define MC_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bitmap {
	uint64_t *w;
	uint32_t nbits;
	uint32_t count; /* bits set, kept up to date */
};

/* All bits clear. Returns 0 or -ENOMEM. */
int bm_init(struct bitmap *b, uint32_t nbits);
void bm_free(struct bitmap *b);
static inline bool bm_get(const struct bitmap *b, uint32_t i)
{
	return (b->w[i >> 6] >> (i & 63)) & 1;
}
/* Set/clear return true when the bit changed. */
bool bm_set(struct bitmap *b, uint32_t i);
bool bm_clear(struct bitmap *b, uint32_t i);
void bm_set_all(struct bitmap *b);
void bm_clear_all(struct bitmap *b);
/* First set (or clear) bit at or after i, or nbits when none. */
uint32_t bm_next_set(const struct bitmap *b, uint32_t i);
uint32_t bm_next_clear(const struct bitmap *b, uint32_t i);
/*
 * Packs bits [first, first+n) into out, LSB-first within each byte
 * ((n+7)/8 bytes), and the reverse. Bits past nbits read as 0 and are
 * ignored when unpacking. bm_unpack_or ORs into b.
 */
void bm_pack(const struct bitmap *b, uint32_t first, uint32_t n, uint8_t *out);
void bm_unpack_or(struct bitmap *b, uint32_t first, uint32_t n, const uint8_t *in);

#endif
