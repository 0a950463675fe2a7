/*
 * The image library (library.h, docs/library.md): directories, crash
 * recovery, the import queue and its workers, uploads, garbage collection
 * and verification, on top of the chunk store (chunks.h) and libmlcast's
 * prepare.
 */
#include "library.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "audit.h"
#include "chunks.h"
#include "cursor.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "mlcast.h"
#include "parse.h"
#include "pool.h"
#include "server.h"
#include "sha256.h"
#include "store.h"

/* Uploads leave every aligned block of zeros this long as a hole. */
#define LIB_SPARSE_BLOCK 4096u
#define LIB_MAX_ROOTS 32
#define LIB_REASON_MAX 512

enum lib_phase { LIB_UPLOADING, LIB_QUEUED, LIB_IMPORTING };

static const char *const lib_phase_names[] = {"uploading", "queued", "importing"};

/*
 * One version the library works on: an upload being received, or an
 * import queued or running. It is on the library's list (for progress and
 * for the stop) from its creation to its end.
 */
struct lib_job {
	struct library *lib;
	int64_t id;
	int fd; /* the image (import), or the .part file (upload); -1 when none */
	char source[256];
	enum lib_phase phase; /* under lib->mu */
	uint64_t done, total; /* under lib->mu */
	volatile int stop;    /* mc_prepare's stop flag */
	struct lib_job *next;
};

struct library_upload {
	struct library *lib;
	struct lib_job *job;
	char path[PATH_MAX];
	uint64_t bytes;
	uint64_t max;
};

struct library {
	struct srv *srv;
	char data_dir[PATH_MAX]; /* resolved */
	char chunks_dir[PATH_MAX];
	char versions_dir[PATH_MAX];
	char uploads_dir[PATH_MAX];
	int lock_fd;
	struct chunks *cs;
	struct pool *pool;
	char *roots[LIB_MAX_ROOTS]; /* resolved import roots */
	size_t nroots;
	pthread_mutex_t mu;
	struct lib_job *jobs; /* under mu */
	bool stopping;        /* under mu */
};

static void lib_fmt(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lib_fmt(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	if (!out || !outsz)
		return;
	va_start(ap, fmt);
	vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
}

/* dir + "/" + name into out; -ENAMETOOLONG when it does not fit. */
static int lib_join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

const char *library_chunks_dir(const struct library *lib)
{
	return lib->chunks_dir;
}

int library_version_dir(const struct library *lib, int64_t id, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/%lld", lib->versions_dir, (long long)id);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

/* Is path the directory dir or inside it? Both resolved, without a trailing slash. */
static bool lib_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool lib_under_roots(const struct library *lib, const char *path)
{
	for (size_t i = 0; i < lib->nroots; i++)
		if (lib_path_under(path, lib->roots[i]))
			return true;
	return false;
}

/*
 * Removes a version directory and the files in it (a manifest, a
 * manifest's temp file, a qcow2 conversion's temp file). A directory that
 * is not there is fine. Returns 0 or -errno.
 */
static int lib_rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT && ret == 0)
			ret = -errno;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && ret == 0)
		ret = -errno;
	return ret;
}

int library_remove_version(struct library *lib, int64_t id)
{
	char dir[PATH_MAX];
	int ret = library_version_dir(lib, id, dir, sizeof(dir));
	if (ret == 0)
		ret = lib_rm_dir(dir);
	if (ret < 0)
		log_error("library: cannot remove %s: %s", dir, strerror(-ret));
	return ret;
}

/* ---- the list of jobs -------------------------------------------------- */

static struct lib_job *lib_job_new(struct library *lib, int64_t id, enum lib_phase phase,
                                   const char *source)
{
	struct lib_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->lib = lib;
	j->id = id;
	j->fd = -1;
	j->phase = phase;
	snprintf(j->source, sizeof(j->source), "%s", source);
	return j;
}

/* Puts j on the list; -ESHUTDOWN when the library stops. */
static int lib_track(struct library *lib, struct lib_job *j)
{
	int ret = 0;
	pthread_mutex_lock(&lib->mu);
	if (lib->stopping) {
		ret = -ESHUTDOWN;
	} else {
		j->next = lib->jobs;
		lib->jobs = j;
	}
	pthread_mutex_unlock(&lib->mu);
	return ret;
}

