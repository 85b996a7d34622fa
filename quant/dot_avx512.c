/*
 * dot_avx512.c - AVX-512 matrix kernels (quant/dot.h): activation preparation and EXACT
 * (fp32) kernels on AVX-512 F/BW/VL/DQ, FAST (int8 activation) kernels on AVX-512 VNNI.
 *
 * Built with per-file flags (-mavx512f/bw/vl/dq -mavx2 -mfma -mf16c; VNNI only in its section) and reached only
 * through dot_dispatch.c after cpu.c's CPUID + XGETBV said the CPU and OS run AVX-512; the
 * *_avx512vnni kernels additionally only at the GLMQ_CPU_AVX512VNNI level.
 *
 * Shape of every kernel: a driver walks the rows [r0, r1) in panels of R rows and the tokens
 * in groups of T, and a micro-kernel keeps R x T accumulators in zmm registers while it walks
 * the columns in 128-column chunks (one INT4 block, two INT8 64-byte lines, four 32-column
 * activation blocks). Each chunk's weights are loaded and unpacked once per panel and reused
 * for the T tokens; each token's activations are loaded once per chunk and reused for the R
 * rows. Token groups are walked inside a token block sized to keep its prepared activations
 * in L2 while the panel's weights stay in L1.
 *
 * Determinism (dot.h §3): the work of one output (r, t) is the same instruction sequence in
 * every micro-kernel shape: a fresh fp32 (or int32) partial per chunk in a fixed order, added
 * into that output's own accumulator, chunks in column order, and one shared horizontal
 * reduction (hsum_ps / hsum_epi32) at the end. GEMV (T = 1, larger R) and GEMM therefore
 * produce the same bits, whatever r0/r1 and thread split.
 *
 * Preparation (dot.h §4) is bit-identical to dot_ref.c: amax by vpmaxud on |x| bits (exact),
 * the shared scalar act_scale (two fp32 divisions), vmulps, vmaxps/vminps clamp (NaN -> -127
 * as in _ref), vcvtps2dq (ties-to-even, like nearbyintf), vpmovdb (no saturation needed).
 */
#include "quant/dot.h"
#include "quant/dot_walk.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* ---- scalar helpers: identical copies of dot_ref.c ------------------------------------------- */

static inline void act_scale(float amax, float *d, float *id)
{
    if (amax >= 0x1p-100f) {
        *d = amax / 127.0f;
        *id = 127.0f / amax;
    } else {
        *d = 0.0f;
        *id = 0.0f;
    }
}

static inline float f_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Mask of the first n of 16 lanes (n clamped to 0..16). */
AI __mmask16 lanes16(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/*
 * GEMV prefetch (T == 1 only: GEMM re-reads its panel from L1/L2 for every token group). While
 * a panel of R rows runs chunk ch, the same chunk of the next panel (R rows further, i.e.
 * R * stride bytes ahead) is requested: the prefetch stream is exactly the order in which the
 * data will be used, a whole panel (8-16 KiB INT4) ahead, and works for any stride. Rows of
 * INT4 are only 2 KiB at cols 4096, too short for the hardware prefetchers to ramp up on
 * 4-8 interleaved streams. Prefetches past the matrix end are harmless (they never fault).
 */
AI void prefetch_next(const uint8_t *p, const int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)(p + o), _MM_HINT_T0);
}

/*
 * 64 bytes as two 256-bit loads joined by vinserti64x4: used by the bandwidth probe only. On
 * the Zen 5 machine this was tuned on, a plain stream of DRAM-missing 512-bit loads runs at
 * ~25 GB/s on one core while the same lines read as 256-bit halves run at ~30-34 GB/s, so the
 * probe uses halves to report the higher (honest) bandwidth. The GEMV kernels were measured
 * both ways: with the panel prefetch below they stream as fast or faster with plain 512-bit
 * loads (INT4 27-28 GB/s vs 25-27, INT8 24-26 either way), so they keep them.
 */
AI __m512i load_halves(const void *p)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)((const uint8_t *)p + 32)), 1);
}

/* ---- fixed horizontal reductions (the only ones used: GEMV == GEMM bit for bit) -------------- */

