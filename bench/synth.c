/*
 * synth.c - glmq_synth: write a synthetic GLM-family checkpoint with random weights at the real
 * shapes, for benchmarks (its output is never committed).
 *
 *   glmq_synth --arch chatglm2-6b|chatglm3-6b|glm-4-9b|glm-4-9b-chat|glm-4-9b-chat-1m|chatglm-6b
 *              [--layers N] [--dtype f16|bf16|f32] [--shards K] [--seed S]
 *              [--format safetensors] [--fsync] [--discard] [--force] -o DIR
 *
 * DIR receives config.json (the upstream fields and values, embedded below so the tool needs no
 * network or the shared/ folder; `num_layers`/`num_hidden_layers` follow --layers and `torch_dtype`
 * follows --dtype), tokenizer_config.json for chatglm-6b only (it carries `num_image_tokens`,
 * which fixes the v1 id offset, GLM-SPEC A.1; no tokenizer model is written), and the weights:
 * `model.safetensors`, or K shards `model-0000k-of-0000K.safetensors` plus
 * `model.safetensors.index.json` (GLM-SPEC D.1, D.5).
 *
 * Tensors are exactly those of GLM-SPEC A.3 (v1), B.2 (v2/v3) and C.2 (GLM-4), in the order of
 * those tables, in one dtype. Values: 2-D weights and embeddings ~ N(0, 0.02), norm weights
 * ~ N(1, 0.02), biases ~ N(0, 0.01), inv_freq buffers the exact 1/10000^(2i/64); v1 `lm_head`
 * repeats the embedding's values (tied, as upstream).
 *
 * Speed: every element is one 16-bit lane of a counter-based splitmix64 word, looked up in a
 * 65536-entry table of normal quantiles already encoded in the output dtype (little-endian
 * bytes). Element e of a tensor depends only on (seed, tensor, e), so the output is
 * deterministic whatever the buffering or sharding, and the generator runs at several GB/s.
 * A writer thread writes one 32 MiB buffer while the main thread fills the other.
 *
 * Invariants of the written files: the header length N is a multiple of 8 (space padded), the
 * tensors tile the data section in header order with no gaps, and 8 + N + data == file size.
 * Every error is "glmq_synth: error: <msg>" and exit status 1.
 */
#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// --- upstream config.json files (GLM-SPEC A.2, B.1, C.1; values copied verbatim) -------------

static const char cfg_chatglm_6b[] =
    "{\"_name_or_path\": \"THUDM/chatglm-6b\", \"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\"}, "
    "\"bos_token_id\": 130004, \"eos_token_id\": 130005, \"mask_token_id\": 130000, "
    "\"gmask_token_id\": 130001, \"pad_token_id\": 3, \"hidden_size\": 4096, "
    "\"inner_hidden_size\": 16384, \"layernorm_epsilon\": 1e-05, \"max_sequence_length\": 2048, "
    "\"model_type\": \"chatglm\", \"num_attention_heads\": 32, \"num_layers\": 28, "
    "\"position_encoding_2d\": true, \"torch_dtype\": \"float16\", "
    "\"transformers_version\": \"4.23.1\", \"use_cache\": true, \"vocab_size\": 130528}";

static const char cfg_chatglm2_6b[] =
    "{\"_name_or_path\": \"THUDM/chatglm2-6b\", \"model_type\": \"chatglm\", "
    "\"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"}, "
    "\"add_bias_linear\": false, \"add_qkv_bias\": true, \"apply_query_key_layer_scaling\": true, "
    "\"apply_residual_connection_post_layernorm\": false, \"attention_dropout\": 0.0, "
    "\"attention_softmax_in_fp32\": true, \"bias_dropout_fusion\": true, "
    "\"ffn_hidden_size\": 13696, \"fp32_residual_connection\": false, \"hidden_dropout\": 0.0, "
    "\"hidden_size\": 4096, \"kv_channels\": 128, \"layernorm_epsilon\": 1e-05, "
    "\"multi_query_attention\": true, \"multi_query_group_num\": 2, \"num_attention_heads\": 32, "
    "\"num_layers\": 28, \"original_rope\": true, \"padded_vocab_size\": 65024, "
    "\"post_layer_norm\": true, \"rmsnorm\": true, \"seq_length\": 32768, \"use_cache\": true, "
    "\"torch_dtype\": \"float16\", \"transformers_version\": \"4.27.1\", "
    "\"tie_word_embeddings\": false, \"eos_token_id\": 2, \"pad_token_id\": 0}";

static const char cfg_chatglm3_6b[] =
    "{\"_name_or_path\": \"THUDM/chatglm3-6b\", \"model_type\": \"chatglm\", "
    "\"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"}, "
    "\"add_bias_linear\": false, \"add_qkv_bias\": true, \"apply_query_key_layer_scaling\": true, "
    "\"apply_residual_connection_post_layernorm\": false, \"attention_dropout\": 0.0, "
    "\"attention_softmax_in_fp32\": true, \"bias_dropout_fusion\": true, "
    "\"ffn_hidden_size\": 13696, \"fp32_residual_connection\": false, \"hidden_dropout\": 0.0, "
    "\"hidden_size\": 4096, \"kv_channels\": 128, \"layernorm_epsilon\": 1e-05, "
    "\"multi_query_attention\": true, \"multi_query_group_num\": 2, \"num_attention_heads\": 32, "
    "\"num_layers\": 28, \"original_rope\": true, \"padded_vocab_size\": 65024, "
    "\"post_layer_norm\": true, \"rmsnorm\": true, \"seq_length\": 8192, \"use_cache\": true, "
    "\"torch_dtype\": \"float16\", \"transformers_version\": \"4.30.2\", "
    "\"tie_word_embeddings\": false, \"eos_token_id\": 2, \"pad_token_id\": 0}";

