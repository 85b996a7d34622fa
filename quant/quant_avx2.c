/*
 * quant_avx2.c - AVX2 + FMA + F16C quantizers and 16-bit float conversions.
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c); only reached through the kernel table of
 * src/core/cpu.c after CPUID + XGETBV said the CPU and OS can run it. Every function is
 * bit-identical to its _ref twin (quant_ref.c, src/core/fp16.c) in codes, scales, return values
 * and converted bits; tests/check_quant.c checks that, misaligned pointers included.
 *
 * The algorithm is the one of quant_avx512.c at half the width (see the comment there for why
 * each step is exact): amax by vpmaxud over |w| bit patterns (NaN/Inf show up as >= 0x7f800000),
 * the shared scalar scale helper, vdivps (never a reciprocal), clamp in float, vcvtps2dq
 * (MXCSR = ties-to-even), saturating packs that never saturate (|q| <= 127), and a zero-filled
 * stack block for the row tail so padding comes out as code 0 by construction. Rows whose scale
 * is 0 are handed to _ref.
 *
 * Statistics: e = q*s - w by one vfmsub; e^2, w^2 in 2 x 8 fp32 lanes for at most 256
 * elements (16 per lane and chain), then flushed into 2 x 4 double lanes. They can differ from
 * _ref in the last 6-7 significant digits; codes and scales never do.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <immintrin.h>

/* ---- pass 1: amax bits ----------------------------------------------------------------------- */

/* max_j absbits(w[j]). Lanes: 8 x u32 per ymm, four accumulators; scalar tail (< 8). */
static uint32_t amax_bits(const float *w, int64_t n)
{
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_epu32(
            m0, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i)), absmask));
        m1 = _mm256_max_epu32(
            m1, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i + 8)), absmask));
        m2 = _mm256_max_epu32(
            m2, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i + 16)), absmask));
        m3 = _mm256_max_epu32(
            m3, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i + 24)), absmask));
    }
    for (; i + 8 <= n; i += 8)
        m0 = _mm256_max_epu32(
            m0, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w + i)), absmask));
    m0 = _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3));
    /* 8 -> 4 -> 2 -> 1 lanes */
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    uint32_t r = (uint32_t)_mm_cvtsi128_si32(m);
    for (; i < n; i++) {
        uint32_t b = glmq_q_absbits(w[i]);
        if (b > r) r = b;
    }
    return r;
}

/* ---- pass 2: 32 codes at a time -------------------------------------------------------------- */

/*
 * Statistics accumulators: e2[c]/w2[c] are two chains (c = k & 1 of the vector) of 8 fp32 lanes,
 * so consecutive vfmadds do not wait on each other's 4-cycle latency; with 16 ymm registers
 * two chains is what fits beside the constants and the four code vectors. emax is one chain
 * (vmaxps is short). Flushed every 256 elements (16 per lane and chain) into 4 double lanes.
 */
typedef struct {
    __m256 e2[2], w2[2], emax;
    __m256d d_e2, d_w2;
} qacc;

static inline void acc_init(qacc *a)
{
    a->e2[0] = a->e2[1] = a->w2[0] = a->w2[1] = a->emax = _mm256_setzero_ps();
    a->d_e2 = a->d_w2 = _mm256_setzero_pd();
}

