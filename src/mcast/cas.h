/*
 * The on-disk layout of a content-addressed chunk store, as mlserver's
 * library keeps it (docs/chunkstore.md), and a reader of it. It lives in
 * libmlcast so that everything that reads a version's chunks from such a
 * store -- `mlcast unpack --chunks`, the sender (chunkrd.h) -- and the
 * server's writer (src/server/chunks.c) share one definition of where a
 * chunk lives, while libmlcast stays independent of the server. A minimal
 * writer (mc_cas_lookup, mc_cas_put) serves `mlcast prepare --chunks`:
 * the same files as the server's, without its locks, holds or GC.
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

/* The longest stored form a manifest can name (MF_MAX_CHUNK + 1024). */
#define MC_CAS_MAX_STORED (16u * 1024 * 1024 + 1024)

/*
 * Whether the store holds a chunk: 1 with its form in *flags (MF_ZSTD when
 * both forms are there, like the server's lookup) and its length in
 * *stored_len, 0 when it holds neither, or -errno; -EIO for a name that is
 * not a regular file of 1 .. MC_CAS_MAX_STORED bytes. Only fstatat() calls:
 * safe from any thread.
 */
int mc_cas_lookup(int dir_fd, const uint8_t sha256[32], uint8_t *flags, uint32_t *stored_len);

/*
 * Stores one form of a chunk (flags MF_ZSTD or 0; len 1 .. MC_CAS_MAX_STORED)
 * as the server's put does (docs/chunkstore.md, "Put"): creates the fan-out
 * directory (0750), writes DIR/ab/.tmp.<16 hex> (0640), fsyncs it, links it
 * to its name (link never replaces a name, so a chunk file is complete from
 * the moment it has its name) and removes the temp name. Returns 0 once
 * stored, or when that form is already held with that length; -EEXIST when
 * the other form, or this form with another length, is held; -EINVAL for
 * bad arguments; or -errno. The names are not made durable: the writer
 * syncs the store's file system once after its last put (syncfs).
 */
int mc_cas_put(int dir_fd, const uint8_t sha256[32], uint8_t flags, const void *buf, size_t len);

#endif
