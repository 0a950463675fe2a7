/*
 * mc_prepare(): cuts a raw or qcow2 disk image into a prepared store.
 *
 * The calling thread reads the image in order, chunk by chunk, into a ring
 * of slots, feeds the whole-image SHA-256 and hands each chunk that holds
 * data to the worker pool, which checks it for zeros, hashes it and
 * compresses it. The calling thread then retires slots in image order:
 * it appends the stored bytes to the data file and fills the manifest
 * entry. The ring bounds memory to a fixed window of chunks whatever the
 * image size. With a chunk sink, workers first ask the sink whether it
 * holds the chunk (and skip compression when it does), and the retiring
 * thread puts new chunks into the sink instead of the data file.
 * docs/prepare.md describes the store and how input is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "log.h"
#include "fileio.h"
#include "manifest.h"
#include "mlcast.h"
#include "mtime.h"
#include "pool.h"
#include "sha256.h"

#define PP_DEFAULT_LEVEL 3
#define PP_MAX_THREADS 64
#define PP_PROGRESS_MS 100
/* Budget for the chunk buffers in flight (compression contexts come on top). */
#define PP_WINDOW_BYTES (512u * 1024 * 1024)
/* How much of qemu-img's stderr is kept for the error message. */
#define PP_CHILD_MSG 512

static const uint8_t pp_qcow2_magic[4] = {'Q', 'F', 'I', 0xfb};

struct pp_ctx;

/* One chunk in flight. The reader owns it until submitted, then the worker. */
struct pp_slot {
	struct pp_ctx *ctx;
	uint8_t *raw; /* chunk_size bytes */
	uint8_t *out; /* compressed bytes, out_cap */
	uint32_t len; /* raw length of this chunk */
	/* Results, filled by the worker (or by the reader for holes). */
	uint8_t flags;
	uint32_t stored_len;
	uint8_t sha256[SHA256_LEN];
	bool found; /* the sink's lookup found it: flags and stored_len are the sink's */
	int err;
	const char *err_what; /* what failed, for the message; NULL for the chunk itself */
	bool done;            /* under ctx->mu */
};

struct pp_ctx {
	uint32_t chunk_size;
	int level;
	size_t out_cap;
	uint8_t zero_sha_full[SHA256_LEN];
	uint8_t zero_sha_tail[SHA256_LEN];
	uint32_t tail_len;                  /* raw length of the last chunk */
	const struct mc_prepare_opts *sink; /* the options when they carry a sink, else NULL */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Idle compression contexts; at most one per running job is ever made. */
	ZSTD_CCtx **cctx;
	unsigned ncctx_idle;
	unsigned ncctx_cap;

	struct pp_slot *slots;
	unsigned nslots;
};

/* Reads an image by its data extents, remembering the current one. */
struct pp_reader {
	int fd;
	uint64_t size;
	bool seek_ok;        /* SEEK_DATA/SEEK_HOLE usable */
	uint64_t data_start; /* next data extent at or after the last position */
	uint64_t data_end;
};

/* Returns an idle compression context or a new one; NULL when out of memory. */
static ZSTD_CCtx *pp_cctx_get(struct pp_ctx *ctx)
{
	ZSTD_CCtx *c = NULL;

	pthread_mutex_lock(&ctx->mu);
	if (ctx->ncctx_idle > 0)
		c = ctx->cctx[--ctx->ncctx_idle];
	pthread_mutex_unlock(&ctx->mu);
	return c ? c : ZSTD_createCCtx();
}

