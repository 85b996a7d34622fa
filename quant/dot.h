/*
 * dot.h - matrix kernels over the packed per-row weights (INT4, INT8, F16, BF16) with fp32
 * activations: GEMV (decode, one token) and GEMM (prefill, many tokens), internal.
 *
 *     Y[t][r] = sum_c W[r][c] * X[t][c]      r in [r0, r1), t in [0, ntok), c in [0, cols)
 *
 * W is PyTorch's [out, in] weight in its packed form (quant.h, formats/SPEC.md §5): row r at
 * data + r*stride, INT8 codes padded to 64 columns, INT4 128-column blocks of 64 bytes (low
 * nibble = element j, high nibble = element 64+j, offset 8), one fp16 scale per row
 * (value = q * scale); F16/BF16 rows are cols*2 bytes with no scale.
 *
 * ---- 1. Two steps: prepare, then multiply ---------------------------------------------------
 *
 * glmq_dot_prepare() turns ntok fp32 activation vectors into a glmq_dot_act in the caller's
 * scratch (glmq_dot_scratch_size() bytes; kernels never allocate). One prepared act serves
 * every matrix with the same cols (GLM's QKV and h->4h both read the same normed x), every
 * row range and every thread. glmq_dot_matmul() then computes rows [r0, r1) for all tokens.
 * The act layout is the same for every kernel level, so an act prepared by one level can be
 * used by another (the quantizers are bit-identical across levels).
 *
 * ---- 2. Numerical modes ---------------------------------------------------------------------
 *
 *  GLMQ_DOT_EXACT     fp32 math on the dequantized weights: y = s * sum_c q_c * x_c (INT4/INT8)
 *                     or sum_c w_c * x_c (F16/BF16). The _ref kernel sums in double; SIMD
 *                     kernels sum in fp32 lanes in two levels (a fresh partial per 128-column
 *                     chunk, added into a running sum), so even same-sign data stays within
 *                     |simd - ref| <= 1e-5 * sum|terms| + 1e-6.
 *  GLMQ_DOT_FAST_B32  activations quantized on the fly to int8, symmetric, one fp32 scale d_b
 *                     per block of 32 columns; integer dot products per block (exact int32),
 *                     y = s * sum_b d_b * isum_b (fp32 lanes, two levels as above). The
 *                     256-bit levels (avx2, avxvnni) form INT4 rows (per-row and groups of
 *                     128) without removing the nibbles' bias 8 in the integer sums: a
 *                     chunk's lane starts at the prepared nb (minus the bias term of its 4
 *                     steps, §4) and adds d_b * (sum of (q + 8) * xq) per step, which saves
 *                     the per-(row, token) sign operation of vpmaddubsw (dot_avx2.c). Its fp32
 *                     rounding is then relative to those biased terms and nb: within 1e-5 *
 *                     sum of s * d_b * (|q| + 16) * |xq| + 1e-6 (a row of zero codes gives s
 *                     times a rounding residue, not exactly 0).
 *  GLMQ_DOT_FAST_ROW  the same with one scale d for the whole vector; one exact int32 sum per
 *                     row: y = ((float)isum * d) * s, bit-identical on every level.
 *  GLMQ_DOT_FAST      the default fast mode = GLMQ_DOT_FAST_B32 (see §5 for why).
 *
 * Activation quantization (both FAST modes; "block" = 32 columns or the whole vector):
 *     amax = max |x_c| over the block
 *     if amax >= 2^-100:  d = amax / 127 (fp32 division), id = 127 / amax (fp32 division),
 *                         xq_c = clamp(rint(x_c * id), -127, 127)   (rint: ties to even)
 *     else:               d = 0, xq_c = 0   (also avoids 127/amax overflowing for subnormals)
 * which gives |x_c - d * xq_c| <= d * (1/2 + 2^-15) (the 2^-15 covers the three fp32
 * roundings of d, id and x*id), so, per output element,
 *     |y_fast - y_exact| <= s * sum_b d_b * (1/2 + 2^-15) * sum_{c in b} |q_c|
 *                           + s * 2^-100 * sum |q_c|   (flushed blocks)  + fp32 rounding.
 * NaN/Inf activations give unspecified outputs (never UB, never a crash).
 * Integer sums are exact: per block |sum q*xq| <= 32*127*127; per row they are exact while
 * cols <= GLMQ_DOT_MAX_COLS (127*127*131072 < 2^31). F16/BF16 weights need an EXACT act.
 *
 * ---- 3. Determinism ---------------------------------------------------------------------------
 *
 * On a given level every output element is computed by one (r, t) accumulator chain whose
 * order depends only on cols: not on r0/r1, on the micro-kernel shape a row or token falls
 * into, nor on ntok. Hence GEMM row t == GEMV of token t bit for bit, and any static row split
 * over threads (glmq_dot_matmul_pool) gives bit-identical results for any thread count.
 *
 * ---- 4. Prepared activation layout (per token, tok_bytes apart, 64-byte aligned) -----------
 *
 *   pc = cols rounded up to GLMQ_DOT_CHUNK (128); everything past cols is zero.
 *   EXACT:      float xf[pc]                                               4*pc bytes
 *   FAST_B32:   int8 xq[pc] | float db[pc/32] | zero pad to a multiple of 64 |
 *               float nb[pc/128][8] | zero pad to a multiple of 64      pc + pc/8 + pc/4 (+pads)
 *                 db[b] = d of the 32-column block b
 *                 nb[ch][l] = 0 - c, where over the 4 steps k of chunk ch (blocks 4ch + k),
 *                   with X_k = the sum of xq[128ch + 32k + 4l + i], i = 0..3 (int):
 *                   c = (float)(8 X_0) * db[4ch] (rounded), then c = fma((float)(8 X_k),
 *                   db[4ch + k], c) for k = 1..3: the bias term of INT4's nibble codes in the
 *                   8 fp32 lanes of the 256-bit levels (§2; glmq_dot_b32_finish, plain C, the
 *                   same bits on every level)
 *               xq and db are kept compact on purpose: a GEMM streams every token's prepared
 *               activations from L2 once per row panel, and those bytes are what bounds it.
 *               (An earlier layout repeated d and the 4-column code sums per int32 lane,
 *               3*pc bytes; recomputing them in the kernel from xq - one vpdpbusd per 64
 *               columns and token, shared by the row panel - made the AVX-512 B32 GEMM 1.4x
 *               (INT4) and 1.7x (INT8) faster.) The AVX-512 kernels do not read nb, and
 *               their token blocks count only the bytes before it (quant/dot_walk.h).
 *   FAST_ROW:   int8 xq[pc] | float d | int32 sum(xq) | pad to 64              pc+64 bytes
 *
 * ---- 5. Default fast mode and measurements -------------------------------------------------
 *
 * FAST_B32 is the default (GLMQ_DOT_FAST). `glmq bench gemv` on the project's 2-core Zen 5
 * (AVX-512 VNNI) VM, medians, 1 / 2 threads, read bandwidth = the fastest sum probe measured
 * in the same run (~30-34 / ~51-61 GB/s; 512-bit loads that miss to DRAM stream ~20% slower
 * than 256-bit ones on this CPU, so the AVX-512 probe reads 64-byte lines as two halves):
 *   GEMV speed: both FAST modes are memory-bound at 75-95% of the read bandwidth for INT4 and
 *     INT8 on every GLM shape (EXACT: 70-90%), so the mode costs no decode speed.
 *   GEMM (512 tokens, 2 threads): FAST_B32 520-580 G int-ops/s, FAST_ROW 680-1270, EXACT
 *     240-310 GFLOP/s. FAST_ROW does ~3x fewer operations per MAC (no per-block convert and
 *     scale) but prefill is not the bottleneck of a 2-core decode.
 *   Accuracy (1024x4096 Student-t(5) weights, 16 tokens, ||y - y_exact|| / ||y_exact||):
 *                          weights (exact vs fp32)   FAST_B32   FAST_ROW
 *     INT4, gaussian x            3.6e-1              5.4e-3     8.9e-3
 *     INT4, LLM-like x            3.6e-1              1.2e-2     7.7e-2
 *     INT8, gaussian x            2.0e-2              5.4e-3     8.9e-3
 *     INT8, LLM-like x            1.9e-2              1.2e-2     7.8e-2
 *     (LLM-like: per-channel gains and 6 fixed outlier channels at +-20..100, the "massive
 *     activations" of LLM hidden states.) One scale per vector lets an outlier channel set the
 *     step for all 4096 activations; with a scale per 32 the outlier only coarsens its block.
 *     FAST_ROW's error on realistic activations is 4x the INT8 weight error itself, FAST_B32's
 *     stays below it.
 * Hence B32 by default; FAST_ROW stays available (e.g. prefill of outlier-free inputs).
 *
 * Group-wise types vs the per-row kernel of the same codes, avx2 level, on the project's other
 * VM: 2-core AMD EPYC (AVX2 only), shared and heavily loaded while measured (load 6-9, read
 * probe only 7-10 GB/s, so single figures swing by +-10%). `glmq bench gemv --only gemv
 * --level avx2 --runs 7` (GEMV: GB/s of codes + scales, the two kernels alternating in each
 * run, median of the per-run ratios), 1 / 2 threads, FAST_B32, over the 5 GLM shapes:
 *     int4g32  92-104% / 86-114%   int4g128  85-97% / 90-100%   int8g32  91-99% / 93-111%
 *   EXACT: int4g128 94-103%, int8g32 64-98%, int4g32 63-76% (1 thread; the per-vector scale
 *   costs ALU work that the per-row EXACT kernel, itself ~50% of bandwidth here, lacks).
 * Thread CPU time, kernels in L2 (256x4096 GEMV) and 512x4096x64 GEMM, alternating, medians
 * (less noisy; time ratio row / group, so GB/s ratios are higher by the scale bytes, 3-12%):
 *   GEMM FAST_B32 92-96% for every group type; EXACT g128 96-98%, g32/g64 72-88%.
 *   GEMV FAST_B32 79-87% in L2 (the per-chunk scale load and convert are not hidden there;
 *   streaming from DRAM they mostly are, as the figures above show).
 *
 * Thread-safety: every function here is reentrant; kernels read only their inputs and write
 * only y[t*ldy + r] for their rows (and prepare only its scratch).
 */
