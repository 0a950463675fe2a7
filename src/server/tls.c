/* The server's certificate and key: load, check, generate (see tls.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "fileio.h"
#include "tls.h"

/* A certificate file may carry at most this many chain certificates after the server's. */
#define TLS_CHAIN_MAX 16
/* RFC 5280 ub-common-name. */
#define TLS_CN_MAX 64

struct tls_material {
	char *cert_pem;
	char *key_pem;
	size_t key_len;
	char *cert_path;
	char *key_path;
	time_t not_after;
	bool expires_soon;
	char fp[TLS_FP_COLON_LEN + 1];
	char fp_hex[TLS_FP_HEX_LEN + 1];
};

/*
 * The reason of the most recent OpenSSL error, for a message; clears the
 * thread's error queue so that a later failure does not report a stale one.
 */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "OpenSSL error";
}

/*
 * OpenSSL's default password callback prompts on the terminal; a daemon must
 * never block on that, so encrypted PEM simply fails to decode.
 */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Copies a memory BIO's contents into a new NUL-terminated string; NULL when out of memory. */
static char *bio_to_string(BIO *b, size_t *len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *s;

	if (n < 0 || !data)
		n = 0;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	if (n > 0)
		memcpy(s, data, (size_t)n);
	s[n] = '\0';
	if (len)
		*len = (size_t)n;
	return s;
}

static void free_secret(char *s, size_t n)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, n);
	free(s);
}

/*
 * True for a DNS name made of labels of letters, digits, '-' and '_' (host
 * names in the wild carry underscores), at most 63 characters each and 253
 * in all, no label starting or ending with '-'. With wildcard, a leading
 * "*." is allowed too.
 */
static bool dns_name_ok(const char *s, bool wildcard)
{
	size_t n = strlen(s), label = 0;
	char prev = '.';

	if (n == 0 || n > 253)
		return false;
	if (wildcard && s[0] == '*' && s[1] == '.' && s[2] != '\0')
		s += 2;
	for (; *s; s++) {
		char c = *s;

		if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '_' || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
		prev = c;
	}
	return label > 0 && prev != '-';
}

/* True when gens already holds a name of this type and value (DNS names ignore case). */
static bool san_has(const GENERAL_NAMES *gens, int type, const unsigned char *v, int len)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		int t;
		const ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &t);

		if (t != type || ASN1_STRING_length(s) != len)
			continue;
		if (type == GEN_IPADD && memcmp(ASN1_STRING_get0_data(s), v, (size_t)len) == 0)
			return true;
		if (type == GEN_DNS && strncasecmp((const char *)ASN1_STRING_get0_data(s),
		                                   (const char *)v, (size_t)len) == 0)
			return true;
	}
	return false;
}

/*
 * Adds name to gens as an IP name when it parses as an IPv4 or IPv6 address,
 * else as a DNS name (which must be valid). Duplicates are skipped.
 */
static int san_add(GENERAL_NAMES *gens, const char *name, char *err, size_t errsz)
{
	unsigned char ip[16];
	const unsigned char *v = ip;
	int type = GEN_IPADD, len = 0;
	ASN1_STRING *s = NULL;
	GENERAL_NAME *g = NULL;

	if (inet_pton(AF_INET, name, ip) == 1) {
		len = 4;
	} else if (inet_pton(AF_INET6, name, ip) == 1) {
		len = 16;
	} else if (dns_name_ok(name, true)) {
		type = GEN_DNS;
		v = (const unsigned char *)name;
		len = (int)strlen(name);
	} else {
		log_seterr(err, errsz, "tls: \"%.64s\" is neither a DNS name nor an IP address",
		           name);
		return -EINVAL;
	}
	if (san_has(gens, type, v, len))
		return 0;
	s = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	g = GENERAL_NAME_new();
	if (!s || !g || !ASN1_STRING_set(s, v, len))
		goto nomem;
	GENERAL_NAME_set0_value(g, type, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(gens, g))
		goto nomem;
	return 0;
nomem:
	ASN1_STRING_free(s);
	GENERAL_NAME_free(g);
	log_seterr(err, errsz, "tls: out of memory");
	return -ENOMEM;
}

/* Adds one extension written in OpenSSL's configuration syntax (fixed strings only). */
static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EIO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

