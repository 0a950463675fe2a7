/*
 * The agent's local image store (see imgstore.h and docs/agent-store.md).
 * Every call reads the state from the file system: nothing is cached, so
 * what a crash leaves is all there is to know, and open() starts from it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "imgstore.h"
#include "log.h"
#include "parse.h"
#include "sha256.h"

#define MIB ((uint64_t)1048576)
#define HASH_BUF (1024 * 1024)

struct imgstore {
	char *dir;
	int lock_fd;
	bool reflink;
	struct imgstore_opts o;
	struct imgstore_rx *rxs; /* open receptions, for -EBUSY */
};

struct imgstore_rx {
	struct imgstore *s;
	struct imgstore_rx *next;
	struct imgstore_meta rec; /* image, version, sha256, size */
	char dir[PATH_MAX], output[PATH_MAX], seed[PATH_MAX];
	uint64_t seed_version;
	bool reflink, resumed, complete;
	uint64_t need, avail;
};

/* ---- small helpers --------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int pfmt(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static void step(struct imgstore *s, const char *name)
{
	if (s->o.step)
		s->o.step(s->o.step_ctx, name);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int fsync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *path)
{
	struct stat sb;

	if (mkdir(path, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &sb) < 0)
		return -errno;
	return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

/* Removes path and everything below it, without following symlinks. */
static int rm_rf(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static int unlink_maybe(const char *path)
{
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* The names in directory path (without . and ..), malloc'ed; free with free_names. */
static int read_names(const char *path, char ***names, size_t *n)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int ret = -ENOMEM;

	*names = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(v, nc * sizeof(*v));

			if (!nv)
				goto out;
			v = nv;
			cap = nc;
		}
		if (!(v[cnt] = strdup(e->d_name)))
			goto out;
		cnt++;
	}
	if (errno) {
		ret = -errno;
		goto out;
	}
	*names = v;
	*n = cnt;
	v = NULL;
	ret = 0;
out:
	for (size_t i = 0; v && i < cnt; i++)
		free(v[i]);
	free(v);
	closedir(d);
	return ret;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Parses a canonical decimal id (no leading zeros) in [1, IMGSTORE_MAX_ID]. */
static int parse_id(const char *s, uint64_t *id)
{
	char back[24];

	if (parse_uint(s, 1, IMGSTORE_MAX_ID, id, NULL) < 0)
		return -EINVAL;
	snprintf(back, sizeof(back), "%" PRIu64, *id);
	return strcmp(back, s) == 0 ? 0 : -EINVAL;
}

/* "v<id>": a version directory's name and a link's target. */
static int parse_vname(const char *s, uint64_t *id)
{
	return s[0] == 'v' ? parse_id(s + 1, id) : -EINVAL;
}

