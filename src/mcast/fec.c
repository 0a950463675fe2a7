/*
 * Reed-Solomon erasure code over GF(2^8) on top of ISA-L.
 *
 * The code is the systematic Cauchy code of gf_gen_cauchy1_matrix(): symbol
 * r >= k is parity row r, whose coefficient for source j is 1 / (r ^ j).
 *
 * Encoding precomputes the ISA-L tables of every parity row once per coder,
 * so fec_encode() only points at (or gathers) the rows it needs and makes a
 * single ec_encode_data() call.
 *
 * Decoding needs the rows of the inverse of the k x k matrix of the received
 * rows that belong to the missing sources. Inverting that matrix with
 * gf_invert_matrix() costs O(k^3) multiplications (about 10 ms for k = 128),
 * far more than the decode itself, so fec_decode() computes exactly those
 * rows in closed form instead. With X the received parity rows and Y the
 * missing sources (|X| = |Y| = p), the parity equations restricted to the
 * missing sources form the Cauchy matrix C[x][y] = 1 / (x + y), whose inverse
 * is known (in characteristic 2, where + is XOR):
 *
 *   row y of the decode matrix, column of parity x:
 *       (A(y) / A'(y)) * B(x) / ((x + y) * B'(x))
 *   row y, column of received source s:
 *       (A(y) / A'(y)) * G(s) / (s + y)
 *
 * with A(y) = prod_x (x + y), A'(y) = prod_{y' != y} (y + y'),
 * B(x) = prod_y (x + y), B'(x) = prod_{x' != x} (x + x') and
 * G(s) = prod_y (s + y) / prod_x (x + s). All factors are non-zero because
 * the indexes are distinct, so the products are sums of discrete logarithms.
 * This costs O(p * k) table look-ups. Setting up a new erasure pattern is
 * then dominated by ec_init_tables(); the tables of the last pattern are
 * kept, since comparing k + nmiss bytes is cheap.
 *
 * A coder keeps scratch space, so one struct fec serves one thread at a time.
 */
#include "fec.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

/* Bytes of ISA-L table per matrix coefficient, as documented for ec_init_tables(). */
#define FEC_TBL_COEF 32

struct fec {
	unsigned k;
	unsigned npar; /* parity rows: FEC_MAX_N - k */
	uint8_t *mat;  /* FEC_MAX_N x k encoding matrix, identity on top */

	/*
	 * Tables of all parity rows, row after row, each row_tbl bytes long,
	 * or NULL when ec_init_tables() does not lay them out that way (then
	 * fec_encode() builds tables per call).
	 */
	uint8_t *enc_tbl;
	size_t row_tbl;
	uint8_t *gather; /* npar * k * FEC_TBL_COEF bytes of scratch */
	uint8_t *gmat;   /* npar x k scratch matrix */

	/* Discrete logarithms base 2 (log[0] unused) and exponentials. */
	uint8_t log[256];
	uint8_t exp[255];

	/*
	 * Decode scratch, allocated on the first decode, and a one-entry cache
	 * of the tables of the last erasure pattern.
	 */
	uint8_t *dmat; /* k x k */
	uint8_t *dtbl; /* k * k * FEC_TBL_COEF */
	int dvalid;
	unsigned dnmiss;
	uint8_t dhave[FEC_MAX_K];
	uint8_t dmiss[FEC_MAX_K];
};

/* Returns a * b given logarithms la and lb of the factors, modulo 255. */
static unsigned log_add(unsigned la, unsigned lb)
{
	unsigned s = la + lb;

	return s >= 255 ? s - 255 : s;
}

static unsigned log_sub(unsigned la, unsigned lb)
{
	return la >= lb ? la - lb : la + 255 - lb;
}

/*
 * Finds how many bytes of table ec_init_tables() writes per matrix row, by
 * filling two buffers with different bytes and seeing how far each was
 * overwritten. Checks that two rows take twice as much, so that row r of a
 * table built for many rows starts at r times that size. Returns the size,
 * or 0 when the layout is not one this file can gather from.
 */
static size_t probe_row_tbl(const uint8_t *rows2, unsigned k)
{
	size_t cap = (size_t)2 * k * FEC_TBL_COEF;
	size_t got[2] = {0, 0};
	uint8_t *b0 = malloc(cap);
	uint8_t *b1 = malloc(cap);
	size_t ret = 0;

	if (b0 == NULL || b1 == NULL) {
		goto out;
	}
	for (int nrows = 1; nrows <= 2; nrows++) {
		memset(b0, 0x00, cap);
		memset(b1, 0xff, cap);
		ec_init_tables((int)k, nrows, (unsigned char *)(uintptr_t)rows2, b0);
		ec_init_tables((int)k, nrows, (unsigned char *)(uintptr_t)rows2, b1);
		for (size_t i = cap; i > 0; i--) {
			if (b0[i - 1] != 0x00 || b1[i - 1] != 0xff) {
				got[nrows - 1] = i;
				break;
			}
		}
	}
	if (got[0] > 0 && got[1] == 2 * got[0] && got[0] <= (size_t)k * FEC_TBL_COEF) {
		ret = got[0];
	}
out:
	free(b0);
	free(b1);
	return ret;
}

