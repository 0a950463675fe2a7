/*
 * The receiver's journal of verified chunks (format in journal.h).
 *
 * The header's fields ("MLJ1", receiver_id, image_sha256, chunk_count,
 * chunk_size) fill exactly JR_HEADER_LEN (48) bytes, so there is no room for
 * the 4 bytes of padding journal.h also lists: none are written or expected.
 * 48 keeps the records 8-byte aligned in the file.
 *
 * Records are queued in memory by jr_add() and written only by jr_sync(),
 * after the output file was made durable, so that a record on disk never
 * names a chunk whose data could still be lost.
 */
#include "fileio.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cursor.h"

static const uint8_t jr_magic[4] = {'M', 'L', 'J', '1'};

/* Queued records grow in steps from this many. */
#define JR_PENDING_MIN 64

struct journal {
	int fd;
	uint64_t off; /* where the next record goes: after the last whole one */
	uint32_t chunk_count;
	uint8_t image_sha256[SHA256_LEN];
	uint8_t *pending; /* queued records, JR_RECORD_LEN bytes each */
	size_t npending;
	size_t cap;         /* records pending holds */
	size_t max_pending; /* hard cap on queued records */
	int dirty;          /* written but not yet fdatasync'ed */
};

/* The check of a record: the first 4 bytes of SHA-256(image_sha256 || be32(i)). */
static void jr_check(const uint8_t image_sha256[SHA256_LEN], uint32_t i, uint8_t out[4])
{
	uint8_t buf[SHA256_LEN + 4];
	uint8_t d[SHA256_LEN];
	struct wcur w;

	wcur_init(&w, buf, sizeof(buf));
	wcur_bytes(&w, image_sha256, SHA256_LEN);
	wcur_u32(&w, i);
	sha256_buf(buf, sizeof(buf), d);
	memcpy(out, d, 4);
}

int jr_parse(const uint8_t *p, size_t len, const struct jr_header *want, struct jr_header *got,
             struct bitmap *done, uint32_t *ignored, const char **why)
{
	struct cur c;
	uint8_t magic[4];
	struct jr_header h;
	uint32_t nbad = 0;
	uint32_t limit;
	const char *reason = NULL;
	int ret = -EINVAL;

	memset(&h, 0, sizeof(h));
	if (want == NULL || done == NULL) {
		reason = "bad arguments";
		goto out;
	}
	if (p == NULL || len < JR_HEADER_LEN) {
		reason = "too short for a journal header";
		goto out;
	}
	cur_init(&c, p, len);
	cur_bytes(&c, magic, sizeof(magic));
	h.receiver_id = cur_u32(&c);
	cur_bytes(&c, h.image_sha256, SHA256_LEN);
	h.chunk_count = cur_u32(&c);
	h.chunk_size = cur_u32(&c);
	if (c.err || memcmp(magic, jr_magic, sizeof(magic)) != 0) {
		reason = "not a journal (bad magic)";
		goto out;
	}
	ret = -ESTALE;
	if (memcmp(h.image_sha256, want->image_sha256, SHA256_LEN) != 0) {
		reason = "journal is for another image";
		goto out;
	}
	if (h.chunk_count != want->chunk_count) {
		reason = "journal chunk count differs";
		goto out;
	}
	if (h.chunk_size != want->chunk_size) {
		reason = "journal chunk size differs";
		goto out;
	}