static const char cfg_glm_4_9b[] =
    "{\"_name_or_path\": \"THUDM/glm-4-9b\", \"model_type\": \"chatglm\", "
    "\"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"}, "
    "\"add_bias_linear\": false, \"add_qkv_bias\": true, \"apply_query_key_layer_scaling\": true, "
    "\"apply_residual_connection_post_layernorm\": false, \"attention_dropout\": 0.0, "
    "\"attention_softmax_in_fp32\": true, \"attn_implementation\": \"sdpa\", "
    "\"bias_dropout_fusion\": true, \"ffn_hidden_size\": 13696, "
    "\"fp32_residual_connection\": false, \"hidden_dropout\": 0.0, \"hidden_size\": 4096, "
    "\"kv_channels\": 128, \"layernorm_epsilon\": 0.00000015625, \"multi_query_attention\": true, "
    "\"multi_query_group_num\": 2, \"num_attention_heads\": 32, \"num_layers\": 40, "
    "\"original_rope\": true, \"padded_vocab_size\": 151552, \"post_layer_norm\": true, "
    "\"rmsnorm\": true, \"seq_length\": 8192, \"use_cache\": true, \"torch_dtype\": \"bfloat16\", "
    "\"transformers_version\": \"4.44.0\", \"tie_word_embeddings\": false, "
    "\"eos_token_id\": [151329, 151336, 151338], \"pad_token_id\": 151329}";

static const char cfg_glm_4_9b_chat[] =
    "{\"_name_or_path\": \"THUDM/glm-4-9b-chat\", \"model_type\": \"chatglm\", "
    "\"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"}, "
    "\"add_bias_linear\": false, \"add_qkv_bias\": true, \"apply_query_key_layer_scaling\": true, "
    "\"apply_residual_connection_post_layernorm\": false, \"attention_dropout\": 0.0, "
    "\"attention_softmax_in_fp32\": true, \"attn_implementation\": \"sdpa\", "
    "\"bias_dropout_fusion\": true, \"ffn_hidden_size\": 13696, "
    "\"fp32_residual_connection\": false, \"hidden_dropout\": 0.0, \"hidden_size\": 4096, "
    "\"kv_channels\": 128, \"layernorm_epsilon\": 1.5625e-07, \"multi_query_attention\": true, "
    "\"multi_query_group_num\": 2, \"num_attention_heads\": 32, \"num_hidden_layers\": 40, "
    "\"num_layers\": 40, \"rope_ratio\": 500, \"original_rope\": true, "
    "\"padded_vocab_size\": 151552, \"post_layer_norm\": true, \"rmsnorm\": true, "
    "\"seq_length\": 131072, \"use_cache\": true, \"torch_dtype\": \"bfloat16\", "
    "\"transformers_version\": \"4.44.0\", \"tie_word_embeddings\": false, "
    "\"eos_token_id\": [151329, 151336, 151338], \"pad_token_id\": 151329}";

static const char cfg_glm_4_9b_chat_1m[] =
    "{\"_name_or_path\": \"THUDM/glm-4-9b-chat-1m\", \"model_type\": \"chatglm\", "
    "\"architectures\": [\"ChatGLMModel\"], "
    "\"auto_map\": {\"AutoConfig\": \"configuration_chatglm.ChatGLMConfig\", "
    "\"AutoModel\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForCausalLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSeq2SeqLM\": \"modeling_chatglm.ChatGLMForConditionalGeneration\", "
    "\"AutoModelForSequenceClassification\": "
    "\"modeling_chatglm.ChatGLMForSequenceClassification\"}, "
    "\"add_bias_linear\": false, \"add_qkv_bias\": true, \"apply_query_key_layer_scaling\": true, "
    "\"apply_residual_connection_post_layernorm\": false, \"attention_dropout\": 0.0, "
    "\"attention_softmax_in_fp32\": true, \"attn_implementation\": \"sdpa\", "
    "\"bias_dropout_fusion\": true, \"ffn_hidden_size\": 13696, "
    "\"fp32_residual_connection\": false, \"hidden_dropout\": 0.0, \"hidden_size\": 4096, "
    "\"kv_channels\": 128, \"layernorm_epsilon\": 1.5625e-07, \"multi_query_attention\": true, "
    "\"multi_query_group_num\": 4, \"num_attention_heads\": 32, \"num_hidden_layers\": 40, "
    "\"num_layers\": 40, \"rope_ratio\": 10000, \"original_rope\": true, "
    "\"padded_vocab_size\": 151552, \"post_layer_norm\": true, \"rmsnorm\": true, "
    "\"seq_length\": 1048576, \"use_cache\": true, \"torch_dtype\": \"bfloat16\", "
    "\"transformers_version\": \"4.44.0\", \"tie_word_embeddings\": false, "
    "\"eos_token_id\": [151329, 151336, 151338], \"pad_token_id\": 151329}";

static const char tok_chatglm_6b[] =
    "{\"name_or_path\": \"THUDM/chatglm-6b\", \"bos_token\": \"<sop>\", \"eos_token\": \"<eop>\", "
    "\"end_token\": \"</s>\", \"gmask_token\": \"[gMASK]\", \"mask_token\": \"[MASK]\", "
    "\"pad_token\": \"<pad>\", \"unk_token\": \"<unk>\", \"remove_space\": false, "
    "\"do_lower_case\": false, \"tokenizer_class\": \"ChatGLMTokenizer\", "
    "\"num_image_tokens\": 0, "
    "\"auto_map\": {\"AutoTokenizer\": [\"tokenization_chatglm.ChatGLMTokenizer\", null]}}";

// --- architectures ------------------------------------------------------------------------

typedef enum { DT_F16 = 0, DT_BF16, DT_F32, DT_COUNT } sdtype;

static const struct {
    const char *opt;   /* --dtype spelling */
    const char *st;    /* safetensors dtype string (D.2) */
    const char *torch; /* config.json torch_dtype */
    size_t size;       /* bytes per element */
} dtypes[DT_COUNT] = {
    {"f16", "F16", "float16", 2},
    {"bf16", "BF16", "bfloat16", 2},
    {"f32", "F32", "float32", 4},
};

