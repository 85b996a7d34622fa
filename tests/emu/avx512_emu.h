/*
 * avx512_emu.h - run the AVX-512 and VNNI kernels on a CPU without them (test builds only).
 *
 * With -DGLMQ_EMULATE_AVX512=ON (tests/run.sh --emulate-avx512) the *_avx512.c sources and
 * quant/dot_avxvnni.c are compiled for AVX2 with this header forced in front of them: SIMDe
 * (Debian libsimde-dev) supplies portable versions of the _mm512_* intrinsics under their native
 * names, the 256-bit AVX-VNNI vpdpbusd is mapped to SIMDe's AVX512-VNNI one below, and the
 * intrinsics SIMDe 0.7.4 lacks are written out below lane by lane. src/core/cpu.c then reports
 * the avx512, avx512vnni and avxvnni levels as supported, so the whole suite (every kernel
 * against its scalar reference, the forward pass against the PyTorch goldens) runs the AVX-512
 * and AVX-VNNI code paths on any x86-64 machine with AVX2.
 *
 * Floating-point reductions follow GCC 12's avx512fintrin.h operation for operation (halves,
 * then quarters, then the {2,3,0,1} and {1,0,1,0} shuffles), so emulated results have the bits
 * the real instructions give. Masked loads touch only the selected lanes, as the hardware does
 * (a masked-off lane may lie past the end of a buffer). Never part of the library.
 */
#ifndef GLMQ_AVX512_EMU_H
#define GLMQ_AVX512_EMU_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define EMU static inline __attribute__((unused))

/* AVX-VNNI's VEX vpdpbusd ymm (quant/dot_avxvnni.c) has the semantics of AVX512-VNNI's EVEX
 * ymm form, which SIMDe provides: per int32 lane, the four u8 x s8 products added, wrapping. */
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32((src), (a), (b))

/* lane arrays <-> vectors */
EMU simde__m512 emu_ld_ps(const float *t) { return simde_mm512_loadu_ps(t); }
EMU simde__m512d emu_ld_pd(const double *t) { return simde_mm512_loadu_pd(t); }
EMU simde__m512i emu_ld_si(const void *t) { return simde_mm512_loadu_si512(t); }
EMU void emu_st_ps(float *t, simde__m512 a) { simde_mm512_storeu_ps(t, a); }
EMU void emu_st_pd(double *t, simde__m512d a) { simde_mm512_storeu_pd(t, a); }
EMU void emu_st_si(void *t, simde__m512i a) { simde_mm512_storeu_si512(t, a); }
EMU simde__m256i emu_ld_si256(const void *t) { return simde_mm256_loadu_si256(t); }
EMU void emu_st_si256(void *t, simde__m256i a) { simde_mm256_storeu_si256(t, a); }
EMU simde__m128i emu_ld_si128(const void *t) { return simde_mm_loadu_si128(t); }
EMU void emu_st_si128(void *t, simde__m128i a) { simde_mm_storeu_si128(t, a); }

/* ---- masked loads and stores: only the selected lanes are touched ---------------------------- */

#define EMU_MASKED(name, vt, et, n, ld, st)                                                      \
    EMU vt glmq_emu_maskz_loadu_##name(uint32_t k, const void *p)                                \
    {                                                                                            \
        et t[n];                                                                                 \
        for (int i = 0; i < n; i++) {                                                            \
            t[i] = 0;                                                                            \
            if ((k >> i) & 1) memcpy(&t[i], (const char *)p + sizeof(et) * i, sizeof(et));       \
        }                                                                                        \
        return ld(t);                                                                            \
    }                                                                                            \
    EMU void glmq_emu_mask_storeu_##name(void *p, uint32_t k, vt a)                              \
    {                                                                                            \
        et t[n];                                                                                 \
        st(t, a);                                                                                \
        for (int i = 0; i < n; i++)                                                              \
            if ((k >> i) & 1) memcpy((char *)p + sizeof(et) * i, &t[i], sizeof(et));             \
    }

EMU_MASKED(512_epi32, simde__m512i, int32_t, 16, emu_ld_si, emu_st_si)
EMU_MASKED(512_ps, simde__m512, float, 16, emu_ld_ps, emu_st_ps)
EMU_MASKED(256_epi16, simde__m256i, int16_t, 16, emu_ld_si256, emu_st_si256)

