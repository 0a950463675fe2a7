/*
 * Unit tests for import_csv.c: the RFC 4180 dialect (quotes, doubled
 * quotes, CRLF, lone CR, BOM, blank lines), the header, every row error
 * with its line and exact message, the fatal errors, the caps (a 1 MB
 * line, 100 001 rows, too many fields), callbacks that stop the import,
 * and the call sequence. Every input is parsed whole, byte by byte and in
 * other splits, and must give the same outcome each time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "import_csv.h"
#include "test_import_common.h"

/* Parses in, split in chunks of chunk bytes, into o. Returns the first error or finish's result. */
static int run(const char *in, size_t len, struct out *o, size_t chunk)
{
	struct match_sink sink = {out_record, out_error, o};
	struct csvimp *p = csvimp_new(&sink);
	int rc = 0;

	assert_non_null(p);
	for (size_t i = 0; i < len && rc == 0;) {
		size_t n = len - i < chunk ? len - i : chunk;

		rc = csvimp_feed(p, in + i, n);
		i += n;
	}
	if (rc == 0)
		rc = csvimp_finish(p);
	csvimp_free(p);
	return rc;
}

/* Expects the import of (in, len) to return want_rc with the outcome want, however split. */
static void check_n(const char *in, size_t len, int want_rc, const char *want)
{
	static const size_t chunks[] = {SIZE_MAX, 1, 2, 3, 7, 4096};

	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		struct out o = {0};
		int rc = run(in, len, &o, chunks[k]);

		if (rc != want_rc || strcmp(out_str(&o), want) != 0)
			fail_msg("chunks of %zu: rc %d (want %d)\n--- got:\n%s--- want:\n%s",
			         chunks[k], rc, want_rc, out_str(&o), want);
		out_reset(&o);
	}
}

#define check(in, rc, want) check_n(in, sizeof(in) - 1, rc, want)

#define COLS "name, mac, ip, subnet, room, tags, notes"
#define MAC_FORMS "expected six hex bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff"

static void test_dialect(void **state)
{
	(void)state;
	check("\xef\xbb\xbfName,MAC,ip,Subnet,room,tags,notes\r\n"
	      "pc01,00:11:22:33:44:55,10.1.2.11,10.1.2.0/24,B-204,win11;cad,\r\n"
	      "PC02.lab.example.edu,\"aa-bb-cc-dd-ee-01; AABB.CCDD.EE02\",10.1.2.12,,B-204,"
	      "win11 gpu,\"Teacher's PC, \"\"front\"\"\"\r\n"
	      "\r\n"
	      "pc03,,,,,,\"two\r\nlines\"\r\n"
	      "  pc04  ,  0:1:2:3:4:5  \r\n"
	      "pc05",
	      0,
	      "2 pc01 mac=00:11:22:33:44:55 ip=10.1.2.11 subnet=10.1.2.0/24 room=B-204 "
	      "tags=win11;cad\n"
	      "3 pc02.lab.example.edu mac=aa:bb:cc:dd:ee:01,aa:bb:cc:dd:ee:02 ip=10.1.2.12 "
	      "room=B-204 tags=win11;gpu notes=Teacher's PC, \"front\"\n"
	      "5 pc03 notes=two\\r\\nlines\n"
	      "7 pc04 mac=00:01:02:03:04:05\n"
	      "8 pc05\n");
	/* Any subset of the columns, in any order, quoted or not; LF line ends. */
	check("mac,\" Name \"\n00:11:22:33:44:55,pc1\n\"\",pc2\n", 0,
	      "2 pc1 mac=00:11:22:33:44:55\n3 pc2\n");
	/* Lone CRs end lines too; a comma in a quoted MAC list separates. */
	check("name,mac\rpc1,\"00:11:22:33:44:55,00:11:22:33:44:56\"\rpc2\r", 0,
	      "2 pc1 mac=00:11:22:33:44:55,00:11:22:33:44:56\n3 pc2\n");
	/* Blank lines anywhere, even before the header; spaces-only lines too. */
	check("\n  \n\t\nname\n\npc1\n   \n", 0, "6 pc1\n");
	/* An empty quoted field is a row; a row of empty fields lacks a name. */
	check("name,ip\n\"\"\n,\n", 0,
	      "2! no host name (the name is required)\n3! no host name (the name is required)\n");
	/* A header alone imports nothing and is fine. */
	check("name,mac,ip,subnet,room,tags,notes\r\n", 0, "");
	/* Blanks around a quoted field are skipped, inside it they are kept (and trimmed later). */
	check("name,notes\npc1 ,  \" a, b \"  \n", 0, "2 pc1 notes=a, b\n");
}

