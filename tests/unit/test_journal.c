/* Unit tests for the receiver's journal (src/mcast/journal.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"

#define NCHUNKS 64

struct fixture {
	char dir[64];
	char path[128];
	char data[128];
	int data_fd;
	struct jr_header want;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL) {
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_journal.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/journal", fx->dir);
	snprintf(fx->data, sizeof(fx->data), "%s/data", fx->dir);
	fx->data_fd = open(fx->data, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fx->data_fd < 0) {
		free(fx);
		return -1;
	}
	fx->want.receiver_id = 0x11223344;
	for (int i = 0; i < SHA256_LEN; i++) {
		fx->want.image_sha256[i] = (uint8_t)(i * 7 + 1);
	}
	fx->want.chunk_count = NCHUNKS;
	fx->want.chunk_size = 1 << 20;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->data_fd);
	unlink(fx->path);
	unlink(fx->data);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Reads the whole journal file into a malloc'ed buffer; *len gets its size. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void append(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* A record as the journal writes it: be32 index, then the check. */
static void make_record(const uint8_t hash[SHA256_LEN], uint32_t i, uint8_t rec[8])
{
	uint8_t buf[SHA256_LEN + 4], d[SHA256_LEN];

	memcpy(buf, hash, SHA256_LEN);
	buf[32] = (uint8_t)(i >> 24);
	buf[33] = (uint8_t)(i >> 16);
	buf[34] = (uint8_t)(i >> 8);
	buf[35] = (uint8_t)i;
	sha256_buf(buf, sizeof(buf), d);
	memcpy(rec, buf + 32, 4);
	memcpy(rec + 4, d, 4);
}

/* Opens with resume and returns the journal; *resumed and done filled. */
static struct journal *reopen(struct fixture *fx, const struct jr_header *want, struct bitmap *done,
                              int *resumed, struct jr_header *got)
{
	const char *why = NULL;
	struct journal *j;

	assert_int_equal(bm_init(done, want->chunk_count), 0);
	j = jr_open(fx->path, want, 1, done, resumed, got, &why);
	assert_non_null(j);
	if (!*resumed) {
		assert_non_null(why);
	}
	return j;
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct bitmap done, parsed;
	struct jr_header got;
	const char *why = NULL;
	uint32_t ignored = 99;
	int resumed = -1;
	struct journal *j;
	uint8_t *buf, rec[8];
	size_t len;

	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	j = jr_open(fx->path, &fx->want, 0, &done, &resumed, &got, &why);
	assert_non_null(j);
	assert_int_equal(resumed, 0);
	assert_int_equal(got.receiver_id, fx->want.receiver_id);
	assert_int_equal(jr_add(j, 0), 0);
	assert_int_equal(jr_add(j, 5), 0);
	assert_int_equal(jr_add(j, NCHUNKS - 1), 0);
	assert_int_equal(jr_add(j, NCHUNKS), -EINVAL);
	/* Nothing is written before jr_sync. */
	assert_int_equal(file_size(fx->path), JR_HEADER_LEN);
	assert_int_equal(jr_sync(j, fx->data_fd), 0);
	assert_int_equal(file_size(fx->path), JR_HEADER_LEN + 3 * JR_RECORD_LEN);
	assert_int_equal(jr_sync(j, -1), 0);
	jr_close(j);

	/* The bytes on disk are exactly the documented format. */
	buf = slurp(fx->path, &len);
	assert_int_equal(len, JR_HEADER_LEN + 3 * JR_RECORD_LEN);
	assert_memory_equal(buf, "MLJ1\x11\x22\x33\x44", 8);
	assert_memory_equal(buf + 8, fx->want.image_sha256, SHA256_LEN);
	assert_memory_equal(buf + 40, "\x00\x00\x00\x40\x00\x10\x00\x00", 8);
	make_record(fx->want.image_sha256, 5, rec);
	assert_memory_equal(buf + JR_HEADER_LEN + JR_RECORD_LEN, rec, 8);

	assert_int_equal(bm_init(&parsed, NCHUNKS), 0);
	memset(&got, 0, sizeof(got));
	assert_int_equal(jr_parse(buf, len, &fx->want, &got, &parsed, &ignored, &why), 0);
	assert_int_equal(ignored, 0);
	assert_int_equal(parsed.count, 3);
	assert_true(bm_get(&parsed, 0) && bm_get(&parsed, 5) && bm_get(&parsed, NCHUNKS - 1));
	assert_int_equal(got.receiver_id, fx->want.receiver_id);
	assert_int_equal(got.chunk_count, NCHUNKS);
	assert_int_equal(got.chunk_size, 1 << 20);
	free(buf);
	bm_free(&parsed);
	bm_free(&done);
}

