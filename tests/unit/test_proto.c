/*
 * Unit tests for proto.c: the wire codec of mlcast. Every packet type goes
 * through encode and decode with and without a key; the tag is checked
 * against a wrong key, a flipped bit and its absence; every malformed case
 * the decoder must refuse is built by patching a valid packet at the offset
 * of the field (the offsets are those of the tables in
 * docs/mcast-protocol.md); and mc_geom()/mc_block() are checked to cover a
 * chunk's symbols exactly once with blocks of nearly equal size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fec.h"
#include "proto.h"
#include "sha256.h"

static const uint8_t key[] = "a shared key of 32 bytes length";
static const uint8_t other_key[] = "a shared key of 32 bytes lengtH";
#define KEYLEN (sizeof(key) - 1)

static const uint8_t all_types[] = {MC_DATA,    MC_ANNOUNCE, MC_MANIFEST, MC_POLL, MC_REPAIR_ADV,
                                    MC_END,     MC_HELLO,    MC_NEED,     MC_NACK, MC_STATUS,
                                    MC_WELCOME, MC_NEED_ACK, MC_DONE_ACK, MC_DROP};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static uint8_t payload[MC_SYM];
static uint8_t need_bits[MC_MAX_NEED_BITS / 8];

static bool tagged(uint8_t type)
{
	return type != MC_DATA && type != MC_MANIFEST;
}

static void fill_payloads(void)
{
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(need_bits); i++)
		need_bits[i] = (uint8_t)(i * 13 + 5);
}

/*
 * A valid packet of the given type, every field set to a value with high
 * bits so that a byte-order or width mistake shows.
 */
static void sample(uint8_t type, struct mc_pkt *p)
{
	memset(p, 0, sizeof(*p));
	fill_payloads();
	p->h.type = type;
	p->h.session = 0xA1B2C3D4u;
	p->h.seq = 0xF0E1D2C3u;
	switch (type) {
	case MC_DATA:
		p->u.data.chunk = 0x89ABCDEFu;
		p->u.data.block = 0xBEEF;
		p->u.data.sym = 0xFE;
		p->u.data.flags = 0x81;
		p->u.data.tx_us = 0xDEADBEEFu;
		p->u.data.payload = payload;
		p->u.data.len = 1000;
		break;
	case MC_ANNOUNCE:
		p->u.ann.state = MC_S_SENDING;
		p->u.ann.flags = MC_AF_AUTH;
		p->u.ann.sym_size = MC_SYM;
		p->u.ann.report_ms = 0x8123;
		p->u.ann.nreceivers = 0xFFFE;
		p->u.ann.rate_kbps = 0x80000001u;
		p->u.ann.chunk_count = 0x00FEDCBAu;
		p->u.ann.image_size = 0x8877665544332211ull;
		p->u.ann.manifest_len = 0x90000003u;
		for (int i = 0; i < 32; i++)
			p->u.ann.manifest_digest[i] = (uint8_t)(0xC0 + i);
		break;
	case MC_MANIFEST:
		p->u.frag.total = 0x80000000u;
		p->u.frag.offset = 0x7FFFFA60u;
		p->u.frag.payload = payload;
		p->u.frag.len = MC_SYM;
		break;
	case MC_POLL:
		p->u.poll.sweep = 0x80000002u;
		p->u.poll.cursor = 0x00FFFFFFu;
		p->u.poll.backoff_ms = 0x8014;
		p->u.poll.round = 0xFFFF;
		break;
	case MC_REPAIR_ADV:
	case MC_NACK:
		p->u.list.rid = type == MC_NACK ? 0x87654321u : 0;
		p->u.list.round = 0x8001;
		p->u.list.n = 3;
		for (uint16_t i = 0; i < 3; i++) {
			p->u.list.e[i].chunk = 0x80000000u + i;
			p->u.list.e[i].block = i == 2 ? MC_BLOCK_WHOLE : (uint16_t)(0x8000 + i);
			p->u.list.e[i].count = (uint16_t)(0x80F0 + i);
		}
		break;
	case MC_END:
		p->u.end_code = 0x9C;
		break;
	case MC_HELLO:
		p->u.hello.rid = 0xCAFEBABEu;
		p->u.hello.nonce = 0x0BADF00Du;
		p->u.hello.flags = MC_HF_HAVE_MANIFEST | MC_HF_RESUMED;
		p->u.hello.namelen = 11;
		memcpy(p->u.hello.name, "lab-pc-\x01\x7f\xff!", 11);
		break;
	case MC_NEED:
		p->u.need.rid = 0x80808080u;
		p->u.need.first = 0xFFFFF000u;
		p->u.need.nbits = 77;
		p->u.need.flags = MC_NF_LAST;
		p->u.need.bits = need_bits;
		break;
	case MC_STATUS:
		p->u.st.rid = 0x8BADF00Du;
		p->u.st.state = MC_R_FAILED;
		p->u.st.code = 0x85;
		p->u.st.loss_permille = 1000;
		p->u.st.chunks_done = 0x80000007u;
		p->u.st.chunks_needed = 0xFFFFFFFFu;
		p->u.st.bytes = 0xF123456789ABCDEFull;
		p->u.st.delay_us = 0x80000009u;
		p->u.st.rx_pkts = 0x8000000Au;
		p->u.st.overflows = 0x7000000Bu;
		break;
	case MC_WELCOME:
	case MC_DONE_ACK:
		p->u.ack.rid = 0x9ABCDEF0u;
		break;
	case MC_NEED_ACK:
		p->u.ack.rid = 0x9ABCDEF0u;
		p->u.ack.first = 0x80002000u;
		p->u.ack.nbits = MC_MAX_NEED_BITS;
		break;
	case MC_DROP:
		p->u.drop.rid = 0xFEEDFACEu;
		p->u.drop.code = 0x82;
		p->u.drop.textlen = 23;
		memcpy(p->u.drop.text, "too slow \xff\x00 for the floor", 23);
		break;
	default:
		fail();
	}
}

