/*
 * dot_neon_impl.h - the int8-activation (FAST_B32, FAST_ROW) INT4/INT8 kernels of quant/dot.h
 * for aarch64, written once and compiled twice: by dot_neon.c (baseline Advanced SIMD) and by
 * dot_neon_dotprod.c (-march=armv8.2-a+dotprod). The including file defines
 *
 *   NEON_FN(name)           the entry point name with the level suffix (name##_neon, ..._dotprod)
 *   neon_dot16(acc, q, x)   acc (int32x4) += the 16 products q[i] * x[i] (int8 x int8), in some
 *                           lane assignment: SMULL/SMLAL2 + SADALP, or one SDOT
 *
 * and includes <arm_neon.h> first. Integer sums are exact (dot.h §2: |q*xq| <= 128*127 so two
 * products fit an int16 before SADALP widens them; every lane sum is far below 2^31 for INT4,
 * and modular like the _ref uint32 sum for a foreign INT8 -128 code), so which lane holds which
 * product does not matter: both levels give the same integers.
 *
 * Order of the float steps (dot.h §3: it depends on cols only, never on r0/r1/ntok, so GEMM row
 * t == GEMV of token t and any row split over threads is bit-identical):
 *   FAST_B32  per (row, token) one float32x4 accumulator, lane b = 32-column block b of each
 *             128-column chunk: acc = fma(float(isum_b), d_b, acc) chunk after chunk; then
 *             y = hsum(acc) * s. Each lane sums cols/128 products, far inside 1e-5 sum|terms|.
 *   FAST_ROW  one int32 sum per (row, token), y = ((float)isum * d) * s: bit-identical to _ref.
 *
 * INT4 chunk layout (quant.h): 64 bytes, byte j holds column j (low nibble) and 64+j (high
 * nibble), offset 8. q4_chunk_codes() returns the 128 codes as 8 int8x16 vectors in column order:
 *
 *   q[0..3] = (bytes[16i..16i+15] & 15) - 8   columns   0..63   (blocks 0, 1)
 *   q[4..7] = (bytes[16i..16i+15] >> 4) - 8   columns  64..127  (blocks 2, 3)
 */
#ifndef NEON_FN
#error "define NEON_FN and neon_dot16, include <arm_neon.h>, then include quant/dot_neon_impl.h"
#endif

#include "quant/dot.h"
#include "quant/dot_walk.h"

/* The 128 codes of one INT4 chunk, in column order (diagram above). */
static inline void q4_chunk_codes(const uint8_t *p, int8x16_t q[8])
{
    const uint8x16_t m = vdupq_n_u8(0x0f);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int i = 0; i < 4; i++) {
        const uint8x16_t b = vld1q_u8(p + 16 * i);
        q[i] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, m)), eight);
        q[4 + i] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
    }
}

/* The codes of the INT8 chunk at p in column order; only the first 64 columns exist when
 * half is set (an INT8 row is padded to 64 columns only), the rest are zero codes. */
static inline void q8_chunk_codes(const int8_t *p, int half, int8x16_t q[8])
{
    for (int i = 0; i < 8; i++) q[i] = (i < 4 || !half) ? vld1q_s8(p + 16 * i) : vdupq_n_s8(0);
}

/* The codes of chunk ch of a row of nch chunks: INT4 when q4, else INT8 with a half last chunk
 * when half_last. */
static inline void row_chunk_codes(const uint8_t *row, int q4, int64_t ch, int64_t nch,
                                   int half_last, int8x16_t q[8])
{
    if (q4)
        q4_chunk_codes(row + 64 * ch, q);
    else
        q8_chunk_codes((const int8_t *)row + 128 * ch, half_last && ch == nch - 1, q);
}

/* The four 32-column block sums of one chunk: lane b = sum over block b of q * xq (exact). */
static inline int32x4_t chunk_isums(const int8x16_t q[8], const int8_t *xq)
{
    int32x4_t s[4];
    for (int b = 0; b < 4; b++) {
        int32x4_t acc = vdupq_n_s32(0);
        acc = neon_dot16(acc, q[2 * b], vld1q_s8(xq + 32 * b));
        acc = neon_dot16(acc, q[2 * b + 1], vld1q_s8(xq + 32 * b + 16));
        s[b] = acc;
    }
    /* pairwise adds: [s0 lanes, s1 lanes, s2, s3] -> [sum s0, sum s1, sum s2, sum s3] */
    return vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
}

/* All 128 products of one chunk added into acc (int32 lanes, exact/modular). */
static inline int32x4_t chunk_isum_all(int32x4_t acc, const int8x16_t q[8], const int8_t *xq)
{
    for (int i = 0; i < 8; i++) acc = neon_dot16(acc, q[i], vld1q_s8(xq + 16 * i));
    return acc;
}

