/*
 * dot_avx2.c - AVX2 + FMA + F16C matrix kernels (quant/dot.h): activation preparation, EXACT
 * (fp32) kernels and FAST (int8 activation) kernels on vpmaddubsw + vpmaddwd.
 *
 * Built with per-file flags (-mavx2 -mfma -mf16c) and reached only through dot_dispatch.c
 * after cpu.c's CPUID + XGETBV checks; the FAST kernels here also serve AVX-512 CPUs without
 * VNNI (where 512-bit vpmaddubsw would need the same sign trick and gains little).
 *
 * The structure is that of dot_avx512.c (read its header first): a row/token driver, R x T
 * micro-kernels over 128-column chunks, a fresh partial per chunk added into each output's own
 * accumulator, one fixed horizontal reduction, so GEMV == GEMM bit for bit on this level. With
 * 16 ymm registers the GEMM shapes are narrower: 2 x 2 (EXACT), 1 x 4 (FAST: the 4 unpacked
 * weight blocks of one row are reused by 4 tokens).
 *
 * Integer products without saturation (vpmaddubsw adds two u8 x s8 products into int16):
 *   INT4:  u8 = nibble 0..15, s8 = xq in [-127, 127]: |pair| <= 2*15*127 = 3810; FAST_ROW adds
 *          the pairs of the 4 blocks of a chunk in int16 first: <= 15240 < 32767.
 *   INT8:  the sign trick: u8 = |q| (vpabsb; <= 128 even for a foreign -128 code), s8 =
 *          sign(xq, q) (vpsignb; xq is never -128): |pair| <= 2*128*127 = 32512 < 32767.
 *          (Offsetting q by 128 instead would reach 2*255*127 and saturate.)
 *   vpmaddwd(pairs, 1) then gives int32 lanes of 4 consecutive columns; one 32-byte register
 *   is one 32-column activation block, so its d_b is a single broadcast.
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

/* int32 mask of the first n of 8 lanes, for vmaskmovps (n <= 0: none). */
AI __m256i lanes8(int64_t n)
{
    const int k = n >= 8 ? 8 : n <= 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* GEMV prefetch of the next row panel, as dot_avx512.c prefetch_next (read its comment). */
AI void prefetch_next(const uint8_t *p, const int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T0);
}

/* ---- fixed horizontal reductions ------------------------------------------------------------- */

AI float hsum_ps(__m256 v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

AI uint32_t hsum_epi32(__m256i v)
{
    __m128i b = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

AI uint32_t hmax_epu32(__m256i v)
{
    __m128i b = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b);
}

/* ---- preparation ----------------------------------------------------------------------------- */

void glmq_dot_prep_exact_avx2(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    float *xf = (float *)(void *)tok;
    for (int64_t c = 0; c < pcols; c += 8)
        _mm256_store_ps(xf + c, _mm256_maskload_ps(x + c, lanes8(cols - c)));
}

AI __m256i act_codes(__m256 x, __m256 id)
{
    __m256 v = _mm256_mul_ps(x, id);
    v = _mm256_max_ps(v, _mm256_set1_ps(-127.0f)); /* NaN -> -127 (src2), as _ref */
    v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
    return _mm256_cvtps_epi32(v);
}

/* 32 int32 codes (4 x 8 lanes, columns in order) -> 32 int8 in column order. vpackssdw and
 * vpacksswb interleave the 128-bit lanes; vpermd {0,4,1,5,2,6,3,7} restores the order. The
 * saturating packs never saturate: codes are in [-127, 127]. */
AI __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/*
 * FAST_B32, one 32-column block per step: 4 x 8 floats (vmaskmovps zero-fills past cols),
 * amax by vpmaxud on |x| bits, 32 codes, one d per block.
 */
void glmq_dot_prep_b32_avx2(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float *db = glmq_dot_b32_scales(tok, pcols);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    for (int64_t c = 0; c < pcols; c += 32) {
        __m256 xv[4];
        __m256i m = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            xv[k] = _mm256_maskload_ps(x + c + 8 * k, lanes8(cols - c - 8 * k));
            m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(xv[k]), abs));
        }
        float d, id;
        act_scale(f_of_bits(hmax_epu32(m)), &d, &id);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q = pack32(act_codes(xv[0], vid), act_codes(xv[1], vid), act_codes(xv[2], vid),
                           act_codes(xv[3], vid));
        _mm256_store_si256((__m256i *)(void *)(xq + c), q);
        db[c / 32] = d;
    }
    glmq_dot_b32_pad(tok, pcols);
}

