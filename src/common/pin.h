/*
 * Certificate fingerprints and public-key pins, shared by mlctl and mlagent.
 *
 * Why two hashes: mlserver announces the SHA-256 of its certificate (the
 * fingerprint people compare), while libcurl can pin, with every TLS
 * backend that supports CURLOPT_PINNEDPUBLICKEY, only the SHA-256 of the
 * certificate's public key. A client checks the first on first contact and
 * pins the second from then on; both come from the same certificate here.
 * Everything here is pure: no I/O.
 */
#ifndef ML_PIN_H
#define ML_PIN_H

#include <stddef.h>

/* Buffer sizes: "ab:cd:..." (95 + NUL) and "sha256//" + 44 base64 + NUL. */
#define PIN_FP_SIZE 96
#define PIN_KEY_SIZE 53

/*
 * From a certificate in PEM (the first one in the text; no NUL needed, at
 * most 1 MiB): fp = SHA-256 of the DER certificate as lower-case hex pairs
 * joined by ':' (what mlserver's /health reports as tls_fingerprint), and
 * pin = "sha256//" + base64 of the SHA-256 of its SubjectPublicKeyInfo (the
 * form CURLOPT_PINNEDPUBLICKEY takes). Either may be NULL. Returns 0 or
 * -EINVAL (no certificate in the text). No I/O.
 */
int pin_from_pem(const char *pem, size_t len, char *fp, char *pin);
/*
 * Normalizes a fingerprint a person typed: 64 hex digits, with or without
 * ':' between pairs, either case, an optional "sha256:" prefix -> the
 * lower-case colon form. 0 or -EINVAL.
 */
int pin_fp_normalize(const char *in, char *out);
/* Checks the form "sha256//" + 44 base64 characters. 0 or -EINVAL. */
int pin_key_check(const char *pin);

#endif
