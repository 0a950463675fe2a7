/*
 * Unit tests for the agent's image store (src/agent/imgstore.c) on real
 * directories: prepare, commit, switch, previous, pruning, rollback, abort,
 * kept and stale receptions, crashes at every step (a forked child ends
 * itself in the step hook, then the store is opened again), space shortage
 * on a small tmpfs and reflinks on a loop-mounted BTRFS (both as root only).
 *
 * mc_receive is played by fake_receive(): it writes OUTPUT.mlcast-part and
 * a journal, then renames the part to OUTPUT and removes the journal, as
 * mc_receive does once the whole-image hash matched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "imgstore.h"
#include "log.h"
#include "sha256.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define IMG 7 /* the image id most tests use */

struct fx {
	char tmp[64];
	char store[160];
	char mnt[96]; /* a tmpfs or BTRFS mounted for one test, or "" */
	char err[512];
	struct imgstore *s;
};

/* One version's content. */
struct ver {
	uint64_t id;
	uint8_t *data;
	size_t len;
	char sha[IMGSTORE_SHA_HEX];
};

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static void ver_make(struct ver *v, uint64_t id, size_t len, uint64_t seed)
{
	uint8_t d[SHA256_LEN];

	v->id = id;
	v->len = len;
	v->data = malloc(len);
	assert_non_null(v->data);
	fill(v->data, len, seed);
	sha256_buf(v->data, len, d);
	sha256_hex(d, v->sha);
}

/* v, with its bytes changed at off (n bytes) and its hash updated. */
static void ver_change(struct ver *v, size_t off, size_t n, uint64_t seed)
{
	uint8_t d[SHA256_LEN];

	fill(v->data + off, n, seed);
	sha256_buf(v->data, v->len, d);
	sha256_hex(d, v->sha);
}

