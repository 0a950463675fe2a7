/*
 * SHA-256 and HMAC-SHA-256 through OpenSSL 3's EVP interfaces.
 *
 * The algorithm objects are fetched once per process (pthread_once) and
 * never change afterwards, so every function here is safe to call from any
 * thread; a context belongs to one thread at a time. OpenSSL failing to hash
 * means a broken installation, not bad input, so it aborts: the callers'
 * integrity checks must never run on a digest that was not computed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ascii.h"
#include "sha256.h"

struct sha256_ctx {
	EVP_MD_CTX *md;
};

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;
static EVP_MAC *alg_hmac;

static void die(const char *what)
{
	fprintf(stderr, "sha256: %s failed (broken OpenSSL?)\n", what);
	abort();
}

/*
 * Fetching an algorithm takes a lock and a lookup in OpenSSL 3; doing it
 * once keeps per-packet HMACs cheap.
 */
static void algs_fetch(void)
{
	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (alg_sha256 == NULL || alg_hmac == NULL)
		die("fetching SHA256/HMAC");
}

static const EVP_MD *md_sha256(void)
{
	pthread_once(&algs_once, algs_fetch);
	return alg_sha256;
}

struct sha256_ctx *sha256_new(void)
{
	struct sha256_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (c->md == NULL) {
		free(c);
		return NULL;
	}
	sha256_reset(c);
	return c;
}

void sha256_free(struct sha256_ctx *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}

void sha256_reset(struct sha256_ctx *c)
{
	if (EVP_DigestInit_ex(c->md, md_sha256(), NULL) != 1)
		die("EVP_DigestInit_ex");
}

void sha256_update(struct sha256_ctx *c, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (EVP_DigestUpdate(c->md, p, n) != 1)
		die("EVP_DigestUpdate");
}

void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN])
{
	unsigned len = 0;

	if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != SHA256_LEN)
		die("EVP_DigestFinal_ex");
	sha256_reset(c);
}

void sha256_buf(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	unsigned len = 0;

	/* OpenSSL wants a valid pointer even for zero bytes. */
	if (EVP_Digest(n ? p : "", n, out, &len, md_sha256(), NULL) != 1 || len != SHA256_LEN)
		die("EVP_Digest");
}

void hmac_sha256(const void *key, size_t keylen, const void *a, size_t alen, const void *b,
                 size_t blen, uint8_t out[SHA256_LEN])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *m;
	size_t len = 0;

	pthread_once(&algs_once, algs_fetch);
	m = EVP_MAC_CTX_new(alg_hmac);
	if (m == NULL)
		die("EVP_MAC_CTX_new");
	/*
	 * A NULL key means "keep the previous key" to EVP_MAC_init, and a
	 * fresh context has none; an empty key must be a non-NULL pointer.
	 */
	if (EVP_MAC_init(m, keylen ? key : (const void *)"", keylen, params) != 1)
		die("EVP_MAC_init");
	if (alen && EVP_MAC_update(m, a, alen) != 1)
		die("EVP_MAC_update");
	if (blen && EVP_MAC_update(m, b, blen) != 1)
		die("EVP_MAC_update");
	if (EVP_MAC_final(m, out, &len, SHA256_LEN) != 1 || len != SHA256_LEN)
		die("EVP_MAC_final");
	EVP_MAC_CTX_free(m);
}

char *sha256_hex(const uint8_t d[SHA256_LEN], char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SHA256_LEN; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 0xf];
	}
	out[2 * SHA256_LEN] = '\0';
	return out;
}

int sha256_from_hex(const char *s, uint8_t out[SHA256_LEN])
{
	uint8_t tmp[SHA256_LEN];

	if (s == NULL)
		return -EINVAL;
	/* Decode into tmp so that out is untouched on error. */
	for (size_t i = 0; i < SHA256_LEN; i++) {
		int hi, lo;

		/* A short string stops here: s[2i] == '\0' is not a hex digit. */
		hi = ascii_hexval(s[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = ascii_hexval(s[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	if (s[2 * SHA256_LEN] != '\0')
		return -EINVAL;
	memcpy(out, tmp, SHA256_LEN);
	return 0;
}

int ct_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}