/*
 * FAST_ROW: pass 1 = amax over all columns (four vpmaxud chains of 8 u32 lanes on |x| bits),
 * pass 2 = codes with the one scale, 32 columns per step, and their sum in 8 int32 lanes
 * (|sum| <= 127 * pcols < 2^31). The header (d, sum) follows the codes.
 */
void glmq_dot_prep_row_avx2(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_loadu_si256((const void *)(x + c)), abs));
        m1 = _mm256_max_epu32(m1,
                              _mm256_and_si256(_mm256_loadu_si256((const void *)(x + c + 8)), abs));
        m2 = _mm256_max_epu32(
            m2, _mm256_and_si256(_mm256_loadu_si256((const void *)(x + c + 16)), abs));
        m3 = _mm256_max_epu32(
            m3, _mm256_and_si256(_mm256_loadu_si256((const void *)(x + c + 24)), abs));
    }
    for (; c < cols; c += 8)
        m0 = _mm256_max_epu32(
            m0, _mm256_and_si256(_mm256_castps_si256(_mm256_maskload_ps(x + c, lanes8(cols - c))),
                                 abs));
    m0 = _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3));
    float d, id;
    act_scale(f_of_bits(hmax_epu32(m0)), &d, &id);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i sum = _mm256_setzero_si256();
    for (c = 0; c < pcols; c += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            q[k] = act_codes(_mm256_maskload_ps(x + c + 8 * k, lanes8(cols - c - 8 * k)), vid);
            sum = _mm256_add_epi32(sum, q[k]);
        }
        _mm256_store_si256((__m256i *)(void *)(xq + c), pack32(q[0], q[1], q[2], q[3]));
    }
    int32_t s = (int32_t)hsum_epi32(sum);
    memset(tok + pcols, 0, 64);
    memcpy(tok + pcols, &d, 4);
    memcpy(tok + pcols + 4, &s, 4);
}

/* ---- micro-kernel limits (the walk itself is quant/dot_walk.h) ------------------------------- */

#define RMAX 4 /* largest R of any micro-kernel below (accumulator arrays are sized by it) */
#define TMAX 4

/* fp16 row scale widened by F16C vcvtph2ps: exact, the same value as glmq_f16_to_f32. */
static inline float row_scale(const glmq_dot_mat *w, int64_t r) { return _cvtsh_ss(w->scales[r]); }

/* ---- EXACT ----------------------------------------------------------------------------------- */

/*
 * One 128-column chunk (16 vectors of 8 fp32 columns; nv = 8 for an INT8 half chunk).
 * INT4: 8 bytes per step widened by vpmovzxbd to 8 int32 lanes (low nibbles = columns 8g..,
 * high nibbles = 64+8g..); (nibble - 8) by vpsubd + vcvtdq2ps; order lo g0, hi g0, lo g1, ...
 * INT8: vpmovsxbd + vcvtdq2ps. F16: vcvtph2ps. BF16: vpmovzxwd + vpslld 16.
 * inner[r][t] (8 fp32 lanes, <= 16 terms per lane) is added into acc[r][t] at the end.
 */
