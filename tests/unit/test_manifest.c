/* Unit tests for the manifest codec: round trips, validation, hostile bytes, load/save. */
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

#include "manifest.h"
#include "sha256.h"

/* Builds a valid manifest: 5 chunks of 64 KiB, the last one short, mixed kinds. */
static void make_manifest(struct manifest *m)
{
	static const uint8_t kinds[5] = {0, MF_ZERO, MF_ZSTD, MF_ZERO, 0};
	uint64_t off = 0;

	memset(m, 0, sizeof(*m));
	m->chunk_size = MF_MIN_CHUNK;
	m->image_size = 4ull * MF_MIN_CHUNK + 1000;
	m->chunk_count = 5;
	m->chunks = calloc(5, sizeof(*m->chunks));
	assert_non_null(m->chunks);
	for (uint32_t i = 0; i < 5; i++) {
		struct mf_chunk *c = &m->chunks[i];

		c->flags = kinds[i];
		if (kinds[i] == MF_ZERO)
			c->stored_len = 0;
		else if (kinds[i] == MF_ZSTD)
			c->stored_len = 1234;
		else
			c->stored_len = mf_chunk_raw_len(m, i);
		c->offset = off;
		off += c->stored_len;
		memset(c->sha256, 0x10 + (int)i, SHA256_LEN);
	}
	m->data_size = off;
	memset(m->image_sha256, 0xab, SHA256_LEN);
}

static void assert_manifest_equal(const struct manifest *a, const struct manifest *b)
{
	assert_int_equal(a->chunk_size, b->chunk_size);
	assert_int_equal(a->image_size, b->image_size);
	assert_int_equal(a->chunk_count, b->chunk_count);
	assert_int_equal(a->data_size, b->data_size);
	assert_memory_equal(a->image_sha256, b->image_sha256, SHA256_LEN);
	for (uint32_t i = 0; i < a->chunk_count; i++) {
		assert_int_equal(a->chunks[i].flags, b->chunks[i].flags);
		assert_int_equal(a->chunks[i].stored_len, b->chunks[i].stored_len);
		assert_int_equal(a->chunks[i].offset, b->chunks[i].offset);
		assert_memory_equal(a->chunks[i].sha256, b->chunks[i].sha256, SHA256_LEN);
	}
}