#ifndef GLMQ_DOT_H
#define GLMQ_DOT_H

#include "core/internal.h"
#include "core/pool.h"
#include "quant/attn.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

#define GLMQ_DOT_CHUNK 128        /* columns per accumulation chunk; activation padding */
#define GLMQ_DOT_ABLOCK 32        /* FAST_B32 activation block */
#define GLMQ_DOT_MAX_COLS 131072  /* int32 row sums stay exact up to here */
#define GLMQ_DOT_ROW_GRAIN 16     /* pool row splits fall on multiples of this */

_Static_assert(GLMQ_DOT_CHUNK == GLMQ_Q4_BLOCK, "one INT4 block per accumulation chunk");
_Static_assert(127LL * 127 * GLMQ_DOT_MAX_COLS < 2147483647LL, "exact int32 row sums");

typedef enum {
    GLMQ_DOT_EXACT = 0,
    GLMQ_DOT_FAST_B32 = 1,
    GLMQ_DOT_FAST_ROW = 2,
} glmq_dot_mode;
#define GLMQ_DOT_NMODES 3
#define GLMQ_DOT_FAST GLMQ_DOT_FAST_B32

/* Name of a mode ("exact", "fast-b32", "fast-row"). */
const char *glmq_dot_mode_name(glmq_dot_mode m);