/* 16 fp32 lanes -> 1: halves 256, 128, 64, 32 bits, always in this order. */
AI float hsum_ps(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* 16 int32 lanes -> 1, modulo 2^32 (the caller's true sum fits int32; lanes may wrap). */
AI uint32_t hsum_epi32(__m512i v)
{
    __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

/* ---- preparation ----------------------------------------------------------------------------- */

void glmq_dot_prep_exact_avx512(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    float *xf = (float *)(void *)tok;
    /* 16 floats per store; the masked load zero-fills the padding past cols */
    for (int64_t c = 0; c < pcols; c += 16)
        _mm512_store_ps(xf + c, _mm512_maskz_loadu_ps(lanes16(cols - c), x + c));
}

/* Quantize 16 floats with block inverse scale id: 16 int32 codes in [-127, 127]. */
AI __m512i act_codes(__m512 x, __m512 id)
{
    __m512 v = _mm512_mul_ps(x, id);
    v = _mm512_max_ps(v, _mm512_set1_ps(-127.0f)); /* vmaxps returns src2 for NaN: -127 */
    v = _mm512_min_ps(v, _mm512_set1_ps(127.0f));
    return _mm512_cvtps_epi32(v); /* MXCSR round-to-nearest-even = nearbyintf */
}

/* Max of |x| bits over two 16-float vectors, as a float (exact; NaN bits win). */
AI float amax2(__m512 a, __m512 b)
{
    const __m512i abs = _mm512_set1_epi32(0x7fffffff);
    __m512i m = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(a), abs),
                                 _mm512_and_si512(_mm512_castps_si512(b), abs));
    return f_of_bits(_mm512_reduce_max_epu32(m));
}

/* FAST_B32, one 32-column block per step: codes of columns c..c+31 and the block's d. */
void glmq_dot_prep_b32_avx512(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float *db = glmq_dot_b32_scales(tok, pcols);
    for (int64_t c0 = 0; c0 < pcols; c0 += 64) {
        for (int h = 0; h < 2; h++) {
            const int64_t c = c0 + 32 * h;
            __m512 x0 = _mm512_maskz_loadu_ps(lanes16(cols - c), x + c);
            __m512 x1 = _mm512_maskz_loadu_ps(lanes16(cols - c - 16), x + c + 16);
            float id;
            act_scale(amax2(x0, x1), &db[c / 32], &id);
            const __m512 vid = _mm512_set1_ps(id);
            _mm_store_si128((__m128i *)(void *)(xq + c), _mm512_cvtepi32_epi8(act_codes(x0, vid)));
            _mm_store_si128((__m128i *)(void *)(xq + c + 16),
                            _mm512_cvtepi32_epi8(act_codes(x1, vid)));
        }
    }
    glmq_dot_b32_pad(tok, pcols);
}

void glmq_dot_prep_row_avx512(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    /* pass 1: amax bits, four u32 max chains */
    const __m512i abs = _mm512_set1_epi32(0x7fffffff);
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + c), abs));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + c + 16), abs));
        m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512(x + c + 32), abs));
        m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512(x + c + 48), abs));
    }
    for (; c < cols; c += 16)
        m0 = _mm512_max_epu32(
            m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(lanes16(cols - c), x + c), abs));
    m0 = _mm512_max_epu32(_mm512_max_epu32(m0, m1), _mm512_max_epu32(m2, m3));
    float d, id;
    act_scale(f_of_bits(_mm512_reduce_max_epu32(m0)), &d, &id);
    /* pass 2: codes (padding reads as 0 -> code 0) and their int32 sum (|sum| < 2^24) */
    const __m512 vid = _mm512_set1_ps(id);
    __m512i sum = _mm512_setzero_si512();
    for (c = 0; c < pcols; c += 16) {
        __m512i q = act_codes(_mm512_maskz_loadu_ps(lanes16(cols - c), x + c), vid);
        sum = _mm512_add_epi32(sum, q);
        _mm_store_si128((__m128i *)(void *)(xq + c), _mm512_cvtepi32_epi8(q));
    }
    int32_t s = (int32_t)hsum_epi32(sum);
    memset(tok + pcols, 0, 64);
    memcpy(tok + pcols, &d, 4);
    memcpy(tok + pcols + 4, &s, 4);
}

/* ---- micro-kernel limits (the walk itself is quant/dot_walk.h) ------------------------------- */

#define RMAX 8
#define TMAX 4

static inline float row_scale(const glmq_dot_mat *w, int64_t r)
{
    return _cvtsh_ss(w->scales[r]); /* F16C: exact widening, same as glmq_f16_to_f32 */
}