typedef struct {
    const char *name;
    int v1;            /* 1: ChatGLM-6B layout (A.3); 0: ChatGLM2/3, GLM-4 layout (B.2, C.2) */
    int64_t hidden;    /* h */
    int64_t layers;    /* L */
    int64_t heads;     /* n */
    int64_t head_dim;  /* d */
    int64_t kv_groups; /* g (v2 only) */
    int64_t ffn;       /* F */
    int64_t vocab;     /* V */
    sdtype native;     /* dtype of the released checkpoint */
    const char *config;
    const char *tokenizer_config; /* NULL: none written */
} arch_desc;

static const arch_desc arches[] = {
    {"chatglm-6b", 1, 4096, 28, 32, 128, 32, 16384, 130528, DT_F16, cfg_chatglm_6b, tok_chatglm_6b},
    {"chatglm2-6b", 0, 4096, 28, 32, 128, 2, 13696, 65024, DT_F16, cfg_chatglm2_6b, NULL},
    {"chatglm3-6b", 0, 4096, 28, 32, 128, 2, 13696, 65024, DT_F16, cfg_chatglm3_6b, NULL},
    {"glm-4-9b", 0, 4096, 40, 32, 128, 2, 13696, 151552, DT_BF16, cfg_glm_4_9b, NULL},
    {"glm-4-9b-chat", 0, 4096, 40, 32, 128, 2, 13696, 151552, DT_BF16, cfg_glm_4_9b_chat, NULL},
    {"glm-4-9b-chat-1m", 0, 4096, 40, 32, 128, 4, 13696, 151552, DT_BF16, cfg_glm_4_9b_chat_1m,
     NULL},
};
#define N_ARCHES (sizeof arches / sizeof arches[0])

// --- the tensor list ----------------------------------------------------------------------

/* How a tensor's values are drawn. The first three have a quantile table each. */
typedef enum { K_WEIGHT = 0, K_NORM, K_BIAS, K_INVFREQ } vkind;
#define N_TABLES 3
static const double kind_mean[N_TABLES] = {0.0, 1.0, 0.0};
static const double kind_sd[N_TABLES] = {0.02, 0.02, 0.01};

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    vkind kind;
    uint64_t stream; /* RNG stream: the tensor's index (v1 lm_head reuses the embedding's) */
    uint64_t nelem;
    uint64_t nbytes;
    int shard;      /* 0-based shard index */
    uint64_t begin; /* data_offsets[0] within its shard */
} tensor;

typedef struct {
    tensor *t;
    int64_t n, cap;
    sdtype dt;
} model;

static glmq_status add_tensor(model *m, vkind k, int64_t d0, int64_t d1, glmq_err *err,
                              const char *fmt, ...) GLMQ_PRINTF(6, 7);

/* Append one tensor; d1 == 0 means a 1-D tensor [d0]. */
static glmq_status add_tensor(model *m, vkind k, int64_t d0, int64_t d1, glmq_err *err,
                              const char *fmt, ...)
{
    GLMQ_FAIL_IF(m->n == m->cap, err, GLMQ_E_INTERNAL, "tensor list overflow");
    tensor *t = &m->t[m->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    GLMQ_FAIL_IF(len < 0 || (size_t)len >= sizeof t->name, err, GLMQ_E_INTERNAL,
                 "tensor name too long");
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->kind = k;
    t->stream = (uint64_t)m->n;
    t->nelem = (uint64_t)d0 * (uint64_t)(d1 ? d1 : 1);
    t->nbytes = t->nelem * dtypes[m->dt].size;
    m->n++;
    return GLMQ_OK;
}

/* GLM-SPEC A.3: ChatGLM-6B, LayerNorm with biases, fused QKV [3h, h], per-layer inv_freq. */
static glmq_status build_v1(const arch_desc *a, int64_t L, model *m, glmq_err *err)
{
    const int64_t h = a->hidden, F = a->ffn, V = a->vocab, nf = a->head_dim / 4;
    const char *p = "transformer.layers";
    GLMQ_TRY(add_tensor(m, K_WEIGHT, V, h, err, "transformer.word_embeddings.weight"));
    for (int64_t i = 0; i < L; i++) {
        GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "%s.%" PRId64 ".input_layernorm.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, h, 0, err, "%s.%" PRId64 ".input_layernorm.bias", p, i));
        GLMQ_TRY(add_tensor(m, K_WEIGHT, 3 * h, h, err,
                            "%s.%" PRId64 ".attention.query_key_value.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, 3 * h, 0, err,
                            "%s.%" PRId64 ".attention.query_key_value.bias", p, i));
        GLMQ_TRY(add_tensor(m, K_INVFREQ, nf, 0, err,
                            "%s.%" PRId64 ".attention.rotary_emb.inv_freq", p, i));
        GLMQ_TRY(add_tensor(m, K_WEIGHT, h, h, err, "%s.%" PRId64 ".attention.dense.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, h, 0, err, "%s.%" PRId64 ".attention.dense.bias", p, i));
        GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "%s.%" PRId64 ".post_attention_layernorm.weight",
                            p, i));
        GLMQ_TRY(
            add_tensor(m, K_BIAS, h, 0, err, "%s.%" PRId64 ".post_attention_layernorm.bias", p, i));
        GLMQ_TRY(
            add_tensor(m, K_WEIGHT, F, h, err, "%s.%" PRId64 ".mlp.dense_h_to_4h.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, F, 0, err, "%s.%" PRId64 ".mlp.dense_h_to_4h.bias", p, i));
        GLMQ_TRY(
            add_tensor(m, K_WEIGHT, h, F, err, "%s.%" PRId64 ".mlp.dense_4h_to_h.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, h, 0, err, "%s.%" PRId64 ".mlp.dense_4h_to_h.bias", p, i));
    }
    GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "transformer.final_layernorm.weight"));
    GLMQ_TRY(add_tensor(m, K_BIAS, h, 0, err, "transformer.final_layernorm.bias"));
    GLMQ_TRY(add_tensor(m, K_WEIGHT, V, h, err, "lm_head.weight"));
    m->t[m->n - 1].stream = m->t[0].stream; /* tied to the embedding, as upstream (A.3) */
    return GLMQ_OK;
}

/* GLM-SPEC B.2 / C.2: RMSNorm, grouped-KV fused QKV [n·d + 2·g·d, h], SwiGLU [2F, h]. */
static glmq_status build_v2(const arch_desc *a, int64_t L, model *m, glmq_err *err)
{
    const int64_t h = a->hidden, F = a->ffn, V = a->vocab, d = a->head_dim;
    const int64_t qkv = a->heads * d + 2 * a->kv_groups * d;
    const char *p = "transformer.encoder.layers";
    GLMQ_TRY(add_tensor(m, K_WEIGHT, V, h, err, "transformer.embedding.word_embeddings.weight"));
    GLMQ_TRY(add_tensor(m, K_INVFREQ, d / 4, 0, err, "transformer.rotary_pos_emb.inv_freq"));
    for (int64_t i = 0; i < L; i++) {
        GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "%s.%" PRId64 ".input_layernorm.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_WEIGHT, qkv, h, err,
                            "%s.%" PRId64 ".self_attention.query_key_value.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_BIAS, qkv, 0, err,
                            "%s.%" PRId64 ".self_attention.query_key_value.bias", p, i));
        GLMQ_TRY(add_tensor(m, K_WEIGHT, h, a->heads * d, err,
                            "%s.%" PRId64 ".self_attention.dense.weight", p, i));
        GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "%s.%" PRId64 ".post_attention_layernorm.weight",
                            p, i));
        GLMQ_TRY(add_tensor(m, K_WEIGHT, 2 * F, h, err, "%s.%" PRId64 ".mlp.dense_h_to_4h.weight",
                            p, i));
        GLMQ_TRY(
            add_tensor(m, K_WEIGHT, h, F, err, "%s.%" PRId64 ".mlp.dense_4h_to_h.weight", p, i));
    }
    GLMQ_TRY(add_tensor(m, K_NORM, h, 0, err, "transformer.encoder.final_layernorm.weight"));
    GLMQ_TRY(add_tensor(m, K_WEIGHT, V, h, err, "transformer.output_layer.weight"));
    return GLMQ_OK;
}

