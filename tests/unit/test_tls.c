/*
 * Unit tests for src/server/tls.c: generate a pair in a temporary data
 * directory, load it again, compare the fingerprint with the openssl CLI's,
 * read the certificate's fields back with libcrypto, refuse broken input,
 * and serve the pair with libmicrohttpd (GnuTLS) to a libcurl (OpenSSL)
 * client that sees the same fingerprint and accepts the names.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"

static char tmpdir[64];
static char err[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tls.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_in(char *buf, size_t n, const char *name)
{
	int len = snprintf(buf, n, "%s/%s", tmpdir, name);

	assert_true(len > 0 && (size_t)len < n);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static X509 *parse_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;

	assert_non_null(b);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(x);
	return x;
}

/* The colon form of the SHA-256 of x's DER, computed here independently of tls.c. */
static void cert_fp(X509 *x, char *out)
{
	unsigned char *der = NULL;
	unsigned char md[32];
	int len = i2d_X509(x, &der);

	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	for (int i = 0; i < 32; i++)
		snprintf(out + 3 * i, 4, "%02x%s", md[i], i < 31 ? ":" : "");
}

/* Generates a pair with tls_generate() and builds the material from it. */
static struct tls_material *make_material(const char *host, char **cert, char **key)
{
	struct tls_material *m = NULL;

	assert_int_equal(tls_generate(host, NULL, 0, time(NULL), cert, key, err, sizeof(err)), 0);
	assert_int_equal(tls_material_from_pem(*cert, strlen(*cert), *key, strlen(*key), time(NULL),
	                                       &m, err, sizeof(err)),
	                 0);
	return m;
}

static void test_create_and_reload(void **state)
{
	const char *extra[] = {"mlsrv.example.org", "10.1.2.3", "fd00::1"};
	struct tls_material *m = NULL, *m2 = NULL;
	char crt[256], key[256], dir[256], fp[TLS_FP_COLON_LEN + 1];
	bool created = false;
	struct stat st;
	char *disk;
	time_t now = time(NULL);

	(void)state;
	assert_int_equal(
	    tls_load_or_create(NULL, "", tmpdir, extra, 3, &m, &created, err, sizeof(err)), 0);
	assert_true(created);
	path_in(dir, sizeof(dir), "tls");
	path_in(crt, sizeof(crt), "tls/server.crt");
	path_in(key, sizeof(key), "tls/server.key");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(crt, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_string_equal(tls_cert_path(m), crt);
	assert_string_equal(tls_key_path(m), key);

	/* CN is this host's name. */
	char host[256] = "", cn[128] = "";
	X509 *xc = parse_cert(tls_cert_pem(m));

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(xc), NID_commonName, cn,
	                                      sizeof(cn)) > 0);
	X509_free(xc);
	if (strcmp(cn, "localhost") != 0)
		assert_string_equal(cn, host);

	/* What is on disk is what is served; the key is PKCS#8 for GnuTLS. */
	disk = read_text(crt);
	assert_string_equal(disk, tls_cert_pem(m));
	free(disk);
	disk = read_text(key);
	assert_string_equal(disk, tls_key_pem(m));
	free(disk);
	assert_non_null(strstr(tls_key_pem(m), "-----BEGIN PRIVATE KEY-----\n"));
	assert_null(strstr(tls_key_pem(m), "EC PRIVATE KEY"));

	/* The two fingerprint forms agree and match an independent digest. */
	assert_int_equal(strlen(tls_fingerprint(m)), TLS_FP_COLON_LEN);
	assert_int_equal(strlen(tls_fingerprint_hex(m)), TLS_FP_HEX_LEN);
	for (size_t i = 0, j = 0; i < TLS_FP_COLON_LEN; i++) {
		char c = tls_fingerprint(m)[i];

		if (i % 3 == 2) {
			assert_int_equal(c, ':');
			continue;
		}
		assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
		assert_int_equal(c, tls_fingerprint_hex(m)[j++]);
	}
	X509 *x = parse_cert(tls_cert_pem(m));
	cert_fp(x, fp);
	X509_free(x);
	assert_string_equal(fp, tls_fingerprint(m));

	/* Ten years, no warning. */
	assert_true(tls_not_after(m) >= now + (time_t)TLS_VALID_DAYS * 86400 - 5);
	assert_true(tls_not_after(m) <= now + (time_t)TLS_VALID_DAYS * 86400 + 5);
	assert_false(tls_expires_soon(m));

	/* The second start loads the same pair instead of generating one. */
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m2, &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_string_equal(tls_fingerprint(m2), tls_fingerprint(m));
	assert_string_equal(tls_cert_pem(m2), tls_cert_pem(m));
	assert_string_equal(tls_key_pem(m2), tls_key_pem(m));

	/* Configured explicitly, the same files give the same material. */
	tls_material_free(m2);
	m2 = NULL;
	assert_int_equal(
	    tls_load_or_create(crt, key, NULL, NULL, 0, &m2, &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_string_equal(tls_fingerprint_hex(m2), tls_fingerprint_hex(m));
	tls_material_free(m2);
	tls_material_free(m);
	tls_material_free(NULL);
}

static void test_fingerprint_matches_openssl_cli(void **state)
{
	struct tls_material *m = NULL;
	char cmd[512], line[512], crt[256];
	FILE *p;
	char *fp;

	(void)state;
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)), 0);
	path_in(crt, sizeof(crt), "tls/server.crt");
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s'", crt);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	/* "sha256 Fingerprint=AB:CD:...\n" (the prefix's case varies between versions). */
	line[strcspn(line, "\n")] = '\0';
	fp = strchr(line, '=');
	assert_non_null(fp);
	fp++;
	assert_int_equal(strlen(fp), TLS_FP_COLON_LEN);
	assert_int_equal(strcasecmp(fp, tls_fingerprint(m)), 0);
	tls_material_free(m);
}

