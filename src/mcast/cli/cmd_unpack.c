/*
 * mlcast unpack: rebuild the raw image from a prepared store, verifying
 * every chunk and the whole image before the result gets its final name.
 * The stored chunks come from the store's data file, or with --chunks from
 * a content-addressed chunk store (cas.h), read through libmlcast's reader
 * (chunkrd.h), the sender's too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "chunkrd.h"
#include "cli.h"
#include "fileio.h"
#include "manifest.h"
#include "sha256.h"

#define SUB "unpack"
/* With --sparse, runs of zeros this long and aligned inside a chunk stay holes. */
#define UNPACK_BLOCK 4096u

/* Everything one unpack holds, so that one exit path can release it. */
struct unpack {
	const char *store;
	const char *output;
	const char *chunks; /* --chunks DIR, or NULL: the store's data file */
	bool sparse;
	volatile int *stop; /* set by SIGINT/SIGTERM */
	char part[PATH_MAX];
	struct manifest m;
	struct mc_chunkrd *rd; /* the data file, or the chunk store with --chunks */
	int out_fd;
	bool made_part;
	uint8_t *stored;
	uint8_t *raw;
	ZSTD_DCtx *dctx;
	struct sha256_ctx *img;
	char err[512];
};

static void unpack_usage(FILE *f)
{
	fprintf(f, "usage: mlcast unpack [OPTIONS] STORE_DIR OUTPUT\n"
	           "\n"
	           "Rebuilds the raw disk image from a prepared store. Every chunk is checked\n"
	           "against its SHA-256 and the whole image against the image SHA-256; the\n"
	           "image is written to OUTPUT.part and renamed to OUTPUT only when all match.\n"
	           "Zero chunks are left as holes, so OUTPUT is a sparse file.\n"
	           "\n"
	           "options:\n"
	           "  --chunks DIR\n"
	           "             read the chunks from the content-addressed chunk store DIR\n"
	           "             (mlserver's DATA_DIR/chunks) instead of STORE_DIR/data;\n"
	           "             STORE_DIR then needs only its manifest\n"
	           "  --sparse   also leave every aligned 4 KiB block of zeros inside other\n"
	           "             chunks as a hole (like cp --sparse=always)\n"
	           "  --quiet    print nothing on success\n"
	           "  --help     show this help\n"
	           "\n"
	           "exit status: 0 unpacked and verified, 1 failed, 2 bad usage\n");
}

static void unpack_fail(struct unpack *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void unpack_fail(struct unpack *u, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->err, sizeof(u->err), fmt, ap);
	va_end(ap);
}

/*
 * Writes one verified chunk at off; with --sparse, skips aligned blocks of
 * zeros (the file was sized up front, so they read back as zeros).
 */