/*
 * Encodes p into buf; for DATA the payload follows the 24-byte header, as the
 * sender's second iovec puts it. Returns the datagram length.
 */
static size_t build(const struct mc_pkt *p, uint8_t *buf, size_t cap, const uint8_t *k, size_t klen)
{
	int n = mc_encode(p, buf, cap, k, klen);

	assert_true(n >= MC_HDR_LEN);
	if (p->h.type == MC_DATA) {
		assert_int_equal(n, MC_DATA_HDR_LEN);
		assert_true((size_t)n + p->u.data.len <= cap);
		memcpy(buf + n, p->u.data.payload, p->u.data.len);
		n += p->u.data.len;
	}
	return (size_t)n;
}

/* The fields that matter of two packets of the same type. */
static void assert_same(const struct mc_pkt *a, const struct mc_pkt *b)
{
	assert_int_equal(a->h.type, b->h.type);
	assert_int_equal(a->h.session, b->h.session);
	assert_int_equal(a->h.seq, b->h.seq);
	switch (a->h.type) {
	case MC_DATA:
		assert_int_equal(a->u.data.chunk, b->u.data.chunk);
		assert_int_equal(a->u.data.block, b->u.data.block);
		assert_int_equal(a->u.data.sym, b->u.data.sym);
		assert_int_equal(a->u.data.flags, b->u.data.flags);
		assert_int_equal(a->u.data.tx_us, b->u.data.tx_us);
		assert_int_equal(a->u.data.len, b->u.data.len);
		assert_memory_equal(a->u.data.payload, b->u.data.payload, a->u.data.len);
		break;
	case MC_ANNOUNCE:
		assert_int_equal(a->u.ann.state, b->u.ann.state);
		assert_int_equal(a->u.ann.flags, b->u.ann.flags);
		assert_int_equal(a->u.ann.sym_size, b->u.ann.sym_size);
		assert_int_equal(a->u.ann.report_ms, b->u.ann.report_ms);
		assert_int_equal(a->u.ann.nreceivers, b->u.ann.nreceivers);
		assert_int_equal(a->u.ann.rate_kbps, b->u.ann.rate_kbps);
		assert_int_equal(a->u.ann.chunk_count, b->u.ann.chunk_count);
		assert_true(a->u.ann.image_size == b->u.ann.image_size);
		assert_int_equal(a->u.ann.manifest_len, b->u.ann.manifest_len);
		assert_memory_equal(a->u.ann.manifest_digest, b->u.ann.manifest_digest, 32);
		break;
	case MC_MANIFEST:
		assert_int_equal(a->u.frag.total, b->u.frag.total);
		assert_int_equal(a->u.frag.offset, b->u.frag.offset);
		assert_int_equal(a->u.frag.len, b->u.frag.len);
		assert_memory_equal(a->u.frag.payload, b->u.frag.payload, a->u.frag.len);
		break;
	case MC_POLL:
		assert_int_equal(a->u.poll.sweep, b->u.poll.sweep);
		assert_int_equal(a->u.poll.cursor, b->u.poll.cursor);
		assert_int_equal(a->u.poll.backoff_ms, b->u.poll.backoff_ms);
		assert_int_equal(a->u.poll.round, b->u.poll.round);
		break;
	case MC_REPAIR_ADV:
	case MC_NACK:
		assert_int_equal(a->u.list.rid, b->u.list.rid);
		assert_int_equal(a->u.list.round, b->u.list.round);
		assert_int_equal(a->u.list.n, b->u.list.n);
		for (uint16_t i = 0; i < a->u.list.n; i++) {
			assert_int_equal(a->u.list.e[i].chunk, b->u.list.e[i].chunk);
			assert_int_equal(a->u.list.e[i].block, b->u.list.e[i].block);
			assert_int_equal(a->u.list.e[i].count, b->u.list.e[i].count);
		}
		break;
	case MC_END:
		assert_int_equal(a->u.end_code, b->u.end_code);
		break;
	case MC_HELLO:
		assert_int_equal(a->u.hello.rid, b->u.hello.rid);
		assert_int_equal(a->u.hello.nonce, b->u.hello.nonce);
		assert_int_equal(a->u.hello.flags, b->u.hello.flags);
		assert_int_equal(a->u.hello.namelen, b->u.hello.namelen);
		assert_memory_equal(a->u.hello.name, b->u.hello.name, a->u.hello.namelen);
		break;
	case MC_NEED:
		assert_int_equal(a->u.need.rid, b->u.need.rid);
		assert_int_equal(a->u.need.first, b->u.need.first);
		assert_int_equal(a->u.need.nbits, b->u.need.nbits);
		assert_int_equal(a->u.need.flags, b->u.need.flags);
		assert_memory_equal(a->u.need.bits, b->u.need.bits, (a->u.need.nbits + 7u) / 8u);
		break;
	case MC_STATUS:
		assert_int_equal(a->u.st.rid, b->u.st.rid);
		assert_int_equal(a->u.st.state, b->u.st.state);
		assert_int_equal(a->u.st.code, b->u.st.code);
		assert_int_equal(a->u.st.loss_permille, b->u.st.loss_permille);
		assert_int_equal(a->u.st.chunks_done, b->u.st.chunks_done);
		assert_int_equal(a->u.st.chunks_needed, b->u.st.chunks_needed);
		assert_true(a->u.st.bytes == b->u.st.bytes);
		assert_int_equal(a->u.st.delay_us, b->u.st.delay_us);
		assert_int_equal(a->u.st.rx_pkts, b->u.st.rx_pkts);
		assert_int_equal(a->u.st.overflows, b->u.st.overflows);
		break;
	case MC_WELCOME:
	case MC_DONE_ACK:
		assert_int_equal(a->u.ack.rid, b->u.ack.rid);
		break;
	case MC_NEED_ACK:
		assert_int_equal(a->u.ack.rid, b->u.ack.rid);
		assert_int_equal(a->u.ack.first, b->u.ack.first);
		assert_int_equal(a->u.ack.nbits, b->u.ack.nbits);
		break;
	case MC_DROP:
		assert_int_equal(a->u.drop.rid, b->u.drop.rid);
		assert_int_equal(a->u.drop.code, b->u.drop.code);
		assert_int_equal(a->u.drop.textlen, b->u.drop.textlen);
		assert_memory_equal(a->u.drop.text, b->u.drop.text, a->u.drop.textlen);
		break;
	default:
		fail();
	}
}

