/*
 * attn_avx512.c - AVX-512 attention kernel (quant/attn.h), reached through dot_dispatch.c only
 * when cpu.c found AVX-512 usable.
 *
 * Scores: 16 keys at a time. Each key gets its own zmm accumulator over the d columns (16 per
 * FMA, the last vector masked), then a 4-level shuffle/add tree turns the 16 accumulators into
 * one vector whose lane j is the score of key j: one store and one max per 16 keys instead of
 * 16 horizontal sums. A partial last block repeats key n-1 in its unused slots and stores
 * under a mask. Softmax: the Cephes polynomial 16 lanes at a time. Context: up to 8 vectors
 * (128 columns) of output accumulate in registers over all keys, two keys per step with
 * separate accumulator sets, so the FMA chains are 16 deep.
 */
#include "quant/attn.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

AI __mmask16 lanes16(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* a, b -> per 128-bit lane (a0+a2, b0+b2, a1+a3, b1+b3)... reduced pairwise: see tree16. */
AI __m512 pair(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

/*
 * Lane j of the result = the sum of the 16 lanes of acc[j].
 *   level 1: t = pair(a, b): per 128-bit lane i, (a[i0]+a[i2], b[i0]+b[i2], a[i1]+a[i3],
 *            b[i1]+b[i3]);
 *   level 2: shuffle_ps picks elements {0,1} / {2,3} of two such t and adds: per 128-bit lane
 *            i, the lane-i sums of 4 keys (a, b, c, d) in order;
 *   levels 3-4: shuffle_f32x4 pairs the 128-bit lanes of two vectors and adds, twice, so
 *            128-bit lane m ends holding the full sums of keys 4m..4m+3.
 */
AI __m512 tree16(const __m512 *acc)
{
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) t[i] = pair(acc[2 * i], acc[2 * i + 1]);
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(
            _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

AI __m512 exp16(__m512 x)
{
    const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(GLMQ_ATT_EXP_MIN), _CMP_GE_OQ);
    x = _mm512_min_ps(x, _mm512_setzero_ps());
    const __m512 m = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(GLMQ_ATT_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(m, _mm512_set1_ps(GLMQ_ATT_C1), x);
    r = _mm512_fnmadd_ps(m, _mm512_set1_ps(GLMQ_ATT_C2), r);
    __m512 p = _mm512_set1_ps(GLMQ_ATT_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GLMQ_ATT_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GLMQ_ATT_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GLMQ_ATT_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GLMQ_ATT_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(GLMQ_ATT_P5));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(m), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(ok, p, _mm512_castsi512_ps(e));
}

void glmq_att_head_avx512(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                          int64_t n, float scale, float *s, float *out)
{
    const int64_t dv = (d + 15) / 16;
    const __mmask16 dlast = lanes16(d - 16 * (dv - 1));

    /* 1. scores and their max */
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t u0 = 0; u0 < n; u0 += 16) {
        const float *kr[16];
        for (int j = 0; j < 16; j++) kr[j] = k + (u0 + j < n ? u0 + j : n - 1) * ld;
        __m512 acc[16];
        for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
        for (int64_t i = 0; i < dv; i++) {
            const __mmask16 m = i == dv - 1 ? dlast : (__mmask16)0xffff;
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + 16 * i);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                acc[j] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, kr[j] + 16 * i), acc[j]);
        }
        const __mmask16 valid = lanes16(n - u0);
        const __m512 sc = _mm512_mul_ps(tree16(acc), _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(s + u0, valid, sc);
        /* NaN scores never enter the max (as in _ref: their exp is then 0) */
        const __mmask16 ord = _mm512_cmp_ps_mask(sc, sc, _CMP_ORD_Q);
        vmax = _mm512_mask_max_ps(vmax, valid & ord, vmax, sc);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));

    /* 2. e_u = exp(s_u - max), Z */
    __m512 vz = _mm512_setzero_ps();
    for (int64_t u0 = 0; u0 < n; u0 += 16) {
        const __mmask16 valid = lanes16(n - u0);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(valid, s + u0), mx));
        _mm512_mask_storeu_ps(s + u0, valid, e);
        vz = _mm512_add_ps(vz, _mm512_maskz_mov_ps(valid, e));
    }
    const __m512 iz = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vz));

    /* 3. out = (sum_u e_u v_u) / Z, 8 vectors of columns per pass */
    for (int64_t c0 = 0; c0 < dv; c0 += 8) {
        const int nvec = dv - c0 < 8 ? (int)(dv - c0) : 8;
        __m512 a0[8], a1[8];
        __mmask16 mk[8];
        for (int i = 0; i < 8; i++) {
            a0[i] = a1[i] = _mm512_setzero_ps();
            mk[i] = i >= nvec ? 0 : c0 + i == dv - 1 ? dlast : (__mmask16)0xffff;
        }
        const float *vc = v + 16 * c0;
        int64_t u = 0;
        for (; u + 2 <= n; u += 2) {
            const __m512 p0 = _mm512_set1_ps(s[u]), p1 = _mm512_set1_ps(s[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                if (i >= nvec) break;
                a0[i] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(mk[i], v0 + 16 * i), a0[i]);
                a1[i] = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(mk[i], v1 + 16 * i), a1[i]);
            }
        }
        if (u < n) {
            const __m512 p0 = _mm512_set1_ps(s[u]);
            const float *v0 = vc + u * ld;
            for (int i = 0; i < nvec; i++)
                a0[i] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(mk[i], v0 + 16 * i), a0[i]);
        }
        for (int i = 0; i < nvec; i++)
            _mm512_mask_storeu_ps(out + 16 * (c0 + i), mk[i],
                                  _mm512_mul_ps(_mm512_add_ps(a0[i], a1[i]), iz));
    }
}
