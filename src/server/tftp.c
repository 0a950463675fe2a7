/*
 * The read-only TFTP server (tftp.h, docs/tftp.md). One thread polls the
 * listen socket and every transfer's own socket; each transfer is a small
 * state machine (waiting for the ACK of its OACK, then sending windows of
 * DATA), driven by ACKs and by its retransmission deadline. Transfers are
 * only marked done inside the loop and freed after dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "bootsrv.h"
#include "fileio.h"
#include "log.h"
#include "mtime.h"
#include "server.h"
#include "tftp.h"
#include "tftp_proto.h"

/* Transfers at once; further requests get "server busy". */
#define TFTP_XFER_MAX 512
/* Datagrams read from one socket per wake-up, so no peer starves the rest. */
#define TFTP_BATCH 32
/* The longest retransmission timeout that back-off reaches. */
#define TFTP_RTO_MAX_MS 30000

enum tftp_state {
	TFTP_ST_OACK, /* OACK sent, waiting for ACK 0 */
	TFTP_ST_DATA, /* sending windows of DATA */
};

struct tftp_xfer {
	struct tftp_xfer *next;
	int sock, fd;
	enum tftp_state st;
	int done;
	uint64_t size, total; /* bytes; blocks, the last one shorter than blksize */
	uint64_t acked, sent; /* highest block index acknowledged and sent */
	bool last_out;        /* the last block went out at least once */
	uint16_t blksize, window;
	uint64_t rto_base_ms, rto_ms, deadline_ms, started_ms;
	unsigned tries;
	size_t oacklen;
	uint8_t oack[160];
	char name[128]; /* escaped, for logs */
	char peer[64];
};

struct tftp {
	struct srv *srv;
	int lsock, rootfd, wake[2];
	pthread_t thr;
	int running;
	struct tftp_limits lim;
	uint64_t timeout_ms, retries;
	struct sockaddr_storage laddr;
	socklen_t laddrlen;
	struct tftp_xfer *xfers;
	size_t nxfers;
	uint8_t buf[4 + TFTP_BLKSIZE_MAX];
};

/* Copies s into out with anything but printable ASCII as \xNN, for logs. */
static void tftp_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 5 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
	}
	out[o] = '\0';
}

static void tftp_peer_name(const struct sockaddr_storage *sa, socklen_t len, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN], serv[8];
	if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof(host), serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, cap, "?");
	else
		snprintf(out, cap, "%.46s:%.7s", host, serv);
}

/* Answers a refused request from the listen socket; losing it is harmless. */
static void tftp_refuse(struct tftp *t, const struct sockaddr_storage *peer, socklen_t plen,
                        uint16_t code, const char *msg)
{
	uint8_t pkt[600];
	size_t n = tftp_encode_error(pkt, sizeof(pkt), code, msg);
	if (n)
		(void)sendto(t->lsock, pkt, n, MSG_DONTWAIT, (const struct sockaddr *)peer, plen);
}

static void tftp_xfer_fail(struct tftp_xfer *x, uint16_t code, const char *msg)
{
	uint8_t pkt[600];
	size_t n = tftp_encode_error(pkt, sizeof(pkt), code, msg);
	if (n)
		(void)send(x->sock, pkt, n, MSG_DONTWAIT);
	log_info("tftp: %s: %s aborted: %s", x->peer, x->name, msg);
	x->done = 1;
}

/*
 * Logs the end of a transfer whose client stopped answering (why: the
 * reason). When the last block went out, the lost packet may be the
 * client's final ACK (RFC 1350 has no answer to it): the client may well
 * have left with the whole file, so the log says so rather than "aborted".
 */
static void tftp_xfer_gone(struct tftp_xfer *x, const char *why)
{
	if (x->st == TFTP_ST_DATA && x->last_out)
		log_info("tftp: %s: %s: no ACK of the last block (%s); the client may have left "
		         "with the whole file",
		         x->peer, x->name, why);
	else
		log_info("tftp: %s: %s %s", x->peer, x->name, why);
	x->done = 1;
}

