/*
 * The sender's data path: which packet goes next (unicast control first, then
 * repairs, then the sweep, with manifest fragments mixed in while a receiver
 * lacks the manifest), and how a packet is put into the batch. Source symbols
 * go out straight from the chunk cache (sender_rd.c); parity symbols are
 * computed when they are sent. A packet whose chunk is still being read
 * waits: a repair goes to the back of its queue, the sweep stays put.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net.h"
#include "sender.h"

int snd_tx_init(struct snd *s)
{
	uint32_t n = s->m.chunk_count;

	s->blk_base = calloc((size_t)n + 1, sizeof(*s->blk_base));
	if (!s->blk_base)
		return -ENOMEM;
	for (uint32_t c = 0; c < n; c++) {
		struct mc_geom g = {0};

		if (!(s->m.chunks[c].flags & MF_ZERO))
			mc_geom(s->m.chunks[c].stored_len, &g);
		s->blk_base[c + 1] = s->blk_base[c] + g.nblocks;
	}
	s->nblk = s->blk_base[n];
	s->next_idx = calloc((size_t)s->nblk + 1, 1);
	s->repair_pending = calloc((size_t)s->nblk + 1, sizeof(uint16_t));
	s->rq = calloc((size_t)s->nblk + 1, sizeof(uint32_t));
	s->pad = calloc(1, MC_SYM);
	if (!s->next_idx || !s->repair_pending || !s->rq || !s->pad)
		return -ENOMEM;
	if (bm_init(&s->repair_queued, s->nblk + 1) || bm_init(&s->demand, n))
		return -ENOMEM;
	for (uint32_t c = 0; c < n; c++) {
		struct mc_geom g;

		if (s->m.chunks[c].flags & MF_ZERO)
			continue;
		mc_geom(s->m.chunks[c].stored_len, &g);
		for (uint16_t b = 0; b < g.nblocks; b++) {
			uint32_t first;
			uint16_t k;

			mc_block(&g, b, &first, &k);
			s->next_idx[s->blk_base[c] + b] = (uint8_t)k;
		}
	}
	for (unsigned i = 0; i < SND_BATCH; i++) {
		s->parity[i] = aligned_alloc(64, (MC_SYM + 63) / 64 * 64);
		if (!s->parity[i])
			return -ENOMEM;
	}
	return 0;
}

void snd_tx_free(struct snd *s)
{
	free(s->blk_base);
	free(s->next_idx);
	free(s->repair_pending);
	free(s->rq);
	free(s->pad);
	bm_free(&s->repair_queued);
	bm_free(&s->demand);
	for (unsigned i = 0; i < SND_BATCH; i++)
		free(s->parity[i]);
	for (unsigned k = 0; k <= FEC_MAX_K; k++)
		fec_free(s->fec[k]);
}

static struct msghdr *slot(struct snd *s, unsigned *i)
{
	struct msghdr *mh;

	*i = s->nbatch++;
	mh = &s->msgs[*i].msg_hdr;
	memset(mh, 0, sizeof(*mh));
	mh->msg_name = &s->group;
	mh->msg_namelen = sizeof(s->group);
	mh->msg_iov = s->iov[*i];
	return mh;
}

void snd_batch_mcast(struct snd *s, const struct mc_pkt *p)
{
	unsigned i;
	struct msghdr *mh;
	struct mc_pkt q = *p;
	int len;

	if (s->nbatch >= SND_BATCH)
		return;
	q.h.session = s->session;
	q.h.seq = s->seq++;
	mh = slot(s, &i);
	len = mc_encode(&q, s->hdr[i], MC_MAX_PKT, s->o->key, s->o->keylen);
	if (len < 0) {
		s->nbatch--;
		log_error("internal: cannot encode %s", mc_type_name(q.h.type));
		return;
	}
	s->iov[i][0].iov_base = s->hdr[i];
	s->iov[i][0].iov_len = (size_t)len;
	mh->msg_iovlen = 1;
	s->batch_bytes += (uint64_t)len + SND_WIRE_OVERHEAD;
	s->st.control_pkts++;
}

void snd_queue_ctl(struct snd *s, const struct sockaddr_in *to, const struct mc_pkt *p)
{
	struct mc_pkt q = *p;
	struct snd_ctl *c;
	int len;

	if (s->nctl == s->capctl) {
		unsigned cap = s->capctl ? s->capctl * 2 : 16;
		struct snd_ctl *n;

		if (cap > 4096) /* a flood of control traffic: drop, the peer retries */
			return;
		n = realloc(s->ctlq, cap * sizeof(*n));
		if (!n)
			return;
		s->ctlq = n;
		s->capctl = cap;
	}
	q.h.session = s->session;
	q.h.seq = 0; /* only multicast is numbered: receivers measure loss by it */
	c = &s->ctlq[s->nctl];
	len = mc_encode(&q, c->buf, sizeof(c->buf), s->o->key, s->o->keylen);
	if (len < 0)
		return;
	c->to = *to;
	c->len = (uint16_t)len;
	s->nctl++;
}

