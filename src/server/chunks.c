/*
 * The content-addressed chunk store: one file per stored chunk, named by
 * the raw chunk's SHA-256, fanned out over 256 directories. chunks.h has
 * the contract, docs/chunkstore.md the layout and the crash rules.
 *
 * Every path is opened relative to the store's directory descriptor, so the
 * store keeps working if the process changes its working directory, and a
 * name built from a hash can never leave the store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "log.h"
#include "cas.h"
#include "chunks.h"
#include "fileio.h"
#include "manifest.h"
#include "mlcast.h"
#include "sha256.h"

#define CS_OPEN_LOCK "open.lock"
#define CS_GC_LOCK "gc.lock"
/* The prefix of mc_cas_put()'s temporary files, which open sweeps when stale. */
#define CS_TMP_PREFIX ".tmp."

/* The store takes every stored form a manifest can name, and no more. */
_Static_assert(CHUNKS_MAX_STORED == MF_MAX_CHUNK + 1024, "stored cap differs from the manifest's");

struct chunks {
	int dir_fd;
	int open_fd; /* open.lock, held LOCK_SH while the handle lives */
};

struct chunks_hold {
	int fd; /* gc.lock, held LOCK_SH */
};

static bool cs_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* True for a fan-out directory's name: two lower-case hex digits. */
static bool cs_is_fanout(const char *name)
{
	return strlen(name) == 2 && cs_is_lower_hex(name, 2);
}

/*
 * Parses a chunk file's name inside fan-out directory dir: 64 lower-case
 * hex digits starting with dir, then ".z" or ".r". Anything else is not a
 * chunk (a temp file, or something foreign that the store leaves alone).
 */
static bool cs_parse_name(const char *dir, const char *name, uint8_t sha[CHUNKS_HASH_LEN],
                          uint8_t *flags)
{
	char hex[SHA256_HEX_LEN];

	if (strlen(name) != 66 || name[64] != '.' || (name[65] != 'z' && name[65] != 'r'))
		return false;
	if (!cs_is_lower_hex(name, 64) || name[0] != dir[0] || name[1] != dir[1])
		return false;
	memcpy(hex, name, 64);
	hex[64] = 0;
	if (sha256_from_hex(hex, sha) < 0)
		return false;
	*flags = name[65] == 'z' ? MF_ZSTD : 0;
	return true;
}

/* Opens a file relative to the store for a lock, creating it. Returns an fd or -errno. */
static int cs_open_lockfile(int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	return fd < 0 ? -errno : fd;
}

static int cs_flock(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * Calls fn for every entry of every fan-out directory, with the fan-out
 * directory's fd and name. fn returns 0 to go on or -errno to stop.
 * Returns 0 or the first error.
 */
static int cs_walk(int dir_fd, int (*fn)(void *arg, int sub_fd, const char *sub, const char *name),
                   void *arg)
{
	DIR *top = NULL;
	struct dirent *e;
	int fd;
	int ret = 0;

	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	top = fdopendir(fd);
	if (!top) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (ret == 0) {
		DIR *d;
		struct dirent *f;
		int sub;

		errno = 0;
		e = readdir(top);
		if (!e) {
			ret = errno ? -errno : 0;
			break;
		}
		if (!cs_is_fanout(e->d_name))
			continue;
		sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (sub < 0) {
			/* Not a directory: something foreign, left alone. */
			if (errno == ENOTDIR || errno == ELOOP)
				continue;
			ret = -errno;
			break;
		}
		d = fdopendir(sub);
		if (!d) {
			ret = -errno;
			close(sub);
			break;
		}
		while (ret == 0) {
			errno = 0;
			f = readdir(d);
			if (!f) {
				ret = errno ? -errno : 0;
				break;
			}
			if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, ".."))
				continue;
			ret = fn(arg, dirfd(d), e->d_name, f->d_name);
		}
		closedir(d);
	}
	closedir(top);
	return ret;
}

