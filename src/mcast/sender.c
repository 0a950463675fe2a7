/*
 * mc_send(): one sending session. The event loop reads feedback, runs the
 * timers (announce, poll, repair advertisements, rate control, receiver
 * liveness) and sends paced batches built by sender_tx.c. See
 * docs/mcast-protocol.md for the protocol and its state machines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mtime.h"
#include "net.h"
#include "sender.h"
#include "sha256.h"

#define LAG_LOSS_GAP 150   /* per mille worse than the best receiver: lagging */
#define SLOW_DROP_MS 10000 /* congested at the floor this long: dropped */
#define BURST_PKTS 128     /* token bucket depth */
#define PKT_WIRE (MC_DATA_HDR_LEN + MC_SYM + SND_WIRE_OVERHEAD)

const char *mc_fail_str(int code)
{
	switch (code) {
	case MC_OK:
		return "ok";
	case MC_FAIL_TIMEOUT:
		return "no report for too long";
	case MC_FAIL_TOO_SLOW:
		return "path slower than the floor rate";
	case MC_FAIL_IO:
		return "disk error";
	case MC_FAIL_NOSPACE:
		return "disk full";
	case MC_FAIL_IMAGE_HASH:
		return "whole-image hash mismatch";
	case MC_FAIL_SENDER_GONE:
		return "sender went silent";
	case MC_FAIL_INTERRUPTED:
		return "interrupted";
	case MC_FAIL_MANIFEST:
		return "manifest invalid or not authentic";
	case MC_FAIL_SESSION_ENDED:
		return "session ended before the image was complete";
	case MC_FAIL_FULL:
		return "the session has as many receivers as it takes";
	default:
		return "internal error";
	}
}

const char *mc_view_state_str(int st)
{
	static const char *const names[] = {"joining", "ready",  "receiving",
	                                    "done",    "failed", "dropped"};

	return st >= 0 && st <= MC_V_DROPPED ? names[st] : "?";
}

static bool finished(const struct snd_rx *r)
{
	return r->v.state >= MC_V_DONE;
}

static struct snd_rx *find_rx(struct snd *s, uint32_t rid)
{
	for (unsigned i = 0; i < s->nrx; i++)
		if (s->rx[i].rid == rid)
			return &s->rx[i];
	return NULL;
}

/* True while some receiver that is not lagging still needs data. */
static bool fast_active(const struct snd *s)
{
	for (unsigned i = 0; i < s->nrx; i++)
		if (!finished(&s->rx[i]) && !s->rx[i].v.lagging)
			return true;
	return false;
}

static double since_start(const struct snd *s, uint64_t now_ms)
{
	return (double)(now_ms - s->t0_ms) / 1000.0;
}

static void finish_rx(struct snd *s, struct snd_rx *r, int state, int code, uint64_t now_ms)
{
	if (finished(r))
		return;
	r->v.state = state;
	r->v.code = code;
	r->v.finished_s = since_start(s, now_ms);
	if (state == MC_V_DONE)
		log_info("receiver %s (%s) done in %.2f s", r->v.name, r->v.addr, r->v.finished_s);
	else
		log_warn("receiver %s (%s) %s: %s", r->v.name, r->v.addr, mc_view_state_str(state),
		         mc_fail_str(code));
}

static void drop_rx(struct snd *s, struct snd_rx *r, int code, const char *text, uint64_t now_ms)
{
	struct mc_pkt p = {.h = {.type = MC_DROP}};
	size_t n = strlen(text);

	finish_rx(s, r, MC_V_DROPPED, code, now_ms);
	log_warn("dropped receiver %s (%s): %s", r->v.name, r->v.addr, text);
	p.u.drop.rid = r->rid;
	p.u.drop.code = (uint8_t)code;
	p.u.drop.textlen = (uint8_t)(n > MC_MAX_TEXT ? MC_MAX_TEXT : n);
	memcpy(p.u.drop.text, text, p.u.drop.textlen);
	snd_queue_ctl(s, &r->addr, &p);
	r->drop_sent_ms = now_ms;
}

static void queue_ack(struct snd *s, const struct snd_rx *r, uint8_t type, uint32_t first,
                      uint16_t nbits)
{
	struct mc_pkt p = {.h = {.type = type}};

	p.u.ack.rid = r->rid;
	p.u.ack.first = first;
	p.u.ack.nbits = nbits;
	snd_queue_ctl(s, &r->addr, &p);
}

