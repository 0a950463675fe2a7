/*
 * libFuzzer harness for ml-install's status file as mlagent reads it
 * (inv_install_parse): arbitrary bytes. A parse that succeeds must give an
 * object of exactly the six keys with their types, and the object must
 * serialize and parse back to the same thing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_str_or_null(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return v && (json_is_null(v) || (json_is_string(v) && json_string_length(v) <= 1024));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *o = NULL, *back = NULL;
	int r = inv_install_parse((const char *)data, size, &o, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r != 0) {
		if (o || !err[0])
			abort();
		return 0;
	}
	const char *st = json_string_value(json_object_get(o, "state"));
	if (json_object_size(o) != 6 || !st || (strcmp(st, "done") && strcmp(st, "failed")) ||
	    !json_is_integer(json_object_get(o, "at")) ||
	    json_integer_value(json_object_get(o, "at")) < 0 ||
	    !json_is_boolean(json_object_get(o, "kept_data")) || !fuzz_str_or_null(o, "disk") ||
	    !fuzz_str_or_null(o, "reason") || !fuzz_str_or_null(o, "profile"))
		abort();
	char *text = json_dumps(o, JSON_COMPACT);
	if (!text || inv_install_parse(text, strlen(text), &back, err, sizeof(err)) != 0 ||
	    !json_equal(o, back))
		abort();
	free(text);
	json_decref(back);
	json_decref(o);
	return 0;
}
