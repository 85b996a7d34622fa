/*
 * tokenize.c - a model's tokenizer: its flavour from the config (see tokenize.h), and the public
 * glmq_tokenize / glmq_detokenize on the tokenizer the model keeps.
 *
 * The public calls write into caller buffers with snprintf-like sizing: the size is always
 * reported, the buffer is written only when it is large enough, so a failed call leaves it as
 * it was.
 */
#include "runtime/tokenize.h"

#include <stdlib.h>

glmq_status glmq_model_tokenizer_open(const glmq_model *m, glmq_tokenizer **out, glmq_err *err)
{
    *out = NULL;
    const glmq_config *c = glmq_model_config(m);
    size_t n = 0;
    const void *bytes = glmq_model_tokenizer(m, &n);
    GLMQ_FAIL_IF((!bytes || !n) && !strcmp(glmq_model_kind(m), "gguf"), err, GLMQ_E_INVALID,
                 "this GGUF file carries no tokenizer glmq runs (glmq's own exports embed the "
                 "tokenizer file as glmq.tokenizer.file; files from llama.cpp's converter do "
                 "not): give token ids (--ids-file), or verify it against the original with "
                 "--ref, whose tokenizer is used");
    GLMQ_FAIL_IF(!bytes || !n, err, GLMQ_E_INVALID,
                 "the model has no tokenizer (no tokenizer.model in the checkpoint or pack)");
    glmq_tok_glm cfg;
    if (c->arch == GLMQ_ARCH_CHATGLM1) {
        glmq_tok_glm_init(&cfg, GLMQ_TOK_CHATGLM1);
        cfg.image_tokens = (int32_t)c->num_image_tokens;
        cfg.mask_id = (int32_t)c->tok_mask;
        cfg.gmask_id = (int32_t)c->tok_gmask;
        cfg.bos_id = (int32_t)c->tok_sop;
        cfg.eos_id = (int32_t)c->tok_eop;
        GLMQ_TRY(glmq_tokenizer_load_sp(bytes, n, &cfg, out, err));
    } else if (!strcmp(c->tokenizer_kind, "tiktoken")) {
        glmq_tok_glm_init(&cfg, GLMQ_TOK_GLM4);
        GLMQ_TRY(glmq_tokenizer_load_tiktoken(bytes, n, &cfg, out, err));
    } else {
        /* ChatGLM2 and ChatGLM3 share the file; the ChatGLM3 flavour only adds role tokens */
        glmq_tok_glm_init(&cfg, GLMQ_TOK_CHATGLM3);
        GLMQ_TRY(glmq_tokenizer_load_sp(bytes, n, &cfg, out, err));
    }
    /* the tokenizer's own [gMASK] must be the config's */
    int32_t gm = -1;
    glmq_status st = glmq_tokenizer_special(*out, "[gMASK]", &gm, err);
    if (st == GLMQ_OK && gm != c->tok_gmask)
        st = glmq_fail(err, GLMQ_E_FORMAT,
                       "tokenizer numbers [gMASK] as %d but the model config says %lld", gm,
                       (long long)c->tok_gmask);
    if (st != GLMQ_OK) {
        glmq_tokenizer_free(*out);
        *out = NULL;
    }
    return st;
}

glmq_status glmq_tokenize(const glmq_model *m, const char *text, size_t len, unsigned flags,
                          int32_t *ids, size_t cap, size_t *n, glmq_err *err)
{
    GLMQ_FAIL_IF(!n, err, GLMQ_E_INVALID, "glmq_tokenize: no count pointer given");
    *n = 0;
    GLMQ_FAIL_IF(!m || (!text && len), err, GLMQ_E_INVALID,
                 "glmq_tokenize: no model or no text given");
    GLMQ_FAIL_IF(!ids && cap, err, GLMQ_E_INVALID,
                 "glmq_tokenize: a capacity of %zu ids without a buffer", cap);
    GLMQ_FAIL_IF(flags & ~GLMQ_TOKENIZE_PROMPT, err, GLMQ_E_INVALID,
                 "glmq_tokenize: unknown flags 0x%x", flags & ~GLMQ_TOKENIZE_PROMPT);
    const glmq_tokenizer *t = NULL;
    GLMQ_TRY(glmq_model_tokenizer_cached(m, &t, err));
    glmq_ids v = {0};
    glmq_status st = (flags & GLMQ_TOKENIZE_PROMPT)
                         ? glmq_tokenizer_encode_prompt(t, text ? text : "", len, &v, err)
                         : glmq_tokenizer_encode(t, text ? text : "", len, &v, err);
    if (st == GLMQ_OK) {
        *n = v.n;
        if (v.n > cap && (ids || cap))
            st = glmq_fail(err, GLMQ_E_INVALID,
                           "glmq_tokenize: buffer too small: %zu ids needed, room for %zu", v.n,
                           cap);
        else if (v.n && v.n <= cap)
            memcpy(ids, v.ids, v.n * sizeof *ids);
    }
    glmq_ids_free(&v);
    return st;
}

glmq_status glmq_detokenize(const glmq_model *m, const int32_t *ids, size_t n, char *text,
                            size_t cap, size_t *len, glmq_err *err)
{
    GLMQ_FAIL_IF(!len, err, GLMQ_E_INVALID, "glmq_detokenize: no length pointer given");
    *len = 0;
    GLMQ_FAIL_IF(!m || (!ids && n), err, GLMQ_E_INVALID,
                 "glmq_detokenize: no model or no ids given");
    GLMQ_FAIL_IF(!text && cap, err, GLMQ_E_INVALID,
                 "glmq_detokenize: a capacity of %zu bytes without a buffer", cap);
    const glmq_tokenizer *t = NULL;
    GLMQ_TRY(glmq_model_tokenizer_cached(m, &t, err));
    char *s = NULL;
    size_t sl = 0;
    GLMQ_TRY(glmq_tokenizer_decode(t, ids, n, &s, &sl, err));
    glmq_status st = GLMQ_OK;
    *len = sl;
    if (sl < cap)
        memcpy(text, s, sl + 1); /* with its NUL */
    else if (text || cap)
        st = glmq_fail(err, GLMQ_E_INVALID,
                       "glmq_detokenize: buffer too small: %zu bytes and a NUL needed, room for "
                       "%zu", sl, cap);
    free(s);
    return st;
}
