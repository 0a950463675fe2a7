/*
 * libFuzzer harness for mlagent's kernel command line parser
 * (acfg_cmdline_parse): arbitrary bytes. A success must give values of
 * 1..ACFG_VALUE_MAX bytes without control characters; a failure must leave
 * the earlier values untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *v)
{
	if (!v)
		return;
	size_t n = strlen(v);
	if (n == 0 || n > ACFG_VALUE_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acfg_kcmd k = {0};
	char err[256];
	k.server = strdup("before");
	int r = acfg_cmdline_parse((const char *)data, size, &k, err, sizeof(err));
	if (r != 0 && r != -EINVAL && r != -ENOMEM)
		abort();
	if (r < 0 && strcmp(k.server, "before") != 0)
		abort();
	if (r == 0) {
		check(k.server);
		check(k.token);
		check(k.fp);
		check(k.name);
		check(k.interface);
	}
	acfg_kcmd_free(&k);
	return 0;
}