static void test_resume(void **state)
{
	struct fixture *fx = *state;
	struct jr_header want2 = fx->want;
	struct bitmap done;
	struct jr_header got;
	int resumed = -1;
	struct journal *j;

	/* A fresh journal with two records. */
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	j = jr_open(fx->path, &fx->want, 1, &done, &resumed, &got, NULL);
	assert_non_null(j);
	assert_int_equal(resumed, 0);
	assert_int_equal(jr_add(j, 1), 0);
	assert_int_equal(jr_add(j, 2), 0);
	jr_sync(j, fx->data_fd);
	/* Queued but never synced: dropped by jr_close. */
	assert_int_equal(jr_add(j, 3), 0);
	jr_close(j);
	bm_free(&done);

	/* Resumed with another receiver id: the journal's own id comes back. */
	want2.receiver_id = 7;
	j = reopen(fx, &want2, &done, &resumed, &got);
	assert_int_equal(resumed, 1);
	assert_int_equal(got.receiver_id, fx->want.receiver_id);
	assert_int_equal(done.count, 2);
	assert_true(bm_get(&done, 1) && bm_get(&done, 2) && !bm_get(&done, 3));
	assert_int_equal(jr_add(j, 40), 0);
	assert_int_equal(jr_sync(j, fx->data_fd), 0);
	jr_close(j);
	bm_free(&done);

	j = reopen(fx, &fx->want, &done, &resumed, &got);
	assert_int_equal(resumed, 1);
	assert_int_equal(done.count, 3);
	assert_true(bm_get(&done, 40));
	jr_close(j);
	bm_free(&done);

	/* Without resume the journal starts over. */
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	j = jr_open(fx->path, &fx->want, 0, &done, &resumed, &got, NULL);
	assert_non_null(j);
	assert_int_equal(resumed, 0);
	assert_int_equal(done.count, 0);
	assert_int_equal(file_size(fx->path), JR_HEADER_LEN);
	jr_close(j);
	bm_free(&done);
}

static void test_torn_tail(void **state)
{
	struct fixture *fx = *state;
	struct bitmap done;
	struct jr_header got;
	int resumed = -1;
	struct journal *j;
	uint8_t rec[8];
	uint8_t *buf;
	size_t len;
	uint32_t ignored = 0;

	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	j = jr_open(fx->path, &fx->want, 0, &done, &resumed, &got, NULL);
	assert_non_null(j);
	assert_int_equal(jr_add(j, 10), 0);
	assert_int_equal(jr_sync(j, fx->data_fd), 0);
	jr_close(j);
	bm_free(&done);

	/* Half of a record for chunk 11, as a crash mid-write leaves it. */
	make_record(fx->want.image_sha256, 11, rec);
	append(fx->path, rec, 5);
	j = reopen(fx, &fx->want, &done, &resumed, &got);
	assert_int_equal(resumed, 1);
	assert_int_equal(done.count, 1);
	assert_true(bm_get(&done, 10));
	/* The torn tail was cut, so the next record lands on a record boundary. */
	assert_int_equal(file_size(fx->path), JR_HEADER_LEN + JR_RECORD_LEN);
	assert_int_equal(jr_add(j, 12), 0);
	assert_int_equal(jr_sync(j, -1), 0);
	jr_close(j);
	bm_free(&done);

	buf = slurp(fx->path, &len);
	assert_int_equal(len, JR_HEADER_LEN + 2 * JR_RECORD_LEN);
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	assert_int_equal(jr_parse(buf, len, &fx->want, &got, &done, &ignored, NULL), 0);
	assert_int_equal(ignored, 0);
	assert_int_equal(done.count, 2);
	assert_true(bm_get(&done, 10) && bm_get(&done, 12));
	free(buf);
	bm_free(&done);
}