static int cs_sweep_one(void *arg, int sub_fd, const char *sub, const char *name)
{
	unsigned *n = arg;

	(void)sub;
	if (strncmp(name, CS_TMP_PREFIX, strlen(CS_TMP_PREFIX)) != 0)
		return 0;
	if (unlinkat(sub_fd, name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	(*n)++;
	return 0;
}

/* fsyncs the directory that holds path (which has no trailing slash). */
static int cs_sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n, fd, ret = 0;

	if (!slash)
		n = snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		n = snprintf(dir, sizeof(dir), "/");
	else
		n = snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int chunks_open(const char *dir, struct chunks **out, unsigned *stale, char *err, size_t errsz)
{
	struct chunks *cs = NULL;
	unsigned swept = 0;
	int ret;

	*out = NULL;
	if (stale)
		*stale = 0;
	if (err && errsz)
		err[0] = 0;
	cs = calloc(1, sizeof(*cs));
	if (!cs) {
		log_seterr(err, errsz, "out of memory");
		return -ENOMEM;
	}
	cs->dir_fd = cs->open_fd = -1;
	if (mkdir(dir, 0750) == 0) {
		/* The store's name must survive a crash as surely as its chunks. */
		ret = cs_sync_parent(dir);
		if (ret < 0) {
			log_seterr(err, errsz, "cannot sync the parent of chunk store %s: %s", dir,
			           strerror(-ret));
			goto out;
		}
	} else if (errno != EEXIST) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create chunk store %s: %s", dir, strerror(-ret));
		goto out;
	}
	cs->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cs->dir_fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot open chunk store %s: %s", dir, strerror(-ret));
		goto out;
	}
	ret = cs_open_lockfile(cs->dir_fd, CS_OPEN_LOCK);
	if (ret >= 0) {
		cs->open_fd = ret;
		ret = cs_open_lockfile(cs->dir_fd, CS_GC_LOCK);
		if (ret >= 0) {
			close(ret);
			ret = 0;
		}
	}
	if (ret < 0) {
		log_seterr(err, errsz, "cannot create the lock files of chunk store %s: %s", dir,
		           strerror(-ret));
		goto out;
	}
	/*
	 * Temp files belong to puts in progress, which only open handles
	 * make. When this handle is the only one, every temp file is a
	 * crash's leftover; otherwise the sweep waits for a later open.
	 */
	ret = cs_flock(cs->open_fd, LOCK_EX | LOCK_NB);
	if (ret == 0) {
		ret = cs_walk(cs->dir_fd, cs_sweep_one, &swept);
		if (ret < 0) {
			log_seterr(err, errsz, "cannot remove temp files in chunk store %s: %s",
			           dir, strerror(-ret));
			goto out;
		}
	} else if (ret != -EWOULDBLOCK) {
		log_seterr(err, errsz, "cannot lock chunk store %s: %s", dir, strerror(-ret));
		goto out;
	}
	/* From exclusive, this converts; otherwise it waits out another's sweep. */
	ret = cs_flock(cs->open_fd, LOCK_SH);
	if (ret < 0) {
		log_seterr(err, errsz, "cannot lock chunk store %s: %s", dir, strerror(-ret));
		goto out;
	}
	if (stale)
		*stale = swept;
	*out = cs;
	cs = NULL;
	ret = 0;
out:
	chunks_free(cs);
	return ret;
}

void chunks_free(struct chunks *cs)
{
	if (!cs)
		return;
	if (cs->open_fd >= 0)
		close(cs->open_fd);
	if (cs->dir_fd >= 0)
		close(cs->dir_fd);
	free(cs);
}

int chunks_lookup(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t *flags,
                  uint32_t *stored_len)
{
	uint8_t f = 0;
	uint32_t len = 0;
	int ret = mc_cas_lookup(cs->dir_fd, sha256, &f, &len);

	if (ret > 0) {
		if (flags)
			*flags = f;
		if (stored_len)
			*stored_len = len;
	}
	return ret;
}

/*
 * libmlcast's writer does the put (cas.h): a temporary file in the fan-out
 * directory, fsync, then link(), which never replaces an existing name, so
 * when two puts of one chunk race exactly one creates it and the other sees
 * the same form there (0) or another (-EEXIST). The name is not fsynced
 * here: one chunks_sync() per import does that for all its chunks, and also
 * for chunks it found that a concurrent put had just linked.
 */
int chunks_put(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags,
               const void *stored, uint32_t stored_len)
{
	if (!stored || stored_len > CHUNKS_MAX_STORED)
		return -EINVAL;
	return mc_cas_put(cs->dir_fd, sha256, flags, stored, stored_len);
}

/*
 * Reads one form of a chunk into buf (at most cap bytes), through
 * libmlcast's reader, the one every other reader of the store uses.
 * Returns 0 and *len, -ENOENT, -EFBIG when longer than cap, -errno.
 */
static int cs_read(struct chunks *cs, const uint8_t sha[CHUNKS_HASH_LEN], uint8_t flags, void *buf,
                   size_t cap, size_t *len)
{
	return mc_cas_read(cs->dir_fd, sha, flags, buf, cap, len);
}

int chunks_read(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags, void *buf,
                size_t cap, size_t *len)
{
	if (flags != 0 && flags != MF_ZSTD)
		return -EINVAL;
	return cs_read(cs, sha256, flags, buf, cap, len);
}

