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
	int zstd_level;      /* 0 = default (3) */
	unsigned threads;    /* compression/hash workers; 0 = number of CPUs */
	/* Called from the calling thread now and then; may be NULL. */
	void (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
	void *progress_ctx;
	/* Set non-zero (e.g. from a signal) to stop; partial files are removed. */
	volatile int *stop;
	/*
	 * Optional chunk sink (both set, or both NULL): the chunks go into a
	 * shared content-addressed store instead of STORE_DIR/data, which is
	 * then not written. Chunks are keyed by the SHA-256 of their raw bytes;
	 * zero chunks are never looked up or put.
	 *
	 * lookup returns 1 when the store holds the chunk, with its stored form
	 * in *flags (MF_ZSTD or 0) and *stored_len; prepare then neither
	 * compresses nor puts it and copies that form into the manifest. It
	 * returns 0 when the store lacks the chunk, or a negative errno-style
	 * code, which fails the prepare. It is called from the worker threads,
	 * several at once, and from the calling thread: it must be thread-safe.
	 *
	 * put stores one chunk's stored bytes (a zstd frame when flags is
	 * MF_ZSTD, else the raw bytes) and returns 0 once they are stored (how
	 * and when they become durable is the sink's business: its owner makes
	 * them so before relying on the manifest), or a negative errno-style
	 * code, which fails the prepare. Once put returned 0, lookup must find
	 * the chunk. It is called only from the calling thread (the one that
	 * retires chunks in image order), never twice for one hash in one run,
	 * and only after a lookup of that hash from the same thread returned
	 * 0. -EEXIST means "the store now holds this chunk in another stored
	 * form" (another import won a race): prepare looks it up again and uses
	 * that form.
	 *
	 * Chunks put before a failure stay in the store; they are garbage for
	 * its owner to collect.
	 */
	int (*lookup)(void *ctx, const uint8_t sha256[32], uint8_t *flags, uint32_t *stored_len);
	int (*put)(void *ctx, const uint8_t sha256[32], uint8_t flags, const void *stored,
	           uint32_t stored_len);
	void *sink_ctx;
};

struct mc_prepare_stats {
	uint64_t image_size; /* raw bytes */
	uint32_t chunk_count;
	uint32_t zero_chunks;
	uint32_t zstd_chunks;
	uint64_t stored_bytes; /* sum of stored chunk lengths (the manifest's data_size) */
	uint8_t image_sha256[32];
	uint32_t reused_chunks;    /* chunks the sink's lookup found (0 without a sink) */
	uint64_t new_stored_bytes; /* bytes written: to the data file, or passed to put */
};

/*
 * Turns IMAGE (raw, sparse or not, or qcow2, detected by its magic) into a
 * prepared version in STORE_DIR (created if missing; must not already hold
 * a manifest): STORE_DIR/data holds the stored chunks back to back,
 * STORE_DIR/manifest the manifest (see manifest.h), written last and
 * atomically, so a store with a manifest is always complete. With a chunk
 * sink (o->put), the chunks go to the sink instead and STORE_DIR gets only
 * the manifest, in the same format: offsets run as if the data file
 * existed. Returns 0, or a negative errno-style code with a one-line reason
 * in err.
 */
int mc_prepare(const char *image, const char *store_dir, const struct mc_prepare_opts *o,
               struct mc_prepare_stats *st, char *err, size_t errsz);

/* ---- send and receive ------------------------------------------------ */

#define MC_DEFAULT_GROUP "239.192.77.1"
#define MC_DEFAULT_PORT 7770
#define MC_DEFAULT_RATE 1000000000ull /* bits per second */
#define MC_MAX_KEY 256

/* Why a receiver failed or was dropped (STATUS code, DROP code). */
enum mc_fail {
	MC_OK = 0,
	MC_FAIL_TIMEOUT = 1,       /* no report from it for too long */
	MC_FAIL_TOO_SLOW = 2,      /* its path cannot take the floor rate */
	MC_FAIL_IO = 3,            /* its disk failed */
	MC_FAIL_NOSPACE = 4,       /* its disk is full */
	MC_FAIL_IMAGE_HASH = 5,    /* whole-image hash mismatch after all chunks verified */
	MC_FAIL_SENDER_GONE = 6,   /* the sender ended or went silent */
	MC_FAIL_INTERRUPTED = 7,   /* stopped by a signal */
	MC_FAIL_MANIFEST = 8,      /* manifest invalid or not authentic */
	MC_FAIL_SESSION_ENDED = 9, /* the session ended before it was complete */
	MC_FAIL_INTERNAL = 10,
	MC_FAIL_FULL = 11, /* the session has as many receivers as it takes */
};
const char *mc_fail_str(int code);

enum mc_rx_view_state {
	MC_V_JOINING,
	MC_V_READY,
	MC_V_RECEIVING,
	MC_V_DONE,
	MC_V_FAILED,
	MC_V_DROPPED
};
const char *mc_view_state_str(int s);

/* What the sender knows of one receiver, for progress and results. */
struct mc_rx_view {
	uint32_t rid;
	char name[65];
	char addr[32]; /* "a.b.c.d:port" */
	int state;     /* enum mc_rx_view_state */
	int code;      /* enum mc_fail when FAILED or DROPPED */
	uint32_t chunks_done, chunks_needed;
	uint64_t bytes;
	uint16_t loss_permille;
	uint32_t delay_us;
	bool lagging;      /* served after the others */
	double joined_s;   /* since the session started */
	double finished_s; /* 0 until done/failed/dropped */
};

