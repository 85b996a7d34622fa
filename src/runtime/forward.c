/*
 * glm_ref.c - the FP32 reference forward pass (see glm_ref.h for the contract).
 *
 * Shape of the code (llama2.c style): weights stay where the model keeps them (mmap views of a
 * packed file or a checkpoint) and are widened row by row inside the matmul; the run state
 * (activations, KV cache, RoPE tables, per-thread scratch) is allocated once in
 * glmq_forward_create; eval runs the blocks layer by layer over all new tokens, so the v1
 * bidirectional context sees every context token at every layer.
 *
 * Invariants that make the output reproducible bit for bit:
 *   - glmq_dot8_f32 (quant/hacc.h) is the only dot product; its lane structure is fixed (8
 *     lanes, fixed reduction tree, tail last, no FMA contraction), and the matmul's SIMD
 *     levels of it (the kernel table's dot8_rows) give its bits, so neither the CPU kernel
 *     level nor the compiler's vectorizer changes a result.
 *   - matmul rows are split statically across threads and every output element is one dot
 *     over the same operands, so thread count and row tiling never matter.
 *   - every other operation is per token or per (query, head), in a fixed order, so the result
 *     for a token does not depend on which other tokens share its call (batch invariance:
 *     incremental decoding equals a full forward exactly).
 *   - widening F16/BF16 (SIMD kernels) and INT8/INT4 dequantization (code * scale, exact in
 *     fp32) are exact, so the kernel level cannot change a widened weight either.
 */
#include "runtime/forward.h"
#include "quant/dot.h"

#include "core/file.h"
#include "core/ggml_type.h"
#include "core/pool.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

// --- weights -------------------------------------------------------------------------------

/* One transformer block. 2-D weights are borrowed views; vectors are fp32 copies. */
typedef struct {
    const glmq_tensor_info *qkv;   /* [qkv_rows][h]: v1 per-head [Q K V]; v2 [Q | K | V] */
    const glmq_tensor_info *dense; /* [h][nq] */
    const glmq_tensor_info *h4h;   /* [ffn_rows][h]: v1 F rows; v2 2F rows (gate, up) */
    const glmq_tensor_info *fhh;   /* [h][F] */
    float *ln_in_w, *ln_in_b;      /* [h]; b: LayerNorm (v1) only, else NULL */
    float *ln_post_w, *ln_post_b;  /* [h]; b as above */
    float *qkv_b;                  /* [qkv_rows] or NULL */
    float *dense_b;                /* [h] or NULL */
    float *h4h_b;                  /* [ffn_rows] or NULL */
    float *fhh_b;                  /* [h] or NULL */
    float *attn_out_w, *mlp_out_w; /* [h] glm4 sandwich norms (RMSNorm of the attention and
                                      MLP outputs before their residual add) or NULL */
} layer_w;

// --- run state -----------------------------------------------------------------------------

struct glmq_forward {
    const glmq_model *model; /* borrowed */
    glmq_config cfg;
    const glmq_kernels *kern; /* widening kernels (exact at every level) */
    glmq_pool *pool;
    glmq_forward_mode mode;        /* REFERENCE: the plain-C matmul below; EXACT / FAST: the
                                      quant/dot.h kernels for INT4/INT8/F16/BF16 weights */
    const glmq_dot_kernels *dk;    /* dot kernels of the active CPU level */
    void *dscratch;                /* prepared activations of one matmul slice */
    size_t dscratch_size;
    int nth;

    /* dimensions */
    int v1;           /* ChatGLM-6B layout and semantics (also GLM-130B, with g130) */
    int g130;         /* GLM-130B: 1-D RoPE over the whole head, GeGLU, its own positions */
    int64_t h;        /* hidden size */
    int64_t L;        /* layers */
    int64_t nh;       /* query heads n */
    int64_t d;        /* head dim */
    int64_t g;        /* KV groups (v1: = n) */
    int64_t F;        /* FFN inner size */
    int64_t V;        /* vocabulary rows */
    int64_t nq;       /* n * d */
    int64_t qkv_rows; /* v1 3h; v2 n*d + 2*g*d */
    int64_t ffn_rows; /* v1 F; v2 2F */
    int64_t nf;       /* rotary frequencies per rotated block: d/4 */
    int64_t max_tokens;
    int64_t slice;    /* tokens per matmul slice: min(max_tokens, GLMQ_FORWARD_SLICE) */
    int64_t max_cols; /* widest weight row */
    int64_t tile;     /* weight rows widened at once per thread */
    float alpha;      /* v1 residual scale; 1 for v2 */
    float eps;        /* norm epsilon */
    float sqrt_d;     /* (float)sqrt(d): scores are q.k / sqrt_d, as upstream */

    /* weights */
    const glmq_tensor_info *embed; /* [V][h] */
    const glmq_tensor_info *out;   /* [V][h]: lm_head / output_layer / tied embedding */
    layer_w *layers;               /* [L] */
    float *final_w, *final_b;      /* [h] each (b: v1 only); NULL without post_layer_norm */
    float *vecs;                   /* one allocation holding every fp32 vector above */

    /* activations of the tokens of one call */
    float *x;    /* [max_tokens][h] residual stream */
    float *xn;   /* [max_tokens][h] norm output (input of the matmuls, v1 residual branch) */
    float *q;    /* [max_tokens][n][d] rotated queries; overwritten in place by the context */
    float *big;  /* [slice][max(qkv_rows, ffn_rows)] QKV / dense_h_to_4h outputs */
    float *mid;  /* [slice][max(F, h)] attention projection output / SwiGLU activation */
    float *mlp;  /* [slice][h] dense_4h_to_h output */

    /* KV cache, rotated keys and values of every cached token, group-major: a group's keys
     * (values) of consecutive tokens are d floats apart, so the attention kernels stream
     * them as one run (with the groups of a token side by side, GLM-4's 1 KiB stride put a
     * tile of keys onto half of the L1 sets) */
    float *kc; /* [L][g][max_tokens][d] */
    float *vc; /* [L][g][max_tokens][d] */
    size_t kv_bytes; /* of kc and of vc (glmq_huge_alloc) */

    /* RoPE */
    float *theta; /* [nf] frequencies (v1: fp16-rounded) */
    float *cos_t; /* [max_tokens + 1][nf] cos((float)p * theta_i) */
    float *sin_t; /* [max_tokens + 1][nf] */

    /* per-thread scratch */
    float *wbuf; /* [nth][tile][max_cols] widened weight rows */
    float *att;  /* [nth][att_stride] attention scores / probabilities (EXACT / FAST: the group
                    kernel's scratch, glmq_att_group_scratch(n/g, max_tokens, d) floats) */
    int64_t att_stride; /* floats of att per thread */
    size_t att_bytes;   /* of att (glmq_huge_alloc) */
    float *qtmp; /* [nth][n/g][d] the query heads of one item */
    int att_per_head; /* benchmarks only: the per-head kernel instead of the group kernel */

    /* sequence state */
    int32_t *pos;          /* [max_tokens] rotary position of each cached token */
    int32_t *blk;          /* [max_tokens] v1 block position (NULL for v2) */
    int64_t n_cached;      /* tokens in the KV cache */
    int64_t ctx_len;       /* v1 context_length of the sequence (-1: empty cache) */
    int64_t mask_pos;      /* v1 mask_position (-1: empty cache) */
    int use_gmask;         /* GLM-130B: positions keep counting after <sop> ([gMASK] prompt) */

    /* calibration: the inputs of every layer matrix (glmq_forward_set_tap) */
    glmq_forward_tap_fn tap;
    void *tap_arg;
};

// --- dot products --------------------------------------------------------------------------

/*
 * The dot product of the reference is glmq_dot8_f32 (quant/hacc.h): lane k (k = 0..7)
 * accumulates, in order, a[i]*b[i] for the i < n8 = n & ~7 with i % 8 == k; the lanes reduce as
 * ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)); then the tail terms i = n8..n-1 are added in order.
 * All fp32. The matmul runs it through the kernel table's dot8_rows, whose SIMD levels put the
 * lanes of one or two outputs in a vector and give the same bits as the plain-C _ref.
 */

