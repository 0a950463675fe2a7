/* Unit tests for the Reed-Solomon erasure code (src/mcast/fec.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <isa-l/erasure_code.h>

#include "fec.h"

/* A small deterministic generator, so that failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static unsigned rnd_below(unsigned n)
{
	return rnd() % n;
}

static void shuffle(uint8_t *a, unsigned n)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = rnd_below(i);
		uint8_t t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* A block: all FEC_MAX_N symbols of len bytes, sources random. */
struct block {
	unsigned k;
	size_t len;
	uint8_t *sym[FEC_MAX_N];
};

static void block_new(struct block *b, unsigned k, size_t len)
{
	b->k = k;
	b->len = len;
	for (unsigned i = 0; i < FEC_MAX_N; i++) {
		b->sym[i] = malloc(len > 0 ? len : 1);
		assert_non_null(b->sym[i]);
		if (i < k) {
			for (size_t j = 0; j < len; j++) {
				b->sym[i][j] = (uint8_t)rnd();
			}
		}
	}
}

static void block_free(struct block *b)
{
	for (unsigned i = 0; i < FEC_MAX_N; i++) {
		free(b->sym[i]);
	}
}

/* Parity of b from the definition, byte by byte, without the coder. */
static void reference_parity(struct block *b)
{
	unsigned k = b->k;
	uint8_t *m = malloc((size_t)FEC_MAX_N * k);

	assert_non_null(m);
	gf_gen_cauchy1_matrix(m, FEC_MAX_N, (int)k);
	for (unsigned r = k; r < FEC_MAX_N; r++) {
		for (size_t j = 0; j < b->len; j++) {
			uint8_t acc = 0;

			for (unsigned c = 0; c < k; c++) {
				acc ^= gf_mul(m[(size_t)r * k + c], b->sym[c][j]);
			}
			b->sym[r][j] = acc;
		}
	}
	free(m);
}

/* Encodes every parity row in one call and checks it against the reference. */
static void encode_all(struct fec *f, struct block *b)
{
	unsigned k = b->k;
	unsigned n = FEC_MAX_N - k;
	uint8_t idx[FEC_MAX_N];
	uint8_t *out[FEC_MAX_N];

	for (unsigned i = 0; i < n; i++) {
		idx[i] = (uint8_t)(k + i);
		out[i] = malloc(b->len > 0 ? b->len : 1);
		assert_non_null(out[i]);
	}
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b->sym, b->len, idx, n, out), 0);
	reference_parity(b);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(out[i], b->sym[k + i], b->len);
		free(out[i]);
	}
}

/* Encodes a random subset of parity rows in random order (so gathered). */
static void encode_subset(struct fec *f, const struct block *b)
{
	unsigned k = b->k;
	uint8_t all[FEC_MAX_N];
	uint8_t *out[FEC_MAX_N];
	unsigned n;

	for (unsigned i = 0; i < FEC_MAX_N - k; i++) {
		all[i] = (uint8_t)(k + i);
	}
	shuffle(all, FEC_MAX_N - k);
	n = 1 + rnd_below(FEC_MAX_N - k);
	for (unsigned i = 0; i < n; i++) {
		out[i] = malloc(b->len > 0 ? b->len : 1);
		assert_non_null(out[i]);
	}
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b->sym, b->len, all, n, out), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(out[i], b->sym[all[i]], b->len);
		free(out[i]);
	}
}

/*
 * Decodes b from the k symbols have[0..k) and checks every missing source,
 * asking for them in random order.
 */
static void decode_check(struct fec *f, const struct block *b, const uint8_t *have)
{
	unsigned k = b->k;
	const uint8_t *sym[FEC_MAX_K];
	uint8_t present[FEC_MAX_K] = {0};
	uint8_t missing[FEC_MAX_K];
	uint8_t *out[FEC_MAX_K];
	unsigned nmiss = 0;

	for (unsigned i = 0; i < k; i++) {
		sym[i] = b->sym[have[i]];
		if (have[i] < k) {
			present[have[i]] = 1;
		}
	}
	for (unsigned i = 0; i < k; i++) {
		if (!present[i]) {
			missing[nmiss++] = (uint8_t)i;
		}
	}
	shuffle(missing, nmiss);
	for (unsigned i = 0; i < nmiss; i++) {
		out[i] = malloc(b->len > 0 ? b->len : 1);
		assert_non_null(out[i]);
		memset(out[i], 0xee, b->len);
	}
	assert_int_equal(fec_decode(f, have, sym, b->len, missing, nmiss, out), 0);
	for (unsigned i = 0; i < nmiss; i++) {
		assert_memory_equal(out[i], b->sym[missing[i]], b->len);
		free(out[i]);
	}
}

