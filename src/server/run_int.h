/*
 * Inside the deployment runner (runner.c: dispatcher, slots, recovery,
 * reports; run_exec.c: the steps of one run; run_wake.c: Wake-on-LAN).
 * Not for other modules: they use runner.h.
 */
#ifndef ML_RUN_INT_H
#define ML_RUN_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "match.h"

struct srv;

#define RUN_REASON_MAX 300
#define RUN_SLOTS_MAX 16

/* One executing run: a dispatcher slot. Fields under runner->mu unless said otherwise. */
struct run_slot {
	struct runner *rn;
	unsigned index; /* fixed: gives the UDP port */
	bool busy;
	bool joinable; /* the thread ended and waits to be joined */
	int64_t run;
	pthread_t th;
	volatile int stop;   /* mc_send's stop flag: cancel or shutdown (any thread) */
	volatile int cancel; /* the user cancelled (any thread) */
	uint64_t rate_bps;   /* current sending rate, for the API */
};

struct runner {
	struct srv *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool stopping, kicked;
	unsigned nslots;
	struct run_slot slots[RUN_SLOTS_MAX];
};

/* One machine of a run, as the executing thread sees it. */
struct run_target {
	int64_t id;      /* run_targets row */
	int64_t machine; /* 0 when the machine was deleted */
	char name[MATCH_NAME_SIZE];
	char state[16];
	char reason[RUN_REASON_MAX];
	char woken[16];
	int64_t cmd;     /* the current receive command, 0 before one */
	bool in_session; /* a receiver of the current session */
	bool dirty;      /* progress to write */
	uint64_t bytes, chunks_done, chunks_needed;
	uint64_t start_ms, ms; /* monotonic start of its part; its duration */
};

/* The executing run. */
struct run_ctx {
	struct srv *srv;
	struct run_slot *slot;
	int64_t id;
	int64_t deployment; /* 0: deleted */
	char deployment_name[256];
	int64_t version, image, number;
	char image_name[256];
	char sha256[65];
	uint64_t size;
	char manifest[4096]; /* path of its manifest */
	char manifest_sha[65];
	char store_dir[4096];
	uint64_t rate_bps; /* 0: [runner] rate */
	bool wake;
	int64_t wait_s;
	int boot_mode; /* enum boot_mode while the run runs; BOOT_NONE: untouched */
	struct run_target *t;
	size_t n;
	uint64_t sent_bytes;
	uint64_t last_flush_ms;
	uint32_t session;
	uint8_t key[32];
};

/* run_exec.c: executes one run to its end; the slot's thread. */
void run_exec(struct srv *srv, struct run_slot *slot, int64_t run);

/* run_wake.c: wakes the targets that are not online; fills woken. */
void run_wake(struct run_ctx *c);

/* runner.c: ends a run (state, error) and mails its report. */
void run_finish(struct srv *srv, int64_t run, const char *state, const char *error);
/* run_exec.c: one machine's state, reason and counters into the store. */
void run_target_save(struct run_ctx *c, struct run_target *t);
/* The run's phase into the store. */
void run_phase(struct srv *srv, int64_t run, const char *phase);

#endif
