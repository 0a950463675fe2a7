/*
 * The manifest of a prepared image version: encoding, decoding of untrusted
 * bytes, consistency checks, and atomic load/save. The format is fixed in
 * manifest.h; docs/prepare.md explains it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cursor.h"
#include "fileio.h"
#include "manifest.h"
#include "sha256.h"

#define MF_MAGIC "MLMF"
#define MF_VERSION 1
#define MF_TRAILER_LEN SHA256_LEN
/* A stored chunk may exceed its raw size by at most this (zstd frame overhead). */
#define MF_STORED_SLACK 1024u
/* mf_load() refuses files larger than this. */
#define MF_LOAD_MAX (1024u * 1024 * 1024)

uint32_t mf_chunk_raw_len(const struct manifest *m, uint32_t i)
{
	uint64_t start = (uint64_t)i * m->chunk_size;

	if (start >= m->image_size)
		return 0;
	if (m->image_size - start < m->chunk_size)
		return (uint32_t)(m->image_size - start);
	return m->chunk_size;
}

int mf_validate(const struct manifest *m, const char **why)
{
	const char *reason = NULL;
	uint64_t expect_count;
	uint64_t off = 0;

	if (m->chunk_size < MF_MIN_CHUNK || m->chunk_size > MF_MAX_CHUNK) {
		reason = "chunk size out of range";
		goto out;
	}
	if (m->chunk_size & (m->chunk_size - 1)) {
		reason = "chunk size not a power of two";
		goto out;
	}
	/* An empty image has nothing to send; prepare refuses it too. */
	if (m->image_size == 0) {
		reason = "empty image";
		goto out;
	}
	expect_count = m->image_size / m->chunk_size + (m->image_size % m->chunk_size != 0);
	if (expect_count > MF_MAX_CHUNKS) {
		reason = "too many chunks";
		goto out;
	}
	if (m->chunk_count != expect_count) {
		reason = "chunk count does not match image size";
		goto out;
	}
	if (m->chunk_count > 0 && !m->chunks) {
		reason = "missing chunk table";
		goto out;
	}
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		const struct mf_chunk *c = &m->chunks[i];
		uint32_t raw = mf_chunk_raw_len(m, i);

		if (c->flags & ~(MF_ZERO | MF_ZSTD)) {
			reason = "unknown chunk flag";
			goto out;
		}
		if ((c->flags & MF_ZERO) && (c->flags & MF_ZSTD)) {
			reason = "chunk both zero and compressed";
			goto out;
		}
		if (c->offset != off) {
			reason = "chunk offsets not contiguous";
			goto out;
		}
		if (c->flags & MF_ZERO) {
			if (c->stored_len != 0) {
				reason = "zero chunk with stored bytes";
				goto out;
			}
		} else if (c->flags & MF_ZSTD) {
			if (c->stored_len == 0 || c->stored_len > m->chunk_size + MF_STORED_SLACK) {
				reason = "compressed chunk length out of range";
				goto out;
			}
		} else if (c->stored_len != raw) {
			/* A raw chunk is the raw bytes, so its length is known. */
			reason = "raw chunk length differs from chunk size";
			goto out;
		}
		off += c->stored_len;
	}
	if (off != m->data_size) {
		reason = "data size differs from sum of stored lengths";
		goto out;
	}
out:
	if (why)
		*why = reason;
	return reason ? -EINVAL : 0;
}

/* Length of the encoding of a manifest with n chunks. */
static uint64_t mf_encoded_len(uint64_t n)
{
	return MF_HEADER_LEN + n * MF_ENTRY_LEN + MF_TRAILER_LEN;
}

int mf_encode(const struct manifest *m, uint8_t **out, size_t *outlen)
{
	uint64_t len64 = mf_encoded_len(m->chunk_count);
	struct wcur w;
	uint8_t *buf;
	uint8_t *trailer;

	if (len64 > SIZE_MAX)
		return -ENOMEM;
	buf = malloc((size_t)len64);
	if (!buf)
		return -ENOMEM;
	wcur_init(&w, buf, (size_t)len64);
	wcur_bytes(&w, MF_MAGIC, 4);
	wcur_u16(&w, MF_VERSION);
	wcur_u16(&w, 0);
	wcur_u32(&w, m->chunk_size);
	wcur_u64(&w, m->image_size);
	wcur_u32(&w, m->chunk_count);
	wcur_u64(&w, m->data_size);
	wcur_bytes(&w, m->image_sha256, SHA256_LEN);
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		const struct mf_chunk *c = &m->chunks[i];

		wcur_u8(&w, c->flags);
		wcur_u32(&w, c->stored_len);
		wcur_u64(&w, c->offset);
		wcur_bytes(&w, c->sha256, SHA256_LEN);
	}
	trailer = wcur_reserve(&w, MF_TRAILER_LEN);
	/* The buffer was sized from the same formula, so this cannot fail. */
	if (w.err || !trailer || w.off != (size_t)len64)
		abort();
	sha256_buf(buf, (size_t)len64 - MF_TRAILER_LEN, trailer);
	*out = buf;
	*outlen = (size_t)len64;
	return 0;
}

