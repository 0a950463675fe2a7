/*
 * Unit tests for import_hosts.c: realistic dhcpd.conf and dnsmasq files,
 * every per-host error with its line and exact message, hostile input
 * (deep nesting, NULs, huge words and lines, unterminated strings and
 * blocks, stray braces), the caps, format detection, and the call
 * sequence. Every input is parsed whole, byte by byte and in other
 * splits, and must give the same outcome each time.
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

#include "import_hosts.h"
#include "test_import_common.h"

static int run(enum hostsimp_format fmt, const char *in, size_t len, struct out *o, size_t chunk)
{
	struct match_sink sink = {out_record, out_error, o};
	struct hostsimp *p = hostsimp_new(fmt, &sink);
	int rc = 0;

	assert_non_null(p);
	for (size_t i = 0; i < len && rc == 0;) {
		size_t n = len - i < chunk ? len - i : chunk;

		rc = hostsimp_feed(p, in + i, n);
		i += n;
	}
	if (rc == 0)
		rc = hostsimp_finish(p);
	hostsimp_free(p);
	return rc;
}

/* Expects the import of (in, len) as fmt to return want_rc with the outcome want, however split. */
static void check_n(enum hostsimp_format fmt, const char *in, size_t len, int want_rc,
                    const char *want)
{
	static const size_t chunks[] = {SIZE_MAX, 1, 2, 3, 7, 4096};

	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		struct out o = {0};
		int rc = run(fmt, in, len, &o, chunks[k]);

		if (rc != want_rc || strcmp(out_str(&o), want) != 0)
			fail_msg("%s, chunks of %zu: rc %d (want %d)\n--- got:\n%s--- want:\n%s",
			         hostsimp_format_name(fmt), chunks[k], rc, want_rc, out_str(&o),
			         want);
		out_reset(&o);
	}
}

#define check(fmt, in, rc, want) check_n(fmt, in, sizeof(in) - 1, rc, want)

#define MAC_FORMS "expected six hex bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff"

static const char dhcpd_conf[] =
    "# dhcpd.conf for the lab\n"                 /* 1 */
    "option domain-name \"lab.example.edu\";\n"  /* 2 */
    "default-lease-time 600;\n"                  /* 3 */
    "authoritative;\n"                           /* 4 */
    "\n"                                         /* 5 */
    "subnet 10.1.2.0 netmask 255.255.255.0 {\n"  /* 6 */
    "  range 10.1.2.100 10.1.2.200;\n"           /* 7 */
    "  option routers 10.1.2.1;\n"               /* 8 */
    "  host pc01 {\n"                            /* 9 */
    "    hardware ethernet 00:11:22:33:44:55;\n" /* 10 */
    "    fixed-address 10.1.2.11;\n"             /* 11 */
    "  }\n"                                      /* 12 */
    "  group {\n"                                /* 13 */
    "    option domain-name-servers 10.1.2.1;\n" /* 14 */
    "    host pc02 { hardware ethernet 00:11:22:33:44:56; fixed-address 10.1.2.12;"
    " option host-name \"PC02.lab.example.edu\"; }\n"                               /* 15 */
    "  }\n"                                                                         /* 16 */
    "}\n"                                                                           /* 17 */
    "shared-network campus {\n"                                                     /* 18 */
    "  subnet 10.2.0.0 netmask 255.255.0.0 {\n"                                     /* 19 */
    "    pool { range 10.2.1.1 10.2.1.100; }\n"                                     /* 20 */
    "    host \"pc03\" {   # a quoted name; a } in a comment\n"                     /* 21 */
    "      HARDWARE Ethernet 0:1:2:3:4:5;\n"                                        /* 22 */
    "      fixed-address pc03.lab.example.edu, 10.2.0.13, 10.2.0.14;\n"             /* 23 */
    "      if option vendor-class-identifier = \"PXEClient\" { filename \"x\"; }\n" /* 24 */
    "    }\n"                                                                       /* 25 */
    "  }\n"                                                                         /* 26 */
    "}\n"                                                                           /* 27 */
    "host laptop7\n"                                                                /* 28 */
    "{\n"                                                                           /* 29 */
    "  hardware ethernet 02:00:00:00:00:07;\n"                                      /* 30 */
    "}\n";                                                                          /* 31 */

