/*
 * Whole reads and writes on file descriptors: the loops around read(2),
 * write(2), pread(2) and pwrite(2) that retry on EINTR and continue after a
 * short transfer. Every function returns 0 or a negative errno.
 */
#ifndef ML_FILEIO_H
#define ML_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all of p at the file position. */
int fio_write_all(int fd, const void *p, size_t n);
/* Writes all of p at off. */
int fio_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
/* Reads exactly n bytes at off: -EIO when the file ends first. */
int fio_pread_full(int fd, void *p, size_t n, uint64_t off);
/* Reads up to n bytes at off, stopping only at the end of the file: the count or -errno. */
ssize_t fio_pread_upto(int fd, void *p, size_t n, uint64_t off);
/* True when all n bytes are zero (n == 0 included). */
bool fio_all_zero(const void *p, size_t n);

#endif