/*
 * Assign tensors to K shards, splitting at tensor boundaries near multiples of total/K: a tensor
 * opens the next shard when its midpoint passes the current boundary, or when exactly one tensor
 * per remaining shard is left (so no shard is empty). Fills t->shard and t->begin.
 */
static void plan_shards(model *m, int K, uint64_t total)
{
    uint64_t cum = 0, off = 0;
    int k = 0, in_shard = 0;
    for (int64_t i = 0; i < m->n; i++) {
        tensor *t = &m->t[i];
        if (k < K - 1 && in_shard > 0) {
            double bound = (double)total * (double)(k + 1) / (double)K;
            int must = (m->n - i) == (int64_t)(K - 1 - k);
            if (must || (double)cum + (double)t->nbytes / 2.0 > bound) {
                k++;
                off = 0;
                in_shard = 0;
            }
        }
        t->shard = k;
        t->begin = off;
        off += t->nbytes;
        cum += t->nbytes;
        in_shard++;
    }
}

// --- value generation ---------------------------------------------------------------------

#define SM_GAMMA 0x9e3779b97f4a7c15ull

/* splitmix64 finalizer: a bijective 64-bit mix. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Per-tensor key; element e uses lane e%4 (16 bits) of mix64(key + (e/4)·GAMMA). */
static uint64_t stream_key(uint64_t seed, uint64_t stream)
{
    return mix64(mix64(seed ^ 0x632be59bd9b4e019ull) + (stream + 1) * SM_GAMMA);
}

/* Inverse standard normal CDF, P. J. Acklam's rational approximation (|rel err| < 1.2e-9).
 * Symmetric: q(1-p) == -q(p) for the dyadic p used here. */
static double norm_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double plow = 0.02425;
    if (p < plow) {
        double q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - plow) {
        double q = sqrt(-2 * log(1 - p));
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/* Store f in dtype dt as little-endian bytes at out (round to nearest even; no NaN arrives). */
static void encode(sdtype dt, float f, uint8_t *out)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    switch (dt) {
    case DT_F16: glmq_wr_le16(out, glmq_f32_to_f16(f)); break;
    case DT_BF16: glmq_wr_le16(out, (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)); break;
    default: glmq_wr_le32(out, u); break;
    }
}

/* tab[i] = enc(mean + sd * Phi^-1((i + 0.5) / 65536)), i < 65536: the equiprobable quantiles
 * of N(mean, sd^2), truncated at about 4.2 sd. */
static uint8_t *build_table(sdtype dt, double mean, double sd)
{
    size_t es = dtypes[dt].size;
    uint8_t *tab = malloc(65536 * es);
    if (!tab) return NULL;
    for (uint32_t i = 0; i < 65536; i++)
        encode(dt, (float)(mean + sd * norm_quantile((i + 0.5) / 65536.0)), tab + i * es);
    return tab;
}

/* Elements [e0, e0+n) of the stream `key` into out (es bytes each); es is a constant after
 * inlining, so each memcpy is one load and one store. */
static inline void fill_es(uint8_t *out, const uint8_t *tab, size_t es, uint64_t key, uint64_t e0,
                           uint64_t n)
{
    uint64_t e = e0, end = e0 + n;
    for (; e < end && (e & 3); e++, out += es) { /* head: up to the next 4-element word */
        uint64_t w = mix64(key + (e >> 2) * SM_GAMMA);
        memcpy(out, tab + ((w >> (16 * (e & 3))) & 0xffff) * es, es);
    }
    for (; end - e >= 4; e += 4, out += 4 * es) { /* body: one word -> four elements */
        uint64_t w = mix64(key + (e >> 2) * SM_GAMMA);
        memcpy(out, tab + (w & 0xffff) * es, es);
        memcpy(out + es, tab + ((w >> 16) & 0xffff) * es, es);
        memcpy(out + 2 * es, tab + ((w >> 32) & 0xffff) * es, es);
        memcpy(out + 3 * es, tab + (w >> 48) * es, es);
    }
    for (; e < end; e++, out += es) { /* tail */
        uint64_t w = mix64(key + (e >> 2) * SM_GAMMA);
        memcpy(out, tab + ((w >> (16 * (e & 3))) & 0xffff) * es, es);
    }
}

