/*
 * Bounds-checked reading and writing of wire formats, in network byte order.
 * A reader never reads past its end: a short read sets the sticky error flag
 * and yields zeros, so a decoder can read a whole header and check once.
 */
#ifndef ML_CURSOR_H
#define ML_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

void cur_init(struct cur *c, const void *p, size_t len);
size_t cur_left(const struct cur *c);
/* True when the cursor had an error or was not read to its end. */
bool cur_bad_or_left(const struct cur *c);
uint8_t cur_u8(struct cur *c);
uint16_t cur_u16(struct cur *c);
uint32_t cur_u32(struct cur *c);
uint64_t cur_u64(struct cur *c);
/* Copies n bytes to out (zeros on error). */
void cur_bytes(struct cur *c, void *out, size_t n);
/* Returns a pointer to the next n bytes and advances, or NULL (and sets err). */
const uint8_t *cur_ptr(struct cur *c, size_t n);
void cur_skip(struct cur *c, size_t n);

/* A writer into a fixed buffer; overflow sets err and writes nothing more. */
struct wcur {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool err;
};

void wcur_init(struct wcur *w, void *p, size_t cap);
void wcur_u8(struct wcur *w, uint8_t v);
void wcur_u16(struct wcur *w, uint16_t v);
void wcur_u32(struct wcur *w, uint32_t v);
void wcur_u64(struct wcur *w, uint64_t v);
void wcur_bytes(struct wcur *w, const void *p, size_t n);
/* Reserves n bytes and returns a pointer to them, or NULL (and sets err). */
uint8_t *wcur_reserve(struct wcur *w, size_t n);

#endif
