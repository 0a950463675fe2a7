/*
 * The content-addressed chunk store of mlserver's image library: every
 * stored chunk of every image version, once, named by the SHA-256 of its
 * raw bytes. docs/chunkstore.md describes the layout and the crash rules.
 *
 * Layout in DIR:
 *
 *   DIR/open.lock               held shared by every open handle
 *   DIR/gc.lock                 held shared by holds, exclusive by GC
 *   DIR/ab/abcd...ef.z          a chunk stored as one zstd frame
 *   DIR/ab/abcd...ef.r          a chunk stored raw
 *   DIR/ab/.tmp.0123456789abcdef  a put in progress (or a crash's leftover)
 *
 * A chunk file's name is the 64 lower-case hex digits of the raw chunk's
 * SHA-256 and a suffix that is its manifest flag (".z" for MF_ZSTD, ".r"
 * for raw); it lives in the fan-out directory named by its first two hex
 * digits. The file holds exactly the stored bytes, so its size is the
 * manifest's stored_len. A chunk file is always complete: put writes a temp
 * file in the same directory, fsyncs it and hard-links it into place, which
 * also makes "create unless it exists" atomic. The names become durable at
 * chunks_sync(), which an import calls once before it commits its version.
 *
 * One hash normally has one form. Two imports at different zstd levels that
 * put the same chunk at the same moment can leave both a ".z" and a ".r",
 * or (for ".z") the first frame wins and the second put gets -EEXIST; every
 * form on disk is complete and correct, so a manifest may name either.
 *
 * Threads: a struct chunks never changes after chunks_open(); every call
 * may run from any thread at the same time, and several processes may open
 * the same DIR. Functions return 0 (or the count documented) or a negative
 * errno-style code.
 */
#ifndef ML_CHUNKS_H
#define ML_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNKS_HASH_LEN 32
/* The largest stored form a manifest allows: a 16 MiB chunk plus zstd's margin. */
#define CHUNKS_MAX_STORED (16u * 1024 * 1024 + 1024)

struct chunks;
struct chunks_hold;
struct chunks_gc;
struct mc_prepare_opts;

/*
 * Opens the store in dir, creating dir (0750, not its parents) and the lock
 * files when missing. When no other handle has the store open (in this or
 * another process), temp files left by a crashed put are removed first;
 * *stale (may be NULL) gets how many. Returns 0 and *out, or -errno with a
 * one-line reason in err.
 */
int chunks_open(const char *dir, struct chunks **out, unsigned *stale, char *err, size_t errsz);
/* Closes the handle. Accepts NULL. Holds taken through it must be released first. */
void chunks_free(struct chunks *cs);

/*
 * Returns 1 when the store holds the chunk, with its flag (MF_ZSTD or 0) in
 * *flags and its stored length in *stored_len (either may be NULL); the
 * zstd form is reported when both exist. Returns 0 when it does not, or
 * -errno (-EIO for a chunk file that is not a regular file of a possible
 * size).
 */
int chunks_lookup(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t *flags,
                  uint32_t *stored_len);

/*
 * Stores one chunk: stored is a zstd frame when flags is MF_ZSTD, the raw
 * bytes when flags is 0, 1 to CHUNKS_MAX_STORED bytes. The bytes are not
 * checked against the hash (that is chunks_verify's job); the caller hashed
 * them. Returns 0 once the chunk file is durable and linked under its name
 * (the name is durable after chunks_sync()), also when the same form with
 * the same length was already there (put is idempotent, and two puts of
 * one chunk at once both return 0 with one file left).
 * Returns -EEXIST when the store holds the chunk in another form (the
 * other flag, or a zstd frame of another length): look it up and use that.
 * -EINVAL for bad arguments; -ENOSPC, -EIO ... from the file system.
 */
int chunks_put(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags,
               const void *stored, uint32_t stored_len);

/*
 * Reads the stored bytes of the chunk's given form (flags MF_ZSTD or 0)
 * into buf. Returns 0 with the length in *len; -ENOENT when that form is not
 * stored; -EFBIG when it is longer than cap (nothing useful in buf).
 */
int chunks_read(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags, void *buf,
                size_t cap, size_t *len);

/*
 * Checks that the chunk's given form holds what its name says: the zstd
 * frame decompresses (to at most 16 MiB, and to the size it declares) or
 * the raw bytes are taken as they are, and the SHA-256 of the result is the
 * chunk's name. Returns 0 when it does, -EBADMSG when it does not (a
 * corrupted chunk), -ENOENT when that form is not stored, -ENOMEM, -EIO.
 */
int chunks_verify(struct chunks *cs, const uint8_t sha256[CHUNKS_HASH_LEN], uint8_t flags);

