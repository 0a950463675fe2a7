/* The sender's private state, shared by sender.c (control) and sender_tx.c (data). */
#ifndef MC_SENDER_H
#define MC_SENDER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bitmap.h"
#include "chunkrd.h"
#include "fec.h"
#include "manifest.h"
#include "mlcast.h"
#include "proto.h"
#include "ratectl.h"

#define SND_BATCH 32
#define SND_WIRE_OVERHEAD 42 /* Ethernet, IPv4 and UDP headers per packet */
#define SND_MAX_RX 4096      /* receivers in one session */

struct snd_rx {
	uint32_t rid;
	uint32_t nonce; /* of the receiver process that said HELLO */
	struct sockaddr_in addr;
	struct mc_rx_view v;
	bool have_manifest;
	bool ready; /* sent its last NEED */
	bool done_reported;
	struct rc_peer rc;
	uint8_t lag_votes;      /* consecutive reports pointing one way */
	uint64_t cong_since_ms; /* reporting congestion since; 0 if not */
	uint64_t last_heard_ms, joined_ms;
	uint64_t drop_sent_ms;
};

struct snd_ctl { /* a unicast packet waiting for a batch slot */
	struct sockaddr_in to;
	uint16_t len;
	uint8_t buf[MC_MAX_PKT];
};

enum snd_slot_state {
	SND_SLOT_EMPTY,   /* never used */
	SND_SLOT_LOADING, /* queued for or being read by the reader thread */
	SND_SLOT_READY,   /* holds the chunk's stored bytes */
	SND_SLOT_FAILED,  /* the read failed: err says why */
};

struct snd_slot {          /* one cached chunk */
	uint8_t *buf;      /* slot_cap bytes */
	uint32_t chunk;    /* UINT32_MAX when empty */
	_Atomic int state; /* enum snd_slot_state */
	uint64_t used;     /* rd_tick at the last use: the oldest is reused first */
	uint64_t pin;      /* batch_gen of its last packet: in use while equal */
	int rc;            /* FAILED: the reader's code */
	char err[512];     /* FAILED: the reader's reason */
};

struct snd {
	const struct mc_send_opts *o;
	struct manifest m;
	uint8_t *mf_bytes;
	size_t mf_len;
	/*
	 * The chunk cache (sender_rd.c): a reader thread reads the stored chunks
	 * ahead of the sweep, from the data file or the chunk store, so that
	 * disk reads never stall sending.
	 */
	struct mc_chunkrd *rd;
	struct snd_slot *slots;
	unsigned nslots;
	unsigned rd_ahead;  /* chunks read ahead of the sweep */
	size_t slot_cap;    /* the longest stored chunk */
	int32_t *slot_of;   /* per chunk: the slot that holds it, or -1 */
	uint64_t rd_tick;   /* counts uses, for choosing the slot to reuse */
	uint64_t batch_gen; /* counts batches sent: pins a slot to the unsent one */
	bool rd_waiting;    /* a packet waited for a chunk being read */
	bool starved;       /* the last fill stopped for that: sleep briefly */
	int rd_ret;         /* a needed chunk could not be read: the session fails */
	uint32_t rd_chunk;  /* which one */
	char rd_err[512];
	uint64_t end_not_before_ms; /* END waits for the drops of a failed session */
	/* The reader thread's queue of slot indices, under rd_mu. */
	pthread_mutex_t rd_mu;
	pthread_cond_t rd_cv;
	unsigned *rd_q;
	unsigned rd_qhead, rd_qlen;
	bool rd_stop;
	bool rd_sync; /* rd_mu and rd_cv exist */
	pthread_t rd_thread;
	bool rd_started;
	int fd;
	struct sockaddr_in group;
	uint32_t session, seq;
	uint64_t t0_ms;
	int state; /* enum mc_sstate */

	struct snd_rx *rx;
	unsigned nrx, caprx;
	bool rx_cap_logged;
	struct mc_rx_view *views;