// --- weight rows ---------------------------------------------------------------------------

/* Widen row r of t into dst (t->cols floats), exactly. */
static void widen_row(const glmq_kernels *k, const glmq_tensor_info *t, int64_t r, float *dst)
{
    const uint16_t *sc = t->scales ? t->scales + r * glmq_scales_per_row(t->type, t->cols) : NULL;
    glmq_widen_row(k, t->type, (const uint8_t *)t->data + r * t->row_stride, sc, t->cols, dst);
}

// --- parallel matmul -------------------------------------------------------------------------

/* y[t][r] = W[r]·x[t] (+ bias[r]) for t < n and every row r of W. */
typedef struct {
    const glmq_forward *f;
    const glmq_tensor_info *w; /* [rows][cols] */
    const float *bias;         /* [rows] or NULL */
    const float *x;            /* [n][ldx], cols used */
    int64_t ldx;
    float *y;                  /* [n][ldy], columns 0..rows-1 written */
    int64_t ldy;
    int64_t n;
} mm_job;

/* Thread ith of nth: rows [rows*ith/nth, rows*(ith+1)/nth), `tile` rows widened at a time and
 * each tile dotted with every token (the weight tile stays in cache across tokens). */
static void mm_worker(void *arg, int ith, int nth)
{
    const mm_job *j = arg;
    const glmq_forward *f = j->f;
    const int64_t rows = j->w->rows, cols = j->w->cols;
    const int64_t ra = rows * ith / nth, rb = rows * (ith + 1) / nth;
    float *wb = f->wbuf + (int64_t)ith * f->tile * f->max_cols;
    for (int64_t r0 = ra; r0 < rb; r0 += f->tile) {
        const int64_t nr = rb - r0 < f->tile ? rb - r0 : f->tile;
        for (int64_t k = 0; k < nr; k++) widen_row(f->kern, j->w, r0 + k, wb + k * cols);
        f->kern->dot8_rows(wb, cols, nr, j->x, j->ldx, j->n, cols, j->y + r0, j->ldy);
        if (j->bias)
            for (int64_t t = 0; t < j->n; t++) {
                float *yt = j->y + t * j->ldy + r0;
                for (int64_t k = 0; k < nr; k++) yt[k] = yt[k] + j->bias[r0 + k];
            }
    }
}

/*
 * Which path multiplies a weight matrix. REFERENCE mode: the plain-C loop above for every
 * matrix. EXACT / FAST mode: the quant/dot.h kernels for every INT4/INT8/F16/BF16 matrix, and
 * never the plain-C loop instead: a matrix the kernels cannot take is an error naming it (at
 * create, and again at eval for a view swapped in since). The one exception is by design: there
 * is no F32 kernel, so F32 matrices (an F32 checkpoint's weights, or an F32 embedding/output
 * layer kept as stored) go through the plain-C fp32 loop in every mode - the exact fp32
 * product EXACT promises, and what FAST promises for unquantized weights. forward.h documents
 * it and glmq_forward_plain_matrices() counts them. The ggml block types of a GGUF file
 * (GLMQ_TYPE_GGML + t) take the same plain path: each row decoded exactly to fp32
 * (quant/ggml_dequant.c), then the exact fp32 product.
 */
static int on_kernels(const glmq_forward *f, const glmq_tensor_info *w)
{
    return f->mode != GLMQ_FWD_REFERENCE && w->type != GLMQ_TYPE_F32 && w->type < GLMQ_TYPE_GGML;
}

/* The kernels' view of w (type, dims, data, scales, row stride), or GLMQ_E_UNSUPPORTED naming
 * the tensor and saying why the kernels reject it. */
static glmq_status kernel_mat(const glmq_forward *f, const glmq_tensor_info *w, glmq_dot_mat *mat,
                              glmq_err *err)
{
    glmq_err why = {0};
    const char *tn = glmq_type_name(w->type) ? glmq_type_name(w->type) : "unknown-type";
    if (glmq_dot_mat_init(mat, w->type, w->rows, w->cols, w->data, w->scales, &why) != GLMQ_OK)
        return glmq_fail(err, GLMQ_E_UNSUPPORTED,
                         "tensor '%s' (%s, %lld x %lld): the %s kernels cannot multiply it (%s); "
                         "only the reference forward can",
                         w->name, tn, (long long)w->rows, (long long)w->cols,
                         glmq_forward_mode_name(f->mode), why.msg);
    GLMQ_FAIL_IF(w->row_stride < (int64_t)mat->stride, err, GLMQ_E_UNSUPPORTED,
                 "tensor '%s' (%s, %lld x %lld): rows %lld bytes apart, shorter than the %zu "
                 "bytes of a packed row the %s kernels read; only the reference forward can "
                 "multiply it",
                 w->name, tn, (long long)w->rows, (long long)w->cols, (long long)w->row_stride,
                 mat->stride, glmq_forward_mode_name(f->mode));
    mat->stride = (size_t)w->row_stride;
    return GLMQ_OK;
}

/* y[t][r] = W[r]·x[t] (+ bias[r]) for t < n, on the path on_kernels() names. On the kernel path
 * INT4/INT8 weights use the mode's activation handling (FAST: int8 per block of 32) and 16-bit
 * weights the exact fp32 kernels. An error names the tensor; y is then unspecified. */
static glmq_status matmul(const glmq_forward *f, const glmq_tensor_info *w, const float *bias,
                          const float *x, int64_t ldx, float *y, int64_t ldy, int64_t n,
                          glmq_err *err)
{
    if (!on_kernels(f, w)) {
        mm_job j = {f, w, bias, x, ldx, y, ldy, n};
        glmq_pool_run(f->pool, mm_worker, &j);
        return GLMQ_OK;
    }
    int quant = glmq_type_scaled(w->type);
    glmq_dot_mode dm = quant && f->mode == GLMQ_FWD_FAST ? GLMQ_DOT_FAST : GLMQ_DOT_EXACT;
    glmq_dot_mat mat;
    GLMQ_TRY(kernel_mat(f, w, &mat, err));
    glmq_status st = glmq_dot_gemm_pool(f->pool, f->dk, dm, &mat, x, ldx, n, y, ldy, f->dscratch,
                                        f->dscratch_size, err);
    if (st != GLMQ_OK) return glmq_err_prefix(err, st, "tensor '%s': ", w->name);
    if (bias)
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = 0; r < w->rows; r++) y[t * ldy + r] += bias[r];
    return GLMQ_OK;
}

/* Every weight matrix the forward multiplies (the output layer last), for create's check. */
static int64_t matrix_count(const glmq_forward *f) { return 4 * f->L + 1; }
static const glmq_tensor_info *matrix_at(const glmq_forward *f, int64_t i)
{
    if (i == 4 * f->L) return f->out;
    const layer_w *w = &f->layers[i / 4];
    const glmq_tensor_info *const m[4] = {w->qkv, w->dense, w->h4h, w->fhh};
    return m[i % 4];
}

/* Kernel modes: every matrix not on the documented F32 path must suit the kernels. */
static glmq_status check_kernel_path(const glmq_forward *f, glmq_err *err)
{
    if (f->mode == GLMQ_FWD_REFERENCE) return GLMQ_OK;
    for (int64_t i = 0; i < matrix_count(f); i++) {
        const glmq_tensor_info *w = matrix_at(f, i);
        glmq_dot_mat mat;
        if (on_kernels(f, w)) GLMQ_TRY(kernel_mat(f, w, &mat, err));
    }
    return GLMQ_OK;
}

int64_t glmq_forward_plain_matrices(const glmq_forward *f)
{
    int64_t n = 0;
    for (int64_t i = 0; i < matrix_count(f); i++) n += !on_kernels(f, matrix_at(f, i));
    return n;
}