/* A journal of another image, shape or format, or too big, is replaced. */
static void test_foreign_and_stale(void **state)
{
	struct fixture *fx = *state;
	struct jr_header other = fx->want;
	struct bitmap done;
	struct jr_header got;
	int resumed = -1;
	struct journal *j;
	uint8_t rec[8];

	for (int variant = 0; variant < 5; variant++) {
		/* An existing journal of want with one record. */
		assert_int_equal(bm_init(&done, NCHUNKS), 0);
		j = jr_open(fx->path, &fx->want, 0, &done, &resumed, &got, NULL);
		assert_non_null(j);
		assert_int_equal(jr_add(j, 3), 0);
		assert_int_equal(jr_sync(j, -1), 0);
		jr_close(j);
		bm_free(&done);

		other = fx->want;
		switch (variant) {
		case 0:
			other.image_sha256[31] ^= 1;
			break;
		case 1:
			other.chunk_count = NCHUNKS + 1;
			break;
		case 2:
			other.chunk_size = 4096;
			break;
		case 3:
			/* More records than 4 per chunk: stale, whatever they say. */
			make_record(fx->want.image_sha256, 3, rec);
			for (int i = 0; i < 4 * NCHUNKS; i++) {
				append(fx->path, rec, sizeof(rec));
			}
			break;
		default: {
			/* Not a journal at all. */
			static const char junk[] =
			    "hello, this is not a journal, but it is long enough";
			int fd = open(fx->path, O_WRONLY | O_TRUNC | O_CLOEXEC);

			assert_true(fd >= 0);
			assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
			close(fd);
			break;
		}
		}
		j = reopen(fx, &other, &done, &resumed, &got);
		assert_int_equal(resumed, 0);
		assert_int_equal(done.count, 0);
		assert_int_equal(file_size(fx->path), JR_HEADER_LEN);
		assert_int_equal(got.chunk_count, other.chunk_count);
		assert_memory_equal(got.image_sha256, other.image_sha256, SHA256_LEN);
		jr_close(j);
		bm_free(&done);
	}

	/* Exactly 4 records per chunk is still accepted. */
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	j = jr_open(fx->path, &fx->want, 0, &done, &resumed, &got, NULL);
	assert_non_null(j);
	jr_close(j);
	bm_free(&done);
	make_record(fx->want.image_sha256, 3, rec);
	for (int i = 0; i < 4 * NCHUNKS; i++) {
		append(fx->path, rec, sizeof(rec));
	}
	j = reopen(fx, &fx->want, &done, &resumed, &got);
	assert_int_equal(resumed, 1);
	assert_int_equal(done.count, 1);
	jr_close(j);
	bm_free(&done);
}