static void test_row_errors(void **state)
{
	(void)state;
	check("name,mac,ip,subnet\n"
	      "pc01,00:11:22:33:44,,\n"
	      "pc02,,10.1.2.5,10.1.2.5/24\n"
	      ",00:11:22:33:44:66\n"
	      "pc04,,10.1.3.5,10.1.2.0/24\n"
	      "pc05,,,,extra\n"
	      "pc\"06,,,\n"
	      "\"pc07\"x,,,\n"
	      "pc_08\n"
	      "pc09,00:11:22:33:44:55 00:11:22:33:44:55\n"
	      "pc10,ff:ff:ff:ff:ff:ff\n"
	      "pc11,,010.1.2.3\n"
	      "pc12\n",
	      0,
	      "2! bad MAC address \"00:11:22:33:44\": " MAC_FORMS "\n"
	      "3! 10.1.2.5/24 has host bits set; did you mean 10.1.2.0/24?\n"
	      "4! no host name (the name is required)\n"
	      "5! address 10.1.3.5 is not in subnet 10.1.2.0/24\n"
	      "6! the row has 5 fields but the header names 4\n"
	      "7! a '\"' inside an unquoted field (quote the whole field and double the quote)\n"
	      "8! text after the closing quote of a field\n"
	      "9! bad host name \"pc_08\": \"_\" is not allowed (letters, digits, '-' and '.' "
	      "only)\n"
	      "10! MAC address 00:11:22:33:44:55 is listed twice\n"
	      "11! MAC address \"ff:ff:ff:ff:ff:ff\" is the broadcast address\n"
	      "12! bad IPv4 address \"010.1.2.3\": a number has a leading zero (octal or "
	      "decimal?)\n"
	      "13 pc12\n");
	check("name,room,tags\n"
	      "pc1,\"A,1\"\n"
	      "pc2,,a,b\n"
	      "pc3,,\"a,b\"\n"
	      "pc4,R1,\"x\x01y\"\n",
	      0,
	      "2! room name \"A,1\" has a ','\n"
	      "3! the row has 4 fields but the header names 3\n"
	      "4 pc3 tags=a;b\n"
	      "5! tag \"x\\x01y\" has a control character\n");
	/* A NUL byte anywhere in a row, quoted or not, spoils that row only. */
	check("name,notes\npc\0x\npc2,\"a\0\"\npc3\n", 0,
	      "2! NUL byte in the row\n3! NUL byte in the row\n4 pc3\n");
	/* An unterminated quote swallows the rest of the file: one error, where it opens. */
	check("name,notes\npc1,ok\npc2,\"open\npc3,x\npc4\n", 0,
	      "2 pc1 notes=ok\n3! unterminated quoted field (the quote opens on line 3)\n");
	check("name\n\"", 0, "2! unterminated quoted field (the quote opens on line 2)\n");
	/* A quote closing at the very end is fine. */
	check("name\n\"pc1\"", 0, "2 pc1\n");
}

