/*
 * mlcast prepare: cut a raw or qcow2 disk image into a prepared store, or
 * with --chunks into a manifest and a content-addressed chunk store (cas.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "cli.h"
#include "manifest.h"
#include "mlcast.h"
#include "mtime.h"
#include "parse.h"
#include "sha256.h"

#define SUB "prepare"

/* What the progress line needs between callbacks. */
struct prep_progress {
	uint64_t start_ns;
	uint64_t last_ns;
	bool shown;
};

static void prep_usage(FILE *f)
{
	fprintf(f,
	        "usage: mlcast prepare [OPTIONS] IMAGE STORE_DIR\n"
	        "\n"
	        "Cuts IMAGE (raw, sparse or not, or qcow2) into fixed-size chunks, notes\n"
	        "zero chunks, compresses the others with zstd when that saves bytes, hashes\n"
	        "every chunk and the whole image, and writes STORE_DIR/data and\n"
	        "STORE_DIR/manifest. STORE_DIR is created if missing and must not already\n"
	        "hold a manifest.\n"
	        "\n"
	        "options:\n"
	        "  --chunks DIR        put the chunks into the content-addressed chunk store\n"
	        "                      DIR (created if missing; the layout of mlserver's\n"
	        "                      DATA_DIR/chunks, docs/chunkstore.md) instead of\n"
	        "                      STORE_DIR/data; chunks DIR already holds are reused.\n"
	        "                      STORE_DIR gets only the manifest. Do not point it at\n"
	        "                      a running mlserver's store: its GC would not know\n"
	        "                      this version and may remove the chunks\n"
	        "  --chunk-size BYTES  chunk size, a power of two from 64K to 16M (default 1M)\n"
	        "  --level N           zstd level, 1 to 19 (default 3)\n"
	        "  --threads N         compression and hashing workers, 1 to 64 (default: CPUs)\n"
	        "  --quiet             no progress line and no summary\n"
	        "  --json              print the summary as one JSON object on stdout\n"
	        "  --help              show this help\n"
	        "\n"
	        "exit status: 0 prepared, 1 failed, 2 bad usage\n");
}

/* The progress callback: one line on stderr, redrawn at most 5 times a second. */
static void prep_on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct prep_progress *p = ctx;
	uint64_t now = mtime_ns();
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)done / secs : 0;
	char eta[32], d[32], t[32], r[32];

	if (done < total && now - p->last_ns < 200000000ull)
		return;
	p->last_ns = now;
	cli_duration(rate > 0 && done > 0 ? (double)(total - done) / rate : -1, eta, sizeof(eta));
	fprintf(stderr, "\rprepare %5.1f%%  %s of %s  %s/s  ETA %s\033[K",
	        total ? 100.0 * (double)done / (double)total : 100.0,
	        cli_bytes((double)done, d, sizeof(d)), cli_bytes((double)total, t, sizeof(t)),
	        cli_bytes(rate, r, sizeof(r)), eta);
	fflush(stderr);
	p->shown = true;
}

static void prep_summary(FILE *f, bool json, const char *image, const char *store,
                         uint32_t chunk_size, const struct mc_prepare_stats *st, double secs)
{
	char hex[SHA256_HEX_LEN];
	uint32_t raw = st->chunk_count - st->zero_chunks - st->zstd_chunks;
	/* ratio: the share of the image's bytes that the store keeps. */
	double ratio = st->image_size ? (double)st->stored_bytes / (double)st->image_size : 0;
	double rate = secs > 0 ? (double)st->image_size / secs : 0;
	char b[32];

	sha256_hex(st->image_sha256, hex);
	if (json) {
		fprintf(f, "{\"image\":");
		cli_json_str(f, image);
		fprintf(f, ",\"store\":");
		cli_json_str(f, store);
		fprintf(f,
		        ",\"image_size\":%llu,\"chunk_size\":%u,\"chunks\":%u,\"zero_chunks\":%u,"
		        "\"zstd_chunks\":%u,\"raw_chunks\":%u,\"stored_bytes\":%llu,"
		        "\"ratio\":%.4f,\"image_sha256\":\"%s\",\"elapsed_s\":%.3f,"
		        "\"reused_chunks\":%u,\"new_stored_bytes\":%llu}\n",
		        (unsigned long long)st->image_size, chunk_size, st->chunk_count,
		        st->zero_chunks, st->zstd_chunks, raw, (unsigned long long)st->stored_bytes,
		        ratio, hex, secs, st->reused_chunks,
		        (unsigned long long)st->new_stored_bytes);
		return;
	}
	fprintf(f, "image         %s\n", image);
	fprintf(f, "store         %s\n", store);
	fprintf(f, "image size    %llu bytes (%s)\n", (unsigned long long)st->image_size,
	        cli_bytes((double)st->image_size, b, sizeof(b)));
	fprintf(f, "chunks        %u of %s: %u zero, %u zstd, %u raw\n", st->chunk_count,
	        cli_bytes(chunk_size, b, sizeof(b)), st->zero_chunks, st->zstd_chunks, raw);
	fprintf(f, "stored        %llu bytes (%s, ratio %.4f of the image)\n",
	        (unsigned long long)st->stored_bytes,
	        cli_bytes((double)st->stored_bytes, b, sizeof(b)), ratio);
	if (st->reused_chunks)
		fprintf(f, "reused        %u chunks already in the chunk store\n",
		        st->reused_chunks);
	fprintf(f, "image sha256  %s\n", hex);
	fprintf(f, "elapsed       %.2f s (%s/s)\n", secs, cli_bytes(rate, b, sizeof(b)));
}