static void pp_cctx_put(struct pp_ctx *ctx, ZSTD_CCtx *c)
{
	pthread_mutex_lock(&ctx->mu);
	/* At most nslots jobs run at once, so the idle list never overflows. */
	if (ctx->ncctx_idle < ctx->ncctx_cap) {
		ctx->cctx[ctx->ncctx_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&ctx->mu);
	ZSTD_freeCCtx(c);
}

/* Worker job: zero check, chunk hash and compression of one slot. */
static void pp_job(void *arg)
{
	struct pp_slot *s = arg;
	struct pp_ctx *ctx = s->ctx;
	ZSTD_CCtx *cc;
	size_t n;

	s->err = 0;
	s->err_what = NULL;
	s->stored_len = 0;
	s->found = false;
	if (fio_all_zero(s->raw, s->len)) {
		s->flags = MF_ZERO;
		memcpy(s->sha256,
		       s->len == ctx->chunk_size ? ctx->zero_sha_full : ctx->zero_sha_tail,
		       SHA256_LEN);
		goto done;
	}
	sha256_buf(s->raw, s->len, s->sha256);
	if (ctx->sink) {
		int rc =
		    ctx->sink->lookup(ctx->sink->sink_ctx, s->sha256, &s->flags, &s->stored_len);

		if (rc < 0) {
			s->err = rc;
			s->err_what = "chunk store lookup";
			goto done;
		}
		if (rc > 0) {
			/* The store has it: compressing it again would be wasted work. */
			s->found = true;
			goto done;
		}
	}
	cc = pp_cctx_get(ctx);
	if (!cc) {
		/*
		 * Falling back to raw would make the store depend on memory
		 * pressure; fail instead so the same input always gives the
		 * same store.
		 */
		s->err = -ENOMEM;
		goto done;
	}
	n = ZSTD_compressCCtx(cc, s->out, ctx->out_cap, s->raw, s->len, ctx->level);
	pp_cctx_put(ctx, cc);
	if (!ZSTD_isError(n) && n < s->len) {
		s->flags = MF_ZSTD;
		s->stored_len = (uint32_t)n;
	} else {
		s->flags = 0;
		s->stored_len = s->len;
	}
done:
	pthread_mutex_lock(&ctx->mu);
	s->done = true;
	pthread_cond_broadcast(&ctx->cv);
	pthread_mutex_unlock(&ctx->mu);
}

/* Finds the data extent at or after pos. Returns 0 or -errno. */
static int pp_next_extent(struct pp_reader *r, uint64_t pos)
{
	off_t d, h;

	if (r->seek_ok) {
		d = lseek(r->fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO) {
			/* No data from pos to the end: the rest is a hole. */
			r->data_start = r->data_end = r->size;
			return 0;
		}
		if (d >= 0) {
			h = lseek(r->fd, d, SEEK_HOLE);
			if (h < 0 && errno != ENXIO)
				return -errno;
			r->data_start = (uint64_t)d;
			r->data_end = h < 0 || (uint64_t)h > r->size ? r->size : (uint64_t)h;
			if (r->data_end > pos && r->data_end > r->data_start)
				return 0;
			/* The file changed under us; read the rest plainly. */
		} else if (errno != EINVAL && errno != EOPNOTSUPP) {
			return -errno;
		}
		/* Block devices and some file systems know no extents. */
		r->seek_ok = false;
	}
	r->data_start = pos;
	r->data_end = r->size;
	return 0;
}

/*
 * Fills buf with image bytes [off, off+len): data extents are read, holes
 * are zeroed without reading. *hole tells whether the whole range was a
 * hole. Returns 0 or -errno.
 */
static int pp_read_chunk(struct pp_reader *r, uint64_t off, uint32_t len, uint8_t *buf, bool *hole)
{
	uint64_t pos = off;
	uint64_t end = off + len;
	bool any = false;
	int ret;

	while (pos < end) {
		uint64_t stop;

		if (pos >= r->data_end) {
			ret = pp_next_extent(r, pos);
			if (ret < 0)
				return ret;
		}
		if (pos < r->data_start) {
			stop = r->data_start < end ? r->data_start : end;
			memset(buf + (pos - off), 0, stop - pos);
		} else {
			stop = r->data_end < end ? r->data_end : end;
			ret = fio_pread_full(r->fd, buf + (pos - off), stop - pos, pos);
			if (ret < 0)
				return ret;
			any = true;
		}
		pos = stop;
	}
	*hole = !any;
	return 0;
}

/*
 * Looks qemu-img up in PATH before forking, so that the child only has to
 * execv() and a missing tool gives a clear message. Returns 0 or -ENOENT.
 */
static int pp_find_tool(const char *name, char *out, size_t outsz)
{
	const char *path = getenv("PATH");
	const char *p;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;;) {
		const char *colon = strchr(p, ':');
		size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
		int n = dlen ? snprintf(out, outsz, "%.*s/%s", (int)dlen, p, name)
		             : snprintf(out, outsz, "./%s", name);

		if (n > 0 && (size_t)n < outsz && access(out, X_OK) == 0)
			return 0;
		if (!colon)
			break;
		p = colon + 1;
	}
	return -ENOENT;
}

