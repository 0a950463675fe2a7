/*
 * Unit tests for tftp_proto.c: requests with and without options, option
 * clamping and refusal, malformed requests (no NUL, empty file name, bad
 * numbers, oversized, mail mode, duplicates), ACK parsing and the
 * DATA/OACK/ERROR encoders' exact bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tftp_proto.h"

static const struct tftp_limits lim = {.blksize_max = 1468, .windowsize_max = 64};

/* Builds a request: op, then the strings given, each with its NUL. */
static size_t mkreq(uint8_t *buf, uint16_t op, const char *const *s, size_t n)
{
	size_t off = 2;
	buf[0] = (uint8_t)(op >> 8);
	buf[1] = (uint8_t)op;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		memcpy(buf + off, s[i], l);
		off += l;
	}
	return off;
}

static int parse(const uint8_t *b, size_t n, struct tftp_req *r, uint16_t *code)
{
	const char *why = NULL;
	int rc = tftp_parse_request(b, n, &lim, r, code, &why);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void test_plain_rrq(void **state)
{
	(void)state;
	uint8_t b[600];
	struct tftp_req r;
	uint16_t code;
	const char *s[] = {"pxelinux.0", "OcTeT"};
	assert_int_equal(parse(b, mkreq(b, 1, s, 2), &r, &code), 0);
	assert_int_equal(r.op, TFTP_OP_RRQ);
	assert_string_equal(r.filename, "pxelinux.0");
	assert_int_equal(r.netascii, 0);
	assert_int_equal(r.opts, 0);
	assert_int_equal(r.blksize, 512);
	assert_int_equal(r.windowsize, 1);
	const char *s2[] = {"a/b", "netascii"};
	assert_int_equal(parse(b, mkreq(b, 2, s2, 2), &r, &code), 0);
	assert_int_equal(r.op, TFTP_OP_WRQ);
	assert_int_equal(r.netascii, 1);
}

static void test_options(void **state)
{
	(void)state;
	uint8_t b[600];
	struct tftp_req r;
	uint16_t code;
	const char *s[] = {"f",       "octet", "BLKSIZE",   "1024", "tsize",      "0",
	                   "Timeout", "3",     "x-unknown", "zz",   "windowsize", "8"};
	assert_int_equal(parse(b, mkreq(b, 1, s, 12), &r, &code), 0);
	assert_int_equal(r.opts, TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE | TFTP_OPT_TIMEOUT |
	                             TFTP_OPT_WINDOWSIZE);
	assert_int_equal(r.blksize, 1024);
	assert_int_equal(r.timeout, 3);
	assert_int_equal(r.tsize, 0);
	assert_int_equal(r.windowsize, 8);
	/* Clamping to the server's limits. */
	const char *s2[] = {"f", "octet", "blksize", "65464", "windowsize", "65535"};
	assert_int_equal(parse(b, mkreq(b, 1, s2, 6), &r, &code), 0);
	assert_int_equal(r.blksize, 1468);
	assert_int_equal(r.windowsize, 64);
	/* Trailing NUL padding is tolerated. */
	size_t n = mkreq(b, 1, s2, 2);
	b[n++] = 0;
	b[n++] = 0;
	assert_int_equal(parse(b, n, &r, &code), 0);
	assert_int_equal(r.opts, 0);
}

static void expect_fail(const uint8_t *b, size_t n, uint16_t want)
{
	struct tftp_req r;
	uint16_t code = 99;
	assert_int_equal(parse(b, n, &r, &code), -EINVAL);
	assert_int_equal(code, want);
}

static void test_malformed(void **state)
{
	(void)state;
	uint8_t b[1200] = {0};
	/* Too short, bad opcodes. */
	expect_fail(b, 0, TFTP_E_BADOP);
	b[0] = 0;
	expect_fail(b, 1, TFTP_E_BADOP);
	const char *s[] = {"f", "octet"};
	size_t n = mkreq(b, 3, s, 2);
	expect_fail(b, n, TFTP_E_BADOP);
	n = mkreq(b, 6, s, 2);
	expect_fail(b, n, TFTP_E_BADOP);
	/* No NUL after the file name or the mode. */
	b[0] = 0;
	b[1] = 1;
	memcpy(b + 2, "file", 4);
	expect_fail(b, 6, TFTP_E_BADOP);
	n = mkreq(b, 1, s, 2);
	expect_fail(b, n - 1, TFTP_E_BADOP);
	expect_fail(b, 4, TFTP_E_BADOP); /* name only */
	/* Empty file name, mail and unknown modes. */
	const char *e[] = {"", "octet"};
	expect_fail(b, mkreq(b, 1, e, 2), TFTP_E_BADOP);
	const char *m[] = {"f", "mail"};
	expect_fail(b, mkreq(b, 1, m, 2), TFTP_E_BADOP);
	const char *u[] = {"f", "binary"};
	expect_fail(b, mkreq(b, 1, u, 2), TFTP_E_BADOP);
	/* Option without a value, value without NUL. */
	const char *o1[] = {"f", "octet", "blksize"};
	expect_fail(b, mkreq(b, 1, o1, 3), TFTP_E_BADOP);
	n = mkreq(b, 1, o1, 3);
	memcpy(b + n, "1024", 4);
	expect_fail(b, n + 4, TFTP_E_BADOP);
	/* Bad numbers. */
	const char *bad[][2] = {{"blksize", "7"},
	                        {"blksize", "65465"},
	                        {"blksize", "-1"},
	                        {"blksize", "12a"},
	                        {"blksize", ""},
	                        {"timeout", "0"},
	                        {"timeout", "256"},
	                        {"tsize", "x"},
	                        {"windowsize", "0"},
	                        {"windowsize", "65536"},
	                        {"tsize", "99999999999999999999999"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *o[] = {"f", "octet", bad[i][0], bad[i][1]};
		expect_fail(b, mkreq(b, 1, o, 4), TFTP_E_OPTNEG);
	}
	/* A duplicate (any case). */
	const char *d[] = {"f", "octet", "blksize", "1024", "BlkSize", "512"};
	expect_fail(b, mkreq(b, 1, d, 6), TFTP_E_OPTNEG);
	/* Oversized: 513 bytes, though well-formed. */
	char big[520];
	memset(big, 'a', sizeof(big));
	big[513 - 2 - 7] = '\0';
	const char *o[] = {big, "octet"};
	n = mkreq(b, 1, o, 2);
	assert_int_equal(n, 513);
	expect_fail(b, n, TFTP_E_BADOP);
	/* 512 bytes exactly is fine. */
	big[512 - 2 - 7] = '\0';
	struct tftp_req r;
	uint16_t code;
	assert_int_equal(parse(b, mkreq(b, 1, o, 2), &r, &code), 0);
	assert_int_equal(strlen(r.filename), 512 - 2 - 7);
}

static void test_ack(void **state)
{
	(void)state;
	uint16_t blk = 0;
	const uint8_t ack[] = {0, 4, 0xff, 0xfe};
	assert_int_equal(tftp_parse_ack(ack, 4, &blk), 0);
	assert_int_equal(blk, 65534);
	assert_int_equal(tftp_parse_ack(ack, 3, &blk), -EINVAL);
	const uint8_t err[] = {0, 5, 0, 8, 'x', 0};
	assert_int_equal(tftp_parse_ack(err, sizeof(err), &blk), -ECONNABORTED);
	assert_int_equal(blk, 8);
	const uint8_t data[] = {0, 3, 0, 1};
	assert_int_equal(tftp_parse_ack(data, 4, &blk), -EINVAL);
}

static void test_encode(void **state)
{
	(void)state;
	uint8_t b[600];
	memcpy(b + 4, "xyz", 3);
	assert_int_equal(tftp_encode_data(b, sizeof(b), 0x1234, b + 4, 3), 7);
	assert_memory_equal(b, "\0\3\x12\x34xyz", 7);
	assert_int_equal(tftp_encode_data(b, 6, 1, "xyz", 3), 0);
	assert_int_equal(tftp_encode_data(b, 4, 0, "", 0), 4);

	struct tftp_req r = {.opts = TFTP_OPT_BLKSIZE | TFTP_OPT_TSIZE | TFTP_OPT_WINDOWSIZE |
	                             TFTP_OPT_TIMEOUT,
	                     .blksize = 1468,
	                     .windowsize = 8,
	                     .timeout = 2};
	static const char want[] = "\0\6blksize\0"
	                           "1468\0timeout\0"
	                           "2\0tsize\0"
	                           "33554433\0windowsize\0"
	                           "8";
	size_t n = tftp_encode_oack(b, sizeof(b), &r, 33554433);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, n);
	assert_int_equal(tftp_encode_oack(b, 10, &r, 1), 0);

	n = tftp_encode_error(b, sizeof(b), 1, NULL);
	assert_int_equal(n, 4 + strlen("File not found") + 1);
	assert_memory_equal(b, "\0\5\0\1File not found", n);
	n = tftp_encode_error(b, sizeof(b), 2, "read-only server");
	assert_memory_equal(b, "\0\5\0\2read-only server", n);
	assert_string_equal(tftp_error_message(8), "Option negotiation refused");
	assert_string_equal(tftp_error_message(9), "Unknown error");
	char longmsg[1000];
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	assert_int_equal(tftp_encode_error(b, sizeof(b), 0, longmsg), 512);
	assert_int_equal(b[511], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_rrq), cmocka_unit_test(test_options),
	    cmocka_unit_test(test_malformed), cmocka_unit_test(test_ack),
	    cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
