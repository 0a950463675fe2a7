/*
 * Unit tests for mc_prepare(): real files in a temp dir, stores checked by
 * rebuilding the image from them (decompress, hash, compare bytes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "manifest.h"
#include "mlcast.h"
#include "sha256.h"

#define K64 (64u * 1024)

extern char **environ;

struct fixture {
	char dir[64];
	char image[256];
	char store[256];
	char out[256];
	char err[512];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		p[i] = (uint8_t)rng_state;
	}
}

static void write_at(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void write_random_at(const char *path, uint64_t off, size_t n)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	fill_random(p, n);
	write_at(path, off, p, n);
	free(p);
}

static void make_sized(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* Joins dir and name into out, failing the test when it does not fit. */
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

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_prepare.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	join(f->image, sizeof(f->image), f->dir, "image");
	join(f->store, sizeof(f->store), f->dir, "store");
	join(f->out, sizeof(f->out), f->dir, "unpacked");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int read_all_file(const char *path, uint8_t **out, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);
	size_t have = 0;

	if (fd < 0 || fstat(fd, &sb) < 0)
		return -1;
	*out = malloc((size_t)sb.st_size + 1);
	assert_non_null(*out);
	while (have < (size_t)sb.st_size) {
		ssize_t n = read(fd, *out + have, (size_t)sb.st_size - have);

		assert_true(n > 0);
		have += (size_t)n;
	}
	close(fd);
	*len = have;
	return 0;
}

static void assert_files_equal(const char *a, const char *b)
{
	uint8_t *pa, *pb;
	size_t la, lb;

	assert_int_equal(read_all_file(a, &pa, &la), 0);
	assert_int_equal(read_all_file(b, &pb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);
	free(pa);
	free(pb);
}

/*
 * Rebuilds the raw image from a store into out, checking every chunk hash,
 * the stored lengths and the whole-image hash, as `mlcast unpack` does.
 */
static void unpack_store(const char *store, const char *out, struct manifest *m)
{
	char path[256];
	uint8_t *data, *raw;
	size_t dlen;
	struct sha256_ctx *img = sha256_new();
	uint8_t digest[SHA256_LEN];
	const char *why = NULL;
	int fd;

	join(path, sizeof(path), store, "manifest");
	assert_int_equal(mf_load(path, m, &why), 0);
	join(path, sizeof(path), store, "data");
	assert_int_equal(read_all_file(path, &data, &dlen), 0);
	assert_int_equal(dlen, m->data_size);
	raw = malloc(m->chunk_size);
	assert_non_null(raw);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		const struct mf_chunk *c = &m->chunks[i];
		uint32_t len = mf_chunk_raw_len(m, i);

		if (c->flags & MF_ZERO) {
			memset(raw, 0, len);
		} else if (c->flags & MF_ZSTD) {
			size_t n = ZSTD_decompress(raw, len, data + c->offset, c->stored_len);

			assert_false(ZSTD_isError(n));
			assert_int_equal(n, len);
			/* Compression is used only when it saves bytes. */
			assert_true(c->stored_len < len);
		} else {
			assert_int_equal(c->stored_len, len);
			memcpy(raw, data + c->offset, len);
		}
		sha256_buf(raw, len, digest);
		assert_memory_equal(digest, c->sha256, SHA256_LEN);
		sha256_update(img, raw, len);
		if (!(c->flags & MF_ZERO))
			assert_int_equal(pwrite(fd, raw, len, (off_t)((uint64_t)i * m->chunk_size)),
			                 (ssize_t)len);
	}
	assert_int_equal(ftruncate(fd, (off_t)m->image_size), 0);
	close(fd);
	sha256_final(img, digest);
	assert_memory_equal(digest, m->image_sha256, SHA256_LEN);
	sha256_free(img);
	free(raw);
	free(data);
}

/* Prepares f->image into f->store, unpacks it and checks identity. */
static void prepare_and_check(struct fixture *f, const struct mc_prepare_opts *o,
                              struct mc_prepare_stats *st, struct manifest *m)
{
	uint32_t zero = 0, zstd = 0;
	uint8_t *img;
	size_t len;
	uint8_t digest[SHA256_LEN];

