/*
 * hacc.h - the calibration Hessian H += X^T X, fast and bit-identical on every level, and the
 * other fixed-order loops of calibration: GPTQ's, and the reference forward's fp32 dot product
 * that produces the calibration inputs (internal).
 *
 * For the inputs x_t (t = 0..nt-1, n values each) of a matrix, every element of the upper
 * triangle (j >= i) gets
 *
 *     h[i][j] = (...((h[i][j] + x_0i x_0j) + x_1i x_1j) + ...) + x_(nt-1)i x_(nt-1)j
 *
 * in fp64, tokens in order, one rounding per token. x_ti x_tj of two fp32 values is exact in
 * fp64 (24 + 24 significant bits), so an FMA and a multiply-then-add round the same way, and the
 * only rounding is that of each addition. The SIMD kernels put different elements j in the lanes
 * and block over (i, j) tiles while walking the tokens in order, so every element sees exactly
 * the scalar sequence of additions: the result is bit-identical for every kernel level, tile
 * size and thread split. The strict lower triangle (j < i) is not touched.
 *
 * Kernels (quant/hacc.c: _ref, quant/hacc_avx2.c, quant/hacc_avx512.c) take the inputs as fp64
 * (exact conversions of the fp32 inputs, made once per token block by glmq_hacc_add) and do the
 * rows [i0, i1) x columns [max(i, j0), j1) of one block of tokens.
 */
#ifndef GLMQ_QUANT_HACC_H
#define GLMQ_QUANT_HACC_H

#include "core/internal.h"
#include "core/pool.h"
#include "glmq.h"

/* h is n x n row-major; x[t * ldx + c] is column c of token t (fp64). */
typedef void (*glmq_hacc_fn)(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                             int64_t i0, int64_t i1, int64_t j0, int64_t j1);

void glmq_hacc_block_ref(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                         int64_t i0, int64_t i1, int64_t j0, int64_t j1);
void glmq_hacc_block_avx2(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                          int64_t i0, int64_t i1, int64_t j0, int64_t j1);
void glmq_hacc_block_avx512(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                            int64_t i0, int64_t i1, int64_t j0, int64_t j1);

/*
 * GPTQ's inner loops (quant/gptq.c), one set per level, every level bit-identical to _ref:
 *   dot   sum a[i] b[i] over i < n in four interleaved partial sums (lane l takes i = l mod 4,
 *         each product rounded, then added: no FMA), the tail (n mod 4) into lane 0, the result
 *         (s0 + s1) + (s2 + s3); the SIMD kernels hold the four lanes in one 256-bit vector;
 *   dot4  out[r] = dot(a + r * lda, b, n) for r < 4, each exactly the dot above (four
 *         independent chains in flight instead of one);
 *   dot4x4  out[4r + m] = dot(a + r * lda + 4m, b + m * ldb + 4m, n - 4m) for r, m < 4, n >= 12:
 *         four rows of a against four rows of b whose dots start 4m columns later (the
 *         quadratic forms' rows k, k + 4, k + 8, k + 12 of H, whose dots start at k + 1: their
 *         lanes line up and their tails fall on the same columns), each exactly the dot above;
 *   axpy  w[i] -= e * u[i] for i < n, product and difference each rounded (any vector width);
 *   update  w[r][k] -= e[r][c] * u[c][k] for r < nr, k < nk, each element taking c = 0 .. nc-1
 *         in order (GPTQ's lazy batch: the axpy above for every c and row, in any blocking).
 */
typedef double (*glmq_gptq_dot_fn)(const double *a, const double *b, int64_t n);
typedef void (*glmq_gptq_dot4_fn)(const double *a, int64_t lda, const double *b, int64_t n,
                                  double *out);
typedef void (*glmq_gptq_axpy_fn)(double *w, const double *u, double e, int64_t n);
double glmq_gptq_dot_ref(const double *a, const double *b, int64_t n);
double glmq_gptq_dot_avx2(const double *a, const double *b, int64_t n);
void glmq_gptq_dot4_ref(const double *a, int64_t lda, const double *b, int64_t n, double *out);
void glmq_gptq_dot4_avx2(const double *a, int64_t lda, const double *b, int64_t n, double *out);
typedef void (*glmq_gptq_dot4x4_fn)(const double *a, int64_t lda, const double *b,
                                    int64_t ldb, int64_t n, double *out);