static void fill(uint8_t *out, const uint8_t *tab, size_t es, uint64_t key, uint64_t e0, uint64_t n)
{
    if (es == 2)
        fill_es(out, tab, 2, key, e0, n);
    else
        fill_es(out, tab, 4, key, e0, n);
}

// --- double-buffered writer thread ----------------------------------------------------------

#define WBUF_SIZE ((size_t)32 << 20)

typedef struct {
    uint8_t *data;
    size_t len;
    int fd;   /* -1: discard (--discard) */
    int full; /* handed to the writer, not yet written */
} wbuf;

/*
 * The producer fills buf[cur] and submits it; the writer thread writes buffers in submission
 * order (0, 1, 0, ...). An I/O error is sticky (Redis rio style): later buffers are dropped and
 * the producer sees `failed` at its next submit or drain.
 */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    wbuf buf[2];
    int cur;  /* producer's buffer */
    int next; /* writer's next buffer */
    int quit;
    int failed;
    char msg[256];
    const char *path; /* file being written, for messages (stable while its buffers are full) */
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wbuf *b = &w->buf[w->next];
        while (!b->full && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (!b->full) break;
        int failed = w->failed;
        const char *path = w->path;
        pthread_mutex_unlock(&w->mu);
        size_t done = 0;
        int eno = 0;
        while (!failed && b->fd >= 0 && done < b->len) {
            ssize_t r = write(b->fd, b->data + done, b->len - done);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                eno = r < 0 ? errno : ENOSPC;
                break;
            }
            done += (size_t)r;
        }
        pthread_mutex_lock(&w->mu);
        if (eno && !w->failed) {
            char ebuf[128] = "unknown error";
            (void)strerror_r(eno, ebuf, sizeof ebuf);
            snprintf(w->msg, sizeof w->msg, "write '%s': %s", path, ebuf);
            w->failed = 1;
        }
        b->full = 0;
        b->len = 0;
        w->next ^= 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hand buf[cur] to the writer and wait until the other buffer is free. */
static glmq_status writer_submit(writer *w, glmq_err *err)
{
    pthread_mutex_lock(&w->mu);
    w->buf[w->cur].full = 1;
    pthread_cond_broadcast(&w->cv);
    w->cur ^= 1;
    while (w->buf[w->cur].full) pthread_cond_wait(&w->cv, &w->mu);
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    GLMQ_FAIL_IF(failed, err, GLMQ_E_IO, "%s", w->msg);
    return GLMQ_OK;
}

/* Submit any partial buffer and wait until everything submitted is written. */
static glmq_status writer_drain(writer *w, glmq_err *err)
{
    if (w->buf[w->cur].len > 0) GLMQ_TRY(writer_submit(w, err));
    pthread_mutex_lock(&w->mu);
    while (w->buf[0].full || w->buf[1].full) pthread_cond_wait(&w->cv, &w->mu);
    int failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    GLMQ_FAIL_IF(failed, err, GLMQ_E_IO, "%s", w->msg);
    return GLMQ_OK;
}

/* Switch the output file; only valid after writer_drain (no full buffer refers to the old fd). */
static void writer_set_file(writer *w, int fd, const char *path)
{
    pthread_mutex_lock(&w->mu);
    w->buf[0].fd = w->buf[1].fd = fd;
    w->path = path;
    pthread_mutex_unlock(&w->mu);
}

static glmq_status writer_bytes(writer *w, const void *src, size_t n, glmq_err *err)
{
    const uint8_t *s = src;
    while (n > 0) {
        wbuf *b = &w->buf[w->cur];
        size_t k = WBUF_SIZE - b->len < n ? WBUF_SIZE - b->len : n;
        memcpy(b->data + b->len, s, k);
        b->len += k;
        s += k;
        n -= k;
        if (b->len == WBUF_SIZE) GLMQ_TRY(writer_submit(w, err));
    }
    return GLMQ_OK;
}

/* Generate tensor t straight into the buffers. Tensor data starts at a multiple of 8 in the file
 * and WBUF_SIZE is a multiple of 4, so no element straddles two buffers. */
static glmq_status writer_tensor(writer *w, const tensor *t, sdtype dt, uint8_t *const *tabs,
                                 uint64_t seed, glmq_err *err)
{
    const size_t es = dtypes[dt].size;
    if (t->kind == K_INVFREQ) { /* 1/10000^(2i/64), the buffer upstream stores */
        uint8_t tmp[4];
        for (uint64_t i = 0; i < t->nelem; i++) {
            encode(dt, (float)(1.0 / pow(10000.0, (double)(2 * i) / 64.0)), tmp);
            GLMQ_TRY(writer_bytes(w, tmp, es, err));
        }
        return GLMQ_OK;
    }
    const uint8_t *tab = tabs[t->kind];
    const uint64_t key = stream_key(seed, t->stream);
    uint64_t e = 0;
    while (e < t->nelem) {
        wbuf *b = &w->buf[w->cur];
        uint64_t room = (WBUF_SIZE - b->len) / es, k = t->nelem - e < room ? t->nelem - e : room;
        GLMQ_FAIL_IF(k == 0, err, GLMQ_E_INTERNAL, "buffer misaligned for '%s'", t->name);
        fill(b->data + b->len, tab, es, key, e, k);
        b->len += k * es;
        e += k;
        if (b->len == WBUF_SIZE) GLMQ_TRY(writer_submit(w, err));
    }
    return GLMQ_OK;
}

// --- small text outputs -------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) GLMQ_PRINTF(2, 3);

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

/* The safetensors header of shard k, space-padded to a multiple of 8 (D.1, D.4). */
static glmq_status shard_header(const model *m, int k, sbuf *out, glmq_err *err)
{
    sb_printf(out, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int64_t i = 0; i < m->n; i++) {
        const tensor *t = &m->t[i];
        if (t->shard != k) continue;
        sb_printf(out, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64, t->name, dtypes[m->dt].st,
                  t->shape[0]);
        if (t->ndim == 2) sb_printf(out, ",%" PRId64, t->shape[1]);
        sb_printf(out, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", t->begin,
                  t->begin + t->nbytes);
    }
    sb_printf(out, "}");
    while (!out->oom && out->len % 8) sb_printf(out, " ");
    GLMQ_FAIL_IF(out->oom, err, GLMQ_E_NOMEM, "out of memory building the header of shard %d",
                 k + 1);
    return GLMQ_OK;
}