int chunks_verify(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags)
{
	uint8_t digest[SHA256_LEN];
	uint8_t *stored = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	int ret;

	if (flags != 0 && flags != MF_ZSTD)
		return -EINVAL;
	stored = malloc(CHUNKS_MAX_STORED);
	if (!stored)
		return -ENOMEM;
	ret = cs_read(cs, sha256, flags, stored, CHUNKS_MAX_STORED, &len);
	if (ret == -EFBIG)
		ret = -EBADMSG; /* no chunk's stored form is that long */
	if (ret < 0)
		goto out;
	if (flags & MF_ZSTD) {
		unsigned long long want = ZSTD_getFrameContentSize(stored, len);
		size_t n;

		/*
		 * Prepare always records the content size; a frame without
		 * one, or one larger than any chunk, is not ours.
		 */
		if (want == ZSTD_CONTENTSIZE_UNKNOWN || want == ZSTD_CONTENTSIZE_ERROR ||
		    want == 0 || want > MF_MAX_CHUNK) {
			ret = -EBADMSG;
			goto out;
		}
		raw = malloc((size_t)want);
		if (!raw) {
			ret = -ENOMEM;
			goto out;
		}
		n = ZSTD_decompress(raw, (size_t)want, stored, len);
		if (ZSTD_isError(n) || n != want) {
			ret = -EBADMSG;
			goto out;
		}
		sha256_buf(raw, n, digest);
	} else {
		sha256_buf(stored, len, digest);
	}
	ret = ct_equal(digest, sha256, SHA256_LEN) ? 0 : -EBADMSG;
out:
	free(raw);
	free(stored);
	return ret;
}

int chunks_sync(struct chunks *cs)
{
	return syncfs(cs->dir_fd) < 0 ? -errno : 0;
}

struct cs_usage {
	uint64_t count;
	uint64_t bytes;
};

