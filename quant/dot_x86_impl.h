/*
 * dot_x86_impl.h - the body of the x86 matrix kernels (quant/dot.h): activation preparation,
 * the EXACT (fp32) kernels and the bandwidth probe, written once against a small vector
 * abstraction and instantiated per ISA by dot_avx2.c (ymm) and dot_avx512.c (zmm), the way
 * libdeflate's lib/x86/ *_impl.h are. The FAST (int8 activation) kernels are the sibling
 * template quant/dot_x86_fast_impl.h.
 *
 * Not a normal header: included once by each ISA file, after it has defined
 *
 *   DOT_ISA               name suffix of the entry points (_avx2, _avx512)
 *   VF, VI                fp32 / integer vector types; VW fp32 lanes per vector (8, 16), so one
 *                         VI holds VB = 4*VW int8 codes and an int8 block of 32 columns is
 *                         32/VW fp32 vectors
 *   RMAX, TMAX            the largest R and T of any micro-kernel (accumulator array sizes)
 *   DOT_EXACT_RV/RM/TM    the EXACT walk shape (quant/dot_walk.h GLMQ_DOT_DRIVER)
 *   vector operations     (AI = static inline always_inline; aligned loads need 64 bytes)
 *     vf_zero vf_load vf_loadu vf_store vf_add vf_mul vf_fma vf_max vf_min vf_set1
 *     vf_loadu_n(p, n)    the first n (clamped to 0..VW) floats of p, zero in the other lanes,
 *                         never reading past them
 *     vf_line(p)          VW floats for the bandwidth probe (its fastest load form)
 *     vf_hsum(v)          the ISA's one fixed horizontal fp32 reduction
 *     vf_cvt_i32(v)       vcvtps2dq: round to nearest even (MXCSR), like nearbyintf
 *     vi_zero vi_add32 vi_hsum32 (mod 2^32) vi_absbits(v) vi_max_u32 vi_hmax_u32
 *     codes_store32(dst, q)  32/VW vectors of int32 codes in [-127, 127] -> 32 int8, in order
 *     widen_q4(p, &lo, &hi)  VW INT4 bytes -> (low nibble - 8), (high nibble - 8) as fp32
 *     widen_q8(p) widen_f16(p) widen_bf16(p)   VW INT8 codes / 2*VW bytes of halves -> fp32
 *     vf_bcast4(s4, j)    lane j (0..3) of an __m128 in every lane
 *     vf_keep(v)          v, held in a register (an empty asm on AVX2: the compiler then
 *                         cannot fold the load into each FMA that uses it and load it again)
 *     Q4S q4s_make(s) widen_q4s(p, Q4S lo, Q4S hi, &lo, &hi)   widen_q4 times a per-vector
 *                         group scale s (low / high nibble blocks), exact
 *
 * Determinism (dot.h §3): every output (r, t) is one accumulator chain whose operations depend
 * only on cols and the level: a fresh partial per 128-column chunk in a fixed order, added into
 * the output's own accumulator, and one vf_hsum at the end. The micro-kernel shape (R rows x T
 * tokens) only decides which chains run side by side, so GEMV == GEMM bit for bit.
 *
 * Preparation is bit-identical to dot_ref.c on every level: amax as the max of |x| bits
 * (exact), glmq_dot_act_scale, vmulps, a vmaxps/vminps clamp (vmaxps returns its second
 * operand -127 for NaN, as _ref does), vcvtps2dq, and narrowing that never saturates.
 */

#include "quant/dot_x86_helpers.h"

/* ---- preparation ----------------------------------------------------------------------------- */

void DOT_NAME(glmq_dot_prep_exact)(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    float *xf = (float *)(void *)tok;
    /* VW floats per store; the masked load zero-fills the padding past cols */
    for (int64_t c = 0; c < pcols; c += VW) vf_store(xf + c, vf_loadu_n(x + c, cols - c));
}

/*
 * FAST_B32, one 32-column block per step: NV32 masked loads (zero past cols), amax by an
 * unsigned max of the |x| bits, the block's d and id, 32 codes, d stored after the codes.
 */
