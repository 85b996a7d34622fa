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
 *   A NaN or infinite w[j], or a scale that overflows fp16 (amax/qmax > 65504), is an error:
 *   the functions return the failing column (>= 0) and leave the outputs unspecified.
 *
 * Storage layout of one row (what the packed file holds, formats/SPEC.md §5):
 *   INT8: cols padded up to a multiple of GLMQ_Q8_ALIGN (64) elements; int8 codes; pad = 0.
 *   INT4: cols padded up to a multiple of GLMQ_Q4_BLOCK (128) elements. Block b (elements
 *         128b .. 128b+127) is 64 bytes at byte offset 64b of the row:
 *
 *            byte 64b+j (j = 0..63):  bits 0-3 = q[128b + j] + 8
 *                                     bits 4-7 = q[128b + 64 + j] + 8
 *
 *         so a 64-byte load (one zmm) holds a whole block: the low nibbles are elements 0..63,
 *         the high nibbles elements 64..127; a 32-byte load (one ymm) at +32 holds 32..63 and
 *         96..127. Codes are offset-binary (1..15; 8 = zero, also used for padding) so that
 *         vpmaddubsw / vpdpbusd can take them as the unsigned operand and subtract 8*sum(a).
 *   Row bytes are therefore multiples of 64 for both types, and rows stay 64-byte aligned.
 */
#ifndef GLMQ_QUANT_H
#define GLMQ_QUANT_H

#include "core/internal.h"

#define GLMQ_Q4_BLOCK 128
#define GLMQ_Q8_ALIGN 64

_Static_assert(GLMQ_Q4_BLOCK / 2 == 64, "an INT4 block is one 64-byte cache line");

/* Padded element count and bytes of one stored row. */
static inline int64_t glmq_q4_padded_cols(int64_t cols)
{
    return (cols + GLMQ_Q4_BLOCK - 1) / GLMQ_Q4_BLOCK * GLMQ_Q4_BLOCK;
}
static inline int64_t glmq_q8_padded_cols(int64_t cols)
{
    return (cols + GLMQ_Q8_ALIGN - 1) / GLMQ_Q8_ALIGN * GLMQ_Q8_ALIGN;
}
static inline int64_t glmq_q4_row_bytes(int64_t cols) { return glmq_q4_padded_cols(cols) / 2; }
static inline int64_t glmq_q8_row_bytes(int64_t cols) { return glmq_q8_padded_cols(cols); }

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
 * @return -1 on success, or the column index of the first NaN/Inf value (or 0 when the scale
 *         overflows fp16).
 */
typedef int64_t (*glmq_quantize_row_fn)(const float *w, int64_t n, void *out, uint16_t *scale,
                                        glmq_qstats *st);

int64_t glmq_quantize_row_q8_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                 glmq_qstats *st);
int64_t glmq_quantize_row_q4_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                 glmq_qstats *st);

/* Dequantize one stored row back to n floats (q * s). */
void glmq_dequantize_row_q8_ref(const void *in, uint16_t scale, int64_t n, float *out);
void glmq_dequantize_row_q4_ref(const void *in, uint16_t scale, int64_t n, float *out);

/* 16-bit float widening, n elements from little-endian bytes (may be unaligned). */
typedef void (*glmq_widen_fn)(const void *src, float *dst, int64_t n);
/* f32 -> f16 bits, round to nearest even (for --type f16 narrowing of F32 sources). */
typedef void (*glmq_narrow_fn)(const float *src, uint16_t *dst, int64_t n);

/*
 * The kernel table. Filled once by glmq_kernels_get() (src/core/cpu.c) in the order
 * avx512 -> avx2 -> ref for the active level (GLMQ_CPU may lower it). Later issues add dot
 * products here.
 */
typedef struct glmq_kernels {
    glmq_cpu_level level;
    glmq_quantize_row_fn quantize_row_q8;
    glmq_quantize_row_fn quantize_row_q4;
    glmq_widen_fn f16_to_f32;
    glmq_widen_fn bf16_to_f32;
    glmq_narrow_fn f32_to_f16;
} glmq_kernels;

/* The kernel table for the active level. Thread-safe; never NULL. */
const glmq_kernels *glmq_kernels_get(void);

/* The table for a specific level (for tests); returns NULL if the CPU/OS cannot run it. */
const glmq_kernels *glmq_kernels_for(glmq_cpu_level level);

/* For tests: lower the active level (can only lower, as GLMQ_CPU). Returns the new level. */
glmq_cpu_level glmq_cpu_force(glmq_cpu_level level);

#endif /* GLMQ_QUANT_H */
