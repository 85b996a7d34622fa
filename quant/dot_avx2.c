/*
 * dot_avx2.c - AVX2 + FMA + F16C matrix kernels (quant/dot.h): the templates
 * quant/dot_x86_impl.h (preparation, EXACT, bandwidth probe) and quant/dot_x86_fast_impl.h
 * (FAST on vpmaddubsw + vpmaddwd) instantiated on 256-bit vectors. This file holds only the
 * vector operations those templates are written against and the micro-kernel shapes.
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c) and reached only through quant/dispatch.c
 * after cpu.c's CPUID + XGETBV checks; the FAST kernels here also serve AVX-512 CPUs without
 * VNNI (where 512-bit vpmaddubsw would need the same sign trick and gains little).
 *
 * With 16 ymm registers the GEMM shapes are narrow: 2 rows x 2 tokens (EXACT: 8 accumulators
 * + 4 activation + 2 weight vectors), 1 x 4 (FAST_ROW: one row's unpacked chunk reused by 4
 * tokens), 2 x 4 (FAST_B32: 8 partials + 2 signed weight operands and their |q| + one token's
 * codes and scale; the running sums stay in memory); GEMV panels are 4 rows.
 *
 * Integer products without saturation (vpmaddubsw adds two u8 x s8 products into int16):
 *   INT4:  u8 = nibble 0..15, s8 = xq in [-127, 127]: |pair| <= 2*15*127 = 3810; FAST_ROW adds
 *          the pairs of the 4 blocks of a chunk in int16 first: <= 15240 < 32767.
 *   INT8:  the sign trick: u8 = |q| (vpabsb; <= 128 even for a foreign -128 code), s8 =
 *          sign(xq, q) (vpsignb; xq is never -128): |pair| <= 2*128*127 = 32512 < 32767.
 *          (Offsetting q by 128 instead would reach 2*255*127 and saturate: DOT_Q8_BIAS 0.)
 *   vpmaddwd(pairs, 1) then gives int32 lanes of 4 consecutive columns; one 32-byte register
 *   is one 32-column activation block, so its d_b is a single broadcast.
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* ---- the vector abstraction of quant/dot_x86_impl.h: 8 fp32 / 32 int8 lanes ----------------- */

typedef __m256 VF;
typedef __m256i VI;
#define VW 8
#define DOT_ISA _avx2
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

/* GEMV 4 rows (8 accumulators + temporaries), GEMM 2 rows x 2 tokens. */
#define DOT_EXACT_RV 4
#define DOT_EXACT_RM 2
#define DOT_EXACT_TM 2
#define DOT_HALF_RM 2 /* F16/BF16 GEMM: 2 rows x 6 tokens (12 partials + 3 operand vectors) */
#define DOT_HALF_TM 6

#include "quant/dot_x86_impl.h"

/* ---- FAST: vpmaddubsw + vpmaddwd ------------------------------------------------------------ */

#define DOT_FAST_ISA _avx2
#define DOT_Q4B_RV 4 /* GEMV 4 rows; GEMM 1 row x 4 tokens */
#define DOT_Q8B_RV 4
#define DOT_Q4R_RV 4
#define DOT_Q8R_RV 4
#define DOT_FAST_RM 1
#define DOT_FAST_TM 4
#define DOT_B32_RM 2
#define DOT_B32_TM 4
#define DOT_B32_GEMM_SHARED 1
#define DOT_B32_TOKEN_MAJOR 0 /* 4 steps per chunk: keep the R x T partials, share the weights */
#define DOT_Q8_BIAS 0         /* the sign trick */

/* vpmaddubsw (u8 x s8 pairs -> int16) then vpmaddwd by 1 (pairs -> int32 lanes of 4 columns). */
AI VI dot_u8s8(VI acc, VI u, VI s)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s),
                                                   _mm256_set1_epi16(1)));
}

/* 32 bytes of an INT4 chunk as u8 nibbles: low (columns j) or high (columns 64+j). */
AI VI q4_nibbles(const uint8_t *p, const int high)
{
    const __m256i b = vi_loadu(p), m4 = _mm256_set1_epi8(0x0f);
    return high ? _mm256_and_si256(_mm256_srli_epi16(b, 4), m4) : _mm256_and_si256(b, m4);
}

AI VI q8_wop(VI raw) { return raw; }

/* The same 32 nibbles as signed codes q = nibble - 8 (the shared GEMM nest feeds them to
 * dot_q8: |q| <= 8, no bias to remove). */
AI VI q4_codes(const uint8_t *p, const int high)
{
    return _mm256_sub_epi8(q4_nibbles(p, high), _mm256_set1_epi8(8));
}

/* acc += |q| . sign(xq, q) per int32 lane (= q . xq, unbiased). */
AI VI dot_q8(VI acc, VI wq, VI x)
{
    return dot_u8s8(acc, _mm256_abs_epi8(wq), _mm256_sign_epi8(x, wq));
}

/* The 4 steps of an INT4 chunk, their vpmaddubsw pairs added in int16 (<= 15240) before one
 * vpmaddwd. */
AI VI dot_q4_row(VI acc, const VI *w, const VI *x)
{
    const __m256i p = _mm256_add_epi16(
        _mm256_add_epi16(_mm256_maddubs_epi16(w[0], x[0]), _mm256_maddubs_epi16(w[1], x[1])),
        _mm256_add_epi16(_mm256_maddubs_epi16(w[2], x[2]), _mm256_maddubs_epi16(w[3], x[3])));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
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

#include "quant/dot_x86_fast_impl.h"