/* Collects the subjectAltName of x as "DNS:a,IP:b,..." in OpenSSL's spelling. */
static void san_text(X509 *x, char *out, size_t n)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t used = 0;

	assert_non_null(gens);
	out[0] = '\0';
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int type;
		ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
		char one[128];

		if (type == GEN_DNS) {
			snprintf(one, sizeof(one), "DNS:%.*s", ASN1_STRING_length(s),
			         (const char *)ASN1_STRING_get0_data(s));
		} else {
			char ip[INET6_ADDRSTRLEN];
			int len = ASN1_STRING_length(s);

			assert_int_equal(type, GEN_IPADD);
			assert_true(len == 4 || len == 16);
			assert_non_null(inet_ntop(len == 4 ? AF_INET : AF_INET6,
			                          ASN1_STRING_get0_data(s), ip, sizeof(ip)));
			snprintf(one, sizeof(one), "IP:%s", ip);
		}
		used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "", one);
		assert_true(used < n);
	}
	GENERAL_NAMES_free(gens);
}

static void test_certificate_fields(void **state)
{
	const char *extra[] = {"mlsrv.example.org", "10.1.2.3",  "fd00::1", "*.room1.example.org",
	                       "LOCALHOST",         "127.0.0.1", "10.1.2.3"};
	char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL, san[1024], cn[128];
	time_t now = 1700000000;
	X509 *x, *x2;
	EVP_PKEY *pub;
	const ASN1_INTEGER *serial;
	BIGNUM *bn;
	int day, sec;

	(void)state;
	assert_int_equal(tls_generate("mlsrv01", extra, 7, now, &cert, &key, err, sizeof(err)), 0);
	x = parse_cert(cert);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)), 7);
	assert_string_equal(cn, "mlsrv01");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	/* Duplicates (by case for DNS, by value for IP) are dropped. */
	san_text(x, san, sizeof(san));
	assert_string_equal(san, "DNS:mlsrv01,DNS:localhost,IP:127.0.0.1,DNS:mlsrv.example.org,"
	                         "IP:10.1.2.3,IP:fd00::1,DNS:*.room1.example.org");
	/* A server certificate, not a CA. */
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	/* ECDSA P-256, self-signed with SHA-256. */
	pub = X509_get0_pubkey(x);
	assert_non_null(pub);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);
	assert_int_equal(X509_verify(x, pub), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	/* Valid from an hour before now for ten years. */
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 3601}), 1);
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 3599}), -1);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), X509_get0_notAfter(x)),
	                 1);
	assert_int_equal(day, TLS_VALID_DAYS);
	assert_int_equal(sec, 3600);
	/* A positive serial of up to 128 bits, different each time. */
	serial = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
	BN_free(bn);
	assert_int_equal(tls_generate("mlsrv01", NULL, 0, now, &cert2, &key2, err, sizeof(err)), 0);
	x2 = parse_cert(cert2);
	assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(x2)), 0);
	assert_int_not_equal(EVP_PKEY_eq(pub, X509_get0_pubkey(x2)), 1);
	X509_free(x2);
	X509_free(x);
	free(cert);
	free(key);
	free(cert2);
	free(key2);
}

