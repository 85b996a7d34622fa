/*
 * eval_api.c - the public perplexity and drift entry points of src/glmq.h on verify/metrics.
 *
 * A glmq_eval_params becomes a glmq_eval_opts field by field (the kernel modes have the same
 * values, see src/runtime/session.c); zero or negative sizes take the protocol's defaults
 * (glmq_eval_opts_resolve). Arguments are checked here, so a client's NULL or negative count is
 * an error, never a crash; the metrics then run exactly as `glmq ppl` and `glmq verify` do.
 */
#include "verify/metrics.h"

#include <stdlib.h>

void glmq_eval_params_default(glmq_eval_params *p)
{
    memset(p, 0, sizeof *p);
    p->kernels = GLMQ_KERNELS_FAST;
    p->ref_kernels = GLMQ_KERNELS_EXACT;
}

static glmq_status to_opts(const glmq_eval_params *p, glmq_eval_opts *o, glmq_err *err)
{
    glmq_eval_params d;
    if (!p) {
        glmq_eval_params_default(&d);
        p = &d;
    }
    GLMQ_FAIL_IF(!glmq_kernel_mode_name(p->kernels) || !glmq_kernel_mode_name(p->ref_kernels),
                 err, GLMQ_E_INVALID, "evaluation: unknown kernel mode %d / %d", (int)p->kernels,
                 (int)p->ref_kernels);
    glmq_eval_opts_default(o);
    o->ctx = p->ctx;
    o->strided = p->strided != 0;
    o->stride = p->stride;
    o->max_chunks = p->max_chunks;
    o->threads = p->threads;
    o->mode = (glmq_forward_mode)p->kernels;
    o->ref_mode = (glmq_forward_mode)p->ref_kernels;
    o->progress = p->progress;
    o->progress_user = p->progress_user;
    glmq_eval_opts_resolve(o);
    return GLMQ_OK;
}

glmq_status glmq_eval_perplexity(const glmq_model *m, const int32_t *ids, int64_t n,
                                 const glmq_eval_params *p, glmq_ppl_result *res, glmq_err *err)
{
    GLMQ_FAIL_IF(!res, err, GLMQ_E_INVALID, "glmq_eval_perplexity: no result pointer given");
    memset(res, 0, sizeof *res);
    GLMQ_FAIL_IF(!m || !ids, err, GLMQ_E_INVALID, "glmq_eval_perplexity: no model or ids given");
    GLMQ_FAIL_IF(n < 1, err, GLMQ_E_INVALID, "no tokens to evaluate (%lld ids)", (long long)n);
    glmq_eval_opts o;
    GLMQ_TRY(to_opts(p, &o, err));
    return glmq_perplexity(m, ids, n, &o, res, err);
}

glmq_status glmq_eval_drift(const glmq_model *quant, const glmq_model *ref, const int32_t *ids,
                            int64_t n, const glmq_eval_params *p, glmq_drift *out, glmq_err *err)
{
    GLMQ_FAIL_IF(!out, err, GLMQ_E_INVALID, "glmq_eval_drift: no result pointer given");
    memset(out, 0, sizeof *out);
    GLMQ_FAIL_IF(!quant || !ref || !ids, err, GLMQ_E_INVALID,
                 "glmq_eval_drift: no model, reference or ids given");
    GLMQ_FAIL_IF(n < 1, err, GLMQ_E_INVALID, "no tokens to evaluate (%lld ids)", (long long)n);
    glmq_eval_opts o;
    GLMQ_TRY(to_opts(p, &o, err));
    return glmq_drift_eval(ref, quant, ids, n, &o, out, err);
}
