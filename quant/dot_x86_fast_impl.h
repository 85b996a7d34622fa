/*
 * dot_x86_fast_impl.h - the body of the x86 FAST (int8 activation) matrix kernels (quant/dot.h
 * §2, FAST_B32 and FAST_ROW), written once and instantiated by dot_avx2.c (vpmaddubsw +
 * vpmaddwd), dot_avx512.c (vpdpbusd, inside its AVX-512 VNNI section) and dot_avxvnni.c
 * (256-bit vpdpbusd). Included after quant/dot_x86_impl.h or, in a file without the EXACT
 * kernels, quant/dot_x86_helpers.h (the vector operations, prefetch_next, row_scale), once the
 * ISA file has defined
 *
 *   DOT_FAST_ISA          name suffix of the FAST entry points (_avx2, _avx512vnni, _avxvnni)
 *   DOT_Q4B_RV DOT_Q8B_RV DOT_Q4R_RV DOT_Q8R_RV   GEMV rows per panel (FAST_B32 / FAST_ROW)
 *   DOT_FAST_RM DOT_FAST_TM                       GEMM rows x tokens per micro-kernel
 *   DOT_B32_TOKEN_MAJOR   FAST_B32 loop nest (below): 1 = tokens outside, steps inside
 *   DOT_Q8_BIAS           INT8 weight operand bias: 0 (sign trick) or 128 (byte ^ 0x80)
 *   vi_load vi_loadu vi_sub32 vi_set1_8 vi_cvt_f32
 *   dot_u8s8(acc, u, s)   int32 lane l += sum of the 4 products u8[4l+i] * s8[4l+i]; exact as
 *                         long as the caller's bounds hold (no saturation on either ISA here)
 *   q4_nibbles(p, high)   VB bytes of p, low (high = 0) or high nibbles, as u8 0..15 (q + 8)
 *   q8_wop(raw), dot_q8(acc, wop, x)   INT8: the weight operand of VB codes, and acc += q . x
 *                         per int32 lane, biased by DOT_Q8_BIAS * (sum of the lane's 4 x)
 *   dot_q4_row(acc, w, x) acc += the NSTEP products dot_u8s8(w[k], x[k]) (FAST_ROW INT4 chunk)
 *   b32_scale(db4, k)     per int32 lane of step k, the d of the 32-column block holding it;
 *                         db4 = the 4 block scales of the chunk (16-byte aligned)
 *   B32R b32_prep_r(v4) b32_scale_p(p, k)   the same from the 4 scales in a register (group-
 *                         wise types: v4 = d_b * s_g(b)); prep once, then one op per step
 * and optionally
 *   DOT_B32_RM DOT_B32_TM FAST_B32 GEMM rows x tokens (default DOT_FAST_RM x DOT_FAST_TM)
 *   DOT_B32_GEMM_SHARED   1: FAST_B32 GEMM (T > 1) by the shared nest of fastb_chunk, which
 *                         needs q4_codes(p, high) (the nibbles as signed q = nibble - 8) and
 *                         dot_q8 without bias (DOT_Q8_BIAS 0)
 *   DOT_B32_NB            1 (VW 8 only): INT4 FAST_B32 lanes start at the prepared nb and sum
 *                         the biased nibbles (dot.h §2, §4; default 0, quant/dot_x86_helpers.h)
 *
 * A 128-column chunk is NSTEP = 128/VB integer steps; step k covers columns VB*k..VB*k+VB-1,
 * int32 lane l of it columns VB*k+4l..+3. INT4 weights: bytes (VB*k) mod 64 of the chunk, low
 * nibbles for the first 64 columns, high nibbles for the rest (the pack order of quant.h).
 *
 * Lane sums: the unsigned operand is the weight (INT4 q+8 in 0..15; INT8 |q| <= 128 with the
 * sign moved onto xq, or q+128 in 0..255), the signed one the activation code (|xq| <= 127);
 * every bias is removed exactly in int32 (two's complement; the true values fit).
 */

