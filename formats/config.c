/*
 * config.c - parse and validate GLM config.json files (the tensors an architecture needs are
 * formats/glm_tensors.c's table).
 *
 * Architecture detection follows GLM-SPEC G.1: `model_type` is "chatglm" for every generation,
 * so the presence of `position_encoding_2d`/`inner_hidden_size` (v1, ChatGLM-6B) versus
 * `padded_vocab_size`/`ffn_hidden_size`/`kv_channels` (v2 family: ChatGLM2/3, GLM-4) decides.
 * transformers-native layouts (`model_type` "glm" and "glm4") are parsed into the same v2 config
 * (parse_hf_glm). THUDM's quantized releases (`quantization_bit` 4 or 8,
 * `quantization_embeddings`) are recorded in quant_bits / quant_embeddings; other widths,
 * P-tuning (`pre_seq_len`), mixture-of-experts and vision GLMs are refused with a message that
 * says why. Every size is range-checked so that later arithmetic (rows * cols * 4) cannot
 * overflow.
 */
#include "formats/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Upper bounds that keep all derived sizes far from int64 overflow. */
#define MAX_HIDDEN (1 << 17)
#define MAX_LAYERS 1024
#define MAX_HEADS 4096
#define MAX_VOCAB (1 << 24)
#define MAX_FFN (1 << 20)

const char *glmq_arch_name(glmq_arch a)
{
    if (a == GLMQ_ARCH_GLM130B) return "glm130b";
    return a == GLMQ_ARCH_CHATGLM1 ? "chatglm" : a == GLMQ_ARCH_CHATGLM2 ? "chatglm2" : "unknown";
}

/* Read an integer field. present=0 and *v = def when absent; error when not an integer. */
static glmq_status get_int(const cJSON *root, const char *key, int required, int64_t def,
                           int64_t lo, int64_t hi, int64_t *v, const char *path, glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        GLMQ_FAIL_IF(required, err, GLMQ_E_FORMAT, "'%s': missing required field '%s'", path, key);
        *v = def;
        return GLMQ_OK;
    }
    GLMQ_FAIL_IF(!cJSON_IsNumber(it), err, GLMQ_E_FORMAT, "'%s': field '%s' is not a number",
                 path, key);
    double d = it->valuedouble;
    GLMQ_FAIL_IF(d != floor(d) || d < (double)lo || d > (double)hi, err, GLMQ_E_FORMAT,
                 "'%s': field '%s' = %g is not an integer in [%lld, %lld]", path, key, d,
                 (long long)lo, (long long)hi);
    *v = (int64_t)d;
    return GLMQ_OK;
}

static glmq_status get_bool(const cJSON *root, const char *key, int def, int *v, const char *path,
                            glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        *v = def;
        return GLMQ_OK;
    }
    GLMQ_FAIL_IF(!cJSON_IsBool(it), err, GLMQ_E_FORMAT, "'%s': field '%s' is not a boolean", path,
                 key);
    *v = cJSON_IsTrue(it);
    return GLMQ_OK;
}

static glmq_status get_double(const cJSON *root, const char *key, double def, double lo,
                              double hi, double *v, const char *path, glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        *v = def;
        return GLMQ_OK;
    }
    GLMQ_FAIL_IF(!cJSON_IsNumber(it), err, GLMQ_E_FORMAT, "'%s': field '%s' is not a number",
                 path, key);
    GLMQ_FAIL_IF(!(it->valuedouble >= lo && it->valuedouble <= hi), err, GLMQ_E_FORMAT,
                 "'%s': field '%s' = %g is outside [%g, %g]", path, key, it->valuedouble, lo, hi);
    *v = it->valuedouble;
    return GLMQ_OK;
}

/* eos_token_id may be an int or a list of ints (GLM-4): take the first. */
static glmq_status get_token(const cJSON *root, const char *key, int64_t *v, const char *path,
                             glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *v = -1;
    if (!it || cJSON_IsNull(it)) return GLMQ_OK;
    if (cJSON_IsArray(it)) it = cJSON_GetArrayItem(it, 0);
    GLMQ_FAIL_IF(!it || !cJSON_IsNumber(it) || it->valuedouble < 0 ||
                     it->valuedouble > MAX_VOCAB || it->valuedouble != floor(it->valuedouble),
                 err, GLMQ_E_FORMAT, "'%s': field '%s' is not a token id", path, key);
    *v = (int64_t)it->valuedouble;
    return GLMQ_OK;
}

static int has(const cJSON *root, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    return it && !cJSON_IsNull(it);
}

