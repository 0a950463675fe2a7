/*
 * mc_receive(): one receiving session. Phases: LISTEN for a sender's
 * ANNOUNCE, JOIN (HELLO until WELCOME, manifest fragments until the manifest
 * is whole and authentic), SEED (journal and older image), NEED (tell the
 * sender what is missing), RECEIVE, VERIFY (whole-image hash), FINAL (report
 * the outcome until the sender acknowledges it). See docs/mcast-protocol.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mtime.h"
#include "net.h"
#include "receiver.h"
#include "sha256.h"

#define RX_BATCH 64
#define RESEND_MS 200

static void fail(struct rx *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct rx *r, int code, const char *fmt, ...)
{
	va_list ap;

	if (r->phase == RX_FINAL)
		return;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->fail_code = code;
	r->phase = RX_FINAL;
	r->final_ms = mtime_ms();
}

static uint8_t wire_state(const struct rx *r)
{
	switch (r->phase) {
	case RX_LISTEN:
	case RX_JOIN:
		return MC_R_MANIFEST;
	case RX_SEED:
	case RX_NEED:
		return MC_R_SEEDING;
	case RX_RECEIVE:
		return MC_R_RECEIVING;
	case RX_VERIFY:
	case RX_RESCAN:
		return MC_R_VERIFYING;
	default:
		return r->fail_code ? MC_R_FAILED : MC_R_DONE;
	}
}

static void send_hello(struct rx *r, uint64_t now_ms)
{
	struct mc_pkt p = {.h = {.type = MC_HELLO}};
	char host[HOST_NAME_MAX + 1] = "";
	const char *name = r->o->name;
	size_t n;

	if (!name) {
		(void)gethostname(host, sizeof(host) - 1);
		name = host;
	}
	n = strlen(name);
	p.u.hello.rid = r->rid;
	p.u.hello.nonce = r->nonce;
	p.u.hello.flags = (r->have_m ? MC_HF_HAVE_MANIFEST : 0) | (r->resumed ? MC_HF_RESUMED : 0);
	p.u.hello.namelen = (uint8_t)(n > MC_MAX_NAME ? MC_MAX_NAME : n);
	memcpy(p.u.hello.name, name, p.u.hello.namelen);
	rx_send(r, &p);
	r->hello_sent_ms = now_ms;
}

static void send_need(struct rx *r, uint64_t now_ms)
{
	struct mc_pkt p = {.h = {.type = MC_NEED}};
	uint8_t bits[MC_MAX_NEED_BITS / 8];
	uint32_t n = r->m.chunk_count - r->need_first;

	if (n > MC_MAX_NEED_BITS)
		n = MC_MAX_NEED_BITS;
	memset(bits, 0, sizeof(bits));
	for (uint32_t i = 0; i < n; i++)
		if (!bm_get(&r->done, r->need_first + i))
			bits[i >> 3] |= (uint8_t)(1u << (i & 7));
	p.u.need.rid = r->rid;
	p.u.need.first = r->need_first;
	p.u.need.nbits = (uint16_t)n;
	p.u.need.flags = r->need_first + n >= r->m.chunk_count ? MC_NF_LAST : 0;
	p.u.need.bits = bits;
	rx_send(r, &p);
	r->need_sent_ms = now_ms;
}

static void send_status(struct rx *r, uint64_t now_ms)
{
	struct mc_pkt p = {.h = {.type = MC_STATUS}};
	uint32_t expected = r->seq_hi - r->seq_base;
	uint32_t got = r->int_pkts < expected ? r->int_pkts : expected;

	r->last_loss = expected ? (uint16_t)(1000u * (uint64_t)(expected - got) / expected) : 0;
	r->last_delay = r->qdelay_n ? (uint32_t)(r->qdelay_sum / r->qdelay_n) : 0;
	p.u.st.rid = r->rid;
	p.u.st.state = wire_state(r);
	p.u.st.code = (uint8_t)r->fail_code;
	p.u.st.loss_permille = r->last_loss;
	p.u.st.chunks_done = (uint32_t)r->st.chunks_done;
	p.u.st.chunks_needed = r->needed_at_start;
	p.u.st.bytes = r->st.bytes;
	p.u.st.delay_us = r->last_delay;
	p.u.st.rx_pkts = r->int_pkts;
	p.u.st.overflows = r->ovfl_total - r->ovfl_reported;
	r->ovfl_reported = r->ovfl_total;
	rx_send(r, &p);
	r->seq_base = r->seq_hi;
	r->int_pkts = 0;
	r->qdelay_sum = 0;
	r->qdelay_n = 0;
	r->last_status_ms = now_ms;
}

static int alloc_chunk_state(struct rx *r)
{
	uint32_t n = r->m.chunk_count;

	if (bm_init(&r->done, n) || bm_init(&r->busy, n) || bm_init(&r->passed, n) ||
	    bm_init(&r->hready, n))
		return -ENOMEM;
	r->act = calloc(n ? n : 1, sizeof(*r->act));
	r->last_nack_ms = calloc(n ? n : 1, sizeof(*r->last_nack_ms));
	r->blk_base = calloc((size_t)n + 1, sizeof(*r->blk_base));
	if (!r->act || !r->last_nack_ms || !r->blk_base)
		return -ENOMEM;
	for (uint32_t c = 0; c < n; c++) {
		struct mc_geom g = {0};

		if (!(r->m.chunks[c].flags & MF_ZERO))
			mc_geom(r->m.chunks[c].stored_len, &g);
		r->blk_base[c + 1] = r->blk_base[c] + g.nblocks;
	}
	r->adv_count = calloc((size_t)r->blk_base[n] + 1, sizeof(*r->adv_count));
	r->adv_ms = calloc((size_t)r->blk_base[n] + 1, sizeof(*r->adv_ms));
	return r->adv_count && r->adv_ms ? 0 : -ENOMEM;
}

/* Opens the partial output and the journal; marks what is already there. */
static int open_output(struct rx *r)
{
	struct jr_header want = {.receiver_id = r->rid,
	                         .chunk_count = r->m.chunk_count,
	                         .chunk_size = r->m.chunk_size},
	                 got;
	struct bitmap jdone;
	const char *why = "";
	int resumed = 0;
	struct stat sb;

	memcpy(want.image_sha256, r->m.image_sha256, SHA256_LEN);
	r->out_fd = open(r->tmp_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (r->out_fd < 0) {
		fail(r, MC_FAIL_IO, "%s: %s", r->tmp_path, strerror(errno));
		return -1;
	}
	if (bm_init(&jdone, r->m.chunk_count) < 0) {
		fail(r, MC_FAIL_INTERNAL, "out of memory");
		return -1;
	}
	r->jr = jr_open(r->jr_path, &want, r->o->resume, &jdone, &resumed, &got, &why);
	if (!r->jr) {
		fail(r, MC_FAIL_IO, "%s: %s", r->jr_path, strerror(errno));
		bm_free(&jdone);
		return -1;
	}
	r->jr_resumed = resumed;
	if (r->o->resume && !resumed)
		log_info("no usable journal (%s): receiving everything", why ? why : "none");
	if (!resumed) {
		/* A fresh start: whatever the partial file held is not ours. */
		if (ftruncate(r->out_fd, 0) < 0) {
			fail(r, MC_FAIL_IO, "%s: %s", r->tmp_path, strerror(errno));
			bm_free(&jdone);
			return -1;
		}
	} else {
		uint32_t n = 0;

		for (uint32_t i = bm_next_set(&jdone, 0); i < r->m.chunk_count;
		     i = bm_next_set(&jdone, i + 1))
			n += bm_set(&r->done, i) ? 1 : 0;
		r->st.seeded_chunks += n;
		log_info("resuming: %u chunks already verified", n);
	}
	bm_free(&jdone);
	if (fstat(r->out_fd, &sb) == 0 && (uint64_t)sb.st_size != r->m.image_size &&
	    ftruncate(r->out_fd, (off_t)r->m.image_size) < 0) {
		fail(r, errno == ENOSPC || errno == EFBIG ? MC_FAIL_NOSPACE : MC_FAIL_IO, "%s: %s",
		     r->tmp_path, strerror(errno));
		return -1;
	}
	return 0;
}

static int check_space(struct rx *r)
{
	struct statvfs vs;
	uint64_t want = 0, have;

	for (uint32_t c = 0; c < r->m.chunk_count; c++)
		if (!bm_get(&r->done, c))
			want += mf_chunk_raw_len(&r->m, c);
	if (fstatvfs(r->out_fd, &vs) < 0)
		return 0; /* cannot tell: writes will say */
	have = (uint64_t)vs.f_bavail * vs.f_frsize;
	if (want > have) {
		fail(r, MC_FAIL_NOSPACE, "not enough space for %s: needs %.1f MiB, %.1f MiB free",
		     r->tmp_path, want / 1048576.0, have / 1048576.0);
		return -1;
	}
	return 0;
}

static int open_seed(struct rx *r)
{
	struct stat a, b;

	r->seed_fd = open(r->o->seed, O_RDONLY | O_CLOEXEC);
	if (r->seed_fd < 0) {
		fail(r, MC_FAIL_IO, "seed %s: %s", r->o->seed, strerror(errno));
		return -1;
	}
	if (fstat(r->seed_fd, &a) == 0 && fstat(r->out_fd, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		fail(r, MC_FAIL_INTERNAL, "the seed is the partial output itself");
		return -1;
	}
	return 0;
}

static void enter_need(struct rx *r, uint64_t now_ms)
{
	r->needed_at_start = r->m.chunk_count - r->done.count;
	r->st.chunks_needed = r->needed_at_start;
	if (check_space(r) < 0)
		return;
	if (r->st.seeded_chunks)
		log_info("%llu chunks reused, %u to receive",
		         (unsigned long long)r->st.seeded_chunks, r->needed_at_start);
	r->phase = RX_NEED;
	r->need_first = 0;
	if (r->welcomed)
		send_need(r, now_ms); /* else as soon as the WELCOME is here */
}

/* After the partial output was checked (or when not resuming): the --seed image. */
static void next_seed_stage(struct rx *r, uint64_t now_ms)
{
	if (r->o->seed && r->seed_stage < 2) {
		r->seed_stage = 2;
		log_info("hashing the seed %s", r->o->seed);
		if (open_seed(r) < 0)
			return;
		if (rx_submit_seed(r, r->seed_fd) < 0)
			fail(r, MC_FAIL_INTERNAL, "out of memory");
		return;
	}
	enter_need(r, now_ms);
}

/* The manifest is whole and authentic: set everything up for receiving. */
static void start_local(struct rx *r, uint64_t now_ms)
{
	if (alloc_chunk_state(r) < 0) {
		fail(r, MC_FAIL_INTERNAL, "out of memory for %u chunks", r->m.chunk_count);
		return;
	}
	for (uint32_t c = 0; c < r->m.chunk_count; c++) {
		if (r->m.chunks[c].flags & MF_ZERO)
			bm_set(&r->done, c);
		else
			r->nonzero++;
	}
	if (open_output(r) < 0 || rx_hash_start(r) < 0)
		return;
	log_info("manifest: %u chunks (%u zero), %llu bytes", r->m.chunk_count,
	         r->m.chunk_count - r->nonzero, (unsigned long long)r->m.image_size);
	r->phase = RX_SEED;
	/* Tell the sender at once, so that it stops repeating the manifest for us. */
	if (r->welcomed)
		send_status(r, now_ms);
	if (r->jr_resumed) {
		/*
		 * Chunks written before the stop but not yet journaled are in the
		 * partial output: hash them there rather than receive them again.
		 */
		r->seed_stage = 1;
		if (rx_submit_seed(r, r->out_fd) < 0)
			fail(r, MC_FAIL_INTERNAL, "out of memory");
		return;
	}
	next_seed_stage(r, now_ms);
}

static void on_manifest(struct rx *r, const struct mc_manifest_frag *f, uint64_t now_ms)
{
	uint8_t d[SHA256_LEN];
	const char *why = "";

	if (r->have_m || f->total != r->ann.manifest_len || f->offset % MC_SYM != 0 ||
	    (f->len != MC_SYM && f->offset + f->len != f->total)) {
		r->st.bad_pkts += r->have_m ? 0 : 1;
		return;
	}
	memcpy(r->mf_buf + f->offset, f->payload, f->len);
	bm_set(&r->mf_have, f->offset / MC_SYM);
	if (r->mf_have.count < r->mf_have.nbits)
		return;
	if (r->o->keylen) {
		uint8_t sess[4] = {(uint8_t)(r->session >> 24), (uint8_t)(r->session >> 16),
		                   (uint8_t)(r->session >> 8), (uint8_t)r->session};

		hmac_sha256(r->o->key, r->o->keylen, sess, 4, r->mf_buf, f->total, d);
	} else {
		sha256_buf(r->mf_buf, f->total, d);
	}
	if (!ct_equal(d, r->ann.manifest_digest, SHA256_LEN)) {
		/* Forged or mixed-up fragments: collect them all again. */
		r->st.forged_pkts++;
		bm_clear_all(&r->mf_have);
		return;
	}
	if (r->o->keylen && r->o->manifest_sha256) {
		/* With a key the ANNOUNCE's digest was an HMAC: compare the manifest itself. */
		sha256_buf(r->mf_buf, f->total, d);
		if (!ct_equal(d, r->o->manifest_sha256, SHA256_LEN)) {
			char got[SHA256_HEX_LEN];

			fail(r, MC_FAIL_MANIFEST,
			     "session %08x carries another manifest (sha256 %s) than the expected "
			     "one",
			     r->session, sha256_hex(d, got));
			return;
		}
	}
	if (mf_decode(r->mf_buf, f->total, &r->m, &why) < 0) {
		fail(r, MC_FAIL_MANIFEST, "manifest from the sender is invalid: %s", why);
		return;
	}
	if (r->m.chunk_count != r->ann.chunk_count || r->m.image_size != r->ann.image_size) {
		fail(r, MC_FAIL_MANIFEST, "manifest does not match the announcement");
		return;
	}
	r->have_m = true;
	free(r->mf_buf);
	r->mf_buf = NULL;
	r->st.chunks_total = r->m.chunk_count;
	r->st.image_size = r->m.image_size;
	memcpy(r->st.image_sha256, r->m.image_sha256, SHA256_LEN);
	start_local(r, now_ms);
}

static void on_announce(struct rx *r, const struct mc_pkt *p, const struct sockaddr_in *from,
                        uint64_t now_ms)
{
	const struct mc_announce *a = &p->u.ann;
	uint64_t want_len = MF_HEADER_LEN + (uint64_t)a->chunk_count * MF_ENTRY_LEN + SHA256_LEN;
	char addr[32];

	if (r->phase != RX_LISTEN)
		return;
	if (r->o->session && p->h.session != r->o->session)
		return;
	if ((a->flags & MC_AF_AUTH) && !r->o->keylen) {
		fail(r, MC_FAIL_MANIFEST,
		     "the sender authenticates its session: give the key (--key)");
		return;
	}
	if (a->chunk_count > MF_MAX_CHUNKS || a->manifest_len != want_len) {
		r->st.bad_pkts++;
		return;
	}
	if (r->o->manifest_sha256 && !r->o->keylen &&
	    !ct_equal(a->manifest_digest, r->o->manifest_sha256, SHA256_LEN)) {
		/* A session of another image on the same group and port: not ours. */
		if (!r->foreign_anns)
			log_info("ignoring session %08x: it announces another manifest",
			         p->h.session);
		r->foreign_anns++;
		r->foreign_session = p->h.session;
		return;
	}
	if (a->manifest_len > RX_MAX_MANIFEST) {
		fail(r, MC_FAIL_MANIFEST,
		     "the sender's manifest (%u chunks) is larger than %u MiB: prepare the image "
		     "with larger chunks",
		     a->chunk_count, RX_MAX_MANIFEST >> 20);
		return;
	}
	r->mf_buf = malloc(a->manifest_len);
	if (!r->mf_buf || bm_init(&r->mf_have, (a->manifest_len + MC_SYM - 1) / MC_SYM) < 0) {
		fail(r, MC_FAIL_INTERNAL, "out of memory for the manifest");
		return;
	}
	r->ann = *a;
	r->session = p->h.session;
	r->sender = *from;
	r->phase = RX_JOIN;
	r->st.session = r->session;
	mc_addr_str(from, addr, sizeof(addr));
	log_info("sender %s, session %08x: %llu bytes", addr, r->session,
	         (unsigned long long)a->image_size);
	send_hello(r, now_ms);
}

static void on_packet(struct rx *r, const uint8_t *buf, size_t len, const struct sockaddr_in *from,
                      uint32_t rx_us, uint64_t now_ms)
{
	struct mc_pkt p;
	int rc = mc_decode(buf, len, r->o->key, r->o->keylen, &p);

	if (rc == MC_EBADTAG) {
		r->st.forged_pkts++;
		r->bad_tags++;
		return;
	}
	if (rc < 0) {
		r->st.bad_pkts++;
		return;
	}
	if (r->phase == RX_LISTEN) {
		if (p.h.type == MC_ANNOUNCE)
			on_announce(r, &p, from, now_ms);
		return;
	}
	/* Only the sender we locked onto, in its session. */
	if (p.h.session != r->session || from->sin_addr.s_addr != r->sender.sin_addr.s_addr) {
		r->st.forged_pkts++;
		return;
	}
	r->last_heard_ms = now_ms;
	if (p.h.seq) {
		r->st.rx_pkts++;
		r->int_pkts++;
		if (!r->have_seq) {
			r->have_seq = true;
			r->seq_base = p.h.seq - 1;
			r->seq_hi = p.h.seq;
		} else if ((int32_t)(p.h.seq - r->seq_hi) > 0) {
			r->seq_hi = p.h.seq;
		}
	}
	switch (p.h.type) {
	case MC_DATA:
		if (r->have_m)
			rx_on_data(r, &p.u.data, rx_us, now_ms);
		break;
	case MC_MANIFEST:
		if (!r->have_m && r->phase == RX_JOIN)
			on_manifest(r, &p.u.frag, now_ms);
		break;
	case MC_ANNOUNCE:
		if (p.u.ann.manifest_len != r->ann.manifest_len ||
		    memcmp(p.u.ann.manifest_digest, r->ann.manifest_digest, SHA256_LEN))
			r->st.forged_pkts++;
		else
			r->ann.report_ms = p.u.ann.report_ms;
		break;
	case MC_POLL:
		rx_on_poll(r, &p.u.poll, now_ms);
		break;
	case MC_REPAIR_ADV:
		rx_on_adv(r, &p.u.list, now_ms);
		break;
	case MC_WELCOME:
		if (p.u.ack.rid == r->rid)
			r->welcomed = true;
		break;
	case MC_NEED_ACK:
		if (p.u.ack.rid == r->rid && r->phase == RX_NEED &&
		    p.u.ack.first == r->need_first) {
			r->need_first += p.u.ack.nbits;
			if (r->need_first >= r->m.chunk_count) {
				r->phase = RX_RECEIVE;
				log_info("receiving %u chunks", r->needed_at_start);
			} else {
				send_need(r, now_ms);
			}
		}
		break;
	case MC_DONE_ACK:
		if (p.u.ack.rid == r->rid && r->phase == RX_FINAL)
			r->leave = true; /* acknowledged */
		break;
	case MC_DROP:
		if (p.u.drop.rid == r->rid) {
			char text[4 * MC_MAX_TEXT + 1];

			log_escape(p.u.drop.text, p.u.drop.textlen, text, sizeof(text));
			fail(r, p.u.drop.code ? p.u.drop.code : MC_FAIL_INTERNAL,
			     "dropped by the sender: %s", text);
			r->leave = true;
		}
		break;
	case MC_END:
		if (r->phase == RX_FINAL)
			r->leave = true;
		else
			fail(r, MC_FAIL_SESSION_ENDED,
			     "the sender ended the session with %u of %u chunks missing",
			     r->have_m ? r->m.chunk_count - r->done.count : 0,
			     r->have_m ? r->m.chunk_count : 0);
		break;
	default:
		r->st.bad_pkts++;
		break;
	}
}

static void read_socket(struct rx *r, int fd, uint64_t now_ms)
{
	static __thread uint8_t bufs[RX_BATCH][MC_MAX_PKT + 1];
	/* Control messages are read through struct cmsghdr: keep them aligned. */
	static __thread uint8_t
	    ctl[RX_BATCH][CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))]
	    __attribute__((aligned(8)));
	struct mmsghdr mm[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_in from[RX_BATCH];

	for (int round = 0; round < 16; round++) {
		int n;

		mc_mmsg_setup(mm, iov, from, &bufs[0][0], sizeof(bufs[0]), &ctl[0][0],
		              sizeof(ctl[0]), RX_BATCH);
		n = recvmmsg(fd, mm, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			uint32_t rx_us = 0;
			struct cmsghdr *cm;

			for (cm = CMSG_FIRSTHDR(&mm[i].msg_hdr); cm;
			     cm = CMSG_NXTHDR(&mm[i].msg_hdr, cm)) {
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
					uint32_t drops;

					memcpy(&drops, CMSG_DATA(cm), sizeof(drops));
					if (drops > r->ovfl_total)
						r->ovfl_total = drops;
				}
				if (cm->cmsg_level == SOL_SOCKET &&
				    cm->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec ts;

					memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
					rx_us = (uint32_t)((uint64_t)ts.tv_sec * 1000000u +
					                   (uint64_t)ts.tv_nsec / 1000u);
				}
			}
			if (mm[i].msg_len > MC_MAX_PKT) {
				r->st.bad_pkts++;
				continue;
			}
			on_packet(r, bufs[i], mm[i].msg_len, &from[i], rx_us, now_ms);
		}
		if (n < RX_BATCH)
			return;
	}
}

