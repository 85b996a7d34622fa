/*
 * dot_walk.h - the ISA-neutral parts of the SIMD matrix kernels (dot_avx2.c, dot_avx512.c):
 * the row/token walk every kernel shares, the token block size and the EXACT chunking.
 * Included only by those files, after they define their BLOCK micro-kernels.
 */
#ifndef GLMQ_DOT_WALK_H
#define GLMQ_DOT_WALK_H

#include "quant/dot.h"

/* Tokens per L2-resident block: enough that ~384 KiB of prepared activations are reused by
 * every row panel, at least one token group, a multiple of the group size. */
static inline int64_t glmq_dot_token_block(const glmq_dot_act *a, int tm)
{
    int64_t tb = (int64_t)((384u << 10) / a->tok_bytes);
    tb = tb / tm * tm;
    if (tb < tm) tb = tm;
    return tb;
}

/*
 * EXACT chunking of a row of w (type = w->type, a compile-time constant in each kernel): nfull full 128-column chunks, then rest columns in a last
 * partial chunk (INT4: none, rows are whole blocks; INT8: 64 when the padded row is 64 mod
 * 128; F16/BF16: cols % 128, the rows are not padded).
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
 * x groups of TM tokens. Every shape gives the same bits per output (dot.h §3).
 */
#define GLMQ_DOT_DRIVER(RV, RM, TM, BLOCK)                                                       \
    {                                                                                            \
        const int64_t ntok = a->ntok;                                                            \
        if (ntok == 1) {                                                                         \
            int64_t r = r0;                                                                      \
            for (; r + (RV) <= r1; r += (RV)) BLOCK(RV, 1, r, 0);                                \
            for (; r < r1; r++) BLOCK(1, 1, r, 0);                                               \
            return;                                                                              \
        }                                                                                        \
        const int64_t tbs = glmq_dot_token_block(a, TM);                                         \
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
#define GLMQ_DOT_KERNEL(fname, BLK, RV, RM, TM)                                                  \
    void fname(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a, float *y,  \
               int64_t ldy) GLMQ_DOT_DRIVER(RV, RM, TM, BLK)

#endif /* GLMQ_DOT_WALK_H */
