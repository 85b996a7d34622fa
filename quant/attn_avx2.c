/*
 * attn_avx2.c - AVX2 + FMA attention kernel (quant/attn.h), reached through dot_dispatch.c only
 * when cpu.c found AVX2 usable. The structure of attn_avx512.c at 8 lanes: 8 keys per score
 * block reduced by a 3-level shuffle/add tree, the Cephes exp 8 lanes at a time, up to 8
 * vectors (64 columns) of context per pass with two accumulator sets. Column tails use
 * vmaskmovps (masked-off lanes never fault).
 */
#include "quant/attn.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* vmaskmovps mask of the first n of 8 lanes (n clamped to 0..8). */
AI __m256i lanes8(int64_t n)
{
    const int32_t c = n >= 8 ? 8 : n <= 0 ? 0 : (int32_t)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lane j of the result = the sum of the 8 lanes of acc[j] (as tree16 in attn_avx512.c). */
AI __m256 tree8(const __m256 *acc)
{
    __m256 t[4], u[2];
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                             _mm256_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        u[i] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20),
                         _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

AI float hmax8(__m256 v)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AI float hsum8(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AI __m256 exp8(__m256 x)
{
    const __m256 ok = _mm256_cmp_ps(x, _mm256_set1_ps(GLMQ_ATT_EXP_MIN), _CMP_GE_OQ);
    x = _mm256_min_ps(x, _mm256_setzero_ps());
    const __m256 m = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(GLMQ_ATT_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(m, _mm256_set1_ps(GLMQ_ATT_C1), x);
    r = _mm256_fnmadd_ps(m, _mm256_set1_ps(GLMQ_ATT_C2), r);
    __m256 p = _mm256_set1_ps(GLMQ_ATT_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GLMQ_ATT_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GLMQ_ATT_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GLMQ_ATT_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GLMQ_ATT_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(GLMQ_ATT_P5));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(ok, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

void glmq_att_head_avx2(const float *q, const float *k, const float *v, int64_t ld, int64_t d,
                        int64_t n, float scale, float *s, float *out)
{
    const int64_t dv = (d + 7) / 8;
    const __m256i full = _mm256_set1_epi32(-1), dlast = lanes8(d - 8 * (dv - 1));

    /* 1. scores and their max */
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (int64_t u0 = 0; u0 < n; u0 += 8) {
        const float *kr[8];
        for (int j = 0; j < 8; j++) kr[j] = k + (u0 + j < n ? u0 + j : n - 1) * ld;
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (int64_t i = 0; i < dv; i++) {
            const __m256i m = i == dv - 1 ? dlast : full;
            const __m256 qv = _mm256_maskload_ps(q + 8 * i, m);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kr[j] + 8 * i, m), acc[j]);
        }
        const __m256i valid = lanes8(n - u0);
        const __m256 sc = _mm256_mul_ps(tree8(acc), _mm256_set1_ps(scale));
        _mm256_maskstore_ps(s + u0, valid, sc);
        /* NaN scores never enter the max (as in _ref: their exp is then 0) */
        const __m256 take =
            _mm256_and_ps(_mm256_castsi256_ps(valid), _mm256_cmp_ps(sc, sc, _CMP_ORD_Q));
        vmax = _mm256_blendv_ps(vmax, _mm256_max_ps(vmax, sc), take);
    }
    const __m256 mx = _mm256_set1_ps(hmax8(vmax));

    /* 2. e_u = exp(s_u - max), Z */
    __m256 vz = _mm256_setzero_ps();
    for (int64_t u0 = 0; u0 < n; u0 += 8) {
        const __m256i valid = lanes8(n - u0);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(s + u0, valid), mx));
        _mm256_maskstore_ps(s + u0, valid, e);
        vz = _mm256_add_ps(vz, _mm256_and_ps(e, _mm256_castsi256_ps(valid)));
    }
    const __m256 iz = _mm256_set1_ps(1.0f / hsum8(vz));

    /* 3. out = (sum_u e_u v_u) / Z, 8 vectors of columns per pass */
    for (int64_t c0 = 0; c0 < dv; c0 += 8) {
        const int nvec = dv - c0 < 8 ? (int)(dv - c0) : 8;
        __m256 a0[8], a1[8];
        __m256i mk[8];
        for (int i = 0; i < 8; i++) {
            a0[i] = a1[i] = _mm256_setzero_ps();
            mk[i] = i >= nvec ? _mm256_setzero_si256() : c0 + i == dv - 1 ? dlast : full;
        }
        const float *vc = v + 8 * c0;
        int64_t u = 0;
        for (; u + 2 <= n; u += 2) {
            const __m256 p0 = _mm256_set1_ps(s[u]), p1 = _mm256_set1_ps(s[u + 1]);
            const float *v0 = vc + u * ld, *v1 = v0 + ld;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                if (i >= nvec) break;
                a0[i] = _mm256_fmadd_ps(p0, _mm256_maskload_ps(v0 + 8 * i, mk[i]), a0[i]);
                a1[i] = _mm256_fmadd_ps(p1, _mm256_maskload_ps(v1 + 8 * i, mk[i]), a1[i]);
            }
        }
        if (u < n) {
            const __m256 p0 = _mm256_set1_ps(s[u]);
            const float *v0 = vc + u * ld;
            for (int i = 0; i < nvec; i++)
                a0[i] = _mm256_fmadd_ps(p0, _mm256_maskload_ps(v0 + 8 * i, mk[i]), a0[i]);
        }
        for (int i = 0; i < nvec; i++)
            _mm256_maskstore_ps(out + 8 * (c0 + i), mk[i],
                                _mm256_mul_ps(_mm256_add_ps(a0[i], a1[i]), iz));
    }
}