static void on_hello(struct snd *s, const struct mc_hello *h, const struct sockaddr_in *from,
                     uint64_t now_ms)
{
	struct snd_rx *r = find_rx(s, h->rid);
	char name[4 * MC_MAX_NAME + 1];

	if (!r) {
		if (s->state == MC_S_ENDING)
			return;
		if (s->nrx >= SND_MAX_RX) {
			struct mc_pkt p = {.h = {.type = MC_DROP}};
			const char *t = mc_fail_str(MC_FAIL_FULL);

			if (!s->rx_cap_logged)
				log_warn("more than %d receivers: refusing new ones", SND_MAX_RX);
			s->rx_cap_logged = true;
			p.u.drop.rid = h->rid;
			p.u.drop.code = MC_FAIL_FULL;
			p.u.drop.textlen = (uint8_t)strlen(t);
			memcpy(p.u.drop.text, t, p.u.drop.textlen);
			snd_queue_ctl(s, from, &p);
			return;
		}
		if (s->nrx == s->caprx) {
			unsigned cap = s->caprx ? s->caprx * 2 : 8;
			struct snd_rx *n = realloc(s->rx, cap * sizeof(*n));
			struct mc_rx_view *v = realloc(s->views, cap * sizeof(*v));

			if (n)
				s->rx = n;
			if (v)
				s->views = v;
			if (!n || !v)
				return;
			s->caprx = cap;
		}
		r = &s->rx[s->nrx++];
		memset(r, 0, sizeof(*r));
		r->rid = h->rid;
		r->nonce = h->nonce;
		r->joined_ms = now_ms;
		r->v.rid = h->rid;
		r->v.state = MC_V_JOINING;
		r->v.joined_s = since_start(s, now_ms);
		log_escape(h->name, h->namelen, name, sizeof(name));
		if (!h->namelen)
			snprintf(name, sizeof(name), "?");
		name[sizeof(r->v.name) - 1] = '\0';
		memcpy(r->v.name, name, sizeof(r->v.name));
		r->addr = *from;
		mc_addr_str(from, r->v.addr, sizeof(r->v.addr));
		log_info("receiver %s (%s) joined%s", r->v.name, r->v.addr,
		         (h->flags & MC_HF_RESUMED) ? ", resuming" : "");
	} else if (h->nonce != r->nonce) {
		/*
		 * A receiver says HELLO only until it is welcomed, so this is a new
		 * process with the same id (--resume): it starts over from JOIN and
		 * tells its needs again, whatever its previous run came to.
		 */
		if (s->state == MC_S_ENDING)
			return;
		log_info("receiver %s (%s) restarted%s", r->v.name, r->v.addr,
		         (h->flags & MC_HF_RESUMED) ? ", resuming" : "");
		r->ready = false;
		r->lag_votes = 0;
		r->cong_since_ms = 0;
		r->v.state = MC_V_JOINING;
		r->v.code = MC_OK;
		r->v.lagging = false;
		r->v.finished_s = 0;
		r->nonce = h->nonce;
	}
	r->addr = *from;
	mc_addr_str(from, r->v.addr, sizeof(r->v.addr));
	r->have_manifest = (h->flags & MC_HF_HAVE_MANIFEST) != 0;
	r->last_heard_ms = now_ms;
	queue_ack(s, r, MC_WELCOME, 0, 0);
}

static void on_need(struct snd *s, const struct mc_need *n, uint64_t now_ms)
{
	struct snd_rx *r = find_rx(s, n->rid);

	if (!r || finished(r))
		return;
	r->last_heard_ms = now_ms;
	r->have_manifest = true;
	for (uint32_t i = 0; i < n->nbits; i++) {
		uint64_t c = (uint64_t)n->first + i;

		if (c >= s->m.chunk_count)
			break;
		if (((n->bits[i >> 3] >> (i & 7)) & 1) && !(s->m.chunks[c].flags & MF_ZERO))
			bm_set(&s->demand, (uint32_t)c);
	}
	if ((n->flags & MC_NF_LAST) && !r->ready) {
		r->ready = true;
		if (r->v.state == MC_V_JOINING)
			r->v.state = MC_V_READY;
	}
	queue_ack(s, r, MC_NEED_ACK, n->first, n->nbits);
}

static void advertise(struct snd *s, uint32_t chunk, uint16_t block, uint16_t count,
                      uint64_t now_ms)
{
	struct mc_entry *e;

	if (s->adv.n == MC_MAX_NACK)
		return;
	if (s->adv.n == 0)
		s->adv_first_ms = now_ms;
	e = &s->adv.e[s->adv.n++];
	e->chunk = chunk;
	e->block = block;
	e->count = count;
}

