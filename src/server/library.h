/*
 * mlserver's image library (docs/library.md): it owns, under DATA_DIR,
 *
 *   chunks/                 the content-addressed chunk store (chunks.h)
 *   versions/<id>/manifest  one directory per image version, named by the
 *                           version row's id, holding its manifest
 *   uploads/<id>.part       uploads being received
 *   library.lock            held exclusively while a server runs
 *
 * and runs the imports: a queue served by [library] imports_max worker
 * threads, each turning one raw or qcow2 image into a version through
 * mc_prepare() with the chunk store as its sink.
 *
 * The database is the truth about versions; the library keeps the files in
 * agreement with it (docs/chunkstore.md, "Crash consistency"): a row is
 * 'ready' only after its manifest and chunks are durable; a row is deleted
 * before its directory; at start every 'importing' row becomes 'failed'
 * and every directory without a 'ready' row goes.
 *
 * The API handlers (api_images.c) own the rows' creation and deletion in
 * their transactions; the library updates an importing row to 'ready' or
 * 'failed' when its import ends. Locking: the library's mutex is never
 * held across a store call, so a handler may call the library inside a
 * transaction. Every function may be called from any thread.
 */
#ifndef ML_LIBRARY_H
#define ML_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv;
struct library;
struct library_upload;
struct chunks_gc_stats;

/* The error of a row whose import the server's stop cut short. */
#define LIBRARY_INTERRUPTED "interrupted: the server stopped during the import"

/*
 * Opens the library of srv (srv->conf, srv->store must be open): creates
 * the directories, takes library.lock (-EBUSY when another mlserver uses
 * the data directory), opens the chunk store, recovers from a crash
 * (rows, directories, uploads; each step logged and in the audit log) and
 * starts the import workers. Returns 0 and *out, or -errno with a one-line
 * reason in err.
 */
int library_open(struct srv *srv, struct library **out, char *err, size_t errsz);

/*
 * Stops the library: running imports are stopped (mc_prepare's stop flag)
 * and, like queued ones, marked failed with LIBRARY_INTERRUPTED; then the
 * workers end. Call it after the HTTP front end stopped (no upload is
 * running) and before the store closes. Accepts NULL.
 */
void library_free(struct library *lib);

/*
 * Checks a path import's source and opens it: absolute, existing, a
 * regular file or block device, readable, not empty, under one of
 * [library] import_roots after every symbolic link is resolved, not inside
 * the data directory, and not a qcow2 image that names another file.
 * Returns 0 with an open descriptor in *fd (the caller passes it to
 * library_import() or closes it) and the resolved path in resolved, or a
 * negative code (-EINVAL, -ENOENT, -EACCES, -EPERM ...) with a one-line
 * reason for the client in why.
 */
int library_check_path(struct library *lib, const char *path, int *fd, char *resolved, size_t rsz,
                       char *why, size_t whysz);

/*
 * Queues the import of the image open as fd (raw or qcow2; the library
 * takes the descriptor, also on failure) into version id, whose row must
 * be committed in state 'importing'. source names the image in messages.
 * Returns 0; or -ESHUTDOWN while the library stops, -ENOMEM, after marking
 * the row failed.
 */
int library_import(struct library *lib, int64_t id, int fd, const char *source);

/*
 * Marks an importing row failed with reason (finished_at now, an audit
 * record) and removes the version's directory. Returns 0 or a store code.
 */
int library_fail(struct library *lib, int64_t id, const char *reason);

/*
 * An upload into version id (its row committed in state 'importing'):
 * begin creates DATA_DIR/uploads/<id>.part after checking that declared
 * bytes (-1: unknown) fit the file system (-ENOSPC) and [api] upload_max
 * (-EFBIG); write appends the next bytes (all-zero blocks become holes),
 * -EFBIG past upload_max, -ENOSPC when the disk fills; commit queues the
 * import of the file, whose name is removed at once (the import reads it
 * through its descriptor, so nothing is left behind whatever happens), and
 * refuses an empty upload (-ENODATA); abort removes the file and marks the
 * row failed with reason. commit and abort free u, also on failure (commit
 * then marks the row failed). Each returns 0 or a negative code.
 */
int library_upload_begin(struct library *lib, int64_t id, int64_t declared,
                         struct library_upload **out);
/* The checks of begin alone, before a row is made: 0, -EFBIG or -ENOSPC. */
int library_upload_check(struct library *lib, int64_t declared);
int library_upload_write(struct library_upload *u, const void *buf, size_t n);
int library_upload_commit(struct library_upload *u);
void library_upload_abort(struct library_upload *u, const char *reason);
/* Bytes received so far. */
uint64_t library_upload_bytes(const struct library_upload *u);

/*
 * The progress of an importing version: 1 with *frac in 0..1 and *phase
 * ("uploading", "queued" or "importing"); 0 when the library does not
 * track it (not importing, or between its row's commit and its queueing).
 */
int library_progress(struct library *lib, int64_t id, double *frac, const char **phase);

struct library_usage {
	uint64_t chunks;       /* chunk files in the store */
	uint64_t stored_bytes; /* their sizes */
	uint64_t free_bytes;   /* free space of the data directory's file system */
	unsigned imports_running, imports_queued, uploads_running;
};
/* Walks the chunk store (one stat per chunk) and counts the work in progress. */
int library_usage(struct library *lib, struct library_usage *u);

/*
 * Garbage collection (docs/chunkstore.md): refuses with -EBUSY while an
 * import or a verification holds the store (it does not wait); otherwise
 * collects the live set from the manifests of every ready or importing
 * version, under the store's lock so that no delete commits meanwhile, and
 * removes every other chunk. A ready version whose manifest cannot be read
 * fails the whole GC (nothing is removed), with the reason in err. Fills
 * *st; returns 0 or a negative code.
 */
int library_gc(struct library *lib, struct chunks_gc_stats *st, char *err, size_t errsz);

struct library_verify {
	uint64_t chunks_checked; /* every chunk of the manifest, zero chunks included */
	uint32_t *bad;           /* indexes of chunks missing or not matching (malloc'ed) */
	size_t nbad;
	bool image_ok; /* the whole-image SHA-256 of the chunks read matches */
};
/*
 * Re-reads every chunk of ready version id from the store, decodes it and
 * checks it against its manifest entry, and the whole image against the
 * image hash, under a hold (a GC waits meanwhile). Returns 0 with *v
 * filled (free it with library_verify_free), or a negative code with the
 * reason in err (-ENOENT: no manifest).
 */
int library_verify(struct library *lib, int64_t id, struct library_verify *v, char *err,
                   size_t errsz);
void library_verify_free(struct library_verify *v);

/*
 * Removes version id's directory, after its row's deletion was committed
 * (rows first, files second). Returns 0 or -errno (logged).
 */
int library_remove_version(struct library *lib, int64_t id);

/* DATA_DIR/chunks and DATA_DIR/versions/<id> (into out); for tests and tools. */
const char *library_chunks_dir(const struct library *lib);
int library_version_dir(const struct library *lib, int64_t id, char *out, size_t outsz);

/*
 * Checks the first bytes of an image (at least LIBRARY_QCOW2_HDR of them
 * when the file is that long): 0 when it is not qcow2, or a qcow2 image
 * that reads no other file; -EINVAL with a reason in *why when it is a
 * qcow2 image with a backing file or an external data file, which the
 * conversion would read from outside the import's source. No I/O.
 */
#define LIBRARY_QCOW2_HDR 104
int library_qcow2_check(const uint8_t *hdr, size_t len, const char **why);

#endif
