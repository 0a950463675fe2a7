/* The source of a version's stored chunks: data file or chunk store (chunkrd.h). */
#include "chunkrd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "fileio.h"
#include "manifest.h"

struct mc_chunkrd {
	const struct manifest *m;
	int fd; /* the data file, or the chunk store's directory */
	const char *store_dir;
	const char *chunks_dir; /* NULL: read the data file */
};

int mc_chunkrd_open(const char *store_dir, const char *chunks_dir, const struct manifest *m,
                    struct mc_chunkrd **out, char *err, size_t errsz)
{
	struct mc_chunkrd *r = calloc(1, sizeof(*r));
	char path[4096];
	struct stat sb;
	int ret;

	*out = NULL;
	if (!r) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	r->m = m;
	r->store_dir = store_dir;
	r->chunks_dir = chunks_dir;
	if (chunks_dir) {
		r->fd = open(chunks_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r->fd < 0) {
			ret = -errno;
			snprintf(err, errsz, "cannot open chunk store %s: %s", chunks_dir,
			         strerror(-ret));
			goto fail;
		}
		*out = r;
		return 0;
	}
	ret = snprintf(path, sizeof(path), "%s/data", store_dir);
	if (ret < 0 || (size_t)ret >= sizeof(path)) {
		snprintf(err, errsz, "store path too long");
		ret = -ENAMETOOLONG;
		r->fd = -1;
		goto fail;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &sb) < 0) {
		ret = -errno;
		snprintf(err, errsz, "%s: %s", path, strerror(-ret));
		goto fail;
	}
	if ((uint64_t)sb.st_size != m->data_size) {
		snprintf(err, errsz, "%s: %llu bytes, the manifest says %llu: store damaged", path,
		         (unsigned long long)sb.st_size, (unsigned long long)m->data_size);
		ret = -EINVAL;
		goto fail;
	}
	/* The readers go through the file in order; let the kernel read ahead. */
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*out = r;
	return 0;
fail:
	mc_chunkrd_free(r);
	return ret;
}

int mc_chunkrd_read(const struct mc_chunkrd *r, uint32_t i, void *buf, size_t cap, char *err,
                    size_t errsz)
{
	const struct mf_chunk *c;
	char path[MC_CAS_PATH_LEN];
	size_t len = 0;
	bool wrong_len = false;
	int ret;

	if (i >= r->m->chunk_count || cap < r->m->chunks[i].stored_len) {
		snprintf(err, errsz, "internal: chunk %u out of range or buffer too small", i);
		return -EINVAL;
	}
	c = &r->m->chunks[i];
	if (c->flags & MF_ZERO)
		return 0;
	if (!r->chunks_dir) {
		ret = fio_pread_full(r->fd, buf, c->stored_len, c->offset);
		if (ret < 0)
			snprintf(err, errsz, "%s/data: cannot read chunk %u: %s", r->store_dir, i,
			         ret == -EIO ? "short file or I/O error" : strerror(-ret));
		return ret;
	}
	ret = mc_cas_read(r->fd, c->sha256, c->flags & MF_ZSTD, buf, cap, &len);
	if (ret == 0 && len != c->stored_len) {
		wrong_len = true;
		ret = -EFBIG;
	}
	if (ret == 0)
		return 0;
	mc_cas_path(c->sha256, c->flags & MF_ZSTD, path);
	if (ret == -ENOENT)
		snprintf(err, errsz, "chunk %u: %s/%s is missing from the chunk store", i,
		         r->chunks_dir, path);
	else if (wrong_len)
		snprintf(err, errsz,
		         "chunk %u: %s/%s is %zu bytes, the manifest says %u: the chunk store is "
		         "damaged",
		         i, r->chunks_dir, path, len, c->stored_len);
	else if (ret == -EFBIG)
		snprintf(err, errsz,
		         "chunk %u: %s/%s is longer than the manifest's %u bytes: the chunk store "
		         "is damaged",
		         i, r->chunks_dir, path, c->stored_len);
	else
		snprintf(err, errsz, "chunk %u: cannot read %s/%s: %s", i, r->chunks_dir, path,
		         ret == -EIO ? "not a regular file, or an I/O error" : strerror(-ret));
	return ret;
}

void mc_chunkrd_free(struct mc_chunkrd *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}