// --- norms and activations -------------------------------------------------------------------

/* RMSNorm (B.4 step 1): var = mean(x^2) (accumulated in double, then fp32), r = 1/sqrt(var +
 * eps), y = w * (x * r). */
static void rmsnorm(float *y, const float *x, const float *w, int64_t h, float eps)
{
    double ss = 0;
    for (int64_t i = 0; i < h; i++) ss += (double)x[i] * x[i];
    const float var = (float)(ss / (double)h);
    const float r = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < h; i++) y[i] = w[i] * (x[i] * r);
}

/* LayerNorm (A.5 step 1): biased variance, y = (x - mean) * rstd * w + b; moments in double. */
static void layernorm(float *y, const float *x, const float *w, const float *b, int64_t h,
                      float eps)
{
    double s = 0;
    for (int64_t i = 0; i < h; i++) s += x[i];
    const double mean = s / (double)h;
    double v = 0;
    for (int64_t i = 0; i < h; i++) {
        const double c = (double)x[i] - mean;
        v += c * c;
    }
    const float var = (float)(v / (double)h);
    const float rstd = 1.0f / sqrtf(var + eps);
    const float mf = (float)mean;
    for (int64_t i = 0; i < h; i++) y[i] = (x[i] - mf) * rstd * w[i] + b[i];
}

static void norm(const glmq_forward *f, float *y, const float *x, const float *w, const float *b)
{
    if (f->v1)
        layernorm(y, x, w, b, f->h, f->eps);
    else
        rmsnorm(y, x, w, f->h, f->eps);
}

/* tanh GELU exactly as upstream gelu_impl, evaluated left to right:
 * 0.5*x * (1 + tanh(0.7978845608028654*x * (1 + 0.044715*x*x))). */
