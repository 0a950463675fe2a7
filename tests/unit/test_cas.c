/*
 * Unit tests for the chunk store's layout and writer (cas.h) and for the
 * reader of a version's chunks (chunkrd.h): one image prepared twice, into
 * a data file and through the sink into a chunk store, must give the same
 * manifest and the same stored bytes for every chunk from either source;
 * a missing, short, long or odd chunk file must give the documented error
 * naming the chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "cas.h"
#include "chunkrd.h"
#include "manifest.h"
#include "mlcast.h"
#include "sha256.h"

#define K64 (64u * 1024)
#define NCHUNKS 24

struct fixture {
	char dir[64];
	char image[256];
	char plain[256];   /* a store with a data file */
	char version[256]; /* a store with only a manifest */
	char cas[256];     /* the chunk store */
	int cas_fd;
	struct manifest mp, mv; /* the two manifests */
	char err[1024];
};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		p[i] = (uint8_t)rng_state;
	}
}

static void join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outsz);
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/*
 * 24 chunks of 64 KiB, the last one short: random (0-5), zero (6, 16),
 * compressible (8-13), a copy of chunk 3 (7), mostly zero (20), random rest.
 */
static void make_image(const char *path)
{
	uint8_t *img = calloc(NCHUNKS, K64);
	size_t size = NCHUNKS * K64 - 1000;
	int fd;

	assert_non_null(img);
	fill_random(img, 6 * K64);
	memcpy(img + 7 * K64, img + 3 * K64, K64);
	for (unsigned i = 8; i < 14; i++)
		for (size_t j = 0; j < K64; j++)
			img[i * K64 + j] = (uint8_t)("compressible text, chunk "[j % 25] ^ i);
	fill_random(img + 14 * K64, 2 * K64);
	fill_random(img + 17 * K64, 3 * K64);
	fill_random(img + 20 * K64 + 5, 3000);
	fill_random(img + 21 * K64, size - 21 * K64);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, size), (ssize_t)size);
	close(fd);
	free(img);
}

static int sink_lookup(void *ctx, const uint8_t sha[32], uint8_t *flags, uint32_t *len)
{
	return mc_cas_lookup(*(int *)ctx, sha, flags, len);
}

static int sink_put(void *ctx, const uint8_t sha[32], uint8_t flags, const void *p, uint32_t len)
{
	return mc_cas_put(*(int *)ctx, sha, flags, p, len);
}

static void load(const char *store, struct manifest *m)
{
	char path[300];
	const char *why = NULL;

	join(path, sizeof(path), store, "manifest");
	assert_int_equal(mf_load(path, m, &why), 0);
}

