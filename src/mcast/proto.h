/*
 * mlcast wire format: every packet starts with a 12-byte header
 *
 *   u16 magic 0x4D43 ("MC")  u8 version (1)  u8 type  u32 session  u32 seq
 *
 * followed by a type-specific body, all big-endian. With a key, every packet
 * but DATA and MANIFEST ends with a 16-byte tag, the first 16 bytes of
 * HMAC-SHA-256(key, all bytes before the tag). DATA is protected by the
 * chunk hashes of the authenticated manifest instead. See
 * docs/mcast-protocol.md for the state machines.
 */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_MAGIC 0x4D43
#define MC_VERSION 1
#define MC_HDR_LEN 12
#define MC_DATA_HDR_LEN 24
#define MC_SYM 1440     /* symbol (payload) size of DATA */
#define MC_MAX_PKT 1472 /* largest UDP payload on a 1500-byte MTU */
#define MC_TAG_LEN 16
#define MC_MAX_NAME 64
#define MC_MAX_NACK 160       /* entries per NACK or REPAIR_ADV packet */
#define MC_MAX_NEED_BITS 8192 /* chunks per NEED packet */
#define MC_BLOCK_WHOLE 0xFFFF /* NACK/ADV block value: the whole chunk */
#define MC_MAX_TEXT 160

enum mc_type {
	/* sender -> group */
	MC_DATA = 1,
	MC_ANNOUNCE = 2,
	MC_MANIFEST = 3,
	MC_POLL = 4,
	MC_REPAIR_ADV = 5,
	MC_END = 6,
	/* receiver -> sender (unicast) */
	MC_HELLO = 16,
	MC_NEED = 17,
	MC_NACK = 18,
	MC_STATUS = 19,
	/* sender -> one receiver (unicast) */
	MC_WELCOME = 32,
	MC_NEED_ACK = 33,
	MC_DONE_ACK = 34,
	MC_DROP = 35,
};

/* Sender states in ANNOUNCE. */
enum mc_sstate { MC_S_WAITING = 1, MC_S_SENDING = 2, MC_S_ENDING = 3 };

/* Receiver states in STATUS. */
enum mc_rstate {
	MC_R_MANIFEST = 1, /* waiting for the manifest */
	MC_R_SEEDING = 2,  /* hashing its seed or journal */
	MC_R_RECEIVING = 3,
	MC_R_VERIFYING = 4, /* all chunks in, whole-image hash running */
	MC_R_DONE = 5,
	MC_R_FAILED = 6,
};

/* ANNOUNCE flags. */
#define MC_AF_AUTH 0x01

/* HELLO flags. */
#define MC_HF_HAVE_MANIFEST 0x01
#define MC_HF_RESUMED 0x02

/* NEED flags. */
#define MC_NF_LAST 0x01

struct mc_hdr {
	uint8_t type;
	uint32_t session;
	uint32_t seq;
};

struct mc_data {
	uint32_t chunk;
	uint16_t block;
	uint8_t sym; /* symbol index within the block: < k source, >= k parity */
	uint8_t flags;
	uint32_t tx_us; /* sender's clock (realtime, microseconds, truncated) */
	const uint8_t *payload;
	uint16_t len;
};

struct mc_announce {
	uint8_t state;
	uint8_t flags;
	uint16_t sym_size;
	uint16_t report_ms; /* receivers send STATUS this often */
	uint16_t nreceivers;
	uint32_t rate_kbps;
	uint32_t chunk_count;
	uint64_t image_size;
	uint32_t manifest_len;
	uint8_t manifest_digest[32]; /* SHA-256, or HMAC-SHA-256 with a key */
};

struct mc_manifest_frag {
	uint32_t total;
	uint32_t offset;
	const uint8_t *payload;
	uint16_t len;
};

struct mc_poll {
	uint32_t sweep;  /* completed sweeps over the chunks */
	uint32_t cursor; /* chunk the sweep has reached */
	uint16_t backoff_ms;
	uint16_t round;
};

struct mc_entry {
	uint32_t chunk;
	uint16_t block; /* MC_BLOCK_WHOLE for the whole chunk */
	uint16_t count; /* symbols still needed (NACK) or to be sent (ADV) */
};

struct mc_list { /* NACK (rid set) and REPAIR_ADV (rid 0) */
	uint32_t rid;
	uint16_t round;
	uint16_t n;
	struct mc_entry e[MC_MAX_NACK];
};

struct mc_hello {
	uint32_t rid;
	uint32_t nonce; /* new for every receiver process: tells a restart from a resend */
	uint8_t flags;
	uint8_t namelen;
	char name[MC_MAX_NAME + 1]; /* NUL-terminated copy, escaped before logging */
};

struct mc_need {
	uint32_t rid;
	uint32_t first;
	uint16_t nbits;
	uint8_t flags;
	const uint8_t *bits; /* (nbits + 7) / 8 bytes, LSB first */
};

struct mc_status {
	uint32_t rid;
	uint8_t state;
	uint8_t code;           /* failure code when state is FAILED */
	uint16_t loss_permille; /* of DATA over the last report interval */
	uint32_t chunks_done;
	uint32_t chunks_needed;
	uint64_t bytes;     /* payload bytes received so far */
	uint32_t delay_us;  /* queueing delay over the last interval */
	uint32_t rx_pkts;   /* DATA packets received in the last interval */
	uint32_t overflows; /* packets its socket dropped for want of buffer, same interval */
};

struct mc_ack { /* WELCOME, NEED_ACK (first, nbits), DONE_ACK */
	uint32_t rid;
	uint32_t first;
	uint16_t nbits;
};

struct mc_drop {
	uint32_t rid;
	uint8_t code;
	uint8_t textlen;
	char text[MC_MAX_TEXT + 1];
};

struct mc_pkt {
	struct mc_hdr h;
	union {
		struct mc_data data;
		struct mc_announce ann;
		struct mc_manifest_frag frag;
		struct mc_poll poll;
		struct mc_list list;
		struct mc_hello hello;
		struct mc_need need;
		struct mc_status st;
		struct mc_ack ack;
		struct mc_drop drop;
		uint8_t end_code;
	} u;
};

/* Decode results beyond 0. */
#define MC_EBADPKT (-1000) /* malformed: bad magic, version, type or length */
#define MC_EBADTAG (-1001) /* authentication tag missing or wrong */

/*
 * Decodes one datagram. key (keylen > 0) means tags are required on the
 * types that carry them. Pointers in *p point into buf. Returns 0,
 * MC_EBADPKT or MC_EBADTAG. No I/O, no allocation.
 */
int mc_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen, struct mc_pkt *p);

/*
 * Encodes p into buf (cap bytes), appending a tag when keylen > 0 and the
 * type carries one. For DATA only the 24-byte header is written (the payload
 * goes in its own iovec) and the return value is the header length.
 * Returns the length written, or -ENOSPC.
 */
int mc_encode(const struct mc_pkt *p, uint8_t *buf, size_t cap, const uint8_t *key, size_t keylen);

/* The name of a packet type, for logs. */
const char *mc_type_name(uint8_t type);

/*
 * Geometry of a chunk's stored bytes on the wire: nsym source symbols of
 * MC_SYM bytes (the last one short), split into nblocks FEC blocks of at
 * most FEC_MAX_K symbols, sizes differing by at most one. Block b holds
 * source symbols [first, first + k).
 */
struct mc_geom {
	uint32_t nsym;
	uint16_t nblocks;
};
void mc_geom(uint32_t stored_len, struct mc_geom *g);
void mc_block(const struct mc_geom *g, uint16_t b, uint32_t *first, uint16_t *k);

#endif