struct mc_send_status {
	double elapsed_s;
	int state;           /* enum mc_sstate (proto.h): waiting, sending, ending */
	uint64_t rate_bps;   /* current pacing rate */
	uint64_t wire_bytes; /* UDP payload bytes sent + 42 per packet */
	uint64_t data_pkts, parity_pkts, control_pkts;
	uint64_t image_size, chunk_count;
	unsigned nrx;
	const struct mc_rx_view *rx; /* nrx entries, valid during the callback */
	uint64_t bad_pkts, forged_pkts;
};

struct mc_send_opts {
	const char *store_dir;
	/*
	 * Optional: the content-addressed chunk store (cas.h, docs/chunkstore.md)
	 * that holds the chunks. STORE_DIR then needs only its manifest, and each
	 * chunk's stored bytes are read from CHUNKS_DIR/ab/<sha256>.z or .r
	 * instead of STORE_DIR/data. NULL: STORE_DIR/data.
	 */
	const char *chunks_dir;
	const char *ifname;     /* NULL: chosen by the routing table */
	const char *group;      /* dotted IPv4 multicast group; NULL = default */
	uint16_t port;          /* 0 = default */
	uint64_t rate_cap;      /* bits per second; 0 = default */
	uint64_t rate_floor;    /* 0 = cap / 100 */
	unsigned min_receivers; /* start when this many are ready; 0 = 1 */
	unsigned wait_ms;       /* longest wait for min_receivers; 0 = 60 s */
	unsigned rx_timeout_ms; /* drop a silent receiver after; 0 = 10 s */
	unsigned ttl;           /* 0 = 1 */
	bool loop;              /* IP_MULTICAST_LOOP, for receivers on this host */
	uint32_t session;       /* 0 = random */
	const uint8_t *key;
	size_t keylen;
	/* Called about every 250 ms and at the end from the sending thread. */
	void (*status)(void *ctx, const struct mc_send_status *st);
	void *ctx;
	volatile int *stop; /* set non-zero (e.g. from a signal) to end the session */
};

/*
 * Runs one sending session to its end. Returns 0 when at least one receiver
 * took part and every receiver completed and verified; 1 when some failed or
 * were dropped (the final status callback lists them); a negative errno-style
 * code with a reason in err when the session could not run at all, or when
 * a chunk that a receiver needed could not be read (-ENOENT: missing from
 * the chunk store; -EFBIG: its file has the wrong length; -EIO: a short data
 * file or a read error). In that last case the session is ended at once:
 * every busy receiver is dropped with a reason naming the chunk, and err
 * names its index and file.
 */
int mc_send(const struct mc_send_opts *o, char *err, size_t errsz);

struct mc_recv_status {
	double elapsed_s;
	int state; /* enum mc_rstate (proto.h) */
	uint32_t session;
	uint32_t chunks_done, chunks_needed, chunks_total;
	uint64_t image_size;
	uint8_t image_sha256[32]; /* from the manifest, once known */
	uint64_t bytes;           /* DATA payload bytes received */
	uint64_t useful_bytes;    /* of which went into a chunk that needed it */
	uint64_t seeded_chunks;   /* taken from the seed or the journal */
	uint64_t rx_pkts, dup_pkts, bad_pkts, forged_pkts, hash_failures, nacks_sent;
	double rate_bps;    /* received payload, recent */
	double eta_s;       /* -1 when unknown */
	int code;           /* enum mc_fail when FAILED */
	const char *reason; /* text for the failure, or NULL */
};

struct mc_recv_opts {
	const char *output;
	const char *ifname;
	const char *group;
	uint16_t port;
	const char *seed; /* older image to take matching chunks from, or NULL */
	bool resume;
	const char *name;    /* shown by the sender; NULL = host name */
	unsigned timeout_ms; /* give up when the sender is silent this long; 0 = 30 s */
	unsigned threads;    /* verification workers; 0 = 2 */
	uint32_t session;    /* accept only this session; 0 = the first heard */
	/*
	 * Optional: the SHA-256 of the manifest (32 bytes) the session must
	 * carry. Without a key the ANNOUNCE carries that digest, and a session
	 * announcing another one is ignored as a foreign session (the timeout
	 * applies as when nothing is heard, and its reason says that another
	 * manifest was heard). With a key the ANNOUNCE carries an HMAC that
	 * cannot be compared with a plain digest, so the check is made on the
	 * assembled manifest instead, and a mismatch fails with
	 * MC_FAIL_MANIFEST: a session with this receiver's key (and, when
	 * given, session id) but another manifest is a misconfiguration, not a
	 * neighbour. NULL: any manifest.
	 */
	const uint8_t *manifest_sha256;
	const uint8_t *key;
	size_t keylen;
	void (*status)(void *ctx, const struct mc_recv_status *st);
	void *ctx;
	volatile int *stop;
};

/*
 * Receives one image into o->output. Returns 0 only when the whole image is
 * there under its final name and its hash matched; otherwise a positive enum
 * mc_fail code (reason in err), or a negative errno-style code when it could
 * not start.
 */
int mc_receive(const struct mc_recv_opts *o, char *err, size_t errsz);

#endif