/* A borrowed weight matrix (e.g. an mmap view of a pack tensor). */
typedef struct glmq_dot_mat {
    glmq_type type;          /* GLMQ_TYPE_INT4, INT8, INT4_G*, INT8_G*, F16 or BF16 */
    int64_t rows, cols;      /* PyTorch [out, in] = [rows, cols] */
    size_t stride;           /* bytes from row r to row r+1 (>= the packed row bytes) */
    const void *data;        /* row r at data + r*stride */
    const uint16_t *scales;  /* INT4/INT8: fp16 bits per row (host order); group-wise types:
                              * spr per row, row-major (scale g of row r at r*spr + g); NULL
                              * otherwise */
    int64_t group;           /* group-wise types: 32, 64 or 128 columns per scale; else 0 */
    int64_t spr;             /* scales per row (glmq_scales_per_row); 0 for F16/BF16 */
} glmq_dot_mat;

/* A prepared activation set (§4). Points into the caller's scratch; valid while it is. */
typedef struct glmq_dot_act {
    glmq_dot_mode mode;
    int64_t cols;     /* logical columns */
    int64_t pcols;    /* cols rounded up to GLMQ_DOT_CHUNK */
    int64_t ntok;     /* number of tokens */
    size_t tok_bytes; /* bytes from token t to token t+1 in buf (a multiple of 64) */
    uint8_t *buf;     /* 64-byte aligned */
} glmq_dot_act;