static glmq_status parse_v1(const cJSON *r, const char *tc, size_t tc_len, const char *path,
                            glmq_config *c, glmq_err *err)
{
    int pe2d = 0;
    c->arch = GLMQ_ARCH_CHATGLM1;
    GLMQ_TRY(get_int(r, "vocab_size", 1, 0, 1, MAX_VOCAB, &c->vocab, path, err));
    GLMQ_TRY(get_int(r, "hidden_size", 1, 0, 1, MAX_HIDDEN, &c->hidden, path, err));
    GLMQ_TRY(get_int(r, "num_layers", 1, 0, 1, MAX_LAYERS, &c->n_layers, path, err));
    GLMQ_TRY(get_int(r, "num_attention_heads", 1, 0, 1, MAX_HEADS, &c->n_heads, path, err));
    GLMQ_TRY(get_int(r, "inner_hidden_size", 0, 4 * c->hidden, 1, MAX_FFN, &c->ffn, path, err));
    GLMQ_TRY(get_int(r, "max_sequence_length", 0, 2048, 1, INT32_MAX, &c->seq_length, path, err));
    GLMQ_TRY(get_double(r, "layernorm_epsilon", 1e-5, 0, 1, &c->norm_eps, path, err));
    GLMQ_TRY(get_bool(r, "position_encoding_2d", 1, &pe2d, path, err));
    GLMQ_FAIL_IF(!pe2d, err, GLMQ_E_UNSUPPORTED,
                 "'%s': position_encoding_2d = false (1-D RoPE GLM) is not supported", path);
    GLMQ_FAIL_IF(c->hidden % c->n_heads != 0, err, GLMQ_E_FORMAT,
                 "'%s': num_attention_heads %lld does not divide hidden_size %lld", path,
                 (long long)c->n_heads, (long long)c->hidden);
    c->head_dim = c->hidden / c->n_heads;
    GLMQ_FAIL_IF(c->head_dim % 4 != 0, err, GLMQ_E_FORMAT,
                 "'%s': head dim %lld is not a multiple of 4 (2-D RoPE needs two even halves)",
                 path, (long long)c->head_dim);
    c->n_kv_groups = c->n_heads;
    c->rope_ratio = 1.0;
    c->alpha = sqrt(2.0 * 28.0); /* decision 2: upstream never passes num_layers to GLMBlock */
    c->qkv_bias = 1;
    c->linear_bias = 1;
    c->rmsnorm = 0;
    c->post_layer_norm = 1;
    c->tied_output = 1;
    GLMQ_TRY(get_token(r, "mask_token_id", &c->tok_mask, path, err));
    GLMQ_TRY(get_token(r, "gmask_token_id", &c->tok_gmask, path, err));
    GLMQ_TRY(get_token(r, "bos_token_id", &c->tok_sop, path, err));
    GLMQ_TRY(get_token(r, "eos_token_id", &c->tok_eop, path, err));
    GLMQ_TRY(get_token(r, "pad_token_id", &c->tok_pad, path, err));
    GLMQ_FAIL_IF(c->tok_sop < 4, err, GLMQ_E_FORMAT,
                 "'%s': v1 config needs bos_token_id (the <sop> id)", path);
    /* March-2023 configs leave [MASK]/[gMASK] to class defaults; the special pieces are laid out
     * [MASK] [gMASK] [sMASK] <unused_0> <sop> <eop> (GLM-SPEC A.8), so derive them from <sop>. */
    if (c->tok_mask < 0) c->tok_mask = c->tok_sop - 4;
    if (c->tok_gmask < 0) c->tok_gmask = c->tok_sop - 3;
    c->tok_eos = c->tok_eop;
    c->tok_bos = c->tok_sop;
    c->tok_smask = -1;
    /* num_image_tokens: tokenizer_config.json (absent => 20000), cross-checked (GLM-SPEC A.1) */
    c->num_image_tokens = c->vocab == 150528 ? 20000 : 0;
    if (tc && tc_len) {
        cJSON *t = cJSON_ParseWithLength(tc, tc_len);
        GLMQ_FAIL_IF(!t || !cJSON_IsObject(t), err, GLMQ_E_FORMAT,
                     "'%s': tokenizer_config.json is not a JSON object", path);
        int64_t nit;
        glmq_status st = get_int(t, "num_image_tokens", 0, 20000, 0, MAX_VOCAB, &nit, path, err);
        cJSON_Delete(t);
        GLMQ_TRY(st);
        c->num_image_tokens = nit;
    }
    GLMQ_FAIL_IF(c->tok_gmask >= c->vocab || c->tok_sop >= c->vocab ||
                     c->tok_mask >= c->vocab || c->tok_eop >= c->vocab,
                 err, GLMQ_E_FORMAT, "'%s': a special token id is outside vocab_size %lld", path,
                 (long long)c->vocab);
    snprintf(c->tokenizer_kind, sizeof c->tokenizer_kind, "sentencepiece");
    return GLMQ_OK;
}

/* What every ChatGLM2-family config ends with: the head geometry checks (kv_name / hd_name are
 * the config's names for the KV groups and the head width) and the token ids of config.json. */
static glmq_status v2_finish(const cJSON *r, const char *kv_name, const char *hd_name,
                             const char *path, glmq_config *c, glmq_err *err)
{
    GLMQ_FAIL_IF(c->n_heads % c->n_kv_groups != 0, err, GLMQ_E_FORMAT,
                 "'%s': %s %lld does not divide num_attention_heads %lld", path, kv_name,
                 (long long)c->n_kv_groups, (long long)c->n_heads);
    GLMQ_FAIL_IF(c->head_dim < 4 || c->head_dim % 4 != 0, err, GLMQ_E_FORMAT,
                 "'%s': %s %lld is not a positive multiple of 4 (RoPE rotates pairs in the first "
                 "half)",
                 path, hd_name, (long long)c->head_dim);
    GLMQ_FAIL_IF(c->n_heads * c->head_dim > 4 * MAX_HIDDEN, err, GLMQ_E_FORMAT,
                 "'%s': num_attention_heads x %s is too large", path, hd_name);
    c->alpha = 1.0;
    GLMQ_TRY(get_token(r, "eos_token_id", &c->tok_eos, path, err));
    GLMQ_TRY(get_token(r, "pad_token_id", &c->tok_pad, path, err));
    GLMQ_TRY(get_token(r, "bos_token_id", &c->tok_bos, path, err));
    /* [MASK]/[gMASK]/sop/eop come from the tokenizer (numbered after its pieces or ranks):
     * glmq_config_set_special() fills them once the tokenizer is known. */
    c->tok_mask = c->tok_gmask = c->tok_smask = c->tok_sop = c->tok_eop = -1;
    c->num_image_tokens = 0;
    return GLMQ_OK;
}