/* The body length without a tag of each sample (docs/mcast-protocol.md tables). */
static size_t body_len(const struct mc_pkt *p)
{
	switch (p->h.type) {
	case MC_DATA:
		return 12u + p->u.data.len;
	case MC_ANNOUNCE:
		return 60;
	case MC_MANIFEST:
		return 8u + p->u.frag.len;
	case MC_POLL:
		return 12;
	case MC_REPAIR_ADV:
		return 4u + 8u * p->u.list.n;
	case MC_NACK:
		return 8u + 8u * p->u.list.n;
	case MC_END:
		return 1;
	case MC_HELLO:
		return 10u + p->u.hello.namelen;
	case MC_NEED:
		return 11u + (p->u.need.nbits + 7u) / 8u;
	case MC_STATUS:
		return 36;
	case MC_WELCOME:
	case MC_DONE_ACK:
		return 4;
	case MC_NEED_ACK:
		return 10;
	case MC_DROP:
		return 6u + p->u.drop.textlen;
	default:
		fail();
	}
	return 0;
}

static void round_trip(const struct mc_pkt *p, const uint8_t *k, size_t klen)
{
	uint8_t buf[MC_MAX_PKT + 64];
	struct mc_pkt q;
	size_t n = build(p, buf, sizeof(buf), k, klen);
	size_t want = MC_HDR_LEN + body_len(p) + (klen && tagged(p->h.type) ? MC_TAG_LEN : 0);

	assert_int_equal(n, want);
	assert_true(n <= MC_MAX_PKT);
	memset(&q, 0x5A, sizeof(q));
	assert_int_equal(mc_decode(buf, n, k, klen, &q), 0);
	assert_same(p, &q);
	/* Decoded pointers point into the datagram, never at a copy. */
	if (p->h.type == MC_DATA)
		assert_ptr_equal(q.u.data.payload, buf + MC_DATA_HDR_LEN);
	if (p->h.type == MC_MANIFEST)
		assert_ptr_equal(q.u.frag.payload, buf + MC_HDR_LEN + 8);
	if (p->h.type == MC_NEED)
		assert_ptr_equal(q.u.need.bits, buf + MC_HDR_LEN + 11);
	if (p->h.type == MC_HELLO)
		assert_int_equal(q.u.hello.name[q.u.hello.namelen], '\0');
	if (p->h.type == MC_DROP)
		assert_int_equal(q.u.drop.text[q.u.drop.textlen], '\0');
}

static void test_round_trip(void **state)
{
	struct mc_pkt p;

	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		sample(all_types[i], &p);
		round_trip(&p, NULL, 0);
		round_trip(&p, key, KEYLEN);
	}
}