static inline float gelu(float x)
{
    const float a = 0.5f * x;
    const float b = 0.7978845608028654f * x;
    const float c = 1.0f + 0.044715f * x * x;
    return a * (1.0f + tanhf(b * c));
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

/* GLM-130B's GEGLU activation: torch's default (erf) GELU, x * 0.5 * (1 + erf(x / sqrt 2)). */
static inline float gelu_erf(float x) { return x * 0.5f * (1.0f + erff(x * 0.70710678118654752f)); }

/* Elementwise FFN activation over n tokens, split across threads by token. */
typedef struct {
    const glmq_forward *f;
    float *big; /* [n][ffn_rows] dense_h_to_4h outputs */
    float *mid; /* [n][F] v2 output */
    int64_t n;
} act_job;

static void act_worker(void *arg, int ith, int nth)
{
    const act_job *j = arg;
    const glmq_forward *f = j->f;
    const int64_t ta = j->n * ith / nth, tb = j->n * (ith + 1) / nth;
    for (int64_t t = ta; t < tb; t++) {
        float *u = j->big + t * f->ffn_rows;
        if (f->g130) { /* GLM130B.md: value half * gelu(gated half) */
            float *o = j->mid + t * f->F;
            for (int64_t i = 0; i < f->F; i++) o[i] = u[i] * gelu_erf(u[f->F + i]);
        } else if (f->v1) {
            for (int64_t i = 0; i < f->F; i++) u[i] = gelu(u[i]);
        } else {
            float *o = j->mid + t * f->F;
            for (int64_t i = 0; i < f->F; i++) o[i] = silu(u[i]) * u[f->F + i];
        }
    }
}

// --- RoPE ------------------------------------------------------------------------------------

/* v1 rotate-half on one 2*nf-dim block: pairs (i, i+nf), angle table row c/s. */
static inline void rope_half(float *x, const float *c, const float *s, int64_t nf)
{
    for (int64_t i = 0; i < nf; i++) {
        const float a = x[i], b = x[i + nf];
        x[i] = a * c[i] + (-b) * s[i]; /* x*cos + rotate_half(x)*sin, rotate_half = (-x2, x1) */
        x[i + nf] = b * c[i] + a * s[i];
    }
}

/* v2 adjacent pairs (2i, 2i+1) on the first 2*nf dims (B.5). */
static inline void rope_pairs(float *x, const float *c, const float *s, int64_t nf)
{
    for (int64_t i = 0; i < nf; i++) {
        const float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c[i] - b * s[i];
        x[2 * i + 1] = b * c[i] + a * s[i];
    }
}

/* Rotate the queries and keys of one head vector of token at (pos, blk). */
static void rope(const glmq_forward *f, float *x, int32_t pos, int32_t blk)
{
    const float *c = f->cos_t + (int64_t)pos * f->nf, *s = f->sin_t + (int64_t)pos * f->nf;
    if (f->g130) { /* 1-D: rotate-half over the whole head (nf = d/2) */
        rope_half(x, c, s, f->nf);
    } else if (f->v1) {
        rope_half(x, c, s, f->nf);
        rope_half(x + 2 * f->nf, f->cos_t + (int64_t)blk * f->nf, f->sin_t + (int64_t)blk * f->nf,
                  f->nf);
    } else {
        rope_pairs(x, c, s, f->nf);
    }
}

// --- attention -------------------------------------------------------------------------------

/* Token p's key (or value) vector of KV group grp in layer l of the cache c (f->kc / f->vc). */
static float *kv_at(const glmq_forward *f, float *c, int64_t l, int64_t grp, int64_t p)
{
    return c + ((l * f->g + grp) * f->max_tokens + p) * f->d;
}

typedef struct {
    const glmq_forward *f;
    int64_t layer;
    int64_t first; /* cache index of the first new token */
    int64_t n;     /* new tokens */
} att_job;

/* EXACT / FAST: items (KV group, head chunk, new token), split statically over threads. One
 * item runs the heads [h0, h1) of its group for one token with the group kernel of the active
 * level (quant/attn.h), which reads the group's keys and values once for all of them. A group's
 * hqg heads form one chunk, unless groups x tokens is below the thread count (decode of GQA
 * models: 2 groups): then they are cut into up to hqg chunks so every thread has work. The
 * group kernel is bit-identical per head to the per-head kernel, so neither the chunking nor
 * the thread count changes a result. (f->att_per_head, for benchmarks only, calls the per-head
 * kernel on the same items instead: the same bits, each head reading K and V itself.) */
static void att_worker_group(const att_job *j, int ith, int nth)
{
    const glmq_forward *f = j->f;
    const int64_t d = f->d, hqg = f->nh / f->g, base = f->g * j->n;
    int64_t nch = 1;
    if (base < nth) nch = (nth + base - 1) / base;
    if (nch > hqg) nch = hqg;
    const int64_t items = base * nch;
    const int64_t ia = items * ith / nth, ib = items * (ith + 1) / nth;
    float *sc = f->att + (int64_t)ith * f->att_stride;
    float *qv = f->qtmp + (int64_t)ith * hqg * d;
    const float scale = 1.0f / f->sqrt_d;
    for (int64_t it = ia; it < ib; it++) {
        const int64_t gc = it / j->n, i = it % j->n, p = j->first + i;
        const int64_t grp = gc / nch, ch = gc % nch;
        const int64_t h0 = grp * hqg + ch * hqg / nch, h1 = grp * hqg + (ch + 1) * hqg / nch;
        /* keys 0..kend-1 are visible: causal, plus the v1 bidirectional context */
        const int64_t kend = (f->v1 && p < f->ctx_len) ? f->ctx_len : p + 1;
        float *out = f->q + i * f->nq + h0 * d;
        /* the context is written over the queries: copy them out first */
        memcpy(qv, out, (size_t)((h1 - h0) * d) * sizeof *qv);
        const float *kg = kv_at(f, f->kc, j->layer, grp, 0);
        const float *vg = kv_at(f, f->vc, j->layer, grp, 0);
        if (f->att_per_head) {
            for (int64_t h = 0; h < h1 - h0; h++)
                f->dk->att(qv + h * d, kg, vg, d, d, kend, scale, sc, out + h * d);
            continue;
        }
        f->dk->att_group(qv, d, h1 - h0, kg, vg, d, d, kend, scale, sc, out, d);
    }
}

/* REFERENCE: items (head hq, new token i) in head-major order, split statically over threads.
 * Each item reads its query, scores the visible keys, softmaxes and writes the context over the
 * query with the plain-C loop below (libm expf, double Z: the bit-reproducible reference).
 * EXACT and FAST go to att_worker_group. Either way an item depends only on its own query and
 * the cache, so the thread split and the batch never change a result. */
static void att_worker(void *arg, int ith, int nth)
{
    const att_job *j = arg;
    const glmq_forward *f = j->f;
    if (f->mode != GLMQ_FWD_REFERENCE) {
        att_worker_group(j, ith, nth);
        return;
    }
    const int64_t items = f->nh * j->n, d = f->d;
    const int64_t ia = items * ith / nth, ib = items * (ith + 1) / nth;
    float *sc = f->att + (int64_t)ith * f->att_stride;
    float *qv = f->qtmp + (int64_t)ith * d;
    for (int64_t it = ia; it < ib; it++) {
        const int64_t hq = it / j->n, i = it % j->n, p = j->first + i;
        const int64_t grp = hq / (f->nh / f->g);
        const float *kl = kv_at(f, f->kc, j->layer, grp, 0);
        const float *vl = kv_at(f, f->vc, j->layer, grp, 0);
        /* keys 0..kend-1 are visible: causal, plus the v1 bidirectional context */
        const int64_t kend = (f->v1 && p < f->ctx_len) ? f->ctx_len : p + 1;
        float *out = f->q + i * f->nq + hq * d;
        memcpy(qv, out, (size_t)d * sizeof *qv);
        float mx = -INFINITY;
        for (int64_t u = 0; u < kend; u++) {
            sc[u] = glmq_dot8_f32(qv, kl + u * d, d) / f->sqrt_d;
            if (sc[u] > mx) mx = sc[u];
        }
        double sum = 0;
        for (int64_t u = 0; u < kend; u++) {
            sc[u] = expf(sc[u] - mx);
            sum += sc[u];
        }
        for (int64_t u = 0; u < kend; u++) sc[u] = (float)((double)sc[u] / sum);
        for (int64_t e = 0; e < d; e++) out[e] = 0.0f;
        for (int64_t u = 0; u < kend; u++) {
            const float *v = vl + u * d;
            const float pu = sc[u];
            for (int64_t e = 0; e < d; e++) out[e] += pu * v[e];
        }
    }
}

// --- v1 positions ----------------------------------------------------------------------------

glmq_status glmq_v1_layout(const glmq_config *c, const int32_t *ids, int64_t n, int32_t *pos,
                           int32_t *blk, int64_t *context_length, int64_t *mask_position,
                           glmq_err *err)
{
    int64_t sop = -1, gm = -1, mk = -1;
    for (int64_t i = 0; i < n; i++) {
        if (sop < 0 && ids[i] == c->tok_sop) sop = i;
        if (gm < 0 && ids[i] == c->tok_gmask) gm = i;
        if (mk < 0 && ids[i] == c->tok_mask) mk = i;
    }
    GLMQ_FAIL_IF(sop < 0, err, GLMQ_E_INVALID,
                 "ChatGLM-6B input needs a <sop> token (id %lld) ending the context (GLM-SPEC "
                 "A.6); the ids have none (a prompt is '... [gMASK] <sop>')",
                 (long long)c->tok_sop);
    const int64_t mp = gm >= 0 ? gm : mk;
    GLMQ_FAIL_IF(mp < 0, err, GLMQ_E_INVALID,
                 "ChatGLM-6B input needs a mask token, [gMASK] (id %lld) or [MASK] (id %lld) "
                 "(GLM-SPEC A.6); the ids have neither",
                 (long long)c->tok_gmask, (long long)c->tok_mask);
    for (int64_t i = 0; i < n; i++) {
        if (pos) pos[i] = (int32_t)(i < sop ? i : mp);
        if (blk) blk[i] = (int32_t)(i < sop ? 0 : i - sop + 1);
    }
    if (context_length) *context_length = sop;
    if (mask_position) *mask_position = mp;
    return GLMQ_OK;
}

// --- create / free ---------------------------------------------------------------------------

/* Look up tensor `name` and check its shape and type (vectors: ndim 1, rows 1, cols = len). */
static glmq_status get_tensor(const glmq_model *m, const glmq_tensor_info **out, int ndim,
                              int64_t rows, int64_t cols, const char *name, glmq_err *err)
{
    const glmq_tensor_info *t = glmq_model_tensor(m, name);
    GLMQ_FAIL_IF(!t, err, GLMQ_E_SHAPE, "tensor '%s' is missing", name);
    int64_t want_rows = ndim == 1 ? 1 : rows;
    GLMQ_FAIL_IF(t->ndim != ndim || t->rows != want_rows || t->cols != cols, err, GLMQ_E_SHAPE,
                 "tensor '%s' has shape %lldx%lld (ndim %d), expected %lldx%lld (ndim %d)", name,
                 (long long)t->rows, (long long)t->cols, t->ndim, (long long)want_rows,
                 (long long)cols, ndim);
    GLMQ_FAIL_IF(t->type == GLMQ_TYPE_GGML || !glmq_type_name(t->type), err,
                 GLMQ_E_UNSUPPORTED, "tensor '%s' has an unknown type %d", name, (int)t->type);
    GLMQ_FAIL_IF(t->type > GLMQ_TYPE_GGML &&
                     !glmq_ggml_type_get((uint32_t)(t->type - GLMQ_TYPE_GGML))->decodable,
                 err, GLMQ_E_UNSUPPORTED, "tensor '%s' has ggml type %s, which glmq does not decode",
                 name, glmq_type_name(t->type));
    GLMQ_FAIL_IF(glmq_type_scaled(t->type) && !t->scales, err,
                 GLMQ_E_FORMAT, "tensor '%s' is quantized but has no scales", name);
    GLMQ_FAIL_IF(!t->data && rows * cols > 0, err, GLMQ_E_FORMAT, "tensor '%s' has no data", name);
    *out = t;
    return GLMQ_OK;
}

/* Widen a 1-D tensor (checked by get_tensor) into *dst, carving from the vector arena. */
static glmq_status get_vector(const glmq_model *m, float **arena, float **dst, int64_t len,
                              const char *name, glmq_err *err)
{
    const glmq_tensor_info *t;
    GLMQ_TRY(get_tensor(m, &t, 1, 1, len, name, err));
    GLMQ_TRY(glmq_tensor_row_f32(t, 0, *arena, err));
    for (int64_t i = 0; i < len; i++)
        GLMQ_FAIL_IF(!isfinite((*arena)[i]), err, GLMQ_E_VALUE,
                     "tensor '%s': element %lld is not finite", name, (long long)i);
    *dst = *arena;
    *arena += len;
    return GLMQ_OK;
}

/* The field a matrix slot of the tensor table fills (w: the tensor's layer, NULL for a global
 * tensor), or NULL when the slot is not a matrix of that scope. */
static const glmq_tensor_info **matrix_field(glmq_forward *f, layer_w *w, glmq_slot s)
{
    switch (s) {
    case GLMQ_SLOT_EMBED: return w ? NULL : &f->embed;
    case GLMQ_SLOT_OUTPUT: return w ? NULL : &f->out;
    case GLMQ_SLOT_QKV: return w ? &w->qkv : NULL;
    case GLMQ_SLOT_DENSE: return w ? &w->dense : NULL;
    case GLMQ_SLOT_H4H: return w ? &w->h4h : NULL;
    case GLMQ_SLOT_FHH: return w ? &w->fhh : NULL;
    default: return NULL;
    }
}

/* The same for the vector slots (fp32 copies). */
static float **vector_field(glmq_forward *f, layer_w *w, glmq_slot s)
{
    switch (s) {
    case GLMQ_SLOT_FINAL_NORM: return w ? NULL : &f->final_w;
    case GLMQ_SLOT_FINAL_NORM_B: return w ? NULL : &f->final_b;
    case GLMQ_SLOT_LN_IN: return w ? &w->ln_in_w : NULL;
    case GLMQ_SLOT_LN_IN_B: return w ? &w->ln_in_b : NULL;
    case GLMQ_SLOT_QKV_B: return w ? &w->qkv_b : NULL;
    case GLMQ_SLOT_DENSE_B: return w ? &w->dense_b : NULL;
    case GLMQ_SLOT_LN_POST: return w ? &w->ln_post_w : NULL;
    case GLMQ_SLOT_LN_POST_B: return w ? &w->ln_post_b : NULL;
    case GLMQ_SLOT_H4H_B: return w ? &w->h4h_b : NULL;
    case GLMQ_SLOT_FHH_B: return w ? &w->fhh_b : NULL;
    case GLMQ_SLOT_LN_ATTN_OUT: return w ? &w->attn_out_w : NULL;
    case GLMQ_SLOT_LN_MLP_OUT: return w ? &w->mlp_out_w : NULL;
    default: return NULL;
    }
}

/* Fill the weights by walking the architecture's tensor table (formats/glm_tensors.h) in its
 * canonical order: matrices become borrowed views, vectors fp32 copies in one arena. An
 * optional tensor that is absent is skipped (ChatGLM-6B's lm_head: the output layer is then
 * the embedding, as upstream ties them). */
static glmq_status load_weights(glmq_forward *f, glmq_err *err)
{
    const glmq_model *m = f->model;
    glmq_expected_tensor *want = NULL;
    int64_t nw = 0;
    GLMQ_TRY(glmq_config_tensors(&f->cfg, &want, &nw, err));
    glmq_status st = GLMQ_OK;
    int64_t nvec = 0; /* fp32 elements of every vector of the table */
    for (int64_t i = 0; i < nw; i++)
        if (!glmq_slot_is_matrix(want[i].slot)) nvec += want[i].shape[0];
    f->vecs = malloc((size_t)(nvec > 0 ? nvec : 1) * sizeof *f->vecs);
    f->layers = calloc((size_t)f->L, sizeof *f->layers);
    GLMQ_FAIL_IF_G(!f->vecs || !f->layers, err, GLMQ_E_NOMEM, "out of memory for the weights");
    float *a = f->vecs;
    for (int64_t i = 0; i < nw; i++) {
        const glmq_expected_tensor *e = &want[i];
        layer_w *w = e->layer >= 0 && e->layer < f->L ? &f->layers[e->layer] : NULL;
        if (e->optional && !glmq_model_tensor(m, e->name)) continue;
        if (glmq_slot_is_matrix(e->slot)) {
            const glmq_tensor_info **dst = matrix_field(f, w, e->slot);
            GLMQ_FAIL_IF_G(!dst, err, GLMQ_E_INTERNAL, "tensor '%s': no weight field for it",
                           e->name);
            GLMQ_TRY_G(get_tensor(m, dst, e->ndim, e->shape[0], e->shape[1], e->name, err));
        } else {
            float **dst = vector_field(f, w, e->slot);
            GLMQ_FAIL_IF_G(!dst, err, GLMQ_E_INTERNAL, "tensor '%s': no weight field for it",
                           e->name);
            GLMQ_TRY_G(get_vector(m, &a, dst, e->shape[0], e->name, err));
        }
    }
    if (!f->out) f->out = f->embed; /* tied output layer */
fail:
    free(want);
    return st;
}

/* theta_i and the cos/sin tables for positions 0..max_tokens (GLM-SPEC decision 1, A.5, B.5). */
static void build_rope(glmq_forward *f)
{
    const int64_t nf = f->nf, dim = 2 * nf; /* the upstream RotaryEmbedding `dim` (d/2) */
    for (int64_t i = 0; i < nf; i++) {
        const double e = (double)(2 * i) / (double)dim;
        if (f->v1 && !f->g130) {
            /* v1: inv_freq = 1/10000^(2i/dim) in fp32, cast to half once by the constructor */
            const float t = (float)(1.0 / pow(10000.0, e));
            f->theta[i] = glmq_f16_to_f32(glmq_f32_to_f16(t));
        } else {
            f->theta[i] = (float)(1.0 / pow(10000.0 * f->cfg.rope_ratio, e));
        }
    }
    for (int64_t p = 0; p <= f->max_tokens; p++) {
        for (int64_t i = 0; i < nf; i++) {
            const float ang = (float)p * f->theta[i]; /* fp32 product, as torch */
            f->cos_t[p * nf + i] = cosf(ang);
            f->sin_t[p * nf + i] = sinf(ang);
        }
    }
}

/* Bytes of a*b*c elements of `size` bytes (at least one element), or 0 when negative or
 * overflowing. */
static size_t bytes3(int64_t a, int64_t b, int64_t c, size_t size)
{
    uint64_t n, bytes;
    if (a < 0 || b < 0 || c < 0) return 0;
    if (!glmq_mul_u64((uint64_t)a, (uint64_t)b, &n) || !glmq_mul_u64(n, (uint64_t)c, &n) ||
        !glmq_mul_u64(n, size, &bytes) || bytes > SIZE_MAX)
        return 0;
    return n ? (size_t)bytes : size;
}

/* calloc of a*b*c elements of `size` bytes with overflow checking. */
static void *alloc3(int64_t a, int64_t b, int64_t c, size_t size)
{
    const size_t bytes = bytes3(a, b, c, size);
    return bytes ? calloc(1, bytes) : NULL;
}

/* alloc3 for the buffers that attention streams at long context (the KV cache, the scores):
 * glmq_huge_alloc, so that they sit in huge pages where the kernel gives them. In 4 KiB pages
 * every 4 KiB of keys cost a TLB miss, and at 8k-32k tokens the group kernel ran 1.25-1.36x
 * slower from memory (bench/bench_attn.c with ATT_SMALL_PAGES=1 against without). *bytes: the
 * size to release with (0: nothing allocated). */
static void *alloc3_huge(int64_t a, int64_t b, int64_t c, size_t size, size_t *bytes)
{
    *bytes = bytes3(a, b, c, size);
    return *bytes ? glmq_huge_alloc(*bytes) : NULL;
}

glmq_status glmq_forward_create(const glmq_model *m, int64_t max_tokens, int threads,
                                glmq_forward **out, glmq_err *err)
{
    return glmq_forward_create_mode(m, max_tokens, threads, GLMQ_FWD_REFERENCE, out, err);
}

const char *glmq_forward_mode_name(glmq_forward_mode mode)
{
    return mode == GLMQ_FWD_FAST ? "fast" : mode == GLMQ_FWD_EXACT ? "exact" : "reference";
}

glmq_status glmq_forward_create_mode(const glmq_model *m, int64_t max_tokens, int threads,
                                     glmq_forward_mode mode, glmq_forward **out, glmq_err *err)
{
    *out = NULL;
    GLMQ_FAIL_IF(!m, err, GLMQ_E_INVALID, "no model");
    GLMQ_FAIL_IF(max_tokens < 1 || max_tokens > INT32_MAX / 2, err, GLMQ_E_INVALID,
                 "max_tokens %lld is outside [1, %d]", (long long)max_tokens, INT32_MAX / 2);
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF(mode != GLMQ_FWD_REFERENCE && mode != GLMQ_FWD_EXACT && mode != GLMQ_FWD_FAST,
                 err, GLMQ_E_INVALID, "unknown forward mode %d", (int)mode);
    glmq_forward *f = calloc(1, sizeof *f);
    GLMQ_FAIL_IF(!f, err, GLMQ_E_NOMEM, "out of memory");
    const glmq_config *c = glmq_model_config(m);
    f->model = m;
    f->cfg = *c;
    f->kern = glmq_kernels_get();
    f->mode = mode;
    f->dk = f->kern->dot; /* the same level as kern, from the one table */
    f->v1 = c->arch == GLMQ_ARCH_CHATGLM1 || c->arch == GLMQ_ARCH_GLM130B;
    f->g130 = c->arch == GLMQ_ARCH_GLM130B;
    f->h = c->hidden;
    f->L = c->n_layers;
    f->nh = c->n_heads;
    f->d = c->head_dim;
    f->g = c->n_kv_groups;
    f->F = c->ffn;
    f->V = c->vocab;
    f->max_tokens = max_tokens;
    GLMQ_FAIL_IF_G(c->arch != GLMQ_ARCH_CHATGLM1 && c->arch != GLMQ_ARCH_CHATGLM2 &&
                       c->arch != GLMQ_ARCH_GLM130B,
                   err,
                   GLMQ_E_UNSUPPORTED, "unknown architecture %d", (int)c->arch);
    GLMQ_FAIL_IF_G(f->h < 1 || f->L < 1 || f->nh < 1 || f->d < 4 || f->g < 1 || f->F < 1 ||
                       f->V < 1 || f->nh % f->g != 0 || f->d % 4 != 0,
                   err, GLMQ_E_INVALID,
                   "inconsistent config: hidden %lld, layers %lld, heads %lld, head dim %lld "
                   "(must be a multiple of 4), kv groups %lld (must divide heads), ffn %lld, "
                   "vocab %lld",
                   (long long)f->h, (long long)f->L, (long long)f->nh, (long long)f->d,
                   (long long)f->g, (long long)f->F, (long long)f->V);
    GLMQ_FAIL_IF_G(!(c->norm_eps >= 0) || !isfinite(c->alpha) || !(c->rope_ratio > 0), err,
                   GLMQ_E_INVALID, "inconsistent config: eps %g, alpha %g, rope_ratio %g",
                   c->norm_eps, c->alpha, c->rope_ratio);
    f->nq = f->nh * f->d;
    f->nf = f->g130 ? f->d / 2 : f->d / 4;
    if (f->v1) {
        GLMQ_FAIL_IF_G(f->nq != f->h || f->g != f->nh, err, GLMQ_E_INVALID,
                       "ChatGLM-6B config: heads x head dim (%lld x %lld) must equal hidden "
                       "%lld, with one KV head per query head",
                       (long long)f->nh, (long long)f->d, (long long)f->h);
        GLMQ_FAIL_IF_G(c->tok_sop < 0 || (c->tok_gmask < 0 && c->tok_mask < 0), err,
                       GLMQ_E_INVALID, "ChatGLM-6B config has no <sop> / mask token ids");
        f->qkv_rows = 3 * f->h;
        f->ffn_rows = f->g130 ? 2 * f->F : f->F;
        f->alpha = (float)c->alpha;
    } else {
        f->qkv_rows = f->nq + 2 * f->g * f->d;
        f->ffn_rows = 2 * f->F;
        f->alpha = 1.0f;
    }
    f->eps = (float)c->norm_eps;
    f->sqrt_d = (float)sqrt((double)f->d);
    f->slice = max_tokens < GLMQ_FORWARD_SLICE ? max_tokens : GLMQ_FORWARD_SLICE;
    f->max_cols = f->h;
    if (f->F > f->max_cols) f->max_cols = f->F;
    if (f->nq > f->max_cols) f->max_cols = f->nq;
    f->tile = 32768 / f->max_cols; /* ~128 KiB of widened rows per thread */
    if (f->tile < 4) f->tile = 4;
    if (f->tile > 64) f->tile = 64;

    GLMQ_TRY_G(glmq_pool_create(threads, &f->pool, err));
    f->nth = glmq_pool_size(f->pool);
    GLMQ_TRY_G(load_weights(f, err));
    GLMQ_TRY_G(check_kernel_path(f, err));

    const int64_t bigw = f->qkv_rows > f->ffn_rows ? f->qkv_rows : f->ffn_rows;
    const int64_t midw = f->F > f->h ? f->F : f->h;
    f->x = alloc3(max_tokens, f->h, 1, sizeof(float));
    f->xn = alloc3(max_tokens, f->h, 1, sizeof(float));
    f->q = alloc3(max_tokens, f->nq, 1, sizeof(float));
    f->big = alloc3(f->slice, bigw, 1, sizeof(float));
    f->mid = alloc3(f->slice, midw, 1, sizeof(float));
    f->mlp = alloc3(f->slice, f->h, 1, sizeof(float));
    f->kc = alloc3_huge(f->L * max_tokens, f->g, f->d, sizeof(float), &f->kv_bytes);
    f->vc = f->kv_bytes ? glmq_huge_alloc(f->kv_bytes) : NULL;
    f->theta = alloc3(f->nf, 1, 1, sizeof(float));
    f->cos_t = alloc3(max_tokens + 1, f->nf, 1, sizeof(float));
    f->sin_t = alloc3(max_tokens + 1, f->nf, 1, sizeof(float));
    f->wbuf = alloc3(f->nth, f->tile, f->max_cols, sizeof(float));
    if (mode != GLMQ_FWD_REFERENCE) {
        /* wider matrices were refused by check_kernel_path unless F32 (plain path) */
        const int64_t kc = f->max_cols < GLMQ_DOT_MAX_COLS ? f->max_cols : GLMQ_DOT_MAX_COLS;
        size_t se = glmq_dot_scratch_size(GLMQ_DOT_EXACT, kc, f->slice);
        size_t sf = glmq_dot_scratch_size(GLMQ_DOT_FAST, kc, f->slice);
        f->dscratch_size = se > sf ? se : sf;
        f->dscratch = malloc(f->dscratch_size);
        GLMQ_FAIL_IF_G(!f->dscratch || !f->dscratch_size, err, GLMQ_E_NOMEM,
                       "out of memory for kernel scratch");
    }
    f->att_stride = mode == GLMQ_FWD_REFERENCE
                        ? max_tokens
                        : glmq_att_group_scratch(f->nh / f->g, max_tokens, f->d);
    f->att = alloc3_huge(f->nth, f->att_stride, 1, sizeof(float), &f->att_bytes);
    f->qtmp = alloc3(f->nth, f->nh / f->g, f->d, sizeof(float));
    f->pos = alloc3(max_tokens, 1, 1, sizeof(int32_t));
    if (f->v1) f->blk = alloc3(max_tokens, 1, 1, sizeof(int32_t));
    GLMQ_FAIL_IF_G(!f->x || !f->xn || !f->q || !f->big || !f->mid || !f->mlp || !f->kc ||
                       !f->vc || !f->theta || !f->cos_t || !f->sin_t || !f->wbuf || !f->att ||
                       !f->qtmp || !f->pos || (f->v1 && !f->blk),
                   err, GLMQ_E_NOMEM,
                   "out of memory for the forward state (%lld tokens; the KV cache alone is "
                   "%.1f MiB)",
                   (long long)max_tokens,
                   2.0 * (double)f->L * (double)max_tokens * (double)(f->g * f->d) * 4.0 /
                       1048576.0);
    build_rope(f);
    glmq_forward_reset(f);
    *out = f;
    return GLMQ_OK;
fail:
    glmq_forward_free(f);
    return st;
}

void glmq_forward_free(glmq_forward *f)
{
    if (!f) return;
    glmq_pool_free(f->pool);
    free(f->dscratch);
    free(f->layers);
    free(f->vecs);
    free(f->x);
    free(f->xn);
    free(f->q);
    free(f->big);
    free(f->mid);
    free(f->mlp);
    glmq_huge_free(f->kc, f->kv_bytes);
    glmq_huge_free(f->vc, f->kv_bytes);
    free(f->theta);
    free(f->cos_t);
    free(f->sin_t);
    free(f->wbuf);
    glmq_huge_free(f->att, f->att_bytes);
    free(f->qtmp);
    free(f->pos);
    free(f->blk);
    free(f);
}

void glmq_forward_reset(glmq_forward *f)
{
    f->n_cached = 0;
    f->ctx_len = -1;
    f->mask_pos = -1;
}

glmq_status glmq_forward_fill_context(glmq_forward *f, int64_t n, uint64_t seed, glmq_err *err)
{
    GLMQ_FAIL_IF(f->v1, err, GLMQ_E_UNSUPPORTED,
                 "fill_context: ChatGLM-6B / GLM-130B positions come from the ids");
    GLMQ_FAIL_IF(n < 1 || n >= f->max_tokens, err, GLMQ_E_INVALID,
                 "fill_context: %lld tokens outside [1, max_tokens %lld)", (long long)n,
                 (long long)f->max_tokens);
    glmq_forward_reset(f);
    const int64_t gd = f->g * f->d;
    uint64_t st = seed;
    for (int64_t l = 0; l < f->L; l++)
        for (int64_t p = 0; p < n; p++)
            for (int64_t e = 0; e < 2 * gd; e++) { /* token p's keys, then its values */
                const uint64_t z = glmq_splitmix64(&st);
                const float x = (float)(z >> 40) * 0x1p-23f - 1.0f;
                const int64_t ge = e % gd;
                kv_at(f, e < gd ? f->kc : f->vc, l, ge / f->d, p)[ge % f->d] = x;
            }
    for (int64_t p = 0; p < n; p++) f->pos[p] = (int32_t)p;
    f->n_cached = n;
    return GLMQ_OK;
}

void glmq_forward_set_att_per_head(glmq_forward *f, int on) { f->att_per_head = on != 0; }

int64_t glmq_forward_n_cached(const glmq_forward *f) { return f->n_cached; }
int64_t glmq_forward_max_tokens(const glmq_forward *f) { return f->max_tokens; }
int glmq_forward_threads(const glmq_forward *f) { return f->nth; }
const glmq_config *glmq_forward_config(const glmq_forward *f) { return &f->cfg; }

int64_t glmq_forward_positions(const glmq_forward *f, const int32_t **pos, const int32_t **blk,
                               int64_t *context_length, int64_t *mask_position)
{
    if (pos) *pos = f->pos;
    if (blk) *blk = f->blk;
    if (context_length) *context_length = f->ctx_len;
    if (mask_position) *mask_position = f->mask_pos;
    return f->n_cached;
}

// --- eval ------------------------------------------------------------------------------------

/* Token p's key (rotated at (pos, blk)) and value of KV group grp into the cache. */
static void store_kv(glmq_forward *f, int64_t layer, int64_t grp, int64_t p, const float *k,
                     const float *v, int32_t pos, int32_t blk)
{
    float *kc = kv_at(f, f->kc, layer, grp, p);
    memcpy(kc, k, (size_t)f->d * sizeof(float));
    rope(f, kc, pos, blk);
    memcpy(kv_at(f, f->vc, layer, grp, p), v, (size_t)f->d * sizeof(float));
}

/* Split the QKV outputs of tokens [t0, t0+nt) (rows of f->big), rotate q and k, and store q in
 * f->q and k, v in the layer's cache. */

static void scatter_qkv(glmq_forward *f, int64_t layer, int64_t t0, int64_t nt)
{
    const int64_t d = f->d, gd = f->g * f->d;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t i = t0 + t, p = f->n_cached + i;
        const float *u = f->big + t * f->qkv_rows;
        float *q = f->q + i * f->nq;
        const int32_t pp = f->pos[p], bb = f->v1 ? f->blk[p] : 0;
        for (int64_t hd = 0; hd < f->nh; hd++) {
            const float *uq, *uk, *uv;
            if (f->v1) { /* A.4: rows [Q_h K_h V_h] per head */
                uq = u + hd * 3 * d;
                uk = uq + d;
                uv = uq + 2 * d;
            } else { /* B.3: [all Q | all K | all V] */
                uq = u + hd * d;
                uk = uv = NULL;
            }
            memcpy(q + hd * d, uq, (size_t)d * sizeof *q);
            rope(f, q + hd * d, pp, bb);
            if (f->v1) store_kv(f, layer, hd, p, uk, uv, pp, bb); /* one KV group per head */
        }
        if (!f->v1)
            for (int64_t gi = 0; gi < f->g; gi++)
                store_kv(f, layer, gi, p, u + f->nq + gi * d, u + f->nq + gd + gi * d, pp, 0);
    }
}

