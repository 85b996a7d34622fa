/*
 * quant.h - per-row symmetric INT8/INT4 weight quantization (GLM-SPEC decision 6), internal.
 *
 * Semantics (the _ref functions are the truth; every SIMD variant is bit-identical to them):
 *   qmax = 127 (INT8) or 7 (INT4). For one row w[0..n):
 *     amax     = max_j |w[j]|                       (fp32)
 *     scale    = fp16(amax / qmax)                  (one fp32 division, then RNE to fp16)
 *     s        = (float)scale
 *     q[j]     = clamp(rint(w[j] / s), -qmax, qmax) (one fp32 division, rint ties-to-even)
 *   If scale == 0 (all-zero row, or amax/qmax underflows fp16) every code is 0.
 *   Two inputs are errors, told apart by the status (the outputs are then unspecified):
 *     GLMQ_E_VALUE        some w[j] is NaN or infinite; *bad_col = the first such column j.
 *     GLMQ_E_UNSUPPORTED  every w[j] is finite but the scale overflows fp16 (amax/qmax rounds
 *                         to fp16 +inf, i.e. amax/qmax >= 65520): the row is not representable
 *                         in the format; *bad_col = -1.
 *   NaN/Inf is checked first: a row with both reports GLMQ_E_VALUE.
 *
 * Storage layout of one row: formats/layout.h (formats/SPEC.md §5).
 */
#ifndef GLMQ_QUANT_H
#define GLMQ_QUANT_H

#include "core/internal.h"
#include "formats/layout.h"
#include "quant/hacc.h"

/* Error statistics of one quantized row against the fp32 input (accumulated in double). */
typedef struct {
    double sum_sq_err; /* sum (q*s - w)^2 */
    double sum_sq;     /* sum w^2 */
    double max_abs_err;
} glmq_qstats;

/*
 * Quantize one row of n fp32 values.
 *   out:   glmq_q8_row_bytes(n) (INT8) or glmq_q4_row_bytes(n) (INT4) bytes, padding included.
 *   scale: receives the fp16 bits of the row scale.
 *   st:    if non-NULL, receives the row's error statistics (overwritten, not accumulated).
 *   bad_col: if non-NULL, receives the first NaN/Inf column on GLMQ_E_VALUE and -1 otherwise.
 * @return GLMQ_OK; GLMQ_E_VALUE for a NaN/Inf weight; GLMQ_E_UNSUPPORTED when the row's scale
 *         overflows fp16 (see above). No message is written (the kernels take no glmq_err):
 *         the caller names the tensor and row.
 */
typedef glmq_status (*glmq_quantize_row_fn)(const float *w, int64_t n, void *out,
                                            uint16_t *scale, glmq_qstats *st, int64_t *bad_col);

glmq_status glmq_quantize_row_q8_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                     glmq_qstats *st, int64_t *bad_col);
glmq_status glmq_quantize_row_q4_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                     glmq_qstats *st, int64_t *bad_col);

/* max |w[j]| of a row (fp32), or GLMQ_E_VALUE with *bad_col (may be NULL) = the first NaN/Inf
 * column. */
glmq_status glmq_row_amax(const float *w, int64_t n, float *amax, int64_t *bad_col);

/*
 * Group-wise round-to-nearest of one row (type INT8_G* / INT4_G*; the rule of quant_ref.c, which
 * is ggml's Q8_0 / Q4_0 rule per group). out as for the per-row type of the same codes; scales
 * receives glmq_scales_per_row(type, n) fp16 scales. Statuses as glmq_quantize_row_fn (a group
 * scale that overflows fp16 is GLMQ_E_UNSUPPORTED).
 */
glmq_status glmq_quantize_row_grouped(glmq_type type, const float *w, int64_t n, void *out,
                                      uint16_t *scales, glmq_qstats *st, int64_t *bad_col);
/* The rule of one group of len <= 128 values (quant_ref.c): codes q[0..len) (INT4 -8..7, INT8
 * -127..127) and the fp16 scale. Returns 0 when the scale overflows fp16. No NaN check. */
int glmq_group_rtn(const float *w, int64_t len, int q4, int8_t *q, uint16_t *scale);
/* Dequantize a group-wise row (scales little-endian, as stored). */
void glmq_dequantize_row_grouped(glmq_type type, const void *in, const uint16_t *scales,
                                 int64_t n, float *out);

/* Dequantize one stored row back to n floats (q * s). */
void glmq_dequantize_row_q8_ref(const void *in, uint16_t scale, int64_t n, float *out);
void glmq_dequantize_row_q4_ref(const void *in, uint16_t scale, int64_t n, float *out);

/* 16-bit float widening, n elements from little-endian bytes (may be unaligned). */
typedef void (*glmq_widen_fn)(const void *src, float *dst, int64_t n);
/* f32 -> f16 bits, round to nearest even (for --type f16 narrowing of F32 sources). */
typedef void (*glmq_narrow_fn)(const float *src, uint16_t *dst, int64_t n);

struct glmq_dot_kernels; /* quant/dot.h */

/*
 * The kernel table: one per level, the active one chosen once by glmq_kernels_get()
 * (quant/dispatch.c) from the detected level lowered by GLMQ_CPU.
 */
typedef struct glmq_kernels {
    glmq_cpu_level level;
    glmq_quantize_row_fn quantize_row_q8;
    glmq_quantize_row_fn quantize_row_q4;
    glmq_widen_fn f16_to_f32;
    glmq_widen_fn bf16_to_f32;
    glmq_narrow_fn f32_to_f16;
    const struct glmq_dot_kernels *dot; /* matrix and attention kernels (quant/dot.h) */
    glmq_hacc_fn hacc;                  /* GPTQ's H += x x^T block (quant/hacc.h) */
    glmq_gptq_dot_fn gptq_dot;          /* GPTQ's fixed-order dot product(s) and w -= e u */
    glmq_gptq_dot4_fn gptq_dot4;
    glmq_gptq_dot4x4_fn gptq_dot4x4;
    glmq_gptq_axpy_fn gptq_axpy;
    glmq_gptq_update_fn gptq_update;
    glmq_dot8_rows_fn dot8_rows;        /* the reference forward's fp32 products (quant/hacc.h) */
} glmq_kernels;

/*
 * The one widen-a-row function: row `row` of a stored matrix of `type` (F32/F16/BF16 little-
 * endian, or INT8/INT4 codes in the layout of formats/layout.h with the row's fp16 `scales`,
 * glmq_scales_per_row of them, little-endian as stored; NULL for unscaled types) to
 * `cols` fp32 values, exactly (16-bit floats and code * scale are exact in fp32), or a row of a
 * GGUF tensor of ggml block type GLMQ_TYPE_GGML + t (decoded as ggml decodes it,
 * quant/ggml_dequant.h; the type was validated when the model was opened). k selects the
 * widening kernels (NULL: the scalar ones); every level gives the same bits.
 */
void glmq_widen_row(const glmq_kernels *k, glmq_type type, const void *row,
                    const uint16_t *scales, int64_t cols, float *dst);

/* The kernel table for the active level. Thread-safe; never NULL. */
const glmq_kernels *glmq_kernels_get(void);

/* The table for a specific level (for tests); returns NULL if the CPU/OS cannot run it. */
const glmq_kernels *glmq_kernels_for(glmq_cpu_level level);

/* For tests: lower the active level to the best supported one at or below level in the
 * capability order (glmq.h; can only lower, as GLMQ_CPU). Returns the new active level. */
glmq_cpu_level glmq_cpu_force(glmq_cpu_level level);

#endif /* GLMQ_QUANT_H */
