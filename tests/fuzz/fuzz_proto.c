/*
 * libFuzzer harness for mc_decode(), the parser of every datagram mlcast
 * receives. Each input is decoded three ways: without a key; with a fixed
 * key as given (almost always refused: the tag is wrong); and with the same
 * key after the last 16 bytes were replaced by the right tag, because random
 * mutations never keep an HMAC right and would otherwise never reach the body
 * decoder of the tagged types. Whatever decodes must satisfy the limits the
 * decoder promises, re-encode to exactly the same bytes (the format has one
 * encoding per packet: every byte is a field) and decode again to the same
 * packet. ASan and UBSan catch any read out of bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fec.h"
#include "proto.h"
#include "sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[32] = "mlcast fuzz key, 32 bytes long!";

static bool tagged(uint8_t type)
{
	return type != MC_DATA && type != MC_MANIFEST;
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* The promises of mc_decode() about a packet it accepted. */
static void check_limits(const struct mc_pkt *p, const uint8_t *buf, size_t len)
{
	switch (p->h.type) {
	case MC_DATA:
		if (p->u.data.len == 0 || p->u.data.len > MC_SYM || p->u.data.sym >= FEC_MAX_N ||
		    !inside(p->u.data.payload, p->u.data.len, buf, len))
			abort();
		break;
	case MC_ANNOUNCE:
		if (p->u.ann.state < MC_S_WAITING || p->u.ann.state > MC_S_ENDING ||
		    p->u.ann.sym_size != MC_SYM || p->u.ann.report_ms == 0)
			abort();
		break;
	case MC_MANIFEST:
		if (p->u.frag.len == 0 || p->u.frag.len > MC_SYM ||
		    p->u.frag.offset >= p->u.frag.total ||
		    p->u.frag.len > p->u.frag.total - p->u.frag.offset ||
		    !inside(p->u.frag.payload, p->u.frag.len, buf, len))
			abort();
		break;
	case MC_REPAIR_ADV:
	case MC_NACK:
		if (p->u.list.n > MC_MAX_NACK)
			abort();
		break;
	case MC_HELLO:
		if (p->u.hello.rid == 0 || p->u.hello.namelen > MC_MAX_NAME ||
		    p->u.hello.name[p->u.hello.namelen] != '\0')
			abort();
		break;
	case MC_NEED:
		if (p->u.need.nbits > MC_MAX_NEED_BITS ||
		    !inside(p->u.need.bits, (p->u.need.nbits + 7u) / 8u, buf, len))
			abort();
		break;
	case MC_STATUS:
		if (p->u.st.state < MC_R_MANIFEST || p->u.st.state > MC_R_FAILED ||
		    p->u.st.loss_permille > 1000)
			abort();
		break;
	case MC_DROP:
		if (p->u.drop.textlen > MC_MAX_TEXT || p->u.drop.text[p->u.drop.textlen] != '\0')
			abort();
		break;
	case MC_POLL:
	case MC_END:
	case MC_WELCOME:
	case MC_NEED_ACK:
	case MC_DONE_ACK:
		break;
	default:
		abort(); /* a type the decoder does not know was accepted */
	}
}

/*
 * The fields two packets must agree on. The variable parts are compared by
 * content; the decoder's copies of name and text are compared as bytes.
 */
