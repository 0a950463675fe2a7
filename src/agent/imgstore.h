/*
 * The agent's local image store: the deployed versions of each image on a
 * workstation, one of them active, the one before kept for rollback. The
 * layout, the state machine and the crash rules are in docs/agent-store.md;
 * in short:
 *
 *   DIR/lock                            flock'ed by the one open handle
 *   DIR/images/<image>/v<version>/disk.raw   a complete, verified image
 *   DIR/images/<image>/v<version>/meta       its record (imgstore_meta)
 *   DIR/images/<image>/active           symlink to "v<version>"
 *   DIR/images/<image>/previous         symlink to "v<version>" (rollback)
 *   DIR/images/<image>/switch           a switch in progress (the intent)
 *   DIR/incoming/i<image>-v<version>-<sha256>/   a reception in progress:
 *        rx (its record), disk.raw.mlcast-part and disk.raw.mlcast-jrnl
 *        (mc_receive's), then disk.raw once mc_receive verified it
 *
 * Images and versions are the server's numeric ids (1 .. INT64_MAX); a
 * version also carries the SHA-256 of its whole image from its manifest.
 *
 * A version directory under images/ is only ever made by renaming a
 * complete reception into place, and active and previous are only ever
 * switched to complete versions, each by one rename of a symlink. A commit
 * or a rollback first writes its intent (the switch file); from then on it
 * happens even across a crash: imgstore_open() rolls an interrupted one
 * forward. So whatever step a crash interrupts, active names a complete,
 * verified version (or there is none yet), and after the next open the
 * store is as before the operation or as after it.
 *
 * Receiving goes through libmlcast:
 *
 *   imgstore_prepare(store, image, version, sha, size, NULL, &rx, ...)
 *   imgstore_rx_info(rx, &info)
 *   mc_receive() with output = info.output, seed = info.seed, resume = true
 *   imgstore_commit(rx, 0, ...)       on success: the new version is active
 *   imgstore_abort(rx)                to give it up (nothing is left)
 *   imgstore_rx_free(rx)              to stop now and resume later
 *
 * One process owns a store at a time (DIR/lock); a handle is used from one
 * thread at a time. Functions return 0 or a negative errno-style code with a
 * one-line reason in err (which may be NULL).
 */
#ifndef ML_IMGSTORE_H
#define ML_IMGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMGSTORE_SHA_HEX 65            /* 64 lower-case hex digits and a NUL */
#define IMGSTORE_MAX_ID INT64_MAX      /* image and version ids: 1 .. this */
#define IMGSTORE_MAX_SIZE (1ull << 50) /* 1 PiB: larger is a bad record */
#define IMGSTORE_META_MAX 4096         /* longest meta, rx or switch file */

struct imgstore;
struct imgstore_rx;

struct imgstore_opts {
	/* Bytes that prepare leaves free for everything else (VM overlays, logs). */
	uint64_t reserve;
	/* Acts as if the file system could not share blocks (reflinks); for tests. */
	bool no_reflink;
	/*
	 * Test hook, or NULL: called between the steps of a commit, a switch
	 * and a prune with the name of the step just done ("meta", "intent",
	 * "moved", "previous", "active", "synced", "switched", "pruning",
	 * "pruned"). A test ends the process there (fork, then _exit in the
	 * hook) to see what a crash at that point leaves.
	 */
	void (*step)(void *ctx, const char *step);
	void *step_ctx;
};

/*
 * Opens the store in dir, creating dir (not its parents), images/ and
 * incoming/ when missing, and takes DIR/lock (-EBUSY when another process
 * holds it). Then it recovers: a switch interrupted by a crash is rolled
 * forward, temporary names are removed, and of the receptions in incoming/
 * only resumable ones stay: one per image (the highest version id) whose
 * record matches its name (same image, version and SHA-256), whose version
 * is not already in images/, and which holds mc_receive's journal or the
 * whole received image. o may be NULL (no reserve, reflinks when possible).
 * Returns 0 and *out.
 */
int imgstore_open(const char *dir, const struct imgstore_opts *o, struct imgstore **out, char *err,
                  size_t errsz);
/* Closes the handle (and releases the lock). Accepts NULL. Open receptions must be freed first. */
void imgstore_free(struct imgstore *s);