static const char dhcpd_want[] =
    "9 pc01 mac=00:11:22:33:44:55 ip=10.1.2.11 subnet=10.1.2.0/24\n"
    "15 pc02.lab.example.edu mac=00:11:22:33:44:56 ip=10.1.2.12 subnet=10.1.2.0/24\n"
    "21 pc03 mac=00:01:02:03:04:05 ip=10.2.0.13 subnet=10.2.0.0/16\n"
    "28 laptop7 mac=02:00:00:00:00:07\n";

static void test_dhcpd(void **state)
{
	(void)state;
	check(HOSTSIMP_DHCPD, dhcpd_conf, 0, dhcpd_want);
	check(HOSTSIMP_AUTO, dhcpd_conf, 0, dhcpd_want);
	/* CRLF, a BOM, tabs, and everything on one line. */
	check(HOSTSIMP_DHCPD,
	      "\xef\xbb\xbfhost\tpc1{hardware ethernet aabb.ccdd.eeff;}\r\n"
	      "host pc2 { fixed-address 10.0.0.2 ; hardware ethernet 00-11-22-33-44-55 ; }\r\n",
	      0,
	      "1 pc1 mac=aa:bb:cc:dd:ee:ff\n"
	      "2 pc2 mac=00:11:22:33:44:55 ip=10.0.0.2\n");
	/* Escapes in strings; a host without a MAC or address is still a machine. */
	check(HOSTSIMP_DHCPD, "host x { option host-name \"p\\c1\"; }\nhost pc2 { }\n", 0,
	      "1 pc1\n2 pc2\n");
	/* The innermost subnet counts. */
	check(HOSTSIMP_DHCPD,
	      "subnet 10.0.0.0 netmask 255.0.0.0 { subnet 10.9.0.0 netmask 255.255.0.0 {\n"
	      " host a { fixed-address 10.9.1.1; } } host b { } }\n",
	      0, "2 a ip=10.9.1.1 subnet=10.9.0.0/16\n2 b subnet=10.0.0.0/8\n");
}

static void test_dhcpd_errors(void **state)
{
	(void)state;
	check(HOSTSIMP_DHCPD,
	      "host pc04 {\n"                                          /* 1 */
	      "  hardware ethernet 00:11:22:33:44;\n"                  /* 2 */
	      "}\n"                                                    /* 3 */
	      "host pc05 { hardware token-ring 00:11:22:33:44:55; }\n" /* 4 */
	      "subnet 10.1.2.5 netmask 255.255.255.0 {\n"              /* 5 */
	      "  host pc06 { fixed-address 10.1.2.6; }\n"              /* 6 */
	      "}\n"                                                    /* 7 */
	      "subnet 10.1.2.0 netmask 255.0.255.0 { }\n"              /* 8 */
	      "subnet 10.1.2.0 netmask 255.255.255.0 {\n"              /* 9 */
	      "  host pc07 { fixed-address 10.9.9.9; }\n"              /* 10 */
	      "  host pc_08 { }\n"                                     /* 11 */
	      "  host pc09 { option host-name \"pc 09\"; }\n"          /* 12 */
	      "  host pc10 { host pc11 { } }\n"                        /* 13 */
	      "  host pc12 { hardware ethernet 00:11:22:33:44:55 }\n"  /* 14 */
	      "  host pc13 { fixed-address 10.1.2.300; }\n"            /* 15 */
	      "  host pc14 { fixed-address bad_name; }\n"              /* 16 */
	      "  host pc15 pc16 { }\n"                                 /* 17 */
	      "  host pc17 { hardware ethernet; fixed-address; }\n"    /* 18 */
	      "  host pc18 { option host-name; }\n"                    /* 19 */
	      "}\n"                                                    /* 20 */
	      "}\n"                                                    /* 21 */
	      "subnet 10.0.0.0 { }\n"                                  /* 22 */
	      "host pc19 { hardware ethernet 00:11:22:33:44:55; hardware ethernet "
	      "0011.2233.4455; }\n" /* 23 */
	      "option x \"y\" }\n", /* 24 */
	      0,
	      "2! host pc04: bad MAC address \"00:11:22:33:44\": " MAC_FORMS "\n"
	      "4! host pc05: hardware type \"token-ring\" is not supported (only ethernet)\n"
	      "5! subnet: 10.1.2.5/24 has host bits set; did you mean 10.1.2.0/24?\n"
	      "6 pc06 ip=10.1.2.6\n"
	      "8! subnet: netmask 255.0.255.0 is not contiguous\n"
	      "10! host pc07: address 10.9.9.9 is not in subnet 10.1.2.0/24\n"
	      "11! host pc_08: bad host name \"pc_08\": \"_\" is not allowed (letters, digits, '-' "
	      "and '.' only)\n"
	      "12! host pc09: bad host name \"pc 09\": \" \" is not allowed (letters, digits, '-' "
	      "and '.' only)\n"
	      "13! host pc10: a host block inside a host block\n"
	      "14! host pc12: missing ';' before '}'\n"
	      "15! host pc13: bad IPv4 address \"10.1.2.300\": a number is more than 255\n"
	      "16! host pc14: fixed-address: bad host name \"bad_name\": \"_\" is not allowed "
	      "(letters, digits, '-' and '.' only)\n"
	      "17! expected \"host NAME {\"\n"
	      "18! host pc17: expected \"hardware ethernet MAC;\"\n"
	      "19! host pc18: expected \"option host-name NAME;\"\n"
	      "21! '}' without a block to close\n"
	      "22! expected \"subnet ADDRESS netmask MASK {\"\n"
	      "23! host pc19: MAC address 00:11:22:33:44:55 is listed twice\n"
	      "24! missing ';' before '}'\n"
	      "24! '}' without a block to close\n");
}