int tls_generate(const char *hostname, const char *const *extra_names, size_t n_extra, time_t now,
                 char **cert_pem, char **key_pem, char *err, size_t errsz)
{
	int ret = -EIO;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	GENERAL_NAMES *gens = NULL;
	BIGNUM *bn = NULL;
	BIO *cb = NULL, *kb = NULL;
	X509_NAME *name;
	unsigned char serial[16];
	size_t klen = 0;

	*cert_pem = NULL;
	*key_pem = NULL;
	if (!hostname || strlen(hostname) > TLS_CN_MAX || !dns_name_ok(hostname, false)) {
		log_seterr(err, errsz,
		           "tls: host name \"%.64s\" is not a DNS name of at most %d characters",
		           hostname ? hostname : "", TLS_CN_MAX);
		return -EINVAL;
	}
	if (n_extra > TLS_EXTRA_NAMES_MAX || (n_extra > 0 && !extra_names)) {
		log_seterr(err, errsz, "tls: at most %d extra names", TLS_EXTRA_NAMES_MAX);
		return -EINVAL;
	}
	gens = sk_GENERAL_NAME_new_null();
	if (!gens) {
		ret = -ENOMEM;
		log_seterr(err, errsz, "tls: out of memory");
		goto out;
	}
	ret = san_add(gens, hostname, err, errsz);
	if (ret == 0)
		ret = san_add(gens, "localhost", err, errsz);
	if (ret == 0)
		ret = san_add(gens, "127.0.0.1", err, errsz);
	for (size_t i = 0; ret == 0 && i < n_extra; i++)
		ret = san_add(gens, extra_names[i] ? extra_names[i] : "", err, errsz);
	if (ret < 0)
		goto out;
	ret = -EIO;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!pkey) {
		log_seterr(err, errsz, "tls: cannot generate an ECDSA P-256 key: %s", ssl_reason());
		goto out;
	}
	x = X509_new();
	if (!x || RAND_bytes(serial, sizeof(serial)) != 1) {
		log_seterr(err, errsz, "tls: cannot start a certificate: %s", ssl_reason());
		goto out;
	}
	/* A zero serial is not allowed; the odds are 2^-128 but the fix is free. */
	serial[sizeof(serial) - 1] |= serial[0] == 0 ? 1 : 0;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	if (!bn || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), TLS_VALID_DAYS, 0, &now) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)hostname,
	                                -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey) ||
	    !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		log_seterr(err, errsz, "tls: cannot build the certificate: %s", ssl_reason());
		goto out;
	}
	cb = BIO_new(BIO_s_mem());
	/* The secure-memory BIO clears its buffer when freed. */
	kb = BIO_new(BIO_s_secmem());
	if (!cb || !kb || !PEM_write_bio_X509(cb, x) ||
	    !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL)) {
		log_seterr(err, errsz, "tls: cannot encode the new pair: %s", ssl_reason());
		goto out;
	}
	*cert_pem = bio_to_string(cb, NULL);
	*key_pem = bio_to_string(kb, &klen);
	if (!*cert_pem || !*key_pem) {
		free(*cert_pem);
		free_secret(*key_pem, klen);
		*cert_pem = NULL;
		*key_pem = NULL;
		ret = -ENOMEM;
		log_seterr(err, errsz, "tls: out of memory");
		goto out;
	}
	ret = 0;
out:
	BIO_free(cb);
	BIO_free(kb);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pkey);
	GENERAL_NAMES_free(gens);
	return ret;
}

/* Formats t as "YYYY-MM-DD HH:MM UTC" for messages. */
static void fmt_utc(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, n, "%lld", (long long)t);
}

/*
 * Reads the certificate (and its chain) from cert into x509 objects and
 * re-encodes them as PEM into pem. Sets *leaf to the first certificate.
 */
static int read_certs(const char *cert, size_t cert_len, const char *label, X509 **leaf, BIO *pem,
                      char *err, size_t errsz)
{
	BIO *in = BIO_new_mem_buf(cert, (int)cert_len);
	int ret = -EBADMSG;

	*leaf = NULL;
	if (!in) {
		log_seterr(err, errsz, "tls: out of memory");
		return -ENOMEM;
	}
	*leaf = PEM_read_bio_X509(in, NULL, no_password, NULL);
	if (!*leaf) {
		ERR_clear_error();
		log_seterr(err, errsz, "%s: no PEM certificate found", label);
		goto out;
	}
	if (!PEM_write_bio_X509(pem, *leaf))
		goto nomem;
	for (int i = 1;; i++) {
		X509 *c = PEM_read_bio_X509(in, NULL, no_password, NULL);
		unsigned long e;

		if (!c) {
			/* Running out of PEM blocks ends the chain; a broken block is an error. */
			e = ERR_peek_last_error();
			ERR_clear_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break;
			log_seterr(err, errsz, "%s: certificate %d is not valid PEM", label, i + 1);
			goto out;
		}
		if (i > TLS_CHAIN_MAX) {
			X509_free(c);
			log_seterr(err, errsz, "%s: more than %d chain certificates", label,
			           TLS_CHAIN_MAX);
			goto out;
		}
		if (!PEM_write_bio_X509(pem, c)) {
			X509_free(c);
			goto nomem;
		}
		X509_free(c);
	}
	ret = 0;
	goto out;
nomem:
	ret = -ENOMEM;
	log_seterr(err, errsz, "%s: cannot encode the certificate: %s", label, ssl_reason());
out:
	if (ret < 0) {
		X509_free(*leaf);
		*leaf = NULL;
	}
	BIO_free(in);
	return ret;
}

