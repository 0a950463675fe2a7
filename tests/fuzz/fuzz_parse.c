/*
 * libFuzzer harness for the number parsers (parse.c), plus the other small
 * text decoders of src/common: sha256_from_hex() and log_escape(). Beyond
 * "no crash", it checks each parser's contract: the return codes, the
 * reason on failure, the range on success, and a round trip for parse_uint.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*parse_fn)(const char *, uint64_t, uint64_t, uint64_t *, const char **);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void run(parse_fn fn, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 0xdeadbeef;
	const char *err = NULL;
	int rc = fn(s, min, max, &v, &err);

	if (rc == 0) {
		check(v >= min && v <= max);
	} else {
		check(rc == -EINVAL || rc == -ERANGE);
		check(err != NULL && *err != '\0');
		check(v == 0xdeadbeef);
	}
}

/* parse_uint accepts exactly the decimal spellings of the numbers that fit. */
static void uint_roundtrip(const char *s)
{
	uint64_t v = 0;
	char back[32];
	const char *digits = s;

	if (parse_uint(s, 0, UINT64_MAX, &v, NULL) != 0)
		return;
	while (digits[0] == '0' && digits[1] != '\0')
		digits++;
	snprintf(back, sizeof(back), "%llu", (unsigned long long)v);
	check(strcmp(back, digits) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const parse_fn fns[] = {parse_uint, parse_size, parse_rate, parse_duration_ms};
	char *s = malloc(size + 1);
	uint64_t min = 0, max = UINT64_MAX;
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN];
	char esc[64];

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	/* A range from the first 16 bytes, so that range checks get exercised too. */
	if (size >= 16) {
		memcpy(&min, data, 8);
		memcpy(&max, data + 8, 8);
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		run(fns[i], s, 0, UINT64_MAX);
		run(fns[i], s, min, max);
		if (size >= 16)
			run(fns[i], s + 16, min, max);
	}
	uint_roundtrip(s);

	if (sha256_from_hex(s, d) == 0)
		check(strcasecmp(sha256_hex(d, hex), s) == 0);

	log_escape(data, size, esc, sizeof(esc));
	check(strlen(esc) < sizeof(esc));
	for (const char *p = esc; *p; p++)
		check(*p >= 0x20 && *p < 0x7f);

	free(s);
	return 0;
}