static void test_bad_names(void **state)
{
	static const char *bad[] = {
	    "bad name", "[::1]", "-lead.example", "trail-.example", "a..b",
	    "dot.",     "",      "fe80::1%eth0",  "x\n.example",    "a*.example"};
	char long_host[80];
	char *cert = NULL, *key = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(
		    tls_generate("mlsrv01", &bad[i], 1, time(NULL), &cert, &key, err, sizeof(err)),
		    -EINVAL);
		assert_null(cert);
		assert_null(key);
		assert_non_null(strstr(err, "neither a DNS name nor an IP address"));
	}
	/* A host name must be a plain DNS name that fits a CN. */
	memset(long_host, 'a', 65);
	long_host[65] = '\0';
	assert_int_equal(
	    tls_generate(long_host, NULL, 0, time(NULL), &cert, &key, err, sizeof(err)), -EINVAL);
	assert_int_equal(tls_generate("*.wild", NULL, 0, time(NULL), &cert, &key, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(tls_generate("mlsrv01", bad, TLS_EXTRA_NAMES_MAX + 1, time(NULL), &cert,
	                              &key, err, sizeof(err)),
	                 -EINVAL);
	/* Bad extra names stop the generation before anything is written. */
	struct tls_material *m = NULL;
	char dir[256];
	struct stat st;

	assert_int_equal(tls_load_or_create(NULL, NULL, tmpdir, bad, 1, &m, NULL, err, sizeof(err)),
	                 -EINVAL);
	assert_null(m);
	path_in(dir, sizeof(dir), "tls/server.crt");
	assert_int_equal(stat(dir, &st), -1);
}

static void test_mismatch(void **state)
{
	char *ca = NULL, *ka = NULL, *cb = NULL, *kb = NULL;
	struct tls_material *a = make_material("alpha", &ca, &ka);
	struct tls_material *b = make_material("beta", &cb, &kb);
	struct tls_material *m = NULL;
	char crt[256], key[256];

	(void)state;
	assert_string_not_equal(tls_fingerprint(a), tls_fingerprint(b));
	assert_int_equal(
	    tls_material_from_pem(ca, strlen(ca), kb, strlen(kb), time(NULL), &m, err, sizeof(err)),
	    -EKEYREJECTED);
	assert_null(m);
	assert_non_null(strstr(err, "does not belong to the certificate"));

	/* The same through files: the message names both. */
	path_in(crt, sizeof(crt), "a.crt");
	path_in(key, sizeof(key), "b.key");
	write_file(crt, ca, strlen(ca));
	write_file(key, kb, strlen(kb));
	assert_int_equal(tls_load_or_create(crt, key, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)),
	                 -EKEYREJECTED);
	assert_null(m);
	assert_non_null(strstr(err, crt));
	assert_non_null(strstr(err, key));

	/* The data directory's pair is checked the same way. */
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)), 0);
	tls_material_free(m);
	m = NULL;
	path_in(key, sizeof(key), "tls/server.key");
	write_file(key, kb, strlen(kb));
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)),
	    -EKEYREJECTED);
	assert_null(m);

	tls_material_free(a);
	tls_material_free(b);
	free(ca);
	free(ka);
	free(cb);
	free(kb);
}

