/*
 * bench/emu512/immintrin.h - AVX-512 (F/BW/VL/DQ, VNNI) and AVX2 intrinsics emulated in portable
 * C, so that quant/dot_avx512.c can run on a CPU without AVX-512 (bench/emu512/run.sh). SIMDe
 * (libsimde-dev 0.7) with native aliases, plus the intrinsics that version lacks, each computed
 * exactly per lane (vfmadd as fmaf, vcvtps2dq as nearbyintf). A testing aid only: never part
 * of the library build.
 */
#ifndef GLMQ_EMU512_IMMINTRIN_H
#define GLMQ_EMU512_IMMINTRIN_H
#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_NO_NATIVE
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#define __mmask16 simde__mmask16
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float emu_h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023u, u;
    if (e == 0) {
        float f = (float)m * 0x1p-24f;
        return s ? -f : f;
    } else if (e == 31) {
        u = s | 0x7f800000u | (m << 13);
    } else {
        u = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
#define _cvtsh_ss(h) emu_h2f(h)

#define EMU_I512(a) simde__m512i_private pa = simde__m512i_to_private(a)
static inline simde__m512 emu_cvtepi32_ps(simde__m512i a)
{
    EMU_I512(a);
    simde__m512_private r;
    for (int i = 0; i < 16; i++) r.f32[i] = (float)pa.i32[i];
    return simde__m512_from_private(r);
}
static inline simde__m512i emu_cvtps_epi32(simde__m512 a)
{
    simde__m512_private p = simde__m512_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) {
        float f = nearbyintf(p.f32[i]);
        r.i32[i] = (f >= -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : INT32_MIN;
    }
    return simde__m512i_from_private(r);
}
static inline simde__m512i emu_cvtepi8_epi32(simde__m128i a)
{
    simde__m128i_private p = simde__m128i_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) r.i32[i] = p.i8[i];
    return simde__m512i_from_private(r);
}
static inline simde__m512i emu_cvtepu8_epi32(simde__m128i a)
{
    simde__m128i_private p = simde__m128i_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) r.i32[i] = p.u8[i];
    return simde__m512i_from_private(r);
}
static inline simde__m512i emu_cvtepu16_epi32(simde__m256i a)
{
    simde__m256i_private p = simde__m256i_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) r.i32[i] = p.u16[i];
    return simde__m512i_from_private(r);
}
static inline simde__m128i emu_cvtepi32_epi8(simde__m512i a)
{
    EMU_I512(a);
    simde__m128i_private r;
    for (int i = 0; i < 16; i++) r.i8[i] = (int8_t)pa.i32[i];
    return simde__m128i_from_private(r);
}
static inline simde__m512 emu_cvtph_ps(simde__m256i a)
{
    simde__m256i_private p = simde__m256i_to_private(a);
    simde__m512_private r;
    for (int i = 0; i < 16; i++) r.f32[i] = emu_h2f(p.u16[i]);
    return simde__m512_from_private(r);
}
static inline simde__m256 emu_extractf32x8_ps(simde__m512 a, int imm)
{
    simde__m512_private p = simde__m512_to_private(a);
    simde__m256_private r;
    for (int i = 0; i < 8; i++) r.f32[i] = p.f32[8 * (imm & 1) + i];
    return simde__m256_from_private(r);
}
static inline simde__m512 emu_maskz_loadu_ps(uint16_t k, const void *p)
{
    simde__m512_private r;
    for (int i = 0; i < 16; i++) {
        r.f32[i] = 0;
        if (k >> i & 1) memcpy(&r.f32[i], (const char *)p + 4 * i, 4);
    }
    return simde__m512_from_private(r);
}
static inline simde__m512i emu_maskz_loadu_epi32(uint16_t k, const void *p)
{
    simde__m512i_private r;
    for (int i = 0; i < 16; i++) {
        r.i32[i] = 0;
        if (k >> i & 1) memcpy(&r.i32[i], (const char *)p + 4 * i, 4);
    }
    return simde__m512i_from_private(r);
}
static inline uint32_t emu_reduce_max_epu32(simde__m512i a)
{
    EMU_I512(a);
    uint32_t m = pa.u32[0];
    for (int i = 1; i < 16; i++) m = pa.u32[i] > m ? pa.u32[i] : m;
    return m;
}
static inline simde__m512 emu_fmadd_ps(simde__m512 a, simde__m512 b, simde__m512 c)
{
    simde__m512_private pa = simde__m512_to_private(a), pb = simde__m512_to_private(b),
                        pc = simde__m512_to_private(c), r;
    for (int i = 0; i < 16; i++) r.f32[i] = fmaf(pa.f32[i], pb.f32[i], pc.f32[i]);
    return simde__m512_from_private(r);
}
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu_fmadd_ps
#define _mm512_cvtepi32_ps emu_cvtepi32_ps
#define _mm512_cvtps_epi32 emu_cvtps_epi32
#define _mm512_cvtepi8_epi32 emu_cvtepi8_epi32
#define _mm512_cvtepu8_epi32 emu_cvtepu8_epi32
#define _mm512_cvtepu16_epi32 emu_cvtepu16_epi32
#define _mm512_cvtepi32_epi8 emu_cvtepi32_epi8
#define _mm512_cvtph_ps emu_cvtph_ps
#define _mm512_extractf32x8_ps emu_extractf32x8_ps
#define _mm512_maskz_loadu_ps emu_maskz_loadu_ps
#define _mm512_maskz_loadu_epi32 emu_maskz_loadu_epi32
#define _mm512_reduce_max_epu32 emu_reduce_max_epu32
#endif
