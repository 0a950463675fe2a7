/* Unit tests for cursor.c: byte order, short reads, sticky errors, writer overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cursor.h"

static void test_read_values(void **state)
{
	static const uint8_t buf[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	                              0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0xff, 0xfe, 0xfd};
	struct cur c;
	uint8_t two[2];

	(void)state;
	cur_init(&c, buf, sizeof(buf));
	assert_int_equal(cur_left(&c), sizeof(buf));
	assert_int_equal(cur_u8(&c), 0x01);
	assert_int_equal(cur_u16(&c), 0x0203);
	assert_int_equal(cur_u32(&c), 0x04050607);
	assert_true(cur_u64(&c) == 0x08090a0b0c0d0e0fULL);
	assert_int_equal(cur_left(&c), 4);
	assert_true(cur_bad_or_left(&c));
	cur_bytes(&c, two, 2);
	assert_int_equal(two[0], 0x10);
	assert_int_equal(two[1], 0xff);
	assert_ptr_equal(cur_ptr(&c, 1), buf + 17);
	cur_skip(&c, 1);
	assert_int_equal(cur_left(&c), 0);
	assert_false(c.err);
	assert_false(cur_bad_or_left(&c));
}

static void test_high_bits(void **state)
{
	static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct cur c;

	(void)state;
	cur_init(&c, ff, sizeof(ff));
	assert_true(cur_u64(&c) == UINT64_MAX);
	cur_init(&c, ff, sizeof(ff));
	assert_int_equal(cur_u32(&c), UINT32_MAX);
	assert_int_equal(cur_u16(&c), UINT16_MAX);
	assert_int_equal(cur_u8(&c), UINT8_MAX);
	assert_int_equal(cur_u8(&c), UINT8_MAX);
	assert_false(cur_bad_or_left(&c));
}

/* Each getter, one byte short: zero, error set, nothing consumed. */
static void test_short_reads(void **state)
{
	static const uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t out[8];
	struct cur c;

	(void)state;
	cur_init(&c, buf, 0);
	assert_int_equal(cur_u8(&c), 0);
	assert_true(c.err);

	cur_init(&c, buf, 1);
	assert_int_equal(cur_u16(&c), 0);
	assert_true(c.err);
	assert_int_equal(cur_left(&c), 1);

	cur_init(&c, buf, 3);
	assert_int_equal(cur_u32(&c), 0);
	assert_true(c.err);

	cur_init(&c, buf, 7);
	assert_true(cur_u64(&c) == 0);
	assert_true(c.err);

	cur_init(&c, buf, 7);
	memset(out, 0xaa, sizeof(out));
	cur_bytes(&c, out, 8);
	assert_true(c.err);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0);

	cur_init(&c, buf, 7);
	assert_null(cur_ptr(&c, 8));
	assert_true(c.err);

	cur_init(&c, buf, 7);
	cur_skip(&c, 8);
	assert_true(c.err);
	assert_true(cur_bad_or_left(&c));
}

/* After one failure every later read fails, even one that would fit. */
static void test_sticky(void **state)
{
	static const uint8_t buf[4] = {1, 2, 3, 4};
	struct cur c;
	uint8_t b = 0x55;

	(void)state;
	cur_init(&c, buf, sizeof(buf));
	assert_int_equal(cur_u8(&c), 1);
	assert_true(cur_u32(&c) == 0);
	assert_true(c.err);
	assert_int_equal(cur_u8(&c), 0);
	assert_int_equal(cur_u16(&c), 0);
	assert_null(cur_ptr(&c, 0));
	cur_bytes(&c, &b, 1);
	assert_int_equal(b, 0);
	assert_true(cur_bad_or_left(&c));
}

/* Lengths near SIZE_MAX must not wrap around the bounds check. */
static void test_huge_lengths(void **state)
{
	static const uint8_t buf[4] = {1, 2, 3, 4};
	struct cur c;

	(void)state;
	cur_init(&c, buf, sizeof(buf));
	cur_u8(&c);
	assert_null(cur_ptr(&c, SIZE_MAX));
	assert_true(c.err);
	cur_init(&c, buf, sizeof(buf));
	cur_u8(&c);
	cur_skip(&c, SIZE_MAX - 1);
	assert_true(c.err);
	cur_init(&c, buf, sizeof(buf));
	cur_skip(&c, SIZE_MAX);
	assert_true(c.err);
}

