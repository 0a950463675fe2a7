/*
 * libFuzzer harness for tls_material_from_pem(): the input is the
 * certificate text, a NUL byte, then the key text (no NUL: the same bytes
 * serve as both). Checks the contract: success gives well-formed PEM and
 * fingerprints and an empty err, and the material's own PEM loads again to
 * the same fingerprint; failure gives a listed code and a message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed clock (2024-01-01) keeps runs reproducible. */
#define FUZZ_NOW ((time_t)1704067200)

static void check_ok(const struct tls_material *m, const char *err)
{
	const char *fp = tls_fingerprint(m), *hex = tls_fingerprint_hex(m);

	if (err[0] != '\0' || strlen(fp) != TLS_FP_COLON_LEN || strlen(hex) != TLS_FP_HEX_LEN)
		abort();
	for (size_t i = 0; i < 32; i++) {
		if (fp[3 * i] != hex[2 * i] || fp[3 * i + 1] != hex[2 * i + 1])
			abort();
		if (i < 31 && fp[3 * i + 2] != ':')
			abort();
	}
	if (strncmp(tls_cert_pem(m), "-----BEGIN CERTIFICATE-----\n", 28) != 0 ||
	    strncmp(tls_key_pem(m), "-----BEGIN PRIVATE KEY-----\n", 28) != 0)
		abort();
	if (tls_not_after(m) <= FUZZ_NOW || tls_cert_path(m) != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(data, '\0', size);
	const char *key = nul ? nul + 1 : text;
	size_t clen = nul ? (size_t)(nul - text) : size;
	size_t klen = nul ? size - clen - 1 : size;
	struct tls_material *m = NULL, *again = NULL;
	char err[256];
	int rc;

	rc = tls_material_from_pem(text, clen, key, klen, FUZZ_NOW, &m, err, sizeof(err));
	if (rc == 0) {
		check_ok(m, err);
		/* What the material serves must load again to the same certificate. */
		rc = tls_material_from_pem(tls_cert_pem(m), strlen(tls_cert_pem(m)), tls_key_pem(m),
		                           strlen(tls_key_pem(m)), FUZZ_NOW, &again, err,
		                           sizeof(err));
		if (rc != 0 || strcmp(tls_fingerprint(again), tls_fingerprint(m)) != 0 ||
		    strcmp(tls_cert_pem(again), tls_cert_pem(m)) != 0)
			abort();
		tls_material_free(again);
	} else {
		if (m || err[0] == '\0')
			abort();
		if (rc != -EBADMSG && rc != -EKEYREJECTED && rc != -EKEYEXPIRED && rc != -EFBIG &&
		    rc != -ENOMEM && rc != -EIO)
			abort();
	}
	tls_material_free(m);
	/* Nothing may be left on the thread's OpenSSL error queue. */
	if (ERR_peek_error() != 0)
		abort();
	return 0;
}
