/*
 * The sender's chunk cache: the stored bytes of the chunks it sends, read
 * by one reader thread (through chunkrd.h, from the data file or the chunk
 * store) ahead of the sweep, so that disk reads never stall the sending
 * thread. docs/mcast-protocol.md, "Where the sender reads chunks", has the
 * why.
 *
 * The sending thread owns the cache's bookkeeping: which chunk each slot
 * holds, which slot to reuse. It hands a slot to the reader thread by
 * marking it SND_SLOT_LOADING and queueing its index; the reader reads the
 * chunk into the slot's buffer and publishes SND_SLOT_READY or
 * SND_SLOT_FAILED with a release store. Until then the sending thread does
 * not touch the slot, and afterwards the reader does not, so the buffers
 * need no lock; only the queue has one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sender.h"

/* Read this many stored bytes ahead of the sweep (at least 2 chunks). */
#define SND_RD_AHEAD (32u << 20)

static void *reader_main(void *arg)
{
	struct snd *s = arg;

	pthread_mutex_lock(&s->rd_mu);
	for (;;) {
		struct snd_slot *sl;
		int rc;

		while (s->rd_qlen == 0 && !s->rd_stop)
			pthread_cond_wait(&s->rd_cv, &s->rd_mu);
		if (s->rd_stop)
			break;
		sl = &s->slots[s->rd_q[s->rd_qhead]];
		s->rd_qhead = (s->rd_qhead + 1) % s->nslots;
		s->rd_qlen--;
		pthread_mutex_unlock(&s->rd_mu);
		rc = mc_chunkrd_read(s->rd, sl->chunk, sl->buf, s->slot_cap, sl->err,
		                     sizeof(sl->err));
		sl->rc = rc;
		atomic_store_explicit(&sl->state, rc == 0 ? SND_SLOT_READY : SND_SLOT_FAILED,
		                      memory_order_release);
		pthread_mutex_lock(&s->rd_mu);
	}
	pthread_mutex_unlock(&s->rd_mu);
	return NULL;
}

int snd_rd_init(struct snd *s)
{
	uint32_t stored = 0;
	unsigned ahead;

	for (uint32_t c = 0; c < s->m.chunk_count; c++) {
		if (s->m.chunks[c].flags & MF_ZERO)
			continue;
		stored++;
		if (s->m.chunks[c].stored_len > s->slot_cap)
			s->slot_cap = s->m.chunks[c].stored_len;
	}
	s->slot_of = malloc(((size_t)s->m.chunk_count + 1) * sizeof(*s->slot_of));
	if (!s->slot_of)
		return -ENOMEM;
	for (uint32_t c = 0; c < s->m.chunk_count; c++)
		s->slot_of[c] = -1;
	s->batch_gen = 1; /* a slot's pin starts at 0: in no batch */
	if (stored == 0)
		return 0; /* nothing is ever read: no slots, no thread */
	ahead = s->slot_cap ? (unsigned)(SND_RD_AHEAD / s->slot_cap) : 2;
	if (ahead < 2)
		ahead = 2;
	s->rd_ahead = ahead;
	/* As many again behind the sweep, for repairs of chunks just sent. */
	s->nslots = 2 * ahead < stored ? 2 * ahead : stored;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	s->rd_q = calloc(s->nslots, sizeof(*s->rd_q));
	if (!s->slots || !s->rd_q)
		return -ENOMEM;
	for (unsigned k = 0; k < s->nslots; k++) {
		s->slots[k].buf = malloc(s->slot_cap);
		if (!s->slots[k].buf)
			return -ENOMEM;
		s->slots[k].chunk = UINT32_MAX;
	}
	if (pthread_mutex_init(&s->rd_mu, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&s->rd_cv, NULL) != 0) {
		pthread_mutex_destroy(&s->rd_mu);
		return -ENOMEM;
	}
	s->rd_sync = true;
	if (pthread_create(&s->rd_thread, NULL, reader_main, s) != 0)
		return -EAGAIN;
	s->rd_started = true;
	return 0;
}

