/*
 * attn_avx2.c - AVX2 + FMA attention kernel (quant/attn.h): the 8-lane instantiation of
 * quant/attn_x86_impl.h (which describes the algorithm), defining glmq_att_head_avx2 and
 * glmq_att_group_avx2. Reached through the quant/dispatch.c tables only when cpu.c found AVX2
 * usable.
 *
 * The vector abstraction for AVX2: ymm = 8 x fp32; a lane predicate is a vector of 0 / -1
 * dwords, as vmaskmovps takes it (masked-off lanes never fault), and predicated arithmetic is
 * an and/blend with it. Score blocks of 8 keys reduce by a 3-level shuffle/add tree.
 */
#include "quant/attn.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

#define AT_ISA avx2
#define AT_W 8
#define AT_GV 4
#define AT_GV2 2
#define AT_GH 2
#define AT_REG(x) __asm__("" : "+x"(x))

typedef __m256 at_f;
typedef __m256i at_m;

/* vmaskmovps mask of the first n of 8 lanes (n clamped to 0..8). */
AI at_m at_lanes(int64_t n)
{
    const int32_t c = n >= 8 ? 8 : n <= 0 ? 0 : (int32_t)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
AI at_m at_full(void) { return _mm256_set1_epi32(-1); }
AI at_m at_none(void) { return _mm256_setzero_si256(); }

AI at_f at_load_m(const float *p, at_m m) { return _mm256_maskload_ps(p, m); }
AI void at_store_m(float *p, at_m m, at_f v) { _mm256_maskstore_ps(p, m, v); }
AI at_f at_loadu(const float *p) { return _mm256_loadu_ps(p); }
AI void at_storeu(float *p, at_f v) { _mm256_storeu_ps(p, v); }
AI at_f at_set1(float x) { return _mm256_set1_ps(x); }
AI at_f at_zero(void) { return _mm256_setzero_ps(); }
AI at_f at_add(at_f a, at_f b) { return _mm256_add_ps(a, b); }
AI at_f at_sub(at_f a, at_f b) { return _mm256_sub_ps(a, b); }
AI at_f at_mul(at_f a, at_f b) { return _mm256_mul_ps(a, b); }
AI at_f at_min(at_f a, at_f b) { return _mm256_min_ps(a, b); }
AI at_f at_fmadd(at_f a, at_f b, at_f c) { return _mm256_fmadd_ps(a, b, c); }
AI at_f at_fnmadd(at_f a, at_f b, at_f c) { return _mm256_fnmadd_ps(a, b, c); }

/*
 * The shuffle/add tree in two steps, so that a caller may reduce 4 keys as soon as their
 * accumulators are done (the group kernel's two-head score blocks): at_tree4 turns acc[0..3]
 * into u (per 128-bit half, the half-sums of the 4 keys in order), at_tree_u combines the
 * AT_W/4 = 2 u of one block. at_tree(acc) = at_tree_u({at_tree4(acc), at_tree4(acc + 4)}):
 * the same operations as one tree (unpack, shuffle, 128-bit halves).
 */
AI at_f at_tree4(const at_f *acc)
{
    const __m256 t0 = _mm256_add_ps(_mm256_unpacklo_ps(acc[0], acc[1]),
                                    _mm256_unpackhi_ps(acc[0], acc[1]));
    const __m256 t1 = _mm256_add_ps(_mm256_unpacklo_ps(acc[2], acc[3]),
                                    _mm256_unpackhi_ps(acc[2], acc[3]));
    return _mm256_add_ps(_mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
}
AI at_f at_tree_u(const at_f *u)
{
    return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20),
                         _mm256_permute2f128_ps(u[0], u[1], 0x31));
}
/* Lane j of the result = the sum of the 8 lanes of acc[j]. */
AI at_f at_tree(const at_f *acc)
{
    const at_f u[2] = {at_tree4(acc), at_tree4(acc + 4)};
    return at_tree_u(u);
}

AI float at_hmax(at_f v)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AI float at_hsum(at_f v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AI at_f at_max_where(at_f m, at_m valid, at_f sc)
{
    const __m256 take =
        _mm256_and_ps(_mm256_castsi256_ps(valid), _mm256_cmp_ps(sc, sc, _CMP_ORD_Q));
    return _mm256_blendv_ps(m, _mm256_max_ps(m, sc), take);
}
AI at_f at_keep(at_m valid, at_f e) { return _mm256_and_ps(e, _mm256_castsi256_ps(valid)); }

AI at_m at_ge(at_f x, at_f c) { return _mm256_castps_si256(_mm256_cmp_ps(x, c, _CMP_GE_OQ)); }
AI at_f at_maskz_mul(at_m ok, at_f a, at_f b)
{
    return _mm256_and_ps(_mm256_castsi256_ps(ok), _mm256_mul_ps(a, b));
}
AI at_f at_rint(at_f x)
{
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
AI at_f at_pow2i(at_f m)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23));
}

#include "quant/attn_x86_impl.h"
