/*
 * dot_avxvnni.c - the FAST (int8 activation) matrix kernels of the avxvnni level: the template
 * quant/dot_x86_fast_impl.h on 256-bit vectors with the integer dot products on AVX-VNNI's
 * VEX-encoded vpdpbusd ymm (Alder Lake and later, Zen 5; CPUs that may have no AVX-512). Every
 * other kernel of the level (preparation, EXACT, F16/BF16, attention, quantizers) is the AVX2
 * one: quant/dispatch.c points the table at those, nothing is compiled twice.
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c -mavxvnni, when the compiler has -mavxvnni:
 * GLMQ_HAVE_AVXVNNI) and reached only through quant/dispatch.c after cpu.c's CPUID.7.1:EAX
 * bit 4 + XGETBV (YMM state) checks. In the emulated test build (GLMQ_EMULATE_AVX512) it is
 * compiled for AVX2 with tests/emu/avx512_emu.h in front, which maps _mm256_dpbusd_avx_epi32
 * to SIMDe.
 *
 * The hooks have the semantics of dot_avx512.c's VNNI ones on 32-byte vectors: vpdpbusd(acc,
 * u, s) adds to each int32 lane the four u8 x s8 products of its 4 columns, without
 * saturation. Weights are the unsigned operand: INT4 nibbles q + 8 (0..15), INT8 byte ^ 0x80 =
 * q + 128 (0..255); the bias times the activation codes' sum is removed exactly in int32
 * (dot_x86_fast_impl.h), except in INT4 FAST_B32 (per row and groups of 128), which keeps it
 * and starts at the prepared nb as avx2 does (dot.h §2). The integer sums are therefore the
 * exact sums the vpmaddubsw kernels of dot_avx2.c form; the vector abstraction, the block
 * scales (quant/dot_avx2_vec.h), the shapes and the loop nest of every fp32 step are avx2's
 * too, so the results are bit-identical to the avx2 FAST kernels (tests/check_dot.c).
 *
 * Shapes: GEMV 4 rows per panel, GEMM 1 row x 4 tokens, step-major FAST_B32 (4 steps per
 * chunk; 16 ymm registers) as on avx2, whose shared FAST_B32 GEMM nest needs the unbiased
 * sign-trick operand and so is not used here. Not measured: no AVX-VNNI hardware was
 * available (the level is tested for correctness under emulation only).
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#include "quant/dot_avx2_vec.h"

#include "quant/dot_x86_helpers.h"

#define DOT_FAST_ISA _avxvnni
#define DOT_Q4B_RV 4
#define DOT_Q8B_RV 4
#define DOT_Q4R_RV 4
#define DOT_Q8R_RV 4
#define DOT_FAST_RM 1
#define DOT_FAST_TM 4
#define DOT_B32_TOKEN_MAJOR 0 /* 4 steps per chunk: keep the R x T partials, share the weights */
#define DOT_Q8_BIAS 128       /* byte ^ 0x80 */

/* vpdpbusd ymm (VEX): lane l += sum of u8[4l+i] * s8[4l+i], i = 0..3 (modulo 2^32). */
AI VI dot_u8s8(VI acc, VI u, VI s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }

AI VI q8_wop(VI raw) { return _mm256_xor_si256(raw, _mm256_set1_epi8((char)0x80)); }
AI VI dot_q8(VI acc, VI wop, VI x) { return dot_u8s8(acc, wop, x); }

/* The 4 steps of an INT4 chunk: two chains of two vpdpbusd, added (exact in int32). */
AI VI dot_q4_row(VI acc, const VI *w, const VI *x)
{
    const VI a = dot_u8s8(dot_u8s8(acc, w[0], x[0]), w[1], x[1]);
    const VI b = dot_u8s8(dot_u8s8(vi_zero(), w[2], x[2]), w[3], x[3]);
    return vi_add32(a, b);
}

#include "quant/dot_x86_fast_impl.h"
