/* Whole reads and writes (see fileio.h). */
#include <errno.h>
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