void DOT_NAME(glmq_dot_prep_b32)(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    float *db = glmq_dot_b32_scales(tok, pcols);
    for (int64_t c = 0; c < pcols; c += 32) {
        VF xv[NV32];
        VI m = vi_zero(), q[NV32];
        for (int k = 0; k < NV32; k++) {
            xv[k] = vf_loadu_n(x + c + VW * k, cols - c - VW * k);
            m = vi_max_u32(m, vi_absbits(xv[k]));
        }
        float id;
        glmq_dot_act_scale(glmq_dot_f_of_bits(vi_hmax_u32(m)), &db[c / 32], &id);
        const VF vid = vf_set1(id);
        for (int k = 0; k < NV32; k++) q[k] = act_codes(xv[k], vid);
        codes_store32(xq + c, q);
    }
    glmq_dot_b32_finish(tok, pcols);
}

/*
 * FAST_ROW: pass 1 = amax over all columns (four unsigned max chains of |x| bits, a masked
 * tail), pass 2 = codes with the one scale, 32 columns per step, and their sum in int32 lanes
 * (|sum| <= 127 * pcols < 2^31). The header (d, sum) follows the codes.
 */
void DOT_NAME(glmq_dot_prep_row)(const float *x, int64_t cols, int64_t pcols, uint8_t *tok)
{
    int8_t *xq = (int8_t *)tok;
    VI m0 = vi_zero(), m1 = m0, m2 = m0, m3 = m0;
    int64_t c = 0;
    for (; c + 4 * VW <= cols; c += 4 * VW) {
        m0 = vi_max_u32(m0, vi_absbits(vf_loadu(x + c)));
        m1 = vi_max_u32(m1, vi_absbits(vf_loadu(x + c + VW)));
        m2 = vi_max_u32(m2, vi_absbits(vf_loadu(x + c + 2 * VW)));
        m3 = vi_max_u32(m3, vi_absbits(vf_loadu(x + c + 3 * VW)));
    }
    for (; c < cols; c += VW) m0 = vi_max_u32(m0, vi_absbits(vf_loadu_n(x + c, cols - c)));
    m0 = vi_max_u32(vi_max_u32(m0, m1), vi_max_u32(m2, m3));
    float d, id;
    glmq_dot_act_scale(glmq_dot_f_of_bits(vi_hmax_u32(m0)), &d, &id);
    const VF vid = vf_set1(id);
    VI sum = vi_zero();
    for (c = 0; c < pcols; c += 32) {
        VI q[NV32];
        for (int k = 0; k < NV32; k++) {
            q[k] = act_codes(vf_loadu_n(x + c + VW * k, cols - c - VW * k), vid);
            sum = vi_add32(sum, q[k]);
        }
        codes_store32(xq + c, q);
    }
    glmq_dot_row_header_put(tok, pcols, d, (int32_t)vi_hsum32(sum));
}

/* ---- EXACT: fp32 FMA over the widened weights ------------------------------------------------ */

/*
 * One 128-column chunk of R rows x T tokens. wc[r]: the chunk's weight bytes of row r; xc[t]:
 * the chunk's 128 fp32 activations of token t (zero past cols). nv = 128/VW vectors of VW
 * columns, or 64/VW for the final half chunk of an INT8 row whose padded length is 64 mod 128.
 *
 * Lanes: every vector holds VW consecutive columns as fp32. inner[r][t] starts at 0 and takes
 * one vfmadd231ps per vector, in the order below; then acc[r][t] += inner[r][t] (the two-level
 * sum of dot.h §2: <= 128/VW terms per lane per chunk, <= cols/128 chunk partials).
 *
 * INT4: VW bytes g*VW.. hold elements j (low nibble) and 64+j (high nibble); widen_q4 gives
 * both as fp32 (nibble - 8). Order: lo g0, hi g0, lo g1, hi g1, ...
 * INT8: VW sign-extended codes. F16: vcvtph2ps. BF16: zero-extend, shift left 16.
 *
 * Group-wise types (G = 32 / 64 / 128, else G = 0; type is then the codes' layout INT4/INT8):
 * each widened weight vector (VW <= 16 columns, all inside one 32-column block) is multiplied
 * by its block's group scale before its FMA, q * s_g being exact in fp32 (|q| <= 127 times an
 * fp16 scale: at most 18 significant bits), i.e. it is the dequantized weight; s4[r] holds the
 * four block scales of the chunk (grp_scales4). INT4 folds the scale into the widening
 * (widen_q4s: fma(nibble, s, -8s) or a scaled vpermps table, both exact); INT8 multiplies.
 * Groups of 128 (one scale per chunk, sv[r] broadcast) instead widen as per-row and add the
 * chunk's partial as acc = fma(partial, s_g, acc). Same order as above, no final scale.
 */