static void test_caps(void **state)
{
	const size_t big = 1024 * 1024;
	char *in = malloc(big + 64), list[200];
	size_t n = 0;
	int o;

	(void)state;
	assert_non_null(in);
	/* A 1 MB line is an error for its row; the next row is fine. */
	n = (size_t)snprintf(in, 64, "name,notes\npc1,");
	memset(in + n, 'x', big);
	n += big;
	memcpy(in + n, "\npc2,ok\n", 8);
	n += 8;
	check_n(in, n, 0, "2! the row is longer than 8192 bytes\n3 pc2 notes=ok\n");
	/* The same inside quotes, with line breaks in it: lines still count. */
	n = (size_t)snprintf(in, 64, "name,notes\npc1,\"");
	for (size_t i = 0; i < big; i++)
		in[n + i] = i % 1000 == 999 ? '\n' : 'y';
	n += big;
	memcpy(in + n, "\"\npc2\n", 6);
	n += 6;
	check_n(in, n, 0, "2! the row is longer than 8192 bytes\n1051 pc2\n");

	/* Exactly 8192 raw bytes is fine, one more is not. */
	n = (size_t)snprintf(in, 64, "name,notes\npc1,\"");
	memset(in + n, ' ', 8185);
	n += 8185;
	memcpy(in + n, "x\"\n", 3);
	n += 3;
	check_n(in, n, 0, "2 pc1 notes=x\n");
	n = (size_t)snprintf(in, 64, "name,notes\npc1,\"");
	memset(in + n, ' ', 8186);
	n += 8186;
	memcpy(in + n, "x\"\n", 3);
	n += 3;
	check_n(in, n, 0, "2! the row is longer than 8192 bytes\n");

	/* 32 fields are fine (and too many for the header), 33 are too many fields. */
	o = snprintf(list, sizeof(list), "name\npc1");
	for (int i = 1; i < 32; i++)
		o += snprintf(list + o, sizeof(list) - (size_t)o, ",");
	check_n(list, (size_t)o, 0, "2! the row has 32 fields but the header names 1\n");
	o += snprintf(list + o, sizeof(list) - (size_t)o, ",");
	check_n(list, (size_t)o, 0, "2! more than 32 fields\n");
	free(in);
}

/* A sink that only counts, for the row cap. */
static int count_record(void *user, const struct match_machine *m)
{
	(void)m;
	((unsigned long *)user)[0]++;
	return 0;
}

static unsigned long last_error_line;
static char last_error[MATCH_ERR_SIZE];

static int count_error(void *user, unsigned long line, const char *msg)
{
	((unsigned long *)user)[1]++;
	last_error_line = line;
	snprintf(last_error, sizeof(last_error), "%s", msg);
	return 0;
}

static void test_row_cap(void **state)
{
	const size_t rows = CSVIMP_MAX_ROWS + 1;
	char *in = malloc(5 + rows * 4);
	unsigned long counts[2] = {0, 0};
	struct match_sink sink = {count_record, count_error, counts};
	size_t n = 0;

	(void)state;
	assert_non_null(in);
	memcpy(in, "name\n", 5);
	n = 5;
	/* Every tenth row is bad: bad rows count towards the cap too. */
	for (size_t i = 0; i < rows; i++) {
		memcpy(in + n, i % 10 == 9 ? "p_c\n" : "pc1\n", 4);
		n += 4;
	}
	assert_int_equal(csvimp_parse(in, n - 4, &sink), 0);
	assert_int_equal(counts[0], CSVIMP_MAX_ROWS / 10 * 9);
	assert_int_equal(counts[1], CSVIMP_MAX_ROWS / 10);
	counts[0] = counts[1] = 0;
	assert_int_equal(csvimp_parse(in, n, &sink), -E2BIG);
	assert_int_equal(counts[0], CSVIMP_MAX_ROWS / 10 * 9);
	assert_int_equal(counts[1], CSVIMP_MAX_ROWS / 10 + 1);
	assert_int_equal(last_error_line, rows + 1);
	assert_string_equal(last_error, "more than 100000 rows");
	free(in);
}

