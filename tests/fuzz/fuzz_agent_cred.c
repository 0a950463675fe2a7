/*
 * libFuzzer harness for mlagent's credential file (cred_parse, cred_format):
 * arbitrary bytes. A parse that succeeds must give a well-formed credential
 * and an id in range, and must format and parse back to the same record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cred c, back;
	char err[256], buf[CRED_FILE_MAX];
	int r = cred_parse((const char *)data, size, &c, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r != 0)
		return 0;
	if (!cred_token_ok(c.credential, strlen(c.credential), "mla_") || c.machine_id < 1 ||
	    c.machine_id > INT64_MAX)
		abort();
	int n = cred_format(&c, buf, sizeof(buf));
	if (n < 0)
		abort();
	if (cred_parse(buf, (size_t)n, &back, err, sizeof(err)) != 0 ||
	    memcmp(&c, &back, sizeof(c)) != 0)
		abort();
	return 0;
}
