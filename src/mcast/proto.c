/* Encoding and decoding of mlcast packets (see proto.h). */
#include <errno.h>
#include <string.h>

#include "cursor.h"
#include "fec.h"
#include "proto.h"
#include "sha256.h"

static bool type_has_tag(uint8_t t)
{
	return t != MC_DATA && t != MC_MANIFEST;
}

const char *mc_type_name(uint8_t type)
{
	switch (type) {
	case MC_DATA:
		return "DATA";
	case MC_ANNOUNCE:
		return "ANNOUNCE";
	case MC_MANIFEST:
		return "MANIFEST";
	case MC_POLL:
		return "POLL";
	case MC_REPAIR_ADV:
		return "REPAIR_ADV";
	case MC_END:
		return "END";
	case MC_HELLO:
		return "HELLO";
	case MC_NEED:
		return "NEED";
	case MC_NACK:
		return "NACK";
	case MC_STATUS:
		return "STATUS";
	case MC_WELCOME:
		return "WELCOME";
	case MC_NEED_ACK:
		return "NEED_ACK";
	case MC_DONE_ACK:
		return "DONE_ACK";
	case MC_DROP:
		return "DROP";
	default:
		return "UNKNOWN";
	}
}

static void tag(const uint8_t *key, size_t keylen, const uint8_t *p, size_t n,
                uint8_t out[MC_TAG_LEN])
{
	uint8_t full[SHA256_LEN];

	hmac_sha256(key, keylen, p, n, NULL, 0, full);
	memcpy(out, full, MC_TAG_LEN);
}

static void dec_list(struct cur *c, struct mc_list *l, bool with_rid)
{
	l->rid = with_rid ? cur_u32(c) : 0;
	l->round = cur_u16(c);
	l->n = cur_u16(c);
	if (l->n > MC_MAX_NACK) {
		c->err = true;
		return;
	}
	for (uint16_t i = 0; i < l->n; i++) {
		l->e[i].chunk = cur_u32(c);
		l->e[i].block = cur_u16(c);
		l->e[i].count = cur_u16(c);
	}
}

static void dec_text(struct cur *c, uint8_t len, size_t max, char *out)
{
	const uint8_t *p;

	if (len > max) {
		c->err = true;
		return;
	}
	p = cur_ptr(c, len);
	if (!p)
		return;
	memcpy(out, p, len);
	out[len] = '\0';
}

static int dec_body(struct cur *c, struct mc_pkt *p)
{
	switch (p->h.type) {
	case MC_DATA: {
		struct mc_data *d = &p->u.data;
		size_t n;

		d->chunk = cur_u32(c);
		d->block = cur_u16(c);
		d->sym = cur_u8(c);
		d->flags = cur_u8(c);
		d->tx_us = cur_u32(c);
		n = cur_left(c);
		if (c->err || n == 0 || n > MC_SYM || d->sym == 0xFF)
			return MC_EBADPKT;
		d->payload = cur_ptr(c, n);
		d->len = (uint16_t)n;
		break;
	}
	case MC_ANNOUNCE: {
		struct mc_announce *a = &p->u.ann;

		a->state = cur_u8(c);
		a->flags = cur_u8(c);
		a->sym_size = cur_u16(c);
		a->report_ms = cur_u16(c);
		a->nreceivers = cur_u16(c);
		a->rate_kbps = cur_u32(c);
		a->chunk_count = cur_u32(c);
		a->image_size = cur_u64(c);
		a->manifest_len = cur_u32(c);
		cur_bytes(c, a->manifest_digest, sizeof(a->manifest_digest));
		if (a->state < MC_S_WAITING || a->state > MC_S_ENDING || a->sym_size != MC_SYM ||
		    a->report_ms == 0)
			return MC_EBADPKT;
		break;
	}
	case MC_MANIFEST: {
		struct mc_manifest_frag *f = &p->u.frag;
		size_t n;

		f->total = cur_u32(c);
		f->offset = cur_u32(c);
		n = cur_left(c);
		if (c->err || n == 0 || n > MC_SYM || f->offset >= f->total ||
		    n > f->total - f->offset)
			return MC_EBADPKT;
		f->payload = cur_ptr(c, n);
		f->len = (uint16_t)n;
		break;
	}
	case MC_POLL:
		p->u.poll.sweep = cur_u32(c);
		p->u.poll.cursor = cur_u32(c);
		p->u.poll.backoff_ms = cur_u16(c);
		p->u.poll.round = cur_u16(c);
		break;
	case MC_REPAIR_ADV:
		dec_list(c, &p->u.list, false);
		break;
	case MC_NACK:
		dec_list(c, &p->u.list, true);
		break;
	case MC_END:
		p->u.end_code = cur_u8(c);
		break;
	case MC_HELLO: {
		struct mc_hello *h = &p->u.hello;

		h->rid = cur_u32(c);
		h->nonce = cur_u32(c);
		h->flags = cur_u8(c);
		h->namelen = cur_u8(c);
		dec_text(c, h->namelen, MC_MAX_NAME, h->name);
		if (h->rid == 0)
			return MC_EBADPKT;
		break;
	}
	case MC_NEED: {
		struct mc_need *n = &p->u.need;

		n->rid = cur_u32(c);
		n->first = cur_u32(c);
		n->nbits = cur_u16(c);
		n->flags = cur_u8(c);
		if (n->nbits > MC_MAX_NEED_BITS)
			return MC_EBADPKT;
		n->bits = cur_ptr(c, (n->nbits + 7u) / 8u);
		break;
	}
	case MC_STATUS: {
		struct mc_status *s = &p->u.st;

		s->rid = cur_u32(c);
		s->state = cur_u8(c);
		s->code = cur_u8(c);
		s->loss_permille = cur_u16(c);
		s->chunks_done = cur_u32(c);
		s->chunks_needed = cur_u32(c);
		s->bytes = cur_u64(c);
		s->delay_us = cur_u32(c);
		s->rx_pkts = cur_u32(c);
		s->overflows = cur_u32(c);
		if (s->state < MC_R_MANIFEST || s->state > MC_R_FAILED || s->loss_permille > 1000)
			return MC_EBADPKT;
		break;
	}
	case MC_WELCOME:
	case MC_DONE_ACK:
		p->u.ack.rid = cur_u32(c);
		break;
	case MC_NEED_ACK:
		p->u.ack.rid = cur_u32(c);
		p->u.ack.first = cur_u32(c);
		p->u.ack.nbits = cur_u16(c);
		break;
	case MC_DROP: {
		struct mc_drop *d = &p->u.drop;

		d->rid = cur_u32(c);
		d->code = cur_u8(c);
		d->textlen = cur_u8(c);
		dec_text(c, d->textlen, MC_MAX_TEXT, d->text);
		break;
	}
	default:
		return MC_EBADPKT;
	}
	if (cur_bad_or_left(c))
		return MC_EBADPKT;
	return 0;
}

