/*
 * libFuzzer harness for mf_decode(). Each input is decoded twice: as given,
 * and with its trailing SHA-256 recomputed, because random mutations almost
 * never keep the checksum right and would otherwise never reach the
 * validation code behind it. Whatever decodes must re-encode to exactly the
 * same bytes (the format has one encoding per manifest) and decode again to
 * the same manifest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_manifest(const struct manifest *a, const struct manifest *b)
{
	if (a->chunk_size != b->chunk_size || a->image_size != b->image_size ||
	    a->chunk_count != b->chunk_count || a->data_size != b->data_size ||
	    memcmp(a->image_sha256, b->image_sha256, SHA256_LEN) != 0)
		abort();
	for (uint32_t i = 0; i < a->chunk_count; i++) {
		const struct mf_chunk *x = &a->chunks[i], *y = &b->chunks[i];

		if (x->flags != y->flags || x->stored_len != y->stored_len ||
		    x->offset != y->offset || memcmp(x->sha256, y->sha256, SHA256_LEN) != 0)
			abort();
	}
}

static void check(const uint8_t *p, size_t len)
{
	struct manifest m, again;
	const char *why = NULL;
	uint8_t *enc = NULL;
	size_t enclen = 0;

	if (mf_decode(p, len, &m, &why) != 0) {
		/* A refusal always says why and leaves nothing to free. */
		if (!why || m.chunks)
			abort();
		return;
	}
	if (mf_validate(&m, &why) != 0)
		abort();
	if (mf_encode(&m, &enc, &enclen) != 0)
		abort();
	if (enclen != len || memcmp(enc, p, len) != 0)
		abort();
	if (mf_decode(enc, enclen, &again, &why) != 0)
		abort();
	same_manifest(&m, &again);
	for (uint32_t i = 0; i < m.chunk_count; i++)
		if (mf_chunk_raw_len(&m, i) == 0 || mf_chunk_raw_len(&m, i) > m.chunk_size)
			abort();
	mf_free(&again);
	mf_free(&m);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	check(data, size);
	if (size < MF_HEADER_LEN + SHA256_LEN)
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	sha256_buf(copy, size - SHA256_LEN, copy + size - SHA256_LEN);
	check(copy, size);
	free(copy);
	return 0;
}