/*
 * Runs argv (argv[0] a full path) with fork/execv, no shell, stdin from
 * /dev/null, stdout and stderr captured; the first line of that output goes
 * to msg. Returns 0 when the child exited 0, -EIO otherwise, or -errno when
 * it could not be started.
 */
static int pp_spawn(char *const argv[], char *msg, size_t msgsz, int *status)
{
	char buf[PP_CHILD_MSG];
	size_t have = 0;
	int pfd[2] = {-1, -1};
	int devnull = -1;
	pid_t pid;
	int ret = -EIO;

	msg[0] = 0;
	*status = -1;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here on. */
		static const char fail[] = "cannot execute qemu-img\n";

		if (dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		if (write(2, fail, sizeof(fail) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	/* Drain everything so the child never blocks on a full pipe. */
	for (;;) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (have < sizeof(buf) - 1) {
			size_t take =
			    (size_t)n < sizeof(buf) - 1 - have ? (size_t)n : sizeof(buf) - 1 - have;
			memcpy(buf + have, tmp, take);
			have += take;
		}
	}
	buf[have] = 0;
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			ret = -errno;
			goto out;
		}
	}
	/* Keep the first line, with control bytes blanked. */
	buf[strcspn(buf, "\n")] = 0;
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			*c = ' ';
	snprintf(msg, msgsz, "%s", buf);
	ret = WIFEXITED(*status) && WEXITSTATUS(*status) == 0 ? 0 : -EIO;
out:
	if (devnull >= 0)
		close(devnull);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret;
}

/*
 * Converts a qcow2 image into a sparse raw temp file inside the store with
 * `qemu-img convert`, opens it and unlinks it at once, so the space goes
 * back to the file system whatever happens next. Returns an open fd or
 * -errno with the reason in err.
 */
static int pp_qcow2_to_raw(const char *image, const char *store, char *err, size_t errsz)
{
	char tool[PATH_MAX];
	char tmp[PATH_MAX];
	char src[PATH_MAX];
	char msg[PP_CHILD_MSG];
	char *argv[] = {tool, "convert", "-f", "qcow2", "-O", "raw", src, tmp, NULL};
	bool made = false;
	int status;
	int fd = -1;
	int ret;
	int n, m;

	if (pp_find_tool("qemu-img", tool, sizeof(tool)) < 0) {
		log_seterr(err, errsz,
		           "%s is qcow2, but qemu-img was not found in PATH (Debian package "
		           "qemu-utils)",
		           image);
		ret = -ENOENT;
		goto out;
	}
	/* execv() wants writable strings; copies keep the caller's const. */
	n = snprintf(src, sizeof(src), "%s", image);
	m = snprintf(tmp, sizeof(tmp), "%s/.qcow2-raw.XXXXXX", store);
	if (n < 0 || (size_t)n >= sizeof(src) || m < 0 || (size_t)m >= sizeof(tmp)) {
		log_seterr(err, errsz, "image or store path too long");
		ret = -ENAMETOOLONG;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create temp file in %s: %s", store, strerror(-ret));
		goto out;
	}
	made = true;
	close(fd);
	fd = -1;
	ret = pp_spawn(argv, msg, sizeof(msg), &status);
	if (ret < 0 && ret != -EIO) {
		log_seterr(err, errsz, "cannot run %s: %s", tool, strerror(-ret));
		goto out;
	}
	if (ret < 0) {
		if (WIFEXITED(status))
			log_seterr(err, errsz, "qemu-img convert of %s failed (exit %d): %s", image,
			           WEXITSTATUS(status), msg[0] ? msg : "no message");
		else
			log_seterr(err, errsz, "qemu-img convert of %s killed by signal %d", image,
			           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		goto out;
	}
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot open converted image %s: %s", tmp, strerror(-ret));
		goto out;
	}
	ret = fd;
out:
	if (made)
		unlink(tmp);
	return ret;
}

/* Size of an open image: st_size for files, the device size for block devices. */
static int pp_image_size(int fd, const struct stat *sb, uint64_t *size)
{
	if (S_ISBLK(sb->st_mode)) {
		uint64_t n;

		if (ioctl(fd, BLKGETSIZE64, &n) < 0)
			return -errno;
		*size = n;
		return 0;
	}
	*size = (uint64_t)sb->st_size;
	return 0;
}