/* 8 x fp32 -> two 4 x double halves added into d. */
static inline __m256d add_widened(__m256d d, __m256 v)
{
    d = _mm256_add_pd(d, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(d, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline void acc_flush(qacc *a)
{
    a->d_e2 = add_widened(a->d_e2, _mm256_add_ps(a->e2[0], a->e2[1]));
    a->d_w2 = add_widened(a->d_w2, _mm256_add_ps(a->w2[0], a->w2[1]));
    a->e2[0] = a->e2[1] = a->w2[0] = a->w2[1] = _mm256_setzero_ps();
}

static inline double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static inline void acc_finish(qacc *a, glmq_qstats *st)
{
    acc_flush(a);
    st->sum_sq_err = hsum_pd(a->d_e2);
    st->sum_sq = hsum_pd(a->d_w2);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a->emax), _mm256_extractf128_ps(a->emax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    st->max_abs_err = (double)_mm_cvtss_f32(m);
}

/*
 * Quantize w[0..32) to int8 codes, returned packed but not in element order: after
 * vpackssdw + vpacksswb each 128-bit lane L holds the dwords
 *     [ v0[4L..4L+3] | v1[4L..4L+3] | v2[4L..4L+3] | v3[4L..4L+3] ]   (v_k = elements 8k..)
 * and perm32() restores the order. quant8() is one 8-lane vector: x fp32 -> y = clamp(x / s)
 * fp32 -> q int32 (RNE) -> stats from e = q*s - w.
 */
static inline __attribute__((always_inline)) __m256i quant8(const float *w, __m256 vs, __m256 vqmax,
                                                            __m256 vqmin, __m256 *e2, __m256 *w2,
                                                            __m256 *emax, const int want_stats)
{
    __m256 x = _mm256_loadu_ps(w);
    __m256 y = _mm256_div_ps(x, vs); /* IEEE division, as the scalar w / s */
    y = _mm256_min_ps(_mm256_max_ps(y, vqmin), vqmax);
    __m256i q = _mm256_cvtps_epi32(y); /* MXCSR rounding = RNE */
    if (want_stats) {
        __m256 e = _mm256_fmsub_ps(_mm256_cvtepi32_ps(q), vs, x);
        *e2 = _mm256_fmadd_ps(e, e, *e2);
        *w2 = _mm256_fmadd_ps(x, x, *w2);
        *emax = _mm256_max_ps(*emax, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), e));
    }
    return q;
}

/* (Written out four times rather than as a loop: GCC -O2 does not unroll it and would then
 * keep the codes and the accumulators in memory.) */
static inline __attribute__((always_inline)) __m256i
quant32(const float *w, __m256 vs, __m256 vqmax, __m256 vqmin, qacc *a, const int want_stats)
{
    __m256i q0 = quant8(w, vs, vqmax, vqmin, &a->e2[0], &a->w2[0], &a->emax, want_stats);
    __m256i q1 = quant8(w + 8, vs, vqmax, vqmin, &a->e2[1], &a->w2[1], &a->emax, want_stats);
    __m256i q2 = quant8(w + 16, vs, vqmax, vqmin, &a->e2[0], &a->w2[0], &a->emax, want_stats);
    __m256i q3 = quant8(w + 24, vs, vqmax, vqmin, &a->e2[1], &a->w2[1], &a->emax, want_stats);
    __m256i p01 = _mm256_packs_epi32(q0, q1); /* int16, per lane: v0 | v1 */
    __m256i p23 = _mm256_packs_epi32(q2, q3); /* int16, per lane: v2 | v3 */
    return _mm256_packs_epi16(p01, p23);      /* int8, per lane: v0 | v1 | v2 | v3 */
}

/* Output dword t = 2k + L (elements 4t..4t+3) sits at source dword 4L + k. */
static inline __m256i perm32(__m256i b)
{
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline int64_t row_prologue(const float *w, int64_t n, int qmax, uint16_t *scale, float *s)
{
    uint32_t ab = amax_bits(w, n);
    if (ab >= GLMQ_Q_NONFINITE) return glmq_q_first_nonfinite(w, n);
    float amax;
    memcpy(&amax, &ab, 4);
    if (!glmq_q_row_scale(amax, qmax, scale, s)) return 0;
    return -1;
}

/* ---- INT8 ------------------------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void
q8_body(const float *w, int64_t n, uint8_t *o, float s, glmq_qstats *st, const int want_stats)
{
    const __m256 vs = _mm256_set1_ps(s);
    const __m256 vqmax = _mm256_set1_ps(127.0f), vqmin = _mm256_set1_ps(-127.0f);
    qacc a;
    acc_init(&a);
    int64_t i = 0;
    int groups = 0;
    for (; i + 64 <= n; i += 64) { /* one 64-byte output line per step */
        __m256i b0 = perm32(quant32(w + i, vs, vqmax, vqmin, &a, want_stats));
        __m256i b1 = perm32(quant32(w + i + 32, vs, vqmax, vqmin, &a, want_stats));
        _mm256_storeu_si256((__m256i *)(o + i), b0);
        _mm256_storeu_si256((__m256i *)(o + i + 32), b1);
        if (want_stats && ++groups == 4) { /* 256 elements: 16 per lane and chain */
            acc_flush(&a);
            groups = 0;
        }
    }
    if (i < n) { /* tail: zero-padded block -> padding codes 0 */
        _Alignas(64) float buf[64] = {0};
        memcpy(buf, w + i, (size_t)(n - i) * sizeof(float));
        __m256i b0 = perm32(quant32(buf, vs, vqmax, vqmin, &a, want_stats));
        __m256i b1 = perm32(quant32(buf + 32, vs, vqmax, vqmin, &a, want_stats));
        _mm256_storeu_si256((__m256i *)(o + i), b0);
        _mm256_storeu_si256((__m256i *)(o + i + 32), b1);
    }
    if (want_stats) acc_finish(&a, st);
}

