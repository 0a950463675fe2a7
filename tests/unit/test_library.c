/*
 * Unit tests for the image library (src/server/library.c) without HTTP: a
 * real SQLite store and real files in a temp dir. Crash recovery of a fake
 * 'importing' row and stray files; imports, uploads, verification and GC
 * through the library's own calls; the source checks and the qcow2 header
 * check; stopping with imports running and queued.
 */
#include <dirent.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chunks.h"
#include "library.h"
#include "server.h"
#include "sha256.h"
#include "store.h"

#define K64 (64u * 1024)

struct fixture {
	char dir[64];   /* the temp root: import root, images live here */
	char data[128]; /* DATA_DIR */
	struct srv srv;
	struct library *lib;
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

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	assert_non_null(*dst);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char db[192];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_library.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	assert_int_equal(mkdir(f->data, 0750), 0);
	srvconf_defaults(&f->srv.conf);
	set_str(&f->srv.conf.data_dir, f->data);
	set_str(&f->srv.conf.import_roots, f->dir);
	f->srv.conf.chunk_size = K64;
	f->srv.conf.import_threads = 2;
	f->srv.conf.imports_max = 2;
	snprintf(db, sizeof(db), "%s/mlserver.db", f->data);
	assert_int_equal(store_open_sqlite(db, &f->srv.store, f->err, sizeof(f->err)), 0);
	assert_int_equal(store_exec(f->srv.store,
	                            "INSERT INTO images (name, created_at, updated_at)"
	                            " VALUES ('img', 1, 1)",
	                            NULL),
	                 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	library_free(f->lib);
	store_close(f->srv.store);
	srvconf_free(&f->srv.conf);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void lib_open(struct fixture *f)
{
	int rc = library_open(&f->srv, &f->lib, f->err, sizeof(f->err));
	if (rc < 0)
		fail_msg("library_open: %s", f->err);
	f->srv.lib = f->lib;
}

static int64_t add_version(struct fixture *f, const char *state)
{
	int64_t id = 0, n = 0;
	assert_int_equal(store_int(f->srv.store, &n, "SELECT COUNT(*) FROM image_versions", NULL),
	                 0);
	assert_int_equal(store_insert(f->srv.store, &id,
	                              "INSERT INTO image_versions (image_id, number, state, source,"
	                              " created_at) VALUES (1, ?, ?, 'test', 1) RETURNING id",
	                              "it", n + 1, state),
	                 0);
	return id;
}

/* The version's state and error ("" for NULL) into the buffers. */
static void row_state(struct fixture *f, int64_t id, char *state, size_t ssz, char *error,
                      size_t esz)
{
	struct store_q *q = store_query(
	    f->srv.store, "SELECT state, error FROM image_versions WHERE id = ?", "i", id);
	assert_non_null(q);
	assert_int_equal(store_next(q), 1);
	snprintf(state, ssz, "%s", store_col_text(q, 0));
	snprintf(error, esz, "%s", store_col_text(q, 1));
	store_done(q);
}

/* Waits (at most 60 s) until the version is no longer importing; returns its state. */
static const char *wait_done(struct fixture *f, int64_t id, char *error, size_t esz)
{
	static char state[16];
	for (int i = 0; i < 6000; i++) {
		row_state(f, id, state, sizeof(state), error, esz);
		if (strcmp(state, "importing") != 0)
			return state;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fail_msg("version %lld still importing after 60 s", (long long)id);
	return NULL;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* An image of n bytes: random data with runs of zeros and a repeated block. */
static uint8_t *make_image(size_t n)
{
	uint8_t *p = calloc(1, n);
	assert_non_null(p);
	for (size_t off = 0; off + K64 <= n; off += K64) {
		size_t k = off / K64;
		if (k % 4 == 1)
			continue; /* zero chunk */
		if (k % 4 == 2 && off >= 2 * K64)
			memcpy(p + off, p, K64); /* the same chunk again */
		else
			fill_random(p + off, K64);
	}
	return p;
}

static bool path_exists(const char *p)
{
	struct stat sb;
	return lstat(p, &sb) == 0;
}

static int64_t count(struct fixture *f, const char *sql)
{
	int64_t n = -1;
	assert_int_equal(store_int(f->srv.store, &n, sql, NULL), 0);
	return n;
}

/* A crash left an importing row, its directory, an orphan directory and an upload. */
static void test_recovery(void **state)
{
	struct fixture *f = *state;
	char path[256], st[16], er[256];
	int64_t importing, ready, failed;

	lib_open(f); /* creates the directories */
	library_free(f->lib);
	f->lib = NULL;
	importing = add_version(f, "importing");
	ready = add_version(f, "ready");
	failed = add_version(f, "failed");
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)importing);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/versions/%lld/manifest.tmp.1", f->data,
	         (long long)importing);
	write_file(path, (const uint8_t *)"partial", 7);
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)ready);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/versions/%lld/manifest", f->data, (long long)ready);
	write_file(path, (const uint8_t *)"kept", 4);
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)failed);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/versions/99", f->data);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/versions/lost+found", f->data);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/uploads/%lld.part", f->data, (long long)importing);
	write_file(path, (const uint8_t *)"half an upload", 14);

	lib_open(f);
	row_state(f, importing, st, sizeof(st), er, sizeof(er));
	assert_string_equal(st, "failed");
	assert_string_equal(er, LIBRARY_INTERRUPTED);
	row_state(f, ready, st, sizeof(st), er, sizeof(er));
	assert_string_equal(st, "ready");
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)importing);
	assert_false(path_exists(path));
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)failed);
	assert_false(path_exists(path));
	snprintf(path, sizeof(path), "%s/versions/99", f->data);
	assert_false(path_exists(path));
	snprintf(path, sizeof(path), "%s/versions/%lld/manifest", f->data, (long long)ready);
	assert_true(path_exists(path));
	snprintf(path, sizeof(path), "%s/versions/lost+found", f->data);
	assert_true(path_exists(path)); /* foreign: left alone */
	snprintf(path, sizeof(path), "%s/uploads/%lld.part", f->data, (long long)importing);
	assert_false(path_exists(path));
	/* Each step is in the audit log, as the server's own work. */
	assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE username = 'mlserver'"
	                          " AND action = 'import' AND detail LIKE 'failed: interrupted%'"),
	                 1);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE username = 'mlserver'"
	                          " AND action = 'cleanup' AND object_type = 'version'"),
	                 3);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM audit WHERE username = 'mlserver'"
	                          " AND action = 'cleanup' AND object_type = 'upload'"),
	                 1);

	/* A second server on the same data directory is refused. */
	struct library *other = NULL;
	assert_int_equal(library_open(&f->srv, &other, f->err, sizeof(f->err)), -EBUSY);
	assert_non_null(strstr(f->err, "another mlserver"));
}

