/* Unit tests for the bit set (src/mcast/bitmap.c), checked against a byte-per-bit model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bitmap.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* Checks b against model m (one byte per bit): every bit, count, scans. */
static void check_model(const struct bitmap *b, const uint8_t *m, uint32_t nbits)
{
	uint32_t count = 0;

	assert_int_equal(b->nbits, nbits);
	for (uint32_t i = 0; i < nbits; i++) {
		assert_int_equal(bm_get(b, i), m[i]);
		count += m[i];
	}
	assert_int_equal(b->count, count);
	for (uint32_t i = 0; i <= nbits + 1; i++) {
		uint32_t s = i, c = i;

		while (s < nbits && !m[s]) {
			s++;
		}
		while (c < nbits && m[c]) {
			c++;
		}
		if (s > nbits) {
			s = nbits;
		}
		if (c > nbits) {
			c = nbits;
		}
		assert_int_equal(bm_next_set(b, i), s);
		assert_int_equal(bm_next_clear(b, i), c);
	}
}

static const uint32_t sizes[] = {1, 2, 7, 8, 9, 63, 64, 65, 127, 128, 129, 191, 200, 1000};

static void test_init_edges(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		uint32_t n = sizes[t];
		struct bitmap b;
		uint8_t *m = calloc(n, 1);

		assert_non_null(m);
		assert_int_equal(bm_init(&b, n), 0);
		check_model(&b, m, n);
		/* First and last bit, each word boundary. */
		assert_true(bm_set(&b, 0));
		assert_false(bm_set(&b, 0));
		m[0] = 1;
		assert_true(bm_set(&b, n - 1) || n == 1);
		m[n - 1] = 1;
		for (uint32_t i = 63; i < n; i += 64) {
			bm_set(&b, i);
			m[i] = 1;
			if (i + 1 < n) {
				bm_set(&b, i + 1);
				m[i + 1] = 1;
			}
		}
		check_model(&b, m, n);
		/* Out of range is a no-op. */
		assert_false(bm_set(&b, n));
		assert_false(bm_clear(&b, n));
		check_model(&b, m, n);

		bm_set_all(&b);
		memset(m, 1, n);
		check_model(&b, m, n);
		assert_int_equal(b.count, n);
		assert_true(bm_clear(&b, n - 1));
		assert_false(bm_clear(&b, n - 1));
		m[n - 1] = 0;
		check_model(&b, m, n);
		bm_clear_all(&b);
		memset(m, 0, n);
		check_model(&b, m, n);
		bm_free(&b);
		assert_null(b.w);
		free(m);
	}
	bm_free(NULL);
}

static void test_random_ops(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		uint32_t n = sizes[t];
		struct bitmap b;
		uint8_t *m = calloc(n, 1);

		assert_non_null(m);
		assert_int_equal(bm_init(&b, n), 0);
		for (int op = 0; op < 2000; op++) {
			uint32_t i = rnd() % n;

			if (rnd() & 1) {
				assert_int_equal(bm_set(&b, i), !m[i]);
				m[i] = 1;
			} else {
				assert_int_equal(bm_clear(&b, i), m[i]);
				m[i] = 0;
			}
		}
		check_model(&b, m, n);
		bm_free(&b);
		free(m);
	}
}

/* Scans across long runs of full and empty words. */
static void test_scan_words(void **state)
{
	struct bitmap b;
	uint32_t n = 64 * 10 + 5;

	(void)state;
	assert_int_equal(bm_init(&b, n), 0);
	assert_int_equal(bm_next_set(&b, 0), n);
	assert_int_equal(bm_next_clear(&b, 0), 0);
	bm_set(&b, 64 * 9 + 3);
	assert_int_equal(bm_next_set(&b, 0), 64 * 9 + 3);
	assert_int_equal(bm_next_set(&b, 64 * 9 + 3), 64 * 9 + 3);
	assert_int_equal(bm_next_set(&b, 64 * 9 + 4), n);
	bm_set_all(&b);
	assert_int_equal(bm_next_clear(&b, 0), n);
	bm_clear(&b, 64 * 8);
	assert_int_equal(bm_next_clear(&b, 1), 64 * 8);
	assert_int_equal(bm_next_clear(&b, 64 * 8 + 1), n);
	assert_int_equal(bm_next_set(&b, n), n);
	assert_int_equal(bm_next_clear(&b, UINT32_MAX), n);
	bm_free(&b);
}

