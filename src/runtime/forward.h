/*
 * glm_ref.h - the FP32 reference forward pass of the GLM family (internal).
 *
 * "Reference" means GLM-SPEC decision 1: the upstream modeling code run in float32. Weights are
 * widened exactly to fp32 (F16/BF16/F32 as stored; INT8/INT4 rows as code * fp16 scale), every
 * operation is fp32 with fp32 accumulation, softmax is fp32, nothing is rounded to 16 bits on
 * the way. The two architectures:
 *
 *   ChatGLM-6B (v1, GLM-SPEC A.4-A.6): LayerNorm with bias; fused QKV interleaved per head
 *     [Q_0 K_0 V_0 Q_1 ...]; 2-D RoPE (first half of every head rotated by the position, second
 *     half by the block position, rotate-half pairs (i, i + d/4), frequencies rounded to fp16 as
 *     the upstream constructor does); GLM visibility (bidirectional before <sop>, causal after);
 *     DeepNorm residual on the LayerNorm *output*, x = LN(x) * alpha + f(LN(x)), alpha from the
 *     config (sqrt(56), decision 2); tanh GELU; biases everywhere; lm_head (or the tied
 *     embedding when lm_head.weight is absent).
 *   ChatGLM2/3-6B, GLM-4-9B (v2, GLM-SPEC B.3-B.6, C.1): RMSNorm; fused QKV [all Q | all K | all
 *     V] with g KV groups, query head hq reading group hq / (n/g); RoPE on the first d/2 dims of
 *     every head in adjacent pairs, base 10000 * rope_ratio, fp32 tables, positions 0..s-1 of
 *     the ids as given (the forward adds no [gMASK] sop prefix); causal; SwiGLU (gate = first F
 *     rows of dense_h_to_4h, up = the next F); optional qkv bias; untied output layer.
 *   GLM-130B (formats/GLM130B.md): v1's layer, QKV layout and bidirectional context, with 1-D
 *     RoPE over the whole head (rotate-half pairs (i, i + d/2), fp32 frequencies), GeGLU (value =
 *     first F rows of dense_h_to_4h, erf GELU on the next F), alpha sqrt(2L), output tied to the
 *     embedding; positions are the indices, or with [MASK] the mask's index from <sop> on.
 *
 * Positions (v1). Positions, block positions and visibility are derived from the ids
 * (glmq_v1_layout): mask token = [gMASK] if present, else [MASK]; context_length = index of the
 * first <sop>. The first evaluation after create/reset must therefore contain <sop> and a mask
 * token (the bidirectional context cannot be split across calls); every later call appends
 * tokens with pos = mask_position, blk = previous blk + 1, causal (A.6 incremental decoding);
 * a [gMASK] or <sop> in a later call is an ordinary token there (as in HF generation).
 *
 * Determinism. Each output element is computed by the same sequence of fp32 operations
 * whatever the thread count, the CPU's kernel level (GLMQ_CPU) or the way tokens are split
 * across calls: matmul rows are partitioned statically over threads, the dot product is plain C
 * with a fixed 8-lane accumulation order, and attention visits keys in order. So logits are
 * bit-identical for any `threads`, and incremental decoding gives bit-identical logits to one
 * full forward over the same ids.
 *
 * Cost. Each weight row is widened once per call (per slice of GLMQ_FORWARD_SLICE tokens for
 * longer calls) and dotted with all tokens of the slice, so prefill amortizes the widening.
 *
 * Thread-safety: a glmq_forward is used by one caller thread at a time (it drives its own
 * worker pool); several forwards may share one glmq_model.
 */
#ifndef GLMQ_VERIFY_GLM_REF_H
#define GLMQ_VERIFY_GLM_REF_H

#include "runtime/model.h"

/* Tokens per internal slice of one call: bounds the scratch for the QKV/FFN/logit matmuls. */
#define GLMQ_FORWARD_SLICE 512

typedef struct glmq_forward glmq_forward;

