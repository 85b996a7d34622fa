/*
 * dot_avx2.c - AVX2 + FMA + F16C matrix kernels (quant/dot.h): the templates
 * quant/dot_x86_impl.h (preparation, EXACT, bandwidth probe) and quant/dot_x86_fast_impl.h
 * (FAST on vpmaddubsw + vpmaddwd) instantiated on 256-bit vectors. This file holds only the
 * micro-kernel shapes and the integer dot hooks; the vector operations the templates are
 * written against are quant/dot_avx2_vec.h's, shared with the AVX-VNNI level (dot_avxvnni.c).
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c) and reached only through quant/dispatch.c
 * after cpu.c's CPUID + XGETBV checks; the FAST kernels here also serve AVX-512 CPUs without
 * VNNI (where 512-bit vpmaddubsw would need the same sign trick and gains little).
 *
 * With 16 ymm registers the GEMM shapes are narrow: 2 rows x 2 tokens (EXACT: 8 accumulators
 * + 4 activation + 2 weight vectors), 1 x 4 (FAST_ROW: one row's unpacked chunk reused by 4
 * tokens), 2 x 4 (FAST_B32: 8 partials + 2 weight operands (INT8: signed, and their |q|) +
 * one token's codes and scale; the running sums stay in memory); GEMV panels are 4 rows.
 *
 * Integer products without saturation (vpmaddubsw adds two u8 x s8 products into int16):
 *   INT4:  u8 = nibble 0..15, s8 = xq in [-127, 127]: |pair| <= 2*15*127 = 3810; FAST_ROW adds
 *          the pairs of the 4 blocks of a chunk in int16 first: <= 15240 < 32767. FAST_B32
 *          (per row and groups of 128) keeps the bias 8 of the nibbles in its sums and starts
 *          each chunk's lanes at the prepared nb, minus the bias terms in fp32 (dot.h §2, §4):
 *          vpmaddubsw + vpmaddwd + vcvtdq2ps + vfmadd per 32 columns and (row, token), where
 *          removing the bias there (vpsignb, or a vpsubd) costs a fifth vector operation.
 *   INT8:  the sign trick: u8 = |q| (vpabsb; <= 128 even for a foreign -128 code), s8 =
 *          sign(xq, q) (vpsignb; xq is never -128): |pair| <= 2*128*127 = 32512 < 32767.
 *          (Offsetting q by 128 instead would reach 2*255*127 and saturate: DOT_Q8_BIAS 0.)
 *   vpmaddwd(pairs, 1) then gives int32 lanes of 4 consecutive columns; one 32-byte register
 *   is one 32-column activation block, so its d_b is a single broadcast.
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#define DOT_ISA _avx2
#include "quant/dot_avx2_vec.h"

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

/* q4_nibbles, b32_scale, b32_prep_r and b32_scale_p: quant/dot_avx2_vec.h */

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

#include "quant/dot_x86_fast_impl.h"