/* The shared body of tls_material_from_pem() and the file loaders; labels name the sources. */
static int material_build(const char *cert, size_t cert_len, const char *key, size_t key_len,
                          time_t now, const char *clabel, const char *klabel,
                          struct tls_material **out, char *err, size_t errsz)
{
	int ret = -EIO;
	struct tls_material *m = NULL;
	X509 *leaf = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *cout = NULL, *kin = NULL, *kout = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct tm tm;
	char when[64];
	static const char hex[] = "0123456789abcdef";

	*out = NULL;
	if (err && errsz)
		err[0] = '\0';
	if (!cert || !key) {
		log_seterr(err, errsz, "tls: no certificate or key text");
		return -EINVAL;
	}
	if (cert_len > TLS_PEM_MAX || key_len > TLS_PEM_MAX) {
		log_seterr(err, errsz, "%s: larger than %d bytes",
		           cert_len > TLS_PEM_MAX ? clabel : klabel, TLS_PEM_MAX);
		return -EFBIG;
	}
	m = calloc(1, sizeof(*m));
	cout = BIO_new(BIO_s_mem());
	kout = BIO_new(BIO_s_secmem());
	kin = BIO_new_mem_buf(key, (int)key_len);
	if (!m || !cout || !kout || !kin) {
		ret = -ENOMEM;
		log_seterr(err, errsz, "tls: out of memory");
		goto out;
	}
	ret = read_certs(cert, cert_len, clabel, &leaf, cout, err, errsz);
	if (ret < 0)
		goto out;
	pkey = PEM_read_bio_PrivateKey(kin, NULL, no_password, NULL);
	if (!pkey) {
		ERR_clear_error();
		ret = -EBADMSG;
		if (memmem(key, key_len, "ENCRYPTED", 9))
			log_seterr(
			    err, errsz,
			    "%s: the private key is encrypted; mlserver needs it unencrypted",
			    klabel);
		else
			log_seterr(err, errsz, "%s: no PEM private key found", klabel);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), pkey) != 1) {
		ERR_clear_error();
		ret = -EKEYREJECTED;
		log_seterr(err, errsz,
		           "%s: the private key does not belong to the certificate in %s", klabel,
		           clabel);
		goto out;
	}
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm)) {
		ret = -EBADMSG;
		log_seterr(err, errsz, "%s: the certificate's end date is not valid", clabel);
		goto out;
	}
	m->not_after = timegm(&tm);
	if (m->not_after <= now) {
		fmt_utc(m->not_after, when, sizeof(when));
		ret = -EKEYEXPIRED;
		log_seterr(err, errsz, "%s: the certificate expired on %s", clabel, when);
		goto out;
	}
	m->expires_soon = m->not_after - now < (time_t)TLS_EXPIRY_WARN_DAYS * 86400;
	if (!X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32 ||
	    !PEM_write_bio_PrivateKey(kout, pkey, NULL, NULL, 0, NULL, NULL)) {
		ret = -EIO;
		log_seterr(err, errsz, "%s: cannot encode: %s", klabel, ssl_reason());
		goto out;
	}
	for (unsigned int i = 0; i < 32; i++) {
		m->fp_hex[2 * i] = hex[md[i] >> 4];
		m->fp_hex[2 * i + 1] = hex[md[i] & 15];
		m->fp[3 * i] = hex[md[i] >> 4];
		m->fp[3 * i + 1] = hex[md[i] & 15];
		m->fp[3 * i + 2] = i + 1 < 32 ? ':' : '\0';
	}
	m->fp_hex[TLS_FP_HEX_LEN] = '\0';
	m->cert_pem = bio_to_string(cout, NULL);
	m->key_pem = bio_to_string(kout, &m->key_len);
	if (!m->cert_pem || !m->key_pem) {
		ret = -ENOMEM;
		log_seterr(err, errsz, "tls: out of memory");
		goto out;
	}
	*out = m;
	m = NULL;
	ret = 0;
