/* Layout and reader of a content-addressed chunk store (cas.h). */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "manifest.h"
#include "sha256.h"

char *mc_cas_path(const uint8_t sha256[32], uint8_t flags, char out[MC_CAS_PATH_LEN])
{
	char hex[SHA256_HEX_LEN];

	sha256_hex(sha256, hex);
	out[0] = hex[0];
	out[1] = hex[1];
	out[2] = '/';
	memcpy(out + 3, hex, 64);
	out[67] = '.';
	out[68] = flags & MF_ZSTD ? 'z' : 'r';
	out[69] = 0;
	return out;
}

int mc_cas_read(int dir_fd, const uint8_t sha256[32], uint8_t flags, void *buf, size_t cap,
                size_t *len)
{
	char path[MC_CAS_PATH_LEN];
	struct stat sb;
	int fd;
	int ret;

	mc_cas_path(sha256, flags, path);
	fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ELOOP ? -EIO : -errno;
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = -EIO;
		goto out;
	}
	if ((uint64_t)sb.st_size > cap) {
		ret = -EFBIG;
		goto out;
	}
	/* Chunk files never change once linked, so the size read is the size. */
	ret = fio_pread_full(fd, buf, (size_t)sb.st_size, 0);
	if (ret < 0)
		goto out;
	*len = (size_t)sb.st_size;
	ret = 0;
out:
	close(fd);
	return ret;
}