	/* Never index past what the caller allocated, whatever the header says. */
	limit = h.chunk_count < done->nbits ? h.chunk_count : done->nbits;
	while (cur_left(&c) >= JR_RECORD_LEN) {
		uint32_t i = cur_u32(&c);
		const uint8_t *chk = cur_ptr(&c, 4);
		uint8_t expect[4];

		if (chk != NULL && i < limit) {
			jr_check(h.image_sha256, i, expect);
			if (memcmp(chk, expect, sizeof(expect)) == 0) {
				bm_set(done, i);
				continue;
			}
		}
		if (nbad < UINT32_MAX) {
			nbad++;
		}
	}
	if (cur_left(&c) > 0 && nbad < UINT32_MAX) {
		nbad++; /* a torn last record */
	}
	ret = 0;
out:
	if (ret == -EINVAL) {
		memset(&h, 0, sizeof(h));
	}
	if (got != NULL) {
		*got = h;
	}
	if (ignored != NULL) {
		*ignored = nbad;
	}
	if (why != NULL) {
		*why = reason;
	}
	return ret;
}

/*
 * Tries to resume from the journal open on j->fd. Returns 1 when it matched
 * (done filled, j->off set, a torn tail cut off), 0 when a fresh journal is
 * needed (*why says why), or -errno on an I/O error.
 */
static int jr_resume(struct journal *j, const struct jr_header *want, struct bitmap *done,
                     struct jr_header *got, const char **why)
{
	struct stat st;
	uint64_t cap = JR_HEADER_LEN + (uint64_t)want->chunk_count * JR_RECORD_LEN * 4;
	uint8_t *buf = NULL;
	uint32_t ignored = 0;
	uint64_t whole;
	int ret = -1;
	int r;

