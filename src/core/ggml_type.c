/*
 * ggml_type.c - the table of ggml tensor types (see ggml_type.h). Block sizes are checked
 * against ggml's own ggml_blck_size/ggml_type_size by the peer test (tests/peer/).
 */
#include "core/ggml_type.h"

#include <stddef.h>

#define T(id, nm, blk, bytes, dec) [id] = {nm, blk, bytes, dec}

static const glmq_ggml_type_info types[GLMQ_GGML_TYPE_LIMIT] = {
    T(GLMQ_GGML_F32, "f32", 1, 4, 1),
    T(GLMQ_GGML_F16, "f16", 1, 2, 1),
    T(GLMQ_GGML_Q4_0, "q4_0", 32, 18, 1),
    T(GLMQ_GGML_Q4_1, "q4_1", 32, 20, 1),
    T(GLMQ_GGML_Q5_0, "q5_0", 32, 22, 1),
    T(GLMQ_GGML_Q5_1, "q5_1", 32, 24, 1),
    T(GLMQ_GGML_Q8_0, "q8_0", 32, 34, 1),
    T(GLMQ_GGML_Q8_1, "q8_1", 32, 36, 0),
    T(GLMQ_GGML_Q2_K, "q2_K", 256, 84, 1),
    T(GLMQ_GGML_Q3_K, "q3_K", 256, 110, 1),
    T(GLMQ_GGML_Q4_K, "q4_K", 256, 144, 1),
    T(GLMQ_GGML_Q5_K, "q5_K", 256, 176, 1),
    T(GLMQ_GGML_Q6_K, "q6_K", 256, 210, 1),
    T(GLMQ_GGML_Q8_K, "q8_K", 256, 292, 0),
    T(GLMQ_GGML_IQ2_XXS, "iq2_xxs", 256, 66, 0),
    T(GLMQ_GGML_IQ2_XS, "iq2_xs", 256, 74, 0),
    T(GLMQ_GGML_IQ3_XXS, "iq3_xxs", 256, 98, 0),
    T(GLMQ_GGML_IQ1_S, "iq1_s", 256, 50, 0),
    T(GLMQ_GGML_IQ4_NL, "iq4_nl", 32, 18, 0),
    T(GLMQ_GGML_IQ3_S, "iq3_s", 256, 110, 0),
    T(GLMQ_GGML_IQ2_S, "iq2_s", 256, 82, 0),
    T(GLMQ_GGML_IQ4_XS, "iq4_xs", 256, 136, 0),
    T(GLMQ_GGML_I8, "i8", 1, 1, 0),
    T(GLMQ_GGML_I16, "i16", 1, 2, 0),
    T(GLMQ_GGML_I32, "i32", 1, 4, 0),
    T(GLMQ_GGML_I64, "i64", 1, 8, 0),
    T(GLMQ_GGML_F64, "f64", 1, 8, 0),
    T(GLMQ_GGML_IQ1_M, "iq1_m", 256, 56, 0),
    T(GLMQ_GGML_BF16, "bf16", 1, 2, 1),
    T(GLMQ_GGML_TQ1_0, "tq1_0", 256, 54, 0),
    T(GLMQ_GGML_TQ2_0, "tq2_0", 256, 66, 0),
    T(GLMQ_GGML_MXFP4, "mxfp4", 32, 17, 0),
    T(GLMQ_GGML_NVFP4, "nvfp4", 64, 36, 0),
    T(GLMQ_GGML_Q1_0, "q1_0", 128, 18, 0),
    T(GLMQ_GGML_Q2_0, "q2_0", 64, 18, 0),
};

const glmq_ggml_type_info *glmq_ggml_type_get(uint32_t type)
{
    if (type >= GLMQ_GGML_TYPE_LIMIT || types[type].name == NULL) return NULL;
    return &types[type];
}

uint64_t glmq_ggml_row_bytes(uint32_t type, int64_t ne0)
{
    const glmq_ggml_type_info *t = glmq_ggml_type_get(type);
    if (!t || ne0 <= 0 || ne0 % t->block != 0) return 0;
    uint64_t blocks = (uint64_t)(ne0 / t->block);
    if (blocks > UINT64_MAX / (uint64_t)t->block_bytes) return 0;
    return blocks * (uint64_t)t->block_bytes;
}