static void test_header_errors(void **state)
{
	(void)state;
	check("name,mac,hostnmae\npc1\n", -EINVAL,
	      "1! unknown column \"hostnmae\" (the first row must name the columns: " COLS ")\n");
	check("name;mac;ip\npc1;;\n", -EINVAL,
	      "1! unknown column \"name;mac;ip\" (the first row must name the columns: " COLS
	      "; fields are separated by ',')\n");
	check("pc01,00:11:22:33:44:55\n", -EINVAL,
	      "1! unknown column \"pc01\" (the first row must name the columns: " COLS ")\n");
	check("\n\nname,MAC,mac\n", -EINVAL, "3! column \"mac\" is named twice\n");
	check("mac,ip\n", -EINVAL, "1! no \"name\" column in the header (columns: " COLS ")\n");
	check("name,,mac\n", -EINVAL, "1! column 2 of the header has no name\n");
	check("", -EINVAL, "1! no header row (the file is empty)\n");
	check("\n \r\n\r\n", -EINVAL, "1! no header row (the file is empty)\n");
	check("\xef\xbb\xbf", -EINVAL, "1! no header row (the file is empty)\n");
	check("name,\"mac\n", -EINVAL,
	      "1! bad header row: unterminated quoted field (the quote opens on line 1)\n");
	check("na\0me\n", -EINVAL, "1! bad header row: NUL byte in the row\n");
	/* A BOM cut short is data: its bytes are shown escaped. */
	check("\xef\xbbname\npc1\n", -EINVAL,
	      "1! unknown column \"\\xef\\xbbname\" (the first row must name the columns: " COLS
	      ")\n");
	check("\xefname\n", -EINVAL,
	      "1! unknown column \"\\xefname\" (the first row must name the columns: " COLS ")\n");
	/* Only the first BOM is skipped. */
	check(
	    "\xef\xbb\xbf\xef\xbb\xbfname\n", -EINVAL,
	    "1! unknown column \"\\xef\\xbb\\xbfname\" (the first row must name the columns: " COLS
	    ")\n");
}

static void test_callbacks_stop(void **state)
{
	static const char in[] = "name\npc1\npc_2\npc3\npc4\n";
	struct out o = {0};
	struct match_sink sink = {out_record, out_error, &o};
	struct csvimp *p;

	(void)state;
	/* The second callback (an error) stops the import with its code. */
	o.stop_at = 2;
	o.stop_rc = -EINTR;
	p = csvimp_new(&sink);
	assert_non_null(p);
	assert_int_equal(csvimp_feed(p, in, sizeof(in) - 1), -EINTR);
	assert_string_equal(
	    out_str(&o), "2 pc1\n3! bad host name \"pc_2\": \"_\" is not allowed (letters, digits, "
	                 "'-' and '.' only)\n");
	/* Sticky, and no more callbacks. */
	assert_int_equal(csvimp_feed(p, "pc5\n", 4), -EINTR);
	assert_int_equal(csvimp_finish(p), -EINTR);
	assert_int_equal(o.calls, 2);
	csvimp_free(p);
	out_reset(&o);

	/* A positive return stops too, as -ECANCELED; here from a record at finish. */
	o.stop_at = 1;
	o.stop_rc = 1;
	p = csvimp_new(&sink);
	assert_int_equal(csvimp_feed(p, "name\npc1", 8), 0);
	assert_int_equal(o.calls, 0);
	assert_int_equal(csvimp_finish(p), -ECANCELED);
	assert_int_equal(o.calls, 1);
	csvimp_free(p);
	out_reset(&o);
}

static void test_sequence(void **state)
{
	struct csvimp *p;

	(void)state;
	/* No sink at all is allowed (a dry run that only wants the return code). */
	p = csvimp_new(NULL);
	assert_non_null(p);
	assert_int_equal(csvimp_feed(p, "name\npc1\n", 9), 0);
	assert_int_equal(csvimp_feed(p, NULL, 0), 0);
	assert_int_equal(csvimp_finish(p), 0);
	assert_int_equal(csvimp_finish(p), -EINVAL);
	assert_int_equal(csvimp_feed(p, "pc2\n", 4), -EINVAL);
	csvimp_free(p);
	csvimp_free(NULL);
	assert_int_equal(csvimp_parse("mac\n", 4, NULL), -EINVAL);
	assert_int_equal(csvimp_parse("name\n", 5, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialect),       cmocka_unit_test(test_row_errors),
	    cmocka_unit_test(test_caps),          cmocka_unit_test(test_row_cap),
	    cmocka_unit_test(test_header_errors), cmocka_unit_test(test_callbacks_stop),
	    cmocka_unit_test(test_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