/* "i<image>-v<version>-<sha256>": an incoming reception's directory. */
static int parse_rxname(const char *s, uint64_t *image, uint64_t *version,
                        char sha[IMGSTORE_SHA_HEX])
{
	char buf[128], back[128];
	char *v, *h;

	if (s[0] != 'i' || pfmt(buf, sizeof(buf), "%s", s + 1) < 0)
		return -EINVAL;
	v = strstr(buf, "-v");
	if (!v)
		return -EINVAL;
	*v = '\0';
	h = strchr(v + 2, '-');
	if (!h)
		return -EINVAL;
	*h = '\0';
	if (parse_id(buf, image) < 0 || parse_id(v + 2, version) < 0 ||
	    strlen(h + 1) != IMGSTORE_SHA_HEX - 1)
		return -EINVAL;
	for (const char *p = h + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL;
	memcpy(sha, h + 1, IMGSTORE_SHA_HEX);
	snprintf(back, sizeof(back), "i%" PRIu64 "-v%" PRIu64 "-%s", *image, *version, sha);
	return strcmp(back, s) == 0 ? 0 : -EINVAL;
}

static int image_dir(const struct imgstore *s, uint64_t image, char *buf, size_t n)
{
	return pfmt(buf, n, "%s/images/%" PRIu64, s->dir, image);
}

/* Reads link name (active or previous) of an image directory: 0 and *ver (0 = no link). */
static int read_link(const char *imgdir, const char *name, uint64_t *ver)
{
	char p[PATH_MAX], t[64];
	ssize_t n;
	int rc;

	*ver = 0;
	if ((rc = pfmt(p, sizeof(p), "%s/%s", imgdir, name)) < 0)
		return rc;
	n = readlink(p, t, sizeof(t));
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	if ((size_t)n >= sizeof(t))
		return -EINVAL;
	t[n] = '\0';
	return parse_vname(t, ver);
}

/*
 * Points link name at v<ver> (removes it when ver is 0) with one rename of a
 * new symlink over the old, so that a reader sees the old or the new target.
 * The caller fsyncs the directory.
 */
static int set_link(const char *imgdir, const char *name, uint64_t ver)
{
	char p[PATH_MAX], tmp[PATH_MAX], target[32];
	int rc;

	if ((rc = pfmt(p, sizeof(p), "%s/%s", imgdir, name)) < 0 ||
	    (rc = pfmt(tmp, sizeof(tmp), "%s/%s.tmp", imgdir, name)) < 0)
		return rc;
	if (ver == 0)
		return unlink_maybe(p);
	snprintf(target, sizeof(target), "v%" PRIu64, ver);
	if ((rc = unlink_maybe(tmp)) < 0)
		return rc;
	if (symlink(target, tmp) < 0 || rename(tmp, p) < 0) {
		rc = -errno;
		(void)unlink(tmp);
		return rc;
	}
	return 0;
}

static int load_record(const char *path, struct imgstore_meta *m, char *err, size_t errsz)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fio_read_file(path, IMGSTORE_META_MAX, &buf, &len);

	if (rc < 0) {
		log_seterr(err, errsz, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = imgstore_meta_parse((const char *)buf, len, m, err, errsz);
	free(buf);
	return rc;
}

static int write_record(const char *path, const struct imgstore_meta *m)
{
	char buf[IMGSTORE_META_MAX];
	int len = imgstore_meta_format(m, buf, sizeof(buf));

	return len < 0 ? len : fio_write_file_atomic(path, buf, (size_t)len, 0644);
}

/*
 * Checks that images/<image>/v<ver> is a complete version: a meta naming
 * this image and version, and a regular disk.raw of the meta's size.
 * Returns 0 with *m; -ENOENT when there is no such directory; -EIO (with a
 * reason) when it is there but incomplete.
 */
static int version_check(const struct imgstore *s, uint64_t image, uint64_t ver,
                         struct imgstore_meta *m, char *err, size_t errsz)
{
	char p[PATH_MAX];
	struct stat sb;
	int rc;

	if ((rc = pfmt(p, sizeof(p), "%s/images/%" PRIu64 "/v%" PRIu64, s->dir, image, ver)) < 0)
		return rc;
	if (lstat(p, &sb) < 0) {
		log_seterr(err, errsz, "image %" PRIu64 " has no version %" PRIu64, image, ver);
		return errno == ENOENT ? -ENOENT : -errno;
	}
	if ((rc = pfmt(p, sizeof(p), "%s/images/%" PRIu64 "/v%" PRIu64 "/meta", s->dir, image,
	               ver)) < 0)
		return rc;
	if (load_record(p, m, err, errsz) < 0)
		return -EIO;
	if (m->image != image || m->version != ver || m->received_at < 0) {
		log_seterr(err, errsz, "%s does not describe version %" PRIu64 " of image %" PRIu64,
		           p, ver, image);
		return -EIO;
	}
	if ((rc = pfmt(p, sizeof(p), "%s/images/%" PRIu64 "/v%" PRIu64 "/disk.raw", s->dir, image,
	               ver)) < 0)
		return rc;
	if (lstat(p, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != m->size) {
		log_seterr(err, errsz, "%s is missing or not %" PRIu64 " bytes", p, m->size);
		return -EIO;
	}
	return 0;
}

/* SHA-256 of a whole file, as hex. */
static int hash_file(const char *path, char hex[IMGSTORE_SHA_HEX])
{
	struct sha256_ctx *c = sha256_new();
	uint8_t *buf = malloc(HASH_BUF), d[SHA256_LEN];
	uint64_t off = 0;
	int fd = -1, ret = -ENOMEM;

	if (!c || !buf)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = fio_pread_upto(fd, buf, HASH_BUF, off);

		if (n < 0) {
			ret = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		sha256_update(c, buf, (size_t)n);
		off += (uint64_t)n;
	}
	sha256_final(c, d);
	sha256_hex(d, hex);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	sha256_free(c);
	return ret;
}

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* ---- switching -------------------------------------------------------- */

/*
 * Removes every version directory of the image but active and previous:
 * each is first renamed to .del-v<id> (one atomic step, so a crash never
 * leaves a half-removed v<id>), then removed; open() removes leftovers.
 * Failures are logged: the switch that called it is done already.
 */
static void prune(struct imgstore *s, const char *imgdir, uint64_t active, uint64_t previous)
{
	char **names;
	size_t n;
	uint64_t id;

	if (read_names(imgdir, &names, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char from[PATH_MAX], to[PATH_MAX];
		int rc;

		if (parse_vname(names[i], &id) < 0 || id == active || id == previous)
			continue;
		if (pfmt(from, sizeof(from), "%s/%s", imgdir, names[i]) < 0 ||
		    pfmt(to, sizeof(to), "%s/.del-%s", imgdir, names[i]) < 0)
			continue;
		if (rename(from, to) < 0) {
			log_warn("removing %s: %s", from, strerror(errno));
			continue;
		}
		(void)fsync_dir(imgdir);
		step(s, "pruning");
		if ((rc = rm_rf(to)) < 0)
			log_warn("removing %s: %s", to, strerror(-rc));
		step(s, "pruned");
		log_info("removed %s", from);
	}
	free_names(names, n);
}

static int write_intent(const char *imgdir, uint64_t active, uint64_t previous)
{
	char p[PATH_MAX], buf[96];
	int rc, len;

	if ((rc = pfmt(p, sizeof(p), "%s/switch", imgdir)) < 0)
		return rc;
	len = snprintf(buf, sizeof(buf), "active=%" PRIu64 "\nprevious=%" PRIu64 "\n", active,
	               previous);
	return fio_write_file_atomic(p, buf, (size_t)len, 0644);
}

/*
 * Carries out a written intent: previous, then active, each one rename;
 * the directory is synced before the intent goes, so that the intent
 * outlives the links only until they are durable. Then prunes.
 */
static int apply_intent(struct imgstore *s, const char *imgdir, uint64_t active, uint64_t previous,
                        char *err, size_t errsz)
{
	char p[PATH_MAX];
	int rc;

	if ((rc = set_link(imgdir, "previous", previous)) < 0)
		goto fail;
	step(s, "previous");
	if ((rc = set_link(imgdir, "active", active)) < 0)
		goto fail;
	step(s, "active");
	if ((rc = fsync_dir(imgdir)) < 0)
		goto fail;
	step(s, "synced");
	if ((rc = pfmt(p, sizeof(p), "%s/switch", imgdir)) < 0 || (rc = unlink_maybe(p)) < 0 ||
	    (rc = fsync_dir(imgdir)) < 0)
		goto fail;
	step(s, "switched");
	prune(s, imgdir, active, previous);
	return 0;
fail:
	log_seterr(err, errsz, "switching %s to v%" PRIu64 ": %s (the next open finishes it)",
	           imgdir, active, strerror(-rc));
	return rc;
}

static int switch_to(struct imgstore *s, uint64_t image, uint64_t active, uint64_t previous,
                     char *err, size_t errsz)
{
	char imgdir[PATH_MAX];
	int rc;

	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = write_intent(imgdir, active, previous)) < 0) {
		log_seterr(err, errsz, "image %" PRIu64 ": writing the switch: %s", image,
		           strerror(-rc));
		return rc;
	}
	step(s, "intent");
	rc = apply_intent(s, imgdir, active, previous, err, errsz);
	if (rc == 0)
		log_info("image %" PRIu64 ": v%" PRIu64 " active, previous %s%" PRIu64, image,
		         active, previous ? "v" : "none ", previous);
	return rc;
}

/* The incoming directory of a reception of (image, version), whatever its SHA-256. */
static int find_incoming(const struct imgstore *s, uint64_t image, uint64_t version, char *path,
                         size_t pathsz)
{
	char in[PATH_MAX], sha[IMGSTORE_SHA_HEX], **names;
	uint64_t i, v;
	size_t n;
	int rc;

	if ((rc = pfmt(in, sizeof(in), "%s/incoming", s->dir)) < 0 ||
	    (rc = read_names(in, &names, &n)) < 0)
		return rc;
	rc = -ENOENT;
	for (size_t k = 0; k < n && rc == -ENOENT; k++)
		if (parse_rxname(names[k], &i, &v, sha) == 0 && i == image && v == version)
			rc = pfmt(path, pathsz, "%s/%s", in, names[k]);
	free_names(names, n);
	return rc;
}

/*
 * Carries out the intent left in imgdir by a crash, if any (its version
 * moved in from incoming/ first when the crash came before the move).
 * Returns 1 when it did, 0 when there was none or it was dropped: one whose
 * version is nowhere complete, so that the links still name what they
 * named before it.
 */
static int settle_intent(struct imgstore *s, uint64_t image, const char *imgdir, char *err,
                         size_t errsz)
{
	char p[PATH_MAX], why[256] = "";
	struct imgstore_meta m;
	uint8_t *buf = NULL;
	uint64_t a, pv;
	size_t len;
	int rc;

	if ((rc = pfmt(p, sizeof(p), "%s/switch", imgdir)) < 0)
		return rc;
	rc = fio_read_file(p, IMGSTORE_META_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0 ||
	    imgstore_switch_parse((const char *)buf, len, &a, &pv, why, sizeof(why)) < 0) {
		log_warn("%s: %s: dropped", p, rc < 0 ? strerror(-rc) : why);
		free(buf);
		return unlink_maybe(p);
	}
	free(buf);
	if (version_check(s, image, a, &m, NULL, 0) == -ENOENT) {
		char from[PATH_MAX], to[PATH_MAX];

		/* The crash came between the intent and the move: move it now. */
		if (find_incoming(s, image, a, from, sizeof(from)) == 0 &&
		    pfmt(to, sizeof(to), "%s/v%" PRIu64, imgdir, a) == 0 &&
		    pfmt(p, sizeof(p), "%s/meta", from) == 0 && load_record(p, &m, NULL, 0) == 0 &&
		    m.received_at >= 0 && m.image == image && m.version == a &&
		    rename(from, to) == 0) {
			(void)fsync_dir(imgdir);
			log_info("image %" PRIu64 ": moved the committed v%" PRIu64 " into place",
			         image, a);
		}
	}
	if (version_check(s, image, a, &m, why, sizeof(why)) < 0) {
		log_warn("image %" PRIu64 ": dropping the switch to v%" PRIu64 ": %s", image, a,
		         why);
		(void)pfmt(p, sizeof(p), "%s/switch", imgdir);
		return unlink_maybe(p);
	}
	if (pv && version_check(s, image, pv, &m, why, sizeof(why)) < 0) {
		log_warn("image %" PRIu64 ": previous v%" PRIu64 " dropped: %s", image, pv, why);
		pv = 0;
	}
	log_info("image %" PRIu64 ": finishing the interrupted switch to v%" PRIu64, image, a);
	rc = apply_intent(s, imgdir, a, pv, err, errsz);
	return rc < 0 ? rc : 1;
}

/*
 * Finishes what a crash interrupted in one image directory: temporary
 * names go, an intent is carried out or dropped, and version directories
 * that no link names go (versions are moved in only after their intent, so
 * such a one is what a prune did not get to).
 */
static int settle_image(struct imgstore *s, uint64_t image, char *err, size_t errsz)
{
	char imgdir[PATH_MAX], p[PATH_MAX];
	uint64_t a, pv;
	char **names;
	size_t n;
	int rc;

	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0)
		return rc;
	if ((rc = read_names(imgdir, &names, &n)) < 0)
		return rc == -ENOENT ? 0 : rc;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(names[i], ".del-", 5) != 0 && strcmp(names[i], "active.tmp") != 0 &&
		    strcmp(names[i], "previous.tmp") != 0 &&
		    strncmp(names[i], "switch.tmp.", 11) != 0)
			continue;
		if (pfmt(p, sizeof(p), "%s/%s", imgdir, names[i]) == 0) {
			log_info("removing the leftover %s", p);
			(void)rm_rf(p);
		}
	}
	free_names(names, n);
	rc = settle_intent(s, image, imgdir, err, errsz);
	if (rc == 0 && read_link(imgdir, "active", &a) == 0 &&
	    read_link(imgdir, "previous", &pv) == 0)
		prune(s, imgdir, a, pv);
	return rc < 0 ? rc : 0;
}

