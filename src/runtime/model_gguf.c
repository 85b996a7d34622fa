/*
 * model_gguf.c - see model_gguf.h.
 *
 * llama.cpp's `chatglm` architecture keeps the checkpoint's fused tensors as they are (fused
 * query/key/value rows, gate|up rows of the MLP), so each GGUF tensor is one checkpoint tensor
 * under another name (formats/glm_tensors.c, glmq_gguf_tensor_name) with its dimensions listed
 * fastest first.
 */
#include "runtime/model_gguf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static glmq_status key_i64(const glmq_gguf *g, const char *key, int required, int64_t *v,
                           glmq_err *err)
{
    return glmq_gguf_get_i64(g, key, required, v, err);
}

/* The id of the vocabulary piece spelled exactly `piece`, or -1. */
static int64_t piece_id(const glmq_gguf *g, const glmq_gguf_kv *toks, const char *piece)
{
    if (!toks) return -1;
    size_t n = strlen(piece);
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        glmq_gguf_str s = glmq_gguf_arr_str(g, toks, i);
        if (s.len == n && !memcmp(s.ptr, piece, n)) return (int64_t)i;
    }
    return -1;
}

/* A foreign file (llama.cpp's converter or quantizer, no glmq.config): the hyper-parameters
 * llama.cpp itself runs the model with, and the special tokens found by their pieces. */
static glmq_status derived_config(const glmq_gguf *g, glmq_config *c, glmq_err *err)
{
    memset(c, 0, sizeof *c);
    c->arch = GLMQ_ARCH_CHATGLM2;
    GLMQ_TRY(key_i64(g, "chatglm.embedding_length", 1, &c->hidden, err));
    GLMQ_TRY(key_i64(g, "chatglm.block_count", 1, &c->n_layers, err));
    GLMQ_TRY(key_i64(g, "chatglm.attention.head_count", 1, &c->n_heads, err));
    c->n_kv_groups = c->n_heads;
    GLMQ_TRY(key_i64(g, "chatglm.attention.head_count_kv", 0, &c->n_kv_groups, err));
    GLMQ_TRY(key_i64(g, "chatglm.feed_forward_length", 1, &c->ffn, err));
    c->seq_length = 2048;
    GLMQ_TRY(key_i64(g, "chatglm.context_length", 0, &c->seq_length, err));
    GLMQ_FAIL_IF(c->n_heads <= 0 || c->hidden % c->n_heads != 0, err, GLMQ_E_FORMAT,
                 "'%s': chatglm.embedding_length %lld is not a multiple of "
                 "chatglm.attention.head_count %lld",
                 glmq_gguf_path(g), (long long)c->hidden, (long long)c->n_heads);
    c->head_dim = c->hidden / c->n_heads;
    GLMQ_TRY(key_i64(g, "chatglm.attention.key_length", 0, &c->head_dim, err));
    float eps = 1e-5f, base = 10000.0f;
    GLMQ_TRY(glmq_gguf_get_f32(g, "chatglm.attention.layer_norm_rms_epsilon", 1, &eps, err));
    GLMQ_TRY(glmq_gguf_get_f32(g, "chatglm.rope.freq_base", 0, &base, err));
    c->norm_eps = eps;
    c->rope_ratio = base / 10000.0;
    c->alpha = 1.0;
    c->rmsnorm = 1;
    const glmq_gguf_tensor *emb = glmq_gguf_find_tensor(g, "token_embd.weight");
    GLMQ_FAIL_IF(!emb || emb->n_dims != 2, err, GLMQ_E_FORMAT,
                 "'%s': no 2-D tensor token_embd.weight", glmq_gguf_path(g));
    c->vocab = emb->ne[1];
    c->qkv_bias = glmq_gguf_find_tensor(g, "blk.0.attn_qkv.bias") != NULL;
    c->linear_bias = glmq_gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
    c->post_layer_norm = glmq_gguf_find_tensor(g, "output_norm.weight") != NULL;
    c->tied_output = 0;
    glmq_gguf_str model = {0};
    GLMQ_TRY(glmq_gguf_get_str(g, "tokenizer.ggml.model", 0, &model, err));
    int bpe = model.len == 4 && !memcmp(model.ptr, "gpt2", 4);
    snprintf(c->tokenizer_kind, sizeof c->tokenizer_kind, "%s",
             model.len == 0 ? "none" : bpe ? "tiktoken" : "sentencepiece");
    const glmq_gguf_kv *toks = glmq_gguf_find(g, "tokenizer.ggml.tokens");
    if (toks && toks->arr_type != GLMQ_GGUF_STRING) toks = NULL;
    c->tok_mask = piece_id(g, toks, "[MASK]");
    c->tok_gmask = piece_id(g, toks, "[gMASK]");
    c->tok_smask = piece_id(g, toks, "[sMASK]");
    c->tok_sop = piece_id(g, toks, bpe ? "<sop>" : "sop");
    c->tok_eop = piece_id(g, toks, bpe ? "<eop>" : "eop");
    c->tok_eos = c->tok_pad = c->tok_bos = -1;
    GLMQ_TRY(key_i64(g, "tokenizer.ggml.eos_token_id", 0, &c->tok_eos, err));
    GLMQ_TRY(key_i64(g, "tokenizer.ggml.padding_token_id", 0, &c->tok_pad, err));
    /* the same validation as a packed file's config: through its JSON form */
    cJSON *j = glmq_config_to_json(c);
    GLMQ_FAIL_IF(!j, err, GLMQ_E_NOMEM, "out of memory");
    glmq_status st = glmq_config_from_json(j, c, err);
    cJSON_Delete(j);
    return st;
}