/* Prepare one token: write the §4 layout of x[0..cols) to tok (all tok_bytes of it, padding
 * included, so prepared sets compare byte for byte; 64-aligned). */
typedef void (*glmq_dot_prep_fn)(const float *x, int64_t cols, int64_t pcols, uint8_t *tok);

/* Rows [r0, r1) of Y = W X^T for every token of a: y[t*ldy + r]. Preconditions (checked by
 * glmq_dot_matmul, not here): a->cols == w->cols, a->mode suits w->type, 0 <= r0 <= r1 <=
 * w->rows. */
typedef void (*glmq_dot_mm_fn)(const glmq_dot_mat *w, int64_t r0, int64_t r1,
                               const glmq_dot_act *a, float *y, int64_t ldy);

/* Sum of n floats with full-width vector loads (the read-bandwidth probe of the benchmark). */
typedef double (*glmq_dot_sum_fn)(const float *p, int64_t n);

/*
 * The kernel table of one level. Index prep[] and q4[]/q8[] by glmq_dot_mode; f16/bf16 are
 * EXACT only.
 */
typedef struct glmq_dot_kernels {
    glmq_cpu_level level;
    const char *name; /* glmq_cpu_level_name(level): "ref", "avx2", "avxvnni", ... */
    glmq_dot_prep_fn prep[GLMQ_DOT_NMODES];
    glmq_dot_mm_fn q4[GLMQ_DOT_NMODES];
    glmq_dot_mm_fn q8[GLMQ_DOT_NMODES];
    /* group-wise INT4_G* / INT8_G* (every group size; FAST_ROW has no entry: NULL) */
    glmq_dot_mm_fn q4g[GLMQ_DOT_NMODES];
    glmq_dot_mm_fn q8g[GLMQ_DOT_NMODES];
    glmq_dot_mm_fn f16, bf16;
    glmq_dot_sum_fn sum_f32;
    glmq_att_head_fn att; /* attention of one query head (quant/attn.h) */
    glmq_att_group_fn att_group; /* the query heads of one KV group (quant/attn.h) */
} glmq_dot_kernels;

/* The table of the active level (glmq_cpu_active(), i.e. GLMQ_CPU and glmq_cpu_force()
 * included). Never NULL. On AVX-512 without VNNI the FAST kernels are the AVX2 ones. */
const glmq_dot_kernels *glmq_dot_kernels_get(void);
/* The table of a given level, or NULL when this CPU/OS cannot run it (for tests/benchmarks). */
const glmq_dot_kernels *glmq_dot_kernels_for(glmq_cpu_level level);

/* ---- setup ----------------------------------------------------------------------------------- */