static int unpack_write_chunk(struct unpack *u, const uint8_t *p, uint32_t len, uint64_t off)
{
	uint32_t pos = 0;

	if (!u->sparse)
		return fio_pwrite_all(u->out_fd, p, len, off);
	while (pos < len) {
		uint32_t start, blk;
		int ret;

		/* Skip a run of zero blocks, then write the run of data blocks after it. */
		while (pos < len) {
			blk = len - pos < UNPACK_BLOCK ? len - pos : UNPACK_BLOCK;
			if (!fio_all_zero(p + pos, blk))
				break;
			pos += blk;
		}
		start = pos;
		while (pos < len) {
			blk = len - pos < UNPACK_BLOCK ? len - pos : UNPACK_BLOCK;
			if (fio_all_zero(p + pos, blk))
				break;
			pos += blk;
		}
		if (pos > start) {
			ret = fio_pwrite_all(u->out_fd, p + start, pos - start, off + start);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* Reads, decodes and checks chunk i into u->raw. Returns 0 or -errno / -EINVAL. */
static int unpack_chunk(struct unpack *u, uint32_t i)
{
	const struct mf_chunk *c = &u->m.chunks[i];
	uint32_t len = mf_chunk_raw_len(&u->m, i);
	uint8_t digest[SHA256_LEN];
	int ret;

	if (c->flags & MF_ZERO) {
		memset(u->raw, 0, len);
	} else {
		ret = mc_chunkrd_read(u->rd, i, u->stored, u->m.chunk_size + 1024, u->err,
		                      sizeof(u->err));
		if (ret < 0)
			return ret;
		if (c->flags & MF_ZSTD) {
			size_t n =
			    ZSTD_decompressDCtx(u->dctx, u->raw, len, u->stored, c->stored_len);

			if (ZSTD_isError(n) || n != len) {
				unpack_fail(u, "chunk %u: bad zstd data: %s", i,
				            ZSTD_isError(n) ? ZSTD_getErrorName(n)
				                            : "wrong length");
				return -EINVAL;
			}
		} else {
			memcpy(u->raw, u->stored, len);
		}
	}
	sha256_buf(u->raw, len, digest);
	if (!ct_equal(digest, c->sha256, SHA256_LEN)) {
		unpack_fail(u, "chunk %u: SHA-256 mismatch, the store is corrupt", i);
		return -EINVAL;
	}
	sha256_update(u->img, u->raw, len);
	return 0;
}

/* Opens the store and the part file. Returns 0 or a negative code with u->err set. */
static int unpack_open(struct unpack *u)
{
	char path[PATH_MAX];
	const char *why = NULL;
	int n;
	int ret;

	n = snprintf(path, sizeof(path), "%s/manifest", u->store);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		unpack_fail(u, "store path too long");
		return -ENAMETOOLONG;
	}
	ret = mf_load(path, &u->m, &why);
	if (ret == -ENOENT) {
		unpack_fail(u, "%s has no manifest: not a prepared store", u->store);
		return ret;
	}
	if (ret < 0) {
		unpack_fail(u, "%s: %s%s%s", path, why ? why : "", ret != -EINVAL ? ": " : "",
		            ret != -EINVAL ? strerror(-ret) : "");
		return ret;
	}
	ret = mc_chunkrd_open(u->store, u->chunks, &u->m, &u->rd, u->err, sizeof(u->err));
	if (ret < 0)
		return ret;
	n = snprintf(u->part, sizeof(u->part), "%s.part", u->output);
	if (n < 0 || (size_t)n >= sizeof(u->part)) {
		unpack_fail(u, "output path too long");
		return -ENAMETOOLONG;
	}
	u->out_fd = open(u->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (u->out_fd < 0) {
		ret = -errno;
		unpack_fail(u, "cannot create %s: %s", u->part, strerror(-ret));
		return ret;
	}
	u->made_part = true;
	/* Sizing first makes every chunk not written a hole. */
	if (ftruncate(u->out_fd, (off_t)u->m.image_size) < 0) {
		ret = -errno;
		unpack_fail(u, "cannot size %s: %s", u->part, strerror(-ret));
		return ret;
	}
	u->stored = malloc(u->m.chunk_size + 1024);
	u->raw = malloc(u->m.chunk_size);
	u->dctx = ZSTD_createDCtx();
	u->img = sha256_new();
	if (!u->stored || !u->raw || !u->dctx || !u->img) {
		unpack_fail(u, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The whole unpack. Returns 0 or a negative code with u->err set. */
static int unpack_run(struct unpack *u)
{
	uint8_t digest[SHA256_LEN];
	char dir[PATH_MAX];
	const char *slash;
	int dfd;
	int ret;

	ret = unpack_open(u);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < u->m.chunk_count; i++) {
		if (*u->stop) {
			unpack_fail(u, "interrupted; %s removed", u->part);
			return -EINTR;
		}
		ret = unpack_chunk(u, i);
		if (ret < 0)
			return ret;
		if (u->m.chunks[i].flags & MF_ZERO)
			continue;
		ret = unpack_write_chunk(u, u->raw, mf_chunk_raw_len(&u->m, i),
		                         (uint64_t)i * u->m.chunk_size);
		if (ret < 0) {
			unpack_fail(u, "%s %s",
			            ret == -ENOSPC ? "disk full writing" : "cannot write", u->part);
			return ret;
		}
	}
	sha256_final(u->img, digest);
	if (!ct_equal(digest, u->m.image_sha256, SHA256_LEN)) {
		unpack_fail(u, "whole-image SHA-256 mismatch, the store is corrupt");
		return -EINVAL;
	}
	if (fsync(u->out_fd) < 0) {
		ret = -errno;
		unpack_fail(u, "cannot write %s: %s", u->part, strerror(-ret));
		return ret;
	}
	if (rename(u->part, u->output) < 0) {
		ret = -errno;
		unpack_fail(u, "cannot rename %s to %s: %s", u->part, u->output, strerror(-ret));
		return ret;
	}
	u->made_part = false;
	/* Make the rename durable; a failure here leaves a correct file, so only warn. */
	slash = strrchr(u->output, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == u->output)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - u->output), u->output);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		fprintf(stderr, "mlcast unpack: warning: cannot sync directory %s\n", dir);
	if (dfd >= 0)
		close(dfd);
	return 0;
}

int cmd_unpack(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"chunks", required_argument, NULL, 'c'},
	    {"sparse", no_argument, NULL, 's'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	volatile int stop = 0;
	struct unpack u = {.out_fd = -1, .stop = &stop};
	bool quiet = false;
	char hex[SHA256_HEX_LEN];
	int opt;
	int ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			u.chunks = optarg;
			break;
		case 's':
			u.sparse = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			unpack_usage(stdout);
			return 0;
		default:
			if (opt == ':')
				return cli_usage_error(SUB, "option '%s' needs an argument",
				                       argv[optind - 1]);
			if (!strncmp(argv[optind - 1], "--", 2))
				return cli_usage_error(SUB, "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(SUB, "unknown option '-%c'", optopt);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(SUB, "expected STORE_DIR and OUTPUT, got %d argument%s",
		                       argc - optind, argc - optind == 1 ? "" : "s");
	u.store = argv[optind];
	u.output = argv[optind + 1];

	/* A signal stops between chunks, so the .part file is always removed. */
	cli_catch_signals(&stop);
	ret = unpack_run(&u);
	if (ret < 0)
		fprintf(stderr, "mlcast unpack: %s\n", u.err);
	else if (!quiet)
		printf("unpacked %s to %s: %llu bytes, %u chunks verified, sha256 %s\n", u.store,
		       u.output, (unsigned long long)u.m.image_size, u.m.chunk_count,
		       sha256_hex(u.m.image_sha256, hex));

	if (u.out_fd >= 0)
		close(u.out_fd);
	if (u.made_part)
		unlink(u.part);
	mc_chunkrd_free(u.rd);
	free(u.stored);
	free(u.raw);
	ZSTD_freeDCtx(u.dctx);
	sha256_free(u.img);
	mf_free(&u.m);
	/* The handler points at this frame's flag; do not leave it behind. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return ret < 0 ? 1 : 0;
}
