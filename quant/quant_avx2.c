/*
 * quant_avx2.c - AVX2 + FMA + F16C quantizers and 16-bit float conversions: the 8-lane
 * instantiation of quant/quant_x86_impl.h (which explains the algorithm and why each step is
 * bit-identical to _ref).
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c); only reached through the kernel table of
 * quant/dispatch.c after CPUID + XGETBV said the CPU and OS can run it. Defines
 *   glmq_quantize_row_q8_avx2, glmq_quantize_row_q4_avx2,
 *   glmq_f16_to_f32_avx2, glmq_bf16_to_f32_avx2, glmq_f32_to_f16_avx2.
 *
 * This file is the vector abstraction of the template for AVX2: ymm = 8 x fp32 / u32, xmm =
 * 8 x 16-bit. AVX2 has no lane masks for 16/32-bit loads and stores (vmaskmovps covers 32-bit
 * only, not 16-bit), so a "first k lanes" predicate is the count k itself: partial vectors go
 * through a zero-filled stack buffer, touching only the k elements in memory. Only row tails
 * take that path. Statistics keep two e^2/w^2 chains and one max chain: with 16 ymm registers
 * that is what fits beside the constants and the four code vectors of a group.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <immintrin.h>

#define QX_ISA avx2
#define QX_W 8
#define QX_NCHAIN 2
#define QX_NEMAX 1

typedef __m256 qx_f;
typedef __m256i qx_i;
typedef __m256d qx_d;
typedef __m128i qx_h;
typedef int qx_m; /* the lane count k, 1..8 */

static inline qx_m qx_mask_n(int64_t left) { return (qx_m)left; }

/* Partial vectors (k < 8 lanes of esz bytes) through an aligned stack buffer of one vector:
 * part_in zero-fills it and copies the k elements in; part_out copies k elements out of it
 * (nothing when k == 8: the full-width store went straight to p). */
static inline void *part_in(uint8_t *buf, const void *p, qx_m k, size_t esz)
{
    memset(buf, 0, QX_W * esz);
    memcpy(buf, p, (size_t)k * esz);
    return buf;
}
static inline void part_out(void *p, const uint8_t *buf, qx_m k, size_t esz)
{
    if (k != QX_W) memcpy(p, buf, (size_t)k * esz);
}