/* The extremes of every variable-length field, with and without a key. */
static void test_round_trip_limits(void **state)
{
	struct mc_pkt p;

	(void)state;
	for (int keyed = 0; keyed < 2; keyed++) {
		const uint8_t *k = keyed ? key : NULL;
		size_t kl = keyed ? KEYLEN : 0;

		sample(MC_DATA, &p);
		p.u.data.len = 1;
		p.u.data.sym = 0;
		round_trip(&p, k, kl);
		p.u.data.len = MC_SYM;
		p.u.data.sym = FEC_MAX_N - 1;
		round_trip(&p, k, kl);

		sample(MC_MANIFEST, &p);
		p.u.frag.total = 1;
		p.u.frag.offset = 0;
		p.u.frag.len = 1;
		round_trip(&p, k, kl);
		p.u.frag.total = 3 * MC_SYM;
		p.u.frag.offset = 2 * MC_SYM;
		p.u.frag.len = MC_SYM;
		round_trip(&p, k, kl);
		p.u.frag.total = 0xFFFFFFFFu;
		p.u.frag.offset = 0xFFFFFFFFu - 7;
		p.u.frag.len = 7;
		round_trip(&p, k, kl);

		for (int nack = 0; nack < 2; nack++) {
			sample(nack ? MC_NACK : MC_REPAIR_ADV, &p);
			p.u.list.n = 0;
			round_trip(&p, k, kl);
			p.u.list.n = MC_MAX_NACK;
			for (uint16_t i = 0; i < MC_MAX_NACK; i++)
				p.u.list.e[i] = (struct mc_entry){0xFFFFFFFFu - i, i, (uint16_t)~i};
			round_trip(&p, k, kl);
		}

		sample(MC_HELLO, &p);
		p.u.hello.namelen = 0;
		round_trip(&p, k, kl);
		p.u.hello.namelen = MC_MAX_NAME;
		memset(p.u.hello.name, 'n', MC_MAX_NAME);
		round_trip(&p, k, kl);

		sample(MC_NEED, &p);
		for (uint16_t nb = 0; nb <= 9; nb++) {
			p.u.need.nbits = nb;
			round_trip(&p, k, kl);
		}
		p.u.need.nbits = MC_MAX_NEED_BITS;
		round_trip(&p, k, kl);

		sample(MC_STATUS, &p);
		for (uint8_t s = MC_R_MANIFEST; s <= MC_R_FAILED; s++) {
			p.u.st.state = s;
			p.u.st.loss_permille = (uint16_t)(s * 150);
			round_trip(&p, k, kl);
		}

		sample(MC_ANNOUNCE, &p);
		for (uint8_t s = MC_S_WAITING; s <= MC_S_ENDING; s++) {
			p.u.ann.state = s;
			p.u.ann.report_ms = 1;
			round_trip(&p, k, kl);
		}

		sample(MC_DROP, &p);
		p.u.drop.textlen = 0;
		round_trip(&p, k, kl);
		p.u.drop.textlen = MC_MAX_TEXT;
		memset(p.u.drop.text, 'x', MC_MAX_TEXT);
		round_trip(&p, k, kl);
	}
}

/* The header's bytes, and the tag as HMAC-SHA-256 of everything before it. */
static void test_wire_layout(void **state)
{
	static const uint8_t poll[] = {0x4D, 0x43, 0x01, MC_POLL, 0xA1, 0xB2, 0xC3, 0xD4,
	                               0xF0, 0xE1, 0xD2, 0xC3,    0x80, 0x00, 0x00, 0x02,
	                               0x00, 0xFF, 0xFF, 0xFF,    0x80, 0x14, 0xFF, 0xFF};
	static const uint8_t data[] = {0x4D, 0x43, 0x01, MC_DATA, 0xA1, 0xB2, 0xC3, 0xD4,
	                               0xF0, 0xE1, 0xD2, 0xC3,    0x89, 0xAB, 0xCD, 0xEF,
	                               0xBE, 0xEF, 0xFE, 0x81,    0xDE, 0xAD, 0xBE, 0xEF};
	uint8_t buf[MC_MAX_PKT], mac[SHA256_LEN];
	struct mc_pkt p;
	size_t n;

	(void)state;
	sample(MC_POLL, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(n, sizeof(poll));
	assert_memory_equal(buf, poll, sizeof(poll));

	n = build(&p, buf, sizeof(buf), key, KEYLEN);
	assert_int_equal(n, sizeof(poll) + MC_TAG_LEN);
	assert_memory_equal(buf, poll, sizeof(poll));
	hmac_sha256(key, KEYLEN, buf, sizeof(poll), NULL, 0, mac);
	assert_memory_equal(buf + sizeof(poll), mac, MC_TAG_LEN);

	/* DATA and MANIFEST never carry a tag, key or not. */
	sample(MC_DATA, &p);
	assert_int_equal(mc_encode(&p, buf, sizeof(buf), key, KEYLEN), MC_DATA_HDR_LEN);
	assert_memory_equal(buf, data, sizeof(data));
	sample(MC_MANIFEST, &p);
	assert_int_equal(build(&p, buf, sizeof(buf), key, KEYLEN),
	                 build(&p, buf, sizeof(buf), NULL, 0));
}

/* A key the sender does not have, and a packet sent without one. */
static void test_wrong_or_missing_tag(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p, q;

	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		size_t n;

		if (!tagged(all_types[i]))
			continue;
		sample(all_types[i], &p);
		n = build(&p, buf, sizeof(buf), key, KEYLEN);
		assert_int_equal(mc_decode(buf, n, other_key, KEYLEN, &q), MC_EBADTAG);
		/* A prefix of the key is another key. */
		assert_int_equal(mc_decode(buf, n, key, KEYLEN - 1, &q), MC_EBADTAG);
		/* No tag at all: the last 16 bytes of the body are taken for one. */
		n = build(&p, buf, sizeof(buf), NULL, 0);
		assert_int_equal(mc_decode(buf, n, key, KEYLEN, &q), MC_EBADTAG);
		/* A keyed packet read without a key has 16 bytes too many. */
		n = build(&p, buf, sizeof(buf), key, KEYLEN);
		assert_int_equal(mc_decode(buf, n, NULL, 0, &q), MC_EBADPKT);
		/* Cut anywhere inside the tag. */
		for (size_t cut = 1; cut <= MC_TAG_LEN; cut++)
			assert_int_equal(mc_decode(buf, n - cut, key, KEYLEN, &q), MC_EBADTAG);
		/* A byte after the tag moves the tag. */
		buf[n] = 0;
		assert_int_equal(mc_decode(buf, n + 1, key, KEYLEN, &q), MC_EBADTAG);
	}
	/* Header only, with a key: too short to hold a tag. */
	sample(MC_WELCOME, &p);
	build(&p, buf, sizeof(buf), NULL, 0);
	for (size_t n = MC_HDR_LEN; n < MC_HDR_LEN + MC_TAG_LEN; n++)
		assert_int_equal(mc_decode(buf, n, key, KEYLEN, &q), MC_EBADTAG);
	/* DATA and MANIFEST decode with a key: they have no tag to check. */
	for (int t = 0; t < 2; t++) {
		size_t n;

		sample(t ? MC_DATA : MC_MANIFEST, &p);
		n = build(&p, buf, sizeof(buf), NULL, 0);
		assert_int_equal(mc_decode(buf, n, key, KEYLEN, &q), 0);
		assert_same(&p, &q);
	}
}

