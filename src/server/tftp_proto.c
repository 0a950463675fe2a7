/*
 * TFTP parser and encoders (tftp_proto.h). A request is a sequence of
 * NUL-terminated strings; every string is found with memchr inside the
 * packet, so a missing NUL never walks off its end.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cursor.h"
#include "parse.h"
#include "tftp_proto.h"

/*
 * Takes the next NUL-terminated string of the packet. Returns it, or NULL
 * when no NUL is left before the end.
 */
static const char *tftp_next_str(struct cur *c)
{
	size_t left = cur_left(c);
	const uint8_t *p = c->p + c->off;
	const uint8_t *nul = left ? memchr(p, '\0', left) : NULL;
	if (!nul)
		return NULL;
	cur_skip(c, (size_t)(nul - p) + 1);
	return (const char *)p;
}

static int tftp_fail(uint16_t *code, const char **why, uint16_t c, const char *w)
{
	*code = c;
	*why = w;
	return -EINVAL;
}

int tftp_parse_request(const void *pkt, size_t len, const struct tftp_limits *lim,
                       struct tftp_req *req, uint16_t *code, const char **why)
{
	struct cur c;
	memset(req, 0, sizeof(*req));
	req->blksize = TFTP_BLKSIZE_DEFAULT;
	req->windowsize = 1;
	if (len > TFTP_REQ_MAX)
		return tftp_fail(code, why, TFTP_E_BADOP, "request longer than 512 bytes");
	cur_init(&c, pkt, len);
	uint16_t op = cur_u16(&c);
	if (c.err)
		return tftp_fail(code, why, TFTP_E_BADOP, "request too short");
	if (op != TFTP_OP_RRQ && op != TFTP_OP_WRQ)
		return tftp_fail(code, why, TFTP_E_BADOP, "not a read or write request");
	req->op = (enum tftp_op)op;
	const char *fn = tftp_next_str(&c);
	if (!fn)
		return tftp_fail(code, why, TFTP_E_BADOP, "file name not terminated");
	if (*fn == '\0')
		return tftp_fail(code, why, TFTP_E_BADOP, "empty file name");
	const char *mode = tftp_next_str(&c);
	if (!mode)
		return tftp_fail(code, why, TFTP_E_BADOP, "mode missing or not terminated");
	if (strcasecmp(mode, "octet") == 0)
		req->netascii = 0;
	else if (strcasecmp(mode, "netascii") == 0)
		req->netascii = 1;
	else if (strcasecmp(mode, "mail") == 0)
		return tftp_fail(code, why, TFTP_E_BADOP, "mail mode is not supported");
	else
		return tftp_fail(code, why, TFTP_E_BADOP, "unknown transfer mode");
	/* fn is shorter than the packet, which is at most 512 bytes. */
	memcpy(req->filename, fn, strlen(fn) + 1);

	unsigned seen = 0;
	while (cur_left(&c) > 0) {
		const char *name = tftp_next_str(&c);
		if (!name)
			return tftp_fail(code, why, TFTP_E_BADOP, "option name not terminated");
		/* Some boot ROMs pad requests with NULs: an empty name ends the list. */
		if (*name == '\0')
			break;
		const char *val = tftp_next_str(&c);
		if (!val)
			return tftp_fail(code, why, TFTP_E_BADOP, "option value missing");
		unsigned bit;
		if (strcasecmp(name, "blksize") == 0)
			bit = TFTP_OPT_BLKSIZE;
		else if (strcasecmp(name, "timeout") == 0)
			bit = TFTP_OPT_TIMEOUT;
		else if (strcasecmp(name, "tsize") == 0)
			bit = TFTP_OPT_TSIZE;
		else if (strcasecmp(name, "windowsize") == 0)
			bit = TFTP_OPT_WINDOWSIZE;
		else
			continue; /* RFC 2347: unknown options are ignored. */
		if (seen & bit)
			return tftp_fail(code, why, TFTP_E_OPTNEG, "option given twice");
		seen |= bit;
		uint64_t v;
		switch (bit) {
		case TFTP_OPT_BLKSIZE:
			if (parse_uint(val, TFTP_BLKSIZE_MIN, TFTP_BLKSIZE_MAX, &v, NULL) < 0)
				return tftp_fail(code, why, TFTP_E_OPTNEG,
				                 "blksize is not a number from 8 to 65464");
			req->blksize = (uint16_t)(v < lim->blksize_max ? v : lim->blksize_max);
			break;
		case TFTP_OPT_TIMEOUT:
			if (parse_uint(val, 1, 255, &v, NULL) < 0)
				return tftp_fail(code, why, TFTP_E_OPTNEG,
				                 "timeout is not a number from 1 to 255");
			req->timeout = (uint8_t)v;
			break;
		case TFTP_OPT_TSIZE:
			if (parse_uint(val, 0, UINT64_MAX, &v, NULL) < 0)
				return tftp_fail(code, why, TFTP_E_OPTNEG, "tsize is not a number");
			req->tsize = v;
			break;
		case TFTP_OPT_WINDOWSIZE:
			if (parse_uint(val, 1, 65535, &v, NULL) < 0)
				return tftp_fail(code, why, TFTP_E_OPTNEG,
				                 "windowsize is not a number from 1 to 65535");
			req->windowsize =
			    (uint16_t)(v < lim->windowsize_max ? v : lim->windowsize_max);
			break;
		default:
			return tftp_fail(code, why, TFTP_E_UNDEF, "internal error");
		}
	}
	req->opts = seen;
	return 0;
}

