/*
 * Unit tests for conf.c: every key type, the INI dialect (comments, CRLF,
 * BOM, ':' separators), and every error with its exact message and line.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

struct cfg {
	char *name;
	uint64_t port;
	char *iface;
	uint64_t rate;
	uint64_t chunk;
	int verbose;
	uint64_t timeout_ms;
	uint64_t workers;
};

static const struct conf_key keys[] = {
    {"", "name", CONF_STR, offsetof(struct cfg, name), 0, 0, "a name"},
    {"net", "port", CONF_UINT, offsetof(struct cfg, port), 1, 65535, "UDP port"},
    {"net", "iface", CONF_STR, offsetof(struct cfg, iface), 0, 0, "interface"},
    {"net", "rate", CONF_RATE, offsetof(struct cfg, rate), 1000, 10000000000ULL, "rate"},
    {"store", "chunk", CONF_SIZE, offsetof(struct cfg, chunk), 65536, 16 << 20, "chunk"},
    {"store", "verbose", CONF_BOOL, offsetof(struct cfg, verbose), 0, 0, "verbose"},
    {"store", "timeout", CONF_DURATION_MS, offsetof(struct cfg, timeout_ms), 100, 3600000, "t"},
    {"store", "workers", CONF_UINT, offsetof(struct cfg, workers), 0, UINT64_MAX, "workers"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Defaults as a caller sets them: strings are heap-allocated (the loader frees them). */
static void defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->name = strdup("default-name");
	c->port = 9000;
	c->rate = 1000000;
	c->chunk = 1 << 20;
	c->verbose = -1;
	c->timeout_ms = 5000;
	c->workers = 7;
}