static void test_parse_bad_records(void **state)
{
	struct fixture *fx = *state;
	uint8_t buf[JR_HEADER_LEN + 8 * JR_RECORD_LEN + 3];
	uint8_t other_hash[SHA256_LEN];
	struct bitmap done;
	struct jr_header got;
	uint32_t ignored = 0;
	const char *why = NULL;
	size_t off = JR_HEADER_LEN;
	uint8_t *p;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, "MLJ1\0\0\0\x09", 8);
	memcpy(buf + 8, fx->want.image_sha256, SHA256_LEN);
	memcpy(buf + 40, "\x00\x00\x00\x40\x00\x10\x00\x00", 8);
	memcpy(other_hash, fx->want.image_sha256, SHA256_LEN);
	other_hash[0] ^= 0x80;

	make_record(fx->want.image_sha256, 7, buf + off); /* good */
	off += 8;
	make_record(fx->want.image_sha256, 8, buf + off); /* bad check */
	buf[off + 7] ^= 1;
	off += 8;
	make_record(other_hash, 9, buf + off); /* foreign */
	off += 8;
	make_record(fx->want.image_sha256, NCHUNKS, buf + off); /* out of range */
	off += 8;
	make_record(fx->want.image_sha256, UINT32_MAX, buf + off); /* out of range */
	off += 8;
	make_record(fx->want.image_sha256, 7, buf + off); /* duplicate: fine */
	off += 8;
	memset(buf + off, 0, 8); /* zeros: a torn page */
	off += 8;
	make_record(fx->want.image_sha256, 0, buf + off); /* good */
	off += 8;
	memset(buf + off, 0xff, 3); /* partial */
	off += 3;
	assert_int_equal(off, sizeof(buf));

	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	assert_int_equal(jr_parse(buf, sizeof(buf), &fx->want, &got, &done, &ignored, &why), 0);
	assert_int_equal(done.count, 2);
	assert_true(bm_get(&done, 7) && bm_get(&done, 0));
	assert_int_equal(ignored, 6);
	assert_int_equal(got.receiver_id, 9);

	/* A bitmap smaller than the header says is never overrun. */
	bm_free(&done);
	assert_int_equal(bm_init(&done, 5), 0);
	assert_int_equal(jr_parse(buf, sizeof(buf), &fx->want, &got, &done, &ignored, &why), 0);
	assert_int_equal(done.count, 1);
	assert_int_equal(ignored, 8);
	bm_free(&done);

	/* Not journals: -EINVAL with a reason. */
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	why = NULL;
	assert_int_equal(jr_parse(buf, JR_HEADER_LEN - 1, &fx->want, &got, &done, &ignored, &why),
	                 -EINVAL);
	assert_non_null(why);
	assert_int_equal(jr_parse(NULL, 0, &fx->want, &got, &done, &ignored, &why), -EINVAL);
	p = malloc(sizeof(buf));
	assert_non_null(p);
	memcpy(p, buf, sizeof(buf));
	p[3] = '2';
	assert_int_equal(jr_parse(p, sizeof(buf), &fx->want, &got, &done, &ignored, &why), -EINVAL);
	p[3] = '1';
	/* Stale: another image, count or size; got still tells what was read. */
	p[8] ^= 1;
	why = NULL;
	assert_int_equal(jr_parse(p, sizeof(buf), &fx->want, &got, &done, &ignored, &why), -ESTALE);
	assert_non_null(why);
	assert_int_equal(got.image_sha256[0], p[8]);
	p[8] ^= 1;
	p[43] = 0x41;
	assert_int_equal(jr_parse(p, sizeof(buf), &fx->want, &got, &done, &ignored, &why), -ESTALE);
	assert_int_equal(got.chunk_count, 0x41);
	p[43] = 0x40;
	p[45] = 0x20;
	assert_int_equal(jr_parse(p, sizeof(buf), &fx->want, &got, &done, &ignored, &why), -ESTALE);
	assert_int_equal(done.count, 0);
	p[45] = 0x10;
	/* Just a header: nothing done, nothing ignored. */
	assert_int_equal(jr_parse(p, JR_HEADER_LEN, &fx->want, &got, &done, &ignored, &why), 0);
	assert_int_equal(done.count, 0);
	assert_int_equal(ignored, 0);
	free(p);
	bm_free(&done);
}

static void test_open_errors(void **state)
{
	struct fixture *fx = *state;
	struct bitmap done;
	int resumed = -1;
	struct journal *j;
	char bad[192];

	/* The bitmap must have chunk_count bits. */
	assert_int_equal(bm_init(&done, NCHUNKS - 1), 0);
	errno = 0;
	assert_null(jr_open(fx->path, &fx->want, 1, &done, &resumed, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	bm_free(&done);

	snprintf(bad, sizeof(bad), "%s/no/such/dir", fx->dir);
	assert_int_equal(bm_init(&done, NCHUNKS), 0);
	errno = 0;
	assert_null(jr_open(bad, &fx->want, 1, &done, &resumed, NULL, NULL));
	assert_int_equal(errno, ENOENT);

	/* A new file with resume asked for: created fresh. */
	j = jr_open(fx->path, &fx->want, 1, &done, &resumed, NULL, NULL);
	assert_non_null(j);
	assert_int_equal(resumed, 0);
	assert_int_equal(jr_sync(j, -1), 0);
	jr_close(j);
	jr_close(NULL);
	bm_free(&done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_and_stale, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_bad_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
