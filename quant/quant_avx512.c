/*
 * quant_avx512.c - AVX-512 (F/BW/VL/DQ) quantizers and 16-bit float conversions.
 *
 * Built with per-file flags (-mavx512f -mavx512bw -mavx512vl -mavx512dq ...); only reached
 * through the kernel table of src/core/cpu.c after CPUID + XGETBV said the CPU and OS can run
 * it. Every function is bit-identical to its _ref twin (quant_ref.c, src/core/fp16.c) in codes,
 * scales, return values and converted bits; tests/check_quant.c checks that for every length
 * class and for misaligned pointers.
 *
 * How bit-identity is kept (quant.h semantics, GLM-SPEC decision 6):
 *   - amax: vpmaxud over |w| bit patterns (see glmq_q_absbits). Exact, order-independent, and
 *     the same max also reveals NaN/Inf (>= 0x7f800000), after which the scalar scan of
 *     quant_x86.h names the first bad column exactly like _ref.
 *   - scale: the shared scalar glmq_q_row_scale (one fp32 division, RNE to fp16).
 *   - codes: vdivps (a correctly rounded IEEE division, the same as the scalar `w / s`; never a
 *     reciprocal), clamp in float to [-qmax, qmax] (clamp then round == round then clamp, qmax
 *     being an integer), then vcvtps2dq, which rounds in the MXCSR mode = ties-to-even, like
 *     rintf in _ref.
 *   - scale 0 rows (all codes 0) go to _ref: they are rare and it avoids a 0/0 here.
 *   - row tails: the last partial 64/128-element group is copied into a zero-filled stack
 *     block and run through the same vector code; a zero element quantizes to code 0, which is
 *     exactly the padding (INT8 byte 0, INT4 nibble 8), so no scalar tail is needed.
 *
 * Statistics (glmq_qstats) are NOT bit-identical to _ref: errors e = q*s - w come from one
 * vfmsub (the exact difference rounded once to fp32), e^2 and w^2 are accumulated in fp32
 * lanes (four chains) for at most 256 elements and then flushed into double lanes, and the
 * lanes are summed in a different order. The printed statistics can therefore differ across
 * ISAs in the last 6-7 significant digits; codes and scales never differ.
 *
 * Data flow per row (the converter's hot loop): the caller widens a row of f16/bf16 into an
 * fp32 buffer (glmq_f16_to_f32_avx512, L1/L2 resident), pass 1 reads it for amax, pass 2 reads
 * it again to divide, round, pack and store; both passes stream from L1/L2.
 */
#include "quant/quant.h"
#include "quant/quant_x86.h"

#include <immintrin.h>

/* ---- pass 1: amax bits ----------------------------------------------------------------------- */

/*
 * max_j absbits(w[j]) over w[0..n). Lanes: 16 x u32 per zmm; four independent accumulators so
 * the loop is load-bound (2 loads/cycle), not latency-bound on vpmaxud. The tail (< 16) uses
 * a masked zeroing load: absent lanes read as +0 and cannot raise the max.
 */
static uint32_t amax_bits(const float *w, int64_t n)
{
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(w + i), absmask));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(w + i + 16), absmask));
        m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512(w + i + 32), absmask));
        m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512(w + i + 48), absmask));
    }
    for (; i + 16 <= n; i += 16)
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(w + i), absmask));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_maskz_loadu_epi32(k, w + i), absmask));
    }
    m0 = _mm512_max_epu32(_mm512_max_epu32(m0, m1), _mm512_max_epu32(m2, m3));
    return _mm512_reduce_max_epu32(m0);
}

/* ---- pass 2: 64 codes at a time -------------------------------------------------------------- */

/*
 * Statistics accumulators. e2[k]/w2[k]/emax[k]: 16 fp32 lanes each, one set per vector k of a
 * 64-element group (four independent vfmadd chains, so the 4-cycle FMA latency does not bound
 * the loop). Each lane sums e^2 / w^2 (max |e|) of the elements at its position, for at most
 * 256 elements per row (4 per lane and chain) before acc_flush() widens them into the
 * 8 x double lanes d_e2 / d_w2.
 */
typedef struct {
    __m512 e2[4], w2[4], emax[4];
    __m512d d_e2, d_w2;
} qacc;