static void ver_free(struct ver *v)
{
	free(v->data);
	v->data = NULL;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void rm_rf(const char *path)
{
	(void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_imgstore.XXXXXX");
	if (!mkdtemp(f->tmp))
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->tmp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	imgstore_free(f->s);
	if (f->mnt[0] && umount2(f->mnt, 0) < 0)
		(void)umount2(f->mnt, MNT_DETACH);
	rm_rf(f->tmp);
	free(f);
	return 0;
}

static void store_open(struct fx *f, const struct imgstore_opts *o)
{
	imgstore_free(f->s);
	f->s = NULL;
	f->err[0] = '\0';
	if (imgstore_open(f->store, o, &f->s, f->err, sizeof(f->err)) != 0)
		fail_msg("imgstore_open: %s", f->err);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(fio_write_all(fd, p, n), 0);
	assert_int_equal(close(fd), 0);
}

/* Writes the first n bytes of v as a partial reception, with a journal. */
static void fake_partial(const struct imgstore_rx *rx, const struct ver *v, size_t n)
{
	struct imgstore_rx_info in;
	char part[PATH_MAX], jr[PATH_MAX];

	imgstore_rx_info(rx, &in);
	snprintf(part, sizeof(part), "%s.mlcast-part", in.output);
	snprintf(jr, sizeof(jr), "%s.mlcast-jrnl", in.output);
	write_file(part, v->data, n);
	assert_int_equal(truncate(part, (off_t)v->len), 0);
	write_file(jr, "MLJ1", 4);
}

/* What mc_receive leaves once the image is whole and verified. */
static void fake_receive(const struct imgstore_rx *rx, const struct ver *v)
{
	struct imgstore_rx_info in;
	char part[PATH_MAX], jr[PATH_MAX];

	imgstore_rx_info(rx, &in);
	fake_partial(rx, v, v->len);
	snprintf(part, sizeof(part), "%s.mlcast-part", in.output);
	snprintf(jr, sizeof(jr), "%s.mlcast-jrnl", in.output);
	assert_int_equal(rename(part, in.output), 0);
	assert_int_equal(unlink(jr), 0);
}

static struct imgstore_rx *prepare(struct fx *f, uint64_t image, const struct ver *v)
{
	struct imgstore_rx *rx = NULL;

	f->err[0] = '\0';
	if (imgstore_prepare(f->s, image, v->id, v->sha, v->len, NULL, &rx, f->err,
	                     sizeof(f->err)) != 0)
		fail_msg("prepare v%" PRIu64 ": %s", v->id, f->err);
	return rx;
}

/* Receives and commits v as the new active version of image. */
static void deploy(struct fx *f, uint64_t image, const struct ver *v)
{
	struct imgstore_rx *rx = prepare(f, image, v);

	fake_receive(rx, v);
	if (imgstore_commit(rx, 0, f->err, sizeof(f->err)) != 0)
		fail_msg("commit v%" PRIu64 ": %s", v->id, f->err);
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...)
{
	char p[PATH_MAX];
	struct stat sb;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return lstat(p, &sb) == 0;
}

/* Number of entries in DIR/incoming. */
static int incoming_count(const struct fx *f)
{
	char p[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/incoming", f->store);
	d = opendir(p);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Active and previous are as expected, the active image reads back as want. */
static void check_state(struct fx *f, uint64_t image, const struct ver *want, uint64_t previous)
{
	struct imgstore_list l;
	char path[PATH_MAX];
	uint64_t v = 0;
	uint8_t *buf;
	size_t len;

	assert_int_equal(imgstore_active(f->s, image, &v, path, sizeof(path)), 0);
	assert_int_equal(v, want->id);
	/* Large images are checked by their hash only (verify, then the list's sha256). */
	if (want->len <= 16 * MIB) {
		assert_int_equal(fio_read_file(path, 16 * MIB, &buf, &len), 0);
		assert_int_equal(len, want->len);
		assert_memory_equal(buf, want->data, len);
		free(buf);
	}
	if (imgstore_verify(f->s, image, v, f->err, sizeof(f->err)) != 0)
		fail_msg("verify: %s", f->err);
	assert_int_equal(imgstore_list(f->s, &l, f->err, sizeof(f->err)), 0);
	for (size_t i = 0; i < l.nimages; i++) {
		if (l.images[i].id != image)
			continue;
		assert_int_equal(l.images[i].active, want->id);
		assert_int_equal(l.images[i].previous, previous);
		/* Only active and previous are kept. */
		for (size_t j = 0; j < l.images[i].nversions; j++) {
			const struct imgstore_version *x = &l.images[i].versions[j];

			if (x->state == IMGSTORE_RECEIVING)
				continue;
			assert_true(x->id == want->id || x->id == previous);
			assert_int_equal(x->state,
			                 x->id == want->id ? IMGSTORE_ACTIVE : IMGSTORE_PREVIOUS);
			if (x->id == want->id) {
				assert_string_equal(x->sha256, want->sha);
				assert_int_equal(x->size, want->len);
				assert_true(x->received_at > 0);
			}
		}
	}
	imgstore_list_free(&l);
}

/* ---- records ------------------------------------------------------------ */

static void test_records(void **state)
{
	static const char good[] =
	    "image=7\nversion=12\nsha256="
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "size=1048576\nreceived_at=1700000000\nfuture=whatever\n";
	struct imgstore_meta m, back;
	char buf[IMGSTORE_META_MAX], err[256];
	uint64_t a, p;
	int n;

	(void)state;
	assert_int_equal(imgstore_meta_parse(good, strlen(good), &m, err, sizeof(err)), 0);
	assert_int_equal(m.image, 7);
	assert_int_equal(m.version, 12);
	assert_int_equal(m.size, 1048576);
	assert_int_equal(m.received_at, 1700000000);
	n = imgstore_meta_format(&m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(imgstore_meta_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	assert_int_equal(imgstore_meta_format(&m, buf, 10), -ENOSPC);
	/* Cut before the size: it is missing. */
	assert_int_equal(imgstore_meta_parse(good, 91, &m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "missing size");
	/* An rx record has no received_at. */
	assert_int_equal(imgstore_meta_parse(good, strlen(good), &m, err, sizeof(err)), 0);
	m.received_at = -1;
	n = imgstore_meta_format(&m, buf, sizeof(buf));
	assert_int_equal(imgstore_meta_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
	assert_int_equal(back.received_at, -1);

	static const struct {
		const char *text, *why;
	} bad[] = {
	    {"image=7\nversion=1\nsize=1\n", "missing sha256"},
	    {"image=0\n", "image: too small"},
	    {"image=7\nimage=7\n", "image given twice"},
	    {"image=x\n", "image: not a number"},
	    {"version=99999999999999999999\n", "version: too large"},
	    {"version=000000000000000000000000001\n", "version: too long"},
	    {"sha256=ABCDEF\n", "sha256: not 64 hex digits"},
	    {"sha256=00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n",
	     "sha256: not lower-case hex"},
	    {"size=0\n", "size: too small"},
	    {"size=2251799813685249\n", "size: too large"},
	    {"image\n", "a line that is not key=value"},
	    {"=7\n", "a line that is not key=value"},
	    {"image=7\r\n", "a control byte in a line"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(
		    imgstore_meta_parse(bad[i].text, strlen(bad[i].text), &m, err, sizeof(err)),
		    -EINVAL);
		assert_string_equal(err, bad[i].why);
	}
	assert_int_equal(imgstore_meta_parse("image=7\0\n", 9, &m, err, sizeof(err)), -EINVAL);
	{
		static char big[IMGSTORE_META_MAX + 1];

		memset(big, '\n', sizeof(big));
		assert_int_equal(imgstore_meta_parse(big, sizeof(big), &m, err, sizeof(err)),
		                 -EINVAL);
		assert_string_equal(err, "record longer than 4096 bytes");
		assert_int_equal(imgstore_meta_parse(big, sizeof(big) - 1, &m, err, sizeof(err)),
		                 -EINVAL);
		assert_string_equal(err, "missing image");
	}

	assert_int_equal(
	    imgstore_switch_parse("active=3\nprevious=2\n", 20, &a, &p, err, sizeof(err)), 0);
	assert_int_equal(a, 3);
	assert_int_equal(p, 2);
	assert_int_equal(
	    imgstore_switch_parse("previous=0\nactive=1", 19, &a, &p, err, sizeof(err)), 0);
	assert_int_equal(p, 0);
	assert_int_equal(
	    imgstore_switch_parse("active=0\nprevious=2\n", 20, &a, &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(
	    imgstore_switch_parse("active=2\nprevious=2\n", 20, &a, &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(imgstore_switch_parse("active=2\n", 9, &a, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "missing previous");
}

/* ---- the normal path ---------------------------------------------------- */

static void test_first_commit(void **state)
{
	struct fx *f = *state;
	struct imgstore_rx_info in;
	struct imgstore_rx *rx;
	struct imgstore_list l;
	struct ver v1;
	uint64_t act;

	ver_make(&v1, 1, 300 * KIB + 17, 1);
	store_open(f, NULL);
	assert_true(exists("%s/images", f->store));
	assert_true(exists("%s/incoming", f->store));
	assert_int_equal(imgstore_active(f->s, IMG, &act, NULL, 0), -ENOENT);
	rx = prepare(f, IMG, &v1);
	imgstore_rx_info(rx, &in);
	assert_null(in.seed);
	assert_int_equal(in.seed_version, 0);
	assert_false(in.reflink);
	assert_false(in.resumed);
	assert_false(in.complete);
	assert_true(in.need >= v1.len);
	assert_non_null(strstr(in.output, "/incoming/i7-v1-"));
	/* While receiving, list shows it; nothing is active. */
	assert_int_equal(imgstore_list(f->s, &l, f->err, sizeof(f->err)), 0);
	assert_int_equal(l.nimages, 1);
	assert_int_equal(l.images[0].nversions, 1);
	assert_int_equal(l.images[0].versions[0].state, IMGSTORE_RECEIVING);
	assert_int_equal(l.images[0].active, 0);
	assert_true(l.fs_size > 0);
	imgstore_list_free(&l);
	fake_receive(rx, &v1);
	assert_int_equal(imgstore_commit(rx, IMGSTORE_VERIFY, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v1, 0);
	assert_false(exists("%s/images/7/previous", f->store));
	assert_false(exists("%s/images/7/switch", f->store));
	assert_true(exists("%s/images/7/v1/meta", f->store));
	assert_int_equal(incoming_count(f), 0);
	/* The same version again is refused: it is there. */
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 1, v1.sha, v1.len, NULL, &rx, f->err, sizeof(f->err)),
	    -EEXIST);
	assert_string_equal(f->err, "version 1 of image 7 is already in the store");
	ver_free(&v1);
}

static void test_switch_previous_prune(void **state)
{
	struct fx *f = *state;
	struct imgstore_rx_info in;
	struct imgstore_rx *rx;
	struct ver v1, v2, v3;
	char want[PATH_MAX];

	ver_make(&v1, 1, 256 * KIB, 1);
	ver_make(&v2, 2, 256 * KIB, 2);
	ver_make(&v3, 5, 320 * KIB, 3); /* ids need not be consecutive */
	store_open(f, NULL);
	deploy(f, IMG, &v1);
	rx = prepare(f, IMG, &v2);
	imgstore_rx_info(rx, &in);
	snprintf(want, sizeof(want), "%s/images/7/v1/disk.raw", f->store);
	assert_non_null(in.seed);
	assert_string_equal(in.seed, want);
	assert_int_equal(in.seed_version, 1);
	fake_receive(rx, &v2);
	assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v2, 1);
	deploy(f, IMG, &v3);
	check_state(f, IMG, &v3, 2);
	assert_false(exists("%s/images/7/v1", f->store));
	/* Another image is independent. */
	deploy(f, 9, &v1);
	check_state(f, 9, &v1, 0);
	check_state(f, IMG, &v3, 2);
	ver_free(&v1);
	ver_free(&v2);
	ver_free(&v3);
}

static void test_rollback(void **state)
{
	struct fx *f = *state;
	struct ver v1, v2, v3;

	ver_make(&v1, 1, 200 * KIB, 1);
	ver_make(&v2, 2, 210 * KIB, 2);
	ver_make(&v3, 3, 220 * KIB, 3);
	store_open(f, NULL);
	assert_int_equal(imgstore_rollback(f->s, IMG, f->err, sizeof(f->err)), -ENOENT);
	deploy(f, IMG, &v1);
	assert_int_equal(imgstore_rollback(f->s, IMG, f->err, sizeof(f->err)), -ENOENT);
	assert_string_equal(f->err, "image 7 has no previous version");
	check_state(f, IMG, &v1, 0);
	deploy(f, IMG, &v2);
	assert_int_equal(imgstore_rollback(f->s, IMG, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v1, 2);
	assert_int_equal(imgstore_rollback(f->s, IMG, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v2, 1);
	assert_int_equal(imgstore_rollback(f->s, IMG, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v1, 2);
	/* A commit after a rollback: the rolled-back-to version becomes previous. */
	deploy(f, IMG, &v3);
	check_state(f, IMG, &v3, 1);
	assert_false(exists("%s/images/7/v2", f->store));
	/* activate: the previous one, then one that is not there. */
	assert_int_equal(imgstore_activate(f->s, IMG, 1, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v1, 3);
	assert_int_equal(imgstore_activate(f->s, IMG, 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(imgstore_activate(f->s, IMG, 2, f->err, sizeof(f->err)), -ENOENT);
	check_state(f, IMG, &v1, 3);
	ver_free(&v1);
	ver_free(&v2);
	ver_free(&v3);
}

static void test_abort(void **state)
{
	struct fx *f = *state;
	struct imgstore_rx *rx;
	struct ver v1, v2;

	ver_make(&v1, 1, 200 * KIB, 1);
	ver_make(&v2, 2, 200 * KIB, 2);
	store_open(f, NULL);
	deploy(f, IMG, &v1);
	rx = prepare(f, IMG, &v2);
	fake_partial(rx, &v2, 50 * KIB);
	assert_int_equal(incoming_count(f), 1);
	assert_int_equal(imgstore_abort(rx), 0);
	assert_int_equal(incoming_count(f), 0);
	check_state(f, IMG, &v1, 0);
	/* Aborted after the whole image was there: still nothing of it stays. */
	rx = prepare(f, IMG, &v2);
	fake_receive(rx, &v2);
	assert_int_equal(imgstore_abort(rx), 0);
	assert_int_equal(incoming_count(f), 0);
	check_state(f, IMG, &v1, 0);
	deploy(f, IMG, &v2);
	check_state(f, IMG, &v2, 1);
	ver_free(&v1);
	ver_free(&v2);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	struct imgstore_rx *rx, *rx2 = NULL;
	struct imgstore *other = NULL;
	struct ver v1, v2;
	uint64_t act;

	ver_make(&v1, 1, 100 * KIB, 1);
	ver_make(&v2, 2, 100 * KIB, 2);
	store_open(f, NULL);
	/* A second handle on the same store: the lock says no. */
	assert_int_equal(imgstore_open(f->store, NULL, &other, f->err, sizeof(f->err)), -EBUSY);
	assert_non_null(strstr(f->err, "in use by another process"));
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 1, "xyz", 10, NULL, &rx2, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(
	    imgstore_prepare(f->s, 0, 1, v1.sha, 10, NULL, &rx2, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 0, v1.sha, 10, NULL, &rx2, f->err, sizeof(f->err)),
	    -EINVAL);
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 1, v1.sha, 0, NULL, &rx2, f->err, sizeof(f->err)), -EINVAL);
	assert_null(rx2);
	rx = prepare(f, IMG, &v1);
	/* One reception per image at a time. */
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 2, v2.sha, v2.len, NULL, &rx2, f->err, sizeof(f->err)),
	    -EBUSY);
	/* Upper-case hex is taken and stored lower-case. */
	{
		char up[IMGSTORE_SHA_HEX];

		for (size_t i = 0; i < sizeof(up); i++)
			up[i] = (char)(v2.sha[i] >= 'a' && v2.sha[i] <= 'f' ? v2.sha[i] - 32
			                                                    : v2.sha[i]);
		assert_int_equal(
		    imgstore_prepare(f->s, 8, 2, up, v2.len, NULL, &rx2, f->err, sizeof(f->err)),
		    0);
		assert_true(exists("%s/incoming/i8-v2-%s", f->store, v2.sha));
		imgstore_rx_free(rx2);
	}
	/* Commit before anything was received: refused, the reception stays. */
	assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), -ENOENT);
	assert_int_equal(imgstore_active(f->s, IMG, &act, NULL, 0), -ENOENT);
	assert_int_equal(incoming_count(f), 2);
	rx = prepare(f, IMG, &v1);
	/* The wrong bytes: a verifying commit finds out and removes them. */
	fake_receive(rx, &v2);
	assert_int_equal(imgstore_commit(rx, IMGSTORE_VERIFY, f->err, sizeof(f->err)), -EBADMSG);
	assert_non_null(strstr(f->err, "removed"));
	assert_false(exists("%s/incoming/i7-v1-%s", f->store, v1.sha));
	assert_int_equal(imgstore_active(f->s, IMG, &act, NULL, 0), -ENOENT);
	/* The wrong size. */
	rx = prepare(f, IMG, &v1);
	{
		struct imgstore_rx_info in;

		imgstore_rx_info(rx, &in);
		write_file(in.output, v1.data, v1.len - 1);
	}
	assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), -EIO);
	assert_int_equal(imgstore_active(f->s, IMG, &act, NULL, 0), -ENOENT);
	deploy(f, IMG, &v1);
	check_state(f, IMG, &v1, 0);
	/* The same version id with another hash: the store says so. */
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 1, v2.sha, v2.len, NULL, &rx2, f->err, sizeof(f->err)),
	    -EEXIST);
	assert_non_null(strstr(f->err, "another SHA-256"));
	imgstore_rx_free(NULL);
	assert_int_equal(imgstore_abort(NULL), 0);
	ver_free(&v1);
	ver_free(&v2);
}

/* ---- kept and stale receptions ----------------------------------------- */

static void test_resume_and_stale(void **state)
{
	struct fx *f = *state;
	struct imgstore_rx_info in;
	struct imgstore_rx *rx;
	struct ver v1, v2, v3;
	char p[PATH_MAX];

	ver_make(&v1, 1, 256 * KIB, 1);
	ver_make(&v2, 2, 2 * MIB, 2);
	ver_make(&v3, 3, 256 * KIB, 3);
	store_open(f, NULL);
	deploy(f, IMG, &v1);

	/* A partial reception with a journal survives a restart. */
	rx = prepare(f, IMG, &v2);
	fake_partial(rx, &v2, 1 * MIB);
	imgstore_rx_free(rx);
	/* Stale things: junk, a reception without data, one of a version already in. */
	snprintf(p, sizeof(p), "%s/incoming/junk", f->store);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/incoming/.reflink-probe-a", f->store);
	write_file(p, "x", 1);
	rx = prepare(f, 8, &v3);
	imgstore_rx_free(rx);
	snprintf(p, sizeof(p), "%s/incoming/i7-v1-%s", f->store, v1.sha);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/incoming/i7-v1-%s/disk.raw.mlcast-jrnl", f->store, v1.sha);
	write_file(p, "MLJ1", 4);
	/* A record that does not match its name. */
	snprintf(p, sizeof(p), "%s/incoming/i9-v4-%s", f->store, v1.sha);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/incoming/i9-v4-%s/rx", f->store, v1.sha);
	write_file(p, "image=9\nversion=5\nsize=1\n", 25);
	assert_int_equal(incoming_count(f), 6);

	store_open(f, NULL);
	assert_int_equal(incoming_count(f), 1);
	assert_true(exists("%s/incoming/i7-v2-%s/disk.raw.mlcast-part", f->store, v2.sha));
	rx = prepare(f, IMG, &v2);
	imgstore_rx_info(rx, &in);
	assert_true(in.resumed);
	assert_false(in.complete);
	/* What the partial file holds is not asked for again. */
	assert_true(in.need < v2.len);
	fake_receive(rx, &v2);
	/* Stopped between mc_receive's rename and the commit: kept as whole. */
	imgstore_rx_free(rx);
	store_open(f, NULL);
	rx = prepare(f, IMG, &v2);
	imgstore_rx_info(rx, &in);
	assert_true(in.resumed);
	assert_true(in.complete);
	assert_int_equal(in.need, 0);
	assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v2, 1);

	/* A whole image that is not what its name says: commit re-hashes and refuses. */
	rx = prepare(f, IMG, &v3);
	fake_receive(rx, &v1);
	imgstore_rx_free(rx);
	store_open(f, NULL);
	v1.len = v3.len; /* same size, other bytes */
	rx = prepare(f, IMG, &v3);
	imgstore_rx_info(rx, &in);
	assert_true(in.complete);
	assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), -EBADMSG);
	check_state(f, IMG, &v2, 1);

	/* Two kept receptions of one image: the later version wins. */
	rx = prepare(f, IMG, &v3);
	fake_partial(rx, &v3, 10 * KIB);
	imgstore_rx_free(rx);
	{
		struct imgstore_meta m = {
		    .image = IMG, .version = 4, .size = v3.len, .received_at = -1};
		char rec[IMGSTORE_META_MAX];
		int n;

		memcpy(m.sha256, v3.sha, sizeof(m.sha256));
		snprintf(p, sizeof(p), "%s/incoming/i7-v4-%s", f->store, v3.sha);
		assert_int_equal(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/incoming/i7-v4-%s/rx", f->store, v3.sha);
		n = imgstore_meta_format(&m, rec, sizeof(rec));
		assert_true(n > 0);
		write_file(p, rec, (size_t)n);
		snprintf(p, sizeof(p), "%s/incoming/i7-v4-%s/disk.raw.mlcast-jrnl", f->store,
		         v3.sha);
		write_file(p, "MLJ1", 4);
	}
	assert_int_equal(incoming_count(f), 2);
	store_open(f, NULL);
	assert_int_equal(incoming_count(f), 1);
	assert_true(exists("%s/incoming/i7-v4-%s", f->store, v3.sha));
	ver_free(&v1);
	ver_free(&v2);
	ver_free(&v3);
}

/* ---- crashes ----------------------------------------------------------- */

struct crash {
	int at, seen;
	char file[PATH_MAX];
};

/* The step hook of a child: ends the process at the at-th step, naming it in a file. */
static void crash_step(void *ctx, const char *name)
{
	struct crash *c = ctx;
	int fd;

	if (++c->seen != c->at)
		return;
	fd = open(c->file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		(void)!write(fd, name, strlen(name));
		close(fd);
	}
	_exit(99);
}

enum op { OP_COMMIT, OP_ROLLBACK };

/*
 * Runs op in a child that dies at step `at`. Returns the name of the step
 * it died after, or "" when it ran to the end.
 */
static void crash_run(struct fx *f, enum op op, int at, const struct ver *v, char *name,
                      size_t namesz)
{
	struct crash c = {.at = at};
	pid_t pid;
	int st;

	snprintf(c.file, sizeof(c.file), "%s/step", f->tmp);
	(void)unlink(c.file);
	imgstore_free(f->s);
	f->s = NULL;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct imgstore_opts o = {.step = crash_step, .step_ctx = &c};
		struct imgstore *s;
		struct imgstore_rx *rx;
		char err[512];
		int rc;

		if (imgstore_open(f->store, &o, &s, err, sizeof(err)) < 0)
			_exit(1);
		if (op == OP_COMMIT) {
			if (imgstore_prepare(s, IMG, v->id, v->sha, v->len, NULL, &rx, err,
			                     sizeof(err)) < 0)
				_exit(2);
			fake_receive(rx, v);
			rc = imgstore_commit(rx, 0, err, sizeof(err));
		} else {
			rc = imgstore_rollback(s, IMG, err, sizeof(err));
		}
		_exit(rc == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	name[0] = '\0';
	if (WEXITSTATUS(st) == 99) {
		uint8_t *b;
		size_t len;

		assert_int_equal(fio_read_file(c.file, 64, &b, &len), 0);
		snprintf(name, namesz, "%s", (char *)b);
		free(b);
	} else {
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

/*
 * A crash after each step of a commit (v3 over v2 over v1): reopened, the
 * store has v2 active (crash before the intent) or v3 (from the intent on,
 * rolled forward), never anything half-written; finishing the deployment
 * then always ends with v3 active, v2 previous and v1 gone.
 */
static void test_crash_commit(void **state)
{
	struct fx *f = *state;
	struct ver v1, v2, v3;
	char name[64];
	int at, before = 0, after = 0;

	ver_make(&v1, 1, 128 * KIB, 1);
	ver_make(&v2, 2, 128 * KIB, 2);
	ver_make(&v3, 3, 160 * KIB, 3);
	for (at = 1;; at++) {
		uint64_t act;
		struct imgstore_rx *rx;
		int rc;

		imgstore_free(f->s);
		f->s = NULL;
		rm_rf(f->store);
		store_open(f, NULL);
		deploy(f, IMG, &v1);
		deploy(f, IMG, &v2);
		crash_run(f, OP_COMMIT, at, &v3, name, sizeof(name));
		if (!name[0])
			break;
		store_open(f, NULL);
		assert_int_equal(imgstore_active(f->s, IMG, &act, NULL, 0), 0);
		if (strcmp(name, "meta") == 0) {
			before++;
			check_state(f, IMG, &v2, 1);
		} else {
			after++;
			check_state(f, IMG, &v3, 2);
			assert_false(exists("%s/images/7/v1", f->store));
		}
		assert_false(exists("%s/images/7/switch", f->store));
		assert_false(exists("%s/images/7/active.tmp", f->store));
		/* The agent deploys again: a kept whole image is committed, or v3 is there. */
		rc = imgstore_prepare(f->s, IMG, 3, v3.sha, v3.len, NULL, &rx, f->err,
		                      sizeof(f->err));
		if (rc == 0) {
			struct imgstore_rx_info in;

			imgstore_rx_info(rx, &in);
			assert_true(in.complete);
			assert_int_equal(imgstore_commit(rx, 0, f->err, sizeof(f->err)), 0);
		} else {
			assert_int_equal(rc, -EEXIST);
		}
		check_state(f, IMG, &v3, 2);
		assert_int_equal(incoming_count(f), 0);
	}
	/* meta, intent, moved, previous, active, synced, switched, pruning, pruned. */
	assert_int_equal(before, 1);
	assert_int_equal(after, 8);
	store_open(f, NULL);
	check_state(f, IMG, &v3, 2);
	ver_free(&v1);
	ver_free(&v2);
	ver_free(&v3);
}

/* A crash after each step of a rollback: reopened, the rollback is complete. */
static void test_crash_rollback(void **state)
{
	struct fx *f = *state;
	struct ver v1, v2;
	char name[64], p[PATH_MAX];
	int at, crashes = 0;

	ver_make(&v1, 1, 128 * KIB, 1);
	ver_make(&v2, 2, 128 * KIB, 2);
	for (at = 1;; at++) {
		imgstore_free(f->s);
		f->s = NULL;
		rm_rf(f->store);
		store_open(f, NULL);
		deploy(f, IMG, &v1);
		deploy(f, IMG, &v2);
		crash_run(f, OP_ROLLBACK, at, NULL, name, sizeof(name));
		store_open(f, NULL);
		check_state(f, IMG, &v1, 2);
		if (!name[0])
			break;
		crashes++;
	}
	/* intent, previous, active, synced, switched */
	assert_int_equal(crashes, 5);

	/* A damaged intent is dropped: the links stay as they are. */
	snprintf(p, sizeof(p), "%s/images/7/switch", f->store);
	write_file(p, "active=x\n", 9);
	store_open(f, NULL);
	check_state(f, IMG, &v1, 2);
	assert_false(exists("%s", p));
	/* So is one naming a version the store does not have. */
	write_file(p, "active=5\nprevious=1\n", 20);
	store_open(f, NULL);
	check_state(f, IMG, &v1, 2);
	assert_false(exists("%s", p));
	/* Leftovers of a switch and a prune go; an unreferenced version is pruned. */
	snprintf(p, sizeof(p), "%s/images/7/active.tmp", f->store);
	assert_int_equal(symlink("v9", p), 0);
	snprintf(p, sizeof(p), "%s/images/7/.del-v9", f->store);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/images/7/v8", f->store);
	assert_int_equal(mkdir(p, 0755), 0);
	store_open(f, NULL);
	assert_false(exists("%s/images/7/active.tmp", f->store));
	assert_false(exists("%s/images/7/.del-v9", f->store));
	assert_false(exists("%s/images/7/v8", f->store));
	check_state(f, IMG, &v1, 2);
	ver_free(&v1);
	ver_free(&v2);
}

/* ---- space ------------------------------------------------------------- */

static bool mount_tmpfs(struct fx *f, const char *size)
{
	char opts[64];

	snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->tmp);
	assert_int_equal(mkdir(f->mnt, 0755), 0);
	snprintf(opts, sizeof(opts), "size=%s", size);
	if (mount("none", f->mnt, "tmpfs", 0, opts) < 0) {
		f->mnt[0] = '\0';
		return false;
	}
	snprintf(f->store, sizeof(f->store), "%s/store", f->mnt);
	return true;
}

static void test_space(void **state)
{
	struct fx *f = *state;
	struct imgstore_opts o = {.reserve = 3 * MIB};
	struct imgstore_prep_opts po = {0};
	struct imgstore_rx *rx = NULL;
	struct ver v1, v2;
	char want[128];

	if (geteuid() != 0) {
		print_message("skipped: mounting a small tmpfs needs root\n");
		skip();
	}
	if (!mount_tmpfs(f, "8m")) {
		print_message("skipped: cannot mount a tmpfs: %s\n", strerror(errno));
		skip();
	}
	ver_make(&v1, 1, 4 * MIB, 1);
	ver_make(&v2, 2, 6 * MIB, 2);
	store_open(f, NULL);
	deploy(f, IMG, &v1);
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 2, v2.sha, v2.len, NULL, &rx, f->err, sizeof(f->err)),
	    -ENOSPC);
	assert_null(rx);
	snprintf(want, sizeof(want), "not enough space: need 6 MiB, have %d MiB", 3);
	assert_string_equal(f->err, want);
	assert_int_equal(incoming_count(f), 0);
	check_state(f, IMG, &v1, 0);
	/* With the manifest's figure of non-zero bytes it fits. */
	po.nonzero_bytes = 2 * MIB;
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 2, v2.sha, v2.len, &po, &rx, f->err, sizeof(f->err)), 0);
	assert_int_equal(imgstore_abort(rx), 0);
	/* Unless the store must keep 3 MiB free for other things. */
	store_open(f, &o);
	rx = NULL;
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 2, v2.sha, v2.len, &po, &rx, f->err, sizeof(f->err)),
	    -ENOSPC);
	assert_string_equal(f->err, "not enough space: need 5 MiB, have 3 MiB");
	check_state(f, IMG, &v1, 0);
	ver_free(&v1);
	ver_free(&v2);
}

/* ---- BTRFS ------------------------------------------------------------- */

/* Bytes of path's extents that FIEMAP flags as shared with another file. */
static uint64_t shared_bytes(const char *path)
{
	enum { N = 256 };
	struct fiemap *fm = calloc(1, sizeof(*fm) + N * sizeof(struct fiemap_extent));
	uint64_t start = 0, shared = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool last = false;

	assert_non_null(fm);
	assert_true(fd >= 0);
	while (!last) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = N;
		assert_int_equal(ioctl(fd, FS_IOC_FIEMAP, fm), 0);
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];

			if (e->fe_flags & FIEMAP_EXTENT_SHARED)
				shared += e->fe_length;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = true;
			start = e->fe_logical + e->fe_length;
		}
	}
	close(fd);
	free(fm);
	return shared;
}