/* ---- EXACT: fp32 FMA over the widened weights ------------------------------------------------ */

/*
 * One 128-column chunk of R rows x T tokens. wc[r]: the chunk's weight bytes of row r;
 * xc[t]: the chunk's 128 fp32 activations of token t (zero past cols). nv = 8 vectors of 16
 * columns, or 4 for the final half chunk of an INT8 row whose padded length is 64 mod 128.
 *
 * Lanes: every zmm holds 16 consecutive columns as fp32. inner[r][t] starts at 0 and takes one
 * vfmadd231ps per vector, in the order below; then acc[r][t] += inner[r][t] (the two-level sum
 * of dot.h §2: <= 8 terms per lane per chunk, <= cols/128 chunk partials).
 *
 * INT4: vpmovzxbd widens 16 bytes (elements j..j+15 in the low nibbles, 64+j..64+j+15 in the
 * high nibbles) to 16 int32 lanes; vpermps uses bits 3:0 of each lane as an index into the
 * table {-8, ..., 7}, which is (nibble - 8) as fp32 with no and/convert/subtract: once on the
 * byte itself (low nibble) and once on byte >> 4 (high nibble). Order: v0, v4, v1, v5, ...
 * INT8: vpmovsxbd + vcvtdq2ps. F16: vcvtph2ps. BF16: vpmovzxwd + vpslld 16.
 */
AI void exact_chunk(const int type, const int R, const int T, const uint8_t *const *wc,
                    const float *const *xc, const int nv, __m512 (*acc)[TMAX])
{
    __m512 inner[RMAX][TMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) inner[r][t] = _mm512_setzero_ps();
    if (type == GLMQ_TYPE_INT4) {
        const __m512 tab = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            __m512 xl[TMAX], xh[TMAX];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                xl[t] = _mm512_load_ps(xc[t] + 16 * g);
                xh[t] = _mm512_load_ps(xc[t] + 64 + 16 * g);
            }
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m128i *src = (const __m128i *)(wc[r] + 16 * g);
                __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(src));
                __m512 wl = _mm512_permutexvar_ps(b, tab);
                __m512 wh = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), tab);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    inner[r][t] = _mm512_fmadd_ps(wl, xl[t], inner[r][t]);
                    inner[r][t] = _mm512_fmadd_ps(wh, xh[t], inner[r][t]);
                }
            }
        }
    } else {
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            __m512 xv[TMAX];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) xv[t] = _mm512_load_ps(xc[t] + 16 * v);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512 wf;
                if (type == GLMQ_TYPE_INT8) {
                    __m128i b = _mm_loadu_si128((const __m128i *)(wc[r] + 16 * v));
                    wf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
                } else if (type == GLMQ_TYPE_F16) {
                    __m256i h = _mm256_loadu_si256((const __m256i *)(wc[r] + 32 * v));
                    wf = _mm512_cvtph_ps(h);
                } else {
                    __m256i h = _mm256_loadu_si256((const __m256i *)(wc[r] + 32 * v));
                    wf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    inner[r][t] = _mm512_fmadd_ps(wf, xv[t], inner[r][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_add_ps(acc[r][t], inner[r][t]);
}

/* Bytes of one 128-column chunk of a row. */
AI int64_t chunk_bytes(const int type)
{
    return type == GLMQ_TYPE_INT4 ? 64 : type == GLMQ_TYPE_INT8 ? 128 : 256;
}

/*
 * R rows from r x T tokens from t, EXACT. Chunks: INT4 pcols/128 full chunks; INT8 full
 * chunks plus a 4-vector half chunk when the padded row is 64 mod 128; F16/BF16 full chunks
 * plus, when cols % 128 != 0, a last chunk copied into a zero-filled stack buffer (the rows
 * are not padded; the activations are).
 */
AI void exact_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t cb = chunk_bytes(type);
    int64_t nfull, rest; /* full chunks; columns in the last partial chunk */
    glmq_dot_exact_chunks(type, w, a, &nfull, &rest);
    const uint8_t *wr[RMAX];
    const float *xt[TMAX];
    __m512 acc[RMAX][TMAX];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) xt[j] = (const float *)(const void *)glmq_dot_tok(a, t + j);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm512_setzero_ps();

    for (int64_t ch = 0; ch < nfull; ch++) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) wc[i] = wr[i] + ch * cb;
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) xc[j] = xt[j] + ch * 128;
        if (T == 1)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) prefetch_next(wc[i] + (size_t)R * w->stride, cb);
        exact_chunk(type, R, T, wc, xc, 8, acc);
    }
    if (rest) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) xc[j] = xt[j] + nfull * 128;
        if (type == GLMQ_TYPE_INT8) {
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wc[i] = wr[i] + nfull * cb;
            exact_chunk(type, R, T, wc, xc, 4, acc);
        } else {
            _Alignas(64) uint8_t tail[RMAX][256];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                memset(tail[i], 0, 256);
                memcpy(tail[i], wr[i] + nfull * cb, (size_t)rest * 2);
                wc[i] = tail[i];
            }
            exact_chunk(type, R, T, wc, xc, 8, acc);
        }
    }
    const int scaled = type == GLMQ_TYPE_INT4 || type == GLMQ_TYPE_INT8;
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = scaled ? row_scale(w, r + i) : 1.0f;
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
            float v = hsum_ps(acc[i][j]);
            y[(t + j) * ldy + r + i] = scaled ? v * s : v;
        }
    }
}