/* Fill *m for a packed matrix: stride = the packed row bytes of type (quant.h / SPEC §5).
 * @return GLMQ_E_INVALID for a bad type, non-positive dims, cols > GLMQ_DOT_MAX_COLS, NULL
 *         data, or NULL/non-NULL scales not matching the type. */
glmq_status glmq_dot_mat_init(glmq_dot_mat *m, glmq_type type, int64_t rows, int64_t cols,
                              const void *data, const uint16_t *scales, glmq_err *err);

/* Packed row bytes of type for cols columns (0 for unsupported types). */
size_t glmq_dot_row_bytes(glmq_type type, int64_t cols);

/* Scratch bytes glmq_dot_prepare needs for ntok tokens of cols columns in mode (includes 63
 * bytes of alignment slack, so any pointer will do). 0 when the arguments are invalid. */
size_t glmq_dot_scratch_size(glmq_dot_mode mode, int64_t cols, int64_t ntok);

/* ---- the two steps --------------------------------------------------------------------------- */

/*
 * Prepare ntok activation vectors (token t at x + t*ldx, cols floats) into scratch.
 * k: the kernel table to use (NULL = glmq_dot_kernels_get()).
 * @return GLMQ_OK, or GLMQ_E_INVALID (bad mode/dims, ldx < cols with ntok > 1, scratch too
 *         small, NULL pointers). On success *out describes the prepared set.
 */
glmq_status glmq_dot_prepare(const glmq_dot_kernels *k, glmq_dot_mode mode, const float *x,
                             int64_t ldx, int64_t cols, int64_t ntok, void *scratch,
                             size_t scratch_size, glmq_dot_act *out, glmq_err *err);

/*
 * y[t*ldy + r] = sum_c W[r][c] X[t][c] for r in [r0, r1), every token of a.
 * @return GLMQ_E_SHAPE (a->cols != w->cols, bad row range, ldy < r1 with ntok > 1),
 *         GLMQ_E_INVALID (an F16/BF16 matrix with a FAST act, NULL pointers, bad matrix).
 */
glmq_status glmq_dot_matmul(const glmq_dot_kernels *k, const glmq_dot_mat *w, int64_t r0,
                            int64_t r1, const glmq_dot_act *a, float *y, int64_t ldy,
                            glmq_err *err);

/* ---- thread-pool wrappers (src/core/pool.h); pool NULL = run on the calling thread ---------- */

/* glmq_dot_prepare with the tokens split statically over the pool's threads. */
glmq_status glmq_dot_prepare_pool(glmq_pool *pool, const glmq_dot_kernels *k,
                                  glmq_dot_mode mode, const float *x, int64_t ldx, int64_t cols,
                                  int64_t ntok, void *scratch, size_t scratch_size,
                                  glmq_dot_act *out, glmq_err *err);

/* All rows of W, split into one contiguous range per thread with boundaries on multiples of
 * GLMQ_DOT_ROW_GRAIN rows (whole cache lines of y; each thread streams its own rows).
 * Bit-identical for any pool size (§3). */
glmq_status glmq_dot_matmul_pool(glmq_pool *pool, const glmq_dot_kernels *k,
                                 const glmq_dot_mat *w, const glmq_dot_act *a, float *y,
                                 int64_t ldy, glmq_err *err);

/* One-shot convenience: prepare_pool + matmul_pool (scratch as glmq_dot_scratch_size). */
glmq_status glmq_dot_gemm_pool(glmq_pool *pool, const glmq_dot_kernels *k, glmq_dot_mode mode,
                               const glmq_dot_mat *w, const float *x, int64_t ldx, int64_t ntok,
                               float *y, int64_t ldy, void *scratch, size_t scratch_size,
                               glmq_err *err);

/* ---- per-level entry points (the tables in dot_dispatch.c; tests may call them directly) ---- */