static void on_nack(struct snd *s, const struct mc_list *l, uint64_t now_ms)
{
	struct snd_rx *r = find_rx(s, l->rid);

	if (!r || finished(r) || !r->ready)
		return;
	r->last_heard_ms = now_ms;
	/* A lagging receiver is served once the others are complete. */
	if (r->v.lagging && fast_active(s))
		return;
	for (uint16_t i = 0; i < l->n; i++) {
		const struct mc_entry *e = &l->e[i];
		uint32_t nb;
		uint32_t extra;

		if (e->chunk >= s->m.chunk_count || (s->m.chunks[e->chunk].flags & MF_ZERO))
			continue;
		if (e->block == MC_BLOCK_WHOLE) {
			bm_set(&s->demand, e->chunk);
			advertise(s, e->chunk, e->block, 0, now_ms);
			continue;
		}
		nb = s->blk_base[e->chunk + 1] - s->blk_base[e->chunk];
		if (e->block >= nb || e->count == 0 || e->count >= FEC_MAX_N)
			continue;
		/* A margin for the loss the repair itself will meet. */
		extra = (e->count * (uint32_t)s->loss_est * 3 + 1999) / 2000;
		snd_want_repair(s, e->chunk, e->block, (uint16_t)(e->count + extra));
		advertise(s, e->chunk, e->block, (uint16_t)(e->count + extra), now_ms);
	}
}

static void update_lagging(struct snd *s, struct snd_rx *r)
{
	uint16_t best = 1000;

	for (unsigned i = 0; i < s->nrx; i++)
		if (&s->rx[i] != r && s->rx[i].v.state == MC_V_RECEIVING &&
		    s->rx[i].v.loss_permille < best)
			best = s->rx[i].v.loss_permille;
	if (best == 1000)
		best = r->v.loss_permille; /* nobody to compare with: not lagging */
	if (r->v.loss_permille >= best + LAG_LOSS_GAP) {
		if (r->lag_votes < 10)
			r->lag_votes++;
	} else if (r->lag_votes > 0) {
		r->lag_votes--;
	}
	if (!r->v.lagging && r->lag_votes >= 3) {
		r->v.lagging = true;
		log_info("receiver %s (%s) is lagging (loss %u.%u%%): served after the others",
		         r->v.name, r->v.addr, r->v.loss_permille / 10, r->v.loss_permille % 10);
	} else if (r->v.lagging && r->lag_votes == 0) {
		r->v.lagging = false;
	}
}

static void on_status(struct snd *s, const struct mc_status *st, uint64_t now_ms)
{
	struct snd_rx *r = find_rx(s, st->rid);

	if (!r)
		return;
	r->last_heard_ms = now_ms;
	if (r->v.state == MC_V_DROPPED) {
		if (now_ms - r->drop_sent_ms > 200)
			drop_rx(s, r, r->v.code, mc_fail_str(r->v.code), now_ms);
		return;
	}
	r->v.chunks_done = st->chunks_done;
	r->v.chunks_needed = st->chunks_needed;
	r->v.bytes = st->bytes;
	r->v.loss_permille = st->loss_permille;
	r->v.delay_us = st->delay_us;
	if (st->state == MC_R_DONE) {
		finish_rx(s, r, MC_V_DONE, MC_OK, now_ms);
		queue_ack(s, r, MC_DONE_ACK, 0, 0);
		return;
	}
	if (st->state == MC_R_FAILED) {
		finish_rx(s, r, MC_V_FAILED, st->code, now_ms);
		queue_ack(s, r, MC_DONE_ACK, 0, 0);
		return;
	}
	if (finished(r))
		return;
	/*
	 * Past MC_R_MANIFEST it holds the manifest: stop repeating it for this
	 * receiver now, not only at its NEED, which a receiver hashing a large
	 * seed sends only after seconds (the repeats cost a few % of the
	 * image's size on the wire in a small update).
	 */
	if (st->state >= MC_R_SEEDING)
		r->have_manifest = true;
	if (st->state >= MC_R_RECEIVING && r->ready)
		r->v.state = MC_V_RECEIVING;
	if (st->state != MC_R_RECEIVING)
		r->cong_since_ms = 0; /* verifying or seeding: no rate is at stake */
	if (st->state == MC_R_RECEIVING && st->rx_pkts > 0) {
		bool congested = rc_classify(&r->rc, st->loss_permille, st->delay_us, st->rx_pkts,
		                             st->overflows, now_ms);

		if (!congested)
			r->cong_since_ms = 0;
		else if (!r->cong_since_ms)
			r->cong_since_ms = now_ms;

		update_lagging(s, r);
		if (!r->v.lagging || !fast_active(s))
			rc_report(&s->rc, congested);
	}
}