/* Path import → ready; verify; a corrupted chunk is found; delete + GC empties the store. */
static void test_import_verify_gc(void **state)
{
	struct fixture *f = *state;
	size_t n = 40 * K64 + 1000; /* a short last chunk */
	uint8_t *img = make_image(n), sha[SHA256_LEN];
	char path[256], resolved[4096], why[512], er[512], hex[SHA256_HEX_LEN];
	int fd = -1;

	lib_open(f);
	snprintf(path, sizeof(path), "%s/disk.img", f->dir);
	write_file(path, img, n);
	sha256_buf(img, n, sha);
	int64_t id = add_version(f, "importing");
	assert_int_equal(
	    library_check_path(f->lib, path, &fd, resolved, sizeof(resolved), why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_int_equal(library_import(f->lib, id, fd, resolved), 0);
	const char *st = wait_done(f, id, er, sizeof(er));
	if (strcmp(st, "ready") != 0)
		fail_msg("import: %s: %s", st, er);

	json_t *row = NULL;
	bool found;
	row = store_row1_json(f->srv.store, &found,
	                      "SELECT size, stored_size, new_bytes, chunk_size, chunk_count, sha256"
	                      " FROM image_versions WHERE id = ?",
	                      "i", id);
	assert_true(found);
	assert_int_equal(json_integer_value(json_object_get(row, "size")), n);
	assert_int_equal(json_integer_value(json_object_get(row, "chunk_size")), K64);
	assert_int_equal(json_integer_value(json_object_get(row, "chunk_count")), 41);
	assert_string_equal(json_string_value(json_object_get(row, "sha256")),
	                    sha256_hex(sha, hex));
	json_int_t stored = json_integer_value(json_object_get(row, "stored_size"));
	json_int_t fresh = json_integer_value(json_object_get(row, "new_bytes"));
	/* Random chunks do not compress; repeated ones are stored once. */
	assert_true(stored > 20 * (json_int_t)K64);
	assert_true(fresh < stored);
	json_decref(row);

	uint64_t nchunks = 0, bytes = 0;
	struct library_usage u;
	/*
	 * The worker leaves the job list just after it marks the row ready:
	 * wait (bounded) for it to be gone before counting.
	 */
	for (int tries = 0;; tries++) {
		assert_int_equal(library_usage(f->lib, &u), 0);
		if (u.imports_running + u.imports_queued + u.uploads_running == 0 || tries == 1000)
			break;
		usleep(10000);
	}
	nchunks = u.chunks;
	bytes = u.stored_bytes;
	assert_int_equal(bytes, (uint64_t)fresh);
	assert_int_equal(u.imports_running + u.imports_queued + u.uploads_running, 0);

	struct library_verify v;
	assert_int_equal(library_verify(f->lib, id, &v, f->err, sizeof(f->err)), 0);
	assert_int_equal(v.chunks_checked, 41);
	assert_int_equal(v.nbad, 0);
	assert_true(v.image_ok);
	library_verify_free(&v);

	/* Rot one byte of chunk 0's file: verify names chunk 0 (and its copies). */
	char cpath[512], rel[80];
	sha256_buf(img, K64, sha);
	sha256_hex(sha, hex);
	snprintf(rel, sizeof(rel), "%.2s/%s.r", hex, hex);
	snprintf(cpath, sizeof(cpath), "%s/%s", library_chunks_dir(f->lib), rel);
	fd = open(cpath, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 100), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, 100), 1);
	close(fd);
	assert_int_equal(library_verify(f->lib, id, &v, f->err, sizeof(f->err)), 0);
	assert_true(v.nbad >= 1);
	assert_int_equal(v.bad[0], 0);
	assert_false(v.image_ok);
	library_verify_free(&v);

	/* GC with the version alive removes nothing; deleted, everything goes. */
	struct chunks_gc_stats gs;
	assert_int_equal(library_gc(f->lib, &gs, f->err, sizeof(f->err)), 0);
	assert_int_equal(gs.removed, 0);
	assert_int_equal(gs.kept, nchunks);
	assert_int_equal(
	    store_exec(f->srv.store, "DELETE FROM image_versions WHERE id = ?", "i", id), 1);
	assert_int_equal(library_remove_version(f->lib, id), 0);
	assert_int_equal(library_gc(f->lib, &gs, f->err, sizeof(f->err)), 0);
	assert_int_equal(gs.removed, nchunks);
	assert_int_equal(gs.freed_bytes, bytes);
	assert_int_equal(library_usage(f->lib, &u), 0);
	assert_int_equal(u.chunks, 0);
	/* A ready version without its manifest stops the GC instead of losing chunks. */
	id = add_version(f, "ready");
	assert_true(library_gc(f->lib, &gs, f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "manifest"));
	free(img);
}

