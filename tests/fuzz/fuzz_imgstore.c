/*
 * libFuzzer harness for the image store's records (src/agent/imgstore_rec.c):
 * arbitrary bytes as a version's meta (or a reception's rx record) and as a
 * switch intent. A parse that succeeds must give values in range, and a
 * parsed meta must format and parse back to the same values.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imgstore_meta m, back;
	char err[256], buf[IMGSTORE_META_MAX];
	uint64_t a, p;
	int r, n;

	r = imgstore_meta_parse((const char *)data, size, &m, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r == 0) {
		if (m.image < 1 || m.image > IMGSTORE_MAX_ID || m.version < 1 ||
		    m.version > IMGSTORE_MAX_ID || m.size < 1 || m.size > IMGSTORE_MAX_SIZE ||
		    strlen(m.sha256) != IMGSTORE_SHA_HEX - 1 || m.received_at < -1)
			abort();
		n = imgstore_meta_format(&m, buf, sizeof(buf));
		if (n <= 0 || imgstore_meta_parse(buf, (size_t)n, &back, err, sizeof(err)) != 0 ||
		    memcmp(&m, &back, sizeof(m)) != 0)
			abort();
	}
	r = imgstore_switch_parse((const char *)data, size, &a, &p, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	if (r == 0 && (a < 1 || a > IMGSTORE_MAX_ID || p > IMGSTORE_MAX_ID || a == p))
		abort();
	return 0;
}
