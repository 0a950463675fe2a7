/*
 * Unit tests for sha256.c: FIPS 180-2 and RFC 4231 known answers, streaming
 * in odd pieces, hex round trips, constant-time compare, and concurrent use.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void assert_hex(const uint8_t d[SHA256_LEN], const char *want)
{
	char hex[SHA256_HEX_LEN];

	assert_string_equal(sha256_hex(d, hex), want);
}

#define ABC56 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

static void test_known_answers(void **state)
{
	uint8_t d[SHA256_LEN];

	(void)state;
	sha256_buf("", 0, d);
	assert_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_buf(NULL, 0, d);
	assert_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_buf("abc", 3, d);
	assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_buf(ABC56, strlen(ABC56), d);
	assert_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a', fed in pieces of awkward sizes, then the context reused. */
static void test_streaming(void **state)
{
	static const char *const million_a =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	struct sha256_ctx *c = sha256_new();
	char *buf = malloc(1000000);
	uint8_t d[SHA256_LEN], d2[SHA256_LEN];
	size_t off = 0, step = 1;

	(void)state;
	assert_non_null(c);
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	while (off < 1000000) {
		size_t n = step < 1000000 - off ? step : 1000000 - off;

		sha256_update(c, buf + off, n);
		off += n;
		step = step * 3 + 1;
	}
	sha256_final(c, d);
	assert_hex(d, million_a);
	sha256_buf(buf, 1000000, d2);
	assert_memory_equal(d, d2, SHA256_LEN);

	/* final() reset the context: it hashes "abc" from scratch. */
	sha256_update(c, "a", 1);
	sha256_update(c, NULL, 0);
	sha256_update(c, "bc", 2);
	sha256_final(c, d);
	assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	/* reset() drops what was fed. */
	sha256_update(c, "junk", 4);
	sha256_reset(c);
	sha256_final(c, d);
	assert_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	sha256_free(c);
	sha256_free(NULL);
	free(buf);
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t key[131], data[50], d[SHA256_LEN];
	const char *msg;

	(void)state;
	/* Test case 1. */
	memset(key, 0x0b, 20);
	hmac_sha256(key, 20, "Hi There", 8, NULL, 0, d);
	assert_hex(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* The same message split over the two buffers, at every point. */
	msg = "Hi There";
	for (size_t i = 0; i <= 8; i++) {
		hmac_sha256(key, 20, msg, i, msg + i, 8 - i, d);
		assert_hex(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	}

	/* Test case 2: a key shorter than the output. */
	msg = "what do ya want for nothing?";
	hmac_sha256("Jefe", 4, msg, strlen(msg), NULL, 0, d);
	assert_hex(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	hmac_sha256("Jefe", 4, msg, 10, msg + 10, strlen(msg) - 10, d);
	assert_hex(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	/* Test case 3: binary key and data. */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	hmac_sha256(key, 20, data, 50, NULL, 0, d);
	assert_hex(d, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

	/* Test case 6: a key longer than the block is hashed first. */
	memset(key, 0xaa, 131);
	msg = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_sha256(key, 131, msg, strlen(msg), NULL, 0, d);
	assert_hex(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_hmac_empty(void **state)
{
	uint8_t d[SHA256_LEN];

	(void)state;
	hmac_sha256(NULL, 0, NULL, 0, NULL, 0, d);
	assert_hex(d, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	hmac_sha256("", 0, "", 0, "", 0, d);
	assert_hex(d, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_hex(void **state)
{
	static const char *const h =
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	uint8_t d[SHA256_LEN], keep[SHA256_LEN];
	char hex[SHA256_HEX_LEN], s[80];

	(void)state;
	assert_int_equal(sha256_from_hex(h, d), 0);
	assert_int_equal(d[0], 0x01);
	assert_int_equal(d[31], 0xef);
	assert_string_equal(sha256_hex(d, hex), h);
	assert_int_equal(strlen(hex), 64);

	/* Upper case is accepted, lower case is written. */
	assert_int_equal(
	    sha256_from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", d),
	    0);
	assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	memcpy(keep, d, sizeof(keep));
	assert_int_equal(sha256_from_hex(NULL, d), -EINVAL);
	assert_int_equal(sha256_from_hex("", d), -EINVAL);
	/* 63 digits, 65 digits, a junk digit in every position. */
	memcpy(s, h, 63);
	s[63] = '\0';
	assert_int_equal(sha256_from_hex(s, d), -EINVAL);
	memcpy(s, h, 64);
	s[64] = '0';
	s[65] = '\0';
	assert_int_equal(sha256_from_hex(s, d), -EINVAL);
	s[64] = '\n';
	assert_int_equal(sha256_from_hex(s, d), -EINVAL);
	for (size_t i = 0; i < 64; i++) {
		memcpy(s, h, 65);
		s[i] = 'g';
		assert_int_equal(sha256_from_hex(s, d), -EINVAL);
		s[i] = ' ';
		assert_int_equal(sha256_from_hex(s, d), -EINVAL);
	}
	/* Failures leave the output alone. */
	assert_memory_equal(d, keep, sizeof(keep));
}

static void test_ct_equal(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	memset(a, 0x5a, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(ct_equal(a, b, 0), 1);
	for (size_t i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		assert_int_equal(ct_equal(a, b, sizeof(a)), 0);
		assert_int_equal(ct_equal(a, b, i), 1);
		b[i] ^= 0x01;
	}
	b[63] = 0xa5;
	assert_int_equal(ct_equal(a, b, 64), 0);
}

/* Several threads hashing at once must each get the right answers. */
static void *hash_thread(void *arg)
{
	uint8_t d[SHA256_LEN], key[20];
	char hex[SHA256_HEX_LEN];
	int *bad = arg;

	memset(key, 0x0b, sizeof(key));
	for (int i = 0; i < 2000; i++) {
		sha256_buf("abc", 3, d);
		if (strcmp(sha256_hex(d, hex),
		           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
			(*bad)++;
		hmac_sha256(key, sizeof(key), "Hi ", 3, "There", 5, d);
		if (strcmp(sha256_hex(d, hex),
		           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"))
			(*bad)++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	int bad[4] = {0};

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hash_thread, &bad[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(bad[i], 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answers), cmocka_unit_test(test_streaming),
	    cmocka_unit_test(test_hmac_rfc4231),  cmocka_unit_test(test_hmac_empty),
	    cmocka_unit_test(test_hex),           cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
