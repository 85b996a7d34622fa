/*
 * session.c - the public model and session API of src/glmq.h on the runtime: model facts,
 * kernel-mode names, and a session = one glmq_forward (KV cache, worker pool, buffers).
 *
 * The public glmq_kernel_mode has the values of the internal glmq_forward_mode (asserted
 * below), so a mode passes through unchanged once it has been checked to be one of the three.
 * Every entry point checks its pointers and ranges and returns GLMQ_E_INVALID rather than
 * touching a NULL or an out-of-range value: a client's mistake is an error, not a crash.
 */
#include "runtime/forward.h"

#include <stdlib.h>

_Static_assert((int)GLMQ_KERNELS_REFERENCE == (int)GLMQ_FWD_REFERENCE &&
                   (int)GLMQ_KERNELS_EXACT == (int)GLMQ_FWD_EXACT &&
                   (int)GLMQ_KERNELS_FAST == (int)GLMQ_FWD_FAST,
               "public kernel modes are the forward's");

/* Default KV capacity when the caller gives none (the config's maximum can be 32768 or more,
 * whose cache would take gigabytes). */
#define DEFAULT_MAX_TOKENS 2048

struct glmq_session {
    glmq_forward *fw;
};

glmq_status glmq_model_get_info(const glmq_model *m, glmq_model_info *out, glmq_err *err)
{
    GLMQ_FAIL_IF(!m || !out, err, GLMQ_E_INVALID, "glmq_model_get_info: no model or output");
    const glmq_config *c = glmq_model_config(m);
    memset(out, 0, sizeof *out);
    out->architecture = glmq_arch_name(c->arch);
    out->source = glmq_model_kind(m);
    out->weight_type = glmq_model_weight_type(m);
    out->vocab = c->vocab;
    out->ctx = c->seq_length;
    out->n_layers = c->n_layers;
    out->hidden = c->hidden;
    out->n_heads = c->n_heads;
    out->n_kv_groups = c->n_kv_groups;
    out->head_dim = c->head_dim;
    out->ffn = c->ffn;
    out->tok_gmask = (int32_t)c->tok_gmask;
    out->tok_sop = (int32_t)c->tok_sop;
    out->tok_eop = (int32_t)c->tok_eop;
    out->tok_eos = (int32_t)c->tok_eos;
    out->ident = glmq_model_ident(m);
    return GLMQ_OK;
}

const char *glmq_kernel_mode_name(glmq_kernel_mode k)
{
    switch (k) {
    case GLMQ_KERNELS_REFERENCE:
    case GLMQ_KERNELS_EXACT:
    case GLMQ_KERNELS_FAST: return glmq_forward_mode_name((glmq_forward_mode)k);
    }
    return NULL;
}

void glmq_session_opts_default(glmq_session_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kernels = GLMQ_KERNELS_FAST;
}

glmq_status glmq_session_create(const glmq_model *m, const glmq_session_opts *opts,
                                glmq_session **out, glmq_err *err)
{
    GLMQ_FAIL_IF(!out, err, GLMQ_E_INVALID, "glmq_session_create: no output pointer given");
    *out = NULL;
    GLMQ_FAIL_IF(!m, err, GLMQ_E_INVALID, "glmq_session_create: no model given");
    glmq_session_opts o;
    if (opts)
        o = *opts;
    else
        glmq_session_opts_default(&o);
    GLMQ_FAIL_IF(!glmq_kernel_mode_name(o.kernels), err, GLMQ_E_INVALID,
                 "session: unknown kernel mode %d", (int)o.kernels);
    if (o.max_tokens <= 0) {
        int64_t ctx = glmq_model_config(m)->seq_length;
        o.max_tokens = ctx > 0 && ctx < DEFAULT_MAX_TOKENS ? ctx : DEFAULT_MAX_TOKENS;
    }
    glmq_session *s = calloc(1, sizeof *s);
    GLMQ_FAIL_IF(!s, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = glmq_forward_create_mode(m, o.max_tokens, o.threads,
                                              (glmq_forward_mode)o.kernels, &s->fw, err);
    if (st != GLMQ_OK) {
        free(s);
        return st;
    }
    *out = s;
    return GLMQ_OK;
}

glmq_status glmq_session_eval(glmq_session *s, const int32_t *ids, int64_t n, float *logits,
                              glmq_err *err)
{
    GLMQ_FAIL_IF(!s, err, GLMQ_E_INVALID, "glmq_session_eval: no session given");
    return glmq_forward_eval(s->fw, ids, n, logits, err);
}

void glmq_session_reset(glmq_session *s)
{
    if (s) glmq_forward_reset(s->fw);
}

int64_t glmq_session_n_tokens(const glmq_session *s)
{
    return s ? glmq_forward_n_cached(s->fw) : 0;
}

int64_t glmq_session_max_tokens(const glmq_session *s)
{
    return s ? glmq_forward_max_tokens(s->fw) : 0;
}

void glmq_session_free(glmq_session *s)
{
    if (!s) return;
    glmq_forward_free(s->fw);
    free(s);
}
