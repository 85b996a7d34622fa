/*
 * dot_ref.c - scalar reference matrix kernels and activation preparation (quant/dot.h).
 *
 * These functions ARE the semantics of dot.h §2 (STYLE 5): the AVX2 / AVX-512 kernels must
 * match them bit for bit where the math is integer or fixed (the prepared activations, the
 * FAST_ROW outputs) and within |simd - ref| <= 1e-5 * sum|terms| + 1e-6 where floats are summed
 * in another order (EXACT, FAST_B32, F16/BF16). They are written for clarity, one element at a
 * time, and sum in double so that they are also the most accurate version:
 *
 *   EXACT     y = (float)(s * sum_c (double)q_c * x_c)            (F16/BF16: s = 1, q = w)
 *   FAST_B32  y = (float)(s * sum_b (double)d_b * isum_b),  isum_b = sum_{c in b} q_c * xq_c
 *   FAST_ROW  y = ((float)isum * d) * s  in fp32,            isum = sum_c q_c * xq_c
 *
 * Invariants kept here and relied on by every level:
 *   - the activation scale of a block (glmq_dot_act_scale in quant/dot_walk.h, shared with the
 *     SIMD files) is computed by two fp32 divisions, never a reciprocal multiply, and flushes
 *     blocks with max |x| < 2^-100 (or NaN) to d = 0 / codes 0;
 *   - codes are clamp(rint(x * id)) with the clamp first and NaN mapped to -127, exactly what
 *     vmaxps(v, -127) / vminps(v, 127) / vcvtps2dq do;
 *   - all padding of a prepared token is zero, so kernels can run whole 128-column chunks;
 *   - integer sums are exact in int32 (dot.h §2 bounds); FAST_ROW never rounds before the
 *     final two multiplications, whose order is fixed.
 * This file is built at baseline and is the whole implementation on non-x86 machines.
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#include <math.h>

/* ---- helpers (the activation scale is glmq_dot_act_scale of quant/dot_walk.h) ---------------- */

/* Decode element c of a packed INT4 row (quant.h diagram): block c/128, byte (c%128)&63, low
 * nibble for the first 64 elements of the block, high nibble for the last 64; offset 8. */
static inline int q4_code(const uint8_t *row, int64_t c)
{
    int64_t k = c % GLMQ_Q4_BLOCK;
    uint8_t b = row[c / GLMQ_Q4_BLOCK * (GLMQ_Q4_BLOCK / 2) + (k & 63)];
    return (k < 64 ? (b & 0x0f) : (b >> 4)) - 8;
}

/* One activation code: clamp(rint(x * id), -127, 127); NaN -> -127 like vmaxps(NaN, -127). */
static inline int8_t act_code(float x, float id)
{
    float v = x * id;
    if (!(v >= -127.0f)) v = -127.0f;
    if (v > 127.0f) v = 127.0f;
    return (int8_t)nearbyintf(v);
}

static inline float fabs_nan0(float x)
{
    float a = fabsf(x);
    return a == a ? a : 0.0f; /* NaN does not raise the max (the SIMD max is unspecified) */
}

/* ---- preparation ----------------------------------------------------------------------------- */

void glmq_dot_prep_exact_ref(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    float *xf = (float *)(void *)tok;
    memcpy(xf, x, (size_t)cols * sizeof(float));
    for (int64_t c = cols; c < pcols; c++) xf[c] = 0.0f;
}

void glmq_dot_prep_b32_ref(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float *db = glmq_dot_b32_scales(tok, pcols);
    for (int64_t b0 = 0; b0 < pcols; b0 += GLMQ_DOT_ABLOCK) {
        float amax = 0.0f;
        for (int64_t c = b0; c < b0 + GLMQ_DOT_ABLOCK && c < cols; c++) {
            float a = fabs_nan0(x[c]);
            if (a > amax) amax = a;
        }
        float d, id;
        glmq_dot_act_scale(amax, &d, &id);
        for (int64_t c = b0; c < b0 + GLMQ_DOT_ABLOCK; c++)
            xq[c] = c < cols ? act_code(x[c], id) : 0;
        db[b0 / GLMQ_DOT_ABLOCK] = d;
    }
    glmq_dot_b32_finish(tok, pcols);
}