/*
 * How the linear layers are computed (attention, norms and activations are fp32 in every mode):
 *   REFERENCE  each weight row widened to fp32 and dotted in plain C in a fixed order: the
 *              bit-reproducible reference of decision 1 (any thread count, any CPU);
 *   EXACT      the quant/dot.h kernels in fp32 on the exactly dequantized weights: the same
 *              product up to summation order, at SIMD speed;
 *   FAST       INT4/INT8 weights against activations quantized on the fly to int8 per block of
 *              32 (integer dot products, VNNI where present); 16-bit weights (embedding, output
 *              layer) stay exact. `glmq verify` reports its drift beside the exact path's.
 * EXACT and FAST never fall back to the REFERENCE matmul: an INT4/INT8/F16/BF16 matrix the
 * kernels cannot take (unsupported width, scales that do not match the type, rows closer than a
 * packed row) is an error naming the tensor, from create or, for a view swapped in later with
 * glmq_model_swap, from eval. By design, and only for them, F32 matrices have no kernel: in
 * every mode they are multiplied by the plain-C fp32 loop, which is the exact product (an F32
 * checkpoint, or an F32 embedding / output layer kept as stored by convert), and so are the
 * ggml block types of a GGUF file (Q4_0 ... Q6_K, decoded row by row to fp32). Norms and biases
 * are vectors, widened to fp32 once at create in every mode; they are not matmuls.
 */
typedef enum { GLMQ_FWD_REFERENCE = 0, GLMQ_FWD_EXACT = 1, GLMQ_FWD_FAST = 2 } glmq_forward_mode;

const char *glmq_forward_mode_name(glmq_forward_mode mode);

/*
 * Allocate the run state of a forward pass over `m` (borrowed: it must outlive the forward):
 * fp32 copies of the norm weights and biases, the RoPE tables, the KV cache
 * [n_layers][g][max_tokens][d] (K and V), activations for max_tokens tokens and per-thread
 * scratch. Nothing is allocated later. `threads` <= 0 means the online cores.
 * Checks that every tensor the architecture needs (formats/glm_tensors.h) is present with the
 * right shape and a supported type, that the config is consistent (h = n*d for v1, d % 4 == 0,
 * ...) and, in EXACT / FAST mode, that the kernels can multiply every non-F32 matrix.
 * @return GLMQ_OK and *out, or an error (GLMQ_E_SHAPE / GLMQ_E_INVALID / GLMQ_E_NOMEM, and
 *         GLMQ_E_UNSUPPORTED naming the tensor the kernels reject; GLMQ_E_INVALID for a mode
 *         outside glmq_forward_mode) with *out == NULL.
 */
glmq_status glmq_forward_create(const glmq_model *m, int64_t max_tokens, int threads,
                                glmq_forward **out, glmq_err *err);

/* glmq_forward_create with a matmul mode (glmq_forward_create is GLMQ_FWD_REFERENCE). */
glmq_status glmq_forward_create_mode(const glmq_model *m, int64_t max_tokens, int threads,
                                     glmq_forward_mode mode, glmq_forward **out, glmq_err *err);

/* Join the workers and free everything. NULL is a no-op. */
void glmq_forward_free(glmq_forward *f);

/* Empty the KV cache (and forget the v1 context layout). */
void glmq_forward_reset(glmq_forward *f);

/*
 * Append ids[0..n) after the cached tokens and run them through the model.
 *   logits: [n][vocab] fp32, row i = the logits at new position i; NULL skips the final norm
 *           and the output layer.
 * The ids are validated before anything changes: an id outside [0, vocab) is GLMQ_E_VALUE, too
 * many tokens for max_tokens is GLMQ_E_INVALID, and a v1 first call without <sop> or without a
 * mask token is GLMQ_E_INVALID; the cache is left as it was on error. n == 0 is a no-op.
 * In EXACT / FAST mode a matrix the kernels reject (a view swapped in after create) is
 * GLMQ_E_UNSUPPORTED naming the tensor; the cached token count is then unchanged.
 */
glmq_status glmq_forward_eval(glmq_forward *f, const int32_t *ids, int64_t n, float *logits,
                              glmq_err *err);

/*
 * glmq_forward_eval, also capturing the residual stream for drift attribution:
 *   hidden: NULL, or [n_layers][n][hidden] fp32 receiving, for every layer l and new position
 *           i, the hidden state after block l (before the final norm).
 */
glmq_status glmq_forward_eval_ex(glmq_forward *f, const int32_t *ids, int64_t n, float *logits,
                                 float *hidden, glmq_err *err);

/*
 * Calibration (convert/calib.c). A tap sees the input of every layer matrix product before it
 * runs: `nt` rows of `cols` fp32 values at stride `ldx`, for the matrix in `slot`
 * (GLMQ_SLOT_QKV, _DENSE, _H4H or _FHH) of layer `layer`; a layer's rows may come in several
 * calls (slices). NULL removes it. The tap runs on the caller's thread.
 */