static glmq_status parse_v2(const cJSON *r, const char *path, glmq_config *c, glmq_err *err)
{
    int mqa = 0, post_ln_resid = 0;
    c->arch = GLMQ_ARCH_CHATGLM2;
    GLMQ_TRY(get_int(r, "padded_vocab_size", 1, 0, 1, MAX_VOCAB, &c->vocab, path, err));
    GLMQ_TRY(get_int(r, "hidden_size", 1, 0, 1, MAX_HIDDEN, &c->hidden, path, err));
    GLMQ_TRY(get_int(r, "num_layers", 1, 0, 1, MAX_LAYERS, &c->n_layers, path, err));
    GLMQ_TRY(get_int(r, "num_attention_heads", 1, 0, 1, MAX_HEADS, &c->n_heads, path, err));
    GLMQ_TRY(get_int(r, "ffn_hidden_size", 1, 0, 1, MAX_FFN, &c->ffn, path, err));
    GLMQ_TRY(get_int(r, "kv_channels", 1, 0, 1, 4096, &c->head_dim, path, err));
    GLMQ_TRY(get_int(r, "seq_length", 0, 2048, 1, INT64_C(1) << 40, &c->seq_length, path, err));
    GLMQ_TRY(get_bool(r, "multi_query_attention", 0, &mqa, path, err));
    GLMQ_TRY(get_int(r, "multi_query_group_num", 0, 1, 1, MAX_HEADS, &c->n_kv_groups, path, err));
    GLMQ_TRY(get_bool(r, "add_qkv_bias", 0, &c->qkv_bias, path, err));
    GLMQ_TRY(get_bool(r, "add_bias_linear", 0, &c->linear_bias, path, err));
    GLMQ_TRY(get_bool(r, "rmsnorm", 1, &c->rmsnorm, path, err));
    GLMQ_TRY(get_bool(r, "post_layer_norm", 1, &c->post_layer_norm, path, err));
    GLMQ_TRY(get_bool(r, "apply_residual_connection_post_layernorm", 0, &post_ln_resid, path,
                      err));
    GLMQ_TRY(get_double(r, "layernorm_epsilon", 1e-5, 0, 1, &c->norm_eps, path, err));
    GLMQ_TRY(get_double(r, "rope_ratio", 1.0, 1e-6, 1e12, &c->rope_ratio, path, err));
    GLMQ_FAIL_IF(!mqa, err, GLMQ_E_UNSUPPORTED,
                 "'%s': multi_query_attention = false (per-head interleaved QKV in a v2 model) "
                 "is not supported; no released ChatGLM2/3 or GLM-4 uses it",
                 path);
    GLMQ_FAIL_IF(!c->rmsnorm, err, GLMQ_E_UNSUPPORTED,
                 "'%s': rmsnorm = false is not supported for the ChatGLM2 architecture", path);
    GLMQ_FAIL_IF(post_ln_resid, err, GLMQ_E_UNSUPPORTED,
                 "'%s': apply_residual_connection_post_layernorm = true is not supported", path);
    c->tied_output = 0;
    return v2_finish(r, "multi_query_group_num", "kv_channels", path, c, err);
}