AI void exact_chunk(const int type, const int R, const int T, const uint8_t *const *wc,
                    const float *const *xc, const int nv, __m256 (*acc)[TMAX])
{
    __m256 inner[RMAX][TMAX];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) inner[r][t] = _mm256_setzero_ps();
    if (type == GLMQ_TYPE_INT4) {
        const __m256i m4 = _mm256_set1_epi32(0x0f), eight = _mm256_set1_epi32(8);
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256 xl[TMAX], xh[TMAX];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                xl[t] = _mm256_load_ps(xc[t] + 8 * g);
                xh[t] = _mm256_load_ps(xc[t] + 64 + 8 * g);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(wc[r] + 8 * g)));
                __m256 wl = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b, m4), eight));
                __m256 wh = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 4), eight));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    inner[r][t] = _mm256_fmadd_ps(wl, xl[t], inner[r][t]);
                    inner[r][t] = _mm256_fmadd_ps(wh, xh[t], inner[r][t]);
                }
            }
        }
    } else {
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            __m256 xv[TMAX];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) xv[t] = _mm256_load_ps(xc[t] + 8 * v);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m256 wf;
                if (type == GLMQ_TYPE_INT8) {
                    __m128i b = _mm_loadl_epi64((const __m128i *)(wc[r] + 8 * v));
                    wf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
                } else if (type == GLMQ_TYPE_F16) {
                    wf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wc[r] + 16 * v)));
                } else {
                    __m128i h = _mm_loadu_si128((const __m128i *)(wc[r] + 16 * v));
                    wf = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    inner[r][t] = _mm256_fmadd_ps(wf, xv[t], inner[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_add_ps(acc[r][t], inner[r][t]);
}

AI int64_t chunk_bytes(const int type)
{
    return type == GLMQ_TYPE_INT4 ? 64 : type == GLMQ_TYPE_INT8 ? 128 : 256;
}

/* R rows x T tokens, EXACT; chunking as dot_avx512.c exact_block (INT8 half chunk = nv 8,
 * F16/BF16 tail copied into a zeroed stack chunk). */
AI void exact_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t cb = chunk_bytes(type);
    int64_t nfull, rest; /* full chunks; columns in the last partial chunk */
    glmq_dot_exact_chunks(type, w, a, &nfull, &rest);
    const uint8_t *wr[RMAX];
    const float *xt[TMAX];
    __m256 acc[RMAX][TMAX];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) xt[j] = (const float *)(const void *)glmq_dot_tok(a, t + j);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
    for (int64_t ch = 0; ch < nfull; ch++) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) wc[i] = wr[i] + ch * cb;
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) xc[j] = xt[j] + ch * 128;
        if (T == 1)
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) prefetch_next(wc[i] + (size_t)R * w->stride, cb);
        exact_chunk(type, R, T, wc, xc, 16, acc);
    }
    if (rest) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) xc[j] = xt[j] + nfull * 128;
        if (type == GLMQ_TYPE_INT8) {
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) wc[i] = wr[i] + nfull * cb;
            exact_chunk(type, R, T, wc, xc, 8, acc);
        } else {
            _Alignas(32) uint8_t tail[RMAX][256];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                memset(tail[i], 0, 256);
                memcpy(tail[i], wr[i] + nfull * cb, (size_t)rest * 2);
                wc[i] = tail[i];
            }
            exact_chunk(type, R, T, wc, xc, 16, acc);
        }
    }
    const int scaled = type == GLMQ_TYPE_INT4 || type == GLMQ_TYPE_INT8;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        const float s = scaled ? row_scale(w, r + i) : 1.0f;
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
            float v = hsum_ps(acc[i][j]);
            y[(t + j) * ldy + r + i] = scaled ? v * s : v;
        }
    }
}

#define Q4E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)
#define F16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_F16, R, T, w, r, a, t, y, ldy)
#define BF16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_BF16, R, T, w, r, a, t, y, ldy)

/* GEMV 4 rows (8 acc + temps), GEMM 2 x 2 (8 acc + 4 activation + 2 weight vectors). */
GLMQ_DOT_KERNEL(glmq_q4_dot_f32_avx2, Q4E_BLK, 4, 2, 2)
GLMQ_DOT_KERNEL(glmq_q8_dot_f32_avx2, Q8E_BLK, 4, 2, 2)
GLMQ_DOT_KERNEL(glmq_f16_dot_f32_avx2, F16_BLK, 4, 2, 2)
GLMQ_DOT_KERNEL(glmq_bf16_dot_f32_avx2, BF16_BLK, 4, 2, 2)

/* ---- FAST_B32 -------------------------------------------------------------------------------- */

/*
 * One 32-column block k of a 128-column chunk, as int32 lanes of 4 columns.
 * INT4: the chunk's 64 bytes are A = bytes 0..31, B = bytes 32..63; block 0 = low nibbles of
 * A (columns 0..31), 1 = low of B (32..63), 2 = high of A (64..95), 3 = high of B (96..127).
 * Returns the unsigned nibble vector (q + 8); the caller subtracts 8 * (sum of xq) per lane.
 */