int mc_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen, struct mc_pkt *p)
{
	struct cur c;
	size_t body_len = len;

	if (len < MC_HDR_LEN || len > MC_MAX_PKT)
		return MC_EBADPKT;
	cur_init(&c, buf, len);
	if (cur_u16(&c) != MC_MAGIC || cur_u8(&c) != MC_VERSION)
		return MC_EBADPKT;
	p->h.type = cur_u8(&c);
	p->h.session = cur_u32(&c);
	p->h.seq = cur_u32(&c);
	if (keylen > 0 && type_has_tag(p->h.type)) {
		uint8_t want[MC_TAG_LEN];

		if (len < MC_HDR_LEN + MC_TAG_LEN)
			return MC_EBADTAG;
		body_len = len - MC_TAG_LEN;
		tag(key, keylen, buf, body_len, want);
		if (!ct_equal(want, buf + body_len, MC_TAG_LEN))
			return MC_EBADTAG;
	}
	cur_init(&c, buf + MC_HDR_LEN, body_len - MC_HDR_LEN);
	return dec_body(&c, p);
}

static void enc_list(struct wcur *w, const struct mc_list *l, bool with_rid)
{
	if (with_rid)
		wcur_u32(w, l->rid);
	wcur_u16(w, l->round);
	wcur_u16(w, l->n);
	for (uint16_t i = 0; i < l->n && i < MC_MAX_NACK; i++) {
		wcur_u32(w, l->e[i].chunk);
		wcur_u16(w, l->e[i].block);
		wcur_u16(w, l->e[i].count);
	}
}