static void pp_ctx_free(struct pp_ctx *ctx)
{
	if (ctx->slots) {
		for (unsigned i = 0; i < ctx->nslots; i++) {
			free(ctx->slots[i].raw);
			free(ctx->slots[i].out);
		}
		free(ctx->slots);
	}
	if (ctx->cctx) {
		for (unsigned i = 0; i < ctx->ncctx_idle; i++)
			ZSTD_freeCCtx(ctx->cctx[i]);
		free(ctx->cctx);
	}
	pthread_cond_destroy(&ctx->cv);
	pthread_mutex_destroy(&ctx->mu);
}

/* Everything one prepare run holds, so that one exit path can release it. */
struct pp_state {
	const char *image;
	const char *store;
	int img_fd;
	int dir_fd;
	int data_fd;
	bool sink; /* chunks go to o->put, no data file */
	bool made_dir;
	bool made_data;
	bool wrote_manifest;
	struct pool *pool;
	struct sha256_ctx *img_sha;
	struct manifest m;
	struct pp_reader rd;
};

/* Opens the image and checks what it is. Returns 0 or -errno with err set. */
static int pp_open_image(struct pp_state *r, struct stat *sb, uint64_t *size, char *err,
                         size_t errsz)
{
	int ret;

	r->img_fd = open(r->image, O_RDONLY | O_CLOEXEC);
	if (r->img_fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			log_seterr(err, errsz, "image %s: no such file", r->image);
		else
			log_seterr(err, errsz, "cannot open image %s: %s", r->image,
			           strerror(-ret));
		return ret;
	}
	if (fstat(r->img_fd, sb) < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot stat image %s: %s", r->image, strerror(-ret));
		return ret;
	}
	if (!S_ISREG(sb->st_mode) && !S_ISBLK(sb->st_mode)) {
		log_seterr(err, errsz, "image %s is not a regular file or block device", r->image);
		return -EINVAL;
	}
	ret = pp_image_size(r->img_fd, sb, size);
	if (ret < 0) {
		log_seterr(err, errsz, "cannot get size of %s: %s", r->image, strerror(-ret));
		return ret;
	}
	if (*size == 0) {
		log_seterr(err, errsz, "image %s is empty", r->image);
		return -EINVAL;
	}
	return 0;
}

/*
 * Creates the store directory if needed, locks it against a concurrent
 * prepare, refuses one that holds a manifest and opens a fresh data file.
 * Returns 0 or -errno with err set.
 */