static void handle_packet(struct snd *s, const uint8_t *buf, size_t len,
                          const struct sockaddr_in *from, uint64_t now_ms)
{
	struct mc_pkt p;
	int rc = mc_decode(buf, len, s->o->key, s->o->keylen, &p);

	if (rc == MC_EBADTAG) {
		s->st.forged_pkts++;
		return;
	}
	if (rc < 0) {
		s->st.bad_pkts++;
		return;
	}
	if (p.h.session != s->session) {
		s->st.forged_pkts++;
		return;
	}
	switch (p.h.type) {
	case MC_HELLO:
		on_hello(s, &p.u.hello, from, now_ms);
		break;
	case MC_NEED:
		on_need(s, &p.u.need, now_ms);
		break;
	case MC_NACK:
		on_nack(s, &p.u.list, now_ms);
		break;
	case MC_STATUS:
		on_status(s, &p.u.st, now_ms);
		break;
	default:
		/* Our own multicast when looped back, or a stray sender: ignore. */
		break;
	}
}

static void read_feedback(struct snd *s, uint64_t now_ms)
{
	enum { N = 32 };
	static __thread uint8_t bufs[N][MC_MAX_PKT + 1];
	struct mmsghdr mm[N];
	struct iovec iov[N];
	struct sockaddr_in from[N];

	for (int round = 0; round < 8; round++) {
		int n;

		mc_mmsg_setup(mm, iov, from, &bufs[0][0], sizeof(bufs[0]), NULL, 0, N);
		n = recvmmsg(s->fd, mm, N, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++)
			handle_packet(s, bufs[i], mm[i].msg_len, &from[i], now_ms);
		if (n < N)
			return;
	}
}

static void send_announce(struct snd *s)
{
	struct mc_pkt p = {.h = {.type = MC_ANNOUNCE}};
	struct mc_announce *a = &p.u.ann;
	unsigned live = 0;

	for (unsigned i = 0; i < s->nrx; i++)
		live += !finished(&s->rx[i]);
	a->state = (uint8_t)s->state;
	a->flags = s->o->keylen ? MC_AF_AUTH : 0;
	a->sym_size = MC_SYM;
	/* Reports from all receivers together stay near 500 per second. */
	a->report_ms = (uint16_t)(live * 2 > 100 ? (live * 2 > 5000 ? 5000 : live * 2) : 100);
	a->nreceivers = (uint16_t)(s->nrx > 0xFFFF ? 0xFFFF : s->nrx);
	a->rate_kbps = (uint32_t)(s->rc.rate / 1000);
	a->chunk_count = s->m.chunk_count;
	a->image_size = s->m.image_size;
	a->manifest_len = (uint32_t)s->mf_len;
	if (s->o->keylen) {
		uint8_t sess[4] = {(uint8_t)(s->session >> 24), (uint8_t)(s->session >> 16),
		                   (uint8_t)(s->session >> 8), (uint8_t)s->session};

		hmac_sha256(s->o->key, s->o->keylen, sess, 4, s->mf_bytes, s->mf_len,
		            a->manifest_digest);
	} else {
		sha256_buf(s->mf_bytes, s->mf_len, a->manifest_digest);
	}
	snd_batch_mcast(s, &p);
}

static void send_poll(struct snd *s)
{
	struct mc_pkt p = {.h = {.type = MC_POLL}};
	unsigned live = 0, bits = 0;

	for (unsigned i = 0; i < s->nrx; i++)
		live += !finished(&s->rx[i]);
	while ((1u << bits) < live + 1)
		bits++;
	p.u.poll.sweep = s->sweep;
	p.u.poll.cursor =
	    s->emitting ? s->cursor : (s->cursor > s->m.chunk_count ? s->m.chunk_count : s->cursor);
	/* NORM-style: the NACK back-off window grows with log2 of the group. */
	p.u.poll.backoff_ms = (uint16_t)(live <= 1 ? 0 : 2 * bits);
	p.u.poll.round = ++s->poll_round;
	snd_batch_mcast(s, &p);
	s->last_poll_cursor = p.u.poll.cursor;
	s->last_poll_sweep = s->sweep;
}

