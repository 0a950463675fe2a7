/*
 * The receiver's work off the network thread: FEC decoding, decompression,
 * chunk hash check and write (one job per chunk on the pool), seeding from
 * an older image (one job per range of chunks), and the whole-image hash,
 * which must run in image order and so has a thread of its own.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zstd.h>

#include "fileio.h"
#include "log.h"
#include "receiver.h"
#include "sha256.h"

#define SEED_RANGE 64 /* chunks per seeding job */

static void wake(struct rx *r)
{
	uint64_t one = 1;

	(void)!write(r->ev_fd, &one, sizeof(one));
}

static void post(struct rx *r, struct rx_done *d)
{
	struct rx_done **pp;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->done_head; *pp; pp = &(*pp)->next)
		;
	d->next = NULL;
	*pp = d;
	pthread_mutex_unlock(&r->lock);
	wake(r);
}

struct rx_done *rx_take_done(struct rx *r)
{
	struct rx_done *d;

	pthread_mutex_lock(&r->lock);
	d = r->done_head;
	r->done_head = NULL;
	pthread_mutex_unlock(&r->lock);
	return d;
}

/*
 * Each worker thread keeps its own coders: a coder holds scratch space, and
 * sharing one would serialise decoding.
 */
struct fec_cache {
	struct fec *f[FEC_MAX_K + 1];
};
static pthread_key_t fec_key;
static pthread_once_t fec_once = PTHREAD_ONCE_INIT;

static void fec_cache_free(void *p)
{
	struct fec_cache *c = p;

	for (unsigned k = 0; k <= FEC_MAX_K; k++)
		fec_free(c->f[k]);
	free(c);
}

static void fec_key_init(void)
{
	if (pthread_key_create(&fec_key, fec_cache_free) != 0)
		abort();
}

static struct fec *thread_coder(uint16_t k)
{
	struct fec_cache *c;