/* Prepares the image into a plain store and, through the sink, into the chunk store. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_stats st;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_cas.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	join(f->image, sizeof(f->image), f->dir, "image");
	join(f->plain, sizeof(f->plain), f->dir, "plain");
	join(f->version, sizeof(f->version), f->dir, "version");
	join(f->cas, sizeof(f->cas), f->dir, "chunks");
	make_image(f->image);
	if (mc_prepare(f->image, f->plain, &o, &st, f->err, sizeof(f->err)) < 0)
		return -1;
	if (mkdir(f->cas, 0750) < 0)
		return -1;
	f->cas_fd = open(f->cas, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->cas_fd < 0)
		return -1;
	o.lookup = sink_lookup;
	o.put = sink_put;
	o.sink_ctx = &f->cas_fd;
	if (mc_prepare(f->image, f->version, &o, &st, f->err, sizeof(f->err)) < 0)
		return -1;
	/* Chunk 7 is a copy of chunk 3: found, not put again. */
	if (st.reused_chunks != 1)
		return -1;
	load(f->plain, &f->mp);
	load(f->version, &f->mv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mf_free(&f->mp);
	mf_free(&f->mv);
	close(f->cas_fd);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Decodes a chunk's stored bytes and checks them against the manifest's hash. */
static void assert_chunk_ok(const struct manifest *m, uint32_t i, const uint8_t *stored)
{
	const struct mf_chunk *c = &m->chunks[i];
	uint32_t raw_len = mf_chunk_raw_len(m, i);
	uint8_t *raw = malloc(m->chunk_size);
	uint8_t digest[SHA256_LEN];

	assert_non_null(raw);
	if (c->flags & MF_ZSTD) {
		size_t n = ZSTD_decompress(raw, raw_len, stored, c->stored_len);

		assert_int_equal(n, raw_len);
	} else {
		memcpy(raw, stored, raw_len);
	}
	sha256_buf(raw, raw_len, digest);
	assert_memory_equal(digest, c->sha256, SHA256_LEN);
	free(raw);
}

/* The path of chunk i's file in the chunk store. */
static void chunk_file(const struct fixture *f, uint32_t i, char *out, size_t outsz)
{
	char rel[MC_CAS_PATH_LEN];

	mc_cas_path(f->mv.chunks[i].sha256, f->mv.chunks[i].flags, rel);
	join(out, outsz, f->cas, rel);
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32];
	char path[MC_CAS_PATH_LEN];

	for (unsigned i = 0; i < 32; i++)
		sha[i] = (uint8_t)(0xa0 + i);
	assert_string_equal(
	    mc_cas_path(sha, MF_ZSTD, path),
	    "a0/a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf.z");
	assert_string_equal(
	    mc_cas_path(sha, 0, path),
	    "a0/a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf.r");
	(void)f;
}