/* GLM-130B (GLM130B.md "Positions and mask", its generate.py): the context ends at the first
 * <sop>; a [MASK] before it takes precedence over [gMASK]. With [MASK], <sop> and everything
 * after it sit at the mask's position; with [gMASK], positions are the indices. Keys before
 * <sop> are visible to every token; the rest is causal. Later calls continue the sequence. */
static glmq_status g130_positions(glmq_forward *f, const int32_t *ids, int64_t n, glmq_err *err)
{
    const glmq_config *c = &f->cfg;
    const int64_t base = f->n_cached;
    if (base == 0) {
        int64_t sop = -1, gm = -1, mk = -1;
        for (int64_t i = 0; i < n && sop < 0; i++) {
            if (ids[i] == c->tok_sop) sop = i;
            else if (gm < 0 && ids[i] == c->tok_gmask) gm = i;
            else if (mk < 0 && ids[i] == c->tok_mask) mk = i;
        }
        GLMQ_FAIL_IF(sop < 0, err, GLMQ_E_INVALID,
                     "GLM-130B input needs a sop token (id %lld) ending the context; the ids have "
                     "none (a prompt is '... [gMASK] sop')",
                     (long long)c->tok_sop);
        GLMQ_FAIL_IF(gm < 0 && mk < 0, err, GLMQ_E_INVALID,
                     "GLM-130B input needs [MASK] (id %lld) or [gMASK] (id %lld) before its sop",
                     (long long)c->tok_mask, (long long)c->tok_gmask);
        f->use_gmask = mk < 0;
        f->mask_pos = mk >= 0 ? mk : gm;
        f->ctx_len = sop;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t p = base + i;
        f->pos[p] = (int32_t)(f->use_gmask || p < f->ctx_len ? p : f->mask_pos);
        f->blk[p] = 0;
    }
    return GLMQ_OK;
}