int mc_encode(const struct mc_pkt *p, uint8_t *buf, size_t cap, const uint8_t *key, size_t keylen)
{
	struct wcur w;

	wcur_init(&w, buf, cap);
	wcur_u16(&w, MC_MAGIC);
	wcur_u8(&w, MC_VERSION);
	wcur_u8(&w, p->h.type);
	wcur_u32(&w, p->h.session);
	wcur_u32(&w, p->h.seq);
	switch (p->h.type) {
	case MC_DATA:
		wcur_u32(&w, p->u.data.chunk);
		wcur_u16(&w, p->u.data.block);
		wcur_u8(&w, p->u.data.sym);
		wcur_u8(&w, p->u.data.flags);
		wcur_u32(&w, p->u.data.tx_us);
		return w.err ? -ENOSPC : (int)w.off;
	case MC_ANNOUNCE: {
		const struct mc_announce *a = &p->u.ann;

		wcur_u8(&w, a->state);
		wcur_u8(&w, a->flags);
		wcur_u16(&w, a->sym_size);
		wcur_u16(&w, a->report_ms);
		wcur_u16(&w, a->nreceivers);
		wcur_u32(&w, a->rate_kbps);
		wcur_u32(&w, a->chunk_count);
		wcur_u64(&w, a->image_size);
		wcur_u32(&w, a->manifest_len);
		wcur_bytes(&w, a->manifest_digest, sizeof(a->manifest_digest));
		break;
	}
	case MC_MANIFEST:
		wcur_u32(&w, p->u.frag.total);
		wcur_u32(&w, p->u.frag.offset);
		wcur_bytes(&w, p->u.frag.payload, p->u.frag.len);
		break;
	case MC_POLL:
		wcur_u32(&w, p->u.poll.sweep);
		wcur_u32(&w, p->u.poll.cursor);
		wcur_u16(&w, p->u.poll.backoff_ms);
		wcur_u16(&w, p->u.poll.round);
		break;
	case MC_REPAIR_ADV:
	case MC_NACK:
		if (p->u.list.n > MC_MAX_NACK)
			return -EINVAL;
		enc_list(&w, &p->u.list, p->h.type == MC_NACK);
		break;
	case MC_END:
		wcur_u8(&w, p->u.end_code);
		break;
	case MC_HELLO:
		if (p->u.hello.namelen > MC_MAX_NAME)
			return -EINVAL;
		wcur_u32(&w, p->u.hello.rid);
		wcur_u32(&w, p->u.hello.nonce);
		wcur_u8(&w, p->u.hello.flags);
		wcur_u8(&w, p->u.hello.namelen);
		wcur_bytes(&w, p->u.hello.name, p->u.hello.namelen);
		break;
	case MC_NEED:
		if (p->u.need.nbits > MC_MAX_NEED_BITS)
			return -EINVAL;
		wcur_u32(&w, p->u.need.rid);
		wcur_u32(&w, p->u.need.first);
		wcur_u16(&w, p->u.need.nbits);
		wcur_u8(&w, p->u.need.flags);
		wcur_bytes(&w, p->u.need.bits, (p->u.need.nbits + 7u) / 8u);
		break;
	case MC_STATUS: {
		const struct mc_status *s = &p->u.st;

		wcur_u32(&w, s->rid);
		wcur_u8(&w, s->state);
		wcur_u8(&w, s->code);
		wcur_u16(&w, s->loss_permille);
		wcur_u32(&w, s->chunks_done);
		wcur_u32(&w, s->chunks_needed);
		wcur_u64(&w, s->bytes);
		wcur_u32(&w, s->delay_us);
		wcur_u32(&w, s->rx_pkts);
		wcur_u32(&w, s->overflows);
		break;
	}
	case MC_WELCOME:
	case MC_DONE_ACK:
		wcur_u32(&w, p->u.ack.rid);
		break;
	case MC_NEED_ACK:
		wcur_u32(&w, p->u.ack.rid);
		wcur_u32(&w, p->u.ack.first);
		wcur_u16(&w, p->u.ack.nbits);
		break;
	case MC_DROP:
		if (p->u.drop.textlen > MC_MAX_TEXT)
			return -EINVAL;
		wcur_u32(&w, p->u.drop.rid);
		wcur_u8(&w, p->u.drop.code);
		wcur_u8(&w, p->u.drop.textlen);
		wcur_bytes(&w, p->u.drop.text, p->u.drop.textlen);
		break;
	default:
		return -EINVAL;
	}
	if (keylen > 0 && type_has_tag(p->h.type)) {
		uint8_t *t = wcur_reserve(&w, MC_TAG_LEN);

		if (t)
			tag(key, keylen, buf, w.off - MC_TAG_LEN, t);
	}
	if (w.err || w.off > MC_MAX_PKT)
		return -ENOSPC;
	return (int)w.off;
}

void mc_geom(uint32_t stored_len, struct mc_geom *g)
{
	g->nsym = (stored_len + MC_SYM - 1) / MC_SYM;
	g->nblocks = (uint16_t)((g->nsym + FEC_MAX_K - 1) / FEC_MAX_K);
}

void mc_block(const struct mc_geom *g, uint16_t b, uint32_t *first, uint16_t *k)
{
	uint32_t base, extra;

	if (g->nblocks == 0) {
		*first = 0;
		*k = 0;
		return;
	}
	base = g->nsym / g->nblocks;
	extra = g->nsym % g->nblocks;

	*k = (uint16_t)(base + (b < extra ? 1 : 0));
	*first = b * base + (b < extra ? b : extra);
}
