/*
 * quant_ref.c - scalar reference quantizers (GLM-SPEC "glmq reference semantics" decision 6).
 *
 * These functions ARE the semantics: the AVX2 and AVX-512 kernels must produce bit-identical
 * codes, scales, statuses and bad columns, and tests/check_quant.c compares them element by
 * element.
 * They are written for clarity, one element at a time, in the order of quant.h:
 *
 *     amax  = max_j |w[j]|                        fp32, exact (max does not round)
 *     scale = fp16(amax / qmax)                   one fp32 division, RNE to fp16
 *     s     = (float)scale
 *     q[j]  = clamp(rint(w[j] / s), -qmax, qmax)  one fp32 division, rint = ties-to-even
 *
 * Invariants:
 *   - A NaN or infinite w[j] is found before anything is written: GLMQ_E_VALUE, *bad_col = its
 *     column (the first one). Otherwise a scale that rounds to fp16 +inf is GLMQ_E_UNSUPPORTED.
 *   - scale == 0 (all-zero row, or amax/qmax below half the smallest fp16 subnormal) means all
 *     codes are 0 - never a 0/0 division.
 *   - Padding is written too: INT8 pad bytes are 0, INT4 pad nibbles are 8 (code 0).
 *   - rint() rounds in the current rounding mode, as _mm*_cvtps_epi32 does; glmq never changes
 *     the mode, so that is round-to-nearest-even everywhere.
 *   - Statistics are accumulated in double, element by element, from the exact error
 *     q*s - w (the product q*s is exact in fp32: 7 + 11 significant bits).
 */
#include "quant/ggml_dequant.h"
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <math.h>

/* Store code q (-7..7) of element j of an INT4 row whose bytes were preset to 0x88. */
static void q4_put(uint8_t *o, int64_t j, int q)
{
    int64_t blk = j / GLMQ_Q4_BLOCK, k = j % GLMQ_Q4_BLOCK;
    uint8_t *b = o + blk * (GLMQ_Q4_BLOCK / 2) + (k & 63);
    uint8_t nib = (uint8_t)(q + 8);
    if (k < 64)
        *b = (uint8_t)((*b & 0xf0) | nib); /* elements 0..63 of the block: low nibble */
    else
        *b = (uint8_t)((*b & 0x0f) | (nib << 4)); /* elements 64..127: high nibble */
}

static int q4_get(const uint8_t *in, int64_t j)
{
    int64_t blk = j / GLMQ_Q4_BLOCK, k = j % GLMQ_Q4_BLOCK;
    uint8_t b = in[blk * (GLMQ_Q4_BLOCK / 2) + (k & 63)];
    return (k < 64 ? (b & 0x0f) : (b >> 4)) - 8;
}

/* Store code q of element j (INT4 nibble or INT8 byte) and add its error q*s - w to the row's
 * statistics (double, element by element; q*s is exact in fp32). */
static void put_code(uint8_t *o, int q4, int64_t j, int q, float s, float w, glmq_qstats *acc)
{
    if (q4)
        q4_put(o, j, q);
    else
        o[j] = (uint8_t)(int8_t)q;
    const double e = (double)q * (double)s - (double)w;
    acc->sum_sq_err += e * e;
    acc->sum_sq += (double)w * (double)w;
    if (fabs(e) > acc->max_abs_err) acc->max_abs_err = fabs(e);
}

glmq_status glmq_row_amax(const float *w, int64_t n, float *amax, int64_t *bad_col)
{
    float m = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(w[j])) {
            if (bad_col) *bad_col = j;
            return GLMQ_E_VALUE;
        }
        float a = fabsf(w[j]);
        if (a > m) m = a;
    }
    *amax = m;
    return GLMQ_OK;
}

/*
 * The one reference quantizer; q4 selects the INT4 layout (qmax 7) over INT8 (qmax 127).
 */