/*
 * Every single-bit flip of a tagged packet is refused. The one exception is
 * the type byte: the tag covers it, but a flip can turn a tagged type into
 * DATA or MANIFEST, which carry no tag and are checked by the chunk hashes
 * and the manifest digest instead. Such a packet decodes as a (bogus) DATA or
 * MANIFEST; the test pins that down so the property is known.
 */
static void test_flipped_bits(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p, q;

	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		size_t n;

		if (!tagged(all_types[i]))
			continue;
		sample(all_types[i], &p);
		n = build(&p, buf, sizeof(buf), key, KEYLEN);
		for (size_t bit = 0; bit < n * 8; bit++) {
			int rc;

			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = mc_decode(buf, n, key, KEYLEN, &q);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (rc == 0) {
				assert_int_equal(bit / 8, 3);
				assert_false(tagged(q.h.type));
				assert_false(tagged((uint8_t)(all_types[i] ^ (1u << (bit % 8)))));
				continue;
			}
			assert_true(rc == MC_EBADTAG || rc == MC_EBADPKT);
			/* Past the header, only the tag can tell. */
			if (bit / 8 >= 4)
				assert_int_equal(rc, MC_EBADTAG);
		}
		assert_int_equal(mc_decode(buf, n, key, KEYLEN, &q), 0);
	}
}