/* Refusals for the members of the transformers GLM family that are not a dense GLM-4 decoder. */
static const char *hf_glm_refusal(const char *model_type)
{
    static const struct {
        const char *type, *why;
    } no[] = {
        {"glm4_moe", "GLM-4.5 / GLM-4.6 (Glm4MoeForCausalLM): mixture-of-experts MLP layers, which "
                     "glmq's dense forward pass does not have"},
        {"glm4_moe_lite", "a mixture-of-experts GLM (Glm4MoeLite): glmq's forward pass is dense"},
        {"glm4v", "GLM-4.1V / GLM-4.5V (Glm4vForConditionalGeneration): a vision encoder and "
                  "3-D multimodal RoPE, which glmq does not implement"},
        {"glm4v_moe", "GLM-4.5V (Glm4vMoe): vision encoder and mixture-of-experts layers"},
        {"glm4v_text", "the text tower of GLM-4.1V: 3-D multimodal RoPE"},
        {"glm_image", "GLM-Image: an image model"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (!strcmp(model_type, no[i].type)) return no[i].why;
    return NULL;
}

/* transformers' GlmForCausalLM (model_type "glm": glm-4-9b-chat-hf, GLM-Edge) and
 * Glm4ForCausalLM ("glm4": GLM-4-0414, GLM-Z1-0414), configuration_glm.py / configuration_glm4.py
 * (GLM-SPEC C.4). Both are the ChatGLM2-family decoder with other tensor names (mapped by
 * formats/checkpoint.c): RMSNorm, grouped KV, interleaved RoPE on the first half of each head
 * (partial_rotary_factor 0.5, the same rotation as ChatGLM2, B.5), SwiGLU with the gate rows
 * first, bias on q/k/v only (attention_bias). glm4 adds RMSNorms on the attention and MLP
 * outputs (sandwich_norm). Missing fields take the transformers defaults. */
static glmq_status parse_hf_glm(const cJSON *r, int glm4, const char *path, glmq_config *c,
                                glmq_err *err)
{
    const char *mt = glm4 ? "glm4" : "glm";
    static const char *const moe[] = {"n_routed_experts", "num_experts", "num_local_experts",
                                      "moe_intermediate_size", "vision_config"};
    for (size_t i = 0; i < sizeof moe / sizeof moe[0]; i++)
        GLMQ_FAIL_IF(has(r, moe[i]), err, GLMQ_E_UNSUPPORTED,
                     "'%s': model_type '%s' with '%s': mixture-of-experts or vision variants are "
                     "not supported (glmq runs the dense text decoder only)",
                     path, mt, moe[i]);
    GLMQ_FAIL_IF(has(r, "quantization_config"), err, GLMQ_E_UNSUPPORTED,
                 "'%s': quantization_config is set: checkpoints quantized by a transformers "
                 "quantizer (GPTQ, AWQ, bitsandbytes, FP8) are not supported; convert the "
                 "BF16/FP16 release instead",
                 path);
    c->arch = GLMQ_ARCH_CHATGLM2;
    c->hf_layout = 1;
    c->sandwich_norm = glm4;
    GLMQ_TRY(get_int(r, "vocab_size", 0, 151552, 1, MAX_VOCAB, &c->vocab, path, err));
    GLMQ_TRY(get_int(r, "hidden_size", 0, 4096, 1, MAX_HIDDEN, &c->hidden, path, err));
    GLMQ_TRY(get_int(r, "num_hidden_layers", 0, 40, 1, MAX_LAYERS, &c->n_layers, path, err));
    GLMQ_TRY(get_int(r, "num_attention_heads", 0, 32, 1, MAX_HEADS, &c->n_heads, path, err));
    GLMQ_TRY(get_int(r, "num_key_value_heads", 0, 2, 1, MAX_HEADS, &c->n_kv_groups, path, err));
    GLMQ_TRY(get_int(r, "intermediate_size", 0, 13696, 1, MAX_FFN, &c->ffn, path, err));
    GLMQ_TRY(get_int(r, "head_dim", 0, c->hidden / c->n_heads, 1, 4096, &c->head_dim, path,
                     err));
    GLMQ_TRY(get_int(r, "max_position_embeddings", 0, 131072, 1, INT64_C(1) << 40,
                     &c->seq_length, path, err));
    GLMQ_TRY(get_double(r, "rms_norm_eps", 1.5625e-7, 0, 1, &c->norm_eps, path, err));
    GLMQ_FAIL_IF(!(c->norm_eps > 0), err, GLMQ_E_FORMAT, "'%s': rms_norm_eps must be positive",
                 path);
    GLMQ_TRY(get_bool(r, "attention_bias", 1, &c->qkv_bias, path, err));
    GLMQ_TRY(get_bool(r, "tie_word_embeddings", 0, &c->tied_output, path, err));
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(r, "hidden_act");
    GLMQ_FAIL_IF(act && !cJSON_IsNull(act) &&
                     !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")),
                 err, GLMQ_E_UNSUPPORTED,
                 "'%s': hidden_act is not \"silu\": glmq's MLP is SwiGLU (silu(gate) * up)", path);
    /* RoPE: rope_theta at the top level (transformers < 4.57 spelling) or inside
     * rope_parameters (newer); rope_scaling of any type other than "default" is refused. */
    double theta = 10000.0, prf = 0.5;
    GLMQ_TRY(get_double(r, "rope_theta", 10000.0, 1e-2, 1e16, &theta, path, err));
    GLMQ_TRY(get_double(r, "partial_rotary_factor", 0.5, 0, 1, &prf, path, err));
    static const char *const rope_keys[] = {"rope_parameters", "rope_scaling"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(r, rope_keys[i]);
        if (!rp || cJSON_IsNull(rp)) continue;
        GLMQ_FAIL_IF(!cJSON_IsObject(rp), err, GLMQ_E_FORMAT, "'%s': '%s' is not an object",
                     path, rope_keys[i]);
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (!ty || cJSON_IsNull(ty)) ty = cJSON_GetObjectItemCaseSensitive(rp, "type");
        GLMQ_FAIL_IF(ty && !cJSON_IsNull(ty) &&
                         !(cJSON_IsString(ty) && !strcmp(ty->valuestring, "default")),
                     err, GLMQ_E_UNSUPPORTED,
                     "'%s': %s.rope_type is '%s': only the default RoPE (no scaling) is "
                     "supported",
                     path, rope_keys[i], cJSON_IsString(ty) ? ty->valuestring : "?");
        GLMQ_TRY(get_double(rp, "rope_theta", theta, 1e-2, 1e16, &theta, path, err));
        GLMQ_TRY(get_double(rp, "partial_rotary_factor", prf, 0, 1, &prf, path, err));
    }
    GLMQ_FAIL_IF(prf != 0.5, err, GLMQ_E_UNSUPPORTED,
                 "'%s': partial_rotary_factor %g: glmq rotates the first half of each head "
                 "(the ChatGLM2/GLM-4 RoPE); only 0.5 is supported",
                 path, prf);
    c->rope_ratio = theta / 10000.0;
    c->linear_bias = 0; /* o_proj, gate_up_proj and down_proj have no bias */
    c->rmsnorm = 1;
    c->post_layer_norm = 1;
    return v2_finish(r, "num_key_value_heads", "head_dim", path, c, err);
}

glmq_status glmq_config_parse(const char *json, size_t len, const char *tokenizer_config,
                              size_t tc_len, const char *path, glmq_config *out, glmq_err *err)
{
    memset(out, 0, sizeof *out);
    cJSON *r = cJSON_ParseWithLength(json, len);
    GLMQ_FAIL_IF(!r, err, GLMQ_E_FORMAT, "'%s': not valid JSON (near byte %lld)", path,
                 (long long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0));
    glmq_status st = GLMQ_OK;
    GLMQ_FAIL_IF_G(!cJSON_IsObject(r), err, GLMQ_E_FORMAT, "'%s': not a JSON object", path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(r, "model_type");
    if (cJSON_IsString(mt) &&
        (!strcmp(mt->valuestring, "glm") || !strcmp(mt->valuestring, "glm4"))) {
        st = parse_hf_glm(r, !strcmp(mt->valuestring, "glm4"), path, out, err);
        goto fail;
    }
    if (cJSON_IsString(mt) && hf_glm_refusal(mt->valuestring)) {
        st = glmq_fail(err, GLMQ_E_UNSUPPORTED, "'%s': model_type '%s' is not supported: %s",
                       path, mt->valuestring, hf_glm_refusal(mt->valuestring));
        goto fail;
    }
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "chatglm") != 0) {
        st = glmq_fail(err, GLMQ_E_UNSUPPORTED,
                       "'%s': model_type '%s' is not a ChatGLM/GLM-4 checkpoint", path,
                       mt->valuestring);
        goto fail;
    }
    /* THUDM's quantized releases (formats/thudm_quant.h): 4 or 8; quantization_embeddings
     * (the -qe release) quantizes the embedding and the output layer too */
    int64_t qbit;
    int qemb = 0;
    GLMQ_TRY_G(get_int(r, "quantization_bit", 0, 0, 0, 64, &qbit, path, err));
    GLMQ_FAIL_IF_G(qbit != 0 && qbit != 4 && qbit != 8, err, GLMQ_E_UNSUPPORTED,
                   "'%s': quantization_bit = %lld: THUDM's quantized releases use 4 or 8 bits; "
                   "no other width is known",
                   path, (long long)qbit);
    GLMQ_TRY_G(get_bool(r, "quantization_embeddings", 0, &qemb, path, err));
    GLMQ_FAIL_IF_G(qemb && qbit == 0, err, GLMQ_E_FORMAT,
                   "'%s': quantization_embeddings is true but quantization_bit is 0", path);
    GLMQ_FAIL_IF_G(has(r, "pre_seq_len"), err, GLMQ_E_UNSUPPORTED,
                   "'%s': pre_seq_len is set: P-tuning v2 prefix checkpoints are not supported",
                   path);
    int v1 = has(r, "position_encoding_2d") || has(r, "inner_hidden_size");
    int v2 = has(r, "padded_vocab_size") || has(r, "ffn_hidden_size") || has(r, "kv_channels");
    GLMQ_FAIL_IF_G(v1 && v2, err, GLMQ_E_FORMAT,
                   "'%s': config mixes ChatGLM-6B fields (position_encoding_2d/"
                   "inner_hidden_size) with ChatGLM2 fields (padded_vocab_size/ffn_hidden_size/"
                   "kv_channels)",
                   path);
    GLMQ_FAIL_IF_G(!v1 && !v2, err, GLMQ_E_UNSUPPORTED,
                   "'%s': cannot tell the GLM architecture: expected position_encoding_2d or "
                   "inner_hidden_size (ChatGLM-6B), or padded_vocab_size, ffn_hidden_size and "
                   "kv_channels (ChatGLM2/3, GLM-4)",
                   path);
    if (v1)
        GLMQ_TRY_G(parse_v1(r, tokenizer_config, tc_len, path, out, err));
    else
        GLMQ_TRY_G(parse_v2(r, path, out, err));
    out->quant_bits = (int)qbit;
    out->quant_embeddings = qemb;
fail:
    cJSON_Delete(r);
    return st;
}

void glmq_config_set_special(glmq_config *c, int64_t n, int tiktoken)
{
    if (c->arch != GLMQ_ARCH_CHATGLM2) return;
    int64_t b = tiktoken ? n + 1 : n;
    c->tok_mask = b;
    c->tok_gmask = b + 1;
    c->tok_smask = b + 2;
    c->tok_sop = b + 3;
    c->tok_eop = b + 4;
    if (tiktoken && c->tok_eos < 0) c->tok_eos = n;
    snprintf(c->tokenizer_kind, sizeof c->tokenizer_kind, "%s",
             tiktoken ? "tiktoken" : "sentencepiece");
}

cJSON *glmq_config_to_json(const glmq_config *c)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "architecture", glmq_arch_name(c->arch));
    cJSON_AddNumberToObject(j, "hidden_size", (double)c->hidden);
    cJSON_AddNumberToObject(j, "num_layers", (double)c->n_layers);
    cJSON_AddNumberToObject(j, "num_heads", (double)c->n_heads);
    cJSON_AddNumberToObject(j, "head_dim", (double)c->head_dim);
    cJSON_AddNumberToObject(j, "num_kv_groups", (double)c->n_kv_groups);
    cJSON_AddNumberToObject(j, "ffn_hidden_size", (double)c->ffn);
    cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab);
    cJSON_AddNumberToObject(j, "seq_length", (double)c->seq_length);
    cJSON_AddNumberToObject(j, "norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(j, "rope_base", 10000.0 * c->rope_ratio);
    cJSON_AddNumberToObject(j, "rope_ratio", c->rope_ratio);
    cJSON_AddNumberToObject(j, "residual_alpha", c->alpha);
    cJSON_AddBoolToObject(j, "qkv_bias", c->qkv_bias);
    cJSON_AddBoolToObject(j, "linear_bias", c->linear_bias);
    cJSON_AddStringToObject(j, "norm", c->rmsnorm ? "rmsnorm" : "layernorm");
    cJSON_AddBoolToObject(j, "post_layer_norm", c->post_layer_norm);
    cJSON_AddBoolToObject(j, "tied_output", c->tied_output);
    cJSON_AddNumberToObject(j, "num_image_tokens", (double)c->num_image_tokens);
    cJSON_AddStringToObject(j, "tokenizer", c->tokenizer_kind);
    if (c->sandwich_norm) cJSON_AddBoolToObject(j, "sandwich_norm", 1); /* absent = 0 */
    cJSON *t = cJSON_AddObjectToObject(j, "special_tokens");
    const struct {
        const char *k;
        int64_t v;
    } toks[] = {{"mask", c->tok_mask}, {"gmask", c->tok_gmask}, {"smask", c->tok_smask},
                {"sop", c->tok_sop},   {"eop", c->tok_eop},     {"eos", c->tok_eos},
                {"pad", c->tok_pad},   {"bos", c->tok_bos}};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        cJSON_AddNumberToObject(t, toks[i].k, (double)toks[i].v);
    /* Prompt framing (decision 4): v2+ prefix [gMASK] sop; v1 suffix [gMASK] <sop>. */
    cJSON *pre = cJSON_AddArrayToObject(j, "prefix");
    cJSON *suf = cJSON_AddArrayToObject(j, "suffix");
    cJSON *dst = c->arch == GLMQ_ARCH_CHATGLM1 || c->arch == GLMQ_ARCH_GLM130B ? suf : pre;
    cJSON_AddItemToArray(dst, cJSON_CreateNumber((double)c->tok_gmask));
    cJSON_AddItemToArray(dst, cJSON_CreateNumber((double)c->tok_sop));
    return j;
}