	f->err[0] = 0;
	assert_int_equal(mc_prepare(f->image, f->store, o, st, f->err, sizeof(f->err)), 0);
	unpack_store(f->store, f->out, m);
	assert_files_equal(f->image, f->out);
	assert_int_equal(read_all_file(f->image, &img, &len), 0);
	sha256_buf(img, len, digest);
	free(img);
	assert_memory_equal(digest, st->image_sha256, SHA256_LEN);
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		zero += !!(m->chunks[i].flags & MF_ZERO);
		zstd += !!(m->chunks[i].flags & MF_ZSTD);
	}
	assert_int_equal(st->image_size, len);
	assert_int_equal(st->chunk_count, m->chunk_count);
	assert_int_equal(st->zero_chunks, zero);
	assert_int_equal(st->zstd_chunks, zstd);
	assert_int_equal(st->stored_bytes, m->data_size);
}

/* Counts the store's entries other than data and manifest (temp files left behind). */
static int stray_files(const char *store)
{
	DIR *d = opendir(store);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "data") && strcmp(e->d_name, "manifest"))
			n++;
	}
	closedir(d);
	return n;
}

/* Runs a program (no shell); returns its exit status or -1 when it cannot run. */
static int run(char *const argv[])
{
	pid_t pid;
	int status;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int have_qemu_img(void)
{
	char *argv[] = {"qemu-img", "--version", NULL};
	int fd = dup(1), devnull = open("/dev/null", O_WRONLY);
	int ok;

	/* Keep qemu-img's banner out of the test log. */
	dup2(devnull, 1);
	ok = run(argv) == 0;
	dup2(fd, 1);
	close(fd);
	close(devnull);
	return ok;
}

static void test_small_random(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_stats st;
	struct manifest m;

	write_random_at(f->image, 0, 300000);
	prepare_and_check(f, &o, &st, &m);
	assert_int_equal(m.chunk_size, K64);
	assert_int_equal(m.chunk_count, 5);
	assert_int_equal(mf_chunk_raw_len(&m, 4), 300000 - 4 * K64);
	assert_int_equal(st.zero_chunks, 0);
	/* Random bytes do not compress: stored raw, exactly the image. */
	assert_int_equal(st.zstd_chunks, 0);
	assert_int_equal(st.stored_bytes, 300000);
	assert_int_equal(stray_files(f->store), 0);
	mf_free(&m);
}

static void test_default_chunk_size(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_stats st;
	struct manifest m;

	write_random_at(f->image, 0, 3 * MF_DEFAULT_CHUNK + 17);
	prepare_and_check(f, NULL, &st, &m);
	assert_int_equal(m.chunk_size, MF_DEFAULT_CHUNK);
	assert_int_equal(m.chunk_count, 4);
	mf_free(&m);
}

static void test_sparse_holes(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 3};
	struct mc_prepare_stats st;
	struct manifest m;
	uint8_t *zeros = calloc(1, 2 * K64);
	uint8_t one = 1;

	assert_non_null(zeros);
	make_sized(f->image, 32 * K64);               /* 32 chunks, all holes */
	write_random_at(f->image, 100000, 10000);     /* inside chunk 1, unaligned */
	write_random_at(f->image, 10 * K64, K64);     /* exactly chunk 10 */
	write_at(f->image, 20 * K64, zeros, 2 * K64); /* data extent of zeros: 20, 21 */
	write_random_at(f->image, 24 * K64 - 10, 20); /* straddles chunks 23 and 24 */
	write_at(f->image, 32 * K64 - 1, &one, 1);    /* the last byte */
	free(zeros);
	prepare_and_check(f, &o, &st, &m);
	assert_int_equal(m.chunk_count, 32);
	for (uint32_t i = 0; i < 32; i++) {
		int data = i == 1 || i == 10 || i == 23 || i == 24 || i == 31;

		assert_int_equal(!(m.chunks[i].flags & MF_ZERO), data);
	}
	assert_int_equal(st.zero_chunks, 27);
	/* Mostly-zero chunks compress well. */
	assert_true(m.chunks[31].flags & MF_ZSTD);
	mf_free(&m);
}