/* Recomputes the trailing digest after a test edited the bytes on purpose. */
static void reseal(uint8_t *buf, size_t len)
{
	sha256_buf(buf, len - SHA256_LEN, buf + len - SHA256_LEN);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_raw_len(void **state)
{
	struct manifest m;

	(void)state;
	make_manifest(&m);
	assert_int_equal(mf_chunk_raw_len(&m, 0), MF_MIN_CHUNK);
	assert_int_equal(mf_chunk_raw_len(&m, 3), MF_MIN_CHUNK);
	assert_int_equal(mf_chunk_raw_len(&m, 4), 1000);
	assert_int_equal(mf_chunk_raw_len(&m, 5), 0);
	mf_free(&m);
}

static void test_round_trip(void **state)
{
	struct manifest m, d;
	const char *why = "unset";
	uint8_t *buf;
	size_t len;

	(void)state;
	make_manifest(&m);
	assert_int_equal(mf_validate(&m, &why), 0);
	assert_null(why);
	assert_int_equal(mf_encode(&m, &buf, &len), 0);
	assert_int_equal(len, MF_HEADER_LEN + 5 * MF_ENTRY_LEN + SHA256_LEN);
	assert_memory_equal(buf, "MLMF\x00\x01\x00\x00", 8);
	assert_int_equal(mf_decode(buf, len, &d, &why), 0);
	assert_manifest_equal(&m, &d);
	mf_free(&d);
	assert_null(d.chunks);
	free(buf);
	mf_free(&m);
	mf_free(NULL);
}

/* The exact byte layout, so the format cannot drift from manifest.h silently. */
static void test_layout(void **state)
{
	struct manifest m;
	uint8_t *buf;
	size_t len;
	const uint8_t *e;

	(void)state;
	make_manifest(&m);
	assert_int_equal(mf_encode(&m, &buf, &len), 0);
	assert_memory_equal(buf + 8, "\x00\x01\x00\x00", 4);                  /* chunk_size */
	assert_memory_equal(buf + 12, "\x00\x00\x00\x00\x00\x04\x03\xe8", 8); /* image_size */
	assert_memory_equal(buf + 20, "\x00\x00\x00\x05", 4);                 /* chunk_count */
	assert_int_equal(buf[24 + 7], (uint8_t)m.data_size); /* data_size, low byte */
	assert_int_equal(buf[36], 0xab);
	e = buf + MF_HEADER_LEN + 2 * MF_ENTRY_LEN; /* chunk 2: zstd, 1234 bytes */
	assert_int_equal(e[0], MF_ZSTD);
	assert_memory_equal(e + 1, "\x00\x00\x04\xd2", 4);
	assert_memory_equal(e + 5, "\x00\x00\x00\x00\x00\x01\x00\x00", 8); /* offset 64 KiB */
	assert_int_equal(e[13], 0x12);
	free(buf);
	mf_free(&m);
}

/* Each rule of mf_validate, broken one at a time. */
static void test_validate_failures(void **state)
{
	struct manifest m;
	const char *why;

	(void)state;
#define EXPECT_INVALID(edit)                                                                       \
	do {                                                                                       \
		make_manifest(&m);                                                                 \
		edit;                                                                              \
		why = NULL;                                                                        \
		assert_int_equal(mf_validate(&m, &why), -EINVAL);                                  \
		assert_non_null(why);                                                              \
		mf_free(&m);                                                                       \
	} while (0)

	EXPECT_INVALID(m.chunk_size = MF_MIN_CHUNK / 2);
	EXPECT_INVALID(m.chunk_size = MF_MAX_CHUNK * 2);
	EXPECT_INVALID(m.chunk_size = MF_MIN_CHUNK + 1);
	EXPECT_INVALID(m.image_size = 0);
	EXPECT_INVALID(m.image_size += MF_MIN_CHUNK);                 /* count too small */
	EXPECT_INVALID(m.image_size -= 1001);                         /* count too large */
	EXPECT_INVALID(m.chunks[0].flags |= 0x80);                    /* unknown flag */
	EXPECT_INVALID(m.chunks[2].flags = MF_ZERO | MF_ZSTD);        /* both */
	EXPECT_INVALID(m.chunks[1].stored_len = 1);                   /* zero with bytes */
	EXPECT_INVALID(m.chunks[2].stored_len = 0);                   /* empty zstd */
	EXPECT_INVALID(m.chunks[2].stored_len = MF_MIN_CHUNK + 1025); /* over cap */
	EXPECT_INVALID(m.chunks[0].stored_len -= 1);                  /* raw, wrong length */
	EXPECT_INVALID(m.chunks[4].stored_len = 1001);                /* short raw tail */
	EXPECT_INVALID(m.chunks[3].offset += 1);                      /* gap */
	EXPECT_INVALID(m.chunks[0].offset = 1);                       /* not starting at 0 */
	EXPECT_INVALID(m.data_size += 1);
	EXPECT_INVALID(m.data_size -= 1);
	EXPECT_INVALID((free(m.chunks), m.chunks = NULL));
#undef EXPECT_INVALID

	/* The compressed-size cap is inclusive. */
	make_manifest(&m);
	m.chunks[2].stored_len = MF_MIN_CHUNK + 1024;
	m.chunks[3].offset = m.chunks[2].offset + m.chunks[2].stored_len;
	m.chunks[4].offset = m.chunks[3].offset;
	m.data_size = m.chunks[4].offset + m.chunks[4].stored_len;
	assert_int_equal(mf_validate(&m, NULL), 0);
	mf_free(&m);
}

/* An image of exactly one full chunk, and the largest chunk size. */
static void test_validate_edges(void **state)
{
	struct manifest m = {0};
	struct mf_chunk c = {.flags = MF_ZERO};

	(void)state;
	m.chunk_size = MF_MAX_CHUNK;
	m.image_size = MF_MAX_CHUNK;
	m.chunk_count = 1;
	m.chunks = &c;
	assert_int_equal(mf_validate(&m, NULL), 0);
	m.image_size = MF_MAX_CHUNK + 1;
	assert_int_equal(mf_validate(&m, NULL), -EINVAL);
	m.chunk_count = 2;
	m.image_size = (uint64_t)MF_MAX_CHUNKS * MF_MIN_CHUNK + 1;
	m.chunk_size = MF_MIN_CHUNK;
	assert_int_equal(mf_validate(&m, NULL), -EINVAL);
}

static void test_decode_header_failures(void **state)
{
	struct manifest m, d;
	const char *why;
	uint8_t *buf;
	size_t len;

	(void)state;
	make_manifest(&m);
	assert_int_equal(mf_encode(&m, &buf, &len), 0);

#define EXPECT_BAD(edit, reason)                                                                   \
	do {                                                                                       \
		uint8_t *b = malloc(len);                                                          \
		assert_non_null(b);                                                                \
		memcpy(b, buf, len);                                                               \
		edit;                                                                              \
		why = NULL;                                                                        \
		assert_int_equal(mf_decode(b, len, &d, &why), -EINVAL);                            \
		assert_non_null(why);                                                              \
		assert_string_equal(why, reason);                                                  \
		assert_null(d.chunks);                                                             \
		free(b);                                                                           \
	} while (0)

	EXPECT_BAD(b[0] = 'X', "bad magic");
	EXPECT_BAD((b[5] = 2, reseal(b, len)), "unsupported version");
	EXPECT_BAD((b[7] = 1, reseal(b, len)), "unknown header flags");
	EXPECT_BAD(b[40] ^= 1, "checksum mismatch");
	EXPECT_BAD(b[len - 1] ^= 1, "checksum mismatch");
	/* A count that the bytes present cannot back is refused before allocating. */
	EXPECT_BAD((put_u32(b + 20, 6), reseal(b, len)), "length does not match chunk count");
	EXPECT_BAD((put_u32(b + 20, 4), reseal(b, len)), "length does not match chunk count");
	EXPECT_BAD((put_u32(b + 20, 0xffffffffu), reseal(b, len)), "too many chunks");
	EXPECT_BAD((put_u32(b + 20, MF_MAX_CHUNKS), reseal(b, len)),
	           "length does not match chunk count");
	/* Consistency rules apply to decoded bytes too. */
	EXPECT_BAD((put_u32(b + 8, 3000), reseal(b, len)), "chunk size out of range");
	EXPECT_BAD((b[MF_HEADER_LEN] = 0x04, reseal(b, len)), "unknown chunk flag");
	EXPECT_BAD((b[MF_HEADER_LEN + MF_ENTRY_LEN + 12] = 1, reseal(b, len)),
	           "chunk offsets not contiguous");
#undef EXPECT_BAD
	free(buf);
	mf_free(&m);
}

/* Every prefix and a few extensions of a valid encoding are refused. */
static void test_decode_truncated_extended(void **state)
{
	struct manifest m, d;
	const char *why;
	uint8_t *buf, *big;
	size_t len;

	(void)state;
	make_manifest(&m);
	assert_int_equal(mf_encode(&m, &buf, &len), 0);
	for (size_t n = 0; n < len; n++) {
		/* A fresh heap copy of exactly n bytes lets ASan catch any overread. */
		uint8_t *p = malloc(n ? n : 1);

		assert_non_null(p);
		memcpy(p, buf, n);
		why = NULL;
		assert_int_equal(mf_decode(p, n, &d, &why), -EINVAL);
		assert_non_null(why);
		free(p);
	}
	big = calloc(1, len + MF_ENTRY_LEN + 1);
	assert_non_null(big);
	memcpy(big, buf, len);
	for (size_t extra = 1; extra <= MF_ENTRY_LEN + 1; extra++) {
		assert_int_equal(mf_decode(big, len + extra, &d, &why), -EINVAL);
		/* Even with a matching trailer, extra bytes are refused. */
		reseal(big, len + extra);
		assert_int_equal(mf_decode(big, len + extra, &d, &why), -EINVAL);
		memcpy(big, buf, len);
		memset(big + len, 0, extra);
	}
	assert_int_equal(mf_decode(NULL, 0, &d, &why), -EINVAL);
	free(big);
	free(buf);
	mf_free(&m);
}

/* A manifest with chunk_count entries, all zero, large enough to matter. */
static void test_many_zero_chunks(void **state)
{
	struct manifest m = {0}, d;
	uint8_t *buf;
	size_t len;

	(void)state;
	m.chunk_size = MF_MIN_CHUNK;
	m.chunk_count = 10000;
	m.image_size = (uint64_t)m.chunk_count * MF_MIN_CHUNK - 7;
	m.chunks = calloc(m.chunk_count, sizeof(*m.chunks));
	assert_non_null(m.chunks);
	for (uint32_t i = 0; i < m.chunk_count; i++)
		m.chunks[i].flags = MF_ZERO;
	assert_int_equal(mf_encode(&m, &buf, &len), 0);
	assert_int_equal(mf_decode(buf, len, &d, NULL), 0);
	assert_manifest_equal(&m, &d);
	mf_free(&d);
	free(buf);
	mf_free(&m);
}

static void test_save_load(void **state)
{
	char dir[] = "/tmp/test_manifest.XXXXXX";
	char path[256], other[256];
	struct manifest m, d;
	const char *why;
	struct stat sb;
	uint8_t junk[100] = {0};
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/manifest", dir);
	make_manifest(&m);
	assert_int_equal(mf_save(path, &m), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_int_equal(sb.st_size, MF_HEADER_LEN + 5 * MF_ENTRY_LEN + SHA256_LEN);
	assert_int_equal(mf_load(path, &d, &why), 0);
	assert_manifest_equal(&m, &d);
	mf_free(&d);

	/* An invalid manifest is never written, and nothing is left behind. */
	m.data_size++;
	assert_int_equal(mf_save(path, &m), -EINVAL);
	m.data_size--;
	assert_int_equal(mf_load(path, &d, &why), 0);
	mf_free(&d);

	/* Loading: a missing file, a directory, and garbage. */
	snprintf(other, sizeof(other), "%s/missing", dir);
	assert_int_equal(mf_load(other, &d, &why), -ENOENT);
	assert_non_null(why);
	assert_int_equal(mf_load(dir, &d, &why), -EINVAL);
	snprintf(other, sizeof(other), "%s/junk", dir);
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(mf_load(other, &d, &why), -EINVAL);
	assert_string_equal(why, "bad magic");
	unlink(other);

	/* Saving into a missing directory fails cleanly. */
	snprintf(other, sizeof(other), "%s/nodir/manifest", dir);
	assert_int_equal(mf_save(other, &m), -ENOENT);

	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* no temp files left */
	mf_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raw_len),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_validate_failures),
	    cmocka_unit_test(test_validate_edges),
	    cmocka_unit_test(test_decode_header_failures),
	    cmocka_unit_test(test_decode_truncated_extended),
	    cmocka_unit_test(test_many_zero_chunks),
	    cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
