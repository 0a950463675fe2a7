/*
 * TFTP wire format (RFC 1350) with option negotiation (RFC 2347, 2348, 2349,
 * 7440): a pure parser and encoder, no I/O, so it can be fuzzed alone
 * (tests/fuzz/fuzz_tftp.c). The server (tftp.h) owns sockets and files.
 */
#ifndef ML_TFTP_PROTO_H
#define ML_TFTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum tftp_op {
	TFTP_OP_RRQ = 1,
	TFTP_OP_WRQ = 2,
	TFTP_OP_DATA = 3,
	TFTP_OP_ACK = 4,
	TFTP_OP_ERROR = 5,
	TFTP_OP_OACK = 6,
};

/* Error codes of RFC 1350 (0-7) and RFC 2347 (8). */
enum tftp_errcode {
	TFTP_E_UNDEF = 0,
	TFTP_E_NOTFOUND = 1,
	TFTP_E_ACCESS = 2,
	TFTP_E_NOSPACE = 3,
	TFTP_E_BADOP = 4,
	TFTP_E_BADID = 5,
	TFTP_E_EXISTS = 6,
	TFTP_E_NOUSER = 7,
	TFTP_E_OPTNEG = 8,
};

/* A request (RRQ/WRQ) is at most this long (RFC 2347). */
#define TFTP_REQ_MAX 512
#define TFTP_BLKSIZE_DEFAULT 512
#define TFTP_BLKSIZE_MIN 8
#define TFTP_BLKSIZE_MAX 65464
/* Ethernet MTU 1500 minus IPv4 (20), UDP (8) and TFTP (4) headers. */
#define TFTP_BLKSIZE_MAX_DEFAULT 1468
#define TFTP_WINDOWSIZE_MAX_DEFAULT 64

/* Options the client sent and the server accepted: they go into the OACK. */
#define TFTP_OPT_BLKSIZE 0x1u
#define TFTP_OPT_TIMEOUT 0x2u
#define TFTP_OPT_TSIZE 0x4u
#define TFTP_OPT_WINDOWSIZE 0x8u

/* The server's limits: blksize and windowsize are clamped to them. */
struct tftp_limits {
	uint16_t blksize_max;    /* 8..65464 */
	uint16_t windowsize_max; /* 1..65535 */
};

struct tftp_req {
	enum tftp_op op;             /* TFTP_OP_RRQ or TFTP_OP_WRQ */
	int netascii;                /* mode netascii (else octet) */
	char filename[TFTP_REQ_MAX]; /* NUL-terminated, non-empty, as sent */
	unsigned opts;               /* TFTP_OPT_* accepted */
	uint16_t blksize;            /* 512 unless negotiated (then clamped) */
	uint16_t windowsize;         /* 1 unless negotiated (then clamped) */
	uint8_t timeout;             /* seconds; 0 unless negotiated */
	uint64_t tsize;              /* as sent (0 in a RRQ) */
};

/*
 * Parses a RRQ or WRQ of len bytes into req. Option names are
 * case-insensitive, unknown options are ignored, a repeated option is
 * refused. Returns 0, or -EINVAL with *code the TFTP error to answer
 * (TFTP_E_BADOP for a malformed request, TFTP_E_OPTNEG for a bad option
 * value) and *why a static English reason.
 */
int tftp_parse_request(const void *pkt, size_t len, const struct tftp_limits *lim,
                       struct tftp_req *req, uint16_t *code, const char **why);

/*
 * Parses a packet a client sends during a read transfer. Returns 0 for an
 * ACK (block in *block), -ECONNABORTED for an ERROR (the client gives up;
 * its code in *block), -EINVAL for anything else.
 */
int tftp_parse_ack(const void *pkt, size_t len, uint16_t *block);

/*
 * Encoders write into buf (cap bytes) and return the packet length, or 0
 * when it does not fit. tftp_encode_data copies n bytes from data, which
 * may be buf + 4 (already in place).
 */
size_t tftp_encode_data(void *buf, size_t cap, uint16_t block, const void *data, size_t n);
/* The OACK answers the options in req->opts, tsize with the file's size. */
size_t tftp_encode_oack(void *buf, size_t cap, const struct tftp_req *req, uint64_t tsize);
/* msg NULL: the standard message of code (tftp_error_message). */
size_t tftp_encode_error(void *buf, size_t cap, uint16_t code, const char *msg);
/* The RFC's message for code 0-8; "Unknown error" beyond. */
const char *tftp_error_message(uint16_t code);

#endif