static inline const uint8_t *neon_row(const glmq_dot_mat *w, int64_t r)
{
    return (const uint8_t *)w->data + (size_t)r * w->stride;
}

/* How a packed row is walked: nch chunks of 128 columns; q4: the INT4 layout; half: the last
 * chunk of an INT8 row has 64 columns (INT8 rows are padded to 64 columns only). */
typedef struct {
    int q4, half;
    int64_t nch;
} neon_shape;

static inline neon_shape neon_row_shape(const glmq_dot_mat *w, int q4)
{
    const int64_t pw = q4 ? glmq_q4_padded_cols(w->cols) : glmq_q8_padded_cols(w->cols);
    return (neon_shape){q4, !q4 && pw % GLMQ_DOT_CHUNK != 0,
                        (pw + GLMQ_DOT_CHUNK - 1) / GLMQ_DOT_CHUNK};
}

/* ---- FAST_B32 -------------------------------------------------------------------------------- */

/* One (row, token) FAST_B32 sum: chunks [0, nch), the last one half (INT8 rows padded to 64
 * columns only) when half_last; q4 selects the INT4 layout. */
static inline float b32_dot(const uint8_t *row, int q4, int64_t nch, int half_last,
                            const uint8_t *tok, int64_t pc)
{
    const int8_t *xq = (const int8_t *)tok;
    const float *db = (const float *)(const void *)(tok + pc);
    float32x4_t acc = vdupq_n_f32(0.0f);
    int8x16_t q[8];
    for (int64_t ch = 0; ch < nch; ch++) {
        row_chunk_codes(row, q4, ch, nch, half_last, q);
        const int32x4_t is = chunk_isums(q, xq + 128 * ch);
        acc = vfmaq_f32(acc, vcvtq_f32_s32(is), vld1q_f32(db + 4 * ch));
    }
    return vaddvq_f32(acc);
}

/* ---- FAST_ROW -------------------------------------------------------------------------------- */

/* One (row, token) FAST_ROW result: the exact (modular) int32 sum, then ((float)isum * d) * s. */
static inline float row_dot(const uint8_t *row, int q4, int64_t nch, int half_last,
                            const uint8_t *tok, int64_t pc, float s)
{
    const int8_t *xq = (const int8_t *)tok;
    int32x4_t acc = vdupq_n_s32(0);
    int8x16_t q[8];
    for (int64_t ch = 0; ch < nch; ch++) {
        row_chunk_codes(row, q4, ch, nch, half_last, q);
        acc = chunk_isum_all(acc, q, xq + 128 * ch);
    }
    return glmq_dot_row_result(vaddvq_u32(vreinterpretq_u32_s32(acc)), 0, tok, pc, s);
}

/* ---- entry points ---------------------------------------------------------------------------- */

/* FAST_B32 (per_row 0) or FAST_ROW (per_row 1) rows [r0, r1) of every token. */
static inline void fast_mm(const glmq_dot_mat *w, int q4, int per_row, int64_t r0, int64_t r1,
                           const glmq_dot_act *a, float *y, int64_t ldy)
{
    const neon_shape sh = neon_row_shape(w, q4);
    for (int64_t r = r0; r < r1; r++) {
        const float s = glmq_f16_to_f32(w->scales[r]);
        for (int64_t t = 0; t < a->ntok; t++) {
            const uint8_t *tok = glmq_dot_tok(a, t);
            y[t * ldy + r] = per_row
                                 ? row_dot(neon_row(w, r), q4, sh.nch, sh.half, tok, a->pcols, s)
                                 : b32_dot(neon_row(w, r), q4, sh.nch, sh.half, tok, a->pcols) * s;
        }
    }
}

void NEON_FN(glmq_q4_dot_q8b)(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                              const glmq_dot_act *a, float *y, int64_t ldy)
{
    fast_mm(w, 1, 0, r0, r1, a, y, ldy);
}

void NEON_FN(glmq_q8_dot_q8b)(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                              const glmq_dot_act *a, float *y, int64_t ldy)
{
    fast_mm(w, 0, 0, r0, r1, a, y, ldy);
}

void NEON_FN(glmq_q4_dot_q8r)(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                              const glmq_dot_act *a, float *y, int64_t ldy)
{
    fast_mm(w, 1, 1, r0, r1, a, y, ldy);
}

void NEON_FN(glmq_q8_dot_q8r)(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                              const glmq_dot_act *a, float *y, int64_t ldy)
{
    fast_mm(w, 0, 1, r0, r1, a, y, ldy);
}