#define DOT_FNAME(base) DOT_CAT(base, DOT_FAST_ISA)
#ifndef DOT_B32_RM /* FAST_B32 GEMM shape; by default the FAST_ROW one */
#define DOT_B32_RM DOT_FAST_RM
#define DOT_B32_TM DOT_FAST_TM
#endif
#ifndef DOT_B32_GEMM_SHARED
#define DOT_B32_GEMM_SHARED 0
#endif
#define NSTEP (128 / (4 * VW)) /* integer steps per 128-column chunk */

/* ---- FAST_B32 -------------------------------------------------------------------------------- */

/*
 * The lanes of an INT4 chunk start at the prepared nb (dot.h §2, §4) where the level reads it
 * (DOT_B32_NB) and the chunk's scale is per row or per chunk (G 0 or 128; groups of 32/64 scale
 * each step by d_b * s_g, which nb does not hold): the steps then add d_b times the biased sums
 * (q + 8) * xq, and no operation removes the bias per (row, token). Otherwise every lane starts
 * at 0 with unbiased integer sums.
 */
AI int b32_nb_chain(const int type, const int G)
{
    return DOT_B32_NB && type == GLMQ_TYPE_INT4 && (G == 0 || G == 128);
}

/* nb of chunk ch of a prepared token (VW == 8 lanes: only the 256-bit levels read it). */
AI VF tok_nb(const uint8_t *tk, int64_t ch, int64_t pc)
{
    return vf_load((const float *)(const void *)(tk + glmq_dot_b32_nb_offset(pc)) + VW * ch);
}

/*
 * Step k of chunk ch for one output: the exact int32 sums q*xq of each lane's 4 columns,
 * converted to fp32 and scaled by their block's d_b: inner = q*d (step 0) or fma(q, d, inner).
 * The bias of the weight operand is removed by starting the lane at -bias * (sum of its 4
 * codes) (one more integer step on a constant operand; |.| <= 4*128*127). With nb (the nb
 * chain above): the biased INT4 sums (q + 8) * xq, inner = fma(q, d, inner) at every step, the
 * caller passing nb as inner at step 0.
 */
AI VF b32_step(const int type, const int nb, const uint8_t *wc, const uint8_t *tk, int64_t ch,
               const VF d, const int k, VF inner)
{
    const VI x = vi_load(tk + 128 * ch + 4 * VW * k);
    const int bias = nb ? 0 : type == GLMQ_TYPE_INT4 ? 8 : DOT_Q8_BIAS;
    const VI c = bias ? vi_sub32(vi_zero(), dot_u8s8(vi_zero(), vi_set1_8((char)bias), x))
                      : vi_zero();
    VI i;
    if (type == GLMQ_TYPE_INT4)
        i = dot_u8s8(c, q4_nibbles(wc + (4 * VW * k) % 64, 4 * VW * k >= 64), x);
    else
        i = dot_q8(c, q8_wop(vi_loadu(wc + 4 * VW * k)), x);
    const VF q = vi_cvt_f32(i);
    return k == 0 && !nb ? vf_mul(q, d) : vf_fma(q, d, inner);
}

/* The four block scales d_b of chunk ch of a prepared token (dot.h §4; 16-byte aligned). */
AI const float *tok_d4(const uint8_t *tk, int64_t ch, int64_t pc)
{
    return (const float *)(const void *)(tk + pc) + 4 * ch;
}

/* Group-wise types: d_b * s_g(b) for the four blocks of a chunk (one vmulps of the token's
 * d_b by the row's block scales, grp_scales4), whose lanes b32_scale_r spreads over the steps. */
AI __m128 grp_ds4(const uint8_t *tk, int64_t ch, int64_t pc, __m128 s4)
{
    return _mm_mul_ps(_mm_load_ps(tok_d4(tk, ch, pc)), s4);
}

