/*
 * The manifest of a prepared image version: its geometry, the whole-image
 * hash and one entry per chunk. Binary, big-endian, read through a cursor:
 *
 *   "MLMF" u16 version(=1) u16 flags(=0)
 *   u32 chunk_size  u64 image_size  u32 chunk_count  u64 data_size
 *   u8[32] image_sha256 (SHA-256 of the raw image bytes)
 *   chunk_count x { u8 flags  u32 stored_len  u64 offset  u8[32] sha256 }
 *   u8[32] SHA-256 of everything above (detects truncation and corruption)
 *
 * Chunk flags: MF_ZERO (all zero: stored_len 0, nothing stored or sent),
 * MF_ZSTD (stored bytes are one zstd frame). A chunk with neither flag is
 * stored raw. sha256 is always that of the raw (uncompressed) chunk, so a
 * receiver can compare an older image's chunks against it. offset is the
 * chunk's position in the store's data file; data_size is the sum of stored
 * lengths. Chunk i covers image bytes [i*chunk_size, min(image_size,
 * (i+1)*chunk_size)).
 */
#ifndef MC_MANIFEST_H
#define MC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define MF_ZERO 0x01
#define MF_ZSTD 0x02

#define MF_MIN_CHUNK (64u * 1024)
#define MF_MAX_CHUNK (16u * 1024 * 1024)
#define MF_DEFAULT_CHUNK (1024u * 1024)
#define MF_MAX_CHUNKS (16u * 1024 * 1024) /* 16 Ti chunks of 1 MiB = 16 TiB */
#define MF_HEADER_LEN 64
#define MF_ENTRY_LEN 45

struct mf_chunk {
	uint8_t flags;
	uint32_t stored_len;
	uint64_t offset;
	uint8_t sha256[SHA256_LEN];
};

struct manifest {
	uint32_t chunk_size;
	uint64_t image_size;
	uint32_t chunk_count;
	uint64_t data_size;
	uint8_t image_sha256[SHA256_LEN];
	struct mf_chunk *chunks; /* chunk_count entries, owned */
};

/* Raw length of chunk i (the last one may be short). */
uint32_t mf_chunk_raw_len(const struct manifest *m, uint32_t i);

/*
 * Checks a manifest's internal consistency: chunk size in range and a power
 * of two, chunk_count matches image_size, offsets contiguous and summing to
 * data_size, stored_len <= compressBound-style cap (chunk_size + 1024), zero
 * chunks have stored_len 0, unknown flag bits clear. Returns 0 or -EINVAL
 * with a reason in *why (static string).
 */
int mf_validate(const struct manifest *m, const char **why);

/*
 * Encodes m into a new buffer (*out, *outlen; caller frees). Returns 0 or
 * -ENOMEM.
 */
int mf_encode(const struct manifest *m, uint8_t **out, size_t *outlen);

/*
 * Decodes and validates a manifest from untrusted bytes. No I/O. Returns 0
 * and fills m (free with mf_free), or -EINVAL with a reason in *why.
 */
int mf_decode(const uint8_t *p, size_t len, struct manifest *m, const char **why);

/* Reads and decodes a manifest file (at most 1 GiB). Returns 0 or -errno / -EINVAL. */
int mf_load(const char *path, struct manifest *m, const char **why);
/* Writes the encoded manifest to path atomically (temp file, fsync, rename). */
int mf_save(const char *path, const struct manifest *m);

void mf_free(struct manifest *m);

#endif