static void expect_bad(const char *cert, size_t clen, const char *key, size_t klen, int code,
                       const char *msg)
{
	struct tls_material *m = NULL;

	err[0] = '\0';
	assert_int_equal(
	    tls_material_from_pem(cert, clen, key, klen, time(NULL), &m, err, sizeof(err)), code);
	assert_null(m);
	if (!strstr(err, msg))
		fail_msg("error \"%s\" lacks \"%s\"", err, msg);
	/* A failure leaves no stale OpenSSL error behind for the next caller. */
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_garbage(void **state)
{
	char *cert = NULL, *key = NULL, *half, *chain, *enc;
	struct tls_material *m = make_material("mlsrv01", &cert, &key);
	size_t clen = strlen(cert), klen = strlen(key);
	static const char bad_b64[] =
	    "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
	EVP_PKEY *pk;
	BIO *b;
	char *big;

	(void)state;
	expect_bad("hello world\n", 12, key, klen, -EBADMSG, "certificate: no PEM certificate");
	expect_bad("", 0, key, klen, -EBADMSG, "no PEM certificate");
	expect_bad(bad_b64, strlen(bad_b64), key, klen, -EBADMSG, "no PEM certificate");
	/* A key where the certificate should be, and the other way round. */
	expect_bad(key, klen, key, klen, -EBADMSG, "no PEM certificate");
	expect_bad(cert, clen, cert, clen, -EBADMSG, "private key: no PEM private key");
	expect_bad(cert, clen, "garbage", 7, -EBADMSG, "no PEM private key");
	/* A certificate cut in half. */
	half = strndup(cert, clen / 2);
	expect_bad(half, strlen(half), key, klen, -EBADMSG, "no PEM certificate");
	/* A good certificate followed by a broken chain certificate. */
	chain = malloc(clen + sizeof(bad_b64));
	memcpy(chain, cert, clen);
	memcpy(chain + clen, bad_b64, sizeof(bad_b64));
	expect_bad(chain, strlen(chain), key, klen, -EBADMSG, "certificate 2 is not valid PEM");
	/* An encrypted key is refused without asking for a password. */
	b = BIO_new_mem_buf(key, (int)klen);
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(pk);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL,
	                                               (void *)"secret"),
	                 1);
	EVP_PKEY_free(pk);
	BIO_write(b, "", 1);
	BIO_get_mem_data(b, &enc);
	expect_bad(cert, clen, enc, strlen(enc), -EBADMSG, "encrypted");
	BIO_free(b);
	/* Too large. */
	big = calloc(1, TLS_PEM_MAX + 1);
	memset(big, ' ', TLS_PEM_MAX + 1);
	expect_bad(big, TLS_PEM_MAX + 1, key, klen, -EFBIG, "larger than");
	free(big);
	/* The texts need no NUL: exactly the length given is read (ASan watches). */
	char *exact_c = malloc(clen), *exact_k = malloc(klen);
	struct tls_material *m2 = NULL;

	memcpy(exact_c, cert, clen);
	memcpy(exact_k, key, klen);
	assert_int_equal(
	    tls_material_from_pem(exact_c, clen, exact_k, klen, time(NULL), &m2, err, sizeof(err)),
	    0);
	assert_string_equal(err, "");
	assert_string_equal(tls_fingerprint(m2), tls_fingerprint(m));
	assert_null(tls_cert_path(m2));
	tls_material_free(m2);
	free(exact_c);
	free(exact_k);
	tls_material_free(m);
	free(half);
	free(chain);
	free(cert);
	free(key);
}

static void test_expiry(void **state)
{
	char *cert = NULL, *key = NULL;
	struct tls_material *m = make_material("mlsrv01", &cert, &key);
	time_t na = tls_not_after(m);
	struct tls_material *m2 = NULL;

	(void)state;
	tls_material_free(m);
	assert_int_equal(tls_material_from_pem(cert, strlen(cert), key, strlen(key),
	                                       na - 31 * 86400, &m2, err, sizeof(err)),
	                 0);
	assert_false(tls_expires_soon(m2));
	tls_material_free(m2);
	assert_int_equal(tls_material_from_pem(cert, strlen(cert), key, strlen(key),
	                                       na - 29 * 86400, &m2, err, sizeof(err)),
	                 0);
	assert_true(tls_expires_soon(m2));
	tls_material_free(m2);
	m2 = NULL;
	assert_int_equal(tls_material_from_pem(cert, strlen(cert), key, strlen(key), na + 1, &m2,
	                                       err, sizeof(err)),
	                 -EKEYEXPIRED);
	assert_null(m2);
	assert_non_null(strstr(err, "certificate: the certificate expired on 20"));
	assert_non_null(strstr(err, "UTC"));
	free(cert);
	free(key);
}

