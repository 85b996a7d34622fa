/*
 * metrics.h - perplexity and logit drift of GLM models on the same windows (internal).
 *
 * Protocols:
 *   default (GLM-SPEC decision 5): the text is tokenized once without special tokens and cut into
 *     consecutive windows of ctx - len(prefix) ids (the last may be shorter); each window is fed
 *     as prefix + window to a fresh forward (no cache across windows) and every window token is
 *     scored, the first from the last prefix position. The prefix is [gMASK] sop for ChatGLM2/3
 *     and GLM-4, and [gMASK] <sop> for ChatGLM-6B (decision 4, layout A.9 (1)).
 *   strided (GLM-SPEC C.5, chatglm.cpp / HF perplexity guide): windows ids[begin, begin+ctx) for
 *     begin = 0, stride, 2*stride, ...; no prefix; the last min(end - prev_end, ctx-1) tokens of
 *     each window are scored. Not defined for ChatGLM-6B, whose forward needs [gMASK] and <sop>.
 * NLL comes from an fp64 log-softmax of the fp32 logits over the full vocabulary.
 *
 * Drift of a model Q against a reference R on the same windows: per scored position
 * KL(P_R || P_Q) (fp64), top-1 agreement, the change of the correct token's probability and of
 * the logits; per layer the relative error of the hidden state after each block.
 */
#ifndef GLMQ_VERIFY_METRICS_H
#define GLMQ_VERIFY_METRICS_H

#include "runtime/forward.h"
#include "runtime/tokenize.h"

/* Read whitespace-separated decimal ids from a text; each must be in [0, vocab). */
glmq_status glmq_parse_ids(const char *text, size_t len, int64_t vocab, const char *what,
                           glmq_ids *out, glmq_err *err);

typedef struct glmq_eval_opts {
    int64_t ctx;       /* tokens per forward incl. prefix (default 256) */
    int strided;       /* 1: the C.5 protocol */
    int64_t stride;    /* C.5 stride (default 512) */
    int64_t max_chunks; /* evaluate at most this many windows (<= 0: all) */
    int threads;
    glmq_forward_mode mode;     /* matmuls of the model under test (default REFERENCE) */
    glmq_forward_mode ref_mode; /* matmuls of the reference in drift (default REFERENCE) */
    /* progress: windows done / total, tokens scored so far */
    void (*progress)(void *user, int64_t done, int64_t total, int64_t tokens);
    void *progress_user;
    unsigned open_flags; /* glmq_model_open_flags of the models the CLI opens (GLMQ_OPEN_LOAD:
                          * --no-mmap); the evaluation itself takes models already open */
} glmq_eval_opts;

void glmq_eval_opts_default(glmq_eval_opts *o);

/* The protocol's defaults for fields left at 0: ctx <= 0 becomes 256 (strided: 2048), stride
 * <= 0 becomes 512. */
void glmq_eval_opts_resolve(glmq_eval_opts *o);

/* The kernels by name: "fast" or "exact" for the model under test, "reference" for it and the
 * reference of a drift evaluation. GLMQ_E_INVALID "'<name>' is not fast, exact or reference". */
glmq_status glmq_eval_set_kernels(glmq_eval_opts *o, const char *name, glmq_err *err);

/* The evaluation ids of `ppl` and `verify`: the UTF-8 file `text_file` tokenized with m's
 * tokenizer (no special tokens), or else the file `ids_file` of whitespace-separated ids
 * (glmq_parse_ids). *ids is malloc'd (free() it). An unreadable file is GLMQ_E_IO naming it,
 * a file without tokens GLMQ_E_INVALID. */
glmq_status glmq_eval_load_ids(const glmq_model *m, const char *text_file, const char *ids_file,
                               int32_t **ids, int64_t *n, glmq_err *err);

/* One window of the protocol: ids to feed and which logit rows to score. */
typedef struct {
    int64_t begin, len;     /* slice of the text ids (without prefix) */
    int64_t score_from;     /* first text id (index into the slice) that is scored */
} glmq_window;

/* Cut n text ids into windows. *out is malloc'd. */
glmq_status glmq_windows(const glmq_config *c, int64_t n_ids, const glmq_eval_opts *o,
                         glmq_window **out, int64_t *n_windows, glmq_err *err);

/* Prefix ids of the default protocol for this model (2 ids), or an error if unknown. */
glmq_status glmq_eval_prefix(const glmq_config *c, int32_t prefix[2], glmq_err *err);

/* glmq_ppl_result and glmq_drift (the results) are public types: see src/glmq.h. */

