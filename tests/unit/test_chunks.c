/*
 * Unit tests for the chunk store (src/server/chunks.c): real files in a
 * temp dir, chunks checked by reading them back, and imports made with
 * mc_prepare() through chunks_sink().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
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

#include "chunks.h"
#include "manifest.h"
#include "mlcast.h"
#include "sha256.h"

#define K64 (64u * 1024)

struct fixture {
	char dir[64];
	char store[128];
	char err[512];
};

/* One test chunk: its raw bytes, hash and stored form. */
struct tchunk {
	uint8_t raw[K64];
	uint32_t len;
	uint8_t sha[CHUNKS_HASH_LEN];
	uint8_t flags;
	uint8_t stored[K64 + 1024];
	uint32_t stored_len;
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

/* Makes a random chunk stored raw, or a text-like one stored as a zstd frame. */
static void make_chunk(struct tchunk *c, uint32_t len, bool zstd)
{
	assert_true(len >= 1 && len <= K64);
	c->len = len;
	if (zstd) {
		uint8_t salt[8];
		size_t n;

		fill_random(salt, sizeof(salt));
		for (uint32_t i = 0; i < len; i++)
			c->raw[i] = (uint8_t)("chunk store text "[i % 17] ^ salt[(i / 512) % 8]);
		n = ZSTD_compress(c->stored, sizeof(c->stored), c->raw, len, 3);
		assert_false(ZSTD_isError(n));
		assert_true(n < len);
		c->flags = MF_ZSTD;
		c->stored_len = (uint32_t)n;
	} else {
		fill_random(c->raw, len);
		memcpy(c->stored, c->raw, len);
		c->flags = 0;
		c->stored_len = len;
	}
	sha256_buf(c->raw, len, c->sha);
}

static void join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outsz);
}