out:
	tls_material_free(m);
	BIO_free(cout);
	BIO_free(kin);
	BIO_free(kout);
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	return ret;
}

int tls_material_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
                          size_t key_len, time_t now, struct tls_material **out, char *err,
                          size_t errsz)
{
	return material_build(cert_pem, cert_len, key_pem, key_len, now, "certificate",
	                      "private key", out, err, errsz);
}

/*
 * Reads a whole regular file of at most TLS_PEM_MAX bytes into a new
 * NUL-terminated buffer. Returns 0 or -errno (-ENOENT untouched, so that
 * the caller can tell a missing file from a broken one).
 */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errsz)
{
	int fd, ret;
	struct stat st;
	ssize_t got;
	char *b = NULL;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot open %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot stat %s: %s", path, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		log_seterr(err, errsz, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > TLS_PEM_MAX) {
		ret = -EFBIG;
		log_seterr(err, errsz, "%s: larger than %d bytes", path, TLS_PEM_MAX);
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		ret = -ENOMEM;
		log_seterr(err, errsz, "tls: out of memory");
		goto out;
	}
	got = fio_pread_upto(fd, b, (size_t)st.st_size, 0);
	if (got < 0) {
		ret = (int)got;
		log_seterr(err, errsz, "cannot read %s: %s", path, strerror(-ret));
		goto out;
	}
	b[got] = '\0';
	*buf = b;
	*len = (size_t)got;
	b = NULL;
	ret = 0;
out:
	free(b);
	close(fd);
	return ret;
}

/* Loads a certificate and key file pair and checks it. */
static int load_pair(const char *cert_path, const char *key_path, struct tls_material **out,
                     char *err, size_t errsz)
{
	char *cert = NULL, *key = NULL;
	size_t clen = 0, klen = 0;
	int ret;

	ret = read_file(cert_path, &cert, &clen, err, errsz);
	if (ret == 0)
		ret = read_file(key_path, &key, &klen, err, errsz);
	if (ret == 0)
		ret = material_build(cert, clen, key, klen, time(NULL), cert_path, key_path, out,
		                     err, errsz);
	if (ret == 0) {
		(*out)->cert_path = strdup(cert_path);
		(*out)->key_path = strdup(key_path);
		if (!(*out)->cert_path || !(*out)->key_path) {
			tls_material_free(*out);
			*out = NULL;
			ret = -ENOMEM;
			log_seterr(err, errsz, "tls: out of memory");
		}
	}
	free(cert);
	free_secret(key, klen);
	return ret;
}

/* Writes data to path through a temporary file in the same directory, fsync and rename. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode, char *err,
                        size_t errsz)
{
	char tmp[PATH_MAX];
	int fd = -1, ret, n;

	n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_seterr(err, errsz, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	/* mkostemp() creates the file 0600, so the key is never readable by others. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create %s: %s", tmp, strerror(-ret));
		return ret;
	}
	if (fchmod(fd, mode) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = fio_write_all(fd, data, len);
	if (ret < 0)
		goto fail;
	if (fsync(fd) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = close(fd);
	fd = -1;
	if (ret < 0 || rename(tmp, path) < 0) {
		ret = -errno;
		goto fail;
	}
	return 0;
fail:
	log_seterr(err, errsz, "cannot write %s: %s", path, strerror(-ret));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}

/*
 * The host name for a generated certificate: gethostname(), or "localhost"
 * when that fails or gives something that cannot be a DNS name or a CN.
 */
static void local_host_name(char *buf, size_t n)
{
	if (gethostname(buf, n) < 0 || memchr(buf, '\0', n) == NULL || strlen(buf) > TLS_CN_MAX ||
	    !dns_name_ok(buf, false))
		snprintf(buf, n, "localhost");
}