/*
 * Makes every chunk name in the store durable (syncfs of its file system):
 * after a prepare through the sink and before the version is committed, so
 * that a committed version never names a chunk a crash could take away.
 * One call covers all the puts of an import, and the chunks it found that
 * a concurrent import had just put. Returns 0 or -errno (-EIO when the file
 * system reports a write-back error).
 */
int chunks_sync(struct chunks *cs);

/*
 * Counts the chunk files and sums their sizes by walking the store (one
 * fstatat per chunk: meant for a status page or after a GC, not per
 * request). Temp files and foreign files are not counted.
 */
int chunks_usage(struct chunks *cs, uint64_t *count, uint64_t *bytes);

/*
 * A hold keeps garbage collection out while it lasts. An import takes one
 * before its first lookup and keeps it until the version it made is in
 * every live set a later GC will be given (in mlserver: until the version
 * row is committed), because the chunks it looked up or put belong to no
 * manifest a GC could see until then. Holds are shared: any number of
 * imports, in any processes, at once. chunks_hold() waits while a GC runs
 * (from chunks_gc_begin() to chunks_gc_end(): a read of the versions and
 * one directory walk). Returns 0 and *out, or -errno.
 */
int chunks_hold(struct chunks *cs, struct chunks_hold **out);
/* Ends a hold. Accepts NULL. A process that dies loses its holds. */
void chunks_release(struct chunks_hold *h);

/*
 * Builds a live set from manifest files (src/mcast/manifest.h): the hash
 * of every chunk that is not MF_ZERO, sorted ascending (memcmp order)
 * without duplicates, in a new array (*out, caller frees; NULL when *nout
 * is 0). Any manifest that cannot be loaded fails the whole call (-errno or
 * -EINVAL, with the path and reason in err): a GC must never run on a live
 * set that lacks a version.
 */
int chunks_live_collect(const char *const *manifests, size_t n, uint8_t (**out)[CHUNKS_HASH_LEN],
                        size_t *nout, char *err, size_t errsz);
/* Sorts hashes ascending and drops duplicates, updating *n: makes any list a live set. */
void chunks_live_sort(uint8_t (*hashes)[CHUNKS_HASH_LEN], size_t *n);

struct chunks_gc_stats {
	uint64_t removed;     /* chunk files removed */
	uint64_t freed_bytes; /* their sizes */
	uint64_t kept;        /* chunk files whose hash is live */
	uint64_t kept_new;    /* dead, but linked into place after the GC began */
};

/*
 * Garbage collection in three steps, because the live set must be read
 * after the imports are locked out, or an import that committed between
 * "read the versions" and "sweep" would lose the chunks it reused:
 *
 *   chunks_gc_begin(cs, wait, &gc);    imports are now locked out
 *   ...read the committed versions, chunks_live_collect(their manifests)...
 *   chunks_gc_sweep(gc, live, nlive, &st);
 *   chunks_gc_end(gc);                 imports may hold again
 *
 * chunks_gc_begin() takes gc.lock exclusively: with wait, it waits for the
 * holds to end (new holds wait for the GC); without, it returns -EBUSY when
 * any hold exists. It also notes the GC's start: the time the file system
 * stamps on gc.lock. Returns 0 and *out, or -errno.
 */
int chunks_gc_begin(struct chunks *cs, bool wait, struct chunks_gc **out);

/*
 * Removes every chunk file whose hash is not in live (nlive hashes sorted
 * ascending without duplicates, as chunks_live_collect() makes; -EINVAL
 * otherwise, before anything is removed). As a second guard, a chunk file
 * whose status-change time (set when put links it into place) is not older
 * than the GC's start is never removed, so a put made without a hold while
 * the GC ran keeps its chunk. Temp files and foreign files are left alone.
 * May be called more than once per GC. Fills *st (may be NULL), also on a
 * partial failure (then it returns the first -errno).
 */
int chunks_gc_sweep(struct chunks_gc *gc, const uint8_t (*live)[CHUNKS_HASH_LEN], size_t nlive,
                    struct chunks_gc_stats *st);

/* Ends the GC and lets holds in. Accepts NULL. */
void chunks_gc_end(struct chunks_gc *gc);

/*
 * Points o's chunk sink (lookup, put, sink_ctx) at the store, for
 * mc_prepare(): lookup is chunks_lookup(), put is chunks_put(). The caller
 * holds a chunks_hold for the prepare and until the version is committed,
 * and calls chunks_sync() between the prepare and the commit.
 */
void chunks_sink(struct chunks *cs, struct mc_prepare_opts *o);

#endif