static glmq_status jnum(const cJSON *j, const char *k, double *v, glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, k);
    GLMQ_FAIL_IF(!cJSON_IsNumber(it), err, GLMQ_E_FORMAT, "metadata config: '%s' missing", k);
    *v = it->valuedouble;
    return GLMQ_OK;
}

static glmq_status jint(const cJSON *j, const char *k, int64_t lo, int64_t hi, int64_t *v,
                        glmq_err *err)
{
    double d = 0;
    GLMQ_TRY(jnum(j, k, &d, err));
    GLMQ_FAIL_IF(d != floor(d) || d < (double)lo || d > (double)hi, err, GLMQ_E_FORMAT,
                 "metadata config: '%s' = %g out of range", k, d);
    *v = (int64_t)d;
    return GLMQ_OK;
}

static glmq_status jbool(const cJSON *j, const char *k, int *v, glmq_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, k);
    GLMQ_FAIL_IF(!cJSON_IsBool(it), err, GLMQ_E_FORMAT, "metadata config: '%s' missing", k);
    *v = cJSON_IsTrue(it);
    return GLMQ_OK;
}

glmq_status glmq_config_from_json(const cJSON *j, glmq_config *c, glmq_err *err)
{
    memset(c, 0, sizeof *c);
    GLMQ_FAIL_IF(!cJSON_IsObject(j), err, GLMQ_E_FORMAT, "metadata: 'config' is not an object");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "architecture");
    GLMQ_FAIL_IF(!cJSON_IsString(a), err, GLMQ_E_FORMAT, "metadata config: no architecture");
    if (!strcmp(a->valuestring, "chatglm"))
        c->arch = GLMQ_ARCH_CHATGLM1;
    else if (!strcmp(a->valuestring, "chatglm2"))
        c->arch = GLMQ_ARCH_CHATGLM2;
    else if (!strcmp(a->valuestring, "glm130b"))
        c->arch = GLMQ_ARCH_GLM130B;
    else
        return glmq_fail(err, GLMQ_E_UNSUPPORTED, "metadata config: unknown architecture '%s'",
                         a->valuestring);
    GLMQ_TRY(jint(j, "hidden_size", 1, MAX_HIDDEN, &c->hidden, err));
    GLMQ_TRY(jint(j, "num_layers", 1, MAX_LAYERS, &c->n_layers, err));
    GLMQ_TRY(jint(j, "num_heads", 1, MAX_HEADS, &c->n_heads, err));
    GLMQ_TRY(jint(j, "head_dim", 4, 4096, &c->head_dim, err));
    GLMQ_TRY(jint(j, "num_kv_groups", 1, MAX_HEADS, &c->n_kv_groups, err));
    GLMQ_TRY(jint(j, "ffn_hidden_size", 1, MAX_FFN, &c->ffn, err));
    GLMQ_TRY(jint(j, "vocab_size", 1, MAX_VOCAB, &c->vocab, err));
    GLMQ_TRY(jint(j, "seq_length", 1, INT64_C(1) << 40, &c->seq_length, err));
    GLMQ_TRY(jint(j, "num_image_tokens", 0, MAX_VOCAB, &c->num_image_tokens, err));
    GLMQ_TRY(jnum(j, "norm_eps", &c->norm_eps, err));
    GLMQ_TRY(jnum(j, "rope_ratio", &c->rope_ratio, err));
    GLMQ_TRY(jnum(j, "residual_alpha", &c->alpha, err));
    GLMQ_TRY(jbool(j, "qkv_bias", &c->qkv_bias, err));
    GLMQ_TRY(jbool(j, "linear_bias", &c->linear_bias, err));
    GLMQ_TRY(jbool(j, "post_layer_norm", &c->post_layer_norm, err));
    GLMQ_TRY(jbool(j, "tied_output", &c->tied_output, err));
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "norm");
    GLMQ_FAIL_IF(!cJSON_IsString(nm) || (strcmp(nm->valuestring, "rmsnorm") &&
                                         strcmp(nm->valuestring, "layernorm")),
                 err, GLMQ_E_FORMAT, "metadata config: norm must be 'rmsnorm' or 'layernorm'");
    c->rmsnorm = !strcmp(nm->valuestring, "rmsnorm");
    if (cJSON_GetObjectItemCaseSensitive(j, "sandwich_norm")) /* older packs: absent, 0 */
        GLMQ_TRY(jbool(j, "sandwich_norm", &c->sandwich_norm, err));
    GLMQ_FAIL_IF(c->sandwich_norm && c->arch != GLMQ_ARCH_CHATGLM2, err, GLMQ_E_FORMAT,
                 "metadata config: sandwich_norm needs the chatglm2 architecture");
    /* the same invariants glmq_config_parse establishes, so a crafted pack cannot get past */
    GLMQ_FAIL_IF(!(c->norm_eps > 0 && c->norm_eps <= 1) || !(c->rope_ratio >= 1e-6 &&
                                                                c->rope_ratio <= 1e12) ||
                     !(c->alpha > 0 && c->alpha < 1e6),
                 err, GLMQ_E_FORMAT, "metadata config: norm_eps, rope_ratio or residual_alpha "
                                     "out of range");
    GLMQ_FAIL_IF(c->head_dim % 4 != 0, err, GLMQ_E_FORMAT,
                 "metadata config: head_dim %lld is not a multiple of 4", (long long)c->head_dim);
    if (c->arch == GLMQ_ARCH_CHATGLM1 || c->arch == GLMQ_ARCH_GLM130B)
        GLMQ_FAIL_IF(c->hidden != c->n_heads * c->head_dim || c->n_kv_groups != c->n_heads ||
                         c->rmsnorm,
                     err, GLMQ_E_FORMAT,
                     "metadata config: a chatglm model needs hidden = heads x head_dim, one KV "
                     "group per head and layernorm");
    else
        GLMQ_FAIL_IF(!c->rmsnorm, err, GLMQ_E_FORMAT, "metadata config: chatglm2 needs rmsnorm");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "tokenizer");
    GLMQ_FAIL_IF(!cJSON_IsString(tk), err, GLMQ_E_FORMAT, "metadata config: no tokenizer");
    snprintf(c->tokenizer_kind, sizeof c->tokenizer_kind, "%s", tk->valuestring);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    GLMQ_FAIL_IF(!cJSON_IsObject(t), err, GLMQ_E_FORMAT, "metadata config: no special_tokens");
    GLMQ_TRY(jint(t, "mask", -1, MAX_VOCAB, &c->tok_mask, err));
    GLMQ_TRY(jint(t, "gmask", -1, MAX_VOCAB, &c->tok_gmask, err));
    GLMQ_TRY(jint(t, "smask", -1, MAX_VOCAB, &c->tok_smask, err));
    GLMQ_TRY(jint(t, "sop", -1, MAX_VOCAB, &c->tok_sop, err));
    GLMQ_TRY(jint(t, "eop", -1, MAX_VOCAB, &c->tok_eop, err));
    GLMQ_TRY(jint(t, "eos", -1, MAX_VOCAB, &c->tok_eos, err));
    GLMQ_TRY(jint(t, "pad", -1, MAX_VOCAB, &c->tok_pad, err));
    GLMQ_TRY(jint(t, "bos", -1, MAX_VOCAB, &c->tok_bos, err));
    GLMQ_FAIL_IF(c->n_heads % c->n_kv_groups != 0, err, GLMQ_E_FORMAT,
                 "metadata config: inconsistent head counts");
    return GLMQ_OK;
}