AI void exact_chunk(const int type, const int G, const int R, const int T,
                    const uint8_t *const *wc, const float *const *xc, const int nv,
                    const __m128 *s4, const VF *sv, VF (*acc)[TMAX])
{
    const int G_VEC = G && G < 128; /* group scales applied per weight vector */
    VF inner[RMAX][TMAX];
    acc_zero(R, T, inner);
    if (type == GLMQ_TYPE_INT4) {
        Q4S q4s[RMAX][4]; /* group-wise: per row and group of the chunk, the scaled widening */
        if (G_VEC)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                for (int j = 0; j < 128 / (G_VEC ? G : 128); j++)
                    q4s[r][j] = q4s_make(vf_bcast4(s4[r], j * G / 32));
#pragma GCC unroll 16
        for (int g = 0; g < 64 / VW; g++) {
            VF xl[TMAX], xh[TMAX];
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                xl[t] = vf_load(xc[t] + VW * g);
                xh[t] = vf_load(xc[t] + 64 + VW * g);
            }
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                VF wl, wh;
                if (G_VEC)
                    widen_q4s(wc[r] + VW * g, q4s[r][VW * g / G], q4s[r][(64 + VW * g) / G], &wl,
                              &wh);
                else
                    widen_q4(wc[r] + VW * g, &wl, &wh);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    inner[r][t] = vf_fma(wl, xl[t], inner[r][t]);
                    inner[r][t] = vf_fma(wh, xh[t], inner[r][t]);
                }
            }
        }
    } else {
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
            VF xv[TMAX];
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) xv[t] = vf_load(xc[t] + VW * v);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                VF wf = type == GLMQ_TYPE_INT8  ? widen_q8(wc[r] + VW * v)
                        : type == GLMQ_TYPE_F16 ? widen_f16(wc[r] + 2 * VW * v)
                                                : widen_bf16(wc[r] + 2 * VW * v);
                if (G_VEC) wf = vf_mul(wf, vf_bcast4(s4[r], VW * v / 32));
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) inner[r][t] = vf_fma(wf, xv[t], inner[r][t]);
            }
        }
    }
    acc_add_chunk(G, R, T, acc, inner, sv);
}

/*
 * R rows from r x T tokens from t, EXACT. Chunks (glmq_dot_exact_chunks): INT4 pcols/128 full
 * chunks; INT8 full chunks plus a half chunk when the padded row is 64 mod 128; F16/BF16 full
 * chunks plus, when cols % 128 != 0, a last chunk copied into a zero-filled stack buffer (the
 * rows are not padded; the activations are). y = s * hsum(acc) (INT4/INT8) or hsum(acc)
 * (F16/BF16, and the group-wise types, whose scales are applied per weight in exact_chunk).
 */