/* Accessors of a prepared token (§4). */
static inline const uint8_t *glmq_dot_tok(const glmq_dot_act *a, int64_t t)
{
    return a->buf + (size_t)t * a->tok_bytes;
}
/* FAST_B32: bytes of xq and db with their padding, i.e. the offset of nb (§4). */
static inline size_t glmq_dot_b32_nb_offset(int64_t pcols)
{
    return ((size_t)pcols + (size_t)pcols / 8 + 63) / 64 * 64;
}
static inline size_t glmq_dot_tok_bytes(glmq_dot_mode mode, int64_t pcols)
{
    return mode == GLMQ_DOT_EXACT ? (size_t)pcols * 4
           : mode == GLMQ_DOT_FAST_B32
               ? (glmq_dot_b32_nb_offset(pcols) + (size_t)pcols / 4 + 63) / 64 * 64
               : (size_t)pcols + 64;
}
/* FAST_B32: the block scales and the bias terms nb of a prepared token. */
static inline float *glmq_dot_b32_scales(uint8_t *tok, int64_t pcols)
{
    return (float *)(void *)(tok + pcols);
}
static inline float *glmq_dot_b32_nb(uint8_t *tok, int64_t pcols)
{
    return (float *)(void *)(tok + glmq_dot_b32_nb_offset(pcols));
}
/* FAST_B32, the end of every level's prepare: zero both pads and compute nb (§4) from the
 * token's xq and db. Plain C, the fma by fmaf (correctly rounded, as vfmadd), so every level
 * writes the same bytes. */
static inline void glmq_dot_b32_finish(uint8_t *tok, int64_t pcols)
{
    const size_t used = (size_t)pcols + (size_t)pcols / 8, nbo = glmq_dot_b32_nb_offset(pcols);
    const size_t nb_end = nbo + (size_t)pcols / 4;
    memset(tok + used, 0, nbo - used);
    memset(tok + nb_end, 0, glmq_dot_tok_bytes(GLMQ_DOT_FAST_B32, pcols) - nb_end);
    const int8_t *xq = (const int8_t *)tok;
    const float *db = glmq_dot_b32_scales(tok, pcols);
    float *nb = glmq_dot_b32_nb(tok, pcols);
    for (int64_t ch = 0; ch < pcols / 128; ch++)
        for (int l = 0; l < 8; l++) {
            float c = 0.0f;
            for (int k = 0; k < 4; k++) {
                const int8_t *q = xq + 128 * ch + 32 * k + 4 * l;
                const float v = (float)(8 * ((int)q[0] + q[1] + q[2] + q[3]));
                c = k == 0 ? v * db[4 * ch] : fmaf(v, db[4 * ch + k], c);
            }
            nb[8 * ch + l] = 0.0f - c;
        }
}
static inline int64_t glmq_dot_padded_cols(int64_t cols)
{
    return (cols + GLMQ_DOT_CHUNK - 1) / GLMQ_DOT_CHUNK * GLMQ_DOT_CHUNK;
}

/* Exact-mode and preparation entry points of one level. */
#define GLMQ_DOT_DECLARE_EXACT(isa)                                                              \
    void glmq_dot_prep_exact_##isa(const float *x, int64_t cols, int64_t pcols, uint8_t *tok);   \
    void glmq_dot_prep_b32_##isa(const float *x, int64_t cols, int64_t pcols, uint8_t *tok);     \
    void glmq_dot_prep_row_##isa(const float *x, int64_t cols, int64_t pcols, uint8_t *tok);     \
    void glmq_q4_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);                    \
    void glmq_q8_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);                    \
    void glmq_f16_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                   \
                                const glmq_dot_act *a, float *y, int64_t ldy);                   \
    void glmq_bf16_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                  \
                                 const glmq_dot_act *a, float *y, int64_t ldy);                  \
    double glmq_dot_sum_f32_##isa(const float *p, int64_t n);