static void test_file_errors(void **state)
{
	struct tls_material *m = NULL;
	char crt[256], key[256], missing[256];
	char *cert = NULL, *pem = NULL;
	bool created = true;

	(void)state;
	path_in(missing, sizeof(missing), "nope.crt");
	/* Certificate and key come together. */
	assert_int_equal(
	    tls_load_or_create(missing, NULL, tmpdir, NULL, 0, &m, &created, err, sizeof(err)),
	    -EINVAL);
	assert_false(created);
	assert_int_equal(
	    tls_load_or_create(NULL, missing, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)),
	    -EINVAL);
	/* Nothing configured and no data directory. */
	assert_int_equal(tls_load_or_create(NULL, NULL, NULL, NULL, 0, &m, NULL, err, sizeof(err)),
	                 -EINVAL);
	/* A missing configured file is never replaced by a generated one. */
	assert_int_equal(
	    tls_load_or_create(missing, missing, tmpdir, NULL, 0, &m, NULL, err, sizeof(err)),
	    -ENOENT);
	assert_null(m);
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, "No such file"));
	/* A directory is not a certificate. */
	assert_int_equal(
	    tls_load_or_create(tmpdir, tmpdir, NULL, NULL, 0, &m, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	/* A file that is not PEM names itself. */
	path_in(crt, sizeof(crt), "junk.crt");
	write_file(crt, "junk\n", 5);
	assert_int_equal(tls_load_or_create(crt, crt, NULL, NULL, 0, &m, NULL, err, sizeof(err)),
	                 -EBADMSG);
	assert_non_null(strstr(err, crt));
	assert_non_null(strstr(err, "no PEM certificate"));
	/* Unreadable (root reads everything, so only check as another user). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(crt, 0), 0);
		assert_int_equal(
		    tls_load_or_create(crt, crt, NULL, NULL, 0, &m, NULL, err, sizeof(err)),
		    -EACCES);
		assert_non_null(strstr(err, "Permission denied"));
	}

	/* Generated pair: a certificate without its key is an error, not a new pair. */
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, &created, err, sizeof(err)), 0);
	assert_true(created);
	path_in(crt, sizeof(crt), "tls/server.crt");
	path_in(key, sizeof(key), "tls/server.key");
	cert = strdup(tls_cert_pem(m));
	tls_material_free(m);
	m = NULL;
	assert_int_equal(unlink(key), 0);
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, &created, err, sizeof(err)),
	    -ENOENT);
	assert_null(m);
	assert_non_null(strstr(err, "remove"));
	pem = read_text(crt);
	assert_string_equal(pem, cert);
	free(pem);
	/* A key without its certificate was never served: a new pair replaces it. */
	assert_int_equal(unlink(crt), 0);
	write_file(key, "stale\n", 6);
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, NULL, 0, &m, &created, err, sizeof(err)), 0);
	assert_true(created);
	assert_string_not_equal(tls_cert_pem(m), cert);
	pem = read_text(key);
	assert_string_equal(pem, tls_key_pem(m));
	free(pem);
	tls_material_free(m);
	free(cert);
}

/*
 * A site certificate: RSA, the key in the traditional "BEGIN RSA PRIVATE
 * KEY" form, a chain certificate after the server's, 20 days left. Made
 * with the openssl CLI, as an administrator would.
 */
