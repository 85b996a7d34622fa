/*
 * glm_tensors.c - the GLM tensor table (see glm_tensors.h): the only place where the checkpoint
 * names of the GLM family are spelled.
 *
 * Canonical order (the order of a packed file's tensor directory and of every validation
 * message): the head entries, then each layer's entries for layers 0..L-1, then the tail. The
 * order within a layer is the upstream modules' registration order.
 */
#include "formats/glm_tensors.h"

#include <stdio.h>
#include <stdlib.h>

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ChatGLM-6B (GLM-SPEC A.3): LayerNorm with bias, biases on every linear layer, lm_head stored
 * or tied to the embedding. */
static const glmq_tensor_desc v1_head[] = {
    {"transformer.word_embeddings.weight", GLMQ_SLOT_EMBED, GLMQ_ROLE_EMBED, 2,
     {GLMQ_DIM_V, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_IF_EMBEDDING},
};
static const glmq_tensor_desc v1_layer[] = {
    {"input_layernorm.weight", GLMQ_SLOT_LN_IN, GLMQ_ROLE_NORM, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"input_layernorm.bias", GLMQ_SLOT_LN_IN_B, GLMQ_ROLE_NORM, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"attention.query_key_value.weight", GLMQ_SLOT_QKV, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_3H, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"attention.query_key_value.bias", GLMQ_SLOT_QKV_B, GLMQ_ROLE_BIAS, 1,
     {GLMQ_DIM_3H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"attention.dense.weight", GLMQ_SLOT_DENSE, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_H, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"attention.dense.bias", GLMQ_SLOT_DENSE_B, GLMQ_ROLE_BIAS, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"post_attention_layernorm.weight", GLMQ_SLOT_LN_POST, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"post_attention_layernorm.bias", GLMQ_SLOT_LN_POST_B, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"mlp.dense_h_to_4h.weight", GLMQ_SLOT_H4H, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_FFN_UP, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"mlp.dense_h_to_4h.bias", GLMQ_SLOT_H4H_B, GLMQ_ROLE_BIAS, 1,
     {GLMQ_DIM_FFN_UP, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"mlp.dense_4h_to_h.weight", GLMQ_SLOT_FHH, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_H, GLMQ_DIM_F}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"mlp.dense_4h_to_h.bias", GLMQ_SLOT_FHH_B, GLMQ_ROLE_BIAS, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
};
static const glmq_tensor_desc v1_tail[] = {
    {"transformer.final_layernorm.weight", GLMQ_SLOT_FINAL_NORM, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"transformer.final_layernorm.bias", GLMQ_SLOT_FINAL_NORM_B, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    /* upstream keeps it equal to the embedding; stored when the checkpoint has it */
    {"lm_head.weight", GLMQ_SLOT_OUTPUT, GLMQ_ROLE_OUTPUT, 2, {GLMQ_DIM_V, GLMQ_DIM_H},
     GLMQ_WHEN_ALWAYS, 1, GLMQ_QUANT_IF_OUTPUT},
};

/* ChatGLM2/3-6B and GLM-4-9B (GLM-SPEC B.2, C.2): RMSNorm without bias, grouped KV, optional
 * qkv bias (add_qkv_bias), optional linear biases (add_bias_linear), optional final norm
 * (post_layer_norm), untied output layer. */
static const glmq_tensor_desc v2_head[] = {
    {"transformer.embedding.word_embeddings.weight", GLMQ_SLOT_EMBED, GLMQ_ROLE_EMBED, 2,
     {GLMQ_DIM_V, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_IF_EMBEDDING},
};
static const glmq_tensor_desc v2_layer[] = {
    {"input_layernorm.weight", GLMQ_SLOT_LN_IN, GLMQ_ROLE_NORM, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"self_attention.query_key_value.weight", GLMQ_SLOT_QKV, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_QKV, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"self_attention.query_key_value.bias", GLMQ_SLOT_QKV_B, GLMQ_ROLE_BIAS, 1,
     {GLMQ_DIM_QKV, GLMQ_DIM_NONE}, GLMQ_WHEN_QKV_BIAS, 0, GLMQ_QUANT_NEVER},
    {"self_attention.dense.weight", GLMQ_SLOT_DENSE, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_H, GLMQ_DIM_NQ}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"self_attention.dense.bias", GLMQ_SLOT_DENSE_B, GLMQ_ROLE_BIAS, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_LINEAR_BIAS, 0, GLMQ_QUANT_NEVER},
    {"post_attention_layernorm.weight", GLMQ_SLOT_LN_POST, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_NEVER},
    {"mlp.dense_h_to_4h.weight", GLMQ_SLOT_H4H, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_2F, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"mlp.dense_h_to_4h.bias", GLMQ_SLOT_H4H_B, GLMQ_ROLE_BIAS, 1, {GLMQ_DIM_2F, GLMQ_DIM_NONE},
     GLMQ_WHEN_LINEAR_BIAS, 0, GLMQ_QUANT_NEVER},
    {"mlp.dense_4h_to_h.weight", GLMQ_SLOT_FHH, GLMQ_ROLE_LAYER_WEIGHT, 2,
     {GLMQ_DIM_H, GLMQ_DIM_F}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_DEFAULT},
    {"mlp.dense_4h_to_h.bias", GLMQ_SLOT_FHH_B, GLMQ_ROLE_BIAS, 1, {GLMQ_DIM_H, GLMQ_DIM_NONE},
     GLMQ_WHEN_LINEAR_BIAS, 0, GLMQ_QUANT_NEVER},
    /* glm4 (Glm4ForCausalLM, GLM-4-0414): x + norm(attn(...)), x + norm(mlp(...)). The
     * canonical names keep transformers' module names; THUDM's chatglm layout has no such
     * tensors. */
    {"post_self_attn_layernorm.weight", GLMQ_SLOT_LN_ATTN_OUT, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_SANDWICH, 0, GLMQ_QUANT_NEVER},
    {"post_mlp_layernorm.weight", GLMQ_SLOT_LN_MLP_OUT, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_SANDWICH, 0, GLMQ_QUANT_NEVER},
};
static const glmq_tensor_desc v2_tail[] = {
    {"transformer.encoder.final_layernorm.weight", GLMQ_SLOT_FINAL_NORM, GLMQ_ROLE_NORM, 1,
     {GLMQ_DIM_H, GLMQ_DIM_NONE}, GLMQ_WHEN_POST_NORM, 0, GLMQ_QUANT_NEVER},
    {"transformer.output_layer.weight", GLMQ_SLOT_OUTPUT, GLMQ_ROLE_OUTPUT, 2,
     {GLMQ_DIM_V, GLMQ_DIM_H}, GLMQ_WHEN_ALWAYS, 0, GLMQ_QUANT_IF_OUTPUT},
};

static const glmq_tensor_table tables[] = {
    {GLMQ_ARCH_CHATGLM1, "transformer.layers", v1_head, v1_layer, v1_tail, N(v1_head),
     N(v1_layer), N(v1_tail)},
    {GLMQ_ARCH_CHATGLM2, "transformer.encoder.layers", v2_head, v2_layer, v2_tail, N(v2_head),
     N(v2_layer), N(v2_tail)},
    /* GLM-130B (formats/GLM130B.md): ChatGLM-6B's SAT names and layer, with GeGLU (the h_to_4h
     * rows are [value half | gated half] of all partitions merged, formats/sat.c) and no
     * lm_head of its own (tied to the embedding) */
    {GLMQ_ARCH_GLM130B, "transformer.layers", v1_head, v1_layer, v1_tail, N(v1_head),
     N(v1_layer), N(v1_tail)},
};

const glmq_tensor_table *glmq_tensor_table_of(glmq_arch a)
{
    for (int i = 0; i < N(tables); i++)
        if (tables[i].arch == a) return &tables[i];
    return NULL;
}

int64_t glmq_dim_value(const glmq_config *c, glmq_dim d)
{
    const int64_t nq = c->n_heads * c->head_dim;
    switch (d) {
    case GLMQ_DIM_NONE: return 0;
    case GLMQ_DIM_H: return c->hidden;
    case GLMQ_DIM_V: return c->vocab;
    case GLMQ_DIM_F: return c->ffn;
    case GLMQ_DIM_2F: return 2 * c->ffn;
    case GLMQ_DIM_FFN_UP: return c->arch == GLMQ_ARCH_CHATGLM1 ? c->ffn : 2 * c->ffn;
    case GLMQ_DIM_3H: return 3 * c->hidden;
    case GLMQ_DIM_NQ: return nq;
    case GLMQ_DIM_QKV: return nq + 2 * c->n_kv_groups * c->head_dim;
    }
    return 0;
}

int glmq_tensor_expected(const glmq_config *c, glmq_when w)
{
    switch (w) {
    case GLMQ_WHEN_ALWAYS: return 1;
    case GLMQ_WHEN_QKV_BIAS: return c->qkv_bias != 0;
    case GLMQ_WHEN_LINEAR_BIAS: return c->linear_bias != 0;
    case GLMQ_WHEN_POST_NORM: return c->post_layer_norm != 0;
    case GLMQ_WHEN_SANDWICH: return c->sandwich_norm != 0;
    }
    return 0;
}

/* Append the expansion of row d (layer l, or -1 for a global row) when the config expects it. */
static void expand(const glmq_config *c, const glmq_tensor_table *tb, const glmq_tensor_desc *d,
                   int64_t l, glmq_expected_tensor *t, int64_t *n)
{
    if (!glmq_tensor_expected(c, d->when)) return;
    glmq_expected_tensor *e = &t[(*n)++];
    if (l < 0)
        snprintf(e->name, sizeof e->name, "%s", d->name);
    else
        snprintf(e->name, sizeof e->name, "%s.%lld.%s", tb->layer_prefix, (long long)l, d->name);
    e->ndim = d->ndim;
    e->shape[0] = glmq_dim_value(c, d->dim[0]);
    e->shape[1] = glmq_dim_value(c, d->dim[1]);
    e->role = d->role;
    e->optional = d->optional;
    e->slot = d->slot;
    e->layer = l;
    e->quant = d->quant;
}

glmq_status glmq_config_tensors(const glmq_config *c, glmq_expected_tensor **out, int64_t *n,
                                glmq_err *err)
{
    *out = NULL;
    *n = 0;
    const glmq_tensor_table *tb = glmq_tensor_table_of(c->arch);
    GLMQ_FAIL_IF(!tb, err, GLMQ_E_UNSUPPORTED, "no tensor table for architecture %d",
                 (int)c->arch);
    GLMQ_FAIL_IF(c->n_layers < 0, err, GLMQ_E_INVALID, "%lld layers", (long long)c->n_layers);
    const int64_t cap = tb->n_head + c->n_layers * tb->n_layer + tb->n_tail;
    glmq_expected_tensor *t = calloc((size_t)cap + 1, sizeof *t);
    GLMQ_FAIL_IF(!t, err, GLMQ_E_NOMEM, "out of memory");
    int64_t k = 0;
    for (int i = 0; i < tb->n_head; i++) expand(c, tb, &tb->head[i], -1, t, &k);
    for (int64_t l = 0; l < c->n_layers; l++)
        for (int i = 0; i < tb->n_layer; i++) expand(c, tb, &tb->layer[i], l, t, &k);
    for (int i = 0; i < tb->n_tail; i++) expand(c, tb, &tb->tail[i], -1, t, &k);
    *out = t;
    *n = k;
    return GLMQ_OK;
}

int glmq_tensor_is_buffer(const char *name)
{
    static const char suffix[] = ".inv_freq";
    const size_t ln = strlen(name), ls = sizeof suffix - 1;
    return ln >= ls && !strcmp(name + ln - ls, suffix);
}

int glmq_gguf_tensor_name(glmq_slot slot, int64_t layer, char *buf, size_t n)
{
    static const struct {
        glmq_slot slot;
        const char *name; /* per-layer names get "blk.<l>." in front */
        int per_layer;
    } names[] = {
        {GLMQ_SLOT_EMBED, "token_embd.weight", 0},
        {GLMQ_SLOT_OUTPUT, "output.weight", 0},
        {GLMQ_SLOT_FINAL_NORM, "output_norm.weight", 0},
        {GLMQ_SLOT_LN_IN, "attn_norm.weight", 1},
        {GLMQ_SLOT_QKV, "attn_qkv.weight", 1},
        {GLMQ_SLOT_QKV_B, "attn_qkv.bias", 1},
        {GLMQ_SLOT_DENSE, "attn_output.weight", 1},
        {GLMQ_SLOT_LN_POST, "ffn_norm.weight", 1},
        /* dense_h_to_4h holds the gate rows, then the up rows; llama.cpp's fused SwiGLU takes
         * silu(first half) * second half, so the tensor maps as stored */
        {GLMQ_SLOT_H4H, "ffn_up.weight", 1},
        {GLMQ_SLOT_FHH, "ffn_down.weight", 1},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].slot != slot) continue;
        if (names[i].per_layer != (layer >= 0)) return 0;
        int w = names[i].per_layer ? snprintf(buf, n, "blk.%lld.%s", (long long)layer, names[i].name)
                                   : snprintf(buf, n, "%s", names[i].name);
        return w > 0 && (size_t)w < n;
    }
    return 0;
}