/* Queues chunk c for the journal; the next sync job writes it. */
static void journal_later(struct rx *r, uint32_t c)
{
	if (r->njpend == r->capjpend) {
		uint32_t cap = r->capjpend ? r->capjpend * 2 : 256;
		uint32_t *n = realloc(r->jpend, cap * sizeof(*n));

		if (!n)
			return; /* the chunk is only received again after a restart */
		r->jpend = n;
		r->capjpend = cap;
	}
	r->jpend[r->njpend++] = c;
}

static void start_sync(struct rx *r)
{
	if (r->sync_busy || r->njpend == 0 || !r->jr)
		return;
	if (rx_submit_sync(r, r->jpend, r->njpend) == 0) {
		r->jpend = NULL;
		r->njpend = r->capjpend = 0;
		r->sync_busy = true;
	}
}

static void after_rescan(struct rx *r, int bad)
{
	log_warn("whole-image hash mismatch: %d chunk%s bad on disk", bad, bad == 1 ? "" : "s");
	r->st.hash_failures++;
	if (bad < 0) {
		fail(r, MC_FAIL_INTERNAL, "rescanning the output: %s", strerror(-bad));
		return;
	}
	if (bad == 0) {
		fail(r, MC_FAIL_IMAGE_HASH,
		     "whole-image hash mismatch although every chunk matches the manifest");
		return;
	}
	r->st.chunks_done -= (uint32_t)bad < r->st.chunks_done ? (uint32_t)bad : r->st.chunks_done;
	for (uint32_t c = 0; c < r->m.chunk_count; c++)
		if (!bm_get(&r->done, c))
			bm_set(&r->passed, c);
	r->phase = r->done.count == r->m.chunk_count ? RX_VERIFY : RX_RECEIVE;
	if (rx_hash_start(r) < 0)
		fail(r, MC_FAIL_INTERNAL, "cannot restart the image hash");
}

