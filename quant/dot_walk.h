/*
 * dot_walk.h - the ISA-neutral parts of the SIMD matrix kernels (dot_avx2.c, dot_avx512.c via
 * quant/dot_x86_impl.h): the scalar helpers every level must compute identically (activation
 * scale, the FAST_ROW token header), the row/token walk every kernel shares, the token block
 * size and the chunking of a row. Plain C: no intrinsics, so each including file compiles its
 * own copy with its own flags.
 */
#ifndef GLMQ_DOT_WALK_H
#define GLMQ_DOT_WALK_H

#include "quant/dot.h"

/* ---- scalar helpers (the same formulas on every level, dot.h §2) -------------------------- */

/* Activation block scale from amax: d = amax/127, id = 127/amax (two fp32 divisions), or both 0
 * when amax < 2^-100 (flushed block; also keeps 127/amax finite for subnormals). */
static inline void glmq_dot_act_scale(float amax, float *d, float *id)
{
    if (amax >= 0x1p-100f) {
        *d = amax / 127.0f;
        *id = 127.0f / amax;
    } else {
        *d = 0.0f;
        *id = 0.0f;
    }
}

/* The float with bits u (amax is found as the max of |x| bits, an exact integer max). */
static inline float glmq_dot_f_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* FAST_ROW token header (dot.h §4): write / read d and sum(xq) after the pcols codes. */
static inline void glmq_dot_row_header_put(uint8_t *tok, int64_t pcols, float d, int32_t sum)
{
    memset(tok + pcols, 0, 64);
    memcpy(tok + pcols, &d, 4);
    memcpy(tok + pcols + 4, &sum, 4);
}
static inline void glmq_dot_row_header_get(const uint8_t *tok, int64_t pcols, float *d,
                                           int32_t *sum)
{
    memcpy(d, tok + pcols, 4);
    memcpy(sum, tok + pcols + 4, 4);
}

/* FAST_ROW result from the row's biased int32 sum u (mod 2^32): (u - bias*sum(xq)) is the exact
 * sum q*xq; y = ((float)isum * d) * s, the same expression on every level. */
static inline float glmq_dot_row_result(uint32_t u, uint32_t bias, const uint8_t *tok,
                                        int64_t pcols, float s)
{
    float d;
    int32_t sx;
    glmq_dot_row_header_get(tok, pcols, &d, &sx);
    return ((float)(int32_t)(u - bias * (uint32_t)sx) * d) * s;
}

/* Bytes of one 128-column chunk of a row of type (INT4 64, INT8 128, F16/BF16 256). */
static inline int64_t glmq_dot_chunk_bytes(const int type)
{
    return type == GLMQ_TYPE_INT4 ? 64 : type == GLMQ_TYPE_INT8 ? 128 : 256;
}

/* Tokens per L2-resident block: enough that ~384 KiB of prepared activations are reused by
 * every row panel, at least one token group, a multiple of the group size. Counted are the
 * bytes a kernel reads: a FAST_B32 token's nb only for a kernel that reads it (reads_nb: the
 * INT4 kernels of the 256-bit levels, dot.h §4). */
static inline int64_t glmq_dot_token_block(const glmq_dot_act *a, int tm, int reads_nb)
{
    const size_t bytes = a->mode == GLMQ_DOT_FAST_B32 && !reads_nb
                             ? glmq_dot_b32_nb_offset(a->pcols)
                             : a->tok_bytes;
    int64_t tb = (int64_t)((384u << 10) / bytes);
    tb = tb / tm * tm;
    if (tb < tm) tb = tm;
    return tb;
}

/*
 * EXACT chunking of a row of w (type = w->type, a compile-time constant in each kernel): nfull
 * full 128-column chunks, then rest columns in a last partial chunk (INT4: none, rows are whole
 * blocks; INT8: 64 when the padded row is 64 mod 128; F16/BF16: cols % 128, the rows are not
 * padded).
 */
static inline void glmq_dot_exact_chunks(const int type, const glmq_dot_mat *w,
                                         const glmq_dot_act *a, int64_t *nfull, int64_t *rest)
{
    if (type == GLMQ_TYPE_INT4) {
        *nfull = a->pcols / 128;
        *rest = 0;
    } else if (type == GLMQ_TYPE_INT8) {
        *nfull = glmq_q8_padded_cols(w->cols) / 128;
        *rest = glmq_q8_padded_cols(w->cols) % 128;
    } else {
        *nfull = w->cols / 128;
        *rest = w->cols % 128;
    }
}

/*
 * The row/token walk of every kernel. BLOCK(R, T, r, t) computes rows r..r+R-1 for tokens
 * t..t+T-1; only the shapes (RV,1) for GEMV, (RM,TM), (RM,1), (1,TM), (1,1) are instantiated.
 * GEMV (ntok 1) runs panels of RV rows; GEMM runs token blocks, and in each, panels of RM rows
 * x groups of TM tokens. Every shape gives the same bits per output (dot.h §3). NB: 1 when the
 * kernel reads a FAST_B32 token's nb (glmq_dot_token_block).
 */
#define GLMQ_DOT_DRIVER(RV, RM, TM, BLOCK, NB)                                                   \
    {                                                                                            \
        const int64_t ntok = a->ntok;                                                            \
        if (ntok == 1) {                                                                         \
            int64_t r = r0;                                                                      \
            for (; r + (RV) <= r1; r += (RV)) BLOCK(RV, 1, r, 0);                                \
            for (; r < r1; r++) BLOCK(1, 1, r, 0);                                               \
            return;                                                                              \
        }                                                                                        \
        const int64_t tbs = glmq_dot_token_block(a, TM, NB);                                     \
        for (int64_t tb = 0; tb < ntok; tb += tbs) {                                             \
            const int64_t te = tb + tbs < ntok ? tb + tbs : ntok;                                \
            int64_t r = r0;                                                                      \
            for (; r + (RM) <= r1; r += (RM)) {                                                  \
                int64_t t = tb;                                                                  \
                for (; t + (TM) <= te; t += (TM)) BLOCK(RM, TM, r, t);                           \
                for (; t < te; t++) BLOCK(RM, 1, r, t);                                          \
            }                                                                                    \
            for (; r < r1; r++) {                                                                \
                int64_t t = tb;                                                                  \
                for (; t + (TM) <= te; t += (TM)) BLOCK(1, TM, r, t);                            \
                for (; t < te; t++) BLOCK(1, 1, r, t);                                           \
            }                                                                                    \
        }                                                                                        \
    }

/* A kernel entry point (glmq_dot_mm_fn) walking with micro-kernel BLK. */
#define GLMQ_DOT_KERNEL(fname, BLK, RV, RM, TM, NB)                                              \
    void fname(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a, float *y,  \
               int64_t ldy) GLMQ_DOT_DRIVER(RV, RM, TM, BLK, NB)

/* A group-wise entry point: the kernel of w's group size (32, 64, else 128). */
#define GLMQ_DOT_GROUP_ENTRY(fname, k32, k64, k128)                                              \
    void fname(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a, float *y,  \
               int64_t ldy)                                                                      \
    {                                                                                            \
        (w->group == 32 ? k32 : w->group == 64 ? k64 : k128)(w, r0, r1, a, y, ldy);            \
    }

#endif /* GLMQ_DOT_WALK_H */