/* ---- open and recovery ----------------------------------------------- */

struct cand {
	uint64_t image, version;
	char *name;
};

/*
 * Reads the record of an incoming reception (rx, or meta once its commit
 * wrote one) and checks it against the directory's name; tells whether it
 * holds the whole image or mc_receive's journal.
 */
static int incoming_state(const char *dir, uint64_t image, uint64_t version, const char *sha,
                          struct imgstore_meta *m, bool *complete, bool *journal)
{
	char p[PATH_MAX];
	struct stat sb;
	int rc;

	*complete = *journal = false;
	if ((rc = pfmt(p, sizeof(p), "%s/meta", dir)) < 0)
		return rc;
	if (load_record(p, m, NULL, 0) < 0) {
		if ((rc = pfmt(p, sizeof(p), "%s/rx", dir)) < 0)
			return rc;
		if (load_record(p, m, NULL, 0) < 0)
			return -EINVAL;
	}
	if (m->image != image || m->version != version || strcmp(m->sha256, sha) != 0)
		return -EINVAL;
	if ((rc = pfmt(p, sizeof(p), "%s/disk.raw", dir)) < 0)
		return rc;
	*complete = lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == m->size;
	if ((rc = pfmt(p, sizeof(p), "%s/disk.raw.mlcast-jrnl", dir)) < 0)
		return rc;
	*journal = lstat(p, &sb) == 0 && S_ISREG(sb.st_mode);
	return 0;
}