void glmq_dot_prep_row_ref(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; c++) {
        float a = fabs_nan0(x[c]);
        if (a > amax) amax = a;
    }
    float d, id;
    glmq_dot_act_scale(amax, &d, &id);
    int32_t sum = 0;
    for (int64_t c = 0; c < pcols; c++) {
        xq[c] = c < cols ? act_code(x[c], id) : 0;
        sum += xq[c];
    }
    memset(tok + pcols, 0, 64);
    memcpy(tok + pcols, &d, 4);
    memcpy(tok + pcols + 4, &sum, 4);
}

/* ---- EXACT ----------------------------------------------------------------------------------- */

static float row_scale(const glmq_dot_mat *w, int64_t r) { return glmq_f16_to_f32(w->scales[r]); }

static const uint8_t *row_ptr(const glmq_dot_mat *w, int64_t r)
{
    return (const uint8_t *)w->data + (size_t)r * w->stride;
}

void glmq_q4_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        const double s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            double acc = 0.0;
            for (int64_t c = 0; c < w->cols; c++) acc += (double)q4_code(row, c) * x[c];
            y[t * ldy + r] = (float)(s * acc);
        }
    }
}

void glmq_q8_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)row_ptr(w, r);
        const double s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            double acc = 0.0;
            for (int64_t c = 0; c < w->cols; c++) acc += (double)row[c] * x[c];
            y[t * ldy + r] = (float)(s * acc);
        }
    }
}

/* F16 / BF16 rows: little-endian 16-bit elements, possibly unaligned (stride cols*2). */
static void half_dot_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy, int bf16)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            double acc = 0.0;
            for (int64_t c = 0; c < w->cols; c++) {
                uint16_t h = glmq_rd_le16(row + 2 * c);
                float wv = bf16 ? glmq_bf16_to_f32(h) : glmq_f16_to_f32(h);
                acc += (double)wv * x[c];
            }
            y[t * ldy + r] = (float)acc;
        }
    }
}

void glmq_f16_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    half_dot_ref(w, r0, r1, a, y, ldy, 0);
}

void glmq_bf16_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                           const glmq_dot_act *a, float *y, int64_t ldy)
{
    half_dot_ref(w, r0, r1, a, y, ldy, 1);
}

/* ---- FAST_B32 -------------------------------------------------------------------------------- */

/*
 * Integer sum of one 32-column activation block b against row codes; code(c) is the weight
 * code of column c. Exact: |isum| <= 32 * 128 * 127 (an INT8 code may be -128 in a foreign
 * file; that is still exact).
 */
static int32_t q4_block_isum(const uint8_t *row, const int8_t *xq, int64_t b0)
{
    int32_t s = 0;
    for (int64_t c = b0; c < b0 + GLMQ_DOT_ABLOCK; c++) s += q4_code(row, c) * xq[c];
    return s;
}

static int32_t q8_block_isum(const int8_t *row, const int8_t *xq, int64_t b0)
{
    int32_t s = 0;
    for (int64_t c = b0; c < b0 + GLMQ_DOT_ABLOCK; c++) s += row[c] * xq[c];
    return s;
}

/* Blocks entirely in the INT8 padding beyond the stored row bytes are skipped (their codes
 * and activations are both zero); INT4 rows always cover the whole padded chunk. */
void glmq_q4_dot_q8b_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        const double s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            const int8_t *xq = (const int8_t *)tok;
            const float *db = (const float *)(const void *)(tok + pc);
            double acc = 0.0;
            for (int64_t b0 = 0; b0 < glmq_q4_padded_cols(w->cols); b0 += GLMQ_DOT_ABLOCK)
                acc += (double)db[b0 / GLMQ_DOT_ABLOCK] * q4_block_isum(row, xq, b0);
            y[t * ldy + r] = (float)(s * acc);
        }
    }
}

void glmq_q8_dot_q8b_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)row_ptr(w, r);
        const double s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            const int8_t *xq = (const int8_t *)tok;
            const float *db = (const float *)(const void *)(tok + pc);
            double acc = 0.0;
            for (int64_t b0 = 0; b0 < glmq_q8_padded_cols(w->cols); b0 += GLMQ_DOT_ABLOCK)
                acc += (double)db[b0 / GLMQ_DOT_ABLOCK] * q8_block_isum(row, xq, b0);
            y[t * ldy + r] = (float)(s * acc);
        }
    }
}

