/* Layout and reader of a content-addressed chunk store (cas.h). */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
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

/* 1 with the length when that form is stored, 0 when not, or -errno. */
static int cas_stat_form(int dir_fd, const uint8_t sha256[32], uint8_t flags, uint32_t *len)
{
	char path[MC_CAS_PATH_LEN];
	struct stat sb;

	mc_cas_path(sha256, flags, path);
	if (fstatat(dir_fd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	if (!S_ISREG(sb.st_mode) || sb.st_size < 1 || sb.st_size > MC_CAS_MAX_STORED)
		return -EIO;
	*len = (uint32_t)sb.st_size;
	return 1;
}

int mc_cas_lookup(int dir_fd, const uint8_t sha256[32], uint8_t *flags, uint32_t *stored_len)
{
	static const uint8_t order[2] = {MF_ZSTD, 0};

	for (unsigned i = 0; i < 2; i++) {
		uint32_t len = 0;
		int ret = cas_stat_form(dir_fd, sha256, order[i], &len);

		if (ret == 0)
			continue;
		if (ret < 0)
			return ret;
		*flags = order[i];
		*stored_len = len;
		return 1;
	}
	return 0;
}

/* 0 when this form is held with this length, -EEXIST for another, 1 when neither form is. */
static int cas_put_check(int dir_fd, const uint8_t sha256[32], uint8_t flags, size_t len)
{
	uint32_t have = 0;
	int ret = cas_stat_form(dir_fd, sha256, flags, &have);

	if (ret != 0)
		return ret < 0 ? ret : (have == len ? 0 : -EEXIST);
	ret = cas_stat_form(dir_fd, sha256, flags & MF_ZSTD ? 0 : MF_ZSTD, &have);
	if (ret < 0)
		return ret;
	return ret > 0 ? -EEXIST : 1;
}

/* Creates DIR/ab/.tmp.<16 random hex digits>; returns its fd with the name in tmp, or -errno. */
static int cas_tmp_create(int sub_fd, char tmp[22])
{
	for (unsigned t = 0; t < 16; t++) {
		uint8_t rnd[8];
		int fd;

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return errno ? -errno : -EIO;
		memcpy(tmp, ".tmp.", 5);
		for (unsigned i = 0; i < sizeof(rnd); i++) {
			tmp[5 + 2 * i] = "0123456789abcdef"[rnd[i] >> 4];
			tmp[6 + 2 * i] = "0123456789abcdef"[rnd[i] & 15];
		}
		tmp[21] = 0;
		fd =
		    openat(sub_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	/* Not -EEXIST: to the caller that means "another form is stored". */
	return -EIO;
}

int mc_cas_put(int dir_fd, const uint8_t sha256[32], uint8_t flags, const void *buf, size_t len)
{
	char path[MC_CAS_PATH_LEN];
	char sub[3];
	char tmp[22];
	bool made_tmp = false;
	int sub_fd = -1;
	int fd = -1;
	int ret;

	if ((flags != 0 && flags != MF_ZSTD) || !buf || len < 1 || len > MC_CAS_MAX_STORED)
		return -EINVAL;
	ret = cas_put_check(dir_fd, sha256, flags, len);
	if (ret <= 0)
		return ret;
	mc_cas_path(sha256, flags, path);
	memcpy(sub, path, 2);
	sub[2] = 0;
	if (mkdirat(dir_fd, sub, 0750) < 0 && errno != EEXIST)
		return -errno;
	sub_fd = openat(dir_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (sub_fd < 0)
		return -errno;
	fd = cas_tmp_create(sub_fd, tmp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	made_tmp = true;
	ret = fio_write_all(fd, buf, len);
	if (ret < 0)
		goto out;
	/* The bytes are on disk before any name says the chunk is complete. */
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (linkat(sub_fd, tmp, sub_fd, path + 3, 0) < 0) {
		ret = -errno;
		/* Another writer linked it first: fine when it is the same form. */
		if (ret == -EEXIST)
			ret = cas_put_check(dir_fd, sha256, flags, len);
		if (ret > 0)
			ret = -EIO;
		goto out;
	}
	ret = 0;
out:
	if (made_tmp)
		unlinkat(sub_fd, tmp, 0);
	if (fd >= 0)
		close(fd);
	close(sub_fd);
	return ret;
}