/*
 * One chunk (ns = NSTEP, or NSTEP/2 for the final 64-column half chunk of an INT8 row) of R
 * rows x T tokens: acc[r][t] += the chunk's fresh partial. The two loop nests run the same
 * operations per output; token-major keeps one partial live and shares each token's operands
 * across the R rows (wide register files, many accumulators), step-major keeps R x T partials
 * and shares each step's weights across the T tokens.
 *
 * Group-wise types (G = 32 / 64 / 128, type = the codes' layout): G = 32 / 64 replace each
 * block's d_b by the fp32 product d_b * s_g(b) (grp_ds4; s4[r] = the row's block scales), so
 * the partials carry the group scales; G = 128 (one group per chunk) keeps the per-row steps
 * and adds the chunk's partial as acc = fma(partial, s_g, acc) (sv[r] = s_g broadcast). Either
 * way the block result has no final row scale. (G = 128 per step as well cost 20% of the
 * in-cache AVX2 GEMV time; this way it costs one broadcast per row and chunk.)
 */
AI void fastb_chunk(const int type, const int G, const int R, const int T, const int ns,
                    const uint8_t *const *wc, const uint8_t *const *tk, int64_t ch, int64_t pc,
                    const __m128 *s4, const VF *sv, VF (*acc)[TMAX])
{
    const int G_STEP = G && G < 128; /* group scales inside the steps */
    const int NB = b32_nb_chain(type, G);
#if DOT_B32_GEMM_SHARED
    if (T > 1) {
        /*
         * GEMM, step-major with the tokens outside the rows: per step k, each token's codes x,
         * its block scale d_b and its weight-bias term (INT4: 8 * sum of each lane's 4 codes)
         * are loaded / computed once and shared by the R rows; each row's weight operand of
         * step k is formed once and shared by the T tokens (common subexpressions). Group
         * scales per step: d_b * s_g(b) as the product of the two broadcasts (the same fp32
         * product grp_ds4 forms). R x T partials live in registers; acc is touched once per
         * chunk. The nb chain (INT4 rows, b32_nb_chain): the weight operand is the nibbles
         * q + 8 as they are, the integer step one vpmaddubsw + vpmaddwd on the token's codes
         * (no vpsignb), and step 0 adds onto the token's nb.
         */
        VF inner[RMAX][TMAX];
        _Alignas(16) float ds[RMAX][TMAX][4]; /* G_STEP: d_b * s_g(b) of the chunk's blocks */
        if (G_STEP) {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) _mm_store_ps(ds[r][t], grp_ds4(tk[t], ch, pc, s4[r]));
            /* in memory: each step broadcasts its product by a load, not a shuffle */
            __asm__ volatile("" : : "r"(ds) : "memory");
        }
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++) {
            VI wq[RMAX]; /* step k of each row as signed codes (INT4: nibble - 8) */
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                wq[r] = type == GLMQ_TYPE_INT4
                            ? NB ? q4_nibbles(wc[r] + (4 * VW * k) % 64, 4 * VW * k >= 64)
                                 : q4_codes(wc[r] + (4 * VW * k) % 64, 4 * VW * k >= 64)
                            : q8_wop(vi_loadu(wc[r] + 4 * VW * k));
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const VI x = vi_load(tk[t] + 128 * ch + 4 * VW * k);
                const VF d = G_STEP ? vf_zero() : b32_scale(tok_d4(tk[t], ch, pc), k);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    const VF q = vi_cvt_f32(NB ? dot_u8s8(vi_zero(), wq[r], x)
                                               : dot_q8(vi_zero(), wq[r], x));
                    const VF dr = G_STEP ? b32_scale(ds[r][t], k) : d;
                    inner[r][t] = k > 0 ? vf_fma(q, dr, inner[r][t])
                                  : NB  ? vf_fma(q, dr, tok_nb(tk[t], ch, pc))
                                        : vf_mul(q, dr);
                }
            }
        }
        acc_add_chunk(G, R, T, acc, inner, sv);
        return;
    }