static void test_all_holes(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = 128 * 1024};
	struct mc_prepare_stats st;
	struct manifest m;

	make_sized(f->image, 5 * 128 * 1024 + 1);
	prepare_and_check(f, &o, &st, &m);
	assert_int_equal(st.chunk_count, 6);
	assert_int_equal(st.zero_chunks, 6);
	assert_int_equal(st.stored_bytes, 0);
	mf_free(&m);
}

/* A size that is not a multiple of the chunk size: the last chunk is one byte. */
static void test_unaligned_size(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = 128 * 1024, .threads = 1};
	struct mc_prepare_stats st;
	struct manifest m;

	write_random_at(f->image, 0, 5 * 128 * 1024 + 1);
	prepare_and_check(f, &o, &st, &m);
	assert_int_equal(m.chunk_count, 6);
	assert_int_equal(mf_chunk_raw_len(&m, 5), 1);
	assert_int_equal(m.chunks[5].stored_len, 1);
	mf_free(&m);
}

static void test_compressible(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .zstd_level = 5};
	struct mc_prepare_stats st;
	struct manifest m;
	size_t n = 1024 * 1024 + 333;
	char *text = malloc(n);

	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		text[i] =
		    "the quick brown fox jumps over the lazy dog, "[i % 45] ^ (char)(i / 4096);
	write_at(f->image, 0, text, n);
	free(text);
	prepare_and_check(f, &o, &st, &m);
	assert_int_equal(st.zero_chunks, 0);
	assert_int_equal(st.zstd_chunks, m.chunk_count);
	for (uint32_t i = 0; i < m.chunk_count; i++) {
		assert_int_equal(m.chunks[i].flags, MF_ZSTD);
		assert_true(m.chunks[i].stored_len < mf_chunk_raw_len(&m, i));
	}
	assert_true(st.stored_bytes < n / 10);
	mf_free(&m);
}

/* Same input, different worker counts: byte-identical stores. */
static void test_deterministic(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 1};
	struct mc_prepare_stats st;
	struct manifest m;
	char store2[200], a[200], b[200];

	make_sized(f->image, 40 * K64);
	for (unsigned i = 0; i < 40; i += 3)
		write_random_at(f->image, i * K64 + i * 100, 3000 + i * 1000);
	prepare_and_check(f, &o, &st, &m);
	mf_free(&m);
	join(store2, sizeof(store2), f->dir, "store2");
	o.threads = 7;
	assert_int_equal(mc_prepare(f->image, store2, &o, &st, f->err, sizeof(f->err)), 0);
	join(a, sizeof(a), f->store, "manifest");
	join(b, sizeof(b), store2, "manifest");
	assert_files_equal(a, b);
	join(a, sizeof(a), f->store, "data");
	join(b, sizeof(b), store2, "data");
	assert_files_equal(a, b);
}

struct progress_log {
	unsigned calls;
	uint64_t last_done;
	uint64_t total;
	int backwards;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress_log *p = ctx;

	if (done < p->last_done || done > total)
		p->backwards = 1;
	p->calls++;
	p->last_done = done;
	p->total = total;
}

static void test_progress(void **state)
{
	struct fixture *f = *state;
	struct progress_log log = {0};
	struct mc_prepare_opts o = {
	    .chunk_size = K64, .progress = on_progress, .progress_ctx = &log};
	struct mc_prepare_stats st;

	write_random_at(f->image, 0, 20 * K64 + 5);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	assert_true(log.calls >= 2);
	assert_int_equal(log.backwards, 0);
	assert_int_equal(log.total, 20 * K64 + 5);
	assert_int_equal(log.last_done, log.total);
}