void glmq_gptq_dot4x4_ref(const double *a, int64_t lda, const double *b, int64_t ldb, int64_t n,
                          double *out);
void glmq_gptq_dot4x4_avx2(const double *a, int64_t lda, const double *b, int64_t ldb, int64_t n,
                           double *out);
void glmq_gptq_dot4x4_avx512(const double *a, int64_t lda, const double *b, int64_t ldb,
                             int64_t n, double *out);
void glmq_gptq_axpy_ref(double *w, const double *u, double e, int64_t n);
void glmq_gptq_axpy_avx2(double *w, const double *u, double e, int64_t n);
void glmq_gptq_axpy_avx512(double *w, const double *u, double e, int64_t n);
typedef void (*glmq_gptq_update_fn)(double *w, int64_t ldw, int64_t nr, const double *e,
                                    int64_t lde, const double *u, int64_t ldu, int64_t nc,
                                    int64_t nk);
void glmq_gptq_update_ref(double *w, int64_t ldw, int64_t nr, const double *e, int64_t lde,
                          const double *u, int64_t ldu, int64_t nc, int64_t nk);
void glmq_gptq_update_avx2(double *w, int64_t ldw, int64_t nr, const double *e, int64_t lde,
                           const double *u, int64_t ldu, int64_t nc, int64_t nk);
void glmq_gptq_update_avx512(double *w, int64_t ldw, int64_t nr, const double *e, int64_t lde,
                             const double *u, int64_t ldu, int64_t nc, int64_t nk);

/*
 * The reference forward's fp32 dot product (runtime/forward.c, GLMQ_FWD_REFERENCE: the path
 * calibration and `--kernels reference` run). dot8(a, b, n): lane l (l = 0..7) accumulates, in
 * order, a[i] * b[i] for the i < n8 = n - n % 8 with i % 8 == l, each product rounded, then
 * added (no FMA); the lanes reduce as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)); then
 * the tail terms i = n8 .. n-1 are added in order. All fp32.
 *   dot8_rows  y[t * ldy + r] = dot8(w + r * ldw, x + t * ldx, n) for r < nr, t < nt: every
 *              level bit-identical to _ref (the SIMD kernels put the 8 lanes of one output, or
 *              of two at AVX-512, in a vector and serve 4 rows x 2 or 4 tokens per pass).
 */
typedef void (*glmq_dot8_rows_fn)(const float *w, int64_t ldw, int64_t nr, const float *x,
                                  int64_t ldx, int64_t nt, int64_t n, float *y, int64_t ldy);
float glmq_dot8_f32(const float *a, const float *b, int64_t n);
void glmq_dot8_rows_ref(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                        int64_t nt, int64_t n, float *y, int64_t ldy);
void glmq_dot8_rows_avx2(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                         int64_t nt, int64_t n, float *y, int64_t ldy);
void glmq_dot8_rows_avx512(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                           int64_t nt, int64_t n, float *y, int64_t ldy);
/* The kernel of a level (the `hacc` entry of its table in quant/dispatch.c: the AVX-512 block at
 * avx512/avx512vnni, the AVX2 one at avx2/avxvnni, else the reference), NULL when the CPU cannot
 * run that level. glmq_hacc_active(): the kernel of glmq_cpu_active() (GLMQ_CPU,
 * glmq_cpu_force). */
glmq_hacc_fn glmq_hacc_kernel(glmq_cpu_level level);
glmq_hacc_fn glmq_hacc_active(void);

/* Tokens per block: glmq_hacc_add's scratch holds GLMQ_HACC_TB * n doubles. */
#define GLMQ_HACC_TB 128

/*
 * h (n x n, upper triangle) += the products of the nt fp32 inputs x[t * ldx + c] as above, with
 * kernel fn (NULL: glmq_hacc_active()), rows spread over the pool's threads (pool may be NULL).
 * scratch: GLMQ_HACC_TB * n doubles. Never allocates.
 */
void glmq_hacc_add(double *h, int64_t n, const float *x, int64_t ldx, int64_t nt, glmq_pool *pool,
                   glmq_hacc_fn fn, double *scratch);

#endif /* GLMQ_QUANT_HACC_H */
