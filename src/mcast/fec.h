/*
 * Reed-Solomon erasure code over GF(2^8) (ISA-L, Cauchy matrix): a block of
 * k source symbols of len bytes has up to 255 - k parity symbols, and any k
 * distinct symbols of the 255 recover the block. Symbol index i < k is source
 * symbol i; index i >= k is parity row i - k.
 */
#ifndef MC_FEC_H
#define MC_FEC_H

#include <stddef.h>
#include <stdint.h>

#define FEC_MAX_N 255
#define FEC_MAX_K 128

struct fec; /* opaque: caches the encoding matrix and tables for one k */

/* Returns a coder for blocks of k source symbols (1..FEC_MAX_K), or NULL. */
struct fec *fec_new(unsigned k);
void fec_free(struct fec *f);
unsigned fec_k(const struct fec *f);

/*
 * Computes the parity symbols with indexes idx[0..n) (each in [k, 255)) of
 * the block whose source symbols are src[0..k) into out[0..n), len bytes
 * each. Returns 0 or -EINVAL.
 */
int fec_encode(struct fec *f, const uint8_t *const *src, size_t len, const uint8_t *idx, unsigned n,
               uint8_t **out);

/*
 * Recovers the missing source symbols of a block. have[0..k) are k distinct
 * symbol indexes in [0, 255) and sym[0..k) their contents. missing[0..nmiss)
 * are the source indexes (< k) not among have; out[0..nmiss) receive them.
 * Returns 0, or -EINVAL (duplicate or out-of-range index), or -ENOMEM.
 */
int fec_decode(struct fec *f, const uint8_t *have, const uint8_t *const *sym, size_t len,
               const uint8_t *missing, unsigned nmiss, uint8_t **out);

#endif