static void test_full(void **state)
{
	static const char text[] = "; a comment\n"
	                           "# another comment\n"
	                           "name = first host  ; inline comment\n"
	                           "\n"
	                           "[net]\n"
	                           "port=4000\n"
	                           "  \t\n"
	                           "iface :  eth0\n"
	                           "rate = 1.5G\n"
	                           "[store]\n"
	                           "chunk = 4M\n"
	                           "verbose = yes\n"
	                           "timeout = 2.5s\n"
	                           "[net]   ; a section may come back\n";
	struct cfg c;
	char err[256] = "untouched";

	(void)state;
	defaults(&c);
	assert_int_equal(conf_load_string("test.conf", text, keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.name, "first host");
	assert_int_equal(c.port, 4000);
	assert_string_equal(c.iface, "eth0");
	assert_int_equal(c.rate, 1500000000);
	assert_int_equal(c.chunk, 4 << 20);
	assert_int_equal(c.verbose, 1);
	assert_int_equal(c.timeout_ms, 2500);
	/* Keys not in the file keep their defaults. */
	assert_int_equal(c.workers, 7);
	conf_free_strings(keys, NKEYS, &c);
	assert_null(c.name);
	assert_null(c.iface);
}

static void test_dialect(void **state)
{
	/* A BOM, CRLF line ends, no final newline, a '#' that is part of a value. */
	static const char text[] = "\xef\xbb\xbfname=x#y\r\n"
	                           "[store]\r\n"
	                           "workers=18446744073709551615\r\n"
	                           "verbose=off";
	struct cfg c;
	char err[256];

	(void)state;
	defaults(&c);
	assert_int_equal(conf_load_string("t", text, keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "x#y");
	assert_true(c.workers == UINT64_MAX);
	assert_int_equal(c.verbose, 0);
	conf_free_strings(keys, NKEYS, &c);
}

static void test_empty(void **state)
{
	struct cfg c;
	char err[64];

	(void)state;
	defaults(&c);
	assert_int_equal(conf_load_string("t", "", keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_int_equal(
	    conf_load_string("t", "\n\n; only comments\n", keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_int_equal(conf_load_string("t", NULL, keys, NKEYS, &c, err, sizeof(err)), 0);
	/* An empty value is an empty string. */
	assert_int_equal(conf_load_string("t", "name =\n", keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "");
	assert_int_equal(c.port, 9000);
	conf_free_strings(keys, NKEYS, &c);
	conf_free_strings(keys, NKEYS, NULL);
}

static void test_bools(void **state)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
	static const char *const no[] = {"false", "no", "off", "0", "False", "NO", "Off"};
	static const char *const junk[] = {"", "2", "y", "n", "tru", "truee", "on off", "-1"};
	struct cfg c;
	char text[64], err[128];

	(void)state;
	defaults(&c);
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[store]\nverbose = %s\n", yes[i]);
		c.verbose = -1;
		assert_int_equal(conf_load_string("t", text, keys, NKEYS, &c, err, sizeof(err)), 0);
		assert_int_equal(c.verbose, 1);
		snprintf(text, sizeof(text), "[store]\nverbose = %s\n", no[i]);
		assert_int_equal(conf_load_string("t", text, keys, NKEYS, &c, err, sizeof(err)), 0);
		assert_int_equal(c.verbose, 0);
	}
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(text, sizeof(text), "[store]\nverbose = %s\n", junk[i]);
		c.verbose = 5;
		assert_int_equal(conf_load_string("t", text, keys, NKEYS, &c, err, sizeof(err)),
		                 -EINVAL);
		assert_int_equal(c.verbose, 5);
		assert_non_null(strstr(err, "t:2: [store] verbose: not a boolean"));
	}
	conf_free_strings(keys, NKEYS, &c);
}

/* Loads text and expects code and exactly msg. */
static void expect_error(const char *text, int code, const char *msg)
{
	struct cfg c;
	char err[256];
	int rc;

	defaults(&c);
	rc = conf_load_string("test.conf", text, keys, NKEYS, &c, err, sizeof(err));
	if (rc != code || strcmp(err, msg) != 0)
		fail_msg("text:\n%s\ngot %d \"%s\"\nwant %d \"%s\"", text, rc, err, code, msg);
	conf_free_strings(keys, NKEYS, &c);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[net]\nport = 1\nprot = 2\n", -EINVAL,
	             "test.conf:3: [net] prot: unknown key");
	expect_error("bogus = 1\n", -EINVAL, "test.conf:1: bogus: unknown key");
	expect_error("[net]\nname = x\n", -EINVAL, "test.conf:2: [net] name: unknown key");
	expect_error("\n[nte]\nport = 1\n", -EINVAL, "test.conf:2: [nte]: unknown section");
	/* A section with no keys is still checked. */
	expect_error("[net]\nport = 1\n[bogus]\n", -EINVAL,
	             "test.conf:3: [bogus]: unknown section");
	expect_error("[]\n", -EINVAL, "test.conf:1: []: unknown section");
	expect_error("[ net ]\n", -EINVAL, "test.conf:1: [ net ]: unknown section");
	expect_error("[NET]\n", -EINVAL, "test.conf:1: [NET]: unknown section");
	expect_error("[net]\nPort = 1\n", -EINVAL, "test.conf:2: [net] Port: unknown key");

	expect_error("[net]\nport = 65536\n", -ERANGE, "test.conf:2: [net] port: too large");
	expect_error("[net]\nport = 0\n", -ERANGE, "test.conf:2: [net] port: too small");
	expect_error("[net]\nport = 12x\n", -EINVAL, "test.conf:2: [net] port: not a number");
	expect_error("[net]\nport =\n", -EINVAL, "test.conf:2: [net] port: not a number");
	expect_error("[net]\nport = -1\n", -EINVAL, "test.conf:2: [net] port: not a number");
	expect_error("[net]\nport = 99999999999999999999999\n", -ERANGE,
	             "test.conf:2: [net] port: too large");
	expect_error("[net]\nrate = 100\n", -ERANGE, "test.conf:2: [net] rate: too small");
	expect_error("[net]\nrate = fast\n", -EINVAL, "test.conf:2: [net] rate: not a number");
	expect_error("[store]\nchunk = 1k\n", -ERANGE, "test.conf:2: [store] chunk: too small");
	expect_error("[store]\nchunk = 1.5M\n", -EINVAL,
	             "test.conf:2: [store] chunk: not a number");
	expect_error("[store]\ntimeout = 2h\n", -ERANGE, "test.conf:2: [store] timeout: too large");
	expect_error("[store]\ntimeout = 5 s\n", -EINVAL,
	             "test.conf:2: [store] timeout: not a number");

	expect_error("[net]\nport = 1\nport = 2\n", -EINVAL,
	             "test.conf:3: [net] port: duplicate key");
	expect_error("[net]\nport = 1\n[store]\n[net]\nport = 2\n", -EINVAL,
	             "test.conf:5: [net] port: duplicate key");

	expect_error("[net\nport = 1\n", -EINVAL, "test.conf:1: expected ']' after section name");
	expect_error("[net ;]\n", -EINVAL, "test.conf:1: expected ']' after section name");
	expect_error("[net]\nport 1\n", -EINVAL, "test.conf:2: expected 'key = value'");
	expect_error("[net]\nport ;= 1\n", -EINVAL, "test.conf:2: expected 'key = value'");
	expect_error("name = a\n  b\n", -EINVAL,
	             "test.conf:2: indented line (continuation lines are not supported)");
	expect_error("name = a\n\n\t[net]\n", -EINVAL,
	             "test.conf:3: indented line (continuation lines are not supported)");
}

/* The first error wins, and line numbers count comments, blanks and CRLF lines. */
static void test_first_error_and_lines(void **state)
{
	(void)state;
	expect_error("; c\r\n\r\n# c\r\n[net]\r\nport = 0\r\nbogus = 1\r\n", -ERANGE,
	             "test.conf:5: [net] port: too small");
	expect_error("[net]\nbogus = 1\nport = 0\n", -EINVAL,
	             "test.conf:2: [net] bogus: unknown key");
	expect_error("[net]\nport\nport = 0\n", -EINVAL, "test.conf:2: expected 'key = value'");
	expect_error("[net]\nport = 0\nport\n", -ERANGE, "test.conf:2: [net] port: too small");
}

/* Names from the file are escaped in messages. */
static void test_escaped_names(void **state)
{
	(void)state;
	expect_error("[net]\np\x01rt = 1\n", -EINVAL, "test.conf:2: [net] p\\x01rt: unknown key");
	expect_error("[n\x1b[31met]\n", -EINVAL, "test.conf:1: [n\\x1b[31met]: unknown section");
	expect_error("\xff\xfe = 1\n", -EINVAL, "test.conf:1: \\xff\\xfe: unknown key");
}

/* inih's buffer holds 200 bytes; a longer line is an error, not two lines. */
static void test_long_lines(void **state)
{
	char text[1024], want[128];
	struct cfg c;
	char err[256];
	size_t n;

	(void)state;
	/* 197 bytes of line: the longest accepted. */
	n = (size_t)snprintf(text, sizeof(text), "name = ");
	memset(text + n, 'v', 197 - n);
	memcpy(text + 197, "\n", 2);
	defaults(&c);
	assert_int_equal(conf_load_string("t", text, keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.name), 190);
	conf_free_strings(keys, NKEYS, &c);

	/* One more byte, on line 3. */
	n = (size_t)snprintf(text, sizeof(text), "; c\n\nname = ");
	memset(text + n, 'v', 198 - 7);
	memcpy(text + n + 198 - 7, "\nbogus = 1\n", 12);
	snprintf(want, sizeof(want), "test.conf:3: line too long (at most 197 bytes)");
	expect_error(text, -EINVAL, want);

	/* A very long line whose tail looks like a valid key must not be read as one. */
	n = (size_t)snprintf(text, sizeof(text), "[net]\nname = ");
	memset(text + n, ' ', 300);
	memcpy(text + n + 300, "port = 5\n", 10);
	expect_error(text, -EINVAL, "test.conf:2: line too long (at most 197 bytes)");
}

static void test_err_buffer(void **state)
{
	struct cfg c;
	char err[16];

	(void)state;
	defaults(&c);
	memset(err, 'Z', sizeof(err));
	assert_int_equal(conf_load_string("a-long-file-name.conf", "[net]\nport = 0\n", keys, NKEYS,
	                                  &c, err, sizeof(err)),
	                 -ERANGE);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "a-long-file-nam", 15);
	/* No buffer at all is fine too. */
	assert_int_equal(conf_load_string("t", "[net]\nport = 0\n", keys, NKEYS, &c, NULL, 0),
	                 -ERANGE);
	assert_int_equal(conf_load_string("t", "[net]\nport = 0\n", keys, NKEYS, &c, err, 0),
	                 -ERANGE);
	assert_int_equal(conf_load_string(NULL, "bogus=1", keys, NKEYS, &c, err, sizeof(err)),
	                 -EINVAL);
	assert_memory_equal(err, "(config):1: bog", 15);
	conf_free_strings(keys, NKEYS, &c);
}

/* An empty key table: every key is unknown, and nothing breaks. */
static void test_no_keys(void **state)
{
	char err[128];

	(void)state;
	assert_int_equal(conf_load_string("t", "; nothing\n", NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(conf_load_string("t", "a = 1\n", NULL, 0, NULL, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "t:1: a: unknown key");
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_conf.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void test_load_file(void **state)
{
	char path[128], err[256], want[256];
	struct cfg c;
	char *big;

	(void)state;
	defaults(&c);
	snprintf(path, sizeof(path), "%s/ok.conf", tmpdir);
	write_file(path, "[net]\nport = 1234\n", 18);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 1234);

	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	write_file(path, "[net]\nport = 1234\nport = 1\n", 27);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: [net] port: duplicate key", path);
	assert_string_equal(err, want);

	/* Missing: -ENOENT, so a caller can treat a missing default file as empty. */
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.conf"));

	/* A directory. */
	assert_int_equal(conf_load(tmpdir, keys, NKEYS, &c, err, sizeof(err)), -EISDIR);

	/* A NUL byte would end the text early: refused, with its line. */
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	write_file(path, "[net]\nport = 1\0\nbogus = 2\n", 26);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in file", path);
	assert_string_equal(err, want);

	/* Over 1 MiB: refused before parsing; exactly 1 MiB of comments is fine. */
	big = malloc((1 << 20) + 1);
	assert_non_null(big);
	memset(big, '\n', (1 << 20) + 1);
	big[0] = ';';
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	write_file(path, big, 1 << 20);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), 0);
	write_file(path, big, (1 << 20) + 1);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "larger than"));
	free(big);

	/* An empty file. */
	snprintf(path, sizeof(path), "%s/empty.conf", tmpdir);
	write_file(path, "", 0);
	assert_int_equal(conf_load(path, keys, NKEYS, &c, err, sizeof(err)), 0);
	conf_free_strings(keys, NKEYS, &c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_dialect),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_first_error_and_lines),
	    cmocka_unit_test(test_escaped_names),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_err_buffer),
	    cmocka_unit_test(test_no_keys),
	    cmocka_unit_test_setup_teardown(test_load_file, make_tmpdir, remove_tmpdir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