struct fec *fec_new(unsigned k)
{
	struct fec *f = NULL;
	struct fec *ret = NULL;
	unsigned x = 1;

	if (k < 1 || k > FEC_MAX_K) {
		errno = EINVAL;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		goto out;
	}
	f->k = k;
	f->npar = FEC_MAX_N - k;
	f->mat = malloc((size_t)FEC_MAX_N * k);
	f->gather = malloc((size_t)f->npar * k * FEC_TBL_COEF);
	f->gmat = malloc((size_t)f->npar * k);
	if (f->mat == NULL || f->gather == NULL || f->gmat == NULL) {
		goto out;
	}
	gf_gen_cauchy1_matrix(f->mat, FEC_MAX_N, (int)k);

	/* 2 generates the multiplicative group of ISA-L's field (0x11d). */
	for (unsigned i = 0; i < 255; i++) {
		f->exp[i] = (uint8_t)x;
		f->log[x] = (uint8_t)i;
		x = gf_mul((unsigned char)x, 2);
	}

	f->row_tbl = probe_row_tbl(f->mat + (size_t)k * k, k);
	if (f->row_tbl > 0) {
		f->enc_tbl = malloc(f->row_tbl * f->npar);
		if (f->enc_tbl == NULL) {
			goto out;
		}
		ec_init_tables((int)k, (int)f->npar, f->mat + (size_t)k * k, f->enc_tbl);
	}
	ret = f;
	f = NULL;
out:
	fec_free(f);
	return ret;
}

void fec_free(struct fec *f)
{
	if (f == NULL) {
		return;
	}
	free(f->mat);
	free(f->enc_tbl);
	free(f->gather);
	free(f->gmat);
	free(f->dmat);
	free(f->dtbl);
	free(f);
}

unsigned fec_k(const struct fec *f)
{
	return f->k;
}

/* ISA-L takes non-const pointers to data it only reads. */
static void unconst_ptrs(const uint8_t *const *in, unsigned n, unsigned char **out)
{
	for (unsigned i = 0; i < n; i++) {
		out[i] = (unsigned char *)(uintptr_t)in[i];
	}
}

int fec_encode(struct fec *f, const uint8_t *const *src, size_t len, const uint8_t *idx, unsigned n,
               uint8_t **out)
{
	unsigned char *data[FEC_MAX_K];
	unsigned k;
	uint8_t *tbl;
	int contiguous = 1;
	int ret = -EINVAL;

	if (f == NULL || len > INT_MAX || (n > 0 && (src == NULL || idx == NULL || out == NULL))) {
		goto out;
	}
	k = f->k;
	for (unsigned i = 0; i < n; i++) {
		if (idx[i] < k || idx[i] >= FEC_MAX_N) {
			goto out;
		}
		if (idx[i] != idx[0] + i) {
			contiguous = 0;
		}
	}
	if (n == 0 || len == 0) {
		ret = 0;
		goto out;
	}
	/* Repeated indexes would overflow the scratch; encode in two halves. */
	if (n > f->npar) {
		unsigned half = n / 2;

		ret = fec_encode(f, src, len, idx, half, out);
		if (ret == 0) {
			ret = fec_encode(f, src, len, idx + half, n - half, out + half);
		}
		goto out;
	}
	unconst_ptrs(src, k, data);

	if (f->enc_tbl != NULL && contiguous) {
		tbl = f->enc_tbl + (size_t)(idx[0] - k) * f->row_tbl;
	} else if (f->enc_tbl != NULL) {
		for (unsigned i = 0; i < n; i++) {
			memcpy(f->gather + i * f->row_tbl,
			       f->enc_tbl + (size_t)(idx[i] - k) * f->row_tbl, f->row_tbl);
		}
		tbl = f->gather;
	} else {
		for (unsigned i = 0; i < n; i++) {
			memcpy(f->gmat + (size_t)i * k, f->mat + (size_t)idx[i] * k, k);
		}
		ec_init_tables((int)k, (int)n, f->gmat, f->gather);
		tbl = f->gather;
	}
	ec_encode_data((int)len, (int)k, (int)n, tbl, data, out);
	ret = 0;
out:
	return ret;
}