/* A random pattern: nsrc sources and k - nsrc parity symbols, shuffled. */
static void pattern(unsigned k, unsigned nsrc, uint8_t *have)
{
	uint8_t srcs[FEC_MAX_K], pars[FEC_MAX_N];
	unsigned npar = FEC_MAX_N - k;

	for (unsigned i = 0; i < k; i++) {
		srcs[i] = (uint8_t)i;
	}
	for (unsigned i = 0; i < npar; i++) {
		pars[i] = (uint8_t)(k + i);
	}
	shuffle(srcs, k);
	shuffle(pars, npar);
	for (unsigned i = 0; i < nsrc; i++) {
		have[i] = srcs[i];
	}
	for (unsigned i = nsrc; i < k; i++) {
		have[i] = pars[i - nsrc];
	}
	shuffle(have, k);
}

static const unsigned test_ks[] = {1, 2, 3, 5, 8, 16, 31, 32, 33, 64, 100, 126, 127, 128};
static const size_t test_lens[] = {1, 2, 15, 16, 31, 32, 33, 63, 64, 65, 1439, 1440};

static size_t pick_len(unsigned round)
{
	size_t n = sizeof(test_lens) / sizeof(test_lens[0]);

	if (round < n) {
		return test_lens[round];
	}
	return 1 + rnd_below(2000);
}

static void test_new_bad(void **state)
{
	(void)state;
	assert_null(fec_new(0));
	assert_null(fec_new(FEC_MAX_K + 1));
	assert_null(fec_new(255));
	fec_free(NULL);
}

static void test_every_k(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(test_ks) / sizeof(test_ks[0]); t++) {
		unsigned k = test_ks[t];
		struct fec *f = fec_new(k);
		unsigned rounds = k >= 100 ? 3 : 6;

		assert_non_null(f);
		assert_int_equal(fec_k(f), k);
		for (unsigned round = 0; round < rounds; round++) {
			struct block b;
			uint8_t have[FEC_MAX_K];
			unsigned maxpar = FEC_MAX_N - k < k ? FEC_MAX_N - k : k;

			/* Every length for small k; a spread for the slow reference at big k. */
			block_new(&b, k, pick_len(k >= 100 ? round * 5 + 1 : round * 2 + t % 2));
			encode_all(f, &b);
			encode_subset(f, &b);

			/* Only sources: nothing to recover. */
			pattern(k, k, have);
			decode_check(f, &b, have);
			/* As much parity as there is (only parity when 255 - k >= k). */
			pattern(k, k - maxpar, have);
			decode_check(f, &b, have);
			/* One loss, and a random mix. */
			pattern(k, k - 1, have);
			decode_check(f, &b, have);
			pattern(k, k - 1 - rnd_below(maxpar), have);
			decode_check(f, &b, have);
			block_free(&b);
		}
		fec_free(f);
	}
}

/* Many random patterns at the wire's block shape, k = 128, len 1440. */
static void test_random_patterns_k128(void **state)
{
	struct fec *f = fec_new(128);
	struct block b;

	(void)state;
	assert_non_null(f);
	block_new(&b, 128, 1440);
	encode_all(f, &b);
	for (unsigned i = 0; i < 200; i++) {
		uint8_t have[FEC_MAX_K];

		pattern(128, 1 + rnd_below(128), have);
		decode_check(f, &b, have);
	}
	block_free(&b);
	fec_free(f);
}

