/*
 * attn_avx512.c - AVX-512 attention kernel (quant/attn.h): the 16-lane instantiation of
 * quant/attn_x86_impl.h (which describes the algorithm), defining glmq_att_head_avx512 and
 * glmq_att_group_avx512. Reached through the quant/dispatch.c tables only when cpu.c found
 * AVX-512 usable.
 *
 * The vector abstraction for AVX-512: zmm = 16 x fp32; a lane predicate is a __mmask16, so
 * tails are masked loads/stores and predicated arithmetic is a masked instruction. Score blocks
 * of 16 keys reduce by a 4-level shuffle/add tree (at_tree).
 */
#include "quant/attn.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

#define AT_ISA avx512
#define AT_W 16
#define AT_GV 8
#define AT_GV2 4
#define AT_GH 4
#if defined(GLMQ_EMULATE_AVX512)
#define AT_REG(x) ((void)0)
#else
#define AT_REG(x) __asm__("" : "+v"(x))
#endif

typedef __m512 at_f;
typedef __mmask16 at_m;

AI at_m at_lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}
AI at_m at_full(void) { return (__mmask16)0xffff; }
AI at_m at_none(void) { return 0; }

AI at_f at_load_m(const float *p, at_m m) { return _mm512_maskz_loadu_ps(m, p); }
AI void at_store_m(float *p, at_m m, at_f v) { _mm512_mask_storeu_ps(p, m, v); }
AI at_f at_loadu(const float *p) { return _mm512_loadu_ps(p); }
AI void at_storeu(float *p, at_f v) { _mm512_storeu_ps(p, v); }
AI at_f at_set1(float x) { return _mm512_set1_ps(x); }
AI at_f at_zero(void) { return _mm512_setzero_ps(); }
AI at_f at_add(at_f a, at_f b) { return _mm512_add_ps(a, b); }
AI at_f at_sub(at_f a, at_f b) { return _mm512_sub_ps(a, b); }
AI at_f at_mul(at_f a, at_f b) { return _mm512_mul_ps(a, b); }
AI at_f at_min(at_f a, at_f b) { return _mm512_min_ps(a, b); }
AI at_f at_fmadd(at_f a, at_f b, at_f c) { return _mm512_fmadd_ps(a, b, c); }
AI at_f at_fnmadd(at_f a, at_f b, at_f c) { return _mm512_fnmadd_ps(a, b, c); }

/* a, b -> per 128-bit lane (a0+a2, b0+b2, a1+a3, b1+b3)... reduced pairwise: see at_tree. */
AI __m512 pair(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

/*
 * Lane j of the result = the sum of the 16 lanes of acc[j].
 *   level 1: t = pair(a, b): per 128-bit lane i, (a[i0]+a[i2], b[i0]+b[i2], a[i1]+a[i3],
 *            b[i1]+b[i3]);
 *   level 2: shuffle_ps picks elements {0,1} / {2,3} of two such t and adds: per 128-bit lane
 *            i, the lane-i sums of 4 keys (a, b, c, d) in order (at_tree4: acc[0..3] -> u);
 *   levels 3-4: shuffle_f32x4 pairs the 128-bit lanes of two vectors and adds, twice, so
 *            128-bit lane m ends holding the full sums of keys 4m..4m+3 (at_tree_u: the 4 u
 *            of a block -> the result).
 * at_tree(acc) = at_tree_u(at_tree4 of acc, acc + 4, acc + 8, acc + 12): the group kernel's
 * two-head score blocks reduce 4 keys at a time with the same operations.
 */
AI at_f at_tree4(const at_f *acc)
{
    const __m512 t0 = pair(acc[0], acc[1]), t1 = pair(acc[2], acc[3]);
    return _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
}
AI at_f at_tree_u(const at_f *u)
{
    __m512 w[2];
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(
            _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
AI at_f at_tree(const at_f *acc)
{
    const at_f u[4] = {at_tree4(acc), at_tree4(acc + 4), at_tree4(acc + 8), at_tree4(acc + 12)};
    return at_tree_u(u);
}

AI float at_hmax(at_f v) { return _mm512_reduce_max_ps(v); }
AI float at_hsum(at_f v) { return _mm512_reduce_add_ps(v); }

AI at_f at_max_where(at_f m, at_m valid, at_f sc)
{
    const __mmask16 ord = _mm512_cmp_ps_mask(sc, sc, _CMP_ORD_Q);
    return _mm512_mask_max_ps(m, valid & ord, m, sc);
}
AI at_f at_keep(at_m valid, at_f e) { return _mm512_maskz_mov_ps(valid, e); }

AI at_m at_ge(at_f x, at_f c) { return _mm512_cmp_ps_mask(x, c, _CMP_GE_OQ); }
AI at_f at_maskz_mul(at_m ok, at_f a, at_f b) { return _mm512_maskz_mul_ps(ok, a, b); }
AI at_f at_rint(at_f x)
{
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
AI at_f at_pow2i(at_f m)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(m), _mm512_set1_epi32(127)), 23));
}

#include "quant/attn_x86_impl.h"
