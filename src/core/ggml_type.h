/*
 * ggml_type.h - ggml's tensor types as GGUF files number them: name, block size, block bytes
 * (internal; formats/gguf.h reads and writes the files, quant/ggml_dequant.c decodes the blocks).
 */
#ifndef GLMQ_CORE_GGML_TYPE_H
#define GLMQ_CORE_GGML_TYPE_H

#include <stdint.h>

/* ggml tensor types (values as stored in GGUF; frozen by ggml). */
typedef enum {
    GLMQ_GGML_F32 = 0,
    GLMQ_GGML_F16 = 1,
    GLMQ_GGML_Q4_0 = 2,
    GLMQ_GGML_Q4_1 = 3,
    GLMQ_GGML_Q5_0 = 6,
    GLMQ_GGML_Q5_1 = 7,
    GLMQ_GGML_Q8_0 = 8,
    GLMQ_GGML_Q8_1 = 9,
    GLMQ_GGML_Q2_K = 10,
    GLMQ_GGML_Q3_K = 11,
    GLMQ_GGML_Q4_K = 12,
    GLMQ_GGML_Q5_K = 13,
    GLMQ_GGML_Q6_K = 14,
    GLMQ_GGML_Q8_K = 15,
    GLMQ_GGML_IQ2_XXS = 16,
    GLMQ_GGML_IQ2_XS = 17,
    GLMQ_GGML_IQ3_XXS = 18,
    GLMQ_GGML_IQ1_S = 19,
    GLMQ_GGML_IQ4_NL = 20,
    GLMQ_GGML_IQ3_S = 21,
    GLMQ_GGML_IQ2_S = 22,
    GLMQ_GGML_IQ4_XS = 23,
    GLMQ_GGML_I8 = 24,
    GLMQ_GGML_I16 = 25,
    GLMQ_GGML_I32 = 26,
    GLMQ_GGML_I64 = 27,
    GLMQ_GGML_F64 = 28,
    GLMQ_GGML_IQ1_M = 29,
    GLMQ_GGML_BF16 = 30,
    GLMQ_GGML_TQ1_0 = 34,
    GLMQ_GGML_TQ2_0 = 35,
    GLMQ_GGML_MXFP4 = 39,
    GLMQ_GGML_NVFP4 = 40,
    GLMQ_GGML_Q1_0 = 41,
    GLMQ_GGML_Q2_0 = 42,
    GLMQ_GGML_TYPE_LIMIT = 43 /* ids >= this are unknown */
} glmq_ggml_type;

typedef struct {
    const char *name;   /* "q4_0", "q4_K", "bf16", ... (ggml's own type names) */
    int block;          /* elements per block (1 for plain types) */
    int block_bytes;    /* bytes per block */
    int decodable;      /* 1: glmq dequantizes it (quant/ggml_dequant.c) */
} glmq_ggml_type_info;

/* The table entry of a ggml type id, or NULL for an id that is unknown or retired. Known but
 * undecodable types (the IQ and TQ families, MXFP4, Q8_1, Q8_K, integer types) have an entry
 * with decodable = 0, so that errors can name them. Kept in core so that glmq_type_name can name
 * GLMQ_TYPE_GGML + t. */
const glmq_ggml_type_info *glmq_ggml_type_get(uint32_t type);

/* Bytes of one row of `ne0` elements of `type`; 0 when type is unknown or ne0 is not a positive
 * multiple of the block size or the size overflows. */
uint64_t glmq_ggml_row_bytes(uint32_t type, int64_t ne0);

#endif /* GLMQ_CORE_GGML_TYPE_H */