static void test_existing_store(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	struct mc_prepare_stats st;
	struct manifest m;
	char path[200];
	const char *why;

	write_random_at(f->image, 0, 100000);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), -EEXIST);
	assert_non_null(strstr(f->err, "already holds a manifest"));
	/* The refused run left the existing store intact. */
	join(path, sizeof(path), f->store, "manifest");
	assert_int_equal(mf_load(path, &m, &why), 0);
	mf_free(&m);
	unpack_store(f->store, f->out, &m);
	assert_files_equal(f->image, f->out);
	mf_free(&m);
}

/* Two prepares into one store at once: the second is refused, not interleaved. */
static void test_store_locked(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	struct mc_prepare_stats st;
	int fd;

	write_random_at(f->image, 0, 100000);
	assert_int_equal(mkdir(f->store, 0755), 0);
	fd = open(f->store, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)),
	                 -EWOULDBLOCK);
	assert_non_null(strstr(f->err, "in use"));
	close(fd);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
}

static void expect_fail(struct fixture *f, const char *image, const struct mc_prepare_opts *o,
                        int code, const char *needle)
{
	struct mc_prepare_stats st;
	struct stat sb;

	f->err[0] = 0;
	assert_int_equal(mc_prepare(image, f->store, o, &st, f->err, sizeof(f->err)), code);
	if (!strstr(f->err, needle))
		fail_msg("error '%s' lacks '%s'", f->err, needle);
	/* A failed run leaves no store it created behind. */
	assert_int_equal(stat(f->store, &sb), -1);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	struct mc_prepare_opts bad = {.chunk_size = 3 * K64};
	char path[200];

	join(path, sizeof(path), f->dir, "missing");
	expect_fail(f, path, &o, -ENOENT, "no such file");
	expect_fail(f, f->dir, &o, -EINVAL, "not a regular file or block device");
	expect_fail(f, "/dev/null", &o, -EINVAL, "not a regular file or block device");
	make_sized(f->image, 0);
	expect_fail(f, f->image, &o, -EINVAL, "empty");
	write_random_at(f->image, 0, 1000);
	expect_fail(f, f->image, &bad, -EINVAL, "bad chunk size");
	bad.chunk_size = K64 / 2;
	expect_fail(f, f->image, &bad, -EINVAL, "bad chunk size");
	bad.chunk_size = MF_MAX_CHUNK * 2;
	expect_fail(f, f->image, &bad, -EINVAL, "bad chunk size");
	bad.chunk_size = K64;
	bad.zstd_level = 99;
	expect_fail(f, f->image, &bad, -EINVAL, "bad zstd level");
	/* A tiny image (shorter than a qcow2 magic) is fine. */
	make_sized(f->image, 0);
	write_at(f->image, 0, "ab", 2);
	{
		struct mc_prepare_stats st;
		struct manifest m;

		prepare_and_check(f, &o, &st, &m);
		assert_int_equal(m.chunk_count, 1);
		mf_free(&m);
	}
}

/* Failing inside an existing store leaves the directory, but empty. */
static void test_failure_cleans_existing_store(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	struct mc_prepare_stats st;
	uint8_t junk[4096] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};

	if (!have_qemu_img()) {
		print_message("qemu-img not found; skipping\n");
		skip();
	}
	assert_int_equal(mkdir(f->store, 0755), 0);
	write_at(f->image, 0, junk, sizeof(junk));
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), -EIO);
	if (!strstr(f->err, "qemu-img convert"))
		fail_msg("error '%s' does not name qemu-img", f->err);
	assert_int_equal(rmdir(f->store), 0); /* exists and is empty */
}