AI void exact_block(const int type, const int G, const int R, const int T, const glmq_dot_mat *w,
                    int64_t r, const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t cb = glmq_dot_chunk_bytes(type);
    int64_t nfull, rest; /* full chunks; columns in the last partial chunk */
    glmq_dot_exact_chunks(type, w, a, &nfull, &rest);
    const uint8_t *wr[RMAX], *tk[TMAX];
    VF acc[RMAX][TMAX];
    panel_ptrs(R, T, w, r, a, t, wr, tk);
    acc_zero(R, T, acc);

    for (int64_t ch = 0; ch < nfull; ch++) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) wc[i] = wr[i] + ch * cb;
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) xc[j] = (const float *)(const void *)tk[j] + ch * 128;
        __m128 s4[RMAX];
        VF sv[RMAX];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            if (G == 128) sv[i] = grp_scale128(w, r + i, ch);
            else if (G) s4[i] = grp_scales4(w, r + i, ch, G, 0);
        }
        if (T == 1)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                prefetch_next(wc[i] + (size_t)R * w->stride, cb);
                if (G) prefetch_scales(w, r + i + R, ch, G);
            }
        exact_chunk(type, G, R, T, wc, xc, 128 / VW, s4, sv, acc);
    }
    if (rest) {
        const uint8_t *wc[RMAX];
        const float *xc[TMAX];
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) xc[j] = (const float *)(const void *)tk[j] + nfull * 128;
        if (type == GLMQ_TYPE_INT8) {
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wc[i] = wr[i] + nfull * cb;
            __m128 s4[RMAX];
            VF sv[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                if (G == 128) sv[i] = grp_scale128(w, r + i, nfull);
                else if (G) s4[i] = grp_scales4(w, r + i, nfull, G, 1);
            }
            exact_chunk(type, G, R, T, wc, xc, 64 / VW, s4, sv, acc);
        } else {
            _Alignas(64) uint8_t tail[RMAX][256];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                memset(tail[i], 0, 256);
                memcpy(tail[i], wr[i] + nfull * cb, (size_t)rest * 2);
                wc[i] = tail[i];
            }
            exact_chunk(type, 0, R, T, wc, xc, 128 / VW, NULL, NULL, acc);
        }
    }
    const int scaled = !G && (type == GLMQ_TYPE_INT4 || type == GLMQ_TYPE_INT8);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = scaled ? row_scale(w, r + i) : 1.0f;
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) {
            float v = vf_hsum(acc[i][j]);
            y[(t + j) * ldy + r + i] = scaled ? v * s : v;
        }
    }
}

#define Q4E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT4, 0, R, T, w, r, a, t, y, ldy)
#define Q8E_BLK(R, T, r, t) exact_block(GLMQ_TYPE_INT8, 0, R, T, w, r, a, t, y, ldy)
#define F16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_F16, 0, R, T, w, r, a, t, y, ldy)
#define BF16_BLK(R, T, r, t) exact_block(GLMQ_TYPE_BF16, 0, R, T, w, r, a, t, y, ldy)


/*
 * ---- EXACT GEMM, blocked over rows, tokens and columns, on widened weights -----------------
 *
 * Every type of the EXACT mode (F16, BF16, INT4, INT8 and the group-wise codes) runs its GEMM
 * here once a call has XG_MIN_TOK tokens or more, with the accumulator chains of exact_block
 * (so every output keeps its bits, dot.h §3): per output (r, t) and 128-column chunk a fresh
 * partial of vfmadd231ps in exact_chunk's vector order (INT4: lo g0, hi g0, lo g1, ...; the
 * others in column order; INT8's final half chunk 64/VW vectors), added into the output's
 * running sum in chunk order (G == 128: fma(partial, s_g, sum)), the rest chunk last, one
 * vf_hsum at the end and, per-row INT4/INT8, the row scale. What changes is where the operands
 * live: the running sums in a stack array, so that all the registers go to the fresh partials;
 * and the INT4/INT8 weights, widened to fp32 (group-wise G < 128: times their group scale,
 * exact) once per token block into a row block buffer instead of once per micro-kernel call.
 * F16/BF16 rows are widened in the micro-kernel (one vcvtph2ps per vector: a 24-row fp32
 * buffer would not fit L1 and measured slower).
 *
 * The micro-kernel (xg_micro) is HR rows x HT tokens (DOT_HALF_RM x DOT_HALF_TM: AVX2 2 x 6 =
 * 12 ymm partials + 2 weight vectors + 1 activation vector; AVX-512 4 x 6 of 32 zmm): each
 * weight vector serves HT tokens, each activation vector HR rows, and 12+ independent FMA
 * chains cover the FMA latency. The blocking keeps the operands in cache:
 *   token block  XG_TB tokens: the weights stream from memory (and are widened) once per block
 *   row block    XG_MB_F16 (F16/BF16) or XG_MB (INT4/INT8) rows: their running sums, up to
 *                XG_MB_F16 x XG_TB vectors (stack, L1/L2), and the INT4/INT8 rows' widened
 *                column block, XG_MB x XG_LD floats (24 KiB, stack, L1)
 *   column block XG_KC chunks (512 columns): the activation slice of one token group
 *                (HT x 2 KiB) stays in L1 while the row block's panels run over it.
 * GEMV and calls of fewer tokens keep exact_block's panel walk (the same bits).
 */
