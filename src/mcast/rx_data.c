/*
 * The receiver's data path: symbols into chunk buffers until every FEC block
 * of a chunk has k distinct symbols, then off to a worker; and the NACKs that
 * ask for what is still missing after the sweep went past it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "log.h"
#include "receiver.h"

void rx_send(struct rx *r, struct mc_pkt *p)
{
	uint8_t buf[MC_MAX_PKT];
	int len;

	p->h.session = r->session;
	p->h.seq = 0;
	len = mc_encode(p, buf, sizeof(buf), r->o->key, r->o->keylen);
	if (len < 0) {
		log_error("internal: cannot encode %s", mc_type_name(p->h.type));
		return;
	}
	/* Feedback is best effort: a lost one is sent again by its timer. */
	(void)sendto(r->ctl_fd, buf, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&r->sender,
	             sizeof(r->sender));
}

void rx_free_chunk(struct rx *r, struct rchunk *c)
{
	if (!c)
		return;
	for (uint16_t b = 0; b < c->nblocks; b++) {
		free(c->blk[b].par);
		free(c->blk[b].paridx);
	}
	r->mem -= c->mem;
	free(c->blk);
	free(c->buf);
	free(c);
}

static struct rchunk *new_chunk(struct rx *r, uint32_t idx)
{
	const struct mf_chunk *e = &r->m.chunks[idx];
	struct mc_geom g;
	struct rchunk *c;
	size_t mem;

	mc_geom(e->stored_len, &g);
	mem = (size_t)g.nsym * MC_SYM + g.nblocks * sizeof(struct rblock) + sizeof(*c);
	if (r->mem + mem > RX_MEM_CAP)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->idx = idx;
	c->stored_len = e->stored_len;
	c->nblocks = g.nblocks;
	c->buf = malloc((size_t)g.nsym * MC_SYM);
	c->blk = calloc(g.nblocks, sizeof(*c->blk));
	if (!c->buf || !c->blk) {
		free(c->buf);
		free(c->blk);
		free(c);
		return NULL;
	}
	for (uint16_t b = 0; b < g.nblocks; b++) {
		uint32_t first;

		mc_block(&g, b, &first, &c->blk[b].k);
	}
	/* The last symbol's padding takes part in decoding: the sender used zeros. */
	memset(c->buf + e->stored_len, 0, (size_t)g.nsym * MC_SYM - e->stored_len);
	c->mem = mem;
	r->mem += mem;
	return c;
}

/* Stores a parity symbol; returns false when out of memory. */
static bool keep_parity(struct rx *r, struct rchunk *c, struct rblock *b, uint8_t idx,
                        const struct mc_data *d)
{
	if (b->npar == b->cappar) {
		unsigned cap = b->cappar ? b->cappar * 2u : 8u;
		uint8_t *p, *pi;

		if (cap > b->k)
			cap = b->k;
		p = realloc(b->par, cap * MC_SYM);
		if (!p)
			return false;
		b->par = p;
		pi = realloc(b->paridx, cap);
		if (!pi)
			return false;
		b->paridx = pi;
		r->mem += (cap - b->cappar) * (size_t)MC_SYM;
		c->mem += (cap - b->cappar) * (size_t)MC_SYM;
		b->cappar = (uint8_t)cap;
	}
	memcpy(b->par + (size_t)b->npar * MC_SYM, d->payload, d->len);
	if (d->len < MC_SYM)
		memset(b->par + (size_t)b->npar * MC_SYM + d->len, 0, MC_SYM - d->len);
	b->paridx[b->npar++] = idx;
	return true;
}

static void delay_sample(struct rx *r, uint32_t tx_us, uint32_t rx_us, uint64_t now_ms)
{
	int32_t d = (int32_t)(rx_us - tx_us);

	/* The base one-way delay: a minimum over two windows of 10 s. */
	if (!r->have_dmin) {
		r->dmin_cur = r->dmin_prev = d;
		r->dmin_since_ms = now_ms;
		r->have_dmin = true;
	} else if (now_ms - r->dmin_since_ms >= 10000) {
		r->dmin_prev = r->dmin_cur;
		r->dmin_cur = d;
		r->dmin_since_ms = now_ms;
	} else if (d < r->dmin_cur) {
		r->dmin_cur = d;
	}
	{
		int32_t base = r->dmin_cur < r->dmin_prev ? r->dmin_cur : r->dmin_prev;

		r->qdelay_sum += (int64_t)d - base;
		r->qdelay_n++;
	}
}

void rx_on_data(struct rx *r, const struct mc_data *d, uint32_t rx_us, uint64_t now_ms)
{
	struct rchunk *c;
	struct rblock *b;
	uint32_t first;
	uint16_t k;
	struct mc_geom g;

	r->st.bytes += d->len;
	if (rx_us)
		delay_sample(r, d->tx_us, rx_us, now_ms);
	if (r->phase != RX_RECEIVE || d->chunk >= r->m.chunk_count) {
		r->st.dup_pkts++;
		return;
	}
	if (bm_get(&r->done, d->chunk) || bm_get(&r->busy, d->chunk)) {
		r->st.dup_pkts++;
		return;
	}
	c = r->act[d->chunk];
	if (!c) {
		if (r->m.chunks[d->chunk].flags & MF_ZERO) {
			r->st.bad_pkts++;
			return;
		}
		c = r->act[d->chunk] = new_chunk(r, d->chunk);
		if (!c) {
			/* Over the memory cap: the chunk is asked for again later. */
			r->st.dup_pkts++;
			return;
		}
	}
	if (d->block >= c->nblocks) {
		r->st.bad_pkts++;
		return;
	}
	b = &c->blk[d->block];
	if (b->have >= b->k || (b->mask[d->sym >> 6] >> (d->sym & 63)) & 1) {
		r->st.dup_pkts++;
		return;
	}
	mc_geom(c->stored_len, &g);
	mc_block(&g, d->block, &first, &k);
	if (d->sym < k) {
		size_t off = (size_t)(first + d->sym) * MC_SYM;
		size_t want = c->stored_len - off < MC_SYM ? c->stored_len - off : MC_SYM;

		if (d->len != want) {
			r->st.bad_pkts++;
			return;
		}
		memcpy(c->buf + off, d->payload, d->len);
	} else {
		if (d->len != MC_SYM) {
			r->st.bad_pkts++;
			return;
		}
		if (!keep_parity(r, c, b, d->sym, d))
			return;
	}
	b->mask[d->sym >> 6] |= 1ull << (d->sym & 63);
	r->st.useful_bytes += d->len;
	if (++b->have == b->k && ++c->blocks_complete == c->nblocks) {
		r->act[d->chunk] = NULL;
		bm_set(&r->busy, d->chunk);
		rx_submit_chunk(r, c);
	}
}