typedef void (*glmq_forward_tap_fn)(void *arg, int64_t layer, glmq_slot slot, const float *x,
                                    int64_t ldx, int64_t cols, int64_t nt);
void glmq_forward_set_tap(glmq_forward *f, glmq_forward_tap_fn fn, void *arg);

/*
 * Run only layers [l0, l1) of one fresh sequence of n ids (positions as glmq_forward_eval gives
 * them on an empty cache): x is [n][hidden], the residual stream entering layer l0 (ignored when
 * l0 = 0: the embeddings are looked up), and receives the stream leaving layer l1 - 1. The
 * cache is empty before and after. @return as glmq_forward_eval.
 */
glmq_status glmq_forward_eval_layers(glmq_forward *f, const int32_t *ids, int64_t n, int64_t l0,
                                     int64_t l1, float *x, glmq_err *err);

/* The number of weight matrices (4 per layer and the output layer) multiplied by the plain-C
 * fp32 loop rather than the kernels, for the views the model holds now: all of them in
 * REFERENCE mode, the F32 ones in EXACT / FAST mode (see glmq_forward_mode), so 0 when every
 * matrix runs on the kernels. */
int64_t glmq_forward_plain_matrices(const glmq_forward *f);

/*
 * For benchmarks only (bench/bench_forward.c), not for inference.
 *
 * glmq_forward_fill_context: empty the cache, then make positions 0..n-1 cached tokens whose
 * keys and values (every layer and group) are deterministic pseudo-random values in [-1, 1)
 * from `seed`, as if a context of n tokens had been prefilled; the next eval decodes at
 * position n. The cost of decoding does not depend on the cached values, so this reaches a long
 * context without the hours a real prefill of it takes on a small machine; the logits that
 * follow are meaningless. v2 architectures only (v1 positions come from the ids).
 * @return GLMQ_OK, GLMQ_E_INVALID for n outside [1, max_tokens), GLMQ_E_UNSUPPORTED for v1.
 *
 * glmq_forward_set_att_per_head: in EXACT / FAST mode, 1 runs attention with the per-head
 * kernel (each query head reads its group's keys and values itself, as before the group
 * kernel), 0 (the default) with the group kernel. Both give bit-identical results; this exists
 * to measure the difference. No effect in REFERENCE mode.
 */
glmq_status glmq_forward_fill_context(glmq_forward *f, int64_t n, uint64_t seed, glmq_err *err);
void glmq_forward_set_att_per_head(glmq_forward *f, int on);

/* Number of cached tokens, capacity, thread count and the model config. */
int64_t glmq_forward_n_cached(const glmq_forward *f);
int64_t glmq_forward_max_tokens(const glmq_forward *f);
int glmq_forward_threads(const glmq_forward *f);
const glmq_config *glmq_forward_config(const glmq_forward *f);

/*
 * The rotary positions of the cached tokens (n_cached entries each, valid until the next eval
 * or reset): v2 pos = index, blk = NULL; v1 the 2-D pair. Returns n_cached. v1 also reports
 * the context length and mask position of the current sequence (-1 when the cache is empty).
 */
int64_t glmq_forward_positions(const glmq_forward *f, const int32_t **pos, const int32_t **blk,
                               int64_t *context_length, int64_t *mask_position);

/*
 * GLM-SPEC A.6 for one complete v1 sequence: mask token = [gMASK] (c->tok_gmask) if present,
 * else [MASK] (c->tok_mask), mask_position = its first index; context_length = index of the
 * first <sop> (c->tok_sop); pos[i] = i before context_length, mask_position from it on;
 * blk[i] = 0 before context_length, i - context_length + 1 from it on. pos/blk have n entries
 * (either may be NULL); context_length/mask_position may be NULL.
 * @return GLMQ_OK, or GLMQ_E_INVALID with a message when <sop> or both mask tokens are missing.
 */
glmq_status glmq_v1_layout(const glmq_config *c, const int32_t *ids, int64_t n, int32_t *pos,
                           int32_t *blk, int64_t *context_length, int64_t *mask_position,
                           glmq_err *err);

/* v1 visibility (A.6): query i may attend key j iff j <= i or j < context_length. */
static inline int glmq_v1_visible(int64_t context_length, int64_t i, int64_t j)
{
    return j <= i || j < context_length;
}

#endif /* GLMQ_VERIFY_GLM_REF_H */
