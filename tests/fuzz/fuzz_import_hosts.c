/*
 * libFuzzer harness for the dhcpd.conf and dnsmasq importer
 * (import_hosts.c). Every input is parsed as dhcpd, as dnsmasq and with
 * detection, each whole and in pieces. Beyond "no crash": every record and
 * error obeys the contract (fuzz_import_check.h), the return code is one
 * of the documented ones, the outcome does not depend on how the input is
 * split, and detection parses exactly as the format hostsimp_detect() names.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_import_check.h"
#include "import_hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses data as fmt, in pieces of 1 to 13 bytes (sized by the data) when split. */
static int run(enum hostsimp_format fmt, const uint8_t *data, size_t size, bool split,
               struct fuzz_out *o)
{
	struct match_sink sink = {fuzz_on_record, fuzz_on_error, o};
	struct hostsimp *p = hostsimp_new(fmt, &sink);
	int rc = 0;

	if (p == NULL)
		abort();
	o->max_line = fuzz_max_line(data, size);
	for (size_t i = 0, k = 0; i < size && rc == 0; k++) {
		size_t n = split ? 1 + data[(k * 7) % size] % 13 : size;

		if (n > size - i)
			n = size - i;
		rc = hostsimp_feed(p, data + i, n);
		i += n;
	}
	if (rc == 0)
		rc = hostsimp_finish(p);
	if (fmt != HOSTSIMP_AUTO)
		fuzz_check(hostsimp_format(p) == fmt);
	hostsimp_free(p);
	fuzz_check(rc == 0 || rc == -EINVAL || rc == -E2BIG);
	if (rc != 0)
		fuzz_check(o->errors > 0);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum hostsimp_format fmts[] = {HOSTSIMP_DHCPD, HOSTSIMP_DNSMASQ,
	                                            HOSTSIMP_AUTO};
	struct fuzz_out out[3];
	int rc[3];
	enum hostsimp_format detected = hostsimp_detect(data, size);

	for (int f = 0; f < 3; f++) {
		struct fuzz_out parts = {0};

		memset(&out[f], 0, sizeof(out[f]));
		rc[f] = run(fmts[f], data, size, false, &out[f]);
		fuzz_check(run(fmts[f], data, size, true, &parts) == rc[f]);
		fuzz_check(parts.hash == out[f].hash);
		fuzz_check(parts.records == out[f].records && parts.errors == out[f].errors);
	}
	if (detected != HOSTSIMP_AUTO && size <= HOSTSIMP_DETECT_MAX) {
		int f = detected == HOSTSIMP_DHCPD ? 0 : 1;

		fuzz_check(rc[2] == rc[f] && out[2].hash == out[f].hash);
	}
	return 0;
}