static void test_empty_and_zero(void **state)
{
	static const uint8_t buf[2] = {9, 8};
	struct cur c;

	(void)state;
	cur_init(&c, NULL, 0);
	assert_int_equal(cur_left(&c), 0);
	assert_false(cur_bad_or_left(&c));
	assert_non_null(cur_ptr(&c, 0));
	cur_bytes(&c, NULL, 0);
	cur_skip(&c, 0);
	assert_false(c.err);
	assert_int_equal(cur_u8(&c), 0);
	assert_true(c.err);

	cur_init(&c, buf, sizeof(buf));
	assert_ptr_equal(cur_ptr(&c, 0), buf);
	assert_int_equal(cur_left(&c), 2);
	cur_skip(&c, 2);
	assert_ptr_equal(cur_ptr(&c, 0), buf + 2);
	assert_false(cur_bad_or_left(&c));
}

static void test_write_values(void **state)
{
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
	                               0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 'h',  'i',  0x00};
	uint8_t buf[sizeof(want)];
	struct wcur w;
	struct cur c;
	uint8_t *r;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	wcur_init(&w, buf, sizeof(buf));
	wcur_u8(&w, 0xab);
	wcur_u16(&w, 0x1234);
	wcur_u32(&w, 0xdeadbeef);
	wcur_u64(&w, 0x0102030405060708ULL);
	wcur_bytes(&w, "hi", 2);
	r = wcur_reserve(&w, 1);
	assert_non_null(r);
	*r = 0;
	assert_false(w.err);
	assert_int_equal(w.off, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	/* What the writer wrote, the reader reads back. */
	cur_init(&c, buf, w.off);
	assert_int_equal(cur_u8(&c), 0xab);
	assert_int_equal(cur_u16(&c), 0x1234);
	assert_int_equal(cur_u32(&c), 0xdeadbeef);
	assert_true(cur_u64(&c) == 0x0102030405060708ULL);
	cur_skip(&c, 3);
	assert_false(cur_bad_or_left(&c));
}

/* An overflowing write writes nothing, and nothing is written after it. */
static void test_write_overflow(void **state)
{
	uint8_t buf[8];
	struct wcur w;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	wcur_init(&w, buf, 5);
	wcur_u32(&w, 0x01020304);
	wcur_u16(&w, 0x0506);
	assert_true(w.err);
	assert_int_equal(w.off, 4);
	assert_int_equal(buf[4], 0xee);
	wcur_u8(&w, 0x07);
	assert_int_equal(buf[4], 0xee);
	assert_null(wcur_reserve(&w, 0));
	wcur_bytes(&w, "x", 1);
	assert_int_equal(buf[4], 0xee);
	assert_int_equal(w.off, 4);

	wcur_init(&w, buf, 7);
	wcur_u64(&w, 1);
	assert_true(w.err);
	assert_int_equal(w.off, 0);
	assert_int_equal(buf[0], 0x01);

	wcur_init(&w, buf, sizeof(buf));
	wcur_u8(&w, 1);
	assert_null(wcur_reserve(&w, SIZE_MAX));
	assert_true(w.err);

	wcur_init(&w, buf, sizeof(buf));
	wcur_bytes(&w, buf, 9);
	assert_true(w.err);
	assert_int_equal(w.off, 0);
}

static void test_write_exact_and_empty(void **state)
{
	uint8_t buf[8];
	struct wcur w;

	(void)state;
	wcur_init(&w, buf, sizeof(buf));
	wcur_u64(&w, UINT64_MAX);
	assert_false(w.err);
	assert_int_equal(w.off, 8);
	wcur_bytes(&w, NULL, 0);
	assert_non_null(wcur_reserve(&w, 0));
	assert_false(w.err);
	wcur_u8(&w, 0);
	assert_true(w.err);

	wcur_init(&w, NULL, 0);
	wcur_bytes(&w, NULL, 0);
	assert_non_null(wcur_reserve(&w, 0));
	assert_false(w.err);
	wcur_u8(&w, 1);
	assert_true(w.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_values),           cmocka_unit_test(test_high_bits),
	    cmocka_unit_test(test_short_reads),           cmocka_unit_test(test_sticky),
	    cmocka_unit_test(test_huge_lengths),          cmocka_unit_test(test_empty_and_zero),
	    cmocka_unit_test(test_write_values),          cmocka_unit_test(test_write_overflow),
	    cmocka_unit_test(test_write_exact_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