static void test_dhcpd_hostile(void **state)
{
	char *in = malloc(2 * 1024 * 1024 + 256);
	size_t n;

	(void)state;
	assert_non_null(in);
	/* Unterminated things at the end of the file. */
	check(HOSTSIMP_DHCPD, "host pc1 {\n hardware ethernet 00:11:22:33:44:55;\n", 0,
	      "1! host pc1: the block is not closed\n");
	check(HOSTSIMP_DHCPD, "group {\n host pc1 { }\n", 0,
	      "2 pc1\n1! '{' is not closed at the end of the file\n");
	check(HOSTSIMP_DHCPD, "host pc1 { option host-name \"pc1;\n}\n", 0,
	      "1! host pc1: unterminated quoted string\n");
	check(HOSTSIMP_DHCPD, "option domain-name \"x;\n", 0, "1! unterminated quoted string\n");
	check(HOSTSIMP_DHCPD, "authoritative", 0, "1! missing ';' at the end of the file\n");
	check(HOSTSIMP_DHCPD, "host pc1 { hardware ethernet 00:11:22:33:44:55", 0,
	      "1! host pc1: missing ';' at the end of the file\n");
	/* NUL bytes: in a host statement, outside, in a comment (fine). */
	check(HOSTSIMP_DHCPD, "host pc1 { fixed-address 10.0.0.1\0; }\nhost pc2 { }\n", 0,
	      "1! host pc1: NUL byte in a statement\n2 pc2\n");
	check(HOSTSIMP_DHCPD, "opt\0ion x;\n# \0\nhost pc2 { }\n", 0,
	      "1! NUL byte in a statement\n3 pc2\n");
	/* 32 levels are fine, 33 are not (and stop the import). */
	n = 0;
	for (int i = 0; i < 31; i++)
		in[n++] = '{';
	n += (size_t)snprintf(in + n, 64, "host pc1 { }");
	for (int i = 0; i < 31; i++)
		in[n++] = '}';
	check_n(HOSTSIMP_DHCPD, in, n, 0, "1 pc1\n");
	n = 0;
	for (int i = 0; i < 100000; i++)
		in[n++] = i % 80 == 79 ? '\n' : '{';
	check_n(HOSTSIMP_DHCPD, in, n, -EINVAL, "1! blocks nested deeper than 32 levels\n");
	/* A 1 MB word in a host is that host's error; a 1 MB comment is nothing. */
	n = (size_t)snprintf(in, 64, "host pc1 { option host-name ");
	memset(in + n, 'a', 1024 * 1024);
	n += 1024 * 1024;
	n += (size_t)snprintf(in + n, 64, "; }\n# ");
	memset(in + n, '}', 1024 * 1024);
	n += 1024 * 1024;
	n += (size_t)snprintf(in + n, 64, "\nhost pc2 { }\n");
	check_n(HOSTSIMP_DHCPD, in, n, 0, "1! host pc1: statement longer than 8192 bytes\n3 pc2\n");
	/* Too many words. */
	n = (size_t)snprintf(in, 64, "host pc1 { option");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(in + n, 64, " w%d", i);
	n += (size_t)snprintf(in + n, 64, "; }\n");
	check_n(HOSTSIMP_DHCPD, in, n, 0, "1! host pc1: more than 64 words in one statement\n");
	/* Commas are words too: "x" and 63 commas are 64 words, one more is too many. */
	n = (size_t)snprintf(in, 64, "x");
	for (int i = 0; i < 63; i++)
		n += (size_t)snprintf(in + n, 64, ",");
	in[n] = ';';
	check_n(HOSTSIMP_DHCPD, in, n + 1, 0, "");
	n = (size_t)snprintf(in, 64, "x");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(in + n, 64, ",");
	n += (size_t)snprintf(in + n, 64, ";\n");
	check_n(HOSTSIMP_DHCPD, in, n, 0, "1! more than 64 words in one statement\n");
	free(in);
}