static void flush_adv(struct snd *s)
{
	struct mc_pkt p = {.h = {.type = MC_REPAIR_ADV}};

	p.u.list = s->adv;
	p.u.list.round = s->poll_round;
	snd_batch_mcast(s, &p);
	s->adv.n = 0;
}

static void fill_status(struct snd *s, uint64_t now_ms)
{
	for (unsigned i = 0; i < s->nrx; i++)
		s->views[i] = s->rx[i].v;
	s->st.elapsed_s = since_start(s, now_ms);
	s->st.state = s->state;
	s->st.rate_bps = s->rc.rate;
	s->st.image_size = s->m.image_size;
	s->st.chunk_count = s->m.chunk_count;
	s->st.nrx = s->nrx;
	s->st.rx = s->views;
}

static void check_receivers(struct snd *s, uint64_t now_ms)
{
	uint32_t timeout = s->o->rx_timeout_ms ? s->o->rx_timeout_ms : 10000;
	char text[MC_MAX_TEXT + 1];

	for (unsigned i = 0; i < s->nrx; i++) {
		struct snd_rx *r = &s->rx[i];

		if (finished(r))
			continue;
		if (now_ms - r->last_heard_ms > timeout) {
			snprintf(text, sizeof(text), "no report for %.1f s",
			         (double)(now_ms - r->last_heard_ms) / 1000.0);
			drop_rx(s, r, MC_FAIL_TIMEOUT, text, now_ms);
			continue;
		}
		/*
		 * The rate has sat at the floor under congestion for a while and
		 * this receiver has reported congestion all that time: it cannot
		 * keep up even at the floor.
		 */
		if (rc_floor_time(&s->rc, now_ms) > SLOW_DROP_MS && r->cong_since_ms &&
		    now_ms - r->cong_since_ms > SLOW_DROP_MS) {
			snprintf(text, sizeof(text),
			         "its path cannot take the floor rate of %.1f Mbit/s "
			         "(loss %u.%u%%, queueing delay %.1f ms)",
			         (double)s->rc.floor / 1e6, r->v.loss_permille / 10,
			         r->v.loss_permille % 10, r->v.delay_us / 1000.0);
			drop_rx(s, r, MC_FAIL_TOO_SLOW, text, now_ms);
		}
	}
}

static void rate_tick(struct snd *s, uint64_t now_ms)
{
	uint16_t worst = 0;
	bool fast = fast_active(s);

	rc_tick(&s->rc, now_ms, 200);
	/* Proactive parity follows the worst base loss among those being served. */
	for (unsigned i = 0; i < s->nrx; i++) {
		const struct snd_rx *r = &s->rx[i];
		uint16_t b = rc_base_loss(&r->rc);

		if (finished(r) || (fast && r->v.lagging))
			continue;
		if (b > worst)
			worst = b;
	}
	s->loss_est = worst > 500 ? 500 : worst;
}

static unsigned count_ready(const struct snd *s, unsigned *finished_n)
{
	unsigned n = 0;

	*finished_n = 0;
	for (unsigned i = 0; i < s->nrx; i++) {
		/* Ready, or done without needing anything; not failed or dropped. */
		n += s->rx[i].ready && s->rx[i].v.state <= MC_V_DONE;
		*finished_n += finished(&s->rx[i]);
	}
	return n;
}

/* Moves the session between states; returns -1 when it cannot go on. */
static int step_state(struct snd *s, uint64_t now_ms, char *err, size_t errsz)
{
	unsigned wait = s->o->wait_ms ? s->o->wait_ms : 60000;
	unsigned want = s->o->min_receivers ? s->o->min_receivers : 1;
	unsigned nfin, ready = count_ready(s, &nfin);

	if (s->state == MC_S_WAITING) {
		if (ready >= want || (now_ms - s->t0_ms >= wait && ready > 0)) {
			log_info("sending to %u receiver%s", ready, ready == 1 ? "" : "s");
			s->state = MC_S_SENDING;
		} else if (now_ms - s->t0_ms >= wait && nfin == s->nrx) {
			if (s->nrx == 0)
				snprintf(err, errsz, "no receiver joined within %.0f s",
				         wait / 1000.0);
			else
				snprintf(
				    err, errsz,
				    "no receiver ready within %.0f s (%u joined, all failed or "
				    "were dropped)",
				    wait / 1000.0, s->nrx);
			return -1;
		}
	}
	if (s->state == MC_S_SENDING && s->nrx > 0 && nfin == s->nrx) {
		s->state = MC_S_ENDING;
		s->rq_len = 0;
		s->emitting = false;
	}
	return 0;
}