/* An upload: zeros become holes, the import reads it, nothing stays in uploads/. */
static void test_upload(void **state)
{
	struct fixture *f = *state;
	size_t n = 16 * K64;
	uint8_t *img = calloc(1, n), sha[SHA256_LEN];
	char path[256], er[512], hex[SHA256_HEX_LEN];
	struct library_upload *u = NULL;
	struct stat sb;

	lib_open(f);
	fill_random(img + 3 * K64, K64);
	fill_random(img + 9 * K64 + 17, 5000); /* unaligned */
	sha256_buf(img, n, sha);
	int64_t id = add_version(f, "importing");
	assert_int_equal(library_upload_check(f->lib, (int64_t)f->srv.conf.upload_max + 1), -EFBIG);
	assert_int_equal(library_upload_check(f->lib, INT64_MAX / 2), -EFBIG);
	assert_int_equal(library_upload_begin(f->lib, id, (int64_t)n, &u), 0);
	double frac;
	const char *phase;
	assert_int_equal(library_progress(f->lib, id, &frac, &phase), 1);
	assert_string_equal(phase, "uploading");
	/* Pieces of odd sizes, as HTTP hands them. */
	for (size_t off = 0; off < n;) {
		size_t piece = 12345 < n - off ? 12345 : n - off;
		assert_int_equal(library_upload_write(u, img + off, piece), 0);
		off += piece;
	}
	assert_int_equal(library_upload_bytes(u), n);
	snprintf(path, sizeof(path), "%s/uploads/%lld.part", f->data, (long long)id);
	assert_int_equal(stat(path, &sb), 0);
	/* The trailing zeros are not written (commit sets the size). */
	assert_true(sb.st_size >= 9 * K64 + 17 + 5000 && sb.st_size <= 10 * K64);
	assert_true((uint64_t)sb.st_blocks * 512 < 4 * K64); /* holes, not zeros on disk */
	assert_int_equal(library_upload_commit(u), 0);
	assert_false(path_exists(path));
	const char *st = wait_done(f, id, er, sizeof(er));
	if (strcmp(st, "ready") != 0)
		fail_msg("upload import: %s: %s", st, er);
	json_t *row;
	bool found;
	row = store_row1_json(f->srv.store, &found,
	                      "SELECT size, sha256 FROM image_versions WHERE id = ?", "i", id);
	assert_int_equal(json_integer_value(json_object_get(row, "size")), n);
	assert_string_equal(json_string_value(json_object_get(row, "sha256")),
	                    sha256_hex(sha, hex));
	json_decref(row);

	/* Aborted: the row fails with the reason and the file goes. */
	id = add_version(f, "importing");
	assert_int_equal(library_upload_begin(f->lib, id, -1, &u), 0);
	assert_int_equal(library_upload_write(u, img + 3 * K64, 1000), 0);
	library_upload_abort(u, "upload aborted: test");
	snprintf(path, sizeof(path), "%s/uploads/%lld.part", f->data, (long long)id);
	assert_false(path_exists(path));
	char s2[16];
	row_state(f, id, s2, sizeof(s2), er, sizeof(er));
	assert_string_equal(s2, "failed");
	assert_string_equal(er, "upload aborted: test");

	/* Empty: refused, and the row says so. */
	id = add_version(f, "importing");
	assert_int_equal(library_upload_begin(f->lib, id, -1, &u), 0);
	assert_int_equal(library_upload_commit(u), -ENODATA);
	row_state(f, id, s2, sizeof(s2), er, sizeof(er));
	assert_string_equal(s2, "failed");
	assert_int_equal(library_progress(f->lib, id, &frac, &phase), 0);
	free(img);
}