/* Packs [first, first+len) by the model: LSB-first, zero past nbits and len. */
static void model_pack(const uint8_t *m, uint32_t nbits, uint32_t first, uint32_t len, uint8_t *out)
{
	memset(out, 0, (len + 7) / 8);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t bit = (uint64_t)first + i;

		if (bit < nbits && m[bit]) {
			out[i / 8] |= (uint8_t)(1u << (i % 8));
		}
	}
}

static void test_pack_unpack(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		uint32_t n = sizes[t];
		struct bitmap b;
		uint8_t *m = calloc(n, 1);

		assert_non_null(m);
		assert_int_equal(bm_init(&b, n), 0);
		for (uint32_t i = 0; i < n; i++) {
			if (rnd() % 3 == 0) {
				bm_set(&b, i);
				m[i] = 1;
			}
		}
		for (int r = 0; r < 300; r++) {
			uint32_t first = rnd() % (n + 70);
			uint32_t len = rnd() % (n + 140);
			uint8_t got[200], want[200];
			struct bitmap c;
			uint8_t *cm = calloc(n, 1);

			assert_non_null(cm);
			if (r < 4) {
				/* Unaligned offsets around word boundaries. */
				first = (uint32_t)(r * 63 + 1) % (n + 1);
				len = n;
			}
			memset(got, 0xa5, sizeof(got));
			bm_pack(&b, first, len, got);
			model_pack(m, n, first, len, want);
			assert_memory_equal(got, want, (len + 7) / 8);
			/* The byte after the packed ones is untouched. */
			assert_int_equal(got[(len + 7) / 8], 0xa5);

			/* Unpack into a bitmap with some bits already set: OR, exact count. */
			assert_int_equal(bm_init(&c, n), 0);
			for (uint32_t i = 0; i < n; i += 5) {
				bm_set(&c, i);
				cm[i] = 1;
			}
			/* Garbage past len must be ignored. */
			if (len % 8 != 0) {
				want[len / 8] |= (uint8_t)(0xff << (len % 8));
			}
			bm_unpack_or(&c, first, len, want);
			for (uint32_t i = 0; i < len && (uint64_t)first + i < n; i++) {
				if (want[i / 8] & (1u << (i % 8))) {
					cm[first + i] = 1;
				}
			}
			check_model(&c, cm, n);
			bm_free(&c);
			free(cm);
		}
		bm_free(&b);
		free(m);
	}
}

/* Round trip through pack/unpack at every offset of a 200-bit set. */
static void test_pack_round_trip(void **state)
{
	struct bitmap a, c;
	uint8_t buf[32];

	(void)state;
	assert_int_equal(bm_init(&a, 200), 0);
	for (uint32_t i = 0; i < 200; i += 3) {
		bm_set(&a, i);
	}
	for (uint32_t first = 0; first < 200; first++) {
		uint32_t len = 200 - first;

		assert_int_equal(bm_init(&c, 200), 0);
		bm_pack(&a, first, len, buf);
		bm_unpack_or(&c, first, len, buf);
		for (uint32_t i = 0; i < 200; i++) {
			assert_int_equal(bm_get(&c, i), i >= first && bm_get(&a, i));
		}
		bm_free(&c);
	}
	bm_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_edges),      cmocka_unit_test(test_random_ops),
	    cmocka_unit_test(test_scan_words),      cmocka_unit_test(test_pack_unpack),
	    cmocka_unit_test(test_pack_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
