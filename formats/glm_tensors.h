/*
 * glm_tensors.h - the one table of GLM checkpoint tensors (internal).
 *
 * For each architecture (ChatGLM-6B "v1", GLM-SPEC A.3; ChatGLM2/3-6B and GLM-4-9B "v2", B.2 /
 * C.2) the table lists, in canonical order, the tensors before the layers, those of one layer and
 * those after the layers. Each entry gives
 *   - its name (global) or the name inside layer l ("<layer prefix>.<l>.<name>"),
 *   - its shape as expressions over glmq_config (glmq_dim),
 *   - its role (embedding, output, norm, bias, layer weight) and the slot of the runtime's
 *     weights it fills (which field of the forward pass's structs),
 *   - the config condition under which it exists (e.g. v2 biases only with add_bias_linear),
 *   - whether it may be absent (ChatGLM-6B's lm_head, tied to the embedding),
 *   - whether the converter may quantize it.
 *
 * Every user walks this table: formats/checkpoint.c validates a checkpoint directory against it,
 * convert/convert.c chooses storage types from it, src/runtime/model.c checks a packed file
 * against it and src/runtime/forward.c fills its weights from it. The tensor names of the GLM
 * family are spelled in glm_tensors.c and nowhere else.
 */
#ifndef GLMQ_FORMATS_GLM_TENSORS_H
#define GLMQ_FORMATS_GLM_TENSORS_H

#include "formats/config.h"

/* What a tensor is, coarsely. */
typedef enum {
    GLMQ_ROLE_EMBED,
    GLMQ_ROLE_OUTPUT,
    GLMQ_ROLE_NORM,         /* norm weight or bias */
    GLMQ_ROLE_BIAS,         /* linear bias */
    GLMQ_ROLE_LAYER_WEIGHT  /* 2-D weight inside a transformer layer */
} glmq_role;

/* The field of the runtime's weights a tensor fills (src/runtime/forward.c). The first six are
 * matrices (borrowed views, multiplied by the matmul), the rest vectors (widened to fp32). */
typedef enum {
    GLMQ_SLOT_EMBED,        /* [V][h] token embedding (rows are looked up, not multiplied) */
    GLMQ_SLOT_OUTPUT,       /* [V][h] output layer (v1: the embedding when absent) */
    GLMQ_SLOT_QKV,          /* [qkv rows][h] fused query/key/value */
    GLMQ_SLOT_DENSE,        /* [h][n*d] attention output projection */
    GLMQ_SLOT_H4H,          /* [ffn rows][h] MLP up (v2: gate and up) */
    GLMQ_SLOT_FHH,          /* [h][F] MLP down */
    GLMQ_SLOT_LN_IN,        /* [h] input norm weight */
    GLMQ_SLOT_LN_IN_B,      /* [h] input LayerNorm bias (v1) */
    GLMQ_SLOT_QKV_B,        /* [qkv rows] */
    GLMQ_SLOT_DENSE_B,      /* [h] */
    GLMQ_SLOT_LN_POST,      /* [h] post-attention norm weight */
    GLMQ_SLOT_LN_POST_B,    /* [h] post-attention LayerNorm bias (v1) */
    GLMQ_SLOT_H4H_B,        /* [ffn rows] */
    GLMQ_SLOT_FHH_B,        /* [h] */
    GLMQ_SLOT_FINAL_NORM,   /* [h] final norm weight */
    GLMQ_SLOT_FINAL_NORM_B, /* [h] final LayerNorm bias (v1) */
    GLMQ_SLOT_LN_ATTN_OUT,  /* [h] glm4: RMSNorm of the attention output (sandwich_norm) */
    GLMQ_SLOT_LN_MLP_OUT    /* [h] glm4: RMSNorm of the MLP output (sandwich_norm) */
} glmq_slot;

/* 1 for the matrix slots, 0 for the vector slots. */
static inline int glmq_slot_is_matrix(glmq_slot s) { return s <= GLMQ_SLOT_FHH; }

/* Shape expressions over glmq_config (h hidden, n heads, d head_dim, g kv groups, F ffn, V
 * vocab). */