/* GEMV: 8 rows in flight (16 accumulators + 2-3 temporaries); GEMM: 4 rows x 2 tokens
 * (16 accumulators + 4 activation vectors + temporaries). */
#define Q4E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)
#define F16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_F16, R, T, w, r, a, t, y, ldy)
#define BF16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_BF16, R, T, w, r, a, t, y, ldy)

GLMQ_DOT_KERNEL(glmq_q4_dot_f32_avx512, Q4E_BLK, 8, 4, 2)
GLMQ_DOT_KERNEL(glmq_q8_dot_f32_avx512, Q8E_BLK, 8, 4, 2)
GLMQ_DOT_KERNEL(glmq_f16_dot_f32_avx512, F16_BLK, 8, 4, 2)
GLMQ_DOT_KERNEL(glmq_bf16_dot_f32_avx512, BF16_BLK, 8, 4, 2)

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
 * FAST_B32 starts each lane at c = -8 (-128) * (sum of the lane's 4 activation codes), so the
 * lane ends at exactly sum q*xq of its 4 columns (|.| <= 4*128*127). c is computed per token
 * and chunk by one more vpdpbusd (u8 = 8 or 128 in every byte, s8 = xq) and shared by the
 * row panel (b32_token).
 * FAST_ROW accumulates the biased sums over the whole row (each lane <= cols/16 * 4*255*127
 * < 2^31 for cols <= 131072, and modular arithmetic makes the final subtraction exact anyway)
 * and subtracts 8 (128) * sum(xq) once.
 */

/*
 * The per-token operands of chunk ch (columns 128ch..128ch+127) for FAST_B32:
 *   x0, x1  the codes of columns 0..63 / 64..127 of the chunk (64-byte aligned loads);
 *   c0, c1  accumulator starts: -bias * (sum of the 4 codes of each int32 lane);
 *   d0, d1  per int32 lane, the d of the 32-column block holding it: lanes 0-7 of d0 = d of
 *           block 4ch, lanes 8-15 = block 4ch+1; d1 likewise blocks 4ch+2, 4ch+3 (one 16-byte
 *           load of the four block scales, two vpermps).
 */
typedef struct {
    __m512i x0, x1, c0, c1;
    __m512 d0, d1;
} b32_tok;

AI b32_tok b32_token(const uint8_t *tk, int64_t ch, int64_t pc, const char bias)
{
    const __m512i bv = _mm512_set1_epi8(bias), z = _mm512_setzero_si512();
    const __m128 d4 = _mm_load_ps((const float *)(const void *)(tk + pc) + 4 * ch);
    const __m512 dd = _mm512_castps128_ps512(d4);
    b32_tok o;
    o.x0 = _mm512_load_si512(tk + 128 * ch);
    o.x1 = _mm512_load_si512(tk + 128 * ch + 64);
    o.c0 = _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, bv, o.x0));
    o.c1 = _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, bv, o.x1));
    o.d0 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                 dd);
    o.d1 = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
                                 dd);
    return o;
}

/*
 * FAST_B32, INT4, one 128-column chunk ch of R rows x T tokens.
 * Lanes: lo[r] = the 64 low nibbles = columns 0..63 of the chunk, hi[r] = columns 64..127;
 * int32 lane l of vpdpbusd(lo) covers columns 4l..4l+3. Per output: inner = cvt(il) * d0,
 * inner = fma(cvt(ih), d1, inner), acc += inner (fp32, 16 lanes).
 */