static void check_same(const struct mc_pkt *a, const struct mc_pkt *b)
{
	bool same = a->h.type == b->h.type && a->h.session == b->h.session && a->h.seq == b->h.seq;

	if (!same)
		abort();
	switch (a->h.type) {
	case MC_DATA:
		same = a->u.data.chunk == b->u.data.chunk && a->u.data.block == b->u.data.block &&
		       a->u.data.sym == b->u.data.sym && a->u.data.flags == b->u.data.flags &&
		       a->u.data.tx_us == b->u.data.tx_us && a->u.data.len == b->u.data.len &&
		       memcmp(a->u.data.payload, b->u.data.payload, a->u.data.len) == 0;
		break;
	case MC_ANNOUNCE:
		same = a->u.ann.state == b->u.ann.state && a->u.ann.flags == b->u.ann.flags &&
		       a->u.ann.sym_size == b->u.ann.sym_size &&
		       a->u.ann.report_ms == b->u.ann.report_ms &&
		       a->u.ann.nreceivers == b->u.ann.nreceivers &&
		       a->u.ann.rate_kbps == b->u.ann.rate_kbps &&
		       a->u.ann.chunk_count == b->u.ann.chunk_count &&
		       a->u.ann.image_size == b->u.ann.image_size &&
		       a->u.ann.manifest_len == b->u.ann.manifest_len &&
		       memcmp(a->u.ann.manifest_digest, b->u.ann.manifest_digest, 32) == 0;
		break;
	case MC_MANIFEST:
		same = a->u.frag.total == b->u.frag.total && a->u.frag.offset == b->u.frag.offset &&
		       a->u.frag.len == b->u.frag.len &&
		       memcmp(a->u.frag.payload, b->u.frag.payload, a->u.frag.len) == 0;
		break;
	case MC_POLL:
		same = a->u.poll.sweep == b->u.poll.sweep && a->u.poll.cursor == b->u.poll.cursor &&
		       a->u.poll.backoff_ms == b->u.poll.backoff_ms &&
		       a->u.poll.round == b->u.poll.round;
		break;
	case MC_REPAIR_ADV:
	case MC_NACK:
		same = a->u.list.rid == b->u.list.rid && a->u.list.round == b->u.list.round &&
		       a->u.list.n == b->u.list.n;
		for (uint16_t i = 0; same && i < a->u.list.n; i++)
			same = a->u.list.e[i].chunk == b->u.list.e[i].chunk &&
			       a->u.list.e[i].block == b->u.list.e[i].block &&
			       a->u.list.e[i].count == b->u.list.e[i].count;
		break;
	case MC_END:
		same = a->u.end_code == b->u.end_code;
		break;
	case MC_HELLO:
		same = a->u.hello.rid == b->u.hello.rid && a->u.hello.flags == b->u.hello.flags &&
		       a->u.hello.namelen == b->u.hello.namelen &&
		       memcmp(a->u.hello.name, b->u.hello.name, a->u.hello.namelen + 1u) == 0;
		break;
	case MC_NEED:
		same = a->u.need.rid == b->u.need.rid && a->u.need.first == b->u.need.first &&
		       a->u.need.nbits == b->u.need.nbits && a->u.need.flags == b->u.need.flags &&
		       memcmp(a->u.need.bits, b->u.need.bits, (a->u.need.nbits + 7u) / 8u) == 0;
		break;
	case MC_STATUS:
		same = a->u.st.rid == b->u.st.rid && a->u.st.state == b->u.st.state &&
		       a->u.st.code == b->u.st.code &&
		       a->u.st.loss_permille == b->u.st.loss_permille &&
		       a->u.st.chunks_done == b->u.st.chunks_done &&
		       a->u.st.chunks_needed == b->u.st.chunks_needed &&
		       a->u.st.bytes == b->u.st.bytes && a->u.st.delay_us == b->u.st.delay_us &&
		       a->u.st.rx_pkts == b->u.st.rx_pkts;
		break;
	case MC_WELCOME:
	case MC_DONE_ACK:
		same = a->u.ack.rid == b->u.ack.rid;
		break;
	case MC_NEED_ACK:
		same = a->u.ack.rid == b->u.ack.rid && a->u.ack.first == b->u.ack.first &&
		       a->u.ack.nbits == b->u.ack.nbits;
		break;
	case MC_DROP:
		same = a->u.drop.rid == b->u.drop.rid && a->u.drop.code == b->u.drop.code &&
		       a->u.drop.textlen == b->u.drop.textlen &&
		       memcmp(a->u.drop.text, b->u.drop.text, a->u.drop.textlen + 1u) == 0;
		break;
	default:
		abort();
	}
	if (!same)
		abort();
}

static void check(const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen)
{
	static uint8_t enc[MC_MAX_PKT + MC_TAG_LEN];
	struct mc_pkt p, again;
	size_t n;
	int rc;

	rc = mc_decode(buf, len, key, keylen, &p);
	if (rc != 0) {
		if (rc != MC_EBADPKT && rc != MC_EBADTAG)
			abort();
		return;
	}
	check_limits(&p, buf, len);
	(void)mc_type_name(p.h.type);
	rc = mc_encode(&p, enc, sizeof(enc), key, keylen);
	if (rc < 0)
		abort();
	n = (size_t)rc;
	if (p.h.type == MC_DATA) {
		if (n != MC_DATA_HDR_LEN)
			abort();
		memcpy(enc + n, p.u.data.payload, p.u.data.len);
		n += p.u.data.len;
	}
	/* One encoding per packet: the same bytes, the same tag. */
	if (n != len || memcmp(enc, buf, len) != 0)
		abort();
	if (mc_decode(enc, n, key, keylen, &again) != 0)
		abort();
	check_same(&p, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mac[SHA256_LEN], *copy;

	check(data, size, NULL, 0);
	check(data, size, fuzz_key, sizeof(fuzz_key));
	if (size < MC_HDR_LEN + MC_TAG_LEN || size > MC_MAX_PKT || !tagged(data[3]))
		return 0;
	/* A buffer of exactly the input's size, so ASan sees any read past it. */
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	hmac_sha256(fuzz_key, sizeof(fuzz_key), copy, size - MC_TAG_LEN, NULL, 0, mac);
	memcpy(copy + size - MC_TAG_LEN, mac, MC_TAG_LEN);
	check(copy, size, fuzz_key, sizeof(fuzz_key));
	free(copy);
	return 0;
}