/* GLM-130B (formats/GLM130B.md "Hyper-parameters"): SAT's model_config.json, or the release's
 * constants from configs/model_glm_130b.sh when the directory has none. */
#define GLM130B_HIDDEN 12288
#define GLM130B_HEADS 96
#define GLM130B_VOCAB 150528
#define GLM130B_FFN 32768
#define GLM130B_ICETK_MASK 150000 /* icetk: [MASK] [gMASK] [sMASK] eod sop eop from 150000 */

glmq_status glmq_config_parse_sat(const char *json, size_t len, const char *path,
                                  const glmq_config *shapes, glmq_config *c, int64_t *mp,
                                  glmq_err *err)
{
    memset(c, 0, sizeof *c);
    *mp = 0;
    c->arch = GLMQ_ARCH_GLM130B;
    c->post_layer_norm = 1;
    c->tok_mask = c->tok_gmask = c->tok_sop = c->tok_eop = -1;
    glmq_status st = GLMQ_OK;
    cJSON *r = NULL;
    if (!json) {
        GLMQ_FAIL_IF(shapes->hidden != GLM130B_HIDDEN || shapes->vocab != GLM130B_VOCAB ||
                         shapes->ffn != GLM130B_FFN,
                     err, GLMQ_E_UNSUPPORTED,
                     "'%s': no model_config.json, and the shapes (hidden %lld, vocab %lld, GeGLU "
                     "width %lld) are not GLM-130B's (12288, 150528, 32768): the number of "
                     "attention heads cannot be read from the shapes; write model_config.json "
                     "with SAT's argument names (num_layers, hidden_size, num_attention_heads, "
                     "vocab_size, inner_hidden_size, model_parallel_size)",
                     path, (long long)shapes->hidden, (long long)shapes->vocab,
                     (long long)shapes->ffn);
        c->hidden = GLM130B_HIDDEN;
        c->n_heads = GLM130B_HEADS;
        c->vocab = GLM130B_VOCAB;
        c->ffn = GLM130B_FFN;
        c->n_layers = shapes->n_layers;
        c->seq_length = 2048;
        c->norm_eps = 1e-5;
    } else {
        r = cJSON_ParseWithLength(json, len);
        GLMQ_FAIL_IF_G(!r || !cJSON_IsObject(r), err, GLMQ_E_FORMAT, "'%s': not a JSON object",
                       path);
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(r, "model_class");
        GLMQ_FAIL_IF_G(cJSON_IsString(mc) && strcmp(mc->valuestring, "GLM130B") != 0, err,
                       GLMQ_E_UNSUPPORTED,
                       "'%s': model_class '%s': glmq reads SAT checkpoints of GLM-130B only", path,
                       mc->valuestring);
        int pe2d = 0, noglu = 0, finalln = 0;
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(r, "layernorm_order");
        GLMQ_FAIL_IF_G(lo && !cJSON_IsNull(lo) &&
                           (!cJSON_IsString(lo) || strcmp(lo->valuestring, "post") != 0),
                       err, GLMQ_E_UNSUPPORTED,
                       "'%s': layernorm_order must be \"post\" (GLM-130B's DeepNorm layer)", path);
        GLMQ_TRY_G(get_int(r, "hidden_size", 1, 0, 1, MAX_HIDDEN, &c->hidden, path, err));
        GLMQ_TRY_G(get_int(r, "num_layers", 1, 0, 1, MAX_LAYERS, &c->n_layers, path, err));
        GLMQ_TRY_G(get_int(r, "num_attention_heads", 1, 0, 1, MAX_HEADS, &c->n_heads, path, err));
        GLMQ_TRY_G(get_int(r, "vocab_size", 1, 0, 1, MAX_VOCAB, &c->vocab, path, err));
        /* DeepNormWithGLUMixin's default width: 4h * 2 / 3 */
        GLMQ_TRY_G(get_int(r, "inner_hidden_size", 0, 4 * c->hidden * 2 / 3, 1, MAX_FFN, &c->ffn,
                           path, err));
        GLMQ_TRY_G(get_int(r, "max_sequence_length", 0, 2048, 1, INT32_MAX, &c->seq_length, path,
                           err));
        GLMQ_TRY_G(get_int(r, "model_parallel_size", 0, 0, 1, 4096, mp, path, err));
        GLMQ_TRY_G(get_double(r, "layernorm_epsilon", 1e-5, 0, 1, &c->norm_eps, path, err));
        GLMQ_TRY_G(get_bool(r, "position_encoding_2d", 0, &pe2d, path, err));
        GLMQ_TRY_G(get_bool(r, "no_glu", 0, &noglu, path, err));
        GLMQ_TRY_G(get_bool(r, "use_final_layernorm", 1, &finalln, path, err));
        GLMQ_FAIL_IF_G(pe2d, err, GLMQ_E_UNSUPPORTED,
                       "'%s': position_encoding_2d = true: GLM-130B uses 1-D RoPE; a 2-D SAT "
                       "model is not supported",
                       path);
        GLMQ_FAIL_IF_G(noglu, err, GLMQ_E_UNSUPPORTED,
                       "'%s': no_glu = true: GLM-130B's MLP is GeGLU; a plain-GELU SAT model is "
                       "not supported",
                       path);
        c->post_layer_norm = finalln;
        GLMQ_TRY_G(get_token(r, "mask_token_id", &c->tok_mask, path, err));
        GLMQ_TRY_G(get_token(r, "gmask_token_id", &c->tok_gmask, path, err));
        GLMQ_TRY_G(get_token(r, "sop_token_id", &c->tok_sop, path, err));
        GLMQ_TRY_G(get_token(r, "eop_token_id", &c->tok_eop, path, err));
    }
    GLMQ_FAIL_IF_G(c->hidden % c->n_heads != 0, err, GLMQ_E_FORMAT,
                   "'%s': num_attention_heads %lld does not divide hidden_size %lld", path,
                   (long long)c->n_heads, (long long)c->hidden);
    c->head_dim = c->hidden / c->n_heads;
    GLMQ_FAIL_IF_G(c->head_dim % 4 != 0, err, GLMQ_E_FORMAT,
                   "'%s': head dim %lld is not a multiple of 4", path, (long long)c->head_dim);
    if (c->tok_sop < 0 && c->vocab == GLM130B_VOCAB) { /* the icetk numbering */
        c->tok_mask = GLM130B_ICETK_MASK;
        c->tok_gmask = GLM130B_ICETK_MASK + 1;
        c->tok_sop = GLM130B_ICETK_MASK + 4;
        c->tok_eop = GLM130B_ICETK_MASK + 5;
    }
    GLMQ_FAIL_IF_G(c->tok_sop < 0 || (c->tok_mask < 0 && c->tok_gmask < 0), err, GLMQ_E_FORMAT,
                   "'%s': vocab_size %lld is not icetk's 150528, so the [MASK]/[gMASK]/sop ids "
                   "are unknown: give mask_token_id, gmask_token_id, sop_token_id and "
                   "eop_token_id",
                   path, (long long)c->vocab);
    GLMQ_FAIL_IF_G(c->tok_mask >= c->vocab || c->tok_gmask >= c->vocab ||
                       c->tok_sop >= c->vocab || c->tok_eop >= c->vocab,
                   err, GLMQ_E_FORMAT, "'%s': a special token id is outside vocab_size %lld",
                   path, (long long)c->vocab);
    c->tok_smask = c->tok_mask >= 0 ? c->tok_mask + 2 : -1;
    c->tok_eos = c->tok_eop;
    c->tok_bos = c->tok_sop;
    c->tok_pad = -1;
    c->n_kv_groups = c->n_heads;
    c->rope_ratio = 1.0;
    c->alpha = sqrt(2.0 * (double)c->n_layers); /* DeepNormWithGLUMixin: (2 * num_layers)^0.5 */
    c->qkv_bias = 1;
    c->linear_bias = 1;
    c->rmsnorm = 0;
    c->tied_output = 1;
    c->num_image_tokens = 0;
    snprintf(c->tokenizer_kind, sizeof c->tokenizer_kind, "none");
fail:
    cJSON_Delete(r);
    return st;
}