int mf_decode(const uint8_t *p, size_t len, struct manifest *m, const char **why)
{
	const char *reason = NULL;
	struct manifest tmp = {0};
	uint8_t magic[4];
	uint8_t digest[SHA256_LEN];
	struct cur c;
	int ret = -EINVAL;

	memset(m, 0, sizeof(*m));
	if (len < MF_HEADER_LEN + MF_TRAILER_LEN) {
		reason = "too short";
		goto out;
	}
	cur_init(&c, p, len - MF_TRAILER_LEN);
	cur_bytes(&c, magic, sizeof(magic));
	if (memcmp(magic, MF_MAGIC, 4) != 0) {
		reason = "bad magic";
		goto out;
	}
	if (cur_u16(&c) != MF_VERSION) {
		reason = "unsupported version";
		goto out;
	}
	if (cur_u16(&c) != 0) {
		reason = "unknown header flags";
		goto out;
	}
	tmp.chunk_size = cur_u32(&c);
	tmp.image_size = cur_u64(&c);
	tmp.chunk_count = cur_u32(&c);
	tmp.data_size = cur_u64(&c);
	cur_bytes(&c, tmp.image_sha256, SHA256_LEN);
	if (c.err) {
		reason = "truncated header";
		goto out;
	}
	if (tmp.chunk_count > MF_MAX_CHUNKS) {
		reason = "too many chunks";
		goto out;
	}
	/*
	 * The declared chunk count must be backed by exactly the bytes present
	 * before anything is allocated from it.
	 */
	if (mf_encoded_len(tmp.chunk_count) != len) {
		reason = "length does not match chunk count";
		goto out;
	}
	sha256_buf(p, len - MF_TRAILER_LEN, digest);
	if (!ct_equal(digest, p + len - MF_TRAILER_LEN, SHA256_LEN)) {
		reason = "checksum mismatch";
		goto out;
	}
	if (tmp.chunk_count > 0) {
		tmp.chunks = calloc(tmp.chunk_count, sizeof(*tmp.chunks));
		if (!tmp.chunks) {
			reason = "out of memory";
			ret = -ENOMEM;
			goto out;
		}
	}
	for (uint32_t i = 0; i < tmp.chunk_count; i++) {
		struct mf_chunk *e = &tmp.chunks[i];

		e->flags = cur_u8(&c);
		e->stored_len = cur_u32(&c);
		e->offset = cur_u64(&c);
		cur_bytes(&c, e->sha256, SHA256_LEN);
	}
	if (cur_bad_or_left(&c)) {
		reason = "truncated chunk table";
		goto out;
	}
	if (mf_validate(&tmp, &reason) < 0)
		goto out;
	*m = tmp;
	tmp.chunks = NULL;
	ret = 0;
out:
	free(tmp.chunks);
	if (why)
		*why = ret == 0 ? NULL : reason;
	return ret;
}

int mf_load(const char *path, struct manifest *m, const char **why)
{
	const char *reason = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat sb;
	int fd = -1;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		reason = "cannot open manifest";
		goto out;
	}
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		reason = "cannot stat manifest";
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		reason = "manifest is not a regular file";
		goto out;
	}
	if (sb.st_size > (off_t)MF_LOAD_MAX) {
		ret = -EFBIG;
		reason = "manifest larger than 1 GiB";
		goto out;
	}
	/*
	 * Read one byte more than stat promised so that a file that grew
	 * meanwhile is noticed instead of silently cut.
	 */
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		reason = "out of memory";
		goto out;
	}
	while (len < (size_t)sb.st_size + 1) {
		ssize_t n = read(fd, buf + len, (size_t)sb.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			reason = "cannot read manifest";
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len != (size_t)sb.st_size) {
		ret = -EIO;
		reason = "manifest changed while being read";
		goto out;
	}
	ret = mf_decode(buf, len, m, &reason);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (why)
		*why = reason;
	return ret;
}

int mf_save(const char *path, const struct manifest *m)
{
	const char *slash = strrchr(path, '/');
	char tmp[PATH_MAX];
	char dir[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = -1;
	int dfd = -1;
	int made = 0;
	int ret;
	int n;

	/* A broken manifest never reaches the disk. */
	ret = mf_validate(m, NULL);
	if (ret < 0)
		goto out;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	if (!slash)
		n = snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		n = snprintf(dir, sizeof(dir), "/");
	else
		n = snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	ret = mf_encode(m, &buf, &len);
	if (ret < 0)
		goto out;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	made = 1;
	/* mkostemp() creates 0600; a manifest is as public as its data file. */
	if (fchmod(fd, 0644) < 0) {
		ret = -errno;
		goto out;
	}
	ret = fio_write_all(fd, buf, len);
	if (ret < 0)
		goto out;
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto out;
	}
	made = 0;
	/* The rename is durable only once the directory itself is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		ret = -errno;
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (made)
		unlink(tmp);
	free(buf);
	return ret;
}

void mf_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->chunks);
	memset(m, 0, sizeof(*m));
}
