/*
 * libFuzzer harness for the CSV importer (import_csv.c) and, through it,
 * the match_* validators; plus match_glob() and match_domain() on pieces of
 * the input. Beyond "no crash": every record and error obeys the contract
 * (fuzz_import_check.h), the return code is one of the documented ones, and
 * the outcome is the same whether the input comes whole or in pieces.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_import_check.h"
#include "import_csv.h"
#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A pattern without special bytes matches exactly the names equal to it, ignoring case. */
static void glob_props(const char *pat, size_t plen, const char *s, size_t slen)
{
	bool plain = true, got = match_glob(pat, plen, s, slen);

	for (size_t i = 0; i < plen; i++)
		if (strchr("*?[\\", pat[i]) && pat[i] != '\0')
			plain = false;
	if (plain && plen <= MATCH_GLOB_MAX && slen <= MATCH_GLOB_MAX) {
		bool same = plen == slen;

		for (size_t i = 0; same && i < plen; i++)
			same = tolower((unsigned char)pat[i]) == tolower((unsigned char)s[i]);
		fuzz_check(got == same);
	}
	/* A leading '*' may match nothing: "*" + pattern matches whatever pattern matches. */
	if (got && plen < MATCH_GLOB_MAX) {
		char star[MATCH_GLOB_MAX + 1];

		star[0] = '*';
		memcpy(star + 1, pat, plen);
		fuzz_check(match_glob(star, plen + 1, s, slen));
	}
	(void)match_glob_check(pat, plen, NULL, 0);
	/* A name is in its own domain. */
	if (slen > 0 && match_hostname_check(s, slen, NULL, 0) == 0)
		fuzz_check(match_domain(s, slen, s, slen));
	(void)match_domain(pat, plen, s, slen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_out whole = {0}, parts = {0};
	struct match_sink sw = {fuzz_on_record, fuzz_on_error, &whole};
	struct match_sink sp = {fuzz_on_record, fuzz_on_error, &parts};
	struct csvimp *p;
	size_t half = size / 2;
	int rw, rp = 0;

	whole.max_line = parts.max_line = fuzz_max_line(data, size);
	rw = csvimp_parse(data, size, &sw);
	fuzz_check(rw == 0 || rw == -EINVAL || rw == -E2BIG);
	/* The header is the only fatal error a small input can have, and it is reported. */
	if (rw != 0)
		fuzz_check(whole.errors > 0);

	/* The same input in pieces of 1 to 17 bytes, sized by the data itself. */
	p = csvimp_new(&sp);
	if (p == NULL)
		return 0;
	for (size_t i = 0, k = 0; i < size && rp == 0; k++) {
		size_t n = 1 + data[k % size] % 17;

		if (n > size - i)
			n = size - i;
		rp = csvimp_feed(p, data + i, n);
		i += n;
	}
	if (rp == 0)
		rp = csvimp_finish(p);
	csvimp_free(p);
	fuzz_check(rp == rw);
	fuzz_check(parts.hash == whole.hash);
	fuzz_check(parts.records == whole.records && parts.errors == whole.errors);

	glob_props((const char *)data, half, (const char *)data + half, size - half);
	return 0;
}