#define XG_KC 4             /* chunks per column block */
#define XG_MB 12            /* rows per row block, INT4/INT8 (a multiple of DOT_HALF_RM) */
#define XG_MB_F16 24        /* rows per row block, F16/BF16 */
#define XG_TB 36            /* tokens per token block (a multiple of DOT_HALF_TM) */
#define XG_LD (XG_KC * 128) /* floats per row of the widened column block */
#define XG_MIN_TOK 4        /* fewer tokens: exact_block's walk */
_Static_assert(XG_MB % DOT_HALF_RM == 0 && XG_MB_F16 % DOT_HALF_RM == 0 && XG_MB <= XG_MB_F16 &&
                   XG_TB % DOT_HALF_TM == 0,
               "exact GEMM blocking");

/* Column of the k-th weight vector of a chunk in exact_chunk's FMA order. */
AI int xg_col(const int type, const int k)
{
    return type == GLMQ_TYPE_INT4 ? (k & 1) * 64 + (k >> 1) * VW : k * VW;
}

/*
 * INT4/INT8 codes: widens rows [rb, re) x chunks [kb, kb + nch) into buf (row i at buf + i *
 * XG_LD, chunk c at + c * 128, natural column order); `tail`: INT8's half chunk kb instead.
 * Group-wise G < 128: the widened weights times their group scale (exact_chunk's operations);
 * G == 128: the chunk scales into gs[i * XG_KC + c].
 */
AI void xg_widen(const int type, const int G, const glmq_dot_mat *w, int64_t rb, int64_t re,
                 int64_t kb, int64_t nch, const int tail, float *buf, VF *gs)
{
    const int64_t cb = glmq_dot_chunk_bytes(type);
    for (int64_t i = 0; i < re - rb; i++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)(rb + i) * w->stride;
        for (int64_t c = 0; c < nch; c++) {
            float *d = buf + i * XG_LD + c * 128;
            const uint8_t *p = row + (kb + c) * cb;
            if (G == 128) gs[i * XG_KC + c] = grp_scale128(w, rb + i, kb + c);
            if (type == GLMQ_TYPE_INT4) {
                Q4S q4s[4];
                if (G && G < 128) {
                    const __m128 s4 = grp_scales4(w, rb + i, kb + c, G, 0);
                    for (int j = 0; j < 128 / G; j++) q4s[j] = q4s_make(vf_bcast4(s4, j * G / 32));
                }
#pragma GCC unroll 16
                for (int g = 0; g < 64 / VW; g++) {
                    VF lo, hi;
                    if (G && G < 128)
                        widen_q4s(p + VW * g, q4s[VW * g / G], q4s[(64 + VW * g) / G], &lo, &hi);
                    else
                        widen_q4(p + VW * g, &lo, &hi);
                    vf_store(d + VW * g, lo);
                    vf_store(d + 64 + VW * g, hi);
                }
            } else {
                const int nv = tail ? 64 / VW : 128 / VW;
                __m128 s4 = _mm_setzero_ps();
                if (G && G < 128) s4 = grp_scales4(w, rb + i, kb + c, G, tail);
#pragma GCC unroll 16
                for (int v = 0; v < 128 / VW; v++) {
                    if (v >= nv) break;
                    VF wf = widen_q8(p + VW * v);
                    if (G && G < 128) wf = vf_mul(wf, vf_bcast4(s4, VW * v / 32));
                    vf_store(d + VW * v, wf);
                }
            }
        }
    }
}

/* R rows x T tokens, nch chunks of nv vectors: wb = row 0 of the panel at the first chunk
 * (row i at + i * ldw bytes): F16/BF16 codes, widened here, else the widened block's fp32
 * weights; xc[j] = token j's activations at the first chunk,
 * gs = the panel's G == 128 chunk scales (row i at + i * XG_KC); acc = the running sums, row i
 * token j at acc[i * XG_TB + j]. */