static inline void acc_init(qacc *a)
{
    const __m512 z = _mm512_setzero_ps();
    a->e2[0] = a->e2[1] = a->e2[2] = a->e2[3] = z;
    a->w2[0] = a->w2[1] = a->w2[2] = a->w2[3] = z;
    a->emax[0] = a->emax[1] = a->emax[2] = a->emax[3] = z;
    a->d_e2 = a->d_w2 = _mm512_setzero_pd();
}

/* 16 x fp32 -> two 8 x double halves added into d. */
static inline __m512d add_widened(__m512d d, __m512 v)
{
    d = _mm512_add_pd(d, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(d, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

/* Fold the four fp32 chains (4 values per lane each) into the double accumulators. */
static inline void acc_flush(qacc *a)
{
    __m512 e2 = _mm512_add_ps(_mm512_add_ps(a->e2[0], a->e2[1]), _mm512_add_ps(a->e2[2], a->e2[3]));
    __m512 w2 = _mm512_add_ps(_mm512_add_ps(a->w2[0], a->w2[1]), _mm512_add_ps(a->w2[2], a->w2[3]));
    a->d_e2 = add_widened(a->d_e2, e2);
    a->d_w2 = add_widened(a->d_w2, w2);
    const __m512 z = _mm512_setzero_ps();
    a->e2[0] = a->e2[1] = a->e2[2] = a->e2[3] = z;
    a->w2[0] = a->w2[1] = a->w2[2] = a->w2[3] = z;
}

static inline void acc_finish(qacc *a, glmq_qstats *st)
{
    acc_flush(a);
    st->sum_sq_err = _mm512_reduce_add_pd(a->d_e2);
    st->sum_sq = _mm512_reduce_add_pd(a->d_w2);
    __m512 m =
        _mm512_max_ps(_mm512_max_ps(a->emax[0], a->emax[1]), _mm512_max_ps(a->emax[2], a->emax[3]));
    st->max_abs_err = (double)_mm512_reduce_max_ps(m);
}

/*
 * Quantize the 64 floats w[0..64) to int8 codes. Returns them packed but NOT yet in element
 * order: after vpackssdw + vpacksswb each 128-bit lane L holds four dwords
 *     [ v0[4L..4L+3] | v1[4L..4L+3] | v2[4L..4L+3] | v3[4L..4L+3] ]   (v_k = elements 16k..)
 * which perm64() puts back in order. Keeping the permute out lets the INT4 path merge two
 * groups bytewise first and permute once.
 *
 * quant16() is one 16-lane vector k: x = w (fp32), y = clamp(x / s) (fp32), q = cvt(y) (int32,
 * ties-to-even, |q| <= 127 so the saturating packs never saturate). With want_stats,
 * e = q*s - w via vfmsub, accumulated into chain k.
 */
static inline __attribute__((always_inline)) __m512i quant16(const float *w, __m512 vs,
                                                             __m512 vqmax, __m512 vqmin, qacc *a,
                                                             const int k, const int want_stats)
{
    __m512 x = _mm512_loadu_ps(w);
    __m512 y = _mm512_div_ps(x, vs); /* IEEE division, as the scalar w / s */
    y = _mm512_min_ps(_mm512_max_ps(y, vqmin), vqmax);
    __m512i q = _mm512_cvtps_epi32(y); /* MXCSR rounding = RNE */
    if (want_stats) {
        __m512 e = _mm512_fmsub_ps(_mm512_cvtepi32_ps(q), vs, x);
        a->e2[k] = _mm512_fmadd_ps(e, e, a->e2[k]);
        a->w2[k] = _mm512_fmadd_ps(x, x, a->w2[k]);
        a->emax[k] = _mm512_max_ps(a->emax[k], _mm512_abs_ps(e));
    }
    return q;
}

/* (Written out four times rather than as a loop: GCC -O2 does not unroll it and would then
 * keep the codes and the accumulators in memory.) */
static inline __attribute__((always_inline)) __m512i
quant64(const float *w, __m512 vs, __m512 vqmax, __m512 vqmin, qacc *a, const int want_stats)
{
    __m512i q0 = quant16(w, vs, vqmax, vqmin, a, 0, want_stats);
    __m512i q1 = quant16(w + 16, vs, vqmax, vqmin, a, 1, want_stats);
    __m512i q2 = quant16(w + 32, vs, vqmax, vqmin, a, 2, want_stats);
    __m512i q3 = quant16(w + 48, vs, vqmax, vqmin, a, 3, want_stats);
    __m512i p01 = _mm512_packs_epi32(q0, q1); /* int16, per lane: v0 | v1 */
    __m512i p23 = _mm512_packs_epi32(q2, q3); /* int16, per lane: v2 | v3 */
    return _mm512_packs_epi16(p01, p23);      /* int8, per lane: v0 | v1 | v2 | v3 */
}

/* Output dword t = 4k + L (elements 4t..4t+3) sits at source dword 4L + k. */
static inline __m512i perm64(__m512i b)
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(idx, b);
}

/* Common front of both quantizers: NaN/Inf scan, amax, scale. Returns -1 to go on. */
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
    const __m512 vs = _mm512_set1_ps(s);
    const __m512 vqmax = _mm512_set1_ps(127.0f), vqmin = _mm512_set1_ps(-127.0f);
    qacc a;
    acc_init(&a);
    int64_t i = 0;
    int groups = 0;
    for (; i + 64 <= n; i += 64) {
        _mm512_storeu_si512(o + i, perm64(quant64(w + i, vs, vqmax, vqmin, &a, want_stats)));
        if (want_stats && ++groups == 4) { /* 4 x 64 = 256 elements: 4 per lane and chain */
            acc_flush(&a);
            groups = 0;
        }
    }
    if (i < n) { /* tail: zero-padded block -> padding codes 0 */
        _Alignas(64) float buf[64] = {0};
        memcpy(buf, w + i, (size_t)(n - i) * sizeof(float));
        _mm512_storeu_si512(o + i, perm64(quant64(buf, vs, vqmax, vqmin, &a, want_stats)));
    }
    if (want_stats) acc_finish(&a, st);
}

int64_t glmq_quantize_row_q8_avx512(const float *w, int64_t n, void *out, uint16_t *scale,
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
 * One 128-element block -> 64 bytes. lo = codes of elements 0..63, hi = codes of 64..127, both
 * int8 in the same (unpermuted) byte order, so byte b of (lo+8) | (hi+8) << 4 pairs element j
 * with element j+64 as quant.h draws it. The shift is vpsllw on 16-bit lanes: each byte is
 * 1..15 before the shift, so nothing crosses into the neighbouring byte.
 */
static inline __attribute__((always_inline)) __m512i
q4_block(const float *w, __m512 vs, __m512 vqmax, __m512 vqmin, qacc *a, const int want_stats)
{
    const __m512i eight = _mm512_set1_epi8(8);
    __m512i lo = quant64(w, vs, vqmax, vqmin, a, want_stats);
    __m512i hi = quant64(w + 64, vs, vqmax, vqmin, a, want_stats);
    lo = _mm512_add_epi8(lo, eight);
    hi = _mm512_slli_epi16(_mm512_add_epi8(hi, eight), 4);
    return perm64(_mm512_or_si512(lo, hi));
}

static inline __attribute__((always_inline)) void
q4_body(const float *w, int64_t n, uint8_t *o, float s, glmq_qstats *st, const int want_stats)
{
    const __m512 vs = _mm512_set1_ps(s);
    const __m512 vqmax = _mm512_set1_ps(7.0f), vqmin = _mm512_set1_ps(-7.0f);
    qacc a;
    acc_init(&a);
    int64_t i = 0;
    int blocks = 0;
    for (; i + GLMQ_Q4_BLOCK <= n; i += GLMQ_Q4_BLOCK) {
        _mm512_storeu_si512(o + i / 2, q4_block(w + i, vs, vqmax, vqmin, &a, want_stats));
        if (want_stats && ++blocks == 2) { /* 2 x 128 = 256 elements: 4 per lane and chain */
            acc_flush(&a);
            blocks = 0;
        }
    }
    if (i < n) { /* tail: zero-padded block -> padding nibbles 8 */
        _Alignas(64) float buf[GLMQ_Q4_BLOCK] = {0};
        memcpy(buf, w + i, (size_t)(n - i) * sizeof(float));
        _mm512_storeu_si512(o + i / 2, q4_block(buf, vs, vqmax, vqmin, &a, want_stats));
    }
    if (want_stats) acc_finish(&a, st);
}

int64_t glmq_quantize_row_q4_avx512(const float *w, int64_t n, void *out, uint16_t *scale,
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
 * f16 -> f32: vcvtph2ps, 16 halves (one ymm) -> 16 floats (one zmm). Exact for every finite
 * value (subnormals included). One difference from glmq_f16_to_f32: the hardware quiets a
 * signalling NaN (sets f32 bit 22), the scalar code keeps the payload bits as they are. To stay
 * bit-identical we track max(h & 0x7fff) in 16 x u16 lanes (one vpand + vpmaxuw per vector);
 * if it exceeds 0x7c00 the row holds a NaN and those elements are redone by the scalar
 * function. NaN rows are errors for the quantizer anyway, so this path is cold.
 */
void glmq_f16_to_f32_avx512(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    const __m256i mag = _mm256_set1_epi16(0x7fff);
    __m256i hmax = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i h0 = _mm256_loadu_si256((const __m256i *)(s + 2 * i));
        __m256i h1 = _mm256_loadu_si256((const __m256i *)(s + 2 * i + 32));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h0));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(h1));
        hmax = _mm256_max_epu16(
            hmax, _mm256_max_epu16(_mm256_and_si256(h0, mag), _mm256_and_si256(h1, mag)));
    }
    for (; i < n; i += 16) { /* 1..31 left: masked loads/stores, absent lanes read as 0 */
        int64_t left = n - i < 16 ? n - i : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1);
        __m256i h = _mm256_maskz_loadu_epi16(k, s + 2 * i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(h));
        hmax = _mm256_max_epu16(hmax, _mm256_and_si256(h, mag));
    }
    /* horizontal max of 16 x u16: fold 256 -> 128, then phminposuw on the complement */
    __m128i m = _mm_max_epu16(_mm256_castsi256_si128(hmax), _mm256_extracti128_si256(hmax, 1));
    uint16_t top =
        (uint16_t)(0xffff -
                   _mm_extract_epi16(_mm_minpos_epu16(_mm_xor_si128(m, _mm_set1_epi32(-1))), 0));
    if (GLMQ_UNLIKELY(top > 0x7c00)) { /* some NaN: redo NaN lanes in scalar */
        for (int64_t j = 0; j < n; j++) {
            uint16_t h = glmq_rd_le16(s + 2 * j);
            if ((h & 0x7fff) > 0x7c00) dst[j] = glmq_f16_to_f32(h);
        }
    }
}