AI __m256i q4_block(const uint8_t *wc, const int k)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i b = _mm256_loadu_si256((const __m256i *)(wc + 32 * (k & 1)));
    return k < 2 ? _mm256_and_si256(b, m4) : _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
}

/*
 * FAST_B32 micro-kernel over one chunk: nb = 4 blocks (INT8: 2 for a half chunk).
 * Per output and block: vpmaddubsw -> 16 x int16 pairs, vpmaddwd(., 1) -> 8 x int32 quads
 * (INT4: minus vpmaddwd(vpmaddubsw(8, xq), 1) = 8 * the lane's code sum, which leaves the
 * exact sum q*xq of the lane's 4 columns; |8 * 2 * 127| fits int16), vcvtdq2ps, then
 * inner = q*d_b (block 0) or fma(q, d_b, inner), d_b broadcast from the token's block scales;
 * acc += inner after the chunk.
 */
AI void fastb_chunk(const int type, const int R, const int T, const int nb,
                    const uint8_t *const *wc, const uint8_t *const *tk, int64_t ch, int64_t pc,
                    __m256 (*acc)[TMAX])
{
    const __m256i ones16 = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    __m256 inner[RMAX][TMAX];
#pragma GCC unroll 4
    for (int k = 0; k < nb; k++) {
        const int64_t off = 128 * ch + 32 * k; /* xq byte offset; block 4ch + k */
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256i wu, wq = _mm256_setzero_si256();
            if (type == GLMQ_TYPE_INT4) {
                wu = q4_block(wc[r], k);
            } else {
                wq = _mm256_loadu_si256((const __m256i *)(wc[r] + 32 * k));
                wu = _mm256_abs_epi8(wq);
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i xv = _mm256_load_si256((const __m256i *)(tk[t] + off));
                __m256i p;
                if (type == GLMQ_TYPE_INT4) {
                    p = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, xv), ones16);
                    p = _mm256_sub_epi32(
                        p, _mm256_madd_epi16(_mm256_maddubs_epi16(eights, xv), ones16));
                } else {
                    p = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, _mm256_sign_epi8(xv, wq)),
                                          ones16);
                }
                __m256 q = _mm256_cvtepi32_ps(p);
                __m256 d = _mm256_broadcast_ss(
                    (const float *)(const void *)(tk[t] + pc) + 4 * ch + k);
                inner[r][t] = k == 0 ? _mm256_mul_ps(q, d) : _mm256_fmadd_ps(q, d, inner[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_add_ps(acc[r][t], inner[r][t]);
}

/*
 * R rows x T tokens, FAST_B32: acc[r][t] holds 8 fp32 lanes (lane l = columns 4l..4l+3 of
 * every 32-column block, each already scaled by its d_b); INT4 rows are pcols/128 full
 * chunks, INT8 rows full chunks plus a 2-block half chunk when padded to 64 mod 128. The
 * result is s * hsum(acc).
 */
AI void fastb_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const uint8_t *wr[RMAX], *tk[TMAX];
    __m256 acc[RMAX][TMAX];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) tk[j] = glmq_dot_tok(a, t + j);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_ps();
    const int64_t cb = type == GLMQ_TYPE_INT4 ? 64 : 128;
    const int64_t pw = type == GLMQ_TYPE_INT4 ? pc : glmq_q8_padded_cols(w->cols);
    int64_t ch = 0;
    for (; ch < pw / 128; ch++) {
        const uint8_t *wc[RMAX];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) wc[i] = wr[i] + cb * ch;
        if (T == 1)
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) prefetch_next(wc[i] + (size_t)R * w->stride, cb);
        fastb_chunk(type, R, T, 4, wc, tk, ch, pc, acc);
    }
    if (type == GLMQ_TYPE_INT8 && pw % 128) {
        const uint8_t *wc[RMAX];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) wc[i] = wr[i] + cb * ch;
        fastb_chunk(type, R, T, 2, wc, tk, ch, pc, acc);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        const float s = row_scale(w, r + i);
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) y[(t + j) * ldy + r + i] = hsum_ps(acc[i][j]) * s;
    }
}

/* ---- FAST_ROW -------------------------------------------------------------------------------- */

