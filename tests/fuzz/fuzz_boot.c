/*
 * libFuzzer harness for network boot's parsers and script builder
 * (boot.h): the Range header, the Host check, the argument checks, and
 * boot_script with fuzzed name, reason and extra command line. Beyond "no
 * crash", it checks the contracts: a satisfiable range lies inside the
 * file; a script is NUL-terminated, as long as reported, starts with
 * "#!ipxe", and no line of it starts with anything the input could inject
 * (every line is one of the script's own commands or labels).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* Each line must start with one of the words the builder writes. */
static void check_lines(const char *s)
{
	static const char *const starts[] = {
	    "#",      "echo ", "kernel ",  "initrd ",     "boot ", ":",      "sleep ",
	    "chain ", "iseq ", "sanboot ", "set mlexit ", "exit ", "isset ", NULL};
	while (*s) {
		int ok = 0;
		for (int i = 0; starts[i]; i++)
			ok |= strncmp(s, starts[i], strlen(starts[i])) == 0;
		check(ok);
		const char *nl = strchr(s, '\n');
		check(nl != NULL);
		s = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Three NUL-separated strings: name, reason, command line; the rest is a header. */
	char *buf = malloc(size + 4);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(buf + size, 0, 4);
	const char *name = buf;
	const char *why = name + strlen(name) + 1;
	const char *cmd = why <= buf + size ? why + strlen(why) + 1 : buf + size;
	if (cmd > buf + size)
		cmd = buf + size;
	const char *hdr = cmd + strlen(cmd) + 1;
	if (hdr > buf + size)
		hdr = buf + size;

	uint64_t fsize = size * 1000003ull, off = 0, len = 0;
	int rc = boot_range_parse(hdr, fsize, &off, &len);
	check(rc == 0 || rc == 1 || rc == -ERANGE);
	if (rc == 1)
		check(len >= 1 && off < fsize && len <= fsize - off);
	(void)boot_host_ok(name);
	(void)boot_arg_ok(why);
	(void)boot_mode_parse(name);

	char out[8192];
	for (int mode = BOOT_MICROLINUX; mode <= BOOT_SHELL; mode++) {
		struct boot_script_in in = {
		    .mode = mode,
		    .base = "http://10.0.0.1:8070",
		    .profile = "full",
		    .squashfs = size & 1,
		    .server_url = "https://10.0.0.1:8443",
		    .fingerprint = "ab:cd",
		    .token = "",
		    .name = name,
		    .mac = "52:54:00:00:00:01",
		    .why = why,
		    .cmdline = cmd,
		};
		int n = boot_script(&in, out, sizeof(out));
		check(n == -EINVAL || n == -ENOSPC || n > 0);
		if (n > 0) {
			check((size_t)n == strlen(out));
			check(strncmp(out, "#!ipxe\n", 7) == 0);
			check_lines(out);
			check(boot_cmdline_ok(cmd));
		}
	}
	free(buf);
	return 0;
}