/* fp32 */
static inline qx_f qx_f_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void qx_f_store(float *p, qx_f v) { _mm256_storeu_ps(p, v); }
static inline qx_f qx_f_load_m(const float *p, qx_m k)
{
    _Alignas(32) uint8_t b[32];
    return k == QX_W ? qx_f_load(p) : _mm256_load_ps((const float *)part_in(b, p, k, 4));
}
static inline void qx_f_store_m(float *p, qx_m k, qx_f v)
{
    _Alignas(32) uint8_t b[32];
    _mm256_storeu_ps((float *)(k == QX_W ? (void *)p : b), v);
    part_out(p, b, k, 4);
}
static inline qx_f qx_f_set1(float x) { return _mm256_set1_ps(x); }
static inline qx_f qx_f_zero(void) { return _mm256_setzero_ps(); }
static inline qx_f qx_f_add(qx_f a, qx_f b) { return _mm256_add_ps(a, b); }
static inline qx_f qx_f_div(qx_f a, qx_f b) { return _mm256_div_ps(a, b); }
static inline qx_f qx_f_min(qx_f a, qx_f b) { return _mm256_min_ps(a, b); }
static inline qx_f qx_f_max(qx_f a, qx_f b) { return _mm256_max_ps(a, b); }
static inline qx_f qx_f_fmadd(qx_f a, qx_f b, qx_f c) { return _mm256_fmadd_ps(a, b, c); }
static inline qx_f qx_f_fmsub(qx_f a, qx_f b, qx_f c) { return _mm256_fmsub_ps(a, b, c); }
static inline qx_f qx_f_abs(qx_f a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline qx_i qx_f_to_i(qx_f a) { return _mm256_cvtps_epi32(a); }
static inline qx_f qx_i_to_f(qx_i a) { return _mm256_cvtepi32_ps(a); }
static inline float qx_f_hmax(qx_f v) /* 8 -> 4 -> 2 -> 1 lanes */
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* integer */
static inline qx_i qx_i_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void qx_i_store(void *p, qx_i v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline qx_i qx_i_load_m(const void *p, qx_m k)
{
    _Alignas(32) uint8_t b[32];
    return k == QX_W ? qx_i_load(p) : _mm256_load_si256((const __m256i *)part_in(b, p, k, 4));
}
static inline void qx_i_store_m(void *p, qx_m k, qx_i v)
{
    _Alignas(32) uint8_t b[32];
    _mm256_storeu_si256((__m256i *)(k == QX_W ? p : b), v);
    part_out(p, b, k, 4);
}
static inline qx_i qx_i_zero(void) { return _mm256_setzero_si256(); }
static inline qx_i qx_i_set1_32(int32_t x) { return _mm256_set1_epi32(x); }
static inline qx_i qx_i_set1_8(char x) { return _mm256_set1_epi8(x); }
static inline qx_i qx_i_and(qx_i a, qx_i b) { return _mm256_and_si256(a, b); }
static inline qx_i qx_i_or(qx_i a, qx_i b) { return _mm256_or_si256(a, b); }
static inline qx_i qx_i_max_u32(qx_i a, qx_i b) { return _mm256_max_epu32(a, b); }
static inline qx_i qx_i_add_8(qx_i a, qx_i b) { return _mm256_add_epi8(a, b); }
static inline qx_i qx_i_shl4_16(qx_i a) { return _mm256_slli_epi16(a, 4); }
static inline qx_i qx_i_shl16_32(qx_i a) { return _mm256_slli_epi32(a, 16); }
static inline qx_i qx_i_packs_32(qx_i a, qx_i b) { return _mm256_packs_epi32(a, b); }
static inline qx_i qx_i_packs_16(qx_i a, qx_i b) { return _mm256_packs_epi16(a, b); }
static inline uint32_t qx_i_hmax_u32(qx_i v) /* 8 -> 4 -> 2 -> 1 lanes */
{
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint32_t)_mm_cvtsi128_si32(m);
}
/* Output dword t = 2k + L (elements 4t..4t+3) sits at source dword 4L + k. */
static inline qx_i qx_i_perm(qx_i b)
{
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* double: 8 x fp32 -> two 4 x double halves added into d */
static inline qx_d qx_d_zero(void) { return _mm256_setzero_pd(); }
static inline qx_d qx_d_add_widened(qx_d d, qx_f v)
{
    d = _mm256_add_pd(d, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(d, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline double qx_d_hsum(qx_d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* 16-bit: 8 halves per xmm */
static inline qx_h qx_h_load(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline void qx_h_store(void *p, qx_h v) { _mm_storeu_si128((__m128i *)p, v); }
static inline qx_h qx_h_load_m(const void *p, qx_m k)
{
    _Alignas(16) uint8_t b[16];
    return k == QX_W ? qx_h_load(p) : _mm_load_si128((const __m128i *)part_in(b, p, k, 2));
}
static inline void qx_h_store_m(void *p, qx_m k, qx_h v)
{
    _Alignas(16) uint8_t b[16];
    _mm_storeu_si128((__m128i *)(k == QX_W ? p : b), v);
    part_out(p, b, k, 2);
}
static inline qx_h qx_h_zero(void) { return _mm_setzero_si128(); }
static inline qx_h qx_h_set1_16(short x) { return _mm_set1_epi16(x); }
static inline qx_h qx_h_and(qx_h a, qx_h b) { return _mm_and_si128(a, b); }
static inline qx_h qx_h_max_u16(qx_h a, qx_h b) { return _mm_max_epu16(a, b); }
/* horizontal max of 8 x u16 = complement of phminposuw of the complement */
static inline uint16_t qx_h_hmax_u16(qx_h v)
{
    return (uint16_t)(0xffff -
                      _mm_extract_epi16(_mm_minpos_epu16(_mm_xor_si128(v, _mm_set1_epi32(-1))), 0));
}
static inline qx_f qx_h_to_f(qx_h h) { return _mm256_cvtph_ps(h); }
static inline qx_h qx_f_to_h(qx_f v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }
static inline qx_i qx_h_zext_i(qx_h h) { return _mm256_cvtepu16_epi32(h); }

#include "quant/quant_x86_impl.h"
