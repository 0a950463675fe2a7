/*
 * The receiver's journal of verified chunks, so that a restarted receiver
 * (--resume) asks only for what it lacks. An append-only file next to the
 * partial output:
 *
 *   header: "MLJ1" u32 receiver_id u8[32] image_sha256 u32 chunk_count
 *           u32 chunk_size u8[4] crc-free padding(0)      (48 bytes)
 *   records: u32 chunk_index u32 check  (8 bytes each), where check is the
 *           first 4 bytes of SHA-256(image_sha256 || be32(chunk_index)), so a
 *           torn or foreign record is recognised and ignored.
 *
 * Records are appended only after the chunk's data reached the output file;
 * jr_sync() makes them durable (data file first, then journal).
 */
#ifndef MC_JOURNAL_H
#define MC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bitmap.h"
#include "sha256.h"

#define JR_HEADER_LEN 48
#define JR_RECORD_LEN 8

struct journal; /* opaque */

struct jr_header {
	uint32_t receiver_id;
	uint8_t image_sha256[SHA256_LEN];
	uint32_t chunk_count;
	uint32_t chunk_size;
};

/*
 * Parses journal bytes (no I/O): checks the header against want (image hash,
 * chunk count and size must match, else -ESTALE with *why) and sets in done
 * (bm_init'ed by the caller with chunk_count bits) every chunk with a valid
 * record; a trailing partial record and records with a bad check or an index
 * out of range are ignored and counted in *ignored. Fills *got with the
 * header read. Returns 0, -EINVAL (not a journal), or -ESTALE.
 */
int jr_parse(const uint8_t *p, size_t len, const struct jr_header *want, struct jr_header *got,
             struct bitmap *done, uint32_t *ignored, const char **why);

/*
 * Opens path. With resume and an existing, matching journal, loads it into
 * done and keeps appending; otherwise truncates and writes a fresh header
 * (want->receiver_id). *resumed tells which. Returns NULL with errno set.
 */
struct journal *jr_open(const char *path, const struct jr_header *want, int resume,
                        struct bitmap *done, int *resumed, struct jr_header *got, const char **why);
/* Queues a record for chunk i (buffered). Returns 0 or -errno. */
int jr_add(struct journal *j, uint32_t i);
/* Writes queued records and fdatasyncs data_fd (if >= 0) first, then the journal. */
int jr_sync(struct journal *j, int data_fd);
/* Syncs, closes and frees. Accepts NULL. */
void jr_close(struct journal *j);

#endif