#undef _mm512_maskz_loadu_epi32
#define _mm512_maskz_loadu_epi32(k, p) glmq_emu_maskz_loadu_512_epi32((k), (p))
#undef _mm512_mask_storeu_epi32
#define _mm512_mask_storeu_epi32(p, k, a) glmq_emu_mask_storeu_512_epi32((p), (k), (a))
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps(k, p) glmq_emu_maskz_loadu_512_ps((k), (p))
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps(p, k, a) glmq_emu_mask_storeu_512_ps((p), (k), (a))
#undef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16(k, p) glmq_emu_maskz_loadu_256_epi16((k), (p))
#undef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16(p, k, a) glmq_emu_mask_storeu_256_epi16((p), (k), (a))

/* ---- conversions ----------------------------------------------------------------------------- */

EMU simde__m512 glmq_emu_cvtepi32_ps(simde__m512i a)
{
    int32_t s[16];
    float d[16];
    emu_st_si(s, a);
    for (int i = 0; i < 16; i++) d[i] = (float)s[i]; /* round to nearest even, as vcvtdq2ps */
    return emu_ld_ps(d);
}
/* vcvtps2dq under the default MXCSR: round to nearest even; NaN/out of range -> INT32_MIN */
EMU simde__m512i glmq_emu_cvtps_epi32(simde__m512 a)
{
    float s[16];
    int32_t d[16];
    emu_st_ps(s, a);
    for (int i = 0; i < 16; i++)
        d[i] = (s[i] >= -2147483648.0f && s[i] < 2147483648.0f) ? (int32_t)nearbyintf(s[i])
                                                                : INT32_MIN;
    return emu_ld_si(d);
}
EMU simde__m512d glmq_emu_cvtps_pd(simde__m256 a)
{
    float s[8];
    double d[8];
    simde_mm256_storeu_ps(s, a);
    for (int i = 0; i < 8; i++) d[i] = s[i];
    return emu_ld_pd(d);
}
EMU simde__m128i glmq_emu_cvtepi32_epi8(simde__m512i a) /* vpmovdb: truncate */
{
    int32_t s[16];
    int8_t d[16];
    emu_st_si(s, a);
    for (int i = 0; i < 16; i++) d[i] = (int8_t)(uint8_t)(uint32_t)s[i];
    return emu_ld_si128(d);
}
EMU simde__m512i glmq_emu_cvtepi8_epi32(simde__m128i a)
{
    int8_t s[16];
    int32_t d[16];
    emu_st_si128(s, a);
    for (int i = 0; i < 16; i++) d[i] = s[i];
    return emu_ld_si(d);
}
EMU simde__m512i glmq_emu_cvtepu8_epi32(simde__m128i a)
{
    uint8_t s[16];
    int32_t d[16];
    emu_st_si128(s, a);
    for (int i = 0; i < 16; i++) d[i] = s[i];
    return emu_ld_si(d);
}
EMU simde__m512i glmq_emu_cvtepu16_epi32(simde__m256i a)
{
    uint16_t s[16];
    int32_t d[16];
    emu_st_si256(s, a);
    for (int i = 0; i < 16; i++) d[i] = s[i];
    return emu_ld_si(d);
}
/* half <-> single through the native F16C instructions, 8 lanes at a time */
EMU simde__m512 glmq_emu_cvtph_ps(simde__m256i a)
{
    float d[16];
    _mm256_storeu_ps(d, _mm256_cvtph_ps(_mm256_castsi256_si128((__m256i)a)));
    _mm256_storeu_ps(d + 8, _mm256_cvtph_ps(_mm256_extracti128_si256((__m256i)a, 1)));
    return emu_ld_ps(d);
}
#define glmq_emu_cvtps_ph(a, imm)                                                                \
    __extension__({                                                                              \
        float s_[16];                                                                            \
        emu_st_ps(s_, (a));                                                                      \
        __m128i lo_ = _mm256_cvtps_ph(_mm256_loadu_ps(s_), (imm));                               \
        __m128i hi_ = _mm256_cvtps_ph(_mm256_loadu_ps(s_ + 8), (imm));                           \
        (simde__m256i) _mm256_inserti128_si256(_mm256_castsi128_si256(lo_), hi_, 1);            \
    })
EMU simde__m256 glmq_emu_extractf32x8_ps(simde__m512 a, int imm)
{
    float s[16];
    emu_st_ps(s, a);
    return simde_mm256_loadu_ps(s + 8 * (imm & 1));
}

