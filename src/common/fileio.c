/* Whole reads and writes (see fileio.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

int fio_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int fio_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

ssize_t fio_pread_upto(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int fio_pread_full(int fd, void *p, size_t n, uint64_t off)
{
	ssize_t got = fio_pread_upto(fd, p, n, off);

	if (got < 0)
		return (int)got;
	return (size_t)got == n ? 0 : -EIO;
}

bool fio_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	/* Comparing the buffer with itself shifted by one runs at memcmp's speed. */
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

int fio_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	uint8_t *b = NULL;
	size_t cap, n = 0;
	int ret;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	/*
	 * Read to the end, not st_size bytes: the size may change under us,
	 * and files of /proc (the kernel command line) report a size of 0.
	 */
	cap = (size_t)sb.st_size + 1 > 4096 ? (size_t)sb.st_size + 1 : 4096;
	for (;;) {
		if (n + 1 >= cap || !b) {
			if (b)
				cap *= 2;
			uint8_t *nb = realloc(b, cap);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			b = nb;
		}
		ssize_t got = fio_pread_upto(fd, b + n, cap - 1 - n, n);
		if (got < 0) {
			ret = (int)got;
			goto out;
		}
		n += (size_t)got;
		if (n > max) {
			ret = -EFBIG;
			goto out;
		}
		if (n + 1 < cap)
			break;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	b = NULL;
	ret = 0;
out:
	free(b);
	close(fd);
	return ret;
}

int fio_read_line(const char *path, char *out, size_t outsz)
{
	uint8_t *buf = NULL;
	size_t len = 0, n = 0;
	int rc = fio_read_file(path, 4096, &buf, &len);
	if (rc < 0)
		return rc;
	while (n < len && buf[n] != '\n' && buf[n] != '\r' && buf[n] != '\0')
		n++;
	if (n >= outsz) {
		rc = -ENAMETOOLONG;
	} else {
		memcpy(out, buf, n);
		out[n] = '\0';
		rc = (int)n;
	}
	memset(buf, 0, len);
	free(buf);
	return rc;
}

int fio_write_file_atomic(const char *path, const void *p, size_t n, unsigned mode)
{
	char tmp[4096], dir[4096];
	int ret, fd;
	const char *slash = strrchr(path, '/');

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1,
		         path);
	else
		snprintf(dir, sizeof(dir), ".");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return -errno;
	ret = fio_write_all(fd, p, n);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int fio_clone_range(int src, uint64_t src_off, int dst, uint64_t dst_off, uint64_t n)
{
	struct file_clone_range fcr = {
	    .src_fd = src, .src_offset = src_off, .src_length = n, .dest_offset = dst_off};

	/* A length of 0 would clone to the end of src: never what a caller means. */
	if (n == 0)
		return 0;
	if (src < 0 || dst < 0)
		return -EBADF;
	while (ioctl(dst, FICLONERANGE, &fcr) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int fio_open_beneath(int dirfd, const char *path, uint64_t *size)
{
	while (*path == '/')
		path++;
	if (*path == '\0')
		return -ENOENT;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EACCES;
		p += n;
		while (*p == '/')
			p++;
	}
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}