/* The sink writes the same manifest as a plain prepare: offsets as if the data file existed. */
static void test_same_manifest(void **state)
{
	struct fixture *f = *state;
	uint8_t *a, *b;
	size_t alen, blen;
	char data[300];
	struct stat sb;

	assert_int_equal(mf_encode(&f->mp, &a, &alen), 0);
	assert_int_equal(mf_encode(&f->mv, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	join(data, sizeof(data), f->version, "data");
	assert_int_equal(stat(data, &sb), -1);
	/* Both forms are there: 8-13 compress, the random chunks do not. */
	assert_true(f->mv.chunks[8].flags & MF_ZSTD);
	assert_int_equal(f->mv.chunks[0].flags, 0);
	assert_true(f->mv.chunks[6].flags & MF_ZERO);
}

/* Both sources give the same stored bytes for every chunk, and they decode to the image. */
static void test_both_sources_identical(void **state)
{
	struct fixture *f = *state;
	struct mc_chunkrd *rp = NULL, *rv = NULL;
	size_t cap = K64 + 1024;
	uint8_t *a = malloc(cap), *b = malloc(cap);
	unsigned stored = 0;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(mc_chunkrd_open(f->plain, NULL, &f->mp, &rp, f->err, sizeof(f->err)), 0);
	assert_int_equal(mc_chunkrd_open(f->version, f->cas, &f->mv, &rv, f->err, sizeof(f->err)),
	                 0);
	for (uint32_t i = 0; i < f->mp.chunk_count; i++) {
		uint32_t len = f->mp.chunks[i].stored_len;

		memset(a, 0xAA, cap);
		memset(b, 0x55, cap);
		assert_int_equal(mc_chunkrd_read(rp, i, a, cap, f->err, sizeof(f->err)), 0);
		assert_int_equal(mc_chunkrd_read(rv, i, b, cap, f->err, sizeof(f->err)), 0);
		assert_memory_equal(a, b, len);
		if (f->mp.chunks[i].flags & MF_ZERO)
			continue;
		stored++;
		assert_chunk_ok(&f->mp, i, b);
	}
	assert_int_equal(stored, NCHUNKS - 2);
	/* Exactly the stored length is needed, and more is fine. */
	assert_int_equal(
	    mc_chunkrd_read(rv, 8, b, f->mv.chunks[8].stored_len, f->err, sizeof(f->err)), 0);
	assert_int_equal(
	    mc_chunkrd_read(rv, 8, b, f->mv.chunks[8].stored_len - 1, f->err, sizeof(f->err)),
	    -EINVAL);
	assert_int_equal(mc_chunkrd_read(rp, NCHUNKS, a, cap, f->err, sizeof(f->err)), -EINVAL);
	mc_chunkrd_free(rp);
	mc_chunkrd_free(rv);
	free(a);
	free(b);
}

/* Asserts that reading chunk i fails with code and an error holding each of the strings. */
static void expect_read_error(struct fixture *f, uint32_t i, int code, ...)
{
	struct mc_chunkrd *r = NULL;
	uint8_t *buf = malloc(K64 + 1024);
	const char *want;
	va_list ap;

	assert_non_null(buf);
	assert_int_equal(mc_chunkrd_open(f->version, f->cas, &f->mv, &r, f->err, sizeof(f->err)),
	                 0);
	f->err[0] = 0;
	assert_int_equal(mc_chunkrd_read(r, i, buf, K64 + 1024, f->err, sizeof(f->err)), code);
	va_start(ap, code);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (!strstr(f->err, want))
			fail_msg("error \"%s\" lacks \"%s\"", f->err, want);
	}
	va_end(ap);
	/* Its neighbours still read. */
	assert_int_equal(
	    mc_chunkrd_read(r, i == 0 ? 1 : 0, buf, K64 + 1024, f->err, sizeof(f->err)), 0);
	mc_chunkrd_free(r);
	free(buf);
}

static void test_missing_chunk(void **state)
{
	struct fixture *f = *state;
	char path[512], hex[SHA256_HEX_LEN], idx[32];

	chunk_file(f, 4, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	sha256_hex(f->mv.chunks[4].sha256, hex);
	snprintf(idx, sizeof(idx), "chunk 4:");
	/* "chunk 4: DIR/ab/<hash>.r is missing from the chunk store" */
	expect_read_error(f, 4, -ENOENT, idx, hex, "is missing from the chunk store", NULL);
}

static void test_short_and_long_chunk(void **state)
{
	struct fixture *f = *state;
	char path[512], hex[SHA256_HEX_LEN], want[128];
	uint32_t len = f->mv.chunks[9].stored_len;
	int fd;

	/* A short zstd frame. */
	chunk_file(f, 9, path, sizeof(path));
	assert_int_equal(truncate(path, len - 1), 0);
	sha256_hex(f->mv.chunks[9].sha256, hex);
	snprintf(want, sizeof(want), "is %u bytes, the manifest says %u", len - 1, len);
	expect_read_error(f, 9, -EFBIG, "chunk 9:", hex, want, NULL);
	/* An empty one. */
	assert_int_equal(truncate(path, 0), 0);
	snprintf(want, sizeof(want), "is 0 bytes, the manifest says %u", len);
	expect_read_error(f, 9, -EFBIG, "chunk 9:", want, NULL);
	/* One byte too many, then far too many for the buffer. */
	chunk_file(f, 14, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	snprintf(want, sizeof(want), "is %u bytes, the manifest says %u", K64 + 1, K64);
	expect_read_error(f, 14, -EFBIG, "chunk 14:", want, NULL);
	assert_int_equal(truncate(path, 2 * K64), 0);
	expect_read_error(f, 14, -EFBIG, "chunk 14:", "longer than the manifest's", NULL);
}

static void test_not_a_file(void **state)
{
	struct fixture *f = *state;
	char path[512], other[512];

	/* A directory where the chunk should be, then a symbolic link to a real chunk. */
	chunk_file(f, 15, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0750), 0);
	expect_read_error(f, 15, -EIO, "chunk 15:", "not a regular file", NULL);
	assert_int_equal(rmdir(path), 0);
	chunk_file(f, 17, other, sizeof(other));
	assert_int_equal(symlink(other, path), 0);
	expect_read_error(f, 15, -EIO, "chunk 15:", "not a regular file", NULL);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct mc_chunkrd *r = (struct mc_chunkrd *)f; /* overwritten with NULL */
	char path[300];

	assert_int_equal(
	    mc_chunkrd_open(f->version, "/nonexistent/chunks", &f->mv, &r, f->err, sizeof(f->err)),
	    -ENOENT);
	assert_null(r);
	assert_non_null(strstr(f->err, "cannot open chunk store /nonexistent/chunks"));
	/* A version directory has no data file: without --chunks that is an error. */
	assert_int_equal(mc_chunkrd_open(f->version, NULL, &f->mv, &r, f->err, sizeof(f->err)),
	                 -ENOENT);
	assert_non_null(strstr(f->err, "/data: No such file or directory"));
	/* A data file of the wrong size. */
	join(path, sizeof(path), f->plain, "data");
	assert_int_equal(truncate(path, (off_t)f->mp.data_size - 1), 0);
	assert_int_equal(mc_chunkrd_open(f->plain, NULL, &f->mp, &r, f->err, sizeof(f->err)),
	                 -EINVAL);
	assert_non_null(strstr(f->err, "store damaged"));
	mc_chunkrd_free(NULL);
}

static void test_put_and_lookup(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32], flags = 0xff;
	uint32_t len = 0;
	char path[512];
	struct stat sb;

	fill_random(sha, sizeof(sha));
	assert_int_equal(mc_cas_lookup(f->cas_fd, sha, &flags, &len), 0);
	assert_int_equal(mc_cas_put(f->cas_fd, sha, 0, "raw bytes", 9), 0);
	assert_int_equal(mc_cas_lookup(f->cas_fd, sha, &flags, &len), 1);
	assert_int_equal(flags, 0);
	assert_int_equal(len, 9);
	/* The same form again is fine; another form or length is not. */
	assert_int_equal(mc_cas_put(f->cas_fd, sha, 0, "raw bytes", 9), 0);
	assert_int_equal(mc_cas_put(f->cas_fd, sha, 0, "raw bytes!", 10), -EEXIST);
	assert_int_equal(mc_cas_put(f->cas_fd, sha, MF_ZSTD, "frame", 5), -EEXIST);
	/* Bad arguments. */
	assert_int_equal(mc_cas_put(f->cas_fd, sha, MF_ZERO, "x", 1), -EINVAL);
	assert_int_equal(mc_cas_put(f->cas_fd, sha, 0, "x", 0), -EINVAL);
	assert_int_equal(mc_cas_put(f->cas_fd, sha, 0, "x", MC_CAS_MAX_STORED + 1), -EINVAL);
	/* No temp file is left, and the file holds exactly the bytes. */
	{
		char rel[MC_CAS_PATH_LEN];

		mc_cas_path(sha, 0, rel);
		join(path, sizeof(path), f->cas, rel);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size, 9);
		assert_int_equal(sb.st_mode & 0777, 0640);
		path[strlen(f->cas) + 3] = 0; /* the fan-out directory */
		assert_int_equal(stat(path, &sb), 0);
		assert_true(S_ISDIR(sb.st_mode));
	}
	/* An empty chunk file is damage, not a chunk. */
	{
		char rel[MC_CAS_PATH_LEN];
		int fd;

		fill_random(sha, sizeof(sha));
		mc_cas_path(sha, MF_ZSTD, rel);
		assert_int_equal(mc_cas_put(f->cas_fd, sha, MF_ZSTD, "frame", 5), 0);
		join(path, sizeof(path), f->cas, rel);
		fd = open(path, O_WRONLY | O_TRUNC);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(mc_cas_lookup(f->cas_fd, sha, &flags, &len), -EIO);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_manifest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_both_sources_identical, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_chunk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_and_long_chunk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_and_lookup, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
