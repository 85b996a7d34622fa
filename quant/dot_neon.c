/*
 * dot_neon.c - the baseline aarch64 level (GLMQ_CPU_NEON) of the matrix kernels (quant/dot.h),
 * Advanced SIMD only, so it runs on every ARMv8-A CPU: the activation preparation, the EXACT
 * INT4 / INT8 / F16 / BF16 kernels, the sum probe, and (through quant/dot_neon_impl.h) the
 * FAST_B32 / FAST_ROW kernels with SMULL + SADALP. dot_neon_dotprod.c compiles the same FAST
 * kernels with SDOT for the GLMQ_CPU_DOTPROD level, which reuses everything else from here.
 *
 * Contracts kept (dot_ref.c is the truth; tests/check_dot.c compares every level with it):
 *   - prepared activations are byte-identical to _ref's: amax is an exact max (FMAXNM ignores a
 *     NaN like fabs_nan0 does), the scale is glmq_dot_act_scale (two fp32 divisions), and a
 *     code is clamp(x * id) with NaN -> -127 (a compare + select, since FMAX would keep the NaN)
 *     rounded by FCVTNS, ties to even like nearbyintf; every padding byte is zero;
 *   - EXACT sums in fp32 lanes in two levels: a fresh 16-lane partial per 128-column chunk
 *     (4 accumulators x 4 lanes, so a lane adds 8 products per chunk) added into a running
 *     16-lane sum, then one fixed horizontal sum and the row scale: within
 *     1e-5 * sum|terms| + 1e-6 of _ref;
 *   - each (row, token) output is one accumulator chain whose order depends on cols only, so
 *     GEMM == GEMV bit for bit and row splits over threads are bit-identical (dot.h §3).
 * The kernels walk rows, then tokens, one (row, token) at a time: simple and correct; speed is
 * not tuned (it cannot be measured under the emulator the project tests ARM with).
 * Built only for aarch64 (CMakeLists.txt, GLMQ_HAVE_ARM64), at baseline flags.
 */
#include <arm_neon.h>

#define NEON_FN(name) name##_neon

/* acc += 16 int8 products: SMULL/SMLAL2 into int16 (two products <= 2*128*127 fit), then
 * SADALP adds neighbouring int16 pairs into the int32 lanes. */
static inline int32x4_t neon_dot16(int32x4_t acc, int8x16_t q, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(q), vget_low_s8(x));
    p = vmlal_high_s8(p, q, x);
    return vpadalq_s16(acc, p);
}

#include "quant/dot_neon.h"
#include "quant/dot_neon_impl.h"

#include <math.h>

/* ---- preparation ----------------------------------------------------------------------------- */

/* One activation code as _ref's act_code: clamp(rint(x * id), -127, 127), NaN -> -127. */
static inline int8_t act_code1(float x, float id)
{
    float v = x * id;
    if (!(v >= -127.0f)) v = -127.0f;
    if (v > 127.0f) v = 127.0f;
    return (int8_t)nearbyintf(v);
}

static inline float fabs_nan0(float x)
{
    const float a = fabsf(x);
    return a == a ? a : 0.0f;
}

/* The codes of 16 activations (as act_code1, lane by lane). */
static inline int8x16_t act_codes16(const float *x, float32x4_t id)
{
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    int32x4_t v[4];
    for (int i = 0; i < 4; i++) {
        float32x4_t f = vmulq_f32(vld1q_f32(x + 4 * i), id);
        f = vbslq_f32(vcgeq_f32(f, lo), f, lo); /* NaN compares false -> -127 */
        f = vminq_f32(f, hi);
        v[i] = vcvtnq_s32_f32(f); /* round to nearest, ties to even */
    }
    const int16x8_t h0 = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
    const int16x8_t h1 = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
    return vcombine_s8(vmovn_s16(h0), vmovn_s16(h1));
}

/* max |x[c]| for c in [0, n), NaN ignored (FMAXNM returns the number of a NaN pair). */
static float amax_of(const float *x, int64_t n)
{
    float32x4_t m = vdupq_n_f32(0.0f);
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + c)));
    float amax = vmaxnmvq_f32(m);
    for (; c < n; c++) {
        const float a = fabs_nan0(x[c]);
        if (a > amax) amax = a;
    }
    return amax;
}