/*
 * After a failed send: true when it is worth trying again (the socket buffer
 * or the qdisc is full: wait up to 5 ms for room; or a signal came).
 */
static bool send_again(const struct snd *s)
{
	if (errno == EAGAIN || errno == ENOBUFS) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};

		(void)poll(&pfd, 1, 5);
		return true;
	}
	return errno == EINTR;
}

/* True for a full-size DATA packet to the group: those can share one GSO send. */
static bool gso_ok(const struct snd *s, unsigned i)
{
	const struct msghdr *mh = &s->msgs[i].msg_hdr;

	return mh->msg_iovlen == 2 && mh->msg_name == &s->group &&
	       s->iov[i][0].iov_len == MC_DATA_HDR_LEN && s->iov[i][1].iov_len == MC_SYM;
}

/*
 * Sends msgs [i, j) as one UDP GSO datagram (the kernel cuts it into
 * packets of one header and one symbol each, so the whole path up to the
 * switch ports handles one buffer instead of j - i). Returns 0, or -1 when
 * the kernel does not take GSO here (the caller then sends them one by one).
 */
static int send_gso(struct snd *s, unsigned i, unsigned j)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_name = &s->group,
	                    .msg_namelen = sizeof(s->group),
	                    .msg_iov = &s->iov[i][0],
	                    .msg_iovlen = 2 * (size_t)(j - i),
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	uint16_t seg = MC_DATA_HDR_LEN + MC_SYM;

	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
	for (;;) {
		if (sendmsg(s->fd, &mh, 0) >= 0)
			return 0;
		if (send_again(s))
			continue;
		if (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP) {
			log_info("UDP GSO not available here (%s): sending packet by packet",
			         strerror(errno));
			s->no_gso = true;
			return -1;
		}
		log_warn("send: %s", strerror(errno));
		return 0;
	}
}

static void send_plain(struct snd *s, unsigned i, unsigned j)
{
	while (i < j) {
		int n = sendmmsg(s->fd, s->msgs + i, j - i, 0);

		if (n < 0) {
			if (send_again(s))
				continue;
			/* A send that fails for good (no route, interface down): log, go on. */
			log_warn("send: %s", strerror(errno));
			return;
		}
		i += (unsigned)n;
	}
}

static void send_batch(struct snd *s)
{
	unsigned i = 0;

	while (i < s->nbatch) {
		unsigned j = i;

		if (!s->no_gso) {
			while (j < s->nbatch && gso_ok(s, j))
				j++;
			if (j - i >= 2 && send_gso(s, i, j) == 0) {
				i = j;
				continue;
			}
			j = i;
		}
		/* A run that cannot go as one GSO datagram. */
		do
			j++;
		while (j < s->nbatch && (s->no_gso || !gso_ok(s, j)));
		send_plain(s, i, j);
		i = j;
	}
	s->st.wire_bytes += s->batch_bytes;
	s->tokens -= (double)s->batch_bytes;
	s->batch_gen++; /* the cached chunks it used may be reused now */
	s->nbatch = 0;
	s->batch_bytes = 0;
}

static void refill(struct snd *s, uint64_t now_ns)
{
	double add = (double)(now_ns - s->tokens_ns) * (double)s->rc.rate / 8e9;
	double cap = (double)BURST_PKTS * PKT_WIRE;

	s->tokens_ns = now_ns;
	s->tokens += add;
	if (s->tokens > cap)
		s->tokens = cap;
}

static void wait_for(struct snd *s, uint64_t ns)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
	                      .tv_nsec = (long)(ns % 1000000000u)};

	(void)ppoll(&pfd, 1, &ts, NULL);
}

/*
 * A chunk that a receiver needs cannot be read (missing from the chunk
 * store, truncated, an I/O error): no receiver can complete, so the session
 * ends now rather than at each receiver's timeout. Every receiver still
 * busy is dropped with a reason that names the chunk, then END goes out.
 */
