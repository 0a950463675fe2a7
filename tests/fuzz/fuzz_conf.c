/*
 * libFuzzer harness for conf_load_string() (conf.c over inih) with a key
 * table holding every key type. Checks the error contract too: success
 * leaves err empty, failure names the file and a line, and conf.c's own
 * reading of each line agrees with inih's.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sample {
	char *name;
	char *iface;
	uint64_t port;
	uint64_t rate;
	uint64_t chunk;
	uint64_t timeout_ms;
	int verbose;
	int flag;
};

static const struct conf_key keys[] = {
    {"", "name", CONF_STR, offsetof(struct sample, name), 0, 0, "name"},
    {"", "verbose", CONF_BOOL, offsetof(struct sample, verbose), 0, 0, "verbose"},
    {"net", "port", CONF_UINT, offsetof(struct sample, port), 10, 65535, "port"},
    {"net", "iface", CONF_STR, offsetof(struct sample, iface), 0, 0, "iface"},
    {"net", "rate", CONF_RATE, offsetof(struct sample, rate), 1000, 100000000000ULL, "rate"},
    {"store", "chunk", CONF_SIZE, offsetof(struct sample, chunk), 4096, 1ULL << 30, "chunk"},
    {"store", "timeout", CONF_DURATION_MS, offsetof(struct sample, timeout_ms), 0, 86400000,
     "timeout"},
    {"store", "flag", CONF_BOOL, offsetof(struct sample, flag), 0, 0, "flag"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sample s;
	char err[256];
	char *text = malloc(size + 1);
	int rc;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&s, 0, sizeof(s));
	/* A heap default, as callers set them: the loader must free it when replaced. */
	s.name = strdup("default");

	rc = conf_load_string("fuzz.conf", text, keys, sizeof(keys) / sizeof(keys[0]), &s, err,
	                      sizeof(err));
	if (rc == 0) {
		if (err[0] != '\0')
			abort();
		if (s.port > 65535 || (s.port != 0 && s.port < 10))
			abort();
		if (s.verbose != 0 && s.verbose != 1)
			abort();
	} else if (rc > 0 || strncmp(err, "fuzz.conf:", 10) != 0) {
		abort();
	} else if (strcmp(err + 10 + strspn(err + 10, "0123456789"), ": syntax error") == 0) {
		/*
		 * conf.c's line classifier should explain every error inih
		 * finds; this generic message means the two disagreed.
		 */
		abort();
	}
	conf_free_strings(keys, sizeof(keys) / sizeof(keys[0]), &s);
	free(text);
	return 0;
}