static void add_ctl(struct snd *s)
{
	unsigned i;
	struct msghdr *mh = slot(s, &i);
	struct snd_ctl *c = &s->ctlq[0];

	memcpy(s->hdr[i], c->buf, c->len);
	/* The slot keeps its own copy of the address: the queue moves below. */
	s->to[i] = c->to;
	mh->msg_name = &s->to[i];
	mh->msg_namelen = sizeof(s->to[i]);
	s->iov[i][0].iov_base = s->hdr[i];
	s->iov[i][0].iov_len = c->len;
	mh->msg_iovlen = 1;
	s->batch_bytes += c->len + SND_WIRE_OVERHEAD;
	s->st.control_pkts++;
	s->nctl--;
	memmove(&s->ctlq[0], &s->ctlq[1], s->nctl * sizeof(*s->ctlq));
}

static struct fec *coder(struct snd *s, uint16_t k)
{
	if (!s->fec[k])
		s->fec[k] = fec_new(k);
	return s->fec[k];
}

/* Puts symbol sym of block b of chunk c, whose stored bytes are base, into the batch. */
static void add_data(struct snd *s, uint32_t c, uint16_t b, uint8_t sym, const uint8_t *base)
{
	const struct mf_chunk *e = &s->m.chunks[c];
	struct mc_geom g;
	uint32_t first;
	uint16_t k;
	unsigned i;
	struct msghdr *mh;
	struct mc_pkt p = {.h = {.type = MC_DATA}};
	const uint8_t *payload;
	size_t len;

	mc_geom(e->stored_len, &g);
	mc_block(&g, b, &first, &k);
	if (sym < k) {
		size_t off = (size_t)(first + sym) * MC_SYM;

		payload = base + off;
		len = e->stored_len - off < MC_SYM ? e->stored_len - off : MC_SYM;
		s->st.data_pkts++;
	} else {
		const uint8_t *src[FEC_MAX_K];
		uint8_t *out;
		struct fec *f = coder(s, k);

		i = s->nbatch;
		out = s->parity[i];
		for (uint16_t j = 0; j < k; j++) {
			size_t off = (size_t)(first + j) * MC_SYM;

			if (e->stored_len - off >= MC_SYM) {
				src[j] = base + off;
			} else {
				memset(s->pad, 0, MC_SYM);
				memcpy(s->pad, base + off, e->stored_len - off);
				src[j] = s->pad;
			}
		}
		if (!f || fec_encode(f, src, MC_SYM, &sym, 1, &out) < 0) {
			log_error("internal: parity for chunk %u block %u failed", c, b);
			return;
		}
		payload = out;
		len = MC_SYM;
		s->st.parity_pkts++;
	}
	p.h.session = s->session;
	p.h.seq = s->seq++;
	p.u.data.chunk = c;
	p.u.data.block = b;
	p.u.data.sym = sym;
	p.u.data.tx_us = mc_clock_us32();
	mh = slot(s, &i);
	if (mc_encode(&p, s->hdr[i], MC_MAX_PKT, NULL, 0) != MC_DATA_HDR_LEN) {
		s->nbatch--;
		return;
	}
	s->iov[i][0].iov_base = s->hdr[i];
	s->iov[i][0].iov_len = MC_DATA_HDR_LEN;
	s->iov[i][1].iov_base = (void *)(uintptr_t)payload;
	s->iov[i][1].iov_len = len;
	mh->msg_iovlen = 2;
	s->batch_bytes += MC_DATA_HDR_LEN + len + SND_WIRE_OVERHEAD;
}

