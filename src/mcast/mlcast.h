/*
 * libmlcast: push one prepared disk image from one sender to many receivers
 * at once over IPv4 multicast, reliably. See docs/mcast-protocol.md.
 */
#ifndef MLCAST_H
#define MLCAST_H

#include <stdint.h>
#include <stdbool.h>

struct manifest;

/* ---- prepare ---------------------------------------------------------- */

struct mc_prepare_opts {
	uint32_t chunk_size; /* bytes; power of two in [64 KiB, 16 MiB]; 0 = 1 MiB */
	int zstd_level;	     /* 0 = default (3) */
	unsigned threads;    /* compression/hash workers; 0 = number of CPUs */
	/* Called from the calling thread now and then; may be NULL. */
	void (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
	void *progress_ctx;
};

struct mc_prepare_stats {
	uint64_t image_size;	/* raw bytes */
	uint32_t chunk_count;
	uint32_t zero_chunks;
	uint32_t zstd_chunks;
	uint64_t stored_bytes;	/* sum of stored chunk lengths */
	uint8_t image_sha256[32];
};

/*
 * Turns IMAGE (raw, sparse or not, or qcow2, detected by its magic) into a
 * prepared version in STORE_DIR (created if missing; must not already hold
 * a manifest): STORE_DIR/data holds the stored chunks back to back,
 * STORE_DIR/manifest the manifest (see manifest.h), written last and
 * atomically, so a store with a manifest is always complete. Returns 0, or a
 * negative errno-style code with a one-line reason in err.
 */
int mc_prepare(const char *image, const char *store_dir, const struct mc_prepare_opts *o,
	       struct mc_prepare_stats *st, char *err, size_t errsz);

#endif