static void take_done(struct rx *r, uint64_t now_ms)
{
	struct rx_done *d = rx_take_done(r), *next;

	for (; d; d = next) {
		next = d->next;
		if (d->kind == RXJ_CHUNK) {
			uint32_t c = d->ch->idx;

			bm_clear(&r->busy, c);
			if (d->result == 0) {
				bm_set(&r->done, c);
				r->st.chunks_done++;
				journal_later(r, c);
				rx_hash_ready(r, c);
			} else if (d->result == -EBADMSG || d->result == -ENOMEM) {
				if (d->result == -EBADMSG) {
					r->st.hash_failures++;
					log_warn("chunk %u failed its hash check: asking again", c);
				}
				bm_set(&r->passed, c);
				r->last_nack_ms[c] = 0;
			} else if (d->result == -ENOSPC || d->result == -EDQUOT) {
				fail(r, MC_FAIL_NOSPACE, "%s: %s", r->tmp_path,
				     strerror(-d->result));
			} else {
				fail(r, MC_FAIL_IO, "%s: %s", r->tmp_path, strerror(-d->result));
			}
			rx_free_chunk(r, d->ch);
		} else if (d->kind == RXJ_SYNC) {
			r->sync_busy = false;
			if (d->result < 0)
				log_warn("journal not updated: %s", strerror(-d->result));
			free(d->list);
		} else if (d->kind == RXJ_RESCAN) {
			if (r->phase == RX_RESCAN)
				after_rescan(r, d->result);
		} else {
			for (uint32_t i = bm_next_set(&d->seeded, 0); i < d->count;
			     i = bm_next_set(&d->seeded, i + 1)) {
				if (bm_set(&r->done, d->first + i)) {
					r->st.seeded_chunks++;
					journal_later(r, d->first + i);
					rx_hash_ready(r, d->first + i);
				}
			}
			if (d->result == -ENOSPC || d->result == -EDQUOT)
				fail(r, MC_FAIL_NOSPACE, "seeding %s: %s", r->tmp_path,
				     strerror(-d->result));
			else if (d->result < 0)
				fail(r, MC_FAIL_IO, "seeding: %s", strerror(-d->result));
			bm_free(&d->seeded);
			if (--r->seed_jobs == 0 && r->phase == RX_SEED)
				next_seed_stage(r, now_ms);
		}
		free(d);
	}
	if (r->phase == RX_RECEIVE && r->done.count == r->m.chunk_count)
		r->phase = RX_VERIFY;
}