void glmq_dot_prep_exact_neon(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    memcpy(tok, x, (size_t)cols * sizeof(float));
    memset(tok + (size_t)cols * sizeof(float), 0, (size_t)(pcols - cols) * sizeof(float));
}

void glmq_dot_prep_b32_neon(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float *db = glmq_dot_b32_scales(tok, pcols);
    for (int64_t b0 = 0; b0 < pcols; b0 += GLMQ_DOT_ABLOCK) {
        /* stored columns of the block: 32, the end of x, or 0 (all padding) */
        const int64_t left = cols > b0 ? cols - b0 : 0;
        const int64_t n = left < GLMQ_DOT_ABLOCK ? left : GLMQ_DOT_ABLOCK;
        float d, id;
        glmq_dot_act_scale(amax_of(x + b0, n), &d, &id);
        if (n == GLMQ_DOT_ABLOCK) {
            const float32x4_t vid = vdupq_n_f32(id);
            vst1q_s8(xq + b0, act_codes16(x + b0, vid));
            vst1q_s8(xq + b0 + 16, act_codes16(x + b0 + 16, vid));
        } else { /* the block holding the end of x, or all padding */
            for (int64_t c = 0; c < GLMQ_DOT_ABLOCK; c++)
                xq[b0 + c] = c < n ? act_code1(x[b0 + c], id) : 0;
        }
        db[b0 / GLMQ_DOT_ABLOCK] = d;
    }
    glmq_dot_b32_finish(tok, pcols);
}

void glmq_dot_prep_row_neon(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float d, id;
    glmq_dot_act_scale(amax_of(x, cols), &d, &id);
    const float32x4_t vid = vdupq_n_f32(id);
    int32_t sum = 0; /* |sum| <= 127 * GLMQ_DOT_MAX_COLS: exact */
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        const int8x16_t q = act_codes16(x + c, vid);
        vst1q_s8(xq + c, q);
        sum += vaddlvq_s8(q);
    }
    for (; c < pcols; c++) {
        xq[c] = c < cols ? act_code1(x[c], id) : 0;
        sum += xq[c];
    }
    glmq_dot_row_header_put(tok, pcols, d, sum);
}

/* ---- EXACT ----------------------------------------------------------------------------------- */

/* part[0..3] += 16 codes (widened int8 -> int16 -> int32 -> fp32, exact) times x[0..16). */
static inline void fma16(float32x4_t part[4], int8x16_t q, const float *x)
{
    const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    part[0] = vfmaq_f32(part[0], vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x));
    part[1] = vfmaq_f32(part[1], vcvtq_f32_s32(vmovl_high_s16(lo)), vld1q_f32(x + 4));
    part[2] = vfmaq_f32(part[2], vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + 8));
    part[3] = vfmaq_f32(part[3], vcvtq_f32_s32(vmovl_high_s16(hi)), vld1q_f32(x + 12));
}

/* The fixed end of every EXACT chain: run[] added pairwise, then across the lanes. */
static inline float hsum16(const float32x4_t run[4])
{
    return vaddvq_f32(vaddq_f32(vaddq_f32(run[0], run[1]), vaddq_f32(run[2], run[3])));
}

/* One (row, token) EXACT sum over chunks [0, nch) of INT4 or INT8 codes (half_last: the last
 * INT8 chunk holds 64 stored columns). */
static inline float exact_dot(const uint8_t *row, int q4, int64_t nch, int half_last,
                              const float *x)
{
    float32x4_t run[4];
    for (int k = 0; k < 4; k++) run[k] = vdupq_n_f32(0.0f);
    int8x16_t q[8];
    for (int64_t ch = 0; ch < nch; ch++) {
        const int nq = half_last && ch == nch - 1 ? 4 : 8;
        if (q4)
            q4_chunk_codes(row + 64 * ch, q);
        else
            q8_chunk_codes((const int8_t *)row + 128 * ch, nq == 4, q);
        float32x4_t part[4];
        for (int k = 0; k < 4; k++) part[k] = vdupq_n_f32(0.0f);
        for (int i = 0; i < nq; i++) fma16(part, q[i], x + 128 * ch + 16 * i);
        for (int k = 0; k < 4; k++) run[k] = vaddq_f32(run[k], part[k]);
    }
    return hsum16(run);
}