/* ---- FAST_ROW -------------------------------------------------------------------------------- */

static void row_header(const uint8_t *tok, int64_t pc, float *d)
{
    memcpy(d, tok + pc, 4);
}

void glmq_q4_dot_q8r_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        const float s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            const int8_t *xq = (const int8_t *)tok;
            float d;
            row_header(tok, a->pcols, &d);
            int32_t isum = 0; /* |isum| <= 8*127*cols < 2^31: exact */
            for (int64_t c = 0; c < w->cols; c++) isum += q4_code(row, c) * xq[c];
            y[t * ldy + r] = ((float)isum * d) * s;
        }
    }
}

void glmq_q8_dot_q8r_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                         float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)row_ptr(w, r);
        const float s = row_scale(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            const int8_t *xq = (const int8_t *)tok;
            float d;
            row_header(tok, a->pcols, &d);
            /* |isum| <= 128*127*cols: exact in int32 for codes in [-127,127] and
             * cols <= GLMQ_DOT_MAX_COLS; a foreign -128 code could wrap at the very limit, so
             * sum in uint32 (modular, no UB) like the SIMD lanes do. */
            uint32_t isum = 0;
            for (int64_t c = 0; c < w->cols; c++) isum += (uint32_t)(row[c] * xq[c]);
            y[t * ldy + r] = ((float)(int32_t)isum * d) * s;
        }
    }
}

/* ---- group-wise types (dot.h GLMQ_DOT_DECLARE_GROUPED) ----------------------------------------- */

/* Code of column c of a row of w's codes layout (INT4 nibbles or INT8 bytes). */
static inline int grouped_code(const glmq_dot_mat *w, const uint8_t *row, int64_t c)
{
    return glmq_type_codes(w->type) == GLMQ_TYPE_INT4 ? q4_code(row, c) : (int8_t)row[c];
}

/* Scale of column c of row r, fp32. */
static inline float grouped_scale(const glmq_dot_mat *w, int64_t r, int64_t c)
{
    return glmq_f16_to_f32(w->scales[r * w->spr + c / w->group]);
}

/* EXACT: y = sum_c (q_c * s_g) * x_c, the product exact in fp32, the sum in double. */
static void grouped_exact_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                              const glmq_dot_act *a, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            double acc = 0.0;
            for (int64_t c = 0; c < w->cols; c++)
                acc += (double)((float)grouped_code(w, row, c) * grouped_scale(w, r, c)) * x[c];
            y[t * ldy + r] = (float)acc;
        }
    }
}

/* FAST_B32: y = sum_b (d_b * s_g(b)) * isum_b in double, over the 32-column blocks that hold
 * stored columns (a group is a whole number of blocks; padding blocks have zero codes). */
static void grouped_b32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                            float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const int64_t pw = glmq_type_codes(w->type) == GLMQ_TYPE_INT4 ? glmq_q4_padded_cols(w->cols)
                                                                  : glmq_q8_padded_cols(w->cols);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = row_ptr(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            const int8_t *xq = (const int8_t *)tok;
            const float *db = (const float *)(const void *)(tok + pc);
            double acc = 0.0;
            for (int64_t b0 = 0; b0 < pw; b0 += GLMQ_DOT_ABLOCK) {
                int32_t isum = 0;
                for (int64_t c = b0; c < b0 + GLMQ_DOT_ABLOCK; c++)
                    isum += grouped_code(w, row, c) * xq[c];
                acc += (double)db[b0 / GLMQ_DOT_ABLOCK] * grouped_scale(w, r, b0) * isum;
            }
            y[t * ldy + r] = (float)acc;
        }
    }
}

void glmq_q4g_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    grouped_exact_ref(w, r0, r1, a, y, ldy);
}

void glmq_q8g_dot_f32_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    grouped_exact_ref(w, r0, r1, a, y, ldy);
}

void glmq_q4g_dot_q8b_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    grouped_b32_ref(w, r0, r1, a, y, ldy);
}

void glmq_q8g_dot_q8b_ref(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    grouped_b32_ref(w, r0, r1, a, y, ldy);
}

/* ---- bandwidth probe ------------------------------------------------------------------------- */

double glmq_dot_sum_f32_ref(const float *p, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += p[i + k];
    double s = 0;
    for (; i < n; i++) s += p[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}
