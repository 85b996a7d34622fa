/*
 * dot_avx512.c - AVX-512 matrix kernels (quant/dot.h): the templates quant/dot_x86_impl.h
 * (preparation, EXACT, bandwidth probe; AVX-512 F/BW/VL/DQ) and quant/dot_x86_fast_impl.h
 * (FAST on vpdpbusd, AVX-512 VNNI) instantiated on 512-bit vectors. This file holds only the
 * vector operations those templates are written against and the micro-kernel shapes.
 *
 * Built with per-file flags (-mavx512f/bw/vl/dq -mavx2 -mfma -mf16c; VNNI only in its section)
 * and reached only through quant/dispatch.c after cpu.c's CPUID + XGETBV said the CPU and OS
 * run AVX-512; the *_avx512vnni kernels additionally only at the GLMQ_CPU_AVX512VNNI level.
 *
 * Shape of every kernel (quant/dot_walk.h): panels of R rows x groups of T tokens, R x T
 * accumulators in zmm registers while the columns are walked in 128-column chunks (one INT4
 * block, two INT8 64-byte lines, four 32-column activation blocks). Each chunk's weights are
 * loaded and unpacked once per panel and reused for the T tokens; each token's activations
 * are loaded once per chunk and reused for the R rows.
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* ---- the vector abstraction of quant/dot_x86_impl.h: 16 fp32 / 64 int8 lanes ---------------- */

typedef __m512 VF;
typedef __m512i VI;
#define VW 16
#define DOT_ISA _avx512
#define RMAX 8
#define TMAX 4

/* Mask of the first n of 16 lanes (n clamped to 0..16). */
AI __mmask16 lanes16(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/*
 * 64 bytes as two 256-bit loads joined by vinserti64x4: used by the bandwidth probe only. On
 * the Zen 5 machine this was tuned on, a plain stream of DRAM-missing 512-bit loads runs at
 * ~25 GB/s on one core while the same lines read as 256-bit halves run at ~30-34 GB/s, so the
 * probe uses halves to report the higher (honest) bandwidth. The GEMV kernels were measured
 * both ways: with the panel prefetch they stream as fast or faster with plain 512-bit loads
 * (INT4 27-28 GB/s vs 25-27, INT8 24-26 either way), so they keep them.
 */
AI VF vf_line(const float *p)
{
    const __m256i *h = (const __m256i *)(const void *)p;
    return _mm512_castsi512_ps(_mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(h)), _mm256_loadu_si256(h + 1), 1));
}