void snd_rd_free(struct snd *s)
{
	if (s->rd_started) {
		pthread_mutex_lock(&s->rd_mu);
		s->rd_stop = true;
		pthread_cond_signal(&s->rd_cv);
		pthread_mutex_unlock(&s->rd_mu);
		pthread_join(s->rd_thread, NULL);
	}
	if (s->rd_sync) {
		pthread_cond_destroy(&s->rd_cv);
		pthread_mutex_destroy(&s->rd_mu);
	}
	for (unsigned k = 0; s->slots && k < s->nslots; k++)
		free(s->slots[k].buf);
	free(s->slots);
	free(s->rd_q);
	free(s->slot_of);
}

/*
 * Picks a slot to load chunk c into: an empty one, else the one used
 * longest ago that is neither loading nor holding bytes of a packet in the
 * unsent batch. Returns its index, or -1 when every slot is busy (the
 * caller tries again after the batch went out).
 */
static int victim(const struct snd *s)
{
	int best = -1;

	for (unsigned k = 0; k < s->nslots; k++) {
		const struct snd_slot *sl = &s->slots[k];
		int st = atomic_load_explicit(&sl->state, memory_order_acquire);

		if (st == SND_SLOT_EMPTY)
			return (int)k;
		if (st == SND_SLOT_LOADING || sl->pin == s->batch_gen)
			continue;
		if (best < 0 || sl->used < s->slots[best].used)
			best = (int)k;
	}
	return best;
}

/* Queues chunk c for reading, unless it is cached or nothing can be evicted. */
static void request(struct snd *s, uint32_t c)
{
	struct snd_slot *sl;
	int k;

	if (s->slot_of[c] >= 0) {
		s->slots[s->slot_of[c]].used = ++s->rd_tick;
		return;
	}
	k = victim(s);
	if (k < 0)
		return;
	sl = &s->slots[k];
	if (sl->chunk != UINT32_MAX)
		s->slot_of[sl->chunk] = -1;
	sl->chunk = c;
	sl->used = ++s->rd_tick;
	s->slot_of[c] = k;
	atomic_store_explicit(&sl->state, SND_SLOT_LOADING, memory_order_relaxed);
	pthread_mutex_lock(&s->rd_mu);
	s->rd_q[(s->rd_qhead + s->rd_qlen) % s->nslots] = (unsigned)k;
	s->rd_qlen++;
	pthread_cond_signal(&s->rd_cv);
	pthread_mutex_unlock(&s->rd_mu);
}

void snd_rd_ahead(struct snd *s, uint32_t c)
{
	uint32_t j = c;
	bool wrapped = false;

	if (!s->nslots)
		return;
	for (unsigned n = 0; n < s->rd_ahead; n++) {
		request(s, j);
		/* The chunks the sweep will send next: demanded ones, cyclically. */
		j = bm_next_set(&s->demand, j + 1);
		if (j >= s->m.chunk_count) {
			if (wrapped)
				return;
			wrapped = true;
			j = bm_next_set(&s->demand, 0);
			if (j >= s->m.chunk_count)
				return;
		}
		if (j == c)
			return;
	}
}

const uint8_t *snd_rd_peek(struct snd *s, uint32_t c)
{
	struct snd_slot *sl;
	int32_t k = s->slot_of[c];

	if (k < 0)
		return NULL;
	sl = &s->slots[k];
	if (atomic_load_explicit(&sl->state, memory_order_acquire) != SND_SLOT_READY)
		return NULL;
	sl->used = ++s->rd_tick;
	sl->pin = s->batch_gen;
	return sl->buf;
}

const uint8_t *snd_rd_get(struct snd *s, uint32_t c)
{
	const uint8_t *p = snd_rd_peek(s, c);
	struct snd_slot *sl;
	int32_t k = s->slot_of[c];

	if (p)
		return p;
	if (k < 0) {
		request(s, c);
		s->rd_waiting = true;
		return NULL;
	}
	sl = &s->slots[k];
	switch (atomic_load_explicit(&sl->state, memory_order_acquire)) {
	case SND_SLOT_FAILED:
		/* The first failure a packet needed is the session's error. */
		if (!s->rd_ret) {
			s->rd_ret = sl->rc < 0 ? sl->rc : -EIO;
			s->rd_chunk = c;
			memcpy(s->rd_err, sl->err, sizeof(s->rd_err));
		}
		return NULL;
	default:
		s->rd_waiting = true;
		return NULL;
	}
}
