/*
 * gptq.h - calibrated per-row INT4/INT8 quantization of one weight matrix (internal).
 *
 * Both methods store what the plain quantizer stores (formats/layout.h: one fp16 scale per row,
 * codes -qmax..qmax): only the codes and scales change, so the same kernels run the result.
 *
 *   H = sum over calibration tokens of x x^T, where x is the matrix's input (cols values); the
 *   H-weighted error of a row w quantized to codes q with scale s is (w - s q)^T H (w - s q), the
 *   squared error that row adds to the matrix's outputs over the calibration tokens.
 *
 * glmq_weighted_scale: the activation-weighted scale search (like llama.cpp's imatrix search).
 *   Codes are round-to-nearest; the row's scale is the candidate with the least
 *   sum_j d_j (w_j - s q_j(s))^2, d = diag(H). Candidates, all rounded to fp16:
 *   amax / (qmax (1 + k/40)) for k = -8..16, and for each the weighted least-squares refit
 *   s' = sum d w q / sum d q^2 of its codes. k = 0 is the plain scale, so the chosen scale is
 *   never worse than it on this measure; ties keep the earlier candidate.
 *
 * glmq_search_quantize: that search for every row of a matrix, guarded like GPTQ below.
 *
 * glmq_gptq_quantize: GPTQ (Frantar et al., 2022) with per-row scales fixed before the sweep
 * (the plain amax/qmax scale, or the weighted search). With H_d = H + lambda I (lambda = damp *
 * mean(diag H), dead columns H_jj = 0 set to 1 and their weights to 0, as GPTQ does) and the
 * upper-triangular U with H_d^-1 = U^T U, every row is swept column by column (in index order, or
 * by decreasing H_jj with act_order): q_j = clamp(rint(w_j / s)), e = (w_j - s q_j) / U_jj,
 * w_k -= e U_jk for k > j. U comes from H_d = R R^T with R upper triangular (a Cholesky
 * factorization from the last column), U = R^-1. Rows are independent given U: threads take
 * fixed row ranges and every sum runs in a fixed order, so the output does not depend on the
 * thread count or the machine. Finally each row keeps GPTQ's codes only if their H-weighted
 * error (undamped H) is not above that of round-to-nearest with the same scale; otherwise it
 * keeps the round-to-nearest codes. The result is never worse than RTN on the calibration H.
 * Group-wise (group 32/64/128, the types INT4_G* / INT8_G* of formats/layout.h): the scales are
 * the group rule's (glmq_group_rtn: ggml's Q4_0 / Q8_0 rule, INT4 codes -8..7), computed from the
 * original weights before the sweep (GPTQ's static groups, so act-order needs no regrouping); the
 * sweep rounds with each column's group scale, and the round-to-nearest a row may fall back to is
 * the group rule's own codes - exactly the plain group-wise conversion.
 */
#ifndef GLMQ_GPTQ_H
#define GLMQ_GPTQ_H

#include "core/internal.h"
#include "core/pool.h"

typedef struct {
    int q4;           /* 1: INT4 (qmax 7); 0: INT8 (qmax 127) */
    double damp;      /* lambda = damp * mean(diag H); GPTQ's default 0.01 */
    int act_order;    /* 1: columns in order of decreasing H_jj (ties: lower index first) */
    int scale_search; /* 1: per-row scales from glmq_weighted_scale, else amax / qmax */
    int64_t group;    /* 0: per row; 32, 64 or 128: scales per group (no scale search) */
} glmq_gptq_opts;

typedef struct {
    double err_gptq;  /* sum over rows of the H-weighted error of the stored codes */
    double err_rtn;   /* the same for round-to-nearest with the same scales */
    int64_t rows_rtn; /* rows that kept the round-to-nearest codes */
} glmq_gptq_stats;

/*
 * The scale search above for one row of n weights with weights d (>= 0, e.g. diag H).
 * *scale receives fp16 bits; 0 when the row is all zero. @return GLMQ_OK, GLMQ_E_VALUE for a
 * NaN/Inf weight (*bad_col = its column), GLMQ_E_UNSUPPORTED when the plain scale overflows fp16.
 */
glmq_status glmq_weighted_scale(const float *w, int64_t n, const double *d, int qmax,
                                uint16_t *scale, int64_t *bad_col);

/* Round-to-nearest codes of one row with a given fp16 scale: clamp(rintf(w / s), -qmax, qmax)
 * in fp32, as the plain quantizer computes them (0 when the scale is 0). */
void glmq_rtn_codes(const float *w, int64_t n, uint16_t scale, int qmax, int8_t *q);

/*
 * Quantize w [rows][cols] (fp32, row-major) against h [cols][cols] (symmetric, fp64). codes
 * receives rows*cols codes (-qmax..qmax, INT4 groups -8..7, row-major), scales one fp16 scale
 * per row, or ceil(cols / group) per row (row-major) with groups. pool may be
 * NULL (one thread). st may be NULL. Memory: one cols x cols fp64 matrix (the damped, permuted
 * H, factored and inverted in place into U) plus per-thread row
 * buffers. @return GLMQ_OK; GLMQ_E_VALUE for a NaN/Inf weight or a non-finite or negative H
 * diagonal, or an H that is not positive definite after damping (message names row/column);
 * GLMQ_E_UNSUPPORTED when a row's scale overflows fp16; GLMQ_E_NOMEM.
 */
glmq_status glmq_gptq_quantize(const float *w, int64_t rows, int64_t cols, const double *h,
                               const glmq_gptq_opts *o, glmq_pool *pool, int8_t *codes,
                               uint16_t *scales, glmq_gptq_stats *st, glmq_err *err);

/*
 * The scale search as a matrix method: each row's scale from glmq_weighted_scale with d =
 * diag(h), round-to-nearest codes; then, as for GPTQ, a row whose H-weighted error (full,
 * undamped h) is above that of the plain amax/qmax scale keeps the plain scale and codes.
 * stats->err_gptq holds the method's error. Arguments and errors as glmq_gptq_quantize.
 */
glmq_status glmq_search_quantize(const float *w, int64_t rows, int64_t cols, const double *h,
                                 int q4, glmq_pool *pool, int8_t *codes, uint16_t *scales,
                                 glmq_gptq_stats *stats, glmq_err *err);

/* Store a row of codes (-qmax..qmax) in the row layout of formats/layout.h (q4: INT4, else
 * INT8), padding included. */
void glmq_pack_codes_row(const int8_t *q, int64_t n, int q4, void *out);

#endif /* GLMQ_GPTQ_H */