static void test_qcow2(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	struct mc_prepare_stats st, st_raw;
	struct manifest m;
	char qcow[200], empty[200], raw_store[200];
	uint8_t *img;
	size_t len;
	uint8_t digest[SHA256_LEN];

	if (!have_qemu_img()) {
		print_message("qemu-img not found; skipping\n");
		skip();
	}
	join(qcow, sizeof(qcow), f->dir, "image.qcow2");
	join(empty, sizeof(empty), f->dir, "empty.qcow2");
	join(raw_store, sizeof(raw_store), f->dir, "raw_store");
	make_sized(f->image, 3 * 1024 * 1024 + 4096);
	write_random_at(f->image, 0, 70000);
	write_random_at(f->image, 2 * 1024 * 1024 + 5, 300000);
	{
		char *argv[] = {"qemu-img", "convert", "-q",     "-f", "raw",
		                "-O",       "qcow2",   f->image, qcow, NULL};

		assert_int_equal(run(argv), 0);
	}
	assert_int_equal(mc_prepare(f->image, raw_store, &o, &st_raw, f->err, sizeof(f->err)), 0);
	assert_int_equal(mc_prepare(qcow, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	assert_int_equal(stray_files(f->store), 0);
	unpack_store(f->store, f->out, &m);
	assert_files_equal(f->image, f->out);
	assert_int_equal(st.image_size, 3 * 1024 * 1024 + 4096);
	assert_memory_equal(st.image_sha256, st_raw.image_sha256, SHA256_LEN);
	assert_int_equal(st.zero_chunks, st_raw.zero_chunks);
	assert_int_equal(st.stored_bytes, st_raw.stored_bytes);
	mf_free(&m);

	/* A fresh qcow2 from qemu-img create: every chunk is zero. */
	{
		char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", empty, "1M", NULL};

		assert_int_equal(run(argv), 0);
	}
	nftw(f->store, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(mc_prepare(empty, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	assert_int_equal(st.chunk_count, 16);
	assert_int_equal(st.zero_chunks, 16);
	assert_int_equal(st.stored_bytes, 0);
	img = calloc(1, 1024 * 1024);
	assert_non_null(img);
	len = 1024 * 1024;
	sha256_buf(img, len, digest);
	free(img);
	assert_memory_equal(st.image_sha256, digest, SHA256_LEN);
}

static void test_qemu_img_missing(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	uint8_t hdr[512] = {'Q', 'F', 'I', 0xfb};
	char *old = getenv("PATH");
	char *saved = old ? strdup(old) : NULL;

	write_at(f->image, 0, hdr, sizeof(hdr));
	setenv("PATH", f->dir, 1);
	expect_fail(f, f->image, &o, -ENOENT, "qemu-img was not found");
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
}

/* A store on a tiny tmpfs: the data file cannot fit. Needs root for mount. */
static void test_disk_full(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64};
	char mnt[200];

	join(mnt, sizeof(mnt), f->dir, "mnt");
	assert_int_equal(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") < 0) {
		print_message("cannot mount a tmpfs (%s); skipping\n", strerror(errno));
		rmdir(mnt);
		skip();
	}
	join(f->store, sizeof(f->store), mnt, "store");
	write_random_at(f->image, 0, 2 * 1024 * 1024);
	expect_fail(f, f->image, &o, -ENOSPC, "disk full");
	umount(mnt);
}

/*
 * A chunk sink in memory, as mlserver's chunk store would be: entries keyed
 * by raw SHA-256, puts counted per hash. Lookups come from several threads.
 */
struct ment {
	uint8_t sha[SHA256_LEN];
	uint8_t flags;
	uint32_t len;
	uint8_t *bytes;
	unsigned puts;
	bool fresh; /* put since the last sink_mark() */
};

struct msink {
	pthread_mutex_t mu;
	struct ment *e;
	size_t n, cap;
	unsigned puts;
	int fail_put;      /* put returns this when non-zero */
	int fail_lookup;   /* lookup returns this when non-zero */
	bool bad_form;     /* lookup reports an impossible form for found chunks */
	bool race_raw;     /* put refuses with -EEXIST, installing the raw form first */
	uint32_t race_len; /* raw length for race_raw */
};

static struct ment *sink_find(struct msink *k, const uint8_t sha[SHA256_LEN])
{
	for (size_t i = 0; i < k->n; i++)
		if (!memcmp(k->e[i].sha, sha, SHA256_LEN))
			return &k->e[i];
	return NULL;
}

static struct ment *sink_add(struct msink *k, const uint8_t sha[SHA256_LEN], uint8_t flags,
                             const void *p, uint32_t len)
{
	struct ment *e;

	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->e = realloc(k->e, k->cap * sizeof(*k->e));
		assert_non_null(k->e);
	}
	e = &k->e[k->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->sha, sha, SHA256_LEN);
	e->flags = flags;
	e->len = len;
	e->bytes = malloc(len ? len : 1);
	assert_non_null(e->bytes);
	if (p)
		memcpy(e->bytes, p, len);
	return e;
}

static int sink_lookup(void *ctx, const uint8_t sha[32], uint8_t *flags, uint32_t *len)
{
	struct msink *k = ctx;
	struct ment *e;
	int ret = 0;

	pthread_mutex_lock(&k->mu);
	if (k->fail_lookup) {
		ret = k->fail_lookup;
	} else if ((e = sink_find(k, sha)) != NULL) {
		*flags = k->bad_form ? MF_ZERO : e->flags;
		*len = e->len;
		ret = 1;
	}
	pthread_mutex_unlock(&k->mu);
	return ret;
}

static int sink_put(void *ctx, const uint8_t sha[32], uint8_t flags, const void *p, uint32_t len)
{
	struct msink *k = ctx;
	struct ment *e;
	int ret = 0;

	pthread_mutex_lock(&k->mu);
	k->puts++;
	if (k->fail_put) {
		ret = k->fail_put;
	} else if (k->race_raw) {
		/* Another import stored it raw a moment ago. */
		sink_add(k, sha, 0, NULL, k->race_len);
		ret = -EEXIST;
	} else if ((e = sink_find(k, sha)) != NULL) {
		e->puts++;
	} else {
		e = sink_add(k, sha, flags, p, len);
		e->puts = 1;
		e->fresh = true;
	}
	pthread_mutex_unlock(&k->mu);
	return ret;
}

static void sink_init(struct msink *k, struct mc_prepare_opts *o)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	o->lookup = sink_lookup;
	o->put = sink_put;
	o->sink_ctx = k;
}

/* Forgets which entries are fresh, before the next prepare. */
static void sink_mark(struct msink *k)
{
	for (size_t i = 0; i < k->n; i++)
		k->e[i].fresh = false;
	k->puts = 0;
}

static void sink_free(struct msink *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->e[i].bytes);
	free(k->e);
	pthread_mutex_destroy(&k->mu);
}

/*
 * Checks a sink-made store against a plain store of the same image: no data
 * file, the same manifest bytes, and the sink holding, for every stored
 * chunk, exactly the bytes the plain data file has at that chunk's offset.
 */
static void check_sink_store(struct msink *k, const char *sink_store, const char *plain_store)
{
	char a[256], b[256];
	struct manifest m;
	const char *why = NULL;
	uint8_t *data;
	size_t dlen;
	struct stat sb;

	join(a, sizeof(a), sink_store, "data");
	assert_int_equal(stat(a, &sb), -1);
	assert_int_equal(errno, ENOENT);
	join(a, sizeof(a), sink_store, "manifest");
	join(b, sizeof(b), plain_store, "manifest");
	assert_files_equal(a, b);
	assert_int_equal(mf_load(a, &m, &why), 0);
	join(b, sizeof(b), plain_store, "data");
	assert_int_equal(read_all_file(b, &data, &dlen), 0);
	for (uint32_t i = 0; i < m.chunk_count; i++) {
		const struct mf_chunk *c = &m.chunks[i];
		struct ment *e = sink_find(k, c->sha256);

		if (c->flags & MF_ZERO) {
			assert_null(e);
			continue;
		}
		assert_non_null(e);
		assert_int_equal(e->flags, c->flags);
		assert_int_equal(e->len, c->stored_len);
		assert_memory_equal(e->bytes, data + c->offset, c->stored_len);
	}
	free(data);
	mf_free(&m);
}

/*
 * An image of 24 chunks of 64 KiB: random chunks, compressible chunks,
 * holes, written zeros, and chunk 7 a copy of chunk 3.
 */
static void make_mixed_image(const char *path)
{
	uint8_t *p = malloc(K64);
	int fd;

	assert_non_null(p);
	make_sized(path, 24 * K64 - 1000);
	for (unsigned i = 0; i < 6; i++)
		write_random_at(path, i * K64, K64);
	for (unsigned i = 8; i < 14; i++) {
		for (size_t j = 0; j < K64; j++)
			p[j] = "compressible text, chunk "[j % 25] ^ (uint8_t)i;
		write_at(path, i * K64, p, K64);
	}
	memset(p, 0, K64);
	write_at(path, 16 * K64, p, K64); /* written zeros */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, p, K64, 3 * K64), (ssize_t)K64);
	close(fd);
	write_at(path, 7 * K64, p, K64); /* a duplicate of chunk 3 */
	write_random_at(path, 20 * K64 + 5, 3000);
	write_random_at(path, 23 * K64, K64 - 1000); /* the short last chunk */
	free(p);
}