int tftp_parse_ack(const void *pkt, size_t len, uint16_t *block)
{
	struct cur c;
	cur_init(&c, pkt, len);
	uint16_t op = cur_u16(&c);
	uint16_t n = cur_u16(&c);
	if (c.err)
		return -EINVAL;
	*block = n;
	if (op == TFTP_OP_ACK)
		return 0;
	if (op == TFTP_OP_ERROR)
		return -ECONNABORTED;
	return -EINVAL;
}

size_t tftp_encode_data(void *buf, size_t cap, uint16_t block, const void *data, size_t n)
{
	if (cap < 4 || n > cap - 4)
		return 0;
	uint8_t *b = buf;
	memmove(b + 4, data, n);
	b[0] = 0;
	b[1] = TFTP_OP_DATA;
	b[2] = (uint8_t)(block >> 8);
	b[3] = (uint8_t)block;
	return n + 4;
}

static void tftp_put_opt(struct wcur *w, const char *name, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	wcur_bytes(w, name, strlen(name) + 1);
	wcur_bytes(w, num, (size_t)n + 1);
}

size_t tftp_encode_oack(void *buf, size_t cap, const struct tftp_req *req, uint64_t tsize)
{
	struct wcur w;
	wcur_init(&w, buf, cap);
	wcur_u16(&w, TFTP_OP_OACK);
	if (req->opts & TFTP_OPT_BLKSIZE)
		tftp_put_opt(&w, "blksize", req->blksize);
	if (req->opts & TFTP_OPT_TIMEOUT)
		tftp_put_opt(&w, "timeout", req->timeout);
	if (req->opts & TFTP_OPT_TSIZE)
		tftp_put_opt(&w, "tsize", tsize);
	if (req->opts & TFTP_OPT_WINDOWSIZE)
		tftp_put_opt(&w, "windowsize", req->windowsize);
	return w.err ? 0 : w.off;
}

const char *tftp_error_message(uint16_t code)
{
	static const char *const msgs[] = {
	    "Undefined error",
	    "File not found",
	    "Access violation",
	    "Disk full or allocation exceeded",
	    "Illegal TFTP operation",
	    "Unknown transfer ID",
	    "File already exists",
	    "No such user",
	    "Option negotiation refused",
	};
	return code < sizeof(msgs) / sizeof(msgs[0]) ? msgs[code] : "Unknown error";
}

size_t tftp_encode_error(void *buf, size_t cap, uint16_t code, const char *msg)
{
	struct wcur w;
	if (!msg)
		msg = tftp_error_message(code);
	size_t n = strlen(msg);
	/* A message never makes the packet longer than a default block. */
	if (n > TFTP_BLKSIZE_DEFAULT - 5)
		n = TFTP_BLKSIZE_DEFAULT - 5;
	wcur_init(&w, buf, cap);
	wcur_u16(&w, TFTP_OP_ERROR);
	wcur_u16(&w, code);
	wcur_bytes(&w, msg, n);
	wcur_u8(&w, 0);
	return w.err ? 0 : w.off;
}