	if (fstat(j->fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (st.st_size < JR_HEADER_LEN) {
		*why = st.st_size == 0 ? "no journal yet" : "too short for a journal header";
		ret = 0;
		goto out;
	}
	if ((uint64_t)st.st_size > cap || (uint64_t)st.st_size > SIZE_MAX) {
		*why = "journal larger than its chunk count allows (stale)";
		ret = 0;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (buf == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	r = fio_pread_full(j->fd, buf, (size_t)st.st_size, 0);
	if (r < 0) {
		ret = r;
		goto out;
	}
	/* jr_parse() sets no bit unless the header matches. */
	r = jr_parse(buf, (size_t)st.st_size, want, got, done, &ignored, why);
	if (r < 0) {
		ret = 0;
		goto out;
	}
	whole =
	    JR_HEADER_LEN + ((uint64_t)st.st_size - JR_HEADER_LEN) / JR_RECORD_LEN * JR_RECORD_LEN;
	if (whole != (uint64_t)st.st_size && ftruncate(j->fd, (off_t)whole) < 0) {
		ret = -errno;
		goto out;
	}
	j->off = whole;
	j->dirty = whole != (uint64_t)st.st_size;
	ret = 1;
out:
	free(buf);
	return ret;
}

/* Truncates the file and writes a fresh header. Returns 0 or -errno. */
static int jr_fresh(struct journal *j, const struct jr_header *want)
{
	uint8_t hdr[JR_HEADER_LEN];
	struct wcur w;
	int ret = -1;

	wcur_init(&w, hdr, sizeof(hdr));
	wcur_bytes(&w, jr_magic, sizeof(jr_magic));
	wcur_u32(&w, want->receiver_id);
	wcur_bytes(&w, want->image_sha256, SHA256_LEN);
	wcur_u32(&w, want->chunk_count);
	wcur_u32(&w, want->chunk_size);
	if (w.err || w.off != sizeof(hdr)) {
		abort(); /* the header layout above is wrong */
	}
	if (ftruncate(j->fd, 0) < 0) {
		ret = -errno;
		goto out;
	}
	ret = fio_pwrite_all(j->fd, hdr, sizeof(hdr), 0);
	if (ret < 0) {
		goto out;
	}
	j->off = JR_HEADER_LEN;
	j->dirty = 1;
	ret = 0;
out:
	return ret;
}

struct journal *jr_open(const char *path, const struct jr_header *want, int resume,
                        struct bitmap *done, int *resumed, struct jr_header *got, const char **why)
{
	struct journal *j = NULL;
	struct journal *ret = NULL;
	const char *reason = "resume not asked for";
	struct jr_header h;
	int res = 0;
	int err = EINVAL;
	int r;

	memset(&h, 0, sizeof(h));
	if (path == NULL || want == NULL || done == NULL || done->nbits != want->chunk_count) {
		reason = "bad arguments";
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		err = ENOMEM;
		reason = "out of memory";
		goto out;
	}
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->fd < 0) {
		err = errno;
		reason = "cannot open journal";
		goto out;
	}
	j->chunk_count = want->chunk_count;
	memcpy(j->image_sha256, want->image_sha256, SHA256_LEN);
	/* Matches the resume cap: a journal never needs more records than that. */
	j->max_pending = (size_t)want->chunk_count * 4 + JR_PENDING_MIN;

	if (resume) {
		r = jr_resume(j, want, done, &h, &reason);
		if (r < 0) {
			err = -r;
			reason = "cannot read journal";
			goto out;
		}
		res = r;
	}
	if (!res) {
		r = jr_fresh(j, want);
		if (r < 0) {
			err = -r;
			reason = "cannot write journal header";
			goto out;
		}
		h = *want;
	} else {
		reason = NULL;
	}
	ret = j;
	j = NULL;
out:
	if (j != NULL) {
		if (j->fd >= 0) {
			close(j->fd);
		}
		free(j);
	}
	if (resumed != NULL) {
		*resumed = res;
	}
	if (got != NULL) {
		*got = h;
	}
	if (why != NULL) {
		*why = reason;
	}
	if (ret == NULL) {
		errno = err;
	}
	return ret;
}

int jr_add(struct journal *j, uint32_t i)
{
	uint8_t *rec;
	struct wcur w;
	int ret = -EINVAL;

	if (j == NULL || i >= j->chunk_count) {
		goto out;
	}
	if (j->npending == j->cap) {
		size_t ncap = j->cap == 0 ? JR_PENDING_MIN : j->cap * 2;
		uint8_t *np;

		if (ncap > j->max_pending) {
			ncap = j->max_pending;
		}
		if (ncap <= j->cap) {
			ret = -ENOBUFS;
			goto out;
		}
		np = realloc(j->pending, ncap * JR_RECORD_LEN);
		if (np == NULL) {
			ret = -ENOMEM;
			goto out;
		}
		j->pending = np;
		j->cap = ncap;
	}
	rec = j->pending + j->npending * JR_RECORD_LEN;
	wcur_init(&w, rec, JR_RECORD_LEN);
	wcur_u32(&w, i);
	jr_check(j->image_sha256, i, rec + 4);
	j->npending++;
	ret = 0;
out:
	return ret;
}

int jr_sync(struct journal *j, int data_fd)
{
	int ret = -EINVAL;

	if (j == NULL) {
		goto out;
	}
	/* The data must be durable before any record naming it can be. */
	if (data_fd >= 0 && fdatasync(data_fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (j->npending > 0) {
		/*
		 * On failure the records stay queued and j->off stays put, so
		 * the next attempt overwrites whatever part was written.
		 */
		ret = fio_pwrite_all(j->fd, j->pending, j->npending * JR_RECORD_LEN, j->off);
		if (ret < 0) {
			goto out;
		}
		j->off += (uint64_t)j->npending * JR_RECORD_LEN;
		j->npending = 0;
		j->dirty = 1;
	}
	if (j->dirty && fdatasync(j->fd) < 0) {
		ret = -errno;
		goto out;
	}
	j->dirty = 0;
	ret = 0;
out:
	return ret;
}

void jr_close(struct journal *j)
{
	if (j == NULL) {
		return;
	}
	/*
	 * Records still queued are dropped: without the data file this cannot
	 * order them after their data, and losing them only means fetching
	 * those chunks again. Callers jr_sync(j, data_fd) first to keep them.
	 */
	j->npending = 0;
	(void)jr_sync(j, -1);
	close(j->fd);
	free(j->pending);
	free(j);
}