/* True when the store's file system shares blocks between files (FICLONE worked at open). */
bool imgstore_reflink(const struct imgstore *s);
const char *imgstore_dir(const struct imgstore *s);

/* ---- receiving ------------------------------------------------------ */

struct imgstore_prep_opts {
	/*
	 * What the caller knows from the manifests, 0 when unknown: the raw
	 * bytes of the new version's non-zero chunks, and of those among them
	 * that differ from the chunk at the same index of the active version.
	 * They make the space check exact (see imgstore_prepare).
	 */
	uint64_t nonzero_bytes;
	uint64_t changed_bytes;
};

/*
 * Starts (or resumes) the reception of version `version` of image `image`,
 * whose whole image has SHA-256 sha256_hex (64 hex digits) and `size` bytes.
 *
 * Space is checked first: the bytes the reception will allocate, less what
 * a resumed partial file already holds, plus the store's reserve, must be
 * at most what statvfs says is available on DIR; else -ENOSPC and "not
 * enough space: need N MiB, have M MiB". The estimate: when the store can
 * reflink and there is an active version (the seed), unchanged chunks are
 * shared with it and cost nothing, so it is changed_bytes when known, else
 * the growth over the active version's size plus an eighth of size; without
 * reflinks (or without a seed) every non-zero chunk is written: nonzero_bytes
 * when known, else size. mc_receive checks again, exactly, once it has
 * compared the seed against the manifest and before it receives a byte.
 *
 * Returns 0 and *rx (owned by the caller until commit, abort or rx_free);
 * -EEXIST when this version is already in images/ (imgstore_activate makes
 * it active); -EBUSY when a reception of this image is open on this handle;
 * -EINVAL for bad arguments. A kept reception of another version of this
 * image is removed: one reception per image.
 */
int imgstore_prepare(struct imgstore *s, uint64_t image, uint64_t version, const char *sha256_hex,
                     uint64_t size, const struct imgstore_prep_opts *o, struct imgstore_rx **rx,
                     char *err, size_t errsz);

struct imgstore_rx_info {
	const char *output;    /* mc_recv_opts.output: incoming/.../disk.raw */
	const char *seed;      /* mc_recv_opts.seed: the active version's disk.raw, or NULL */
	const char *dir;       /* the reception's directory: files put here move with the version */
	uint64_t seed_version; /* the active version, 0 without a seed */
	/*
	 * True when seeded chunks will be reflinked from the seed (the store
	 * can reflink and there is a seed): mc_receive then shares their
	 * blocks with the active version instead of copying them.
	 */
	bool reflink;
	bool resumed;   /* a kept reception of this version was found: pass resume */
	bool complete;  /* it even holds the whole image: commit it (commit re-hashes it) */
	uint64_t need;  /* bytes the space check asked for (reserve included) */
	uint64_t avail; /* bytes available then */
};
/* Fills *info; its strings live as long as rx. */
void imgstore_rx_info(const struct imgstore_rx *rx, struct imgstore_rx_info *info);

#define IMGSTORE_VERIFY 1u /* commit re-hashes the image against its SHA-256 first */

/*
 * Called once mc_receive returned 0 (the image is whole and its hash
 * matched the manifest's, which the caller checked is this version's):
 * checks that disk.raw is there with its size (and, with IMGSTORE_VERIFY or
 * when prepare found it complete, its SHA-256), records it (meta), moves it
 * to images/<image>/v<version>, makes it active and the old active previous,
 * and removes every other version of the image. Frees rx in every case.
 * When the image is missing or short the reception is kept (-ENOENT, -EIO);
 * when its hash does not match it is removed (-EBADMSG). A failure after
 * the intent was written (a disk error) is finished by the next open.
 */
int imgstore_commit(struct imgstore_rx *rx, unsigned flags, char *err, size_t errsz);
/* Removes everything the reception wrote and frees rx. The active version is untouched. */
int imgstore_abort(struct imgstore_rx *rx);
/* Frees rx and keeps what was received, for a resumed reception later. Accepts NULL. */
void imgstore_rx_free(struct imgstore_rx *rx);

/* ---- switching ------------------------------------------------------ */