/*
 * Keeps in incoming/ only what can be resumed (see imgstore_open): for each
 * image the reception of the highest version that is not in images/ yet
 * and holds a journal or the whole image. Everything else goes.
 */
static int clean_incoming(struct imgstore *s)
{
	char in[PATH_MAX], p[PATH_MAX], sha[IMGSTORE_SHA_HEX], **names;
	struct cand *c;
	size_t n, nc = 0;
	int rc;

	if ((rc = pfmt(in, sizeof(in), "%s/incoming", s->dir)) < 0 ||
	    (rc = read_names(in, &names, &n)) < 0)
		return rc;
	c = calloc(n ? n : 1, sizeof(*c));
	if (!c) {
		free_names(names, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct imgstore_meta m;
		uint64_t image, version;
		bool complete, journal, keep = false;

		if (pfmt(p, sizeof(p), "%s/%s", in, names[i]) < 0)
			continue;
		if (parse_rxname(names[i], &image, &version, sha) == 0 &&
		    incoming_state(p, image, version, sha, &m, &complete, &journal) == 0 &&
		    (complete || journal) &&
		    version_check(s, image, version, &m, NULL, 0) == -ENOENT) {
			keep = true;
			c[nc].image = image;
			c[nc].version = version;
			c[nc].name = names[i];
			nc++;
		}
		if (!keep) {
			if (names[i][0] != '.')
				log_info("removing the stale reception %s", p);
			(void)rm_rf(p);
		}
	}
	for (size_t i = 0; i < nc; i++) {
		for (size_t j = 0; j < nc; j++) {
			if (c[j].image != c[i].image || c[j].version <= c[i].version)
				continue;
			if (pfmt(p, sizeof(p), "%s/%s", in, c[i].name) == 0) {
				log_info("removing %s: a later version of the image is kept", p);
				(void)rm_rf(p);
			}
			break;
		}
	}
	free(c);
	free_names(names, n);
	return fsync_dir(in);
}

/* True when blocks can be shared between two files in incoming/ (FICLONE). */
static bool probe_reflink(const char *dir)
{
	char a[PATH_MAX], b[PATH_MAX];
	static const uint8_t block[4096];
	int fa = -1, fb = -1;
	bool ok = false;

	if (pfmt(a, sizeof(a), "%s/incoming/.reflink-probe-a", dir) < 0 ||
	    pfmt(b, sizeof(b), "%s/incoming/.reflink-probe-b", dir) < 0)
		return false;
	fa = open(a, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fb = open(b, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fa >= 0 && fb >= 0 && fio_write_all(fa, block, sizeof(block)) == 0)
		ok = fio_clone_range(fa, 0, fb, 0, sizeof(block)) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	(void)unlink(a);
	(void)unlink(b);
	return ok;
}

int imgstore_open(const char *dir, const struct imgstore_opts *o, struct imgstore **out, char *err,
                  size_t errsz)
{
	struct imgstore *s = NULL;
	char p[PATH_MAX] = "", **names = NULL;
	size_t n = 0;
	uint64_t image;
	int rc = -ENOMEM;

	*out = NULL;
	if (!dir || !*dir) {
		log_seterr(err, errsz, "no store directory");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		log_seterr(err, errsz, "out of memory");
		goto fail;
	}
	s->lock_fd = -1;
	if (o)
		s->o = *o;
	if ((rc = mkdir_one(dir)) < 0 || (rc = pfmt(p, sizeof(p), "%s/images", dir)) < 0 ||
	    (rc = mkdir_one(p)) < 0 || (rc = pfmt(p, sizeof(p), "%s/incoming", dir)) < 0 ||
	    (rc = mkdir_one(p)) < 0 || (rc = pfmt(p, sizeof(p), "%s/lock", dir)) < 0) {
		log_seterr(err, errsz, "%s: %s", p[0] ? p : dir, strerror(-rc));
		goto fail;
	}
	s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_seterr(err, errsz, "%s: %s", p,
		           rc == -EBUSY ? "the store is in use by another process" : strerror(-rc));
		goto fail;
	}
	s->reflink = !s->o.no_reflink && probe_reflink(dir);
	if ((rc = pfmt(p, sizeof(p), "%s/images", dir)) < 0 ||
	    (rc = read_names(p, &names, &n)) < 0) {
		log_seterr(err, errsz, "%s: %s", p, strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (parse_id(names[i], &image) == 0 &&
		    (rc = settle_image(s, image, err, errsz)) < 0)
			goto fail;
	if ((rc = clean_incoming(s)) < 0) {
		log_seterr(err, errsz, "%s/incoming: %s", dir, strerror(-rc));
		goto fail;
	}
	free_names(names, n);
	*out = s;
	return 0;
fail:
	free_names(names, n);
	imgstore_free(s);
	return rc;
}

void imgstore_free(struct imgstore *s)
{
	if (!s)
		return;
	if (s->rxs)
		log_error("imgstore_free: receptions still open");
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->dir);
	free(s);
}

bool imgstore_reflink(const struct imgstore *s)
{
	return s->reflink;
}

const char *imgstore_dir(const struct imgstore *s)
{
	return s->dir;
}

/* ---- receiving ------------------------------------------------------- */

static int check_ids(uint64_t image, uint64_t version, char *err, size_t errsz)
{
	if (image < 1 || image > IMGSTORE_MAX_ID || version < 1 || version > IMGSTORE_MAX_ID) {
		log_seterr(err, errsz, "image and version ids must be 1 to %" PRId64, INT64_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Bytes allocated to a file (0 when there is none). */
static uint64_t allocated(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* The bytes the reception will write; see imgstore_prepare. */
static uint64_t estimate(const struct imgstore_rx *rx, const struct imgstore_prep_opts *o,
                         uint64_t seed_size)
{
	uint64_t size = rx->rec.size;

	if (rx->reflink) {
		if (o && o->changed_bytes)
			return o->changed_bytes;
		return (size > seed_size ? size - seed_size : 0) + size / 8;
	}
	return o && o->nonzero_bytes ? o->nonzero_bytes : size;
}

static void unlink_rx(struct imgstore_rx *rx)
{
	for (struct imgstore_rx **pp = &rx->s->rxs; *pp; pp = &(*pp)->next) {
		if (*pp == rx) {
			*pp = rx->next;
			break;
		}
	}
}

int imgstore_prepare(struct imgstore *s, uint64_t image, uint64_t version, const char *sha_hex,
                     uint64_t size, const struct imgstore_prep_opts *o, struct imgstore_rx **out,
                     char *err, size_t errsz)
{
	struct imgstore_rx *rx = NULL;
	struct imgstore_meta m, seedm;
	char in[PATH_MAX], p[PATH_MAX], name[128], why[256] = "", **names = NULL;
	uint8_t d[SHA256_LEN];
	struct statvfs vs;
	uint64_t active, have = 0;
	size_t n = 0;
	bool exists = false, journal = false;
	int rc;

	*out = NULL;
	if ((rc = check_ids(image, version, err, errsz)) < 0)
		return rc;
	if (!sha_hex || strlen(sha_hex) != IMGSTORE_SHA_HEX - 1 ||
	    sha256_from_hex(sha_hex, d) < 0) {
		log_seterr(err, errsz, "the SHA-256 must be 64 hex digits");
		return -EINVAL;
	}
	if (size < 1 || size > IMGSTORE_MAX_SIZE) {
		log_seterr(err, errsz, "image size %" PRIu64 " out of range", size);
		return -EINVAL;
	}
	for (struct imgstore_rx *r = s->rxs; r; r = r->next) {
		if (r->rec.image == image) {
			log_seterr(err, errsz,
			           "image %" PRIu64 " is being received already (v%" PRIu64 ")",
			           image, r->rec.version);
			return -EBUSY;
		}
	}
	if ((rc = settle_image(s, image, err, errsz)) < 0)
		return rc;
	rx = calloc(1, sizeof(*rx));
	if (!rx) {
		log_seterr(err, errsz, "out of memory");
		return -ENOMEM;
	}
	rx->s = s;
	rx->rec.image = image;
	rx->rec.version = version;
	rx->rec.size = size;
	rx->rec.received_at = -1;
	sha256_hex(d, rx->rec.sha256);

	rc = version_check(s, image, version, &m, why, sizeof(why));
	if (rc != -ENOENT) {
		if (rc == 0 && strcmp(m.sha256, rx->rec.sha256) != 0)
			log_seterr(err, errsz,
			           "the store holds version %" PRIu64 " of image %" PRIu64
			           " with another SHA-256 (%s)",
			           version, image, m.sha256);
		else if (rc == 0)
			log_seterr(err, errsz,
			           "version %" PRIu64 " of image %" PRIu64
			           " is already in the store",
			           version, image);
		else
			log_seterr(err, errsz, "%s", why);
		rc = rc == 0 ? -EEXIST : rc;
		goto fail;
	}

	/* One reception per image: a kept one of another version goes. */
	snprintf(name, sizeof(name), "i%" PRIu64 "-v%" PRIu64 "-%s", image, version,
	         rx->rec.sha256);
	if ((rc = pfmt(in, sizeof(in), "%s/incoming", s->dir)) < 0 ||
	    (rc = pfmt(rx->dir, sizeof(rx->dir), "%s/%s", in, name)) < 0 ||
	    (rc = pfmt(rx->output, sizeof(rx->output), "%s/disk.raw", rx->dir)) < 0 ||
	    (rc = read_names(in, &names, &n)) < 0) {
		log_seterr(err, errsz, "%s: %s", in, strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t ii, vv;
		char sha[IMGSTORE_SHA_HEX];

		if (strcmp(names[i], name) == 0) {
			exists = true;
			continue;
		}
		if (parse_rxname(names[i], &ii, &vv, sha) == 0 && ii == image &&
		    pfmt(p, sizeof(p), "%s/%s", in, names[i]) == 0) {
			log_info("removing %s: v%" PRIu64 " is received now", p, version);
			(void)rm_rf(p);
		}
	}
	if (exists) {
		rc = incoming_state(rx->dir, image, version, rx->rec.sha256, &m, &rx->complete,
		                    &journal);
		if (rc < 0 || m.size != size) {
			log_info("%s: its record does not match: starting again", rx->dir);
			(void)rm_rf(rx->dir);
			exists = false;
			rx->complete = journal = false;
		}
		rx->resumed = rx->complete || journal;
	}

	/* The seed: the active version, when it is complete. */
	if ((rc = image_dir(s, image, p, sizeof(p))) < 0 ||
	    (rc = read_link(p, "active", &active)) < 0)
		active = 0;
	if (active && version_check(s, image, active, &seedm, why, sizeof(why)) == 0 &&
	    pfmt(rx->seed, sizeof(rx->seed), "%s/v%" PRIu64 "/disk.raw", p, active) == 0) {
		rx->seed_version = active;
	} else {
		if (active)
			log_warn("image %" PRIu64 ": no seed: %s", image, why);
		rx->seed[0] = '\0';
		seedm.size = 0;
	}
	rx->reflink = s->reflink && rx->seed_version;

	/* Space: see imgstore.h and docs/agent-store.md. */
	if (statvfs(s->dir, &vs) < 0) {
		rc = -errno;
		log_seterr(err, errsz, "%s: %s", s->dir, strerror(-rc));
		goto fail;
	}
	rx->avail = (uint64_t)vs.f_bavail * vs.f_frsize;
	if (!rx->complete) {
		uint64_t est = estimate(rx, o, seedm.size);

		if (journal && pfmt(p, sizeof(p), "%s.mlcast-part", rx->output) == 0)
			have = allocated(p);
		rx->need = (est > have ? est - have : 0) + s->o.reserve;
		if (rx->need > rx->avail) {
			log_seterr(err, errsz,
			           "not enough space: need %" PRIu64 " MiB, have %" PRIu64 " MiB",
			           (rx->need + MIB - 1) / MIB, rx->avail / MIB);
			rc = -ENOSPC;
			goto fail;
		}
	}
	if (!exists) {
		if ((rc = mkdir_one(rx->dir)) < 0 ||
		    (rc = pfmt(p, sizeof(p), "%s/rx", rx->dir)) < 0 ||
		    (rc = write_record(p, &rx->rec)) < 0 || (rc = fsync_dir(in)) < 0) {
			log_seterr(err, errsz, "%s: %s", rx->dir, strerror(-rc));
			(void)rm_rf(rx->dir);
			goto fail;
		}
	}
	free_names(names, n);
	rx->next = s->rxs;
	s->rxs = rx;
	*out = rx;
	log_info("image %" PRIu64 ": receiving v%" PRIu64 " into %s%s%s%s", image, version,
	         rx->output, rx->seed_version ? " (seed: the active version" : "",
	         rx->seed_version ? (rx->reflink ? ", reflinked)" : ", copied)") : "",
	         rx->complete  ? " (already whole)"
	         : rx->resumed ? " (resumed)"
	                       : "");
	return 0;
fail:
	free_names(names, n);
	free(rx);
	return rc;
}

void imgstore_rx_info(const struct imgstore_rx *rx, struct imgstore_rx_info *info)
{
	memset(info, 0, sizeof(*info));
	info->output = rx->output;
	info->seed = rx->seed_version ? rx->seed : NULL;
	info->dir = rx->dir;
	info->seed_version = rx->seed_version;
	info->reflink = rx->reflink;
	info->resumed = rx->resumed;
	info->complete = rx->complete;
	info->need = rx->need;
	info->avail = rx->avail;
}

void imgstore_rx_free(struct imgstore_rx *rx)
{
	if (!rx)
		return;
	unlink_rx(rx);
	free(rx);
}

int imgstore_abort(struct imgstore_rx *rx)
{
	char in[PATH_MAX];
	int rc;

	if (!rx)
		return 0;
	rc = rm_rf(rx->dir);
	if (rc == 0 && pfmt(in, sizeof(in), "%s/incoming", rx->s->dir) == 0)
		rc = fsync_dir(in);
	log_info("image %" PRIu64 ": reception of v%" PRIu64 " aborted", rx->rec.image,
	         rx->rec.version);
	imgstore_rx_free(rx);
	return rc;
}

int imgstore_commit(struct imgstore_rx *rx, unsigned flags, char *err, size_t errsz)
{
	struct imgstore *s = rx->s;
	uint64_t image = rx->rec.image, version = rx->rec.version, active = 0, previous = 0;
	char imgdir[PATH_MAX], p[PATH_MAX], to[PATH_MAX], hex[IMGSTORE_SHA_HEX];
	struct stat sb;
	int rc;

	if (lstat(rx->output, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		log_seterr(err, errsz, "%s: the image was not received", rx->output);
		imgstore_rx_free(rx);
		return -ENOENT;
	}
	if ((uint64_t)sb.st_size != rx->rec.size) {
		log_seterr(err, errsz, "%s is %lld bytes, not %" PRIu64, rx->output,
		           (long long)sb.st_size, rx->rec.size);
		(void)imgstore_abort(rx);
		return -EIO;
	}
	if ((flags & IMGSTORE_VERIFY) || rx->complete) {
		if ((rc = hash_file(rx->output, hex)) < 0) {
			log_seterr(err, errsz, "%s: %s", rx->output, strerror(-rc));
			imgstore_rx_free(rx);
			return rc;
		}
		if (strcmp(hex, rx->rec.sha256) != 0) {
			log_seterr(err, errsz, "%s has SHA-256 %s, not %s: removed", rx->output,
			           hex, rx->rec.sha256);
			(void)imgstore_abort(rx);
			return -EBADMSG;
		}
	}
	/* Make the image and its record durable before anything names them. */
	rx->rec.received_at = now_s();
	if ((rc = fsync_file(rx->output)) < 0 ||
	    (rc = pfmt(p, sizeof(p), "%s/meta", rx->dir)) < 0 ||
	    (rc = write_record(p, &rx->rec)) < 0 ||
	    (rc = pfmt(p, sizeof(p), "%s/rx", rx->dir)) < 0 || (rc = unlink_maybe(p)) < 0 ||
	    (rc = fsync_dir(rx->dir)) < 0) {
		log_seterr(err, errsz, "%s: %s", rx->dir, strerror(-rc));
		goto out;
	}
	step(s, "meta");
	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = mkdir_one(imgdir)) < 0 || (rc = pfmt(p, sizeof(p), "%s/images", s->dir)) < 0 ||
	    (rc = fsync_dir(p)) < 0 || (rc = read_link(imgdir, "active", &active)) < 0 ||
	    (rc = read_link(imgdir, "previous", &previous)) < 0) {
		log_seterr(err, errsz, "%s: %s", imgdir, strerror(-rc));
		goto out;
	}
	/* The commit point: from here on, open() finishes the switch. */
	if ((rc = write_intent(imgdir, version, active)) < 0) {
		log_seterr(err, errsz, "%s/switch: %s", imgdir, strerror(-rc));
		goto out;
	}
	step(s, "intent");
	if ((rc = pfmt(to, sizeof(to), "%s/v%" PRIu64, imgdir, version)) == 0 &&
	    rename(rx->dir, to) < 0)
		rc = -errno;
	if (rc < 0 || (rc = fsync_dir(imgdir)) < 0 ||
	    (rc = pfmt(p, sizeof(p), "%s/incoming", s->dir)) < 0 || (rc = fsync_dir(p)) < 0) {
		log_seterr(err, errsz, "moving %s to %s: %s (the next open finishes it)", rx->dir,
		           to, strerror(-rc));
		goto out;
	}
	step(s, "moved");
	rc = apply_intent(s, imgdir, version, active, err, errsz);
	if (rc == 0)
		log_info("image %" PRIu64 ": v%" PRIu64
		         " committed and active, previous %s%" PRIu64,
		         image, version, active ? "v" : "none ", active);
out:
	imgstore_rx_free(rx);
	return rc;
}

/* ---- switching -------------------------------------------------------- */

int imgstore_rollback(struct imgstore *s, uint64_t image, char *err, size_t errsz)
{
	struct imgstore_meta m;
	char imgdir[PATH_MAX];
	uint64_t active, previous;
	int rc;

	if ((rc = check_ids(image, 1, err, errsz)) < 0 ||
	    (rc = settle_image(s, image, err, errsz)) < 0)
		return rc;
	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = read_link(imgdir, "active", &active)) < 0 ||
	    (rc = read_link(imgdir, "previous", &previous)) < 0) {
		log_seterr(err, errsz, "image %" PRIu64 ": %s", image, strerror(-rc));
		return rc;
	}
	if (!active || !previous) {
		log_seterr(err, errsz, "image %" PRIu64 " has no previous version", image);
		return -ENOENT;
	}
	if ((rc = version_check(s, image, previous, &m, err, errsz)) < 0)
		return rc == -ENOENT ? -EIO : rc;
	return switch_to(s, image, previous, active, err, errsz);
}

int imgstore_activate(struct imgstore *s, uint64_t image, uint64_t version, char *err, size_t errsz)
{
	struct imgstore_meta m;
	char imgdir[PATH_MAX];
	uint64_t active;
	int rc;

	if ((rc = check_ids(image, version, err, errsz)) < 0 ||
	    (rc = settle_image(s, image, err, errsz)) < 0)
		return rc;
	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = read_link(imgdir, "active", &active)) < 0) {
		log_seterr(err, errsz, "image %" PRIu64 ": %s", image, strerror(-rc));
		return rc;
	}
	if (active == version)
		return 0;
	if ((rc = version_check(s, image, version, &m, err, errsz)) < 0)
		return -ENOENT;
	return switch_to(s, image, version, active, err, errsz);
}

int imgstore_drop_stale(struct imgstore *s, uint64_t image, uint64_t version, const char *sha_hex,
                        char *err, size_t errsz)
{
	struct imgstore_meta m;
	char imgdir[PATH_MAX], want[IMGSTORE_SHA_HEX];
	uint8_t d[SHA256_LEN];
	uint64_t active, previous;
	int rc;

	if ((rc = check_ids(image, version, err, errsz)) < 0)
		return rc;
	if (!sha_hex || strlen(sha_hex) != IMGSTORE_SHA_HEX - 1 ||
	    sha256_from_hex(sha_hex, d) < 0) {
		log_seterr(err, errsz, "the SHA-256 must be 64 hex digits");
		return -EINVAL;
	}
	sha256_hex(d, want);
	/* Settling first prunes versions no link names: only active and previous remain. */
	if ((rc = settle_image(s, image, err, errsz)) < 0)
		return rc;
	rc = version_check(s, image, version, &m, err, errsz);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (strcmp(m.sha256, want) == 0)
		return 0;
	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = read_link(imgdir, "active", &active)) < 0 ||
	    (rc = read_link(imgdir, "previous", &previous)) < 0) {
		log_seterr(err, errsz, "image %" PRIu64 ": %s", image, strerror(-rc));
		return rc;
	}
	if (version == active) {
		log_seterr(err, errsz,
		           "image %" PRIu64 ": the active version %" PRIu64
		           " here has SHA-256 %s, not %s (a reused version id): roll back or "
		           "deploy another version first",
		           image, version, m.sha256, want);
		return -EBUSY;
	}
	/* It is the previous one: a switch without it prunes it, crash-safe as any switch. */
	log_warn("image %" PRIu64 ": previous version %" PRIu64
	         " has SHA-256 %s, not %s: removing it",
	         image, version, m.sha256, want);
	rc = switch_to(s, image, active, 0, err, errsz);
	return rc < 0 ? rc : 1;
}