/* Generates a pair, writes the key then the certificate, and builds the material. */
static int create_pair(const char *dir, const char *cert_path, const char *key_path,
                       const char *const *extra_names, size_t n_extra, struct tls_material **out,
                       char *err, size_t errsz)
{
	char host[256];
	char *cert = NULL, *key = NULL;
	time_t now = time(NULL);
	int ret, dfd = -1;

	local_host_name(host, sizeof(host));
	ret = tls_generate(host, extra_names, n_extra, now, &cert, &key, err, errsz);
	if (ret < 0)
		return ret;
	ret = write_atomic(key_path, key, strlen(key), 0600, err, errsz);
	if (ret == 0)
		ret = write_atomic(cert_path, cert, strlen(cert), 0644, err, errsz);
	if (ret < 0)
		goto out;
	/* The renames are durable only once the directory itself is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot sync %s: %s", dir, strerror(-ret));
		goto out;
	}
	ret = material_build(cert, strlen(cert), key, strlen(key), now, cert_path, key_path, out,
	                     err, errsz);
	if (ret == 0) {
		(*out)->cert_path = strdup(cert_path);
		(*out)->key_path = strdup(key_path);
		if (!(*out)->cert_path || !(*out)->key_path) {
			tls_material_free(*out);
			*out = NULL;
			ret = -ENOMEM;
			log_seterr(err, errsz, "tls: out of memory");
		}
	}
out:
	if (dfd >= 0)
		close(dfd);
	free(cert);
	free_secret(key, key ? strlen(key) : 0);
	return ret;
}

/* Writes dir/name into buf: 0, or -ENAMETOOLONG when it does not fit. */
static int path_join(char *buf, size_t n, const char *dir, const char *name)
{
	int len = snprintf(buf, n, "%s/%s", dir, name);

	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int tls_load_or_create(const char *cert_path, const char *key_path, const char *data_dir,
                       const char *const *extra_names, size_t n_extra, struct tls_material **out,
                       bool *created, char *err, size_t errsz)
{
	bool have_cert = cert_path && *cert_path, have_key = key_path && *key_path;
	char dir[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
	int ret;
	struct stat st;

	*out = NULL;
	if (created)
		*created = false;
	if (err && errsz)
		err[0] = '\0';
	if (have_cert != have_key) {
		log_seterr(err, errsz,
		           "tls: a certificate file needs its key file and the other way round");
		return -EINVAL;
	}
	if (have_cert)
		return load_pair(cert_path, key_path, out, err, errsz);
	if (!data_dir || !*data_dir) {
		log_seterr(err, errsz, "tls: no certificate configured and no data directory");
		return -EINVAL;
	}
	if (path_join(dir, sizeof(dir), data_dir, "tls") < 0 ||
	    path_join(crt, sizeof(crt), dir, "server.crt") < 0 ||
	    path_join(key, sizeof(key), dir, "server.key") < 0) {
		log_seterr(err, errsz, "tls: data directory path too long");
		return -ENAMETOOLONG;
	}
	if (stat(crt, &st) == 0) {
		/* An existing certificate may be pinned by agents: never replace it silently. */
		if (stat(key, &st) < 0 && errno == ENOENT) {
			log_seterr(err, errsz,
			           "%s exists but %s does not; remove %s to generate a new pair "
			           "(agents must then pin the new fingerprint)",
			           crt, key, crt);
			return -ENOENT;
		}
		return load_pair(crt, key, out, err, errsz);
	}
	if (errno != ENOENT) {
		ret = -errno;
		log_seterr(err, errsz, "cannot stat %s: %s", crt, strerror(-ret));
		return ret;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_seterr(err, errsz, "cannot create %s: %s", dir, strerror(-ret));
		return ret;
	}
	ret = create_pair(dir, crt, key, extra_names, n_extra, out, err, errsz);
	if (ret == 0 && created)
		*created = true;
	return ret;
}

const char *tls_cert_pem(const struct tls_material *m)
{
	return m->cert_pem;
}

const char *tls_key_pem(const struct tls_material *m)
{
	return m->key_pem;
}

const char *tls_fingerprint(const struct tls_material *m)
{
	return m->fp;
}

const char *tls_fingerprint_hex(const struct tls_material *m)
{
	return m->fp_hex;
}

time_t tls_not_after(const struct tls_material *m)
{
	return m->not_after;
}

bool tls_expires_soon(const struct tls_material *m)
{
	return m->expires_soon;
}

const char *tls_cert_path(const struct tls_material *m)
{
	return m->cert_path;
}

const char *tls_key_path(const struct tls_material *m)
{
	return m->key_path;
}

void tls_material_free(struct tls_material *m)
{
	if (!m)
		return;
	free(m->cert_pem);
	free_secret(m->key_pem, m->key_len);
	free(m->cert_path);
	free(m->key_path);
	free(m);
}