typedef enum {
    GLMQ_DIM_NONE = 0, /* the second dimension of a 1-D tensor */
    GLMQ_DIM_H,        /* h */
    GLMQ_DIM_V,        /* V */
    GLMQ_DIM_F,        /* F */
    GLMQ_DIM_2F,       /* 2F: v2 dense_h_to_4h (gate rows, then up rows) */
    GLMQ_DIM_3H,       /* 3h: v1 fused QKV */
    GLMQ_DIM_NQ,       /* n*d: v2 query width */
    GLMQ_DIM_QKV,      /* n*d + 2*g*d: v2 fused QKV */
    GLMQ_DIM_FFN_UP    /* rows of the SAT-named h_to_4h: F (ChatGLM-6B), 2F (GLM-130B GeGLU) */
} glmq_dim;

int64_t glmq_dim_value(const glmq_config *c, glmq_dim d);

/* The config field a tensor's existence depends on. */
typedef enum {
    GLMQ_WHEN_ALWAYS,
    GLMQ_WHEN_QKV_BIAS,    /* c->qkv_bias */
    GLMQ_WHEN_LINEAR_BIAS, /* c->linear_bias */
    GLMQ_WHEN_POST_NORM,   /* c->post_layer_norm */
    GLMQ_WHEN_SANDWICH     /* c->sandwich_norm (glm4's post_self_attn / post_mlp norms) */
} glmq_when;

/* Whether the converter quantizes a tensor (README "What convert decides"). */
typedef enum {
    GLMQ_QUANT_NEVER,        /* norms and biases: always kept as stored */
    GLMQ_QUANT_DEFAULT,      /* 2-D weights inside the layers: quantized to the recipe's type */
    GLMQ_QUANT_IF_EMBEDDING, /* only with --quantize-embedding */
    GLMQ_QUANT_IF_OUTPUT     /* only with --quantize-output */
} glmq_quant_rule;

/* One row of the table. */
typedef struct {
    const char *name; /* global: the full name; per layer: the name after "<prefix>.<l>." */
    glmq_slot slot;
    glmq_role role;
    int ndim;         /* 1 or 2 */
    glmq_dim dim[2];  /* shape; dim[1] is GLMQ_DIM_NONE for a vector */
    glmq_when when;
    int optional;     /* may be absent even when `when` holds */
    glmq_quant_rule quant;
} glmq_tensor_desc;

/* The table of one architecture: head (before the layers), layer (each layer, in order), tail
 * (after the layers). */
typedef struct {
    glmq_arch arch;
    const char *layer_prefix; /* layer l's tensors are "<layer_prefix>.<l>.<name>" */
    const glmq_tensor_desc *head, *layer, *tail;
    int n_head, n_layer, n_tail;
} glmq_tensor_table;

/* The table of an architecture, or NULL for an unknown one. */
const glmq_tensor_table *glmq_tensor_table_of(glmq_arch a);

/* 1 when the config expects a tensor with this condition. */
int glmq_tensor_expected(const glmq_config *c, glmq_when w);

/* One tensor the architecture expects, the table row expanded for a config and a layer. */
typedef struct {
    char name[128];
    int ndim;
    int64_t shape[2];
    glmq_role role;
    int optional;          /* v1 lm_head (tied) */
    glmq_slot slot;
    int64_t layer;         /* layer index, -1 for a global tensor */
    glmq_quant_rule quant;
} glmq_expected_tensor;

/* The expected tensors in canonical order (embedding, layers 0..L-1, final norm, output).
 * *out is malloc'd (free with free()). */
glmq_status glmq_config_tensors(const glmq_config *c, glmq_expected_tensor **out, int64_t *n,
                                glmq_err *err);

/* llama.cpp's GGUF name of the tensor in `slot` of layer `layer` (-1 for a global slot) for its
 * `chatglm` architecture (ChatGLM2/3, GLM-4): "token_embd.weight", "blk.3.attn_qkv.bias", ...
 * Written into buf (n bytes). Returns 0 when llama.cpp's chatglm graph has no such tensor (the
 * LayerNorm biases of ChatGLM-6B v1, the linear biases of add_bias_linear). The one place this naming is written down: export
 * and import both use it. */
int glmq_gguf_tensor_name(glmq_slot slot, int64_t layer, char *buf, size_t n);

/* 1 for checkpoint buffers that are not weights and are skipped without a warning (the rotary
 * `*.inv_freq`, recomputed from the config). */
int glmq_tensor_is_buffer(const char *name);

#endif /* GLMQ_FORMATS_GLM_TENSORS_H */
