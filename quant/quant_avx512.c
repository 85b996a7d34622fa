/*
 * quant_avx512.c - AVX-512 (F/BW/VL/DQ) quantizers and 16-bit float conversions: the 16-lane
 * instantiation of quant/quant_x86_impl.h (which explains the algorithm and why each step is
 * bit-identical to _ref).
 *
 * Built with per-file flags (-mavx512f -mavx512bw -mavx512vl -mavx512dq ...); only reached
 * through the kernel table of quant/dispatch.c after CPUID + XGETBV said the CPU and OS can run
 * it. Defines
 *   glmq_quantize_row_q8_avx512, glmq_quantize_row_q4_avx512,
 *   glmq_f16_to_f32_avx512, glmq_bf16_to_f32_avx512, glmq_f32_to_f16_avx512.
 *
 * This file is the vector abstraction of the template for AVX-512: zmm = 16 x fp32 / u32,
 * ymm = 16 x 16-bit, and a "first k lanes" predicate is a __mmask16, so row tails are masked
 * loads/stores (masked-off lanes never fault and read as 0). Statistics keep four e^2/w^2
 * chains and four max chains, one per vector of a 64-element group: with 32 zmm registers the
 * 4-cycle FMA latency need not bound the loop.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <immintrin.h>

#define QX_ISA avx512
#define QX_W 16
#define QX_NCHAIN 4
#define QX_NEMAX 4

typedef __m512 qx_f;
typedef __m512i qx_i;
typedef __m512d qx_d;
typedef __m256i qx_h;
typedef __mmask16 qx_m;

static inline qx_m qx_mask_n(int64_t left) { return (qx_m)((1u << left) - 1); }

/* fp32 */
static inline qx_f qx_f_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void qx_f_store(float *p, qx_f v) { _mm512_storeu_ps(p, v); }
static inline qx_f qx_f_load_m(const float *p, qx_m k) { return _mm512_maskz_loadu_ps(k, p); }
static inline void qx_f_store_m(float *p, qx_m k, qx_f v) { _mm512_mask_storeu_ps(p, k, v); }
static inline qx_f qx_f_set1(float x) { return _mm512_set1_ps(x); }
static inline qx_f qx_f_zero(void) { return _mm512_setzero_ps(); }
static inline qx_f qx_f_add(qx_f a, qx_f b) { return _mm512_add_ps(a, b); }
static inline qx_f qx_f_div(qx_f a, qx_f b) { return _mm512_div_ps(a, b); }
static inline qx_f qx_f_min(qx_f a, qx_f b) { return _mm512_min_ps(a, b); }
static inline qx_f qx_f_max(qx_f a, qx_f b) { return _mm512_max_ps(a, b); }
static inline qx_f qx_f_fmadd(qx_f a, qx_f b, qx_f c) { return _mm512_fmadd_ps(a, b, c); }
static inline qx_f qx_f_fmsub(qx_f a, qx_f b, qx_f c) { return _mm512_fmsub_ps(a, b, c); }
static inline qx_f qx_f_abs(qx_f a) { return _mm512_abs_ps(a); }
static inline qx_i qx_f_to_i(qx_f a) { return _mm512_cvtps_epi32(a); }
static inline qx_f qx_i_to_f(qx_i a) { return _mm512_cvtepi32_ps(a); }
static inline float qx_f_hmax(qx_f v) { return _mm512_reduce_max_ps(v); }

/* integer */
static inline qx_i qx_i_load(const void *p) { return _mm512_loadu_si512(p); }
static inline void qx_i_store(void *p, qx_i v) { _mm512_storeu_si512(p, v); }
static inline qx_i qx_i_load_m(const void *p, qx_m k) { return _mm512_maskz_loadu_epi32(k, p); }
static inline void qx_i_store_m(void *p, qx_m k, qx_i v) { _mm512_mask_storeu_epi32(p, k, v); }
static inline qx_i qx_i_zero(void) { return _mm512_setzero_si512(); }
static inline qx_i qx_i_set1_32(int32_t x) { return _mm512_set1_epi32(x); }
static inline qx_i qx_i_set1_8(char x) { return _mm512_set1_epi8(x); }
static inline qx_i qx_i_and(qx_i a, qx_i b) { return _mm512_and_si512(a, b); }
static inline qx_i qx_i_or(qx_i a, qx_i b) { return _mm512_or_si512(a, b); }
static inline qx_i qx_i_max_u32(qx_i a, qx_i b) { return _mm512_max_epu32(a, b); }
static inline qx_i qx_i_add_8(qx_i a, qx_i b) { return _mm512_add_epi8(a, b); }
static inline qx_i qx_i_shl4_16(qx_i a) { return _mm512_slli_epi16(a, 4); }
static inline qx_i qx_i_shl16_32(qx_i a) { return _mm512_slli_epi32(a, 16); }
static inline qx_i qx_i_packs_32(qx_i a, qx_i b) { return _mm512_packs_epi32(a, b); }
static inline qx_i qx_i_packs_16(qx_i a, qx_i b) { return _mm512_packs_epi16(a, b); }
static inline uint32_t qx_i_hmax_u32(qx_i v) { return _mm512_reduce_max_epu32(v); }
/* Output dword t = 4k + L (elements 4t..4t+3) sits at source dword 4L + k. */
static inline qx_i qx_i_perm(qx_i b)
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(idx, b);
}

/* double: 16 x fp32 -> two 8 x double halves added into d */
static inline qx_d qx_d_zero(void) { return _mm512_setzero_pd(); }
static inline qx_d qx_d_add_widened(qx_d d, qx_f v)
{
    d = _mm512_add_pd(d, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(d, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}
static inline double qx_d_hsum(qx_d v) { return _mm512_reduce_add_pd(v); }

/* 16-bit: 16 halves per ymm */
static inline qx_h qx_h_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void qx_h_store(void *p, qx_h v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline qx_h qx_h_load_m(const void *p, qx_m k) { return _mm256_maskz_loadu_epi16(k, p); }
static inline void qx_h_store_m(void *p, qx_m k, qx_h v) { _mm256_mask_storeu_epi16(p, k, v); }
static inline qx_h qx_h_zero(void) { return _mm256_setzero_si256(); }
static inline qx_h qx_h_set1_16(short x) { return _mm256_set1_epi16(x); }
static inline qx_h qx_h_and(qx_h a, qx_h b) { return _mm256_and_si256(a, b); }
static inline qx_h qx_h_max_u16(qx_h a, qx_h b) { return _mm256_max_epu16(a, b); }
/* horizontal max of 16 x u16: fold 256 -> 128, then phminposuw on the complement */
static inline uint16_t qx_h_hmax_u16(qx_h v)
{
    __m128i m = _mm_max_epu16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (uint16_t)(0xffff -
                      _mm_extract_epi16(_mm_minpos_epu16(_mm_xor_si128(m, _mm_set1_epi32(-1))), 0));
}
static inline qx_f qx_h_to_f(qx_h h) { return _mm512_cvtph_ps(h); }
static inline qx_h qx_f_to_h(qx_f v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }
static inline qx_i qx_h_zext_i(qx_h h) { return _mm512_cvtepu16_epi32(h); }

#include "quant/quant_x86_impl.h"
