/*
 * dot_avx2_vec.h - the 256-bit (AVX2 + FMA + F16C) vector abstraction of the x86 kernel
 * templates (quant/dot_x86_impl.h lists the operations), shared by quant/dot_avx2.c (EXACT,
 * preparation and the vpmaddubsw FAST kernels) and quant/dot_avxvnni.c (the vpdpbusd FAST
 * kernels of the AVX-VNNI level), plus the FAST hooks that do not depend on the integer dot
 * instruction (quant/dot_x86_fast_impl.h): the INT4 nibble operand and the block scales of a
 * step. Both levels therefore run the same fp32 operations in the same order.
 *
 * Only for files built with -mavx2 -mfma -mf16c (and what they add); every function is
 * static inline.
 */
#ifndef GLMQ_DOT_AVX2_VEC_H
#define GLMQ_DOT_AVX2_VEC_H

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* ---- the vector abstraction of quant/dot_x86_impl.h: 8 fp32 / 32 int8 lanes ----------------- */

typedef __m256 VF;
typedef __m256i VI;
#define VW 8
#define DOT_B32_NB 1 /* INT4 FAST_B32 lanes start at the prepared nb (dot.h §2, §4) */
#define RMAX 4 /* largest R of any micro-kernel (accumulator arrays are sized by it) */
#define TMAX 4

/* int32 mask of the first n of 8 lanes, for vmaskmovps (n <= 0: none). */
AI __m256i lanes8(int64_t n)
{
    const int k = n >= 8 ? 8 : n <= 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AI VF vf_zero(void) { return _mm256_setzero_ps(); }
AI VF vf_set1(float f) { return _mm256_set1_ps(f); }
AI VF vf_load(const float *p) { return _mm256_load_ps(p); }
AI VF vf_loadu(const float *p) { return _mm256_loadu_ps(p); }
AI VF vf_loadu_n(const float *p, int64_t n) { return _mm256_maskload_ps(p, lanes8(n)); }
AI VF vf_line(const float *p) { return _mm256_loadu_ps(p); }
AI void vf_store(float *p, VF v) { _mm256_store_ps(p, v); }
AI VF vf_add(VF a, VF b) { return _mm256_add_ps(a, b); }
AI VF vf_mul(VF a, VF b) { return _mm256_mul_ps(a, b); }
AI VF vf_fma(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
AI VF vf_max(VF a, VF b) { return _mm256_max_ps(a, b); }
AI VF vf_min(VF a, VF b) { return _mm256_min_ps(a, b); }
AI VI vf_cvt_i32(VF v) { return _mm256_cvtps_epi32(v); }
AI VF vi_cvt_f32(VI v) { return _mm256_cvtepi32_ps(v); }

AI VI vi_zero(void) { return _mm256_setzero_si256(); }
AI VI vi_set1_8(char c) { return _mm256_set1_epi8(c); }
AI VI vi_load(const void *p) { return _mm256_load_si256((const __m256i *)p); }
AI VI vi_loadu(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
AI VI vi_add32(VI a, VI b) { return _mm256_add_epi32(a, b); }
AI VI vi_sub32(VI a, VI b) { return _mm256_sub_epi32(a, b); }
AI VI vi_max_u32(VI a, VI b) { return _mm256_max_epu32(a, b); }
AI VI vi_absbits(VF v)
{
    return _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
}

/* Fixed horizontal reductions: halves 128, 64, 32 bits, always in this order. */
AI float vf_hsum(VF v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* 8 int32 lanes -> 1, modulo 2^32. */
AI uint32_t vi_hsum32(VI v)
{
    __m128i b = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

AI uint32_t vi_hmax_u32(VI v)
{
    __m128i b = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

/* 32 int32 codes (4 x 8 lanes, columns in order) -> 32 int8 in column order. vpackssdw and
 * vpacksswb interleave the 128-bit lanes; vpermd {0,4,1,5,2,6,3,7} restores the order. The
 * saturating packs never saturate: codes are in [-127, 127]. */
AI void codes_store32(int8_t *dst, const VI *q)
{
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_store_si256((__m256i *)(void *)dst, p);
}

/* EXACT widening. INT4: 8 bytes by vpmovzxbd to 8 int32 lanes, (nibble - 8) by vpand/vpsrld,
 * vpsubd and vcvtdq2ps. INT8: vpmovsxbd + vcvtdq2ps. F16: vcvtph2ps. BF16: vpmovzxwd + vpslld. */
AI void widen_q4(const uint8_t *p, VF *lo, VF *hi)
{
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
    const __m256i eight = _mm256_set1_epi32(8);
    *lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x0f)), eight));
    *hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 4), eight));
}
/* Group-wise INT4 with the group scale folded in: (nibble - 8) * s = fma(nibble, s, -8s), exact
 * (the exact product is representable and fma rounds once), so the scaled widening costs what
 * the plain one does: vpand/vpsrld, vcvtdq2ps, vfmadd per vector; q4s_make once per block. */