static uint64_t fs_used(const char *dir)
{
	struct statvfs vs;

	sync();
	assert_int_equal(statvfs(dir, &vs), 0);
	return (uint64_t)(vs.f_blocks - vs.f_bfree) * vs.f_frsize;
}

/*
 * On BTRFS the store reflinks: prepare finds that the file system can share
 * blocks, asks only for what will differ from the active version (so a v2
 * that a copy would not fit is accepted), and after seeding the way
 * mc_receive does (fio_clone_range for each unchanged chunk) the new
 * version shares its unchanged chunks with the old: FIEMAP flags them
 * shared and the file system's usage grows by the changed chunks only.
 */
static void test_btrfs(void **state)
{
	struct fx *f = *state;
	struct imgstore_opts nore = {.no_reflink = true};
	struct imgstore_rx_info in;
	struct imgstore_rx *rx = NULL;
	struct ver v1, v2;
	char img[256], cmd[1024], path[PATH_MAX];
	uint64_t used0, used1, shared;
	int src, dst;
	const size_t chunk = MIB;

	if (geteuid() != 0) {
		print_message("skipped: mounting a BTRFS loop file needs root\n");
		skip();
	}
	if (system("command -v mkfs.btrfs >/dev/null 2>&1") != 0) {
		print_message("skipped: mkfs.btrfs is not installed (btrfs-progs)\n");
		skip();
	}
	snprintf(img, sizeof(img), "%s/btrfs.img", f->tmp);
	snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->tmp);
	assert_int_equal(mkdir(f->mnt, 0755), 0);
	snprintf(cmd, sizeof(cmd),
	         "truncate -s 192M '%s' && mkfs.btrfs -q '%s' >/dev/null 2>&1 && "
	         "mount -o loop '%s' '%s'",
	         img, img, img, f->mnt);
	if (system(cmd) != 0) {
		f->mnt[0] = '\0';
		print_message("skipped: cannot make and mount a BTRFS loop file\n");
		skip();
	}
	snprintf(f->store, sizeof(f->store), "%s/store", f->mnt);

	/* v1: 40 MiB; v2: v1 with 2 chunks changed, then 48 MiB more. */
	ver_make(&v1, 1, 40 * MIB, 1);
	v2.id = 2;
	v2.len = 88 * MIB;
	v2.data = malloc(v2.len);
	assert_non_null(v2.data);
	memcpy(v2.data, v1.data, v1.len);
	fill(v2.data + v1.len, v2.len - v1.len, 22);
	ver_change(&v2, 5 * chunk, chunk, 23);
	ver_change(&v2, 30 * chunk, chunk, 24);

	store_open(f, NULL);
	assert_true(imgstore_reflink(f->s));
	deploy(f, IMG, &v1);
	used0 = fs_used(f->store);

	/* Without reflinks 88 MiB would not fit beside v1 (about 70 MiB are free). */
	store_open(f, &nore);
	assert_false(imgstore_reflink(f->s));
	assert_int_equal(
	    imgstore_prepare(f->s, IMG, 2, v2.sha, v2.len, NULL, &rx, f->err, sizeof(f->err)),
	    -ENOSPC);
	print_message("without reflinks: %s\n", f->err);

	store_open(f, NULL);
	rx = prepare(f, IMG, &v2);
	imgstore_rx_info(rx, &in);
	assert_true(in.reflink);
	assert_int_equal(in.seed_version, 1);
	/* Growth (48 MiB) and an eighth of the size (11 MiB). */
	assert_int_equal(in.need, 59 * MIB);
	print_message("with reflinks: need %" PRIu64 " MiB, have %" PRIu64 " MiB\n", in.need / MIB,
	              in.avail / MIB);

	/* Seed as mc_receive does: clone the chunks the seed holds, write the rest. */
	snprintf(path, sizeof(path), "%s.mlcast-part", in.output);
	src = open(in.seed, O_RDONLY | O_CLOEXEC);
	dst = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(src >= 0 && dst >= 0);
	assert_int_equal(ftruncate(dst, (off_t)v2.len), 0);
	for (size_t off = 0; off < v2.len; off += chunk) {
		if (off + chunk <= v1.len && memcmp(v1.data + off, v2.data + off, chunk) == 0)
			assert_int_equal(fio_clone_range(src, off, dst, off, chunk), 0);
		else
			assert_int_equal(fio_pwrite_all(dst, v2.data + off, chunk, off), 0);
	}
	assert_int_equal(fsync(dst), 0);
	close(src);
	close(dst);
	assert_int_equal(rename(path, in.output), 0);
	assert_int_equal(imgstore_commit(rx, IMGSTORE_VERIFY, f->err, sizeof(f->err)), 0);
	check_state(f, IMG, &v2, 1);

	assert_int_equal(imgstore_active(f->s, IMG, &v2.id, path, sizeof(path)), 0);
	shared = shared_bytes(path);
	used1 = fs_used(f->store);
	print_message("v2: %" PRIu64 " MiB shared with v1; the file system grew by %" PRIu64
	              " MiB for a %zu MiB image\n",
	              shared / MIB, (used1 - used0) / MIB, v2.len / MIB);
	assert_int_equal(shared, 38 * MIB);
	/* 50 MiB were written (48 new, 2 changed); allow for metadata. */
	assert_true(used1 - used0 < 58 * MIB);
	assert_true(used1 - used0 >= 50 * MIB);
	imgstore_free(f->s);
	f->s = NULL;
	ver_free(&v1);
	ver_free(&v2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test_setup_teardown(test_first_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_switch_previous_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_and_stale, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_btrfs, setup, teardown),
	};

	log_init("test_imgstore", LOG_LVL_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
