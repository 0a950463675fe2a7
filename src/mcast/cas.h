/*
 * The on-disk layout of a content-addressed chunk store, as mlserver's
 * library keeps it (docs/chunkstore.md), and a reader of it. It lives in
 * libmlcast so that everything that reads a version's chunks from such a
 * store -- `mlcast unpack --chunks`, the sender -- and the server's writer
 * (src/server/chunks.c) share one definition of where a chunk lives, while
 * libmlcast stays independent of the server.
 *
 * A chunk is the file DIR/ab/<64 hex>.z (its zstd frame, MF_ZSTD) or
 * DIR/ab/<64 hex>.r (its raw bytes), named by the SHA-256 of its raw bytes
 * in lower-case hex, in the fan-out directory of its first two digits. The
 * file holds exactly the stored bytes: its size is the manifest entry's
 * stored_len.
 */
#ifndef MC_CAS_H
#define MC_CAS_H

#include <stddef.h>
#include <stdint.h>

/* "ab/" + 64 hex digits + ".z" + NUL */
#define MC_CAS_PATH_LEN (3 + 64 + 2 + 1)

/*
 * Writes the path of a chunk's stored form, relative to the store's
 * directory, into out: flags MF_ZSTD gives the ".z" name, anything else
 * the ".r" one. Returns out.
 */
char *mc_cas_path(const uint8_t sha256[32], uint8_t flags, char out[MC_CAS_PATH_LEN]);

/*
 * Reads the stored bytes of one form of a chunk (flags MF_ZSTD or 0) from
 * the store whose directory is open as dir_fd, into buf (cap bytes).
 * Symbolic links are not followed. Returns 0 with the length in *len,
 * -ENOENT when that form is not stored, -EFBIG when it is longer than cap,
 * -EIO when the name is not a regular file or the read fails, or -errno.
 * The bytes are not checked against the hash: the caller does that after
 * decoding, as it does for a data file.
 */
int mc_cas_read(int dir_fd, const uint8_t sha256[32], uint8_t flags, void *buf, size_t cap,
                size_t *len);

#endif