static void shard_name(char *dst, size_t cap, int k, int K)
{
    if (K == 1)
        snprintf(dst, cap, "model.safetensors");
    else
        snprintf(dst, cap, "model-%05d-of-%05d.safetensors", k + 1, K);
}

/* model.safetensors.index.json (D.5): metadata.total_size = sum of tensor bytes, as HF writes. */
static glmq_status index_json(const model *m, int K, uint64_t total, sbuf *out, glmq_err *err)
{
    char fname[64];
    sb_printf(out, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n", total);
    sb_printf(out, "  \"weight_map\": {\n");
    for (int64_t i = 0; i < m->n; i++) {
        shard_name(fname, sizeof fname, m->t[i].shard, K);
        sb_printf(out, "    \"%s\": \"%s\"%s\n", m->t[i].name, fname, i + 1 < m->n ? "," : "");
    }
    sb_printf(out, "  }\n}\n");
    GLMQ_FAIL_IF(out->oom, err, GLMQ_E_NOMEM, "out of memory building the index");
    return GLMQ_OK;
}

/* Replace the value of top-level field `key` (a number or a string, no nested commas) in the
 * embedded config text. Fails if the key is absent. */
static glmq_status set_field(sbuf *cfg, const char *key, const char *value, glmq_err *err)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    char *p = cfg->s ? strstr(cfg->s, pat) : NULL;
    GLMQ_FAIL_IF(!p, err, GLMQ_E_INTERNAL, "config has no field '%s'", key);
    char *v = p + strlen(pat), *e = v;
    while (*e && *e != ',' && *e != '}') e++;
    size_t vlen = strlen(value), tail = strlen(e) + 1;
    size_t need = (size_t)(v - cfg->s) + vlen + tail;
    if (need > cfg->cap) {
        size_t off_v = (size_t)(v - cfg->s), off_e = (size_t)(e - cfg->s);
        char *s = realloc(cfg->s, need);
        GLMQ_FAIL_IF(!s, err, GLMQ_E_NOMEM, "out of memory");
        cfg->s = s;
        cfg->cap = need;
        v = s + off_v;
        e = s + off_e;
    }
    memmove(v + vlen, e, tail);
    memcpy(v, value, vlen);
    cfg->len = strlen(cfg->s);
    return GLMQ_OK;
}

/* config.json: the upstream text with num_layers (and num_hidden_layers) = L and torch_dtype
 * = the written dtype. */
static glmq_status config_json(const arch_desc *a, int64_t L, sdtype dt, sbuf *out, glmq_err *err)
{
    char num[32], str[32];
    sb_printf(out, "%s", a->config);
    GLMQ_FAIL_IF(out->oom, err, GLMQ_E_NOMEM, "out of memory");
    snprintf(num, sizeof num, "%" PRId64, L);
    snprintf(str, sizeof str, "\"%s\"", dtypes[dt].torch);
    GLMQ_TRY(set_field(out, "num_layers", num, err));
    if (strstr(out->s, "\"num_hidden_layers\": "))
        GLMQ_TRY(set_field(out, "num_hidden_layers", num, err));
    GLMQ_TRY(set_field(out, "torch_dtype", str, err));
    sb_printf(out, "\n");
    GLMQ_FAIL_IF(out->oom, err, GLMQ_E_NOMEM, "out of memory");
    return GLMQ_OK;
}

static glmq_status write_text(const char *dir, const char *name, const char *text, size_t len,
                              glmq_err *err)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    GLMQ_FAIL_IF(n < 0 || (size_t)n >= sizeof path, err, GLMQ_E_INVALID, "path too long");
    FILE *f = fopen(path, "wb");
    GLMQ_FAIL_IF(!f, err, GLMQ_E_IO, "cannot create '%s': %s", path, strerror(errno));
    size_t wr = fwrite(text, 1, len, f);
    int bad = wr != len || ferror(f);
    bad |= fclose(f) != 0;
    GLMQ_FAIL_IF(bad, err, GLMQ_E_IO, "write '%s': %s", path, strerror(errno));
    return GLMQ_OK;
}

/* Create DIR (one level) or accept an existing one; a non-empty DIR needs --force. */
static glmq_status prepare_dir(const char *dir, int force, glmq_err *err)
{
    if (mkdir(dir, 0777) == 0) return GLMQ_OK;
    GLMQ_FAIL_IF(errno != EEXIST, err, GLMQ_E_IO, "cannot create directory '%s': %s", dir,
                 strerror(errno));
    struct stat st;
    GLMQ_FAIL_IF(stat(dir, &st) != 0 || !S_ISDIR(st.st_mode), err, GLMQ_E_IO,
                 "'%s' exists and is not a directory", dir);
    if (force) return GLMQ_OK;
    DIR *d = opendir(dir);
    GLMQ_FAIL_IF(!d, err, GLMQ_E_IO, "cannot open directory '%s': %s", dir, strerror(errno));
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) entries++;
    closedir(d);
    GLMQ_FAIL_IF(entries > 0, err, GLMQ_E_INVALID,
                 "directory '%s' is not empty (use --force to overwrite)", dir);
    return GLMQ_OK;
}

// --- driver -------------------------------------------------------------------------------