static void fail_session(struct snd *s, uint64_t now_ms)
{
	char text[MC_MAX_TEXT + 1];
	char hex[SHA256_HEX_LEN];
	uint32_t c = s->rd_chunk;

	snprintf(text, sizeof(text), "the sender cannot read chunk %u (sha256 %s)", c,
	         sha256_hex(s->m.chunks[c].sha256, hex));
	log_error("%s: ending the session", s->rd_err);
	for (unsigned i = 0; i < s->nrx; i++)
		if (!finished(&s->rx[i]))
			drop_rx(s, &s->rx[i], MC_FAIL_SESSION_ENDED, text, now_ms);
	s->state = MC_S_ENDING;
	s->rq_len = 0;
	s->emitting = false;
	/*
	 * The drops go out now and END only 100 ms later: a receiver that gets
	 * END first fails with "session ended" and never learns which chunk.
	 */
	snd_fill(s, SND_BATCH, now_ms);
	if (s->nbatch > 0)
		send_batch(s);
	s->end_not_before_ms = now_ms + 100;
}

static int run(struct snd *s, char *err, size_t errsz)
{
	unsigned end_sent = 0;
	uint64_t end_ms = 0;

	s->t0_ms = mtime_ms();
	s->tokens_ns = mtime_ns();
	for (;;) {
		uint64_t now_ns = mtime_ns(), now_ms = now_ns / 1000000u;

		if (s->o->stop && *s->o->stop && s->state != MC_S_ENDING) {
			log_warn("interrupted: ending the session");
			for (unsigned i = 0; i < s->nrx; i++)
				if (!finished(&s->rx[i]))
					finish_rx(s, &s->rx[i], MC_V_DROPPED, MC_FAIL_INTERRUPTED,
					          now_ms);
			s->state = MC_S_ENDING;
		}
		read_feedback(s, now_ms);
		if (step_state(s, now_ms, err, errsz) < 0)
			return -ETIMEDOUT;
		if (s->state == MC_S_ENDING) {
			if (now_ms >= s->end_not_before_ms &&
			    (end_sent == 0 || now_ms - end_ms >= 50)) {
				struct mc_pkt p = {.h = {.type = MC_END}};

				p.u.end_code = 0;
				snd_batch_mcast(s, &p);
				end_ms = now_ms;
				end_sent++;
			}
			snd_fill(s, SND_BATCH, now_ms); /* the last acknowledgements */
			send_batch(s);
			if (end_sent >= 4)
				break;
			wait_for(s, 10000000);
			continue;
		}
		if (now_ms - s->last_ann_ms >= (s->state == MC_S_WAITING ? 100u : 250u)) {
			send_announce(s);
			s->last_ann_ms = now_ms;
		}
		if (s->state == MC_S_SENDING &&
		    ((now_ms - s->last_poll_ms >= 10 &&
		      (s->cursor != s->last_poll_cursor || s->sweep != s->last_poll_sweep)) ||
		     now_ms - s->last_poll_ms >= 50)) {
			send_poll(s);
			s->last_poll_ms = now_ms;
		}
		if (s->adv.n > 0 && (s->adv.n == MC_MAX_NACK || now_ms - s->adv_first_ms >= 2))
			flush_adv(s);
		if (now_ms - s->last_tick_ms >= 100) {
			rate_tick(s, now_ms);
			s->last_tick_ms = now_ms;
		}
		if (now_ms - s->last_check_ms >= 200) {
			check_receivers(s, now_ms);
			s->last_check_ms = now_ms;
		}
		if (s->o->status && now_ms - s->last_status_ms >= 250) {
			fill_status(s, now_ms);
			s->o->status(s->o->ctx, &s->st);
			s->last_status_ms = now_ms;
		}
		refill(s, now_ns);
		if (s->tokens >= PKT_WIRE || s->nctl > 0 || s->nbatch > 0) {
			unsigned room = s->tokens > 0 ? (unsigned)(s->tokens / PKT_WIRE) : 0;

			if (room > SND_BATCH)
				room = SND_BATCH;
			if (room == 0 && s->nctl > 0)
				room = 1; /* acknowledgements do not wait for tokens */
			snd_fill(s, room > s->nbatch ? room - s->nbatch : 0, now_ms);
			if (s->nbatch > 0)
				send_batch(s);
		}
		if (s->rd_ret && s->state != MC_S_ENDING) {
			fail_session(s, now_ms);
			continue;
		}
		if (!snd_has_work(s) && s->nctl == 0 && !(s->state == MC_S_WAITING)) {
			wait_for(s, 2000000);
		} else if (s->state == MC_S_WAITING) {
			wait_for(s, 5000000);
		} else if (s->starved) {
			/* Waiting for the reader thread: a nap, not a busy loop. */
			wait_for(s, 250000);
		} else {
			/* Sleep until a whole batch's worth of tokens (bytes) is there. */
			double need = (double)PKT_WIRE * SND_BATCH - s->tokens;
			uint64_t ns = need > 0 ? (uint64_t)(need * 8e9 / (double)s->rc.rate) : 0;

			if (ns > 2000000)
				ns = 2000000;
			if (ns > 20000)
				wait_for(s, ns);
		}
	}
	fill_status(s, mtime_ms());
	if (s->o->status)
		s->o->status(s->o->ctx, &s->st);
	if (s->rd_ret) {
		snprintf(err, errsz, "%s", s->rd_err);
		return s->rd_ret;
	}
	for (unsigned i = 0; i < s->nrx; i++)
		if (s->rx[i].v.state != MC_V_DONE)
			return 1;
	return s->nrx > 0 ? 0 : 1;
}