static int finish_output(struct rx *r)
{
	char dir[PATH_MAX];
	char *slash;
	int dfd;

	/* No journal sync may run while the journal goes away. */
	pool_drain(r->pool);
	if (fsync(r->out_fd) < 0 || rename(r->tmp_path, r->o->output) < 0) {
		fail(r, errno == ENOSPC ? MC_FAIL_NOSPACE : MC_FAIL_IO, "%s: %s", r->o->output,
		     strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", r->o->output);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	jr_close(r->jr);
	r->jr = NULL;
	(void)unlink(r->jr_path);
	return 0;
}

static void check_verify(struct rx *r, uint64_t now_ms)
{
	bool hdone;
	int hres;

	pthread_mutex_lock(&r->lock);
	hdone = r->hdone;
	hres = r->hresult;
	pthread_mutex_unlock(&r->lock);
	if (!hdone)
		return;
	if (hres == 0) {
		if (finish_output(r) == 0) {
			r->phase = RX_FINAL;
			r->final_ms = now_ms;
			log_info("image complete and verified: %s", r->o->output);
		}
		return;
	}
	if (hres == -EBADMSG) {
		/* Find the bad chunks off this thread: the sender must keep hearing us. */
		r->phase = RX_RESCAN;
		if (rx_submit_rescan(r) < 0)
			fail(r, MC_FAIL_INTERNAL, "out of memory");
		return;
	}
	fail(r, MC_FAIL_IO, "reading %s back: %s", r->tmp_path, strerror(-hres));
}

static void timers(struct rx *r, uint64_t now_ms)
{
	unsigned timeout = r->o->timeout_ms ? r->o->timeout_ms : 30000;
	uint16_t report = r->ann.report_ms ? r->ann.report_ms : 100;

	if (r->o->stop && *r->o->stop)
		fail(r, MC_FAIL_INTERRUPTED, "interrupted");
	if (r->phase == RX_LISTEN) {
		if (now_ms - r->t0_ms > timeout && r->bad_tags > 0)
			fail(r, MC_FAIL_MANIFEST,
			     "no sender heard within %.0f s; %llu packets failed authentication: "
			     "is the key (--key) the sender's?",
			     timeout / 1000.0, (unsigned long long)r->bad_tags);
		else if (now_ms - r->t0_ms > timeout && r->foreign_anns > 0)
			fail(r, MC_FAIL_SENDER_GONE,
			     "no session with the expected manifest heard within %.0f s (session "
			     "%08x with another manifest was heard and ignored)",
			     timeout / 1000.0, r->foreign_session);
		else if (now_ms - r->t0_ms > timeout)
			fail(r, MC_FAIL_SENDER_GONE, "no sender heard within %.0f s",
			     timeout / 1000.0);
		return;
	}
	if (r->phase != RX_FINAL && now_ms - r->last_heard_ms > timeout)
		fail(r, MC_FAIL_SENDER_GONE, "the sender has been silent for %.0f s",
		     timeout / 1000.0);
	if (!r->welcomed && r->phase != RX_FINAL && now_ms - r->hello_sent_ms >= RESEND_MS)
		send_hello(r, now_ms);
	if (r->phase == RX_NEED && r->welcomed && now_ms - r->need_sent_ms >= RESEND_MS)
		send_need(r, now_ms);
	if (r->phase == RX_RECEIVE && r->nack_due_ms && now_ms >= r->nack_due_ms)
		rx_send_nacks(r, now_ms);
	if (r->phase == RX_FINAL) {
		if (now_ms - r->done_sent_ms >= 100) {
			send_status(r, now_ms);
			r->done_sent_ms = now_ms;
		}
	} else if (now_ms - r->last_status_ms >= report) {
		send_status(r, now_ms);
	}
	if (r->phase == RX_RECEIVE && now_ms - r->last_sync_ms >= 2000) {
		start_sync(r);
		r->last_sync_ms = now_ms;
	}
}

static void report(struct rx *r, uint64_t now_ms)
{
	double dt = (double)(now_ms - r->rate_ms_mark) / 1000.0;

	if (dt >= 0.5) {
		double inst = (double)(r->st.bytes - r->rate_bytes_mark) * 8.0 / dt;

		r->rate_bps = r->rate_ms_mark ? 0.5 * r->rate_bps + 0.5 * inst : inst;
		r->rate_bytes_mark = r->st.bytes;
		r->rate_ms_mark = now_ms;
	}
	r->st.elapsed_s = (double)(now_ms - r->t0_ms) / 1000.0;
	r->st.state = wire_state(r);
	r->st.rate_bps = r->rate_bps;
	r->st.eta_s = -1;
	if (r->have_m && r->rate_bps > 0 && r->needed_at_start > r->st.chunks_done) {
		double left = (double)(r->needed_at_start - r->st.chunks_done) *
		              ((double)r->m.data_size / (r->nonzero ? r->nonzero : 1));

		r->st.eta_s = left * 8.0 / r->rate_bps;
	}
	r->st.code = r->fail_code;
	r->st.reason = r->fail_code ? r->reason : NULL;
	if (r->o->status)
		r->o->status(r->o->ctx, &r->st);
}

static int run(struct rx *r)
{
	uint64_t last_report = 0;

	r->t0_ms = r->last_heard_ms = mtime_ms();
	for (;;) {
		struct pollfd pfd[3] = {{.fd = r->data_fd, .events = POLLIN},
		                        {.fd = r->ctl_fd, .events = POLLIN},
		                        {.fd = r->ev_fd, .events = POLLIN}};
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
		uint64_t now_ms, ev;

		(void)ppoll(pfd, 3, &ts, NULL);
		now_ms = mtime_ms();
		if (pfd[2].revents & POLLIN)
			(void)!read(r->ev_fd, &ev, sizeof(ev));
		read_socket(r, r->data_fd, now_ms);
		read_socket(r, r->ctl_fd, now_ms);
		if (r->pool)
			take_done(r, now_ms);
		if (r->phase == RX_VERIFY)
			check_verify(r, now_ms);
		timers(r, now_ms);
		if (now_ms - last_report >= 250) {
			report(r, now_ms);
			last_report = now_ms;
		}
		/* After the outcome: tell the sender until it acknowledges, at most 2 s. */
		if (r->phase == RX_FINAL &&
		    (r->leave || now_ms - r->final_ms >= 2000 || r->session == 0))
			break;
	}
	report(r, mtime_ms());
	return r->fail_code;
}

static uint32_t peek_journal_rid(const char *path)
{
	uint8_t h[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, h, sizeof(h));
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, "MLJ1", 4) != 0)
		return 0;
	return (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
}

static int setup(struct rx *r, char *err, size_t errsz)
{
	struct in_addr group, ifaddr;
	unsigned ifindex = 0;
	const char *why = "";
	size_t n;
	int rc;

	if (!r->o->output || !*r->o->output) {
		snprintf(err, errsz, "no output file");
		return -EINVAL;
	}
	n = strlen(r->o->output);
	if (r->o->keylen > MC_MAX_KEY) {
		snprintf(err, errsz, "key longer than %d bytes", MC_MAX_KEY);
		return -EINVAL;
	}
	rc = mc_parse_group(r->o->group ? r->o->group : MC_DEFAULT_GROUP, &group, &why);
	if (rc < 0) {
		snprintf(err, errsz, "group %s: %s", r->o->group, why);
		return rc;
	}
	if (r->o->ifname && (rc = mc_iface(r->o->ifname, &ifindex, &ifaddr, err, errsz)) < 0)
		return rc;
	r->tmp_path = malloc(n + 16);
	r->jr_path = malloc(n + 16);
	if (!r->tmp_path || !r->jr_path)
		return -ENOMEM;
	snprintf(r->tmp_path, n + 16, "%s.mlcast-part", r->o->output);
	snprintf(r->jr_path, n + 16, "%s.mlcast-jrnl", r->o->output);
	r->data_fd = mc_receiver_socket(group, r->o->port ? r->o->port : MC_DEFAULT_PORT, ifindex,
	                                err, errsz);
	if (r->data_fd < 0)
		return r->data_fd;
	r->ctl_fd = mc_control_socket(err, errsz);
	if (r->ctl_fd < 0)
		return r->ctl_fd;
	rc = rx_work_start(r);
	if (rc < 0) {
		snprintf(err, errsz, "starting workers: %s", strerror(-rc));
		return rc;
	}
	if (r->o->resume)
		r->rid = peek_journal_rid(r->jr_path);
	r->resumed = r->rid != 0;
	while (r->rid == 0)
		if (getrandom(&r->rid, sizeof(r->rid), 0) != sizeof(r->rid))
			r->rid = (uint32_t)mtime_ns();
	if (getrandom(&r->nonce, sizeof(r->nonce), 0) != sizeof(r->nonce))
		r->nonce = (uint32_t)mtime_ns() ^ (uint32_t)getpid();
	return 0;
}

int mc_receive(const struct mc_recv_opts *o, char *err, size_t errsz)
{
	struct rx *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	r->o = o;
	r->data_fd = r->ctl_fd = r->ev_fd = r->out_fd = r->seed_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->hcond, NULL);
	ret = setup(r, err, errsz);
	if (ret == 0) {
		ret = run(r);
		if (ret)
			snprintf(err, errsz, "%s", r->reason);
	}
	rx_work_stop(r);
	for (uint32_t c = 0; r->act && c < r->m.chunk_count; c++)
		rx_free_chunk(r, r->act[c]);
	if (r->jr) {
		/* Keep what was verified for --resume. */
		for (uint32_t i = 0; i < r->njpend; i++)
			(void)jr_add(r->jr, r->jpend[i]);
		(void)jr_sync(r->jr, r->out_fd);
		jr_close(r->jr);
	}
	free(r->jpend);
	if (r->out_fd >= 0)
		close(r->out_fd);
	if (r->seed_fd >= 0)
		close(r->seed_fd);
	if (r->data_fd >= 0)
		close(r->data_fd);
	if (r->ctl_fd >= 0)
		close(r->ctl_fd);
	free(r->act);
	free(r->last_nack_ms);
	free(r->blk_base);
	free(r->adv_count);
	free(r->adv_ms);
	free(r->mf_buf);
	free(r->tmp_path);
	free(r->jr_path);
	bm_free(&r->done);
	bm_free(&r->busy);
	bm_free(&r->passed);
	bm_free(&r->hready);
	bm_free(&r->mf_have);
	if (r->have_m)
		mf_free(&r->m);
	pthread_cond_destroy(&r->hcond);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return ret;
}