/* Group-wise entry points of one level (EXACT and FAST_B32):
 *   EXACT     y = sum_c (q_c * s_g(c)) * x_c       (q * s is exact in fp32: the dequantized weight)
 *   FAST_B32  y = sum_b (d_b * s_g(b)) * isum_b    (a group holds whole 32-column blocks)
 * The _ref kernels sum in double (d_b * s_g in double too); SIMD kernels as dot.h §2, with the
 * same walk, chunks, panels, prefetching and accumulator chains as the per-row kernels of the
 * same codes (so §3 holds: GEMM == GEMV, any thread count), one kernel per group size behind an
 * entry point that dispatches on w->group. Order of the SIMD kernels (quant/dot_x86_*impl.h):
 *   EXACT, groups of 32/64: each widened weight vector is the dequantized weight q * s_g (INT4:
 *     fma(nibble, s, -8s) or a scaled vpermps table; INT8: vmulps; exact), then FMA'd as per
 *     row; no final scale.
 *   FAST_B32, groups of 32/64: per chunk and (row, token), the fp32 products d_b * s_g(b) of its
 *     4 blocks (one vmulps), spread over the steps instead of d_b; no final scale.
 *   Groups of 128 (one scale per 128-column chunk), both modes: the per-row chunk partial, then
 *     acc = fma(partial, s_g, acc) instead of acc + partial; no final scale.
 * All within |simd - ref| <= 1e-5 * sum|terms| + 1e-6 (tests/check_dot.c). */
#define GLMQ_DOT_DECLARE_GROUPED(isa)                                                            \
    void glmq_q4g_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                   \
                                const glmq_dot_act *a, float *y, int64_t ldy);                   \
    void glmq_q8g_dot_f32_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                   \
                                const glmq_dot_act *a, float *y, int64_t ldy);                   \
    void glmq_q4g_dot_q8b_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                   \
                                const glmq_dot_act *a, float *y, int64_t ldy);                   \
    void glmq_q8g_dot_q8b_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                   \
                                const glmq_dot_act *a, float *y, int64_t ldy);

/* Fast-mode (int8 activation) entry points of one level: q8b = FAST_B32, q8r = FAST_ROW. */
#define GLMQ_DOT_DECLARE_FAST(isa)                                                               \
    void glmq_q4_dot_q8b_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);                    \
    void glmq_q4_dot_q8r_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);                    \
    void glmq_q8_dot_q8b_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);                    \
    void glmq_q8_dot_q8r_##isa(const glmq_dot_mat *w, int64_t r0, int64_t r1,                    \
                               const glmq_dot_act *a, float *y, int64_t ldy);

GLMQ_DOT_DECLARE_EXACT(ref) /* quant/dot_ref.c: portable C, the semantics */
GLMQ_DOT_DECLARE_FAST(ref)
GLMQ_DOT_DECLARE_GROUPED(ref)
#if defined(GLMQ_HAVE_X86)
GLMQ_DOT_DECLARE_EXACT(avx2) /* quant/dot_avx2.c: AVX2 + FMA + F16C */
GLMQ_DOT_DECLARE_FAST(avx2)  /* vpmaddubsw + vpmaddwd */
GLMQ_DOT_DECLARE_GROUPED(avx2)
GLMQ_DOT_DECLARE_EXACT(avx512)   /* quant/dot_avx512.c: AVX-512 F/BW/VL/DQ */
GLMQ_DOT_DECLARE_FAST(avx512vnni) /* vpdpbusd; without VNNI the AVX2 fast kernels are used */
GLMQ_DOT_DECLARE_GROUPED(avx512)     /* only its _f32 (EXACT) kernels exist */
GLMQ_DOT_DECLARE_GROUPED(avx512vnni) /* only its _q8b (FAST_B32) kernels exist */
#if defined(GLMQ_HAVE_AVXVNNI)
GLMQ_DOT_DECLARE_FAST(avxvnni)    /* quant/dot_avxvnni.c: 256-bit vpdpbusd (AVX-VNNI); the */
GLMQ_DOT_DECLARE_GROUPED(avxvnni) /* rest of its level is avx2's; only _q8b kernels exist */
#endif
#endif

#endif /* GLMQ_DOT_H */