/* bf16 -> f32: zero-extend 16 x u16 to 16 x u32 (vpmovzxwd) and shift into the top half. */
void glmq_bf16_to_f32_avx512(const void *src, float *dst, int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i a = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + 2 * i)));
        __m512i b = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + 2 * i + 32)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(a, 16));
        _mm512_storeu_si512(dst + i + 16, _mm512_slli_epi32(b, 16));
    }
    for (; i < n; i += 16) {
        int64_t left = n - i < 16 ? n - i : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1);
        __m512i a = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, s + 2 * i));
        _mm512_mask_storeu_epi32(dst + i, k, _mm512_slli_epi32(a, 16));
    }
}

/*
 * f32 -> f16: vcvtps2ph with an explicit round-to-nearest-even immediate (independent of
 * MXCSR.RC). The hardware result equals glmq_f32_to_f16 for every input: RNE including the
 * subnormal range and the carry into the exponent, overflow to inf, NaN quieted with the top
 * 10 payload bits kept (checked exhaustively over all 2^32 inputs during development, and by a
 * sampled sweep in tests/check_quant.c). 16 floats (zmm) -> 16 halves (ymm) per step.
 */
void glmq_f32_to_f16_avx512(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m256i b = _mm512_cvtps_ph(_mm512_loadu_ps(src + i + 16), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        _mm256_storeu_si256((__m256i *)(dst + i + 16), b);
    }
    for (; i < n; i += 16) {
        int64_t left = n - i < 16 ? n - i : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, src + i);
        _mm256_mask_storeu_epi16(dst + i, k, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    }
}