/* Counts records and errors, and keeps the last error. */
struct counts {
	unsigned long records, errors, last_line;
	char last[MATCH_ERR_SIZE];
};

static int count_record(void *user, const struct match_machine *m)
{
	(void)m;
	((struct counts *)user)->records++;
	return 0;
}

static int count_error(void *user, unsigned long line, const char *msg)
{
	struct counts *c = user;

	c->errors++;
	c->last_line = line;
	snprintf(c->last, sizeof(c->last), "%s", msg);
	return 0;
}

static void test_caps(void **state)
{
	const size_t hosts = HOSTSIMP_MAX_RECORDS + 1;
	char *in = malloc(hosts * 32);
	struct counts c = {0};
	struct match_sink sink = {count_record, count_error, &c};
	size_t n = 0;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < hosts; i++)
		n += (size_t)snprintf(in + n, 32, i % 10 == 9 ? "host p_c { }\n" : "host pc { }\n");
	assert_int_equal(hostsimp_parse(HOSTSIMP_DHCPD, in, n, &sink), -E2BIG);
	assert_int_equal(c.records, HOSTSIMP_MAX_RECORDS / 10 * 9);
	assert_int_equal(c.errors, HOSTSIMP_MAX_RECORDS / 10 + 1);
	assert_int_equal(c.last_line, hosts);
	assert_string_equal(c.last, "more than 100000 hosts");

	n = 0;
	for (size_t i = 0; i < hosts; i++)
		n += (size_t)snprintf(in + n, 32, "00:11:22:33:44:55,pc\n");
	memset(&c, 0, sizeof(c));
	assert_int_equal(hostsimp_parse(HOSTSIMP_DNSMASQ, in, n, &sink), -E2BIG);
	assert_int_equal(c.records, HOSTSIMP_MAX_RECORDS);
	assert_string_equal(c.last, "more than 100000 hosts");

	/* Errors that are no hosts are capped too. */
	memset(in, '}', hosts);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hostsimp_parse(HOSTSIMP_DHCPD, in, hosts, &sink), -E2BIG);
	assert_int_equal(c.errors, HOSTSIMP_MAX_RECORDS + 1);
	assert_string_equal(c.last, "more than 100000 errors");
	free(in);
}

static const char dnsmasq_conf[] =
    "# dnsmasq.conf\n"                                                              /* 1 */
    "domain-needed\n"                                                               /* 2 */
    "bogus-priv\n"                                                                  /* 3 */
    "interface=eth0\n"                                                              /* 4 */
    "dhcp-range=10.0.0.50,10.0.0.150,12h\n"                                         /* 5 */
    "dhcp-host=00:11:22:33:44:55,pc01,10.0.0.11\n"                                  /* 6 */
    "dhcp-host=11:22:33:44:55:66,PC02\n"                                            /* 7 */
    "  dhcp-host = 00:11:22:33:44:57, 00:11:22:33:44:58 ,pc03,10.0.0.13,infinite\n" /* 8 */
    "dhcp-host=id:01:02:03:04,set:lab,pc04,10.0.0.14,45m\n"                         /* 9 */
    "dhcp-host=01-00:11:22:33:44:59,tag:red,[fe80::1],pc05.lab.example.edu,10.0.0.15,"
    "ignore\n"                                             /* 10 */
    "dhcp-option=3,10.0.0.1\n"                             /* 11 */
    "--dhcp-host=00:11:22:33:44:60,pc06 # the office PC\n" /* 12 */
    "dhcp-host=00:11:22:33:44:61,pc07#not-a-comment\n"     /* 13 */
    "dhcp-host=00:11:22:33:44:62,3600,pc08\r\n"            /* 14 */
    "dhcp-hostsfile=/etc/dnsmasq.hosts\n"                  /* 15 */
    "dhcp-host=00:11:22:33:44:63,net:old,pc09";            /* 16 */