static void lib_untrack(struct library *lib, struct lib_job *j)
{
	pthread_mutex_lock(&lib->mu);
	for (struct lib_job **p = &lib->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	pthread_mutex_unlock(&lib->mu);
}

static void lib_job_free(struct lib_job *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

int library_progress(struct library *lib, int64_t id, double *frac, const char **phase)
{
	int found = 0;
	pthread_mutex_lock(&lib->mu);
	for (struct lib_job *j = lib->jobs; j; j = j->next) {
		if (j->id != id)
			continue;
		*frac = j->total ? (double)j->done / (double)j->total : 0.0;
		if (*frac > 1.0)
			*frac = 1.0;
		*phase = lib_phase_names[j->phase];
		found = 1;
		break;
	}
	pthread_mutex_unlock(&lib->mu);
	return found;
}

/* ---- rows -------------------------------------------------------------- */

int library_fail(struct library *lib, int64_t id, const char *reason)
{
	struct store *s = lib->srv->store;
	int rc = store_begin(s);
	if (rc == 0) {
		rc = store_exec(
		    s,
		    "UPDATE image_versions SET state = 'failed', error = ?, finished_at = ?"
		    " WHERE id = ? AND state = 'importing'",
		    "tii", reason, store_now(), id);
		if (rc == 1)
			rc = audit_system(s, "import", "version", id, "failed: %s", reason);
		if (rc < 0)
			store_rollback(s);
		else
			rc = store_commit(s);
	}
	if (rc < 0)
		log_error("library: cannot mark version %lld failed", (long long)id);
	log_warn("library: import of version %lld failed: %s", (long long)id, reason);
	/* Rows first, files second: a crash in between leaves a directory recovery removes. */
	library_remove_version(lib, id);
	return rc < 0 ? rc : 0;
}

static int lib_mark_ready(struct library *lib, int64_t id, const struct mc_prepare_stats *st,
                          uint32_t chunk_size)
{
	struct store *s = lib->srv->store;
	char hex[SHA256_HEX_LEN];
	int rc;
	sha256_hex(st->image_sha256, hex);
	if ((rc = store_begin(s)) < 0)
		return rc;
	rc = store_exec(
	    s,
	    "UPDATE image_versions SET state = 'ready', error = NULL, size = ?,"
	    " stored_size = ?, new_bytes = ?, chunk_size = ?, chunk_count = ?, sha256 = ?,"
	    " finished_at = ? WHERE id = ? AND state = 'importing'",
	    "iiiiitii", (int64_t)st->image_size, (int64_t)st->stored_bytes,
	    (int64_t)st->new_stored_bytes, (int64_t)chunk_size, (int64_t)st->chunk_count, hex,
	    store_now(), id);
	if (rc == 0)
		rc = -ESTALE; /* the row is no longer importing: nothing vouches for the files */
	if (rc > 0)
		rc = audit_system(s, "import", "version", id,
		                  "ready: %llu bytes, %u chunks, %llu stored, %llu new, sha256 %s",
		                  (unsigned long long)st->image_size, st->chunk_count,
		                  (unsigned long long)st->stored_bytes,
		                  (unsigned long long)st->new_stored_bytes, hex);
	if (rc < 0) {
		store_rollback(s);
		return rc;
	}
	return store_commit(s);
}

/* ---- imports ----------------------------------------------------------- */

int library_qcow2_check(const uint8_t *hdr, size_t len, const char **why)
{
	static const uint8_t magic[4] = {'Q', 'F', 'I', 0xfb};
	struct cur c;
	if (len < sizeof(magic) || memcmp(hdr, magic, sizeof(magic)) != 0)
		return 0;
	cur_init(&c, hdr, len);
	cur_skip(&c, 4);
	uint32_t version = cur_u32(&c);
	uint64_t backing_off = cur_u64(&c);
	uint32_t backing_len = cur_u32(&c);
	if (c.err) {
		*why = "the image is a qcow2 file cut short inside its header";
		return -EINVAL;
	}
	if (backing_off != 0 || backing_len != 0) {
		*why = "the image is a qcow2 file with a backing file, which would be read too; "
		       "flatten it first (qemu-img convert -O qcow2 without -B, or to raw)";
		return -EINVAL;
	}
	if (version >= 3) {
		/* Incompatible feature bit 2: the clusters live in an external data file. */
		cur_skip(&c, 72 - 20);
		uint64_t incompat = cur_u64(&c);
		if (c.err) {
			*why = "the image is a qcow2 file cut short inside its header";
			return -EINVAL;
		}
		if (incompat & (1ull << 2)) {
			*why = "the image is a qcow2 file whose data lives in an external data "
			       "file; convert it to a self-contained image first";
			return -EINVAL;
		}
	}
	return 0;
}

/* Replaces each occurrence of from in s (cap bytes) with to, as far as it fits. */
static void lib_subst(char *s, size_t cap, const char *from, const char *to)
{
	char out[LIB_REASON_MAX];
	size_t flen = strlen(from), w = 0;
	if (!flen)
		return;
	for (const char *p = s; *p && w + 1 < sizeof(out);) {
		if (strncmp(p, from, flen) == 0) {
			int n = snprintf(out + w, sizeof(out) - w, "%s", to);
			w = n < 0                          ? w
			    : w + (size_t)n >= sizeof(out) ? sizeof(out) - 1
			                                   : w + (size_t)n;
			p += flen;
		} else {
			out[w++] = *p++;
		}
	}
	out[w] = '\0';
	snprintf(s, cap, "%s", out);
}

static void lib_on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct lib_job *j = ctx;
	pthread_mutex_lock(&j->lib->mu);
	j->done = done;
	j->total = total;
	pthread_mutex_unlock(&j->lib->mu);
}

/*
 * One import, in a worker: hold → prepare into versions/<id> with the
 * chunk store as sink → sync → row 'ready' → release. On failure the row
 * is marked failed with the reason (why) and the directory removed. Returns
 * 0 or a negative code.
 */
static int lib_import_run(struct lib_job *j, char *why, size_t whysz)
{
	struct library *lib = j->lib;
	const struct srvconf *conf = &lib->srv->conf;
	struct mc_prepare_opts o = {0};
	struct mc_prepare_stats st = {0};
	struct chunks_hold *hold = NULL;
	uint8_t hdr[LIBRARY_QCOW2_HDR];
	char vdir[PATH_MAX], src[64], err[LIB_REASON_MAX] = "";
	const char *bad = NULL;
	int ret;

	ssize_t n = fio_pread_upto(j->fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		ret = (int)n;
		lib_fmt(why, whysz, "cannot read %s: %s", j->source, strerror(-ret));
		goto out;
	}
	if ((ret = library_qcow2_check(hdr, (size_t)n, &bad)) < 0) {
		lib_fmt(why, whysz, "%s", bad);
		goto out;
	}
	/*
	 * prepare (and qemu-img, in a child) open the image by a name that is
	 * its open descriptor: the file checked is the file imported, whatever
	 * happens to its path meanwhile, and an upload needs no name at all.
	 */
	snprintf(src, sizeof(src), "/proc/%d/fd/%d", (int)getpid(), j->fd);
	if ((ret = library_version_dir(lib, j->id, vdir, sizeof(vdir))) < 0) {
		lib_fmt(why, whysz, "the data directory's path is too long");
		goto out;
	}
	if ((ret = chunks_hold(lib->cs, &hold)) < 0) {
		lib_fmt(why, whysz, "cannot hold the chunk store: %s", strerror(-ret));
		goto out;
	}
	chunks_sink(lib->cs, &o);
	o.chunk_size = (uint32_t)conf->chunk_size;
	o.zstd_level = (int)conf->zstd_level;
	o.threads = (unsigned)conf->import_threads;
	o.progress = lib_on_progress;
	o.progress_ctx = j;
	o.stop = &j->stop;
	ret = mc_prepare(src, vdir, &o, &st, err, sizeof(err));
	if (ret < 0) {
		if (j->stop) {
			lib_fmt(why, whysz, "%s", LIBRARY_INTERRUPTED);
		} else {
			lib_subst(err, sizeof(err), src, j->source);
			lib_fmt(why, whysz, "%s", err[0] ? err : strerror(-ret));
		}
		goto out;
	}
	/* Every chunk name the manifest relies on is durable before the row says ready. */
	if ((ret = chunks_sync(lib->cs)) < 0) {
		lib_fmt(why, whysz, "cannot make the chunk store durable: %s", strerror(-ret));
		goto out;
	}
	if ((ret = lib_mark_ready(lib, j->id, &st, o.chunk_size)) < 0) {
		lib_fmt(why, whysz, "cannot record the version in the store (%s)", strerror(-ret));
		goto out;
	}
	log_info("library: version %lld ready: %llu bytes, %u chunks (%u reused), %llu bytes "
	         "stored, %llu new",
	         (long long)j->id, (unsigned long long)st.image_size, st.chunk_count,
	         st.reused_chunks, (unsigned long long)st.stored_bytes,
	         (unsigned long long)st.new_stored_bytes);
out:
	/*
	 * On failure the row is marked failed and the directory removed before
	 * the hold ends, so that a GC never finds the manifest of an importing
	 * row without its hold.
	 */
	if (ret < 0)
		library_fail(lib, j->id, why);
	chunks_release(hold);
	return ret;
}

static void lib_job_run(void *arg)
{
	struct lib_job *j = arg;
	struct library *lib = j->lib;
	char why[LIB_REASON_MAX] = "";
	bool stopping;

	pthread_mutex_lock(&lib->mu);
	stopping = lib->stopping;
	if (!stopping)
		j->phase = LIB_IMPORTING;
	pthread_mutex_unlock(&lib->mu);
	if (stopping) {
		library_fail(lib, j->id, LIBRARY_INTERRUPTED);
	} else {
		log_info("library: importing %s into version %lld", j->source, (long long)j->id);
		lib_import_run(j, why, sizeof(why));
	}
	lib_untrack(lib, j);
	lib_job_free(j);
}

/* Queues a tracked job; on failure the row is failed and the job freed. */
static int lib_submit(struct library *lib, struct lib_job *j)
{
	int ret;
	pthread_mutex_lock(&lib->mu);
	ret = lib->stopping ? -ESHUTDOWN : 0;
	if (ret == 0) {
		j->phase = LIB_QUEUED;
		ret = pool_submit(lib->pool, lib_job_run, j);
	}
	pthread_mutex_unlock(&lib->mu);
	if (ret < 0) {
		lib_untrack(lib, j);
		library_fail(lib, j->id,
		             ret == -ESHUTDOWN ? LIBRARY_INTERRUPTED : "cannot queue the import");
		lib_job_free(j);
	}
	return ret;
}

int library_import(struct library *lib, int64_t id, int fd, const char *source)
{
	struct lib_job *j = lib_job_new(lib, id, LIB_QUEUED, source);
	int ret;
	if (!j) {
		close(fd);
		library_fail(lib, id, "out of memory");
		return -ENOMEM;
	}
	j->fd = fd;
	if ((ret = lib_track(lib, j)) < 0) {
		library_fail(lib, id, LIBRARY_INTERRUPTED);
		lib_job_free(j);
		return ret;
	}
	return lib_submit(lib, j);
}

int library_check_path(struct library *lib, const char *path, int *fd, char *resolved, size_t rsz,
                       char *why, size_t whysz)
{
	char real[PATH_MAX], viafd[PATH_MAX], link[64];
	uint8_t hdr[LIBRARY_QCOW2_HDR];
	struct stat sb, fsb;
	const char *bad = NULL;
	int f = -1, ret;

	*fd = -1;
	if (path[0] != '/') {
		lib_fmt(why, whysz, "path must be absolute (start with /)");
		return -EINVAL;
	}
	if (!realpath(path, real)) {
		ret = -errno;
		if (ret == -ENOENT || ret == -ENOTDIR)
			lib_fmt(why, whysz, "no such file: %s", path);
		else if (ret == -EACCES)
			lib_fmt(why, whysz, "mlserver may not look up %s (permission denied)",
			        path);
		else
			lib_fmt(why, whysz, "cannot resolve %s: %s", path, strerror(-ret));
		return ret;
	}
	if (!lib_under_roots(lib, real)) {
		lib_fmt(why, whysz,
		        "%s is outside the directories imports may read from ([library] "
		        "import_roots = %s)",
		        real, lib->srv->conf.import_roots);
		return -EPERM;
	}
	if (lib_path_under(real, lib->data_dir)) {
		lib_fmt(why, whysz, "%s is inside the server's own data directory", real);
		return -EPERM;
	}
	if (stat(real, &sb) < 0) {
		ret = -errno;
		lib_fmt(why, whysz, "cannot stat %s: %s", real, strerror(-ret));
		return ret;
	}
	if (S_ISDIR(sb.st_mode)) {
		lib_fmt(why, whysz, "%s is a directory, not a disk image", real);
		return -EINVAL;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		lib_fmt(why, whysz, "%s is not a regular file or a block device", real);
		return -EINVAL;
	}
	if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
		lib_fmt(why, whysz, "%s is empty", real);
		return -EINVAL;
	}
	/* O_NONBLOCK: should the name become a FIFO meanwhile, open must not hang. */
	f = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (f < 0) {
		ret = -errno;
		if (ret == -EACCES || ret == -EPERM)
			lib_fmt(why, whysz, "mlserver may not read %s (permission denied)", real);
		else
			lib_fmt(why, whysz, "cannot open %s: %s", real, strerror(-ret));
		return ret;
	}
	/* What was opened must be what was checked, and still under a root. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", f);
	ssize_t n = readlink(link, viafd, sizeof(viafd) - 1);
	if (fstat(f, &fsb) < 0 || fsb.st_dev != sb.st_dev || fsb.st_ino != sb.st_ino || n <= 0) {
		lib_fmt(why, whysz, "%s changed while it was checked; try again", real);
		ret = -EAGAIN;
		goto out;
	}
	viafd[n] = '\0';
	if (!lib_under_roots(lib, viafd) || lib_path_under(viafd, lib->data_dir)) {
		lib_fmt(why, whysz, "%s is outside the directories imports may read from", viafd);
		ret = -EPERM;
		goto out;
	}
	if (fcntl(f, F_SETFL, 0) < 0) {
		ret = -errno;
		lib_fmt(why, whysz, "cannot use %s: %s", real, strerror(-ret));
		goto out;
	}
	n = fio_pread_upto(f, hdr, sizeof(hdr), 0);
	if (n < 0) {
		ret = (int)n;
		lib_fmt(why, whysz, "cannot read %s: %s", real, strerror(-ret));
		goto out;
	}
	if (n == 0) {
		lib_fmt(why, whysz, "%s is empty", real);
		ret = -EINVAL;
		goto out;
	}
	if ((ret = library_qcow2_check(hdr, (size_t)n, &bad)) < 0) {
		lib_fmt(why, whysz, "%s: %s", real, bad);
		goto out;
	}
	snprintf(resolved, rsz, "%s", real);
	*fd = f;
	f = -1;
	ret = 0;
out:
	if (f >= 0)
		close(f);
	return ret;
}

/* ---- uploads ----------------------------------------------------------- */

static uint64_t lib_free_bytes(const char *dir)
{
	struct statvfs vfs;
	if (statvfs(dir, &vfs) < 0)
		return UINT64_MAX; /* unknown: let the writes tell */
	return (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
}

int library_upload_check(struct library *lib, int64_t declared)
{
	if (declared > 0 && (uint64_t)declared > lib->srv->conf.upload_max)
		return -EFBIG;
	if (declared > 0 && (uint64_t)declared > lib_free_bytes(lib->uploads_dir))
		return -ENOSPC;
	return 0;
}

int library_upload_begin(struct library *lib, int64_t id, int64_t declared,
                         struct library_upload **out)
{
	struct library_upload *u = NULL;
	char name[32];
	int ret;

	*out = NULL;
	if ((ret = library_upload_check(lib, declared)) < 0)
		return ret;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->lib = lib;
	u->max = lib->srv->conf.upload_max;
	snprintf(name, sizeof(name), "%lld.part", (long long)id);
	if ((ret = lib_join(u->path, sizeof(u->path), lib->uploads_dir, name)) < 0)
		goto fail;
	u->job = lib_job_new(lib, id, LIB_UPLOADING, "the upload");
	if (!u->job) {
		ret = -ENOMEM;
		goto fail;
	}
	u->job->total = declared > 0 ? (uint64_t)declared : 0;
	/* Read and write: the import reads the file through this descriptor. */
	u->job->fd = open(u->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (u->job->fd < 0) {
		ret = -errno;
		log_error("library: cannot create %s: %s", u->path, strerror(-ret));
		goto fail;
	}
	if ((ret = lib_track(lib, u->job)) < 0) {
		unlink(u->path);
		goto fail;
	}
	*out = u;
	return 0;
fail:
	if (u)
		lib_job_free(u->job);
	free(u);
	return ret;
}

/*
 * Writes n bytes at off, leaving blocks of zeros (aligned in the file) as
 * holes: the file was never written there, so they read back as zeros.
 */
static int lib_write_sparse(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	size_t pos = 0;
	while (pos < n) {
		size_t blk = LIB_SPARSE_BLOCK - (size_t)((off + pos) % LIB_SPARSE_BLOCK);
		if (blk > n - pos)
			blk = n - pos;
		if (fio_all_zero(p + pos, blk)) {
			pos += blk;
			continue;
		}
		size_t start = pos;
		while (pos < n) {
			blk = LIB_SPARSE_BLOCK - (size_t)((off + pos) % LIB_SPARSE_BLOCK);
			if (blk > n - pos)
				blk = n - pos;
			if (fio_all_zero(p + pos, blk))
				break;
			pos += blk;
		}
		int ret = fio_pwrite_all(fd, p + start, pos - start, off + start);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int library_upload_write(struct library_upload *u, const void *buf, size_t n)
{
	if (n > u->max - u->bytes)
		return -EFBIG;
	int ret = lib_write_sparse(u->job->fd, buf, n, u->bytes);
	if (ret == -EDQUOT)
		ret = -ENOSPC;
	if (ret < 0)
		return ret;
	u->bytes += n;
	pthread_mutex_lock(&u->lib->mu);
	u->job->done = u->bytes;
	pthread_mutex_unlock(&u->lib->mu);
	return 0;
}

uint64_t library_upload_bytes(const struct library_upload *u)
{
	return u->bytes;
}

void library_upload_abort(struct library_upload *u, const char *reason)
{
	if (!u)
		return;
	unlink(u->path);
	lib_untrack(u->lib, u->job);
	library_fail(u->lib, u->job->id, reason);
	lib_job_free(u->job);
	free(u);
}

int library_upload_commit(struct library_upload *u)
{
	struct library *lib = u->lib;
	struct lib_job *j = u->job;
	int ret;

	if (u->bytes == 0) {
		library_upload_abort(u, "the upload was empty");
		return -ENODATA;
	}
	/* Trailing zeros were never written: the size makes them read back. */
	if (ftruncate(j->fd, (off_t)u->bytes) < 0) {
		ret = -errno;
		library_upload_abort(u, ret == -ENOSPC ? "the server's disk is full"
		                                       : "cannot finish the upload's file");
		return ret;
	}
	/*
	 * The import reads through the descriptor, so the name can go now: a
	 * crash from here on leaves no upload file behind.
	 */
	unlink(u->path);
	snprintf(j->source, sizeof(j->source), "the upload");
	pthread_mutex_lock(&lib->mu);
	j->done = 0;
	j->total = u->bytes;
	pthread_mutex_unlock(&lib->mu);
	free(u);
	return lib_submit(lib, j);
}

/* ---- status, GC, verify ------------------------------------------------ */

int library_usage(struct library *lib, struct library_usage *u)
{
	memset(u, 0, sizeof(*u));
	int ret = chunks_usage(lib->cs, &u->chunks, &u->stored_bytes);
	u->free_bytes = lib_free_bytes(lib->data_dir);
	pthread_mutex_lock(&lib->mu);
	for (struct lib_job *j = lib->jobs; j; j = j->next) {
		if (j->phase == LIB_UPLOADING)
			u->uploads_running++;
		else if (j->phase == LIB_QUEUED)
			u->imports_queued++;
		else
			u->imports_running++;
	}
	pthread_mutex_unlock(&lib->mu);
	return ret;
}

/*
 * The manifests of every ready version, and of importing ones that have
 * one, read under the store's lock: a delete commits its row before it
 * removes the directory, so no row read here loses its manifest meanwhile.
 */
static int lib_live_set(struct library *lib, uint8_t (**live)[CHUNKS_HASH_LEN], size_t *nlive,
                        char *err, size_t errsz)
{
	struct store *s = lib->srv->store;
	char **paths = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	store_lock(s);
	struct store_q *q = store_query(
	    s, "SELECT id, state FROM image_versions WHERE state IN ('ready', 'importing')", NULL);
	if (!q) {
		lib_fmt(err, errsz, "cannot read the versions");
		ret = -EIO;
		goto out;
	}
	while ((ret = store_next(q)) == 1) {
		char dir[PATH_MAX], path[PATH_MAX];
		struct stat sb;
		int64_t id = store_col_int(q, 0);
		bool ready = strcmp(store_col_text(q, 1), "ready") == 0;
		if (library_version_dir(lib, id, dir, sizeof(dir)) < 0 ||
		    lib_join(path, sizeof(path), dir, "manifest") < 0) {
			lib_fmt(err, errsz, "path too long");
			ret = -ENAMETOOLONG;
			break;
		}
		/* An importing row without a manifest has no chunks to protect yet. */
		if (!ready && stat(path, &sb) < 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **np = realloc(paths, ncap * sizeof(*np));
			if (!np) {
				ret = -ENOMEM;
				break;
			}
			paths = np;
			cap = ncap;
		}
		if (!(paths[n] = strdup(path))) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	store_done(q);
	if (ret == -ENOMEM)
		lib_fmt(err, errsz, "out of memory");
	else if (ret < 0 && !err[0])
		lib_fmt(err, errsz, "cannot read the versions");
	if (ret == 0)
		ret = chunks_live_collect((const char *const *)paths, n, live, nlive, err, errsz);
out:
	store_unlock(s);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return ret;
}

int library_gc(struct library *lib, struct chunks_gc_stats *st, char *err, size_t errsz)
{
	struct chunks_gc *gc = NULL;
	uint8_t(*live)[CHUNKS_HASH_LEN] = NULL;
	size_t nlive = 0;
	int ret;

	memset(st, 0, sizeof(*st));
	if (err && errsz)
		err[0] = '\0';
	ret = chunks_gc_begin(lib->cs, false, &gc);
	if (ret == -EBUSY) {
		lib_fmt(err, errsz,
		        "an import or a verification is running; try again when it ends");
		return ret;
	}
	if (ret < 0) {
		lib_fmt(err, errsz, "cannot lock the chunk store: %s", strerror(-ret));
		return ret;
	}
	ret = lib_live_set(lib, &live, &nlive, err, errsz);
	if (ret == 0) {
		ret = chunks_gc_sweep(gc, (const uint8_t(*)[CHUNKS_HASH_LEN])live, nlive, st);
		if (ret < 0)
			lib_fmt(err, errsz, "sweeping the chunk store: %s", strerror(-ret));
	}
	chunks_gc_end(gc);
	free(live);
	if (ret < 0)
		log_error("library: GC failed: %s", err);
	else
		log_info("library: GC removed %llu chunks (%llu bytes), kept %llu (%llu live "
		         "chunks)",
		         (unsigned long long)st->removed, (unsigned long long)st->freed_bytes,
		         (unsigned long long)(st->kept + st->kept_new), (unsigned long long)nlive);
	return ret;
}

void library_verify_free(struct library_verify *v)
{
	if (!v)
		return;
	free(v->bad);
	v->bad = NULL;
	v->nbad = 0;
}

static int lib_verify_bad(struct library_verify *v, uint32_t i)
{
	/* The array holds 16, then doubles whenever it is full (at 16, 32, 64 ...). */
	if (v->nbad == 0 || (v->nbad >= 16 && (v->nbad & (v->nbad - 1)) == 0)) {
		size_t ncap = v->nbad ? v->nbad * 2 : 16;
		uint32_t *nb = realloc(v->bad, ncap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		v->bad = nb;
	}
	v->bad[v->nbad++] = i;
	return 0;
}

/* Reads, decodes and hashes chunk i into raw; 0 when it matches, 1 when bad, -errno. */
static int lib_verify_chunk(struct library *lib, const struct manifest *m, uint32_t i,
                            uint8_t *stored, uint8_t *raw, ZSTD_DCtx *dctx)
{
	const struct mf_chunk *c = &m->chunks[i];
	uint32_t len = mf_chunk_raw_len(m, i);
	uint8_t digest[SHA256_LEN];
	size_t slen = 0;

	if (c->flags & MF_ZERO) {
		memset(raw, 0, len);
	} else {
		int ret = chunks_read(lib->cs, c->sha256, c->flags & MF_ZSTD, stored,
		                      (size_t)m->chunk_size + 1024, &slen);
		if (ret == -ENOMEM)
			return ret;
		if (ret < 0 || slen != c->stored_len) {
			memset(raw, 0, len);
			return 1;
		}
		if (c->flags & MF_ZSTD) {
			size_t got = ZSTD_decompressDCtx(dctx, raw, len, stored, slen);
			if (ZSTD_isError(got) || got != len) {
				memset(raw, 0, len);
				return 1;
			}
		} else {
			memcpy(raw, stored, len);
		}
	}
	sha256_buf(raw, len, digest);
	return ct_equal(digest, c->sha256, SHA256_LEN) ? 0 : 1;
}

int library_verify(struct library *lib, int64_t id, struct library_verify *v, char *err,
                   size_t errsz)
{
	struct manifest m = {0};
	struct chunks_hold *hold = NULL;
	struct sha256_ctx *img = NULL;
	ZSTD_DCtx *dctx = NULL;
	uint8_t *stored = NULL, *raw = NULL, digest[SHA256_LEN];
	char dir[PATH_MAX], path[PATH_MAX];
	const char *why = NULL;
	int ret;

	memset(v, 0, sizeof(*v));
	if (library_version_dir(lib, id, dir, sizeof(dir)) < 0 ||
	    lib_join(path, sizeof(path), dir, "manifest") < 0) {
		lib_fmt(err, errsz, "path too long");
		return -ENAMETOOLONG;
	}
	if ((ret = chunks_hold(lib->cs, &hold)) < 0) {
		lib_fmt(err, errsz, "cannot hold the chunk store: %s", strerror(-ret));
		return ret;
	}
	ret = mf_load(path, &m, &why);
	if (ret < 0) {
		lib_fmt(err, errsz, "the version's manifest %s: %s", path,
		        why ? why : strerror(-ret));
		goto out;
	}
	stored = malloc((size_t)m.chunk_size + 1024);
	raw = malloc(m.chunk_size);
	dctx = ZSTD_createDCtx();
	img = sha256_new();
	if (!stored || !raw || !dctx || !img) {
		lib_fmt(err, errsz, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < m.chunk_count; i++) {
		if (lib->srv->stop) {
			lib_fmt(err, errsz, "the server is stopping");
			ret = -EINTR;
			goto out;
		}
		ret = lib_verify_chunk(lib, &m, i, stored, raw, dctx);
		if (ret == 1)
			ret = lib_verify_bad(v, i);
		if (ret < 0) {
			lib_fmt(err, errsz, "out of memory");
			goto out;
		}
		sha256_update(img, raw, mf_chunk_raw_len(&m, i));
		v->chunks_checked++;
	}
	sha256_final(img, digest);
	v->image_ok = ct_equal(digest, m.image_sha256, SHA256_LEN);
	ret = 0;
out:
	chunks_release(hold);
	sha256_free(img);
	ZSTD_freeDCtx(dctx);
	free(stored);
	free(raw);
	mf_free(&m);
	if (ret < 0)
		library_verify_free(v);
	return ret;
}

/* ---- start and stop ---------------------------------------------------- */

/* Rows left 'importing' by a crash: their import died with the server. */
static int lib_recover_rows(struct library *lib)
{
	struct store *s = lib->srv->store;
	json_t *rows =
	    store_rows_json(s, "SELECT id FROM image_versions WHERE state = 'importing'", NULL);
	size_t i;
	json_t *row;
	int rc = 0;
	if (!rows)
		return -EIO;
	json_array_foreach(rows, i, row)
	{
		int64_t id = (int64_t)json_integer_value(json_object_get(row, "id"));
		if ((rc = store_begin(s)) < 0)
			break;
		rc = store_exec(s,
		                "UPDATE image_versions SET state = 'failed', error = ?,"
		                " finished_at = ? WHERE id = ? AND state = 'importing'",
		                "tii", LIBRARY_INTERRUPTED, store_now(), id);
		if (rc >= 0)
			rc = audit_system(s, "import", "version", id, "failed: %s",
			                  LIBRARY_INTERRUPTED);
		if (rc < 0) {
			store_rollback(s);
			break;
		}
		if ((rc = store_commit(s)) < 0)
			break;
		log_warn("library: version %lld was importing when the server stopped; marked "
		         "failed",
		         (long long)id);
	}
	json_decref(rows);
	return rc < 0 ? rc : 0;
}

/* Version directories without a ready row, and ready rows without a manifest. */
static int lib_recover_dirs(struct library *lib)
{
	struct store *s = lib->srv->store;
	DIR *d = opendir(lib->versions_dir);
	struct dirent *e;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char dir[PATH_MAX];
		uint64_t id;
		int64_t ready = 0;
		if (e->d_name[0] == '.')
			continue;
		if (parse_uint(e->d_name, 1, INT64_MAX, &id, NULL) < 0) {
			char shown[128];
			log_warn("library: %s/%s is not a version directory; left alone",
			         lib->versions_dir,
			         log_escape(e->d_name, strlen(e->d_name), shown, sizeof(shown)));
			continue;
		}
		int rc = store_int(s, &ready,
		                   "SELECT COUNT(*) FROM image_versions WHERE id = ? AND state = "
		                   "'ready'",
		                   "i", (int64_t)id);
		if (rc < 0) {
			closedir(d);
			return rc;
		}
		if (ready)
			continue;
		library_version_dir(lib, (int64_t)id, dir, sizeof(dir));
		if (lib_rm_dir(dir) < 0) {
			log_error("library: cannot remove %s, which no ready version owns", dir);
			continue;
		}
		log_warn("library: removed %s: no ready version owns it", dir);
		audit_system(s, "cleanup", "version", (int64_t)id,
		             "removed the directory of a version that is not ready");
	}
	closedir(d);

	json_t *rows =
	    store_rows_json(s, "SELECT id FROM image_versions WHERE state = 'ready'", NULL);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		char dir[PATH_MAX], path[PATH_MAX];
		struct stat sb;
		int64_t id = (int64_t)json_integer_value(json_object_get(row, "id"));
		if (library_version_dir(lib, id, dir, sizeof(dir)) == 0 &&
		    lib_join(path, sizeof(path), dir, "manifest") == 0 && stat(path, &sb) < 0)
			log_error("library: version %lld is ready but %s is missing; it cannot "
			          "be sent and GC refuses to run until it is deleted",
			          (long long)id, path);
	}
	json_decref(rows);
	return 0;
}

/* Uploads cut short by a crash: their rows failed above; their files go. */
static int lib_recover_uploads(struct library *lib)
{
	DIR *d = opendir(lib->uploads_dir);
	struct dirent *e;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char shown[128];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		log_escape(e->d_name, strlen(e->d_name), shown, sizeof(shown));
		if (unlinkat(dirfd(d), e->d_name, 0) < 0) {
			log_error("library: cannot remove %s/%s: %s", lib->uploads_dir, shown,
			          strerror(errno));
			continue;
		}
		log_warn("library: removed %s/%s, left by an upload the server did not finish",
		         lib->uploads_dir, shown);
		audit_system(lib->srv->store, "cleanup", "upload", 0, "removed uploads/%s", shown);
	}
	closedir(d);
	return 0;
}

static int lib_mkdir(const char *dir, char *err, size_t errsz)
{
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		int ret = -errno;
		lib_fmt(err, errsz, "cannot create %s: %s", dir, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Resolves the configured import roots; a missing one is skipped with a warning. */
static void lib_roots(struct library *lib)
{
	const char *p = lib->srv->conf.import_roots;
	while (*p && lib->nroots < LIB_MAX_ROOTS) {
		char root[PATH_MAX], real[PATH_MAX];
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ","), len = n;
		while (len && p[len - 1] == ' ')
			len--;
		if (len && len < sizeof(root)) {
			memcpy(root, p, len);
			root[len] = '\0';
			if (!realpath(root, real))
				log_warn("library: import root %s: %s; no import reads from it",
				         root, strerror(errno));
			else if ((lib->roots[lib->nroots] = strdup(real)))
				lib->nroots++;
		}
		p += n;
	}
	if (lib->nroots == 0)
		log_warn("library: no usable import root ([library] import_roots); imports "
		         "from a path are refused");
}

int library_open(struct srv *srv, struct library **out, char *err, size_t errsz)
{
	struct library *lib = calloc(1, sizeof(*lib));
	char lockpath[PATH_MAX];
	unsigned stale = 0;
	int ret;

	*out = NULL;
	if (!lib) {
		lib_fmt(err, errsz, "out of memory");
		return -ENOMEM;
	}
	lib->srv = srv;
	lib->lock_fd = -1;
	pthread_mutex_init(&lib->mu, NULL);
	if (!realpath(srv->conf.data_dir, lib->data_dir)) {
		ret = -errno;
		lib_fmt(err, errsz, "data directory %s: %s", srv->conf.data_dir, strerror(-ret));
		goto fail;
	}
	if (lib_join(lib->chunks_dir, sizeof(lib->chunks_dir), lib->data_dir, "chunks") < 0 ||
	    lib_join(lib->versions_dir, sizeof(lib->versions_dir), lib->data_dir, "versions") < 0 ||
	    lib_join(lib->uploads_dir, sizeof(lib->uploads_dir), lib->data_dir, "uploads") < 0 ||
	    lib_join(lockpath, sizeof(lockpath), lib->data_dir, "library.lock") < 0) {
		lib_fmt(err, errsz, "data directory path too long");
		ret = -ENAMETOOLONG;
		goto fail;
	}
	lib->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (lib->lock_fd < 0) {
		ret = -errno;
		lib_fmt(err, errsz, "cannot create %s: %s", lockpath, strerror(-ret));
		goto fail;
	}
	/* Recovery assumes no other server is importing into the same directories. */
	if (flock(lib->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		lib_fmt(err, errsz, "another mlserver uses the data directory %s", lib->data_dir);
		goto fail;
	}
	if ((ret = lib_mkdir(lib->versions_dir, err, errsz)) < 0 ||
	    (ret = lib_mkdir(lib->uploads_dir, err, errsz)) < 0)
		goto fail;
	if ((ret = chunks_open(lib->chunks_dir, &lib->cs, &stale, err, errsz)) < 0)
		goto fail;
	if (stale)
		log_warn("library: removed %u unfinished chunk files left by a crash", stale);
	if ((ret = lib_recover_rows(lib)) < 0 || (ret = lib_recover_dirs(lib)) < 0 ||
	    (ret = lib_recover_uploads(lib)) < 0) {
		lib_fmt(err, errsz, "library recovery failed: %s", strerror(-ret));
		goto fail;
	}
	lib_roots(lib);
	lib->pool = pool_new((unsigned)srv->conf.imports_max);
	if (!lib->pool) {
		lib_fmt(err, errsz, "cannot start the import workers");
		ret = -ENOMEM;
		goto fail;
	}
	*out = lib;
	return 0;
fail:
	library_free(lib);
	return ret;
}

void library_free(struct library *lib)
{
	if (!lib)
		return;
	pthread_mutex_lock(&lib->mu);
	lib->stopping = true;
	for (struct lib_job *j = lib->jobs; j; j = j->next)
		j->stop = 1;
	pthread_mutex_unlock(&lib->mu);
	/* Queued imports run now, see the stop and fail; running ones stop. */
	pool_free(lib->pool);
	if (lib->jobs)
		log_error("library: an upload was still open when the library stopped");
	chunks_free(lib->cs);
	for (size_t i = 0; i < lib->nroots; i++)
		free(lib->roots[i]);
	if (lib->lock_fd >= 0)
		close(lib->lock_fd);
	pthread_mutex_destroy(&lib->mu);
	free(lib);
}
