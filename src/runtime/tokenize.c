/*
 * tokenize.c - a model's tokenizer: its flavour from the config (see tokenize.h), and the public
 * glmq_tokenize / glmq_detokenize on the tokenizer the model keeps.
 *
 * The public calls write into caller buffers with snprintf-like sizing: the size is always
 * reported, the buffer is written only when it is large enough, so a failed call leaves it as
 * it was.
 */
#include "runtime/tokenize.h"

#include "core/file.h"
#include "formats/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static glmq_status tok_for_config(const glmq_config *c, const void *bytes, size_t n,
                                  glmq_tokenizer **out, glmq_err *err);

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
    return tok_for_config(c, bytes, n, out, err);
}

/* The tokenizer with the flavour of config `c`. */
static glmq_status tok_for_config(const glmq_config *c, const void *bytes, size_t n,
                                  glmq_tokenizer **out, glmq_err *err)
{
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

/* ---- a tokenizer without a model (a directory without weights, or any model path) ---- */

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A directory's config and tokenizer file, read as the checkpoint reader reads them
 * (glmq_checkpoint_open_meta); its weights are never looked at. */
static glmq_status dir_tokenizer(const char *dir, glmq_tokenizer **out, glmq_err *err)
{
    glmq_checkpoint *ck = NULL;
    GLMQ_TRY(glmq_checkpoint_open_meta(dir, &ck, err));
    glmq_status st = ck->tokenizer.data
                         ? tok_for_config(&ck->cfg, ck->tokenizer.data, ck->tokenizer.size, out,
                                          err)
                         : glmq_fail(err, GLMQ_E_IO,
                                     "'%s': no tokenizer file (tokenizer.model, ice_text.model "
                                     "or tokenizer.json)",
                                     dir);
    if (st != GLMQ_OK && ck->tokenizer.data)
        glmq_err_prefix(err, st, "'%s/%s': ", dir, ck->tokenizer.name);
    glmq_checkpoint_close(ck);
    return st;
}

glmq_status glmq_tokenizer_load(const char *path, glmq_tokenizer **out, glmq_err *err)
{
    GLMQ_FAIL_IF(!out, err, GLMQ_E_INVALID, "glmq_tokenizer_load: no output pointer given");
    *out = NULL;
    GLMQ_FAIL_IF(!path, err, GLMQ_E_INVALID, "glmq_tokenizer_load: no path given");
    if (is_dir(path)) return dir_tokenizer(path, out, err);
    glmq_model *m = NULL;
    GLMQ_TRY(glmq_model_open(path, &m, err));
    glmq_status st = glmq_model_tokenizer_open(m, out, err);
    glmq_model_close(m);
    return st;
}

void glmq_tokenizer_close(glmq_tokenizer *t) { glmq_tokenizer_free(t); }

static glmq_status tokenize_with(const glmq_tokenizer *t, const char *text, size_t len,
                                 unsigned flags, int32_t *ids, size_t cap, size_t *n,
                                 glmq_err *err)
{
    glmq_ids v = {0};
    glmq_status st = glmq_tokenizer_encode_ex(t, text ? text : "", len, flags, &v, err);
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

/* The checks both public tokenize calls make. */
static glmq_status tokenize_args(const void *obj, const char *text, size_t len, unsigned flags,
                                 const int32_t *ids, size_t cap, size_t *n, glmq_err *err)
{
    GLMQ_FAIL_IF(!n, err, GLMQ_E_INVALID, "glmq_tokenize: no count pointer given");
    *n = 0;
    GLMQ_FAIL_IF(!obj || (!text && len), err, GLMQ_E_INVALID,
                 "glmq_tokenize: no model or no text given");
    GLMQ_FAIL_IF(!ids && cap, err, GLMQ_E_INVALID,
                 "glmq_tokenize: a capacity of %zu ids without a buffer", cap);
    const unsigned known = GLMQ_TOKENIZE_PROMPT | GLMQ_TOKENIZE_SPECIAL;
    GLMQ_FAIL_IF(flags & ~known, err, GLMQ_E_INVALID, "glmq_tokenize: unknown flags 0x%x",
                 flags & ~known);
    return GLMQ_OK;
}

glmq_status glmq_tokenize(const glmq_model *m, const char *text, size_t len, unsigned flags,
                          int32_t *ids, size_t cap, size_t *n, glmq_err *err)
{
    GLMQ_TRY(tokenize_args(m, text, len, flags, ids, cap, n, err));
    const glmq_tokenizer *t = NULL;
    GLMQ_TRY(glmq_model_tokenizer_cached(m, &t, err));
    return tokenize_with(t, text, len, flags, ids, cap, n, err);
}

glmq_status glmq_tokenizer_tokenize(const glmq_tokenizer *t, const char *text, size_t len,
                                    unsigned flags, int32_t *ids, size_t cap, size_t *n,
                                    glmq_err *err)
{
    GLMQ_TRY(tokenize_args(t, text, len, flags, ids, cap, n, err));
    return tokenize_with(t, text, len, flags, ids, cap, n, err);
}

glmq_status glmq_tokenizer_detokenize(const glmq_tokenizer *t, const int32_t *ids, size_t n,
                                      char *text, size_t cap, size_t *len, glmq_err *err)
{
    GLMQ_FAIL_IF(!len, err, GLMQ_E_INVALID, "glmq_detokenize: no length pointer given");
    *len = 0;
    GLMQ_FAIL_IF(!t || (!ids && n), err, GLMQ_E_INVALID,
                 "glmq_detokenize: no tokenizer or no ids given");
    GLMQ_FAIL_IF(!text && cap, err, GLMQ_E_INVALID,
                 "glmq_detokenize: a capacity of %zu bytes without a buffer", cap);
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

glmq_status glmq_detokenize(const glmq_model *m, const int32_t *ids, size_t n, char *text,
                            size_t cap, size_t *len, glmq_err *err)
{
    GLMQ_FAIL_IF(!len, err, GLMQ_E_INVALID, "glmq_detokenize: no length pointer given");
    *len = 0;
    GLMQ_FAIL_IF(!m || (!ids && n), err, GLMQ_E_INVALID,
                 "glmq_detokenize: no model or no ids given");
    const glmq_tokenizer *t = NULL;
    GLMQ_TRY(glmq_model_tokenizer_cached(m, &t, err));
    return glmq_tokenizer_detokenize(t, ids, n, text, cap, len, err);
}

glmq_status glmq_model_encode_file(const glmq_model *m, const char *path, glmq_ids *out,
                                   glmq_err *err)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    GLMQ_TRY(glmq_read_file(path, &text, &len, err));
    glmq_tokenizer *t = NULL;
    glmq_status st = glmq_model_tokenizer_open(m, &t, err);
    if (st == GLMQ_OK) st = glmq_tokenizer_encode(t, text, len, out, err);
    glmq_tokenizer_free(t);
    free(text);
    if (st == GLMQ_OK && out->n == 0)
        st = glmq_fail(err, GLMQ_E_INVALID, "'%s' has no tokens", path);
    if (st != GLMQ_OK) glmq_ids_free(out);
    return st;
}