/* Perplexity of `m` on text ids (no specials). */
glmq_status glmq_perplexity(const glmq_model *m, const int32_t *ids, int64_t n,
                            const glmq_eval_opts *o, glmq_ppl_result *res, glmq_err *err);

/*
 * Exact per-window sums: the unit in which drift is accumulated, so that a sharded evaluation
 * (verify/shard.h) gives the same bits as one process. The scored positions of one window are
 * summed on their own, in position order, starting from 0; a drift total is those window sums
 * added in window order (glmq_drift_acc_add). Integer counts and the maximum are exact in any
 * order; the KL values are kept one per position, in position order.
 */
typedef struct {
    int64_t n_pos;                 /* scored positions of the window */
    int64_t agree;                 /* of them, where the argmaxes of R and Q agree */
    double nll_ref, nll_q;         /* summed NLL of the correct ids under R and Q */
    double kl, dp, dp_sq;          /* sums of KL(P_R || P_Q), delta-p and delta-p squared */
    double dl_sq, dl_max;          /* sum of squares and max of |logit_Q - logit_R| */
    double *layer_num, *layer_den; /* [n_layers]: sums of ||h_Q - h_R||^2 and ||h_R||^2 */
    double *kld;                   /* [n_pos] KL per position, position order */
} glmq_window_sums;

/* A drift total under construction: window sums added in window order. */
typedef struct {
    int64_t n_layers, vocab, n_windows, n_pos, agree, n_logits;
    double nll_ref, nll_q, kl, dp, dp_sq, dl_sq, dl_max;
    double *num, *den; /* [n_layers] */
    double *kld;       /* [n_pos] (capacity kld_cap) */
    int64_t kld_cap;
} glmq_drift_acc;

glmq_status glmq_drift_acc_init(glmq_drift_acc *a, int64_t n_layers, int64_t vocab,
                                glmq_err *err);
/* Add the next window (windows must come in window order for bit-exact totals). */
glmq_status glmq_drift_acc_add(glmq_drift_acc *a, const glmq_window_sums *w, glmq_err *err);
/* The finished metrics into *d (zeroed first); a's KL array moves into d->kld. a is freed
 * whether this succeeds or not. */
glmq_status glmq_drift_acc_finish(glmq_drift_acc *a, glmq_drift *d, glmq_err *err);
void glmq_drift_acc_free(glmq_drift_acc *a);

/* Called once per evaluated window k (in increasing order) with the sums of each of the
 * `nmodes` modes (sums[i] for modes[i]); the arrays are reused after the call returns. A
 * status other than GLMQ_OK stops the evaluation and is returned. */
typedef glmq_status (*glmq_window_fn)(void *user, int64_t k, const glmq_window_sums *sums,
                                      int nmodes, glmq_err *err);

/* Evaluate R and Q side by side on windows k = shard, shard + n_shards, ... of the protocol
 * (0 <= shard < n_shards) and hand each window's sums to fn. *n_windows (may be NULL) receives
 * the number of windows of the whole protocol. */
glmq_status glmq_drift_eval_windows(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                                    int64_t n, const glmq_eval_opts *o,
                                    const glmq_forward_mode *modes, int nmodes, int64_t shard,
                                    int64_t n_shards, glmq_window_fn fn, void *user,
                                    int64_t *n_windows, glmq_err *err);

/* Run R and Q side by side on the same windows (Q in o->mode, R in o->ref_mode). */
glmq_status glmq_drift_eval(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                            int64_t n, const glmq_eval_opts *o, glmq_drift *out, glmq_err *err);

/* The same, with Q evaluated in each of `nmodes` modes against one evaluation of R per window;
 * out[i] is the drift of Q in modes[i]. */
glmq_status glmq_drift_eval_modes(const glmq_model *ref, const glmq_model *q, const int32_t *ids,
                                  int64_t n, const glmq_eval_opts *o,
                                  const glmq_forward_mode *modes, int nmodes, glmq_drift *out,
                                  glmq_err *err);

/* Per-tensor attribution: the mean KL after swapping each quantized tensor of Q back to R's
 * version, one at a time (small models only: one evaluation per tensor). */
typedef struct {
    char name[256];
    double kld_mean_without; /* mean KL with this tensor restored to the reference */
    double kld_reduction;    /* drift.kld_mean - kld_mean_without */
} glmq_tensor_effect;

glmq_status glmq_rank_tensors(const glmq_model *ref, glmq_model *q, const int32_t *ids, int64_t n,
                              const glmq_eval_opts *o, double base_kld, glmq_tensor_effect **out,
                              int64_t *n_out, glmq_err *err);

#endif