AI VF vf_zero(void) { return _mm512_setzero_ps(); }
AI VF vf_set1(float f) { return _mm512_set1_ps(f); }
AI VF vf_load(const float *p) { return _mm512_load_ps(p); }
AI VF vf_loadu(const float *p) { return _mm512_loadu_ps(p); }
AI VF vf_loadu_n(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(lanes16(n), p); }
AI void vf_store(float *p, VF v) { _mm512_store_ps(p, v); }
AI VF vf_add(VF a, VF b) { return _mm512_add_ps(a, b); }
AI VF vf_mul(VF a, VF b) { return _mm512_mul_ps(a, b); }
AI VF vf_fma(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
AI VF vf_max(VF a, VF b) { return _mm512_max_ps(a, b); }
AI VF vf_min(VF a, VF b) { return _mm512_min_ps(a, b); }
AI VI vf_cvt_i32(VF v) { return _mm512_cvtps_epi32(v); }
AI VF vi_cvt_f32(VI v) { return _mm512_cvtepi32_ps(v); }

AI VI vi_zero(void) { return _mm512_setzero_si512(); }
AI VI vi_set1_8(char c) { return _mm512_set1_epi8(c); }
AI VI vi_load(const void *p) { return _mm512_load_si512(p); }
AI VI vi_loadu(const void *p) { return _mm512_loadu_si512(p); }
AI VI vi_add32(VI a, VI b) { return _mm512_add_epi32(a, b); }
AI VI vi_sub32(VI a, VI b) { return _mm512_sub_epi32(a, b); }
AI VI vi_max_u32(VI a, VI b) { return _mm512_max_epu32(a, b); }
AI VI vi_absbits(VF v)
{
    return _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
}
AI uint32_t vi_hmax_u32(VI v) { return _mm512_reduce_max_epu32(v); }

/* Fixed horizontal reductions: halves 256, 128, 64, 32 bits, always in this order. */
AI float vf_hsum(VF v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* 16 int32 lanes -> 1, modulo 2^32 (the caller's true sum fits int32; lanes may wrap). */
AI uint32_t vi_hsum32(VI v)
{
    __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

/* 2 x 16 int32 codes -> 32 int8 by vpmovdb (truncation; codes are in [-127, 127]). */
AI void codes_store32(int8_t *dst, const VI *q)
{
    _mm_store_si128((__m128i *)(void *)dst, _mm512_cvtepi32_epi8(q[0]));
    _mm_store_si128((__m128i *)(void *)(dst + 16), _mm512_cvtepi32_epi8(q[1]));
}

/*
 * EXACT widening. INT4: vpmovzxbd widens 16 bytes to 16 int32 lanes; vpermps uses bits 3:0 of
 * each lane as an index into the table {-8, ..., 7}, which is (nibble - 8) as fp32 with no
 * and/convert/subtract: once on the byte itself (low nibble), once on byte >> 4 (high nibble).
 * INT8: vpmovsxbd + vcvtdq2ps. F16: vcvtph2ps. BF16: vpmovzxwd + vpslld 16.
 */
AI void widen_q4(const uint8_t *p, VF *lo, VF *hi)
{
    const __m512 tab = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    *lo = _mm512_permutexvar_ps(b, tab);
    *hi = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), tab);
}
/* Group-wise INT4 with the group scale folded in: the vpermps table scaled once per block
 * ({-8..7} * s, exact), then the same two vpermps per 16 bytes as widen_q4. */
typedef VF Q4S;
AI Q4S q4s_make(VF s)
{
    return _mm512_mul_ps(_mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7), s);
}
AI void widen_q4s(const uint8_t *p, Q4S sl, Q4S sh, VF *lo, VF *hi)
{
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    *lo = _mm512_permutexvar_ps(b, sl);
    *hi = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), sh);
}
AI VF widen_q8(const uint8_t *p)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
}
/* Lane j of s4 in all 16 lanes (one vpermps; group scales, quant/dot_x86_impl.h). */
AI VF vf_bcast4(__m128 s4, const int j)
{
    return _mm512_permutexvar_ps(_mm512_set1_epi32(j), _mm512_castps128_ps512(s4));
}
AI VF widen_f16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
AI VF widen_bf16(const uint8_t *p)
{
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* GEMV: 8 rows in flight (16 accumulators + 2-3 temporaries); GEMM: 4 rows x 2 tokens
 * (16 accumulators + 4 activation vectors + temporaries). */
#define DOT_EXACT_RV 8
#define DOT_EXACT_RM 4
#define DOT_EXACT_TM 2
/* 32 zmm registers: no need to pin the activation vectors (quant/dot_avx2.c), and the
 * emulated build's vectors are not registers at all. */
AI VF vf_keep(VF v) { return v; }
/* The FAST GEMM's token codes, held in a register for the R rows that use them (GCC folds the
 * load into every vpdpbusd otherwise: R x T loads per step instead of T). */
#if defined(GLMQ_EMULATE_AVX512)
AI VI vi_keep(VI v) { return v; }
#else
AI VI vi_keep(VI v)
{
    __asm__("" : "+v"(v));
    return v;
}
#endif
#define DOT_HALF_RM 4 /* F16/BF16 GEMM: 4 rows x 6 tokens (24 partials + 5 operand vectors) */
#define DOT_HALF_TM 6

#include "quant/dot_x86_impl.h"

/* ---- FAST: VNNI integer dot products --------------------------------------------------------- */
/* The file is compiled for AVX-512 F/BW/VL/DQ only: the kernels above serve AVX-512 CPUs without
 * VNNI (Skylake-SP). VNNI is enabled for this section alone, so the compiler cannot place a
 * vpdpbusd anywhere else; dispatch.c reaches these only at the GLMQ_CPU_AVX512VNNI level. */
#if defined(GLMQ_EMULATE_AVX512)
/* test build: the intrinsics are tests/emu/avx512_emu.h's portable ones */
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512vnni")
#endif

/*
 * vpdpbusd(acc, u, s): each int32 lane of acc += u8[4l..4l+3] . s8[4l..4l+3] (four u8 x s8
 * products, no saturation, modulo 2^32). Weights are the unsigned operand:
 *   INT4: nibble codes 0..15 (q + 8):    sum (q+8)*xq = sum q*xq + 8*sum xq
 *   INT8: byte ^ 0x80 = q + 128 (0..255): sum (q+128)*xq = sum q*xq + 128*sum xq
 * FAST_B32 starts each lane at -8 (-128) * (sum of the lane's 4 activation codes), one more
 * vpdpbusd per token and step (u8 = 8 or 128 in every byte, s8 = xq) shared by the row panel,
 * so the lane ends at exactly sum q*xq of its 4 columns (|.| <= 4*128*127).
 * FAST_ROW accumulates the biased sums over the whole row (each lane <= cols/16 * 4*255*127
 * < 2^31 for cols <= 131072, and modular arithmetic makes the final subtraction exact anyway)
 * and subtracts 8 (128) * sum(xq) once.
 *
 * GEMV rows in flight: a panel of ~16 KiB at cols 4096 (INT4 8 rows x 2 KiB, INT8 4 x 4 KiB),
 * which also sets the prefetch distance (one panel). Measured on the 2-core Zen 5 box, 1 thread,
 * same buffers, alternating: INT4 B32 31-36 GB/s with 8 rows vs 17-25 with 4 rows or without
 * prefetch (2 rows was worst); INT8 B32 29-30 GB/s with 4 rows vs 27-28 with 8.
 * GEMM: 4 rows x 4 tokens (16 accumulators + 8 unpacked weight vectors + activation operands
 * folded into vpdpbusd / vmulps / vfmadd231ps).
 * FAST_B32 GEMM measured against the VNNI issue peak on Zen 5 (1 thread): 29-31% with this
 * shape, and the same with 8 rows x 4 or 8 tokens, the weights of a chunk held in 16 registers
 * and the running sums in memory. Zen 5 issues vpdpbusd and vfmadd231ps on the same two pipes,
 * so dot.h §2's one vcvtdq2ps + one FMA per vpdpbusd caps the nest at 50% of that peak even
 * with every operand in a register (a loop of only the per-output operations, 2 vpdpbusd,
 * 2 vcvtdq2ps, vmulps, vfmadd231ps, vaddps, reaches 54%; 38-41% with the sums in memory).
 */
#define DOT_FAST_ISA _avx512vnni
#define DOT_Q4B_RV 8
#define DOT_Q8B_RV 4
#define DOT_Q4R_RV 8
#define DOT_Q8R_RV 4
#define DOT_FAST_RM 4
#define DOT_FAST_TM 4
#define DOT_B32_TOKEN_MAJOR 1 /* 2 steps per chunk: one live partial, token operands shared */
#define DOT_Q8_BIAS 128       /* byte ^ 0x80 */

AI VI dot_u8s8(VI acc, VI u, VI s) { return _mm512_dpbusd_epi32(acc, u, s); }

/* 64 bytes of an INT4 chunk as u8 nibbles: low (columns 0..63) or high (64..127). */
AI VI q4_nibbles(const uint8_t *p, const int high)
{
    const __m512i b = vi_loadu(p), m4 = _mm512_set1_epi8(0x0f);
    return high ? _mm512_and_si512(_mm512_srli_epi16(b, 4), m4) : _mm512_and_si512(b, m4);
}

AI VI q8_wop(VI raw) { return _mm512_xor_si512(raw, _mm512_set1_epi8((char)0x80)); }
AI VI dot_q8(VI acc, VI wop, VI x) { return _mm512_dpbusd_epi32(acc, wop, x); }
AI VI dot_q4_row(VI acc, const VI *w, const VI *x)
{
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, w[0], x[0]), w[1], x[1]);
}

/* Step k covers blocks 4ch + 2k (lanes 0-7) and 4ch + 2k + 1 (lanes 8-15): one 16-byte load
 * of the chunk's four block scales, one vpermps. */
AI VF b32_scale(const float *db4, const int k)
{
    const __m512i idx = k == 0 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                               : _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_load_ps(db4)));
}

/* Group-wise: the 4 products d_b * s_g(b) of a chunk stay in a register; one vpermps per step
 * as above. */
typedef __m512 B32R;
AI B32R b32_prep_r(__m128 v4) { return _mm512_castps128_ps512(v4); }
AI VF b32_scale_p(B32R p, const int k)
{
    const __m512i idx = k == 0 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                               : _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(idx, p);
}

#include "quant/dot_x86_fast_impl.h"

#if defined(GLMQ_EMULATE_AVX512)
#elif defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