AI void q4b_chunk(const int R, const int T, const uint8_t *const *wc, const uint8_t *const *tk,
                  int64_t ch, int64_t pc, __m512 (*acc)[TMAX])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo[RMAX], hi[RMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m512i b = _mm512_loadu_si512(wc[r]);
        lo[r] = _mm512_and_si512(b, m4);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const b32_tok k = b32_token(tk[t], ch, pc, 8);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512i il = _mm512_dpbusd_epi32(k.c0, lo[r], k.x0);
            __m512i ih = _mm512_dpbusd_epi32(k.c1, hi[r], k.x1);
            __m512 inner = _mm512_mul_ps(_mm512_cvtepi32_ps(il), k.d0);
            inner = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ih), k.d1, inner);
            acc[r][t] = _mm512_add_ps(acc[r][t], inner);
        }
    }
}

/*
 * FAST_B32, INT8, one 128-column chunk (nh = 2 halves of 64 columns) or the final 64-column
 * half chunk (nh = 1). w0/w1 = bytes ^ 0x80 of columns 0..63 / 64..127; lanes as q4b_chunk.
 */
AI void q8b_chunk(const int R, const int T, const int nh, const uint8_t *const *wc,
                  const uint8_t *const *tk, int64_t ch, int64_t pc, __m512 (*acc)[TMAX])
{
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512i w0[RMAX], w1[RMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        w0[r] = _mm512_xor_si512(_mm512_loadu_si512(wc[r]), bias);
        if (nh == 2) w1[r] = _mm512_xor_si512(_mm512_loadu_si512(wc[r] + 64), bias);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const b32_tok k = b32_token(tk[t], ch, pc, (char)0x80);
        if (nh == 2) {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512i i0 = _mm512_dpbusd_epi32(k.c0, w0[r], k.x0);
                __m512i i1 = _mm512_dpbusd_epi32(k.c1, w1[r], k.x1);
                __m512 inner = _mm512_mul_ps(_mm512_cvtepi32_ps(i0), k.d0);
                inner = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), k.d1, inner);
                acc[r][t] = _mm512_add_ps(acc[r][t], inner);
            }
        } else {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512i i0 = _mm512_dpbusd_epi32(k.c0, w0[r], k.x0);
                __m512 inner = _mm512_mul_ps(_mm512_cvtepi32_ps(i0), k.d0);
                acc[r][t] = _mm512_add_ps(acc[r][t], inner);
            }
        }
    }
}

AI void fastb_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const uint8_t *wr[RMAX], *tk[TMAX];
    __m512 acc[RMAX][TMAX];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) tk[j] = glmq_dot_tok(a, t + j);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm512_setzero_ps();
    if (type == GLMQ_TYPE_INT4) {
        for (int64_t ch = 0; ch < pc / 128; ch++) {
            const uint8_t *wc[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wc[i] = wr[i] + 64 * ch;
            if (T == 1)
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) prefetch_next(wc[i] + (size_t)R * w->stride, 64);
            q4b_chunk(R, T, wc, tk, ch, pc, acc);
        }
    } else {
        const int64_t p8 = glmq_q8_padded_cols(w->cols);
        int64_t ch = 0;
        for (; ch < p8 / 128; ch++) {
            const uint8_t *wc[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wc[i] = wr[i] + 128 * ch;
            if (T == 1)
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) prefetch_next(wc[i] + (size_t)R * w->stride, 128);
            q8b_chunk(R, T, 2, wc, tk, ch, pc, acc);
        }
        if (p8 % 128) {
            const uint8_t *wc[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wc[i] = wr[i] + 128 * ch;
            q8b_chunk(R, T, 1, wc, tk, ch, pc, acc);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = row_scale(w, r + i);
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) y[(t + j) * ldy + r + i] = hsum_ps(acc[i][j]) * s;
    }
}

/*
 * FAST_ROW: int32 accumulators per output, chained over the whole row (exact, any order).
 * INT4 per 128-column chunk: acc += dpbusd(lo, xq[0..63]); acc += dpbusd(hi, xq[64..127]).
 * INT8 per 64 columns: acc += dpbusd(byte ^ 0x80, xq).
 */