static int open_store(struct snd *s, char *err, size_t errsz)
{
	char path[4096];
	const char *why = "";
	int rc;

	snprintf(path, sizeof(path), "%s/manifest", s->o->store_dir);
	rc = mf_load(path, &s->m, &why);
	if (rc < 0) {
		snprintf(err, errsz, "%s: %s", path, rc == -EINVAL ? why : strerror(-rc));
		return rc;
	}
	/* The one place where the source of the chunks is chosen. */
	rc = mc_chunkrd_open(s->o->store_dir, s->o->chunks_dir, &s->m, &s->rd, err, errsz);
	if (rc < 0)
		return rc;
	rc = mf_encode(&s->m, &s->mf_bytes, &s->mf_len);
	if (rc < 0)
		snprintf(err, errsz, "encoding the manifest: %s", strerror(-rc));
	return rc;
}

int mc_send(const struct mc_send_opts *o, char *err, size_t errsz)
{
	struct snd *s = calloc(1, sizeof(*s));
	struct in_addr ifaddr = {0};
	unsigned ifindex = 0;
	const char *why = "";
	int ret = -ENOMEM;

	if (!s) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	s->o = o;
	s->fd = -1;
	if (o->keylen > MC_MAX_KEY) {
		snprintf(err, errsz, "key longer than %d bytes", MC_MAX_KEY);
		ret = -EINVAL;
		goto out;
	}
	s->group.sin_family = AF_INET;
	s->group.sin_port = htons(o->port ? o->port : MC_DEFAULT_PORT);
	ret = mc_parse_group(o->group ? o->group : MC_DEFAULT_GROUP, &s->group.sin_addr, &why);
	if (ret < 0) {
		snprintf(err, errsz, "group %s: %s", o->group, why);
		goto out;
	}
	ret = open_store(s, err, errsz);
	if (ret < 0)
		goto out;
	if (o->ifname && (ret = mc_iface(o->ifname, &ifindex, &ifaddr, err, errsz)) < 0)
		goto out;
	ret = s->fd = mc_sender_socket(ifindex, ifaddr, o->ttl, o->loop, err, errsz);
	if (ret < 0)
		goto out;
	ret = snd_tx_init(s);
	if (ret == 0)
		ret = snd_rd_init(s);
	if (ret < 0) {
		snprintf(err, errsz, "%s",
		         ret == -ENOMEM ? "out of memory" : "cannot start a thread");
		goto out;
	}
	while (s->session == 0)
		if (getrandom(&s->session, sizeof(s->session), 0) != sizeof(s->session))
			s->session = (uint32_t)mtime_ns() | 1;
	if (o->session)
		s->session = o->session;
	rc_init(&s->rc, o->rate_cap ? o->rate_cap : MC_DEFAULT_RATE,
	        o->rate_floor ? o->rate_floor
	                      : (o->rate_cap ? o->rate_cap : MC_DEFAULT_RATE) / 100);
	s->state = MC_S_WAITING;
	s->seq = 1; /* seq 0 marks unnumbered (unicast) packets */
	log_info("session %08x: %llu bytes in %u chunks (%llu stored bytes) on %s:%u", s->session,
	         (unsigned long long)s->m.image_size, s->m.chunk_count,
	         (unsigned long long)s->m.data_size, o->group ? o->group : MC_DEFAULT_GROUP,
	         ntohs(s->group.sin_port));
	if (o->chunks_dir)
		log_info("reading the chunks from the chunk store %s", o->chunks_dir);
	ret = run(s, err, errsz);
out:
	snd_rd_free(s);
	mc_chunkrd_free(s->rd);
	if (s->fd >= 0)
		close(s->fd);
	snd_tx_free(s);
	free(s->mf_bytes);
	mf_free(&s->m);
	free(s->rx);
	free(s->views);
	free(s->ctlq);
	free(s);
	return ret;
}
