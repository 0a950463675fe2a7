/* SHA-256 and HMAC-SHA-256 (OpenSSL underneath). */
#ifndef ML_SHA256_H
#define ML_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

struct sha256_ctx; /* opaque */

/* Returns a new context, or NULL when out of memory. */
struct sha256_ctx *sha256_new(void);
void sha256_free(struct sha256_ctx *c);
void sha256_reset(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *p, size_t n);
/* Writes the digest and resets the context for reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);

/* One-shot digest. */
void sha256_buf(const void *p, size_t n, uint8_t out[SHA256_LEN]);
/* HMAC-SHA-256 over the concatenation of two buffers (either may be empty). */
void hmac_sha256(const void *key, size_t keylen, const void *a, size_t alen, const void *b,
                 size_t blen, uint8_t out[SHA256_LEN]);

/* Lower-case hex; out must hold SHA256_HEX_LEN bytes. Returns out. */
char *sha256_hex(const uint8_t d[SHA256_LEN], char *out);
/* Parses 64 hex digits; returns 0 or -EINVAL. */
int sha256_from_hex(const char *s, uint8_t out[SHA256_LEN]);
/* Constant-time comparison of n bytes; returns 1 when equal. */
int ct_equal(const void *a, const void *b, size_t n);

#endif