glmq_status glmq_gguf_model_config(const glmq_gguf *g, glmq_config *cfg, glmq_err *err)
{
    const char *path = glmq_gguf_path(g);
    glmq_gguf_str arch = {0};
    GLMQ_TRY(glmq_gguf_get_str(g, "general.architecture", 1, &arch, err));
    GLMQ_FAIL_IF(arch.len != 7 || memcmp(arch.ptr, "chatglm", 7) != 0, err, GLMQ_E_UNSUPPORTED,
                 "'%s': general.architecture is '%.*s': glmq runs GGUF files of the 'chatglm' "
                 "architecture (ChatGLM2/3-6B, GLM-4-9B)",
                 path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    glmq_gguf_str js = {0};
    GLMQ_TRY(glmq_gguf_get_str(g, "glmq.config", 0, &js, err));
    if (!js.ptr) return glmq_err_prefix(err, derived_config(g, cfg, err), "'%s': ", path);
    cJSON *j = cJSON_ParseWithLength(js.ptr, (size_t)js.len);
    GLMQ_FAIL_IF(!j, err, GLMQ_E_FORMAT, "'%s': glmq.config is not JSON", path);
    glmq_status st = glmq_config_from_json(j, cfg, err);
    cJSON_Delete(j);
    if (st != GLMQ_OK) return glmq_err_prefix(err, st, "'%s': glmq.config: ", path);
    GLMQ_FAIL_IF(cfg->arch != GLMQ_ARCH_CHATGLM2, err, GLMQ_E_FORMAT,
                 "'%s': glmq.config names architecture '%s', not chatglm2", path,
                 glmq_arch_name(cfg->arch));
    return GLMQ_OK;
}

glmq_status glmq_gguf_tensor_view(const glmq_gguf *g, const glmq_gguf_tensor *t, const char *name,
                                  glmq_tensor_info *out, glmq_err *err)
{
    memset(out, 0, sizeof *out);
    const glmq_ggml_type_info *ti = glmq_ggml_type_get(t->type);
    GLMQ_FAIL_IF(!ti || !ti->decodable, err, GLMQ_E_UNSUPPORTED,
                 "'%s': tensor '%s' (info at byte %llu) has ggml type %s, which glmq does not "
                 "decode (it decodes f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, "
                 "q4_K, q5_K, q6_K)",
                 glmq_gguf_path(g), t->name, (unsigned long long)t->info_offset,
                 ti ? ti->name : "?");
    GLMQ_FAIL_IF(t->n_dims > 2, err, GLMQ_E_SHAPE, "'%s': tensor '%s' has %u dimensions",
                 glmq_gguf_path(g), t->name, t->n_dims);
    out->name = name;
    out->type = t->type == GLMQ_GGML_F32    ? GLMQ_TYPE_F32
                : t->type == GLMQ_GGML_F16  ? GLMQ_TYPE_F16
                : t->type == GLMQ_GGML_BF16 ? GLMQ_TYPE_BF16
                                            : (glmq_type)(GLMQ_TYPE_GGML + (int)t->type);
    out->ndim = (int)t->n_dims;
    for (uint32_t d = 0; d < t->n_dims; d++) out->shape[d] = t->ne[t->n_dims - 1 - d];
    out->rows = t->rows;
    out->cols = t->ne[0];
    out->row_stride = (int64_t)t->row_bytes;
    out->data = t->data;
    out->data_size = (size_t)t->size;
    out->data_offset = t->offset;
    return GLMQ_OK;
}