int64_t glmq_quantize_row_q8_avx2(const float *w, int64_t n, void *out, uint16_t *scale,
                                  glmq_qstats *st)
{
    float s = 0.0f;
    int64_t r = row_prologue(w, n, 127, scale, &s);
    if (r >= 0) return r;
    if (s == 0.0f) return glmq_quantize_row_q8_ref(w, n, out, scale, st);
    if (st)
        q8_body(w, n, (uint8_t *)out, s, st, 1);
    else
        q8_body(w, n, (uint8_t *)out, s, NULL, 0);
    return -1;
}

/* ---- INT4 ------------------------------------------------------------------------------------ */

/*
 * One 128-element block -> 64 bytes, as two ymm halves. Half h (0/1) pairs elements
 * 32h..32h+31 (low nibbles) with 64+32h..64+32h+31 (high nibbles): quant.h's "a 32-byte load
 * at +32 holds 32..63 and 96..127". Nibbles are offset-binary (q+8 in 1..15), so the vpsllw by
 * 4 of 16-bit lanes never carries into the neighbouring byte.
 */
static inline __attribute__((always_inline)) void q4_block(const float *w, uint8_t *o, __m256 vs,
                                                           __m256 vqmax, __m256 vqmin, qacc *a,
                                                           const int want_stats)
{
    const __m256i eight = _mm256_set1_epi8(8);
    for (int h = 0; h < 2; h++) {
        __m256i lo = quant32(w + 32 * h, vs, vqmax, vqmin, a, want_stats);
        __m256i hi = quant32(w + 64 + 32 * h, vs, vqmax, vqmin, a, want_stats);
        lo = _mm256_add_epi8(lo, eight);
        hi = _mm256_slli_epi16(_mm256_add_epi8(hi, eight), 4);
        _mm256_storeu_si256((__m256i *)(o + 32 * h), perm32(_mm256_or_si256(lo, hi)));
    }
}

static inline __attribute__((always_inline)) void
q4_body(const float *w, int64_t n, uint8_t *o, float s, glmq_qstats *st, const int want_stats)
{
    const __m256 vs = _mm256_set1_ps(s);
    const __m256 vqmax = _mm256_set1_ps(7.0f), vqmin = _mm256_set1_ps(-7.0f);
    qacc a;
    acc_init(&a);
    int64_t i = 0;
    int blocks = 0;
    for (; i + GLMQ_Q4_BLOCK <= n; i += GLMQ_Q4_BLOCK) {
        q4_block(w + i, o + i / 2, vs, vqmax, vqmin, &a, want_stats);
        if (want_stats && ++blocks == 2) { /* 256 elements: 16 per lane and chain */
            acc_flush(&a);
            blocks = 0;
        }
    }
    if (i < n) { /* tail: zero-padded block -> padding nibbles 8 */
        _Alignas(64) float buf[GLMQ_Q4_BLOCK] = {0};
        memcpy(buf, w + i, (size_t)(n - i) * sizeof(float));
        q4_block(buf, o + i / 2, vs, vqmax, vqmin, &a, want_stats);
    }
    if (want_stats) acc_finish(&a, st);
}

