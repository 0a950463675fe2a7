/*
 * libFuzzer harness for the TFTP request parser and ACK parser
 * (tftp_proto.h). Beyond "no crash", it checks the contracts: a refusal
 * has a reason and a code of 4 or 8; an accepted request has a non-empty
 * file name, values inside the limits, and an OACK that fits a packet.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tftp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tftp_limits lim = {.blksize_max = 1468, .windowsize_max = 64};
	struct tftp_req r;
	uint16_t code = 0xffff, blk;
	const char *why = NULL;
	uint8_t buf[600];
	int rc = tftp_parse_request(data, size, &lim, &r, &code, &why);
	if (rc < 0) {
		check(rc == -EINVAL && why != NULL);
		check(code == TFTP_E_BADOP || code == TFTP_E_OPTNEG);
	} else {
		check(size <= TFTP_REQ_MAX);
		check(r.op == TFTP_OP_RRQ || r.op == TFTP_OP_WRQ);
		check(r.filename[0] != '\0' && strlen(r.filename) < size);
		check(r.blksize >= 8 && r.blksize <= 1468);
		check(r.windowsize >= 1 && r.windowsize <= 64);
		check(!(r.opts & TFTP_OPT_TIMEOUT) || (r.timeout >= 1));
		check(tftp_encode_oack(buf, sizeof(buf), &r, UINT64_MAX) >= 2);
	}
	rc = tftp_parse_ack(data, size, &blk);
	check(rc == 0 || rc == -EINVAL || rc == -ECONNABORTED);
	check(tftp_encode_error(buf, sizeof(buf), code, why) > 4);
	return 0;
}