static int cs_usage_one(void *arg, int sub_fd, const char *sub, const char *name)
{
	struct cs_usage *u = arg;
	uint8_t sha[CHUNKS_HASH_LEN];
	uint8_t flags;
	struct stat sb;

	if (!cs_parse_name(sub, name, sha, &flags))
		return 0;
	if (fstatat(sub_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno; /* removed by a GC meanwhile */
	if (!S_ISREG(sb.st_mode))
		return 0;
	u->count++;
	u->bytes += (uint64_t)sb.st_size;
	return 0;
}

int chunks_usage(struct chunks *cs, uint64_t *count, uint64_t *bytes)
{
	struct cs_usage u = {0};
	int ret = cs_walk(cs->dir_fd, cs_usage_one, &u);

	if (ret < 0)
		return ret;
	if (count)
		*count = u.count;
	if (bytes)
		*bytes = u.bytes;
	return 0;
}

int chunks_hold(struct chunks *cs, struct chunks_hold **out)
{
	struct chunks_hold *h;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	/* A descriptor of its own, so that each hold is a lock of its own. */
	h->fd = cs_open_lockfile(cs->dir_fd, CS_GC_LOCK);
	if (h->fd < 0) {
		ret = h->fd;
		free(h);
		return ret;
	}
	ret = cs_flock(h->fd, LOCK_SH);
	if (ret < 0) {
		close(h->fd);
		free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void chunks_release(struct chunks_hold *h)
{
	if (!h)
		return;
	close(h->fd); /* drops the lock */
	free(h);
}

static int cs_hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CHUNKS_HASH_LEN);
}

void chunks_live_sort(uint8_t (*hashes)[CHUNKS_HASH_LEN], size_t *n)
{
	size_t w = 0;

	if (*n == 0)
		return;
	qsort(hashes, *n, CHUNKS_HASH_LEN, cs_hash_cmp);
	for (size_t i = 1; i < *n; i++) {
		if (memcmp(hashes[i], hashes[w], CHUNKS_HASH_LEN) != 0) {
			w++;
			if (w != i)
				memcpy(hashes[w], hashes[i], CHUNKS_HASH_LEN);
		}
	}
	*n = w + 1;
}

int chunks_live_collect(const char *const *manifests, size_t n, uint8_t (**out)[CHUNKS_HASH_LEN],
                        size_t *nout, char *err, size_t errsz)
{
	uint8_t(*set)[CHUNKS_HASH_LEN] = NULL;
	size_t have = 0, cap = 0;
	struct manifest m = {0};
	int ret = 0;

	*out = NULL;
	*nout = 0;
	if (err && errsz)
		err[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;

		ret = mf_load(manifests[i], &m, &why);
		if (ret < 0) {
			if (why)
				log_seterr(err, errsz, "manifest %s: %s", manifests[i], why);
			else
				log_seterr(err, errsz, "manifest %s: %s", manifests[i],
				           strerror(-ret));
			goto out;
		}
		for (uint32_t c = 0; c < m.chunk_count; c++) {
			if (m.chunks[c].flags & MF_ZERO)
				continue; /* never stored */
			if (have == cap) {
				size_t ncap = cap ? 2 * cap : 1024;
				void *p = ncap > SIZE_MAX / CHUNKS_HASH_LEN
				              ? NULL
				              : realloc(set, ncap * CHUNKS_HASH_LEN);

				if (!p) {
					log_seterr(err, errsz,
					           "out of memory collecting live chunks");
					ret = -ENOMEM;
					goto out;
				}
				set = p;
				cap = ncap;
			}
			memcpy(set[have++], m.chunks[c].sha256, CHUNKS_HASH_LEN);
		}
		mf_free(&m);
		/* Deduplicate as we go, so that shared chunks do not pile up. */
		if (have > cap / 2)
			chunks_live_sort(set, &have);
	}
	chunks_live_sort(set, &have);
	if (have == 0) {
		free(set);
		set = NULL;
	}
	*out = set;
	*nout = have;
	set = NULL;
	ret = 0;
out:
	mf_free(&m);
	free(set);
	return ret;
}

struct chunks_gc {
	struct chunks *cs;
	int fd; /* gc.lock, held LOCK_EX */
	struct timespec start;
};

struct cs_sweep {
	const uint8_t (*live)[CHUNKS_HASH_LEN];
	size_t nlive;
	struct timespec start;
	struct chunks_gc_stats st;
};

static bool cs_ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int cs_sweep_one_chunk(void *arg, int sub_fd, const char *sub, const char *name)
{
	struct cs_sweep *g = arg;
	uint8_t sha[CHUNKS_HASH_LEN];
	uint8_t flags;
	struct stat sb;

	if (!cs_parse_name(sub, name, sha, &flags))
		return 0;
	if (g->nlive && bsearch(sha, g->live, g->nlive, CHUNKS_HASH_LEN, cs_hash_cmp)) {
		g->st.kept++;
		return 0;
	}
	if (fstatat(sub_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(sb.st_mode))
		return 0;
	/*
	 * link() sets the chunk's status-change time, so a chunk put since
	 * the GC began has one at or after the start, whenever its bytes were
	 * written. (Its modification time is when the temp file was written,
	 * which may well be before.)
	 */
	if (!cs_ts_before(&sb.st_ctim, &g->start)) {
		g->st.kept_new++;
		return 0;
	}
	if (unlinkat(sub_fd, name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	g->st.removed++;
	g->st.freed_bytes += (uint64_t)sb.st_size;
	return 0;
}

int chunks_gc_begin(struct chunks *cs, bool wait, struct chunks_gc **out)
{
	struct chunks_gc *g;
	struct stat sb;
	int ret;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->cs = cs;
	g->fd = cs_open_lockfile(cs->dir_fd, CS_GC_LOCK);
	if (g->fd < 0) {
		ret = g->fd;
		goto out;
	}
	ret = cs_flock(g->fd, LOCK_EX | (wait ? 0 : LOCK_NB));
	if (ret == -EWOULDBLOCK)
		ret = -EBUSY;
	if (ret < 0)
		goto out;
	/*
	 * The start time comes from the file system's own clock, the one
	 * that stamps the chunk files, so the comparison needs no agreement
	 * between clocks.
	 */
	if (futimens(g->fd, NULL) < 0 || fstat(g->fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	g->start = sb.st_ctim;
	*out = g;
	g = NULL;
	ret = 0;
out:
	chunks_gc_end(g);
	return ret;
}

int chunks_gc_sweep(struct chunks_gc *gc, const uint8_t (*live)[CHUNKS_HASH_LEN], size_t nlive,
                    struct chunks_gc_stats *st)
{
	struct cs_sweep g = {.live = live, .nlive = nlive, .start = gc->start};
	int ret;

	if (st)
		memset(st, 0, sizeof(*st));
	if (nlive && !live)
		return -EINVAL;
	/* A live set out of order would make bsearch miss live chunks: refuse it. */
	for (size_t i = 1; i < nlive; i++)
		if (memcmp(live[i - 1], live[i], CHUNKS_HASH_LEN) >= 0)
			return -EINVAL;
	ret = cs_walk(gc->cs->dir_fd, cs_sweep_one_chunk, &g);
	if (st)
		*st = g.st;
	return ret;
}

void chunks_gc_end(struct chunks_gc *gc)
{
	if (!gc)
		return;
	if (gc->fd >= 0)
		close(gc->fd); /* drops the lock */
	free(gc);
}

static int cs_sink_lookup(void *ctx, const uint8_t sha256[32], uint8_t *flags, uint32_t *stored_len)
{
	return chunks_lookup(ctx, sha256, flags, stored_len);
}

static int cs_sink_put(void *ctx, const uint8_t sha256[32], uint8_t flags, const void *stored,
                       uint32_t stored_len)
{
	return chunks_put(ctx, sha256, flags, stored, stored_len);
}

void chunks_sink(struct chunks *cs, struct mc_prepare_opts *o)
{
	o->lookup = cs_sink_lookup;
	o->put = cs_sink_put;
	o->sink_ctx = cs;
}