/* Counts the sink's entries that were put since the last sink_mark(). */
static unsigned sink_fresh(const struct msink *k)
{
	unsigned n = 0;

	for (size_t i = 0; i < k->n; i++) {
		assert_int_equal(k->e[i].puts, 1); /* never put twice, in any run */
		n += k->e[i].fresh;
	}
	return n;
}

static void test_sink(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts plain = {.chunk_size = K64, .threads = 1};
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 3};
	struct mc_prepare_stats st, st_plain;
	struct msink k;
	struct manifest m;
	char plain_store[200], path[200];
	uint64_t put_bytes = 0;

	sink_init(&k, &o);
	make_mixed_image(f->image);
	join(plain_store, sizeof(plain_store), f->dir, "plain");
	prepare_and_check(f, &plain, &st_plain, &m);
	mf_free(&m);
	assert_int_equal(rename(f->store, plain_store), 0);
	/* A leftover data file in the store is removed, not paired with the manifest. */
	assert_int_equal(mkdir(f->store, 0755), 0);
	join(path, sizeof(path), f->store, "data");
	write_random_at(path, 0, 100);

	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	check_sink_store(&k, f->store, plain_store);
	assert_int_equal(stray_files(f->store), 0);
	/* 24 chunks: 15 data chunks, chunk 7 equal to chunk 3: 14 distinct, each put once. */
	assert_int_equal(st_plain.zero_chunks, 9);
	assert_int_equal(k.n, 14);
	assert_int_equal(k.puts, 14);
	assert_int_equal(sink_fresh(&k), 14);
	assert_int_equal(st.reused_chunks, 1);
	for (size_t i = 0; i < k.n; i++)
		put_bytes += k.e[i].len;
	assert_int_equal(st.new_stored_bytes, put_bytes);
	assert_int_equal(st.stored_bytes, st_plain.stored_bytes);
	assert_int_equal(st.stored_bytes, put_bytes + K64); /* plus the duplicate */
	assert_int_equal(st.zero_chunks, st_plain.zero_chunks);
	assert_int_equal(st.zstd_chunks, st_plain.zstd_chunks);
	assert_memory_equal(st.image_sha256, st_plain.image_sha256, SHA256_LEN);
	/* Without a sink, everything written is new. */
	assert_int_equal(st_plain.reused_chunks, 0);
	assert_int_equal(st_plain.new_stored_bytes, st_plain.stored_bytes);

	/* The same image again, into a second version: nothing new is put. */
	sink_mark(&k);
	join(path, sizeof(path), f->dir, "again");
	assert_int_equal(mc_prepare(f->image, path, &o, &st, f->err, sizeof(f->err)), 0);
	check_sink_store(&k, path, plain_store);
	assert_int_equal(k.puts, 0);
	assert_int_equal(st.reused_chunks, 15);
	assert_int_equal(st.new_stored_bytes, 0);
	sink_free(&k);
}