static void add_manifest_frag(struct snd *s)
{
	struct mc_pkt p = {.h = {.type = MC_MANIFEST}};
	size_t n = s->mf_len - s->mf_off < MC_SYM ? s->mf_len - s->mf_off : MC_SYM;

	p.u.frag.total = (uint32_t)s->mf_len;
	p.u.frag.offset = s->mf_off;
	p.u.frag.payload = s->mf_bytes + s->mf_off;
	p.u.frag.len = (uint16_t)n;
	snd_batch_mcast(s, &p);
	s->mf_off += (uint32_t)n;
	if (s->mf_off >= s->mf_len)
		s->mf_off = 0;
}

static uint8_t next_sym(struct snd *s, uint32_t blk)
{
	uint8_t sym = s->next_idx[blk];

	s->next_idx[blk] = sym == FEC_MAX_N - 1 ? 0 : (uint8_t)(sym + 1);
	return sym;
}

void snd_want_repair(struct snd *s, uint32_t chunk, uint16_t block, uint16_t count)
{
	uint32_t blk = s->blk_base[chunk] + block;

	if (count > s->repair_pending[blk])
		s->repair_pending[blk] = count;
	if (bm_set(&s->repair_queued, blk)) {
		s->rq[(s->rq_head + s->rq_len) % s->nblk] = blk;
		s->rq_len++;
	}
}

/* The chunk of a block number (binary search over blk_base). */
static uint32_t chunk_of(const struct snd *s, uint32_t blk)
{
	uint32_t lo = 0, hi = s->m.chunk_count;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->blk_base[mid] <= blk)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * When the first queued repair's chunk is not cached, its read is queued and
 * the first repair among the next REPAIR_SCAN whose chunk is cached goes
 * first. Serving the queue strictly in its round-robin order would read one
 * chunk per symbol once the repairs span more chunks than the cache holds.
 */
#define REPAIR_SCAN 64

static bool emit_repair(struct snd *s)
{
	const uint8_t *base;
	uint32_t blk, c;

	if (s->rq_len == 0)
		return false;
	c = chunk_of(s, s->rq[s->rq_head]);
	base = snd_rd_get(s, c);
	for (uint32_t i = 1; !base && !s->rd_ret && i < s->rq_len && i < REPAIR_SCAN; i++) {
		uint32_t pos = (s->rq_head + i) % s->nblk;
		uint32_t other = s->rq[pos];

		c = chunk_of(s, other);
		base = snd_rd_peek(s, c);
		if (base) {
			s->rq[pos] = s->rq[s->rq_head];
			s->rq[s->rq_head] = other;
		}
	}
	if (!base)
		return false; /* being read, or unreadable (rd_ret) */
	blk = s->rq[s->rq_head];
	s->rq_head = (s->rq_head + 1) % s->nblk;
	s->rq_len--;
	add_data(s, c, (uint16_t)(blk - s->blk_base[c]), next_sym(s, blk), base);
	if (--s->repair_pending[blk] > 0) {
		/* Round robin over the blocks waiting for repair. */
		s->rq[(s->rq_head + s->rq_len) % s->nblk] = blk;
		s->rq_len++;
	} else {
		bm_clear(&s->repair_queued, blk);
	}
	return true;
}

