/*
 * config.h - GLM model configuration: parsed from a Hugging Face config.json (GLM-SPEC A.2, B.1,
 * C.1, G.1) or from a packed file's metadata, and validated. The tensors an architecture needs
 * (names and shapes, A.3 / B.2 / C.2) are formats/glm_tensors.h's table. Internal.
 */
#ifndef GLMQ_CONVERT_CONFIG_H
#define GLMQ_CONVERT_CONFIG_H

#include "core/internal.h"

typedef enum {
    GLMQ_ARCH_CHATGLM1 = 1, /* ChatGLM-6B: LayerNorm, per-head interleaved QKV, 2-D RoPE, GLM mask */
    GLMQ_ARCH_CHATGLM2 = 2, /* ChatGLM2/3-6B, GLM-4-9B: RMSNorm, grouped KV, partial RoPE, SwiGLU */
    GLMQ_ARCH_GLM130B = 3   /* GLM-130B (SAT, formats/GLM130B.md): v1's layer with 1-D RoPE and
                               GeGLU, tied output */
} glmq_arch;

/* Everything the forward pass needs; every field is stored in the packed file's metadata. */
typedef struct {
    glmq_arch arch;
    int64_t hidden;      /* h */
    int64_t n_layers;    /* L */
    int64_t n_heads;     /* n */
    int64_t head_dim;    /* d (v1: h/n; v2: kv_channels) */
    int64_t n_kv_groups; /* g (v1: = n, no grouping) */
    int64_t ffn;         /* F (v1: inner_hidden_size; v2: ffn_hidden_size, h_to_4h has 2F rows) */
    int64_t vocab;       /* rows of the embedding and output layer */
    int64_t seq_length;  /* max positions (informational) */
    double norm_eps;
    double rope_ratio;   /* v2: base = 10000 * rope_ratio; v1: 1 */
    double alpha;        /* v1 residual scale sqrt(2*28) (decision 2); v2: 1 */
    int qkv_bias;        /* bias on query_key_value */
    int linear_bias;     /* bias on dense / MLP (v1: yes; v2: add_bias_linear) */
    int rmsnorm;         /* 1: RMSNorm (no bias), 0: LayerNorm (weight + bias) */
    int post_layer_norm; /* final norm exists */
    int tied_output;     /* v1 may store lm_head separately (equal to the embedding) */
    /* special tokens (-1 when absent) */
    int64_t tok_mask, tok_gmask, tok_smask, tok_sop, tok_eop, tok_eos, tok_pad, tok_bos;
    int64_t num_image_tokens; /* v1 id offset (0 or 20000) */
    char tokenizer_kind[16];  /* "sentencepiece" or "tiktoken" */
    /* the source checkpoint, not the model: THUDM's quantized releases (config.json
     * quantization_bit 4 or 8, 0 otherwise; quantization_embeddings). Not stored in packs. */
    int quant_bits;
    int quant_embeddings;
    /* glm4 (Glm4ForCausalLM): RMSNorms on the attention output and on the MLP output, before
     * their residual adds ("sandwich" norms; metadata "sandwich_norm", absent = 0) */
    int sandwich_norm;
    /* checkpoint-open only, never stored: 1 when the weights use transformers' GlmForCausalLM
     * / Glm4ForCausalLM names (model.layers.N.self_attn.q_proj, ...; formats/checkpoint.c maps
     * them to the canonical names) */
    int hf_layout;
} glmq_config;

/*
 * Parse and validate a config.json (text, len bytes). `tokenizer_config` (may be NULL) is the
 * text of tokenizer_config.json, used for v1 num_image_tokens. `path` is for messages.
 * Accepts quantization_bit 0, 4 or 8 (THUDM's quantized releases; recorded in quant_bits, and
 * quantization_embeddings in quant_embeddings); rejects other widths, P-tuning (pre_seq_len) and
 * unknown architectures.
 */
glmq_status glmq_config_parse(const char *json, size_t len, const char *tokenizer_config,
                              size_t tc_len, const char *path, glmq_config *out, glmq_err *err);

/* v2 family: [MASK] [gMASK] [sMASK] sop eop are numbered after the tokenizer's own table.
 * `n_pieces` is the SentencePiece piece count (ChatGLM2/3: ids n..n+4, GLM-SPEC B.7) or, for a
 * tiktoken file, the rank count (GLM-4: <|endoftext|> = n, then [MASK] = n+1 ..., C.3). */
void glmq_config_set_special(glmq_config *c, int64_t n_pieces, int tiktoken);

/* Serialize to / parse from the "config" object of the packed metadata (cJSON *). */
struct cJSON;
struct cJSON *glmq_config_to_json(const glmq_config *c);
glmq_status glmq_config_from_json(const struct cJSON *j, glmq_config *out, glmq_err *err);

/*
 * GLM-130B's hyper-parameters (formats/GLM130B.md): SAT's model_config.json (text, len bytes; its
 * argument names: num_layers, hidden_size, num_attention_heads, vocab_size, inner_hidden_size,
 * max_sequence_length, layernorm_epsilon, model_parallel_size, ...) or, when json is NULL, the
 * release's constants (configs/model_glm_130b.sh) checked against `shapes`, the sizes read from
 * the checkpoint (hidden, vocab, ffn, n_layers). *mp receives model_parallel_size (0 when the
 * file does not say). `path` is for messages.
 */
glmq_status glmq_config_parse_sat(const char *json, size_t len, const char *path,
                                  const glmq_config *shapes, glmq_config *out, int64_t *mp,
                                  glmq_err *err);

/* "chatglm" / "chatglm2" / "glm130b" */
const char *glmq_arch_name(glmq_arch a);

#endif /* GLMQ_CONVERT_CONFIG_H */