static glmq_status quantize_row_ref(const float *w, int64_t n, int q4, void *out,
                                    uint16_t *scale, glmq_qstats *st, int64_t *bad_col)
{
    const int qmax = q4 ? 7 : 127;
    uint8_t *o = (uint8_t *)out;
    if (bad_col) *bad_col = -1;

    /* 1. amax, rejecting NaN/Inf (first bad column wins). */
    float amax;
    if (glmq_row_amax(w, n, &amax, bad_col) != GLMQ_OK) return GLMQ_E_VALUE;

    /* 2. scale = fp16(amax / qmax); overflow to fp16 inf is not representable. */
    float s = 0.0f;
    if (!glmq_q_row_scale(amax, qmax, scale, &s)) return GLMQ_E_UNSUPPORTED;

    /* 3. codes, with padding preset: INT8 pad = 0, INT4 pad nibble = 8. */
    if (q4)
        memset(o, 0x88, (size_t)glmq_q4_row_bytes(n));
    else
        memset(o, 0, (size_t)glmq_q8_row_bytes(n));

    glmq_qstats acc = {0, 0, 0};
    for (int64_t j = 0; j < n; j++) {
        int q = 0;
        if (s != 0.0f) {               /* scale 0 -> code 0, never 0/0 */
            float x = rintf(w[j] / s); /* one fp32 division, ties-to-even */
            if (x > (float)qmax) x = (float)qmax;
            if (x < (float)-qmax) x = (float)-qmax;
            q = (int)x;
        }
        put_code(o, q4, j, q, s, w[j], &acc);
    }
    if (st) *st = acc;
    return GLMQ_OK;
}

glmq_status glmq_quantize_row_q8_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                     glmq_qstats *st, int64_t *bad_col)
{
    return quantize_row_ref(w, n, 0, out, scale, st, bad_col);
}

glmq_status glmq_quantize_row_q4_ref(const float *w, int64_t n, void *out, uint16_t *scale,
                                     glmq_qstats *st, int64_t *bad_col)
{
    return quantize_row_ref(w, n, 1, out, scale, st, bad_col);
}

/*
 * Group-wise round-to-nearest (formats/SPEC.md §5), ggml's Q4_0 / Q8_0 rule applied to each group
 * of g columns, so that a group of 32 is exactly the block llama.cpp writes:
 *   INT4: m = the first element of largest |w| (signed); d = m / -8; id = d ? 1/d : 0 (fp32);
 *         q = min(15, trunc(w*id + 8.5)) - 8, i.e. round half up to -8..7
 *   INT8: d = amax / 127; id = d ? 1/d : 0 (fp32); q = roundf(w*id) (half away from zero)
 *   scale = fp16(d) (round to nearest even). The codes use the fp32 d, the stored value the fp16
 *   one, as in ggml. Padding groups get scale 0 and code 0. Where 1/d overflows (|d| < 2^-128,
 *   so fp16(d) = 0 and every value decodes to 0) w*id is not finite: the code is then what ggml's
 *   float-to-int8 conversion gives on x86 (nibble 0, int8 code 0), defined here without UB.
 */
int glmq_group_rtn(const float *w, int64_t len, int q4, int8_t *q, uint16_t *scale)
{
    float ga = 0.0f, gm = 0.0f;
    for (int64_t j = 0; j < len; j++)
        if (ga < fabsf(w[j])) {
            ga = fabsf(w[j]);
            gm = w[j];
        }
    const float d = q4 ? gm / -8.0f : ga / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale = glmq_f32_to_f16(d);
    if ((*scale & 0x7fffu) == 0x7c00u) return 0; /* |d| >= 65520 */
    for (int64_t j = 0; j < len; j++) {
        if (q4) { /* ggml: MIN(15, (int8_t)(w*id + 8.5f)) */
            const float v = w[j] * id + 8.5f;
            q[j] = (int8_t)((v >= 0.0f && v < 128.0f ? ((int)v < 15 ? (int)v : 15) : 0) - 8);
        } else { /* ggml: roundf(w*id), stored as int8 */
            const float v = roundf(w[j] * id);
            q[j] = (int8_t)(v >= -128.0f && v <= 127.0f ? (int)v : 0);
        }
    }
    return 1;
}

glmq_status glmq_quantize_row_grouped(glmq_type type, const float *w, int64_t n, void *out,
                                      uint16_t *scales, glmq_qstats *st, int64_t *bad_col)
{
    const int64_t g = glmq_type_group(type);
    const int q4 = glmq_type_codes(type) == GLMQ_TYPE_INT4;
    float amax;
    if (bad_col) *bad_col = -1;
    if (glmq_row_amax(w, n, &amax, bad_col) != GLMQ_OK) return GLMQ_E_VALUE;
    if (q4)
        memset(out, 0x88, (size_t)glmq_q4_row_bytes(n));
    else
        memset(out, 0, (size_t)glmq_q8_row_bytes(n));
    const int64_t ng = glmq_scales_per_row(type, n);
    glmq_qstats acc = {0, 0, 0};
    for (int64_t gi = 0; gi < ng; gi++) {
        const int64_t c0 = gi * g, c1 = c0 + g < n ? c0 + g : n;
        if (c0 >= n) { /* a padding group */
            scales[gi] = 0;
            continue;
        }
        int8_t q[GLMQ_Q4_BLOCK];
        if (!glmq_group_rtn(w + c0, c1 - c0, q4, q, &scales[gi])) return GLMQ_E_UNSUPPORTED;
        const float s = glmq_f16_to_f32(scales[gi]);
        for (int64_t j = c0; j < c1; j++) put_code((uint8_t *)out, q4, j, q[j - c0], s, w[j], &acc);
    }
    if (st) *st = acc;
    return GLMQ_OK;
}