int imgstore_active(struct imgstore *s, uint64_t image, uint64_t *version, char *path,
                    size_t pathsz)
{
	char imgdir[PATH_MAX];
	int rc;

	*version = 0;
	if (image < 1 || image > IMGSTORE_MAX_ID)
		return -EINVAL;
	if ((rc = image_dir(s, image, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = read_link(imgdir, "active", version)) < 0)
		return rc;
	if (!*version)
		return -ENOENT;
	return path ? pfmt(path, pathsz, "%s/v%" PRIu64 "/disk.raw", imgdir, *version) : 0;
}

int imgstore_verify(struct imgstore *s, uint64_t image, uint64_t version, char *err, size_t errsz)
{
	struct imgstore_meta m;
	char p[PATH_MAX], hex[IMGSTORE_SHA_HEX];
	int rc;

	if ((rc = check_ids(image, version, err, errsz)) < 0 ||
	    (rc = version_check(s, image, version, &m, err, errsz)) < 0)
		return rc;
	if ((rc = pfmt(p, sizeof(p), "%s/images/%" PRIu64 "/v%" PRIu64 "/disk.raw", s->dir, image,
	               version)) < 0 ||
	    (rc = hash_file(p, hex)) < 0) {
		log_seterr(err, errsz, "%s: %s", p, strerror(-rc));
		return rc == -ENOENT ? -ENOENT : -EIO;
	}
	if (strcmp(hex, m.sha256) != 0) {
		log_seterr(err, errsz, "%s has SHA-256 %s, not %s", p, hex, m.sha256);
		return -EBADMSG;
	}
	return 0;
}

/* ---- listing ---------------------------------------------------------- */

const char *imgstore_vstate_str(int state)
{
	switch (state) {
	case IMGSTORE_ACTIVE:
		return "active";
	case IMGSTORE_PREVIOUS:
		return "previous";
	case IMGSTORE_INACTIVE:
		return "inactive";
	case IMGSTORE_RECEIVING:
		return "receiving";
	case IMGSTORE_BROKEN:
		return "broken";
	default:
		return "?";
	}
}

static struct imgstore_image *list_image(struct imgstore_list *l, uint64_t id)
{
	struct imgstore_image *v;

	for (size_t i = 0; i < l->nimages; i++)
		if (l->images[i].id == id)
			return &l->images[i];
	v = realloc(l->images, (l->nimages + 1) * sizeof(*v));
	if (!v)
		return NULL;
	l->images = v;
	v = &l->images[l->nimages++];
	memset(v, 0, sizeof(*v));
	v->id = id;
	return v;
}

static struct imgstore_version *list_version(struct imgstore_image *im)
{
	struct imgstore_version *v = realloc(im->versions, (im->nversions + 1) * sizeof(*v));

	if (!v)
		return NULL;
	im->versions = v;
	v = &im->versions[im->nversions++];
	memset(v, 0, sizeof(*v));
	v->received_at = -1;
	return v;
}

static int cmp_image(const void *a, const void *b)
{
	const struct imgstore_image *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_version(const void *a, const void *b)
{
	const struct imgstore_version *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->state - y->state;
}

/* Adds the versions of images/<id> to l. */
static int list_one(struct imgstore *s, struct imgstore_list *l, uint64_t id)
{
	char imgdir[PATH_MAX], p[PATH_MAX], **names;
	struct imgstore_image *im = list_image(l, id);
	size_t n;
	int rc;

	if (!im)
		return -ENOMEM;
	if ((rc = image_dir(s, id, imgdir, sizeof(imgdir))) < 0 ||
	    (rc = read_link(imgdir, "active", &im->active)) < 0 ||
	    (rc = read_link(imgdir, "previous", &im->previous)) < 0 ||
	    (rc = read_names(imgdir, &names, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct imgstore_version *v;
		struct imgstore_meta m;
		uint64_t ver;

		if (parse_vname(names[i], &ver) < 0)
			continue;
		if (!(v = list_version(im))) {
			rc = -ENOMEM;
			break;
		}
		v->id = ver;
		if (version_check(s, id, ver, &m, NULL, 0) == 0) {
			v->size = m.size;
			memcpy(v->sha256, m.sha256, sizeof(v->sha256));
			v->received_at = m.received_at;
			v->state = ver == im->active     ? IMGSTORE_ACTIVE
			           : ver == im->previous ? IMGSTORE_PREVIOUS
			                                 : IMGSTORE_INACTIVE;
		} else {
			v->state = IMGSTORE_BROKEN;
		}
		if (pfmt(p, sizeof(p), "%s/%s/disk.raw", imgdir, names[i]) == 0)
			v->allocated = allocated(p);
	}
	free_names(names, n);
	return rc;
}

/* Adds the receptions kept in incoming/ to l. */
static int list_incoming(struct imgstore *s, struct imgstore_list *l)
{
	char in[PATH_MAX], p[PATH_MAX], sha[IMGSTORE_SHA_HEX], **names;
	size_t n;
	int rc;

	if ((rc = pfmt(in, sizeof(in), "%s/incoming", s->dir)) < 0 ||
	    (rc = read_names(in, &names, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct imgstore_image *im;
		struct imgstore_version *v;
		struct imgstore_meta m;
		uint64_t image, ver;
		bool complete, journal;

		if (parse_rxname(names[i], &image, &ver, sha) < 0 ||
		    pfmt(p, sizeof(p), "%s/%s", in, names[i]) < 0 ||
		    incoming_state(p, image, ver, sha, &m, &complete, &journal) < 0)
			continue;
		if (!(im = list_image(l, image)) || !(v = list_version(im))) {
			rc = -ENOMEM;
			break;
		}
		v->id = ver;
		v->size = m.size;
		memcpy(v->sha256, m.sha256, sizeof(v->sha256));
		v->state = IMGSTORE_RECEIVING;
		if (pfmt(p, sizeof(p), "%s/%s/disk.raw%s", in, names[i],
		         complete ? "" : ".mlcast-part") == 0)
			v->allocated = allocated(p);
	}
	free_names(names, n);
	return rc;
}

int imgstore_list(struct imgstore *s, struct imgstore_list *l, char *err, size_t errsz)
{
	char p[PATH_MAX], **names = NULL;
	struct statvfs vs;
	size_t n = 0;
	uint64_t id;
	int rc;

	memset(l, 0, sizeof(*l));
	l->reflink = s->reflink;
	if (statvfs(s->dir, &vs) == 0) {
		l->fs_size = (uint64_t)vs.f_blocks * vs.f_frsize;
		l->fs_avail = (uint64_t)vs.f_bavail * vs.f_frsize;
	}
	if ((rc = pfmt(p, sizeof(p), "%s/images", s->dir)) < 0 ||
	    (rc = read_names(p, &names, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (parse_id(names[i], &id) == 0)
			rc = list_one(s, l, id);
	if (rc == 0)
		rc = list_incoming(s, l);
	if (rc == 0 && l->nimages) {
		/* qsort's array must not be NULL, even for 0 elements (UBSan). */
		qsort(l->images, l->nimages, sizeof(*l->images), cmp_image);
		for (size_t i = 0; i < l->nimages; i++)
			if (l->images[i].nversions)
				qsort(l->images[i].versions, l->images[i].nversions,
				      sizeof(*l->images[i].versions), cmp_version);
	}
out:
	free_names(names, n);
	if (rc < 0) {
		log_seterr(err, errsz, "listing %s: %s", s->dir, strerror(-rc));
		imgstore_list_free(l);
	}
	return rc;
}

void imgstore_list_free(struct imgstore_list *l)
{
	for (size_t i = 0; l && i < l->nimages; i++)
		free(l->images[i].versions);
	if (l) {
		free(l->images);
		memset(l, 0, sizeof(*l));
	}
}