/* A slightly changed image puts only its changed chunks. */
static void test_sink_reimport(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts plain = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_stats st;
	struct msink k;
	struct manifest m;
	char v2[200], plain2[200];
	uint64_t fresh_bytes = 0;

	sink_init(&k, &o);
	make_mixed_image(f->image);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	sink_mark(&k);
	/* Change chunk 1 (random), chunk 9 (compressible) and fill the hole at 18. */
	write_random_at(f->image, 1 * K64 + 100, 10);
	write_at(f->image, 9 * K64 + 7, "changed", 7);
	write_random_at(f->image, 18 * K64, 500);
	join(v2, sizeof(v2), f->dir, "v2");
	join(plain2, sizeof(plain2), f->dir, "plain2");
	assert_int_equal(mc_prepare(f->image, v2, &o, &st, f->err, sizeof(f->err)), 0);
	assert_int_equal(k.puts, 3);
	assert_int_equal(sink_fresh(&k), 3);
	assert_int_equal(st.reused_chunks, 16 - 3);
	for (size_t i = 0; i < k.n; i++)
		fresh_bytes += k.e[i].fresh ? k.e[i].len : 0;
	assert_int_equal(st.new_stored_bytes, fresh_bytes);
	/* The fresh entries are exactly the changed chunks. */
	{
		const char *why = NULL;
		char path[256];

		join(path, sizeof(path), v2, "manifest");
		assert_int_equal(mf_load(path, &m, &why), 0);
		for (uint32_t i = 0; i < m.chunk_count; i++) {
			struct ment *e = sink_find(&k, m.chunks[i].sha256);

			if (i == 1 || i == 9 || i == 18)
				assert_true(e && e->fresh);
			else
				assert_true(!e || !e->fresh);
		}
		mf_free(&m);
	}
	assert_int_equal(mc_prepare(f->image, plain2, &plain, &st, f->err, sizeof(f->err)), 0);
	check_sink_store(&k, v2, plain2);
	sink_free(&k);
}

