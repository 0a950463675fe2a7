/*
 * The receiver's private state, shared by receiver.c (session and control),
 * rx_data.c (symbols in, NACKs out) and rx_work.c (verification, seeding and
 * the whole-image hash, off the network thread).
 */
#ifndef MC_RECEIVER_H
#define MC_RECEIVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bitmap.h"
#include "fec.h"
#include "journal.h"
#include "manifest.h"
#include "mlcast.h"
#include "pool.h"
#include "proto.h"

#define RX_MEM_CAP (384u << 20)     /* bytes of incomplete chunks held at once */
#define RX_HOLDOFF_MS 60            /* no second NACK for a chunk before this */
#define RX_MAX_MANIFEST (64u << 20) /* about 1.49 million chunks */

struct rblock {
	uint16_t k, have;
	uint64_t mask[4]; /* symbol indexes received */
	uint8_t npar, cappar;
	uint8_t *par;    /* received parity symbols, MC_SYM each */
	uint8_t *paridx; /* their indexes */
};

struct rchunk {
	uint32_t idx;
	uint32_t stored_len;
	uint16_t nblocks;
	uint16_t blocks_complete;
	uint8_t *buf; /* source symbols, nsym * MC_SYM */
	struct rblock *blk;
	size_t mem;
	/* Filled by the worker: */
	int result; /* 0, -EBADMSG (hash), -EIO, -ENOSPC */
};

struct rx;

struct rx_done { /* a finished job, back to the network thread */
	struct rx_done *next;
	struct rx *r;
	int kind; /* RXJ_* */
	struct rchunk *ch;
	uint32_t first, count; /* seed range */
	int fd;                /* seed: where to read */
	struct bitmap seeded;  /* seed: which chunks of the range matched */
	uint32_t *list;        /* sync: chunks to journal once the data is durable */
	int result;
};

enum { RXJ_CHUNK = 1, RXJ_SEED = 2, RXJ_SYNC = 3, RXJ_RESCAN = 4 };

enum rx_phase { RX_LISTEN, RX_JOIN, RX_SEED, RX_NEED, RX_RECEIVE, RX_VERIFY, RX_RESCAN, RX_FINAL };

struct rx {
	const struct mc_recv_opts *o;
	int data_fd, ctl_fd, ev_fd;
	struct sockaddr_in sender;
	uint32_t session, rid;
	uint32_t nonce; /* this process's, in HELLO */
	int phase;
	uint64_t t0_ms, last_heard_ms;
	uint64_t foreign_anns; /* ANNOUNCEs ignored for another manifest (manifest_sha256) */
	uint32_t foreign_session;

	/* Manifest assembly. */
	struct mc_announce ann;
	bool ann_ok;
	uint8_t *mf_buf;
	struct bitmap mf_have;
	struct manifest m;
	bool have_m;

	/* Output. */
	char *tmp_path, *jr_path;
	int out_fd;
	struct journal *jr;
	bool resumed;
	int seed_fd;

	/* Per chunk. */
	struct bitmap done;   /* verified, zero, seeded or journaled */
	struct bitmap busy;   /* with a worker */
	struct bitmap passed; /* the sweep went past it: may be NACKed */
	struct rchunk **act;
	uint32_t *last_nack_ms;
	uint32_t *blk_base;
	uint16_t *adv_count;
	uint32_t *adv_ms;
	uint32_t nonzero, needed_at_start;
	size_t mem;

	/* Sweep position from POLL. */
	bool have_pos;
	uint64_t last_pos;
	uint64_t nack_due_ms;
	uint16_t poll_round;

	/* NEED exchange. */
	uint32_t need_first;
	uint64_t need_sent_ms, hello_sent_ms;
	bool welcomed;

	/* Workers. */
	struct pool *pool;
	pthread_mutex_t lock;
	struct rx_done *done_head;
	unsigned seed_jobs;
	int seed_stage; /* 1: checking the partial output, 2: the older image */
	bool jr_resumed;

	/* Verified chunks not yet in the journal; a worker syncs them in batches. */
	uint32_t *jpend;
	uint32_t njpend, capjpend;
	bool sync_busy;

	/* Whole-image hash, in its own thread, in order. */
	pthread_t hasher;
	bool hasher_started;
	pthread_cond_t hcond;
	struct bitmap hready; /* under lock */
	uint32_t hnext;       /* under lock */
	bool hstop, hdone;
	uint8_t image_hash[32];
	int hresult;

	/* Loss and delay for STATUS. */
	bool have_seq;
	uint32_t seq_hi, seq_base, int_pkts;
	bool have_dmin;
	int32_t dmin_cur, dmin_prev;
	uint64_t dmin_since_ms;
	int64_t qdelay_sum;
	uint32_t qdelay_n;
	uint64_t last_status_ms, done_sent_ms, final_ms, last_sync_ms;
	bool leave;                         /* the sender acknowledged our outcome, or ended */
	uint32_t ovfl_total, ovfl_reported; /* socket drops (SO_RXQ_OVFL) */
	uint64_t bad_tags;                  /* packets that failed authentication */
	uint16_t last_loss;
	uint32_t last_delay;

	/* Outcome. */
	int fail_code;
	char reason[256];

	struct mc_recv_status st;
	uint64_t rate_bytes_mark, rate_ms_mark;
	double rate_bps;
};

/* rx_data.c */
void rx_on_data(struct rx *r, const struct mc_data *d, uint32_t rx_us, uint64_t now_ms);
void rx_on_poll(struct rx *r, const struct mc_poll *p, uint64_t now_ms);
void rx_on_adv(struct rx *r, const struct mc_list *l, uint64_t now_ms);
void rx_send_nacks(struct rx *r, uint64_t now_ms);
void rx_free_chunk(struct rx *r, struct rchunk *c);
void rx_send(struct rx *r, struct mc_pkt *p);

/* rx_work.c */
int rx_work_start(struct rx *r);
void rx_work_stop(struct rx *r);
void rx_submit_chunk(struct rx *r, struct rchunk *c);
/*
 * Hashes the chunks not yet done in fd (an older image, or the partial output
 * itself when resuming) and takes those that match the manifest (RXJ_SEED).
 */
int rx_submit_seed(struct rx *r, int fd);
/* Takes the finished jobs (a list, oldest first). */
struct rx_done *rx_take_done(struct rx *r);
/* Marks chunk i ready for the whole-image hash. */
void rx_hash_ready(struct rx *r, uint32_t i);
/* Re-hashes every done chunk from the output in a worker (RXJ_RESCAN). */
int rx_submit_rescan(struct rx *r);
/* Makes the data durable, then journals list[0..n) (RXJ_SYNC; takes list). */
int rx_submit_sync(struct rx *r, uint32_t *list, uint32_t n);
/* Starts (or restarts, after a rescan) the whole-image hash from the first chunk. */
int rx_hash_start(struct rx *r);

#endif
