/*
 * quant_x86.h - internals shared by the quantization kernels of every level (ref, avx2,
 * avx512) and by the dispatcher in quant/dispatch.c. Never installed, never included by callers
 * outside quant/ and quant/dispatch.c.
 *
 * What lives here:
 *   - the entry points of the per-ISA kernels that quant.h does not name (quant.h declares only
 *     the _ref quantizers; the table in dispatch.c needs the rest);
 *   - scalar, ISA-neutral static inline helpers that fix the parts of the decision-6 algorithm
 *     every level must do identically: the NaN/Inf scan, amax -> fp16 scale, and the status
 *     of a row (glmq_q_row_begin). The vector bodies are quant/quant_x86_impl.h.
 *
 * Nothing here includes <immintrin.h>: the header is compiled at baseline (dispatch.c, quant_ref.c)
 * as well as with -mavx2 / -mavx512f, and the helpers are plain C so that each translation unit
 * gets its own copy compiled for its own flags (no AVX code leaks into baseline callers). The
 * helpers use no expression that -ffp-contract could fuse (the project builds with -std=c11,
 * where GCC's default is -ffp-contract=off, but we do not rely on that): a division, a
 * comparison and the bit-exact scalar fp16 conversions of src/core/fp16.c.
 */
#ifndef GLMQ_QUANT_X86_H
#define GLMQ_QUANT_X86_H

#include "quant/quant.h"

/* ---- amax in the integer domain -------------------------------------------------------------- */

/*
 * The bits of |x| as an unsigned integer. For non-negative IEEE floats the unsigned order of the
 * bit patterns is the numeric order, so max_j absbits(w[j]) is the bits of amax, and it is
 * >= GLMQ_Q_NONFINITE exactly when some w[j] is NaN or infinite. The SIMD kernels compute amax
 * this way (vpmaxud over masked lanes): an integer max is exact and order-independent, so it
 * cannot differ from the scalar fmax-style loop of _ref, and NaN needs no special propagation.
 */
#define GLMQ_Q_NONFINITE 0x7f800000u

static inline uint32_t glmq_q_absbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u & 0x7fffffffu;
}

/* Column of the first NaN/Inf in w[0..n), or -1. (Used after a vector pass saw one.) */
static inline int64_t glmq_q_first_nonfinite(const float *w, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        if (glmq_q_absbits(w[j]) >= GLMQ_Q_NONFINITE) return j;
    return -1;
}

/*
 * Decision 6 scale: scale = fp16(amax / qmax) with one fp32 division and RNE to fp16;
 * s = (float)scale. amax must be finite and >= 0.
 * @return false when the scale overflows fp16 (amax/qmax rounds to +inf), true otherwise.
 *         *scale receives the fp16 bits, *s the widened value (0 when the scale underflows).
 */
static inline bool glmq_q_row_scale(float amax, int qmax, uint16_t *scale, float *s)
{
    float r = amax / (float)qmax; /* single fp32 division */
    uint16_t h = glmq_f32_to_f16(r);
    if (h == 0x7c00u) return false; /* +inf: amax/qmax >= 65520 */
    *scale = h;
    *s = glmq_f16_to_f32(h);
    return true;
}

/*
 * The common front of the SIMD quantizers, from the vector pass's max_j absbits(w[j]) to the
 * row's status (quant.h): NaN/Inf -> GLMQ_E_VALUE with the first bad column (found by the
 * scalar scan, exactly as _ref finds it); scale overflow -> GLMQ_E_UNSUPPORTED; otherwise
 * GLMQ_OK with *scale / *s from glmq_q_row_scale.
 */
static inline glmq_status glmq_q_row_begin(const float *w, int64_t n, uint32_t amax_bits,
                                           int qmax, uint16_t *scale, float *s, int64_t *bad_col)
{
    if (bad_col) *bad_col = -1;
    if (amax_bits >= GLMQ_Q_NONFINITE) {
        if (bad_col) *bad_col = glmq_q_first_nonfinite(w, n);
        return GLMQ_E_VALUE;
    }
    float amax;
    memcpy(&amax, &amax_bits, 4);
    if (!glmq_q_row_scale(amax, qmax, scale, s)) return GLMQ_E_UNSUPPORTED;
    return GLMQ_OK;
}

/* ---- kernel entry points (contracts as glmq_quantize_row_fn etc. in quant.h) ----------------- */

/* Scalar f32 -> f16 row (RNE, via glmq_f32_to_f16); the _ref narrow entry of the table. The
 * _ref widen entries are glmq_f16_to_f32_row / glmq_bf16_to_f32_row of src/core/fp16.c. */
void glmq_f32_to_f16_row_ref(const float *src, uint16_t *dst, int64_t n);

/*
 * The five entry points of one SIMD level, all instantiated from quant/quant_x86_impl.h:
 *   glmq_quantize_row_q8_<isa>, glmq_quantize_row_q4_<isa>   (glmq_quantize_row_fn)
 *   glmq_f16_to_f32_<isa>, glmq_bf16_to_f32_<isa>             (glmq_widen_fn)
 *   glmq_f32_to_f16_<isa>                                     (glmq_narrow_fn)
 */
#define GLMQ_Q_DECLARE_LEVEL(isa)                                                                 \
    glmq_status glmq_quantize_row_q8_##isa(const float *w, int64_t n, void *out,                \
                                           uint16_t *scale, glmq_qstats *st, int64_t *bad_col); \
    glmq_status glmq_quantize_row_q4_##isa(const float *w, int64_t n, void *out,                \
                                           uint16_t *scale, glmq_qstats *st, int64_t *bad_col); \
    void glmq_f16_to_f32_##isa(const void *src, float *dst, int64_t n);                          \
    void glmq_bf16_to_f32_##isa(const void *src, float *dst, int64_t n);                         \
    void glmq_f32_to_f16_##isa(const float *src, uint16_t *dst, int64_t n)

/* AVX2 + FMA + F16C (quant/quant_avx2.c) and AVX-512 F/BW/VL/DQ (quant/quant_avx512.c). Only
 * defined when GLMQ_HAVE_X86. */
GLMQ_Q_DECLARE_LEVEL(avx2);
GLMQ_Q_DECLARE_LEVEL(avx512);

#endif /* GLMQ_QUANT_X86_H */
