/*
 * tls: the server's certificate and private key (docs/tls.md).
 *
 * mlserver serves HTTPS with one certificate. Either the administrator
 * configures a certificate and key file (a site certificate), or mlserver
 * generates a self-signed pair under DATA_DIR/tls on its first start and
 * reuses it afterwards. Agents do not check a chain of trust: they pin the
 * SHA-256 fingerprint of the certificate, which this module computes.
 *
 * The result is a struct tls_material holding the certificate (with any
 * chain that followed it in the file) and the key as NUL-terminated PEM
 * strings, ready for libmicrohttpd's MHD_OPTION_HTTPS_MEM_CERT and
 * MHD_OPTION_HTTPS_MEM_KEY. The key is always re-encoded as unencrypted
 * PKCS#8 ("BEGIN PRIVATE KEY"), which GnuTLS (libmicrohttpd's TLS library in
 * Debian) and OpenSSL both read whatever format the file used.
 *
 * Every function returning int returns 0 or a negative errno-style code and,
 * on failure, writes a one-line message to err (size errsz, always
 * NUL-terminated when errsz > 0) that names the file. The codes:
 *   -ENOENT, -EACCES, ...  a file cannot be read (the errno of the call);
 *   -EFBIG                 a file is larger than TLS_PEM_MAX;
 *   -EBADMSG               no PEM certificate or key in the text, or the
 *                          key is encrypted (not supported: mlserver starts
 *                          unattended);
 *   -EKEYREJECTED          the key does not belong to the certificate;
 *   -EKEYEXPIRED           the certificate has expired;
 *   -EINVAL                bad arguments (a name that is neither a DNS name
 *                          nor an IP address, a certificate configured
 *                          without its key, ...);
 *   -ENOMEM, -EIO          out of memory, or an OpenSSL failure.
 * All functions are safe to call from several threads at once.
 */
#ifndef ML_SERVER_TLS_H
#define ML_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A certificate file or key text larger than this is refused. */
#define TLS_PEM_MAX (1024 * 1024)
/* At most this many extra names go into a generated certificate. */
#define TLS_EXTRA_NAMES_MAX 64
/* A generated certificate is valid for this many days (ten years). */
#define TLS_VALID_DAYS 3650
/* tls_expires_soon() is true this many days before the certificate expires. */
#define TLS_EXPIRY_WARN_DAYS 30
/* The lengths of the two fingerprint strings, without their NUL. */
#define TLS_FP_HEX_LEN 64
#define TLS_FP_COLON_LEN 95

struct tls_material;

/*
 * Loads or creates the server's certificate and key and checks them: the
 * key must match the certificate and the certificate must not have expired.
 *
 * With cert_path and key_path set (non-NULL and non-empty; both or neither),
 * those PEM files are loaded; the certificate file may hold a chain after
 * the server's own certificate, which is kept and served.
 *
 * Without them, the pair is DATA_DIR/tls/server.crt and server.key. When
 * server.crt does not exist, a new pair is generated first (see
 * tls_generate(): CN and DNS name are this host's name, plus localhost,
 * 127.0.0.1 and extra_names[0..n_extra)), the directory DATA_DIR/tls is
 * created with mode 0700, the key is written with mode 0600 and the
 * certificate with 0644, each atomically (temporary file, fsync, rename)
 * and the key first, so that a certificate on disk always has its key. When
 * server.crt exists but server.key does not, that is an error: the
 * certificate may already be pinned by agents, so mlserver will not replace
 * it on its own. extra_names matter only when a pair is generated.
 *
 * On success *out owns the material (free it with tls_material_free()) and
 * *created (when created is non-NULL) says whether a new pair was generated.
 * The caller logs a warning when tls_expires_soon() is true.
 */
int tls_load_or_create(const char *cert_path, const char *key_path, const char *data_dir,
                       const char *const *extra_names, size_t n_extra, struct tls_material **out,
                       bool *created, char *err, size_t errsz);

/*
 * Builds material from PEM text in memory (no I/O): the first certificate in
 * cert_pem is the server's, any further ones its chain; key_pem holds its
 * private key in any PEM format OpenSSL reads, unencrypted. Runs the same
 * checks as tls_load_or_create() at time now. The texts need no NUL; each
 * must be at most TLS_PEM_MAX bytes. On success *out owns the material.
 */
int tls_material_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
                          size_t key_len, time_t now, struct tls_material **out, char *err,
                          size_t errsz);

/*
 * Generates a new self-signed pair without touching any file: an ECDSA P-256
 * key and an X.509 v3 certificate with a random 128-bit serial number, valid
 * from an hour before now (for clients whose clocks lag) until
 * TLS_VALID_DAYS after now, subject and issuer CN = hostname (at most 64
 * characters), subjectAltName DNS:hostname, DNS:localhost, IP:127.0.0.1 and
 * each extra name (an IPv4 or IPv6 address becomes an IP name, anything else
 * must be a DNS name, "*." wildcard allowed; duplicates are dropped),
 * basicConstraints CA:FALSE, keyUsage digitalSignature and extendedKeyUsage
 * serverAuth. On success *cert_pem and *key_pem (PKCS#8) are NUL-terminated
 * strings that the caller frees with free() (clear the key first).
 */
int tls_generate(const char *hostname, const char *const *extra_names, size_t n_extra, time_t now,
                 char **cert_pem, char **key_pem, char *err, size_t errsz);

/* The certificate and its chain as PEM; owned by m. */
const char *tls_cert_pem(const struct tls_material *m);
/* The private key as PKCS#8 PEM; owned by m and cleared by tls_material_free(). */
const char *tls_key_pem(const struct tls_material *m);
/* SHA-256 of the DER certificate as "ab:cd:..." (TLS_FP_COLON_LEN characters). */
const char *tls_fingerprint(const struct tls_material *m);
/* The same fingerprint as 64 lower-case hex digits without colons. */
const char *tls_fingerprint_hex(const struct tls_material *m);
/* When the certificate expires. */
time_t tls_not_after(const struct tls_material *m);
/* True when the certificate expires within TLS_EXPIRY_WARN_DAYS of the check. */
bool tls_expires_soon(const struct tls_material *m);
/*
 * The files the material came from, for log lines: NULL when it was built
 * by tls_material_from_pem().
 */
const char *tls_cert_path(const struct tls_material *m);
const char *tls_key_path(const struct tls_material *m);

/* Frees m (NULL is fine), clearing the key text first. */
void tls_material_free(struct tls_material *m);

#endif
