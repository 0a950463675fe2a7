/*
 * libFuzzer harness for jr_parse(): arbitrary bytes against a fixed expected
 * header (the one the seed corpus in corpus/journal/ was written for).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

#define FUZZ_CHUNKS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jr_header want, got;
	struct bitmap done;
	uint32_t ignored = 0;
	const char *why = NULL;
	int r;

	memset(&want, 0, sizeof(want));
	want.receiver_id = 1;
	for (int i = 0; i < SHA256_LEN; i++) {
		want.image_sha256[i] = (uint8_t)i;
	}
	want.chunk_count = FUZZ_CHUNKS;
	want.chunk_size = 1u << 20;
	if (bm_init(&done, FUZZ_CHUNKS) < 0) {
		return 0;
	}
	r = jr_parse(data, size, &want, &got, &done, &ignored, &why);
	if (r != 0 && r != -EINVAL && r != -ESTALE) {
		abort();
	}
	/* A failed parse sets nothing; a good one sets at most one bit per record. */
	if ((r != 0 && done.count != 0) || done.count > FUZZ_CHUNKS ||
	    (r == 0 && (size - JR_HEADER_LEN) / JR_RECORD_LEN < done.count) ||
	    (r != 0 && why == NULL)) {
		abort();
	}
	bm_free(&done);
	return 0;
}
