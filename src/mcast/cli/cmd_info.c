/* mlcast info: show a prepared store's manifest, as text or JSON. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "manifest.h"
#include "sha256.h"

#define SUB "info"

static void info_usage(FILE *f)
{
	fprintf(f, "usage: mlcast info [OPTIONS] STORE_DIR\n"
	           "\n"
	           "Shows the manifest of a prepared store: image size, chunk size, how many\n"
	           "chunks are zero, compressed or raw, stored bytes and the image SHA-256.\n"
	           "STORE_DIR may also name a manifest file directly.\n"
	           "\n"
	           "options:\n"
	           "  --chunks   also list every chunk: index, kind, offset in the data file,\n"
	           "             stored and raw length, SHA-256 of the raw bytes\n"
	           "  --json     print one JSON object on stdout\n"
	           "  --help     show this help\n"
	           "\n"
	           "exit status: 0 shown, 1 no valid manifest, 2 bad usage\n");
}

static const char *info_kind(uint8_t flags)
{
	if (flags & MF_ZERO)
		return "zero";
	if (flags & MF_ZSTD)
		return "zstd";
	return "raw";
}

static void info_print(FILE *f, const char *store, const struct manifest *m, bool json, bool chunks)
{
	uint32_t zero = 0, zstd = 0, raw;
	double ratio = (double)m->data_size / (double)m->image_size; /* image_size > 0 */
	char hex[SHA256_HEX_LEN];
	char b[32];

	for (uint32_t i = 0; i < m->chunk_count; i++) {
		zero += !!(m->chunks[i].flags & MF_ZERO);
		zstd += !!(m->chunks[i].flags & MF_ZSTD);
	}
	raw = m->chunk_count - zero - zstd;
	sha256_hex(m->image_sha256, hex);
	if (json) {
		fprintf(f, "{\"store\":");
		cli_json_str(f, store);
		fprintf(f,
		        ",\"image_size\":%llu,\"chunk_size\":%u,\"chunks\":%u,\"zero_chunks\":%u,"
		        "\"zstd_chunks\":%u,\"raw_chunks\":%u,\"stored_bytes\":%llu,"
		        "\"ratio\":%.4f,\"image_sha256\":\"%s\"",
		        (unsigned long long)m->image_size, m->chunk_size, m->chunk_count, zero,
		        zstd, raw, (unsigned long long)m->data_size, ratio, hex);
		if (chunks) {
			fprintf(f, ",\"chunk_list\":[");
			for (uint32_t i = 0; i < m->chunk_count; i++) {
				const struct mf_chunk *c = &m->chunks[i];

				fprintf(f,
				        "%s{\"index\":%u,\"kind\":\"%s\",\"offset\":%llu,"
				        "\"stored_len\":%u,\"raw_len\":%u,\"sha256\":\"%s\"}",
				        i ? "," : "", i, info_kind(c->flags),
				        (unsigned long long)c->offset, c->stored_len,
				        mf_chunk_raw_len(m, i), sha256_hex(c->sha256, hex));
			}
			fprintf(f, "]");
		}
		fprintf(f, "}\n");
		return;
	}
	fprintf(f, "store         %s\n", store);
	fprintf(f, "image size    %llu bytes (%s)\n", (unsigned long long)m->image_size,
	        cli_bytes((double)m->image_size, b, sizeof(b)));
	fprintf(f, "chunks        %u of %s: %u zero, %u zstd, %u raw\n", m->chunk_count,
	        cli_bytes(m->chunk_size, b, sizeof(b)), zero, zstd, raw);
	fprintf(f, "stored        %llu bytes (%s, ratio %.4f of the image)\n",
	        (unsigned long long)m->data_size, cli_bytes((double)m->data_size, b, sizeof(b)),
	        ratio);
	fprintf(f, "image sha256  %s\n", hex);
	if (!chunks)
		return;
	fprintf(f, "\n%10s %-4s %15s %10s %10s  %s\n", "index", "kind", "offset", "stored", "raw",
	        "sha256");
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		const struct mf_chunk *c = &m->chunks[i];

		fprintf(f, "%10u %-4s %15llu %10u %10u  %s\n", i, info_kind(c->flags),
		        (unsigned long long)c->offset, c->stored_len, mf_chunk_raw_len(m, i),
		        sha256_hex(c->sha256, hex));
	}
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"chunks", no_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct manifest m = {0};
	bool json = false, chunks = false;
	const char *why = NULL;
	const char *store;
	char path[PATH_MAX];
	struct stat sb;
	int opt;
	int n;
	int ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'c':
			chunks = true;
			break;
		case 'h':
			info_usage(stdout);
			return 0;
		default:
			if (!strncmp(argv[optind - 1], "--", 2))
				return cli_usage_error(SUB, "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(SUB, "unknown option '-%c'", optopt);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(SUB, "expected STORE_DIR, got %d arguments", argc - optind);
	store = argv[optind];

	if (stat(store, &sb) == 0 && S_ISDIR(sb.st_mode))
		n = snprintf(path, sizeof(path), "%s/manifest", store);
	else
		n = snprintf(path, sizeof(path), "%s", store);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "mlcast info: path too long\n");
		return 1;
	}
	ret = mf_load(path, &m, &why);
	if (ret == -ENOENT) {
		fprintf(stderr, "mlcast info: %s: no manifest (not a prepared store)\n", store);
		return 1;
	}
	if (ret < 0) {
		fprintf(stderr, "mlcast info: %s: %s%s%s\n", path, why ? why : "",
		        ret != -EINVAL ? ": " : "", ret != -EINVAL ? strerror(-ret) : "");
		return 1;
	}
	info_print(stdout, store, &m, json, chunks);
	mf_free(&m);
	return 0;
}