static void test_dnsmasq(void **state)
{
	static const char want[] =
	    "6 pc01 mac=00:11:22:33:44:55 ip=10.0.0.11\n"
	    "7 pc02 mac=11:22:33:44:55:66\n"
	    "8 pc03 mac=00:11:22:33:44:57,00:11:22:33:44:58 ip=10.0.0.13\n"
	    "9 pc04 ip=10.0.0.14\n"
	    "10 pc05.lab.example.edu mac=00:11:22:33:44:59 ip=10.0.0.15\n"
	    "12 pc06 mac=00:11:22:33:44:60\n"
	    "13! bad host name \"pc07#not-a-comment\": \"#\" is not allowed (letters, digits, '-' "
	    "and '.' only)\n"
	    "14 pc08 mac=00:11:22:33:44:62\n"
	    "16 pc09 mac=00:11:22:33:44:63\n";

	(void)state;
	check(HOSTSIMP_DNSMASQ, dnsmasq_conf, 0, want);
	check(HOSTSIMP_AUTO, dnsmasq_conf, 0, want);
	/* A --dhcp-hostsfile: the same values without "dhcp-host=". */
	check(HOSTSIMP_AUTO,
	      "# hosts of room B-204\n"
	      "00:11:22:33:44:55,pc01,10.0.0.11\n"
	      "\n"
	      "00:11:22:33:44:56,pc02\n"
	      "pc03,10.0.0.13\n"
	      "id:00:01:02,pc04\n",
	      0,
	      "2 pc01 mac=00:11:22:33:44:55 ip=10.0.0.11\n"
	      "4 pc02 mac=00:11:22:33:44:56\n"
	      "5 pc03 ip=10.0.0.13\n"
	      "6 pc04\n");
}

static void test_dnsmasq_errors(void **state)
{
	char *in = malloc(1024 * 1024 + 64);
	size_t n;

	(void)state;
	check(HOSTSIMP_DNSMASQ,
	      "dhcp-host=00:11:22:*:*:*,pc1\n"
	      "dhcp-host=00:11:22:33:44:55,pc1,pc2\n"
	      "dhcp-host=00:11:22:33:44:55,pc1,10.0.0.1,10.0.0.2\n"
	      "dhcp-host=00:11:22:33:44:55,10.0.0.5\n"
	      "dhcp-host=06-00:11:22:33:44:55,pc1\n"
	      "dhcp-host=00:11:22:33:44:55,pc1,10.0.0.256\n"
	      "dhcp-host=00:11:22:33:44,pc1\n"
	      "dhcp-host=\n"
	      "00:11:22:33:44:55\n"
	      "dhcp-host=00:11:22:33:44:55,00:11:22:33:44:55,pc1\n"
	      "dhcp-host=ff:ff:ff:ff:ff:ff,pc1\n",
	      0,
	      "1! bad MAC address \"00:11:22:*:*:*\": wildcards cannot name one machine\n"
	      "2! two host names (\"pc1\" and \"pc2\")\n"
	      "3! two IPv4 addresses (10.0.0.1 and \"10.0.0.2\")\n"
	      "4! no host name (the name is required)\n"
	      "5! hardware type 06 is not supported (only Ethernet, 01)\n"
	      "6! bad IPv4 address \"10.0.0.256\": a number is more than 255\n"
	      "7! bad MAC address \"00:11:22:33:44\": " MAC_FORMS "\n"
	      "8! no host name (the name is required)\n"
	      "9! no host name (the name is required)\n"
	      "10! MAC address 00:11:22:33:44:55 is listed twice\n"
	      "11! MAC address \"ff:ff:ff:ff:ff:ff\" is the broadcast address\n");
	check(HOSTSIMP_DNSMASQ, "dhcp-host=00:11:22:33:44:55,pc\0\ndhcp-host=00:11:22:33:44:56,pc2",
	      0, "1! NUL byte in the line\n2 pc2 mac=00:11:22:33:44:56\n");
	/* A 1 MB dhcp-host line is an error; a 1 MB other line is skipped. */
	n = (size_t)snprintf(in, 64, "dhcp-host=00:11:22:33:44:55,");
	memset(in + n, 'a', 1024 * 1024);
	n += 1024 * 1024;
	n += (size_t)snprintf(in + n, 64, "\ndhcp-host=00:11:22:33:44:56,pc2\n");
	check_n(HOSTSIMP_DNSMASQ, in, n, 0,
	        "1! the line is longer than 8192 bytes\n2 pc2 mac=00:11:22:33:44:56\n");
	n = (size_t)snprintf(in, 64, "address=/");
	memset(in + n, 'a', 1024 * 1024);
	n += 1024 * 1024;
	n += (size_t)snprintf(in + n, 64, "/10.0.0.1\ndhcp-host=00:11:22:33:44:56,pc2\n");
	check_n(HOSTSIMP_DNSMASQ, in, n, 0, "2 pc2 mac=00:11:22:33:44:56\n");
	free(in);
}