/* Validate the ids and assign the positions of the new tokens (nothing else is touched on
 * error). */
static glmq_status prepare(glmq_forward *f, const int32_t *ids, int64_t n, glmq_err *err)
{
    for (int64_t i = 0; i < n; i++)
        GLMQ_FAIL_IF(ids[i] < 0 || ids[i] >= f->V, err, GLMQ_E_VALUE,
                     "token id %lld at index %lld is outside the vocabulary [0, %lld)",
                     (long long)ids[i], (long long)i, (long long)f->V);
    GLMQ_FAIL_IF(n > f->max_tokens - f->n_cached, err, GLMQ_E_INVALID,
                 "%lld new tokens do not fit: %lld of max_tokens %lld are cached", (long long)n,
                 (long long)f->n_cached, (long long)f->max_tokens);
    const int64_t base = f->n_cached;
    if (!f->v1) {
        for (int64_t i = 0; i < n; i++) f->pos[base + i] = (int32_t)(base + i);
        return GLMQ_OK;
    }
    if (f->g130) return g130_positions(f, ids, n, err);
    if (base == 0) {
        int64_t cl, mp;
        GLMQ_TRY(glmq_v1_layout(&f->cfg, ids, n, f->pos, f->blk, &cl, &mp, err));
        f->ctx_len = cl;
        f->mask_pos = mp;
        return GLMQ_OK;
    }
    /* A.6 incremental decoding: pos = mask_position, blk = previous blk + 1, causal */
    for (int64_t i = 0; i < n; i++) {
        f->pos[base + i] = (int32_t)f->mask_pos;
        f->blk[base + i] = f->blk[base + i - 1] + 1;
    }
    return GLMQ_OK;
}