int64_t glmq_quantize_row_q4_avx2(const float *w, int64_t n, void *out, uint16_t *scale,
                                  glmq_qstats *st)
{
    float s = 0.0f;
    int64_t r = row_prologue(w, n, 7, scale, &s);
    if (r >= 0) return r;
    if (s == 0.0f) return glmq_quantize_row_q4_ref(w, n, out, scale, st);
    if (st)
        q4_body(w, n, (uint8_t *)out, s, st, 1);
    else
        q4_body(w, n, (uint8_t *)out, s, NULL, 0);
    return -1;
}

/* ---- 16-bit float conversions ---------------------------------------------------------------- */

/*
 * f16 -> f32 with F16C vcvtph2ps: 8 halves (xmm) -> 8 floats (ymm), exact. The hardware quiets
 * signalling NaNs while glmq_f16_to_f32 keeps the bits, so as in the AVX-512 version we keep
 * max(h & 0x7fff) in 8 x u16 lanes and redo NaN elements in scalar when it exceeds 0x7c00.
 * Tail (< 8): scalar glmq_f16_to_f32, the reference itself.
 */
void glmq_f16_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    const __m128i mag = _mm_set1_epi16(0x7fff);
    __m128i hmax = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i h0 = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        __m128i h1 = _mm_loadu_si128((const __m128i *)(s + 2 * i + 16));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h0));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(h1));
        hmax = _mm_max_epu16(hmax, _mm_max_epu16(_mm_and_si128(h0, mag), _mm_and_si128(h1, mag)));
    }
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
        hmax = _mm_max_epu16(hmax, _mm_and_si128(h, mag));
    }
    int64_t vec_end = i;
    for (; i < n; i++) dst[i] = glmq_f16_to_f32(glmq_rd_le16(s + 2 * i));
    /* horizontal max of 8 x u16 = complement of phminposuw of the complement */
    uint16_t top =
        (uint16_t)(0xffff -
                   _mm_extract_epi16(_mm_minpos_epu16(_mm_xor_si128(hmax, _mm_set1_epi32(-1))), 0));
    if (GLMQ_UNLIKELY(top > 0x7c00)) { /* some NaN: redo NaN lanes in scalar */
        for (int64_t j = 0; j < vec_end; j++) {
            uint16_t h = glmq_rd_le16(s + 2 * j);
            if ((h & 0x7fff) > 0x7c00) dst[j] = glmq_f16_to_f32(h);
        }
    }
}

/* bf16 -> f32: vpmovzxwd 8 x u16 -> 8 x u32, shift left 16. Tail (< 8) scalar. */
void glmq_bf16_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i)));
        __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i + 16)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(a, 16));
        _mm256_storeu_si256((__m256i *)(dst + i + 8), _mm256_slli_epi32(b, 16));
    }
    for (; i + 8 <= n; i += 8) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(a, 16));
    }
    for (; i < n; i++) dst[i] = glmq_bf16_to_f32(glmq_rd_le16(s + 2 * i));
}

/*
 * f32 -> f16 with F16C vcvtps2ph, explicit RNE immediate (independent of MXCSR.RC). Equal to
 * glmq_f32_to_f16 for every input (subnormals, ties, overflow to inf, NaN quieted with the top
 * payload bits kept). 8 floats (ymm) -> 8 halves (xmm); tail (< 8) scalar.
 */
void glmq_f32_to_f16_avx2(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(dst + i + 8), b);
    }
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = glmq_f32_to_f16(src[i]);
}