static void test_detect(void **state)
{
	static const struct {
		const char *in;
		enum hostsimp_format want;
	} cases[] = {
	    {"host pc1 { }", HOSTSIMP_DHCPD},
	    {"# c\n\nsubnet 10.0.0.0 netmask 255.0.0.0 {", HOSTSIMP_DHCPD},
	    {"  Authoritative;", HOSTSIMP_DHCPD},
	    {"ddns-update-style none;", HOSTSIMP_DHCPD},
	    {"}", HOSTSIMP_DHCPD},
	    {"host{", HOSTSIMP_DHCPD},
	    {"dhcp-host=00:11:22:33:44:55,pc1", HOSTSIMP_DNSMASQ},
	    {"domain-needed\nport=0", HOSTSIMP_DNSMASQ},
	    {"dhcp-host = x", HOSTSIMP_DNSMASQ},
	    {"00:11:22:33:44:55,pc1", HOSTSIMP_DNSMASQ},
	    {"01-00:11:22:33:44:55,pc1", HOSTSIMP_DNSMASQ},
	    {"id:01:02,pc1", HOSTSIMP_DNSMASQ},
	    {"pc1,10.0.0.1", HOSTSIMP_DNSMASQ},
	    {"\xef\xbb\xbf# x\nhost pc1 {", HOSTSIMP_DHCPD},
	    {"", HOSTSIMP_AUTO},
	    {"# only a comment\n\n", HOSTSIMP_AUTO},
	    {"domain-needed\nbogus-priv", HOSTSIMP_AUTO},
	    {"hello world", HOSTSIMP_AUTO},
	    {"hosts pc1 {x", HOSTSIMP_AUTO},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hostsimp_detect(cases[i].in, strlen(cases[i].in)) != cases[i].want)
			fail_msg(
			    "\"%s\": got %s, want %s", cases[i].in,
			    hostsimp_format_name(hostsimp_detect(cases[i].in, strlen(cases[i].in))),
			    hostsimp_format_name(cases[i].want));
}