glmq_status glmq_forward_eval(glmq_forward *f, const int32_t *ids, int64_t n, float *logits,
                              glmq_err *err)
{
    return glmq_forward_eval_ex(f, ids, n, logits, NULL, err);
}

void glmq_forward_set_tap(glmq_forward *f, glmq_forward_tap_fn fn, void *arg)
{
    f->tap = fn;
    f->tap_arg = arg;
}

/* The tap, when set, sees the input of a layer matrix. */
static void tap(const glmq_forward *f, int64_t l, glmq_slot s, const float *x, int64_t ldx,
                int64_t cols, int64_t nt)
{
    if (f->tap) f->tap(f->tap_arg, l, s, x, ldx, cols, nt);
}

/* Layers [l0, l1) over the n new tokens whose positions prepare() assigned, from the residual
 * stream in f->x; hidden as glmq_forward_eval_ex (indexed from layer 0). */
static glmq_status run_layers(glmq_forward *f, int64_t n, int64_t l0, int64_t l1, float *hidden,
                              glmq_err *err);

glmq_status glmq_forward_eval_layers(glmq_forward *f, const int32_t *ids, int64_t n, int64_t l0,
                                     int64_t l1, float *x, glmq_err *err)
{
    GLMQ_FAIL_IF(n < 1 || !ids || !x || l0 < 0 || l1 < l0 || l1 > f->L, err, GLMQ_E_INVALID,
                 "eval_layers: bad arguments (%lld tokens, layers [%lld, %lld) of %lld)",
                 (long long)n, (long long)l0, (long long)l1, (long long)f->L);
    glmq_forward_reset(f);
    GLMQ_TRY(prepare(f, ids, n, err));
    const int64_t h = f->h;
    if (l0 == 0)
        for (int64_t i = 0; i < n; i++) widen_row(f->kern, f->embed, ids[i], f->x + i * h);
    else
        memcpy(f->x, x, (size_t)(n * h) * sizeof *x);
    glmq_status st = run_layers(f, n, l0, l1, NULL, err);
    if (st == GLMQ_OK) memcpy(x, f->x, (size_t)(n * h) * sizeof *x);
    glmq_forward_reset(f);
    return st;
}