void glmq_dequantize_row_grouped(glmq_type type, const void *in, const uint16_t *scales,
                                 int64_t n, float *out)
{
    const int64_t g = glmq_type_group(type);
    const int q4 = glmq_type_codes(type) == GLMQ_TYPE_INT4;
    for (int64_t j = 0; j < n; j++) {
        const float s = glmq_f16_to_f32(glmq_rd_le16(&scales[j / g]));
        const int q = q4 ? q4_get((const uint8_t *)in, j) : ((const int8_t *)in)[j];
        out[j] = (float)q * s;
    }
}

void glmq_dequantize_row_q8_ref(const void *in, uint16_t scale, int64_t n, float *out)
{
    const int8_t *q = (const int8_t *)in;
    float s = glmq_f16_to_f32(scale);
    for (int64_t j = 0; j < n; j++) out[j] = (float)q[j] * s;
}

void glmq_dequantize_row_q4_ref(const void *in, uint16_t scale, int64_t n, float *out)
{
    const uint8_t *b = (const uint8_t *)in;
    float s = glmq_f16_to_f32(scale);
    for (int64_t j = 0; j < n; j++) out[j] = (float)q4_get(b, j) * s;
}

void glmq_f32_to_f16_row_ref(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = glmq_f32_to_f16(src[i]);
}

void glmq_widen_row(const glmq_kernels *k, glmq_type type, const void *row,
                    const uint16_t *scales, int64_t cols, float *dst)
{
    if (type >= GLMQ_TYPE_GGML) {
        /* A tensor read from a .gguf: ggml block type (type - GLMQ_TYPE_GGML), decoded exactly as
         * ggml does. The status is ignored on purpose: the type and the row length were
         * validated when the model was opened (a type this decoder refuses never gets here). */
        (void)glmq_ggml_dequant_row((uint32_t)(type - GLMQ_TYPE_GGML), row, cols, dst, NULL);
        return;
    }
    switch (type) {
    case GLMQ_TYPE_F32: glmq_f32le_to_f32_row(row, dst, cols); break;
    case GLMQ_TYPE_F16: (k ? k->f16_to_f32 : glmq_f16_to_f32_row)(row, dst, cols); break;
    case GLMQ_TYPE_BF16: (k ? k->bf16_to_f32 : glmq_bf16_to_f32_row)(row, dst, cols); break;
    case GLMQ_TYPE_INT8: glmq_dequantize_row_q8_ref(row, glmq_rd_le16(scales), cols, dst); break;
    case GLMQ_TYPE_INT4: glmq_dequantize_row_q4_ref(row, glmq_rd_le16(scales), cols, dst); break;
    case GLMQ_TYPE_INT8_G32:
    case GLMQ_TYPE_INT8_G64:
    case GLMQ_TYPE_INT8_G128:
    case GLMQ_TYPE_INT4_G32:
    case GLMQ_TYPE_INT4_G64:
    case GLMQ_TYPE_INT4_G128: glmq_dequantize_row_grouped(type, row, scales, cols, dst); break;
    case GLMQ_TYPE_GGML: break; /* handled above */
    }
}

glmq_status glmq_tensor_row_f32(const glmq_tensor_info *t, int64_t row, float *dst, glmq_err *err)
{
    GLMQ_FAIL_IF(row < 0 || row >= t->rows, err, GLMQ_E_INVALID,
                 "tensor '%s': row %lld out of range", t->name, (long long)row);
    const uint8_t *r = (const uint8_t *)t->data + row * t->row_stride;
    const uint16_t *sc = t->scales ? t->scales + row * glmq_scales_per_row(t->type, t->cols) : NULL;
    glmq_widen_row(NULL, t->type, r, sc, t->cols, dst);
    return GLMQ_OK;
}