typedef struct {
    VF s, m8s;
} Q4S;
AI Q4S q4s_make(VF s) { return (Q4S){s, _mm256_mul_ps(s, _mm256_set1_ps(-8.0f))}; }
AI void widen_q4s(const uint8_t *p, Q4S sl, Q4S sh, VF *lo, VF *hi)
{
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
    *lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(0x0f))), sl.s,
                          sl.m8s);
    *hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), sh.s, sh.m8s);
}
AI VF widen_q8(const uint8_t *p)
{
    const __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}
/* Lane j of s4 in all 8 lanes (vshufps + vbroadcastss; group scales, quant/dot_x86_impl.h). */
AI VF vf_bcast4(__m128 s4, const int j)
{
    return _mm256_broadcastss_ps(j == 0   ? s4
                                 : j == 1 ? _mm_shuffle_ps(s4, s4, 0x55)
                                 : j == 2 ? _mm_shuffle_ps(s4, s4, 0xaa)
                                          : _mm_shuffle_ps(s4, s4, 0xff));
}
AI VF widen_f16(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
AI VF widen_bf16(const uint8_t *p)
{
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* An empty asm that makes v opaque: a loaded activation vector then stays in its register for
 * the DOT_HALF_RM FMAs that use it instead of being reloaded as a memory operand of each (GCC
 * folds the load into every vfmadd otherwise: 14 loads per 12 FMAs, more than the 2 loads per
 * cycle of the load ports; with it, 8). */
AI VF vf_keep(VF v)
{
    __asm__("" : "+x"(v));
    return v;
}
AI VI vi_keep(VI v)
{
    __asm__("" : "+x"(v));
    return v;
}

/* ---- FAST hooks common to vpmaddubsw and vpdpbusd (quant/dot_x86_fast_impl.h) ------------- */

/* 32 bytes of an INT4 chunk as u8 nibbles: low (columns j) or high (columns 64+j). */
AI VI q4_nibbles(const uint8_t *p, const int high)
{
    const __m256i b = vi_loadu(p), m4 = _mm256_set1_epi8(0x0f);
    return high ? _mm256_and_si256(_mm256_srli_epi16(b, 4), m4) : _mm256_and_si256(b, m4);
}

/* Step k = the 32-column block 4ch + k: one broadcast d_b. */
AI VF b32_scale(const float *db4, const int k) { return _mm256_broadcast_ss(db4 + k); }

/* Group-wise: the 4 products d_b * s_g(b) of a chunk in both 128-bit halves (vinsertf128),
 * then lane k of them by one vshufps per step. */
typedef __m256 B32R;
AI B32R b32_prep_r(__m128 v4) { return _mm256_insertf128_ps(_mm256_castps128_ps256(v4), v4, 1); }
AI VF b32_scale_p(B32R p, const int k)
{
    /* literal immediates: k is a constant only once inlined (not at -O0) */
    return k == 0   ? _mm256_shuffle_ps(p, p, 0x00)
           : k == 1 ? _mm256_shuffle_ps(p, p, 0x55)
           : k == 2 ? _mm256_shuffle_ps(p, p, 0xaa)
                    : _mm256_shuffle_ps(p, p, 0xff);
}

#endif /* GLMQ_DOT_AVX2_VEC_H */
