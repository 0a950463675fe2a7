/*
 * Unit tests for log.c: line format, levels, truncation, errno, escaping,
 * and whole lines from many threads at once. stderr is pointed at a temp
 * file for each test and read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static int saved_stderr = -1;
static char capture_path[64];

/* Sends fd 2 to a fresh temp file until uncapture(). */
static int capture(void **state)
{
	int fd;

	(void)state;
	snprintf(capture_path, sizeof(capture_path), "/tmp/test_log.XXXXXX");
	fd = mkstemp(capture_path);
	if (fd < 0)
		return -1;
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	/* O_APPEND: concurrent writers never overwrite each other's bytes. */
	if (fcntl(fd, F_SETFL, O_APPEND) < 0 || dup2(fd, STDERR_FILENO) < 0)
		return -1;
	close(fd);
	log_init("mlcast", LOG_LVL_INFO, 0);
	return 0;
}

static char *captured(void);

static int uncapture(void **state)
{
	char *out = captured();

	(void)state;
	dup2(saved_stderr, STDERR_FILENO);
	/* cmocka reports a failed assertion on stderr: show it, not only our log lines. */
	if (strstr(out, "[   LINE   ]") || strstr(out, "Failure"))
		fprintf(stderr, "captured stderr:\n%s", out);
	free(out);
	close(saved_stderr);
	unlink(capture_path);
	return 0;
}

/* Returns what was written to stderr so far (caller frees). */
static char *captured(void)
{
	FILE *f = fopen(capture_path, "r");
	char *buf = calloc(1, 1 << 22);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 22) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_format(void **state)
{
	char *out;

	(void)state;
	log_warn("hello %d %s", 42, "world");
	log_error("boom");
	log_info("info line");
	log_msg(LOG_LVL_WARN, "%s", "");
	log_info("already has a newline\n");
	out = captured();
	assert_string_equal(out, "mlcast: warn: hello 42 world\n"
	                         "mlcast: error: boom\n"
	                         "mlcast: info: info line\n"
	                         "mlcast: warn: \n"
	                         "mlcast: info: already has a newline\n");
	free(out);
}

static void test_levels(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(log_get_level(), LOG_LVL_INFO);
	log_debug("hidden");
	log_set_level(LOG_LVL_DEBUG);
	assert_int_equal(log_get_level(), LOG_LVL_DEBUG);
	log_debug("shown %u", 1u);
	log_set_level(LOG_LVL_ERROR);
	log_warn("hidden");
	log_info("hidden");
	log_error("still shown");
	/* Out-of-range levels are clamped, not trusted. */
	log_set_level((enum log_level)99);
	assert_int_equal(log_get_level(), LOG_LVL_DEBUG);
	log_set_level((enum log_level) - 5);
	assert_int_equal(log_get_level(), LOG_LVL_ERROR);
	out = captured();
	assert_string_equal(out, "mlcast: debug: shown 1\nmlcast: error: still shown\n");
	free(out);
}

static void test_level_parse(void **state)
{
	static const char *const bad[] = {"",       "Error", "WARN",  "warning", "inf",
	                                  "debug ", " info", "trace", "0"};
	enum log_level l = LOG_LVL_ERROR;

	(void)state;
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_LVL_ERROR);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LVL_INFO);
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(log_level_parse(bad[i], &l), -EINVAL);
		assert_int_equal(l, LOG_LVL_DEBUG);
	}
	assert_int_equal(log_level_parse(NULL, &l), -EINVAL);
}

/* A message longer than a line is cut and marked; the line still ends in a newline. */
static void test_truncation(void **state)
{
	char *big = malloc(10000), *out;
	size_t len;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_info("%s", big);
	log_info("after");
	out = captured();
	len = strcspn(out, "\n");
	assert_true(len > 1000);
	assert_true(len < 4096);
	assert_memory_equal(out, "mlcast: info: xxx", 17);
	assert_memory_equal(out + len - 3, "...", 3);
	assert_string_equal(out + len + 1, "mlcast: info: after\n");
	free(out);
	free(big);
}

static void test_errno_kept(void **state)
{
	(void)state;
	errno = EPIPE;
	log_error("x");
	assert_int_equal(errno, EPIPE);
	errno = ENOENT;
	log_debug("filtered");
	assert_int_equal(errno, ENOENT);
}

static void test_ident(void **state)
{
	char ident[200], *out;

	(void)state;
	log_init("mlserver", LOG_LVL_INFO, 0);
	log_info("a");
	/* A long ident is cut, never overflowing. */
	memset(ident, 'i', sizeof(ident) - 1);
	ident[sizeof(ident) - 1] = '\0';
	log_init(ident, LOG_LVL_INFO, 0);
	log_info("b");
	out = captured();
	assert_memory_equal(out, "mlserver: info: a\n", 18);
	assert_true(strlen(out + 18) < 100);
	assert_memory_equal(out + 18, "iiii", 4);
	free(out);
	log_init("mlcast", LOG_LVL_INFO, 0);
}