AI void xg_micro(const int type, const int G, const int R, const int T, const int nv,
                 const uint8_t *wb, const int64_t ldw, const float *const *xc, const int64_t nch,
                 const VF *gs, VF *acc)
{
    for (int64_t ch = 0; ch < nch; ch++) {
        VF inner[DOT_HALF_RM][DOT_HALF_TM];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
#pragma GCC unroll 8
            for (int j = 0; j < T; j++) inner[i][j] = vf_zero();
#pragma GCC unroll 16
        for (int k = 0; k < nv; k++) {
            const int col = xg_col(type, k);
            VF wf[DOT_HALF_RM];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                const uint8_t *p = wb + i * ldw;
                wf[i] = type == GLMQ_TYPE_F16    ? widen_f16(p + ch * 256 + 2 * col)
                        : type == GLMQ_TYPE_BF16 ? widen_bf16(p + ch * 256 + 2 * col)
                                                 : vf_load((const float *)(const void *)p +
                                                           ch * 128 + col);
            }
#pragma GCC unroll 8
            for (int j = 0; j < T; j++) {
                const VF xv = vf_keep(vf_load(xc[j] + ch * 128 + col));
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) inner[i][j] = vf_fma(wf[i], xv, inner[i][j]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
#pragma GCC unroll 8
            for (int j = 0; j < T; j++)
                acc[i * XG_TB + j] = G == 128 ? vf_fma(inner[i][j], gs[i * XG_KC + ch],
                                                       acc[i * XG_TB + j])
                                              : vf_add(acc[i * XG_TB + j], inner[i][j]);
    }
}

/* One panel of R rows x n tokens from t (n a compile-time constant 1..DOT_HALF_TM), nch chunks
 * from chunk ch0 of the activations; half: INT8's final half chunk. */
AI void xg_panel(const int type, const int G, const int R, const int n, const int half,
                 const uint8_t *wb, const int64_t ldw, const glmq_dot_act *a, int64_t t,
                 int64_t ch0, int64_t nch, const VF *gs, VF *acc)
{
    const float *xc[DOT_HALF_TM];
#pragma GCC unroll 8
    for (int j = 0; j < n; j++)
        xc[j] = (const float *)(const void *)glmq_dot_tok(a, t + j) + ch0 * 128;
    if (half) xg_micro(type, G, R, n, 64 / VW, wb, ldw, xc, nch, gs, acc);
    else xg_micro(type, G, R, n, 128 / VW, wb, ldw, xc, nch, gs, acc);
}

AI void xg_panel_n(const int type, const int G, const int R, const int n, const int half,
                   const uint8_t *wb, const int64_t ldw, const glmq_dot_act *a, int64_t t,
                   int64_t ch0, int64_t nch, const VF *gs, VF *acc)
{
    switch (n) {
#define XG_CASE(k)                                                                               \
    case k:                                                                                      \
        if (k <= DOT_HALF_TM)                                                                    \
            xg_panel(type, G, R, k <= DOT_HALF_TM ? k : 1, half, wb, ldw, a, t, ch0, nch, gs,    \
                     acc);                                                                       \
        break;
        XG_CASE(1)
        XG_CASE(2)
        XG_CASE(3)
        XG_CASE(4)
        XG_CASE(5)
        XG_CASE(6)
        XG_CASE(7)
        XG_CASE(8)
#undef XG_CASE
    default:
        break;
    }
}
_Static_assert(DOT_HALF_TM <= 8, "xg_panel_n has cases up to 8 tokens");

AI void xg_gemm(const int type, const int G, const glmq_dot_mat *w, int64_t r0, int64_t r1,
                const glmq_dot_act *a, float *y, int64_t ldy)
{
    const int64_t ntok = a->ntok;
    int64_t nfull, rest;
    glmq_dot_exact_chunks(type, w, a, &nfull, &rest);
    const int f16 = type == GLMQ_TYPE_F16 || type == GLMQ_TYPE_BF16;
    const int scaled = !G && !f16;
    const int64_t mb = f16 ? XG_MB_F16 : XG_MB;
    const int64_t nblk = (nfull + XG_KC - 1) / XG_KC + (rest != 0); /* then the rest chunk */
    _Alignas(64) VF acc[XG_MB_F16 * XG_TB];
    _Alignas(64) float wbuf[XG_MB * XG_LD];
    _Alignas(64) uint8_t tails[XG_MB_F16][256];
    VF gs[XG_MB * XG_KC];
    for (int64_t tb = 0; tb < ntok; tb += XG_TB) {
        const int64_t te = tb + XG_TB < ntok ? tb + XG_TB : ntok;
        for (int64_t rb = r0; rb < r1; rb += mb) {
            const int64_t re = rb + mb < r1 ? rb + mb : r1;
            for (int64_t i = 0; i < re - rb; i++)
                for (int64_t j = 0; j < te - tb; j++) acc[i * XG_TB + j] = vf_zero();
            for (int64_t b = 0; b < nblk; b++) {
                const int64_t kb = b * XG_KC < nfull ? b * XG_KC : nfull;
                const int tail = kb == nfull;
                const int half = tail && type == GLMQ_TYPE_INT8;
                const int64_t nch = tail ? 1 : nfull - kb < XG_KC ? nfull - kb : XG_KC;
                /* the panels' weights: F16/BF16 rows in place (the rest chunk's columns copied
                 * into zero-filled 256-byte rows, as exact_block), INT4/INT8 widened */
                const uint8_t *wb;
                int64_t ldw;
                if (!f16) {
                    xg_widen(type, G, w, rb, re, kb, nch, tail, wbuf, gs);
                    wb = (const uint8_t *)wbuf;
                    ldw = XG_LD * (int64_t)sizeof(float);
                } else if (tail) {
                    for (int64_t i = 0; i < re - rb; i++) {
                        memset(tails[i], 0, 256);
                        memcpy(tails[i], (const uint8_t *)w->data + (size_t)(rb + i) * w->stride +
                                             kb * 256, (size_t)(w->cols % 128) * 2);
                    }
                    wb = tails[0];
                    ldw = 256;
                } else {
                    wb = (const uint8_t *)w->data + (size_t)rb * w->stride + kb * 256;
                    ldw = w->stride;
                }
                for (int64_t t = tb; t < te; t += DOT_HALF_TM) {
                    const int n = te - t < DOT_HALF_TM ? (int)(te - t) : DOT_HALF_TM;
                    int64_t r = rb;
                    for (; r + DOT_HALF_RM <= re; r += DOT_HALF_RM)
                        xg_panel_n(type, G, DOT_HALF_RM, n, half, wb + (r - rb) * ldw, ldw, a, t,
                                   kb, nch, gs + (r - rb) * XG_KC,
                                   acc + (r - rb) * XG_TB + (t - tb));
                    for (; r < re; r++)
                        xg_panel_n(type, G, 1, n, half, wb + (r - rb) * ldw, ldw, a, t, kb, nch,
                                   gs + (r - rb) * XG_KC, acc + (r - rb) * XG_TB + (t - tb));
                }
            }
            for (int64_t i = 0; i < re - rb; i++) {
                const float s = scaled ? row_scale(w, rb + i) : 1.0f;
                for (int64_t j = 0; j < te - tb; j++) {
                    const float v = vf_hsum(acc[i * XG_TB + j]);
                    y[(tb + j) * ldy + rb + i] = scaled ? v * s : v;
                }
            }
        }
    }
}

/* An EXACT entry point (fname, with its storage class) of one type and group size: calls of
 * fewer than XG_MIN_TOK tokens through exact_block's panel walk (walk, over BLK), the others
 * through xg_gemm. */
#define DOT_EXACT_ENTRY(fname, walk, type, G, BLK)                                              \
    static void walk(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,       \
                     float *y, int64_t ldy) GLMQ_DOT_DRIVER(DOT_EXACT_RV, DOT_EXACT_RM,          \
                                                            DOT_EXACT_TM, BLK, 0)                \
    fname(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a, float *y,        \
          int64_t ldy)                                                                           \
    {                                                                                            \
        if (a->ntok < XG_MIN_TOK) walk(w, r0, r1, a, y, ldy);                                    \
        else xg_gemm(type, G, w, r0, r1, a, y, ldy);                                             \
    }

DOT_EXACT_ENTRY(void DOT_NAME(glmq_q4_dot_f32), q4e_walk, GLMQ_TYPE_INT4, 0, Q4E_BLK)
DOT_EXACT_ENTRY(void DOT_NAME(glmq_q8_dot_f32), q8e_walk, GLMQ_TYPE_INT8, 0, Q8E_BLK)
DOT_EXACT_ENTRY(void DOT_NAME(glmq_f16_dot_f32), f16_walk, GLMQ_TYPE_F16, 0, F16_BLK)
DOT_EXACT_ENTRY(void DOT_NAME(glmq_bf16_dot_f32), bf16_walk, GLMQ_TYPE_BF16, 0, BF16_BLK)

/*
 * Group-wise EXACT kernels: one static kernel per group size (the scale loads and lane
 * broadcasts are then constants), the entry point dispatching on w->group. The chunking, the
 * walk and the accumulator chains are those of the per-row kernels of the same codes.
 */
#define Q4GE32(R, T, r, t) exact_block(GLMQ_TYPE_INT4, 32, R, T, w, r, a, t, y, ldy)
#define Q4GE64(R, T, r, t) exact_block(GLMQ_TYPE_INT4, 64, R, T, w, r, a, t, y, ldy)
#define Q4GE128(R, T, r, t) exact_block(GLMQ_TYPE_INT4, 128, R, T, w, r, a, t, y, ldy)
#define Q8GE32(R, T, r, t) exact_block(GLMQ_TYPE_INT8, 32, R, T, w, r, a, t, y, ldy)
#define Q8GE64(R, T, r, t) exact_block(GLMQ_TYPE_INT8, 64, R, T, w, r, a, t, y, ldy)
#define Q8GE128(R, T, r, t) exact_block(GLMQ_TYPE_INT8, 128, R, T, w, r, a, t, y, ldy)

DOT_EXACT_ENTRY(static void q4ge32, q4ge32_walk, GLMQ_TYPE_INT4, 32, Q4GE32)
DOT_EXACT_ENTRY(static void q4ge64, q4ge64_walk, GLMQ_TYPE_INT4, 64, Q4GE64)
DOT_EXACT_ENTRY(static void q4ge128, q4ge128_walk, GLMQ_TYPE_INT4, 128, Q4GE128)
DOT_EXACT_ENTRY(static void q8ge32, q8ge32_walk, GLMQ_TYPE_INT8, 32, Q8GE32)
DOT_EXACT_ENTRY(static void q8ge64, q8ge64_walk, GLMQ_TYPE_INT8, 64, Q8GE64)
DOT_EXACT_ENTRY(static void q8ge128, q8ge128_walk, GLMQ_TYPE_INT8, 128, Q8GE128)

GLMQ_DOT_GROUP_ENTRY(DOT_NAME(glmq_q4g_dot_f32), q4ge32, q4ge64, q4ge128)
GLMQ_DOT_GROUP_ENTRY(DOT_NAME(glmq_q8g_dot_f32), q8ge32, q8ge64, q8ge128)

/* ---- bandwidth probe ------------------------------------------------------------------------- */

/* 8 independent accumulators (8*VW floats per iteration) so the adds never limit the loads;
 * the tail uses masked loads (absent lanes read as 0). */
double DOT_NAME(glmq_dot_sum_f32)(const float *p, int64_t n)
{
    VF s[8];
    for (int k = 0; k < 8; k++) s[k] = vf_zero();
    int64_t i = 0;
    for (; i + 8 * VW <= n; i += 8 * VW)
        for (int k = 0; k < 8; k++) s[k] = vf_add(s[k], vf_line(p + i + VW * k));
    for (; i < n; i += VW) s[0] = vf_add(s[0], vf_loadu_n(p + i, n - i));
    for (int k = 1; k < 8; k++) s[0] = vf_add(s[0], s[k]);
    return (double)vf_hsum(s[0]);
}