#endif
    if (DOT_B32_TOKEN_MAJOR) {
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m128 ds = G_STEP ? grp_ds4(tk[t], ch, pc, s4[r]) : _mm_setzero_ps();
                VF inner = NB ? tok_nb(tk[t], ch, pc) : vf_zero();
#pragma GCC unroll 8
                for (int k = 0; k < ns; k++)
                    inner = b32_step(type, NB, wc[r], tk[t], ch,
                                     G_STEP ? b32_scale_p(b32_prep_r(ds), k)
                                            : b32_scale(tok_d4(tk[t], ch, pc), k),
                                     k, inner);
                acc[r][t] = G == 128 ? vf_fma(inner, sv[r], acc[r][t]) : vf_add(acc[r][t], inner);
            }
    } else {
        VF inner[RMAX][TMAX];
        B32R ds[RMAX][TMAX];
        if (G_STEP)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) ds[r][t] = b32_prep_r(grp_ds4(tk[t], ch, pc, s4[r]));
#pragma GCC unroll 8
        for (int k = 0; k < ns; k++)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
                    inner[r][t] = b32_step(type, NB, wc[r], tk[t], ch,
                                           G_STEP ? b32_scale_p(ds[r][t], k)
                                                  : b32_scale(tok_d4(tk[t], ch, pc), k),
                                           k,
                                           k > 0 ? inner[r][t]
                                           : NB  ? tok_nb(tk[t], ch, pc)
                                                 : vf_zero());
        acc_add_chunk(G, R, T, acc, inner, sv);
    }
}

/*
 * R rows x T tokens, FAST_B32: acc[r][t] holds VW fp32 lanes (partials already scaled by
 * their d_b); INT4 rows are pcols/128 full chunks, INT8 rows full chunks plus a half chunk
 * when padded to 64 mod 128. The result is s * hsum(acc), or hsum(acc) for the group-wise
 * types (G != 0), whose scales are inside the partials.
 */
AI void fastb_block(const int type, const int G, const int R, const int T, const glmq_dot_mat *w,
                    int64_t r, const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const uint8_t *wr[RMAX], *tk[TMAX];
    VF acc[RMAX][TMAX];
    panel_ptrs(R, T, w, r, a, t, wr, tk);
    acc_zero(R, T, acc);
    const int64_t cb = glmq_dot_chunk_bytes(type);
    const int64_t pw = type == GLMQ_TYPE_INT4 ? pc : glmq_q8_padded_cols(w->cols);
    int64_t ch = 0;
    for (; ch < pw / 128; ch++) {
        const uint8_t *wc[RMAX];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) wc[i] = wr[i] + cb * ch;
        __m128 s4[RMAX];
        VF sv[RMAX];
        if (G == 128)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) sv[i] = grp_scale128(w, r + i, ch);
        else if (G)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) s4[i] = grp_scales4(w, r + i, ch, G, 0);
        if (T == 1)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                prefetch_next(wc[i] + (size_t)R * w->stride, cb);
                prefetch_near(wc[i], cb);
                if (G) prefetch_scales(w, r + i + R, ch, G);
            }
        fastb_chunk(type, G, R, T, NSTEP, wc, tk, ch, pc, s4, sv, acc);
        /* shared GEMM nest: the R x T partials get the registers, the sums stay in memory */
        if (DOT_B32_GEMM_SHARED && T > 1) __asm__ volatile("" : : "r"(acc) : "memory");
    }
    if (type == GLMQ_TYPE_INT8 && pw % 128) {
        const uint8_t *wc[RMAX];
        __m128 s4[RMAX];
        VF sv[RMAX];
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            wc[i] = wr[i] + cb * ch;
            if (G == 128) sv[i] = grp_scale128(w, r + i, ch);
            else if (G) s4[i] = grp_scales4(w, r + i, ch, G, 1);
        }
        fastb_chunk(type, G, R, T, NSTEP / 2, wc, tk, ch, pc, s4, sv, acc);
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = G ? 1.0f : row_scale(w, r + i);
#pragma GCC unroll 8
        for (int j = 0; j < T; j++)
            y[(t + j) * ldy + r + i] = G ? vf_hsum(acc[i][j]) : vf_hsum(acc[i][j]) * s;
    }
}

