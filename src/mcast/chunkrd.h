/*
 * Where the stored bytes of a prepared version's chunks come from: the
 * store's data file (STORE_DIR/data, each chunk at its manifest offset) or
 * a content-addressed chunk store (cas.h: DIR/ab/<sha256>.z or .r, by the
 * chunk's hash and form). Everything that reads a version's chunks -- the
 * sender, `mlcast unpack` -- goes through this one reader, so the choice of
 * source is made in one place and both sources fail the same way.
 *
 * A reader never changes after mc_chunkrd_open(): mc_chunkrd_read() may run
 * from any thread, several at once (pread and openat on descriptors it
 * holds). It checks lengths, not contents: the caller decodes and hashes
 * the bytes as it would anyway (the sender's receivers do).
 */
#ifndef MC_CHUNKRD_H
#define MC_CHUNKRD_H

#include <stddef.h>
#include <stdint.h>

struct manifest;
struct mc_chunkrd;

/*
 * Opens the source of m's chunks: with chunks_dir NULL, store_dir/data,
 * which must hold exactly m->data_size bytes; otherwise the chunk store
 * directory chunks_dir (opened once; store_dir is then only named in
 * messages). m is borrowed and must outlive the reader. Returns 0 with the
 * reader in *out, or a negative errno-style code with a one-line reason in
 * err (-EINVAL for a data file of the wrong size).
 */
int mc_chunkrd_open(const char *store_dir, const char *chunks_dir, const struct manifest *m,
                    struct mc_chunkrd **out, char *err, size_t errsz);

/*
 * Reads the stored bytes of chunk i (stored_len of them; none for a zero
 * chunk) into buf, which holds cap >= stored_len bytes. Returns 0, or a
 * negative code with a one-line reason in err that names the chunk's index,
 * and for a chunk store its hash (in its path):
 *   -ENOENT  the chunk store lacks the chunk's file;
 *   -EFBIG   its file is not stored_len bytes long (short or long);
 *   -EIO     the data file is short, a read failed, or the name in the
 *            chunk store is not a regular file;
 *   -EINVAL  i out of range, or cap below stored_len (a caller's bug);
 *   or another -errno from open or read.
 */
int mc_chunkrd_read(const struct mc_chunkrd *r, uint32_t i, void *buf, size_t cap, char *err,
                    size_t errsz);

/* Closes the source and frees the reader; NULL is fine. */
void mc_chunkrd_free(struct mc_chunkrd *r);

#endif