/* Makes previous active and active previous. -ENOENT when there is no previous. */
int imgstore_rollback(struct imgstore *s, uint64_t image, char *err, size_t errsz);
/*
 * Makes a version that is in images/ active (the old active becomes
 * previous; others are removed). Nothing to do when it is active already.
 * -ENOENT when the store does not hold it complete.
 */
int imgstore_activate(struct imgstore *s, uint64_t image, uint64_t version, char *err,
                      size_t errsz);
/*
 * Makes sure the store does not hold version `version` of image with
 * other bytes than sha256_hex (a version id the server reused). Returns 0
 * when it holds it with that SHA-256 or not at all, 1 when it held it
 * as the previous version and removed it (a switch without it, as crash-safe
 * as any), -EBUSY (with a reason) when that stale version is the active one
 * (it is never removed), or another negative code.
 */
int imgstore_drop_stale(struct imgstore *s, uint64_t image, uint64_t version,
                        const char *sha256_hex, char *err, size_t errsz);
/*
 * The active version of image: its id in *version and, when path is not
 * NULL, the path of its disk.raw (images/<image>/v<version>/disk.raw: name
 * this one, not active/disk.raw, in anything that outlives a switch, such as
 * an overlay's backing file). -ENOENT when the image has no active version;
 * -ENAMETOOLONG when path is too small.
 */
int imgstore_active(struct imgstore *s, uint64_t image, uint64_t *version, char *path,
                    size_t pathsz);

/* Re-hashes a version's disk.raw against its meta: 0, -EBADMSG, -ENOENT or -EIO. */
int imgstore_verify(struct imgstore *s, uint64_t image, uint64_t version, char *err, size_t errsz);

/* ---- listing -------------------------------------------------------- */

enum imgstore_vstate {
	IMGSTORE_ACTIVE,
	IMGSTORE_PREVIOUS,
	IMGSTORE_INACTIVE,  /* complete but neither: a prune was interrupted */
	IMGSTORE_RECEIVING, /* a kept reception in incoming/ (size and sha from its record) */
	IMGSTORE_BROKEN,    /* a version directory without a valid meta or image */
};
const char *imgstore_vstate_str(int state);

struct imgstore_version {
	uint64_t id;
	uint64_t size;      /* bytes of the image */
	uint64_t allocated; /* bytes its disk.raw occupies (shared blocks counted in full) */
	char sha256[IMGSTORE_SHA_HEX];
	int64_t received_at; /* Unix seconds; -1 when not committed */
	int state;           /* enum imgstore_vstate */
};

struct imgstore_image {
	uint64_t id;
	uint64_t active, previous; /* version ids; 0 = none */
	size_t nversions;
	struct imgstore_version *versions; /* by id */
};

struct imgstore_list {
	size_t nimages;
	struct imgstore_image *images; /* by id */
	uint64_t fs_size, fs_avail;    /* bytes, from statvfs on DIR */
	bool reflink;
};

/* Fills *l (free it with imgstore_list_free). */
int imgstore_list(struct imgstore *s, struct imgstore_list *l, char *err, size_t errsz);
void imgstore_list_free(struct imgstore_list *l);

/* ---- records (pure parsers, exposed for the fuzz harness) ------------ */

/*
 * A version's meta, and a reception's rx record (without received_at):
 * lines "key=value" with the keys image, version, sha256, size and
 * received_at; unknown keys are ignored, a repeated one is an error.
 */
struct imgstore_meta {
	uint64_t image, version, size;
	char sha256[IMGSTORE_SHA_HEX];
	int64_t received_at; /* -1 when the record has none */
};
/* Parses len bytes of text (no NUL needed). Returns 0 or -EINVAL with a reason. */
int imgstore_meta_parse(const char *text, size_t len, struct imgstore_meta *m, char *err,
                        size_t errsz);
/* Formats m into buf; returns the length, or -ENOSPC when n is too small. */
int imgstore_meta_format(const struct imgstore_meta *m, char *buf, size_t n);
/*
 * Parses a switch intent: "active=V\nprevious=P\n" (P may be 0 for none).
 * Returns 0 or -EINVAL with a reason.
 */
int imgstore_switch_parse(const char *text, size_t len, uint64_t *active, uint64_t *previous,
                          char *err, size_t errsz);

#endif