glmq_status glmq_forward_eval_ex(glmq_forward *f, const int32_t *ids, int64_t n, float *logits,
                                 float *hidden, glmq_err *err)
{
    GLMQ_FAIL_IF(n < 0 || (n > 0 && !ids), err, GLMQ_E_INVALID, "bad token count %lld",
                 (long long)n);
    if (n == 0) return GLMQ_OK;
    const int64_t ctx0 = f->ctx_len, mp0 = f->mask_pos;
    GLMQ_TRY(prepare(f, ids, n, err));
    glmq_status st = GLMQ_OK;
    const int64_t h = f->h, S = f->slice;

    /* 1. embeddings */
    for (int64_t i = 0; i < n; i++) widen_row(f->kern, f->embed, ids[i], f->x + i * h);

    GLMQ_TRY_G(run_layers(f, n, 0, f->L, hidden, err));

    /* 3-4: final norm and output layer */
    if (logits) {
        for (int64_t t0 = 0; t0 < n; t0 += S) {
            const int64_t nt = n - t0 < S ? n - t0 : S;
            const float *src = f->x + t0 * h;
            if (f->final_w) {
                for (int64_t t = 0; t < nt; t++)
                    norm(f, f->xn + (t0 + t) * h, src + t * h, f->final_w, f->final_b);
                src = f->xn + t0 * h;
            }
            GLMQ_TRY_G(matmul(f, f->out, NULL, src, h, logits + t0 * f->V, f->V, nt, err));
        }
    }
    f->n_cached += n;
    return GLMQ_OK;
fail: /* a matrix the kernels refuse: the cache and the sequence state stay as they were */
    f->ctx_len = ctx0;
    f->mask_pos = mp0;
    return st;
}

static glmq_status run_layers(glmq_forward *f, int64_t n, int64_t l0, int64_t l1, float *hidden,
                              glmq_err *err)
{
    const int64_t h = f->h, S = f->slice;
    for (int64_t l = l0; l < l1; l++) {
        const layer_w *w = &f->layers[l];
        /* 2.1-2.3: input norm, fused QKV, RoPE, into q and the cache */
        for (int64_t i = 0; i < n; i++)
            norm(f, f->xn + i * h, f->x + i * h, w->ln_in_w, w->ln_in_b);
        tap(f, l, GLMQ_SLOT_QKV, f->xn, h, h, n);
        for (int64_t t0 = 0; t0 < n; t0 += S) {
            const int64_t nt = n - t0 < S ? n - t0 : S;
            GLMQ_TRY(
                matmul(f, w->qkv, w->qkv_b, f->xn + t0 * h, h, f->big, f->qkv_rows, nt, err));
            scatter_qkv(f, l, t0, nt);
        }
        /* 2.4-2.6: attention over the cache (context written over q) */
        att_job aj = {f, l, f->n_cached, n};
        glmq_pool_run(f->pool, att_worker, &aj);
        tap(f, l, GLMQ_SLOT_DENSE, f->q, f->nq, f->nq, n);
        /* 2.7-2.9: output projection, residual, post norm, MLP, residual; token-local */
        for (int64_t t0 = 0; t0 < n; t0 += S) {
            const int64_t nt = n - t0 < S ? n - t0 : S;
            float *x = f->x + t0 * h, *xn = f->xn + t0 * h;
            GLMQ_TRY(matmul(f, w->dense, w->dense_b, f->q + t0 * f->nq, f->nq, f->mid, h, nt,
                            err));
            for (int64_t t = 0; t < nt; t++) {
                float *xt = x + t * h, *at = xn + t * h;
                float *o = f->mid + t * h;
                if (w->attn_out_w) /* glm4: x + RMSNorm(attention output) */
                    rmsnorm(o, o, w->attn_out_w, h, f->eps);
                if (f->v1) /* A.5 step 8: LN output * alpha + attention */
                    for (int64_t e = 0; e < h; e++) xt[e] = at[e] * f->alpha + o[e];
                else
                    for (int64_t e = 0; e < h; e++) xt[e] = xt[e] + o[e];
                norm(f, at, xt, w->ln_post_w, w->ln_post_b);
            }
            tap(f, l, GLMQ_SLOT_H4H, xn, h, h, nt);
            GLMQ_TRY(matmul(f, w->h4h, w->h4h_b, xn, h, f->big, f->ffn_rows, nt, err));
            act_job acj = {f, f->big, f->mid, nt};
            glmq_pool_run(f->pool, act_worker, &acj);
            if (f->v1 && !f->g130)
                tap(f, l, GLMQ_SLOT_FHH, f->big, f->ffn_rows, f->F, nt);
            else
                tap(f, l, GLMQ_SLOT_FHH, f->mid, f->F, f->F, nt);
            if (f->v1 && !f->g130)
                GLMQ_TRY(matmul(f, w->fhh, w->fhh_b, f->big, f->ffn_rows, f->mlp, h, nt, err));
            else
                GLMQ_TRY(matmul(f, w->fhh, w->fhh_b, f->mid, f->F, f->mlp, h, nt, err));
            for (int64_t t = 0; t < nt; t++) {
                float *xt = x + t * h;
                const float *at = xn + t * h;
                float *y = f->mlp + t * h;
                if (w->mlp_out_w) /* glm4: x + RMSNorm(MLP output) */
                    rmsnorm(y, y, w->mlp_out_w, h, f->eps);
                if (f->v1) /* A.5 step 11 */
                    for (int64_t e = 0; e < h; e++) xt[e] = at[e] * f->alpha + y[e];
                else
                    for (int64_t e = 0; e < h; e++) xt[e] = xt[e] + y[e];
            }
        }
        if (hidden) memcpy(hidden + l * n * h, f->x, (size_t)(n * h) * sizeof *hidden);
    }
    return GLMQ_OK;
}