/*
 * Proactive parity per block: enough for the expected loss and two standard
 * deviations more, so most blocks need no repair round at all.
 */
static uint16_t proactive(uint16_t loss_permille, uint16_t k)
{
	double p = loss_permille / 1000.0, m;

	if (loss_permille == 0)
		return 0;
	m = ceil(k * p + 2.0 * sqrt(k * p * (1.0 - p)));
	if (m > FEC_MAX_N - k)
		m = FEC_MAX_N - k;
	return (uint16_t)m;
}

static bool start_chunk(struct snd *s)
{
	uint32_t c = bm_next_set(&s->demand, s->cursor);
	struct mc_geom g;
	uint32_t first;
	uint16_t kmax;

	if (c >= s->m.chunk_count) {
		if (s->demand.count == 0) {
			s->cursor = s->m.chunk_count;
			return false;
		}
		s->sweep++;
		c = bm_next_set(&s->demand, 0);
	}
	s->cursor = c;
	bm_clear(&s->demand, c);
	snd_rd_ahead(s, c);
	mc_geom(s->m.chunks[c].stored_len, &g);
	mc_block(&g, 0, &first, &kmax);
	s->emit_parity = proactive(s->loss_est, kmax);
	s->emit_rounds = kmax + s->emit_parity;
	s->emit_pos = 0;
	s->emitting = true;
	return true;
}

static bool emit_sweep(struct snd *s)
{
	const struct mf_chunk *e;
	const uint8_t *base;
	struct mc_geom g;

	for (;;) {
		if (!s->emitting && !start_chunk(s))
			return false;
		e = &s->m.chunks[s->cursor];
		/* Not read yet: the sweep stays at this symbol until it is. */
		base = snd_rd_get(s, s->cursor);
		if (!base)
			return false;
		mc_geom(e->stored_len, &g);
		while (s->emit_pos < s->emit_rounds * g.nblocks) {
			uint32_t r = s->emit_pos / g.nblocks, first;
			uint16_t b = (uint16_t)(s->emit_pos % g.nblocks), k;

			s->emit_pos++;
			mc_block(&g, b, &first, &k);
			if (r < k) {
				add_data(s, s->cursor, b, (uint8_t)r, base);
				return true;
			}
			if (r < (uint32_t)k + s->emit_parity) {
				add_data(s, s->cursor, b, next_sym(s, s->blk_base[s->cursor] + b),
				         base);
				return true;
			}
		}
		/* Done with this chunk: the cursor moves past it. */
		s->emitting = false;
		s->cursor++;
	}
}

static bool manifest_wanted(const struct snd *s)
{
	for (unsigned i = 0; i < s->nrx; i++)
		if (!s->rx[i].have_manifest && s->rx[i].v.state < MC_V_DONE)
			return true;
	return false;
}

bool snd_has_work(const struct snd *s)
{
	return s->nctl > 0 || s->rq_len > 0 || s->emitting || s->demand.count > 0;
}

unsigned snd_fill(struct snd *s, unsigned max, uint64_t now_ms)
{
	unsigned n = 0;
	bool mf = manifest_wanted(s);

	(void)now_ms;
	s->rd_waiting = false;
	while (n < max && s->nbatch < SND_BATCH) {
		if (s->nctl > 0) {
			add_ctl(s);
		} else if (mf && (s->slot_tick++ & 3) == 0) {
			add_manifest_frag(s);
		} else if (s->state == MC_S_SENDING && (emit_repair(s) || emit_sweep(s))) {
			/* A repair or sweep symbol went into the batch. */
		} else if (mf) {
			add_manifest_frag(s);
		} else {
			break;
		}
		n++;
	}
	/* Room was left because a chunk is still being read: the loop naps. */
	s->starved = s->rd_waiting && n < max && s->nbatch < SND_BATCH;
	return n;
}