/* With syslog on, nothing goes to stderr (the message goes to /dev/log, if any). */
static void test_syslog(void **state)
{
	char *out;

	(void)state;
	log_init("test_log", LOG_LVL_INFO, 1);
	log_error("to syslog, from the microlinux unit tests");
	log_init("mlcast", LOG_LVL_INFO, 0);
	log_info("back");
	out = captured();
	assert_string_equal(out, "mlcast: info: back\n");
	free(out);
}

#define THREADS 8
#define LINES 2000

static void *log_thread(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < LINES; i++)
		log_info("thread %d line %d %s", id, i,
		         "padding padding padding padding padding padding padding padding");
	return NULL;
}

/* Every line from every thread arrives whole and exactly once. */
static void test_threads(void **state)
{
	static int seen[THREADS][LINES];
	pthread_t t[THREADS];
	char *out, *line, *save = NULL;
	int total = 0;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	out = captured();
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char want[200];
		const char *p = line + strlen("mlcast: info: thread ");
		int id = 0, n = 0;

		assert_memory_equal(line, "mlcast: info: thread ", 21);
		for (; *p >= '0' && *p <= '9'; p++)
			id = id * 10 + (*p - '0');
		p += strlen(" line ");
		for (; *p >= '0' && *p <= '9'; p++)
			n = n * 10 + (*p - '0');
		assert_true(id < THREADS && n < LINES);
		snprintf(want, sizeof(want), "mlcast: info: thread %d line %d %s", id, n,
		         "padding padding padding padding padding padding padding padding");
		assert_string_equal(line, want);
		seen[id][n]++;
		total++;
	}
	assert_int_equal(total, THREADS * LINES);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < LINES; j++)
			assert_int_equal(seen[i][j], 1);
	free(out);
}

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(log_escape("plain text 123 ~!", 17, out, sizeof(out)),
	                    "plain text 123 ~!");
	assert_string_equal(log_escape("a\nb\r\t", 5, out, sizeof(out)), "a\\x0ab\\x0d\\x09");
	assert_string_equal(log_escape("\x00\x7f\x80\xff", 4, out, sizeof(out)),
	                    "\\x00\\x7f\\x80\\xff");
	/* A NUL in the data does not end it; the length does. */
	assert_string_equal(log_escape("a\0b", 3, out, sizeof(out)), "a\\x00b");
	/* A backslash is doubled, so a forged "\x0a" stays recognisable. */
	assert_string_equal(log_escape("\\x0a", 4, out, sizeof(out)), "\\\\x0a");
	assert_string_equal(log_escape("", 0, out, sizeof(out)), "");
	assert_string_equal(log_escape(NULL, 0, out, sizeof(out)), "");
	/* The returned pointer is out. */
	assert_ptr_equal(log_escape("x", 1, out, sizeof(out)), out);
}

/* Truncation keeps whole units and always NUL-terminates. */
static void test_escape_truncation(void **state)
{
	char out[16];

	(void)state;
	memset(out, 'Z', sizeof(out));
	assert_string_equal(log_escape("abcdef", 6, out, 4), "abc");
	assert_int_equal(out[4], 'Z');
	assert_string_equal(log_escape("ab\n", 3, out, 6), "ab");
	assert_string_equal(log_escape("ab\n", 3, out, 7), "ab\\x0a");
	assert_string_equal(log_escape("a\\", 2, out, 3), "a");
	assert_string_equal(log_escape("a\\", 2, out, 4), "a\\\\");
	assert_string_equal(log_escape("abc", 3, out, 1), "");
	/* outsz 0: nothing written at all. */
	out[0] = 'Q';
	log_escape("abc", 3, out, 0);
	assert_int_equal(out[0], 'Q');
	assert_null(log_escape("abc", 3, NULL, 0));
}

/* Every byte value, each escaped into at most 4 bytes. */
static void test_escape_all_bytes(void **state)
{
	unsigned char in[256];
	char out[256 * 4 + 1];

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	log_escape(in, sizeof(in), out, sizeof(out));
	for (const char *p = out; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	/* 95 printable, one of them the backslash doubled, 161 as \xHH. */
	assert_int_equal(strlen(out), 94 + 2 + 161 * 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_format, capture, uncapture),
	    cmocka_unit_test_setup_teardown(test_levels, capture, uncapture),
	    cmocka_unit_test(test_level_parse),
	    cmocka_unit_test_setup_teardown(test_truncation, capture, uncapture),
	    cmocka_unit_test_setup_teardown(test_errno_kept, capture, uncapture),
	    cmocka_unit_test_setup_teardown(test_ident, capture, uncapture),
	    cmocka_unit_test_setup_teardown(test_syslog, capture, uncapture),
	    cmocka_unit_test_setup_teardown(test_threads, capture, uncapture),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_escape_truncation),
	    cmocka_unit_test(test_escape_all_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