static void test_auto(void **state)
{
	char *in = malloc(HOSTSIMP_DETECT_MAX + 64);
	struct out o = {0};
	struct match_sink sink = {out_record, out_error, &o};
	struct hostsimp *p;

	(void)state;
	assert_non_null(in);
	/* Comments only: nothing to import, and no error. */
	check(HOSTSIMP_AUTO, "# nothing yet\n\n", 0, "");
	check(HOSTSIMP_AUTO, "", 0, "");
	check(HOSTSIMP_AUTO, "domain-needed\nhello world\n", -EINVAL,
	      "1! cannot tell the format: neither dhcpd.conf statements nor dnsmasq dhcp-host "
	      "lines\n");
	/* A decision late in the file: everything before it is parsed too. */
	memset(in, '#', HOSTSIMP_DETECT_MAX);
	for (size_t i = 79; i < HOSTSIMP_DETECT_MAX; i += 80)
		in[i] = '\n';
	memcpy(in + HOSTSIMP_DETECT_MAX - 22, "\nhost pc1 { }\n", 14);
	check_n(HOSTSIMP_AUTO, in, HOSTSIMP_DETECT_MAX - 8, 0, "820 pc1\n");
	/* No decision in the first 64 KiB is fatal. */
	check_n(HOSTSIMP_AUTO, in, HOSTSIMP_DETECT_MAX - 22, 0, "");
	memcpy(in + HOSTSIMP_DETECT_MAX - 22, "##############\n", 15);
	memcpy(in + HOSTSIMP_DETECT_MAX, "host pc1 { }\n", 13);
	check_n(HOSTSIMP_AUTO, in, HOSTSIMP_DETECT_MAX + 13, -EINVAL,
	        "1! cannot tell the format: no dhcpd.conf statement or dnsmasq dhcp-host line in "
	        "the first 65536 bytes\n");

	p = hostsimp_new(HOSTSIMP_AUTO, &sink);
	assert_non_null(p);
	assert_int_equal(hostsimp_format(p), HOSTSIMP_AUTO);
	assert_int_equal(hostsimp_feed(p, "# x\ndhcp-h", 10), 0);
	assert_int_equal(hostsimp_format(p), HOSTSIMP_AUTO);
	assert_int_equal(hostsimp_feed(p, "ost=00:11:22:33:44:55,pc1\n", 26), 0);
	assert_int_equal(hostsimp_format(p), HOSTSIMP_DNSMASQ);
	assert_string_equal(out_str(&o), "2 pc1 mac=00:11:22:33:44:55\n");
	assert_int_equal(hostsimp_finish(p), 0);
	hostsimp_free(p);
	out_reset(&o);
	free(in);
}

static void test_sequence(void **state)
{
	struct out o = {0};
	struct match_sink sink = {out_record, out_error, &o};
	struct hostsimp *p;
	enum hostsimp_format f = HOSTSIMP_DHCPD;

	(void)state;
	assert_null(hostsimp_new((enum hostsimp_format)7, NULL));
	p = hostsimp_new(HOSTSIMP_DHCPD, NULL);
	assert_non_null(p);
	assert_int_equal(hostsimp_feed(p, "host a { }", 10), 0);
	assert_int_equal(hostsimp_finish(p), 0);
	assert_int_equal(hostsimp_finish(p), -EINVAL);
	assert_int_equal(hostsimp_feed(p, "x", 1), -EINVAL);
	hostsimp_free(p);
	hostsimp_free(NULL);

	/* A callback that stops: its code comes back, sticky, with no more callbacks. */
	o.stop_at = 1;
	o.stop_rc = -EINTR;
	p = hostsimp_new(HOSTSIMP_DNSMASQ, &sink);
	assert_int_equal(hostsimp_feed(p, "aa:bb:cc:dd:ee:01,pc1\naa:bb:cc:dd:ee:02,pc2\n", 44),
	                 -EINTR);
	assert_int_equal(hostsimp_finish(p), -EINTR);
	assert_int_equal(o.calls, 1);
	hostsimp_free(p);
	out_reset(&o);
	o.stop_at = 1;
	o.stop_rc = 5;
	assert_int_equal(hostsimp_parse(HOSTSIMP_DHCPD, "}", 1, &sink), -ECANCELED);
	out_reset(&o);

	assert_string_equal(hostsimp_format_name(HOSTSIMP_AUTO), "auto");
	assert_string_equal(hostsimp_format_name(HOSTSIMP_DHCPD), "dhcpd");
	assert_string_equal(hostsimp_format_name(HOSTSIMP_DNSMASQ), "dnsmasq");
	assert_int_equal(hostsimp_format_parse("DNSMASQ", &f), 0);
	assert_int_equal(f, HOSTSIMP_DNSMASQ);
	assert_int_equal(hostsimp_format_parse("auto", &f), 0);
	assert_int_equal(f, HOSTSIMP_AUTO);
	assert_int_equal(hostsimp_format_parse("isc", &f), -EINVAL);
	assert_int_equal(hostsimp_format_parse(NULL, &f), -EINVAL);
	assert_int_equal(f, HOSTSIMP_AUTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dhcpd),         cmocka_unit_test(test_dhcpd_errors),
	    cmocka_unit_test(test_dhcpd_hostile), cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_dnsmasq),       cmocka_unit_test(test_dnsmasq_errors),
	    cmocka_unit_test(test_detect),        cmocka_unit_test(test_auto),
	    cmocka_unit_test(test_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