/* ---- FAST_ROW -------------------------------------------------------------------------------- */

/*
 * int32 accumulators over the whole row (exact in any order; lanes may wrap, the final sum
 * fits). INT4 per chunk: dot_q4_row of the NSTEP nibble operands; INT8 per VB columns:
 * dot_q8. The weight bias (INT4 8, INT8 DOT_Q8_BIAS) times sum(xq) is removed at the end
 * (glmq_dot_row_result).
 */
AI void fastr_block(const int type, const int R, const int T, const glmq_dot_mat *w, int64_t r,
                    const glmq_dot_act *a, int64_t t, float *y, int64_t ldy)
{
    const int64_t pc = a->pcols;
    const uint8_t *wr[RMAX], *tk[TMAX];
    VI acc[RMAX][TMAX];
    panel_ptrs(R, T, w, r, a, t, wr, tk);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) acc[i][j] = vi_zero();
    if (type == GLMQ_TYPE_INT4 && T > 1) {
        /* GEMM: each row's operands are formed once and each token's codes loaded once per
         * chunk (R + T loads, not R x T) */
        for (int64_t ch = 0; ch < pc / 128; ch++) {
            VI wv[RMAX][NSTEP];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++)
#pragma GCC unroll 8
                for (int k = 0; k < NSTEP; k++)
                    wv[i][k] = q4_nibbles(wr[i] + 64 * ch + (4 * VW * k) % 64, 4 * VW * k >= 64);
#pragma GCC unroll 8
            for (int j = 0; j < T; j++) {
                VI xv[NSTEP];
#pragma GCC unroll 8
                for (int k = 0; k < NSTEP; k++)
                    xv[k] = vi_keep(vi_load(tk[j] + 128 * ch + 4 * VW * k));
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) acc[i][j] = dot_q4_row(acc[i][j], wv[i], xv);
            }
        }
    } else if (type == GLMQ_TYPE_INT4) {
        for (int64_t ch = 0; ch < pc / 128; ch++) {
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                const uint8_t *wc = wr[i] + 64 * ch;
                if (T == 1) prefetch_next(wc + (size_t)R * w->stride, 64);
                VI wv[NSTEP];
#pragma GCC unroll 8
                for (int k = 0; k < NSTEP; k++)
                    wv[k] = q4_nibbles(wc + (4 * VW * k) % 64, 4 * VW * k >= 64);
#pragma GCC unroll 8
                for (int j = 0; j < T; j++) {
                    VI xv[NSTEP];
#pragma GCC unroll 8
                    for (int k = 0; k < NSTEP; k++)
                        xv[k] = vi_load(tk[j] + 128 * ch + 4 * VW * k);
                    acc[i][j] = dot_q4_row(acc[i][j], wv, xv);
                }
            }
        }
    } else {
        const int64_t p8 = glmq_q8_padded_cols(w->cols);
        for (int64_t c = 0; c < p8 && T > 1; c += 4 * VW) { /* GEMM: R + T loads per step */
            VI wop[RMAX];
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) wop[i] = q8_wop(vi_loadu(wr[i] + c));
#pragma GCC unroll 8
            for (int j = 0; j < T; j++) {
                const VI x = vi_keep(vi_load(tk[j] + c));
#pragma GCC unroll 8
                for (int i = 0; i < R; i++) acc[i][j] = dot_q8(acc[i][j], wop[i], x);
            }
        }
        for (int64_t c = 0; c < p8 && T == 1; c += 4 * VW) {
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                if ((c & 63) == 0) prefetch_next(wr[i] + (size_t)R * w->stride + c, 64);
                const VI wop = q8_wop(vi_loadu(wr[i] + c));
#pragma GCC unroll 8
                for (int j = 0; j < T; j++) acc[i][j] = dot_q8(acc[i][j], wop, vi_load(tk[j] + c));
            }
        }
    }
    const uint32_t bias = type == GLMQ_TYPE_INT4 ? 8u : (uint32_t)DOT_Q8_BIAS;
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        const float s = row_scale(w, r + i);
#pragma GCC unroll 8
        for (int j = 0; j < T; j++)
            y[(t + j) * ldy + r + i] =
                glmq_dot_row_result(vi_hsum32(acc[i][j]), bias, tk[j], pc, s);
    }
}

