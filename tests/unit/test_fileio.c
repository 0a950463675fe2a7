/* Unit tests for src/common/fileio.c: whole reads and writes on a real file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

static int tmpfile_fd(void)
{
	char path[] = "/tmp/test_fileio.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void test_write_then_read(void **state)
{
	uint8_t in[100000], out[100000];
	int fd = tmpfile_fd();

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(fio_write_all(fd, in, 1000), 0);
	assert_int_equal(fio_pwrite_all(fd, in + 1000, sizeof(in) - 1000, 1000), 0);
	assert_int_equal(fio_pread_full(fd, out, sizeof(out), 0), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* Past the end: full fails with -EIO, upto returns what is there. */
	assert_int_equal(fio_pread_full(fd, out, 10, sizeof(in) - 5), -EIO);
	assert_int_equal(fio_pread_upto(fd, out, 10, sizeof(in) - 5), 5);
	assert_memory_equal(out, in + sizeof(in) - 5, 5);
	assert_int_equal(fio_pread_upto(fd, out, 10, sizeof(in) + 50), 0);
	/* Nothing to do is success. */
	assert_int_equal(fio_pread_full(fd, out, 0, 0), 0);
	assert_int_equal(fio_write_all(fd, in, 0), 0);
	close(fd);
}

static void test_bad_fd(void **state)
{
	uint8_t b[8] = {0};

	(void)state;
	assert_int_equal(fio_write_all(-1, b, sizeof(b)), -EBADF);
	assert_int_equal(fio_pwrite_all(-1, b, sizeof(b), 0), -EBADF);
	assert_int_equal(fio_pread_full(-1, b, sizeof(b), 0), -EBADF);
	assert_int_equal(fio_pread_upto(-1, b, sizeof(b), 0), -EBADF);
}

static void test_all_zero(void **state)
{
	uint8_t b[4096] = {0};

	(void)state;
	assert_true(fio_all_zero(b, 0));
	assert_true(fio_all_zero(b, 1));
	assert_true(fio_all_zero(b, sizeof(b)));
	b[4095] = 1;
	assert_false(fio_all_zero(b, sizeof(b)));
	assert_true(fio_all_zero(b, 4095));
	b[0] = 1;
	assert_false(fio_all_zero(b, 1));
}

/*
 * On a file system that cannot share blocks (ext4, tmpfs) the clone fails
 * with one of the codes that tell the caller to copy; where it can (BTRFS,
 * XFS) the range reads back the same. test_imgstore checks sharing on a
 * real BTRFS.
 */
static void test_clone_range(void **state)
{
	static uint8_t in[3 * 4096], out[3 * 4096];
	int src = tmpfile_fd(), dst = tmpfile_fd(), rc;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(fio_pwrite_all(src, in, sizeof(in), 0), 0);
	assert_int_equal(ftruncate(dst, sizeof(in)), 0);
	assert_int_equal(fio_clone_range(src, 0, dst, 0, 0), 0);
	assert_int_equal(fio_clone_range(-1, 0, dst, 0, 4096), -EBADF);
	rc = fio_clone_range(src, 4096, dst, 4096, 4096);
	if (rc == 0) {
		assert_int_equal(fio_pread_full(dst, out, 4096, 4096), 0);
		assert_memory_equal(out, in + 4096, 4096);
	} else {
		assert_true(rc == -EOPNOTSUPP || rc == -EXDEV || rc == -ENOTTY || rc == -EINVAL);
	}
	close(src);
	close(dst);
}

/* Whole files: growing past the first buffer, the cap, and /proc's size-0 files. */
static void test_read_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_fileio.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static uint8_t big[20000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(fio_write_all(fd, big, sizeof(big)), 0);
	close(fd);
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(fio_read_file(path, sizeof(big), &buf, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(buf, big, sizeof(big));
	assert_int_equal(buf[len], 0);
	free(buf);
	buf = NULL;
	assert_int_equal(fio_read_file(path, sizeof(big) - 1, &buf, &len), -EFBIG);
	assert_null(buf);
	unlink(path);
	/* /proc/version reports st_size 0 but has a line of text. */
	assert_int_equal(fio_read_file("/proc/version", 4096, &buf, &len), 0);
	assert_true(len > 10);
	assert_int_equal(strncmp((char *)buf, "Linux version", 13), 0);
	free(buf);
	assert_int_equal(fio_read_file("/tmp", 4096, &buf, &len), -EINVAL);
	assert_int_equal(fio_read_file("/nonexistent/x", 4096, &buf, &len), -ENOENT);
}

static void put_file(const char *path, const char *text, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fio_write_all(fd, text, n), 0);
	close(fd);
}

/* First lines of secret files: every line end, too long, empty, missing. */
static void test_read_line(void **state)
{
	(void)state;
	char path[] = "/tmp/test_fileio.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char out[8];
	static const struct {
		const char *text;
		size_t n;
		int want;
		const char *line;
	} cases[] = {
	    {"secret\nnext\n", 12, 6, "secret"},
	    {"secret\r\n", 8, 6, "secret"},
	    {"secret", 6, 6, "secret"},
	    {"sec\0ret\n", 8, 3, "sec"},
	    {"", 0, 0, ""},
	    {"\nsecret\n", 8, 0, ""},
	    {"1234567", 7, 7, "1234567"},
	    {"12345678\n", 9, -ENAMETOOLONG, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put_file(path, cases[i].text, cases[i].n);
		memset(out, 'x', sizeof(out));
		assert_int_equal(fio_read_line(path, out, sizeof(out)), cases[i].want);
		if (cases[i].line)
			assert_string_equal(out, cases[i].line);
	}
	static char big[5000];
	memset(big, 'a', sizeof(big));
	put_file(path, big, sizeof(big));
	assert_int_equal(fio_read_line(path, out, sizeof(out)), -EFBIG);
	unlink(path);
	assert_int_equal(fio_read_line(path, out, sizeof(out)), -ENOENT);
	assert_int_equal(fio_read_line("/tmp", out, sizeof(out)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_then_read), cmocka_unit_test(test_read_file),
	    cmocka_unit_test(test_bad_fd),          cmocka_unit_test(test_all_zero),
	    cmocka_unit_test(test_clone_range),     cmocka_unit_test(test_read_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