AI void fastr_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const uint8_t *wr[RMAX], *tk[TMAX];
    __m512i acc[RMAX][TMAX];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) tk[j] = glmq_dot_tok(a, t + j);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm512_setzero_si512();
    if (type == GLMQ_TYPE_INT4) {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        for (int64_t ch = 0; ch < pc / 128; ch++) {
            __m512i lo[RMAX], hi[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                if (T == 1) prefetch_next(wr[i] + (size_t)R * w->stride + 64 * ch, 64);
                __m512i b = _mm512_loadu_si512(wr[i] + 64 * ch);
                lo[i] = _mm512_and_si512(b, m4);
                hi[i] = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
            }
#pragma GCC unroll 4
            for (int j = 0; j < T; j++) {
                const __m512i xl = _mm512_load_si512(tk[j] + 128 * ch);
                const __m512i xh = _mm512_load_si512(tk[j] + 128 * ch + 64);
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], lo[i], xl);
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], hi[i], xh);
                }
            }
        }
    } else {
        const __m512i bias = _mm512_set1_epi8((char)0x80);
        const int64_t p8 = glmq_q8_padded_cols(w->cols);
        for (int64_t c = 0; c < p8; c += 64) {
            __m512i wv[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                if (T == 1) prefetch_next(wr[i] + (size_t)R * w->stride + c, 64);
                wv[i] = _mm512_xor_si512(_mm512_loadu_si512(wr[i] + c), bias);
            }
#pragma GCC unroll 4
            for (int j = 0; j < T; j++) {
                const __m512i xv = _mm512_load_si512(tk[j] + c);
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[i], xv);
            }
        }
    }
    const uint32_t bias_mul = type == GLMQ_TYPE_INT4 ? 8u : 128u;
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = row_scale(w, r + i);
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
            float d;
            int32_t sx;
            memcpy(&d, tk[j] + pc, 4);
            memcpy(&sx, tk[j] + pc + 4, 4);
            const uint32_t u = hsum_epi32(acc[i][j]) - bias_mul * (uint32_t)sx;
            y[(t + j) * ldy + r + i] = ((float)(int32_t)u * d) * s;
        }
    }
}

/*
 * GEMV rows in flight: a panel of ~16 KiB at cols 4096 (INT4 8 rows x 2 KiB, INT8 4 x 4 KiB),
 * which also sets the prefetch distance (one panel). Measured on the 2-core Zen 5 box, 1 thread,
 * same buffers, alternating: INT4 B32 31-36 GB/s with 8 rows vs 17-25 with 4 rows or without
 * prefetch (2 rows was worst); INT8 B32 29-30 GB/s with 4 rows vs 27-28 with 8.
 * GEMM: 4 rows x 4 tokens (16 accumulators + 8 unpacked weight vectors + activation operands
 * folded into vpdpbusd / vmulps / vfmadd231ps).
 */
#define Q4B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)
#define Q4R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)

GLMQ_DOT_KERNEL(glmq_q4_dot_q8b_avx512vnni, Q4B_BLK, 8, 4, 4)
GLMQ_DOT_KERNEL(glmq_q8_dot_q8b_avx512vnni, Q8B_BLK, 4, 4, 4)
GLMQ_DOT_KERNEL(glmq_q4_dot_q8r_avx512vnni, Q4R_BLK, 8, 4, 4)
GLMQ_DOT_KERNEL(glmq_q8_dot_q8r_avx512vnni, Q8R_BLK, 4, 4, 4)

/* ---- bandwidth probe ------------------------------------------------------------------------- */

/* 8 independent zmm accumulators (128 floats per iteration) so the adds never limit the loads;
 * each 64-byte line is loaded as two 256-bit halves (see load_halves: the faster way here). */
double glmq_dot_sum_f32_avx512(const float *p, int64_t n)
{
    __m512 s[8];
    for (int k = 0; k < 8; k++) s[k] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int k = 0; k < 8; k++)
            s[k] = _mm512_add_ps(s[k], _mm512_castsi512_ps(load_halves(p + i + 16 * k)));
    for (; i < n; i += 16) s[0] = _mm512_add_ps(s[0], _mm512_maskz_loadu_ps(lanes16(n - i), p + i));
    for (int k = 1; k < 8; k++) s[0] = _mm512_add_ps(s[0], s[k]);
    return (double)hsum_ps(s[0]);
}

#if defined(GLMQ_EMULATE_AVX512)
#elif defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