static void expect_bad_path(struct fixture *f, const char *path, int code, const char *words)
{
	char resolved[4096], why[512] = "";
	int fd = -1;
	int rc =
	    library_check_path(f->lib, path, &fd, resolved, sizeof(resolved), why, sizeof(why));
	if (rc != code || !strstr(why, words))
		fail_msg("%s: want %d '%s', got %d '%s'", path, code, words, rc, why);
	assert_int_equal(fd, -1);
}

static void test_check_path(void **state)
{
	struct fixture *f = *state;
	char path[256], link[256];
	uint8_t block[K64];

	lib_open(f);
	fill_random(block, sizeof(block));
	expect_bad_path(f, "relative/disk.img", -EINVAL, "absolute");
	snprintf(path, sizeof(path), "%s/missing.img", f->dir);
	expect_bad_path(f, path, -ENOENT, "no such file");
	expect_bad_path(f, f->dir, -EINVAL, "directory");
	expect_bad_path(f, "/etc/hostname", -EPERM, "outside");
	snprintf(path, sizeof(path), "%s/mlserver.db", f->data);
	expect_bad_path(f, path, -EPERM, "data directory");
	snprintf(path, sizeof(path), "%s/empty.img", f->dir);
	write_file(path, block, 0);
	expect_bad_path(f, path, -EINVAL, "empty");
	/* A symbolic link inside the root that leads out is judged by its target. */
	snprintf(link, sizeof(link), "%s/escape.img", f->dir);
	assert_int_equal(symlink("/etc/hostname", link), 0);
	expect_bad_path(f, link, -EPERM, "outside");
	snprintf(path, sizeof(path), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_bad_path(f, path, -EINVAL, "regular file");
	/* A qcow2 header naming a backing file. */
	uint8_t q[LIBRARY_QCOW2_HDR] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	q[15] = 200; /* backing_file_offset */
	q[19] = 10;  /* backing_file_size */
	snprintf(path, sizeof(path), "%s/backed.qcow2", f->dir);
	write_file(path, q, sizeof(q));
	expect_bad_path(f, path, -EINVAL, "backing file");
	/* A good one: the resolved path of a link inside the root. */
	snprintf(path, sizeof(path), "%s/good.img", f->dir);
	write_file(path, block, sizeof(block));
	snprintf(link, sizeof(link), "%s/good-link.img", f->dir);
	assert_int_equal(symlink(path, link), 0);
	char resolved[4096], why[512];
	int fd = -1;
	assert_int_equal(
	    library_check_path(f->lib, link, &fd, resolved, sizeof(resolved), why, sizeof(why)), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_non_null(strstr(resolved, "/good.img"));
}

static void test_qcow2_check(void **state)
{
	(void)state;
	uint8_t h[LIBRARY_QCOW2_HDR] = {0};
	const char *why = NULL;
	/* Not qcow2 at all, or too short for a magic. */
	assert_int_equal(library_qcow2_check(h, sizeof(h), &why), 0);
	assert_int_equal(library_qcow2_check(h, 2, &why), 0);
	memcpy(h, "QFI\xfb", 4);
	h[7] = 3;
	assert_int_equal(library_qcow2_check(h, sizeof(h), &why), 0);
	/* Version 2 has no feature fields: 72 bytes suffice. */
	h[7] = 2;
	assert_int_equal(library_qcow2_check(h, 72, &why), 0);
	h[7] = 3;
	assert_int_equal(library_qcow2_check(h, 72, &why), -EINVAL);
	assert_non_null(strstr(why, "cut short"));
	assert_int_equal(library_qcow2_check(h, 10, &why), -EINVAL);
	h[79] = 4; /* incompatible feature bit 2: external data file */
	assert_int_equal(library_qcow2_check(h, sizeof(h), &why), -EINVAL);
	assert_non_null(strstr(why, "external data file"));
	h[79] = 0;
	h[19] = 5; /* backing_file_size alone */
	assert_int_equal(library_qcow2_check(h, sizeof(h), &why), -EINVAL);
	assert_non_null(strstr(why, "backing file"));
}

/* Stopping: the running import stops, the queued one never starts; both fail "interrupted". */
static void test_stop(void **state)
{
	struct fixture *f = *state;
	size_t n = 32u << 20;
	uint8_t *img = malloc(n);
	char path[256], resolved[4096], why[512], st[16], er[256];
	int64_t a, b;
	int fd;

	assert_non_null(img);
	fill_random(img, n);
	f->srv.conf.imports_max = 1;
	f->srv.conf.import_threads = 1;
	lib_open(f);
	snprintf(path, sizeof(path), "%s/big.img", f->dir);
	write_file(path, img, n);
	free(img);
	a = add_version(f, "importing");
	b = add_version(f, "importing");
	assert_int_equal(
	    library_check_path(f->lib, path, &fd, resolved, sizeof(resolved), why, sizeof(why)), 0);
	assert_int_equal(library_import(f->lib, a, fd, resolved), 0);
	assert_int_equal(
	    library_check_path(f->lib, path, &fd, resolved, sizeof(resolved), why, sizeof(why)), 0);
	assert_int_equal(library_import(f->lib, b, fd, resolved), 0);
	double frac;
	const char *phase;
	assert_int_equal(library_progress(f->lib, b, &frac, &phase), 1);
	assert_string_equal(phase, "queued");
	library_free(f->lib);
	f->lib = NULL;
	row_state(f, b, st, sizeof(st), er, sizeof(er));
	assert_string_equal(st, "failed");
	assert_string_equal(er, LIBRARY_INTERRUPTED);
	row_state(f, a, st, sizeof(st), er, sizeof(er));
	/* 32 MiB on one thread takes far longer than the stop. */
	assert_string_equal(st, "failed");
	assert_string_equal(er, LIBRARY_INTERRUPTED);
	snprintf(path, sizeof(path), "%s/versions/%lld", f->data, (long long)a);
	assert_false(path_exists(path));
	/* Nothing queued may start after the stop. */
	lib_open(f);
	assert_int_equal(count(f, "SELECT COUNT(*) FROM image_versions WHERE state = 'ready'"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qcow2_check),
	    cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_verify_gc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