	pthread_once(&fec_once, fec_key_init);
	c = pthread_getspecific(fec_key);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || pthread_setspecific(fec_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	if (!c->f[k])
		c->f[k] = fec_new(k);
	return c->f[k];
}

/* Recovers the missing source symbols of every block; returns 0 or -EBADMSG. */
static int decode(struct rchunk *c)
{
	struct mc_geom g;

	mc_geom(c->stored_len, &g);
	for (uint16_t b = 0; b < c->nblocks; b++) {
		struct rblock *bl = &c->blk[b];
		uint8_t have[FEC_MAX_K], missing[FEC_MAX_K];
		const uint8_t *sym[FEC_MAX_K];
		uint8_t *out[FEC_MAX_K];
		unsigned nh = 0, nm = 0;
		uint32_t first;
		uint16_t k;
		struct fec *f;
		int rc;

		mc_block(&g, b, &first, &k);
		if (bl->npar == 0)
			continue;
		for (uint16_t i = 0; i < k; i++) {
			uint8_t *p = c->buf + (size_t)(first + i) * MC_SYM;

			if ((bl->mask[i >> 6] >> (i & 63)) & 1) {
				have[nh] = (uint8_t)i;
				sym[nh++] = p;
			} else {
				missing[nm] = (uint8_t)i;
				out[nm++] = p;
			}
		}
		for (uint8_t j = 0; j < bl->npar && nh < k; j++) {
			have[nh] = bl->paridx[j];
			sym[nh++] = bl->par + (size_t)j * MC_SYM;
		}
		if (nm == 0)
			continue;
		if (nh < k)
			return -EBADMSG;
		f = thread_coder(k);
		rc = f ? fec_decode(f, have, sym, MC_SYM, missing, nm, out) : -ENOMEM;
		if (rc < 0)
			return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
	}
	return 0;
}

static void chunk_job(void *arg)
{
	struct rx_done *d = arg;
	struct rx *r = d->r;
	struct rchunk *c = d->ch;
	const struct mf_chunk *e = &r->m.chunks[c->idx];
	uint32_t raw_len = mf_chunk_raw_len(&r->m, c->idx);
	uint8_t *raw = c->buf, *tmp = NULL;
	uint8_t h[SHA256_LEN];
	int rc = decode(c);

	if (rc == 0 && (e->flags & MF_ZSTD)) {
		size_t n;

		tmp = malloc(raw_len ? raw_len : 1);
		if (!tmp) {
			rc = -ENOMEM;
		} else {
			n = ZSTD_decompress(tmp, raw_len, c->buf, c->stored_len);
			if (ZSTD_isError(n) || n != raw_len)
				rc = -EBADMSG;
			raw = tmp;
		}
	} else if (rc == 0 && c->stored_len != raw_len) {
		rc = -EBADMSG;
	}
	if (rc == 0) {
		sha256_buf(raw, raw_len, h);
		if (!ct_equal(h, e->sha256, SHA256_LEN))
			rc = -EBADMSG;
	}
	if (rc == 0)
		rc = fio_pwrite_all(r->out_fd, raw, raw_len, (uint64_t)c->idx * r->m.chunk_size);
	free(tmp);
	d->result = rc;
	post(r, d);
}

void rx_submit_chunk(struct rx *r, struct rchunk *c)
{
	struct rx_done *d = calloc(1, sizeof(*d));

	if (!d) {
		log_error("out of memory");
		abort();
	}
	d->r = r;
	d->kind = RXJ_CHUNK;
	d->ch = c;
	if (pool_submit(r->pool, chunk_job, d) < 0) {
		/* Cannot queue: give it straight back as failed; it is asked for again. */
		d->result = -ENOMEM;
		post(r, d);
	}
}

/*
 * True when a failed clone means that these files can never share blocks,
 * so that a seeding job stops trying and copies every chunk.
 */
static bool clone_unsupported(int rc)
{
	return rc == -EOPNOTSUPP || rc == -EXDEV || rc == -ENOTTY || rc == -ENOSYS ||
	       rc == -EPERM || rc == -EBADF;
}

/*
 * Takes the chunks of this job's range that the seed holds unchanged. A
 * matching chunk is reflinked from the seed when the file system can (BTRFS,
 * XFS), so that it costs no new space and the two versions share its
 * blocks; else it is copied from the bytes just hashed. A clone shares the
 * seed's blocks as they are at that moment, not the bytes hashed: the seed
 * must not change while it is read (an image store's versions never do), and
 * the whole-image hash of the output, read back from the file, catches it
 * when one did.
 */
static void seed_job(void *arg)
{
	struct rx_done *d = arg;
	struct rx *r = d->r;
	uint8_t *buf = malloc(r->m.chunk_size);
	uint8_t h[SHA256_LEN];
	bool try_clone = true;

	d->result = buf ? 0 : -ENOMEM;
	for (uint32_t i = 0; buf && i < d->count; i++) {
		uint32_t c = d->first + i, len = mf_chunk_raw_len(&r->m, c);
		off_t off = (off_t)c * r->m.chunk_size;
		ssize_t got;

		if (r->o->stop && *r->o->stop)
			break;
		if ((r->m.chunks[c].flags & MF_ZERO) || bm_get(&r->done, c))
			continue;
		if (d->fd == r->out_fd) {
			/* A hole in the partial output was never written: nothing to hash. */
			off_t data = lseek(d->fd, off, SEEK_DATA);

			if ((data < 0 && errno == ENXIO) || (data >= 0 && data >= off + (off_t)len))
				continue;
		}
		got = fio_pread_upto(d->fd, buf, len, off);
		if (got != (ssize_t)len)
			continue; /* the old image is shorter: nothing to take here */
		sha256_buf(buf, len, h);
		if (!ct_equal(h, r->m.chunks[c].sha256, SHA256_LEN))
			continue;
		/* From the partial output itself (resume) the data is already in place. */
		if (d->fd != r->out_fd) {
			int rc = try_clone ? fio_clone_range(d->fd, (uint64_t)off, r->out_fd,
			                                     (uint64_t)off, len)
			                   : -EOPNOTSUPP;

			if (rc < 0 && clone_unsupported(rc))
				try_clone = false;
			if (rc < 0 &&
			    (rc = fio_pwrite_all(r->out_fd, buf, len, (uint64_t)off)) < 0) {
				d->result = rc;
				break;
			}
		}
		bm_set(&d->seeded, i);
	}
	free(buf);
	post(r, d);
}

int rx_submit_seed(struct rx *r, int fd)
{
	for (uint32_t first = 0; first < r->m.chunk_count; first += SEED_RANGE) {
		struct rx_done *d = calloc(1, sizeof(*d));
		uint32_t n =
		    r->m.chunk_count - first < SEED_RANGE ? r->m.chunk_count - first : SEED_RANGE;

		if (!d || bm_init(&d->seeded, n) < 0) {
			free(d);
			return -ENOMEM;
		}
		d->r = r;
		d->kind = RXJ_SEED;
		d->fd = fd;
		d->first = first;
		d->count = n;
		if (pool_submit(r->pool, seed_job, d) < 0) {
			bm_free(&d->seeded);
			free(d);
			return -ENOMEM;
		}
		r->seed_jobs++;
	}
	return 0;
}

static void *hasher_main(void *arg)
{
	struct rx *r = arg;
	struct sha256_ctx *ctx = sha256_new();
	uint8_t *buf = malloc(r->m.chunk_size), *zero = calloc(1, r->m.chunk_size);
	int result = 0;

	if (!ctx || !buf || !zero)
		result = -ENOMEM;
	pthread_mutex_lock(&r->lock);
	while (result == 0 && !r->hstop && r->hnext < r->m.chunk_count) {
		uint32_t i = r->hnext, len;

		if (!bm_get(&r->hready, i)) {
			pthread_cond_wait(&r->hcond, &r->lock);
			continue;
		}
		pthread_mutex_unlock(&r->lock);
		len = mf_chunk_raw_len(&r->m, i);
		if (r->m.chunks[i].flags & MF_ZERO) {
			sha256_update(ctx, zero, len);
		} else {
			ssize_t got =
			    fio_pread_upto(r->out_fd, buf, len, (uint64_t)i * r->m.chunk_size);

			if (got != (ssize_t)len)
				result = got < 0 ? (int)got : -EIO;
			else
				sha256_update(ctx, buf, len);
		}
		pthread_mutex_lock(&r->lock);
		r->hnext++;
	}
	if (result == 0 && r->hnext == r->m.chunk_count) {
		sha256_final(ctx, r->image_hash);
		result = ct_equal(r->image_hash, r->m.image_sha256, SHA256_LEN) ? 0 : -EBADMSG;
	}
	r->hresult = result;
	r->hdone = !r->hstop;
	pthread_mutex_unlock(&r->lock);
	sha256_free(ctx);
	free(buf);
	free(zero);
	wake(r);
	return NULL;
}

void rx_hash_ready(struct rx *r, uint32_t i)
{
	pthread_mutex_lock(&r->lock);
	bm_set(&r->hready, i);
	if (i == r->hnext)
		pthread_cond_signal(&r->hcond);
	pthread_mutex_unlock(&r->lock);
}

int rx_hash_start(struct rx *r)
{
	if (r->hasher_started) {
		pthread_mutex_lock(&r->lock);
		r->hstop = true;
		pthread_cond_signal(&r->hcond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->hasher, NULL);
		r->hasher_started = false;
	}
	pthread_mutex_lock(&r->lock);
	bm_clear_all(&r->hready);
	for (uint32_t i = bm_next_set(&r->done, 0); i < r->m.chunk_count;
	     i = bm_next_set(&r->done, i + 1))
		bm_set(&r->hready, i);
	r->hnext = 0;
	r->hstop = false;
	r->hdone = false;
	r->hresult = 0;
	pthread_mutex_unlock(&r->lock);
	if (pthread_create(&r->hasher, NULL, hasher_main, r) != 0)
		return -EAGAIN;
	r->hasher_started = true;
	return 0;
}

static void rescan_job(void *arg)
{
	struct rx_done *d = arg;
	struct rx *r = d->r;
	uint8_t *buf = malloc(r->m.chunk_size);
	uint8_t h[SHA256_LEN];
	uint32_t bad = 0;

	if (!buf) {
		d->result = -ENOMEM;
		post(r, d);
		return;
	}
	for (uint32_t c = 0; c < r->m.chunk_count && !(r->o->stop && *r->o->stop); c++) {
		uint32_t len = mf_chunk_raw_len(&r->m, c);
		bool ok = fio_pread_upto(r->out_fd, buf, len, (uint64_t)c * r->m.chunk_size) ==
		          (ssize_t)len;

		if (ok) {
			sha256_buf(buf, len, h);
			ok = ct_equal(h, r->m.chunks[c].sha256, SHA256_LEN);
		}
		if (ok)
			continue;
		bad++;
		if (r->m.chunks[c].flags & MF_ZERO) {
			/* Nobody sends a zero chunk: write its zeros here. */
			memset(buf, 0, len);
			(void)fio_pwrite_all(r->out_fd, buf, len, (uint64_t)c * r->m.chunk_size);
		} else {
			bm_clear(&r->done, c);
		}
	}
	free(buf);
	d->result = (int)(bad > INT32_MAX ? INT32_MAX : bad);
	post(r, d);
}

static int submit(struct rx *r, int kind, pool_fn fn, uint32_t *list, uint32_t n)
{
	struct rx_done *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->r = r;
	d->kind = kind;
	d->list = list;
	d->count = n;
	if (pool_submit(r->pool, fn, d) < 0) {
		free(d);
		return -ENOMEM;
	}
	return 0;
}

int rx_submit_rescan(struct rx *r)
{
	return submit(r, RXJ_RESCAN, rescan_job, NULL, 0);
}

static void sync_job(void *arg)
{
	struct rx_done *d = arg;
	struct rx *r = d->r;

	/* Data first: a journal record must never name data that could be lost. */
	d->result = fdatasync(r->out_fd) < 0 ? -errno : 0;
	for (uint32_t i = 0; d->result == 0 && i < d->count; i++)
		d->result = jr_add(r->jr, d->list[i]);
	if (d->result == 0)
		d->result = jr_sync(r->jr, -1);
	post(r, d);
}

int rx_submit_sync(struct rx *r, uint32_t *list, uint32_t n)
{
	return submit(r, RXJ_SYNC, sync_job, list, n);
}

int rx_work_start(struct rx *r)
{
	r->ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->ev_fd < 0)
		return -errno;
	r->pool = pool_new(r->o->threads ? r->o->threads : 2);
	return r->pool ? 0 : -ENOMEM;
}

void rx_work_stop(struct rx *r)
{
	struct rx_done *d;

	if (r->hasher_started) {
		pthread_mutex_lock(&r->lock);
		r->hstop = true;
		pthread_cond_signal(&r->hcond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->hasher, NULL);
		r->hasher_started = false;
	}
	pool_free(r->pool);
	r->pool = NULL;
	for (d = rx_take_done(r); d;) {
		struct rx_done *next = d->next;

		if (d->kind == RXJ_CHUNK)
			rx_free_chunk(r, d->ch);
		free(d->list);
		bm_free(&d->seeded);
		free(d);
		d = next;
	}
	if (r->ev_fd >= 0)
		close(r->ev_fd);
	r->ev_fd = -1;
}