static void test_short_header(void **state)
{
	uint8_t buf[MC_MAX_PKT + 8];
	struct mc_pkt p, q;
	size_t n;

	(void)state;
	sample(MC_END, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(n, MC_HDR_LEN + 1);
	for (size_t len = 0; len < MC_HDR_LEN; len++) {
		assert_int_equal(mc_decode(buf, len, NULL, 0, &q), MC_EBADPKT);
		assert_int_equal(mc_decode(buf, len, key, KEYLEN, &q), MC_EBADPKT);
	}
	/* Longer than any datagram mlcast sends. */
	sample(MC_DATA, &p);
	p.u.data.len = MC_SYM;
	n = build(&p, buf, sizeof(buf), NULL, 0);
	memset(buf + n, 0, sizeof(buf) - n);
	assert_int_equal(mc_decode(buf, MC_MAX_PKT + 1, NULL, 0, &q), MC_EBADPKT);
}

static void test_bad_magic_version_type(void **state)
{
	static const uint8_t bad_types[] = {0, 7, 8, 15, 20, 31, 36, 64, 128, 255};
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p, q;
	size_t n;

	(void)state;
	sample(MC_STATUS, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(mc_decode(buf, n, NULL, 0, &q), 0);
	buf[0] = 'm';
	assert_int_equal(mc_decode(buf, n, NULL, 0, &q), MC_EBADPKT);
	buf[0] = 0x4D;
	buf[1] = 0x44;
	assert_int_equal(mc_decode(buf, n, NULL, 0, &q), MC_EBADPKT);
	buf[1] = 0x43;
	for (unsigned v = 0; v < 256; v++) {
		buf[2] = (uint8_t)v;
		assert_int_equal(mc_decode(buf, n, NULL, 0, &q), v == MC_VERSION ? 0 : MC_EBADPKT);
	}
	buf[2] = MC_VERSION;
	for (size_t i = 0; i < sizeof(bad_types); i++) {
		buf[3] = bad_types[i];
		assert_int_equal(mc_decode(buf, n, NULL, 0, &q), MC_EBADPKT);
	}
	/* A bad magic or version is refused before the tag is looked at. */
	n = build(&p, buf, sizeof(buf), key, KEYLEN);
	buf[2] = 2;
	assert_int_equal(mc_decode(buf, n, key, KEYLEN, &q), MC_EBADPKT);
	/* mc_encode refuses a type it does not know. */
	p.h.type = 7;
	assert_int_equal(mc_encode(&p, buf, sizeof(buf), NULL, 0), -EINVAL);
}

static void put16(uint8_t *b, size_t off, uint16_t v)
{
	b[off] = (uint8_t)(v >> 8);
	b[off + 1] = (uint8_t)v;
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	b[off] = (uint8_t)(v >> 24);
	b[off + 1] = (uint8_t)(v >> 16);
	b[off + 2] = (uint8_t)(v >> 8);
	b[off + 3] = (uint8_t)v;
}

static int dec(const uint8_t *buf, size_t n)
{
	struct mc_pkt q;

	return mc_decode(buf, n, NULL, 0, &q);
}

static void test_bad_data(void **state)
{
	uint8_t buf[MC_MAX_PKT + 8];
	struct mc_pkt p;
	size_t n;

	(void)state;
	sample(MC_DATA, &p);
	p.u.data.len = MC_SYM;
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(dec(buf, n), 0);
	/* Empty payload, and a header cut short. */
	for (size_t len = MC_HDR_LEN; len <= MC_DATA_HDR_LEN; len++)
		assert_int_equal(dec(buf, len), MC_EBADPKT);
	assert_int_equal(dec(buf, MC_DATA_HDR_LEN + 1), 0);
	/* One byte more than a symbol. */
	buf[n] = 0;
	assert_int_equal(dec(buf, n + 1), MC_EBADPKT);
	/* Symbol index 255 is not a symbol of an RS(255) code. */
	buf[18] = 0xFF;
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	buf[18] = 0xFE;
	assert_int_equal(dec(buf, n), 0);
}

static void test_bad_manifest(void **state)
{
	uint8_t buf[MC_MAX_PKT + 8];
	struct mc_pkt p;
	size_t n;

	(void)state;
	sample(MC_MANIFEST, &p);
	p.u.frag.total = 3000;
	p.u.frag.offset = 1440;
	p.u.frag.len = 1000;
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(dec(buf, n), 0);
	/* Offset at or past the total. */
	put32(buf, 16, 3000);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put32(buf, 16, 0xFFFFFFFFu);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	/* Offset + length past the total, also where the sum wraps around 2^32. */
	put32(buf, 16, 2001);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put32(buf, 16, 2000);
	assert_int_equal(dec(buf, n), 0);
	put32(buf, 12, 0xFFFFFFFFu);
	put32(buf, 16, 0xFFFFFFFFu - 1000);
	assert_int_equal(dec(buf, n), 0);
	put32(buf, 16, 0xFFFFFFFFu - 999);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	/* A total of zero has no valid offset. */
	put32(buf, 12, 0);
	put32(buf, 16, 0);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	/* No payload, a short header, a payload longer than a symbol. */
	put32(buf, 12, 100000);
	put32(buf, 16, 0);
	for (size_t len = MC_HDR_LEN; len <= MC_HDR_LEN + 8; len++)
		assert_int_equal(dec(buf, len), MC_EBADPKT);
	memset(buf + n, 0, sizeof(buf) - n);
	assert_int_equal(dec(buf, MC_HDR_LEN + 8 + MC_SYM), 0);
	assert_int_equal(dec(buf, MC_HDR_LEN + 8 + MC_SYM + 1), MC_EBADPKT);
}

/* NACK (rid at 12, list at 16) and REPAIR_ADV (list at 12). */
static void test_bad_list(void **state)
{
	uint8_t buf[MC_MAX_PKT + 8];
	struct mc_pkt p;

	(void)state;
	for (int nack = 0; nack < 2; nack++) {
		size_t at = nack ? 16 : 12, n;

		sample(nack ? MC_NACK : MC_REPAIR_ADV, &p);
		p.u.list.n = MC_MAX_NACK;
		n = build(&p, buf, sizeof(buf), NULL, 0);
		assert_int_equal(n, at + 4 + 8u * MC_MAX_NACK);
		assert_int_equal(dec(buf, n), 0);
		/* More entries than allowed, with the bytes there to back them. */
		put16(buf, at + 2, MC_MAX_NACK + 1);
		memset(buf + n, 0, 8);
		assert_int_equal(dec(buf, n + 8), MC_EBADPKT);
		put16(buf, at + 2, 0xFFFF);
		assert_int_equal(dec(buf, n + 8), MC_EBADPKT);
		/* A count that does not match the length, either way. */
		put16(buf, at + 2, 3);
		assert_int_equal(dec(buf, at + 4 + 8 * 3), 0);
		assert_int_equal(dec(buf, at + 4 + 8 * 2), MC_EBADPKT);
		assert_int_equal(dec(buf, at + 4 + 8 * 4), MC_EBADPKT);
		assert_int_equal(dec(buf, at + 4 + 8 * 3 - 1), MC_EBADPKT);
		assert_int_equal(dec(buf, at + 4 + 8 * 3 + 1), MC_EBADPKT);
		put16(buf, at + 2, 0);
		assert_int_equal(dec(buf, at + 4), 0);
		assert_int_equal(dec(buf, at + 3), MC_EBADPKT);
	}
}

static void test_bad_hello(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p, q;
	size_t n;

	(void)state;
	sample(MC_HELLO, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(dec(buf, n), 0);
	/* rid 0 means "no receiver". */
	put32(buf, 12, 0);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put32(buf, 12, 1);
	/* The name claims more bytes than there are, or fewer. */
	buf[21] = (uint8_t)(p.u.hello.namelen + 1);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	buf[21] = (uint8_t)(p.u.hello.namelen - 1);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	/* A name longer than MC_MAX_NAME, with every byte present. */
	memset(buf + 22, 'a', MC_MAX_NAME + 1);
	buf[21] = MC_MAX_NAME;
	assert_int_equal(dec(buf, 22 + MC_MAX_NAME), 0);
	buf[21] = MC_MAX_NAME + 1;
	assert_int_equal(dec(buf, 22 + MC_MAX_NAME + 1), MC_EBADPKT);
	buf[21] = 0xFF;
	memset(buf + 22, 'a', 0xFF);
	assert_int_equal(dec(buf, 22 + 0xFF), MC_EBADPKT);
	/* An embedded NUL is kept as a byte; the copy is still terminated. */
	buf[21] = 3;
	memcpy(buf + 22, "a\0b", 3);
	assert_int_equal(mc_decode(buf, 25, NULL, 0, &q), 0);
	assert_memory_equal(q.u.hello.name, "a\0b", 4);
	/* Cut inside the fixed fields. */
	assert_int_equal(dec(buf, 21), MC_EBADPKT);
}

static void test_bad_need(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p;
	size_t n;

	(void)state;
	memset(buf, 0, sizeof(buf));
	sample(MC_NEED, &p);
	p.u.need.nbits = MC_MAX_NEED_BITS;
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(n, 23 + MC_MAX_NEED_BITS / 8);
	assert_int_equal(dec(buf, n), 0);
	/* More bits than a NEED may carry, with the bytes there. */
	put16(buf, 20, MC_MAX_NEED_BITS + 1);
	assert_int_equal(dec(buf, n + 1), MC_EBADPKT);
	put16(buf, 20, 0xFFFF);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	/* A bitmap one byte short, or one byte long. */
	put16(buf, 20, 17); /* 3 bytes */
	assert_int_equal(dec(buf, 23 + 3), 0);
	assert_int_equal(dec(buf, 23 + 2), MC_EBADPKT);
	assert_int_equal(dec(buf, 23 + 4), MC_EBADPKT);
	put16(buf, 20, 0);
	assert_int_equal(dec(buf, 23), 0);
	assert_int_equal(dec(buf, 22), MC_EBADPKT);
}

static void test_bad_status(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p;
	size_t n;

	(void)state;
	sample(MC_STATUS, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	for (unsigned s = 0; s < 256; s++) {
		buf[16] = (uint8_t)s;
		assert_int_equal(dec(buf, n),
		                 s >= MC_R_MANIFEST && s <= MC_R_FAILED ? 0 : MC_EBADPKT);
	}
	buf[16] = MC_R_RECEIVING;
	put16(buf, 18, 1000);
	assert_int_equal(dec(buf, n), 0);
	put16(buf, 18, 1001);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put16(buf, 18, 0xFFFF);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
}

static void test_bad_announce(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p;
	size_t n;

	(void)state;
	sample(MC_ANNOUNCE, &p);
	n = build(&p, buf, sizeof(buf), NULL, 0);
	assert_int_equal(n, 72);
	for (unsigned s = 0; s < 256; s++) {
		buf[12] = (uint8_t)s;
		assert_int_equal(dec(buf, n),
		                 s >= MC_S_WAITING && s <= MC_S_ENDING ? 0 : MC_EBADPKT);
	}
	buf[12] = MC_S_SENDING;
	/* Another symbol size is another protocol. */
	put16(buf, 14, MC_SYM - 1);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put16(buf, 14, MC_SYM);
	/* A report interval of zero would make receivers report without pause. */
	put16(buf, 16, 0);
	assert_int_equal(dec(buf, n), MC_EBADPKT);
	put16(buf, 16, 1);
	assert_int_equal(dec(buf, n), 0);
}

static void test_bad_drop(void **state)
{
	uint8_t buf[MC_MAX_PKT];
	struct mc_pkt p;

	(void)state;
	sample(MC_DROP, &p);
	build(&p, buf, sizeof(buf), NULL, 0);
	memset(buf + 18, 't', 0xFF);
	buf[17] = MC_MAX_TEXT;
	assert_int_equal(dec(buf, 18 + MC_MAX_TEXT), 0);
	buf[17] = MC_MAX_TEXT + 1;
	assert_int_equal(dec(buf, 18 + MC_MAX_TEXT + 1), MC_EBADPKT);
	buf[17] = 10;
	assert_int_equal(dec(buf, 18 + 9), MC_EBADPKT);
	assert_int_equal(dec(buf, 18 + 11), MC_EBADPKT);
}

/*
 * A byte more or a byte less than its fields is refused for every type whose
 * length follows from its fields (all but DATA and MANIFEST, whose payload
 * is the rest of the datagram), with and without a key.
 */
static void test_trailing_and_truncated(void **state)
{
	uint8_t buf[MC_MAX_PKT + 8], mac[SHA256_LEN];
	struct mc_pkt p, q;

	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		size_t n;

		if (!tagged(all_types[i]))
			continue;
		sample(all_types[i], &p);
		n = build(&p, buf, sizeof(buf), NULL, 0);
		buf[n] = 0;
		assert_int_equal(mc_decode(buf, n + 1, NULL, 0, &q), MC_EBADPKT);
		for (size_t len = MC_HDR_LEN; len < n; len++)
			assert_int_equal(mc_decode(buf, len, NULL, 0, &q), MC_EBADPKT);
		/* With a key, and a tag that is right for the wrong length. */
		for (int d = -1; d <= 1; d += 2) {
			size_t len = n + (size_t)d;

			build(&p, buf, sizeof(buf), NULL, 0);
			buf[n] = 0;
			hmac_sha256(key, KEYLEN, buf, len, NULL, 0, mac);
			memcpy(buf + len, mac, MC_TAG_LEN);
			assert_int_equal(mc_decode(buf, len + MC_TAG_LEN, key, KEYLEN, &q),
			                 MC_EBADPKT);
		}
	}
}

static void test_encode_space(void **state)
{
	uint8_t buf[MC_MAX_PKT + 64];
	struct mc_pkt p;

	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		for (int keyed = 0; keyed < 2; keyed++) {
			const uint8_t *k = keyed ? key : NULL;
			size_t kl = keyed ? KEYLEN : 0;
			int n;

			sample(all_types[i], &p);
			n = mc_encode(&p, buf, sizeof(buf), k, kl);
			assert_true(n > 0);
			assert_int_equal(mc_encode(&p, buf, (size_t)n, k, kl), n);
			assert_int_equal(mc_encode(&p, buf, (size_t)n - 1, k, kl), -ENOSPC);
			assert_int_equal(mc_encode(&p, buf, 0, k, kl), -ENOSPC);
		}
	}
	/* A MANIFEST fragment that would exceed a datagram. */
	sample(MC_MANIFEST, &p);
	p.u.frag.len = MC_MAX_PKT - MC_HDR_LEN - 8 + 1;
	{
		static uint8_t big[MC_MAX_PKT];

		p.u.frag.payload = big;
		assert_int_equal(mc_encode(&p, buf, sizeof(buf), NULL, 0), -ENOSPC);
	}
}

static void test_type_names(void **state)
{
	static const char *const names[] = {"DATA",    "ANNOUNCE", "MANIFEST", "POLL", "REPAIR_ADV",
	                                    "END",     "HELLO",    "NEED",     "NACK", "STATUS",
	                                    "WELCOME", "NEED_ACK", "DONE_ACK", "DROP"};

	(void)state;
	for (size_t i = 0; i < NTYPES; i++)
		assert_string_equal(mc_type_name(all_types[i]), names[i]);
	assert_string_equal(mc_type_name(0), "UNKNOWN");
	assert_string_equal(mc_type_name(255), "UNKNOWN");
}

/*
 * For each stored length: the blocks cover the source symbols [0, nsym)
 * contiguously and exactly once, none is empty or larger than FEC_MAX_K,
 * their sizes differ by at most one (the larger ones first), and there are
 * as few blocks as FEC_MAX_K allows.
 */
static void test_geometry(void **state)
{
	static const uint32_t lens[] = {1,
	                                MC_SYM - 1,
	                                MC_SYM,
	                                MC_SYM + 1,
	                                2 * MC_SYM,
	                                FEC_MAX_K * MC_SYM - 1,
	                                FEC_MAX_K * MC_SYM,
	                                FEC_MAX_K * MC_SYM + 1,
	                                1u << 20,
	                                (1u << 20) + 1024,
	                                (64u << 10) + 1024,
	                                16u << 20,
	                                (16u << 20) + 1024};

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct mc_geom g;
		uint32_t next = 0;
		uint16_t kmin = UINT16_MAX, kmax = 0, prev = UINT16_MAX;

		mc_geom(lens[i], &g);
		assert_int_equal(g.nsym, (lens[i] + MC_SYM - 1) / MC_SYM);
		assert_int_equal(g.nblocks, (g.nsym + FEC_MAX_K - 1) / FEC_MAX_K);
		/* The last symbol is short or full, never empty. */
		assert_true(lens[i] - (g.nsym - 1) * MC_SYM >= 1);
		assert_true(lens[i] - (g.nsym - 1) * MC_SYM <= MC_SYM);
		for (uint16_t b = 0; b < g.nblocks; b++) {
			uint32_t first;
			uint16_t k;

			mc_block(&g, b, &first, &k);
			assert_int_equal(first, next);
			assert_true(k >= 1 && k <= FEC_MAX_K);
			assert_true(k <= prev);
			prev = k;
			next += k;
			kmin = k < kmin ? k : kmin;
			kmax = k > kmax ? k : kmax;
		}
		assert_int_equal(next, g.nsym);
		assert_true(kmax - kmin <= 1);
		/* The sender asks for every symbol index with sym < k < 255. */
		assert_true(kmax < FEC_MAX_N);
	}
	{
		struct mc_geom g;
		uint32_t first = 99;
		uint16_t k = 99;

		/* A zero chunk: nothing to send. */
		mc_geom(0, &g);
		assert_int_equal(g.nsym, 0);
		assert_int_equal(g.nblocks, 0);
		mc_block(&g, 0, &first, &k);
		assert_int_equal(first, 0);
		assert_int_equal(k, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_round_trip_limits),
	    cmocka_unit_test(test_wire_layout),
	    cmocka_unit_test(test_wrong_or_missing_tag),
	    cmocka_unit_test(test_flipped_bits),
	    cmocka_unit_test(test_short_header),
	    cmocka_unit_test(test_bad_magic_version_type),
	    cmocka_unit_test(test_bad_data),
	    cmocka_unit_test(test_bad_manifest),
	    cmocka_unit_test(test_bad_list),
	    cmocka_unit_test(test_bad_hello),
	    cmocka_unit_test(test_bad_need),
	    cmocka_unit_test(test_bad_status),
	    cmocka_unit_test(test_bad_announce),
	    cmocka_unit_test(test_bad_drop),
	    cmocka_unit_test(test_trailing_and_truncated),
	    cmocka_unit_test(test_encode_space),
	    cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_geometry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