/*
 * Fills the decode matrix rows for the missing sources (see the top of the
 * file). have[0..k) and miss[0..nmiss) are already validated; present[i] is
 * non-zero when source i is among have.
 */
static void decode_matrix(struct fec *f, const uint8_t *have, const uint8_t *miss, unsigned nmiss,
                          const uint8_t *present)
{
	unsigned k = f->k;
	const uint8_t *lg = f->log;
	uint8_t xs[FEC_MAX_K], ys[FEC_MAX_K];
	/* Per have[] column: log of B(x) / B'(x) for parity, log G(s) for sources. */
	unsigned colv[FEC_MAX_K];
	unsigned p = 0, q = 0;

	for (unsigned c = 0; c < k; c++) {
		if (have[c] >= k) {
			xs[p++] = have[c];
		}
	}
	for (unsigned y = 0; y < k; y++) {
		if (!present[y]) {
			ys[q++] = (uint8_t)y;
		}
	}
	/* p == q since have holds k distinct indexes. */
	for (unsigned c = 0; c < k; c++) {
		unsigned v = have[c];
		unsigned num = 0, den = 0;

		if (v >= k) {
			for (unsigned t = 0; t < p; t++) {
				num += lg[v ^ ys[t]];
				if (xs[t] != v) {
					den += lg[v ^ xs[t]];
				}
			}
		} else {
			for (unsigned t = 0; t < p; t++) {
				num += lg[v ^ ys[t]];
				den += lg[v ^ xs[t]];
			}
		}
		colv[c] = log_sub(num % 255, den % 255);
	}
	for (unsigned r = 0; r < nmiss; r++) {
		unsigned y = miss[r];
		unsigned num = 0, den = 0, ay;
		uint8_t *row = f->dmat + (size_t)r * k;

		for (unsigned t = 0; t < p; t++) {
			num += lg[y ^ xs[t]];
			if (ys[t] != y) {
				den += lg[y ^ ys[t]];
			}
		}
		ay = log_sub(num % 255, den % 255);
		for (unsigned c = 0; c < k; c++) {
			unsigned l = log_add(ay, colv[c]);

			row[c] = f->exp[log_sub(l, lg[have[c] ^ y])];
		}
	}
}

int fec_decode(struct fec *f, const uint8_t *have, const uint8_t *const *sym, size_t len,
               const uint8_t *missing, unsigned nmiss, uint8_t **out)
{
	unsigned char *data[FEC_MAX_K];
	uint8_t seen[256] = {0};
	uint8_t present[FEC_MAX_K] = {0};
	unsigned k;
	int ret = -EINVAL;

	if (f == NULL || have == NULL || len > INT_MAX) {
		goto out;
	}
	k = f->k;
	if (nmiss > k || (nmiss > 0 && (sym == NULL || missing == NULL || out == NULL))) {
		goto out;
	}
	for (unsigned i = 0; i < k; i++) {
		if (have[i] >= FEC_MAX_N || seen[have[i]]) {
			goto out;
		}
		seen[have[i]] = 1;
		if (have[i] < k) {
			present[have[i]] = 1;
		}
	}
	for (unsigned i = 0; i < nmiss; i++) {
		if (missing[i] >= k || seen[missing[i]]) {
			goto out;
		}
		seen[missing[i]] = 1;
	}
	if (nmiss == 0 || len == 0) {
		ret = 0;
		goto out;
	}
	if (f->dmat == NULL) {
		f->dmat = malloc((size_t)k * k);
		f->dtbl = malloc((size_t)k * k * FEC_TBL_COEF);
		if (f->dmat == NULL || f->dtbl == NULL) {
			free(f->dmat);
			free(f->dtbl);
			f->dmat = NULL;
			f->dtbl = NULL;
			ret = -ENOMEM;
			goto out;
		}
	}
	if (!f->dvalid || f->dnmiss != nmiss || memcmp(f->dhave, have, k) != 0 ||
	    memcmp(f->dmiss, missing, nmiss) != 0) {
		decode_matrix(f, have, missing, nmiss, present);
		ec_init_tables((int)k, (int)nmiss, f->dmat, f->dtbl);
		memcpy(f->dhave, have, k);
		memcpy(f->dmiss, missing, nmiss);
		f->dnmiss = nmiss;
		f->dvalid = 1;
	}
	unconst_ptrs(sym, k, data);
	ec_encode_data((int)len, (int)k, (int)nmiss, f->dtbl, data, out);
	ret = 0;
out:
	return ret;
}