/* Sends block idx (1-based; its wire number wraps past 65535 to 0). */
static int tftp_send_block(struct tftp *t, struct tftp_xfer *x, uint64_t idx)
{
	uint64_t off = (idx - 1) * x->blksize;
	size_t n =
	    off >= x->size ? 0 : (size_t)(x->size - off < x->blksize ? x->size - off : x->blksize);
	if (n) {
		ssize_t r = pread(x->fd, t->buf + 4, n, (off_t)off);
		if (r != (ssize_t)n) {
			tftp_xfer_fail(x, TFTP_E_UNDEF,
			               "file changed or unreadable during transfer");
			return -EIO;
		}
	}
	size_t len = tftp_encode_data(t->buf, sizeof(t->buf), (uint16_t)idx, t->buf + 4, n);
	/* A full socket buffer is a lost packet: the timeout sends it again. */
	if (send(x->sock, t->buf, len, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK && errno != ENOBUFS) {
		/* Most often the client's port is closed (ICMP): it left. */
		int e = errno;
		char why[96];
		snprintf(why, sizeof(why), "aborted: %s", strerror(e));
		tftp_xfer_gone(x, why);
		return -e;
	}
	if (idx == x->total)
		x->last_out = true;
	return 0;
}

/* Sends the blocks after x->sent that the window allows and rearms the timer. */
static void tftp_send_window(struct tftp *t, struct tftp_xfer *x)
{
	uint64_t last = x->acked + x->window;
	if (last > x->total)
		last = x->total;
	for (uint64_t i = x->sent + 1; i <= last; i++)
		if (tftp_send_block(t, x, i) < 0)
			return;
	if (last > x->sent)
		x->sent = last;
	x->deadline_ms = mtime_ms() + x->rto_ms;
}

static void tftp_on_ack(struct tftp *t, struct tftp_xfer *x, uint16_t b)
{
	switch (x->st) {
	case TFTP_ST_OACK:
		if (b != 0)
			return;
		x->st = TFTP_ST_DATA;
		x->tries = 0;
		x->rto_ms = x->rto_base_ms;
		tftp_send_window(t, x);
		return;
	case TFTP_ST_DATA: {
		uint16_t delta = (uint16_t)(b - (uint16_t)x->acked);
		if (delta == 0) {
			/*
			 * A repeated ACK with windows means the client saw a gap
			 * (RFC 7440): go back. With window 1 it is ignored, so a
			 * duplicated packet cannot double every later one.
			 */
			if (x->window > 1 && x->sent > x->acked) {
				x->sent = x->acked;
				tftp_send_window(t, x);
			}
			return;
		}
		if (delta > x->sent - x->acked)
			return; /* not a block in flight: stale or forged */
		x->acked += delta;
		x->tries = 0;
		x->rto_ms = x->rto_base_ms;
		if (x->acked == x->total) {
			log_debug("tftp: %s: %s sent, %" PRIu64 " bytes in %" PRIu64 " ms", x->peer,
			          x->name, x->size, mtime_ms() - x->started_ms);
			x->done = 1;
			return;
		}
		/* A partial ACK of a window also means a gap: resend from there. */
		if (x->acked < x->sent)
			x->sent = x->acked;
		tftp_send_window(t, x);
		return;
	}
	default:
		log_error("tftp: transfer in unknown state %d", (int)x->st);
		x->done = 1;
	}
}

static void tftp_on_timeout(struct tftp *t, struct tftp_xfer *x)
{
	if (x->tries >= t->retries) {
		char why[64];
		snprintf(why, sizeof(why), "dropped: no answer after %u retries", x->tries);
		tftp_xfer_gone(x, why);
		x->done = 1;
		return;
	}
	x->tries++;
	x->rto_ms = x->rto_ms * 2 > TFTP_RTO_MAX_MS ? TFTP_RTO_MAX_MS : x->rto_ms * 2;
	if (x->st == TFTP_ST_OACK) {
		(void)send(x->sock, x->oack, x->oacklen, MSG_DONTWAIT);
		x->deadline_ms = mtime_ms() + x->rto_ms;
		return;
	}
	x->sent = x->acked;
	tftp_send_window(t, x);
}

static void tftp_xfer_free(struct tftp_xfer *x)
{
	if (!x)
		return;
	if (x->sock >= 0)
		close(x->sock);
	if (x->fd >= 0)
		close(x->fd);
	free(x);
}

/*
 * Opens path beneath the root. Returns the descriptor, or -1 with *code and
 * *msg the TFTP error to answer.
 */
static int tftp_open(struct tftp *t, const char *path, uint16_t *code, const char **msg)
{
	uint64_t size;
	int fd = fio_open_beneath(t->rootfd, path, &size);
	/* Names the root lacks may be built in (iPXE's first stage and loaders). */
	if (fd == -ENOENT) {
		int built = bootsrv_tftp_open(t->srv, path, &size);
		if (built >= 0)
			fd = built;
	}
	if (fd >= 0)
		return fd;
	*msg = NULL;
	*code = TFTP_E_ACCESS;
	switch (fd) {
	case -ENOENT:
	case -ENOTDIR:
		*code = TFTP_E_NOTFOUND;
		while (*path == '/')
			path++;
		if (*path == '\0')
			*msg = "no file name";
		break;
	case -EACCES:
		*msg = "'..' in path refused";
		break;
	case -EXDEV:
	case -ELOOP:
		*msg = "path leads outside the TFTP root";
		break;
	case -EISDIR:
		*msg = "not a regular file";
		break;
	}
	return -1;
}

static void tftp_on_request(struct tftp *t, const uint8_t *pkt, size_t len,
                            const struct sockaddr_storage *peer, socklen_t plen)
{
	struct tftp_req req;
	uint16_t code;
	const char *why;
	char pname[64], name[100];
	/* An ERROR is never answered, so two confused peers cannot loop. */
	if (len >= 2 && pkt[0] == 0 && pkt[1] == TFTP_OP_ERROR)
		return;
	tftp_peer_name(peer, plen, pname, sizeof(pname));
	if (tftp_parse_request(pkt, len, &t->lim, &req, &code, &why) < 0) {
		log_info("tftp: %s: bad request: %s", pname, why);
		tftp_refuse(t, peer, plen, code, why);
		return;
	}
	tftp_escape(req.filename, name, sizeof(name));
	if (req.op == TFTP_OP_WRQ) {
		log_info("tftp: %s: write of %s refused", pname, name);
		tftp_refuse(t, peer, plen, TFTP_E_ACCESS, "read-only server");
		return;
	}
	if (req.netascii) {
		log_info("tftp: %s: %s: netascii refused", pname, name);
		tftp_refuse(t, peer, plen, TFTP_E_UNDEF, "netascii is not supported, use octet");
		return;
	}
	if (t->nxfers >= TFTP_XFER_MAX) {
		log_info("tftp: %s: %s refused: %d transfers running", pname, name, TFTP_XFER_MAX);
		tftp_refuse(t, peer, plen, TFTP_E_UNDEF, "server busy");
		return;
	}
	const char *msg = NULL;
	int fd = tftp_open(t, req.filename, &code, &msg);
	if (fd < 0) {
		log_info("tftp: %s: %s refused: %s", pname, name,
		         msg ? msg : tftp_error_message(code));
		tftp_refuse(t, peer, plen, code, msg);
		return;
	}
	struct tftp_xfer *x = calloc(1, sizeof(*x));
	if (!x) {
		close(fd);
		tftp_refuse(t, peer, plen, TFTP_E_UNDEF, "out of memory");
		return;
	}
	x->fd = fd;
	x->sock = socket(peer->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_storage local = t->laddr;
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	if (x->sock < 0 ||
	    (local.ss_family == peer->ss_family &&
	     bind(x->sock, (struct sockaddr *)&local, t->laddrlen) < 0) ||
	    connect(x->sock, (const struct sockaddr *)peer, plen) < 0) {
		log_info("tftp: %s: %s refused: transfer socket: %s", pname, name, strerror(errno));
		tftp_refuse(t, peer, plen, TFTP_E_UNDEF, "cannot open a transfer socket");
		tftp_xfer_free(x);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		tftp_refuse(t, peer, plen, TFTP_E_UNDEF, "cannot read the file");
		tftp_xfer_free(x);
		return;
	}
	x->size = (uint64_t)st.st_size;
	/*
	 * curl refuses an OACK with "tsize 0" as invalid; leaving tsize out
	 * of the answer for an empty file is allowed (RFC 2347: the server
	 * may omit an option) and every client then just reads the data.
	 */
	if (x->size == 0)
		req.opts &= ~TFTP_OPT_TSIZE;
	x->blksize = req.blksize;
	x->window = req.windowsize;
	x->total = x->size / x->blksize + 1;
	x->rto_base_ms = req.timeout ? req.timeout * 1000ull : t->timeout_ms;
	x->rto_ms = x->rto_base_ms;
	x->started_ms = mtime_ms();
	snprintf(x->name, sizeof(x->name), "%s", name);
	snprintf(x->peer, sizeof(x->peer), "%s", pname);
	x->next = t->xfers;
	t->xfers = x;
	t->nxfers++;
	log_debug("tftp: %s: reading %s (%" PRIu64 " bytes, blksize %u, windowsize %u%s)", pname,
	          name, x->size, x->blksize, x->window, req.opts ? ", options" : "");
	if (req.opts) {
		x->st = TFTP_ST_OACK;
		x->oacklen = tftp_encode_oack(x->oack, sizeof(x->oack), &req, x->size);
		(void)send(x->sock, x->oack, x->oacklen, MSG_DONTWAIT);
		x->deadline_ms = mtime_ms() + x->rto_ms;
	} else {
		x->st = TFTP_ST_DATA;
		tftp_send_window(t, x);
	}
}

static void tftp_read_listen(struct tftp *t)
{
	uint8_t pkt[2048];
	for (int i = 0; i < TFTP_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(t->lsock, pkt, sizeof(pkt), MSG_DONTWAIT,
		                     (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		tftp_on_request(t, pkt, (size_t)n, &peer, plen);
	}
}

static void tftp_read_xfer(struct tftp *t, struct tftp_xfer *x)
{
	uint8_t pkt[600];
	for (int i = 0; i < TFTP_BATCH && !x->done; i++) {
		ssize_t n = recv(x->sock, pkt, sizeof(pkt), MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				char why[96];
				snprintf(why, sizeof(why), "aborted: %s", strerror(errno));
				tftp_xfer_gone(x, why);
			}
			return;
		}
		uint16_t b;
		int rc = tftp_parse_ack(pkt, (size_t)n, &b);
		if (rc == -ECONNABORTED) {
			log_info("tftp: %s: %s: the client gave up (error %u)", x->peer, x->name,
			         b);
			x->done = 1;
		} else if (rc == 0) {
			tftp_on_ack(t, x, b);
		}
	}
}

static void *tftp_main(void *arg)
{
	struct tftp *t = arg;
	struct pollfd *pfd = calloc(TFTP_XFER_MAX + 2, sizeof(*pfd));
	struct tftp_xfer **map = calloc(TFTP_XFER_MAX, sizeof(*map));
	if (!pfd || !map) {
		log_error("tftp: out of memory, the server stops");
		goto out;
	}
	for (;;) {
		uint64_t now = mtime_ms();
		int timeout = -1;
		size_t n = 2;
		pfd[0] = (struct pollfd){.fd = t->wake[0], .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = t->lsock, .events = POLLIN};
		for (struct tftp_xfer *x = t->xfers; x; x = x->next) {
			map[n - 2] = x;
			pfd[n++] = (struct pollfd){.fd = x->sock, .events = POLLIN};
			uint64_t left = x->deadline_ms > now ? x->deadline_ms - now : 0;
			if (timeout < 0 || left < (uint64_t)timeout)
				timeout = (int)left;
		}
		if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
			log_error("tftp: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		for (size_t i = 2; i < n; i++)
			if (pfd[i].revents)
				tftp_read_xfer(t, map[i - 2]);
		now = mtime_ms();
		for (struct tftp_xfer *x = t->xfers; x; x = x->next)
			if (!x->done && x->deadline_ms <= now)
				tftp_on_timeout(t, x);
		/* New requests after the old transfers' packets: the map stays valid. */
		if (pfd[1].revents)
			tftp_read_listen(t);
		for (struct tftp_xfer **pp = &t->xfers; *pp;) {
			struct tftp_xfer *x = *pp;
			if (x->done) {
				*pp = x->next;
				t->nxfers--;
				tftp_xfer_free(x);
			} else {
				pp = &x->next;
			}
		}
	}
out:
	free(pfd);
	free(map);
	return NULL;
}

/* Parses "ADDR:PORT" or "[ADDR]:PORT" into a socket address. */
static int tftp_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int tftp_start(struct srv *srv, char *err, size_t errsz)
{
	const struct srvconf *c = &srv->conf;
	int ret = -1;
	char root[4096];
	if (!c->tftp_enabled)
		return 0;
	struct tftp *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errsz, "tftp: out of memory");
		return -ENOMEM;
	}
	t->srv = srv;
	t->lsock = t->rootfd = t->wake[0] = t->wake[1] = -1;
	t->lim.blksize_max = (uint16_t)c->tftp_blksize_max;
	t->lim.windowsize_max = (uint16_t)c->tftp_windowsize_max;
	t->timeout_ms = c->tftp_timeout_ms;
	t->retries = c->tftp_retries;
	if (*c->tftp_root)
		snprintf(root, sizeof(root), "%s", c->tftp_root);
	else
		snprintf(root, sizeof(root), "%s/tftp", c->data_dir);
	if (!*c->tftp_root && mkdir(root, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errsz, "tftp: cannot create root %s: %s", root, strerror(errno));
		goto out;
	}
	t->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t->rootfd < 0) {
		ret = -errno;
		snprintf(err, errsz, "tftp: root %s: %s", root, strerror(errno));
		goto out;
	}
	if (tftp_parse_listen(c->tftp_listen, &t->laddr, &t->laddrlen) < 0) {
		ret = -EINVAL;
		snprintf(err, errsz, "tftp: listen '%s' is not ADDR:PORT", c->tftp_listen);
		goto out;
	}
	t->lsock = socket(t->laddr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->lsock < 0 || bind(t->lsock, (struct sockaddr *)&t->laddr, t->laddrlen) < 0) {
		ret = -errno;
		snprintf(err, errsz, "tftp: cannot bind %s: %s%s", c->tftp_listen, strerror(errno),
		         errno == EACCES ? " (run as root or give CAP_NET_BIND_SERVICE)" : "");
		goto out;
	}
	if (pipe2(t->wake, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(err, errsz, "tftp: pipe: %s", strerror(errno));
		goto out;
	}
	int rc = pthread_create(&t->thr, NULL, tftp_main, t);
	if (rc != 0) {
		ret = -rc;
		snprintf(err, errsz, "tftp: cannot start its thread: %s", strerror(rc));
		goto out;
	}
	t->running = 1;
	log_info("tftp: serving %s on %s (read-only)", root, c->tftp_listen);
	srv->tftp = t;
	t = NULL;
	ret = 0;
out:
	if (t) {
		srv->tftp = t;
		tftp_stop(srv);
	}
	return ret;
}

void tftp_stop(struct srv *srv)
{
	struct tftp *t = srv->tftp;
	if (!t)
		return;
	if (t->running) {
		(void)!write(t->wake[1], "x", 1);
		pthread_join(t->thr, NULL);
	}
	while (t->xfers) {
		struct tftp_xfer *x = t->xfers;
		t->xfers = x->next;
		tftp_xfer_free(x);
	}
	if (t->lsock >= 0)
		close(t->lsock);
	if (t->rootfd >= 0)
		close(t->rootfd);
	if (t->wake[0] >= 0)
		close(t->wake[0]);
	if (t->wake[1] >= 0)
		close(t->wake[1]);
	free(t);
	srv->tftp = NULL;
}
