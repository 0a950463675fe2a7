/*
 * Certificate fingerprints and public-key pins (pin.h), shared by mlctl and mlagent.
 *
 * Why two hashes: mlserver announces the SHA-256 of its certificate (the
 * fingerprint people compare), while libcurl can pin, with every TLS
 * backend that supports CURLOPT_PINNEDPUBLICKEY, only the SHA-256 of the
 * certificate's public key. mlctl checks the first at login and pins the
 * second from then on; both come from the same certificate here.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ascii.h"
#include "pin.h"
#include "sha256.h"

#define PIN_PEM_MAX (1024 * 1024)

static void pin_colon_hex(const uint8_t d[SHA256_LEN], char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < SHA256_LEN; i++) {
		out[i * 3] = hex[d[i] >> 4];
		out[i * 3 + 1] = hex[d[i] & 15];
		out[i * 3 + 2] = i + 1 < SHA256_LEN ? ':' : '\0';
	}
}

int pin_from_pem(const char *pem, size_t len, char *fp, char *pin)
{
	int ret = -EINVAL;
	unsigned char *der = NULL, *spki = NULL;
	uint8_t d[SHA256_LEN];
	X509 *x = NULL;
	if (len == 0 || len > PIN_PEM_MAX)
		return -EINVAL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return -ENOMEM;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!x)
		goto out;
	int dlen = i2d_X509(x, &der);
	int slen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	if (dlen <= 0 || slen <= 0)
		goto out;
	if (fp) {
		sha256_buf(der, (size_t)dlen, d);
		pin_colon_hex(d, fp);
	}
	if (pin) {
		unsigned char b64[48];
		sha256_buf(spki, (size_t)slen, d);
		/* 32 bytes are 44 base64 characters with one '=' of padding. */
		if (EVP_EncodeBlock(b64, d, SHA256_LEN) != 44)
			goto out;
		memcpy(pin, "sha256//", 8);
		memcpy(pin + 8, b64, 44);
		pin[52] = '\0';
	}
	ret = 0;
out:
	OPENSSL_free(der);
	OPENSSL_free(spki);
	X509_free(x);
	BIO_free(b);
	return ret;
}

int pin_fp_normalize(const char *in, char *out)
{
	uint8_t d[SHA256_LEN];
	size_t n = 0;
	if (strncasecmp(in, "sha256:", 7) == 0)
		in += 7;
	for (const char *p = in; *p;) {
		if (*p == ':' && n > 0 && p[1] != '\0') {
			p++;
			continue;
		}
		int hi = ascii_hexval(p[0]), lo = hi < 0 ? -1 : ascii_hexval(p[1]);
		if (hi < 0 || lo < 0 || n == SHA256_LEN)
			return -EINVAL;
		d[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	if (n != SHA256_LEN)
		return -EINVAL;
	pin_colon_hex(d, out);
	return 0;
}

int pin_key_check(const char *pin)
{
	if (strncmp(pin, "sha256//", 8) != 0 || strlen(pin) != 52 || pin[51] != '=')
		return -EINVAL;
	for (size_t i = 8; i < 51; i++) {
		char c = pin[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -EINVAL;
	}
	return 0;
}