/* Decoding only some of the missing sources; repeating a cached pattern. */
static void test_partial_and_cache(void **state)
{
	unsigned k = 40;
	struct fec *f = fec_new(k);
	struct block b, b2;
	uint8_t have[FEC_MAX_K];
	const uint8_t *sym[FEC_MAX_K];
	uint8_t missing[FEC_MAX_K];
	uint8_t *out[FEC_MAX_K];
	uint8_t present[FEC_MAX_K] = {0};
	unsigned nmiss = 0;

	(void)state;
	assert_non_null(f);
	block_new(&b, k, 777);
	block_new(&b2, k, 777);
	encode_all(f, &b);
	encode_all(f, &b2);
	pattern(k, 10, have);
	for (unsigned i = 0; i < k; i++) {
		if (have[i] < k) {
			present[have[i]] = 1;
		}
	}
	for (unsigned i = 0; i < k; i++) {
		if (!present[i]) {
			missing[nmiss++] = (uint8_t)i;
		}
	}
	for (unsigned i = 0; i < nmiss; i++) {
		out[i] = malloc(b.len);
		assert_non_null(out[i]);
	}
	/* The same pattern over two blocks (the second hits the cache). */
	for (int round = 0; round < 2; round++) {
		struct block *bb = round == 0 ? &b : &b2;

		for (unsigned i = 0; i < k; i++) {
			sym[i] = bb->sym[have[i]];
		}
		assert_int_equal(fec_decode(f, have, sym, bb->len, missing, nmiss, out), 0);
		for (unsigned i = 0; i < nmiss; i++) {
			assert_memory_equal(out[i], bb->sym[missing[i]], bb->len);
		}
	}
	/* Only three of them, then a different order of the same ones. */
	assert_int_equal(fec_decode(f, have, sym, b2.len, missing + 5, 3, out), 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_memory_equal(out[i], b2.sym[missing[5 + i]], b2.len);
	}
	shuffle(missing, nmiss);
	assert_int_equal(fec_decode(f, have, sym, b2.len, missing, nmiss, out), 0);
	for (unsigned i = 0; i < nmiss; i++) {
		assert_memory_equal(out[i], b2.sym[missing[i]], b2.len);
		free(out[i]);
	}
	/* Nothing asked, nothing done. */
	assert_int_equal(fec_decode(f, have, sym, b2.len, missing, 0, out), 0);
	block_free(&b);
	block_free(&b2);
	fec_free(f);
}

/* Contiguous, reversed and repeated parity indexes all give the same rows. */
static void test_encode_orders(void **state)
{
	unsigned k = 128;
	struct fec *f = fec_new(k);
	struct block b;
	uint8_t idx[300];
	uint8_t *out[300];
	unsigned n = 254;

	(void)state;
	assert_non_null(f);
	block_new(&b, k, 100);
	encode_all(f, &b);
	for (unsigned i = 0; i < n; i++) {
		idx[i] = (uint8_t)(FEC_MAX_N - 1 - i % (FEC_MAX_N - k));
		out[i] = malloc(b.len);
		assert_non_null(out[i]);
	}
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b.sym, b.len, idx, n, out), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(out[i], b.sym[idx[i]], b.len);
		free(out[i]);
	}
	block_free(&b);
	fec_free(f);
}

static void test_bad_input(void **state)
{
	unsigned k = 8;
	struct fec *f = fec_new(k);
	struct block b;
	uint8_t have[FEC_MAX_K];
	const uint8_t *sym[FEC_MAX_K];
	uint8_t missing[2] = {0, 1};
	uint8_t idx[2];
	uint8_t *out[2];
	uint8_t o0[16], o1[16];

	(void)state;
	assert_non_null(f);
	block_new(&b, k, 16);
	out[0] = o0;
	out[1] = o1;

	/* Encode: indexes must be parity rows in [k, 255). */
	idx[0] = (uint8_t)(k - 1);
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b.sym, 16, idx, 1, out), -EINVAL);
	idx[0] = 255;
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b.sym, 16, idx, 1, out), -EINVAL);
	idx[0] = (uint8_t)k;
	idx[1] = 0;
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b.sym, 16, idx, 2, out), -EINVAL);
	assert_int_equal(fec_encode(f, (const uint8_t *const *)b.sym, (size_t)1 << 40, idx, 1, out),
	                 -EINVAL);

	/* Decode: have = 2..9 (parity 8 and 9), missing 0 and 1. */
	for (unsigned i = 0; i < k; i++) {
		have[i] = (uint8_t)(i + 2);
		sym[i] = b.sym[0];
	}
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), 0);
	/* Duplicate in have. */
	have[3] = have[4];
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), -EINVAL);
	/* Index 255 in have. */
	have[3] = 255;
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), -EINVAL);
	have[3] = 5;
	/* A missing index that is not a source, one that is present, a duplicate. */
	missing[1] = (uint8_t)k;
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), -EINVAL);
	missing[1] = 2;
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), -EINVAL);
	missing[1] = 0;
	assert_int_equal(fec_decode(f, have, sym, 16, missing, 2, out), -EINVAL);
	/* More missing than k. */
	assert_int_equal(fec_decode(f, have, sym, 16, missing, k + 1, out), -EINVAL);
	block_free(&b);
	fec_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_bad),
	    cmocka_unit_test(test_every_k),
	    cmocka_unit_test(test_random_patterns_k128),
	    cmocka_unit_test(test_partial_and_cache),
	    cmocka_unit_test(test_encode_orders),
	    cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
