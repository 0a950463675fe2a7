/*
 * Unit tests for match.c: every accepted and refused form of MAC and IPv4
 * addresses, subnets, host names, tags, rooms and notes with their exact
 * messages; glob and domain matching, including patterns built to make a
 * backtracking matcher blow up; and the machine setters' all-or-none rule.
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

#include "match.h"

#define MAC_FORMS "expected six hex bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff"

/* Expects s to parse as a MAC address whose canonical form is want. */
static void mac_ok(const char *s, const char *want)
{
	uint8_t mac[MATCH_MAC_BYTES];
	char out[MATCH_MAC_SIZE], err[MATCH_ERR_SIZE] = "";

	if (match_mac_parse(s, strlen(s), mac, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", s, err);
	match_mac_format(mac, out);
	assert_string_equal(out, want);
}

/* Expects (s, len) to be refused with exactly the message want, leaving the output alone. */
static void mac_bad_n(const char *s, size_t len, const char *want)
{
	uint8_t mac[MATCH_MAC_BYTES] = {1, 2, 3, 4, 5, 6};
	const uint8_t orig[MATCH_MAC_BYTES] = {1, 2, 3, 4, 5, 6};
	char err[MATCH_ERR_SIZE] = "";

	assert_int_equal(match_mac_parse(s, len, mac, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_memory_equal(mac, orig, sizeof(mac));
	/* Without a buffer for the message, the result is the same. */
	assert_int_equal(match_mac_parse(s, len, mac, NULL, 0), -EINVAL);
}

static void mac_bad(const char *s, const char *want)
{
	mac_bad_n(s, strlen(s), want);
}

static void test_mac_ok(void **state)
{
	(void)state;
	mac_ok("00:11:22:33:44:55", "00:11:22:33:44:55");
	mac_ok("AA:BB:CC:DD:EE:0F", "aa:bb:cc:dd:ee:0f");
	mac_ok("aa-BB-cc-DD-ee-fe", "aa:bb:cc:dd:ee:fe");
	mac_ok("0011.2233.4455", "00:11:22:33:44:55");
	mac_ok("AABB.CCDD.EEFE", "aa:bb:cc:dd:ee:fe");
	/* One digit per byte, as dhcpd and dnsmasq allow. */
	mac_ok("0:1:2:a:b:c", "00:01:02:0a:0b:0c");
	mac_ok("1-2-3-4-5-6", "01:02:03:04:05:06");
	/* Multicast and locally administered addresses are allowed (VMs, bonds). */
	mac_ok("01:00:5e:00:00:01", "01:00:5e:00:00:01");
	mac_ok("02:00:00:00:00:01", "02:00:00:00:00:01");
	mac_ok("ff:ff:ff:ff:ff:fe", "ff:ff:ff:ff:ff:fe");
	mac_ok("00:00:00:00:00:01", "00:00:00:00:00:01");
}

static void test_mac_bad(void **state)
{
	(void)state;
	mac_bad("", "empty MAC address");
	mac_bad("00:11:22:33:44", "bad MAC address \"00:11:22:33:44\": " MAC_FORMS);
	mac_bad("00:11:22:33:44:55:66", "bad MAC address \"00:11:22:33:44:55:66\": " MAC_FORMS);
	mac_bad("00:11:22:33:44:5g", "bad MAC address \"00:11:22:33:44:5g\": " MAC_FORMS);
	mac_bad("001:1:22:33:44:55", "bad MAC address \"001:1:22:33:44:55\": " MAC_FORMS);
	mac_bad("00:11-22:33:44:55", "bad MAC address \"00:11-22:33:44:55\": " MAC_FORMS);
	mac_bad("00::22:33:44:55", "bad MAC address \"00::22:33:44:55\": " MAC_FORMS);
	mac_bad("001122334455", "bad MAC address \"001122334455\": " MAC_FORMS);
	mac_bad(" 00:11:22:33:44:55", "bad MAC address \" 00:11:22:33:44:55\": " MAC_FORMS);
	mac_bad("00:11:22:33:44:55 ", "bad MAC address \"00:11:22:33:44:55 \": " MAC_FORMS);
	mac_bad("0011.2233.445", "bad MAC address \"0011.2233.445\": " MAC_FORMS);
	mac_bad("0011.2233:4455", "bad MAC address \"0011.2233:4455\": " MAC_FORMS);
	mac_bad("00:00:00:00:00:00", "MAC address \"00:00:00:00:00:00\" is all zeros");
	mac_bad("0000.0000.0000", "MAC address \"0000.0000.0000\" is all zeros");
	mac_bad("FF:FF:FF:FF:FF:FF", "MAC address \"FF:FF:FF:FF:FF:FF\" is the broadcast address");
	mac_bad("ffff.ffff.ffff", "MAC address \"ffff.ffff.ffff\" is the broadcast address");
	mac_bad("00:11:22:*:*:*",
	        "bad MAC address \"00:11:22:*:*:*\": wildcards cannot name one machine");
	/* A NUL inside the length is a bad byte, shown escaped, never an early end. */
	mac_bad_n("00:11:22:33:44:55\0", 18,
	          "bad MAC address \"00:11:22:33:44:55\\x00\": " MAC_FORMS);
	mac_bad_n("00:11\0:22:33:44:55", 18,
	          "bad MAC address \"00:11\\x00:22:33:44:55\": " MAC_FORMS);
	/* Only len bytes are read: the rest of the string does not count. */
	mac_bad_n("00:11:22:33:44:55", 14, "bad MAC address \"00:11:22:33:44\": " MAC_FORMS);
	/* A long value is cut in the message. */
	mac_bad(
	    "0123456789012345678901234567890123456789012345678901234567890123",
	    "bad MAC address \"012345678901234567890123456789012345678901234567...\": " MAC_FORMS);
	/* Control bytes are escaped in messages. */
	mac_bad("a\nb", "bad MAC address \"a\\x0ab\": " MAC_FORMS);
}

static void ip_ok(const char *s, uint32_t want)
{
	char err[MATCH_ERR_SIZE] = "", out[MATCH_IP4_SIZE];
	uint32_t ip = 0;

	if (match_ip4_parse(s, strlen(s), &ip, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", s, err);
	assert_int_equal(ip, want);
	match_ip4_format(ip, out);
	assert_string_equal(out, s);
}

static void ip_bad(const char *s, const char *want)
{
	char err[MATCH_ERR_SIZE] = "";
	uint32_t ip = 42;

	assert_int_equal(match_ip4_parse(s, strlen(s), &ip, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_int_equal(ip, 42);
}

#define IP_FORM "expected four numbers 0-255 separated by dots"

static void test_ip4(void **state)
{
	(void)state;
	ip_ok("0.0.0.0", 0);
	ip_ok("10.1.2.3", 0x0a010203);
	ip_ok("255.255.255.255", 0xffffffff);
	ip_ok("192.168.100.200", 0xc0a864c8);
	ip_bad("", "empty IPv4 address");
	ip_bad("10.1.2", "bad IPv4 address \"10.1.2\": " IP_FORM);
	ip_bad("10.1.2.3.4", "bad IPv4 address \"10.1.2.3.4\": " IP_FORM);
	ip_bad("10.1.2.", "bad IPv4 address \"10.1.2.\": " IP_FORM);
	ip_bad(".10.1.2", "bad IPv4 address \".10.1.2\": " IP_FORM);
	ip_bad("10..1.2", "bad IPv4 address \"10..1.2\": " IP_FORM);
	ip_bad("10.1.2.3 ", "bad IPv4 address \"10.1.2.3 \": " IP_FORM);
	ip_bad("+10.1.2.3", "bad IPv4 address \"+10.1.2.3\": " IP_FORM);
	ip_bad("10.1.2.-3", "bad IPv4 address \"10.1.2.-3\": " IP_FORM);
	ip_bad("0x0a.1.2.3", "bad IPv4 address \"0x0a.1.2.3\": " IP_FORM);
	ip_bad("167772160", "bad IPv4 address \"167772160\": " IP_FORM);
	ip_bad("10.1.2.256", "bad IPv4 address \"10.1.2.256\": a number is more than 255");
	ip_bad("10.1.2.1000", "bad IPv4 address \"10.1.2.1000\": a number is more than 255");
	ip_bad("010.1.2.3",
	       "bad IPv4 address \"010.1.2.3\": a number has a leading zero (octal or decimal?)");
	ip_bad("10.1.2.00",
	       "bad IPv4 address \"10.1.2.00\": a number has a leading zero (octal or decimal?)");
	ip_bad("pc1", "bad IPv4 address \"pc1\": " IP_FORM);
}

static void cidr_ok(const char *s, uint32_t net, unsigned prefix)
{
	char err[MATCH_ERR_SIZE] = "", out[MATCH_CIDR_SIZE];
	struct match_cidr c;

	if (match_cidr_parse(s, strlen(s), &c, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", s, err);
	assert_int_equal(c.net, net);
	assert_int_equal(c.prefix, prefix);
	match_cidr_format(&c, out);
	assert_string_equal(out, s);
}

static void cidr_bad(const char *s, const char *want)
{
	char err[MATCH_ERR_SIZE] = "";
	struct match_cidr c = {7, 7};

	assert_int_equal(match_cidr_parse(s, strlen(s), &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_int_equal(c.net, 7);
	assert_int_equal(c.prefix, 7);
}

static void test_cidr(void **state)
{
	struct match_cidr c;
	unsigned prefix = 99;

	(void)state;
	cidr_ok("10.1.2.0/24", 0x0a010200, 24);
	cidr_ok("0.0.0.0/0", 0, 0);
	cidr_ok("10.1.2.5/32", 0x0a010205, 32);
	cidr_ok("172.16.0.0/12", 0xac100000, 12);
	cidr_ok("10.1.2.4/30", 0x0a010204, 30);
	cidr_bad("10.1.2.5/24", "10.1.2.5/24 has host bits set; did you mean 10.1.2.0/24?");
	cidr_bad("172.16.5.0/12", "172.16.5.0/12 has host bits set; did you mean 172.16.0.0/12?");
	cidr_bad("10.0.0.1/0", "10.0.0.1/0 has host bits set; did you mean 0.0.0.0/0?");
	cidr_bad("", "empty subnet");
	cidr_bad("10.1.2.0", "bad subnet \"10.1.2.0\": expected ADDRESS/PREFIX, e.g. 10.1.2.0/24");
	cidr_bad("10.1.2.0/33", "bad subnet \"10.1.2.0/33\": the prefix must be a number 0-32");
	cidr_bad("10.1.2.0/024", "bad subnet \"10.1.2.0/024\": the prefix must be a number 0-32");
	cidr_bad("10.1.2.0/08", "bad subnet \"10.1.2.0/08\": the prefix must be a number 0-32");
	cidr_bad("10.1.2.0/", "bad subnet \"10.1.2.0/\": the prefix must be a number 0-32");
	cidr_bad("10.1.2.0/2a", "bad subnet \"10.1.2.0/2a\": the prefix must be a number 0-32");
	cidr_bad("10.1.2.0/24/1", "bad subnet \"10.1.2.0/24/1\": the prefix must be a number 0-32");
	cidr_bad(
	    "10.1.2/24",
	    "bad subnet \"10.1.2/24\": address: expected four numbers 0-255 separated by dots");
	cidr_bad("10.1.2.0 /24", "bad subnet \"10.1.2.0 /24\": address: expected four numbers "
	                         "0-255 separated by dots");

	assert_int_equal(match_cidr_parse("10.1.0.0/16", 11, &c, NULL, 0), 0);
	assert_true(match_cidr_contains(&c, 0x0a010000));
	assert_true(match_cidr_contains(&c, 0x0a01ffff));
	assert_false(match_cidr_contains(&c, 0x0a020000));
	assert_false(match_cidr_contains(&c, 0x0a00ffff));
	assert_int_equal(match_cidr_parse("0.0.0.0/0", 9, &c, NULL, 0), 0);
	assert_true(match_cidr_contains(&c, 0xffffffff));
	assert_int_equal(match_cidr_parse("10.9.9.9/32", 11, &c, NULL, 0), 0);
	assert_true(match_cidr_contains(&c, 0x0a090909));
	assert_false(match_cidr_contains(&c, 0x0a090908));

	assert_int_equal(match_prefix_mask(0), 0);
	assert_int_equal(match_prefix_mask(24), 0xffffff00);
	assert_int_equal(match_prefix_mask(32), 0xffffffff);
	assert_int_equal(match_netmask_prefix(0xffffff00, &prefix), 0);
	assert_int_equal(prefix, 24);
	assert_int_equal(match_netmask_prefix(0, &prefix), 0);
	assert_int_equal(prefix, 0);
	assert_int_equal(match_netmask_prefix(0xffffffff, &prefix), 0);
	assert_int_equal(prefix, 32);
	assert_int_equal(match_netmask_prefix(0xff00ff00, &prefix), -EINVAL);
	assert_int_equal(match_netmask_prefix(0x00ffffff, &prefix), -EINVAL);
	assert_int_equal(prefix, 32);
}

static void name_ok(const char *s, const char *want)
{
	char err[MATCH_ERR_SIZE] = "", out[MATCH_NAME_SIZE];

	if (match_hostname_normalize(s, strlen(s), out, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", s, err);
	assert_string_equal(out, want);
	assert_int_equal(match_hostname_check(s, strlen(s), NULL, 0), 0);
}

static void name_bad_n(const char *s, size_t len, const char *want)
{
	char err[MATCH_ERR_SIZE] = "", out[MATCH_NAME_SIZE] = "keep";

	assert_int_equal(match_hostname_normalize(s, len, out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_string_equal(out, "keep");
}

static void name_bad(const char *s, const char *want)
{
	name_bad_n(s, strlen(s), want);
}

static void test_hostname(void **state)
{
	char label63[64], label64[65], name[300];

	(void)state;
	name_ok("pc01", "pc01");
	name_ok("PC-01.Lab.Example.EDU", "pc-01.lab.example.edu");
	name_ok("pc01.lab.example.edu.", "pc01.lab.example.edu");
	name_ok("1pc", "1pc");
	name_ok("a", "a");
	name_ok("10.1.2.x", "10.1.2.x");
	name_bad("", "empty host name");
	name_bad(".", "empty host name");
	name_bad("pc_01", "bad host name \"pc_01\": \"_\" is not allowed (letters, digits, '-' "
	                  "and '.' only)");
	name_bad("pc 01", "bad host name \"pc 01\": \" \" is not allowed (letters, digits, '-' "
	                  "and '.' only)");
	name_bad("pc01..lab", "bad host name \"pc01..lab\": empty label");
	name_bad(".pc01", "bad host name \".pc01\": empty label");
	name_bad("pc01..", "bad host name \"pc01.\": empty label");
	name_bad("-pc01", "bad host name \"-pc01\": label \"-pc01\" starts or ends with '-'");
	name_bad("pc01-.lab",
	         "bad host name \"pc01-.lab\": label \"pc01-\" starts or ends with '-'");
	name_bad("10.1.2.3", "bad host name \"10.1.2.3\": it looks like an address");
	name_bad("1234", "bad host name \"1234\": it looks like an address");
	name_bad("pc\xc3\xa9", "bad host name \"pc\\xc3\\xa9\": \"\\xc3\" is not allowed (letters, "
	                       "digits, '-' and '.' only)");
	name_bad_n("pc\0", 3,
	           "bad host name \"pc\\x00\": \"\\x00\" is not allowed (letters, "
	           "digits, '-' and '.' only)");

	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'b', 64);
	label64[64] = '\0';
	name_ok(label63, label63);
	snprintf(name, sizeof(name), "x.%s.y", label64);
	name_bad(name,
	         "bad host name \"x.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...\": label "
	         "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...\" is longer than 63 "
	         "bytes");
	/* 253 bytes is the most; with a trailing dot, 254 bytes are fine. */
	snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63, label63);
	name[253] = '\0';
	assert_int_equal(strlen(name), 253);
	assert_int_equal(match_hostname_check(name, 253, NULL, 0), 0);
	name[253] = '.';
	name[254] = '\0';
	assert_int_equal(match_hostname_check(name, 254, NULL, 0), 0);
	name[253] = 'a';
	assert_int_equal(match_hostname_check(name, 254, NULL, 0), -EINVAL);
}

static bool glob(const char *p, const char *s)
{
	return match_glob(p, strlen(p), s, strlen(s));
}

static void test_glob(void **state)
{
	char pat[MATCH_GLOB_MAX + 2], s[MATCH_GLOB_MAX + 2], err[MATCH_ERR_SIZE];

	(void)state;
	assert_true(glob("pc*", "pc01"));
	assert_true(glob("pc*", "pc"));
	assert_true(glob("PC*", "pc01.lab"));
	assert_true(glob("pc??", "Pc01"));
	assert_false(glob("pc??", "pc1"));
	assert_false(glob("pc??", "pc001"));
	assert_true(glob("*", ""));
	assert_true(glob("", ""));
	assert_false(glob("", "a"));
	assert_true(glob("*.lab.example.edu", "pc1.lab.example.edu"));
	assert_false(glob("*.lab.example.edu", "pc1.xlab.example.edu"));
	assert_true(glob("pc[0-2]*", "pc15"));
	assert_false(glob("pc[0-2]*", "pc35"));
	assert_true(glob("pc[a-c]", "pcB"));
	assert_true(glob("pc[A-C]", "pcb"));
	assert_false(glob("pc[!a-c]", "pcb"));
	assert_true(glob("pc[^a-c]", "pcd"));
	assert_true(glob("pc[]x]", "pc]"));
	assert_true(glob("pc[abc-]", "pc-"));
	/* An unterminated class is a literal '['. */
	assert_true(glob("pc[a", "pc[a"));
	assert_false(glob("pc[a", "pca"));
	assert_true(glob("a\\*b", "a*b"));
	assert_false(glob("a\\*b", "axb"));
	assert_true(glob("*a*b*c*", "xxaxxbxxcxx"));
	assert_false(glob("*a*b*c*", "xxaxxcxxbxx"));
	assert_true(glob("**pc**", "my-pc-1"));
	assert_true(glob("*?", "a"));
	assert_false(glob("*?", ""));

	/*
	 * Hostile: a recursive matcher takes exponential time on many stars
	 * against a long almost-matching name; this one takes about
	 * plen * slen steps. The test would time out otherwise.
	 */
	memset(s, 'a', MATCH_GLOB_MAX);
	s[MATCH_GLOB_MAX] = '\0';
	for (size_t i = 0; i < MATCH_GLOB_MAX - 1; i += 2) {
		pat[i] = 'a';
		pat[i + 1] = '*';
	}
	pat[MATCH_GLOB_MAX - 1] = 'b';
	pat[MATCH_GLOB_MAX] = '\0';
	for (int k = 0; k < 50; k++)
		assert_false(match_glob(pat, MATCH_GLOB_MAX, s, MATCH_GLOB_MAX));
	pat[MATCH_GLOB_MAX - 1] = 'a';
	assert_true(match_glob(pat, MATCH_GLOB_MAX, s, MATCH_GLOB_MAX));
	/* Beyond the cap, nothing matches, not even "*". */
	s[MATCH_GLOB_MAX] = 'a';
	s[MATCH_GLOB_MAX + 1] = '\0';
	assert_false(match_glob("*", 1, s, MATCH_GLOB_MAX + 1));

	assert_int_equal(match_glob_check("pc[0-9]*", 8, err, sizeof(err)), 0);
	assert_int_equal(match_glob_check("pc[0-9", 6, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pattern \"pc[0-9\" has a '[' without its ']'");
	assert_int_equal(match_glob_check("pc\\", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pattern \"pc\\\\\" ends with a lone '\\'");
	assert_int_equal(match_glob_check("", 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty pattern");
	assert_int_equal(match_glob_check("a\0b", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pattern \"a\\x00b\" has a NUL byte");
}

static bool dom(const char *d, const char *n)
{
	return match_domain(d, strlen(d), n, strlen(n));
}

static void test_domain(void **state)
{
	(void)state;
	assert_true(dom("lab.example.edu", "pc1.lab.example.edu"));
	assert_true(dom("lab.example.edu", "a.b.lab.example.edu"));
	assert_true(dom("lab.example.edu", "lab.example.edu"));
	assert_true(dom("LAB.example.EDU", "pc1.lab.Example.edu."));
	assert_true(dom(".lab.example.edu.", "pc1.lab.example.edu"));
	assert_false(dom("lab.example.edu", "pc1.xlab.example.edu"));
	assert_false(dom("lab.example.edu", "xlab.example.edu"));
	assert_false(dom("lab.example.edu", "example.edu"));
	assert_false(dom("lab.example.edu", "pc1.lab.example.edu.evil"));
	assert_false(dom("", "pc1"));
	assert_false(dom(".", "pc1"));
	assert_false(dom("lab", ""));
}

static void test_tags_rooms_notes(void **state)
{
	char err[MATCH_ERR_SIZE], big[MATCH_NOTES_MAX + 2];

	(void)state;
	assert_int_equal(match_tag_check("win11", 5, err, sizeof(err)), 0);
	assert_int_equal(match_tag_check("gpu:rtx", 7, err, sizeof(err)), 0);
	assert_int_equal(match_tag_check("caf\xc3\xa9", 5, err, sizeof(err)), 0);
	assert_int_equal(match_tag_check("", 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty tag");
	assert_int_equal(match_tag_check("a,b", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tag \"a,b\" has a ',' (tags are separated by spaces or ';')");
	assert_int_equal(match_tag_check("a;b", 3, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("a b", 3, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("a\tb", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tag \"a\\x09b\" has a control character");
	assert_int_equal(match_tag_check("a\x7f", 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("a\xc2\x85", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tag \"a\\xc2\\x85\" has a control character");
	assert_int_equal(match_tag_check("\xff", 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tag \"\\xff\" is not valid UTF-8");
	/* Overlong, surrogate, beyond U+10FFFF, truncated. */
	assert_int_equal(match_tag_check("\xc0\xaf", 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("\xe0\x80\xaf", 3, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("\xed\xa0\x80", 3, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("\xf4\x90\x80\x80", 4, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("\xe2\x82", 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(match_tag_check("\xe2\x82\xac", 3, err, sizeof(err)), 0);
	assert_int_equal(match_tag_check("\xf0\x9f\x96\xa5", 4, err, sizeof(err)), 0);
	memset(big, 'x', 65);
	assert_int_equal(match_tag_check(big, 64, err, sizeof(err)), 0);
	assert_int_equal(match_tag_check(big, 65, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tag \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" is "
	                         "longer than 64 bytes");

	assert_int_equal(match_room_check("Room 1.02", 9, err, sizeof(err)), 0);
	assert_int_equal(match_room_check("Salle B;2", 9, err, sizeof(err)), 0);
	assert_int_equal(match_room_check("R,1", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "room name \"R,1\" has a ','");
	assert_int_equal(match_room_check(" R1", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "room name \" R1\" starts or ends with a space");
	assert_int_equal(match_room_check("R\n1", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "room name \"R\\x0a1\" has a control character");
	assert_int_equal(match_room_check("", 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty room name");
	assert_int_equal(match_room_check(big, 65, err, sizeof(err)), -EINVAL);

	assert_int_equal(match_notes_check("", 0, err, sizeof(err)), 0);
	assert_int_equal(match_notes_check("line 1\r\nline 2\tend", 18, err, sizeof(err)), 0);
	assert_int_equal(match_notes_check("bell\a", 5, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "notes has a control character");
	assert_int_equal(match_notes_check("nul\0", 4, err, sizeof(err)), -EINVAL);
	memset(big, 'n', sizeof(big));
	assert_int_equal(match_notes_check(big, MATCH_NOTES_MAX, err, sizeof(err)), 0);
	assert_int_equal(match_notes_check(big, MATCH_NOTES_MAX + 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "notes are longer than 4096 bytes");
}

#define SET(fn, m, s) fn(m, s, strlen(s), err, sizeof(err))

static void test_machine(void **state)
{
	struct match_machine m;
	char err[MATCH_ERR_SIZE] = "";

	(void)state;
	match_machine_clear(&m);
	assert_int_equal(match_machine_check(&m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no host name (the name is required)");
	assert_int_equal(SET(match_machine_set_name, &m, "  PC01.Lab. "), 0);
	assert_string_equal(m.name, "pc01.lab");
	assert_int_equal(SET(match_machine_add_macs, &m, " 00-11-22-33-44-55; AABB.CCDD.EEFE ,"),
	                 0);
	assert_int_equal(m.nmacs, 2);
	assert_string_equal(m.macs[0], "00:11:22:33:44:55");
	assert_string_equal(m.macs[1], "aa:bb:cc:dd:ee:fe");
	assert_int_equal(m.mac[1][5], 0xfe);
	/* All or none: the good first address of a bad list is not kept. */
	assert_int_equal(SET(match_machine_add_macs, &m, "02:00:00:00:00:01 zz"), -EINVAL);
	assert_int_equal(m.nmacs, 2);
	assert_string_equal(m.macs[0], "00:11:22:33:44:55");
	assert_int_equal(SET(match_machine_add_macs, &m, "00:11:22:33:44:55"), -EINVAL);
	assert_string_equal(err, "MAC address 00:11:22:33:44:55 is listed twice");
	assert_int_equal(SET(match_machine_add_macs, &m,
	                     "02:00:00:00:00:01 02:00:00:00:00:02 02:00:00:00:00:03 "
	                     "02:00:00:00:00:04 02:00:00:00:00:05 02:00:00:00:00:06"),
	                 0);
	assert_int_equal(m.nmacs, 8);
	assert_int_equal(SET(match_machine_add_mac, &m, "02:00:00:00:00:07"), -EINVAL);
	assert_string_equal(err, "more than 8 MAC addresses");
	assert_int_equal(m.nmacs, 8);

	assert_int_equal(SET(match_machine_set_ip, &m, " 10.1.2.3 "), 0);
	assert_string_equal(m.ip, "10.1.2.3");
	assert_int_equal(m.ip4, 0x0a010203);
	assert_int_equal(SET(match_machine_set_subnet, &m, "10.1.2.0/24"), 0);
	assert_string_equal(m.subnet, "10.1.2.0/24");
	assert_int_equal(match_machine_check(&m, err, sizeof(err)), 0);
	assert_int_equal(SET(match_machine_set_subnet, &m, "10.1.3.0/24"), 0);
	assert_int_equal(match_machine_check(&m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "address 10.1.2.3 is not in subnet 10.1.3.0/24");
	assert_int_equal(SET(match_machine_set_subnet, &m, "10.1.3.9/24"), -EINVAL);
	assert_string_equal(m.subnet, "10.1.3.0/24");
	assert_int_equal(SET(match_machine_set_subnet, &m, ""), 0);
	assert_string_equal(m.subnet, "");
	assert_int_equal(match_machine_check(&m, err, sizeof(err)), 0);
	assert_int_equal(SET(match_machine_set_ip, &m, "10.1.2.300"), -EINVAL);
	assert_string_equal(m.ip, "10.1.2.3");

	assert_int_equal(SET(match_machine_set_room, &m, " B-204 "), 0);
	assert_string_equal(m.room, "B-204");
	assert_int_equal(SET(match_machine_add_tags, &m, "win11;cad  cad gpu"), 0);
	assert_int_equal(m.ntags, 3);
	assert_string_equal(m.tags[0], "win11");
	assert_string_equal(m.tags[1], "cad");
	assert_string_equal(m.tags[2], "gpu");
	assert_int_equal(SET(match_machine_add_tags, &m, "new bad\x01tag"), -EINVAL);
	assert_string_equal(err, "tag \"bad\\x01tag\" has a control character");
	assert_int_equal(m.ntags, 3);
	assert_int_equal(SET(match_machine_set_notes, &m, "  Teacher's PC\nby the window  "), 0);
	assert_string_equal(m.notes, "Teacher's PC\nby the window");

	/* Setters that fail leave the name as it was. */
	assert_int_equal(SET(match_machine_set_name, &m, "bad name"), -EINVAL);
	assert_string_equal(m.name, "pc01.lab");
	assert_int_equal(SET(match_machine_set_name, &m, ""), -EINVAL);
	assert_string_equal(err, "empty host name");
}

static void test_many_tags(void **state)
{
	struct match_machine m;
	char err[MATCH_ERR_SIZE], list[1024];
	size_t o = 0;

	(void)state;
	match_machine_clear(&m);
	for (int i = 0; i < MATCH_MAX_TAGS; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "t%d ", i);
	assert_int_equal(match_machine_add_tags(&m, list, o, err, sizeof(err)), 0);
	assert_int_equal(m.ntags, MATCH_MAX_TAGS);
	/* Repeats are no new tags; one more is. */
	assert_int_equal(match_machine_add_tags(&m, "t0 t31", 6, err, sizeof(err)), 0);
	assert_int_equal(match_machine_add_tags(&m, "t32", 3, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "more than 32 tags");
	assert_int_equal(m.ntags, MATCH_MAX_TAGS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_ok),   cmocka_unit_test(test_mac_bad),
	    cmocka_unit_test(test_ip4),      cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_hostname), cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_domain),   cmocka_unit_test(test_tags_rooms_notes),
	    cmocka_unit_test(test_machine),  cmocka_unit_test(test_many_tags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