static void test_site_certificate(void **state)
{
	struct tls_material *m = NULL;
	char cmd[2048], crt[256], key[256], other[256], chain[256];
	char *pem;
	bool created = true;

	(void)state;
	path_in(crt, sizeof(crt), "site.crt");
	path_in(key, sizeof(key), "site.key");
	path_in(other, sizeof(other), "other.crt");
	path_in(chain, sizeof(chain), "chain.crt");
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout k8.pem -out '%s' "
	         "-days 20 -subj /CN=site.example -addext subjectAltName=DNS:site.example "
	         "2>/dev/null && openssl rsa -traditional -in k8.pem -out '%s' 2>/dev/null && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout o.key -out '%s' -days 30 -subj /CN=ca.example 2>/dev/null && "
	         "cat '%s' '%s' > '%s'",
	         tmpdir, crt, key, other, crt, other, chain);
	assert_int_equal(system(cmd), 0);
	pem = read_text(key);
	assert_non_null(strstr(pem, "BEGIN RSA PRIVATE KEY"));
	free(pem);

	assert_int_equal(
	    tls_load_or_create(chain, key, tmpdir, NULL, 0, &m, &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_true(tls_expires_soon(m));
	assert_non_null(strstr(tls_key_pem(m), "-----BEGIN PRIVATE KEY-----"));
	/* Both certificates are kept, the server's first; the fingerprint is the server's. */
	pem = read_text(chain);
	assert_string_equal(tls_cert_pem(m), pem);
	free(pem);
	char fp[TLS_FP_COLON_LEN + 1];
	pem = read_text(crt);
	X509 *x = parse_cert(pem);
	cert_fp(x, fp);
	X509_free(x);
	free(pem);
	assert_string_equal(tls_fingerprint(m), fp);
	tls_material_free(m);
	m = NULL;

	/* The chain's second certificate with the server's key does not match. */
	assert_int_equal(tls_load_or_create(other, key, NULL, NULL, 0, &m, NULL, err, sizeof(err)),
	                 -EKEYREJECTED);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
	static const char body[] = "ok\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)data;
	(void)data_size;
	(void)con_cls;
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
	                                    MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static size_t sink(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/*
 * One HTTPS request. With ca_pem, the peer is verified against it (name
 * included); without, anything goes and the served certificate's
 * fingerprint is written to fp.
 */
static CURLcode fetch(const char *host, uint16_t port, const char *ca_pem, char *fp)
{
	CURL *c = curl_easy_init();
	struct curl_slist *resolve = NULL;
	char url[256], rs[256];
	CURLcode rc;
	long code = 0;

	assert_non_null(c);
	snprintf(url, sizeof(url), "https://%s:%u/", host, port);
	snprintf(rs, sizeof(rs), "%s:%u:127.0.0.1", host, port);
	resolve = curl_slist_append(NULL, rs);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (ca_pem) {
		struct curl_blob blob = {(void *)(uintptr_t)ca_pem, strlen(ca_pem), CURL_BLOB_COPY};

		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	} else {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 200);
	}
	if (rc == CURLE_OK && fp) {
		struct curl_certinfo *ci = NULL;

		assert_int_equal(curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci), CURLE_OK);
		assert_non_null(ci);
		assert_true(ci->num_of_certs >= 1);
		fp[0] = '\0';
		for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
			if (strncmp(s->data, "Cert:", 5) == 0) {
				X509 *x = parse_cert(s->data + 5);

				cert_fp(x, fp);
				X509_free(x);
			}
		}
		assert_int_equal(strlen(fp), TLS_FP_COLON_LEN);
	}
	curl_slist_free_all(resolve);
	curl_easy_cleanup(c);
	return rc;
}

/*
 * libmicrohttpd (GnuTLS) must accept the PEM strings as they are, and a
 * client must see the certificate whose fingerprint tls.c reports.
 */
static void test_served_by_gnutls(void **state)
{
	const char *extra[] = {"mlsrv.example.org", "10.1.2.3"};
	struct tls_material *m = NULL;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;
	char fp[TLS_FP_COLON_LEN + 1];
	uint16_t port;

	(void)state;
	assert_int_equal(
	    tls_load_or_create(NULL, NULL, tmpdir, extra, 2, &m, NULL, err, sizeof(err)), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
	                     NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	                     MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem(m), MHD_OPTION_HTTPS_MEM_CERT,
	                     tls_cert_pem(m), MHD_OPTION_END);
	assert_non_null(d);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	port = info->port;
	assert_true(port > 0);

	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	/* What the client received is what tls.c fingerprinted. */
	assert_int_equal(fetch("127.0.0.1", port, NULL, fp), CURLE_OK);
	assert_string_equal(fp, tls_fingerprint(m));
	/* Trusting exactly this certificate, every name in it verifies... */
	assert_int_equal(fetch("localhost", port, tls_cert_pem(m), NULL), CURLE_OK);
	assert_int_equal(fetch("127.0.0.1", port, tls_cert_pem(m), NULL), CURLE_OK);
	assert_int_equal(fetch("mlsrv.example.org", port, tls_cert_pem(m), NULL), CURLE_OK);
	/* ...and a name that is not in it does not. */
	assert_int_equal(fetch("other.example.org", port, tls_cert_pem(m), NULL),
	                 CURLE_PEER_FAILED_VERIFICATION);
	curl_global_cleanup();
	MHD_stop_daemon(d);
	tls_material_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_and_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fingerprint_matches_openssl_cli, setup, teardown),
	    cmocka_unit_test(test_certificate_fields),
	    cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mismatch, setup, teardown),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_site_certificate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_served_by_gnutls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