static void exact_mm(const glmq_dot_mat *w, int q4, int64_t r0, int64_t r1,
                     const glmq_dot_act *a, float *y, int64_t ldy)
{
    const neon_shape sh = neon_row_shape(w, q4);
    for (int64_t r = r0; r < r1; r++) {
        const float s = glmq_f16_to_f32(w->scales[r]);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            y[t * ldy + r] = exact_dot(neon_row(w, r), q4, sh.nch, sh.half, x) * s;
        }
    }
}

void glmq_q4_dot_f32_neon(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    exact_mm(w, 1, r0, r1, a, y, ldy);
}

void glmq_q8_dot_f32_neon(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy)
{
    exact_mm(w, 0, r0, r1, a, y, ldy);
}

/* 8 half-precision weights at p (little-endian, any alignment) as two fp32 vectors (exact:
 * FCVTL for F16, a 16-bit left shift for BF16). */
static inline void half8(const uint8_t *p, int bf16, float32x4_t *lo, float32x4_t *hi)
{
    const uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(p));
    if (bf16) {
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    } else {
        *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
        *hi = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
    }
}

/*
 * F16 / BF16 rows (cols * 2 bytes, no padding, so nothing past column cols is read): per
 * 128-column chunk a fresh 8-lane partial (2 accumulators, 16 products per lane) added into the
 * running sum; the last cols % 8 columns go into one scalar fp32 sum added at the end.
 */
static void half_dot_neon(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                          float *y, int64_t ldy, int bf16)
{
    const int64_t cols = w->cols, cv = cols / 8 * 8;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = neon_row(w, r);
        for (int64_t t = 0; t < a->ntok; t++) {
            const float *x = (const float *)(const void *)glmq_dot_tok(a, t);
            float32x4_t run0 = vdupq_n_f32(0.0f), run1 = run0;
            for (int64_t c0 = 0; c0 < cv; c0 += GLMQ_DOT_CHUNK) {
                const int64_t end = c0 + GLMQ_DOT_CHUNK < cv ? c0 + GLMQ_DOT_CHUNK : cv;
                float32x4_t p0 = vdupq_n_f32(0.0f), p1 = p0, lo, hi;
                for (int64_t c = c0; c < end; c += 8) {
                    half8(row + 2 * c, bf16, &lo, &hi);
                    p0 = vfmaq_f32(p0, lo, vld1q_f32(x + c));
                    p1 = vfmaq_f32(p1, hi, vld1q_f32(x + c + 4));
                }
                run0 = vaddq_f32(run0, p0);
                run1 = vaddq_f32(run1, p1);
            }
            float tail = 0.0f;
            for (int64_t c = cv; c < cols; c++) {
                const uint16_t h = glmq_rd_le16(row + 2 * c);
                tail += (bf16 ? glmq_bf16_to_f32(h) : glmq_f16_to_f32(h)) * x[c];
            }
            y[t * ldy + r] = vaddvq_f32(vaddq_f32(run0, run1)) + tail;
        }
    }
}

void glmq_f16_dot_f32_neon(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,
                           float *y, int64_t ldy)
{
    half_dot_neon(w, r0, r1, a, y, ldy, 0);
}

void glmq_bf16_dot_f32_neon(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                            const glmq_dot_act *a, float *y, int64_t ldy)
{
    half_dot_neon(w, r0, r1, a, y, ldy, 1);
}

/* ---- bandwidth probe ------------------------------------------------------------------------- */

double glmq_dot_sum_f32_neon(const float *p, int64_t n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vaddq_f32(a0, vld1q_f32(p + i));
        a1 = vaddq_f32(a1, vld1q_f32(p + i + 4));
        a2 = vaddq_f32(a2, vld1q_f32(p + i + 8));
        a3 = vaddq_f32(a3, vld1q_f32(p + i + 12));
    }
    double s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += p[i];
    return s;
}