void rx_on_poll(struct rx *r, const struct mc_poll *p, uint64_t now_ms)
{
	uint32_t n = r->m.chunk_count;
	uint64_t pos;
	uint16_t wait = 0;

	if (r->phase != RX_RECEIVE || p->cursor > n)
		return;
	pos = (uint64_t)p->sweep * n + p->cursor;
	if (!r->have_pos) {
		/*
		 * The sweep went past the chunks before the cursor before we were
		 * ready: ask for any of those we need.
		 */
		r->have_pos = true;
		r->last_pos = pos - p->cursor;
	}
	if (pos > r->last_pos) {
		if (pos - r->last_pos >= n) {
			for (uint32_t i = 0; i < n; i++)
				bm_set(&r->passed, i);
		} else {
			for (uint64_t q = r->last_pos; q < pos; q++)
				bm_set(&r->passed, (uint32_t)(q % n));
		}
		r->last_pos = pos;
	}
	r->poll_round = p->round;
	if (r->nack_due_ms == 0) {
		if (p->backoff_ms) {
			uint16_t rnd = 0;

			if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
				rnd = (uint16_t)now_ms;
			wait = rnd % (p->backoff_ms + 1u);
		}
		r->nack_due_ms = now_ms + wait;
	}
}

void rx_on_adv(struct rx *r, const struct mc_list *l, uint64_t now_ms)
{
	if (!r->have_m)
		return;
	for (uint16_t i = 0; i < l->n; i++) {
		const struct mc_entry *e = &l->e[i];
		uint32_t bi;

		if (e->chunk >= r->m.chunk_count)
			continue;
		if (e->block == MC_BLOCK_WHOLE) {
			/* The chunk comes again with the sweep: wait for it. */
			bm_clear(&r->passed, e->chunk);
			continue;
		}
		if (e->block >= r->blk_base[e->chunk + 1] - r->blk_base[e->chunk])
			continue;
		bi = r->blk_base[e->chunk] + e->block;
		r->adv_count[bi] = e->count;
		r->adv_ms[bi] = (uint32_t)(now_ms - r->t0_ms);
	}
}

static bool suppressed(struct rx *r, uint32_t chunk, uint16_t block, uint16_t deficit,
                       uint32_t now_rel)
{
	uint32_t bi = r->blk_base[chunk] + block;

	/* Someone asked for at least as much, recently: that repair serves us too. */
	return r->adv_ms[bi] && now_rel - r->adv_ms[bi] < RX_HOLDOFF_MS &&
	       r->adv_count[bi] >= deficit;
}

static void flush_nack(struct rx *r, struct mc_pkt *p)
{
	if (p->u.list.n == 0)
		return;
	p->u.list.rid = r->rid;
	p->u.list.round = r->poll_round;
	rx_send(r, p);
	r->st.nacks_sent++;
	p->u.list.n = 0;
}

void rx_send_nacks(struct rx *r, uint64_t now_ms)
{
	struct mc_pkt p = {.h = {.type = MC_NACK}};
	uint32_t now_rel = (uint32_t)(now_ms - r->t0_ms);
	unsigned packets = 0;

	r->nack_due_ms = 0;
	for (uint32_t c = bm_next_set(&r->passed, 0); c < r->m.chunk_count && packets < 8;
	     c = bm_next_set(&r->passed, c + 1)) {
		struct rchunk *ch;

		if (bm_get(&r->done, c) || bm_get(&r->busy, c)) {
			bm_clear(&r->passed, c);
			continue;
		}
		if (r->last_nack_ms[c] && now_rel - r->last_nack_ms[c] < RX_HOLDOFF_MS)
			continue;
		ch = r->act[c];
		if (!ch) {
			/*
			 * The chunk stays "passed" until the sender advertises that it
			 * will send it again (rx_on_adv): a NACK that is lost, or that
			 * the sender defers (a lagging receiver), is sent again after
			 * the hold-off instead of being forgotten.
			 */
			p.u.list.e[p.u.list.n++] = (struct mc_entry){c, MC_BLOCK_WHOLE, 0};
		} else {
			for (uint16_t b = 0; b < ch->nblocks; b++) {
				uint16_t deficit = ch->blk[b].k - ch->blk[b].have;

				if (deficit == 0 || suppressed(r, c, b, deficit, now_rel))
					continue;
				p.u.list.e[p.u.list.n++] = (struct mc_entry){c, b, deficit};
				if (p.u.list.n == MC_MAX_NACK) {
					flush_nack(r, &p);
					packets++;
				}
			}
		}
		r->last_nack_ms[c] = now_rel ? now_rel : 1;
		if (p.u.list.n == MC_MAX_NACK) {
			flush_nack(r, &p);
			packets++;
		}
	}
	flush_nack(r, &p);
}