static void test_sink_errors(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_opts half = {.chunk_size = K64, .lookup = sink_lookup};
	struct mc_prepare_stats st;
	struct msink k;
	struct manifest m;
	const char *why = NULL;
	char path[256];

	sink_init(&k, &o);
	half.sink_ctx = &k;
	write_random_at(f->image, 0, 5 * K64);
	expect_fail(f, f->image, &half, -EINVAL, "both lookup and put");
	k.fail_put = -ENOSPC;
	expect_fail(f, f->image, &o, -ENOSPC, "disk full writing the chunk store");
	k.fail_put = -EIO;
	expect_fail(f, f->image, &o, -EIO, "chunk store put");
	k.fail_put = 0;
	k.fail_lookup = -EACCES;
	expect_fail(f, f->image, &o, -EACCES, "chunk store lookup");
	k.fail_lookup = 0;

	/* A found chunk in a form no manifest can hold fails the run. */
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	nftw(f->store, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	k.bad_form = true;
	expect_fail(f, f->image, &o, -EIO, "bad form");
	k.bad_form = false;
	sink_free(&k);

	/*
	 * put loses a race (-EEXIST) to an import that stored the chunk raw:
	 * the manifest takes the store's form. Compressible data, so that our
	 * own form would have been zstd.
	 */
	sink_init(&k, &o);
	k.race_raw = true;
	k.race_len = K64;
	{
		uint8_t *p = calloc(1, K64);

		assert_non_null(p);
		memset(p, 'a', K64);
		write_at(f->image, 0, p, K64);
		free(p);
	}
	assert_int_equal(truncate(f->image, K64), 0);
	assert_int_equal(mc_prepare(f->image, f->store, &o, &st, f->err, sizeof(f->err)), 0);
	join(path, sizeof(path), f->store, "manifest");
	assert_int_equal(mf_load(path, &m, &why), 0);
	assert_int_equal(m.chunks[0].flags, 0);
	assert_int_equal(m.chunks[0].stored_len, K64);
	assert_int_equal(st.reused_chunks, 1);
	assert_int_equal(st.new_stored_bytes, 0);
	mf_free(&m);
	sink_free(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_small_random, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_chunk_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sparse_holes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_all_holes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unaligned_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compressible, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_progress, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_existing_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_locked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_cleans_existing_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qcow2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qemu_img_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sink_reimport, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sink_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