	struct ratectl rc;
	double tokens; /* bytes */
	uint64_t tokens_ns;

	/* Per chunk: where its blocks start in the per-block arrays. */
	uint32_t *blk_base; /* chunk_count + 1 entries */
	uint32_t nblk;
	uint8_t *next_idx;        /* per block: next symbol index to send as repair */
	uint16_t *repair_pending; /* per block: symbols asked for, not yet sent */
	struct bitmap repair_queued;
	uint32_t *rq; /* ring of block numbers with pending repairs */
	uint32_t rq_head, rq_len;

	/* The sweep: chunks demanded whole, sent in order, cyclically. */
	struct bitmap demand;
	uint32_t sweep, cursor;
	bool emitting;     /* a chunk is being emitted at cursor */
	uint32_t emit_pos; /* position in the interleaved symbol order */
	uint32_t emit_rounds;
	uint16_t emit_parity; /* proactive parity per block for this chunk */
	uint16_t poll_round;

	/* Manifest fragments while a receiver lacks the manifest. */
	uint32_t mf_off;
	unsigned slot_tick;

	struct mc_list adv;
	uint64_t adv_first_ms;

	struct snd_ctl *ctlq;
	unsigned nctl, capctl;

	struct fec *fec[FEC_MAX_K + 1];
	uint8_t *pad; /* MC_SYM scratch: a chunk's last, short source symbol */

	/* Batch under construction. */
	struct mmsghdr msgs[SND_BATCH];
	struct iovec iov[SND_BATCH][2];
	uint8_t hdr[SND_BATCH][MC_MAX_PKT];
	struct sockaddr_in to[SND_BATCH]; /* unicast destinations */
	uint8_t *parity[SND_BATCH];       /* MC_SYM each */
	unsigned nbatch;
	bool no_gso; /* the kernel refused UDP GSO: plain sendmmsg */
	uint64_t batch_bytes;

	struct mc_send_status st;
	uint64_t last_ann_ms, last_poll_ms, last_tick_ms, last_status_ms, last_check_ms;
	uint32_t last_poll_cursor, last_poll_sweep;
	uint16_t loss_est; /* per mille: proactive parity follows this */
};

/* sender_tx.c */
int snd_tx_init(struct snd *s);
void snd_tx_free(struct snd *s);
/* Fills the batch with up to max packets by priority; returns how many. */
unsigned snd_fill(struct snd *s, unsigned max, uint64_t now_ms);
/* Queues a unicast control packet. */
void snd_queue_ctl(struct snd *s, const struct sockaddr_in *to, const struct mc_pkt *p);
/* Appends a multicast control packet to the batch (no tokens needed). */
void snd_batch_mcast(struct snd *s, const struct mc_pkt *p);
/* Adds a repair request for block (chunk, block) of count symbols. */
void snd_want_repair(struct snd *s, uint32_t chunk, uint16_t block, uint16_t count);
bool snd_has_work(const struct snd *s);

/* sender_rd.c: the chunk cache */
/* Sizes the cache and starts the reader thread. Returns 0 or -ENOMEM / -EAGAIN. */
int snd_rd_init(struct snd *s);
/* Stops the reader thread and frees the cache; safe after a failed init. */
void snd_rd_free(struct snd *s);
/* Queues chunk c and the demanded chunks after it (cyclically) for reading. */
void snd_rd_ahead(struct snd *s, uint32_t c);
/*
 * The stored bytes of chunk c, valid until the batch is sent, or NULL when
 * they are not read yet (the read is queued and rd_waiting set) or could
 * not be read (rd_ret and rd_err then hold the session's error).
 */
const uint8_t *snd_rd_get(struct snd *s, uint32_t c);
/* The stored bytes of chunk c when they are cached and read, else NULL; no side effects but the
 * use. */
const uint8_t *snd_rd_peek(struct snd *s, uint32_t c);

#endif
