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

/*
 * Reads a whole file of at most max bytes into a malloc'ed buffer with a
 * NUL after the last byte (so text can be used as a string). Returns 0,
 * -EFBIG when the file is larger than max, or another -errno.
 */
int fio_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

/*
 * Reads the first line of a small file (at most 4 KiB), such as a password
 * or token file, into out (outsz bytes, NUL included). The line ends at
 * '\n', '\r', a NUL byte or the end of the file. Returns its length,
 * -ENAMETOOLONG when it does not fit in out, or fio_read_file's errors. The
 * bytes read are wiped before they are freed.
 */
int fio_read_line(const char *path, char *out, size_t outsz);

/*
 * Replaces path with exactly p (n bytes) so that a crash leaves either the
 * old or the new content: a temporary file in the same directory, fsync,
 * rename, fsync of the directory. mode is the new file's mode (e.g. 0600).
 */
int fio_write_file_atomic(const char *path, const void *p, size_t n, unsigned mode);

/*
 * Makes n bytes of dst at dst_off share the blocks of src at src_off
 * (FICLONERANGE: a reflink, on BTRFS or XFS), so that they cost no new space
 * until one side is written. Offsets must be multiples of the file system's
 * block size; so must n, unless the range ends at src's end. Returns 0 once
 * the whole range is shared; -EOPNOTSUPP, -EXDEV, -ENOTTY or -EINVAL when
 * the file systems cannot (the caller copies instead); another -errno. After
 * a failure the range of dst may hold part of the data: copy over it.
 */
int fio_clone_range(int src, uint64_t src_off, int dst, uint64_t dst_off, uint64_t n);

/*
 * Opens path (relative; leading slashes are skipped) read-only below the
 * directory dirfd, for servers that hand out files of one tree (TFTP, HTTP
 * boot). A ".." component is refused with -EACCES before anything is
 * looked up, and the kernel (openat2 RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS)
 * refuses with -EXDEV or -ELOOP any symbolic link that leads out. Only a
 * regular file is opened (-EISDIR for anything else); an empty path is
 * -ENOENT. On success the descriptor is returned and *size set.
 */
int fio_open_beneath(int dirfd, const char *path, uint64_t *size);

#endif