#define Q4B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, 0, R, T, w, r, a, t, y, ldy)
#define Q8B_BLK(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, 0, R, T, w, r, a, t, y, ldy)
#define Q4R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT4, R, T, w, r, a, t, y, ldy)
#define Q8R_BLK(R, T, r, t) fastr_block(GLMQ_TYPE_INT8, R, T, w, r, a, t, y, ldy)

GLMQ_DOT_KERNEL(DOT_FNAME(glmq_q4_dot_q8b), Q4B_BLK, DOT_Q4B_RV, DOT_B32_RM, DOT_B32_TM,
                DOT_B32_NB)
GLMQ_DOT_KERNEL(DOT_FNAME(glmq_q8_dot_q8b), Q8B_BLK, DOT_Q8B_RV, DOT_B32_RM, DOT_B32_TM, 0)
GLMQ_DOT_KERNEL(DOT_FNAME(glmq_q4_dot_q8r), Q4R_BLK, DOT_Q4R_RV, DOT_FAST_RM, DOT_FAST_TM, 0)
GLMQ_DOT_KERNEL(DOT_FNAME(glmq_q8_dot_q8r), Q8R_BLK, DOT_Q8R_RV, DOT_FAST_RM, DOT_FAST_TM, 0)

/* Group-wise FAST_B32: one static kernel per group size, the entry point dispatching on
 * w->group (as the EXACT ones in dot_x86_impl.h). Same walk shapes as the per-row kernels. */
#define Q4GB32(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, 32, R, T, w, r, a, t, y, ldy)
#define Q4GB64(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, 64, R, T, w, r, a, t, y, ldy)
#define Q4GB128(R, T, r, t) fastb_block(GLMQ_TYPE_INT4, 128, R, T, w, r, a, t, y, ldy)
#define Q8GB32(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, 32, R, T, w, r, a, t, y, ldy)
#define Q8GB64(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, 64, R, T, w, r, a, t, y, ldy)
#define Q8GB128(R, T, r, t) fastb_block(GLMQ_TYPE_INT8, 128, R, T, w, r, a, t, y, ldy)

DOT_GROUP_KERNEL(q4gb32, Q4GB32, DOT_Q4B_RV, DOT_B32_RM, DOT_B32_TM, 0)
DOT_GROUP_KERNEL(q4gb64, Q4GB64, DOT_Q4B_RV, DOT_B32_RM, DOT_B32_TM, 0)
DOT_GROUP_KERNEL(q4gb128, Q4GB128, DOT_Q4B_RV, DOT_B32_RM, DOT_B32_TM, DOT_B32_NB)
DOT_GROUP_KERNEL(q8gb32, Q8GB32, DOT_Q8B_RV, DOT_B32_RM, DOT_B32_TM, 0)
DOT_GROUP_KERNEL(q8gb64, Q8GB64, DOT_Q8B_RV, DOT_B32_RM, DOT_B32_TM, 0)
DOT_GROUP_KERNEL(q8gb128, Q8GB128, DOT_Q8B_RV, DOT_B32_RM, DOT_B32_TM, 0)

GLMQ_DOT_GROUP_ENTRY(DOT_FNAME(glmq_q4g_dot_q8b), q4gb32, q4gb64, q4gb128)
GLMQ_DOT_GROUP_ENTRY(DOT_FNAME(glmq_q8g_dot_q8b), q8gb32, q8gb64, q8gb128)