/* The chunk sink over a chunk store (cas.h); ctx points at its directory's fd. */
static int prep_lookup(void *ctx, const uint8_t sha256[32], uint8_t *flags, uint32_t *stored_len)
{
	return mc_cas_lookup(*(const int *)ctx, sha256, flags, stored_len);
}

static int prep_put(void *ctx, const uint8_t sha256[32], uint8_t flags, const void *stored,
                    uint32_t stored_len)
{
	return mc_cas_put(*(const int *)ctx, sha256, flags, stored, stored_len);
}

/* Creates the chunk store directory if missing (not its parents) and opens it. */
static int prep_open_cas(const char *dir)
{
	int fd;

	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "mlcast prepare: cannot create chunk store %s: %s\n", dir,
		        strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "mlcast prepare: cannot open chunk store %s: %s\n", dir,
		        strerror(errno));
	return fd;
}

int cmd_prepare(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"chunk-size", required_argument, NULL, 'c'},
	    {"chunks", required_argument, NULL, 'C'},
	    {"level", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static volatile int stop;
	struct mc_prepare_opts o = {0};
	struct mc_prepare_stats st = {0};
	struct prep_progress prog = {0};
	bool quiet = false, json = false;
	const char *chunks = NULL;
	int cas_fd = -1;
	const char *why = NULL;
	char err[512];
	uint64_t v;
	int opt;
	int ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (parse_size(optarg, MF_MIN_CHUNK, MF_MAX_CHUNK, &v, &why) < 0)
				return cli_usage_error(SUB, "--chunk-size '%s': %s (64K to 16M)",
				                       optarg, why);
			if (v & (v - 1))
				return cli_usage_error(SUB, "--chunk-size '%s': not a power of two",
				                       optarg);
			o.chunk_size = (uint32_t)v;
			break;
		case 'l':
			if (parse_uint(optarg, 1, 19, &v, &why) < 0)
				return cli_usage_error(SUB, "--level '%s': %s (1 to 19)", optarg,
				                       why);
			o.zstd_level = (int)v;
			break;
		case 't':
			if (parse_uint(optarg, 1, 64, &v, &why) < 0)
				return cli_usage_error(SUB, "--threads '%s': %s (1 to 64)", optarg,
				                       why);
			o.threads = (unsigned)v;
			break;
		case 'C':
			if (!*optarg)
				return cli_usage_error(SUB, "--chunks needs a directory");
			chunks = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			prep_usage(stdout);
			return 0;
		case ':':
			return cli_usage_error(SUB, "%s needs a value", argv[optind - 1]);
		default:
			if (!strncmp(argv[optind - 1], "--", 2))
				return cli_usage_error(SUB, "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(SUB, "unknown option '-%c'", optopt);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(SUB, "expected IMAGE and STORE_DIR, got %d argument%s",
		                       argc - optind, argc - optind == 1 ? "" : "s");

	prog.start_ns = mtime_ns();
	if (!quiet && isatty(STDERR_FILENO)) {
		o.progress = prep_on_progress;
		o.progress_ctx = &prog;
	}
	if (chunks) {
		cas_fd = prep_open_cas(chunks);
		if (cas_fd < 0)
			return 1;
		o.lookup = prep_lookup;
		o.put = prep_put;
		o.sink_ctx = &cas_fd;
	}
	o.stop = &stop;
	cli_catch_signals(&stop);
	ret = mc_prepare(argv[optind], argv[optind + 1], &o, &st, err, sizeof(err));
	if (prog.shown)
		fprintf(stderr, "\r\033[K");
	/* One syncfs makes every chunk name durable (docs/chunkstore.md, "Put"). */
	if (ret == 0 && cas_fd >= 0 && syncfs(cas_fd) < 0) {
		ret = -errno;
		snprintf(err, sizeof(err), "cannot sync the chunk store %s: %s", chunks,
		         strerror(errno));
	}
	if (cas_fd >= 0)
		close(cas_fd);
	if (ret < 0) {
		fprintf(stderr, "mlcast prepare: %s\n", err[0] ? err : strerror(-ret));
		return 1;
	}
	if (json || !quiet)
		prep_summary(stdout, json, argv[optind], argv[optind + 1],
		             o.chunk_size ? o.chunk_size : MF_DEFAULT_CHUNK, &st,
		             (double)(mtime_ns() - prog.start_ns) / 1e9);
	return 0;
}