/* The path of a chunk file, as docs/chunkstore.md lays it out. */
static void chunk_path(const struct fixture *f, const uint8_t sha[32], uint8_t flags, char *out,
                       size_t outsz)
{
	char hex[SHA256_HEX_LEN];
	int n;

	sha256_hex(sha, hex);
	n = snprintf(out, outsz, "%s/%.2s/%s.%c", f->store, hex, hex, flags & MF_ZSTD ? 'z' : 'r');
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_chunks.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	join(f->store, sizeof(f->store), f->dir, "cas");
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

static struct chunks *open_store(struct fixture *f, unsigned *stale)
{
	struct chunks *cs = NULL;
	int ret = chunks_open(f->store, &cs, stale, f->err, sizeof(f->err));

	if (ret < 0)
		fail_msg("chunks_open: %d %s", ret, f->err);
	assert_non_null(cs);
	return cs;
}

static void put_ok(struct chunks *cs, const struct tchunk *c)
{
	assert_int_equal(chunks_put(cs, c->sha, c->flags, c->stored, c->stored_len), 0);
}

/* Counts temp files in the store's fan-out directories. */
static int count_tmp(const struct fixture *f)
{
	DIR *top = opendir(f->store);
	struct dirent *e;
	int n = 0;

	assert_non_null(top);
	while ((e = readdir(top)) != NULL) {
		char sub[256];
		DIR *d;
		struct dirent *g;

		if (e->d_name[0] == '.' || strlen(e->d_name) != 2)
			continue;
		join(sub, sizeof(sub), f->store, e->d_name);
		d = opendir(sub);
		if (!d)
			continue;
		while ((g = readdir(d)) != NULL)
			n += strncmp(g->d_name, ".tmp.", 5) == 0;
		closedir(d);
	}
	closedir(top);
	return n;
}

static void test_put_lookup_read(void **state)
{
	struct fixture *f = *state;
	static struct tchunk a, b;
	static uint8_t buf[K64 + 1024];
	struct chunks *cs;
	unsigned stale = 99;
	uint8_t flags = 0xff;
	uint32_t len = 0;
	size_t got = 0;
	uint64_t count, bytes;
	char path[256];
	struct stat sb;

	cs = open_store(f, &stale);
	assert_int_equal(stale, 0);
	assert_int_equal(stat(f->store, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	make_chunk(&a, K64, false);
	make_chunk(&b, 50000, true);
	assert_int_equal(chunks_lookup(cs, a.sha, &flags, &len), 0);
	put_ok(cs, &a);
	put_ok(cs, &b);

	assert_int_equal(chunks_lookup(cs, a.sha, &flags, &len), 1);
	assert_int_equal(flags, 0);
	assert_int_equal(len, K64);
	assert_int_equal(chunks_lookup(cs, b.sha, &flags, &len), 1);
	assert_int_equal(flags, MF_ZSTD);
	assert_int_equal(len, b.stored_len);
	assert_int_equal(chunks_lookup(cs, b.sha, NULL, NULL), 1);

	/* The documented layout: DIR/ab/abcd....r and DIR/ab/abcd....z. */
	chunk_path(f, a.sha, 0, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, K64);
	chunk_path(f, b.sha, MF_ZSTD, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, b.stored_len);

	assert_int_equal(chunks_read(cs, a.sha, 0, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, K64);
	assert_memory_equal(buf, a.raw, K64);
	assert_int_equal(chunks_read(cs, b.sha, MF_ZSTD, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, b.stored_len);
	assert_memory_equal(buf, b.stored, got);
	/* The other form is not there; a short buffer is refused, not overrun. */
	assert_int_equal(chunks_read(cs, b.sha, 0, buf, sizeof(buf), &got), -ENOENT);
	assert_int_equal(chunks_read(cs, a.sha, 0, buf, K64 - 1, &got), -EFBIG);
	assert_int_equal(chunks_read(cs, a.sha, MF_ZERO, buf, sizeof(buf), &got), -EINVAL);

	assert_int_equal(chunks_verify(cs, a.sha, 0), 0);
	assert_int_equal(chunks_verify(cs, b.sha, MF_ZSTD), 0);
	assert_int_equal(chunks_verify(cs, b.sha, 0), -ENOENT);

	assert_int_equal(chunks_usage(cs, &count, &bytes), 0);
	assert_int_equal(count, 2);
	assert_int_equal(bytes, K64 + b.stored_len);

	/* Bad arguments. */
	assert_int_equal(chunks_put(cs, a.sha, MF_ZERO, a.stored, a.stored_len), -EINVAL);
	assert_int_equal(chunks_put(cs, a.sha, MF_ZSTD | MF_ZERO, a.stored, 10), -EINVAL);
	assert_int_equal(chunks_put(cs, a.sha, 0, a.stored, 0), -EINVAL);
	assert_int_equal(chunks_put(cs, a.sha, 0, a.stored, CHUNKS_MAX_STORED + 1), -EINVAL);
	assert_int_equal(count_tmp(f), 0);
	chunks_free(cs);
	chunks_free(NULL);
}

static void test_put_idempotent(void **state)
{
	struct fixture *f = *state;
	static struct tchunk a, b;
	struct chunks *cs = open_store(f, NULL);
	uint64_t count, bytes;
	uint8_t flags;
	uint32_t len;

	make_chunk(&a, 1000, false);
	make_chunk(&b, K64, true);
	put_ok(cs, &a);
	put_ok(cs, &a);
	put_ok(cs, &b);
	put_ok(cs, &b);
	assert_int_equal(chunks_usage(cs, &count, &bytes), 0);
	assert_int_equal(count, 2);
	assert_int_equal(bytes, 1000 + b.stored_len);
	assert_int_equal(count_tmp(f), 0);
	/* Another form of a stored chunk: refused, the store's form stays. */
	assert_int_equal(chunks_put(cs, a.sha, MF_ZSTD, a.stored, 500), -EEXIST);
	assert_int_equal(chunks_put(cs, b.sha, 0, b.raw, b.len), -EEXIST);
	assert_int_equal(chunks_put(cs, b.sha, MF_ZSTD, b.stored, b.stored_len - 1), -EEXIST);
	assert_int_equal(chunks_lookup(cs, a.sha, &flags, &len), 1);
	assert_int_equal(flags, 0);
	assert_int_equal(len, 1000);
	assert_int_equal(chunks_lookup(cs, b.sha, &flags, &len), 1);
	assert_int_equal(flags, MF_ZSTD);
	assert_int_equal(len, b.stored_len);
	assert_int_equal(chunks_usage(cs, &count, NULL), 0);
	assert_int_equal(count, 2);
	chunks_free(cs);
}

#define RACE_ROUNDS 48

struct racer {
	struct chunks *cs;
	struct tchunk *chunks; /* RACE_ROUNDS */
	pthread_barrier_t *bar;
	int rc[RACE_ROUNDS];
};

static void *race_main(void *arg)
{
	struct racer *r = arg;

	for (unsigned i = 0; i < RACE_ROUNDS; i++) {
		const struct tchunk *c = &r->chunks[i];

		pthread_barrier_wait(r->bar);
		r->rc[i] = chunks_put(r->cs, c->sha, c->flags, c->stored, c->stored_len);
	}
	return NULL;
}

/* Two threads, through two handles, put the same chunk at the same moment. */
static void test_concurrent_put(void **state)
{
	struct fixture *f = *state;
	struct tchunk *chunks = calloc(RACE_ROUNDS, sizeof(*chunks));
	struct racer r1 = {0}, r2 = {0};
	pthread_barrier_t bar;
	pthread_t t1, t2;
	uint64_t count;

	assert_non_null(chunks);
	for (unsigned i = 0; i < RACE_ROUNDS; i++)
		make_chunk(&chunks[i], 4096 + i * 997, i % 2);
	pthread_barrier_init(&bar, NULL, 2);
	r1.cs = open_store(f, NULL);
	r2.cs = open_store(f, NULL);
	r1.chunks = r2.chunks = chunks;
	r1.bar = r2.bar = &bar;
	assert_int_equal(pthread_create(&t1, NULL, race_main, &r1), 0);
	assert_int_equal(pthread_create(&t2, NULL, race_main, &r2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	for (unsigned i = 0; i < RACE_ROUNDS; i++) {
		assert_int_equal(r1.rc[i], 0);
		assert_int_equal(r2.rc[i], 0);
		assert_int_equal(chunks_verify(r1.cs, chunks[i].sha, chunks[i].flags), 0);
	}
	assert_int_equal(chunks_usage(r1.cs, &count, NULL), 0);
	assert_int_equal(count, RACE_ROUNDS);
	assert_int_equal(count_tmp(f), 0);
	chunks_free(r1.cs);
	chunks_free(r2.cs);
	pthread_barrier_destroy(&bar);
	free(chunks);
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "partial", 7), 7);
	close(fd);
}

static void test_stale_tmp(void **state)
{
	struct fixture *f = *state;
	static struct tchunk a;
	struct chunks *cs, *cs2;
	char hex[SHA256_HEX_LEN];
	char sub[200], t1[256], t2[256], t3[256], foreign[256], path[256];
	unsigned stale = 0;
	struct stat sb;

	cs = open_store(f, NULL);
	make_chunk(&a, 3000, false);
	put_ok(cs, &a);
	chunks_free(cs);
	/* What a crash in the middle of two puts leaves, plus a file not ours. */
	sha256_hex(a.sha, hex);
	hex[2] = 0;
	join(sub, sizeof(sub), f->store, hex);
	join(t1, sizeof(t1), sub, ".tmp.0123456789abcdef");
	join(path, sizeof(path), f->store, "00");
	mkdir(path, 0750);
	join(t2, sizeof(t2), path, ".tmp.fedcba9876543210");
	join(foreign, sizeof(foreign), sub, "README");
	touch(t1);
	touch(t2);
	touch(foreign);

	cs = open_store(f, &stale);
	assert_int_equal(stale, 2);
	assert_int_equal(stat(t1, &sb), -1);
	assert_int_equal(stat(t2, &sb), -1);
	assert_int_equal(stat(foreign, &sb), 0);
	assert_int_equal(chunks_verify(cs, a.sha, 0), 0);

	/* While a handle is open, a temp file may be a put in progress: kept. */
	join(t3, sizeof(t3), sub, ".tmp.00000000000000aa");
	touch(t3);
	cs2 = open_store(f, &stale);
	assert_int_equal(stale, 0);
	assert_int_equal(stat(t3, &sb), 0);
	chunks_free(cs2);
	chunks_free(cs);
	cs = open_store(f, &stale);
	assert_int_equal(stale, 1);
	assert_int_equal(stat(t3, &sb), -1);
	chunks_free(cs);
}

/* One whole GC: begin, sweep, end. Returns begin's or sweep's error. */
static int run_gc(struct chunks *cs, const uint8_t (*live)[CHUNKS_HASH_LEN], size_t nlive,
                  bool wait, struct chunks_gc_stats *st)
{
	struct chunks_gc *gc = NULL;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = chunks_gc_begin(cs, wait, &gc);
	if (ret < 0) {
		assert_null(gc);
		return ret;
	}
	ret = chunks_gc_sweep(gc, live, nlive, st);
	chunks_gc_end(gc);
	return ret;
}

/*
 * Waits until the file system clock has moved past the chunks just put, so
 * that GC, which spares chunks linked since it began, sees them as old.
 */
static void let_clock_tick(void)
{
	usleep(30 * 1000);
}

static void test_gc(void **state)
{
	struct fixture *f = *state;
	static struct tchunk c[4];
	struct chunks *cs = open_store(f, NULL);
	struct chunks_gc_stats st;
	uint8_t live[3][CHUNKS_HASH_LEN];
	size_t nlive = 3;
	uint64_t count;

	for (unsigned i = 0; i < 4; i++) {
		make_chunk(&c[i], 2000 + i, i == 3);
		put_ok(cs, &c[i]);
	}
	/* c0 and c2 live, c0 twice: chunks_live_sort dedups. */
	memcpy(live[0], c[2].sha, CHUNKS_HASH_LEN);
	memcpy(live[1], c[0].sha, CHUNKS_HASH_LEN);
	memcpy(live[2], c[2].sha, CHUNKS_HASH_LEN);
	chunks_live_sort(live, &nlive);
	assert_int_equal(nlive, 2);
	assert_true(memcmp(live[0], live[1], CHUNKS_HASH_LEN) < 0);
	let_clock_tick();

	/* A live set out of order is refused before anything is removed. */
	{
		uint8_t bad[2][CHUNKS_HASH_LEN];

		memcpy(bad[0], live[1], CHUNKS_HASH_LEN);
		memcpy(bad[1], live[0], CHUNKS_HASH_LEN);
		assert_int_equal(run_gc(cs, (const uint8_t(*)[CHUNKS_HASH_LEN])bad, 2, false, &st),
		                 -EINVAL);
		assert_int_equal(chunks_usage(cs, &count, NULL), 0);
		assert_int_equal(count, 4);
	}

	assert_int_equal(run_gc(cs, (const uint8_t(*)[CHUNKS_HASH_LEN])live, nlive, false, &st), 0);
	assert_int_equal(st.removed, 2);
	assert_int_equal(st.freed_bytes, 2001 + c[3].stored_len);
	assert_int_equal(st.kept, 2);
	assert_int_equal(st.kept_new, 0);
	assert_int_equal(chunks_lookup(cs, c[0].sha, NULL, NULL), 1);
	assert_int_equal(chunks_lookup(cs, c[1].sha, NULL, NULL), 0);
	assert_int_equal(chunks_lookup(cs, c[2].sha, NULL, NULL), 1);
	assert_int_equal(chunks_lookup(cs, c[3].sha, NULL, NULL), 0);
	assert_int_equal(chunks_usage(cs, &count, NULL), 0);
	assert_int_equal(count, 2);

	/* A chunk put again after its removal is a fresh, complete chunk. */
	put_ok(cs, &c[1]);
	assert_int_equal(chunks_verify(cs, c[1].sha, 0), 0);

	/* An empty live set removes everything old. */
	let_clock_tick();
	assert_int_equal(run_gc(cs, NULL, 0, true, &st), 0);
	assert_int_equal(st.removed, 3);
	assert_int_equal(st.kept, 0);
	assert_int_equal(chunks_usage(cs, &count, NULL), 0);
	assert_int_equal(count, 0);
	chunks_free(cs);
}

static void test_hold_blocks_gc(void **state)
{
	struct fixture *f = *state;
	static struct tchunk a;
	struct chunks *cs = open_store(f, NULL);
	struct chunks *cs2 = open_store(f, NULL);
	struct chunks_hold *h1 = NULL, *h2 = NULL;
	struct chunks_gc_stats st;

	make_chunk(&a, 777, false);
	put_ok(cs, &a);
	let_clock_tick();
	/* Holds are shared: two at once, through two handles. */
	assert_int_equal(chunks_hold(cs, &h1), 0);
	assert_int_equal(chunks_hold(cs2, &h2), 0);
	assert_int_equal(run_gc(cs, NULL, 0, false, &st), -EBUSY);
	assert_int_equal(st.removed, 0);
	chunks_release(h1);
	assert_int_equal(run_gc(cs2, NULL, 0, false, &st), -EBUSY);
	chunks_release(h2);
	chunks_release(NULL);
	assert_int_equal(chunks_lookup(cs, a.sha, NULL, NULL), 1);
	assert_int_equal(run_gc(cs, NULL, 0, false, &st), 0);
	assert_int_equal(st.removed, 1);
	assert_int_equal(chunks_lookup(cs, a.sha, NULL, NULL), 0);
	chunks_free(cs2);
	chunks_free(cs);
}

struct holder {
	struct chunks *cs;
	struct chunks_hold *h;
	int rc;
	_Atomic int got;
};

static void *hold_main(void *arg)
{
	struct holder *t = arg;

	/* No cmocka assertions off the main thread: report the result instead. */
	t->rc = chunks_hold(t->cs, &t->h);
	t->got = 1;
	return NULL;
}

/*
 * While a GC runs, a hold waits for it; a chunk put meanwhile without a hold
 * is spared by the sweep, while an older dead one goes.
 */
static void test_gc_excludes_imports(void **state)
{
	struct fixture *f = *state;
	static struct tchunk old, fresh;
	struct chunks *cs = open_store(f, NULL);
	struct chunks_gc *gc = NULL;
	struct chunks_gc_stats st;
	struct holder t = {.cs = cs};
	pthread_t th;

	make_chunk(&old, 900, false);
	make_chunk(&fresh, 901, true);
	put_ok(cs, &old);
	let_clock_tick();
	assert_int_equal(chunks_gc_begin(cs, false, &gc), 0);
	assert_non_null(gc);
	assert_int_equal(pthread_create(&th, NULL, hold_main, &t), 0);
	put_ok(cs, &fresh);
	usleep(50 * 1000);
	assert_int_equal(t.got, 0); /* still waiting for the GC */
	assert_int_equal(chunks_gc_sweep(gc, NULL, 0, &st), 0);
	assert_int_equal(st.removed, 1);
	assert_int_equal(st.kept_new, 1);
	assert_int_equal(chunks_lookup(cs, old.sha, NULL, NULL), 0);
	assert_int_equal(chunks_verify(cs, fresh.sha, MF_ZSTD), 0);
	assert_int_equal(t.got, 0);
	chunks_gc_end(gc);
	pthread_join(th, NULL);
	assert_int_equal(t.got, 1);
	assert_int_equal(t.rc, 0);
	/* And a GC cannot begin while that hold lasts. */
	assert_int_equal(chunks_gc_begin(cs, false, &gc), -EBUSY);
	assert_null(gc);
	chunks_release(t.h);
	chunks_gc_end(NULL);
	chunks_free(cs);
}

/* Flips bits of one byte of a file at off, as a failing disk might. */
static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_verify_corrupt(void **state)
{
	struct fixture *f = *state;
	static struct tchunk a, b, c, d;
	struct chunks *cs = open_store(f, NULL);
	char path[256];

	make_chunk(&a, 5000, false);
	make_chunk(&b, K64, true);
	make_chunk(&c, K64, true);
	make_chunk(&d, 100, false);
	put_ok(cs, &a);
	put_ok(cs, &b);
	put_ok(cs, &c);
	/* Bytes that are not what the name says: put does not check, verify does. */
	assert_int_equal(chunks_put(cs, d.sha, 0, a.stored, 100), 0);
	assert_int_equal(chunks_verify(cs, d.sha, 0), -EBADMSG);

	assert_int_equal(chunks_verify(cs, a.sha, 0), 0);
	chunk_path(f, a.sha, 0, path, sizeof(path));
	flip_byte(path, 4321);
	assert_int_equal(chunks_verify(cs, a.sha, 0), -EBADMSG);

	assert_int_equal(chunks_verify(cs, b.sha, MF_ZSTD), 0);
	chunk_path(f, b.sha, MF_ZSTD, path, sizeof(path));
	flip_byte(path, b.stored_len / 2);
	assert_int_equal(chunks_verify(cs, b.sha, MF_ZSTD), -EBADMSG);

	/* A truncated frame. */
	chunk_path(f, c.sha, MF_ZSTD, path, sizeof(path));
	assert_int_equal(truncate(path, c.stored_len - 3), 0);
	assert_int_equal(chunks_verify(cs, c.sha, MF_ZSTD), -EBADMSG);
	/* A file emptied by hand is not a chunk a manifest could name. */
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(chunks_lookup(cs, c.sha, NULL, NULL), -EIO);
	assert_int_equal(chunks_verify(cs, c.sha, MF_ZSTD), -EBADMSG);

	assert_int_equal(chunks_verify(cs, c.sha, 0), -ENOENT);
	chunks_free(cs);
}

static void write_at(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* Rebuilds an image from a manifest and the store; checks every hash on the way. */
static void check_version(struct chunks *cs, const char *manifest, const char *image)
{
	static uint8_t stored[CHUNKS_MAX_STORED];
	struct manifest m;
	const char *why = NULL;
	uint8_t *raw, *orig;
	uint8_t digest[SHA256_LEN];
	int fd = open(image, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(mf_load(manifest, &m, &why), 0);
	raw = malloc(m.chunk_size);
	orig = malloc(m.chunk_size);
	assert_non_null(raw);
	assert_non_null(orig);
	for (uint32_t i = 0; i < m.chunk_count; i++) {
		const struct mf_chunk *c = &m.chunks[i];
		uint32_t len = mf_chunk_raw_len(&m, i);
		size_t got = 0;

		assert_int_equal(pread(fd, orig, len, (off_t)i * m.chunk_size), (ssize_t)len);
		if (c->flags & MF_ZERO) {
			memset(raw, 0, len);
		} else {
			assert_int_equal(
			    chunks_read(cs, c->sha256, c->flags, stored, sizeof(stored), &got), 0);
			assert_int_equal(got, c->stored_len);
			if (c->flags & MF_ZSTD) {
				assert_int_equal(ZSTD_decompress(raw, len, stored, got), len);
			} else {
				memcpy(raw, stored, got);
			}
		}
		sha256_buf(raw, len, digest);
		assert_memory_equal(digest, c->sha256, SHA256_LEN);
		assert_memory_equal(raw, orig, len);
	}
	close(fd);
	free(raw);
	free(orig);
	mf_free(&m);
}

/*
 * Two versions imported through chunks_sink(), the second a small change of
 * the first; then a GC that keeps only the second.
 */
static void test_prepare_sink_gc(void **state)
{
	struct fixture *f = *state;
	struct mc_prepare_opts o = {.chunk_size = K64, .threads = 2};
	struct mc_prepare_stats st1, st2;
	struct chunks_gc_stats gst;
	struct chunks_hold *h = NULL;
	struct chunks *cs = open_store(f, NULL);
	char image[200], v1[200], v2[200], m1[256], m2[256], missing[256];
	const char *manifests[2];
	uint8_t(*live)[CHUNKS_HASH_LEN] = NULL;
	size_t nlive = 0;
	uint64_t count, bytes;
	uint8_t *buf = malloc(16 * K64);
	struct stat sb;

	assert_non_null(buf);
	join(image, sizeof(image), f->dir, "image");
	join(v1, sizeof(v1), f->dir, "v1");
	join(v2, sizeof(v2), f->dir, "v2");
	join(m1, sizeof(m1), v1, "manifest");
	join(m2, sizeof(m2), v2, "manifest");
	/* 16 chunks: 8 random, 4 text, 4 zero. */
	memset(buf, 0, 16 * K64);
	fill_random(buf, 8 * K64);
	for (size_t i = 8 * K64; i < 12 * K64; i++)
		buf[i] = (uint8_t) "library text "[i % 13] ^ (uint8_t)(i / K64);
	write_at(image, 0, buf, 16 * K64);

	chunks_sink(cs, &o);
	assert_int_equal(chunks_hold(cs, &h), 0);
	assert_int_equal(mc_prepare(image, v1, &o, &st1, f->err, sizeof(f->err)), 0);
	assert_int_equal(chunks_sync(cs), 0);
	chunks_release(h);
	assert_int_equal(st1.zero_chunks, 4);
	assert_int_equal(st1.reused_chunks, 0);
	assert_int_equal(stat(v1, &sb), 0);
	assert_int_equal(chunks_usage(cs, &count, &bytes), 0);
	assert_int_equal(count, 12);
	assert_int_equal(bytes, st1.stored_bytes);
	assert_int_equal(st1.new_stored_bytes, st1.stored_bytes);
	check_version(cs, m1, image);

	/* Version 2: chunk 2 and chunk 9 changed, chunk 14 no longer zero. */
	write_at(image, 2 * K64 + 10, "v2", 2);
	write_at(image, 9 * K64 + 10, "v2", 2);
	write_at(image, 14 * K64 + 10, "v2", 2);
	assert_int_equal(chunks_hold(cs, &h), 0);
	assert_int_equal(mc_prepare(image, v2, &o, &st2, f->err, sizeof(f->err)), 0);
	assert_int_equal(chunks_sync(cs), 0);
	chunks_release(h);
	assert_int_equal(st2.reused_chunks, 10);
	assert_int_equal(chunks_usage(cs, &count, NULL), 0);
	assert_int_equal(count, 15);
	check_version(cs, m2, image);

	/* A live set from a missing manifest is an error, never a smaller set. */
	join(missing, sizeof(missing), f->dir, "nope/manifest");
	manifests[0] = m2;
	manifests[1] = missing;
	assert_int_equal(chunks_live_collect(manifests, 2, &live, &nlive, f->err, sizeof(f->err)),
	                 -ENOENT);
	assert_null(live);
	assert_non_null(strstr(f->err, "nope/manifest"));

	/* Version 1 deleted: its two changed chunks go, version 2 stays whole. */
	assert_int_equal(chunks_live_collect(manifests, 1, &live, &nlive, f->err, sizeof(f->err)),
	                 0);
	assert_int_equal(nlive, 13);
	let_clock_tick();
	assert_int_equal(run_gc(cs, (const uint8_t(*)[CHUNKS_HASH_LEN])live, nlive, true, &gst), 0);
	assert_int_equal(gst.removed, 2);
	assert_int_equal(gst.kept, 13);
	check_version(cs, m2, image);
	free(live);

	/* Both versions live: nothing to remove. */
	manifests[0] = m1;
	manifests[1] = m2;
	assert_int_equal(chunks_live_collect(manifests, 2, &live, &nlive, f->err, sizeof(f->err)),
	                 0);
	assert_int_equal(nlive, 15);
	free(live);
	free(buf);
	chunks_free(cs);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct chunks *cs = (struct chunks *)1;
	char path[256];

	join(path, sizeof(path), f->dir, "no/such/parent");
	assert_int_equal(chunks_open(path, &cs, NULL, f->err, sizeof(f->err)), -ENOENT);
	assert_null(cs);
	assert_non_null(strstr(f->err, "cannot create chunk store"));
	join(path, sizeof(path), f->dir, "file");
	write_at(path, 0, "x", 1);
	assert_int_equal(chunks_open(path, &cs, NULL, f->err, sizeof(f->err)), -ENOTDIR);
	assert_null(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_lookup_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_put, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_tmp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hold_blocks_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc_excludes_imports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prepare_sink_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