static int pp_open_store(struct pp_state *r, const struct stat *img_sb, char *err, size_t errsz)
{
	struct stat sb;
	int ret;

	if (mkdir(r->store, 0755) == 0) {
		r->made_dir = true;
	} else if (errno != EEXIST) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create store %s: %s", r->store, strerror(-ret));
		return ret;
	}
	r->dir_fd = open(r->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dir_fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot open store %s: %s", r->store, strerror(-ret));
		return ret;
	}
	if (flock(r->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK)
			log_seterr(err, errsz, "store %s is in use by another prepare", r->store);
		else
			log_seterr(err, errsz, "cannot lock store %s: %s", r->store,
			           strerror(-ret));
		return ret;
	}
	if (fstatat(r->dir_fd, "manifest", &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		log_seterr(err, errsz,
		           "store %s already holds a manifest (a prepared version); use an empty "
		           "directory",
		           r->store);
		return -EEXIST;
	}
	if (errno != ENOENT) {
		ret = -errno;
		log_seterr(err, errsz, "cannot check %s/manifest: %s", r->store, strerror(-ret));
		return ret;
	}
	/* A data file left without a manifest is an unfinished run; replace it. */
	if (fstatat(r->dir_fd, "data", &sb, 0) == 0 && sb.st_dev == img_sb->st_dev &&
	    sb.st_ino == img_sb->st_ino) {
		log_seterr(err, errsz, "image %s is the store's own data file", r->image);
		return -EINVAL;
	}
	if (r->sink) {
		/*
		 * The manifest this run writes describes no data file, so a
		 * leftover one must not sit next to it for a reader to pair
		 * with it.
		 */
		if (unlinkat(r->dir_fd, "data", 0) < 0 && errno != ENOENT) {
			ret = -errno;
			log_seterr(err, errsz, "cannot remove stale %s/data: %s", r->store,
			           strerror(-ret));
			return ret;
		}
		return 0;
	}
	r->data_fd =
	    openat(r->dir_fd, "data", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (r->data_fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create %s/data: %s", r->store, strerror(-ret));
		return ret;
	}
	r->made_data = true;
	return 0;
}

/*
 * The most slots the window budget allows for this chunk size: each slot
 * holds a raw chunk and a compressed one, so memory stays bounded whatever
 * the thread count asked for.
 */
static unsigned pp_max_slots(uint32_t chunk_size)
{
	size_t per_slot = chunk_size + ZSTD_compressBound(chunk_size);
	size_t n = PP_WINDOW_BYTES / per_slot;

	return n < 3 ? 3 : (unsigned)n;
}

static int pp_ctx_init(struct pp_ctx *ctx, uint32_t chunk_size, int level, unsigned threads,
                       uint64_t image_size)
{
	ctx->chunk_size = chunk_size;
	ctx->level = level;
	ctx->out_cap = ZSTD_compressBound(chunk_size);
	ctx->tail_len = (uint32_t)(image_size % chunk_size);
	if (ctx->tail_len == 0)
		ctx->tail_len = chunk_size;
	pthread_mutex_init(&ctx->mu, NULL);
	pthread_cond_init(&ctx->cv, NULL);
	/*
	 * Two chunks per worker keep every worker busy while the reader
	 * fills the next; two more absorb the wait for the oldest chunk. The
	 * caller already limited threads so that this fits the window budget.
	 */
	ctx->nslots = 2 * threads + 2;
	if (ctx->nslots > pp_max_slots(chunk_size))
		ctx->nslots = pp_max_slots(chunk_size);
	ctx->ncctx_cap = ctx->nslots;
	ctx->cctx = calloc(ctx->ncctx_cap, sizeof(*ctx->cctx));
	ctx->slots = calloc(ctx->nslots, sizeof(*ctx->slots));
	if (!ctx->cctx || !ctx->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < ctx->nslots; i++) {
		struct pp_slot *s = &ctx->slots[i];

		s->ctx = ctx;
		s->raw = malloc(chunk_size);
		s->out = malloc(ctx->out_cap);
		if (!s->raw || !s->out)
			return -ENOMEM;
	}
	memset(ctx->slots[0].raw, 0, chunk_size);
	sha256_buf(ctx->slots[0].raw, chunk_size, ctx->zero_sha_full);
	sha256_buf(ctx->slots[0].raw, ctx->tail_len, ctx->zero_sha_tail);
	return 0;
}

/*
 * Checks a stored form the sink's lookup reported against what a manifest
 * may say of a chunk of raw length len, so that a confused store fails the
 * prepare here instead of producing a manifest that does not validate.
 */
static bool pp_sink_form_ok(uint8_t flags, uint32_t stored_len, uint32_t len, uint32_t chunk_size)
{
	if (flags == 0)
		return stored_len == len;
	if (flags == MF_ZSTD)
		return stored_len >= 1 && stored_len <= chunk_size + 1024;
	return false;
}

/*
 * Sends slot s of chunk i to the sink, from the retiring thread. The chunk
 * is looked up again first: an earlier chunk of this run with the same
 * content, or another import, may have put it since the worker looked, and
 * then its stored form is the store's, not ours. Returns 0 or -errno with
 * err set.
 */
static int pp_sink_retire(const struct mc_prepare_opts *o, struct pp_slot *s, uint32_t i,
                          struct mc_prepare_stats *st, char *err, size_t errsz)
{
	int ret;

	if (!s->found) {
		uint8_t flags = 0;
		uint32_t len = 0;

		ret = o->lookup(o->sink_ctx, s->sha256, &flags, &len);
		if (ret == 0) {
			ret = o->put(o->sink_ctx, s->sha256, s->flags,
			             s->flags & MF_ZSTD ? s->out : s->raw, s->stored_len);
			if (ret == 0) {
				st->new_stored_bytes += s->stored_len;
				return 0;
			}
			if (ret != -EEXIST) {
				if (ret == -ENOSPC || ret == -EDQUOT)
					log_seterr(err, errsz,
					           "chunk %u: disk full writing the chunk store",
					           i);
				else
					log_seterr(err, errsz, "chunk %u: chunk store put: %s", i,
					           strerror(-ret));
				return ret;
			}
			/* Another import put another form of it meanwhile: take that. */
			ret = o->lookup(o->sink_ctx, s->sha256, &flags, &len);
			if (ret == 0) {
				log_seterr(
				    err, errsz,
				    "chunk %u: chunk store refused the chunk but does not hold it",
				    i);
				return -EIO;
			}
		}
		if (ret < 0) {
			log_seterr(err, errsz, "chunk %u: chunk store lookup: %s", i,
			           strerror(-ret));
			return ret;
		}
		s->flags = flags;
		s->stored_len = len;
		s->found = true;
	}
	if (!pp_sink_form_ok(s->flags, s->stored_len, s->len, s->ctx->chunk_size)) {
		log_seterr(err, errsz,
		           "chunk %u: chunk store reports a bad form (flags %u, %u bytes)", i,
		           s->flags, s->stored_len);
		return -EIO;
	}
	st->reused_chunks++;
	return 0;
}

/*
 * Waits for chunk i's slot, then appends its stored bytes to the data file
 * (or hands them to the sink) and fills its manifest entry. Returns 0 or
 * -errno with err set.
 */
static int pp_retire(struct pp_state *r, struct pp_ctx *ctx, uint32_t i,
                     struct mc_prepare_stats *st, char *err, size_t errsz)
{
	struct pp_slot *s = &ctx->slots[i % ctx->nslots];
	struct mf_chunk *c = &r->m.chunks[i];
	int ret;

	pthread_mutex_lock(&ctx->mu);
	while (!s->done)
		pthread_cond_wait(&ctx->cv, &ctx->mu);
	pthread_mutex_unlock(&ctx->mu);
	if (s->err < 0) {
		if (s->err_what)
			log_seterr(err, errsz, "chunk %u: %s: %s", i, s->err_what,
			           strerror(-s->err));
		else
			log_seterr(err, errsz, "chunk %u: %s", i, strerror(-s->err));
		return s->err;
	}
	/* A found chunk's flags are the sink's, so they cannot tell a zero chunk here. */
	if (ctx->sink && (s->found || !(s->flags & MF_ZERO))) {
		ret = pp_sink_retire(ctx->sink, s, i, st, err, errsz);
		if (ret < 0)
			return ret;
	}
	c->flags = s->flags;
	c->stored_len = s->stored_len;
	c->offset = r->m.data_size;
	memcpy(c->sha256, s->sha256, SHA256_LEN);
	if (s->flags & MF_ZERO) {
		st->zero_chunks++;
		return 0;
	}
	if (s->flags & MF_ZSTD)
		st->zstd_chunks++;
	if (ctx->sink) {
		/* Offsets run as if a data file held the chunks back to back. */
		r->m.data_size += s->stored_len;
		return 0;
	}
	ret = fio_write_all(r->data_fd, s->flags & MF_ZSTD ? s->out : s->raw, s->stored_len);
	if (ret < 0) {
		if (ret == -ENOSPC || ret == -EDQUOT)
			log_seterr(err, errsz, "disk full writing %s/data", r->store);
		else
			log_seterr(err, errsz, "cannot write %s/data: %s", r->store,
			           strerror(-ret));
		return ret;
	}
	r->m.data_size += s->stored_len;
	st->new_stored_bytes += s->stored_len;
	return 0;
}

/* The read → hash/compress → write pipeline over the whole image. */
static int pp_pipeline(struct pp_state *r, struct pp_ctx *ctx, unsigned threads,
                       const struct mc_prepare_opts *o, struct mc_prepare_stats *st, char *err,
                       size_t errsz)
{
	uint32_t count = r->m.chunk_count;
	uint32_t retired = 0;
	uint64_t last_ms = 0;
	int ret = 0;

	r->pool = pool_new(threads);
	r->img_sha = sha256_new();
	if (!r->pool || !r->img_sha) {
		log_seterr(err, errsz, "out of memory starting workers");
		return -ENOMEM;
	}
	(void)posix_fadvise(r->rd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (o && o->progress)
		o->progress(o->progress_ctx, 0, r->m.image_size);
	for (uint32_t i = 0; i < count || retired < count;) {
		struct pp_slot *s;
		bool hole;

		if (o && o->stop && *o->stop) {
			log_seterr(err, errsz, "interrupted");
			ret = -EINTR;
			goto out;
		}
		/* Retire the oldest chunk when the ring is full or reading is done. */
		if (i == count || i - retired == ctx->nslots) {
			ret = pp_retire(r, ctx, retired, st, err, errsz);
			if (ret < 0)
				goto out;
			retired++;
			if (o && o->progress) {
				uint64_t now = mtime_ms();

				if (retired == count || now - last_ms >= PP_PROGRESS_MS) {
					uint64_t done = (uint64_t)retired * ctx->chunk_size;

					o->progress(o->progress_ctx,
					            done < r->m.image_size ? done : r->m.image_size,
					            r->m.image_size);
					last_ms = now;
				}
			}
			continue;
		}
		s = &ctx->slots[i % ctx->nslots];
		s->len = mf_chunk_raw_len(&r->m, i);
		ret = pp_read_chunk(&r->rd, (uint64_t)i * ctx->chunk_size, s->len, s->raw, &hole);
		if (ret < 0) {
			if (ret == -EIO)
				log_seterr(err, errsz,
				           "cannot read %s at chunk %u: short read (image "
				           "changed?) or I/O error",
				           r->image, i);
			else
				log_seterr(err, errsz, "cannot read %s at chunk %u: %s", r->image,
				           i, strerror(-ret));
			goto out;
		}
		/* The whole-image hash must see the bytes in order, so it is done here. */
		sha256_update(r->img_sha, s->raw, s->len);
		if (hole) {
			s->flags = MF_ZERO;
			s->stored_len = 0;
			s->found = false;
			s->err = 0;
			s->err_what = NULL;
			memcpy(s->sha256,
			       s->len == ctx->chunk_size ? ctx->zero_sha_full : ctx->zero_sha_tail,
			       SHA256_LEN);
			s->done = true;
		} else {
			s->done = false;
			if (pool_submit(r->pool, pp_job, s) < 0)
				pp_job(s); /* no room in the queue: do it here */
		}
		i++;
	}
	sha256_final(r->img_sha, r->m.image_sha256);
out:
	/* Workers may still hold slots; let them finish before anything is freed. */
	pool_free(r->pool);
	r->pool = NULL;
	return ret;
}

int mc_prepare(const char *image, const char *store_dir, const struct mc_prepare_opts *o,
               struct mc_prepare_stats *st, char *err, size_t errsz)
{
	struct pp_state r = {
	    .image = image, .store = store_dir, .img_fd = -1, .dir_fd = -1, .data_fd = -1};
	struct mc_prepare_stats stats = {0};
	struct pp_ctx ctx = {0};
	bool ctx_ready = false;
	uint32_t chunk_size = o && o->chunk_size ? o->chunk_size : MF_DEFAULT_CHUNK;
	int level = o && o->zstd_level ? o->zstd_level : PP_DEFAULT_LEVEL;
	unsigned threads = o ? o->threads : 0;
	char path[PATH_MAX];
	uint8_t magic[4];
	uint64_t size = 0;
	uint64_t nchunks;
	struct stat sb;
	int ret = -EINVAL;

	if (err && errsz)
		err[0] = 0;
	if (chunk_size < MF_MIN_CHUNK || chunk_size > MF_MAX_CHUNK ||
	    (chunk_size & (chunk_size - 1))) {
		log_seterr(err, errsz,
		           "bad chunk size %u: must be a power of two from 64 KiB to 16 MiB",
		           chunk_size);
		goto out;
	}
	if (level < 1 || level > ZSTD_maxCLevel()) {
		log_seterr(err, errsz, "bad zstd level %d: must be 1 to %d", level,
		           ZSTD_maxCLevel());
		goto out;
	}
	if (o && !o->lookup != !o->put) {
		log_seterr(err, errsz, "a chunk sink needs both lookup and put");
		goto out;
	}
	r.sink = o && o->put;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (threads > PP_MAX_THREADS)
		threads = PP_MAX_THREADS;
	/* More workers than the window can feed would only wait. */
	if (threads > pp_max_slots(chunk_size) - 2)
		threads = pp_max_slots(chunk_size) - 2;

	ret = pp_open_image(&r, &sb, &size, err, errsz);
	if (ret < 0)
		goto out;
	ret = fio_pread_full(r.img_fd, magic, sizeof(magic), 0);
	if (ret == -EIO)
		memset(magic, 0, sizeof(magic)); /* shorter than a magic: raw */
	else if (ret < 0) {
		log_seterr(err, errsz, "cannot read image %s: %s", image, strerror(-ret));
		goto out;
	}
	ret = pp_open_store(&r, &sb, err, errsz);
	if (ret < 0)
		goto out;
	if (!memcmp(magic, pp_qcow2_magic, sizeof(magic))) {
		int fd = pp_qcow2_to_raw(image, store_dir, err, errsz);

		if (fd < 0) {
			ret = fd;
			goto out;
		}
		close(r.img_fd);
		r.img_fd = fd;
		if (fstat(fd, &sb) < 0) {
			ret = -errno;
			log_seterr(err, errsz, "cannot stat converted image: %s", strerror(-ret));
			goto out;
		}
		size = (uint64_t)sb.st_size;
		if (size == 0) {
			log_seterr(err, errsz, "image %s is empty (qcow2 of virtual size 0)",
			           image);
			ret = -EINVAL;
			goto out;
		}
	}

	nchunks = size / chunk_size + (size % chunk_size != 0);
	if (nchunks > MF_MAX_CHUNKS) {
		log_seterr(err, errsz,
		           "image %s too large for chunk size %u (%llu chunks, at most %u)", image,
		           chunk_size, (unsigned long long)nchunks, MF_MAX_CHUNKS);
		ret = -EFBIG;
		goto out;
	}
	r.m.chunk_size = chunk_size;
	r.m.image_size = size;
	r.m.chunk_count = (uint32_t)nchunks;
	r.m.chunks = calloc(nchunks, sizeof(*r.m.chunks));
	r.rd = (struct pp_reader){.fd = r.img_fd, .size = size, .seek_ok = true};
	ctx_ready = true;
	ret = pp_ctx_init(&ctx, chunk_size, level, threads, size);
	if (ret < 0 || !r.m.chunks) {
		log_seterr(err, errsz, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	ctx.sink = r.sink ? o : NULL;
	stats.image_size = size;
	stats.chunk_count = r.m.chunk_count;
	ret = pp_pipeline(&r, &ctx, threads, o, &stats, err, errsz);
	if (ret < 0)
		goto out;

	/*
	 * The data must be durable before the manifest that vouches for it.
	 * A sink's chunks are its owner's to make durable (mlserver syncs its
	 * chunk store before it commits the version).
	 */
	ret = 0;
	if (r.data_fd >= 0) {
		ret = fsync(r.data_fd) < 0 ? -errno : 0;
		if (close(r.data_fd) < 0 && ret == 0)
			ret = -errno;
		r.data_fd = -1;
	}
	if (ret < 0) {
		if (ret == -ENOSPC || ret == -EDQUOT)
			log_seterr(err, errsz, "disk full writing %s/data", store_dir);
		else
			log_seterr(err, errsz, "cannot write %s/data: %s", store_dir,
			           strerror(-ret));
		goto out;
	}
	ret = snprintf(path, sizeof(path), "%s/manifest", store_dir);
	if (ret < 0 || (size_t)ret >= sizeof(path)) {
		log_seterr(err, errsz, "store path too long");
		ret = -ENAMETOOLONG;
		goto out;
	}
	r.wrote_manifest = true;
	ret = mf_save(path, &r.m);
	if (ret < 0) {
		if (ret == -ENOSPC || ret == -EDQUOT)
			log_seterr(err, errsz, "disk full writing %s", path);
		else
			log_seterr(err, errsz, "cannot write %s: %s", path, strerror(-ret));
		goto out;
	}
	stats.stored_bytes = r.m.data_size;
	memcpy(stats.image_sha256, r.m.image_sha256, SHA256_LEN);
	if (st)
		*st = stats;
	ret = 0;
out:
	pool_free(r.pool);
	sha256_free(r.img_sha);
	if (r.data_fd >= 0)
		close(r.data_fd);
	if (ret < 0 && r.dir_fd >= 0) {
		/* Nothing of a failed run stays behind; the lock still keeps others out. */
		if (r.wrote_manifest)
			unlinkat(r.dir_fd, "manifest", 0);
		if (r.made_data)
			unlinkat(r.dir_fd, "data", 0);
	}
	if (r.dir_fd >= 0)
		close(r.dir_fd);
	if (ret < 0 && r.made_dir)
		rmdir(store_dir);
	if (r.img_fd >= 0)
		close(r.img_fd);
	if (ctx_ready)
		pp_ctx_free(&ctx);
	mf_free(&r.m);
	return ret;
}