typedef struct {
    const arch_desc *arch;
    int64_t layers; /* -1: the architecture's */
    int dtype;      /* -1: the architecture's */
    int shards;
    uint64_t seed;
    const char *out;
    int fsync_each;
    int discard;
    int force;
} options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Write every shard through the writer thread (headers[k] is shard k's padded header). */
static glmq_status write_shards(const options *o, const model *m, sbuf *headers,
                                uint8_t *const *tabs, writer *w, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    int fd = -1;
    char path[4096], fname[64];
    for (int k = 0; k < o->shards; k++) {
        shard_name(fname, sizeof fname, k, o->shards);
        int n = snprintf(path, sizeof path, "%s/%s", o->out, fname);
        GLMQ_FAIL_IF_G(n < 0 || (size_t)n >= sizeof path, err, GLMQ_E_INVALID, "path too long");
        if (!o->discard) {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
            GLMQ_FAIL_IF_G(fd < 0, err, GLMQ_E_IO, "cannot create '%s': %s", path, strerror(errno));
        }
        writer_set_file(w, fd, path);
        uint8_t len8[8];
        glmq_wr_le64(len8, headers[k].len);
        GLMQ_TRY_G(writer_bytes(w, len8, 8, err));
        GLMQ_TRY_G(writer_bytes(w, headers[k].s, headers[k].len, err));
        for (int64_t i = 0; i < m->n; i++)
            if (m->t[i].shard == k)
                GLMQ_TRY_G(writer_tensor(w, &m->t[i], m->dt, tabs, o->seed, err));
        GLMQ_TRY_G(writer_drain(w, err));
        if (fd >= 0) {
            GLMQ_FAIL_IF_G(o->fsync_each && fsync(fd) != 0, err, GLMQ_E_IO, "fsync '%s': %s", path,
                           strerror(errno));
            int rc = close(fd);
            fd = -1;
            GLMQ_FAIL_IF_G(rc != 0, err, GLMQ_E_IO, "close '%s': %s", path, strerror(errno));
        }
    }
    return GLMQ_OK;
fail:
    /* Let the writer finish with the buffers that refer to fd before closing it. */
    pthread_mutex_lock(&w->mu);
    while (w->buf[0].full || w->buf[1].full) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (fd >= 0) close(fd);
    return st;
}

static glmq_status run(const options *o, glmq_err *err)
{
    glmq_status st = GLMQ_OK;
    const arch_desc *a = o->arch;
    const int64_t L = o->layers < 0 ? a->layers : o->layers;
    model m = {NULL, 0, 0, o->dtype < 0 ? a->native : (sdtype)o->dtype};
    sbuf *headers = NULL, cfg = {0}, idx = {0};
    uint8_t *tabs[N_TABLES] = {NULL};
    writer w;
    int writer_started = 0;
    memset(&w, 0, sizeof w);

    m.cap = L * 13 + 8;
    m.t = calloc((size_t)m.cap, sizeof *m.t);
    GLMQ_FAIL_IF_G(!m.t, err, GLMQ_E_NOMEM, "out of memory");
    GLMQ_TRY_G(a->v1 ? build_v1(a, L, &m, err) : build_v2(a, L, &m, err));
    GLMQ_FAIL_IF_G(o->shards > m.n, err, GLMQ_E_INVALID,
                   "--shards %d exceeds the number of tensors (%" PRId64 ")", o->shards, m.n);

    uint64_t total = 0; /* tensor bytes (index total_size) */
    for (int64_t i = 0; i < m.n; i++) total += m.t[i].nbytes;
    plan_shards(&m, o->shards, total);

    headers = calloc((size_t)o->shards, sizeof *headers);
    GLMQ_FAIL_IF_G(!headers, err, GLMQ_E_NOMEM, "out of memory");
    uint64_t shard_bytes = total; /* all safetensors files */
    for (int k = 0; k < o->shards; k++) {
        GLMQ_TRY_G(shard_header(&m, k, &headers[k], err));
        shard_bytes += 8 + headers[k].len;
    }
    uint64_t file_bytes = shard_bytes; /* everything this run writes */
    GLMQ_TRY_G(config_json(a, L, m.dt, &cfg, err));
    file_bytes += cfg.len;
    if (a->tokenizer_config) file_bytes += strlen(a->tokenizer_config) + 1;
    if (o->shards > 1) {
        GLMQ_TRY_G(index_json(&m, o->shards, total, &idx, err));
        file_bytes += idx.len;
    }

    printf("glmq_synth: %s, %" PRId64 " layer(s), %s, %" PRId64 " tensors in %d file(s), "
           "seed %" PRIu64 "\n",
           a->name, L, dtypes[m.dt].st, m.n, o->shards, o->seed);
    printf("glmq_synth: %s %" PRIu64 " bytes (%.2f GB) to '%s'\n",
           o->discard ? "generating (discarding)" : "writing", file_bytes, (double)file_bytes / 1e9,
           o->out);
    fflush(stdout);

    GLMQ_TRY_G(prepare_dir(o->out, o->force, err));
    GLMQ_TRY_G(write_text(o->out, "config.json", cfg.s, cfg.len, err));
    if (a->tokenizer_config) {
        sbuf tc = {0};
        sb_printf(&tc, "%s\n", a->tokenizer_config);
        GLMQ_FAIL_IF_G(tc.oom, err, GLMQ_E_NOMEM, "out of memory");
        st = write_text(o->out, "tokenizer_config.json", tc.s, tc.len, err);
        free(tc.s);
        if (st != GLMQ_OK) goto fail;
    }
    if (o->shards > 1)
        GLMQ_TRY_G(write_text(o->out, "model.safetensors.index.json", idx.s, idx.len, err));

    for (int k = 0; k < N_TABLES; k++) {
        tabs[k] = build_table(m.dt, kind_mean[k], kind_sd[k]);
        GLMQ_FAIL_IF_G(!tabs[k], err, GLMQ_E_NOMEM, "out of memory");
    }
    for (int k = 0; k < 2; k++) {
        w.buf[k].data = malloc(WBUF_SIZE);
        w.buf[k].fd = -1;
        GLMQ_FAIL_IF_G(!w.buf[k].data, err, GLMQ_E_NOMEM, "out of memory");
    }
    GLMQ_FAIL_IF_G(pthread_mutex_init(&w.mu, NULL) != 0 || pthread_cond_init(&w.cv, NULL) != 0, err,
                   GLMQ_E_INTERNAL, "cannot initialise the writer lock");
    GLMQ_FAIL_IF_G(pthread_create(&w.thread, NULL, writer_main, &w) != 0, err, GLMQ_E_INTERNAL,
                   "cannot start the writer thread");
    writer_started = 1;

    double t0 = now_s();
    GLMQ_TRY_G(write_shards(o, &m, headers, tabs, &w, err));
    double dt = now_s() - t0;
    printf("glmq_synth: %s %" PRIu64 " bytes of safetensors in %.2f s: %.2f GB/s%s\n",
           o->discard ? "generated" : "wrote", shard_bytes, dt,
           dt > 0 ? (double)shard_bytes / dt / 1e9 : 0.0, o->fsync_each ? " (fsync included)" : "");

fail:
    if (writer_started) {
        pthread_mutex_lock(&w.mu);
        w.quit = 1;
        pthread_cond_broadcast(&w.cv);
        pthread_mutex_unlock(&w.mu);
        pthread_join(w.thread, NULL);
    }
    for (int k = 0; k < 2; k++) free(w.buf[k].data);
    for (int k = 0; k < N_TABLES; k++) free(tabs[k]);
    if (headers)
        for (int k = 0; k < o->shards; k++) free(headers[k].s);
    free(headers);
    free(cfg.s);
    free(idx.s);
    free(m.t);
    return st;
}

// --- command line ---------------------------------------------------------------------------

static void usage(FILE *f)
{
    fprintf(f,
            "usage: glmq_synth --arch NAME [--layers N] [--dtype f16|bf16|f32] [--shards K]\n"
            "                  [--seed S] [--format safetensors] [--fsync] [--discard] [--force]\n"
            "                  -o DIR\n"
            "\n"
            "Write a random-weight GLM checkpoint with the real tensor names and shapes.\n"
            "  --arch      chatglm-6b, chatglm2-6b, chatglm3-6b, glm-4-9b, glm-4-9b-chat,\n"
            "              glm-4-9b-chat-1m\n"
            "  --layers    keep the first N layers (default: all)\n"
            "  --dtype     element type (default: the release's, f16 or bf16 for GLM-4)\n"
            "  --shards    K > 1 writes model-0000k-of-0000K.safetensors + index (default 1)\n"
            "  --seed      64-bit seed (default 1); output is a pure function of the options\n"
            "  --fsync     fsync each shard before closing it (timing includes the flush)\n"
            "  --discard   generate but do not write tensor files (generator throughput)\n"
            "  --force     allow a non-empty DIR (files of the same name are overwritten)\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o, glmq_err *err)
{
    const char *arch = NULL, *layers = NULL, *dtype = NULL, *shards = NULL, *seed = NULL;
    const char *format = "safetensors";
    memset(o, 0, sizeof *o);
    o->layers = -1;
    o->dtype = -1;
    o->shards = 1;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--fsync") == 0) {
            o->fsync_each = 1;
            continue;
        } else if (strcmp(a, "--discard") == 0) {
            o->discard = 1;
            continue;
        } else if (strcmp(a, "--force") == 0) {
            o->force = 1;
            continue;
        }
        if (strcmp(a, "--arch") == 0)
            slot = &arch;
        else if (strcmp(a, "--layers") == 0)
            slot = &layers;
        else if (strcmp(a, "--dtype") == 0)
            slot = &dtype;
        else if (strcmp(a, "--shards") == 0)
            slot = &shards;
        else if (strcmp(a, "--seed") == 0)
            slot = &seed;
        else if (strcmp(a, "--format") == 0)
            slot = &format;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            slot = &o->out;
        if (!slot) {
            glmq_fail(err, GLMQ_E_INVALID, "unknown option '%s' (see --help)", a);
            return -1;
        }
        if (i + 1 >= argc) {
            glmq_fail(err, GLMQ_E_INVALID, "option '%s' needs a value", a);
            return -1;
        }
        *slot = argv[++i];
    }
    if (strcmp(format, "safetensors") != 0) {
        glmq_fail(err, GLMQ_E_UNSUPPORTED, "format '%s' is not supported (safetensors only)",
                  format);
        return -1;
    }
    if (!arch || !o->out) {
        glmq_fail(err, GLMQ_E_INVALID, "%s is required (see --help)", !arch ? "--arch" : "-o DIR");
        return -1;
    }
    for (size_t k = 0; k < N_ARCHES; k++)
        if (strcmp(arch, arches[k].name) == 0) o->arch = &arches[k];
    if (!o->arch) {
        glmq_fail(err, GLMQ_E_INVALID, "unknown architecture '%s' (see --help)", arch);
        return -1;
    }
    int64_t v;
    if (layers) {
        if (parse_i64(layers, 1, o->arch->layers, &v) != 0) {
            glmq_fail(err, GLMQ_E_INVALID, "--layers '%s': expected 1..%" PRId64, layers,
                      o->arch->layers);
            return -1;
        }
        o->layers = v;
    }
    if (shards) {
        if (parse_i64(shards, 1, 99999, &v) != 0) {
            glmq_fail(err, GLMQ_E_INVALID, "--shards '%s': expected 1..99999", shards);
            return -1;
        }
        o->shards = (int)v;
    }
    if (dtype) {
        for (int k = 0; k < DT_COUNT; k++)
            if (strcmp(dtype, dtypes[k].opt) == 0) o->dtype = k;
        if (o->dtype < 0) {
            glmq_fail(err, GLMQ_E_INVALID, "--dtype '%s': expected f16, bf16 or f32", dtype);
            return -1;
        }
    }
    if (seed) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(seed, &end, 0);
        if (errno || end == seed || *end || seed[0] == '-') {
            glmq_fail(err, GLMQ_E_INVALID, "--seed '%s': expected an unsigned integer", seed);
            return -1;
        }
        o->seed = (uint64_t)s;
    }
    return 0;
}

int main(int argc, char **argv)
{
    glmq_err err = {GLMQ_OK, {0}};
    options o;
    int rc = parse_args(argc, argv, &o, &err);
    if (rc > 0) return 0; /* --help */
    if (rc == 0 && run(&o, &err) == GLMQ_OK) return 0;
    fprintf(stderr, "glmq_synth: error: %s\n", err.msg);
    return 1;
}