#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) glmq_emu_cvtepi32_ps(a)
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32(a) glmq_emu_cvtps_epi32(a)
#undef _mm512_cvtps_pd
#define _mm512_cvtps_pd(a) glmq_emu_cvtps_pd(a)
#undef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8(a) glmq_emu_cvtepi32_epi8(a)
#undef _mm512_cvtepi8_epi32
#define _mm512_cvtepi8_epi32(a) glmq_emu_cvtepi8_epi32(a)
#undef _mm512_cvtepu8_epi32
#define _mm512_cvtepu8_epi32(a) glmq_emu_cvtepu8_epi32(a)
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(a) glmq_emu_cvtepu16_epi32(a)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(a) glmq_emu_cvtph_ps(a)
#undef _mm512_cvtps_ph
#define _mm512_cvtps_ph(a, imm) glmq_emu_cvtps_ph((a), (imm))
#undef _mm512_extractf32x8_ps
#define _mm512_extractf32x8_ps(a, imm) glmq_emu_extractf32x8_ps((a), (imm))
#undef _mm512_shuffle_f32x4
#define _mm512_shuffle_f32x4(a, b, imm) simde_mm512_shuffle_f32x4((a), (b), (imm))
#undef _mm512_shuffle_ps
#define _mm512_shuffle_ps(a, b, imm) simde_mm512_shuffle_ps((a), (b), (imm))
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps(a, imm) simde_mm512_roundscale_ps((a), (imm))

/* ---- reductions, in GCC 12's order ------------------------------------------------------------ */

EMU float emu_maxf(float a, float b) { return a > b ? a : b; } /* maxps(a, b) */

EMU float glmq_emu_reduce_add_ps(simde__m512 a)
{
    float v[16], t3[8], t6[4], t8[2];
    emu_st_ps(v, a);
    for (int i = 0; i < 8; i++) t3[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; i++) t6[i] = t3[4 + i] + t3[i];
    t8[0] = t6[0] + t6[2];
    t8[1] = t6[1] + t6[3];
    return t8[0] + t8[1];
}
EMU float glmq_emu_reduce_max_ps(simde__m512 a)
{
    float v[16], t3[8], t6[4], t8[4];
    emu_st_ps(v, a);
    for (int i = 0; i < 8; i++) t3[i] = emu_maxf(v[8 + i], v[i]);
    for (int i = 0; i < 4; i++) t6[i] = emu_maxf(t3[4 + i], t3[i]);
    const int sh7[4] = {2, 3, 0, 1};
    for (int i = 0; i < 4; i++) t8[i] = emu_maxf(t6[i], t6[sh7[i]]);
    return emu_maxf(t8[0], t8[1]); /* T10[0] = max(T8[0], T9[0] = T8[1]) */
}
EMU double glmq_emu_reduce_add_pd(simde__m512d a)
{
    double v[8], t3[4], t6[2];
    emu_st_pd(v, a);
    for (int i = 0; i < 4; i++) t3[i] = v[4 + i] + v[i];
    for (int i = 0; i < 2; i++) t6[i] = t3[2 + i] + t3[i];
    return t6[0] + t6[1];
}
EMU uint32_t glmq_emu_reduce_max_epu32(simde__m512i a)
{
    uint32_t v[16], m = 0;
    emu_st_si(v, a);
    for (int i = 0; i < 16; i++) m = v[i] > m ? v[i] : m;
    return m;
}
EMU int32_t glmq_emu_reduce_add_epi32(simde__m512i a)
{
    uint32_t v[16], s = 0;
    emu_st_si(v, a);
    for (int i = 0; i < 16; i++) s += v[i];
    return (int32_t)s;
}

#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps(a) glmq_emu_reduce_add_ps(a)
#undef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps(a) glmq_emu_reduce_max_ps(a)
#undef _mm512_reduce_add_pd
#define _mm512_reduce_add_pd(a) glmq_emu_reduce_add_pd(a)
#undef _mm512_reduce_max_epu32
#define _mm512_reduce_max_epu32(a) glmq_emu_reduce_max_epu32(a)
#undef _mm512_reduce_add_epi32
#define _mm512_reduce_add_epi32(a) glmq_emu_reduce_add_epi32(a)

#endif /* GLMQ_AVX512_EMU_H */