/*
 * int32 accumulators over the whole row (exact). INT4 per chunk: the 4 blocks' vpmaddubsw
 * pairs are added in int16 (<= 4*3810 = 15240) before one vpmaddwd; the offset 8*sum(xq) is
 * subtracted at the end. INT8 per 32 columns: vpmaddwd(vpmaddubsw(|q|, sign(xq, q)), 1).
 */
AI void fastr_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const __m256i ones16 = _mm256_set1_epi16(1);
    const uint8_t *wr[RMAX], *tk[TMAX];
    __m256i acc[RMAX][TMAX];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) tk[j] = glmq_dot_tok(a, t + j);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) acc[i][j] = _mm256_setzero_si256();
    if (type == GLMQ_TYPE_INT4) {
        for (int64_t ch = 0; ch < pc / 128; ch++) {
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                const uint8_t *wc = wr[i] + 64 * ch;
                if (T == 1) prefetch_next(wc + (size_t)R * w->stride, 64);
                const __m256i b0 = q4_block(wc, 0), b1 = q4_block(wc, 1), b2 = q4_block(wc, 2),
                              b3 = q4_block(wc, 3);
#pragma GCC unroll 4
                for (int j = 0; j < T; j++) {
                    const __m256i *xq = (const __m256i *)(const void *)(tk[j] + 128 * ch);
                    __m256i p = _mm256_add_epi16(
                        _mm256_add_epi16(_mm256_maddubs_epi16(b0, _mm256_load_si256(xq)),
                                         _mm256_maddubs_epi16(b1, _mm256_load_si256(xq + 1))),
                        _mm256_add_epi16(_mm256_maddubs_epi16(b2, _mm256_load_si256(xq + 2)),
                                         _mm256_maddubs_epi16(b3, _mm256_load_si256(xq + 3))));
                    acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(p, ones16));
                }
            }
        }
    } else {
        const int64_t p8 = glmq_q8_padded_cols(w->cols);
        for (int64_t c = 0; c < p8; c += 32) {
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                if (T == 1 && (c & 63) == 0) prefetch_next(wr[i] + (size_t)R * w->stride + c, 64);
                const __m256i wq = _mm256_loadu_si256((const __m256i *)(wr[i] + c));
                const __m256i wu = _mm256_abs_epi8(wq);
#pragma GCC unroll 4
                for (int j = 0; j < T; j++) {
                    __m256i xv = _mm256_load_si256((const __m256i *)(tk[j] + c));
                    __m256i p = _mm256_maddubs_epi16(wu, _mm256_sign_epi8(xv, wq));
                    acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(p, ones16));
                }
            }
        }
    }
    const uint32_t bias_mul = type == GLMQ_TYPE_INT4 ? 8u : 0u;
#pragma GCC unroll 4
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

#define Q4B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)
#define Q4R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)

/* GEMV 4 rows; GEMM 1 row x 4 tokens (one row's unpacked chunk reused by 4 tokens). */
GLMQ_DOT_KERNEL(glmq_q4_dot_q8b_avx2, Q4B_BLK, 4, 1, 4)
GLMQ_DOT_KERNEL(glmq_q8_dot_q8b_avx2, Q8B_BLK, 4, 1, 4)
GLMQ_DOT_KERNEL(glmq_q4_dot_q8r_avx2, Q4R_BLK, 4, 1, 4)
GLMQ_DOT_KERNEL(glmq_q8_dot_q8r_avx2, Q8R_BLK, 4, 1, 4)

/* ---- bandwidth probe ------------------------------------------------------------------------- */

/* 8 independent ymm accumulators (64 floats per iteration) so the adds never limit the loads;
 * the tail uses vmaskmovps (absent lanes read as 0). */
double glmq_dot_sum_f32_avx2(const float *p, int64_t n)
{
    __m256 s[8];
    for (int k = 0; k < 8; k++) s[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(p + i + 8 * k));
    for (; i < n; i += 8) s[0] = _mm256_add_ps(s[0], _mm256_maskload_ps(p + i, lanes8(n - i)));
    for (int k = 1; k < 8; k++) s[0] = _mm256_add_ps(s[0], s[k]);
    return (double)hsum_ps(s[0]);
}
